//! `peerscrip init`: a new wallet (protocol.md section 1: a peer's key pair, its UID, and
//! the broker's key pinned out of band).
//!
//! The key pair is generated here (`KeyPair::generate`, the suite's size) and its private
//! key written as `ENCRYPTED PRIVATE KEY` PKCS#8 (PBES2: scrypt, AES-256-CBC) under the
//! customer's passphrase; the broker's public key is checked for the suite,
//! copied into the wallet directory and pinned in the wallet's first event. Its UID, the
//! SHA-256 prefix of its SubjectPublicKeyInfo, is printed so the customer can compare it
//! with the one the broker's operator publishes.

use std::path::Path;

use shared::{KeyPair, PublicKey, Suite};

use crate::Wallet;
use crate::cli::Cli;
use crate::cli::config::{ConfigFile, Credentials, WalletDir, resolve_tls, write_new};
use crate::cli::exit::CliError;
use crate::cli::output::{Done, warn_of_suite};
use crate::cli::secret_input;
use crate::cli::session::now;

/// Creates the wallet (see the module doc).
pub fn run(cli: &Cli, broker_key: &Path) -> Result<Done, CliError> {
    let dir = WalletDir::resolve(cli.wallet_dir.as_deref())?;
    let suite = cli.suite.unwrap_or(Suite::Modern);
    warn_of_suite(suite);
    for existing in [dir.config(), dir.wallet(), dir.key()] {
        if existing.exists() {
            return Err(CliError::Usage(format!(
                "{} already exists: {} holds a wallet",
                existing.display(),
                dir.root().display()
            )));
        }
    }
    let broker_pem = std::fs::read_to_string(broker_key)
        .map_err(|e| CliError::Usage(format!("reading {}: {e}", broker_key.display())))?;
    let broker = PublicKey::from_pem(suite, &broker_pem).map_err(|e| {
        CliError::Usage(format!(
            "{} is not a {suite} public key: {e}",
            broker_key.display()
        ))
    })?;
    // Checked before anything is written; kept as paths (the password is never copied).
    let credentials = Credentials::resolve(&ConfigFile::default(), &cli.credential_flags())?;
    let tls = resolve_tls(&ConfigFile::default(), &cli.credential_flags())?;
    let passphrase = secret_input::passphrase(cli.passphrase_file.as_deref(), true)?;

    create_private_dir(dir.root())?;
    let keys = KeyPair::generate(suite)
        .map_err(|e| CliError::Failed(format!("generating the key pair: {e}")))?;
    let private_pem = keys
        .to_pkcs8_pem(Some(passphrase.as_bytes()))
        .map_err(|e| CliError::Failed(format!("encrypting the private key: {e}")))?;
    let public_pem = keys
        .public()
        .to_pem()
        .map_err(|e| CliError::Failed(format!("encoding the public key: {e}")))?;
    write_new(&dir.key(), private_pem.as_bytes())?;
    write_new(&dir.public_key(), public_pem.as_bytes())?;
    write_new(&dir.broker_key(), broker_pem.as_bytes())?;
    let uid = keys.uid();
    let wallet = Wallet::create(dir.wallet(), keys, &broker, now())?;
    drop(wallet);
    let mut config = ConfigFile {
        suite: Some(suite.name().to_owned()),
        nats_url: cli.nats_url.clone(),
        subject_prefix: None,
        timeout_ms: cli
            .timeout
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        ..ConfigFile::default()
    };
    match credentials {
        Some(Credentials::UserPassword {
            user,
            password_file,
        }) => {
            config.nats_user = Some(user);
            config.nats_password_file = Some(absolute(&password_file)?);
        }
        Some(Credentials::CredsFile(path)) => config.nats_creds_file = Some(absolute(&path)?),
        None => {}
    }
    if let Some(tls) = tls {
        config.nats_ca_file = tls.ca_file.as_deref().map(absolute).transpose()?;
        if let Some(client) = tls.client_cert {
            config.nats_client_cert = Some(absolute(&client.cert)?);
            config.nats_client_key = Some(absolute(&client.key)?);
        }
    }
    write_new(&dir.config(), config.to_toml()?.as_bytes())?;

    let lines = vec![
        format!(
            "created the wallet in {} ({suite} suite)",
            dir.root().display()
        ),
        format!("your UID:   {uid}"),
        format!(
            "broker UID: {}  (compare it with the one the broker's operator publishes)",
            broker.uid()
        ),
        format!(
            "private key: {} (encrypted with your passphrase)",
            dir.key().display()
        ),
        "next: peerscrip register --pan <your account number>".to_owned(),
    ];
    let json = serde_json::json!({
        "command": "init",
        "wallet_dir": dir.root().display().to_string(),
        "suite": suite.name(),
        "uid": uid.to_string(),
        "broker_uid": broker.uid().to_string(),
        "key_file": dir.key().display().to_string(),
        "public_key_file": dir.public_key().display().to_string(),
        "encrypted": true,
    });
    Ok(Done::new(lines, json))
}

/// `path` made absolute, so the config works from any directory.
fn absolute(path: &Path) -> Result<std::path::PathBuf, CliError> {
    std::path::absolute(path).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

/// Creates the wallet directory, readable by its owner only (an existing one, made by
/// hand, tightened with a warning: `shared::private_dir`).
fn create_private_dir(path: &Path) -> Result<(), CliError> {
    let tightened = shared::private_dir::prepare(path)
        .map_err(|e| CliError::Usage(format!("the wallet directory: {e}")))?;
    for t in tightened {
        crate::cli::output::warn(&format!("{t}; tightened to its owner only"));
    }
    Ok(())
}
