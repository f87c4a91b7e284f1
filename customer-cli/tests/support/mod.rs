//! A wallet in a temporary file, and a stand-in broker that opens the wallet's requests with
//! the `shared::wire` openers exactly as the broker does (protocol.md section 6) and builds
//! its replies with the wire builders. Test support: panics are the report.

// Test support: a panic is the clearest report, and not every test binary uses every helper.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use customer_cli::Wallet;
use customer_cli::core::WalletState;
use shared::UnixSecs;
use shared::fixtures;
use shared::wire::bodies::{
    BrokerScripRequestX0, BrokerScripTopUpX0, BrokerScripWithdrawX0, ErrorBody, PresentsScrip,
    PublicKeyRequestX0, RegistrationRequestX0, RenewRequestX0,
};
use shared::wire::{
    Body, Frame, Header, Inner, Label, Opened, Part, Re, digest_of_verified, seal, secret_inner,
    sig_input, sign,
};
use shared::{
    AccountId, Amount, CustomerSecret, ErrorCode, KeyPair, Mint, Pan, PanSecret, Scrip, ScripId,
    Suite,
};
use tempfile::TempDir;

/// Unix seconds of every test's "now".
pub const NOW: u64 = 1_800_000_000;
/// Scrip lifetime used by the stand-in producers: 30 days.
pub const LIFETIME: u64 = 30 * 24 * 3600;
/// The account of test-vectors.md.
pub const PAN: &str = "GR1601101250000000012300695";
pub const PAN_SECRET: &str = "correct horse battery staple";

/// The customer's key pair (fixture 0).
pub fn customer_keys(suite: Suite) -> &'static KeyPair {
    fixtures::keypair(suite, 0)
}

/// A key that is no party's (fixture 3), for forgeries.
pub fn forger_keys(suite: Suite) -> &'static KeyPair {
    fixtures::keypair(suite, 3)
}

/// A producer (broker or merchant) as the wallet's tests need it.
pub struct Producer {
    pub keys: &'static KeyPair,
    pub mint: Mint,
}

impl Producer {
    pub fn new(suite: Suite, index: usize) -> Producer {
        let keys = fixtures::keypair(suite, index);
        Producer {
            keys,
            mint: Mint::new(suite, keys.uid(), fixtures::root_key(index as u64)),
        }
    }

    /// Issues a scrip of `value`, expiring a lifetime after `now`.
    pub fn issue(&self, value: u64, now: u64) -> (Scrip, CustomerSecret) {
        self.mint.issue(Amount::from_minor(value), now + LIFETIME)
    }
}

/// A wallet in a temporary directory with the broker (fixture 1) pinned and the account of
/// test-vectors.md linked.
pub struct Setup {
    pub suite: Suite,
    pub dir: TempDir,
    pub path: PathBuf,
    pub wallet: Wallet,
    pub broker: Producer,
    /// A merchant (fixture 2).
    pub merchant: Producer,
    /// The customer's ID, as the broker recomputes it from its records.
    pub id: AccountId,
}

impl Setup {
    pub fn new(suite: Suite) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.redb");
        let broker = Producer::new(suite, 1);
        let mut wallet = Wallet::create(
            &path,
            customer_keys(suite).clone(),
            broker.keys.public(),
            UnixSecs::new(NOW),
        )
        .unwrap();
        let pan = Pan::new(PAN);
        let secret = PanSecret::new(PAN_SECRET);
        wallet
            .link_account(pan.clone(), &secret, UnixSecs::new(NOW))
            .unwrap();
        Setup {
            suite,
            id: AccountId::derive(suite, &secret, &pan),
            dir,
            path,
            wallet,
            broker,
            merchant: Producer::new(suite, 2),
        }
    }

    /// Drops the wallet (releasing the file's lock) and opens its file again.
    pub fn reopen(self) -> Setup {
        Setup {
            wallet: {
                drop(self.wallet);
                Wallet::open(&self.path, customer_keys(self.suite).clone()).unwrap()
            },
            ..self
        }
    }

    /// The wallet's state and log length, to assert that nothing changed.
    pub fn snapshot(&self) -> (WalletState, u64) {
        (
            self.wallet.state().clone(),
            self.wallet.log().len().unwrap(),
        )
    }

    /// What the (first) pending request still needs (`Pending::next_steps`).
    pub fn next_steps(&self) -> Vec<customer_cli::core::NextStep> {
        let pending = self.wallet.pending().next().expect("a request pending");
        pending.next_steps(self.broker.keys.uid())
    }

    /// Registers the wallet (6.0) through the stand-in broker.
    pub fn register(&mut self) {
        let out = self.wallet.register(UnixSecs::new(NOW)).unwrap();
        let req = open_registration(&self.broker, &self.id, &out.frame);
        let reply = reply_clear(
            self.broker.keys,
            &req.frame,
            &shared::wire::bodies::RegistrationResponseX1 {
                re: req.re.clone(),
                uid: req.frame.header.sender,
                info: "registered".into(),
            },
        );
        self.wallet
            .handle_reply(&reply, UnixSecs::new(NOW))
            .unwrap();
    }

    /// Obtains a BrokerScrip of `value` (6.1) through the stand-in broker; returns its CS.
    pub fn obtain(&mut self, value: u64) -> (Scrip, CustomerSecret) {
        let out = self
            .wallet
            .obtain_broker_scrip(Amount::from_minor(value), UnixSecs::new(NOW))
            .unwrap();
        let req = open_obtain(&self.broker, &self.id, &out.frame);
        let (scrip, cs) = self.broker.issue(value, NOW);
        let reply = reply_scrip(self.broker.keys, &req, &scrip, &cs, Some(req.body.nonce));
        self.wallet
            .handle_reply(&reply, UnixSecs::new(NOW))
            .unwrap();
        (scrip, cs)
    }
}

/// A request as the broker sees it after opening and verifying it.
pub struct Opened1<B> {
    pub frame: Frame,
    pub body: B,
    /// `re` of the reply: (sender, label, digest of the verified bodies).
    pub re: Re,
    /// The CustomerSecret carried, if the request presents a scrip.
    pub secret: Option<CustomerSecret>,
}

impl<B> Opened1<B> {
    /// `frame`'s request as its recipient verified it (`body` under `evidence`), with the
    /// CustomerSecret it carries: `re` is over the verified body (section 7).
    fn new(frame: Frame, v: shared::wire::Verified<B>, secret: Option<CustomerSecret>) -> Self {
        let digest = digest_of_verified(&frame.header, &[&v.evidence]).unwrap();
        Opened1 {
            re: Re::new(&frame.header, digest),
            frame,
            body: v.body,
            secret,
        }
    }
}

fn decode(bytes: &[u8]) -> Frame {
    Frame::decode(bytes).unwrap()
}

fn sealed_part(frame: &Frame, me: &KeyPair) -> Opened {
    assert_eq!(frame.parts.len(), 1, "one sealed part");
    frame.part(0).unwrap().open_sealed(me).unwrap()
}

/// 6.0 step 2: the broker opens the sealed part, takes the key it carries (whose UID must
/// be the sender), verifies X0 with it and the IdProof against the ID it recomputes.
pub fn open_registration(
    broker: &Producer,
    id: &AccountId,
    bytes: &[u8],
) -> Opened1<RegistrationRequestX0> {
    let frame = decode(bytes);
    assert_eq!(frame.header.label, Label::RegistrationRequest);
    let opened = sealed_part(&frame, broker.keys);
    let key = opened.public_key().unwrap();
    assert_eq!(key.uid(), frame.header.sender);
    let v = opened.signed::<RegistrationRequestX0>(&key).unwrap();
    opened.verify_id_proof(&key, id).unwrap();
    Opened1::new(frame, v, None)
}

/// 6.0b step 2: a signed body in the clear, verified with the registered key.
pub fn open_public_key(bytes: &[u8], customer: &KeyPair) -> Opened1<PublicKeyRequestX0> {
    let frame = decode(bytes);
    assert_eq!(frame.header.label, Label::PublicKeyRequest);
    let v = frame
        .part(0)
        .unwrap()
        .verify_signed::<PublicKeyRequestX0>(customer.public())
        .unwrap();
    Opened1::new(frame, v, None)
}

/// A sealed request with an IdProof (6.1, 6.4, 6.6), as the broker opens it.
fn open_with_id<B: Body>(broker: &Producer, id: &AccountId, bytes: &[u8]) -> (Opened1<B>, Opened) {
    let frame = decode(bytes);
    assert_eq!(frame.header.label, B::LABEL);
    let customer = customer_keys(frame.header.suite);
    assert_eq!(frame.header.sender, customer.uid());
    let opened = sealed_part(&frame, broker.keys);
    opened.verify_id_proof(customer.public(), id).unwrap();
    let v = opened.signed::<B>(customer.public()).unwrap();
    (Opened1::new(frame, v, None), opened)
}

/// 6.1 step 2.
pub fn open_obtain(
    broker: &Producer,
    id: &AccountId,
    bytes: &[u8],
) -> Opened1<BrokerScripRequestX0> {
    open_with_id(broker, id, bytes).0
}

/// 6.4 step 2.
pub fn open_top_up(broker: &Producer, id: &AccountId, bytes: &[u8]) -> Opened1<BrokerScripTopUpX0> {
    open_presenting(broker, id, bytes)
}

/// 6.6 step 2.
pub fn open_withdraw(
    broker: &Producer,
    id: &AccountId,
    bytes: &[u8],
) -> Opened1<BrokerScripWithdrawX0> {
    open_presenting(broker, id, bytes)
}

/// A sealed request with an IdProof that presents B0 (6.4, 6.6): also the CS of B0,
/// checked against its `cs_hash` and by the broker's Mint.
fn open_presenting<B: PresentsScrip>(
    broker: &Producer,
    id: &AccountId,
    bytes: &[u8],
) -> Opened1<B> {
    let (mut req, opened) = open_with_id::<B>(broker, id, bytes);
    let (scrip, cs_hash) = req.body.presented();
    let cs = opened.secret(scrip.id(), cs_hash).unwrap();
    broker
        .mint
        .validate(
            scrip,
            cs.expose(),
            shared::UnixSecs::new(NOW),
            shared::ExpiryRule::Strict,
        )
        .unwrap();
    req.secret = Some(cs);
    req
}

/// 6.8 step 2: sealed to the producer, no IdProof; E0 validated as renewal allows.
pub fn open_renew(producer: &Producer, bytes: &[u8], now: u64) -> Opened1<RenewRequestX0> {
    let frame = decode(bytes);
    assert_eq!(frame.header.label, Label::RenewRequest);
    let customer = customer_keys(frame.header.suite);
    let opened = sealed_part(&frame, producer.keys);
    let v = opened.signed::<RenewRequestX0>(customer.public()).unwrap();
    let cs = opened.secret(v.body.scrip.id(), &v.body.cs_hash).unwrap();
    producer
        .mint
        .validate(
            &v.body.scrip,
            cs.expose(),
            shared::UnixSecs::new(now),
            shared::ExpiryRule::Renewal {
                grace_secs: 365 * 24 * 3600,
            },
        )
        .unwrap();
    Opened1::new(frame, v, Some(cs))
}

/// The header of the reply to `request`, sent by `signer`.
pub fn reply_header(request: &Frame, label: Label, signer: &KeyPair) -> Header {
    request.header.next(label, signer.uid())
}

/// A reply signed in the clear by `signer` (6.0, 6.6, `Error`).
pub fn reply_clear<B: Body>(signer: &KeyPair, request: &Frame, body: &B) -> Vec<u8> {
    let header = reply_header(request, B::LABEL, signer);
    Frame::new(header, vec![sign(signer, &header, body).unwrap().into()])
        .encode()
        .unwrap()
}

/// The broker's unsigned `Ack` to 6.3 step 1 (ADR 0008), as `sender` would send it.
pub fn reply_unsigned_ack(
    sender: &KeyPair,
    request: &Frame,
    body: &shared::wire::bodies::AckBody,
) -> Vec<u8> {
    let header = reply_header(request, Label::Ack, sender);
    Frame::new(
        header,
        vec![Part::Clear {
            body: body.to_bytes(),
        }],
    )
    .encode()
    .unwrap()
}

/// A reply sealed to the customer, signed by `signer`, with an optional CustomerSecret.
pub fn reply_sealed<B: Body>(
    signer: &KeyPair,
    request: &Frame,
    body: &B,
    secret: Option<(ScripId, &CustomerSecret)>,
) -> Vec<u8> {
    let header = reply_header(request, B::LABEL, signer);
    sealed_to_customer(header, sign(signer, &header, body).unwrap().into(), secret)
}

/// A frame of one part sealed to the customer under `header`: `signed`, then the
/// CustomerSecret of `secret` if any (section 3).
fn sealed_to_customer(
    header: Header,
    signed: Inner,
    secret: Option<(ScripId, &CustomerSecret)>,
) -> Vec<u8> {
    let mut inners = vec![signed];
    inners.extend(secret.map(|(id, cs)| secret_inner(id, cs)));
    let to = customer_keys(header.suite).public();
    Frame::new(header, vec![seal(&header, to, &inners).unwrap()])
        .encode()
        .unwrap()
}

/// A sealed reply whose header names `claimed` as sender but whose body `forger` signed:
/// what a party without the broker's key can make.
pub fn forged_sealed<B: Body>(
    forger: &KeyPair,
    claimed: &KeyPair,
    request: &Frame,
    body: &B,
    secret: Option<(ScripId, &CustomerSecret)>,
) -> Vec<u8> {
    let header = reply_header(request, B::LABEL, claimed);
    let bytes = body.to_bytes();
    let sig = forger.sign(&sig_input(&header, &bytes).unwrap()).unwrap();
    sealed_to_customer(header, Inner::Signed { body: bytes, sig }, secret)
}

/// The `BrokerScripResponse` of 6.1 or 6.4 (or any scrip reply with a nonce).
pub fn reply_scrip<B>(
    signer: &KeyPair,
    req: &Opened1<B>,
    scrip: &Scrip,
    cs: &CustomerSecret,
    nonce: Option<shared::Nonce>,
) -> Vec<u8> {
    let suite = req.frame.header.suite;
    let body = shared::wire::bodies::BrokerScripResponseX1 {
        re: req.re.clone(),
        scrip: scrip.clone(),
        cs_hash: cs.cs_hash(suite),
        nonce: nonce.unwrap_or(shared::Nonce([0; 16])),
    };
    reply_sealed(signer, &req.frame, &body, Some((scrip.id(), cs)))
}

/// A signed `Error` refusing `req`.
pub fn reply_error<B>(signer: &KeyPair, req: &Opened1<B>, code: ErrorCode) -> Vec<u8> {
    reply_clear(
        signer,
        &req.frame,
        &ErrorBody::new(req.re.clone(), code, format!("refused: {}", code.name())),
    )
}

/// The request part's bytes as sent, for comparing a retry (part kinds only).
pub fn part_kinds(frame: &Frame) -> Vec<&'static str> {
    frame.parts.iter().map(Part::kind_name).collect()
}

// --- the three-party flows (6.2, 6.3, 6.7) -------------------------------------------

/// A delivery (6.2 step 5, 6.7 step 5) of `body` in `tx`, signed by `signer` under its own
/// header and sealed to the customer, with an optional CustomerSecret.
pub fn delivery_sealed<B: Body>(
    signer: &KeyPair,
    suite: Suite,
    tx: shared::TxId,
    body: &B,
    secret: Option<(ScripId, &CustomerSecret)>,
) -> Vec<u8> {
    let header = Header::new(suite, B::LABEL, tx, signer.uid());
    sealed_to_customer(header, sign(signer, &header, body).unwrap().into(), secret)
}

/// The merchant's undertaking `X3 = W, UID_C`, signed by `signer` under the header of an
/// `ExchangeAuthorizationRequest` from `claimed` in `tx` (6.2 step 3).
pub fn undertaking(
    signer: &KeyPair,
    claimed: shared::Uid,
    tx: shared::TxId,
    value: u64,
    customer: shared::Uid,
) -> shared::wire::Undertaking {
    let header = Header::new(
        signer.suite(),
        Label::ExchangeAuthorizationRequest,
        tx,
        claimed,
    );
    let x3 = shared::wire::bodies::ExchangeAuthorizationRequestX3 {
        value: Amount::from_minor(value),
        customer,
    };
    let bytes = x3.to_bytes();
    let sig = signer.sign(&sig_input(&header, &bytes).unwrap()).unwrap();
    shared::wire::Undertaking { body: bytes, sig }
}

/// 6.2 step 2 as B and M open it: part 0 sealed to B (IdProof, X1, CS_B0 validated by B's
/// Mint), part 1 sealed to M (X2). `re` is M's: over X2 only, the one body M verifies.
pub struct OpenedExchange {
    pub frame: Frame,
    pub x1: shared::wire::bodies::VendorScripRequestX1,
    pub x2: shared::wire::bodies::VendorScripRequestX2,
    pub re: Re,
}

pub fn open_exchange(
    broker: &Producer,
    merchant: &Producer,
    id: &AccountId,
    bytes: &[u8],
) -> OpenedExchange {
    let frame = decode(bytes);
    assert_eq!(frame.header.label, Label::VendorScripRequest);
    assert_eq!(frame.parts.len(), 2);
    let customer = customer_keys(frame.header.suite);
    let to_b = frame.part(0).unwrap().open_sealed(broker.keys).unwrap();
    to_b.verify_id_proof(customer.public(), id).unwrap();
    let x1 = to_b
        .signed::<shared::wire::bodies::VendorScripRequestX1>(customer.public())
        .unwrap();
    let cs = to_b.secret(x1.body.scrip.id(), &x1.body.cs_hash).unwrap();
    broker
        .mint
        .validate(
            &x1.body.scrip,
            cs.expose(),
            shared::UnixSecs::new(NOW),
            shared::ExpiryRule::Strict,
        )
        .unwrap();
    let to_m = frame.part(1).unwrap().open_sealed(merchant.keys).unwrap();
    let x2 = to_m
        .signed::<shared::wire::bodies::VendorScripRequestX2>(customer.public())
        .unwrap();
    let digest = digest_of_verified(&frame.header, &[&x2.evidence]).unwrap();
    OpenedExchange {
        re: Re::new(&frame.header, digest),
        frame,
        x1: x1.body,
        x2: x2.body,
    }
}

impl Setup {
    /// Caches the merchant's key (6.0b) through the stand-in broker.
    pub fn learn_merchant(&mut self) {
        let target = self.merchant.keys.uid();
        let out = self
            .wallet
            .request_public_key(target, UnixSecs::new(NOW))
            .unwrap();
        let req = open_public_key(&out.frame, customer_keys(self.suite));
        let reply = reply_sealed(
            self.broker.keys,
            &req.frame,
            &shared::wire::bodies::PublicKeyResponseX1 {
                re: req.re.clone(),
                target,
                spki_der: self.merchant.keys.public().spki_der().to_vec(),
                nonce: req.body.nonce,
            },
            None,
        );
        self.wallet
            .handle_reply(&reply, UnixSecs::new(NOW))
            .unwrap();
    }

    /// 6.2 steps 1 and 2: the notice answered, step 2 rendered and opened by B and M.
    pub fn start_exchange(&mut self, w: u64) -> OpenedExchange {
        let out = self
            .wallet
            .obtain_vendor_scrip(
                self.merchant.keys.uid(),
                Amount::from_minor(w),
                UnixSecs::new(NOW),
            )
            .unwrap();
        let (req, _) = open_with_id::<shared::wire::bodies::VendorScripNoticeX0>(
            &self.broker,
            &self.id,
            &out.frame,
        );
        let reply = reply_clear(
            self.broker.keys,
            &req.frame,
            &shared::wire::bodies::VendorScripNoticeResponseX0 {
                re: req.re.clone(),
                deadline: NOW + 300,
            },
        );
        self.wallet
            .handle_reply(&reply, UnixSecs::new(NOW))
            .unwrap();
        let step2 = self
            .wallet
            .resend(out.tx, Label::VendorScripRequest)
            .unwrap();
        open_exchange(&self.broker, &self.merchant, &self.id, &step2.frame)
    }

    /// M's `VendorScripResponse` of V0 (value `W` of the request).
    pub fn vendor_scrip_response(&self, ex: &OpenedExchange) -> (Vec<u8>, Scrip, CustomerSecret) {
        let (v0, cs) = self.merchant.issue(ex.x2.value.minor(), NOW);
        let body = shared::wire::bodies::VendorScripResponseX6 {
            re: ex.re.clone(),
            scrip: v0.clone(),
            cs_hash: cs.cs_hash(self.suite),
        };
        let reply = reply_sealed(self.merchant.keys, &ex.frame, &body, Some((v0.id(), &cs)));
        (reply, v0, cs)
    }

    /// B's `ChangeBrokerScrip` of an OK exchange: B1 = B0 − W (none when zero) and M's
    /// undertaking.
    pub fn change_delivery(
        &self,
        ex: &OpenedExchange,
    ) -> (Vec<u8>, Option<(Scrip, CustomerSecret)>) {
        let change_value = ex.x1.scrip.value().minor() - ex.x1.value.minor();
        let change = (change_value > 0).then(|| self.broker.issue(change_value, NOW));
        let x4 = change_body(
            shared::wire::Decision::Ok,
            change
                .as_ref()
                .map(|(s, cs)| shared::wire::ScripWithSecret {
                    scrip: s.clone(),
                    cs_hash: cs.cs_hash(self.suite),
                }),
            Some(undertaking(
                self.merchant.keys,
                self.merchant.keys.uid(),
                ex.frame.header.tx,
                ex.x1.value.minor(),
                customer_keys(self.suite).uid(),
            )),
        );
        let bytes = delivery_sealed(
            self.broker.keys,
            self.suite,
            ex.frame.header.tx,
            &x4,
            change.as_ref().map(|(s, cs)| (s.id(), cs)),
        );
        (bytes, change)
    }

    /// [`Setup::holding_broker_scrip`] of `b0`, with a 6.2 exchange of `w` started (steps 1
    /// and 2): returns B0 and step 2 as B and M open it.
    pub fn pending_exchange(&mut self, b0: u64, w: u64) -> (Scrip, OpenedExchange) {
        let b0 = self.holding_broker_scrip(b0);
        (b0, self.start_exchange(w))
    }

    /// A registered wallet that knows the merchant (6.0b) and holds B0 of `b0` (6.1):
    /// returns B0.
    pub fn holding_broker_scrip(&mut self, b0: u64) -> Scrip {
        self.register();
        self.learn_merchant();
        self.obtain(b0).0
    }

    /// A whole 6.2 exchange of `w` from a BrokerScrip of `b0`: returns V0 and its CS.
    pub fn exchange(&mut self, b0: u64, w: u64) -> (Scrip, CustomerSecret) {
        let (_, ex) = self.pending_exchange(b0, w);
        let (change, _) = self.change_delivery(&ex);
        self.wallet
            .handle_reply(&change, UnixSecs::new(NOW))
            .unwrap();
        let (reply, v0, cs) = self.vendor_scrip_response(&ex);
        self.wallet
            .handle_reply(&reply, UnixSecs::new(NOW))
            .unwrap();
        (v0, cs)
    }
}

/// M's `VendorTopUpResponse` of 6.5 step 5 in `tx`: V1 `scrip` with its CS, signed by
/// `merchant` and sealed to the customer.
pub fn vendor_top_up_response(
    merchant: &KeyPair,
    tx: shared::TxId,
    scrip: &Scrip,
    cs: &CustomerSecret,
) -> Vec<u8> {
    let suite = merchant.suite();
    let body = shared::wire::bodies::VendorTopUpResponseX4 {
        scrip: scrip.clone(),
        cs_hash: cs.cs_hash(suite),
    };
    delivery_sealed(merchant, suite, tx, &body, Some((scrip.id(), cs)))
}

/// `ChangeBrokerScripX4` (`outcome, change, undertaking`, docs/protocol.md appendix A).
pub fn change_body(
    outcome: shared::wire::Decision,
    change: Option<shared::wire::ScripWithSecret>,
    undertaking: Option<shared::wire::Undertaking>,
) -> shared::wire::bodies::ChangeBrokerScripX4 {
    shared::wire::bodies::ChangeBrokerScripX4 {
        outcome,
        change,
        undertaking,
    }
}
