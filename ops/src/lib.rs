//! The operator's tool, `peerscrip-ops`, as a library so that tests drive the same code the
//! binary runs. Today: `keygen`, `demo`, `nats-config`, the operator's `bank` and `peers` against a
//! running broker (`admin`, the client; `bank`, the commands), `audit` of a broker's,
//! merchant's or wallet's log, `reconcile` of the parties' logs with each other, `dispute`
//! bundles and their offline verification, `export` of a log to JetStream, `bench`, the
//! performance figures against their bounds, `status`, a running node's live view, and the
//! shell `completions` and `man` pages of the binaries; one module each.

pub mod admin;
pub mod audit;
pub mod bank;
pub mod bench;
pub mod cli;
pub mod completions;
pub mod demo;
pub mod dispute;
pub mod export;
pub mod keygen;
pub mod man;
pub mod nats_config;
pub mod reconcile;
pub mod status;
