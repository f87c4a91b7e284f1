//! Lapse of VendorScrip (protocol.md section 4, "Lapse"), the merchant's side: when a
//! scrip's renewal grace period ends unrenewed, its value goes back to its owner's bank
//! account, never lost to expiry.
//!
//! - [`lapsed`]: the merchant's timer appends `ScripLapsed` for each live, not held,
//!   VendorScrip whose grace ended (`now > expires + renewal_grace_secs`), each under its
//!   own tx named by the scrip id (as the broker names a BrokerScrip's lapse), so an
//!   auditor finds the lapse of scrip X under tx X. The event removes the scrip and, in the
//!   same commit, stores the signed `ScripLapsedNotice` to the broker. A held scrip does not
//!   lapse: only its escrow's decision ends a hold (section 4).
//! - The notice is a request awaiting the broker ([`Awaiting::Lapse`]): the reporter
//!   sends the stored frame until the broker's signed `Ack` answers it (section 7; the
//!   broker posts `bank:M −v, bank:owner +v` and memo `float:vendor:M −v`, and answers a
//!   repeat from its stored reply). [`acknowledge`] checks that `Ack` and gives
//!   `LapseReported`, which ends the duty to send it.
//! - In the merchant's books the lapsed value counts as withdrawn: like a 6.7 withdrawal,
//!   it leaves the merchant's account for the owner's through the broker.

use shared::UnixSecs;
use shared::events::{Evidence, NewEvent};
use shared::node::{Draft, ScripState};
use shared::wire::bodies::{AckBody, Body, ScripLapsedNoticeBody};
use shared::wire::{DigestItem, Header, Label, WireError, request_digest};
use shared::{ScripBody, Suite, TxId, Uid};

use super::broker_reply::{Ack, AckError};
use super::events::Kind;
use super::state::{Awaiting, State};
use super::{Config, Decision};

/// The tx of the lapse of the scrip `scrip`: its scrip id (`shared::node::lapse_tx`).
#[must_use]
pub fn lapse_tx(scrip: &ScripBody) -> TxId {
    shared::node::lapse_tx(scrip.scrip_id)
}

/// The notice's body for `scrip`, owned by `owner`.
#[must_use]
pub fn notice_body(scrip: &ScripBody, owner: Uid) -> ScripLapsedNoticeBody {
    ScripLapsedNoticeBody {
        scrip_id: scrip.scrip_id,
        owner,
        value: scrip.value,
        expires: scrip.expires,
    }
}

/// The request digest of the notice (protocol.md section 7), which the broker's `Ack` must
/// carry in its `re`.
///
/// # Errors
/// As [`request_digest`].
pub fn notice_digest(
    suite: Suite,
    me: Uid,
    body: &ScripLapsedNoticeBody,
) -> Result<Vec<u8>, WireError> {
    let header = Header::new(suite, Label::ScripLapsedNotice, TxId(body.scrip_id.0), me);
    let bytes = body.to_bytes();
    request_digest(
        &header,
        &[DigestItem {
            origin: None,
            body: &bytes,
        }],
    )
}

/// `ScripLapsed`, with its notice to the broker, for every live, not held VendorScrip whose
/// grace period ended before `now` (see the module doc). Empty when nothing lapsed.
///
/// # Errors
/// A notice whose digest cannot be computed (an encoding failure: nothing is decided).
pub fn lapsed(state: &State, config: &Config, now: UnixSecs) -> Result<Decision, WireError> {
    let me = config.me();
    let mut decision = Decision {
        events: Vec::new(),
        reply: None,
        deliveries: Vec::new(),
    };
    for (_, record) in state.tables.live.iter() {
        let grace_end = record
            .body
            .expires
            .saturating_add(config.renewal_grace_secs);
        if record.state != ScripState::Live || !super::passed(now, grace_end) {
            continue;
        }
        let body = notice_body(&record.body, record.owner);
        let tx = lapse_tx(&record.body);
        let digest = notice_digest(config.mint.suite(), me, &body)?;
        decision.events.push(NewEvent::new(
            now.to_millis(),
            tx,
            Kind::ScripLapsed {
                owner: record.owner,
                scrip: record.body,
                digest,
            },
        ));
        decision.deliveries.push(Draft::delivery(
            config.mint.suite(),
            tx,
            me,
            config.broker,
            &body,
        ));
    }
    Ok(decision)
}

/// Checks the broker's signed `Ack` of the notice of this frame's tx and gives the event
/// that ends the duty to send it (`LapseReported`, with the `Ack` as evidence). A reply
/// that does not answer the pending notice (sender, label, digest) is discarded
/// (protocol.md section 3).
///
/// # Errors
/// [`AckError`]: not from the broker, not a valid signed `Ack`, or no pending notice.
pub fn acknowledge(
    reply: &Ack<'_>,
    state: &State,
    now: UnixSecs,
) -> Result<NewEvent<Kind>, AckError> {
    let tx = reply.frame.header.tx;
    let part = reply.part()?;
    let Some(Awaiting::Lapse { digest, .. }) = state.tables.awaiting.get(&tx) else {
        return Err(AckError::NotPending);
    };
    let ack = part.verify_signed::<AckBody>(reply.broker)?;
    reply.answers(&ack.body.re, Label::ScripLapsedNotice, digest)?;
    Ok(NewEvent::new(now.to_millis(), tx, Kind::LapseReported)
        .with_evidence(vec![Evidence::from(&ack.evidence)]))
}
