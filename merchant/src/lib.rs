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
//!   (what tests and, next, the actor shell call).

pub mod core;
pub mod node;
pub mod store;
