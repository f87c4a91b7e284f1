//! Double-entry postings at the broker (protocol.md section 5).
//!
//! An [`Account`] names one of the broker's ledgers; a [`Posting`] moves an [`Amount`] up or
//! down in it. The postings of one event must balance (the sum over all accounts, `external`
//! included, stays zero at every event); memo postings (`memo float:vendor:M`) are a separate
//! ledger that is not part of that sum.
//!
//! Sign convention: protocol.md writes `bank:C −W, float:broker +W`. Here `−` is
//! [`Direction::Decrease`] and `+` is [`Direction::Increase`], and an account's balance is
//! its increases minus its decreases. So `bank:<PAN>` and the floats are normally positive and
//! `external` is negative by the amount of money that entered through the bank: a deposit is
//! `external −v, bank:C +v`. An event balances when its increases and its decreases have the
//! same total.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::amount::{Amount, AmountError};
use crate::ids::{Pan, ParseIdError, Uid};

/// One ledger at the broker (protocol.md section 5). Its text form is the one the protocol
/// writes: `bank:<PAN>`, `float:broker`, `float:vendor:<uid>`, `external`.
///
/// `Debug` goes through [`Pan`]'s redacted `Debug`; `Display` shows the whole PAN because it
/// is the account's name in the ledger (for the bank operator and the auditor, not for logs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Account {
    /// `bank:<PAN>`: a peer's bank account; the broker never lets it go below zero.
    Bank(Pan),
    /// `float:broker`: the value of all live BrokerScrip.
    FloatBroker,
    /// `float:vendor:<uid>`: what the broker has paid merchant M for VendorScrip not yet spent
    /// nor withdrawn. Used as a memo account (see [`Posting`] and the module doc).
    FloatVendor(Uid),
    /// `external`: money entering or leaving the system through the bank.
    External,
}

const BANK_PREFIX: &str = "bank:";
const FLOAT_BROKER: &str = "float:broker";
const FLOAT_VENDOR_PREFIX: &str = "float:vendor:";
const EXTERNAL: &str = "external";

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Bank(pan) => write!(f, "{BANK_PREFIX}{}", pan.as_str()),
            Account::FloatBroker => f.write_str(FLOAT_BROKER),
            Account::FloatVendor(uid) => write!(f, "{FLOAT_VENDOR_PREFIX}{uid}"),
            Account::External => f.write_str(EXTERNAL),
        }
    }
}

/// Text that does not name an account (protocol.md section 5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseAccountError {
    /// Not `bank:…`, `float:broker`, `float:vendor:…` or `external`.
    #[error(
        "unknown account {0:?}: expected bank:<PAN>, float:broker, float:vendor:<uid> or external"
    )]
    Unknown(String),
    /// `bank:` with nothing after it.
    #[error("account \"bank:\" has an empty PAN")]
    EmptyPan,
    /// `float:vendor:` followed by something that is not a UID.
    #[error("bad merchant UID in a float:vendor account")]
    BadUid(#[source] ParseIdError),
}

impl FromStr for Account {
    type Err = ParseAccountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(pan) = s.strip_prefix(BANK_PREFIX) {
            if pan.is_empty() {
                return Err(ParseAccountError::EmptyPan);
            }
            return Ok(Account::Bank(Pan::new(pan)));
        }
        if let Some(uid) = s.strip_prefix(FLOAT_VENDOR_PREFIX) {
            return uid
                .parse()
                .map(Account::FloatVendor)
                .map_err(ParseAccountError::BadUid);
        }
        match s {
            FLOAT_BROKER => Ok(Account::FloatBroker),
            EXTERNAL => Ok(Account::External),
            other => Err(ParseAccountError::Unknown(other.to_owned())),
        }
    }
}

/// Which way a posting moves its account: protocol.md's `+` ([`Direction::Increase`]) or `−`
/// ([`Direction::Decrease`]). See the module doc for the sign convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// `+`: the account's balance grows.
    Increase,
    /// `−`: the account's balance shrinks.
    Decrease,
}

/// One line of an event's ledger entry: `account ±amount` (protocol.md section 5).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Posting {
    /// The account moved.
    pub account: Account,
    /// Up or down.
    pub direction: Direction,
    /// By how much, in minor units.
    pub amount: Amount,
}

impl Posting {
    /// `account +amount`.
    #[must_use]
    pub fn increase(account: Account, amount: Amount) -> Self {
        Posting {
            account,
            direction: Direction::Increase,
            amount,
        }
    }

    /// `account −amount`.
    #[must_use]
    pub fn decrease(account: Account, amount: Amount) -> Self {
        Posting {
            account,
            direction: Direction::Decrease,
            amount,
        }
    }
}

impl fmt::Display for Posting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.direction {
            Direction::Increase => '+',
            Direction::Decrease => '−',
        };
        write!(f, "{} {sign}{}", self.account, self.amount)
    }
}

/// Why an event's postings or memos cannot be recorded (protocol.md section 5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostingError {
    /// The increases and decreases of one event differ: money would appear or vanish, and the
    /// sum over all accounts would leave zero (protocol.md section 5, invariant).
    #[error("postings do not balance: increases {increases}, decreases {decreases}")]
    Unbalanced {
        /// Total of the `+` postings.
        increases: Amount,
        /// Total of the `−` postings.
        decreases: Amount,
    },
    /// One side's total exceeds `u64::MAX` minor units, which no account can hold
    /// (protocol.md section 1: every addition is checked).
    #[error("postings total overflows: {0}")]
    Overflow(#[source] AmountError),
    /// A memo posting on an account other than `float:vendor:<uid>`: memos exist only for the
    /// vendor floats (protocol.md section 5).
    #[error("memo posting on {account}, which is not a float:vendor account")]
    MemoAccount {
        /// The account the memo named.
        account: Account,
    },
}

/// Checks that `postings` balance (protocol.md section 5) and returns the amount they move
/// (the total of either side). An empty list balances and moves nothing.
pub fn check_balanced(postings: &[Posting]) -> Result<Amount, PostingError> {
    let side = |direction: Direction| {
        Amount::checked_sum(
            postings
                .iter()
                .filter(|p| p.direction == direction)
                .map(|p| p.amount),
        )
        .map_err(PostingError::Overflow)
    };
    let increases = side(Direction::Increase)?;
    let decreases = side(Direction::Decrease)?;
    if increases == decreases {
        Ok(increases)
    } else {
        Err(PostingError::Unbalanced {
            increases,
            decreases,
        })
    }
}

/// Checks that every memo posting is on a `float:vendor:<uid>` account, the only memo ledger
/// of protocol.md section 5. Memos need not balance: they are outside the zero sum.
pub fn check_memos(memos: &[Posting]) -> Result<(), PostingError> {
    match memos
        .iter()
        .find(|m| !matches!(m.account, Account::FloatVendor(_)))
    {
        Some(bad) => Err(PostingError::MemoAccount {
            account: bad.account.clone(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(minor: u64) -> Amount {
        Amount::from_minor(minor)
    }

    fn bank(pan: &str) -> Account {
        Account::Bank(Pan::new(pan))
    }

    #[test]
    fn accounts_display_as_the_protocol_writes_them() {
        let uid = Uid([0xab; 16]);
        assert_eq!(bank("GR16011").to_string(), "bank:GR16011");
        assert_eq!(Account::FloatBroker.to_string(), "float:broker");
        assert_eq!(
            Account::FloatVendor(uid).to_string(),
            format!("float:vendor:{}", "ab".repeat(16))
        );
        assert_eq!(Account::External.to_string(), "external");
        for account in [
            bank("GR16011"),
            bank("with:colon"),
            Account::FloatBroker,
            Account::FloatVendor(uid),
            Account::External,
        ] {
            assert_eq!(account.to_string().parse::<Account>(), Ok(account));
        }
    }

    #[test]
    fn account_debug_redacts_the_pan() {
        assert_eq!(
            format!("{:?}", bank("GR1601101250000000012300695")),
            "Bank(Pan(…0695))"
        );
    }

    #[test]
    fn bad_account_text_is_refused_with_a_typed_error() {
        assert_eq!("bank:".parse::<Account>(), Err(ParseAccountError::EmptyPan));
        for bad in [
            "",
            "float",
            "float:",
            "Bank:1",
            "external ",
            "float:brokers",
        ] {
            assert_eq!(
                bad.parse::<Account>(),
                Err(ParseAccountError::Unknown(bad.to_owned()))
            );
        }
        assert!(matches!(
            "float:vendor:xyz".parse::<Account>(),
            Err(ParseAccountError::BadUid(_))
        ));
    }

    #[test]
    fn postings_display_with_their_sign() {
        assert_eq!(
            Posting::decrease(bank("1"), a(250)).to_string(),
            "bank:1 −2.50"
        );
        assert_eq!(
            Posting::increase(Account::FloatBroker, a(250)).to_string(),
            "float:broker +2.50"
        );
    }

    /// protocol.md 6.1: `bank:C −W, float:broker +W`.
    #[test]
    fn a_broker_scrip_issue_balances() {
        let postings = [
            Posting::decrease(bank("C"), a(1000)),
            Posting::increase(Account::FloatBroker, a(1000)),
        ];
        assert_eq!(check_balanced(&postings), Ok(a(1000)));
        assert_eq!(check_balanced(&[]), Ok(Amount::ZERO));
    }

    #[test]
    fn unbalanced_postings_are_refused() {
        let postings = [
            Posting::decrease(bank("C"), a(1000)),
            Posting::increase(Account::FloatBroker, a(999)),
        ];
        assert_eq!(
            check_balanced(&postings),
            Err(PostingError::Unbalanced {
                increases: a(999),
                decreases: a(1000)
            })
        );
        assert_eq!(
            check_balanced(&[Posting::increase(Account::External, a(1))]),
            Err(PostingError::Unbalanced {
                increases: a(1),
                decreases: Amount::ZERO
            })
        );
    }

    #[test]
    fn an_overflowing_side_is_refused() {
        let max = a(u64::MAX);
        let postings = [
            Posting::increase(bank("A"), max),
            Posting::increase(bank("B"), a(1)),
            Posting::decrease(Account::External, max),
        ];
        assert_eq!(
            check_balanced(&postings),
            Err(PostingError::Overflow(AmountError::Overflow))
        );
    }

    #[test]
    fn memos_only_on_vendor_floats() {
        let vendor = Account::FloatVendor(Uid([1; 16]));
        assert_eq!(
            check_memos(&[
                Posting::increase(vendor.clone(), a(5)),
                Posting::decrease(vendor, a(2))
            ]),
            Ok(())
        );
        assert_eq!(
            check_memos(&[Posting::increase(Account::FloatBroker, a(5))]),
            Err(PostingError::MemoAccount {
                account: Account::FloatBroker
            })
        );
    }

    proptest! {
        /// Transfers (one decrease and one increase of the same amount) always balance, in
        /// any order; adding one minor unit to any posting unbalances them.
        #[test]
        fn transfers_balance_and_a_nudge_does_not(
            transfers in proptest::collection::vec((0u8..4, 0u8..4, 0u64..1_000_000), 1..8),
            nudge in any::<prop::sample::Index>(),
        ) {
            let account = |i: u8| bank(&i.to_string());
            let mut postings = Vec::new();
            let mut total = 0u64;
            for (from, to, amount) in &transfers {
                postings.push(Posting::decrease(account(*from), a(*amount)));
                postings.push(Posting::increase(account(*to), a(*amount)));
                total += amount;
            }
            prop_assert_eq!(check_balanced(&postings), Ok(a(total)));
            let i = nudge.index(postings.len());
            postings[i].amount = a(postings[i].amount.minor() + 1);
            let is_unbalanced = matches!(check_balanced(&postings), Err(PostingError::Unbalanced { .. }));
            prop_assert!(is_unbalanced);
        }
    }
}
