//! The node actor and the gateway (architecture.md "Each node: a sans-IO core inside an
//! actor shell"; protocol.md sections 3, 6 and 7).
//!
//! # Shape
//!
//! - [`NodeActor`] (actix) owns the node (core state + log + keys) and a queue. Requests
//!   ([`Submit`]) and operator calls ([`Call`]) queue up in arrival order. Whenever the node
//!   is idle, the actor moves it, with every frame waiting in the queue, to tokio's blocking
//!   pool, where [`ServeNode::serve_batch`] runs the batch: the frames are opened in
//!   parallel (the crypto pool: RSA unwrap and verifies), then decided one after another,
//!   sealed and folded into the state inside one redb write transaction, and committed once
//!   (group commit). The node comes back with one [`Served`] per frame and only then are the
//!   replies released. While a batch is in flight the next requests wait in the queue and
//!   form the next batch, so the batch size follows the load. While its commit waits for
//!   the disk, the node takes the frames at the head of the queue (up to a [`Call`]) and
//!   opens them on the crypto pool (`crate::node::Driver::serve`): the next batch comes
//!   back with its verifications done, and runs before anything else queued.
//! - No actor thread ever does an RSA private-key operation or waits for a disk commit:
//!   both happen on the blocking pool, while the actor keeps accepting requests.
//! - The node is *moved*, never shared: one batch at a time, and the decisions inside a batch
//!   are serialized against the state including the previous ones (two requests spending
//!   one scrip can never both succeed).
//! - If a commit fails, the node rebuilds its state from its log and answers none of the
//!   batch (no reply at all; the requesters time out and retry with the same bodies, which
//!   section 7 makes safe). If the node panics, the actor stops: the gateway then answers
//!   nothing and the process must be restarted, which replays the log.
//!
//! A separate ledger actor was considered: it would let the node decide batch N+1 while batch
//! N commits, but the frames a decision sends are signed and stored inside its events (ADR
//! 0006), and redb takes one write transaction at a time, so the decide–seal–append chain is
//! sequential per batch anyway. The group commit is therefore done by the batch step itself;
//! the log's [`crate::events::Group`] is the ledger's interface. What can overlap the commit
//! is the next batch's opening, which writes nothing: that is what the queue's head is
//! taken for.
//!
//! - [`gateway`] subscribes to the node's subject on any [`Bus`], hands each frame to the
//!   actor and, once the batch committed, publishes the deliveries to each recipient's peer
//!   subject and then answers on the request's reply subject (deliveries first, so a party
//!   holding the reply finds its deliveries already queued on its peer subject).

use std::time::{SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::bus::{Bus, BusError, Subject, Subjects};
use crate::ids::Uid;
use crate::node::{Handled, Unserved};
use crate::time::UnixSecs;

use super::observe::{self, RequestOutcome};

/// What one frame of a batch produced, ready for the bus.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// The reply to the requester; `None` when nothing may be answered (the frame could not
    /// be decoded at all, or the node failed and nothing was committed: the requester
    /// retries).
    pub reply: Option<Bytes>,
    /// One-way frames to other parties' peer subjects.
    pub deliveries: Vec<(Uid, Bytes)>,
    /// What became of the request, for the gateway's log line and metrics
    /// ([`observe::answered`]).
    pub outcome: RequestOutcome,
}

/// A node the shell can run: a sans-IO core with its log (see the module doc).
pub trait ServeNode: Send + Unpin + 'static {
    /// A frame verified by the node (its core's request), what a batch opened ahead holds.
    type Request: Send + Unpin;

    /// Serves `batch`, received together at `now` (unix seconds), as one group commit:
    /// each frame with its [`Served`], in order, returned only after the commit is
    /// durable. While the commit runs, a node may call `next` (once) for the frames queued
    /// meanwhile and open them ahead (`crate::node::Driver::serve`); it returns them as the
    /// next batch, which the shell serves before anything else.
    fn serve_batch(
        &mut self,
        batch: Batched<Self::Request>,
        now: UnixSecs,
        next: Next,
    ) -> ServedBatch<Self::Request>;
}

/// A frame waiting in the node's queue and where its [`Served`] goes (dropped without a
/// value if the node failed).
#[derive(Debug)]
pub struct Pending {
    /// The frame as received.
    pub frame: Bytes,
    done: oneshot::Sender<Served>,
}

impl AsRef<[u8]> for Pending {
    fn as_ref(&self) -> &[u8] {
        &self.frame
    }
}

/// A batch of queued frames, what [`NodeActor`] runs on the blocking pool: opened ahead
/// by the node, or not yet.
pub type Batched<R> = crate::node::Batch<Pending, R>;

/// What a node's batch gives back: each frame with its result, and the next batch if it
/// took one ahead.
pub type ServedBatch<R> = (Vec<(Pending, Served)>, Option<Batched<R>>);

/// Takes the frames at the head of the node's queue, for a node to open ahead during its
/// commit ([`ServeNode::serve_batch`]).
pub type Next = Box<dyn FnOnce() -> Vec<Pending> + Send>;

/// The clock the shell reads (the cores read none).
pub type Clock = fn() -> UnixSecs;

/// The system clock (the epoch if the clock is before 1970).
#[must_use]
pub fn system_clock() -> UnixSecs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(UnixSecs::EPOCH, |d| UnixSecs::new(d.as_secs()))
}

/// A request frame for the node; `done` gets its [`Served`] after the commit (dropped
/// without a value if the node failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Submit {
    /// The frame as received.
    pub frame: Bytes,
    /// Where the result goes.
    pub done: oneshot::Sender<Served>,
}

/// An operator call run on the node between batches, on the blocking pool (bank operator
/// API, timers such as the broker's `expire`, inspection in tests).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Call<N>(pub CallFn<N>);

/// An operator call: the node and the shell's clock reading.
pub type CallFn<N> = Box<dyn FnOnce(&mut N, UnixSecs) + Send>;

/// Stops the actor once the queue is empty and hands the node back (to close its file,
/// or, in tests, to inspect and replay it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop<N>(pub oneshot::Sender<N>);

enum Queued<N> {
    Frame(Bytes, oneshot::Sender<Served>),
    Call(CallFn<N>),
}

/// The node's queue: the actor pushes, and the node takes the head during a commit
/// ([`Next`]).
type Queue<N> = std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Queued<N>>>>;

/// The queue, locked. Nothing panics while holding it, so a poisoned lock still holds a
/// whole queue.
fn locked<N>(queue: &Queue<N>) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Queued<N>>> {
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Up to `max` frames from the head of `queue`, stopping at the first [`Call`] (which
/// runs after them, as it was queued).
fn take_frames<N>(queue: &Queue<N>, max: usize) -> Vec<Pending> {
    let mut queue = locked(queue);
    let mut frames = Vec::new();
    while frames.len() < max {
        match queue.pop_front() {
            Some(Queued::Frame(frame, done)) => frames.push(Pending { frame, done }),
            Some(call @ Queued::Call(_)) => {
                queue.push_front(call);
                break;
            }
            None => break,
        }
    }
    frames
}

/// The node actor (see the module doc).
pub struct NodeActor<N: ServeNode> {
    /// `None` while a batch or call runs on the blocking pool.
    node: Option<N>,
    queue: Queue<N>,
    /// A batch the node took from the queue and opened during its last commit: served next.
    ahead: Option<Batched<N::Request>>,
    stop: Option<oneshot::Sender<N>>,
    max_batch: usize,
    clock: Clock,
}

impl<N: ServeNode> std::fmt::Debug for NodeActor<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeActor")
            .field("idle", &self.node.is_some())
            .field("queued", &locked(&self.queue).len())
            .field("ahead", &self.ahead)
            .finish_non_exhaustive()
    }
}

/// The most frames in one batch: bounds one write transaction and the latency of its
/// first request.
pub const MAX_BATCH: usize = 256;

/// Starts `node` in a [`NodeActor`] on the current actix arbiter, reading `clock`.
pub fn start<N: ServeNode>(node: N, clock: Clock) -> Addr<NodeActor<N>> {
    NodeActor {
        node: Some(node),
        queue: Queue::default(),
        ahead: None,
        stop: None,
        max_batch: MAX_BATCH,
        clock,
    }
    .start()
}

impl<N: ServeNode> Actor for NodeActor<N> {
    type Context = Context<Self>;
}

impl<N: ServeNode> Handler<Submit> for NodeActor<N> {
    type Result = ();

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) {
        locked(&self.queue).push_back(Queued::Frame(msg.frame, msg.done));
        self.pump(ctx);
    }
}

impl<N: ServeNode> Handler<Call<N>> for NodeActor<N> {
    type Result = ();

    fn handle(&mut self, msg: Call<N>, ctx: &mut Context<Self>) {
        locked(&self.queue).push_back(Queued::Call(msg.0));
        self.pump(ctx);
    }
}

impl<N: ServeNode> Handler<Stop<N>> for NodeActor<N> {
    type Result = ();

    fn handle(&mut self, msg: Stop<N>, ctx: &mut Context<Self>) {
        self.stop = Some(msg.0);
        self.pump(ctx);
    }
}

impl<N: ServeNode> NodeActor<N> {
    /// If the node is idle: runs the batch it opened ahead, else the next call or the next
    /// batch of frames, on the blocking pool; with nothing queued and a [`Stop`] pending,
    /// hands the node back.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let Some(mut node) = self.node.take() else {
            return; // busy: the queue forms the next batch
        };
        let now = (self.clock)();
        if let Some(batch) = self.ahead.take() {
            self.run_batch(node, batch, now, ctx);
            return;
        }
        let head = locked(&self.queue).pop_front();
        match head {
            None => {
                if let Some(stop) = self.stop.take() {
                    // The receiver may be gone; the node then drops, closing its file.
                    let _ = stop.send(node);
                    ctx.stop();
                } else {
                    self.node = Some(node);
                }
            }
            Some(Queued::Call(call)) => {
                let job = tokio::task::spawn_blocking(move || {
                    call(&mut node, now);
                    node
                });
                ctx.spawn(job.into_actor(self).map(|joined, act, ctx| match joined {
                    Ok(node) => {
                        act.node = Some(node);
                        act.pump(ctx);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the node panicked in a call; stopping");
                        ctx.stop();
                    }
                }));
            }
            Some(Queued::Frame(frame, done)) => {
                let mut frames = vec![Pending { frame, done }];
                frames.extend(take_frames(&self.queue, self.max_batch - 1));
                self.run_batch(node, crate::node::Batch::new(frames), now, ctx);
            }
        }
    }

    /// Runs `batch` on the blocking pool; once it is committed, releases its results,
    /// keeps the batch the node opened ahead, and pumps again.
    fn run_batch(
        &mut self,
        mut node: N,
        batch: Batched<N::Request>,
        now: UnixSecs,
        ctx: &mut Context<Self>,
    ) {
        let queue = self.queue.clone();
        let max = self.max_batch;
        let next: Next = Box::new(move || take_frames(&queue, max));
        let job = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let size = batch.frames().len();
            let served = node.serve_batch(batch, now, next);
            observe::batch(size, started.elapsed());
            (node, served)
        });
        ctx.spawn(
            job.into_actor(self)
                .map(move |joined, act, ctx| match joined {
                    Ok((node, (served, ahead))) => {
                        act.node = Some(node);
                        act.ahead = ahead;
                        for (pending, served) in served {
                            // The requester may have given up; nothing to do then.
                            let _ = pending.done.send(served);
                        }
                        act.pump(ctx);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the node panicked in a batch; stopping");
                        ctx.stop();
                    }
                }),
        );
    }
}

/// The span every log line about one frame is recorded in (architecture.md "Each node":
/// every line of a transaction carries its tx id): `frame{tx=… label=… sender=…}` read
/// from the frame's header, or `frame{tx="undecodable"}` when the bytes do not start with
/// a header. Only header fields, which travel in the clear (protocol.md section 3), never a
/// body; only the header is decoded, so a span costs a flood of frames little.
#[must_use]
pub fn frame_span(bytes: &[u8]) -> tracing::Span {
    match crate::wire::Frame::header_of(bytes) {
        Ok(header) => tracing::info_span!(
            "frame",
            tx = %header.tx,
            label = %header.label,
            sender = %header.sender,
        ),
        Err(_) => tracing::info_span!("frame", tx = "undecodable", size = bytes.len()),
    }
}

/// What the shell sends for one result of its node's batch step
/// ([`crate::node::Driver::handle_batch`]): the reply and the deliveries of a handled frame
/// (the node's own requests, [`Handled::requests`], are its reporter's); for a storage
/// fault the unsigned `Error { Unavailable }` ([`unavailable`]); for a decision that could
/// not be sealed nothing, logged under the frame's span (nothing was written, the requester
/// repeats).
#[must_use]
pub fn served(result: Result<Handled, Unserved>, frame: &[u8]) -> Served {
    match result {
        Ok(handled) => Served {
            reply: handled.reply.map(|r| Bytes::from(r.frame)),
            deliveries: handled
                .deliveries
                .into_iter()
                .map(|d| (d.to, Bytes::from(d.frame)))
                .collect(),
            outcome: handled.refusal.map_or(RequestOutcome::Answered, |r| {
                RequestOutcome::Refused(r.code)
            }),
        },
        Err(Unserved::Unavailable(down)) => unavailable(frame, down),
        Err(e @ Unserved::Draft(_)) => {
            frame_span(frame).in_scope(|| {
                tracing::warn!(error = %e, "request not served");
            });
            Served {
                outcome: RequestOutcome::Unanswered,
                ..Served::default()
            }
        }
    }
}

/// [`served`] for each result of a node's batch step ([`crate::node::Driver::serve`]),
/// with the batch it opened ahead.
#[must_use]
pub fn served_each<R>((results, ahead): crate::node::BatchResults<Pending, R>) -> ServedBatch<R> {
    let served = results
        .into_iter()
        .map(|(pending, result)| {
            let served = served(result, &pending.frame);
            (pending, served)
        })
        .collect();
    (served, ahead)
}

/// What the shell sends for a frame its node could not serve because it cannot write its
/// log (protocol.md section 10): the unsigned `Error { Unavailable }` the node built, with
/// the fault logged (never sent) under the frame's span.
#[must_use]
pub fn unavailable(frame: &[u8], down: crate::node::Unavailable) -> Served {
    frame_span(frame).in_scope(|| {
        tracing::warn!(error = %down.reason, "the node cannot write its log; answered Unavailable");
    });
    Served {
        reply: down.reply.map(Bytes::from),
        deliveries: Vec::new(),
        outcome: RequestOutcome::Unavailable,
    }
}

/// Connects the node actor `addr` to `bus`: subscribes to `subject` (when this returns the
/// subscription is active) and serves every message on it until the returned task is
/// aborted or the bus closes: a request is answered on its reply subject, a one-way
/// delivery (e.g. the broker's 6.5 step 2 on a merchant's peer subject) is handed to the
/// node the same way and not answered. The deliveries a decision makes go to
/// `subjects.peer(recipient)`. [`gateway_until`] with a stop that never comes and no
/// [`Screen`].
///
/// # Errors
/// As [`Bus::subscribe`].
pub async fn gateway<B: Bus, N: ServeNode>(
    bus: B,
    subject: &Subject,
    subjects: Subjects,
    addr: Addr<NodeActor<N>>,
) -> Result<tokio::task::JoinHandle<()>, BusError> {
    gateway_until(
        bus,
        subject,
        subjects,
        addr,
        std::future::pending(),
        Screen::default(),
    )
    .await
}

/// What a [`Prepare`] step decides about a frame before the node gets it.
pub enum Admission {
    /// Hand the frame to the node now (a frame from a known peer: it never waits behind
    /// anything, protocol.md section 10).
    Serve,
    /// Hand the frame to the node once this completes with `true`, and drop it on `false`
    /// (the merchant daemon's key lookup, protocol.md section 10). The gateway takes the
    /// next frames meanwhile; a [`Call`] the future sends on the actor runs before the frame.
    After(futures::future::BoxFuture<'static, bool>),
    /// Drop the frame: no answer, nothing processed.
    Drop,
    /// Answer the request with these bytes, an unsigned `Error` (protocol.md section 3:
    /// it costs no private-key operation), and do not hand the frame to the node: a sender
    /// the broker does not know (`UnknownPeer`), a full queue of key lookups
    /// (`TooManyRequests`). A frame with no reply subject is dropped.
    Refuse(Bytes),
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Admission::Serve => "Serve",
            Admission::After(_) => "After",
            Admission::Drop => "Drop",
            Admission::Refuse(_) => "Refuse",
        })
    }
}

/// What a gateway does with a frame before the node gets it, in arrival order and without
/// waiting: it says whether and when the frame goes on ([`Admission`]); it may send the
/// node a [`Call`] on the actor, which the node then runs before the frame (a merchant
/// daemon learns an unknown sender's key from the broker by 6.0b and hands it to its node).
pub type Prepare<N> =
    std::sync::Arc<dyn Fn(&Addr<NodeActor<N>>, &Bytes) -> Admission + Send + Sync>;

/// How a gateway screens each frame before any cryptography (protocol.md sections 3 and
/// 10). The default screens nothing: every frame goes to the node, every request is
/// answered on its reply subject (an in-process bus, where every party shares one inbox
/// namespace and nobody is hostile).
pub struct Screen<N: ServeNode> {
    /// Answer a request only if its reply subject is under its sender's inbox prefix,
    /// `_INBOX.<sender uid>.` (protocol.md section 3, appendix B): any other request is
    /// dropped before the node sees it, so a forged reply subject cannot turn the node's
    /// answers onto a third party. A frame with no reply subject is not affected. On for a
    /// node on a shared network (the daemons).
    pub bound_replies: bool,
    /// The [`Prepare`] step, if any.
    pub prepare: Option<Prepare<N>>,
    /// Counts what the screen dropped (shared with whoever reports it).
    pub dropped: std::sync::Arc<Dropped>,
}

impl<N: ServeNode> Default for Screen<N> {
    fn default() -> Self {
        Screen {
            bound_replies: false,
            prepare: None,
            dropped: std::sync::Arc::default(),
        }
    }
}

impl<N: ServeNode> std::fmt::Debug for Screen<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("bound_replies", &self.bound_replies)
            .field("prepare", &self.prepare.is_some())
            .field("dropped", &self.dropped)
            .finish()
    }
}

/// The frames a gateway's [`Screen`] dropped, by reason.
#[derive(Debug, Default)]
pub struct Dropped {
    /// Requests whose reply subject was not under their sender's inbox.
    pub foreign_reply: std::sync::atomic::AtomicU64,
    /// Frames the [`Prepare`] step dropped (e.g. the key lookups' queue was full).
    pub by_prepare: std::sync::atomic::AtomicU64,
}

impl Dropped {
    /// Logs the counts (a daemon's at its stop), if any frame was dropped.
    pub fn report(&self) {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let (foreign_reply, by_prepare) = (load(&self.foreign_reply), load(&self.by_prepare));
        if foreign_reply + by_prepare > 0 {
            tracing::info!(
                foreign_reply,
                by_prepare,
                "frames the gateway dropped unread: a reply subject not the sender's inbox, or refused before the node (protocol.md sections 3 and 10)"
            );
        }
    }

    /// Counts one more in `counter`; returns the new count.
    fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }
}

/// Whether `reply` is a subject under the inbox prefix of the sender `frame` names
/// (protocol.md section 3): `_INBOX.<sender uid>.` and at least one token more. Bytes
/// with no readable header name no sender and so have no inbox.
#[must_use]
pub fn reply_is_senders(reply: &Subject, frame: &[u8]) -> bool {
    let Ok(header) = crate::wire::Frame::header_of(frame) else {
        return false;
    };
    let inbox = crate::bus::InboxPrefix::for_uid(&header.sender);
    reply
        .as_str()
        .strip_prefix(inbox.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|token| !token.is_empty())
}

/// [`gateway`] with a graceful stop (a daemon's SIGTERM): when `stop` completes the task
/// drops the subscription (unsubscribes: no new request is taken), then waits until every
/// frame already handed to the node has been answered (its deliveries and reply
/// published), and ends. Aborting the task instead stops at once; the answers already
/// under way are still sent (each runs in a task of its own). `screen` decides, for each
/// frame in arrival order and without waiting, whether it goes to the node now, later or
/// never ([`Screen`]).
///
/// # Errors
/// As [`Bus::subscribe`].
pub async fn gateway_until<B: Bus, N: ServeNode>(
    bus: B,
    subject: &Subject,
    subjects: Subjects,
    addr: Addr<NodeActor<N>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    screen: Screen<N>,
) -> Result<tokio::task::JoinHandle<()>, BusError> {
    let mut subscription = bus.subscribe(subject).await?;
    Ok(tokio::spawn(async move {
        // Each answer task holds a clone of `in_flight`; `drained` yields `None` once all
        // of them (and the gateway's own) are dropped.
        let (in_flight, mut drained) = tokio::sync::mpsc::channel::<()>(1);
        tokio::pin!(stop);
        loop {
            let incoming = tokio::select! {
                biased;
                () = &mut stop => break,
                next = subscription.next() => match next {
                    Some(incoming) => incoming,
                    None => break,
                },
            };
            let arrived = Arrived::now(incoming.payload());
            let span = frame_span(incoming.payload());
            if screen.bound_replies
                && let Some(reply) = incoming.reply()
                && !reply_is_senders(reply, incoming.payload())
            {
                let dropped = Dropped::count(&screen.dropped.foreign_reply);
                observe::screened("foreign_reply");
                span.in_scope(|| {
                    tracing::debug!(
                        reply = %reply,
                        dropped,
                        "dropped a request whose reply subject is not its sender's inbox (protocol.md section 3)"
                    );
                });
                continue;
            }
            let admission = screen.prepare.as_ref().map_or(Admission::Serve, |prepare| {
                span.in_scope(|| prepare(&addr, incoming.payload()))
            });
            let guard = in_flight.clone();
            let (bus, subjects, addr) = (bus.clone(), subjects.clone(), addr.clone());
            match admission {
                Admission::Serve => {
                    // Handed over here, in arrival order; only the answer waits in a task.
                    let result = submit(&addr, &incoming);
                    tokio::spawn(
                        answer(bus, subjects, incoming, arrived, result, guard).instrument(span),
                    );
                }
                Admission::After(ready) => {
                    tokio::spawn(
                        async move {
                            if ready.await {
                                let result = submit(&addr, &incoming);
                                answer(bus, subjects, incoming, arrived, result, guard).await;
                            } else {
                                tracing::debug!("dropped by the gateway's prepare step");
                            }
                        }
                        .instrument(span),
                    );
                }
                Admission::Refuse(refusal) => {
                    let dropped = Dropped::count(&screen.dropped.by_prepare);
                    observe::screened("prepare");
                    span.in_scope(|| {
                        tracing::debug!(dropped, "refused unsigned by the gateway's prepare step");
                    });
                    if incoming.reply().is_some() {
                        tokio::spawn(async move {
                            if let Err(e) = incoming.respond(refusal).await {
                                tracing::debug!(error = %e, "the refusal was not sent");
                            }
                            drop(guard);
                        });
                    }
                }
                Admission::Drop => {
                    let dropped = Dropped::count(&screen.dropped.by_prepare);
                    observe::screened("prepare");
                    span.in_scope(|| {
                        tracing::debug!(dropped, "dropped by the gateway's prepare step");
                    });
                }
            }
        }
        drop(subscription);
        drop(in_flight);
        let _ = drained.recv().await;
    }))
}

/// Hands `incoming` to the node actor; its [`Served`] arrives on the receiver.
fn submit<B: Bus, N: ServeNode>(
    addr: &Addr<NodeActor<N>>,
    incoming: &crate::bus::Incoming<B>,
) -> oneshot::Receiver<Served> {
    let (done, result) = oneshot::channel();
    addr.do_send(Submit {
        frame: incoming.payload().clone(),
        done,
    });
    result
}

/// When and as what a frame arrived at the gateway: the start of its request's latency
/// and its metrics label ([`observe::answered`]).
struct Arrived {
    at: std::time::Instant,
    label: &'static str,
}

impl Arrived {
    fn now(frame: &[u8]) -> Arrived {
        Arrived {
            at: std::time::Instant::now(),
            label: observe::label_of(frame),
        }
    }
}

/// Publishes what the node made of `incoming` once it committed: the deliveries to their
/// recipients' peer subjects, then the reply on the request's reply subject, then records
/// the request's outcome and latency since `arrived` (its `info` line and metrics).
/// `_guard` keeps the gateway's graceful stop waiting until this is done.
async fn answer<B: Bus>(
    bus: B,
    subjects: Subjects,
    incoming: crate::bus::Incoming<B>,
    arrived: Arrived,
    result: oneshot::Receiver<Served>,
    _guard: tokio::sync::mpsc::Sender<()>,
) {
    let Ok(served) = result.await else {
        tracing::warn!("the node answered nothing (it failed or stopped)");
        return;
    };
    for (to, frame) in served.deliveries {
        if let Err(e) = bus.publish(&subjects.peer(&to), frame).await {
            tracing::warn!(error = %e, recipient = %to, "a delivery could not be published");
        }
    }
    // A delivery (no reply subject) is handled the same way; its answer, if the node makes
    // one, is not sent back on the bus.
    match served.reply {
        Some(reply) if incoming.reply().is_some() => {
            if let Err(e) = incoming.respond(reply).await {
                tracing::warn!(error = %e, "a reply could not be sent");
            }
        }
        _ => tracing::debug!("handled without a reply"),
    }
    observe::answered(arrived.label, served.outcome, arrived.at.elapsed());
}

#[cfg(test)]
mod tests {
    //! The shell with a stand-in node: batching while a batch is in flight, order of
    //! results, calls between batches, stop, and the gateway's order of deliveries and
    //! reply. No timing: the stand-in's first batch blocks until the test releases it.
    #![allow(clippy::unwrap_used)]

    use std::sync::mpsc;

    use futures::FutureExt;

    use super::*;
    use crate::bus::MemoryBus;

    /// Echoes each frame reversed; delivers a copy to `peer`; records batch sizes, calls,
    /// and how many frames it took ahead after each batch (as a node does during its
    /// commit).
    struct Echo {
        batches: Vec<usize>,
        calls: Vec<usize>,
        ahead: Vec<usize>,
        /// Blocks the first batch until a message arrives.
        hold: Option<(oneshot::Sender<()>, mpsc::Receiver<()>)>,
        peer: Uid,
    }

    impl ServeNode for Echo {
        type Request = ();

        fn serve_batch(
            &mut self,
            batch: Batched<()>,
            now: UnixSecs,
            next: Next,
        ) -> ServedBatch<()> {
            assert_eq!(now, UnixSecs::new(42));
            if let Some((started, release)) = self.hold.take() {
                started.send(()).unwrap();
                release.recv().unwrap();
            }
            let frames = batch.into_frames();
            self.batches.push(frames.len());
            let served = frames
                .into_iter()
                .map(|pending| {
                    let served = Served {
                        reply: Some(pending.frame.iter().rev().copied().collect()),
                        deliveries: vec![(self.peer, pending.frame.clone())],
                        ..Served::default()
                    };
                    (pending, served)
                })
                .collect();
            let ahead = next();
            self.ahead.push(ahead.len());
            (served, (!ahead.is_empty()).then(|| Batched::new(ahead)))
        }
    }

    fn clock() -> UnixSecs {
        UnixSecs::new(42)
    }

    fn echo() -> (Echo, oneshot::Receiver<()>, mpsc::Sender<()>) {
        let (started_tx, started) = oneshot::channel();
        let (release, release_rx) = mpsc::channel();
        (
            Echo {
                batches: Vec::new(),
                calls: Vec::new(),
                ahead: Vec::new(),
                hold: Some((started_tx, release_rx)),
                peer: Uid::random(),
            },
            started,
            release,
        )
    }

    async fn submit(addr: &Addr<NodeActor<Echo>>, frame: &[u8]) -> oneshot::Receiver<Served> {
        let (done, result) = oneshot::channel();
        addr.send(Submit {
            frame: Bytes::copy_from_slice(frame),
            done,
        })
        .await
        .unwrap();
        result
    }

    #[actix_rt::test]
    async fn requests_arriving_during_a_batch_form_the_next_batch_in_order() {
        let (node, started, release) = echo();
        let addr = start(node, clock);
        let first = submit(&addr, b"a").await;
        started.await.unwrap();
        // The first batch is running: these queue up.
        let mut waiting = Vec::new();
        for i in 0..9u8 {
            waiting.push((i, submit(&addr, &[b'b', i]).await));
        }
        // A call splits the queue: frames after it go in a later batch.
        let (called, call_done) = oneshot::channel();
        addr.send(Call(Box::new(move |n: &mut Echo, now| {
            n.calls.push(n.batches.len());
            called.send(now).unwrap();
        })))
        .await
        .unwrap();
        let last = submit(&addr, b"z").await;
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().reply.unwrap().as_ref(), b"a");
        for (i, result) in waiting {
            assert_eq!(result.await.unwrap().reply.unwrap().as_ref(), [i, b'b']);
        }
        assert_eq!(call_done.await.unwrap(), UnixSecs::new(42));
        assert_eq!(last.await.unwrap().reply.unwrap().as_ref(), b"z");
        let (tx, rx) = oneshot::channel();
        addr.send(Stop(tx)).await.unwrap();
        let node = rx.await.unwrap();
        assert_eq!(node.batches, [1, 9, 1]);
        assert_eq!(
            node.ahead,
            [9, 0, 0],
            "the first batch took the nine frames ahead, up to the call, and nothing after it"
        );
        assert_eq!(
            node.calls,
            [2],
            "the call ran between the second and third batch"
        );
    }

    #[actix_rt::test]
    async fn the_gateway_publishes_deliveries_before_it_replies() {
        let (mut node, _, _) = echo();
        node.hold = None;
        let peer = node.peer;
        let bus = MemoryBus::new();
        let subjects = Subjects::default();
        let addr = start(node, clock);
        let gateway = gateway(bus.clone(), &subjects.broker(), subjects.clone(), addr)
            .await
            .unwrap();
        let mut deliveries = bus.subscribe(&subjects.peer(&peer)).await.unwrap();
        let reply = bus
            .request(
                &subjects.broker(),
                Bytes::from_static(b"abc"),
                std::time::Duration::from_secs(60),
            )
            .await
            .unwrap();
        assert_eq!(reply.as_ref(), b"cba");
        // Already queued when the reply arrived.
        let delivered = deliveries.next().now_or_never().unwrap().unwrap();
        assert_eq!(delivered.payload().as_ref(), b"abc");
        gateway.abort();
    }

    /// A daemon's graceful stop: once stopped, the gateway takes no new request (nobody
    /// listens on the subject any more), and the request it took while the node was busy
    /// is still answered before the gateway ends.
    #[actix_rt::test]
    async fn a_stopped_gateway_answers_what_it_took_and_takes_nothing_more() {
        let (node, started, release) = echo();
        let bus = MemoryBus::new();
        let subjects = Subjects::default();
        let addr = start(node, clock);
        let (stop, stopped) = oneshot::channel::<()>();
        let gateway = gateway_until(
            bus.clone(),
            &subjects.broker(),
            subjects.clone(),
            addr.clone(),
            async move {
                let _ = stopped.await;
            },
            Screen::default(),
        )
        .await
        .unwrap();
        let in_flight = {
            let bus = bus.clone();
            let subject = subjects.broker();
            tokio::spawn(async move {
                bus.request(
                    &subject,
                    Bytes::from_static(b"abc"),
                    std::time::Duration::from_secs(60),
                )
                .await
            })
        };
        started.await.unwrap();
        stop.send(()).unwrap();
        // The gateway waits for the answer of the frame it took.
        let mut gateway = gateway;
        assert!((&mut gateway).now_or_never().is_none());
        release.send(()).unwrap();
        assert_eq!(in_flight.await.unwrap().unwrap().as_ref(), b"cba");
        gateway.await.unwrap();
        let refused = bus
            .request(
                &subjects.broker(),
                Bytes::from_static(b"late"),
                std::time::Duration::from_secs(60),
            )
            .await;
        assert!(
            matches!(refused, Err(BusError::NoResponders)),
            "{refused:?}"
        );
        let (tx, rx) = oneshot::channel();
        addr.send(Stop(tx)).await.unwrap();
        assert_eq!(rx.await.unwrap().batches, [1]);
    }

    /// The `Prepare` step runs before its frame reaches the node, and a `Call` it sends
    /// runs on the node first (the merchant daemon hands its node a key this way).
    #[actix_rt::test]
    async fn a_call_sent_by_the_prepare_step_runs_before_its_frame() {
        let (mut node, _, _) = echo();
        node.hold = None;
        let bus = MemoryBus::new();
        let subjects = Subjects::default();
        let addr = start(node, clock);
        let prepare: Prepare<Echo> = std::sync::Arc::new(|addr, frame| {
            let len = frame.len();
            addr.do_send(Call(Box::new(move |n: &mut Echo, _| {
                n.calls.push(n.batches.len() * 100 + len);
            })));
            Admission::Serve
        });
        let gateway = gateway_until(
            bus.clone(),
            &subjects.broker(),
            subjects.clone(),
            addr.clone(),
            std::future::pending(),
            Screen {
                prepare: Some(prepare),
                ..Screen::default()
            },
        )
        .await
        .unwrap();
        for payload in [&b"ab"[..], b"abcd"] {
            bus.request(
                &subjects.broker(),
                Bytes::copy_from_slice(payload),
                std::time::Duration::from_secs(60),
            )
            .await
            .unwrap();
        }
        gateway.abort();
        let (tx, rx) = oneshot::channel();
        addr.send(Stop(tx)).await.unwrap();
        let node = rx.await.unwrap();
        assert_eq!(node.calls, [2, 104], "each call ran before its own frame");
        assert_eq!(node.batches, [1, 1]);
    }

    /// A frame with a header naming `sender`, for the screens that read it.
    fn frame_from(sender: Uid, tag: u8) -> Bytes {
        let header = crate::wire::Header::new(
            crate::Suite::Modern,
            crate::wire::Label::Error,
            crate::ids::TxId([tag; 16]),
            sender,
        );
        Bytes::from(
            crate::wire::Frame::new(header, Vec::new())
                .encode()
                .unwrap(),
        )
    }

    /// protocol.md section 3: with bound replies, a request is answered only on its
    /// sender's inbox. Bob's frame sent with a reply subject under alice's inbox (the
    /// bus's inboxes are alice's) is dropped unanswered and never reaches the node, and
    /// counted; alice's own request is answered.
    #[actix_rt::test]
    async fn a_request_whose_reply_subject_is_not_its_senders_inbox_is_dropped() {
        let (mut node, _, _) = echo();
        node.hold = None;
        let alice = Uid::random();
        let bob = Uid::random();
        let bus = MemoryBus::with_inbox_of(&alice);
        let subjects = Subjects::default();
        let addr = start(node, clock);
        let screen = Screen {
            bound_replies: true,
            ..Screen::default()
        };
        let dropped = screen.dropped.clone();
        let gateway = gateway_until(
            bus.clone(),
            &subjects.broker(),
            subjects.clone(),
            addr.clone(),
            std::future::pending(),
            screen,
        )
        .await
        .unwrap();
        let patience = std::time::Duration::from_millis(300);
        let forged = bus
            .request(&subjects.broker(), frame_from(bob, 1), patience)
            .await;
        assert!(matches!(forged, Err(BusError::Timeout)), "{forged:?}");
        let honest = frame_from(alice, 2);
        let answer = bus
            .request(&subjects.broker(), honest.clone(), patience * 100)
            .await
            .unwrap();
        assert_eq!(
            answer.as_ref(),
            honest.iter().rev().copied().collect::<Vec<u8>>()
        );
        // Garbage names no sender, so no inbox is its sender's.
        let garbage = bus
            .request(&subjects.broker(), Bytes::from_static(b"junk"), patience)
            .await;
        assert!(matches!(garbage, Err(BusError::Timeout)), "{garbage:?}");
        gateway.abort();
        let (tx, rx) = oneshot::channel();
        addr.send(Stop(tx)).await.unwrap();
        let node = rx.await.unwrap();
        assert_eq!(node.batches, [1], "only alice's frame reached the node");
        assert_eq!(
            dropped
                .foreign_reply
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }

    #[test]
    fn a_reply_subject_is_the_senders_only_below_its_inbox() {
        let alice = Uid::random();
        let frame = frame_from(alice, 0);
        let inbox = crate::bus::InboxPrefix::for_uid(&alice);
        assert!(reply_is_senders(&inbox.inbox(7), &frame));
        let other = crate::bus::InboxPrefix::for_uid(&Uid::random());
        assert!(!reply_is_senders(&other.inbox(7), &frame));
        // Not a prefix of a longer token, and not the bare prefix.
        let longer = Subject::from_transport(format!("{}0.1", inbox.as_str()));
        assert!(!reply_is_senders(&longer, &frame));
        let bare = Subject::from_transport(format!("{}.", inbox.as_str()));
        assert!(!reply_is_senders(&bare, &frame));
        assert!(!reply_is_senders(&inbox.inbox(7), b"junk"));
    }

    /// protocol.md section 10: a frame whose prepare step waits (a key lookup) does not
    /// hold up the frames behind it; it goes on once its wait ends, and one the step
    /// drops or answers itself never reaches the node.
    #[actix_rt::test]
    async fn a_waiting_frame_does_not_hold_up_the_frames_behind_it() {
        let (mut node, _, _) = echo();
        node.hold = None;
        let bus = MemoryBus::new();
        let subjects = Subjects::default();
        let addr = start(node, clock);
        let (release, released) = futures::channel::oneshot::channel::<bool>();
        let released = std::sync::Mutex::new(Some(released));
        let prepare: Prepare<Echo> = std::sync::Arc::new(move |_, frame| match frame.as_ref() {
            b"slow" => match released.lock().unwrap().take() {
                Some(wait) => {
                    Admission::After(Box::pin(async move { wait.await.unwrap_or(false) }))
                }
                None => Admission::Drop,
            },
            b"drop" => Admission::Drop,
            b"refuse" => Admission::Refuse(Bytes::from_static(b"refused")),
            _ => Admission::Serve,
        });
        let screen = Screen {
            prepare: Some(prepare),
            ..Screen::default()
        };
        let dropped = screen.dropped.clone();
        let gateway = gateway_until(
            bus.clone(),
            &subjects.broker(),
            subjects.clone(),
            addr.clone(),
            std::future::pending(),
            screen,
        )
        .await
        .unwrap();
        let patience = std::time::Duration::from_secs(60);
        let slow = {
            let (bus, subject) = (bus.clone(), subjects.broker());
            tokio::spawn(async move {
                bus.request(&subject, Bytes::from_static(b"slow"), patience)
                    .await
            })
        };
        tokio::task::yield_now().await;
        let fast = bus
            .request(&subjects.broker(), Bytes::from_static(b"fast"), patience)
            .await
            .unwrap();
        assert_eq!(fast.as_ref(), b"tsaf");
        assert!(!slow.is_finished(), "the slow frame still waits");
        let refused = bus
            .request(
                &subjects.broker(),
                Bytes::from_static(b"drop"),
                std::time::Duration::from_millis(200),
            )
            .await;
        assert!(matches!(refused, Err(BusError::Timeout)), "{refused:?}");
        // A refusal the step answers itself (an unsigned `Error`) never reaches the node.
        let answered = bus
            .request(&subjects.broker(), Bytes::from_static(b"refuse"), patience)
            .await
            .unwrap();
        assert_eq!(answered.as_ref(), b"refused");
        release.send(true).unwrap();
        assert_eq!(slow.await.unwrap().unwrap().as_ref(), b"wols");
        gateway.abort();
        let (tx, rx) = oneshot::channel();
        addr.send(Stop(tx)).await.unwrap();
        assert_eq!(rx.await.unwrap().batches, [1, 1]);
        assert_eq!(
            dropped
                .by_prepare
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }
}
