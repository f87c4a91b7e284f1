//! `peerscrip`, the customer wallet command: hands the arguments to
//! `customer_cli::cli`, where every command lives; the exit codes are in `--help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(customer_cli::cli::run_from(std::env::args_os()))
}
