//! `TransactionStatus { tx }` at the merchant (protocol.md section 7; wave 2, ruling 3): a
//! party asks for every frame of a tx the merchant sent it (a held VendorScrip of 6.2, a
//! top-up's V1 of 6.5, a purchase's change), so that a lost message is never lost value.
//!
//! Read-only: never stored, not subject to the reply cache, built fresh from the outbox
//! each time. Only the asker's own frames are returned (the outbox is keyed by recipient
//! and the asker is authenticated by its signature). At most `MAX_STORED_FRAMES` of them,
//! the most recent that fit in one 64 KiB frame with room for the response's own header,
//! `re` and signature ([`recent_that_fit`]); a merchant sends a party one or two frames per
//! tx, so this never cuts in practice. The wire's `TxStatus` has no "more" flag yet (ruling
//! 3 asks for one; it is a wire change for its owner): an asker that lacks a frame asks
//! again after processing these.

use shared::node::Draft;
use shared::wire::MAX_FRAME_LEN;
use shared::wire::bodies::{MAX_STORED_FRAMES, Re, TransactionStatusResponseBody, TxStatus};

/// Room kept in the response frame for everything but the returned frames: the header,
/// `re` (with its digest), the signature (RSA-2048: 256 bytes) and encoding overhead.
pub const RESPONSE_RESERVE: usize = 2048;

/// The longest tail of `frames` that holds at most `MAX_STORED_FRAMES` frames and whose
/// encoded size (each frame plus its length prefix) fits in `budget` bytes.
#[must_use]
pub fn recent_that_fit(frames: &[Vec<u8>], budget: usize) -> &[Vec<u8>] {
    let mut used = 0usize;
    let mut start = frames.len();
    for (i, frame) in frames.iter().enumerate().rev() {
        let cost = frame.len().saturating_add(8);
        if frames.len() - i > MAX_STORED_FRAMES || used.saturating_add(cost) > budget {
            break;
        }
        used += cost;
        start = i;
    }
    &frames[start..]
}

use super::Config;
use super::open::StatusRequest;
use super::state::State;

/// The answer to a `TransactionStatus`: a reply that is signed and sent, never stored.
#[must_use]
pub fn answer(state: &State, config: &Config, request: &StatusRequest) -> Draft {
    let frames = state
        .tables
        .outbox
        .frames(&request.body.tx, &request.header.sender);
    let recent = recent_that_fit(frames, MAX_FRAME_LEN.saturating_sub(RESPONSE_RESERVE));
    let status = if recent.is_empty() {
        TxStatus::Pending
    } else {
        TxStatus::Frames {
            frames: recent.to_vec(),
        }
    };
    let body = TransactionStatusResponseBody {
        re: Re::new(&request.header, request.digest.clone()),
        status,
    };
    Draft::reply(config.me(), &request.header, &request.digest, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_frames_that_fit() {
        let frames: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 100]).collect();
        // By count: the last MAX_STORED_FRAMES.
        let tail = recent_that_fit(&frames, usize::MAX);
        assert_eq!(tail.len(), MAX_STORED_FRAMES);
        assert_eq!(tail.last(), frames.last());
        // By size: three frames of 108 encoded bytes fit in 330, four do not.
        let tail = recent_that_fit(&frames, 330);
        assert_eq!(tail, &frames[9..]);
        // Nothing fits: empty (the asker hears Pending and asks again).
        assert!(recent_that_fit(&frames, 50).is_empty());
        assert!(recent_that_fit(&[], 1_000).is_empty());
    }
}
