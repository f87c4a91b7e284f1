//! The operator's tool, `peerscrip-ops`, as a library so that tests drive the same code the
//! binary runs. Today: `keygen`, `demo`, `nats-config`, and the operator's `bank` and `peers` against a
//! running broker (`admin`, the client; `bank`, the commands), `audit` of a log and `export`
//! of a log to JetStream. The dispute and reconcile commands of issue 6 join here, one
//! module each.

pub mod admin;
pub mod audit;
pub mod bank;
pub mod cli;
pub mod demo;
pub mod export;
pub mod keygen;
pub mod nats_config;
