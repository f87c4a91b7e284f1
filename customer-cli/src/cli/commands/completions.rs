//! `peerscrip completions SHELL`: the shell's completion script, generated from the same
//! clap definitions that parse the command line, so that it never lags behind them.
//! [`script_of`] is also `peerscrip-ops completions`'s.

use std::io::Write as _;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::cli::exit::CliError;

/// The completion script of `peerscrip` for `shell`.
#[must_use]
pub fn script(shell: Shell) -> Vec<u8> {
    script_of::<Cli>(shell)
}

/// The completion script for `shell` of the command line `C` parses, under its own name.
#[must_use]
pub fn script_of<C: CommandFactory>(shell: Shell) -> Vec<u8> {
    let mut command = C::command();
    let name = command.get_name().to_owned();
    // Into memory first: clap_complete panics when its writer fails, and stdout may be a
    // closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    script
}

/// Prints the completion script of `peerscrip` for `shell` on stdout.
///
/// # Errors
/// Stdout could not be written.
pub fn print(shell: Shell) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script(shell))
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::Failed(format!("writing the completion script: {e}")))
}
