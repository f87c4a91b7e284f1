//! `peerscrip-merchant` as a library function (architecture.md "Binaries and the
//! user's path"): [`run`] opens the merchant's data directory, connects to NATS, registers
//! its key at the broker on the first start (6.0, [`broker_client`]), and serves
//! `<prefix>.merchant.<uid>` and its peer subject through `merchant::shell` until SIGINT
//! or SIGTERM, then stops gracefully. A customer it has not met is learned from the
//! broker by 6.0b before its first frame reaches the node, within bounded lookups
//! ([`peers`]); a request is answered only on its sender's inbox (protocol.md section 3).
//!
//! Start-up refuses, with a message naming what to fix: a data directory of another suite
//! or key (`shared::daemon::identity`), a log whose chain does not verify or whose tables
//! differ from its replay (`MerchantNode::open`), a key of the wrong suite or a wrong
//! passphrase, a broker key that is not the configured UID, a catalogue that breaks its
//! rules, and a registration the broker refuses (e.g. its account is not open).
//!
//! The `export_stream` option and its export task, the admin listener and the systemd
//! notifications are the broker's (`broker::daemon`,
//! `shared::daemon::export`).
//!
//! Shutdown and reconnection are the broker's (`broker::daemon`): the gateways
//! unsubscribe and answer what they took, the reporter stops (what it had not sent is
//! still pending in the log and is sent after the restart), the last batch has committed,
//! the bus is flushed and the file closed; async-nats reconnects and re-subscribes by
//! itself.

pub mod broker_client;
pub mod peers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use shared::bus::{Bus, BusError, NatsBus, NatsOptions};
use shared::daemon::export::{self, NodeLog};
use shared::daemon::{Admin, AdminError, IdentityError, KeyFileError, NodeIdentity, Shutdown};
use shared::events::EventLog;
use shared::node::Recorded;
use shared::runtime::{Screen, system_clock};
use shared::{AccountId, Mint, PublicKey, Uid};

use crate::config::MerchantConfig;
use crate::core::Config;
use crate::core::events::Kind;
use crate::node::{MerchantNode, NODE_KIND, NodeError, event_name};
use crate::shell::Shelled;
use broker_client::{BrokerClientError, Registration};

/// The file in the data directory that records the broker UID the merchant registered at.
pub const REGISTERED_FILE: &str = "registered";
/// The file in the data directory that records the broker UID and the name the broker
/// last acknowledged (docs/adr/0016): the name is sent again only when it changed.
pub const NAMED_FILE: &str = "named";
/// How long the merchant waits before sending its name again after the broker asked it to
/// repeat later (a name changed within the broker's interval, or a quota).
pub const NAME_RETRY_LATER: Duration = Duration::from_secs(60);
/// How long the merchant waits before asking an unreachable broker again at start.
pub const REGISTER_RETRY: Duration = Duration::from_secs(1);

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
    /// The pinned broker key could not be used.
    #[error("broker key {path}: {reason}")]
    BrokerKey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The stored peer keys could not be read.
    #[error(transparent)]
    Peers(#[from] peers::PeerStoreError),
    /// The merchant's file could not be opened or verified.
    #[error("cannot open the merchant's log {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: NodeError,
    },
    /// The broker refused the registration, or its answer did not verify.
    #[error("registration at the broker failed: {0}")]
    Registration(#[source] BrokerClientError),
    /// The registration could not be recorded.
    #[error("cannot record the registration in {path}: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// NATS could not be reached or subscribed to at start.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The signal handlers could not be installed.
    #[error("cannot install the signal handlers: {0}")]
    Signal(#[source] std::io::Error),
    /// The log could not be closed after the stop.
    #[error("closing the merchant's log: {0}")]
    Close(#[source] NodeError),
    /// The admin listener could not start.
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// Runs the merchant until SIGINT or SIGTERM (see the module doc). Must run inside an
/// actix system (`actix_rt::System`), which the binary provides.
///
/// # Errors
/// A start-up refusal ([`DaemonError`]); after a clean stop, `Ok` with the signal.
pub async fn run(config: MerchantConfig) -> Result<Shutdown, DaemonError> {
    let shutdown = shared::daemon::shutdown_signal().map_err(DaemonError::Signal)?;
    tokio::pin!(shutdown);
    let settings = &config.node;
    let suite = settings.suite;
    shared::daemon::warn_of_suite(suite);
    // First, so that /healthz answers (and /readyz says "starting") while the log replays
    // and the merchant registers.
    let admin = match &settings.admin {
        Some(admin) => Some(Admin::start(admin).await?),
        None => None,
    };
    shared::daemon::prepare_data_dir(&settings.data_dir)?;
    let keys =
        shared::daemon::load_key_pair(suite, &settings.key, settings.key_passphrase.as_ref())?;
    let uid = keys.uid();
    NodeIdentity {
        kind: NODE_KIND.to_owned(),
        suite,
        uid,
    }
    .check_or_record(&settings.data_dir)?;
    let root = shared::daemon::load_or_create_root_key(&settings.root_key)?;
    let broker = broker_key(&config.broker_key, suite, config.broker_uid)?;
    let id = AccountId::derive(suite, &config.pan_secret, &config.pan);
    let mut core = Config::new(
        Mint::new(suite, uid, root),
        config.catalogue.clone(),
        broker.uid(),
        config.pan.clone(),
        id.clone(),
    );
    core.scrip_lifetime_secs = config.scrip_lifetime_secs;
    core.renewal_grace_secs = config.grace_secs;
    core.escrow_window_secs = config.escrow_window_secs;
    core.quotas = config.quotas;
    core.name = config.name.clone();
    let stored = peers::load_stored(&settings.data_dir, suite)?;
    let known: Vec<Uid> = stored.iter().map(PublicKey::uid).collect();
    let path = config.log_path();
    let node = MerchantNode::open(
        &path,
        keys.clone(),
        core,
        std::iter::once(broker.clone()).chain(stored),
    )
    .map_err(|source| DaemonError::Open {
        path: path.clone(),
        source,
    })?;
    let head = node.log().head().ok().flatten().map_or(0, |(seq, _)| seq);
    tracing::info!(
        %uid,
        %suite,
        broker = %broker.uid(),
        log = %path.display(),
        head,
        peers = known.len(),
        "merchant log verified and replayed"
    );

    let subjects = settings.subjects.clone();
    let mut options = settings.nats_options("peerscrip-merchant");
    options.inbox_prefix = Some(subjects.inbox_prefix(&uid));
    let export_options = NatsOptions {
        name: Some("peerscrip-merchant export".to_owned()),
        ..options.clone()
    };
    let bus = NatsBus::connect(&settings.nats_url, options).await?;

    let marker = settings.data_dir.join(REGISTERED_FILE);
    if !registered_at(&marker, &broker.uid()) {
        loop {
            let attempt = broker_client::register(
                &bus,
                &subjects,
                &keys,
                &broker,
                &config.pan,
                &id,
                config.request_timeout,
            );
            let outcome = tokio::select! {
                signal = &mut shutdown => {
                    tracing::info!(%signal, "stopped before the registration at the broker");
                    node.close().map_err(DaemonError::Close)?;
                    return Ok(signal);
                }
                outcome = attempt => outcome,
            };
            match outcome {
                Ok(done) => {
                    let record = format!("{}\n", broker.uid());
                    shared::private_dir::replace_file(&marker, record.as_bytes()).map_err(
                        |source| DaemonError::Record {
                            path: marker.clone(),
                            source,
                        },
                    )?;
                    match done {
                        Registration::Registered => {
                            tracing::info!("registered the merchant's key at the broker (6.0)");
                        }
                        Registration::AlreadyRegistered => {
                            tracing::info!("the broker already had the merchant's key");
                        }
                    }
                    break;
                }
                Err(BrokerClientError::Bus(e)) => {
                    tracing::warn!(error = %e, "the broker is not reachable; registering again shortly");
                    tokio::time::sleep(REGISTER_RETRY).await;
                }
                Err(e) => return Err(DaemonError::Registration(e)),
            }
        }
    }

    if let Some(name) = config.name.clone() {
        let named = Named {
            marker: settings.data_dir.join(NAMED_FILE),
            record: format!("{}\n{}\n", broker.uid(), name.as_str()),
        };
        if !named.is_recorded() {
            let (bus, subjects, keys, broker) =
                (bus.clone(), subjects.clone(), keys.clone(), broker.clone());
            let timeout = config.request_timeout;
            // Off the serving path: customers are served meanwhile, and a broker that stays
            // away only delays the listing (never the shop).
            tokio::spawn(async move {
                loop {
                    match broker_client::name_merchant(
                        &bus, &subjects, &keys, &broker, &name, timeout,
                    )
                    .await
                    {
                        Ok(()) => {
                            match named.record() {
                                Ok(()) => {
                                    tracing::info!(name = %name, "the broker lists the merchant under its name")
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "the broker acknowledged the name but it could not be recorded; it is sent again at the next start")
                                }
                            }
                            return;
                        }
                        Err(BrokerClientError::Bus(e)) => {
                            tracing::warn!(error = %e, "the broker is not reachable; sending the merchant's name again shortly");
                            tokio::time::sleep(REGISTER_RETRY).await;
                        }
                        Err(BrokerClientError::Answer(
                            e @ crate::core::broker_reply::AnswerError::RepeatLater { .. },
                        )) => {
                            tracing::warn!(error = %e, "sending the merchant's name again later");
                            tokio::time::sleep(NAME_RETRY_LATER).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the broker did not accept the merchant's name; customers see its UID");
                            return;
                        }
                    }
                }
            });
        }
    }

    let prepare = peers::prepare(
        bus.clone(),
        subjects.clone(),
        keys,
        broker,
        &settings.data_dir,
        known,
        config.lookups,
    );
    let screen = Screen {
        // On a shared network anyone may forge a reply subject (protocol.md section 3).
        bound_replies: true,
        prepare: Some(prepare),
        ..Screen::default()
    };
    let dropped = screen.dropped.clone();
    let running = crate::shell::serve_with(
        node,
        bus.clone(),
        subjects.clone(),
        system_clock,
        config.request_timeout,
        screen,
    )
    .await?;
    let export = settings.export.clone().map(|export_settings| {
        export::spawn(
            running.addr.clone(),
            NodeLog {
                log: shelled_log,
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
    if let Some(admin) = &admin {
        admin.attach_daemon(running.addr.clone(), &bus, export.as_ref());
    }
    tracing::info!(subject = %subjects.merchant(&uid), "merchant serving");
    shared::daemon::notify::ready("serving");

    let signal = (&mut shutdown).await;
    shared::daemon::notify::stopping();
    tracing::info!(%signal, "stopping: no new requests, finishing those in flight");
    dropped.report();
    let node = running.shutdown().await;
    if let Err(e) = bus.flush().await {
        tracing::warn!(error = %e, "the last replies may not have reached the server");
    }
    if let (Some(export), Some(node)) = (export, &node) {
        export.finish(node.log(), event_name).await;
    }
    if let Some(node) = node {
        let head = node.log().head().ok().flatten().map_or(0, |(seq, _)| seq);
        node.close().map_err(DaemonError::Close)?;
        tracing::info!(head, "merchant stopped; log closed");
    } else {
        tracing::warn!("the merchant's actor had already stopped");
    }
    if let Some(admin) = admin {
        admin.stop().await;
    }
    Ok(signal)
}

/// The log of the node in the shell, for the export task (`shared::daemon::export`).
fn shelled_log(shelled: &Shelled) -> &EventLog<Recorded<Kind>> {
    shelled.node.log()
}

/// The pinned broker key from `path`, of `suite`, and of `expected` UID when configured.
fn broker_key(
    path: &Path,
    suite: shared::Suite,
    expected: Option<Uid>,
) -> Result<PublicKey, DaemonError> {
    let error = |reason: String| DaemonError::BrokerKey {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let key = PublicKey::from_pem(suite, &text).map_err(|e| error(e.to_string()))?;
    if let Some(expected) = expected
        && key.uid() != expected
    {
        return Err(error(format!(
            "its UID is {}, not the configured broker UID {expected}",
            key.uid()
        )));
    }
    Ok(key)
}

/// The record of the name the broker last acknowledged ([`NAMED_FILE`]): the broker's UID
/// and the name, one a line.
struct Named {
    marker: PathBuf,
    record: String,
}

impl Named {
    /// Whether the marker records this broker and this name.
    fn is_recorded(&self) -> bool {
        std::fs::read_to_string(&self.marker).is_ok_and(|text| text == self.record)
    }

    /// Records them, replacing the file whole (a crash leaves the old record or the new).
    fn record(&self) -> Result<(), std::io::Error> {
        shared::private_dir::replace_file(&self.marker, self.record.as_bytes())
    }
}

/// Whether `marker` records a registration at `broker`.
fn registered_at(marker: &Path, broker: &Uid) -> bool {
    std::fs::read_to_string(marker).is_ok_and(|text| text.trim() == broker.to_string())
}
