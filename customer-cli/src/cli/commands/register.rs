//! `peerscrip register`: links the bank account and registers the wallet's key with the
//! broker (protocol.md sections 1 and 6.0). The PANSecret is read once (file, environment
//! or prompt), turned into the account `ID` the wallet keeps sealed under its own key,
//! and dropped; it is never stored, printed or logged.

use std::path::Path;

use shared::Pan;

use crate::cli::exit::CliError;
use crate::cli::output::Done;
use crate::cli::secret_input;
use crate::cli::session::{Session, now};

/// Links `pan` (if the wallet has no account yet) and registers (6.0).
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
    match &session.wallet.state().account {
        Some(account) if account.pan != pan => {
            return Err(CliError::Usage(format!(
                "the wallet is linked to the account {}, not {}",
                account.pan.redacted(),
                pan.redacted()
            )));
        }
        Some(_) => {}
        None => {
            let secret = secret_input::pan_secret(pan_secret_file)?;
            session.wallet.link_account(pan.clone(), &secret, now())?;
        }
    }
    let out = session.wallet.register(now())?;
    let tx = out.tx;
    session
        .send(out, "6.0: registering the wallet's key with the broker")
        .await?;
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
