//! [`MerchantNode`]: the merchant's core with its log, keys and configuration, driven one
//! frame at a time (docs/adr/0006). What the tests call now and the
//! actor shell will call next: decode → open → decide → seal → commit → reply.
//!
//! Why the commit comes before the reply: protocol.md section 6 ("the state change and its
//! events commit atomically before the reply leaves"). The frames a decision sends are
//! stored in its event (`Recorded::sent`), so the stored replies and the outbox are
//! rebuilt by replay like every other table, and a repeated request gets the first
//! answer's bytes.
//!
//! Reopening ([`MerchantNode::open`]) verifies the hash chain, rebuilds the state by
//! folding the whole log with the core's `apply`, and checks that it encodes to exactly the
//! rows of the projection tables on disk: a node whose tables disagree with its log does
//! not serve.

use std::path::Path;

use shared::events::{EventLog, Group, LogError, LogIdentity, NewEvent, ProjectionError};
use shared::node::{
    Batch, BatchResults, Core, DraftError, Driver, OpenKind, Outcome as DriverOutcome, Quotas,
    Recorded, Refusal, Sender, Unavailable, Unserved,
};
use shared::wire::{Frame, Header, Label};
use shared::{
    Amount, CustomerSecret, IdSource, KeyPair, PublicKey, Scrip, Suite, TxId, Uid, UnixSecs,
};

use crate::core::broker_reply::AckError;
use crate::core::events::Kind;
use crate::core::issue::issue_vendor_scrip;
use crate::core::lapse::lapsed;
use crate::core::open::{VerifiedRequest, open};
use crate::core::report::pending_reports;
use crate::core::state::{State, Touched};
use crate::core::{Config, Decision, Outcome, ReplyDecision, decide, decide_reply};
use crate::store::{Mirror, rows_of, write_rows};

/// The node kind recorded in a merchant's log file.
pub const NODE_KIND: &str = "merchant";

/// The name of an event's kind, for the export's `Peerscrip-Kind` header
/// (`shared::export`), so a consumer that does not decode still sees what happened.
#[must_use]
pub fn event_name(event: &Recorded<Kind>) -> String {
    event.kind.name().to_owned()
}

pub use shared::node::{Handled, Outgoing};

/// Why the node could not do what it was asked. A refused *request* is not an error: it
/// is answered with a signed `Error` ([`Handled::refusal`]).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The event log failed (nothing was committed).
    #[error(transparent)]
    Log(#[from] LogError),
    /// A frame could not be signed or sealed (nothing was committed).
    #[error(transparent)]
    Draft(#[from] DraftError),
    /// The in-memory state could not be encoded for comparison with the tables.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The key pair is not the one the Mint issues as.
    #[error("the key pair's UID {keys} is not the Mint's producer {mint}")]
    KeyMismatch {
        /// The key pair's UID.
        keys: Uid,
        /// The Mint's producer UID.
        mint: Uid,
    },
    /// The projection tables on disk are not what the log gives: the node refuses to
    /// serve.
    #[error("inconsistent merchant file: {0}")]
    Inconsistent(String),
    /// An operator request (e.g. an issuance) was refused.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The merchant cannot write its log (protocol.md section 10): nothing of the
    /// request's batch was written; the requester gets the unsigned `Error { Unavailable }`
    /// and may repeat. The node reopens its log and serves again by itself.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The broker's key is not among the peer keys.
    #[error("the broker's public key is not known")]
    NoBrokerKey,
}

impl From<Unserved> for NodeError {
    fn from(e: Unserved) -> NodeError {
        match e {
            Unserved::Unavailable(down) => NodeError::Unavailable(down),
            Unserved::Draft(e) => NodeError::Draft(e),
        }
    }
}

/// What became of a reply from the broker to one of the merchant's own requests.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// An acknowledgement of a report: recorded (`PurchaseReported`).
    Recorded,
    /// A decision of the broker (6.2, 6.5, 6.7), acted on and recorded; these frames go to
    /// the customer (6.2: the held `VendorScripResponse` or `Error`; 6.5: the
    /// `VendorTopUpResponse` delivery), none for 6.7.
    Decided(Vec<Outgoing>),
    /// Discarded, with the reason (section 3: a reply that matches no pending request).
    Discarded(AckError),
}

/// The merchant's core as the node driver runs it (`shared::node::Driver`): its state
/// (with the peer keys it knows), keys and configuration.
#[derive(Debug)]
pub struct MerchantCore {
    state: State,
    keys: KeyPair,
    config: Config,
    /// The projection rows the batch being committed touched, written once each by
    /// [`Core::flush`] just before its commit.
    staged: Touched,
}

impl Core for MerchantCore {
    type Kind = Kind;
    type Request = VerifiedRequest;
    type LoadError = NodeError;

    fn keys(&self) -> &KeyPair {
        &self.keys
    }

    fn suite(&self) -> Suite {
        self.keys.suite()
    }

    fn quotas(&self) -> Quotas {
        self.config.quotas
    }

    /// The cap of section 10 on a customer's 6.2 exchanges (a 6.7 withdrawal holds the
    /// customer's one live VendorScrip, so it is bounded already).
    fn admits(&self, header: &Header, now: UnixSecs) -> Result<(), Refusal> {
        if header.label != Label::VendorScripRequest
            || self.state.tables.bindings.get(&header.tx).is_some()
        {
            return Ok(());
        }
        let quotas = &self.config.quotas;
        (self.state.open).within(quotas, OpenKind::Exchange, header.sender, now)
    }

    /// The pinned broker is trusted (it relays its customers' 6.5 requests, each within
    /// their quotas at the broker); customers whose keys it holds (6.0b) have a rate.
    fn sender(&self, sender: &Uid) -> Sender {
        if *sender == self.config.broker {
            Sender::Trusted
        } else if self.state.peer_key(sender).is_some() {
            Sender::Peer
        } else {
            Sender::Stranger
        }
    }

    fn open(&self, frame: &Frame) -> Result<VerifiedRequest, Refusal> {
        open(frame, &self.keys, &self.state, self.config.broker).map_err(Refusal::from)
    }

    fn header(request: &VerifiedRequest) -> &Header {
        request.header()
    }

    fn digest(request: &VerifiedRequest) -> &[u8] {
        request.digest()
    }

    fn decide(
        &self,
        request: &VerifiedRequest,
        now: UnixSecs,
    ) -> Result<DriverOutcome<Kind>, Refusal> {
        Ok(match decide(&self.state, &self.config, request, now)? {
            Outcome::Repeat(frame) => DriverOutcome::Repeat(frame),
            Outcome::Decided(decision) => DriverOutcome::Decided(decision),
            Outcome::Answer(draft) => DriverOutcome::Decided(Box::new(Decision {
                events: Vec::new(),
                reply: Some(draft),
                deliveries: Vec::new(),
            })),
        })
    }

    fn recipient(&self, to: &Uid) -> Option<&PublicKey> {
        self.state.peer_key(to)
    }

    fn append(
        &mut self,
        group: &mut Group<'_, Recorded<Kind>>,
        events: Vec<NewEvent<Recorded<Kind>>>,
        _request: Option<&VerifiedRequest>,
    ) -> Result<(), LogError> {
        let mirror = Mirror::staging(
            std::mem::take(&mut self.state),
            std::mem::take(&mut self.staged),
        );
        let appended = group.append(events, &mirror);
        (self.state, self.staged) = mirror.into_parts();
        appended.map(drop)
    }

    fn flush(&mut self, group: &mut Group<'_, Recorded<Kind>>) -> Result<(), LogError> {
        let mut staged = std::mem::take(&mut self.staged);
        staged.dedup();
        group.write_projection(|txn| write_rows(txn, &self.state, &staged))
    }

    fn load(&mut self, log: &EventLog<Recorded<Kind>>) -> Result<(), NodeError> {
        self.staged = Touched::default();
        self.state = load(log, State::with_peers(self.state.peer_keys().cloned()))?;
        Ok(())
    }
}

/// A merchant node: log, state, keys, configuration.
#[derive(Debug)]
pub struct MerchantNode {
    driver: Driver<MerchantCore>,
}

impl MerchantNode {
    /// Opens (or creates) the merchant's log at `path` and rebuilds its state by replay,
    /// knowing the public keys `peers` (see [`State`] on where they come from).
    pub fn open(
        path: impl AsRef<Path>,
        keys: KeyPair,
        config: Config,
        peers: impl IntoIterator<Item = PublicKey>,
    ) -> Result<MerchantNode, NodeError> {
        let log = EventLog::open(path, LogIdentity::new(keys.suite(), NODE_KIND))?;
        MerchantNode::on_log(log, keys, config, peers)
    }

    /// [`MerchantNode::open`] on a log already open: one on another storage backend (the
    /// tests that inject storage faults), with the same checks.
    pub fn on_log(
        log: EventLog<Recorded<Kind>>,
        keys: KeyPair,
        config: Config,
        peers: impl IntoIterator<Item = PublicKey>,
    ) -> Result<MerchantNode, NodeError> {
        if keys.uid() != config.me() {
            return Err(NodeError::KeyMismatch {
                keys: keys.uid(),
                mint: config.me(),
            });
        }
        let core = MerchantCore {
            state: State::with_peers(peers),
            keys,
            config,
            staged: Touched::default(),
        };
        Ok(MerchantNode {
            driver: Driver::new(log, core)?,
        })
    }

    /// Draws the ids of the VendorScrip it issues from `ids` instead of its Mint's source
    /// (the simulator's seeded runs; `shared::IdSource`).
    #[must_use]
    pub fn with_ids(mut self, ids: IdSource) -> MerchantNode {
        self.driver.core_mut().config.mint.set_ids(ids);
        self
    }

    /// Closes the log (releasing its lock) and returns the keys and configuration, e.g. to
    /// reopen the node in a restart test.
    pub fn close(self) -> Result<(KeyPair, Config), NodeError> {
        let (log, core) = self.driver.into_parts();
        log.close()?;
        Ok((core.keys, core.config))
    }

    /// Whether the node is down after a storage fault (protocol.md section 10): until its
    /// next call at or after the retry time reopens the log, its [`MerchantNode::state`]
    /// may hold decisions of the failed commit that the log does not, so a reader who
    /// needs the log's state (an invariant, a report) skips it meanwhile.
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.driver.is_down()
    }

    /// `Ok` when the node serves at `now`; down after a storage fault, it first tries to
    /// recover (reopen its log, rebuild its state; at most once a second). For a caller
    /// with no request to hand it, such as the reporter, which has nothing to send while
    /// the node is down.
    ///
    /// # Errors
    /// [`NodeError::Unavailable`] while the node cannot recover.
    pub fn ready(&mut self, now: UnixSecs) -> Result<(), NodeError> {
        Ok(self.driver.serving(now)?)
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> &State {
        &self.driver.core().state
    }

    /// The event log.
    #[must_use]
    pub fn log(&self) -> &EventLog<Recorded<Kind>> {
        self.driver.log()
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.driver.core().config
    }

    /// Records a peer's public key, as the daemon learns it from the broker by 6.0b (the
    /// only way a key arrives, protocol.md section 6.0b; the UID is the key's hash, so it
    /// cannot be recorded under another). Peer keys are not in the log.
    pub fn add_peer(&mut self, key: PublicKey) {
        self.driver.core_mut().state.add_peer(key);
    }

    /// Checks that the in-memory state encodes to exactly the projection rows on disk.
    pub fn check_tables(&self) -> Result<(), NodeError> {
        let on_disk = self.log().dump_projection(&Mirror::new(State::new()))?;
        if on_disk == rows_of(self.state())? {
            Ok(())
        } else {
            Err(diverged())
        }
    }

    /// Handles one request frame received at `now`: decode, open, decide,
    /// seal, commit, then return the reply and deliveries. A refused request changes
    /// nothing and is answered with an `Error` (signed, or unsigned for a frame that did
    /// not verify or a quota's refusal, protocol.md section 3). A batch of one
    /// ([`MerchantNode::handle_batch`]).
    pub fn handle(&mut self, bytes: &[u8], now: UnixSecs) -> Result<Handled, NodeError> {
        self.driver.handle_as(bytes, now)
    }

    /// Handles request frames that arrived together (the actor shell's group commit,
    /// architecture.md "Each node"), one result per frame, in order: the one batch step of
    /// every node (`shared::node::Driver::handle_batch`, docs/adr/0013).
    pub fn handle_batch(
        &mut self,
        frames: &[&[u8]],
        now: UnixSecs,
    ) -> Vec<Result<Handled, NodeError>> {
        self.driver.handle_batch_as(frames, now)
    }

    /// [`MerchantNode::handle_batch`] in the driver's terms, for the actor shell
    /// (`shared::runtime::served_each`): the batch, and the next one opened ahead during
    /// its commit from the frames `next` takes (`shared::node::Driver::serve`).
    pub(crate) fn serve<T: AsRef<[u8]> + Send>(
        &mut self,
        batch: Batch<T, VerifiedRequest>,
        now: UnixSecs,
        next: impl FnOnce() -> Vec<T> + Send,
    ) -> BatchResults<T, VerifiedRequest> {
        self.driver.serve(batch, now, next)
    }

    /// Every request of the merchant to the broker that awaits its decision (6.2 step 3,
    /// 6.5 step 3, 6.7 step 2), as the frame stored when it was decided: what the shell
    /// sends after a restart and on its retry timer until the decision arrives (section 7:
    /// a party that asked the broker never undoes on its own timer). None while the node
    /// is down after a storage fault.
    #[must_use]
    pub fn pending_broker_requests(&self) -> Vec<Outgoing> {
        // Down after a storage fault, the state may hold a request the log does not.
        if self.is_down() {
            return Vec::new();
        }
        let (state, broker) = (self.state(), self.config().broker);
        state
            .tables
            .awaiting
            .iter()
            .filter_map(|(tx, awaiting)| {
                let label = awaiting.label();
                let frame = state
                    .tables
                    .outbox
                    .frames(tx, &broker)
                    .iter()
                    .rev()
                    .find(|f| Frame::header_of(f).is_ok_and(|h| h.label == label))?;
                Some(Outgoing {
                    to: broker,
                    frame: frame.clone(),
                })
            })
            .collect()
    }

    /// The merchant's timer (protocol.md section 4, lapse; `core::lapse`): every live, not
    /// held VendorScrip whose renewal grace ended before `now` is removed in one commit with
    /// its signed `ScripLapsedNotice` to the broker, which
    /// [`pending_broker_requests`](Self::pending_broker_requests) then gives to send until
    /// the broker's `Ack`. Returns how many lapsed (0: nothing written).
    pub fn lapse(&mut self, now: UnixSecs) -> Result<usize, NodeError> {
        self.driver.serving(now)?;
        let decision = lapsed(self.state(), self.config(), now).map_err(DraftError::from)?;
        let lapsed = decision.events.len();
        if lapsed > 0 {
            self.driver.commit_decision(now, decision)?;
        }
        Ok(lapsed)
    }

    /// Issues VendorScrip of `value` to `owner` in `tx`, outside any transaction (an
    /// operator's issuance, and the tests' setup), and returns it with its CustomerSecret,
    /// to be sealed to the owner. 6.2 and 6.5 issue through the core, on the broker's
    /// verified OK (`handle_reply`).
    pub fn issue_vendor_scrip(
        &mut self,
        owner: Uid,
        value: Amount,
        tx: TxId,
        now: UnixSecs,
    ) -> Result<(Scrip, CustomerSecret), NodeError> {
        self.driver.serving(now)?;
        let issued = issue_vendor_scrip(
            self.state(),
            self.config(),
            owner,
            value,
            tx,
            now,
            Vec::new(),
        )
        .map_err(NodeError::Refused)?;
        self.driver
            .commit(now, Recorded::attach(vec![issued.event], Vec::new()))?;
        Ok((issued.scrip, issued.cs))
    }

    /// The `PurchaseCompleted` reports still owed to the broker, as stored when each
    /// purchase was made: what the shell sends after a restart and on its retry timer.
    #[must_use]
    pub fn pending_reports(&self) -> Vec<Outgoing> {
        if self.is_down() {
            return Vec::new();
        }
        let broker = self.config().broker;
        pending_reports(self.state(), broker)
            .into_iter()
            .map(|(_, frame)| Outgoing { to: broker, frame })
            .collect()
    }

    /// Handles the broker's reply to one of the merchant's own requests: 6.3 step 5's
    /// `Ack`, or the decision of 6.2, 6.5 or 6.7 (see `core::decide_reply`). A valid reply
    /// to a pending request is acted on and recorded in one commit with the frames it
    /// sends; anything else is discarded and changes nothing.
    pub fn handle_reply(&mut self, bytes: &[u8], now: UnixSecs) -> Result<ReplyOutcome, NodeError> {
        self.handle_replies(&[bytes], now)
            .pop()
            .unwrap_or(Ok(ReplyOutcome::Discarded(AckError::NotPending)))
    }

    /// [`MerchantNode::handle_reply`] for replies that arrived together, one result each,
    /// in order, all recorded in one commit (`Driver::commit_decisions`): each `Ack` of a
    /// report and each decision of 6.2, 6.5 or 6.7, acted on with the frames it seals. The
    /// reporter sends requests to the broker in parallel, and a commit per answer would cost
    /// the merchant an fsync per purchase on top of the sale's. A reply that matches no
    /// pending request is discarded and changes nothing; a failed commit leaves every reply
    /// of the batch `Unavailable` and nothing of them written.
    pub fn handle_replies<R: AsRef<[u8]>>(
        &mut self,
        replies: &[R],
        now: UnixSecs,
    ) -> Vec<Result<ReplyOutcome, NodeError>> {
        // What became of each reply that was not acted on: discarded, or no broker key.
        let mut not_acted: Vec<Option<Result<ReplyOutcome, NodeError>>> =
            replies.iter().map(|_| None).collect();
        // Which of the replies acted on are `Ack`s (recorded, nothing sent).
        let mut acks = vec![false; replies.len()];
        let mut index = 0;
        let committed = self.driver.commit_decisions(now, replies, |core, bytes| {
            let (slot, is_ack) = (&mut not_acted[index], &mut acks[index]);
            index += 1;
            let Some(broker) = core.state.peer_key(&core.config.broker) else {
                *slot = Some(Err(NodeError::NoBrokerKey));
                return None;
            };
            let decided = Frame::decode(bytes.as_ref())
                .map_err(AckError::from)
                .and_then(|frame| {
                    decide_reply(&core.state, &core.config, &frame, &core.keys, broker, now)
                });
            match decided {
                Err(e) => {
                    *slot = Some(Ok(ReplyOutcome::Discarded(e)));
                    None
                }
                Ok(ReplyDecision::Acknowledged(event)) => {
                    *is_ack = true;
                    Some(Decision {
                        events: vec![*event],
                        reply: None,
                        deliveries: Vec::new(),
                    })
                }
                Ok(ReplyDecision::Decided(decision)) => Some(*decision),
            }
        });
        match committed {
            // Nothing of the batch was written: each reply acted on fails alike.
            Err(e) => not_acted
                .into_iter()
                .map(|slot| {
                    slot.unwrap_or_else(|| {
                        Err(match &e {
                            Unserved::Unavailable(down) => NodeError::Unavailable(down.clone()),
                            Unserved::Draft(draft) => NodeError::Draft(draft.clone()),
                        })
                    })
                })
                .collect(),
            Ok(handled) => handled
                .into_iter()
                .zip(not_acted)
                .zip(acks)
                .map(|((acted, slot), is_ack)| match (acted, slot) {
                    (_, Some(result)) => result,
                    (Some(_), None) if is_ack => Ok(ReplyOutcome::Recorded),
                    (Some(handled), None) => Ok(ReplyOutcome::Decided(
                        handled
                            .reply
                            .into_iter()
                            .chain(handled.deliveries)
                            .chain(handled.requests)
                            .collect(),
                    )),
                    // `decide` gives a decision or fills the slot: not reached.
                    (None, None) => Ok(ReplyOutcome::Discarded(AckError::NotPending)),
                })
                .collect(),
        }
    }
}

fn diverged() -> NodeError {
    NodeError::Inconsistent(
        "the projection tables differ from the state rebuilt from the log".to_owned(),
    )
}

/// The state of `log` (chain verified, every event folded into `peers`, which holds only
/// peer keys), checked against the projection tables on disk: what
/// [`MerchantNode::open`] and a recovery after a storage fault check.
fn load(log: &EventLog<Recorded<Kind>>, peers: State) -> Result<State, NodeError> {
    log.verify_chain()?;
    let state = replay(log, peers)?;
    state
        .check_books()
        .map_err(|e| NodeError::Inconsistent(format!("the replayed books: {e}")))?;
    if log.dump_projection(&Mirror::new(State::new()))? == rows_of(&state)? {
        Ok(state)
    } else {
        Err(diverged())
    }
}

/// Folds the whole log into `state` (which holds only peer keys).
fn replay(log: &EventLog<Recorded<Kind>>, mut state: State) -> Result<State, NodeError> {
    for event in log.iter()? {
        state
            .try_apply(&event?)
            .map_err(|illegal| NodeError::Inconsistent(illegal.to_string()))?;
    }
    Ok(state)
}

#[cfg(test)]
mod tests;
