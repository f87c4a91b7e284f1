//! Test fixtures: RSA key pairs and root keys for tests across the workspace, and a
//! replica that records what a log commits ([`RecordingReplica`]).
//!
//! **TEST ONLY: these private keys are public** (they are checked in under
//! `shared/testdata/keys/`); never use them outside tests. This module is compiled only
//! for `shared`'s own tests and with the `fixtures` feature, which other crates enable in
//! their `[dev-dependencies]` only.
//!
//! Why fixtures: RSA key generation takes from tens of milliseconds to seconds, too slow to
//! do per test. Each key is parsed once per test binary, on first use, and shared.
//!
//! Functions here panic on a bad index: they are test support, and a panic is the clearest
//! report of a test that asks for a key that does not exist.

use std::sync::OnceLock;

use crate::scrip::RootKey;
use crate::suite::{KeyPair, Suite};

/// How many fixture key pairs each suite has (indexes `0..COUNT`).
pub const COUNT: usize = 6;

const PAPER_PEM: [&str; COUNT] = [
    include_str!("../testdata/keys/paper-0.pem"),
    include_str!("../testdata/keys/paper-1.pem"),
    include_str!("../testdata/keys/paper-2.pem"),
    include_str!("../testdata/keys/paper-3.pem"),
    include_str!("../testdata/keys/paper-4.pem"),
    include_str!("../testdata/keys/paper-5.pem"),
];

const MODERN_PEM: [&str; COUNT] = [
    include_str!("../testdata/keys/modern-0.pem"),
    include_str!("../testdata/keys/modern-1.pem"),
    include_str!("../testdata/keys/modern-2.pem"),
    include_str!("../testdata/keys/modern-3.pem"),
    include_str!("../testdata/keys/modern-4.pem"),
    include_str!("../testdata/keys/modern-5.pem"),
];

static PAPER: [OnceLock<KeyPair>; COUNT] = [const { OnceLock::new() }; COUNT];
static MODERN: [OnceLock<KeyPair>; COUNT] = [const { OnceLock::new() }; COUNT];

/// The unencrypted PKCS#8 PEM of fixture key `index` of `suite` (RSA 1024 for paper, 2048
/// for modern), e.g. to write a node's key file in a test. Panics if `index >= COUNT`.
#[must_use]
pub fn keypair_pem(suite: Suite, index: usize) -> &'static str {
    assert!(index < COUNT, "fixture key index {index} out of 0..{COUNT}");
    match suite {
        Suite::Paper => PAPER_PEM[index],
        Suite::Modern => MODERN_PEM[index],
    }
}

/// Fixture key pair `index` of `suite`, parsed once per process. Different indexes are
/// different keys (and different UIDs). Panics if `index >= COUNT`.
#[must_use]
pub fn keypair(suite: Suite, index: usize) -> &'static KeyPair {
    let cells = match suite {
        Suite::Paper => &PAPER,
        Suite::Modern => &MODERN,
    };
    let pem = keypair_pem(suite, index);
    cells[index].get_or_init(|| {
        KeyPair::from_pkcs8_pem(suite, pem, None)
            .unwrap_or_else(|e| panic!("fixture key {suite}-{index} does not load: {e}"))
    })
}

/// A deterministic root key for tests: `SHA-256("peerscrip/fixtures/root-key" ‖ n)`, with
/// `n` as u64 big-endian. Different `n`, different keys.
#[must_use]
pub fn root_key(n: u64) -> RootKey {
    let bytes = Suite::Modern.hash(&[b"peerscrip/fixtures/root-key", &n.to_be_bytes()]);
    RootKey::from_bytes(&bytes).unwrap_or_else(|e| panic!("a SHA-256 digest is a root key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn fixture_keys_have_the_suite_sizes_and_distinct_uids() {
        let mut uids = HashSet::new();
        for suite in Suite::ALL {
            for i in 0..COUNT {
                let k = keypair(suite, i);
                assert_eq!(k.suite(), suite);
                let expected = match suite {
                    Suite::Paper => 1024,
                    Suite::Modern => 2048,
                };
                assert_eq!(k.public().bits(), expected, "{suite}-{i}");
                assert!(uids.insert(k.uid()), "duplicate fixture key {suite}-{i}");
                // Parsed once: the same reference every time.
                assert!(std::ptr::eq(k, keypair(suite, i)));
            }
        }
    }

    #[test]
    fn root_keys_are_deterministic_and_distinct() {
        assert_eq!(root_key(1), root_key(1));
        assert_ne!(root_key(1), root_key(2));
        assert_eq!(
            hex::encode(root_key(0).expose()),
            hex::encode(Suite::Modern.hash(&[b"peerscrip/fixtures/root-key", &[0u8; 8]]))
        );
    }

    #[test]
    #[should_panic(expected = "fixture key index 6 out of 0..6")]
    fn index_out_of_range_panics() {
        let _ = keypair(Suite::Modern, COUNT);
    }
}

/// A stored event of `kind` at `seq` in `tx`, at `seq` seconds, with no postings, memos or
/// evidence and no chain: what a test of a node's fold feeds it, event by event.
#[must_use]
pub fn event<K>(seq: u64, tx: crate::TxId, kind: K) -> crate::events::Event<K> {
    crate::events::Event {
        seq,
        time: crate::UnixSecs::new(seq).to_millis(),
        tx,
        prev_hash: crate::events::GENESIS_PREV_HASH,
        postings: Vec::new(),
        memos: Vec::new(),
        evidence: Vec::new(),
        kind,
    }
}

/// A projection with no tables: to write, through the log API and with a valid chain, a
/// log whose events a node's own fold refuses (a forged or out-of-order log, which an
/// auditor or a node's open must then refuse).
#[derive(Debug)]
pub struct NoTables;

impl<K> crate::events::Projection<K> for NoTables {
    fn tables(&self) -> Vec<&dyn crate::events::ProjectionTable> {
        Vec::new()
    }

    fn apply(
        &self,
        _: &redb::WriteTransaction,
        _: &crate::events::Event<K>,
    ) -> Result<(), crate::events::ProjectionError> {
        Ok(())
    }
}

/// A [`Replica`](crate::events::Replica) that keeps every row it is given, in memory, and
/// refuses once told to ([`RecordingReplica::refuse_with`]), then for good, as a fenced
/// replica does (docs/adr/0017): the stand-in for the replicated log in the tests of the
/// log's replica hook and of a broker following it.
#[derive(Debug, Default)]
pub struct RecordingReplica {
    rows: std::sync::Mutex<Vec<crate::events::ReplicaRow>>,
    refusal: std::sync::Mutex<Option<String>>,
    fenced: std::sync::Mutex<Option<String>>,
}

impl RecordingReplica {
    /// Every row taken so far, in order.
    ///
    /// # Panics
    /// If a test thread panicked while holding the lock.
    #[must_use]
    pub fn rows(&self) -> Vec<crate::events::ReplicaRow> {
        self.rows.lock().expect("the rows").clone()
    }

    /// From now on, refuses the next commit with `reason`, and then everything (fenced);
    /// `None` lifts the refusal of commits not yet refused (a fence stays).
    ///
    /// # Panics
    /// If a test thread panicked while holding the lock.
    pub fn refuse_with(&self, reason: Option<&str>) {
        *self.refusal.lock().expect("the refusal") = reason.map(str::to_owned);
    }
}

impl crate::events::Replica for RecordingReplica {
    fn writable(&self) -> Result<(), crate::events::ReplicaError> {
        match &*self.fenced.lock().expect("the fence") {
            Some(reason) => Err(crate::events::ReplicaError(reason.clone())),
            None => Ok(()),
        }
    }

    fn replicate(
        &self,
        rows: &[crate::events::ReplicaRow],
    ) -> Result<(), crate::events::ReplicaError> {
        self.writable()?;
        if let Some(reason) = self.refusal.lock().expect("the refusal").clone() {
            *self.fenced.lock().expect("the fence") = Some(reason.clone());
            return Err(crate::events::ReplicaError(reason));
        }
        self.rows.lock().expect("the rows").extend_from_slice(rows);
        Ok(())
    }
}
