//! The checks of the demo: what each refusal step asserts, and the final checks after the
//! nodes stop (protocol.md section 5, "Conservation", and the replay rule of
//! architecture.md): every log's hash chain verifies, every file reopened gives the state it
//! had, and the money adds up. A [`Check`] that does not hold fails the demo with
//! [`super::DemoError::ChecksFailed`], naming it.
//!
//! The broker's books are checked by [`broker_books`], a pure function of the broker's
//! state, so that a broken state can be fed to it in a unit test.

use anyhow::Context as _;
use broker::core::State as BrokerState;
use broker::node::BrokerNode;
use customer_cli::Wallet;
use merchant::node::MerchantNode;
use shared::events::Account;
use shared::node::LiveScrip;
use shared::{Amount, Pan, Uid};

use super::setup::{TIMEOUT, World};

/// One named check and whether it held; `detail` says what was found when it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, as the output names it.
    pub name: String,
    /// Whether it held.
    pub held: bool,
    /// What was found instead, when it did not hold (never a secret).
    pub detail: Option<String>,
}

impl Check {
    /// A check that held when `result` is `Ok`; the `Err` text is its detail.
    #[must_use]
    pub fn new(name: impl Into<String>, result: Result<(), String>) -> Check {
        let (held, detail) = match result {
            Ok(()) => (true, None),
            Err(d) => (false, Some(d)),
        };
        Check {
            name: name.into(),
            held,
            detail,
        }
    }

    /// A check that held when `held`; `detail` is used only when it did not.
    #[must_use]
    pub fn that(name: impl Into<String>, held: bool, detail: impl FnOnce() -> String) -> Check {
        Check::new(name, if held { Ok(()) } else { Err(detail()) })
    }
}

impl std::fmt::Display for Check {
    /// `name`, or `name (detail)` for a check that did not hold.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(d) if !self.held => write!(f, "{} ({d})", self.name),
            _ => f.write_str(&self.name),
        }
    }
}

/// The final checks and balances.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// Every check, in the order run.
    pub results: Vec<Check>,
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
        self.results
            .push(Check::that(name, held, || "it did not".to_owned()));
    }

    fn record(&mut self, name: impl Into<String>, result: Result<(), String>) {
        self.results.push(Check::new(name, result));
    }

    /// The checks that did not hold, in order (empty when all held).
    #[must_use]
    pub fn failures(&self) -> Vec<Check> {
        self.results.iter().filter(|c| !c.held).cloned().collect()
    }
}

/// What the broker's books must show at the end (section 5): its accounts sum to zero and
/// none is negative (`State::check_conserved`), every bank account of the demo is not
/// negative, float:broker equals the live BrokerScrip, and each merchant's memo
/// float:vendor equals the VendorScrip it holds live (`vendor`: name, UID, live value;
/// `None` when the live total does not fit an amount).
#[must_use]
pub fn broker_books(
    state: &BrokerState,
    accounts: &[(&str, Pan)],
    vendor: &[(String, Uid, Option<Amount>)],
) -> Checks {
    let mut checks = Checks::default();
    checks.record(
        "broker accounts sum to zero, none negative",
        state.check_conserved().map_err(|e| e.to_string()),
    );
    for (name, pan) in accounts {
        let b = state.balance(&Account::Bank(pan.clone()));
        checks.results.push(Check::that(
            format!("bank:{name} not negative"),
            b >= 0,
            || format!("it is {b}"),
        ));
        checks.bank.push(((*name).to_owned(), pan.redacted(), b));
    }
    checks.float_broker = state.balance(&Account::FloatBroker);
    let float = checks.float_broker;
    checks
        .results
        .push(Check::that("float:broker not negative", float >= 0, || {
            format!("it is {float}")
        }));
    let live = state.live.iter().try_fold(0_i128, |acc, (_, r)| {
        acc.checked_add(i128::from(r.body.value.minor()))
    });
    checks.results.push(Check::that(
        "float:broker equals the live BrokerScrip",
        live == Some(float),
        || format!("float:broker is {float}, the live BrokerScrip {live:?}"),
    ));
    for (name, uid, live) in vendor {
        let memo = state.memo(uid);
        let live_minor = live.map_or(u64::MAX, Amount::minor);
        checks.results.push(Check::that(
            format!("memo float:vendor:{name} equals its live VendorScrip"),
            live.is_some() && memo == i128::from(live_minor),
            || format!("the memo is {memo}, the live VendorScrip {live:?}"),
        ));
        checks.float_vendor.push((name.clone(), memo, live_minor));
    }
    checks.broker_sum = state.accounts.values().sum();
    checks
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
    let vendor: Vec<_> = merchants
        .iter()
        .map(|(name, uid, node, _)| (name.clone(), *uid, node.state().live_value().ok()))
        .collect();
    let mut checks = broker_books(&state, &w.accounts, &vendor);
    for (name, _, node, _) in &merchants {
        checks.record(
            format!("{name}: tables match its log"),
            node.check_tables().map_err(|e| e.to_string()),
        );
    }

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
    checks.record(
        "broker log chain",
        broker
            .log()
            .verify_chain()
            .map(drop)
            .map_err(|e| e.to_string()),
    );
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
    let merchant_paths: Vec<_> = merchants.iter().map(|(.., path)| path.clone()).collect();
    for (name, _, node, path) in merchants {
        checks.record(
            format!("{name} log chain"),
            node.log()
                .verify_chain()
                .map(drop)
                .map_err(|e| e.to_string()),
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
    let wallet_paths: Vec<_> = w.customers.iter().map(|c| c.path.clone()).collect();
    for c in w.customers {
        checks.record(
            format!("{}'s wallet log chain", c.name),
            c.wallet
                .log()
                .verify_chain()
                .map(drop)
                .map_err(|e| e.to_string()),
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
    // Every log audited as an arbiter would, from the log and public keys only:
    // the broker's key pinned, the peers' keys from the broker's registrations.
    let logs = std::iter::once(w.broker_path.clone())
        .chain(merchant_paths.iter().cloned())
        .chain(wallet_paths.iter().cloned());
    for path in logs {
        let options = crate::audit::Options {
            keys: None,
            broker_log: Some(w.broker_path.clone()),
            progress: false,
            pinned: vec![w.broker_keys.public().clone()],
        };
        let name = path.parent().and_then(|dir| dir.file_name()).map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        checks.record(
            format!("audit of {name}'s log: chain, signatures, ledger, invariants, replay"),
            crate::audit::audit_with(&path, &options)
                .map_err(|e| e.to_string())
                .and_then(|report| match report.finding {
                    None => Ok(()),
                    Some(finding) => Err(finding.to_string()),
                }),
        );
    }
    // Across the logs, every file closed: the demo ends with a reconcile.
    checks.record(
        "reconcile: the broker's, merchants' and wallets' logs agree",
        crate::reconcile::reconcile(&w.broker_path, &merchant_paths, &wallet_paths)
            .map_err(|e| e.to_string())
            .and_then(|report| {
                if report.ok() {
                    Ok(())
                } else {
                    Err(report
                        .mismatches
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "))
                }
            }),
    );
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use shared::Suite;

    const ALICE: &str = "GR1601101250000000012300695";

    /// A broker state where alice's deposit of 100.00 sits in her bank account.
    fn books() -> (BrokerState, Vec<(&'static str, Pan)>) {
        let mut state = BrokerState::new(Suite::Paper);
        let pan = Pan::new(ALICE);
        state.accounts.insert(Account::External, -10_000);
        state.accounts.insert(Account::Bank(pan.clone()), 10_000);
        (state, vec![("alice", pan)])
    }

    fn failed_names(checks: &Checks) -> Vec<String> {
        checks.failures().into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn sound_books_pass_every_check() {
        let (state, accounts) = books();
        let checks = broker_books(&state, &accounts, &[]);
        assert_eq!(failed_names(&checks), Vec::<String>::new());
        assert_eq!(checks.broker_sum, 0);
        assert_eq!(
            checks.bank,
            [("alice".to_owned(), "…0695".to_owned(), 10_000)]
        );
    }

    /// Money created from nothing: the sum is not zero, and the check says by how much.
    #[test]
    fn a_state_whose_accounts_do_not_sum_to_zero_fails_naming_the_check() {
        let (mut state, accounts) = books();
        state
            .accounts
            .insert(Account::Bank(Pan::new(ALICE)), 10_050);
        let checks = broker_books(&state, &accounts, &[]);
        let failed = checks.failures();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].name, "broker accounts sum to zero, none negative");
        assert_eq!(
            failed[0].detail.as_deref(),
            Some("accounts sum to 50, not zero")
        );
        assert_eq!(checks.broker_sum, 50);
        // The demo's failure names it and exits with the check-failed code.
        let err = super::super::DemoError::ChecksFailed(failed);
        assert_eq!(
            err.to_string(),
            "check failed: broker accounts sum to zero, none negative \
             (accounts sum to 50, not zero)"
        );
        assert_eq!(err.exit(), customer_cli::cli::exit::Exit::Refused);
    }

    /// A negative bank account, a float:broker without live scrip behind it, and a memo
    /// that disagrees with the merchant's live VendorScrip: each named.
    #[test]
    fn negative_accounts_and_floats_that_disagree_fail_each_check() {
        let (mut state, accounts) = books();
        state.accounts.insert(Account::Bank(Pan::new(ALICE)), -500);
        state.accounts.insert(Account::FloatBroker, 10_500);
        let merchant = Uid([7; 16]);
        state.memos.insert(merchant, 300);
        let vendor = [(
            "tea shop".to_owned(),
            merchant,
            Some(Amount::from_minor(200)),
        )];
        let checks = broker_books(&state, &accounts, &vendor);
        assert_eq!(
            failed_names(&checks),
            [
                "broker accounts sum to zero, none negative",
                "bank:alice not negative",
                "float:broker equals the live BrokerScrip",
                "memo float:vendor:tea shop equals its live VendorScrip",
            ]
        );
        let err = super::super::DemoError::ChecksFailed(checks.failures());
        assert!(err.to_string().starts_with("4 checks failed: "), "{err}");
        assert!(
            err.to_string()
                .contains("bank:alice not negative (it is -500)")
        );
    }
}
