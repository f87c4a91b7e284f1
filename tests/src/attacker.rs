//! The attacker of protocol.md section 10, for the tests that do the attacks through the
//! daemons (`tests/tests/abuse.rs`): a raw `async-nats` connection under a registered
//! customer's own NATS user and the customer's real keys (a customer holding no money), able
//! to publish what no wallet would — random garbage, frames naming random senders, junk
//! registrations, bit-flipped frames, and validly signed frames of any label with chosen
//! bodies, built as the wallet builds them (`shared::node::Draft`, [`crate::frames`]) — and
//! to collect every answer that comes back, on its reply inboxes and its peer subject.
//!
//! Section 10 bounds what such a peer can make a node spend while honest peers are served.
//! The bound a test asserts is a *ratio*, never an absolute time: [`ratio`] times an honest
//! operation K times with no attack, then at least K times and for as long as a [`Flood`]
//! lasts, in the same test on the same machine, and returns both medians and their
//! quotient.
//!
//! The frames a flood sends are built before it starts ([`Forger`]), so the attacker's own
//! signing is not part of the load the honest peer meets: what is measured is what the
//! frames cost the node. A flood goes into any [`Sink`]: the attacker's NATS connection, or
//! a [`Bus`] (the in-process bench, `tests/benches/abuse.rs`).
//!
//! Every function here panics when the transport fails: this is a test kit, and the panic
//! is the test's failure message.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use shared::bus::{Bus, InboxPrefix, Subject, Subjects};
use shared::node::Draft;
use shared::wire::bodies::{
    Body, ErrorBody, RegistrationRequestX0, VendorScripNoticeX0, VendorScripRequestX1,
    VendorScripRequestX2,
};
use shared::wire::{Frame, Header, Label, Part, id_proof, public_key_inner, seal, sign};
use shared::{AccountId, Amount, KeyPair, Mint, Pan, PanSecret, PublicKey, Suite, TxId, Uid};

use crate::frames::{encoded, sealed_part};

/// The code of `TooManyRequests` (protocol.md appendix C, 38): the unsigned refusal of a
/// frame over a quota (section 10). Kept as the number: a receiver keeps a code as its
/// number (appendix C), and the tests compare the number on the wire.
pub const TOO_MANY_REQUESTS: u16 = 38;

/// The NATS user an attacker connects as: its own, as the deployment's generated
/// configuration gives every registered customer (the attacker *is* one).
#[derive(Clone)]
pub struct NatsLogin {
    /// The user name.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for NatsLogin {
    /// The user only: a password never reaches a test's output (as `NatsCredentials`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsLogin")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// One answer that came back to the attacker: where it arrived and its bytes.
#[derive(Clone, Debug)]
pub struct Caught {
    /// The subject it arrived on (a reply inbox of the attacker's, or its peer subject).
    pub subject: String,
    /// The frame (or whatever the node sent).
    pub payload: Bytes,
}

/// How an answer reads to the attacker: only the shape the tests assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An unsigned `Error` (one `Part::Clear`, protocol.md section 3) of this code, and
    /// whether its `re` carries an empty digest (the request did not verify).
    Unsigned {
        /// The code.
        code: u16,
        /// The request's tx (the frame's header).
        tx: TxId,
        /// Whether `re.digest` is empty.
        empty_digest: bool,
    },
    /// A signed frame (any label, the `Error`'s code when it is one).
    Signed {
        /// The frame's label.
        label: Label,
        /// The frame's tx.
        tx: TxId,
        /// The code of a signed `Error`, read without checking its signature.
        code: Option<u16>,
    },
    /// An unsigned `Ack` (the broker's to 6.3 step 1, docs/adr/0008).
    UnsignedAck {
        /// The frame's tx.
        tx: TxId,
    },
    /// Something that does not decode as a frame.
    NotAFrame,
}

impl Answer {
    /// Reads `payload` as an answer (see the variants).
    #[must_use]
    pub fn of(payload: &[u8]) -> Answer {
        let Ok(frame) = Frame::decode(payload) else {
            return Answer::NotAFrame;
        };
        let tx = frame.header.tx;
        match (frame.header.label, frame.parts.as_slice()) {
            (Label::Error, [Part::Clear { body }]) => match ErrorBody::from_bytes(body) {
                Ok(e) => Answer::Unsigned {
                    code: e.code,
                    tx,
                    empty_digest: e.re.digest.is_empty(),
                },
                Err(_) => Answer::NotAFrame,
            },
            (Label::Ack, [Part::Clear { .. }]) => Answer::UnsignedAck { tx },
            (label, parts) => {
                let code = match (label, parts.first()) {
                    (Label::Error, Some(Part::Signed { body, .. })) => {
                        ErrorBody::from_bytes(body).ok().map(|e| e.code)
                    }
                    _ => None,
                };
                Answer::Signed { label, tx, code }
            }
        }
    }

    /// Whether this is the unsigned `TooManyRequests` of a quota (section 10).
    #[must_use]
    pub fn is_too_many(&self) -> bool {
        matches!(
            self,
            Answer::Unsigned {
                code: TOO_MANY_REQUESTS,
                ..
            }
        )
    }

    /// Whether the node spent a signature on this answer.
    #[must_use]
    pub fn is_signed(&self) -> bool {
        matches!(self, Answer::Signed { .. })
    }
}

/// A registered customer gone bad: its keys, its account ID, a raw NATS connection under
/// its own user, and the broker's public key (which every peer pins, section 1).
pub struct Attacker {
    nats: async_nats::Client,
    forger: Forger,
    subjects: Subjects,
    inbox: InboxPrefix,
    next_inbox: AtomicU64,
    caught: Arc<Mutex<Vec<Caught>>>,
}

impl Attacker {
    /// Connects to `url` as `login`, with the customer's `keys` and account `id`, and
    /// starts collecting what arrives on its reply inboxes and its peer subject (subscribed
    /// when this returns).
    ///
    /// # Panics
    /// When the server refuses the connection or a subscription.
    pub async fn connect(
        url: &str,
        login: &NatsLogin,
        keys: KeyPair,
        id: AccountId,
        broker: PublicKey,
    ) -> Attacker {
        let subjects = Subjects::default();
        let inbox = subjects.inbox_prefix(&keys.uid());
        let nats = async_nats::ConnectOptions::with_user_and_password(
            login.user.clone(),
            login.password.clone(),
        )
        .custom_inbox_prefix(inbox.as_str())
        .name("attacker")
        .connect(url)
        .await
        .expect("the attacker connects as its own user");
        let caught = Arc::new(Mutex::new(Vec::new()));
        for subject in [
            format!("{}.>", inbox.as_str()),
            subjects.peer(&keys.uid()).to_string(),
        ] {
            let mut sub = nats
                .subscribe(subject)
                .await
                .expect("the attacker subscribes to its own subjects");
            let sink = caught.clone();
            tokio::spawn(async move {
                while let Some(m) = sub.next().await {
                    sink.lock().expect("the caught lock").push(Caught {
                        subject: m.subject.to_string(),
                        payload: m.payload,
                    });
                }
            });
        }
        nats.flush().await.expect("the subscriptions are active");
        Attacker {
            nats,
            forger: Forger { keys, id, broker },
            subjects,
            inbox,
            next_inbox: AtomicU64::new(0),
            caught,
        }
    }

    /// The attacker's UID.
    #[must_use]
    pub fn uid(&self) -> Uid {
        self.forger.uid()
    }

    /// What makes the attacker's frames: its keys and account.
    #[must_use]
    pub fn forge(&self) -> &Forger {
        &self.forger
    }

    /// The subjects of the deployment.
    #[must_use]
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// Publishes `payload` to `subject` with a fresh reply inbox of the attacker's, as a
    /// request is sent, without waiting for the answer (it is collected: [`Attacker::caught`]).
    ///
    /// # Panics
    /// When the connection is closed.
    pub async fn send(&self, subject: &Subject, payload: Bytes) {
        let token = self.next_inbox.fetch_add(1, Ordering::Relaxed);
        let reply = self.inbox.inbox(token);
        self.nats
            .publish_with_reply(subject.to_string(), reply.to_string(), payload)
            .await
            .expect("publish");
    }

    /// Sends `frames` to `subject` ([`Attacker::send`]) and waits until the server has them.
    ///
    /// # Panics
    /// When the connection is closed.
    pub async fn send_all(&self, subject: &Subject, frames: &[Bytes]) {
        for f in frames {
            self.send(subject, f.clone()).await;
        }
        self.nats.flush().await.expect("flush");
    }

    /// Everything that came back so far, in arrival order.
    ///
    /// # Panics
    /// When a collector panicked.
    #[must_use]
    pub fn caught(&self) -> Vec<Caught> {
        self.caught.lock().expect("the caught lock").clone()
    }

    /// Forgets what came back so far (between the phases of a test).
    ///
    /// # Panics
    /// When a collector panicked.
    pub fn clear_caught(&self) {
        self.caught.lock().expect("the caught lock").clear();
    }

    /// Waits until `done` holds of what came back, or until nothing more arrived for
    /// `quiet` (whichever first), bounded by `patience`. Returns what came back.
    pub async fn wait_for(
        &self,
        done: impl Fn(&[Caught]) -> bool,
        quiet: Duration,
        patience: Duration,
    ) -> Vec<Caught> {
        let start = Instant::now();
        let (mut seen, mut since) = (0, Instant::now());
        loop {
            let caught = self.caught();
            if done(&caught) || since.elapsed() >= quiet || start.elapsed() >= patience {
                return caught;
            }
            if caught.len() != seen {
                (seen, since) = (caught.len(), Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A flood of `frames` to `subject`, each with a reply inbox of the attacker's (so the
    /// node answers, and the answers are collected), started now (see [`Flood`]).
    #[must_use]
    pub fn flood(&self, subject: &Subject, frames: Vec<Bytes>, pace: Pace) -> Flood {
        let sink = NatsSink {
            nats: self.nats.clone(),
            inbox: self.inbox.clone(),
            subject: subject.clone(),
            // Reply inboxes of the flood, apart from the attacker's single sends.
            token: 1 << 40,
        };
        Flood::start(sink, frames, pace)
    }
}

/// The attacker's frames: built with its real keys and account ID as the wallet builds
/// its own (`shared::node::Draft`, [`crate::frames`]), with the bodies it chooses. Apart
/// from any transport, so that a flood is prepared before it is sent, and an in-process
/// bench sends the same frames on the memory bus.
pub struct Forger {
    keys: KeyPair,
    id: AccountId,
    broker: PublicKey,
}

impl Forger {
    /// The forger of the customer with `keys` and account `id`, pinning `broker`.
    #[must_use]
    pub fn new(keys: KeyPair, id: AccountId, broker: PublicKey) -> Forger {
        Forger { keys, id, broker }
    }

    /// The customer's UID.
    #[must_use]
    pub fn uid(&self) -> Uid {
        self.keys.uid()
    }

    /// The customer's keys.
    #[must_use]
    pub fn keys(&self) -> &KeyPair {
        &self.keys
    }

    /// The attacker's validly signed frame of `body` in `tx` to `to`, in the clear (as the
    /// wallet signs 6.3 step 1, `TransactionStatus`, …; `shared::node::Draft`).
    ///
    /// # Panics
    /// When the key cannot sign.
    #[must_use]
    pub fn signed<B: Body>(&self, tx: TxId, to: Uid, body: &B) -> Bytes {
        let sent = Draft::delivery(self.keys.suite(), tx, self.uid(), to, body)
            .seal(&self.keys, None)
            .expect("a signed frame");
        Bytes::from(sent.frame)
    }

    /// 6.2 step 2 on a fresh tx with no notice at the broker: `VendorScripRequest` of
    /// `value` to `merchant` (whose key is `merchant_key`), its merchant part valid and
    /// signed, its broker part a made-up BrokerScrip sealed to the broker with the
    /// attacker's IdProof, or (`garbage_broker_part`) random bytes the broker cannot open.
    ///
    /// # Panics
    /// When a key cannot sign or seal.
    #[must_use]
    pub fn vendor_scrip_request(
        &self,
        rng: &mut StdRng,
        merchant_key: &PublicKey,
        value: Amount,
        garbage_broker_part: bool,
    ) -> (TxId, Bytes) {
        let tx = TxId(rng.random());
        let suite = self.keys.suite();
        let header = Header::new(suite, Label::VendorScripRequest, tx, self.uid());
        let broker_part = if garbage_broker_part {
            Part::Sealed {
                to: self.broker.uid(),
                wrapped_key: random_bytes(rng, 128),
                ciphertext: random_bytes(rng, 160),
            }
        } else {
            // A BrokerScrip of a mint the broker never had: its certificate cannot verify.
            let mint = Mint::new(
                suite,
                self.broker.uid(),
                shared::fixtures::root_key(rng.random()),
            );
            let (scrip, cs) = mint.issue(value, u64::MAX / 2);
            let x1 = VendorScripRequestX1 {
                cs_hash: cs.cs_hash(suite),
                scrip: scrip.clone(),
                value,
            };
            sealed_part(
                &self.keys,
                &header,
                &self.broker,
                Some(&self.id),
                &x1,
                Some((&scrip, &cs)),
            )
        };
        let x2 = VendorScripRequestX2 { value };
        let merchant_part = sealed_part(&self.keys, &header, merchant_key, None, &x2, None);
        (
            tx,
            Bytes::from(encoded(header, vec![broker_part, merchant_part])),
        )
    }

    /// 6.2 step 1 on a fresh tx: the attacker's `VendorScripNotice` for `merchant`, sealed
    /// to the broker with its IdProof, valid in every respect (the broker opens an exchange
    /// for it; the attacker never follows it with step 2).
    ///
    /// # Panics
    /// When the key cannot sign or seal.
    #[must_use]
    pub fn vendor_scrip_notice(&self, rng: &mut StdRng, merchant: Uid) -> (TxId, Bytes) {
        let tx = TxId(rng.random());
        let header = Header::new(self.keys.suite(), Label::VendorScripNotice, tx, self.uid());
        let x0 = VendorScripNoticeX0 { merchant };
        let part = sealed_part(&self.keys, &header, &self.broker, Some(&self.id), &x0, None);
        (tx, Bytes::from(encoded(header, vec![part])))
    }

    /// A junk registration (6.0) from a throwaway key, `key`, that never verifies: sealed
    /// to the broker, so that it must spend a decryption on it, either with random bytes
    /// where the wrapped session key should be (`bytes_only`), or properly sealed with the
    /// public key of `other` inside, which did not sign it (a guessed `IdProof` for an
    /// existing account beside).
    ///
    /// # Panics
    /// When `key` cannot sign or the part cannot be sealed.
    #[must_use]
    pub fn junk_registration(
        &self,
        rng: &mut StdRng,
        key: &KeyPair,
        other: &KeyPair,
        bytes_only: bool,
    ) -> Bytes {
        let tx = TxId(rng.random());
        let header = Header::new(key.suite(), Label::RegistrationRequest, tx, key.uid());
        let part = if bytes_only {
            Part::Sealed {
                to: self.broker.uid(),
                wrapped_key: random_bytes(rng, 128),
                ciphertext: random_bytes(rng, 200),
            }
        } else {
            let pan = Pan::new(format!("JUNK{:016x}", rng.random::<u64>()));
            let guessed = AccountId::derive(key.suite(), &PanSecret::new("a guess"), &pan);
            let inners = vec![
                sign(key, &header, &RegistrationRequestX0 { pan })
                    .expect("a signature")
                    .into(),
                id_proof(key, &header, &guessed).expect("an IdProof"),
                public_key_inner(other.public()),
            ];
            seal(&header, &self.broker, &inners).expect("a sealed part")
        };
        Bytes::from(encoded(header, vec![part]))
    }
}

/// A frame that decodes but names a sender nobody registered: a `TransactionStatus` signed
/// by `keys` under a random sender UID, so that no key the node can find verifies it.
///
/// # Panics
/// When the key cannot sign.
#[must_use]
pub fn random_sender(rng: &mut StdRng, keys: &KeyPair) -> Bytes {
    let tx = TxId(rng.random());
    let sender = Uid(rng.random());
    let body = shared::wire::bodies::TransactionStatusBody { tx };
    let own = Header::new(keys.suite(), Label::TransactionStatus, tx, keys.uid());
    let part: Part = sign(keys, &own, &body).expect("a signature").into();
    let forged = Header::new(keys.suite(), Label::TransactionStatus, tx, sender);
    Bytes::from(encoded(forged, vec![part]))
}

/// `frame` with one random bit flipped in its last third (inside a signature or sealed
/// part, past the header): it still decodes, often, but never verifies.
#[must_use]
pub fn bit_flipped(rng: &mut StdRng, frame: &[u8]) -> Bytes {
    let mut bytes = frame.to_vec();
    let len = bytes.len();
    if len > 0 {
        let at = rng.random_range(len - len / 3..len).min(len - 1);
        bytes[at] ^= 1 << rng.random_range(0..8u8);
    }
    Bytes::from(bytes)
}

/// Random bytes of a random length in `1..max`: no frame at all, mostly.
#[must_use]
pub fn garbage(rng: &mut StdRng, max: usize) -> Bytes {
    let len = rng.random_range(1..max.max(2));
    Bytes::from(random_bytes(rng, len))
}

/// `len` random bytes.
#[must_use]
pub fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.random::<u8>()).collect()
}

/// The seeded generator of one test: a failing run is replayed with the same seed.
#[must_use]
pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A throwaway key pair of `suite`, generated now (the paper suite's RSA-1024 in a few
/// milliseconds).
///
/// # Panics
/// When key generation fails.
#[must_use]
pub fn throwaway_key(suite: Suite) -> KeyPair {
    KeyPair::generate(suite).expect("a throwaway key")
}

/// How fast a [`Flood`] sends: `batch` frames, then a pause of `every`, until it is
/// stopped or has sent `max` frames. After its frames run out it starts over (the same
/// frames again: replays, which are abuse too).
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Frames per burst.
    pub batch: usize,
    /// The pause after each burst.
    pub every: Duration,
    /// The most frames it sends in all.
    pub max: usize,
}

/// A running flood: a task sending prepared frames into a [`Sink`] at a [`Pace`].
pub struct Flood {
    /// One sending task, its stop flag and its count, per flood joined by [`Flood::and`].
    senders: Vec<Sender>,
}

struct Sender {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// Where a [`Flood`]'s frames go.
pub trait Sink: Send + 'static {
    /// Sends one frame; `false` when the transport is gone (the flood ends).
    fn send(&mut self, frame: Bytes) -> impl Future<Output = bool> + Send;
    /// Waits until what was sent left (after each burst).
    fn flush(&mut self) -> impl Future<Output = ()> + Send;
}

/// The attacker's NATS connection: each frame with a reply inbox of its own.
struct NatsSink {
    nats: async_nats::Client,
    inbox: InboxPrefix,
    subject: Subject,
    token: u64,
}

impl Sink for NatsSink {
    async fn send(&mut self, frame: Bytes) -> bool {
        self.token += 1;
        let reply = self.inbox.inbox(self.token).to_string();
        self.nats
            .publish_with_reply(self.subject.to_string(), reply, frame)
            .await
            .is_ok()
    }

    async fn flush(&mut self) {
        let _ = self.nats.flush().await;
    }
}

/// Any [`Bus`] (the in-process memory bus of a bench): each frame published to `subject`
/// with no reply subject, which a node processes the same way (appendix B) and does not
/// answer.
pub struct BusSink<B: Bus> {
    /// The bus.
    pub bus: B,
    /// Where the frames go.
    pub subject: Subject,
}

impl<B: Bus + 'static> Sink for BusSink<B> {
    async fn send(&mut self, frame: Bytes) -> bool {
        self.bus.publish(&self.subject, frame).await.is_ok()
    }

    async fn flush(&mut self) {
        let _ = self.bus.flush().await;
    }
}

impl Flood {
    /// Starts sending `frames` into `sink` at `pace`, on a task of its own.
    #[must_use]
    pub fn start(mut sink: impl Sink, frames: Vec<Bytes>, pace: Pace) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let (stopping, counting) = (stop.clone(), sent.clone());
        let task = tokio::spawn(async move {
            if frames.is_empty() {
                return;
            }
            let mut next = 0usize;
            while !stopping.load(Ordering::Relaxed) && counting.load(Ordering::Relaxed) < pace.max {
                for _ in 0..pace.batch {
                    let frame = frames[next % frames.len()].clone();
                    next += 1;
                    if !sink.send(frame).await {
                        return;
                    }
                    if counting.fetch_add(1, Ordering::Relaxed) + 1 >= pace.max {
                        break;
                    }
                }
                sink.flush().await;
                tokio::time::sleep(pace.every).await;
            }
        });
        Flood {
            senders: vec![Sender { stop, sent, task }],
        }
    }

    /// This flood and `other` as one, run at once (e.g. from two connections of the
    /// attacker's, each frame sent from the one whose inbox is its sender's).
    #[must_use]
    pub fn and(mut self, other: Flood) -> Flood {
        self.senders.extend(other.senders);
        self
    }

    /// How many frames it has sent so far.
    #[must_use]
    pub fn sent(&self) -> usize {
        self.senders
            .iter()
            .map(|s| s.sent.load(Ordering::Relaxed))
            .sum()
    }

    /// Waits until it has sent at least `n` frames (or ended).
    pub async fn until_sent(&self, n: usize) {
        while self.sent() < n && !self.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Whether it has ended by itself (every sender sent its `max`, or lost its
    /// connection).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.senders.iter().all(|s| s.task.is_finished())
    }

    /// Stops it; returns how many frames it sent.
    pub async fn stop(self) -> usize {
        let mut sent = 0;
        for s in &self.senders {
            s.stop.store(true, Ordering::Relaxed);
        }
        for s in self.senders {
            let _ = s.task.await;
            sent += s.sent.load(Ordering::Relaxed);
        }
        sent
    }
}

/// An honest operation's latency without and with an attack (see [`ratio`]).
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// The median with no attack.
    pub unloaded: Duration,
    /// The median while the flood ran.
    pub loaded: Duration,
    /// `loaded / unloaded`.
    pub ratio: f64,
    /// How many frames the flood sent while the honest operation ran.
    pub flood_sent: usize,
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unloaded median {:?}, loaded median {:?}, ratio {:.2} ({} flood frames)",
            self.unloaded, self.loaded, self.ratio, self.flood_sent
        )
    }
}

/// How many times [`ratio`] runs the honest operation at most while a flood lasts (at
/// least `k`): a bound on what a test spends on a flood slower than its pace.
const MAX_LOADED_RUNS: usize = 100;

/// Runs `honest` once to warm up and `k` times with no attack, then starts `flood` (`start_flood`), waits until
/// it has sent `warm` frames (so the node is under attack, not about to be), runs `honest`
/// again at least `k` times and for as long as the flood lasts (so every frame of the
/// attack is sent while the honest peer is measured; at most 100 times), and stops the
/// flood. Returns both medians and their ratio, printing
/// them under `what` (section 10's bound is asserted on the ratio, measured in one test on
/// one machine, never on an absolute time).
pub async fn ratio(
    what: &str,
    k: usize,
    mut honest: impl AsyncFnMut(),
    start_flood: impl FnOnce() -> Flood,
    warm: usize,
) -> Latency {
    // Once untimed: the first run pays for what every later one finds ready (connections,
    // keys learned, caches), which is no part of what the attack costs.
    honest().await;
    let mut unloaded = Vec::with_capacity(k);
    for _ in 0..k {
        let t = Instant::now();
        honest().await;
        unloaded.push(t.elapsed());
    }
    let flood = start_flood();
    flood.until_sent(warm).await;
    let mut loaded = Vec::with_capacity(k);
    while loaded.len() < k || (!flood.is_finished() && loaded.len() < MAX_LOADED_RUNS) {
        let t = Instant::now();
        honest().await;
        loaded.push(t.elapsed());
    }
    let flood_sent = flood.stop().await;
    let (unloaded, loaded) = (median(unloaded), median(loaded));
    let latency = Latency {
        unloaded,
        loaded,
        ratio: loaded.as_secs_f64() / unloaded.as_secs_f64().max(1e-6),
        flood_sent,
    };
    println!("{what}: {latency}");
    latency
}

/// The median of `times` (the upper one of an even count).
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use shared::bus::MemoryBus;
    use shared::node::Draft;
    use shared::wire::bodies::{AckBody, Re, TransactionStatusBody};
    use shared::{ErrorCode, fixtures};

    use super::*;

    const SUITE: Suite = Suite::Paper;

    fn request() -> Header {
        let c = fixtures::keypair(SUITE, 0);
        Header::new(SUITE, Label::TransactionStatus, TxId([7; 16]), c.uid())
    }

    /// The shapes a test asserts on, read from frames as the nodes build them.
    #[test]
    fn answers_read_as_the_nodes_send_them() {
        let b = fixtures::keypair(SUITE, 1);
        let h = request();
        let error =
            |digest: &[u8]| ErrorBody::new(Re::new(&h, digest.to_vec()), ErrorCode::BadFrame, "no");
        let unsigned = Draft::reply(b.uid(), &h, b"", &error(b""))
            .unsigned()
            .seal_unsigned()
            .expect("an unsigned error");
        assert_eq!(
            Answer::of(&unsigned.frame),
            Answer::Unsigned {
                code: ErrorCode::BadFrame.code(),
                tx: h.tx,
                empty_digest: true
            }
        );
        let signed = Draft::reply(b.uid(), &h, b"d", &error(b"d"))
            .seal(b, None)
            .expect("a signed error");
        let read = Answer::of(&signed.frame);
        assert_eq!(
            read,
            Answer::Signed {
                label: Label::Error,
                tx: h.tx,
                code: Some(ErrorCode::BadFrame.code())
            }
        );
        assert!(read.is_signed() && !read.is_too_many());
        let ack = AckBody {
            re: Re::new(&h, Vec::new()),
            deadline: None,
        };
        let ack = Draft::reply(b.uid(), &h, b"", &ack)
            .unsigned()
            .seal_unsigned()
            .expect("an unsigned ack");
        assert_eq!(Answer::of(&ack.frame), Answer::UnsignedAck { tx: h.tx });
        assert_eq!(Answer::of(b"\x00\xffnot a frame"), Answer::NotAFrame);
        let too_many = ErrorBody {
            re: Re::new(&h, Vec::new()),
            code: TOO_MANY_REQUESTS,
            message: String::new(),
        };
        let too_many = Draft::reply(b.uid(), &h, b"", &too_many)
            .unsigned()
            .seal_unsigned()
            .expect("an unsigned error");
        assert!(Answer::of(&too_many.frame).is_too_many());
    }

    /// A flipped frame differs from its original in exactly one bit, past the header.
    #[test]
    fn a_bit_flip_changes_one_bit_of_the_signature_end() {
        let c = fixtures::keypair(SUITE, 0);
        let forger = Forger::new(
            c.clone(),
            AccountId::derive(SUITE, &PanSecret::new("s"), &Pan::new("P")),
            fixtures::keypair(SUITE, 1).public().clone(),
        );
        let tx = TxId([3; 16]);
        let frame = forger.signed(tx, Uid([1; 16]), &TransactionStatusBody { tx });
        let mut rng = seeded(9);
        for _ in 0..20 {
            let flipped = bit_flipped(&mut rng, &frame);
            assert_eq!(flipped.len(), frame.len());
            let bits: u32 = frame
                .iter()
                .zip(flipped.iter())
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            assert_eq!(bits, 1);
            let at = frame.iter().zip(flipped.iter()).position(|(a, b)| a != b);
            assert!(at.is_some_and(|i| i >= frame.len() - frame.len() / 3));
        }
    }

    /// A flood sends exactly its `max`, cycling through its frames, and two joined floods
    /// count together and stop together.
    #[tokio::test]
    async fn a_flood_sends_its_max_and_joined_floods_stop_together() {
        let bus = MemoryBus::default();
        let subject = Subjects::default().broker();
        let mut sub = bus.subscribe(&subject).await.expect("subscribe");
        let frames = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        let sink = || BusSink {
            bus: bus.clone(),
            subject: subject.clone(),
        };
        let pace = Pace {
            batch: 3,
            every: Duration::from_millis(1),
            max: 7,
        };
        let flood = Flood::start(sink(), frames.clone(), pace);
        while !flood.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(flood.stop().await, 7);
        let mut got = Vec::new();
        for _ in 0..7 {
            got.push(sub.next().await.expect("a frame").payload().clone());
        }
        assert_eq!(
            got[..3],
            [frames[0].clone(), frames[1].clone(), frames[0].clone()]
        );

        let endless = Pace {
            max: usize::MAX,
            ..pace
        };
        let both = Flood::start(sink(), frames.clone(), endless).and(Flood::start(
            sink(),
            frames,
            endless,
        ));
        both.until_sent(20).await;
        assert!(!both.is_finished());
        assert!(both.stop().await >= 20);
    }
}
