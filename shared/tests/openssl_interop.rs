//! Interoperability with OpenSSL 3 (protocol.md sections 1 to 3): the key files we write
//! are read by `openssl pkey`, the UID input equals OpenSSL's SPKI DER, and our
//! signatures, key wraps and paper-suite ciphertexts are the standard ones, in both
//! directions.
//!
//! `openssl` must be on PATH (it is on developer machines and on CI): a missing binary
//! fails these tests, it never skips them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shared::fixtures;
use shared::{KeyPair, SessionKey, Suite, Uid};
use tempfile::TempDir;

/// Runs `openssl args…`, failing the test (never skipping) if it cannot be started.
fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl must be installed and on PATH ({e}): {args:?}"))
}

/// Runs `openssl args…` and returns its stdout; fails the test on a non-zero exit.
fn openssl_ok(args: &[&str]) -> Vec<u8> {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

struct Dir(TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().expect("a temporary directory"))
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, bytes).expect("writing a temporary file");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Fixture key 0 of `suite`, written to `dir` as `key.pem` (its PKCS#8 fixture file) and
/// `pub.pem`: the key and the two paths.
fn key_files(dir: &Dir, suite: Suite) -> (&'static KeyPair, PathBuf, PathBuf) {
    let k = fixtures::keypair(suite, 0);
    let key = dir.write("key.pem", fixtures::keypair_pem(suite, 0));
    let public = dir.write("pub.pem", k.public().to_pem().expect("a PEM public key"));
    (k, key, public)
}

/// Runs `openssl <command…> <options…> <rest…>` (`options` select the suite's scheme) and
/// returns its stdout; fails the test on a non-zero exit.
fn openssl_with(command: &[&str], options: Vec<&str>, rest: &[&str]) -> Vec<u8> {
    let args: Vec<&str> = [command, &options, rest].concat();
    openssl_ok(&args)
}

#[test]
fn openssl_reads_our_private_and_public_keys() {
    for suite in Suite::ALL {
        let dir = Dir::new();
        let k = fixtures::keypair(suite, 0);
        let key = dir.write("key.pem", k.to_pkcs8_pem(None).unwrap().as_bytes());
        openssl_ok(&["pkey", "-in", s(&key), "-noout"]);
        let der = openssl_ok(&["pkey", "-in", s(&key), "-pubout", "-outform", "DER"]);
        assert_eq!(der, k.public().spki_der(), "{suite}");

        let public = dir.write("pub.pem", k.public().to_pem().unwrap());
        let der = openssl_ok(&["pkey", "-pubin", "-in", s(&public), "-outform", "DER"]);
        assert_eq!(der, k.public().spki_der(), "{suite}");
        // UID = first 16 bytes of SHA-256 over OpenSSL's own DER (protocol.md section 1).
        assert_eq!(Uid::from_spki_der(&der), k.uid());
    }
}

#[test]
fn openssl_reads_our_encrypted_private_key_with_the_passphrase_only() {
    let dir = Dir::new();
    let k = fixtures::keypair(Suite::Modern, 1);
    let key = dir.write(
        "key.pem",
        k.to_pkcs8_pem(Some(b"correct passphrase"))
            .unwrap()
            .as_bytes(),
    );
    let pass = dir.write("pass", "correct passphrase\n");
    let wrong = dir.write("wrong", "wrong passphrase\n");
    let passin = format!("file:{}", s(&pass));
    openssl_ok(&["pkey", "-in", s(&key), "-passin", &passin, "-noout"]);
    let der = openssl_ok(&[
        "pkey",
        "-in",
        s(&key),
        "-passin",
        &passin,
        "-pubout",
        "-outform",
        "DER",
    ]);
    assert_eq!(der, k.public().spki_der());
    let wrong_passin = format!("file:{}", s(&wrong));
    let out = openssl(&["pkey", "-in", s(&key), "-passin", &wrong_passin, "-noout"]);
    assert!(!out.status.success(), "openssl accepted a wrong passphrase");
}

#[test]
fn we_read_openssl_encrypted_keys() {
    let dir = Dir::new();
    let suite = Suite::Paper;
    let plain = dir.write("plain.pem", fixtures::keypair_pem(suite, 2));
    let pass = dir.write("pass", "s3cret\n");
    let passout = format!("file:{}", s(&pass));
    // OpenSSL 3's default PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), then scrypt.
    for (name, extra) in [("pbkdf2.pem", None), ("scrypt.pem", Some("-scrypt"))] {
        let out = dir.path(name);
        let mut args = vec![
            "pkcs8",
            "-topk8",
            "-in",
            s(&plain),
            "-out",
            s(&out),
            "-passout",
            &passout,
        ];
        args.extend(extra);
        openssl_ok(&args);
        let pem = std::fs::read_to_string(&out).unwrap();
        let k = KeyPair::from_pkcs8_pem(suite, &pem, Some(b"s3cret")).unwrap();
        assert_eq!(k.uid(), fixtures::keypair(suite, 2).uid(), "{name}");
    }
}

/// The `openssl dgst` options that select the suite's signature scheme.
fn dgst_options(suite: Suite) -> Vec<&'static str> {
    match suite {
        Suite::Paper => vec!["-sha1"],
        Suite::Modern => vec![
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
            "-sigopt",
            "rsa_mgf1_md:sha256",
        ],
    }
}

#[test]
fn signatures_interoperate_both_ways() {
    for suite in Suite::ALL {
        let dir = Dir::new();
        let (k, key, public) = key_files(&dir, suite);
        let msg = b"peerscrip/v1/sig\0 interop";
        let msg_file = dir.write("msg", msg);

        // Ours, verified by OpenSSL.
        let sig = dir.write("ours.sig", k.sign(msg).unwrap());
        let verify = ["-verify", s(&public), "-signature", s(&sig), s(&msg_file)];
        openssl_with(&["dgst"], dgst_options(suite), &verify);

        // OpenSSL's, verified by us.
        let theirs = dir.path("theirs.sig");
        let sign = ["-sign", s(&key), "-out", s(&theirs), s(&msg_file)];
        openssl_with(&["dgst"], dgst_options(suite), &sign);
        let sig = std::fs::read(&theirs).unwrap();
        assert_eq!(k.public().verify(msg, &sig), Ok(()), "{suite}");
        assert!(k.public().verify(b"other", &sig).is_err());
    }
}

/// The `openssl pkeyutl` options that select the suite's key wrap.
fn pkeyutl_options(suite: Suite) -> Vec<&'static str> {
    match suite {
        Suite::Paper => vec!["-pkeyopt", "rsa_padding_mode:pkcs1"],
        Suite::Modern => vec![
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
        ],
    }
}

#[test]
fn key_wrap_interoperates_both_ways() {
    for suite in Suite::ALL {
        let dir = Dir::new();
        let (k, key, public) = key_files(&dir, suite);
        let raw: Vec<u8> = (0..suite.session_key_len() as u8).collect();
        let session = SessionKey::from_bytes(suite, &raw).unwrap();

        // Wrapped by OpenSSL, unwrapped by us.
        let raw_file = dir.write("raw", &raw);
        let wrapped = dir.path("wrapped");
        let encrypt = ["pkeyutl", "-encrypt", "-pubin", "-inkey", s(&public)];
        let files = ["-in", s(&raw_file), "-out", s(&wrapped)];
        openssl_with(&encrypt, pkeyutl_options(suite), &files);
        let got = k.unwrap_key(&std::fs::read(&wrapped).unwrap()).unwrap();
        assert_eq!(got, session, "{suite}");

        // Wrapped by us, unwrapped by OpenSSL.
        let ours = dir.write("ours", k.public().wrap_key(&session).unwrap());
        let decrypt = ["pkeyutl", "-decrypt", "-inkey", s(&key)];
        let unwrapped = openssl_with(&decrypt, pkeyutl_options(suite), &["-in", s(&ours)]);
        assert_eq!(unwrapped, raw, "{suite}");
    }
}

/// `openssl enc <direction>` (`-e` or `-d`) with AES-192-CBC under the hex key `key_hex`
/// and `iv`, of the file `input`: its output.
fn openssl_cbc(direction: &str, key_hex: &str, iv: &[u8], input: &Path) -> Vec<u8> {
    let iv = hex::encode(iv);
    let args = ["enc", direction, "-aes-192-cbc", "-K", key_hex, "-iv", &iv];
    openssl_ok(&[&args[..], &["-in", s(input)]].concat())
}

/// Paper suite: `IV ‖ AES-192-CBC(PKCS#7)` is exactly what `openssl enc` makes and reads.
/// (OpenSSL's `enc` has no AEAD mode; the modern suite's AES-256-GCM has a NIST known
/// answer in `shared/src/suite/envelope.rs` instead.)
#[test]
fn paper_cbc_interoperates_both_ways() {
    let dir = Dir::new();
    let raw: Vec<u8> = (100..124).collect();
    let key_hex = hex::encode(&raw);
    let session = SessionKey::from_bytes(Suite::Paper, &raw).unwrap();
    let plaintext = b"a sealed part of a paper-suite frame, 47 bytes.";

    // Sealed by us, opened by OpenSSL.
    let sealed = Suite::Paper.seal(&session, b"", plaintext).unwrap();
    let (iv, ct) = sealed.split_at(16);
    let ct_file = dir.write("ct", ct);
    let opened = openssl_cbc("-d", &key_hex, iv, &ct_file);
    assert_eq!(opened, plaintext);

    // Sealed by OpenSSL, opened by us.
    let iv = [7u8; 16];
    let pt_file = dir.write("pt", plaintext);
    let ct = openssl_cbc("-e", &key_hex, &iv, &pt_file);
    let mut sealed = iv.to_vec();
    sealed.extend_from_slice(&ct);
    let opened = Suite::Paper.open(&session, b"ignored", &sealed).unwrap();
    assert_eq!(opened.as_slice(), plaintext);
}
