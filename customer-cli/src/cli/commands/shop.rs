//! `peerscrip shop <merchant>` and `peerscrip buy <merchant> <item>`: the merchant's
//! signed catalogue (the extension of docs/adr/0009) and a purchase from it (protocol.md
//! 6.3: `PurchaseInitiated` to the broker, then `PurchaseRequest` to the merchant, whose
//! reply brings the change).
//!
//! `buy` takes the item's name and unit price from the catalogue just fetched and verified,
//! so the `OI` the customer signs repeats the merchant's listing exactly; an item not
//! listed is refused by the wallet before anything is saved.

use serde_json::json;
use shared::Uid;
use shared::wire::bodies::{OrderId, OrderInfo};

use super::merchants::{label, name_json};
use crate::cli::exit::CliError;
use crate::cli::output::{Done, amount_json};
use crate::cli::session::{Session, now};
use crate::core::HistoryKind;
use crate::core::catalogue::Listing;

/// Fetches and verifies `merchant`'s catalogue (its key fetched from the broker first if
/// the wallet lacks it), and remembers the name the merchant signed into it
/// (docs/adr/0016).
pub async fn listing(session: &mut Session, merchant: Uid) -> Result<Listing, CliError> {
    session.ensure_peer_key(merchant).await?;
    session
        .progress
        .step("asking the merchant for its catalogue");
    let (query, out) = session.wallet.catalogue_query(merchant)?;
    let answer = session
        .client
        .ask(&out)
        .await
        .map_err(|e| CliError::from_client(e, "the merchant", out.tx, false))?;
    let listing = session
        .wallet
        .handle_catalogue(&query, &answer)
        .map_err(|e| CliError::from_wallet(e, Some(out.tx)))?;
    if let Some(name) = &listing.name {
        session
            .wallet
            .remember_names([(&merchant, name)], now())
            .map_err(|e| CliError::from_wallet(e, None))?;
    }
    Ok(listing)
}

/// `shop`: the catalogue.
pub async fn shop(session: &mut Session, merchant: Uid) -> Result<Done, CliError> {
    let listing = listing(session, merchant).await?;
    let mut lines = vec![format!(
        "catalogue of {}:",
        label(session.wallet.state(), merchant)
    )];
    for item in &listing.items {
        lines.push(format!(
            "  {:<16} {:<32} {:>10}",
            item.id,
            item.name,
            item.unit_price.to_string()
        ));
    }
    if listing.omitted > 0 {
        lines.push(format!(
            "  … and {} more items that did not fit one answer",
            listing.omitted
        ));
    }
    lines.push(format!(
        "buy with: peerscrip buy {merchant} <item> [--qty N]"
    ));
    Ok(Done::new(
        lines,
        json!({
            "command": "shop",
            "merchant": merchant.to_string(),
            "merchant_name": name_json(session.wallet.state(), merchant),
            "items": listing.items.iter().map(|i| json!({
                "id": i.id, "name": i.name, "unit_price": amount_json(i.unit_price),
            })).collect::<Vec<_>>(),
            "omitted": listing.omitted,
        }),
    ))
}

/// `buy`: 6.3 with the VendorScrip of `merchant`.
pub async fn buy(
    session: &mut Session,
    merchant: Uid,
    item_id: &str,
    quantity: u64,
) -> Result<Done, CliError> {
    if quantity == 0 {
        return Err(CliError::Usage("--qty must be at least 1".to_owned()));
    }
    let listing = listing(session, merchant).await?;
    let item = listing.item(item_id).ok_or_else(|| {
        CliError::WalletRefused(format!(
            "{merchant} lists no item {item_id:?} (see `peerscrip shop {merchant}`)"
        ))
    })?;
    let order = OrderInfo {
        item_id: item.id.clone(),
        name: item.name.clone(),
        unit_price: item.unit_price,
        quantity,
        order_id: OrderId::random(),
    };
    let (name, unit_price) = (item.name.clone(), item.unit_price);
    // Step 2's frame is rendered while step 1 is in flight.
    let (initiated, purchase) = session.wallet.start_buy(merchant, order, now())?;
    let tx = initiated.tx;
    session
        .send(initiated, "6.3 step 1: telling the broker of the purchase")
        .await?;
    let purchase = purchase.outgoing().await?;
    let entry = session
        .send(purchase, "6.3 step 2: paying the merchant")
        .await?;
    let HistoryKind::ItemBought { paid, change, .. } = entry.what else {
        return Err(CliError::Failed(format!(
            "the purchase recorded {:?}",
            entry.what
        )));
    };
    let shown = label(session.wallet.state(), merchant);
    Ok(Done::new(
        vec![
            format!("bought {quantity} × {name} at {unit_price} from {shown} for {paid}"),
            format!("change: VendorScrip {change} (tx {tx})"),
        ],
        json!({
            "command": "buy",
            "tx": tx.to_string(),
            "merchant": merchant.to_string(),
            "merchant_name": name_json(session.wallet.state(), merchant),
            "item": item_id,
            "name": name,
            "quantity": quantity,
            "unit_price": amount_json(unit_price),
            "paid": amount_json(paid),
            "change": amount_json(change),
        }),
    ))
}
