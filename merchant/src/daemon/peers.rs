//! The customers' public keys the merchant daemon learns (protocol.md section 6.0b: a
//! peer's key arrives only from the broker, whose signature certifies it). The first frame
//! from an unknown sender makes the daemon ask the broker for the sender's key before the
//! node sees the frame ([`prepare`], run by the gateway in arrival order); the key is
//! handed to the node by a `Call` queued before the frame, and kept in
//! `<data dir>/peers/<uid>.pub.pem` so that it is known after a restart (the node's log
//! holds no keys; a 6.5 authorization relayed by the broker needs the customer's key too).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::bus::{Bus, Subjects};
use shared::runtime::{Call, Prepare};
use shared::wire::Frame;
use shared::{KeyPair, PublicKey, Suite, Uid};

use super::broker_client::{BrokerClientError, fetch_public_key};
use crate::shell::Shelled;

/// The directory of stored peer keys inside the data directory.
pub const PEERS_DIR: &str = "peers";

/// Why the stored peer keys could not be read.
#[derive(Debug, thiserror::Error)]
#[error("peer key store {path}: {message}")]
pub struct PeerStoreError {
    /// The file or directory.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// The keys stored under `data_dir/peers`, each checked to hash to the UID it is filed
/// under.
///
/// # Errors
/// An unreadable directory or file, a file that is not a public key of `suite`, or one
/// filed under another UID.
pub fn load_stored(data_dir: &Path, suite: Suite) -> Result<Vec<PublicKey>, PeerStoreError> {
    let dir = data_dir.join(PEERS_DIR);
    let error = |path: &Path, message: String| PeerStoreError {
        path: path.to_owned(),
        message,
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(error(&dir, e.to_string())),
    };
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| error(&dir, e.to_string()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(uid) = name.strip_suffix(".pub.pem") else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|e| error(&path, e.to_string()))?;
        let key = PublicKey::from_pem(suite, &text).map_err(|e| error(&path, e.to_string()))?;
        if key.uid().to_string() != uid {
            return Err(error(&path, format!("the key's UID is {}", key.uid())));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Writes `key` to `data_dir/peers/<uid>.pub.pem` (through a temporary file and a rename,
/// so a crash leaves no half-written key), private like the rest of the data directory
/// (`shared::private_dir`: who the merchant deals with is nobody else's business).
fn store(dir: &Path, key: &PublicKey) -> Result<(), String> {
    shared::private_dir::create_dir(dir).map_err(|e| e.to_string())?;
    let pem = key.to_pem().map_err(|e| e.to_string())?;
    let path = dir.join(format!("{}.pub.pem", key.uid()));
    shared::private_dir::replace_file(&path, pem.as_bytes()).map_err(|e| e.to_string())
}

/// How long a UID the broker could not give a key for is not asked about again: frames
/// from made-up senders must not turn into a stream of requests to the broker, each
/// holding up the merchant's gateway.
pub const UNKNOWN_FOR: Duration = Duration::from_secs(60);
/// The most UIDs remembered as unknown; beyond it the oldest are forgotten.
pub const MAX_UNKNOWN: usize = 4096;

/// What [`prepare`] needs.
struct Learner<B> {
    bus: B,
    subjects: Subjects,
    keys: KeyPair,
    broker: PublicKey,
    timeout: Duration,
    dir: PathBuf,
    known: Mutex<BTreeSet<Uid>>,
    /// UIDs the broker did not give a key for, and when.
    unknown: Mutex<BTreeMap<Uid, Instant>>,
}

/// The gateway's [`Prepare`] step of the merchant daemon (see the module doc): knows the
/// broker and `known` already.
pub fn prepare<B: Bus>(
    bus: B,
    subjects: Subjects,
    keys: KeyPair,
    broker: PublicKey,
    timeout: Duration,
    data_dir: &Path,
    known: impl IntoIterator<Item = Uid>,
) -> Prepare<Shelled> {
    let mut set: BTreeSet<Uid> = known.into_iter().collect();
    set.insert(broker.uid());
    set.insert(keys.uid());
    let learner = Arc::new(Learner {
        bus,
        subjects,
        keys,
        broker,
        timeout,
        dir: data_dir.join(PEERS_DIR),
        known: Mutex::new(set),
        unknown: Mutex::new(BTreeMap::new()),
    });
    Arc::new(move |addr, bytes| {
        let learner = learner.clone();
        Box::pin(async move {
            // A frame that does not decode is the node's to refuse; nothing to learn.
            let Ok(frame) = Frame::decode(&bytes) else {
                return;
            };
            let sender = frame.header.sender;
            if learner.is_known(&sender) || learner.recently_unknown(&sender) {
                return;
            }
            match fetch_public_key(
                &learner.bus,
                &learner.subjects,
                &learner.keys,
                &learner.broker,
                sender,
                learner.timeout,
            )
            .await
            {
                Ok(key) => {
                    if let Err(e) = store(&learner.dir, &key) {
                        tracing::warn!(error = %e, "the sender's key could not be stored; it is fetched again after a restart");
                    }
                    if let Ok(mut known) = learner.known.lock() {
                        known.insert(sender);
                    }
                    tracing::info!(peer = %sender, "learned a customer's key from the broker (6.0b)");
                    addr.do_send(Call(Box::new(move |s: &mut Shelled, _now| {
                        s.node.add_peer(key);
                    })));
                }
                // An unreachable broker says nothing of the sender: it is asked again with
                // the sender's next frame (its retry with the same bodies, protocol.md
                // section 7), so a broker restarting does not lock a customer out for
                // `UNKNOWN_FOR`. Only an answer (a refusal, a bad reply) is remembered.
                Err(e @ BrokerClientError::Bus(_)) => {
                    tracing::warn!(error = %e, peer = %sender, "the broker is unreachable, so the sender's key could not be learned; the node refuses the frame and asks again with the next");
                }
                Err(e) => {
                    learner.remember_unknown(sender);
                    tracing::warn!(error = %e, peer = %sender, "the sender's key could not be learned; the node refuses the frame");
                }
            }
        })
    })
}

impl<B> Learner<B> {
    fn is_known(&self, uid: &Uid) -> bool {
        // A poisoned lock only means another task panicked while inserting: ask again.
        self.known.lock().is_ok_and(|known| known.contains(uid))
    }

    /// Whether the broker had no key for `uid` less than [`UNKNOWN_FOR`] ago.
    fn recently_unknown(&self, uid: &Uid) -> bool {
        self.unknown.lock().is_ok_and(|unknown| {
            unknown
                .get(uid)
                .is_some_and(|at| at.elapsed() < UNKNOWN_FOR)
        })
    }

    /// Remembers that the broker had no key for `uid` (a registered customer is learned
    /// again after [`UNKNOWN_FOR`]), keeping at most [`MAX_UNKNOWN`] entries.
    fn remember_unknown(&self, uid: Uid) {
        if let Ok(mut unknown) = self.unknown.lock() {
            unknown.retain(|_, at| at.elapsed() < UNKNOWN_FOR);
            while unknown.len() >= MAX_UNKNOWN {
                let oldest = unknown
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(uid, _)| *uid);
                match oldest {
                    Some(oldest) => unknown.remove(&oldest),
                    None => break,
                };
            }
            unknown.insert(uid, Instant::now());
        }
    }
}
