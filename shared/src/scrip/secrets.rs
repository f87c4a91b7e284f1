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
