//! The broker's high-availability mode (docs/adr/0017; `[ha]`, README "Run it highly
//! available"): several brokers of one deployment, one JetStream cluster, one writer.
//!
//! Each broker runs rounds of the same three steps until the signal:
//!
//! 1. **Reconcile** its file with the replicated log (`shared::daemon::ha::stream`). A file
//!    that is a prefix of the stream is kept; one that extends it (a single-process
//!    broker's log moving to HA, or its own tail that a crash or a fence left unreplicated)
//!    is kept only if this broker takes the lease now, and then published before it
//!    serves; one that disagrees with the stream, or extends it while another holds the
//!    lease, is set aside (renamed, never deleted: `broker.redb.set-aside-<unix>-<head>`)
//!    and the file is rebuilt from the stream. No event is ever served that is not in the
//!    stream.
//! 2. **Stand by**: follow the stream into the file (`BrokerNode::follow`: the chain, the
//!    tables and the secrets table as the leader's), and try to take the lease every
//!    third of its TTL. The admin listener says `standby`.
//! 3. **Serve** once the lease is taken: read to the stream's end, attach the replica (each
//!    group commit is on a quorum before its replies leave), start the gateway and the
//!    timers (deadlines, escrows and lapses run only on the holder, from the log). The
//!    broker serves until the signal (a graceful stop: the last batches replicate, the
//!    lease is released so a standby takes it at its next attempt) or until it is fenced:
//!    the lease could not be renewed in time, or the stream holds another writer's event.
//!    Fenced, it stops serving at once, closes the file and starts the next round.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use shared::daemon::ha::{self, Fence, HaError, HaSettings, Lease, LeaseKeeper, ReplicatedLog};
use shared::daemon::ha::{StreamReplica, stream::QUIET};
use shared::daemon::{Admin, Shutdown};
use shared::events::{Replica, ReplicaRow};
use shared::ids::Uid;
use shared::runtime::system_clock;

use crate::config::BrokerConfig;
use crate::daemon::{DaemonError, Serving, close, connect, open_serving_node};
use crate::node::{BrokerNode, NODE_KIND};

/// The most events the standby appends, or a new holder publishes, in one commit.
pub const CHUNK: usize = 1024;

/// The pause before the cluster is asked again after a failure.
pub const RETRY: Duration = Duration::from_secs(1);

/// Runs the broker in HA mode until the signal (see the module doc).
///
/// # Errors
/// A start-up refusal, a replicated log this file cannot follow, or a failed close.
pub async fn run(
    config: &BrokerConfig,
    settings: &HaSettings,
    admin: Option<&Admin>,
    shutdown: impl std::future::Future<Output = Shutdown>,
) -> Result<Shutdown, DaemonError> {
    tokio::pin!(shutdown);
    let mut bus = None;
    loop {
        if let Some(admin) = admin {
            admin.standby();
        }
        let node = open_serving_node(config)?;
        let uid = node.uid();
        let check = root_check(config)?;
        let opened = tokio::select! {
            signal = &mut shutdown => {
                close(Some(node))?;
                return Ok(signal);
            }
            opened = open_cluster(config, settings, uid, &check) => opened,
        };
        let (log, lease) = opened;
        let fence = Arc::new(Fence::default());
        let round = round(node, config, &log, &lease, &fence, settings, &mut shutdown).await?;
        let (node, keeper) = match round {
            Round::Stopped(node, signal) => {
                close(Some(node))?;
                return Ok(signal);
            }
            Round::Again(node) => {
                close(node)?;
                continue;
            }
            Round::Lead(node, keeper) => (node, keeper),
        };
        let bus = match &bus {
            Some(bus) => bus,
            None => bus.insert(connect(config, uid).await?),
        };
        let serving = Serving::start(node, config, bus, admin).await?;
        tracing::info!(instance = %settings.instance, "holding the lease: serving");
        tokio::select! {
            signal = &mut shutdown => {
                serving.finish(bus, signal).await?;
                keeper.release().await;
                return Ok(signal);
            }
            reason = fence.fenced() => {
                tracing::warn!(%reason, "stepping down: no longer serving");
                let node = serving.abandon().await;
                drop(keeper);
                close(node)?;
            }
        }
    }
}

/// How a round before serving ended.
enum Round {
    /// The lease is this broker's and the file holds the whole stream.
    Lead(BrokerNode, LeaseKeeper),
    /// The stream could not be read (the node, to close), or the file was set aside
    /// (`None`): start again.
    Again(Option<BrokerNode>),
    /// The signal came.
    Stopped(BrokerNode, Shutdown),
}

/// The broker's check value in the replicated log (`shared::daemon::ha::stream`): a hash
/// of its root key, so that a broker given another root key (whose scrip certificates
/// the others would refuse) never follows nor extends the deployment's log.
///
/// # Errors
/// [`DaemonError::Key`] if the root key cannot be read.
fn root_check(config: &BrokerConfig) -> Result<String, DaemonError> {
    let root = shared::daemon::load_or_create_root_key(&config.node.root_key)?;
    // SHA-256 over the parts, so that no copy of the key is made to hash it.
    let digest = shared::Suite::Modern.hash(&[b"peerscrip/v1/root-key-check", root.expose()]);
    Ok(hex::encode(&digest[..16]))
}

/// Reaches the cluster, trying again every [`RETRY`] while it does not answer (it may be
/// starting, or without quorum).
async fn open_cluster(
    config: &BrokerConfig,
    settings: &HaSettings,
    uid: Uid,
    check: &str,
) -> (ReplicatedLog, Lease) {
    let mut options = config.node.nats_options("peerscrip-broker ha");
    options.inbox_prefix = Some(config.node.subjects.inbox_prefix(&uid));
    loop {
        let opened = ha::open(
            &config.node.nats_url,
            &options,
            settings,
            NODE_KIND,
            uid,
            check.to_owned(),
        );
        match opened.await {
            Ok(opened) => return opened,
            Err(e) => {
                tracing::warn!(error = %e, "the cluster does not serve the replicated log yet; trying again");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Steps 1 and 2 of the module doc: reconcile, then stand by until the lease is taken and
/// the file holds the stream, or the signal.
async fn round(
    node: BrokerNode,
    config: &BrokerConfig,
    log: &ReplicatedLog,
    lease: &Lease,
    fence: &Arc<Fence>,
    settings: &HaSettings,
    shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = Shutdown>>,
) -> Result<Round, DaemonError> {
    let head = head_of(&node);
    let last = match log.last().await {
        Ok(last) => last,
        Err(e) => return again_or_stop(node, &e).await,
    };
    match agreement(&node, log, head.min(last)).await {
        Ok(true) => {}
        Ok(false) => return set_aside(node, config, head, "it disagrees with the replicated log"),
        Err(e) => return again_or_stop(node, &e).await,
    }
    if head > last {
        // Ahead of the stream: this tail is served only by the holder, once published.
        return match lease.try_take(fence.clone()).await {
            Ok(Some(keeper)) => lead(node, log, keeper, fence, settings).await,
            Ok(None) => set_aside(node, config, head, "another broker holds the lease"),
            Err(e) => again_or_stop(node, &e).await,
        };
    }
    tracing::info!(head, last, instance = %settings.instance, "standing by: following the replicated log");
    // A standby does its job (systemd's unit is up), and ordering after it means nothing
    // more: the holder, wherever it runs, serves the subject.
    shared::daemon::notify::ready("standing by");
    let mut node = node;
    let mut rows = match log.rows_from(head_of(&node) + 1).await {
        Ok(rows) => Box::pin(rows),
        Err(e) => return again_or_stop(node, &e).await,
    };
    let mut campaign = tokio::time::interval(settings.renew_every());
    campaign.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            signal = shutdown.as_mut() => return Ok(Round::Stopped(node, signal)),
            row = rows.next() => {
                let first = match row {
                    Some(Ok(row)) => row,
                    Some(Err(e)) => return again_or_stop(node, &e).await,
                    None => return again(node, &"the stream's consumer ended").await,
                };
                let mut batch = vec![first];
                while batch.len() < CHUNK {
                    match rows.next().now_or_never() {
                        Some(Some(Ok(row))) => batch.push(row),
                        _ => break,
                    }
                }
                node = follow(node, batch).await?;
            }
            _ = campaign.tick() => match lease.try_take(fence.clone()).await {
                Ok(Some(keeper)) => {
                    drop(rows);
                    return lead(node, log, keeper, fence, settings).await;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not ask for the lease; trying again"),
            },
        }
    }
}

/// Step 3's start: with the lease, read the stream to its end (or publish the file's tail
/// the stream lacks), then attach the replica.
async fn lead(
    mut node: BrokerNode,
    log: &ReplicatedLog,
    keeper: LeaseKeeper,
    fence: &Arc<Fence>,
    settings: &HaSettings,
) -> Result<Round, DaemonError> {
    let replica = Arc::new(StreamReplica::spawn(
        log.clone(),
        fence.clone(),
        keeper.validity(),
        settings.request_timeout(),
    ));
    let last = match log.last().await {
        Ok(last) => last,
        Err(e) => return again_or_stop(node, &e).await,
    };
    let head = head_of(&node);
    if head < last {
        let mut rows = match log.rows_from(head + 1).await {
            Ok(rows) => Box::pin(rows),
            Err(e) => return again_or_stop(node, &e).await,
        };
        while head_of(&node) < last {
            let mut batch = Vec::new();
            while batch.len() < CHUNK && head_of(&node) + (batch.len() as u64) < last {
                match tokio::time::timeout(QUIET.max(settings.request_timeout()), rows.next()).await
                {
                    Ok(Some(Ok(row))) => batch.push(row),
                    Ok(Some(Err(e))) => return again_or_stop(node, &e).await,
                    Ok(None) | Err(_) => {
                        return again(node, &"the stream did not deliver its end in time").await;
                    }
                }
            }
            node = follow(node, batch).await?;
        }
    } else if head > last {
        tracing::info!(
            head,
            last,
            "publishing the file's tail the replicated log lacks"
        );
        let (back, published) = publish_tail(node, replica.clone(), last).await;
        node = back;
        if let Err(e) = published {
            return again(node, &e).await;
        }
    }
    tracing::info!(
        head = head_of(&node),
        "the file holds the whole replicated log"
    );
    node.set_replica(Some(replica));
    Ok(Round::Lead(node, keeper))
}

/// Publishes the file's events after `last` through `replica`, [`CHUNK`] at a time, on
/// the blocking pool (a replica blocks the caller). Public for `peerscrip-ops bench`,
/// whose HA figures bring a stream up to the broker's file before each HA part.
pub async fn publish_tail(
    node: BrokerNode,
    replica: Arc<StreamReplica>,
    last: u64,
) -> (BrokerNode, Result<(), String>) {
    let joined = tokio::task::spawn_blocking(move || {
        let published = (|| {
            let mut next = last + 1;
            loop {
                let rows: Vec<ReplicaRow> = node
                    .log()
                    .stored_from(next)
                    .map_err(|e| e.to_string())?
                    .take(CHUNK)
                    .map(|row| {
                        row.map(|(event, bytes)| ReplicaRow {
                            seq: event.seq,
                            bytes,
                            annex: None,
                        })
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?;
                let Some(end) = rows.last().map(|r| r.seq) else {
                    return Ok(());
                };
                let rows = node.annexed(rows).map_err(|e| e.to_string())?;
                replica.replicate(&rows).map_err(|e| e.to_string())?;
                next = end + 1;
            }
        })();
        (node, published)
    })
    .await;
    match joined {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Whether the file's event `seq` is the stream's, byte for byte (0: trivially).
async fn agreement(node: &BrokerNode, log: &ReplicatedLog, seq: u64) -> Result<bool, HaError> {
    if seq == 0 {
        return Ok(true);
    }
    let local = node
        .log()
        .stored_from(seq)
        .ok()
        .and_then(|mut rows| rows.next())
        .and_then(Result::ok)
        .map(|(_, bytes)| bytes);
    Ok(local.is_some() && log.payload(seq).await? == local)
}

/// Sets the file aside and starts the round again on an empty one (see the module doc).
fn set_aside(
    node: BrokerNode,
    config: &BrokerConfig,
    head: u64,
    why: &str,
) -> Result<Round, DaemonError> {
    let path = config.log_path();
    let unix = system_clock().get();
    let aside = path.with_extension(format!("redb.set-aside-{unix}-{head}"));
    tracing::warn!(
        head,
        aside = %aside.display(),
        "the file is set aside and rebuilt from the replicated log: {why}"
    );
    close(Some(node))?;
    std::fs::rename(&path, &aside).map_err(|e| {
        DaemonError::Ha(format!(
            "cannot set {} aside as {}: {e}",
            path.display(),
            aside.display()
        ))
    })?;
    Ok(Round::Again(None))
}

/// Logs why the round ends early and waits [`RETRY`] before the next: the cluster did
/// not answer. A stream that holds what this broker must not follow
/// ([`HaError::Stream`]: another root key, a gap, a foreign message) ends the daemon
/// instead, with the reason: retrying would not change it.
async fn again(node: BrokerNode, why: &dyn std::fmt::Display) -> Result<Round, DaemonError> {
    tracing::warn!(reason = %why, "the replicated log could not be read; starting again");
    tokio::time::sleep(RETRY).await;
    Ok(Round::Again(Some(node)))
}

/// [`again`] for a cluster that did not answer, the end for a stream this broker must
/// not follow (see [`again`]).
async fn again_or_stop(node: BrokerNode, e: &HaError) -> Result<Round, DaemonError> {
    match e {
        HaError::Stream { .. } => {
            close(Some(node))?;
            Err(DaemonError::Ha(e.to_string()))
        }
        HaError::Nats { .. } => again(node, e).await,
    }
}

/// Appends `rows` to the node's file on the blocking pool ([`BrokerNode::follow`]).
async fn follow(node: BrokerNode, rows: Vec<ReplicaRow>) -> Result<BrokerNode, DaemonError> {
    let joined = tokio::task::spawn_blocking(move || {
        let mut node = node;
        let followed = node.follow(&rows, system_clock());
        (node, followed)
    })
    .await;
    let (node, followed) = match joined {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    followed.map_err(DaemonError::Follow)?;
    Ok(node)
}

fn head_of(node: &BrokerNode) -> u64 {
    node.log().head().ok().flatten().map_or(0, |(seq, _)| seq)
}
