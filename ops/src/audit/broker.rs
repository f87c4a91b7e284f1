//! The audit of a broker's log (see the module doc of `audit`): chain, postings, evidence,
//! ledger after every event, and the stored tables against the replay. The fold is the
//! broker's own `State::apply`, the one code that turns events into tables (ADR 0006), run
//! here on a fresh state from nothing but the log.

use std::collections::BTreeMap;
use std::path::Path;

use broker::core::{Kind, State};
use broker::store::{LiveProjection, render};
use shared::events::{Event, EventLog, LogError, check_balanced, check_memos};
use shared::node::Recorded;
use shared::wire::{Header, verify_signature};
use shared::{PublicKey, Suite, Uid};

use super::{AuditError, Check, Finding, Report};

type BrokerEvent = Event<Recorded<Kind>>;

/// Audits the broker log at `path` (of `suite`), with the auditor's `pinned` keys.
pub(super) fn audit(path: &Path, suite: Suite, pinned: &[PublicKey]) -> Result<Report, AuditError> {
    let read_error = |source: LogError| AuditError::Read {
        path: path.to_owned(),
        source,
    };
    let log =
        EventLog::<Recorded<Kind>>::open_existing(path).map_err(|source| AuditError::Open {
            path: path.to_owned(),
            source,
        })?;
    let mut report = Report {
        path: path.to_owned(),
        node: broker::node::NODE_KIND.to_owned(),
        suite,
        events: 0,
        by_kind: BTreeMap::new(),
        signatures: 0,
        balances: BTreeMap::new(),
        finding: None,
    };

    if let Err(e) = log.verify_chain() {
        report.finding = Some(match e {
            LogError::Chain { seq, reason } => Finding {
                seq,
                tx: None,
                kind: None,
                check: Check::Chain,
                expected: "an unaltered event linked to its neighbours".to_owned(),
                found: reason.to_string(),
            },
            other => return Err(read_error(other)),
        });
        return Ok(report);
    }

    let mut keys: BTreeMap<Uid, PublicKey> = pinned.iter().map(|k| (k.uid(), k.clone())).collect();
    let mut state = State::new(suite);
    for event in log.iter().map_err(read_error)? {
        let event = event.map_err(read_error)?;
        report.events += 1;
        *report
            .by_kind
            .entry(kind_name(&event.kind.kind))
            .or_insert(0) += 1;
        report.signatures += event.evidence.len() as u64;
        if let Some(finding) = check_event(&event, &mut keys, &mut state, suite) {
            report.finding = Some(finding);
            return Ok(report);
        }
    }

    let stored = log
        .dump_projection(&LiveProjection::new(&mut State::new(suite)))
        .map_err(read_error)?;
    let rendered =
        render(&state).map_err(|e| read_error(LogError::Projection { seq: 0, source: e }))?;
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
    report.balances = state
        .accounts
        .iter()
        .map(|(account, balance)| (account.to_string(), *balance))
        .collect();
    Ok(report)
}

/// The postings, evidence and ledger checks of one event, folding it into `state`.
fn check_event(
    event: &BrokerEvent,
    keys: &mut BTreeMap<Uid, PublicKey>,
    state: &mut State,
    suite: Suite,
) -> Option<Finding> {
    let finding = |check: Check, expected: String, found: String| Finding {
        seq: event.seq,
        tx: Some(event.tx),
        kind: Some(kind_name(&event.kind.kind)),
        check,
        expected,
        found,
    };
    if let Err(e) = check_balanced(&event.postings).and_then(|_| check_memos(&event.memos)) {
        return Some(finding(
            Check::Postings,
            "postings that sum to zero, memos on memo accounts".to_owned(),
            e.to_string(),
        ));
    }
    // A registration's own signature is by the key it registers.
    if let Kind::PeerRegistered { uid, spki_der, .. } = &event.kind.kind {
        match PublicKey::from_spki_der(suite, spki_der) {
            Ok(key) if key.uid() == *uid => {
                keys.insert(*uid, key);
            }
            Ok(key) => {
                return Some(finding(
                    Check::Evidence,
                    format!("a key whose UID is {uid}"),
                    format!("a key whose UID is {}", key.uid()),
                ));
            }
            Err(e) => {
                return Some(finding(
                    Check::Evidence,
                    "a registered public key".to_owned(),
                    e.to_string(),
                ));
            }
        }
    }
    for (i, evidence) in event.evidence.iter().enumerate() {
        let Some(key) = keys.get(&evidence.signer) else {
            return Some(finding(
                Check::Evidence,
                format!("evidence {i} signed by a registered or pinned key"),
                format!("signer {} is neither", evidence.signer),
            ));
        };
        let verified = Header::from_bytes(&evidence.header)
            .and_then(|header| verify_signature(&header, &evidence.body, &evidence.sig, key));
        if let Err(e) = verified {
            return Some(finding(
                Check::Evidence,
                format!("evidence {i} verifying under {}'s key", evidence.signer),
                e.to_string(),
            ));
        }
    }
    state.fold(event);
    if let Err(e) = state.check_conserved() {
        return Some(finding(
            Check::Ledger,
            "accounts summing to zero, none negative, float equal to live scrip".to_owned(),
            e.to_string(),
        ));
    }
    None
}

/// The first table whose rows differ: (table, the replay's rows, the stored rows), each
/// as a count and the first differing key.
fn first_difference(
    rendered: &shared::events::ProjectionDump,
    stored: &shared::events::ProjectionDump,
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

/// An event kind's name: its variant, without its fields.
fn kind_name(kind: &Kind) -> String {
    let debug = format!("{kind:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}
