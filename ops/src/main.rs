//! `peerscrip-ops`: the operator's tool. Parses arguments and hands each command to the
//! library; every decision lives in `ops::*`, the exit codes in `ops::cli` (the table
//! both binaries share, in `--help`).

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(ops::cli::main_with(std::env::args_os()))
}
