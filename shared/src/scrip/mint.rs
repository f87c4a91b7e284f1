//! The producer's Mint (protocol.md section 4): issues certified scrip and checks the
//! cryptographic half of a scrip's validity.
//!
//! Why the Mint has no storage: the live table (which scrip ids are live, their owner,
//! their `Held` state) is a projection of the node's event log and lives in the node. The
//! Mint checks what needs only the root key and the clock: the producer, the certificate,
//! the CustomerSecret and the expiry. The node adds the rest of section 4's list (id live
//! and `Live`, body equal to the live record, presenter is the owner) before it spends.

use subtle::ConstantTimeEq;

use crate::amount::Amount;
use crate::error::ErrorCode;
use crate::ids::{CustId, ScripId, Uid};
use crate::scrip::{CustomerSecret, RootKey, Scrip, ScripBody};
use crate::suite::Suite;

/// Why the Mint refused a scrip (protocol.md section 4). The checks run in the order of
/// the variants and the first failure is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScripError {
    /// `body.producer` is not this producer: only the producer named in a scrip accepts it
    /// (the "faulty scrip" defence, section 4).
    #[error("scrip was produced by another node")]
    WrongProducer,
    /// The certificate does not match the body under this producer's root key (§4).
    #[error("scrip certificate does not match")]
    BadCertificate,
    /// The presented CustomerSecret is not the scrip's (§4).
    #[error("customer secret does not match")]
    BadCustomerSecret,
    /// The scrip has expired and the request is not a renewal (§4: refused everywhere but
    /// renewal, §6.8).
    #[error("scrip has expired")]
    Expired,
    /// The scrip expired longer ago than the renewal grace period (§4, §6.8).
    #[error("scrip expired beyond the renewal grace period")]
    GraceOver,
}

impl ScripError {
    /// The wire code of this refusal (protocol.md section 3).
    #[must_use]
    pub fn code(self) -> ErrorCode {
        ErrorCode::from(self)
    }
}

impl From<ScripError> for ErrorCode {
    fn from(e: ScripError) -> ErrorCode {
        match e {
            ScripError::WrongProducer => ErrorCode::WrongProducer,
            ScripError::BadCertificate => ErrorCode::BadCertificate,
            ScripError::BadCustomerSecret => ErrorCode::BadCustomerSecret,
            ScripError::Expired => ErrorCode::Expired,
            ScripError::GraceOver => ErrorCode::GraceOver,
        }
    }
}

/// How expiry is judged (protocol.md sections 4 and 6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryRule {
    /// Every request but renewal: an expired scrip is refused with `Expired`.
    Strict,
    /// Renewal (6.8): a scrip is accepted up to and including `expires + grace_secs`
    /// (default one year, configurable), then refused with `GraceOver`. An unexpired
    /// scrip passes too; whether renewing it early is allowed is the node's policy.
    Renewal {
        /// Seconds after expiry during which renewal stays open.
        grace_secs: u64,
    },
}

/// A producer's Mint: its suite, its UID and its root key (protocol.md section 4).
#[derive(Debug)]
pub struct Mint {
    suite: Suite,
    producer: Uid,
    root: RootKey,
}

impl Mint {
    /// A Mint for the producer `producer` (the broker's or a merchant's UID).
    #[must_use]
    pub fn new(suite: Suite, producer: Uid, root: RootKey) -> Mint {
        Mint {
            suite,
            producer,
            root,
        }
    }

    /// The suite of the certificates and CustomerSecrets this Mint makes.
    #[must_use]
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The producer UID this Mint certifies as.
    #[must_use]
    pub fn producer(&self) -> Uid {
        self.producer
    }

    /// Issues a scrip of `value` expiring at `expires` (unix seconds) with a fresh random
    /// scrip id and cust id, and returns it with its CustomerSecret (section 4). The
    /// caller records it in the live table and delivers the secret only sealed.
    #[must_use]
    pub fn issue(&self, value: Amount, expires: u64) -> (Scrip, CustomerSecret) {
        self.issue_with_ids(value, expires, ScripId::random(), CustId::random())
    }

    /// Issues a scrip with the given ids. Deterministic: replaying an issuance event
    /// (which holds the body, never the secret) gives the same certificate and secret.
    #[must_use]
    pub fn issue_with_ids(
        &self,
        value: Amount,
        expires: u64,
        scrip_id: ScripId,
        cust_id: CustId,
    ) -> (Scrip, CustomerSecret) {
        let body = ScripBody {
            producer: self.producer,
            value,
            scrip_id,
            cust_id,
            expires,
        };
        let scrip = Scrip {
            body,
            certificate: self.certificate(&body),
        };
        (scrip, self.customer_secret(&body))
    }

    /// The certificate this Mint gives `body` (protocol.md section 2).
    #[must_use]
    pub fn certificate(&self, body: &ScripBody) -> Vec<u8> {
        let master = self.root.master_scrip_secret(&body.scrip_id);
        self.suite
            .scrip_certificate(&master, &body.canonical_bytes())
    }

    /// The CustomerSecret of `body` (protocol.md section 2), e.g. to re-deliver it.
    #[must_use]
    pub fn customer_secret(&self, body: &ScripBody) -> CustomerSecret {
        let master = self.root.master_customer_secret(&body.cust_id);
        self.suite.customer_secret(&master, &body.cust_id)
    }

    /// Checks, in order: the producer is this Mint's; the certificate matches (constant
    /// time); `presented_cs` is the scrip's CustomerSecret (constant time); the expiry under
    /// `expiry` at `now` (unix seconds). Protocol.md section 4; the node checks the live
    /// table, the owner and the recorded body itself.
    pub fn validate(
        &self,
        scrip: &Scrip,
        presented_cs: &[u8],
        now: u64,
        expiry: ExpiryRule,
    ) -> Result<(), ScripError> {
        let body = &scrip.body;
        if body.producer != self.producer {
            return Err(ScripError::WrongProducer);
        }
        let expected = self.certificate(body);
        if !bool::from(expected.as_slice().ct_eq(scrip.certificate.as_slice())) {
            return Err(ScripError::BadCertificate);
        }
        if !self.customer_secret(body).matches(presented_cs) {
            return Err(ScripError::BadCustomerSecret);
        }
        check_expiry(body, now, expiry)
    }
}

/// The expiry half of validation (protocol.md sections 4 and 6.8). A scrip is valid up to
/// and including its `expires` second; renewal stays open up to and including
/// `expires + grace` (saturating: a grace that overflows never ends).
fn check_expiry(body: &ScripBody, now: u64, expiry: ExpiryRule) -> Result<(), ScripError> {
    if !body.is_expired_at(now) {
        return Ok(());
    }
    match expiry {
        ExpiryRule::Strict => Err(ScripError::Expired),
        ExpiryRule::Renewal { grace_secs } => {
            if now > body.expires.saturating_add(grace_secs) {
                Err(ScripError::GraceOver)
            } else {
                Ok(())
            }
        }
    }
}
