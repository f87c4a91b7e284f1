//! Cross-crate integration and end-to-end tests, and what they share: the `nats-server`
//! harness ([`nats_server`]) and the event export's stream read back from it
//! ([`export_stream`]), a large broker log built fast ([`bank_log`]), the workspace's
//! binaries built for the tests ([`binaries`]), run as processes ([`processes`]) in a
//! deployment laid out as an operator lays it out ([`site`]) and read through their admin
//! listeners ([`admin_http`]), the three-server cluster of high availability
//! ([`nats_cluster`]), the bus
//! conformance suite ([`bus_conformance`]), the test kit
//! that builds a whole network of nodes on temporary files ([`network`]) and the
//! deployment fixture that serves it on a bus ([`deployment`]), frames read and built by
//! hand ([`frames`]), the invariants every test of the network checks ([`invariants`]) and
//! the seeded fault-injecting simulator ([`simulation`]), and the hostile registered
//! customer of protocol.md section 10 with its floods and latency ratios ([`attacker`]).
//! All compiled into the library so any test binary can reuse them.

pub mod admin_http;
pub mod attacker;
pub mod bank_log;
pub mod binaries;
pub mod bus_conformance;
pub mod deployment;
pub mod export_stream;
pub mod frames;
pub mod invariants;
pub mod nats_cluster;
pub mod nats_server;
pub mod network;
pub mod processes;
pub mod simulation;
pub mod site;

pub use nats_server::{HarnessError, NatsServer};
pub use network::{Network, NetworkError, NetworkSpec};
