//! `peerscrip-ops demo`: every transaction of protocol.md section 6 among real nodes in one
//! process (issue 4). The broker and two merchants run in their actor shells
//! (`shared::runtime`) over a [`shared::bus::MemoryBus`], with real crypto and real redb
//! files; two customers' wallets drive them through `customer_cli::client`, exactly as the
//! end-to-end tests of `tests/tests/e2e_memory.rs` do.
//!
//! - [`setup`]: the bank, the nodes and the wallets (fresh keys and root keys);
//! - [`steps`]: 6.0 … 6.8, each printed as a person reads it;
//! - [`print`]: the text and JSON renderings (amounts as `12.34`, PANs redacted, never a
//!   secret);
//! - [`checks`]: after the nodes stop, every log's chain, replay equality and conservation
//!   (section 5): the demo fails, naming what failed, unless all of them hold.
//!
//! Expiry (6.8) is shown with a short configured broker scrip lifetime and the shared clock
//! moved forward, never by waiting.

pub mod checks;
pub mod print;
pub mod setup;
pub mod steps;

use std::path::PathBuf;

use anyhow::Context as _;
use shared::Suite;

/// What `peerscrip-ops demo` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The deployment's suite.
    pub suite: Suite,
    /// Where the redb files go (`broker/`, `merchant-<name>/`, `customer-<name>/`); a
    /// temporary directory, removed at the end, when `None`.
    pub data_dir: Option<PathBuf>,
    /// One JSON object instead of text.
    pub json: bool,
}

/// Runs the whole demo on a fresh actix system.
///
/// # Errors
/// Any transaction that did not complete, or any final check that failed (named).
pub fn run(options: &Options) -> anyhow::Result<()> {
    let system = actix_rt::System::new();
    let report = system.block_on(run_async(options))?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&print::json(&report))?);
    } else {
        print::text(&report);
    }
    report.checks.failures().map_or(Ok(()), |failed| {
        Err(anyhow::anyhow!("final checks failed: {failed}"))
    })
}

async fn run_async(options: &Options) -> anyhow::Result<print::Report> {
    let mut world = setup::World::start(options)
        .await
        .context("setting up the bank, the nodes and the wallets")?;
    let steps = steps::run_all(&mut world).await?;
    let checks = checks::finish(world).await.context("closing the nodes")?;
    Ok(print::Report {
        suite: options.suite,
        steps,
        checks,
    })
}
