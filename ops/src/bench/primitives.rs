//! The RSA primitives of one suite measured on this machine, one thread at a time, and the
//! bounds of the nodes computed from them as `docs/protocol.md` 6.3 costs a purchase: the
//! broker two signature verifications (the customer's `PurchaseInitiated` and the
//! merchant's `PurchaseCompleted`), the merchant one unwrap and one verification of the
//! customer's sealed request, two signatures (its response and its report) and one wrap
//! (sealing the response).
//!
//! The primitives run on the backend the build gives the suite (`Suite::rsa_backend`:
//! aws-lc-rs for the modern suite by default, docs/adr/0014); [`measure_on`] times them on
//! another, so that the report shows both backends side by side.

use std::hint::black_box;
use std::time::{Duration, Instant};

use shared::{KeyPair, RsaBackend, SessionKey, Suite};

use super::BenchError;

/// The rate of each primitive on one core, in operations per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    /// `Sign_K(X)` (protocol.md section 2).
    pub sign: f64,
    /// Its verification.
    pub verify: f64,
    /// `PKEnc_K(k)`: a session key wrapped (sealing a part).
    pub wrap: f64,
    /// Its unwrap (opening a sealed part): a private-key operation.
    pub unwrap: f64,
}

impl Rates {
    /// The broker's bound in 6.3, purchases/s: every core verifying, two verifications a
    /// purchase (6.3 steps 1 and 5; its replies are unsigned, ADR 0008).
    #[must_use]
    pub fn broker_bound(&self, cores: usize) -> f64 {
        cores as f64 * self.verify / 2.0
    }

    /// The broker's bound in 6.2, exchanges/s: every core doing, for each exchange's step 3
    /// (the merchant's relay), the two unwraps of M's and C's sealed parts, the four
    /// verifications of their signatures and `IdProof`s, and the signature and wrap of
    /// each of its two answers (the response to M, the `ChangeBrokerScrip` to C).
    #[must_use]
    pub fn exchange_bound(&self, cores: usize) -> f64 {
        let per_exchange =
            2.0 / self.unwrap + 4.0 / self.verify + 2.0 / self.sign + 2.0 / self.wrap;
        cores as f64 / per_exchange
    }

    /// The merchant's bound in 6.3, purchases/s: every core doing, for each purchase, the
    /// unwrap and verification of the request (step 2), the signatures of the response
    /// (step 4) and of the report (step 5) and the wrap that seals the response.
    #[must_use]
    pub fn merchant_bound(&self, cores: usize) -> f64 {
        let per_purchase =
            1.0 / self.unwrap + 1.0 / self.verify + 2.0 / self.sign + 1.0 / self.wrap;
        cores as f64 / per_purchase
    }
}

/// Runs `op` until `at_least` has passed (and at least three times); its rate per second.
fn rate(
    at_least: Duration,
    mut op: impl FnMut() -> Result<(), BenchError>,
) -> Result<f64, BenchError> {
    let start = Instant::now();
    let mut n: u32 = 0;
    while n < 3 || start.elapsed() < at_least {
        op()?;
        n += 1;
    }
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

/// Measures the four primitives with `keys` (a key of `suite`'s size), each for about
/// `each` on the calling thread, on the suite's backend in this build.
///
/// # Errors
/// A primitive that failed ([`BenchError::Crypto`]).
pub fn measure(keys: &KeyPair, each: Duration) -> Result<Rates, BenchError> {
    measure_on(keys, keys.suite().rsa_backend(), each)
}

/// [`measure`] on `backend`, which must serve the key's suite in this build
/// ([`RsaBackend::serves`]; else [`BenchError::Crypto`] with `Backend`).
///
/// # Errors
/// A primitive that failed ([`BenchError::Crypto`]).
pub fn measure_on(
    keys: &KeyPair,
    backend: RsaBackend,
    each: Duration,
) -> Result<Rates, BenchError> {
    let suite: Suite = keys.suite();
    // A message the size of a typical signature input (a header and a small body).
    let msg = [0x5a_u8; 160];
    let sig = keys.sign_with(backend, &msg)?;
    let key = SessionKey::generate(suite);
    let wrapped = keys.public().wrap_key_with(backend, &key)?;
    Ok(Rates {
        sign: rate(each, || {
            black_box(keys.sign_with(backend, black_box(&msg))?);
            Ok(())
        })?,
        verify: rate(each, || {
            keys.public()
                .verify_with(backend, black_box(&msg), black_box(&sig))?;
            Ok(())
        })?,
        wrap: rate(each, || {
            black_box(keys.public().wrap_key_with(backend, black_box(&key))?);
            Ok(())
        })?,
        unwrap: rate(each, || {
            black_box(keys.unwrap_key_with(backend, black_box(&wrapped))?);
            Ok(())
        })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_follow_the_cost_of_a_purchase() {
        let r = Rates {
            sign: 100.0,
            verify: 1000.0,
            wrap: 1000.0,
            unwrap: 100.0,
        };
        assert!((r.broker_bound(2) - 1000.0).abs() < 1e-9);
        // 1/100 + 1/1000 + 2/100 + 1/1000 = 0.032 s a purchase on one core.
        assert!((r.merchant_bound(2) - 2.0 / 0.032).abs() < 1e-9);
        // 2/100 + 4/1000 + 2/100 + 2/1000 = 0.046 s an exchange on one core.
        assert!((r.exchange_bound(2) - 2.0 / 0.046).abs() < 1e-9);
    }
}
