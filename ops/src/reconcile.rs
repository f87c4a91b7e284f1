//! `peerscrip-ops reconcile`: the cross-party checks of issue 6, reading only the logs of a
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
//! without a recorded outcome is in flight the same way. A VendorScrip the broker lapsed
//! (section 4, `VendorScripLapsed`) that the merchant's live table still holds is in
//! flight too: the merchant's log has no lapse event of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use shared::events::{Event, EventLog, LogError};
use shared::node::{Recorded, SentFrame};
use shared::wire::Frame;
use shared::{Amount, ScripId, TxId, Uid};

/// The wallet's log file in its directory (the wallet CLI's `wallet.redb`,
/// customer-cli/src/cli/config.rs).
pub const WALLET_FILE: &str = "wallet.redb";

/// Exit code: a mismatch was found (they are listed).
pub const EXIT_MISMATCH: u8 = 3;

/// The exit codes of `peerscrip-ops reconcile`, shown by `--help`.
pub const EXIT_CODES: &str = "\
Exit status:
  0  every check held (in-flight transactions are listed, not counted)
  1  the command could not run (a log missing, locked, of another kind, or its chain broken)
  2  usage error (bad arguments)
  3  a mismatch: each is listed with its tx and check";

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
    /// merchant's live table does not hold yet.
    pub amount: i128,
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

/// The error a reconciliation with mismatches ends the command with ([`EXIT_MISMATCH`]).
#[derive(Debug, thiserror::Error)]
#[error("reconcile: {} mismatch(es)", .0)]
pub struct Disagreed(pub usize);

/// What one log says happened in one tx, in the terms the other parties can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fact {
    /// 6.1 (broker).
    BrokerScripIssued { value: Amount },
    /// 6.4 (broker): B1's value.
    BrokerScripToppedUp { to: Amount },
    /// 6.6 (broker).
    BrokerScripWithdrawn { value: Amount },
    /// 6.8, at the producer.
    Renewed { producer: Uid, value: Amount },
    /// 6.2 step 4 (broker): `W` paid from B0, change B1.
    Exchanged {
        merchant: Uid,
        value: Amount,
        change: Amount,
    },
    /// 6.2 step 7 (merchant).
    VendorScripIssued { merchant: Uid, value: Amount },
    /// 6.3 step 3 (merchant).
    Bought {
        merchant: Uid,
        paid: Amount,
        change: Amount,
    },
    /// 6.3 step 5 (broker).
    PurchaseRecorded { merchant: Uid, value: Amount },
    /// 6.5 step 4 (broker).
    TopUpSettled {
        merchant: Uid,
        top_up: Amount,
        change: Amount,
    },
    /// 6.5 step 5 (merchant).
    ToppedUp {
        merchant: Uid,
        from: Amount,
        to: Amount,
    },
    /// 6.7 step 3 (broker).
    Redeemed { merchant: Uid, value: Amount },
    /// 6.7 step 4 (merchant).
    Withdrawn { merchant: Uid, value: Amount },
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fact::BrokerScripIssued { value } => write!(f, "BrokerScrip {value} issued"),
            Fact::BrokerScripToppedUp { to } => write!(f, "BrokerScrip topped up to {to}"),
            Fact::BrokerScripWithdrawn { value } => write!(f, "BrokerScrip {value} withdrawn"),
            Fact::Renewed { producer, value } => {
                write!(f, "scrip {value} of {producer} renewed")
            }
            Fact::Exchanged {
                merchant,
                value,
                change,
            } => write!(
                f,
                "exchange of {value} for {merchant}'s VendorScrip authorized, change {change}"
            ),
            Fact::VendorScripIssued { merchant, value } => {
                write!(f, "VendorScrip {value} issued by {merchant}")
            }
            Fact::Bought {
                merchant,
                paid,
                change,
            } => write!(f, "purchase of {paid} made at {merchant}, change {change}"),
            Fact::PurchaseRecorded { merchant, value } => {
                write!(f, "purchase of {value} at {merchant} recorded")
            }
            Fact::TopUpSettled {
                merchant,
                top_up,
                change,
            } => write!(
                f,
                "top-up of {top_up} onto {merchant}'s VendorScrip settled, change {change}"
            ),
            Fact::ToppedUp { merchant, from, to } => {
                write!(f, "VendorScrip of {merchant} topped up from {from} to {to}")
            }
            Fact::Redeemed { merchant, value } => {
                write!(f, "withdrawal of {value} of {merchant}'s VendorScrip paid")
            }
            Fact::Withdrawn { merchant, value } => {
                write!(
                    f,
                    "VendorScrip {value} of {merchant} spent for a withdrawal"
                )
            }
        }
    }
}

impl Fact {
    /// The merchant whose log keeps this fact, or `None` for the broker's.
    fn keeper(&self, broker: Uid) -> Option<Uid> {
        match self {
            Fact::Renewed { producer, .. } if *producer != broker => Some(*producer),
            Fact::VendorScripIssued { merchant, .. }
            | Fact::Bought { merchant, .. }
            | Fact::ToppedUp { merchant, .. }
            | Fact::Withdrawn { merchant, .. } => Some(*merchant),
            _ => None,
        }
    }
}

/// Facts by (tx, customer), in order.
type Facts = BTreeMap<(TxId, Uid), BTreeSet<Fact>>;

fn add_fact(facts: &mut Facts, tx: TxId, customer: Uid, fact: Fact) {
    facts.entry((tx, customer)).or_default().insert(fact);
}

/// The broker's log, folded.
struct BrokerLog {
    uid: Uid,
    state: broker::core::State,
    facts: Facts,
    /// `PurchaseUnmatched` by tx: a report the broker could not match (no posting).
    unmatched: BTreeSet<TxId>,
    /// `VendorScripLapsed`: (merchant, scrip, value).
    lapsed: Vec<(TxId, Uid, ScripId, Amount)>,
    /// Registered UIDs.
    registered: BTreeSet<Uid>,
}

/// A merchant's log, folded.
struct MerchantLog {
    path: PathBuf,
    uid: Uid,
    state: merchant::core::state::State,
    facts: Facts,
}

/// A wallet's log, folded.
struct WalletLog {
    path: PathBuf,
    /// The customer (its identity's UID).
    me: Uid,
    state: customer_cli::core::WalletState,
}

/// The log file of `target` for a node of `kind`: the file itself, or its log in a data
/// directory (the broker's by `ops::audit::log_file`).
fn log_path(target: &Path, kind: &str) -> PathBuf {
    if !target.is_dir() {
        return target.to_owned();
    }
    match kind {
        k if k == merchant::node::NODE_KIND => target.join(merchant::config::LOG_FILE),
        k if k == customer_cli::NODE_KIND => target.join(WALLET_FILE),
        _ => crate::audit::log_file(target),
    }
}

/// Opens the log of a `kind` node at `target`, verifies its chain and returns its path,
/// suite and events.
fn read_events<K>(
    target: &Path,
    kind: &'static str,
) -> Result<(PathBuf, shared::Suite, Vec<Event<K>>), ReconcileError>
where
    K: serde::Serialize + serde::de::DeserializeOwned,
{
    let path = log_path(target, kind);
    let log_error = |source: LogError| ReconcileError::Log {
        path: path.clone(),
        source,
    };
    let log = EventLog::<K>::open_existing(&path).map_err(log_error)?;
    if log.identity().node_kind != kind {
        return Err(ReconcileError::WrongKind {
            path,
            expected: kind,
            found: log.identity().node_kind.clone(),
        });
    }
    log.verify_chain().map_err(|source| ReconcileError::Chain {
        path: path.clone(),
        source,
    })?;
    let events = log
        .iter()
        .map_err(log_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(log_error)?;
    Ok((path, log.identity().suite, events))
}

/// The sender of the first decodable frame in `sent`: the node that logged it.
fn sender_of(sent: &[SentFrame]) -> Option<Uid> {
    sent.iter()
        .find_map(|s| Frame::decode(&s.frame).ok())
        .map(|f| f.header.sender)
}

fn change_of(change: Option<&shared::ScripBody>) -> Amount {
    change.map_or(Amount::ZERO, |c| c.value)
}

fn read_broker(target: &Path) -> Result<(PathBuf, BrokerLog), ReconcileError> {
    use broker::core::Kind;
    let (path, suite, events) = read_events::<Recorded<Kind>>(target, broker::node::NODE_KIND)?;
    let mut log = BrokerLog {
        uid: Uid([0; 16]),
        state: broker::core::State::new(suite),
        facts: Facts::new(),
        unmatched: BTreeSet::new(),
        lapsed: Vec::new(),
        registered: BTreeSet::new(),
    };
    let mut uid = None;
    for event in &events {
        uid = uid.or_else(|| sender_of(&event.kind.sent));
        log.state.fold(event);
        let tx = event.tx;
        let facts = &mut log.facts;
        match &event.kind.kind {
            Kind::PeerRegistered { uid, .. } => {
                log.registered.insert(*uid);
            }
            Kind::BrokerScripIssued { customer, scrip } => add_fact(
                facts,
                tx,
                *customer,
                Fact::BrokerScripIssued { value: scrip.value },
            ),
            Kind::BrokerScripToppedUp {
                customer, issued, ..
            } => add_fact(
                facts,
                tx,
                *customer,
                Fact::BrokerScripToppedUp { to: issued.value },
            ),
            Kind::BrokerScripWithdrawn {
                customer, value, ..
            } => add_fact(
                facts,
                tx,
                *customer,
                Fact::BrokerScripWithdrawn { value: *value },
            ),
            Kind::ScripRenewed {
                customer, issued, ..
            } => add_fact(
                facts,
                tx,
                *customer,
                Fact::Renewed {
                    producer: issued.producer,
                    value: issued.value,
                },
            ),
            Kind::ExchangeAuthorized {
                customer,
                merchant,
                value,
                change,
                ..
            } => add_fact(
                facts,
                tx,
                *customer,
                Fact::Exchanged {
                    merchant: *merchant,
                    value: *value,
                    change: change_of(change.as_ref()),
                },
            ),
            Kind::PurchaseRecorded {
                customer,
                merchant,
                value,
            } => add_fact(
                facts,
                tx,
                *customer,
                Fact::PurchaseRecorded {
                    merchant: *merchant,
                    value: *value,
                },
            ),
            Kind::PurchaseUnmatched { .. } => {
                log.unmatched.insert(tx);
            }
            Kind::VendorTopUpSettled {
                customer,
                merchant,
                top_up,
                change,
                ..
            } => add_fact(
                facts,
                tx,
                *customer,
                Fact::TopUpSettled {
                    merchant: *merchant,
                    top_up: *top_up,
                    change: change_of(change.as_ref()),
                },
            ),
            Kind::VendorScripRedeemed {
                customer,
                merchant,
                value,
            } => add_fact(
                facts,
                tx,
                *customer,
                Fact::Redeemed {
                    merchant: *merchant,
                    value: *value,
                },
            ),
            Kind::VendorScripLapsed {
                merchant,
                scrip_id,
                value,
                ..
            } => log.lapsed.push((tx, *merchant, *scrip_id, *value)),
            _ => {}
        }
    }
    // A broker that never answered a frame registered no merchant: nothing to reconcile.
    log.uid = uid.ok_or_else(|| ReconcileError::NoBrokerUid { path: path.clone() })?;
    Ok((path, log))
}

fn read_merchant(target: &Path) -> Result<MerchantLog, ReconcileError> {
    use merchant::core::events::Kind;
    let (path, _, events) = read_events::<Recorded<Kind>>(target, merchant::node::NODE_KIND)?;
    let mut state = merchant::core::state::State::new();
    let mut facts = Facts::new();
    let mut uid = None;
    for event in &events {
        uid = uid.or_else(|| sender_of(&event.kind.sent));
        state.apply(event);
        let tx = event.tx;
        match &event.kind.kind {
            Kind::VendorScripIssued { scrip, owner } => add_fact(
                &mut facts,
                tx,
                *owner,
                Fact::VendorScripIssued {
                    merchant: scrip.producer,
                    value: scrip.value,
                },
            ),
            Kind::PurchaseMade {
                customer,
                spent,
                change,
                receipt,
                ..
            } => add_fact(
                &mut facts,
                tx,
                *customer,
                Fact::Bought {
                    merchant: spent.producer,
                    paid: receipt.paid,
                    change: change_of(change.as_ref()),
                },
            ),
            Kind::VendorScripToppedUp { customer, old, new } => add_fact(
                &mut facts,
                tx,
                *customer,
                Fact::ToppedUp {
                    merchant: old.producer,
                    from: old.value,
                    to: new.value,
                },
            ),
            Kind::VendorScripWithdrawn { customer, spent } => add_fact(
                &mut facts,
                tx,
                *customer,
                Fact::Withdrawn {
                    merchant: spent.producer,
                    value: spent.value,
                },
            ),
            Kind::ScripRenewed { owner, new, .. } => add_fact(
                &mut facts,
                tx,
                *owner,
                Fact::Renewed {
                    producer: new.producer,
                    value: new.value,
                },
            ),
            _ => {}
        }
    }
    let uid = uid.ok_or_else(|| ReconcileError::NoMerchantUid { path: path.clone() })?;
    Ok(MerchantLog {
        path,
        uid,
        state,
        facts,
    })
}

fn read_wallet(target: &Path) -> Result<WalletLog, ReconcileError> {
    let (path, _, events) =
        read_events::<customer_cli::core::WalletEvent>(target, customer_cli::NODE_KIND)?;
    let mut state = customer_cli::core::WalletState::default();
    for event in &events {
        state.apply(event).map_err(|e| ReconcileError::Wallet {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    let Some(me) = state.identity.as_ref().map(|i| i.me) else {
        return Err(ReconcileError::Wallet {
            path,
            reason: "the wallet log has no identity (WalletCreated)".to_owned(),
        });
    };
    Ok(WalletLog { path, me, state })
}

/// Reconciles the broker's log at `broker` with the merchants' and wallets' logs (each a
/// log file or a node's data directory), see the module doc.
pub fn reconcile(
    broker: &Path,
    merchants: &[PathBuf],
    wallets: &[PathBuf],
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
    let mut report = Report {
        broker: broker_path,
        merchants: Vec::new(),
        wallets: Vec::new(),
        matched: 0,
        in_flight: Vec::new(),
        mismatches: Vec::new(),
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
    Ok(report)
}

/// One pairing of a broker fact with the merchant fact that must answer it (checks 1 to 4
/// of the module doc).
struct Pairing {
    /// The broker's side, as (merchant, amount) when the fact is of this pairing.
    broker: fn(&Fact) -> Option<(Uid, Amount)>,
    /// The merchant's side likewise.
    merchant: fn(&Fact) -> Option<(Uid, Amount)>,
    /// Named when the merchant's side is missing, when the broker's is, when they differ.
    missing_at_merchant: Check,
    missing_at_broker: Check,
    differs: Check,
}

const PAIRINGS: [Pairing; 4] = [
    Pairing {
        broker: |f| match f {
            Fact::Exchanged {
                merchant, value, ..
            } => Some((*merchant, *value)),
            _ => None,
        },
        merchant: |f| match f {
            Fact::VendorScripIssued { merchant, value } => Some((*merchant, *value)),
            _ => None,
        },
        missing_at_merchant: Check::VendorScripNotIssued,
        missing_at_broker: Check::VendorScripUnauthorized,
        differs: Check::VendorScripDiffers,
    },
    Pairing {
        broker: |f| match f {
            Fact::PurchaseRecorded { merchant, value } => Some((*merchant, *value)),
            _ => None,
        },
        merchant: |f| match f {
            Fact::Bought { merchant, paid, .. } => Some((*merchant, *paid)),
            _ => None,
        },
        missing_at_merchant: Check::PurchaseNotMade,
        missing_at_broker: Check::PurchaseNotRecorded,
        differs: Check::PurchaseDiffers,
    },
    Pairing {
        broker: |f| match f {
            Fact::TopUpSettled {
                merchant, top_up, ..
            } => Some((*merchant, *top_up)),
            _ => None,
        },
        merchant: |f| match f {
            Fact::ToppedUp { merchant, from, to } => {
                Some((*merchant, to.checked_sub(*from).unwrap_or(Amount::ZERO)))
            }
            _ => None,
        },
        missing_at_merchant: Check::TopUpNotApplied,
        missing_at_broker: Check::TopUpUnsettled,
        differs: Check::TopUpDiffers,
    },
    Pairing {
        broker: |f| match f {
            Fact::Redeemed { merchant, value } => Some((*merchant, *value)),
            _ => None,
        },
        merchant: |f| match f {
            Fact::Withdrawn { merchant, value } => Some((*merchant, *value)),
            _ => None,
        },
        missing_at_merchant: Check::WithdrawalNotSpent,
        missing_at_broker: Check::WithdrawalNotPaid,
        differs: Check::WithdrawalDiffers,
    },
];

/// (tx → (customer, amount)) of one side of a pairing, for merchant `m`.
fn side(
    facts: &Facts,
    m: Uid,
    pick: fn(&Fact) -> Option<(Uid, Amount)>,
) -> BTreeMap<TxId, (Uid, Amount)> {
    let mut out = BTreeMap::new();
    for ((tx, customer), set) in facts {
        for fact in set {
            if let Some((merchant, amount)) = pick(fact)
                && merchant == m
            {
                out.insert(*tx, (*customer, amount));
            }
        }
    }
    out
}

/// What the merchant's own log says it still waits for in `tx`, as the in-flight line and
/// its effect on `memo − live`, for the check whose other side is missing.
fn merchant_waits(m: &MerchantLog, tx: &TxId, check: Check, amount: Amount) -> Option<InFlight> {
    use merchant::core::state::Awaiting;
    let tables = &m.state.tables;
    let minor = i128::from(amount.minor());
    let (what, amount) = match (check, tables.awaiting.get(tx)) {
        (Check::VendorScripNotIssued, Some(Awaiting::Exchange { .. })) => (
            format!("the broker authorized {amount}; the merchant has not issued it yet"),
            minor,
        ),
        (Check::TopUpNotApplied, Some(Awaiting::TopUp { .. })) => (
            format!("the broker settled a top-up of {amount}; the merchant has not applied it yet"),
            minor,
        ),
        (Check::WithdrawalNotSpent, Some(Awaiting::Withdraw { .. })) => (
            format!("the broker paid a withdrawal of {amount}; the merchant still holds the scrip"),
            -minor,
        ),
        (Check::PurchaseNotRecorded, _) if tables.unreported.contains_key(tx) => (
            format!("a purchase of {amount} the merchant has not yet reported to the broker"),
            minor,
        ),
        _ => return None,
    };
    Some(InFlight {
        tx: *tx,
        merchant: m.uid,
        what,
        amount,
    })
}

fn reconcile_merchant(b: &BrokerLog, m: &MerchantLog, report: &mut Report) -> MerchantSummary {
    let mut in_flight_sum: i128 = 0;
    for pairing in &PAIRINGS {
        let at_broker = side(&b.facts, m.uid, pairing.broker);
        let at_merchant = side(&m.facts, m.uid, pairing.merchant);
        let txs: BTreeSet<&TxId> = at_broker.keys().chain(at_merchant.keys()).collect();
        for tx in txs {
            let describe = |(customer, amount): &(Uid, Amount)| format!("{amount} for {customer}");
            let (check, expected, found, amount) = match (at_broker.get(tx), at_merchant.get(tx)) {
                (Some(x), Some(y)) if x == y => {
                    report.matched += 1;
                    continue;
                }
                (Some(x), Some(y)) => (
                    pairing.differs,
                    format!("the broker's {}", describe(x)),
                    format!("the merchant's {}", describe(y)),
                    None,
                ),
                (Some(x), None) => (
                    pairing.missing_at_merchant,
                    format!("the merchant's event for the broker's {}", describe(x)),
                    "none in the merchant's log".to_owned(),
                    Some(x.1),
                ),
                (None, Some(y)) => {
                    let found = if b.unmatched.contains(tx) {
                        "only PurchaseUnmatched (no posting) in the broker's log"
                    } else {
                        "none in the broker's log"
                    };
                    (
                        pairing.missing_at_broker,
                        format!("the broker's event for the merchant's {}", describe(y)),
                        found.to_owned(),
                        Some(y.1),
                    )
                }
                (None, None) => continue,
            };
            if let Some(flight) = amount.and_then(|a| merchant_waits(m, tx, check, a)) {
                in_flight_sum += flight.amount;
                report.in_flight.push(flight);
                continue;
            }
            report.mismatches.push(Mismatch {
                tx: Some(*tx),
                check,
                party: m.uid,
                expected,
                found,
            });
        }
    }
    for (tx, merchant, scrip_id, value) in &b.lapsed {
        if *merchant == m.uid && m.state.tables.live.get(scrip_id).is_some() {
            let amount = -i128::from(value.minor());
            in_flight_sum += amount;
            report.in_flight.push(InFlight {
                tx: *tx,
                merchant: m.uid,
                what: format!("VendorScrip {scrip_id} of {value} lapsed at the broker, still live at the merchant"),
                amount,
            });
        }
    }
    // Section 4: the merchant removed a lapsed scrip and owes the broker its notice; until
    // the broker records it, the broker's memo still counts the value.
    for (tx, awaiting) in &m.state.tables.awaiting {
        let merchant::core::state::Awaiting::Lapse {
            scrip_id, value, ..
        } = awaiting
        else {
            continue;
        };
        let recorded = b
            .lapsed
            .iter()
            .any(|(_, merchant, id, _)| *merchant == m.uid && id == scrip_id);
        if !recorded {
            let amount = i128::from(value.minor());
            in_flight_sum += amount;
            report.in_flight.push(InFlight {
                tx: *tx,
                merchant: m.uid,
                what: format!(
                    "VendorScrip {scrip_id} of {value} lapsed at the merchant, its notice not yet recorded by the broker"
                ),
                amount,
            });
        }
    }
    let memo = b.state.memo(&m.uid);
    // In i128, as the broker's memo: a forged log's sum beyond u64 is still compared.
    let live: i128 = m
        .state
        .tables
        .live
        .iter()
        .map(|(_, r)| i128::from(r.body.value.minor()))
        .sum();
    let expected = live + in_flight_sum;
    if memo != expected {
        report.mismatches.push(Mismatch {
            tx: None,
            check: Check::FloatVendor,
            party: m.uid,
            expected: format!(
                "float:vendor:{} = {} (live VendorScrip {} + in flight {})",
                m.uid,
                signed_amount(expected),
                signed_amount(live),
                signed_amount(in_flight_sum)
            ),
            found: format!("the broker's memo {}", signed_amount(memo)),
        });
    }
    MerchantSummary {
        path: m.path.clone(),
        uid: m.uid,
        memo,
        live,
        in_flight: in_flight_sum,
    }
}

/// The facts a wallet's history line claims, each to be found in its keeper's log.
fn wallet_facts(entry: &customer_cli::core::HistoryEntry) -> Result<Vec<Fact>, String> {
    use customer_cli::core::HistoryKind as H;
    let minus = |a: Amount, b: Amount| {
        a.checked_sub(b)
            .map_err(|_| format!("a history line whose change {b} exceeds {a}"))
    };
    Ok(match &entry.what {
        H::BrokerScripObtained { value } => vec![Fact::BrokerScripIssued { value: *value }],
        H::BrokerScripToppedUp { to, .. } => vec![Fact::BrokerScripToppedUp { to: *to }],
        H::BrokerScripWithdrawn { value } => vec![Fact::BrokerScripWithdrawn { value: *value }],
        H::ScripRenewed {
            producer, value, ..
        } => vec![Fact::Renewed {
            producer: *producer,
            value: *value,
        }],
        H::ExchangeSettled {
            merchant,
            ok: true,
            from,
            change,
        } => vec![Fact::Exchanged {
            merchant: *merchant,
            value: minus(*from, *change)?,
            change: *change,
        }],
        H::VendorScripObtained { merchant, value } => vec![Fact::VendorScripIssued {
            merchant: *merchant,
            value: *value,
        }],
        H::ItemBought {
            merchant,
            paid,
            change,
        } => vec![
            Fact::Bought {
                merchant: *merchant,
                paid: *paid,
                change: *change,
            },
            Fact::PurchaseRecorded {
                merchant: *merchant,
                value: *paid,
            },
        ],
        H::VendorTopUpSettled {
            merchant,
            ok: true,
            from,
            change,
        } => vec![Fact::TopUpSettled {
            merchant: *merchant,
            top_up: minus(*from, *change)?,
            change: *change,
        }],
        H::VendorScripToppedUp { merchant, from, to } => vec![Fact::ToppedUp {
            merchant: *merchant,
            from: *from,
            to: *to,
        }],
        H::VendorWithdrawDecided {
            merchant,
            ok: true,
            value,
        } => vec![
            Fact::Redeemed {
                merchant: *merchant,
                value: *value,
            },
            Fact::Withdrawn {
                merchant: *merchant,
                value: *value,
            },
        ],
        _ => Vec::new(),
    })
}

fn reconcile_wallet(
    b: &BrokerLog,
    merchants: &BTreeMap<Uid, &MerchantLog>,
    w: &WalletLog,
    report: &mut Report,
) -> WalletSummary {
    let me = w.me;
    let mut summary = WalletSummary {
        path: w.path.clone(),
        uid: me,
        compared: 0,
        skipped: 0,
    };
    let kept = |fact: &Fact| match fact.keeper(b.uid) {
        None => true,
        Some(m) => merchants.contains_key(&m),
    };
    let in_flight: BTreeSet<TxId> = report.in_flight.iter().map(|f| f.tx).collect();
    // What the wallet claims, by tx.
    let mut claimed: BTreeMap<TxId, BTreeSet<Fact>> = BTreeMap::new();
    for entry in w.state.history.values() {
        if let customer_cli::core::HistoryKind::Registered { uid } = &entry.what {
            summary.compared += 1;
            if !b.registered.contains(uid) {
                report.mismatches.push(Mismatch {
                    tx: Some(entry.tx),
                    check: Check::WalletHistory,
                    party: me,
                    expected: format!("the broker's PeerRegistered of {uid}"),
                    found: "none in the broker's log".to_owned(),
                });
            }
            continue;
        }
        match wallet_facts(entry) {
            Ok(facts) => {
                for fact in facts {
                    if kept(&fact) {
                        claimed.entry(entry.tx).or_default().insert(fact);
                    } else {
                        summary.skipped += 1;
                    }
                }
            }
            Err(reason) => report.mismatches.push(Mismatch {
                tx: Some(entry.tx),
                check: Check::WalletHistory,
                party: me,
                expected: "a consistent history line".to_owned(),
                found: reason,
            }),
        }
    }
    // What the nodes logged about this customer, by tx.
    let mut logged: BTreeMap<TxId, BTreeSet<Fact>> = BTreeMap::new();
    let node_facts = std::iter::once(&b.facts).chain(merchants.values().map(|m| &m.facts));
    for facts in node_facts {
        for ((tx, customer), set) in facts {
            if *customer == me {
                logged.entry(*tx).or_default().extend(set.iter().copied());
            }
        }
    }
    let pending: BTreeSet<TxId> = w.state.pending.keys().map(|(tx, _)| *tx).collect();
    let txs: BTreeSet<TxId> = claimed.keys().chain(logged.keys()).copied().collect();
    let empty = BTreeSet::new();
    for tx in txs {
        let (c, l) = (
            claimed.get(&tx).unwrap_or(&empty),
            logged.get(&tx).unwrap_or(&empty),
        );
        summary.compared += c.len() as u64;
        let words = |set: Vec<&Fact>| {
            if set.is_empty() {
                "nothing".to_owned()
            } else {
                set.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        // In flight, the lagging side has not logged what the wallet already holds: the
        // broker's record of a purchase not yet reported, the merchant's spend of a
        // VendorScrip the broker already paid out.
        let unclaimed: Vec<&Fact> = c
            .difference(l)
            .filter(|f| {
                !(matches!(f, Fact::PurchaseRecorded { .. } | Fact::Withdrawn { .. })
                    && in_flight.contains(&tx))
            })
            .collect();
        if !unclaimed.is_empty() {
            report.mismatches.push(Mismatch {
                tx: Some(tx),
                check: Check::WalletHistory,
                party: me,
                expected: words(unclaimed),
                found: words(l.iter().collect()),
            });
        }
        let unseen: Vec<&Fact> = l.difference(c).collect();
        if !unseen.is_empty() && !pending.contains(&tx) {
            report.mismatches.push(Mismatch {
                tx: Some(tx),
                check: Check::MissingFromWallet,
                party: me,
                expected: words(unseen),
                found: words(c.iter().collect()),
            });
        }
    }
    summary
}

/// Minor units as `-12.34`.
fn signed_amount(minor: i128) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Prints `report` as text or one JSON object.
pub fn print(report: &Report, json: bool) {
    if json {
        let mismatches: Vec<_> = report
            .mismatches
            .iter()
            .map(|m| {
                serde_json::json!({
                    "tx": m.tx.map(|t| t.to_string()),
                    "check": m.check.to_string(),
                    "party": m.party.to_string(),
                    "expected": m.expected,
                    "found": m.found,
                })
            })
            .collect();
        let in_flight: Vec<_> = report
            .in_flight
            .iter()
            .map(|f| {
                serde_json::json!({
                    "tx": f.tx.to_string(),
                    "merchant": f.merchant.to_string(),
                    "what": f.what,
                    "amount": signed_amount(f.amount),
                })
            })
            .collect();
        let merchants: Vec<_> = report
            .merchants
            .iter()
            .map(|m| {
                serde_json::json!({
                    "path": m.path,
                    "uid": m.uid.to_string(),
                    "memo": signed_amount(m.memo),
                    "live": signed_amount(m.live),
                    "in_flight": signed_amount(m.in_flight),
                })
            })
            .collect();
        let wallets: Vec<_> = report
            .wallets
            .iter()
            .map(|w| {
                serde_json::json!({
                    "path": w.path,
                    "uid": w.uid.to_string(),
                    "compared": w.compared,
                    "skipped": w.skipped,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "broker": report.broker,
                "ok": report.ok(),
                "matched": report.matched,
                "merchants": merchants,
                "wallets": wallets,
                "in_flight": in_flight,
                "mismatches": mismatches,
            })
        );
        return;
    }
    println!("broker log {}", report.broker.display());
    for m in &report.merchants {
        println!(
            "  merchant {} ({}): memo {}, live VendorScrip {}, in flight {}",
            m.uid,
            m.path.display(),
            signed_amount(m.memo),
            signed_amount(m.live),
            signed_amount(m.in_flight)
        );
    }
    for w in &report.wallets {
        println!(
            "  wallet {} ({}): {} history facts compared, {} about merchants not given",
            w.uid,
            w.path.display(),
            w.compared,
            w.skipped
        );
    }
    for f in &report.in_flight {
        println!("in flight: tx {} ({}): {}", f.tx, f.merchant, f.what);
    }
    if report.ok() {
        println!(
            "OK: {} exchanges, purchases, top-ups and withdrawals match; every float and wallet agrees",
            report.matched
        );
    } else {
        for m in &report.mismatches {
            println!("MISMATCH {m}");
        }
        println!("FAILED: {} mismatch(es)", report.mismatches.len());
    }
}
