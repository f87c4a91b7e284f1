//! `peerscrip-ops man --out DIR`: the man pages of the four binaries (`peerscrip`,
//! `peerscrip-ops`, `peerscrip-broker`, `peerscrip-merchant`), one per binary and one per
//! subcommand (`peerscrip-ops-bench.1`, `peerscrip-vendor-scrip-buy.1`), generated from
//! the clap definitions that parse their command lines, so that a page never says what a
//! flag no longer does. One command writes them all because a package installs them
//! together, and `peerscrip-ops` is the binary that links every crate's definitions.

use std::path::{Path, PathBuf};

use clap::CommandFactory as _;

/// The section of every page: user commands.
pub const SECTION: &str = "1";

/// Why the pages could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ManError {
    /// The output directory could not be created.
    #[error("creating the directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A page could not be rendered or written.
    #[error("writing the man page {}: {source}", path.display())]
    Write {
        /// The page's file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The command line of each binary, as its `main` parses it.
#[must_use]
pub fn binaries() -> Vec<clap::Command> {
    vec![
        customer_cli::cli::Cli::command(),
        crate::cli::Cli::command(),
        broker::config::BrokerArgs::command(),
        merchant::config::MerchantArgs::command(),
    ]
}

/// Writes the page of every binary and of each of its subcommands into `out` (created if
/// missing; pages already there are replaced). Returns the files written, each binary's
/// page before its subcommands'.
///
/// # Errors
/// [`ManError`]: the directory or a page could not be written.
pub fn write_all(out: &Path) -> Result<Vec<PathBuf>, ManError> {
    std::fs::create_dir_all(out).map_err(|source| ManError::CreateDir {
        path: out.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for binary in binaries() {
        // clap's own `help` subcommand only repeats `--help`; without it, and built so
        // that every subcommand knows its full name (`peerscrip-ops-bench`).
        let mut binary = binary.disable_help_subcommand(true);
        binary.build();
        // Every page of a binary names the binary and its version in its footer, a
        // subcommand's too (clap gives a subcommand no version of its own).
        let source = match binary.get_version() {
            Some(version) => format!("{} {version}", binary.get_name()),
            None => binary.get_name().to_owned(),
        };
        write_tree(&binary, &source, out, &mut written)?;
    }
    Ok(written)
}

/// Writes the page of `command`, then those of its visible subcommands, depth first.
fn write_tree(
    command: &clap::Command,
    source: &str,
    out: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), ManError> {
    let page = clap_mangen::Man::new(command.clone())
        .section(SECTION)
        .source(source);
    let path = out.join(page.get_filename());
    let mut roff = Vec::new();
    page.render(&mut roff)
        .and_then(|()| std::fs::write(&path, &roff))
        .map_err(|source| ManError::Write {
            path: path.clone(),
            source,
        })?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub, source, out, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each page comes from a well-formed command line, under the binary's own name.
    #[test]
    fn the_four_binaries_are_well_formed() {
        let names: Vec<String> = binaries()
            .into_iter()
            .map(|binary| {
                let name = binary.get_name().to_owned();
                binary.debug_assert();
                name
            })
            .collect();
        assert_eq!(
            names,
            [
                "peerscrip",
                "peerscrip-ops",
                "peerscrip-broker",
                "peerscrip-merchant"
            ]
        );
    }
}
