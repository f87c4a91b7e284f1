//! The vectors: one frame of every label (codes 1 to 43), laid out as the parties' code
//! builds it (docs/protocol.md section 6 and appendix A), in the order of the
//! transactions. Every body is built from its typed struct here, so a change to a body's
//! fields or encoding changes the bytes and fails the comparison with the stored file.
//!
//! The transactions follow each other in one story (the customer registers, buys
//! BrokerScrip, exchanges it for VendorScrip, buys, tops up, withdraws, renews), each with
//! its own tx, and each reply's `re` carries the digest of the request vector it answers.

use std::collections::BTreeMap;

use shared::wire::bodies::*;
use shared::wire::{Body, Decision, Header, Label, ScripWithSecret, Undertaking, sig_input};
use shared::{Amount, ErrorCode, Nonce, Pan, TxId};

use super::spec::{Embedded, InnerSpec, PartSpec, Spec};
use super::world::{DEADLINE, EXPIRES, Issued, NEW_PAN, NEW_PAN_SECRET, Role, World, tx};

use Role::{Broker, Customer, Merchant, Operator};

/// Builds the vectors of one suite. `pinned` gives the embedded signatures of the stored
/// file (PSS is randomized: a rebuilt body must reuse the stored signature to be equal).
pub struct Catalog<'w> {
    world: &'w World,
    pinned: &'w BTreeMap<String, Vec<u8>>,
    specs: Vec<Spec>,
}

/// `Signed(X)` in the clear.
fn signed<B: Body>(ty: &'static str, body: &B) -> PartSpec {
    PartSpec::Signed {
        ty,
        body: body.to_bytes(),
        value: value_of(body),
    }
}

/// `Signed(X)` inside a sealed part.
fn inner<B: Body>(ty: &'static str, body: &B) -> InnerSpec {
    InnerSpec::Signed {
        ty,
        body: body.to_bytes(),
        value: value_of(body),
    }
}

/// The field values of `body`: serde's JSON form of the typed struct (16-byte ids and
/// byte strings as arrays of numbers, labels as their codes, enums externally tagged).
fn value_of<B: Body>(body: &B) -> serde_json::Value {
    serde_json::to_value(body).expect("a body has a JSON form")
}

/// A part sealed to `to` holding `inners`.
fn sealed(to: Role, inners: Vec<InnerSpec>) -> PartSpec {
    PartSpec::Sealed { to, inners }
}

fn secret(issued: &Issued) -> InnerSpec {
    InnerSpec::Secret {
        scrip_id: issued.scrip.id(),
        cs: issued.cs.clone(),
    }
}

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

impl<'w> Catalog<'w> {
    /// Every vector of `world`'s suite, in order.
    pub fn build(world: &'w World, pinned: &'w BTreeMap<String, Vec<u8>>) -> Vec<Spec> {
        let mut c = Catalog {
            world,
            pinned,
            specs: Vec::new(),
        };
        c.registration();
        c.public_key();
        c.obtain_broker_scrip();
        c.obtain_vendor_scrip();
        c.buy_item();
        c.top_up_broker_scrip();
        c.top_up_vendor_scrip();
        c.withdraw_broker_scrip();
        c.withdraw_vendor_scrip();
        c.renew();
        c.control();
        c.extensions();
        c.names();
        c.specs
    }

    fn header(&self, label: Label, tx: TxId, sender: Role) -> Header {
        Header::new(self.world.suite, label, tx, self.world.uid(sender))
    }

    fn cs_hash(&self, issued: &Issued) -> Vec<u8> {
        issued.cs_hash(self.world.suite)
    }

    fn with_secret(&self, issued: &Issued) -> ScripWithSecret {
        ScripWithSecret {
            scrip: issued.scrip.clone(),
            cs_hash: self.cs_hash(issued),
        }
    }

    fn spec(&self, name: &str) -> &Spec {
        self.specs
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no vector {name}"))
    }

    /// `re` of a reply to the vector `name` (docs/protocol.md section 3).
    fn re(&self, name: &str) -> Re {
        let spec = self.spec(name);
        Re::new(&spec.header, spec.digest().expect("a request's digest"))
    }

    /// The part `index` of the vector `name`, forwarded to its sealed recipient.
    fn forward(&self, name: &str, index: usize) -> PartSpec {
        let spec = self.spec(name);
        let PartSpec::Sealed { to, inners } = &spec.parts[index] else {
            panic!("{name} part {index} is not sealed");
        };
        PartSpec::Forwarded {
            from: name.to_owned(),
            origin: spec.header,
            signer: spec.sender,
            part: index,
            to: *to,
            inners: inners.clone(),
        }
    }

    /// The parts of the merchant's request to the broker relaying part `index` of the
    /// customer's vector `from` (6.2 step 3, 6.7 step 2): its own part first (its IdProof
    /// and `Signed(body)`, of type `ty`), then the customer's, forwarded.
    fn relay<B: Body>(
        &self,
        ty: &'static str,
        body: &B,
        from: &str,
        index: usize,
    ) -> Vec<PartSpec> {
        vec![
            sealed(Broker, vec![InnerSpec::IdProof, inner(ty, body)]),
            self.forward(from, index),
        ]
    }

    /// The merchant's signed body of the vector `name` as an undertaking carried by
    /// `ChangeBrokerScrip` vector `carrier`: the stored signature if the file has one,
    /// else a fresh one.
    fn undertaking(&self, carrier: &str, name: &str) -> (Undertaking, Embedded) {
        let spec = self.spec(name);
        let body = spec.bodies().first().expect("a signed body").body.to_vec();
        let sig = self.pinned.get(carrier).cloned().unwrap_or_else(|| {
            let input = sig_input(&spec.header, &body).expect("SigInput");
            self.world.key(spec.sender).sign(&input).expect("signing")
        });
        let embedded = Embedded {
            signer: spec.sender,
            header: spec.header,
            body: body.clone(),
            sig: sig.clone(),
        };
        (Undertaking { body, sig }, embedded)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        name: &str,
        step: &'static str,
        label: Label,
        tx: TxId,
        (sender, recipient): (Role, Role),
        parts: Vec<PartSpec>,
        embedded: Option<Embedded>,
    ) {
        let header = self.header(label, tx, sender);
        self.specs.push(Spec {
            name: name.to_owned(),
            step,
            sender,
            recipient,
            header,
            parts,
            embedded,
        });
    }

    /// 6.0: registration.
    fn registration(&mut self) {
        let t = tx(0x01);
        let pan = Pan::new(super::world::CUSTOMER_PAN);
        self.push(
            "RegistrationRequest",
            "6.0 step 1, C → B, request",
            Label::RegistrationRequest,
            t,
            (Customer, Broker),
            vec![sealed(
                Broker,
                vec![
                    inner("RegistrationRequestX0", &RegistrationRequestX0 { pan }),
                    InnerSpec::IdProof,
                    InnerSpec::PublicKey,
                ],
            )],
            None,
        );
        let x1 = RegistrationResponseX1 {
            re: self.re("RegistrationRequest"),
            uid: self.world.uid(Customer),
            info: "registered".to_owned(),
        };
        self.push(
            "RegistrationResponse",
            "6.0 step 3, B → C, reply",
            Label::RegistrationResponse,
            t,
            (Broker, Customer),
            vec![signed("RegistrationResponseX1", &x1)],
            None,
        );
    }

    /// 6.0b: the merchant's key, asked by the customer.
    fn public_key(&mut self) {
        let t = tx(0x02);
        let nonce = Nonce([0x4e; 16]);
        let x0 = PublicKeyRequestX0 {
            target: self.world.uid(Merchant),
            nonce,
        };
        self.push(
            "PublicKeyRequest",
            "6.0b step 1, C → B, request",
            Label::PublicKeyRequest,
            t,
            (Customer, Broker),
            vec![signed("PublicKeyRequestX0", &x0)],
            None,
        );
        let x1 = PublicKeyResponseX1 {
            re: self.re("PublicKeyRequest"),
            target: self.world.uid(Merchant),
            spki_der: self.world.key(Merchant).public().spki_der().to_vec(),
            nonce,
        };
        self.push(
            "PublicKeyResponse",
            "6.0b step 3, B → C, reply",
            Label::PublicKeyResponse,
            t,
            (Broker, Customer),
            vec![sealed(Customer, vec![inner("PublicKeyResponseX1", &x1)])],
            None,
        );
    }

    /// 6.1: B0 of 100.00.
    fn obtain_broker_scrip(&mut self) {
        let t = tx(0x03);
        let nonce = Nonce([0x4f; 16]);
        let b0 = self.world.broker_scrip(10_000, 0xb0);
        let x0 = BrokerScripRequestX0 {
            value: amount(10_000),
            nonce,
        };
        self.push(
            "BrokerScripRequest",
            "6.1 step 1, C → B, request",
            Label::BrokerScripRequest,
            t,
            (Customer, Broker),
            vec![sealed(
                Broker,
                vec![InnerSpec::IdProof, inner("BrokerScripRequestX0", &x0)],
            )],
            None,
        );
        let x1 = BrokerScripResponseX1 {
            re: self.re("BrokerScripRequest"),
            scrip: b0.scrip.clone(),
            cs_hash: self.cs_hash(&b0),
            nonce,
        };
        self.push(
            "BrokerScripResponse",
            "6.1 step 3 (and 6.4 step 3), B → C, reply",
            Label::BrokerScripResponse,
            t,
            (Broker, Customer),
            vec![sealed(
                Customer,
                vec![inner("BrokerScripResponseX1", &x1), secret(&b0)],
            )],
            None,
        );
    }

    /// 6.2: 15.00 of B0 (100.00) for V0 of 15.00; change B1 of 85.00.
    fn obtain_vendor_scrip(&mut self) {
        let t = tx(0x04);
        let world = self.world;
        let (b0, b1) = (
            world.broker_scrip(10_000, 0xb0),
            world.broker_scrip(8_500, 0xb2),
        );
        let v0 = world.vendor_scrip(1_500, 0x50);
        let w = amount(1_500);
        let x0 = VendorScripNoticeX0 {
            merchant: world.uid(Merchant),
        };
        self.push(
            "VendorScripNotice",
            "6.2 step 1, C → B, request",
            Label::VendorScripNotice,
            t,
            (Customer, Broker),
            vec![sealed(
                Broker,
                vec![InnerSpec::IdProof, inner("VendorScripNoticeX0", &x0)],
            )],
            None,
        );
        let x0r = VendorScripNoticeResponseX0 {
            re: self.re("VendorScripNotice"),
            deadline: DEADLINE,
        };
        self.push(
            "VendorScripNoticeResponse",
            "6.2 step 1's reply, B → C, reply",
            Label::VendorScripNoticeResponse,
            t,
            (Broker, Customer),
            vec![signed("VendorScripNoticeResponseX0", &x0r)],
            None,
        );
        let x1 = VendorScripRequestX1 {
            scrip: b0.scrip.clone(),
            cs_hash: self.cs_hash(&b0),
            value: w,
        };
        self.push(
            "VendorScripRequest",
            "6.2 step 2, C → M, published one way (answered later on C's peer subject)",
            Label::VendorScripRequest,
            t,
            (Customer, Merchant),
            vec![
                sealed(
                    Broker,
                    vec![
                        InnerSpec::IdProof,
                        inner("VendorScripRequestX1", &x1),
                        secret(&b0),
                    ],
                ),
                sealed(
                    Merchant,
                    vec![inner(
                        "VendorScripRequestX2",
                        &VendorScripRequestX2 { value: w },
                    )],
                ),
            ],
            None,
        );
        let x3 = ExchangeAuthorizationRequestX3 {
            value: w,
            customer: world.uid(Customer),
        };
        let parts = self.relay(
            "ExchangeAuthorizationRequestX3",
            &x3,
            "VendorScripRequest",
            0,
        );
        self.push(
            "ExchangeAuthorizationRequest",
            "6.2 step 3, M → B, request",
            Label::ExchangeAuthorizationRequest,
            t,
            (Merchant, Broker),
            parts,
            None,
        );
        let (undertaking, embedded) =
            self.undertaking("ChangeBrokerScrip", "ExchangeAuthorizationRequest");
        let x4 = ChangeBrokerScripX4 {
            outcome: Decision::Ok,
            change: Some(self.with_secret(&b1)),
            undertaking: Some(undertaking),
        };
        self.push(
            "ChangeBrokerScrip",
            "6.2 step 5, B → C, delivery on C's peer subject",
            Label::ChangeBrokerScrip,
            t,
            (Broker, Customer),
            vec![sealed(
                Customer,
                vec![inner("ChangeBrokerScripX4", &x4), secret(&b1)],
            )],
            Some(embedded),
        );
        let x5 = ExchangeAuthorizationResponseX5 {
            re: self.re("ExchangeAuthorizationRequest"),
            decision: Decision::Ok,
            customer: world.uid(Customer),
            value: w,
        };
        self.push(
            "ExchangeAuthorizationResponse",
            "6.2 step 6, B → M, reply",
            Label::ExchangeAuthorizationResponse,
            t,
            (Broker, Merchant),
            vec![sealed(
                Merchant,
                vec![inner("ExchangeAuthorizationResponseX5", &x5)],
            )],
            None,
        );
        let x6 = VendorScripResponseX6 {
            re: self.re("VendorScripRequest"),
            scrip: v0.scrip.clone(),
            cs_hash: self.cs_hash(&v0),
        };
        self.push(
            "VendorScripResponse",
            "6.2 step 7, M → C, delivery on C's peer subject (the label table's reply to step 2)",
            Label::VendorScripResponse,
            t,
            (Merchant, Customer),
            vec![sealed(
                Customer,
                vec![inner("VendorScripResponseX6", &x6), secret(&v0)],
            )],
            None,
        );
    }

    /// 6.3: 2 × 4.50 paid with V0 (15.00); change V1 of 6.00.
    fn buy_item(&mut self) {
        let t = tx(0x05);
        let world = self.world;
        let (v0, v1) = (
            world.vendor_scrip(1_500, 0x50),
            world.vendor_scrip(600, 0x52),
        );
        let paid = amount(900);
        let order = OrderInfo {
            item_id: "tea-1".to_owned(),
            name: "Green tea, 100 g".to_owned(),
            unit_price: amount(450),
            quantity: 2,
            order_id: OrderId([0x0d; 16]),
        };
        let x0 = PurchaseInitiatedX0 {
            merchant: world.uid(Merchant),
            value: paid,
        };
        self.push(
            "PurchaseInitiated",
            "6.3 step 1, C → B, request",
            Label::PurchaseInitiated,
            t,
            (Customer, Broker),
            vec![signed("PurchaseInitiatedX0", &x0)],
            None,
        );
        let ack = AckBody {
            re: self.re("PurchaseInitiated"),
            deadline: None,
        };
        self.push(
            "Ack",
            "6.3 step 1's reply, B → C, reply, unsigned (docs/adr/0008)",
            Label::Ack,
            t,
            (Broker, Customer),
            vec![PartSpec::Clear {
                ty: "AckBody",
                body: ack.to_bytes(),
                value: value_of(&ack),
            }],
            None,
        );
        let x1 = PurchaseRequestX1 {
            scrip: v0.scrip.clone(),
            cs_hash: self.cs_hash(&v0),
            order: order.clone(),
        };
        self.push(
            "PurchaseRequest",
            "6.3 step 2, C → M, request",
            Label::PurchaseRequest,
            t,
            (Customer, Merchant),
            vec![sealed(
                Merchant,
                vec![inner("PurchaseRequestX1", &x1), secret(&v0)],
            )],
            None,
        );
        let x2 = PurchaseResponseX2 {
            re: self.re("PurchaseRequest"),
            change: Some(self.with_secret(&v1)),
            order: order.clone(),
            receipt: Receipt {
                order_id: order.order_id,
                paid,
                issued_at: EXPIRES - 30 * 86_400,
            },
        };
        self.push(
            "PurchaseResponse",
            "6.3 step 4, M → C, reply",
            Label::PurchaseResponse,
            t,
            (Merchant, Customer),
            vec![sealed(
                Customer,
                vec![inner("PurchaseResponseX2", &x2), secret(&v1)],
            )],
            None,
        );
        let x3 = PurchaseCompletedX3 {
            customer: world.uid(Customer),
            value: paid,
        };
        self.push(
            "PurchaseCompleted",
            "6.3 step 5, M → B, request",
            Label::PurchaseCompleted,
            t,
            (Merchant, Broker),
            vec![signed("PurchaseCompletedX3", &x3)],
            None,
        );
    }

    /// 6.4: B1 (85.00) topped up to 120.00; its reply is a `BrokerScripResponse` like 6.1's.
    fn top_up_broker_scrip(&mut self) {
        let b1 = self.world.broker_scrip(8_500, 0xb2);
        let x0 = BrokerScripTopUpX0 {
            scrip: b1.scrip.clone(),
            cs_hash: self.cs_hash(&b1),
            new_value: amount(12_000),
            nonce: Nonce([0x4d; 16]),
        };
        self.push(
            "BrokerScripTopUp",
            "6.4 step 1, C → B, request",
            Label::BrokerScripTopUp,
            tx(0x06),
            (Customer, Broker),
            vec![sealed(
                Broker,
                vec![
                    InnerSpec::IdProof,
                    inner("BrokerScripTopUpX0", &x0),
                    secret(&b1),
                ],
            )],
            None,
        );
    }

    /// 6.5: V1 (6.00) topped up by 4.00 to 10.00 from B2 (120.00); change B3 of 116.00.
    fn top_up_vendor_scrip(&mut self) {
        let t = tx(0x07);
        let world = self.world;
        let (b2, b3) = (
            world.broker_scrip(12_000, 0xb4),
            world.broker_scrip(11_600, 0xb6),
        );
        let (v1, v2) = (
            world.vendor_scrip(600, 0x52),
            world.vendor_scrip(1_000, 0x54),
        );
        let (top_up, new_value) = (amount(400), amount(1_000));
        let x0 = VendorTopUpRequestX0 {
            new_value,
            top_up,
            merchant: world.uid(Merchant),
            broker_scrip: b2.scrip.clone(),
            cs_hash: self.cs_hash(&b2),
        };
        let x1 = VendorTopUpRequestX1 {
            new_value,
            vendor_scrip: v1.scrip.clone(),
            cs_hash: self.cs_hash(&v1),
        };
        self.push(
            "VendorTopUpRequest",
            "6.5 step 1, C → B, request",
            Label::VendorTopUpRequest,
            t,
            (Customer, Broker),
            vec![
                sealed(
                    Broker,
                    vec![
                        InnerSpec::IdProof,
                        inner("VendorTopUpRequestX0", &x0),
                        secret(&b2),
                    ],
                ),
                sealed(
                    Merchant,
                    vec![inner("VendorTopUpRequestX1", &x1), secret(&v1)],
                ),
            ],
            None,
        );
        let ack = AckBody {
            re: self.re("VendorTopUpRequest"),
            deadline: Some(DEADLINE),
        };
        self.push(
            "Ack (signed, with deadline)",
            "6.5 step 1's reply, B → C, reply",
            Label::Ack,
            t,
            (Broker, Customer),
            vec![signed("AckBody", &ack)],
            None,
        );
        let x2 = VendorTopUpAuthorizationX2 {
            new_value,
            top_up,
            customer: world.uid(Customer),
            deadline: DEADLINE,
        };
        let forwarded = self.forward("VendorTopUpRequest", 1);
        self.push(
            "VendorTopUpAuthorization",
            "6.5 step 2, B → M, delivery on M's peer subject",
            Label::VendorTopUpAuthorization,
            t,
            (Broker, Merchant),
            vec![
                sealed(Merchant, vec![inner("VendorTopUpAuthorizationX2", &x2)]),
                forwarded,
            ],
            None,
        );
        let x3 = VendorTopUpAcceptedX3::Accept {
            customer: world.uid(Customer),
            top_up,
            new_value,
            scrip_id: v1.scrip.id(),
        };
        self.push(
            "VendorTopUpAccepted",
            "6.5 step 3, M → B, request",
            Label::VendorTopUpAccepted,
            t,
            (Merchant, Broker),
            vec![sealed(Broker, vec![inner("VendorTopUpAcceptedX3", &x3)])],
            None,
        );
        let decision = VendorTopUpDecisionBody {
            re: self.re("VendorTopUpAccepted"),
            decision: Decision::Ok,
        };
        self.push(
            "VendorTopUpDecision",
            "6.5 step 4, B → M, reply",
            Label::VendorTopUpDecision,
            t,
            (Broker, Merchant),
            vec![sealed(
                Merchant,
                vec![inner("VendorTopUpDecisionBody", &decision)],
            )],
            None,
        );
        let x4 = VendorTopUpResponseX4 {
            scrip: v2.scrip.clone(),
            cs_hash: self.cs_hash(&v2),
        };
        self.push(
            "VendorTopUpResponse",
            "6.5 step 5, M → C, delivery on C's peer subject",
            Label::VendorTopUpResponse,
            t,
            (Merchant, Customer),
            vec![sealed(
                Customer,
                vec![inner("VendorTopUpResponseX4", &x4), secret(&v2)],
            )],
            None,
        );
        let (undertaking, embedded) =
            self.undertaking("ChangeBrokerScrip (6.5)", "VendorTopUpAccepted");
        let x5: ChangeBrokerScripX5 = ChangeBrokerScripX4 {
            outcome: Decision::Ok,
            change: Some(self.with_secret(&b3)),
            undertaking: Some(undertaking),
        };
        self.push(
            "ChangeBrokerScrip (6.5)",
            "6.5 step 6, B → C, delivery on C's peer subject",
            Label::ChangeBrokerScrip,
            t,
            (Broker, Customer),
            vec![sealed(
                Customer,
                vec![inner("ChangeBrokerScripX5", &x5), secret(&b3)],
            )],
            Some(embedded),
        );
    }

    /// 6.6: B3 (116.00) back to the bank.
    fn withdraw_broker_scrip(&mut self) {
        let t = tx(0x08);
        let b3 = self.world.broker_scrip(11_600, 0xb6);
        let x0 = BrokerScripWithdrawX0 {
            scrip: b3.scrip.clone(),
            cs_hash: self.cs_hash(&b3),
        };
        self.push(
            "BrokerScripWithdraw",
            "6.6 step 1, C → B, request",
            Label::BrokerScripWithdraw,
            t,
            (Customer, Broker),
            vec![sealed(
                Broker,
                vec![
                    InnerSpec::IdProof,
                    inner("BrokerScripWithdrawX0", &x0),
                    secret(&b3),
                ],
            )],
            None,
        );
        let x1 = BrokerScripWithdrawResponseX1 {
            re: self.re("BrokerScripWithdraw"),
            info: "credited to your bank account".to_owned(),
            value: amount(11_600),
        };
        self.push(
            "BrokerScripWithdrawResponse",
            "6.6 step 3, B → C, reply",
            Label::BrokerScripWithdrawResponse,
            t,
            (Broker, Customer),
            vec![signed("BrokerScripWithdrawResponseX1", &x1)],
            None,
        );
    }

    /// 6.7: V2 (10.00) back to the customer's bank account.
    fn withdraw_vendor_scrip(&mut self) {
        let t = tx(0x09);
        let world = self.world;
        let v2 = world.vendor_scrip(1_000, 0x54);
        let w = amount(1_000);
        let x0 = VendorWithdrawRequestX0 {
            scrip: v2.scrip.clone(),
            cs_hash: self.cs_hash(&v2),
        };
        let x1 = VendorWithdrawRequestX1 {
            value: w,
            merchant: world.uid(Merchant),
        };
        self.push(
            "VendorWithdrawRequest",
            "6.7 step 1, C → M, request (answered by M's signed Ack with deadline)",
            Label::VendorWithdrawRequest,
            t,
            (Customer, Merchant),
            vec![
                sealed(
                    Merchant,
                    vec![inner("VendorWithdrawRequestX0", &x0), secret(&v2)],
                ),
                sealed(
                    Broker,
                    vec![InnerSpec::IdProof, inner("VendorWithdrawRequestX1", &x1)],
                ),
            ],
            None,
        );
        let x2 = VendorWithdrawAuthorizationX2 {
            value: w,
            customer: world.uid(Customer),
            deadline: DEADLINE,
        };
        let parts = self.relay(
            "VendorWithdrawAuthorizationX2",
            &x2,
            "VendorWithdrawRequest",
            1,
        );
        self.push(
            "VendorWithdrawAuthorization",
            "6.7 step 2, M → B, request",
            Label::VendorWithdrawAuthorization,
            t,
            (Merchant, Broker),
            parts,
            None,
        );
        let x3 = VendorWithdrawResponseX3 {
            re: self.re("VendorWithdrawAuthorization"),
            decision: Decision::Ok,
            customer: world.uid(Customer),
            value: w,
        };
        self.push(
            "VendorWithdrawResponse",
            "6.7 step 4, B → M, reply",
            Label::VendorWithdrawResponse,
            t,
            (Broker, Merchant),
            vec![sealed(
                Merchant,
                vec![inner("VendorWithdrawResponseX3", &x3)],
            )],
            None,
        );
        let x4 = VendorWithdrawResultX4 {
            merchant: world.uid(Merchant),
            decision: Decision::Ok,
            info: "credited to your bank account".to_owned(),
        };
        self.push(
            "VendorWithdrawResult",
            "6.7 step 5, B → C, delivery on C's peer subject",
            Label::VendorWithdrawResult,
            t,
            (Broker, Customer),
            vec![sealed(Customer, vec![inner("VendorWithdrawResultX4", &x4)])],
            None,
        );
    }

    /// 6.8: an expired VendorScrip E0 renewed at the merchant as E1.
    fn renew(&mut self) {
        let t = tx(0x0a);
        let world = self.world;
        let (e0, e1) = (world.vendor_scrip(250, 0x56), world.vendor_scrip(250, 0x58));
        let x0 = RenewRequestX0 {
            scrip: e0.scrip.clone(),
            cs_hash: self.cs_hash(&e0),
        };
        self.push(
            "RenewRequest",
            "6.8 step 1, C → producer (here M), request",
            Label::RenewRequest,
            t,
            (Customer, Merchant),
            vec![sealed(
                Merchant,
                vec![inner("RenewRequestX0", &x0), secret(&e0)],
            )],
            None,
        );
        let x1 = RenewResponseX1 {
            re: self.re("RenewRequest"),
            scrip: e1.scrip.clone(),
            cs_hash: self.cs_hash(&e1),
        };
        self.push(
            "RenewResponse",
            "6.8 step 3, producer (here M) → C, reply",
            Label::RenewResponse,
            t,
            (Merchant, Customer),
            vec![sealed(
                Customer,
                vec![inner("RenewResponseX1", &x1), secret(&e1)],
            )],
            None,
        );
    }

    /// Section 7's status query, a signed refusal (section 3) and the lapse notice (4).
    fn control(&mut self) {
        let purchase = tx(0x05);
        let status = TransactionStatusBody { tx: purchase };
        self.push(
            "TransactionStatus",
            "section 7, C → B, request under the tx asked about",
            Label::TransactionStatus,
            purchase,
            (Customer, Broker),
            vec![signed("TransactionStatusBody", &status)],
            None,
        );
        let ack = self
            .spec("Ack")
            .render(self.world, &|_| unreachable!("no forwarded part"));
        let response = TransactionStatusResponseBody {
            re: self.re("TransactionStatus"),
            status: TxStatus::Frames {
                frames: vec![ack.encode().expect("the Ack frame")],
                omitted: 0,
            },
        };
        self.push(
            "TransactionStatusResponse",
            "section 7, B → C, reply: the frames B sent C in the tx (here the Ack of 6.3 step 1)",
            Label::TransactionStatusResponse,
            purchase,
            (Broker, Customer),
            vec![signed("TransactionStatusResponseBody", &response)],
            None,
        );
        let error = ErrorBody::new(
            self.re("BrokerScripWithdraw"),
            ErrorCode::Spent,
            "the scrip is not live",
        );
        self.push(
            "Error",
            "section 3, B → C, reply: a signed refusal (here of 6.6 step 1, with `Spent`)",
            Label::Error,
            tx(0x08),
            (Broker, Customer),
            vec![signed("ErrorBody", &error)],
            None,
        );
        let lapsed = self.world.vendor_scrip(300, 0x5a);
        let notice = ScripLapsedNoticeBody {
            scrip_id: lapsed.scrip.id(),
            owner: self.world.uid(Customer),
            value: lapsed.scrip.value(),
            expires: EXPIRES,
        };
        self.push(
            "ScripLapsedNotice",
            "section 4, M → B, request under tx = the scrip id (docs/adr/0011)",
            Label::ScripLapsedNotice,
            TxId(lapsed.scrip.id().0),
            (Merchant, Broker),
            vec![signed("ScripLapsedNoticeBody", &notice)],
            None,
        );
    }

    /// The catalogue query (docs/adr/0009), the operator's administration (0010) and
    /// merchants by name (0016).
    fn extensions(&mut self) {
        let t = tx(0x0c);
        let query = CatalogueRequestX0 {
            nonce: Nonce([0x4c; 16]),
        };
        self.push(
            "CatalogueRequest",
            "docs/adr/0009, C → M, request",
            Label::CatalogueRequest,
            t,
            (Customer, Merchant),
            vec![signed("CatalogueRequestX0", &query)],
            None,
        );
        let items = [
            ("tea-1", "Green tea, 100 g", 450),
            ("book-7", "A book", 1_299),
        ];
        let listing = CatalogueResponseX1::named_listing(
            self.re("CatalogueRequest"),
            Some(merchant_name()),
            items.iter().map(|(id, name, price)| CatalogueItem {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
                unit_price: amount(*price),
            }),
        );
        self.push(
            "CatalogueResponse",
            "docs/adr/0009, M → C, reply",
            Label::CatalogueResponse,
            t,
            (Merchant, Customer),
            vec![signed("CatalogueResponseX1", &listing)],
            None,
        );
        let t = tx(0x0d);
        let open = AdminRequestX0 {
            op: AdminOp::OpenAccount {
                pan: Pan::new(NEW_PAN),
            },
        };
        self.push(
            "AdminRequest",
            "docs/adr/0010, operator → B, request",
            Label::AdminRequest,
            t,
            (Operator, Broker),
            vec![sealed(
                Broker,
                vec![
                    inner("AdminRequestX0", &open),
                    InnerSpec::PanSecret {
                        secret: NEW_PAN_SECRET,
                    },
                ],
            )],
            None,
        );
        let opened = AdminResponseX1 {
            re: self.re("AdminRequest"),
            result: AdminResult::AccountOpened {
                pan: Pan::new(NEW_PAN),
            },
        };
        self.push(
            "AdminResponse",
            "docs/adr/0010, B → operator, reply",
            Label::AdminResponse,
            t,
            (Broker, Operator),
            vec![sealed(Operator, vec![inner("AdminResponseX1", &opened)])],
            None,
        );
    }

    /// Merchants by name (docs/adr/0016): the merchant registers its name at the broker,
    /// and the customer lists the named merchants.
    fn names(&mut self) {
        let t = tx(0x0e);
        let profile = MerchantProfileX0 {
            name: merchant_name(),
        };
        self.push(
            "MerchantProfile",
            "docs/adr/0016, M → B, request (answered Ack)",
            Label::MerchantProfile,
            t,
            (Merchant, Broker),
            vec![signed("MerchantProfileX0", &profile)],
            None,
        );
        let t = tx(0x0f);
        let ask = MerchantDirectoryRequestX0 {
            after: None,
            nonce: Nonce([0x4d; 16]),
        };
        self.push(
            "MerchantDirectoryRequest",
            "docs/adr/0016, C → B, request",
            Label::MerchantDirectoryRequest,
            t,
            (Customer, Broker),
            vec![signed("MerchantDirectoryRequestX0", &ask)],
            None,
        );
        let page = MerchantDirectoryResponseX1 {
            re: self.re("MerchantDirectoryRequest"),
            merchants: vec![MerchantEntry {
                uid: self.world.uid(Merchant),
                name: merchant_name(),
            }],
            more: false,
        };
        self.push(
            "MerchantDirectoryResponse",
            "docs/adr/0016, B → C, reply",
            Label::MerchantDirectoryResponse,
            t,
            (Broker, Customer),
            vec![signed("MerchantDirectoryResponseX1", &page)],
            None,
        );
    }
}

/// The merchant's display name in every vector that carries it.
fn merchant_name() -> MerchantName {
    MerchantName::new("Green Tea House").expect("a valid name")
}
