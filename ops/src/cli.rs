//! Command-line interface of `peerscrip-ops` (clap derive), and its exit codes: the
//! table both binaries share (`customer_cli::cli::exit::Exit`), onto which
//! [`exit_code`] maps every error of every subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use customer_cli::cli::exit::{Exit, exit_codes_help};
use shared::Suite;

/// The peerscrip operator's tool.
#[derive(Debug, Parser)]
#[command(name = "peerscrip-ops", version, about, after_help = exit_codes_help())]
pub struct Cli {
    /// Print one JSON document on stdout instead of text, errors included (every command
    /// but `completions` and `man`, which write scripts and pages); before or after the
    /// subcommand.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses `args`, then checks what clap cannot (the flags a running broker needs,
    /// which are global and so cannot be `required`).
    ///
    /// # Errors
    /// A usage error.
    pub fn try_parse_checked<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::CommandFactory as _;
        let cli = Cli::try_parse_from(args)?;
        let connection = match &cli.command {
            Command::Bank { connection, .. } | Command::Peers { connection } => connection,
            _ => return Ok(cli),
        };
        connection.check().map_err(|missing| {
            Cli::command().error(clap::error::ErrorKind::MissingRequiredArgument, missing)
        })?;
        Ok(cli)
    }
}

/// What `peerscrip-ops` can do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an RSA key pair for a node or wallet, write it as PEM and print its UID.
    #[command(after_help = exit_codes_help())]
    Keygen(KeygenArgs),
    /// Run every transaction among a broker, two merchants and two customers, in this
    /// process, and check that every protection and every log holds.
    ///
    /// Every transaction of protocol.md section 6 (in-memory bus, real crypto, real redb
    /// files); then the protections refusing a spent scrip, a wrong CustomerSecret, an order
    /// above the scrip, a replayed request and an expired scrip; then every log replayed,
    /// conservation checked and the logs reconciled with each other. Exits 0 only if all of
    /// it held.
    #[command(after_help = exit_codes_help())]
    Demo(DemoArgs),
    /// Write the NATS server configuration of a deployment: one user per node.
    ///
    /// One user per node with a fresh password, each allowed only its own subjects
    /// (architecture.md "Transport").
    #[command(after_help = exit_codes_help())]
    NatsConfig(NatsConfigArgs),
    /// The bank operator's commands against a running broker.
    ///
    /// Open an account, deposit, pay out, show a balance (a signed, sealed administration
    /// request, ADR 0010).
    #[command(after_help = exit_codes_help())]
    Bank {
        #[command(flatten)]
        connection: crate::bank::Connection,
        #[command(subcommand)]
        command: crate::bank::BankCommand,
    },
    /// A running node's live view, from its admin listener.
    ///
    /// The broker's accounts, floats, live scrip, open exchanges and escrows and peers, or a
    /// merchant's sales, orders, live VendorScrip and what it owes the broker, read from
    /// `/status` on the daemon's `[admin] listen` address while it serves. Exit 3 when the
    /// token is refused, 4 when nothing answers, 5 when the node does not answer in time.
    #[command(after_help = exit_codes_help())]
    Status(crate::status::StatusArgs),
    /// Audit one node's log, reading only the log and public keys.
    ///
    /// Hash chain, postings, every signature kept as evidence, the ledger after every
    /// event, and the stored tables against a replay, and the named invariants of
    /// protocol.md sections 4–7 (scrip issued once, spent once, live spend, change,
    /// deadline, stored reply). A broker's, merchant's or wallet's log (or data directory).
    /// A progress bar on stderr for a long log. Exit 0 if all hold, 3 naming the first
    /// failing event, 2 naming a key the log needs and no option gave (a merchant's log
    /// brings none).
    #[command(after_help = exit_codes_help())]
    Audit {
        /// The log file, or the node's data directory.
        target: PathBuf,
        /// A directory of public keys (`*.pem`) to pin: the broker's, and for a merchant's
        /// log the customers' (a merchant's log holds no keys).
        #[arg(long)]
        keys: Option<PathBuf>,
        /// A broker's log or data directory: the keys it registered (6.0) are pinned too,
        /// e.g. the customers' for a merchant's log (its chain must verify).
        #[arg(long)]
        broker_log: Option<PathBuf>,
    },
    /// Reconcile the logs of a broker, its merchants and customer wallets with each other.
    ///
    /// Each merchant's float, every exchange, purchase, top-up and withdrawal on both
    /// sides, and each wallet's history. Exit 0 if all agree, 3 listing every mismatch.
    #[command(after_help = exit_codes_help())]
    Reconcile {
        /// The broker's log file or data directory.
        broker: PathBuf,
        /// Each merchant's log file or data directory.
        #[arg(required = true)]
        merchants: Vec<PathBuf>,
        /// A customer wallet's log file or directory (repeatable).
        #[arg(long = "wallet")]
        wallets: Vec<PathBuf>,
        /// The longest a transaction may stay in flight (a notice or report awaiting its
        /// Ack, a decision not acted on, a lapsed scrip a wallet still holds), measured
        /// against the logs' last event, before it is a `stuck` mismatch.
        #[arg(long, value_name = "SECS", default_value_t = crate::reconcile::DEFAULT_MAX_AGE_SECS)]
        max_age_secs: u64,
    },
    /// Settle a dispute about one transaction.
    ///
    /// Bundle every event of it from the parties' logs with its evidence and key chain, or
    /// verify a bundle offline and say what each party signed and did, and the verdict.
    #[command(after_help = exit_codes_help())]
    Dispute {
        #[command(subcommand)]
        command: DisputeCommand,
    },
    /// Publish every event of a node's log to a JetStream stream.
    ///
    /// In seq order, one message per event (its stored bytes), resuming after the last one
    /// the stream holds for the node: no gap and no duplicate across restarts. With
    /// --follow, keep polling the log.
    #[command(after_help = exit_codes_help())]
    Export(ExportArgs),
    /// The broker operator's list of registered peers (UID and account, redacted).
    #[command(after_help = exit_codes_help())]
    Peers {
        #[command(flatten)]
        connection: crate::bank::Connection,
    },
    /// Measure the performance figures on this machine against their bounds.
    ///
    /// In one run: each suite's RSA primitives, the nodes' bounds computed from them
    /// (protocol.md 6.3), the broker recording 6.3 in process (durable, batches of 1, 16,
    /// 256) and group commit (events/s at 1, 8, 64 requests together); each figure with its
    /// ratio to its bound and the target it must reach.
    #[command(after_help = exit_codes_help())]
    Bench(BenchArgs),
    /// Print the shell completion script of `peerscrip-ops` on stdout.
    ///
    /// E.g. `peerscrip-ops completions bash >
    /// ~/.local/share/bash-completion/completions/peerscrip-ops`. The wallet's is `peerscrip
    /// completions SHELL`. --json does not apply: the output is the script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages of peerscrip, peerscrip-ops, peerscrip-broker and
    /// peerscrip-merchant.
    ///
    /// One page per binary and one per subcommand (peerscrip-ops-bench.1,
    /// peerscrip-vendor-scrip-buy.1) into --out; each file written is printed. --json does
    /// not apply: the output is the pages.
    Man {
        /// The directory (created if missing; pages already there are replaced).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Arguments of `peerscrip-ops bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Fewer frames and shorter timings: about a minute. (`--json`: one document, every
    /// figure's name, value, unit, bound, ratio, target, met, instead of a table.)
    #[arg(long)]
    pub quick: bool,
    /// The suites to measure.
    #[arg(long, value_enum, default_value_t = crate::bench::Suites::Both)]
    pub suite: crate::bench::Suites,
    /// Every measurement of this many purchases, the primitives timed briefly: checks the
    /// command, not the machine (its tests).
    #[arg(long, hide = true)]
    pub frames: Option<usize>,
}

/// The two halves of `peerscrip-ops dispute`.
#[derive(Debug, Subcommand)]
pub enum DisputeCommand {
    /// Collect every event of `tx` from the logs, with its evidence and the broker's
    /// certificate of every signer's key, into one self-contained file.
    Bundle {
        /// The transaction (32 hex digits).
        tx: shared::TxId,
        /// The logs: node data directories or log files, the broker's among them.
        #[arg(long, num_args = 1.., required = true)]
        logs: Vec<PathBuf>,
        /// The bundle file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// List the transactions of one log (to find the one in dispute).
    Txs {
        /// A node data directory or log file.
        log: PathBuf,
    },
    /// Write the broker key a wallet pins as PEM (when the operator's key file is not at
    /// hand, as after the demo, which keeps no key files).
    PinnedKey {
        /// The wallet's directory or log file.
        wallet: PathBuf,
        /// The PEM file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a bundle with nothing but the broker's public key, and tell it.
    Verify {
        /// The bundle file.
        bundle: PathBuf,
        /// The broker's public key PEM, as pinned by every peer.
        #[arg(long)]
        broker_key: PathBuf,
    },
}

/// TLS to NATS for every command that connects (`bank`, `peers`, `export`): the
/// daemons' and the wallet's settings under the same names. Global, so a flag may come
/// before or after a subcommand.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct NatsTlsArgs {
    /// The PEM file of the CA that signed the NATS server's certificate: TLS is then
    /// required.
    #[arg(
        long,
        global = true,
        env = "PEERSCRIP_NATS_CA_FILE",
        value_name = "FILE"
    )]
    pub nats_ca_file: Option<PathBuf>,
    /// A TLS client certificate (PEM), for a server that verifies its clients; TLS is then
    /// required.
    #[arg(
        long,
        global = true,
        env = "PEERSCRIP_NATS_CLIENT_CERT",
        value_name = "FILE",
        requires = "nats_client_key"
    )]
    pub nats_client_cert: Option<PathBuf>,
    /// The private key (PEM) of --nats-client-cert.
    #[arg(
        long,
        global = true,
        env = "PEERSCRIP_NATS_CLIENT_KEY",
        value_name = "FILE",
        requires = "nats_client_cert"
    )]
    pub nats_client_key: Option<PathBuf>,
}

impl NatsTlsArgs {
    /// The TLS the flags ask for; `None` when none is given.
    #[must_use]
    pub fn tls(&self) -> Option<shared::bus::NatsTls> {
        let client_cert = match (&self.nats_client_cert, &self.nats_client_key) {
            (Some(cert), Some(key)) => Some(shared::bus::ClientCert {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        (self.nats_ca_file.is_some() || client_cert.is_some()).then(|| shared::bus::NatsTls {
            ca_file: self.nats_ca_file.clone(),
            client_cert,
        })
    }
}

/// Arguments of `peerscrip-ops export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The log file, or the node's data directory.
    pub target: PathBuf,
    /// The NATS server (with JetStream enabled).
    #[arg(long, env = "PEERSCRIP_NATS_URL")]
    pub nats_url: String,
    /// The NATS user (see `nats-config`); anonymous without it.
    #[arg(long, env = "PEERSCRIP_NATS_USER", requires = "nats_password_file")]
    pub nats_user: Option<String>,
    /// The file holding the NATS user's password (first line).
    #[arg(long, env = "PEERSCRIP_NATS_PASSWORD_FILE", requires = "nats_user")]
    pub nats_password_file: Option<PathBuf>,
    /// TLS to NATS.
    #[command(flatten)]
    pub tls: NatsTlsArgs,
    /// The JetStream stream; created on `<subject prefix>.>` if missing.
    #[arg(long)]
    pub stream: String,
    /// Subject prefix: each node's events go to `<prefix>.<node kind>.<uid>`.
    #[arg(long = "subject", default_value = crate::export::DEFAULT_SUBJECT_PREFIX)]
    pub subject_prefix: String,
    /// The node's UID, when its data directory records none (no `node.toml`).
    #[arg(long)]
    pub uid: Option<shared::Uid>,
    /// Keep polling the log for new events (until killed; a restart resumes).
    #[arg(long)]
    pub follow: bool,
    /// How often --follow polls the log, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub poll_ms: u64,
}

/// Arguments of `peerscrip-ops nats-config`.
#[derive(Debug, clap::Args)]
pub struct NatsConfigArgs {
    /// Directory to write `nats-server.conf` and `credentials/<name>.password` into
    /// (mode 0600; existing files are never overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Subject prefix of the deployment.
    #[arg(long, default_value = shared::bus::DEFAULT_PREFIX)]
    pub prefix: String,
    /// Cryptographic suite of the keys.
    #[arg(long, default_value_t = Suite::Modern)]
    pub suite: Suite,
    /// The broker's public key PEM (`key.pub.pem` from `keygen`).
    #[arg(long)]
    pub broker: PathBuf,
    /// A merchant, as NAME=PUBLIC_KEY_PEM (repeatable).
    #[arg(long = "merchant")]
    pub merchants: Vec<crate::nats_config::Named>,
    /// A customer, as NAME=PUBLIC_KEY_PEM (repeatable).
    #[arg(long = "customer")]
    pub customers: Vec<crate::nats_config::Named>,
    /// Let the broker and the merchants export their logs live to this JetStream stream
    /// (the daemons' `export_stream`).
    #[arg(long)]
    pub export_stream: Option<String>,
    /// The export subject prefix the daemons use (`export_subject_prefix`).
    #[arg(long, default_value = shared::export::DEFAULT_SUBJECT_PREFIX)]
    pub export_subject_prefix: String,
    /// The server's TLS certificate (PEM): the configuration then requires TLS of every
    /// client (its `tls {}` block); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The CA of the clients' certificates: every client must then present one signed by
    /// it (`verify: true`); needs --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Arguments of `peerscrip-ops demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Cryptographic suite: `paper` (RSA-1024) or `modern` (RSA-2048).
    #[arg(long, default_value_t = Suite::Modern)]
    pub suite: Suite,
    /// Keep the nodes' redb files here (`broker/`, `merchant-<name>/`,
    /// `customer-<name>/`), and their public keys in `keys/<node>.pem` (for `audit --keys`),
    /// instead of a temporary directory. It must be new or empty: a directory holding a
    /// previous run is verified (every log's hash chain) and refused.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// The first error of type `T` in `err`'s chain (a typed error may come wrapped in
/// context).
fn find<T: std::error::Error + Send + Sync + 'static>(err: &anyhow::Error) -> Option<&T> {
    err.downcast_ref::<T>()
        .or_else(|| err.chain().find_map(|e| e.downcast_ref::<T>()))
}

/// The row of the exit-code table ([`Exit`], the same for `peerscrip` and every
/// `peerscrip-ops` command) for an error of [`run`]: refused (a node's refusal, or a check
/// of the logs that did not hold), unreachable, timed out, usage or configuration, and
/// [`Exit::Failed`] for anything else.
#[must_use]
pub fn exit_of(err: &anyhow::Error) -> Exit {
    if let Some(e) = find::<crate::admin::AdminError>(err) {
        return crate::bank::exit_of(e);
    }
    if let Some(e) = find::<crate::export::ExportError>(err) {
        return crate::export::exit_of(e);
    }
    if let Some(e) = find::<crate::demo::DemoError>(err) {
        return e.exit();
    }
    if let Some(crate::audit::AuditError::MissingKey { .. }) = find(err) {
        return Exit::Usage;
    }
    if let Some(e) = find::<crate::status::StatusError>(err) {
        return e.exit();
    }
    if find::<crate::audit::Failed>(err).is_some()
        || find::<crate::reconcile::Disagreed>(err).is_some()
        || find::<crate::dispute::BundleError>(err).is_some()
        || find::<crate::dispute::Contradicted>(err).is_some()
    {
        return Exit::Refused;
    }
    Exit::Failed
}

/// The process exit code for an error of [`run`] ([`exit_of`]).
#[must_use]
pub fn exit_code(err: &anyhow::Error) -> u8 {
    exit_of(err).code()
}

/// Whether a failed command already printed its `--json` document (a report whose `ok`
/// is false: an audit finding, reconcile mismatches, a contradicted dispute), so that no
/// second document follows it on stdout. The demo prints its document whatever the
/// outcome ([`main_with`]).
#[must_use]
pub fn reported_in_json(err: &anyhow::Error) -> bool {
    find::<crate::audit::Failed>(err).is_some()
        || find::<crate::reconcile::Disagreed>(err).is_some()
        || find::<crate::dispute::Contradicted>(err).is_some()
}

/// The `--json` error document of a failed command: the keys of the wallet's
/// (`customer_cli::cli::exit::error_json`), its message the whole chain on one line.
#[must_use]
pub fn error_json(err: &anyhow::Error) -> serde_json::Value {
    customer_cli::cli::exit::error_json(exit_of(err), &shared::daemon::exit::describe(err.as_ref()))
}

/// Parses the process's arguments and runs the command; returns the exit code. Errors go
/// to stderr as one line, or with `--json` as one document on stdout ([`error_json`]); a
/// usage error is clap's message (exit 2), or that document when `--json` is among the
/// arguments (help and version print as usual, exit 0).
#[must_use]
pub fn main_with<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_checked(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let informational = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            if informational {
                let _ = e.print();
                return Exit::Done.code();
            }
            if args.iter().any(|a| a == "--json") {
                let message = customer_cli::cli::exit::usage_message(&e);
                println!(
                    "{}",
                    customer_cli::cli::exit::error_json(Exit::Usage, &message)
                );
            } else {
                let _ = e.print();
            }
            return Exit::Usage.code();
        }
    };
    let json = cli.json;
    let demo = matches!(cli.command, Command::Demo(_));
    match run(cli) {
        Ok(()) => Exit::Done.code(),
        Err(err) => {
            if json && !demo && !reported_in_json(&err) {
                println!("{}", error_json(&err));
            } else {
                // The whole chain on one line, each cause once (many messages already
                // carry their cause); no secret is ever part of it.
                let line = shared::daemon::exit::describe(err.as_ref());
                eprintln!("peerscrip-ops: error: {line}");
            }
            exit_code(&err)
        }
    }
}

/// Arguments of `peerscrip-ops keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Cryptographic suite: `paper` (RSA-1024, as in the paper) or `modern` (RSA-2048).
    #[arg(long, default_value_t = Suite::Modern)]
    pub suite: Suite,
    /// Directory to write `key.pem` (private, PKCS#8) and `key.pub.pem` (SPKI) into.
    #[arg(long)]
    pub out: PathBuf,
    /// Encrypt the private key with the passphrase in this file (first line; scrypt +
    /// AES-256-CBC, PKCS#8). Without it the private key is written unencrypted, mode 0600.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Modulus size for the `modern` suite: 2048 (default) or 3072. `paper` is always 1024.
    #[arg(long)]
    pub bits: Option<usize>,
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    match cli.command {
        Command::Keygen(args) => crate::keygen::run(&args, json),
        Command::Demo(args) => crate::demo::run(&crate::demo::Options {
            suite: args.suite,
            data_dir: args.data_dir,
            json,
        }),
        Command::NatsConfig(args) => {
            let subjects = shared::bus::Subjects::new(args.prefix)?;
            let tls = match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => Some(crate::nats_config::ServerTls::new(
                    cert,
                    key,
                    args.tls_client_ca.as_deref(),
                )?),
                _ => None,
            };
            let written = crate::nats_config::write_with_tls(
                &args.out,
                &subjects,
                args.suite,
                &args.broker,
                (&args.merchants, &args.customers),
                args.export_stream
                    .map(|stream| {
                        crate::nats_config::ExportGrant::new(stream, args.export_subject_prefix)
                    })
                    .transpose()?
                    .as_ref(),
                tls.as_ref(),
            )?;
            if json {
                let passwords: Vec<_> = written
                    .passwords
                    .iter()
                    .map(|(name, path)| {
                        serde_json::json!({"name": name, "file": path.display().to_string()})
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "ok": true,
                        "config": written.config.display().to_string(),
                        "tls": tls.is_some(),
                        "passwords": passwords,
                    })
                );
                return Ok(());
            }
            let requiring = if tls.is_some() { ", TLS required" } else { "" };
            println!(
                "wrote {} (server configuration{requiring})",
                written.config.display()
            );
            for (name, path) in written.passwords {
                println!("wrote {} (password of {name})", path.display());
            }
            Ok(())
        }
        Command::Bank {
            connection,
            command,
        } => crate::bank::run_bank(&connection, &command, json),
        Command::Peers { connection } => crate::bank::run_peers(&connection, json),
        Command::Export(args) => crate::export::run(args, json),
        Command::Status(args) => Ok(crate::status::run(&args, json)?),
        Command::Bench(args) => crate::bench::run(&crate::bench::Options {
            quick: args.quick,
            json,
            suites: args.suite,
            frames: args.frames,
        }),
        Command::Dispute { command } => crate::dispute::run(&command, json),
        Command::Completions { shell } => crate::completions::print(shell),
        Command::Man { out } => {
            for page in crate::man::write_all(&out)? {
                println!("wrote {}", page.display());
            }
            Ok(())
        }
        Command::Reconcile {
            broker,
            merchants,
            wallets,
            max_age_secs,
        } => {
            let options = crate::reconcile::Options { max_age_secs };
            let report = crate::reconcile::reconcile_with(&broker, &merchants, &wallets, options)?;
            crate::reconcile::print(&report, json);
            if report.ok() {
                Ok(())
            } else {
                Err(crate::reconcile::Disagreed(report.mismatches.len()).into())
            }
        }
        Command::Audit {
            target,
            keys,
            broker_log,
        } => {
            // The progress bar goes to stderr, and never with --json.
            let options = crate::audit::Options {
                keys,
                broker_log,
                progress: !json,
                pinned: Vec::new(),
            };
            let report = crate::audit::audit_with(&target, &options)?;
            crate::audit::print(&report, json);
            match &report.finding {
                None => Ok(()),
                Some(finding) => Err(crate::audit::Failed(finding.clone()).into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// The modern suite is the default of every command that takes one (the paper suite
    /// only when asked for: README "Running on a network you do not trust").
    #[test]
    fn the_modern_suite_is_the_default() {
        let parse = |args: &[&str]| Cli::try_parse_checked(args).unwrap().command;
        let Command::Keygen(keygen) = parse(&["peerscrip-ops", "keygen", "--out", "k"]) else {
            panic!("not keygen");
        };
        assert_eq!(keygen.suite, Suite::Modern);
        let Command::Demo(demo) = parse(&["peerscrip-ops", "demo"]) else {
            panic!("not demo");
        };
        assert_eq!(demo.suite, Suite::Modern);
        let Command::NatsConfig(config) = parse(&[
            "peerscrip-ops",
            "nats-config",
            "--out",
            "o",
            "--broker",
            "b.pem",
        ]) else {
            panic!("not nats-config");
        };
        assert_eq!(config.suite, Suite::Modern);
        let Command::Peers { connection } = parse(&[
            "peerscrip-ops",
            "peers",
            "--operator-key",
            "o.pem",
            "--broker-key",
            "b.pem",
        ]) else {
            panic!("not peers");
        };
        assert_eq!(connection.suite, Suite::Modern);
    }

    /// `bank`'s flags (`--json`, the connection, TLS) are taken before or after its
    /// subcommand; the keys a running broker needs are still required, by name.
    #[test]
    fn bank_flags_may_follow_the_subcommand() {
        let flags = [
            "--json",
            "--operator-key",
            "op.pem",
            "--broker-key",
            "broker.pem",
            "--nats-ca-file",
            "ca.pem",
        ];
        let before = [
            &["peerscrip-ops", "bank"][..],
            &flags,
            &["balance", "--pan", "P"],
        ]
        .concat();
        let after = [
            &["peerscrip-ops", "bank", "balance", "--pan", "P"][..],
            &flags,
        ]
        .concat();
        for args in [before, after] {
            let cli = Cli::try_parse_checked(&args).unwrap();
            let Command::Bank {
                connection,
                command: crate::bank::BankCommand::Balance { pan },
            } = cli.command
            else {
                panic!("not a bank balance: {args:?}");
            };
            assert!(cli.json, "{args:?}");
            assert_eq!(pan, "P");
            assert_eq!(connection.operator_key, Some(PathBuf::from("op.pem")));
            let tls = connection.tls.tls().unwrap();
            assert_eq!(tls.ca_file, Some(PathBuf::from("ca.pem")));
            assert_eq!(tls.client_cert, None);
        }
        let e =
            Cli::try_parse_checked(["peerscrip-ops", "bank", "balance", "--pan", "P", "--json"])
                .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(
            e.to_string().contains("--operator-key, --broker-key"),
            "{e}"
        );
        let e = Cli::try_parse_checked(["peerscrip-ops", "peers", "--broker-key", "b.pem"])
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("--operator-key (or --stopped-broker)"),
            "{e}"
        );
        // A stopped broker needs neither.
        Cli::try_parse_checked([
            "peerscrip-ops",
            "bank",
            "balance",
            "--pan",
            "P",
            "--stopped-broker",
            "b.toml",
        ])
        .unwrap();
        // A client certificate comes with its key.
        let e = Cli::try_parse_checked([
            "peerscrip-ops",
            "peers",
            "--stopped-broker",
            "b.toml",
            "--nats-client-cert",
            "c.pem",
        ])
        .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }
}
