//! The merchant inside the actor shell (`shared::runtime`; architecture.md "Each node").
//!
//! - [`Shelled`]: a [`MerchantNode`] as the shell runs it: batches with one group commit
//!   each (`shared::node::Driver`). The requests of the merchant's own that a batch commits
//!   (`Handled::requests`: 6.3 step 5's `PurchaseCompleted`, the relays of 6.2 step 3,
//!   6.5 step 3 and 6.7 step 2) want the broker's answer, so they go to the reporter, not
//!   to a peer subject.
//! - The reporter ([`serve`] starts it) sends them to `Subjects::broker()` with a timeout
//!   and feeds the answers that arrive together to `MerchantNode::handle_replies` on the
//!   node actor, in one call and one commit: it records each `Ack` (`PurchaseReported`)
//!   and acts on each decision. The frames a decision sends to the customer are published
//!   to the customer's peer subject. Each request goes
//!   in a task of its own, at most [`REPORT_CONCURRENCY`] at once, so one the broker does
//!   not answer delays no other (protocol.md section 10); an unanswered one is sent again
//!   after its own pause growing from [`REPORT_RETRY_FIRST`] to [`REPORT_RETRY`], read
//!   again from the node's state (`MerchantNode::pending_reports`,
//!   `MerchantNode::pending_broker_requests`), so a request decided meanwhile is never
//!   sent again. The same frames each time, so the broker answers a repeat with its
//!   stored answer (protocol.md section 7); at start, after a lapse and every
//!   [`REPORT_RETRY`] it reads everything pending, so a restarted merchant resumes its
//!   open work at once.
//! - The lapse timer ([`lapse`], every [`LAPSE_EVERY`]) removes VendorScrip past its
//!   renewal grace with its notice to the broker (protocol.md section 4), which the
//!   reporter sends like any request awaiting the broker.
//! - A storage fault is answered with the unsigned `Error { Unavailable }` (protocol.md
//!   section 10; `shared::runtime::served`): the batch committed nothing, and the node
//!   reopens its log and rebuilds its state before it serves again, so the requester's
//!   retry with the same bodies is safe.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use bytes::Bytes;
use shared::TxId;
use shared::UnixSecs;
use shared::bus::{Bus, BusError, Subjects};
use shared::runtime::{
    self, Backoff, Batched, Call, Clock, Gauge, Next, NodeActor, Observe, Screen, ServeNode,
    ServedBatch,
};
use shared::wire::{Frame, Label};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

use crate::core::open::VerifiedRequest;
use crate::core::status::{self, MerchantStatus};
use crate::node::{MerchantNode, NodeError, Outgoing, ReplyOutcome};

/// The longest pause of the reporter before it sends unanswered reports again.
pub const REPORT_RETRY: Duration = Duration::from_secs(30);
/// The reporter's first pause after a round that left something unanswered; it doubles up
/// to [`REPORT_RETRY`] while the broker does not answer (protocol.md section 10: re-sends
/// with backoff), so a merchant catches up within seconds once the broker is back.
pub const REPORT_RETRY_FIRST: Duration = Duration::from_secs(1);
/// How often the lapse timer looks for VendorScrip past its renewal grace
/// (`MerchantNode::lapse`, protocol.md section 4): a year's grace ends at most this late.
pub const LAPSE_EVERY: Duration = Duration::from_secs(60);

/// A merchant node in the shell (see the module doc).
#[derive(Debug)]
pub struct Shelled {
    /// The node.
    pub node: MerchantNode,
    reporter: mpsc::UnboundedSender<Wake>,
}

/// What wakes the reporter.
#[derive(Debug)]
enum Wake {
    /// Requests of the merchant's a batch just committed (`Handled::requests`): send them.
    Send(Vec<Outgoing>),
    /// New work is pending in the node's state (a lapse notice): send everything pending.
    Pending,
}

impl Observe for Shelled {
    type Status = MerchantStatus;

    fn serving(&self) -> bool {
        !self.node.is_down()
    }

    fn head(&self) -> u64 {
        self.node
            .log()
            .head()
            .ok()
            .flatten()
            .map_or(0, |(seq, _)| seq)
    }

    fn status(&self, now: UnixSecs) -> MerchantStatus {
        status::status(
            self.node.state(),
            self.node.config(),
            now.get(),
            Observe::head(self),
            Observe::serving(self),
        )
    }

    fn gauges(s: &MerchantStatus) -> Vec<Gauge> {
        use shared::runtime::observe::{self as o, count, minor};
        let live = s.live_scrip.count.saturating_sub(s.live_scrip.held);
        let open = |kind, n| Gauge::labelled(o::OPEN_TRANSACTIONS, ("kind", kind), count(n));
        vec![
            open("report", s.pending.reports),
            open("exchange", s.pending.exchanges),
            open("top_up", s.pending.top_ups),
            open("withdrawal", s.pending.withdrawals),
            open("lapse", s.pending.lapses),
            Gauge::labelled(o::LIVE_SCRIP, ("state", "live"), count(live)),
            Gauge::labelled(o::LIVE_SCRIP, ("state", "held"), count(s.live_scrip.held)),
            Gauge::new(o::LIVE_SCRIP_VALUE, minor(s.live_scrip.value.minor)),
            Gauge::new(o::SALES, count(s.sales)),
            Gauge::new(o::SALES_VALUE, minor(s.books.paid.minor)),
        ]
    }
}

impl ServeNode for Shelled {
    type Request = VerifiedRequest;

    fn serve_batch(
        &mut self,
        batch: Batched<VerifiedRequest>,
        now: UnixSecs,
        next: Next,
    ) -> ServedBatch<VerifiedRequest> {
        let (mut results, ahead) = self.node.serve(batch, now, next);
        let requests: Vec<_> = results
            .iter_mut()
            .filter_map(|(_, result)| result.as_mut().ok())
            .flat_map(|handled| std::mem::take(&mut handled.requests))
            .collect();
        if !requests.is_empty() {
            // The reporter ends only with the actor: a failed send has no one to tell.
            let _ = self.reporter.send(Wake::Send(requests));
        }
        runtime::served_each((results, ahead))
    }
}

/// The running merchant: its actor, the gateway task and the reporter task.
#[derive(Debug)]
pub struct Running {
    /// The node actor (stop it with `shared::runtime::Stop` to get the node back).
    pub addr: Addr<NodeActor<Shelled>>,
    /// The gateway on `Subjects::merchant(uid)` (requests).
    pub gateway: tokio::task::JoinHandle<()>,
    /// The gateway on `Subjects::peer(uid)` (the broker's deliveries, 6.5 step 2).
    pub deliveries: tokio::task::JoinHandle<()>,
    /// The reporter.
    pub reporter: tokio::task::JoinHandle<()>,
    /// The lapse timer ([`LAPSE_EVERY`]).
    pub lapser: tokio::task::JoinHandle<()>,
    /// Tells the gateways to stop taking frames ([`Running::shutdown`]).
    stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    /// Stops serving: aborts the gateway and the reporter, then stops the actor once the
    /// requests already queued are served, and returns the node (to close its file).
    /// `None` if the actor was already gone.
    pub async fn stop(self) -> Option<MerchantNode> {
        self.gateway.abort();
        self.deliveries.abort();
        self.reporter.abort();
        self.lapser.abort();
        let (tx, rx) = oneshot::channel();
        self.addr.do_send(runtime::Stop(tx));
        rx.await.ok().map(|s| s.node)
    }

    /// The graceful stop of a daemon (SIGTERM): both gateways unsubscribe (no new frame is
    /// taken) and wait until every frame they took is answered, the reporter stops (what
    /// it had not sent stays pending in the log and is sent after the restart), then the
    /// actor stops with its queue empty and returns the node, every batch committed.
    /// `None` if the actor was already gone.
    pub async fn shutdown(self) -> Option<MerchantNode> {
        let _ = self.stop.send(true);
        for gateway in [self.gateway, self.deliveries] {
            if let Err(e) = gateway.await {
                tracing::warn!(error = %e, "a gateway ended abnormally");
            }
        }
        self.reporter.abort();
        self.lapser.abort();
        let (tx, rx) = oneshot::channel();
        self.addr.do_send(runtime::Stop(tx));
        rx.await.ok().map(|s| s.node)
    }
}

/// A future that completes once `true` is sent on `stop`, and never if the sender is
/// dropped without sending it (the gateway then runs until aborted, as before).
async fn stop_signal(mut stop: tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Starts `node` in its actor (on the current actix arbiter), its gateways on
/// `subjects.merchant(uid)` and `subjects.peer(uid)` (active when this returns) and its
/// reporter. [`serve_with`] with no [`Screen`].
///
/// # Errors
/// As `Bus::subscribe`.
pub async fn serve<B: Bus>(
    node: MerchantNode,
    bus: B,
    subjects: Subjects,
    clock: Clock,
    timeout: Duration,
) -> Result<Running, BusError> {
    serve_with(node, bus, subjects, clock, timeout, Screen::default()).await
}

/// [`serve`], with `screen` on every request to `subjects.merchant(uid)` before the node
/// gets it (the daemon's: replies bound to the sender's inbox, and the 6.0b fetch of an
/// unknown customer's key, `merchant::daemon`); the gateway on the peer subject binds
/// replies as `screen` does.
///
/// # Errors
/// As `Bus::subscribe`.
pub async fn serve_with<B: Bus>(
    node: MerchantNode,
    bus: B,
    subjects: Subjects,
    clock: Clock,
    timeout: Duration,
    screen: Screen<Shelled>,
) -> Result<Running, BusError> {
    let me = node.config().me();
    let subject = subjects.merchant(&me);
    let (reporter, wake) = mpsc::unbounded_channel();
    let addr = runtime::start(Shelled { node, reporter }, clock);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let delivery_screen = Screen {
        bound_replies: screen.bound_replies,
        ..Screen::default()
    };
    let gateway = runtime::gateway_until(
        bus.clone(),
        &subject,
        subjects.clone(),
        addr.clone(),
        stop_signal(stopped.clone()),
        screen,
    )
    .await?;
    let deliveries = runtime::gateway_until(
        bus.clone(),
        &subjects.peer(&me),
        subjects.clone(),
        addr.clone(),
        stop_signal(stopped),
        delivery_screen,
    )
    .await?;
    let reporter = tokio::spawn(report_loop(addr.clone(), bus, subjects, timeout, wake));
    let lapser = tokio::spawn(lapse_loop(addr.clone()));
    Ok(Running {
        addr,
        gateway,
        deliveries,
        reporter,
        lapser,
        stop,
    })
}

/// Runs [`lapse`] every [`LAPSE_EVERY`], the first one at once (a merchant that was down
/// when a grace ended lapses the scrip on its start), until the actor stops.
async fn lapse_loop(addr: Addr<NodeActor<Shelled>>) {
    let mut ticks = tokio::time::interval(LAPSE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if lapse(&addr).await.is_none() {
            return;
        }
    }
}

/// Runs the lapse timer once on the node actor, at the shell's clock
/// (`MerchantNode::lapse`): the notices it stores wake the reporter, which sends them to
/// the broker. Returns how many scrip lapsed, or `None` if the actor is gone.
pub async fn lapse(addr: &Addr<NodeActor<Shelled>>) -> Option<usize> {
    let (tx, rx) = oneshot::channel();
    addr.do_send(Call(Box::new(move |s: &mut Shelled, now| {
        let lapsed = match s.node.lapse(now) {
            Ok(0) => 0,
            Ok(n) => {
                tracing::info!(
                    lapsed = n,
                    "VendorScrip past its renewal grace lapsed; the broker is told"
                );
                let _ = s.reporter.send(Wake::Pending);
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "the lapse timer could not commit; it runs again");
                0
            }
        };
        let _ = tx.send(lapsed);
    })));
    rx.await.ok()
}

/// Requests of the merchant's to the broker the reporter has under way at once
/// (protocol.md section 10: re-sends in parallel, bounded).
pub const REPORT_CONCURRENCY: usize = 8;

/// One request of the merchant's to the broker: its tx and label (a tx holds at most one
/// request of a label awaiting the broker).
type Key = (TxId, Label);

fn key_of(frame: &[u8]) -> Option<Key> {
    Frame::header_of(frame).ok().map(|h| (h.tx, h.label))
}

/// What the reporter knows of the requests it sends (see [`report_loop`]).
struct Reporter<B> {
    addr: Addr<NodeActor<Shelled>>,
    recorder: Recorder,
    bus: B,
    subjects: Subjects,
    timeout: Duration,
    /// One permit per request under way.
    budget: Arc<Semaphore>,
    /// Sent and not yet answered or timed out: never sent twice at once.
    in_flight: HashSet<Key>,
    /// Requests that went unanswered: when each is due again, and its own backoff.
    retries: HashMap<Key, (Instant, Backoff)>,
    outcomes: mpsc::UnboundedSender<(Key, Result<bool, ReportError>)>,
}

impl<B: Bus> Reporter<B> {
    /// Sends `request` in a task of its own (within the budget) unless it is under way; its
    /// outcome comes back on `outcomes`.
    fn send(&mut self, request: Outgoing) {
        let Some(key) = key_of(&request.frame) else {
            tracing::error!("a request of the merchant's has no readable header; not sent");
            return;
        };
        if !self.in_flight.insert(key) {
            return;
        }
        let (recorder, bus, subjects) = (
            self.recorder.clone(),
            self.bus.clone(),
            self.subjects.clone(),
        );
        let (budget, outcomes, timeout) =
            (self.budget.clone(), self.outcomes.clone(), self.timeout);
        let span = runtime::frame_span(&request.frame);
        tokio::spawn(
            async move {
                // The semaphore is never closed.
                let Ok(_permit) = budget.acquire_owned().await else {
                    return;
                };
                let outcome = send_report(&recorder, &bus, &subjects, timeout, request).await;
                let _ = outcomes.send((key, outcome));
            }
            .instrument(span),
        );
    }

    /// Whether the pending request `key` is to be sent now: not under way, and either
    /// never sent by this reporter or its pause over.
    fn due(&self, key: &Key, now: Instant) -> bool {
        !self.in_flight.contains(key) && self.retries.get(key).is_none_or(|(at, _)| *at <= now)
    }

    /// When the next unanswered request not under way is due.
    fn next_due(&self) -> Option<Instant> {
        self.retries
            .iter()
            .filter(|(key, _)| !self.in_flight.contains(key))
            .map(|(_, (at, _))| *at)
            .min()
    }

    /// Records the outcome of one send: answered (the broker's decision or `Ack` recorded:
    /// forgotten, never sent again) or not (due again after its own growing pause).
    fn outcome(&mut self, key: Key, answered: bool) {
        self.in_flight.remove(&key);
        if answered {
            self.retries.remove(&key);
        } else {
            let (at, backoff) = self.retries.entry(key).or_insert_with(|| {
                (
                    Instant::now(),
                    Backoff::new(REPORT_RETRY_FIRST, REPORT_RETRY),
                )
            });
            *at = Instant::now() + backoff.pause();
        }
    }

    /// Forgets the retries of requests no longer pending in the node's state (decided):
    /// a decided request is never sent again.
    fn keep_only(&mut self, pending: &HashSet<Key>) {
        let in_flight = &self.in_flight;
        self.retries
            .retain(|key, _| pending.contains(key) || in_flight.contains(key));
    }
}

/// The reporter (see the module doc), off the serving path: each request to the broker is
/// sent in a task of its own, at most [`REPORT_CONCURRENCY`] at once, so one the broker
/// does not answer holds up no other; a request a batch just committed is sent at once;
/// an unanswered one again after its own pause growing from [`REPORT_RETRY_FIRST`] to
/// [`REPORT_RETRY`], each time read again from the node's state, so that one decided
/// meanwhile is never sent again; everything pending at start, after a lapse, and every
/// [`REPORT_RETRY`] (a node down after a storage fault: again after a growing pause, which
/// also lets it recover). Runs until the actor stops.
async fn report_loop<B: Bus>(
    addr: Addr<NodeActor<Shelled>>,
    bus: B,
    subjects: Subjects,
    timeout: Duration,
    mut wake: mpsc::UnboundedReceiver<Wake>,
) {
    let (outcomes, mut outcome) = mpsc::unbounded_channel();
    let mut r = Reporter {
        recorder: Recorder::start(addr.clone()),
        addr,
        bus,
        subjects,
        timeout,
        budget: Arc::new(Semaphore::new(REPORT_CONCURRENCY)),
        in_flight: HashSet::new(),
        retries: HashMap::new(),
        outcomes,
    };
    let mut down = Backoff::new(REPORT_RETRY_FIRST, REPORT_RETRY);
    // When to read everything pending in the node's state: at once at start.
    let mut read_at = Instant::now();
    loop {
        let next = r.next_due().map_or(read_at, |due| due.min(read_at));
        tokio::select! {
            woken = wake.recv() => match woken {
                // The actor, which holds the sender, is gone.
                None => return,
                Some(Wake::Send(requests)) => {
                    for request in requests {
                        r.send(request);
                    }
                }
                Some(Wake::Pending) => read_at = Instant::now(),
            },
            Some((key, result)) = outcome.recv() => match result {
                Ok(answered) => r.outcome(key, answered),
                Err(ReportError::Stopped) => return,
            },
            () = tokio::time::sleep_until(next) => {
                let Ok((is_down, pending)) = read_pending(&r.addr).await else {
                    return;
                };
                let keys: HashSet<Key> = pending.iter().filter_map(|o| key_of(&o.frame)).collect();
                r.keep_only(&keys);
                let now = Instant::now();
                for request in pending {
                    if key_of(&request.frame).is_some_and(|key| r.due(&key, now)) {
                        r.send(request);
                    }
                }
                read_at = now + if is_down {
                    down.pause()
                } else {
                    down.reset();
                    REPORT_RETRY
                };
            }
        }
    }
}

/// The merchant's actor is gone.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The actor stopped.
    #[error("the merchant's actor has stopped")]
    Stopped,
}

/// One answer of the broker's to record, and where its outcome goes.
type Answer = (Bytes, oneshot::Sender<Result<ReplyOutcome, NodeError>>);

/// Records the broker's answers through the node actor: those that arrive while the actor
/// records earlier ones go in one call and one commit (`MerchantNode::handle_replies`), so
/// that requests answered in parallel do not cost the merchant a commit each, and a flood
/// of them holds the node for one commit rather than one each.
#[derive(Clone, Debug)]
struct Recorder {
    answers: mpsc::UnboundedSender<Answer>,
}

impl Recorder {
    /// A recorder for the node behind `addr`; its task ends with the last clone.
    fn start(addr: Addr<NodeActor<Shelled>>) -> Recorder {
        let (answers, queue) = mpsc::unbounded_channel();
        tokio::spawn(record_loop(addr, queue));
        Recorder { answers }
    }

    /// Records `reply` and returns what became of it.
    async fn record(&self, reply: Bytes) -> Result<Result<ReplyOutcome, NodeError>, ReportError> {
        let (outcome, rx) = oneshot::channel();
        self.answers
            .send((reply, outcome))
            .map_err(|_| ReportError::Stopped)?;
        rx.await.map_err(|_| ReportError::Stopped)
    }
}

/// Hands the actor every answer queued (up to `runtime::MAX_BATCH`) in one call, then the
/// next; returns when every [`Recorder`] is gone or the actor is (the waiting senders are
/// then dropped, which they read as [`ReportError::Stopped`]).
async fn record_loop(addr: Addr<NodeActor<Shelled>>, mut queue: mpsc::UnboundedReceiver<Answer>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < runtime::MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (replies, waiting): (Vec<Bytes>, Vec<_>) = batch.into_iter().unzip();
        let (tx, rx) = oneshot::channel();
        addr.do_send(Call(Box::new(move |s: &mut Shelled, now| {
            let _ = tx.send(s.node.handle_replies(&replies, now));
        })));
        let Ok(outcomes) = rx.await else {
            return;
        };
        for (waiter, outcome) in waiting.into_iter().zip(outcomes) {
            let _ = waiter.send(outcome);
        }
    }
}

/// Everything pending in the node's state now (reports and requests awaiting the broker's
/// decision), and whether the node is down after a storage fault (it tries to recover
/// first, so a round also lets a down node recover).
async fn read_pending(
    addr: &Addr<NodeActor<Shelled>>,
) -> Result<(bool, Vec<Outgoing>), ReportError> {
    let (tx, rx) = oneshot::channel();
    // A stopped actor drops the call, and with it `tx`: the receiver then says so.
    addr.do_send(Call(Box::new(move |s: &mut Shelled, now| {
        let down = s.node.ready(now).is_err();
        let mut pending = s.node.pending_reports();
        pending.extend(s.node.pending_broker_requests());
        let _ = tx.send((down, pending));
    })));
    rx.await.map_err(|_| ReportError::Stopped)
}

/// One round now, beside the background reporter: every pending report and request to the
/// broker, sent in parallel (at most [`REPORT_CONCURRENCY`] at once), each answer recorded
/// through the node actor. Returns how many this round recorded. When it returns, every
/// report pending at its start that the broker answered is recorded (by this round, or by
/// the background reporter that sent the same report first).
///
/// # Errors
/// [`ReportError::Stopped`] if the actor is gone.
pub async fn send_reports<B: Bus>(
    addr: &Addr<NodeActor<Shelled>>,
    bus: &B,
    subjects: &Subjects,
    timeout: Duration,
) -> Result<usize, ReportError> {
    let (_, pending) = read_pending(addr).await?;
    let budget = Arc::new(Semaphore::new(REPORT_CONCURRENCY));
    let recorder = Recorder::start(addr.clone());
    let mut sends = tokio::task::JoinSet::new();
    for request in pending {
        let (recorder, bus, subjects, budget) = (
            recorder.clone(),
            bus.clone(),
            subjects.clone(),
            budget.clone(),
        );
        let span = runtime::frame_span(&request.frame);
        sends.spawn(
            async move {
                let _permit = budget.acquire_owned().await.ok();
                send_report(&recorder, &bus, &subjects, timeout, request).await
            }
            .instrument(span),
        );
    }
    let mut answered = 0;
    while let Some(joined) = sends.join_next().await {
        match joined {
            Ok(Ok(true)) => answered += 1,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "a report's task failed"),
        }
    }
    Ok(answered)
}

/// Sends one pending report (or request awaiting the broker's decision) and records its
/// answer through the node actor ([`Recorder`]). `Ok(true)` if an answer was recorded.
async fn send_report<B: Bus>(
    recorder: &Recorder,
    bus: &B,
    subjects: &Subjects,
    timeout: Duration,
    report: Outgoing,
) -> Result<bool, ReportError> {
    let reply = match bus
        .request(&subjects.broker(), Bytes::from(report.frame), timeout)
        .await
    {
        Ok(reply) => reply,
        Err(e) => {
            tracing::warn!(error = %e, "a report to the broker got no answer; it stays pending");
            return Ok(false);
        }
    };
    match recorder.record(reply).await? {
        Ok(ReplyOutcome::Recorded) => {
            tracing::info!("the broker acknowledged the report");
            Ok(true)
        }
        Ok(ReplyOutcome::Decided(frames)) => {
            // The broker's decision acted on: its frames go to their recipients' peer
            // subjects (the customer waits there with a deadline, section 7).
            for out in frames {
                if let Err(e) = bus
                    .publish(&subjects.peer(&out.to), Bytes::from(out.frame))
                    .await
                {
                    tracing::warn!(error = %e, recipient = %out.to, "a delivery could not be published");
                }
            }
            Ok(true)
        }
        Ok(ReplyOutcome::Discarded(e)) => {
            tracing::warn!(error = %e, "the broker's answer to a report was discarded");
            Ok(false)
        }
        Err(e) => {
            tracing::warn!(error = %e, "recording a report's Ack failed");
            Ok(false)
        }
    }
}
