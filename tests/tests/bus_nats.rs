//! The bus conformance suite against [`NatsBus`] on a real `nats-server` (one server per
//! test, started by the harness), plus what only NATS has: the inbox prefix and connecting.

use bytes::Bytes;
use futures::StreamExt;
use peerscrip_tests::NatsServer;
use peerscrip_tests::bus_conformance::{PATIENCE, Rig};
use shared::Uid;
use shared::bus::{Bus, BusError, InboxPrefix, NatsBus, NatsOptions, Subjects};

/// The bus with a peer-style inbox prefix; the raw sender is a plain async-nats client on
/// its own connection.
async fn rig() -> Rig<NatsBus, async_nats::Client, NatsServer> {
    let server = NatsServer::start().expect("start nats-server");
    let options = NatsOptions {
        inbox_prefix: Some(InboxPrefix::for_uid(&Uid::random())),
        name: Some("conformance".into()),
        ..NatsOptions::default()
    };
    let bus = NatsBus::connect(&server.url(), options)
        .await
        .expect("connect the bus");
    let raw = async_nats::connect(server.url())
        .await
        .expect("connect the raw client");
    Rig {
        bus,
        raw,
        guard: server,
    }
}

peerscrip_tests::bus_conformance_tests!(rig);

/// Replies to a peer's requests come back under its own inbox prefix `_INBOX.<uid>`, which
/// the permission config confines it to (architecture.md "Transport").
#[tokio::test]
async fn requests_use_the_configured_inbox_prefix() {
    let server = NatsServer::start().expect("start nats-server");
    let uid = Uid::random();
    let subjects = Subjects::default();
    let options = NatsOptions {
        inbox_prefix: Some(subjects.inbox_prefix(&uid)),
        ..NatsOptions::default()
    };
    let requester = NatsBus::connect(&server.url(), options).await.unwrap();
    let responder = NatsBus::connect(&server.url(), NatsOptions::default())
        .await
        .unwrap();
    let subject = subjects.broker();
    let mut sub = responder.subscribe(&subject).await.unwrap();
    let serve = tokio::spawn(async move {
        let m = sub.next().await.unwrap();
        let reply = m.reply().unwrap().as_str().to_owned();
        m.respond(Bytes::from_static(b"ok")).await.unwrap();
        reply
    });
    let answer = requester
        .request(&subject, Bytes::from_static(b"q"), PATIENCE)
        .await
        .unwrap();
    assert_eq!(answer.as_ref(), b"ok");
    let reply_subject = serve.await.unwrap();
    assert!(
        reply_subject.starts_with(&format!("_INBOX.{uid}.")),
        "{reply_subject}"
    );
}

/// A request and its reply cross between two separate connections (two nodes).
#[tokio::test]
async fn request_between_two_connections() {
    let server = NatsServer::start().expect("start nats-server");
    let a = NatsBus::connect(&server.url(), NatsOptions::default())
        .await
        .unwrap();
    let b = NatsBus::connect(&server.url(), NatsOptions::default())
        .await
        .unwrap();
    let subject = Subjects::default().merchant(&Uid::random());
    let mut sub = b.subscribe(&subject).await.unwrap();
    let serve = tokio::spawn(async move {
        let m = sub.next().await.unwrap();
        m.respond(Bytes::from_static(b"from b")).await.unwrap();
    });
    let answer = a
        .request(&subject, Bytes::from_static(b"from a"), PATIENCE)
        .await
        .unwrap();
    assert_eq!(answer.as_ref(), b"from b");
    serve.await.unwrap();
}

/// Connecting where no server listens fails with `Connect`, not a hang.
#[tokio::test]
async fn connect_to_a_stopped_server_fails() {
    let url = {
        let server = NatsServer::start().expect("start nats-server");
        server.url()
    };
    let outcome = NatsBus::connect(&url, NatsOptions::default()).await;
    assert!(matches!(outcome, Err(BusError::Connect(_))), "{outcome:?}");
}
