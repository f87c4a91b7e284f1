//! The broker inside the actor shell (`shared::runtime`; architecture.md "Each node"):
//! [`BrokerNode`] serves batches with one group commit each, and [`serve`] starts the node
//! actor and its gateway on `Subjects::broker()` of any bus.
//!
//! The broker's timer (sections 4 and 7: the broker enforces every deadline) runs as a
//! `shared::runtime::Call` between batches: [`expire`] once, and [`serve`] every
//! [`EXPIRE_EVERY`].
//!
//! A node failure ([`crate::node::NodeError`]) answers nothing: the batch committed nothing
//! and the state was rebuilt from the log, so the requester's retry with the same bodies
//! (protocol.md section 7) is safe.

use std::time::Duration;

use actix::Addr;
use bytes::Bytes;
use shared::bus::{Bus, BusError, Subjects};
use shared::runtime::{self, Call, Clock, NodeActor, ServeNode, Served};
use tokio::sync::oneshot;

use crate::node::{BrokerNode, NodeError};

/// How often the running broker runs its timer ([`expire`]).
pub const EXPIRE_EVERY: Duration = Duration::from_secs(60);

impl ServeNode for BrokerNode {
    fn serve_batch(&mut self, frames: &[&[u8]], now: u64) -> Vec<Served> {
        self.handle_batch(frames, now)
            .into_iter()
            .map(|result| match result {
                Ok(handled) => Served {
                    reply: Some(Bytes::from(handled.reply)),
                    deliveries: handled
                        .deliveries
                        .into_iter()
                        .map(|d| (d.to, Bytes::from(d.frame)))
                        .collect(),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "broker request not served");
                    Served::default()
                }
            })
            .collect()
    }
}

/// Runs the broker's timer once on the node actor, at the shell's clock: closes expired
/// exchanges of 6.2 and lapses BrokerScrip past its grace (`BrokerNode::expire`). Returns
/// how many events it appended; `None` if the actor is gone.
pub async fn expire(addr: &Addr<NodeActor<BrokerNode>>) -> Option<Result<usize, NodeError>> {
    let (tx, rx) = oneshot::channel();
    // A stopped actor drops the call and `tx` with it: the receiver says so.
    addr.do_send(Call(Box::new(move |node: &mut BrokerNode, now| {
        let _ = tx.send(node.expire(now));
    })));
    rx.await.ok()
}

/// The running broker: its actor, the gateway task and the timer task.
#[derive(Debug)]
pub struct Running {
    /// The node actor (stop it with `shared::runtime::Stop` to get the node back).
    pub addr: Addr<NodeActor<BrokerNode>>,
    /// The gateway on `Subjects::broker()`.
    pub gateway: tokio::task::JoinHandle<()>,
    /// The timer ([`expire`] every [`EXPIRE_EVERY`]).
    pub timer: tokio::task::JoinHandle<()>,
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
}

/// Starts `node` in its actor (on the current actix arbiter), its gateway on
/// `subjects.broker()` (the subscription is active when this returns) and its timer
/// ([`expire`] every [`EXPIRE_EVERY`]).
///
/// # Errors
/// As `Bus::subscribe`.
pub async fn serve<B: Bus>(
    node: BrokerNode,
    bus: B,
    subjects: Subjects,
    clock: Clock,
) -> Result<Running, BusError> {
    let addr = runtime::start(node, clock);
    let subject = subjects.broker();
    let gateway = runtime::gateway(bus, &subject, subjects, addr.clone()).await?;
    let timer_addr = addr.clone();
    let timer = tokio::spawn(async move {
        // The first run one period after the start (a test or an operator can call
        // [`expire`] at once).
        let first = tokio::time::Instant::now() + EXPIRE_EVERY;
        let mut every = tokio::time::interval_at(first, EXPIRE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match expire(&timer_addr).await {
                None => break,
                Some(Ok(0)) => {}
                Some(Ok(n)) => {
                    tracing::info!(events = n, "timer: expired exchanges, lapsed scrip");
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "timer failed; retried at the next tick");
                }
            }
        }
    });
    Ok(Running {
        addr,
        gateway,
        timer,
    })
}
