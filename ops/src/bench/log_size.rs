//! The cost of a purchase against the length of the broker's log: the broker's 6.3
//! workload at batch 256 ([`broker::record`]) on two brokers set up alike, one with an empty
//! log and one whose log already holds many events, in purchases/s, the full log's as a
//! ratio of the empty one's. A broker whose cost per event grows with its log (a table
//! scanned, an index deepening without bound, a fold over the history) shows it here
//! (architecture.md "Each node": the state is folded once, at open; each event after that
//! should cost the same).
//!
//! The full log is filled cheaply, not by signing: the bank operator's events (accounts
//! opened, deposits, payouts; section 5) decided by the broker's own decision functions and
//! appended through its group commit ([`super::fill`]), a genuine broker log the node opens,
//! replays and checks as it would its own. The two brokers take turns part by part, so that
//! a drifting disk weighs on both alike.
//!
//! That measures the cost of the log's own length (the `events` tree, the fold at open, the
//! ledger check): the bank operator's events leave the tables a purchase writes
//! (purchases, bindings, stored replies) empty; the figure's name says "bank events" for
//! that reason. [`history`] measures those tables: one broker records many purchases in a
//! row, and the rate of the last of them is compared with the rate of the first, when the
//! tables were empty. Signing the frames is what limits how many (each purchase is two
//! signatures of the site's customer and merchant): tens of thousands, not a million.

use super::BenchError;
use super::broker::{self, Recorded};
use super::figures::Figure;
use super::setup;

/// The ratio of the full log's throughput to the empty one's it must reach.
pub const TARGET: f64 = 0.9;
/// The batch the workload is recorded in.
pub const BATCH: usize = 256;

/// The two figures of `suite`: the empty log's throughput, and the one with `events`
/// events already in the log against it; `purchases` purchases on each, in `rounds` parts.
///
/// # Errors
/// As [`setup::build`], [`broker::purchase_frames`] and [`broker::record`].
pub async fn figures(
    suite: shared::Suite,
    events: u64,
    purchases: usize,
    rounds: usize,
) -> Result<Vec<Figure>, BenchError> {
    let float = u64::try_from(purchases)
        .unwrap_or(u64::MAX)
        .saturating_mul(broker::PRICE);
    let mut empty = setup::build(suite, float, 0).await?;
    let mut full = setup::build(suite, float, events).await?;
    let frames = [
        broker::purchase_frames(&empty, purchases)?,
        broker::purchase_frames(&full, purchases)?,
    ];
    // Whole batches of whole purchases in each part (a batch is an even number of frames).
    let part = frames[0]
        .len()
        .div_ceil(rounds.max(1))
        .div_ceil(BATCH)
        .max(1)
        * BATCH;
    let mut totals = [Recorded {
        events: 0,
        elapsed: std::time::Duration::ZERO,
    }; 2];
    for (a, b) in frames[0].chunks(part).zip(frames[1].chunks(part)) {
        for (i, (site, chunk)) in [(&mut empty, a), (&mut full, b)].into_iter().enumerate() {
            let r = broker::record(site, chunk, BATCH)?;
            totals[i].events += r.events;
            totals[i].elapsed += r.elapsed;
        }
    }
    let rate = |r: &Recorded| purchases as f64 / r.elapsed.as_secs_f64();
    let (empty_rate, full_rate) = (rate(&totals[0]), rate(&totals[1]));
    Ok(vec![
        Figure::plain(
            format!("{suite} broker 6.3 batch {BATCH} empty log"),
            empty_rate,
            "purchases/s",
        ),
        Figure::bounded(
            format!("{suite} broker 6.3 batch {BATCH} log of {events} bank events"),
            full_rate,
            "purchases/s",
            empty_rate,
            Some(TARGET),
        ),
    ])
}

/// The figure of `suite`'s purchase history: `purchases` purchases recorded one after the
/// other at batch 256 on one broker, the rate of the last `window` of them against the rate
/// of the first `window` (the bound), when the tables a purchase writes were still empty.
///
/// # Errors
/// As [`setup::build`], [`broker::purchase_frames`] and [`broker::record`].
pub async fn history(
    suite: shared::Suite,
    purchases: usize,
    window: usize,
) -> Result<Figure, BenchError> {
    let float = u64::try_from(purchases)
        .unwrap_or(u64::MAX)
        .saturating_mul(broker::PRICE);
    let mut site = setup::build(suite, float, 0).await?;
    let frames = broker::purchase_frames(&site, purchases)?;
    // Whole batches of whole purchases (two frames each) in a window.
    let window_frames = (window.max(1) * 2).div_ceil(BATCH) * BATCH;
    let mut rates = Vec::new();
    for chunk in frames.chunks(window_frames) {
        let r = broker::record(&mut site, chunk, BATCH)?;
        rates.push((chunk.len() / 2) as f64 / r.elapsed.as_secs_f64());
    }
    let first = rates.first().copied().unwrap_or(0.0);
    let last = rates.last().copied().unwrap_or(0.0);
    Ok(Figure::bounded(
        format!("{suite} broker 6.3 batch {BATCH} after {purchases} purchases"),
        last,
        "purchases/s",
        first,
        Some(TARGET),
    ))
}
