//! 6.0 Peer registration (paper 3.1, fig. 4).
//!
//! `open` has verified the sealed part, the key (its UID is the sender), `X0 = PAN` under
//! that key, that the PAN exists and the IdProof of its ID for this tx. Here: the UID is not
//! registered yet (`AlreadyRegistered`: a replay or a second registration) and the PAN has
//! no key yet (`PanRegistered`: one key per account, so whoever learns a PANSecret cannot
//! add a key of their own; re-keying is the bank operator's).

use shared::ErrorCode;
use shared::PublicKey;
use shared::events::NewEvent;
use shared::ids::Pan;
use shared::node::{Draft, Refusal, TxKind};
use shared::wire::bodies::{Re, RegistrationResponseX1};

use super::{Ctx, Decision, Kind, State, Verified, evidence_of};

pub(super) fn decide(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    pan: &Pan,
    key: &PublicKey,
) -> Result<Decision, Refusal> {
    let uid = v.header.sender;
    state
        .bindings
        .check(&v.header.tx, TxKind::Registration, &[uid])?;
    if state.peers.contains_key(&uid) {
        return Err(Refusal::new(
            ErrorCode::AlreadyRegistered,
            "this UID is already registered",
        ));
    }
    let record = state
        .pans
        .get(pan)
        .ok_or_else(|| Refusal::new(ErrorCode::PanUnknown, "no bank account has this PAN"))?;
    if record.registered.is_some() {
        return Err(Refusal::new(
            ErrorCode::PanRegistered,
            "this account already has a registered key",
        ));
    }
    let event = NewEvent::new(
        ctx.event_time(),
        v.header.tx,
        Kind::PeerRegistered {
            uid,
            spki_der: key.spki_der().to_vec(),
            pan: pan.clone(),
        },
    )
    .with_evidence(evidence_of(v));
    let body = RegistrationResponseX1 {
        re: Re::new(&v.header, v.digest.clone()),
        uid,
        info: "registered".to_owned(),
    };
    Ok(Decision {
        events: vec![event],
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body),
        deliveries: Vec::new(),
    })
}
