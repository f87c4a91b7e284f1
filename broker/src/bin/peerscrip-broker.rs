//! `peerscrip-broker`: the broker daemon on NATS. Everything is in
//! `broker::config` (flags, environment, TOML file) and `broker::daemon` (the run). Exits
//! 0 after a clean stop on SIGINT or SIGTERM, 1 with the reason on standard error when it
//! cannot start.

use std::process::ExitCode;

use anyhow::Context as _;
use broker::config::{BrokerArgs, BrokerConfig};
use clap::Parser as _;

/// The allocator of every peerscrip binary (docs/adr/0018): the paper suite's RSA allocates
/// in every operation, on every worker of the pool at once.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let error: &(dyn std::error::Error + 'static) = e.as_ref();
            eprintln!(
                "peerscrip-broker: {}",
                shared::daemon::exit::describe(error)
            );
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = BrokerArgs::parse();
    let config = BrokerConfig::load(&args, &|name| std::env::var(name).ok())
        .context("invalid configuration")?;
    if args.check_config {
        print!("{}", config.describe());
        return Ok(());
    }
    shared::daemon::init_logging(config.node.log_format, config.node.log_level.as_deref())
        .map_err(anyhow::Error::msg)
        .context("cannot set up logging")?;
    actix_rt::System::new()
        .block_on(broker::daemon::run(config))
        .context("the broker could not run")?;
    Ok(())
}
