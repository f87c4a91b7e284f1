//! `peerscrip history`, and the words and JSON of one history line, which every command
//! that records one prints.

use serde_json::{Value, json};

use crate::Wallet;
use crate::cli::output::{Done, amount_json};
use crate::core::{HistoryEntry, HistoryKind};

/// One history line in words (no secret: values, UIDs and labels only).
#[must_use]
pub fn describe(kind: &HistoryKind) -> String {
    match kind {
        HistoryKind::Registered { uid } => format!("registered as {uid}"),
        HistoryKind::PeerKey { uid } => format!("fetched the key of {uid} from the broker"),
        HistoryKind::BrokerScripObtained { value } => format!("bought BrokerScrip {value}"),
        HistoryKind::BrokerScripToppedUp { from, to } => {
            format!("topped up BrokerScrip from {from} to {to}")
        }
        HistoryKind::BrokerScripWithdrawn { value } => {
            format!("withdrew BrokerScrip {value} to the bank account")
        }
        HistoryKind::ScripRenewed {
            producer,
            value,
            expires,
        } => format!("renewed the scrip {value} of {producer}: now expires at {expires}"),
        HistoryKind::Refused { label, code } => {
            let name = shared::ErrorCode::from_code(*code).map_or("unknown code", |c| c.name());
            format!("{label} refused: {name} ({code})")
        }
        HistoryKind::Abandoned { label } => format!("gave up the refused {label}"),
        HistoryKind::ScripLapsed {
            producer,
            value,
            label,
        } => format!(
            "{label} refused: the scrip {value} of {producer} lapsed after its renewal grace; \
             its value went back to the bank account"
        ),
        HistoryKind::ExchangeSettled {
            merchant,
            ok,
            from,
            change,
        } => {
            if *ok {
                format!("paid BrokerScrip {from} for VendorScrip of {merchant}; change {change}")
            } else {
                format!("the broker refused the exchange with {merchant}: BrokerScrip {from} kept")
            }
        }
        HistoryKind::VendorScripObtained { merchant, value } => {
            format!("received VendorScrip {value} of {merchant}")
        }
        HistoryKind::ItemBought {
            merchant,
            paid,
            change,
        } => format!("paid {paid} to {merchant}; change {change}"),
        HistoryKind::VendorTopUpSettled {
            merchant,
            ok,
            from,
            change,
        } => {
            if *ok {
                format!(
                    "paid BrokerScrip {from} towards the VendorScrip of {merchant}; change {change}"
                )
            } else {
                format!("the broker refused the top-up with {merchant}: BrokerScrip {from} kept")
            }
        }
        HistoryKind::VendorScripToppedUp { merchant, from, to } => {
            format!("VendorScrip of {merchant} topped up from {from} to {to}")
        }
        HistoryKind::VendorWithdrawDecided {
            merchant,
            ok,
            value,
        } => {
            if *ok {
                format!("cashed in VendorScrip {value} of {merchant} to the bank account")
            } else {
                format!("the broker refused cashing in VendorScrip {value} of {merchant}: kept")
            }
        }
        HistoryKind::Step { label } => format!("{label} acknowledged"),
    }
}

/// One history line as JSON: `kind`, the tx, the time, and the fields of its kind (amounts
/// as decimal text and minor units).
#[must_use]
pub fn entry_json(entry: &HistoryEntry) -> Value {
    let mut doc = match &entry.what {
        HistoryKind::Registered { uid } => json!({"kind": "registered", "uid": uid.to_string()}),
        HistoryKind::PeerKey { uid } => json!({"kind": "peer_key", "uid": uid.to_string()}),
        HistoryKind::BrokerScripObtained { value } => {
            json!({"kind": "broker_scrip_obtained", "value": amount_json(*value)})
        }
        HistoryKind::BrokerScripToppedUp { from, to } => json!({
            "kind": "broker_scrip_topped_up", "from": amount_json(*from), "to": amount_json(*to)
        }),
        HistoryKind::BrokerScripWithdrawn { value } => {
            json!({"kind": "broker_scrip_withdrawn", "value": amount_json(*value)})
        }
        HistoryKind::ScripRenewed {
            producer,
            value,
            expires,
        } => json!({
            "kind": "scrip_renewed", "producer": producer.to_string(),
            "value": amount_json(*value), "expires": expires
        }),
        HistoryKind::Refused { label, code } => {
            json!({"kind": "refused", "label": label.name(), "code": code})
        }
        HistoryKind::Abandoned { label } => json!({"kind": "abandoned", "label": label.name()}),
        HistoryKind::ScripLapsed {
            producer,
            value,
            label,
        } => json!({
            "kind": "scrip_lapsed", "producer": producer.to_string(),
            "value": amount_json(*value), "label": label.name()
        }),
        HistoryKind::ExchangeSettled {
            merchant,
            ok,
            from,
            change,
        } => json!({
            "kind": "exchange_settled", "merchant": merchant.to_string(), "ok_decision": ok,
            "from": amount_json(*from), "change": amount_json(*change)
        }),
        HistoryKind::VendorScripObtained { merchant, value } => json!({
            "kind": "vendor_scrip_obtained", "merchant": merchant.to_string(),
            "value": amount_json(*value)
        }),
        HistoryKind::ItemBought {
            merchant,
            paid,
            change,
        } => json!({
            "kind": "item_bought", "merchant": merchant.to_string(),
            "paid": amount_json(*paid), "change": amount_json(*change)
        }),
        HistoryKind::VendorTopUpSettled {
            merchant,
            ok,
            from,
            change,
        } => json!({
            "kind": "vendor_top_up_settled", "merchant": merchant.to_string(), "ok_decision": ok,
            "from": amount_json(*from), "change": amount_json(*change)
        }),
        HistoryKind::VendorScripToppedUp { merchant, from, to } => json!({
            "kind": "vendor_scrip_topped_up", "merchant": merchant.to_string(),
            "from": amount_json(*from), "to": amount_json(*to)
        }),
        HistoryKind::VendorWithdrawDecided {
            merchant,
            ok,
            value,
        } => json!({
            "kind": "vendor_withdraw_decided", "merchant": merchant.to_string(), "ok_decision": ok,
            "value": amount_json(*value)
        }),
        HistoryKind::Step { label } => json!({"kind": "step", "label": label.name()}),
    };
    doc["tx"] = entry.tx.to_string().into();
    doc["time_ms"] = entry.time.into();
    doc
}

/// `peerscrip history`: every line, oldest first.
#[must_use]
pub fn history(wallet: &Wallet) -> Done {
    let entries: Vec<&HistoryEntry> = wallet.history().collect();
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| format!("{}  tx {}  {}", e.time / 1000, e.tx, describe(&e.what)))
        .collect();
    if lines.is_empty() {
        lines.push("no history yet".to_owned());
    }
    Done::new(
        lines,
        json!({
            "command": "history",
            "entries": entries.iter().map(|e| entry_json(e)).collect::<Vec<_>>(),
        }),
    )
}
