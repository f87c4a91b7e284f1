//! Replay speed on a broker log of 1M events (a benchmark, not a test: replay speed in
//! events/s on a log of 1M events): `cargo bench -p ops --bench replay`.
//!
//! The log is built once (`peerscrip_tests::bank_log`: the bank operator's events, decided
//! by the broker's own functions and appended through its group commit and projection) and
//! cached in the target directory, keyed by its size and the log's schema version, so a
//! rerun measures without rebuilding it. Five passes over the same file, each from a fresh
//! open, measured by criterion (events/s as its throughput):
//! - `read`, the baseline: every event read and decoded, nothing folded (the file opened
//!   without redb's integrity check, which the `open` pass measures);
//! - `open`: the file opened as every node and tool opens it, with redb's integrity check of
//!   every page (docs/adr/0012), and nothing read;
//! - `fold`: the broker's own fold (`State::fold`) over every event, into a fresh state;
//! - `apply`: the fold with the ledger check after every event (`State::check_touched`:
//!   what `BrokerNode::open` replays and what every live append checks before its commit,
//!   in release builds too);
//! - `append`: the node's append path, measured to bound the check's cost: a fresh log of
//!   [`APPEND_EVENTS`] events decided and appended through the group commit and the
//!   projection (with the check), as `peerscrip_tests::bank_log` builds it;
//! - `chain`: the hash chain verified (`EventLog::verify_chain`: every row decoded, checked
//!   canonical and hashed), the first thing the audit does;
//! - `audit`: `peerscrip-ops audit` on the file (chain, postings, evidence, the ledger
//!   invariants after every event, the stored tables against the replay).
//!
//! Each figure is also printed as a ratio to the baseline measured in the same run, so it
//! reads without knowing the machine, and the ledger check's cost per event (`apply` less
//! `fold`) as a ratio to an event's cost in `append`: the target is at most 0.05. The
//! bank operator's events carry no signature and commit 10,000 to a batch, so an event's
//! append here is cheaper than a request's and the ratio is an upper bound. The log carries no evidence (the operator's local
//! commands are not signed), so the audit figure is the fold, chain and ledger checks
//! without RSA verification.
//!
//! `PEERSCRIP_BENCH_EVENTS=N` changes the log's size (default 1,000,000). Run without
//! `--bench` (as `cargo test --all-targets` does), it does nothing.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use broker::core::{Kind, State};
use criterion::{Criterion, SamplingMode, Throughput};
use peerscrip_tests::bank_log;
use shared::Suite;
use shared::events::{EventLog, SCHEMA_VERSION};
use shared::node::Recorded;

/// The daemons' allocator (docs/adr/0018): a replay is what a daemon does at its start.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_EVENTS: u64 = 1_000_000;
/// The size of the log the `append` pass builds, each time afresh.
const APPEND_EVENTS: u64 = 100_000;
/// The ledger check may cost at most this share of an event's append.
const CHECK_TARGET: f64 = 0.05;
const SUITE: Suite = Suite::Modern;

/// Every pass's duration, by bench: for the ratios printed at the end.
static PASSES: Mutex<BTreeMap<&'static str, Vec<Duration>>> = Mutex::new(BTreeMap::new());

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("replay is a benchmark: run it with `cargo bench -p ops --bench replay`");
        return;
    }
    let events = std::env::var("PEERSCRIP_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_EVENTS);
    let path = cached_log(events);

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1));
    let mut group = criterion.benchmark_group(format!("replay {events} events"));
    group
        .throughput(Throughput::Elements(events))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10);
    group.bench_function("read", |b| {
        b.iter_custom(|iters| timed("read", iters, || assert_eq!(read(&path), events)));
    });
    group.bench_function("open", |b| {
        b.iter_custom(|iters| timed("open", iters, || assert_eq!(open(&path), events)));
    });
    group.bench_function("fold", |b| {
        b.iter_custom(|iters| timed("fold", iters, || assert_eq!(fold(&path), events)));
    });
    group.bench_function("apply", |b| {
        b.iter_custom(|iters| timed("apply", iters, || assert_eq!(apply(&path), events)));
    });
    group.bench_function("chain", |b| {
        b.iter_custom(|iters| timed("chain", iters, || assert_eq!(chain(&path), events)));
    });
    group.bench_function("audit", |b| {
        b.iter_custom(|iters| timed("audit", iters, || assert_eq!(audit(&path), events)));
    });
    group.finish();
    let mut append_group = criterion.benchmark_group(format!("append {APPEND_EVENTS} events"));
    append_group
        .throughput(Throughput::Elements(APPEND_EVENTS))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10);
    append_group.bench_function("append", |b| {
        b.iter_custom(|iters| timed("append", iters, append));
    });
    append_group.finish();
    criterion.final_summary();
    report(events);
}

/// Runs `pass` `iters` times, records each duration under `name`, returns the total.
fn timed(name: &'static str, iters: u64, mut pass: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        pass();
        let took = start.elapsed();
        total += took;
        PASSES
            .lock()
            .expect("no pass panicked")
            .entry(name)
            .or_default()
            .push(took);
    }
    total
}

/// The log opened as the passes below open it: checked once, by the `open` pass.
fn trusted(path: &Path) -> EventLog<Recorded<Kind>> {
    EventLog::open_existing_checked_before(path).expect("the cached log opens")
}

/// The baseline: every event read and decoded.
fn read(path: &Path) -> u64 {
    let log = trusted(path);
    let mut n = 0;
    for event in log.iter().expect("a read snapshot") {
        black_box(event.expect("the event decodes"));
        n += 1;
    }
    n
}

/// The open with the integrity check of every page, as a node opens its log.
fn open(path: &Path) -> u64 {
    let log = EventLog::<Recorded<Kind>>::open_existing(path).expect("the cached log opens");
    log.len().expect("its length")
}

/// The broker's fold of every event into a fresh state.
fn fold(path: &Path) -> u64 {
    let log = trusted(path);
    let mut state = State::new(SUITE);
    let mut n = 0;
    for event in log.iter().expect("a read snapshot") {
        let event = event.expect("the event decodes");
        black_box(state.fold(&event).expect("the event is a legal move"));
        n += 1;
    }
    assert_eq!(state.check_conserved(), Ok(()));
    black_box(&state);
    n
}

/// The broker's fold with the ledger check after every event.
fn apply(path: &Path) -> u64 {
    let log = trusted(path);
    let mut state = State::new(SUITE);
    let mut n = 0;
    for event in log.iter().expect("a read snapshot") {
        let event = event.expect("the event decodes");
        let touched = state.fold(&event).expect("the event is a legal move");
        state.check_touched(&touched).expect("the ledger holds");
        black_box(touched);
        n += 1;
    }
    black_box(&state);
    n
}

/// A fresh log of [`APPEND_EVENTS`] events through the node's append path.
fn append() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    bank_log::build(&dir.path().join("append.redb"), SUITE, APPEND_EVENTS)
        .expect("building the log");
}

/// The chain verified.
fn chain(path: &Path) -> u64 {
    let log = trusted(path);
    log.verify_chain().expect("the chain verifies").events
}

/// `peerscrip-ops audit` of the file; it must find nothing.
fn audit(path: &Path) -> u64 {
    let report = ops::audit::audit(path, None).expect("the audit runs");
    assert_eq!(report.finding, None, "the built log audits clean");
    report.events
}

/// Prints each bench's median pass as events/s and as a ratio to the baseline's.
fn report(events: u64) {
    let passes = PASSES.lock().expect("no pass panicked");
    let median = |name: &str| {
        let mut d = passes.get(name).cloned().unwrap_or_default();
        d.sort();
        d.get(d.len() / 2).copied()
    };
    let Some(baseline) = median("read") else {
        return;
    };
    println!("\nreplay of {events} broker events (median pass; ratio to `read`, same run):");
    for name in ["read", "open", "fold", "apply", "chain", "audit"] {
        let Some(d) = median(name) else { continue };
        let per_second = events as f64 / d.as_secs_f64();
        println!(
            "  {name:<6} {:>8.2} s  {:>12.0} events/s  {:>5.2}x the time of read",
            d.as_secs_f64(),
            per_second,
            d.as_secs_f64() / baseline.as_secs_f64()
        );
    }
    if let (Some(fold), Some(apply), Some(append)) =
        (median("fold"), median("apply"), median("append"))
    {
        let check = (apply.as_secs_f64() - fold.as_secs_f64()).max(0.0) / events as f64;
        let per_append = append.as_secs_f64() / APPEND_EVENTS as f64;
        let ratio = check / per_append;
        println!(
            "the ledger check: {:.0} ns an event, {ratio:.3} of an event's append ({:.0} ns; target <= {CHECK_TARGET}: {})",
            check * 1e9,
            per_append * 1e9,
            if ratio <= CHECK_TARGET {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}

/// The log of `events` events in the target directory, built if missing (or unreadable).
fn cached_log(events: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!(
        "replay-{events}-events-schema-{SCHEMA_VERSION}.redb"
    ));
    let complete = EventLog::<Recorded<Kind>>::open_existing(&path)
        .and_then(|log| log.len())
        .is_ok_and(|n| n == events);
    if complete {
        println!("using the cached log {}", path.display());
        return path;
    }
    let partial = path.with_extension("partial");
    // A previous build that did not finish, or a log of an older layout: start again.
    for stale in [&path, &partial] {
        if stale.exists() {
            std::fs::remove_file(stale).expect("removing a stale cached log");
        }
    }
    println!("building a broker log of {events} events (once) ...");
    let start = Instant::now();
    bank_log::build(&partial, SUITE, events).expect("building the log");
    std::fs::rename(&partial, &path).expect("caching the log");
    println!(
        "built {} in {:.1} s",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    path
}
