//! The `peerscrip` command line, the customer's wallet (architecture.md
//! "Binaries and the user's path"): the library behind the thin `src/main.rs`, so every
//! command is testable. One file per command group in [`commands`]; the wallet directory
//! and its settings in [`config`]; the passphrase and PANSecret in [`secret_input`]; the
//! connection, the retries and the resume of pending transactions in [`session`]; human,
//! JSON and progress output in [`output`]; exit codes in [`exit`].
//!
//! Every command that talks to the network first resumes the transactions an earlier
//! command left pending ([`session::Session::reconcile_all`]), then does its own.

pub mod commands;
pub mod config;
pub mod exit;
pub mod output;
pub mod secret_input;
pub mod session;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::Value;
use shared::{Amount, Suite, TxId, Uid};

use config::{Settings, WalletDir, parse_timeout};
use exit::{CliError, exit_codes_help};
use output::{Done, Progress};
use session::{Resumed, Session};

/// The customer wallet of peerscrip (protocol.md section 6, the customer's side).
#[derive(Debug, Parser)]
#[command(
    name = "peerscrip",
    version,
    about = "The peerscrip customer wallet: buy scrip, shop, pay, get change, withdraw",
    long_about = "The peerscrip customer wallet: buy scrip, shop, pay, get change, withdraw.\n\n\
        Amounts are decimal with two places (12.34). Every command takes --json and then \
        prints one JSON document on stdout. A command interrupted or timed out leaves its \
        transaction pending in the wallet: `peerscrip status <tx>`, or the next command, \
        finishes it without paying twice.",
    after_help = exit_codes_help()
)]
pub struct Cli {
    /// The wallet directory (key, wallet file, config.toml); default ~/.peerscrip.
    #[arg(long, global = true, env = "PEERSCRIP_WALLET_DIR", value_name = "DIR")]
    pub wallet_dir: Option<PathBuf>,
    /// The NATS server (overrides config.toml; may carry the NATS user's credentials).
    #[arg(
        long,
        global = true,
        env = "PEERSCRIP_NATS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub nats_url: Option<String>,
    /// The wallet's NATS user (overrides config.toml; see `peerscrip-ops nats-config`).
    #[arg(long, global = true, env = "PEERSCRIP_NATS_USER", value_name = "USER")]
    pub nats_user: Option<String>,
    /// The file whose first line is the NATS user's password.
    #[arg(
        long,
        global = true,
        env = "PEERSCRIP_NATS_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub nats_password_file: Option<PathBuf>,
    /// A NATS `.creds` file instead of a user and password.
    #[arg(long, global = true, value_name = "FILE")]
    pub nats_creds_file: Option<PathBuf>,
    /// The PEM file of the CA that signed the NATS server's certificate: TLS is then
    /// required (overrides config.toml).
    #[arg(
        long,
        global = true,
        env = "PEERSCRIP_NATS_CA_FILE",
        value_name = "FILE"
    )]
    pub nats_ca_file: Option<PathBuf>,
    /// The wallet's TLS client certificate (PEM), for a server that verifies its clients.
    #[arg(
        long,
        global = true,
        env = "PEERSCRIP_NATS_CLIENT_CERT",
        value_name = "FILE"
    )]
    pub nats_client_cert: Option<PathBuf>,
    /// The private key (PEM) of --nats-client-cert.
    #[arg(
        long,
        global = true,
        env = "PEERSCRIP_NATS_CLIENT_KEY",
        value_name = "FILE"
    )]
    pub nats_client_key: Option<PathBuf>,
    /// The cryptographic suite (paper or modern); fixed at init.
    #[arg(long, global = true, value_name = "SUITE")]
    pub suite: Option<Suite>,
    /// How long to wait for each answer: seconds (10, 10s) or milliseconds (250ms).
    #[arg(long, global = true, value_parser = parse_timeout, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// A file whose first line is the key file's passphrase (else $PEERSCRIP_PASSPHRASE,
    /// else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The NATS credential flags given.
    #[must_use]
    pub fn credential_flags(&self) -> config::CredentialFlags<'_> {
        config::CredentialFlags {
            user: self.nats_user.as_deref(),
            password_file: self.nats_password_file.as_deref(),
            creds_file: self.nats_creds_file.as_deref(),
            ca_file: self.nats_ca_file.as_deref(),
            client_cert: self.nats_client_cert.as_deref(),
            client_key: self.nats_client_key.as_deref(),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a wallet: a new key pair (its private key encrypted with a passphrase of 8
    /// characters or more), the wallet file, and the broker's key pinned (compare the UID
    /// printed with the broker operator's).
    Init {
        /// The broker's public key (PEM), obtained out of band.
        #[arg(long, value_name = "PEM")]
        broker_key: PathBuf,
    },
    /// Link a bank account and register the wallet's key with the broker (6.0).
    Register {
        /// The bank account number.
        #[arg(long)]
        pan: String,
        /// A file whose first line is the PANSecret (else $PEERSCRIP_PAN_SECRET, else a
        /// prompt). Never stored: the wallet keeps only the account ID derived from it.
        #[arg(long, value_name = "FILE")]
        pan_secret_file: Option<PathBuf>,
    },
    /// What the wallet holds.
    Balance,
    /// BrokerScrip: buy it from the bank account (6.1), top it up (6.4), cash it in (6.6).
    #[command(subcommand)]
    BrokerScrip(BrokerScripCommand),
    /// A merchant's VendorScrip: buy it with BrokerScrip (6.2), top it up (6.5), cash it
    /// in (6.7).
    #[command(subcommand)]
    VendorScrip(VendorScripCommand),
    /// The merchants that registered a name at the broker: UID and name (docs/adr/0016).
    Merchants,
    /// A merchant's catalogue (its signed listing).
    Shop {
        /// The merchant's UID.
        merchant: Uid,
    },
    /// Buy an item with the merchant's VendorScrip, getting the change back (6.3).
    Buy {
        /// The merchant's UID.
        merchant: Uid,
        /// The item's id in the catalogue.
        item: String,
        /// How many.
        #[arg(long, default_value_t = 1)]
        qty: u64,
    },
    /// Renew expired scrip (6.8): of one producer, or every expired scrip held.
    Renew {
        /// The producer (the broker's or a merchant's UID).
        producer: Option<Uid>,
    },
    /// The wallet's history.
    History,
    /// Finish or reconcile a transaction and show where it stands.
    Status {
        /// The transaction id.
        tx: TxId,
    },
    /// Print the shell completion script of `peerscrip` on stdout.
    ///
    /// E.g. `peerscrip completions bash > ~/.local/share/bash-completion/completions/peerscrip`.
    /// Needs no wallet; --json does not apply.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `broker-scrip` subcommands.
#[derive(Debug, Subcommand)]
pub enum BrokerScripCommand {
    /// Buy BrokerScrip of this value from the bank account (6.1).
    Buy {
        /// The value, e.g. 40.00.
        amount: Amount,
    },
    /// Add this much from the bank account to the BrokerScrip held (6.4).
    TopUp {
        /// The value to add.
        amount: Amount,
    },
    /// Cash the BrokerScrip back into the bank account (6.6); all of it.
    Withdraw {
        /// The value expected (must be what the scrip holds).
        amount: Option<Amount>,
    },
}

/// `vendor-scrip` subcommands.
#[derive(Debug, Subcommand)]
pub enum VendorScripCommand {
    /// Exchange BrokerScrip for this value of the merchant's VendorScrip (6.2).
    Buy {
        /// The merchant's UID.
        merchant: Uid,
        /// The value.
        amount: Amount,
    },
    /// Add this much from the BrokerScrip to the merchant's VendorScrip held (6.5).
    TopUp {
        /// The merchant's UID.
        merchant: Uid,
        /// The value to add.
        amount: Amount,
    },
    /// Cash the merchant's VendorScrip back into the bank account (6.7); all of it.
    Withdraw {
        /// The merchant's UID.
        merchant: Uid,
        /// The value expected (must be what the scrip holds).
        amount: Option<Amount>,
    },
}

/// Parses `args` and runs the command; returns the exit code. A usage error is exit 2,
/// printed by clap, or as one JSON document when `--json` is among the arguments (help and
/// version print as usual, exit 0).
#[must_use]
pub fn run_from<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    match Cli::try_parse_from(&args) {
        Ok(cli) => run(cli),
        Err(e) => {
            let json = args.iter().any(|a| a == "--json");
            let informational = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            if json && !informational {
                output::emit(Err(CliError::Usage(exit::usage_message(&e))), true)
            } else {
                let _ = e.print();
                if informational {
                    exit::Exit::Done.code()
                } else {
                    exit::Exit::Usage.code()
                }
            }
        }
    }
}

/// Runs the command and prints its result; returns the exit code.
#[must_use]
pub fn run(cli: Cli) -> u8 {
    let json = cli.json;
    // No wallet, no runtime and no JSON: the script alone goes to stdout.
    if let Command::Completions { shell } = cli.command {
        return match commands::completions::print(shell) {
            Ok(()) => 0,
            Err(e) => output::emit(Err(e), json),
        };
    }
    let result = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(dispatch(cli)),
        Err(e) => Err(CliError::Failed(format!("starting the runtime: {e}"))),
    };
    output::emit(result, json)
}

/// The wallet directory, its config and the settings of a command.
fn settings_of(cli: &Cli) -> Result<(WalletDir, Settings), CliError> {
    let dir = WalletDir::resolve(cli.wallet_dir.as_deref())?;
    let config = dir.read_config()?;
    dir.make_private()?;
    let settings = Settings::resolve(
        &config,
        cli.suite,
        cli.nats_url.as_deref(),
        cli.timeout,
        &cli.credential_flags(),
    )?;
    output::warn_of_suite(settings.suite);
    Ok((dir, settings))
}

async fn dispatch(cli: Cli) -> Result<Done, CliError> {
    if let Command::Init { broker_key } = &cli.command {
        return commands::init::run(&cli, broker_key);
    }
    let (dir, settings) = settings_of(&cli)?;
    let wallet = session::open_wallet(
        &dir,
        &settings,
        cli.passphrase_file.as_deref(),
        &Progress::new(cli.json),
    )
    .await?;
    if matches!(cli.command, Command::Balance | Command::History) {
        let grace_secs = settings.renewal_grace_secs;
        // Local commands: they resume pending transactions when the network is there,
        // and still show the wallet when it is not.
        let (wallet, resumed, note) = if wallet.pending().next().is_some() {
            match Session::connect(wallet, settings.clone(), Progress::new(cli.json)).await {
                Ok(mut session) => {
                    let resumed = session.reconcile_all().await;
                    session.progress.finish();
                    (session.wallet, resumed, None)
                }
                Err(failed) => {
                    let (e, wallet) = *failed;
                    (
                        wallet,
                        Vec::new(),
                        Some(format!("pending transactions not resumed: {e}")),
                    )
                }
            }
        } else {
            (wallet, Vec::new(), None)
        };
        let done = match cli.command {
            Command::Balance => commands::balance::balance(&wallet, session::now(), grace_secs),
            _ => commands::history::history(&wallet),
        };
        return Ok(with_resumed(done, wallet.state(), &resumed, note));
    }
    let mut session = Session::connect(wallet, settings, Progress::new(cli.json))
        .await
        .map_err(|failed| failed.0)?;
    let resumed = match &cli.command {
        // `status` settles its own tx first, and the others after.
        Command::Status { .. } => Vec::new(),
        _ => session.reconcile_all().await,
    };
    let result = match cli.command {
        Command::Register {
            pan,
            pan_secret_file,
        } => commands::register::run(&mut session, pan, pan_secret_file.as_deref()).await,
        Command::BrokerScrip(c) => commands::broker_scrip::run(&mut session, c).await,
        Command::VendorScrip(c) => commands::vendor_scrip::run(&mut session, c).await,
        Command::Merchants => commands::merchants::run(&mut session).await,
        Command::Shop { merchant } => commands::shop::shop(&mut session, merchant).await,
        Command::Buy {
            merchant,
            item,
            qty,
        } => commands::shop::buy(&mut session, merchant, &item, qty).await,
        Command::Renew { producer } => commands::renew::run(&mut session, producer).await,
        Command::Status { tx } => commands::status::run(&mut session, tx).await,
        Command::Init { .. }
        | Command::Balance
        | Command::History
        | Command::Completions { .. } => Err(CliError::Failed("dispatched twice".to_owned())),
    };
    session.progress.finish();
    result.map(|done| with_resumed(done, session.wallet.state(), &resumed, None))
}

/// Adds what resuming earlier transactions did to a command's output, each merchant named
/// as every output names it (docs/adr/0016).
fn with_resumed(
    mut done: Done,
    state: &crate::core::WalletState,
    resumed: &[Resumed],
    note: Option<String>,
) -> Done {
    if resumed.is_empty() && note.is_none() {
        return done;
    }
    let mut lines = Vec::new();
    for r in resumed {
        lines.push(if r.still_pending {
            format!("resumed tx {}: still pending", r.tx)
        } else {
            format!("resumed tx {}: finished", r.tx)
        });
        for entry in &r.recorded {
            lines.push(commands::merchants::named_line(
                state,
                &format!("  {}", commands::history::describe(&entry.what)),
            ));
        }
    }
    if let Some(note) = &note {
        lines.push(note.clone());
    }
    lines.append(&mut done.lines);
    done.lines = lines;
    if let Value::Object(map) = &mut done.json {
        map.insert(
            "resumed".to_owned(),
            Value::Array(
                resumed
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "tx": r.tx.to_string(),
                            "pending": r.still_pending,
                            "recorded": r.recorded.iter().map(|e| {
                                let mut doc = commands::history::entry_json(e);
                                commands::merchants::name_in_json(state, &mut doc);
                                doc
                            }).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            ),
        );
        if let Some(note) = note {
            map.insert("note".to_owned(), Value::String(note));
        }
    }
    done
}
