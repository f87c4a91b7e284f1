//! [`BrokerNode`]: one broker, its redb file and its in-memory state, running each frame
//! through decode → open → decide → seal → commit (ADR 0006). This is what the tests and,
//! next, the actor shell call; it does no I/O but its own file, and reads no clock.
//!
//! The order is the protocol's (sections 6 and 7): every check happens before any state
//! change; the events, the projection rows, the stored reply and the outbox frames commit
//! in one redb write transaction before the reply is returned; a refusal changes nothing
//! and is answered with a signed `Error` that is not stored.
//!
//! The timer ([`BrokerNode::expire`]) follows the same order: it seals the deliveries of
//! the events it decides (the NOK `ChangeBrokerScrip` of an expired 6.2 exchange or a
//! released 6.5 escrow), stores them in the outbox with their events in one commit, and
//! returns them ([`Expired`]) only after that commit, so `broker::shell` publishes exactly
//! the bytes TransactionStatus returns later (section 7).

use std::path::Path;

use shared::events::{EventLog, LogError, LogIdentity, NewEvent, ProjectionError};
use shared::ids::{AccountId, Pan, PanSecret, TxId, Uid};
use shared::node::{
    Availability, Draft, DraftError, Recorded, Refusal, SentFrame, Unavailable, unavailable_batch,
};
use shared::wire::bodies::{ErrorBody, Re};
use shared::wire::{Frame, Header, WireError};
use shared::{Amount, KeyPair, Mint, PublicKey, RootKey};

use crate::core::bank::{self, BankError};
use crate::core::obtain_vendor_scrip::Timed;
use crate::core::request::AdminRequest;
use crate::core::{
    AccountIds, Config, Ctx, Decision, Kind, Outcome, Request, State, decide, open as open_frame,
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

/// A frame the broker sends: to whom, and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient.
    pub to: Uid,
    /// The encoded frame.
    pub frame: Vec<u8>,
}

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

/// What handling one request produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    /// The reply to the requester (a signed `Error` for a refusal).
    pub reply: Vec<u8>,
    /// Deliveries to other parties (to their peer subjects).
    pub deliveries: Vec<Outgoing>,
}

/// The node's own failures: the request changed nothing and may be repeated (the shell
/// answers `Internal`).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The frame could not be decoded at all (no header to answer under).
    #[error("undecodable frame: {0}")]
    Frame(#[source] WireError),
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
}

/// A broker (see the module doc).
pub struct BrokerNode {
    log: EventLog<Recorded<Kind>>,
    state: State,
    ids: AccountIds,
    keys: KeyPair,
    mint: Mint,
    config: Config,
    /// The key allowed to send administration requests (ADR 0010); `None`: none served.
    operator: Option<PublicKey>,
    /// Down after a storage fault until the log is reopened and the state rebuilt from it
    /// (protocol.md section 10): meanwhile the state may hold decisions the log does not,
    /// so nothing is served from it.
    availability: Availability,
}

impl std::fmt::Debug for BrokerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerNode")
            .field("uid", &self.keys.uid())
            .field("log", &self.log)
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
        let (state, ids) = load(&log, &config)?;
        let mint = Mint::new(config.suite, keys.uid(), root);
        Ok(BrokerNode {
            log,
            state,
            ids,
            keys,
            mint,
            config,
            operator: None,
            availability: Availability::default(),
        })
    }

    /// Serves the operator's administration requests signed by `operator` (ADR 0010):
    /// bank accounts, deposits, payouts, balances and the peer list over the bus.
    #[must_use]
    pub fn with_operator(mut self, operator: PublicKey) -> BrokerNode {
        self.operator = Some(operator);
        self
    }

    /// Whether the node is down after a storage fault (protocol.md section 10): until its
    /// next call at or after the retry time reopens the log, its [`BrokerNode::state`] may
    /// hold decisions of the failed commit that the log does not, so a reader who needs
    /// the log's state (an invariant, a report) skips it meanwhile.
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.availability.down().is_some()
    }

    /// The state (the projection of the log).
    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The log.
    #[must_use]
    pub fn log(&self) -> &EventLog<Recorded<Kind>> {
        &self.log
    }

    /// The broker's UID.
    #[must_use]
    pub fn uid(&self) -> Uid {
        self.keys.uid()
    }

    /// The broker's public key (what every peer pins, section 1).
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        self.keys.public()
    }

    /// Closes the file (releasing its lock).
    pub fn close(self) -> Result<(), NodeError> {
        Ok(self.log.close()?)
    }

    /// Handles one request frame received at `now` (unix seconds): decode, open, decide,
    /// seal, commit; returns the reply and deliveries. A refusal is an `Ok` with a signed
    /// `Error` reply; `Err` is the node's own failure. A batch of one
    /// ([`BrokerNode::handle_batch`]).
    pub fn handle(&mut self, bytes: &[u8], now: u64) -> Result<Handled, NodeError> {
        self.handle_batch(&[bytes], now)
            .pop()
            .unwrap_or_else(|| Err(NodeError::Inconsistent("empty batch result".to_owned())))
    }

    /// Handles request frames that arrived together (the actor shell's group commit,
    /// architecture.md "Each node"), one result per frame, in order:
    ///
    /// 1. decode and `open` every frame in parallel (RSA unwrap and signature checks, the
    ///    slow part) against the state as it is before the batch. Sound because no frame of
    ///    a batch can depend on another one's effect: a party sends its next request only
    ///    after the previous reply, and no reply of this batch leaves before its commit;
    /// 2. in arrival order, `decide` each against the state including every earlier
    ///    decision of the batch, seal its frames and fold its events into the state inside
    ///    one write transaction, so two requests spending one scrip are serialized and the
    ///    second is refused `Spent`;
    /// 3. one durable commit for the whole batch; then the refusals, which change nothing,
    ///    are signed in parallel. Only then are the results returned (the
    ///    one-commit-before-reply rule of protocol.md section 6). If any append or the
    ///    commit fails, every result of the batch is [`NodeError::Unavailable`] with the
    ///    unsigned answer (even refusals, which may have depended on an uncommitted
    ///    decision), and the node is down until it has reopened its log and rebuilt its
    ///    state (section 10): it never answers from a state its log does not justify, and
    ///    the requesters retry with the same bodies (section 7).
    pub fn handle_batch(&mut self, frames: &[&[u8]], now: u64) -> Vec<Result<Handled, NodeError>> {
        if let Err(NodeError::Unavailable(down)) = self.serving(now) {
            return self.unavailable(frames, &down.reason);
        }
        let opened = {
            let (keys, state, ids) = (&self.keys, &self.state, &self.ids);
            let operator = self.operator.as_ref();
            shared::runtime::parallel_map(frames, |bytes| {
                let frame = Frame::decode(bytes).map_err(NodeError::Frame)?;
                Ok(open_frame(&frame, keys, state, ids, operator).map_err(|r| (frame.header, r)))
            })
        };
        let mut group = match self.log.begin_group() {
            Ok(group) => group,
            Err(e) => {
                let down = self.availability.fault(e, now);
                return self.unavailable(frames, &down.reason);
            }
        };
        // Accounts the operator opened in this group: their IDs join the in-memory secrets
        // table only once the commit (which wrote them to the file) succeeded.
        let mut opened_accounts: Vec<(Pan, AccountId)> = Vec::new();
        // Refusals change nothing and are signed after the commit, in parallel.
        let mut results: Vec<Option<Result<Handled, NodeError>>> = Vec::with_capacity(frames.len());
        let mut refusals: Vec<(usize, Header, Vec<u8>, Refusal)> = Vec::new();
        let mut failure = None;
        for item in opened {
            let verified = match item {
                Err(e) => {
                    results.push(Some(Err(e)));
                    continue;
                }
                Ok(Err((header, refusal))) => {
                    refusals.push((results.len(), header, Vec::new(), refusal));
                    results.push(None);
                    continue;
                }
                Ok(Ok(verified)) => verified,
            };
            let ctx = Ctx {
                me: self.keys.uid(),
                mint: &self.mint,
                config: &self.config,
                now,
            };
            let result = match decide(&self.state, &ctx, &verified) {
                Ok(Outcome::Repeat(reply)) => Ok(Handled {
                    reply,
                    deliveries: Vec::new(),
                }),
                Ok(Outcome::Decided(decision)) => {
                    let decision = *decision;
                    match self.seal_decision(&decision) {
                        Err(e) => Err(e),
                        Ok((handled, sent)) => {
                            let opening = match &verified.request {
                                Request::Admin(AdminRequest::OpenAccount { pan, id, .. }) => {
                                    Some((pan.clone(), id.clone()))
                                }
                                _ => None,
                            };
                            let appended = group.append_with(
                                Recorded::attach(decision.events, sent),
                                &LiveProjection::new(&mut self.state),
                                |txn, _| match &opening {
                                    Some((pan, id)) => store::write_account_id(txn, pan, id),
                                    None => Ok(()),
                                },
                            );
                            match appended {
                                Ok(_) => {
                                    opened_accounts.extend(opening);
                                    Ok(handled)
                                }
                                Err(e) => {
                                    failure = Some(e);
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(refusal) => {
                    refusals.push((results.len(), verified.header, verified.digest, refusal));
                    results.push(None);
                    continue;
                }
            };
            results.push(Some(result));
        }
        let committed = match failure {
            Some(e) => {
                drop(group);
                Err(e)
            }
            None => group.commit(),
        };
        match committed {
            Ok(()) => {
                for (pan, id) in opened_accounts {
                    self.ids.insert(pan, id);
                }
                let signed = shared::runtime::parallel_map(&refusals, |(_, header, digest, r)| {
                    self.refuse(header, digest, r)
                });
                for ((index, ..), reply) in refusals.iter().zip(signed) {
                    results[*index] = Some(reply);
                }
                results
                    .into_iter()
                    .map(|r| {
                        r.unwrap_or_else(|| {
                            Err(NodeError::Inconsistent(
                                "a refusal was not signed".to_owned(),
                            ))
                        })
                    })
                    .collect()
            }
            Err(e) => {
                let down = self.availability.fault(e, now);
                self.unavailable(frames, &down.reason)
            }
        }
    }

    /// Every frame of a batch the node could not serve, answered with the unsigned
    /// `Error { Unavailable }` (protocol.md section 10).
    fn unavailable(&self, frames: &[&[u8]], reason: &str) -> Vec<Result<Handled, NodeError>> {
        unavailable_batch(frames, reason, self.config.suite, self.keys.uid())
            .into_iter()
            .map(|down| Err(down.into()))
            .collect()
    }

    /// Bank operator: opens `bank:<pan>` with `secret` (section 1). Returns its tx.
    pub fn open_account(
        &mut self,
        pan: &Pan,
        secret: &PanSecret,
        now: u64,
    ) -> Result<TxId, NodeError> {
        self.serving(now)?;
        let tx = TxId::random();
        let opening = bank::open_account(&self.state, self.config.suite, pan, secret, tx, now)?;
        let id = opening.id;
        let result = self.log.append_with(
            Recorded::attach(vec![opening.event], Vec::new()),
            &LiveProjection::new(&mut self.state),
            |txn, _| store::write_account_id(txn, pan, &id),
        );
        self.after_append(result, now)?;
        self.ids.insert(pan.clone(), id);
        Ok(tx)
    }

    /// Bank operator: deposits `amount` into `bank:<pan>` (section 5). Returns its tx.
    pub fn deposit(&mut self, pan: &Pan, amount: Amount, now: u64) -> Result<TxId, NodeError> {
        self.serving(now)?;
        let tx = TxId::random();
        let event = bank::deposit(&self.state, pan, amount, tx, now)?;
        self.append(vec![event], Vec::new(), now)?;
        Ok(tx)
    }

    /// Bank operator: pays `amount` out of `bank:<pan>`, limited to the balance less the
    /// memo `float:vendor` of its merchant (section 5). Returns its tx.
    pub fn payout(&mut self, pan: &Pan, amount: Amount, now: u64) -> Result<TxId, NodeError> {
        self.serving(now)?;
        let tx = TxId::random();
        let event = bank::payout(&self.state, pan, amount, tx, now)?;
        self.append(vec![event], Vec::new(), now)?;
        Ok(tx)
    }

    /// The broker's timer (sections 4 and 7: the broker enforces every deadline): closes
    /// every exchange of 6.2 whose deadline passed before `now` with no decision
    /// (`ExchangeExpired`), releases every escrow of 6.5 likewise (`EscrowReleased`), each
    /// telling C with a NOK `ChangeBrokerScrip`, and lapses every BrokerScrip whose renewal grace ended
    /// (`ScripLapsed`, its value back to the owner's bank account). Returns how many events
    /// it appended and the deliveries it sealed and stored, for the shell to publish after
    /// the commit (nothing is returned unless the commit succeeded).
    pub fn expire(&mut self, now: u64) -> Result<Expired, NodeError> {
        self.serving(now)?;
        let mut timed = crate::core::obtain_vendor_scrip::expired(&self.state, self.uid(), now);
        timed.extend(crate::core::top_up_vendor_scrip::expired(
            &self.state,
            self.uid(),
            now,
        ));
        timed.extend(
            crate::core::lapse::lapsed(&self.state, &self.config, now)
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
                .map(|d| self.seal(d))
                .collect::<Result<Vec<_>, _>>()?;
            deliveries.extend(sent.iter().map(|s| Outgoing {
                to: s.to,
                frame: s.frame.clone(),
            }));
            events.extend(Recorded::attach(vec![t.event], sent));
        }
        if !events.is_empty() {
            let result = self
                .log
                .append(events, &LiveProjection::new(&mut self.state));
            self.after_append(result, now)?;
        }
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
    pub fn to_resend(&self, now: u64) -> Vec<Outgoing> {
        // Down after a storage fault, the state may hold an escrow the log does not.
        if self.is_down() {
            return Vec::new();
        }
        crate::core::top_up_vendor_scrip::to_resend(&self.state, now)
            .into_iter()
            .map(|(to, frame)| Outgoing { to, frame })
            .collect()
    }

    /// Seals the decision's reply and deliveries: what the requester and the recipients
    /// get, and the frames stored in its events (ADR 0006). A decision without events (a
    /// read) is sealed the same way and stores nothing.
    fn seal_decision(&self, decision: &Decision) -> Result<(Handled, Vec<SentFrame>), NodeError> {
        let reply = self.seal(&decision.reply)?;
        let deliveries = decision
            .deliveries
            .iter()
            .map(|d| self.seal(d))
            .collect::<Result<Vec<_>, _>>()?;
        let handled = Handled {
            reply: reply.frame.clone(),
            deliveries: deliveries
                .iter()
                .map(|s| Outgoing {
                    to: s.to,
                    frame: s.frame.clone(),
                })
                .collect(),
        };
        let mut sent = vec![reply];
        sent.extend(deliveries);
        Ok((handled, sent))
    }

    fn seal(&self, draft: &Draft) -> Result<SentFrame, NodeError> {
        let recipient = self
            .state
            .peers
            .get(&draft.to)
            .map(|p| &p.public_key)
            .or_else(|| self.operator.as_ref().filter(|k| k.uid() == draft.to));
        Ok(draft.seal(&self.keys, recipient)?)
    }

    fn append(
        &mut self,
        events: Vec<NewEvent<Kind>>,
        sent: Vec<SentFrame>,
        now: u64,
    ) -> Result<(), NodeError> {
        let result = self.log.append(
            Recorded::attach(events, sent),
            &LiveProjection::new(&mut self.state),
        );
        self.after_append(result, now)
    }

    /// `Ok` when the node may serve at `now`: the log is open and the state is the log's.
    /// Down after a storage fault, it first tries to recover (at most once per
    /// `shared::node::RETRY_AFTER_SECS`), else is [`NodeError::Unavailable`].
    fn serving(&mut self, now: u64) -> Result<(), NodeError> {
        let (log, config) = (&mut self.log, &self.config);
        let (state, ids) = (&mut self.state, &mut self.ids);
        self.availability.serving(now, || {
            log.reopen()?;
            (*state, *ids) = load(log, config)?;
            Ok::<(), NodeError>(())
        })?;
        Ok(())
    }

    fn after_append<T>(&mut self, result: Result<T, LogError>, now: u64) -> Result<(), NodeError> {
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(self.availability.fault(e, now).into()),
        }
    }

    /// A signed `Error` answering the request with `header` (and `digest`, empty when the
    /// request could not be verified). Not stored: a refusal changes nothing. Signed under
    /// the broker's own suite, so that a `WrongSuite` frame is answered too.
    fn refuse(
        &self,
        header: &Header,
        digest: &[u8],
        refusal: &Refusal,
    ) -> Result<Handled, NodeError> {
        let body = ErrorBody::new(
            Re::new(header, digest.to_vec()),
            refusal.code,
            refusal.message.clone(),
        );
        let mut draft = Draft::reply(self.keys.uid(), header, digest, &body);
        draft.header.suite = self.config.suite;
        Ok(Handled {
            reply: self.seal(&draft)?.frame,
            deliveries: Vec::new(),
        })
    }
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
        state.apply(&event?);
    }
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
