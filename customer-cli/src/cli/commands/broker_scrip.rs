//! `peerscrip broker-scrip buy|top-up|withdraw`: BrokerScrip against the bank account
//! (protocol.md 6.1, 6.4, 6.6), each one request to the broker and its reply.

use serde_json::json;
use shared::Amount;

use crate::cli::BrokerScripCommand;
use crate::cli::exit::CliError;
use crate::cli::output::{Done, amount_json};
use crate::cli::session::{Session, now};

/// The value of the BrokerScrip held, or the wallet's refusal.
fn held(session: &Session) -> Result<Amount, CliError> {
    session
        .wallet
        .broker_scrip()
        .map(|b| b.scrip.value())
        .ok_or_else(|| CliError::WalletRefused("the wallet holds no BrokerScrip".to_owned()))
}

/// Runs one `broker-scrip` subcommand.
pub async fn run(session: &mut Session, command: BrokerScripCommand) -> Result<Done, CliError> {
    match command {
        BrokerScripCommand::Buy { amount } => {
            let out = session.wallet.obtain_broker_scrip(amount, now())?;
            let tx = out.tx;
            session
                .send(out, "6.1: buying BrokerScrip from the bank account")
                .await?;
            Ok(Done::new(
                vec![format!(
                    "bought BrokerScrip {amount} from your bank account (tx {tx})"
                )],
                json!({"command": "broker-scrip buy", "tx": tx.to_string(), "value": amount_json(amount)}),
            ))
        }
        BrokerScripCommand::TopUp { amount } => {
            let from = held(session)?;
            let to = from.checked_add(amount).map_err(crate::WalletError::from)?;
            let out = session.wallet.top_up_broker_scrip(to, now())?;
            let tx = out.tx;
            session
                .send(out, "6.4: topping up BrokerScrip from the bank account")
                .await?;
            Ok(Done::new(
                vec![format!(
                    "topped up BrokerScrip from {from} to {to} with {amount} from your bank account (tx {tx})"
                )],
                json!({
                    "command": "broker-scrip top-up", "tx": tx.to_string(),
                    "added": amount_json(amount), "from": amount_json(from), "to": amount_json(to),
                }),
            ))
        }
        BrokerScripCommand::Withdraw { amount } => {
            let value = held(session)?;
            if let Some(asked) = amount
                && asked != value
            {
                return Err(CliError::Usage(format!(
                    "the BrokerScrip holds {value}: a withdrawal cashes in all of it (6.6)"
                )));
            }
            let out = session.wallet.withdraw_broker_scrip(now())?;
            let tx = out.tx;
            session
                .send(out, "6.6: cashing BrokerScrip into the bank account")
                .await?;
            Ok(Done::new(
                vec![format!(
                    "withdrew BrokerScrip {value} to your bank account (tx {tx})"
                )],
                json!({"command": "broker-scrip withdraw", "tx": tx.to_string(), "value": amount_json(value)}),
            ))
        }
    }
}
