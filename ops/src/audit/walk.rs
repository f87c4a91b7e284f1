//! The walk every audit makes over one log, whatever the node (see the module doc of
//! `audit`): the hash chain first, then each event in order (postings, evidence, the node's
//! own fold and checks), then the checks that need the whole log, then the stored tables
//! against the replay. A node kind supplies only what is its own, as a [`Node`]: its fold,
//! the keys its events bring, its invariants and its tables. So the order of the checks,
//! and therefore which one names a tampered event, is the same for every log.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::events::{
    Event, EventLog, Evidence, LogError, ProjectionDump, check_balanced, check_memos,
};
use shared::wire::{Header, verify_signature};
use shared::{PublicKey, Suite, TxId, Uid};

use super::{AuditError, Check, Finding, Report};

/// The public keys an audit verifies evidence with, by UID: the pinned ones and those the
/// log itself brings (the broker's registrations, the wallet's pinned broker and its 6.0b
/// answers).
pub(super) type KeyRing = BTreeMap<Uid, PublicKey>;

/// A failed check of one event, before it is named by its event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Failure {
    /// The check.
    pub check: Check,
    /// What was expected.
    pub expected: String,
    /// What was found.
    pub found: String,
}

impl Failure {
    /// A failure of `check`.
    pub fn new(check: Check, expected: impl Into<String>, found: impl Into<String>) -> Failure {
        Failure {
            check,
            expected: expected.into(),
            found: found.into(),
        }
    }
}

/// An event as a finding names it: its seq, tx and kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Named {
    /// The event's seq.
    pub seq: u64,
    /// Its tx.
    pub tx: TxId,
    /// Its kind's name.
    pub kind: String,
}

impl Named {
    /// The finding of `failure` at this event.
    pub fn finding(&self, failure: Failure) -> Finding {
        Finding {
            seq: self.seq,
            tx: Some(self.tx),
            kind: Some(self.kind.clone()),
            check: failure.check,
            expected: failure.expected,
            found: failure.found,
        }
    }
}

/// What one node kind brings to the walk.
pub(super) trait Node {
    /// The stored event kind of its log.
    type Kind: Serialize + DeserializeOwned;

    /// The node kind recorded in its log.
    const NODE_KIND: &'static str;

    /// Whether its events may carry postings: only the broker keeps accounts (protocol.md
    /// section 5); a merchant's or a wallet's event with a posting or memo is refused.
    const KEEPS_ACCOUNTS: bool;

    /// Whether its log brings the keys its evidence is signed with (the broker's
    /// registrations, a wallet's pinned broker key and 6.0b answers). A merchant's brings
    /// none: every key comes from the auditor (`--keys`, `--broker-log`, `peers/`), so a
    /// signer without a key there is the audit's configuration, told as
    /// [`AuditError::MissingKey`], not a failed `evidence` check of the log.
    const BRINGS_KEYS: bool = true;

    /// An event kind's name, as the finding and the counts name it.
    fn kind_name(kind: &Self::Kind) -> String;

    /// Keys the event brings that its own evidence is verified with (the broker's
    /// registration is signed by the key it registers). Default: none.
    fn keys_before_evidence(
        &mut self,
        _event: &Event<Self::Kind>,
        _keys: &mut KeyRing,
    ) -> Result<(), Failure> {
        Ok(())
    }

    /// Keys the event brings, certified by its evidence (a wallet's 6.0b answer is signed
    /// by the broker): added only once that evidence verified. Default: none.
    fn keys_after_evidence(
        &mut self,
        _event: &Event<Self::Kind>,
        _keys: &mut KeyRing,
    ) -> Result<(), Failure> {
        Ok(())
    }

    /// The node's own checks of the event against the state before it, its fold, and the
    /// checks of the state after it.
    fn event(&mut self, event: &Event<Self::Kind>, named: &Named) -> Result<(), Failure>;

    /// The checks that need the whole log (a deadline is judged at the log's last event),
    /// each failure named by the event it concerns. Default: none.
    fn finish(&mut self, _last: Option<&Event<Self::Kind>>) -> Result<(), (Named, Failure)> {
        Ok(())
    }

    /// The tables the replayed state renders, encoded as the node writes them.
    fn rendered(&self) -> Result<ProjectionDump, AuditError>;

    /// The tables stored in the log's file.
    fn stored(log: &EventLog<Self::Kind>) -> Result<ProjectionDump, LogError>;

    /// The final balances the report shows, by account or book.
    fn balances(&self) -> BTreeMap<String, i128>;
}

/// How the walk reports its progress.
pub(super) trait Progress {
    /// The walk starts over `events` events.
    fn start(&self, events: u64);
    /// One more event was checked.
    fn inc(&self);
    /// The walk ended (checked, or stopped at a finding).
    fn finish(&self);
}

/// Audits the log at `path` (of `suite`) as a log of `node`, verifying evidence with the
/// `pinned` keys and those the log brings.
pub(super) fn walk<N: Node>(
    path: &Path,
    suite: Suite,
    mut node: N,
    pinned: &[PublicKey],
    progress: &dyn Progress,
) -> Result<Report, AuditError> {
    let read_error = |source: LogError| AuditError::Read {
        path: path.to_owned(),
        source,
    };
    let log = EventLog::<N::Kind>::open_existing(path).map_err(|source| AuditError::Open {
        path: path.to_owned(),
        source,
    })?;
    let mut report = Report {
        path: path.to_owned(),
        node: N::NODE_KIND.to_owned(),
        suite,
        events: 0,
        by_kind: BTreeMap::new(),
        signatures: 0,
        balances: BTreeMap::new(),
        finding: None,
    };

    progress.start(log.len().map_err(read_error)?);
    let outcome = check_events(&log, &mut node, pinned, &mut report, progress);
    progress.finish();
    let outcome = match outcome {
        Ok(finding) => finding,
        Err(Stop::Log(e)) => return Err(read_error(e)),
        Err(Stop::MissingKey { seq, kind, signer }) => {
            return Err(missing_key(path, N::NODE_KIND, seq, &kind, signer));
        }
    };
    if let Some(finding) = outcome {
        report.finding = Some(finding);
        return Ok(report);
    }

    let stored = N::stored(&log).map_err(read_error)?;
    let rendered = node.rendered()?;
    if let Some((table, expected, found)) = first_difference(&rendered, &stored) {
        report.finding = Some(Finding {
            seq: report.events,
            tx: None,
            kind: None,
            check: Check::Replay,
            expected: format!("table {table}: {expected}"),
            found,
        });
        return Ok(report);
    }
    report.balances = node.balances();
    Ok(report)
}

/// Why the walk over the events stopped short of a finding.
enum Stop {
    /// The log could not be read.
    Log(LogError),
    /// Evidence of event `seq`, of a log that brings no keys, is signed by `signer`, whose
    /// key the auditor did not give; `kind` is the signer's role by the label it signed.
    MissingKey {
        /// The event.
        seq: u64,
        /// The signer's role and the label it signed.
        kind: String,
        /// The signer.
        signer: Uid,
    },
}

impl From<LogError> for Stop {
    fn from(e: LogError) -> Stop {
        Stop::Log(e)
    }
}

/// The signer of the first evidence whose key is not in `keys`, with its role as the label
/// it signed tells it (protocol.md section 6: who sends what).
fn unknown_signer(evidence: &[Evidence], keys: &KeyRing) -> Option<(String, Uid)> {
    let evidence = evidence.iter().find(|e| !keys.contains_key(&e.signer))?;
    let kind = match Header::from_bytes(&evidence.header) {
        Ok(header) => {
            let role = crate::dispute::words::sender_role(header.label).unwrap_or("broker");
            format!("{role} (signer of its {})", header.label)
        }
        Err(_) => "peer".to_owned(),
    };
    Some((kind, evidence.signer))
}

/// [`AuditError::MissingKey`] for the log at `path`: which key, and where it was looked
/// for (every `*.pem` under `--keys`, `--broker-log`'s registrations, and a merchant data
/// directory's `peers/<uid>.pub.pem`).
fn missing_key(path: &Path, node: &str, seq: u64, kind: &str, signer: Uid) -> AuditError {
    let peers = path
        .parent()
        .map(|dir| dir.join("peers").join(format!("{signer}.pub.pem")));
    AuditError::MissingKey {
        path: path.to_owned(),
        node: node.to_owned(),
        seq,
        kind: kind.to_owned(),
        uid: signer,
        file: peers.unwrap_or_else(|| format!("peers/{signer}.pub.pem").into()),
    }
}

/// The chain, then every event, then the whole-log checks: the first finding, if any.
fn check_events<N: Node>(
    log: &EventLog<N::Kind>,
    node: &mut N,
    pinned: &[PublicKey],
    report: &mut Report,
    progress: &dyn Progress,
) -> Result<Option<Finding>, Stop> {
    if let Err(e) = log.verify_chain() {
        return match e {
            LogError::Chain { seq, reason } => Ok(Some(Finding {
                seq,
                tx: None,
                kind: None,
                check: Check::Chain,
                expected: "an unaltered event linked to its neighbours".to_owned(),
                found: reason.to_string(),
            })),
            other => Err(other.into()),
        };
    }
    let mut keys: KeyRing = pinned.iter().map(|k| (k.uid(), k.clone())).collect();
    let mut last = None;
    for event in log.iter()? {
        let event = event?;
        let named = Named {
            seq: event.seq,
            tx: event.tx,
            kind: N::kind_name(&event.kind),
        };
        report.events += 1;
        *report.by_kind.entry(named.kind.clone()).or_insert(0) += 1;
        report.signatures += event.evidence.len() as u64;
        if !N::BRINGS_KEYS
            && let Some((kind, signer)) = unknown_signer(&event.evidence, &keys)
        {
            return Err(Stop::MissingKey {
                seq: event.seq,
                kind,
                signer,
            });
        }
        let checked = check_postings::<N>(&event)
            .and_then(|()| node.keys_before_evidence(&event, &mut keys))
            .and_then(|()| verify_evidence(&event.evidence, &keys))
            .and_then(|()| node.keys_after_evidence(&event, &mut keys))
            .and_then(|()| node.event(&event, &named));
        if let Err(failure) = checked {
            return Ok(Some(named.finding(failure)));
        }
        progress.inc();
        last = Some(event);
    }
    Ok(node
        .finish(last.as_ref())
        .err()
        .map(|(named, failure)| named.finding(failure)))
}

/// Section 5: an event's postings sum to zero and its memos are on memo accounts; only the
/// broker's events have any.
fn check_postings<N: Node>(event: &Event<N::Kind>) -> Result<(), Failure> {
    let has_postings = !(event.postings.is_empty() && event.memos.is_empty());
    if has_postings && !N::KEEPS_ACCOUNTS {
        return Err(Failure::new(
            Check::Postings,
            format!(
                "no postings or memos (only the broker keeps accounts, section 5) in a {} log",
                N::NODE_KIND
            ),
            format!(
                "{} postings and {} memos",
                event.postings.len(),
                event.memos.len()
            ),
        ));
    }
    check_balanced(&event.postings)
        .and_then(|_| check_memos(&event.memos))
        .map_err(|e| {
            Failure::new(
                Check::Postings,
                "postings that sum to zero, memos on memo accounts",
                e.to_string(),
            )
        })
}

/// Section 8: every signed part kept as evidence verifies under its signer's key, which
/// must be pinned or brought by the log before this event.
pub(super) fn verify_evidence(evidence: &[Evidence], keys: &KeyRing) -> Result<(), Failure> {
    for (i, evidence) in evidence.iter().enumerate() {
        let Some(key) = keys.get(&evidence.signer) else {
            return Err(Failure::new(
                Check::Evidence,
                format!("evidence {i} signed by a key the log brings or the auditor pins"),
                format!(
                    "signer {} is neither (pin its public key with --keys)",
                    evidence.signer
                ),
            ));
        };
        let verified = Header::from_bytes(&evidence.header)
            .and_then(|header| verify_signature(&header, &evidence.body, &evidence.sig, key));
        if let Err(e) = verified {
            return Err(Failure::new(
                Check::Evidence,
                format!("evidence {i} verifying under {}'s key", evidence.signer),
                e.to_string(),
            ));
        }
    }
    Ok(())
}

/// A key the log brings for `uid`: it parses as a key of `suite` and hashes to `uid`.
pub(super) fn key_for(suite: Suite, uid: &Uid, spki_der: &[u8]) -> Result<PublicKey, Failure> {
    match PublicKey::from_spki_der(suite, spki_der) {
        Ok(key) if key.uid() == *uid => Ok(key),
        Ok(key) => Err(Failure::new(
            Check::Evidence,
            format!("a key whose UID is {uid}"),
            format!("a key whose UID is {}", key.uid()),
        )),
        Err(e) => Err(Failure::new(
            Check::Evidence,
            format!("a public key of {uid}"),
            e.to_string(),
        )),
    }
}

/// The first table whose rows differ: (table, the replay's rows, the stored rows), each
/// as a count and the first differing key.
fn first_difference(
    rendered: &ProjectionDump,
    stored: &ProjectionDump,
) -> Option<(String, String, String)> {
    let tables: std::collections::BTreeSet<&String> =
        rendered.keys().chain(stored.keys()).collect();
    for table in tables {
        let (a, b) = (rendered.get(table), stored.get(table));
        if a == b {
            continue;
        }
        let empty = Default::default();
        let (a, b) = (a.unwrap_or(&empty), b.unwrap_or(&empty));
        let differing = a
            .iter()
            .zip(b.iter())
            .find(|(x, y)| x != y)
            .map(|((k, _), _)| hex::encode(k));
        let at = differing.map_or_else(String::new, |k| format!(", first difference at key {k}"));
        return Some((
            table.clone(),
            format!("{} rows as replayed{at}", a.len()),
            format!("{} rows stored", b.len()),
        ));
    }
    None
}
