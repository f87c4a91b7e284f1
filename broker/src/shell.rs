//! The broker inside the actor shell (`shared::runtime`; architecture.md "Each node"):
//! [`BrokerNode`] serves batches with one group commit each, and [`serve`] starts the node
//! actor and its gateway on `Subjects::broker()` of any bus.
//!
//! A node failure ([`crate::node::NodeError`]) answers nothing: the batch committed nothing
//! and the state was rebuilt from the log, so the requester's retry with the same bodies
//! (protocol.md section 7) is safe.

use actix::Addr;
use bytes::Bytes;
use shared::bus::{Bus, BusError, Subjects};
use shared::runtime::{self, Clock, NodeActor, ServeNode, Served};

use crate::node::BrokerNode;

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

/// Starts `node` in its actor (on the current actix arbiter) and its gateway on
/// `subjects.broker()`; the subscription is active when this returns. The gateway task runs
/// until aborted; stop the actor with `shared::runtime::Stop` to get the node back.
///
/// # Errors
/// As `Bus::subscribe`.
pub async fn serve<B: Bus>(
    node: BrokerNode,
    bus: B,
    subjects: Subjects,
    clock: Clock,
) -> Result<(Addr<NodeActor<BrokerNode>>, tokio::task::JoinHandle<()>), BusError> {
    let addr = runtime::start(node, clock);
    let subject = subjects.broker();
    let task = runtime::gateway(bus, &subject, subjects, addr.clone()).await?;
    Ok((addr, task))
}
