//! `peerscrip status <tx>`: finishes or reconciles one transaction (protocol.md section
//! 7) and shows where it stands: its history lines, and what is still pending. A tx still
//! pending afterwards (a node unreachable, a decision not made yet) exits 5; run it again.

use serde_json::json;
use shared::TxId;

use super::history::{describe, entry_json};
use super::merchants::{name_in_json, named_line};
use crate::cli::exit::CliError;
use crate::cli::output::Done;
use crate::cli::session::Session;

/// Settles `tx`, then the other pending transactions, and reports `tx`.
pub async fn run(session: &mut Session, tx: TxId) -> Result<Done, CliError> {
    let known = session.is_pending(tx) || session.wallet.history().any(|e| e.tx == tx);
    if !known {
        return Err(CliError::Usage(format!(
            "no transaction {tx} in this wallet"
        )));
    }
    if session.is_pending(tx) {
        session.settle(tx).await?;
    }
    session.reconcile_all().await;
    let entries: Vec<_> = session
        .wallet
        .history()
        .filter(|e| e.tx == tx)
        .cloned()
        .collect();
    let state = session.wallet.state();
    let mut lines = vec![format!("tx {tx}: finished")];
    lines.extend(
        entries
            .iter()
            .map(|e| named_line(state, &format!("  {}", describe(&e.what)))),
    );
    Ok(Done::new(
        lines,
        json!({
            "command": "status",
            "tx": tx.to_string(),
            "pending": false,
            "history": entries.iter().map(|e| {
                let mut doc = entry_json(e);
                name_in_json(state, &mut doc);
                doc
            }).collect::<Vec<_>>(),
        }),
    ))
}
