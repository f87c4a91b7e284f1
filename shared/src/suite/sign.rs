//! `Sign_K(X)` and its verification (protocol.md section 2).
//!
//! `paper`: RSASSA-PKCS1-v1_5 over SHA-1, exactly the paper. `modern`: RSASSA-PSS over
//! SHA-256, MGF1-SHA-256, salt length = hash length (32), as section 3 fixes it. The
//! message passed in is the complete `SigInput` (tag, header, body) that the frame layer
//! builds; this module signs bytes and knows nothing of frames.
//!
//! Every verification failure is the one variant `BadSignature`, whatever the cause
//! (length, padding, mismatch): the sender learns nothing about which check failed.
//!
//! The modern suite runs on the backend [`Suite::rsa_backend`] names (aws-lc-rs by
//! default, docs/adr/0014); `sign_with` and `verify_with` choose one, for the tests that
//! prove the two interoperate and for the benchmark that compares them.

use sha1::Sha1;
use sha2::Sha256;

use super::op_count::count;
use crate::suite::{CryptoError, KeyPair, PublicKey, RsaBackend, Suite};

impl KeyPair {
    /// Signs `msg` with the suite's scheme: PKCS#1 v1.5 SHA-1 (paper) or PSS SHA-256 with
    /// a 32-byte salt (modern). The private operation is blinded. Slow (milliseconds):
    /// keep it off an actor's thread.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.sign_with(self.suite().rsa_backend(), msg)
    }

    /// [`KeyPair::sign`] on a chosen backend; `Backend` if it does not serve the key's
    /// suite in this build ([`RsaBackend::serves`]).
    pub fn sign_with(&self, backend: RsaBackend, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        backend.check(self.suite())?;
        count(|n| n.sign += 1);
        match backend {
            RsaBackend::RustCrypto => {
                let mut rng = rand::rng();
                let key = self.rsa();
                match self.suite() {
                    Suite::Paper => key.pkcs1v15_sign_with_rng::<Sha1, _>(&mut rng, msg),
                    Suite::Modern => key.pss_sign_with_rng::<Sha256, _>(&mut rng, msg),
                }
                .map_err(|_| CryptoError::Sign)
            }
            #[cfg(feature = "aws-lc")]
            RsaBackend::AwsLc => self.aws_lc()?.sign(msg),
            #[cfg(not(feature = "aws-lc"))]
            RsaBackend::AwsLc => Err(CryptoError::Backend {
                backend,
                suite: self.suite(),
            }),
        }
    }
}

impl PublicKey {
    /// Verifies `sig` over `msg` with the suite's scheme (see [`KeyPair::sign`]); any
    /// failure is `BadSignature` (protocol.md section 3: one error class, no oracle).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        self.verify_with(self.suite().rsa_backend(), msg, sig)
    }

    /// [`PublicKey::verify`] on a chosen backend; `Backend` if it does not serve the key's
    /// suite in this build ([`RsaBackend::serves`]).
    pub fn verify_with(
        &self,
        backend: RsaBackend,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<(), CryptoError> {
        backend.check(self.suite())?;
        count(|n| n.verify += 1);
        match backend {
            RsaBackend::RustCrypto => {
                let key = self.rsa();
                match self.suite() {
                    Suite::Paper => key.pkcs1v15_verify::<Sha1>(msg, sig),
                    Suite::Modern => key.pss_verify::<Sha256>(msg, sig),
                }
                .map_err(|_| CryptoError::BadSignature)
            }
            #[cfg(feature = "aws-lc")]
            RsaBackend::AwsLc => self.aws_lc()?.verify(msg, sig),
            #[cfg(not(feature = "aws-lc"))]
            RsaBackend::AwsLc => Err(CryptoError::Backend {
                backend,
                suite: self.suite(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use proptest::prelude::*;

    fn flip(bytes: &mut [u8], bit: usize) {
        bytes[bit / 8] ^= 1 << (bit % 8);
    }

    #[test]
    fn sign_verify_round_trip_with_the_suite_scheme() {
        for suite in Suite::ALL {
            let k = fixtures::keypair(suite, 0);
            for msg in [&b""[..], b"x", &[0xab; 1000]] {
                let sig = k.sign(msg).unwrap();
                assert_eq!(sig.len(), k.public().bits() / 8);
                assert_eq!(k.public().verify(msg, &sig), Ok(()));
            }
        }
        // Paper signatures are deterministic (PKCS#1 v1.5), modern ones salted (PSS).
        let paper = fixtures::keypair(Suite::Paper, 0);
        assert_eq!(paper.sign(b"m").unwrap(), paper.sign(b"m").unwrap());
        let modern = fixtures::keypair(Suite::Modern, 0);
        assert_ne!(modern.sign(b"m").unwrap(), modern.sign(b"m").unwrap());
    }

    #[test]
    fn another_key_does_not_verify() {
        for suite in Suite::ALL {
            let sig = fixtures::keypair(suite, 0).sign(b"msg").unwrap();
            let other = fixtures::keypair(suite, 1).public();
            assert_eq!(other.verify(b"msg", &sig), Err(CryptoError::BadSignature));
        }
    }

    /// Wrong lengths (one byte short or long, even a leading zero) and junk of the right
    /// length are refused like any other bad signature.
    #[test]
    fn malformed_signatures_are_bad_signature() {
        for suite in Suite::ALL {
            let k = fixtures::keypair(suite, 0);
            let sig = k.sign(b"msg").unwrap();
            let mut long = sig.clone();
            long.push(0);
            let mut zero_prefixed = vec![0];
            zero_prefixed.extend_from_slice(&sig);
            let all_ones = vec![0xff; sig.len()];
            for bad in [
                &sig[1..],
                &long[..],
                &zero_prefixed[..],
                &[][..],
                &all_ones[..],
            ] {
                assert_eq!(
                    k.public().verify(b"msg", bad),
                    Err(CryptoError::BadSignature),
                    "{suite} len {}",
                    bad.len()
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any single flipped bit of the message or the signature is `BadSignature`.
        #[test]
        fn flipped_bit_is_bad_signature(
            modern in any::<bool>(),
            msg in proptest::collection::vec(any::<u8>(), 1..200),
            msg_bit in any::<prop::sample::Index>(),
            sig_bit in any::<prop::sample::Index>(),
        ) {
            let suite = if modern { Suite::Modern } else { Suite::Paper };
            let k = fixtures::keypair(suite, 3);
            let sig = k.sign(&msg).unwrap();
            prop_assert_eq!(k.public().verify(&msg, &sig), Ok(()));

            let mut bad_msg = msg.clone();
            flip(&mut bad_msg, msg_bit.index(msg.len() * 8));
            prop_assert_eq!(k.public().verify(&bad_msg, &sig), Err(CryptoError::BadSignature));

            let mut bad_sig = sig.clone();
            flip(&mut bad_sig, sig_bit.index(sig.len() * 8));
            prop_assert_eq!(k.public().verify(&msg, &bad_sig), Err(CryptoError::BadSignature));
        }
    }
}
