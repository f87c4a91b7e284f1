//! The three-party flows of the wallet against stand-in nodes that open its requests with
//! the `shared::wire` openers and answer with the wire builders: 6.2 (both orders of the
//! two outcome messages, a reopen between them), 6.3 (with and without change), 6.7 (OK
//! and NOK). Every money-moving test checks that the value the wallet held is conserved.

// Test helpers (not only #[test] functions) unwrap: a panic is the report.
#![allow(clippy::unwrap_used)]

mod support;

use customer_cli::WalletError;
use customer_cli::core::{HistoryKind, NextStep, PendingStatus};
use shared::UnixSecs;
use shared::wire::Label;
use shared::wire::bodies::{
    AckBody, OrderId, OrderInfo, PurchaseInitiatedX0, PurchaseRequestX1, PurchaseResponseX2,
    Receipt, VendorWithdrawRequestX0, VendorWithdrawRequestX1, VendorWithdrawResultX4,
};
use shared::wire::{Decision, Re, ScripWithSecret, digest_of_verified};
use shared::{Amount, ErrorCode, Suite};
use support::*;

fn held_value(s: &Setup, producer: shared::Uid) -> u64 {
    s.wallet
        .scrip(producer)
        .map_or(0, |h| h.scrip.value().minor())
}

/// 6.2: B0 of 1500, W = 1000: the notice, step 2 (X1 = B0, cs_hash, W with CS_B0 for B;
/// X2 = W for M), then B1 of 500 and V0 of 1000, in both orders, with a reopen between
/// them; B0 is committed to the tx until the broker's decision.
#[test]
fn obtain_vendor_scrip_in_both_orders_and_suites() {
    for suite in Suite::ALL {
        for change_first in [true, false] {
            let mut s = Setup::new(suite);
            let (b0, ex) = s.pending_exchange(1500, 1000);
            let broker = s.broker.keys.uid();
            let merchant = s.merchant.keys.uid();
            assert_eq!(ex.x1.scrip, b0);
            assert_eq!(ex.x1.value, Amount::from_minor(1000));
            assert_eq!(ex.x2.value, Amount::from_minor(1000));
            assert_eq!(ex.frame.header.sender, s.wallet.uid());
            // B0 is committed: no top-up, withdrawal or second exchange while it is.
            assert!(matches!(
                s.wallet.withdraw_broker_scrip(UnixSecs::new(NOW)),
                Err(WalletError::ScripBusy { scrip_id, .. }) if scrip_id == b0.id()
            ));
            let (change, b1) = s.change_delivery(&ex);
            let (vendor, v0, v0_cs) = s.vendor_scrip_response(&ex);
            let (first, second) = if change_first {
                (change, vendor)
            } else {
                (vendor, change)
            };
            let p = s.wallet.pending().next().unwrap();
            assert_eq!(
                p.next_steps(broker),
                [NextStep::AskStatus(broker), NextStep::Resend]
            );
            s.wallet.handle_reply(&first, UnixSecs::new(NOW)).unwrap();
            assert_eq!(s.wallet.pending().count(), 1, "one of two messages in");
            let mut s = s.reopen();
            // After a restart the wallet knows what it still lacks.
            let p = s.wallet.pending().next().unwrap();
            let owed = if change_first {
                NextStep::AskStatus(merchant)
            } else {
                NextStep::AskStatus(broker)
            };
            assert_eq!(p.next_steps(broker), [owed]);
            s.wallet.handle_reply(&second, UnixSecs::new(NOW)).unwrap();
            assert_eq!(s.wallet.pending().count(), 0);
            let (b1, _) = b1.unwrap();
            assert_eq!(s.wallet.broker_scrip().unwrap().scrip, b1);
            assert_eq!(s.wallet.scrip(merchant).unwrap().scrip, v0);
            assert_eq!(s.wallet.customer_secret(merchant).unwrap(), v0_cs);
            // Conservation: B0 = B1 + V0.
            assert_eq!(held_value(&s, broker) + held_value(&s, merchant), 1500);
            // M's undertaking is kept as evidence of the settling event.
            let events: Vec<_> = s.wallet.log().iter().unwrap().map(Result::unwrap).collect();
            let settled = events
                .iter()
                .find(|e| {
                    matches!(
                        e.kind,
                        customer_cli::core::WalletEvent::ExchangeSettled { .. }
                    )
                })
                .unwrap();
            assert_eq!(settled.evidence.len(), 2);
            assert_eq!(settled.evidence[1].signer, merchant);
            s.wallet.check_tables().unwrap();
            // Section 4: one VendorScrip per merchant; the next exchange is refused locally.
            assert!(matches!(
                s.wallet
                    .obtain_vendor_scrip(merchant, Amount::from_minor(1), UnixSecs::new(NOW)),
                Err(WalletError::VendorScripLive { .. })
            ));
        }
    }
}

/// 6.2 with W = B0: no change scrip; B0 is spent and the wallet holds only V0.
#[test]
fn obtain_vendor_scrip_without_change() {
    let mut s = Setup::new(Suite::Modern);
    let (v0, _) = s.exchange(700, 700);
    assert_eq!(s.wallet.broker_scrip(), None);
    assert_eq!(s.wallet.scrip(s.merchant.keys.uid()).unwrap().scrip, v0);
    assert_eq!(v0.value(), Amount::from_minor(700));
}

/// The pending notice of 6.2 is refused locally when it could not be paid or sealed.
#[test]
fn an_exchange_that_cannot_be_paid_saves_nothing() {
    let mut s = Setup::new(Suite::Paper);
    s.register();
    let merchant = s.merchant.keys.uid();
    let before = s.snapshot();
    assert!(matches!(
        s.wallet
            .obtain_vendor_scrip(merchant, Amount::from_minor(5), UnixSecs::new(NOW)),
        Err(WalletError::NoScrip { .. })
    ));
    s.obtain(100);
    assert!(matches!(
        s.wallet.obtain_vendor_scrip(merchant, Amount::from_minor(5), UnixSecs::new(NOW)),
        Err(WalletError::UnknownPeer { uid }) if uid == merchant
    ));
    s.learn_merchant();
    assert!(matches!(
        s.wallet
            .obtain_vendor_scrip(merchant, Amount::from_minor(101), UnixSecs::new(NOW)),
        Err(WalletError::InsufficientScrip { .. })
    ));
    assert!(matches!(
        s.wallet
            .obtain_vendor_scrip(merchant, Amount::ZERO, UnixSecs::new(NOW)),
        Err(WalletError::ZeroValue)
    ));
    assert_ne!(s.snapshot(), before, "only 6.1 and 6.0b changed the wallet");
}

fn tea(quantity: u64) -> OrderInfo {
    OrderInfo {
        item_id: "tea".into(),
        name: "Green tea".into(),
        unit_price: Amount::from_minor(150),
        quantity,
        order_id: OrderId::random(),
    }
}

/// 6.3 as B and M see it, and M's reply as `merchant::core::buy_item` builds it.
fn buy(s: &mut Setup, order: &OrderInfo) -> (Vec<u8>, Vec<u8>, Option<shared::Scrip>) {
    let (ack, _, response, change) = buy_parts(s, order);
    (ack, response.bytes, change)
}

/// M's view of a purchase request: enough to build tampered replies.
struct Response {
    frame: shared::wire::Frame,
    body: PurchaseResponseX2,
    change: Option<(shared::Scrip, shared::CustomerSecret)>,
    bytes: Vec<u8>,
}

fn buy_parts(
    s: &mut Setup,
    order: &OrderInfo,
) -> (
    Vec<u8>,
    shared::wire::Frame,
    Response,
    Option<shared::Scrip>,
) {
    let merchant = s.merchant.keys.uid();
    let (initiated, purchase) = s
        .wallet
        .buy_item(merchant, order.clone(), UnixSecs::new(NOW))
        .unwrap();
    assert_eq!(initiated.label, Label::PurchaseInitiated);
    assert_eq!(initiated.to, s.broker.keys.uid());
    assert_eq!(purchase.label, Label::PurchaseRequest);
    assert_eq!(purchase.to, merchant);
    assert_eq!(initiated.tx, purchase.tx);
    let customer = customer_keys(s.suite);
    // Step 1: signed in the clear (the broker does no private-key operation to read it).
    let f1 = shared::wire::Frame::decode(&initiated.frame).unwrap();
    let x0 = f1
        .part(0)
        .unwrap()
        .verify_signed::<PurchaseInitiatedX0>(customer.public())
        .unwrap();
    assert_eq!(x0.body.merchant, merchant);
    assert_eq!(x0.body.value, order.total().unwrap());
    let ack = reply_unsigned_ack(
        s.broker.keys,
        &f1,
        &AckBody {
            re: Re::new(
                &f1.header,
                digest_of_verified(&f1.header, &[&x0.evidence]).unwrap(),
            ),
            deadline: None,
        },
    );
    // Step 2: sealed to M with CS_V0, validated by M's Mint.
    let f2 = shared::wire::Frame::decode(&purchase.frame).unwrap();
    let opened = f2.part(0).unwrap().open_sealed(s.merchant.keys).unwrap();
    let x1 = opened
        .signed::<PurchaseRequestX1>(customer.public())
        .unwrap();
    let cs = opened.secret(x1.body.scrip.id(), &x1.body.cs_hash).unwrap();
    s.merchant
        .mint
        .validate(
            &x1.body.scrip,
            cs.expose(),
            shared::UnixSecs::new(NOW),
            shared::ExpiryRule::Strict,
        )
        .unwrap();
    assert_eq!(x1.body.order, *order);
    let paid = order.total().unwrap();
    let change_value = x1.body.scrip.value().checked_sub(paid).unwrap();
    let change = (!change_value.is_zero()).then(|| s.merchant.issue(change_value.minor(), NOW));
    let body = PurchaseResponseX2 {
        re: Re::new(
            &f2.header,
            digest_of_verified(&f2.header, &[&x1.evidence]).unwrap(),
        ),
        change: change.as_ref().map(|(v1, cs)| ScripWithSecret {
            scrip: v1.clone(),
            cs_hash: cs.cs_hash(s.suite),
        }),
        order: order.clone(),
        receipt: Receipt {
            order_id: order.order_id,
            paid,
            issued_at: NOW,
        },
    };
    let bytes = reply_sealed(
        s.merchant.keys,
        &f2,
        &body,
        change.as_ref().map(|(v1, cs)| (v1.id(), cs)),
    );
    let v1 = change.as_ref().map(|(v1, _)| v1.clone());
    (
        ack,
        f1,
        Response {
            frame: f2,
            body,
            change,
            bytes,
        },
        v1,
    )
}

/// The merchant's `response` to two teas (300) paid with `v0` of 1050 completes the
/// purchase: V1 of 750 held, value conserved (V0 = W_P + V1), nothing pending.
fn bought_two_teas(s: &mut Setup, response: &[u8], v0: &shared::Scrip, v1: Option<shared::Scrip>) {
    let merchant = s.merchant.keys.uid();
    let done = s.wallet.handle_reply(response, UnixSecs::new(NOW)).unwrap();
    assert_eq!(
        done.what,
        HistoryKind::ItemBought {
            merchant,
            paid: Amount::from_minor(300),
            change: Amount::from_minor(750),
        }
    );
    assert_eq!(s.wallet.scrip(merchant).unwrap().scrip, v1.unwrap());
    assert_eq!(held_value(s, merchant) + 300, v0.value().minor());
    assert_eq!(s.wallet.pending().count(), 0);
}

/// ADR 0008: the broker's `Ack` to step 1 is unsigned, and the wallet takes one only from
/// the pinned broker, answering exactly its pending request; anything else changes nothing.
#[test]
fn the_step_1_ack_is_unsigned_from_the_broker_and_names_the_request() {
    let mut s = Setup::new(Suite::Modern);
    s.exchange(1500, 1050);
    let merchant = s.merchant.keys.uid();
    let (initiated, _) = s
        .wallet
        .buy_item(merchant, tea(1), UnixSecs::new(NOW))
        .unwrap();
    let f1 = shared::wire::Frame::decode(&initiated.frame).unwrap();
    let customer = customer_keys(Suite::Modern);
    let x0 = f1
        .part(0)
        .unwrap()
        .verify_signed::<PurchaseInitiatedX0>(customer.public())
        .unwrap();
    let re = Re::new(
        &f1.header,
        digest_of_verified(&f1.header, &[&x0.evidence]).unwrap(),
    );
    let ack = AckBody {
        re: re.clone(),
        deadline: None,
    };
    let signed = reply_clear(s.broker.keys, &f1, &ack);
    assert!(matches!(
        refused(&mut s, &signed),
        WalletError::BadReply(shared::wire::WireError::WrongPartKind {
            expected: "Clear",
            found: "Signed"
        })
    ));
    let from_merchant = reply_unsigned_ack(s.merchant.keys, &f1, &ack);
    assert!(matches!(
        refused(&mut s, &from_merchant),
        WalletError::UnexpectedSender { .. }
    ));
    let mut other = re;
    other.digest[0] ^= 1;
    let wrong = reply_unsigned_ack(
        s.broker.keys,
        &f1,
        &AckBody {
            re: other,
            deadline: None,
        },
    );
    assert!(matches!(refused(&mut s, &wrong), WalletError::ReMismatch));
    let done = s
        .wallet
        .handle_reply(
            &reply_unsigned_ack(s.broker.keys, &f1, &ack),
            UnixSecs::new(NOW),
        )
        .unwrap();
    assert_eq!(
        done.what,
        HistoryKind::Step {
            label: Label::PurchaseInitiated
        }
    );
}

/// 6.3: two teas (300) from V0 of 1050: the broker's Ack, then V1 of 750 (a reopen
/// between); then five teas (750) exactly: no change, V1 gone.
#[test]
fn buy_item_with_and_without_change_in_both_suites() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let (v0, _) = s.exchange(1500, 1050);
        let merchant = s.merchant.keys.uid();
        let order = tea(2);
        let (ack, response, v1) = buy(&mut s, &order);
        // While the purchase is pending V0 is committed to it.
        assert!(matches!(
            s.wallet.withdraw_vendor_scrip(merchant, UnixSecs::new(NOW)),
            Err(WalletError::ScripBusy { scrip_id, .. }) if scrip_id == v0.id()
        ));
        let done = s.wallet.handle_reply(&ack, UnixSecs::new(NOW)).unwrap();
        assert_eq!(
            done.what,
            HistoryKind::Step {
                label: Label::PurchaseInitiated
            }
        );
        let mut s = s.reopen();
        bought_two_teas(&mut s, &response, &v0, v1);
        // The rest exactly: five teas = 750, no change, V1 gone.
        let (ack, response, none) = buy(&mut s, &tea(5));
        assert!(none.is_none());
        s.wallet
            .handle_reply(&response, UnixSecs::new(NOW))
            .unwrap();
        s.wallet.handle_reply(&ack, UnixSecs::new(NOW)).unwrap();
        assert_eq!(s.wallet.scrip(merchant), None);
        assert_eq!(s.wallet.pending().count(), 0);
        s.wallet.check_tables().unwrap();
        // Nothing left to pay with.
        assert!(matches!(
            s.wallet.buy_item(merchant, tea(1), UnixSecs::new(NOW)),
            Err(WalletError::NoScrip { .. })
        ));
    }
}

/// 6.3: the record of step 1's `Ack` is not flushed on its own (the wallet sends step 2
/// right after it), so a crash may lose it. The wallet then resumes with step 1 pending:
/// its repeat carries the saved bodies (the broker's digest matches, section 7), the
/// broker's stored `Ack` is taken again, and the merchant's stored response completes the
/// purchase, value conserved.
#[test]
fn a_purchase_whose_step_1_ack_was_lost_resumes_from_step_1() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let (v0, _) = s.exchange(1500, 1050);
        let merchant = s.merchant.keys.uid();
        let (ack, response, v1) = buy(&mut s, &tea(2));
        let tx = s.wallet.pending().next().unwrap().request.tx();
        // The crash: step 2 was answered, the Ack's record is gone.
        let mut s = s.reopen();
        let repeat = s.wallet.resend(tx, Label::PurchaseInitiated).unwrap();
        let first = shared::wire::Frame::decode(&repeat.frame).unwrap();
        let customer = customer_keys(suite);
        let x0 = first
            .part(0)
            .unwrap()
            .verify_signed::<PurchaseInitiatedX0>(customer.public())
            .unwrap();
        assert_eq!((x0.body.merchant, x0.body.value.minor()), (merchant, 300));
        let done = s.wallet.handle_reply(&ack, UnixSecs::new(NOW)).unwrap();
        assert_eq!(
            done.what,
            HistoryKind::Step {
                label: Label::PurchaseInitiated
            }
        );
        bought_two_teas(&mut s, &response, &v0, v1);
        s.wallet.check_tables().unwrap();
    }
}

/// 6.3 as the wallet's client runs it (`Wallet::start_buy`): both requests are saved
/// before step 1 leaves, and step 2's frame, rendered meanwhile, carries its saved bodies
/// sealed to the merchant. A rendering never collected loses nothing: `resend` renders
/// step 2 again from the save.
#[test]
fn start_buy_saves_both_requests_and_renders_step_2_meanwhile() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.exchange(1500, 1050);
        let merchant = s.merchant.keys.uid();
        let order = tea(2);
        let (first, rendering) = s
            .wallet
            .start_buy(merchant, order.clone(), UnixSecs::new(NOW))
            .unwrap();
        let mut saved: Vec<(shared::TxId, Label)> = s
            .wallet
            .pending()
            .map(|p| (p.request.tx(), p.request.label()))
            .collect();
        saved.sort_by_key(|(_, label)| *label as u16);
        assert_eq!(
            saved,
            [
                (first.tx, Label::PurchaseInitiated),
                (first.tx, Label::PurchaseRequest)
            ]
        );
        let customer = customer_keys(suite);
        let x1_of = |frame: &[u8]| {
            shared::wire::Frame::decode(frame)
                .unwrap()
                .part(0)
                .unwrap()
                .open_sealed(s.merchant.keys)
                .unwrap()
                .signed::<PurchaseRequestX1>(customer.public())
                .unwrap()
                .body
        };
        let second = rendering.wait().unwrap();
        assert_eq!(
            (second.tx, second.label, second.to),
            (first.tx, Label::PurchaseRequest, merchant)
        );
        let x1 = x1_of(&second.frame);
        assert_eq!(x1.order, order);
        let again = s.wallet.resend(first.tx, Label::PurchaseRequest).unwrap();
        assert_eq!(x1_of(&again.frame), x1);
    }
}

/// 6.3: an order worth more than V0 is refused locally and saves nothing.
#[test]
fn an_order_above_the_scrip_saves_nothing() {
    let mut s = Setup::new(Suite::Paper);
    s.exchange(1000, 300);
    let before = s.snapshot();
    assert!(matches!(
        s.wallet
            .buy_item(s.merchant.keys.uid(), tea(3), UnixSecs::new(NOW)),
        Err(WalletError::InsufficientScrip { .. })
    ));
    assert_eq!(s.snapshot(), before);
}

/// 6.7 as M and B see step 1: part 0 sealed to M (X0 = V0, CS_V0), part 1 sealed to B
/// (IdProof, X1 = W, UID_M); M's Ack with its deadline.
fn withdraw(s: &mut Setup) -> (shared::wire::Frame, Vec<u8>) {
    let merchant = s.merchant.keys.uid();
    let out = s
        .wallet
        .withdraw_vendor_scrip(merchant, UnixSecs::new(NOW))
        .unwrap();
    assert_eq!(out.to, merchant);
    let frame = shared::wire::Frame::decode(&out.frame).unwrap();
    assert_eq!(frame.parts.len(), 2);
    let customer = customer_keys(s.suite);
    let to_m = frame.part(0).unwrap().open_sealed(s.merchant.keys).unwrap();
    let x0 = to_m
        .signed::<VendorWithdrawRequestX0>(customer.public())
        .unwrap();
    let cs = to_m.secret(x0.body.scrip.id(), &x0.body.cs_hash).unwrap();
    s.merchant
        .mint
        .validate(
            &x0.body.scrip,
            cs.expose(),
            shared::UnixSecs::new(NOW),
            shared::ExpiryRule::Strict,
        )
        .unwrap();
    let to_b = frame.part(1).unwrap().open_sealed(s.broker.keys).unwrap();
    to_b.verify_id_proof(customer.public(), &s.id).unwrap();
    let x1 = to_b
        .signed::<VendorWithdrawRequestX1>(customer.public())
        .unwrap();
    assert_eq!(x1.body.merchant, merchant);
    assert_eq!(x1.body.value, x0.body.scrip.value());
    let ack = reply_clear(
        s.merchant.keys,
        &frame,
        &AckBody {
            re: Re::new(
                &frame.header,
                digest_of_verified(&frame.header, &[&x0.evidence]).unwrap(),
            ),
            deadline: Some(NOW + 600),
        },
    );
    (frame, ack)
}

fn result(s: &Setup, tx: shared::TxId, decision: Decision) -> Vec<u8> {
    delivery_sealed(
        s.broker.keys,
        s.suite,
        tx,
        &VendorWithdrawResultX4 {
            merchant: s.merchant.keys.uid(),
            decision,
            info: "decided".into(),
        },
        None,
    )
}

/// 6.7: a NOK leaves V0 live (and free for a second try); an OK deletes it.
#[test]
fn withdraw_vendor_scrip_nok_then_ok_in_both_suites() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let (v0, _) = s.exchange(1200, 800);
        let merchant = s.merchant.keys.uid();
        let (frame, ack) = withdraw(&mut s);
        s.wallet.handle_reply(&ack, UnixSecs::new(NOW)).unwrap();
        // The Ack keeps the request open: V0 stays committed; the broker's result is owed.
        assert_eq!(s.wallet.pending().count(), 1);
        assert_eq!(s.next_steps(), [NextStep::AskStatus(s.broker.keys.uid())]);
        assert_eq!(
            s.wallet.pending().next().unwrap().status,
            PendingStatus::Sent
        );
        let nok = result(
            &s,
            frame.header.tx,
            Decision::nok(ErrorCode::InsufficientFunds, "M cannot pay"),
        );
        let mut s = s.reopen();
        let done = s.wallet.handle_reply(&nok, UnixSecs::new(NOW)).unwrap();
        assert_eq!(
            done.what,
            HistoryKind::VendorWithdrawDecided {
                merchant,
                ok: false,
                value: Amount::from_minor(800)
            }
        );
        assert_eq!(s.wallet.scrip(merchant).unwrap().scrip, v0);
        assert_eq!(s.wallet.pending().count(), 0);
        // Again, OK this time; the result before M's Ack.
        let (frame, ack) = withdraw(&mut s);
        let ok = result(&s, frame.header.tx, Decision::Ok);
        s.wallet.handle_reply(&ok, UnixSecs::new(NOW)).unwrap();
        assert_eq!(s.wallet.scrip(merchant), None);
        // The late Ack finds nothing pending and changes nothing.
        let before = s.snapshot();
        assert!(matches!(
            s.wallet.handle_reply(&ack, UnixSecs::new(NOW)),
            Err(WalletError::NoPendingRequest { .. })
        ));
        assert_eq!(s.snapshot(), before);
        s.wallet.check_tables().unwrap();
    }
}

// --- refusals: forged, tampered, misdirected, repeated -------------------------------

/// Feeds `bytes` and asserts it is refused with nothing changed (state, log, tables).
fn refused(s: &mut Setup, bytes: &[u8]) -> WalletError {
    let before = s.snapshot();
    let err = s
        .wallet
        .handle_reply(bytes, UnixSecs::new(NOW))
        .expect_err("the message must be refused");
    assert_eq!(
        s.snapshot(),
        before,
        "a refused message changed the wallet: {err}"
    );
    s.wallet.check_tables().unwrap();
    err
}

/// B's `ChangeBrokerScrip` as a test sends it (6.2 step 5, 6.5 step 6): `outcome` in `tx`
/// with the change and the merchant's undertaking, signed by `signer` and sealed to the
/// customer with the change's CustomerSecret unless `secret` is false. A tampered one is
/// the genuine one with one field changed.
#[derive(Clone)]
struct ChangeMsg<'a> {
    signer: &'a shared::KeyPair,
    tx: shared::TxId,
    outcome: Decision,
    change: Option<(&'a shared::Scrip, &'a shared::CustomerSecret)>,
    undertaking: Option<shared::wire::Undertaking>,
    secret: bool,
}

impl<'a> ChangeMsg<'a> {
    /// `broker`'s OK in `tx` with `change` (and its secret) and `undertaking`.
    fn ok(
        broker: &'a shared::KeyPair,
        tx: shared::TxId,
        change: Option<(&'a shared::Scrip, &'a shared::CustomerSecret)>,
        undertaking: Option<shared::wire::Undertaking>,
    ) -> Self {
        ChangeMsg {
            signer: broker,
            tx,
            outcome: Decision::Ok,
            change,
            undertaking,
            secret: true,
        }
    }

    /// `broker`'s bare NOK in `tx` for `code`.
    fn nok(broker: &'a shared::KeyPair, tx: shared::TxId, code: ErrorCode, reason: &str) -> Self {
        ChangeMsg {
            outcome: Decision::nok(code, reason),
            ..ChangeMsg::ok(broker, tx, None, None)
        }
    }

    /// The frame.
    fn bytes(&self) -> Vec<u8> {
        let suite = self.signer.suite();
        let x4 = change_body(
            self.outcome.clone(),
            self.change.map(|(b1, cs)| ScripWithSecret {
                scrip: b1.clone(),
                cs_hash: cs.cs_hash(suite),
            }),
            self.undertaking.clone(),
        );
        let secret = self.change.filter(|_| self.secret);
        delivery_sealed(
            self.signer,
            suite,
            self.tx,
            &x4,
            secret.map(|(b1, cs)| (b1.id(), cs)),
        )
    }
}

/// 6.2 step 5: every way the broker's `ChangeBrokerScrip` can be wrong, each refused with
/// its exact error and no change; the genuine one applies once, a repeat changes nothing.
#[test]
fn tampered_change_deliveries_are_refused() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let (_, ex) = s.pending_exchange(1500, 1000);
        let tx = ex.frame.header.tx;
        let me = customer_keys(suite).uid();
        let m = s.merchant.keys.uid();
        let (b1, b1_cs) = s.broker.issue(500, NOW);
        let mk = s.merchant.keys;
        let good_u = || undertaking(mk, m, tx, 1000, me);
        let b = s.broker.keys;
        let forger = forger_keys(suite);
        let genuine = ChangeMsg::ok(b, tx, Some((&b1, &b1_cs)), Some(good_u()));
        // The genuine one but for its change.
        let ok_with = |change| ChangeMsg {
            change,
            ..genuine.clone()
        };

        // Signed by a key that is not the broker's, under the broker's UID.
        let header = shared::wire::Header::new(suite, Label::ChangeBrokerScrip, tx, b.uid());
        let x4 = change_body(
            Decision::Ok,
            Some(ScripWithSecret {
                scrip: b1.clone(),
                cs_hash: b1_cs.cs_hash(suite),
            }),
            Some(good_u()),
        );
        let bytes = shared::wire::Body::to_bytes(&x4);
        let sig = forger
            .sign(&shared::wire::sig_input(&header, &bytes).unwrap())
            .unwrap();
        let forged = shared::wire::Frame::new(
            header,
            vec![
                shared::wire::seal(
                    &header,
                    customer_keys(suite).public(),
                    &[
                        shared::wire::Inner::Signed { body: bytes, sig },
                        shared::wire::secret_inner(b1.id(), &b1_cs),
                    ],
                )
                .unwrap(),
            ],
        )
        .encode()
        .unwrap();
        assert!(matches!(
            refused(&mut s, &forged),
            WalletError::BadReply(shared::wire::WireError::BadSignature)
        ));
        // Sent by the merchant (a delivery only the broker makes).
        let e = refused(
            &mut s,
            &ChangeMsg {
                signer: mk,
                ..genuine.clone()
            }
            .bytes(),
        );
        assert!(
            matches!(e, WalletError::UnexpectedSender { expected, found } if expected == b.uid() && found == m)
        );
        // Another tx.
        let other = shared::TxId::random();
        let e = refused(
            &mut s,
            &ChangeMsg {
                tx: other,
                ..genuine.clone()
            }
            .bytes(),
        );
        assert!(matches!(e, WalletError::NoPendingRequest { tx } if tx == other));
        // Change of the wrong value (B0 − W = 500).
        let (b1_bad, b1_bad_cs) = s.broker.issue(600, NOW);
        let e = refused(&mut s, &ok_with(Some((&b1_bad, &b1_bad_cs))).bytes());
        assert!(matches!(e, WalletError::ValueMismatch { expected, found }
            if expected == Amount::from_minor(500) && found == Amount::from_minor(600)));
        // Change produced by someone else (the merchant's scrip).
        let (m_scrip, m_cs) = s.merchant.issue(500, NOW);
        let e = refused(&mut s, &ok_with(Some((&m_scrip, &m_cs))).bytes());
        assert!(matches!(e, WalletError::WrongProducer { .. }));
        // No change where 500 is due.
        let e = refused(&mut s, &ok_with(None).bytes());
        assert!(matches!(e, WalletError::ValueMismatch { .. }));
        // Change without its CustomerSecret.
        let e = refused(
            &mut s,
            &ChangeMsg {
                secret: false,
                ..genuine.clone()
            }
            .bytes(),
        );
        assert!(matches!(e, WalletError::SecretMismatch { scrip_id } if scrip_id == b1.id()));
        // Undertakings: forged, for another W, another customer, another tx; missing.
        for u in [
            undertaking(forger, m, tx, 1000, me),
            undertaking(s.merchant.keys, m, tx, 999, me),
            undertaking(s.merchant.keys, m, tx, 1000, forger.uid()),
            undertaking(s.merchant.keys, m, other, 1000, me),
        ] {
            let e = refused(
                &mut s,
                &ChangeMsg {
                    undertaking: Some(u),
                    ..genuine.clone()
                }
                .bytes(),
            );
            assert!(matches!(e, WalletError::BadUndertaking), "{e}");
        }
        let e = refused(
            &mut s,
            &ChangeMsg {
                undertaking: None,
                ..genuine.clone()
            }
            .bytes(),
        );
        assert!(matches!(e, WalletError::InconsistentDecision(_)));
        // A NOK that carries change.
        let nok = Decision::nok(ErrorCode::Spent, "B0 spent");
        let e = refused(
            &mut s,
            &ChangeMsg {
                outcome: nok,
                undertaking: None,
                ..genuine.clone()
            }
            .bytes(),
        );
        assert!(matches!(e, WalletError::InconsistentDecision(_)));

        // The genuine one applies; the same delivery again changes nothing.
        let genuine = genuine.bytes();
        s.wallet.handle_reply(&genuine, UnixSecs::new(NOW)).unwrap();
        assert_eq!(s.wallet.broker_scrip().unwrap().scrip, b1);
        let e = refused(&mut s, &genuine);
        assert!(matches!(
            e,
            WalletError::AlreadyReceived {
                label: Label::ChangeBrokerScrip,
                ..
            }
        ));
        // M's VendorScripResponse: wrong value, signed by the broker, then genuine, then again.
        let (v_bad, v_bad_cs) = s.merchant.issue(900, NOW);
        let wrong = reply_sealed(
            s.merchant.keys,
            &ex.frame,
            &shared::wire::bodies::VendorScripResponseX6 {
                re: ex.re.clone(),
                scrip: v_bad.clone(),
                cs_hash: v_bad_cs.cs_hash(suite),
            },
            Some((v_bad.id(), &v_bad_cs)),
        );
        assert!(matches!(
            refused(&mut s, &wrong),
            WalletError::ValueMismatch { .. }
        ));
        let (reply, v0, _) = s.vendor_scrip_response(&ex);
        let by_broker = {
            let f = shared::wire::Frame::decode(&reply).unwrap();
            let mut f = f.clone();
            f.header.sender = b.uid();
            f.encode().unwrap()
        };
        assert!(matches!(
            refused(&mut s, &by_broker),
            WalletError::UnexpectedSender { .. }
        ));
        s.wallet.handle_reply(&reply, UnixSecs::new(NOW)).unwrap();
        assert_eq!(s.wallet.scrip(m).unwrap().scrip, v0);
        // Both in: the exchange is over; either message again finds nothing pending.
        assert!(matches!(
            refused(&mut s, &reply),
            WalletError::NoPendingRequest { .. }
        ));
        assert!(matches!(
            refused(&mut s, &genuine),
            WalletError::NoPendingRequest { .. }
        ));
        // Conservation: 1500 = 500 + 1000.
        assert_eq!(held_value(&s, b.uid()) + held_value(&s, m), 1500);
    }
}

/// 6.2 step 5: a NOK `ChangeBrokerScrip` ends the exchange; B0 is live again and free
/// for other uses, and nothing from M is accepted afterwards.
#[test]
fn a_nok_exchange_leaves_b0_live() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let (b0, ex) = s.pending_exchange(1500, 1000);
        let tx = ex.frame.header.tx;
        let nok = ChangeMsg::nok(
            s.broker.keys,
            tx,
            ErrorCode::Expired,
            "the exchange expired",
        )
        .bytes();
        let mut s = s.reopen();
        let done = s.wallet.handle_reply(&nok, UnixSecs::new(NOW)).unwrap();
        assert_eq!(
            done.what,
            HistoryKind::ExchangeSettled {
                merchant: s.merchant.keys.uid(),
                ok: false,
                from: Amount::from_minor(1500),
                change: Amount::ZERO,
            }
        );
        assert_eq!(s.wallet.pending().count(), 0);
        assert_eq!(s.wallet.broker_scrip().unwrap().scrip, b0);
        let (late, _, _) = s.vendor_scrip_response(&ex);
        assert!(matches!(
            refused(&mut s, &late),
            WalletError::NoPendingRequest { .. }
        ));
        // B0 is free again: a withdrawal of it can start.
        s.wallet.withdraw_broker_scrip(UnixSecs::new(NOW)).unwrap();
    }
}

/// 6.3 step 4: a reply whose OI, receipt or change is not what the request implies is
/// refused with no change; the genuine one then completes.
#[test]
fn tampered_purchase_responses_are_refused() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.exchange(1500, 1000);
        let order = tea(2);
        let (_, _, r, _) = buy_parts(&mut s, &order);
        let (v1, v1_cs) = r.change.clone().unwrap();
        let m = s.merchant.keys;
        let send = |body: &PurchaseResponseX2, secret: bool| {
            reply_sealed(m, &r.frame, body, secret.then(|| (v1.id(), &v1_cs)))
        };
        let mut other_order = r.body.clone();
        other_order.order.quantity = 3;
        assert!(matches!(
            refused(&mut s, &send(&other_order, true)),
            WalletError::OrderMismatch
        ));
        let mut other_receipt = r.body.clone();
        other_receipt.receipt.paid = Amount::from_minor(299);
        assert!(matches!(
            refused(&mut s, &send(&other_receipt, true)),
            WalletError::OrderMismatch
        ));
        let mut other_id = r.body.clone();
        other_id.receipt.order_id = OrderId::random();
        assert!(matches!(
            refused(&mut s, &send(&other_id, true)),
            WalletError::OrderMismatch
        ));
        let mut no_change = r.body.clone();
        no_change.change = None;
        assert!(matches!(
            refused(&mut s, &send(&no_change, false)),
            WalletError::ValueMismatch { .. }
        ));
        assert!(matches!(
            refused(&mut s, &send(&r.body, false)),
            WalletError::SecretMismatch { .. }
        ));
        let forged = forged_sealed(
            forger_keys(suite),
            m,
            &r.frame,
            &r.body,
            Some((v1.id(), &v1_cs)),
        );
        assert!(matches!(
            refused(&mut s, &forged),
            WalletError::BadReply(shared::wire::WireError::BadSignature)
        ));
        let mut re = r.body.clone();
        re.re.digest[0] ^= 1;
        assert!(matches!(
            refused(&mut s, &send(&re, true)),
            WalletError::ReMismatch
        ));
        s.wallet.handle_reply(&r.bytes, UnixSecs::new(NOW)).unwrap();
        assert_eq!(s.wallet.scrip(m.uid()).unwrap().scrip, v1);
        // Done: only step 1 (not yet acknowledged) is pending in the tx now.
        assert!(matches!(
            refused(&mut s, &r.bytes),
            WalletError::UnexpectedLabel {
                request: Label::PurchaseInitiated,
                reply: Label::PurchaseResponse
            }
        ));
    }
}

/// 6.7: M's Ack without a deadline, the same Ack twice, a result naming another merchant
/// or sent by the merchant: each refused with no change.
#[test]
fn tampered_withdraw_messages_are_refused() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.exchange(1000, 400);
        let (frame, ack) = withdraw(&mut s);
        let tx = frame.header.tx;
        // The same Ack body without a deadline.
        let f = shared::wire::Frame::decode(&ack).unwrap();
        let body = f
            .part(0)
            .unwrap()
            .verify_signed::<AckBody>(s.merchant.keys.public())
            .unwrap()
            .body;
        let no_deadline = reply_clear(
            s.merchant.keys,
            &frame,
            &AckBody {
                re: body.re.clone(),
                deadline: None,
            },
        );
        assert!(matches!(
            refused(&mut s, &no_deadline),
            WalletError::MissingDeadline
        ));
        s.wallet.handle_reply(&ack, UnixSecs::new(NOW)).unwrap();
        assert!(matches!(
            refused(&mut s, &ack),
            WalletError::AlreadyReceived {
                label: Label::Ack,
                ..
            }
        ));
        let elsewhere = delivery_sealed(
            s.broker.keys,
            suite,
            tx,
            &VendorWithdrawResultX4 {
                merchant: s.broker.keys.uid(),
                decision: Decision::Ok,
                info: "paid".into(),
            },
            None,
        );
        assert!(matches!(
            refused(&mut s, &elsewhere),
            WalletError::UidMismatch { .. }
        ));
        let by_merchant = delivery_sealed(
            s.merchant.keys,
            suite,
            tx,
            &VendorWithdrawResultX4 {
                merchant: s.merchant.keys.uid(),
                decision: Decision::Ok,
                info: "paid".into(),
            },
            None,
        );
        assert!(matches!(
            refused(&mut s, &by_merchant),
            WalletError::UnexpectedSender { .. }
        ));
        let ok = result(&s, tx, Decision::Ok);
        s.wallet.handle_reply(&ok, UnixSecs::new(NOW)).unwrap();
        assert_eq!(s.wallet.scrip(s.merchant.keys.uid()), None);
        assert!(matches!(
            refused(&mut s, &ok),
            WalletError::NoPendingRequest { .. }
        ));
    }
}

// --- 6.5 top up VendorScrip ---------------------------------------------------------

/// 6.5 step 1 as B and M open it: part 0 sealed to B (IdProof, X0, CS_B0), part 1 sealed
/// to M (X1, CS_V0); B's Ack with its deadline (re over X0, the body B verifies).
fn top_up(s: &mut Setup, w_v: u64) -> (shared::wire::Frame, Vec<u8>) {
    let merchant = s.merchant.keys.uid();
    let out = s
        .wallet
        .top_up_vendor_scrip(merchant, Amount::from_minor(w_v), UnixSecs::new(NOW))
        .unwrap();
    assert_eq!(out.to, s.broker.keys.uid());
    let frame = shared::wire::Frame::decode(&out.frame).unwrap();
    assert_eq!(frame.parts.len(), 2);
    let customer = customer_keys(s.suite);
    let to_b = frame.part(0).unwrap().open_sealed(s.broker.keys).unwrap();
    to_b.verify_id_proof(customer.public(), &s.id).unwrap();
    let x0 = to_b
        .signed::<shared::wire::bodies::VendorTopUpRequestX0>(customer.public())
        .unwrap();
    let b_cs = to_b
        .secret(x0.body.broker_scrip.id(), &x0.body.cs_hash)
        .unwrap();
    s.broker
        .mint
        .validate(
            &x0.body.broker_scrip,
            b_cs.expose(),
            shared::UnixSecs::new(NOW),
            shared::ExpiryRule::Strict,
        )
        .unwrap();
    let to_m = frame.part(1).unwrap().open_sealed(s.merchant.keys).unwrap();
    let x1 = to_m
        .signed::<shared::wire::bodies::VendorTopUpRequestX1>(customer.public())
        .unwrap();
    let v_cs = to_m
        .secret(x1.body.vendor_scrip.id(), &x1.body.cs_hash)
        .unwrap();
    s.merchant
        .mint
        .validate(
            &x1.body.vendor_scrip,
            v_cs.expose(),
            shared::UnixSecs::new(NOW),
            shared::ExpiryRule::Strict,
        )
        .unwrap();
    assert_eq!(x0.body.top_up, Amount::from_minor(w_v));
    assert_eq!(x0.body.merchant, merchant);
    assert_eq!(x0.body.new_value, x1.body.new_value);
    assert_eq!(
        x1.body.new_value,
        x1.body
            .vendor_scrip
            .value()
            .checked_add(Amount::from_minor(w_v))
            .unwrap()
    );
    let ack = reply_clear(
        s.broker.keys,
        &frame,
        &AckBody {
            re: Re::new(
                &frame.header,
                digest_of_verified(&frame.header, &[&x0.evidence]).unwrap(),
            ),
            deadline: Some(NOW + 300),
        },
    );
    (frame, ack)
}

/// M's acceptance of a top-up, signed by `signer` under M's `VendorTopUpAccepted` header.
fn acceptance(
    signer: &shared::KeyPair,
    m: shared::Uid,
    tx: shared::TxId,
    x3: &shared::wire::bodies::VendorTopUpAcceptedX3,
) -> shared::wire::Undertaking {
    let header = shared::wire::Header::new(signer.suite(), Label::VendorTopUpAccepted, tx, m);
    let body = shared::wire::Body::to_bytes(x3);
    let sig = signer
        .sign(&shared::wire::sig_input(&header, &body).unwrap())
        .unwrap();
    shared::wire::Undertaking { body, sig }
}

/// 6.5: B0 of 1000 (after a 6.2 of 400 from 1400), V0 of 400, W_V = 250: V1 of 650 and
/// B1 of 750, in both orders with a reopen between; then a declined top-up leaves both.
#[test]
fn top_up_vendor_scrip_in_both_orders_and_suites() {
    for suite in Suite::ALL {
        for change_first in [true, false] {
            let mut s = Setup::new(suite);
            let (v0, _) = s.exchange(1400, 400);
            let b = s.broker.keys.uid();
            let m = s.merchant.keys.uid();
            let me = customer_keys(suite).uid();
            let (frame, ack) = top_up(&mut s, 250);
            let tx = frame.header.tx;
            // Both scrip are committed to the top-up.
            assert!(matches!(
                s.wallet.withdraw_vendor_scrip(m, UnixSecs::new(NOW)),
                Err(WalletError::ScripBusy { .. })
            ));
            assert!(matches!(
                s.wallet.withdraw_broker_scrip(UnixSecs::new(NOW)),
                Err(WalletError::ScripBusy { .. })
            ));
            s.wallet.handle_reply(&ack, UnixSecs::new(NOW)).unwrap();
            let (b1, b1_cs) = s.broker.issue(750, NOW);
            let x3 = shared::wire::bodies::VendorTopUpAcceptedX3::Accept {
                customer: me,
                top_up: Amount::from_minor(250),
                new_value: Amount::from_minor(650),
                scrip_id: v0.id(),
            };
            let change = ChangeMsg::ok(
                s.broker.keys,
                tx,
                Some((&b1, &b1_cs)),
                Some(acceptance(s.merchant.keys, m, tx, &x3)),
            )
            .bytes();
            let (v1, v1_cs) = s.merchant.issue(650, NOW);
            let response = vendor_top_up_response(s.merchant.keys, tx, &v1, &v1_cs);
            let (first, second) = if change_first {
                (&change, &response)
            } else {
                (&response, &change)
            };
            s.wallet.handle_reply(first, UnixSecs::new(NOW)).unwrap();
            let mut s = s.reopen();
            assert_eq!(s.wallet.pending().count(), 1);
            let owed = if change_first {
                NextStep::AskStatus(m)
            } else {
                NextStep::AskStatus(b)
            };
            assert_eq!(s.next_steps(), [owed]);
            assert!(matches!(
                refused(&mut s, first),
                WalletError::AlreadyReceived { .. }
            ));
            s.wallet.handle_reply(second, UnixSecs::new(NOW)).unwrap();
            assert_eq!(s.wallet.pending().count(), 0);
            assert_eq!(s.wallet.broker_scrip().unwrap().scrip, b1);
            assert_eq!(s.wallet.scrip(m).unwrap().scrip, v1);
            // Conservation: B0 + V0 = B1 + V1 (1000 + 400 = 750 + 650).
            assert_eq!(held_value(&s, b) + held_value(&s, m), 1400);

            // A declined top-up: the NOK ends it, B1 and V1 are live and free again.
            let (frame, ack) = top_up(&mut s, 100);
            s.wallet.handle_reply(&ack, UnixSecs::new(NOW)).unwrap();
            let nok = ChangeMsg::nok(
                s.broker.keys,
                frame.header.tx,
                ErrorCode::Declined,
                "the merchant declined",
            )
            .bytes();
            let done = s.wallet.handle_reply(&nok, UnixSecs::new(NOW)).unwrap();
            assert!(matches!(
                done.what,
                HistoryKind::VendorTopUpSettled { ok: false, .. }
            ));
            assert_eq!(s.wallet.pending().count(), 0);
            assert_eq!(s.wallet.broker_scrip().unwrap().scrip, b1);
            assert_eq!(s.wallet.scrip(m).unwrap().scrip, v1);
            s.wallet
                .withdraw_vendor_scrip(m, UnixSecs::new(NOW))
                .unwrap();
            s.wallet.check_tables().unwrap();
        }
    }
}

/// 6.5: an acceptance that is not M's undertaking for this top-up, a V1 of the wrong value
/// or not from M, and an Ack without a deadline: each refused with no change.
#[test]
fn tampered_top_up_messages_are_refused() {
    let suite = Suite::Modern;
    let mut s = Setup::new(suite);
    let (v0, _) = s.exchange(1400, 400);
    let m = s.merchant.keys.uid();
    let me = customer_keys(suite).uid();
    let (frame, ack) = top_up(&mut s, 250);
    let tx = frame.header.tx;
    let f = shared::wire::Frame::decode(&ack).unwrap();
    let re = f
        .part(0)
        .unwrap()
        .verify_signed::<AckBody>(s.broker.keys.public())
        .unwrap()
        .body
        .re;
    let no_deadline = reply_clear(s.broker.keys, &frame, &AckBody { re, deadline: None });
    assert!(matches!(
        refused(&mut s, &no_deadline),
        WalletError::MissingDeadline
    ));
    s.wallet.handle_reply(&ack, UnixSecs::new(NOW)).unwrap();
    let (b1, b1_cs) = s.broker.issue(750, NOW);
    let accept = |top_up: u64, new_value: u64, scrip_id, customer| {
        shared::wire::bodies::VendorTopUpAcceptedX3::Accept {
            customer,
            top_up: Amount::from_minor(top_up),
            new_value: Amount::from_minor(new_value),
            scrip_id,
        }
    };
    let decline = shared::wire::bodies::VendorTopUpAcceptedX3::Decline {
        reason: "no".into(),
        customer: me,
        top_up: Amount::from_minor(250),
    };
    for (signer, x3) in [
        (forger_keys(suite), accept(250, 650, v0.id(), me)),
        (s.merchant.keys, accept(250, 651, v0.id(), me)),
        (s.merchant.keys, accept(251, 650, v0.id(), me)),
        (
            s.merchant.keys,
            accept(250, 650, shared::ScripId([9; 16]), me),
        ),
        (
            s.merchant.keys,
            accept(250, 650, v0.id(), forger_keys(suite).uid()),
        ),
        (s.merchant.keys, decline),
    ] {
        let bytes = ChangeMsg::ok(
            s.broker.keys,
            tx,
            Some((&b1, &b1_cs)),
            Some(acceptance(signer, m, tx, &x3)),
        )
        .bytes();
        assert!(matches!(
            refused(&mut s, &bytes),
            WalletError::BadUndertaking
        ));
    }
    let (v_bad, v_bad_cs) = s.merchant.issue(600, NOW);
    let wrong = vendor_top_up_response(s.merchant.keys, tx, &v_bad, &v_bad_cs);
    assert!(matches!(
        refused(&mut s, &wrong),
        WalletError::ValueMismatch { .. }
    ));
    let (v1, v1_cs) = s.broker.issue(650, NOW);
    let by_broker = vendor_top_up_response(s.broker.keys, tx, &v1, &v1_cs);
    assert!(matches!(
        refused(&mut s, &by_broker),
        WalletError::UnexpectedSender { expected, .. } if expected == m
    ));
    assert_eq!(s.wallet.pending().count(), 1);
}

// --- TransactionStatus (section 7) ------------------------------------------

/// The node's answer to a status query: `frames` (or `Pending`), signed by `signer`.
fn status_reply(
    signer: &shared::KeyPair,
    query: &customer_cli::core::SavedRequest,
    out: &customer_cli::Outgoing,
    frames: Option<Vec<Vec<u8>>>,
) -> Vec<u8> {
    status_reply_omitting(signer, query, out, frames, 0)
}

/// As [`status_reply`], saying that `omitted` earlier frames did not fit the answer.
fn status_reply_omitting(
    signer: &shared::KeyPair,
    query: &customer_cli::core::SavedRequest,
    out: &customer_cli::Outgoing,
    frames: Option<Vec<Vec<u8>>>,
    omitted: u32,
) -> Vec<u8> {
    use shared::wire::bodies::{TransactionStatusBody, TransactionStatusResponseBody, TxStatus};
    let frame = shared::wire::Frame::decode(&out.frame).unwrap();
    let customer = customer_keys(frame.header.suite);
    let x = frame
        .part(0)
        .unwrap()
        .verify_signed::<TransactionStatusBody>(customer.public())
        .unwrap();
    assert_eq!(x.body.tx, query.tx());
    let re = Re::new(
        &frame.header,
        digest_of_verified(&frame.header, &[&x.evidence]).unwrap(),
    );
    assert_eq!(re.digest, query.digest);
    reply_clear(
        signer,
        &frame,
        &TransactionStatusResponseBody {
            re,
            status: frames.map_or(TxStatus::Pending, |frames| TxStatus::Frames {
                frames,
                omitted,
            }),
        },
    )
}

/// 6.2 with both outcome messages lost: the wallet asks B and M for the frames of the tx
/// and feeds each through the same checks; frames already recorded (the notice's reply)
/// change nothing, and asking again changes nothing. A forged or misdirected answer is
/// refused whole.
#[test]
fn transaction_status_recovers_lost_deliveries() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.holding_broker_scrip(1500);
        let b = s.broker.keys.uid();
        let m = s.merchant.keys.uid();
        // The notice and its reply, kept as the broker's outbox would.
        let out = s
            .wallet
            .obtain_vendor_scrip(m, Amount::from_minor(1000), UnixSecs::new(NOW))
            .unwrap();
        let tx = out.tx;
        let ex = {
            let frame = shared::wire::Frame::decode(&out.frame).unwrap();
            let to_b = frame.part(0).unwrap().open_sealed(s.broker.keys).unwrap();
            let x0 = to_b
                .signed::<shared::wire::bodies::VendorScripNoticeX0>(customer_keys(suite).public())
                .unwrap();
            let notice_reply = reply_clear(
                s.broker.keys,
                &frame,
                &shared::wire::bodies::VendorScripNoticeResponseX0 {
                    re: Re::new(
                        &frame.header,
                        digest_of_verified(&frame.header, &[&x0.evidence]).unwrap(),
                    ),
                    deadline: NOW + 300,
                },
            );
            s.wallet
                .handle_reply(&notice_reply, UnixSecs::new(NOW))
                .unwrap();
            let step2 = s.wallet.resend(tx, Label::VendorScripRequest).unwrap();
            (
                notice_reply,
                open_exchange(&s.broker, &s.merchant, &s.id, &step2.frame),
            )
        };
        let (notice_reply, ex) = ex;
        let (change, _) = s.change_delivery(&ex);
        let (vendor, v0, _) = s.vendor_scrip_response(&ex);

        // Nothing yet at B: Pending, no change.
        let (query, q_out) = s.wallet.transaction_status(tx, b).unwrap();
        assert_eq!(q_out.label, Label::TransactionStatus);
        let before = s.snapshot();
        let results = s
            .wallet
            .handle_status(
                &query,
                &status_reply(s.broker.keys, &query, &q_out, None),
                UnixSecs::new(NOW),
            )
            .unwrap();
        assert!(results.is_empty());
        assert_eq!(s.snapshot(), before);

        // A forged answer (another key) and one from the wrong node: refused whole.
        let forged = {
            let bytes = status_reply(
                forger_keys(suite),
                &query,
                &q_out,
                Some(vec![change.clone()]),
            );
            let mut f = shared::wire::Frame::decode(&bytes).unwrap();
            f.header.sender = b;
            f.encode().unwrap()
        };
        let e = s
            .wallet
            .handle_status(&query, &forged, UnixSecs::new(NOW))
            .unwrap_err();
        assert!(
            matches!(
                e,
                WalletError::BadReply(shared::wire::WireError::BadSignature)
            ),
            "{e}"
        );
        let wrong_node = status_reply(s.merchant.keys, &query, &q_out, Some(vec![change.clone()]));
        assert!(matches!(
            s.wallet
                .handle_status(&query, &wrong_node, UnixSecs::new(NOW)),
            Err(WalletError::UnexpectedSender { .. })
        ));
        assert_eq!(s.snapshot(), before);

        // An answer that left out B's first frame (it did not fit one answer) still
        // delivers the change, and says that it is incomplete.
        let partial =
            status_reply_omitting(s.broker.keys, &query, &q_out, Some(vec![change.clone()]), 1);
        let results = s
            .wallet
            .handle_status(&query, &partial, UnixSecs::new(NOW))
            .unwrap();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        assert!(matches!(
            results[1],
            Err(WalletError::StatusIncomplete { omitted: 1 })
        ));
        let after_b = s.snapshot();
        // B's frames in full: the notice reply and the change, both already recorded:
        // nothing changes.
        let b_answer = status_reply(
            s.broker.keys,
            &query,
            &q_out,
            Some(vec![notice_reply.clone(), change.clone()]),
        );
        let results = s
            .wallet
            .handle_status(&query, &b_answer, UnixSecs::new(NOW))
            .unwrap();
        assert!(matches!(
            results[0],
            Err(WalletError::UnexpectedLabel { .. })
        ));
        assert!(matches!(
            results[1],
            Err(WalletError::AlreadyReceived { .. })
        ));
        assert_eq!(s.snapshot(), after_b);

        // M's frame: the VendorScripResponse; the exchange completes.
        let (m_query, m_out) = s.wallet.transaction_status(tx, m).unwrap();
        let m_answer = status_reply(s.merchant.keys, &m_query, &m_out, Some(vec![vendor]));
        // An answer to another query (B's) does not pass for M's.
        let before = s.snapshot();
        assert!(matches!(
            s.wallet
                .handle_status(&m_query, &b_answer, UnixSecs::new(NOW)),
            Err(WalletError::UnexpectedSender { .. })
        ));
        assert_eq!(s.snapshot(), before);
        let results = s
            .wallet
            .handle_status(&m_query, &m_answer, UnixSecs::new(NOW))
            .unwrap();
        assert!(results[0].is_ok());
        assert_eq!(s.wallet.pending().count(), 0);
        assert_eq!(s.wallet.scrip(m).unwrap().scrip, v0);
        assert_eq!(held_value(&s, b) + held_value(&s, m), 1500);
        s.wallet.check_tables().unwrap();
    }
}

/// 6.2 step 1's reply: forged, or naming another request, is refused with no change (B0
/// stays committed, step 2 is not saved); the genuine one saves step 2 once, and a repeat
/// of it changes nothing.
#[test]
fn tampered_notice_replies_are_refused() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.holding_broker_scrip(1500);
        let m = s.merchant.keys.uid();
        let out = s
            .wallet
            .obtain_vendor_scrip(m, Amount::from_minor(1000), UnixSecs::new(NOW))
            .unwrap();
        let frame = shared::wire::Frame::decode(&out.frame).unwrap();
        let x0 = frame
            .part(0)
            .unwrap()
            .open_sealed(s.broker.keys)
            .unwrap()
            .signed::<shared::wire::bodies::VendorScripNoticeX0>(customer_keys(suite).public())
            .unwrap();
        assert_eq!(x0.body.merchant, m);
        let re = Re::new(
            &frame.header,
            digest_of_verified(&frame.header, &[&x0.evidence]).unwrap(),
        );
        let body = |re: Re| shared::wire::bodies::VendorScripNoticeResponseX0 {
            re,
            deadline: NOW + 300,
        };
        // Signed by another key under the broker's UID.
        let forged = {
            let bytes = reply_clear(forger_keys(suite), &frame, &body(re.clone()));
            let mut f = shared::wire::Frame::decode(&bytes).unwrap();
            f.header.sender = s.broker.keys.uid();
            f.encode().unwrap()
        };
        assert!(matches!(
            refused(&mut s, &forged),
            WalletError::BadReply(shared::wire::WireError::BadSignature)
        ));
        // `re` of another request (another digest).
        let mut other = re.clone();
        other.digest[0] ^= 1;
        let wrong_re = reply_clear(s.broker.keys, &frame, &body(other));
        assert!(matches!(
            refused(&mut s, &wrong_re),
            WalletError::ReMismatch
        ));
        // From the merchant (the notice went to the broker).
        let from_m = reply_clear(s.merchant.keys, &frame, &body(re.clone()));
        assert!(matches!(
            refused(&mut s, &from_m),
            WalletError::UnexpectedSender { .. }
        ));
        let genuine = reply_clear(s.broker.keys, &frame, &body(re));
        s.wallet.handle_reply(&genuine, UnixSecs::new(NOW)).unwrap();
        assert_eq!(
            s.wallet.pending().next().unwrap().request.label(),
            Label::VendorScripRequest
        );
        // Again: step 2 is pending now, which takes no notice reply.
        assert!(matches!(
            refused(&mut s, &genuine),
            WalletError::UnexpectedLabel {
                request: Label::VendorScripRequest,
                reply: Label::VendorScripNoticeResponse
            }
        ));
    }
}

/// Section 6: M, still waiting for the broker, answers a repeated step 2 with `Ack { re }`:
/// verified, reported as `AwaitingDecision`, nothing changes; a forged one is refused.
/// M's signed `Error` (the broker's NOK relayed) only marks the request refused; B's NOK
/// then ends it with B0 live again.
#[test]
fn a_pending_ack_and_a_relayed_refusal_from_the_merchant() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let (b0, ex) = s.pending_exchange(1500, 1000);
        let tx = ex.frame.header.tx;
        let ack = reply_clear(
            s.merchant.keys,
            &ex.frame,
            &AckBody {
                re: ex.re.clone(),
                deadline: None,
            },
        );
        assert!(matches!(
            refused(&mut s, &ack),
            WalletError::AwaitingDecision { tx: t, label: Label::VendorScripRequest } if t == tx
        ));
        let mut other = ex.re.clone();
        other.digest[0] ^= 1;
        let wrong = reply_clear(
            s.merchant.keys,
            &ex.frame,
            &AckBody {
                re: other,
                deadline: None,
            },
        );
        assert!(matches!(refused(&mut s, &wrong), WalletError::ReMismatch));
        // M relays the broker's NOK as a signed Error: only the status changes.
        let error = reply_clear(
            s.merchant.keys,
            &ex.frame,
            &shared::wire::bodies::ErrorBody::new(ex.re.clone(), ErrorCode::Spent, "NOK"),
        );
        let e = s
            .wallet
            .handle_reply(&error, UnixSecs::new(NOW))
            .unwrap_err();
        assert_eq!(e.refused_code(), Some(ErrorCode::Spent));
        assert!(matches!(
            s.wallet.pending().next().unwrap().status,
            PendingStatus::Refused { .. }
        ));
        assert_eq!(s.next_steps(), [NextStep::Decide]);
        // B0 stays committed until the broker's own decision arrives.
        assert!(matches!(
            s.wallet.withdraw_broker_scrip(UnixSecs::new(NOW)),
            Err(WalletError::ScripBusy { .. })
        ));
        let nok = ChangeMsg::nok(s.broker.keys, tx, ErrorCode::Spent, "B0 spent").bytes();
        s.wallet.handle_reply(&nok, UnixSecs::new(NOW)).unwrap();
        assert_eq!(s.wallet.pending().count(), 0);
        assert_eq!(s.wallet.broker_scrip().unwrap().scrip, b0);
    }
}

/// 6.2: the notice's reply lost and the exchange expired at the broker: its NOK
/// `ChangeBrokerScrip` ends the exchange while the notice is still pending; B0 is free.
/// An OK (or change) before step 2 is refused.
#[test]
fn a_nok_before_step_2_ends_the_notice() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let b0 = s.holding_broker_scrip(1500);
        let out = s
            .wallet
            .obtain_vendor_scrip(
                s.merchant.keys.uid(),
                Amount::from_minor(1000),
                UnixSecs::new(NOW),
            )
            .unwrap();
        let tx = out.tx;
        let (b1, b1_cs) = s.broker.issue(500, NOW);
        let early_ok = ChangeMsg::ok(s.broker.keys, tx, Some((&b1, &b1_cs)), None).bytes();
        assert!(matches!(
            refused(&mut s, &early_ok),
            WalletError::InconsistentDecision(_)
        ));
        let nok = ChangeMsg::nok(s.broker.keys, tx, ErrorCode::Expired, "expired").bytes();
        let mut s = s.reopen();
        let done = s.wallet.handle_reply(&nok, UnixSecs::new(NOW)).unwrap();
        assert!(matches!(
            done.what,
            HistoryKind::ExchangeSettled { ok: false, .. }
        ));
        assert_eq!(s.wallet.pending().count(), 0);
        assert_eq!(s.wallet.broker_scrip().unwrap().scrip, b0);
        assert!(matches!(
            refused(&mut s, &nok),
            WalletError::NoPendingRequest { .. }
        ));
        s.wallet.withdraw_broker_scrip(UnixSecs::new(NOW)).unwrap();
    }
}
