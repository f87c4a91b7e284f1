//! End-to-end tests of a merchant node with real keys and a real redb file: every success
//! path of 6.3 and 6.8 with conservation after every step, every refusal of sections 4 and 7 that
//! applies (exact code, and the log and tables unchanged), repeats, reports to the broker,
//! and reopen + replay equality.

use shared::events::ProjectionDump;
use shared::wire::bodies::{
    AckBody, OrderInfo, PurchaseCompletedX3, PurchaseResponseX2, Re, RenewResponseX1,
};
use shared::wire::{Frame, Header, Label, sign};
use shared::{Amount, CustomerSecret, KeyPair, Scrip, Suite, TxId};
use shared::{ErrorCode, UnixSecs};
use tempfile::TempDir;

use super::{Handled, MerchantNode, ReplyOutcome};
use crate::core::broker_reply::AckError;
use crate::core::events::Kind;
use crate::core::report::report_digest;
use crate::core::testkit::{Kit, NOW, tea};
use crate::store::{Mirror, rows_of};

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

/// A merchant node in a temp dir, with the kit that made it.
struct Harness {
    kit: Kit,
    dir: TempDir,
    node: Option<MerchantNode>,
}

impl Harness {
    fn new(suite: Suite) -> Harness {
        let kit = Kit::new(suite);
        let dir = tempfile::tempdir().expect("temp dir");
        let node = open_node(&kit, &dir, kit.config());
        let h = Harness {
            kit,
            dir,
            node: Some(node),
        };
        h.assert_conserved();
        h
    }

    fn node(&self) -> &MerchantNode {
        self.node.as_ref().expect("node open")
    }

    fn node_mut(&mut self) -> &mut MerchantNode {
        self.node.as_mut().expect("node open")
    }

    /// Issues VendorScrip of `value` to `owner` (what 6.2 will do).
    fn issue_to(&mut self, owner: &KeyPair, value: u64) -> (Scrip, CustomerSecret) {
        let issued = self
            .node_mut()
            .issue_vendor_scrip(owner.uid(), amount(value), TxId::random(), NOW)
            .expect("issue");
        self.assert_conserved();
        issued
    }

    /// Handles `frame` and checks the invariants after it.
    fn handle(&mut self, frame: &Frame, now: UnixSecs) -> Handled {
        let bytes = frame.encode().expect("encode");
        let handled = self.node_mut().handle(&bytes, now).expect("handle");
        self.assert_conserved();
        handled
    }

    /// The log length and every table, to show that a refusal changed nothing.
    fn snapshot(&self) -> (u64, ProjectionDump) {
        let node = self.node();
        (
            node.log().len().expect("len"),
            node.log()
                .dump_projection(&Mirror::new(crate::core::state::State::new()))
                .expect("dump"),
        )
    }

    /// Handles `frame`, expects the refusal `code`, a signed `Error` reply carrying it, and
    /// no change at all.
    fn refused(&mut self, frame: &Frame, now: UnixSecs, code: ErrorCode) {
        let before = self.snapshot();
        let tables = self.node().state().tables.clone();
        let handled = self.handle(frame, now);
        let refusal = handled.refusal.as_ref().unwrap_or_else(|| {
            panic!("expected {code}, got a reply");
        });
        assert_eq!(refusal.code, code, "{}", refusal.message);
        assert!(handled.deliveries.is_empty() && handled.requests.is_empty());
        let reply = handled.reply.expect("an Error reply");
        assert_eq!(reply.to, frame.header.sender);
        let error = Frame::decode(&reply.frame).expect("decode");
        assert_eq!(error.header.label, Label::Error);
        let me = self.kit.merchant.public();
        // Unsigned when the frame did not open or verify (protocol.md section 3).
        let body = match shared::node::unsigned_error_in(&error, me.uid(), frame.header.tx) {
            Some(body) => body,
            None => {
                error
                    .part(0)
                    .expect("part")
                    .verify_signed::<shared::wire::bodies::ErrorBody>(me)
                    .expect("signed by the merchant")
                    .body
            }
        };
        assert_eq!(body.error_code(), Some(code));
        assert_eq!(body.re.sender, frame.header.sender);
        assert_eq!(
            self.snapshot(),
            before,
            "a refusal changed the log or tables"
        );
        assert_eq!(self.node().state().tables, tables);
    }

    /// Closes the node and opens it again from its file.
    fn reopen(&mut self) {
        let node = self.node.take().expect("node open");
        let (_, config) = node.close().expect("close");
        self.node = Some(open_node(&self.kit, &self.dir, config));
        self.assert_conserved();
    }

    /// Conservation of VendorScrip value (protocol.md section 4): everything issued is
    /// live, paid or withdrawn; every purchase consumed exactly what it paid plus its
    /// change; every renewal kept its value; a top-up issued exactly what it added; the
    /// tables on disk are the state's.
    fn assert_conserved(&self) {
        let node = self.node();
        let state = node.state();
        let books = state.tables.books;
        let live = state.live_value().expect("live value");
        assert_eq!(
            live.checked_add(books.paid)
                .and_then(|v| v.checked_add(books.withdrawn))
                .expect("sum"),
            books.issued,
            "issued = live + paid + withdrawn"
        );
        let mut paid = Amount::default();
        let mut withdrawn = Amount::default();
        let mut issued = Amount::default();
        for event in node.log().iter().expect("iter") {
            let event = event.expect("event");
            match event.kind.kind {
                Kind::PurchaseMade {
                    spent,
                    change,
                    receipt,
                    ..
                } => {
                    let change = change.map_or(Amount::default(), |c| c.value);
                    assert_eq!(
                        receipt.paid.checked_add(change).expect("sum"),
                        spent.value,
                        "consumed = paid + change"
                    );
                    paid = paid.checked_add(receipt.paid).expect("sum");
                }
                Kind::ScripRenewed { old, new, .. } => assert_eq!(old.value, new.value),
                Kind::VendorScripIssued { scrip, .. } => {
                    issued = issued.checked_add(scrip.value).expect("sum");
                }
                Kind::VendorScripToppedUp { old, new, .. } => {
                    let added = new.value.checked_sub(old.value).expect("a top-up adds");
                    issued = issued.checked_add(added).expect("sum");
                }
                Kind::VendorScripWithdrawn { spent, .. } => {
                    withdrawn = withdrawn.checked_add(spent.value).expect("sum");
                }
                // A lapse leaves the merchant's account like a withdrawal (section 4).
                Kind::ScripLapsed { scrip, .. } => {
                    withdrawn = withdrawn.checked_add(scrip.value).expect("sum");
                }
                Kind::PurchaseReported
                | Kind::LapseReported
                | Kind::ExchangeRequested { .. }
                | Kind::ExchangeRefused { .. }
                | Kind::VendorEscrowOpened { .. }
                | Kind::VendorTopUpDeclined { .. }
                | Kind::VendorTopUpClosed
                | Kind::VendorEscrowReleased { .. } => {}
            }
        }
        assert_eq!(paid, books.paid);
        assert_eq!(withdrawn, books.withdrawn);
        assert_eq!(issued, books.issued);
        node.check_tables().expect("tables match the state");
    }
}

fn open_node(kit: &Kit, dir: &TempDir, config: crate::core::Config) -> MerchantNode {
    let peers = kit.state().peer_keys().cloned().collect::<Vec<_>>();
    MerchantNode::open(
        dir.path().join("merchant.redb"),
        kit.merchant.clone(),
        config,
        peers,
    )
    .expect("open node")
}

/// The customer's view of a purchase reply: the verified body, and the change's secret.
fn open_purchase_reply(
    kit: &Kit,
    handled: &Handled,
) -> (PurchaseResponseX2, Option<CustomerSecret>) {
    let reply = handled.reply.as_ref().expect("reply");
    assert_eq!(reply.to, kit.customer.uid());
    let frame = Frame::decode(&reply.frame).expect("decode");
    assert_eq!(frame.header.label, Label::PurchaseResponse);
    let opened = frame
        .part(0)
        .expect("part")
        .open_sealed(kit.customer)
        .expect("sealed to the customer");
    let body = opened
        .signed::<PurchaseResponseX2>(kit.merchant.public())
        .expect("signed by the merchant")
        .body;
    let cs = body.change.as_ref().map(|c| {
        opened
            .secret(c.scrip.id(), &c.cs_hash)
            .expect("the change's secret")
    });
    (body, cs)
}

/// The customer's view of a renewal reply.
fn open_renew_reply(kit: &Kit, handled: &Handled) -> (RenewResponseX1, CustomerSecret) {
    let reply = handled.reply.as_ref().expect("reply");
    let frame = Frame::decode(&reply.frame).expect("decode");
    assert_eq!(frame.header.label, Label::RenewResponse);
    let opened = frame
        .part(0)
        .expect("part")
        .open_sealed(kit.customer)
        .expect("sealed to the customer");
    let body = opened
        .signed::<RenewResponseX1>(kit.merchant.public())
        .expect("signed by the merchant")
        .body;
    let cs = opened
        .secret(body.scrip.id(), &body.cs_hash)
        .expect("the new secret");
    (body, cs)
}

/// The broker's view of the report a purchase sent.
fn open_report(kit: &Kit, handled: &Handled) -> (Frame, PurchaseCompletedX3) {
    assert!(handled.deliveries.is_empty());
    assert_eq!(handled.requests.len(), 1);
    let report = &handled.requests[0];
    assert_eq!(report.to, kit.broker.uid());
    let frame = Frame::decode(&report.frame).expect("decode");
    assert_eq!(frame.header.label, Label::PurchaseCompleted);
    let body = frame
        .part(0)
        .expect("part")
        .verify_signed::<PurchaseCompletedX3>(kit.merchant.public())
        .expect("signed in the clear by the merchant")
        .body;
    (frame, body)
}

#[test]
fn purchase_with_change_in_both_suites() {
    for suite in Suite::ALL {
        let mut h = Harness::new(suite);
        let (v0, cs0) = h.issue_to(h.kit.customer, 2_000);
        let order = tea(2);
        let tx = TxId::random();
        let frame = h.kit.purchase(h.kit.customer, tx, &v0, &cs0, &order);
        let handled = h.handle(&frame, NOW.saturating_add_secs(10));
        assert_eq!(handled.refusal, None);

        let (body, cs1) = open_purchase_reply(&h.kit, &handled);
        assert_eq!(body.order, order);
        assert_eq!(body.receipt.paid, amount(900));
        assert_eq!(body.receipt.order_id, order.order_id);
        assert_eq!(body.receipt.issued_at, NOW.saturating_add_secs(10).get());
        assert_eq!(body.re.sender, h.kit.customer.uid());
        assert_eq!(body.re.label, Label::PurchaseRequest);
        let v1 = body.change.expect("change").scrip;
        let cs1 = cs1.expect("change secret");
        assert_eq!(v1.value(), amount(1_100));
        assert_ne!(v1.id(), v0.id());
        assert_eq!(
            v1.body.expires,
            NOW.saturating_add_secs(10 + crate::core::DEFAULT_SCRIP_LIFETIME_SECS)
                .get()
        );
        h.kit
            .mint()
            .validate(&v1, cs1.expose(), NOW, shared::ExpiryRule::Strict)
            .expect("the change is valid scrip of this merchant");

        let (report, x3) = open_report(&h.kit, &handled);
        assert_eq!(report.header.tx, tx);
        assert_eq!(x3.customer, h.kit.customer.uid());
        assert_eq!(x3.value, amount(900));

        let t = &h.node().state().tables;
        assert!(t.live.get(&v0.id()).is_none(), "V0 is spent");
        let row = t.live.get(&v1.id()).expect("V1 is live");
        assert_eq!(row.owner, h.kit.customer.uid());
        assert_eq!(t.orders[&tx].order, order);
        assert_eq!(t.unreported[&tx].value, amount(900));
        assert_eq!(t.books.issued, amount(2_000));
        assert_eq!(t.books.paid, amount(900));
        assert_eq!(h.node().log().len().unwrap(), 2);

        // 1100 left: a mug (1200) exceeds it.
        let mug_and_more = OrderInfo {
            item_id: "mug".into(),
            name: "Mug".into(),
            unit_price: amount(1_200),
            quantity: 1,
            order_id: order.order_id,
        };
        let frame = h
            .kit
            .purchase(h.kit.customer, TxId::random(), &v1, &cs1, &mug_and_more);
        h.refused(&frame, NOW.saturating_add_secs(20), ErrorCode::ExceedsScrip);
        // The change pays for the next purchase, whose change pays again.
        let frame = h
            .kit
            .purchase(h.kit.customer, TxId::random(), &v1, &cs1, &tea(2));
        let handled = h.handle(&frame, NOW.saturating_add_secs(20));
        let (body, _) = open_purchase_reply(&h.kit, &handled);
        assert_eq!(body.change.map(|c| c.scrip.value()), Some(amount(200)));
        assert_eq!(h.node().state().tables.books.paid, amount(1_800));
        assert_eq!(h.node().state().tables.unreported.len(), 2);
    }
}

#[test]
fn purchase_of_the_whole_value_issues_no_change() {
    let mut h = Harness::new(Suite::Modern);
    let (v0, cs0) = h.issue_to(h.kit.customer, 900);
    let handled = h.handle(
        &h.kit
            .purchase(h.kit.customer, TxId::random(), &v0, &cs0, &tea(2)),
        NOW,
    );
    let (body, cs) = open_purchase_reply(&h.kit, &handled);
    assert_eq!(body.change, None);
    assert!(cs.is_none());
    assert!(h.node().state().tables.live.is_empty());
    assert_eq!(h.node().state().tables.books.paid, amount(900));
}

#[test]
fn a_repeated_request_gets_the_stored_reply_and_appends_nothing() {
    let mut h = Harness::new(Suite::Modern);
    let (v0, cs0) = h.issue_to(h.kit.customer, 1_000);
    let tx = TxId::random();
    let order = tea(1);
    let frame = h.kit.purchase(h.kit.customer, tx, &v0, &cs0, &order);
    let first = h.handle(&frame, NOW);
    let after = h.snapshot();

    // The same bytes again, and a retry re-signed and re-sealed: same reply bytes.
    let again = h.handle(&frame, NOW.saturating_add_secs(5));
    let retry = h.kit.purchase(h.kit.customer, tx, &v0, &cs0, &order);
    assert_ne!(retry, frame);
    let retried = h.handle(&retry, NOW.saturating_add_secs(50));
    for repeat in [&again, &retried] {
        assert_eq!(repeat.reply, first.reply);
        assert_eq!(repeat.refusal, None);
        assert!(
            repeat.deliveries.is_empty() && repeat.requests.is_empty(),
            "the report is re-sent from the outbox"
        );
    }
    assert_eq!(h.snapshot(), after);

    // Same (sender, tx, label), other content: TxReused.
    let other = h.kit.purchase(h.kit.customer, tx, &v0, &cs0, &tea(2));
    h.refused(&other, NOW, ErrorCode::TxReused);
}

#[test]
fn a_tx_is_bound_to_its_kind_and_parties() {
    let mut h = Harness::new(Suite::Modern);
    let (v0, cs0) = h.issue_to(h.kit.customer, 1_000);
    let (w0, ws0) = h.issue_to(h.kit.other, 1_000);
    let tx = TxId::random();
    let handled = h.handle(&h.kit.purchase(h.kit.customer, tx, &v0, &cs0, &tea(1)), NOW);
    let (body, cs1) = open_purchase_reply(&h.kit, &handled);
    let v1 = body.change.expect("change").scrip;
    let cs1 = cs1.expect("secret");

    // The purchase's tx under another kind (a renewal) by its own customer.
    h.refused(
        &h.kit.renew(h.kit.customer, tx, &v1, &cs1),
        NOW,
        ErrorCode::TxReused,
    );
    // The purchase's tx used by another customer for a purchase of its own.
    h.refused(
        &h.kit.purchase(h.kit.other, tx, &w0, &ws0, &tea(1)),
        NOW,
        ErrorCode::TxReused,
    );
    // The stored reply is never returned to anyone else: the other customer's request has
    // its own key and is refused above, not answered with the customer's reply.
}

#[test]
fn every_refusal_of_a_purchase_changes_nothing() {
    for suite in Suite::ALL {
        let mut h = Harness::new(suite);
        let kit = Kit::new(suite);
        let (v0, cs0) = h.issue_to(kit.customer, 1_000);
        let tx = TxId::random;

        // Scrip not issued by this producer.
        let (foreign, foreign_cs) = kit
            .other_mint()
            .issue(amount(1_000), NOW.saturating_add_secs(100).get());
        h.refused(
            &kit.purchase(kit.customer, tx(), &foreign, &foreign_cs, &tea(1)),
            NOW,
            ErrorCode::WrongProducer,
        );
        // Forged certificate; and a body changed under the certificate.
        let mut forged = v0.clone();
        forged.certificate[0] ^= 1;
        h.refused(
            &kit.purchase(kit.customer, tx(), &forged, &cs0, &tea(1)),
            NOW,
            ErrorCode::BadCertificate,
        );
        let mut inflated = v0.clone();
        inflated.body.value = amount(100_000);
        h.refused(
            &kit.purchase(kit.customer, tx(), &inflated, &cs0, &tea(1)),
            NOW,
            ErrorCode::BadCertificate,
        );
        // Wrong customer secret (consistent with the body's cs_hash, not the scrip's).
        let (_, wrong_cs) = kit
            .mint()
            .issue(amount(1), NOW.saturating_add_secs(100).get());
        h.refused(
            &kit.purchase(kit.customer, tx(), &v0, &wrong_cs, &tea(1)),
            NOW,
            ErrorCode::BadCustomerSecret,
        );
        // Presented by someone other than its owner, with the right secret.
        h.refused(
            &kit.purchase(kit.other, tx(), &v0, &cs0, &tea(1)),
            NOW,
            ErrorCode::NotOwner,
        );
        // A certified scrip of this merchant that was never issued (not in the table).
        let (never, never_cs) = kit
            .mint()
            .issue(amount(1_000), NOW.saturating_add_secs(100).get());
        h.refused(
            &kit.purchase(kit.customer, tx(), &never, &never_cs, &tea(1)),
            NOW,
            ErrorCode::Spent,
        );
        // Expired.
        let late = v0.body.expires + 1;
        h.refused(
            &kit.purchase(kit.customer, tx(), &v0, &cs0, &tea(1)),
            UnixSecs::new(late),
            ErrorCode::Expired,
        );
        // Price × quantity not matching the catalogue.
        let mut cheap = tea(1);
        cheap.unit_price = amount(1);
        let mut renamed = tea(1);
        renamed.name = "Gunpowder tea".into();
        let mut unknown = tea(1);
        unknown.item_id = "coffee".into();
        for order in [cheap, renamed, unknown, tea(0)] {
            h.refused(
                &kit.purchase(kit.customer, tx(), &v0, &cs0, &order),
                NOW,
                ErrorCode::CatalogueMismatch,
            );
        }
        h.refused(
            &kit.purchase(kit.customer, tx(), &v0, &cs0, &tea(u64::MAX)),
            NOW,
            ErrorCode::AmountOutOfRange,
        );
        // Exceeding the scrip: 3 × 450 > 1000.
        h.refused(
            &kit.purchase(kit.customer, tx(), &v0, &cs0, &tea(3)),
            NOW,
            ErrorCode::ExceedsScrip,
        );
        // Wrong suite (checked before any cryptography).
        let mut wrong_suite = kit.purchase(kit.customer, tx(), &v0, &cs0, &tea(1));
        wrong_suite.header.suite = match suite {
            Suite::Paper => Suite::Modern,
            Suite::Modern => Suite::Paper,
        };
        h.refused(&wrong_suite, NOW, ErrorCode::WrongSuite);
        // An unknown sender.
        h.refused(
            &kit.purchase(kit.stranger, tx(), &v0, &cs0, &tea(1)),
            NOW,
            ErrorCode::UnknownPeer,
        );
        // A signed part cut from one message (another tx) and pasted into this one.
        let donor = kit.purchase(kit.customer, tx(), &v0, &cs0, &tea(1));
        let mut pasted = kit.purchase(kit.customer, tx(), &v0, &cs0, &tea(1));
        pasted.parts = donor.parts;
        h.refused(&pasted, NOW, ErrorCode::BadFrame);

        // After all that, V0 still pays; then it is spent.
        let handled = h.handle(&kit.purchase(kit.customer, tx(), &v0, &cs0, &tea(1)), NOW);
        assert_eq!(handled.refusal, None);
        h.refused(
            &kit.purchase(kit.customer, tx(), &v0, &cs0, &tea(1)),
            NOW,
            ErrorCode::Spent,
        );
    }
}

#[test]
fn undecodable_bytes_are_bad_frame_with_no_reply() {
    let mut h = Harness::new(Suite::Modern);
    let before = h.snapshot();
    let handled = h.node_mut().handle(&[0xff; 40], NOW).expect("handle");
    assert_eq!(handled.reply, None);
    assert_eq!(handled.refusal.map(|r| r.code), Some(ErrorCode::BadFrame));
    let handled = h
        .node_mut()
        .handle(&vec![0; shared::wire::MAX_FRAME_LEN + 1], NOW)
        .expect("handle");
    assert_eq!(
        handled.refusal.map(|r| r.code),
        Some(ErrorCode::FrameTooLarge)
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn renewal_within_grace_early_and_refused_after_grace() {
    for suite in Suite::ALL {
        let mut h = Harness::new(suite);
        let kit = Kit::new(suite);
        let (e0, cs0) = h.issue_to(kit.customer, 700);
        let grace = crate::core::DEFAULT_RENEWAL_GRACE_SECS;

        // Past the grace period: GraceOver.
        let after_grace = e0.body.expires + grace + 1;
        h.refused(
            &kit.renew(kit.customer, TxId::random(), &e0, &cs0),
            UnixSecs::new(after_grace),
            ErrorCode::GraceOver,
        );
        // Not the owner.
        h.refused(
            &kit.renew(kit.other, TxId::random(), &e0, &cs0),
            UnixSecs::new(e0.body.expires + 1),
            ErrorCode::NotOwner,
        );
        // Expired, on the last second of grace: renewed, same value, new ids and expiry.
        let at = e0.body.expires + grace;
        let tx = TxId::random();
        let frame = kit.renew(kit.customer, tx, &e0, &cs0);
        let handled = h.handle(&frame, UnixSecs::new(at));
        assert_eq!(handled.refusal, None);
        assert!(handled.deliveries.is_empty() && handled.requests.is_empty());
        let (body, cs1) = open_renew_reply(&kit, &handled);
        let e1 = body.scrip;
        assert_eq!(e1.value(), e0.value());
        assert_ne!(e1.id(), e0.id());
        assert_ne!(e1.body.cust_id, e0.body.cust_id);
        assert_eq!(
            e1.body.expires,
            at + crate::core::DEFAULT_SCRIP_LIFETIME_SECS
        );
        kit.mint()
            .validate(
                &e1,
                cs1.expose(),
                shared::UnixSecs::new(at),
                shared::ExpiryRule::Strict,
            )
            .expect("E1 is valid");
        let t = &h.node().state().tables;
        assert!(t.live.get(&e0.id()).is_none());
        assert_eq!(
            t.live.get(&e1.id()).map(|r| r.owner),
            Some(kit.customer.uid())
        );

        // A repeat gets the same bytes; E0 is spent for any new renewal.
        let again = h.handle(&frame, UnixSecs::new(at + 1));
        assert_eq!(again.reply, handled.reply);
        h.refused(
            &kit.renew(kit.customer, TxId::random(), &e0, &cs0),
            UnixSecs::new(at),
            ErrorCode::Spent,
        );

        // An unexpired scrip is renewed too (documented in core::renew).
        let frame = kit.renew(kit.customer, TxId::random(), &e1, &cs1);
        let handled = h.handle(&frame, UnixSecs::new(at + 1));
        let (body, cs2) = open_renew_reply(&kit, &handled);
        assert_eq!(body.scrip.value(), amount(700));

        // The renewed scrip pays.
        let handled = h.handle(
            &kit.purchase(kit.customer, TxId::random(), &body.scrip, &cs2, &tea(1)),
            UnixSecs::new(at + 2),
        );
        assert_eq!(handled.refusal, None);
        assert_eq!(h.node().state().tables.books.paid, amount(450));
    }
}

/// The broker's signed `Ack` of the report of `tx`, with `digest` as its `re`.
/// The broker's `Ack` to a report: unsigned (ADR 0008), from `sender`.
fn ack(kit: &Kit, tx: TxId, digest: Vec<u8>, sender: &KeyPair) -> Vec<u8> {
    ack_part(kit, tx, digest, sender, false)
}

/// An `Ack` to a report from `sender`, signed or (as the broker sends it) not.
fn ack_part(kit: &Kit, tx: TxId, digest: Vec<u8>, sender: &KeyPair, signed: bool) -> Vec<u8> {
    let header = Header::new(kit.suite, Label::Ack, tx, sender.uid());
    let body = AckBody {
        re: Re {
            sender: kit.merchant.uid(),
            label: Label::PurchaseCompleted,
            digest,
        },
        deadline: None,
    };
    let part = if signed {
        sign(sender, &header, &body).expect("sign").into()
    } else {
        shared::wire::Part::Clear {
            body: shared::wire::bodies::Body::to_bytes(&body),
        }
    };
    Frame::new(header, vec![part]).encode().expect("encode")
}

#[test]
fn reports_are_owed_until_the_broker_acknowledges_them() {
    let mut h = Harness::new(Suite::Modern);
    let kit = Kit::new(Suite::Modern);
    let (v0, cs0) = h.issue_to(kit.customer, 1_000);
    let tx = TxId::random();
    let handled = h.handle(&kit.purchase(kit.customer, tx, &v0, &cs0, &tea(1)), NOW);
    let report = handled.requests[0].clone();
    assert_eq!(h.node().pending_reports(), vec![report.clone()]);

    // Still owed after a restart, byte for byte.
    h.reopen();
    assert_eq!(h.node().pending_reports(), vec![report.clone()]);

    let owed = h.node().state().tables.unreported[&tx];
    let digest = report_digest(kit.suite, tx, kit.merchant.uid(), &owed).expect("digest");
    // The broker computes the same digest from the frame it received.
    let frame = Frame::decode(&report.frame).expect("decode");
    let v = frame
        .part(0)
        .expect("part")
        .verify_signed::<PurchaseCompletedX3>(kit.merchant.public())
        .expect("verify");
    assert_eq!(
        shared::wire::digest_of_verified(&frame.header, &[&v.evidence]).expect("digest"),
        digest
    );

    let before = h.snapshot();
    let outcomes = [
        // From someone who is not the broker.
        (
            ack(&kit, tx, digest.clone(), kit.other),
            AckError::NotTheBroker(kit.other.uid()),
        ),
        // Signed: the broker sends this Ack unsigned, so a signed one is not it.
        (
            ack_part(&kit, tx, digest.clone(), kit.broker, true),
            AckError::Wire(shared::wire::WireError::WrongPartKind {
                expected: "Clear",
                found: "Signed",
            }),
        ),
        // Another digest.
        (ack(&kit, tx, vec![0; 32], kit.broker), AckError::NotPending),
        // Another tx.
        (
            ack(&kit, TxId::random(), digest.clone(), kit.broker),
            AckError::NotPending,
        ),
    ];
    for (bytes, expected) in outcomes {
        assert_eq!(
            h.node_mut().handle_reply(&bytes, NOW).expect("handle"),
            ReplyOutcome::Discarded(expected)
        );
    }
    assert_eq!(h.snapshot(), before);

    let good = ack(&kit, tx, digest, kit.broker);
    assert_eq!(
        h.node_mut().handle_reply(&good, NOW).expect("handle"),
        ReplyOutcome::Recorded
    );
    h.assert_conserved();
    assert!(h.node().pending_reports().is_empty());
    assert!(h.node().state().tables.unreported.is_empty());
    let len = h.node().log().len().expect("len");
    // A repeated Ack is discarded.
    assert_eq!(
        h.node_mut().handle_reply(&good, NOW).expect("handle"),
        ReplyOutcome::Discarded(AckError::NotPending)
    );
    assert_eq!(h.node().log().len().expect("len"), len);
}

#[test]
fn reopen_and_replay_give_the_live_state_and_tables() {
    for suite in Suite::ALL {
        let mut h = Harness::new(suite);
        let kit = Kit::new(suite);
        let (v0, cs0) = h.issue_to(kit.customer, 1_000);
        let (w0, ws0) = h.issue_to(kit.other, 500);
        let tx = TxId::random();
        let purchase = kit.purchase(kit.customer, tx, &v0, &cs0, &tea(1));
        let first = h.handle(&purchase, NOW);
        let renewal = kit.renew(kit.other, TxId::random(), &w0, &ws0);
        let renewed = h.handle(&renewal, UnixSecs::new(w0.body.expires + 10));
        assert_eq!(renewed.refusal, None);

        let live_state = h.node().state().tables.clone();
        let live_rows = h.snapshot();
        assert_eq!(live_rows.0, 4);

        // Replay into a fresh file gives the same tables, byte for byte.
        let scratch = tempfile::tempdir().expect("dir");
        let db = redb::Database::create(scratch.path().join("replay.redb")).expect("db");
        let mirror = Mirror::new(crate::core::state::State::new());
        h.node().log().replay_into(&mirror, &db).expect("replay");
        assert_eq!(
            shared::events::dump_projection(&db, &mirror).expect("dump"),
            live_rows.1
        );
        assert_eq!(mirror.into_state().tables, live_state);
        assert_eq!(rows_of(h.node().state()).expect("rows"), live_rows.1);

        // Reopen: same state, same tables; repeats still get the first reply's bytes.
        h.reopen();
        assert_eq!(h.node().state().tables, live_state);
        assert_eq!(h.snapshot(), live_rows);
        let again = h.handle(&purchase, NOW.saturating_add_secs(1));
        assert_eq!(again.reply, first.reply);
        let again = h.handle(&renewal, UnixSecs::new(w0.body.expires + 11));
        assert_eq!(again.reply, renewed.reply);
        assert_eq!(h.snapshot(), live_rows);
    }
}

#[test]
fn a_node_whose_tables_disagree_with_its_log_does_not_open() {
    let mut h = Harness::new(Suite::Modern);
    let kit = Kit::new(Suite::Modern);
    h.issue_to(kit.customer, 1_000);
    let node = h.node.take().expect("node");
    let (_, config) = node.close().expect("close");
    let path = h.dir.path().join("merchant.redb");
    {
        let db = redb::Database::open(&path).expect("db");
        let txn = db.begin_write().expect("txn");
        txn.open_table(crate::store::BOOKS)
            .expect("table")
            .remove(crate::store::BOOKS_KEY)
            .expect("remove");
        txn.commit().expect("commit");
    }
    let peers = kit.state().peer_keys().cloned().collect::<Vec<_>>();
    assert!(matches!(
        MerchantNode::open(&path, kit.merchant.clone(), config, peers),
        Err(super::NodeError::Inconsistent(_))
    ));
}

#[test]
fn issuance_refuses_zero_and_a_key_that_is_not_the_mints() {
    let mut h = Harness::new(Suite::Modern);
    let kit = Kit::new(Suite::Modern);
    let before = h.snapshot();
    let refused =
        h.node_mut()
            .issue_vendor_scrip(kit.customer.uid(), amount(0), TxId::random(), NOW);
    assert!(matches!(
        refused,
        Err(super::NodeError::Refused(r)) if r.code == ErrorCode::AmountOutOfRange
    ));
    assert_eq!(h.snapshot(), before);
    let dir = tempfile::tempdir().expect("dir");
    assert!(matches!(
        MerchantNode::open(
            dir.path().join("m.redb"),
            kit.customer.clone(),
            kit.config(),
            Vec::new()
        ),
        Err(super::NodeError::KeyMismatch { .. })
    ));
}

/// Section 4's spent-once property at the merchant: many attempts to spend one scrip (purchases and
/// renewals mixed, each its own tx), delivered one after another as the node's actor
/// serializes them: exactly one succeeds, every other is `Spent`, and the value adds up.
#[test]
fn one_scrip_spent_a_thousand_times_succeeds_once() {
    let suite = Suite::Paper;
    let mut h = Harness::new(suite);
    let kit = Kit::new(suite);
    let (v0, cs0) = h.issue_to(kit.customer, 1_000);
    let frames: Vec<Vec<u8>> = (0..1_000)
        .map(|i| {
            let tx = TxId::random();
            let frame = if i % 3 == 0 {
                kit.renew(kit.customer, tx, &v0, &cs0)
            } else {
                kit.purchase(kit.customer, tx, &v0, &cs0, &tea(1 + i % 2))
            };
            frame.encode().expect("encode")
        })
        .collect();
    let mut ok = 0;
    for (i, bytes) in (0u64..).zip(&frames) {
        // A hundred a second: within one customer's default request rate (section 10).
        let now = NOW.saturating_add_secs(i / 100);
        let handled = h.node_mut().handle(bytes, now).expect("handle");
        match handled.refusal {
            None => ok += 1,
            Some(r) => assert_eq!(r.code, ErrorCode::Spent, "{}", r.message),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(h.node().log().len().expect("len"), 2);
    assert!(h.node().state().tables.live.get(&v0.id()).is_none());
    h.assert_conserved();
}

mod opened_ahead;
mod storage_faults;
mod top_up;

/// The broker's answers that arrive together are recorded in one call: every `Ack` of a
/// pending report in one commit, in order (so an `Ack` repeated in the same batch finds
/// its report already acknowledged), anything else discarded as `handle_reply` would.
#[test]
fn acks_that_arrive_together_are_recorded_together() {
    let mut h = Harness::new(Suite::Paper);
    let kit = Kit::new(Suite::Paper);
    let (v0, cs0) = h.issue_to(kit.customer, 1_000);
    let (w0, ws0) = h.issue_to(kit.other, 1_000);
    let (one, two) = (TxId::random(), TxId::random());
    h.handle(&kit.purchase(kit.customer, one, &v0, &cs0, &tea(1)), NOW);
    let second = h.handle(&kit.purchase(kit.other, two, &w0, &ws0, &tea(2)), NOW);
    assert_eq!(second.refusal, None);
    assert_eq!(h.node().pending_reports().len(), 2);
    let acks: Vec<Vec<u8>> = [one, two]
        .iter()
        .map(|tx| {
            let owed = h.node().state().tables.unreported[tx];
            let digest = report_digest(kit.suite, *tx, kit.merchant.uid(), &owed).expect("digest");
            ack(&kit, *tx, digest, kit.broker)
        })
        .collect();
    let stranger = ack(&kit, TxId::random(), vec![0; 32], kit.broker);
    let len = h.node().log().len().expect("len");

    let outcomes: Vec<ReplyOutcome> = h
        .node_mut()
        .handle_replies(&[&acks[0], &stranger, &acks[1], &acks[0]], NOW)
        .into_iter()
        .map(|r| r.expect("handled"))
        .collect();
    assert_eq!(
        outcomes,
        [
            ReplyOutcome::Recorded,
            ReplyOutcome::Discarded(AckError::NotPending),
            ReplyOutcome::Recorded,
            ReplyOutcome::Discarded(AckError::NotPending),
        ]
    );
    assert_eq!(h.node().log().len().expect("len"), len + 2);
    assert!(h.node().pending_reports().is_empty());
    h.assert_conserved();
    let live = h.snapshot();
    h.reopen();
    assert_eq!(h.snapshot(), live, "replay gives the same state and tables");
}
