//! A deployment run by the workspace's binaries, laid out as an operator lays it out: one
//! temporary directory holding each node's keys (`keys/<who>/key.pem` and `key.pub.pem`,
//! as `peerscrip-ops keygen` writes them), the secrets (`secrets/`) and each node's data
//! directory (`data/<who>`). It gives the commands of its daemons (`peerscrip-broker`,
//! `peerscrip-merchant`, configured by `ops/deploy/*.toml` with flags on top) and of the
//! customer's wallet (`peerscrip --json`), and runs the operator's `peerscrip-ops`
//! (keygen, and the bank's and peers' requests over NATS), keeping everything those runs
//! printed so that a test can check no secret ever was.
//!
//! Every function here panics when a process does not behave: this is a test kit, and the
//! panic is the test's failure message.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use shared::Suite;

use crate::binaries::{built, workspace};
use crate::processes::{Daemon, Run, clean_command};

/// The bound on one `peerscrip-ops` run: far beyond what it takes, so that only a hung
/// process reaches it.
pub const OPS_LIMIT: Duration = Duration::from_secs(120);

/// The deployment's directory and what its operator's commands printed.
#[derive(Debug)]
pub struct Site {
    dir: tempfile::TempDir,
    /// The suite of every node.
    pub suite: Suite,
    printed: Mutex<Vec<String>>,
}

impl Site {
    /// An empty deployment of `suite`, with its `secrets/` directory.
    ///
    /// # Panics
    /// When the directory cannot be made.
    #[must_use]
    pub fn new(suite: Suite) -> Site {
        let site = Site {
            dir: tempfile::tempdir().expect("a temporary directory"),
            suite,
            printed: Mutex::default(),
        };
        std::fs::create_dir_all(site.path("secrets")).expect("the secrets directory");
        site
    }

    /// `rel` inside the deployment's directory.
    #[must_use]
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `who`'s private key file.
    #[must_use]
    pub fn key(&self, who: &str) -> PathBuf {
        self.path(&format!("keys/{who}/key.pem"))
    }

    /// `who`'s public key file.
    #[must_use]
    pub fn public_key(&self, who: &str) -> PathBuf {
        self.path(&format!("keys/{who}/key.pub.pem"))
    }

    /// `who`'s data directory.
    #[must_use]
    pub fn data(&self, who: &str) -> PathBuf {
        self.path(&format!("data/{who}"))
    }

    /// Keeps what `run` printed (see [`Site::printed`]) and gives it back.
    ///
    /// # Panics
    /// When another thread panicked while keeping a run.
    pub fn record(&self, run: Run) -> Run {
        self.printed
            .lock()
            .expect("the printed lock")
            .push(format!("{}\n{}", run.stdout, run.stderr));
        run
    }

    /// Everything the recorded runs printed, one entry per run.
    ///
    /// # Panics
    /// When another thread panicked while keeping a run.
    #[must_use]
    pub fn printed(&self) -> Vec<String> {
        self.printed.lock().expect("the printed lock").clone()
    }

    /// `peerscrip-ops <args>`, bounded by [`OPS_LIMIT`] and recorded.
    pub fn ops(&self, args: &[&str]) -> Run {
        let mut command = clean_command(&built().join("peerscrip-ops"));
        command.args(args);
        self.record(Run::within(command, OPS_LIMIT))
    }

    /// `peerscrip-ops keygen --json` into `keys/<who>`: its document (the new UID in
    /// `uid`).
    ///
    /// # Panics
    /// When the command fails.
    #[must_use]
    pub fn keygen(&self, who: &str) -> Value {
        let out = self.path(&format!("keys/{who}"));
        self.ops(&[
            "keygen",
            "--json",
            "--suite",
            self.suite.name(),
            "--out",
            path_str(&out),
        ])
        .ok()
    }

    /// `peerscrip-ops <command> --json <args>` signed with the operator's key
    /// (`keys/operator`) and sent over NATS at `nats_url` to the broker its pinned key
    /// names: the bank's (`bank`) or the peers' (`peers`) request. Its document.
    ///
    /// # Panics
    /// When the command fails.
    #[must_use]
    pub fn operator(&self, nats_url: &str, command: &str, args: &[&str]) -> Value {
        let (operator, broker) = (self.key("operator"), self.public_key("broker"));
        let connection = [
            command,
            "--json",
            "--nats-url",
            nats_url,
            "--suite",
            self.suite.name(),
            "--operator-key",
            path_str(&operator),
            "--broker-key",
            path_str(&broker),
        ];
        self.ops(&[&connection[..], args].concat()).ok()
    }

    /// The bank opens the account `pan` (`peerscrip-ops bank open-account` over NATS at
    /// `nats_url`), the PANSecret it draws written to `secret_out`.
    ///
    /// # Panics
    /// When the command fails or does not say the account was opened.
    pub fn open_account(&self, nats_url: &str, pan: &str, secret_out: &Path) {
        let args = [
            "open-account",
            "--pan",
            pan,
            "--secret-out",
            path_str(secret_out),
        ];
        let opened = self.operator(nats_url, "bank", &args);
        assert_eq!(opened["result"], "account_opened", "{opened}");
        assert_eq!(opened["pan"], pan, "{opened}");
    }

    /// The broker daemon on `data/broker` with `keys/broker`, its configuration
    /// `ops/deploy/broker.toml`, serving on `nats_url`; it takes the operator's requests
    /// when the deployment has an operator (`keys/operator`). Flags may follow.
    #[must_use]
    pub fn broker_command(&self, nats_url: &str) -> Command {
        let mut command = self.broker_command_as(nats_url, self.suite, &self.key("broker"));
        let operator = self.public_key("operator");
        if operator.exists() {
            command.arg("--operator-key").arg(operator);
        }
        command
    }

    /// The broker daemon on `data/broker` configured as [`Site::broker_command`], but in
    /// `suite` with the key `key` (and no operator): a start the data directory may refuse.
    #[must_use]
    pub fn broker_command_as(&self, nats_url: &str, suite: Suite, key: &Path) -> Command {
        let data = self.data("broker");
        daemon_command(
            "peerscrip-broker",
            "broker.toml",
            (suite, &data, key),
            nats_url,
        )
    }

    /// A broker of a highly available deployment (docs/adr/0017): the daemon of
    /// [`Site::broker_command`] on its own data directory `data/<who>`, with the one key and
    /// the one root key (`secrets/broker.root.key`, created by the first to start, as an
    /// operator copies it to each: README "Run it highly available") of the deployment's
    /// brokers, `--ha` as instance `who` with a lease of `lease_ttl_secs`.
    #[must_use]
    pub fn ha_broker_command(&self, nats_url: &str, who: &str, lease_ttl_secs: u64) -> Command {
        let root = self.path("secrets/broker.root.key");
        self.ha_broker_command_with_root(nats_url, who, lease_ttl_secs, &root)
    }

    /// [`Site::ha_broker_command`] with the root key `root`.
    #[must_use]
    pub fn ha_broker_command_with_root(
        &self,
        nats_url: &str,
        who: &str,
        lease_ttl_secs: u64,
        root: &Path,
    ) -> Command {
        let data = self.data(who);
        let key = self.key("broker");
        let mut command = daemon_command(
            "peerscrip-broker",
            "broker.toml",
            (self.suite, &data, &key),
            nats_url,
        );
        let operator = self.public_key("operator");
        if operator.exists() {
            command.arg("--operator-key").arg(operator);
        }
        command
            .arg("--root-key")
            .arg(root)
            .args(["--ha", "--ha-instance", who, "--ha-lease-ttl-secs"])
            .arg(lease_ttl_secs.to_string());
        command
    }

    /// The merchant daemon `who` on `data/<who>` with `keys/<who>`, its configuration
    /// `ops/deploy/merchant.toml` (its catalogue and PAN), pinning `keys/broker`, serving
    /// on `nats_url`. Flags may follow (its PANSecret, at least).
    #[must_use]
    pub fn merchant_command(&self, who: &str, nats_url: &str) -> Command {
        let (data, key) = (self.data(who), self.key(who));
        let node = (self.suite, data.as_path(), key.as_path());
        let mut command = daemon_command("peerscrip-merchant", "merchant.toml", node, nats_url);
        command.arg("--broker-key").arg(self.public_key("broker"));
        command
    }

    /// The merchant daemon of [`Site::merchant_command`], its PANSecret read from
    /// `pan_secret`, its admin listener on a free loopback port
    /// ([`crate::admin_http::admin_url`] finds it), started: it serves when this returns.
    ///
    /// # Panics
    /// As [`Daemon::start`].
    #[must_use]
    pub fn start_merchant(&self, who: &str, nats_url: &str, pan_secret: &Path) -> Daemon {
        let mut command = self.merchant_command(who, nats_url);
        command
            .arg("--pan-secret-file")
            .arg(pan_secret)
            .args(["--admin-listen", "127.0.0.1:0"]);
        Daemon::start("peerscrip-merchant", command, "merchant serving")
    }

    /// `peerscrip --json <args>` on the wallet `who` (the directory `<who>`, unlocked with
    /// the passphrase in `secrets/<who>.passphrase`) reaching the nodes at `nats_url`, run
    /// and recorded ([`Site::record`]).
    pub fn wallet(&self, who: &str, nats_url: &str, args: &[&str]) -> Run {
        let mut command = Site::wallet_command(
            &self.path(who),
            &self.path(&format!("secrets/{who}.passphrase")),
            nats_url,
        );
        command.args(args);
        self.record(Run::of(command))
    }

    /// The customer's `peerscrip --json` on the wallet directory `wallet` unlocked with
    /// `passphrase_file`, reaching the nodes at `nats_url`. Its command follows.
    #[must_use]
    pub fn wallet_command(wallet: &Path, passphrase_file: &Path, nats_url: &str) -> Command {
        let mut command = clean_command(&built().join("peerscrip"));
        command
            .arg("--json")
            .arg("--wallet-dir")
            .arg(wallet)
            .arg("--passphrase-file")
            .arg(passphrase_file)
            .args(["--nats-url", nats_url]);
        command
    }
}

/// The daemon `binary` configured by `ops/deploy/<config>` in the node's suite, on its
/// data directory, with its key, serving on `nats_url`.
fn daemon_command(
    binary: &str,
    config: &str,
    (suite, data, key): (Suite, &Path, &Path),
    nats_url: &str,
) -> Command {
    let mut command = clean_command(&built().join(binary));
    command
        .arg("--config")
        .arg(workspace().join("ops/deploy").join(config))
        .args(["--suite", suite.name(), "--nats-url", nats_url])
        .arg("--data-dir")
        .arg(data)
        .arg("--key")
        .arg(key);
    command
}

/// `path` as the `&str` an argument list takes.
///
/// # Panics
/// When it is not UTF-8 (a temporary directory's path always is).
#[must_use]
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
