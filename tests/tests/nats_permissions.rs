//! The deployment's NATS permissions on a real `nats-server` (architecture.md "Transport"): the
//! configuration `peerscrip-ops nats-config` writes gives each node one user, and the
//! server, not our code, stops a customer from listening to the broker or delivering to a
//! peer, and a merchant from listening to the broker; what each role must do still works.

// Test setup outside `#[test]` functions: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use ops::nats_config::{self, Named, NatsUser, Role};
use peerscrip_tests::NatsServer;
use shared::bus::{Bus, BusError, NatsBus, NatsCredentials, NatsOptions, Subject, Subjects};
use shared::{Suite, Uid, fixtures};
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(10);

/// A server running the generated configuration for a broker, a merchant and two customers.
struct Deployment {
    server: NatsServer,
    subjects: Subjects,
    broker: NatsUser,
    merchant: NatsUser,
    customer: NatsUser,
    other_customer: NatsUser,
}

fn uid(index: usize) -> Uid {
    fixtures::keypair(Suite::Modern, index).uid()
}

fn deploy() -> Deployment {
    let subjects = Subjects::default();
    let users = [
        NatsUser::new("broker", Role::Broker, uid(0)).unwrap(),
        NatsUser::new("m1", Role::Merchant, uid(1)).unwrap(),
        NatsUser::new("alice", Role::Customer, uid(2)).unwrap(),
        NatsUser::new("bob", Role::Customer, uid(3)).unwrap(),
    ];
    let server = NatsServer::start_with_config(&nats_config::server_config(&subjects, &users))
        .expect("the server takes the generated configuration");
    let [broker, merchant, customer, other_customer] = users;
    Deployment {
        server,
        subjects,
        broker,
        merchant,
        customer,
        other_customer,
    }
}

fn credentials(user: &NatsUser) -> NatsCredentials {
    NatsCredentials::UserPassword {
        user: user.name.clone(),
        password: shared::SecretBytes::from_slice(user.password.as_bytes()),
    }
}

impl Deployment {
    /// `user`'s connection as a node makes it: its credential and, for a requester, its
    /// own inbox prefix.
    async fn bus(&self, user: &NatsUser) -> NatsBus {
        let options = NatsOptions {
            inbox_prefix: Some(self.subjects.inbox_prefix(&user.uid)),
            credentials: Some(credentials(user)),
            ..NatsOptions::default()
        };
        NatsBus::connect(&self.server.url(), options)
            .await
            .expect("connect with the credential")
    }

    /// A raw client of `user` that reports the server's errors (permission violations).
    async fn raw(&self, user: &NatsUser) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::with_user_and_password(
            user.name.clone(),
            user.password.to_string(),
        )
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(self.server.url())
        .await
        .expect("connect raw");
        (client, rx)
    }
}

/// The next server error within [`PATIENCE`] (the client lowercases the server's text, so
/// compare lowercased).
async fn server_error(events: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("the server reports a violation")
        .expect("events open")
}

/// Asserts that the server refuses `client`'s subscription to `subject`, reporting it on
/// `events`.
async fn assert_cannot_subscribe(
    client: &async_nats::Client,
    events: &mut mpsc::UnboundedReceiver<String>,
    subject: &Subject,
) {
    let _sub = client.subscribe(subject.to_string()).await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(
        server_error(events).await.to_lowercase(),
        format!("nats: permissions violation for subscription to \"{subject}\"").to_lowercase()
    );
}

/// Asserts that the server refuses `client`'s `payload` to `subject`, reporting it on
/// `events`.
async fn assert_cannot_publish(
    client: &async_nats::Client,
    events: &mut mpsc::UnboundedReceiver<String>,
    subject: &Subject,
    payload: &'static [u8],
) {
    client
        .publish(subject.to_string(), Bytes::from_static(payload))
        .await
        .unwrap();
    client.flush().await.unwrap();
    assert_eq!(
        server_error(events).await.to_lowercase(),
        format!("nats: permissions violation for publish to \"{subject}\"").to_lowercase()
    );
}

#[tokio::test]
async fn a_customer_cannot_listen_to_the_broker_or_others_nor_answer_or_deliver_to_them() {
    let d = deploy();
    let (client, mut events) = d.raw(&d.customer).await;
    assert_cannot_subscribe(&client, &mut events, &d.subjects.broker()).await;
    let other = d.subjects.peer(&d.other_customer.uid);
    assert_cannot_subscribe(&client, &mut events, &other).await;
    // Nor answer another customer's request (e.g. forge the broker's unsigned Ack,
    // docs/adr/0008): its inbox is closed to everyone but the broker's and merchant's replies.
    let inbox = d.subjects.inbox_prefix(&d.other_customer.uid).inbox(7);
    assert_cannot_publish(&client, &mut events, &inbox, b"forged ack").await;
    let merchant_peer = d.subjects.peer(&d.merchant.uid);
    assert_cannot_publish(&client, &mut events, &merchant_peer, b"forged delivery").await;
}

#[tokio::test]
async fn a_merchant_cannot_listen_to_the_broker() {
    let d = deploy();
    let (client, mut events) = d.raw(&d.merchant).await;
    assert_cannot_subscribe(&client, &mut events, &d.subjects.broker()).await;
}

/// What each role must do still works under the permissions: a customer's and a
/// merchant's requests to the broker, a customer's to the merchant, and the broker's and the
/// merchant's deliveries to the customer's peer subject.
#[tokio::test]
async fn each_role_can_do_its_part() {
    let d = deploy();
    let broker = d.bus(&d.broker).await;
    let merchant = d.bus(&d.merchant).await;
    let customer = d.bus(&d.customer).await;

    for (bus, subject) in [
        (broker.clone(), d.subjects.broker()),
        (merchant.clone(), d.subjects.merchant(&d.merchant.uid)),
    ] {
        let mut sub = bus.subscribe(&subject).await.unwrap_or_else(|e| {
            panic!(
                "subscribe {subject}: {e}\n{}",
                std::fs::read_to_string(d.server.log_path()).unwrap_or_default()
            )
        });
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let _ = m.respond(Bytes::from_static(b"answered")).await;
            }
        });
    }
    for (requester, subject) in [
        (&customer, d.subjects.broker()),
        (&customer, d.subjects.merchant(&d.merchant.uid)),
        (&merchant, d.subjects.broker()),
    ] {
        let answer = requester
            .request(&subject, Bytes::from_static(b"q"), PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("request to {subject}: {e}"));
        assert_eq!(answer.as_ref(), b"answered");
    }

    let mut deliveries = customer
        .subscribe(&d.subjects.peer(&d.customer.uid))
        .await
        .unwrap();
    for (bus, payload) in [(&broker, &b"change"[..]), (&merchant, &b"top-up"[..])] {
        bus.publish(
            &d.subjects.peer(&d.customer.uid),
            Bytes::copy_from_slice(payload),
        )
        .await
        .unwrap();
        let got = tokio::time::timeout(PATIENCE, deliveries.next())
            .await
            .expect("delivered")
            .expect("open");
        assert_eq!(got.payload().as_ref(), payload);
    }
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let d = deploy();
    let wrong = NatsCredentials::UserPassword {
        user: d.customer.name.clone(),
        password: shared::SecretBytes::from_slice(
            format!("{}x", d.customer.password.as_str()).as_bytes(),
        ),
    };
    let options = NatsOptions {
        credentials: Some(wrong),
        connection_timeout: Some(Duration::from_secs(5)),
        ..NatsOptions::default()
    };
    assert!(matches!(
        NatsBus::connect(&d.server.url(), options).await,
        Err(BusError::Connect(_))
    ));
}

/// The files `nats-config` writes: a configuration the server accepts, one password file
/// per node, all readable by their owner only; a second run does not overwrite them.
#[tokio::test]
async fn nats_config_writes_a_working_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let key = |index: usize, name: &str| {
        let path = dir.path().join(format!("{name}.pub.pem"));
        let pem = fixtures::keypair(Suite::Modern, index)
            .public()
            .to_pem()
            .unwrap();
        std::fs::write(&path, pem).unwrap();
        path
    };
    let broker = key(0, "broker");
    let merchants = [Named {
        name: "m1".into(),
        key: key(1, "m1"),
    }];
    let customers = [Named {
        name: "alice".into(),
        key: key(2, "alice"),
    }];
    let out = dir.path().join("deploy");
    let subjects = Subjects::default();
    let write = || {
        nats_config::write(
            &out,
            &subjects,
            Suite::Modern,
            &broker,
            &merchants,
            &customers,
            None,
        )
    };
    let written = write().unwrap();
    let names: Vec<&str> = written.passwords.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["broker", "m1", "alice"]);
    for path in std::iter::once(&written.config).chain(written.passwords.iter().map(|(_, p)| p)) {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let text = std::fs::read_to_string(&written.config).unwrap();
    let server = NatsServer::start_with_config(&text).unwrap();
    let password = std::fs::read_to_string(&written.passwords[2].1).unwrap();
    let options = NatsOptions {
        credentials: Some(NatsCredentials::UserPassword {
            user: "alice".into(),
            password: shared::SecretBytes::from_slice(password.as_bytes()),
        }),
        ..NatsOptions::default()
    };
    NatsBus::connect(&server.url(), options)
        .await
        .expect("alice connects with her written password");
    assert!(write().is_err(), "existing files are not overwritten");
    assert_eq!(std::fs::read_to_string(&written.config).unwrap(), text);
}
