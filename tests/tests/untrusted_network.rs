//! A deployment on a network and a machine it does not trust (README "Running on a network
//! you do not trust"), through the built binaries only:
//!
//! - NATS over TLS: the configuration `peerscrip-ops nats-config` writes with a server
//!   certificate (a `tls {}` block requiring TLS and a client certificate of every
//!   client, and one user per node), certificates made here with `rcgen`; the daemons, the
//!   bank operator's `peerscrip-ops bank` and the wallet each given the CA and a client
//!   certificate (by flag, by environment, by the wallet's config), and a whole purchase
//!   goes through with its money conserved; a client without the CA, or with another CA,
//!   is refused with an error that names the setting to fix, and nothing changes.
//! - Private files (protocol.md appendix E): under umask 022, as the README's by-hand
//!   commands run them, every data directory the daemons and the wallet create is 0700 and
//!   every file in it 0600; an existing world-readable data directory is tightened, with a
//!   warning.
//! - The paper suite warns at start, in one line naming its weaknesses; the modern suite,
//!   the default, does not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use peerscrip_tests::NatsServer;
use peerscrip_tests::processes::{Daemon, Run, minor, timeless, under_umask};
use peerscrip_tests::site::{Site, path_str};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use shared::Suite;

const PAN_C: &str = "GR1601101250000000012300695";
/// The PAN of `ops/deploy/merchant.toml`.
const PAN_M: &str = "GR9608100010000001234567890";
const PASSPHRASE: &str = "the untrusted network wallet's passphrase";

/// The test's certificate authority and what it signed, as PEM files in `tls/`: the
/// server's certificate (for 127.0.0.1), a client certificate every client presents, and
/// another CA that signed nothing of this deployment.
struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    fn make(site: &Site) -> Certificates {
        let dir = site.path("tls");
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
        let (ca_pem, issuer) = authority("peerscrip test CA");
        write("ca.pem", ca_pem);
        let (other_pem, _) = authority("some other CA");
        write("other-ca.pem", other_pem);
        let (server, server_key) = leaf(&issuer, "127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
        write("server.pem", server);
        write("server.key", server_key);
        let (client, client_key) = leaf(
            &issuer,
            "peerscrip-node",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        write("client.pem", client);
        write("client.key", client_key);
        Certificates { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The flags every client takes: the CA and the client certificate.
    fn client_flags(&self) -> Vec<String> {
        [
            ("--nats-ca-file", "ca.pem"),
            ("--nats-client-cert", "client.pem"),
            ("--nats-client-key", "client.key"),
        ]
        .into_iter()
        .flat_map(|(flag, file)| [flag.to_owned(), path_str(&self.path(file)).to_owned()])
        .collect()
    }
}

/// A self-signed CA: its certificate (PEM) and what signs with it.
fn authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// A certificate for `name` (an IP address or a host name) signed by `issuer`, with its
/// key, both PEM.
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The deployment (`peerscrip_tests::site`): its URL once its server runs, alice's wallet.
struct World {
    site: Site,
    nats_url: String,
}

impl World {
    fn new(suite: Suite) -> World {
        let site = Site::new(suite);
        std::fs::write(
            site.path("secrets/alice.passphrase"),
            format!("{PASSPHRASE}\n"),
        )
        .unwrap();
        World {
            site,
            // Until the server runs: the wallet's `init` stores no URL it is given by flag
            // later.
            nats_url: "nats://127.0.0.1:1".to_owned(),
        }
    }

    /// `peerscrip --json <args>` on alice's wallet, under umask 022.
    fn wallet(&self, args: &[&str]) -> Run {
        let mut command = Site::wallet_command(
            &self.site.path("alice"),
            &self.site.path("secrets/alice.passphrase"),
            &self.nats_url,
        );
        command.args(args);
        self.site.record(Run::of(under_umask(&command, "022")))
    }

    /// `peerscrip-ops <command> <args> <flags>`: the operator's request, every connection
    /// flag after the subcommand (they are global).
    fn operator(&self, command: &[&str], flags: &[String]) -> Run {
        let (operator, broker) = (self.site.key("operator"), self.site.public_key("broker"));
        let password = self.site.path("nats/credentials/operator.password");
        let connection = [
            "--json",
            "--nats-url",
            &self.nats_url,
            "--suite",
            self.site.suite.name(),
            "--operator-key",
            path_str(&operator),
            "--broker-key",
            path_str(&broker),
            "--nats-user",
            "operator",
            "--nats-password-file",
            path_str(&password),
        ];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        self.site.ops(&[command, &connection, &flags].concat())
    }

    fn nats_user(&self, command: &mut std::process::Command, user: &str) {
        let password = self.site.path(&format!("nats/credentials/{user}.password"));
        command
            .args(["--nats-user", user, "--nats-password-file"])
            .arg(password);
    }
}

/// The whole flow on a server that requires TLS and a client certificate: the
/// certificates, the server's configuration from `nats-config --tls-cert`, the daemons,
/// the operator and the wallet each with the CA and its client certificate; a purchase
/// with change; the money conserved. A client without the CA, or with another CA, is
/// refused with an error naming the setting, and no balance moves.
#[test]
fn the_whole_flow_runs_over_tls_and_a_client_without_the_ca_is_refused() {
    let mut world = World::new(Suite::Modern);
    let site = &world.site;
    for who in ["broker", "operator", "merchant"] {
        let _ = site.keygen(who);
    }
    let certs = Certificates::make(site);
    let tls = certs.client_flags();

    // The wallet first: its public key goes into the server's configuration. Its TLS
    // settings go into its config.toml (absolute paths), used by every later command.
    let broker_key = site.public_key("broker");
    let alice_password = site.path("nats/credentials/alice.password");
    let init_args: Vec<&str> = [
        "init",
        "--broker-key",
        path_str(&broker_key),
        "--nats-user",
        "alice",
        "--nats-password-file",
        path_str(&alice_password),
    ]
    .into_iter()
    .chain(tls.iter().map(String::as_str))
    .collect();
    let init = world.wallet(&init_args).ok();
    assert_eq!(init["suite"], "modern");
    let config = std::fs::read_to_string(site.path("alice/config.toml")).unwrap();
    assert!(config.contains("nats_ca_file"), "{config}");

    // The server's configuration: one user per node, and TLS with client certificates.
    let (out, server_cert, server_key, ca) = (
        site.path("nats"),
        certs.path("server.pem"),
        certs.path("server.key"),
        certs.path("ca.pem"),
    );
    let merchant_pub = format!("merchant={}", path_str(&site.public_key("merchant")));
    let operator_pub = format!("operator={}", path_str(&site.public_key("operator")));
    let alice_pub = format!("alice={}", path_str(&site.path("alice/key.pub.pem")));
    let written = site.ops(&[
        "nats-config",
        "--out",
        path_str(&out),
        "--broker",
        path_str(&broker_key),
        "--merchant",
        &merchant_pub,
        "--customer",
        &operator_pub,
        "--customer",
        &alice_pub,
        "--tls-cert",
        path_str(&server_cert),
        "--tls-key",
        path_str(&server_key),
        "--tls-client-ca",
        path_str(&ca),
    ]);
    assert_eq!(written.code, 0, "{written:?}");
    assert!(written.stdout.contains("TLS required"), "{written:?}");
    let server_config = std::fs::read_to_string(out.join("nats-server.conf")).unwrap();
    assert!(server_config.contains("verify: true"), "{server_config}");
    let server = NatsServer::start_with_config(&server_config).expect("a TLS nats-server");
    world.nats_url = server.url();
    let world = world;
    let site = &world.site;

    // The broker, TLS by flags.
    let mut command = site.broker_command(&world.nats_url);
    world.nats_user(&mut command, "broker");
    command.args(&tls);
    let mut broker = Daemon::start("peerscrip-broker", command, "broker serving");

    // The bank, every flag after the subcommand.
    let secret_m = site.path("secrets/merchant.pansecret");
    let secret_c = site.path("secrets/alice.pansecret");
    for (pan, secret) in [(PAN_M, &secret_m), (PAN_C, &secret_c)] {
        let opened = world
            .operator(
                &[
                    "bank",
                    "open-account",
                    "--pan",
                    pan,
                    "--secret-out",
                    path_str(secret),
                ],
                &tls,
            )
            .ok();
        assert_eq!(opened["result"], "account_opened", "{opened}");
    }
    let deposit = world
        .operator(
            &["bank", "deposit", "--pan", PAN_C, "--amount", "100.00"],
            &tls,
        )
        .ok();
    assert_eq!(deposit["balance"]["value"], "100.00");

    // The merchant, TLS from the environment.
    let mut command = site.merchant_command("merchant", &world.nats_url);
    world.nats_user(&mut command, "merchant");
    command
        .arg("--pan-secret-file")
        .arg(&secret_m)
        .env("PEERSCRIP_NATS_CA_FILE", certs.path("ca.pem"))
        .env("PEERSCRIP_NATS_CLIENT_CERT", certs.path("client.pem"))
        .env("PEERSCRIP_NATS_CLIENT_KEY", certs.path("client.key"));
    let mut merchant = Daemon::start("peerscrip-merchant", command, "merchant serving");
    let merchant_uid = {
        let pem = std::fs::read_to_string(site.public_key("merchant")).unwrap();
        shared::PublicKey::from_pem(Suite::Modern, &pem)
            .unwrap()
            .uid()
            .to_string()
    };

    // The customer, TLS from its config.toml: register, BrokerScrip, VendorScrip, two teas.
    let register = world.wallet(&[
        "register",
        "--pan",
        PAN_C,
        "--pan-secret-file",
        path_str(&secret_c),
    ]);
    assert_eq!(register.ok()["account"], "…0695");
    let bought = world.wallet(&["broker-scrip", "buy", "40.00"]).ok();
    assert_eq!(minor(&bought["value"]), 4_000);
    let _ = world
        .wallet(&["vendor-scrip", "buy", &merchant_uid, "15.00"])
        .ok();
    let buy = world
        .wallet(&["buy", &merchant_uid, "tea", "--qty", "2"])
        .ok();
    assert_eq!(
        (minor(&buy["paid"]), minor(&buy["change"])),
        (900, 600),
        "{buy}"
    );

    // Conserved: 100.00 = 60.00 in the customer's account + 25.00 of BrokerScrip + 15.00
    // in the merchant's account, of which 6.00 backs the VendorScrip still held.
    let books = || {
        let c = world
            .operator(&["bank", "balance", "--pan", PAN_C], &tls)
            .ok();
        let m = world
            .operator(&["bank", "balance", "--pan", PAN_M], &tls)
            .ok();
        (c, m)
    };
    let (c, m) = books();
    assert_eq!(c["balance"]["value"], "60.00", "{c}");
    assert_eq!(
        (
            m["balance"]["value"].as_str(),
            m["available"]["value"].as_str()
        ),
        (Some("15.00"), Some("9.00"))
    );
    let balance = world.wallet(&["balance"]).ok();
    assert_eq!(minor(&balance["total"]), 3_100, "{balance}");

    // Without the CA: the operator's tool is refused at the handshake, exit 2 (a
    // configuration error, as the wallet's), naming the setting in its `--json` error.
    let no_ca = world.operator(&["peers"], &[]);
    assert_eq!(no_ca.code, 2, "{no_ca:?}");
    let message = no_ca.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("TLS to the NATS server failed") && message.contains("--nats-ca-file"),
        "{no_ca:?}"
    );
    // With another CA: the wallet says which CA file did not sign the server's
    // certificate, exit 2 (a configuration error), nothing pending.
    let other = certs.path("other-ca.pem");
    let wrong = world.wallet(&["--nats-ca-file", path_str(&other), "shop", &merchant_uid]);
    assert_eq!(wrong.code, 2, "{wrong:?}");
    let message = wrong.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("TLS to the NATS server failed") && message.contains("other-ca.pem"),
        "{message}"
    );
    // A client that presents no certificate is turned away by the server.
    let ca_only = [
        "--nats-ca-file".to_owned(),
        path_str(&certs.path("ca.pem")).to_owned(),
    ];
    let no_cert = world.operator(&["peers"], &ca_only);
    assert_eq!(no_cert.code, 2, "{no_cert:?}");
    assert!(
        no_cert.json()["message"]
            .as_str()
            .unwrap()
            .contains("--nats-client-cert"),
        "{no_cert:?}"
    );
    // Nothing moved.
    assert_eq!(books(), (c, m));
    assert_eq!(
        timeless(&world.wallet(&["balance"]).ok()),
        timeless(&balance)
    );

    assert_eq!(merchant.terminate().code(), Some(0), "{}", merchant.log());
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
    // The modern suite, the default: no warning about it.
    assert_eq!(broker.count("paper suite"), 0, "{}", broker.log());
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Every directory below `dir` (itself included) is 0700 and every file 0600.
fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_private(&path);
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

/// Under umask 022 (the README's by-hand commands): the broker's existing, world-readable
/// data directory and its files are tightened with a warning; the merchant's and the
/// wallet's, new, are created private; every file the three write is 0600. The paper
/// suite warns at start, in one line naming its weaknesses, from each daemon and the
/// wallet.
#[test]
fn under_umask_022_every_data_directory_and_file_is_private_and_the_paper_suite_warns() {
    let server = NatsServer::start().expect("start nats-server");
    let mut world = World::new(Suite::Paper);
    world.nats_url = server.url();
    let site = &world.site;
    for who in ["broker", "operator", "merchant"] {
        let _ = site.keygen(who);
    }
    // An operator made the broker's directory by hand, world-readable, with a file in it.
    let broker_dir = site.data("broker");
    std::fs::create_dir_all(&broker_dir).unwrap();
    std::fs::write(broker_dir.join("notes.txt"), "made by hand\n").unwrap();
    std::fs::set_permissions(&broker_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        broker_dir.join("notes.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let command = under_umask(&site.broker_command(&world.nats_url), "022");
    let mut broker = Daemon::start("peerscrip-broker", command, "broker serving");
    let secret_m = site.path("secrets/merchant.pansecret");
    site.open_account(&world.nats_url, PAN_M, &secret_m);
    let mut command = site.merchant_command("merchant", &world.nats_url);
    command.arg("--pan-secret-file").arg(&secret_m);
    let mut merchant = Daemon::start(
        "peerscrip-merchant",
        under_umask(&command, "022"),
        "merchant serving",
    );
    let broker_key = site.public_key("broker");
    let init = world.wallet(&[
        "init",
        "--suite",
        "paper",
        "--broker-key",
        path_str(&broker_key),
    ]);
    let _ = init.ok();
    let shop = world.wallet(&["balance"]);
    let _ = shop.ok();
    // A client that requires TLS of a server without it is refused, saying so.
    let ca = site.path("secrets/some-ca.pem");
    std::fs::write(&ca, "").unwrap();
    let operator_key = site.key("operator");
    let operator = [
        "peers",
        "--json",
        "--nats-url",
        &world.nats_url,
        "--suite",
        "paper",
        "--operator-key",
        path_str(&operator_key),
        "--broker-key",
        path_str(&broker_key),
        "--nats-ca-file",
        path_str(&ca),
    ];
    let plain = site.ops(&operator);
    assert_eq!(plain.code, 2, "{plain:?}");
    assert!(
        plain.json()["message"]
            .as_str()
            .unwrap()
            .contains("the server does not speak TLS"),
        "{plain:?}"
    );

    assert_eq!(merchant.terminate().code(), Some(0), "{}", merchant.log());
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());

    // Private, whatever the umask: the broker's tightened (with one warning per path),
    // the merchant's and the wallet's created so.
    for dir in [
        broker_dir.clone(),
        site.data("merchant"),
        site.path("alice"),
    ] {
        assert_private(&dir);
    }
    assert!(broker_dir.join("broker.redb").exists());
    assert!(site.data("merchant").join("merchant.redb").exists());
    assert!(site.path("alice/wallet.redb").exists());
    assert_eq!(
        broker.count("readable by other users of this machine; tightened"),
        2,
        "{}",
        broker.log()
    );
    assert_eq!(merchant.count("tightened"), 0, "{}", merchant.log());

    // The paper suite: one warning line at start from each, naming what is weak.
    for (who, log) in [("broker", broker.log()), ("merchant", merchant.log())] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("paper suite")).collect();
        assert_eq!(lines.len(), 1, "{who}: {log}");
        assert!(lines[0].contains("WARN"), "{who}: {}", lines[0]);
        for needle in [
            "RUSTSEC-2023-0071",
            "Marvin",
            "RSA-1024",
            "SHA-1",
            "PKCS#1 v1.5",
        ] {
            assert!(lines[0].contains(needle), "{who}: {needle} in {}", lines[0]);
        }
    }
    for run in [&init, &shop] {
        let warnings: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains("paper suite"))
            .collect();
        assert_eq!(warnings.len(), 1, "{run:?}");
        assert!(warnings[0].starts_with("peerscrip: warning:"), "{run:?}");
        assert!(warnings[0].contains("RUSTSEC-2023-0071"), "{run:?}");
    }
    // The JSON document on stdout is untouched by the warning.
    assert_eq!(init.json()["suite"], "paper");
}

/// A data directory that is a shared directory (sticky bit, like /tmp) is refused before
/// anything is written into it: making it private would lock others out.
#[test]
fn a_shared_data_directory_is_refused_and_nothing_is_written() {
    let server = NatsServer::start().expect("start nats-server");
    let site = Site::new(Suite::Paper);
    let _ = site.keygen("broker");
    let dir = site.data("broker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let mut command = site.broker_command(&server.url());
    command.stderr(std::process::Stdio::piped());
    let run = Run::of(command);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("the data directory cannot be made private")
            && run.stderr.contains("shared directory"),
        "{run:?}"
    );
    assert_eq!(mode(&dir), 0o1777);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}
