//! 6.5 at the merchant, against the broker's frames built with the `wire` builders (the
//! broker's side of 6.5 is written in parallel): accept and hold, repeats, the decision
//! OK (V1 issued, delivered to C) and NOK (V0 released), every decline with no hold, the
//! refusals that record nothing, and reopen between the messages.

use shared::node::ScripState;
use shared::wire::bodies::{
    TransactionStatusBody, TransactionStatusResponseBody, TxStatus, VendorTopUpAcceptedX3,
    VendorTopUpAuthorizationX2, VendorTopUpDecisionBody, VendorTopUpRequestX1,
    VendorTopUpResponseX4,
};
use shared::wire::{Decision, Part, digest_of_verified, seal, secret_inner};

use super::*;

/// What the broker's step 2 says, and who signs C's part.
struct Auth<'a> {
    tx: TxId,
    v0: &'a Scrip,
    cs: &'a CustomerSecret,
    /// `W_V1` in C's `X1`.
    x1_new_value: u64,
    /// `W_V1` in the broker's `X2`.
    x2_new_value: u64,
    top_up: u64,
    deadline: u64,
    /// The customer who signs `X1` and whom `X2` names.
    customer: &'a KeyPair,
}

impl<'a> Auth<'a> {
    fn new(
        tx: TxId,
        v0: &'a Scrip,
        cs: &'a CustomerSecret,
        customer: &'a KeyPair,
        top_up: u64,
    ) -> Self {
        let new_value = v0.value().minor() + top_up;
        Auth {
            tx,
            v0,
            cs,
            x1_new_value: new_value,
            x2_new_value: new_value,
            top_up,
            deadline: NOW.saturating_add_secs(600).get(),
            customer,
        }
    }
}

/// 6.5 step 2 as the broker sends it: its sealed `X2`, then C's merchant part forwarded.
fn authorization(kit: &Kit, a: &Auth<'_>) -> Frame {
    let h1 = Header::new(kit.suite, Label::VendorTopUpRequest, a.tx, a.customer.uid());
    let x1 = VendorTopUpRequestX1 {
        new_value: amount(a.x1_new_value),
        vendor_scrip: a.v0.clone(),
        cs_hash: a.cs.cs_hash(kit.suite),
    };
    let c_part = seal(
        &h1,
        kit.merchant.public(),
        &[
            sign(a.customer, &h1, &x1).expect("sign").into(),
            secret_inner(a.v0.id(), a.cs),
        ],
    )
    .expect("seal");
    let h2 = Header::new(
        kit.suite,
        Label::VendorTopUpAuthorization,
        a.tx,
        kit.broker.uid(),
    );
    let x2 = VendorTopUpAuthorizationX2 {
        new_value: amount(a.x2_new_value),
        top_up: amount(a.top_up),
        customer: a.customer.uid(),
        deadline: a.deadline,
    };
    let own = seal(
        &h2,
        kit.merchant.public(),
        &[sign(kit.broker, &h2, &x2).expect("sign").into()],
    )
    .expect("seal");
    Frame::new(h2, vec![own, Part::forwarded(h1, c_part).expect("forward")])
}

/// The broker reads the merchant's step 3: its body and request digest.
fn read_step3(kit: &Kit, frame: &[u8]) -> (Frame, VendorTopUpAcceptedX3, Vec<u8>) {
    let frame = Frame::decode(frame).expect("decode");
    assert_eq!(frame.header.label, Label::VendorTopUpAccepted);
    assert_eq!(frame.parts.len(), 1);
    let opened = frame
        .part(0)
        .expect("part")
        .open_sealed(kit.broker)
        .expect("sealed to B");
    let v = opened
        .signed::<VendorTopUpAcceptedX3>(kit.merchant.public())
        .expect("signed by M");
    let digest = digest_of_verified(&frame.header, &[&v.evidence]).expect("digest");
    (frame, v.body, digest)
}

/// The broker's `VendorTopUpDecision` answering the step 3 `frame`.
fn decision(kit: &Kit, step3: &Frame, digest: Vec<u8>, decision: Decision) -> Vec<u8> {
    let header = step3
        .header
        .next(Label::VendorTopUpDecision, kit.broker.uid());
    let body = VendorTopUpDecisionBody {
        re: Re::new(&step3.header, digest),
        decision,
    };
    let part = seal(
        &header,
        kit.merchant.public(),
        &[sign(kit.broker, &header, &body).expect("sign").into()],
    )
    .expect("seal");
    Frame::new(header, vec![part]).encode().expect("encode")
}

/// Replay of the whole log into a fresh file gives the live tables, byte for byte, and
/// the live state (protocol.md section 8).
fn assert_replay_equal(h: &Harness) {
    let live_rows = h.snapshot().1;
    let scratch = tempfile::tempdir().expect("dir");
    let db = redb::Database::create(scratch.path().join("replay.redb")).expect("db");
    let mirror = Mirror::new(crate::core::state::State::new());
    h.node().log().replay_into(&mirror, &db).expect("replay");
    assert_eq!(
        shared::events::dump_projection(&db, &mirror).expect("dump"),
        live_rows
    );
    assert_eq!(mirror.into_state().tables, h.node().state().tables);
}

impl Harness {
    /// Delivers step 2; returns the merchant's step 3 frame (to the broker).
    fn step3(&mut self, auth: &Frame) -> Vec<u8> {
        let handled = self.handle(auth, NOW);
        assert_eq!(handled.refusal, None);
        assert!(handled.reply.is_none(), "a delivery has no reply");
        assert!(handled.deliveries.is_empty());
        assert_eq!(handled.requests.len(), 1);
        assert_eq!(handled.requests[0].to, self.kit.broker.uid());
        handled.requests[0].frame.clone()
    }

    fn reply(&mut self, frame: &[u8], now: UnixSecs) -> ReplyOutcome {
        let out = self
            .node_mut()
            .handle_reply(frame, now)
            .expect("handle reply");
        self.assert_conserved();
        out
    }

    fn state_of(&self, scrip: &Scrip) -> Option<ScripState> {
        self.node()
            .state()
            .tables
            .live
            .get(&scrip.id())
            .map(|r| r.state)
    }
}

#[test]
fn accepted_top_up_holds_v0_and_issues_v1_on_the_brokers_ok() {
    for suite in Suite::ALL {
        let mut h = Harness::new(suite);
        let kit = Kit::new(suite);
        let (v0, cs) = h.issue_to(kit.customer, 400);
        let tx = TxId::random();
        let auth = authorization(&kit, &Auth::new(tx, &v0, &cs, kit.customer, 250));
        let step3 = h.step3(&auth);
        let (s3, x3, digest) = read_step3(&kit, &step3);
        assert_eq!(
            x3,
            VendorTopUpAcceptedX3::Accept {
                customer: kit.customer.uid(),
                top_up: amount(250),
                new_value: amount(650),
                scrip_id: v0.id(),
            }
        );
        assert_eq!(
            h.state_of(&v0),
            Some(ScripState::Held {
                tx,
                until: NOW.saturating_add_secs(600).get()
            })
        );
        let pending = h.node().pending_broker_requests();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].frame, step3);

        // The broker repeats step 2: the same step 3, byte for byte, nothing appended.
        let (len, _) = h.snapshot();
        let again = h.step3(&authorization(
            &kit,
            &Auth::new(tx, &v0, &cs, kit.customer, 250),
        ));
        assert_eq!(again, step3);
        assert_eq!(h.snapshot().0, len);

        // Held: every other request on V0 is refused, and changes nothing.
        h.refused(
            &kit.purchase(kit.customer, TxId::random(), &v0, &cs, &tea(1)),
            NOW,
            ErrorCode::Held,
        );
        h.refused(
            &kit.renew(kit.customer, TxId::random(), &v0, &cs),
            NOW,
            ErrorCode::Held,
        );

        // Restart between the messages: still held, still pending.
        h.reopen();
        assert_eq!(h.node().pending_broker_requests()[0].frame, step3);

        // A decision whose re is not this step 3's digest is discarded.
        let wrong = decision(&kit, &s3, vec![0; 32], Decision::Ok);
        assert!(matches!(
            h.reply(&wrong, NOW),
            ReplyOutcome::Discarded(AckError::NotPending)
        ));

        // OK: V0 spent, V1 of W_V1 delivered to C with its secret.
        let ok = decision(&kit, &s3, digest, Decision::Ok);
        let ReplyOutcome::Decided(out) = h.reply(&ok, NOW.saturating_add_secs(5)) else {
            panic!("the OK is acted on")
        };
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, kit.customer.uid());
        let frame = Frame::decode(&out[0].frame).expect("decode");
        assert_eq!(frame.header.label, Label::VendorTopUpResponse);
        let opened = frame
            .part(0)
            .expect("part")
            .open_sealed(kit.customer)
            .expect("open");
        let x4 = opened
            .signed::<VendorTopUpResponseX4>(kit.merchant.public())
            .expect("signed")
            .body;
        let cs1 = opened.secret(x4.scrip.id(), &x4.cs_hash).expect("secret");
        assert_eq!(x4.scrip.value(), amount(650));
        assert_eq!(h.state_of(&v0), None, "V0 spent");
        assert_eq!(h.state_of(&x4.scrip), Some(ScripState::Live));
        assert_eq!(h.node().state().tables.books.issued, amount(650));
        assert!(h.node().pending_broker_requests().is_empty());
        // The same decision again: discarded.
        assert!(matches!(
            h.reply(&ok, NOW.saturating_add_secs(6)),
            ReplyOutcome::Discarded(_)
        ));

        // C asks for the frames of the tx: the delivery, recoverable.
        let sh = Header::new(suite, Label::TransactionStatus, tx, kit.customer.uid());
        let signed = sign(kit.customer, &sh, &TransactionStatusBody { tx }).expect("sign");
        let status = h.handle(
            &Frame::new(sh, vec![signed.into()]),
            NOW.saturating_add_secs(7),
        );
        let body = Frame::decode(&status.reply.expect("reply").frame)
            .expect("decode")
            .part(0)
            .expect("part")
            .verify_signed::<TransactionStatusResponseBody>(kit.merchant.public())
            .expect("signed")
            .body;
        assert_eq!(
            body.status,
            TxStatus::Frames {
                frames: vec![out[0].frame.clone()],
                omitted: 0
            }
        );

        // V1 pays; V0 is spent.
        h.refused(
            &kit.purchase(kit.customer, TxId::random(), &v0, &cs, &tea(1)),
            NOW,
            ErrorCode::Spent,
        );
        let paid = h.handle(
            &kit.purchase(kit.customer, TxId::random(), &x4.scrip, &cs1, &tea(1)),
            NOW.saturating_add_secs(8),
        );
        assert_eq!(paid.refusal, None);
        assert_replay_equal(&h);
        h.reopen();
    }
}

#[test]
fn a_nok_releases_v0() {
    let mut h = Harness::new(Suite::Modern);
    let kit = Kit::new(Suite::Modern);
    let (v0, cs) = h.issue_to(kit.customer, 1_000);
    let tx = TxId::random();
    let step3 = h.step3(&authorization(
        &kit,
        &Auth::new(tx, &v0, &cs, kit.customer, 100),
    ));
    let (s3, _, digest) = read_step3(&kit, &step3);
    let nok = decision(
        &kit,
        &s3,
        digest,
        Decision::nok(ErrorCode::DeadlinePassed, "expired"),
    );
    let ReplyOutcome::Decided(out) = h.reply(&nok, NOW.saturating_add_secs(700)) else {
        panic!("the NOK is acted on")
    };
    assert!(out.is_empty());
    assert_eq!(h.state_of(&v0), Some(ScripState::Live));
    assert_eq!(h.node().state().tables.books.issued, amount(1_000));
    assert!(h.node().pending_broker_requests().is_empty());
    let paid = h.handle(
        &kit.purchase(kit.customer, TxId::random(), &v0, &cs, &tea(1)),
        NOW,
    );
    assert_eq!(paid.refusal, None);
    assert_replay_equal(&h);
}

/// Each failed check of step 3 is a signed decline with its code, and holds nothing; the
/// broker's decision on it closes the tx.
#[test]
fn every_failed_check_is_a_decline_that_holds_nothing() {
    let mut h = Harness::new(Suite::Modern);
    let kit = Kit::new(Suite::Modern);
    let (v0, cs) = h.issue_to(kit.customer, 400);
    // Hold V0 by a first, accepted top-up.
    let first = TxId::random();
    h.step3(&authorization(
        &kit,
        &Auth::new(first, &v0, &cs, kit.customer, 100),
    ));
    let (live, live_cs) = h.issue_to(kit.customer, 50);

    let mut cases: Vec<(Auth<'_>, ErrorCode)> = Vec::new();
    cases.push((
        Auth::new(TxId::random(), &v0, &cs, kit.customer, 100),
        ErrorCode::Held,
    ));
    let mut a = Auth::new(TxId::random(), &live, &live_cs, kit.customer, 100);
    a.x1_new_value = 999;
    cases.push((a, ErrorCode::AmountMismatch));
    let mut a = Auth::new(TxId::random(), &live, &live_cs, kit.customer, 100);
    a.x1_new_value = 170;
    a.x2_new_value = 170;
    cases.push((a, ErrorCode::AmountMismatch));
    cases.push((
        Auth::new(TxId::random(), &live, &live_cs, kit.customer, 0),
        ErrorCode::AmountOutOfRange,
    ));
    let mut a = Auth::new(TxId::random(), &live, &live_cs, kit.customer, 10);
    a.deadline = NOW.saturating_sub_secs(1).get();
    cases.push((a, ErrorCode::DeadlinePassed));
    // C's scrip presented by the other customer (who signs X1 and whom X2 names).
    cases.push((
        Auth::new(TxId::random(), &live, &live_cs, kit.other, 10),
        ErrorCode::NotOwner,
    ));

    for (auth, code) in cases {
        let before = h.node().state().tables.live.clone();
        let issued = h.node().state().tables.books;
        let step3 = h.step3(&authorization(&kit, &auth));
        let (s3, x3, digest) = read_step3(&kit, &step3);
        let VendorTopUpAcceptedX3::Decline {
            reason,
            customer,
            top_up,
        } = x3
        else {
            panic!("expected a decline for {code}")
        };
        assert!(reason.starts_with(code.name()), "{reason} for {code}");
        assert_eq!(customer, auth.customer.uid());
        assert_eq!(top_up, amount(auth.top_up));
        assert_eq!(
            h.node().state().tables.live,
            before,
            "a decline holds nothing"
        );
        assert_eq!(h.node().state().tables.books, issued);
        assert!(
            h.node()
                .pending_broker_requests()
                .iter()
                .any(|p| p.frame == step3)
        );
        // The broker answers the decline (NOK, 6.5 step 3): the tx is closed.
        let closed = decision(
            &kit,
            &s3,
            digest,
            Decision::nok(ErrorCode::AmountMismatch, "declined"),
        );
        let ReplyOutcome::Decided(out) = h.reply(&closed, NOW) else {
            panic!("the decision on a decline is recorded")
        };
        assert!(out.is_empty());
        assert!(
            !h.node()
                .pending_broker_requests()
                .iter()
                .any(|p| p.frame == step3)
        );
        assert_eq!(h.node().state().tables.live, before);
    }
    // Expired V0: declined with Expired.
    let late = live.body.expires + 1;
    let mut a = Auth::new(TxId::random(), &live, &live_cs, kit.customer, 10);
    a.deadline = late + 10;
    let handled = h.handle(&authorization(&kit, &a), UnixSecs::new(late));
    let (_, x3, _) = read_step3(&kit, &handled.requests[0].frame);
    assert!(
        matches!(x3, VendorTopUpAcceptedX3::Decline { ref reason, .. } if reason.starts_with("Expired"))
    );
    assert_replay_equal(&h);
    h.reopen();
}

/// What is not a valid authorization from the broker is refused with an `Error` and
/// records nothing.
#[test]
fn refusals_record_nothing() {
    let mut h = Harness::new(Suite::Modern);
    let kit = Kit::new(Suite::Modern);
    let (v0, cs) = h.issue_to(kit.customer, 400);
    let tx = TxId::random();
    let good = authorization(&kit, &Auth::new(tx, &v0, &cs, kit.customer, 100));

    // Sent by the customer instead of the broker.
    let mut not_broker = good.clone();
    not_broker.header.sender = kit.customer.uid();
    h.refused(&not_broker, NOW, ErrorCode::NotAParty);

    // C's part forwarded with another origin sender than the customer X2 names.
    let mut wrong_origin = good.clone();
    let Part::Forwarded { origin, part } = &good.parts[1] else {
        panic!("forwarded")
    };
    let mut other_origin = *origin;
    other_origin.sender = kit.other.uid();
    wrong_origin.parts[1] = Part::forwarded(other_origin, (**part).clone()).expect("forward");
    h.refused(&wrong_origin, NOW, ErrorCode::BadFrame);

    // The parts swapped.
    let swapped = Frame::new(
        good.header,
        vec![good.parts[1].clone(), good.parts[0].clone()],
    );
    h.refused(&swapped, NOW, ErrorCode::BadFrame);

    // The tx of a purchase at this merchant: TxReused.
    let (p, pcs) = h.issue_to(kit.customer, 900);
    let ptx = TxId::random();
    let bought = h.handle(&kit.purchase(kit.customer, ptx, &p, &pcs, &tea(1)), NOW);
    assert_eq!(bought.refusal, None);
    h.refused(
        &authorization(&kit, &Auth::new(ptx, &v0, &cs, kit.customer, 100)),
        NOW,
        ErrorCode::TxReused,
    );

    // After all that, the good one is accepted.
    let step3 = h.step3(&good);
    let (_, x3, _) = read_step3(&kit, &step3);
    assert!(matches!(x3, VendorTopUpAcceptedX3::Accept { .. }));
    // The same tx with other content: TxReused.
    h.refused(
        &authorization(&kit, &Auth::new(tx, &v0, &cs, kit.customer, 101)),
        NOW,
        ErrorCode::TxReused,
    );
}
