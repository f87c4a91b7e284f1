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
/// The fewest characters a new passphrase may have: the key file is only as strong as
/// its passphrase against a guesser who copied it, and a few characters fall to scrypt
/// guessing at once. Only a new passphrase is held to it, so a wallet made before keeps
/// opening.
pub const MIN_NEW_PASSPHRASE_CHARS: usize = 8;

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
/// prompt (twice when `confirm`, for a new key). A new one (`confirm`) is refused when it
/// is shorter than [`MIN_NEW_PASSPHRASE_CHARS`]; an existing key's is taken as it is.
pub fn passphrase(file: Option<&Path>, confirm: bool) -> Result<Zeroizing<String>, CliError> {
    let given = given_passphrase(file, confirm)?;
    if confirm {
        check_new_passphrase(&given)?;
    }
    Ok(given)
}

/// The passphrase from wherever it comes (see [`passphrase`]).
fn given_passphrase(file: Option<&Path>, confirm: bool) -> Result<Zeroizing<String>, CliError> {
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

/// Refuses a new passphrase of fewer than [`MIN_NEW_PASSPHRASE_CHARS`] characters
/// (characters, not bytes: "ééé" is three). A usage error like a bad argument (exit 2),
/// since nothing was sent or written; its message says neither the passphrase nor its
/// length.
///
/// # Errors
/// [`CliError::Usage`] with [`short_passphrase_message`].
pub fn check_new_passphrase(passphrase: &str) -> Result<(), CliError> {
    if passphrase.chars().count() < MIN_NEW_PASSPHRASE_CHARS {
        return Err(CliError::Usage(short_passphrase_message()));
    }
    Ok(())
}

/// The message of a new passphrase refused as too short.
#[must_use]
pub fn short_passphrase_message() -> String {
    format!(
        "the new passphrase is too short: it needs at least {MIN_NEW_PASSPHRASE_CHARS} \
         characters; nothing was written"
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_passphrase_is_counted_in_characters() {
        assert!(check_new_passphrase("1234567").is_err());
        assert!(check_new_passphrase("12345678").is_ok());
        // Seven characters of two bytes each: fourteen bytes, still too short.
        let seven = "ééééééé";
        assert_eq!(seven.len(), 14);
        let refused = check_new_passphrase(seven).unwrap_err();
        assert_eq!(refused.exit_code(), 2);
        assert_eq!(refused.to_string(), short_passphrase_message());
        assert!(!refused.to_string().contains(seven));
        assert!(check_new_passphrase("éééééééé").is_ok());
    }
}
