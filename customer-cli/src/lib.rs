//! The customer wallet (protocol.md section 6, the customer's side): its own redb file and
//! the client side of every transaction: registration (6.0), public key requests (6.0b),
//! BrokerScrip obtain, top-up and withdrawal (6.1, 6.4, 6.6), the three-party flows
//! (6.2 obtain VendorScrip, 6.3 buy item, 6.5 top up VendorScrip, 6.7 withdraw
//! VendorScrip), renewal (6.8), and `TransactionStatus` (section 7).
//!
//! At most one live scrip per producer (section 4: "a wallet that finds more merges them at
//! the next use"). This wallet never lets a second arise: a request that would bring one
//! is refused before it is saved (6.1 while a BrokerScrip is live, 6.2 while a VendorScrip
//! of that merchant is live: top up instead), every scrip a pending request presents is
//! committed to it until the message that settles it arrives, and change always replaces
//! the scrip it is change of. Should a second scrip of a producer ever arrive anyway (a
//! producer's or another wallet's fault), it is refused without any change
//! (`VendorScripLive`, or `apply` refuses the event): nothing is lost, because the frame
//! stays in the producer's outbox, retrievable with `TransactionStatus` once the held one
//! has been spent or withdrawn. That is the merge: spend or withdraw one, then fetch the
//! other.
//!
//! - [`core`]: sans-IO, one file per transaction: build a request's exact bodies, check a
//!   reply, decide the one event it leads to; the [`core::WalletState`] those events fold
//!   into.
//! - [`store`]: the redb projection tables of that state, written in the same commit as
//!   the events (section 8).
//! - [`sealed`]: secrets at rest, sealed under the wallet's own key (the paper's
//!   `PKEnc_KC(B0)`).
//! - [`Wallet`]: the file, the keys and the state together; what the `peerscrip` command
//!   calls.
//! - [`client`]: the wallet's async driver on a bus (request/reply with timeout and
//!   retry of the same bodies, deliveries on its peer subject with a deadline).

pub mod cli;
pub mod client;
pub mod core;
pub mod error;
pub mod rendering;
pub mod sealed;
pub mod store;
pub mod wallet;

pub use error::WalletError;
pub use wallet::{LOCAL_TX, NODE_KIND, Outgoing, Wallet};
