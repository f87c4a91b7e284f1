//! The broker's side of the three three-party transactions as state machines
//! ([`shared::machine::Machine`]): the exchange of 6.2, the escrow of 6.5 and the
//! withdrawal of 6.7. The broker is their decision point (protocol.md section 7), so it
//! keeps every state, the final ones too, in its tables (`exchanges`, `escrows`,
//! `withdrawals`).
//!
//! ```text
//! 6.2  ExchangeOpened → Open ─┬─ ExchangeAuthorized → Authorized
//!                             ├─ ExchangeRefused    → Refused
//!                             └─ ExchangeExpired    → Expired ── ExchangeRefused → Expired
//!      ExchangeRefused → Refused   (M asked with no exchange announced, 6.2 step 4)
//! 6.5  EscrowOpened   → Open ─┬─ VendorTopUpSettled → Settled
//!                             └─ EscrowReleased     → Released ── VendorTopUpRefused → Released
//! 6.7  VendorScripRedeemed → Redeemed,  VendorWithdrawRefused → Refused
//! ```
//!
//! The loops on `Expired` and `Released` are the recorded answer to M's first request after
//! the deadline (6.2 step 4, 6.5 step 6: every later request of the tx gets the stored NOK);
//! C was told when the transaction ended, and it stays ended. 6.7 has no state before the
//! decision at the broker: M's step 2 is the first the broker hears of it, and the decision
//! is taken at once (6.7 step 3).

use shared::machine::Machine;
use shared::wire::Reason;

use super::events::Kind;

/// Where an exchange of 6.2 stands at the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExchangeState {
    /// Announced (step 1), no decision yet.
    Open,
    /// Authorized (step 4, OK).
    Authorized,
    /// Refused (step 4, NOK), final.
    Refused,
    /// Closed by its deadline with no decision.
    Expired,
}

/// The broker's events of 6.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeStep {
    /// `ExchangeOpened` (step 1).
    Opened,
    /// `ExchangeAuthorized` (step 4, OK).
    Authorized,
    /// `ExchangeRefused` (step 4, NOK).
    Refused,
    /// `ExchangeExpired` (the deadline passed with no decision).
    Expired,
}

impl Machine for ExchangeState {
    const NAME: &'static str = "6.2 exchange at the broker";
    type Step = ExchangeStep;

    fn name(&self) -> &'static str {
        match self {
            ExchangeState::Open => "Open",
            ExchangeState::Authorized => "Authorized",
            ExchangeState::Refused => "Refused",
            ExchangeState::Expired => "Expired",
        }
    }

    fn step_name(step: &ExchangeStep) -> &'static str {
        match step {
            ExchangeStep::Opened => "ExchangeOpened",
            ExchangeStep::Authorized => "ExchangeAuthorized",
            ExchangeStep::Refused => "ExchangeRefused",
            ExchangeStep::Expired => "ExchangeExpired",
        }
    }

    fn next(from: Option<&ExchangeState>, step: &ExchangeStep) -> Option<ExchangeState> {
        use ExchangeState as S;
        use ExchangeStep as E;
        match (from, step) {
            (None, E::Opened) => Some(S::Open),
            // M asked with no exchange announced: refused and recorded (6.2 step 4).
            (None, E::Refused) => Some(S::Refused),
            (Some(S::Open), E::Authorized) => Some(S::Authorized),
            (Some(S::Open), E::Refused) => Some(S::Refused),
            (Some(S::Open), E::Expired) | (Some(S::Expired), E::Refused) => Some(S::Expired),
            _ => None,
        }
    }

    fn is_final(&self) -> bool {
        *self != ExchangeState::Open
    }
}

/// Where an escrow of 6.5 stands at the broker.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EscrowState {
    /// `B0` held, waiting for M's step 3 until the deadline.
    Open,
    /// M accepted in time: `B0` spent, M paid.
    Settled,
    /// Released with this NOK (declined, mismatched, or deadline passed); `B0` live again.
    Released(Reason),
}

/// The broker's events of 6.5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EscrowStep {
    /// `EscrowOpened` (step 2).
    Opened,
    /// `VendorTopUpSettled` (step 4, OK).
    Settled,
    /// `EscrowReleased` with its NOK (step 4 or the deadline).
    Released(Reason),
    /// `VendorTopUpRefused`: M's first step 3 after the release, answered with its NOK.
    Refused,
}

impl Machine for EscrowState {
    const NAME: &'static str = "6.5 escrow at the broker";
    type Step = EscrowStep;

    fn name(&self) -> &'static str {
        match self {
            EscrowState::Open => "Open",
            EscrowState::Settled => "Settled",
            EscrowState::Released(_) => "Released",
        }
    }

    fn step_name(step: &EscrowStep) -> &'static str {
        match step {
            EscrowStep::Opened => "EscrowOpened",
            EscrowStep::Settled => "VendorTopUpSettled",
            EscrowStep::Released(_) => "EscrowReleased",
            EscrowStep::Refused => "VendorTopUpRefused",
        }
    }

    fn next(from: Option<&EscrowState>, step: &EscrowStep) -> Option<EscrowState> {
        use EscrowState as S;
        use EscrowStep as E;
        match (from, step) {
            (None, E::Opened) => Some(S::Open),
            (Some(S::Open), E::Settled) => Some(S::Settled),
            (Some(S::Open), E::Released(reason)) => Some(S::Released(reason.clone())),
            (Some(S::Released(reason)), E::Refused) => Some(S::Released(reason.clone())),
            _ => None,
        }
    }

    fn is_final(&self) -> bool {
        *self != EscrowState::Open
    }
}

/// The broker's decision on a VendorScrip withdrawal of 6.7. The variants are in this
/// order so that the stored row encodes as the `redeemed: bool` it replaced (postcard
/// writes both as one byte, 0 or 1): files written before read the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WithdrawalState {
    /// Refused (step 3, NOK): M releases `V0`.
    Refused,
    /// Redeemed (step 3, OK): `bank:M −W, bank:C +W`.
    Redeemed,
}

/// The broker's events of 6.7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithdrawalStep {
    /// `VendorScripRedeemed` (step 3, OK).
    Redeemed,
    /// `VendorWithdrawRefused` (step 3, NOK).
    Refused,
}

impl Machine for WithdrawalState {
    const NAME: &'static str = "6.7 withdrawal at the broker";
    type Step = WithdrawalStep;

    fn name(&self) -> &'static str {
        match self {
            WithdrawalState::Refused => "Refused",
            WithdrawalState::Redeemed => "Redeemed",
        }
    }

    fn step_name(step: &WithdrawalStep) -> &'static str {
        match step {
            WithdrawalStep::Redeemed => "VendorScripRedeemed",
            WithdrawalStep::Refused => "VendorWithdrawRefused",
        }
    }

    fn next(from: Option<&WithdrawalState>, step: &WithdrawalStep) -> Option<WithdrawalState> {
        match (from, step) {
            (None, WithdrawalStep::Redeemed) => Some(WithdrawalState::Redeemed),
            (None, WithdrawalStep::Refused) => Some(WithdrawalState::Refused),
            _ => None,
        }
    }

    fn is_final(&self) -> bool {
        true
    }
}

/// The step of a three-party transaction an event of the broker is, by machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A step of 6.2.
    Exchange(ExchangeStep),
    /// A step of 6.5.
    Escrow(EscrowStep),
    /// A step of 6.7.
    Withdrawal(WithdrawalStep),
}

impl Step {
    /// The step `kind` is, or `None` for an event of no three-party transaction.
    #[must_use]
    pub fn of(kind: &Kind) -> Option<Step> {
        Some(match kind {
            Kind::ExchangeOpened { .. } => Step::Exchange(ExchangeStep::Opened),
            Kind::ExchangeAuthorized { .. } => Step::Exchange(ExchangeStep::Authorized),
            Kind::ExchangeRefused { .. } => Step::Exchange(ExchangeStep::Refused),
            Kind::ExchangeExpired { .. } => Step::Exchange(ExchangeStep::Expired),
            Kind::EscrowOpened { .. } => Step::Escrow(EscrowStep::Opened),
            Kind::VendorTopUpSettled { .. } => Step::Escrow(EscrowStep::Settled),
            Kind::EscrowReleased { reason, .. } => {
                Step::Escrow(EscrowStep::Released(reason.clone()))
            }
            Kind::VendorTopUpRefused { .. } => Step::Escrow(EscrowStep::Refused),
            Kind::VendorScripRedeemed { .. } => Step::Withdrawal(WithdrawalStep::Redeemed),
            Kind::VendorWithdrawRefused { .. } => Step::Withdrawal(WithdrawalStep::Refused),
            _ => return None,
        })
    }
}

/// Where an event moved its transaction: the state it entered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Moved {
    /// The exchange's new state.
    Exchange(ExchangeState),
    /// The escrow's new state.
    Escrow(EscrowState),
    /// The withdrawal's decision.
    Withdrawal(WithdrawalState),
}

impl Moved {
    /// Whether the transaction ended with this move.
    #[must_use]
    pub fn is_final(&self) -> bool {
        match self {
            Moved::Exchange(s) => s.is_final(),
            Moved::Escrow(s) => s.is_final(),
            Moved::Withdrawal(s) => s.is_final(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::ErrorCode;

    fn exchange(from: Option<ExchangeState>, step: ExchangeStep) -> Option<ExchangeState> {
        ExchangeState::transition(from.as_ref(), &step).ok()
    }

    #[test]
    fn an_exchange_is_decided_once_or_expires() {
        use ExchangeState as S;
        use ExchangeStep as E;
        assert_eq!(exchange(None, E::Opened), Some(S::Open));
        assert_eq!(exchange(Some(S::Open), E::Authorized), Some(S::Authorized));
        assert_eq!(exchange(Some(S::Open), E::Refused), Some(S::Refused));
        assert_eq!(exchange(Some(S::Open), E::Expired), Some(S::Expired));
        // A request after the deadline gets its recorded NOK; the exchange stays expired.
        assert_eq!(exchange(Some(S::Expired), E::Refused), Some(S::Expired));
        for decided in [S::Authorized, S::Refused, S::Expired] {
            assert_eq!(exchange(Some(decided), E::Authorized), None, "{decided:?}");
            assert_eq!(exchange(Some(decided), E::Expired), None, "{decided:?}");
            assert_eq!(exchange(Some(decided), E::Opened), None, "{decided:?}");
        }
        assert_eq!(exchange(Some(S::Authorized), E::Refused), None);
        for step in [E::Authorized, E::Expired] {
            assert_eq!(exchange(None, step), None, "{step:?}");
        }
        // M asked with no exchange announced: the recorded NOK of 6.2 step 4.
        assert_eq!(exchange(None, E::Refused), Some(S::Refused));
        let err = ExchangeState::transition(Some(&S::Refused), &E::Authorized).unwrap_err();
        assert_eq!(
            err.to_string(),
            "6.2 exchange at the broker: ExchangeAuthorized cannot follow Refused"
        );
    }

    #[test]
    fn an_escrow_is_settled_or_released_once() {
        use EscrowState as S;
        use EscrowStep as E;
        let nok = Reason::new(ErrorCode::Declined, "no");
        let released = S::Released(nok.clone());
        let next = |from: Option<&S>, step: E| S::transition(from, &step).ok();
        assert_eq!(next(None, E::Opened), Some(S::Open));
        assert_eq!(next(Some(&S::Open), E::Settled), Some(S::Settled));
        assert_eq!(
            next(Some(&S::Open), E::Released(nok.clone())),
            Some(released.clone())
        );
        // The late answer carries the escrow's own NOK.
        assert_eq!(next(Some(&released), E::Refused), Some(released.clone()));
        assert_eq!(next(Some(&S::Open), E::Refused), None);
        assert_eq!(next(Some(&S::Settled), E::Refused), None);
        assert_eq!(next(Some(&S::Settled), E::Released(nok.clone())), None);
        assert_eq!(next(Some(&released), E::Settled), None);
        assert_eq!(next(Some(&S::Open), E::Opened), None);
        assert_eq!(next(None, E::Settled), None);
        assert!(!S::Open.is_final() && S::Settled.is_final() && released.is_final());
    }

    #[test]
    fn a_withdrawal_is_decided_once() {
        use WithdrawalState as S;
        use WithdrawalStep as E;
        assert_eq!(S::transition(None, &E::Redeemed), Ok(S::Redeemed));
        assert_eq!(S::transition(None, &E::Refused), Ok(S::Refused));
        assert!(S::transition(Some(&S::Refused), &E::Redeemed).is_err());
        assert!(S::transition(Some(&S::Redeemed), &E::Refused).is_err());
    }

    /// The decision replaced a `bool`; the rows of files written before still decode.
    #[test]
    fn a_withdrawal_decision_encodes_as_the_bool_it_replaced() {
        for (state, redeemed) in [
            (WithdrawalState::Refused, false),
            (WithdrawalState::Redeemed, true),
        ] {
            assert_eq!(
                postcard::to_allocvec(&state).unwrap(),
                postcard::to_allocvec(&redeemed).unwrap()
            );
        }
    }
}
