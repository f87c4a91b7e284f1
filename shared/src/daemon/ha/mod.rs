//! High availability on a JetStream cluster (docs/adr/0017): what a node needs to keep its
//! log on a quorum of servers and to serve only while it holds the deployment's lease. The
//! broker's HA mode (`broker::ha`) is built from these parts:
//!
//! - [`stream`]: the replicated log, a stream of its own per node (R3 by default): one
//!   message per event, its payload the event's stored bytes, read back in order;
//! - [`replica`]: [`StreamReplica`], the [`crate::events::Replica`] that publishes each
//!   group commit to that stream, fenced by the expected last sequence, and makes the
//!   commit wait for the acknowledgements;
//! - [`lease`]: the one writer, a key in a KV bucket with a TTL, taken with `create` and
//!   renewed by revision; a holder that cannot renew in time is fenced ([`Fence`]).
//!
//! Nothing here decides what a node does: the node's daemon tails the stream while
//! standing by, takes the lease, attaches the replica and serves, and steps down when the
//! [`Fence`] says so.

pub mod lease;
pub mod replica;
pub mod stream;

use std::time::Duration;

use tokio::sync::watch;

pub use lease::{Lease, LeaseKeeper, Validity};
pub use replica::StreamReplica;
pub use stream::ReplicatedLog;

/// The default stream of a broker's replicated log.
pub const DEFAULT_STREAM: &str = "PEERSCRIP_BROKER_LOG";
/// The default subject prefix of replicated logs: `<prefix>.<node kind>.<uid>`, beside the
/// deployment's own subjects and the export's (`peerscrip.events`), never among them.
pub const DEFAULT_SUBJECT_PREFIX: &str = "peerscrip.ha";
/// The default KV bucket of the lease.
pub const DEFAULT_BUCKET: &str = "peerscrip_lease";
/// The default lease TTL: how long a deployment may be without a writer after its holder
/// dies, and how long a frozen holder may be waited out.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// The shortest lease TTL accepted: below it, renewals (every third of it) would compete
/// with the commits for the servers.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(2);
/// The stream's duplicate window (`Nats-Msg-Id`): a retried publish is stored once if
/// it comes within this. A holder retries only while its lease is valid, so the window
/// must outlast the longest lease ([`MAX_LEASE_TTL`]).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The longest lease TTL accepted (see [`DUPLICATE_WINDOW`]).
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(60);

/// The `[ha]` settings, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaSettings {
    /// The stream of the node's replicated log (created if missing).
    pub stream: String,
    /// The subject prefix of the replicated log: `<prefix>.<node kind>.<uid>`.
    pub subject_prefix: String,
    /// The KV bucket of the lease (created if missing).
    pub bucket: String,
    /// How long the lease lives without a renewal.
    pub lease_ttl: Duration,
    /// The replicas of the stream and the bucket (3 in production: a quorum of 2 survives
    /// one server; 1 only for a single-server trial).
    pub replicas: usize,
    /// Who this instance is, in the lease's value and the logs (default `host:pid`).
    pub instance: String,
}

impl HaSettings {
    /// The settings with every default and `instance` as given.
    #[must_use]
    pub fn with_defaults(instance: String) -> HaSettings {
        HaSettings {
            stream: DEFAULT_STREAM.to_owned(),
            subject_prefix: DEFAULT_SUBJECT_PREFIX.to_owned(),
            bucket: DEFAULT_BUCKET.to_owned(),
            lease_ttl: DEFAULT_LEASE_TTL,
            replicas: 3,
            instance,
        }
    }

    /// How often the holder renews the lease: a third of its TTL, so two renewals may be
    /// lost before it lapses.
    #[must_use]
    pub fn renew_every(&self) -> Duration {
        self.lease_ttl / 3
    }

    /// How long a JetStream request (a publish's acknowledgement, a renewal) may take
    /// before it is tried again: a third of the TTL, at most 2 s.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        (self.lease_ttl / 3).min(Duration::from_secs(2))
    }
}

/// Connects to the cluster at `nats_url` (a comma-separated list of servers is best: the
/// client starts on any that answers) on a connection of its own, so that the replicated
/// log's publishes never queue behind the node's replies, and opens the node's
/// [`ReplicatedLog`] (whose messages carry `check`, [`ReplicatedLog::open`]) and the
/// deployment's [`Lease`].
///
/// # Errors
/// [`HaError`]: the cluster is unreachable, or the stream or the bucket cannot serve.
pub async fn open(
    nats_url: &str,
    options: &crate::bus::NatsOptions,
    settings: &HaSettings,
    node_kind: &str,
    uid: crate::ids::Uid,
    check: String,
) -> Result<(ReplicatedLog, Lease), HaError> {
    let client = crate::bus::NatsBus::client(nats_url, options)
        .await
        .map_err(|e| HaError::nats("connecting to the cluster", e))?;
    let mut js = async_nats::jetstream::new(client);
    js.set_timeout(settings.request_timeout());
    let log = ReplicatedLog::open(js.clone(), settings, node_kind, uid, check).await?;
    let lease = Lease::open(&js, settings, node_kind).await?;
    Ok((log, lease))
}

/// Why HA could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum HaError {
    /// A JetStream request failed (the cluster is unreachable or without quorum): worth
    /// retrying.
    #[error("{what}: {source}")]
    Nats {
        /// What was being done.
        what: &'static str,
        /// Why.
        source: async_nats::Error,
    },
    /// The stream is not one a replicated log can live in (shared with other subjects,
    /// messages deleted), or holds what is not this node's log.
    #[error("the stream {stream}: {reason}")]
    Stream {
        /// The stream.
        stream: String,
        /// What is wrong.
        reason: String,
    },
}

impl HaError {
    pub(crate) fn nats(what: &'static str, source: impl Into<async_nats::Error>) -> HaError {
        HaError::Nats {
            what,
            source: source.into(),
        }
    }
}

/// Whether the node may go on writing: clear while it holds the lease and its appends are
/// taken; set, with the reason, once either fails, for good (the node then steps down).
/// Shared by the lease keeper, the replica and the daemon that waits on it.
#[derive(Debug)]
pub struct Fence {
    reason: watch::Sender<Option<String>>,
}

impl Default for Fence {
    fn default() -> Self {
        Fence {
            reason: watch::Sender::new(None),
        }
    }
}

impl Fence {
    /// Fences the node with `reason` (the first reason stays).
    pub fn fence(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.reason.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            tracing::warn!(%reason, "fenced: this node stops writing");
            *current = Some(reason);
            true
        });
    }

    /// Why the node is fenced, if it is.
    #[must_use]
    pub fn reason(&self) -> Option<String> {
        self.reason.borrow().clone()
    }

    /// Completes once the node is fenced, with the reason.
    pub async fn fenced(&self) -> String {
        let mut rx = self.reason.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            // The sender lives in `self`, so it cannot be dropped while this waits.
            Err(_) => String::new(),
        }
    }
}
