//! The broker recording 6.3 in process: `BrokerNode::handle_batch` on its durable log, fed
//! frames signed beforehand by the site's customer (`PurchaseInitiated`, step 1) and
//! merchant (`PurchaseCompleted`, step 5), each purchase's two frames in order. Only the
//! node's work is timed; every frame must be recorded (one event each), else the run
//! fails rather than report a figure of refusals.

use std::time::{Duration, Instant};

use shared::runtime::{parallel_map, system_clock};
use shared::wire::bodies::{PurchaseCompletedX3, PurchaseInitiatedX0};
use shared::wire::{Body, Frame, Header, Label, Part, sign};
use shared::{Amount, KeyPair, TxId};

use super::BenchError;
use super::setup::Site;

/// The value of each purchase: one minor unit, so the float covers every purchase.
const PRICE: u64 = 1;

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

/// The frames of `purchases` fresh purchases, step 1 then step 5 of each, signed on every
/// core (the signing is the peers' work, not the broker's, and is not timed).
///
/// # Errors
/// A frame that could not be signed or encoded.
pub fn purchase_frames(site: &Site, purchases: usize) -> Result<Vec<Vec<u8>>, BenchError> {
    let txs: Vec<TxId> = (0..purchases).map(|_| TxId::random()).collect();
    let value = Amount::from_minor(PRICE);
    let pairs = parallel_map(&txs, |tx| -> Result<[Vec<u8>; 2], BenchError> {
        let initiated = clear_frame(
            &site.customer,
            Label::PurchaseInitiated,
            *tx,
            &PurchaseInitiatedX0 {
                merchant: site.merchant.uid(),
                value,
            },
        )?;
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
    let events = site.broker.log().len()? - before;
    let expected = frames.len() as u64;
    if events != expected {
        return Err(BenchError::NotRecorded { expected, events });
    }
    if let Err(e) = site.broker.state().check_conserved() {
        return Err(BenchError::Ledger(e.to_string()));
    }
    Ok(Recorded { events, elapsed })
}
