//! Merchants by name (docs/adr/0016): a registered peer's display name, and the directory of
//! named merchants a customer lists with `peerscrip merchants`.
//!
//! `MerchantProfile` is a write: the first name, or a changed one, is one `MerchantNamed`
//! event under the request's tx, its `Ack` stored with it (a repeat of the tx gets the same
//! bytes, section 7). The name the peer already has appends nothing and is answered a fresh
//! `Ack`, so a merchant that re-sends its name at every start costs the log nothing. A
//! change within [`NAME_CHANGE_INTERVAL_SECS`] of the last one is refused
//! `TooManyRequests`: with one name per peer in the state and at most one event per peer a
//! minute, what a hostile registered peer can make the broker store is bounded (section
//! 10). `open` already refused an unregistered sender (`UnknownPeer`) and a name that is
//! not a valid `MerchantName` (`BadFrame`).
//!
//! `MerchantDirectoryRequest` is a read, like `TransactionStatus`: a signed page of at most
//! [`MAX_LISTED_MERCHANTS`] (UID, name) in UID order, after the asker's cursor.

use shared::ErrorCode;
use shared::events::NewEvent;
use shared::node::{Draft, Refusal};
use shared::wire::bodies::{
    AckBody, MAX_LISTED_MERCHANTS, MerchantDirectoryRequestX0, MerchantDirectoryResponseX1,
    MerchantEntry, MerchantProfileX0, Re,
};

use super::{Ctx, Decision, Kind, State, Verified, evidence_of, sender_peer};

/// The least time between two names of one peer, seconds.
pub const NAME_CHANGE_INTERVAL_SECS: u64 = 60;

/// Decides a `MerchantProfile` (see the module doc).
pub(super) fn profile(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &MerchantProfileX0,
) -> Result<Decision, Refusal> {
    let merchant = sender_peer(state, v).map(|_| v.header.sender)?;
    let ack = AckBody {
        re: Re::new(&v.header, v.digest.clone()),
        deadline: None,
    };
    let reply = Draft::reply(ctx.me, &v.header, &v.digest, &ack);
    let events = match state.names.get(&merchant) {
        Some(current) if current.name == x.name => Vec::new(),
        Some(current) if ctx.now.get() < current.at.saturating_add(NAME_CHANGE_INTERVAL_SECS) => {
            return Err(Refusal::new(
                ErrorCode::TooManyRequests,
                format!("a peer may change its name once every {NAME_CHANGE_INTERVAL_SECS} s"),
            ));
        }
        _ => vec![
            NewEvent::new(
                ctx.now.to_millis(),
                v.header.tx,
                Kind::MerchantNamed {
                    merchant,
                    name: x.name.clone(),
                },
            )
            .with_evidence(evidence_of(v)),
        ],
    };
    Ok(Decision {
        events,
        reply,
        deliveries: Vec::new(),
    })
}

/// Answers a `MerchantDirectoryRequest`: the page after `x.after` (see the module doc).
pub(super) fn directory(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &MerchantDirectoryRequestX0,
) -> Result<Decision, Refusal> {
    let mut merchants = state
        .names
        .iter()
        .filter(|(uid, _)| x.after.is_none_or(|a| **uid > a))
        .map(|(uid, naming)| MerchantEntry {
            uid: *uid,
            name: naming.name.clone(),
        })
        .take(MAX_LISTED_MERCHANTS + 1)
        .collect::<Vec<_>>();
    let more = merchants.len() > MAX_LISTED_MERCHANTS;
    merchants.truncate(MAX_LISTED_MERCHANTS);
    let body = MerchantDirectoryResponseX1 {
        re: Re::new(&v.header, v.digest.clone()),
        merchants,
        more,
    };
    Ok(Decision {
        events: Vec::new(),
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body),
        deliveries: Vec::new(),
    })
}
