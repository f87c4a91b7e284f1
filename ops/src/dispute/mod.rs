//! `peerscrip-ops dispute`: settling a dispute about one transaction from the parties'
//! logs, so that an arbiter needs neither the logs nor the running nodes.
//!
//! `dispute bundle <tx> --logs <dirs…> --out FILE` ([`collect`]) gathers, from every log
//! given, each event of that tx as its log stores it, with the signed parts it keeps as
//! evidence (protocol.md section 8: header, body, signature and signer, enough to verify
//! again), and the key chain of every signer back to the broker's key: the broker's
//! `PeerRegistered` event of that key (6.0), whose stored `RegistrationResponse` is the
//! broker's signature over the key's UID, and the UID is the hash of the key (section 1).
//! The file is one postcard [`Bundle`] with a magic and a format version, followed by its
//! SHA-256 (damage in transit is told apart from a forged signature).
//!
//! `dispute verify FILE --broker-key PEM` ([`verify::verify`]) checks it offline, against
//! nothing but the broker's key the arbiter pins (section 1): every key certified by the
//! broker, every signature of every evidence under a certified key, every event of the
//! tx. Any failure is a typed [`BundleError`]. Then it says in plain words what each party
//! signed and what each log records it did, and the verdict ([`words`]): consistent, or
//! which party's signed statement contradicts which.
//!
//! What the bundle proves, and what not: a signed statement is the signer's (it cannot be
//! forged without its private key); an event is only its log's claim (logs are not signed;
//! a node vouches for its own log by its hash chain, which `peerscrip-ops audit` checks
//! with the whole log). The verdict weighs signed statements against each other and
//! against each log's claims.

pub mod verify;
pub mod words;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shared::events::{Event, EventLog, LogError};
use shared::node::Recorded;
use shared::variant::variant_name;
use shared::wire::{Frame, Header};
use shared::{Suite, TxId, Uid};

use customer_cli::cli::output::time_json;
pub use verify::verify;

/// The first bytes of every bundle.
pub const MAGIC: [u8; 16] = *b"peerscrip-bundle";

/// The bundle format this build writes and reads.
pub const FORMAT: u16 = 1;

/// Length of the SHA-256 trailer.
const DIGEST_LEN: usize = 32;

/// Which node's log an event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Node {
    /// The broker's (`broker::core::Kind`).
    Broker,
    /// A merchant's (`merchant::core::events::Kind`).
    Merchant,
    /// A customer wallet's (`customer_cli::core::WalletEvent`).
    Wallet,
}

impl Node {
    /// The node kind its log records.
    #[must_use]
    pub const fn kind(self) -> &'static str {
        match self {
            Node::Broker => broker::node::NODE_KIND,
            Node::Merchant => merchant::node::NODE_KIND,
            Node::Wallet => customer_cli::NODE_KIND,
        }
    }
}

/// One event of the tx as its log stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The log it comes from.
    pub node: Node,
    /// Whose log it is (the broker; the merchant who sent its frames; the wallet's
    /// customer). A claim of the bundler, checked against what the events show.
    pub owner: Uid,
    /// The event's encoding as stored (its chain hash is SHA-256 of these bytes).
    pub event: Vec<u8>,
}

/// A signer's key and the broker's certificate of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The UID.
    pub uid: Uid,
    /// The broker's `PeerRegistered` event of it, as stored: the key, and the broker's
    /// signed `RegistrationResponse` naming the UID among the frames it sent.
    pub registration: Vec<u8>,
}

/// A dispute bundle (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`MAGIC`].
    pub magic: [u8; 16],
    /// [`FORMAT`].
    pub format: u16,
    /// The deployment's suite.
    pub suite: Suite,
    /// The transaction in dispute.
    pub tx: TxId,
    /// The broker's UID (its key is the arbiter's to pin).
    pub broker: Uid,
    /// Every event of the tx, broker's first, then each other log's in the order given.
    pub records: Vec<Record>,
    /// The key of every party that signed an evidence or owns a log, certified.
    pub keys: Vec<KeyRecord>,
}

/// Why a bundle could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A log could not be opened or read.
    #[error("{path}: {source}")]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        source: LogError,
    },
    /// A log's hash chain does not verify: its events cannot be vouched for.
    #[error("{path}: the hash chain does not verify ({source}); run `peerscrip-ops audit` on it")]
    Chain {
        /// The file.
        path: PathBuf,
        /// Where it breaks.
        source: LogError,
    },
    /// A log of a kind no party keeps.
    #[error("{path} is a {kind} log")]
    UnknownKind {
        /// The file.
        path: PathBuf,
        /// Its kind.
        kind: String,
    },
    /// The broker's log is needed for the key chain, once.
    #[error("exactly one broker log is needed (for the key chain); {0} given")]
    BrokerLogs(usize),
    /// Nobody's log has an event of the tx.
    #[error("no log given has an event of tx {0}")]
    NoEvents(TxId),
    /// A party whose log or signature is in the bundle is not registered at the broker.
    #[error("{0} signed or logged part of the tx but is not registered in the broker's log")]
    NotRegistered(Uid),
    /// A log whose owner cannot be told (a merchant that sent no frame, a wallet with no
    /// identity).
    #[error("{0}: whose log it is cannot be told from it")]
    NoOwner(PathBuf),
    /// An event could not be encoded (it was just decoded: never expected).
    #[error("encoding an event: {0}")]
    Encode(postcard::Error),
    /// The output file.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Why a bundle does not verify (every reason typed, so that a test names it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Shorter than its digest.
    #[error("the file is too short to be a bundle")]
    TooShort,
    /// The SHA-256 trailer does not match: the file was damaged or altered.
    #[error("the bundle's digest does not match its content: the file was damaged or altered")]
    Digest,
    /// Not a postcard bundle.
    #[error("the bundle does not decode: {0}")]
    Decode(String),
    /// Not a dispute bundle.
    #[error("not a peerscrip dispute bundle")]
    Magic,
    /// A format this build does not read.
    #[error("bundle format {found}, this build reads format {FORMAT}")]
    Format {
        /// The format found.
        found: u16,
    },
    /// The broker key given does not parse in the bundle's suite.
    #[error("the broker key does not parse: {0}")]
    BrokerKey(String),
    /// The bundle names another broker than the key given.
    #[error("the bundle is of broker {bundle}, the key given is {given}'s")]
    WrongBroker {
        /// The broker the bundle names.
        bundle: Uid,
        /// The UID of the key given.
        given: Uid,
    },
    /// A key the broker did not certify.
    #[error("the key of {uid} is not certified by the broker: {reason}")]
    KeyNotCertified {
        /// The UID.
        uid: Uid,
        /// Why.
        reason: String,
    },
    /// An event that does not decode as its log's kind.
    #[error("record {record} does not decode as a {node:?} event")]
    Event {
        /// Its index.
        record: usize,
        /// The kind of log it claims.
        node: Node,
    },
    /// An event of another tx.
    #[error("record {record} is of tx {found}, not of the disputed tx")]
    ForeignEvent {
        /// Its index.
        record: usize,
        /// Its tx.
        found: TxId,
    },
    /// A record claimed to be the broker's by another owner, or a log owner with no
    /// certified key.
    #[error("record {record}: its owner {owner} is not a certified party of this bundle")]
    Owner {
        /// Its index.
        record: usize,
        /// The claimed owner.
        owner: Uid,
    },
    /// An evidence whose header does not parse or is of another tx.
    #[error("record {record}, evidence {evidence}: {reason}")]
    EvidenceHeader {
        /// The record.
        record: usize,
        /// The evidence.
        evidence: usize,
        /// Why.
        reason: String,
    },
    /// An evidence signed by a key the bundle does not certify.
    #[error("record {record}, evidence {evidence}: signer {signer} has no certified key")]
    UnknownSigner {
        /// The record.
        record: usize,
        /// The evidence.
        evidence: usize,
        /// The signer.
        signer: Uid,
    },
    /// An evidence whose signature does not verify under its signer's certified key.
    #[error("record {record}, evidence {evidence}: the signature of {signer} does not verify")]
    BadSignature {
        /// The record.
        record: usize,
        /// The evidence.
        evidence: usize,
        /// The signer.
        signer: Uid,
    },
}

impl Bundle {
    /// The file's bytes: the postcard bundle, then its SHA-256.
    pub fn to_file_bytes(&self) -> Result<Vec<u8>, postcard::Error> {
        let mut bytes = postcard::to_allocvec(self)?;
        let digest = shared::events::chain::hash_bytes(&bytes);
        bytes.extend_from_slice(&digest);
        Ok(bytes)
    }

    /// Reads a bundle file's bytes: digest, encoding, magic and format, in that order.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let split = bytes
            .len()
            .checked_sub(DIGEST_LEN)
            .ok_or(BundleError::TooShort)?;
        let (content, digest) = bytes.split_at(split);
        if shared::events::chain::hash_bytes(content) != digest {
            return Err(BundleError::Digest);
        }
        let (bundle, rest) = postcard::take_from_bytes::<Bundle>(content)
            .map_err(|e| BundleError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(BundleError::Decode("trailing bytes".to_owned()));
        }
        if bundle.magic != MAGIC {
            return Err(BundleError::Magic);
        }
        if bundle.format != FORMAT {
            return Err(BundleError::Format {
                found: bundle.format,
            });
        }
        Ok(bundle)
    }
}

/// A log given to [`collect`], read and checked.
struct Log {
    node: Node,
    owner: Option<Uid>,
    /// The events of the tx, encoded, with their evidence signers.
    records: Vec<(Vec<u8>, Vec<Uid>)>,
    /// For the broker: its `PeerRegistered` events by UID, encoded.
    registrations: BTreeMap<Uid, Vec<u8>>,
    suite: Suite,
}

/// The log file of `target`: the file itself, or the one node log in a data directory.
fn log_path(target: &Path) -> PathBuf {
    if !target.is_dir() {
        return target.to_owned();
    }
    [
        broker::config::LOG_FILE,
        merchant::config::LOG_FILE,
        crate::reconcile::WALLET_FILE,
    ]
    .iter()
    .map(|f| target.join(f))
    .find(|p| p.exists())
    .unwrap_or_else(|| crate::audit::log_file(target))
}

/// The sender of the first decodable frame among `frames`.
fn sender<'a>(frames: impl IntoIterator<Item = &'a Vec<u8>>) -> Option<Uid> {
    frames
        .into_iter()
        .find_map(|f| Frame::decode(f).ok())
        .map(|f| f.header.sender)
}

/// How a failure to read the log at `path` is told.
fn log_error(path: &Path) -> impl Fn(LogError) -> CollectError + Copy + '_ {
    |source| CollectError::Log {
        path: path.to_owned(),
        source,
    }
}

/// Reads the events of `tx` from the `K` log at `path`.
fn read<K>(
    path: &Path,
    node: Node,
    tx: TxId,
    mut inspect: impl FnMut(&Event<K>, &mut Log),
) -> Result<Log, CollectError>
where
    K: Serialize + serde::de::DeserializeOwned,
{
    let log_error = log_error(path);
    let log = EventLog::<K>::open_existing(path).map_err(log_error)?;
    log.verify_chain().map_err(|source| CollectError::Chain {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Log {
        node,
        owner: None,
        records: Vec::new(),
        registrations: BTreeMap::new(),
        suite: log.identity().suite,
    };
    for event in log.iter().map_err(log_error)? {
        let event = event.map_err(log_error)?;
        inspect(&event, &mut out);
        if event.tx == tx {
            let signers = event.evidence.iter().map(|e| e.signer).collect();
            out.records
                .push((event.encode().map_err(CollectError::Encode)?, signers));
        }
    }
    Ok(out)
}

/// The node kind the log at `path` records.
fn node_kind(path: &Path) -> Result<String, CollectError> {
    Ok(EventLog::<()>::open_existing(path)
        .map_err(|source| CollectError::Log {
            path: path.to_owned(),
            source,
        })?
        .identity()
        .node_kind
        .clone())
}

fn read_log(target: &Path, tx: TxId) -> Result<Log, CollectError> {
    let path = log_path(target);
    let kind = node_kind(&path)?;
    let log = if kind == broker::node::NODE_KIND {
        read::<Recorded<broker::core::Kind>>(&path, Node::Broker, tx, |event, log| {
            if log.owner.is_none() {
                log.owner = sender(event.kind.sent.iter().map(|s| &s.frame));
            }
            if let broker::core::Kind::PeerRegistered { uid, .. } = &event.kind.kind
                && let Ok(bytes) = event.encode()
            {
                log.registrations.insert(*uid, bytes);
            }
        })?
    } else if kind == merchant::node::NODE_KIND {
        read::<Recorded<merchant::core::events::Kind>>(&path, Node::Merchant, tx, |event, log| {
            if log.owner.is_none() {
                log.owner = sender(event.kind.sent.iter().map(|s| &s.frame));
            }
        })?
    } else if kind == customer_cli::NODE_KIND {
        read::<customer_cli::core::WalletEvent>(&path, Node::Wallet, tx, |event, log| {
            if let customer_cli::core::WalletEvent::WalletCreated { identity } = &event.kind {
                log.owner = Some(identity.me);
            }
        })?
    } else {
        return Err(CollectError::UnknownKind { path, kind });
    };
    if log.owner.is_none() && !log.records.is_empty() {
        return Err(CollectError::NoOwner(path));
    }
    Ok(log)
}

/// Collects the bundle of `tx` from the logs at `targets` (log files or node data
/// directories; exactly one the broker's), see the module doc.
pub fn collect(tx: TxId, targets: &[PathBuf]) -> Result<Bundle, CollectError> {
    let logs = targets
        .iter()
        .map(|t| read_log(t, tx))
        .collect::<Result<Vec<_>, _>>()?;
    let brokers: Vec<(&PathBuf, &Log)> = targets
        .iter()
        .zip(&logs)
        .filter(|(_, l)| l.node == Node::Broker)
        .collect();
    let [(broker_path, broker_log)] = brokers.as_slice() else {
        return Err(CollectError::BrokerLogs(brokers.len()));
    };
    let broker = broker_log
        .owner
        .ok_or_else(|| CollectError::NoOwner((*broker_path).clone()))?;
    let mut records = Vec::new();
    let mut parties = BTreeSet::new();
    // The broker's events first: they are the decisions the others act on.
    let ordered =
        std::iter::once(*broker_log).chain(logs.iter().filter(|l| l.node != Node::Broker));
    for log in ordered {
        for (event, signers) in &log.records {
            let owner = log.owner.unwrap_or(broker);
            parties.insert(owner);
            parties.extend(signers.iter().copied());
            records.push(Record {
                node: log.node,
                owner,
                event: event.clone(),
            });
        }
    }
    if records.is_empty() {
        return Err(CollectError::NoEvents(tx));
    }
    parties.remove(&broker);
    let keys = parties
        .into_iter()
        .map(|uid| {
            broker_log
                .registrations
                .get(&uid)
                .map(|registration| KeyRecord {
                    uid,
                    registration: registration.clone(),
                })
                .ok_or(CollectError::NotRegistered(uid))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Bundle {
        magic: MAGIC,
        format: FORMAT,
        suite: broker_log.suite,
        tx,
        broker,
        records,
        keys,
    })
}

/// Writes `bundle` to `out`, which must not exist yet (a bundle is evidence: never
/// overwritten).
pub fn write(bundle: &Bundle, out: &Path) -> Result<(), CollectError> {
    use std::io::Write as _;
    let write_error = |source: std::io::Error| CollectError::Write {
        path: out.to_owned(),
        source,
    };
    let bytes = bundle.to_file_bytes().map_err(CollectError::Encode)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(write_error)?;
    file.write_all(&bytes).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}

/// One transaction of a log, as `dispute txs` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxLine {
    /// The transaction.
    pub tx: TxId,
    /// The time of its first event.
    pub time: shared::UnixMillis,
    /// Its events' kinds, in log order.
    pub kinds: Vec<String>,
}

/// Every event of the `K` log at `path` as (tx, time, kind name).
fn kinds_of<K>(
    path: &Path,
    name: fn(&K) -> String,
) -> Result<Vec<(TxId, shared::UnixMillis, String)>, CollectError>
where
    K: Serialize + serde::de::DeserializeOwned,
{
    let log_error = log_error(path);
    let log = EventLog::<K>::open_existing(path).map_err(log_error)?;
    log.iter()
        .map_err(log_error)?
        .map(|e| e.map(|e| (e.tx, e.time, name(&e.kind))).map_err(log_error))
        .collect()
}

/// The transactions of the log at `target` (a file or a node's data directory), in the
/// order of their first event: how an arbiter finds the tx a party disputes.
pub fn transactions(target: &Path) -> Result<Vec<TxLine>, CollectError> {
    let path = log_path(target);
    let kind = node_kind(&path)?;
    let events = if kind == broker::node::NODE_KIND {
        kinds_of::<Recorded<broker::core::Kind>>(&path, |k| variant_name(&k.kind))?
    } else if kind == merchant::node::NODE_KIND {
        kinds_of::<Recorded<merchant::core::events::Kind>>(&path, |k| k.kind.name().to_owned())?
    } else if kind == customer_cli::NODE_KIND {
        kinds_of::<customer_cli::core::WalletEvent>(&path, variant_name)?
    } else {
        return Err(CollectError::UnknownKind { path, kind });
    };
    let mut lines: Vec<TxLine> = Vec::new();
    let mut index: BTreeMap<TxId, usize> = BTreeMap::new();
    for (tx, time, name) in events {
        let at = *index.entry(tx).or_insert_with(|| {
            lines.push(TxLine {
                tx,
                time,
                kinds: Vec::new(),
            });
            lines.len() - 1
        });
        lines[at].kinds.push(name);
    }
    Ok(lines)
}

/// The broker key the wallet at `target` pins (its `WalletCreated` identity, protocol.md
/// section 1), as PEM: what a customer hands an arbiter when the operator's key file is
/// not at hand (the demo keeps no key files).
pub fn pinned_broker_key(target: &Path) -> Result<String, CollectError> {
    let path = log_path(target);
    let log_error = log_error(&path);
    let log =
        EventLog::<customer_cli::core::WalletEvent>::open_existing(&path).map_err(log_error)?;
    if log.identity().node_kind != customer_cli::NODE_KIND {
        return Err(CollectError::UnknownKind {
            path: path.clone(),
            kind: log.identity().node_kind.clone(),
        });
    }
    for event in log.iter().map_err(log_error)? {
        if let customer_cli::core::WalletEvent::WalletCreated { identity } =
            event.map_err(log_error)?.kind
        {
            return shared::PublicKey::from_spki_der(identity.suite, &identity.broker_key)
                .and_then(|k| k.to_pem())
                .map_err(|_| CollectError::NoOwner(path.clone()));
        }
    }
    Err(CollectError::NoOwner(path))
}

/// An evidence's header, parsed.
fn header_of(bytes: &[u8]) -> Result<Header, String> {
    Header::from_bytes(bytes).map_err(|e| e.to_string())
}

/// A bundle that verified, with contradictions. Like a bundle that does not verify
/// ([`BundleError`]), exit 3 (refused: a check did not hold; `customer_cli::cli::exit::Exit`);
/// the verdict, in text or `--json`, tells the two apart.
#[derive(Debug, thiserror::Error)]
#[error("the bundle verifies; {0} statement(s) contradict it")]
pub struct Contradicted(pub usize);

/// Runs `peerscrip-ops dispute …`, printing its result as text or (`json`) one JSON
/// object.
pub fn run(command: &crate::cli::DisputeCommand, json: bool) -> anyhow::Result<()> {
    use anyhow::Context as _;
    match command {
        crate::cli::DisputeCommand::Bundle { tx, logs, out } => {
            let bundle = collect(*tx, logs)?;
            write(&bundle, out)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ok": true,
                        "out": out.display().to_string(),
                        "tx": tx.to_string(),
                        "events": bundle.records.len(),
                        "keys": bundle.keys.len(),
                        "broker": bundle.broker.to_string(),
                    })
                );
                return Ok(());
            }
            println!(
                "wrote {}: {} events of tx {tx}, {} keys certified by broker {}",
                out.display(),
                bundle.records.len(),
                bundle.keys.len(),
                bundle.broker
            );
            Ok(())
        }
        crate::cli::DisputeCommand::Txs { log } => {
            let lines = transactions(log)?;
            if json {
                let txs: Vec<_> = lines
                    .iter()
                    .map(|line| {
                        serde_json::json!({
                            "tx": line.tx.to_string(),
                            "time": time_json(line.time.to_secs()),
                            "kinds": line.kinds,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "ok": true,
                        "log": log_path(log).display().to_string(),
                        "txs": txs,
                    })
                );
                return Ok(());
            }
            for line in lines {
                println!(
                    "{}  {}  {}",
                    line.tx,
                    line.time.utc(),
                    line.kinds.join(", ")
                );
            }
            Ok(())
        }
        crate::cli::DisputeCommand::PinnedKey { wallet, out } => {
            use std::io::Write as _;
            let pem = pinned_broker_key(wallet)?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(out)
                .with_context(|| format!("creating {}", out.display()))?;
            file.write_all(pem.as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "out": out.display().to_string()})
                );
            } else {
                println!("wrote {} (the broker key the wallet pins)", out.display());
            }
            Ok(())
        }
        crate::cli::DisputeCommand::Verify { bundle, broker_key } => {
            let bytes =
                std::fs::read(bundle).with_context(|| format!("reading {}", bundle.display()))?;
            let pem = std::fs::read_to_string(broker_key)
                .with_context(|| format!("reading {}", broker_key.display()))?;
            let bundle = Bundle::from_file_bytes(&bytes)?;
            let account = words::tell(verify(&bundle, &pem)?);
            if json {
                println!("{}", words::to_json(&account));
            } else {
                words::print(&account);
            }
            if account.consistent() {
                Ok(())
            } else {
                Err(Contradicted(account.contradictions.len()).into())
            }
        }
    }
}
