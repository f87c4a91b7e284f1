//! `peerscrip register`: links the bank account and registers the wallet's key with the
//! broker (protocol.md sections 1 and 6.0). The PANSecret is read once (file, environment
//! or prompt), turned into the account `ID` the wallet keeps sealed under its own key,
//! and dropped; it is never stored, printed or logged.
//!
//! Each attempt links the details it is given: the broker's `RegistrationRefused` (an
//! unknown PAN, a wrong PANSecret, or an account that has a key already; one refusal, so
//! that it tells no one which account numbers exist) ends the attempt with nothing
//! pending (6.0), and the next `peerscrip register` with corrected details replaces the
//! refused ones. Only while a registration is pending are its details kept: the broker may
//! still answer it.

use std::path::Path;

use shared::wire::Label;
use shared::{ErrorCode, Pan};

use crate::cli::exit::CliError;
use crate::cli::output::Done;
use crate::cli::secret_input;
use crate::cli::session::{Session, now};

/// What the customer reads after the broker's `RegistrationRefused`: the broker does not
/// say which detail it refused, and the wallet kept nothing pending.
const REFUSED_HINT: &str = "nothing is pending: check the account number and its PANSecret      (the broker does not say which is wrong, or whether the account has a key already) and      run `peerscrip register` again";

/// Links `pan` (unless a registration of it is pending) and registers (6.0).
pub async fn run(
    session: &mut Session,
    pan: String,
    pan_secret_file: Option<&Path>,
) -> Result<Done, CliError> {
    let pan = Pan::new(pan);
    if let Some(uid) = session.wallet.state().registered {
        return Err(CliError::WalletRefused(format!(
            "the wallet is already registered as {uid}"
        )));
    }
    let pending = session
        .wallet
        .pending()
        .find(|p| p.request.label() == Label::RegistrationRequest)
        .map(|p| p.request.tx());
    match (pending, &session.wallet.state().account) {
        (Some(tx), Some(account)) if account.pan != pan => {
            return Err(CliError::Usage(format!(
                "a registration of the account {} is pending (tx {tx}); it cannot be                  changed to {} until the broker answers: run `peerscrip status {tx}`",
                account.pan.redacted(),
                pan.redacted()
            )));
        }
        // `Wallet::register` refuses a second pending registration, naming the first.
        (Some(_), _) => {}
        (None, _) => {
            let secret = secret_input::pan_secret(pan_secret_file)?;
            session.wallet.link_account(pan.clone(), &secret, now())?;
        }
    }
    let out = session.wallet.register(now())?;
    let tx = out.tx;
    session
        .send(out, "6.0: registering the wallet's key with the broker")
        .await
        .map_err(with_hint)?;
    let uid = session.wallet.uid();
    Ok(Done::new(
        vec![format!(
            "registered key {uid} for the account {}",
            pan.redacted()
        )],
        serde_json::json!({
            "command": "register",
            "tx": tx.to_string(),
            "uid": uid.to_string(),
            "account": pan.redacted(),
        }),
    ))
}

/// The broker's `RegistrationRefused`, with what to do next (see [`REFUSED_HINT`]).
fn with_hint(e: CliError) -> CliError {
    match e {
        CliError::Refused {
            tx,
            label,
            name,
            code,
            message,
        } if code == ErrorCode::RegistrationRefused.code() => CliError::Refused {
            tx,
            label,
            name,
            code,
            message: format!("{message}; {REFUSED_HINT}"),
        },
        e => e,
    }
}
