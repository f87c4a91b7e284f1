//! [`Driver`]: the one batch step every node runs (docs/adr/0013), over a [`Core`] that
//! the broker's and each merchant's sans-IO cores implement.
//!
//! Why one driver: the order of a batch is the protocol's, not a node's (sections 3, 6, 7
//! and 10), and two copies of it drift: one node signs its refusals in parallel after the
//! commit, the other inline; one calls a failure "inconsistent", the other "broken". Here
//! it is written once:
//!
//! 0. cheap checks first (section 10): a sender over its request rate ([`RateLimiter`],
//!    from [`Core::quotas`]) or its cap of open transactions ([`Core::admits`]) is refused
//!    `TooManyRequests` from the frame's header alone;
//! 1. decode and [`Core::open`] every frame of the batch in parallel (RSA unwrap and
//!    signature checks, the slow part) against the state before the batch. Sound because
//!    no frame of a batch can depend on another's effect: a party sends its next request
//!    only after the previous reply, and no reply of the batch leaves before its commit;
//! 2. in arrival order, [`Core::decide`] each against the state including every earlier
//!    decision of the batch, seal its drafts and [`Core::append`] its events (with the
//!    frames, ADR 0006) inside the batch's one write transaction, folding them into the
//!    state, so two requests spending one scrip are serialized and the second is refused;
//! 3. one durable commit for the whole batch, then [`Core::committed`]; then the refusals,
//!    which change nothing and are not stored, are signed in parallel. Only then are the
//!    results returned (section 6: the state change commits before the reply leaves);
//!    a refusal of a frame that did not open or verify, and a quota's, is an unsigned
//!    `Error` instead, which costs no private-key operation (section 3). While the commit
//!    waits for the disk, the frames that arrived meanwhile are put through steps 0 and 1
//!    on the pool ([`Driver::serve`]), against the state the batch leaves: sound for the
//!    same reason as step 1 (none of them can depend on a reply of this batch, none has
//!    left), and if the commit fails they are served again from the start;
//! 4. one failure path: if any append or the commit fails, nothing of the batch was
//!    written, every frame is answered with the unsigned `Error { Unavailable }` (refusals
//!    too, since they may have depended on an uncommitted decision), and the node is down
//!    until [`Core::load`] has rebuilt its state from the reopened log (section 10). It
//!    never answers from a state its log does not justify, and the requesters repeat with
//!    the same bodies (section 7).
//!
//! The outputs are typed by what the bus does with them ([`Handled`]): the reply on the
//! request's reply subject, deliveries to peer subjects, and requests of the node's own
//! that want an answer (the merchant's report and relays to the broker, sections 6.2–6.7),
//! which its reporter sends.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ErrorCode;
use crate::events::{EventLog, Group, LogError, NewEvent, SharedReplica};
use crate::ids::Uid;
use crate::suite::{KeyPair, PublicKey, Suite};
use crate::time::UnixSecs;
use crate::wire::bodies::{ErrorBody, Re};
use crate::wire::{Frame, Header};

use super::{
    Availability, Decision, Draft, DraftError, Handled, Outcome, Outgoing, Quotas, RateLimiter,
    Recorded, Refusal, Sender, SentFrame, Unavailable, too_many_requests, unavailable_batch,
    unsigned_error,
};

/// A node's sans-IO core as the [`Driver`] runs it: its state, keys and configuration,
/// and the four steps of a request (open, decide, append into the projection, load).
pub trait Core: Send + Sync {
    /// The node's own event kind (stored as [`Recorded`] with the frames it sent).
    type Kind: Serialize + DeserializeOwned + Clone + Send + Sync;
    /// A verified request, what `open` gives and `decide` takes.
    type Request: Send;
    /// What [`Core::load`] reports when a log's state cannot be served.
    type LoadError: std::fmt::Display + From<LogError>;

    /// The node's key pair: it signs and seals everything the node sends.
    fn keys(&self) -> &KeyPair;

    /// The suite the node answers in (refusals included, so a `WrongSuite` frame is
    /// answered too).
    fn suite(&self) -> Suite;

    /// The node's quotas (section 10): the driver enforces their rate before any
    /// private-key operation; the caps on open transactions are the core's, in `decide`.
    fn quotas(&self) -> Quotas;

    /// Refuses, from the frame's header alone and before any private-key operation, a
    /// request that would open a transaction its sender has no room for (section 10: the
    /// caps on open transactions, `TooManyRequests`). `decide` checks the same caps again
    /// against the decisions earlier in the batch; this check only spares the node the
    /// work of opening a frame it would refuse. A frame of a tx the node already holds (a
    /// repeat, a later step) passes: `decide` judges it.
    ///
    /// # Errors
    /// The quota's refusal.
    fn admits(&self, _header: &Header, _now: UnixSecs) -> Result<(), Refusal> {
        Ok(())
    }

    /// Who `sender` is to the node, for its rate: a frame of a sender it does not know
    /// counts against the one budget all such senders share (section 10, "Cheap checks
    /// first"); a party it trusts by configuration has no rate.
    fn sender(&self, sender: &Uid) -> Sender;

    /// Verifies a decoded frame into a request (decryption, signatures, the frame's own
    /// checks), against the state before the batch. Runs in parallel: no state change.
    ///
    /// # Errors
    /// The refusal (section 3).
    fn open(&self, frame: &Frame) -> Result<Self::Request, Refusal>;

    /// The request's header.
    fn header(request: &Self::Request) -> &Header;

    /// The request's digest (section 7).
    fn digest(request: &Self::Request) -> &[u8];

    /// Decides a verified request against the state, at `now` (unix seconds). Pure:
    /// every check happens here, before any state change (section 6).
    ///
    /// # Errors
    /// The refusal; the state is unchanged.
    fn decide(
        &self,
        request: &Self::Request,
        now: UnixSecs,
    ) -> Result<Outcome<Self::Kind>, Refusal>;

    /// The public key a draft to `to` is sealed to, if the node knows it.
    fn recipient(&self, to: &Uid) -> Option<&PublicKey>;

    /// Appends one decision's `events` (frames attached) in the batch's `group`, folding
    /// them into the state and its projection tables; `request` is what they decide
    /// (`None` for the node's own timers and operator calls), for writes beside the log
    /// (the broker's secrets table).
    ///
    /// # Errors
    /// The log's; the group is then given up and nothing of the batch is written.
    fn append(
        &mut self,
        group: &mut Group<'_, Recorded<Self::Kind>>,
        events: Vec<NewEvent<Recorded<Self::Kind>>>,
        request: Option<&Self::Request>,
    ) -> Result<(), LogError>;

    /// Writes the projection rows the group's appends changed, once each, just before it
    /// commits: a row that several decisions of a batch touch (a purchase's two steps, a
    /// merchant's float) is written once, and each table is opened once per batch rather
    /// than once per decision (architecture.md, "Where the time goes"). Nothing by default,
    /// for a core whose [`Core::append`] writes its rows as it goes. What it staged is
    /// dropped by [`Core::load`] when the group fails.
    ///
    /// # Errors
    /// The log's; the group is then given up and nothing of the batch is written.
    fn flush(&mut self, _group: &mut Group<'_, Recorded<Self::Kind>>) -> Result<(), LogError> {
        Ok(())
    }

    /// The batch's group committed: what waited for it takes effect (the broker's new
    /// account IDs join its secrets table in memory).
    fn committed(&mut self) {}

    /// Rebuilds the state from `log` with every check of a start (chain, replay, tables
    /// against the replayed state): at open and after a storage fault.
    ///
    /// # Errors
    /// Why the log's state cannot be served.
    fn load(&mut self, log: &EventLog<Recorded<Self::Kind>>) -> Result<(), Self::LoadError>;
}

/// A frame of a batch after the rate check: opened, or refused from its header.
enum Admission<'a> {
    Open(&'a [u8]),
    OverQuota(Header),
}

/// Why the driver did not serve one frame (see [`Driver::handle_batch`]).
#[derive(Debug, thiserror::Error)]
pub enum Unserved {
    /// The node cannot write its log (section 10): nothing of the batch was written; the
    /// requester gets the unsigned `Error { Unavailable }` and may repeat.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The decision's frames could not be signed or sealed: nothing of it was written.
    #[error(transparent)]
    Draft(#[from] DraftError),
}

/// What steps 0 and 1 made of one frame: no header to answer under (it did not decode),
/// refused from its header or by [`Core::open`] (answered unsigned), or a verified request.
type Opening<R> = Result<Result<R, (Header, Refusal)>, Refusal>;

/// Frames received together, as [`Driver::serve`] takes them: each `T` is a frame (its
/// bytes, and whatever the caller keeps with it, such as where its result goes), with the
/// work of steps 0 and 1 already done when the batch was opened ahead, during the commit
/// of the batch before it.
pub struct Batch<T, R> {
    frames: Vec<T>,
    /// `Some` when opened ahead, one per frame.
    opened: Option<Vec<Opening<R>>>,
}

impl<T, R> Batch<T, R> {
    /// Frames not opened yet.
    #[must_use]
    pub fn new(frames: Vec<T>) -> Batch<T, R> {
        Batch {
            frames,
            opened: None,
        }
    }

    /// The frames.
    #[must_use]
    pub fn frames(&self) -> &[T] {
        &self.frames
    }

    /// The frames, for a node that serves them without the driver (a stand-in).
    #[must_use]
    pub fn into_frames(self) -> Vec<T> {
        self.frames
    }

    /// Whether steps 0 and 1 were done ahead.
    #[must_use]
    pub fn is_opened(&self) -> bool {
        self.opened.is_some()
    }
}

impl<T, R> std::fmt::Debug for Batch<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("frames", &self.frames.len())
            .field("opened", &self.opened.is_some())
            .finish()
    }
}

/// What [`Driver::serve`] gives back: each frame of the batch with its result, in order,
/// and the batch it opened ahead, if the caller had frames waiting.
pub type BatchResults<T, R> = (Vec<(T, Result<Handled, Unserved>)>, Option<Batch<T, R>>);

/// A node: its log, its core and whether it serves (see the module doc).
pub struct Driver<C: Core> {
    log: EventLog<Recorded<C::Kind>>,
    core: C,
    /// Down after a storage fault until the log is reopened and the state rebuilt from it
    /// (section 10): meanwhile the state may hold decisions the log does not, so nothing
    /// is served from it.
    availability: Availability,
    /// Each sender's request rate (section 10), checked before a frame is opened.
    rate: RateLimiter,
}

impl<C: Core> std::fmt::Debug for Driver<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("uid", &self.core.keys().uid())
            .field("log", &self.log)
            .field("availability", &self.availability)
            .finish_non_exhaustive()
    }
}

impl<C: Core> Driver<C> {
    /// `core` serving `log`, its state loaded from it ([`Core::load`]).
    ///
    /// # Errors
    /// [`Core::load`]'s.
    pub fn new(log: EventLog<Recorded<C::Kind>>, mut core: C) -> Result<Driver<C>, C::LoadError> {
        core.load(&log)?;
        let rate = RateLimiter::new(core.quotas());
        Ok(Driver {
            log,
            core,
            availability: Availability::default(),
            rate,
        })
    }

    /// The core (its state, keys and configuration).
    #[must_use]
    pub fn core(&self) -> &C {
        &self.core
    }

    /// The core, to change what is not in the log (the merchant's peer keys).
    pub fn core_mut(&mut self) -> &mut C {
        &mut self.core
    }

    /// The log.
    #[must_use]
    pub fn log(&self) -> &EventLog<Recorded<C::Kind>> {
        &self.log
    }

    /// The log and the core, the log still open (to close it).
    #[must_use]
    pub fn into_parts(self) -> (EventLog<Recorded<C::Kind>>, C) {
        (self.log, self.core)
    }

    /// Attaches `replica` to the log (docs/adr/0017): every later commit is replicated
    /// before it returns, and none begins once the replica is fenced. `None` detaches it.
    pub fn set_replica(&mut self, replica: Option<SharedReplica>) {
        self.log.set_replica(replica);
    }

    /// Whether the node is down after a storage fault (section 10): until a call at or
    /// after the retry time reopens the log, the core's state may hold decisions of the
    /// failed commit that the log does not, so a reader who needs the log's state (an
    /// invariant, a report, a re-send) skips it meanwhile.
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.availability.down().is_some()
    }

    /// `Ok` when the node may serve at `now`: the log is open and the state is the log's.
    /// Down after a storage fault, it first tries to recover (reopen the log,
    /// [`Core::load`]; at most once per `RETRY_AFTER_SECS`).
    ///
    /// # Errors
    /// [`Unavailable`] while it cannot recover.
    pub fn serving(&mut self, now: UnixSecs) -> Result<(), Unavailable> {
        let (log, core) = (&mut self.log, &mut self.core);
        self.availability.serving(now, || {
            log.reopen().map_err(|e| e.to_string())?;
            core.load(log).map_err(|e| e.to_string())
        })
    }

    /// Seals `draft` with the node's key, to its recipient's key.
    ///
    /// # Errors
    /// As [`Draft::seal`].
    pub fn seal(&self, draft: &Draft) -> Result<SentFrame, DraftError> {
        draft.seal(self.core.keys(), self.core.recipient(&draft.to))
    }

    /// Appends events the node decided itself (a timer, an operator call) in one commit,
    /// after `write` has put them in the group ([`Core::append`], or with writes beside
    /// the log). A failure leaves nothing written and the node down ([`Driver::serving`]).
    ///
    /// # Errors
    /// [`Unavailable`]: down, or the append or commit failed.
    pub fn commit_with(
        &mut self,
        now: UnixSecs,
        write: impl FnOnce(&mut C, &mut Group<'_, Recorded<C::Kind>>) -> Result<(), LogError>,
    ) -> Result<(), Unavailable> {
        self.serving(now)?;
        let committed = match self.log.begin_group() {
            Ok(mut group) => {
                match write(&mut self.core, &mut group).and_then(|()| self.core.flush(&mut group)) {
                    Ok(()) => group.commit(),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match committed {
            Ok(()) => {
                self.core.committed();
                Ok(())
            }
            Err(e) => Err(self.availability.fault(e, now)),
        }
    }

    /// [`Driver::commit_with`] of `events`, sealed frames attached, through
    /// [`Core::append`].
    ///
    /// # Errors
    /// As [`Driver::commit_with`].
    pub fn commit(
        &mut self,
        now: UnixSecs,
        events: Vec<NewEvent<Recorded<C::Kind>>>,
    ) -> Result<(), Unavailable> {
        if events.is_empty() {
            return self.serving(now);
        }
        self.commit_with(now, |core, group| core.append(group, events, None))
    }

    /// Seals a decision's drafts (reply first) and commits its events with them: the
    /// node's own decisions outside a batch (the merchant acting on the broker's answer).
    /// Returns the sealed frames, typed.
    ///
    /// # Errors
    /// The seal's or the commit's; nothing was written.
    pub fn commit_decision(
        &mut self,
        now: UnixSecs,
        decision: Decision<C::Kind>,
    ) -> Result<Handled, Unserved> {
        self.serving(now)?;
        let (handled, sent) = self.seal_decision(&decision)?;
        self.commit(now, Recorded::attach(decision.events, sent))?;
        Ok(handled)
    }

    /// Several of the node's own decisions in one commit (the merchant acting on the
    /// broker's answers that arrived together): `decide` is called for each item in order,
    /// on the core as the earlier ones left it (their events folded), and gives its
    /// decision or `None` (nothing to record for it); each decision's drafts are sealed and
    /// its events appended with them, as [`Driver::commit_decision`] does for one. One
    /// result per item, `None` where `decide` gave none; on any failure nothing of them is
    /// written: a seal's leaves the state rebuilt from the log, a storage fault leaves the
    /// node down until it is ([`Driver::serving`]).
    ///
    /// # Errors
    /// A seal's or the commit's.
    pub fn commit_decisions<T>(
        &mut self,
        now: UnixSecs,
        items: &[T],
        mut decide: impl FnMut(&C, &T) -> Option<Decision<C::Kind>>,
    ) -> Result<Vec<Option<Handled>>, Unserved> {
        self.serving(now)?;
        let mut group = match self.log.begin_group() {
            Ok(group) => group,
            Err(e) => return Err(self.availability.fault(e, now).into()),
        };
        let mut handled = Vec::with_capacity(items.len());
        for item in items {
            let Some(decision) = decide(&self.core, item) else {
                handled.push(None);
                continue;
            };
            let (done, sent) = match self.seal_decision(&decision) {
                Ok(sealed) => sealed,
                Err(e) => {
                    // Nothing is written. The earlier decisions of the group are folded
                    // into the state, which is rebuilt from the log (down if it cannot be).
                    let folded = group.appended() > 0;
                    drop(group);
                    if folded && let Err(reload) = self.core.load(&self.log) {
                        self.availability.fault(reload, now);
                    }
                    return Err(e.into());
                }
            };
            let events = Recorded::attach(decision.events, sent);
            if let Err(e) = self.core.append(&mut group, events, None) {
                drop(group);
                return Err(self.availability.fault(e, now).into());
            }
            handled.push(Some(done));
        }
        match self.core.flush(&mut group).and_then(|()| group.commit()) {
            Ok(()) => {
                self.core.committed();
                Ok(handled)
            }
            Err(e) => Err(self.availability.fault(e, now).into()),
        }
    }

    /// Handles request frames that arrived together, one result per frame, in order (see
    /// the module doc for the order and the failure path). A refusal is an `Ok` with the
    /// `Error` as its reply (signed, or unsigned for a frame that did not verify or a
    /// quota's refusal) and [`Handled::refusal`] set.
    pub fn handle_batch(
        &mut self,
        frames: &[&[u8]],
        now: UnixSecs,
    ) -> Vec<Result<Handled, Unserved>> {
        let (served, _) = self.serve(Batch::new(frames.to_vec()), now, Vec::new);
        served.into_iter().map(|(_, result)| result).collect()
    }

    /// [`Driver::handle_batch`] of `batch`, and, while its commit waits for the disk, steps
    /// 0 and 1 of the frames `next` gives (those that arrived meanwhile; it is called once,
    /// on the pool, and gives none when nothing waits): returned as the batch to serve
    /// next (before anything else changes the state), with the work of those steps done.
    /// If this batch fails, the frames `next` gave come back not opened, to be served from
    /// the start.
    pub fn serve<T>(
        &mut self,
        batch: Batch<T, C::Request>,
        now: UnixSecs,
        next: impl FnOnce() -> Vec<T> + Send,
    ) -> BatchResults<T, C::Request>
    where
        T: AsRef<[u8]> + Send,
    {
        let Batch { frames, opened } = batch;
        if let Err(down) = self.serving(now) {
            return (self.unavailable_each(frames, &down.reason), None);
        }
        let opened = match opened {
            Some(opened) if opened.len() == frames.len() => opened,
            _ => open_batch(&self.core, &mut self.rate, &frames, now),
        };
        let mut group = match self.log.begin_group() {
            Ok(group) => group,
            Err(e) => {
                let down = self.availability.fault(e, now);
                return (self.unavailable_each(frames, &down.reason), None);
            }
        };
        // Refusals change nothing and are signed after the commit, in parallel.
        let mut results: Vec<Option<Result<Handled, Unserved>>> = Vec::with_capacity(frames.len());
        let mut refusals: Vec<(usize, Header, Vec<u8>, Refusal)> = Vec::new();
        let mut failure = None;
        for item in opened {
            let request = match item {
                // No header to answer under: nothing is sent back.
                Err(refusal) => {
                    results.push(Some(Ok(Handled {
                        refusal: Some(refusal),
                        ..Handled::default()
                    })));
                    continue;
                }
                // Not verified, or over the rate: unsigned (section 3).
                Ok(Err((header, refusal))) => {
                    results.push(Some(Ok(self.refuse_unsigned(&header, &[], refusal))));
                    continue;
                }
                Ok(Ok(request)) => request,
            };
            let header = C::header(&request);
            let result = match self.core.decide(&request, now) {
                // A cap on open transactions: unsigned, like the rate's (section 3).
                Err(refusal) if refusal.code == ErrorCode::TooManyRequests => {
                    Ok(self.refuse_unsigned(header, C::digest(&request), refusal))
                }
                Err(refusal) => {
                    refusals.push((
                        results.len(),
                        *header,
                        C::digest(&request).to_vec(),
                        refusal,
                    ));
                    results.push(None);
                    continue;
                }
                Ok(Outcome::Repeat(frame)) => Ok(Handled::repeat(header.sender, frame)),
                Ok(Outcome::Decided(decision)) => match self.seal_decision(&decision) {
                    Err(e) => Err(Unserved::Draft(e)),
                    Ok((handled, sent)) => {
                        let events = Recorded::attach(decision.events, sent);
                        match self.core.append(&mut group, events, Some(&request)) {
                            Ok(()) => Ok(handled),
                            Err(e) => {
                                failure = Some(e);
                                break;
                            }
                        }
                    }
                },
            };
            results.push(Some(result));
        }
        let mut ahead = None;
        let committed = match failure {
            Some(e) => {
                drop(group);
                Err(e)
            }
            None => match self.core.flush(&mut group) {
                Err(e) => {
                    drop(group);
                    Err(e)
                }
                // The next frames are opened on the pool while this thread commits: the
                // state is this batch's, and nothing of it is answered before the commit.
                Ok(()) => {
                    let (core, rate) = (&self.core, &mut self.rate);
                    let (committed, opened_ahead) = crate::runtime::overlap(
                        || group.commit(),
                        move || {
                            let frames = next();
                            let opened =
                                (!frames.is_empty()).then(|| open_batch(core, rate, &frames, now));
                            Batch { frames, opened }
                        },
                    );
                    ahead = Some(opened_ahead).filter(|batch| !batch.frames.is_empty());
                    committed
                }
            },
        };
        if let Err(e) = committed {
            // A storage fault or a broken invariant (section 5): nothing was written. The
            // frames opened ahead were opened against a state the node now rebuilds from
            // its log: they are opened again when served.
            tracing::error!(error = %e, batch = frames.len(), "a batch was not committed; the node reloads its log");
            let down = self.availability.fault(e, now);
            let ahead = ahead.map(|batch| Batch::new(batch.frames));
            return (self.unavailable_each(frames, &down.reason), ahead);
        }
        self.core.committed();
        let signed = crate::runtime::parallel_map(&refusals, |(_, header, digest, refusal)| {
            self.refuse(header, digest, refusal)
        });
        for ((index, ..), handled) in refusals.iter().zip(signed) {
            if let Some(slot) = results.get_mut(*index) {
                *slot = Some(handled);
            }
        }
        let served = frames
            .into_iter()
            .zip(results)
            .map(|(frame, r)| (frame, r.unwrap_or_else(|| Ok(Handled::default()))))
            .collect();
        (served, ahead)
    }

    /// [`Driver::handle_batch`] with each failure in the node's own error type (what the
    /// nodes' `handle_batch` returns).
    pub fn handle_batch_as<E: From<Unserved>>(
        &mut self,
        frames: &[&[u8]],
        now: UnixSecs,
    ) -> Vec<Result<Handled, E>> {
        self.handle_batch(frames, now)
            .into_iter()
            .map(|r| r.map_err(E::from))
            .collect()
    }

    /// One frame, as a batch of one ([`Driver::handle_batch_as`]).
    pub fn handle_as<E: From<Unserved>>(
        &mut self,
        bytes: &[u8],
        now: UnixSecs,
    ) -> Result<Handled, E> {
        // `handle_batch` gives one result per frame; the fallback is never taken.
        self.handle_batch_as(&[bytes], now)
            .pop()
            .unwrap_or_else(|| {
                Err(E::from(Unserved::Unavailable(Unavailable {
                    reason: "no result for the frame".to_owned(),
                    reply: None,
                })))
            })
    }

    /// Seals the decision's reply and other frames: what is sent, typed, and the frames
    /// stored in its events (ADR 0006). A decision without events (a read) is sealed the
    /// same way and stores nothing.
    ///
    /// A decision with more than one signed frame has them signed and sealed on every core
    /// (ADR 0013): the merchant's sale signs its reply and its report to the broker, the
    /// broker's 6.2 authorization its answers to the merchant and the customer, and this is
    /// the serial part of a batch (each decision is sealed before the next is decided).
    fn seal_decision(
        &self,
        decision: &Decision<C::Kind>,
    ) -> Result<(Handled, Vec<SentFrame>), DraftError> {
        let drafts: Vec<&Draft> = decision.reply.iter().chain(&decision.deliveries).collect();
        let signed = drafts.iter().filter(|draft| !draft.unsigned).count();
        let sent = if signed > 1 {
            crate::runtime::parallel_map(&drafts, |draft| self.seal(draft))
        } else {
            drafts.iter().map(|draft| self.seal(draft)).collect()
        }
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        let handled = Handled::of(
            sent.iter().cloned().map(Outgoing::from),
            decision.reply.is_some(),
        );
        Ok((handled, sent))
    }

    /// The signed `Error` answering the verified request with `header` and `digest`, in
    /// the node's own suite (protocol.md section 3). Not stored: a refusal changes
    /// nothing, so a repeat is decided again.
    fn refuse(
        &self,
        header: &Header,
        digest: &[u8],
        refusal: &Refusal,
    ) -> Result<Handled, Unserved> {
        let body = ErrorBody::new(
            Re::new(header, digest.to_vec()),
            refusal.code,
            refusal.message.clone(),
        );
        let me = self.core.keys().uid();
        let draft = Draft::delivery(self.core.suite(), header.tx, me, header.sender, &body);
        let sent = draft.seal(self.core.keys(), None)?;
        Ok(Handled {
            reply: Some(sent.into()),
            refusal: Some(refusal.clone()),
            ..Handled::default()
        })
    }

    /// The unsigned `Error` answering the request with `header` (protocol.md section 3: a
    /// frame that did not verify, or one over a quota, costs the node no private-key
    /// operation). Not stored.
    fn refuse_unsigned(&self, header: &Header, digest: &[u8], refusal: Refusal) -> Handled {
        let reply = unsigned_error(
            self.core.suite(),
            self.core.keys().uid(),
            header,
            digest,
            &refusal,
        );
        Handled {
            reply: reply.map(|frame| Outgoing {
                to: header.sender,
                frame,
            }),
            refusal: Some(refusal),
            ..Handled::default()
        }
    }

    /// Every frame of a batch the node could not serve, each with the unsigned
    /// `Error { Unavailable }` (section 10).
    fn unavailable_each<T: AsRef<[u8]>>(
        &self,
        frames: Vec<T>,
        reason: &str,
    ) -> Vec<(T, Result<Handled, Unserved>)> {
        let refs: Vec<&[u8]> = frames.iter().map(AsRef::as_ref).collect();
        let down = unavailable_batch(&refs, reason, self.core.suite(), self.core.keys().uid());
        frames
            .into_iter()
            .zip(down)
            .map(|(frame, down)| (frame, Err(down.into())))
            .collect()
    }
}

/// Steps 0 and 1 of a batch (see the module doc): the rate and the caps from each frame's
/// header, then decoding and [`Core::open`] on the pool, against `core` as it is.
fn open_batch<C: Core, T: AsRef<[u8]>>(
    core: &C,
    rate: &mut RateLimiter,
    frames: &[T],
    now: UnixSecs,
) -> Vec<Opening<C::Request>> {
    // Cheap checks first (section 10): a sender over its rate is refused from the header
    // alone, before any private-key operation.
    let admitted: Vec<Admission> = frames
        .iter()
        .map(|frame| {
            let bytes = frame.as_ref();
            match Frame::header_of(bytes) {
                Ok(header)
                    if header.suite == core.suite()
                        && (!rate.admit(header.sender, core.sender(&header.sender), now)
                            || core.admits(&header, now).is_err()) =>
                {
                    Admission::OverQuota(header)
                }
                _ => Admission::Open(bytes),
            }
        })
        .collect();
    crate::runtime::parallel_map(&admitted, |admission| match admission {
        Admission::OverQuota(header) => Ok(Err((*header, too_many_requests()))),
        Admission::Open(bytes) => {
            let frame = Frame::decode(bytes).map_err(Refusal::from)?;
            Ok(core.open(&frame).map_err(|r| (frame.header, r)))
        }
    })
}
