//! The producer's root key and the customer's CustomerSecret (protocol.md section 4).
//!
//! Why derivation instead of storage: the paper's producer stores a MasterScripSecret and
//! a MasterCustomerSecret per scrip. Here both are derived from one 32-byte root key kept
//! in a key file, `HMAC-SHA256(root, "scrip" ‖ scrip_id)` and `HMAC-SHA256(root, "cust" ‖
//! cust_id)` in both suites, so the event log never holds a secret (section 8) and the live
//! table can be rebuilt by replay. "Deleting the secrets" is removing the scrip id from the
//! live table.

use std::fmt;

use crate::ids::{CustId, ScripId};
use crate::secret::SecretBytes;
use crate::suite::Suite;
use crate::suite::mac::hmac_sha256;

/// Length of a root key in bytes (protocol.md section 4).
pub const ROOT_KEY_LEN: usize = 32;

/// A root key of the wrong length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootKeyError {
    /// A root key is exactly 32 bytes (protocol.md section 4); this one had `len`.
    #[error("a root key is {ROOT_KEY_LEN} bytes, not {len}")]
    Length {
        /// The length given.
        len: usize,
    },
}

/// The producer's 32-byte root key (protocol.md section 4): the one secret from which every
/// scrip's master secrets derive. Kept in a key file, never in the event log. Zeroized on
/// drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RootKey(SecretBytes);

impl RootKey {
    /// A fresh random root key.
    #[must_use]
    pub fn generate() -> RootKey {
        RootKey(SecretBytes::random(ROOT_KEY_LEN))
    }

    /// A root key read from a key file; exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<RootKey, RootKeyError> {
        if bytes.len() != ROOT_KEY_LEN {
            return Err(RootKeyError::Length { len: bytes.len() });
        }
        Ok(RootKey(SecretBytes::from_slice(bytes)))
    }

    /// The key bytes, to write the key file; nowhere else.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// `MasterScripSecret = HMAC-SHA256(root, "scrip" ‖ scrip_id)`, both suites
    /// (protocol.md section 4).
    #[must_use]
    pub fn master_scrip_secret(&self, id: &ScripId) -> SecretBytes {
        hmac_sha256(self.0.expose(), &[b"scrip", id.as_bytes()])
    }

    /// `MasterCustomerSecret = HMAC-SHA256(root, "cust" ‖ cust_id)`, both suites
    /// (protocol.md section 4).
    #[must_use]
    pub fn master_customer_secret(&self, id: &CustId) -> SecretBytes {
        hmac_sha256(self.0.expose(), &[b"cust", id.as_bytes()])
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

/// A scrip's CustomerSecret (protocol.md sections 2 to 4): what proves that the presenter
/// is the customer the scrip was issued to. Delivered only inside a sealed part
/// (`Inner::Secret`), never inside a signed body: bodies carry [`CustomerSecret::cs_hash`].
/// Zeroized on drop, compared in constant time, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerSecret(SecretBytes);

impl CustomerSecret {
    /// A CustomerSecret as received (`Inner::Secret.cs`) or read from a wallet.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> CustomerSecret {
        CustomerSecret(SecretBytes::from_slice(bytes))
    }

    /// Wraps secret bytes already held in a [`SecretBytes`].
    #[must_use]
    pub fn from_secret(secret: SecretBytes) -> CustomerSecret {
        CustomerSecret(secret)
    }

    /// The secret bytes, to seal into `Inner::Secret` or present to the producer.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// `cs_hash = H("peerscrip/cs" ‖ CS)` (protocol.md section 3): what a signed body holds
    /// in place of the secret, so that signed bodies can be kept as evidence.
    #[must_use]
    pub fn cs_hash(&self, suite: Suite) -> Vec<u8> {
        suite.hash(&[b"peerscrip/cs", self.0.expose()])
    }

    /// Whether `presented` equals this secret, in constant time (protocol.md section 4).
    #[must_use]
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.ct_eq_bytes(presented)
    }
}

impl fmt::Debug for CustomerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomerSecret(<{} bytes redacted>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kat_root() -> RootKey {
        let bytes: Vec<u8> = (1..=0x20).collect();
        RootKey::from_bytes(&bytes).unwrap()
    }

    /// test-vectors.md, "Scrip certificate and customer secret": the master secrets.
    #[test]
    fn master_secret_known_answers() {
        let root = kat_root();
        let scrip_id = ScripId(std::array::from_fn(|i| i as u8));
        let cust_id = CustId(std::array::from_fn(|i| 0x10 + i as u8));
        assert_eq!(
            hex::encode(root.master_scrip_secret(&scrip_id).expose()),
            "a206c22f6bb9f7732914ce9b168c3e5b4919a962e55cfd5d4b79ede9d4e7dd49"
        );
        assert_eq!(
            hex::encode(root.master_customer_secret(&cust_id).expose()),
            "435fcd47118dfc8225f734bdccd37372a1d4f4951c1c70655101ac7eaba4a098"
        );
    }

    /// test-vectors.md, "cs_hash".
    #[test]
    fn cs_hash_known_answers() {
        let paper = CustomerSecret::from_bytes(
            &hex::decode("deca56193569664efa20c08019feff37029963ea").unwrap(),
        );
        assert_eq!(
            hex::encode(paper.cs_hash(Suite::Paper)),
            "99c123d90f6f49bf0661c65ce3f1a783b0ddae41"
        );
        let modern = CustomerSecret::from_bytes(
            &hex::decode("020711b3ddb450f63171fa8e68f88cfdef83505cff9eff7645983725a0179693")
                .unwrap(),
        );
        assert_eq!(
            hex::encode(modern.cs_hash(Suite::Modern)),
            "f6830d7c22402e8976cb149762f509208cca652568f14a8916aea8f796a82067"
        );
    }

    #[test]
    fn root_key_is_exactly_32_bytes() {
        assert_eq!(
            RootKey::from_bytes(&[0; 31]),
            Err(RootKeyError::Length { len: 31 })
        );
        assert_eq!(
            RootKey::from_bytes(&[0; 33]),
            Err(RootKeyError::Length { len: 33 })
        );
        assert_eq!(
            RootKey::from_bytes(&[]),
            Err(RootKeyError::Length { len: 0 })
        );
        let k = RootKey::from_bytes(&[7; 32]).unwrap();
        assert_eq!(k.expose(), &[7; 32]);
        let g = RootKey::generate();
        assert_eq!(g.expose().len(), ROOT_KEY_LEN);
        assert_ne!(g, RootKey::generate());
    }

    #[test]
    fn master_secrets_are_separated_by_label_and_id() {
        let root = kat_root();
        let id = [5u8; 16];
        assert_ne!(
            root.master_scrip_secret(&ScripId(id)),
            root.master_customer_secret(&CustId(id))
        );
        assert_ne!(
            root.master_scrip_secret(&ScripId(id)),
            root.master_scrip_secret(&ScripId([6; 16]))
        );
    }

    #[test]
    fn customer_secret_matches_in_constant_time_by_content() {
        let cs = CustomerSecret::from_bytes(b"0123456789abcdef0123");
        assert!(cs.matches(b"0123456789abcdef0123"));
        assert!(!cs.matches(b"0123456789abcdef0124"));
        assert!(!cs.matches(b"0123456789abcdef012"));
        assert!(!cs.matches(b""));
        assert_eq!(
            cs,
            CustomerSecret::from_secret(SecretBytes::from_slice(cs.expose()))
        );
    }

    #[test]
    fn debug_never_shows_secret_bytes() {
        let root = kat_root();
        assert_eq!(format!("{root:?}"), "RootKey(<redacted>)");
        let cs = CustomerSecret::from_bytes(&[0xde, 0xca, 0x56, 0x19]);
        let shown = format!("{cs:?}");
        assert_eq!(shown, "CustomerSecret(<4 bytes redacted>)");
        assert!(!shown.contains("deca"));
    }
}
