//! `peerscrip-ops bench` end to end, tiny: every measurement of a few purchases (the hidden
//! `--frames`), so that the test checks the command and its report, never the machine's
//! speed (no figure is compared with a time).

use std::process::{Command, Output};

use serde_json::Value;
use shared::{RsaBackend, Suite};

fn ops(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(args)
        .output()
        .expect("run peerscrip-ops");
    assert!(
        out.status.success(),
        "peerscrip-ops {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

const OPS: [&str; 4] = ["sign", "verify", "wrap", "unwrap"];

/// The backends beside the suite's own that the run measures the primitives on: `rsa` for
/// the modern suite when it runs on aws-lc (docs/adr/0014).
fn other_backends(suite: &str) -> Vec<RsaBackend> {
    let suite: Suite = suite.parse().expect("a suite");
    RsaBackend::ALL
        .into_iter()
        .filter(|&b| b != suite.rsa_backend() && b.serves(suite))
        .collect()
}

/// The figures every suite's run must list.
fn expected_names(suite: &str) -> Vec<String> {
    let mut names: Vec<String> = OPS.iter().map(|op| format!("{suite} {op}")).collect();
    for backend in other_backends(suite) {
        names.extend(OPS.iter().map(|op| format!("{suite} {op} on {backend}")));
    }
    names.push(format!("{suite} broker 6.3 bound"));
    names.push(format!("{suite} merchant 6.3 bound"));
    names.push(format!("{suite} broker 6.2 bound"));
    for batch in [1, 16, 256] {
        names.push(format!("{suite} broker 6.3 batch {batch}"));
    }
    names.push(format!("{suite} broker 6.3 shell 64 in flight"));
    names.push(format!("{suite} broker 6.3 shell 512 in flight"));
    names.push(format!("{suite} merchant 6.3 batch 256"));
    names.push(format!("{suite} merchant 6.3 shell 64 in flight"));
    names.push(format!("{suite} broker 6.2"));
    for n in [1, 8, 64] {
        names.push(format!("{suite} group commit {n} concurrent"));
    }
    names.push(format!("{suite} broker 6.3 batch 256 empty log"));
    names.push(format!(
        "{suite} broker 6.3 batch 256 log of {LOG_EVENTS} bank events"
    ));
    // At `--frames N`, the purchase history is N purchases.
    names.push(format!(
        "{suite} broker 6.3 batch 256 after {FRAMES} purchases"
    ));
    // Skipped, with a line on stderr, where no nats-server is installed.
    if nats_installed() {
        names.push(format!("{suite} purchase over nats p50"));
        names.push(format!("{suite} purchase over nats p99"));
    }
    // Skipped, with a line on stderr, where the cluster's nats-server is not installed.
    if cluster_installed() {
        names.push(format!("{suite} broker 6.3 shell 64 in flight ha"));
        names.push(format!("{suite} broker 6.3 shell 1 in flight ha p50"));
    }
    names
}

/// The purchases of each measurement of the JSON run (`--frames`).
const FRAMES: usize = 3;

/// The events already in the full log of the cost-against-log-size figure at `--frames`.
const LOG_EVENTS: u64 = 2_000;

fn nats_installed() -> bool {
    ops::bench::nats::NatsServer::locate().is_some()
}

fn cluster_installed() -> bool {
    ops::bench::nats::NatsCluster::locate().is_some()
}

fn number(figure: &Value, key: &str) -> Option<f64> {
    let v = &figure[key];
    if v.is_null() {
        None
    } else {
        Some(
            v.as_f64()
                .unwrap_or_else(|| panic!("{key} is not a number: {figure}")),
        )
    }
}

/// `--json` prints one document: the suites, and every figure with exactly the keys
/// name, value, unit, bound, ratio, target, met and better; every value positive, every
/// ratio its value over its bound, `met` whether the ratio reached the target (or, for a
/// latency, `better: lower`, stayed within it); the broker's 6.3 figures, node and shell,
/// measured against the bound computed from the verify rate of the same run, the
/// merchant's against its bound, 6.2 against the broker's crypto in it, the group commit
/// against one request at a time, the full log against the empty one, and the latencies
/// over nats-server (when it is installed) against their limits, and the HA figures (when
/// the cluster's nats-server is installed) against the single process, without a target.
#[test]
fn the_json_document_lists_every_figure_with_its_ratio_to_its_bound() {
    let frames = FRAMES.to_string();
    let out = ops(&["bench", "--json", "--frames", &frames, "--suite", "both"]);
    if !nats_installed() {
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("nats-server is not installed"),
            "no line on stderr for the skipped end-to-end figures"
        );
    }
    if !cluster_installed() {
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("skipping the HA figures"),
            "no line on stderr for the skipped HA figures"
        );
    }
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["suites"], serde_json::json!(["paper", "modern"]));
    assert_eq!(doc["quick"], Value::Bool(false));
    let figures = doc["figures"].as_array().expect("a list of figures");
    let names: Vec<&str> = figures
        .iter()
        .map(|f| f["name"].as_str().expect("a name"))
        .collect();
    let mut expected = vec!["cores".to_owned()];
    expected.extend(expected_names("paper"));
    expected.extend(expected_names("modern"));
    assert_eq!(names, expected);

    let by_name = |name: &str| {
        figures
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no figure {name}"))
    };
    for f in figures {
        let mut keys: Vec<&String> = f.as_object().expect("an object").keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "better", "bound", "met", "name", "ratio", "target", "unit", "value"
            ],
            "{f}"
        );
        let lower = match f["better"].as_str() {
            Some("higher") => false,
            Some("lower") => true,
            _ => panic!("better is neither higher nor lower: {f}"),
        };
        assert!(f["unit"].as_str().is_some_and(|u| !u.is_empty()), "{f}");
        let value = number(f, "value").expect("a value");
        assert!(value.is_finite() && value > 0.0, "{f}");
        match (number(f, "bound"), number(f, "ratio")) {
            (Some(bound), Some(ratio)) => {
                assert!(bound > 0.0, "{f}");
                assert!((ratio - value / bound).abs() <= 1e-9 * ratio.abs(), "{f}");
                match number(f, "target") {
                    Some(target) => {
                        let met = if lower {
                            ratio <= target
                        } else {
                            ratio >= target
                        };
                        assert_eq!(f["met"], Value::Bool(met), "{f}");
                    }
                    None => assert!(f["met"].is_null(), "{f}"),
                }
            }
            (None, None) => assert!(f["target"].is_null() && f["met"].is_null(), "{f}"),
            _ => panic!("a bound without a ratio or the reverse: {f}"),
        }
    }
    let cores = number(by_name("cores"), "value").expect("cores");
    for suite in ["paper", "modern"] {
        // Each primitive on another backend is measured against the suite's own.
        for backend in other_backends(suite) {
            for op in OPS {
                let own = number(by_name(&format!("{suite} {op}")), "value");
                let f = by_name(&format!("{suite} {op} on {backend}"));
                assert_eq!(number(f, "bound"), own, "{f}");
                assert_eq!(f["unit"], "ops/s");
            }
        }
        let verify = number(by_name(&format!("{suite} verify")), "value").expect("verify");
        let bound = number(by_name(&format!("{suite} broker 6.3 bound")), "value").expect("bound");
        assert!(
            (bound - cores * verify / 2.0).abs() <= 1e-9 * bound,
            "{suite}"
        );
        for batch in [1, 16, 256] {
            let f = by_name(&format!("{suite} broker 6.3 batch {batch}"));
            assert_eq!(number(f, "bound"), Some(bound), "{f}");
            assert_eq!(f["unit"], "purchases/s");
        }
        assert_eq!(
            number(by_name(&format!("{suite} broker 6.3 batch 256")), "target"),
            Some(0.8)
        );
        let f = by_name(&format!("{suite} broker 6.3 shell 64 in flight"));
        assert_eq!(number(f, "bound"), Some(bound), "{f}");
        assert_eq!(number(f, "target"), Some(0.6), "{f}");
        assert_eq!(f["unit"], "purchases/s");
        let f = by_name(&format!("{suite} broker 6.3 shell 512 in flight"));
        assert_eq!(number(f, "bound"), Some(bound), "{f}");
        assert_eq!(number(f, "target"), None, "{f}");
        assert_eq!(f["unit"], "purchases/s");
        let merchant_bound = number(by_name(&format!("{suite} merchant 6.3 bound")), "value");
        let f = by_name(&format!("{suite} merchant 6.3 batch 256"));
        assert_eq!(number(f, "bound"), merchant_bound, "{f}");
        assert_eq!(number(f, "target"), Some(0.8), "{f}");
        assert_eq!(f["unit"], "purchases/s");
        let f = by_name(&format!("{suite} merchant 6.3 shell 64 in flight"));
        assert_eq!(number(f, "bound"), merchant_bound, "{f}");
        assert_eq!(f["unit"], "purchases/s");
        let f = by_name(&format!("{suite} broker 6.2"));
        let exchange_bound = number(by_name(&format!("{suite} broker 6.2 bound")), "value");
        assert_eq!(number(f, "bound"), exchange_bound, "{f}");
        assert_eq!(number(f, "target"), Some(0.8), "{f}");
        assert_eq!(f["unit"], "exchanges/s");
        let empty = number(
            by_name(&format!("{suite} broker 6.3 batch 256 empty log")),
            "value",
        );
        let f = by_name(&format!(
            "{suite} broker 6.3 batch 256 log of {LOG_EVENTS} bank events"
        ));
        assert_eq!(number(f, "bound"), empty, "{f}");
        assert_eq!(number(f, "target"), Some(0.9), "{f}");
        if nats_installed() {
            let p50 = by_name(&format!("{suite} purchase over nats p50"));
            let limit = if suite == "paper" { 5.0 } else { 8.0 };
            assert_eq!(number(p50, "bound"), Some(limit), "{p50}");
            assert_eq!(
                (p50["unit"].as_str(), p50["better"].as_str()),
                (Some("ms"), Some("lower"))
            );
            let p99 = by_name(&format!("{suite} purchase over nats p99"));
            let p50 = number(p50, "value").expect("p50");
            let bound = number(p99, "bound").expect("a bound");
            assert!((bound - 3.0 * p50).abs() <= 1e-9 * bound, "{p99}");
            assert_eq!(number(p99, "target"), Some(1.0), "{p99}");
        }
        if cluster_installed() {
            // Against the single process of the same run, without a target.
            let f = by_name(&format!("{suite} broker 6.3 shell 64 in flight ha"));
            assert_eq!(
                (f["unit"].as_str(), f["better"].as_str()),
                (Some("purchases/s"), Some("higher")),
                "{f}"
            );
            assert!(f["target"].is_null() && number(f, "bound").is_some(), "{f}");
            let f = by_name(&format!("{suite} broker 6.3 shell 1 in flight ha p50"));
            assert_eq!(
                (f["unit"].as_str(), f["better"].as_str()),
                (Some("ms"), Some("lower")),
                "{f}"
            );
            assert!(f["target"].is_null() && number(f, "bound").is_some(), "{f}");
        }
        let one = number(
            by_name(&format!("{suite} group commit 1 concurrent")),
            "value",
        );
        for n in [8, 64] {
            let f = by_name(&format!("{suite} group commit {n} concurrent"));
            assert_eq!(number(f, "bound"), one, "{f}");
            assert_eq!(f["unit"], "events/s");
        }
        assert_eq!(
            number(
                by_name(&format!("{suite} group commit 64 concurrent")),
                "target"
            ),
            Some(20.0)
        );
    }
}

/// Without `--json`, a table: a header naming the columns, then one line per figure.
#[test]
fn the_table_has_a_line_per_figure() {
    let out = ops(&["bench", "--frames", "2", "--suite", "paper"]);
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["name", "value", "unit", "bound", "ratio", "target", "met"]
    );
    assert_eq!(lines.len(), 1 + 1 + expected_names("paper").len(), "{text}");
    assert!(lines[1].starts_with("cores"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("paper broker 6.3 batch 256")),
        "{text}"
    );
}
