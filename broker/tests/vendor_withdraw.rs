//! 6.7 (the broker's side of withdrawing VendorScrip) through `BrokerNode`.
#![allow(clippy::unwrap_used)]

mod wire_client;

use broker::core::WithdrawalState;
use shared::UnixSecs;
use shared::events::Account;
use shared::ids::TxId;
use shared::wire::Decision;
use shared::wire::bodies::{VendorWithdrawResponseX3, VendorWithdrawResultX4};
use shared::{Amount, ErrorCode, Mint, Suite, fixtures};
use wire_client::{Client, Held, NOW, World};

const DEADLINE: u64 = NOW.get() + 300;

struct Parties {
    w: World,
    c: Client,
    m: Client,
    v0: Held,
}

/// C (bank 0) and M (bank `m_bank`, deposited: its memo is 0), and a VendorScrip of M's
/// that C holds (the broker never reads it: it travels in M's part).
fn parties(suite: Suite, m_bank: u64) -> Parties {
    let mut w = World::new(suite);
    let c = w.client(0, "C-1");
    let m = w.client(2, "M-1");
    w.onboard(&c, 0);
    w.onboard(&m, m_bank);
    let (scrip, cs) = Mint::new(suite, m.uid(), fixtures::root_key(5))
        .issue(Amount::from_minor(200), NOW.saturating_add_secs(1000).get());
    Parties {
        w,
        c,
        m,
        v0: Held { scrip, cs },
    }
}

fn request(p: &Parties, tx: TxId, w_c: u64, w_m: u64, deadline: u64) -> Vec<u8> {
    let step1 =
        p.c.vendor_withdraw_request(tx, p.m.key.public(), &p.v0, w_c);
    p.m.vendor_withdraw_authorization(&step1, p.c.uid(), w_m, deadline)
}

fn bank(w: &World, c: &Client) -> i128 {
    w.state().balance(&Account::Bank(c.pan.clone()))
}

#[test]
fn vendor_scrip_redeemed_in_both_suites() {
    for suite in Suite::ALL {
        let mut p = parties(suite, 1000);
        let tx = TxId::random();
        let frame = request(&p, tx, 200, 200, DEADLINE);
        let len = p.w.log_len();
        let handled = p.w.send_all(&frame, NOW);
        let x3 =
            p.m.open_sealed::<VendorWithdrawResponseX3>(handled.reply_frame());
        assert_eq!(x3.decision, Decision::Ok);
        assert_eq!(
            (x3.customer, x3.value),
            (p.c.uid(), Amount::from_minor(200))
        );
        assert_eq!(handled.deliveries.len(), 1);
        assert_eq!(handled.deliveries[0].to, p.c.uid());
        let x4 =
            p.c.open_sealed::<VendorWithdrawResultX4>(&handled.deliveries[0].frame);
        assert_eq!((x4.merchant, x4.decision), (p.m.uid(), Decision::Ok));
        assert_eq!(bank(&p.w, &p.m), 800);
        assert_eq!(bank(&p.w, &p.c), 200);
        // Deposited money, no VendorScrip sold through the broker: the memo goes below
        // zero, which raises an alarm and refuses nothing.
        assert_eq!(p.w.state().memo(&p.m.uid()), -200);
        assert_eq!(p.w.log_len(), len + 2, "VendorScripRedeemed and MemoAlarm");
        assert_eq!(
            p.w.state().withdrawals[&tx].state,
            WithdrawalState::Redeemed
        );
        // M repeats, even after the deadline: the stored decision, byte for byte.
        assert_eq!(
            p.w.send_all(&frame, UnixSecs::new(DEADLINE + 100)).reply,
            handled.reply
        );
        assert_eq!(p.w.log_len(), len + 2);
    }
}

/// Each failed check is a final, recorded NOK, told to M and to C; nothing moves.
#[test]
fn refused_withdrawals_are_recorded() {
    let cases = [
        (
            200,
            200,
            1000,
            UnixSecs::new(DEADLINE + 1),
            ErrorCode::DeadlinePassed,
        ),
        (200, 199, 1000, NOW, ErrorCode::AmountMismatch),
        (200, 200, 199, NOW, ErrorCode::MerchantBalanceTooLow),
    ];
    for (w_c, w_m, m_bank, now, code) in cases {
        let mut p = parties(Suite::Modern, m_bank);
        let tx = TxId::random();
        let accounts = p.w.state().accounts.clone();
        let len = p.w.log_len();
        let frame = request(&p, tx, w_c, w_m, DEADLINE);
        let handled = p.w.send_all(&frame, now);
        let x3 =
            p.m.open_sealed::<VendorWithdrawResponseX3>(handled.reply_frame());
        let Decision::Nok(reason) = x3.decision else {
            panic!("expected NOK for {code:?}")
        };
        assert_eq!(reason.error_code(), Some(code));
        let x4 =
            p.c.open_sealed::<VendorWithdrawResultX4>(&handled.deliveries[0].frame);
        assert!(!x4.decision.is_ok());
        assert_eq!(p.w.state().accounts, accounts);
        assert_eq!(p.w.log_len(), len + 1);
        assert_eq!(p.w.state().withdrawals[&tx].state, WithdrawalState::Refused);
        assert_eq!(p.w.send_all(&frame, now).reply, handled.reply);
    }
}

/// Only the merchant C named may relay C's part; another relay binds nothing, and the
/// named merchant can still complete the withdrawal.
#[test]
fn only_the_named_merchant_may_relay() {
    let mut p = parties(Suite::Modern, 1000);
    let other = p.w.client(3, "M-2");
    p.w.onboard(&other, 1000);
    let tx = TxId::random();
    let step1 =
        p.c.vendor_withdraw_request(tx, p.m.key.public(), &p.v0, 200);
    let relayed = other.vendor_withdraw_authorization(&step1, p.c.uid(), 200, DEADLINE);
    p.w.assert_refused(&relayed, NOW, ErrorCode::NotAParty);
    let handled = p.w.send_all(&request(&p, tx, 200, 200, DEADLINE), NOW);
    let x3 =
        p.m.open_sealed::<VendorWithdrawResponseX3>(handled.reply_frame());
    assert!(x3.decision.is_ok());
    // Now bound: the other merchant gets TxReused.
    p.w.assert_refused(&relayed, NOW, ErrorCode::TxReused);
}

/// A withdrawal after 6.2 sold VendorScrip: the memo comes down by W, no alarm.
#[test]
fn a_withdrawal_reduces_the_memo_of_sold_vendor_scrip() {
    let mut p = parties(Suite::Paper, 0);
    // M's memo is raised by a 6.2 exchange of C's BrokerScrip.
    let d = p.w.client(4, "D-1");
    p.w.onboard(&d, 500);
    let reply =
        p.w.send(&d.obtain(TxId::random(), 500, shared::Nonce::random()), NOW);
    let (_, b0) = d.open_scrip::<shared::wire::bodies::BrokerScripResponseX1>(&reply, |b| {
        (b.scrip.clone(), b.cs_hash.clone())
    });
    let tx = TxId::random();
    p.w.send(&d.notice(tx, p.m.uid()), NOW);
    let step2 = d.vendor_scrip_request(tx, p.m.key.public(), &b0, 300, 300);
    p.w.send_all(&p.m.exchange_authorization(&step2, d.uid(), 300), NOW);
    assert_eq!(p.w.state().memo(&p.m.uid()), 300);
    let len = p.w.log_len();
    let step1 = d.vendor_withdraw_request(TxId::random(), p.m.key.public(), &p.v0, 300);
    let frame =
        p.m.vendor_withdraw_authorization(&step1, d.uid(), 300, DEADLINE);
    let handled = p.w.send_all(&frame, NOW);
    assert!(
        p.m.open_sealed::<VendorWithdrawResponseX3>(handled.reply_frame())
            .decision
            .is_ok()
    );
    assert_eq!(p.w.state().memo(&p.m.uid()), 0);
    assert_eq!(p.w.log_len(), len + 1, "no alarm");
    assert_eq!(bank(&p.w, &d), 300);
    assert_eq!(bank(&p.w, &p.m), 0);
}
