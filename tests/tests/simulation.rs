//! The seeded simulator (`peerscrip_tests::simulation`, the properties of protocol.md
//! sections 4, 7 and 10): a fixed set of seeds in CI, more on demand.
//!
//! - `PEERSCRIP_SIM_SEEDS=N` runs seeds `0..N` (default [`CI_SEEDS`]);
//! - `PEERSCRIP_SIM_SEED=S` runs the one seed `S` (what a failure prints to reproduce it).
//!
//! Each seed runs the faulty scenario (frames lost, duplicated, reordered; nodes restarted
//! between any two messages; the clock moved past the deadlines, past every scrip's expiry,
//! and past every renewal grace so that scrip lapses at the broker and at the merchants,
//! several of one merchant at once (protocol.md section 4, "Lapse"); the broker's or a
//! merchant's disk full for a few steps, its commits failing and answered `Unavailable`
//! until it recovers (section 10, "Storage faults")) and the double-delivery property (the
//! same scenario delivered once in order, then with every request and delivery delivered
//! twice out of order), and the restart property. Even seeds run the paper suite, odd ones
//! the modern suite.

use std::collections::BTreeMap;

use customer_cli::core::HistoryKind;
use peerscrip_tests::simulation::{self, Delivery, Faults, Scenario};

/// Seeds run by default: enough that both suites meet every fault (a lapse and a full
/// disk are rare per step), small enough for CI.
const CI_SEEDS: u64 = 16;

/// The seeds to run: `PEERSCRIP_SIM_SEED`, else `0..PEERSCRIP_SIM_SEEDS`, else `0..CI_SEEDS`.
fn seeds() -> Vec<u64> {
    let number = |name: &str| {
        std::env::var(name).ok().map(|v| {
            v.trim()
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{name}={v:?} is not a number: {e}"))
        })
    };
    match (number("PEERSCRIP_SIM_SEED"), number("PEERSCRIP_SIM_SEEDS")) {
        (Some(seed), _) => vec![seed],
        (None, Some(count)) => (0..count).collect(),
        (None, None) => (0..CI_SEEDS).collect(),
    }
}

/// Faults everywhere; every invariant after every step and at the end. Prints, per seed,
/// what the faults were and what the transactions came to (`--nocapture`), and checks
/// that the seeds together met every fault and both ends of the three-party flows.
#[test]
fn faulty_networks_keep_every_invariant() {
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut faults = [0_u64; 4];
    let (mut lapsed_at_once, mut recovered, mut lapsed_held) = (0, 0, 0);
    for seed in seeds() {
        let report = simulation::run(&Scenario::new(seed, Delivery::Faulty(Faults::DEFAULT)))
            .unwrap_or_else(|e| panic!("{e}"));
        let c = &report.counters;
        println!("seed {seed}: {c:?}");
        for what in report.histories.iter().flatten() {
            *outcomes.entry(outcome(what)).or_default() += 1;
        }
        for (total, n) in
            faults
                .iter_mut()
                .zip([c.dropped, c.duplicated, c.restarts, c.clock_jumps])
        {
            *total += n;
        }
        lapsed_at_once = lapsed_at_once.max(c.most_lapsed_at_once);
        recovered += c.recovered;
        lapsed_held += c.lapsed_held_at_end;
    }
    println!("outcomes: {outcomes:?}");
    assert!(
        faults.iter().all(|n| *n > 0),
        "lost, duplicated, restarts, clock jumps: {faults:?}"
    );
    assert!(outcomes.contains_key("ExchangeSettled ok"), "{outcomes:?}");
    assert!(outcomes.contains_key("VendorScripObtained"), "{outcomes:?}");
    if (seeds().len() as u64) < CI_SEEDS {
        // Fewer seeds (a reproduction) need not meet the rare faults.
        return;
    }
    assert!(
        lapsed_at_once >= 2,
        "no merchant lapsed several VendorScrip in one run of its timer"
    );
    assert!(
        outcomes.contains_key("ScripLapsed"),
        "no wallet presented a lapsed scrip: {outcomes:?}"
    );
    assert!(
        lapsed_held > 0,
        "no wallet ended holding a scrip lapsed at its producer (the end's checks count it zero)"
    );
    assert!(recovered > 0, "no node recovered from a failed commit");
}

/// A history entry's variant, with `ok` / `nok` for the broker's decisions and the label
/// and code of a refusal.
fn outcome(what: &HistoryKind) -> String {
    let debug = format!("{what:?}");
    let name = debug
        .split([' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned();
    match what {
        HistoryKind::ExchangeSettled { ok, .. }
        | HistoryKind::VendorTopUpSettled { ok, .. }
        | HistoryKind::VendorWithdrawDecided { ok, .. } => {
            format!("{name} {}", if *ok { "ok" } else { "nok" })
        }
        HistoryKind::Refused { label, code } => format!("{name} {label} {code}"),
        _ => name,
    }
}

/// Every request delivered twice, out of order: the same replies, no extra event, the same
/// end as delivered once.
#[test]
fn every_request_delivered_twice_ends_as_delivered_once() {
    for seed in seeds() {
        let (once, twice) = simulation::double_delivery(seed).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "seed {seed}: once {:?}\n         twice {:?}",
            once.counters, twice.counters
        );
        assert!(
            twice.counters.repeats_checked > 0,
            "seed {seed}: no repeat was delivered"
        );
        assert!(
            twice.counters.replies_compared > 0,
            "seed {seed}: no repeat of a decided request was compared"
        );
        assert_eq!(once.counters.dropped + twice.counters.dropped, 0);
    }
}

/// Every recipient closed and reopened from its file right after each frame it handles:
/// the same end as with no restart.
#[test]
fn a_node_restarted_after_every_message_ends_as_never_restarted() {
    for seed in seeds() {
        let (once, restarted) =
            simulation::restart_after_every_message(seed).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "seed {seed}: once {:?}\n         restarted {:?}",
            once.counters, restarted.counters
        );
        assert!(restarted.counters.restarts > 0, "seed {seed}: no restart");
    }
}

/// A seed reproduces its faulty run exactly (what a failure's printed seed is for).
#[test]
fn a_seed_reproduces_its_run() {
    let seed = seeds()[0];
    simulation::reproduce(&Scenario::new(seed, Delivery::Faulty(Faults::DEFAULT)))
        .unwrap_or_else(|e| panic!("{e}"));
}
