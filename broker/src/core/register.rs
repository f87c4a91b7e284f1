//! 6.0 Peer registration (paper 3.1, fig. 4).
//!
//! `open` has verified the sealed part, the key (its UID is the sender) and `X0 = PAN`
//! under that key, and checked the IdProof of the PAN's ID for this tx (`id_proven`).
//! Here: the UID is not registered yet (`AlreadyRegistered`: a replay or a second
//! registration of this key, which tells its holder nothing about any account); then an
//! unknown PAN, a PAN that already has a key (one key per account, so whoever learns a
//! PANSecret cannot add a key of their own; re-keying is the bank operator's) and an
//! IdProof that does not prove the PAN's ID are one refusal, [`REFUSED`]: the reply must
//! not tell a stranger which account numbers exist (protocol.md 6.0 and section 9).

use shared::ErrorCode;
use shared::PublicKey;
use shared::events::NewEvent;
use shared::ids::Pan;
use shared::node::{Draft, Refusal, TxKind};
use shared::wire::bodies::{Re, RegistrationResponseX1};

use super::{Ctx, Decision, Kind, State, Verified, evidence_of};

/// The one message of every `RegistrationRefused` (protocol.md 6.0): the same words for
/// an unknown PAN, a PAN with a key and a wrong ID.
pub const REFUSED: &str = "registration refused: these account details cannot be registered";

pub(super) fn decide(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    pan: &Pan,
    key: &PublicKey,
    id_proven: bool,
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
    match state.pans.get(pan) {
        Some(record) if id_proven && record.registered.is_none() => {}
        _ => return Err(Refusal::new(ErrorCode::RegistrationRefused, REFUSED)),
    }
    let event = NewEvent::new(
        ctx.now.to_millis(),
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
