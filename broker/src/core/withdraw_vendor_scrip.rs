//! 6.7 Withdraw VendorScrip (paper 6.7, fig. 13), the broker's side: M's authorization
//! request (step 2) with C's forwarded part, the decision (step 3), M's reply (step 4) and
//! C's result (step 5).
//!
//! The broker is the decision point (section 7) and its decision is final and recorded
//! either way: `VendorScripRedeemed` (`bank:M −W, bank:C +W`, memo `float:vendor:M −W`) or
//! `VendorWithdrawRefused` with the reason (deadline in `X2` passed, amounts differ, or
//! `bank:M < W`). A repeat of M's request gets the stored decision, also after the
//! deadline; a first arrival after the deadline is refused. C's forwarded part that does
//! not open or verify, once M's own part did, is a recorded NOK too (6.7 step 3, section
//! 10: M may not undo on its own timer). Only the merchant C named in
//! its signed `X1` may relay C's part (and so bind C's tx): anyone else gets `NotAParty`
//! with nothing recorded.

use shared::ErrorCode;
use shared::events::{Account, NewEvent, Posting};
use shared::machine::Machine;
use shared::node::{Draft, Refusal, TxKind};
use shared::wire::bodies::{
    Re, VendorWithdrawAuthorizationX2, VendorWithdrawRequestX1, VendorWithdrawResponseX3,
    VendorWithdrawResultX4,
};
use shared::wire::{Decision as Verdict, Reason};

use super::machine::{WithdrawalState, WithdrawalStep};
use super::{Ctx, Decision, Kind, State, Verified, evidence_of, memo_alarm, passed, sender_peer};

pub(super) fn decide(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x2: &VendorWithdrawAuthorizationX2,
    x1: &Result<VendorWithdrawRequestX1, Reason>,
) -> Result<Decision, Refusal> {
    let merchant = v.header.sender;
    let customer = x2.customer;
    let tx = v.header.tx;
    let named = x1.as_ref().map_or(merchant, |x1| x1.merchant);
    state.bindings.check(
        &tx,
        TxKind::WithdrawVendorScrip,
        &[merchant, customer, named],
    )?;
    if named != merchant {
        return Err(Refusal::new(
            ErrorCode::NotAParty,
            "the customer named another merchant to relay this withdrawal",
        ));
    }
    let merchant_pan = &sender_peer(state, v)?.pan;
    // C's part verified under C's registered key, so C is registered whenever it did.
    let customer_pan = state.peers.get(&customer).map(|peer| &peer.pan);
    let value = x2.value;
    let verdict = match (x1, customer_pan) {
        (Ok(x1), Some(_)) => check(state, ctx, x2, x1, merchant_pan),
        (Ok(_), None) => Verdict::Nok(Reason::new(
            ErrorCode::UnknownPeer,
            "the customer is not registered",
        )),
        // A customer part that did not verify is refused with a recorded NOK (6.7 step 3,
        // section 10): M may not undo on its own timer and must get a decision.
        (Err(reason), _) => Verdict::Nok(reason.clone()),
    };
    let step = if verdict.is_ok() {
        WithdrawalStep::Redeemed
    } else {
        WithdrawalStep::Refused
    };
    WithdrawalState::transition(state.withdrawal_state(&tx), &step).map_err(|_| {
        Refusal::new(
            ErrorCode::TxReused,
            "this tx already has a decided withdrawal",
        )
    })?;
    let mut events = vec![
        match (&verdict, customer_pan) {
            (Verdict::Ok, Some(customer_pan)) => NewEvent::new(
                ctx.now.to_millis(),
                tx,
                Kind::VendorScripRedeemed {
                    customer,
                    merchant,
                    value,
                },
            )
            .with_postings(vec![
                Posting::decrease(Account::Bank(merchant_pan.clone()), value),
                Posting::increase(Account::Bank(customer_pan.clone()), value),
            ])
            .with_memos(vec![Posting::decrease(
                Account::FloatVendor(merchant),
                value,
            )]),
            (Verdict::Nok(reason), _) => NewEvent::new(
                ctx.now.to_millis(),
                tx,
                Kind::VendorWithdrawRefused {
                    customer,
                    merchant,
                    value,
                    reason: reason.clone(),
                },
            ),
            // `verdict` is a NOK whenever C is not registered.
            (Verdict::Ok, None) => {
                return Err(Refusal::new(
                    ErrorCode::Internal,
                    "an OK for an unregistered customer",
                ));
            }
        }
        .with_evidence(evidence_of(v)),
    ];
    if verdict.is_ok() {
        events.extend(memo_alarm(state, ctx, tx, merchant, value));
    }
    let reply = VendorWithdrawResponseX3 {
        re: Re::new(&v.header, v.digest.clone()),
        decision: verdict.clone(),
        customer,
        value,
    };
    let info = if verdict.is_ok() {
        "credited to your bank account"
    } else {
        "refused: the merchant releases your VendorScrip"
    };
    let result = VendorWithdrawResultX4 {
        merchant,
        decision: verdict,
        info: info.to_owned(),
    };
    Ok(Decision {
        events,
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &reply).sealed_with(Vec::new()),
        // C hears the result if it is a peer the broker can seal to.
        deliveries: customer_pan
            .map(|_| {
                Draft::delivery(ctx.config.suite, tx, ctx.me, customer, &result)
                    .sealed_with(Vec::new())
            })
            .into_iter()
            .collect(),
    })
}

/// Step 3's checks; each failure is a recorded NOK.
fn check(
    state: &State,
    ctx: &Ctx<'_>,
    x2: &VendorWithdrawAuthorizationX2,
    x1: &VendorWithdrawRequestX1,
    merchant_pan: &shared::ids::Pan,
) -> Verdict {
    let refuse = |code, message: &str| Verdict::Nok(Reason::new(code, message));
    if passed(ctx.now, x2.deadline) {
        return refuse(
            ErrorCode::DeadlinePassed,
            "the withdrawal's deadline passed",
        );
    }
    if x1.value != x2.value {
        return refuse(
            ErrorCode::AmountMismatch,
            "the customer's and the merchant's amounts differ",
        );
    }
    if x2.value.is_zero() {
        return refuse(
            ErrorCode::AmountOutOfRange,
            "a withdrawal must have a value",
        );
    }
    if state.bank_balance(merchant_pan) < x2.value {
        return refuse(
            ErrorCode::MerchantBalanceTooLow,
            "the merchant's bank balance is below the amount",
        );
    }
    Verdict::Ok
}
