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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::ids::{ScripId, Uid};
    use crate::scrip::{RootKey, ScripBody};

    /// The inputs of test-vectors.md, "Scrip certificate and customer secret".
    fn kat_inputs() -> (RootKey, ScripBody) {
        let root: Vec<u8> = (1..=0x20).collect();
        let body = ScripBody {
            producer: Uid([0xaa; 16]),
            value: Amount::from_minor(1234),
            scrip_id: ScripId(std::array::from_fn(|i| i as u8)),
            cust_id: CustId(std::array::from_fn(|i| 0x10 + i as u8)),
            expires: 1_767_225_600,
        };
        (RootKey::from_bytes(&root).unwrap(), body)
    }

    #[test]
    fn hmac_sha256_rfc4231_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]).expose()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// test-vectors.md: both certificates and both customer secrets, exactly.
    #[test]
    fn certificate_and_customer_secret_known_answers() {
        let (root, body) = kat_inputs();
        let mss = root.master_scrip_secret(&body.scrip_id);
        let mcs = root.master_customer_secret(&body.cust_id);
        let canonical = body.canonical_bytes();
        assert_eq!(
            hex::encode(Suite::Paper.scrip_certificate(&mss, &canonical)),
            "2e665fb0d20a41762131364da66480c97c355cc5"
        );
        assert_eq!(
            hex::encode(Suite::Paper.customer_secret(&mcs, &body.cust_id).expose()),
            "deca56193569664efa20c08019feff37029963ea"
        );
        assert_eq!(
            hex::encode(Suite::Modern.scrip_certificate(&mss, &canonical)),
            "3558f415e26d9d14d8be7690f441bbbb17614277284126fe9025745d66fe7299"
        );
        assert_eq!(
            hex::encode(Suite::Modern.customer_secret(&mcs, &body.cust_id).expose()),
            "020711b3ddb450f63171fa8e68f88cfdef83505cff9eff7645983725a0179693"
        );
    }
}
