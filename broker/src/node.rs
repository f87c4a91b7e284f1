//! [`BrokerNode`]: one broker, its redb file and its in-memory state, running each frame
//! through decode → open → decide → seal → commit (ADR 0006). This is what the tests and,
//! next, the actor shell call; it does no I/O but its own file, and reads no clock.
//!
//! The order is the protocol's (sections 6 and 7): every check happens before any state
//! change; the events, the projection rows, the stored reply and the outbox frames commit
//! in one redb write transaction before the reply is returned; a refusal changes nothing
//! and is answered with an `Error` that is not stored (signed, or unsigned for a frame
//! that did not verify or a quota's refusal, section 3).
//!
//! The timer ([`BrokerNode::expire`]) follows the same order: it seals the deliveries of
//! the events it decides (the NOK `ChangeBrokerScrip` of an expired 6.2 exchange or a
//! released 6.5 escrow), stores them in the outbox with their events in one commit, and
//! returns them ([`Expired`]) only after that commit, so `broker::shell` publishes exactly
//! the bytes TransactionStatus returns later (section 7).

use std::path::Path;

use shared::events::{
    Event, EventLog, GENESIS_PREV_HASH, Group, LogError, LogIdentity, NewEvent, ProjectionError,
    ReplicaRow, SharedReplica, chain::hash_bytes,
};
use shared::ids::{AccountId, Pan, PanSecret, TxId, Uid};
use shared::node::{
    Batch, BatchResults, Core, DraftError, Driver, OpenKind, Outcome as DriverOutcome, Quotas,
    Recorded, Refusal, Sender, Unavailable, Unserved,
};
use shared::wire::{Frame, Header, Label};
use shared::{Amount, IdSource, KeyPair, Mint, PublicKey, RootKey, Suite, UnixSecs};

use crate::core::bank::{self, BankError};
use crate::core::obtain_vendor_scrip::Timed;
use crate::core::request::{AdminRequest, Verified};
use crate::core::sealed_id::{self, SealedIdError};
use crate::core::{
    AccountIds, Config, Ctx, Decision, Kind, Outcome, Request, State, Touched, decide,
    open as open_frame,
};
use crate::store::{self, LiveProjection};

/// The node kind recorded in the broker's log.
pub const NODE_KIND: &str = "broker";

/// The name of an event's kind (its variant), for the export's `Peerscrip-Kind` header
/// (`shared::export`), so a consumer that does not decode still sees what happened.
#[must_use]
pub fn event_name(event: &Recorded<Kind>) -> String {
    shared::variant::variant_name(&event.kind)
}

pub use shared::node::{Handled, Outgoing};

/// What one run of the broker's timer ([`BrokerNode::expire`]) produced: the events it
/// appended and the frames it sealed for the parties (section 7: a NOK
/// `ChangeBrokerScrip` to C for each expired exchange of 6.2 or released escrow of 6.5).
/// The frames are the bytes stored in the events, so the shell publishes them and a party
/// that missed them gets the same bytes from TransactionStatus.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// How many events were appended (in one commit).
    pub events: usize,
    /// The sealed deliveries to publish after the commit, in event order.
    pub deliveries: Vec<Outgoing>,
}

/// The node's own failures: the request changed nothing and may be repeated.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The log refused an append or a read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A draft could not be signed or sealed.
    #[error(transparent)]
    Draft(#[from] DraftError),
    /// A projection or secrets table could not be read.
    #[error(transparent)]
    Table(#[from] ProjectionError),
    /// The bank operator's request was refused.
    #[error(transparent)]
    Bank(#[from] BankError),
    /// The broker cannot write its log (protocol.md section 10): nothing of the request's
    /// batch was written; the requester gets the unsigned `Error { Unavailable }` and may
    /// repeat. The node reopens its log and serves again by itself.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The file's tables disagree with the state replayed from its log, or a secret
    /// record with its commitment: the node refuses to serve.
    #[error("inconsistent broker file: {0}")]
    Inconsistent(String),
    /// An event of the replicated log does not continue this file's log (docs/adr/0017):
    /// another history, a damaged message, a sealed ID that does not open.
    #[error("event {seq} of the replicated log: {reason}")]
    Replicated {
        /// Its seq.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<Unserved> for NodeError {
    fn from(e: Unserved) -> NodeError {
        match e {
            Unserved::Unavailable(down) => NodeError::Unavailable(down),
            Unserved::Draft(e) => NodeError::Draft(e),
        }
    }
}

/// The broker's core as the node driver runs it (`shared::node::Driver`): its state, the
/// secrets table, keys, Mint and policy.
pub struct BrokerCore {
    state: State,
    ids: AccountIds,
    keys: KeyPair,
    mint: Mint,
    config: Config,
    /// The key allowed to send administration requests (ADR 0010); `None`: none served.
    operator: Option<PublicKey>,
    /// Accounts the operator opened in the batch being committed: their IDs join the
    /// in-memory secrets table only once the commit (which wrote them to the file)
    /// succeeded.
    opened: Vec<(Pan, AccountId)>,
    /// The projection rows the batch being committed touched, written once each by
    /// [`Core::flush`] just before its commit.
    staged: Touched,
}

impl Core for BrokerCore {
    type Kind = Kind;
    type Request = Verified;
    type LoadError = NodeError;

    fn keys(&self) -> &KeyPair {
        &self.keys
    }

    fn suite(&self) -> Suite {
        self.config.suite
    }

    fn quotas(&self) -> Quotas {
        self.config.quotas
    }

    /// The caps of section 10 on the requests that open a transaction: a notice (6.2), a
    /// top-up's escrow (6.5), an announcement or a report ahead of it (6.3).
    fn admits(&self, header: &Header, now: UnixSecs) -> Result<(), Refusal> {
        let kind = match header.label {
            Label::VendorScripNotice => OpenKind::Exchange,
            Label::VendorTopUpRequest => OpenKind::Escrow,
            Label::PurchaseInitiated | Label::PurchaseCompleted => OpenKind::Purchase,
            _ => return Ok(()),
        };
        if self.state.bindings.get(&header.tx).is_some() {
            return Ok(());
        }
        let quotas = &self.config.quotas;
        self.state.open.within(quotas, kind, header.sender, now)
    }

    /// The operator is trusted; registered peers have a rate; a registrant is new by
    /// definition.
    fn sender(&self, sender: &Uid) -> Sender {
        if self.operator.as_ref().is_some_and(|k| k.uid() == *sender) {
            Sender::Trusted
        } else if self.state.peers.contains_key(sender) {
            Sender::Peer
        } else {
            Sender::Stranger
        }
    }

    fn open(&self, frame: &Frame) -> Result<Verified, Refusal> {
        open_frame(
            frame,
            &self.keys,
            &self.state,
            &self.ids,
            self.operator.as_ref(),
        )
    }

    fn header(request: &Verified) -> &Header {
        &request.header
    }

    fn digest(request: &Verified) -> &[u8] {
        &request.digest
    }

    fn decide(&self, request: &Verified, now: UnixSecs) -> Result<DriverOutcome<Kind>, Refusal> {
        let ctx = Ctx {
            me: self.keys.uid(),
            mint: &self.mint,
            config: &self.config,
            now,
        };
        Ok(match decide(&self.state, &ctx, request)? {
            Outcome::Repeat(frame) => DriverOutcome::Repeat(frame),
            Outcome::Decided(decision) => {
                let Decision {
                    events,
                    reply,
                    deliveries,
                } = *decision;
                DriverOutcome::Decided(Box::new(shared::node::Decision {
                    events,
                    reply: Some(reply),
                    deliveries,
                }))
            }
        })
    }

    fn recipient(&self, to: &Uid) -> Option<&PublicKey> {
        self.state
            .peers
            .get(to)
            .map(|p| &p.public_key)
            .or_else(|| self.operator.as_ref().filter(|k| k.uid() == *to))
    }

    fn append(
        &mut self,
        group: &mut Group<'_, Recorded<Kind>>,
        events: Vec<NewEvent<Recorded<Kind>>>,
        request: Option<&Verified>,
    ) -> Result<(), LogError> {
        let opening = match request.map(|v| &v.request) {
            Some(Request::Admin(AdminRequest::OpenAccount { pan, id, .. })) => {
                Some((pan.clone(), id.clone()))
            }
            _ => None,
        };
        let stored = group.append_with(
            events,
            &LiveProjection::staging(&mut self.state, &mut self.staged),
            |txn, _| match &opening {
                Some((pan, id)) => store::write_account_id(txn, pan, id),
                None => Ok(()),
            },
        )?;
        if let Some((pan, id)) = &opening {
            annex_opening(group, &stored, self.keys.public(), pan, id)?;
        }
        self.opened.extend(opening);
        Ok(())
    }

    fn flush(&mut self, group: &mut Group<'_, Recorded<Kind>>) -> Result<(), LogError> {
        let staged = std::mem::take(&mut self.staged);
        group.write_projection(|txn| store::write_rows(txn, &self.state, &staged))
    }

    fn committed(&mut self) {
        for (pan, id) in self.opened.drain(..) {
            self.ids.insert(pan, id);
        }
    }

    fn load(&mut self, log: &EventLog<Recorded<Kind>>) -> Result<(), NodeError> {
        self.opened.clear();
        self.staged = Touched::default();
        (self.state, self.ids) = load(log, &self.config)?;
        Ok(())
    }
}

/// A broker (see the module doc).
pub struct BrokerNode {
    driver: Driver<BrokerCore>,
}

impl std::fmt::Debug for BrokerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerNode")
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

impl BrokerNode {
    /// Opens (or creates) the broker's file at `path`: replays the log into the state,
    /// checks that the projection tables equal the replayed state byte for byte and that
    /// every account's secret record matches its commitment.
    pub fn open(
        path: impl AsRef<Path>,
        keys: KeyPair,
        root: RootKey,
        config: Config,
    ) -> Result<BrokerNode, NodeError> {
        let log = EventLog::open(path, LogIdentity::new(config.suite, NODE_KIND))?;
        BrokerNode::on_log(log, keys, root, config)
    }

    /// [`BrokerNode::open`] on a log already open: one on another storage backend (the
    /// tests that inject storage faults), with the same checks.
    pub fn on_log(
        log: EventLog<Recorded<Kind>>,
        keys: KeyPair,
        root: RootKey,
        config: Config,
    ) -> Result<BrokerNode, NodeError> {
        store::settle_layout(&log, config.suite)?;
        let mint = Mint::new(config.suite, keys.uid(), root);
        let core = BrokerCore {
            state: State::new(config.suite),
            ids: AccountIds::default(),
            keys,
            mint,
            config,
            operator: None,
            opened: Vec::new(),
            staged: Touched::default(),
        };
        Ok(BrokerNode {
            driver: Driver::new(log, core)?,
        })
    }

    /// Serves the operator's administration requests signed by `operator` (ADR 0010):
    /// bank accounts, deposits, payouts, balances and the peer list over the bus.
    #[must_use]
    pub fn with_operator(mut self, operator: PublicKey) -> BrokerNode {
        self.driver.core_mut().operator = Some(operator);
        self
    }

    /// Draws the ids of the BrokerScrip it issues from `ids` instead of a source seeded from
    /// the operating system (the simulator's seeded runs; `shared::IdSource`).
    #[must_use]
    pub fn with_ids(mut self, ids: IdSource) -> BrokerNode {
        self.driver.core_mut().mint.set_ids(ids);
        self
    }

    /// Whether the node is down after a storage fault (protocol.md section 10): until its
    /// next call at or after the retry time reopens the log, its [`BrokerNode::state`] may
    /// hold decisions of the failed commit that the log does not, so a reader who needs
    /// the log's state (an invariant, a report) skips it meanwhile.
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.driver.is_down()
    }

    /// The state (the projection of the log).
    #[must_use]
    pub fn state(&self) -> &State {
        &self.driver.core().state
    }

    /// The log.
    #[must_use]
    pub fn log(&self) -> &EventLog<Recorded<Kind>> {
        self.driver.log()
    }

    /// The broker's UID.
    #[must_use]
    pub fn uid(&self) -> Uid {
        self.driver.core().keys.uid()
    }

    /// The broker's public key (what every peer pins, section 1).
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        self.driver.core().keys.public()
    }

    /// Closes the file (releasing its lock).
    pub fn close(self) -> Result<(), NodeError> {
        Ok(self.driver.into_parts().0.close()?)
    }

    /// Handles one request frame received at `now`: decode, open, decide,
    /// seal, commit; returns the reply and deliveries. A refusal is an `Ok` with an `Error`
    /// reply (signed, or unsigned for a frame that did not verify or a quota's refusal,
    /// protocol.md section 3); `Err` is the node's own failure. A batch of one
    /// ([`BrokerNode::handle_batch`]).
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

    /// [`BrokerNode::handle_batch`] in the driver's terms, for the actor shell
    /// (`shared::runtime::served_each`): the batch, and the next one opened ahead during
    /// its commit from the frames `next` takes (`shared::node::Driver::serve`).
    pub(crate) fn serve<T: AsRef<[u8]> + Send>(
        &mut self,
        batch: Batch<T, Verified>,
        now: UnixSecs,
        next: impl FnOnce() -> Vec<T> + Send,
    ) -> BatchResults<T, Verified> {
        self.driver.serve(batch, now, next)
    }

    /// Bank operator: opens `bank:<pan>` with `secret` (section 1). Returns its tx.
    pub fn open_account(
        &mut self,
        pan: &Pan,
        secret: &PanSecret,
        now: UnixSecs,
    ) -> Result<TxId, NodeError> {
        self.driver.serving(now)?;
        let tx = TxId::random();
        let core = self.driver.core();
        let opening = bank::open_account(&core.state, core.config.suite, pan, secret, tx, now)?;
        let id = opening.id;
        self.driver.commit_with(now, |core, group| {
            let stored = group.append_with(
                Recorded::attach(vec![opening.event], Vec::new()),
                &LiveProjection::new(&mut core.state),
                |txn, _| store::write_account_id(txn, pan, &id),
            )?;
            annex_opening(group, &stored, core.keys.public(), pan, &id)?;
            core.opened.push((pan.clone(), id));
            Ok(())
        })?;
        Ok(tx)
    }

    /// Attaches `replica` to the log (the broker's HA mode, docs/adr/0017): every later
    /// commit reaches the replicated log before it returns, so before any reply of its
    /// batch leaves; once the replica is fenced the node serves nothing more (it answers
    /// `Unavailable`) and its daemon steps down.
    pub fn set_replica(&mut self, replica: Option<SharedReplica>) {
        self.driver.set_replica(replica);
    }

    /// `rows` of this file's log, each `AccountOpened` with its sealed ID as its annex
    /// (from the secrets table): what a new holder of the lease publishes of a tail the
    /// replicated log lacks (docs/adr/0017).
    ///
    /// # Errors
    /// [`NodeError::Replicated`] for a row that does not decode, an account without its
    /// ID, or a seal that fails.
    pub fn annexed(&self, mut rows: Vec<ReplicaRow>) -> Result<Vec<ReplicaRow>, NodeError> {
        let core = self.driver.core();
        for row in &mut rows {
            let refuse = |reason: String| NodeError::Replicated {
                seq: row.seq,
                reason,
            };
            let event = Event::<Recorded<Kind>>::decode(&row.bytes)
                .map_err(|e| refuse(format!("does not decode: {e}")))?;
            if let Kind::AccountOpened { pan, .. } = &event.kind.kind {
                let id = core
                    .ids
                    .get(pan)
                    .ok_or_else(|| refuse(format!("no secret record for account {pan:?}")))?;
                let annex = sealed_id::seal(core.keys.public(), pan, id)
                    .map_err(|e| refuse(e.to_string()))?;
                row.annex = Some(annex);
            }
        }
        Ok(rows)
    }

    /// Appends events that the deployment's serving broker committed, as its replicated
    /// log holds them (docs/adr/0017): a standby's tail, in one commit. Each row must be
    /// the event right after this log's head, in the canonical encoding of the event it
    /// decodes to, so the log numbers and chains it again to the same bytes; the fold and
    /// the projection are the live ones. An `AccountOpened` brings its sealed ID as its
    /// annex ([`sealed_id`]), opened, checked against the event's commitment and written
    /// to the secrets table in the same commit. Returns the new head.
    ///
    /// # Errors
    /// [`NodeError::Replicated`] for a row that does not continue the log, before
    /// anything is written; as a commit otherwise.
    pub fn follow(&mut self, rows: &[ReplicaRow], now: UnixSecs) -> Result<u64, NodeError> {
        let (mut head, mut hash) = self.log().head()?.unwrap_or((0, GENESIS_PREV_HASH));
        let core = self.driver.core();
        let (keys, suite) = (&core.keys, core.config.suite);
        let mut events = Vec::with_capacity(rows.len());
        let mut openings = Vec::new();
        for row in rows {
            let refuse = |reason: String| NodeError::Replicated {
                seq: row.seq,
                reason,
            };
            let event = Event::<Recorded<Kind>>::decode(&row.bytes)
                .map_err(|e| refuse(format!("does not decode: {e}")))?;
            if row.seq != head + 1 || event.seq != row.seq {
                return Err(refuse(format!(
                    "holds event {}, and the log's next is {}",
                    event.seq,
                    head + 1
                )));
            }
            if event.prev_hash != hash {
                return Err(refuse(
                    "does not link to the log's last event: another history".to_owned(),
                ));
            }
            if event.encode().ok().as_deref() != Some(row.bytes.as_slice()) {
                return Err(refuse("is not in its canonical encoding".to_owned()));
            }
            if let Kind::AccountOpened { pan, id_commitment } = &event.kind.kind {
                let annex = row
                    .annex
                    .as_deref()
                    .ok_or_else(|| refuse(format!("opens {pan:?} without its sealed ID")))?;
                let id = sealed_id::open(keys, suite, pan, id_commitment, annex)
                    .map_err(|e| refuse(e.to_string()))?;
                openings.push((pan.clone(), id));
            }
            (head, hash) = (row.seq, hash_bytes(&row.bytes));
            events.push(event.into_new());
        }
        if events.is_empty() {
            return Ok(head);
        }
        self.driver.commit_with(now, |core, group| {
            group.append_with(
                events,
                &LiveProjection::staging(&mut core.state, &mut core.staged),
                |txn, _| {
                    openings
                        .iter()
                        .try_for_each(|(pan, id)| store::write_account_id(txn, pan, id))
                },
            )?;
            core.opened.extend(openings);
            Ok(())
        })?;
        Ok(head)
    }

    /// Bank operator: deposits `amount` into `bank:<pan>` (section 5). Returns its tx.
    pub fn deposit(&mut self, pan: &Pan, amount: Amount, now: UnixSecs) -> Result<TxId, NodeError> {
        self.driver.serving(now)?;
        let tx = TxId::random();
        let event = bank::deposit(self.state(), pan, amount, tx, now)?;
        self.driver
            .commit(now, Recorded::attach(vec![event], Vec::new()))?;
        Ok(tx)
    }

    /// Bank operator: pays `amount` out of `bank:<pan>`, limited to the balance less the
    /// memo `float:vendor` of its merchant (section 5). Returns its tx.
    pub fn payout(&mut self, pan: &Pan, amount: Amount, now: UnixSecs) -> Result<TxId, NodeError> {
        self.driver.serving(now)?;
        let tx = TxId::random();
        let event = bank::payout(self.state(), pan, amount, tx, now)?;
        self.driver
            .commit(now, Recorded::attach(vec![event], Vec::new()))?;
        Ok(tx)
    }

    /// The broker's timer (sections 4 and 7: the broker enforces every deadline): closes
    /// every exchange of 6.2 whose deadline passed before `now` with no decision
    /// (`ExchangeExpired`), releases every escrow of 6.5 likewise (`EscrowReleased`), each
    /// telling C with a NOK `ChangeBrokerScrip`, and lapses every BrokerScrip whose renewal grace ended
    /// (`ScripLapsed`, its value back to the owner's bank account). Returns how many events
    /// it appended and the deliveries it sealed and stored, for the shell to publish after
    /// the commit (nothing is returned unless the commit succeeded).
    pub fn expire(&mut self, now: UnixSecs) -> Result<Expired, NodeError> {
        self.driver.serving(now)?;
        let (state, config) = (self.state(), &self.driver.core().config);
        let mut timed = crate::core::obtain_vendor_scrip::expired(state, self.uid(), now);
        timed.extend(crate::core::top_up_vendor_scrip::expired(
            state,
            self.uid(),
            now,
        ));
        timed.extend(
            crate::core::lapse::lapsed(state, config, now)
                .into_iter()
                .map(|event| Timed {
                    event,
                    deliveries: Vec::new(),
                }),
        );
        let count = timed.len();
        // Each event keeps the frames it sent (they belong to its tx); one commit for all.
        let mut events = Vec::with_capacity(count);
        let mut deliveries = Vec::new();
        for t in timed {
            let sent = t
                .deliveries
                .iter()
                .map(|d| self.driver.seal(d))
                .collect::<Result<Vec<_>, _>>()?;
            deliveries.extend(sent.iter().cloned().map(Outgoing::from));
            events.extend(Recorded::attach(vec![t.event], sent));
        }
        self.driver.commit(now, events)?;
        Ok(Expired {
            events: count,
            deliveries,
        })
    }

    /// The `VendorTopUpAuthorization` deliveries (6.5 step 2) to re-send at `now`: one per
    /// open escrow whose deadline has not passed, the stored bytes (so M answers a repeat
    /// by digest). The shell calls it on its timer; nothing is appended. None while the
    /// node is down after a storage fault.
    #[must_use]
    pub fn to_resend(&self, now: UnixSecs) -> Vec<Outgoing> {
        // Down after a storage fault, the state may hold an escrow the log does not.
        if self.is_down() {
            return Vec::new();
        }
        crate::core::top_up_vendor_scrip::to_resend(self.state(), now)
            .into_iter()
            .map(|(to, frame)| Outgoing { to, frame })
            .collect()
    }
}

/// Attaches the sealed ID of an account opening to its `AccountOpened` among `stored`,
/// when the group goes to a replica (docs/adr/0017; [`sealed_id`]).
fn annex_opening(
    group: &mut Group<'_, Recorded<Kind>>,
    stored: &[Event<Recorded<Kind>>],
    broker: &PublicKey,
    pan: &Pan,
    id: &AccountId,
) -> Result<(), LogError> {
    if !group.is_replicated() {
        return Ok(());
    }
    let Some(event) = stored
        .iter()
        .find(|e| matches!(&e.kind.kind, Kind::AccountOpened { pan: p, .. } if p == pan))
    else {
        return Ok(());
    };
    let annex = sealed_id::seal(broker, pan, id)
        .map_err(|e: SealedIdError| LogError::SideTables(ProjectionError::Other(Box::new(e))))?;
    group.annex(event.seq, annex);
    Ok(())
}

/// The state and the secrets table of `log`: the state rebuilt by replay, checked against
/// the projection tables byte for byte, and every account's secret record against its
/// commitment (what [`BrokerNode::open`] and a recovery after a storage fault check).
fn load(log: &EventLog<Recorded<Kind>>, config: &Config) -> Result<(State, AccountIds), NodeError> {
    let state = replay(log, config)?;
    let tables = log.dump_projection(&LiveProjection::new(&mut State::new(config.suite)))?;
    if tables != store::render(&state)? {
        return Err(NodeError::Inconsistent(
            "projection tables differ from the replayed log".to_owned(),
        ));
    }
    let ids = store::read_account_ids(&log.begin_read()?)?;
    check_secrets(&state, &ids, config)?;
    Ok((state, ids))
}

/// The state rebuilt by folding every event of `log` (chain verified first).
fn replay(log: &EventLog<Recorded<Kind>>, config: &Config) -> Result<State, NodeError> {
    log.verify_chain()?;
    let mut state = State::new(config.suite);
    for event in log.iter()? {
        let event = event?;
        let touched = state
            .try_apply(&event)
            .map_err(|illegal| NodeError::Inconsistent(illegal.to_string()))?;
        state.check_touched(&touched).map_err(|e| {
            NodeError::Inconsistent(format!("the ledger breaks at event {}: {e}", event.seq))
        })?;
    }
    // Each event's changes were checked; the whole ledger is checked once here.
    state
        .check_conserved()
        .map_err(|e| NodeError::Inconsistent(format!("the replayed ledger: {e}")))?;
    Ok(state)
}

/// Every account has its ID, and each ID matches the commitment its event recorded.
fn check_secrets(state: &State, ids: &AccountIds, config: &Config) -> Result<(), NodeError> {
    for (pan, record) in &state.pans {
        let id = ids.get(pan).ok_or_else(|| {
            NodeError::Inconsistent(format!("no secret record for account {pan:?}"))
        })?;
        if id.commitment(config.suite) != record.id_commitment {
            return Err(NodeError::Inconsistent(format!(
                "secret record of account {pan:?} does not match its commitment"
            )));
        }
    }
    Ok(())
}
