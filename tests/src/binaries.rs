//! The workspace's binaries for the tests that run them as an operator would
//! (`tests/tests/daemons.rs`, `tests/tests/quickstart.rs`).
//!
//! Cargo gives an integration test `CARGO_BIN_EXE_<name>` only for the binaries of its own
//! package, and these live in `broker`, `merchant`, `customer-cli` and `ops`. Looking for
//! them in the target directory would risk running stale ones, so [`built`] builds them
//! once per test process with the cargo that runs the tests, into the same target
//! directory and profile (`cargo build --bins`), a no-op when they are up to date.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The packages whose binaries [`built`] builds.
const PACKAGES: [&str; 4] = ["broker", "merchant", "customer-cli", "ops"];

/// The workspace's root directory.
#[must_use]
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The directory holding the freshly built binaries (`peerscrip-broker`,
/// `peerscrip-merchant`, `peerscrip`, `peerscrip-ops`) of this test run's profile.
///
/// # Panics
/// When the build fails: the test cannot run without its binaries.
pub fn built() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's own path");
        // target/<profile dir>/deps/<test>-<hash>
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test runs from target/<profile>/deps")
            .to_owned();
        let target_dir = profile_dir.parent().expect("target dir").to_owned();
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_owned(),
            Some(other) => other.to_owned(),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
        let mut command = Command::new(cargo);
        // What cargo set for this test process only (CARGO_PKG_NAME and the like): build
        // scripts watch some of them, and the inner build would rebuild crates for nothing.
        for (name, _) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            {
                command.env_remove(name);
            }
        }
        command
            .current_dir(workspace())
            .args(["build", "--quiet", "--locked"]);
        for package in PACKAGES {
            command.args(["-p", package]);
        }
        let status = command
            .args(["--bins", "--profile", &profile, "--target-dir"])
            .arg(&target_dir)
            .status()
            .expect("run cargo build for the binaries");
        assert!(status.success(), "building the binaries failed: {status}");
        profile_dir
    })
}
