//! The configuration of `peerscrip-broker`: the common settings of every daemon
//! (`shared::daemon::config`: NATS, data directory, suite, key files, subject prefix,
//! logs) and the broker's policy of section 4 and its deadlines (section 7): scrip
//! lifetime, renewal grace, and how long a 6.2 exchange and a 6.5 escrow wait. Each value
//! comes from the TOML file (`--config`), then the environment, then a flag; the later
//! one wins. `ops/deploy/broker.toml` is the annotated example.

use std::path::PathBuf;

use serde::Deserialize;
use shared::daemon::config::{
    AdminFile, CommonArgs, CommonFile, ConfigError, LogFile, NatsFile, NodeFile, NodeSettings,
    base_of, path_setting, positive_secs, read_toml, redacted_url, resolve_common,
};

use shared::daemon::export::is_stream_name;
use shared::daemon::ha::{DEFAULT_LEASE_TTL, HaSettings, MAX_LEASE_TTL, MIN_LEASE_TTL};

use crate::core::Config;

/// `peerscrip-broker`: the broker daemon on NATS.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "peerscrip-broker", version, about)]
pub struct BrokerArgs {
    /// Settings every daemon has.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Lifetime of issued BrokerScrip, seconds [file: broker.scrip_lifetime_secs;
    /// default 30 days].
    #[arg(long, env = "PEERSCRIP_SCRIP_LIFETIME_SECS")]
    pub scrip_lifetime_secs: Option<u64>,
    /// How long after expiry a scrip can be renewed, seconds [file: broker.grace_secs;
    /// default one year].
    #[arg(long, env = "PEERSCRIP_GRACE_SECS")]
    pub grace_secs: Option<u64>,
    /// How long an announced 6.2 exchange waits for the merchant, seconds
    /// [file: broker.exchange_window_secs; default 600].
    #[arg(long, env = "PEERSCRIP_EXCHANGE_WINDOW_SECS")]
    pub exchange_window_secs: Option<u64>,
    /// How long a 6.5 escrow waits for the merchant, seconds
    /// [file: broker.escrow_window_secs; default 600].
    #[arg(long, env = "PEERSCRIP_ESCROW_WINDOW_SECS")]
    pub escrow_window_secs: Option<u64>,
    /// How often the broker's timer enforces deadlines and re-sends, seconds
    /// [file: broker.expire_every_secs; default 60].
    #[arg(long, env = "PEERSCRIP_EXPIRE_EVERY_SECS")]
    pub expire_every_secs: Option<u64>,
    /// The operator's public key (PEM): the one key whose administration requests the
    /// broker serves (`peerscrip-ops bank|peers`, ADR 0010) [file: broker.operator_key;
    /// unset: no administration over the bus].
    #[arg(long, env = "PEERSCRIP_OPERATOR_PUBLIC_KEY")]
    pub operator_key: Option<PathBuf>,
    /// Run highly available on a JetStream cluster (docs/adr/0017): the log is replicated
    /// to a stream before any reply leaves, and only the holder of the lease serves
    /// [file: ha.enabled; default off].
    #[arg(long, env = "PEERSCRIP_HA")]
    pub ha: bool,
    /// This broker's name in the lease and the logs [file: ha.instance; default
    /// `<host>:<pid>`].
    #[arg(long, env = "PEERSCRIP_HA_INSTANCE")]
    pub ha_instance: Option<String>,
    /// How long the lease lives without a renewal, seconds: how long the deployment may be
    /// without a broker after the holder dies [file: ha.lease_ttl_secs; default 10].
    #[arg(long, env = "PEERSCRIP_HA_LEASE_TTL_SECS")]
    pub ha_lease_ttl_secs: Option<u64>,
    /// Print the resolved configuration (no secrets) and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// The `[ha]` section of the file (docs/adr/0017; `ops/deploy/ha/`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HaFile {
    /// See [`BrokerArgs::ha`].
    pub enabled: Option<bool>,
    /// The stream of the replicated log [default `PEERSCRIP_BROKER_LOG`].
    pub stream: Option<String>,
    /// The subject prefix of the replicated log [default `peerscrip.ha`].
    pub subject_prefix: Option<String>,
    /// The lease's KV bucket [default `peerscrip_lease`].
    pub bucket: Option<String>,
    /// See [`BrokerArgs::ha_lease_ttl_secs`].
    pub lease_ttl_secs: Option<u64>,
    /// The replicas of the stream and the bucket [default 3].
    pub replicas: Option<usize>,
    /// See [`BrokerArgs::ha_instance`].
    pub instance: Option<String>,
}

/// The `[broker]` section of the file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerSection {
    /// See [`BrokerArgs::scrip_lifetime_secs`].
    pub scrip_lifetime_secs: Option<u64>,
    /// See [`BrokerArgs::grace_secs`].
    pub grace_secs: Option<u64>,
    /// See [`BrokerArgs::exchange_window_secs`].
    pub exchange_window_secs: Option<u64>,
    /// See [`BrokerArgs::escrow_window_secs`].
    pub escrow_window_secs: Option<u64>,
    /// See [`BrokerArgs::operator_key`].
    pub operator_key: Option<PathBuf>,
    /// See [`BrokerArgs::expire_every_secs`].
    pub expire_every_secs: Option<u64>,
}

/// The broker's configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerFile {
    /// `[node]`.
    pub node: NodeFile,
    /// `[nats]`.
    pub nats: NatsFile,
    /// `[log]`.
    pub log: LogFile,
    /// `[admin]`: the admin listener (README "Operate it").
    pub admin: AdminFile,
    /// `[broker]`.
    pub broker: BrokerSection,
    /// `[quotas]` (protocol.md section 10).
    pub quotas: shared::node::Quotas,
    /// `[ha]`: high availability (docs/adr/0017).
    pub ha: HaFile,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Settings every daemon has.
    pub node: NodeSettings,
    /// The core's policy (suite, lifetimes, deadlines).
    pub core: Config,
    /// The operator's public key file, if administration over the bus is served.
    pub operator_key: Option<PathBuf>,
    /// How often the timer enforces deadlines (`shell::serve_every`).
    pub expire_every: std::time::Duration,
    /// High availability, when on (`crate::ha`).
    pub ha: Option<HaSettings>,
}

/// The broker's redb file inside its data directory.
pub const LOG_FILE: &str = "broker.redb";

impl BrokerConfig {
    /// Reads `args.common.config` (if given) and resolves it with `args`; `secret_env`
    /// reads the secrets' environment variables (`std::env::var` in the daemon).
    ///
    /// # Errors
    /// An unreadable or malformed file, or the first missing or invalid value, named.
    pub fn load(
        args: &BrokerArgs,
        secret_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BrokerConfig, ConfigError> {
        let file = match &args.common.config {
            Some(path) => read_toml(path)?,
            None => BrokerFile::default(),
        };
        BrokerConfig::resolve(
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
        args: &BrokerArgs,
        file: BrokerFile,
        base: PathBuf,
        secret_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BrokerConfig, ConfigError> {
        let common = CommonFile {
            node: file.node,
            nats: file.nats,
            log: file.log,
            admin: file.admin,
            base,
        };
        let operator_key = path_setting(
            args.operator_key.as_ref(),
            file.broker.operator_key.as_ref(),
            &common.base,
        );
        let node = resolve_common(&args.common, &common, secret_env)?;
        let defaults = Config::new(node.suite);
        let section = &file.broker;
        let core = Config {
            suite: node.suite,
            scrip_lifetime_secs: positive_secs(
                "broker.scrip_lifetime_secs (--scrip-lifetime-secs)",
                args.scrip_lifetime_secs,
                section.scrip_lifetime_secs,
                defaults.scrip_lifetime_secs,
            )?,
            grace_secs: positive_secs(
                "broker.grace_secs (--grace-secs)",
                args.grace_secs,
                section.grace_secs,
                defaults.grace_secs,
            )?,
            exchange_window_secs: positive_secs(
                "broker.exchange_window_secs (--exchange-window-secs)",
                args.exchange_window_secs,
                section.exchange_window_secs,
                defaults.exchange_window_secs,
            )?,
            escrow_window_secs: positive_secs(
                "broker.escrow_window_secs (--escrow-window-secs)",
                args.escrow_window_secs,
                section.escrow_window_secs,
                defaults.escrow_window_secs,
            )?,
            quotas: shared::daemon::quotas::resolve(file.quotas, secret_env)?,
        };
        let expire_every = std::time::Duration::from_secs(positive_secs(
            "broker.expire_every_secs (--expire-every-secs)",
            args.expire_every_secs,
            file.broker.expire_every_secs,
            crate::shell::EXPIRE_EVERY.as_secs(),
        )?);
        let ha = resolve_ha(args, file.ha)?;
        if ha.is_some() && node.export.is_some() {
            return Err(ConfigError::invalid(
                "node.export_stream (--export-stream)",
                "not with [ha]: the replicated log's stream is the log's JetStream copy \
                 (docs/adr/0017)",
            ));
        }
        Ok(BrokerConfig {
            node,
            core,
            operator_key,
            expire_every,
            ha,
        })
    }

    /// The broker's redb file.
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.node.data_dir.join(LOG_FILE)
    }

    /// The resolved values, one `key = value` line each, secrets shown only as set or not
    /// (`--check-config`).
    #[must_use]
    pub fn describe(&self) -> String {
        let n = &self.node;
        let c = &self.core;
        format!(
            "suite = {}\ndata_dir = {}\nkey = {}\nkey_passphrase = {}\nroot_key = {}\n\
             subject_prefix = {}\nnats_url = {}\nnats_credentials = {}\nlog_format = {}\n\
             log_level = {}\nscrip_lifetime_secs = {}\ngrace_secs = {}\n\
             exchange_window_secs = {}\nescrow_window_secs = {}\nexpire_every_secs = {}\n\
             operator_key = {}\n",
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
            c.scrip_lifetime_secs,
            c.grace_secs,
            c.exchange_window_secs,
            c.escrow_window_secs,
            self.expire_every.as_secs(),
            self.operator_key
                .as_ref()
                .map_or_else(|| "none".to_owned(), |p| p.display().to_string()),
        ) + &shared::daemon::quotas::describe(&c.quotas)
            + &n.describe_export()
            + &n.describe_admin()
            + &n.describe_nats_tls()
            + &self.describe_ha()
    }

    /// The `[ha]` lines of `--check-config`.
    fn describe_ha(&self) -> String {
        match &self.ha {
            None => "ha = off\n".to_owned(),
            Some(ha) => format!(
                "ha = on\nha.stream = {}\nha.subject_prefix = {}\nha.bucket = {}\n\
                 ha.lease_ttl_secs = {}\nha.replicas = {}\nha.instance = {}\n",
                ha.stream,
                ha.subject_prefix,
                ha.bucket,
                ha.lease_ttl.as_secs(),
                ha.replicas,
                ha.instance
            ),
        }
    }
}

/// The `[ha]` settings: off unless `--ha` or `ha.enabled`; each name checked by the
/// server's rules, the TTL within [`MIN_LEASE_TTL`]..=[`MAX_LEASE_TTL`] (the stream's
/// duplicate window outlasts any lease), an odd number of replicas up to 5.
fn resolve_ha(args: &BrokerArgs, file: HaFile) -> Result<Option<HaSettings>, ConfigError> {
    if !(args.ha || file.enabled == Some(true)) {
        return Ok(None);
    }
    let instance = args
        .ha_instance
        .clone()
        .or(file.instance)
        .unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default();
            format!("{host}:{}", std::process::id())
        });
    let mut ha = HaSettings::with_defaults(instance);
    if let Some(stream) = file.stream {
        if !is_stream_name(&stream) {
            return Err(ConfigError::invalid(
                "ha.stream",
                "not a JetStream stream name (no whitespace, '.', '*', '>', '/' or '\\')",
            ));
        }
        ha.stream = stream;
    }
    if let Some(bucket) = file.bucket {
        let valid = !bucket.is_empty()
            && bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(ConfigError::invalid(
                "ha.bucket",
                "a KV bucket name is letters, digits, '_' and '-'",
            ));
        }
        ha.bucket = bucket;
    }
    if let Some(prefix) = file.subject_prefix {
        ha.subject_prefix = shared::bus::Subjects::new(&prefix)
            .map_err(|e| ConfigError::invalid("ha.subject_prefix", e.to_string()))?
            .prefix()
            .to_owned();
    }
    let ttl = std::time::Duration::from_secs(positive_secs(
        "ha.lease_ttl_secs (--ha-lease-ttl-secs)",
        args.ha_lease_ttl_secs,
        file.lease_ttl_secs,
        DEFAULT_LEASE_TTL.as_secs(),
    )?);
    if !(MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&ttl) {
        return Err(ConfigError::invalid(
            "ha.lease_ttl_secs (--ha-lease-ttl-secs)",
            format!(
                "must be {} to {} seconds",
                MIN_LEASE_TTL.as_secs(),
                MAX_LEASE_TTL.as_secs()
            ),
        ));
    }
    ha.lease_ttl = ttl;
    if let Some(replicas) = file.replicas {
        if !matches!(replicas, 1 | 3 | 5) {
            return Err(ConfigError::invalid(
                "ha.replicas",
                "must be 1, 3 or 5 (a quorum of 3 survives one server, of 5 two)",
            ));
        }
        ha.replicas = replicas;
    }
    Ok(Some(ha))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;
    use shared::Suite;

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_file(text: &str) -> BrokerFile {
        toml::from_str(text).unwrap()
    }

    const FILE: &str = r#"
        [node]
        suite = "paper"
        data_dir = "data/broker"
        key = "keys/broker/key.pem"

        [broker]
        scrip_lifetime_secs = 3600
        grace_secs = 7200
    "#;

    #[test]
    fn file_values_apply_and_a_flag_overrides_them() {
        let args = BrokerArgs::try_parse_from(["peerscrip-broker"]).unwrap();
        let c = BrokerConfig::resolve(&args, parse_file(FILE), "/srv".into(), &no_env).unwrap();
        assert_eq!(c.core.suite, Suite::Paper);
        assert_eq!(c.core.scrip_lifetime_secs, 3600);
        assert_eq!(c.core.grace_secs, 7200);
        assert_eq!(c.core.exchange_window_secs, 600);
        assert_eq!(c.log_path(), PathBuf::from("/srv/data/broker/broker.redb"));

        let args = BrokerArgs::try_parse_from([
            "peerscrip-broker",
            "--scrip-lifetime-secs",
            "60",
            "--suite",
            "modern",
            "--escrow-window-secs",
            "30",
        ])
        .unwrap();
        let c = BrokerConfig::resolve(&args, parse_file(FILE), "/srv".into(), &no_env).unwrap();
        assert_eq!(c.core.suite, Suite::Modern);
        assert_eq!(c.core.scrip_lifetime_secs, 60);
        assert_eq!(c.core.grace_secs, 7200);
        assert_eq!(c.core.escrow_window_secs, 30);
    }

    /// The operator's key: unset serves no administration; a file path is relative to
    /// the file, and the flag wins.
    #[test]
    fn the_operator_key_comes_from_the_file_or_the_flag() {
        let args = BrokerArgs::try_parse_from(["peerscrip-broker"]).unwrap();
        let c = BrokerConfig::resolve(&args, parse_file(FILE), "/srv".into(), &no_env).unwrap();
        assert_eq!(c.operator_key, None);
        assert!(c.describe().contains("operator_key = none"));
        assert_eq!(c.expire_every, std::time::Duration::from_secs(60));

        let with_key = format!("{FILE}operator_key = \"keys/operator/key.pub.pem\"\n");
        let c =
            BrokerConfig::resolve(&args, parse_file(&with_key), "/srv".into(), &no_env).unwrap();
        assert_eq!(
            c.operator_key,
            Some(PathBuf::from("/srv/keys/operator/key.pub.pem"))
        );
        let args =
            BrokerArgs::try_parse_from(["peerscrip-broker", "--operator-key", "/etc/op.pem"])
                .unwrap();
        let c =
            BrokerConfig::resolve(&args, parse_file(&with_key), "/srv".into(), &no_env).unwrap();
        assert_eq!(c.operator_key, Some(PathBuf::from("/etc/op.pem")));
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        let args = BrokerArgs::try_parse_from(["peerscrip-broker"]).unwrap();
        let file = parse_file("[broker]\ngrace_secs = 0\n[node]\ndata_dir = \"d\"\nkey = \"k\"\n");
        let e = BrokerConfig::resolve(&args, file, "/srv".into(), &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "broker.grace_secs (--grace-secs): must be at least 1 second"
        );
        let e = BrokerArgs::try_parse_from(["peerscrip-broker", "--suite", "rot13"]).unwrap_err();
        assert!(e.to_string().contains("rot13"), "{e}");
        let e = toml::from_str::<BrokerFile>("[broker]\ngrace = 5\n").unwrap_err();
        assert!(e.to_string().contains("grace"), "{e}");
    }

    /// `[ha]`: off by default; on with its defaults; each value checked, naming its field;
    /// never with a live export beside it.
    #[test]
    fn high_availability_is_configured_and_checked() {
        let args = BrokerArgs::try_parse_from(["peerscrip-broker"]).unwrap();
        let c = BrokerConfig::resolve(&args, parse_file(FILE), "/srv".into(), &no_env).unwrap();
        assert_eq!(c.ha, None);
        assert!(c.describe().contains("ha = off\n"));

        let args = BrokerArgs::try_parse_from(["peerscrip-broker", "--ha", "--ha-instance", "b1"])
            .unwrap();
        let c = BrokerConfig::resolve(&args, parse_file(FILE), "/srv".into(), &no_env).unwrap();
        assert_eq!(
            c.ha,
            Some(HaSettings::with_defaults("b1".to_owned())),
            "the defaults"
        );
        let file = format!(
            "{FILE}[ha]\nenabled = true\nstream = \"LOG\"\nbucket = \"lease-1\"\n\
             lease_ttl_secs = 5\nreplicas = 5\nsubject_prefix = \"acme.ha\"\n"
        );
        let args = BrokerArgs::try_parse_from(["peerscrip-broker"]).unwrap();
        let ha = BrokerConfig::resolve(&args, parse_file(&file), "/srv".into(), &no_env)
            .unwrap()
            .ha
            .unwrap();
        assert_eq!(
            (
                ha.stream.as_str(),
                ha.bucket.as_str(),
                ha.subject_prefix.as_str()
            ),
            ("LOG", "lease-1", "acme.ha")
        );
        assert_eq!((ha.lease_ttl.as_secs(), ha.replicas), (5, 5));

        let refused = |extra: &str, flags: &[&str]| {
            let args =
                BrokerArgs::try_parse_from([&["peerscrip-broker", "--ha"][..], flags].concat())
                    .unwrap();
            let file = format!("{FILE}{extra}");
            BrokerConfig::resolve(&args, parse_file(&file), "/srv".into(), &no_env)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused("", &["--ha-lease-ttl-secs", "1"]),
            "ha.lease_ttl_secs (--ha-lease-ttl-secs): must be 2 to 60 seconds"
        );
        assert_eq!(
            refused("[ha]\nreplicas = 2\n", &[]),
            "ha.replicas: must be 1, 3 or 5 (a quorum of 3 survives one server, of 5 two)"
        );
        assert_eq!(
            refused("[ha]\nstream = \"a.b\"\n", &[]),
            "ha.stream: not a JetStream stream name (no whitespace, '.', '*', '>', '/' or '\\')"
        );
        assert_eq!(
            refused("[ha]\nbucket = \"a b\"\n", &[]),
            "ha.bucket: a KV bucket name is letters, digits, '_' and '-'"
        );
        assert_eq!(
            refused("", &["--export-stream", "EXPORT"]),
            "node.export_stream (--export-stream): not with [ha]: the replicated log's stream \
             is the log's JetStream copy (docs/adr/0017)"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let args = BrokerArgs::try_parse_from([
            "peerscrip-broker",
            "--config",
            "/nonexistent/broker.toml",
        ])
        .unwrap();
        let e = BrokerConfig::load(&args, &no_env).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read configuration file /nonexistent/broker.toml"),
            "{e}"
        );
    }

    #[test]
    fn the_example_file_of_the_deployment_parses() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ops/deploy/broker.toml");
        let file: BrokerFile = read_toml(&path).unwrap();
        assert!(file.node.data_dir.is_some());
    }

    /// `ops/deploy/ha/`: two brokers of one deployment, one root key, their own data
    /// directories, the three servers (docs/adr/0017).
    #[test]
    fn the_examples_of_the_highly_available_deployment_resolve() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ops/deploy/ha");
        let args = BrokerArgs::try_parse_from(["peerscrip-broker"]).unwrap();
        let resolved: Vec<BrokerConfig> = ["broker-a.toml", "broker-b.toml"]
            .iter()
            .map(|name| {
                let file: BrokerFile = read_toml(&dir.join(name)).unwrap();
                BrokerConfig::resolve(&args, file, dir.clone(), &no_env).unwrap()
            })
            .collect();
        let (a, b) = (&resolved[0], &resolved[1]);
        let (ha_a, ha_b) = (a.ha.as_ref().unwrap(), b.ha.as_ref().unwrap());
        assert_eq!(
            (ha_a.instance.as_str(), ha_b.instance.as_str()),
            ("broker-a", "broker-b")
        );
        assert_eq!(ha_a.lease_ttl, DEFAULT_LEASE_TTL);
        assert_eq!(
            (ha_a.stream.as_str(), ha_a.bucket.as_str()),
            (ha_b.stream.as_str(), ha_b.bucket.as_str())
        );
        assert_ne!(a.node.data_dir, b.node.data_dir);
        assert_eq!(a.node.root_key, b.node.root_key);
        assert_eq!(a.node.key, b.node.key);
        assert_eq!(a.node.nats_url.split(',').count(), 3);
    }
}
