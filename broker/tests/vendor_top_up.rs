//! 6.5 Top up VendorScrip, the broker's side, through `BrokerNode` with a real redb file:
//! the escrow (section 4, Held), M's accept or decline, the deadline, every refusal, and
//! the state after a reopen.
#![allow(clippy::unwrap_used)]

mod wire_client;

use broker::core::{EscrowState, Kind};
use shared::UnixSecs;
use shared::events::Account;
use shared::ids::{Nonce, TxId};
use shared::node::ScripState;
use shared::wire::bodies::{
    AckBody, ChangeBrokerScripX5, ExchangeAuthorizationResponseX5, VendorTopUpAcceptedX3,
    VendorTopUpDecisionBody, VendorTopUpRequestX0,
};
use shared::wire::{Decision, Label};
use shared::{Amount, ErrorCode, Suite};
use wire_client::{NOW, Parties, error_code};

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

fn accept(p: &Parties, top_up: u64, new_value: u64) -> VendorTopUpAcceptedX3 {
    VendorTopUpAcceptedX3::Accept {
        customer: p.c.uid(),
        top_up: amount(top_up),
        new_value: amount(new_value),
        scrip_id: p.v0.scrip.id(),
    }
}

fn decline(p: &Parties) -> VendorTopUpAcceptedX3 {
    VendorTopUpAcceptedX3::Decline {
        reason: "V0 is not ours".to_owned(),
        customer: p.c.uid(),
        top_up: amount(100),
    }
}

/// Step 1 of a top-up of `top_up`: the Ack's deadline and the delivery to M.
fn open_escrow(p: &mut Parties, tx: TxId, top_up: u64) -> (u64, Vec<u8>) {
    let request =
        p.c.vendor_top_up_request(tx, p.m.key.public(), &p.b0, &p.v0, top_up);
    let handled = p.w.send_all(&request, NOW);
    let ack = p.c.open_clear::<AckBody>(handled.reply_frame());
    assert_eq!(ack.re.label, Label::VendorTopUpRequest);
    let deadline = ack.deadline.unwrap();
    assert_eq!(handled.deliveries.len(), 1);
    assert_eq!(handled.deliveries[0].to, p.m.uid());
    (deadline, handled.deliveries[0].frame.clone())
}

/// The decision M gets, and C's `ChangeBrokerScrip` (both must be present).
fn nok_code(p: &Parties, handled: &broker::node::Handled) -> (ErrorCode, ErrorCode) {
    let decision =
        p.m.open_sealed::<VendorTopUpDecisionBody>(handled.reply_frame());
    let Decision::Nok(to_m) = decision.decision else {
        panic!("expected NOK")
    };
    assert_eq!(handled.deliveries.len(), 1);
    assert_eq!(handled.deliveries[0].to, p.c.uid());
    let x5 =
        p.c.open_sealed::<ChangeBrokerScripX5>(&handled.deliveries[0].frame);
    assert_eq!((&x5.change, &x5.undertaking), (&None, &None));
    let Decision::Nok(to_c) = x5.outcome else {
        panic!("expected NOK to C")
    };
    assert_eq!(to_c, to_m, "C and M are told the same decision");
    (to_m.error_code().unwrap(), to_c.error_code().unwrap())
}

fn held_state(p: &Parties) -> ScripState {
    p.w.state().live.get(&p.b0.scrip.id()).unwrap().state
}

#[test]
fn a_top_up_settles_with_change_in_both_suites() {
    for suite in Suite::ALL {
        let mut p = Parties::new(suite, 500);
        let tx = TxId::random();
        let before = p.w.state().accounts.clone();
        let (deadline, authorization) = open_escrow(&mut p, tx, 100);
        assert_eq!(deadline, NOW.saturating_add_secs(600).get());

        // Step 2: B0 held, nothing moved; M reads X2 and C's part, forwarded unchanged.
        assert_eq!(
            held_state(&p),
            ScripState::Held {
                tx,
                until: deadline
            }
        );
        assert_eq!(p.w.state().accounts, before);
        assert_eq!(p.w.state().escrows[&tx].state, EscrowState::Open);
        let (x2, x1, v0) = p.m.open_authorization(&authorization, p.c.key.public());
        assert_eq!(
            (x2.new_value, x2.top_up, x2.customer, x2.deadline),
            (amount(140), amount(100), p.c.uid(), deadline)
        );
        assert_eq!(x1.new_value, amount(140));
        assert_eq!(v0.scrip, p.v0.scrip);
        assert_eq!(v0.cs, p.v0.cs);
        // The broker may re-send step 2 while the deadline has not passed: the same bytes.
        assert_eq!(p.w.node().to_resend(UnixSecs::new(deadline)).len(), 1);
        assert_eq!(
            p.w.node().to_resend(UnixSecs::new(deadline))[0].frame,
            authorization
        );
        assert_eq!(
            p.w.node().to_resend(UnixSecs::new(deadline))[0].to,
            p.m.uid()
        );
        assert!(p.w.node().to_resend(UnixSecs::new(deadline + 1)).is_empty());

        // Step 3 → 4: M accepts; B0 spent, change B1 of 400, M paid 100.
        let step3 = p.m.vendor_top_up_accepted(tx, &accept(&p, 100, 140));
        let handled = p.w.send_all(&step3, NOW.saturating_add_secs(10));
        let decision =
            p.m.open_sealed::<VendorTopUpDecisionBody>(handled.reply_frame());
        assert_eq!(decision.decision, Decision::Ok);
        assert_eq!(
            (decision.re.sender, decision.re.label),
            (p.m.uid(), Label::VendorTopUpAccepted)
        );
        // Step 6: C's change and M's signed undertaking.
        let (x5, b1, undertaking) = p.change::<VendorTopUpAcceptedX3>(&handled, tx);
        assert_eq!(x5.outcome, Decision::Ok);
        assert_eq!(b1.scrip.value(), amount(400));
        assert_eq!(undertaking, accept(&p, 100, 140));

        let s = p.w.state();
        assert_eq!(s.balance(&Account::FloatBroker), 400);
        assert_eq!(p.bank(&p.m), 100);
        assert_eq!(p.bank(&p.c), 500);
        assert_eq!(s.memo(&p.m.uid()), 100);
        assert!(s.live.get(&p.b0.scrip.id()).is_none());
        assert_eq!(s.live.get(&b1.scrip.id()).unwrap().owner, p.c.uid());
        assert_eq!(s.escrows[&tx].state, EscrowState::Settled);
        assert!(
            p.w.node().to_resend(NOW).is_empty(),
            "settled: nothing to re-send"
        );

        // Repeats of step 1 and step 3: the stored bytes, nothing appended.
        let len = p.w.log_len();
        assert_eq!(
            p.w.send_all(&step3, NOW.saturating_add_secs(20)).reply,
            handled.reply
        );
        let again = p.w.send_all(
            &p.c.vendor_top_up_request(tx, p.m.key.public(), &p.b0, &p.v0, 100),
            NOW.saturating_add_secs(20),
        );
        assert_eq!(
            p.c.open_clear::<AckBody>(again.reply_frame()).deadline,
            Some(deadline)
        );
        assert_eq!(p.w.log_len(), len);

        // Section 7: each party's frames, in order.
        assert_eq!(
            p.w.state().outbox.frames(&tx, &p.m.uid()),
            [authorization.clone(), handled.reply_frame().to_vec()]
        );
        let to_c = p.w.state().outbox.frames(&tx, &p.c.uid()).to_vec();
        assert_eq!(to_c.len(), 2);
        assert_eq!(to_c[1], handled.deliveries[0].frame);
        p.assert_status(tx, NOW, to_c);

        // The change works: C withdraws it.
        let reply = p.w.send(&p.c.withdraw(TxId::random(), &b1), NOW);
        assert_eq!(error_code(&p.w.broker_key(), &reply), None);
        assert_eq!(p.bank(&p.c), 900);
        wire_client::assert_conserved(p.w.state());
    }
}

#[test]
fn a_top_up_of_the_whole_scrip_has_no_change() {
    let mut p = Parties::new(Suite::Paper, 300);
    let tx = TxId::random();
    open_escrow(&mut p, tx, 300);
    let handled =
        p.w.send_all(&p.m.vendor_top_up_accepted(tx, &accept(&p, 300, 340)), NOW);
    let x5 =
        p.c.open_sealed::<ChangeBrokerScripX5>(&handled.deliveries[0].frame);
    assert_eq!((x5.outcome, x5.change), (Decision::Ok, None));
    assert!(x5.undertaking.is_some());
    assert!(p.w.state().live.is_empty());
    assert_eq!(p.w.state().balance(&Account::FloatBroker), 0);
    assert_eq!(p.bank(&p.m), 300);
}

/// 6.5 step 3: a decline releases the escrow in the same commit; M gets NOK(Declined), C a
/// NOK `ChangeBrokerScrip`; nothing moved and B0 is usable again.
#[test]
fn a_decline_releases_the_escrow_and_tells_both() {
    let mut p = Parties::new(Suite::Modern, 500);
    let tx = TxId::random();
    let before = p.w.state().accounts.clone();
    open_escrow(&mut p, tx, 100);
    let len = p.w.log_len();
    let step3 = p.m.vendor_top_up_accepted(tx, &decline(&p));
    let handled = p.w.send_all(&step3, NOW.saturating_add_secs(5));
    assert_eq!(
        nok_code(&p, &handled),
        (ErrorCode::Declined, ErrorCode::Declined)
    );
    assert_eq!(p.w.log_len(), len + 1, "EscrowReleased, one event");
    let last = p.w.node().log().read(len + 1).unwrap().unwrap();
    assert!(matches!(last.kind.kind, Kind::EscrowReleased { .. }));
    assert_eq!(p.w.state().accounts, before, "no money moved");
    assert_eq!(held_state(&p), ScripState::Live);
    assert!(matches!(
        p.w.state().escrows[&tx].state,
        EscrowState::Released(_)
    ));
    // A repeat: the same decision bytes; the timer finds nothing to release.
    assert_eq!(
        p.w.send_all(&step3, NOW.saturating_add_secs(6)).reply,
        handled.reply
    );
    assert_eq!(
        p.w.node()
            .expire(NOW.saturating_add_secs(10_000))
            .unwrap()
            .events,
        0
    );
    assert_eq!(p.w.log_len(), len + 1);
    // B0 is live again: C withdraws it.
    let reply = p.w.send(
        &p.c.withdraw(TxId::random(), &p.b0),
        NOW.saturating_add_secs(7),
    );
    assert_eq!(error_code(&p.w.broker_key(), &reply), None);
    assert_eq!(p.bank(&p.c), 1000);
}

/// An accept whose amounts differ from C's request is a final, recorded NOK: the escrow is
/// released and both are told.
#[test]
fn an_accept_with_other_amounts_is_a_recorded_nok() {
    for (top_up, new_value) in [(99, 139), (100, 141)] {
        let mut p = Parties::new(Suite::Modern, 500);
        let tx = TxId::random();
        let before = p.w.state().accounts.clone();
        open_escrow(&mut p, tx, 100);
        let len = p.w.log_len();
        let step3 =
            p.m.vendor_top_up_accepted(tx, &accept(&p, top_up, new_value));
        let handled = p.w.send_all(&step3, NOW);
        assert_eq!(
            nok_code(&p, &handled),
            (ErrorCode::AmountMismatch, ErrorCode::AmountMismatch)
        );
        assert_eq!(p.w.log_len(), len + 1);
        assert_eq!(p.w.state().accounts, before);
        assert_eq!(held_state(&p), ScripState::Live);
    }
}

/// The deadline: the timer releases B0 and tells C; every later step 3 gets the stored
/// NOK(DeadlinePassed), recorded once, C not told again.
#[test]
fn the_deadline_releases_the_escrow_and_later_answers_get_the_stored_nok() {
    let mut p = Parties::new(Suite::Modern, 500);
    let tx = TxId::random();
    let before = p.w.state().accounts.clone();
    let (deadline, _) = open_escrow(&mut p, tx, 100);
    assert_eq!(
        p.w.node().expire(UnixSecs::new(deadline)).unwrap().events,
        0,
        "not before it"
    );
    assert_eq!(p.w.node().to_resend(UnixSecs::new(deadline)).len(), 1);
    let len = p.w.log_len();
    let expired = p.w.node().expire(UnixSecs::new(deadline + 1)).unwrap();
    assert_eq!(expired.events, 1);
    assert_eq!(p.w.log_len(), len + 1);
    wire_client::assert_conserved(p.w.state());
    assert_eq!(p.w.state().accounts, before);
    assert_eq!(held_state(&p), ScripState::Live);
    assert!(
        p.w.node().to_resend(UnixSecs::new(deadline)).is_empty(),
        "released: nothing to re-send"
    );
    // C was told: Ack, then a NOK ChangeBrokerScrip.
    let to_c = p.w.state().outbox.frames(&tx, &p.c.uid()).to_vec();
    assert_eq!(to_c.len(), 2);
    let x5 = p.c.open_sealed::<ChangeBrokerScripX5>(&to_c[1]);
    let Decision::Nok(reason) = &x5.outcome else {
        panic!("expected NOK")
    };
    assert_eq!(reason.error_code(), Some(ErrorCode::DeadlinePassed));
    assert_eq!((x5.change, x5.undertaking), (None, None));
    // The timer returns exactly the stored delivery (for the shell to publish), the same
    // bytes TransactionStatus gives C (section 7).
    assert_eq!(
        expired.deliveries,
        [broker::node::Outgoing {
            to: p.c.uid(),
            frame: to_c[1].clone(),
        }]
    );
    p.assert_status(tx, UnixSecs::new(deadline + 1), to_c);
    let again = p.w.node().expire(UnixSecs::new(deadline + 2)).unwrap();
    assert_eq!(again.events, 0, "released once");
    assert!(again.deliveries.is_empty(), "C is told once");

    // M's accept comes late: the stored NOK, recorded; no second word to C.
    let step3 = p.m.vendor_top_up_accepted(tx, &accept(&p, 100, 140));
    let handled = p.w.send_all(&step3, UnixSecs::new(deadline + 5));
    assert!(handled.deliveries.is_empty());
    let decision =
        p.m.open_sealed::<VendorTopUpDecisionBody>(handled.reply_frame());
    assert_eq!(decision.decision, Decision::Nok(reason.clone()));
    assert_eq!(p.w.log_len(), len + 2);
    assert_eq!(
        p.w.send_all(&step3, UnixSecs::new(deadline + 50)).reply,
        handled.reply
    );
    assert_eq!(p.w.log_len(), len + 2);
    assert_eq!(p.w.state().accounts, before);
}

/// Past the deadline before the timer ran: the step 3 itself releases the escrow with
/// NOK(DeadlinePassed), and C is told.
#[test]
fn an_accept_after_the_deadline_releases_the_escrow() {
    let mut p = Parties::new(Suite::Modern, 500);
    let tx = TxId::random();
    let (deadline, _) = open_escrow(&mut p, tx, 100);
    let handled = p.w.send_all(
        &p.m.vendor_top_up_accepted(tx, &accept(&p, 100, 140)),
        UnixSecs::new(deadline + 1),
    );
    assert_eq!(
        nok_code(&p, &handled),
        (ErrorCode::DeadlinePassed, ErrorCode::DeadlinePassed)
    );
    assert_eq!(held_state(&p), ScripState::Live);
    assert_eq!(
        p.w.node()
            .expire(UnixSecs::new(deadline + 2))
            .unwrap()
            .events,
        0
    );
}

/// Section 4: a held B0 is refused with `Held` by every other request, changing nothing;
/// and 6.2's decision over a held B0 is a recorded NOK(Held).
#[test]
fn a_held_scrip_is_refused_by_every_other_request() {
    let mut p = Parties::new(Suite::Modern, 500);
    let tx = TxId::random();
    open_escrow(&mut p, tx, 100);
    let b0 = p.b0.clone();
    let x3 = accept(&p, 100, 140);
    let (c, m) = (&p.c, &p.m);
    let w = &mut p.w;
    w.assert_refused(
        &c.top_up(TxId::random(), &b0, 700, Nonce::random()),
        NOW,
        ErrorCode::Held,
    );
    w.assert_refused(&c.withdraw(TxId::random(), &b0), NOW, ErrorCode::Held);
    w.assert_refused(&c.renew(TxId::random(), &b0), NOW, ErrorCode::Held);
    w.assert_refused(
        &c.obtain(TxId::random(), 10, Nonce::random()),
        NOW,
        ErrorCode::Held,
    );
    // Held twice: a second top-up with the same B0.
    w.assert_refused(
        &c.vendor_top_up_request(TxId::random(), m.key.public(), &b0, &p.v0, 50),
        NOW,
        ErrorCode::Held,
    );
    // 6.2 over the held B0: the broker's decision is a recorded NOK(Held); B0 stays held.
    let tx2 = TxId::random();
    w.send(&c.notice(tx2, m.uid()), NOW);
    let before = w.state().accounts.clone();
    let step2 = c.vendor_scrip_request(tx2, m.key.public(), &b0, 100, 100);
    let handled = w.send_all(&m.exchange_authorization(&step2, c.uid(), 100), NOW);
    let x5 = m.open_sealed::<ExchangeAuthorizationResponseX5>(handled.reply_frame());
    let Decision::Nok(reason) = x5.decision else {
        panic!("expected NOK")
    };
    assert_eq!(reason.error_code(), Some(ErrorCode::Held));
    assert_eq!(w.state().accounts, before);
    assert_eq!(
        w.state().live.get(&b0.scrip.id()).unwrap().state,
        ScripState::Held {
            tx,
            until: NOW.saturating_add_secs(600).get()
        }
    );
    // The hold's own decision still goes through.
    let handled = w.send_all(&m.vendor_top_up_accepted(tx, &x3), NOW);
    assert!(
        m.open_sealed::<VendorTopUpDecisionBody>(handled.reply_frame())
            .decision
            .is_ok()
    );
}

/// Every refusal of step 1: an `Error`, nothing recorded, nothing held.
#[test]
fn request_refusals() {
    let mut p = Parties::new(Suite::Modern, 500);
    let other = p.other_merchant();
    let (c, m) = (&p.c, &p.m);
    let x0 = |top_up: u64, new_value: u64| VendorTopUpRequestX0 {
        new_value: amount(new_value),
        top_up: amount(top_up),
        merchant: m.uid(),
        broker_scrip: p.b0.scrip.clone(),
        cs_hash: p.b0.cs.cs_hash(Suite::Modern),
    };
    let send_x0 = |x: &VendorTopUpRequestX0| {
        c.vendor_top_up_request_with(TxId::random(), x, &p.b0, m.key.public(), &p.v0)
    };
    let w = &mut p.w;
    // W_V > B0.
    w.assert_refused(&send_x0(&x0(501, 541)), NOW, ErrorCode::ExceedsScrip);
    // W_V1 must be V0.value + W_V > W_V.
    w.assert_refused(&send_x0(&x0(100, 100)), NOW, ErrorCode::AmountMismatch);
    w.assert_refused(&send_x0(&x0(100, 60)), NOW, ErrorCode::AmountMismatch);
    w.assert_refused(&send_x0(&x0(0, 40)), NOW, ErrorCode::AmountOutOfRange);
    // An unregistered merchant, or C itself as merchant.
    let nobody = shared::fixtures::keypair(Suite::Modern, 5);
    let mut x = x0(100, 140);
    x.merchant = nobody.uid();
    w.assert_refused(
        &c.vendor_top_up_request_with(TxId::random(), &x, &p.b0, nobody.public(), &p.v0),
        NOW,
        ErrorCode::UnknownPeer,
    );
    x.merchant = c.uid();
    w.assert_refused(
        &c.vendor_top_up_request_with(TxId::random(), &x, &p.b0, c.key.public(), &p.v0),
        NOW,
        ErrorCode::NotAParty,
    );
    // The merchant part sealed to another merchant than X0 names: nothing to relay.
    w.assert_refused(
        &c.vendor_top_up_request_with(
            TxId::random(),
            &x0(100, 140),
            &p.b0,
            other.key.public(),
            &p.v0,
        ),
        NOW,
        ErrorCode::BadFrame,
    );
    // Not C's B0: another customer presents it.
    w.assert_refused(
        &other.vendor_top_up_request(TxId::random(), m.key.public(), &p.b0, &p.v0, 100),
        NOW,
        ErrorCode::NotOwner,
    );
    // An expired B0 must be renewed first.
    w.assert_refused(
        &send_x0(&x0(100, 140)),
        NOW.saturating_add_secs(31 * 24 * 3600),
        ErrorCode::Expired,
    );
    // TxReused: the same tx with another content, by C or by anyone else, or under
    // another transaction's tx.
    let tx = TxId::random();
    let first = c.vendor_top_up_request(tx, m.key.public(), &p.b0, &p.v0, 100);
    w.send_all(&first, NOW);
    let len = w.log_len();
    w.assert_refused(
        &c.vendor_top_up_request(tx, m.key.public(), &p.b0, &p.v0, 99),
        NOW,
        ErrorCode::TxReused,
    );
    w.assert_refused(
        &other.vendor_top_up_request(tx, m.key.public(), &p.b0, &p.v0, 100),
        NOW,
        ErrorCode::TxReused,
    );
    // A tx bound to a 6.2 exchange.
    let tx2 = TxId::random();
    w.send(&c.notice(tx2, m.uid()), NOW);
    w.assert_refused(
        &c.vendor_top_up_request(tx2, m.key.public(), &p.b0, &p.v0, 100),
        NOW,
        ErrorCode::TxReused,
    );
    assert_eq!(w.log_len(), len + 1);
}

/// Every refusal of step 3 that is not a decision: nothing recorded, the escrow still open.
#[test]
fn answer_refusals() {
    let mut p = Parties::new(Suite::Modern, 500);
    let other = p.other_merchant();
    let tx = TxId::random();
    open_escrow(&mut p, tx, 100);
    let (c, m) = (&p.c, &p.m);
    let x3 = accept(&p, 100, 140);
    let declined = decline(&p);
    let w = &mut p.w;
    // Not the named merchant: another merchant answers C's tx.
    w.assert_refused(
        &other.vendor_top_up_accepted(tx, &x3),
        NOW,
        ErrorCode::TxReused,
    );
    // M answers about another customer.
    let about_other = VendorTopUpAcceptedX3::Accept {
        customer: other.uid(),
        top_up: amount(100),
        new_value: amount(140),
        scrip_id: p.v0.scrip.id(),
    };
    w.assert_refused(
        &m.vendor_top_up_accepted(tx, &about_other),
        NOW,
        ErrorCode::TxReused,
    );
    // C answers its own top-up.
    w.assert_refused(
        &c.vendor_top_up_accepted(tx, &x3),
        NOW,
        ErrorCode::NotAParty,
    );
    // A tx with no escrow.
    w.assert_refused(
        &m.vendor_top_up_accepted(TxId::random(), &x3),
        NOW,
        ErrorCode::NotAParty,
    );
    // A tx bound to a 6.2 exchange between the same parties.
    let tx2 = TxId::random();
    w.send(&c.notice(tx2, m.uid()), NOW);
    w.assert_refused(
        &m.vendor_top_up_accepted(tx2, &x3),
        NOW,
        ErrorCode::TxReused,
    );
    assert_eq!(w.state().escrows[&tx].state, EscrowState::Open);
    // After the decision, M's other answer under the same tx is TxReused.
    let handled = w.send_all(&m.vendor_top_up_accepted(tx, &x3), NOW);
    assert!(
        m.open_sealed::<VendorTopUpDecisionBody>(handled.reply_frame())
            .decision
            .is_ok()
    );
    w.assert_refused(
        &m.vendor_top_up_accepted(tx, &declined),
        NOW,
        ErrorCode::TxReused,
    );
}

/// Escrows settled, released and open survive a reopen: the replayed state equals the
/// live one (and `BrokerNode::open` checked the tables against it byte for byte).
#[test]
fn escrows_survive_reopen_with_identical_state() {
    for suite in Suite::ALL {
        let mut p = Parties::new(suite, 500);
        let settled = TxId::random();
        open_escrow(&mut p, settled, 100);
        let handled = p.w.send_all(
            &p.m.vendor_top_up_accepted(settled, &accept(&p, 100, 140)),
            NOW,
        );
        let (_, b1, _) = p.change::<VendorTopUpAcceptedX3>(&handled, settled);
        p.b0 = b1;
        let released = TxId::random();
        open_escrow(&mut p, released, 50);
        p.w.send_all(&p.m.vendor_top_up_accepted(released, &decline(&p)), NOW);
        let open = TxId::random();
        let (deadline, authorization) = open_escrow(&mut p, open, 70);
        let state = p.w.state().clone();
        p.w.reopen();
        assert_eq!(p.w.state(), &state);
        let escrows = &p.w.state().escrows;
        assert_eq!(escrows[&settled].state, EscrowState::Settled);
        assert!(matches!(escrows[&released].state, EscrowState::Released(_)));
        assert_eq!(escrows[&open].state, EscrowState::Open);
        assert_eq!(p.w.node().to_resend(NOW)[0].frame, authorization);
        assert_eq!(
            p.w.node()
                .expire(UnixSecs::new(deadline + 1))
                .unwrap()
                .events,
            1
        );
        let state = p.w.state().clone();
        p.w.reopen();
        assert_eq!(p.w.state(), &state);
        wire_client::assert_conserved(p.w.state());
    }
}

/// Lapse (section 4): a held BrokerScrip does not lapse, only its escrow's event ends a
/// hold. A timer tick past both the escrow's deadline and B0's grace period releases the
/// escrow and nothing else (the lapse is decided on the state before the tick); the next
/// tick lapses B0, once: `float:broker −v, bank:C +v`, under `TxId(scrip_id)`.
#[test]
fn a_held_broker_scrip_does_not_lapse_until_its_escrow_ends() {
    let mut p = Parties::new(Suite::Modern, 500);
    let tx = TxId::random();
    let (deadline, _) = open_escrow(&mut p, tx, 100);
    let grace_end = p.b0.scrip.body.expires + 365 * 24 * 3600;
    assert!(grace_end > deadline);
    let bank_before = p.bank(&p.c);
    let len = p.w.log_len();
    assert_eq!(
        p.w.node()
            .expire(UnixSecs::new(grace_end + 1))
            .unwrap()
            .events,
        1
    );
    assert_eq!(p.w.log_len(), len + 1);
    assert_eq!(held_state(&p), ScripState::Live, "released, not lapsed");
    assert_eq!(p.bank(&p.c), bank_before);
    wire_client::assert_conserved(p.w.state());

    assert_eq!(
        p.w.node()
            .expire(UnixSecs::new(grace_end + 2))
            .unwrap()
            .events,
        1
    );
    assert_eq!(p.w.log_len(), len + 2);
    assert!(p.w.state().live.get(&p.b0.scrip.id()).is_none());
    assert_eq!(p.bank(&p.c), bank_before + 500);
    assert_eq!(p.w.state().balance(&Account::FloatBroker), 0);
    wire_client::assert_conserved(p.w.state());
    let lapse = TxId(p.b0.scrip.id().0);
    let lapsed = p.w.node().log().iter().unwrap().any(|e| {
        let e = e.unwrap();
        e.tx == lapse && matches!(e.kind.kind, Kind::ScripLapsed { .. })
    });
    assert!(lapsed, "the lapse of scrip X is tx X");
    assert_eq!(
        p.w.node()
            .expire(UnixSecs::new(grace_end + 3))
            .unwrap()
            .events,
        0,
        "once"
    );

    let state = p.w.state().clone();
    p.w.reopen();
    assert_eq!(p.w.state(), &state);
}
