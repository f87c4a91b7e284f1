//! Command-line interface of `peerscrip-ops` (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use shared::Suite;

/// The peerscrip operator's tool.
#[derive(Debug, Parser)]
#[command(name = "peerscrip-ops", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What `peerscrip-ops` can do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an RSA key pair for a node or wallet, write it as PEM and print its UID.
    Keygen(KeygenArgs),
    /// Run every transaction of protocol.md section 6 among a broker, two merchants and two
    /// customers in this process (in-memory bus, real crypto, real redb files), then replay
    /// every log and check conservation. Exits 0 only if all of it held.
    Demo(DemoArgs),
    /// Write the NATS server configuration of a deployment: one user per node with a fresh
    /// password, each allowed only its own subjects (architecture.md "Transport").
    NatsConfig(NatsConfigArgs),
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
}

/// Arguments of `peerscrip-ops demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Cryptographic suite: `paper` (RSA-1024) or `modern` (RSA-2048).
    #[arg(long, default_value_t = Suite::Modern)]
    pub suite: Suite,
    /// Keep the nodes' redb files here (`broker/`, `merchant-<name>/`,
    /// `customer-<name>/`) instead of a temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print the steps and final balances as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
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
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keygen(args) => crate::keygen::run(&args),
        Command::Demo(args) => crate::demo::run(&crate::demo::Options {
            suite: args.suite,
            data_dir: args.data_dir,
            json: args.json,
        }),
        Command::NatsConfig(args) => {
            let subjects = shared::bus::Subjects::new(args.prefix)?;
            let written = crate::nats_config::write(
                &args.out,
                &subjects,
                args.suite,
                &args.broker,
                &args.merchants,
                &args.customers,
            )?;
            println!("wrote {} (server configuration)", written.config.display());
            for (name, path) in written.passwords {
                println!("wrote {} (password of {name})", path.display());
            }
            Ok(())
        }
    }
}
