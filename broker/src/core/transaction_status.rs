//! `TransactionStatus { tx }` (protocol.md section 7): a party asks for every frame of a tx
//! the broker sent it, to recover a lost reply or delivery (change scrip, a decision, a
//! withdrawal result), so that a lost message is never lost value.
//!
//! Only the asking party's own frames are returned (the outbox is keyed by recipient, and
//! the sender is authenticated by its signature), so no one learns another party's outcome.
//! A read: no event, nothing stored, built fresh from the outbox each time. The answer must
//! fit one frame: [`TxStatus::of_stored`] keeps the most recent frames that fit and says how
//! many earlier ones it left out.

use shared::node::{Draft, Refusal};
use shared::wire::bodies::{Re, TransactionStatusBody, TransactionStatusResponseBody, TxStatus};

use super::{Ctx, Decision, State, Verified};

pub(super) fn decide(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &TransactionStatusBody,
) -> Result<Decision, Refusal> {
    let body = TransactionStatusResponseBody {
        re: Re::new(&v.header, v.digest.clone()),
        status: TxStatus::of_stored(state.outbox.frames(&x.tx, &v.header.sender)),
    };
    Ok(Decision {
        events: Vec::new(),
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body),
        deliveries: Vec::new(),
    })
}
