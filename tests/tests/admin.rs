//! The operator's administration requests (ADR 0010) end to end: `ops::admin::AdminClient`
//! against the broker running in its actor shell over the `MemoryBus`, with a real redb file.
//!
//! An account the operator opens over the bus is usable (a wallet registers for it with the
//! PANSecret the operator drew), deposits and payouts move money once even when repeated,
//! every refusal has its code and changes nothing, only the configured operator is served,
//! and the broker's file reopens (replay equal to the live state, secrets table intact).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use broker::core::Config as BrokerConfig;
use broker::node::BrokerNode;
use customer_cli::Wallet;
use customer_cli::client::Client;
use customer_cli::core::HistoryKind;
use ops::admin::{AdminClient, AdminError};
use shared::UnixSecs;
use shared::bus::{MemoryBus, Subjects};
use shared::events::Account;
use shared::wire::bodies::{AdminOp, AdminResult};
use shared::{Amount, ErrorCode, KeyPair, Pan, PanSecret, Suite, TxId, fixtures};

const NOW: u64 = 1_800_000_000;
const BROKER: usize = 1;
const OPERATOR: usize = 3;
const CUSTOMER: usize = 0;
const TIMEOUT: Duration = Duration::from_secs(30);

fn clock() -> shared::UnixSecs {
    shared::UnixSecs::new(NOW)
}

fn broker_node(suite: Suite, path: &std::path::Path) -> BrokerNode {
    BrokerNode::open(
        path,
        fixtures::keypair(suite, BROKER).clone(),
        fixtures::root_key(BROKER as u64),
        BrokerConfig::new(suite),
    )
    .unwrap()
    .with_operator(fixtures::keypair(suite, OPERATOR).public().clone())
}

fn admin(bus: &MemoryBus, suite: Suite, who: &KeyPair) -> AdminClient<MemoryBus> {
    AdminClient::new(
        bus.clone(),
        Subjects::default(),
        who.clone(),
        fixtures::keypair(suite, BROKER).public().clone(),
        TIMEOUT,
        1,
    )
}

fn refused_with(result: Result<AdminResult, AdminError>) -> ErrorCode {
    match result {
        Err(AdminError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn run(suite: Suite) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.redb");
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let running = broker::shell::serve(
        broker_node(suite, &path),
        bus.clone(),
        subjects.clone(),
        clock,
    )
    .await
    .unwrap();
    let operator = admin(&bus, suite, fixtures::keypair(suite, OPERATOR));
    let pan = Pan::new("GR1601101250000000012300695");
    let secret = PanSecret::generate();

    // Open, deposit; the balance says so.
    assert_eq!(
        operator
            .call(AdminOp::OpenAccount { pan: pan.clone() }, Some(&secret))
            .await
            .unwrap(),
        AdminResult::AccountOpened { pan: pan.clone() }
    );
    let deposit_tx = TxId::random();
    let deposit = AdminOp::Deposit {
        pan: pan.clone(),
        amount: Amount::from_minor(5_000),
    };
    let first = operator
        .call_as(deposit_tx, deposit.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        first,
        AdminResult::Moved {
            pan: pan.clone(),
            balance: Amount::from_minor(5_000)
        }
    );
    // The same deposit repeated (a lost answer): the stored answer, no second deposit.
    assert_eq!(
        operator.call_as(deposit_tx, deposit, None).await.unwrap(),
        first
    );
    assert_eq!(
        operator
            .call(
                AdminOp::Payout {
                    pan: pan.clone(),
                    amount: Amount::from_minor(1_200)
                },
                None
            )
            .await
            .unwrap(),
        AdminResult::Moved {
            pan: pan.clone(),
            balance: Amount::from_minor(3_800)
        }
    );
    assert_eq!(
        operator
            .call(AdminOp::Balance { pan: pan.clone() }, None)
            .await
            .unwrap(),
        AdminResult::Balance {
            pan: pan.clone(),
            balance: Amount::from_minor(3_800),
            available: Amount::from_minor(3_800)
        }
    );

    // Refusals: each with its code.
    assert_eq!(
        refused_with(
            operator
                .call(
                    AdminOp::OpenAccount { pan: pan.clone() },
                    Some(&PanSecret::generate())
                )
                .await
        ),
        ErrorCode::AccountExists
    );
    assert_eq!(
        refused_with(
            operator
                .call(
                    AdminOp::OpenAccount {
                        pan: Pan::new("GR00WEAK")
                    },
                    Some(&PanSecret::new("short"))
                )
                .await
        ),
        ErrorCode::WeakPanSecret
    );
    assert_eq!(
        refused_with(
            operator
                .call(
                    AdminOp::Payout {
                        pan: pan.clone(),
                        amount: Amount::from_minor(3_801)
                    },
                    None
                )
                .await
        ),
        ErrorCode::InsufficientFunds
    );
    assert_eq!(
        refused_with(
            operator
                .call(
                    AdminOp::Deposit {
                        pan: Pan::new("GR00NONE"),
                        amount: Amount::from_minor(1)
                    },
                    None
                )
                .await
        ),
        ErrorCode::PanUnknown
    );
    assert_eq!(
        refused_with(
            operator
                .call(
                    AdminOp::Deposit {
                        pan: pan.clone(),
                        amount: Amount::ZERO
                    },
                    None
                )
                .await
        ),
        ErrorCode::AmountOutOfRange
    );
    // Another key, even a registered-looking one, is not the operator.
    let stranger = admin(&bus, suite, fixtures::keypair(suite, CUSTOMER));
    assert_eq!(
        refused_with(
            stranger
                .call(AdminOp::Balance { pan: pan.clone() }, None)
                .await
        ),
        ErrorCode::UnknownPeer
    );

    // The account works: a wallet registers for it with the PANSecret the operator drew.
    let mut wallet = Wallet::create(
        dir.path().join("wallet.redb"),
        fixtures::keypair(suite, CUSTOMER).clone(),
        fixtures::keypair(suite, BROKER).public(),
        UnixSecs::new(NOW),
    )
    .unwrap();
    wallet
        .link_account(pan.clone(), &secret, UnixSecs::new(NOW))
        .unwrap();
    let client = Client::new(
        bus.clone(),
        subjects.clone(),
        fixtures::keypair(suite, BROKER).uid(),
        TIMEOUT,
        3,
    );
    let out = wallet.register(UnixSecs::new(NOW)).unwrap();
    let done = client
        .send(&mut wallet, out, UnixSecs::new(NOW))
        .await
        .unwrap();
    assert_eq!(
        done.what,
        HistoryKind::Registered {
            uid: fixtures::keypair(suite, CUSTOMER).uid()
        }
    );
    match operator
        .call(AdminOp::Peers { after: None }, None)
        .await
        .unwrap()
    {
        AdminResult::Peers { peers, more } => {
            assert!(!more);
            assert_eq!(peers.len(), 1);
            assert_eq!(peers[0].uid, fixtures::keypair(suite, CUSTOMER).uid());
            assert_eq!(peers[0].pan, pan);
        }
        other => panic!("{other:?}"),
    }

    // Money: external paid in 50.00 and took out 12.00; the rest is in the account.
    let node = running.stop().await.unwrap();
    let state = node.state().clone();
    assert_eq!(state.balance(&Account::Bank(pan.clone())), 3_800);
    assert_eq!(state.balance(&Account::External), -3_800);
    // One event each for the opening, the deposit (repeated, recorded once), the payout
    // and the registration: the refusals and reads appended nothing.
    assert_eq!(node.log().len().unwrap(), 4);
    node.close().unwrap();
    // Reopened: the replayed state equals the live one and the secrets table checks out
    // against the commitment (`BrokerNode::open` refuses otherwise).
    let reopened = broker_node(suite, &path);
    assert_eq!(reopened.state(), &state);
}

#[actix_rt::test]
async fn the_operator_runs_the_bank_over_the_bus_paper_suite() {
    run(Suite::Paper).await;
}

#[actix_rt::test]
async fn the_operator_runs_the_bank_over_the_bus_modern_suite() {
    run(Suite::Modern).await;
}

/// A broker with no operator configured serves no administration at all.
#[actix_rt::test]
async fn without_an_operator_nothing_is_served() {
    let suite = Suite::Modern;
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::new();
    let node = BrokerNode::open(
        dir.path().join("broker.redb"),
        fixtures::keypair(suite, BROKER).clone(),
        fixtures::root_key(BROKER as u64),
        BrokerConfig::new(suite),
    )
    .unwrap();
    let running = broker::shell::serve(node, bus.clone(), Subjects::default(), clock)
        .await
        .unwrap();
    let operator = admin(&bus, suite, fixtures::keypair(suite, OPERATOR));
    assert_eq!(
        refused_with(
            operator
                .call(
                    AdminOp::Balance {
                        pan: Pan::new("GR1601101250000000012300695")
                    },
                    None
                )
                .await
        ),
        ErrorCode::UnknownPeer
    );
    let node = running.stop().await.unwrap();
    assert_eq!(node.log().len().unwrap(), 0);
}
