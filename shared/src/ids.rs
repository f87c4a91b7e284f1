//! Identifiers (protocol.md section 1): the public pseudonym `Uid`, the 16-byte random ids
//! (`TxId`, `ScripId`, `CustId`, `Nonce`), the bank account number `Pan`, its secret
//! `PanSecret`, and the account proof `AccountId = H(PANSecret ‖ H(PANSecret) ‖ PAN)`.
//!
//! All 16-byte ids show and parse as 32 lowercase hex digits. `Pan`'s `Debug` is redacted
//! (an account number is personal data); `PanSecret` and `AccountId` are secrets
//! ([`SecretBytes`]) and never print at all.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret::SecretBytes;
use crate::suite::Suite;

/// A 16-byte id that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: expected 32 hex digits, got {text:?}")]
pub struct ParseIdError {
    /// Which id type was being parsed.
    pub kind: &'static str,
    /// The text that was refused (ids are public, so echoing it is safe).
    pub text: String,
}

macro_rules! id16 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = 16;

            /// 16 bytes from the operating system's CSPRNG.
            #[must_use]
            pub fn random() -> Self {
                use rand::Rng;
                let mut b = [0u8; 16];
                rand::rng().fill_bytes(&mut b);
                $name(b)
            }

            /// The raw bytes.
            #[must_use]
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut b = [0u8; 16];
                // `hex` accepts upper case too; we print lower case and accept both.
                hex::decode_to_slice(s, &mut b).map_err(|_| ParseIdError {
                    kind: stringify!($name),
                    text: s.to_owned(),
                })?;
                Ok($name(b))
            }
        }
    };
}

id16! {
    /// A peer's public pseudonym: the first 16 bytes of SHA-256 over its public key's SPKI
    /// DER (protocol.md section 1), so it is bound to the key and reveals nothing else.
    Uid
}
id16! {
    /// A transaction id, 16 random bytes chosen by the initiator and carried by every
    /// message of the transaction (protocol.md sections 3 and 7).
    TxId
}
id16! {
    /// A scrip's serial number, chosen at random by its producer (protocol.md section 4).
    ScripId
}
id16! {
    /// The customer id inside a scrip, from which its CustomerSecret is derived
    /// (protocol.md section 4). Fresh for every scrip, so it links nothing.
    CustId
}
id16! {
    /// A 16-byte nonce `N` that binds a reply to its request (protocol.md section 6).
    Nonce
}

impl Uid {
    /// The UID of the public key whose SubjectPublicKeyInfo DER is `spki_der`. Always
    /// SHA-256, whatever the suite, so a key has one UID everywhere.
    #[must_use]
    pub fn from_spki_der(spki_der: &[u8]) -> Uid {
        let digest = Sha256::digest(spki_der);
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        Uid(b)
    }
}

/// A bank account number (protocol.md section 1): an opaque string. Its `Debug` shows only
/// the last four characters, so an account number never lands whole in a log line.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pan(String);

impl Pan {
    /// Wraps an account number.
    #[must_use]
    pub fn new(pan: impl Into<String>) -> Self {
        Pan(pan.into())
    }

    /// The account number itself, for the bank and for hashing; not for logs.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The redacted form, `…0695`, for human output.
    #[must_use]
    pub fn redacted(&self) -> String {
        let tail: String = {
            let chars: Vec<char> = self.0.chars().collect();
            chars[chars.len().saturating_sub(4)..].iter().collect()
        };
        format!("…{tail}")
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.redacted())
    }
}

/// The secret the bank hands a peer with its account (protocol.md section 1). At least
/// 128 bits when drawn by the bank operator's tool ([`PanSecret::generate`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PanSecret(SecretBytes);

impl PanSecret {
    /// Bytes of a PANSecret drawn by [`PanSecret::generate`] before hex encoding.
    pub const GENERATED_BYTES: usize = 16;

    /// Wraps a PANSecret given as text (hashed as its UTF-8 bytes, protocol.md section 4).
    #[must_use]
    pub fn new(secret: &str) -> Self {
        PanSecret(SecretBytes::from_slice(secret.as_bytes()))
    }

    /// Wraps a PANSecret received as bytes (the operator's `Inner::PanSecret`).
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        PanSecret(SecretBytes::from_slice(bytes))
    }

    /// Draws a fresh PANSecret of 128 random bits, as 32 hex characters, so that an `ID`
    /// cannot be guessed offline (protocol.md section 1).
    #[must_use]
    pub fn generate() -> Self {
        let raw = SecretBytes::random(Self::GENERATED_BYTES);
        PanSecret(SecretBytes::new(hex::encode(raw.expose()).into_bytes()))
    }

    /// The secret's UTF-8 bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

/// `ID = H(PANSecret ‖ H(PANSecret) ‖ PAN)` (protocol.md section 1): proves knowledge of the
/// account secret. Never sent in the clear; a secret like the PANSecret it comes from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AccountId(SecretBytes);

impl AccountId {
    /// Computes `ID` in `suite`'s hash. PANSecret and PAN are hashed as their UTF-8 bytes,
    /// the inner `H(PANSecret)` as its raw digest (protocol.md section 4).
    #[must_use]
    pub fn derive(suite: Suite, secret: &PanSecret, pan: &Pan) -> AccountId {
        let inner = SecretBytes::new(suite.hash(&[secret.expose()]));
        AccountId(SecretBytes::new(suite.hash(&[
            secret.expose(),
            inner.expose(),
            pan.as_str().as_bytes(),
        ])))
    }

    /// Rebuilds an `ID` kept in a node's secrets table.
    #[must_use]
    pub fn from_secret(bytes: SecretBytes) -> AccountId {
        AccountId(bytes)
    }

    /// The ID bytes, for the IdProof input and the commitment; never for output.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// `H("peerscrip/id-commit" ‖ ID)`: what the `AccountOpened` event holds instead of the
    /// ID itself (protocol.md section 1).
    #[must_use]
    pub fn commitment(&self, suite: Suite) -> Vec<u8> {
        suite.hash(&[b"peerscrip/id-commit", self.expose()])
    }
}

/// Where the identifiers a decision mints come from: the scrip ids and cust ids of the
/// scrip a producer issues (protocol.md section 4). The caller that runs the decisions
/// owns it and hands it in with the producer's [`Mint`](crate::Mint)
/// ([`Mint::with_ids`](crate::Mint::with_ids)), so `decide` draws no randomness of its own:
/// a node uses one seeded from the operating system ([`IdSource::from_os`], a ChaCha
/// stream, as unpredictable as the OS generator), the simulator one seeded from its seed
/// ([`IdSource::seeded`]), so that a run is repeated exactly from its seed.
pub struct IdSource(rand::rngs::StdRng);

impl IdSource {
    /// A source seeded from the operating system's generator.
    #[must_use]
    pub fn from_os() -> IdSource {
        IdSource(rand::make_rng())
    }

    /// A source that gives the same identifiers for the same `seed` (tests, the
    /// simulator). Never for a node that serves: its identifiers are predictable.
    #[must_use]
    pub fn seeded(seed: u64) -> IdSource {
        use rand::SeedableRng;
        IdSource(rand::rngs::StdRng::seed_from_u64(seed))
    }

    /// The next 16 bytes.
    pub fn next_bytes(&mut self) -> [u8; 16] {
        use rand::Rng;
        let mut b = [0u8; 16];
        self.0.fill_bytes(&mut b);
        b
    }

    /// A fresh scrip id.
    pub fn scrip_id(&mut self) -> ScripId {
        ScripId(self.next_bytes())
    }

    /// A fresh cust id.
    pub fn cust_id(&mut self) -> CustId {
        CustId(self.next_bytes())
    }
}

impl fmt::Debug for IdSource {
    /// The generator's state would predict the next identifiers: never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdSource(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// test-vectors.md, "Account ID".
    #[test]
    fn account_id_known_answers() {
        let pan = Pan::new("GR1601101250000000012300695");
        let secret = PanSecret::new("correct horse battery staple");
        assert_eq!(
            hex::encode(AccountId::derive(Suite::Paper, &secret, &pan).expose()),
            "f68fdf2503fa264e2f72f3341cef9c449e1828ad"
        );
        assert_eq!(
            hex::encode(AccountId::derive(Suite::Modern, &secret, &pan).expose()),
            "a1591f88343a5c86c1baad2d275e627bc2defce5631e2b9f055eaec732d6779c"
        );
    }

    #[test]
    fn pan_and_secrets_do_not_print() {
        let pan = Pan::new("GR1601101250000000012300695");
        assert_eq!(format!("{pan:?}"), "Pan(…0695)");
        let secret = PanSecret::new("correct horse battery staple");
        let id = AccountId::derive(Suite::Modern, &secret, &pan);
        for shown in [format!("{secret:?}"), format!("{id:?}")] {
            assert!(!shown.contains("horse"), "{shown}");
            assert!(!shown.contains("a1591f88"), "{shown}");
        }
        assert_eq!(Pan::new("12").redacted(), "…12");
    }

    #[test]
    fn generated_pan_secrets_have_128_bits() {
        let a = PanSecret::generate();
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a, PanSecret::generate());
    }

    #[test]
    fn uid_is_sha256_prefix_of_spki() {
        // SHA-256("abc") begins ba7816bf8f01cfea414140de5dae2223.
        assert_eq!(
            Uid::from_spki_der(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223"
        );
    }

    #[test]
    fn parse_refuses_bad_hex() {
        for bad in [
            "",
            "00",
            "zz000000000000000000000000000000",
            &"0".repeat(34),
        ] {
            assert_eq!(
                bad.parse::<TxId>(),
                Err(ParseIdError {
                    kind: "TxId",
                    text: bad.to_owned()
                })
            );
        }
        let upper = "AA".repeat(16);
        assert_eq!(upper.parse::<Uid>(), Ok(Uid([0xaa; 16])));
    }

    proptest! {
        #[test]
        fn hex_round_trips(b in any::<[u8; 16]>()) {
            let id = ScripId(b);
            let text = id.to_string();
            prop_assert_eq!(text.len(), 32);
            prop_assert_eq!(text.parse::<ScripId>(), Ok(id));
            prop_assert_eq!(format!("{id:?}"), format!("ScripId({text})"));
        }
    }
}
