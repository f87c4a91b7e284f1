//! The `open` step (docs/adr/0006): an already decoded request frame in, a typed
//! verified request out. CPU-heavy (an RSA unwrap and a signature verification), pure, and
//! later run off the actor thread.
//!
//! The order of the checks is the order of protocol.md section 3: the suite and the sender
//! are public properties of the frame and are checked before any cryptography (so an
//! unknown sender costs no private-key operation, and gets its own code `UnknownPeer`);
//! then the one sealed part addressed to this merchant is opened, its signed body verified
//! against the sender's key and the frame header, and the CustomerSecret checked against
//! the body's `cs_hash`. Every failure from there on is `BadFrame`, one class, no oracle.

use shared::node::Refusal;
use shared::wire::bodies::{
    Body, CatalogueRequestX0, PurchaseRequestX1, RenewRequestX0, TransactionStatusBody,
    VendorScripRequestX2, VendorTopUpAuthorizationX2, VendorTopUpRequestX1,
    VendorWithdrawRequestX0,
};
use shared::wire::{
    Frame, Header, Label, Opened, Part, PartRef, SignedEvidence, WireError, digest_of_verified,
};
use shared::{CustomerSecret, ErrorCode, KeyPair, PublicKey, Scrip, Uid};

use super::state::State;

/// Why a frame could not be opened. A peer sees [`OpenError::code`].
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The frame names a suite this merchant is not configured for (section 2).
    #[error("frame suite {found} is not this node's {expected}")]
    WrongSuite {
        /// This node's suite.
        expected: shared::Suite,
        /// The frame's.
        found: shared::Suite,
    },
    /// The sender's public key is not known here (6.0b: a key arrives only from the
    /// broker), so nothing it signed can be verified.
    #[error("unknown sender {0}")]
    UnknownPeer(Uid),
    /// The label is not a request this merchant serves.
    #[error("a merchant does not serve {0:?} requests")]
    NotServed(Label),
    /// The frame carries other parts than the request has.
    #[error("unexpected number of parts: {0}")]
    PartCount(usize),
    /// A message only the broker sends (6.5 step 2) came from someone else.
    #[error("{0} is not the broker")]
    NotTheBroker(Uid),
    /// Decoding, decrypting or verifying failed.
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl From<OpenError> for Refusal {
    /// What the sender is told: `BadFrame` failures all carry the one message of
    /// `Refusal::from(WireError)`, whichever step failed (no oracle, section 3).
    fn from(e: OpenError) -> Refusal {
        match e {
            OpenError::Wire(w) => Refusal::from(w),
            OpenError::NotServed(_) | OpenError::PartCount(_) => Refusal::from(WireError::Decrypt),
            other => Refusal::new(other.code(), other.to_string()),
        }
    }
}

impl OpenError {
    /// The code a peer sees (protocol.md section 3): `WrongSuite` and `UnknownPeer` are
    /// checked before any cryptography and keep their codes; every other failure is
    /// `BadFrame` (or a public property of the frame, as [`WireError::code`] says).
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            OpenError::WrongSuite { .. } => ErrorCode::WrongSuite,
            OpenError::UnknownPeer(_) => ErrorCode::UnknownPeer,
            OpenError::NotServed(_) | OpenError::PartCount(_) => ErrorCode::BadFrame,
            OpenError::NotTheBroker(_) => ErrorCode::NotAParty,
            OpenError::Wire(e) => e.code(),
        }
    }
}

/// A scrip presented with its CustomerSecret in a verified signed body (6.3 step 2, 6.8
/// step 1): the body's `cs_hash` was checked against the `Inner::Secret` of the same part.
#[derive(Debug)]
pub struct Presented<B> {
    /// The request's header (the frame's).
    pub header: Header,
    /// The verified body.
    pub body: B,
    /// The CustomerSecret of the presented scrip.
    pub cs: CustomerSecret,
    /// The signed part, for the event's evidence.
    pub evidence: SignedEvidence,
    /// The request digest (protocol.md section 7).
    pub digest: Vec<u8>,
}

/// 6.2 step 2 as the merchant reads it: its own part `X2 = W` (verified), and C's part
/// sealed to the broker, which it cannot read and relays unchanged.
#[derive(Debug)]
pub struct ExchangeRequest {
    /// The request's header (C's).
    pub header: Header,
    /// `X2 = W`.
    pub body: VendorScripRequestX2,
    /// `X2`'s evidence.
    pub evidence: SignedEvidence,
    /// The request digest over what the merchant verified (`X2`; section 7).
    pub digest: Vec<u8>,
    /// C's broker part, wrapped with C's header for relaying (section 3, "Forwarded parts").
    pub broker_part: Part,
}

/// 6.7 step 1 as the merchant reads it: `X0 = V0, CS_V0` presented to it, and C's part
/// sealed to the broker (`X1 = W, UID_M` with C's IdProof), relayed unchanged.
#[derive(Debug)]
pub struct WithdrawRequest {
    /// The presented V0.
    pub presented: Presented<VendorWithdrawRequestX0>,
    /// C's broker part, wrapped with C's header for relaying.
    pub broker_part: Part,
}

/// 6.5 step 2 as verified: the broker's `X2` (checked first) and C's forwarded `X1` with
/// `CS_V0`, verified against C's origin header.
#[derive(Debug)]
pub struct TopUpAuthorization {
    /// The delivery's header (the broker's).
    pub header: Header,
    /// `X2 = W_V1, W_V, UID_C, deadline`, signed by the broker.
    pub x2: VendorTopUpAuthorizationX2,
    /// `X1 = W_V1, V0, CS_V0`, signed by C.
    pub x1: VendorTopUpRequestX1,
    /// `CS_V0`.
    pub cs: CustomerSecret,
    /// The evidence of `X2` then `X1`.
    pub evidence: Vec<SignedEvidence>,
    /// The digest over both (section 7): a repeat by the broker matches it.
    pub digest: Vec<u8>,
}

/// `TransactionStatus { tx }` (section 7), signed in the clear by a party.
#[derive(Debug)]
pub struct StatusRequest {
    /// The request's header.
    pub header: Header,
    /// `{ tx }`.
    pub body: TransactionStatusBody,
    /// The request digest.
    pub digest: Vec<u8>,
}

/// `CatalogueRequest { N }` (extension, docs/adr/0009), signed in the clear by a party.
#[derive(Debug)]
pub struct CatalogueQuery {
    /// The request's header.
    pub header: Header,
    /// `X0 = N`.
    pub body: CatalogueRequestX0,
    /// The request digest, which the answer's `re` names.
    pub digest: Vec<u8>,
}

/// A verified request, one variant per request label a merchant serves.
#[derive(Debug)]
pub enum VerifiedRequest {
    /// 6.3 step 2, `PurchaseRequest`: `Sealed(to M){ Signed(X1 = V0, CS_V0, OI) }`.
    Purchase(Presented<PurchaseRequestX1>),
    /// 6.8 step 1, `RenewRequest`: `Sealed(to M){ Signed(X0 = E0, CS_E0) }`.
    Renew(Presented<RenewRequestX0>),
    /// 6.2 step 2, `VendorScripRequest`.
    Exchange(ExchangeRequest),
    /// 6.7 step 1, `VendorWithdrawRequest`.
    Withdraw(WithdrawRequest),
    /// 6.5 step 2, `VendorTopUpAuthorization` from the broker.
    TopUp(Box<TopUpAuthorization>),
    /// Section 7, `TransactionStatus`.
    Status(StatusRequest),
    /// Extension (docs/adr/0009), `CatalogueRequest`.
    Catalogue(CatalogueQuery),
}

impl VerifiedRequest {
    /// The request's header.
    #[must_use]
    pub fn header(&self) -> &Header {
        match self {
            VerifiedRequest::Purchase(p) => &p.header,
            VerifiedRequest::Renew(r) => &r.header,
            VerifiedRequest::Exchange(e) => &e.header,
            VerifiedRequest::Withdraw(w) => &w.presented.header,
            VerifiedRequest::TopUp(t) => &t.header,
            VerifiedRequest::Status(s) => &s.header,
            VerifiedRequest::Catalogue(c) => &c.header,
        }
    }

    /// The request digest (protocol.md section 7).
    #[must_use]
    pub fn digest(&self) -> &[u8] {
        match self {
            VerifiedRequest::Purchase(p) => &p.digest,
            VerifiedRequest::Renew(r) => &r.digest,
            VerifiedRequest::Exchange(e) => &e.digest,
            VerifiedRequest::Withdraw(w) => &w.presented.digest,
            VerifiedRequest::TopUp(t) => &t.digest,
            VerifiedRequest::Status(s) => &s.digest,
            VerifiedRequest::Catalogue(c) => &c.digest,
        }
    }
}

/// A body that presents one scrip with its `cs_hash`.
trait PresentsScrip: Body {
    fn scrip(&self) -> &Scrip;
    fn cs_hash(&self) -> &[u8];
}

impl PresentsScrip for PurchaseRequestX1 {
    fn scrip(&self) -> &Scrip {
        &self.scrip
    }
    fn cs_hash(&self) -> &[u8] {
        &self.cs_hash
    }
}

impl PresentsScrip for VendorWithdrawRequestX0 {
    fn scrip(&self) -> &Scrip {
        &self.scrip
    }
    fn cs_hash(&self) -> &[u8] {
        &self.cs_hash
    }
}

impl PresentsScrip for RenewRequestX0 {
    fn scrip(&self) -> &Scrip {
        &self.scrip
    }
    fn cs_hash(&self) -> &[u8] {
        &self.cs_hash
    }
}

/// Opens a request frame addressed to this merchant (`me`), with the sender's key from
/// `state`'s peer keys; `broker` is the pinned broker's UID (section 1), the only sender of
/// 6.5 step 2 and the only recipient of the parts the merchant relays.
pub fn open(
    frame: &Frame,
    me: &KeyPair,
    state: &State,
    broker: Uid,
) -> Result<VerifiedRequest, OpenError> {
    let header = &frame.header;
    if header.suite != me.suite() {
        return Err(OpenError::WrongSuite {
            expected: me.suite(),
            found: header.suite,
        });
    }
    let sender = state
        .peer_key(&header.sender)
        .ok_or(OpenError::UnknownPeer(header.sender))?;
    match header.label {
        Label::PurchaseRequest => open_presented(frame, me, sender).map(VerifiedRequest::Purchase),
        Label::RenewRequest => open_presented(frame, me, sender).map(VerifiedRequest::Renew),
        Label::VendorScripRequest => open_exchange(frame, me, sender, broker),
        Label::VendorWithdrawRequest => open_withdraw(frame, me, sender, broker),
        Label::VendorTopUpAuthorization => open_top_up(frame, me, sender, state, broker),
        Label::TransactionStatus => {
            let part = own_part(frame, 1, 0)?;
            let verified = part.verify_signed::<TransactionStatusBody>(sender)?;
            let digest = digest_of_verified(&frame.header, &[&verified.evidence])?;
            Ok(VerifiedRequest::Status(StatusRequest {
                header: frame.header,
                body: verified.body,
                digest,
            }))
        }
        Label::CatalogueRequest => {
            let part = own_part(frame, 1, 0)?;
            let verified = part.verify_signed::<CatalogueRequestX0>(sender)?;
            let digest = digest_of_verified(&frame.header, &[&verified.evidence])?;
            Ok(VerifiedRequest::Catalogue(CatalogueQuery {
                header: frame.header,
                body: verified.body,
                digest,
            }))
        }
        other => Err(OpenError::NotServed(other)),
    }
}

/// Part `index` of a frame of exactly `count` parts, sent by the frame's sender itself (not
/// forwarded: a customer's request relays nothing, and a relayed part here would be
/// verified against an origin header that is not this frame's).
fn own_part(frame: &Frame, count: usize, index: usize) -> Result<PartRef<'_>, OpenError> {
    if frame.parts.len() != count {
        return Err(OpenError::PartCount(frame.parts.len()));
    }
    let part = frame.part(index)?;
    if part.forwarded {
        return Err(WireError::WrongPartKind {
            expected: "Sealed",
            found: "Forwarded",
        }
        .into());
    }
    Ok(part)
}

/// C's part for the broker, which the merchant relays unread: it must be sealed to the
/// broker (a public property of the part), so that the merchant never records a request
/// the broker could only refuse; the broker verifies the rest.
fn broker_part(frame: &Frame, index: usize, broker: Uid) -> Result<Part, OpenError> {
    match frame.parts.get(index) {
        Some(Part::Sealed { to, .. }) if *to == broker => Ok(frame.forward(index)?),
        _ => Err(WireError::WrongPartKind {
            expected: "Sealed to the broker",
            found: "another part",
        }
        .into()),
    }
}

/// 6.2 step 2: `Sealed(to B){…}` (part 0), `Sealed(to M){ Signed(X2 = W) }` (part 1).
fn open_exchange(
    frame: &Frame,
    me: &KeyPair,
    sender: &PublicKey,
    broker: Uid,
) -> Result<VerifiedRequest, OpenError> {
    let mine = own_part(frame, 2, 1)?;
    let relayed = broker_part(frame, 0, broker)?;
    let verified = mine
        .open_sealed(me)?
        .signed::<VendorScripRequestX2>(sender)?;
    let digest = digest_of_verified(&frame.header, &[&verified.evidence])?;
    Ok(VerifiedRequest::Exchange(ExchangeRequest {
        header: frame.header,
        body: verified.body,
        evidence: verified.evidence,
        digest,
        broker_part: relayed,
    }))
}

/// 6.7 step 1: `Sealed(to M){ Signed(X0 = V0, CS_V0) }` (part 0), `Sealed(to B){…}`
/// (part 1).
fn open_withdraw(
    frame: &Frame,
    me: &KeyPair,
    sender: &PublicKey,
    broker: Uid,
) -> Result<VerifiedRequest, OpenError> {
    let mine = own_part(frame, 2, 0)?;
    let relayed = broker_part(frame, 1, broker)?;
    let presented = presented_in(&frame.header, mine, me, sender)?;
    Ok(VerifiedRequest::Withdraw(WithdrawRequest {
        presented,
        broker_part: relayed,
    }))
}

/// 6.5 step 2, from the broker: its own sealed part first (its signature is checked before
/// anything of C's is opened, protocol.md 6.5 step 3), then C's merchant part forwarded,
/// which must come from the `UID_C` the broker signed, under `VendorTopUpRequest` of this tx.
fn open_top_up(
    frame: &Frame,
    me: &KeyPair,
    sender: &PublicKey,
    state: &State,
    broker: Uid,
) -> Result<VerifiedRequest, OpenError> {
    if frame.header.sender != broker {
        return Err(OpenError::NotTheBroker(frame.header.sender));
    }
    if frame.parts.len() != 2 {
        return Err(OpenError::PartCount(frame.parts.len()));
    }
    let own = frame.part(0)?;
    let relayed = frame.part(1)?;
    if own.forwarded || !relayed.forwarded {
        return Err(WireError::WrongPartKind {
            expected: "Sealed then Forwarded",
            found: "another arrangement",
        }
        .into());
    }
    let x2 = own
        .open_sealed(me)?
        .signed::<VendorTopUpAuthorizationX2>(sender)?;
    let origin = relayed.header;
    if origin.label != Label::VendorTopUpRequest || origin.sender != x2.body.customer {
        return Err(WireError::LabelMismatch {
            expected: Label::VendorTopUpRequest,
            found: origin.label,
        }
        .into());
    }
    let customer = state
        .peer_key(&x2.body.customer)
        .ok_or(OpenError::UnknownPeer(x2.body.customer))?;
    let opened = relayed.open_sealed(me)?;
    let x1 = opened.signed::<VendorTopUpRequestX1>(customer)?;
    let cs = opened.secret(x1.body.vendor_scrip.id(), &x1.body.cs_hash)?;
    let digest = digest_of_verified(&frame.header, &[&x2.evidence, &x1.evidence])?;
    Ok(VerifiedRequest::TopUp(Box::new(TopUpAuthorization {
        header: frame.header,
        x2: x2.body,
        x1: x1.body,
        cs,
        evidence: vec![x2.evidence, x1.evidence],
        digest,
    })))
}

/// The one sealed part of a request that presents a scrip: opened, its signed body
/// verified against the sender, its CustomerSecret checked against the body's `cs_hash`.
fn open_presented<B: PresentsScrip>(
    frame: &Frame,
    me: &KeyPair,
    sender: &PublicKey,
) -> Result<Presented<B>, OpenError> {
    let part = own_part(frame, 1, 0)?;
    presented_in(&frame.header, part, me, sender)
}

/// The sealed part `part` of a frame with `header` that presents a scrip.
fn presented_in<B: PresentsScrip>(
    header: &Header,
    part: PartRef<'_>,
    me: &KeyPair,
    sender: &PublicKey,
) -> Result<Presented<B>, OpenError> {
    let opened: Opened = part.open_sealed(me)?;
    let verified = opened.signed::<B>(sender)?;
    let body = verified.body;
    let cs = opened.secret(body.scrip().id(), body.cs_hash())?;
    let digest = digest_of_verified(header, &[&verified.evidence])?;
    Ok(Presented {
        header: *header,
        body,
        cs,
        evidence: verified.evidence,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{Kit, NOW, presenting_to, tea};
    use shared::wire::{Part, seal, secret_inner, sign};
    use shared::{Amount, Suite, TxId};

    fn code(r: Result<VerifiedRequest, OpenError>) -> ErrorCode {
        match r {
            Ok(v) => panic!("expected a refusal, opened {v:?}"),
            Err(e) => e.code(),
        }
    }

    #[test]
    fn opens_a_purchase_and_a_renewal_in_both_suites() {
        for suite in Suite::ALL {
            let kit = Kit::new(suite);
            let state = kit.state();
            let (scrip, cs) = kit.mint().issue(
                Amount::from_minor(1_000),
                NOW.saturating_add_secs(100).get(),
            );
            let order = tea(2);
            let tx = TxId::random();
            let frame = kit.purchase(kit.customer, tx, &scrip, &cs, &order);
            let VerifiedRequest::Purchase(p) =
                open(&frame, kit.merchant, &state, kit.broker.uid()).unwrap()
            else {
                panic!("not a purchase")
            };
            assert_eq!(p.header, frame.header);
            assert_eq!(p.body.scrip, scrip);
            assert_eq!(p.body.order, order);
            assert_eq!(p.cs, cs);
            assert_eq!(p.evidence.signer, kit.customer.uid());
            assert_eq!(
                p.digest,
                digest_of_verified(&frame.header, &[&p.evidence]).unwrap()
            );
            // A retry re-signs and re-seals the same body: same digest.
            let again = kit.purchase(kit.customer, tx, &scrip, &cs, &order);
            assert_ne!(again, frame);
            let opened = open(&again, kit.merchant, &state, kit.broker.uid()).unwrap();
            assert_eq!(opened.digest(), p.digest.as_slice());

            let renew = kit.renew(kit.customer, tx, &scrip, &cs);
            let VerifiedRequest::Renew(r) =
                open(&renew, kit.merchant, &state, kit.broker.uid()).unwrap()
            else {
                panic!("not a renewal")
            };
            assert_eq!(r.body.scrip, scrip);
            assert_eq!(r.cs, cs);
            assert_ne!(r.digest, p.digest, "another label, another digest");
        }
    }

    #[test]
    fn checks_suite_and_sender_before_any_cryptography() {
        let kit = Kit::new(Suite::Modern);
        let state = kit.state();
        let (scrip, cs) = kit.mint().issue(
            Amount::from_minor(1_000),
            NOW.saturating_add_secs(100).get(),
        );
        let mut frame = kit.purchase(kit.customer, TxId::random(), &scrip, &cs, &tea(1));
        frame.header.suite = Suite::Paper;
        assert_eq!(
            code(open(&frame, kit.merchant, &state, kit.broker.uid())),
            ErrorCode::WrongSuite
        );

        let frame = kit.purchase(kit.stranger, TxId::random(), &scrip, &cs, &tea(1));
        assert_eq!(
            code(open(&frame, kit.merchant, &state, kit.broker.uid())),
            ErrorCode::UnknownPeer
        );
    }

    /// Whichever step failed, a `BadFrame` refusal says the same thing (no oracle, §3).
    #[test]
    fn bad_frame_refusals_all_look_alike() {
        let refusals = [
            Refusal::from(OpenError::NotServed(Label::Ack)),
            Refusal::from(OpenError::PartCount(2)),
            Refusal::from(OpenError::Wire(WireError::BadSignature)),
            Refusal::from(OpenError::Wire(WireError::KeyUnwrap)),
        ];
        for r in &refusals {
            assert_eq!(r, &refusals[0]);
            assert_eq!(r.code, ErrorCode::BadFrame);
        }
        let unknown = Refusal::from(OpenError::UnknownPeer(Uid([7; 16])));
        assert_eq!(unknown.code, ErrorCode::UnknownPeer);
    }

    #[test]
    fn every_malformed_request_is_bad_frame() {
        for suite in Suite::ALL {
            let kit = Kit::new(suite);
            let state = kit.state();
            let (scrip, cs) = kit.mint().issue(
                Amount::from_minor(1_000),
                NOW.saturating_add_secs(100).get(),
            );
            let tx = TxId::random();
            let good = kit.purchase(kit.customer, tx, &scrip, &cs, &tea(1));

            // A label a merchant does not serve.
            let mut wrong_label = good.clone();
            wrong_label.header.label = Label::BrokerScripRequest;
            assert_eq!(
                code(open(&wrong_label, kit.merchant, &state, kit.broker.uid())),
                ErrorCode::BadFrame
            );

            // A second part.
            let mut two = good.clone();
            two.parts.push(good.parts[0].clone());
            assert_eq!(
                code(open(&two, kit.merchant, &state, kit.broker.uid())),
                ErrorCode::BadFrame
            );

            // Sealed to another merchant.
            let body = PurchaseRequestX1 {
                scrip: scrip.clone(),
                cs_hash: cs.cs_hash(suite),
                order: tea(1),
            };
            let elsewhere = presenting_to(
                kit.customer,
                kit.other_merchant.public(),
                tx,
                &body,
                &scrip,
                &cs,
            );
            assert_eq!(
                code(open(&elsewhere, kit.merchant, &state, kit.broker.uid())),
                ErrorCode::BadFrame
            );

            // A secret that does not hash to the body's cs_hash.
            let (_, other_cs) = kit.mint().issue(Amount::from_minor(1), NOW.get());
            let header = good.header;
            let signed = sign(kit.customer, &header, &body).unwrap();
            let part = seal(
                &header,
                kit.merchant.public(),
                &[signed.into(), secret_inner(scrip.id(), &other_cs)],
            )
            .unwrap();
            let mismatch = Frame::new(header, vec![part]);
            assert_eq!(
                code(open(&mismatch, kit.merchant, &state, kit.broker.uid())),
                ErrorCode::BadFrame
            );

            // A signed part cut from one message (another tx) and pasted into another.
            let other_header = Header::new(
                suite,
                Label::PurchaseRequest,
                TxId::random(),
                kit.customer.uid(),
            );
            let signed_elsewhere = sign(kit.customer, &other_header, &body).unwrap();
            let pasted = seal(
                &header,
                kit.merchant.public(),
                &[signed_elsewhere.into(), secret_inner(scrip.id(), &cs)],
            )
            .unwrap();
            let pasted = Frame::new(header, vec![pasted]);
            assert_eq!(
                code(open(&pasted, kit.merchant, &state, kit.broker.uid())),
                ErrorCode::BadFrame
            );

            // A whole sealed part moved into a frame of another tx.
            let mut moved = kit.purchase(kit.customer, TxId::random(), &scrip, &cs, &tea(1));
            moved.parts = good.parts.clone();
            assert_eq!(
                code(open(&moved, kit.merchant, &state, kit.broker.uid())),
                ErrorCode::BadFrame
            );

            // The customer's part relayed by someone else.
            let relayed = Frame::new(
                header.next(Label::PurchaseRequest, kit.other.uid()),
                vec![Part::forwarded(header, good.parts[0].clone()).unwrap()],
            );
            assert_eq!(
                code(open(&relayed, kit.merchant, &state, kit.broker.uid())),
                ErrorCode::BadFrame
            );
        }
    }
}
