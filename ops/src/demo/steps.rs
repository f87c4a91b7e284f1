//! The ten transactions of protocol.md section 6, in the order a person would follow them,
//! with the [`protections`](super::protections) shown where they fit: each step drives the
//! wallets through the running nodes, records what it did in words (who paid whom, scrip
//! values), never a secret, and goes to the printer the moment it completes.

use std::io::Write;

use anyhow::{Context as _, bail};
use customer_cli::cli::output::{expiry_text, relative};
use customer_cli::client::collect_deliveries;
use shared::bus::Bus as _;
use shared::wire::Label;
use shared::wire::bodies::{OrderId, OrderInfo};
use shared::{Amount, ErrorCode};

use super::DemoError;
use super::checks::Check;
use super::print::Printer;
use super::protections;
use super::setup::{self, BROKER_SCRIP_LIFETIME_SECS, TIMEOUT, World, clock};

/// What a step shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A transaction of section 6 that completed.
    Transaction,
    /// A request a node refused, with the code it must be refused with.
    Refusal(ErrorCode),
    /// A request repeated, answered with the stored reply (section 7).
    Repeat,
}

/// One step as printed: its id, a title, the lines a person reads and what it asserted.
#[derive(Debug, Clone)]
pub struct Step {
    /// The section of protocol.md ("6.2"), or for a protection the section and what it
    /// shows ("6.3-spent").
    pub id: &'static str,
    /// What the step is.
    pub title: &'static str,
    /// What kind of step.
    pub kind: Kind,
    /// What happened.
    pub lines: Vec<String>,
    /// What the step asserted (a protection's refusal code and unchanged nodes); the demo
    /// fails on the first step with a check that did not hold.
    pub checks: Vec<Check>,
}

impl Step {
    /// A completed transaction.
    fn transaction(id: &'static str, title: &'static str, lines: Vec<String>) -> Step {
        Step {
            id,
            title,
            kind: Kind::Transaction,
            lines,
            checks: Vec::new(),
        }
    }
}

/// Hands `step` to the printer; fails the demo, after printing it, if one of its checks
/// did not hold (named with the step's id, e.g. `step 6.3-spent: refused with Spent`).
fn emit<W: Write>(out: &mut Printer<W>, step: Step) -> anyhow::Result<()> {
    let failed: Vec<Check> = step
        .checks
        .iter()
        .filter(|c| !c.held)
        .map(|c| Check {
            name: format!("step {}: {}", step.id, c.name),
            ..c.clone()
        })
        .collect();
    out.step(step).context("writing the output")?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(DemoError::ChecksFailed(failed).into())
    }
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
            .handle_reply(frame, clock())
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
        .send(&mut cust.wallet, out, clock())
        .await
        .with_context(|| format!("{what} ({})", cust.name))?;
    Ok(done.what)
}

/// Runs 6.0 … 6.8 and the protections, handing each step to `out` as it completes.
///
/// # Errors
/// The first transaction that did not complete, named; [`DemoError::ChecksFailed`] for
/// the first protection that did not hold.
pub async fn run_all<W: Write>(w: &mut World, out: &mut Printer<W>) -> anyhow::Result<()> {
    let (alice, bob) = (0, 1);
    let (tea, books) = (0, 1);

    // 6.0: both customers register their keys for their accounts.
    let mut lines = vec![
        "the tea shop and the book shop registered their keys for their accounts at setup"
            .to_owned(),
    ];
    for c in [alice, bob] {
        let req = w.customers[c].wallet.register(clock())?;
        send(w, c, req, "6.0 registration").await?;
        let cust = &w.customers[c];
        lines.push(format!(
            "{} registered key {} for account {}",
            cust.name,
            cust.keys.uid(),
            cust.pan.redacted()
        ));
    }
    emit(out, Step::transaction("6.0", "Peer registration", lines))?;

    // 6.0b: each customer fetches the keys of the merchants it will pay.
    let mut lines = Vec::new();
    for (c, m) in [(alice, tea), (alice, books), (bob, books)] {
        let uid = w.merchant_uid(m);
        let req = w.customers[c].wallet.request_public_key(uid, clock())?;
        send(w, c, req, "6.0b public key").await?;
        lines.push(format!(
            "{} fetched the {}'s public key from the broker",
            w.customers[c].name, w.merchants[m].name
        ));
    }
    emit(out, Step::transaction("6.0b", "Public key request", lines))?;

    // 6.1: BrokerScrip bought from the bank accounts.
    let mut lines = Vec::new();
    for (c, value) in [(alice, 4_000), (bob, 2_000)] {
        let req = w.customers[c]
            .wallet
            .obtain_broker_scrip(amt(value), clock())?;
        send(w, c, req, "6.1 obtain BrokerScrip").await?;
        lines.push(format!(
            "the broker debited {} from {}'s bank account and issued BrokerScrip {}",
            amt(value),
            w.customers[c].name,
            amt(value)
        ));
        lines.push(holdings(w, c));
    }
    emit(out, Step::transaction("6.1", "Obtain BrokerScrip", lines))?;

    // 6.2: BrokerScrip exchanged for VendorScrip (the change comes back from the broker).
    let mut lines = Vec::new();
    for (c, m, value) in [(alice, tea, 1_500), (bob, books, 1_000)] {
        let uid = w.merchant_uid(m);
        let from = w.customers[c]
            .wallet
            .broker_scrip()
            .map(|b| b.scrip.value())
            .unwrap_or(Amount::ZERO);
        let req = w.customers[c]
            .wallet
            .obtain_vendor_scrip(uid, amt(value), clock())?;
        let tx = req.tx;
        send(w, c, req, "6.2 step 1").await?;
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
    emit(
        out,
        Step::transaction("6.2", "Obtain VendorScrip from a merchant", lines),
    )?;

    // 6.3: purchases with change. Alice's VendorScrip before her purchase is kept (with
    // its CustomerSecret, never shown) to present again once it is spent.
    let mut lines = Vec::new();
    let mut spent = None;
    for (c, m, item, name, price, quantity) in [
        (alice, tea, "tea", "Green tea, 100 g", 450, 2),
        (bob, books, "map", "City map", 320, 1),
    ] {
        let uid = w.merchant_uid(m);
        if c == alice {
            let v0 = w.customers[c]
                .wallet
                .scrip(uid)
                .map(|v| v.scrip.clone())
                .context("6.3: alice holds no tea shop VendorScrip")?;
            spent = Some((v0, w.customers[c].wallet.customer_secret(uid)?));
        }
        let order = OrderInfo {
            item_id: item.into(),
            name: name.into(),
            unit_price: amt(price),
            quantity,
            order_id: OrderId::random(),
        };
        let (initiated, purchase) = w.customers[c].wallet.buy_item(uid, order, clock())?;
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
    emit(
        out,
        Step::transaction("6.3", "Buy item (with change)", lines),
    )?;

    // The tea shop's protections (section 4, 6.3 step 3), each refused with nothing changed.
    let (v0, cs_v0) = spent.context("6.3: alice's VendorScrip before her purchase")?;
    emit(
        out,
        protections::spent_scrip(w, alice, tea, &v0, &cs_v0).await?,
    )?;
    drop(cs_v0);
    emit(out, protections::wrong_secret(w, alice, tea).await?)?;
    emit(out, protections::exceeds_scrip(w, alice, tea).await?)?;

    // 6.4: BrokerScrip topped up from the bank.
    let req = w.customers[alice]
        .wallet
        .top_up_broker_scrip(amt(3_500), clock())?;
    send(w, alice, req, "6.4 top up BrokerScrip").await?;
    emit(
        out,
        Step::transaction(
            "6.4",
            "Top up BrokerScrip",
            vec![
                "alice topped up her BrokerScrip to 35.00 with 10.00 from her bank account"
                    .to_owned(),
                holdings(w, alice),
            ],
        ),
    )?;

    // 6.5: VendorScrip topped up with BrokerScrip (the broker escrows, the merchant agrees).
    let uid = w.merchant_uid(tea);
    let req = w.customers[alice]
        .wallet
        .top_up_vendor_scrip(uid, amt(500), clock())?;
    send(w, alice, req, "6.5 step 1").await?;
    take_deliveries(w, alice, 2, "6.5 (broker's decision and new VendorScrip)").await?;
    emit(
        out,
        Step::transaction(
            "6.5",
            "Top up VendorScrip",
            vec![
                "alice paid 5.00 of BrokerScrip through the broker onto her tea shop \
                 VendorScrip; the broker credited the tea shop 5.00"
                    .to_owned(),
                holdings(w, alice),
            ],
        ),
    )?;

    // 6.6: BrokerScrip cashed back into the bank account. Sent here rather than through
    // the client, to keep the request and its reply for the repeat that follows.
    let value = w.customers[alice]
        .wallet
        .broker_scrip()
        .map(|b| b.scrip.value())
        .unwrap_or(Amount::ZERO);
    let req = w.customers[alice].wallet.withdraw_broker_scrip(clock())?;
    let request = req.frame.clone();
    let reply = w
        .bus
        .request(&w.subjects.broker(), req.frame.into(), TIMEOUT)
        .await
        .context("6.6 withdraw BrokerScrip: no reply")?;
    w.customers[alice]
        .wallet
        .handle_reply(&reply, clock())
        .context("6.6 withdraw BrokerScrip (alice)")?;
    emit(
        out,
        Step::transaction(
            "6.6",
            "Withdraw BrokerScrip",
            vec![
                format!("the broker credited alice's bank account {value} for her BrokerScrip"),
                holdings(w, alice),
            ],
        ),
    )?;
    emit(out, protections::replayed(w, alice, request, &reply).await?)?;

    // 6.7: VendorScrip cashed in at the merchant; the broker pays out of its account.
    let value = w.customers[alice]
        .wallet
        .scrip(uid)
        .map(|v| v.scrip.value())
        .unwrap_or(Amount::ZERO);
    let req = w.customers[alice]
        .wallet
        .withdraw_vendor_scrip(uid, clock())?;
    send(w, alice, req, "6.7 step 1").await?;
    take_deliveries(w, alice, 1, "6.7 (the broker's result)").await?;
    emit(
        out,
        Step::transaction(
            "6.7",
            "Withdraw VendorScrip",
            vec![
                format!(
                    "alice cashed in tea shop VendorScrip {value}: the broker moved {value} \
                     from the tea shop's account to hers"
                ),
                holdings(w, alice),
            ],
        ),
    )?;

    // 6.8: Bob's BrokerScrip expires (the broker's lifetime is one hour): refused when he
    // tries to cash it in, then renewed.
    let bkey = w.broker_keys.uid();
    let before = w.customers[bob]
        .wallet
        .broker_scrip()
        .map(|b| (b.scrip.value(), b.scrip.body.expires))
        .context("6.8: bob holds no BrokerScrip")?;
    setup::advance(BROKER_SCRIP_LIFETIME_SECS + 600);
    emit(out, protections::expired(w, bob).await?)?;
    let req = w.customers[bob].wallet.renew(bkey, clock())?;
    send(w, bob, req, "6.8 renew").await?;
    let after = w.customers[bob]
        .wallet
        .broker_scrip()
        .map(|b| b.scrip.body.expires)
        .context("6.8: bob's renewed BrokerScrip")?;
    emit(
        out,
        Step::transaction(
            "6.8",
            "Renew expired scrip",
            vec![
                format!(
                    "bob's BrokerScrip {} expired at {} (lifetime {} s); the clock moved to {}: {}",
                    before.0,
                    shared::UnixSecs::new(before.1).utc(),
                    BROKER_SCRIP_LIFETIME_SECS,
                    clock().utc(),
                    relative(shared::UnixSecs::new(before.1), clock())
                ),
                format!(
                    "the broker renewed it: same value, new expiry {}",
                    expiry_text(shared::UnixSecs::new(after), clock())
                ),
                holdings(w, bob),
            ],
        ),
    )
}
