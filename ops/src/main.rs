//! `peerscrip-ops`: the operator's tool. Parses arguments and hands each command to the
//! library; every decision lives in `ops::*`, the exit codes in `ops::cli` (the table
//! both binaries share, in `--help`).

use std::process::ExitCode;

/// The allocator of every peerscrip binary (docs/adr/0018): the paper suite's RSA allocates
/// in every operation, on every worker of the pool at once.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ExitCode::from(ops::cli::main_with(std::env::args_os()))
}
