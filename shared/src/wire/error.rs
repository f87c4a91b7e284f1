//! `WireError`: every way a frame can fail to encode, decode, open or verify (protocol.md
//! section 3).
//!
//! The variants are precise for the local log and for tests; what a peer learns is
//! [`WireError::code`], where every failure to decode, decrypt or verify is the one class
//! [`ErrorCode::BadFrame`] (no padding or MAC oracle). No variant carries secret bytes.

use crate::error::ErrorCode;
use crate::ids::{ScripId, Uid};
use crate::suite::{CryptoError, Suite};

use super::label::Label;

/// A failure of the wire layer (protocol.md section 3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame is larger than 64 KiB; refused before decoding (§3, "Limits").
    #[error("frame of {size} bytes exceeds the 64 KiB limit")]
    FrameTooLarge {
        /// Its size in bytes.
        size: usize,
    },
    /// The bytes are not a postcard encoding of the expected structure (§3).
    #[error("malformed encoding: {0}")]
    Decode(#[source] postcard::Error),
    /// A value decoded but bytes were left over (§3: one value, one encoding).
    #[error("{count} trailing bytes after the encoded value")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A local value could not be encoded (a programming error, never a peer's).
    #[error("could not encode: {0}")]
    Encode(#[source] postcard::Error),
    /// `HeaderBytes` name a suite code that is not ours (§3).
    #[error("unknown suite code {0}")]
    UnknownSuiteCode(u8),
    /// `HeaderBytes` name a label code that is not ours (§6).
    #[error("unknown label code {0}")]
    UnknownLabelCode(u8),
    /// The frame's (or a forwarded origin's) protocol version is not 1 (§3).
    #[error("unsupported protocol version {version}")]
    UnsupportedVersion {
        /// The version found.
        version: u16,
    },
    /// More parts than a frame may carry (§3, "Limits").
    #[error("frame has {count} parts, more than allowed")]
    TooManyParts {
        /// How many.
        count: usize,
    },
    /// More inners than a sealed part may carry (§3, "Limits").
    #[error("sealed part has {count} inners, more than allowed")]
    TooManyInners {
        /// How many.
        count: usize,
    },
    /// A forwarded part inside a forwarded part (§3, "Forwarded parts": relayed once).
    #[error("a forwarded part may not contain another forwarded part")]
    NestedForward,
    /// A forwarded part's origin carries another tx than the frame (§3).
    #[error("forwarded part belongs to another transaction")]
    OriginTxMismatch,
    /// A forwarded part's origin names another suite than the frame (§2, §3).
    #[error("forwarded part is of another suite")]
    OriginSuiteMismatch,
    /// The frame has no part at this index (§6: each message lists its parts).
    #[error("frame has no part {index}")]
    MissingPart {
        /// The index asked for.
        index: usize,
    },
    /// The part is of another kind than the message needs at this place (§6).
    #[error("expected a {expected} part, found {found}")]
    WrongPartKind {
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A body was presented under a header of another label (§3: a body belongs to one
    /// message).
    #[error("body of {expected} under a {found} header")]
    LabelMismatch {
        /// The label of the body type.
        expected: Label,
        /// The header's label.
        found: Label,
    },
    /// A header names another suite than the key it is used with (§2: a node rejects a
    /// suite it is not configured for).
    #[error("frame of suite {found} for a {expected} key")]
    WrongSuite {
        /// The key's suite.
        expected: Suite,
        /// The header's suite.
        found: Suite,
    },
    /// A sealed part is addressed to another UID (§3: only its recipient opens it).
    #[error("sealed part is addressed to {to}, not to this node")]
    NotForMe {
        /// The recipient named in the part.
        to: Uid,
    },
    /// The signer's key is not the key of the header's sender (§3: a part is signed by the
    /// sender of the frame it was made in, the origin's sender for a forwarded part).
    #[error("signed by {signer}, but the header's sender is {sender}")]
    SignerMismatch {
        /// The header's sender.
        sender: Uid,
        /// The UID of the key offered for verification.
        signer: Uid,
    },
    /// A signature does not verify over its `SigInput` (§3).
    #[error("bad signature")]
    BadSignature,
    /// An IdProof does not verify for this ID, tx and label (§3).
    #[error("bad IdProof")]
    BadIdProof,
    /// A wrapped session key could not be unwrapped (§2, §3).
    #[error("session key could not be unwrapped")]
    KeyUnwrap,
    /// A sealed part could not be decrypted (§2, §3).
    #[error("sealed part could not be decrypted")]
    Decrypt,
    /// An `Inner::PublicKey` is not a key of the frame's suite (§6.0).
    #[error("public key refused: {0}")]
    BadPublicKey(#[source] CryptoError),
    /// A sealed part lacks an inner the message needs (§6).
    #[error("sealed part has no {kind} inner")]
    MissingInner {
        /// The kind of inner.
        kind: &'static str,
    },
    /// A sealed part has two inners of a kind it may hold once (§6).
    #[error("sealed part has more than one {kind} inner")]
    DuplicateInner {
        /// The kind of inner.
        kind: &'static str,
    },
    /// A sealed part has no CustomerSecret for a scrip its signed body names (§3).
    #[error("no CustomerSecret for scrip {scrip_id}")]
    MissingSecret {
        /// The scrip.
        scrip_id: ScripId,
    },
    /// The CustomerSecret does not hash to the signed body's `cs_hash` (§3).
    #[error("CustomerSecret of scrip {scrip_id} does not match its cs_hash")]
    SecretMismatch {
        /// The scrip.
        scrip_id: ScripId,
    },
    /// Signing, wrapping or sealing an outgoing part failed: a local failure.
    #[error("could not build the part: {0}")]
    Build(#[source] CryptoError),
}

impl WireError {
    /// The code a peer sees (protocol.md section 3). The size limit, the version and the
    /// suite are public properties of the frame, checked before any cryptography, so they
    /// keep their own codes (`FrameTooLarge`, `UnsupportedVersion`, `WrongSuite`); every
    /// other failure to decode, decrypt or verify is `BadFrame`, one class with no hint of
    /// the step that failed; local failures to build a frame are `Internal`.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            WireError::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            WireError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            WireError::WrongSuite { .. } => ErrorCode::WrongSuite,
            WireError::Encode(_) | WireError::Build(_) => ErrorCode::Internal,
            WireError::Decode(_)
            | WireError::TrailingBytes { .. }
            | WireError::UnknownSuiteCode(_)
            | WireError::UnknownLabelCode(_)
            | WireError::TooManyParts { .. }
            | WireError::TooManyInners { .. }
            | WireError::NestedForward
            | WireError::OriginTxMismatch
            | WireError::OriginSuiteMismatch
            | WireError::MissingPart { .. }
            | WireError::WrongPartKind { .. }
            | WireError::LabelMismatch { .. }
            | WireError::NotForMe { .. }
            | WireError::SignerMismatch { .. }
            | WireError::BadSignature
            | WireError::BadIdProof
            | WireError::KeyUnwrap
            | WireError::Decrypt
            | WireError::BadPublicKey(_)
            | WireError::MissingInner { .. }
            | WireError::DuplicateInner { .. }
            | WireError::MissingSecret { .. }
            | WireError::SecretMismatch { .. } => ErrorCode::BadFrame,
        }
    }
}
