//! The broker recording 6.3 in its actor shell: `broker::shell::serve` on a `MemoryBus`,
//! the purchases' frames (signed beforehand, [`broker::purchase_frames`]) sent as requests
//! on the broker's subject with [`IN_FLIGHT`] outstanding, each awaiting its reply. What
//! this adds to the node's figure ([`broker`]) is the shell's own work: the gateway, the
//! actor's queue and its batching (up to `shared::runtime::MAX_BATCH` frames a commit), the
//! replies on the bus (architecture.md "Each node").
//!
//! Each purchase sends step 1 (`PurchaseInitiated`) and, once it is acknowledged, step 5
//! (`PurchaseCompleted`), as the customer and the merchant do (protocol.md 6.3); the
//! purchases run [`IN_FLIGHT`] at a time, so that as many requests are outstanding. Every
//! reply must be the broker's `Ack`, and once the shell is stopped the log must have grown
//! by one event a frame and the books must hold, else the run fails.

use std::time::{Duration, Instant};

use ::broker::node::BrokerNode;
use bytes::Bytes;
use futures::StreamExt as _;
use shared::bus::{Bus as _, MemoryBus, Subjects};
use shared::runtime::{Call, system_clock};
use shared::wire::{Frame, Label};

use super::BenchError;
use super::broker;
use super::figures::Figure;
use super::setup::Site;

/// The ratio of the broker's 6.3 throughput through its shell to its bound it must reach.
pub const TARGET: f64 = 0.6;
/// Requests outstanding at once.
pub const IN_FLIGHT: usize = 64;
/// Requests outstanding at once in the open-load figure: twice the shell's largest batch,
/// so that requests wait in the node's queue while a batch commits, as under many
/// customers, and the node opens them during the commit (`shared::node::Driver::serve`).
/// At [`IN_FLIGHT`] every outstanding request is in the batch being committed.
pub const OPEN_LOAD: usize = 2 * shared::runtime::MAX_BATCH;
/// How long a request may wait for its reply before the run fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The broker's log length, read on its actor between batches.
///
/// # Errors
/// The log's; [`BenchError::Setup`] if the actor is gone.
pub async fn broker_log_len(running: &::broker::shell::Running) -> Result<u64, BenchError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    running
        .addr
        .do_send(Call(Box::new(move |node: &mut BrokerNode, _| {
            let _ = tx.send(node.log().len());
        })));
    Ok(rx
        .await
        .map_err(|_| BenchError::Setup("the broker's actor is gone".into()))??)
}

/// Sends `frame` to the broker and checks that its reply is an `Ack`; how long it took.
async fn acknowledged(
    bus: &MemoryBus,
    subjects: &Subjects,
    frame: &[u8],
) -> Result<Duration, BenchError> {
    let start = Instant::now();
    let reply = bus
        .request(&subjects.broker(), Bytes::copy_from_slice(frame), TIMEOUT)
        .await?;
    let took = start.elapsed();
    let label = Frame::header_of(&reply)?.label;
    if label == Label::Ack {
        Ok(took)
    } else {
        Err(BenchError::Setup(format!(
            "the broker's shell answered a purchase with {label:?}, not Ack"
        )))
    }
}

/// What sending a run of purchases through the shell took.
#[derive(Clone, Debug)]
pub struct Run {
    /// From the first request sent to the last reply.
    pub elapsed: Duration,
    /// Each request's time from sent to answered, in the order answered.
    pub requests: Vec<Duration>,
}

/// Sends `frames` (whole purchases, [`broker::purchase_frames`]) through the broker's
/// shell, `in_flight` purchases at a time, each frame a request awaiting its `Ack`. The
/// site's broker is started in its shell, as it is (with its replica, if one is attached:
/// the HA figures, [`super::ha`]), and put back into the site when it stops.
///
/// # Errors
/// A request not acknowledged; the log or the books after.
pub async fn run(
    site: Site,
    frames: &[Vec<u8>],
    in_flight: usize,
) -> Result<(Site, Run), BenchError> {
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let (node, merchant_node, parts) = site.into_nodes();
    let before = node.log().len()?;
    let running = ::broker::shell::serve(node, bus.clone(), subjects.clone(), system_clock).await?;
    let start = Instant::now();
    let sent: Vec<Result<Vec<Duration>, BenchError>> = futures::stream::iter(frames.chunks(2))
        .map(|purchase| {
            let (bus, subjects) = (&bus, &subjects);
            async move {
                let mut took = Vec::with_capacity(purchase.len());
                for frame in purchase {
                    took.push(acknowledged(bus, subjects, frame).await?);
                }
                Ok(took)
            }
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    let elapsed = start.elapsed();
    let node = running
        .stop()
        .await
        .ok_or_else(|| BenchError::Setup("the broker's actor is gone".into()))?;
    let site = parts.with_nodes(node, merchant_node);
    let mut requests = Vec::with_capacity(frames.len());
    for took in sent {
        requests.extend(took?);
    }
    broker::check_recorded(&site, before, frames.len())?;
    Ok((site, Run { elapsed, requests }))
}

/// The figure of `suite`: `purchases` purchases through the broker's shell with
/// `in_flight` outstanding, in purchases/s against `bound` (the broker's bound of the same
/// run); the target is [`IN_FLIGHT`]'s. The site's broker is started in its shell, and put
/// back into the site when it stops.
///
/// # Errors
/// As [`broker::purchase_frames`] and [`run`].
pub async fn figure(
    site: Site,
    suite: shared::Suite,
    purchases: usize,
    in_flight: usize,
    bound: f64,
) -> Result<(Site, Figure), BenchError> {
    let frames = broker::purchase_frames(&site, purchases)?;
    let (site, run) = run(site, &frames, in_flight).await?;
    let figure = Figure::bounded(
        format!("{suite} broker 6.3 shell {in_flight} in flight"),
        purchases as f64 / run.elapsed.as_secs_f64(),
        "purchases/s",
        bound,
        (in_flight == IN_FLIGHT).then_some(TARGET),
    );
    Ok((site, figure))
}
