//! `peerscrip-ops bank open-account|deposit|payout|balance` and `peerscrip-ops peers`: the
//! bank operator's and broker operator's commands against a running broker over NATS
//! (the [`admin`](crate::admin) client, ADR 0010).
//!
//! A new account's PANSecret is drawn here (128 random bits) unless one is given, and is
//! written to a file of mode 0600 for the bank to hand to its customer: it is a secret, so
//! it never reaches the terminal, a log or an error message.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use shared::bus::{BusError, NatsBus, NatsCredentials, NatsOptions, Subjects};
use shared::ids::{Pan, PanSecret};
use shared::wire::bodies::{AdminOp, AdminResult};
use shared::{Amount, KeyPair, PublicKey, Suite};
use zeroize::Zeroizing;

use customer_cli::cli::exit::Exit;
use customer_cli::cli::output::amount_json;

use crate::admin::{AdminClient, AdminError};
use crate::keygen::{read_passphrase, write_new};

/// How to reach the broker as its operator: over NATS (a running broker), or on the data
/// directory of a stopped one (`--stopped-broker`). Every flag is global: it may come
/// before or after the `bank` subcommand (`bank deposit … --json`).
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// Work on the data directory of a stopped broker, with its own configuration file
    /// (its key, data directory and suite), instead of sending requests to a running one.
    /// Refused while the broker runs (it holds its log's lock).
    #[arg(long, global = true, conflicts_with_all = ["operator_key", "broker_key", "nats_user"])]
    pub stopped_broker: Option<PathBuf>,
    /// The NATS server.
    #[arg(
        long,
        global = true,
        env = "PEERSCRIP_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// The NATS user (see `nats-config`); anonymous without it.
    #[arg(long, global = true, env = "PEERSCRIP_NATS_USER")]
    pub nats_user: Option<String>,
    /// The file holding the NATS user's password (first line).
    #[arg(
        long,
        global = true,
        env = "PEERSCRIP_NATS_PASSWORD_FILE",
        requires = "nats_user"
    )]
    pub nats_password_file: Option<PathBuf>,
    /// Subject prefix of the deployment.
    #[arg(long, global = true, default_value = shared::bus::DEFAULT_PREFIX)]
    pub prefix: String,
    /// Cryptographic suite of the deployment.
    #[arg(long, global = true, default_value_t = Suite::Modern)]
    pub suite: Suite,
    /// The operator's private key (PKCS#8 PEM; its public key is configured on the broker);
    /// required unless --stopped-broker ([`Connection::check`]).
    #[arg(long, global = true, env = "PEERSCRIP_OPERATOR_KEY")]
    pub operator_key: Option<PathBuf>,
    /// The passphrase of an encrypted operator key (first line of the file).
    #[arg(long, global = true, env = "PEERSCRIP_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// The broker's public key (PEM), pinned: answers signed by any other key are refused;
    /// required unless --stopped-broker.
    #[arg(long, global = true, env = "PEERSCRIP_BROKER_KEY")]
    pub broker_key: Option<PathBuf>,
    /// Seconds to wait for each attempt.
    #[arg(long, global = true, default_value_t = 10)]
    pub timeout: u64,
    /// TLS to NATS.
    #[command(flatten)]
    pub tls: crate::cli::NatsTlsArgs,
}

impl Connection {
    /// The flags a running broker needs, checked after parsing: clap cannot require a
    /// global flag (it would refuse it on the other side of the subcommand).
    ///
    /// # Errors
    /// The missing flags, for a usage error.
    pub fn check(&self) -> Result<(), String> {
        if self.stopped_broker.is_some() {
            return Ok(());
        }
        let missing: Vec<&str> = [
            ("--operator-key", self.operator_key.is_none()),
            ("--broker-key", self.broker_key.is_none()),
        ]
        .into_iter()
        .filter_map(|(flag, missing)| missing.then_some(flag))
        .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "the following required arguments were not provided: {} (or --stopped-broker)",
            missing.join(", ")
        ))
    }
}

/// What `bank` does.
#[derive(Debug, clap::Subcommand)]
pub enum BankCommand {
    /// Open a bank account. Its PANSecret is drawn and written to `--secret-out` (mode
    /// 0600) unless `--pan-secret-file` gives one.
    OpenAccount {
        /// The account number.
        #[arg(long)]
        pan: String,
        /// Where to write the drawn PANSecret, for the customer.
        #[arg(long, required_unless_present = "pan_secret_file")]
        secret_out: Option<PathBuf>,
        /// Use the PANSecret in this file (first line) instead of drawing one.
        #[arg(long, conflicts_with = "secret_out")]
        pan_secret_file: Option<PathBuf>,
    },
    /// Deposit money into an account (from outside the system).
    Deposit {
        /// The account number.
        #[arg(long)]
        pan: String,
        /// The amount, e.g. `12.34`.
        #[arg(long)]
        amount: Amount,
    },
    /// Pay money out of an account (limited by a merchant's outstanding VendorScrip).
    Payout {
        /// The account number.
        #[arg(long)]
        pan: String,
        /// The amount, e.g. `12.34`.
        #[arg(long)]
        amount: Amount,
    },
    /// Show an account's balance and what may be paid out.
    Balance {
        /// The account number.
        #[arg(long)]
        pan: String,
    },
}

/// Runs `bank <command>`, printing its result as text or (`json`) one JSON object.
pub fn run_bank(connection: &Connection, command: &BankCommand, json: bool) -> anyhow::Result<()> {
    let (op, secret) = match command {
        BankCommand::OpenAccount {
            pan,
            secret_out,
            pan_secret_file,
        } => {
            let secret = match pan_secret_file {
                Some(path) => PanSecret::new(&read_passphrase(path)?),
                None => PanSecret::generate(),
            };
            (
                AdminOp::OpenAccount { pan: Pan::new(pan) },
                Some((secret, secret_out.clone())),
            )
        }
        BankCommand::Deposit { pan, amount } => (
            AdminOp::Deposit {
                pan: Pan::new(pan),
                amount: *amount,
            },
            None,
        ),
        BankCommand::Payout { pan, amount } => (
            AdminOp::Payout {
                pan: Pan::new(pan),
                amount: *amount,
            },
            None,
        ),
        BankCommand::Balance { pan } => (AdminOp::Balance { pan: Pan::new(pan) }, None),
    };
    // The drawn secret is written before the request leaves: if the account is opened,
    // its secret is on disk; if the request is refused, the file says nothing true.
    if let Some((secret, Some(out))) = &secret {
        write_new(out, secret.expose(), 0o600)?;
    }
    let result = call(connection, op, secret.as_ref().map(|(s, _)| s))?;
    print(&result, json);
    Ok(())
}

/// Runs `peers`: every registered peer, page by page.
pub fn run_peers(connection: &Connection, json: bool) -> anyhow::Result<()> {
    let mut after = None;
    let mut all = Vec::new();
    loop {
        match call(connection, AdminOp::Peers { after }, None)? {
            AdminResult::Peers { peers, more } => {
                after = peers.last().map(|p| p.uid);
                all.extend(peers);
                if !more || after.is_none() {
                    break;
                }
            }
            other => anyhow::bail!("unexpected answer to a peer list: {other:?}"),
        }
    }
    if json {
        let peers: Vec<_> = all
            .iter()
            .map(|p| serde_json::json!({ "uid": p.uid.to_string(), "account": p.pan.redacted() }))
            .collect();
        println!("{}", serde_json::json!({ "ok": true, "peers": peers }));
    } else {
        println!("{} registered peers", all.len());
        for p in &all {
            println!("  {}  account {}", p.uid, p.pan.redacted());
        }
    }
    Ok(())
}

fn call(
    connection: &Connection,
    op: AdminOp,
    secret: Option<&PanSecret>,
) -> anyhow::Result<AdminResult> {
    match &connection.stopped_broker {
        Some(config) => on_stopped_broker(config, op, secret),
        None => over_nats(connection, op, secret),
    }
}

/// `op` on a stopped broker's file, through the same bank API the broker's administration
/// requests use (ADR 0010): each write one committed event, a refusal changes nothing.
fn on_stopped_broker(
    config: &std::path::Path,
    op: AdminOp,
    secret: Option<&PanSecret>,
) -> anyhow::Result<AdminResult> {
    use broker::config::{BrokerArgs, BrokerConfig};
    use clap::Parser as _;
    let args = BrokerArgs::try_parse_from([
        std::ffi::OsStr::new("peerscrip-broker"),
        std::ffi::OsStr::new("--config"),
        config.as_os_str(),
    ])?;
    let config = BrokerConfig::load(&args, &|name| std::env::var(name).ok())
        .context("reading the broker's configuration")?;
    let mut node = broker::daemon::open_node(&config).context("opening the stopped broker")?;
    let now = shared::runtime::system_clock();
    let refused = |e: broker::node::NodeError| -> anyhow::Error {
        match e {
            broker::node::NodeError::Bank(bank) => AdminError::Refused {
                code: bank.code(),
                message: bank.to_string(),
            }
            .into(),
            other => anyhow::Error::new(other),
        }
    };
    let balance = |node: &broker::node::BrokerNode, pan: &Pan| node.state().bank_balance(pan);
    let result = match op {
        AdminOp::OpenAccount { pan } => {
            let secret = secret.context("an account opening needs its PANSecret")?;
            node.open_account(&pan, secret, now).map_err(refused)?;
            AdminResult::AccountOpened { pan }
        }
        AdminOp::Deposit { pan, amount } => {
            node.deposit(&pan, amount, now).map_err(refused)?;
            AdminResult::Moved {
                balance: balance(&node, &pan),
                pan,
            }
        }
        AdminOp::Payout { pan, amount } => {
            node.payout(&pan, amount, now).map_err(refused)?;
            AdminResult::Moved {
                balance: balance(&node, &pan),
                pan,
            }
        }
        AdminOp::Balance { pan } => {
            if !node.state().pans.contains_key(&pan) {
                let e = broker::core::bank::BankError::PanUnknown(pan);
                return Err(refused(broker::node::NodeError::Bank(e)));
            }
            AdminResult::Balance {
                balance: balance(&node, &pan),
                available: broker::core::bank::available_for_payout(node.state(), &pan),
                pan,
            }
        }
        AdminOp::Peers { .. } => AdminResult::Peers {
            peers: node
                .state()
                .peers
                .iter()
                .map(|(uid, peer)| shared::wire::bodies::PeerInfo {
                    uid: *uid,
                    pan: peer.pan.clone(),
                })
                .collect(),
            more: false,
        },
    };
    node.close().context("closing the broker's log")?;
    Ok(result)
}

/// `op` sent to a running broker as an `AdminRequest` (ADR 0010).
fn over_nats(
    connection: &Connection,
    op: AdminOp,
    secret: Option<&PanSecret>,
) -> anyhow::Result<AdminResult> {
    let suite = connection.suite;
    let (Some(operator_key), Some(broker_key)) = (&connection.operator_key, &connection.broker_key)
    else {
        anyhow::bail!("--operator-key and --broker-key are needed to reach a running broker");
    };
    let passphrase = connection
        .passphrase_file
        .as_deref()
        .map(read_passphrase)
        .transpose()?;
    let pem = Zeroizing::new(
        std::fs::read_to_string(operator_key)
            .with_context(|| format!("reading {}", operator_key.display()))?,
    );
    let operator = KeyPair::from_pkcs8_pem(suite, &pem, passphrase.as_ref().map(|p| p.as_bytes()))
        .with_context(|| format!("reading the operator key {}", operator_key.display()))?;
    let broker_pem = std::fs::read_to_string(broker_key)
        .with_context(|| format!("reading {}", broker_key.display()))?;
    let broker = PublicKey::from_pem(suite, &broker_pem)
        .with_context(|| format!("reading the broker key {}", broker_key.display()))?;
    let credentials = match (&connection.nats_user, &connection.nats_password_file) {
        (Some(user), Some(file)) => Some(NatsCredentials::UserPassword {
            user: user.clone(),
            password: shared::SecretBytes::from_slice(read_passphrase(file)?.as_bytes()),
        }),
        (Some(_), None) => anyhow::bail!("--nats-user needs --nats-password-file"),
        _ => None,
    };
    let subjects = Subjects::new(connection.prefix.clone())?;
    let options = NatsOptions {
        inbox_prefix: Some(subjects.inbox_prefix(&operator.uid())),
        name: Some("peerscrip-ops".into()),
        connection_timeout: Some(Duration::from_secs(connection.timeout)),
        credentials,
        tls: connection.tls.tls(),
    };
    let timeout = Duration::from_secs(connection.timeout);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let bus = NatsBus::connect(&connection.nats_url, options)
            .await
            .map_err(AdminError::NoServer)?;
        let client = AdminClient::new(bus, subjects, operator, broker, timeout, 3);
        Ok(client.call(op, secret).await?)
    })
}

fn print(result: &AdminResult, json: bool) {
    let value = match result {
        AdminResult::AccountOpened { pan } => {
            serde_json::json!({ "ok": true, "result": "account_opened", "pan": pan.as_str() })
        }
        AdminResult::Moved { pan, balance } => serde_json::json!({
            "ok": true, "result": "recorded", "pan": pan.as_str(),
            "balance": amount_json(*balance),
        }),
        AdminResult::Balance {
            pan,
            balance,
            available,
        } => serde_json::json!({
            "ok": true, "result": "balance", "pan": pan.as_str(),
            "balance": amount_json(*balance), "available": amount_json(*available),
        }),
        AdminResult::Peers { peers, .. } => {
            serde_json::json!({ "ok": true, "result": "peers", "count": peers.len() })
        }
    };
    if json {
        println!("{value}");
        return;
    }
    match result {
        AdminResult::AccountOpened { pan } => println!("opened bank account {}", pan.as_str()),
        AdminResult::Moved { pan, balance } => {
            println!(
                "recorded; bank account {} now holds {balance}",
                pan.as_str()
            );
        }
        AdminResult::Balance {
            pan,
            balance,
            available,
        } => println!(
            "bank account {}: balance {balance}, available for payout {available}",
            pan.as_str()
        ),
        AdminResult::Peers { peers, .. } => println!("{} peers", peers.len()),
    }
}

/// The row of the exit-code table (`customer_cli::cli::exit::Exit`) of a failed `bank` or
/// `peers` command.
#[must_use]
pub fn exit_of(e: &AdminError) -> Exit {
    match e {
        AdminError::Refused { .. } => Exit::Refused,
        // The server answered but the configuration cannot be used with it: repeating the
        // command will not help, fixing the configuration will.
        AdminError::NoServer(BusError::Tls(_) | BusError::Credentials(_)) => Exit::Usage,
        // Nothing was sent, or no broker serves the subject: nothing happened.
        AdminError::NoServer(_)
        | AdminError::Unreachable {
            source: BusError::NoResponders,
            ..
        } => Exit::Unreachable,
        // Sent, and no answer came: a deposit or payout may have been recorded; the same
        // command again is answered from the broker's stored reply (protocol.md section 7).
        AdminError::Unreachable { .. } => Exit::TimedOut,
        AdminError::BadAnswer(_) | AdminError::Build(_) => Exit::Failed,
    }
}
