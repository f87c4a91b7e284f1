//! `peerscrip balance`: the scrip the wallet holds (protocol.md section 4: at most one
//! BrokerScrip and one VendorScrip per merchant) and its pending transactions.
//!
//! Scrip past its renewal grace (section 4, "Lapse") is not held any more: its producer
//! removed it and its value went back to the owner's bank account. It is listed apart, with
//! where its value went, and not counted in the total, by the wallet's clock and configured
//! grace ([`crate::core::lapse`]); the wallet drops it for good at its next contact with the
//! producer (`peerscrip renew`, or any request that presents it).

use serde_json::json;
use shared::Amount;
use shared::UnixSecs;

use super::merchants::{label, name_in_json, name_json};
use crate::Wallet;
use crate::cli::output::{Done, amount_json, expiry_json, expiry_text};
use crate::core::OwnedScrip;
use crate::core::lapse::{grace_end, holdings};

/// What the wallet holds at `now` (unix seconds) under a renewal grace of `grace_secs`,
/// what has lapsed, and what is pending.
#[must_use]
pub fn balance(wallet: &Wallet, now: UnixSecs, grace_secs: u64) -> Done {
    let state = wallet.state();
    let broker = state.broker();
    let split = holdings(state, now, grace_secs);
    let is_broker = |s: &&OwnedScrip| Some(s.producer()) == broker;
    let mut lines = Vec::new();
    let broker_scrip = split.held.iter().copied().find(is_broker);
    match broker_scrip {
        Some(b) => lines.push(format!(
            "BrokerScrip            {:>12}  {}",
            b.scrip.value().to_string(),
            expiry_text(UnixSecs::new(b.scrip.body.expires), now)
        )),
        None => lines.push("BrokerScrip            none".to_owned()),
    }
    let vendor: Vec<&OwnedScrip> = split
        .held
        .iter()
        .copied()
        .filter(|s| !is_broker(s))
        .collect();
    for v in &vendor {
        lines.push(format!(
            "VendorScrip {}  {:>12}  {}",
            label(state, v.producer()),
            v.scrip.value().to_string(),
            expiry_text(UnixSecs::new(v.scrip.body.expires), now)
        ));
    }
    // Where a lapsed scrip's value went: the owner's bank account (section 4), the one the
    // wallet registered with.
    let account = state.account.as_ref().map_or_else(
        || "the owner's bank account".to_owned(),
        |a| format!("the bank account {}", a.pan.redacted()),
    );
    let kind = |s: &OwnedScrip| {
        if Some(s.producer()) == broker {
            "BrokerScrip"
        } else {
            "VendorScrip"
        }
    };
    for l in &split.lapsed {
        lines.push(format!(
            "lapsed: {} of {}  {}  grace ended at {}: its value went back to {account}",
            kind(l),
            label(state, l.producer()),
            l.scrip.value(),
            expiry_text(UnixSecs::new(grace_end(l, grace_secs)), now)
        ));
    }
    // Checked: values are u64 minor units; an overflow is shown as such, never wrapped.
    let total = Amount::checked_sum(split.held.iter().map(|s| s.scrip.value()));
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
            "expires": expiry_json(UnixSecs::new(b.scrip.body.expires), now),
        })),
        "vendor_scrip": vendor.iter().map(|v| json!({
            "merchant": v.producer().to_string(),
            "merchant_name": name_json(state, v.producer()),
            "value": amount_json(v.scrip.value()),
            "expires": expiry_json(UnixSecs::new(v.scrip.body.expires), now),
        })).collect::<Vec<_>>(),
        "total": total.ok().map(amount_json),
        "lapsed": split.lapsed.iter().map(|l| {
            let mut doc = json!({
                "kind": kind(l),
                "producer": l.producer().to_string(),
                "value": amount_json(l.scrip.value()),
                "expires": expiry_json(UnixSecs::new(l.scrip.body.expires), now),
                "renewable_until": expiry_json(UnixSecs::new(grace_end(l, grace_secs)), now),
                "returned_to": account,
            });
            name_in_json(state, &mut doc);
            doc
        }).collect::<Vec<_>>(),
        "renewal_grace_secs": grace_secs,
        "pending": pending.iter().map(|p| json!({
            "tx": p.request.tx().to_string(),
            "label": p.request.label().name(),
        })).collect::<Vec<_>>(),
    });
    Done::new(lines, json)
}
