//! The latency of one `peerscrip buy` over NATS: the median of 100 purchases by
//! the real command against the real `peerscrip-broker` and `peerscrip-merchant` on a
//! harness `nats-server`, in both suites. A benchmark, not a test: `cargo bench -p tests
//! --bench buy_latency` (release binaries, built by the bench with its own profile).
//!
//! Each figure is reported with two baselines measured in the same run, so it reads as a
//! ratio rather than an absolute number on a machine nobody else has:
//! - `peerscrip balance` (the same process start, key decryption and wallet file, no
//!   network): what the protocol adds to a command;
//! - `peerscrip shop` (the same, plus one signed request and reply with the merchant over
//!   NATS): what a purchase costs over one round trip.
//!
//! `PEERSCRIP_BENCH_BUYS=N` changes the count (default 100).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peerscrip_tests::NatsServer;
use peerscrip_tests::binaries::{built, workspace};

const CUSTOMER_PAN: &str = "GR1601101250000000012300695";
const MERCHANT_PAN: &str = "GR9608100010000001234567890";

fn main() {
    let buys: usize = std::env::var("PEERSCRIP_BENCH_BUYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    println!("peerscrip buy over NATS: median of {buys} purchases per suite");
    for suite in ["paper", "modern"] {
        run(suite, buys);
    }
}

/// A deployment of one suite: nats-server, broker, merchant, a registered wallet.
struct Deployment {
    _nats: NatsServer,
    nodes: Vec<Child>,
    bin: PathBuf,
    dir: tempfile::TempDir,
    url: String,
    merchant: String,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = Command::new("kill")
                .args(["-TERM", &node.id().to_string()])
                .status();
            let _ = node.wait();
        }
    }
}

fn check(command: &mut Command) -> String {
    let out = command.output().expect("run a command");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "a node did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Deployment {
    fn start(suite: &str) -> Deployment {
        let bin = built().clone();
        let nats = NatsServer::start().expect("nats-server");
        let url = nats.url();
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().to_owned();
        std::fs::create_dir_all(d.join("secrets")).expect("secrets dir");
        let ops = bin.join("peerscrip-ops");
        let mut merchant = String::new();
        for who in ["broker", "operator", "merchant"] {
            let out = check(
                Command::new(&ops)
                    .args(["keygen", "--json", "--suite", suite, "--out"])
                    .arg(d.join("keys").join(who)),
            );
            if who == "merchant" {
                merchant = out
                    .split("\"uid\":\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .expect("keygen prints the uid")
                    .to_owned();
            }
        }
        std::fs::write(
            d.join("broker.toml"),
            format!(
                "[node]\nsuite = \"{suite}\"\ndata_dir = \"data/broker\"\nkey = \"keys/broker/key.pem\"\n\
                 [nats]\nurl = \"{url}\"\n[log]\nlevel = \"warn\"\n\
                 [broker]\noperator_key = \"keys/operator/key.pub.pem\"\n"
            ),
        )
        .expect("broker.toml");
        let mut nodes = vec![spawn(&bin.join("peerscrip-broker"), &d.join("broker.toml"))];
        let admin = |args: &[&str]| {
            let mut c = Command::new(&ops);
            c.arg(args[0])
                .args(["--nats-url", &url, "--suite", suite, "--operator-key"])
                .arg(d.join("keys/operator/key.pem"))
                .arg("--broker-key")
                .arg(d.join("keys/broker/key.pub.pem"))
                .args(&args[1..]);
            c
        };
        wait_for(|| admin(&["peers"]).output().is_ok_and(|o| o.status.success()));
        let secret = |name: &str| d.join("secrets").join(name).to_string_lossy().into_owned();
        check(&mut admin(&[
            "bank",
            "open-account",
            "--pan",
            MERCHANT_PAN,
            "--secret-out",
            &secret("merchant"),
        ]));
        check(&mut admin(&[
            "bank",
            "open-account",
            "--pan",
            CUSTOMER_PAN,
            "--secret-out",
            &secret("alice"),
        ]));
        check(&mut admin(&[
            "bank",
            "deposit",
            "--pan",
            CUSTOMER_PAN,
            "--amount",
            "5000.00",
        ]));
        std::fs::copy(
            workspace().join("ops/deploy/catalogue.toml"),
            d.join("catalogue.toml"),
        )
        .expect("catalogue");
        std::fs::write(
            d.join("merchant.toml"),
            format!(
                "[node]\nsuite = \"{suite}\"\ndata_dir = \"data/merchant\"\nkey = \"keys/merchant/key.pem\"\n\
                 [nats]\nurl = \"{url}\"\n[log]\nlevel = \"warn\"\n\
                 [merchant]\nbroker_key = \"keys/broker/key.pub.pem\"\ncatalogue = \"catalogue.toml\"\n\
                 pan = \"{MERCHANT_PAN}\"\npan_secret_file = \"secrets/merchant\"\n"
            ),
        )
        .expect("merchant.toml");
        nodes.push(spawn(
            &bin.join("peerscrip-merchant"),
            &d.join("merchant.toml"),
        ));
        wait_for(|| {
            admin(&["peers"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&merchant))
        });
        std::fs::write(d.join("secrets/passphrase"), "bench passphrase\n").expect("passphrase");
        let deployment = Deployment {
            _nats: nats,
            nodes,
            bin,
            dir,
            url,
            merchant,
        };
        check(&mut deployment.wallet(&[
            "init",
            "--suite",
            suite,
            "--broker-key",
            &deployment.path("keys/broker/key.pub.pem"),
        ]));
        check(&mut deployment.wallet(&[
            "register",
            "--pan",
            CUSTOMER_PAN,
            "--pan-secret-file",
            &secret("alice"),
        ]));
        check(&mut deployment.wallet(&["broker-scrip", "buy", "4000.00"]));
        let m = deployment.merchant.clone();
        check(&mut deployment.wallet(&["vendor-scrip", "buy", &m, "3000.00"]));
        deployment
    }

    fn path(&self, relative: &str) -> String {
        self.dir
            .path()
            .join(relative)
            .to_string_lossy()
            .into_owned()
    }

    fn wallet(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin.join("peerscrip"));
        c.arg("--wallet-dir")
            .arg(self.dir.path().join("alice"))
            .args(["--nats-url", &self.url, "--passphrase-file"])
            .arg(self.dir.path().join("secrets/passphrase"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }
}

fn spawn(binary: &Path, config: &Path) -> Child {
    Command::new(binary)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a daemon")
}

/// The median of `n` runs of `command`, each of which must succeed.
fn median(n: usize, mut command: impl FnMut() -> Command) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let mut c = command();
            let start = Instant::now();
            let status = c.status().expect("run");
            let took = start.elapsed();
            assert!(status.success(), "{c:?} failed");
            took
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn run(suite: &str, buys: usize) {
    let d = Deployment::start(suite);
    let m = d.merchant.clone();
    let balance = median(buys, || d.wallet(&["balance"]));
    let shop = median(buys, || d.wallet(&["shop", &m]));
    let buy = median(buys, || d.wallet(&["buy", &m, "cup"]));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "{suite:>6}: buy {:>7.1} ms = {:.2} × balance ({:.1} ms), {:.2} × shop ({:.1} ms)",
        buy.as_secs_f64() * 1e3,
        ratio(buy, balance),
        balance.as_secs_f64() * 1e3,
        ratio(buy, shop),
        shop.as_secs_f64() * 1e3,
    );
}
