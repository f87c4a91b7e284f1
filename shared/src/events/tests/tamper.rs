//! Tampering with the stored log, through redb directly, is detected and named.

use std::path::Path;

use redb::{Database, ReadableTable};

use super::fixture::{Ledger, Log, TestKind, a, history, identity, temp_log};
use crate::events::meta::{EVENTS, META};
use crate::events::{ChainBreak, Event, LogError};

/// A closed log of seven events; returns its directory guard and path.
fn closed_log() -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, path, log) = temp_log();
    history(&log);
    log.close().unwrap();
    (dir, path)
}

fn with_events(path: &Path, f: impl FnOnce(&mut redb::Table<u64, &[u8]>)) {
    let db = Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(EVENTS).unwrap();
        f(&mut table);
    }
    txn.commit().unwrap();
}

fn row(table: &redb::Table<u64, &[u8]>, seq: u64) -> Vec<u8> {
    table.get(seq).unwrap().unwrap().value().to_vec()
}

fn flip(path: &Path, seq: u64, pos: impl FnOnce(usize) -> usize) {
    with_events(path, |table| {
        let mut bytes = row(table, seq);
        let at = pos(bytes.len());
        bytes[at] ^= 0x01;
        table.insert(seq, bytes.as_slice()).unwrap();
    });
}

fn chain_error(path: &Path) -> (u64, ChainBreak) {
    let log = Log::open(path, identity()).unwrap();
    match log.verify_chain() {
        Err(LogError::Chain { seq, reason }) => (seq, reason),
        other => panic!("expected a chain error, got {other:?}"),
    }
}

#[test]
fn an_untouched_log_verifies() {
    let (_dir, path) = closed_log();
    let log = Log::open(&path, identity()).unwrap();
    assert_eq!(log.verify_chain().unwrap().events, 7);
}

#[test]
fn a_flipped_byte_in_a_middle_event_names_it() {
    // Bytes 0, 25 (inside prev_hash: after seq 1, time 6, tx 16), the middle and the last.
    let positions: [fn(usize) -> usize; 4] = [|_| 0, |_| 25, |len| len / 2, |len| len - 1];
    for pos in positions {
        let (_dir, path) = closed_log();
        flip(&path, 4, pos);
        assert_eq!(chain_error(&path).0, 4);
    }
    let (_dir, path) = closed_log();
    flip(&path, 4, |_| 25);
    assert_eq!(chain_error(&path), (4, ChainBreak::PrevHashMismatch));
}

#[test]
fn a_flipped_byte_in_the_last_event_names_it() {
    let positions: [fn(usize) -> usize; 3] = [|_| 0, |_| 25, |len| len - 1];
    for pos in positions {
        let (_dir, path) = closed_log();
        flip(&path, 7, pos);
        assert_eq!(chain_error(&path).0, 7);
    }
}

/// A forger who decodes an event, changes both sides of a payment (still balanced) and
/// stores the proper encoding is caught by the next link.
#[test]
fn a_rewritten_amount_names_its_event() {
    let (_dir, path) = closed_log();
    with_events(&path, |table| {
        let mut event = Event::<TestKind>::decode(&row(table, 6)).unwrap();
        for p in &mut event.postings {
            p.amount = a(1);
        }
        table.insert(6, event.encode().unwrap().as_slice()).unwrap();
    });
    assert_eq!(chain_error(&path), (6, ChainBreak::HashMismatch));
}

#[test]
fn a_deleted_event_is_named() {
    for gone in [1, 4, 7] {
        let (_dir, path) = closed_log();
        with_events(&path, |table| {
            table.remove(gone).unwrap();
        });
        assert_eq!(
            chain_error(&path),
            (gone, ChainBreak::Missing),
            "deleted {gone}"
        );
    }
}

#[test]
fn swapped_events_are_named() {
    let (_dir, path) = closed_log();
    with_events(&path, |table| {
        let (two, five) = (row(table, 2), row(table, 5));
        table.insert(2, five.as_slice()).unwrap();
        table.insert(5, two.as_slice()).unwrap();
    });
    assert_eq!(
        chain_error(&path),
        (2, ChainBreak::SeqMismatch { found: 5 })
    );

    let log = Log::open(&path, identity()).unwrap();
    assert!(matches!(
        log.read(2),
        Err(LogError::Chain {
            seq: 2,
            reason: ChainBreak::SeqMismatch { found: 5 }
        })
    ));
}

#[test]
fn an_altered_head_names_the_last_event() {
    let (_dir, path) = closed_log();
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            let mut head = meta.get("head").unwrap().unwrap().value().to_vec();
            head[39] ^= 1;
            meta.insert("head", head.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    assert_eq!(chain_error(&path), (7, ChainBreak::HashMismatch));
}

#[test]
fn garbage_is_named_and_readers_report_it() {
    let (_dir, path) = closed_log();
    with_events(&path, |table| {
        table.insert(3, [0xff_u8; 4].as_slice()).unwrap();
    });
    let (seq, reason) = chain_error(&path);
    assert_eq!(seq, 3);
    assert!(matches!(reason, ChainBreak::Undecodable(_)), "{reason:?}");

    let log = Log::open(&path, identity()).unwrap();
    assert!(matches!(log.read(3), Err(LogError::Decode { seq: 3, .. })));
    let results: Vec<_> = log.iter().unwrap().collect();
    assert_eq!(results.len(), 7);
    assert!(matches!(results[2], Err(LogError::Decode { seq: 3, .. })));
}

#[test]
fn replay_refuses_a_tampered_log_and_changes_nothing() {
    let (_dir, path) = closed_log();
    flip(&path, 4, |len| len - 1);
    let log = Log::open(&path, identity()).unwrap();
    let before = log.dump_projection(&Ledger).unwrap();
    let err = log.rebuild_projection(&Ledger).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Chain {
                seq: 4,
                reason: ChainBreak::HashMismatch
            }
        ),
        "{err:?}"
    );
    assert_eq!(log.dump_projection(&Ledger).unwrap(), before);
}
