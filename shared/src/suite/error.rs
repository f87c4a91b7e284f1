//! `CryptoError`: every way a primitive of protocol.md section 2 can fail.
//!
//! Why the variants are coarse: a failure to verify, unwrap or open says nothing about
//! *where* it failed (no padding or MAC oracle, protocol.md section 3), and every one of
//! them maps to the single wire code [`ErrorCode::BadFrame`]. Local failures (encoding a
//! key, drawing randomness) map to [`ErrorCode::Internal`]. No variant carries secret
//! bytes: the texts are fixed or come from ASN.1 parsers that report positions and tags.

use crate::error::ErrorCode;
use crate::suite::{RsaBackend, Suite};

/// A failure of a cryptographic primitive (protocol.md section 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The RSA modulus has a size the suite does not allow: `paper` is exactly 1024 bits,
    /// `modern` 2048 or 3072 (protocol.md section 2). Checked at generation and at load.
    #[error("a {suite} key must be {}, not {bits} bits", allowed_bits_text(*suite))]
    KeySize {
        /// The suite the key was meant for.
        suite: Suite,
        /// The modulus size found (or asked for).
        bits: usize,
    },
    /// A PEM or DER key could not be parsed (bad label, bad ASN.1, not RSA, or a modulus
    /// the `rsa` crate refuses outright, e.g. under 1024 bits), or, with the `aws-lc`
    /// feature, a modern key that aws-lc-rs refuses or reads differently (docs/adr/0014).
    #[error("key could not be decoded: {0}")]
    Pem(String),
    /// The private key PEM is encrypted and no passphrase was given.
    #[error("the private key is encrypted: a passphrase is required")]
    PassphraseRequired,
    /// A passphrase was given but the private key PEM is not encrypted. Refused rather
    /// than ignored: an operator who set a passphrase expects the key file to be protected.
    #[error("a passphrase was given but the private key is not encrypted")]
    NotEncrypted,
    /// The encrypted private key could not be decrypted with this passphrase (or its
    /// decrypted content is not a key).
    #[error("wrong passphrase for the encrypted private key")]
    WrongPassphrase,
    /// A key could not be encoded to PEM or DER.
    #[error("key could not be encoded")]
    Encode,
    /// RSA key generation failed.
    #[error("key generation failed")]
    KeyGen,
    /// Signing failed (randomness or a key too small for the hash); a local failure.
    #[error("signing failed")]
    Sign,
    /// A signature does not verify under the key (protocol.md sections 2 and 3).
    #[error("bad signature")]
    BadSignature,
    /// A session key could not be wrapped for the recipient's key (`PKEnc_K(k)`, §2).
    #[error("session key could not be wrapped")]
    Wrap,
    /// A wrapped session key could not be unwrapped (§2). In the `paper` suite this is
    /// only reported for malformed input: see [`crate::suite::KeyPair::unwrap_key`].
    #[error("session key could not be unwrapped")]
    Unwrap,
    /// The session key's length does not fit the suite's cipher (AES-192: 24 bytes,
    /// AES-256: 32 bytes); a local programming error, never a peer's.
    #[error("a {suite} session key must be {expected} bytes, not {len}")]
    SessionKeyLength {
        /// The suite asked to seal.
        suite: Suite,
        /// The length it needs.
        expected: usize,
        /// The length it got.
        len: usize,
    },
    /// Symmetric encryption failed (`Enc_k`, §2); a local failure.
    #[error("sealing failed")]
    Seal,
    /// A sealed part could not be opened: bad length, bad padding or a failed AEAD tag
    /// (§2, §3). Deliberately one variant for all of them.
    #[error("sealed part could not be opened")]
    Open,
    /// An RSA operation was asked of a backend that does not serve the suite in this
    /// build (aws-lc-rs never serves `paper`, and serves `modern` only with the `aws-lc`
    /// feature; docs/adr/0014); a local programming error, never a peer's.
    #[error("the {backend} RSA backend does not serve the {suite} suite in this build")]
    Backend {
        /// The backend asked.
        backend: RsaBackend,
        /// The suite of the key.
        suite: Suite,
    },
}

fn allowed_bits_text(suite: Suite) -> &'static str {
    match suite {
        Suite::Paper => "1024 bits",
        Suite::Modern => "2048 or 3072 bits",
    }
}

impl CryptoError {
    /// The wire code a peer sees for this failure (protocol.md section 3): anything about
    /// a peer's bytes (a key, a signature, a wrapped key, a ciphertext) is `BadFrame`, the
    /// one class that reveals no step; a local failure is `Internal`.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        ErrorCode::from(self)
    }
}

impl From<&CryptoError> for ErrorCode {
    fn from(e: &CryptoError) -> ErrorCode {
        match e {
            CryptoError::KeySize { .. }
            | CryptoError::Pem(_)
            | CryptoError::BadSignature
            | CryptoError::Unwrap
            | CryptoError::Open => ErrorCode::BadFrame,
            CryptoError::PassphraseRequired
            | CryptoError::NotEncrypted
            | CryptoError::WrongPassphrase
            | CryptoError::Encode
            | CryptoError::KeyGen
            | CryptoError::Sign
            | CryptoError::Wrap
            | CryptoError::SessionKeyLength { .. }
            | CryptoError::Seal
            | CryptoError::Backend { .. } => ErrorCode::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decrypt_and_verify_failures_share_one_code() {
        for e in [
            CryptoError::BadSignature,
            CryptoError::Unwrap,
            CryptoError::Open,
            CryptoError::Pem("x".into()),
            CryptoError::KeySize {
                suite: Suite::Modern,
                bits: 1024,
            },
        ] {
            assert_eq!(e.code(), ErrorCode::BadFrame, "{e:?}");
        }
        for e in [CryptoError::Seal, CryptoError::Sign, CryptoError::Encode] {
            assert_eq!(e.code(), ErrorCode::Internal, "{e:?}");
        }
    }

    #[test]
    fn key_size_message_names_the_rule() {
        let e = CryptoError::KeySize {
            suite: Suite::Paper,
            bits: 2048,
        };
        assert_eq!(
            e.to_string(),
            "a paper key must be 1024 bits, not 2048 bits"
        );
        let e = CryptoError::KeySize {
            suite: Suite::Modern,
            bits: 4096,
        };
        assert_eq!(
            e.to_string(),
            "a modern key must be 2048 or 3072 bits, not 4096 bits"
        );
    }
}
