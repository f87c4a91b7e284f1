//! `peerscrip-ops audit`: the independent check of one node's log, reading only
//! the log and public keys.
//!
//! The checks, in the order they run over the events (the walk, `walk`, is the same for
//! every kind of log); the first failure is named with its event (seq, tx, kind), the check,
//! and what was expected against what was found:
//! 1. `chain`: the hash chain verifies (protocol.md section 8: a changed, removed or moved
//!    event is named);
//! 2. `postings`: each event's postings sum to zero and its memos are memo accounts
//!    (section 5); a merchant's or a wallet's event has none (only the broker keeps
//!    accounts);
//! 3. `evidence`: every signature an event keeps verifies under its signer's key (section
//!    8): the keys the log brings (the broker's `PeerRegistered` events; a wallet's pinned
//!    broker key and its 6.0b answers), each before the events that use it, and the keys
//!    the auditor pins (`--keys DIR`; `--broker-log`, the keys a broker's log registered;
//!    for a merchant's data directory, also the customers' keys its daemon fetched, in
//!    `peers/`);
//! 4. `transition`: every event of a three-party transaction (6.2, 6.5, 6.7) is a move its
//!    transaction may make from where it stands, as the node's own transition function has
//!    it (the one its `decide` and its fold ask: `broker::core::machine`,
//!    `merchant::core::machine`); an event out of order is named before its ledger and
//!    invariants are checked;
//! 5. `ledger`: replayed event by event into a fresh state with the node's own fold, the
//!    node's invariant holds after every event: at the broker, the accounts sum to zero,
//!    none is below zero, and `float:broker` equals the live BrokerScrip; at a merchant,
//!    `issued = live + paid + withdrawn` in its books, and what its fold takes for granted
//!    (a spent scrip is live, a purchase conserves value) is checked before the event; at
//!    a wallet, its own fold applies the event (it refuses a scrip spent that it does not
//!    hold, a reply to no pending request, a second scrip of a producer);
//! 6. the named invariants of sections 4–7 (`invariants`), each checked at every event
//!    where it applies and named in the finding: `scrip-issued-once`, `spent-once`,
//!    `live-spend` (live, unexpired, not held by another transaction, its owner's),
//!    `change` (change = consumed − paid), `stored-reply` (broker and merchant: a wallet
//!    stores no replies), and, at the log's last event, `deadline` (every three-party
//!    transaction closed or within its deadline); in every kind of log;
//! 7. `replay`: the projection tables stored in the file equal, byte for byte, the tables
//!    the replayed state renders with the node's own encoding.
//!
//! Broker, merchant and wallet logs are audited; another kind of log is refused by name. A
//! wallet's log needs no key or passphrase of the wallet: it holds its secrets sealed, and
//! the audit opens none and prints none (`wallet`).

mod broker;
mod invariants;
mod merchant;
pub mod progress;
mod walk;
mod wallet;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use customer_cli::cli::exit::Exit;
use customer_cli::cli::output::{signed_amount_json, signed_amount_text};
use shared::events::{EventLog, LogError};
use shared::{PublicKey, Suite, TxId, Uid};

/// Which check found a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The hash chain.
    Chain,
    /// An event's postings or memos.
    Postings,
    /// A signature kept as evidence.
    Evidence,
    /// An event of a three-party transaction that cannot follow where it stands (section
    /// 7; the node's own transition function).
    Transition,
    /// The ledger invariants after an event.
    Ledger,
    /// The stored projection tables against the replay.
    Replay,
    /// Each scrip id issued once (section 4: new scrip, new scrip id).
    ScripIssuedOnce,
    /// Each scrip spent at most once (section 4).
    SpentOnce,
    /// A spend only of a live, unexpired scrip not held by another transaction (section 4).
    LiveSpend,
    /// Change = consumed − paid (section 4, "Value is conserved"; 6.2, 6.3, 6.5).
    Change,
    /// Every three-party transaction closed, or open within its deadline at the log's last
    /// event (section 7).
    Deadline,
    /// Every stored reply matches its event: same tx, its request's sender, a label that
    /// answers it, stored once (section 7).
    StoredReply,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::Chain => "chain",
            Check::Postings => "postings",
            Check::Evidence => "evidence",
            Check::Transition => "transition",
            Check::Ledger => "ledger",
            Check::Replay => "replay",
            Check::ScripIssuedOnce => "scrip-issued-once",
            Check::SpentOnce => "spent-once",
            Check::LiveSpend => "live-spend",
            Check::Change => "change",
            Check::Deadline => "deadline",
            Check::StoredReply => "stored-reply",
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
    #[error("{path} is a {kind} log; the auditor checks broker, merchant and wallet logs")]
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
    /// Evidence in a log that brings no keys (a merchant's, protocol.md section 8) is
    /// signed by a key the auditor did not give: the audit cannot check that signature,
    /// which says nothing about the log, so it stops and names the key (exit 2, the
    /// auditor's configuration) instead of failing the `evidence` check.
    #[error(
        "the {node} log {} needs the public key of the {kind}, UID {uid} (event {seq}), to \
         verify its evidence: no *.pem given with --keys has that UID, no --broker-log \
         registered it, and there is no {}; add that public key to the --keys directory \
         (any file name ending .pem), or give --broker-log for a customer's",
        path.display(),
        file.display()
    )]
    MissingKey {
        /// The log.
        path: PathBuf,
        /// Its node kind.
        node: String,
        /// The event whose evidence needs the key.
        seq: u64,
        /// Whose key: the signer's role and the label it signed.
        kind: String,
        /// The signer's UID.
        uid: Uid,
        /// The file a merchant daemon would keep that key in, beside its log.
        file: PathBuf,
    },
    /// The replayed state could not be encoded as tables (a bug, not the log's content).
    #[error("encoding the replayed tables: {0}")]
    Render(String),
    /// Reading the file failed midway (I/O, not content).
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: LogError,
    },
}

/// The log file of `target`: the file itself, or the node's log inside a data directory
/// (a broker's `broker.redb`, a merchant's `merchant.redb`, a wallet's `wallet.redb`).
#[must_use]
pub fn log_file(target: &Path) -> PathBuf {
    if !target.is_dir() {
        return target.to_owned();
    }
    let wallet = customer_cli::cli::config::WalletDir::resolve(Some(target))
        .map(|dir| dir.wallet())
        .ok();
    [
        Some(target.join(::broker::config::LOG_FILE)),
        Some(target.join(::merchant::config::LOG_FILE)),
        wallet,
    ]
    .into_iter()
    .flatten()
    .find(|file| file.is_file())
    .unwrap_or_else(|| target.join(::broker::config::LOG_FILE))
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

/// How to run an audit.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A directory of public keys (`*.pem`) to pin.
    pub keys: Option<PathBuf>,
    /// A broker's log (or data directory) whose registered keys (6.0) are pinned too: the
    /// customers' keys for a merchant's log.
    pub broker_log: Option<PathBuf>,
    /// Show a progress bar on stderr for a log of many events (hidden anyway when stderr
    /// is not a terminal).
    pub progress: bool,
    /// Keys a library caller pins directly (the demo holds the broker's in memory).
    pub pinned: Vec<PublicKey>,
}

/// Audits the log at `target` (a log file or a node's data directory), pinning the public
/// keys in `keys_dir` (see the module doc).
pub fn audit(target: &Path, keys_dir: Option<&Path>) -> Result<Report, AuditError> {
    audit_with(
        target,
        &Options {
            keys: keys_dir.map(Path::to_owned),
            broker_log: None,
            progress: false,
            pinned: Vec::new(),
        },
    )
}

/// [`audit`] with every option.
pub fn audit_with(target: &Path, options: &Options) -> Result<Report, AuditError> {
    let path = log_file(target);
    let identity = {
        let log = EventLog::<()>::open_existing(&path).map_err(|source| AuditError::Open {
            path: path.clone(),
            source,
        })?;
        log.identity().clone()
    };
    let mut pinned = match &options.keys {
        Some(dir) => pinned_keys(dir, identity.suite)?,
        None => Vec::new(),
    };
    pinned.extend(options.pinned.iter().cloned());
    let suite = identity.suite;
    if let Some(broker_log) = &options.broker_log {
        pinned.extend(broker::registered_keys(&log_file(broker_log), suite)?);
    }
    let progress = progress::Bar::new(options.progress);
    match identity.node_kind.as_str() {
        ::broker::node::NODE_KIND => {
            walk::walk(&path, suite, broker::Broker::new(suite), &pinned, &progress)
        }
        ::merchant::node::NODE_KIND => {
            // The customers' keys a merchant daemon fetched by 6.0b are kept beside its
            // log (`peers/<uid>.pub.pem`, each checked to hash to its UID); its log holds
            // none.
            if target.is_dir() {
                pinned.extend(
                    ::merchant::daemon::peers::load_stored(target, suite).map_err(|e| {
                        AuditError::Key {
                            path: e.path.clone(),
                            reason: e.message.clone(),
                        }
                    })?,
                );
            }
            walk::walk(&path, suite, merchant::Merchant::new(), &pinned, &progress)
        }
        ::customer_cli::NODE_KIND => {
            walk::walk(&path, suite, wallet::Wallet::new(suite), &pinned, &progress)
        }
        _ => Err(AuditError::Unsupported {
            path,
            kind: identity.node_kind,
        }),
    }
}

/// The error an audit with a finding ends the command with (exit 3, refused: a check did
/// not hold; `customer_cli::cli::exit::Exit`).
#[derive(Debug, thiserror::Error)]
#[error("audit failed: {0}")]
pub struct Failed(pub Finding);

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
        let mut doc = serde_json::json!({
            "path": report.path.display().to_string(),
            "node": report.node,
            "suite": report.suite.name(),
            "ok": report.ok(),
            "events": report.events,
            "by_kind": report.by_kind,
            "signatures": report.signatures,
            "balances": report.balances.iter().map(|(k, v)| (k.clone(), signed_amount_json(*v))).collect::<BTreeMap<_, _>>(),
            "finding": finding,
        });
        // A finding is the command's failure: the keys every `--json` error has.
        if let Some(f) = &report.finding {
            let error =
                customer_cli::cli::exit::error_json(Exit::Refused, &format!("audit failed: {f}"));
            if let (Some(doc), serde_json::Value::Object(error)) = (doc.as_object_mut(), error) {
                doc.extend(error);
            }
        }
        println!("{doc}");
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
                "OK: chain, postings, {} signatures, transitions, ledger, invariants and replay all hold",
                report.signatures
            );
        }
    }
}

/// A balance in minor units as `-12.34` (the audit's and the reconcile's reports).
pub(crate) fn signed_amount(minor: i128) -> String {
    signed_amount_text(minor)
}
