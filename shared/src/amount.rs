//! Money: `Amount`, an unsigned count of minor units (cents) of the deployment's single
//! currency (protocol.md section 1).
//!
//! There is no `Add`/`Sub` impl on purpose: every addition and subtraction is checked and
//! its failure is a typed error, never a wrap or a panic. Floats never appear. The text form
//! is `units.cc` with exactly two fraction digits on display; parsing accepts zero, one or
//! two fraction digits and refuses signs, whitespace, a third digit and overflow.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Minor units per major unit: two decimal places.
const MINOR_PER_MAJOR: u64 = 100;
/// Fraction digits of the text form.
const FRACTION_DIGITS: usize = 2;

/// An amount of money in minor units (protocol.md section 1). Encoded on the wire as its
/// `u64`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Amount(u64);

/// Why an amount could not be computed or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// A sum exceeded `u64::MAX` minor units.
    #[error("amount overflow")]
    Overflow,
    /// A difference would be below zero.
    #[error("amount would be negative")]
    Negative,
    /// The text was empty.
    #[error("empty amount")]
    Empty,
    /// The text had a sign, whitespace, or a character that is not a digit or one `.`.
    #[error("malformed amount {0:?}: expected digits with at most one '.'")]
    Malformed(String),
    /// The text had more fraction digits than the currency has minor units.
    #[error("amount {0:?} has more than two fraction digits")]
    TooPrecise(String),
}

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// An amount of `minor` minor units (cents).
    #[must_use]
    pub const fn from_minor(minor: u64) -> Self {
        Amount(minor)
    }

    /// The amount in minor units.
    #[must_use]
    pub const fn minor(self) -> u64 {
        self.0
    }

    /// Whether this is zero (no change scrip is issued for a zero difference).
    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `Overflow`.
    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_add(other.0)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    /// `self - other`, or `Negative` when `other > self`.
    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_sub(other.0)
            .map(Amount)
            .ok_or(AmountError::Negative)
    }

    /// `self × n` (price × quantity), or `Overflow`.
    pub fn checked_mul(self, n: u64) -> Result<Amount, AmountError> {
        self.0
            .checked_mul(n)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    /// The checked sum of many amounts.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(amounts: I) -> Result<Amount, AmountError> {
        amounts
            .into_iter()
            .try_fold(Amount::ZERO, Amount::checked_add)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:0width$}",
            self.0 / MINOR_PER_MAJOR,
            self.0 % MINOR_PER_MAJOR,
            width = FRACTION_DIGITS
        )
    }
}

/// A ledger balance or a sum of amounts (protocol.md section 5), shown in [`Amount`]'s
/// notation: signed, because `external` is negative by the money that entered, and wider,
/// because a sum of `u64` amounts can exceed one (`-100.00`, `25.00`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balance(pub i128);

impl Balance {
    /// An unsigned sum (a total of balances that are never negative).
    #[must_use]
    pub fn of_sum(minor: u128) -> Balance {
        Balance(i128::try_from(minor).unwrap_or(i128::MAX))
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let per = u128::from(MINOR_PER_MAJOR);
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / per,
            abs % per,
            width = FRACTION_DIGITS
        )
    }
}

/// An amount or a balance in the one amount format of every JSON document of the tools
/// and the daemons' live view (README "Exit codes and `--json`"): its decimal text, never
/// a float, and its minor units, an exact integer: `{"value": "-12.34", "minor": -1234}`.
/// `minor` is written as text only past what a JSON integer holds (an `i64`), which no
/// sum of the amounts a log holds reaches.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Money {
    /// `Balance`'s notation.
    pub value: String,
    /// Minor units.
    #[serde(with = "minor_json")]
    pub minor: i128,
}

impl From<Amount> for Money {
    fn from(amount: Amount) -> Money {
        Money::from(Balance(i128::from(amount.minor())))
    }
}

impl From<Balance> for Money {
    fn from(balance: Balance) -> Money {
        Money {
            value: balance.to_string(),
            minor: balance.0,
        }
    }
}

/// `Money::minor`: an integer within `i64`, text beyond.
mod minor_json {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(minor: &i128, s: S) -> Result<S::Ok, S::Error> {
        match i64::try_from(*minor) {
            Ok(n) => s.serialize_i64(n),
            Err(_) => s.serialize_str(&minor.to_string()),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Minor {
        Int(i64),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        match Minor::deserialize(d)? {
            Minor::Int(n) => Ok(i128::from(n)),
            Minor::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(AmountError::Empty);
        }
        let malformed = || AmountError::Malformed(s.to_owned());
        let (units, fraction) = match s.split_once('.') {
            Some((units, fraction)) => (units, Some(fraction)),
            None => (s, None),
        };
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(units) {
            return Err(malformed());
        }
        let cents = match fraction {
            None => 0,
            Some(fraction) => {
                if !all_digits(fraction) {
                    return Err(malformed());
                }
                if fraction.len() > FRACTION_DIGITS {
                    return Err(AmountError::TooPrecise(s.to_owned()));
                }
                // "5" is fifty cents, "05" five: pad on the right to two digits.
                let padded = format!("{fraction:0<width$}", width = FRACTION_DIGITS);
                padded.parse::<u64>().map_err(|_| malformed())?
            }
        };
        let units: u64 = units.parse().map_err(|_| AmountError::Overflow)?;
        units
            .checked_mul(MINOR_PER_MAJOR)
            .and_then(|m| m.checked_add(cents))
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn money_is_text_and_exact_minor_units_in_json() {
        let money = Money::from(Amount::from_minor(550));
        assert_eq!(money.value, "5.50");
        let text = to_json(&money);
        assert_eq!(text, r#"{"value":"5.50","minor":550}"#);
        let negative = Money::from(Balance(-1234));
        assert_eq!(to_json(&negative), r#"{"value":"-12.34","minor":-1234}"#);
        let huge = Money::from(Balance::of_sum(u128::from(u64::MAX) * 3));
        let text = to_json(&huge);
        assert_eq!(
            text,
            r#"{"value":"553402322211286548.45","minor":"55340232221128654845"}"#
        );
        for m in [money, negative, huge] {
            let back: Money = serde_json::from_str(&to_json(&m)).unwrap();
            assert_eq!(back, m);
        }
    }

    fn to_json(m: &Money) -> String {
        serde_json::to_string(m).unwrap()
    }

    #[test]
    fn balances_show_in_the_amounts_notation_with_a_sign() {
        assert_eq!(Balance(-10_000).to_string(), "-100.00");
        assert_eq!(Balance(-5).to_string(), "-0.05");
        assert_eq!(Balance(0).to_string(), "0.00");
        assert_eq!(Balance(2_507).to_string(), "25.07");
        assert_eq!(
            Balance::of_sum(u128::from(u64::MAX) * 3).to_string(),
            "553402322211286548.45"
        );
        assert_eq!(
            Balance(i128::MIN).to_string(),
            "-1701411834604692317316873037158841057.28"
        );
        proptest!(|(minor: u64)| {
            prop_assert_eq!(Balance(i128::from(minor)).to_string(), Amount::from_minor(minor).to_string());
        });
    }

    #[test]
    fn parses_and_displays_the_usual_forms() {
        assert_eq!("12.34".parse(), Ok(Amount::from_minor(1234)));
        assert_eq!("12".parse(), Ok(Amount::from_minor(1200)));
        assert_eq!("12.3".parse(), Ok(Amount::from_minor(1230)));
        assert_eq!("0.05".parse(), Ok(Amount::from_minor(5)));
        assert_eq!("007.50".parse(), Ok(Amount::from_minor(750)));
        assert_eq!(Amount::from_minor(5).to_string(), "0.05");
        assert_eq!(Amount::from_minor(1230).to_string(), "12.30");
        assert_eq!(Amount::ZERO.to_string(), "0.00");
        assert_eq!(
            Amount::from_minor(u64::MAX).to_string(),
            "184467440737095516.15"
        );
    }

    #[test]
    fn refuses_bad_text_with_a_typed_error() {
        assert_eq!("".parse::<Amount>(), Err(AmountError::Empty));
        for bad in [
            "-1", "+1", " 1", "1 ", "1.", ".5", "1.2.3", "1,00", "abc", "1e3", "١",
        ] {
            assert_eq!(
                bad.parse::<Amount>(),
                Err(AmountError::Malformed(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(
            "1.234".parse::<Amount>(),
            Err(AmountError::TooPrecise("1.234".to_owned()))
        );
        assert_eq!(
            "184467440737095516.16".parse::<Amount>(),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            "99999999999999999999999".parse::<Amount>(),
            Err(AmountError::Overflow)
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Amount::from_minor(u64::MAX);
        assert_eq!(
            max.checked_add(Amount::from_minor(1)),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            Amount::ZERO.checked_sub(Amount::from_minor(1)),
            Err(AmountError::Negative)
        );
        assert_eq!(max.checked_mul(2), Err(AmountError::Overflow));
        assert_eq!(
            Amount::checked_sum([Amount::from_minor(1), Amount::from_minor(2)]),
            Ok(Amount::from_minor(3))
        );
        assert_eq!(
            Amount::checked_sum([max, Amount::from_minor(1)]),
            Err(AmountError::Overflow)
        );
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(m in any::<u64>()) {
            let a = Amount::from_minor(m);
            prop_assert_eq!(a.to_string().parse::<Amount>(), Ok(a));
        }

        #[test]
        fn add_then_sub_is_identity(a in any::<u64>(), b in any::<u64>()) {
            let (a, b) = (Amount::from_minor(a), Amount::from_minor(b));
            match a.checked_add(b) {
                Ok(sum) => {
                    prop_assert_eq!(sum.checked_sub(b), Ok(a));
                    prop_assert_eq!(sum.minor(), a.minor() + b.minor());
                }
                Err(e) => {
                    prop_assert_eq!(e, AmountError::Overflow);
                    prop_assert!(a.minor().checked_add(b.minor()).is_none());
                }
            }
        }

        #[test]
        fn sub_never_goes_negative(a in any::<u64>(), b in any::<u64>()) {
            let r = Amount::from_minor(a).checked_sub(Amount::from_minor(b));
            if a >= b {
                prop_assert_eq!(r, Ok(Amount::from_minor(a - b)));
            } else {
                prop_assert_eq!(r, Err(AmountError::Negative));
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,30}") {
            let _ = s.parse::<Amount>();
        }

        #[test]
        fn parse_agrees_with_integer_arithmetic(units in 0u64..1_000_000_000, cents in 0u64..100) {
            let text = format!("{units}.{cents:02}");
            prop_assert_eq!(text.parse::<Amount>(), Ok(Amount::from_minor(units * 100 + cents)));
        }
    }
}
