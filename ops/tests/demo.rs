//! `peerscrip-ops demo` as a user runs it: the built binary in both suites, its
//! files in a temporary `--data-dir`, its `--json` document read back. Exit 0, all ten
//! transactions and the five protections in order, conservation at the end, one redb file
//! per node; the text output as the README quotes it; and the failing exits: a previous
//! run's tampered log in `--data-dir` (exit 3, naming the check), an intact previous run
//! (exit 4), bad arguments (exit 2), each changing nothing on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use redb::{ReadableDatabase as _, ReadableTable as _};
use serde_json::Value;

/// The exit codes `peerscrip-ops demo --help` documents.
const EXIT_USAGE: i32 = 2;
const EXIT_CHECK_FAILED: i32 = 3;
/// A `--data-dir` that is not empty is a bad argument (usage), nothing written.
const EXIT_DATA_DIR_IN_USE: i32 = 2;

fn demo(args: &[&str], data_dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"));
    cmd.arg("demo").args(args);
    if let Some(dir) = data_dir {
        cmd.arg("--data-dir").arg(dir);
    }
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn run_demo(suite: &str) -> (Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(&["--suite", suite, "--json"], Some(dir.path()));
    assert!(out.status.success(), "{suite}: {}", stderr(&out));
    (serde_json::from_slice(&out.stdout).unwrap(), dir)
}

/// The ids of the steps in the order they ran: the ten transactions with the protections
/// where they fit.
const STEP_IDS: [&str; 15] = [
    "6.0",
    "6.0b",
    "6.1",
    "6.2",
    "6.3",
    "6.3-spent",
    "6.3-secret",
    "6.3-exceeds",
    "6.4",
    "6.5",
    "6.6",
    "7-replay",
    "6.7",
    "6.8-expired",
    "6.8",
];

fn check(suite: &str) {
    let (report, dir) = run_demo(suite);
    let steps = report["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, STEP_IDS);
    assert_eq!(report["suite"], suite);
    assert_eq!(report["ok"], true);
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["error"], Value::Null);
    // Each protection is refused with its exact code, and asserted that nothing changed.
    let refusals: Vec<(&str, &str)> = steps
        .iter()
        .filter(|s| s["kind"] == "refusal")
        .map(|s| {
            (
                s["id"].as_str().unwrap(),
                s["refused_with"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refusals,
        [
            ("6.3-spent", "Spent"),
            ("6.3-secret", "BadCustomerSecret"),
            ("6.3-exceeds", "ExceedsScrip"),
            ("6.8-expired", "Expired"),
        ]
    );
    for s in steps {
        let names: Vec<&str> = s["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                assert_eq!(c["held"], true, "{s}");
                c["check"].as_str().unwrap()
            })
            .collect();
        match s["kind"].as_str().unwrap() {
            "transaction" => assert!(names.is_empty(), "{s}"),
            "refusal" => {
                assert_eq!(
                    names[0],
                    format!("refused with {}", s["refused_with"].as_str().unwrap())
                );
                assert!(
                    names
                        .iter()
                        .any(|n| n.starts_with("the broker's log (") && n.ends_with("unchanged")),
                    "{s}"
                );
            }
            "repeat" => assert_eq!(
                names[0],
                "the broker answered with its stored reply, byte for byte"
            ),
            other => panic!("unknown kind {other}"),
        }
    }
    assert_eq!(report["conserved"], true);
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() > 20, "{checks:?}");
    assert!(checks.iter().all(|c| c["held"] == true), "{checks:?}");
    // It ends with an audit of every log and a reconcile of them all.
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for log in [
        "broker",
        "merchant-tea",
        "merchant-books",
        "customer-alice",
        "customer-bob",
    ] {
        let audit = format!("audit of {log}'s log: chain, signatures, ledger, invariants, replay");
        assert!(
            names.contains(&audit.as_str()),
            "{audit:?} not in {names:?}"
        );
    }
    assert_eq!(
        names.last(),
        Some(&"reconcile: the broker's, merchants' and wallets' logs agree")
    );
    // Final balances: the sum of the broker's accounts is zero; the money that entered
    // (150.00) is where the ten transactions left it, the refusals moved nothing.
    let balances = &report["balances"];
    assert_eq!(
        balances["sum_of_accounts"],
        serde_json::json!({"value": "0.00", "minor": 0})
    );
    let bank: Vec<(&str, &str)> = balances["bank"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["holder"].as_str().unwrap(),
                b["balance"]["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        bank,
        [
            ("alice", "91.00"),
            ("bob", "30.00"),
            ("tea shop", "9.00"),
            ("book shop", "10.00")
        ]
    );
    assert_eq!(
        balances["float_broker"],
        serde_json::json!({"value": "10.00", "minor": 1000})
    );
    for v in balances["float_vendor"].as_array().unwrap() {
        assert_eq!(v["memo"], v["live_vendor_scrip"], "{v}");
    }
    // PANs redacted, the test-vector secret never printed.
    let text = report.to_string();
    assert!(!text.contains("GR1601101250000000012300695"));
    assert!(!text.contains("correct horse"));
    assert_eq!(redb_files(dir.path()), NODE_FILES);
    assert_eq!(report["files"].as_array().unwrap().len(), 5);
}

/// Where the demo puts each node's log.
const NODE_FILES: [&str; 5] = [
    "broker/broker.redb",
    "customer-alice/wallet.redb",
    "customer-bob/wallet.redb",
    "merchant-books/merchant.redb",
    "merchant-tea/merchant.redb",
];

/// Every `*.redb` file one level under `dir`, relative, sorted.
fn redb_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let sub = entry.unwrap().path();
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "redb") {
                files.push(f.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn demo_paper_suite() {
    check("paper");
}

#[test]
fn demo_modern_suite() {
    check("modern");
}

/// Every 32-hex-digit run (a UID or scrip id, fresh each run) as `<id>`.
fn without_ids(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        if run == 32 {
            out.push_str("<id>");
            i += run;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The text output, step by step in order, and every line the README quotes of it (its
/// abridged expected output, `...` marking what it leaves out) appears in it as quoted,
/// in the same order.
#[test]
fn the_text_output_is_what_the_readme_quotes() {
    let out = demo(&[], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<String> = text.lines().map(without_ids).collect();
    let headings: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix('[')?.split_once(']').map(|(id, _)| id))
        .collect();
    assert_eq!(headings, STEP_IDS);

    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let start = readme
        .find("```text\npeerscrip demo (")
        .expect("the README quotes the demo's output");
    let quoted = readme[start + "```text\n".len()..]
        .split("\n```")
        .next()
        .unwrap();
    let mut from = 0;
    for q in quoted.lines().filter(|l| l.trim() != "...") {
        let q = without_ids(q);
        let at = lines[from..]
            .iter()
            .position(|l| *l == q)
            .unwrap_or_else(|| panic!("README line not in the output (in order): {q:?}\n{text}"));
        from += at + 1;
    }
}

/// The `events` table of architecture.md (seq → postcard event), as someone editing a
/// node's file would address it.
const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");

/// Flips one byte of event `seq` in the log at `path`, through redb.
fn tamper(path: &Path, seq: u64) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(EVENTS).unwrap();
        let mut bytes = table.get(seq).unwrap().unwrap().value().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        table.insert(seq, bytes.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

/// A log's stored events: (seq, bytes).
type Events = Vec<(u64, Vec<u8>)>;

/// Every node file under `dir` with its stored events, to show that nothing was written
/// (redb rewrites its own header bytes when a file is opened, so the bytes of the file
/// are not compared; the events, the log itself, are).
fn contents(dir: &Path) -> Vec<(String, Events)> {
    redb_files(dir)
        .into_iter()
        .map(|f| {
            let db = redb::Database::open(dir.join(&f)).unwrap();
            let txn = db.begin_read().unwrap();
            let table = txn.open_table(EVENTS).unwrap();
            let events = table
                .iter()
                .unwrap()
                .map(|row| {
                    let (k, v) = row.unwrap();
                    (k.value(), v.value().to_vec())
                })
                .collect();
            (f, events)
        })
        .collect()
}

/// A previous run's log edited in its `--data-dir`: the demo fails for real, naming the
/// file and the event in the check that failed, with exit 3, and writes nothing. With
/// `--json` the one document says the same.
#[test]
fn a_tampered_log_from_a_previous_run_fails_the_demo_naming_the_check() {
    let (_, dir) = run_demo("paper");
    tamper(&dir.path().join("merchant-tea/merchant.redb"), 2);
    let before = contents(dir.path());

    let out = demo(&["--suite", "paper"], Some(dir.path()));
    assert_eq!(
        out.status.code(),
        Some(EXIT_CHECK_FAILED),
        "{}",
        stderr(&out)
    );
    let expected = "check failed: previous run's merchant-tea/merchant.redb verifies \
                    (hash chain broken at event 2: ";
    assert!(
        stderr(&out).starts_with(&format!("peerscrip-ops: error: {expected}")),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("[6.0]"), "no step ran");
    assert!(contents(dir.path()) == before, "nothing was written");

    let out = demo(&["--suite", "paper", "--json"], Some(dir.path()));
    assert_eq!(out.status.code(), Some(EXIT_CHECK_FAILED));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["exit_code"], EXIT_CHECK_FAILED);
    assert_eq!(doc["error"], "refused");
    assert!(
        doc["message"].as_str().unwrap().starts_with(expected),
        "{doc}"
    );
    assert_eq!(doc["steps"], Value::Array(Vec::new()));
    assert!(contents(dir.path()) == before, "nothing was written");
}

/// An intact previous run in `--data-dir`: verified, then refused with exit 2, a bad
/// argument (the demo never reuses or overwrites files); other files likewise.
#[test]
fn a_data_dir_in_use_is_refused_with_its_own_exit_code() {
    let (_, dir) = run_demo("paper");
    let before = contents(dir.path());
    let out = demo(&["--suite", "paper"], Some(dir.path()));
    assert_eq!(
        out.status.code(),
        Some(EXIT_DATA_DIR_IN_USE),
        "{}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("is not empty: it holds a previous run whose logs' hash chains verify: broker/broker.redb ("),
        "{err}"
    );
    assert!(err.contains("pass a new or empty directory"), "{err}");
    assert!(contents(dir.path()) == before, "nothing was written");

    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("notes.txt"), b"keep me").unwrap();
    let out = demo(&[], Some(other.path()));
    assert_eq!(out.status.code(), Some(EXIT_DATA_DIR_IN_USE));
    assert!(
        stderr(&out).contains("it holds notes.txt;"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 1);
}

/// The demo's `--data-dir` holds each node's public key (`keys/<node>.pem`), so that a
/// merchant's log, which holds no key, can be audited as the README shows: the broker's
/// key pinned from `keys/`, the customers' from the broker's log.
#[test]
fn the_readme_merchant_audit_runs_on_the_demos_data_dir() {
    let (doc, dir) = run_demo("modern");
    let keys = dir.path().join("keys");
    let mut pems: Vec<String> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pems.sort();
    assert_eq!(
        pems,
        [
            "broker.pem",
            "customer-alice.pem",
            "customer-bob.pem",
            "merchant-books.pem",
            "merchant-tea.pem"
        ]
    );
    let broker_pem = std::fs::read_to_string(keys.join("broker.pem")).unwrap();
    assert!(
        broker_pem.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{broker_pem}"
    );
    assert!(!broker_pem.contains("PRIVATE"));
    let audit = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .arg("audit")
        .arg("--keys")
        .arg(&keys)
        .arg("--broker-log")
        .arg(dir.path().join("broker"))
        .arg(dir.path().join("merchant-tea"))
        .output()
        .unwrap();
    assert_eq!(audit.status.code(), Some(0), "{}", stderr(&audit));
    assert!(
        stdout(&audit).contains("OK: chain, postings,"),
        "{}",
        stdout(&audit)
    );
    assert_eq!(doc["ok"], true);
}

/// Bad arguments are clap's usage error, exit 2, distinct from a failed check; `--help`
/// documents every code.
#[test]
fn usage_errors_have_their_own_exit_code_and_help_documents_the_codes() {
    let out = demo(&["--suite", "quantum"], None);
    assert_eq!(out.status.code(), Some(EXIT_USAGE));
    let out = demo(&["--help"], None);
    assert!(out.status.success());
    let help = stdout(&out);
    for code in [
        "  0  done (every check held)",
        "  1  failed: could not run",
        "  2  usage or configuration: bad arguments",
        "`demo --data-dir` not empty",
        "  3  refused: ",
        "a demo check",
        "  4  unreachable",
        "  5  timed out",
    ] {
        assert!(help.contains(code), "{code:?} not in:\n{help}");
    }
}
