//! Scrip (protocol.md section 4): the body a producer certifies, and the certified scrip.
//!
//! A scrip names its producer (the "faulty scrip" defence: only that producer accepts it),
//! its value, a random serial number, the customer id from which its CustomerSecret is
//! derived, and its expiry. Its certificate is computed over the 64-byte canonical body,
//! which is independent of the wire codec so that every implementation agrees.
//!
//! Submodules: `secrets` ([`RootKey`] and the master secrets it derives, [`CustomerSecret`])
//! and `mint` (the producer's [`Mint`]: issue and validate).

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::ids::{CustId, ScripId, Uid};

mod mint;
mod secrets;

pub use mint::{ExpiryRule, Mint, ScripError};
pub use secrets::{CustomerSecret, ROOT_KEY_LEN, RootKey, RootKeyError};

/// What a producer certifies (protocol.md section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScripBody {
    /// The broker (BrokerScrip) or a merchant (VendorScrip): the only node that accepts it.
    pub producer: Uid,
    /// Value in minor units.
    pub value: Amount,
    /// Serial number; the key of the producer's live table.
    pub scrip_id: ScripId,
    /// Customer id, the input of the CustomerSecret.
    pub cust_id: CustId,
    /// Expiry, unix seconds.
    pub expires: u64,
}

/// Length of [`ScripBody::canonical_bytes`].
pub const CANONICAL_BODY_LEN: usize = 64;

impl ScripBody {
    /// `producer (16) ‖ value (u64 BE) ‖ scrip_id (16) ‖ cust_id (16) ‖ expires (u64 BE)`:
    /// the bytes that are hashed or MACed (protocol.md section 4).
    #[must_use]
    pub fn canonical_bytes(&self) -> [u8; CANONICAL_BODY_LEN] {
        let mut out = [0u8; CANONICAL_BODY_LEN];
        out[0..16].copy_from_slice(self.producer.as_bytes());
        out[16..24].copy_from_slice(&self.value.minor().to_be_bytes());
        out[24..40].copy_from_slice(self.scrip_id.as_bytes());
        out[40..56].copy_from_slice(self.cust_id.as_bytes());
        out[56..64].copy_from_slice(&self.expires.to_be_bytes());
        out
    }

    /// Whether the scrip has expired at `now`: it is valid up to and including its
    /// `expires` second (section 4).
    #[must_use]
    pub fn is_expired_at(&self, now: crate::time::UnixSecs) -> bool {
        now.get() > self.expires
    }
}

/// A certified scrip: its body and the producer's certificate over the canonical body.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scrip {
    /// What is certified.
    pub body: ScripBody,
    /// `H(body ‖ MasterScripSecret)` (paper) or `HMAC-SHA256(MasterScripSecret, body)`
    /// (modern), protocol.md section 2.
    pub certificate: Vec<u8>,
}

impl Scrip {
    /// The scrip's value.
    #[must_use]
    pub fn value(&self) -> Amount {
        self.body.value
    }

    /// The scrip's serial number.
    #[must_use]
    pub fn id(&self) -> ScripId {
        self.body.scrip_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// test-vectors.md, "Scrip certificate and customer secret": the canonical body.
    #[test]
    fn canonical_body_known_answer() {
        let body = ScripBody {
            producer: Uid([0xaa; 16]),
            value: Amount::from_minor(1234),
            scrip_id: ScripId(std::array::from_fn(|i| i as u8)),
            cust_id: CustId(std::array::from_fn(|i| 0x10 + i as u8)),
            expires: 1_767_225_600,
        };
        assert_eq!(
            hex::encode(body.canonical_bytes()),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000000000004d2000102030405060708090a0b0c0d0e0f\
             101112131415161718191a1b1c1d1e1f000000006955b900"
        );
        assert!(!body.is_expired_at(crate::time::UnixSecs::new(1_767_225_600)));
        assert!(body.is_expired_at(crate::time::UnixSecs::new(1_767_225_601)));
    }
}
