//! `peerscrip merchants`: the merchants that registered a display name at the broker
//! (docs/adr/0016), from the broker's signed directory, a page at a time; and how every
//! other command names a merchant ([`label`], [`name_json`]) from the names the wallet
//! remembered (from this directory and from the merchants' signed catalogues).
//!
//! A name is a `MerchantName`: validated when its body was decoded (no control character,
//! so nothing printed here can drive the terminal).

use serde_json::{Value, json};
use shared::Uid;

use crate::cli::exit::CliError;
use crate::cli::output::Done;
use crate::cli::session::{Session, now};
use crate::core::WalletState;

/// Most pages one `merchants` reads: 64 pages of 128 names each. A broker that says
/// "more" forever cannot keep the wallet asking.
pub const MAX_PAGES: usize = 64;

/// How a merchant is shown in human output: `Name (UID)` when the wallet knows its name,
/// else its UID.
#[must_use]
pub fn label(state: &WalletState, merchant: Uid) -> String {
    match state.names.get(&merchant) {
        Some(name) => format!("{name} ({merchant})"),
        None => merchant.to_string(),
    }
}

/// The `merchant_name` beside a merchant's UID in `--json`: the name, or `null`.
#[must_use]
pub fn name_json(state: &WalletState, merchant: Uid) -> Value {
    state
        .names
        .get(&merchant)
        .map_or(Value::Null, |n| Value::String(n.as_str().to_owned()))
}

/// `merchants`: every named merchant, in UID order.
pub async fn run(session: &mut Session) -> Result<Done, CliError> {
    let mut merchants = Vec::new();
    let mut after = None;
    let mut truncated = false;
    for page_no in 0..MAX_PAGES {
        session.progress.step(if page_no == 0 {
            "asking the broker for the named merchants".to_owned()
        } else {
            format!(
                "asking the broker for page {} of the merchants",
                page_no + 1
            )
        });
        let (query, out) = session.wallet.directory_query(after)?;
        let answer = session
            .client
            .ask(&out)
            .await
            .map_err(|e| CliError::from_client(e, "the broker", out.tx, false))?;
        let page = session
            .wallet
            .handle_directory(&query, after, &answer, now())
            .map_err(|e| CliError::from_wallet(e, Some(out.tx)))?;
        after = page.merchants.last().map(|(uid, _)| *uid).or(after);
        let more = page.more && !page.merchants.is_empty();
        merchants.extend(page.merchants);
        if !more {
            break;
        }
        truncated = page_no + 1 == MAX_PAGES;
    }
    let mut lines: Vec<String> = merchants
        .iter()
        .map(|(uid, name)| format!("{uid}  {name}"))
        .collect();
    if merchants.is_empty() {
        lines.push("no merchant has registered a name at the broker".to_owned());
    }
    if truncated {
        lines.push(format!(
            "… the broker lists more than {} pages; the rest are not shown",
            MAX_PAGES
        ));
    }
    Ok(Done::new(
        lines,
        json!({
            "command": "merchants",
            "merchants": merchants.iter().map(|(uid, name)| json!({
                "uid": uid.to_string(), "name": name.as_str(),
            })).collect::<Vec<_>>(),
            "truncated": truncated,
        }),
    ))
}

/// `line` with every UID of a merchant the wallet knows by name shown as [`label`]: the
/// history's words name merchants by UID (`history::describe`), and every command that
/// prints them names the merchant. One pass over runs of 32 hex digits, so a name that
/// holds another UID is not rewritten again.
#[must_use]
pub fn named_line(state: &WalletState, line: &str) -> String {
    const UID_HEX: usize = 32;
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if run == 0 {
            let ch = line[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&line[i..i + ch]);
            i += ch;
            continue;
        }
        let token = &line[i..i + run];
        match token.parse::<Uid>() {
            Ok(uid) if run == UID_HEX && state.names.contains_key(&uid) => {
                out.push_str(&label(state, uid));
            }
            _ => out.push_str(token),
        }
        i += run;
    }
    out
}

/// Adds `merchant_name` beside a document's `merchant` UID (the name, or `null`), or
/// beside its `producer` UID when that producer is a merchant the wallet knows by name (a
/// renewal's or a lapse's; the broker, the other producer, has no name).
pub fn name_in_json(state: &WalletState, doc: &mut Value) {
    let uid_at = |key: &str| {
        doc.get(key)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Uid>().ok())
    };
    let merchant = uid_at("merchant")
        .or_else(|| uid_at("producer").filter(|producer| state.names.contains_key(producer)));
    if let (Some(merchant), Value::Object(map)) = (merchant, doc) {
        map.insert("merchant_name".to_owned(), name_json(state, merchant));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::wire::bodies::MerchantName;

    fn state() -> (WalletState, Uid, Uid) {
        let (named, unnamed) = (Uid([0xab; 16]), Uid([0xcd; 16]));
        let mut state = WalletState::default();
        state
            .names
            .insert(named, MerchantName::new("Green Tea House").unwrap());
        (state, named, unnamed)
    }

    #[test]
    fn a_known_merchant_is_shown_by_name_and_uid_and_others_by_uid() {
        let (state, named, unnamed) = state();
        assert_eq!(label(&state, named), format!("Green Tea House ({named})"));
        assert_eq!(label(&state, unnamed), unnamed.to_string());
        assert_eq!(
            named_line(
                &state,
                &format!("paid 4.50 to {named}; change 0.50 from {unnamed}")
            ),
            format!("paid 4.50 to Green Tea House ({named}); change 0.50 from {unnamed}")
        );
        // A longer run of hex digits is not a UID; a name's own characters pass through.
        let longer = format!("{named}00");
        assert_eq!(named_line(&state, &longer), longer);
        assert_eq!(named_line(&state, "tx é 12"), "tx é 12");
    }

    #[test]
    fn the_json_gets_the_name_beside_the_uid() {
        let (state, named, unnamed) = state();
        let mut doc = json!({"merchant": named.to_string()});
        name_in_json(&state, &mut doc);
        assert_eq!(doc["merchant_name"], "Green Tea House");
        let mut doc = json!({"merchant": unnamed.to_string()});
        name_in_json(&state, &mut doc);
        assert_eq!(doc["merchant_name"], Value::Null);
        let mut doc = json!({"value": 1});
        name_in_json(&state, &mut doc);
        assert!(doc.get("merchant_name").is_none());
        // A producer is named only when it is a merchant the wallet knows by name.
        let mut doc = json!({"producer": named.to_string()});
        name_in_json(&state, &mut doc);
        assert_eq!(doc["merchant_name"], "Green Tea House");
        let mut doc = json!({"producer": unnamed.to_string()});
        name_in_json(&state, &mut doc);
        assert!(doc.get("merchant_name").is_none());
    }
}
