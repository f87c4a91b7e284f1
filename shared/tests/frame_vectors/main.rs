//! Known-answer frames (docs/protocol.md appendix A, docs/vectors/): one frame of every
//! label, in both suites, so that a second implementation can check its encoding, its
//! signatures and its sealing against ours, and so that the stored files cannot drift
//! from the code.
//!
//! Each test (a) rebuilds every body from its typed struct (`catalog`) and compares its
//! bytes, `HeaderBytes`, `SigInput` and request digest with the stored file, and (b)
//! decodes every stored frame, opens each sealed part with its recipient's fixture key and
//! verifies every signature and IdProof with the signer's fixture key (`spec::read`); in
//! the paper suite every signature must also equal a fresh one (PKCS#1 v1.5 is
//! deterministic).
//!
//! Regenerate the files after a deliberate change of the wire format:
//!
//! ```sh
//! PEERSCRIP_WRITE_VECTORS=1 cargo test -p shared --test frame_vectors
//! ```
//!
//! which renders fresh frames (new PSS salts, session keys and IVs in the modern suite),
//! reads them back the same way and writes `docs/vectors/frames-<suite>.json`.

mod catalog;
mod drafts;
mod file;
mod spec;
mod world;

use std::collections::BTreeMap;
use std::path::PathBuf;

use shared::Suite;
use shared::wire::{Frame, Label};

use catalog::Catalog;
use file::{Vector, VectorFile};
use world::World;

/// Set to `1` to write the vector files instead of checking them.
const WRITE_ENV: &str = "PEERSCRIP_WRITE_VECTORS";

fn path(suite: Suite) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/vectors")
        .join(format!("frames-{}.json", suite.name()))
}

fn stored(suite: Suite) -> VectorFile {
    let path = path(suite);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (regenerate with {WRITE_ENV}=1)",
            path.display()
        )
    });
    let file: VectorFile =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    assert_eq!(file::suite_of(&file.suite), suite, "{}", path.display());
    file
}

/// The frame of the stored vector `vector`: decoded, and encoding back to the same bytes
/// (one encoding per frame).
fn decode(vector: &Vector) -> Frame {
    let bytes = hex::decode(&vector.frame).expect("frame hex");
    let frame = Frame::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", vector.name));
    assert_eq!(
        frame.encode().expect("re-encoding"),
        bytes,
        "{}",
        vector.name
    );
    frame
}

/// Checks (or, with `PEERSCRIP_WRITE_VECTORS=1`, writes) the vectors of `suite`.
fn vectors_match_the_code(suite: Suite) {
    let world = World::new(suite);
    let write = std::env::var(WRITE_ENV).is_ok_and(|v| v == "1");
    let stored = (!write).then(|| stored(suite));
    let pinned: BTreeMap<String, Vec<u8>> = stored
        .iter()
        .flat_map(|f| &f.vectors)
        .filter_map(|v| {
            let sig = &v.embedded.as_ref()?.sig;
            Some((
                v.name.clone(),
                hex::decode(sig).expect("embedded signature hex"),
            ))
        })
        .collect();
    let specs = Catalog::build(&world, &pinned);
    let mut frames: BTreeMap<String, Frame> = BTreeMap::new();
    let mut vectors = Vec::with_capacity(specs.len());
    for spec in &specs {
        let earlier = |name: &str| {
            frames
                .get(name)
                .cloned()
                .unwrap_or_else(|| panic!("{}: no earlier vector {name}", spec.name))
        };
        let frame = match &stored {
            None => spec.render(&world, &earlier),
            Some(file) => decode(
                file.vectors
                    .iter()
                    .find(|v| v.name == spec.name)
                    .unwrap_or_else(|| panic!("the stored file has no vector {}", spec.name)),
            ),
        };
        let read = spec::read(&world, spec, &frame, &earlier);
        vectors.push(file::describe(&world, spec, &frame, &read));
        frames.insert(spec.name.clone(), frame);
    }
    let built = VectorFile::new(&world, vectors);
    let codes: Vec<u8> = built.vectors.iter().map(|v| v.code).collect();
    for label in Label::ALL {
        assert!(codes.contains(&label.code()), "no vector of {label}");
    }
    match stored {
        None => {
            let path = path(suite);
            let text = serde_json::to_string_pretty(&built).expect("JSON") + "\n";
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        Some(stored) => {
            assert_eq!(
                built.vectors.len(),
                stored.vectors.len(),
                "number of vectors"
            );
            for (got, want) in built.vectors.iter().zip(&stored.vectors) {
                assert_eq!(
                    got, want,
                    "vector {} differs from the stored one",
                    want.name
                );
            }
            assert_eq!(built, stored);
        }
    }
}

/// Every broker and merchant vector, sealed again by `Draft` as the node cores seal their
/// frames, reads back against its spec: the same parts, the same inners in the same
/// order, the same bodies.
#[test]
fn node_vectors_are_laid_out_as_the_nodes_build_them() {
    for suite in Suite::ALL {
        let world = World::new(suite);
        let pinned = BTreeMap::new();
        let specs = Catalog::build(&world, &pinned);
        let mut frames: BTreeMap<String, Frame> = BTreeMap::new();
        let mut checked = 0;
        for spec in &specs {
            let earlier = |name: &str| frames[name].clone();
            let frame = if drafts::built_by_draft(spec) {
                checked += 1;
                drafts::sealed_by_draft(&world, spec, &earlier)
            } else {
                spec.render(&world, &earlier)
            };
            frames.insert(spec.name.clone(), frame);
        }
        assert!(checked > 20, "{checked} node vectors checked in {suite}");
    }
}

#[test]
fn modern_vectors_match_the_code() {
    vectors_match_the_code(Suite::Modern);
}

#[test]
fn paper_vectors_match_the_code() {
    vectors_match_the_code(Suite::Paper);
}
