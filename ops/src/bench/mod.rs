//! `peerscrip-ops bench`: measures, in one run on the machine it runs on, the RSA
//! primitives of each suite, the bounds of the nodes computed from them, and the broker
//! against its bound, each figure with its ratio to a bound measured in the same run (so
//! it reads without knowing the machine).
//!
//! - [`primitives`]: sign, verify, wrap, unwrap per second on one core, and the bounds of
//!   protocol.md 6.3 (the broker's two verifications a purchase; the merchant's unwrap,
//!   verification, two signatures and wrap);
//! - [`setup`]: the broker under measurement, durable in a temporary directory, with a
//!   merchant whose float a real 6.2 exchange paid;
//! - [`broker`]: 6.3 recorded by `BrokerNode::handle_batch` at batch sizes 1, 16, 256;
//! - [`group_commit`]: events/s at 1, 8 and 64 requests together;
//! - [`figures`]: the figures, as a table or one JSON document.
//!
//! Only the node's own work is timed: the peers' frames are signed beforehand.

pub mod broker;
pub mod figures;
pub mod group_commit;
pub mod primitives;
pub mod setup;

use std::io::IsTerminal as _;
use std::time::Duration;

use shared::{KeyPair, RsaBackend, Suite};

use figures::{Figure, Report};

/// Why the bench could not measure.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A primitive failed.
    #[error("crypto: {0}")]
    Crypto(#[from] shared::CryptoError),
    /// A frame could not be built or read.
    #[error("wire: {0}")]
    Wire(#[from] shared::wire::WireError),
    /// The broker's node failed.
    #[error("broker: {0}")]
    Broker(#[from] ::broker::node::NodeError),
    /// The merchant's node failed (setup).
    #[error("merchant: {0}")]
    Merchant(#[from] merchant::node::NodeError),
    /// The merchant's catalogue was refused (setup).
    #[error("catalogue: {0}")]
    Catalogue(#[from] merchant::core::catalogue::CatalogueError),
    /// The customer's wallet failed (setup).
    #[error("wallet: {0}")]
    Wallet(#[from] customer_cli::WalletError),
    /// The customer's request was not answered (setup).
    #[error("client: {0}")]
    Client(#[from] customer_cli::client::ClientError),
    /// The in-memory bus failed (setup).
    #[error("bus: {0}")]
    Bus(#[from] shared::bus::BusError),
    /// The broker's log could not be read.
    #[error("log: {0}")]
    Log(#[from] shared::events::LogError),
    /// The temporary directory.
    #[error("temporary directory: {0}")]
    Io(#[from] std::io::Error),
    /// A step of setup did not do what it must.
    #[error("setup: {0}")]
    Setup(String),
    /// The broker did not record every frame it was handed (a refusal or an extra event):
    /// the figure would not be of 6.3.
    #[error("the broker recorded {events} events for {expected} frames")]
    NotRecorded {
        /// One event per frame.
        expected: u64,
        /// What the log grew by.
        events: u64,
    },
    /// The broker's books did not hold after a run (section 5).
    #[error("the broker's books after the run: {0}")]
    Ledger(String),
}

/// Which suites to measure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Suites {
    /// RSA-1024, as in the paper.
    Paper,
    /// RSA-2048.
    Modern,
    /// Both, paper first.
    #[default]
    Both,
}

impl Suites {
    fn list(self) -> Vec<Suite> {
        match self {
            Suites::Paper => vec![Suite::Paper],
            Suites::Modern => vec![Suite::Modern],
            Suites::Both => vec![Suite::Paper, Suite::Modern],
        }
    }
}

/// What `peerscrip-ops bench` was asked for.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// About a minute instead of several.
    pub quick: bool,
    /// One JSON document instead of a table.
    pub json: bool,
    /// The suites.
    pub suites: Suites,
    /// Every measurement of this many purchases and each primitive timed briefly: a run
    /// that checks the command, not the machine (its tests).
    pub frames: Option<usize>,
}

/// How much each measurement takes.
#[derive(Clone, Debug)]
struct Scale {
    /// How long each primitive is timed.
    primitive: Duration,
    /// Purchases recorded at each of [`broker::BATCHES`].
    broker: [usize; 3],
    /// Purchases recorded at each of [`group_commit::CONCURRENT`] (two frames, two events
    /// each).
    group: [usize; 3],
    /// The parts each measurement is recorded in, taking turns with the other sizes.
    rounds: usize,
}

impl Scale {
    fn of(options: &Options) -> Scale {
        match (options.frames, options.quick) {
            (Some(n), _) => Scale {
                primitive: Duration::from_millis(20),
                // At least one purchase each, so that every figure is a rate of something.
                broker: [n.max(1); 3],
                group: [n.max(1); 3],
                rounds: 2,
            },
            (None, true) => Scale {
                primitive: Duration::from_millis(500),
                broker: [32, 256, 1024],
                group: [32, 128, 512],
                rounds: 4,
            },
            (None, false) => Scale {
                primitive: Duration::from_secs(2),
                broker: [128, 1024, 4096],
                group: [128, 512, 2048],
                rounds: 8,
            },
        }
    }

    /// Every purchase of one suite's run: the merchant's float must cover them all.
    fn purchases(&self) -> usize {
        self.broker.iter().chain(&self.group).sum()
    }
}

/// Progress lines on stderr, only when it is a terminal.
struct Progress(bool);

impl Progress {
    fn say(&self, what: &str) {
        if self.0 {
            eprintln!("bench: {what}");
        }
    }
}

/// Runs the bench and prints its report on stdout.
///
/// # Errors
/// A measurement that could not run ([`BenchError`]), or stdout.
pub fn run(options: &Options) -> anyhow::Result<()> {
    let progress = Progress(std::io::stderr().is_terminal());
    let report = actix_rt::System::new().block_on(measure(options, &progress))?;
    let mut out = std::io::stdout().lock();
    if options.json {
        figures::write_json(&mut out, &report)?;
    } else {
        figures::write_table(&mut out, &report)?;
    }
    Ok(())
}

/// Every figure of the run.
async fn measure(options: &Options, progress: &Progress) -> Result<Report, BenchError> {
    let scale = Scale::of(options);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut figures = vec![Figure::plain("cores", cores as f64, "cores")];
    let suites = options.suites.list();
    for &suite in &suites {
        figures.extend(measure_suite(suite, cores, &scale, progress).await?);
    }
    Ok(Report {
        suites: suites.iter().map(ToString::to_string).collect(),
        quick: options.quick,
        figures,
    })
}

/// The figures of one suite.
async fn measure_suite(
    suite: Suite,
    cores: usize,
    scale: &Scale,
    progress: &Progress,
) -> Result<Vec<Figure>, BenchError> {
    let mut figures = Vec::new();
    progress.say(&format!("{suite}: the primitives"));
    let keys = KeyPair::generate(suite)?;
    let rates = primitives::measure(&keys, scale.primitive)?;
    for (op, rate) in [
        ("sign", rates.sign),
        ("verify", rates.verify),
        ("wrap", rates.wrap),
        ("unwrap", rates.unwrap),
    ] {
        figures.push(Figure::plain(format!("{suite} {op}"), rate, "ops/s"));
    }
    // The other backends that serve the suite in this build (`rsa` beside aws-lc for the
    // modern suite), each primitive's rate with the suite's own as its bound: the ratio is
    // then the time on the suite's backend over the time on this one (docs/adr/0014).
    for backend in RsaBackend::ALL {
        if backend == suite.rsa_backend() || !backend.serves(suite) {
            continue;
        }
        progress.say(&format!("{suite}: the primitives on {backend}"));
        let other = primitives::measure_on(&keys, backend, scale.primitive)?;
        for (op, rate, own) in [
            ("sign", other.sign, rates.sign),
            ("verify", other.verify, rates.verify),
            ("wrap", other.wrap, rates.wrap),
            ("unwrap", other.unwrap, rates.unwrap),
        ] {
            figures.push(Figure::bounded(
                format!("{suite} {op} on {backend}"),
                rate,
                "ops/s",
                own,
                None,
            ));
        }
    }
    let broker_bound = rates.broker_bound(cores);
    figures.push(Figure::plain(
        format!("{suite} broker 6.3 bound"),
        broker_bound,
        "purchases/s",
    ));
    figures.push(Figure::plain(
        format!("{suite} merchant 6.3 bound"),
        rates.merchant_bound(cores),
        "purchases/s",
    ));

    progress.say(&format!("{suite}: the broker, a merchant's float by 6.2"));
    let purchases = u64::try_from(scale.purchases()).unwrap_or(u64::MAX);
    let float = purchases.saturating_mul(broker::PRICE);
    let mut site = setup::build(suite, float).await?;
    progress.say(&format!(
        "{suite}: broker 6.3, {:?} purchases in batches of {:?}",
        scale.broker,
        broker::BATCHES
    ));
    figures.extend(broker::figures(
        &mut site,
        suite,
        scale.broker,
        broker_bound,
        scale.rounds,
    )?);
    progress.say(&format!(
        "{suite}: group commit, {:?} purchases' frames {:?} at a time",
        scale.group,
        group_commit::CONCURRENT
    ));
    figures.extend(group_commit::figures(
        &mut site,
        suite,
        scale.group,
        scale.rounds,
    )?);
    Ok(figures)
}
