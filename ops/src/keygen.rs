//! `peerscrip-ops keygen`: a key pair for a broker, merchant or wallet (protocol.md
//! sections 1 and 2).
//!
//! Writes `key.pem` (PKCS#8, encrypted with a passphrase when one is given) and
//! `key.pub.pem` (SubjectPublicKeyInfo), both readable by `openssl pkey`, and prints the
//! key's UID, the first 16 bytes of SHA-256 over the SPKI DER. Files are created, never
//! overwritten: replacing a node's key by accident would strand the scrip it issued. The
//! private key file is created with mode 0600 so that no other user can read it, even
//! briefly.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use shared::Suite;
use shared::suite::KeyPair;
use zeroize::Zeroizing;

use crate::cli::KeygenArgs;

/// File name of the private key inside `--out`.
pub const PRIVATE_KEY_FILE: &str = "key.pem";
/// File name of the public key inside `--out`.
pub const PUBLIC_KEY_FILE: &str = "key.pub.pem";

/// What `keygen` produced.
#[derive(Debug)]
pub struct Generated {
    pub uid: shared::Uid,
    pub suite: Suite,
    pub private_key: PathBuf,
    pub public_key: PathBuf,
    pub encrypted: bool,
}

/// Runs `keygen` and prints its result, as text or (`json`) one JSON object.
pub fn run(args: &KeygenArgs, json: bool) -> anyhow::Result<()> {
    let passphrase = match &args.passphrase_file {
        Some(path) => Some(read_passphrase(path)?),
        None => None,
    };
    let generated = generate(
        args.suite,
        args.bits,
        &args.out,
        passphrase.as_ref().map(|p| p.as_bytes()),
    )?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": true,
                "uid": generated.uid.to_string(),
                "suite": generated.suite.name(),
                "private_key": generated.private_key,
                "public_key": generated.public_key,
                "encrypted": generated.encrypted,
            })
        );
    } else {
        println!(
            "wrote {} (private key, {})",
            generated.private_key.display(),
            if generated.encrypted {
                "encrypted with the passphrase"
            } else {
                "unencrypted, mode 0600"
            }
        );
        println!("wrote {} (public key)", generated.public_key.display());
        println!("uid {}", generated.uid);
    }
    Ok(())
}

/// Generates a key pair of `suite` and writes it into `out` (created if missing).
pub fn generate(
    suite: Suite,
    bits: Option<usize>,
    out: &Path,
    passphrase: Option<&[u8]>,
) -> anyhow::Result<Generated> {
    let private_key = out.join(PRIVATE_KEY_FILE);
    let public_key = out.join(PUBLIC_KEY_FILE);
    for path in [&private_key, &public_key] {
        if path.exists() {
            bail!(
                "{} already exists; refusing to overwrite a key",
                path.display()
            );
        }
    }
    let keys = match bits {
        Some(bits) => KeyPair::generate_with_bits(suite, bits),
        None => KeyPair::generate(suite),
    }
    .context("generating the key pair")?;
    let private_pem = keys
        .to_pkcs8_pem(passphrase)
        .context("encoding the private key")?;
    let public_pem = keys.public().to_pem().context("encoding the public key")?;

    // Private like a node's data directory: it holds a private key (shared::private_dir).
    shared::private_dir::create_dir(out).with_context(|| format!("creating {}", out.display()))?;
    write_new(&private_key, private_pem.as_bytes(), 0o600)?;
    write_new(&public_key, public_pem.as_bytes(), 0o644)?;
    Ok(Generated {
        uid: keys.uid(),
        suite,
        private_key,
        public_key,
        encrypted: passphrase.is_some(),
    })
}

/// Reads a passphrase: the file's first line, without its line ending. An empty passphrase
/// is refused, since it would look like protection and be none.
pub fn read_passphrase(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        fs::read_to_string(path)
            .with_context(|| format!("reading passphrase file {}", path.display()))?,
    );
    let line = Zeroizing::new(text.lines().next().unwrap_or("").to_owned());
    if line.is_empty() {
        bail!("passphrase file {} is empty", path.display());
    }
    Ok(line)
}

pub(crate) fn write_new(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
