//! `peerscrip-ops keygen` end to end: the built binary writes PEM files that OpenSSL reads,
//! and the UID it prints is SHA-256 over the SPKI DER that OpenSSL derives.

use std::path::Path;
use std::process::{Command, Output};

use shared::Uid;

fn ops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(args)
        .output()
        .expect("run peerscrip-ops")
}

/// Runs `openssl` with `args`; the test fails (never skips) when OpenSSL is missing.
fn openssl(args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is required by this test: install it with `apt-get install openssl`");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn printed_uid(stdout: &[u8]) -> Uid {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("uid "))
        .unwrap_or_else(|| panic!("no uid line in {text:?}"));
    line.parse().expect("uid is 32 hex digits")
}

fn spki_uid_by_openssl(public_pem: &Path) -> Uid {
    let der = openssl(&[
        "pkey",
        "-pubin",
        "-in",
        public_pem.to_str().expect("utf-8 path"),
        "-outform",
        "DER",
    ])
    .stdout;
    Uid::from_spki_der(&der)
}

#[test]
fn keygen_writes_pem_that_openssl_reads_for_each_suite() {
    for (suite, bits) in [("paper", "1024"), ("modern", "2048")] {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("node");
        let out = ops(&[
            "keygen",
            "--suite",
            suite,
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let uid = printed_uid(&out.stdout);

        let private = out_dir.join("key.pem");
        let public = out_dir.join("key.pub.pem");
        let text = openssl(&["pkey", "-in", private.to_str().unwrap(), "-noout", "-text"]).stdout;
        assert!(
            String::from_utf8_lossy(&text).contains(&format!("Private-Key: ({bits} bit")),
            "{suite}: wrong key size"
        );
        assert_eq!(spki_uid_by_openssl(&public), uid, "{suite}");

        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{suite}: private key must be private");
    }
}

#[test]
fn keygen_with_passphrase_encrypts_the_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "a long passphrase nobody guesses\n").unwrap();
    let out_dir = dir.path().join("wallet");
    let out = ops(&[
        "keygen",
        "--suite",
        "modern",
        "--out",
        out_dir.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["encrypted"], true);
    assert_eq!(json["suite"], "modern");

    let private = out_dir.join("key.pem");
    let pem = std::fs::read_to_string(&private).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert!(!pem.contains("passphrase"));
    // OpenSSL opens it with the passphrase (file: reads the first line) ...
    openssl(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-passin",
        &format!("file:{}", pass.display()),
        "-noout",
    ]);
    // ... and not without it.
    let refused = Command::new("openssl")
        .args([
            "pkey",
            "-in",
            private.to_str().unwrap(),
            "-passin",
            "pass:wrong",
            "-noout",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());

    let uid: Uid = json["uid"].as_str().unwrap().parse().unwrap();
    assert_eq!(spki_uid_by_openssl(&out_dir.join("key.pub.pem")), uid);
}

#[test]
fn keygen_refuses_to_overwrite_and_refuses_bad_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    assert!(
        ops(&["keygen", "--suite", "paper", "--out", out_dir])
            .status
            .success()
    );
    let before = std::fs::read(dir.path().join("key.pem")).unwrap();

    let again = ops(&["keygen", "--suite", "paper", "--out", out_dir]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(dir.path().join("key.pem")).unwrap(), before);

    let other = tempfile::tempdir().unwrap();
    let bad = ops(&[
        "keygen",
        "--suite",
        "paper",
        "--bits",
        "2048",
        "--out",
        other.path().to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(!other.path().join("key.pem").exists());
}
