//! 6.0b Public key request (paper 3.2, fig. 5).
//!
//! `open` has checked that the requester is registered and its signature. The answer is
//! the broker's signed certificate of the target's key, sealed to the requester. A read:
//! no event, so nothing is stored and a repeat is answered afresh (same content, fresh
//! seal).

use shared::ErrorCode;
use shared::node::{Draft, Refusal};
use shared::wire::bodies::{PublicKeyRequestX0, PublicKeyResponseX1, Re};

use super::{Ctx, Decision, State, Verified};

pub(super) fn decide(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &PublicKeyRequestX0,
) -> Result<Decision, Refusal> {
    let target = state.peers.get(&x.target).ok_or_else(|| {
        Refusal::new(
            ErrorCode::UnknownPeer,
            "the target is not a registered peer",
        )
    })?;
    let body = PublicKeyResponseX1 {
        re: Re::new(&v.header, v.digest.clone()),
        target: x.target,
        spki_der: target.public_key.spki_der().to_vec(),
        nonce: x.nonce,
    };
    Ok(Decision {
        events: Vec::new(),
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body).sealed_with(Vec::new()),
        deliveries: Vec::new(),
    })
}
