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

use shared::events::{EventLog, LogError, LogIdentity, NewEvent, ProjectionError};
use shared::node::{
    Availability, Draft, DraftError, Recorded, Refusal, SentFrame, Unavailable, unavailable_batch,
};
use shared::wire::bodies::{ErrorBody, Re};
use shared::wire::{Frame, Header, LabelKind};
use shared::{Amount, CustomerSecret, KeyPair, PublicKey, Scrip, TxId, Uid};

use crate::core::broker_reply::AckError;
use crate::core::events::Kind;
use crate::core::issue::issue_vendor_scrip;
use crate::core::lapse::lapsed;
use crate::core::open::open;
use crate::core::report::pending_reports;
use crate::core::state::State;
use crate::core::{Config, Decision, Outcome, ReplyDecision, decide, decide_reply};
use crate::store::{Mirror, rows_of};

/// The node kind recorded in a merchant's log file.
pub const NODE_KIND: &str = "merchant";

/// The name of an event's kind, for the export's `Peerscrip-Kind` header
/// (`shared::export`), so a consumer that does not decode still sees what happened.
#[must_use]
pub fn event_name(event: &Recorded<Kind>) -> String {
    event.kind.name().to_owned()
}

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
    /// The projection tables on disk are not what the log gives.
    #[error("the projection tables differ from the state rebuilt from the log")]
    Diverged,
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

/// A frame to send, with its recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient.
    pub to: Uid,
    /// The encoded frame.
    pub frame: Vec<u8>,
}

/// What handling one request frame gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    /// The reply to the requester; `None` for a frame too broken to answer (no readable
    /// header), for a 6.2 request whose reply is held until the broker decides (sent then,
    /// by `handle_reply`), and for the broker's 6.5 delivery (answered by a request of the
    /// merchant's own, in `deliveries`).
    pub reply: Option<Outgoing>,
    /// Other frames to send (6.3: the `PurchaseCompleted` report; 6.2, 6.5, 6.7: the
    /// merchant's request to the broker).
    pub deliveries: Vec<Outgoing>,
    /// Why the request was refused, if it was (the reply is then the signed `Error`).
    pub refusal: Option<Refusal>,
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

/// A merchant node: log, state, keys, configuration.
#[derive(Debug)]
pub struct MerchantNode {
    log: EventLog<Recorded<Kind>>,
    state: State,
    keys: KeyPair,
    config: Config,
    /// Down after a storage fault until the log is reopened and the state rebuilt from it
    /// (protocol.md section 10): meanwhile the state may hold decisions the log does not,
    /// so nothing is served from it.
    availability: Availability,
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
        let state = load(&log, State::with_peers(peers))?;
        Ok(MerchantNode {
            log,
            state,
            keys,
            config,
            availability: Availability::default(),
        })
    }

    /// Closes the log (releasing its lock) and returns the keys and configuration, e.g. to
    /// reopen the node in a restart test.
    pub fn close(self) -> Result<(KeyPair, Config), NodeError> {
        self.log.close()?;
        Ok((self.keys, self.config))
    }

    /// Whether the node is down after a storage fault (protocol.md section 10): until its
    /// next call at or after the retry time reopens the log, its [`MerchantNode::state`]
    /// may hold decisions of the failed commit that the log does not, so a reader who
    /// needs the log's state (an invariant, a report) skips it meanwhile.
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.availability.down().is_some()
    }

    /// `Ok` when the node serves at `now`; down after a storage fault, it first tries to
    /// recover (reopen its log, rebuild its state; at most once a second). For a caller
    /// with no request to hand it, such as the reporter, which has nothing to send while
    /// the node is down.
    ///
    /// # Errors
    /// [`NodeError::Unavailable`] while the node cannot recover.
    pub fn ready(&mut self, now: u64) -> Result<(), NodeError> {
        self.serving(now)
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The event log.
    #[must_use]
    pub fn log(&self) -> &EventLog<Recorded<Kind>> {
        &self.log
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Records a peer's public key, as the daemon learns it from the broker by 6.0b (the
    /// only way a key arrives, protocol.md section 6.0b; the UID is the key's hash, so it
    /// cannot be recorded under another). Peer keys are not in the log.
    pub fn add_peer(&mut self, key: PublicKey) {
        self.state.add_peer(key);
    }

    /// Checks that the in-memory state encodes to exactly the projection rows on disk.
    pub fn check_tables(&self) -> Result<(), NodeError> {
        let on_disk = self.log.dump_projection(&Mirror::new(State::new()))?;
        if on_disk == rows_of(&self.state)? {
            Ok(())
        } else {
            Err(NodeError::Diverged)
        }
    }

    /// Handles one request frame received at `now` (unix seconds): decode, open, decide,
    /// seal, commit, then return the reply and deliveries. A refused request changes
    /// nothing and is answered with a signed `Error`. A batch of one
    /// ([`MerchantNode::handle_batch`]).
    pub fn handle(&mut self, bytes: &[u8], now: u64) -> Result<Handled, NodeError> {
        self.handle_batch(&[bytes], now)
            .pop()
            .unwrap_or(Err(NodeError::Log(LogError::GroupFailed)))
    }

    /// Handles request frames that arrived together (the actor shell's group commit,
    /// architecture.md "Each node"), one result per frame, in order: every frame is
    /// decoded and opened in parallel against the state before the batch (no frame of a
    /// batch can depend on another's effect, since no reply of the batch leaves before its
    /// commit); then, in arrival order, each is decided against the state including the
    /// earlier decisions of the batch, sealed, and folded in inside one write transaction;
    /// one durable commit covers the batch, and only then are the results returned
    /// (protocol.md section 6). If an append or the commit fails, every result is
    /// [`NodeError::Unavailable`] with the unsigned answer (refusals too, since they may
    /// have depended on an uncommitted decision), and the node is down until it has
    /// reopened its log and rebuilt its state (section 10).
    pub fn handle_batch(&mut self, frames: &[&[u8]], now: u64) -> Vec<Result<Handled, NodeError>> {
        if let Err(NodeError::Unavailable(down)) = self.serving(now) {
            return self.unavailable(frames, &down.reason);
        }
        let opened = {
            let (keys, state, broker) = (&self.keys, &self.state, self.config.broker);
            shared::runtime::parallel_map(frames, |bytes| {
                let frame = Frame::decode(bytes).map_err(Refusal::from)?;
                Ok(open(&frame, keys, state, broker).map_err(|e| (frame.header, Refusal::from(e))))
            })
        };
        let mut group = match self.log.begin_group() {
            Ok(group) => group,
            Err(e) => {
                let down = self.availability.fault(e, now);
                return self.unavailable(frames, &down.reason);
            }
        };
        let mut results = Vec::with_capacity(frames.len());
        let mut failure = None;
        for item in opened {
            let request = match item {
                Err(refusal) => {
                    results.push(Ok(Handled {
                        reply: None,
                        deliveries: Vec::new(),
                        refusal: Some(refusal),
                    }));
                    continue;
                }
                Ok(Err((header, refusal))) => {
                    results.push(Ok(self.refuse(&header, &[], refusal)));
                    continue;
                }
                Ok(Ok(request)) => request,
            };
            let result = match decide(&self.state, &self.config, &request, now) {
                Err(refusal) => Ok(self.refuse(request.header(), request.digest(), refusal)),
                Ok(Outcome::Repeat(frame)) => {
                    let out = Outgoing {
                        to: request.header().sender,
                        frame,
                    };
                    // A repeated delivery (the broker's 6.5 step 2) is answered as the first
                    // time: by the merchant's stored request, among the deliveries.
                    let delivery = request.header().label.kind() == LabelKind::Delivery;
                    Ok(Handled {
                        reply: (!delivery).then(|| out.clone()),
                        deliveries: if delivery { vec![out] } else { Vec::new() },
                        refusal: None,
                    })
                }
                Ok(Outcome::Answer(draft)) => draft
                    .seal(&self.keys, self.state.peer_key(&draft.to))
                    .map(|sent| Handled {
                        reply: Some(Outgoing {
                            to: sent.to,
                            frame: sent.frame,
                        }),
                        deliveries: Vec::new(),
                        refusal: None,
                    })
                    .map_err(NodeError::from),
                Ok(Outcome::Decided(decision)) => {
                    match seal_outputs(&decision, &self.keys, &self.state) {
                        Err(e) => Err(NodeError::from(e)),
                        Ok(sent) => {
                            let mirror = Mirror::new(std::mem::take(&mut self.state));
                            let appended = group
                                .append(Recorded::attach(decision.events, sent.clone()), &mirror);
                            self.state = mirror.into_state();
                            if let Err(e) = appended {
                                failure = Some(e);
                                break;
                            }
                            let mut frames = sent.into_iter().map(|s| Outgoing {
                                to: s.to,
                                frame: s.frame,
                            });
                            let reply = if decision.reply.is_some() {
                                frames.next()
                            } else {
                                None
                            };
                            Ok(Handled {
                                reply,
                                deliveries: frames.collect(),
                                refusal: None,
                            })
                        }
                    }
                }
            };
            results.push(result);
        }
        let committed = match failure {
            Some(e) => {
                drop(group);
                Err(e)
            }
            None => group.commit(),
        };
        match committed {
            Ok(()) => results,
            Err(e) => {
                let down = self.availability.fault(e, now);
                self.unavailable(frames, &down.reason)
            }
        }
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
        let broker = self.config.broker;
        self.state
            .tables
            .awaiting
            .iter()
            .filter_map(|(tx, awaiting)| {
                let label = awaiting.label();
                let frame = self
                    .state
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
    pub fn lapse(&mut self, now: u64) -> Result<usize, NodeError> {
        self.serving(now)?;
        let decision = lapsed(&self.state, &self.config, now).map_err(DraftError::from)?;
        let lapsed = decision.events.len();
        if lapsed > 0 {
            self.commit(decision, now)?;
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
        now: u64,
    ) -> Result<(Scrip, CustomerSecret), NodeError> {
        self.serving(now)?;
        let issued =
            issue_vendor_scrip(&self.state, &self.config, owner, value, tx, now, Vec::new())
                .map_err(NodeError::Refused)?;
        self.append(Recorded::attach(vec![issued.event], Vec::new()), now)?;
        Ok((issued.scrip, issued.cs))
    }

    /// The `PurchaseCompleted` reports still owed to the broker, as stored when each
    /// purchase was made: what the shell sends after a restart and on its retry timer.
    #[must_use]
    pub fn pending_reports(&self) -> Vec<Outgoing> {
        if self.is_down() {
            return Vec::new();
        }
        pending_reports(&self.state, self.config.broker)
            .into_iter()
            .map(|(_, frame)| Outgoing {
                to: self.config.broker,
                frame,
            })
            .collect()
    }

    /// Handles the broker's reply to one of the merchant's own requests: 6.3 step 5's
    /// `Ack`, or the decision of 6.2, 6.5 or 6.7 (see `core::decide_reply`). A valid reply
    /// to a pending request is acted on and recorded in one commit with the frames it
    /// sends; anything else is discarded and changes nothing.
    pub fn handle_reply(&mut self, bytes: &[u8], now: u64) -> Result<ReplyOutcome, NodeError> {
        self.serving(now)?;
        let broker = self
            .state
            .peer_key(&self.config.broker)
            .ok_or(NodeError::NoBrokerKey)?;
        let decided = Frame::decode(bytes)
            .map_err(AckError::from)
            .and_then(|frame| {
                decide_reply(&self.state, &self.config, &frame, &self.keys, broker, now)
            });
        match decided {
            Err(e) => Ok(ReplyOutcome::Discarded(e)),
            Ok(ReplyDecision::Acknowledged(event)) => {
                self.append(Recorded::attach(vec![*event], Vec::new()), now)?;
                Ok(ReplyOutcome::Recorded)
            }
            Ok(ReplyDecision::Decided(decision)) => {
                let handled = self.commit(*decision, now)?;
                Ok(ReplyOutcome::Decided(
                    handled
                        .reply
                        .into_iter()
                        .chain(handled.deliveries)
                        .collect(),
                ))
            }
        }
    }

    /// Signs and seals the decision's frames, commits its events with them, and returns
    /// them to send (the broker's decisions of 6.2, 6.5, 6.7 acted on in `handle_reply`).
    fn commit(&mut self, decision: Decision, now: u64) -> Result<Handled, NodeError> {
        let sent = seal_outputs(&decision, &self.keys, &self.state)?;
        self.append(Recorded::attach(decision.events, sent.clone()), now)?;
        let mut frames = sent.into_iter().map(|s| Outgoing {
            to: s.to,
            frame: s.frame,
        });
        let reply = if decision.reply.is_some() {
            frames.next()
        } else {
            None
        };
        Ok(Handled {
            reply,
            deliveries: frames.collect(),
            refusal: None,
        })
    }

    /// Appends `events` with the projection in one commit and folds them into the state.
    /// On a failed commit nothing was written, and the node is down until it has rebuilt
    /// its state from the log ([`MerchantNode::serving`]).
    fn append(&mut self, events: Vec<NewEvent<Recorded<Kind>>>, now: u64) -> Result<(), NodeError> {
        let mirror = Mirror::new(std::mem::take(&mut self.state));
        let result = self.log.append(events, &mirror);
        self.state = mirror.into_state();
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(self.availability.fault(e, now).into()),
        }
    }

    /// `Ok` when the node may serve at `now`: the log is open and the state is the log's.
    /// Down after a storage fault, it first tries to recover (reopen the log, rebuild the
    /// state; at most once per `shared::node::RETRY_AFTER_SECS`), else is
    /// [`NodeError::Unavailable`].
    fn serving(&mut self, now: u64) -> Result<(), NodeError> {
        let (log, state) = (&mut self.log, &mut self.state);
        self.availability.serving(now, || {
            log.reopen()?;
            *state = load(log, State::with_peers(state.peer_keys().cloned()))?;
            Ok::<(), NodeError>(())
        })?;
        Ok(())
    }

    /// Every frame of a batch the node could not serve, answered with the unsigned
    /// `Error { Unavailable }` (protocol.md section 10).
    fn unavailable(&self, frames: &[&[u8]], reason: &str) -> Vec<Result<Handled, NodeError>> {
        unavailable_batch(frames, reason, self.keys.suite(), self.keys.uid())
            .into_iter()
            .map(|down| Err(down.into()))
            .collect()
    }

    /// The signed `Error` reply to a refused request (protocol.md section 3): signed in the
    /// clear under this node's suite, `re` naming the request (with its digest when it was
    /// verified, else empty). Not stored: a refusal changes nothing, so a repeat is
    /// decided again.
    fn refuse(&self, request: &Header, digest: &[u8], refusal: Refusal) -> Handled {
        let body = ErrorBody::new(
            Re::new(request, digest.to_vec()),
            refusal.code,
            refusal.message.clone(),
        );
        // Not stored (a refusal changes nothing), so not a `Draft::reply`.
        let draft = Draft::delivery(
            self.keys.suite(),
            request.tx,
            self.keys.uid(),
            request.sender,
            &body,
        );
        let reply = draft.seal(&self.keys, None).ok().map(|s| Outgoing {
            to: s.to,
            frame: s.frame,
        });
        Handled {
            reply,
            deliveries: Vec::new(),
            refusal: Some(refusal),
        }
    }
}

/// Signs and seals a decision's drafts (the CPU-heavy step the shell will run off the actor
/// thread): the reply first, then the deliveries, each sealed to its recipient's key from
/// `state`'s peer keys when it is sealed.
pub fn seal_outputs(
    decision: &Decision,
    keys: &KeyPair,
    state: &State,
) -> Result<Vec<SentFrame>, DraftError> {
    decision
        .reply
        .iter()
        .chain(&decision.deliveries)
        .map(|draft| draft.seal(keys, state.peer_key(&draft.to)))
        .collect()
}

/// The state of `log` (chain verified, every event folded into `peers`, which holds only
/// peer keys), checked against the projection tables on disk: what
/// [`MerchantNode::open`] and a recovery after a storage fault check.
fn load(log: &EventLog<Recorded<Kind>>, peers: State) -> Result<State, NodeError> {
    log.verify_chain()?;
    let state = replay(log, peers)?;
    if log.dump_projection(&Mirror::new(State::new()))? == rows_of(&state)? {
        Ok(state)
    } else {
        Err(NodeError::Diverged)
    }
}

/// Folds the whole log into `state` (which holds only peer keys).
fn replay(log: &EventLog<Recorded<Kind>>, mut state: State) -> Result<State, NodeError> {
    for event in log.iter()? {
        state.apply(&event?);
    }
    Ok(state)
}

#[cfg(test)]
mod tests;
