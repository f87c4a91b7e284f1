//! A large broker log built fast, for the tests and benchmarks that need many events (the
//! JetStream export killed mid-stream, `ops/tests/export.rs`; the 1M-event replay
//! benchmark, `ops/benches/replay.rs`): the builder of `peerscrip-ops bench`
//! (`ops::bench::fill`), which measures the broker on such a log.

pub use ops::bench::fill::{ACCOUNTS, BATCH, BuildError, build, pan};
