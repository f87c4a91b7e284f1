//! The audit's progress bar on a log long enough to show one: it goes to stderr
//! and only to a terminal, so a script that reads the report (text or `--json`) gets it
//! clean and nothing on stderr.
#![allow(clippy::unwrap_used)]

mod common;

use ops::audit::progress::FROM_EVENTS;

#[test]
fn a_long_log_shows_no_bar_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.redb");
    common::deposits_log(&path, FROM_EVENTS);
    for json in [false, true] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"));
        cmd.arg("audit").arg(&path);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        if json {
            let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(report["events"], FROM_EVENTS);
        } else {
            assert!(
                stdout.contains(&format!("{FROM_EVENTS} events")),
                "{stdout}"
            );
        }
    }
}
