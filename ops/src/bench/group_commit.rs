//! Group commit: the broker's events per second when `n` requests arrive together (the
//! actor shell hands them to `handle_batch` as one batch, one durable commit) against one
//! at a time (one commit each), the same frames either way (architecture.md "Each node").
//! The frames are 6.3's, each recorded as one event; the ratio of `n` to one is what
//! batching the commit buys.

use super::BenchError;
use super::broker::{self, Recorded};
use super::setup::Site;

/// Events per second recording `purchases` fresh purchases' frames `concurrent` at a time.
///
/// # Errors
/// As [`broker::record`].
pub fn events_per_sec(
    site: &mut Site,
    purchases: usize,
    concurrent: usize,
) -> Result<f64, BenchError> {
    let frames = broker::purchase_frames(site, purchases)?;
    let Recorded { events, elapsed } = broker::record(site, &frames, concurrent)?;
    Ok(events as f64 / elapsed.as_secs_f64())
}
