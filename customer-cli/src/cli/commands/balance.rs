//! `peerscrip balance`: the scrip the wallet holds (protocol.md section 4: at most one
//! BrokerScrip and one VendorScrip per merchant) and its pending transactions.

use serde_json::json;
use shared::Amount;

use crate::Wallet;
use crate::cli::output::{Done, amount_json};

/// What the wallet holds, and what is pending.
#[must_use]
pub fn balance(wallet: &Wallet) -> Done {
    let state = wallet.state();
    let broker = state.broker();
    let mut lines = Vec::new();
    let broker_scrip = wallet.broker_scrip();
    match broker_scrip {
        Some(b) => lines.push(format!(
            "BrokerScrip            {:>12}  expires {}",
            b.scrip.value().to_string(),
            b.scrip.body.expires
        )),
        None => lines.push("BrokerScrip            none".to_owned()),
    }
    let vendor: Vec<_> = state
        .scrip
        .values()
        .filter(|s| Some(s.producer()) != broker)
        .collect();
    for v in &vendor {
        lines.push(format!(
            "VendorScrip {}  {:>12}  expires {}",
            v.producer(),
            v.scrip.value().to_string(),
            v.scrip.body.expires
        ));
    }
    // Checked: values are u64 minor units; an overflow is shown as such, never wrapped.
    let total = Amount::checked_sum(state.scrip.values().map(|s| s.scrip.value()));
    match &total {
        Ok(t) => lines.push(format!("total                  {:>12}", t.to_string())),
        Err(e) => lines.push(format!("total: {e}")),
    }
    let pending: Vec<_> = wallet.pending().collect();
    for p in &pending {
        lines.push(format!(
            "pending: {} of tx {} (run `peerscrip status {}`)",
            p.request.label(),
            p.request.tx(),
            p.request.tx()
        ));
    }
    if state.registered.is_none() {
        lines.push("not registered yet: run `peerscrip register --pan …`".to_owned());
    }
    let json = json!({
        "command": "balance",
        "uid": wallet.uid().to_string(),
        "registered": state.registered.is_some(),
        "broker_scrip": broker_scrip.map(|b| json!({
            "value": amount_json(b.scrip.value()),
            "expires": b.scrip.body.expires,
        })),
        "vendor_scrip": vendor.iter().map(|v| json!({
            "merchant": v.producer().to_string(),
            "value": amount_json(v.scrip.value()),
            "expires": v.scrip.body.expires,
        })).collect::<Vec<_>>(),
        "total": total.ok().map(amount_json),
        "pending": pending.iter().map(|p| json!({
            "tx": p.request.tx().to_string(),
            "label": p.request.label().name(),
        })).collect::<Vec<_>>(),
    });
    Done::new(lines, json)
}
