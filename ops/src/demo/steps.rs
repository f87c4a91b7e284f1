//! The ten transactions of protocol.md section 6, in the order a person would follow them:
//! each step drives the wallets through the running nodes and records what it did in words
//! (who paid whom, scrip values), never a secret.

use anyhow::{Context as _, bail};
use customer_cli::client::collect_deliveries;
use shared::Amount;
use shared::wire::Label;
use shared::wire::bodies::{OrderId, OrderInfo};

use super::setup::{self, BROKER_SCRIP_LIFETIME_SECS, TIMEOUT, World, now};

/// One step as printed: its section, a title, and the lines a person reads.
#[derive(Debug, Clone)]
pub struct Step {
    /// The section of protocol.md ("6.2").
    pub id: &'static str,
    /// What the step is.
    pub title: &'static str,
    /// What happened.
    pub lines: Vec<String>,
}

fn amt(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

/// What customer `c` holds: its BrokerScrip and its VendorScrip, in words.
fn holdings(w: &World, c: usize) -> String {
    let cust = &w.customers[c];
    let mut parts = vec![match cust.wallet.broker_scrip() {
        Some(b) => format!("BrokerScrip {}", b.scrip.value()),
        None => "no BrokerScrip".to_owned(),
    }];
    for m in &w.merchants {
        if let Some(v) = cust.wallet.scrip(m.keys.uid()) {
            parts.push(format!("{} VendorScrip {}", m.name, v.scrip.value()));
        }
    }
    format!("{} now holds {}", cust.name, parts.join(", "))
}

/// Takes `n` deliveries from customer `c`'s peer subject and hands them to its wallet.
async fn take_deliveries(w: &mut World, c: usize, n: usize, what: &str) -> anyhow::Result<()> {
    let cust = &mut w.customers[c];
    let got =
        collect_deliveries::<shared::bus::MemoryBus, _>(&mut cust.deliveries, n, TIMEOUT).await;
    if got.len() != n {
        bail!(
            "{what}: {} of {n} deliveries reached {}",
            got.len(),
            cust.name
        );
    }
    for frame in &got {
        cust.wallet
            .handle_reply(frame, now())
            .with_context(|| format!("{what}: {} handling a delivery", cust.name))?;
    }
    if cust.wallet.pending().count() != 0 {
        bail!("{what}: {} still has a pending request", cust.name);
    }
    Ok(())
}

/// Sends one saved request of customer `c` and takes the reply.
async fn send(
    w: &mut World,
    c: usize,
    out: customer_cli::Outgoing,
    what: &str,
) -> anyhow::Result<customer_cli::core::HistoryKind> {
    let cust = &mut w.customers[c];
    let done = w
        .client
        .send(&mut cust.wallet, out, now())
        .await
        .with_context(|| format!("{what} ({})", cust.name))?;
    Ok(done.what)
}

/// Runs 6.0 … 6.8.
///
/// # Errors
/// The first transaction that did not complete, named.
pub async fn run_all(w: &mut World) -> anyhow::Result<Vec<Step>> {
    let (alice, bob) = (0, 1);
    let (tea, books) = (0, 1);
    let mut steps = Vec::new();

    // 6.0: both customers register their keys for their accounts.
    let mut lines = vec![
        "the tea shop and the book shop registered their keys for their accounts at setup"
            .to_owned(),
    ];
    for c in [alice, bob] {
        let out = w.customers[c].wallet.register(now())?;
        send(w, c, out, "6.0 registration").await?;
        let cust = &w.customers[c];
        lines.push(format!(
            "{} registered key {} for account {}",
            cust.name,
            cust.keys.uid(),
            cust.pan.redacted()
        ));
    }
    steps.push(Step {
        id: "6.0",
        title: "Peer registration",
        lines,
    });

    // 6.0b: each customer fetches the keys of the merchants it will pay.
    let mut lines = Vec::new();
    for (c, m) in [(alice, tea), (alice, books), (bob, books)] {
        let uid = w.merchant_uid(m);
        let out = w.customers[c].wallet.request_public_key(uid, now())?;
        send(w, c, out, "6.0b public key").await?;
        lines.push(format!(
            "{} fetched the {}'s public key from the broker",
            w.customers[c].name, w.merchants[m].name
        ));
    }
    steps.push(Step {
        id: "6.0b",
        title: "Public key request",
        lines,
    });

    // 6.1: BrokerScrip bought from the bank accounts.
    let mut lines = Vec::new();
    for (c, value) in [(alice, 4_000), (bob, 2_000)] {
        let out = w.customers[c]
            .wallet
            .obtain_broker_scrip(amt(value), now())?;
        send(w, c, out, "6.1 obtain BrokerScrip").await?;
        lines.push(format!(
            "the broker debited {} from {}'s bank account and issued BrokerScrip {}",
            amt(value),
            w.customers[c].name,
            amt(value)
        ));
        lines.push(holdings(w, c));
    }
    steps.push(Step {
        id: "6.1",
        title: "Obtain BrokerScrip",
        lines,
    });

    // 6.2: BrokerScrip exchanged for VendorScrip (the change comes back from the broker).
    let mut lines = Vec::new();
    for (c, m, value) in [(alice, tea, 1_500), (bob, books, 1_000)] {
        let uid = w.merchant_uid(m);
        let from = w.customers[c]
            .wallet
            .broker_scrip()
            .map(|b| b.scrip.value())
            .unwrap_or(Amount::ZERO);
        let out = w.customers[c]
            .wallet
            .obtain_vendor_scrip(uid, amt(value), now())?;
        let tx = out.tx;
        send(w, c, out, "6.2 step 1").await?;
        let step2 = w.customers[c]
            .wallet
            .resend(tx, Label::VendorScripRequest)?;
        w.client.publish(&step2).await.context("6.2 step 2")?;
        take_deliveries(w, c, 2, "6.2 (change and VendorScrip)").await?;
        lines.push(format!(
            "{} paid BrokerScrip {from} to the broker for {} of the {}'s VendorScrip; \
             the broker credited the {} {} and returned change {}",
            w.customers[c].name,
            amt(value),
            w.merchants[m].name,
            w.merchants[m].name,
            amt(value),
            from.checked_sub(amt(value)).unwrap_or(Amount::ZERO)
        ));
        lines.push(holdings(w, c));
    }
    steps.push(Step {
        id: "6.2",
        title: "Obtain VendorScrip from a merchant",
        lines,
    });

    // 6.3: purchases with change.
    let mut lines = Vec::new();
    for (c, m, item, name, price, quantity) in [
        (alice, tea, "tea", "Green tea, 100 g", 450, 2),
        (bob, books, "map", "City map", 320, 1),
    ] {
        let uid = w.merchant_uid(m);
        let order = OrderInfo {
            item_id: item.into(),
            name: name.into(),
            unit_price: amt(price),
            quantity,
            order_id: OrderId::random(),
        };
        let (initiated, purchase) = w.customers[c].wallet.buy_item(uid, order, now())?;
        send(w, c, initiated, "6.3 step 1 (announce to the broker)").await?;
        send(w, c, purchase, "6.3 step 2 (pay the merchant)").await?;
        merchant::shell::send_reports(&w.merchants[m].running.addr, &w.bus, &w.subjects, TIMEOUT)
            .await
            .context("6.3 step 5 (the merchant's report)")?;
        lines.push(format!(
            "{} bought {quantity} × {name} at {} from the {} for {} of VendorScrip; \
             the {} reported the purchase to the broker",
            w.customers[c].name,
            amt(price),
            w.merchants[m].name,
            amt(price * quantity),
            w.merchants[m].name
        ));
        lines.push(holdings(w, c));
    }
    steps.push(Step {
        id: "6.3",
        title: "Buy item (with change)",
        lines,
    });

    // 6.4: BrokerScrip topped up from the bank.
    let out = w.customers[alice]
        .wallet
        .top_up_broker_scrip(amt(3_500), now())?;
    send(w, alice, out, "6.4 top up BrokerScrip").await?;
    steps.push(Step {
        id: "6.4",
        title: "Top up BrokerScrip",
        lines: vec![
            "alice topped up her BrokerScrip to 35.00 with 10.00 from her bank account".to_owned(),
            holdings(w, alice),
        ],
    });

    // 6.5: VendorScrip topped up with BrokerScrip (the broker escrows, the merchant agrees).
    let uid = w.merchant_uid(tea);
    let out = w.customers[alice]
        .wallet
        .top_up_vendor_scrip(uid, amt(500), now())?;
    send(w, alice, out, "6.5 step 1").await?;
    take_deliveries(w, alice, 2, "6.5 (broker's decision and new VendorScrip)").await?;
    steps.push(Step {
        id: "6.5",
        title: "Top up VendorScrip",
        lines: vec![
            "alice paid 5.00 of BrokerScrip through the broker onto her tea shop VendorScrip; \
             the broker credited the tea shop 5.00"
                .to_owned(),
            holdings(w, alice),
        ],
    });

    // 6.6: BrokerScrip cashed back into the bank account.
    let value = w.customers[alice]
        .wallet
        .broker_scrip()
        .map(|b| b.scrip.value())
        .unwrap_or(Amount::ZERO);
    let out = w.customers[alice].wallet.withdraw_broker_scrip(now())?;
    send(w, alice, out, "6.6 withdraw BrokerScrip").await?;
    steps.push(Step {
        id: "6.6",
        title: "Withdraw BrokerScrip",
        lines: vec![
            format!("the broker credited alice's bank account {value} for her BrokerScrip"),
            holdings(w, alice),
        ],
    });

    // 6.7: VendorScrip cashed in at the merchant; the broker pays out of its account.
    let value = w.customers[alice]
        .wallet
        .scrip(uid)
        .map(|v| v.scrip.value())
        .unwrap_or(Amount::ZERO);
    let out = w.customers[alice]
        .wallet
        .withdraw_vendor_scrip(uid, now())?;
    send(w, alice, out, "6.7 step 1").await?;
    take_deliveries(w, alice, 1, "6.7 (the broker's result)").await?;
    steps.push(Step {
        id: "6.7",
        title: "Withdraw VendorScrip",
        lines: vec![
            format!(
                "alice cashed in tea shop VendorScrip {value}: the broker moved {value} \
                 from the tea shop's account to hers"
            ),
            holdings(w, alice),
        ],
    });

    // 6.8: Bob's BrokerScrip expires (the broker's lifetime is one hour) and is renewed.
    let bkey = w.broker_keys.uid();
    let before = w.customers[bob]
        .wallet
        .broker_scrip()
        .map(|b| (b.scrip.value(), b.scrip.body.expires))
        .context("6.8: bob holds no BrokerScrip")?;
    setup::advance(BROKER_SCRIP_LIFETIME_SECS + 600);
    let out = w.customers[bob].wallet.renew(bkey, now())?;
    send(w, bob, out, "6.8 renew").await?;
    let after = w.customers[bob]
        .wallet
        .broker_scrip()
        .map(|b| b.scrip.body.expires)
        .context("6.8: bob's renewed BrokerScrip")?;
    steps.push(Step {
        id: "6.8",
        title: "Renew expired scrip",
        lines: vec![
            format!(
                "bob's BrokerScrip {} expired at {} (lifetime {} s); the clock moved to {}",
                before.0,
                before.1,
                BROKER_SCRIP_LIFETIME_SECS,
                now()
            ),
            format!("the broker renewed it: same value, new expiry {after}"),
            holdings(w, bob),
        ],
    });
    Ok(steps)
}
