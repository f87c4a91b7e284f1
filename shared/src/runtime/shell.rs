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
//!   form the next batch, so the batch size follows the load.
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
//! the log's [`crate::events::Group`] is the ledger's interface.
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

/// What one frame of a batch produced, ready for the bus.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// The reply to the requester; `None` when nothing may be answered (the frame could not
    /// be decoded at all, or the node failed and nothing was committed: the requester
    /// retries).
    pub reply: Option<Bytes>,
    /// One-way frames to other parties' peer subjects.
    pub deliveries: Vec<(Uid, Bytes)>,
}

/// A node the shell can run: a sans-IO core with its log (see the module doc).
pub trait ServeNode: Send + Unpin + 'static {
    /// Handles `frames`, received together at `now` (unix seconds), as one group commit:
    /// one [`Served`] per frame, in order, returned only after the commit is durable.
    fn serve_batch(&mut self, frames: &[&[u8]], now: UnixSecs) -> Vec<Served>;
}

/// A batch of frames with their results, what [`NodeActor`] runs on the blocking pool.
pub type Batched = Vec<(Bytes, oneshot::Sender<Served>)>;

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

/// The node actor (see the module doc).
pub struct NodeActor<N: ServeNode> {
    /// `None` while a batch or call runs on the blocking pool.
    node: Option<N>,
    queue: std::collections::VecDeque<Queued<N>>,
    stop: Option<oneshot::Sender<N>>,
    max_batch: usize,
    clock: Clock,
}

impl<N: ServeNode> std::fmt::Debug for NodeActor<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeActor")
            .field("idle", &self.node.is_some())
            .field("queued", &self.queue.len())
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
        queue: std::collections::VecDeque::new(),
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
        self.queue.push_back(Queued::Frame(msg.frame, msg.done));
        self.pump(ctx);
    }
}

impl<N: ServeNode> Handler<Call<N>> for NodeActor<N> {
    type Result = ();

    fn handle(&mut self, msg: Call<N>, ctx: &mut Context<Self>) {
        self.queue.push_back(Queued::Call(msg.0));
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
    /// If the node is idle: runs the next call, or the next batch of frames, on the
    /// blocking pool; with nothing queued and a [`Stop`] pending, hands the node back.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let Some(mut node) = self.node.take() else {
            return; // busy: the queue forms the next batch
        };
        let now = (self.clock)();
        match self.queue.pop_front() {
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
                let mut batch: Batched = vec![(frame, done)];
                while batch.len() < self.max_batch {
                    match self.queue.pop_front() {
                        Some(Queued::Frame(frame, done)) => batch.push((frame, done)),
                        Some(call @ Queued::Call(_)) => {
                            self.queue.push_front(call);
                            break;
                        }
                        None => break,
                    }
                }
                let (frames, dones): (Vec<Bytes>, Vec<_>) = batch.into_iter().unzip();
                let job = tokio::task::spawn_blocking(move || {
                    let refs: Vec<&[u8]> = frames.iter().map(AsRef::as_ref).collect();
                    let served = node.serve_batch(&refs, now);
                    (node, served)
                });
                ctx.spawn(job.into_actor(self).map(move |joined, act, ctx| match joined {
                    Ok((node, served)) => {
                        act.node = Some(node);
                        for (done, served) in dones.into_iter().zip(served) {
                            // The requester may have given up; nothing to do then.
                            let _ = done.send(served);
                        }
                        act.pump(ctx);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the node panicked in a batch; stopping");
                        ctx.stop();
                    }
                }));
            }
        }
    }
}

/// The span every log line about one frame is recorded in (architecture.md "Each node":
/// every line of a transaction carries its tx id): `frame{tx=… label=… sender=…}` read
/// from the frame's header, or `frame{tx="undecodable"}` when the bytes are not a frame.
/// Only header fields, which travel in the clear (protocol.md section 3), never a body.
#[must_use]
pub fn frame_span(bytes: &[u8]) -> tracing::Span {
    match crate::wire::Frame::decode(bytes) {
        Ok(frame) => tracing::info_span!(
            "frame",
            tx = %frame.header.tx,
            label = %frame.header.label,
            sender = %frame.header.sender,
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
        },
        Err(Unserved::Unavailable(down)) => unavailable(frame, down),
        Err(e @ Unserved::Draft(_)) => {
            frame_span(frame).in_scope(|| {
                tracing::warn!(error = %e, "request not served");
            });
            Served::default()
        }
    }
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
    }
}

/// Connects the node actor `addr` to `bus`: subscribes to `subject` (when this returns the
/// subscription is active) and serves every message on it until the returned task is
/// aborted or the bus closes: a request is answered on its reply subject, a one-way
/// delivery (e.g. the broker's 6.5 step 2 on a merchant's peer subject) is handed to the
/// node the same way and not answered. The deliveries a decision makes go to
/// `subjects.peer(recipient)`. [`gateway_until`] with a stop that never comes.
///
/// # Errors
/// As [`Bus::subscribe`].
pub async fn gateway<B: Bus, N: ServeNode>(
    bus: B,
    subject: &Subject,
    subjects: Subjects,
    addr: Addr<NodeActor<N>>,
) -> Result<tokio::task::JoinHandle<()>, BusError> {
    gateway_until(bus, subject, subjects, addr, std::future::pending(), None).await
}

/// What a gateway does with a frame before the node gets it, in arrival order: it may send
/// the node a [`Call`] on `addr`, which the node then runs before the frame (a merchant
/// daemon learns an unknown sender's key from the broker by 6.0b and hands it to its node).
pub type Prepare<N> = std::sync::Arc<
    dyn Fn(Addr<NodeActor<N>>, Bytes) -> futures::future::BoxFuture<'static, ()> + Send + Sync,
>;

/// [`gateway`] with a graceful stop (a daemon's SIGTERM): when `stop` completes the task
/// drops the subscription (unsubscribes: no new request is taken), then waits until every
/// frame already handed to the node has been answered (its deliveries and reply
/// published), and ends. Aborting the task instead stops at once; the answers already
/// under way are still sent (each runs in a task of its own). `prepare`, if any, runs on
/// each frame before it is handed to the node ([`Prepare`]).
///
/// # Errors
/// As [`Bus::subscribe`].
pub async fn gateway_until<B: Bus, N: ServeNode>(
    bus: B,
    subject: &Subject,
    subjects: Subjects,
    addr: Addr<NodeActor<N>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    prepare: Option<Prepare<N>>,
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
            let span = frame_span(incoming.payload());
            if let Some(prepare) = &prepare {
                prepare(addr.clone(), incoming.payload().clone())
                    .instrument(span.clone())
                    .await;
            }
            let (done, result) = oneshot::channel();
            addr.do_send(Submit {
                frame: incoming.payload().clone(),
                done,
            });
            let bus = bus.clone();
            let subjects = subjects.clone();
            let guard = in_flight.clone();
            tokio::spawn(
                async move {
                    let _guard = guard;
                    let Ok(served) = result.await else {
                        tracing::warn!("the node answered nothing (it failed or stopped)");
                        return;
                    };
                    for (to, frame) in served.deliveries {
                        if let Err(e) = bus.publish(&subjects.peer(&to), frame).await {
                            tracing::warn!(error = %e, recipient = %to, "a delivery could not be published");
                        }
                    }
                    // A delivery (no reply subject) is handled the same way; its answer, if the
                    // node makes one, is not sent back on the bus.
                    match served.reply {
                        Some(reply) if incoming.reply().is_some() => {
                            match incoming.respond(reply).await {
                                Ok(()) => tracing::debug!("answered"),
                                Err(e) => tracing::warn!(error = %e, "a reply could not be sent"),
                            }
                        }
                        _ => tracing::debug!("handled without a reply"),
                    }
                }
                .instrument(span),
            );
        }
        drop(subscription);
        drop(in_flight);
        let _ = drained.recv().await;
    }))
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

    /// Echoes each frame reversed; delivers a copy to `peer`; records batch sizes and calls.
    struct Echo {
        batches: Vec<usize>,
        calls: Vec<usize>,
        /// Blocks the first batch until a message arrives.
        hold: Option<(oneshot::Sender<()>, mpsc::Receiver<()>)>,
        peer: Uid,
    }

    impl ServeNode for Echo {
        fn serve_batch(&mut self, frames: &[&[u8]], now: UnixSecs) -> Vec<Served> {
            assert_eq!(now, UnixSecs::new(42));
            if let Some((started, release)) = self.hold.take() {
                started.send(()).unwrap();
                release.recv().unwrap();
            }
            self.batches.push(frames.len());
            frames
                .iter()
                .map(|f| Served {
                    reply: Some(Bytes::from(f.iter().rev().copied().collect::<Vec<u8>>())),
                    deliveries: vec![(self.peer, Bytes::copy_from_slice(f))],
                })
                .collect()
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
            None,
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
            Box::pin(async move {
                addr.do_send(Call(Box::new(move |n: &mut Echo, _| {
                    n.calls.push(n.batches.len() * 100 + frame.len());
                })));
            })
        });
        let gateway = gateway_until(
            bus.clone(),
            &subjects.broker(),
            subjects.clone(),
            addr.clone(),
            std::future::pending(),
            Some(prepare),
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
}
