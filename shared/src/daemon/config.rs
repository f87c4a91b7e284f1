//! The settings every daemon has: where NATS is, how to authenticate and whether to
//! require TLS, the
//! data directory, the suite, the key files, the subject prefix and the logs. Each comes
//! from the TOML file given by `--config`, then an environment variable, then a flag; the
//! later one wins (file < env < flag; clap's `env` feature merges the last two). Secrets
//! (the key's passphrase, the NATS password) come from a file named in the configuration
//! or from an environment variable, never from a flag, which any user could read in the
//! process list.
//!
//! Relative paths in the file are relative to the file's directory, so that a deployment
//! directory can be moved as a whole; relative paths in flags and the environment are
//! relative to the working directory. Every error names the field, the flag and the
//! variable to fix.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::admin::AdminSettings;
use super::export::ExportSettings;
use super::keys::{KeyFileError, read_secret_line};
pub use super::logging::LogFormat;
use crate::bus::{ClientCert, NatsCredentials, NatsOptions, NatsTls, Subjects};
use crate::secret::SecretBytes;
use crate::suite::Suite;

/// The NATS server when none is configured.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// The file name of the root key inside the data directory when no other is configured.
pub const DEFAULT_ROOT_KEY_FILE: &str = "root.key";
/// The environment variable holding the private key's passphrase (or use
/// `key_passphrase_file`).
pub const ENV_KEY_PASSPHRASE: &str = "PEERSCRIP_KEY_PASSPHRASE";
/// The environment variable holding the NATS password (or use `nats.password_file`).
pub const ENV_NATS_PASSWORD: &str = "PEERSCRIP_NATS_PASSWORD";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML of the expected layout (the message names the key and line).
    #[error("configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is not valid for its field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, as `section.key` of the file and its flag.
        field: String,
        /// Why.
        reason: String,
    },
    /// A required value is missing everywhere.
    #[error("{field} is required: set it in the configuration file, with {flag} or with {env}")]
    Missing {
        /// The field of the file.
        field: &'static str,
        /// Its flag.
        flag: &'static str,
        /// Its environment variable.
        env: &'static str,
    },
    /// A secret file could not be used.
    #[error(transparent)]
    Secret(#[from] KeyFileError),
}

impl ConfigError {
    /// An invalid value of `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The flags (and environment variables) every daemon takes.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct CommonArgs {
    /// The TOML configuration file (values in it are overridden by the environment and by
    /// flags).
    #[arg(long, env = "PEERSCRIP_CONFIG")]
    pub config: Option<PathBuf>,
    /// NATS server URL(s), comma separated [file: nats.url; default nats://127.0.0.1:4222].
    #[arg(long, env = "PEERSCRIP_NATS_URL")]
    pub nats_url: Option<String>,
    /// NATS user; its password comes from --nats-password-file or PEERSCRIP_NATS_PASSWORD
    /// [file: nats.user].
    #[arg(long, env = "PEERSCRIP_NATS_USER")]
    pub nats_user: Option<String>,
    /// File whose first line is the NATS password [file: nats.password_file].
    #[arg(long, env = "PEERSCRIP_NATS_PASSWORD_FILE")]
    pub nats_password_file: Option<PathBuf>,
    /// NATS credentials file (JWT + NKey seed) instead of a user and password
    /// [file: nats.creds].
    #[arg(long, env = "PEERSCRIP_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// PEM file of the CA that signed the NATS server's certificate; with it the node
    /// requires TLS [file: nats.ca_file; unset: TLS only if the server asks, checked against
    /// the system's roots].
    #[arg(long, env = "PEERSCRIP_NATS_CA_FILE")]
    pub nats_ca_file: Option<PathBuf>,
    /// The node's TLS client certificate (PEM), for a server that verifies clients; needs
    /// --nats-client-key; requires TLS [file: nats.client_cert].
    #[arg(long, env = "PEERSCRIP_NATS_CLIENT_CERT")]
    pub nats_client_cert: Option<PathBuf>,
    /// The private key (PEM) of --nats-client-cert [file: nats.client_key].
    #[arg(long, env = "PEERSCRIP_NATS_CLIENT_KEY")]
    pub nats_client_key: Option<PathBuf>,
    /// The node's data directory (its redb log, root key and identity record)
    /// [file: node.data_dir].
    #[arg(long, env = "PEERSCRIP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The deployment's suite: paper or modern [file: node.suite; default modern].
    #[arg(long, env = "PEERSCRIP_SUITE")]
    pub suite: Option<Suite>,
    /// The node's private key, PKCS#8 PEM as `peerscrip-ops keygen` writes it
    /// [file: node.key].
    #[arg(long, env = "PEERSCRIP_KEY")]
    pub key: Option<PathBuf>,
    /// File whose first line is the private key's passphrase (or set
    /// PEERSCRIP_KEY_PASSPHRASE) [file: node.key_passphrase_file].
    #[arg(long, env = "PEERSCRIP_KEY_PASSPHRASE_FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// The scrip root key file (32 bytes, created with mode 0600 on the first start)
    /// [file: node.root_key; default <data dir>/root.key].
    #[arg(long, env = "PEERSCRIP_ROOT_KEY")]
    pub root_key: Option<PathBuf>,
    /// The NATS subject prefix [file: node.subject_prefix; default peerscrip].
    #[arg(long, env = "PEERSCRIP_SUBJECT_PREFIX")]
    pub subject_prefix: Option<String>,
    /// Publish every event the node appends to this JetStream stream, created on
    /// `<export subject prefix>.>` if missing (`shared::daemon::export`)
    /// [file: node.export_stream; unset: no export].
    #[arg(long, env = "PEERSCRIP_EXPORT_STREAM")]
    pub export_stream: Option<String>,
    /// The subject prefix of the exported events, `<prefix>.<node kind>.<uid>`
    /// [file: node.export_subject_prefix; default peerscrip.events].
    #[arg(long, env = "PEERSCRIP_EXPORT_SUBJECT_PREFIX")]
    pub export_subject_prefix: Option<String>,
    /// Log format: human or json [file: log.format; default human].
    #[arg(long, env = "PEERSCRIP_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log level or RUST_LOG-style directives [file: log.level; default RUST_LOG, else
    /// info].
    #[arg(long, env = "PEERSCRIP_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Serve /metrics, /healthz, /readyz and /status over HTTP on this address, e.g.
    /// 127.0.0.1:9464; an address beyond loopback needs --admin-token-file
    /// [file: admin.listen; unset: no admin listener].
    #[arg(long, env = "PEERSCRIP_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// File whose first line is the bearer token /metrics and /status require (at least
    /// 32 characters, e.g. `openssl rand -hex 32`) [file: admin.token_file].
    #[arg(long, env = "PEERSCRIP_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// The `[node]` section of a daemon's file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeFile {
    /// `paper` or `modern`.
    pub suite: Option<String>,
    /// The data directory.
    pub data_dir: Option<PathBuf>,
    /// The private key file.
    pub key: Option<PathBuf>,
    /// The private key's passphrase file.
    pub key_passphrase_file: Option<PathBuf>,
    /// The root key file.
    pub root_key: Option<PathBuf>,
    /// The subject prefix.
    pub subject_prefix: Option<String>,
    /// The JetStream stream of the live event export.
    pub export_stream: Option<String>,
    /// The subject prefix of the exported events.
    pub export_subject_prefix: Option<String>,
}

/// The `[nats]` section of a daemon's file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsFile {
    /// Server URL(s).
    pub url: Option<String>,
    /// User name.
    pub user: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// Credentials file.
    pub creds: Option<PathBuf>,
    /// The CA file of the server's certificate (TLS required).
    pub ca_file: Option<PathBuf>,
    /// The client certificate (TLS required).
    pub client_cert: Option<PathBuf>,
    /// The client certificate's key.
    pub client_key: Option<PathBuf>,
}

/// The `[log]` section of a daemon's file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogFile {
    /// `human` or `json`.
    pub format: Option<String>,
    /// The level or directives.
    pub level: Option<String>,
}

/// The `[admin]` section of a daemon's file (`super::admin`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminFile {
    /// The listener's address.
    pub listen: Option<String>,
    /// The bearer token's file.
    pub token_file: Option<PathBuf>,
}

/// The common sections of a daemon's file, as read.
#[derive(Clone, Debug, Default)]
pub struct CommonFile {
    /// `[node]`.
    pub node: NodeFile,
    /// `[nats]`.
    pub nats: NatsFile,
    /// `[log]`.
    pub log: LogFile,
    /// `[admin]`.
    pub admin: AdminFile,
    /// The directory relative paths of the file are resolved against.
    pub base: PathBuf,
}

/// The resolved common settings of a daemon.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// The deployment's suite.
    pub suite: Suite,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The private key file.
    pub key: PathBuf,
    /// The key's passphrase, if any (redacted in `Debug`).
    pub key_passphrase: Option<SecretBytes>,
    /// The root key file.
    pub root_key: PathBuf,
    /// The subjects under the configured prefix.
    pub subjects: Subjects,
    /// The NATS server URL(s).
    pub nats_url: String,
    /// The NATS credential, if any (the password redacted in `Debug`).
    pub nats_credentials: Option<NatsCredentials>,
    /// TLS to NATS, required when set.
    pub nats_tls: Option<NatsTls>,
    /// The log format.
    pub log_format: LogFormat,
    /// The log level, if configured (else `RUST_LOG`).
    pub log_level: Option<String>,
    /// The live event export, if configured.
    pub export: Option<ExportSettings>,
    /// The admin listener, if configured.
    pub admin: Option<AdminSettings>,
}

impl NodeSettings {
    /// The NATS connection options of this node, named `name` in the server's monitoring,
    /// with the credential configured.
    #[must_use]
    pub fn nats_options(&self, name: &str) -> NatsOptions {
        NatsOptions {
            name: Some(name.to_owned()),
            credentials: self.nats_credentials.clone(),
            tls: self.nats_tls.clone(),
            ..NatsOptions::default()
        }
    }

    /// The TLS lines of `--check-config`: `nats_tls` (`required` or `none`) and the files.
    #[must_use]
    pub fn describe_nats_tls(&self) -> String {
        let Some(tls) = &self.nats_tls else {
            return "nats_tls = none\n".to_owned();
        };
        let shown =
            |p: Option<&PathBuf>| p.map_or_else(|| "none".to_owned(), |p| p.display().to_string());
        format!(
            "nats_tls = required\nnats_ca_file = {}\nnats_client_cert = {}\n",
            shown(tls.ca_file.as_ref()),
            shown(tls.client_cert.as_ref().map(|c| &c.cert)),
        )
    }

    /// The admin listener's lines of `--check-config`: `admin_listen` and whether a
    /// token is set (never the token).
    #[must_use]
    pub fn describe_admin(&self) -> String {
        match &self.admin {
            None => "admin_listen = none\n".to_owned(),
            Some(admin) => format!(
                "admin_listen = {}\nadmin_token = {}\n",
                admin.listen,
                if admin.token.is_some() { "set" } else { "none" }
            ),
        }
    }

    /// The export's lines of `--check-config`: `export_stream` and, when set,
    /// `export_subject_prefix`.
    #[must_use]
    pub fn describe_export(&self) -> String {
        match &self.export {
            None => "export_stream = none\n".to_owned(),
            Some(export) => format!(
                "export_stream = {}\nexport_subject_prefix = {}\n",
                export.stream,
                export.subjects.prefix()
            ),
        }
    }
}

/// `url` with any `user:password@` of each server replaced by `***@`, for display (a NATS
/// URL may carry the credential).
#[must_use]
pub fn redacted_url(url: &str) -> String {
    url.split(',')
        .map(|server| match (server.find("://"), server.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &server[..scheme + 3], &server[at..])
            }
            (None, Some(at)) => format!("***{}", &server[at..]),
            _ => server.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads and parses the TOML file `path` as `T`.
///
/// # Errors
/// [`ConfigError::Read`], or [`ConfigError::Parse`] naming the key and line.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

/// The directory the relative paths of the config file `path` are resolved against.
#[must_use]
pub fn base_of(path: Option<&Path>) -> PathBuf {
    path.and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `path` from the file, relative to the file's directory.
#[must_use]
pub fn in_file(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

/// The flag's value, else the file's path resolved against its directory.
#[must_use]
pub fn path_setting(
    flag: Option<&PathBuf>,
    file: Option<&PathBuf>,
    base: &Path,
) -> Option<PathBuf> {
    flag.cloned().or_else(|| file.map(|p| in_file(base, p)))
}

/// Resolves the common settings: `args` (flags and environment) over `file`. `secret_env`
/// reads the environment variables of the secrets ([`ENV_KEY_PASSPHRASE`],
/// [`ENV_NATS_PASSWORD`]); a daemon passes `std::env::var`, a test a map.
///
/// # Errors
/// The first missing or invalid value, naming its field.
pub fn resolve_common(
    args: &CommonArgs,
    file: &CommonFile,
    secret_env: &dyn Fn(&str) -> Option<String>,
) -> Result<NodeSettings, ConfigError> {
    let base = &file.base;
    let suite = match (&args.suite, &file.node.suite) {
        (Some(suite), _) => *suite,
        (None, Some(text)) => text.parse().map_err(|e| {
            ConfigError::invalid("node.suite (--suite, PEERSCRIP_SUITE)", format!("{e}"))
        })?,
        (None, None) => Suite::Modern,
    };
    let data_dir = path_setting(args.data_dir.as_ref(), file.node.data_dir.as_ref(), base).ok_or(
        ConfigError::Missing {
            field: "node.data_dir",
            flag: "--data-dir",
            env: "PEERSCRIP_DATA_DIR",
        },
    )?;
    let key = path_setting(args.key.as_ref(), file.node.key.as_ref(), base).ok_or(
        ConfigError::Missing {
            field: "node.key",
            flag: "--key",
            env: "PEERSCRIP_KEY",
        },
    )?;
    let key_passphrase = match (
        secret_env(ENV_KEY_PASSPHRASE),
        path_setting(
            args.key_passphrase_file.as_ref(),
            file.node.key_passphrase_file.as_ref(),
            base,
        ),
    ) {
        (Some(value), _) if !value.is_empty() => Some(SecretBytes::new(value.into_bytes())),
        (_, Some(path)) => Some(read_secret_line(&path)?),
        _ => None,
    };
    let root_key = path_setting(args.root_key.as_ref(), file.node.root_key.as_ref(), base)
        .unwrap_or_else(|| data_dir.join(DEFAULT_ROOT_KEY_FILE));
    let prefix = args
        .subject_prefix
        .clone()
        .or_else(|| file.node.subject_prefix.clone());
    let subjects = match prefix {
        None => Subjects::default(),
        Some(prefix) => Subjects::new(prefix).map_err(|e| {
            ConfigError::invalid(
                "node.subject_prefix (--subject-prefix, PEERSCRIP_SUBJECT_PREFIX)",
                e.to_string(),
            )
        })?,
    };
    let nats_url = args
        .nats_url
        .clone()
        .or_else(|| file.nats.url.clone())
        .unwrap_or_else(|| DEFAULT_NATS_URL.to_owned());
    let nats_credentials = nats_credentials(args, file, secret_env)?;
    let nats_tls = nats_tls(args, file)?;
    let log_format = match (&args.log_format, &file.log.format) {
        (Some(format), _) => *format,
        (None, Some(text)) => text.parse().map_err(|e| {
            ConfigError::invalid(
                "log.format (--log-format, PEERSCRIP_LOG_FORMAT)",
                format!("{e}"),
            )
        })?,
        (None, None) => LogFormat::Human,
    };
    let export = export_settings(args, file)?;
    let admin = admin_settings(args, file)?;
    let log_level = args.log_level.clone().or_else(|| file.log.level.clone());
    if let Some(level) = &log_level {
        super::logging::filter(Some(level))
            .map_err(|e| ConfigError::invalid("log.level (--log-level, PEERSCRIP_LOG_LEVEL)", e))?;
    }
    Ok(NodeSettings {
        suite,
        data_dir,
        key,
        key_passphrase,
        root_key,
        subjects,
        nats_url,
        nats_credentials,
        nats_tls,
        log_format,
        log_level,
        export,
        admin,
    })
}

/// The admin listener: an address, loopback unless a bearer token is configured (module
/// `super::admin`: the ledger's totals are nobody else's business).
fn admin_settings(
    args: &CommonArgs,
    file: &CommonFile,
) -> Result<Option<AdminSettings>, ConfigError> {
    const LISTEN: &str = "admin.listen (--admin-listen, PEERSCRIP_ADMIN_LISTEN)";
    const TOKEN: &str = "admin.token_file (--admin-token-file, PEERSCRIP_ADMIN_TOKEN_FILE)";
    let token_file = path_setting(
        args.admin_token_file.as_ref(),
        file.admin.token_file.as_ref(),
        &file.base,
    );
    let Some(text) = args
        .admin_listen
        .clone()
        .or_else(|| file.admin.listen.clone())
    else {
        return match token_file {
            None => Ok(None),
            Some(_) => Err(ConfigError::invalid(
                TOKEN,
                "set admin.listen too: the token guards the admin listener",
            )),
        };
    };
    let listen: std::net::SocketAddr = text.parse().map_err(|_| {
        ConfigError::invalid(
            LISTEN,
            format!("{text:?} is not an IP address with a port, e.g. 127.0.0.1:9464"),
        )
    })?;
    let token = match token_file {
        None => None,
        Some(path) => {
            let token = read_secret_line(&path)?;
            if token.len() < super::admin::MIN_TOKEN_BYTES {
                return Err(ConfigError::invalid(
                    TOKEN,
                    format!(
                        "the token in {} is shorter than {} characters; make one with \
                         `openssl rand -hex 32`",
                        path.display(),
                        super::admin::MIN_TOKEN_BYTES
                    ),
                ));
            }
            Some(token)
        }
    };
    if !listen.ip().is_loopback() && token.is_none() {
        return Err(ConfigError::invalid(
            LISTEN,
            format!(
                "{listen} is reachable beyond this machine: set admin.token_file \
                 (--admin-token-file) so that /metrics and /status need a bearer token, \
                 or listen on 127.0.0.1"
            ),
        ));
    }
    Ok(Some(AdminSettings { listen, token }))
}

/// The live event export: a stream name (JetStream's rules), and a subject prefix (the
/// bus's rules) that is only meaningful with a stream.
fn export_settings(
    args: &CommonArgs,
    file: &CommonFile,
) -> Result<Option<ExportSettings>, ConfigError> {
    let stream = args
        .export_stream
        .clone()
        .or_else(|| file.node.export_stream.clone());
    let prefix = args
        .export_subject_prefix
        .clone()
        .or_else(|| file.node.export_subject_prefix.clone());
    let Some(stream) = stream else {
        return match prefix {
            None => Ok(None),
            Some(_) => Err(ConfigError::invalid(
                "node.export_subject_prefix (--export-subject-prefix, \
                 PEERSCRIP_EXPORT_SUBJECT_PREFIX)",
                "set node.export_stream too: the prefix names the subjects of the export",
            )),
        };
    };
    if !super::export::is_stream_name(&stream) {
        return Err(ConfigError::invalid(
            "node.export_stream (--export-stream, PEERSCRIP_EXPORT_STREAM)",
            format!(
                "{stream:?} is not a JetStream stream name (printable ASCII without \
                 whitespace, '.', '*', '>', '/', '\\')"
            ),
        ));
    }
    let prefix = prefix.unwrap_or_else(|| crate::export::DEFAULT_SUBJECT_PREFIX.to_owned());
    let subjects = Subjects::new(prefix).map_err(|e| {
        ConfigError::invalid(
            "node.export_subject_prefix (--export-subject-prefix, \
             PEERSCRIP_EXPORT_SUBJECT_PREFIX)",
            e.to_string(),
        )
    })?;
    Ok(Some(ExportSettings { stream, subjects }))
}

/// The NATS credential: a creds file, or a user with a password (from the environment or a
/// file); not both.
fn nats_credentials(
    args: &CommonArgs,
    file: &CommonFile,
    secret_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<NatsCredentials>, ConfigError> {
    let base = &file.base;
    let creds = path_setting(args.nats_creds.as_ref(), file.nats.creds.as_ref(), base);
    let user = args.nats_user.clone().or_else(|| file.nats.user.clone());
    match (creds, user) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            "nats.creds (--nats-creds) and nats.user (--nats-user)",
            "configure a credentials file or a user and password, not both",
        )),
        (Some(path), None) => Ok(Some(NatsCredentials::CredsFile(path))),
        (None, Some(user)) => {
            let password = match (
                secret_env(ENV_NATS_PASSWORD),
                path_setting(
                    args.nats_password_file.as_ref(),
                    file.nats.password_file.as_ref(),
                    base,
                ),
            ) {
                (Some(value), _) if !value.is_empty() => SecretBytes::new(value.into_bytes()),
                (_, Some(path)) => read_secret_line(&path)?,
                _ => {
                    return Err(ConfigError::Missing {
                        field: "nats.password_file (for nats.user)",
                        flag: "--nats-password-file",
                        env: "PEERSCRIP_NATS_PASSWORD",
                    });
                }
            };
            Ok(Some(NatsCredentials::UserPassword { user, password }))
        }
        (None, None) => Ok(None),
    }
}

/// TLS to NATS: set (and so required) when a CA file or a client certificate is
/// configured; a client certificate comes with its key.
fn nats_tls(args: &CommonArgs, file: &CommonFile) -> Result<Option<NatsTls>, ConfigError> {
    let base = &file.base;
    let ca_file = path_setting(args.nats_ca_file.as_ref(), file.nats.ca_file.as_ref(), base);
    let cert = path_setting(
        args.nats_client_cert.as_ref(),
        file.nats.client_cert.as_ref(),
        base,
    );
    let key = path_setting(
        args.nats_client_key.as_ref(),
        file.nats.client_key.as_ref(),
        base,
    );
    let client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some(ClientCert { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::Missing {
                field: "nats.client_key (for nats.client_cert)",
                flag: "--nats-client-key",
                env: "PEERSCRIP_NATS_CLIENT_KEY",
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                field: "nats.client_cert (for nats.client_key)",
                flag: "--nats-client-cert",
                env: "PEERSCRIP_NATS_CLIENT_CERT",
            });
        }
    };
    if ca_file.is_none() && client_cert.is_none() {
        return Ok(None);
    }
    Ok(Some(NatsTls {
        ca_file,
        client_cert,
    }))
}

/// A number of seconds that must be above zero: `flag` over `file` over `default`.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `field` when the result is zero.
pub fn positive_secs(
    field: &str,
    flag: Option<u64>,
    file: Option<u64>,
    default: u64,
) -> Result<u64, ConfigError> {
    let value = flag.or(file).unwrap_or(default);
    if value == 0 {
        return Err(ConfigError::invalid(field, "must be at least 1 second"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn file(suite: &str) -> CommonFile {
        CommonFile {
            node: NodeFile {
                suite: Some(suite.to_owned()),
                data_dir: Some("data".into()),
                key: Some("keys/key.pem".into()),
                subject_prefix: Some("fromfile".to_owned()),
                ..NodeFile::default()
            },
            nats: NatsFile {
                url: Some("nats://file:4222".to_owned()),
                ..NatsFile::default()
            },
            log: LogFile::default(),
            admin: AdminFile::default(),
            base: PathBuf::from("/etc/peerscrip"),
        }
    }

    fn with_admin(listen: Option<&str>, token_file: Option<PathBuf>) -> CommonFile {
        CommonFile {
            admin: AdminFile {
                listen: listen.map(str::to_owned),
                token_file,
            },
            ..file("modern")
        }
    }

    #[test]
    fn the_admin_listener_is_off_unless_configured_and_loopback_needs_no_token() {
        let s = resolve_common(&CommonArgs::default(), &file("modern"), &no_env).unwrap();
        assert!(s.admin.is_none());
        assert_eq!(s.describe_admin(), "admin_listen = none\n");
        let s = resolve_common(
            &CommonArgs::default(),
            &with_admin(Some("127.0.0.1:9464"), None),
            &no_env,
        )
        .unwrap();
        let admin = s.admin.as_ref().unwrap();
        assert_eq!(admin.listen, "127.0.0.1:9464".parse().unwrap());
        assert!(admin.token.is_none());
        assert_eq!(
            s.describe_admin(),
            "admin_listen = 127.0.0.1:9464\nadmin_token = none\n"
        );
        // The flag wins over the file.
        let args = CommonArgs {
            admin_listen: Some("[::1]:9000".to_owned()),
            ..CommonArgs::default()
        };
        let s = resolve_common(&args, &with_admin(Some("127.0.0.1:9464"), None), &no_env).unwrap();
        assert_eq!(s.admin.unwrap().listen, "[::1]:9000".parse().unwrap());
    }

    #[test]
    fn an_admin_listener_beyond_loopback_needs_a_long_enough_token() {
        let err = resolve_common(
            &CommonArgs::default(),
            &with_admin(Some("0.0.0.0:9464"), None),
            &no_env,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "admin.listen (--admin-listen, PEERSCRIP_ADMIN_LISTEN): 0.0.0.0:9464 is reachable \
             beyond this machine: set admin.token_file (--admin-token-file) so that /metrics \
             and /status need a bearer token, or listen on 127.0.0.1"
        );
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "0123456789\n").unwrap();
        let err = resolve_common(
            &CommonArgs::default(),
            &with_admin(Some("0.0.0.0:9464"), Some(short.clone())),
            &no_env,
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "admin.token_file (--admin-token-file, PEERSCRIP_ADMIN_TOKEN_FILE): the token in"
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("0123456789"), "{err}");
        let good = dir.path().join("token");
        let token = "f".repeat(64);
        std::fs::write(&good, format!("{token}\n")).unwrap();
        let s = resolve_common(
            &CommonArgs::default(),
            &with_admin(Some("0.0.0.0:9464"), Some(good.clone())),
            &no_env,
        )
        .unwrap();
        assert_eq!(
            s.admin.as_ref().unwrap().token.as_ref().unwrap().expose(),
            token.as_bytes()
        );
        assert_eq!(
            s.describe_admin(),
            "admin_listen = 0.0.0.0:9464\nadmin_token = set\n"
        );
        assert!(!format!("{s:?}").contains(&token));
        // A token without a listener is a mistake, not a no-op.
        let err = resolve_common(
            &CommonArgs::default(),
            &with_admin(None, Some(good)),
            &no_env,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "admin.token_file (--admin-token-file, PEERSCRIP_ADMIN_TOKEN_FILE): set admin.listen \
             too: the token guards the admin listener"
        );
        let err = resolve_common(
            &CommonArgs::default(),
            &with_admin(Some("localhost"), None),
            &no_env,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "admin.listen (--admin-listen, PEERSCRIP_ADMIN_LISTEN): \"localhost\" is not an IP \
             address with a port, e.g. 127.0.0.1:9464"
        );
    }

    #[test]
    fn the_file_gives_values_and_paths_relative_to_itself() {
        let s = resolve_common(&CommonArgs::default(), &file("paper"), &no_env).unwrap();
        assert_eq!(s.suite, Suite::Paper);
        assert_eq!(s.data_dir, PathBuf::from("/etc/peerscrip/data"));
        assert_eq!(s.key, PathBuf::from("/etc/peerscrip/keys/key.pem"));
        assert_eq!(s.root_key, PathBuf::from("/etc/peerscrip/data/root.key"));
        assert_eq!(s.subjects.prefix(), "fromfile");
        assert_eq!(s.nats_url, "nats://file:4222");
        assert_eq!(s.log_format, LogFormat::Human);
        assert!(s.key_passphrase.is_none() && s.nats_credentials.is_none());
    }

    /// The modern suite unless the paper suite is asked for (README "Running on a network
    /// you do not trust").
    #[test]
    fn the_modern_suite_is_the_default() {
        let mut f = file("modern");
        f.node.suite = None;
        let s = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap();
        assert_eq!(s.suite, Suite::Modern);
        assert_eq!(Suite::default(), Suite::Modern);
        assert_eq!(Suite::Modern.open_network_warning(), None);
        let warning = Suite::Paper.open_network_warning().unwrap();
        for needle in [
            "RUSTSEC-2023-0071",
            "Marvin",
            "RSA-1024",
            "SHA-1",
            "PKCS#1 v1.5",
        ] {
            assert!(warning.contains(needle), "{needle}: {warning}");
        }
        assert!(!warning.contains('\n'));
    }

    #[test]
    fn a_url_is_shown_without_its_credential() {
        assert_eq!(
            redacted_url("nats://u:p@a:4222,tls://b:4222,x:y@c:1"),
            "nats://***@a:4222,tls://b:4222,***@c:1"
        );
    }

    #[test]
    fn a_flag_overrides_the_file() {
        let args = CommonArgs {
            suite: Some(Suite::Modern),
            data_dir: Some("elsewhere".into()),
            nats_url: Some("nats://flag:4222".to_owned()),
            subject_prefix: Some("fromflag".to_owned()),
            log_format: Some(LogFormat::Json),
            ..CommonArgs::default()
        };
        let s = resolve_common(&args, &file("paper"), &no_env).unwrap();
        assert_eq!(s.suite, Suite::Modern);
        assert_eq!(s.data_dir, PathBuf::from("elsewhere"));
        assert_eq!(s.key, PathBuf::from("/etc/peerscrip/keys/key.pem"));
        assert_eq!(s.nats_url, "nats://flag:4222");
        assert_eq!(s.subjects.prefix(), "fromflag");
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_values_name_their_field() {
        let e = resolve_common(&CommonArgs::default(), &file("rot13"), &no_env).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("node.suite (--suite, PEERSCRIP_SUITE): unknown suite \"rot13\""),
            "{e}"
        );
        let mut f = file("paper");
        f.node.subject_prefix = Some("a.*".to_owned());
        let e = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap_err();
        assert!(e.to_string().starts_with("node.subject_prefix"), "{e}");
        let mut f = file("paper");
        f.log.format = Some("xml".to_owned());
        let e = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap_err();
        assert!(e.to_string().starts_with("log.format"), "{e}");
        let mut f = file("paper");
        f.node.key = None;
        let e = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "node.key is required: set it in the configuration file, with --key or with PEERSCRIP_KEY"
        );
        assert_eq!(
            positive_secs("broker.grace_secs", None, Some(0), 5)
                .unwrap_err()
                .to_string(),
            "broker.grace_secs: must be at least 1 second"
        );
    }

    /// The export: off by default; a stream from the file with the default prefix; a flag
    /// wins; a bad name, a bad prefix or a prefix without a stream is refused by name.
    #[test]
    fn the_export_stream_is_layered_and_checked() {
        let s = resolve_common(&CommonArgs::default(), &file("paper"), &no_env).unwrap();
        assert_eq!(s.export, None);
        let mut f = file("paper");
        f.node.export_stream = Some("AUDIT".to_owned());
        let s = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap();
        let export = s.export.unwrap();
        assert_eq!(export.stream, "AUDIT");
        assert_eq!(export.subjects.prefix(), "peerscrip.events");
        let args = CommonArgs {
            export_stream: Some("LIVE".to_owned()),
            export_subject_prefix: Some("bank.audit".to_owned()),
            ..CommonArgs::default()
        };
        let export = resolve_common(&args, &f, &no_env).unwrap().export.unwrap();
        assert_eq!(
            (export.stream.as_str(), export.subjects.prefix()),
            ("LIVE", "bank.audit")
        );
        f.node.export_stream = Some("a.b".to_owned());
        let e = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "node.export_stream (--export-stream, PEERSCRIP_EXPORT_STREAM): \"a.b\" is not \
                 a JetStream stream name"
            ),
            "{e}"
        );
        f.node.export_stream = Some("AUDIT".to_owned());
        f.node.export_subject_prefix = Some("x.>".to_owned());
        let e = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap_err();
        assert!(
            e.to_string().starts_with("node.export_subject_prefix"),
            "{e}"
        );
        f.node.export_stream = None;
        f.node.export_subject_prefix = Some("x".to_owned());
        let e = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap_err();
        assert!(e.to_string().contains("set node.export_stream too"), "{e}");
    }

    /// TLS: off unless configured; a CA file from the file, relative to it, required; a
    /// client certificate without its key refused by name; a flag wins.
    #[test]
    fn nats_tls_is_required_when_a_ca_or_client_certificate_is_configured() {
        let s = resolve_common(&CommonArgs::default(), &file("modern"), &no_env).unwrap();
        assert_eq!(s.nats_tls, None);
        assert_eq!(s.describe_nats_tls(), "nats_tls = none\n");
        assert!(s.nats_options("n").tls.is_none());
        let mut f = file("modern");
        f.nats.ca_file = Some("tls/ca.pem".into());
        let s = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap();
        let tls = s.nats_tls.clone().unwrap();
        assert_eq!(
            tls.ca_file,
            Some(PathBuf::from("/etc/peerscrip/tls/ca.pem"))
        );
        assert_eq!(tls.client_cert, None);
        assert_eq!(s.nats_options("n").tls, Some(tls));
        assert!(s.describe_nats_tls().starts_with("nats_tls = required\n"));
        f.nats.client_cert = Some("tls/node.pem".into());
        let e = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "nats.client_key (for nats.client_cert) is required: set it in the configuration \
             file, with --nats-client-key or with PEERSCRIP_NATS_CLIENT_KEY"
        );
        let args = CommonArgs {
            nats_client_key: Some("flag.key".into()),
            nats_ca_file: Some("flag-ca.pem".into()),
            ..CommonArgs::default()
        };
        let tls = resolve_common(&args, &f, &no_env)
            .unwrap()
            .nats_tls
            .unwrap();
        assert_eq!(tls.ca_file, Some(PathBuf::from("flag-ca.pem")));
        assert_eq!(
            tls.client_cert,
            Some(ClientCert {
                cert: PathBuf::from("/etc/peerscrip/tls/node.pem"),
                key: PathBuf::from("flag.key"),
            })
        );
    }

    #[test]
    fn secrets_come_from_the_environment_before_their_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("nats.password");
        std::fs::write(&password_file, "from-file\n").unwrap();
        let mut f = file("paper");
        f.nats.user = Some("broker".to_owned());
        f.nats.password_file = Some(password_file);
        let s = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap();
        let Some(NatsCredentials::UserPassword { user, password }) = &s.nats_credentials else {
            panic!("no user credential: {:?}", s.nats_credentials);
        };
        assert_eq!(
            (user.as_str(), password.expose()),
            ("broker", &b"from-file"[..])
        );
        let env = |name: &str| (name == ENV_NATS_PASSWORD).then(|| "from-env".to_owned());
        let s = resolve_common(&CommonArgs::default(), &f, &env).unwrap();
        let Some(NatsCredentials::UserPassword { password, .. }) = &s.nats_credentials else {
            panic!("no user credential");
        };
        assert_eq!(password.expose(), b"from-env");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("from-env") && !shown.contains("from-file"),
            "{shown}"
        );
        f.nats.creds = Some("node.creds".into());
        let e = resolve_common(&CommonArgs::default(), &f, &no_env).unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
    }
}
