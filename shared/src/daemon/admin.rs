//! A daemon's admin listener (README "Operate it"): HTTP on the address of
//! `[admin] listen`, serving
//!
//! - `/metrics`: the Prometheus text exposition of what the shell records
//!   (`crate::runtime::observe`) and, refreshed at each scrape from the node's live view,
//!   its state as gauges;
//! - `/healthz`: 200 while the process and its node actor live (a liveness probe: restart
//!   the daemon when it fails);
//! - `/readyz`: 200 when the node serves (its log writable, protocol.md section 10) and its
//!   NATS connection is up, 503 with the failing checks otherwise (a load balancer's or an
//!   operator's readiness probe; not ready while the daemon starts, nor while an HA
//!   broker stands by without the lease, docs/adr/0017);
//! - `/status`: the node's live view as JSON (`Observe::status`), what
//!   `peerscrip-ops status` prints.
//!
//! Loopback only unless told otherwise: a listener on any other address needs a bearer
//! token from a file (`[admin] token_file`), which `/metrics` and `/status` then require,
//! compared in constant time; the probes stay open, they say nothing about the ledger. The
//! token never reaches a log line or an error message.
//!
//! The listener starts before the node (the merchant registers at the broker first), so
//! that `/healthz` answers from the start; [`Admin::attach`] hands it the running node.
//! Every read of the node is a `Call` on its actor, run between two batches, bounded by
//! [`NODE_TIMEOUT`]: a wedged node makes the probes fail, never hang.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use actix::Addr;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::runtime::observe::{self, Gauge, Observe};
use crate::runtime::{Call, NodeActor};
use crate::secret::SecretBytes;

/// How long a probe, a scrape or the live view waits for the node actor.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the exporter drains its histograms (bounds its memory between scrapes).
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// The shortest bearer token accepted: 128 bits as hex.
pub const MIN_TOKEN_BYTES: usize = 32;

/// The `[admin]` settings, resolved (`crate::daemon::config`).
#[derive(Clone, Debug)]
pub struct AdminSettings {
    /// Where the listener binds.
    pub listen: SocketAddr,
    /// The bearer token `/metrics` and `/status` require, if any (redacted in `Debug`).
    pub token: Option<SecretBytes>,
}

/// Why the admin listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address could not be bound (in use, not this machine's, no permission).
    #[error("cannot listen on {listen} for the admin endpoints: {source}")]
    Bind {
        /// The address.
        listen: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The latency buckets (seconds) of the request, batch and commit histograms: from a
/// group commit's fsync (~1 ms) to a request's timeout.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];
/// The batch-size buckets, powers of two up to the shell's `MAX_BATCH`.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The process's Prometheus recorder: installed once, shared by every listener of the
/// process (a test may start several daemons in one).
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(SECONDS_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(observe::BATCH_FRAMES.to_owned()),
                    BATCH_BUCKETS,
                )
            });
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            // The buckets are constants the exporter accepts; its defaults otherwise.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "another metrics recorder is installed; /metrics shows only the node's state"
            );
        }
        observe::describe();
        observe::enable();
        handle
    })
}

/// What the listener reads of the running node, once [`Admin::attach`]ed.
trait Inspect: Send + Sync {
    /// Whether the actor is alive.
    fn alive(&self) -> bool;
    /// The readiness checks.
    fn checks(&self) -> BoxFuture<'_, Checks>;
    /// Sets the node's gauges; `false` if the node did not answer in time.
    fn refresh(&self) -> BoxFuture<'_, bool>;
    /// The live view as JSON, `None` if the node did not answer in time.
    fn status(&self) -> BoxFuture<'_, Option<serde_json::Value>>;
}

/// Whether the node's NATS connection is up now (`NatsBus::is_connected`).
pub type Connected = Arc<dyn Fn() -> bool + Send + Sync>;

/// How many events up to a head seq the live export has not published yet
/// (`export::ExportTask::lag`).
pub type ExportLag = Arc<dyn Fn(u64) -> Option<u64> + Send + Sync>;

/// The running node as the listener sees it: its actor and its NATS connection.
struct Inspector<N: Observe> {
    addr: Addr<NodeActor<N>>,
    connected: Connected,
    export_lag: Option<ExportLag>,
}

impl<N: Observe> Inspector<N> {
    /// Runs `read` on the node between two batches, at the shell's clock; `None` when the
    /// actor is gone or does not answer within [`NODE_TIMEOUT`].
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&mut N, crate::time::UnixSecs) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.addr.do_send(Call(Box::new(move |node: &mut N, now| {
            let _ = tx.send(read(node, now));
        })));
        tokio::time::timeout(NODE_TIMEOUT, rx).await.ok()?.ok()
    }
}

/// The outcome of `/readyz`'s checks.
#[derive(Debug, Serialize)]
struct Checks {
    /// Whether every check passed.
    ready: bool,
    /// `serving`, `cannot write its log`, `not answering`, `starting` or `standby`.
    node: &'static str,
    /// `connected`, `disconnected`, `starting` or `standby`.
    nats: &'static str,
}

impl<N: Observe> Inspect for Inspector<N> {
    fn alive(&self) -> bool {
        self.addr.connected()
    }

    fn checks(&self) -> BoxFuture<'_, Checks> {
        Box::pin(async move {
            let node = match self.read(|node, _| node.serving()).await {
                Some(true) => "serving",
                Some(false) => "cannot write its log",
                None => "not answering",
            };
            let nats = if (self.connected)() {
                "connected"
            } else {
                "disconnected"
            };
            Checks {
                ready: node == "serving" && nats == "connected",
                node,
                nats,
            }
        })
    }

    fn refresh(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            observe::Gauge::new(
                observe::NATS_CONNECTED,
                if (self.connected)() { 1.0 } else { 0.0 },
            )
            .set();
            let read = self
                .read(|node, now| {
                    let mut gauges = N::gauges(&node.status(now));
                    let head = node.head();
                    gauges.push(Gauge::new(observe::LOG_HEAD, observe::minor(head.into())));
                    gauges.push(Gauge::new(
                        observe::SERVING,
                        if node.serving() { 1.0 } else { 0.0 },
                    ));
                    (gauges, head)
                })
                .await;
            let Some((gauges, head)) = read else {
                return false;
            };
            for gauge in &gauges {
                gauge.set();
            }
            if let Some(lag) = self.export_lag.as_ref().and_then(|lag| lag(head)) {
                Gauge::new(observe::EXPORT_LAG, observe::minor(lag.into())).set();
            }
            true
        })
    }

    fn status(&self) -> BoxFuture<'_, Option<serde_json::Value>> {
        Box::pin(async move {
            self.read(|node, now| serde_json::to_value(node.status(now)).ok())
                .await
                .flatten()
        })
    }
}

/// What the listener sees of the node: nothing yet (`starting`), a standby of an HA
/// deployment (`standby`, docs/adr/0017), or the node serving in its actor.
#[derive(Clone, Default)]
enum Slot {
    #[default]
    Starting,
    Standby,
    Attached(Arc<dyn Inspect>),
}

/// The listener's [`Slot`], swapped as the node starts, stands by or serves.
#[derive(Clone, Default)]
struct NodeSlot(Arc<RwLock<Slot>>);

impl std::fmt::Debug for NodeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.get() {
            Slot::Starting => "starting",
            Slot::Standby => "standby",
            Slot::Attached(_) => "attached",
        })
    }
}

impl NodeSlot {
    fn get(&self) -> Slot {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn attached(&self) -> Option<Arc<dyn Inspect>> {
        match self.get() {
            Slot::Attached(node) => Some(node),
            Slot::Starting | Slot::Standby => None,
        }
    }

    fn set(&self, slot: Slot) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = slot;
    }
}

#[derive(Clone)]
struct Shared {
    node: NodeSlot,
    token: Option<Arc<SecretBytes>>,
    metrics: &'static PrometheusHandle,
}

/// The running admin listener.
#[derive(Debug)]
pub struct Admin {
    node: NodeSlot,
    listen: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for dyn Inspect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inspect")
    }
}

impl Admin {
    /// Binds `settings.listen` and serves the admin endpoints until [`Admin::stop`]. Until
    /// [`Admin::attach`], `/readyz` answers 503 `starting` and `/status` 503.
    ///
    /// # Errors
    /// [`AdminError::Bind`]: the address cannot be bound.
    pub async fn start(settings: &AdminSettings) -> Result<Admin, AdminError> {
        let metrics = recorder();
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|source| AdminError::Bind {
                listen: settings.listen,
                source,
            })?;
        let listen = listener.local_addr().map_err(|source| AdminError::Bind {
            listen: settings.listen,
            source,
        })?;
        let node = NodeSlot::default();
        let shared = Shared {
            node: node.clone(),
            token: settings.token.clone().map(Arc::new),
            metrics,
        };
        let app = Router::new()
            .route("/metrics", get(metrics_page))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/status", get(status))
            .with_state(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let upkeep = async {
                loop {
                    tokio::time::sleep(UPKEEP_EVERY).await;
                    metrics.run_upkeep();
                }
            };
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            tokio::select! {
                served = serve => {
                    if let Err(e) = served {
                        tracing::error!(error = %e, "the admin listener failed");
                    }
                }
                () = upkeep => {}
            }
        });
        tracing::info!(%listen, token = settings.token.is_some(), "admin endpoints listening");
        Ok(Admin {
            node,
            listen,
            stop: Some(stop),
            task,
        })
    }

    /// The address the listener is bound to (the port chosen when `listen` had port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Hands the listener the node now serving in `addr` on the NATS connection
    /// `connected` tells of, and, when the node exports its log, its export's lag. A later
    /// call replaces it (an HA broker serves in a new actor each time it takes the lease).
    pub fn attach<N: Observe>(
        &self,
        addr: Addr<NodeActor<N>>,
        connected: Connected,
        export_lag: Option<ExportLag>,
    ) {
        let inspector: Arc<dyn Inspect> = Arc::new(Inspector {
            addr,
            connected,
            export_lag,
        });
        self.node.set(Slot::Attached(inspector));
    }

    /// The node stands by (an HA deployment's broker without the lease, docs/adr/0017):
    /// `/healthz` 200, `/readyz` 503 with `"node": "standby"`, `/status` 503.
    pub fn standby(&self) {
        self.node.set(Slot::Standby);
    }

    /// [`Admin::attach`] for a daemon: its node in `addr` on `bus`, with `export`'s lag
    /// when it exports its log.
    pub fn attach_daemon<N: Observe>(
        &self,
        addr: Addr<NodeActor<N>>,
        bus: &crate::bus::NatsBus,
        export: Option<&super::export::ExportTask>,
    ) {
        let nats = bus.clone();
        self.attach(
            addr,
            Arc::new(move || nats.is_connected()),
            export.map(super::export::ExportTask::lag),
        );
    }

    /// Stops the listener (the daemon's stop): answers what it took, takes nothing more.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(NODE_TIMEOUT, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

impl Drop for Admin {
    /// A daemon that stops early (a start-up refusal after the listener started) takes its
    /// listener down with it.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `headers` carry the bearer token, when one is required.
fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(token) = &shared.token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|given| token.ct_eq_bytes(given))
}

/// 401 with the challenge of RFC 6750.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
        "a bearer token is required\n",
    )
        .into_response()
}

async fn metrics_page(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if !authorized(&shared, &headers) {
        return unauthorized();
    }
    if let Some(node) = shared.node.attached()
        && !node.refresh().await
    {
        tracing::warn!("scrape: the node did not answer in time; its gauges are stale");
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        shared.metrics.render(),
    )
        .into_response()
}

async fn healthz(State(shared): State<Shared>) -> Response {
    match shared.node.attached() {
        Some(node) if !node.alive() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the node actor has stopped\n",
        )
            .into_response(),
        _ => (StatusCode::OK, "ok\n").into_response(),
    }
}

async fn readyz(State(shared): State<Shared>) -> Response {
    let checks = match shared.node.get() {
        Slot::Attached(node) => node.checks().await,
        Slot::Starting => Checks {
            ready: false,
            node: "starting",
            nats: "starting",
        },
        Slot::Standby => Checks {
            ready: false,
            node: "standby",
            nats: "standby",
        },
    };
    let code = if checks.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(checks)).into_response()
}

async fn status(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if !authorized(&shared, &headers) {
        return unauthorized();
    }
    let node = match shared.node.get() {
        Slot::Attached(node) => node,
        Slot::Starting => {
            return (StatusCode::SERVICE_UNAVAILABLE, "the node is starting\n").into_response();
        }
        Slot::Standby => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the node stands by: another holds the lease\n",
            )
                .into_response();
        }
    };
    match node.status().await {
        Some(view) => axum::Json(view).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the node did not answer in time\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    //! The listener in front of a stand-in node whose log and NATS connection the test
    //! switches: what each endpoint answers before the node is attached, while it serves,
    //! when it cannot write its log or NATS is away, and after its actor stopped; and that
    //! the token guards the scrape and the view, and only them.
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::runtime::{Batched, Next, ServeNode, Served, ServedBatch, Stop};
    use crate::time::UnixSecs;

    const TOKEN: &str = "a-token-of-at-least-32-characters-for-tests";

    struct Probe {
        serving: Arc<AtomicBool>,
    }

    impl ServeNode for Probe {
        type Request = ();

        fn serve_batch(&mut self, batch: Batched<()>, _: UnixSecs, _: Next) -> ServedBatch<()> {
            let served = batch.into_frames().into_iter();
            (served.map(|p| (p, Served::default())).collect(), None)
        }
    }

    #[derive(Serialize)]
    struct View {
        head: u64,
        at: u64,
    }

    impl Observe for Probe {
        type Status = View;

        fn serving(&self) -> bool {
            self.serving.load(Ordering::Relaxed)
        }

        fn head(&self) -> u64 {
            7
        }

        fn status(&self, now: UnixSecs) -> View {
            View {
                head: 7,
                at: now.get(),
            }
        }

        fn gauges(_: &View) -> Vec<Gauge> {
            vec![Gauge::new(observe::SALES, 3.0)]
        }
    }

    /// `GET path` over a plain connection: the status code and the body.
    async fn get(at: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(at).await.unwrap();
        let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let code = response[9..12].parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap();
        (code, body)
    }

    fn json(body: &str) -> serde_json::Value {
        serde_json::from_str(body).unwrap()
    }

    #[actix_rt::test]
    async fn the_probes_follow_the_node_and_its_connection_and_the_token_guards_the_ledger() {
        let settings = AdminSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: Some(SecretBytes::from_slice(TOKEN.as_bytes())),
        };
        let admin = Admin::start(&settings).await.unwrap();
        let at = admin.local_addr();

        // Before the node is attached: alive, not ready, no view.
        assert_eq!(get(at, "/healthz", None).await, (200, "ok\n".to_owned()));
        let (code, body) = get(at, "/readyz", None).await;
        assert_eq!(code, 503);
        assert_eq!(
            json(&body),
            serde_json::json!({"ready": false, "node": "starting", "nats": "starting"})
        );
        assert_eq!(get(at, "/status", Some(TOKEN)).await.0, 503);

        // An HA standby: alive, not ready, and it says why.
        admin.standby();
        assert_eq!(get(at, "/healthz", None).await, (200, "ok\n".to_owned()));
        let (code, body) = get(at, "/readyz", None).await;
        assert_eq!(code, 503);
        assert_eq!(
            json(&body),
            serde_json::json!({"ready": false, "node": "standby", "nats": "standby"})
        );
        assert_eq!(
            get(at, "/status", Some(TOKEN)).await,
            (
                503,
                "the node stands by: another holds the lease\n".to_owned()
            )
        );

        let serving = Arc::new(AtomicBool::new(true));
        let connected = Arc::new(AtomicBool::new(true));
        let addr = crate::runtime::start(
            Probe {
                serving: serving.clone(),
            },
            || UnixSecs::new(42),
        );
        let up = connected.clone();
        admin.attach(
            addr.clone(),
            Arc::new(move || up.load(Ordering::Relaxed)),
            None,
        );
        let (code, body) = get(at, "/readyz", None).await;
        assert_eq!(
            (code, json(&body)),
            (
                200,
                serde_json::json!({"ready": true, "node": "serving", "nats": "connected"})
            )
        );

        // The log cannot be written: not ready, and said why.
        serving.store(false, Ordering::Relaxed);
        let (code, body) = get(at, "/readyz", None).await;
        assert_eq!(code, 503);
        assert_eq!(json(&body)["node"], "cannot write its log");
        assert_eq!(json(&body)["nats"], "connected");
        serving.store(true, Ordering::Relaxed);
        connected.store(false, Ordering::Relaxed);
        let (code, body) = get(at, "/readyz", None).await;
        assert_eq!(code, 503);
        assert_eq!(json(&body)["nats"], "disconnected");
        connected.store(true, Ordering::Relaxed);
        assert_eq!(get(at, "/readyz", None).await.0, 200);

        // The token: required for the scrape and the view, compared whole.
        for path in ["/metrics", "/status"] {
            assert_eq!(get(at, path, None).await.0, 401, "{path}");
            assert_eq!(get(at, path, Some("a-token")).await.0, 401, "{path}");
            let longer = format!("{TOKEN}x");
            assert_eq!(get(at, path, Some(&longer)).await.0, 401, "{path}");
        }
        let (code, body) = get(at, "/status", Some(TOKEN)).await;
        assert_eq!(
            (code, json(&body)),
            (200, serde_json::json!({"head": 7, "at": 42}))
        );
        serving.store(false, Ordering::Relaxed);
        let (code, scrape) = get(at, "/metrics", Some(TOKEN)).await;
        assert_eq!(code, 200);
        for line in [
            "peerscrip_sales 3",
            "peerscrip_log_head_seq 7",
            "peerscrip_serving 0",
            "peerscrip_nats_connected 1",
            "# HELP peerscrip_sales Sales the merchant recorded",
        ] {
            assert!(
                scrape.lines().any(|l| l.starts_with(line)),
                "{line}:\n{scrape}"
            );
        }

        // The node's actor stopped: the liveness probe fails.
        let (tx, rx) = oneshot::channel();
        addr.do_send(Stop(tx));
        let _ = rx.await;
        assert_eq!(get(at, "/healthz", None).await.0, 503);
        admin.stop().await;
        assert!(tokio::net::TcpStream::connect(at).await.is_err());
    }
}
