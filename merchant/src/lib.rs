//! A merchant (protocol.md sections 4 and 6): issues and locally validates its own
//! VendorScrip and sells from its catalogue; in the three-party transactions (6.2, 6.5,
//! 6.7) it asks the broker, holds what it must, and acts on the broker's signed decision
//! only (section 7).
//!
//! - [`core`]: the sans-IO core: `open` (verify a request frame), `decide` (every check of
//!   protocol.md sections 4–7, pure), `apply` (the fold of the log), one file per
//!   transaction;
//! - [`store`]: the redb projection tables that mirror the core's state;
//! - [`node`]: [`node::MerchantNode`], a core with its log and keys, driven frame by frame
//!   (what tests and the actor shell call);
//! - [`shell`]: the merchant in the actor shell of `shared::runtime` (node actor, group
//!   commit, gateway on `Subjects::merchant(uid)`, reporter of `PurchaseCompleted`).
//! - [`config`] and [`daemon`]: the `peerscrip-merchant` daemon on NATS (settings from
//!   file, environment and flags; catalogue file; registration at the broker; 6.0b key
//!   fetch; start-up checks, serving, graceful stop).
//!
//! Only [`core`] builds without the feature `io` (on by default): the compiler keeps the
//! protocol logic free of files, sockets and clocks, as docs/adr/0006 requires.

#[cfg(feature = "io")]
pub mod config;
pub mod core;
#[cfg(feature = "io")]
pub mod daemon;
#[cfg(feature = "io")]
pub mod node;
#[cfg(feature = "io")]
pub mod shell;
#[cfg(feature = "io")]
pub mod store;
