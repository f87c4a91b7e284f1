//! `peerscrip renew [<producer>]`: renews scrip (protocol.md 6.8, section 4 "Expiry"):
//! that of one producer, or every scrip held whose expiry has passed. Same value, new
//! expiry; each is one request to its producer.
//!
//! Whether a scrip may still be renewed is its producer's decision (section 4), so every
//! expired scrip is asked for, also one the wallet's clock says has lapsed. A producer's
//! `Lapsed` refusal (the grace ended; the scrip is gone and its value back in the owner's
//! bank account) is an outcome, not a failure: the wallet drops the scrip and records it
//! (the `RequestRefused` fold), and the command goes on to the next scrip, reporting each.
//! Any other refusal or failure stops the command as before.

use serde_json::json;
use shared::{ErrorCode, Uid};

use super::history::{describe, entry_json};
use super::merchants::{name_in_json, named_line};
use crate::cli::exit::CliError;
use crate::cli::output::Done;
use crate::cli::session::{Session, now};
use crate::core::{HistoryEntry, HistoryKind};

/// Renews the scrip of `producer`, or every expired scrip.
pub async fn run(session: &mut Session, producer: Option<Uid>) -> Result<Done, CliError> {
    let producers: Vec<Uid> = match producer {
        Some(p) => vec![p],
        None => {
            let t = now();
            session
                .wallet
                .state()
                .scrip
                .values()
                .filter(|s| shared::UnixSecs::new(s.scrip.body.expires) <= t)
                .map(crate::core::OwnedScrip::producer)
                .collect()
        }
    };
    if producers.is_empty() {
        return Ok(Done::new(
            vec!["no expired scrip to renew".to_owned()],
            json!({"command": "renew", "renewed": [], "lapsed": []}),
        ));
    }
    let mut renewed = Vec::new();
    let mut lapsed = Vec::new();
    for p in producers {
        let out = session.wallet.renew(p, now())?;
        let tx = out.tx;
        match session.send(out, "6.8: renewing scrip").await {
            Ok(entry) => renewed.push(entry),
            Err(CliError::Refused { code, .. }) if code == ErrorCode::Lapsed.code() => {
                lapsed.push(lapse_of(session, tx)?);
            }
            Err(e) => return Err(e),
        }
    }
    let state = session.wallet.state();
    let named = |e: &HistoryEntry| {
        let mut doc = entry_json(e);
        name_in_json(state, &mut doc);
        doc
    };
    Ok(Done::new(
        renewed
            .iter()
            .chain(&lapsed)
            .map(|e| named_line(state, &describe(&e.what)))
            .collect(),
        json!({
            "command": "renew",
            "renewed": renewed.iter().map(named).collect::<Vec<_>>(),
            "lapsed": lapsed.iter().map(named).collect::<Vec<_>>(),
        }),
    ))
}

/// The history line the producer's `Lapsed` refusal of `tx` left (the scrip dropped, its
/// value back in the bank account).
fn lapse_of(session: &Session, tx: shared::TxId) -> Result<HistoryEntry, CliError> {
    session
        .wallet
        .history()
        .find(|h| h.tx == tx && matches!(h.what, HistoryKind::ScripLapsed { .. }))
        .cloned()
        .ok_or_else(|| {
            CliError::Failed(format!(
                "the producer's Lapsed refusal of tx {tx} left no record in the wallet"
            ))
        })
}
