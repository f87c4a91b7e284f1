//! `BrokerNode::handle_batch`, the group commit of the actor shell: frames of one batch are
//! opened against the state before it, decided in order against the state including the
//! earlier decisions of the batch, and committed once.
#![allow(clippy::unwrap_used)]

mod wire_client;

use broker::core::State;
use broker::store::{self, LiveProjection};
use shared::events::Account;
use shared::ids::{Nonce, TxId};
use shared::wire::bodies::BrokerScripResponseX1;
use shared::{ErrorCode, Suite};
use wire_client::{NOW, World, error_code};

/// Two spends of one scrip in one batch: the first wins, the second sees it and is refused
/// `Spent`; the same request twice in one batch is answered twice with the same bytes and
/// decided once; a frame that does not decode fails alone. One commit for the batch.
#[test]
fn decisions_in_one_batch_see_the_earlier_ones() {
    let mut w = World::new(Suite::Paper);
    let c = w.client(0, "C-1");
    w.onboard(&c, 10_000);
    let reply = w.send(&c.obtain(TxId::random(), 1_000, Nonce::random()), NOW);
    let (_, b0) =
        c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
    let len = w.log_len();

    let withdraw = c.withdraw(TxId::random(), &b0);
    let top_up = c.top_up(TxId::random(), &b0, 1_500, Nonce::random());
    let obtain_tx = TxId::random();
    let other = w.client(3, "C-2");
    let (a, b) = (
        other.obtain(obtain_tx, 10, Nonce::random()),
        other.obtain(obtain_tx, 10, Nonce::random()),
    );
    let garbage = vec![0xff_u8; 7];
    let frames: Vec<&[u8]> = vec![&withdraw, &top_up, &garbage, &a, &b];
    let results = w.node().handle_batch(&frames, NOW);
    assert_eq!(results.len(), 5);
    let key = w.broker_key();
    let replies: Vec<Option<Vec<u8>>> = results
        .into_iter()
        .map(|r| r.unwrap().reply.map(|r| r.frame))
        .collect();
    assert_eq!(error_code(&key, replies[0].as_ref().unwrap()), None);
    assert_eq!(
        error_code(&key, replies[1].as_ref().unwrap()),
        Some(ErrorCode::Spent)
    );
    assert!(replies[2].is_none(), "an undecodable frame is not answered");
    // C-2 is not registered: both copies are refused the same way, and nothing is stored.
    assert_eq!(
        error_code(&key, replies[3].as_ref().unwrap()),
        error_code(&key, replies[4].as_ref().unwrap())
    );
    // Exactly the withdrawal was appended (its events), in one commit.
    assert!(w.log_len() > len);
    assert!(w.state().live.get(&b0.scrip.id()).is_none());
    assert_eq!(w.state().balance(&Account::Bank(c.pan.clone())), 10_000);
    wire_client::assert_conserved(w.state());
}

/// A repeat inside one batch: the same request twice (same bodies, fresh signatures) gets
/// the stored reply of the first, byte for byte, and one decision.
#[test]
fn a_repeat_inside_a_batch_gets_the_first_reply() {
    let mut w = World::new(Suite::Paper);
    let c = w.client(0, "C-1");
    w.onboard(&c, 10_000);
    let tx = TxId::random();
    let nonce = Nonce::random();
    let first = c.obtain(tx, 700, nonce);
    let second = c.obtain(tx, 700, nonce);
    assert_ne!(first, second, "fresh signatures and seals");
    let len = w.log_len();
    let results = w.node().handle_batch(&[&first, &second], NOW);
    let replies: Vec<Vec<u8>> = results
        .into_iter()
        .map(|r| r.unwrap().reply_frame().to_vec())
        .collect();
    assert_eq!(error_code(&w.broker_key(), &replies[0]), None);
    assert_eq!(replies[0], replies[1]);
    assert_eq!(w.log_len(), len + 1, "decided once");
    assert_eq!(w.state().balance(&Account::Bank(c.pan.clone())), 9_300);
    wire_client::assert_conserved(w.state());
}

/// The projection rows a batch touches are written once, at its commit, as the state
/// stands after the whole batch: a purchase's two steps in one batch (its row, its binding
/// and the merchant's memo touched by both), one more purchase's first step, and a repeat.
/// The tables on disk then equal the state's rows, and a reopen (a replay of the log)
/// gives the same state and tables.
#[test]
fn rows_touched_twice_in_a_batch_hold_the_batchs_last_value() {
    let mut p = wire_client::Parties::new(Suite::Paper, 500);
    let wire_client::Parties { w, c, m, .. } = &mut p;
    let (one, two) = (TxId::random(), TxId::random());
    let initiated = c.purchase_initiated(one, m.uid(), 30);
    let completed = m.purchase_completed(one, c.uid(), 30);
    let again = c.purchase_initiated(one, m.uid(), 30);
    let other = c.purchase_initiated(two, m.uid(), 20);
    let len = w.log_len();
    let results = w
        .node()
        .handle_batch(&[&initiated, &completed, &again, &other], NOW);
    for result in results {
        let handled = result.unwrap();
        assert!(handled.refusal.is_none(), "{:?}", handled.refusal);
    }
    // Opened, recorded against the float (with its alarm: M has none), opened.
    assert!(w.log_len() > len + 2);
    let purchase = &w.state().purchases[&one];
    assert!(purchase.recorded);
    assert!(!w.state().purchases[&two].recorded);

    let tables = |w: &mut World| {
        w.node()
            .log()
            .dump_projection(&LiveProjection::new(&mut State::new(Suite::Paper)))
            .unwrap()
    };
    let on_disk = tables(w);
    assert_eq!(on_disk, store::render(w.state()).unwrap());
    let state = w.state().clone();
    w.reopen();
    assert_eq!(w.state(), &state, "replay gives the same state");
    assert_eq!(tables(w), on_disk, "and the same tables");
    wire_client::assert_conserved(w.state());
}
