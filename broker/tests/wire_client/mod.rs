//! The broker's tests' wire client: a minimal client ([`Client`]) that builds request
//! frames with the `shared::wire` builders, byte by byte as protocol.md section 6 lays them
//! out, and reads the broker's replies, so that every refusal can be provoked with a frame
//! no real wallet would send; and the broker it talks to ([`World`]: a `BrokerNode` in a
//! temporary directory that can be reopened).
//!
//! It lives here rather than in the `tests` package's network kit
//! (`peerscrip_tests::network`) because `tests` depends on `broker`: a dev-dependency back
//! would build two copies of this crate.
#![allow(dead_code, clippy::unwrap_used)]

use broker::core::{Config, State};
use broker::node::{BrokerNode, Handled};
use shared::UnixSecs;
use shared::events::Evidence;
use shared::ids::{AccountId, Nonce, Pan, PanSecret, TxId, Uid};
use shared::node::Recorded;
use shared::wire::bodies::{
    AckBody, BrokerScripRequestX0, BrokerScripTopUpX0, BrokerScripWithdrawX0, ErrorBody,
    ExchangeAuthorizationRequestX3, PublicKeyRequestX0, PurchaseCompletedX3, PurchaseInitiatedX0,
    RegistrationRequestX0, RenewRequestX0, VendorScripNoticeX0, VendorScripRequestX1,
    VendorScripRequestX2, VendorTopUpAcceptedX3, VendorTopUpAuthorizationX2, VendorTopUpRequestX0,
    VendorTopUpRequestX1,
};
use shared::wire::{
    Body, Frame, Header, Inner, Label, Part, id_proof, public_key_inner, seal, secret_inner, sign,
};
use shared::{Amount, CustomerSecret, ErrorCode, KeyPair, PublicKey, Scrip, Suite, fixtures};

/// A fixed "now": 2027-01-15.
pub const NOW: UnixSecs = UnixSecs::new(1_800_000_000);

/// A customer's scrip and its secret, as a wallet keeps them.
#[derive(Clone, Debug)]
pub struct Held {
    pub scrip: Scrip,
    pub cs: CustomerSecret,
}

/// A peer: a fixture key pair and a bank account.
pub struct Client {
    pub suite: Suite,
    pub key: &'static KeyPair,
    pub pan: Pan,
    pub secret: PanSecret,
    pub broker: PublicKey,
}

impl Client {
    pub fn new(suite: Suite, index: usize, pan: &str, broker: &PublicKey) -> Client {
        Client {
            suite,
            key: fixtures::keypair(suite, index),
            pan: Pan::new(pan),
            secret: PanSecret::new(&format!("secret of account {pan} for tests")),
            broker: broker.clone(),
        }
    }

    pub fn uid(&self) -> Uid {
        self.key.uid()
    }

    pub fn id(&self) -> AccountId {
        AccountId::derive(self.suite, &self.secret, &self.pan)
    }

    pub fn header(&self, label: Label, tx: TxId) -> Header {
        Header::new(self.suite, label, tx, self.uid())
    }

    fn sealed_frame(&self, header: Header, inners: &[Inner]) -> Vec<u8> {
        let part = seal(&header, &self.broker, inners).unwrap();
        Frame::new(header, vec![part]).encode().unwrap()
    }

    fn signed<B: Body>(&self, header: &Header, body: &B) -> Inner {
        sign(self.key, header, body).unwrap().into()
    }

    /// 6.0 step 1.
    pub fn registration(&self, tx: TxId) -> Vec<u8> {
        self.registration_for(tx, &self.pan, &self.id())
    }

    /// 6.0 step 1 for `pan`, proving `id`.
    pub fn registration_for(&self, tx: TxId, pan: &Pan, id: &AccountId) -> Vec<u8> {
        let h = self.header(Label::RegistrationRequest, tx);
        let x0 = RegistrationRequestX0 { pan: pan.clone() };
        self.sealed_frame(
            h,
            &[
                self.signed(&h, &x0),
                id_proof(self.key, &h, id).unwrap(),
                public_key_inner(self.key.public()),
            ],
        )
    }

    /// 6.0b step 1.
    pub fn public_key_request(&self, tx: TxId, target: Uid, nonce: Nonce) -> Vec<u8> {
        let h = self.header(Label::PublicKeyRequest, tx);
        let x0 = PublicKeyRequestX0 { target, nonce };
        let part: Part = sign(self.key, &h, &x0).unwrap().into();
        Frame::new(h, vec![part]).encode().unwrap()
    }

    /// 6.1 step 1.
    pub fn obtain(&self, tx: TxId, value: u64, nonce: Nonce) -> Vec<u8> {
        let h = self.header(Label::BrokerScripRequest, tx);
        let x0 = BrokerScripRequestX0 {
            value: Amount::from_minor(value),
            nonce,
        };
        self.sealed_frame(
            h,
            &[
                id_proof(self.key, &h, &self.id()).unwrap(),
                self.signed(&h, &x0),
            ],
        )
    }

    /// 6.4 step 1.
    pub fn top_up(&self, tx: TxId, held: &Held, new_value: u64, nonce: Nonce) -> Vec<u8> {
        let h = self.header(Label::BrokerScripTopUp, tx);
        let x0 = BrokerScripTopUpX0 {
            scrip: held.scrip.clone(),
            cs_hash: held.cs.cs_hash(self.suite),
            new_value: Amount::from_minor(new_value),
            nonce,
        };
        self.sealed_frame(
            h,
            &[
                id_proof(self.key, &h, &self.id()).unwrap(),
                self.signed(&h, &x0),
                secret_inner(held.scrip.id(), &held.cs),
            ],
        )
    }

    /// 6.6 step 1.
    pub fn withdraw(&self, tx: TxId, held: &Held) -> Vec<u8> {
        let h = self.header(Label::BrokerScripWithdraw, tx);
        let x0 = BrokerScripWithdrawX0 {
            scrip: held.scrip.clone(),
            cs_hash: held.cs.cs_hash(self.suite),
        };
        self.sealed_frame(
            h,
            &[
                id_proof(self.key, &h, &self.id()).unwrap(),
                self.signed(&h, &x0),
                secret_inner(held.scrip.id(), &held.cs),
            ],
        )
    }

    /// 6.8 step 1.
    pub fn renew(&self, tx: TxId, held: &Held) -> Vec<u8> {
        let h = self.header(Label::RenewRequest, tx);
        let x0 = RenewRequestX0 {
            scrip: held.scrip.clone(),
            cs_hash: held.cs.cs_hash(self.suite),
        };
        self.sealed_frame(
            h,
            &[
                self.signed(&h, &x0),
                secret_inner(held.scrip.id(), &held.cs),
            ],
        )
    }

    /// 6.2 step 1.
    pub fn notice(&self, tx: TxId, merchant: Uid) -> Vec<u8> {
        let h = self.header(Label::VendorScripNotice, tx);
        let x0 = VendorScripNoticeX0 { merchant };
        self.sealed_frame(
            h,
            &[
                id_proof(self.key, &h, &self.id()).unwrap(),
                self.signed(&h, &x0),
            ],
        )
    }

    /// 6.2 step 2, C → M: the broker's part (X1 with `w_broker`) and M's part (X2 with
    /// `w_merchant`).
    pub fn vendor_scrip_request(
        &self,
        tx: TxId,
        merchant: &PublicKey,
        held: &Held,
        w_broker: u64,
        w_merchant: u64,
    ) -> Vec<u8> {
        let h = self.header(Label::VendorScripRequest, tx);
        let x1 = VendorScripRequestX1 {
            scrip: held.scrip.clone(),
            cs_hash: held.cs.cs_hash(self.suite),
            value: Amount::from_minor(w_broker),
        };
        let x2 = VendorScripRequestX2 {
            value: Amount::from_minor(w_merchant),
        };
        let to_b = seal(
            &h,
            &self.broker,
            &[
                id_proof(self.key, &h, &self.id()).unwrap(),
                self.signed(&h, &x1),
                secret_inner(held.scrip.id(), &held.cs),
            ],
        )
        .unwrap();
        let to_m = seal(&h, merchant, &[self.signed(&h, &x2)]).unwrap();
        Frame::new(h, vec![to_b, to_m]).encode().unwrap()
    }

    /// 6.2 step 3, as merchant: `X3 = W, UID_C` with its IdProof, plus part 0 of the
    /// customer's step 2 frame forwarded unchanged.
    pub fn exchange_authorization(&self, step2: &[u8], customer: Uid, w: u64) -> Vec<u8> {
        let incoming = Frame::decode(step2).unwrap();
        let h = self.header(Label::ExchangeAuthorizationRequest, incoming.header.tx);
        let x3 = ExchangeAuthorizationRequestX3 {
            value: Amount::from_minor(w),
            customer,
        };
        let own = seal(
            &h,
            &self.broker,
            &[
                id_proof(self.key, &h, &self.id()).unwrap(),
                self.signed(&h, &x3),
            ],
        )
        .unwrap();
        Frame::new(h, vec![own, incoming.forward(0).unwrap()])
            .encode()
            .unwrap()
    }

    /// 6.5 step 1, C → B: part 0 sealed to B (`IdProof`, `X0`, `Secret(CS_B0)`), part 1
    /// sealed to `merchant` (`X1 = W_V1, V0, CS_V0`, `Secret(CS_V0)`). `x0` is given whole,
    /// so that a test can make it lie.
    pub fn vendor_top_up_request_with(
        &self,
        tx: TxId,
        x0: &VendorTopUpRequestX0,
        b0: &Held,
        merchant: &PublicKey,
        v0: &Held,
    ) -> Vec<u8> {
        let h = self.header(Label::VendorTopUpRequest, tx);
        let x1 = VendorTopUpRequestX1 {
            new_value: x0.new_value,
            vendor_scrip: v0.scrip.clone(),
            cs_hash: v0.cs.cs_hash(self.suite),
        };
        let to_b = seal(
            &h,
            &self.broker,
            &[
                id_proof(self.key, &h, &self.id()).unwrap(),
                self.signed(&h, x0),
                secret_inner(b0.scrip.id(), &b0.cs),
            ],
        )
        .unwrap();
        let to_m = seal(
            &h,
            merchant,
            &[self.signed(&h, &x1), secret_inner(v0.scrip.id(), &v0.cs)],
        )
        .unwrap();
        Frame::new(h, vec![to_b, to_m]).encode().unwrap()
    }

    /// 6.5 step 1 as a wallet sends it: `W_V1 = V0.value + W_V`.
    pub fn vendor_top_up_request(
        &self,
        tx: TxId,
        merchant: &PublicKey,
        b0: &Held,
        v0: &Held,
        top_up: u64,
    ) -> Vec<u8> {
        let x0 = VendorTopUpRequestX0 {
            new_value: v0
                .scrip
                .value()
                .checked_add(Amount::from_minor(top_up))
                .unwrap(),
            top_up: Amount::from_minor(top_up),
            merchant: merchant.uid(),
            broker_scrip: b0.scrip.clone(),
            cs_hash: b0.cs.cs_hash(self.suite),
        };
        self.vendor_top_up_request_with(tx, &x0, b0, merchant, v0)
    }

    /// 6.5 step 3, as merchant: `X3` sealed to B.
    pub fn vendor_top_up_accepted(&self, tx: TxId, x3: &VendorTopUpAcceptedX3) -> Vec<u8> {
        let h = self.header(Label::VendorTopUpAccepted, tx);
        self.sealed_frame(h, &[self.signed(&h, x3)])
    }

    /// 6.5 step 2 as the merchant reads it: the broker's `X2` (sealed to M, signed by B)
    /// and C's forwarded part (`X1` signed by C under C's own header, with `CS_V0`).
    pub fn open_authorization(
        &self,
        frame: &[u8],
        customer: &PublicKey,
    ) -> (VendorTopUpAuthorizationX2, VendorTopUpRequestX1, Held) {
        let frame = Frame::decode(frame).unwrap();
        assert_eq!(frame.header.label, Label::VendorTopUpAuthorization);
        assert_eq!(frame.parts.len(), 2);
        let x2 = frame
            .part(0)
            .unwrap()
            .open_sealed(self.key)
            .unwrap()
            .signed::<VendorTopUpAuthorizationX2>(&self.broker)
            .unwrap()
            .body;
        let relayed = frame.part(1).unwrap();
        assert!(relayed.forwarded);
        assert_eq!(relayed.header.label, Label::VendorTopUpRequest);
        assert_eq!(relayed.header.sender, customer.uid());
        assert_eq!(relayed.header.tx, frame.header.tx);
        let opened = relayed.open_sealed(self.key).unwrap();
        let x1 = opened
            .signed::<VendorTopUpRequestX1>(customer)
            .unwrap()
            .body;
        let cs = opened.secret(x1.vendor_scrip.id(), &x1.cs_hash).unwrap();
        let v0 = Held {
            scrip: x1.vendor_scrip.clone(),
            cs,
        };
        (x2, x1, v0)
    }

    /// A VendorScrip of `value` issued by this peer as merchant (its own Mint), for 6.5.
    pub fn issue_vendor_scrip(&self, value: u64) -> Held {
        let mint = shared::Mint::new(self.suite, self.uid(), fixtures::root_key(7));
        let (scrip, cs) = mint.issue(
            Amount::from_minor(value),
            NOW.saturating_add_secs(30 * 24 * 3600).get(),
        );
        Held { scrip, cs }
    }

    /// Section 7: the frames of `tx` sent to this party (asked under `tx` itself).
    pub fn transaction_status(&self, tx: TxId) -> Vec<u8> {
        let h = self.header(Label::TransactionStatus, tx);
        let body = shared::wire::bodies::TransactionStatusBody { tx };
        let part: Part = sign(self.key, &h, &body).unwrap().into();
        Frame::new(h, vec![part]).encode().unwrap()
    }

    /// 6.7 step 1, C → M: `Sealed(to M){X0 = V0, CS_V0}`, `Sealed(to B){IdProof, X1 = W,
    /// UID_M}`.
    pub fn vendor_withdraw_request(
        &self,
        tx: TxId,
        merchant: &PublicKey,
        v0: &Held,
        w: u64,
    ) -> Vec<u8> {
        let h = self.header(Label::VendorWithdrawRequest, tx);
        let x0 = shared::wire::bodies::VendorWithdrawRequestX0 {
            scrip: v0.scrip.clone(),
            cs_hash: v0.cs.cs_hash(self.suite),
        };
        let x1 = shared::wire::bodies::VendorWithdrawRequestX1 {
            value: Amount::from_minor(w),
            merchant: merchant.uid(),
        };
        let to_m = seal(
            &h,
            merchant,
            &[self.signed(&h, &x0), secret_inner(v0.scrip.id(), &v0.cs)],
        )
        .unwrap();
        let to_b = seal(
            &h,
            &self.broker,
            &[
                id_proof(self.key, &h, &self.id()).unwrap(),
                self.signed(&h, &x1),
            ],
        )
        .unwrap();
        Frame::new(h, vec![to_m, to_b]).encode().unwrap()
    }

    /// 6.7 step 2, as merchant: `X2 = W, UID_C, deadline` with its IdProof, plus the
    /// broker's part (index 1) of the customer's step 1 forwarded unchanged.
    pub fn vendor_withdraw_authorization(
        &self,
        step1: &[u8],
        customer: Uid,
        w: u64,
        deadline: u64,
    ) -> Vec<u8> {
        let incoming = Frame::decode(step1).unwrap();
        let h = self.header(Label::VendorWithdrawAuthorization, incoming.header.tx);
        let x2 = shared::wire::bodies::VendorWithdrawAuthorizationX2 {
            value: Amount::from_minor(w),
            customer,
            deadline,
        };
        let own = seal(
            &h,
            &self.broker,
            &[
                id_proof(self.key, &h, &self.id()).unwrap(),
                self.signed(&h, &x2),
            ],
        )
        .unwrap();
        Frame::new(h, vec![own, incoming.forward(1).unwrap()])
            .encode()
            .unwrap()
    }

    /// Section 4, as merchant: a lapsed VendorScrip, signed in the clear.
    pub fn scrip_lapsed_notice(
        &self,
        tx: TxId,
        scrip_id: shared::ScripId,
        owner: Uid,
        value: u64,
    ) -> Vec<u8> {
        let h = self.header(Label::ScripLapsedNotice, tx);
        let body = shared::wire::bodies::ScripLapsedNoticeBody {
            scrip_id,
            owner,
            value: Amount::from_minor(value),
            expires: NOW.get(),
        };
        let part: Part = sign(self.key, &h, &body).unwrap().into();
        Frame::new(h, vec![part]).encode().unwrap()
    }

    /// 6.3 step 1, signed in the clear.
    pub fn purchase_initiated(&self, tx: TxId, merchant: Uid, w: u64) -> Vec<u8> {
        let h = self.header(Label::PurchaseInitiated, tx);
        let x0 = PurchaseInitiatedX0 {
            merchant,
            value: Amount::from_minor(w),
        };
        let part: Part = sign(self.key, &h, &x0).unwrap().into();
        Frame::new(h, vec![part]).encode().unwrap()
    }

    /// 6.3 step 5, as merchant, signed in the clear.
    pub fn purchase_completed(&self, tx: TxId, customer: Uid, w: u64) -> Vec<u8> {
        let h = self.header(Label::PurchaseCompleted, tx);
        let x3 = PurchaseCompletedX3 {
            customer,
            value: Amount::from_minor(w),
        };
        let part: Part = sign(self.key, &h, &x3).unwrap().into();
        Frame::new(h, vec![part]).encode().unwrap()
    }

    /// A sealed reply's signed body, verified with the broker's key.
    pub fn open_sealed<B: Body>(&self, reply: &[u8]) -> B {
        let frame = Frame::decode(reply).unwrap();
        assert_eq!(frame.header.label, B::LABEL, "reply label");
        let opened = frame.part(0).unwrap().open_sealed(self.key).unwrap();
        opened.signed::<B>(&self.broker).unwrap().body
    }

    /// A sealed reply carrying a scrip: the scrip and its secret, checked against cs_hash.
    pub fn open_scrip<B: Body>(
        &self,
        reply: &[u8],
        pick: impl Fn(&B) -> (Scrip, Vec<u8>),
    ) -> (B, Held) {
        let frame = Frame::decode(reply).unwrap();
        assert_eq!(frame.header.label, B::LABEL, "reply label");
        let opened = frame.part(0).unwrap().open_sealed(self.key).unwrap();
        let body = opened.signed::<B>(&self.broker).unwrap().body;
        let (scrip, cs_hash) = pick(&body);
        let cs = opened.secret(scrip.id(), &cs_hash).unwrap();
        (body, Held { scrip, cs })
    }

    /// The broker's unsigned `Ack` to 6.3 steps 1 and 5 (ADR 0008), from the broker and
    /// answering a request of this client.
    pub fn open_unsigned_ack(&self, reply: &[u8]) -> AckBody {
        let frame = Frame::decode(reply).unwrap();
        assert_eq!(frame.header.sender, self.broker.uid());
        let ack = frame.part(0).unwrap().unsigned_ack().unwrap();
        assert_eq!(ack.re.sender, self.uid());
        ack
    }

    /// A reply signed in the clear, verified with the broker's key.
    pub fn open_clear<B: Body>(&self, reply: &[u8]) -> B {
        let frame = Frame::decode(reply).unwrap();
        assert_eq!(frame.header.label, B::LABEL, "reply label");
        frame
            .part(0)
            .unwrap()
            .verify_signed::<B>(&self.broker)
            .unwrap()
            .body
    }
}

/// The code of an `Error` reply (verified with the broker's key, or unsigned for a frame
/// the broker could not verify or a quota's refusal), or `None` if the reply is not an
/// `Error`.
pub fn error_code(broker: &PublicKey, reply: &[u8]) -> Option<ErrorCode> {
    let frame = Frame::decode(reply).unwrap();
    if frame.header.label != Label::Error {
        return None;
    }
    if let Some(body) = shared::node::unsigned_error_in(&frame, broker.uid(), frame.header.tx) {
        return body.error_code();
    }
    let body = frame
        .part(0)
        .unwrap()
        .verify_signed::<ErrorBody>(broker)
        .unwrap()
        .body;
    body.error_code()
}

/// A broker in a temporary directory.
pub struct World {
    pub suite: Suite,
    pub dir: tempfile::TempDir,
    pub node: Option<BrokerNode>,
    pub config: Config,
}

pub const BROKER_KEY: usize = 1;

impl World {
    pub fn new(suite: Suite) -> World {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(suite);
        let mut w = World {
            suite,
            dir,
            node: None,
            config,
        };
        w.reopen();
        w
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("broker.redb")
    }

    /// A broker whose file is on a disk the test can fill (`shared::events::faults`): its
    /// writes fail while the returned switch is on.
    pub fn on_faulty_disk(suite: Suite) -> (World, shared::events::faults::Faults) {
        use shared::events::faults::{Faults, FaultyFile};
        use shared::events::{EventLog, LogIdentity};
        let mut w = World::new(suite);
        w.node.take().unwrap().close().unwrap();
        let faults = Faults::new();
        let (path, switch) = (w.path(), faults.clone());
        let log = EventLog::open_on_backend(
            w.path(),
            move || FaultyFile::open(&path, switch.clone()),
            LogIdentity::new(suite, broker::node::NODE_KIND),
        )
        .unwrap();
        let keys = fixtures::keypair(suite, BROKER_KEY).clone();
        w.node = Some(BrokerNode::on_log(log, keys, fixtures::root_key(1), w.config).unwrap());
        (w, faults)
    }

    /// Closes the node (if open) and opens it again from its file.
    pub fn reopen(&mut self) {
        if let Some(node) = self.node.take() {
            node.close().unwrap();
        }
        let keys = fixtures::keypair(self.suite, BROKER_KEY).clone();
        self.node =
            Some(BrokerNode::open(self.path(), keys, fixtures::root_key(1), self.config).unwrap());
    }

    pub fn node(&mut self) -> &mut BrokerNode {
        self.node.as_mut().unwrap()
    }

    pub fn state(&self) -> &State {
        self.node.as_ref().unwrap().state()
    }

    /// Replays the log into a fresh file (protocol.md section 8): the state is the live
    /// one and the tables are `live`, the live node's.
    pub fn assert_replay_matches(&self, live: &shared::events::ProjectionDump) {
        use broker::store::LiveProjection;
        let scratch = tempfile::tempdir().unwrap();
        let db = redb::Database::create(scratch.path().join("replay.redb")).unwrap();
        let mut replayed = State::new(self.suite);
        self.node
            .as_ref()
            .unwrap()
            .log()
            .replay_into(&LiveProjection::new(&mut replayed), &db)
            .unwrap();
        assert_eq!(&replayed, self.state());
        let rebuilt =
            shared::events::dump_projection(&db, &LiveProjection::new(&mut State::new(self.suite)))
                .unwrap();
        assert_eq!(&rebuilt, live);
    }

    /// `handle` of `request` at `now` is `Unavailable` (protocol.md section 10), with the
    /// unsigned answer naming it and no detail of the fault.
    pub fn assert_unavailable(&mut self, request: &[u8], now: UnixSecs) {
        use broker::node::NodeError;
        use shared::node::{UNAVAILABLE_MESSAGE, Unavailable, is_unavailable};
        let broker = self.broker_key().uid();
        let result = self.node().handle(request, now);
        let Err(NodeError::Unavailable(Unavailable { reply, .. })) = result else {
            panic!("expected Unavailable, got {result:?}")
        };
        let reply = reply.expect("an answer to a request with a header");
        let header = Frame::decode(request).unwrap().header;
        assert!(is_unavailable(&reply, broker, header.tx));
        let frame = Frame::decode(&reply).unwrap();
        let body: ErrorBody = frame.part(0).unwrap().unsigned().unwrap();
        assert_eq!(body.error_code(), Some(ErrorCode::Unavailable));
        assert_eq!(body.re, shared::wire::bodies::Re::new(&header, Vec::new()));
        assert_eq!(
            body.message, UNAVAILABLE_MESSAGE,
            "no detail of the fault leaves"
        );
    }

    pub fn broker_key(&self) -> PublicKey {
        fixtures::keypair(self.suite, BROKER_KEY).public().clone()
    }

    pub fn log_len(&self) -> u64 {
        self.node.as_ref().unwrap().log().len().unwrap()
    }

    pub fn client(&self, index: usize, pan: &str) -> Client {
        Client::new(self.suite, index, pan, &self.broker_key())
    }

    /// Opens the client's account with `deposit` in it and registers its key.
    pub fn onboard(&mut self, client: &Client, deposit: u64) {
        self.node()
            .open_account(&client.pan, &client.secret, NOW)
            .unwrap();
        if deposit > 0 {
            self.node()
                .deposit(&client.pan, Amount::from_minor(deposit), NOW)
                .unwrap();
        }
        let reply = self.send(&client.registration(TxId::random()), NOW);
        assert_eq!(error_code(&self.broker_key(), &reply), None);
        assert_conserved(self.state());
    }

    /// Sends a request; returns the reply bytes. Deliveries must be none.
    pub fn send(&mut self, frame: &[u8], now: UnixSecs) -> Vec<u8> {
        let handled = self.send_all(frame, now);
        assert!(handled.deliveries.is_empty() && handled.requests.is_empty());
        handled.reply_frame().to_vec()
    }

    /// Sends a request; returns the reply and the deliveries.
    pub fn send_all(&mut self, frame: &[u8], now: UnixSecs) -> Handled {
        let handled = self.node().handle(frame, now).unwrap();
        assert_conserved(self.state());
        handled
    }

    /// Sends a request that must be refused with `code`, changing neither the state nor
    /// the log.
    pub fn assert_refused(&mut self, frame: &[u8], now: UnixSecs, code: ErrorCode) {
        let before = self.state().clone();
        let len = self.log_len();
        let reply = self.send(frame, now);
        assert_eq!(error_code(&self.broker_key(), &reply), Some(code));
        assert_eq!(self.state(), &before, "a refusal changed the state");
        assert_eq!(self.log_len(), len, "a refusal appended an event");
    }

    /// Section 7: what the broker answers `who`'s `TransactionStatus` of `tx` at `now`.
    pub fn status(
        &mut self,
        who: &Client,
        tx: TxId,
        now: UnixSecs,
    ) -> shared::wire::bodies::TxStatus {
        let reply = self.send(&who.transaction_status(tx), now);
        who.open_clear::<shared::wire::bodies::TransactionStatusResponseBody>(&reply)
            .status
    }

    /// Every event's evidence, in order (for checking what the log keeps).
    pub fn evidence(&self) -> Vec<Evidence> {
        let log = self.node.as_ref().unwrap().log();
        log.iter()
            .unwrap()
            .flat_map(
                |e: Result<shared::events::Event<Recorded<broker::core::Kind>>, _>| {
                    e.unwrap().evidence
                },
            )
            .collect()
    }
}

/// Section 5: all accounts sum to zero, no bank or float account is negative, and
/// float:broker is the value of the live BrokerScrip.
pub fn assert_conserved(state: &State) {
    assert_eq!(state.check_conserved(), Ok(()));
}

/// The parties of the three-party transactions at the broker (6.2, 6.3, 6.5): customer C,
/// holding B0 bought from a bank balance of 1000, and merchant M, bank balance 0, with a
/// VendorScrip V0 of 40 of its own Mint for C (the one 6.5 tops up).
pub struct Parties {
    pub w: World,
    pub c: Client,
    pub m: Client,
    pub b0: Held,
    pub v0: Held,
}

impl Parties {
    /// C with B0 of `b0` (6.1) and V0; M onboarded.
    pub fn new(suite: Suite, b0: u64) -> Parties {
        let mut w = World::new(suite);
        let c = w.client(0, "C-1");
        let m = w.client(2, "M-1");
        w.onboard(&c, 1000);
        w.onboard(&m, 0);
        let reply = w.send(&c.obtain(TxId::random(), b0, Nonce::random()), NOW);
        let (_, b0) = c.open_scrip::<shared::wire::bodies::BrokerScripResponseX1>(&reply, |b| {
            (b.scrip.clone(), b.cs_hash.clone())
        });
        let v0 = m.issue_vendor_scrip(40);
        Parties { w, c, m, b0, v0 }
    }

    /// Another merchant, M-2, onboarded with nothing in the bank: a relay C did not name.
    pub fn other_merchant(&mut self) -> Client {
        let other = self.w.client(3, "M-2");
        self.w.onboard(&other, 0);
        other
    }

    /// `of`'s bank balance at the broker.
    pub fn bank(&self, of: &Client) -> i128 {
        self.w
            .state()
            .balance(&shared::events::Account::Bank(of.pan.clone()))
    }

    /// C's change from the settled transaction `tx` (6.2 step 5, 6.5 step 6):
    /// `handled`'s one delivery, to C. Its `ChangeBrokerScrip`, the change B1 it carries,
    /// and M's undertaking `U` in it, verified under M's header of `tx`.
    pub fn change<U: Body>(
        &self,
        handled: &Handled,
        tx: TxId,
    ) -> (shared::wire::bodies::ChangeBrokerScripX4, Held, U) {
        assert_eq!(handled.deliveries.len(), 1);
        assert_eq!(handled.deliveries[0].to, self.c.uid());
        let (change, b1) = self
            .c
            .open_scrip::<shared::wire::bodies::ChangeBrokerScripX4>(
                &handled.deliveries[0].frame,
                |b| {
                    let change = b.change.clone().unwrap();
                    (change.scrip, change.cs_hash)
                },
            );
        let m_header = self.m.header(U::LABEL, tx);
        let undertaking = change
            .undertaking
            .clone()
            .unwrap()
            .verify::<U>(&m_header, self.m.key.public())
            .unwrap();
        (change, b1, undertaking)
    }

    /// Asserts that C's `TransactionStatus` of `tx` at `now` answers exactly `frames`
    /// (section 7).
    pub fn assert_status(&mut self, tx: TxId, now: UnixSecs, frames: Vec<Vec<u8>>) {
        assert_eq!(
            self.w.status(&self.c, tx, now),
            shared::wire::bodies::TxStatus::Frames { frames, omitted: 0 }
        );
    }
}
