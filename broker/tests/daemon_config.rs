//! `peerscrip-broker --check-config`: the built binary resolves its settings from the
//! example file, the environment and flags, the later one winning (file < env < flag),
//! refuses a bad value naming its field, and shows no secret.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ops/deploy")
}

/// The binary with only `PATH` in its environment, the example file, and `envs`.
fn check_config(envs: &[(&str, &str)], flags: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_peerscrip-broker"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("--config")
        .arg(deploy().join("broker.toml"))
        .arg("--check-config")
        .args(flags);
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn value<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{output}"))
}

#[test]
fn the_environment_overrides_the_file_and_a_flag_overrides_both() {
    let file = check_config(&[], &[]);
    assert!(file.status.success(), "{file:?}");
    let file = String::from_utf8(file.stdout).unwrap();
    assert_eq!(value(&file, "suite"), "modern");
    assert_eq!(value(&file, "grace_secs"), "31536000");
    assert_eq!(value(&file, "nats_url"), "nats://127.0.0.1:4222");
    assert_eq!(value(&file, "export_stream"), "none");

    let envs = [
        ("PEERSCRIP_SUITE", "paper"),
        ("PEERSCRIP_GRACE_SECS", "60"),
        ("PEERSCRIP_NATS_URL", "nats://env:4222"),
    ];
    let env = check_config(&envs, &[]);
    let env = String::from_utf8(env.stdout).unwrap();
    assert_eq!(value(&env, "suite"), "paper");
    assert_eq!(value(&env, "grace_secs"), "60");
    assert_eq!(value(&env, "nats_url"), "nats://env:4222");

    let export = check_config(&[("PEERSCRIP_EXPORT_STREAM", "AUDIT")], &[]);
    let export = String::from_utf8(export.stdout).unwrap();
    assert_eq!(value(&export, "export_stream"), "AUDIT");
    assert_eq!(value(&export, "export_subject_prefix"), "peerscrip.events");

    let flag = check_config(&envs, &["--grace-secs", "90", "--suite", "modern"]);
    let flag = String::from_utf8(flag.stdout).unwrap();
    assert_eq!(value(&flag, "suite"), "modern");
    assert_eq!(value(&flag, "grace_secs"), "90");
    assert_eq!(value(&flag, "nats_url"), "nats://env:4222");
}

#[test]
fn a_bad_value_fails_naming_its_field_and_secrets_are_not_shown() {
    let bad = check_config(&[("PEERSCRIP_ESCROW_WINDOW_SECS", "0")], &[]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(bad.stderr).unwrap(),
        "peerscrip-broker: invalid configuration: broker.escrow_window_secs \
         (--escrow-window-secs): must be at least 1 second\n"
    );
    let secret = check_config(
        &[
            ("PEERSCRIP_KEY_PASSPHRASE", "hunter2-passphrase"),
            ("PEERSCRIP_NATS_USER", "broker"),
            ("PEERSCRIP_NATS_PASSWORD", "hunter2-password"),
        ],
        &[],
    );
    assert!(secret.status.success(), "{secret:?}");
    let shown = String::from_utf8(secret.stdout).unwrap();
    assert_eq!(value(&shown, "key_passphrase"), "set");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("broker"), "{shown}");
}
