//! The `open` step (design brief of issue 4): an already decoded request frame in, a typed
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
use shared::wire::bodies::{Body, PurchaseRequestX1, RenewRequestX0};
use shared::wire::{Frame, Header, Label, Opened, SignedEvidence, WireError, digest_of_verified};
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
    /// The frame carries other parts than the one sealed part the request has.
    #[error("expected exactly one part, found {0}")]
    PartCount(usize),
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

/// A verified request, one variant per request label a merchant serves in its two-party
/// transactions.
#[derive(Debug)]
pub enum VerifiedRequest {
    /// 6.3 step 2, `PurchaseRequest`: `Sealed(to M){ Signed(X1 = V0, CS_V0, OI) }`.
    Purchase(Presented<PurchaseRequestX1>),
    /// 6.8 step 1, `RenewRequest`: `Sealed(to M){ Signed(X0 = E0, CS_E0) }`.
    Renew(Presented<RenewRequestX0>),
}

impl VerifiedRequest {
    /// The request's header.
    #[must_use]
    pub fn header(&self) -> &Header {
        match self {
            VerifiedRequest::Purchase(p) => &p.header,
            VerifiedRequest::Renew(r) => &r.header,
        }
    }

    /// The request digest (protocol.md section 7).
    #[must_use]
    pub fn digest(&self) -> &[u8] {
        match self {
            VerifiedRequest::Purchase(p) => &p.digest,
            VerifiedRequest::Renew(r) => &r.digest,
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

impl PresentsScrip for RenewRequestX0 {
    fn scrip(&self) -> &Scrip {
        &self.scrip
    }
    fn cs_hash(&self) -> &[u8] {
        &self.cs_hash
    }
}

/// Opens a request frame addressed to this merchant (`me`), with the sender's key from
/// `state`'s peer keys.
pub fn open(frame: &Frame, me: &KeyPair, state: &State) -> Result<VerifiedRequest, OpenError> {
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
        other => Err(OpenError::NotServed(other)),
    }
}

/// The one sealed part of a request that presents a scrip: opened, its signed body
/// verified against the sender, its CustomerSecret checked against the body's `cs_hash`.
fn open_presented<B: PresentsScrip>(
    frame: &Frame,
    me: &KeyPair,
    sender: &PublicKey,
) -> Result<Presented<B>, OpenError> {
    if frame.parts.len() != 1 {
        return Err(OpenError::PartCount(frame.parts.len()));
    }
    let part = frame.part(0)?;
    if part.forwarded {
        // A customer's request comes straight from the customer; a relayed part here
        // would be verified against an origin header that is not this frame's.
        return Err(WireError::WrongPartKind {
            expected: "Sealed",
            found: "Forwarded",
        }
        .into());
    }
    let opened: Opened = part.open_sealed(me)?;
    let verified = opened.signed::<B>(sender)?;
    let body = verified.body;
    let cs = opened.secret(body.scrip().id(), body.cs_hash())?;
    let digest = digest_of_verified(&frame.header, &[&verified.evidence])?;
    Ok(Presented {
        header: frame.header,
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
            let (scrip, cs) = kit.mint().issue(Amount::from_minor(1_000), NOW + 100);
            let order = tea(2);
            let tx = TxId::random();
            let frame = kit.purchase(kit.customer, tx, &scrip, &cs, &order);
            let VerifiedRequest::Purchase(p) = open(&frame, kit.merchant, &state).unwrap() else {
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
            let opened = open(&again, kit.merchant, &state).unwrap();
            assert_eq!(opened.digest(), p.digest.as_slice());

            let renew = kit.renew(kit.customer, tx, &scrip, &cs);
            let VerifiedRequest::Renew(r) = open(&renew, kit.merchant, &state).unwrap() else {
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
        let (scrip, cs) = kit.mint().issue(Amount::from_minor(1_000), NOW + 100);
        let mut frame = kit.purchase(kit.customer, TxId::random(), &scrip, &cs, &tea(1));
        frame.header.suite = Suite::Paper;
        assert_eq!(
            code(open(&frame, kit.merchant, &state)),
            ErrorCode::WrongSuite
        );

        let frame = kit.purchase(kit.stranger, TxId::random(), &scrip, &cs, &tea(1));
        assert_eq!(
            code(open(&frame, kit.merchant, &state)),
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
            let (scrip, cs) = kit.mint().issue(Amount::from_minor(1_000), NOW + 100);
            let tx = TxId::random();
            let good = kit.purchase(kit.customer, tx, &scrip, &cs, &tea(1));

            // A label a merchant does not serve.
            let mut wrong_label = good.clone();
            wrong_label.header.label = Label::BrokerScripRequest;
            assert_eq!(
                code(open(&wrong_label, kit.merchant, &state)),
                ErrorCode::BadFrame
            );

            // A second part.
            let mut two = good.clone();
            two.parts.push(good.parts[0].clone());
            assert_eq!(code(open(&two, kit.merchant, &state)), ErrorCode::BadFrame);

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
                code(open(&elsewhere, kit.merchant, &state)),
                ErrorCode::BadFrame
            );

            // A secret that does not hash to the body's cs_hash.
            let (_, other_cs) = kit.mint().issue(Amount::from_minor(1), NOW);
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
                code(open(&mismatch, kit.merchant, &state)),
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
                code(open(&pasted, kit.merchant, &state)),
                ErrorCode::BadFrame
            );

            // A whole sealed part moved into a frame of another tx.
            let mut moved = kit.purchase(kit.customer, TxId::random(), &scrip, &cs, &tea(1));
            moved.parts = good.parts.clone();
            assert_eq!(
                code(open(&moved, kit.merchant, &state)),
                ErrorCode::BadFrame
            );

            // The customer's part relayed by someone else.
            let relayed = Frame::new(
                header.next(Label::PurchaseRequest, kit.other.uid()),
                vec![Part::forwarded(header, good.parts[0].clone()).unwrap()],
            );
            assert_eq!(
                code(open(&relayed, kit.merchant, &state)),
                ErrorCode::BadFrame
            );
        }
    }
}
