//! The key files a daemon reads at start (protocol.md sections 1, 2 and 4): its private
//! key (PKCS#8 PEM as `peerscrip-ops keygen` writes it, encrypted with a passphrase or
//! not), the passphrase and other one-line secrets (first line of a file), and its scrip
//! root key (32 raw bytes, created with mode 0600 on the first start).
//!
//! Every error names the file and never holds a byte of a secret.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::scrip::{ROOT_KEY_LEN, RootKey};
use crate::secret::SecretBytes;
use crate::suite::{CryptoError, KeyPair, Suite};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file could not be written (a new root key).
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The private key file is not a key of the suite, or the passphrase does not open it.
    #[error("private key {path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What was wrong (never the key or the passphrase).
        source: CryptoError,
    },
    /// A secret file's first line is empty.
    #[error("{path} is empty (the secret is its first line)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A root key file that is not exactly [`ROOT_KEY_LEN`] bytes.
    #[error("root key {path} is {len} bytes; a root key is exactly {ROOT_KEY_LEN} bytes")]
    RootKeyLength {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
}

/// The first line of `path` (without its line ending), as a secret: a passphrase, a NATS
/// password, a PANSecret.
///
/// # Errors
/// [`KeyFileError::Read`], or [`KeyFileError::Empty`] when the first line is empty.
pub fn read_secret_line(path: &Path) -> Result<SecretBytes, KeyFileError> {
    let text = Zeroizing::new(fs::read(path).map_err(|source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    })?);
    let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(KeyFileError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(SecretBytes::from_slice(line))
}

/// The node's key pair from the PKCS#8 PEM file `path`, opened with `passphrase` when the
/// file is encrypted, its size checked against `suite`.
///
/// # Errors
/// [`KeyFileError::Read`], or [`KeyFileError::Key`] (not PKCS#8, wrong suite or size, a
/// passphrase missing, wrong or given for an unencrypted file).
pub fn load_key_pair(
    suite: Suite,
    path: &Path,
    passphrase: Option<&SecretBytes>,
) -> Result<KeyPair, KeyFileError> {
    let pem = Zeroizing::new(
        fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        })?,
    );
    KeyPair::from_pkcs8_pem(suite, &pem, passphrase.map(SecretBytes::expose)).map_err(|source| {
        KeyFileError::Key {
            path: path.to_owned(),
            source,
        }
    })
}

/// The scrip root key of a producer (protocol.md section 4) from `path`; on the first
/// start, when the file does not exist, a fresh one written there with mode 0600 (created,
/// never overwritten: another root key would invalidate every scrip issued).
///
/// # Errors
/// [`KeyFileError::Read`], [`KeyFileError::Write`], or [`KeyFileError::RootKeyLength`].
pub fn load_or_create_root_key(path: &Path) -> Result<RootKey, KeyFileError> {
    match fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            RootKey::from_bytes(&bytes).map_err(|_| KeyFileError::RootKeyLength {
                path: path.to_owned(),
                len: bytes.len(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = RootKey::generate();
            let write = |source| KeyFileError::Write {
                path: path.to_owned(),
                source,
            };
            let mut file = crate::private_dir::create_new_file(path).map_err(write)?;
            file.write_all(key.expose())
                .and_then(|()| file.sync_all())
                .map_err(write)?;
            Ok(key)
        }
        Err(source) => Err(KeyFileError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_root_key_is_created_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let first = load_or_create_root_key(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create_root_key(&path).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn a_root_key_file_of_the_wrong_length_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        fs::write(&path, [7u8; 31]).unwrap();
        let e = load_or_create_root_key(&path).unwrap_err();
        assert!(
            matches!(e, KeyFileError::RootKeyLength { len: 31, .. }),
            "{e}"
        );
        assert_eq!(fs::read(&path).unwrap(), [7u8; 31]);
    }

    #[test]
    fn a_secret_is_the_first_line_and_an_empty_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        fs::write(&path, "correct horse\r\nsecond line\n").unwrap();
        assert_eq!(read_secret_line(&path).unwrap().expose(), b"correct horse");
        fs::write(&path, "\nsecond line\n").unwrap();
        let e = read_secret_line(&path).unwrap_err();
        assert!(matches!(e, KeyFileError::Empty { .. }), "{e}");
    }

    #[test]
    fn a_key_file_with_a_passphrase_it_does_not_need_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let pem = crate::fixtures::keypair(Suite::Paper, 0)
            .to_pkcs8_pem(None)
            .unwrap();
        fs::write(&path, pem.as_bytes()).unwrap();
        let passphrase = SecretBytes::from_slice(b"not needed");
        let e = load_key_pair(Suite::Paper, &path, Some(&passphrase)).unwrap_err();
        assert!(
            matches!(
                e,
                KeyFileError::Key {
                    source: CryptoError::NotEncrypted,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("key.pem"), "{e}");
        let keys = load_key_pair(Suite::Paper, &path, None).unwrap();
        assert_eq!(keys.uid(), crate::fixtures::keypair(Suite::Paper, 0).uid());
    }
}
