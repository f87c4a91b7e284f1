//! [`MerchantNode`]: the merchant's core with its log, keys and configuration, driven one
//! frame at a time (design brief of issue 4, point 1). What the tests call now and the
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
use shared::node::{Draft, DraftError, Recorded, Refusal, SentFrame};
use shared::wire::bodies::{ErrorBody, Re};
use shared::wire::{Frame, Header, LabelKind};
use shared::{Amount, CustomerSecret, KeyPair, PublicKey, Scrip, TxId, Uid};

use crate::core::events::Kind;
use crate::core::issue::issue_vendor_scrip;
use crate::core::lapse::lapsed;
use crate::core::open::open;
use crate::core::report::{AckError, pending_reports};
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
    /// The group commit of the batch this request was in failed: nothing of the batch was
    /// written, the state was rebuilt from the log, and the request may be repeated.
    #[error("the batch's group commit failed: {0}")]
    Batch(String),
    /// A failed append could not be followed by a replay of the log: the node stopped
    /// serving and must be reopened.
    #[error("the node stopped serving: {0}")]
    Broken(String),
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
    /// Set when a failed append could not be followed by a replay: the in-memory state may
    /// not be what the log justifies, so the node serves nothing more (reopen it).
    broken: Option<String>,
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
        if keys.uid() != config.me() {
            return Err(NodeError::KeyMismatch {
                keys: keys.uid(),
                mint: config.me(),
            });
        }
        let log = EventLog::open(path, LogIdentity::new(keys.suite(), NODE_KIND))?;
        log.verify_chain()?;
        let state = replay(&log, State::with_peers(peers))?;
        let node = MerchantNode {
            log,
            state,
            keys,
            config,
            broken: None,
        };
        node.check_tables()?;
        Ok(node)
    }

    /// Closes the log (releasing its lock) and returns the keys and configuration, e.g. to
    /// reopen the node in a restart test.
    pub fn close(self) -> Result<(KeyPair, Config), NodeError> {
        self.log.close()?;
        Ok((self.keys, self.config))
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
    /// (protocol.md section 6). If an append or the commit fails, the state is rebuilt from
    /// the log and every result is an `Err`: refusals too, since they may have depended on
    /// an uncommitted decision.
    pub fn handle_batch(&mut self, frames: &[&[u8]], now: u64) -> Vec<Result<Handled, NodeError>> {
        if let Err(NodeError::Broken(why)) = self.serving() {
            return frames
                .iter()
                .map(|_| Err(NodeError::Broken(why.clone())))
                .collect();
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
                let message = e.to_string();
                return frames
                    .iter()
                    .map(|_| Err(NodeError::Batch(message.clone())))
                    .collect();
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
                let message = e.to_string();
                let peers = State::with_peers(self.state.peer_keys().cloned());
                let first = match self.reload(peers) {
                    Ok(()) => NodeError::Log(e),
                    Err(replay_error) => replay_error,
                };
                std::iter::once(Err(first))
                    .chain((1..frames.len()).map(|_| Err(NodeError::Batch(message.clone()))))
                    .collect()
            }
        }
    }

    /// Every request of the merchant to the broker that awaits its decision (6.2 step 3,
    /// 6.5 step 3, 6.7 step 2), as the frame stored when it was decided: what the shell
    /// sends after a restart and on its retry timer until the decision arrives (section 7:
    /// a party that asked the broker never undoes on its own timer).
    #[must_use]
    pub fn pending_broker_requests(&self) -> Vec<Outgoing> {
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
                    .find(|f| Frame::decode(f).is_ok_and(|f| f.header.label == label))?;
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
        self.serving()?;
        let decision = lapsed(&self.state, &self.config, now).map_err(DraftError::from)?;
        let lapsed = decision.events.len();
        if lapsed > 0 {
            self.commit(decision)?;
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
        self.serving()?;
        let issued =
            issue_vendor_scrip(&self.state, &self.config, owner, value, tx, now, Vec::new())
                .map_err(NodeError::Refused)?;
        self.append(Recorded::attach(vec![issued.event], Vec::new()))?;
        Ok((issued.scrip, issued.cs))
    }

    /// The `PurchaseCompleted` reports still owed to the broker, as stored when each
    /// purchase was made: what the shell sends after a restart and on its retry timer.
    #[must_use]
    pub fn pending_reports(&self) -> Vec<Outgoing> {
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
        self.serving()?;
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
                self.append(Recorded::attach(vec![*event], Vec::new()))?;
                Ok(ReplyOutcome::Recorded)
            }
            Ok(ReplyDecision::Decided(decision)) => {
                let handled = self.commit(*decision)?;
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
    fn commit(&mut self, decision: Decision) -> Result<Handled, NodeError> {
        let sent = seal_outputs(&decision, &self.keys, &self.state)?;
        self.append(Recorded::attach(decision.events, sent.clone()))?;
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
    /// On a failed commit nothing was written, and the state is rebuilt from the log.
    fn append(&mut self, events: Vec<NewEvent<Recorded<Kind>>>) -> Result<(), NodeError> {
        let mirror = Mirror::new(std::mem::take(&mut self.state));
        let result = self.log.append(events, &mirror);
        let state = mirror.into_state();
        match result {
            Ok(_) => {
                self.state = state;
                Ok(())
            }
            Err(e) => {
                let peers = State::with_peers(state.peer_keys().cloned());
                self.state = state;
                self.reload(peers)?;
                Err(e.into())
            }
        }
    }

    /// Rebuilds the state from the log after a failed append; if even that fails, the node
    /// stops serving (see `broken`).
    fn reload(&mut self, peers: State) -> Result<(), NodeError> {
        match replay(&self.log, peers) {
            Ok(state) => {
                self.state = state;
                Ok(())
            }
            Err(e) => {
                self.broken = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// `Err` once the node stopped serving (see `broken`).
    fn serving(&self) -> Result<(), NodeError> {
        match &self.broken {
            Some(why) => Err(NodeError::Broken(why.clone())),
            None => Ok(()),
        }
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

/// Folds the whole log into `state` (which holds only peer keys).
fn replay(log: &EventLog<Recorded<Kind>>, mut state: State) -> Result<State, NodeError> {
    for event in log.iter()? {
        state.apply(&event?);
    }
    Ok(state)
}

#[cfg(test)]
mod tests;
