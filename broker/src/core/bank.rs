//! The bank operator's API (protocol.md sections 1 and 5): opening an account, deposits and
//! payouts, each an event that moves money between `external` and `bank:<PAN>`.
//!
//! Decided like a peer's request (pure, on the state, nothing changes on a refusal) but not
//! a wire message: the operator's tool calls the node directly, so its refusals are a
//! [`BankError`], not an `ErrorCode`.

use shared::events::{Account, NewEvent, Posting};
use shared::ids::{AccountId, Pan, PanSecret, TxId};
use shared::{Amount, Suite, UnixSecs};

use super::{Kind, State};

/// Why the bank operator's request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// `open_account` for a PAN that exists.
    #[error("bank account {0:?} already exists")]
    PanExists(Pan),
    /// A deposit or payout for a PAN that does not exist.
    #[error("no bank account {0:?}")]
    PanUnknown(Pan),
    /// A PANSecret of fewer than 16 bytes (section 1: at least 128 bits).
    #[error("a PANSecret must have at least 16 bytes")]
    WeakSecret,
    /// A deposit or payout of zero.
    #[error("the amount must not be zero")]
    ZeroAmount,
    /// A payout above what the account may pay out (section 5: bank:M − memo float:vendor:M).
    #[error("payout of {asked} exceeds the {available} available")]
    Insufficient {
        /// The payout asked.
        asked: Amount,
        /// The balance less the merchant's outstanding VendorScrip.
        available: Amount,
    },
    /// The balance would exceed `u64::MAX` minor units.
    #[error("the balance would overflow")]
    Overflow,
}

impl BankError {
    /// The wire code of this refusal, for the operator's administration requests
    /// (ADR 0010) and the operator's tools.
    #[must_use]
    pub fn code(&self) -> shared::ErrorCode {
        use shared::ErrorCode;
        match self {
            BankError::PanExists(_) => ErrorCode::AccountExists,
            BankError::PanUnknown(_) => ErrorCode::PanUnknown,
            BankError::WeakSecret => ErrorCode::WeakPanSecret,
            BankError::ZeroAmount | BankError::Overflow => ErrorCode::AmountOutOfRange,
            BankError::Insufficient { .. } => ErrorCode::InsufficientFunds,
        }
    }
}

/// The shortest PANSecret an account may be opened with: 128 bits (section 1).
pub const MIN_PAN_SECRET_BYTES: usize = 16;

/// An account opening: the event (PAN and ID commitment only) and the ID for the secrets
/// table, written in the same commit.
#[derive(Debug)]
pub struct AccountOpening {
    /// `AccountOpened`.
    pub event: NewEvent<Kind>,
    /// `ID = H(PANSecret ‖ H(PANSecret) ‖ PAN)`, for the secrets table only.
    pub id: AccountId,
}

/// Decides opening `bank:<pan>` with `secret` (drawn by the operator's tool). The event
/// holds `H("peerscrip/id-commit" ‖ ID)`, never the ID or the PANSecret (section 1).
pub fn open_account(
    state: &State,
    suite: Suite,
    pan: &Pan,
    secret: &PanSecret,
    tx: TxId,
    now: UnixSecs,
) -> Result<AccountOpening, BankError> {
    if secret.expose().len() < MIN_PAN_SECRET_BYTES {
        return Err(BankError::WeakSecret);
    }
    let id = AccountId::derive(suite, secret, pan);
    let event = open_account_with_id(state, suite, pan, &id, tx, now)?;
    Ok(AccountOpening { event, id })
}

/// Decides opening `bank:<pan>` whose ID was derived from a checked PANSecret (the
/// operator's remote request, `admin`): the event holds only the ID's commitment.
pub fn open_account_with_id(
    state: &State,
    suite: Suite,
    pan: &Pan,
    id: &AccountId,
    tx: TxId,
    now: UnixSecs,
) -> Result<NewEvent<Kind>, BankError> {
    if state.pans.contains_key(pan) {
        return Err(BankError::PanExists(pan.clone()));
    }
    Ok(NewEvent::new(
        now.to_millis(),
        tx,
        Kind::AccountOpened {
            pan: pan.clone(),
            id_commitment: id.commitment(suite),
        },
    ))
}

/// Decides a deposit: `external −v, bank:<pan> +v`.
pub fn deposit(
    state: &State,
    pan: &Pan,
    amount: Amount,
    tx: TxId,
    now: UnixSecs,
) -> Result<NewEvent<Kind>, BankError> {
    existing(state, pan, amount)?;
    state
        .bank_balance(pan)
        .checked_add(amount)
        .map_err(|_| BankError::Overflow)?;
    Ok(NewEvent::new(
        now.to_millis(),
        tx,
        Kind::Deposited {
            pan: pan.clone(),
            amount,
        },
    )
    .with_postings(vec![
        Posting::decrease(Account::External, amount),
        Posting::increase(Account::Bank(pan.clone()), amount),
    ]))
}

/// Decides a payout: `bank:<pan> −v, external +v`, limited to the balance less the memo
/// `float:vendor:M` of the merchant registered on the account (section 5: a merchant
/// cannot cash out value its customers still hold as VendorScrip).
pub fn payout(
    state: &State,
    pan: &Pan,
    amount: Amount,
    tx: TxId,
    now: UnixSecs,
) -> Result<NewEvent<Kind>, BankError> {
    existing(state, pan, amount)?;
    let available = available_for_payout(state, pan);
    if amount > available {
        return Err(BankError::Insufficient {
            asked: amount,
            available,
        });
    }
    Ok(NewEvent::new(
        now.to_millis(),
        tx,
        Kind::PaidOut {
            pan: pan.clone(),
            amount,
        },
    )
    .with_postings(vec![
        Posting::decrease(Account::Bank(pan.clone()), amount),
        Posting::increase(Account::External, amount),
    ]))
}

/// `bank:<pan> − memo float:vendor:M` (never below zero; a negative memo, an audit alarm,
/// counts as zero).
#[must_use]
pub fn available_for_payout(state: &State, pan: &Pan) -> Amount {
    let balance = state.bank_balance(pan);
    let memo = state
        .pans
        .get(pan)
        .and_then(|r| r.registered)
        .map_or(0, |uid| state.memo(&uid));
    let held = u64::try_from(memo).map_or(Amount::ZERO, Amount::from_minor);
    balance.checked_sub(held).unwrap_or(Amount::ZERO)
}

fn existing(state: &State, pan: &Pan, amount: Amount) -> Result<(), BankError> {
    if !state.pans.contains_key(pan) {
        return Err(BankError::PanUnknown(pan.clone()));
    }
    if amount.is_zero() {
        return Err(BankError::ZeroAmount);
    }
    Ok(())
}
