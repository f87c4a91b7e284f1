//! The broker's actor shell on a real `nats-server` (started by the harness on a free port):
//! the same node and gateway as over the `MemoryBus`, on a `NatsBus` connection of its own,
//! and the customer's real wallet on another connection whose replies come back under
//! `_INBOX.<customer uid>` (architecture.md "Transport"), both set up by the deployment
//! fixture (`peerscrip_tests::deployment`). 6.0, 6.1, 6.4 and 6.6 end to end, then
//! conservation and replay equality.
#![allow(clippy::unwrap_used)]

use customer_cli::core::HistoryKind;
use peerscrip_tests::NatsServer;
use peerscrip_tests::deployment::Deployment;
use peerscrip_tests::invariants;
use peerscrip_tests::network::{NOW, NetworkSpec};
use shared::events::Account;
use shared::{Amount, Suite};

fn clock() -> shared::UnixSecs {
    NOW
}

#[actix_rt::test]
async fn a_wallet_buys_tops_up_and_withdraws_through_the_broker_on_nats() {
    let server = NatsServer::start().expect("start nats-server");
    let mut spec = NetworkSpec::new(Suite::Paper, 0, 1, Amount::from_minor(5_000));
    spec.registered = false;
    let mut d = Deployment::on_nats(&spec, &server).unwrap();
    d.serve_broker(clock).await.unwrap();
    let client = d.client(0).await.unwrap();
    let w = d.net.wallet_mut(0).unwrap();

    let out = w.register(NOW).unwrap();
    let done = client.send(w, out, NOW).await.unwrap();
    assert_eq!(done.what, HistoryKind::Registered { uid: w.uid() });
    let out = w
        .obtain_broker_scrip(Amount::from_minor(1_500), NOW)
        .unwrap();
    client.send(w, out, NOW).await.unwrap();
    let out = w
        .top_up_broker_scrip(Amount::from_minor(2_000), NOW)
        .unwrap();
    let done = client.send(w, out, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::BrokerScripToppedUp {
            from: Amount::from_minor(1_500),
            to: Amount::from_minor(2_000)
        }
    );
    let out = w.withdraw_broker_scrip(NOW).unwrap();
    let done = client.send(w, out, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::BrokerScripWithdrawn {
            value: Amount::from_minor(2_000)
        }
    );

    d.stop().await.unwrap();
    invariants::conserved(&d.net).unwrap();
    let pan = d.net.customers[0].party.pan.clone();
    let state = d.net.broker().unwrap().state();
    assert_eq!(state.balance(&Account::Bank(pan)), 5_000);
    assert_eq!(state.balance(&Account::FloatBroker), 0);
    invariants::replayed(&mut d.net).unwrap();
}
