//! The merchant inside the actor shell (`shared::runtime`; architecture.md "Each node").
//!
//! - [`Shelled`]: a [`MerchantNode`] as the shell runs it: batches with one group commit
//!   each (`shared::node::Driver`). The requests of the merchant's own that a batch commits
//!   (`Handled::requests`: 6.3 step 5's `PurchaseCompleted`, the relays of 6.2 step 3,
//!   6.5 step 3 and 6.7 step 2) want the broker's answer, so they go to the reporter, not
//!   to a peer subject.
//! - The reporter ([`serve`] starts it) sends them to `Subjects::broker()` with a timeout
//!   and feeds each answer to `MerchantNode::handle_reply` on the node actor, which
//!   records the `Ack` (`PurchaseReported`) or acts on the decision; the frames a decision
//!   sends to the customer are published to the customer's peer subject. At start, after
//!   a lapse, and while something stays unanswered (after a pause growing from
//!   [`REPORT_RETRY_FIRST`] to [`REPORT_RETRY`]), it sends everything pending in the node's
//!   state instead (`MerchantNode::pending_reports`,
//!   `MerchantNode::pending_broker_requests`): the same frames, so the broker answers a
//!   repeat with its stored answer (protocol.md section 7), and a restarted merchant
//!   resumes its open work at once.
//! - The lapse timer ([`lapse`], every [`LAPSE_EVERY`]) removes VendorScrip past its
//!   renewal grace with its notice to the broker (protocol.md section 4), which the
//!   reporter sends like any request awaiting the broker.
//! - A storage fault is answered with the unsigned `Error { Unavailable }` (protocol.md
//!   section 10; `shared::runtime::served`): the batch committed nothing, and the node
//!   reopens its log and rebuilds its state before it serves again, so the requester's
//!   retry with the same bodies is safe.

use std::time::Duration;

use actix::Addr;
use bytes::Bytes;
use shared::UnixSecs;
use shared::bus::{Bus, BusError, Subjects};
use shared::runtime::{self, Backoff, Call, Clock, NodeActor, Prepare, ServeNode, Served};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::node::{MerchantNode, Outgoing, ReplyOutcome};

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

impl ServeNode for Shelled {
    fn serve_batch(&mut self, frames: &[&[u8]], now: UnixSecs) -> Vec<Served> {
        let mut requests = Vec::new();
        let served = self
            .node
            .serve(frames, now)
            .into_iter()
            .zip(frames)
            .map(|(mut result, frame)| {
                if let Ok(handled) = &mut result {
                    requests.append(&mut handled.requests);
                }
                runtime::served(result, frame)
            })
            .collect();
        if !requests.is_empty() {
            // The reporter ends only with the actor: a failed send has no one to tell.
            let _ = self.reporter.send(Wake::Send(requests));
        }
        served
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
/// reporter. [`serve_with`] without a [`Prepare`] step.
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
    serve_with(node, bus, subjects, clock, timeout, None).await
}

/// [`serve`], with `prepare` run on every request to `subjects.merchant(uid)` before the
/// node gets it (the daemon's 6.0b fetch of an unknown customer's key, `merchant::daemon`).
///
/// # Errors
/// As `Bus::subscribe`.
pub async fn serve_with<B: Bus>(
    node: MerchantNode,
    bus: B,
    subjects: Subjects,
    clock: Clock,
    timeout: Duration,
    prepare: Option<Prepare<Shelled>>,
) -> Result<Running, BusError> {
    let me = node.config().me();
    let subject = subjects.merchant(&me);
    let (reporter, wake) = mpsc::unbounded_channel();
    let addr = runtime::start(Shelled { node, reporter }, clock);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let gateway = runtime::gateway_until(
        bus.clone(),
        &subject,
        subjects.clone(),
        addr.clone(),
        stop_signal(stopped.clone()),
        prepare,
    )
    .await?;
    let deliveries = runtime::gateway_until(
        bus.clone(),
        &subjects.peer(&me),
        subjects.clone(),
        addr.clone(),
        stop_signal(stopped),
        None,
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

/// The reporter (see the module doc): at start, every request pending in the node's
/// state; when a batch commits requests of the merchant's, those; while some stay
/// unanswered, everything pending again after a pause growing from [`REPORT_RETRY_FIRST`]
/// to [`REPORT_RETRY`]; with nothing owed, everything pending every [`REPORT_RETRY`]. Runs
/// until the actor stops.
async fn report_loop<B: Bus>(
    addr: Addr<NodeActor<Shelled>>,
    bus: B,
    subjects: Subjects,
    timeout: Duration,
    mut wake: mpsc::UnboundedReceiver<Wake>,
) {
    let mut backoff = Backoff::new(REPORT_RETRY_FIRST, REPORT_RETRY);
    // `None`: everything pending in the node's state.
    let mut next: Option<Vec<Outgoing>> = None;
    loop {
        let round = match next.take() {
            None => report_round(&addr, &bus, &subjects, timeout).await,
            Some(requests) => send_round(&addr, &bus, &subjects, timeout, requests).await,
        };
        let (wait, owed) = match round {
            Ok(round) if round.down || round.answered < round.sent => (backoff.pause(), true),
            Ok(_) => {
                backoff.reset();
                (REPORT_RETRY, false)
            }
            Err(ReportError::Stopped) => return,
        };
        match tokio::time::timeout(wait, wake.recv()).await {
            // The actor, which holds the sender, is gone.
            Ok(None) => return,
            // Fresh requests, unless older ones are owed: then everything pending.
            Ok(Some(Wake::Send(mut requests))) if !owed => {
                let mut all = false;
                while let Ok(more) = wake.try_recv() {
                    match more {
                        Wake::Send(mut more) => requests.append(&mut more),
                        Wake::Pending => all = true,
                    }
                }
                next = (!all).then_some(requests);
            }
            Ok(Some(_)) | Err(_) => next = None,
        }
    }
}

/// What one round of the reporter did.
#[derive(Clone, Copy, Debug)]
struct Round {
    /// The node is down after a storage fault (nothing was sent): try again soon.
    down: bool,
    /// Reports and requests sent.
    sent: usize,
    /// Of those, answered and recorded.
    answered: usize,
}

/// The merchant's actor is gone.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The actor stopped.
    #[error("the merchant's actor has stopped")]
    Stopped,
}

/// One round of the reporter, now: every pending report to the broker, each answer recorded
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
    Ok(report_round(addr, bus, subjects, timeout).await?.answered)
}

/// [`send_reports`], telling also how many were sent.
async fn report_round<B: Bus>(
    addr: &Addr<NodeActor<Shelled>>,
    bus: &B,
    subjects: &Subjects,
    timeout: Duration,
) -> Result<Round, ReportError> {
    let (tx, rx) = oneshot::channel();
    // A stopped actor drops the call, and with it `tx`: the receiver then says so.
    addr.do_send(Call(Box::new(move |s: &mut Shelled, now| {
        // A node down after a storage fault recovers here too, not only on a request.
        let down = s.node.ready(now).is_err();
        let mut pending = s.node.pending_reports();
        pending.extend(s.node.pending_broker_requests());
        let _ = tx.send((down, pending));
    })));
    let (down, pending) = rx.await.map_err(|_| ReportError::Stopped)?;
    let mut round = send_round(addr, bus, subjects, timeout, pending).await?;
    round.down = down;
    Ok(round)
}

/// Sends `requests` to the broker one after another, each answer recorded through the
/// node actor.
async fn send_round<B: Bus>(
    addr: &Addr<NodeActor<Shelled>>,
    bus: &B,
    subjects: &Subjects,
    timeout: Duration,
    requests: Vec<Outgoing>,
) -> Result<Round, ReportError> {
    let mut round = Round {
        down: false,
        sent: requests.len(),
        answered: 0,
    };
    for request in requests {
        let span = runtime::frame_span(&request.frame);
        if send_report(addr, bus, subjects, timeout, request)
            .instrument(span)
            .await?
        {
            round.answered += 1;
        }
    }
    Ok(round)
}

/// Sends one pending report (or request awaiting the broker's decision) and records its
/// answer through the node actor. `Ok(true)` if an answer was recorded.
async fn send_report<B: Bus>(
    addr: &Addr<NodeActor<Shelled>>,
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
    let (tx, rx) = oneshot::channel();
    addr.do_send(Call(Box::new(move |s: &mut Shelled, now| {
        let _ = tx.send(s.node.handle_reply(&reply, now));
    })));
    match rx.await.map_err(|_| ReportError::Stopped)? {
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
