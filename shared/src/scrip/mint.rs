//! The producer's Mint (protocol.md section 4): issues certified scrip and checks the
//! cryptographic half of a scrip's validity.
//!
//! Why the Mint has no storage: the live table (which scrip ids are live, their owner,
//! their `Held` state) is a projection of the node's event log and lives in the node. The
//! Mint checks what needs only the root key and the clock: the producer, the certificate,
//! the CustomerSecret and the expiry. The node adds the rest of section 4's list (id live
//! and `Live`, body equal to the live record, presenter is the owner) before it spends.

use std::sync::Mutex;

use subtle::ConstantTimeEq;

use crate::amount::Amount;
use crate::error::ErrorCode;
use crate::ids::{CustId, IdSource, ScripId, Uid};
use crate::scrip::{CustomerSecret, RootKey, Scrip, ScripBody};
use crate::suite::Suite;
use crate::time::UnixSecs;

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
    /// Where the ids of issued scrip come from (the caller's, see [`Mint::with_ids`]).
    ids: Mutex<IdSource>,
}

impl Mint {
    /// A Mint for the producer `producer` (the broker's or a merchant's UID).
    #[must_use]
    pub fn new(suite: Suite, producer: Uid, root: RootKey) -> Mint {
        Mint {
            suite,
            producer,
            root,
            ids: Mutex::new(IdSource::from_os()),
        }
    }

    /// This Mint, drawing the ids of what it issues from `ids` instead of a source seeded
    /// from the operating system (the simulator's seeded runs).
    #[must_use]
    pub fn with_ids(mut self, ids: IdSource) -> Mint {
        self.set_ids(ids);
        self
    }

    /// [`Mint::with_ids`] on a Mint in place.
    pub fn set_ids(&mut self, ids: IdSource) {
        *self
            .ids
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = ids;
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

    /// Issues a scrip of `value` expiring at `expires` (unix seconds) with a fresh scrip id
    /// and cust id from the Mint's [`IdSource`], and returns it with its CustomerSecret
    /// (section 4). The caller records it in the live table and delivers the secret only
    /// sealed.
    #[must_use]
    pub fn issue(&self, value: Amount, expires: u64) -> (Scrip, CustomerSecret) {
        // A poisoned lock only means another issue panicked mid-draw; the stream is intact.
        let mut ids = self
            .ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (scrip_id, cust_id) = (ids.scrip_id(), ids.cust_id());
        drop(ids);
        self.issue_with_ids(value, expires, scrip_id, cust_id)
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
        now: UnixSecs,
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
fn check_expiry(body: &ScripBody, now: UnixSecs, expiry: ExpiryRule) -> Result<(), ScripError> {
    if !body.is_expired_at(now) {
        return Ok(());
    }
    match expiry {
        ExpiryRule::Strict => Err(ScripError::Expired),
        ExpiryRule::Renewal { grace_secs } => {
            if now.get() > body.expires.saturating_add(grace_secs) {
                Err(ScripError::GraceOver)
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use proptest::prelude::*;

    const EXPIRES: u64 = 1_767_225_600;
    const GRACE: u64 = 365 * 24 * 3600;

    fn mint(suite: Suite) -> Mint {
        Mint::new(suite, Uid([0xaa; 16]), fixtures::root_key(1))
    }

    /// The ids of what a Mint issues come from the source its caller gave it: the same
    /// seed issues the same scrip (the simulator's repeatable runs), another seed and the
    /// operating system's source other ones, and one source never repeats an id.
    #[test]
    fn issued_ids_come_from_the_callers_source() {
        let issue_two = |m: &Mint| {
            let (a, _) = m.issue(Amount::from_minor(5), EXPIRES);
            let (b, _) = m.issue(Amount::from_minor(5), EXPIRES);
            (a, b)
        };
        let seeded = |seed| mint(Suite::Modern).with_ids(IdSource::seeded(seed));
        let (a1, b1) = issue_two(&seeded(7));
        let (a2, b2) = issue_two(&seeded(7));
        assert_eq!((&a1, &b1), (&a2, &b2));
        assert_ne!(a1.id(), b1.id());
        assert_ne!(a1.body.cust_id, b1.body.cust_id);
        let (other, _) = issue_two(&seeded(8));
        assert_ne!(other.id(), a1.id());
        let (from_os, _) = issue_two(&mint(Suite::Modern));
        assert_ne!(from_os.id(), a1.id());
        // The same body and root key give the same certificate: replay holds.
        assert_eq!(
            mint(Suite::Modern)
                .issue_with_ids(Amount::from_minor(5), EXPIRES, a1.id(), a1.body.cust_id)
                .0,
            a1
        );
    }

    /// The whole chain of test-vectors.md through the Mint: root key, ids, body →
    /// certificate, CustomerSecret, cs_hash.
    #[test]
    fn issue_with_ids_reproduces_the_known_answers() {
        let root: Vec<u8> = (1..=0x20).collect();
        let kats = [
            (
                Suite::Paper,
                "2e665fb0d20a41762131364da66480c97c355cc5",
                "deca56193569664efa20c08019feff37029963ea",
                "99c123d90f6f49bf0661c65ce3f1a783b0ddae41",
            ),
            (
                Suite::Modern,
                "3558f415e26d9d14d8be7690f441bbbb17614277284126fe9025745d66fe7299",
                "020711b3ddb450f63171fa8e68f88cfdef83505cff9eff7645983725a0179693",
                "f6830d7c22402e8976cb149762f509208cca652568f14a8916aea8f796a82067",
            ),
        ];
        for (suite, cert, cs, cs_hash) in kats {
            let m = Mint::new(suite, Uid([0xaa; 16]), RootKey::from_bytes(&root).unwrap());
            let (scrip, secret) = m.issue_with_ids(
                Amount::from_minor(1234),
                EXPIRES,
                ScripId(std::array::from_fn(|i| i as u8)),
                CustId(std::array::from_fn(|i| 0x10 + i as u8)),
            );
            assert_eq!(hex::encode(&scrip.certificate), cert);
            assert_eq!(hex::encode(secret.expose()), cs);
            assert_eq!(hex::encode(secret.cs_hash(suite)), cs_hash);
            assert_eq!(m.customer_secret(&scrip.body), secret);
        }
    }

    #[test]
    fn issue_then_validate_ok() {
        for suite in Suite::ALL {
            let m = mint(suite);
            let (scrip, cs) = m.issue(Amount::from_minor(500), EXPIRES);
            assert_eq!(scrip.body.producer, m.producer());
            assert_eq!(scrip.value(), Amount::from_minor(500));
            assert_eq!(scrip.certificate.len(), suite.hash_len());
            assert_eq!(cs.expose().len(), suite.hash_len());
            for now in [0, EXPIRES - 1, EXPIRES] {
                assert_eq!(
                    m.validate(
                        &scrip,
                        cs.expose(),
                        crate::time::UnixSecs::new(now),
                        ExpiryRule::Strict
                    ),
                    Ok(())
                );
            }
            // Fresh ids every time.
            let (other, other_cs) = m.issue(Amount::from_minor(500), EXPIRES);
            assert_ne!(other.body.scrip_id, scrip.body.scrip_id);
            assert_ne!(other.body.cust_id, scrip.body.cust_id);
            assert_ne!(other_cs, cs);
        }
    }

    #[test]
    fn each_failure_has_its_own_error() {
        for suite in Suite::ALL {
            let m = mint(suite);
            let (scrip, cs) = m.issue(Amount::from_minor(500), EXPIRES);
            let cs = cs.expose();
            let now = EXPIRES - 10;

            let mut bad_cert = scrip.clone();
            bad_cert.certificate[0] ^= 1;
            assert_eq!(
                m.validate(
                    &bad_cert,
                    cs,
                    crate::time::UnixSecs::new(now),
                    ExpiryRule::Strict
                ),
                Err(ScripError::BadCertificate)
            );
            let mut short_cert = scrip.clone();
            short_cert.certificate.pop();
            assert_eq!(
                m.validate(
                    &short_cert,
                    cs,
                    crate::time::UnixSecs::new(now),
                    ExpiryRule::Strict
                ),
                Err(ScripError::BadCertificate)
            );
            // Another producer's root key under the same UID: the certificate fails.
            let impostor = Mint::new(suite, m.producer(), fixtures::root_key(2));
            assert_eq!(
                impostor.validate(
                    &scrip,
                    cs,
                    crate::time::UnixSecs::new(now),
                    ExpiryRule::Strict
                ),
                Err(ScripError::BadCertificate)
            );

            let mut wrong_cs = cs.to_vec();
            wrong_cs[3] ^= 0x80;
            assert_eq!(
                m.validate(
                    &scrip,
                    &wrong_cs,
                    crate::time::UnixSecs::new(now),
                    ExpiryRule::Strict
                ),
                Err(ScripError::BadCustomerSecret)
            );
            assert_eq!(
                m.validate(
                    &scrip,
                    &cs[1..],
                    crate::time::UnixSecs::new(now),
                    ExpiryRule::Strict
                ),
                Err(ScripError::BadCustomerSecret)
            );

            let other_producer = Mint::new(suite, Uid([0xbb; 16]), fixtures::root_key(1));
            assert_eq!(
                other_producer.validate(
                    &scrip,
                    cs,
                    crate::time::UnixSecs::new(now),
                    ExpiryRule::Strict
                ),
                Err(ScripError::WrongProducer)
            );

            let late = EXPIRES + 1;
            assert_eq!(
                m.validate(
                    &scrip,
                    cs,
                    crate::time::UnixSecs::new(late),
                    ExpiryRule::Strict
                ),
                Err(ScripError::Expired)
            );
            let renewal = ExpiryRule::Renewal { grace_secs: GRACE };
            assert_eq!(
                m.validate(&scrip, cs, crate::time::UnixSecs::new(late), renewal),
                Ok(())
            );
            assert_eq!(
                m.validate(
                    &scrip,
                    cs,
                    crate::time::UnixSecs::new(EXPIRES + GRACE),
                    renewal
                ),
                Ok(())
            );
            assert_eq!(
                m.validate(
                    &scrip,
                    cs,
                    crate::time::UnixSecs::new(EXPIRES + GRACE + 1),
                    renewal
                ),
                Err(ScripError::GraceOver)
            );
            // Renewal of an unexpired scrip passes the Mint (early renewal is node policy).
            assert_eq!(
                m.validate(&scrip, cs, crate::time::UnixSecs::new(now), renewal),
                Ok(())
            );
        }
    }

    /// Checks run in the documented order: producer, certificate, secret, expiry.
    #[test]
    fn first_failing_check_is_reported() {
        let m = mint(Suite::Modern);
        let (scrip, _) = m.issue(Amount::from_minor(1), EXPIRES);
        let late = EXPIRES + 1;
        assert_eq!(
            m.validate(
                &scrip,
                b"wrong",
                crate::time::UnixSecs::new(late),
                ExpiryRule::Strict
            ),
            Err(ScripError::BadCustomerSecret)
        );
        let mut bad = scrip.clone();
        bad.certificate[0] ^= 1;
        assert_eq!(
            m.validate(
                &bad,
                b"wrong",
                crate::time::UnixSecs::new(late),
                ExpiryRule::Strict
            ),
            Err(ScripError::BadCertificate)
        );
        bad.body.producer = Uid([0; 16]);
        assert_eq!(
            m.validate(
                &bad,
                b"wrong",
                crate::time::UnixSecs::new(late),
                ExpiryRule::Strict
            ),
            Err(ScripError::WrongProducer)
        );
    }

    #[test]
    fn grace_that_overflows_never_ends() {
        let m = mint(Suite::Paper);
        let (scrip, cs) = m.issue(Amount::from_minor(1), u64::MAX - 5);
        assert_eq!(
            m.validate(
                &scrip,
                cs.expose(),
                crate::time::UnixSecs::new(u64::MAX),
                ExpiryRule::Renewal { grace_secs: 10 }
            ),
            Ok(())
        );
        assert_eq!(
            m.validate(
                &scrip,
                cs.expose(),
                crate::time::UnixSecs::new(u64::MAX),
                ExpiryRule::Strict
            ),
            Err(ScripError::Expired)
        );
    }

    #[test]
    fn errors_map_to_their_wire_codes() {
        let cases = [
            (ScripError::WrongProducer, ErrorCode::WrongProducer),
            (ScripError::BadCertificate, ErrorCode::BadCertificate),
            (ScripError::BadCustomerSecret, ErrorCode::BadCustomerSecret),
            (ScripError::Expired, ErrorCode::Expired),
            (ScripError::GraceOver, ErrorCode::GraceOver),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code);
            assert_eq!(ErrorCode::from(e), code);
        }
    }

    #[test]
    fn debug_of_a_mint_hides_its_root_key() {
        let m = mint(Suite::Modern);
        let shown = format!("{m:?}");
        assert!(shown.contains("RootKey(<redacted>)"), "{shown}");
        assert!(!shown.contains(&hex::encode(&fixtures::root_key(1).expose()[..4])));
    }

    proptest! {
        /// Any change to any field of the body invalidates the certificate (it covers
        /// all 64 canonical bytes), whatever the suite.
        #[test]
        fn tampered_body_is_bad_certificate(
            modern in any::<bool>(),
            field in 0usize..4,
            delta in 1u64..u64::MAX,
            byte in 0usize..16,
        ) {
            let suite = if modern { Suite::Modern } else { Suite::Paper };
            let m = mint(suite);
            let (scrip, cs) = m.issue(Amount::from_minor(1_000), EXPIRES);
            let mut bad = scrip.clone();
            match field {
                0 => bad.body.value = Amount::from_minor(1_000u64.wrapping_add(delta)),
                1 => bad.body.scrip_id.0[byte] ^= delta.to_be_bytes()[byte % 8] | 1,
                2 => bad.body.cust_id.0[byte] ^= delta.to_be_bytes()[byte % 8] | 1,
                _ => bad.body.expires = EXPIRES.wrapping_add(delta),
            }
            prop_assert_ne!(bad.body, scrip.body);
            // A changed cust_id changes the secret too, but the certificate fails first.
            prop_assert_eq!(
                m.validate(&bad, cs.expose(), crate::time::UnixSecs::new(0), ExpiryRule::Renewal { grace_secs: u64::MAX }),
                Err(ScripError::BadCertificate)
            );
        }
    }
}
