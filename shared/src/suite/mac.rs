//! The producer's secret-keyed functions (protocol.md sections 2 and 4): scrip
//! certificates, CustomerSecrets, and the HMAC-SHA256 that derives master secrets.
//!
//! `paper` keeps the paper's secret-suffix constructions, `H(body ‖ MasterScripSecret)` and
//! `H(CustID ‖ MasterCustomerSecret)` with SHA-1; `modern` uses HMAC-SHA256, because a
//! secret-suffix MAC inherits every collision of its hash (section 9). Both come from
//! RustCrypto's `sha1`, `sha2` and `hmac`; nothing here is hand-rolled.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::ids::CustId;
use crate::scrip::CustomerSecret;
use crate::secret::SecretBytes;
use crate::suite::Suite;

/// `HMAC-SHA256(key, parts[0] ‖ parts[1] ‖ …)`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> SecretBytes {
    // HMAC is defined for keys of every length (RFC 2104 hashes a long key and pads a short
    // one), so the `InvalidLength` of the generic `KeyInit` interface cannot happen here.
    #[allow(clippy::expect_used)]
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    SecretBytes::new(mac.finalize().into_bytes().to_vec())
}

impl Suite {
    /// The scrip certificate over a 64-byte canonical body (protocol.md section 2):
    /// `SHA1(body ‖ MasterScripSecret)` (paper) or `HMAC-SHA256(MasterScripSecret, body)`
    /// (modern). 20 or 32 bytes. Not secret: it travels with the scrip.
    #[must_use]
    pub fn scrip_certificate(
        self,
        master_scrip_secret: &SecretBytes,
        canonical_body: &[u8; 64],
    ) -> Vec<u8> {
        match self {
            Suite::Paper => self.hash(&[canonical_body, master_scrip_secret.expose()]),
            Suite::Modern => hmac_sha256(master_scrip_secret.expose(), &[canonical_body])
                .expose()
                .to_vec(),
        }
    }

    /// The CustomerSecret of a scrip (protocol.md section 2): `SHA1(cust_id ‖
    /// MasterCustomerSecret)` (paper) or `HMAC-SHA256(MasterCustomerSecret, cust_id)`
    /// (modern).
    #[must_use]
    pub fn customer_secret(
        self,
        master_customer_secret: &SecretBytes,
        cust_id: &CustId,
    ) -> CustomerSecret {
        let bytes = match self {
            Suite::Paper => {
                SecretBytes::new(self.hash(&[cust_id.as_bytes(), master_customer_secret.expose()]))
            }
            Suite::Modern => hmac_sha256(master_customer_secret.expose(), &[cust_id.as_bytes()]),
        };
        CustomerSecret::from_secret(bytes)
    }
}
