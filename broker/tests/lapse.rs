//! Lapse (protocol.md section 4): value goes back to the owner's bank account, never lost.
#![allow(clippy::unwrap_used)]

mod wire_client;

use shared::UnixSecs;
use shared::events::Account;
use shared::ids::{Nonce, ScripId, TxId};
use shared::wire::bodies::{AckBody, BrokerScripResponseX1, ErrorBody};
use shared::{ErrorCode, Suite, fixtures};
use wire_client::{NOW, World, error_code};

const DAY: u64 = 24 * 3600;

#[test]
fn a_broker_scrip_lapses_after_its_grace_period() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    w.onboard(&c, 1000);
    let reply = w.send(&c.obtain(TxId::random(), 400, Nonce::random()), NOW);
    let (_, b0) =
        c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
    let grace_end = b0.scrip.body.expires + 365 * DAY;
    assert_eq!(
        w.node().expire(UnixSecs::new(grace_end)).unwrap().events,
        0,
        "renewable to the last second"
    );
    let len = w.log_len();
    assert_eq!(
        w.node()
            .expire(UnixSecs::new(grace_end + 1))
            .unwrap()
            .events,
        1
    );
    assert_eq!(w.log_len(), len + 1);
    assert!(w.state().live.is_empty());
    assert_eq!(w.state().balance(&Account::Bank(c.pan.clone())), 1000);
    assert_eq!(w.state().balance(&Account::FloatBroker), 0);
    wire_client::assert_conserved(w.state());
    assert_eq!(
        w.node()
            .expire(UnixSecs::new(grace_end + 2))
            .unwrap()
            .events,
        0,
        "lapses once"
    );
    // Lapsed scrip is not live: it does not block a new 6.1, and it never validates again;
    // its owner presenting it is told where the value went (docs/adr/0011).
    w.assert_refused(&c.withdraw(TxId::random(), &b0), NOW, ErrorCode::Lapsed);
    let refused = w.send(&c.withdraw(TxId::random(), &b0), NOW);
    let body = c.open_clear::<ErrorBody>(&refused);
    assert!(
        body.message.contains(
            "lapsed after its renewal grace period; its value went back to your bank account"
        ),
        "{}",
        body.message
    );
    let reply = w.send(
        &c.obtain(TxId::random(), 100, Nonce::random()),
        UnixSecs::new(grace_end + 3),
    );
    assert_eq!(error_code(&w.broker_key(), &reply), None);
    // Replay agrees.
    let state = w.state().clone();
    w.reopen();
    assert_eq!(w.state(), &state);
}

#[test]
fn a_merchant_reports_a_lapsed_vendor_scrip() {
    let mut w = World::new(Suite::Paper);
    let c = w.client(0, "A-1");
    let m = w.client(2, "M-1");
    w.onboard(&c, 0);
    w.onboard(&m, 500);
    let scrip = ScripId([7; 16]);
    let tx = TxId::random();
    let notice = m.scrip_lapsed_notice(tx, scrip, c.uid(), 200);
    let len = w.log_len();
    let ack = w.send(&notice, NOW);
    assert_eq!(
        m.open_clear::<AckBody>(&ack).re.label,
        shared::wire::Label::ScripLapsedNotice
    );
    assert_eq!(w.state().balance(&Account::Bank(m.pan.clone())), 300);
    assert_eq!(w.state().balance(&Account::Bank(c.pan.clone())), 200);
    // The memo had nothing sold through the broker: it goes below zero, with an alarm.
    assert_eq!(w.state().memo(&m.uid()), -200);
    assert_eq!(w.log_len(), len + 2);
    // Repeat: the same Ack. The same scrip under another tx: already lapsed.
    assert_eq!(w.send(&notice, NOW), ack);
    w.assert_refused(
        &m.scrip_lapsed_notice(TxId::random(), scrip, c.uid(), 200),
        NOW,
        ErrorCode::Spent,
    );
    w.assert_refused(
        &m.scrip_lapsed_notice(TxId::random(), ScripId([8; 16]), c.uid(), 301),
        NOW,
        ErrorCode::MerchantBalanceTooLow,
    );
    w.assert_refused(
        &m.scrip_lapsed_notice(TxId::random(), ScripId([10; 16]), c.uid(), 0),
        NOW,
        ErrorCode::AmountOutOfRange,
    );
    let nobody = fixtures::keypair(Suite::Paper, 5).uid();
    w.assert_refused(
        &m.scrip_lapsed_notice(TxId::random(), ScripId([9; 16]), nobody, 10),
        NOW,
        ErrorCode::UnknownPeer,
    );
    let state = w.state().clone();
    w.reopen();
    assert_eq!(w.state(), &state);
}
