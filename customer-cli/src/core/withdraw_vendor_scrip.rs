//! 6.7 Withdraw VendorScrip, the customer's side (protocol.md section 6.7; paper 6.7,
//! fig. 13).
//!
//! 1. C → M `VendorWithdrawRequest`: `Sealed(to M){ Signed(X0 = V0, CS_V0) }` (with
//!    `Secret(CS_V0)`), `Sealed(to B){ IdProof(ID_C), Signed(X1 = W, UID_M) }`, `W =
//!    V0.value`. M answers `Ack { re, deadline }` once V0 is held: recorded
//!    (`VendorWithdrawAcked`), the request stays open.
//! 5. B → C `VendorWithdrawResult`: `Sealed(to C){ Signed(X4 = UID_M, R, I) }`, signed by
//!    the pinned broker. OK: V0 is gone and `W` credited to the bank account; NOK: V0 is
//!    live again (M releases its hold on the same decision). Either ends the request.
//!
//! The wallet never gives V0 up on its own timer: until the broker's signed result arrives
//! (also fetched again by `TransactionStatus`, section 7) V0 stays committed to this tx.
//! The result may arrive before M's `Ack`; the `Ack` then finds nothing pending.

use shared::events::NewEvent;
use shared::wire::bodies::{
    VendorWithdrawRequestX0, VendorWithdrawRequestX1, VendorWithdrawResultX4,
};
use shared::wire::{Body, Frame, Label};
use shared::{KeyPair, TxId, Uid};

use super::events::{Outcome, WalletEvent};
use super::mismatched_expect;
use super::reply;
use super::reply::{broker_delivery, event_time, evidence};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::{Pending, WalletState};
use super::{request_header, scrip_free};
use crate::error::WalletError;

/// Step 1: the request to cash in the VendorScrip held of `merchant`.
pub fn request(state: &WalletState, tx: TxId, merchant: Uid) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::VendorWithdrawRequest, tx)?;
    let held = state
        .scrip
        .get(&merchant)
        .filter(|_| merchant != identity.broker)
        .ok_or(WalletError::NoScrip { producer: merchant })?;
    if state.key_of(merchant).is_none() {
        return Err(WalletError::UnknownPeer { uid: merchant });
    }
    scrip_free(state, held.scrip.id())?;
    if state.account.is_none() {
        return Err(WalletError::NoAccount);
    }
    let value = held.scrip.value();
    let x0 = VendorWithdrawRequestX0 {
        scrip: held.scrip.clone(),
        cs_hash: held.cs_hash.clone(),
    };
    let x1 = VendorWithdrawRequestX1 { value, merchant };
    SavedRequest::new(
        header,
        merchant,
        vec![
            SavedPart::Sealed {
                to: merchant,
                inners: vec![
                    SavedInner::Signed {
                        body: x0.to_bytes(),
                    },
                    SavedInner::Secret {
                        scrip_id: held.scrip.id(),
                    },
                ],
            },
            SavedPart::Sealed {
                to: identity.broker,
                inners: vec![
                    SavedInner::IdProof,
                    SavedInner::Signed {
                        body: x1.to_bytes(),
                    },
                ],
            },
        ],
        Expect::VendorWithdraw {
            merchant,
            spent: held.scrip.id(),
            value,
        },
    )
}

/// Step 1's reply: M's `Ack { re, deadline }`.
pub fn accept_ack(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::VendorWithdraw { .. } = pending.request.expect else {
        return Err(mismatched_expect(pending));
    };
    reply::accept_ack(state, pending, frame, keys, now, |deadline| {
        WalletEvent::VendorWithdrawAcked { deadline }
    })
}

/// Step 5: the broker's `VendorWithdrawResult`, checked; the request ends.
pub fn accept_result(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::VendorWithdraw {
        merchant,
        spent,
        value,
    } = pending.request.expect
    else {
        return Err(mismatched_expect(pending));
    };
    let (verified, _) = broker_delivery::<VendorWithdrawResultX4>(state, frame, keys)?;
    if verified.body.merchant != merchant {
        return Err(WalletError::UidMismatch {
            expected: merchant,
            found: verified.body.merchant,
        });
    }
    Ok(NewEvent::new(
        event_time(now),
        pending.request.tx(),
        WalletEvent::VendorWithdrawDecided {
            spent,
            outcome: Outcome::from(&verified.body.decision),
            value,
        },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}
