//! The merchant selling 6.3 in its actor shell: `merchant::shell::serve` on a `MemoryBus`
//! beside the broker's shell, the customer's `PurchaseRequest`s (built as
//! [`merchant::request_frames`] builds them, each paying with a VendorScrip of its own)
//! sent as requests on the merchant's subject with [`IN_FLIGHT`] outstanding, each
//! awaiting its `PurchaseResponse`, in purchases/s against the merchant's bound. What this
//! adds to the node's figure is the shell's work: the gateway, the actor's batching, the
//! replies on the bus, and the reporter sending each purchase's `PurchaseCompleted` (6.3
//! step 5) to the broker and recording its `Ack`, which share the merchant's cores.
//!
//! Each purchase's step 1 (`PurchaseInitiated`) is recorded at the broker beforehand (not
//! timed), so that the reports the broker receives match, as an honest customer's do. The
//! reports of the node figure before ([`merchant::figure`]), which the reporter sends at
//! start, are settled before the timing. The time is until the last customer has its
//! answer; the run then waits (untimed) until the broker has recorded every report and the
//! merchant its `Ack`, and fails if a request was not answered with a
//! `PurchaseResponse`, a purchase not recorded at either node, or a book does not hold.

use std::time::{Duration, Instant};

use ::merchant::shell::Shelled;
use bytes::Bytes;
use futures::StreamExt as _;
use shared::bus::{Bus as _, MemoryBus, Subjects};
use shared::runtime::{Call, system_clock};

use super::BenchError;
use super::figures::Figure;
use super::merchant;
use super::setup::Site;
use super::shell::broker_log_len;

/// Requests outstanding at once.
pub const IN_FLIGHT: usize = 64;
/// How long a request may wait for its answer, and the reports to reach the broker.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How many reports the merchant still owes the broker, read on its actor between batches.
async fn owed_reports(running: &::merchant::shell::Running) -> Result<usize, BenchError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    running
        .addr
        .do_send(Call(Box::new(move |shelled: &mut Shelled, _| {
            let _ = tx.send(shelled.node.pending_reports().len());
        })));
    rx.await
        .map_err(|_| BenchError::Setup("the merchant's actor is gone".into()))
}

/// Waits until the broker's log holds `events` events and the merchant owes no report, or
/// [`TIMEOUT`] has passed; whether they did.
async fn settle(
    broker: &::broker::shell::Running,
    merchant: &::merchant::shell::Running,
    events: u64,
) -> Result<bool, BenchError> {
    let waiting = Instant::now();
    loop {
        if broker_log_len(broker).await? >= events && owed_reports(merchant).await? == 0 {
            return Ok(true);
        }
        if waiting.elapsed() > TIMEOUT {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The figure of `suite`: `purchases` purchases through the merchant's shell, in
/// purchases/s against `bound` (the merchant's bound of the same run). The site's nodes
/// serve in their shells and are put back into the site when they stop.
///
/// # Errors
/// As [`merchant::issue_scrip`], [`merchant::request_frames`] and
/// [`merchant::record_initiated`]; a
/// request not answered; a purchase not recorded; the books after.
pub async fn figure(
    mut site: Site,
    suite: shared::Suite,
    purchases: usize,
    bound: f64,
) -> Result<(Site, Figure), BenchError> {
    let scrip = merchant::issue_scrip(&mut site, purchases)?;
    let requests = merchant::request_frames(&site, &scrip)?;
    merchant::record_initiated(&mut site, &requests)?;
    // The reports the reporter sends at start: the node figure's ([`merchant::figure`]).
    let owed = site.merchant_node.pending_reports().len();

    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let to = subjects.merchant(&site.merchant.uid());
    let (broker_node, merchant_node, parts) = site.into_nodes();
    let broker_before = broker_node.log().len()?;
    let merchant_before = merchant_node.log().len()?;
    let broker_shell =
        ::broker::shell::serve(broker_node, bus.clone(), subjects.clone(), system_clock).await?;
    let merchant_shell = ::merchant::shell::serve(
        merchant_node,
        bus.clone(),
        subjects.clone(),
        system_clock,
        TIMEOUT,
    )
    .await?;
    // The node figure's reports, sent by the reporter at start, settled before the timing
    // so that their sending and `Ack`s do not weigh on it.
    let owed = owed as u64;
    if !settle(&broker_shell, &merchant_shell, broker_before + owed).await? {
        return Err(BenchError::Setup(format!(
            "the merchant's {owed} earlier reports were not all recorded within {TIMEOUT:?}"
        )));
    }
    let start = Instant::now();
    let answered: Vec<Result<(), BenchError>> = futures::stream::iter(&requests)
        .map(|(_, frame)| {
            let (bus, to) = (&bus, &to);
            async move {
                let reply = bus
                    .request(to, Bytes::copy_from_slice(frame), TIMEOUT)
                    .await?;
                merchant::check_response(&reply)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let elapsed = start.elapsed();
    // Every report recorded at the broker (one `PurchaseRecorded` each) and acknowledged at
    // the merchant, or the deadline.
    let expected = purchases as u64 + owed;
    // A timeout here is reported by the checks below, once the nodes are back.
    settle(&broker_shell, &merchant_shell, broker_before + expected).await?;
    let reported = broker_log_len(&broker_shell).await? - broker_before;
    let gone = |who: &str| BenchError::Setup(format!("the {who}'s actor is gone"));
    let merchant_node = merchant_shell
        .stop()
        .await
        .ok_or_else(|| gone("merchant"))?;
    let broker_node = broker_shell.stop().await.ok_or_else(|| gone("broker"))?;
    let site = parts.with_nodes(broker_node, merchant_node);
    answered.into_iter().collect::<Result<Vec<()>, _>>()?;
    if reported != expected {
        return Err(BenchError::NotRecorded {
            expected,
            events: reported,
        });
    }
    // One `PurchaseMade` each, and the `Ack`s of the reports recorded.
    let made = site.merchant_node.log().len()? - merchant_before;
    if made < purchases as u64 || !site.merchant_node.pending_reports().is_empty() {
        return Err(BenchError::Setup(format!(
            "the merchant recorded {made} events for {purchases} purchases, {} reports unacknowledged",
            site.merchant_node.pending_reports().len()
        )));
    }
    site.merchant_node
        .state()
        .check_books()
        .map_err(|e| BenchError::Ledger(format!("the merchant's: {e}")))?;
    if let Err(e) = site.broker.state().check_conserved() {
        return Err(BenchError::Ledger(e.to_string()));
    }
    let figure = Figure::bounded(
        format!("{suite} merchant 6.3 shell {IN_FLIGHT} in flight"),
        purchases as f64 / elapsed.as_secs_f64(),
        "purchases/s",
        bound,
        None,
    );
    Ok((site, figure))
}
