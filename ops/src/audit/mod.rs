//! `peerscrip-ops audit`: the independent check of one node's log (issue 6), reading only
//! the log and public keys.
//!
//! The checks, in the order they run over the events; the first failure is named with its
//! event (seq, tx, kind), the check, and what was expected against what was found:
//! 1. `chain`: the hash chain verifies (protocol.md section 8: a changed, removed or moved
//!    event is named);
//! 2. `postings`: each event's postings sum to zero and its memos are memo accounts
//!    (section 5);
//! 3. `evidence`: every signature an event keeps verifies under its signer's key: the keys
//!    registered in the broker's own log (its `PeerRegistered` events, each before the
//!    events that use it) and the keys the auditor pins (`--keys DIR`: the operator's);
//! 4. `ledger`: replayed event by event into a fresh state, the accounts sum to zero, none
//!    is below zero, and `float:broker` equals the live BrokerScrip (the node's own
//!    invariant, checked after every event);
//! 5. `replay`: the projection tables stored in the file equal, byte for byte, the tables
//!    the replayed state renders.
//!
//! The broker's log is audited in full today; another kind of log is refused by name.

mod broker;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use shared::events::{EventLog, LogError};
use shared::{PublicKey, Suite, TxId};

/// Which check found a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The hash chain.
    Chain,
    /// An event's postings or memos.
    Postings,
    /// A signature kept as evidence.
    Evidence,
    /// The ledger invariants after an event.
    Ledger,
    /// The stored projection tables against the replay.
    Replay,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::Chain => "chain",
            Check::Postings => "postings",
            Check::Evidence => "evidence",
            Check::Ledger => "ledger",
            Check::Replay => "replay",
        })
    }
}

/// The first thing found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The event named (for `replay`, the head: the tables are checked after the last).
    pub seq: u64,
    /// Its tx, when the event could be read.
    pub tx: Option<TxId>,
    /// Its kind, when the event could be read.
    pub kind: Option<String>,
    /// The check that failed.
    pub check: Check,
    /// What was expected.
    pub expected: String,
    /// What was found.
    pub found: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {}", self.seq)?;
        if let Some(kind) = &self.kind {
            write!(f, " ({kind})")?;
        }
        if let Some(tx) = &self.tx {
            write!(f, " of tx {tx}")?;
        }
        write!(
            f,
            ": {} check failed: expected {}, found {}",
            self.check, self.expected, self.found
        )
    }
}

/// What an audit found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The log audited.
    pub path: PathBuf,
    /// Its node kind, as recorded in the log.
    pub node: String,
    /// Its suite.
    pub suite: Suite,
    /// Events read.
    pub events: u64,
    /// Events by kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Signatures kept as evidence and re-verified.
    pub signatures: u64,
    /// Final balances by account (minor units; `external` is negative by what was paid in).
    pub balances: BTreeMap<String, i128>,
    /// The first failure, or `None`: every check held.
    pub finding: Option<Finding>,
}

impl Report {
    /// Whether every check held.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.finding.is_none()
    }
}

/// Why the audit could not run at all (as opposed to a [`Finding`] in a log it read).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file could not be opened as a log (missing, locked by a running node, not a log).
    #[error("cannot open {path} as a log: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: LogError,
    },
    /// A log of a kind this auditor does not check yet.
    #[error("{path} is a {kind} log; the auditor checks broker logs")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The kind recorded in it.
        kind: String,
    },
    /// A pinned key file could not be read.
    #[error("cannot read the key {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Reading the file failed midway (I/O, not content).
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: LogError,
    },
}

/// The log file of `target`: the file itself, or the node's log inside a data directory.
#[must_use]
pub fn log_file(target: &Path) -> PathBuf {
    if target.is_dir() {
        target.join(::broker::config::LOG_FILE)
    } else {
        target.to_owned()
    }
}

/// Reads every `*.pem` public key in `dir` (of `suite`): the keys an auditor pins.
pub fn pinned_keys(dir: &Path, suite: Suite) -> Result<Vec<PublicKey>, AuditError> {
    let key_error = |path: &Path, reason: String| AuditError::Key {
        path: path.to_owned(),
        reason,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| key_error(dir, e.to_string()))?;
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| key_error(dir, e.to_string()))?.path();
        if path.extension().is_some_and(|e| e == "pem") {
            let pem =
                std::fs::read_to_string(&path).map_err(|e| key_error(&path, e.to_string()))?;
            // A private key file beside the public ones is not a key to pin: skip it.
            if pem.contains("PRIVATE KEY") {
                continue;
            }
            keys.push(
                PublicKey::from_pem(suite, &pem).map_err(|e| key_error(&path, e.to_string()))?,
            );
        }
    }
    Ok(keys)
}

/// Audits the log at `target` (a log file or a node's data directory), pinning the public
/// keys in `keys_dir` (see the module doc).
pub fn audit(target: &Path, keys_dir: Option<&Path>) -> Result<Report, AuditError> {
    let path = log_file(target);
    let identity = {
        let log = EventLog::<()>::open_existing(&path).map_err(|source| AuditError::Open {
            path: path.clone(),
            source,
        })?;
        log.identity().clone()
    };
    if identity.node_kind != ::broker::node::NODE_KIND {
        return Err(AuditError::Unsupported {
            path,
            kind: identity.node_kind,
        });
    }
    let pinned = match keys_dir {
        Some(dir) => pinned_keys(dir, identity.suite)?,
        None => Vec::new(),
    };
    broker::audit(&path, identity.suite, &pinned)
}

/// The error an audit with a finding ends the command with (exit code [`EXIT_FINDING`]).
#[derive(Debug, thiserror::Error)]
#[error("audit failed: {0}")]
pub struct Failed(pub Finding);

/// Exit code: a check failed (the finding is printed).
pub const EXIT_FINDING: u8 = 3;

/// Prints `report` as text or one JSON object.
pub fn print(report: &Report, json: bool) {
    if json {
        let finding = report.finding.as_ref().map(|f| {
            serde_json::json!({
                "seq": f.seq,
                "tx": f.tx.map(|t| t.to_string()),
                "kind": f.kind,
                "check": f.check.to_string(),
                "expected": f.expected,
                "found": f.found,
            })
        });
        println!(
            "{}",
            serde_json::json!({
                "path": report.path,
                "node": report.node,
                "suite": report.suite.name(),
                "ok": report.ok(),
                "events": report.events,
                "by_kind": report.by_kind,
                "signatures": report.signatures,
                "balances": report.balances.iter().map(|(k, v)| (k.clone(), v.to_string())).collect::<BTreeMap<_, _>>(),
                "finding": finding,
            })
        );
        return;
    }
    println!(
        "{} log {} ({} suite): {} events",
        report.node,
        report.path.display(),
        report.suite,
        report.events
    );
    match &report.finding {
        Some(f) => println!("FAILED: {f}"),
        None => {
            for (kind, n) in &report.by_kind {
                println!("  {n:>6}  {kind}");
            }
            println!("balances:");
            for (account, balance) in &report.balances {
                println!("  {account}: {}", signed_amount(*balance));
            }
            println!(
                "OK: chain, postings, {} signatures, ledger and replay all hold",
                report.signatures
            );
        }
    }
}

/// A balance in minor units as `-12.34`.
fn signed_amount(minor: i128) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}
