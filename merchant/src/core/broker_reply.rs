//! The broker's signed decisions on the merchant's own requests (6.2 step 6, 6.5 step 4,
//! 6.7 step 4): opened and matched against the request the merchant has pending.
//!
//! Why a reply is checked this way (protocol.md section 3): a node discards a reply whose
//! `re` does not match a request it has pending. The decision must come from the pinned
//! broker, sealed to this merchant and signed by the broker under this tx; its `re` must
//! name this merchant and the label of the pending request; and what it decides about
//! (`UID_C`, `W`) must be what the merchant asked. Where the merchant's request carried
//! only its own body (6.5 step 3) the `re` digest is compared exactly; where it relayed a
//! customer's part sealed to the broker (6.2 step 3, 6.7 step 2) the merchant cannot
//! compute the digest (it cannot read that part), so the broker's signature under this tx
//! and the matching `UID_C` and `W` stand for it. Anything else is discarded and changes
//! nothing: the merchant keeps repeating its request until a valid decision arrives.

use shared::node::unsigned_error_in;
use shared::wire::bodies::{ErrorBody, Re, Reply};
use shared::wire::{Frame, Header, Label, PartRef, SignedEvidence, WireError};
use shared::{ErrorCode, KeyPair, PublicKey, TxId, Uid};

/// Why a reply from the broker (to a report, or to a request of 6.2, 6.5 or 6.7) was
/// discarded: it changed nothing (protocol.md section 3).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AckError {
    /// The reply is not one valid `Ack` part from the broker (a bad signature, or a part
    /// of the wrong kind).
    #[error("not a valid Ack from the broker: {0}")]
    Wire(#[from] WireError),
    /// The frame is not from the pinned broker.
    #[error("reply from {0}, not from the broker")]
    NotTheBroker(Uid),
    /// The `re` names no report this merchant owes (already acknowledged, or never sent):
    /// discarded (protocol.md section 3).
    #[error("the reply answers no pending request")]
    NotPending,
    /// A label that is no reply to any request a merchant sends.
    #[error("a merchant expects no {0:?} reply")]
    Unexpected(Label),
    /// The broker's OK arrived but the merchant cannot act on it now (its books would
    /// overflow); nothing was recorded and the request stays pending.
    #[error("cannot act on the decision: {0}")]
    Unactionable(shared::node::Refusal),
}

/// A verified decision of the broker.
#[derive(Debug)]
pub struct BrokerReply<B> {
    /// The reply's header.
    pub header: Header,
    /// Its body.
    pub body: B,
    /// Its evidence, kept by the event that acts on it (section 8).
    pub evidence: SignedEvidence,
}

/// The broker's `Ack` of a notice the merchant owes it (a purchase report, 6.3 step 5; a
/// lapse notice, section 4), with what checks it: the merchant's own key pair and the
/// pinned broker's key.
#[derive(Debug, Clone, Copy)]
pub struct Ack<'a> {
    /// The reply.
    pub frame: &'a Frame,
    /// The merchant, whose notice it must answer.
    pub me: &'a KeyPair,
    /// The pinned broker, who must have sent it.
    pub broker: &'a PublicKey,
}

impl Ack<'_> {
    /// Its one part, from the broker ([`broker_part`]).
    pub fn part(&self) -> Result<PartRef<'_>, AckError> {
        broker_part(self.frame, self.broker)
    }

    /// Whether `re` names the merchant's notice of `label` with `digest` (its sender, label
    /// and request digest); a reply that does not is discarded (protocol.md section 3).
    pub fn answers(&self, re: &Re, label: Label, digest: &[u8]) -> Result<(), AckError> {
        if re.sender == self.me.uid() && re.label == label && re.digest == digest {
            Ok(())
        } else {
            Err(AckError::NotPending)
        }
    }
}

/// The one part of `frame`, a reply that names the pinned `broker` as its sender: what
/// every reply of the broker to the merchant is (a decision, a report's or a lapse
/// notice's `Ack`) before its part is opened.
///
/// # Errors
/// [`AckError::NotTheBroker`], or a frame of more or fewer than one part.
pub fn broker_part<'f>(frame: &'f Frame, broker: &PublicKey) -> Result<PartRef<'f>, AckError> {
    if frame.header.sender != broker.uid() {
        return Err(AckError::NotTheBroker(frame.header.sender));
    }
    if frame.parts.len() != 1 {
        return Err(WireError::TooManyParts {
            count: frame.parts.len(),
        }
        .into());
    }
    Ok(frame.part(0)?)
}

/// Opens `frame` as the broker's sealed, signed reply `B` to a request of `me` with
/// `request_label` (see the module doc).
pub fn open_broker_reply<B: Reply>(
    frame: &Frame,
    me: &KeyPair,
    broker: &PublicKey,
    request_label: Label,
) -> Result<BrokerReply<B>, AckError> {
    let header = frame.header;
    let part = broker_part(frame, broker)?;
    if part.forwarded {
        return Err(WireError::WrongPartKind {
            expected: "Sealed",
            found: "Forwarded",
        }
        .into());
    }
    let verified = part.open_sealed(me)?.signed::<B>(broker)?;
    let re = verified.body.re();
    if re.sender != me.uid() || re.label != request_label {
        return Err(AckError::NotPending);
    }
    Ok(BrokerReply {
        header,
        body: verified.body,
        evidence: verified.evidence,
    })
}

/// Why the broker's answer to the merchant's registration (6.0) or key request (6.0b)
/// does not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The request could not be built, or the reply not decoded or verified.
    #[error("bad frame: {0}")]
    Wire(#[from] WireError),
    /// The broker refused, with its signed `Error`.
    #[error("the broker refused: {code}: {message}")]
    Refused {
        /// The error code's name (or number, if unknown to this build).
        code: String,
        /// The broker's message.
        message: String,
    },
    /// A verified reply that does not answer this request.
    #[error("the broker's reply does not answer the request: {0}")]
    Mismatch(&'static str),
    /// The broker's unsigned `Error` (protocol.md section 3: it could not verify the
    /// request, could not write its log, or the merchant is over a quota): no decision,
    /// only "repeat later".
    #[error("the broker asked to repeat later: {code}: {message}")]
    RepeatLater {
        /// The error code's name (or number, if unknown to this build).
        code: String,
        /// The broker's message.
        message: String,
    },
}

/// `reply` decoded, from the broker and in `tx`: the answer to one of the merchant's own
/// requests outside a customer's transaction (6.0, 6.0b).
pub(super) fn broker_answer(
    reply: &[u8],
    broker: &PublicKey,
    tx: TxId,
) -> Result<Frame, AnswerError> {
    let frame = Frame::decode(reply)?;
    if frame.header.sender != broker.uid() || frame.header.tx != tx {
        return Err(AnswerError::Mismatch("not the broker's reply in this tx"));
    }
    Ok(frame)
}

/// The broker's signed `Error` as an [`AnswerError::Refused`] (its code's name, or number
/// if this build does not know it, and message); its unsigned one as
/// [`AnswerError::RepeatLater`].
pub(super) fn refusal(frame: &Frame, broker: &PublicKey) -> Result<AnswerError, AnswerError> {
    if frame.header.label != Label::Error {
        return Err(AnswerError::Mismatch("an unexpected label"));
    }
    let name = |code: u16| {
        ErrorCode::from_code(code).map_or_else(|| format!("code {code}"), |c| c.name().to_owned())
    };
    if let Some(body) = unsigned_error_in(frame, broker.uid(), frame.header.tx) {
        return Ok(AnswerError::RepeatLater {
            code: name(body.code),
            message: body.message,
        });
    }
    let body = frame.part(0)?.verify_signed::<ErrorBody>(broker)?.body;
    Ok(AnswerError::Refused {
        code: name(body.code),
        message: body.message,
    })
}
