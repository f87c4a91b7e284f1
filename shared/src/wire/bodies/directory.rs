//! Merchants by name, an extension of protocol.md section 6 (docs/adr/0016): a merchant's
//! display name, registered at the broker (`MerchantProfile`, label 41, answered `Ack`)
//! and listed to any registered peer (`MerchantDirectoryRequest` and
//! `MerchantDirectoryResponse`, labels 42 and 43). The merchant's signed catalogue
//! (docs/adr/0009) carries the same name.
//!
//! A name is printed on customers' terminals, so it is a [`MerchantName`] everywhere it is
//! decoded: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no control character (no escape
//! sequence can reach a terminal through it). A body with any other name does not decode.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Re, body, reply};
use crate::ids::{Nonce, Uid};
use crate::wire::codec::bounded_vec;

/// Most characters of a merchant's name.
pub const MAX_NAME_CHARS: usize = 64;

/// Most merchants one `MerchantDirectoryResponse` lists; the customer pages with `after`.
/// 128 names of at most 64 characters (256 bytes of UTF-8) with their UIDs fit one 64 KiB
/// frame with room to spare.
pub const MAX_LISTED_MERCHANTS: usize = 128;

/// Why a name is not a [`MerchantName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing but whitespace.
    #[error("the name is empty")]
    Empty,
    /// Longer than [`MAX_NAME_CHARS`] characters once trimmed.
    #[error("the name has {0} characters, more than {MAX_NAME_CHARS}")]
    TooLong(usize),
    /// A control character (an escape sequence, a newline, a tab): a terminal would act on it.
    #[error("the name holds a control character ({0:?})")]
    Control(char),
    /// On the wire, a name with whitespace around it (a conforming sender trims it).
    #[error("the name is not trimmed")]
    Untrimmed,
}

/// A merchant's display name, validated (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MerchantName(String);

impl MerchantName {
    /// `name` trimmed, if it is a valid name.
    ///
    /// # Errors
    /// [`NameError`]: empty, too long or holding a control character.
    pub fn new(name: &str) -> Result<MerchantName, NameError> {
        let trimmed = name.trim();
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        if let Some(c) = trimmed.chars().find(|c| c.is_control()) {
            return Err(NameError::Control(c));
        }
        let chars = trimmed.chars().count();
        if chars > MAX_NAME_CHARS {
            return Err(NameError::TooLong(chars));
        }
        Ok(MerchantName(trimmed.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MerchantName {
    type Error = NameError;

    fn try_from(name: String) -> Result<MerchantName, NameError> {
        // A name on the wire is exactly as the sender validated it: one with surrounding
        // whitespace was not trimmed by a conforming sender and is refused, not repaired.
        let valid = MerchantName::new(&name)?;
        if valid.0 == name {
            Ok(valid)
        } else {
            Err(NameError::Untrimmed)
        }
    }
}

impl From<MerchantName> for String {
    fn from(name: MerchantName) -> String {
        name.0
    }
}

impl fmt::Display for MerchantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `MerchantProfile` (label 41), M → B, signed in the clear by the merchant: `X0 = name`.
/// Answered by an `Ack`. In the clear because the broker publishes the name to every
/// registered peer: a seal would hide nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantProfileX0 {
    /// The name the merchant is to be listed under.
    pub name: MerchantName,
}
body!(MerchantProfileX0 => MerchantProfile);

/// `MerchantDirectoryRequest` (label 42), P → B, signed in the clear: `X0 = after, N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantDirectoryRequestX0 {
    /// The last UID of the previous page; `None` for the first page.
    pub after: Option<Uid>,
    /// A fresh nonce: makes each ask's digest, and so the answer's `re`, unique.
    pub nonce: Nonce,
}
body!(MerchantDirectoryRequestX0 => MerchantDirectoryRequest);

/// One named merchant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantEntry {
    /// `UID_M`.
    pub uid: Uid,
    /// Its name as last registered.
    pub name: MerchantName,
}

/// `MerchantDirectoryResponse` (label 43), B → P, signed in the clear by the broker:
/// `X1 = re, merchants, more`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantDirectoryResponseX1 {
    /// The request answered.
    pub re: Re,
    /// The named merchants after `after`, in UID order, at most [`MAX_LISTED_MERCHANTS`].
    #[serde(deserialize_with = "bounded_vec::<_, _, MAX_LISTED_MERCHANTS>")]
    pub merchants: Vec<MerchantEntry>,
    /// Whether more merchants follow the last one.
    pub more: bool,
}
reply!(MerchantDirectoryResponseX1 => MerchantDirectoryResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Label;
    use crate::wire::bodies::Body;
    use crate::wire::codec::encode;

    #[test]
    fn a_name_is_trimmed_and_bounded_and_has_no_control_character() {
        assert_eq!(
            MerchantName::new("  Green Tea House ").map(|n| n.as_str().to_owned()),
            Ok("Green Tea House".to_owned())
        );
        assert_eq!(MerchantName::new(" \t "), Err(NameError::Empty));
        assert_eq!(MerchantName::new(""), Err(NameError::Empty));
        assert_eq!(
            MerchantName::new("Tea\u{1b}[31mHouse"),
            Err(NameError::Control('\u{1b}'))
        );
        assert_eq!(
            MerchantName::new("Tea\nHouse"),
            Err(NameError::Control('\n'))
        );
        // 64 characters (not bytes) are allowed, 65 are not.
        assert!(MerchantName::new(&"é".repeat(64)).is_ok());
        assert_eq!(
            MerchantName::new(&"x".repeat(65)),
            Err(NameError::TooLong(65))
        );
    }

    /// A name that does not validate does not decode: a hostile sender cannot put an escape
    /// sequence or an untrimmed name into a body.
    #[test]
    fn a_body_with_an_invalid_name_does_not_decode() {
        #[derive(Serialize)]
        struct Raw {
            name: String,
        }
        for bad in ["", "a\u{7}", " padded", &"x".repeat(65)] {
            let bytes = encode(&Raw { name: bad.into() }).unwrap();
            assert!(
                MerchantProfileX0::from_bytes(&bytes).is_err(),
                "{bad:?} decoded"
            );
        }
        let good = MerchantProfileX0 {
            name: MerchantName::new("Green Tea House").unwrap(),
        };
        assert_eq!(
            MerchantProfileX0::from_bytes(&good.to_bytes()).unwrap(),
            good
        );
        assert_eq!(MerchantProfileX0::LABEL, Label::MerchantProfile);
    }

    /// A full page of the longest names fits one frame.
    #[test]
    fn a_full_page_of_the_longest_names_fits_one_frame() {
        let re = Re {
            sender: Uid([1; 16]),
            label: Label::MerchantDirectoryRequest,
            digest: vec![7; 64],
        };
        let page = MerchantDirectoryResponseX1 {
            re,
            merchants: (0..MAX_LISTED_MERCHANTS)
                .map(|i| MerchantEntry {
                    uid: Uid([u8::try_from(i).unwrap(); 16]),
                    name: MerchantName::new(&"\u{10348}".repeat(MAX_NAME_CHARS)).unwrap(),
                })
                .collect(),
            more: true,
        };
        let bytes = page.to_bytes();
        assert!(
            bytes.len() + 2048 < crate::wire::MAX_FRAME_LEN,
            "{}",
            bytes.len()
        );
        assert_eq!(
            MerchantDirectoryResponseX1::from_bytes(&bytes).unwrap(),
            page
        );
        assert_eq!(
            MerchantDirectoryResponseX1::LABEL,
            Label::MerchantDirectoryResponse
        );
    }
}
