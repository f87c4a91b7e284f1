//! The transport: request/reply with a timeout, one-way publish, and subscriptions
//! (protocol.md section 3, "Requests, replies and deliveries"; architecture.md "Transport").
//!
//! Payloads are opaque [`Bytes`]: frames are encoded and checked by `wire`, not here. What the
//! bus does enforce is the frame size limit of protocol.md section 3, on both sides: a send
//! larger than [`MAX_FRAME_BYTES`] fails with [`BusError::TooLarge`], and an incoming message
//! larger than that is dropped with a warning and never reaches a subscriber or a requester,
//! so no decoder ever sees one.
//!
//! Two implementations behave the same way (the `tests` package runs one conformance suite
//! against both): [`MemoryBus`] (in-process, the embedded default) and [`NatsBus`]
//! (async-nats). Nodes are generic over `B: Bus`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;

mod error;
mod memory;
mod nats;
pub mod subject;

pub use error::BusError;
pub use memory::{MemoryBus, MemorySubscription};
pub use nats::{
    ClientCert, NatsBus, NatsCredentials, NatsOptions, NatsSubscription, NatsTls,
    ROUND_TRIP_TIMEOUT,
};
pub use subject::{DEFAULT_PREFIX, InboxPrefix, Subject, SubjectError, Subjects};

/// The largest frame, in bytes, that the bus sends or hands over (protocol.md section 3,
/// "Limits": a frame larger than 64 KiB is refused before it is decoded).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// A message transport shared by every node.
///
/// Cheap to clone: clones share one connection (or one in-process router).
pub trait Bus: Clone + Send + Sync + 'static {
    /// The stream of messages on one subject. Dropping it unsubscribes.
    type Subscription: Stream<Item = Incoming<Self>> + Send + Unpin + 'static;

    /// Sends `payload` to `subject` with a fresh reply inbox and waits for the first reply
    /// (protocol.md section 3: a request gets exactly one reply).
    ///
    /// # Errors
    /// [`BusError::TooLarge`] before sending; [`BusError::NoResponders`] when nobody
    /// subscribes to `subject`; [`BusError::Timeout`] when no reply (of acceptable size)
    /// arrives within `timeout`; [`BusError::Closed`] or [`BusError::Transport`] when the
    /// transport fails.
    fn request(
        &self,
        subject: &Subject,
        payload: Bytes,
        timeout: Duration,
    ) -> impl Future<Output = Result<Bytes, BusError>> + Send;

    /// Sends `payload` to `subject` with no reply expected: a delivery (protocol.md
    /// section 3). Succeeds whether or not anyone subscribes, as NATS does.
    ///
    /// # Errors
    /// [`BusError::TooLarge`] before sending; [`BusError::Closed`] or
    /// [`BusError::Transport`] when the transport fails.
    fn publish(
        &self,
        subject: &Subject,
        payload: Bytes,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Subscribes to exactly `subject`. When this returns the subscription is active: a
    /// message any sender sends afterwards reaches it. Messages arrive in the order one
    /// sender sent them.
    ///
    /// # Errors
    /// As [`Bus::flush`], which a NATS subscription performs before returning.
    fn subscribe(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<Self::Subscription, BusError>> + Send;

    /// Waits until everything this handle sent so far, unsubscriptions included, has taken
    /// effect: for NATS a round trip through the server, in memory a no-op (every send and
    /// unsubscription there takes effect at once).
    ///
    /// # Errors
    /// [`BusError::Timeout`] if the server does not answer in time; [`BusError::Closed`] or
    /// [`BusError::Transport`] when the transport fails.
    fn flush(&self) -> impl Future<Output = Result<(), BusError>> + Send;
}

/// One message taken from a subscription: a request (it has a reply subject) or a delivery.
pub struct Incoming<B> {
    subject: Subject,
    reply: Option<Subject>,
    payload: Bytes,
    bus: B,
}

impl<B: Bus> Incoming<B> {
    /// Wraps a received message; the bus handle is kept so that a request can be answered.
    pub(crate) fn new(subject: Subject, reply: Option<Subject>, payload: Bytes, bus: B) -> Self {
        Incoming {
            subject,
            reply,
            payload,
            bus,
        }
    }

    /// The subject the message was sent to.
    #[must_use]
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// Where the reply goes, if the message is a request.
    #[must_use]
    pub fn reply(&self) -> Option<&Subject> {
        self.reply.as_ref()
    }

    /// The payload, at most [`MAX_FRAME_BYTES`] long.
    #[must_use]
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Takes the payload out.
    #[must_use]
    pub fn into_payload(self) -> Bytes {
        self.payload
    }

    /// Sends `payload` as the reply to this request (protocol.md section 3).
    ///
    /// # Errors
    /// [`BusError::NoReplySubject`] if this is a delivery, otherwise as [`Bus::publish`].
    pub async fn respond(&self, payload: Bytes) -> Result<(), BusError> {
        let reply = self.reply.as_ref().ok_or(BusError::NoReplySubject)?;
        self.bus.publish(reply, payload).await
    }
}

impl<B> fmt::Debug for Incoming<B> {
    /// Subjects and the payload's length only: payloads are large and opaque.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("subject", &self.subject)
            .field("reply", &self.reply)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// The send-side limit of protocol.md section 3.
fn check_outgoing(payload: &Bytes) -> Result<(), BusError> {
    if payload.len() > MAX_FRAME_BYTES {
        return Err(BusError::TooLarge {
            size: payload.len(),
        });
    }
    Ok(())
}

/// The receive-side limit of protocol.md section 3: `true` if the message may be handed
/// over; an oversized one is logged here and must be dropped by the caller.
fn admit_incoming(subject: &str, payload: &Bytes) -> bool {
    if payload.len() > MAX_FRAME_BYTES {
        tracing::warn!(
            subject,
            size = payload.len(),
            limit = MAX_FRAME_BYTES,
            "dropping an oversized incoming message (docs/protocol.md section 3)"
        );
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_exactly_64_kib() {
        assert_eq!(MAX_FRAME_BYTES, 65_536);
        assert!(check_outgoing(&Bytes::from(vec![0; MAX_FRAME_BYTES])).is_ok());
        assert!(matches!(
            check_outgoing(&Bytes::from(vec![0; MAX_FRAME_BYTES + 1])),
            Err(BusError::TooLarge { size }) if size == MAX_FRAME_BYTES + 1
        ));
        assert!(admit_incoming("s", &Bytes::from(vec![0; MAX_FRAME_BYTES])));
        assert!(!admit_incoming(
            "s",
            &Bytes::from(vec![0; MAX_FRAME_BYTES + 1])
        ));
    }

    #[test]
    fn too_large_message_names_size_and_limit() {
        let e = BusError::TooLarge { size: 70_000 };
        assert_eq!(
            e.to_string(),
            "frame of 70000 bytes exceeds the 65536 byte limit"
        );
    }
}
