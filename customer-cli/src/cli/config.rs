//! Where a wallet lives and how it connects: the wallet directory, its files, and its
//! `config.toml` (architecture.md "Binaries and the user's path").
//!
//! The directory (`--wallet-dir`, else `$PEERSCRIP_WALLET_DIR`, else `~/.peerscrip`, mode
//! 0700) holds the encrypted private key `key.pem`, `key.pub.pem`, the pinned broker key
//! `broker.pub.pem`, the wallet's redb log `wallet.redb` and `config.toml`, which `init`
//! writes and every later command reads; every file mode 0600 (`shared::private_dir`). A flag beats the config file, which
//! beats the default. The customer's NATS user (architecture.md "Transport": one credential
//! per node; `peerscrip-ops nats-config` writes them) is named in the config with the file
//! holding its password (first line), or a `.creds` file; the password itself is read only
//! when connecting and never written to the config or shown. A URL is only ever shown with
//! any userinfo removed ([`redact_url`]).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::Suite;
use shared::bus::{ClientCert, NatsTls, Subjects};

use super::exit::CliError;

/// The NATS URL when neither a flag nor the config names one.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// How long a command waits for each answer when neither a flag nor the config says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a request is sent before the command gives up and leaves it pending.
pub const ATTEMPTS: u32 = 3;

/// The files of a wallet directory.
#[derive(Clone, Debug)]
pub struct WalletDir {
    root: PathBuf,
}

impl WalletDir {
    /// The directory `--wallet-dir` names, or `$PEERSCRIP_WALLET_DIR` (clap reads it), or
    /// `~/.peerscrip`.
    pub fn resolve(flag: Option<&Path>) -> Result<WalletDir, CliError> {
        let root = match flag {
            Some(p) => p.to_path_buf(),
            None => std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".peerscrip"))
                .ok_or_else(|| {
                    CliError::Usage(
                        "no wallet directory: pass --wallet-dir or set PEERSCRIP_WALLET_DIR"
                            .to_owned(),
                    )
                })?,
        };
        Ok(WalletDir { root })
    }

    /// The directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The encrypted PKCS#8 private key.
    #[must_use]
    pub fn key(&self) -> PathBuf {
        self.root.join("key.pem")
    }

    /// The wallet's public key.
    #[must_use]
    pub fn public_key(&self) -> PathBuf {
        self.root.join("key.pub.pem")
    }

    /// The pinned broker key (a copy of what `init --broker-key` was given).
    #[must_use]
    pub fn broker_key(&self) -> PathBuf {
        self.root.join("broker.pub.pem")
    }

    /// The wallet's log.
    #[must_use]
    pub fn wallet(&self) -> PathBuf {
        self.root.join("wallet.redb")
    }

    /// The configuration file.
    #[must_use]
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// Makes the directory private again if it is not (protocol.md appendix E: it holds
    /// the wallet's key and log), with a warning on stderr for each file or directory
    /// tightened: a wallet made by an earlier version, or copied, under umask 022.
    pub fn make_private(&self) -> Result<(), CliError> {
        let tightened = shared::private_dir::tighten(&self.root)
            .map_err(|e| CliError::Usage(format!("the wallet directory: {e}")))?;
        for t in tightened {
            super::output::warn(&format!("{t}; tightened to its owner only"));
        }
        Ok(())
    }

    /// Reads the configuration; a missing file means the wallet was never initialised.
    pub fn read_config(&self) -> Result<ConfigFile, CliError> {
        let path = self.config();
        let text = fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CliError::Usage(format!(
                    "no wallet in {}: run `peerscrip init` first",
                    self.root.display()
                ))
            } else {
                CliError::Usage(format!("reading {}: {e}", path.display()))
            }
        })?;
        toml::from_str(&text)
            .map_err(|e| CliError::Usage(format!("{}: {}", path.display(), e.message())))
    }
}

/// `config.toml` (see the module doc). Every field is optional; a flag overrides it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The wallet's suite (`paper` or `modern`), fixed at `init`.
    pub suite: Option<String>,
    /// The NATS server, possibly with the customer's NATS credentials.
    pub nats_url: Option<String>,
    /// The subject prefix of the deployment (default `peerscrip`).
    pub subject_prefix: Option<String>,
    /// How long to wait for each answer, milliseconds.
    pub timeout_ms: Option<u64>,
    /// The customer's NATS user.
    pub nats_user: Option<String>,
    /// The file whose first line is that user's password.
    pub nats_password_file: Option<PathBuf>,
    /// A `.creds` file (JWT and NKey seed) instead of a user and password.
    pub nats_creds_file: Option<PathBuf>,
    /// The PEM file of the CA that signed the NATS server's certificate: with it, TLS is
    /// required (README "Running on a network you do not trust").
    pub nats_ca_file: Option<PathBuf>,
    /// The wallet's TLS client certificate (PEM), for a server that verifies clients.
    pub nats_client_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub nats_client_key: Option<PathBuf>,
    /// How long after its expiry a scrip stays renewable, seconds: the deployment's
    /// renewal grace (the producers' `grace_secs`; protocol.md section 4, default one
    /// year). The producers do not tell the wallet, so it is configured here; past it the
    /// wallet shows a scrip as lapsed, its value back in the bank account.
    pub renewal_grace_secs: Option<u64>,
}

impl ConfigFile {
    /// The file as TOML.
    pub fn to_toml(&self) -> Result<String, CliError> {
        toml::to_string(self).map_err(|e| CliError::Failed(format!("encoding the config: {e}")))
    }
}

/// The settings a connected command runs with: flags over the config over defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The wallet's suite.
    pub suite: Suite,
    /// The NATS URL (may carry credentials: print it with [`redact_url`]).
    pub nats_url: String,
    /// The subjects of the deployment.
    pub subjects: Subjects,
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// How the wallet authenticates to NATS (`None`: anonymously).
    pub credentials: Option<Credentials>,
    /// TLS to NATS, required when set.
    pub tls: Option<NatsTls>,
    /// The renewal grace, seconds (see [`ConfigFile::renewal_grace_secs`]).
    pub renewal_grace_secs: u64,
}

/// Where the wallet's NATS credential is; read only when connecting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// A user and the file holding its password.
    UserPassword {
        /// The user.
        user: String,
        /// The password file (first line).
        password_file: PathBuf,
    },
    /// A `.creds` file.
    CredsFile(PathBuf),
}

/// The NATS credential and TLS flags of a command (they override the config).
#[derive(Clone, Debug, Default)]
pub struct CredentialFlags<'a> {
    /// `--nats-user`.
    pub user: Option<&'a str>,
    /// `--nats-password-file`.
    pub password_file: Option<&'a Path>,
    /// `--nats-creds-file`.
    pub creds_file: Option<&'a Path>,
    /// `--nats-ca-file`.
    pub ca_file: Option<&'a Path>,
    /// `--nats-client-cert`.
    pub client_cert: Option<&'a Path>,
    /// `--nats-client-key`.
    pub client_key: Option<&'a Path>,
}

/// TLS to NATS, the flags over the config: set (and so required) when a CA file or a
/// client certificate is given; a client certificate comes with its key.
pub fn resolve_tls(
    config: &ConfigFile,
    flags: &CredentialFlags<'_>,
) -> Result<Option<NatsTls>, CliError> {
    let ca_file = flags.ca_file.or(config.nats_ca_file.as_deref());
    let cert = flags.client_cert.or(config.nats_client_cert.as_deref());
    let key = flags.client_key.or(config.nats_client_key.as_deref());
    let client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some(ClientCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(CliError::Usage(
                "a NATS client certificate needs its key (--nats-client-key)".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err(CliError::Usage(
                "a NATS client key needs its certificate (--nats-client-cert)".to_owned(),
            ));
        }
    };
    if ca_file.is_none() && client_cert.is_none() {
        return Ok(None);
    }
    Ok(Some(NatsTls {
        ca_file: ca_file.map(Path::to_path_buf),
        client_cert,
    }))
}

impl Credentials {
    /// The credential of the flags over the config; a user needs a password file.
    pub fn resolve(
        config: &ConfigFile,
        flags: &CredentialFlags<'_>,
    ) -> Result<Option<Credentials>, CliError> {
        if let Some(creds) = flags.creds_file.or(config.nats_creds_file.as_deref()) {
            return Ok(Some(Credentials::CredsFile(creds.to_path_buf())));
        }
        let user = flags.user.or(config.nats_user.as_deref());
        let password_file = flags.password_file.or(config.nats_password_file.as_deref());
        match (user, password_file) {
            (Some(user), Some(file)) => Ok(Some(Credentials::UserPassword {
                user: user.to_owned(),
                password_file: file.to_path_buf(),
            })),
            (Some(_), None) => Err(CliError::Usage(
                "a NATS user needs its password file (--nats-password-file)".to_owned(),
            )),
            (None, Some(_)) => Err(CliError::Usage(
                "a NATS password file needs its user (--nats-user)".to_owned(),
            )),
            (None, None) => Ok(None),
        }
    }

    /// The credential for the bus, its password read now.
    pub fn load(&self) -> Result<shared::bus::NatsCredentials, CliError> {
        Ok(match self {
            Credentials::UserPassword {
                user,
                password_file,
            } => shared::bus::NatsCredentials::UserPassword {
                user: user.clone(),
                password: shared::SecretBytes::from_slice(
                    super::secret_input::first_line(password_file, "NATS password")?.as_bytes(),
                ),
            },
            Credentials::CredsFile(path) => shared::bus::NatsCredentials::CredsFile(path.clone()),
        })
    }
}

impl Settings {
    /// Resolves the settings from the flags and the config file.
    pub fn resolve(
        config: &ConfigFile,
        suite: Option<Suite>,
        nats_url: Option<&str>,
        timeout: Option<Duration>,
        credentials: &CredentialFlags<'_>,
    ) -> Result<Settings, CliError> {
        let suite = match (suite, config.suite.as_deref()) {
            (Some(s), _) => s,
            (None, Some(name)) => name
                .parse()
                .map_err(|e| CliError::Usage(format!("config.toml: {e}")))?,
            (None, None) => Suite::Modern,
        };
        let nats_url = nats_url
            .or(config.nats_url.as_deref())
            .unwrap_or(DEFAULT_NATS_URL)
            .to_owned();
        let subjects = match &config.subject_prefix {
            Some(prefix) => Subjects::new(prefix.clone())
                .map_err(|e| CliError::Usage(format!("config.toml: subject_prefix: {e}")))?,
            None => Subjects::default(),
        };
        let timeout = timeout
            .or(config.timeout_ms.map(Duration::from_millis))
            .unwrap_or(DEFAULT_TIMEOUT);
        let renewal_grace_secs = config
            .renewal_grace_secs
            .unwrap_or(crate::core::lapse::DEFAULT_GRACE_SECS);
        Ok(Settings {
            suite,
            nats_url,
            subjects,
            timeout,
            credentials: Credentials::resolve(config, credentials)?,
            tls: resolve_tls(config, credentials)?,
            renewal_grace_secs,
        })
    }
}

/// `url` without the credentials it may carry (`nats://user:pw@host` → `nats://host`).
#[must_use]
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => url.to_owned(),
        },
        None => match url.rsplit_once('@') {
            Some((_, host)) => host.to_owned(),
            None => url.to_owned(),
        },
    }
}

/// Parses a `--timeout`: whole seconds (`10`, `10s`) or milliseconds (`250ms`).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("{text:?} is not a duration: use seconds (10, 10s) or milliseconds (250ms)");
    let (digits, millis) = if let Some(d) = text.strip_suffix("ms") {
        (d, true)
    } else if let Some(d) = text.strip_suffix('s') {
        (d, false)
    } else {
        (text, false)
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    Ok(if millis {
        Duration::from_millis(n)
    } else {
        Duration::from_secs(n)
    })
}

/// Writes a new file of the wallet directory, mode 0600 like every file in it
/// (`shared::private_dir`), refusing to overwrite one, and syncs it.
pub fn write_new(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    let mut file = shared::private_dir::create_new_file(path)
        .map_err(|e| CliError::Usage(format!("creating {}: {e}", path.display())))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::Failed(format!("writing {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_in_seconds_or_milliseconds() {
        assert_eq!(parse_timeout("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_timeout("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("1.5").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("").is_err());
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(redact_url("nats://alice:pw@h:4222"), "nats://h:4222");
        assert_eq!(redact_url("nats://h:4222"), "nats://h:4222");
        assert_eq!(redact_url("tok@h:4222"), "h:4222");
    }

    /// TLS: none unless a CA file or a client certificate is configured; the config's,
    /// or a flag's over it; a certificate without its key refused.
    #[test]
    fn tls_is_required_when_a_ca_or_client_certificate_is_configured() {
        let none = resolve_tls(&ConfigFile::default(), &CredentialFlags::default()).unwrap();
        assert_eq!(none, None);
        let config: ConfigFile = toml::from_str(
            "nats_ca_file = \"/w/ca.pem\"\nnats_client_cert = \"/w/c.pem\"\n\
             nats_client_key = \"/w/c.key\"",
        )
        .unwrap();
        let tls = resolve_tls(&config, &CredentialFlags::default())
            .unwrap()
            .unwrap();
        assert_eq!(tls.ca_file, Some(PathBuf::from("/w/ca.pem")));
        assert_eq!(
            tls.client_cert,
            Some(ClientCert {
                cert: PathBuf::from("/w/c.pem"),
                key: PathBuf::from("/w/c.key"),
            })
        );
        let flags = CredentialFlags {
            ca_file: Some(Path::new("other.pem")),
            ..CredentialFlags::default()
        };
        let tls = resolve_tls(&config, &flags).unwrap().unwrap();
        assert_eq!(tls.ca_file, Some(PathBuf::from("other.pem")));
        let half = CredentialFlags {
            client_cert: Some(Path::new("c.pem")),
            ..CredentialFlags::default()
        };
        let e = resolve_tls(&ConfigFile::default(), &half).unwrap_err();
        assert!(e.to_string().contains("--nats-client-key"), "{e}");
        let s = Settings::resolve(&config, None, None, None, &CredentialFlags::default()).unwrap();
        assert!(s.tls.is_some());
    }

    #[test]
    fn flags_beat_the_config_which_beats_the_defaults() {
        let config = ConfigFile {
            suite: Some("paper".into()),
            nats_url: Some("nats://c:1".into()),
            subject_prefix: Some("shop".into()),
            timeout_ms: Some(1500),
            ..ConfigFile::default()
        };
        let s = Settings::resolve(&config, None, None, None, &CredentialFlags::default()).unwrap();
        assert_eq!(s.suite, Suite::Paper);
        assert_eq!(s.nats_url, "nats://c:1");
        assert_eq!(s.subjects.prefix(), "shop");
        assert_eq!(s.timeout, Duration::from_millis(1500));
        assert_eq!(s.renewal_grace_secs, 365 * 24 * 3600, "one year by default");
        let short: ConfigFile = toml::from_str("renewal_grace_secs = 60").unwrap();
        let s_short =
            Settings::resolve(&short, None, None, None, &CredentialFlags::default()).unwrap();
        assert_eq!(s_short.renewal_grace_secs, 60);
        let s = Settings::resolve(
            &config,
            Some(Suite::Modern),
            Some("nats://f:2"),
            Some(Duration::from_secs(2)),
            &CredentialFlags::default(),
        )
        .unwrap();
        assert_eq!(
            (s.suite, s.nats_url.as_str(), s.timeout),
            (Suite::Modern, "nats://f:2", Duration::from_secs(2))
        );
        let s = Settings::resolve(
            &ConfigFile::default(),
            None,
            None,
            None,
            &CredentialFlags::default(),
        )
        .unwrap();
        assert_eq!(
            (s.suite, s.nats_url.as_str(), s.timeout),
            (Suite::Modern, DEFAULT_NATS_URL, DEFAULT_TIMEOUT)
        );
        assert!(toml::from_str::<ConfigFile>("colour = 1").is_err());
        assert_eq!(s.credentials, None);
    }

    #[test]
    fn a_nats_user_comes_with_its_password_file() {
        let config = ConfigFile {
            nats_user: Some("alice".into()),
            nats_password_file: Some("/pw".into()),
            ..ConfigFile::default()
        };
        assert_eq!(
            Credentials::resolve(&config, &CredentialFlags::default()).unwrap(),
            Some(Credentials::UserPassword {
                user: "alice".into(),
                password_file: "/pw".into()
            })
        );
        let flags = CredentialFlags {
            password_file: Some(Path::new("/other")),
            ..CredentialFlags::default()
        };
        assert_eq!(
            Credentials::resolve(&config, &flags).unwrap(),
            Some(Credentials::UserPassword {
                user: "alice".into(),
                password_file: "/other".into()
            })
        );
        let alone = CredentialFlags {
            user: Some("bob"),
            ..CredentialFlags::default()
        };
        assert!(matches!(
            Credentials::resolve(&ConfigFile::default(), &alone),
            Err(CliError::Usage(_))
        ));
        let creds = CredentialFlags {
            creds_file: Some(Path::new("/c.creds")),
            ..CredentialFlags::default()
        };
        assert_eq!(
            Credentials::resolve(&config, &creds).unwrap(),
            Some(Credentials::CredsFile("/c.creds".into()))
        );
    }
}
