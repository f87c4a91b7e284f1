//! `WireError`: every way a frame can fail to encode, decode, open or verify (protocol.md
//! section 3).
//!
//! The variants are precise for the local log and for tests; what a peer learns is
//! [`WireError::code`], where every failure to decode, decrypt or verify is the one class
//! [`ErrorCode::BadFrame`] (no padding or MAC oracle). No variant carries secret bytes.

use crate::error::ErrorCode;

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
}

impl WireError {
    /// The code a peer sees (protocol.md section 3). The size limit and the version are
    /// checked before any cryptography and reveal nothing, so they keep their own codes;
    /// every other failure to decode, decrypt or verify is `BadFrame`; local failures to
    /// build a frame are `Internal`.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            WireError::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            WireError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            WireError::Encode(_) => ErrorCode::Internal,
            WireError::Decode(_)
            | WireError::TrailingBytes { .. }
            | WireError::TooManyParts { .. }
            | WireError::TooManyInners { .. }
            | WireError::NestedForward
            | WireError::OriginTxMismatch
            | WireError::OriginSuiteMismatch
            | WireError::MissingPart { .. }
            | WireError::WrongPartKind { .. }
            | WireError::LabelMismatch { .. } => ErrorCode::BadFrame,
        }
    }
}
