//! The broker recording 6.3 in process: `BrokerNode::handle_batch` on its durable log, fed
//! frames signed beforehand by the site's customer (`PurchaseInitiated`, step 1) and
//! merchant (`PurchaseCompleted`, step 5), each purchase's two frames in order. Only the
//! node's work is timed; every frame must be recorded (one event each), else the run
//! fails rather than report a figure of refusals.
//!
//! The batch sizes take turns ([`record_interleaved`]): a shared disk's commit time drifts
//! over seconds, and the log grows as the run goes, so measuring one size after the other
//! would put the drift into their ratios.

use std::time::{Duration, Instant};

use shared::runtime::{parallel_map, system_clock};
use shared::wire::bodies::{PurchaseCompletedX3, PurchaseInitiatedX0};
use shared::wire::{Body, Frame, Header, Label, Part, sign};
use shared::{Amount, KeyPair, TxId};

use super::BenchError;
use super::figures::Figure;
use super::setup::Site;

/// The ratio of the broker's 6.3 throughput at batch 256 to its bound it must reach (in
/// process, durable).
pub const TARGET: f64 = 0.8;
/// The batch sizes of the broker's 6.3 figures (the shell's largest batch is
/// `shared::runtime::MAX_BATCH`, 256).
pub const BATCHES: [usize; 3] = [1, 16, 256];
/// The batch whose ratio has a target.
const TARGET_BATCH: usize = 256;

/// The value of each purchase (minor units): the setup's float must cover every purchase
/// of the run, or the broker would add a `MemoAlarm` to each purchase past it.
pub const PRICE: u64 = 1;

/// One frame signed in the clear by `key`, as 6.3 steps 1 and 5 are sent.
fn clear_frame<B: Body>(
    key: &KeyPair,
    label: Label,
    tx: TxId,
    body: &B,
) -> Result<Vec<u8>, BenchError> {
    let header = Header::new(key.suite(), label, tx, key.uid());
    let part: Part = sign(key, &header, body)?.into();
    Ok(Frame::new(header, vec![part]).encode()?)
}

/// Step 1 (`PurchaseInitiated`) of the site's customer for `tx`, as it tells the broker
/// before it pays the merchant.
///
/// # Errors
/// The frame could not be signed or encoded.
pub fn initiated_frame(site: &Site, tx: TxId) -> Result<Vec<u8>, BenchError> {
    clear_frame(
        &site.customer,
        Label::PurchaseInitiated,
        tx,
        &PurchaseInitiatedX0 {
            merchant: site.merchant.uid(),
            value: Amount::from_minor(PRICE),
        },
    )
}

/// The frames of `purchases` fresh purchases, step 1 then step 5 of each, signed on every
/// core (the signing is the peers' work, not the broker's, and is not timed).
///
/// # Errors
/// A frame that could not be signed or encoded.
pub fn purchase_frames(site: &Site, purchases: usize) -> Result<Vec<Vec<u8>>, BenchError> {
    let txs: Vec<TxId> = (0..purchases).map(|_| TxId::random()).collect();
    let value = Amount::from_minor(PRICE);
    let pairs = parallel_map(&txs, |tx| -> Result<[Vec<u8>; 2], BenchError> {
        let initiated = initiated_frame(site, *tx)?;
        let completed = clear_frame(
            &site.merchant,
            Label::PurchaseCompleted,
            *tx,
            &PurchaseCompletedX3 {
                customer: site.customer.uid(),
                value,
            },
        )?;
        Ok([initiated, completed])
    });
    let mut frames = Vec::with_capacity(purchases * 2);
    for pair in pairs {
        frames.extend(pair?);
    }
    Ok(frames)
}

/// What recording a run of frames took.
#[derive(Clone, Copy, Debug)]
pub struct Recorded {
    /// Events appended to the log.
    pub events: u64,
    /// The time in `handle_batch`, all batches.
    pub elapsed: Duration,
}

/// Hands `frames` to the broker `batch` at a time (each batch one group commit), all at
/// one `now`; checks every frame was recorded as one event.
///
/// # Errors
/// The node's failure, or a frame that was not recorded ([`BenchError::NotRecorded`]).
pub fn record(site: &mut Site, frames: &[Vec<u8>], batch: usize) -> Result<Recorded, BenchError> {
    let now = system_clock();
    let before = site.broker.log().len()?;
    let mut elapsed = Duration::ZERO;
    for chunk in frames.chunks(batch.max(1)) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let start = Instant::now();
        let results = site.broker.handle_batch(&refs, now);
        elapsed += start.elapsed();
        for result in results {
            result?;
        }
    }
    let events = check_recorded(site, before, frames.len())?;
    Ok(Recorded { events, elapsed })
}

/// Checks that the broker's log grew by one event for each of `frames` since it held
/// `before` events, and that its books hold (section 5): a figure is of 6.3 recorded, not
/// of refusals. Returns the events appended.
///
/// # Errors
/// [`BenchError::NotRecorded`], [`BenchError::Ledger`], or the log's.
pub fn check_recorded(site: &Site, before: u64, frames: usize) -> Result<u64, BenchError> {
    let events = site.broker.log().len()? - before;
    let expected = frames as u64;
    if events != expected {
        return Err(BenchError::NotRecorded { expected, events });
    }
    if let Err(e) = site.broker.state().check_conserved() {
        return Err(BenchError::Ledger(e.to_string()));
    }
    Ok(events)
}

/// The frames in each of the `rounds` parts of `len` frames recorded `batch` at a time:
/// whole batches (so every part's batches are full but the last) of whole purchases (an
/// even number: each purchase's two frames in one part).
fn part_len(len: usize, batch: usize, rounds: usize) -> usize {
    let unit = if batch.is_multiple_of(2) {
        batch
    } else {
        batch * 2
    };
    let unit = unit.max(2);
    (len.div_ceil(rounds.max(1)).div_ceil(unit) * unit).max(unit)
}

/// Records each job's frames (`(batch, frames)`) in up to `rounds` parts, the jobs taking
/// turns part by part, so that each sees the same disk and log over the run; what each
/// job's parts took in all. A part is whole batches of whole purchases.
///
/// # Errors
/// As [`record`].
pub fn record_interleaved(
    site: &mut Site,
    jobs: &[(usize, Vec<Vec<u8>>)],
    rounds: usize,
) -> Result<Vec<Recorded>, BenchError> {
    let parts: Vec<Vec<&[Vec<u8>]>> = jobs
        .iter()
        .map(|(batch, frames)| {
            frames
                .chunks(part_len(frames.len(), *batch, rounds))
                .collect()
        })
        .collect();
    let mut totals = vec![
        Recorded {
            events: 0,
            elapsed: Duration::ZERO,
        };
        jobs.len()
    ];
    let most = parts.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..most {
        for (i, (batch, _)) in jobs.iter().enumerate() {
            if let Some(part) = parts[i].get(round) {
                let r = record(site, part, *batch)?;
                totals[i].events += r.events;
                totals[i].elapsed += r.elapsed;
            }
        }
    }
    Ok(totals)
}

/// The broker's 6.3 figures of `suite`: `purchases[i]` purchases at each of [`BATCHES`],
/// in purchases/s against `bound` (the broker's bound from the same run's verify rate).
///
/// # Errors
/// As [`purchase_frames`] and [`record`].
pub fn figures(
    site: &mut Site,
    suite: shared::Suite,
    purchases: [usize; 3],
    bound: f64,
    rounds: usize,
) -> Result<Vec<Figure>, BenchError> {
    let mut jobs = Vec::new();
    for (batch, n) in BATCHES.into_iter().zip(purchases) {
        jobs.push((batch, purchase_frames(site, n)?));
    }
    let recorded = record_interleaved(site, &jobs, rounds)?;
    Ok(BATCHES
        .into_iter()
        .zip(purchases)
        .zip(recorded)
        .map(|((batch, n), r)| {
            Figure::bounded(
                format!("{suite} broker 6.3 batch {batch}"),
                n as f64 / r.elapsed.as_secs_f64(),
                "purchases/s",
                bound,
                (batch == TARGET_BATCH).then_some(TARGET),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_whole_batches_of_whole_purchases_and_there_are_at_most_rounds_of_them() {
        for len in [2, 6, 64, 512, 1024, 2048, 8192] {
            for batch in [1, 8, 16, 64, 256] {
                for rounds in [1, 2, 4, 8] {
                    let part = part_len(len, batch, rounds);
                    assert_eq!(part % 2, 0, "{len} {batch} {rounds}");
                    assert_eq!(part % batch, 0, "{len} {batch} {rounds}");
                    assert!(len.div_ceil(part) <= rounds, "{len} {batch} {rounds}");
                }
            }
        }
        // Parts of one batch of 256 each, when there are enough frames for that.
        assert_eq!(part_len(2048, 256, 8), 256);
        assert_eq!(part_len(64, 1, 4), 16);
    }
}
