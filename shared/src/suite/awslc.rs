//! The modern suite's RSA operations on aws-lc-rs (docs/adr/0014): RSASSA-PSS with
//! SHA-256, MGF1-SHA-256 and a 32-byte salt; RSAES-OAEP with SHA-256, MGF1-SHA-256 and the
//! empty label (protocol.md section 3), the same algorithms as the `rsa` crate's path, so
//! the two backends read each other's signatures and wrapped keys.
//!
//! Keys are parsed once, when a [`crate::suite::KeyPair`] or [`crate::suite::PublicKey`]
//! is made, from the same DER the `rsa` crate read (the PKCS#8 of the key file, the SPKI
//! the UID hashes), and checked to be the same key: both backends always hold one key.
//! The key file formats, passphrase decryption and key generation stay with `rsa` and
//! `pkcs8` (see `keys.rs`).

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256, RsaKeyPair};
use zeroize::Zeroizing;

use crate::secret::SecretBytes;
use crate::suite::CryptoError;

/// A modern public key as aws-lc-rs holds it: parsed for PSS verification and for OAEP.
pub(super) struct AwsLcPublic {
    verify: ParsedPublicKey,
    encrypt: OaepPublicEncryptingKey,
}

impl AwsLcPublic {
    /// Parses a SubjectPublicKeyInfo DER that the `rsa` crate already accepted (and found
    /// canonical and of a modern size). A key aws-lc refuses is refused as `Pem`, so that
    /// a key is usable by both backends or by none.
    pub(super) fn from_spki_der(der: &[u8]) -> Result<AwsLcPublic, CryptoError> {
        let verify = ParsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, der).map_err(rejected)?;
        let encrypt = PublicEncryptingKey::from_der(der)
            .map_err(rejected)
            .and_then(|k| OaepPublicEncryptingKey::new(k).map_err(|_| unusable()))?;
        Ok(AwsLcPublic { verify, encrypt })
    }

    /// PSS-SHA-256 verification; any failure is `BadSignature` (protocol.md section 3).
    pub(super) fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        self.verify
            .verify_sig(msg, sig)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// OAEP-SHA-256 with the empty label (`None` and an empty label are the same label).
    pub(super) fn wrap(&self, key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = vec![0; self.encrypt.ciphertext_size()];
        let len = self
            .encrypt
            .encrypt(&OAEP_SHA256_MGF1SHA256, key, &mut out, None)
            .map_err(|_| CryptoError::Wrap)?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

/// A modern private key as aws-lc-rs holds it: for PSS signing and for OAEP decryption.
pub(super) struct AwsLcPrivate {
    sign: RsaKeyPair,
    decrypt: OaepPrivateDecryptingKey,
}

impl AwsLcPrivate {
    /// Parses a PKCS#8 private key DER that the `rsa` crate already read, and checks that
    /// aws-lc sees the same key: its public half must encode to `spki_der`, the SPKI of
    /// the key the `rsa` crate read. A mismatch or a key aws-lc refuses is `Pem`.
    pub(super) fn from_pkcs8_der(
        pkcs8_der: &[u8],
        spki_der: &[u8],
    ) -> Result<AwsLcPrivate, CryptoError> {
        let sign = RsaKeyPair::from_pkcs8(pkcs8_der).map_err(rejected)?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(pkcs8_der).map_err(rejected)?;
        let public = decrypting
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::Encode)?;
        if public.as_ref() != spki_der {
            return Err(CryptoError::Pem(
                "aws-lc reads another public key from this private key".to_owned(),
            ));
        }
        let decrypt = OaepPrivateDecryptingKey::new(decrypting).map_err(|_| unusable())?;
        Ok(AwsLcPrivate { sign, decrypt })
    }

    /// PSS-SHA-256 with a salt of the hash length (aws-lc-rs's `RSA_PSS_SHA256`), drawn by
    /// aws-lc itself; the private operation is blinded by aws-lc.
    pub(super) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut sig = vec![0; self.sign.public_modulus_len()];
        self.sign
            .sign(&RSA_PSS_SHA256, &SystemRandom::new(), msg, &mut sig)
            .map_err(|_| CryptoError::Sign)?;
        Ok(sig)
    }

    /// OAEP-SHA-256 decryption with the empty label; any failure is `Unwrap`. The padding
    /// check is aws-lc's constant-time one.
    pub(super) fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
        let mut out = Zeroizing::new(vec![0; self.decrypt.min_output_size()]);
        let plain = self
            .decrypt
            .decrypt(&OAEP_SHA256_MGF1SHA256, wrapped, &mut out, None)
            .map_err(|_| CryptoError::Unwrap)?;
        Ok(SecretBytes::from_slice(plain))
    }
}

impl fmt::Debug for AwsLcPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AwsLcPublic")
    }
}

impl fmt::Debug for AwsLcPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AwsLcPrivate")
    }
}

/// aws-lc's refusal of a key, as `Pem` with its reason (a fixed text, no key bytes).
fn rejected(e: aws_lc_rs::error::KeyRejected) -> CryptoError {
    CryptoError::Pem(format!("aws-lc refuses the key: {e}"))
}

fn unusable() -> CryptoError {
    CryptoError::Pem("aws-lc cannot use the key for OAEP".to_owned())
}
