//! `RsaBackend`: which implementation performs a suite's RSA operations (docs/adr/0014).
//!
//! Why two: the modern suite's PSS and OAEP run on aws-lc-rs when `shared`'s `aws-lc`
//! feature is on (the default): constant time, FIPS-validated and several times faster
//! than the pure-Rust `rsa` crate on the same machine. `rsa` stays for the paper suite,
//! which aws-lc-rs cannot serve (it refuses keys under 2048 bits for signing and
//! decryption and has no SHA-1 PKCS#1 v1.5 signing), for key generation and the key file
//! formats, and as the pure-Rust build of the modern suite (feature off). The wire
//! algorithms are the same either way (protocol.md sections 2 and 3): a signature or a
//! wrapped key made by one backend is read by the other.
//!
//! The protocol never names a backend: [`crate::suite::KeyPair::sign`] and the other
//! operations use [`Suite::rsa_backend`]. The `*_with` variants that take one exist so
//! that the interoperability tests and the benchmark can drive both in one process.

use std::fmt;

use crate::suite::{CryptoError, Suite};

/// An implementation of the RSA operations of a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RsaBackend {
    /// The pure-Rust `rsa` crate: every suite, every build.
    RustCrypto,
    /// aws-lc-rs: the modern suite only, in builds with `shared`'s `aws-lc` feature.
    AwsLc,
}

impl RsaBackend {
    /// Both backends, whether or not this build has them (see [`RsaBackend::serves`]).
    pub const ALL: [RsaBackend; 2] = [RsaBackend::RustCrypto, RsaBackend::AwsLc];

    /// A short name for reports and benchmark labels: `rsa`, `aws-lc`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            RsaBackend::RustCrypto => "rsa",
            RsaBackend::AwsLc => "aws-lc",
        }
    }

    /// Whether this build can run `suite`'s RSA operations on this backend: `RustCrypto`
    /// always; `AwsLc` for the modern suite when built with the `aws-lc` feature.
    #[must_use]
    pub const fn serves(self, suite: Suite) -> bool {
        match (self, suite) {
            (RsaBackend::RustCrypto, _) => true,
            (RsaBackend::AwsLc, Suite::Modern) => cfg!(feature = "aws-lc"),
            (RsaBackend::AwsLc, Suite::Paper) => false,
        }
    }

    /// `Ok` if [`RsaBackend::serves`] `suite`, else the `Backend` error naming both.
    pub(super) fn check(self, suite: Suite) -> Result<(), CryptoError> {
        if self.serves(suite) {
            Ok(())
        } else {
            Err(CryptoError::Backend {
                backend: self,
                suite,
            })
        }
    }
}

impl fmt::Display for RsaBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Suite {
    /// The backend this build runs the suite's RSA operations on: aws-lc-rs for the
    /// modern suite when built with the `aws-lc` feature, the `rsa` crate otherwise
    /// (docs/adr/0014).
    #[must_use]
    pub const fn rsa_backend(self) -> RsaBackend {
        if RsaBackend::AwsLc.serves(self) {
            RsaBackend::AwsLc
        } else {
            RsaBackend::RustCrypto
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_is_always_rust_crypto() {
        assert_eq!(Suite::Paper.rsa_backend(), RsaBackend::RustCrypto);
        assert!(!RsaBackend::AwsLc.serves(Suite::Paper));
        assert_eq!(
            RsaBackend::AwsLc.check(Suite::Paper),
            Err(CryptoError::Backend {
                backend: RsaBackend::AwsLc,
                suite: Suite::Paper
            })
        );
        for suite in Suite::ALL {
            assert_eq!(RsaBackend::RustCrypto.check(suite), Ok(()));
        }
    }

    #[test]
    fn modern_follows_the_feature() {
        let expected = if cfg!(feature = "aws-lc") {
            RsaBackend::AwsLc
        } else {
            RsaBackend::RustCrypto
        };
        assert_eq!(Suite::Modern.rsa_backend(), expected);
        assert_eq!(
            RsaBackend::AwsLc.serves(Suite::Modern),
            cfg!(feature = "aws-lc")
        );
    }
}
