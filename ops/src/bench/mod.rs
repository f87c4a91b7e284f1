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
//! - [`shell`]: 6.3 recorded by the broker in its actor shell on the in-memory bus, 64
//!   requests in flight, and 512 (an open load: requests wait while a batch commits);
//! - [`merchant`]: 6.3 sold by `MerchantNode::handle_batch`, a batch of 256 a commit;
//! - [`merchant_shell`]: the same through the merchant's actor shell beside the broker's,
//!   64 requests in flight;
//! - [`exchange`]: 6.2 step 3 decided by `BrokerNode::handle_batch`, against the
//!   broker's crypto in 6.2;
//! - [`group_commit`]: events/s at 1, 8 and 64 requests together;
//! - [`log_size`]: the broker's 6.3 at batch 256 with an empty log and with a million
//!   events already in it ([`fill`] builds that log), and after tens of thousands of
//!   purchases against its first ones;
//! - [`nats`]: one purchase end to end over a real `nats-server`, p50 and p99;
//! - [`ha`]: the broker's shell in HA mode, each commit on a stream of three replicas on
//!   three local `nats-server`s, against the single process beside it: throughput and
//!   one request's p50 (docs/adr/0017);
//! - [`figures`]: the figures, as a table or one JSON document.
//!
//! In process, only the node's own work is timed: the peers' frames are signed and sealed
//! beforehand. End to end over `nats-server`, everything a purchase takes is.

pub mod broker;
pub mod exchange;
pub mod figures;
pub mod fill;
pub mod group_commit;
pub mod ha;
pub mod log_size;
pub mod merchant;
pub mod merchant_shell;
pub mod nats;
pub mod primitives;
pub mod setup;
pub mod shell;

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
    Merchant(#[from] ::merchant::node::NodeError),
    /// The merchant's catalogue was refused (setup).
    #[error("catalogue: {0}")]
    Catalogue(#[from] ::merchant::core::catalogue::CatalogueError),
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
    /// The large log could not be built.
    #[error("filling the log: {0}")]
    Fill(#[from] fill::BuildError),
    /// The HA figures' stream or lease (docs/adr/0017).
    #[error("the replicated log: {0}")]
    Ha(#[from] shared::daemon::ha::HaError),
    /// The bench's `nats-server` did not start.
    #[error("nats-server: {0}")]
    Nats(String),
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
    /// Purchases recorded through the broker's actor shell ([`shell`]).
    shell: usize,
    /// Purchases sold by the merchant's node ([`merchant`]).
    merchant: usize,
    /// Purchases sold through the merchant's shell ([`merchant_shell`]).
    merchant_shell: usize,
    /// Exchanges (6.2) decided by the broker's node ([`exchange`]): a customer each.
    exchanges: usize,
    /// Purchases recorded at each of [`group_commit::CONCURRENT`] (two frames, two events
    /// each).
    group: [usize; 3],
    /// Events already in the full log of [`log_size`].
    log_events: u64,
    /// Purchases recorded on each of [`log_size`]'s two brokers.
    log_purchases: usize,
    /// Purchases recorded one after the other by [`log_size::history`], and its window.
    history: (usize, usize),
    /// Purchases end to end over `nats-server` ([`nats`]), after its warm-up.
    nats: usize,
    /// Purchases through the broker's shell in each mode of [`ha`], HA and single-process:
    /// with [`shell::IN_FLIGHT`] outstanding, and one request at a time.
    ha: (usize, usize),
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
                shell: n.max(1),
                merchant: n.max(1),
                exchanges: n.max(1),
                merchant_shell: n.max(1),
                group: [n.max(1); 3],
                log_events: 2_000,
                log_purchases: n.max(1),
                history: (n.max(2), n.max(2) / 2),
                nats: n.max(1),
                ha: (n.max(1), n.max(1)),
                rounds: 2,
            },
            (None, true) => Scale {
                primitive: Duration::from_millis(500),
                broker: [32, 256, 1024],
                shell: 1024,
                merchant: 512,
                exchanges: 128,
                merchant_shell: 256,
                group: [32, 128, 512],
                log_events: 200_000,
                log_purchases: 1024,
                history: (8192, 2048),
                nats: 200,
                ha: (1024, 100),
                rounds: 4,
            },
            (None, false) => Scale {
                primitive: Duration::from_secs(2),
                broker: [128, 1024, 4096],
                shell: 4096,
                merchant: 2048,
                exchanges: 512,
                merchant_shell: 1024,
                group: [128, 512, 2048],
                log_events: 1_000_000,
                log_purchases: 4096,
                history: (32_768, 8192),
                nats: 1000,
                ha: (4096, 500),
                rounds: 8,
            },
        }
    }

    /// Every purchase of one suite's run: the merchant's float must cover them all.
    fn purchases(&self) -> usize {
        self.broker.iter().chain(&self.group).sum::<usize>()
            + 2 * self.shell
            + self.merchant
            + self.merchant_shell
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
    figures.push(Figure::plain(
        format!("{suite} broker 6.2 bound"),
        rates.exchange_bound(cores),
        "exchanges/s",
    ));

    progress.say(&format!("{suite}: the broker, a merchant's float by 6.2"));
    let purchases = u64::try_from(scale.purchases()).unwrap_or(u64::MAX);
    let float = purchases.saturating_mul(broker::PRICE);
    let mut site = setup::build(suite, float, 0).await?;
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
    let mut site = site;
    for in_flight in [shell::IN_FLIGHT, shell::OPEN_LOAD] {
        progress.say(&format!(
            "{suite}: broker 6.3 in its shell, {} purchases, {in_flight} in flight",
            scale.shell,
        ));
        let figure;
        (site, figure) = shell::figure(site, suite, scale.shell, in_flight, broker_bound).await?;
        figures.push(figure);
    }
    progress.say(&format!(
        "{suite}: merchant 6.3, {} purchases in batches of {}",
        scale.merchant,
        merchant::BATCH
    ));
    figures.push(merchant::figure(
        &mut site,
        suite,
        scale.merchant,
        rates.merchant_bound(cores),
    )?);
    progress.say(&format!(
        "{suite}: merchant 6.3 in its shell, {} purchases, {} in flight",
        scale.merchant_shell,
        merchant_shell::IN_FLIGHT
    ));
    let (mut site, figure) = merchant_shell::figure(
        site,
        suite,
        scale.merchant_shell,
        rates.merchant_bound(cores),
    )
    .await?;
    figures.push(figure);
    progress.say(&format!(
        "{suite}: broker 6.2, {} exchanges (a customer each) in batches of up to {}",
        scale.exchanges,
        exchange::BATCH
    ));
    figures.push(exchange::figure(
        &mut site,
        suite,
        scale.exchanges,
        rates.exchange_bound(cores),
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
    drop(site);
    progress.say(&format!(
        "{suite}: broker 6.3 with an empty log and with {} events in it ({} purchases each)",
        scale.log_events, scale.log_purchases
    ));
    figures.extend(
        log_size::figures(suite, scale.log_events, scale.log_purchases, scale.rounds).await?,
    );
    let (purchases, window) = scale.history;
    progress.say(&format!(
        "{suite}: broker 6.3, the last {window} of {purchases} purchases against the first"
    ));
    figures.push(log_size::history(suite, purchases, window).await?);
    progress.say(&format!(
        "{suite}: {} purchases end to end over nats-server",
        scale.nats
    ));
    if let Some(latency) = nats::figures(suite, scale.nats).await? {
        figures.extend(latency);
    }
    let (throughput, one) = scale.ha;
    progress.say(&format!(
        "{suite}: broker 6.3 in its shell, HA (an R3 stream on 3 nats-servers) and single \
         process taking turns, {throughput} purchases each {} in flight, {one} one request \
         at a time",
        shell::IN_FLIGHT
    ));
    if let Some(ha) = ha::figures(suite, throughput, one, scale.rounds).await? {
        figures.extend(ha);
    }
    Ok(figures)
}
