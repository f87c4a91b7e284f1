//! The broker's actor shell on a real `nats-server` (started by the harness on a free port):
//! the same node and gateway as over the `MemoryBus`, on `NatsBus` connections of its own,
//! and the customer's real wallet on another connection whose replies come back under
//! `_INBOX.<customer uid>` (architecture.md "Transport"). 6.0, 6.1, 6.4 and 6.6 end to end,
//! then conservation and replay equality.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use broker::core::Config;
use customer_cli::client::Client;
use customer_cli::core::HistoryKind;
use peerscrip_tests::NatsServer;
use peerscrip_tests::network::{self, NOW, Party};
use shared::bus::{InboxPrefix, NatsBus, NatsOptions, Subjects};
use shared::events::Account;
use shared::{Amount, Pan, PanSecret, Suite, fixtures};

const PAN: &str = "GR1601101250000000012300695";
const SECRET: &str = "correct horse battery staple";
const TIMEOUT: Duration = Duration::from_secs(60);

fn clock() -> u64 {
    NOW
}

#[actix_rt::test]
async fn a_wallet_buys_tops_up_and_withdraws_through_the_broker_on_nats() {
    let suite = Suite::Paper;
    let server = NatsServer::start().expect("start nats-server");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.redb");
    let broker_keys = fixtures::keypair(suite, 1);
    let customer_keys = fixtures::keypair(suite, 0);
    let subjects = Subjects::default();
    let pan = Pan::new(PAN);

    let mut node = network::open_broker(&path, Config::new(suite)).unwrap();
    node.open_account(&pan, &PanSecret::new(SECRET), NOW)
        .unwrap();
    node.deposit(&pan, Amount::from_minor(5_000), NOW).unwrap();
    let broker_bus = NatsBus::connect(
        &server.url(),
        NatsOptions {
            name: Some("broker".into()),
            ..NatsOptions::default()
        },
    )
    .await
    .unwrap();
    let running = broker::shell::serve(node, broker_bus, subjects.clone(), clock)
        .await
        .unwrap();

    let customer_bus = NatsBus::connect(
        &server.url(),
        NatsOptions {
            inbox_prefix: Some(InboxPrefix::for_uid(&customer_keys.uid())),
            name: Some("customer".into()),
            ..NatsOptions::default()
        },
    )
    .await
    .unwrap();
    let client = Client::new(customer_bus, subjects, broker_keys.uid(), TIMEOUT, 3);
    let party = Party::with_account(suite, 0, PAN, SECRET);
    let mut w = network::create_wallet(&dir.path().join("wallet.redb"), &party).unwrap();
    let out = w.register(NOW).unwrap();
    let done = client.send(&mut w, out, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::Registered {
            uid: customer_keys.uid()
        }
    );
    let out = w
        .obtain_broker_scrip(Amount::from_minor(1_500), NOW)
        .unwrap();
    client.send(&mut w, out, NOW).await.unwrap();
    let out = w
        .top_up_broker_scrip(Amount::from_minor(2_000), NOW)
        .unwrap();
    let done = client.send(&mut w, out, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::BrokerScripToppedUp {
            from: Amount::from_minor(1_500),
            to: Amount::from_minor(2_000)
        }
    );
    let out = w.withdraw_broker_scrip(NOW).unwrap();
    let done = client.send(&mut w, out, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::BrokerScripWithdrawn {
            value: Amount::from_minor(2_000)
        }
    );

    let node = running.stop().await.unwrap();
    assert_eq!(node.state().check_conserved(), Ok(()));
    assert_eq!(node.state().balance(&Account::Bank(pan.clone())), 5_000);
    assert_eq!(node.state().balance(&Account::FloatBroker), 0);
    let state = node.state().clone();
    node.close().unwrap();
    let reopened = network::open_broker(&path, Config::new(suite)).unwrap();
    assert_eq!(reopened.state(), &state);
}
