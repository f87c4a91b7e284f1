//! `BrokerNode` as a whole: reopen and replay give the identical state and identical
//! tables, byte for byte; a file whose tables or secrets disagree with its log is refused.
#![allow(clippy::unwrap_used)]

mod wire_client;

use broker::core::State;
use broker::node::{BrokerNode, NodeError};
use broker::store::{self, LiveProjection};
use shared::UnixSecs;
use shared::ids::{Nonce, TxId};
use shared::wire::Decision;
use shared::wire::bodies::{
    AckBody, BrokerScripResponseX1, ChangeBrokerScripX5, TransactionStatusResponseBody, TxStatus,
    VendorTopUpAcceptedX3, VendorTopUpDecisionBody,
};
use shared::{Amount, Suite, fixtures};
use wire_client::{BROKER_KEY, NOW, World};

/// A broker with some history: two peers, scrip obtained, topped up, withdrawn, renewed,
/// refusals in between.
fn busy_world(suite: Suite) -> World {
    let mut w = World::new(suite);
    let c = w.client(0, "A-1");
    let d = w.client(2, "B-1");
    w.onboard(&c, 5000);
    w.onboard(&d, 700);
    let reply = w.send(&c.obtain(TxId::random(), 1000, Nonce::random()), NOW);
    let (_, b0) =
        c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
    let reply = w.send(&c.top_up(TxId::random(), &b0, 1500, Nonce::random()), NOW);
    let (_, b1) =
        c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
    let reply = w.send(&d.obtain(TxId::random(), 700, Nonce::random()), NOW);
    let (_, e0) =
        d.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
    w.send(
        &d.renew(TxId::random(), &e0),
        NOW.saturating_add_secs(40 * 24 * 3600),
    );
    w.send(&c.withdraw(TxId::random(), &b1), NOW);
    w.send(&c.withdraw(TxId::random(), &b1), NOW); // refused: Spent
    w.node()
        .payout(&c.pan, Amount::from_minor(100), NOW)
        .unwrap();
    // 6.2 with change, an expired exchange, and a 6.3 purchase.
    let m = w.client(3, "M-1");
    w.onboard(&m, 0);
    let reply = w.send(&c.obtain(TxId::random(), 800, Nonce::random()), NOW);
    let (_, b2) =
        c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
    let tx = TxId::random();
    w.send(&c.notice(tx, m.uid()), NOW);
    let step2 = c.vendor_scrip_request(tx, m.key.public(), &b2, 300, 300);
    let handled = w.send_all(&m.exchange_authorization(&step2, c.uid(), 300), NOW);
    assert_eq!(handled.deliveries.len(), 1);
    let (_, change) = c.open_scrip::<ChangeBrokerScripX5>(&handled.deliveries[0].frame, |b| {
        let change = b.change.clone().unwrap();
        (change.scrip, change.cs_hash)
    });
    w.send(&c.notice(TxId::random(), m.uid()), NOW);
    assert_eq!(
        w.node()
            .expire(NOW.saturating_add_secs(601))
            .unwrap()
            .events,
        1
    );
    let tx = TxId::random();
    w.send(&c.purchase_initiated(tx, m.uid(), 50), NOW);
    w.send(&m.purchase_completed(tx, c.uid(), 50), NOW);
    assert_eq!(w.state().memo(&m.uid()), 250);
    // 6.7: C cashes in VendorScrip of 100 (the broker does not read V0: any scrip will do).
    let step1 = c.vendor_withdraw_request(TxId::random(), m.key.public(), &b2, 100);
    let handled = w.send_all(
        &m.vendor_withdraw_authorization(&step1, c.uid(), 100, NOW.saturating_add_secs(60).get()),
        NOW,
    );
    assert_eq!(handled.deliveries.len(), 1);
    assert_eq!(w.state().memo(&m.uid()), 150);
    // 6.5: a settled top-up, a declined one and one still open.
    let v0 = m.issue_vendor_scrip(40);
    let accept = |top_up: u64| VendorTopUpAcceptedX3::Accept {
        customer: c.uid(),
        top_up: Amount::from_minor(top_up),
        new_value: Amount::from_minor(40 + top_up),
        scrip_id: v0.scrip.id(),
    };
    let tx = TxId::random();
    w.send_all(
        &c.vendor_top_up_request(tx, m.key.public(), &change, &v0, 100),
        NOW,
    );
    let handled = w.send_all(&m.vendor_top_up_accepted(tx, &accept(100)), NOW);
    let (_, b3) = c.open_scrip::<ChangeBrokerScripX5>(&handled.deliveries[0].frame, |b| {
        let change = b.change.clone().unwrap();
        (change.scrip, change.cs_hash)
    });
    let tx = TxId::random();
    w.send_all(
        &c.vendor_top_up_request(tx, m.key.public(), &b3, &v0, 10),
        NOW,
    );
    let decline = VendorTopUpAcceptedX3::Decline {
        reason: "closed".to_owned(),
        customer: c.uid(),
        top_up: Amount::from_minor(10),
    };
    w.send_all(&m.vendor_top_up_accepted(tx, &decline), NOW);
    w.send_all(
        &c.vendor_top_up_request(TxId::random(), m.key.public(), &b3, &v0, 20),
        NOW,
    );
    assert_eq!(w.state().memo(&m.uid()), 250);
    let states: Vec<_> = w
        .state()
        .escrows
        .values()
        .map(|e| e.state.clone())
        .collect();
    assert_eq!(states.len(), 3);
    assert!(states.contains(&broker::core::EscrowState::Settled));
    assert!(states.contains(&broker::core::EscrowState::Open));
    w
}

#[test]
fn reopen_and_replay_give_identical_state_and_tables() {
    for suite in Suite::ALL {
        let mut w = busy_world(suite);
        let state = w.state().clone();
        let live = w
            .node()
            .log()
            .dump_projection(&LiveProjection::new(&mut State::new(suite)))
            .unwrap();
        assert_eq!(
            live,
            store::render(&state).unwrap(),
            "tables mirror the state"
        );
        assert!(!live["broker_live_scrip"].is_empty());
        for table in [
            "broker_replies",
            "broker_exchanges",
            "broker_purchases",
            "broker_withdrawals",
            "broker_escrows",
            "broker_memos",
        ] {
            assert!(!live[table].is_empty(), "{table}");
        }

        // Replay into a fresh file: the same tables, the same state.
        assert_eq!(w.state(), &state);
        w.assert_replay_matches(&live);

        // Reopen: the same state, the same tables, and it goes on working.
        let len = w.log_len();
        w.reopen();
        assert_eq!(w.state(), &state);
        assert_eq!(w.log_len(), len);
        let again = w
            .node()
            .log()
            .dump_projection(&LiveProjection::new(&mut State::new(suite)))
            .unwrap();
        assert_eq!(again, live);
        let e = w.client(4, "C-1");
        w.onboard(&e, 50);
    }
}

#[test]
fn a_repeat_after_reopen_gets_the_stored_bytes_and_appends_nothing() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    w.onboard(&c, 100);
    let tx = TxId::random();
    let nonce = Nonce::random();
    let first = w.send(&c.obtain(tx, 60, nonce), NOW);
    let len = w.log_len();
    for _ in 0..2 {
        w.reopen();
        // Re-signed and re-sealed, the same content: the same digest, the stored bytes.
        assert_eq!(
            w.send(&c.obtain(tx, 60, nonce), NOW.saturating_add_secs(5)),
            first
        );
        assert_eq!(w.log_len(), len);
    }
    // The outbox has the reply for the customer, once.
    assert_eq!(
        w.state().outbox.frames(&tx, &c.uid()),
        std::slice::from_ref(&first)
    );
}

#[test]
fn a_file_whose_tables_disagree_with_its_log_is_refused() {
    let mut w = World::new(Suite::Paper);
    let c = w.client(0, "A-1");
    w.onboard(&c, 100);
    w.node.take().unwrap().close().unwrap();
    {
        let db = redb::Database::open(w.path()).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(store::ACCOUNTS).unwrap();
            let key = postcard::to_allocvec(&shared::events::Account::Bank(c.pan.clone())).unwrap();
            let forged = postcard::to_allocvec(&1_000_000i128).unwrap();
            t.insert(key.as_slice(), forged.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let keys = fixtures::keypair(Suite::Paper, BROKER_KEY).clone();
    let opened = BrokerNode::open(w.path(), keys, fixtures::root_key(1), w.config);
    assert!(
        matches!(opened, Err(NodeError::Inconsistent(_))),
        "{opened:?}"
    );
}

/// The tables of a transaction's rows, keyed by the seq of its first event (layout 2).
const TX_TABLES: [redb::TableDefinition<'static, &'static [u8], &'static [u8]>; 7] = [
    store::EXCHANGES,
    store::PURCHASES,
    store::WITHDRAWALS,
    store::ESCROWS,
    store::REPLIES,
    store::OUTBOX,
    store::BINDINGS,
];

#[test]
fn a_transactions_rows_are_keyed_by_its_first_event_in_log_order() {
    let mut w = busy_world(Suite::Paper);
    let state = w.state().clone();
    let rows = w
        .node()
        .log()
        .dump_projection(&LiveProjection::new(&mut State::new(Suite::Paper)))
        .unwrap();
    let bindings = &rows["broker_bindings"];
    assert_eq!(bindings.len(), state.bindings.iter().count());
    for (key, _) in bindings {
        let (seq, tx) = key.split_first_chunk::<8>().unwrap();
        let tx: TxId = postcard::from_bytes(tx).unwrap();
        assert_eq!(u64::from_be_bytes(*seq), state.first_seq[&tx]);
    }
    // redb's order is the log's: the seqs never go down.
    let seqs: Vec<&[u8]> = bindings.iter().map(|(k, _)| &k[..8]).collect();
    assert!(seqs.windows(2).all(|p| p[0] <= p[1]));
}

#[test]
fn a_file_of_the_earlier_layout_has_its_tables_rebuilt_at_open() {
    let mut w = busy_world(Suite::Paper);
    let state = w.state().clone();
    let tables = |w: &mut World| {
        w.node()
            .log()
            .dump_projection(&LiveProjection::new(&mut State::new(Suite::Paper)))
            .unwrap()
    };
    let live = tables(&mut w);
    w.node.take().unwrap().close().unwrap();
    // Layout 1: the same rows keyed by the state's key alone, and no record of a layout.
    {
        let db = redb::Database::open(w.path()).unwrap();
        let txn = db.begin_write().unwrap();
        {
            use redb::ReadableTable as _;
            for def in TX_TABLES {
                let mut t = txn.open_table(def).unwrap();
                let rows: Vec<(Vec<u8>, Vec<u8>)> = t
                    .iter()
                    .unwrap()
                    .map(|r| {
                        let (k, v) = r.unwrap();
                        (k.value()[8..].to_vec(), v.value().to_vec())
                    })
                    .collect();
                t.retain(|_, _| false).unwrap();
                for (k, v) in rows {
                    t.insert(k.as_slice(), v.as_slice()).unwrap();
                }
            }
        }
        assert!(txn.delete_table(store::LAYOUT).unwrap());
        txn.commit().unwrap();
    }
    w.reopen();
    assert_eq!(w.state(), &state, "the same state");
    assert_eq!(
        tables(&mut w),
        live,
        "the tables rebuilt in the current layout"
    );
    let layout = store::read_layout(&w.node().log().begin_read().unwrap()).unwrap();
    assert_eq!(layout, store::PROJECTION_LAYOUT);
    // And it goes on working.
    let e = w.client(4, "C-1");
    w.onboard(&e, 50);
}

#[test]
fn a_secret_record_that_does_not_match_its_commitment_is_refused() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    w.onboard(&c, 100);
    w.node.take().unwrap().close().unwrap();
    {
        let db = redb::Database::open(w.path()).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(store::ACCOUNT_IDS).unwrap();
            let key = postcard::to_allocvec(&c.pan).unwrap();
            t.insert(key.as_slice(), [0u8; 32].as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let keys = fixtures::keypair(Suite::Modern, BROKER_KEY).clone();
    let opened = BrokerNode::open(w.path(), keys, fixtures::root_key(1), w.config);
    assert!(
        matches!(opened, Err(NodeError::Inconsistent(_))),
        "{opened:?}"
    );
}

/// The ledger is checked before every commit, release builds included (section 5): an
/// event whose postings balance but take an account below zero is refused by the
/// projection before a row is written, the log is as it was, and the node opens on it
/// with the account untouched.
#[test]
fn an_event_that_breaks_the_ledger_is_refused_before_it_is_written() {
    use broker::core::{Kind, bank};
    use shared::events::{Account, EventLog, LogError, Posting, ProjectionError};
    use shared::node::Recorded;

    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    w.onboard(&c, 100);
    w.node.take().unwrap().close().unwrap();
    let log = EventLog::<Recorded<Kind>>::open_existing(w.path()).unwrap();
    let mut state = State::new(Suite::Modern);
    for event in log.iter().unwrap() {
        state.try_apply(&event.unwrap()).unwrap();
    }
    let before = (log.len().unwrap(), state.clone());
    // A deposit turned round: 10.00 out of an account that holds 1.00.
    let mut bad = bank::deposit(
        &state,
        &c.pan,
        Amount::from_minor(1_000),
        TxId::random(),
        NOW,
    )
    .unwrap();
    bad.postings = vec![
        Posting::decrease(Account::Bank(c.pan.clone()), Amount::from_minor(1_000)),
        Posting::increase(Account::External, Amount::from_minor(1_000)),
    ];
    let refused = log
        .append(
            Recorded::attach(vec![bad], Vec::new()),
            &LiveProjection::new(&mut state),
        )
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            LogError::Projection { source: ProjectionError::Invariant(why), .. }
                if why.contains("is negative")
        ),
        "{refused:?}"
    );
    assert_eq!(log.len().unwrap(), before.0, "nothing was written");
    log.close().unwrap();
    let keys = fixtures::keypair(Suite::Modern, BROKER_KEY).clone();
    let node = BrokerNode::open(w.path(), keys, fixtures::root_key(1), w.config).unwrap();
    assert_eq!(node.state(), &before.1);
    assert_eq!(node.state().bank_balance(&c.pan), Amount::from_minor(100));
}

/// An event that moves a three-party transaction out of order (here a second decision of
/// an exchange, 6.2 step 4) is never written: the broker's projection refuses it with
/// nothing appended. A file whose log holds one anyway (written without the projection) is
/// refused at open, naming the event, instead of serving a state the log does not justify.
#[test]
fn a_log_that_moves_an_exchange_out_of_order_is_refused() {
    use broker::core::Kind;
    use shared::events::{EventLog, NewEvent};
    use shared::fixtures::NoTables;
    use shared::node::Recorded;

    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    let m = w.client(2, "M-1");
    w.onboard(&c, 1000);
    w.onboard(&m, 0);
    let reply = w.send(&c.obtain(TxId::random(), 500, Nonce::random()), NOW);
    let (_, b0) =
        c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
    let tx = TxId::random();
    w.send(&c.notice(tx, m.uid()), NOW);
    let step2 = c.vendor_scrip_request(tx, m.key.public(), &b0, 200, 200);
    w.send_all(&m.exchange_authorization(&step2, c.uid(), 200), NOW);
    w.node.take().unwrap().close().unwrap();

    let log = EventLog::<Recorded<Kind>>::open_existing(w.path()).unwrap();
    let authorized = log
        .iter()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| matches!(e.kind.kind, Kind::ExchangeAuthorized { .. }))
        .unwrap();
    let again = || NewEvent {
        time: authorized.time,
        tx: authorized.tx,
        postings: authorized.postings.clone(),
        memos: authorized.memos.clone(),
        evidence: authorized.evidence.clone(),
        kind: Recorded {
            kind: authorized.kind.kind.clone(),
            sent: Vec::new(),
        },
    };
    let before = log.len().unwrap();
    let mut state = broker::core::State::new(Suite::Modern);
    for e in log.iter().unwrap() {
        state.try_apply(&e.unwrap()).unwrap();
    }
    let refused = log.append(vec![again()], &LiveProjection::new(&mut state));
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("cannot follow Authorized")),
        "{refused:?}"
    );
    assert_eq!(log.len().unwrap(), before, "nothing appended");

    log.append(vec![again()], &NoTables).unwrap();
    drop(log);
    let keys = fixtures::keypair(Suite::Modern, BROKER_KEY).clone();
    let opened = BrokerNode::open(w.path(), keys, fixtures::root_key(1), w.config);
    let Err(NodeError::Inconsistent(text)) = &opened else {
        panic!("{opened:?}")
    };
    assert!(
        text.contains(&format!("event {} of tx {tx}", before + 1))
            && text.contains("ExchangeAuthorized cannot follow Authorized"),
        "{text}"
    );
}

/// A second open of the same file while the broker serves is refused (section 1: one
/// serving broker).
#[test]
fn only_one_broker_opens_the_file() {
    let w = World::new(Suite::Modern);
    let keys = fixtures::keypair(Suite::Modern, BROKER_KEY).clone();
    let second = BrokerNode::open(w.path(), keys, fixtures::root_key(1), w.config);
    assert!(
        matches!(
            second,
            Err(NodeError::Log(shared::events::LogError::Locked { .. }))
        ),
        "{second:?}"
    );
}

/// A broker dropped and reopened between the messages of 6.2, 6.3 and 6.7 continues from
/// its log: the open exchange is still open, the opened purchase still matches.
#[test]
fn reopened_between_the_messages_of_multi_party_transactions() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    let m = w.client(2, "M-1");
    w.onboard(&c, 1000);
    w.onboard(&m, 0);
    let reply = w.send(&c.obtain(TxId::random(), 500, Nonce::random()), NOW);
    let (_, b0) =
        c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
    // 6.2: notice, restart, authorization.
    let tx = TxId::random();
    let notice_reply = w.send(&c.notice(tx, m.uid()), NOW);
    w.reopen();
    assert_eq!(w.send(&c.notice(tx, m.uid()), NOW), notice_reply);
    let step2 = c.vendor_scrip_request(tx, m.key.public(), &b0, 200, 200);
    let request = m.exchange_authorization(&step2, c.uid(), 200);
    let handled = w.send_all(&request, NOW.saturating_add_secs(1));
    assert_eq!(handled.deliveries.len(), 1);
    w.reopen();
    // M did not get the decision: it repeats after the restart and gets the same bytes.
    assert_eq!(
        w.send_all(&request, NOW.saturating_add_secs(2)).reply,
        handled.reply
    );
    // 6.3: initiated, restart, completed.
    let tx = TxId::random();
    w.send(&c.purchase_initiated(tx, m.uid(), 80), NOW);
    w.reopen();
    w.send(&m.purchase_completed(tx, c.uid(), 80), NOW);
    assert!(w.state().purchases[&tx].recorded);
    assert_eq!(w.state().memo(&m.uid()), 120);
    // An exchange left open across a restart is closed by the timer after it.
    let tx = TxId::random();
    w.send(&c.notice(tx, m.uid()), NOW);
    w.reopen();
    assert_eq!(
        w.node()
            .expire(NOW.saturating_add_secs(601))
            .unwrap()
            .events,
        1
    );
    assert_eq!(
        w.state().exchanges[&tx].state,
        broker::core::ExchangeState::Expired
    );
}

/// A broker dropped and reopened between any two messages of 6.5 continues from its log:
/// C's repeated request gets the stored Ack, the authorization to re-send is the stored
/// one, M's answer is decided against the escrow as it was, and its repeat gets the stored
/// decision; an escrow left open across a restart is released by the timer after it.
#[test]
fn reopened_between_the_messages_of_a_vendor_top_up() {
    for suite in Suite::ALL {
        let mut w = World::new(suite);
        let c = w.client(0, "A-1");
        let m = w.client(2, "M-1");
        w.onboard(&c, 1000);
        w.onboard(&m, 0);
        let reply = w.send(&c.obtain(TxId::random(), 500, Nonce::random()), NOW);
        let (_, b0) =
            c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
        let v0 = m.issue_vendor_scrip(40);
        let accept = VendorTopUpAcceptedX3::Accept {
            customer: c.uid(),
            top_up: Amount::from_minor(100),
            new_value: Amount::from_minor(140),
            scrip_id: v0.scrip.id(),
        };

        // Step 1 → 2, restart, C repeats (its reply was lost): the stored Ack.
        let tx = TxId::random();
        let step1 = c.vendor_top_up_request(tx, m.key.public(), &b0, &v0, 100);
        let first = w.send_all(&step1, NOW);
        let deadline = c
            .open_clear::<AckBody>(first.reply_frame())
            .deadline
            .unwrap();
        w.reopen();
        let len = w.log_len();
        let again = w.node().handle(&step1, NOW.saturating_add_secs(1)).unwrap();
        assert_eq!(again.reply, first.reply);
        assert!(again.deliveries.is_empty(), "a repeat sends nothing new");
        assert_eq!(w.log_len(), len);
        // Restart; step 2 was lost: the broker re-sends the stored authorization.
        w.reopen();
        let resend = w.node().to_resend(NOW.saturating_add_secs(2));
        assert_eq!(resend.len(), 1);
        assert_eq!(
            (resend[0].to, &resend[0].frame),
            (m.uid(), &first.deliveries[0].frame)
        );
        let (x2, _, _) = m.open_authorization(&resend[0].frame, c.key.public());
        assert_eq!(x2.deadline, deadline);

        // Restart, step 3 → 4 and 6; restart; M repeats: the stored decision.
        w.reopen();
        let step3 = m.vendor_top_up_accepted(tx, &accept);
        let decided = w.send_all(&step3, NOW.saturating_add_secs(3));
        assert!(
            m.open_sealed::<VendorTopUpDecisionBody>(decided.reply_frame())
                .decision
                .is_ok()
        );
        w.reopen();
        let len = w.log_len();
        assert_eq!(
            w.send_all(&step3, NOW.saturating_add_secs(4)).reply,
            decided.reply
        );
        assert_eq!(w.log_len(), len);
        assert!(w.node().to_resend(NOW.saturating_add_secs(4)).is_empty());
        // C lost its change: TransactionStatus after the restart returns it.
        let status = w.send(&c.transaction_status(tx), NOW.saturating_add_secs(5));
        assert_eq!(
            c.open_clear::<TransactionStatusResponseBody>(&status)
                .status,
            TxStatus::Frames {
                frames: vec![
                    first.reply_frame().to_vec(),
                    decided.deliveries[0].frame.clone()
                ],
                omitted: 0
            }
        );
        assert_eq!(w.state().memo(&m.uid()), 100);
        wire_client::assert_conserved(w.state());

        // An escrow left open across a restart is released by the timer after it, and a
        // late answer after another restart gets the stored NOK.
        let (_, b1) = c.open_scrip::<ChangeBrokerScripX5>(&decided.deliveries[0].frame, |b| {
            let change = b.change.clone().unwrap();
            (change.scrip, change.cs_hash)
        });
        let tx = TxId::random();
        let first = w.send_all(
            &c.vendor_top_up_request(tx, m.key.public(), &b1, &v0, 100),
            NOW,
        );
        let deadline = c
            .open_clear::<AckBody>(first.reply_frame())
            .deadline
            .unwrap();
        w.reopen();
        assert_eq!(
            w.node().expire(UnixSecs::new(deadline + 1)).unwrap().events,
            1
        );
        w.reopen();
        let late = w.send_all(
            &m.vendor_top_up_accepted(tx, &accept),
            UnixSecs::new(deadline + 2),
        );
        let decision = m
            .open_sealed::<VendorTopUpDecisionBody>(late.reply_frame())
            .decision;
        let Decision::Nok(reason) = decision else {
            panic!("expected NOK")
        };
        assert_eq!(reason.error_code(), Some(shared::ErrorCode::DeadlinePassed));
        assert_eq!(
            w.state().live.get(&b1.scrip.id()).unwrap().state,
            shared::node::ScripState::Live
        );
        assert_eq!(w.state().memo(&m.uid()), 100);
        wire_client::assert_conserved(w.state());
    }
}
