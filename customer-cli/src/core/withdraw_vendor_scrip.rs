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

use shared::wire::Label;
use shared::wire::bodies::{
    VendorWithdrawRequestX0, VendorWithdrawRequestX1, VendorWithdrawResultX4,
};
use shared::{Amount, ScripId, TxId, Uid};

use super::events::{Outcome, WalletEvent};
use super::reply::{Decided, Incoming};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::WalletState;
use super::{account_linked, held_vendor_scrip, request_header, scrip_free};
use crate::error::WalletError;

/// Step 1: the request to cash in the VendorScrip held of `merchant`.
pub fn request(state: &WalletState, tx: TxId, merchant: Uid) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::VendorWithdrawRequest, tx)?;
    let held = held_vendor_scrip(state, merchant)?;
    scrip_free(state, held.scrip.id())?;
    account_linked(state)?;
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
            SavedPart::sealed(
                merchant,
                [SavedInner::signed(&x0), SavedInner::secret_of(held)],
            ),
            SavedPart::to_broker(identity.broker, &x1, None),
        ],
        Expect::VendorWithdraw {
            merchant,
            spent: held.scrip.id(),
            value,
        },
    )
}

/// Step 5: the broker's `VendorWithdrawResult`, checked; the request ends. (Step 1's
/// reply, M's `Ack { re, deadline }`, is `Incoming::ack`.)
pub fn accept_result(
    reply: &Incoming<'_>,
    merchant: Uid,
    spent: ScripId,
    value: Amount,
) -> Decided {
    let (verified, _) = reply.broker_delivery::<VendorWithdrawResultX4>()?;
    if verified.body.merchant != merchant {
        return Err(WalletError::UidMismatch {
            expected: merchant,
            found: verified.body.merchant,
        });
    }
    let outcome = Outcome::from(&verified.body.decision);
    Ok(reply.record(
        WalletEvent::VendorWithdrawDecided {
            spent,
            outcome,
            value,
        },
        &verified.evidence,
    ))
}
