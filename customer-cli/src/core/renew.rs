//! 6.8 Renew expired scrip, the customer's side (protocol.md section 6.8; paper 6.8,
//! fig. 14). Works for BrokerScrip (producer = the broker) and VendorScrip (producer = a
//! merchant whose key the wallet obtained by 6.0b).
//!
//! 1. C → producer `RenewRequest`: `Sealed(to producer){ Signed(X0 = E0, CS_E0) }` (with
//!    `Secret(CS_E0)`).
//! 3. producer → C `RenewResponse`: `Sealed(to C){ Signed(X1 = E1, CS_E1) }`; the wallet
//!    checks the producer's signature, `re`, that E1 is the producer's with the value of
//!    E0 unchanged, and that CS_E1 hashes to its `cs_hash`; then E0 is replaced by E1.
//!
//! Whether E0 may be renewed (expired, within grace) is the producer's decision (section 4);
//! the wallet does not refuse a renewal on its own clock.

use shared::events::NewEvent;
use shared::wire::bodies::{RenewRequestX0, RenewResponseX1};
use shared::wire::{Body, Frame, Label};
use shared::{KeyPair, TxId, Uid};

use super::events::WalletEvent;
use super::mismatched_expect;
use super::reply::{check_new_scrip, event_time, evidence, new_secret, own_scrip, sealed_reply};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::{Pending, WalletState};
use super::{request_header, scrip_free};
use crate::error::WalletError;

/// Step 1: the request to renew the scrip held of `producer`.
pub fn request(state: &WalletState, tx: TxId, producer: Uid) -> Result<SavedRequest, WalletError> {
    let (_, header) = request_header(state, Label::RenewRequest, tx)?;
    let held = state
        .scrip
        .get(&producer)
        .ok_or(WalletError::NoScrip { producer })?;
    if state.key_of(producer).is_none() {
        return Err(WalletError::UnknownPeer { uid: producer });
    }
    scrip_free(state, held.scrip.id())?;
    let x0 = RenewRequestX0 {
        scrip: held.scrip.clone(),
        cs_hash: held.cs_hash.clone(),
    };
    SavedRequest::new(
        header,
        producer,
        vec![SavedPart::Sealed {
            to: producer,
            inners: vec![
                SavedInner::Signed {
                    body: x0.to_bytes(),
                },
                SavedInner::Secret {
                    scrip_id: held.scrip.id(),
                },
            ],
        }],
        Expect::Renew {
            producer,
            spent: held.scrip.id(),
            value: held.scrip.value(),
        },
    )
}

/// Step 3: the producer's `RenewResponse`, checked; E0 replaced by E1.
pub fn accept(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::Renew {
        producer,
        spent,
        value,
    } = pending.request.expect
    else {
        return Err(mismatched_expect(pending));
    };
    let (verified, opened) = sealed_reply::<RenewResponseX1>(state, pending, frame, keys)?;
    let body = verified.body;
    check_new_scrip(&body.scrip, producer, value)?;
    let cs = new_secret(&opened, body.scrip.id(), &body.cs_hash)?;
    let tx = pending.request.tx();
    let scrip = own_scrip(keys, body.scrip, &cs, body.cs_hash, tx)?;
    Ok(NewEvent::new(
        event_time(now),
        tx,
        WalletEvent::ScripRenewed { spent, scrip },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}
