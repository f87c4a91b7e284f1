//! The identity of a data directory: which kind of node, in which suite and under which
//! UID it was created (a start-up refusal otherwise). Recorded in `node.toml` on the first
//! start and checked on every later one, so that a daemon refuses, with a message naming
//! both values, a directory of another suite (its log, scrip and keys are of that suite,
//! protocol.md section 2) or a key that is not the node's (every peer pinned the node's UID,
//! section 1; its scrip names it as producer, section 4). The log itself records its suite
//! and kind too (`events::LogIdentity`); this file adds the UID and answers before the log
//! is opened.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ids::Uid;
use crate::suite::Suite;

/// The file in a data directory that records its identity.
pub const IDENTITY_FILE: &str = "node.toml";

/// What a data directory belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    /// `broker` or `merchant`.
    pub kind: String,
    /// The deployment's suite.
    pub suite: Suite,
    /// The node's UID (its key's).
    pub uid: Uid,
}

/// Why a data directory may not be used by this node.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The directory was created with another suite.
    #[error(
        "data directory {dir} was created for suite {recorded}, but this node is configured \
         for suite {configured}; use the data directory of a {configured} deployment"
    )]
    SuiteMismatch {
        /// The directory.
        dir: PathBuf,
        /// The suite it records.
        recorded: Suite,
        /// The configured suite.
        configured: Suite,
    },
    /// The key is not the one the directory was created with.
    #[error(
        "the key's UID {key} does not match the UID {recorded} recorded in data directory \
         {dir}; configure the node's own key"
    )]
    UidMismatch {
        /// The directory.
        dir: PathBuf,
        /// The UID it records.
        recorded: Uid,
        /// The configured key's UID.
        key: Uid,
    },
    /// The directory belongs to another kind of node.
    #[error("data directory {dir} belongs to a {recorded}, not a {configured}")]
    KindMismatch {
        /// The directory.
        dir: PathBuf,
        /// The kind it records.
        recorded: String,
        /// This node's kind.
        configured: String,
    },
    /// The identity file could not be read, parsed or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// The file's layout.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    kind: String,
    suite: String,
    uid: String,
}

impl NodeIdentity {
    /// Checks `dir`'s recorded identity against `self`, or records `self` there when the
    /// directory has none yet (its first start). The directory is created if missing, mode
    /// 0700, and the record mode 0600 (`crate::private_dir`).
    ///
    /// # Errors
    /// A mismatch of suite, UID or kind, or an unreadable, malformed or unwritable file.
    pub fn check_or_record(&self, dir: &Path) -> Result<(), IdentityError> {
        let path = dir.join(IDENTITY_FILE);
        let file_error = |message: String| IdentityError::File {
            path: path.clone(),
            message,
        };
        match fs::read_to_string(&path) {
            Ok(text) => {
                let recorded = parse(&text).map_err(file_error)?;
                self.check(dir, &recorded)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::private_dir::create_dir(dir).map_err(|e| file_error(e.to_string()))?;
                let stored = Stored {
                    kind: self.kind.clone(),
                    suite: self.suite.name().to_owned(),
                    uid: self.uid.to_string(),
                };
                let text = toml::to_string(&stored).map_err(|e| file_error(e.to_string()))?;
                let mut file = crate::private_dir::create_new_file(&path)
                    .map_err(|e| file_error(e.to_string()))?;
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| file_error(e.to_string()))
            }
            Err(e) => Err(file_error(e.to_string())),
        }
    }

    /// The identity recorded in `dir`, or `None` when it has none (a directory no daemon
    /// has started on, e.g. the demo's): for a tool that reads a data directory without
    /// being its node, such as `peerscrip-ops export`, which names the node by its UID.
    ///
    /// # Errors
    /// An unreadable or malformed file.
    pub fn read(dir: &Path) -> Result<Option<NodeIdentity>, IdentityError> {
        let path = dir.join(IDENTITY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => parse(&text)
                .map(Some)
                .map_err(|message| IdentityError::File { path, message }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IdentityError::File {
                path,
                message: e.to_string(),
            }),
        }
    }

    fn check(&self, dir: &Path, recorded: &NodeIdentity) -> Result<(), IdentityError> {
        if recorded.kind != self.kind {
            return Err(IdentityError::KindMismatch {
                dir: dir.to_owned(),
                recorded: recorded.kind.clone(),
                configured: self.kind.clone(),
            });
        }
        if recorded.suite != self.suite {
            return Err(IdentityError::SuiteMismatch {
                dir: dir.to_owned(),
                recorded: recorded.suite,
                configured: self.suite,
            });
        }
        if recorded.uid != self.uid {
            return Err(IdentityError::UidMismatch {
                dir: dir.to_owned(),
                recorded: recorded.uid,
                key: self.uid,
            });
        }
        Ok(())
    }
}

fn parse(text: &str) -> Result<NodeIdentity, String> {
    let stored: Stored = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(NodeIdentity {
        kind: stored.kind,
        suite: stored.suite.parse().map_err(|e| format!("suite: {e}"))?,
        uid: stored.uid.parse().map_err(|e| format!("uid: {e}"))?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn broker(suite: Suite, uid: Uid) -> NodeIdentity {
        NodeIdentity {
            kind: "broker".to_owned(),
            suite,
            uid,
        }
    }

    #[test]
    fn the_first_start_records_and_a_later_one_checks() {
        let dir = tempfile::tempdir().unwrap();
        let me = broker(Suite::Modern, Uid::random());
        me.check_or_record(dir.path()).unwrap();
        me.check_or_record(dir.path()).unwrap();
        let text = fs::read_to_string(dir.path().join(IDENTITY_FILE)).unwrap();
        assert!(text.contains("suite = \"modern\""), "{text}");
        assert_eq!(NodeIdentity::read(dir.path()).unwrap(), Some(me));
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(NodeIdentity::read(empty.path()).unwrap(), None);
    }

    #[test]
    fn another_suite_uid_or_kind_is_refused_and_the_record_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let uid = Uid::random();
        broker(Suite::Paper, uid)
            .check_or_record(dir.path())
            .unwrap();
        let before = fs::read(dir.path().join(IDENTITY_FILE)).unwrap();

        let e = broker(Suite::Modern, uid)
            .check_or_record(dir.path())
            .unwrap_err();
        assert!(
            matches!(
                e,
                IdentityError::SuiteMismatch {
                    recorded: Suite::Paper,
                    configured: Suite::Modern,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("created for suite paper"), "{e}");

        let other = Uid::random();
        let e = broker(Suite::Paper, other)
            .check_or_record(dir.path())
            .unwrap_err();
        assert!(
            matches!(e, IdentityError::UidMismatch { recorded, key, .. } if recorded == uid && key == other),
            "{e}"
        );

        let mut merchant = broker(Suite::Paper, uid);
        merchant.kind = "merchant".to_owned();
        let e = merchant.check_or_record(dir.path()).unwrap_err();
        assert!(matches!(e, IdentityError::KindMismatch { .. }), "{e}");

        assert_eq!(fs::read(dir.path().join(IDENTITY_FILE)).unwrap(), before);
    }
}
