//! `peerscrip-ops`: the operator's tool. Parses arguments and hands each command to the
//! library; every decision lives in `ops::*`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ops::cli::Cli::parse();
    match ops::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line; no secret is ever part of it.
            eprintln!("peerscrip-ops: error: {err:#}");
            // The codes are documented in `peerscrip-ops demo --help` (`ops::cli`).
            ExitCode::from(ops::cli::exit_code(&err))
        }
    }
}
