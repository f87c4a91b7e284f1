//! Reading the secrets a customer gives the wallet: the key file's passphrase and the
//! PANSecret (protocol.md section 1; docs/adr/0005), and the NATS password file's line. Each comes from a file (its first line), an
//! environment variable for scripts, or a prompt on the terminal that does not echo.
//! Neither is ever printed, logged or put in an error: errors name the source (a path, a
//! variable), never the content.

use std::io::IsTerminal as _;
use std::path::Path;

use shared::PanSecret;
use zeroize::Zeroizing;

use super::exit::CliError;

/// The environment variable holding the key file's passphrase.
pub const PASSPHRASE_ENV: &str = "PEERSCRIP_PASSPHRASE";
/// The environment variable holding the PANSecret.
pub const PAN_SECRET_ENV: &str = "PEERSCRIP_PAN_SECRET";

/// The first line of `path`, without its line ending (also the NATS password file's
/// format, as `peerscrip-ops nats-config` writes it).
pub fn first_line(path: &Path, what: &str) -> Result<Zeroizing<String>, CliError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!("reading the {what} file {}: {e}", path.display()))
    })?);
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(CliError::Usage(format!(
            "the {what} file {} is empty",
            path.display()
        )));
    }
    Ok(Zeroizing::new(line.to_owned()))
}

/// The value of `var`, if set and not empty.
fn from_env(var: &str) -> Option<Zeroizing<String>> {
    std::env::var(var)
        .ok()
        .map(Zeroizing::new)
        .filter(|v| !v.is_empty())
}

/// Asks on the terminal without echo; refuses when there is no terminal to ask on.
fn prompt(question: &str, how: &str) -> Result<Zeroizing<String>, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!("no terminal to ask for the {how}")));
    }
    let answer = Zeroizing::new(
        rpassword::prompt_password(question)
            .map_err(|e| CliError::Usage(format!("reading the {how}: {e}")))?,
    );
    if answer.is_empty() {
        return Err(CliError::Usage(format!("an empty {how}")));
    }
    Ok(answer)
}

/// The key file's passphrase: `--passphrase-file`, else `$PEERSCRIP_PASSPHRASE`, else a
/// prompt (twice when `confirm`, for a new key).
pub fn passphrase(file: Option<&Path>, confirm: bool) -> Result<Zeroizing<String>, CliError> {
    if let Some(path) = file {
        return first_line(path, "passphrase");
    }
    if let Some(value) = from_env(PASSPHRASE_ENV) {
        return Ok(value);
    }
    let how = format!("passphrase (use --passphrase-file or {PASSPHRASE_ENV})");
    let first = prompt("Wallet passphrase: ", &how)?;
    if confirm {
        let again = prompt("Repeat the passphrase: ", &how)?;
        if *again != *first {
            return Err(CliError::Usage("the passphrases differ".to_owned()));
        }
    }
    Ok(first)
}

/// The PANSecret of the account being linked: `--pan-secret-file`, else
/// `$PEERSCRIP_PAN_SECRET`, else a prompt.
pub fn pan_secret(file: Option<&Path>) -> Result<PanSecret, CliError> {
    let text = match file {
        Some(path) => first_line(path, "PANSecret")?,
        None => match from_env(PAN_SECRET_ENV) {
            Some(value) => value,
            None => prompt(
                "PANSecret of the bank account: ",
                &format!("PANSecret (use --pan-secret-file or {PAN_SECRET_ENV})"),
            )?,
        },
    };
    Ok(PanSecret::new(&text))
}
