//! The configuration of `peerscrip-merchant`: the common settings of every
//! daemon (`shared::daemon::config`) and the merchant's own: the broker it pins (its
//! public key file, and optionally the UID to check it against, protocol.md section 1),
//! its catalogue file ([`catalogue`]), its bank account (PAN, and the PANSecret from a
//! file or the environment: the merchant proves its account with an IdProof in 6.0, 6.2
//! and 6.7), scrip lifetime, renewal grace, the 6.7 escrow deadline, and how long it waits
//! for the broker's answer. File < environment < flag, as for the broker.
//! `ops/deploy/merchant.toml` is the annotated example.

pub mod catalogue;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use shared::daemon::config::{
    AdminFile, CommonArgs, CommonFile, ConfigError, LogFile, NatsFile, NodeFile, NodeSettings,
    base_of, path_setting, positive_secs, read_toml, redacted_url, resolve_common,
};
use shared::daemon::read_secret_line;
use shared::wire::bodies::MerchantName;
use shared::{Pan, PanSecret, Uid};

use crate::core::catalogue::Catalogue;
use crate::core::{
    DEFAULT_ESCROW_WINDOW_SECS, DEFAULT_RENEWAL_GRACE_SECS, DEFAULT_SCRIP_LIFETIME_SECS,
};
use crate::daemon::peers::LookupLimits;

/// The environment variable holding the merchant's PANSecret (or use `pan_secret_file`).
pub const ENV_PAN_SECRET: &str = "PEERSCRIP_PAN_SECRET";
/// How long the merchant waits for the broker's answer by default, seconds.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 10;
/// The merchant's redb file inside its data directory.
pub const LOG_FILE: &str = "merchant.redb";

/// `peerscrip-merchant`: a merchant daemon on NATS.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "peerscrip-merchant", version, about)]
pub struct MerchantArgs {
    /// Settings every daemon has.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The broker's public key (SPKI PEM, `key.pub.pem` of its keygen), pinned
    /// [file: merchant.broker_key].
    #[arg(long, env = "PEERSCRIP_BROKER_KEY")]
    pub broker_key: Option<PathBuf>,
    /// The broker's UID, checked against its key when given [file: merchant.broker_uid].
    #[arg(long, env = "PEERSCRIP_BROKER_UID")]
    pub broker_uid: Option<Uid>,
    /// The merchant's display name, shown to customers (1-64 characters, no control
    /// characters; docs/adr/0016) [file: merchant.name; default none: the UID is shown].
    #[arg(long, env = "PEERSCRIP_MERCHANT_NAME")]
    pub name: Option<String>,
    /// The catalogue file (TOML) [file: merchant.catalogue].
    #[arg(long, env = "PEERSCRIP_CATALOGUE")]
    pub catalogue: Option<PathBuf>,
    /// The merchant's bank account number [file: merchant.pan].
    #[arg(long, env = "PEERSCRIP_PAN")]
    pub pan: Option<String>,
    /// File whose first line is the account's PANSecret (or set PEERSCRIP_PAN_SECRET)
    /// [file: merchant.pan_secret_file].
    #[arg(long, env = "PEERSCRIP_PAN_SECRET_FILE")]
    pub pan_secret_file: Option<PathBuf>,
    /// Lifetime of issued VendorScrip, seconds [file: merchant.scrip_lifetime_secs;
    /// default 30 days].
    #[arg(long, env = "PEERSCRIP_SCRIP_LIFETIME_SECS")]
    pub scrip_lifetime_secs: Option<u64>,
    /// How long after expiry a scrip can be renewed, seconds [file: merchant.grace_secs;
    /// default one year].
    #[arg(long, env = "PEERSCRIP_GRACE_SECS")]
    pub grace_secs: Option<u64>,
    /// Deadline of a 6.7 escrow, seconds [file: merchant.escrow_window_secs; default 600].
    #[arg(long, env = "PEERSCRIP_ESCROW_WINDOW_SECS")]
    pub escrow_window_secs: Option<u64>,
    /// How long to wait for the broker's answer, seconds
    /// [file: merchant.request_timeout_secs; default 10].
    #[arg(long, env = "PEERSCRIP_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Key lookups of unknown senders (6.0b) under way at once
    /// [file: merchant.key_lookups; default 4].
    #[arg(long, env = "PEERSCRIP_KEY_LOOKUPS")]
    pub key_lookups: Option<u64>,
    /// Key lookups of unknown senders started per second
    /// [file: merchant.key_lookups_per_sec; default 20].
    #[arg(long, env = "PEERSCRIP_KEY_LOOKUPS_PER_SEC")]
    pub key_lookups_per_sec: Option<u64>,
    /// Unknown senders that may wait for a key lookup; a frame of another is dropped
    /// [file: merchant.key_lookup_queue; default 64].
    #[arg(long, env = "PEERSCRIP_KEY_LOOKUP_QUEUE")]
    pub key_lookup_queue: Option<u64>,
    /// How long a sender the broker does not know is remembered as unknown, seconds
    /// [file: merchant.unknown_peer_secs; default 60].
    #[arg(long, env = "PEERSCRIP_UNKNOWN_PEER_SECS")]
    pub unknown_peer_secs: Option<u64>,
    /// Print the resolved configuration (no secrets) and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// The `[merchant]` section of the file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MerchantSection {
    /// See [`MerchantArgs::broker_key`].
    pub broker_key: Option<PathBuf>,
    /// See [`MerchantArgs::broker_uid`].
    pub broker_uid: Option<String>,
    /// See [`MerchantArgs::name`].
    pub name: Option<String>,
    /// See [`MerchantArgs::catalogue`].
    pub catalogue: Option<PathBuf>,
    /// See [`MerchantArgs::pan`].
    pub pan: Option<String>,
    /// See [`MerchantArgs::pan_secret_file`].
    pub pan_secret_file: Option<PathBuf>,
    /// See [`MerchantArgs::scrip_lifetime_secs`].
    pub scrip_lifetime_secs: Option<u64>,
    /// See [`MerchantArgs::grace_secs`].
    pub grace_secs: Option<u64>,
    /// See [`MerchantArgs::escrow_window_secs`].
    pub escrow_window_secs: Option<u64>,
    /// See [`MerchantArgs::request_timeout_secs`].
    pub request_timeout_secs: Option<u64>,
    /// See [`MerchantArgs::key_lookups`].
    pub key_lookups: Option<u64>,
    /// See [`MerchantArgs::key_lookups_per_sec`].
    pub key_lookups_per_sec: Option<u64>,
    /// See [`MerchantArgs::key_lookup_queue`].
    pub key_lookup_queue: Option<u64>,
    /// See [`MerchantArgs::unknown_peer_secs`].
    pub unknown_peer_secs: Option<u64>,
}

/// The merchant's configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MerchantFile {
    /// `[node]`.
    pub node: NodeFile,
    /// `[nats]`.
    pub nats: NatsFile,
    /// `[log]`.
    pub log: LogFile,
    /// `[admin]`: the admin listener (README "Operate it").
    pub admin: AdminFile,
    /// `[merchant]`.
    pub merchant: MerchantSection,
    /// `[quotas]` (protocol.md section 10).
    pub quotas: shared::node::Quotas,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct MerchantConfig {
    /// Settings every daemon has.
    pub node: NodeSettings,
    /// The pinned broker's public key file.
    pub broker_key: PathBuf,
    /// The broker's UID to check the key against, if configured.
    pub broker_uid: Option<Uid>,
    /// The display name (docs/adr/0016), if configured.
    pub name: Option<MerchantName>,
    /// The catalogue file it was read from.
    pub catalogue_file: PathBuf,
    /// The catalogue.
    pub catalogue: Catalogue,
    /// The merchant's bank account.
    pub pan: Pan,
    /// Its PANSecret (redacted in `Debug`).
    pub pan_secret: PanSecret,
    /// Lifetime of issued scrip, seconds.
    pub scrip_lifetime_secs: u64,
    /// Renewal grace, seconds.
    pub grace_secs: u64,
    /// Deadline of a 6.7 escrow, seconds.
    pub escrow_window_secs: u64,
    /// How long to wait for the broker.
    pub request_timeout: Duration,
    /// The bounds on key lookups of unknown senders (protocol.md section 10).
    pub lookups: LookupLimits,
    /// What one peer may make the merchant spend and hold (section 10).
    pub quotas: shared::node::Quotas,
}

impl MerchantConfig {
    /// Reads `args.common.config` (if given) and resolves it with `args`; `secret_env`
    /// reads the secrets' environment variables (`std::env::var` in the daemon).
    ///
    /// # Errors
    /// An unreadable or malformed file, or the first missing or invalid value, named.
    pub fn load(
        args: &MerchantArgs,
        secret_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<MerchantConfig, ConfigError> {
        let file = match &args.common.config {
            Some(path) => read_toml(path)?,
            None => MerchantFile::default(),
        };
        MerchantConfig::resolve(
            args,
            file,
            base_of(args.common.config.as_deref()),
            secret_env,
        )
    }

    /// Resolves `args` over `file`, whose relative paths are relative to `base`.
    ///
    /// # Errors
    /// The first missing or invalid value, named.
    pub fn resolve(
        args: &MerchantArgs,
        file: MerchantFile,
        base: PathBuf,
        secret_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<MerchantConfig, ConfigError> {
        let m = &file.merchant;
        let common = CommonFile {
            node: file.node.clone(),
            nats: file.nats.clone(),
            log: file.log.clone(),
            admin: file.admin.clone(),
            base: base.clone(),
        };
        let node = resolve_common(&args.common, &common, secret_env)?;
        let broker_key = path_setting(args.broker_key.as_ref(), m.broker_key.as_ref(), &base)
            .ok_or(ConfigError::Missing {
                field: "merchant.broker_key",
                flag: "--broker-key",
                env: "PEERSCRIP_BROKER_KEY",
            })?;
        let broker_uid = match (&args.broker_uid, &m.broker_uid) {
            (Some(uid), _) => Some(*uid),
            (None, Some(text)) => Some(text.parse().map_err(|e| {
                ConfigError::invalid("merchant.broker_uid (--broker-uid)", format!("{e}"))
            })?),
            (None, None) => None,
        };
        let name = args
            .name
            .as_deref()
            .or(m.name.as_deref())
            .map(MerchantName::new)
            .transpose()
            .map_err(|e| ConfigError::invalid("merchant.name (--name)", e.to_string()))?;
        let catalogue_file = path_setting(args.catalogue.as_ref(), m.catalogue.as_ref(), &base)
            .ok_or(ConfigError::Missing {
                field: "merchant.catalogue",
                flag: "--catalogue",
                env: "PEERSCRIP_CATALOGUE",
            })?;
        let catalogue = catalogue::load(&catalogue_file)?;
        let pan = args
            .pan
            .clone()
            .or_else(|| m.pan.clone())
            .ok_or(ConfigError::Missing {
                field: "merchant.pan",
                flag: "--pan",
                env: "PEERSCRIP_PAN",
            })?;
        if pan.trim().is_empty() {
            return Err(ConfigError::invalid("merchant.pan (--pan)", "is empty"));
        }
        let pan_secret = match (
            secret_env(ENV_PAN_SECRET),
            path_setting(
                args.pan_secret_file.as_ref(),
                m.pan_secret_file.as_ref(),
                &base,
            ),
        ) {
            (Some(value), _) if !value.is_empty() => PanSecret::new(&value),
            (_, Some(path)) => {
                let bytes = read_secret_line(&path)?;
                let text = std::str::from_utf8(bytes.expose()).map_err(|_| {
                    ConfigError::invalid(
                        "merchant.pan_secret_file (--pan-secret-file)",
                        format!("{} is not UTF-8 text", path.display()),
                    )
                })?;
                PanSecret::new(text)
            }
            _ => {
                return Err(ConfigError::Missing {
                    field: "merchant.pan_secret_file",
                    flag: "--pan-secret-file",
                    env: "PEERSCRIP_PAN_SECRET",
                });
            }
        };
        Ok(MerchantConfig {
            broker_key,
            broker_uid,
            name,
            catalogue_file,
            catalogue,
            pan: Pan::new(pan),
            pan_secret,
            scrip_lifetime_secs: positive_secs(
                "merchant.scrip_lifetime_secs (--scrip-lifetime-secs)",
                args.scrip_lifetime_secs,
                m.scrip_lifetime_secs,
                DEFAULT_SCRIP_LIFETIME_SECS,
            )?,
            grace_secs: positive_secs(
                "merchant.grace_secs (--grace-secs)",
                args.grace_secs,
                m.grace_secs,
                DEFAULT_RENEWAL_GRACE_SECS,
            )?,
            escrow_window_secs: positive_secs(
                "merchant.escrow_window_secs (--escrow-window-secs)",
                args.escrow_window_secs,
                m.escrow_window_secs,
                DEFAULT_ESCROW_WINDOW_SECS,
            )?,
            request_timeout: Duration::from_secs(positive_secs(
                "merchant.request_timeout_secs (--request-timeout-secs)",
                args.request_timeout_secs,
                m.request_timeout_secs,
                DEFAULT_REQUEST_TIMEOUT_SECS,
            )?),
            lookups: lookup_limits(args, m)?,
            quotas: shared::daemon::quotas::resolve(file.quotas, secret_env)?,
            node,
        })
    }

    /// The merchant's redb file.
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.node.data_dir.join(LOG_FILE)
    }

    /// The resolved values, one `key = value` line each, secrets shown only as set
    /// (`--check-config`).
    #[must_use]
    pub fn describe(&self) -> String {
        let n = &self.node;
        format!(
            "suite = {}\ndata_dir = {}\nkey = {}\nkey_passphrase = {}\nroot_key = {}\n\
             subject_prefix = {}\nnats_url = {}\nnats_credentials = {}\nlog_format = {}\n\
             log_level = {}\nbroker_key = {}\nbroker_uid = {}\nname = {}\n\
             catalogue = {} ({} items)\n\
             pan = {}\npan_secret = set\nscrip_lifetime_secs = {}\ngrace_secs = {}\n\
             escrow_window_secs = {}\nrequest_timeout_secs = {}\nkey_lookups = {}\n\
             key_lookups_per_sec = {}\nkey_lookup_queue = {}\nunknown_peer_secs = {}\n",
            n.suite,
            n.data_dir.display(),
            n.key.display(),
            if n.key_passphrase.is_some() {
                "set"
            } else {
                "none"
            },
            n.root_key.display(),
            n.subjects.prefix(),
            redacted_url(&n.nats_url),
            match &n.nats_credentials {
                None => "none".to_owned(),
                Some(c) => format!("{c:?}"),
            },
            n.log_format,
            n.log_level.as_deref().unwrap_or("(RUST_LOG, else info)"),
            self.broker_key.display(),
            self.broker_uid
                .map_or_else(|| "(from the key)".to_owned(), |u| u.to_string()),
            self.name.as_ref().map_or_else(
                || "none (customers see the UID)".to_owned(),
                |n| format!("{:?}", n.as_str())
            ),
            self.catalogue_file.display(),
            self.catalogue.items().count(),
            self.pan.redacted(),
            self.scrip_lifetime_secs,
            self.grace_secs,
            self.escrow_window_secs,
            self.request_timeout.as_secs(),
            self.lookups.concurrent,
            self.lookups.per_sec,
            self.lookups.queue,
            self.lookups.unknown_for.as_secs(),
        ) + &shared::daemon::quotas::describe(&self.quotas)
            + &n.describe_export()
            + &n.describe_admin()
            + &n.describe_nats_tls()
    }
}

/// The key lookups' bounds: flag over file over [`LookupLimits::default`], each at least
/// 1; a lookup waits as long as any request to the broker (`request_timeout_secs`).
fn lookup_limits(args: &MerchantArgs, m: &MerchantSection) -> Result<LookupLimits, ConfigError> {
    let defaults = LookupLimits::default();
    let count = |field: &str, flag: Option<u64>, file: Option<u64>, default: usize| {
        let value = flag.or(file).map_or(Ok(default), usize::try_from);
        match value {
            Ok(0) => Err(ConfigError::invalid(field, "must be at least 1")),
            Ok(n) => Ok(n),
            Err(e) => Err(ConfigError::invalid(field, e.to_string())),
        }
    };
    Ok(LookupLimits {
        concurrent: count(
            "merchant.key_lookups (--key-lookups)",
            args.key_lookups,
            m.key_lookups,
            defaults.concurrent,
        )?,
        per_sec: u32::try_from(count(
            "merchant.key_lookups_per_sec (--key-lookups-per-sec)",
            args.key_lookups_per_sec,
            m.key_lookups_per_sec,
            defaults.per_sec as usize,
        )?)
        .map_err(|e| {
            ConfigError::invalid(
                "merchant.key_lookups_per_sec (--key-lookups-per-sec)",
                e.to_string(),
            )
        })?,
        queue: count(
            "merchant.key_lookup_queue (--key-lookup-queue)",
            args.key_lookup_queue,
            m.key_lookup_queue,
            defaults.queue,
        )?,
        unknown_for: Duration::from_secs(positive_secs(
            "merchant.unknown_peer_secs (--unknown-peer-secs)",
            args.unknown_peer_secs,
            m.unknown_peer_secs,
            defaults.unknown_for.as_secs(),
        )?),
        timeout: Duration::from_secs(positive_secs(
            "merchant.request_timeout_secs (--request-timeout-secs)",
            args.request_timeout_secs,
            m.request_timeout_secs,
            DEFAULT_REQUEST_TIMEOUT_SECS,
        )?),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;
    use shared::Suite;

    use super::*;

    fn deploy() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ops/deploy")
    }

    fn secret_env(name: &str) -> Option<String> {
        (name == ENV_PAN_SECRET).then(|| "merchant secret".to_owned())
    }

    fn example() -> MerchantFile {
        read_toml(&deploy().join("merchant.toml")).unwrap()
    }

    #[test]
    fn the_example_file_resolves_with_paths_relative_to_it() {
        let args = MerchantArgs::try_parse_from(["peerscrip-merchant"]).unwrap();
        let c = MerchantConfig::resolve(&args, example(), deploy(), &secret_env).unwrap();
        assert_eq!(c.catalogue_file, deploy().join("catalogue.toml"));
        assert!(c.catalogue.get("tea").is_some());
        assert_eq!(c.pan_secret, PanSecret::new("merchant secret"));
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.lookups, LookupLimits::default());
        assert_eq!(c.name, Some(MerchantName::new("Green Tea House").unwrap()));
        assert!(
            c.describe().contains("\nname = \"Green Tea House\"\n"),
            "{}",
            c.describe()
        );
        let shown = format!("{c:?}{}", c.describe());
        assert!(!shown.contains("merchant secret"), "{shown}");
    }

    #[test]
    fn flags_override_the_file() {
        let args = MerchantArgs::try_parse_from([
            "peerscrip-merchant",
            "--suite",
            "paper",
            "--pan",
            "GR000",
            "--request-timeout-secs",
            "3",
            "--key-lookups",
            "2",
            "--key-lookups-per-sec",
            "7",
            "--key-lookup-queue",
            "9",
            "--unknown-peer-secs",
            "5",
            "--broker-uid",
            "000102030405060708090a0b0c0d0e0f",
        ])
        .unwrap();
        let c = MerchantConfig::resolve(&args, example(), deploy(), &secret_env).unwrap();
        assert_eq!(c.node.suite, Suite::Paper);
        assert_eq!(c.pan, Pan::new("GR000"));
        assert_eq!(c.request_timeout, Duration::from_secs(3));
        assert_eq!(
            c.lookups,
            LookupLimits {
                concurrent: 2,
                per_sec: 7,
                queue: 9,
                unknown_for: Duration::from_secs(5),
                timeout: Duration::from_secs(3),
            }
        );
        assert_eq!(
            c.broker_uid.unwrap().to_string(),
            "000102030405060708090a0b0c0d0e0f"
        );
    }

    #[test]
    fn missing_and_bad_values_name_their_field() {
        let args = MerchantArgs::try_parse_from(["peerscrip-merchant"]).unwrap();
        let e = MerchantConfig::resolve(&args, example(), deploy(), &|_| None).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot read ")
                && e.to_string().contains("merchant-tea.pansecret"),
            "{e}"
        );
        let mut file = example();
        file.merchant.pan_secret_file = None;
        let e = MerchantConfig::resolve(&args, file, deploy(), &|_| None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("merchant.pan_secret_file is required"),
            "{e}"
        );
        let mut file = example();
        file.merchant.broker_uid = Some("not-a-uid".to_owned());
        let e = MerchantConfig::resolve(&args, file, deploy(), &secret_env).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("merchant.broker_uid (--broker-uid): invalid Uid"),
            "{e}"
        );
        let mut file = example();
        file.merchant.request_timeout_secs = Some(0);
        let e = MerchantConfig::resolve(&args, file, deploy(), &secret_env).unwrap_err();
        assert!(
            e.to_string().starts_with("merchant.request_timeout_secs"),
            "{e}"
        );
        let mut file = example();
        file.merchant.key_lookup_queue = Some(0);
        let e = MerchantConfig::resolve(&args, file, deploy(), &secret_env).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("merchant.key_lookup_queue (--key-lookup-queue)"),
            "{e}"
        );
    }

    /// The name (docs/adr/0016): flag over file, trimmed; absent means none (the wallet
    /// shows the UID); an invalid one is refused at load with the field and the reason.
    #[test]
    fn the_name_is_optional_trimmed_and_validated() {
        let args =
            MerchantArgs::try_parse_from(["peerscrip-merchant", "--name", "  Tea Two "]).unwrap();
        let c = MerchantConfig::resolve(&args, example(), deploy(), &secret_env).unwrap();
        assert_eq!(c.name.unwrap().as_str(), "Tea Two");

        let args = MerchantArgs::try_parse_from(["peerscrip-merchant"]).unwrap();
        let mut file = example();
        file.merchant.name = None;
        let c = MerchantConfig::resolve(&args, file, deploy(), &secret_env).unwrap();
        assert_eq!(c.name, None);
        assert!(
            c.describe()
                .contains("\nname = none (customers see the UID)\n")
        );

        for (bad, reason) in [
            ("   ", "the name is empty"),
            (
                "Tea\u{1b}[31m",
                "the name holds a control character ('\\u{1b}')",
            ),
            (&*"x".repeat(65), "the name has 65 characters, more than 64"),
        ] {
            let mut file = example();
            file.merchant.name = Some(bad.to_owned());
            let e = MerchantConfig::resolve(&args, file, deploy(), &secret_env).unwrap_err();
            assert_eq!(e.to_string(), format!("merchant.name (--name): {reason}"));
        }
    }
}
