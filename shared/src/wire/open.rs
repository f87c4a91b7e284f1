//! Openers: check and unpack received parts into typed, verified bodies (protocol.md
//! sections 3 and 6).
//!
//! Every check a receiver owes a part is here, in one order: the right kind of part, the
//! right suite, addressed to me, the key unwrapped, the plaintext opened against the
//! header (and recipient) it was sealed under, the signer the header's sender, the
//! signature over tag, header and body, the body's label, and only then the body decoded.
//! Each failure is a typed [`WireError`]; a peer sees `BadFrame` for all of them.

use subtle::ConstantTimeEq;

use super::bodies::{AckBody, Body, Undertaking};
use super::codec::decode_exact;
use super::digest::{DigestItem, request_digest};
use super::error::WireError;
use super::frame::PartRef;
use super::header::{Header, aead_aad, sig_input};
use super::part::{Inner, Part, decode_inners};
use super::seal::id_proof_message;
use crate::ids::{AccountId, PanSecret, ScripId, Uid};
use crate::scrip::CustomerSecret;
use crate::suite::{KeyPair, PublicKey};

/// A signed body as verified: what an event keeps as evidence (protocol.md section 8: the
/// header it was signed under, the body, the signature and the signer's UID) and what the
/// request digest hashes (section 7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEvidence {
    /// The header the body was signed under: the frame's, or the origin's if forwarded.
    pub header: Header,
    /// Whether the body came in a forwarded part (then the digest includes `header`).
    pub forwarded: bool,
    /// The postcard body, as signed.
    pub body: Vec<u8>,
    /// The signature.
    pub sig: Vec<u8>,
    /// The signer, `header.sender`.
    pub signer: Uid,
}

impl SignedEvidence {
    /// Verifies the evidence again with the signer's key, e.g. in an audit.
    pub fn verify(&self, signer: &PublicKey) -> Result<(), WireError> {
        verify_signature(&self.header, &self.body, &self.sig, signer)
    }

    /// This body as the request digest sees it.
    #[must_use]
    pub fn digest_item(&self) -> DigestItem<'_> {
        DigestItem {
            origin: self.forwarded.then_some(&self.header),
            body: &self.body,
        }
    }
}

impl From<&SignedEvidence> for Undertaking {
    /// The merchant's signed body, to carry in `ChangeBrokerScrip` (6.2 step 5, 6.5 step 6).
    fn from(e: &SignedEvidence) -> Undertaking {
        Undertaking {
            body: e.body.clone(),
            sig: e.sig.clone(),
        }
    }
}

/// A typed body whose signature has been verified, with its evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified<B> {
    /// The decoded body.
    pub body: B,
    /// What was verified.
    pub evidence: SignedEvidence,
}

/// The request digest (protocol.md section 7) of the request with `header` whose verified
/// bodies, in order, are `bodies`.
pub fn digest_of_verified(
    header: &Header,
    bodies: &[&SignedEvidence],
) -> Result<Vec<u8>, WireError> {
    let items: Vec<DigestItem<'_>> = bodies.iter().map(|e| e.digest_item()).collect();
    request_digest(header, &items)
}

/// Verifies `sig` over `SigInput(header, body)` with `signer`, which must be the key of
/// the header's sender (protocol.md section 3).
pub fn verify_signature(
    header: &Header,
    body: &[u8],
    sig: &[u8],
    signer: &PublicKey,
) -> Result<(), WireError> {
    header.check_signer(signer)?;
    signer
        .verify(&sig_input(header, body)?, sig)
        .map_err(|_| WireError::BadSignature)
}

/// Verifies a signed body and decodes it as `B`, whose label must be the header's.
fn verify_body<B: Body>(
    header: &Header,
    forwarded: bool,
    body: &[u8],
    sig: &[u8],
    signer: &PublicKey,
) -> Result<Verified<B>, WireError> {
    if header.label != B::LABEL {
        return Err(WireError::LabelMismatch {
            expected: B::LABEL,
            found: header.label,
        });
    }
    verify_signature(header, body, sig, signer)?;
    Ok(Verified {
        body: B::from_bytes(body)?,
        evidence: SignedEvidence {
            header: *header,
            forwarded,
            body: body.to_vec(),
            sig: sig.to_vec(),
            signer: signer.uid(),
        },
    })
}

impl Undertaking {
    /// Verifies the carried body against the header its signer made it under (rebuilt by
    /// the holder from the tx, the signer's UID and the label) and decodes it.
    pub fn verify<B: Body>(&self, header: &Header, signer: &PublicKey) -> Result<B, WireError> {
        verify_body::<B>(header, false, &self.body, &self.sig, signer).map(|v| v.body)
    }
}

impl PartRef<'_> {
    /// Verifies a `Signed` part in the clear against `signer` and the part's header, and
    /// decodes its body.
    pub fn verify_signed<B: Body>(&self, signer: &PublicKey) -> Result<Verified<B>, WireError> {
        match self.part {
            Part::Signed { body, sig } => {
                verify_body(self.header, self.forwarded, body, sig, signer)
            }
            other => Err(WireError::WrongPartKind {
                expected: "Signed",
                found: other.kind_name(),
            }),
        }
    }

    /// Decodes the unsigned `Ack` of a `Clear` part: the broker's answer to 6.3 steps 1 and
    /// 5 (ADR 0008). Nothing authenticates it but its `re`, which only a reader of the
    /// request can compute; the caller checks that `re` against its pending request and
    /// accepts a `Clear` part for no other reply.
    pub fn unsigned_ack(&self) -> Result<AckBody, WireError> {
        self.unsigned::<AckBody>()
    }

    /// Decodes the unsigned body `B` of a `Clear` part whose label is `B`'s: the 6.3 `Ack`
    /// (ADR 0008), or an unsigned `Error` (protocol.md section 3: a refusal that spends no
    /// private-key operation, such as `Unavailable`, which only ever means "repeat").
    pub fn unsigned<B: Body>(&self) -> Result<B, WireError> {
        match self.part {
            Part::Clear { body } if !self.forwarded => {
                if self.header.label != B::LABEL {
                    return Err(WireError::LabelMismatch {
                        expected: B::LABEL,
                        found: self.header.label,
                    });
                }
                decode_exact(body)
            }
            other => Err(WireError::WrongPartKind {
                expected: "Clear",
                found: other.kind_name(),
            }),
        }
    }

    /// Opens a `Sealed` part addressed to `me`: unwraps the session key, decrypts against
    /// the part's header and recipient, decodes the inners. A part addressed to another
    /// UID is refused before any private-key operation.
    pub fn open_sealed(&self, me: &KeyPair) -> Result<Opened, WireError> {
        let Part::Sealed {
            to,
            wrapped_key,
            ciphertext,
        } = self.part
        else {
            return Err(WireError::WrongPartKind {
                expected: "Sealed",
                found: self.part.kind_name(),
            });
        };
        self.header.check_suite(me.suite())?;
        if *to != me.uid() {
            return Err(WireError::NotForMe { to: *to });
        }
        let key = me
            .unwrap_key(wrapped_key)
            .map_err(|_| WireError::KeyUnwrap)?;
        let plaintext = self
            .header
            .suite
            .open(&key, &aead_aad(self.header, to), ciphertext)
            .map_err(|_| WireError::Decrypt)?;
        Ok(Opened {
            header: *self.header,
            forwarded: self.forwarded,
            inners: decode_inners(&plaintext)?,
        })
    }
}

/// The opened plaintext of a sealed part, with the header it was sealed under. Nothing in
/// it is trusted until verified through its methods.
#[derive(Debug)]
pub struct Opened {
    header: Header,
    forwarded: bool,
    inners: Vec<Inner>,
}

impl Opened {
    /// The header the part was sealed (and its inners signed) under.
    #[must_use]
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// Whether the part came forwarded.
    #[must_use]
    pub const fn forwarded(&self) -> bool {
        self.forwarded
    }

    /// The inners, unverified.
    #[must_use]
    pub fn inners(&self) -> &[Inner] {
        &self.inners
    }

    /// The one inner that `select` picks, refusing none and more than one.
    fn single<'a, T>(
        &'a self,
        kind: &'static str,
        select: impl Fn(&'a Inner) -> Option<T>,
    ) -> Result<T, WireError> {
        let mut found = self.inners.iter().filter_map(select);
        let first = found.next().ok_or(WireError::MissingInner { kind })?;
        if found.next().is_some() {
            return Err(WireError::DuplicateInner { kind });
        }
        Ok(first)
    }

    /// Verifies the one `Signed` inner against `signer` (the header's sender) and decodes
    /// it as `B`.
    pub fn signed<B: Body>(&self, signer: &PublicKey) -> Result<Verified<B>, WireError> {
        let (body, sig) = self.single("Signed", |i| match i {
            Inner::Signed { body, sig } => Some((body, sig)),
            _ => None,
        })?;
        verify_body(&self.header, self.forwarded, body, sig, signer)
    }

    /// Verifies the one `IdProof` inner: `signer` (the header's sender) signed
    /// `H("peerscrip/id" ‖ ID ‖ tx ‖ label)` for the `id` the verifier recomputed from its
    /// own records (protocol.md section 3).
    pub fn verify_id_proof(&self, signer: &PublicKey, id: &AccountId) -> Result<(), WireError> {
        let sig = self.single("IdProof", |i| match i {
            Inner::IdProof { sig } => Some(sig),
            _ => None,
        })?;
        self.header.check_signer(signer)?;
        signer
            .verify(&id_proof_message(&self.header, id), sig)
            .map_err(|_| WireError::BadIdProof)
    }

    /// The one `PublicKey` inner as a key of the header's suite (6.0). The caller checks
    /// that its UID is the sender's and that it verifies the signed inner.
    pub fn public_key(&self) -> Result<PublicKey, WireError> {
        let der = self.single("PublicKey", |i| match i {
            Inner::PublicKey { spki_der } => Some(spki_der),
            _ => None,
        })?;
        PublicKey::from_spki_der(self.header.suite, der).map_err(WireError::BadPublicKey)
    }

    /// The one `Inner::PanSecret` of the part (an operator's account opening, ADR 0010).
    pub fn pan_secret(&self) -> Result<PanSecret, WireError> {
        self.single("PanSecret", |i| match i {
            Inner::PanSecret { secret } => Some(secret),
            _ => None,
        })
        .cloned()
    }

    /// The CustomerSecret of `scrip_id`, checked in constant time against the `cs_hash`
    /// of the verified body that names the scrip (protocol.md section 3).
    pub fn secret(&self, scrip_id: ScripId, cs_hash: &[u8]) -> Result<CustomerSecret, WireError> {
        let cs = self
            .single("Secret", |i| match i {
                Inner::Secret { scrip_id: id, cs } if *id == scrip_id => Some(cs),
                _ => None,
            })
            .map_err(|e| match e {
                WireError::MissingInner { .. } => WireError::MissingSecret { scrip_id },
                other => other,
            })?;
        if bool::from(cs.cs_hash(self.header.suite).ct_eq(cs_hash)) {
            Ok(cs.clone())
        } else {
            Err(WireError::SecretMismatch { scrip_id })
        }
    }
}
