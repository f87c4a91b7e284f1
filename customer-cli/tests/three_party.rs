//! The three-party flows of the wallet against stand-in nodes that open its requests with
//! the `shared::wire` openers and answer with the wire builders: 6.2 (both orders of the
//! two outcome messages, a reopen between them), 6.3 (with and without change), 6.7 (OK
//! and NOK). Every money-moving test checks that the value the wallet held is conserved.

// Test helpers (not only #[test] functions) unwrap: a panic is the report.
#![allow(clippy::unwrap_used)]

mod support;

use customer_cli::WalletError;
use customer_cli::core::{HistoryKind, PendingStatus};
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
            s.register();
            s.learn_merchant();
            let (b0, _) = s.obtain(1500);
            let broker = s.broker.keys.uid();
            let merchant = s.merchant.keys.uid();
            let ex = s.start_exchange(1000);
            assert_eq!(ex.x1.scrip, b0);
            assert_eq!(ex.x1.value, Amount::from_minor(1000));
            assert_eq!(ex.x2.value, Amount::from_minor(1000));
            assert_eq!(ex.frame.header.sender, s.wallet.uid());
            // B0 is committed: no top-up, withdrawal or second exchange while it is.
            assert!(matches!(
                s.wallet.withdraw_broker_scrip(NOW),
                Err(WalletError::ScripBusy { scrip_id, .. }) if scrip_id == b0.id()
            ));
            let (change, b1) = s.change_delivery(&ex);
            let (vendor, v0, v0_cs) = s.vendor_scrip_response(&ex);
            let (first, second) = if change_first {
                (change, vendor)
            } else {
                (vendor, change)
            };
            s.wallet.handle_reply(&first, NOW).unwrap();
            assert_eq!(s.wallet.pending().count(), 1, "one of two messages in");
            let mut s = s.reopen();
            s.wallet.handle_reply(&second, NOW).unwrap();
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
                    .obtain_vendor_scrip(merchant, Amount::from_minor(1), NOW),
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
            .obtain_vendor_scrip(merchant, Amount::from_minor(5), NOW),
        Err(WalletError::NoScrip { .. })
    ));
    s.obtain(100);
    assert!(matches!(
        s.wallet.obtain_vendor_scrip(merchant, Amount::from_minor(5), NOW),
        Err(WalletError::UnknownPeer { uid }) if uid == merchant
    ));
    s.learn_merchant();
    assert!(matches!(
        s.wallet
            .obtain_vendor_scrip(merchant, Amount::from_minor(101), NOW),
        Err(WalletError::InsufficientScrip { .. })
    ));
    assert!(matches!(
        s.wallet.obtain_vendor_scrip(merchant, Amount::ZERO, NOW),
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
    let merchant = s.merchant.keys.uid();
    let (initiated, purchase) = s.wallet.buy_item(merchant, order.clone(), NOW).unwrap();
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
    let ack = reply_clear(
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
        .validate(&x1.body.scrip, cs.expose(), NOW, shared::ExpiryRule::Strict)
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
    let response = reply_sealed(
        s.merchant.keys,
        &f2,
        &body,
        change.as_ref().map(|(v1, cs)| (v1.id(), cs)),
    );
    (ack, response, change.map(|(v1, _)| v1))
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
            s.wallet.withdraw_vendor_scrip(merchant, NOW),
            Err(WalletError::ScripBusy { scrip_id, .. }) if scrip_id == v0.id()
        ));
        let done = s.wallet.handle_reply(&ack, NOW).unwrap();
        assert_eq!(
            done.what,
            HistoryKind::Step {
                label: Label::PurchaseInitiated
            }
        );
        let mut s = s.reopen();
        let done = s.wallet.handle_reply(&response, NOW).unwrap();
        assert_eq!(
            done.what,
            HistoryKind::ItemBought {
                merchant,
                paid: Amount::from_minor(300),
                change: Amount::from_minor(750),
            }
        );
        assert_eq!(s.wallet.scrip(merchant).unwrap().scrip, v1.unwrap());
        // Conservation: V0 = W_P + V1.
        assert_eq!(held_value(&s, merchant) + 300, v0.value().minor());
        assert_eq!(s.wallet.pending().count(), 0);
        // The rest exactly: five teas = 750, no change, V1 gone.
        let (ack, response, none) = buy(&mut s, &tea(5));
        assert!(none.is_none());
        s.wallet.handle_reply(&response, NOW).unwrap();
        s.wallet.handle_reply(&ack, NOW).unwrap();
        assert_eq!(s.wallet.scrip(merchant), None);
        assert_eq!(s.wallet.pending().count(), 0);
        s.wallet.check_tables().unwrap();
        // Nothing left to pay with.
        assert!(matches!(
            s.wallet.buy_item(merchant, tea(1), NOW),
            Err(WalletError::NoScrip { .. })
        ));
    }
}

/// 6.3: an order worth more than V0 is refused locally and saves nothing.
#[test]
fn an_order_above_the_scrip_saves_nothing() {
    let mut s = Setup::new(Suite::Paper);
    s.exchange(1000, 300);
    let before = s.snapshot();
    assert!(matches!(
        s.wallet.buy_item(s.merchant.keys.uid(), tea(3), NOW),
        Err(WalletError::InsufficientScrip { .. })
    ));
    assert_eq!(s.snapshot(), before);
}

/// 6.7 as M and B see step 1: part 0 sealed to M (X0 = V0, CS_V0), part 1 sealed to B
/// (IdProof, X1 = W, UID_M); M's Ack with its deadline.
fn withdraw(s: &mut Setup) -> (shared::wire::Frame, Vec<u8>) {
    let merchant = s.merchant.keys.uid();
    let out = s.wallet.withdraw_vendor_scrip(merchant, NOW).unwrap();
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
        .validate(&x0.body.scrip, cs.expose(), NOW, shared::ExpiryRule::Strict)
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
        s.wallet.handle_reply(&ack, NOW).unwrap();
        // The Ack keeps the request open: V0 stays committed.
        assert_eq!(s.wallet.pending().count(), 1);
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
        let done = s.wallet.handle_reply(&nok, NOW).unwrap();
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
        s.wallet.handle_reply(&ok, NOW).unwrap();
        assert_eq!(s.wallet.scrip(merchant), None);
        // The late Ack finds nothing pending and changes nothing.
        let before = s.snapshot();
        assert!(matches!(
            s.wallet.handle_reply(&ack, NOW),
            Err(WalletError::NoPendingRequest { .. })
        ));
        assert_eq!(s.snapshot(), before);
        s.wallet.check_tables().unwrap();
    }
}
