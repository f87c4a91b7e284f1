//! `TransactionStatus { tx }` (protocol.md section 7): a party asks for every frame of a tx
//! the broker sent it, to recover a lost reply or delivery (change scrip, a decision, a
//! withdrawal result), so that a lost message is never lost value.
//!
//! Only the asking party's own frames are returned (the outbox is keyed by recipient, and
//! the sender is authenticated by its signature), so no one learns another party's outcome.
//! A read: no event, nothing stored, built fresh from the outbox each time (ruling 3 of
//! issue 4).
//!
//! The answer must fit one frame: at most `MAX_STORED_FRAMES` frames and 64 KiB. A party
//! receives a handful of frames per tx (a reply and a delivery or two, about 1 KiB each),
//! so this never binds in practice; should it, the most recent frames that fit are sent,
//! those a retrying party lacks. (The `truncated`/`more` flag of ruling 3 is a wire change
//! of `TxStatus` left to the owner of the shared wire; see the report.)

/// Room left in a frame for the answer's header, `re`, signature and encoding overhead.
const OVERHEAD: usize = 4 * 1024;

use shared::node::{Draft, Refusal};
use shared::wire::MAX_FRAME_LEN;
use shared::wire::bodies::{
    MAX_STORED_FRAMES, Re, TransactionStatusBody, TransactionStatusResponseBody, TxStatus,
};

use super::{Ctx, Decision, State, Verified};

pub(super) fn decide(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &TransactionStatusBody,
) -> Result<Decision, Refusal> {
    let frames = state.outbox.frames(&x.tx, &v.header.sender);
    let status = if frames.is_empty() {
        TxStatus::Pending
    } else {
        TxStatus::Frames {
            frames: frames[fitting(frames)..].to_vec(),
        }
    };
    let body = TransactionStatusResponseBody {
        re: Re::new(&v.header, v.digest.clone()),
        status,
    };
    Ok(Decision {
        events: Vec::new(),
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body),
        deliveries: Vec::new(),
    })
}

/// The index of the first of the most recent `frames` that fit one answer (see the module
/// doc): at most `MAX_STORED_FRAMES`, and their bytes (with a length prefix each) within
/// the frame limit less [`OVERHEAD`].
fn fitting(frames: &[Vec<u8>]) -> usize {
    let budget = MAX_FRAME_LEN - OVERHEAD;
    let mut used = 0usize;
    let mut start = frames.len();
    for (i, f) in frames.iter().enumerate().rev() {
        // A postcard length prefix of a frame under 64 KiB is at most 3 bytes.
        let cost = f.len().saturating_add(3);
        if frames.len() - i > MAX_STORED_FRAMES || used.saturating_add(cost) > budget {
            break;
        }
        used += cost;
        start = i;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_recent_frames_that_fit_one_answer_are_chosen() {
        assert_eq!(fitting(&[]), 0);
        let small = vec![vec![0u8; 1000]; 3];
        assert_eq!(fitting(&small), 0, "all fit");
        let many = vec![vec![0u8; 10]; MAX_STORED_FRAMES + 3];
        assert_eq!(fitting(&many), 3, "at most MAX_STORED_FRAMES, the latest");
        let big = vec![vec![0u8; 25_000]; 4];
        assert_eq!(fitting(&big), 2, "two of 25,000 bytes fit, three do not");
        let huge = vec![vec![0u8; 30_000], vec![0u8; MAX_FRAME_LEN]];
        assert_eq!(
            fitting(&huge),
            2,
            "a frame too large for any answer is never sent"
        );
    }
}
