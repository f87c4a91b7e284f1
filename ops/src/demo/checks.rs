//! The final checks of the demo (protocol.md section 5, "Conservation", and the replay rule
//! of architecture.md): the nodes are stopped and closed, every log's hash chain is
//! verified, every file reopened must give the state it had, and the money must add up.

use anyhow::Context as _;
use broker::node::BrokerNode;
use customer_cli::Wallet;
use merchant::node::MerchantNode;
use shared::events::Account;
use shared::node::LiveScrip;
use shared::{Amount, Uid};

use super::setup::{TIMEOUT, World};

/// What the checks found: each named check and whether it held, plus the final balances.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// (check, held).
    pub results: Vec<(String, bool)>,
    /// Bank balances by holder: (name, redacted PAN, minor units).
    pub bank: Vec<(String, String, i128)>,
    /// float:broker, minor units.
    pub float_broker: i128,
    /// float:vendor:M by merchant name, with the merchant's live VendorScrip.
    pub float_vendor: Vec<(String, i128, u64)>,
    /// Sum of every broker account, minor units (zero when conserved).
    pub broker_sum: i128,
    /// One redb file per node, relative to the data directory.
    pub files: Vec<String>,
}

impl Checks {
    fn check(&mut self, name: impl Into<String>, held: bool) {
        self.results.push((name.into(), held));
    }

    /// The names of the failed checks, comma-separated, or `None` when all held.
    #[must_use]
    pub fn failures(&self) -> Option<String> {
        let failed: Vec<&str> = self
            .results
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| n.as_str())
            .collect();
        (!failed.is_empty()).then(|| failed.join(", "))
    }
}

/// Whether every scrip in `wallet` issued by `producer` is live in `live`, owned by the
/// wallet, with the same body, and every live scrip the producer holds for the wallet is in
/// the wallet.
fn wallet_matches(wallet: &Wallet, producer: Uid, live: &LiveScrip) -> bool {
    let me = wallet.uid();
    let held: Vec<_> = wallet
        .state()
        .scrip
        .iter()
        .filter(|(p, _)| **p == producer)
        .map(|(_, s)| s)
        .collect();
    let all_live = held.iter().all(|s| {
        live.get(&s.scrip.id())
            .is_some_and(|r| r.owner == me && r.body == s.scrip.body)
    });
    all_live && live.owned_by(&me).count() == held.len()
}

/// Stops every node, then runs every check.
///
/// # Errors
/// A node that could not be stopped, closed or reopened (a failed check is not an error
/// here: it is reported in [`Checks`]).
pub async fn finish(w: World) -> anyhow::Result<Checks> {
    let mut checks = Checks::default();
    let mut merchants: Vec<(String, Uid, MerchantNode, std::path::PathBuf)> = Vec::new();
    for m in w.merchants {
        merchant::shell::send_reports(&m.running.addr, &w.bus, &w.subjects, TIMEOUT)
            .await
            .with_context(|| format!("the {}'s last reports", m.name))?;
        let node = m
            .running
            .stop()
            .await
            .with_context(|| format!("stopping the {}", m.name))?;
        merchants.push((m.name.to_owned(), m.keys.uid(), node, m.path));
    }
    let broker = w.broker.stop().await.context("stopping the broker")?;

    // Conservation at the broker.
    let state = broker.state().clone();
    checks.check(
        "broker accounts sum to zero, none negative",
        state.check_conserved().is_ok(),
    );
    for (name, pan) in &w.accounts {
        let b = state.balance(&Account::Bank(pan.clone()));
        checks.check(format!("bank:{name} not negative"), b >= 0);
        checks.bank.push(((*name).to_owned(), pan.redacted(), b));
    }
    checks.float_broker = state.balance(&Account::FloatBroker);
    checks.check("float:broker not negative", checks.float_broker >= 0);
    checks.check(
        "float:broker equals the live BrokerScrip",
        state.live.iter().try_fold(0_i128, |acc, (_, r)| {
            Some(acc + i128::from(r.body.value.minor()))
        }) == Some(checks.float_broker),
    );
    for (name, uid, node, _) in &merchants {
        let live = node.state().live_value().map_or(u64::MAX, Amount::minor);
        let memo = state.memo(uid);
        checks.check(
            format!("memo float:vendor:{name} equals its live VendorScrip"),
            memo == i128::from(live),
        );
        checks.check(
            format!("{name}: tables match its log"),
            node.check_tables().is_ok(),
        );
        checks.float_vendor.push((name.clone(), memo, live));
    }
    checks.broker_sum = state.accounts.values().sum();

    // Each wallet's scrip matches the producers' live tables.
    for c in &w.customers {
        checks.check(
            format!("{}'s BrokerScrip matches the broker's live table", c.name),
            wallet_matches(&c.wallet, w.broker_keys.uid(), &state.live),
        );
        for (name, uid, node, _) in &merchants {
            checks.check(
                format!("{}'s {name} VendorScrip matches its live table", c.name),
                wallet_matches(&c.wallet, *uid, &node.state().tables.live),
            );
        }
    }

    // Replay: every chain verifies, every file reopened gives the state it had.
    checks.check("broker log chain", broker.log().verify_chain().is_ok());
    close_broker(broker)?;
    let reopened = BrokerNode::open(
        &w.broker_path,
        w.broker_keys.clone(),
        w.broker_root.clone(),
        w.broker_config,
    )
    .context("reopening the broker's file")?;
    checks.check("broker replay equals its state", reopened.state() == &state);
    close_broker(reopened)?;
    for (name, _, node, path) in merchants {
        checks.check(
            format!("{name} log chain"),
            node.log().verify_chain().is_ok(),
        );
        let tables = node.state().tables.clone();
        let (keys, config) = node
            .close()
            .with_context(|| format!("closing the {name}"))?;
        let peers = [w.broker_keys.public().clone()]
            .into_iter()
            .chain(w.customers.iter().map(|c| c.keys.public().clone()));
        let reopened = MerchantNode::open(&path, keys, config, peers)
            .with_context(|| format!("reopening the {name}'s file"))?;
        checks.check(
            format!("{name} replay equals its tables"),
            reopened.state().tables == tables,
        );
        reopened
            .close()
            .with_context(|| format!("closing the {name}"))?;
    }
    for c in w.customers {
        checks.check(
            format!("{}'s wallet log chain", c.name),
            c.wallet.log().verify_chain().is_ok(),
        );
        let wallet_state = c.wallet.state().clone();
        drop(c.wallet);
        let reopened = Wallet::open(&c.path, c.keys.clone())
            .with_context(|| format!("reopening {}'s wallet", c.name))?;
        checks.check(
            format!("{}'s wallet replay equals its state", c.name),
            reopened.check_tables().is_ok() && reopened.state() == &wallet_state,
        );
    }
    checks.files = redb_files(&w.dir)?;
    Ok(checks)
}

fn close_broker(node: BrokerNode) -> anyhow::Result<()> {
    node.close().context("closing the broker")
}

/// Every `*.redb` file under `dir`, relative, sorted.
fn redb_files(dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let sub = entry?.path();
        if sub.is_dir() {
            for f in std::fs::read_dir(&sub)? {
                let f = f?.path();
                if f.extension().is_some_and(|e| e == "redb")
                    && let Ok(rel) = f.strip_prefix(dir)
                {
                    out.push(rel.display().to_string());
                }
            }
        }
    }
    out.sort();
    Ok(out)
}
