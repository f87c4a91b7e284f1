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
