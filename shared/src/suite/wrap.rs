//! Session keys and `PKEnc_K(k)`, the key wrap of a sealed part (protocol.md section 2).
//!
//! A fresh session key is drawn for every sealed part (section 2: keys and nonces are never
//! reused): AES-192 (24 bytes) in `paper`, AES-256 (32 bytes) in `modern`. It is wrapped
//! for the recipient with RSAES-PKCS1-v1_5 (`paper`) or RSAES-OAEP with SHA-256 and
//! MGF1-SHA-256, empty label (`modern`, section 3).
//!
//! **Paper suite and implicit rejection.** The `rsa` crate decrypts PKCS#1 v1.5 with
//! implicit rejection: a malformed ciphertext yields a pseudo-random message derived from
//! the key and the ciphertext, not an error, so that timing and error reveal nothing (the
//! Bleichenbacher defence). [`KeyPair::unwrap_key`] therefore returns a wrong key, not
//! `Unwrap`, for most bad paper ciphertexts. That is safe here because the unwrapped key
//! is authenticated by what follows: the CBC padding, the decoding of the plaintext and,
//! above all, the inner signatures over the header (section 3); each of those failures is
//! the same `BadFrame` to the sender. `Unwrap` remains for inputs that fail before the
//! RSA operation (wrong length) and for a synthetic message of the wrong length.

use std::fmt;

use sha2::Sha256;

use super::op_count::count;
use crate::secret::SecretBytes;
use crate::suite::{CryptoError, KeyPair, PublicKey, RsaBackend, Suite};

impl Suite {
    /// Length of a session key: 24 bytes (AES-192, paper), 32 (AES-256, modern).
    #[must_use]
    pub const fn session_key_len(self) -> usize {
        match self {
            Suite::Paper => 24,
            Suite::Modern => 32,
        }
    }
}

/// A symmetric session key `k` for one sealed part (protocol.md section 2). Zeroized on
/// drop, compared in constant time, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey(SecretBytes);

impl SessionKey {
    /// A fresh random key of the suite's length (24 bytes paper, 32 modern).
    #[must_use]
    pub fn generate(suite: Suite) -> SessionKey {
        SessionKey(SecretBytes::random(suite.session_key_len()))
    }

    /// A session key from known bytes, which must have the suite's length (else
    /// `SessionKeyLength`). For known-answer and interoperability tests; the protocol
    /// itself only uses [`SessionKey::generate`] and [`KeyPair::unwrap_key`].
    pub fn from_bytes(suite: Suite, bytes: &[u8]) -> Result<SessionKey, CryptoError> {
        if bytes.len() != suite.session_key_len() {
            return Err(CryptoError::SessionKeyLength {
                suite,
                expected: suite.session_key_len(),
                len: bytes.len(),
            });
        }
        Ok(SessionKey(SecretBytes::from_slice(bytes)))
    }

    /// The key bytes, for the cipher in `envelope.rs`.
    pub(super) fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// Length in bytes (not secret).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty (never, for a generated or unwrapped key).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey(<{} bytes redacted>)", self.len())
    }
}

impl PublicKey {
    /// `PKEnc_K(k)`: wraps `key` for the holder of this public key, with PKCS#1 v1.5
    /// (paper) or OAEP SHA-256 (modern). Randomized: two wraps of one key differ.
    pub fn wrap_key(&self, key: &SessionKey) -> Result<Vec<u8>, CryptoError> {
        self.wrap_key_with(self.suite().rsa_backend(), key)
    }

    /// [`PublicKey::wrap_key`] on a chosen backend (docs/adr/0014); `Backend` if it does
    /// not serve the key's suite in this build ([`RsaBackend::serves`]).
    pub fn wrap_key_with(
        &self,
        backend: RsaBackend,
        key: &SessionKey,
    ) -> Result<Vec<u8>, CryptoError> {
        backend.check(self.suite())?;
        count(|n| n.wrap += 1);
        match backend {
            RsaBackend::RustCrypto => {
                let mut rng = rand::rng();
                let rsa = self.rsa();
                match self.suite() {
                    Suite::Paper => rsa.pkcs1v15_encrypt_with_rng(&mut rng, key.expose()),
                    Suite::Modern => rsa.oaep_encrypt_with_rng::<Sha256, _>(&mut rng, key.expose()),
                }
                .map_err(|_| CryptoError::Wrap)
            }
            #[cfg(feature = "aws-lc")]
            RsaBackend::AwsLc => self.aws_lc()?.wrap(key.expose()),
            #[cfg(not(feature = "aws-lc"))]
            RsaBackend::AwsLc => Err(CryptoError::Backend {
                backend,
                suite: self.suite(),
            }),
        }
    }
}

impl KeyPair {
    /// Unwraps a session key wrapped for this key pair. `modern`: OAEP, whose failure is
    /// `Unwrap`. `paper`: PKCS#1 v1.5 with implicit rejection, so a bad ciphertext of the
    /// right length usually yields a wrong key rather than an error (see the module
    /// documentation: the key is authenticated by the inner signature that follows).
    /// A result of the wrong length for the suite is `Unwrap` in both suites.
    pub fn unwrap_key(&self, wrapped: &[u8]) -> Result<SessionKey, CryptoError> {
        self.unwrap_key_with(self.suite().rsa_backend(), wrapped)
    }

    /// [`KeyPair::unwrap_key`] on a chosen backend (docs/adr/0014); `Backend` if it does
    /// not serve the key's suite in this build ([`RsaBackend::serves`]).
    pub fn unwrap_key_with(
        &self,
        backend: RsaBackend,
        wrapped: &[u8],
    ) -> Result<SessionKey, CryptoError> {
        let suite = self.suite();
        backend.check(suite)?;
        count(|n| n.unwrap += 1);
        let key = match backend {
            RsaBackend::RustCrypto => {
                let mut rng = rand::rng();
                let rsa = self.rsa();
                match suite {
                    Suite::Paper => rsa.pkcs1v15_decrypt_with_rng(&mut rng, wrapped),
                    Suite::Modern => rsa.oaep_decrypt_with_rng::<Sha256, _>(&mut rng, wrapped),
                }
                .map(SecretBytes::new)
                .map_err(|_| CryptoError::Unwrap)?
            }
            #[cfg(feature = "aws-lc")]
            RsaBackend::AwsLc => self.aws_lc()?.unwrap(wrapped)?,
            #[cfg(not(feature = "aws-lc"))]
            RsaBackend::AwsLc => return Err(CryptoError::Backend { backend, suite }),
        };
        if key.len() != suite.session_key_len() {
            return Err(CryptoError::Unwrap);
        }
        Ok(SessionKey(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn session_keys_have_the_suite_length_and_are_fresh() {
        assert_eq!(SessionKey::generate(Suite::Paper).len(), 24);
        assert_eq!(SessionKey::generate(Suite::Modern).len(), 32);
        for suite in Suite::ALL {
            assert_ne!(SessionKey::generate(suite), SessionKey::generate(suite));
        }
    }

    #[test]
    fn wrap_unwrap_round_trip() {
        for suite in Suite::ALL {
            let k = fixtures::keypair(suite, 0);
            let key = SessionKey::generate(suite);
            let wrapped = k.public().wrap_key(&key).unwrap();
            assert_eq!(wrapped.len(), k.public().bits() / 8);
            assert_eq!(k.unwrap_key(&wrapped).unwrap(), key);
            // Randomized padding: two wraps of one key differ, both unwrap.
            let again = k.public().wrap_key(&key).unwrap();
            assert_ne!(wrapped, again);
            assert_eq!(k.unwrap_key(&again).unwrap(), key);
        }
    }

    #[test]
    fn unwrap_with_the_wrong_key_never_yields_the_original() {
        for suite in Suite::ALL {
            let key = SessionKey::generate(suite);
            for i in 0..8 {
                let wrapped = fixtures::keypair(suite, 0).public().wrap_key(&key).unwrap();
                let other = fixtures::keypair(suite, 1 + i % 5);
                match (suite, other.unwrap_key(&wrapped)) {
                    // OAEP detects the wrong key.
                    (Suite::Modern, result) => assert_eq!(result, Err(CryptoError::Unwrap)),
                    // PKCS#1 v1.5 with implicit rejection: an error, or a key that is not
                    // the original (and that the inner signature will then reject).
                    (Suite::Paper, Ok(got)) => assert_ne!(got, key),
                    (Suite::Paper, Err(e)) => assert_eq!(e, CryptoError::Unwrap),
                }
            }
        }
    }

    #[test]
    fn tampered_wrapped_keys_never_yield_the_original() {
        for suite in Suite::ALL {
            let k = fixtures::keypair(suite, 0);
            let key = SessionKey::generate(suite);
            let wrapped = k.public().wrap_key(&key).unwrap();
            for bit in [0, 7, 100, wrapped.len() * 8 - 1] {
                let mut bad = wrapped.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                match k.unwrap_key(&bad) {
                    Ok(got) => {
                        assert_eq!(suite, Suite::Paper, "OAEP accepted a tampered key");
                        assert_ne!(got, key);
                    }
                    Err(e) => assert_eq!(e, CryptoError::Unwrap),
                }
            }
        }
    }

    #[test]
    fn wrong_length_input_is_unwrap() {
        for suite in Suite::ALL {
            let k = fixtures::keypair(suite, 0);
            let wrapped = k.public().wrap_key(&SessionKey::generate(suite)).unwrap();
            for bad in [&wrapped[1..], &[][..], &[0u8; 3][..]] {
                assert_eq!(k.unwrap_key(bad), Err(CryptoError::Unwrap), "{suite}");
            }
        }
    }

    /// A wrapped value of the wrong length for the suite is refused even when the RSA
    /// layer accepts it: a paper unwrap must give exactly 24 bytes.
    #[test]
    fn unwrapped_key_of_the_wrong_length_is_unwrap() {
        let k = fixtures::keypair(Suite::Paper, 0);
        let wrong = SessionKey::generate(Suite::Modern);
        let wrapped = k.public().wrap_key(&wrong).unwrap();
        assert_eq!(k.unwrap_key(&wrapped), Err(CryptoError::Unwrap));
        let k = fixtures::keypair(Suite::Modern, 0);
        let wrong = SessionKey::generate(Suite::Paper);
        let wrapped = k.public().wrap_key(&wrong).unwrap();
        assert_eq!(k.unwrap_key(&wrapped), Err(CryptoError::Unwrap));
    }

    #[test]
    fn from_bytes_checks_the_length() {
        let k = SessionKey::from_bytes(Suite::Paper, &[1; 24]).unwrap();
        assert_eq!(k.expose(), &[1; 24]);
        assert_eq!(
            SessionKey::from_bytes(Suite::Modern, &[1; 24]),
            Err(CryptoError::SessionKeyLength {
                suite: Suite::Modern,
                expected: 32,
                len: 24
            })
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = SessionKey::generate(Suite::Modern);
        let shown = format!("{key:?}");
        assert_eq!(shown, "SessionKey(<32 bytes redacted>)");
        assert!(!shown.contains(&hex::encode(&key.expose()[..4])));
    }
}
