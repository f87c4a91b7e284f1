//! [`Refusal`]: why a node did not act on a request (protocol.md section 3, `Error`).

use crate::error::ErrorCode;
use crate::ids::{TxId, Uid};
use crate::scrip::ScripError;
use crate::suite::Suite;
use crate::wire::bodies::{ErrorBody, Re};
use crate::wire::{Frame, Header, Label, WireError};

use super::Draft;

/// A refused request: the stable code a peer sees in its signed `Error { re, code, message }`
/// and a human-readable message. A refusal changes no state (protocol.md section 6: "all
/// checks happen before any state change").
///
/// The message never holds a secret (no CustomerSecret, PANSecret, ID or key) and, for a
/// frame that failed to decode, decrypt or verify, never says which step failed: every such
/// failure is the one message of [`Refusal::from`]`(WireError)` (no oracle, section 3).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    /// The wire code.
    pub code: ErrorCode,
    /// Detail for a person; no secret in it.
    pub message: String,
}

/// The one message of every `BadFrame` refusal.
pub const BAD_FRAME_MESSAGE: &str = "the frame could not be decoded, opened or verified";

impl Refusal {
    /// A refusal with this code and message.
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// The unsigned `Error { re, code, message }` of `me` answering `request` (protocol.md
/// section 3): one `Part::Clear`, no private-key operation. For a frame that did not
/// verify (`digest` empty) and for a quota's refusal (section 10), where a signature would
/// let anyone spend the node's private-key time. It tells the requester only "repeat or
/// give up", never a decision.
#[must_use]
pub fn unsigned_error(
    suite: Suite,
    me: Uid,
    request: &Header,
    digest: &[u8],
    refusal: &Refusal,
) -> Option<Vec<u8>> {
    let body = ErrorBody::new(
        Re::new(request, digest.to_vec()),
        refusal.code,
        refusal.message.clone(),
    );
    let draft = Draft::delivery(suite, request.tx, me, request.sender, &body).unsigned();
    draft.seal_unsigned().ok().map(|sent| sent.frame)
}

/// The body of `bytes` if they are an unsigned `Error` of the node `from` in `tx`
/// (protocol.md section 3): no decision, only "repeat or give up". A signed `Error`, or
/// anything else, is `None`.
#[must_use]
pub fn unsigned_error_of(bytes: &[u8], from: Uid, tx: TxId) -> Option<ErrorBody> {
    let frame = Frame::decode(bytes).ok()?;
    unsigned_error_in(&frame, from, tx)
}

/// [`unsigned_error_of`] of a decoded frame.
#[must_use]
pub fn unsigned_error_in(frame: &Frame, from: Uid, tx: TxId) -> Option<ErrorBody> {
    if frame.header.label != Label::Error
        || frame.header.sender != from
        || frame.header.tx != tx
        || frame.parts.len() != 1
    {
        return None;
    }
    frame
        .part(0)
        .and_then(|part| part.unsigned::<ErrorBody>())
        .ok()
}

/// Whether `bytes` are an unsigned `Error` of `from` in `tx` that asks the requester to
/// repeat later: `Unavailable` (a storage fault) or `TooManyRequests` (a quota), protocol.md
/// section 10. Anything else, a signed `Error` included, is not.
#[must_use]
pub fn is_repeat_later(bytes: &[u8], from: Uid, tx: TxId) -> bool {
    unsigned_error_of(bytes, from, tx).is_some_and(|body| {
        matches!(
            body.error_code(),
            Some(ErrorCode::Unavailable | ErrorCode::TooManyRequests)
        )
    })
}

impl From<WireError> for Refusal {
    /// Size, version and suite keep their own codes and say so; every other wire failure is
    /// `BadFrame` with one fixed message, so a sender learns nothing about which check
    /// failed (protocol.md section 3).
    fn from(e: WireError) -> Refusal {
        let code = e.code();
        match code {
            ErrorCode::BadFrame => Refusal::new(code, BAD_FRAME_MESSAGE),
            ErrorCode::Internal => Refusal::new(code, "the node could not build its answer"),
            _ => Refusal::new(code, e.to_string()),
        }
    }
}

impl From<ScripError> for Refusal {
    fn from(e: ScripError) -> Refusal {
        Refusal::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypto_failures_all_look_alike() {
        let a = Refusal::from(WireError::BadSignature);
        let b = Refusal::from(WireError::Decrypt);
        let c = Refusal::from(WireError::BadIdProof);
        assert_eq!(a.code, ErrorCode::BadFrame);
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.message, BAD_FRAME_MESSAGE);
    }

    #[test]
    fn public_properties_keep_their_codes() {
        let r = Refusal::from(WireError::UnsupportedVersion { version: 9 });
        assert_eq!(r.code, ErrorCode::UnsupportedVersion);
        assert!(r.message.contains('9'));
        assert_eq!(Refusal::from(ScripError::Expired).code, ErrorCode::Expired);
        assert_eq!(
            Refusal::new(ErrorCode::Spent, "gone").to_string(),
            "Spent (16): gone"
        );
    }
}
