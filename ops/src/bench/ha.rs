//! The broker in high-availability mode against the single process, in the same run on the
//! same machine (docs/adr/0017): what replicating each group commit to a stream
//! of three replicas costs the broker's 6.3.
//!
//! The broker records 6.3 through its actor shell exactly as [`shell`] does (the purchases'
//! frames signed beforehand, each a request awaiting its `Ack` on the in-memory bus), once
//! with a [`StreamReplica`] attached and once without. In HA mode each group commit is
//! published to the broker's stream (R3) on a cluster of three local `nats-server`s with
//! `sync_interval: always` ([`NatsCluster`]) and its replies wait for every PubAck: on
//! disk on a quorum before anyone is answered, as ADR 0017 decides. The broker holds the
//! deployment's lease ([`ha::Lease`]) for the whole measurement, renewed by its keeper as
//! in production; the bus the requests travel on is the same in both modes, so that the
//! difference is the replication alone.
//!
//! Two figures, each against the single process measured beside it, neither with a
//! target (ADR 0017 sets none: the figures say what HA costs, not whether it may):
//!
//! - throughput, [`IN_FLIGHT`] purchases outstanding: HA purchases/s, bound the single
//!   process's;
//! - latency, one request at a time: HA p50 in ms, bound the single process's p50.
//!
//! The two modes take turns part by part (`rounds` parts each, the first mode of a round
//! alternating), so that a drifting disk weighs on both alike. Before each HA part the
//! stream is brought up to the broker's file (the single parts' events, published as a
//! new holder publishes a tail: `broker::ha::publish_tail`, not timed), since the stream's
//! sequences are the log's. After each HA part the stream must end where the file does and
//! the node must not be fenced; every frame must be acknowledged and recorded, else the run
//! fails.
//!
//! Without the cluster's binary (nats-server 2.10 or later, [`NatsCluster::locate`]) the
//! figures are skipped with a line on stderr, as the end-to-end ones are without
//! `nats-server` ([`super::nats`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::Suite;
use shared::bus::NatsOptions;
use shared::daemon::ha::{self, Fence, HaSettings, LeaseKeeper, ReplicatedLog, StreamReplica};

use super::BenchError;
use super::broker::{self, PRICE};
use super::figures::Figure;
use super::nats::{CLUSTER_BINARY_ENV, NatsCluster, percentile};
use super::setup::{self, Site};
use super::shell::{self, IN_FLIGHT};

/// Purchases in each mode before the counted ones, one at a time: the stream's first
/// publishes and the connections' first use are not what the figures are about.
pub const WARMUP: usize = 5;
/// How long the cluster may take to elect its JetStream leader and serve the stream and
/// the lease.
const WAIT: Duration = Duration::from_secs(30);
/// The pause between two attempts at reaching the cluster while it starts.
const RETRY: Duration = Duration::from_millis(250);

/// Which broker a part runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The replica attached: each commit on the R3 stream before its replies.
    Ha,
    /// redb only, the default deployment.
    Single,
}

/// The replicated log the HA parts commit to, and the lease that lets them.
struct Replicated {
    log: ReplicatedLog,
    replica: Arc<StreamReplica>,
    fence: Arc<Fence>,
    /// Renews the lease while the measurement runs; dropped before the cluster.
    _keeper: LeaseKeeper,
    /// Last, so that the servers are killed once the clients are gone (fields drop in
    /// order).
    _cluster: NatsCluster,
}

impl Replicated {
    /// Opens the broker's stream and takes the lease on `cluster`, trying again while the
    /// cluster elects its leader (up to [`WAIT`]).
    async fn open(cluster: NatsCluster, site: &Site) -> Result<Replicated, BenchError> {
        let settings = HaSettings::with_defaults(format!("bench-{}", std::process::id()));
        let options = NatsOptions {
            name: Some("bench-ha".to_owned()),
            ..NatsOptions::default()
        };
        let fence = Arc::new(Fence::default());
        let url = cluster.url();
        let started = Instant::now();
        let (log, keeper) = loop {
            match open_once(&url, &options, &settings, site, &fence).await {
                Ok(opened) => break opened,
                Err(e) if started.elapsed() > WAIT => return Err(e),
                Err(_) => tokio::time::sleep(RETRY).await,
            }
        };
        let replica = Arc::new(StreamReplica::spawn(
            log.clone(),
            fence.clone(),
            keeper.validity(),
            settings.request_timeout(),
        ));
        Ok(Replicated {
            log,
            replica,
            fence,
            _keeper: keeper,
            _cluster: cluster,
        })
    }

    /// The site with the stream brought up to its broker's file and the replica attached.
    async fn attach(&self, site: Site) -> Result<Site, BenchError> {
        let last = self.log.last().await?;
        let (node, merchant_node, parts) = site.into_nodes();
        let (mut node, published) =
            ::broker::ha::publish_tail(node, self.replica.clone(), last).await;
        published.map_err(|e| {
            BenchError::Setup(format!("publishing the broker's log to the stream: {e}"))
        })?;
        node.set_replica(Some(self.replica.clone()));
        Ok(parts.with_nodes(node, merchant_node))
    }

    /// Checks that the node was not fenced and that the stream ends where its file does.
    async fn check(&self, site: &Site) -> Result<(), BenchError> {
        if let Some(reason) = self.fence.reason() {
            return Err(BenchError::Setup(format!(
                "the broker in HA mode was fenced: {reason}"
            )));
        }
        let stream = self.log.last().await?;
        let file = site.broker.log().head()?.map_or(0, |(seq, _)| seq);
        if stream == file {
            Ok(())
        } else {
            Err(BenchError::Setup(format!(
                "the stream ends at event {stream}, the broker's file at {file}"
            )))
        }
    }
}

/// One attempt at opening the broker's stream on the cluster at `url` and taking the
/// lease.
async fn open_once(
    url: &str,
    options: &NatsOptions,
    settings: &HaSettings,
    site: &Site,
    fence: &Arc<Fence>,
) -> Result<(ReplicatedLog, LeaseKeeper), BenchError> {
    let (log, lease) = ha::open(
        url,
        options,
        settings,
        ::broker::node::NODE_KIND,
        site.broker.uid(),
        "peerscrip-bench".to_owned(),
    )
    .await?;
    match lease.try_take(fence.clone()).await? {
        Some(keeper) => Ok((log, keeper)),
        // A grant whose answer was lost holds the key until its TTL: the caller waits.
        None => Err(BenchError::Setup(
            "the lease of the bench's own cluster is held".into(),
        )),
    }
}

/// What one mode's parts took in all.
#[derive(Debug, Default)]
struct Tally {
    purchases: usize,
    elapsed: Duration,
    /// Every request's time, sorted only when read.
    requests: Vec<Duration>,
}

impl Tally {
    fn rate(&self) -> f64 {
        self.purchases as f64 / self.elapsed.as_secs_f64()
    }

    /// The requests' p50 in ms.
    fn p50_ms(&self) -> f64 {
        let mut ms: Vec<f64> = self
            .requests
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        percentile(&ms, 50.0)
    }
}

/// `n` split into up to `rounds` parts, none empty.
fn parts(n: usize, rounds: usize) -> Vec<usize> {
    let rounds = rounds.clamp(1, n.max(1));
    (0..rounds)
        .map(|i| n / rounds + usize::from(i < n % rounds))
        .filter(|&p| p > 0)
        .collect()
}

/// Runs `purchases` purchases in each mode, `in_flight` at a time, the modes taking turns
/// part by part, the frames taken in order from `frames`; what each mode took.
async fn taking_turns(
    mut site: Site,
    replicated: &Replicated,
    frames: &mut std::slice::Chunks<'_, Vec<u8>>,
    purchases: usize,
    in_flight: usize,
    rounds: usize,
) -> Result<(Site, Tally, Tally), BenchError> {
    let (mut ha, mut single) = (Tally::default(), Tally::default());
    for (round, n) in parts(purchases, rounds).into_iter().enumerate() {
        let order = if round % 2 == 0 {
            [Mode::Ha, Mode::Single]
        } else {
            [Mode::Single, Mode::Ha]
        };
        for mode in order {
            let part: Vec<Vec<u8>> = frames.by_ref().take(n).flatten().cloned().collect();
            if part.len() != 2 * n {
                return Err(BenchError::Setup("fewer frames signed than parts".into()));
            }
            let (back, run) = one_part(site, replicated, mode, &part, in_flight).await?;
            site = back;
            let tally = match mode {
                Mode::Ha => &mut ha,
                Mode::Single => &mut single,
            };
            tally.purchases += n;
            tally.elapsed += run.elapsed;
            tally.requests.extend(run.requests);
        }
    }
    Ok((site, ha, single))
}

/// One part of one mode through the shell; the replica is detached again after.
async fn one_part(
    site: Site,
    replicated: &Replicated,
    mode: Mode,
    frames: &[Vec<u8>],
    in_flight: usize,
) -> Result<(Site, shell::Run), BenchError> {
    match mode {
        Mode::Single => shell::run(site, frames, in_flight).await,
        Mode::Ha => {
            let site = replicated.attach(site).await?;
            let (mut site, run) = shell::run(site, frames, in_flight).await?;
            site.broker.set_replica(None);
            replicated.check(&site).await?;
            Ok((site, run))
        }
    }
}

/// The HA figures of `suite` (see the module doc): `throughput` purchases in each mode
/// with [`IN_FLIGHT`] outstanding, `latency` purchases in each mode one request at a time,
/// each in `rounds` parts; `None` when the cluster's binary is not installed (said on
/// stderr).
///
/// # Errors
/// The cluster, setup, a request not acknowledged or not recorded, a stream that does not
/// hold the broker's log, the books after.
pub async fn figures(
    suite: Suite,
    throughput: usize,
    latency: usize,
    rounds: usize,
) -> Result<Option<Vec<Figure>>, BenchError> {
    let Some(binary) = NatsCluster::locate() else {
        eprintln!(
            "bench: no nats-server 2.10 or later for the cluster at {} (ops/test-all.sh \
             installs it; or set {CLUSTER_BINARY_ENV}); skipping the HA figures ({suite} \
             broker 6.3 shell {IN_FLIGHT} in flight ha, 1 in flight ha p50)",
            NatsCluster::binary().display()
        );
        return Ok(None);
    };
    let (throughput, latency) = (throughput.max(1), latency.max(1));
    let purchases = 2 * (WARMUP + throughput + latency);
    let float = u64::try_from(purchases)
        .unwrap_or(u64::MAX)
        .saturating_mul(PRICE);
    let site = setup::build(suite, float, 0).await?;
    // Every frame is signed before the lease is taken: signing holds the runtime's thread,
    // on which the lease keeper renews.
    let frames = broker::purchase_frames(&site, purchases)?;
    let mut purchase_frames = frames.chunks(2);
    let cluster = NatsCluster::start(&binary)?;
    let replicated = Replicated::open(cluster, &site).await?;
    let (site, _, _) = taking_turns(site, &replicated, &mut purchase_frames, WARMUP, 1, 1).await?;
    let (site, ha, single) = taking_turns(
        site,
        &replicated,
        &mut purchase_frames,
        throughput,
        IN_FLIGHT,
        rounds,
    )
    .await?;
    let (site, ha_one, single_one) =
        taking_turns(site, &replicated, &mut purchase_frames, latency, 1, rounds).await?;
    drop(replicated);
    drop(site);
    Ok(Some(vec![
        Figure::bounded(
            format!("{suite} broker 6.3 shell {IN_FLIGHT} in flight ha"),
            ha.rate(),
            "purchases/s",
            single.rate(),
            None,
        ),
        Figure::lower_against(
            format!("{suite} broker 6.3 shell 1 in flight ha p50"),
            ha_one.p50_ms(),
            "ms",
            single_one.p50_ms(),
        ),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_cover_every_purchase_and_none_is_empty() {
        assert_eq!(parts(10, 4), [3, 3, 2, 2]);
        assert_eq!(parts(3, 4), [1, 1, 1]);
        assert_eq!(parts(1, 1), [1]);
        assert_eq!(parts(8, 8).iter().sum::<usize>(), 8);
    }
}
