//! Builders: turn typed bodies into signed and sealed parts (protocol.md sections 2 and 3).
//!
//! Every signature covers the tag, the header and the body (`SigInput`); every sealed part
//! has a fresh session key and, in the modern suite, the header and recipient as
//! associated data; an IdProof is bound to the transaction and the label. So no part can be
//! cut from one message and pasted into another.

use super::bodies::Body;
use super::error::WireError;
use super::header::{Header, aead_aad, sig_input};
use super::part::{Inner, Part, encode_inners};
use crate::ids::{AccountId, ScripId};
use crate::scrip::CustomerSecret;
use crate::suite::{KeyPair, PublicKey, SessionKey};

/// Domain-separation tag of the IdProof message (protocol.md section 3).
pub const ID_TAG: &[u8] = b"peerscrip/id";

/// `Sign_K(X)`: a body's postcard bytes and the signature over its `SigInput`. Becomes a
/// [`Part::Signed`] (in the clear) or an [`Inner::Signed`] (inside a sealed part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedBody {
    /// The postcard body.
    pub body: Vec<u8>,
    /// The signature over `SigInput(header, body)`.
    pub sig: Vec<u8>,
}

impl From<SignedBody> for Part {
    fn from(s: SignedBody) -> Part {
        Part::Signed {
            body: s.body,
            sig: s.sig,
        }
    }
}

impl From<SignedBody> for Inner {
    fn from(s: SignedBody) -> Inner {
        Inner::Signed {
            body: s.body,
            sig: s.sig,
        }
    }
}

/// Signs `body` under `header` (protocol.md section 3). The header's label must be the
/// body's, its sender `key`'s UID and its suite `key`'s.
pub fn sign<B: Body>(key: &KeyPair, header: &Header, body: &B) -> Result<SignedBody, WireError> {
    if header.label != B::LABEL {
        return Err(WireError::LabelMismatch {
            expected: B::LABEL,
            found: header.label,
        });
    }
    sign_bytes(key, header, body.to_bytes())
}

/// Signs body bytes as they are, for a retry that must send the saved bodies byte for byte
/// (protocol.md section 7) with a fresh signature.
pub fn sign_bytes(key: &KeyPair, header: &Header, body: Vec<u8>) -> Result<SignedBody, WireError> {
    header.check_signer(key.public())?;
    let sig = key
        .sign(&sig_input(header, &body)?)
        .map_err(WireError::Build)?;
    Ok(SignedBody { body, sig })
}

/// The message an IdProof signs: `H("peerscrip/id" ‖ ID ‖ tx (16) ‖ label code (u8))` in
/// the header's suite (protocol.md section 3): it proves knowledge of `ID` for this
/// transaction and message only.
#[must_use]
pub fn id_proof_message(header: &Header, id: &AccountId) -> Vec<u8> {
    header.suite.hash(&[
        ID_TAG,
        id.expose(),
        header.tx.as_bytes(),
        &[header.label.code()],
    ])
}

/// `SignOnly_K(ID)` bound to `header`'s tx and label (protocol.md section 3).
pub fn id_proof(key: &KeyPair, header: &Header, id: &AccountId) -> Result<Inner, WireError> {
    header.check_signer(key.public())?;
    let sig = key
        .sign(&id_proof_message(header, id))
        .map_err(WireError::Build)?;
    Ok(Inner::IdProof { sig })
}

/// The sender's public key, for registration (6.0).
#[must_use]
pub fn public_key_inner(key: &PublicKey) -> Inner {
    Inner::PublicKey {
        spki_der: key.spki_der().to_vec(),
    }
}

/// A CustomerSecret for the scrip `scrip_id`, to travel beside the signed body that holds
/// its `cs_hash` (protocol.md section 3).
#[must_use]
pub fn secret_inner(scrip_id: ScripId, cs: &CustomerSecret) -> Inner {
    Inner::Secret {
        scrip_id,
        cs: cs.clone(),
    }
}

/// Seals `inners` for the holder of `to` under `header` (protocol.md sections 2 and 3):
/// a fresh session key, wrapped for `to`; the plaintext postcard `Vec<Inner>`, encrypted
/// with the header and `to` as associated data (modern suite).
pub fn seal(header: &Header, to: &PublicKey, inners: &[Inner]) -> Result<Part, WireError> {
    header.check_suite(to.suite())?;
    let plaintext = encode_inners(inners)?;
    let key = SessionKey::generate(header.suite);
    let wrapped_key = to.wrap_key(&key).map_err(WireError::Build)?;
    let ciphertext = header
        .suite
        .seal(&key, &aead_aad(header, &to.uid()), &plaintext)
        .map_err(WireError::Build)?;
    Ok(Part::Sealed {
        to: to.uid(),
        wrapped_key,
        ciphertext,
    })
}
