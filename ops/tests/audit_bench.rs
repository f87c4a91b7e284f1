//! Benchmark (not a test; issue 6): the audit's replay speed in events/s on a broker log of
//! `AUDIT_BENCH_EVENTS` events (default 1 000 000). Run with
//! `cargo test --release -p ops --test audit_bench -- --ignored --nocapture`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

#[test]
#[ignore = "a benchmark: run it by hand"]
fn audit_replay_speed() {
    let events: u64 = std::env::var("AUDIT_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.redb");
    let written = Instant::now();
    common::deposits_log(&path, events);
    eprintln!("wrote {events} events in {:.1?}", written.elapsed());
    let audited = Instant::now();
    let report = ops::audit::audit(&path, None).unwrap();
    let secs = audited.elapsed().as_secs_f64();
    assert!(report.ok(), "{:?}", report.finding);
    assert_eq!(report.events, events);
    eprintln!(
        "audited {events} events in {secs:.2} s: {:.0} events/s",
        events as f64 / secs
    );
}
