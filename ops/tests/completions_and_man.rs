//! `peerscrip-ops completions` and `peerscrip-ops man` through the built binary: the
//! scripts come from the command line's own definitions, an unknown shell is a usage
//! error, and `man` writes a page for every binary and every subcommand.

use std::path::Path;
use std::process::{Command, Output};

fn ops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(args)
        .output()
        .expect("run peerscrip-ops")
}

fn ops_path(args: &[&str], path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(args)
        .arg(path)
        .output()
        .expect("run peerscrip-ops")
}

#[test]
fn completions_are_printed_for_every_shell() {
    let bash = ops(&["completions", "bash"]);
    assert_eq!(bash.status.code(), Some(0), "{bash:?}");
    let script = String::from_utf8(bash.stdout).expect("utf-8 script");
    assert!(script.contains("peerscrip-ops"), "{script}");
    // Subcommands, nested ones, and flags are all completed.
    for word in ["reconcile", "bench", "deposit", "--max-age-secs"] {
        assert!(script.contains(word), "no {word} in the bash script");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = ops(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("peerscrip-ops") && script.contains("reconcile"),
            "{shell}: {script}"
        );
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = ops(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tcsh"), "{stderr}");
    assert!(stderr.contains("bash"), "the shells are listed: {stderr}");
}

/// A page starts with its `.TH` title, naming its command and, in the footer, the
/// binary's version.
fn assert_titled(page: &Path, command: &str) {
    let text =
        std::fs::read_to_string(page).unwrap_or_else(|e| panic!("reading {}: {e}", page.display()));
    // roff escapes a hyphen as `\-`.
    let text = text.replace("\\-", "-");
    // The roff writer defines its apostrophe string (`.ie`, `.el`) before anything else.
    let title = text
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or_default();
    assert!(
        title.starts_with(&format!(".TH {command} 1 ")),
        "{}: {title}",
        page.display()
    );
    assert!(
        title.contains(&format!(" {}\"", env!("CARGO_PKG_VERSION"))),
        "{}: {title}",
        page.display()
    );
    // Its NAME section names it too, with what it does.
    assert!(
        text.contains(&format!("{command} - ")),
        "{}: {text}",
        page.display()
    );
}

#[test]
fn man_writes_a_page_per_binary_and_per_subcommand() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out_dir = tmp.path().join("share").join("man1");
    let out = ops_path(&["man", "--out"], &out_dir);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);

    let mut pages: Vec<String> = std::fs::read_dir(&out_dir)
        .expect("the directory is created")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8 name")
        })
        .collect();
    pages.sort();
    for page in &pages {
        let command = page
            .strip_suffix(".1")
            .unwrap_or_else(|| panic!("{page} is not a section 1 page"));
        assert_titled(&out_dir.join(page), command);
        assert!(
            stdout.contains(page.as_str()),
            "{page} not printed: {stdout}"
        );
    }
    let expected = [
        // The four binaries.
        "peerscrip",
        "peerscrip-ops",
        "peerscrip-broker",
        "peerscrip-merchant",
        // Their subcommands, nested ones too.
        "peerscrip-ops-bench",
        "peerscrip-ops-man",
        "peerscrip-ops-completions",
        "peerscrip-ops-bank-deposit",
        "peerscrip-ops-dispute-verify",
        "peerscrip-init",
        "peerscrip-completions",
        "peerscrip-vendor-scrip-buy",
    ];
    for command in expected {
        assert!(
            pages.contains(&format!("{command}.1")),
            "no page of {command}: {pages:?}"
        );
    }
    // clap's `help` subcommand has no page of its own: `--help` is on every page.
    assert!(
        !pages.iter().any(|p| p.contains("-help")),
        "a help page: {pages:?}"
    );
    // The daemons' flags are on their pages.
    let broker = std::fs::read_to_string(out_dir.join("peerscrip-broker.1"))
        .expect("broker page")
        .replace("\\-", "-");
    assert!(broker.contains("--check-config"), "{broker}");

    // Run again, the pages are replaced, not refused.
    let again = ops_path(&["man", "--out"], &out_dir);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
}

#[test]
fn man_fails_clearly_when_the_directory_cannot_be_made() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a directory").expect("write");
    let out = ops_path(&["man", "--out"], &file.join("man1"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("creating the directory") && stderr.contains("a-file"),
        "{stderr}"
    );
}
