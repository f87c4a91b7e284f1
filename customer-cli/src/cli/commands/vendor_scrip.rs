//! `peerscrip vendor-scrip buy|top-up|withdraw <merchant>`: a merchant's VendorScrip
//! (protocol.md 6.2, 6.5, 6.7), the three-party transactions whose outcome arrives as
//! deliveries on the wallet's peer subject (subscribed before the first request, see
//! [`Session`]). Each ends when its last message is in, or the broker's NOK; a deadline
//! passed with the outcome still owed leaves the tx pending (exit 5) for `status`.

use serde_json::json;
use shared::wire::Label;
use shared::{Amount, TxId, Uid};

use super::history::{describe, entry_json};
use super::merchants::{label, name_in_json, name_json, named_line};
use crate::cli::VendorScripCommand;
use crate::cli::exit::CliError;
use crate::cli::output::{Done, amount_json};
use crate::cli::session::{Session, now};
use crate::core::{HistoryEntry, HistoryKind};

/// Waits for the outcome of `tx` on the peer subject, then finishes it as its next steps
/// say (see `Session::settle`).
pub async fn outcome(session: &mut Session, tx: TxId) -> Result<Vec<HistoryEntry>, CliError> {
    session
        .progress
        .step(format!("waiting for the outcome of tx {tx}"));
    let timeout = session.settings.timeout;
    let mut recorded = session.await_deliveries(tx, timeout).await;
    if session.is_pending(tx) {
        recorded.extend(session.settle(tx).await?);
    }
    Ok(recorded)
}

/// A broker's NOK among `recorded`, as the refusal it is (nothing was paid).
fn declined(tx: TxId, recorded: &[HistoryEntry]) -> Result<(), CliError> {
    for e in recorded {
        let nok = matches!(
            e.what,
            HistoryKind::ExchangeSettled { ok: false, .. }
                | HistoryKind::VendorTopUpSettled { ok: false, .. }
                | HistoryKind::VendorWithdrawDecided { ok: false, .. }
        );
        if nok {
            return Err(CliError::Declined {
                tx,
                message: describe(&e.what),
            });
        }
    }
    Ok(())
}

/// The value of the VendorScrip of `merchant` held, or the wallet's refusal.
fn held(session: &Session, merchant: Uid) -> Result<Amount, CliError> {
    session
        .wallet
        .scrip(merchant)
        .map(|v| v.scrip.value())
        .ok_or_else(|| {
            CliError::WalletRefused(format!("the wallet holds no VendorScrip of {merchant}"))
        })
}

/// The result of a three-party transaction: its lines and document.
fn done(
    session: &Session,
    command: &str,
    tx: TxId,
    merchant: Uid,
    recorded: &[HistoryEntry],
) -> Done {
    let state = session.wallet.state();
    let mut lines: Vec<String> = recorded
        .iter()
        .map(|e| named_line(state, &describe(&e.what)))
        .collect();
    lines.push(format!("tx {tx} with {}", label(state, merchant)));
    Done::new(
        lines,
        json!({
            "command": command,
            "tx": tx.to_string(),
            "merchant": merchant.to_string(),
            "merchant_name": name_json(state, merchant),
            "recorded": recorded.iter().map(|e| {
                let mut doc = entry_json(e);
                name_in_json(state, &mut doc);
                doc
            }).collect::<Vec<_>>(),
        }),
    )
}

/// Runs one `vendor-scrip` subcommand.
pub async fn run(session: &mut Session, command: VendorScripCommand) -> Result<Done, CliError> {
    match command {
        VendorScripCommand::Buy { merchant, amount } => {
            session.ensure_peer_key(merchant).await?;
            let out = session
                .wallet
                .obtain_vendor_scrip(merchant, amount, now())?;
            let tx = out.tx;
            session
                .send(out, "6.2 step 1: telling the broker of the exchange")
                .await?;
            // Step 2 goes one way: the merchant answers on the peer subject once the broker
            // decided (architecture.md "The actor shell").
            session.progress.step("6.2 step 2: asking the merchant");
            let step2 = session.wallet.resend(tx, Label::VendorScripRequest)?;
            session
                .client
                .publish(&step2)
                .await
                .map_err(|e| CliError::from_bus(&e, "6.2 step 2", Some(tx)))?;
            let recorded = outcome(session, tx).await?;
            declined(tx, &recorded)?;
            let mut d = done(session, "vendor-scrip buy", tx, merchant, &recorded);
            d.json["value"] = amount_json(amount);
            Ok(d)
        }
        VendorScripCommand::TopUp { merchant, amount } => {
            session.ensure_peer_key(merchant).await?;
            let out = session
                .wallet
                .top_up_vendor_scrip(merchant, amount, now())?;
            let tx = out.tx;
            let mut recorded = vec![
                session
                    .send(out, "6.5 step 1: asking the broker to top up")
                    .await?,
            ];
            recorded.extend(outcome(session, tx).await?);
            declined(tx, &recorded)?;
            let mut d = done(session, "vendor-scrip top-up", tx, merchant, &recorded);
            d.json["added"] = amount_json(amount);
            Ok(d)
        }
        VendorScripCommand::Withdraw { merchant, amount } => {
            let value = held(session, merchant)?;
            if let Some(asked) = amount
                && asked != value
            {
                return Err(CliError::Usage(format!(
                    "the VendorScrip of {merchant} holds {value}: a withdrawal cashes in all of it (6.7)"
                )));
            }
            let out = session.wallet.withdraw_vendor_scrip(merchant, now())?;
            let tx = out.tx;
            let mut recorded = vec![
                session
                    .send(out, "6.7 step 1: asking the merchant to cash in")
                    .await?,
            ];
            recorded.extend(outcome(session, tx).await?);
            declined(tx, &recorded)?;
            let mut d = done(session, "vendor-scrip withdraw", tx, merchant, &recorded);
            d.json["value"] = amount_json(value);
            Ok(d)
        }
    }
}
