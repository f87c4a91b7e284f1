//! Secrets at rest, sealed under the wallet's own public key: the paper stores
//! `PKEnc_KC(B0)`; here every CustomerSecret (protocol.md section 4: "stored encrypted") and
//! the account `ID` (section 1) are kept as a [`SealedSecret`].
//!
//! The envelope is the one of a sealed part (protocol.md sections 2 and 3), reused from
//! `shared::suite`: a fresh [`SessionKey`] per secret, wrapped with
//! [`PublicKey::wrap_key`], the secret encrypted with [`Suite::seal`] under associated data
//! that names what the secret is for (`"peerscrip/wallet/v1" ‖ 0x00 ‖ context`), so a sealed
//! CS cannot be moved to another scrip in the modern suite. Only the holder of the wallet's
//! [`KeyPair`] opens it. The paper suite's CBC has no associated data: there the caller
//! checks what it opened against a hash kept beside it (`cs_hash`, the ID commitment).

use serde::{Deserialize, Serialize};
use shared::suite::CryptoError;
use shared::{KeyPair, PublicKey, SessionKey};
use zeroize::Zeroizing;

/// Domain-separation tag of the associated data of a wallet secret.
pub const WALLET_AAD_TAG: &[u8] = b"peerscrip/wallet/v1";

/// A secret sealed for the wallet's own key pair: `PKEnc_KC(k), Enc_k(secret)`. Holds no
/// secret in the clear, so it may sit in an event or a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// The fresh session key, wrapped for the wallet's public key.
    pub wrapped_key: Vec<u8>,
    /// `IV ‖ CBC` (paper) or `nonce ‖ GCM ‖ tag` (modern) of the secret.
    pub ciphertext: Vec<u8>,
}

fn aad(context: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(WALLET_AAD_TAG.len() + 1 + context.len());
    out.extend_from_slice(WALLET_AAD_TAG);
    out.push(0);
    out.extend_from_slice(context);
    out
}

impl SealedSecret {
    /// Seals `secret` for the holder of `owner` (the wallet's own public key), bound to
    /// `context` (e.g. `"cs" ‖ scrip_id`).
    pub fn seal(owner: &PublicKey, context: &[u8], secret: &[u8]) -> Result<Self, CryptoError> {
        let suite = owner.suite();
        let key = SessionKey::generate(suite);
        let wrapped_key = owner.wrap_key(&key)?;
        let ciphertext = suite.seal(&key, &aad(context), secret)?;
        Ok(SealedSecret {
            wrapped_key,
            ciphertext,
        })
    }

    /// Opens the secret with the wallet's key pair. The plaintext is wiped on drop.
    pub fn open(&self, keys: &KeyPair, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let key = keys.unwrap_key(&self.wrapped_key)?;
        keys.suite().open(&key, &aad(context), &self.ciphertext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::Suite;
    use shared::fixtures;

    #[test]
    fn seals_and_opens_in_both_suites() {
        for suite in Suite::ALL {
            let keys = fixtures::keypair(suite, 0);
            let sealed = SealedSecret::seal(keys.public(), b"cs-1", b"the secret").unwrap();
            assert!(
                !sealed
                    .ciphertext
                    .windows(b"the secret".len())
                    .any(|w| w == b"the secret")
            );
            assert_eq!(
                sealed.open(keys, b"cs-1").unwrap().as_slice(),
                b"the secret"
            );
            // Another key pair cannot open it.
            let other = fixtures::keypair(suite, 3);
            let opened = sealed.open(other, b"cs-1");
            assert!(opened.map_or(true, |p| p.as_slice() != b"the secret"));
        }
    }

    #[test]
    fn modern_binds_the_context() {
        let keys = fixtures::keypair(Suite::Modern, 0);
        let sealed = SealedSecret::seal(keys.public(), b"cs-1", b"the secret").unwrap();
        assert_eq!(sealed.open(keys, b"cs-2"), Err(CryptoError::Open));
    }
}
