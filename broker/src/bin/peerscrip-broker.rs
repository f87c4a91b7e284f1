//! `peerscrip-broker`: the broker daemon on NATS (issue 5). Everything is in
//! `broker::config` (flags, environment, TOML file) and `broker::daemon` (the run).

use anyhow::Context as _;
use broker::config::{BrokerArgs, BrokerConfig};
use clap::Parser as _;

fn main() -> anyhow::Result<()> {
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
    actix_rt::System::new().block_on(broker::daemon::run(config))?;
    Ok(())
}
