//! `Enc_k(.)`, the symmetric cipher of a sealed part (protocol.md sections 2 and 3).
//!
//! `paper`: AES-192-CBC, random 16-byte IV, PKCS#7 padding; output `IV ‖ ciphertext`. CBC
//! has no integrity of its own: a tampered ciphertext may decrypt to garbage with valid
//! padding. Integrity comes from the inner signatures, which cover the frame header and
//! body (section 3), so `aad` is not used in this suite.
//!
//! `modern`: AES-256-GCM, random 96-bit nonce, `aad` as associated data (the frame layer
//! passes `"peerscrip/v1/aad" ‖ 0x00 ‖ HeaderBytes ‖ to`); output `nonce ‖ ciphertext ‖
//! tag`. A random nonce is safe because every session key seals exactly one part.
//!
//! Every failure to open is the one variant `Open` (bad length, bad padding, bad tag):
//! no padding or MAC oracle (section 3).

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use rand::Rng;
use zeroize::Zeroizing;

use crate::suite::{CryptoError, SessionKey, Suite};

/// AES block and CBC IV length.
const CBC_IV_LEN: usize = 16;
/// GCM nonce length (96 bits).
const GCM_NONCE_LEN: usize = 12;
/// GCM tag length.
const GCM_TAG_LEN: usize = 16;

type Aes192CbcEnc = cbc::Encryptor<aes::Aes192>;
type Aes192CbcDec = cbc::Decryptor<aes::Aes192>;

impl Suite {
    /// Encrypts `plaintext` under `key`: AES-192-CBC with a random IV, output `IV ‖ ct`,
    /// `aad` unused (paper); AES-256-GCM with a random nonce and `aad` as associated data,
    /// output `nonce ‖ ct ‖ tag` (modern). A key of the wrong length for the suite is
    /// `SessionKeyLength`.
    pub fn seal(
        self,
        key: &SessionKey,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if key.len() != self.session_key_len() {
            return Err(CryptoError::SessionKeyLength {
                suite: self,
                expected: self.session_key_len(),
                len: key.len(),
            });
        }
        let mut rng = rand::rng();
        match self {
            Suite::Paper => {
                let mut iv = [0u8; CBC_IV_LEN];
                rng.fill_bytes(&mut iv);
                let cipher = Aes192CbcEnc::new_from_slices(key.expose(), &iv)
                    .map_err(|_| CryptoError::Seal)?;
                let ct = cipher.encrypt_padded_vec::<Pkcs7>(plaintext);
                let mut out = Vec::with_capacity(CBC_IV_LEN + ct.len());
                out.extend_from_slice(&iv);
                out.extend_from_slice(&ct);
                Ok(out)
            }
            Suite::Modern => {
                let cipher =
                    Aes256Gcm::new_from_slice(key.expose()).map_err(|_| CryptoError::Seal)?;
                let mut nonce = [0u8; GCM_NONCE_LEN];
                rng.fill_bytes(&mut nonce);
                let ct = cipher
                    .encrypt(
                        &Nonce::from(nonce),
                        Payload {
                            msg: plaintext,
                            aad,
                        },
                    )
                    .map_err(|_| CryptoError::Seal)?;
                let mut out = Vec::with_capacity(GCM_NONCE_LEN + ct.len());
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&ct);
                Ok(out)
            }
        }
    }

    /// Decrypts what [`Suite::seal`] produced. Any failure, including a key of the wrong
    /// length, is `Open`. In `paper` a tampered ciphertext may still "open" to garbage
    /// (CBC has no MAC): the caller's verification of the inner signatures catches it.
    pub fn open(
        self,
        key: &SessionKey,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if key.len() != self.session_key_len() {
            return Err(CryptoError::Open);
        }
        match self {
            Suite::Paper => {
                // IV plus at least one block, whole blocks only (PKCS#7 always pads).
                if sealed.len() < 2 * CBC_IV_LEN || !sealed.len().is_multiple_of(CBC_IV_LEN) {
                    return Err(CryptoError::Open);
                }
                let (iv, ct) = sealed.split_at(CBC_IV_LEN);
                let cipher = Aes192CbcDec::new_from_slices(key.expose(), iv)
                    .map_err(|_| CryptoError::Open)?;
                cipher
                    .decrypt_padded_vec::<Pkcs7>(ct)
                    .map(Zeroizing::new)
                    .map_err(|_| CryptoError::Open)
            }
            Suite::Modern => {
                if sealed.len() < GCM_NONCE_LEN + GCM_TAG_LEN {
                    return Err(CryptoError::Open);
                }
                let (nonce, ct) = sealed.split_at(GCM_NONCE_LEN);
                let nonce = Nonce::try_from(nonce).map_err(|_| CryptoError::Open)?;
                let cipher =
                    Aes256Gcm::new_from_slice(key.expose()).map_err(|_| CryptoError::Open)?;
                cipher
                    .decrypt(&nonce, Payload { msg: ct, aad })
                    .map(Zeroizing::new)
                    .map_err(|_| CryptoError::Open)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flip(bytes: &mut [u8], bit: usize) {
        bytes[bit / 8] ^= 1 << (bit % 8);
    }

    #[test]
    fn seal_open_round_trip_with_and_without_aad() {
        for suite in Suite::ALL {
            let key = SessionKey::generate(suite);
            for aad in [&b""[..], b"peerscrip/v1/aad\0header"] {
                for pt in [&b""[..], b"x", &[7u8; 16], &[9u8; 1000]] {
                    let sealed = suite.seal(&key, aad, pt).unwrap();
                    assert_eq!(suite.open(&key, aad, &sealed).unwrap().as_slice(), pt);
                }
            }
        }
    }

    /// AES-256-GCM known answer: McGrew and Viega, "The Galois/Counter Mode of Operation",
    /// test case 16 (256-bit key, 96-bit IV, with associated data), laid out as the modern
    /// suite's `nonce ‖ ciphertext ‖ tag`.
    #[test]
    fn modern_opens_the_gcm_known_answer() {
        let key = SessionKey::from_bytes(
            Suite::Modern,
            &hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
                .unwrap(),
        )
        .unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let sealed = hex::decode(concat!(
            "cafebabefacedbaddecaf888",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b",
        ))
        .unwrap();
        let plaintext = hex::decode(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        ))
        .unwrap();
        assert_eq!(
            Suite::Modern.open(&key, &aad, &sealed).unwrap().as_slice(),
            plaintext.as_slice()
        );
    }

    #[test]
    fn output_layout_is_iv_or_nonce_then_ciphertext() {
        let paper = SessionKey::generate(Suite::Paper);
        // 16-byte IV, then PKCS#7 always adds 1..=16 bytes.
        assert_eq!(Suite::Paper.seal(&paper, b"", b"").unwrap().len(), 32);
        assert_eq!(Suite::Paper.seal(&paper, b"", &[0; 15]).unwrap().len(), 32);
        assert_eq!(Suite::Paper.seal(&paper, b"", &[0; 16]).unwrap().len(), 48);
        let modern = SessionKey::generate(Suite::Modern);
        // 12-byte nonce, ciphertext as long as the plaintext, 16-byte tag.
        assert_eq!(Suite::Modern.seal(&modern, b"", b"").unwrap().len(), 28);
        assert_eq!(
            Suite::Modern.seal(&modern, b"", &[0; 100]).unwrap().len(),
            128
        );
        // Fresh IV / nonce each time.
        for (suite, key) in [(Suite::Paper, &paper), (Suite::Modern, &modern)] {
            assert_ne!(
                suite.seal(key, b"", b"same").unwrap(),
                suite.seal(key, b"", b"same").unwrap()
            );
        }
    }

    #[test]
    fn modern_authenticates_the_aad_and_paper_ignores_it() {
        let key = SessionKey::generate(Suite::Modern);
        let sealed = Suite::Modern.seal(&key, b"header A", b"secret").unwrap();
        assert_eq!(
            Suite::Modern.open(&key, b"header B", &sealed),
            Err(CryptoError::Open)
        );
        assert_eq!(
            Suite::Modern.open(&key, b"", &sealed),
            Err(CryptoError::Open)
        );
        let key = SessionKey::generate(Suite::Paper);
        let sealed = Suite::Paper.seal(&key, b"header A", b"secret").unwrap();
        assert_eq!(
            Suite::Paper
                .open(&key, b"header B", &sealed)
                .unwrap()
                .as_slice(),
            b"secret"
        );
    }

    #[test]
    fn wrong_key_or_short_input_is_open() {
        for suite in Suite::ALL {
            let key = SessionKey::generate(suite);
            let sealed = suite.seal(&key, b"aad", &[1u8; 40]).unwrap();
            let other = SessionKey::generate(suite);
            match suite.open(&other, b"aad", &sealed) {
                Err(e) => assert_eq!(e, CryptoError::Open),
                // CBC under a wrong key: garbage with valid padding, rarely, never the text.
                Ok(pt) => {
                    assert_eq!(suite, Suite::Paper);
                    assert_ne!(pt.as_slice(), &[1u8; 40]);
                }
            }
            for bad in [&sealed[..0], &sealed[..11], &sealed[..27], &sealed[..31]] {
                assert_eq!(suite.open(&key, b"aad", bad), Err(CryptoError::Open));
            }
        }
        // Paper: a length that is not whole blocks.
        let key = SessionKey::generate(Suite::Paper);
        let sealed = Suite::Paper.seal(&key, b"", &[1u8; 40]).unwrap();
        assert_eq!(
            Suite::Paper.open(&key, b"", &sealed[..sealed.len() - 1]),
            Err(CryptoError::Open)
        );
    }

    #[test]
    fn key_of_the_other_suite_is_refused() {
        let paper_key = SessionKey::generate(Suite::Paper);
        assert_eq!(
            Suite::Modern.seal(&paper_key, b"", b"x"),
            Err(CryptoError::SessionKeyLength {
                suite: Suite::Modern,
                expected: 32,
                len: 24
            })
        );
        let modern_key = SessionKey::generate(Suite::Modern);
        let sealed = Suite::Modern.seal(&modern_key, b"", b"x").unwrap();
        assert_eq!(
            Suite::Paper.open(&modern_key, b"", &sealed),
            Err(CryptoError::Open)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// One flipped bit anywhere in the sealed bytes: modern always refuses it; paper
        /// (CBC, no MAC) may decrypt to garbage, but never to the original plaintext.
        /// Paper's integrity comes from the inner signature (protocol.md section 3).
        #[test]
        fn flipped_sealed_bit_never_opens_to_the_original(
            modern in any::<bool>(),
            pt in proptest::collection::vec(any::<u8>(), 0..100),
            aad in proptest::collection::vec(any::<u8>(), 0..40),
            bit in any::<prop::sample::Index>(),
        ) {
            let suite = if modern { Suite::Modern } else { Suite::Paper };
            let key = SessionKey::generate(suite);
            let mut sealed = suite.seal(&key, &aad, &pt).unwrap();
            let bit = bit.index(sealed.len() * 8);
            flip(&mut sealed, bit);
            match suite.open(&key, &aad, &sealed) {
                Err(e) => prop_assert_eq!(e, CryptoError::Open),
                Ok(got) => {
                    prop_assert_eq!(suite, Suite::Paper);
                    prop_assert_ne!(got.as_slice(), pt.as_slice());
                }
            }
        }

        /// Modern: one flipped bit of the associated data is `Open`.
        #[test]
        fn flipped_aad_bit_is_open(
            pt in proptest::collection::vec(any::<u8>(), 0..100),
            aad in proptest::collection::vec(any::<u8>(), 1..60),
            bit in any::<prop::sample::Index>(),
        ) {
            let key = SessionKey::generate(Suite::Modern);
            let sealed = Suite::Modern.seal(&key, &aad, &pt).unwrap();
            let mut bad = aad.clone();
            flip(&mut bad, bit.index(aad.len() * 8));
            prop_assert_eq!(Suite::Modern.open(&key, &bad, &sealed), Err(CryptoError::Open));
        }
    }
}
