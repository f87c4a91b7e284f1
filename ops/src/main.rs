//! `peerscrip-ops`: the operator's tool. Parses arguments and hands each command to the
//! library; every decision lives in `ops::*`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = ops::cli::Cli::parse_checked();
    match ops::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole chain on one line, each cause once (many messages already carry
            // their cause); no secret is ever part of it.
            let line = shared::daemon::exit::describe(err.as_ref());
            eprintln!("peerscrip-ops: error: {line}");
            // The codes are documented in `peerscrip-ops demo --help` (`ops::cli`).
            ExitCode::from(ops::cli::exit_code(&err))
        }
    }
}
