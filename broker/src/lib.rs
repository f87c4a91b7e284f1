//! The broker (protocol.md sections 1 and 5): the gateway to the bank, issuer of
//! BrokerScrip and the decision point of every three-party transaction.
//!
//! - [`core`]: the sans-IO core (ADR 0006): `open` verifies a frame, `decide` checks it
//!   against the state and returns events and unsigned drafts, `apply` folds an event into
//!   the state. Every check of protocol.md lives there, one file per transaction.
//! - [`store`]: the state's projection tables in the broker's redb file, written in the
//!   same commit as the events, and the secrets table of account IDs (not a projection).
//! - [`node`]: [`node::BrokerNode`], which runs one frame through decode → open → decide →
//!   seal → commit and returns the reply and deliveries; what tests and the actor shell
//!   call.
//! - [`shell`]: the broker in the actor shell of `shared::runtime` (node actor, group
//!   commit on the blocking pool, gateway on `Subjects::broker()`).
//! - [`config`] and [`daemon`]: the `peerscrip-broker` daemon on NATS (its settings from
//!   file, environment and flags; start-up checks, serving, graceful stop).
//! - [`ha`]: the daemon's high-availability mode on a JetStream cluster (docs/adr/0017):
//!   one fenced writer, a replicated log, hot standbys.
//!
//! Only [`core`] builds without the feature `io` (on by default): the compiler keeps the
//! protocol logic free of files, sockets and clocks, as docs/adr/0006 requires.

#[cfg(feature = "io")]
pub mod config;
pub mod core;
#[cfg(feature = "io")]
pub mod daemon;
#[cfg(feature = "io")]
pub mod ha;
#[cfg(feature = "io")]
pub mod node;
#[cfg(feature = "io")]
pub mod shell;
#[cfg(feature = "io")]
pub mod store;
