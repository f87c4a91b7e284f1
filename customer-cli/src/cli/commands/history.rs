//! `peerscrip history`, and the words and JSON of one history line, which every command
//! that records one prints.

use serde_json::{Value, json};
use shared::UnixSecs;
use shared::variant::variant_name;

use crate::Wallet;
use crate::cli::output::{Done, amount_json, expiry_json, expiry_text, time_json};
use crate::cli::session::now;
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
        } => format!(
            "renewed the scrip {value} of {producer}: new expiry {}",
            expiry_text(UnixSecs::new(*expires), now())
        ),
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

/// One history line as JSON: `kind` (its variant's name in snake case), the tx, the time
/// (`{"unix", "rfc3339"}`, to the second), and the fields of its kind (amounts as decimal
/// text and minor units, an expiry with its relative form as of now).
#[must_use]
pub fn entry_json(entry: &HistoryEntry) -> Value {
    let mut doc = match &entry.what {
        HistoryKind::Registered { uid } | HistoryKind::PeerKey { uid } => {
            json!({"uid": uid.to_string()})
        }
        HistoryKind::BrokerScripObtained { value }
        | HistoryKind::BrokerScripWithdrawn { value } => {
            json!({"value": amount_json(*value)})
        }
        HistoryKind::BrokerScripToppedUp { from, to } => {
            json!({"from": amount_json(*from), "to": amount_json(*to)})
        }
        HistoryKind::ScripRenewed {
            producer,
            value,
            expires,
        } => json!({
            "producer": producer.to_string(), "value": amount_json(*value),
            "expires": expiry_json(UnixSecs::new(*expires), now())
        }),
        HistoryKind::Refused { label, code } => json!({"label": label.name(), "code": code}),
        HistoryKind::Abandoned { label } | HistoryKind::Step { label } => {
            json!({"label": label.name()})
        }
        HistoryKind::ScripLapsed {
            producer,
            value,
            label,
        } => json!({
            "producer": producer.to_string(), "value": amount_json(*value), "label": label.name()
        }),
        HistoryKind::ExchangeSettled {
            merchant,
            ok,
            from,
            change,
        }
        | HistoryKind::VendorTopUpSettled {
            merchant,
            ok,
            from,
            change,
        } => json!({
            "merchant": merchant.to_string(), "ok_decision": ok,
            "from": amount_json(*from), "change": amount_json(*change)
        }),
        HistoryKind::VendorScripObtained { merchant, value } => {
            json!({"merchant": merchant.to_string(), "value": amount_json(*value)})
        }
        HistoryKind::ItemBought {
            merchant,
            paid,
            change,
        } => json!({
            "merchant": merchant.to_string(), "paid": amount_json(*paid),
            "change": amount_json(*change)
        }),
        HistoryKind::VendorScripToppedUp { merchant, from, to } => json!({
            "merchant": merchant.to_string(), "from": amount_json(*from), "to": amount_json(*to)
        }),
        HistoryKind::VendorWithdrawDecided {
            merchant,
            ok,
            value,
        } => json!({
            "merchant": merchant.to_string(), "ok_decision": ok, "value": amount_json(*value)
        }),
    };
    doc["kind"] = snake_case(&variant_name(&entry.what)).into();
    doc["tx"] = entry.tx.to_string().into();
    doc["time"] = time_json(entry.time.to_secs());
    doc
}

/// `ExchangeSettled` → `exchange_settled`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `peerscrip history`: every line, oldest first.
#[must_use]
pub fn history(wallet: &Wallet) -> Done {
    let entries: Vec<&HistoryEntry> = wallet.history().collect();
    let state = wallet.state();
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| format!("{}  tx {}  {}", e.time.utc(), e.tx, describe(&e.what)))
        .map(|line| super::merchants::named_line(state, &line))
        .collect();
    if lines.is_empty() {
        lines.push("no history yet".to_owned());
    }
    Done::new(
        lines,
        json!({
            "command": "history",
            "entries": entries.iter().map(|e| {
                let mut doc = entry_json(e);
                super::merchants::name_in_json(state, &mut doc);
                doc
            }).collect::<Vec<_>>(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::wire::Label;
    use shared::{Amount, TxId, Uid};

    /// The `kind` of every history line, as scripts that read `--json` know it.
    #[test]
    fn every_line_names_its_kind_in_snake_case() {
        let (uid, value, label) = (Uid([1; 16]), Amount::from_minor(5), Label::Ack);
        let (merchant, ok, from, change) = (uid, true, value, value);
        let kinds = [
            (HistoryKind::Registered { uid }, "registered"),
            (HistoryKind::PeerKey { uid }, "peer_key"),
            (
                HistoryKind::BrokerScripObtained { value },
                "broker_scrip_obtained",
            ),
            (
                HistoryKind::BrokerScripToppedUp { from, to: value },
                "broker_scrip_topped_up",
            ),
            (
                HistoryKind::BrokerScripWithdrawn { value },
                "broker_scrip_withdrawn",
            ),
            (
                HistoryKind::ScripRenewed {
                    producer: uid,
                    value,
                    expires: 9,
                },
                "scrip_renewed",
            ),
            (HistoryKind::Refused { label, code: 3 }, "refused"),
            (HistoryKind::Abandoned { label }, "abandoned"),
            (
                HistoryKind::ExchangeSettled {
                    merchant,
                    ok,
                    from,
                    change,
                },
                "exchange_settled",
            ),
            (
                HistoryKind::VendorScripObtained { merchant, value },
                "vendor_scrip_obtained",
            ),
            (
                HistoryKind::ItemBought {
                    merchant,
                    paid: value,
                    change,
                },
                "item_bought",
            ),
            (
                HistoryKind::VendorTopUpSettled {
                    merchant,
                    ok,
                    from,
                    change,
                },
                "vendor_top_up_settled",
            ),
            (
                HistoryKind::VendorScripToppedUp {
                    merchant,
                    from,
                    to: value,
                },
                "vendor_scrip_topped_up",
            ),
            (
                HistoryKind::VendorWithdrawDecided {
                    merchant,
                    ok,
                    value,
                },
                "vendor_withdraw_decided",
            ),
            (HistoryKind::Step { label }, "step"),
            (
                HistoryKind::ScripLapsed {
                    producer: uid,
                    value,
                    label,
                },
                "scrip_lapsed",
            ),
        ];
        for (what, kind) in kinds {
            let entry = HistoryEntry {
                tx: TxId([2; 16]),
                time: shared::UnixMillis::new(7_500),
                what,
            };
            let doc = entry_json(&entry);
            assert_eq!(doc["kind"], kind);
            assert_eq!(
                doc["time"],
                json!({"unix": 7, "rfc3339": "1970-01-01T00:00:07Z"})
            );
            if kind == "scrip_renewed" {
                assert_eq!(doc["expires"]["unix"], 9);
                let relative = doc["expires"]["relative"].as_str().unwrap_or_default();
                assert!(relative.starts_with("expired "), "{relative}");
            }
        }
    }
}
