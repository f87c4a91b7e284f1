//! Cross-crate integration and end-to-end tests, and what they share: the `nats-server`
//! harness ([`nats_server`]) and the bus conformance suite ([`bus_conformance`]), which is
//! compiled into the library so any test binary can reuse it.

pub mod bus_conformance;
pub mod nats_server;

pub use nats_server::{HarnessError, NatsServer};
