//! `--data-dir`: the demo writes its nodes' files into a new or empty directory only.
//!
//! Why not reuse a previous run's files: every run draws fresh keys and root keys and keeps
//! none of them, so the nodes of a previous run cannot be reopened (their files are sealed
//! to keys that are gone), and mixing two runs in one directory would make neither
//! auditable. Why verify before refusing: a person who kept a run's files wants to know
//! whether they are still what the run wrote. What can be checked without the keys is each
//! log's hash chain (protocol.md section 8), so that is checked, for each file at the place
//! the demo puts it:
//!
//! - every chain verifies: [`DemoError::DataDirInUse`] (exit 4), saying so;
//! - a log that does not open, is not the node kind its place says, or whose chain does not
//!   verify (an edited, removed or reordered event): [`DemoError::ChecksFailed`] (exit 3),
//!   naming the file and the event;
//! - anything else in the directory: [`DemoError::DataDirInUse`], listing what is there.
//!
//! Nothing is written in any of these cases.

use std::path::Path;

use anyhow::Context as _;
use shared::events::EventLog;
use shared::node::Recorded;

use super::DemoError;
use super::checks::Check;

/// Where the demo puts each node's log, relative to the data directory, with its node kind
/// (as recorded in the log's identity). `setup` creates exactly these.
pub const NODE_FILES: [(&str, &str); 5] = [
    ("broker/broker.redb", broker::node::NODE_KIND),
    ("merchant-tea/merchant.redb", merchant::node::NODE_KIND),
    ("merchant-books/merchant.redb", merchant::node::NODE_KIND),
    ("customer-alice/wallet.redb", customer_cli::NODE_KIND),
    ("customer-bob/wallet.redb", customer_cli::NODE_KIND),
];

/// Makes sure `dir` can take a fresh run: creates it if missing, accepts it if empty,
/// otherwise verifies and refuses it (see the module doc).
///
/// # Errors
/// [`DemoError::ChecksFailed`] or [`DemoError::DataDirInUse`] (see the module doc); any
/// other error if `dir` cannot be created or read.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        shared::private_dir::create_dir(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        return Ok(());
    }
    let mut entries: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    if entries.is_empty() {
        return Ok(());
    }
    entries.sort();
    let mut checks = Vec::new();
    let mut verified = Vec::new();
    for (rel, kind) in NODE_FILES {
        let path = dir.join(rel);
        if path.exists() {
            let result = verify(&path, kind);
            if let Ok(events) = &result {
                verified.push(format!("{rel} ({events} events)"));
            }
            checks.push(Check::new(
                format!("previous run's {rel} verifies"),
                result.map(drop),
            ));
        }
    }
    let failed: Vec<Check> = checks.into_iter().filter(|c| !c.held).collect();
    if !failed.is_empty() {
        return Err(DemoError::ChecksFailed(failed).into());
    }
    let holds = if verified.is_empty() {
        entries.join(", ")
    } else {
        format!(
            "a previous run whose logs' hash chains verify: {}",
            verified.join(", ")
        )
    };
    Err(DemoError::DataDirInUse {
        dir: dir.to_owned(),
        holds,
    }
    .into())
}

/// Opens the log at `path` read as a `kind` log and verifies its hash chain; returns its
/// number of events, or what is wrong with it.
fn verify(path: &Path, kind: &str) -> Result<u64, String> {
    /// The same steps for each node's event type.
    macro_rules! verify_as {
        ($event:ty) => {{
            let log = EventLog::<$event>::open_existing(path)
                .map_err(|e| format!("cannot open it: {e}"))?;
            let found = &log.identity().node_kind;
            if found != kind {
                return Err(format!("it is a {found} log, not a {kind} log"));
            }
            let report = log.verify_chain().map_err(|e| e.to_string())?;
            log.close().map_err(|e| e.to_string())?;
            Ok(report.events)
        }};
    }
    if kind == broker::node::NODE_KIND {
        verify_as!(Recorded<broker::core::Kind>)
    } else if kind == merchant::node::NODE_KIND {
        verify_as!(Recorded<merchant::core::events::Kind>)
    } else {
        verify_as!(customer_cli::core::WalletEvent)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_missing_directory_is_created_and_an_empty_one_accepted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new");
        prepare(&dir).unwrap();
        assert!(dir.is_dir());
        prepare(&dir).unwrap();
    }

    #[test]
    fn a_directory_with_other_files_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
        let err = prepare(tmp.path()).unwrap_err();
        let demo = err.downcast_ref::<DemoError>().unwrap();
        assert_eq!(demo.exit(), customer_cli::cli::exit::Exit::Usage);
        assert!(err.to_string().contains("it holds notes.txt;"), "{err}");
        assert_eq!(
            std::fs::read(tmp.path().join("notes.txt")).unwrap(),
            b"mine"
        );
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_that_is_not_a_log_where_the_broker_belongs_fails_its_check() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("broker")).unwrap();
        std::fs::write(tmp.path().join("broker/broker.redb"), b"not redb").unwrap();
        let err = prepare(tmp.path()).unwrap_err();
        match err.downcast_ref::<DemoError>() {
            Some(DemoError::ChecksFailed(failed)) => {
                assert_eq!(failed.len(), 1);
                assert_eq!(failed[0].name, "previous run's broker/broker.redb verifies");
                assert!(
                    failed[0]
                        .detail
                        .as_deref()
                        .unwrap()
                        .starts_with("cannot open it: "),
                    "{failed:?}"
                );
            }
            other => panic!("expected a failed check, got {other:?}"),
        }
        assert_eq!(
            std::fs::read(tmp.path().join("broker/broker.redb")).unwrap(),
            b"not redb"
        );
    }
}
