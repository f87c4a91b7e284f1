//! Opening: identity, schema version, and the exclusive lock (protocol.md section 1).

use std::process::Command;

use redb::Database;

use super::fixture::{Ledger, Log, deposit, identity, temp_log};
use crate::events::meta::META;
use crate::events::{LogError, LogIdentity};
use crate::suite::Suite;

#[test]
fn a_log_of_another_suite_or_node_is_refused() {
    let (_dir, path, log) = temp_log();
    log.append(vec![deposit(1, 5)], &Ledger).unwrap();
    log.close().unwrap();

    let paper = LogIdentity::new(Suite::Paper, "test");
    match Log::open(&path, paper.clone()) {
        Err(LogError::IdentityMismatch { expected, found }) => {
            assert_eq!(expected, paper);
            assert_eq!(found, identity());
        }
        other => panic!("{other:?}"),
    }
    let merchant = LogIdentity::new(Suite::Modern, "merchant");
    assert!(matches!(
        Log::open(&path, merchant),
        Err(LogError::IdentityMismatch { .. })
    ));

    // The refusals changed nothing: the right identity still opens the same log.
    let log = Log::open(&path, identity()).unwrap();
    assert_eq!(log.len().unwrap(), 1);
    assert_eq!(log.identity(), &identity());
}

#[test]
fn an_auditor_opens_a_log_whatever_its_identity() {
    let (dir, path, log) = temp_log();
    log.close().unwrap();
    let log = Log::open_existing(&path).unwrap();
    assert_eq!(log.identity(), &identity());
    log.close().unwrap();

    let other = dir.path().join("other.redb");
    Database::create(&other).unwrap();
    assert!(matches!(
        Log::open_existing(&other),
        Err(LogError::NotALog { path }) if path == other
    ));
}

#[test]
fn another_schema_version_is_refused() {
    let (_dir, path, log) = temp_log();
    log.close().unwrap();
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 2u32.to_be_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        Log::open(&path, identity()),
        Err(LogError::SchemaVersion {
            expected: 1,
            found: 2
        })
    ));
}

#[test]
fn a_second_open_of_the_same_file_is_refused() {
    let (_dir, path, log) = temp_log();
    match Log::open(&path, identity()) {
        Err(LogError::Locked { path: locked }) => assert_eq!(locked, path),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Log::open_existing(&path),
        Err(LogError::Locked { .. })
    ));
    log.close().unwrap();
    Log::open(&path, identity()).unwrap();
}

const CHILD_PATH: &str = "PEERSCRIP_EVENTS_LOCK_CHILD_PATH";
const CHILD_EXPECT: &str = "PEERSCRIP_EVENTS_LOCK_CHILD_EXPECT";

/// Runs [`lock_child`] in a new process of this test binary.
fn run_child(path: &std::path::Path, expect: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "events::tests::open::lock_child",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_PATH, path)
        .env(CHILD_EXPECT, expect)
        .output()
        .unwrap()
}

/// The lock holds across processes (a standby broker cannot serve while another holds the
/// log) and is released when the holder closes it.
#[test]
fn another_process_is_locked_out_until_the_holder_closes() {
    let (_dir, path, log) = temp_log();
    let held = run_child(&path, "locked");
    assert!(
        held.status.success() && String::from_utf8_lossy(&held.stdout).contains("1 passed"),
        "{held:?}"
    );
    log.close().unwrap();
    let free = run_child(&path, "open");
    assert!(
        free.status.success() && String::from_utf8_lossy(&free.stdout).contains("1 passed"),
        "{free:?}"
    );
}

/// The other process of [`another_process_is_locked_out_until_the_holder_closes`]; it fails
/// when run by hand without that test's environment.
#[test]
#[ignore = "run in a child process by another_process_is_locked_out_until_the_holder_closes"]
fn lock_child() {
    let path = std::env::var_os(CHILD_PATH).expect("run by the parent test only");
    let expect = std::env::var(CHILD_EXPECT).expect("run by the parent test only");
    let result = Log::open(&path, identity());
    match expect.as_str() {
        "locked" => assert!(matches!(result, Err(LogError::Locked { .. })), "{result:?}"),
        "open" => assert_eq!(result.unwrap().len().unwrap(), 0),
        other => panic!("unknown expectation {other}"),
    }
}
