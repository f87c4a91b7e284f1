//! Cryptographic suites (protocol.md section 2): every primitive the protocol uses, behind
//! one interface selected by [`Suite`].
//!
//! `paper` is exactly the paper (SHA-1, RSA-1024 PKCS#1 v1.5, AES-192-CBC, secret-suffix
//! certificates); `modern` (the default) is SHA-256, RSA-2048 PSS/OAEP, AES-256-GCM and
//! HMAC-SHA256. Callers never name an algorithm: they ask the suite.
//!
//! Submodules, one concept each: `error` ([`CryptoError`]), `keys` ([`KeyPair`],
//! [`PublicKey`], size rules, PEM), `backend` ([`RsaBackend`]: `rsa` or aws-lc-rs, and
//! `awslc`, the latter's side), `sign` (`Sign_K`), `wrap` ([`SessionKey`],
//! `PKEnc_K`), `envelope` (`Enc_k`: [`Suite::seal`], [`Suite::open`]), `mac` (scrip
//! certificates and CustomerSecrets: [`Suite::scrip_certificate`],
//! [`Suite::customer_secret`]), `op_count` ([`OpCount`]: the RSA operations a thread did).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};

#[cfg(feature = "aws-lc")]
mod awslc;
mod backend;
mod envelope;
mod error;
mod keys;
pub(crate) mod mac;
mod op_count;
mod sign;
mod wrap;

pub use backend::RsaBackend;
pub use error::CryptoError;
pub use keys::{KeyPair, PublicKey};
pub use op_count::OpCount;
pub use wrap::SessionKey;

/// The cryptographic suite of a deployment, and of every frame (protocol.md section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Suite {
    /// Exactly the paper: SHA-1, RSA-1024 PKCS#1 v1.5, AES-192-CBC.
    Paper,
    /// The default: SHA-256, RSA-2048 PSS and OAEP, AES-256-GCM, HMAC-SHA256.
    #[default]
    Modern,
}

/// The paper suite's warning ([`Suite::open_network_warning`]).
pub const PAPER_SUITE_WARNING: &str = "this deployment uses the paper suite: RSA-1024 keys, \
    SHA-1 signatures and PKCS#1 v1.5 key wrapping, open to the Marvin timing attack \
    (RUSTSEC-2023-0071, no patched rsa version); for study only, not for a network you do not \
    trust: use the modern suite";

/// A suite name or code that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown suite {0:?}: expected \"paper\" or \"modern\"")]
pub struct UnknownSuite(pub String);

impl Suite {
    /// Both suites, for tests and tools that exercise each.
    pub const ALL: [Suite; 2] = [Suite::Paper, Suite::Modern];

    /// The suite byte of `HeaderBytes` (protocol.md section 3): paper 1, modern 2.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Suite::Paper => 1,
            Suite::Modern => 2,
        }
    }

    /// The suite with this `HeaderBytes` code.
    pub fn from_code(code: u8) -> Result<Suite, UnknownSuite> {
        match code {
            1 => Ok(Suite::Paper),
            2 => Ok(Suite::Modern),
            other => Err(UnknownSuite(other.to_string())),
        }
    }

    /// The lowercase name used in configuration and on the command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Paper => "paper",
            Suite::Modern => "modern",
        }
    }

    /// What a program serving or using this suite over a network should warn of at start,
    /// in one line; `None` for the modern suite. The paper suite is the paper's 1990s
    /// cryptography, kept for fidelity and study: RSA-1024 keys, SHA-1 signatures and
    /// PKCS#1 v1.5 key wrapping, which the broker undoes on strangers' registration frames
    /// before it knows who sent them, the very oracle the Marvin timing attack measures
    /// (RUSTSEC-2023-0071 in the `rsa` crate, with no patched version).
    #[must_use]
    pub const fn open_network_warning(self) -> Option<&'static str> {
        match self {
            Suite::Paper => Some(PAPER_SUITE_WARNING),
            Suite::Modern => None,
        }
    }

    /// Output length of the suite hash `H` in bytes (SHA-1 20, SHA-256 32).
    #[must_use]
    pub const fn hash_len(self) -> usize {
        match self {
            Suite::Paper => 20,
            Suite::Modern => 32,
        }
    }

    /// The suite hash `H` over the concatenation of `parts` (protocol.md section 2).
    #[must_use]
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Suite::Paper => digest_parts::<Sha1>(parts),
            Suite::Modern => digest_parts::<Sha256>(parts),
        }
    }
}

fn digest_parts<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().to_vec()
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Suite {
    type Err = UnknownSuite;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "paper" => Ok(Suite::Paper),
            "modern" => Ok(Suite::Modern),
            other => Err(UnknownSuite(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for s in Suite::ALL {
            assert_eq!(Suite::from_code(s.code()), Ok(s));
            assert_eq!(s.name().parse::<Suite>(), Ok(s));
            assert_eq!(s.hash(&[b"x"]).len(), s.hash_len());
        }
        assert_eq!(Suite::Paper.code(), 1);
        assert_eq!(Suite::Modern.code(), 2);
        assert!(Suite::from_code(3).is_err());
        assert!("Modern".parse::<Suite>().is_err());
    }

    #[test]
    fn hash_concatenates_parts() {
        for s in Suite::ALL {
            assert_eq!(s.hash(&[b"ab", b"c"]), s.hash(&[b"abc"]));
        }
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hex::encode(Suite::Modern.hash(&[b"abc"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // SHA-1("abc"), FIPS 180-2 appendix A.1.
        assert_eq!(
            hex::encode(Suite::Paper.hash(&[b"abc"])),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
