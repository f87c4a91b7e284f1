//! What a running node tells its operator (README "Operate it"): one `info` line per
//! request it decided, and the metrics behind `/metrics` (`crate::daemon::admin`).
//!
//! The shell records through the `metrics` facade: without an installed recorder (the
//! tests, the in-process demo, the benchmarks) every call is a no-op that costs a load and
//! a branch, so the hot path pays for metrics only in a daemon that serves them. The names
//! live here, next to the code that records them; the daemon's exporter describes them
//! ([`describe`]) and nothing else names them.
//!
//! Labels are bounded: a request's label (the protocol's fixed set, `unreadable` for bytes
//! with no header), its [`RequestOutcome`], an [`ErrorCode`]'s name. Never a UID, a tx or
//! an amount: a hostile peer must not grow the exporter's memory (protocol.md section 10),
//! and the per-peer detail is the live view's and the log's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::ErrorCode;
use crate::time::UnixSecs;
use crate::wire::Frame;

use super::ServeNode;

/// A node's live view for its operator (README "Operate it"): what the daemon's admin
/// listener serves as `/status` and sets as gauges before each `/metrics` scrape. Read by
/// a `Call` on the node actor, between two batches, so it sees committed state only.
pub trait Observe: ServeNode {
    /// The view, serialized as JSON.
    type Status: serde::Serialize + Send + 'static;
    /// Whether the node serves now: `false` while it cannot write its log (protocol.md
    /// section 10), until it has reopened it.
    fn serving(&self) -> bool;
    /// The seq of the last event in its log (0 for an empty log).
    fn head(&self) -> u64;
    /// The view at `now`.
    fn status(&self, now: UnixSecs) -> Self::Status;
    /// The view's numbers as gauges.
    fn gauges(status: &Self::Status) -> Vec<Gauge>;
}

/// Requests a gateway handed to its node and answered, by `label` and `outcome`.
pub const REQUESTS: &str = "peerscrip_requests_total";
/// Refusals (signed or unsigned `Error`s), by `code`.
pub const REFUSALS: &str = "peerscrip_refusals_total";
/// Seconds from a request's arrival at the gateway to its answer's publication, by `label`.
pub const REQUEST_SECONDS: &str = "peerscrip_request_duration_seconds";
/// Frames in each batch the node served (group commit, ADR 0013).
pub const BATCH_FRAMES: &str = "peerscrip_batch_frames";
/// Seconds each batch took on the blocking pool: open, decide, seal, append, commit.
pub const BATCH_SECONDS: &str = "peerscrip_batch_duration_seconds";
/// Seconds each durable commit of the log took (`events::Group::commit`).
pub const COMMIT_SECONDS: &str = "peerscrip_commit_duration_seconds";
/// Frames the gateway's screen dropped or refused before the node saw them, by `reason`
/// (`foreign_reply`: a reply subject outside the sender's inbox, protocol.md section 3;
/// `prepare`: the key lookups' bound, section 10).
pub const SCREENED: &str = "peerscrip_gateway_screened_total";
/// 1 while the node's NATS connection is up, 0 while the client reconnects.
pub const NATS_CONNECTED: &str = "peerscrip_nats_connected";
/// 1 while the node serves, 0 while it cannot write its log (protocol.md section 10).
pub const SERVING: &str = "peerscrip_serving";
/// The seq of the last event in the node's log.
pub const LOG_HEAD: &str = "peerscrip_log_head_seq";
/// Events the live export has not yet published (`export_stream`, protocol.md section 8).
pub const EXPORT_LAG: &str = "peerscrip_export_lag_events";
/// Unknown senders whose key the merchant is looking up at the broker (6.0b, section 10).
pub const KEY_LOOKUPS: &str = "peerscrip_key_lookups_queued";

/// A node's open transactions, by `kind` (the broker's exchanges and escrows; the
/// merchant's requests awaiting the broker and its unacknowledged reports).
pub const OPEN_TRANSACTIONS: &str = "peerscrip_open_transactions";
/// The broker's floats (section 5), by `account`: `broker` (`float:broker`) and
/// `vendor_memo` (every `memo float:vendor:<M>` summed), minor units.
pub const FLOAT: &str = "peerscrip_float_minor";
/// Scrip in the node's live table (section 4), by `state` (`live`, `held`).
pub const LIVE_SCRIP: &str = "peerscrip_live_scrip";
/// The value of the node's live table, minor units.
pub const LIVE_SCRIP_VALUE: &str = "peerscrip_live_scrip_value_minor";
/// The broker's registered peers, by `kind` (`merchant`, `customer`).
pub const PEERS: &str = "peerscrip_peers";
/// The broker's bank accounts.
pub const BANK_ACCOUNTS: &str = "peerscrip_bank_accounts";
/// Their balances summed, minor units.
pub const BANK_BALANCE: &str = "peerscrip_bank_balance_minor";
/// The merchant's recorded sales (6.3).
pub const SALES: &str = "peerscrip_sales";
/// Their value, minor units.
pub const SALES_VALUE: &str = "peerscrip_sales_value_minor";

/// What became of one request frame, as the `outcome` label says it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Decided and answered (a repeat's stored reply included), or a delivery handled.
    #[default]
    Answered,
    /// Refused with an `Error` of this code (signed, or unsigned before verification).
    Refused(ErrorCode),
    /// Answered `Unavailable`: the node cannot write its log (protocol.md section 10).
    Unavailable,
    /// Not answered: the decision could not be sealed (nothing was written; the requester
    /// repeats, section 7).
    Unanswered,
}

impl RequestOutcome {
    /// The `outcome` label.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            RequestOutcome::Answered => "answered",
            RequestOutcome::Refused(_) => "refused",
            RequestOutcome::Unavailable => "unavailable",
            RequestOutcome::Unanswered => "unanswered",
        }
    }

    /// The refusal's code, if refused.
    #[must_use]
    pub const fn code(self) -> Option<ErrorCode> {
        match self {
            RequestOutcome::Refused(code) => Some(code),
            _ => None,
        }
    }
}

impl std::fmt::Display for RequestOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a recorder was installed ([`enable`]): until then the shell records nothing,
/// so a node without an exporter (the tests, the demo, the benchmarks) pays one load per
/// request instead of building the facade's keys for a recorder that drops them.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns recording on: the daemon's exporter calls it once its recorder is installed.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The `label` of `frame`'s request: its header's label, or `unreadable`.
#[must_use]
pub fn label_of(frame: &[u8]) -> &'static str {
    Frame::header_of(frame).map_or("unreadable", |h| h.label.name())
}

/// Records one answered request: the counters, the latency, and the `info` line of README
/// "Operate it" (inside the frame's span, which carries its tx, label and sender).
pub fn answered(label: &'static str, outcome: RequestOutcome, elapsed: Duration) {
    let ms = elapsed.as_secs_f64() * 1000.0;
    match outcome.code() {
        Some(code) => tracing::info!(%outcome, code = %code.name(), ms, "request"),
        None => tracing::info!(%outcome, ms, "request"),
    }
    if !enabled() {
        return;
    }
    metrics::counter!(REQUESTS, "label" => label, "outcome" => outcome.name()).increment(1);
    metrics::histogram!(REQUEST_SECONDS, "label" => label).record(elapsed.as_secs_f64());
    if let Some(code) = outcome.code() {
        metrics::counter!(REFUSALS, "code" => code.name()).increment(1);
    }
}

/// Records a batch the node served: its size and how long it took.
pub fn batch(frames: usize, elapsed: Duration) {
    if !enabled() {
        return;
    }
    // A batch holds at most `MAX_BATCH` frames: exact in an f64.
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!(BATCH_FRAMES).record(frames as f64);
    metrics::histogram!(BATCH_SECONDS).record(elapsed.as_secs_f64());
}

/// Records one durable commit's latency.
pub fn commit(elapsed: Duration) {
    if !enabled() {
        return;
    }
    metrics::histogram!(COMMIT_SECONDS).record(elapsed.as_secs_f64());
}

/// Records a frame the gateway's screen kept from the node, for `reason`.
pub fn screened(reason: &'static str) {
    if !enabled() {
        return;
    }
    metrics::counter!(SCREENED, "reason" => reason).increment(1);
}

/// A gauge of a node's state, set at each scrape from the live view (the node's
/// `Observe::status`): a name of this module's kind and bounded labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Gauge {
    /// The metric's name.
    pub name: &'static str,
    /// Its labels (a fixed set per name).
    pub labels: Vec<(&'static str, &'static str)>,
    /// Its value. Amounts are minor units: exact in an f64 below 2^53, which no float or
    /// balance of a deployment reaches; a gauge is for watching, the log is the ledger.
    pub value: f64,
}

impl Gauge {
    /// A gauge without labels.
    #[must_use]
    pub fn new(name: &'static str, value: f64) -> Gauge {
        Gauge {
            name,
            labels: Vec::new(),
            value,
        }
    }

    /// A gauge with one label.
    #[must_use]
    pub fn labelled(name: &'static str, label: (&'static str, &'static str), value: f64) -> Gauge {
        Gauge {
            name,
            labels: vec![label],
            value,
        }
    }

    /// Sets it in the installed recorder.
    pub fn set(&self) {
        let labels: Vec<metrics::Label> = self
            .labels
            .iter()
            .map(|(k, v)| metrics::Label::new(*k, *v))
            .collect();
        metrics::gauge!(self.name, labels).set(self.value);
    }
}

/// A count as a gauge's value (exact below 2^53).
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn count(n: usize) -> f64 {
    n as f64
}

/// An amount in minor units as a gauge's value (see [`Gauge::value`]).
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn minor(n: i128) -> f64 {
    n as f64
}

/// The help text of every metric this module names, for the exporter.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS,
        "Requests the node decided and answered, by protocol label and outcome"
    );
    describe_counter!(REFUSALS, "Requests refused with an Error, by error code");
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "Time from a request's arrival to its answer's publication, by label"
    );
    describe_histogram!(
        BATCH_FRAMES,
        Unit::Count,
        "Frames per group-committed batch"
    );
    describe_histogram!(
        BATCH_SECONDS,
        Unit::Seconds,
        "Time to serve one batch: open, decide, seal, append and commit"
    );
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "Time of one durable commit of the event log"
    );
    describe_counter!(
        SCREENED,
        "Frames the gateway kept from the node before any cryptography, by reason"
    );
    describe_gauge!(NATS_CONNECTED, "1 while the NATS connection is up");
    describe_gauge!(SERVING, "1 while the node can write its log and serves");
    describe_gauge!(LOG_HEAD, "Seq of the last event in the node's log");
    describe_gauge!(EXPORT_LAG, "Events the live export has not published yet");
    describe_gauge!(OPEN_TRANSACTIONS, "Open transactions, by kind");
    describe_gauge!(FLOAT, "The broker's floats in minor units, by account");
    describe_gauge!(LIVE_SCRIP, "Scrip in the live table, by state");
    describe_gauge!(LIVE_SCRIP_VALUE, "Value of the live table in minor units");
    describe_gauge!(PEERS, "Registered peers, by kind");
    describe_gauge!(BANK_ACCOUNTS, "Bank accounts opened at the broker");
    describe_gauge!(BANK_BALANCE, "Bank balances summed, in minor units");
    describe_gauge!(SALES, "Sales the merchant recorded");
    describe_gauge!(SALES_VALUE, "Value of the merchant's sales in minor units");
    describe_gauge!(
        KEY_LOOKUPS,
        "Unknown senders whose key is being looked up at the broker"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_have_their_label_and_code() {
        assert_eq!(RequestOutcome::Answered.name(), "answered");
        assert_eq!(RequestOutcome::Answered.code(), None);
        let refused = RequestOutcome::Refused(ErrorCode::Spent);
        assert_eq!(refused.to_string(), "refused");
        assert_eq!(refused.code(), Some(ErrorCode::Spent));
        assert_eq!(RequestOutcome::Unavailable.name(), "unavailable");
        assert_eq!(RequestOutcome::Unanswered.name(), "unanswered");
    }

    #[test]
    fn bytes_without_a_header_are_unreadable() {
        assert_eq!(label_of(b"not a frame"), "unreadable");
    }
}
