//! An account ID sealed to the broker's own key, the annex of its `AccountOpened` in the
//! replicated log (docs/adr/0017; `shared::events::replica`).
//!
//! The log holds only each ID's commitment (protocol.md section 1), so a standby broker
//! that rebuilds its file from the replicated log could not fill its secrets table from
//! the events. The ID therefore travels beside its event, sealed as a part is sealed
//! (section 2): a fresh session key wrapped to the broker's public key, and the ID under
//! it, bound to the account's PAN as associated data. Every broker of one deployment holds
//! the broker's key pair (peers pinned one UID), so each can open it, and nobody else who
//! reads the stream can. The opened ID must match the event's commitment, which also
//! catches a tampered annex in the paper suite (CBC has no integrity of its own).

use serde::{Deserialize, Serialize};
use shared::ids::{AccountId, Pan};
use shared::{CryptoError, KeyPair, PublicKey, SecretBytes, SessionKey, Suite};

/// The associated data of a sealed ID: a domain of its own, then the PAN.
fn aad(pan: &Pan) -> Vec<u8> {
    [
        b"peerscrip/v1/sealed-id\0".as_slice(),
        pan.as_str().as_bytes(),
    ]
    .concat()
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    wrapped_key: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Why a sealed ID did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealedIdError {
    /// Sealing or opening failed (a wrong key, a damaged annex).
    #[error("the sealed account ID: {0}")]
    Crypto(#[from] CryptoError),
    /// The annex is not a sealed ID.
    #[error("the sealed account ID does not decode")]
    Malformed,
    /// It opened to an ID whose commitment is not the event's.
    #[error("the sealed account ID of {pan:?} does not match its commitment")]
    Commitment {
        /// The account.
        pan: Pan,
    },
}

/// Seals `id`, the ID of `pan`, to `broker` (see the module doc).
///
/// # Errors
/// [`SealedIdError::Crypto`] if wrapping or encryption fails.
pub fn seal(broker: &PublicKey, pan: &Pan, id: &AccountId) -> Result<Vec<u8>, SealedIdError> {
    let suite = broker.suite();
    let key = SessionKey::generate(suite);
    let sealed = Sealed {
        wrapped_key: broker.wrap_key(&key)?,
        ciphertext: suite.seal(&key, &aad(pan), id.expose())?,
    };
    postcard::to_allocvec(&sealed).map_err(|_| SealedIdError::Malformed)
}

/// Opens what [`seal`] made for `pan` with the broker's `keys`, and checks the ID against
/// `commitment`, the one its `AccountOpened` recorded.
///
/// # Errors
/// [`SealedIdError`]: not a sealed ID, not for this key, or not this account's ID.
pub fn open(
    keys: &KeyPair,
    suite: Suite,
    pan: &Pan,
    commitment: &[u8],
    annex: &[u8],
) -> Result<AccountId, SealedIdError> {
    let sealed: Sealed = postcard::from_bytes(annex).map_err(|_| SealedIdError::Malformed)?;
    let key = keys.unwrap_key(&sealed.wrapped_key)?;
    let plain = suite.open(&key, &aad(pan), &sealed.ciphertext)?;
    let id = AccountId::from_secret(SecretBytes::new(plain.to_vec()));
    if id.commitment(suite) == commitment {
        Ok(id)
    } else {
        Err(SealedIdError::Commitment { pan: pan.clone() })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use shared::ids::PanSecret;

    use super::*;

    #[test]
    fn a_sealed_id_opens_only_with_the_brokers_key_and_only_as_its_accounts_id() {
        for suite in [Suite::Paper, Suite::Modern] {
            let keys = shared::fixtures::keypair(suite, 0);
            let other = shared::fixtures::keypair(suite, 1);
            let pan = Pan::new("4000-0001");
            let id = AccountId::derive(suite, &PanSecret::new("s3cret"), &pan);
            let commitment = id.commitment(suite);
            let annex = seal(keys.public(), &pan, &id).unwrap();

            let opened = open(keys, suite, &pan, &commitment, &annex).unwrap();
            assert_eq!(opened.expose(), id.expose());

            // Another account's commitment, or another account's PAN as associated data.
            let elsewhere = Pan::new("4000-0002");
            assert_eq!(
                open(keys, suite, &pan, b"not this one", &annex).unwrap_err(),
                SealedIdError::Commitment { pan: pan.clone() }
            );
            // Modern binds the PAN as associated data; paper (CBC, no aad) relies on the
            // commitment, which differs from account to account (the line above).
            if suite == Suite::Modern {
                assert!(open(keys, suite, &elsewhere, &commitment, &annex).is_err());
            }
            // Another key, or bytes that are not a sealed ID.
            assert!(open(other, suite, &pan, &commitment, &annex).is_err());
            assert_eq!(
                open(keys, suite, &pan, &commitment, b"\xff").unwrap_err(),
                SealedIdError::Malformed
            );
            // The ID is not in the annex in the clear.
            assert!(!annex.windows(id.expose().len()).any(|w| w == id.expose()));
        }
    }
}
