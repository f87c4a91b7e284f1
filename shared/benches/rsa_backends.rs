//! The modern suite's RSA operations on both backends side by side (docs/adr/0014):
//! `cargo bench -p shared --bench rsa_backends`.
//!
//! Sign (RSASSA-PSS SHA-256), verify, wrap (RSAES-OAEP SHA-256 of a 32-byte session key)
//! and unwrap, each on the `rsa` crate and on aws-lc-rs, with the same 2048-bit fixture key
//! (the modern suite's default size, protocol.md section 2) in the same run, measured by
//! criterion; then, for each operation, the two means and their ratio aws-lc / rsa (below
//! 1: aws-lc is faster), which reads without knowing the machine; and the cost of loading a
//! public key, which with the feature both backends parse. What the choice of
//! backend rests on, and what `peerscrip-ops bench` reports next to the nodes' bounds.
//!
//! `PEERSCRIP_BENCH_BITS=3072` measures the 3072-bit modern key instead. Built without
//! `shared`'s `aws-lc` feature it measures `rsa` alone and says so. Run without `--bench`
//! (as `cargo test --all-targets` does), it does nothing.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use shared::fixtures;
use shared::{KeyPair, PublicKey, RsaBackend, SessionKey, Suite};

const KEY_3072: &str = include_str!("../testdata/keys/modern3072-0.pem");
const MESSAGE: &[u8] = b"a SigInput of a typical frame: tag, header and a body of about this size";

/// The four operations, in the order they are measured and reported.
const OPS: [&str; 4] = ["sign", "verify", "wrap", "unwrap"];

/// Total time and iterations per (operation, backend name), from every criterion call: the
/// means of the closing table.
static TOTALS: Mutex<BTreeMap<Key, (Duration, u64)>> = Mutex::new(BTreeMap::new());

/// (operation, backend name).
type Key = (&'static str, &'static str);

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "rsa_backends is a benchmark: run it with `cargo bench -p shared --bench rsa_backends`"
        );
        return;
    }
    let bits: usize = std::env::var("PEERSCRIP_BENCH_BITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let key = match bits {
        2048 => fixtures::keypair(Suite::Modern, 0).clone(),
        3072 => KeyPair::from_pkcs8_pem(Suite::Modern, KEY_3072, None).expect("3072-bit key"),
        other => {
            eprintln!("PEERSCRIP_BENCH_BITS must be 2048 or 3072, not {other}");
            std::process::exit(2);
        }
    };
    let backends: Vec<RsaBackend> = RsaBackend::ALL
        .into_iter()
        .filter(|b| b.serves(Suite::Modern))
        .collect();

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    let mut group = criterion.benchmark_group(format!("modern rsa-{bits}"));
    for op in OPS {
        for &backend in &backends {
            group.bench_function(format!("{op}/{backend}"), |b| {
                b.iter_custom(|iters| measure(&key, op, backend, iters));
            });
        }
    }
    // Loading a public key is not per backend: with the feature both parse it (keys.rs).
    let spki = key.public().spki_der().to_vec();
    group.bench_function("load public key", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                drop(black_box(PublicKey::from_spki_der(
                    Suite::Modern,
                    black_box(&spki),
                )));
            }
            let took = start.elapsed();
            add(("load", "this build"), took, iters);
            took
        });
    });
    group.finish();
    criterion.final_summary();
    report(bits, &backends);
}

/// Runs `op` on `backend` `iters` times and returns the time; the inputs (a signature to
/// verify, a wrapped key to unwrap) are made by the same backend before the clock starts.
fn measure(key: &KeyPair, op: &'static str, backend: RsaBackend, iters: u64) -> Duration {
    let public = key.public();
    let session = SessionKey::generate(Suite::Modern);
    let sig = key.sign_with(backend, MESSAGE).expect("sign");
    let wrapped = public.wrap_key_with(backend, &session).expect("wrap");
    let start = Instant::now();
    for _ in 0..iters {
        match op {
            "sign" => drop(black_box(key.sign_with(backend, black_box(MESSAGE)))),
            "verify" => drop(black_box(public.verify_with(
                backend,
                black_box(MESSAGE),
                black_box(&sig),
            ))),
            "wrap" => drop(black_box(
                public.wrap_key_with(backend, black_box(&session)),
            )),
            "unwrap" => drop(black_box(key.unwrap_key_with(backend, black_box(&wrapped)))),
            other => unreachable!("no operation {other}"),
        }
    }
    let took = start.elapsed();
    add((op, backend.name()), took, iters);
    took
}

fn add(key: Key, took: Duration, iters: u64) {
    let mut totals = TOTALS.lock().expect("no measurement panicked");
    let entry = totals.entry(key).or_insert((Duration::ZERO, 0));
    entry.0 += took;
    entry.1 += iters;
}

/// The closing table: each operation's mean on each backend and the ratio aws-lc / rsa.
fn report(bits: usize, backends: &[RsaBackend]) {
    let totals = TOTALS.lock().expect("no measurement panicked");
    let mean_of = |key: Key| -> Option<f64> {
        totals
            .get(&key)
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| t.as_secs_f64() * 1e6 / *n as f64)
    };
    let mean = |op: &'static str, backend: RsaBackend| mean_of((op, backend.name()));
    println!();
    println!("modern suite, RSA-{bits}, mean per operation (same run, same key):");
    println!(
        "{:<8} {:>12} {:>12} {:>14} {:>10}",
        "op", "rsa µs", "aws-lc µs", "aws-lc / rsa", "speed-up"
    );
    for op in OPS {
        let rsa = mean(op, RsaBackend::RustCrypto);
        let aws = mean(op, RsaBackend::AwsLc);
        let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        let (ratio, speedup) = match (rsa, aws) {
            (Some(r), Some(a)) if r > 0.0 && a > 0.0 => {
                (format!("{:.3}", a / r), format!("{:.1}x", r / a))
            }
            _ => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "{op:<8} {:>12} {:>12} {ratio:>14} {speedup:>10}",
            cell(rsa),
            cell(aws)
        );
    }
    if let Some(load) = mean_of(("load", "this build")) {
        println!(
            "load a public key (SPKI DER, parsed by rsa{}): {load:.1} µs",
            if backends.contains(&RsaBackend::AwsLc) {
                " and by aws-lc"
            } else {
                ""
            }
        );
    }
    if !backends.contains(&RsaBackend::AwsLc) {
        println!("(built without `shared`'s `aws-lc` feature: the rsa backend alone)");
    }
}
