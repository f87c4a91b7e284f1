//! A large broker log built fast, for the measurements that need many events (the cost
//! against the log's size of `peerscrip-ops bench`, [`super::log_size`]; the 1M-event replay
//! benchmark, `ops/benches/replay.rs`) and the tests that do (the JetStream export killed
//! mid-stream, `ops/tests/export.rs`, through `peerscrip_tests::bank_log`).
//!
//! The events are the bank operator's (section 5): accounts opened, then deposits and
//! payouts, each decided by the broker's own decision functions (`broker::core::bank`) on
//! the state as it stands and appended through the log's group commit with the broker's own
//! projection (`LiveProjection`) and secrets table, exactly as `BrokerNode` appends them,
//! so the file is a genuine broker log that the node opens and the auditor checks. What
//! differs from a node is only the batching: [`BATCH`] decisions per durable commit
//! instead of one per request, so a million events take seconds, not an fsync each.
//!
//! They carry no evidence (the operator's local commands are not signed requests): a
//! replay or an audit of this log measures the fold, the chain and the ledger, not RSA.

use std::path::Path;

use broker::core::{Kind, State, bank};
use broker::node::NODE_KIND;
use broker::store::{LiveProjection, write_account_id, write_layout};
use shared::events::{EventLog, LogError, LogIdentity};
use shared::ids::{AccountId, Pan, PanSecret};
use shared::node::Recorded;
use shared::{Amount, Suite, TxId, UnixSecs};

/// Decisions per durable commit.
pub const BATCH: u64 = 10_000;

/// Accounts the log opens before its deposits and payouts.
pub const ACCOUNTS: u64 = 1_000;

/// The time of the first event (unix seconds); each next event is one second later.
const START: u64 = 1_700_000_000;

/// Why a log could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The log refused a write.
    #[error("log: {0}")]
    Log(#[from] LogError),
    /// The log there moves a three-party transaction out of order (not one this function
    /// wrote).
    #[error(transparent)]
    Illegal(#[from] shared::machine::IllegalEvent),
    /// The broker refused a decision (a bug of this builder).
    #[error("the broker refused event {seq}: {reason}")]
    Refused {
        /// The event's seq.
        seq: u64,
        /// The broker's reason.
        reason: String,
    },
}

/// The PAN of account `i`.
#[must_use]
pub fn pan(i: u64) -> Pan {
    Pan::new(format!("GR{:025}", i))
}

/// Writes a broker log of `events` events at `path`, or extends the one there (written by
/// this function) to that many: up to [`ACCOUNTS`] accounts opened, then deposits into them
/// in turn, every third one a payout of half the account's balance instead (when there is
/// any).
///
/// # Errors
/// See [`BuildError`].
pub fn build(path: &Path, suite: Suite, events: u64) -> Result<(), BuildError> {
    let log = EventLog::<Recorded<Kind>>::open(path, LogIdentity::new(suite, NODE_KIND))?;
    let mut state = State::new(suite);
    for event in log.iter()? {
        state.fold(&event?)?;
    }
    let mut seq = log.len()?;
    let accounts = ACCOUNTS.min(events);
    while seq < events {
        let mut group = log.begin_group()?;
        let end = events.min(seq + BATCH);
        while seq < end {
            seq += 1;
            let now = UnixSecs::new(START + seq);
            let tx = TxId::random();
            let refused = |e: bank::BankError| BuildError::Refused {
                seq,
                reason: e.to_string(),
            };
            if seq <= accounts {
                let pan = pan(seq);
                let id =
                    AccountId::derive(suite, &PanSecret::new(&format!("secret-{seq:016}")), &pan);
                let event = bank::open_account_with_id(&state, suite, &pan, &id, tx, now)
                    .map_err(refused)?;
                group.append_with(
                    Recorded::attach(vec![event], Vec::new()),
                    &LiveProjection::new(&mut state),
                    // The first commit records the tables' layout, as the node does, so
                    // that opening the log does not rebuild them.
                    |txn, _| {
                        if seq == 1 {
                            write_layout(txn)?;
                        }
                        write_account_id(txn, &pan, &id)
                    },
                )?;
                continue;
            }
            let n = seq - accounts;
            let pan = pan(n % accounts + 1);
            let half = state.bank_balance(&pan).minor() / 2;
            let event = if n.is_multiple_of(3) && half > 0 {
                bank::payout(&state, &pan, Amount::from_minor(half), tx, now)
            } else {
                bank::deposit(&state, &pan, Amount::from_minor(100 + n % 900), tx, now)
            }
            .map_err(refused)?;
            group.append(
                Recorded::attach(vec![event], Vec::new()),
                &LiveProjection::new(&mut state),
            )?;
        }
        group.commit()?;
    }
    log.close()?;
    Ok(())
}
