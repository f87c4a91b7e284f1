//! What the two daemons, `peerscrip-broker` and `peerscrip-merchant`, share
//! (architecture.md "Binaries and the user's path"): the parts of their configuration that
//! are the same for every node (NATS, data directory, suite, key, subjects, logs), the key
//! files, the record of a data directory's identity, the log output, the shutdown
//! signal, the live event export (`export_stream`), the admin listener (`/metrics`,
//! `/healthz`, `/readyz`, `/status`), systemd's readiness notification, and the parts of
//! high availability on a JetStream cluster (`ha`, docs/adr/0017). Each node's own
//! settings and its `run` live in `broker::config`/`broker::daemon`
//! and `merchant::config`/`merchant::daemon`.
//!
//! Behind the `daemon` feature, so that the wallet and the tests do not pull in clap, TOML
//! and the log subscriber.

pub mod admin;
pub mod config;
pub mod exit;
pub mod export;
pub mod ha;
pub mod identity;
pub mod keys;
pub mod logging;
pub mod notify;
pub mod quotas;
pub mod signal;
pub mod start;

pub use admin::{Admin, AdminError, AdminSettings};
pub use config::{
    CommonArgs, CommonFile, ConfigError, LogFormat, NodeSettings, read_toml, resolve_common,
};
pub use identity::{IdentityError, NodeIdentity};
pub use keys::{KeyFileError, load_key_pair, load_or_create_root_key, read_secret_line};
pub use logging::init as init_logging;
pub use signal::{Shutdown, shutdown_signal};
pub use start::{prepare_data_dir, warn_of_suite};
