//! `shared`: everything two peerscrip parties must agree on.
//!
//! Two layers, kept apart by the compiler: the protocol logic (amounts, ids, suites, scrip,
//! wire, the event envelope and postings, what the node cores share in [`node`]) builds with
//! no I/O crate at all (`--no-default-features`), so a core cannot reach a file, a socket or
//! a clock through it; the feature `io` (on by default) adds the one piece of each kind of
//! I/O that every node shares: the event log on redb and the node driver over it, the buses
//! (tokio channels, NATS), the actor shell and the JetStream export.
//!
//! One module per concept; see `ARCHITECTURE.md` for the map and `docs/protocol.md` (the
//! normative protocol) for the sections cited throughout.

pub mod amount;
#[cfg(feature = "io")]
pub mod bus;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod error;
pub mod events;
#[cfg(feature = "io")]
pub mod export;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod ids;
pub mod machine;
pub mod node;
#[cfg(feature = "io")]
pub mod private_dir;
#[cfg(feature = "io")]
pub mod runtime;
pub mod scrip;
pub mod secret;
pub mod suite;
pub mod time;
pub mod variant;
pub mod wire;

pub use amount::{Amount, AmountError, Balance, Money};
#[cfg(feature = "io")]
pub use bus::{Bus, BusError, MemoryBus, NatsBus, Subjects};
pub use error::ErrorCode;
pub use ids::{AccountId, CustId, IdSource, Nonce, Pan, PanSecret, ScripId, TxId, Uid};
pub use scrip::{CustomerSecret, ExpiryRule, Mint, RootKey, Scrip, ScripBody, ScripError};
pub use secret::SecretBytes;
pub use suite::{CryptoError, KeyPair, PublicKey, RsaBackend, SessionKey, Suite};
pub use time::{Moment, UnixMillis, UnixSecs};
