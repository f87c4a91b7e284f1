//! The customers' public keys the merchant daemon learns (protocol.md section 6.0b: a
//! peer's key arrives only from the broker, whose signature certifies it). The first frame
//! from an unknown sender makes the daemon ask the broker for the sender's key before the
//! node sees the frame ([`prepare`], the gateway's screen); the key is handed to the node
//! by a `Call` queued before the frame, and kept in `<data dir>/peers/<uid>.pub.pem` so
//! that it is known after a restart (the node's log holds no keys; a 6.5 authorization
//! relayed by the broker needs the customer's key too).
//!
//! Made-up senders cost a lookup each (an RSA signature at both ends), so lookups are
//! bounded apart from the serving path (protocol.md section 10, [`LookupLimits`]): a frame
//! from a known peer goes straight to the node and never waits behind a lookup; lookups
//! share one budget, at most [`LookupLimits::concurrent`] at a time and
//! [`LookupLimits::per_sec`] a second (what a flood can make both nodes spend on them); at
//! most [`LookupLimits::queue`] senders wait for one (a frame beyond that is answered
//! with the unsigned `Error { TooManyRequests }`: its sender's signature cannot be checked,
//! so a signed answer would cost what the bound saves, section 3); frames of a sender whose
//! lookup is under way wait for that one lookup (at most [`MAX_WAITING`] of them, the rest
//! answered the same way); and a UID the broker says it does not know is remembered as
//! unknown for [`LookupLimits::unknown_for`] (at most [`MAX_UNKNOWN`] of them), its frames
//! answered with the unsigned `Error { UnknownPeer }` without asking again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Addr;
use bytes::Bytes;
use shared::ErrorCode;
use shared::bus::{Bus, Subjects};
use shared::node::{Refusal, TOO_MANY_REQUESTS_MESSAGE, unsigned_error};
use shared::runtime::{Admission, Call, NodeActor, Prepare};
use shared::wire::{Frame, Header};
use shared::{KeyPair, PublicKey, Suite, Uid};
use tokio::sync::{Semaphore, watch};

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

/// Sets the key-lookup gauge to `n` senders waiting (`/metrics`, README "Operate it").
fn lookups_queued(n: usize) {
    use shared::runtime::observe;
    observe::Gauge::new(observe::KEY_LOOKUPS, observe::count(n)).set();
}

/// The most UIDs remembered as unknown; beyond it the oldest are forgotten.
pub const MAX_UNKNOWN: usize = 4096;
/// The most frames of one unknown sender waiting for its key lookup; more are dropped.
pub const MAX_WAITING: usize = 8;

/// The bounds on key lookups (protocol.md section 10; the merchant's `key_lookups`,
/// `key_lookup_queue` and `unknown_peer_secs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupLimits {
    /// Lookups under way at once.
    pub concurrent: usize,
    /// Lookups started per second: the broker's and the merchant's private-key time a
    /// flood of made-up senders can take.
    pub per_sec: u32,
    /// Senders waiting for a lookup, those under way included; a frame of another unknown
    /// sender beyond it is dropped.
    pub queue: usize,
    /// How long a UID the broker could not give a key for is not asked about again: frames
    /// from made-up senders must not turn into a stream of requests to the broker.
    pub unknown_for: Duration,
    /// How long one lookup waits for the broker's answer.
    pub timeout: Duration,
}

impl Default for LookupLimits {
    /// A few lookups at once and a queue far above the new customers an honest market sees
    /// at one moment; a minute of remembering.
    fn default() -> Self {
        LookupLimits {
            concurrent: 4,
            per_sec: 20,
            queue: 64,
            unknown_for: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A lookup's end, `Some(serve)` once it ended, and how many frames wait for it.
type Waiting = (watch::Receiver<Option<bool>>, usize);

/// What [`prepare`] needs.
struct Learner<B> {
    bus: B,
    subjects: Subjects,
    keys: KeyPair,
    broker: PublicKey,
    dir: PathBuf,
    limits: LookupLimits,
    known: Mutex<BTreeSet<Uid>>,
    /// UIDs the broker did not give a key for, and when.
    unknown: Mutex<BTreeMap<Uid, Instant>>,
    /// The lookups waiting or under way, each with what its frames wait for (`Some(serve)`
    /// once it ended) and how many frames wait.
    pending: Mutex<BTreeMap<Uid, Waiting>>,
    /// One permit per lookup under way.
    budget: Semaphore,
    /// When the next lookup may start (`per_sec`).
    next_start: Mutex<Instant>,
}

/// The gateway's [`Prepare`] step of the merchant daemon (see the module doc): knows the
/// broker and `known` already.
pub fn prepare<B: Bus>(
    bus: B,
    subjects: Subjects,
    keys: KeyPair,
    broker: PublicKey,
    data_dir: &Path,
    known: impl IntoIterator<Item = Uid>,
    limits: LookupLimits,
) -> Prepare<Shelled> {
    let mut set: BTreeSet<Uid> = known.into_iter().collect();
    set.insert(broker.uid());
    set.insert(keys.uid());
    let learner = Arc::new(Learner {
        bus,
        subjects,
        keys,
        broker,
        dir: data_dir.join(PEERS_DIR),
        limits,
        known: Mutex::new(set),
        unknown: Mutex::new(BTreeMap::new()),
        pending: Mutex::new(BTreeMap::new()),
        budget: Semaphore::new(limits.concurrent.max(1)),
        next_start: Mutex::new(Instant::now()),
    });
    Arc::new(move |addr, bytes| learner.admit(addr, bytes))
}

impl<B: Bus> Learner<B> {
    /// Whether the frame `bytes` goes to the node now, after its sender's key lookup, or
    /// not at all (see the module doc). Never waits.
    fn admit(self: &Arc<Self>, addr: &Addr<NodeActor<Shelled>>, bytes: &Bytes) -> Admission {
        // A frame with no readable header is the node's to refuse; nothing to learn.
        let Ok(header) = Frame::header_of(bytes) else {
            return Admission::Serve;
        };
        let sender = header.sender;
        if self.is_known(&sender) {
            return Admission::Serve;
        }
        if self.recently_unknown(&sender) {
            tracing::debug!(peer = %sender, "refused: the broker does not know the sender");
            return self.refuse(
                &header,
                ErrorCode::UnknownPeer,
                "the sender is not a registered peer",
            );
        }
        // A poisoned lock only means another task panicked mid-insert: refuse for now.
        let Ok(mut pending) = self.pending.lock() else {
            return Admission::Drop;
        };
        let ended = if let Some((ended, waiting)) = pending.get_mut(&sender) {
            if *waiting >= MAX_WAITING {
                tracing::debug!(peer = %sender, "refused: too many frames wait for the sender's key");
                return self.refuse(
                    &header,
                    ErrorCode::TooManyRequests,
                    TOO_MANY_REQUESTS_MESSAGE,
                );
            }
            *waiting += 1;
            ended.clone()
        } else {
            if pending.len() >= self.limits.queue {
                tracing::debug!(peer = %sender, "refused: the key lookups' queue is full");
                return self.refuse(
                    &header,
                    ErrorCode::TooManyRequests,
                    TOO_MANY_REQUESTS_MESSAGE,
                );
            }
            let (end, ended) = watch::channel(None);
            pending.insert(sender, (ended.clone(), 1));
            lookups_queued(pending.len());
            tokio::spawn(self.clone().lookup(sender, addr.clone(), end));
            ended
        };
        drop(pending);
        Admission::After(Box::pin(async move {
            let mut ended = ended;
            ended
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|serve| *serve)
                .unwrap_or(false)
        }))
    }

    /// The unsigned `Error { code }` answering the request under `header` (protocol.md
    /// section 3: a frame this node cannot verify costs it no signature).
    fn refuse(&self, header: &Header, code: ErrorCode, message: &str) -> Admission {
        let refusal = Refusal::new(code, message);
        unsigned_error(self.keys.suite(), self.keys.uid(), header, &[], &refusal)
            .map_or(Admission::Drop, |bytes| {
                Admission::Refuse(Bytes::from(bytes))
            })
    }

    /// Asks the broker for `sender`'s key within the budget, hands a key it gives to the
    /// node (before any frame waiting for it) and says on `end` whether those frames go on.
    async fn lookup(
        self: Arc<Self>,
        sender: Uid,
        addr: Addr<NodeActor<Shelled>>,
        end: watch::Sender<Option<bool>>,
    ) {
        let serve = match self.budget.acquire().await {
            Ok(_permit) => {
                tokio::time::sleep_until(self.start_slot().into()).await;
                self.fetch(sender, &addr).await
            }
            // The semaphore is never closed; if it were, nothing could be learned.
            Err(_) => false,
        };
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&sender);
            lookups_queued(pending.len());
        }
        let _ = end.send(Some(serve));
    }

    /// One 6.0b lookup of `sender`; whether its frames go on to the node.
    async fn fetch(&self, sender: Uid, addr: &Addr<NodeActor<Shelled>>) -> bool {
        match fetch_public_key(
            &self.bus,
            &self.subjects,
            &self.keys,
            &self.broker,
            sender,
            self.limits.timeout,
        )
        .await
        {
            Ok(key) => {
                if let Err(e) = store(&self.dir, &key) {
                    tracing::warn!(error = %e, "the sender's key could not be stored; it is fetched again after a restart");
                }
                tracing::info!(peer = %sender, "learned a customer's key from the broker (6.0b)");
                // The call is queued before the sender counts as known, so that no frame of
                // its reaches the node before its key does.
                addr.do_send(Call(Box::new(move |s: &mut Shelled, _now| {
                    s.node.add_peer(key);
                })));
                if let Ok(mut known) = self.known.lock() {
                    known.insert(sender);
                }
                true
            }
            // An unreachable broker says nothing of the sender: the node refuses the frame
            // and the sender's next frame (its retry with the same bodies, protocol.md
            // section 7) asks again, so a broker restarting does not lock a customer out
            // for `unknown_for`. Only an answer (a refusal, a bad reply) is remembered.
            Err(e @ BrokerClientError::Bus(_)) => {
                tracing::warn!(error = %e, peer = %sender, "the broker is unreachable, so the sender's key could not be learned; the node refuses the frame and asks again with the next");
                true
            }
            Err(e) => {
                self.remember_unknown(sender);
                tracing::info!(error = %e, peer = %sender, "the sender's key could not be learned; its frames are dropped for a while");
                false
            }
        }
    }
}

impl<B> Learner<B> {
    /// When the lookup asking now may start: lookups start at most `per_sec` a second,
    /// each at the first free slot (now, when the budget is unused).
    fn start_slot(&self) -> Instant {
        let gap = Duration::from_secs(1) / self.limits.per_sec.max(1);
        let now = Instant::now();
        // A poisoned lock only means another task panicked mid-update: start now.
        self.next_start.lock().map_or(now, |mut next| {
            let slot = (*next).max(now);
            *next = slot + gap;
            slot
        })
    }

    fn is_known(&self, uid: &Uid) -> bool {
        // A poisoned lock only means another task panicked while inserting: ask again.
        self.known.lock().is_ok_and(|known| known.contains(uid))
    }

    /// Whether the broker had no key for `uid` less than `unknown_for` ago.
    fn recently_unknown(&self, uid: &Uid) -> bool {
        let unknown_for = self.limits.unknown_for;
        self.unknown.lock().is_ok_and(|unknown| {
            unknown
                .get(uid)
                .is_some_and(|at| at.elapsed() < unknown_for)
        })
    }

    /// Remembers that the broker had no key for `uid` (a registered customer is learned
    /// again after `unknown_for`), keeping at most [`MAX_UNKNOWN`] entries.
    fn remember_unknown(&self, uid: Uid) {
        let unknown_for = self.limits.unknown_for;
        if let Ok(mut unknown) = self.unknown.lock() {
            unknown.retain(|_, at| at.elapsed() < unknown_for);
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
