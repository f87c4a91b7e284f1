//! What the ops tests share: a real run's logs (the demo's, `--data-dir`), the pinned keys
//! an auditor of them holds, a log re-chained around a forged event so that only the
//! content checks can object, and copies of a log altered in place.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use customer_cli::core::WalletEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::Suite;
use shared::events::{
    Event, EventLog, LogIdentity, NewEvent, Projection, ProjectionError, ProjectionTable,
};
use shared::node::{Recorded, ReplyKey};

/// The event table of every log (`shared::events::log`), to alter a stored event in place.
pub const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");

/// A demo run's data directory (modern suite), in a temp dir.
pub fn demo_run() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(["demo", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, data)
}

/// The events of the log at `path`.
pub fn events<K: Serialize + DeserializeOwned>(path: &Path) -> Vec<Event<K>> {
    let log = EventLog::<K>::open_existing(path).unwrap();
    log.iter().unwrap().map(Result::unwrap).collect()
}

/// The public keys an auditor of the run pins, written as PEM into `dir/keys`: the broker's
/// (as the wallets pinned it) and the customers' (as the broker registered them).
pub fn pinned_keys(dir: &Path, run: &Path) -> PathBuf {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for customer in ["customer-alice", "customer-bob"] {
        let created = events::<WalletEvent>(&run.join(customer).join("wallet.redb"));
        let WalletEvent::WalletCreated { identity } = &created[0].kind else {
            panic!("a wallet log starts with WalletCreated");
        };
        for der in [&identity.broker_key, &identity.my_key] {
            let key = shared::PublicKey::from_spki_der(Suite::Modern, der).unwrap();
            std::fs::write(
                keys.join(format!("{}.pub.pem", key.uid())),
                key.to_pem().unwrap(),
            )
            .unwrap();
        }
    }
    keys
}

/// A projection with no tables: for a forged log whose events the node's own fold would
/// refuse to apply (it asserts its invariants), so that the log can be written at all.
pub struct NoTables;

impl<K> Projection<K> for NoTables {
    fn tables(&self) -> Vec<&dyn ProjectionTable> {
        Vec::new()
    }

    fn apply(&self, _: &redb::WriteTransaction, _: &Event<K>) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// A new log at `to` of `node_kind` holding `events` (as changed by the caller), appended
/// through the log API with `projection`: a valid chain, so only the content checks can
/// object.
pub fn rechain<K: Serialize + DeserializeOwned>(
    events: Vec<Event<K>>,
    to: &Path,
    node_kind: &str,
    projection: &dyn Projection<K>,
) {
    let log = EventLog::open(to, LogIdentity::new(Suite::Modern, node_kind)).unwrap();
    for e in events {
        let new = NewEvent {
            time: e.time,
            tx: e.tx,
            postings: e.postings,
            memos: e.memos,
            evidence: e.evidence,
            kind: e.kind,
        };
        log.append(vec![new], projection).unwrap();
    }
}

/// A copy of `events` whose event at `index` holds its stored reply filed under another
/// request: the reply's key changed by `refile`.
pub fn refiled<K: Clone>(
    events: &[Event<Recorded<K>>],
    index: usize,
    refile: impl FnOnce(&mut ReplyKey),
) -> Vec<Event<Recorded<K>>> {
    let mut changed = events.to_vec();
    let reply = changed[index]
        .kind
        .sent
        .iter_mut()
        .find_map(|s| s.answers.as_mut())
        .expect("the event stores a reply");
    refile(&mut reply.key);
    changed
}

/// A copy of the log at `from` at `to` with the last byte of event `seq` flipped in place.
pub fn flip_event_byte(from: &Path, to: &Path, seq: u64) {
    std::fs::copy(from, to).unwrap();
    let db = redb::Database::open(to).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(EVENTS).unwrap();
        let mut bytes = {
            use redb::ReadableTable as _;
            table.get(seq).unwrap().unwrap().value().to_vec()
        };
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        table.insert(seq, bytes.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

/// A copy of the log at `from` at `to` with the first byte of the first row of `table`
/// flipped in place.
pub fn flip_row_byte(from: &Path, to: &Path, table: &str) {
    std::fs::copy(from, to).unwrap();
    let db = redb::Database::open(to).unwrap();
    let txn = db.begin_write().unwrap();
    {
        use redb::ReadableTable as _;
        let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new(table);
        let mut table = txn.open_table(def).unwrap();
        let (key, mut value) = {
            let first = table.iter().unwrap().next().unwrap().unwrap();
            (first.0.value().to_vec(), first.1.value().to_vec())
        };
        value[0] ^= 1;
        table.insert(key.as_slice(), value.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

/// The finding of the audit of `path` with the keys in `keys`.
pub fn finding(path: &Path, keys: &Path) -> ops::audit::Finding {
    let report = ops::audit::audit(path, Some(keys)).unwrap();
    report.finding.expect("the audit must fail")
}

/// A broker log of `events` events at `to`: one account opened, then deposits into it,
/// appended in group commits of 10 000 through the broker's own projection (a valid log
/// whose audit walks every check on every event).
pub fn deposits_log(to: &Path, events: u64) {
    use broker::core::{Kind, State};
    use broker::store::LiveProjection;
    use shared::events::{Account, Posting};
    use shared::node::Recorded;
    use shared::{Amount, Pan, TxId};

    let log = EventLog::open(to, LogIdentity::new(Suite::Modern, broker::node::NODE_KIND)).unwrap();
    let mut state = State::new(Suite::Modern);
    let projection = LiveProjection::new(&mut state);
    let pan = Pan::new("GR1601101250000000012300695");
    let recorded = |kind: Kind| Recorded {
        kind,
        sent: Vec::new(),
    };
    let mut seq = 0u64;
    while seq < events {
        let mut group = log.begin_group().unwrap();
        for _ in 0..10_000.min(events - seq) {
            seq += 1;
            let mut tx = [0u8; 16];
            tx[..8].copy_from_slice(&seq.to_be_bytes());
            let event = if seq == 1 {
                NewEvent::new(
                    shared::UnixMillis::new(1_800_000_000_000),
                    TxId(tx),
                    recorded(Kind::AccountOpened {
                        pan: pan.clone(),
                        id_commitment: vec![0; 32],
                    }),
                )
            } else {
                let amount = Amount::from_minor(1);
                NewEvent::new(
                    shared::UnixMillis::new(1_800_000_000_000 + seq),
                    TxId(tx),
                    recorded(Kind::Deposited {
                        pan: pan.clone(),
                        amount,
                    }),
                )
                .with_postings(vec![
                    Posting::decrease(Account::External, amount),
                    Posting::increase(Account::Bank(pan.clone()), amount),
                ])
            };
            group.append(vec![event], &projection).unwrap();
        }
        group.commit().unwrap();
    }
}

/// A copy of the log at `from` at `to` whose stored event `seq` is decoded, changed by
/// `change` (e.g. its `prev_hash` or its `seq`) and stored again in place, unchained.
pub fn rewrite_event<K: Serialize + DeserializeOwned>(
    from: &Path,
    to: &Path,
    seq: u64,
    change: impl FnOnce(&mut Event<K>),
) {
    std::fs::copy(from, to).unwrap();
    let db = redb::Database::open(to).unwrap();
    let txn = db.begin_write().unwrap();
    {
        use redb::ReadableTable as _;
        let mut table = txn.open_table(EVENTS).unwrap();
        let mut event: Event<K> = {
            let stored = table.get(seq).unwrap().unwrap();
            Event::decode(stored.value()).unwrap()
        };
        change(&mut event);
        table
            .insert(seq, event.encode().unwrap().as_slice())
            .unwrap();
    }
    txn.commit().unwrap();
}

/// The broker's public key alone, as the wallets pinned it, written as PEM into
/// `dir/broker-key`.
pub fn broker_key_only(dir: &Path, run: &Path) -> PathBuf {
    let keys = dir.join("broker-key");
    std::fs::create_dir_all(&keys).unwrap();
    let created = events::<WalletEvent>(&run.join("customer-alice").join("wallet.redb"));
    let WalletEvent::WalletCreated { identity } = &created[0].kind else {
        panic!("a wallet log starts with WalletCreated");
    };
    let key = shared::PublicKey::from_spki_der(Suite::Modern, &identity.broker_key).unwrap();
    std::fs::write(keys.join("broker.pub.pem"), key.to_pem().unwrap()).unwrap();
    keys
}
