//! Sections 3 and 10 at the broker, in process: what a hostile peer's frames may cost it.
//! A frame that does not verify, and one over a quota, is answered with an unsigned
//! `Error` (no private-key operation) and changes nothing; each peer's request rate and its
//! open transactions of each kind are bounded; the senders the broker does not know share
//! one budget. The attacks through the daemons, with the honest peer measured beside them,
//! are in `tests/tests/abuse.rs`.
#![allow(clippy::unwrap_used)]

mod wire_client;

use shared::ids::{Nonce, TxId};
use shared::node::{PURCHASE_WINDOW_SECS, Quotas, TOO_MANY_REQUESTS_MESSAGE, unsigned_error_in};
use shared::wire::bodies::ErrorBody;
use shared::wire::{Frame, Label};
use shared::{ErrorCode, Suite};
use wire_client::{NOW, Parties, World, error_code};

/// The unsigned `Error` `reply` must be, from the broker to `request` (its `re` names the
/// request's sender and label); a signature on it fails the test.
fn unsigned(w: &World, request: &[u8], reply: &[u8]) -> ErrorBody {
    let request = Frame::header_of(request).unwrap();
    let frame = Frame::decode(reply).unwrap();
    let body = unsigned_error_in(&frame, w.broker_key().uid(), request.tx)
        .unwrap_or_else(|| panic!("not an unsigned Error: {:?}", frame.header.label));
    assert!(
        frame
            .part(0)
            .unwrap()
            .verify_signed::<ErrorBody>(&w.broker_key())
            .is_err()
    );
    assert_eq!(
        (body.re.sender, body.re.label),
        (request.sender, request.label)
    );
    body
}

/// A world whose broker has `quotas`.
fn world_with(quotas: Quotas) -> World {
    let mut w = World::new(Suite::Modern);
    w.config.quotas = quotas;
    w.reopen();
    w
}

#[test]
fn frames_that_do_not_verify_get_an_unsigned_error_and_change_nothing() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "C-1");
    w.onboard(&c, 1_000);
    let before = w.state().clone();
    let len = w.log_len();

    // A sealed request with one bit of its ciphertext flipped: it does not open.
    let mut flipped = c.obtain(TxId::random(), 100, Nonce::random());
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let reply = w.send(&flipped, NOW);
    let body = unsigned(&w, &flipped, &reply);
    assert_eq!(body.error_code(), Some(ErrorCode::BadFrame));
    assert!(
        body.re.digest.is_empty(),
        "no digest of a request not verified"
    );

    // A sender that is not registered.
    let stranger = w.client(3, "X-1");
    let request = stranger.obtain(TxId::random(), 100, Nonce::random());
    let reply = w.send(&request, NOW);
    assert_eq!(
        unsigned(&w, &request, &reply).error_code(),
        Some(ErrorCode::UnknownPeer)
    );

    assert_eq!(w.state(), &before);
    assert_eq!(w.log_len(), len);
    // A verified request's refusal stays signed (section 3).
    let reply = w.send(&c.obtain(TxId::random(), 5_000, Nonce::random()), NOW);
    assert_eq!(
        error_code(&w.broker_key(), &reply),
        Some(ErrorCode::InsufficientFunds)
    );
    assert!(
        unsigned_error_in(&Frame::decode(&reply).unwrap(), w.broker_key().uid(), {
            Frame::decode(&reply).unwrap().header.tx
        })
        .is_none()
    );
}

#[test]
fn a_sender_over_its_rate_is_refused_from_the_header_and_recovers_a_second_later() {
    let mut w = world_with(Quotas {
        requests_per_sec: 2,
        burst: 3,
        ..Quotas::default()
    });
    let (c, d) = (w.client(0, "C-1"), w.client(2, "D-1"));
    // Onboarding spends one request each, in an earlier second.
    let earlier = NOW.saturating_sub_secs(10);
    w.node().open_account(&c.pan, &c.secret, earlier).unwrap();
    w.node().open_account(&d.pan, &d.secret, earlier).unwrap();
    w.node()
        .handle(&c.registration(TxId::random()), earlier)
        .unwrap();
    w.node()
        .handle(&d.registration(TxId::random()), earlier)
        .unwrap();
    let len = w.log_len();

    let status = |n: u8| c.transaction_status(TxId([n; 16]));
    for n in 0..3 {
        let reply = w.send(&status(n), NOW);
        assert_ne!(
            error_code(&w.broker_key(), &reply),
            Some(ErrorCode::TooManyRequests)
        );
    }
    let over = status(3);
    let reply = w.send(&over, NOW);
    let body = unsigned(&w, &over, &reply);
    assert_eq!(body.error_code(), Some(ErrorCode::TooManyRequests));
    assert_eq!(body.message, TOO_MANY_REQUESTS_MESSAGE);
    // Another peer has its own rate.
    let reply = w.send(&d.transaction_status(TxId([9; 16])), NOW);
    assert_ne!(
        error_code(&w.broker_key(), &reply),
        Some(ErrorCode::TooManyRequests)
    );
    // A second later, two more.
    let next = NOW.saturating_add_secs(1);
    for n in 4..6 {
        let reply = w.send(&status(n), next);
        assert_ne!(
            error_code(&w.broker_key(), &reply),
            Some(ErrorCode::TooManyRequests)
        );
    }
    let reply = w.send(&status(6), next);
    assert_eq!(
        error_code(&w.broker_key(), &reply),
        Some(ErrorCode::TooManyRequests)
    );
    assert_eq!(
        w.log_len(),
        len,
        "status queries and quota refusals record nothing"
    );
}

#[test]
fn senders_the_broker_does_not_know_share_one_budget() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "C-1");
    w.onboard(&c, 1_000);
    w.config.quotas.strangers_per_sec = 1;
    w.config.quotas.strangers_burst = 2;
    w.reopen();
    let len = w.log_len();
    // Registrations for accounts that do not exist, each from a new key.
    let junk: Vec<Vec<u8>> = (2..5)
        .map(|i| {
            w.client(i, &format!("NONE-{i}"))
                .registration(TxId::random())
        })
        .collect();
    for frame in &junk[..2] {
        let reply = w.send(frame, NOW);
        assert_eq!(
            error_code(&w.broker_key(), &reply),
            Some(ErrorCode::RegistrationRefused)
        );
    }
    let reply = w.send(&junk[2], NOW);
    assert_eq!(
        unsigned(&w, &junk[2], &reply).error_code(),
        Some(ErrorCode::TooManyRequests)
    );
    // A registered peer is not a stranger: served meanwhile.
    let reply = w.send(&c.obtain(TxId::random(), 100, Nonce::random()), NOW);
    assert_eq!(error_code(&w.broker_key(), &reply), None);
    assert_eq!(w.log_len(), len + 1, "only the honest request was recorded");
}

#[test]
fn unmatched_announcements_and_reports_are_capped_per_peer() {
    let mut p = Parties::new(Suite::Modern, 500);
    p.w.config.quotas.open_purchases = 3;
    p.w.reopen();
    let len = p.w.log_len();
    let announce = |p: &Parties| {
        p.c.purchase_initiated(TxId::random(), p.m.uid(), 1_000_000_000)
    };
    for _ in 0..3 {
        let reply = p.w.send(&announce(&p), NOW);
        assert_eq!(Frame::decode(&reply).unwrap().header.label, Label::Ack);
    }
    let before = p.w.state().clone();
    let over = announce(&p);
    let reply = p.w.send(&over, NOW);
    assert_eq!(
        unsigned(&p.w, &over, &reply).error_code(),
        Some(ErrorCode::TooManyRequests)
    );
    assert_eq!(p.w.state(), &before, "nothing recorded");
    assert_eq!(p.w.log_len(), len + 3, "the log grew by the cap");
    // Another customer is not affected.
    let other = p.other_merchant();
    let reply = p.w.send(
        &other.purchase_initiated(TxId::random(), p.m.uid(), 10),
        NOW,
    );
    assert_eq!(Frame::decode(&reply).unwrap().header.label, Label::Ack);
    // Announcements older than the window no longer count: an honest customer whose
    // purchases a merchant refused is not shut out.
    let later = NOW.saturating_add_secs(PURCHASE_WINDOW_SECS + 1);
    let reply = p.w.send(&announce(&p), later);
    assert_eq!(Frame::decode(&reply).unwrap().header.label, Label::Ack);

    // Reports ahead of any announcement are held too: capped per merchant.
    let report = |p: &Parties| {
        p.m.purchase_completed(TxId::random(), p.c.uid(), 1_000_000_000)
    };
    for _ in 0..3 {
        let reply = p.w.send(&report(&p), later);
        assert_eq!(Frame::decode(&reply).unwrap().header.label, Label::Ack);
    }
    let len = p.w.log_len();
    let over = report(&p);
    let reply = p.w.send(&over, later);
    assert_eq!(
        unsigned(&p.w, &over, &reply).error_code(),
        Some(ErrorCode::TooManyRequests)
    );
    assert_eq!(p.w.log_len(), len);
}

#[test]
fn a_customers_open_exchanges_are_capped_until_one_closes() {
    let mut p = Parties::new(Suite::Modern, 500);
    p.w.config.quotas.open_exchanges = 2;
    p.w.reopen();
    let first = TxId::random();
    let reply = p.w.send(&p.c.notice(first, p.m.uid()), NOW);
    assert_eq!(error_code(&p.w.broker_key(), &reply), None);
    let reply = p.w.send(&p.c.notice(TxId::random(), p.m.uid()), NOW);
    assert_eq!(error_code(&p.w.broker_key(), &reply), None);
    let over = p.c.notice(TxId::random(), p.m.uid());
    let len = p.w.log_len();
    let reply = p.w.send(&over, NOW);
    assert_eq!(
        unsigned(&p.w, &over, &reply).error_code(),
        Some(ErrorCode::TooManyRequests)
    );
    assert_eq!(p.w.log_len(), len);
    // Refused from the header, before the frame is opened: one that would not even open
    // gets the same answer, and costs the broker no decryption.
    let mut broken = p.c.notice(TxId::random(), p.m.uid());
    let last = broken.len() - 1;
    broken[last] ^= 1;
    let reply = p.w.send(&broken, NOW);
    assert_eq!(
        unsigned(&p.w, &broken, &reply).error_code(),
        Some(ErrorCode::TooManyRequests)
    );
    // Past their deadline the broker closes them (`ExchangeExpired`): room again.
    let deadline = NOW.saturating_add_secs(p.w.config.exchange_window_secs + 1);
    p.w.node().expire(deadline).unwrap();
    let reply = p.w.send(&over, deadline);
    assert_eq!(error_code(&p.w.broker_key(), &reply), None);
}
