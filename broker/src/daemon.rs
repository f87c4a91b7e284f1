//! `peerscrip-broker` as a library function (architecture.md "Binaries and the
//! user's path"): [`run`] opens the broker's data directory, connects to NATS and serves
//! `<prefix>.broker` through `broker::shell` until SIGINT or SIGTERM, then stops
//! gracefully.
//!
//! Start-up refuses, with a message naming what to fix and before anything is served:
//! - a data directory recorded for another suite, or for another key's UID
//!   (`shared::daemon::identity`; every peer pinned the broker's UID, protocol.md
//!   section 1);
//! - a log whose hash chain does not verify, or whose tables differ from its replay
//!   (`BrokerNode::open`, section 8);
//! - a key file of the wrong suite or size, or a wrong passphrase.
//!
//! With `export_stream` set, an export task publishes every event the broker appends to
//! that JetStream stream, read through the node actor, resumed from the stream at each
//! start, never in the way of a reply (`shared::daemon::export`).
//!
//! Shutdown: the gateway unsubscribes, every request already taken is answered, the timer
//! stops, the last batch has committed (each batch commits before its replies leave), the
//! bus is flushed, the export catches up, and the file is closed
//! (`shell::Running::shutdown`).
//!
//! With `[admin] listen` set, the admin listener (`shared::daemon::admin`) serves
//! `/metrics`, `/healthz`, `/readyz` and the live view `/status` from the start; under
//! systemd the daemon says READY=1 once it serves and STOPPING=1 at the stop
//! (`shared::daemon::notify`).
//!
//! Reconnection is async-nats's: the client reconnects without limit and re-subscribes,
//! so the daemon outlives a NATS restart; a request that got no reply meanwhile is retried
//! by its sender with the same bodies and answered from the stored reply (section 7).

use shared::bus::{Bus, BusError, NatsBus};
use shared::daemon::export::{self, NodeLog};
use shared::daemon::{Admin, AdminError, IdentityError, KeyFileError, NodeIdentity, Shutdown};
use shared::ids::Uid;
use shared::runtime::{Screen, system_clock};

use crate::config::BrokerConfig;
use crate::node::{BrokerNode, NODE_KIND, NodeError, event_name};

/// Why the daemon could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A key file could not be used.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The data directory belongs to another suite, key or kind of node.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The data directory cannot be made private (protocol.md appendix E): a file, a shared
    /// directory, or another user's.
    #[error("the data directory cannot be made private: {0}")]
    DataDir(#[from] shared::private_dir::PrivateDirError),
    /// The broker's file could not be opened or verified (a corrupted log, another suite,
    /// held by another process).
    #[error("cannot open the broker's log {path}: {source}")]
    Open {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: NodeError,
    },
    /// NATS could not be reached or subscribed to at start.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The signal handlers could not be installed.
    #[error("cannot install the signal handlers: {0}")]
    Signal(#[source] std::io::Error),
    /// The configured operator key could not be read as a public key of the suite.
    #[error("cannot use the operator key {path}: {reason}")]
    OperatorKey {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The log could not be closed after the stop.
    #[error("closing the broker's log: {0}")]
    Close(#[source] NodeError),
    /// The admin listener could not start.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// High availability could not go on (docs/adr/0017).
    #[error("high availability: {0}")]
    Ha(String),
    /// The replicated log holds what this file cannot follow: another deployment's
    /// history, a damaged message (docs/adr/0017). The file is not changed.
    #[error("following the replicated log: {0}")]
    Follow(#[source] NodeError),
}

/// Runs the broker until SIGINT or SIGTERM (see the module doc). Must run inside an actix
/// system (`actix_rt::System`), which the binary provides.
///
/// # Errors
/// A start-up refusal ([`DaemonError`]); after a clean stop, `Ok` with the signal.
pub async fn run(config: BrokerConfig) -> Result<Shutdown, DaemonError> {
    let shutdown = shared::daemon::shutdown_signal().map_err(DaemonError::Signal)?;
    let node_settings = &config.node;
    shared::daemon::warn_of_suite(node_settings.suite);
    // First, so that /healthz answers (and /readyz says "starting") while the log replays.
    let admin = match &node_settings.admin {
        Some(settings) => Some(Admin::start(settings).await?),
        None => None,
    };
    let stopped = match &config.ha {
        Some(ha) => crate::ha::run(&config, ha, admin.as_ref(), shutdown).await,
        None => run_alone(&config, admin.as_ref(), shutdown).await,
    };
    if let Some(admin) = admin {
        admin.stop().await;
    }
    stopped
}

/// The single-process mode: the broker serves from its own file until the signal.
async fn run_alone(
    config: &BrokerConfig,
    admin: Option<&Admin>,
    shutdown: impl std::future::Future<Output = Shutdown>,
) -> Result<Shutdown, DaemonError> {
    let node = open_serving_node(config)?;
    let bus = connect(config, node.uid()).await?;
    let serving = Serving::start(node, config, &bus, admin).await?;
    let signal = shutdown.await;
    serving.finish(&bus, signal).await?;
    Ok(signal)
}

/// The broker's node opened as [`open_node`] does, with the operator's key if one is
/// configured, and its head logged.
///
/// # Errors
/// As [`open_node`]; [`DaemonError::OperatorKey`].
pub(crate) fn open_serving_node(config: &BrokerConfig) -> Result<BrokerNode, DaemonError> {
    let node = open_node(config)?;
    let node = match &config.operator_key {
        Some(path) => {
            let operator = operator_key(path, config.node.suite)?;
            tracing::info!(operator = %operator.uid(), "serving the operator's administration requests");
            node.with_operator(operator)
        }
        None => node,
    };
    let head = node.log().head().ok().flatten().map_or(0, |(seq, _)| seq);
    tracing::info!(
        uid = %node.uid(),
        suite = %config.node.suite,
        log = %config.log_path().display(),
        head,
        "broker log verified and replayed"
    );
    Ok(node)
}

/// The NATS connection the broker serves on, its inbox under its UID.
///
/// # Errors
/// [`DaemonError::Bus`] if NATS cannot be reached.
pub(crate) async fn connect(config: &BrokerConfig, uid: Uid) -> Result<NatsBus, DaemonError> {
    let settings = &config.node;
    let mut options = settings.nats_options("peerscrip-broker");
    options.inbox_prefix = Some(settings.subjects.inbox_prefix(&uid));
    Ok(NatsBus::connect(&settings.nats_url, options).await?)
}

/// A broker serving: its actor, gateway and timer, and its export task if configured.
pub(crate) struct Serving {
    running: crate::shell::Running,
    export: Option<export::ExportTask>,
    dropped: std::sync::Arc<shared::runtime::Dropped>,
}

impl Serving {
    /// Serves `node` on `bus`: the gateway (screening reply subjects, protocol.md section
    /// 3), the timer, the export task; attaches the admin listener and tells systemd.
    ///
    /// # Errors
    /// [`DaemonError::Bus`] if the subscription fails.
    pub(crate) async fn start(
        node: BrokerNode,
        config: &BrokerConfig,
        bus: &NatsBus,
        admin: Option<&Admin>,
    ) -> Result<Serving, DaemonError> {
        let settings = &config.node;
        let uid = node.uid();
        let subjects = settings.subjects.clone();
        let screen = Screen {
            // On a shared network anyone may forge a reply subject (protocol.md section 3).
            bound_replies: true,
            ..Screen::default()
        };
        let dropped = screen.dropped.clone();
        let running = crate::shell::serve_every(
            node,
            bus.clone(),
            subjects.clone(),
            system_clock,
            config.expire_every,
            screen,
        )
        .await?;
        let mut export_options = settings.nats_options("peerscrip-broker export");
        export_options.inbox_prefix = Some(subjects.inbox_prefix(&uid));
        let export = settings.export.clone().map(|export_settings| {
            export::spawn(
                running.addr.clone(),
                NodeLog {
                    log: BrokerNode::log,
                    name: event_name,
                },
                export::Target {
                    settings: export_settings,
                    nats_url: settings.nats_url.clone(),
                    options: export_options,
                    node_kind: NODE_KIND,
                    uid,
                },
            )
        });
        if let Some(admin) = admin {
            admin.attach_daemon(running.addr.clone(), bus, export.as_ref());
        }
        tracing::info!(subject = %subjects.broker(), "broker serving");
        shared::daemon::notify::ready("serving");
        Ok(Serving {
            running,
            export,
            dropped,
        })
    }

    /// The graceful stop on `signal`: no new request, those taken answered, the bus
    /// flushed, the export caught up, the file closed (see the module doc).
    ///
    /// # Errors
    /// [`DaemonError::Close`] if the log does not close cleanly.
    pub(crate) async fn finish(self, bus: &NatsBus, signal: Shutdown) -> Result<(), DaemonError> {
        shared::daemon::notify::stopping();
        tracing::info!(%signal, "stopping: no new requests, finishing those in flight");
        self.dropped.report();
        let node = self.running.shutdown().await;
        if let Err(e) = bus.flush().await {
            tracing::warn!(error = %e, "the last replies may not have reached the server");
        }
        if let (Some(export), Some(node)) = (self.export, &node) {
            export.finish(node.log(), event_name).await;
        }
        close(node)
    }

    /// Stops serving at once (an HA broker that lost the lease, docs/adr/0017): the
    /// gateway and the timer are aborted, the requests already queued are answered (each
    /// batch's commit fails once the replica is fenced: `Unavailable`), and the node comes
    /// back, to be closed and replaced from the replicated log.
    /// There is no export to stop: HA refuses `export_stream` (the replicated log is the
    /// JetStream copy, and an export could publish a tail the replica refused).
    pub(crate) async fn abandon(self) -> Option<BrokerNode> {
        self.running.stop().await
    }
}

/// Closes the node's file, reporting its head.
///
/// # Errors
/// [`DaemonError::Close`].
pub(crate) fn close(node: Option<BrokerNode>) -> Result<(), DaemonError> {
    if let Some(node) = node {
        let head = node.log().head().ok().flatten().map_or(0, |(seq, _)| seq);
        node.close().map_err(DaemonError::Close)?;
        tracing::info!(head, "broker stopped; log closed");
    } else {
        tracing::warn!("the broker's actor had already stopped");
    }
    Ok(())
}

/// Opens the broker's node as configured, with every start-up check of [`run`]: the data
/// directory made private (mode 0700, tightened with a warning when wider), the key
/// file, the data directory's identity (suite, UID), the root key, and the log's chain and
/// tables. What the operator's tools use on a stopped broker's data directory too
/// (`peerscrip-ops bank --stopped-broker`): the log's exclusive lock refuses to open the
/// file of a broker that is running.
///
/// # Errors
/// The first check that fails ([`DaemonError`]).
pub fn open_node(config: &BrokerConfig) -> Result<BrokerNode, DaemonError> {
    let settings = &config.node;
    shared::daemon::prepare_data_dir(&settings.data_dir)?;
    let keys = shared::daemon::load_key_pair(
        settings.suite,
        &settings.key,
        settings.key_passphrase.as_ref(),
    )?;
    NodeIdentity {
        kind: NODE_KIND.to_owned(),
        suite: settings.suite,
        uid: keys.uid(),
    }
    .check_or_record(&settings.data_dir)?;
    let root = shared::daemon::load_or_create_root_key(&settings.root_key)?;
    let path = config.log_path();
    BrokerNode::open(&path, keys, root, config.core)
        .map_err(|source| DaemonError::Open { path, source })
}

/// The operator's public key (PEM) of `suite` at `path` (ADR 0010).
fn operator_key(
    path: &std::path::Path,
    suite: shared::Suite,
) -> Result<shared::PublicKey, DaemonError> {
    let error = |reason: String| DaemonError::OperatorKey {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    shared::PublicKey::from_pem(suite, &pem).map_err(|e| error(e.to_string()))
}
