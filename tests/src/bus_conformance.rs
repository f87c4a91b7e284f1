//! The bus conformance suite: one set of cases, generic over [`Bus`], that every
//! implementation must pass (protocol.md section 3: requests, replies, deliveries, the
//! 64 KiB frame limit). `tests/bus_memory.rs` and `tests/bus_nats.rs` run it through
//! [`bus_conformance_tests!`](crate::bus_conformance_tests), so adding a case here runs it
//! against every bus.
//!
//! Every case uses subjects under fresh random UIDs, so cases never see each other's
//! messages even on one server. Both implementations agree on every outcome, including
//! "request after the only subscriber was dropped" → [`BusError::NoResponders`].

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use shared::Uid;
use shared::bus::{Bus, BusError, MAX_FRAME_BYTES, MemoryBus, Subject, Subjects};

/// A bound on waits that are expected to succeed (generous: it only matters on failure).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The timeout of a request that is expected to time out.
pub const SHORT_TIMEOUT: Duration = Duration::from_millis(200);

/// How many requests [`concurrent_requests_get_their_own_replies`] has in flight at once.
pub const CONCURRENT_REQUESTS: usize = 200;

/// Sends bytes on a subject bypassing the bus's send-side frame limit: a peer that does
/// not follow protocol.md section 3. Messages from one raw sender arrive in order.
pub trait RawSender: Send + Sync {
    /// Sends `payload` to `subject` and waits until it has left this sender.
    fn send_raw(&self, subject: &Subject, payload: Bytes) -> impl Future<Output = ()> + Send;
}

impl RawSender for MemoryBus {
    async fn send_raw(&self, subject: &Subject, payload: Bytes) {
        self.publish_unchecked(subject, payload);
    }
}

impl RawSender for async_nats::Client {
    async fn send_raw(&self, subject: &Subject, payload: Bytes) {
        self.publish(subject.as_str().to_owned(), payload)
            .await
            .expect("raw publish");
        self.flush().await.expect("raw flush");
    }
}

/// What one conformance test needs: the bus under test, a raw sender that reaches the same
/// subscribers, and whatever must stay alive meanwhile (e.g. the `nats-server`).
#[derive(Debug)]
pub struct Rig<B, R, G> {
    /// The bus under test.
    pub bus: B,
    /// A sender that ignores the frame limit.
    pub raw: R,
    /// Kept alive until the test ends.
    pub guard: G,
}

/// A fresh merchant subject nobody else uses.
fn fresh_merchant() -> Subject {
    Subjects::default().merchant(&Uid::random())
}

/// A fresh peer subject nobody else uses.
fn fresh_peer() -> Subject {
    Subjects::default().peer(&Uid::random())
}

/// The next message of `sub`, within [`PATIENCE`].
async fn next<S: futures::Stream + Unpin>(sub: &mut S) -> S::Item {
    tokio::time::timeout(PATIENCE, sub.next())
        .await
        .expect("a message within PATIENCE")
        .expect("subscription still open")
}

/// A request reaches the subscriber with its subject and a reply subject, and the reply
/// comes back to the requester.
pub async fn request_reply_round_trip<B: Bus>(bus: &B) {
    let subject = fresh_merchant();
    let mut sub = bus.subscribe(&subject).await.expect("subscribe");
    let expected = subject.clone();
    let responder = tokio::spawn(async move {
        let m = next(&mut sub).await;
        assert_eq!(m.subject(), &expected);
        assert!(m.reply().is_some(), "a request carries a reply subject");
        assert_eq!(m.payload().as_ref(), b"ping");
        m.respond(Bytes::from_static(b"pong"))
            .await
            .expect("respond");
    });
    let reply = bus
        .request(&subject, Bytes::from_static(b"ping"), PATIENCE)
        .await
        .expect("reply");
    assert_eq!(reply.as_ref(), b"pong");
    responder.await.expect("responder");
}

/// A request to a subject nobody subscribes to fails at once with `NoResponders` (well
/// before the long timeout it was given).
pub async fn request_without_subscriber_is_no_responders<B: Bus>(bus: &B) {
    let outcome = tokio::time::timeout(
        PATIENCE,
        bus.request(&fresh_merchant(), Bytes::from_static(b"x"), PATIENCE * 6),
    )
    .await
    .expect("NoResponders comes before any timeout");
    assert!(
        matches!(outcome, Err(BusError::NoResponders)),
        "{outcome:?}"
    );
}

/// A request whose handler never answers fails with `Timeout`; the request did arrive.
pub async fn unanswered_request_times_out<B: Bus>(bus: &B) {
    let subject = fresh_merchant();
    let mut sub = bus.subscribe(&subject).await.expect("subscribe");
    let outcome = bus
        .request(&subject, Bytes::from_static(b"hello?"), SHORT_TIMEOUT)
        .await;
    assert!(matches!(outcome, Err(BusError::Timeout)), "{outcome:?}");
    let m = next(&mut sub).await;
    assert_eq!(m.payload().as_ref(), b"hello?");
    assert!(m.reply().is_some());
}

/// Deliveries from one sender arrive in order, without a reply subject; responding to one
/// is refused with `NoReplySubject`.
pub async fn publish_delivers_in_order<B: Bus>(bus: &B) {
    let subject = fresh_peer();
    let mut sub = bus.subscribe(&subject).await.expect("subscribe");
    for i in 0u32..100 {
        bus.publish(&subject, Bytes::from(i.to_be_bytes().to_vec()))
            .await
            .expect("publish");
    }
    for i in 0u32..100 {
        let m = next(&mut sub).await;
        assert_eq!(m.payload().as_ref(), i.to_be_bytes());
        assert_eq!(m.reply(), None);
        if i == 0 {
            let refused = m.respond(Bytes::from_static(b"no")).await;
            assert!(
                matches!(refused, Err(BusError::NoReplySubject)),
                "{refused:?}"
            );
        }
    }
}

/// Two subscribers on different subjects each get exactly their own messages.
pub async fn subscribers_get_only_their_own_subject<B: Bus>(bus: &B) {
    let (a, b) = (fresh_merchant(), fresh_peer());
    let mut sub_a = bus.subscribe(&a).await.expect("subscribe a");
    let mut sub_b = bus.subscribe(&b).await.expect("subscribe b");
    for (subject, text) in [(&a, "a1"), (&b, "b1"), (&a, "a2"), (&a, "end"), (&b, "end")] {
        bus.publish(subject, Bytes::from(text))
            .await
            .expect("publish");
    }
    for text in ["a1", "a2", "end"] {
        let m = next(&mut sub_a).await;
        assert_eq!((m.subject(), m.payload().as_ref()), (&a, text.as_bytes()));
    }
    for text in ["b1", "end"] {
        let m = next(&mut sub_b).await;
        assert_eq!((m.subject(), m.payload().as_ref()), (&b, text.as_bytes()));
    }
}

/// A payload over the limit is refused with `TooLarge` by request, publish and respond,
/// and nothing is sent; a payload of exactly the limit goes through every path.
pub async fn oversized_send_is_too_large<B: Bus>(bus: &B) {
    let too_big = Bytes::from(vec![7u8; MAX_FRAME_BYTES + 1]);
    let at_limit = Bytes::from(vec![8u8; MAX_FRAME_BYTES]);
    let subject = fresh_merchant();
    let mut sub = bus.subscribe(&subject).await.expect("subscribe");

    let published = bus.publish(&subject, too_big.clone()).await;
    assert!(
        matches!(published, Err(BusError::TooLarge { size }) if size == MAX_FRAME_BYTES + 1),
        "{published:?}"
    );
    let requested = bus.request(&subject, too_big.clone(), PATIENCE).await;
    assert!(
        matches!(requested, Err(BusError::TooLarge { size }) if size == MAX_FRAME_BYTES + 1),
        "{requested:?}"
    );

    // Neither oversized send arrived: the first message is the one at the limit.
    bus.publish(&subject, at_limit.clone())
        .await
        .expect("publish at limit");
    assert_eq!(next(&mut sub).await.payload(), &at_limit);

    let (big, good) = (too_big.clone(), at_limit.clone());
    let responder = tokio::spawn(async move {
        let m = next(&mut sub).await;
        assert_eq!(m.payload(), &good);
        let refused = m.respond(big).await;
        assert!(
            matches!(refused, Err(BusError::TooLarge { size }) if size == MAX_FRAME_BYTES + 1),
            "{refused:?}"
        );
        m.respond(good).await.expect("respond at limit");
    });
    let reply = bus
        .request(&subject, at_limit.clone(), PATIENCE)
        .await
        .expect("reply at limit");
    assert_eq!(reply, at_limit);
    responder.await.expect("responder");
}

/// An oversized message from a raw sender never reaches the subscriber, and the next
/// normal message from that sender still does.
pub async fn oversized_incoming_is_dropped<B: Bus, R: RawSender>(bus: &B, raw: &R) {
    let subject = fresh_peer();
    let mut sub = bus.subscribe(&subject).await.expect("subscribe");
    raw.send_raw(&subject, Bytes::from(vec![1u8; MAX_FRAME_BYTES + 1]))
        .await;
    raw.send_raw(&subject, Bytes::from_static(b"after")).await;
    // The raw sender keeps order, so had the big one been handed over it would come first.
    assert_eq!(next(&mut sub).await.payload().as_ref(), b"after");
}

/// An oversized reply is dropped like any oversized message: the request keeps waiting
/// and takes the next normal reply.
pub async fn oversized_reply_is_dropped<B: Bus, R: RawSender + Clone + 'static>(bus: &B, raw: &R) {
    let subject = fresh_merchant();
    let mut sub = bus.subscribe(&subject).await.expect("subscribe");
    let raw = raw.clone();
    let responder = tokio::spawn(async move {
        let m = next(&mut sub).await;
        let reply = m.reply().expect("a request").clone();
        raw.send_raw(&reply, Bytes::from(vec![2u8; MAX_FRAME_BYTES + 1]))
            .await;
        raw.send_raw(&reply, Bytes::from_static(b"small")).await;
    });
    let reply = bus
        .request(&subject, Bytes::from_static(b"q"), PATIENCE)
        .await
        .expect("the normal reply");
    assert_eq!(reply.as_ref(), b"small");
    responder.await.expect("responder");
}

/// Many requests in flight at once each get their own reply.
pub async fn concurrent_requests_get_their_own_replies<B: Bus>(bus: &B) {
    let subject = fresh_merchant();
    let mut sub = bus.subscribe(&subject).await.expect("subscribe");
    let responder = tokio::spawn(async move {
        for _ in 0..CONCURRENT_REQUESTS {
            let m = next(&mut sub).await;
            let mut answer = b"re:".to_vec();
            answer.extend_from_slice(m.payload());
            m.respond(Bytes::from(answer)).await.expect("respond");
        }
    });
    let requests = (0..CONCURRENT_REQUESTS).map(|i| {
        let subject = subject.clone();
        async move {
            let payload = Bytes::from(format!("{i}"));
            let reply = bus.request(&subject, payload, PATIENCE).await;
            (i, reply)
        }
    });
    for (i, reply) in futures::future::join_all(requests).await {
        assert_eq!(reply.expect("reply").as_ref(), format!("re:{i}").as_bytes());
    }
    responder.await.expect("responder");
}

/// Once the only subscriber is dropped (and the drop has reached the server), a request
/// gets `NoResponders`, not a timeout.
pub async fn dropped_subscriber_gives_no_responders<B: Bus>(bus: &B) {
    let subject = fresh_merchant();
    let mut sub = bus.subscribe(&subject).await.expect("subscribe");
    bus.publish(&subject, Bytes::from_static(b"live"))
        .await
        .expect("publish");
    assert_eq!(next(&mut sub).await.payload().as_ref(), b"live");
    drop(sub);
    bus.flush().await.expect("flush");
    let outcome = bus
        .request(&subject, Bytes::from_static(b"anyone?"), PATIENCE)
        .await;
    assert!(
        matches!(outcome, Err(BusError::NoResponders)),
        "{outcome:?}"
    );
}

/// Generates one `#[tokio::test]` per conformance case. `$rig` is an async fn returning a
/// [`Rig`]; call the macro once per bus implementation.
#[macro_export]
macro_rules! bus_conformance_tests {
    ($rig:path) => {
        $crate::bus_conformance_tests!(@bus $rig,
            request_reply_round_trip,
            request_without_subscriber_is_no_responders,
            unanswered_request_times_out,
            publish_delivers_in_order,
            subscribers_get_only_their_own_subject,
            oversized_send_is_too_large,
            concurrent_requests_get_their_own_replies,
            dropped_subscriber_gives_no_responders
        );
        $crate::bus_conformance_tests!(@raw $rig,
            oversized_incoming_is_dropped,
            oversized_reply_is_dropped
        );
    };
    (@bus $rig:path, $($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let rig = $rig().await;
            $crate::bus_conformance::$case(&rig.bus).await;
        }
    )*};
    (@raw $rig:path, $($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let rig = $rig().await;
            $crate::bus_conformance::$case(&rig.bus, &rig.raw).await;
        }
    )*};
}
