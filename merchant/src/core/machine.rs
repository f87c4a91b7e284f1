//! The merchant's side of the three three-party transactions as state machines
//! ([`shared::machine::Machine`]): the exchange of 6.2, the top-up of 6.5 and the
//! withdrawal of 6.7.
//!
//! The merchant is a participant, not the decision point (protocol.md section 7): it
//! records what it asks or holds, repeats its request to the broker until the broker's
//! signed decision arrives, and acts on that decision only. So each machine has the states
//! in which the merchant waits, kept in the `awaiting` table (the request it repeats), and
//! one final state, `Decided`: once the merchant has acted on the decision the tx awaits
//! nothing and leaves that table, and it is known as decided by its binding to the
//! transaction (section 7), which stays. What the decision was is in the log.
//!
//! ```text
//! 6.2  ExchangeRequested  → Requested ─┬─ VendorScripIssued (OK)     → Decided
//!                                      └─ ExchangeRefused (NOK)      → Decided
//! 6.5  VendorEscrowOpened → Accepted ──┬─ VendorScripToppedUp (OK)   → Decided
//!                                      └─ VendorEscrowReleased (NOK) → Decided
//!      VendorTopUpDeclined → Declined ─── VendorTopUpClosed          → Decided
//! 6.7  VendorEscrowOpened → Held ──────┬─ VendorScripWithdrawn (OK)  → Decided
//!                                      └─ VendorEscrowReleased (NOK) → Decided
//! ```
//!
//! An escrow's state names the VendorScrip it holds (section 4: `V0` is `Held` by this tx);
//! the step that ends it must name the same scrip.

use serde::{Deserialize, Serialize};
use shared::ScripId;
use shared::machine::Machine;

/// Where an exchange of 6.2 stands at the merchant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeState {
    /// Step 3: the merchant asked the broker (`ExchangeRequested`); C's answer waits for the
    /// decision.
    Requested,
    /// Step 7: the broker's decision acted on (`VendorScripIssued` or `ExchangeRefused`).
    Decided,
}

/// The merchant's events of 6.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeStep {
    /// `ExchangeRequested` (step 3).
    Requested,
    /// `VendorScripIssued` (step 7, on the broker's OK).
    Issued,
    /// `ExchangeRefused` (step 7, on the broker's NOK).
    Refused,
}

impl Machine for ExchangeState {
    const NAME: &'static str = "6.2 exchange at the merchant";
    type Step = ExchangeStep;

    fn name(&self) -> &'static str {
        match self {
            ExchangeState::Requested => "Requested",
            ExchangeState::Decided => "Decided",
        }
    }

    fn step_name(step: &ExchangeStep) -> &'static str {
        match step {
            ExchangeStep::Requested => "ExchangeRequested",
            ExchangeStep::Issued => "VendorScripIssued",
            ExchangeStep::Refused => "ExchangeRefused",
        }
    }

    fn next(from: Option<&ExchangeState>, step: &ExchangeStep) -> Option<ExchangeState> {
        match (from, step) {
            (None, ExchangeStep::Requested) => Some(ExchangeState::Requested),
            (Some(ExchangeState::Requested), ExchangeStep::Issued | ExchangeStep::Refused) => {
                Some(ExchangeState::Decided)
            }
            _ => None,
        }
    }

    fn is_final(&self) -> bool {
        *self == ExchangeState::Decided
    }
}

/// Where a top-up of 6.5 stands at the merchant. Kept in its `awaiting` row while it waits
/// (never `Decided` there); the two waiting variants come first, in this order, so that
/// the row encodes as the `Option<ScripId>` it replaced (`None` ↔ `Declined`, `Some` ↔
/// `Accepted`): files written before read the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopUpState {
    /// Step 3, declined (`VendorTopUpDeclined`): nothing held; the decline is repeated until
    /// the broker closes the tx.
    Declined,
    /// Step 3, accepted (`VendorEscrowOpened`): `held` (V0) is held until the decision.
    Accepted {
        /// V0.
        held: ScripId,
    },
    /// Step 5: the broker's decision acted on (`VendorScripToppedUp`,
    /// `VendorEscrowReleased` or `VendorTopUpClosed`).
    Decided,
}

/// The merchant's events of 6.5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopUpStep {
    /// `VendorEscrowOpened` of a top-up (step 3, accept): V0 held.
    Accepted {
        /// V0.
        held: ScripId,
    },
    /// `VendorTopUpDeclined` (step 3, decline).
    Declined,
    /// `VendorScripToppedUp` (step 5, on the broker's OK): V0 spent.
    ToppedUp {
        /// V0.
        spent: ScripId,
    },
    /// `VendorEscrowReleased` (step 5, on the broker's NOK): V0 live again.
    Released {
        /// V0.
        scrip: ScripId,
    },
    /// `VendorTopUpClosed` (the broker's decision on a decline).
    Closed,
}

impl Machine for TopUpState {
    const NAME: &'static str = "6.5 top-up at the merchant";
    type Step = TopUpStep;

    fn name(&self) -> &'static str {
        match self {
            TopUpState::Declined => "Declined",
            TopUpState::Accepted { .. } => "Accepted",
            TopUpState::Decided => "Decided",
        }
    }

    fn step_name(step: &TopUpStep) -> &'static str {
        match step {
            TopUpStep::Accepted { .. } => "VendorEscrowOpened",
            TopUpStep::Declined => "VendorTopUpDeclined",
            TopUpStep::ToppedUp { .. } => "VendorScripToppedUp",
            TopUpStep::Released { .. } => "VendorEscrowReleased",
            TopUpStep::Closed => "VendorTopUpClosed",
        }
    }

    fn next(from: Option<&TopUpState>, step: &TopUpStep) -> Option<TopUpState> {
        use TopUpState as S;
        use TopUpStep as E;
        match (from, step) {
            (None, E::Accepted { held }) => Some(S::Accepted { held: *held }),
            (None, E::Declined) => Some(S::Declined),
            (Some(S::Accepted { held }), E::ToppedUp { spent: scrip } | E::Released { scrip })
                if scrip == held =>
            {
                Some(S::Decided)
            }
            (Some(S::Declined), E::Closed) => Some(S::Decided),
            _ => None,
        }
    }

    fn is_final(&self) -> bool {
        *self == TopUpState::Decided
    }
}

/// Where a withdrawal of 6.7 stands at the merchant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithdrawState {
    /// Steps 1–2 (`VendorEscrowOpened`): `held` (V0) is held until the decision.
    Held {
        /// V0.
        held: ScripId,
    },
    /// Step 4: the broker's decision acted on (`VendorScripWithdrawn` or
    /// `VendorEscrowReleased`).
    Decided,
}

/// The merchant's events of 6.7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithdrawStep {
    /// `VendorEscrowOpened` of a withdrawal (step 2): V0 held.
    Held {
        /// V0.
        held: ScripId,
    },
    /// `VendorScripWithdrawn` (step 4, on the broker's OK): V0 spent.
    Withdrawn {
        /// V0.
        spent: ScripId,
    },
    /// `VendorEscrowReleased` (step 4, on the broker's NOK): V0 live again.
    Released {
        /// V0.
        scrip: ScripId,
    },
}

impl Machine for WithdrawState {
    const NAME: &'static str = "6.7 withdrawal at the merchant";
    type Step = WithdrawStep;

    fn name(&self) -> &'static str {
        match self {
            WithdrawState::Held { .. } => "Held",
            WithdrawState::Decided => "Decided",
        }
    }

    fn step_name(step: &WithdrawStep) -> &'static str {
        match step {
            WithdrawStep::Held { .. } => "VendorEscrowOpened",
            WithdrawStep::Withdrawn { .. } => "VendorScripWithdrawn",
            WithdrawStep::Released { .. } => "VendorEscrowReleased",
        }
    }

    fn next(from: Option<&WithdrawState>, step: &WithdrawStep) -> Option<WithdrawState> {
        use WithdrawState as S;
        use WithdrawStep as E;
        match (from, step) {
            (None, E::Held { held }) => Some(S::Held { held: *held }),
            (Some(S::Held { held }), E::Withdrawn { spent: scrip } | E::Released { scrip })
                if scrip == held =>
            {
                Some(S::Decided)
            }
            _ => None,
        }
    }

    fn is_final(&self) -> bool {
        *self == WithdrawState::Decided
    }
}

/// The step of a three-party transaction an event of the merchant is, by machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A step of 6.2.
    Exchange(ExchangeStep),
    /// A step of 6.5.
    TopUp(TopUpStep),
    /// A step of 6.7.
    Withdraw(WithdrawStep),
}

/// Where an event moved its transaction: the state it entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moved {
    /// The exchange's new state.
    Exchange(ExchangeState),
    /// The top-up's new state.
    TopUp(TopUpState),
    /// The withdrawal's new state.
    Withdraw(WithdrawState),
}

impl Moved {
    /// Whether the transaction ended with this move (the merchant acted on the decision).
    #[must_use]
    pub fn is_final(&self) -> bool {
        match self {
            Moved::Exchange(s) => s.is_final(),
            Moved::TopUp(s) => s.is_final(),
            Moved::Withdraw(s) => s.is_final(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V0: ScripId = ScripId([1; 16]);
    const OTHER: ScripId = ScripId([2; 16]);

    #[test]
    fn an_exchange_is_requested_then_decided_once() {
        use ExchangeState as S;
        use ExchangeStep as E;
        let next = |from: Option<S>, step| S::transition(from.as_ref(), &step).ok();
        assert_eq!(next(None, E::Requested), Some(S::Requested));
        assert_eq!(next(Some(S::Requested), E::Issued), Some(S::Decided));
        assert_eq!(next(Some(S::Requested), E::Refused), Some(S::Decided));
        assert_eq!(next(Some(S::Requested), E::Requested), None);
        for step in [E::Requested, E::Issued, E::Refused] {
            assert_eq!(next(Some(S::Decided), step), None, "{step:?}");
        }
        assert_eq!(next(None, E::Refused), None);
    }

    #[test]
    fn a_top_up_ends_on_the_decision_for_its_own_scrip() {
        use TopUpState as S;
        use TopUpStep as E;
        let next = |from: Option<S>, step| S::transition(from.as_ref(), &step).ok();
        let accepted = S::Accepted { held: V0 };
        assert_eq!(next(None, E::Accepted { held: V0 }), Some(accepted));
        assert_eq!(next(None, E::Declined), Some(S::Declined));
        assert_eq!(
            next(Some(accepted), E::ToppedUp { spent: V0 }),
            Some(S::Decided)
        );
        assert_eq!(
            next(Some(accepted), E::Released { scrip: V0 }),
            Some(S::Decided)
        );
        assert_eq!(next(Some(accepted), E::ToppedUp { spent: OTHER }), None);
        assert_eq!(next(Some(accepted), E::Released { scrip: OTHER }), None);
        assert_eq!(next(Some(accepted), E::Closed), None);
        assert_eq!(next(Some(S::Declined), E::Closed), Some(S::Decided));
        assert_eq!(next(Some(S::Declined), E::ToppedUp { spent: V0 }), None);
        assert_eq!(next(Some(S::Decided), E::Released { scrip: V0 }), None);
        assert_eq!(next(Some(S::Decided), E::Declined), None);
    }

    #[test]
    fn a_withdrawal_ends_on_the_decision_for_its_own_scrip() {
        use WithdrawState as S;
        use WithdrawStep as E;
        let next = |from: Option<S>, step| S::transition(from.as_ref(), &step).ok();
        let held = S::Held { held: V0 };
        assert_eq!(next(None, E::Held { held: V0 }), Some(held));
        assert_eq!(
            next(Some(held), E::Withdrawn { spent: V0 }),
            Some(S::Decided)
        );
        assert_eq!(
            next(Some(held), E::Released { scrip: V0 }),
            Some(S::Decided)
        );
        assert_eq!(next(Some(held), E::Withdrawn { spent: OTHER }), None);
        assert_eq!(next(Some(held), E::Held { held: V0 }), None);
        assert_eq!(next(Some(S::Decided), E::Withdrawn { spent: V0 }), None);
        assert_eq!(next(None, E::Released { scrip: V0 }), None);
    }

    /// The top-up's waiting states replaced an `Option<ScripId>` in the `awaiting` rows; the
    /// rows of files written before still decode.
    #[test]
    fn a_waiting_top_up_encodes_as_the_option_it_replaced() {
        fn enc(value: &impl Serialize) -> Vec<u8> {
            postcard::to_allocvec(value).unwrap()
        }
        assert_eq!(enc(&TopUpState::Declined), enc(&None::<ScripId>));
        assert_eq!(enc(&TopUpState::Accepted { held: V0 }), enc(&Some(V0)));
    }
}
