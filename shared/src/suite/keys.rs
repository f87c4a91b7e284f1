//! RSA key pairs and public keys of a suite (protocol.md sections 1 and 2): generation,
//! PKCS#8 / SPKI PEM and DER, size rules, and the UID.
//!
//! Why a key carries its suite: the suite decides the padding of every operation (PKCS#1
//! v1.5 with SHA-1 or PSS/OAEP with SHA-256) and the sizes a key may have, so a key loaded
//! for one suite cannot be used by mistake with the other's rules. The size rule is checked
//! at generation *and* at load: `paper` is exactly 1024 bits (the paper's RSA-1024),
//! `modern` 2048 or 3072 (section 2, "RSA-2048 (configurable 3072)").
//!
//! Signing and verifying live in `sign.rs`, key wrapping in `wrap.rs`.
//!
//! **Backends.** Parsing, the key file formats and generation are always the `rsa` and
//! `pkcs8` crates'. With the `aws-lc` feature, a modern key is also parsed once by
//! aws-lc-rs, from the same DER, for the operations of `sign.rs` and `wrap.rs`
//! (docs/adr/0014); a key that either backend refuses does not load.

use std::fmt;
use std::hash::{Hash, Hasher};
#[cfg(feature = "aws-lc")]
use std::sync::Arc;

use pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

use crate::ids::Uid;
#[cfg(feature = "aws-lc")]
use crate::suite::RsaBackend;
#[cfg(feature = "aws-lc")]
use crate::suite::awslc::{AwsLcPrivate, AwsLcPublic};
use crate::suite::{CryptoError, Suite};

/// PEM label of an unencrypted PKCS#8 private key.
const PEM_PRIVATE: &str = "PRIVATE KEY";
/// PEM label of an encrypted PKCS#8 private key (PBES2).
const PEM_ENCRYPTED: &str = "ENCRYPTED PRIVATE KEY";

impl Suite {
    /// The modulus size a new key of this suite gets by default: 1024 (paper), 2048
    /// (modern) bits (protocol.md section 2).
    #[must_use]
    pub const fn default_key_bits(self) -> usize {
        match self {
            Suite::Paper => 1024,
            Suite::Modern => 2048,
        }
    }

    /// Whether a modulus of `bits` bits is allowed in this suite: exactly 1024 for
    /// `paper`; 2048 or 3072 for `modern` (protocol.md section 2).
    #[must_use]
    pub const fn allows_key_bits(self, bits: usize) -> bool {
        match self {
            Suite::Paper => bits == 1024,
            Suite::Modern => bits == 2048 || bits == 3072,
        }
    }

    fn check_key_bits(self, bits: usize) -> Result<(), CryptoError> {
        if self.allows_key_bits(bits) {
            Ok(())
        } else {
            Err(CryptoError::KeySize { suite: self, bits })
        }
    }
}

/// The size of an RSA modulus in bits (its bit width, not its storage precision).
fn modulus_bits(key: &rsa::PublicKey) -> usize {
    key.n().bit_width() as usize
}

/// A public key of a suite, with its SPKI DER and UID computed once.
///
/// Equality compares suite and key (its canonical SPKI DER). `Debug` shows the suite and
/// the UID, which are public and short; the modulus would only clutter logs.
#[derive(Clone)]
pub struct PublicKey {
    suite: Suite,
    key: rsa::PublicKey,
    spki_der: Vec<u8>,
    uid: Uid,
    /// The same key parsed by aws-lc-rs: `Some` exactly when the suite's backend is
    /// aws-lc ([`Suite::rsa_backend`]). Shared, since keys are cloned into directories.
    #[cfg(feature = "aws-lc")]
    aws_lc: Option<Arc<AwsLcPublic>>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &PublicKey) -> bool {
        // The SPKI DER is canonical (checked at load), so equal DER is an equal key.
        self.suite == other.suite && self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Hash::hash(&self.suite, state);
        self.spki_der.hash(state);
    }
}

impl PublicKey {
    /// Wraps an `rsa` public key after checking its size against the suite.
    fn from_rsa(suite: Suite, key: rsa::PublicKey) -> Result<PublicKey, CryptoError> {
        suite.check_key_bits(modulus_bits(&key))?;
        let spki_der = key
            .to_public_key_der()
            .map_err(|_| CryptoError::Encode)?
            .as_bytes()
            .to_vec();
        let uid = Uid::from_spki_der(&spki_der);
        #[cfg(feature = "aws-lc")]
        let aws_lc = match suite.rsa_backend() {
            RsaBackend::AwsLc => Some(Arc::new(AwsLcPublic::from_spki_der(&spki_der)?)),
            RsaBackend::RustCrypto => None,
        };
        Ok(PublicKey {
            suite,
            key,
            spki_der,
            uid,
            #[cfg(feature = "aws-lc")]
            aws_lc,
        })
    }

    /// Reads a SubjectPublicKeyInfo DER (what `Inner::PublicKey` carries in registration,
    /// protocol.md section 6.0) and checks that its size fits `suite`.
    ///
    /// The DER must be the canonical encoding of the key: the UID is a hash of these exact
    /// bytes (section 1), so a key with two encodings would have two UIDs. A
    /// non-canonical encoding is refused as `Pem`.
    pub fn from_spki_der(suite: Suite, der: &[u8]) -> Result<PublicKey, CryptoError> {
        let key = rsa::PublicKey::from_public_key_der(der).map_err(pem_error)?;
        let public = PublicKey::from_rsa(suite, key)?;
        if public.spki_der != der {
            return Err(CryptoError::Pem(
                "public key DER is not in canonical form".to_owned(),
            ));
        }
        Ok(public)
    }

    /// Reads a `-----BEGIN PUBLIC KEY-----` PEM (SPKI), e.g. the broker's pinned key
    /// (protocol.md section 1), and checks that its size fits `suite`.
    pub fn from_pem(suite: Suite, pem: &str) -> Result<PublicKey, CryptoError> {
        let key = rsa::PublicKey::from_public_key_pem(pem).map_err(pem_error)?;
        PublicKey::from_rsa(suite, key)
    }

    /// The key as a `-----BEGIN PUBLIC KEY-----` PEM with LF line endings.
    pub fn to_pem(&self) -> Result<String, CryptoError> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| CryptoError::Encode)
    }

    /// The SubjectPublicKeyInfo DER: the bytes the UID hashes and `Inner::PublicKey`
    /// carries (protocol.md sections 1 and 3).
    #[must_use]
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// `UID = first 16 bytes of SHA-256(SPKI DER)` (protocol.md section 1).
    #[must_use]
    pub fn uid(&self) -> Uid {
        self.uid
    }

    /// The suite this key is used with.
    #[must_use]
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The modulus size in bits.
    #[must_use]
    pub fn bits(&self) -> usize {
        modulus_bits(&self.key)
    }

    /// The underlying `rsa` key, for `sign.rs` and `wrap.rs`.
    pub(super) fn rsa(&self) -> &rsa::PublicKey {
        &self.key
    }

    /// The key as aws-lc-rs holds it, for `sign.rs` and `wrap.rs`; `Backend` for a key
    /// whose suite aws-lc does not serve.
    #[cfg(feature = "aws-lc")]
    pub(super) fn aws_lc(&self) -> Result<&AwsLcPublic, CryptoError> {
        self.aws_lc.as_deref().ok_or(CryptoError::Backend {
            backend: RsaBackend::AwsLc,
            suite: self.suite,
        })
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("suite", &self.suite)
            .field("uid", &self.uid)
            .finish()
    }
}

/// A private key, its public key and its suite: the identity of one party.
///
/// `Debug` shows only the suite and the UID. The private key zeroizes itself on drop (the
/// `rsa` crate does it) and is never serialized except through
/// [`KeyPair::to_pkcs8_pem`], which the caller writes to a key file.
#[derive(Clone)]
pub struct KeyPair {
    private: rsa::PrivateKey,
    public: PublicKey,
    /// The same private key parsed by aws-lc-rs: `Some` exactly when the suite's backend
    /// is aws-lc ([`Suite::rsa_backend`]). aws-lc frees it zeroized.
    #[cfg(feature = "aws-lc")]
    aws_lc: Option<Arc<AwsLcPrivate>>,
}

impl KeyPair {
    /// Generates a key of the suite's default size (paper 1024, modern 2048 bits).
    /// Slow (tens of milliseconds to seconds): never on an actor's thread, never per test.
    pub fn generate(suite: Suite) -> Result<KeyPair, CryptoError> {
        KeyPair::generate_with_bits(suite, suite.default_key_bits())
    }

    /// Generates a key of `bits` bits, which the suite must allow (modern: 2048 or 3072;
    /// paper: 1024), else `KeySize`.
    pub fn generate_with_bits(suite: Suite, bits: usize) -> Result<KeyPair, CryptoError> {
        suite.check_key_bits(bits)?;
        let private =
            rsa::PrivateKey::new(&mut rand::rng(), bits).map_err(|_| CryptoError::KeyGen)?;
        KeyPair::from_rsa(suite, private, None)
    }

    /// A key pair from an `rsa` key and, when it was read from a key file, the PKCS#8 DER
    /// it was read from: aws-lc parses those very bytes; a generated key is encoded to
    /// PKCS#8 first.
    fn from_rsa(
        suite: Suite,
        private: rsa::PrivateKey,
        pkcs8_der: Option<&[u8]>,
    ) -> Result<KeyPair, CryptoError> {
        let public = PublicKey::from_rsa(suite, private.to_public_key())?;
        #[cfg(feature = "aws-lc")]
        let aws_lc = match suite.rsa_backend() {
            RsaBackend::AwsLc => {
                let encoded;
                let der = match pkcs8_der {
                    Some(der) => der,
                    None => {
                        encoded = private.to_pkcs8_der().map_err(|_| CryptoError::Encode)?;
                        encoded.as_bytes()
                    }
                };
                Some(Arc::new(AwsLcPrivate::from_pkcs8_der(
                    der,
                    public.spki_der(),
                )?))
            }
            RsaBackend::RustCrypto => None,
        };
        #[cfg(not(feature = "aws-lc"))]
        let _ = pkcs8_der;
        Ok(KeyPair {
            private,
            public,
            #[cfg(feature = "aws-lc")]
            aws_lc,
        })
    }

    /// Reads a PKCS#8 private key PEM: `-----BEGIN PRIVATE KEY-----` with
    /// `passphrase = None`, or `-----BEGIN ENCRYPTED PRIVATE KEY-----` (PBES2, as written
    /// by [`KeyPair::to_pkcs8_pem`] or `openssl pkcs8 -topk8`) with its passphrase. The
    /// size is checked against `suite` (`KeySize`).
    ///
    /// A mismatch between the file and the passphrase is an error either way
    /// (`PassphraseRequired`, `NotEncrypted`): an operator who configured a passphrase
    /// expects the key on disk to be protected.
    pub fn from_pkcs8_pem(
        suite: Suite,
        pem: &str,
        passphrase: Option<&[u8]>,
    ) -> Result<KeyPair, CryptoError> {
        let (label, doc) = pkcs8::SecretDocument::from_pem(pem).map_err(pem_error)?;
        let (private, der) = match (label, passphrase) {
            (PEM_PRIVATE, None) => {
                let private = rsa::PrivateKey::from_pkcs8_der(doc.as_bytes()).map_err(pem_error)?;
                (private, doc)
            }
            (PEM_PRIVATE, Some(_)) => return Err(CryptoError::NotEncrypted),
            (PEM_ENCRYPTED, None) => return Err(CryptoError::PassphraseRequired),
            (PEM_ENCRYPTED, Some(passphrase)) => {
                let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(doc.as_bytes())
                    .map_err(pem_error)?;
                // A wrong passphrase usually fails the CBC padding; when the padding
                // happens to pass, the garbage fails to parse as a key. Both are the
                // same mistake to the operator.
                let plain = info
                    .decrypt(passphrase)
                    .map_err(|_| CryptoError::WrongPassphrase)?;
                let private = rsa::PrivateKey::from_pkcs8_der(plain.as_bytes())
                    .map_err(|_| CryptoError::WrongPassphrase)?;
                (private, plain)
            }
            (other, _) => {
                return Err(CryptoError::Pem(format!(
                    "PEM label {other:?} is not a PKCS#8 private key"
                )));
            }
        };
        KeyPair::from_rsa(suite, private, Some(der.as_bytes()))
    }

    /// Writes the private key as PKCS#8 PEM with LF line endings: unencrypted with
    /// `None`, else encrypted with PBES2 (scrypt, AES-256-CBC) under `passphrase`, which
    /// OpenSSL 3 reads (`openssl pkey -passin`).
    pub fn to_pkcs8_pem(
        &self,
        passphrase: Option<&[u8]>,
    ) -> Result<Zeroizing<String>, CryptoError> {
        match passphrase {
            None => self.private.to_pkcs8_pem(LineEnding::LF),
            Some(passphrase) => self
                .private
                .to_pkcs8_encrypted_pem(passphrase, LineEnding::LF),
        }
        .map_err(|_| CryptoError::Encode)
    }

    /// The public half.
    #[must_use]
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The UID of the public half (protocol.md section 1).
    #[must_use]
    pub fn uid(&self) -> Uid {
        self.public.uid()
    }

    /// The suite this key is used with.
    #[must_use]
    pub fn suite(&self) -> Suite {
        self.public.suite()
    }

    /// The underlying `rsa` private key, for `sign.rs` and `wrap.rs`.
    pub(super) fn rsa(&self) -> &rsa::PrivateKey {
        &self.private
    }

    /// The key as aws-lc-rs holds it, for `sign.rs` and `wrap.rs`; `Backend` for a key
    /// whose suite aws-lc does not serve.
    #[cfg(feature = "aws-lc")]
    pub(super) fn aws_lc(&self) -> Result<&AwsLcPrivate, CryptoError> {
        self.aws_lc.as_deref().ok_or(CryptoError::Backend {
            backend: RsaBackend::AwsLc,
            suite: self.suite(),
        })
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("suite", &self.suite())
            .field("uid", &self.uid())
            .finish_non_exhaustive()
    }
}

/// A parse failure as `Pem`, with the parser's text (positions and tags, no key bytes).
fn pem_error(e: impl fmt::Display) -> CryptoError {
    CryptoError::Pem(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    const MODERN_3072: &str = include_str!("../../testdata/keys/modern3072-0.pem");
    const ODD_1536: &str = include_str!("../../testdata/keys/odd-1536.pem");

    #[test]
    fn pem_round_trip_keeps_the_key() {
        for suite in Suite::ALL {
            let k = fixtures::keypair(suite, 0);
            let pem = k.to_pkcs8_pem(None).unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let back = KeyPair::from_pkcs8_pem(suite, &pem, None).unwrap();
            assert_eq!(back.public(), k.public());
            assert_eq!(back.uid(), k.uid());
            // The reloaded private key signs what the original public key accepts.
            let sig = back.sign(b"round trip").unwrap();
            assert_eq!(k.public().verify(b"round trip", &sig), Ok(()));
        }
    }

    #[test]
    fn encrypted_pem_round_trip_and_passphrase_errors() {
        let suite = Suite::Paper;
        let k = fixtures::keypair(suite, 1);
        let pem = k.to_pkcs8_pem(Some(b"open sesame")).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(!pem.contains(fixtures::keypair_pem(suite, 1).lines().nth(1).unwrap()));
        let back = KeyPair::from_pkcs8_pem(suite, &pem, Some(b"open sesame")).unwrap();
        assert_eq!(back.public(), k.public());
        assert_eq!(
            KeyPair::from_pkcs8_pem(suite, &pem, Some(b"open sesamE")).unwrap_err(),
            CryptoError::WrongPassphrase
        );
        assert_eq!(
            KeyPair::from_pkcs8_pem(suite, &pem, None).unwrap_err(),
            CryptoError::PassphraseRequired
        );
        let plain = k.to_pkcs8_pem(None).unwrap();
        assert_eq!(
            KeyPair::from_pkcs8_pem(suite, &plain, Some(b"open sesame")).unwrap_err(),
            CryptoError::NotEncrypted
        );
        // The size rule applies to encrypted keys too.
        assert_eq!(
            KeyPair::from_pkcs8_pem(Suite::Modern, &pem, Some(b"open sesame")).unwrap_err(),
            CryptoError::KeySize {
                suite: Suite::Modern,
                bits: 1024
            }
        );
    }

    #[test]
    fn wrong_size_for_the_suite_is_key_size_at_load() {
        let modern = fixtures::keypair_pem(Suite::Modern, 0);
        let paper = fixtures::keypair_pem(Suite::Paper, 0);
        let cases = [
            (Suite::Paper, modern, 2048),
            (Suite::Modern, paper, 1024),
            (Suite::Paper, MODERN_3072, 3072),
            (Suite::Modern, ODD_1536, 1536),
            (Suite::Paper, ODD_1536, 1536),
        ];
        for (suite, pem, bits) in cases {
            assert_eq!(
                KeyPair::from_pkcs8_pem(suite, pem, None).unwrap_err(),
                CryptoError::KeySize { suite, bits }
            );
        }
        // The same rule for public keys, whether from DER or PEM.
        let spki = fixtures::keypair(Suite::Modern, 0).public().spki_der();
        assert_eq!(
            PublicKey::from_spki_der(Suite::Paper, spki).unwrap_err(),
            CryptoError::KeySize {
                suite: Suite::Paper,
                bits: 2048
            }
        );
        let pem = fixtures::keypair(Suite::Paper, 0)
            .public()
            .to_pem()
            .unwrap();
        assert_eq!(
            PublicKey::from_pem(Suite::Modern, &pem).unwrap_err(),
            CryptoError::KeySize {
                suite: Suite::Modern,
                bits: 1024
            }
        );
    }

    #[test]
    fn modern_accepts_3072_bits() {
        let k = KeyPair::from_pkcs8_pem(Suite::Modern, MODERN_3072, None).unwrap();
        assert_eq!(k.public().bits(), 3072);
        let sig = k.sign(b"x").unwrap();
        assert_eq!(sig.len(), 384);
        assert_eq!(k.public().verify(b"x", &sig), Ok(()));
    }

    #[test]
    fn generate_refuses_sizes_the_suite_does_not_allow() {
        for (suite, bits) in [
            (Suite::Paper, 2048),
            (Suite::Paper, 512),
            (Suite::Modern, 1024),
            (Suite::Modern, 4096),
        ] {
            assert_eq!(
                KeyPair::generate_with_bits(suite, bits).unwrap_err(),
                CryptoError::KeySize { suite, bits }
            );
        }
    }

    /// One real generation, of the cheap paper size (the modern one is the same code path
    /// with another number; fixtures stand in for it everywhere else).
    #[test]
    fn generate_paper_key() {
        let k = KeyPair::generate(Suite::Paper).unwrap();
        assert_eq!(k.suite(), Suite::Paper);
        assert_eq!(k.public().bits(), 1024);
        assert_eq!(k.uid(), Uid::from_spki_der(k.public().spki_der()));
        let sig = k.sign(b"fresh").unwrap();
        assert_eq!(k.public().verify(b"fresh", &sig), Ok(()));
    }

    #[test]
    fn public_key_encodings_round_trip() {
        for suite in Suite::ALL {
            let public = fixtures::keypair(suite, 2).public();
            let from_der = PublicKey::from_spki_der(suite, public.spki_der()).unwrap();
            assert_eq!(&from_der, public);
            let pem = public.to_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
            let from_pem = PublicKey::from_pem(suite, &pem).unwrap();
            assert_eq!(&from_pem, public);
            assert_eq!(from_pem.uid(), Uid::from_spki_der(public.spki_der()));
            assert_eq!(from_pem.suite(), suite);
        }
    }

    #[test]
    fn malformed_keys_are_pem_errors() {
        let spki = fixtures::keypair(Suite::Modern, 0).public().spki_der();
        let mut trailing = spki.to_vec();
        trailing.push(0);
        let truncated = &spki[..spki.len() - 1];
        for bad in [&trailing[..], truncated, b"", b"not der"] {
            assert!(
                matches!(
                    PublicKey::from_spki_der(Suite::Modern, bad),
                    Err(CryptoError::Pem(_))
                ),
                "{bad:?}"
            );
        }
        for bad in [
            "",
            "not a pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert!(
                matches!(
                    KeyPair::from_pkcs8_pem(Suite::Modern, bad, None),
                    Err(CryptoError::Pem(_))
                ),
                "{bad:?}"
            );
            assert!(
                matches!(
                    PublicKey::from_pem(Suite::Modern, bad),
                    Err(CryptoError::Pem(_))
                ),
                "{bad:?}"
            );
        }
        // A public key PEM is not a private key.
        let public_pem = fixtures::keypair(Suite::Modern, 0)
            .public()
            .to_pem()
            .unwrap();
        assert_eq!(
            KeyPair::from_pkcs8_pem(Suite::Modern, &public_pem, None).unwrap_err(),
            CryptoError::Pem("PEM label \"PUBLIC KEY\" is not a PKCS#8 private key".into())
        );
    }

    #[test]
    fn debug_shows_suite_and_uid_only() {
        let k = fixtures::keypair(Suite::Modern, 0);
        let uid = k.uid();
        assert_eq!(
            format!("{k:?}"),
            format!("KeyPair {{ suite: Modern, uid: Uid({uid}), .. }}")
        );
        assert_eq!(
            format!("{:?}", k.public()),
            format!("PublicKey {{ suite: Modern, uid: Uid({uid}) }}")
        );
        // Not a byte of the private key's PEM body appears in the debug output.
        let pem = k.to_pkcs8_pem(None).unwrap();
        let shown = format!("{k:#?}");
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!shown.contains(&line[..16]));
        }
    }
}
