//! The modern suite's two RSA backends interoperate (docs/adr/0014): a signature made by
//! one verifies with the other, a session key wrapped by one unwraps with the other, the
//! same key files load in both as the same key, and OpenSSL's known answers pass on each.
//! They are the same algorithms (protocol.md section 3: RSASSA-PSS SHA-256 with a 32-byte
//! salt, RSAES-OAEP SHA-256 with MGF1-SHA-256 and the empty label), so a broker on
//! aws-lc-rs and a wallet built without it talk to each other.
//!
//! With `shared`'s `aws-lc` feature off only the `rsa` backend serves the modern suite and
//! the pairs below shrink to (rsa, rsa); the known answers then still check it. Run both:
//! `cargo test -p shared` and `cargo test -p shared --no-default-features --features io`.

use shared::fixtures;
use shared::suite::OpCount;
use shared::{CryptoError, KeyPair, RsaBackend, SessionKey, Suite};

const MODERN_3072: &str = include_str!("../testdata/keys/modern3072-0.pem");
const KAT: &str = include_str!("../testdata/rsa-openssl-kat.txt");
const KAT_MESSAGE: &[u8] = b"peerscrip rsa backends known answer";

/// The backends this build runs the modern suite on.
fn backends() -> Vec<RsaBackend> {
    RsaBackend::ALL
        .into_iter()
        .filter(|b| b.serves(Suite::Modern))
        .collect()
}

/// Every (maker, reader) pair of backends, both ways and each with itself.
fn pairs() -> Vec<(RsaBackend, RsaBackend)> {
    let all = backends();
    all.iter()
        .flat_map(|&a| all.iter().map(move |&b| (a, b)))
        .collect()
}

/// Every modern test key: the six 2048-bit fixtures and the 3072-bit one.
fn modern_keys() -> Vec<KeyPair> {
    let mut keys: Vec<KeyPair> = (0..fixtures::COUNT)
        .map(|i| fixtures::keypair(Suite::Modern, i).clone())
        .collect();
    keys.push(KeyPair::from_pkcs8_pem(Suite::Modern, MODERN_3072, None).expect("3072-bit key"));
    keys
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

/// Signs with `a` and verifies with `b`, for messages of several lengths; a flipped bit of
/// the signature or another message is `BadSignature` on `b`.
fn assert_signatures_cross(k: &KeyPair, a: RsaBackend, b: RsaBackend) {
    for msg in [&b""[..], b"x", &[0xab; 1000]] {
        let sig = k.sign_with(a, msg).expect("sign");
        assert_eq!(sig.len(), k.public().bits() / 8, "{a} -> {b}");
        assert_eq!(k.public().verify_with(b, msg, &sig), Ok(()), "{a} -> {b}");
        for bit in [0, 8 * sig.len() / 2, 8 * sig.len() - 1] {
            assert_eq!(
                k.public().verify_with(b, msg, &flip(&sig, bit)),
                Err(CryptoError::BadSignature),
                "{a} -> {b}, bit {bit}"
            );
        }
        assert_eq!(
            k.public().verify_with(b, b"another message", &sig),
            Err(CryptoError::BadSignature),
            "{a} -> {b}"
        );
    }
}

/// Wraps with `a` and unwraps with `b`; a flipped bit of the wrapped key is `Unwrap`.
fn assert_wraps_cross(k: &KeyPair, a: RsaBackend, b: RsaBackend) {
    let key = SessionKey::generate(Suite::Modern);
    let wrapped = k.public().wrap_key_with(a, &key).expect("wrap");
    assert_eq!(wrapped.len(), k.public().bits() / 8, "{a} -> {b}");
    assert_eq!(k.unwrap_key_with(b, &wrapped), Ok(key), "{a} -> {b}");
    for bit in [0, 8 * wrapped.len() / 2, 8 * wrapped.len() - 1] {
        assert_eq!(
            k.unwrap_key_with(b, &flip(&wrapped, bit)),
            Err(CryptoError::Unwrap),
            "{a} -> {b}, bit {bit}"
        );
    }
}

#[test]
fn the_default_build_has_both_backends_and_runs_modern_on_aws_lc() {
    if cfg!(feature = "aws-lc") {
        assert_eq!(backends(), [RsaBackend::RustCrypto, RsaBackend::AwsLc]);
        assert_eq!(Suite::Modern.rsa_backend(), RsaBackend::AwsLc);
    } else {
        assert_eq!(backends(), [RsaBackend::RustCrypto]);
        assert_eq!(Suite::Modern.rsa_backend(), RsaBackend::RustCrypto);
    }
    assert_eq!(Suite::Paper.rsa_backend(), RsaBackend::RustCrypto);
}

#[test]
fn signatures_verify_across_backends_both_ways() {
    for k in modern_keys() {
        for (a, b) in pairs() {
            assert_signatures_cross(&k, a, b);
        }
    }
}

#[test]
fn another_keys_signature_is_refused_by_every_backend() {
    let signer = fixtures::keypair(Suite::Modern, 0);
    let other = fixtures::keypair(Suite::Modern, 1).public();
    for (a, b) in pairs() {
        let sig = signer.sign_with(a, b"msg").expect("sign");
        assert_eq!(
            other.verify_with(b, b"msg", &sig),
            Err(CryptoError::BadSignature),
            "{a} -> {b}"
        );
    }
}

#[test]
fn wrapped_keys_unwrap_across_backends_both_ways() {
    for k in modern_keys() {
        for (a, b) in pairs() {
            assert_wraps_cross(&k, a, b);
        }
    }
}

#[test]
fn a_key_wrapped_for_another_is_unwrap_on_every_backend() {
    let key = SessionKey::generate(Suite::Modern);
    let recipient = fixtures::keypair(Suite::Modern, 0).public();
    let other = fixtures::keypair(Suite::Modern, 1);
    for (a, b) in pairs() {
        let wrapped = recipient.wrap_key_with(a, &key).expect("wrap");
        assert_eq!(
            other.unwrap_key_with(b, &wrapped),
            Err(CryptoError::Unwrap),
            "{a} -> {b}"
        );
    }
}

/// A wrapped session key of the wrong length for the suite (24 bytes, a paper key) is
/// `Unwrap` on every backend, though OAEP itself accepts it.
#[test]
fn an_unwrapped_key_of_the_wrong_length_is_unwrap_on_every_backend() {
    let k = fixtures::keypair(Suite::Modern, 0);
    let short = SessionKey::generate(Suite::Paper);
    for (a, b) in pairs() {
        let wrapped = k.public().wrap_key_with(a, &short).expect("wrap");
        assert_eq!(
            k.unwrap_key_with(b, &wrapped),
            Err(CryptoError::Unwrap),
            "{a} -> {b}"
        );
    }
}

/// The key files (OpenSSL's unencrypted PKCS#8, our encrypted PKCS#8, and a key generated
/// by `rsa` and kept in memory) load as one key in both backends: what one backend makes
/// with the loaded key the other reads.
#[test]
fn the_same_key_files_load_as_one_key_in_both_backends() {
    let mut pems: Vec<(String, Option<&[u8]>)> = (0..fixtures::COUNT)
        .map(|i| (fixtures::keypair_pem(Suite::Modern, i).to_owned(), None))
        .collect();
    pems.push((MODERN_3072.to_owned(), None));
    let encrypted = fixtures::keypair(Suite::Modern, 2)
        .to_pkcs8_pem(Some(b"open sesame"))
        .expect("encrypted PEM");
    assert!(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    pems.push((encrypted.to_string(), Some(b"open sesame")));

    for (pem, passphrase) in &pems {
        let k = KeyPair::from_pkcs8_pem(Suite::Modern, pem, *passphrase).expect("loads");
        for (a, b) in pairs() {
            assert_signatures_cross(&k, a, b);
            assert_wraps_cross(&k, a, b);
        }
    }
    // The encrypted file is fixture key 2, whichever backend holds it.
    let k =
        KeyPair::from_pkcs8_pem(Suite::Modern, &encrypted, Some(b"open sesame")).expect("loads");
    assert_eq!(k.uid(), fixtures::keypair(Suite::Modern, 2).uid());

    // A generated key reaches aws-lc through its PKCS#8 encoding, and survives a PEM
    // round trip.
    let generated = KeyPair::generate(Suite::Modern).expect("generates");
    let reloaded = KeyPair::from_pkcs8_pem(
        Suite::Modern,
        &generated.to_pkcs8_pem(None).expect("PEM"),
        None,
    )
    .expect("loads");
    assert_eq!(reloaded.public(), generated.public());
    for (a, b) in pairs() {
        assert_signatures_cross(&generated, a, b);
        assert_wraps_cross(&generated, a, b);
        let sig = generated.sign_with(a, b"x").expect("sign");
        assert_eq!(reloaded.public().verify_with(b, b"x", &sig), Ok(()));
        let key = SessionKey::generate(Suite::Modern);
        let wrapped = generated.public().wrap_key_with(a, &key).expect("wrap");
        assert_eq!(reloaded.unwrap_key_with(b, &wrapped), Ok(key));
    }
}

/// OpenSSL's PSS signatures and OAEP wraps (shared/testdata/rsa-openssl-kat.txt) verify
/// and unwrap to the known values on every backend.
#[test]
fn openssl_known_answers_pass_on_every_backend() {
    let session_key: Vec<u8> = (0u8..32).collect();
    let expected = SessionKey::from_bytes(Suite::Modern, &session_key).expect("32 bytes");
    let mut lines = 0;
    for line in KAT.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let fields: Vec<&str> = line.split(' ').collect();
        let [file, sig, wrapped] = fields[..] else {
            panic!("a KAT line is `file sig wrapped`: {line}");
        };
        let pem = match file {
            "modern-0.pem" => fixtures::keypair_pem(Suite::Modern, 0),
            "modern3072-0.pem" => MODERN_3072,
            other => panic!("no key {other}"),
        };
        let k = KeyPair::from_pkcs8_pem(Suite::Modern, pem, None).expect("loads");
        let sig = hex::decode(sig).expect("hex");
        let wrapped = hex::decode(wrapped).expect("hex");
        for backend in backends() {
            assert_eq!(
                k.public().verify_with(backend, KAT_MESSAGE, &sig),
                Ok(()),
                "{file} on {backend}"
            );
            assert_eq!(
                k.public()
                    .verify_with(backend, b"peerscrip rsa backends known answe", &sig),
                Err(CryptoError::BadSignature),
                "{file} on {backend}"
            );
            assert_eq!(
                k.unwrap_key_with(backend, &wrapped),
                Ok(expected.clone()),
                "{file} on {backend}"
            );
        }
        lines += 1;
    }
    assert_eq!(lines, 2, "both KAT keys were checked");
}

/// aws-lc-rs never serves the paper suite (no keys under 2048 bits, no SHA-1 PKCS#1 v1.5
/// signing), nor the modern suite in a build without the feature: asked anyway, each
/// operation is the `Backend` error and no RSA operation is done or counted.
#[test]
fn a_backend_that_does_not_serve_the_suite_is_refused_and_does_nothing() {
    let mut cases = vec![Suite::Paper];
    if !cfg!(feature = "aws-lc") {
        cases.push(Suite::Modern);
    }
    for suite in cases {
        let k = fixtures::keypair(suite, 0);
        let key = SessionKey::generate(suite);
        let wrapped = k.public().wrap_key(&key).expect("wrap");
        let sig = k.sign(b"m").expect("sign");
        let refused = CryptoError::Backend {
            backend: RsaBackend::AwsLc,
            suite,
        };
        let before = OpCount::on_this_thread();
        assert_eq!(k.sign_with(RsaBackend::AwsLc, b"m"), Err(refused.clone()));
        assert_eq!(
            k.public().verify_with(RsaBackend::AwsLc, b"m", &sig),
            Err(refused.clone())
        );
        assert_eq!(
            k.public().wrap_key_with(RsaBackend::AwsLc, &key),
            Err(refused.clone())
        );
        assert_eq!(
            k.unwrap_key_with(RsaBackend::AwsLc, &wrapped),
            Err(refused.clone())
        );
        assert_eq!(OpCount::since(before), OpCount::default(), "{suite}");
        assert_eq!(refused.code(), shared::ErrorCode::Internal);
        // The default path still works on the key.
        assert_eq!(k.public().verify(b"m", &sig), Ok(()));
        assert_eq!(k.unwrap_key(&wrapped), Ok(key));
    }
}
