//! `shared`: everything two peerscrip parties must agree on, with no I/O of its own except
//! the event log (redb) and the bus (tokio channels, NATS), which the issue places here so
//! every node uses the same ones.
//!
//! One module per concept; see `ARCHITECTURE.md` for the map and `docs/protocol.md` (the
//! normative protocol) for the sections cited throughout.

pub mod amount;
pub mod bus;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod error;
pub mod events;
pub mod export;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod ids;
pub mod machine;
pub mod node;
pub mod runtime;
pub mod scrip;
pub mod secret;
pub mod suite;
pub mod variant;
pub mod wire;

pub use amount::{Amount, AmountError};
pub use bus::{Bus, BusError, MemoryBus, NatsBus, Subjects};
pub use error::ErrorCode;
pub use ids::{AccountId, CustId, Nonce, Pan, PanSecret, ScripId, TxId, Uid};
pub use scrip::{CustomerSecret, ExpiryRule, Mint, RootKey, Scrip, ScripBody, ScripError};
pub use secret::SecretBytes;
pub use suite::{CryptoError, KeyPair, PublicKey, SessionKey, Suite};
