//! 6.2 (the broker's side of obtaining VendorScrip) and 6.3 (the broker's side of a
//! purchase) through `BrokerNode` with a real redb file.
#![allow(clippy::unwrap_used)]

mod wire_client;

use broker::core::ExchangeState;
use shared::UnixSecs;
use shared::events::Account;
use shared::ids::TxId;
use shared::suite::OpCount;
use shared::wire::bodies::{
    ChangeBrokerScripX4, ExchangeAuthorizationRequestX3, ExchangeAuthorizationResponseX5,
    VendorScripNoticeResponseX0,
};
use shared::wire::{Decision, Frame, Label};
use shared::{Amount, ErrorCode, Suite};
use wire_client::{NOW, Parties, error_code};

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

/// Step 1; returns the deadline.
fn notice(p: &mut Parties, tx: TxId) -> u64 {
    let reply = p.w.send(&p.c.notice(tx, p.m.uid()), NOW);
    p.c.open_clear::<VendorScripNoticeResponseX0>(&reply)
        .deadline
}

/// Step 3's frame for a request of `w_c` (C's part) and `w_m` (M's X3).
fn authorization(p: &Parties, tx: TxId, w_c: u64, w_m: u64) -> Vec<u8> {
    let step2 =
        p.c.vendor_scrip_request(tx, p.m.key.public(), &p.b0, w_c, w_c);
    p.m.exchange_authorization(&step2, p.c.uid(), w_m)
}

#[test]
fn exchange_authorized_with_change_in_both_suites() {
    for suite in Suite::ALL {
        let mut p = Parties::new(suite, 500);
        let tx = TxId::random();
        let deadline = notice(&mut p, tx);
        assert_eq!(deadline, NOW.saturating_add_secs(600).get());
        assert_eq!(p.w.state().exchanges[&tx].state, ExchangeState::Open);

        let request = authorization(&p, tx, 300, 300);
        let handled = p.w.send_all(&request, NOW.saturating_add_secs(10));
        let x5 =
            p.m.open_sealed::<ExchangeAuthorizationResponseX5>(handled.reply_frame());
        assert_eq!(x5.decision, Decision::Ok);
        assert_eq!((x5.customer, x5.value), (p.c.uid(), amount(300)));
        assert_eq!(x5.re.sender, p.m.uid());

        // Step 5: C's change B1 of 200, and M's signed undertaking X3.
        let (x4, b1, undertaking) = p.change::<ExchangeAuthorizationRequestX3>(&handled, tx);
        assert_eq!(b1.scrip.value(), amount(200));
        assert_eq!(x4.outcome, Decision::Ok);
        assert_eq!(
            (undertaking.value, undertaking.customer),
            (amount(300), p.c.uid())
        );

        // Money: float −300, bank:M +300, memo +300; B0 spent, B1 live for C.
        let s = p.w.state();
        assert_eq!(s.balance(&Account::FloatBroker), 200);
        assert_eq!(p.bank(&p.m), 300);
        assert_eq!(s.memo(&p.m.uid()), 300);
        assert!(s.live.get(&p.b0.scrip.id()).is_none());
        assert_eq!(s.live.get(&b1.scrip.id()).unwrap().owner, p.c.uid());
        assert_eq!(s.exchanges[&tx].state, ExchangeState::Authorized);

        // A repeat of step 3 gets the stored decision, byte for byte; nothing appended.
        let len = p.w.log_len();
        let again = p.w.send_all(&request, NOW.saturating_add_secs(20));
        assert_eq!(again.reply, handled.reply);
        assert_eq!(p.w.log_len(), len);
        // The outbox keeps, for TransactionStatus, every frame of the tx sent to each
        // party: C's notice reply and change; M's decision.
        let to_c = p.w.state().outbox.frames(&tx, &p.c.uid());
        assert_eq!(to_c.len(), 2);
        assert_eq!(to_c[1], handled.deliveries[0].frame);
        assert_eq!(
            p.w.state().outbox.frames(&tx, &p.m.uid()),
            [handled.reply_frame().to_vec()]
        );
        // The change works: C withdraws it.
        let reply = p.w.send(&p.c.withdraw(TxId::random(), &b1), NOW);
        assert_eq!(error_code(&p.w.broker_key(), &reply), None);
        assert_eq!(p.bank(&p.c), 700);
    }
}

#[test]
fn exchange_of_the_whole_scrip_has_no_change() {
    let mut p = Parties::new(Suite::Paper, 300);
    let tx = TxId::random();
    notice(&mut p, tx);
    let handled = p.w.send_all(&authorization(&p, tx, 300, 300), NOW);
    let x4 =
        p.c.open_sealed::<ChangeBrokerScripX4>(&handled.deliveries[0].frame);
    assert_eq!(x4.change, None);
    assert!(p.w.state().live.is_empty());
    assert_eq!(p.w.state().balance(&Account::FloatBroker), 0);
}

#[test]
fn no_open_exchange_is_a_recorded_refusal() {
    let mut p = Parties::new(Suite::Modern, 500);
    let tx = TxId::random();
    let before = p.w.state().accounts.clone();
    let len = p.w.log_len();
    // M asks with no exchange announced (6.2 step 4, section 10): a recorded NOK that M
    // closes on, not an `Error` it would repeat for ever.
    let request = authorization(&p, tx, 300, 300);
    let handled = p.w.send_all(&request, NOW);
    assert_nok_recorded(&p, &handled, tx, ErrorCode::NoOpenExchange);
    assert_eq!(p.w.log_len(), len + 1, "the refusal is recorded");
    assert_eq!(p.w.state().accounts, before, "no money moved");
    assert!(p.w.state().live.get(&p.b0.scrip.id()).is_some());
    // A repeat gets the stored decision; nothing appended.
    assert_eq!(p.w.send_all(&request, NOW).reply, handled.reply);
    assert_eq!(p.w.log_len(), len + 1);
    // A notice that comes after the decision cannot reopen the tx.
    p.w.assert_refused(&p.c.notice(tx, p.m.uid()), NOW, ErrorCode::TxReused);
    wire_client::assert_conserved(p.w.state());
}

/// The NOK of `code` in `handled` (M's `ExchangeAuthorizationResponse`), told to C as a
/// `ChangeBrokerScrip` with no change, the exchange refused.
fn assert_nok_recorded(p: &Parties, handled: &shared::node::Handled, tx: TxId, code: ErrorCode) {
    let x5 =
        p.m.open_sealed::<ExchangeAuthorizationResponseX5>(handled.reply_frame());
    let Decision::Nok(reason) = x5.decision else {
        panic!("expected NOK")
    };
    assert_eq!(reason.error_code(), Some(code));
    assert_eq!(handled.deliveries.len(), 1);
    assert_eq!(handled.deliveries[0].to, p.c.uid());
    let x4 =
        p.c.open_sealed::<ChangeBrokerScripX4>(&handled.deliveries[0].frame);
    assert_eq!((x4.outcome, x4.change), (Decision::Nok(reason), None));
    assert_eq!(p.w.state().exchanges[&tx].state, ExchangeState::Refused);
}

/// A failed check of step 4 is a final, recorded NOK: the exchange closes, B0 stays live,
/// no money moves, and a repeat gets the same NOK.
#[test]
fn refused_exchanges_are_final_and_recorded() {
    let cases: [(u64, u64, ErrorCode); 2] = [
        (300, 299, ErrorCode::AmountMismatch),
        (600, 600, ErrorCode::ExceedsScrip),
    ];
    for (w_c, w_m, code) in cases {
        let mut p = Parties::new(Suite::Modern, 500);
        let tx = TxId::random();
        notice(&mut p, tx);
        let before = p.w.state().accounts.clone();
        let len = p.w.log_len();
        let request = authorization(&p, tx, w_c, w_m);
        let handled = p.w.send_all(&request, NOW);
        let x5 =
            p.m.open_sealed::<ExchangeAuthorizationResponseX5>(handled.reply_frame());
        let Decision::Nok(reason) = x5.decision else {
            panic!("expected NOK")
        };
        assert_eq!(reason.error_code(), Some(code));
        // C is told the same NOK, with no change and no undertaking (6.2 step 5).
        assert_eq!(handled.deliveries.len(), 1);
        assert_eq!(handled.deliveries[0].to, p.c.uid());
        let x4 =
            p.c.open_sealed::<ChangeBrokerScripX4>(&handled.deliveries[0].frame);
        assert_eq!(
            x4,
            ChangeBrokerScripX4 {
                outcome: Decision::Nok(reason),
                change: None,
                undertaking: None,
            }
        );
        wire_client::assert_conserved(p.w.state());
        assert_eq!(p.w.log_len(), len + 1, "the refusal is recorded");
        assert_eq!(p.w.state().accounts, before, "no money moved");
        assert!(p.w.state().live.get(&p.b0.scrip.id()).is_some());
        assert_eq!(p.w.state().exchanges[&tx].state, ExchangeState::Refused);
        assert_eq!(p.w.send_all(&request, NOW).reply, handled.reply);
        assert_eq!(p.w.log_len(), len + 1);
    }
}

#[test]
fn a_spent_or_foreign_b0_is_refused_in_the_decision() {
    let mut p = Parties::new(Suite::Modern, 500);
    // B0 withdrawn first: the exchange's B0 is spent.
    let reply = p.w.send(&p.c.withdraw(TxId::random(), &p.b0), NOW);
    assert_eq!(error_code(&p.w.broker_key(), &reply), None);
    let tx = TxId::random();
    notice(&mut p, tx);
    let handled = p.w.send_all(&authorization(&p, tx, 100, 100), NOW);
    let x5 =
        p.m.open_sealed::<ExchangeAuthorizationResponseX5>(handled.reply_frame());
    assert_eq!(
        x5.decision,
        Decision::nok(
            ErrorCode::Spent,
            format!(
                "scrip {} is not live (spent or never issued)",
                p.b0.scrip.id()
            )
        )
    );
}

#[test]
fn the_deadline_closes_the_exchange_and_later_requests_get_nok() {
    let mut p = Parties::new(Suite::Modern, 500);
    let tx = TxId::random();
    let deadline = notice(&mut p, tx);
    assert_eq!(
        p.w.node().expire(UnixSecs::new(deadline)).unwrap().events,
        0,
        "not before its deadline"
    );
    let expired = p.w.node().expire(UnixSecs::new(deadline + 1)).unwrap();
    assert_eq!(expired.events, 1);
    assert_eq!(p.w.state().exchanges[&tx].state, ExchangeState::Expired);
    // The timer told C: a NOK(DeadlinePassed) in the outbox, after the notice's reply.
    let to_c = p.w.state().outbox.frames(&tx, &p.c.uid()).to_vec();
    assert_eq!(to_c.len(), 2);
    let x4 = p.c.open_sealed::<ChangeBrokerScripX4>(&to_c[1]);
    let Decision::Nok(reason) = &x4.outcome else {
        panic!("expected NOK")
    };
    assert_eq!(reason.error_code(), Some(ErrorCode::DeadlinePassed));
    assert_eq!((x4.change, x4.undertaking), (None, None));
    // The timer returns exactly the stored frame, for the shell to publish to C.
    assert_eq!(
        expired.deliveries,
        [broker::node::Outgoing {
            to: p.c.uid(),
            frame: to_c[1].clone(),
        }]
    );
    let again = p.w.node().expire(UnixSecs::new(deadline + 2)).unwrap();
    assert_eq!(again.events, 0, "closed once");
    assert!(again.deliveries.is_empty());
    let handled = p.w.send_all(
        &authorization(&p, tx, 300, 300),
        UnixSecs::new(deadline + 5),
    );
    assert!(handled.deliveries.is_empty(), "C was told once, at expiry");
    let x5 =
        p.m.open_sealed::<ExchangeAuthorizationResponseX5>(handled.reply_frame());
    let Decision::Nok(reason) = x5.decision else {
        panic!("expected NOK")
    };
    assert_eq!(reason.error_code(), Some(ErrorCode::DeadlinePassed));
    assert!(p.w.state().live.get(&p.b0.scrip.id()).is_some());
    assert_eq!(p.w.state().exchanges[&tx].state, ExchangeState::Expired);

    // Past the deadline before the timer ran: a recorded NOK too.
    let tx = TxId::random();
    let deadline = notice(&mut p, tx);
    let handled = p.w.send_all(
        &authorization(&p, tx, 300, 300),
        UnixSecs::new(deadline + 1),
    );
    let x5 =
        p.m.open_sealed::<ExchangeAuthorizationResponseX5>(handled.reply_frame());
    assert!(!x5.decision.is_ok());
    let x4 =
        p.c.open_sealed::<ChangeBrokerScripX4>(&handled.deliveries[0].frame);
    assert_eq!(x4.outcome, x5.decision);
    assert_eq!(p.w.state().exchanges[&tx].state, ExchangeState::Refused);
}

/// Section 7: only the merchant C named can relay C's part (and so bind C's tx), and the
/// forwarded part must come from the customer M names.
#[test]
fn another_relay_or_another_customer_is_refused() {
    let mut p = Parties::new(Suite::Modern, 500);
    let other = p.other_merchant();
    let tx = TxId::random();
    notice(&mut p, tx);
    let step2 =
        p.c.vendor_scrip_request(tx, p.m.key.public(), &p.b0, 300, 300);
    // Another merchant relays C's part.
    let relayed = other.exchange_authorization(&step2, p.c.uid(), 300);
    p.w.assert_refused(&relayed, NOW, ErrorCode::TxReused);
    // M names another customer than the one whose part it forwards: not a party of the
    // tx the notice bound.
    let lie = p.m.exchange_authorization(&step2, other.uid(), 300);
    p.w.assert_refused(&lie, NOW, ErrorCode::TxReused);
    // M forwards a part of another label (C's notice) in place of C's step 2: M's own part
    // verified, so the refusal is a recorded NOK that closes the exchange (6.2 step 4).
    let len = p.w.log_len();
    let fake =
        p.m.exchange_authorization(&p.c.notice(tx, p.m.uid()), p.c.uid(), 300);
    let handled = p.w.send_all(&fake, NOW);
    assert_nok_recorded(&p, &handled, tx, ErrorCode::BadFrame);
    assert_eq!(p.w.log_len(), len + 1);
    assert!(p.w.state().live.get(&p.b0.scrip.id()).is_some());
}

#[test]
fn notice_refusals() {
    let mut p = Parties::new(Suite::Modern, 500);
    let nobody = shared::fixtures::keypair(Suite::Modern, 5).uid();
    p.w.assert_refused(
        &p.c.notice(TxId::random(), nobody),
        NOW,
        ErrorCode::UnknownPeer,
    );
    let tx = TxId::random();
    let reply = p.w.send(&p.c.notice(tx, p.m.uid()), NOW);
    // Repeat: the same bytes. Another merchant under the same tx: TxReused.
    assert_eq!(p.w.send(&p.c.notice(tx, p.m.uid()), NOW), reply);
    let other = p.other_merchant();
    p.w.assert_refused(&p.c.notice(tx, other.uid()), NOW, ErrorCode::TxReused);
}

// ---------------------------------------------------------------- 6.3

/// A merchant with a memo of 300 (from a 6.2 exchange) and its customer.
fn after_exchange() -> Parties {
    let mut p = Parties::new(Suite::Modern, 500);
    let tx = TxId::random();
    notice(&mut p, tx);
    let handled = p.w.send_all(&authorization(&p, tx, 300, 300), NOW);
    assert!(
        p.m.open_sealed::<ExchangeAuthorizationResponseX5>(handled.reply_frame())
            .decision
            .is_ok()
    );
    assert_eq!(p.w.state().memo(&p.m.uid()), 300);
    p
}

/// Protocol.md 6.3: "the broker's whole cost in a purchase is these two signature
/// verifications and the log append". Counted, not timed: [`OpCount`] reads the RSA
/// operations the node did on this thread, and the log length its appends.
#[test]
fn a_purchase_costs_the_broker_two_verifications_no_private_key_operation_and_its_appends() {
    let mut p = after_exchange();
    let tx = TxId::random();
    let step1 = p.c.purchase_initiated(tx, p.m.uid(), 120);
    let step5 = p.m.purchase_completed(tx, p.c.uid(), 120);
    // Nothing to decrypt: both messages are a single part signed in the clear.
    for step in [&step1, &step5] {
        assert!(matches!(
            Frame::decode(step).unwrap().parts[..],
            [shared::wire::Part::Signed { .. }]
        ));
    }
    let one_verification = OpCount {
        verify: 1,
        ..OpCount::default()
    };
    let len = p.w.log_len();

    // Each step: one verification, one event appended, the unsigned Ack to its sender.
    let steps = [
        (
            &step1,
            &p.c,
            Label::PurchaseInitiated,
            "step 1: PurchaseOpened",
        ),
        (
            &step5,
            &p.m,
            Label::PurchaseCompleted,
            "step 5: PurchaseRecorded",
        ),
    ];
    let mut ack = Vec::new();
    for (appended, (step, sender, label, what)) in (1..).zip(steps) {
        let before = OpCount::on_this_thread();
        ack = p.w.send(step, NOW);
        assert_eq!(OpCount::since(before), one_verification, "{what}");
        assert_eq!(p.w.log_len(), len + appended, "{what}");
        assert_eq!(sender.open_unsigned_ack(&ack).re.label, label);
    }
    assert_eq!(p.w.state().memo(&p.m.uid()), 180);
    assert!(p.w.state().purchases[&tx].recorded);

    // Repeats: the same Acks, nothing appended, still no private-key operation.
    let before = OpCount::on_this_thread();
    assert_eq!(p.w.send(&step5, NOW), ack);
    assert_eq!(OpCount::since(before).private(), 0);
    assert_eq!(p.w.log_len(), len + 2);

    // The count does see a private-key operation where there is one: a refusal is signed.
    let reused = p.c.purchase_initiated(tx, p.m.uid(), 121);
    let before = OpCount::on_this_thread();
    p.w.assert_refused(&reused, NOW, ErrorCode::TxReused);
    assert_eq!(OpCount::since(before).sign, 1);
}

/// An unsigned `Ack` is accepted only as what it is (ADR 0008): a `Clear` part cannot be
/// relayed, and a `Clear` part under another label is refused before it is decoded.
#[test]
fn an_unsigned_part_is_only_an_ack() {
    let p = after_exchange();
    let clear = shared::wire::Part::Clear { body: vec![0; 4] };
    let header = p.c.header(Label::PurchaseInitiated, TxId::random());
    assert_eq!(
        shared::wire::Part::forwarded(header, clear.clone()),
        Err(shared::wire::WireError::WrongPartKind {
            expected: "Signed or Sealed",
            found: "Clear",
        })
    );
    let frame = Frame::new(header, vec![clear]);
    assert_eq!(
        frame.part(0).unwrap().unsigned_ack(),
        Err(shared::wire::WireError::LabelMismatch {
            expected: Label::Ack,
            found: Label::PurchaseInitiated,
        })
    );
    // As a request to the broker it is a bad frame, and changes nothing.
    let mut p = p;
    p.w.assert_refused(&frame.encode().unwrap(), NOW, ErrorCode::BadFrame);
}

#[test]
fn a_completion_before_its_initiation_is_matched_when_it_arrives() {
    let mut p = after_exchange();
    let tx = TxId::random();
    p.w.send(&p.m.purchase_completed(tx, p.c.uid(), 100), NOW);
    assert_eq!(
        p.w.state().memo(&p.m.uid()),
        300,
        "unmatched: no posting yet"
    );
    assert!(!p.w.state().purchases[&tx].recorded);
    p.w.send(&p.c.purchase_initiated(tx, p.m.uid(), 100), NOW);
    assert_eq!(p.w.state().memo(&p.m.uid()), 200);
    assert!(p.w.state().purchases[&tx].recorded);
}

#[test]
fn mismatched_purchases_stay_unmatched_and_a_negative_memo_raises_an_alarm() {
    let mut p = after_exchange();
    let tx = TxId::random();
    p.w.send(&p.c.purchase_initiated(tx, p.m.uid(), 100), NOW);
    p.w.send(&p.m.purchase_completed(tx, p.c.uid(), 101), NOW);
    assert_eq!(p.w.state().memo(&p.m.uid()), 300);
    assert!(!p.w.state().purchases[&tx].recorded);

    let tx = TxId::random();
    let len = p.w.log_len();
    p.w.send(&p.c.purchase_initiated(tx, p.m.uid(), 400), NOW);
    p.w.send(&p.m.purchase_completed(tx, p.c.uid(), 400), NOW);
    assert_eq!(p.w.state().memo(&p.m.uid()), -100);
    // PurchaseOpened, then PurchaseRecorded and MemoAlarm in one commit.
    assert_eq!(p.w.log_len(), len + 3);
    let last = p.w.node().log().read(len + 3).unwrap().unwrap();
    assert!(matches!(
        last.kind.kind,
        broker::core::Kind::MemoAlarm { memo: -100, .. }
    ));
}

#[test]
fn purchase_refusals() {
    let mut p = after_exchange();
    let nobody = shared::fixtures::keypair(Suite::Modern, 5).uid();
    p.w.assert_refused(
        &p.c.purchase_initiated(TxId::random(), nobody, 10),
        NOW,
        ErrorCode::UnknownPeer,
    );
    let tx = TxId::random();
    p.w.send(&p.c.purchase_initiated(tx, p.m.uid(), 10), NOW);
    p.w.assert_refused(
        &p.c.purchase_initiated(tx, p.m.uid(), 11),
        NOW,
        ErrorCode::TxReused,
    );
    // Another merchant reporting C's purchase under this tx.
    let other = p.other_merchant();
    p.w.assert_refused(
        &other.purchase_completed(tx, p.c.uid(), 10),
        NOW,
        ErrorCode::TxReused,
    );
}

/// Section 5: a payout from bank:M is limited to bank:M − memo float:vendor:M, so M cannot
/// cash out value its customers still hold as VendorScrip; purchases free it.
#[test]
fn a_merchant_payout_is_limited_by_its_outstanding_vendor_scrip() {
    let mut p = after_exchange();
    assert_eq!(p.bank(&p.m), 300);
    let refused = p.w.node().payout(&p.m.pan, amount(1), NOW);
    assert!(
        matches!(
            refused,
            Err(broker::node::NodeError::Bank(
                broker::core::bank::BankError::Insufficient { available, .. }
            )) if available == Amount::ZERO
        ),
        "{refused:?}"
    );
    let tx = TxId::random();
    p.w.send(&p.c.purchase_initiated(tx, p.m.uid(), 120), NOW);
    p.w.send(&p.m.purchase_completed(tx, p.c.uid(), 120), NOW);
    assert!(p.w.node().payout(&p.m.pan, amount(121), NOW).is_err());
    p.w.node().payout(&p.m.pan, amount(120), NOW).unwrap();
    assert_eq!(p.bank(&p.m), 180);
    wire_client::assert_conserved(p.w.state());
}

/// The customer of an exchange cannot act as its merchant: it names itself as customer
/// and relays its own part, and is refused without a decision being recorded.
#[test]
fn the_customer_cannot_authorize_its_own_exchange() {
    let mut p = Parties::new(Suite::Modern, 500);
    let tx = TxId::random();
    notice(&mut p, tx);
    let step2 =
        p.c.vendor_scrip_request(tx, p.m.key.public(), &p.b0, 300, 300);
    let own = p.c.exchange_authorization(&step2, p.c.uid(), 300);
    p.w.assert_refused(&own, NOW, ErrorCode::NotAParty);
    assert_eq!(p.w.state().exchanges[&tx].state, ExchangeState::Open);
}

/// Section 7: `TransactionStatus` returns every frame of the tx sent to the asking party,
/// and only those; `Pending` when there are none. It appends nothing.
#[test]
fn transaction_status_returns_each_party_its_own_frames() {
    use shared::wire::bodies::TxStatus;
    let mut p = Parties::new(Suite::Modern, 500);
    let stranger = p.w.client(3, "X-1");
    p.w.onboard(&stranger, 0);
    let tx = TxId::random();
    let notice_reply = p.w.send(&p.c.notice(tx, p.m.uid()), NOW);
    let handled = p.w.send_all(&authorization(&p, tx, 300, 300), NOW);
    let len = p.w.log_len();
    assert_eq!(
        p.w.status(&p.c, tx, NOW),
        TxStatus::Frames {
            frames: vec![notice_reply, handled.deliveries[0].frame.clone()],
            omitted: 0
        }
    );
    assert_eq!(
        p.w.status(&p.m, tx, NOW),
        TxStatus::Frames {
            frames: vec![handled.reply_frame().to_vec()],
            omitted: 0
        }
    );
    assert_eq!(p.w.status(&stranger, tx, NOW), TxStatus::Pending);
    assert_eq!(p.w.status(&p.c, TxId::random(), NOW), TxStatus::Pending);
    assert_eq!(p.w.log_len(), len, "a status request appends nothing");
}
