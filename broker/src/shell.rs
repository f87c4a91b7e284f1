//! The broker inside the actor shell (`shared::runtime`; architecture.md "Each node"):
//! [`BrokerNode`] serves batches with one group commit each, and [`serve`] starts the node
//! actor and its gateway on `Subjects::broker()` of any bus.
//!
//! The broker's timer (sections 4 and 7: the broker enforces every deadline) runs as a
//! `shared::runtime::Call` between batches: [`expire`] once, and [`serve`] at start and
//! every [`EXPIRE_EVERY`]. Each run of [`serve`]'s timer publishes what it produced to
//! `Subjects::peer(recipient)` after the commit: the NOK `ChangeBrokerScrip` of each expired
//! 6.2 exchange or released 6.5 escrow (C learns its B0 is Live again). In between, the
//! `VendorTopUpAuthorization` of each open escrow (6.5 step 2, `BrokerNode::to_resend`) is
//! re-sent to M until the deadline: at start, then after a pause growing from
//! [`RESEND_FIRST`]. A lost publish is not fatal: the frames are stored, and a party asks
//! for them with TransactionStatus (section 7).
//!
//! A storage fault ([`NodeError::Unavailable`]) is answered with the unsigned
//! `Error { Unavailable }` (protocol.md section 10): the batch committed nothing, the node
//! reopens its log and rebuilds its state before it serves again, so the requester's
//! retry with the same bodies (section 7) is safe (`shared::runtime::served`).

use std::time::Duration;

use actix::Addr;
use bytes::Bytes;
use shared::UnixSecs;
use shared::bus::{Bus, BusError, Subjects};
use shared::runtime::{
    self, Backoff, Batched, Call, Clock, Gauge, Next, NodeActor, Observe, ServeNode, ServedBatch,
};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::core::request::Verified;
use crate::core::status::{self, BrokerStatus};
use crate::node::{BrokerNode, Expired, NodeError, Outgoing};

impl Observe for BrokerNode {
    type Status = BrokerStatus;

    fn serving(&self) -> bool {
        !self.is_down()
    }

    fn head(&self) -> u64 {
        self.log().head().ok().flatten().map_or(0, |(seq, _)| seq)
    }

    fn status(&self, now: UnixSecs) -> BrokerStatus {
        status::status(
            self.state(),
            &self.uid(),
            now.get(),
            Observe::head(self),
            Observe::serving(self),
        )
    }

    fn gauges(s: &BrokerStatus) -> Vec<Gauge> {
        use shared::runtime::observe::{self as o, count, minor};
        let live = s.live_scrip.count.saturating_sub(s.live_scrip.held);
        vec![
            Gauge::labelled(
                o::OPEN_TRANSACTIONS,
                ("kind", "exchange"),
                count(s.exchanges.total),
            ),
            Gauge::labelled(
                o::OPEN_TRANSACTIONS,
                ("kind", "escrow"),
                count(s.escrows.total),
            ),
            Gauge::labelled(
                o::FLOAT,
                ("account", "broker"),
                minor(s.accounts.float_broker.minor),
            ),
            Gauge::labelled(
                o::FLOAT,
                ("account", "vendor_memo"),
                minor(s.accounts.vendor_memo_total.minor),
            ),
            Gauge::labelled(o::LIVE_SCRIP, ("state", "live"), count(live)),
            Gauge::labelled(o::LIVE_SCRIP, ("state", "held"), count(s.live_scrip.held)),
            Gauge::new(o::LIVE_SCRIP_VALUE, minor(s.live_scrip.value.minor)),
            Gauge::labelled(o::PEERS, ("kind", "merchant"), count(s.peers.merchants)),
            Gauge::labelled(o::PEERS, ("kind", "customer"), count(s.peers.customers)),
            Gauge::new(o::BANK_ACCOUNTS, count(s.accounts.bank_accounts)),
            Gauge::new(o::BANK_BALANCE, minor(s.accounts.bank_total.minor)),
        ]
    }
}

/// How often the running broker runs its timer ([`expire`]).
pub const EXPIRE_EVERY: Duration = Duration::from_secs(60);
/// The first pause before an open 6.5 authorization is sent again; it doubles up to the
/// timer's period while the merchant does not answer.
pub const RESEND_FIRST: Duration = Duration::from_secs(1);

impl ServeNode for BrokerNode {
    type Request = Verified;

    fn serve_batch(
        &mut self,
        batch: Batched<Verified>,
        now: UnixSecs,
        next: Next,
    ) -> ServedBatch<Verified> {
        runtime::served_each(self.serve(batch, now, next))
    }
}

/// Runs the broker's timer once on the node actor, at the shell's clock: closes expired
/// exchanges of 6.2, releases expired escrows of 6.5 and lapses BrokerScrip past its grace
/// (`BrokerNode::expire`). Returns the events it appended and the deliveries it committed
/// (publishing them is the caller's: [`serve`]'s timer does); `None` if the actor is gone.
pub async fn expire(addr: &Addr<NodeActor<BrokerNode>>) -> Option<Result<Expired, NodeError>> {
    let (tx, rx) = oneshot::channel();
    // A stopped actor drops the call and `tx` with it: the receiver says so.
    addr.do_send(Call(Box::new(move |node: &mut BrokerNode, now| {
        let _ = tx.send(node.expire(now));
    })));
    rx.await.ok()
}

/// The 6.5 step 2 frames to re-send at the shell's clock (`BrokerNode::to_resend`: the
/// stored bytes, one per open escrow before its deadline); `None` if the actor is gone.
pub async fn to_resend(addr: &Addr<NodeActor<BrokerNode>>) -> Option<Vec<Outgoing>> {
    let (tx, rx) = oneshot::channel();
    addr.do_send(Call(Box::new(move |node: &mut BrokerNode, now| {
        let _ = tx.send(node.to_resend(now));
    })));
    rx.await.ok()
}

/// Publishes each frame to its recipient's peer subject (one way). A failure is logged and
/// not retried here: the frame is stored at the broker and the next tick or a
/// TransactionStatus (section 7) gets it to the party.
async fn publish_all<B: Bus>(bus: &B, subjects: &Subjects, frames: Vec<Outgoing>) {
    for out in frames {
        if let Err(e) = bus
            .publish(&subjects.peer(&out.to), Bytes::from(out.frame))
            .await
        {
            tracing::warn!(error = %e, to = %out.to, "timer: delivery not published");
        }
    }
}

/// One tick of the running broker's timer: [`expire`], then (after its commit) publish its
/// deliveries, then publish the 6.5 re-sends. Returns `false` once the actor is gone.
pub async fn tick<B: Bus>(
    addr: &Addr<NodeActor<BrokerNode>>,
    bus: &B,
    subjects: &Subjects,
) -> bool {
    expire_and_publish(addr, bus, subjects).await && resend(addr, bus, subjects).await.is_some()
}

/// [`expire`], then publish its deliveries. `false` once the actor is gone.
async fn expire_and_publish<B: Bus>(
    addr: &Addr<NodeActor<BrokerNode>>,
    bus: &B,
    subjects: &Subjects,
) -> bool {
    match expire(addr).await {
        None => false,
        Some(Ok(expired)) => {
            if expired.events > 0 {
                tracing::info!(
                    events = expired.events,
                    "timer: expired exchanges and escrows, lapsed scrip"
                );
            }
            publish_all(bus, subjects, expired.deliveries).await;
            true
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "timer failed; retried at the next tick");
            true
        }
    }
}

/// Publishes the 6.5 re-sends ([`to_resend`]); how many, or `None` once the actor is gone.
async fn resend<B: Bus>(
    addr: &Addr<NodeActor<BrokerNode>>,
    bus: &B,
    subjects: &Subjects,
) -> Option<usize> {
    let frames = to_resend(addr).await?;
    let count = frames.len();
    publish_all(bus, subjects, frames).await;
    Some(count)
}

/// The running timer: at start, then every `every`, [`expire_and_publish`]; in between,
/// while an escrow is open, [`resend`] after a [`Backoff`] from [`RESEND_FIRST`] up to
/// `every`. So a restarted broker enforces the deadlines that passed while it was down and
/// re-sends its open 6.5 authorizations at once, not a period later (protocol.md section
/// 7: on restart every node resumes each open tx), and a merchant that stays away is asked
/// less and less often.
async fn timer<B: Bus>(
    addr: Addr<NodeActor<BrokerNode>>,
    bus: B,
    subjects: Subjects,
    every: Duration,
) {
    let mut next_expiry = Instant::now();
    let mut backoff = Backoff::new(RESEND_FIRST, every);
    loop {
        if Instant::now() >= next_expiry {
            if !expire_and_publish(&addr, &bus, &subjects).await {
                return;
            }
            next_expiry = Instant::now() + every;
        }
        let Some(resent) = resend(&addr, &bus, &subjects).await else {
            return;
        };
        let wake = if resent == 0 {
            backoff.reset();
            next_expiry
        } else {
            (Instant::now() + backoff.pause()).min(next_expiry)
        };
        tokio::time::sleep_until(wake).await;
    }
}

/// The running broker: its actor, the gateway task and the timer task.
#[derive(Debug)]
pub struct Running {
    /// The node actor (stop it with `shared::runtime::Stop` to get the node back).
    pub addr: Addr<NodeActor<BrokerNode>>,
    /// The gateway on `Subjects::broker()`.
    pub gateway: tokio::task::JoinHandle<()>,
    /// The timer (see the module doc).
    pub timer: tokio::task::JoinHandle<()>,
    /// Tells the gateway to stop taking requests ([`Running::shutdown`]).
    stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    /// Stops serving: aborts the gateway and the timer, then stops the actor once the
    /// requests already queued are served, and returns the node (to close its file).
    /// `None` if the actor was already gone.
    pub async fn stop(self) -> Option<BrokerNode> {
        self.gateway.abort();
        self.timer.abort();
        let (tx, rx) = oneshot::channel();
        self.addr.do_send(runtime::Stop(tx));
        rx.await.ok()
    }

    /// The graceful stop of a daemon (SIGTERM): the gateway unsubscribes (no new request is
    /// taken) and waits until every request it took is answered, the timer stops, then the
    /// actor stops with its queue empty and returns the node, every batch committed (close
    /// it to release the file). `None` if the actor was already gone.
    pub async fn shutdown(self) -> Option<BrokerNode> {
        let _ = self.stop.send(true);
        if let Err(e) = self.gateway.await {
            tracing::warn!(error = %e, "the gateway ended abnormally");
        }
        self.timer.abort();
        let (tx, rx) = oneshot::channel();
        self.addr.do_send(runtime::Stop(tx));
        rx.await.ok()
    }
}

/// A future that completes once `true` is sent on `stop`, and never if the sender is
/// dropped without sending it (the gateway then runs until aborted, as before).
async fn stop_signal(mut stop: tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Starts `node` in its actor (on the current actix arbiter), its gateway on
/// `subjects.broker()` (the subscription is active when this returns) and its timer (at
/// start and every [`EXPIRE_EVERY`]: expire and publish the deliveries; the 6.5 re-sends
/// at start and then with a growing pause).
///
/// # Errors
/// As `Bus::subscribe`.
pub async fn serve<B: Bus>(
    node: BrokerNode,
    bus: B,
    subjects: Subjects,
    clock: Clock,
) -> Result<Running, BusError> {
    serve_every(
        node,
        bus,
        subjects,
        clock,
        EXPIRE_EVERY,
        runtime::Screen::default(),
    )
    .await
}

/// [`serve`] with the timer ticking every `every` instead of [`EXPIRE_EVERY`]: a deadline
/// is enforced at most `every` after it passes (the daemon's `expire_every_secs`); the
/// gateway screens each frame with `screen` (the daemon's, on a shared network: a request
/// is answered only on its sender's inbox, protocol.md section 3).
///
/// # Errors
/// As `Bus::subscribe`.
pub async fn serve_every<B: Bus>(
    node: BrokerNode,
    bus: B,
    subjects: Subjects,
    clock: Clock,
    every: Duration,
    screen: runtime::Screen<BrokerNode>,
) -> Result<Running, BusError> {
    let addr = runtime::start(node, clock);
    let subject = subjects.broker();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let gateway = runtime::gateway_until(
        bus.clone(),
        &subject,
        subjects.clone(),
        addr.clone(),
        stop_signal(stopped),
        screen,
    )
    .await?;
    let timer = tokio::spawn(timer(addr.clone(), bus, subjects, every));
    Ok(Running {
        addr,
        gateway,
        timer,
        stop,
    })
}
