//! Group commit: the broker's events per second when `n` requests arrive together (the
//! actor shell hands them to `handle_batch` as one batch, one durable commit) against one
//! at a time (one commit each), the same kind of frames either way (architecture.md "Each
//! node"). The frames are 6.3's, each recorded as one event; the ratio of `n` to one is
//! what batching the commit buys. The sizes take turns, as the broker's figures do
//! ([`broker::record_interleaved`]).

use super::BenchError;
use super::broker;
use super::figures::Figure;
use super::setup::Site;

/// The ratio of events/s at 64 concurrent requests to one at a time it must reach.
pub const TARGET: f64 = 20.0;
/// The numbers of concurrent requests of the group commit figures.
pub const CONCURRENT: [usize; 3] = [1, 8, 64];
/// The concurrency whose ratio has a target.
const TARGET_CONCURRENT: usize = 64;

/// The group commit figures of `suite`: `purchases[i]` purchases' frames at each of
/// [`CONCURRENT`], in events/s, each against one at a time.
///
/// # Errors
/// As [`broker::purchase_frames`] and [`broker::record`].
pub fn figures(
    site: &mut Site,
    suite: shared::Suite,
    purchases: [usize; 3],
    rounds: usize,
) -> Result<Vec<Figure>, BenchError> {
    let mut jobs = Vec::new();
    for (concurrent, n) in CONCURRENT.into_iter().zip(purchases) {
        jobs.push((concurrent, broker::purchase_frames(site, n)?));
    }
    let recorded = broker::record_interleaved(site, &jobs, rounds)?;
    let rates: Vec<f64> = recorded
        .iter()
        .map(|r| r.events as f64 / r.elapsed.as_secs_f64())
        .collect();
    let one_at_a_time = rates[0];
    Ok(CONCURRENT
        .into_iter()
        .zip(rates)
        .map(|(concurrent, rate)| {
            let name = format!("{suite} group commit {concurrent} concurrent");
            if concurrent == 1 {
                Figure::plain(name, rate, "events/s")
            } else {
                Figure::bounded(
                    name,
                    rate,
                    "events/s",
                    one_at_a_time,
                    (concurrent == TARGET_CONCURRENT).then_some(TARGET),
                )
            }
        })
        .collect())
}
