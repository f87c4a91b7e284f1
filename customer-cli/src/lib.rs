//! The customer wallet (protocol.md section 6, the customer's side): its own redb file and
//! the client side of registration (6.0), public key requests (6.0b), and BrokerScrip
//! obtain, top-up and withdrawal (6.1, 6.4, 6.6) and renewal (6.8).
//!
//! - [`core`]: sans-IO, one file per transaction: build a request's exact bodies, check a
//!   reply, decide the one event it leads to; the [`core::WalletState`] those events fold
//!   into.
//! - [`store`]: the redb projection tables of that state, written in the same commit as
//!   the events (section 8).
//! - [`sealed`]: secrets at rest, sealed under the wallet's own key (the paper's
//!   `PKEnc_KC(B0)`).
//! - [`Wallet`]: the file, the keys and the state together; what the `peerscrip` command
//!   (issue 5) calls.
//! - [`client`]: the wallet's async driver on a bus (request/reply with timeout and
//!   retry of the same bodies, deliveries on its peer subject with a deadline).

pub mod client;
pub mod core;
pub mod error;
pub mod sealed;
pub mod store;
pub mod wallet;

pub use error::WalletError;
pub use wallet::{LOCAL_TX, NODE_KIND, Outgoing, Wallet};
