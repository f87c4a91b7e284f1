//! `peerscrip-ops completions SHELL`: the shell's completion script of `peerscrip-ops`,
//! generated from the same clap definitions that parse its command line, so that it never
//! lags behind them. (The wallet prints its own: `peerscrip completions SHELL`.)

use std::io::Write as _;

use anyhow::Context as _;
use clap_complete::Shell;

use crate::cli::Cli;

/// The completion script of `peerscrip-ops` for `shell` (the wallet's generator, over
/// this tool's command line).
#[must_use]
pub fn script(shell: Shell) -> Vec<u8> {
    customer_cli::cli::commands::completions::script_of::<Cli>(shell)
}

/// Prints the completion script of `peerscrip-ops` for `shell` on stdout.
///
/// # Errors
/// Stdout could not be written.
pub fn print(shell: Shell) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script(shell))
        .and_then(|()| stdout.flush())
        .context("writing the completion script")
}
