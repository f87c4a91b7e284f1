//! The operator's tool, `peerscrip-ops`, as a library so that tests drive the same code the
//! binary runs. Today: `keygen`, `demo` and `nats-config`. The demo, audit, dispute, bank administration and bench
//! commands of the later issues join here, one module each.

pub mod cli;
pub mod demo;
pub mod keygen;
pub mod nats_config;
