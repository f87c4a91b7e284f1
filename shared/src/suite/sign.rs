//! `Sign_K(X)` and its verification (protocol.md section 2).
//!
//! `paper`: RSASSA-PKCS1-v1_5 over SHA-1, exactly the paper. `modern`: RSASSA-PSS over
//! SHA-256, MGF1-SHA-256, salt length = hash length (32), as section 3 fixes it. The
//! message passed in is the complete `SigInput` (tag, header, body) that the frame layer
//! builds; this module signs bytes and knows nothing of frames.
//!
//! Every verification failure is the one variant `BadSignature`, whatever the cause
//! (length, padding, mismatch): the sender learns nothing about which check failed.

use sha1::Sha1;
use sha2::Sha256;

use crate::suite::{CryptoError, KeyPair, PublicKey, Suite};

impl KeyPair {
    /// Signs `msg` with the suite's scheme: PKCS#1 v1.5 SHA-1 (paper) or PSS SHA-256 with
    /// a 32-byte salt (modern). The private operation is blinded. Slow (milliseconds):
    /// keep it off an actor's thread.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut rng = rand::rng();
        let key = self.rsa();
        match self.suite() {
            Suite::Paper => key.pkcs1v15_sign_with_rng::<Sha1, _>(&mut rng, msg),
            Suite::Modern => key.pss_sign_with_rng::<Sha256, _>(&mut rng, msg),
        }
        .map_err(|_| CryptoError::Sign)
    }
}

impl PublicKey {
    /// Verifies `sig` over `msg` with the suite's scheme (see [`KeyPair::sign`]); any
    /// failure is `BadSignature` (protocol.md section 3: one error class, no oracle).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        let key = self.rsa();
        match self.suite() {
            Suite::Paper => key.pkcs1v15_verify::<Sha1>(msg, sig),
            Suite::Modern => key.pss_verify::<Sha256>(msg, sig),
        }
        .map_err(|_| CryptoError::BadSignature)
    }
}
