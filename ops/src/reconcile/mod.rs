//! `peerscrip-ops reconcile`: the cross-party checks, reading only the logs of a
//! broker, its merchants and (optionally) customer wallets.
//!
//! Why across logs: each node's own audit (`peerscrip-ops audit`) proves that its log is
//! intact and that its tables follow from it, but a node can only vouch for itself. Value
//! that leaves one party must arrive at the other; that is seen only by putting the two
//! logs side by side. Each log is folded with its node's own state (`broker::core::State`,
//! `merchant::core::State`, `customer_cli::core::WalletState`), the one code that gives its
//! events their meaning, after its hash chain is verified (protocol.md section 8).
//!
//! The checks, each named by a [`Check`] in a [`Mismatch`] with its tx:
//! 1. every exchange the broker authorized (6.2 step 4, `ExchangeAuthorized`) has the
//!    VendorScrip the merchant issued in the same tx (`VendorScripIssued`, step 7), to the
//!    same customer, of the same value, and no VendorScrip was issued without one;
//! 2. every `PurchaseRecorded` at the broker (6.3 step 5) has the merchant's `PurchaseMade`
//!    (step 3) of the same customer and `W_P`, and vice versa;
//! 3. every VendorScrip top-up the broker settled (6.5 step 4, `VendorTopUpSettled`) has
//!    the merchant's `VendorScripToppedUp` (step 5) adding `W_V`, and vice versa;
//! 4. every VendorScrip withdrawal the broker paid (6.7 step 3, `VendorScripRedeemed`) has
//!    the merchant's `VendorScripWithdrawn` (step 4) of `W`, and vice versa;
//! 5. the broker's memo `float:vendor:M` (section 5) equals M's live VendorScrip plus the
//!    amounts in flight between the two (below);
//! 6. each wallet's history agrees with both: every value-moving line (6.1 to 6.8) is the
//!    event the broker or the merchant logged in that tx, and every such event naming the
//!    customer is in the wallet's history.
//!
//! In flight: a transaction one side has completed and the other, by its own log, still
//! waits to complete (section 7: a party repeats its request until it has the answer). The
//! merchant's log says so itself: an `awaiting` decision of the broker it has not acted on
//! (6.2, 6.5, 6.7), or an `unreported` purchase (6.3 step 5). These are listed, not
//! counted as mismatches, and enter the float check with their sign. A wallet request
//! without a recorded outcome is in flight the same way. A lapse (section 4, docs/adr/0011)
//! is in flight between the merchant's `ScripLapsed` and the broker's `VendorScripLapsed`:
//! a notice the broker has not recorded yet (the merchant's `Awaiting::Lapse`) counts its
//! value, and a scrip the broker recorded as lapsed that the merchant's live table still
//! holds counts it the other way.
//!
//! Stuck: what is in flight must end (section 7: a party repeats its request until it has
//! the answer; the broker decides every deadline). Something in flight for longer than
//! [`Options::max_age_secs`] (default [`DEFAULT_MAX_AGE_SECS`], far beyond every deadline
//! of section 6 and every retry interval of the nodes) is a mismatch, [`Check::Stuck`],
//! with its tx and amount. Its age is measured against the logs themselves: from the event
//! that began the wait to the last event of all the logs given, so a reconciliation of
//! old logs judges them as of their own end, never the wall clock. So is a wallet that
//! still holds a scrip whose lapse the broker recorded (its value is back at the bank):
//! in flight until the wallet next presents it, stuck past the same age.
//!
//! The code: `facts` reads each log into the facts the others can check,
//! `with_merchant` holds checks 1 to 5, `with_wallet` check 6, `print` the report.

mod facts;
mod print;
mod with_merchant;
mod with_wallet;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use shared::events::{Event, EventLog, LogError};
use shared::machine::IllegalEvent;
use shared::node::{Recorded, SentFrame};
use shared::wire::Frame;
use shared::{Amount, ScripId, TxId, Uid, UnixMillis};

use crate::audit::signed_amount;
use facts::{
    BrokerLog, Fact, Facts, MerchantLog, WalletLog, read_broker, read_merchant, read_wallet,
};
pub use print::print;
use with_merchant::reconcile_merchant;
use with_wallet::reconcile_wallet;

/// The wallet's log file in its directory (the wallet CLI's `wallet.redb`,
/// customer-cli/src/cli/config.rs).
pub const WALLET_FILE: &str = "wallet.redb";

/// How long something may stay in flight before it is [`Check::Stuck`], by default: an
/// hour, against the protocol's deadlines of minutes (6.2, 6.5, 6.7) and the nodes' retry
/// intervals of seconds.
pub const DEFAULT_MAX_AGE_SECS: u64 = 3600;

/// What the reconciliation is asked to tolerate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The longest a transaction may stay in flight (see the module doc).
    pub max_age_secs: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_age_secs: DEFAULT_MAX_AGE_SECS,
        }
    }
}

/// Which cross-party check found a mismatch (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    /// The broker's memo `float:vendor:M` differs from M's live VendorScrip plus in flight.
    FloatVendor,
    /// The broker authorized an exchange; the merchant issued no VendorScrip for it.
    VendorScripNotIssued,
    /// The merchant issued VendorScrip the broker never authorized.
    VendorScripUnauthorized,
    /// Both logged the exchange, with another customer or value.
    VendorScripDiffers,
    /// The broker recorded a purchase the merchant never made.
    PurchaseNotMade,
    /// The merchant made a purchase the broker never recorded.
    PurchaseNotRecorded,
    /// Both logged the purchase, with another customer or value.
    PurchaseDiffers,
    /// The broker settled a VendorScrip top-up the merchant never applied.
    TopUpNotApplied,
    /// The merchant topped up VendorScrip with no settlement by the broker.
    TopUpUnsettled,
    /// Both logged the top-up, with another customer or value.
    TopUpDiffers,
    /// The broker paid out a VendorScrip withdrawal the merchant never spent.
    WithdrawalNotSpent,
    /// The merchant spent VendorScrip for a withdrawal the broker never paid.
    WithdrawalNotPaid,
    /// Both logged the withdrawal, with another customer or value.
    WithdrawalDiffers,
    /// A line of the wallet's history that the node's log does not show (or shows
    /// otherwise).
    WalletHistory,
    /// A node's event for this customer that the wallet's history does not show.
    MissingFromWallet,
    /// In flight for longer than the protocol allows (see the module doc).
    Stuck,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::FloatVendor => "float-vendor",
            Check::VendorScripNotIssued => "vendor-scrip-not-issued",
            Check::VendorScripUnauthorized => "vendor-scrip-unauthorized",
            Check::VendorScripDiffers => "vendor-scrip-differs",
            Check::PurchaseNotMade => "purchase-not-made",
            Check::PurchaseNotRecorded => "purchase-not-recorded",
            Check::PurchaseDiffers => "purchase-differs",
            Check::TopUpNotApplied => "top-up-not-applied",
            Check::TopUpUnsettled => "top-up-unsettled",
            Check::TopUpDiffers => "top-up-differs",
            Check::WithdrawalNotSpent => "withdrawal-not-spent",
            Check::WithdrawalNotPaid => "withdrawal-not-paid",
            Check::WithdrawalDiffers => "withdrawal-differs",
            Check::WalletHistory => "wallet-history",
            Check::MissingFromWallet => "missing-from-wallet",
            Check::Stuck => "stuck",
        })
    }
}

/// One thing two logs disagree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The transaction (none for the float check, which is over all of them).
    pub tx: Option<TxId>,
    /// The check.
    pub check: Check,
    /// The merchant (or, for a wallet check, the wallet's customer) concerned.
    pub party: Uid,
    /// What one log says.
    pub expected: String,
    /// What the other says.
    pub found: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tx {
            Some(tx) => write!(f, "tx {tx}")?,
            None => f.write_str("all txs")?,
        }
        write!(
            f,
            ": {} ({}): expected {}, found {}",
            self.check, self.party, self.expected, self.found
        )
    }
}

/// A transaction one side completed and the other still waits to complete, by its own log
/// (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// The transaction.
    pub tx: TxId,
    /// The merchant.
    pub merchant: Uid,
    /// What is in flight, in words.
    pub what: String,
    /// Its effect on `memo − live` (minor units): positive when the memo counts value the
    /// merchant's live table does not hold yet; 0 for a wallet's scrip, which no float
    /// counts.
    pub amount: i128,
    /// When it began: the time of the event that left a party waiting.
    pub since: UnixMillis,
}

/// The float check of one merchant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantSummary {
    /// Its log.
    pub path: PathBuf,
    /// Its UID (the sender of the frames it logged).
    pub uid: Uid,
    /// The broker's memo `float:vendor:M`.
    pub memo: i128,
    /// The value of M's live VendorScrip (minor units).
    pub live: i128,
    /// The sum of in-flight amounts.
    pub in_flight: i128,
}

/// What was read of one wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletSummary {
    /// Its log.
    pub path: PathBuf,
    /// The customer.
    pub uid: Uid,
    /// History lines compared with a node's log.
    pub compared: u64,
    /// History lines about a merchant whose log was not given, not compared.
    pub skipped: u64,
}

/// What a reconciliation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The broker's log.
    pub broker: PathBuf,
    /// Each merchant's float check.
    pub merchants: Vec<MerchantSummary>,
    /// Each wallet.
    pub wallets: Vec<WalletSummary>,
    /// Exchanges, purchases, top-ups and withdrawals matched between broker and merchant.
    pub matched: u64,
    /// What is in flight.
    pub in_flight: Vec<InFlight>,
    /// The time the logs end: the latest event of all of them, against which the age of
    /// what is in flight is measured.
    pub as_of: UnixMillis,
    /// Every mismatch, in check order within each merchant, then wallets.
    pub mismatches: Vec<Mismatch>,
}

impl Report {
    /// Whether every check held.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Why the reconciliation could not run (as opposed to a [`Mismatch`] in the logs).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A log could not be opened or read.
    #[error("{path}: {source}")]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        source: LogError,
    },
    /// A log given as one kind of node is another's.
    #[error("{path} is a {found} log, given as a {expected} log")]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// The kind its place on the command line says.
        expected: &'static str,
        /// The kind it records.
        found: String,
    },
    /// A log's hash chain does not verify: audit it (`peerscrip-ops audit`) first.
    #[error("{path}: the hash chain does not verify ({source}); run `peerscrip-ops audit` on it")]
    Chain {
        /// The file.
        path: PathBuf,
        /// Where it breaks.
        source: LogError,
    },
    /// A log that moves a three-party transaction out of order: its node's own transition
    /// function refuses one of its events, so its state cannot be read from it.
    #[error("{path}: {source}; run `peerscrip-ops audit` on it")]
    Illegal {
        /// The file.
        path: PathBuf,
        /// The first event refused.
        source: IllegalEvent,
    },
    /// A broker log with no frame sent, so no UID (it registered nobody).
    #[error("{path}: the broker log has sent no frame, so its UID is unknown")]
    NoBrokerUid {
        /// The file.
        path: PathBuf,
    },
    /// A merchant log with no frame sent, so no UID to reconcile it under.
    #[error("{path}: the merchant log has sent no frame, so its UID is unknown")]
    NoMerchantUid {
        /// The file.
        path: PathBuf,
    },
    /// A wallet log with no identity, or whose events do not fold.
    #[error("{path}: {reason}")]
    Wallet {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The error a reconciliation with mismatches ends the command with (exit 3, refused: a
/// check did not hold; `customer_cli::cli::exit::Exit`).
#[derive(Debug, thiserror::Error)]
#[error("reconcile: {} mismatch(es)", .0)]
pub struct Disagreed(pub usize);

/// Reconciles the broker's log at `broker` with the merchants' and wallets' logs (each a
/// log file or a node's data directory), see the module doc, with the default [`Options`].
pub fn reconcile(
    broker: &Path,
    merchants: &[PathBuf],
    wallets: &[PathBuf],
) -> Result<Report, ReconcileError> {
    reconcile_with(broker, merchants, wallets, Options::default())
}

/// [`reconcile`] with `options`.
pub fn reconcile_with(
    broker: &Path,
    merchants: &[PathBuf],
    wallets: &[PathBuf],
    options: Options,
) -> Result<Report, ReconcileError> {
    let (broker_path, b) = read_broker(broker)?;
    let ms = merchants
        .iter()
        .map(|p| read_merchant(p))
        .collect::<Result<Vec<_>, _>>()?;
    let ws = wallets
        .iter()
        .map(|p| read_wallet(p))
        .collect::<Result<Vec<_>, _>>()?;
    let as_of = std::iter::once(b.end)
        .chain(ms.iter().map(|m| m.end))
        .chain(ws.iter().map(|w| w.end))
        .max()
        .unwrap_or(UnixMillis::EPOCH);
    let mut report = Report {
        broker: broker_path,
        merchants: Vec::new(),
        wallets: Vec::new(),
        matched: 0,
        in_flight: Vec::new(),
        mismatches: Vec::new(),
        as_of,
    };
    for m in &ms {
        let summary = reconcile_merchant(&b, m, &mut report);
        report.merchants.push(summary);
    }
    let given: BTreeMap<Uid, &MerchantLog> = ms.iter().map(|m| (m.uid, m)).collect();
    for w in &ws {
        let summary = reconcile_wallet(&b, &given, w, &mut report);
        report.wallets.push(summary);
    }
    report.mismatches.extend(stuck(&report, options));
    Ok(report)
}

/// Everything in flight for longer than `options` allows, as [`Check::Stuck`].
fn stuck(report: &Report, options: Options) -> Vec<Mismatch> {
    let limit_ms = options.max_age_secs.saturating_mul(1000);
    report
        .in_flight
        .iter()
        .filter(|f| report.as_of.millis_since(f.since) > limit_ms)
        .map(|f| Mismatch {
            tx: Some(f.tx),
            check: Check::Stuck,
            party: f.merchant,
            expected: format!("settled within {} s", options.max_age_secs),
            found: format!(
                "{} (in flight for {} s)",
                f.what,
                report.as_of.millis_since(f.since) / 1000
            ),
        })
        .collect()
}
