//! The operator's client for a running broker (ADR 0010): `peerscrip-ops bank …` and
//! `peerscrip-ops peers` send an `AdminRequest` sealed to the broker and signed by the
//! operator key, and check the sealed, signed `AdminResponse`.
//!
//! A request that gets no answer is repeated with the same tx and the same body (fresh
//! signature and seal), so the broker answers a repeat of a deposit it already recorded from
//! its stored reply and never moves the money twice (protocol.md section 7).

use std::time::Duration;

use bytes::Bytes;
use shared::bus::{Bus, BusError, Subjects};
use shared::ids::{PanSecret, TxId};
use shared::node::unsigned_error_in;
use shared::wire::bodies::{
    AdminOp, AdminRequestX0, AdminResponseX1, AdminResult, Body, ErrorBody,
};
use shared::wire::{
    DigestItem, Frame, Header, Inner, Label, WireError, request_digest, seal, sign_bytes,
};
use shared::{ErrorCode, KeyPair, PublicKey};

/// Why an administration request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The broker refused it; nothing changed.
    #[error("the broker refused: {code} — {message}")]
    Refused {
        /// The code.
        code: ErrorCode,
        /// The broker's explanation.
        message: String,
    },
    /// The broker could not be reached, or did not answer in any attempt. A write may or
    /// may not have happened: repeat it with the same tx (`AdminClient::call_as`).
    #[error("the broker did not answer tx {tx}: {source}")]
    Unreachable {
        /// The tx to repeat.
        tx: TxId,
        /// The last transport failure.
        #[source]
        source: BusError,
    },
    /// The NATS server could not be reached: nothing was sent.
    #[error("cannot reach the NATS server: {0}")]
    NoServer(#[source] BusError),
    /// The answer was not a valid reply of the broker to this request.
    #[error("invalid answer from the broker: {0}")]
    BadAnswer(String),
    /// The request could not be built (a local failure; nothing was sent).
    #[error("cannot build the request: {0}")]
    Build(#[from] WireError),
}

/// An operator's connection to one broker.
pub struct AdminClient<B> {
    bus: B,
    subjects: Subjects,
    operator: KeyPair,
    broker: PublicKey,
    timeout: Duration,
    attempts: u32,
}

impl<B: Bus> AdminClient<B> {
    /// A client on `bus` for the broker whose pinned key is `broker`.
    pub fn new(
        bus: B,
        subjects: Subjects,
        operator: KeyPair,
        broker: PublicKey,
        timeout: Duration,
        attempts: u32,
    ) -> Self {
        AdminClient {
            bus,
            subjects,
            operator,
            broker,
            timeout,
            attempts: attempts.max(1),
        }
    }

    /// Sends `op` in a fresh tx (with `secret` for an account opening).
    pub async fn call(
        &self,
        op: AdminOp,
        secret: Option<&PanSecret>,
    ) -> Result<AdminResult, AdminError> {
        self.call_as(TxId::random(), op, secret).await
    }

    /// Sends `op` in `tx`: repeating an earlier call with its tx gets the broker's stored
    /// answer instead of a second deposit or payout.
    pub async fn call_as(
        &self,
        tx: TxId,
        op: AdminOp,
        secret: Option<&PanSecret>,
    ) -> Result<AdminResult, AdminError> {
        let header = Header::new(
            self.operator.suite(),
            Label::AdminRequest,
            tx,
            self.operator.uid(),
        );
        let body = AdminRequestX0 { op }.to_bytes();
        let digest = request_digest(
            &header,
            &[DigestItem {
                origin: None,
                body: &body,
            }],
        )?;
        let mut last = BusError::Timeout;
        for _ in 0..self.attempts {
            let frame = self.frame(&header, &body, secret)?;
            match self
                .bus
                .request(&self.subjects.broker(), Bytes::from(frame), self.timeout)
                .await
            {
                Ok(answer) => return self.check(&answer, &header, &digest),
                Err(e @ (BusError::Timeout | BusError::NoResponders)) => last = e,
                Err(e) => return Err(AdminError::Unreachable { tx, source: e }),
            }
        }
        Err(AdminError::Unreachable { tx, source: last })
    }

    /// The request frame: the signed body and the secret, sealed to the broker.
    fn frame(
        &self,
        header: &Header,
        body: &[u8],
        secret: Option<&PanSecret>,
    ) -> Result<Vec<u8>, WireError> {
        let mut inners: Vec<Inner> =
            vec![sign_bytes(&self.operator, header, body.to_vec())?.into()];
        inners.extend(secret.map(|s| Inner::PanSecret { secret: s.clone() }));
        let part = seal(header, &self.broker, &inners)?;
        Frame::new(*header, vec![part]).encode()
    }

    /// Checks the broker's answer: from the pinned broker, to this request (`re`).
    fn check(
        &self,
        answer: &[u8],
        request: &Header,
        digest: &[u8],
    ) -> Result<AdminResult, AdminError> {
        let bad = |e: &dyn std::fmt::Display| AdminError::BadAnswer(e.to_string());
        let frame = Frame::decode(answer).map_err(|e| bad(&e))?;
        if frame.header.sender != self.broker.uid() || frame.header.tx != request.tx {
            return Err(bad(&"not the broker's answer to this tx"));
        }
        let part = frame.part(0).map_err(|e| bad(&e))?;
        let (re, outcome) = match frame.header.label {
            Label::AdminResponse => {
                let opened = part.open_sealed(&self.operator).map_err(|e| bad(&e))?;
                let x = opened
                    .signed::<AdminResponseX1>(&self.broker)
                    .map_err(|e| bad(&e))?
                    .body;
                (x.re, Ok(x.result))
            }
            Label::Error => {
                // Unsigned when the broker could not verify the request or it was over a
                // quota (protocol.md section 3): still this request's refusal to show.
                let x = match unsigned_error_in(&frame, self.broker.uid(), request.tx) {
                    Some(body) => body,
                    None => {
                        part.verify_signed::<ErrorBody>(&self.broker)
                            .map_err(|e| bad(&e))?
                            .body
                    }
                };
                let code = x.error_code().unwrap_or(ErrorCode::Internal);
                let refused = AdminError::Refused {
                    code,
                    message: x.message.clone(),
                };
                (x.re, Err(refused))
            }
            other => return Err(bad(&format!("unexpected {other} answer"))),
        };
        // A refusal before the broker could verify the request (not the operator, a frame
        // it cannot open) names no digest: it has none to name. Still signed by the broker
        // for this tx, sender and label, it is a refusal of this request.
        let unverified_refusal = outcome.is_err() && re.digest.is_empty();
        if re.sender != request.sender
            || re.label != Label::AdminRequest
            || (re.digest != digest && !unverified_refusal)
        {
            return Err(bad(&"the answer names another request"));
        }
        outcome
    }
}
