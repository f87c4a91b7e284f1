//! 6.2 and 6.7 end to end between a real `BrokerNode` and a real `MerchantNode`, in-process,
//! each on its own redb file, frames passed by hand (no bus). The customer's frames are
//! built with the `shared::wire` builders, as a wallet builds them.
//!
//! Every step checks conservation on both sides: the broker's ledger (all accounts sum to
//! zero, none negative) and the merchant's books (`issued = live + paid + withdrawn`), and
//! that the merchant's tables on disk equal its state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use broker::node::BrokerNode;
use merchant::core::catalogue::Item;
use merchant::node::{Handled, MerchantNode, Outgoing, ReplyOutcome};
use peerscrip_tests::frames::{
    clear_body, encoded, error_body, label_of, presenting, sealed_body, sealed_part,
};
use peerscrip_tests::invariants;
use peerscrip_tests::network::{NOW, Party, broker_keys};
use peerscrip_tests::{Network, NetworkSpec};
use shared::UnixSecs;
use shared::ids::Nonce;
use shared::node::{LiveRecord, ScripState};
use shared::wire::bodies::{
    AckBody, Body, BrokerScripRequestX0, BrokerScripResponseX1, ChangeBrokerScripX4, ErrorBody,
    OrderId, OrderInfo, PurchaseRequestX1, Reply, ScripLapsedNoticeBody, TransactionStatusBody,
    TransactionStatusResponseBody, TxStatus, VendorScripNoticeX0, VendorScripRequestX1,
    VendorScripRequestX2, VendorScripResponseX6, VendorTopUpRequestX0, VendorTopUpRequestX1,
    VendorTopUpResponseX4, VendorWithdrawRequestX0, VendorWithdrawRequestX1,
    VendorWithdrawResultX4,
};
use shared::wire::{Decision, Frame, Label, Part, sign};
use shared::{Amount, CustomerSecret, ErrorCode, KeyPair, Scrip, Suite, TxId};

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

/// A scrip with its secret, as a wallet keeps them.
#[derive(Clone, Debug)]
struct Held {
    scrip: Scrip,
    cs: CustomerSecret,
}

impl Held {
    /// The scrip and its secret, as a request presents them.
    fn presented(&self) -> Option<(&Scrip, &CustomerSecret)> {
        Some((&self.scrip, &self.cs))
    }
}

/// The broker, one merchant and two customers, each node on its own file: the test kit's
/// network (`peerscrip_tests::network`), the customers' frames built here by hand.
struct World {
    suite: Suite,
    net: Network,
    m: Party,
    c: Party,
    other: Party,
}

impl World {
    fn new(suite: Suite) -> World {
        let mut spec = NetworkSpec::new(suite, 1, 2, amount(10_000));
        spec.catalogues = vec![vec![Item::new("tea", "Green tea, 100 g", amount(450))]];
        let net = Network::new(&spec).unwrap();
        let w = World {
            suite,
            m: net.merchants[0].party.clone(),
            c: net.customers[0].party.clone(),
            other: net.customers[1].party.clone(),
            net,
        };
        w.assert_conserved();
        w
    }

    /// The world with C holding B0 of `value` (6.1), where most tests start.
    fn holding(suite: Suite, value: u64) -> (World, Held) {
        let mut w = World::new(suite);
        let b0 = w.broker_scrip(0, value);
        (w, b0)
    }

    fn broker_keys(&self) -> &'static KeyPair {
        broker_keys(self.suite)
    }

    fn broker(&mut self) -> &mut BrokerNode {
        self.net.broker_mut().unwrap()
    }

    fn merchant(&mut self) -> &mut MerchantNode {
        self.net.merchant_mut(0).unwrap()
    }

    fn merchant_ref(&self) -> &MerchantNode {
        self.net.merchant(0).unwrap()
    }

    /// The merchant's record of the scrip of `held`, while it is live there.
    fn record(&self, held: &Held) -> Option<&LiveRecord> {
        self.merchant_ref()
            .state()
            .tables
            .live
            .get(&held.scrip.id())
    }

    /// The state of the scrip of `held` at the merchant (it must be live there).
    fn scrip_state(&self, held: &Held) -> ScripState {
        self.record(held).expect("live at the merchant").state
    }

    fn reopen_broker(&mut self) {
        self.net.reopen_broker().unwrap();
    }

    fn reopen_merchant(&mut self) {
        self.net.reopen_merchant(0).unwrap();
        self.assert_conserved();
    }

    /// Section 5 at the broker, the merchant's books, and the merchant's tables on disk.
    fn assert_conserved(&self) {
        invariants::conserved(&self.net).unwrap();
        self.merchant_ref().check_tables().unwrap();
    }

    fn merchant_log_len(&self) -> u64 {
        self.merchant_ref().log().len().unwrap()
    }

    fn send_broker(&mut self, frame: &[u8], now: UnixSecs) -> broker::node::Handled {
        let h = self.broker().handle(frame, now).unwrap();
        self.assert_conserved();
        h
    }

    fn send_merchant(&mut self, frame: &[u8], now: UnixSecs) -> Handled {
        let h = self.merchant().handle(frame, now).unwrap();
        self.assert_conserved();
        h
    }

    fn reply_to_merchant(&mut self, frame: &[u8], now: UnixSecs) -> ReplyOutcome {
        let r = self.merchant().handle_reply(frame, now).unwrap();
        self.assert_conserved();
        r
    }

    /// A request the merchant must refuse with `code`, changing neither its log nor its
    /// tables.
    fn merchant_refuses(&mut self, frame: &[u8], now: UnixSecs, code: ErrorCode) {
        let len = self.merchant_log_len();
        let tables = self.merchant_ref().state().tables.clone();
        let h = self.send_merchant(frame, now);
        let refusal = h.refusal.expect("a refusal");
        assert_eq!(refusal.code, code, "{}", refusal.message);
        let reply = h.reply.expect("an Error");
        let body = error_body(&reply.frame, self.m.keys);
        assert_eq!(body.error_code(), Some(code));
        assert!(h.deliveries.is_empty() && h.requests.is_empty());
        assert_eq!(self.merchant_log_len(), len, "a refusal appended an event");
        assert_eq!(self.merchant_ref().state().tables, tables);
    }

    /// `peer`'s part under `header` sealed to `to`: its IdProof first when `to` is the
    /// broker (section 1), `Signed(body)`, and the secret of `presented`, if any.
    fn part<B: Body>(
        &self,
        peer: &Party,
        header: &shared::wire::Header,
        to: &KeyPair,
        body: &B,
        presented: Option<&Held>,
    ) -> Part {
        let id = (to.uid() == self.broker_keys().uid()).then(|| peer.account_id());
        let secret = presented.and_then(Held::presented);
        sealed_part(peer.keys, header, to.public(), id.as_ref(), body, secret)
    }

    /// 6.1: C obtains BrokerScrip of `value`.
    fn broker_scrip(&mut self, who: usize, value: u64) -> Held {
        let peer = if who == 0 { &self.c } else { &self.other };
        let h = peer.header(Label::BrokerScripRequest, TxId::random());
        let x0 = BrokerScripRequestX0 {
            value: amount(value),
            nonce: Nonce::random(),
        };
        let frame = encoded(h, vec![self.part(peer, &h, self.broker_keys(), &x0, None)]);
        let key = peer.keys;
        let reply = self.send_broker(&frame, NOW).reply_frame().to_vec();
        let (body, cs) =
            sealed_with_secret::<BrokerScripResponseX1>(&reply, key, self.broker_keys(), |b| {
                (b.scrip.clone(), b.cs_hash.clone())
            });
        Held {
            scrip: body.scrip,
            cs,
        }
    }

    /// 6.2 step 1 (the notice), answered by the broker.
    fn notice(&mut self, tx: TxId) {
        let h = self.c.header(Label::VendorScripNotice, tx);
        let x0 = VendorScripNoticeX0 {
            merchant: self.m.uid(),
        };
        let frame = encoded(
            h,
            vec![self.part(&self.c, &h, self.broker_keys(), &x0, None)],
        );
        let reply = self.send_broker(&frame, NOW).reply_frame().to_vec();
        assert_eq!(label_of(&reply), Label::VendorScripNoticeResponse);
    }

    /// 6.2 step 2, C → M: X1 with `w_broker` (sealed to B), X2 with `w_merchant`.
    fn vendor_scrip_request(&self, tx: TxId, b0: &Held, w_broker: u64, w_merchant: u64) -> Vec<u8> {
        let h = self.c.header(Label::VendorScripRequest, tx);
        let x1 = VendorScripRequestX1 {
            scrip: b0.scrip.clone(),
            cs_hash: b0.cs.cs_hash(self.suite),
            value: amount(w_broker),
        };
        let x2 = VendorScripRequestX2 {
            value: amount(w_merchant),
        };
        let to_b = self.part(&self.c, &h, self.broker_keys(), &x1, Some(b0));
        let to_m = self.part(&self.c, &h, self.m.keys, &x2, None);
        encoded(h, vec![to_b, to_m])
    }

    /// 6.7 step 1, C → M: X0 (sealed to M), X1 = W, UID_M (sealed to B).
    fn vendor_withdraw_request(&self, tx: TxId, v0: &Held, w: u64) -> Vec<u8> {
        let h = self.c.header(Label::VendorWithdrawRequest, tx);
        let x0 = VendorWithdrawRequestX0 {
            scrip: v0.scrip.clone(),
            cs_hash: v0.cs.cs_hash(self.suite),
        };
        let x1 = VendorWithdrawRequestX1 {
            value: amount(w),
            merchant: self.m.uid(),
        };
        let to_m = self.part(&self.c, &h, self.m.keys, &x0, Some(v0));
        let to_b = self.part(&self.c, &h, self.broker_keys(), &x1, None);
        encoded(h, vec![to_m, to_b])
    }

    /// 6.3 step 2, C → M, for one tea.
    fn purchase(&self, tx: TxId, v0: &Held) -> Vec<u8> {
        let x1 = PurchaseRequestX1 {
            scrip: v0.scrip.clone(),
            cs_hash: v0.cs.cs_hash(self.suite),
            order: OrderInfo {
                item_id: "tea".into(),
                name: "Green tea, 100 g".into(),
                unit_price: amount(450),
                quantity: 1,
                order_id: OrderId::random(),
            },
        };
        presenting(self.c.keys, self.m.keys, tx, None, &x1, (&v0.scrip, &v0.cs))
    }

    /// 6.8 step 1, C → M.
    fn renew(&self, tx: TxId, v0: &Held) -> Vec<u8> {
        let x0 = shared::wire::bodies::RenewRequestX0 {
            scrip: v0.scrip.clone(),
            cs_hash: v0.cs.cs_hash(self.suite),
        };
        presenting(self.c.keys, self.m.keys, tx, None, &x0, (&v0.scrip, &v0.cs))
    }

    /// Section 7, C asks the merchant for the frames of `tx` sent to it.
    fn status(&mut self, tx: TxId) -> TxStatus {
        let h = self.c.header(Label::TransactionStatus, tx);
        let part: Part = sign(self.c.keys, &h, &TransactionStatusBody { tx })
            .unwrap()
            .into();
        let frame = encoded(h, vec![part]);
        let len = self.merchant_log_len();
        let reply = self.send_merchant(&frame, NOW).reply.unwrap();
        assert_eq!(
            self.merchant_log_len(),
            len,
            "a status query appends nothing"
        );
        let body: TransactionStatusResponseBody = clear_body(&reply.frame, self.m.keys);
        body.status
    }

    /// 6.2 from the notice to the merchant's request to the broker: the merchant's
    /// `Handled` (its frame to the broker in `requests`).
    fn exchange_asked(&mut self, tx: TxId, b0: &Held, w: u64) -> (Vec<u8>, Outgoing) {
        self.notice(tx);
        let step2 = self.vendor_scrip_request(tx, b0, w, w);
        let h = self.send_merchant(&step2, NOW);
        assert!(h.refusal.is_none(), "{:?}", h.refusal);
        assert!(
            h.reply.is_none(),
            "C's reply is held until the broker decides"
        );
        assert_eq!(h.requests.len(), 1);
        let ask = h.requests[0].clone();
        assert_eq!(ask.to, self.broker_keys().uid());
        assert_eq!(label_of(&ask.frame), Label::ExchangeAuthorizationRequest);
        (step2, ask)
    }

    /// The broker refuses the exchange the merchant asked about with `ask` at `now`, and
    /// the merchant acts on it: C is answered (its step 2 in `re`) with an `Error` of
    /// `code`; nothing is issued or owed to the broker and M's float is untouched; C's
    /// repeat of `step2` gets the same stored `Error`.
    fn assert_exchange_refused(
        &mut self,
        step2: &[u8],
        ask: &Outgoing,
        now: UnixSecs,
        code: ErrorCode,
    ) {
        let decided = self.send_broker(&ask.frame, now);
        let ReplyOutcome::Decided(out) = self.reply_to_merchant(decided.reply_frame(), now) else {
            panic!("the NOK is acted on")
        };
        assert_eq!(out.len(), 1);
        let error: ErrorBody = clear_body(&out[0].frame, self.m.keys);
        assert_eq!(error.error_code(), Some(code));
        assert_eq!(error.re.label, Label::VendorScripRequest);
        let state = self.merchant_ref().state();
        assert!(state.tables.live.is_empty(), "nothing issued");
        assert_eq!(state.tables.books.issued, amount(0));
        assert!(self.merchant_ref().pending_broker_requests().is_empty());
        assert_eq!(self.memo(), 0);
        assert_eq!(
            self.send_merchant(step2, now).reply.unwrap().frame,
            out[0].frame
        );
    }

    /// A whole 6.2 of `w` paid with `b0`: C's V0.
    fn vendor_scrip(&mut self, b0: &Held, w: u64) -> Held {
        self.vendor_scrip_in(TxId::random(), b0, w)
    }

    /// A whole 6.2 in `tx`.
    fn vendor_scrip_in(&mut self, tx: TxId, b0: &Held, w: u64) -> Held {
        self.vendor_scrip_with_change(tx, b0, w).0
    }

    /// A whole 6.2 in `tx`: C's V0 and its BrokerScrip change B1.
    fn vendor_scrip_with_change(&mut self, tx: TxId, b0: &Held, w: u64) -> (Held, Option<Held>) {
        let (_, ask) = self.exchange_asked(tx, b0, w);
        let decided = self.send_broker(&ask.frame, NOW);
        let change = decided.deliveries.iter().find_map(|d| {
            let (body, cs) = sealed_with_optional_secret::<ChangeBrokerScripX4>(
                &d.frame,
                self.c.keys,
                self.broker_keys(),
                |b| {
                    b.change
                        .as_ref()
                        .map(|c| (c.scrip.clone(), c.cs_hash.clone()))
                },
            );
            assert_eq!(body.outcome, Decision::Ok);
            Some(Held {
                scrip: body.change?.scrip,
                cs: cs?,
            })
        });
        let ReplyOutcome::Decided(out) = self.reply_to_merchant(decided.reply_frame(), NOW) else {
            panic!("the decision is acted on")
        };
        assert_eq!(out.len(), 1);
        (self.open_x6(&out[0].frame).1, change)
    }

    /// 6.5 step 1, C → B: X0 (sealed to B, with C's IdProof and CS_B0), X1 (sealed to M,
    /// with CS_V0).
    fn vendor_top_up_request(
        &self,
        tx: TxId,
        b0: &Held,
        v0: &Held,
        top_up: u64,
        x0_new_value: u64,
        x1_new_value: u64,
    ) -> Vec<u8> {
        let h = self.c.header(Label::VendorTopUpRequest, tx);
        let x0 = VendorTopUpRequestX0 {
            new_value: amount(x0_new_value),
            top_up: amount(top_up),
            merchant: self.m.uid(),
            broker_scrip: b0.scrip.clone(),
            cs_hash: b0.cs.cs_hash(self.suite),
        };
        let x1 = VendorTopUpRequestX1 {
            new_value: amount(x1_new_value),
            vendor_scrip: v0.scrip.clone(),
            cs_hash: v0.cs.cs_hash(self.suite),
        };
        let to_b = self.part(&self.c, &h, self.broker_keys(), &x0, Some(b0));
        let to_m = self.part(&self.c, &h, self.m.keys, &x1, Some(v0));
        encoded(h, vec![to_b, to_m])
    }

    /// 6.5 steps 1–3: C's request to the broker, the broker's authorization to M, M's
    /// step 3 to the broker. Gives (the authorization, M's step 3, the broker's deadline).
    fn top_up_asked(&mut self, step1: &[u8]) -> (Vec<u8>, Vec<u8>, u64) {
        let b = self.send_broker(step1, NOW);
        let ack: AckBody = clear_body(b.reply_frame(), self.broker_keys());
        let deadline = ack.deadline.expect("the escrow's deadline");
        assert_eq!(b.deliveries.len(), 1);
        assert_eq!(b.deliveries[0].to, self.m.uid());
        let auth = b.deliveries[0].frame.clone();
        assert_eq!(label_of(&auth), Label::VendorTopUpAuthorization);
        let m = self.send_merchant(&auth, NOW);
        assert!(m.refusal.is_none(), "{:?}", m.refusal);
        assert!(m.reply.is_none());
        assert_eq!(m.requests.len(), 1);
        let step3 = m.requests[0].frame.clone();
        assert_eq!(label_of(&step3), Label::VendorTopUpAccepted);
        (auth, step3, deadline)
    }

    /// C opens `VendorScripResponse`.
    fn open_x6(&self, frame: &[u8]) -> (VendorScripResponseX6, Held) {
        let (body, cs) =
            sealed_with_secret::<VendorScripResponseX6>(frame, self.c.keys, self.m.keys, |b| {
                (b.scrip.clone(), b.cs_hash.clone())
            });
        let held = Held {
            scrip: body.scrip.clone(),
            cs,
        };
        (body, held)
    }

    fn memo(&self) -> i128 {
        self.net.broker().unwrap().state().memo(&self.m.uid())
    }

    fn bank(&self, peer: &Party) -> Amount {
        self.net.broker().unwrap().state().bank_balance(&peer.pan)
    }
}

/// A body sealed to `me`, with the secret of the scrip `pick` names if it names one.
fn sealed_with_optional_secret<B: Body>(
    frame: &[u8],
    me: &KeyPair,
    signer: &KeyPair,
    pick: impl Fn(&B) -> Option<(Scrip, Vec<u8>)>,
) -> (B, Option<CustomerSecret>) {
    let frame = Frame::decode(frame).unwrap();
    assert_eq!(frame.header.label, B::LABEL);
    let opened = frame.part(0).unwrap().open_sealed(me).unwrap();
    let body = opened.signed::<B>(signer.public()).unwrap().body;
    let cs = pick(&body).map(|(scrip, cs_hash)| opened.secret(scrip.id(), &cs_hash).unwrap());
    (body, cs)
}

/// A body sealed to `me` with the secret of the scrip `pick` names.
fn sealed_with_secret<B: Body>(
    frame: &[u8],
    me: &KeyPair,
    signer: &KeyPair,
    pick: impl Fn(&B) -> (Scrip, Vec<u8>),
) -> (B, CustomerSecret) {
    let frame = Frame::decode(frame).unwrap();
    assert_eq!(frame.header.label, B::LABEL);
    let opened = frame.part(0).unwrap().open_sealed(me).unwrap();
    let body = opened.signed::<B>(signer.public()).unwrap().body;
    let (scrip, cs_hash) = pick(&body);
    let cs = opened.secret(scrip.id(), &cs_hash).unwrap();
    (body, cs)
}

fn re_digest<B: Reply>(body: &B) -> Vec<u8> {
    body.re().digest.clone()
}

// ---------------------------------------------------------------------------------------
// 6.2

#[test]
fn exchange_issues_vendor_scrip_after_the_brokers_ok_in_both_suites() {
    for suite in Suite::ALL {
        let (mut w, b0) = World::holding(suite, 1_000);
        let bank_m = w.bank(&w.m);
        let tx = TxId::random();
        let (step2, ask) = w.exchange_asked(tx, &b0, 700);

        // Recorded before the request leaves; the request is pending, stored, repeatable.
        assert_eq!(
            w.merchant_ref().pending_broker_requests(),
            vec![ask.clone()]
        );
        assert_eq!(w.merchant_ref().state().tables.books.issued, amount(0));
        // C's repeat meanwhile: Ack { re } pending, nothing appended.
        let len = w.merchant_log_len();
        let pending = w.send_merchant(&step2, NOW).reply.expect("an Ack");
        let ack: AckBody = clear_body(&pending.frame, w.m.keys);
        assert_eq!(ack.re.label, Label::VendorScripRequest);
        assert_eq!(ack.deadline, None);
        assert_eq!(w.merchant_log_len(), len);
        assert_eq!(w.status(tx), TxStatus::Pending);

        // The broker decides: change to C with M's undertaking, OK to M.
        let decided = w.send_broker(&ask.frame, NOW);
        assert_eq!(decided.deliveries.len(), 1);
        assert_eq!(decided.deliveries[0].to, w.c.uid());
        let x4: ChangeBrokerScripX4 =
            sealed_body(&decided.deliveries[0].frame, w.c.keys, w.broker_keys());
        assert_eq!(x4.change.map(|c| c.scrip.value()), Some(amount(300)));
        assert_eq!(w.bank(&w.m), bank_m.checked_add(amount(700)).unwrap());
        assert_eq!(w.memo(), 700);

        let ReplyOutcome::Decided(out) = w.reply_to_merchant(decided.reply_frame(), NOW) else {
            panic!("the OK is acted on")
        };
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, w.c.uid());
        let (x6, v0) = w.open_x6(&out[0].frame);
        assert_eq!(v0.scrip.value(), amount(700));
        assert_eq!(v0.scrip.body.producer, w.m.uid());
        assert_eq!(re_digest(&x6), ack.re.digest, "X6 answers C's request");
        assert!(w.merchant_ref().pending_broker_requests().is_empty());
        assert_eq!(w.merchant_ref().state().tables.books.issued, amount(700));
        assert_eq!(w.record(&v0).unwrap().owner, w.c.uid());

        // C's repeat now gets the stored X6, byte for byte; TransactionStatus has it too.
        let len = w.merchant_log_len();
        assert_eq!(
            w.send_merchant(&step2, NOW).reply.unwrap().frame,
            out[0].frame
        );
        assert_eq!(w.merchant_log_len(), len);
        assert_eq!(
            w.status(tx),
            TxStatus::Frames {
                frames: vec![out[0].frame.clone()],
                omitted: 0
            }
        );
        // The broker's decision again (a duplicate): discarded, nothing changes.
        let len = w.merchant_log_len();
        assert!(matches!(
            w.reply_to_merchant(decided.reply_frame(), NOW),
            ReplyOutcome::Discarded(_)
        ));
        assert_eq!(w.merchant_log_len(), len);

        // V0 is spendable at the merchant.
        let bought = w.send_merchant(&w.purchase(TxId::random(), &v0), NOW);
        assert!(bought.refusal.is_none());
    }
}

#[test]
fn a_refused_exchange_is_recorded_and_answered_with_the_reason() {
    let (mut w, b0) = World::holding(Suite::Modern, 500);
    let tx = TxId::random();
    // C asks for more than its BrokerScrip holds: the broker's NOK is final.
    let (step2, ask) = w.exchange_asked(tx, &b0, 800);
    w.assert_exchange_refused(&step2, &ask, NOW, ErrorCode::ExceedsScrip);
}

#[test]
fn the_merchant_refuses_what_it_can_check_and_changes_nothing() {
    let (mut w, b0) = World::holding(Suite::Modern, 1_000);

    // Zero W.
    let tx = TxId::random();
    w.notice(tx);
    let zero = w.vendor_scrip_request(tx, &b0, 0, 0);
    w.merchant_refuses(&zero, NOW, ErrorCode::AmountOutOfRange);

    // The same tx with other content while the first request is pending: TxReused.
    let (_, _ask) = w.exchange_asked(tx, &b0, 100);
    let other = w.vendor_scrip_request(tx, &b0, 200, 200);
    w.merchant_refuses(&other, NOW, ErrorCode::TxReused);

    // Another customer's request under C's tx: TxReused.
    let x2 = VendorScripRequestX2 { value: amount(100) };
    let h = w.other.header(Label::VendorScripRequest, tx);
    let to_b = sealed_part(w.other.keys, &h, w.broker_keys().public(), None, &x2, None);
    let to_m = w.part(&w.other, &h, w.m.keys, &x2, None);
    w.merchant_refuses(&encoded(h, vec![to_b, to_m]), NOW, ErrorCode::TxReused);

    // A broker part sealed to someone else than the broker: BadFrame, nothing recorded.
    let h = w.c.header(Label::VendorScripRequest, TxId::random());
    let not_to_b = w.part(&w.c, &h, w.m.keys, &x2, None);
    let to_m = w.part(&w.c, &h, w.m.keys, &x2, None);
    let misaddressed = encoded(h, vec![not_to_b, to_m]);
    w.merchant_refuses(&misaddressed, NOW, ErrorCode::BadFrame);

    // An unknown customer: UnknownPeer before any cryptography.
    // (Fixture key 4 is no party of the kit's network of one merchant and two customers.)
    let stranger = Party::with_account(w.suite, 4, "NOBODY", "nobody's secret");
    let h = stranger.header(Label::VendorScripRequest, TxId::random());
    let part = w.part(&stranger, &h, w.m.keys, &x2, None);
    let unknown = encoded(h, vec![part.clone(), part]);
    w.merchant_refuses(&unknown, NOW, ErrorCode::UnknownPeer);
}

#[test]
fn a_merchant_reopened_after_asking_asks_again_and_finishes() {
    let (mut w, b0) = World::holding(Suite::Modern, 1_000);
    let tx = TxId::random();
    let (step2, ask) = w.exchange_asked(tx, &b0, 400);
    // The broker decides, but the decision is lost; both nodes restart.
    let first = w.send_broker(&ask.frame, NOW);
    w.reopen_merchant();
    w.reopen_broker();
    let again = w.merchant_ref().pending_broker_requests();
    assert_eq!(
        again,
        vec![ask.clone()],
        "the stored request, byte for byte"
    );
    // The broker answers the repeat from its stored decision; nothing is decided twice.
    let repeat = w.send_broker(&again[0].frame, NOW);
    assert_eq!(repeat.reply, first.reply);
    assert_eq!(w.memo(), 400);
    let ReplyOutcome::Decided(out) = w.reply_to_merchant(repeat.reply_frame(), NOW) else {
        panic!("acted on")
    };
    w.reopen_merchant();
    assert_eq!(
        w.send_merchant(&step2, NOW).reply.unwrap().frame,
        out[0].frame
    );
    assert_eq!(w.merchant_ref().state().tables.books.issued, amount(400));
    // Replay equality: a fresh replay of the log gives the live tables.
    w.merchant_ref().check_tables().unwrap();
}

#[test]
fn a_decision_not_from_the_broker_or_for_no_pending_request_is_discarded() {
    let (mut w, b0) = World::holding(Suite::Modern, 1_000);
    let tx = TxId::random();
    let (_, ask) = w.exchange_asked(tx, &b0, 400);
    let decided = w.send_broker(&ask.frame, NOW);
    // Re-signed by someone else: discarded.
    let frame = Frame::decode(decided.reply_frame()).unwrap();
    let mut forged = frame.clone();
    forged.header.sender = w.c.uid();
    let len = w.merchant_log_len();
    assert!(matches!(
        w.reply_to_merchant(&forged.encode().unwrap(), NOW),
        ReplyOutcome::Discarded(_)
    ));
    // Moved to another tx: the signature no longer verifies.
    let mut moved = frame;
    moved.header.tx = TxId::random();
    assert!(matches!(
        w.reply_to_merchant(&moved.encode().unwrap(), NOW),
        ReplyOutcome::Discarded(_)
    ));
    assert_eq!(w.merchant_log_len(), len);
    assert_eq!(w.merchant_ref().pending_broker_requests().len(), 1);
}

// ---------------------------------------------------------------------------------------
// 6.7

#[test]
fn withdrawal_holds_v0_and_spends_it_on_the_brokers_ok() {
    for suite in Suite::ALL {
        let (mut w, b0) = World::holding(suite, 1_000);
        let v0 = w.vendor_scrip(&b0, 600);
        let (bank_m, bank_c) = (w.bank(&w.m), w.bank(&w.c));
        let tx = TxId::random();
        let step1 = w.vendor_withdraw_request(tx, &v0, 600);
        let h = w.send_merchant(&step1, NOW);
        assert!(h.refusal.is_none(), "{:?}", h.refusal);
        let ack: AckBody = clear_body(&h.reply.as_ref().unwrap().frame, w.m.keys);
        let deadline = ack.deadline.expect("a deadline");
        assert!(deadline > NOW.get());
        assert_eq!(h.requests.len(), 1);
        let ask = h.requests[0].clone();
        assert_eq!(label_of(&ask.frame), Label::VendorWithdrawAuthorization);
        assert_eq!(
            w.merchant_ref().pending_broker_requests(),
            vec![ask.clone()]
        );
        assert_eq!(
            w.scrip_state(&v0),
            ScripState::Held {
                tx,
                until: deadline
            }
        );

        // Held: every other request on V0 is refused with Held, and changes nothing.
        w.merchant_refuses(&w.purchase(TxId::random(), &v0), NOW, ErrorCode::Held);
        w.merchant_refuses(&w.renew(TxId::random(), &v0), NOW, ErrorCode::Held);
        w.merchant_refuses(
            &w.vendor_withdraw_request(TxId::random(), &v0, 600),
            NOW,
            ErrorCode::Held,
        );
        // C's repeat: the stored Ack, byte for byte.
        let len = w.merchant_log_len();
        assert_eq!(w.send_merchant(&step1, NOW).reply, h.reply);
        assert_eq!(w.merchant_log_len(), len);

        // The broker decides on the first arrival, before the deadline; the decision is
        // lost, the merchant restarts and repeats after the deadline: the broker answers
        // from its stored decision, and the merchant acts on it then.
        w.reopen_merchant();
        let decided = w.send_broker(&ask.frame, NOW.saturating_add_secs(1));
        assert_eq!(decided.deliveries.len(), 1);
        let result: VendorWithdrawResultX4 =
            sealed_body(&decided.deliveries[0].frame, w.c.keys, w.broker_keys());
        assert_eq!(result.decision, Decision::Ok);
        let late = w.send_broker(
            &w.merchant_ref().pending_broker_requests()[0].frame.clone(),
            UnixSecs::new(deadline + 100),
        );
        assert_eq!(
            late.reply, decided.reply,
            "a repeat after the deadline: the stored decision"
        );
        let ReplyOutcome::Decided(out) =
            w.reply_to_merchant(decided.reply_frame(), UnixSecs::new(deadline + 100))
        else {
            panic!("acted on")
        };
        assert!(out.is_empty());
        assert!(w.record(&v0).is_none());
        assert_eq!(w.merchant_ref().state().tables.books.withdrawn, amount(600));
        assert!(w.merchant_ref().pending_broker_requests().is_empty());
        assert_eq!(w.bank(&w.m), bank_m.checked_sub(amount(600)).unwrap());
        assert_eq!(w.bank(&w.c), bank_c.checked_add(amount(600)).unwrap());
        assert_eq!(w.memo(), 0);
        // V0 is gone: spent (and nothing is said of a lapse).
        w.merchant_refuses(&w.purchase(TxId::random(), &v0), NOW, ErrorCode::Spent);
        let reply = w
            .send_merchant(&w.purchase(TxId::random(), &v0), NOW)
            .reply
            .unwrap();
        let body: ErrorBody = clear_body(&reply.frame, w.m.keys);
        assert!(!body.message.contains("lapsed"), "{}", body.message);
        w.reopen_merchant();
    }
}

#[test]
fn a_refused_withdrawal_releases_v0() {
    let (mut w, b0) = World::holding(Suite::Modern, 1_000);
    let v0 = w.vendor_scrip(&b0, 600);
    let tx = TxId::random();
    // C tells the broker another amount than V0 holds: the broker's NOK(AmountMismatch).
    let step1 = w.vendor_withdraw_request(tx, &v0, 500);
    let h = w.send_merchant(&step1, NOW);
    let decided = w.send_broker(&h.requests[0].frame, NOW);
    let ReplyOutcome::Decided(out) = w.reply_to_merchant(decided.reply_frame(), NOW) else {
        panic!("acted on")
    };
    assert!(out.is_empty());
    assert_eq!(w.scrip_state(&v0), ScripState::Live);
    assert_eq!(w.merchant_ref().state().tables.books.withdrawn, amount(0));
    assert!(w.merchant_ref().pending_broker_requests().is_empty());
    assert_eq!(w.memo(), 600);
    // V0 is spendable again.
    let bought = w.send_merchant(&w.purchase(TxId::random(), &v0), NOW);
    assert!(bought.refusal.is_none());
}

#[test]
fn withdrawal_refusals_at_the_merchant_change_nothing() {
    let (mut w, b0) = World::holding(Suite::Modern, 1_000);
    let tx62 = TxId::random();
    let v0 = w.vendor_scrip_in(tx62, &b0, 600);
    // Not the owner: the other customer presents C's V0.
    let tx = TxId::random();
    let h = w.other.header(Label::VendorWithdrawRequest, tx);
    let x0 = VendorWithdrawRequestX0 {
        scrip: v0.scrip.clone(),
        cs_hash: v0.cs.cs_hash(Suite::Modern),
    };
    let x1 = VendorWithdrawRequestX1 {
        value: amount(600),
        merchant: w.m.uid(),
    };
    // (Its broker part carries no IdProof: the merchant refuses before anything reads it.)
    let to_m = w.part(&w.other, &h, w.m.keys, &x0, Some(&v0));
    let to_b = sealed_part(w.other.keys, &h, w.broker_keys().public(), None, &x1, None);
    let frame = encoded(h, vec![to_m, to_b]);
    w.merchant_refuses(&frame, NOW, ErrorCode::NotOwner);
    // Expired.
    let late = v0.scrip.body.expires + 1;
    w.merchant_refuses(
        &w.vendor_withdraw_request(TxId::random(), &v0, 600),
        UnixSecs::new(late),
        ErrorCode::Expired,
    );
    // Another scrip's secret (consistent with the body's cs_hash): the Mint's check.
    let mut bad = v0.clone();
    bad.cs = b0.cs.clone();
    w.merchant_refuses(
        &w.vendor_withdraw_request(TxId::random(), &bad, 600),
        NOW,
        ErrorCode::BadCustomerSecret,
    );
    // The parts in the wrong order (broker part first).
    let good = Frame::decode(&w.vendor_withdraw_request(TxId::random(), &v0, 600)).unwrap();
    let swapped = encoded(
        good.header,
        vec![good.parts[1].clone(), good.parts[0].clone()],
    );
    w.merchant_refuses(&swapped, NOW, ErrorCode::BadFrame);
    // The tx of the 6.2 that issued V0, reused for a withdrawal: TxReused.
    w.merchant_refuses(
        &w.vendor_withdraw_request(tx62, &v0, 600),
        NOW,
        ErrorCode::TxReused,
    );
}

// ---------------------------------------------------------------------------------------
// 6.5, against the broker side of `broker2`

#[test]
fn top_up_end_to_end_issues_v1_after_the_brokers_ok() {
    for suite in Suite::ALL {
        let (mut w, b0) = World::holding(suite, 1_000);
        let (v0, b1) = w.vendor_scrip_with_change(TxId::random(), &b0, 300);
        let b1 = b1.expect("change of 700");
        let bank_m = w.bank(&w.m);
        let tx = TxId::random();
        let step1 = w.vendor_top_up_request(tx, &b1, &v0, 200, 500, 500);
        let (auth, step3, _) = w.top_up_asked(&step1);
        // V0 held at the merchant: every other request on it is refused.
        w.merchant_refuses(&w.purchase(TxId::random(), &v0), NOW, ErrorCode::Held);
        w.merchant_refuses(
            &w.vendor_withdraw_request(TxId::random(), &v0, 300),
            NOW,
            ErrorCode::Held,
        );
        // The broker re-sends step 2: the merchant answers with the same step 3.
        let resend = w
            .net
            .broker()
            .unwrap()
            .to_resend(NOW.saturating_add_secs(1));
        assert_eq!(resend.len(), 1);
        assert_eq!(resend[0].frame, auth);
        let again = w.send_merchant(&resend[0].frame, NOW.saturating_add_secs(1));
        assert_eq!(again.requests[0].frame, step3);
        // Both restart between the messages.
        w.reopen_merchant();
        w.reopen_broker();
        assert_eq!(w.merchant_ref().pending_broker_requests()[0].frame, step3);

        let decided = w.send_broker(&step3, NOW.saturating_add_secs(2));
        assert_eq!(label_of(decided.reply_frame()), Label::VendorTopUpDecision);
        let change: ChangeBrokerScripX4 =
            sealed_body(&decided.deliveries[0].frame, w.c.keys, w.broker_keys());
        assert_eq!(change.outcome, Decision::Ok);
        assert_eq!(change.change.map(|c| c.scrip.value()), Some(amount(500)));
        let ReplyOutcome::Decided(out) =
            w.reply_to_merchant(decided.reply_frame(), NOW.saturating_add_secs(3))
        else {
            panic!("the OK is acted on")
        };
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, w.c.uid());
        let (x4, cs1) =
            sealed_with_secret::<VendorTopUpResponseX4>(&out[0].frame, w.c.keys, w.m.keys, |b| {
                (b.scrip.clone(), b.cs_hash.clone())
            });
        assert_eq!(x4.scrip.value(), amount(500));
        assert!(w.merchant_ref().pending_broker_requests().is_empty());
        assert_eq!(w.merchant_ref().state().tables.books.issued, amount(500));
        assert_eq!(w.bank(&w.m), bank_m.checked_add(amount(200)).unwrap());
        assert_eq!(
            w.memo(),
            500,
            "the broker's memo agrees with the merchant's live value"
        );
        assert_eq!(w.merchant_ref().state().live_value().unwrap(), amount(500));
        // V0 is spent; V1 pays.
        w.merchant_refuses(&w.purchase(TxId::random(), &v0), NOW, ErrorCode::Spent);
        let v1 = Held {
            scrip: x4.scrip,
            cs: cs1,
        };
        assert!(
            w.send_merchant(&w.purchase(TxId::random(), &v1), NOW)
                .refusal
                .is_none()
        );
        w.reopen_merchant();
    }
}

#[test]
fn a_declined_top_up_holds_nothing_and_the_broker_releases_b0() {
    let (mut w, b0) = World::holding(Suite::Modern, 1_000);
    let (v0, b1) = w.vendor_scrip_with_change(TxId::random(), &b0, 500);
    let b1 = b1.expect("change");
    let tx = TxId::random();
    // C tells the merchant another W_V1 than the broker: the merchant declines.
    let step1 = w.vendor_top_up_request(tx, &b1, &v0, 200, 700, 999);
    let (_, step3, _) = w.top_up_asked(&step1);
    assert_eq!(
        w.scrip_state(&v0),
        ScripState::Live,
        "a decline holds nothing"
    );
    let decided = w.send_broker(&step3, NOW);
    let change: ChangeBrokerScripX4 =
        sealed_body(&decided.deliveries[0].frame, w.c.keys, w.broker_keys());
    assert!(!change.outcome.is_ok());
    let ReplyOutcome::Decided(out) = w.reply_to_merchant(decided.reply_frame(), NOW) else {
        panic!("the decision on the decline is recorded")
    };
    assert!(out.is_empty());
    assert!(w.merchant_ref().pending_broker_requests().is_empty());
    assert_eq!(w.merchant_ref().state().tables.books.issued, amount(500));
    assert_eq!(w.memo(), 500);
    // B1 is live again at the broker, V0 at the merchant.
    assert!(
        w.send_merchant(&w.purchase(TxId::random(), &v0), NOW)
            .refusal
            .is_none()
    );
}

#[test]
fn a_step3_after_the_brokers_deadline_gets_the_stored_nok_and_the_merchant_releases() {
    let (mut w, b0) = World::holding(Suite::Modern, 1_000);
    let (v0, b1) = w.vendor_scrip_with_change(TxId::random(), &b0, 300);
    let tx = TxId::random();
    let step1 = w.vendor_top_up_request(tx, &b1.expect("change"), &v0, 200, 500, 500);
    let (_, step3, deadline) = w.top_up_asked(&step1);
    // The step 3 is lost; the broker's deadline passes and it releases its escrow.
    assert_eq!(
        w.broker()
            .expire(UnixSecs::new(deadline + 1))
            .unwrap()
            .events,
        1
    );
    w.assert_conserved();
    // The merchant has not released V0 on its own; it repeats step 3 after a restart.
    w.reopen_merchant();
    assert!(matches!(w.scrip_state(&v0), ScripState::Held { .. }));
    let pending = w.merchant_ref().pending_broker_requests();
    assert_eq!(pending[0].frame, step3);
    let decided = w.send_broker(&pending[0].frame, UnixSecs::new(deadline + 5));
    let ReplyOutcome::Decided(out) =
        w.reply_to_merchant(decided.reply_frame(), UnixSecs::new(deadline + 5))
    else {
        panic!("the NOK is acted on")
    };
    assert!(out.is_empty());
    assert_eq!(w.scrip_state(&v0), ScripState::Live);
    assert!(w.merchant_ref().pending_broker_requests().is_empty());
    assert_eq!(w.merchant_ref().state().tables.books.issued, amount(300));
    assert_eq!(w.memo(), 300);
}

/// An `Error` from the broker (here its unsigned `TooManyRequests`, protocol.md section
/// 10) is no decision: the merchant discards it, records nothing and asks again.
#[test]
fn an_error_from_the_broker_is_no_decision_and_the_merchant_asks_again() {
    let (mut w, b0) = World::holding(Suite::Modern, 1_000);
    let tx = TxId::random();
    let (_, ask) = w.exchange_asked(tx, &b0, 250);
    let header = shared::wire::Frame::header_of(&ask.frame).unwrap();
    let over = shared::node::unsigned_error(
        Suite::Modern,
        w.broker_keys().uid(),
        &header,
        &[],
        &shared::node::too_many_requests(),
    )
    .unwrap();
    let len = w.merchant_log_len();
    assert_eq!(
        w.reply_to_merchant(&over, NOW),
        ReplyOutcome::Discarded(merchant::core::broker_reply::AckError::Unexpected(
            Label::Error
        ))
    );
    assert_eq!(w.merchant_log_len(), len);
    let pending = w.merchant_ref().pending_broker_requests();
    assert_eq!(pending, vec![ask]);
    let decided = w.send_broker(&pending[0].frame, NOW.saturating_add_secs(1));
    let ReplyOutcome::Decided(out) =
        w.reply_to_merchant(decided.reply_frame(), NOW.saturating_add_secs(1))
    else {
        panic!("acted on")
    };
    assert_eq!(w.open_x6(&out[0].frame).1.scrip.value(), amount(250));
}

/// A request for an exchange C never announced (6.2 step 4) gets the broker's recorded
/// NOK, which the merchant closes on: C is answered `NoOpenExchange`, nothing is issued
/// and nothing is asked again (section 10: every request for a decision gets one).
#[test]
fn an_exchange_never_announced_is_refused_and_the_merchant_closes_it() {
    let (mut w, b0) = World::holding(Suite::Modern, 1_000);
    let tx = TxId::random();
    let step2 = w.vendor_scrip_request(tx, &b0, 250, 250);
    let h = w.send_merchant(&step2, NOW);
    let ask = h.requests[0].clone();
    w.assert_exchange_refused(&step2, &ask, NOW, ErrorCode::NoOpenExchange);
}

/// The broker closes an exchange at its deadline; the merchant's late request gets the
/// recorded NOK, and C is answered with the reason; nothing is issued.
#[test]
fn an_exchange_past_the_brokers_deadline_is_refused_and_nothing_issued() {
    let (mut w, b0) = World::holding(Suite::Modern, 1_000);
    let tx = TxId::random();
    let (step2, ask) = w.exchange_asked(tx, &b0, 250);
    let late =
        NOW.saturating_add_secs(broker::core::Config::new(Suite::Modern).exchange_window_secs + 1);
    w.broker().expire(late).unwrap();
    w.assert_exchange_refused(&step2, &ask, late, ErrorCode::DeadlinePassed);
}

/// Lapse (protocol.md section 4): C's VendorScrip, never renewed, outlives its grace
/// period. The merchant's timer removes it (`ScripLapsed`, tx = the scrip id) and owes the
/// broker a signed `ScripLapsedNotice`, kept across a restart until the broker's `Ack`
/// (`LapseReported`); the broker moves the value from M's account to C's and lowers M's
/// memo float. Nothing is lost: conservation holds at every step, the scrip lapses once,
/// it never validates again, and replay agrees.
#[test]
fn an_unrenewed_vendor_scrip_lapses_once_and_its_value_goes_back_to_its_owner() {
    for suite in Suite::ALL {
        let (mut w, b0) = World::holding(suite, 1_000);
        let v0 = w.vendor_scrip(&b0, 600);
        let (bank_m, bank_c) = (w.bank(&w.m), w.bank(&w.c));
        let grace_end = v0.scrip.body.expires + merchant::core::DEFAULT_RENEWAL_GRACE_SECS;

        assert_eq!(
            w.merchant().lapse(UnixSecs::new(grace_end)).unwrap(),
            0,
            "renewable to the last second"
        );
        let len = w.merchant_log_len();
        assert_eq!(w.merchant().lapse(UnixSecs::new(grace_end + 1)).unwrap(), 1);
        assert_eq!(w.merchant_log_len(), len + 1);
        let books = w.merchant_ref().state().tables.books;
        assert_eq!(books.withdrawn, amount(600));
        assert_eq!(w.merchant_ref().state().live_value().unwrap(), amount(0));
        let pending = w.merchant_ref().pending_broker_requests();
        assert_eq!(pending.len(), 1);
        assert_eq!(label_of(&pending[0].frame), Label::ScripLapsedNotice);
        assert_eq!(
            Frame::decode(&pending[0].frame).unwrap().header.tx,
            TxId(v0.scrip.id().0)
        );
        let notice: ScripLapsedNoticeBody = clear_body(&pending[0].frame, w.m.keys);
        assert_eq!(
            (notice.owner, notice.value, notice.expires),
            (w.c.uid(), amount(600), v0.scrip.body.expires)
        );
        // Once only, and the notice survives a restart, byte for byte.
        assert_eq!(w.merchant().lapse(UnixSecs::new(grace_end + 2)).unwrap(), 0);
        w.reopen_merchant();
        assert_eq!(w.merchant_ref().pending_broker_requests(), pending);

        // The broker records it; its Ack is lost, the merchant repeats, the same Ack.
        let acked = w.send_broker(&pending[0].frame, UnixSecs::new(grace_end + 3));
        assert_eq!(w.bank(&w.m), bank_m.checked_sub(amount(600)).unwrap());
        assert_eq!(w.bank(&w.c), bank_c.checked_add(amount(600)).unwrap());
        assert_eq!(w.memo(), 0, "M's float: 600 issued, 600 lapsed");
        let again = w.send_broker(&pending[0].frame, UnixSecs::new(grace_end + 4));
        assert_eq!(again.reply, acked.reply);
        assert_eq!(w.bank(&w.c), bank_c.checked_add(amount(600)).unwrap());

        // An Ack whose signature does not verify is discarded; the broker's ends the duty.
        let len = w.merchant_log_len();
        let forged = {
            let mut frame = Frame::decode(acked.reply_frame()).unwrap();
            let Part::Signed { sig, .. } = &mut frame.parts[0] else {
                panic!("the broker's Ack of a lapse is signed in the clear")
            };
            sig[0] ^= 1;
            frame.encode().unwrap()
        };
        assert!(matches!(
            w.reply_to_merchant(&forged, UnixSecs::new(grace_end + 5)),
            ReplyOutcome::Discarded(_)
        ));
        assert_eq!(w.merchant_log_len(), len);
        assert!(matches!(
            w.reply_to_merchant(acked.reply_frame(), UnixSecs::new(grace_end + 5)),
            ReplyOutcome::Recorded
        ));
        assert!(w.merchant_ref().pending_broker_requests().is_empty());
        // A repeat of the Ack answers nothing pending: discarded, nothing written.
        let len = w.merchant_log_len();
        assert!(matches!(
            w.reply_to_merchant(acked.reply_frame(), UnixSecs::new(grace_end + 6)),
            ReplyOutcome::Discarded(_)
        ));
        assert_eq!(w.merchant_log_len(), len);

        // Gone: never valid again, and its owner is told where the value went when it next
        // presents it (a purchase before or after its expiry, a renewal past the grace):
        // `Lapsed`, where anyone else would have got Spent, Expired or GraceOver.
        for (frame, at) in [
            (w.purchase(TxId::random(), &v0), NOW),
            (
                w.purchase(TxId::random(), &v0),
                UnixSecs::new(grace_end + 10),
            ),
            (w.renew(TxId::random(), &v0), UnixSecs::new(grace_end + 10)),
        ] {
            w.merchant_refuses(&frame, at, ErrorCode::Lapsed);
            let reply = w.send_merchant(&frame, at).reply.unwrap();
            let body: ErrorBody = clear_body(&reply.frame, w.m.keys);
            assert!(
                body.message.contains(
                    "lapsed after its renewal grace period; its value went back to your bank account"
                ),
                "{}",
                body.message
            );
        }
        let tables = w.merchant_ref().state().tables.clone();
        w.reopen_merchant();
        assert_eq!(w.merchant_ref().state().tables, tables, "replay agrees");
    }
}

/// Several VendorScrip lapsing in one timer run (a merchant started after their grace
/// ended): each notice is stored under its own scrip's tx, so every one is sent, recorded
/// by the broker and acknowledged, and every owner is paid back (protocol.md section 4).
#[test]
fn scrip_lapsing_together_are_each_reported_and_paid_back() {
    for suite in Suite::ALL {
        let (mut w, b0) = World::holding(suite, 1_000);
        let (v0, b1) = w.vendor_scrip_with_change(TxId::random(), &b0, 600);
        let v1 = w.vendor_scrip(&b1.unwrap(), 300);
        let (bank_m, bank_c) = (w.bank(&w.m), w.bank(&w.c));
        assert_eq!(w.memo(), 900);
        let grace_end = v0.scrip.body.expires.max(v1.scrip.body.expires)
            + merchant::core::DEFAULT_RENEWAL_GRACE_SECS;

        assert_eq!(w.merchant().lapse(UnixSecs::new(grace_end + 1)).unwrap(), 2);
        w.reopen_merchant();
        let pending = w.merchant_ref().pending_broker_requests();
        let mut txs: Vec<TxId> = pending
            .iter()
            .map(|p| {
                assert_eq!(label_of(&p.frame), Label::ScripLapsedNotice);
                Frame::decode(&p.frame).unwrap().header.tx
            })
            .collect();
        txs.sort_unstable();
        let mut expected = vec![TxId(v0.scrip.id().0), TxId(v1.scrip.id().0)];
        expected.sort_unstable();
        assert_eq!(
            txs, expected,
            "one notice per lapsed scrip, each under its own tx"
        );

        for p in &pending {
            let acked = w.send_broker(&p.frame, UnixSecs::new(grace_end + 2));
            assert!(matches!(
                w.reply_to_merchant(acked.reply_frame(), UnixSecs::new(grace_end + 3)),
                ReplyOutcome::Recorded
            ));
        }
        assert!(w.merchant_ref().pending_broker_requests().is_empty());
        assert_eq!(w.bank(&w.m), bank_m.checked_sub(amount(900)).unwrap());
        assert_eq!(w.bank(&w.c), bank_c.checked_add(amount(900)).unwrap());
        assert_eq!(w.memo(), 0, "nothing left in M's float");
        let tables = w.merchant_ref().state().tables.clone();
        w.reopen_merchant();
        assert_eq!(w.merchant_ref().state().tables, tables, "replay agrees");
    }
}

/// A VendorScrip held by an escrow (a 6.7 withdrawal awaiting the broker) does not lapse,
/// even past its grace: only the escrow's decision ends a hold (protocol.md section 4).
#[test]
fn a_held_vendor_scrip_does_not_lapse() {
    let (mut w, b0) = World::holding(Suite::Paper, 1_000);
    let v0 = w.vendor_scrip(&b0, 600);
    let step1 = w.vendor_withdraw_request(TxId::random(), &v0, 600);
    assert!(w.send_merchant(&step1, NOW).refusal.is_none());
    let grace_end = v0.scrip.body.expires + merchant::core::DEFAULT_RENEWAL_GRACE_SECS;
    let len = w.merchant_log_len();
    assert_eq!(w.merchant().lapse(UnixSecs::new(grace_end + 1)).unwrap(), 0);
    assert_eq!(w.merchant_log_len(), len);
    let pending = w.merchant_ref().pending_broker_requests();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        label_of(&pending[0].frame),
        Label::VendorWithdrawAuthorization
    );
}
