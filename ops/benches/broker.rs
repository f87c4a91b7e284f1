//! The broker recording 6.3 in process, with criterion: the measurement behind
//! `peerscrip-ops bench`'s `<suite> broker 6.3 batch N` figures (README, "Performance"),
//! with criterion's statistics over many samples. A benchmark, not a test: `cargo bench -p
//! ops --bench broker`; run without `--bench` (as `cargo test --all-targets` would) it
//! exits at once.
//!
//! The same site and workload as the command's (`ops::bench::setup`, `ops::bench::broker`):
//! a durable broker in a temporary directory, a registered customer and a merchant whose
//! float a real 6.2 exchange paid, and each purchase's two frames (`PurchaseInitiated`,
//! `PurchaseCompleted`) signed beforehand, outside the timing. One iteration is one
//! purchase recorded, in batches of 1, 16 or 256 frames, so criterion's throughput reads in
//! purchases per second; every frame must be recorded as one event (`record` fails
//! otherwise). `PEERSCRIP_BENCH_SUITE=paper` measures the paper suite instead of the
//! modern one.

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use ops::bench::broker::{BATCHES, PRICE, purchase_frames, record};
use ops::bench::setup;
use shared::Suite;

/// The daemons' allocator (docs/adr/0018): the figure is of the broker as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The merchant's float, in purchases: more than criterion records in a run of this file.
const FLOAT_PURCHASES: u64 = 10_000_000;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("broker is a benchmark: run it with `cargo bench -p ops --bench broker`");
        return;
    }
    let suite = match std::env::var("PEERSCRIP_BENCH_SUITE").as_deref() {
        Ok("paper") => Suite::Paper,
        _ => Suite::Modern,
    };
    let mut site = actix_rt::System::new()
        .block_on(setup::build(suite, FLOAT_PURCHASES * PRICE, 0))
        .expect("the broker's site");

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut group = criterion.benchmark_group(format!("{suite} broker 6.3"));
    group
        .throughput(Throughput::Elements(1))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10);
    for batch in BATCHES {
        group.bench_function(format!("batch {batch}"), |b| {
            b.iter_custom(|iters| {
                let purchases = usize::try_from(iters).expect("iterations");
                let frames = purchase_frames(&site, purchases).expect("frames");
                record(&mut site, &frames, batch).expect("recorded").elapsed
            });
        });
    }
    group.finish();
    criterion.final_summary();
}
