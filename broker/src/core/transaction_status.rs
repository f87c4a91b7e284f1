//! `TransactionStatus { tx }` (protocol.md section 7): a party asks for every frame of a tx
//! the broker sent it, to recover a lost reply or delivery (change scrip, a decision, a
//! withdrawal result), so that a lost message is never lost value.
//!
//! Only the asking party's own frames are returned (the outbox is keyed by recipient, and
//! the sender is authenticated by its signature), so no one learns another party's outcome.
//! A read: no event, nothing stored.

use shared::node::{Draft, Refusal};
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
        // A party receives a handful of frames per tx; should there ever be more than a
        // response may carry, the latest are the ones a retrying party lacks.
        let skip = frames.len().saturating_sub(MAX_STORED_FRAMES);
        TxStatus::Frames {
            frames: frames[skip..].to_vec(),
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
