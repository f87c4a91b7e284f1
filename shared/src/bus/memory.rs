//! [`MemoryBus`]: the in-process bus, for the embedded demo and most tests (architecture.md
//! "Inside `shared`"). It behaves like NATS where the nodes can tell: exact subjects, replies
//! through a fresh inbox subject, [`BusError::NoResponders`] at once when nobody listens,
//! the frame limit on both sides, and a bounded queue per subscriber whose overflow is
//! dropped (NATS's slow-consumer rule) rather than stalling every sender.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::subject::{InboxPrefix, Subject};
use super::{Bus, BusError, Incoming, admit_incoming, check_outgoing};
use crate::ids::Uid;

/// Messages one subscriber may have queued before further ones are dropped (bounded, like
/// the NATS client's per-subscription buffer).
pub const SUBSCRIPTION_CAPACITY: usize = 4096;

/// Replies one request inbox may have queued: the first one is taken, later duplicates are
/// dropped.
const INBOX_CAPACITY: usize = 4;

/// An in-process bus. Clones share one router, so every node of one process that holds a
/// clone can reach every other.
#[derive(Clone)]
pub struct MemoryBus {
    router: Arc<Mutex<Router>>,
}

/// One message in flight.
struct Envelope {
    subject: Subject,
    reply: Option<Subject>,
    payload: Bytes,
}

/// One subscriber's queue.
struct Route {
    id: u64,
    sender: mpsc::Sender<Envelope>,
}

/// Who subscribes to what. Routes are removed when their subscription is dropped.
struct Router {
    routes: HashMap<Subject, Vec<Route>>,
    next_id: u64,
    inbox: InboxPrefix,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBus {
    /// A new, empty bus. Its reply inboxes live under `_INBOX.<random uid>`, the same shape
    /// as a NATS client's.
    #[must_use]
    pub fn new() -> Self {
        Self::with_inbox_of(&Uid::random())
    }

    /// A new, empty bus whose reply inboxes live under `_INBOX.<uid>`: requests on it
    /// carry `uid`'s reply subjects, as a NATS connection of that peer's does (a test of a
    /// gateway that answers only on its sender's inbox, protocol.md section 3).
    #[must_use]
    pub fn with_inbox_of(uid: &Uid) -> Self {
        MemoryBus {
            router: Arc::new(Mutex::new(Router {
                routes: HashMap::new(),
                next_id: 0,
                inbox: InboxPrefix::for_uid(uid),
            })),
        }
    }

    /// Delivers `payload` without the send-side frame limit: fault injection for tests and
    /// the simulator, standing in for a peer that does not follow protocol.md section 3. The
    /// receive-side limit still applies, so an oversized message reaches no subscriber.
    /// Returns how many subscribers it was queued for.
    pub fn publish_unchecked(&self, subject: &Subject, payload: Bytes) -> usize {
        self.deliver(subject, None, payload)
    }

    /// A poisoned lock only means another thread panicked mid-update of a map whose every
    /// update is a single insert or remove, so the map is still consistent.
    fn router(&self) -> MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the message for every subscriber of `subject`; returns how many there are.
    fn deliver(&self, subject: &Subject, reply: Option<Subject>, payload: Bytes) -> usize {
        let router = self.router();
        let Some(routes) = router.routes.get(subject) else {
            return 0;
        };
        for route in routes {
            let envelope = Envelope {
                subject: subject.clone(),
                reply: reply.clone(),
                payload: payload.clone(),
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = route.sender.try_send(envelope) {
                tracing::warn!(
                    subject = subject.as_str(),
                    "subscriber queue full: dropping the message (slow consumer)"
                );
            }
        }
        routes.len()
    }

    /// Registers a subscription at once (no await point, so a request's inbox exists before
    /// the request is sent).
    fn subscribe_now(&self, subject: &Subject, capacity: usize) -> MemorySubscription {
        let (sender, receiver) = mpsc::channel(capacity);
        let mut router = self.router();
        let id = router.next_id;
        router.next_id += 1;
        router
            .routes
            .entry(subject.clone())
            .or_default()
            .push(Route { id, sender });
        drop(router);
        MemorySubscription {
            receiver,
            id,
            subject: subject.clone(),
            bus: self.clone(),
        }
    }

    /// A fresh inbox subject for one request.
    fn next_inbox(&self) -> Subject {
        let mut router = self.router();
        let token = router.next_id;
        router.next_id += 1;
        router.inbox.inbox(token)
    }

    /// Removes one subscription's route, and the subject's entry once it has none.
    fn unsubscribe(&self, subject: &Subject, id: u64) {
        let mut router = self.router();
        if let Some(routes) = router.routes.get_mut(subject) {
            routes.retain(|r| r.id != id);
            if routes.is_empty() {
                router.routes.remove(subject);
            }
        }
    }
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let router = self.router();
        f.debug_struct("MemoryBus")
            .field("inbox", &router.inbox)
            .field("subjects", &router.routes.len())
            .finish()
    }
}

impl Bus for MemoryBus {
    type Subscription = MemorySubscription;

    async fn request(
        &self,
        subject: &Subject,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        check_outgoing(&payload)?;
        let inbox = self.next_inbox();
        let mut replies = self.subscribe_now(&inbox, INBOX_CAPACITY);
        if self.deliver(subject, Some(inbox), payload) == 0 {
            return Err(BusError::NoResponders);
        }
        match tokio::time::timeout(timeout, replies.next()).await {
            Ok(Some(reply)) => Ok(reply.into_payload()),
            // Unreachable while `replies` holds its route, which the router keeps until
            // `replies` is dropped; reported rather than assumed.
            Ok(None) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout),
        }
    }

    async fn publish(&self, subject: &Subject, payload: Bytes) -> Result<(), BusError> {
        check_outgoing(&payload)?;
        self.deliver(subject, None, payload);
        Ok(())
    }

    async fn subscribe(&self, subject: &Subject) -> Result<MemorySubscription, BusError> {
        Ok(self.subscribe_now(subject, SUBSCRIPTION_CAPACITY))
    }

    async fn flush(&self) -> Result<(), BusError> {
        Ok(())
    }
}

/// The messages on one subject of a [`MemoryBus`]. Dropping it unsubscribes at once.
pub struct MemorySubscription {
    receiver: mpsc::Receiver<Envelope>,
    id: u64,
    subject: Subject,
    bus: MemoryBus,
}

impl fmt::Debug for MemorySubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySubscription")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Stream for MemorySubscription {
    type Item = Incoming<MemoryBus>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.receiver.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(m)) => {
                    if admit_incoming(m.subject.as_str(), &m.payload) {
                        let bus = self.bus.clone();
                        return Poll::Ready(Some(Incoming::new(
                            m.subject, m.reply, m.payload, bus,
                        )));
                    }
                }
            }
        }
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.bus.unsubscribe(&self.subject, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Subjects;

    /// Dropped subscriptions leave nothing behind in the router, so request inboxes do not
    /// accumulate.
    #[tokio::test]
    async fn routes_are_removed_on_drop() {
        let bus = MemoryBus::new();
        let subject = Subjects::default().broker();
        let a = bus.subscribe(&subject).await.unwrap();
        let b = bus.subscribe(&subject).await.unwrap();
        assert_eq!(bus.publish_unchecked(&subject, Bytes::from_static(b"x")), 2);
        drop(a);
        assert_eq!(bus.publish_unchecked(&subject, Bytes::from_static(b"x")), 1);
        drop(b);
        assert!(bus.router().routes.is_empty());

        let mut server = bus.subscribe(&subject).await.unwrap();
        let responder = tokio::spawn(async move {
            let m = server.next().await.unwrap();
            m.respond(Bytes::from_static(b"ok")).await.unwrap();
        });
        let reply = bus
            .request(&subject, Bytes::new(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(reply, Bytes::from_static(b"ok"));
        responder.await.unwrap();
        // The responder's subscription and the request's inbox are both gone.
        assert!(bus.router().routes.is_empty());
    }

    /// A full subscriber queue drops the newest message instead of blocking the sender.
    #[tokio::test]
    async fn full_queue_drops_instead_of_blocking() {
        let bus = MemoryBus::new();
        let subject = Subjects::default().broker();
        let mut sub = bus.subscribe(&subject).await.unwrap();
        for i in 0..=SUBSCRIPTION_CAPACITY {
            let payload = Bytes::from((i as u64).to_be_bytes().to_vec());
            bus.publish(&subject, payload).await.unwrap();
        }
        for i in 0..SUBSCRIPTION_CAPACITY {
            let m = sub.next().await.unwrap();
            assert_eq!(m.payload().as_ref(), (i as u64).to_be_bytes());
        }
        bus.publish(&subject, Bytes::from_static(b"after"))
            .await
            .unwrap();
        assert_eq!(sub.next().await.unwrap().payload().as_ref(), b"after");
    }
}
