//! Private files: every node's data directory and the wallet's directory are mode 0700, and
//! every file a node or the wallet creates in them (redb logs, keys, pinned peer keys,
//! secrets, identity records) is mode 0600, whatever the process umask (protocol.md
//! appendix E). A broker's log holds the PAN → account table: anyone who can read it on the
//! machine can register their own key for an open, keyless account and draw its money.
//!
//! The modes are given at creation (`open(2)`'s and `mkdir(2)`'s mode argument), so no file
//! is ever readable by others for an instant: the umask can only take bits away from 0600
//! and 0700, never add them. This is the one place that says how: the daemons' start-up
//! (`shared::daemon`), the event log ([`crate::events::EventLog::open`]) and the wallet all
//! come here.
//!
//! An existing directory with wider permissions (one made by hand, or by an earlier version
//! under umask 022) is tightened, with every file and directory below it, and the caller is
//! told what was tightened so that it warns: what OpenSSH-like tools do for their own files.
//! Refusing to start instead would leave the operator with the same chmod to type, and a
//! node down meanwhile. A directory with the sticky bit (a shared directory such as `/tmp`)
//! is refused rather than tightened, because making it private would lock other users out
//! of it; entries that are symbolic links are left alone, never followed.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of a private directory: its owner only.
pub const DIR_MODE: u32 = 0o700;
/// The mode of a private file: its owner only, never executable.
pub const FILE_MODE: u32 = 0o600;

/// The permission bits that let anyone but the owner in.
const OTHERS: u32 = 0o077;
/// The sticky bit: a directory shared by several users (`/tmp`).
const STICKY: u32 = 0o1000;

/// Why a private directory could not be made or tightened.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    /// Creating, reading or changing the mode of `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// `path` exists and is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// `path` is a shared directory (sticky bit, like `/tmp`): making it private would
    /// lock other users out of it.
    #[error(
        "{path} is a shared directory (sticky bit, like /tmp); give the node a directory \
         of its own, e.g. {path}/peerscrip"
    )]
    Shared {
        /// The directory.
        path: PathBuf,
    },
}

/// A file or directory whose mode was tightened, for the caller's warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tightened {
    /// The file or directory.
    pub path: PathBuf,
    /// Its permission bits before (e.g. `0o755`).
    pub was: u32,
    /// Its permission bits now.
    pub now: u32,
}

impl std::fmt::Display for Tightened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} was mode {:04o}, readable by others: now {:04o}",
            self.path.display(),
            self.was,
            self.now
        )
    }
}

/// Makes `dir` a private directory: created with mode 0700 (and any missing parent with
/// it) when missing; when it exists, it and everything below it tightened to its owner
/// only. Returns what was tightened (empty on a first start and on a directory already
/// private), which the caller should warn about.
///
/// # Errors
/// [`PrivateDirError`]: not a directory, a shared (sticky) directory, or an I/O error
/// (e.g. a directory owned by another user, whose mode we may not change).
pub fn prepare(dir: &Path) -> Result<Vec<Tightened>, PrivateDirError> {
    match fs::metadata(dir) {
        Ok(_) => tighten(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dir(dir)?;
            Ok(Vec::new())
        }
        Err(source) => Err(PrivateDirError::Io {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Tightens the existing directory `dir` and everything below it to its owner only (see
/// [`prepare`]); symbolic links inside are neither followed nor changed.
///
/// # Errors
/// As [`prepare`].
pub fn tighten(dir: &Path) -> Result<Vec<Tightened>, PrivateDirError> {
    let meta = fs::metadata(dir).map_err(|source| PrivateDirError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(PrivateDirError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    if meta.permissions().mode() & STICKY != 0 {
        return Err(PrivateDirError::Shared {
            path: dir.to_owned(),
        });
    }
    let mut tightened = Vec::new();
    tighten_tree(dir, meta.permissions().mode(), &mut tightened)?;
    Ok(tightened)
}

/// Tightens `dir` (whose mode is `mode`) and, depth first, its entries.
fn tighten_tree(
    dir: &Path,
    mode: u32,
    tightened: &mut Vec<Tightened>,
) -> Result<(), PrivateDirError> {
    tighten_one(dir, mode, tightened)?;
    let io_error = |source| PrivateDirError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(|source| PrivateDirError::Io {
            path: path.clone(),
            source,
        })?;
        let mode = meta.permissions().mode();
        if meta.is_dir() {
            tighten_tree(&path, mode, tightened)?;
        } else if meta.is_file() {
            tighten_one(&path, mode, tightened)?;
        }
    }
    Ok(())
}

/// Takes the group's and others' bits off `path` if it has any.
fn tighten_one(
    path: &Path,
    mode: u32,
    tightened: &mut Vec<Tightened>,
) -> Result<(), PrivateDirError> {
    let bits = mode & 0o7777;
    if bits & OTHERS == 0 {
        return Ok(());
    }
    let now = bits & !OTHERS;
    fs::set_permissions(path, Permissions::from_mode(now)).map_err(|source| {
        PrivateDirError::Io {
            path: path.to_owned(),
            source,
        }
    })?;
    tightened.push(Tightened {
        path: path.to_owned(),
        was: bits,
        now,
    });
    Ok(())
}

/// Creates `dir` and its missing parents with mode 0700 (an existing one is left as it is:
/// [`prepare`] tightens).
///
/// # Errors
/// [`PrivateDirError::Io`].
pub fn create_dir(dir: &Path) -> Result<(), PrivateDirError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|source| PrivateDirError::Io {
            path: dir.to_owned(),
            source,
        })
}

/// Creates the new file `path` with mode 0600 for writing; an existing file is an error
/// (`AlreadyExists`), never overwritten.
///
/// # Errors
/// The I/O error of `open(2)`.
pub fn create_new_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates `path` empty with mode 0600 unless it exists (then it is left as it is): for a
/// file another library then opens by name, such as a redb database, which redb would
/// otherwise create with the umask's mode.
///
/// # Errors
/// The I/O error of `open(2)`, other than the file existing.
pub fn create_if_missing(path: &Path) -> io::Result<()> {
    match create_new_file(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `contents` to `path` through a new private temporary file beside it, synced and
/// then renamed over `path`: a reader sees the old file or the new one, never a part, and
/// the new one is mode 0600 from its first byte.
///
/// # Errors
/// The I/O error of any step (the temporary file is removed on failure).
pub fn replace_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let written = (|| {
        // A temporary file left by a crash is ours to replace.
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut file = create_new_file(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_directory_and_new_files_are_private_whatever_the_umask() {
        // The umask is per process: the modes asked for at creation are at most 0700/0600
        // under any umask, so no umask is set here (tests run in parallel threads); the
        // daemons' end-to-end test runs them under umask 022.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/data");
        assert_eq!(prepare(&dir).unwrap(), Vec::new());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        create_new_file(&dir.join("key")).unwrap();
        create_if_missing(&dir.join("log.redb")).unwrap();
        replace_file(&dir.join("peer.pem"), b"pem").unwrap();
        for file in ["key", "log.redb", "peer.pem"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
        assert_eq!(fs::read(dir.join("peer.pem")).unwrap(), b"pem");
        assert!(!dir.join("peer.pem.tmp").exists());
        // Nothing to tighten on a second start.
        assert_eq!(prepare(&dir).unwrap(), Vec::new());
        // An existing file is neither overwritten nor recreated.
        fs::write(dir.join("log.redb"), b"kept").unwrap();
        create_if_missing(&dir.join("log.redb")).unwrap();
        assert_eq!(fs::read(dir.join("log.redb")).unwrap(), b"kept");
        assert_eq!(
            create_new_file(&dir.join("key")).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn a_world_readable_directory_is_tightened_with_everything_below_it_and_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        fs::create_dir_all(dir.join("peers")).unwrap();
        fs::write(dir.join("broker.redb"), b"ledger").unwrap();
        fs::write(dir.join("peers/a.pem"), b"pem").unwrap();
        fs::write(dir.join("private"), b"x").unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(dir.join("peers"), Permissions::from_mode(0o775)).unwrap();
        fs::set_permissions(dir.join("broker.redb"), Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(dir.join("peers/a.pem"), Permissions::from_mode(0o666)).unwrap();
        fs::set_permissions(dir.join("private"), Permissions::from_mode(0o600)).unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, b"not ours").unwrap();
        fs::set_permissions(&outside, Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();

        let mut tightened = prepare(&dir).unwrap();
        tightened.sort_by(|a, b| a.path.cmp(&b.path));
        let seen: Vec<(PathBuf, u32, u32)> = tightened
            .iter()
            .map(|t| (t.path.strip_prefix(&dir).unwrap().to_owned(), t.was, t.now))
            .collect();
        assert_eq!(
            seen,
            vec![
                (PathBuf::new(), 0o755, 0o700),
                (PathBuf::from("broker.redb"), 0o644, 0o600),
                (PathBuf::from("peers"), 0o775, 0o700),
                (PathBuf::from("peers/a.pem"), 0o666, 0o600),
            ]
        );
        assert!(
            tightened[0]
                .to_string()
                .ends_with("was mode 0755, readable by others: now 0700")
        );
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("broker.redb")), 0o600);
        assert_eq!(mode(&dir.join("peers/a.pem")), 0o600);
        assert_eq!(mode(&dir.join("private")), 0o600);
        // The link's target is not ours: untouched.
        assert_eq!(mode(&outside), 0o644);
        assert_eq!(fs::read(dir.join("broker.redb")).unwrap(), b"ledger");
    }

    #[test]
    fn a_shared_directory_or_a_file_is_refused_and_left_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = tmp.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, Permissions::from_mode(0o1777)).unwrap();
        let e = prepare(&shared).unwrap_err();
        assert!(matches!(e, PrivateDirError::Shared { .. }), "{e}");
        assert!(e.to_string().contains("shared directory"), "{e}");
        assert_eq!(mode(&shared), 0o1777);

        let file = tmp.path().join("file");
        fs::write(&file, b"x").unwrap();
        fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        let e = prepare(&file).unwrap_err();
        assert!(matches!(e, PrivateDirError::NotADirectory { .. }), "{e}");
        assert_eq!(mode(&file), 0o644);
    }
}
