//! Section 4: a scrip is spent at most once. One BrokerScrip presented by many requests of
//! every kind that consumes it (withdrawals, top-ups, renewals, exchanges), in a shuffled
//! order: exactly one succeeds, every other is refused with `Spent` (as an `Error`, or as
//! the recorded NOK of an exchange), and the money adds up.
#![allow(clippy::unwrap_used)]

mod wire_client;

use shared::events::Account;
use shared::ids::{Nonce, TxId};
use shared::wire::Decision;
use shared::wire::bodies::{BrokerScripResponseX1, ExchangeAuthorizationResponseX5};
use shared::{ErrorCode, Suite};
use wire_client::{NOW, World, error_code};

#[test]
fn one_scrip_many_spends_exactly_one_succeeds() {
    let mut w = World::new(Suite::Paper);
    let c = w.client(0, "C-1");
    let m = w.client(2, "M-1");
    w.onboard(&c, 10_000);
    w.onboard(&m, 0);
    let reply = w.send(&c.obtain(TxId::random(), 1000, Nonce::random()), NOW);
    let (_, b0) =
        c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));

    // 120 requests, 30 of each kind, each in its own tx; exchanges announced first (fewer
    // than a customer's default cap of open exchanges, section 10).
    let mut requests: Vec<(&str, Vec<u8>)> = Vec::new();
    for i in 0..30u64 {
        requests.push(("withdraw", c.withdraw(TxId::random(), &b0)));
        requests.push((
            "top-up",
            c.top_up(TxId::random(), &b0, 1001 + i, Nonce::random()),
        ));
        requests.push(("renew", c.renew(TxId::random(), &b0)));
        let tx = TxId::random();
        w.send(&c.notice(tx, m.uid()), NOW);
        let step2 = c.vendor_scrip_request(tx, m.key.public(), &b0, 100, 100);
        requests.push(("exchange", m.exchange_authorization(&step2, c.uid(), 100)));
    }
    // A fixed shuffle (no clock, no randomness in the test's outcome).
    let n = requests.len();
    for i in 0..n {
        requests.swap(i, (i * 7919 + 13) % n);
    }

    let mut successes = Vec::new();
    for (kind, frame) in &requests {
        let handled = w.send_all(frame, NOW);
        let outcome = if *kind == "exchange" {
            match m
                .open_sealed::<ExchangeAuthorizationResponseX5>(handled.reply_frame())
                .decision
            {
                Decision::Ok => None,
                Decision::Nok(reason) => reason.error_code(),
            }
        } else {
            error_code(&w.broker_key(), handled.reply_frame())
        };
        match outcome {
            None => successes.push(*kind),
            Some(code) => assert_eq!(code, ErrorCode::Spent, "{kind}"),
        }
    }
    assert_eq!(successes.len(), 1, "{successes:?}");
    assert!(w.state().live.get(&b0.scrip.id()).is_none());
    wire_client::assert_conserved(w.state());
    // Whatever won, C's bank plus C's live scrip plus M's bank is what C started with.
    let live: i128 = w
        .state()
        .live
        .iter()
        .map(|(_, r)| i128::from(r.body.value.minor()))
        .sum();
    let bank_c = w.state().balance(&Account::Bank(c.pan.clone()));
    let bank_m = w.state().balance(&Account::Bank(m.pan.clone()));
    assert_eq!(bank_c + live + bank_m, 10_000, "winner: {successes:?}");
}
