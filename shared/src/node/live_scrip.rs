//! The producer's lookup table of live scrip (protocol.md section 4).
//!
//! A row per scrip issued and not yet spent, renewed or lapsed: its body, its owner and its
//! state (`Live`, or `Held { tx, until }` while an escrow of 6.5 or 6.7 holds it). Removing
//! a row is "deleting the secrets" of the paper: a removed id never validates again, so a
//! scrip is spent at most once. The table is a projection of the node's log: `apply` changes
//! it, `decide` only reads it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{ScripId, TxId, Uid};
use crate::scrip::{ExpiryRule, Mint, Scrip, ScripBody, ScripError};

use super::{Refusal, TxBindings, TxKind};

/// The state of a live scrip (protocol.md section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScripState {
    /// Spendable by its owner.
    Live,
    /// Held by the escrow of `tx` (6.5, 6.7) until its settle or release event: refused with
    /// `Held` by every other request. `until` is the escrow's deadline, unix seconds; the
    /// hold does not end by itself when it passes (only an event ends it).
    Held {
        /// The transaction whose escrow holds the scrip.
        tx: TxId,
        /// That escrow's deadline.
        until: u64,
    },
}

/// One row of the live table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRecord {
    /// The body as issued (compared with the presented one: section 4, "body equals the
    /// live record").
    pub body: ScripBody,
    /// The customer the scrip was issued to; only they may present it.
    pub owner: Uid,
    /// Live or held.
    pub state: ScripState,
}

/// Why a presented scrip is refused (protocol.md section 4). The first four come from the
/// [`Mint`]; the rest from the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScripCheckError {
    /// Producer, certificate, CustomerSecret or expiry (the Mint's checks).
    #[error(transparent)]
    Mint(#[from] ScripError),
    /// The id is not in the table: spent, renewed, lapsed or never issued.
    #[error("scrip {0} is not live (spent or never issued)")]
    Spent(ScripId),
    /// The escrow of another transaction holds it.
    #[error("scrip {0} is held by an escrow")]
    Held(ScripId),
    /// The presented body differs from the recorded one.
    #[error("scrip {0} differs from the issued record")]
    BodyMismatch(ScripId),
    /// The presenter is not the recorded owner.
    #[error("scrip {0} is not owned by the presenter")]
    NotOwner(ScripId),
}

impl ScripCheckError {
    /// The wire code (protocol.md section 3).
    #[must_use]
    pub fn code(self) -> ErrorCode {
        match self {
            ScripCheckError::Mint(e) => e.code(),
            ScripCheckError::Spent(_) => ErrorCode::Spent,
            ScripCheckError::Held(_) => ErrorCode::Held,
            ScripCheckError::BodyMismatch(_) => ErrorCode::BodyMismatch,
            ScripCheckError::NotOwner(_) => ErrorCode::NotOwner,
        }
    }
}

impl From<ScripCheckError> for Refusal {
    fn from(e: ScripCheckError) -> Refusal {
        Refusal::new(e.code(), e.to_string())
    }
}

/// The tx of the lapse of the scrip `id` (protocol.md section 4): the scrip id itself, as
/// both producers name it (`broker::core::lapse`, `merchant::core::lapse`), so that an
/// auditor finds the lapse of scrip X under tx X.
#[must_use]
pub fn lapse_tx(id: ScripId) -> TxId {
    TxId(id.0)
}

impl ScripCheckError {
    /// The refusal of a presented scrip (section 4's checks failed with `self`): when the
    /// scrip lapsed (its lapse tx is bound in `bindings` as [`TxKind::Lapse`]) and the
    /// check that failed is one only its owner reaches (not live, expired, past its grace:
    /// after the certificate and CustomerSecret checks), `Lapsed`, saying where the value
    /// went. This is the customer's next contact after the lapse (docs/adr/0011); the wallet
    /// drops the scrip on it. Anyone else is refused as before and learns nothing.
    #[must_use]
    pub fn refusal(self, scrip: ScripId, bindings: &TxBindings) -> Refusal {
        let owner_reached = matches!(
            self,
            ScripCheckError::Spent(_)
                | ScripCheckError::Mint(ScripError::Expired | ScripError::GraceOver)
        );
        let lapsed = bindings
            .get(&lapse_tx(scrip))
            .is_some_and(|b| b.kind == TxKind::Lapse);
        if owner_reached && lapsed {
            Refusal::new(
                ErrorCode::Lapsed,
                format!(
                    "scrip {scrip} lapsed after its renewal grace period; its value went back \
                     to your bank account"
                ),
            )
        } else {
            Refusal::from(self)
        }
    }
}

/// The live table with an owner index (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveScrip {
    rows: BTreeMap<ScripId, LiveRecord>,
    by_owner: BTreeMap<Uid, BTreeSet<ScripId>>,
    /// The value of every row, in minor units, kept with each change so that a node checks
    /// its float against its live scrip per event without summing the table.
    value: u128,
}

impl LiveScrip {
    /// An empty table.
    #[must_use]
    pub fn new() -> LiveScrip {
        LiveScrip::default()
    }

    /// The row of `id`, if live.
    #[must_use]
    pub fn get(&self, id: &ScripId) -> Option<&LiveRecord> {
        self.rows.get(id)
    }

    /// Every row, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&ScripId, &LiveRecord)> {
        self.rows.iter()
    }

    /// The number of live (and held) scrip.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no scrip is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The value of every live (and held) scrip, in minor units: what the producer owes
    /// its holders (the broker's `float:broker`, a merchant's books, section 5).
    #[must_use]
    pub fn value(&self) -> u128 {
        self.value
    }

    /// The ids `owner` holds here, live or held, in id order. Section 4: a customer holds at
    /// most one live scrip per producer, so this is the check of 6.1 ("no live BrokerScrip,
    /// else top up") and the merchant's hint that a second VendorScrip needs merging.
    pub fn owned_by(&self, owner: &Uid) -> impl Iterator<Item = &ScripId> {
        self.by_owner.get(owner).into_iter().flatten()
    }

    /// Records a scrip just issued to `owner`, `Live`. Called by `apply` only; an id that is
    /// already live is an invariant violation (the Mint draws ids at random, `decide` checks
    /// freshness), and panics in debug builds.
    pub fn issue(&mut self, body: ScripBody, owner: Uid) {
        let id = body.scrip_id;
        let previous = self.rows.insert(
            id,
            LiveRecord {
                body,
                owner,
                state: ScripState::Live,
            },
        );
        debug_assert!(previous.is_none(), "scrip {id} issued twice");
        self.value += u128::from(body.value.minor());
        if let Some(previous) = previous {
            self.value -= u128::from(previous.body.value.minor());
            self.unindex(&previous.owner, &id);
        }
        self.by_owner.entry(owner).or_default().insert(id);
    }

    /// Removes `id` (spent, renewed or lapsed) and returns its row. From now on it never
    /// validates again.
    pub fn remove(&mut self, id: &ScripId) -> Option<LiveRecord> {
        let record = self.rows.remove(id)?;
        self.value -= u128::from(record.body.value.minor());
        self.unindex(&record.owner, id);
        Some(record)
    }

    /// Holds `id` for the escrow of `tx` until `until`. Returns whether the row existed and
    /// was `Live` (`decide` checked it; `apply` asserts it).
    pub fn hold(&mut self, id: &ScripId, tx: TxId, until: u64) -> bool {
        match self.rows.get_mut(id) {
            Some(row) if row.state == ScripState::Live => {
                row.state = ScripState::Held { tx, until };
                true
            }
            _ => false,
        }
    }

    /// Returns a scrip held by `tx` to `Live` (escrow released, nothing moved). Returns
    /// whether it was held by `tx`.
    pub fn release(&mut self, id: &ScripId, tx: TxId) -> bool {
        match self.rows.get_mut(id) {
            Some(row) if matches!(row.state, ScripState::Held { tx: t, .. } if t == tx) => {
                row.state = ScripState::Live;
                true
            }
            _ => false,
        }
    }

    /// Section 4's validation of a presented scrip, all of: produced by this Mint, its
    /// certificate, the presented CustomerSecret, its expiry under `expiry` at `now` (the
    /// Mint's checks, constant time); then in the table: live (else `Spent`), `Live` (else
    /// `Held`), body equal to the record, and `presenter` its owner.
    ///
    /// Why the Mint goes first: its checks need no table, and a forged scrip is told that
    /// it is forged rather than whether its id happens to be live.
    pub fn check_spendable(
        &self,
        scrip: &Scrip,
        presented_cs: &[u8],
        presenter: Uid,
        now: crate::time::UnixSecs,
        expiry: ExpiryRule,
        mint: &Mint,
    ) -> Result<&LiveRecord, ScripCheckError> {
        mint.validate(scrip, presented_cs, now, expiry)?;
        let id = scrip.id();
        let record = self.rows.get(&id).ok_or(ScripCheckError::Spent(id))?;
        if record.state != ScripState::Live {
            return Err(ScripCheckError::Held(id));
        }
        if record.body != scrip.body {
            return Err(ScripCheckError::BodyMismatch(id));
        }
        if record.owner != presenter {
            return Err(ScripCheckError::NotOwner(id));
        }
        Ok(record)
    }

    /// The row of `id` if the escrow of `tx` holds it: what the decision of that escrow
    /// (settle or release) checks, the one request a held scrip is not refused to (§4).
    pub fn held_by(&self, id: &ScripId, tx: TxId) -> Result<&LiveRecord, ScripCheckError> {
        let record = self.rows.get(id).ok_or(ScripCheckError::Spent(*id))?;
        match record.state {
            ScripState::Held { tx: t, .. } if t == tx => Ok(record),
            _ => Err(ScripCheckError::Held(*id)),
        }
    }

    fn unindex(&mut self, owner: &Uid, id: &ScripId) {
        if let Some(ids) = self.by_owner.get_mut(owner) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_owner.remove(owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::fixtures;
    use crate::suite::Suite;

    const NOW: u64 = 1_800_000_000;
    const EXPIRES: u64 = NOW + 1000;

    fn mint() -> Mint {
        Mint::new(Suite::Modern, Uid([0xbb; 16]), fixtures::root_key(7))
    }

    fn table_with(owner: Uid) -> (Mint, LiveScrip, Scrip, Vec<u8>) {
        let m = mint();
        let (scrip, cs) = m.issue(Amount::from_minor(500), EXPIRES);
        let mut t = LiveScrip::new();
        t.issue(scrip.body, owner);
        (m, t, scrip, cs.expose().to_vec())
    }

    #[test]
    fn a_live_scrip_of_its_owner_passes() {
        let owner = Uid([1; 16]);
        let (m, t, scrip, cs) = table_with(owner);
        let row = t
            .check_spendable(
                &scrip,
                &cs,
                owner,
                crate::time::UnixSecs::new(NOW),
                ExpiryRule::Strict,
                &m,
            )
            .unwrap();
        assert_eq!(row.owner, owner);
        assert_eq!(t.owned_by(&owner).collect::<Vec<_>>(), vec![&scrip.id()]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn each_refusal_has_its_code() {
        let owner = Uid([1; 16]);
        let (m, mut t, scrip, cs) = table_with(owner);
        let check = |t: &LiveScrip, s: &Scrip, cs: &[u8], who: Uid, now: u64| {
            t.check_spendable(
                s,
                cs,
                who,
                crate::time::UnixSecs::new(now),
                ExpiryRule::Strict,
                &m,
            )
            .map(|_| ())
            .map_err(ScripCheckError::code)
        };
        assert_eq!(
            check(&t, &scrip, &cs, Uid([2; 16]), NOW),
            Err(ErrorCode::NotOwner)
        );
        let mut bad_cs = cs.clone();
        bad_cs[0] ^= 1;
        assert_eq!(
            check(&t, &scrip, &bad_cs, owner, NOW),
            Err(ErrorCode::BadCustomerSecret)
        );
        let mut forged = scrip.clone();
        forged.certificate[0] ^= 1;
        assert_eq!(
            check(&t, &forged, &cs, owner, NOW),
            Err(ErrorCode::BadCertificate)
        );
        assert_eq!(
            check(&t, &scrip, &cs, owner, EXPIRES + 1),
            Err(ErrorCode::Expired)
        );
        let other = Mint::new(Suite::Modern, Uid([0xcc; 16]), fixtures::root_key(7));
        let (foreign, foreign_cs) = other.issue(Amount::from_minor(5), EXPIRES);
        assert_eq!(
            check(&t, &foreign, foreign_cs.expose(), owner, NOW),
            Err(ErrorCode::WrongProducer)
        );
        // A body the Mint certifies but the table recorded otherwise (e.g. another owner's
        // record under the same id cannot exist, so overwrite the record's expiry).
        let mut changed = t.clone();
        let mut body = scrip.body;
        body.expires += 1;
        changed.remove(&scrip.id());
        changed.issue(body, owner);
        assert_eq!(
            check(&changed, &scrip, &cs, owner, NOW),
            Err(ErrorCode::BodyMismatch)
        );

        let tx = TxId([9; 16]);
        assert!(t.hold(&scrip.id(), tx, NOW + 60));
        assert_eq!(check(&t, &scrip, &cs, owner, NOW), Err(ErrorCode::Held));
        assert!(!t.hold(&scrip.id(), TxId([8; 16]), NOW), "held twice");
        assert_eq!(t.held_by(&scrip.id(), tx).map(|r| r.owner), Ok(owner));
        assert_eq!(
            t.held_by(&scrip.id(), TxId([8; 16]))
                .map_err(ScripCheckError::code),
            Err(ErrorCode::Held)
        );
        assert!(!t.release(&scrip.id(), TxId([8; 16])));
        assert!(t.release(&scrip.id(), tx));
        assert_eq!(check(&t, &scrip, &cs, owner, NOW), Ok(()));

        assert_eq!(t.remove(&scrip.id()).map(|r| r.owner), Some(owner));
        assert_eq!(check(&t, &scrip, &cs, owner, NOW), Err(ErrorCode::Spent));
        assert_eq!(t.owned_by(&owner).count(), 0);
        assert!(t.is_empty());
        assert_eq!(t, LiveScrip::new(), "the owner index is emptied too");
    }

    #[test]
    fn renewal_accepts_an_expired_scrip_within_grace() {
        let owner = Uid([1; 16]);
        let (m, t, scrip, cs) = table_with(owner);
        let renewal = ExpiryRule::Renewal { grace_secs: 100 };
        assert!(
            t.check_spendable(
                &scrip,
                &cs,
                owner,
                crate::time::UnixSecs::new(EXPIRES + 100),
                renewal,
                &m
            )
            .is_ok()
        );
        assert_eq!(
            t.check_spendable(
                &scrip,
                &cs,
                owner,
                crate::time::UnixSecs::new(EXPIRES + 101),
                renewal,
                &m
            )
            .map_err(ScripCheckError::code)
            .map(|_| ()),
            Err(ErrorCode::GraceOver)
        );
    }

    #[test]
    fn the_owner_of_a_lapsed_scrip_is_told_and_nobody_else() {
        let id = ScripId([3; 16]);
        let mut bindings = TxBindings::default();
        let plain = ScripCheckError::Spent(id).refusal(id, &bindings);
        assert_eq!(plain, Refusal::from(ScripCheckError::Spent(id)));
        bindings.bind(
            lapse_tx(id),
            super::super::TxBinding {
                kind: TxKind::Lapse,
                initiator: Uid([1; 16]),
                counterparties: Vec::new(),
            },
        );
        for e in [
            ScripCheckError::Spent(id),
            ScripCheckError::Mint(ScripError::Expired),
            ScripCheckError::Mint(ScripError::GraceOver),
        ] {
            let told = e.refusal(id, &bindings);
            assert_eq!(told.code, ErrorCode::Lapsed);
            assert!(
                told.message
                    .contains("lapsed after its renewal grace period; its value went back"),
                "{told}"
            );
        }
        // A presenter that failed the certificate or CustomerSecret check learns nothing.
        for e in [
            ScripCheckError::Mint(ScripError::BadCertificate),
            ScripCheckError::Mint(ScripError::BadCustomerSecret),
            ScripCheckError::NotOwner(id),
        ] {
            assert_eq!(e.refusal(id, &bindings), Refusal::from(e));
        }
    }
}
