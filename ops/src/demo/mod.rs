//! `peerscrip-ops demo`: every transaction of protocol.md section 6 among real nodes in one
//! process, and the protections of sections 4 and 7 refusing what they must. The
//! broker and two merchants run in their actor shells (`shared::runtime`) over a
//! [`shared::bus::MemoryBus`], with real crypto and real redb files; two customers' wallets
//! drive them through `customer_cli::client`, exactly as the end-to-end tests of
//! `tests/tests/e2e_memory.rs` do.
//!
//! - [`data_dir`]: `--data-dir` must be new or empty; one holding a previous run is
//!   verified (every log's hash chain) and refused, never reused;
//! - [`setup`]: the bank, the nodes and the wallets (fresh keys and root keys);
//! - [`steps`]: 6.0 … 6.8 in order, each handed to the printer as it completes, with the
//!   [`protections`] in between: a spent scrip, a wrong CustomerSecret, an order costing
//!   more than the scrip, a replayed request, an expired scrip before its renewal;
//! - [`print`]: text printed step by step as it happens, or one JSON document at the end
//!   (`--json`); amounts as `12.34`, PANs redacted, never a secret;
//! - [`checks`]: what each protection asserts and, after the nodes stop, every log's chain,
//!   replay equality and conservation (section 5).
//!
//! The demo fails with [`DemoError`] (its exit code, from the table of `--help`, says
//! which way) unless every transaction completed and every check held. Expiry (6.8) is shown with
//! a short configured broker scrip lifetime and the shared clock moved forward, never by
//! waiting.

pub mod checks;
pub mod data_dir;
pub mod print;
pub mod protections;
pub mod setup;
pub mod steps;

use std::path::PathBuf;

use anyhow::Context as _;
use customer_cli::cli::exit::Exit;
use shared::Suite;

use checks::Check;

/// What `peerscrip-ops demo` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The deployment's suite.
    pub suite: Suite,
    /// Where the redb files go (`broker/`, `merchant-<name>/`, `customer-<name>/`), with
    /// the nodes' public keys (`keys/`); a temporary directory, removed at the end, when
    /// `None`.
    pub data_dir: Option<PathBuf>,
    /// One JSON document at the end instead of text step by step.
    pub json: bool,
}

/// The row of the exit-code table (`customer_cli::cli::exit::Exit`, `--help`) of an error
/// of [`run`]: a [`DemoError`]'s own, else failed (the demo could not run).
#[must_use]
pub fn exit_of(err: &anyhow::Error) -> Exit {
    err.downcast_ref::<DemoError>()
        .map_or(Exit::Failed, DemoError::exit)
}

/// How the demo fails other than by not being able to run at all (which is any other
/// error, exit code 1).
#[derive(Debug)]
pub enum DemoError {
    /// Checks did not hold: a protection that did not refuse as shown, a final check
    /// (chain, replay, conservation), or a previous run's log in `--data-dir` that does not
    /// verify. Exit 3, refused: a check did not hold.
    ChecksFailed(Vec<Check>),
    /// `--data-dir` is not empty; nothing was written. Exit 2: a bad argument.
    DataDirInUse {
        /// The directory.
        dir: PathBuf,
        /// What it holds, as a person reads it.
        holds: String,
    },
}

impl DemoError {
    /// The row of the exit-code table of this failure (`peerscrip-ops demo --help`).
    #[must_use]
    pub fn exit(&self) -> Exit {
        match self {
            DemoError::ChecksFailed(_) => Exit::Refused,
            DemoError::DataDirInUse { .. } => Exit::Usage,
        }
    }
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::ChecksFailed(failed) => {
                let named: Vec<String> = failed.iter().map(ToString::to_string).collect();
                match named.len() {
                    1 => write!(f, "check failed: {}", named.join("")),
                    n => write!(f, "{n} checks failed: {}", named.join("; ")),
                }
            }
            DemoError::DataDirInUse { dir, holds } => write!(
                f,
                "the data directory {} is not empty: it holds {holds}; the demo never reuses \
                 or overwrites files: pass a new or empty directory",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for DemoError {}

/// Runs the whole demo on a fresh actix system, printing as it goes (text) or at the end
/// (`--json`, whatever the outcome).
///
/// # Errors
/// [`DemoError`] for a failed check or a data directory in use; any other error when the
/// demo could not run (a node that did not start, a transaction that did not complete).
pub fn run(options: &Options) -> anyhow::Result<()> {
    let mut out = print::Printer::stdout(options.suite, options.json)?;
    let result = run_with(options, &mut out);
    out.finish(&result)?;
    result
}

fn run_with<W: std::io::Write>(
    options: &Options,
    out: &mut print::Printer<W>,
) -> anyhow::Result<()> {
    if let Some(dir) = &options.data_dir {
        data_dir::prepare(dir)?;
    }
    let system = actix_rt::System::new();
    system.block_on(run_async(options, out))
}

async fn run_async<W: std::io::Write>(
    options: &Options,
    out: &mut print::Printer<W>,
) -> anyhow::Result<()> {
    let mut world = setup::World::start(options)
        .await
        .context("setting up the bank, the nodes and the wallets")?;
    steps::run_all(&mut world, out).await?;
    let checks = checks::finish(world).await.context("closing the nodes")?;
    let failed = checks.failures();
    out.checks(checks)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(DemoError::ChecksFailed(failed).into())
    }
}
