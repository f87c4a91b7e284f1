//! `peerscrip`, the customer wallet command: hands the arguments to
//! `customer_cli::cli`, where every command lives; the exit codes are in `--help`.

use std::process::ExitCode;

/// The allocator of every peerscrip binary (docs/adr/0018): the paper suite's RSA allocates
/// in every operation, on every worker of the pool at once.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ExitCode::from(customer_cli::cli::run_from(std::env::args_os()))
}
