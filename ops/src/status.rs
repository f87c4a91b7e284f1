//! `peerscrip-ops status URL`: a running node's live view (README "Operate it"), read
//! from its admin listener's `/status` (`shared::daemon::admin`) and printed for a person,
//! or as the node's JSON document with `--json`. The view is the broker's
//! (`broker::core::status`) or a merchant's (`merchant::core::status`); which one is told
//! by its fields.
//!
//! Exit codes follow the table of `peerscrip-ops --help`: 3 when the listener refuses the
//! token, 4 when nothing answers at the URL, 5 when the node does not answer in time.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use broker::core::status::BrokerStatus;
use customer_cli::cli::exit::Exit;
use customer_cli::cli::output::expiry_text;
use merchant::core::status::MerchantStatus;
use shared::{Moment, UnixSecs};

/// Arguments of `peerscrip-ops status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The daemon's admin listener, e.g. http://127.0.0.1:9464 (its `[admin] listen`).
    pub url: String,
    /// File whose first line is the listener's bearer token (its `[admin] token_file`).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// How long to wait for the answer, in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
}

/// Why the view could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The URL or the token file cannot be used.
    #[error("{0}")]
    Usage(String),
    /// Nothing answers at the URL.
    #[error("nothing answers at {url}: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Why.
        reason: String,
    },
    /// The listener refused the token (or wants one).
    #[error("{url} refused the request: a valid bearer token is required (--token-file)")]
    Unauthorized {
        /// The URL asked.
        url: String,
    },
    /// The node did not answer in time (the listener's 503, or no answer at all).
    #[error("{url}: the node did not answer in time: {reason}")]
    TimedOut {
        /// The URL asked.
        url: String,
        /// Why.
        reason: String,
    },
    /// The answer is not a node's live view.
    #[error("{url}: not a peerscrip node's status: {reason}")]
    Malformed {
        /// The URL asked.
        url: String,
        /// Why.
        reason: String,
    },
}

impl StatusError {
    /// Its row of the exit-code table (`peerscrip-ops --help`).
    #[must_use]
    pub fn exit(&self) -> Exit {
        match self {
            StatusError::Usage(_) => Exit::Usage,
            StatusError::Unauthorized { .. } => Exit::Refused,
            StatusError::Unreachable { .. } => Exit::Unreachable,
            StatusError::TimedOut { .. } => Exit::TimedOut,
            StatusError::Malformed { .. } => Exit::Failed,
        }
    }
}

/// A node's live view: a merchant's has its books, a broker's its accounts.
#[derive(Debug)]
pub enum NodeStatus {
    /// A merchant's.
    Merchant(MerchantStatus),
    /// The broker's.
    Broker(BrokerStatus),
}

impl NodeStatus {
    /// The view in `document`, told apart by its fields (serde's untagged enums cannot hold
    /// the broker's 128-bit balances).
    ///
    /// # Errors
    /// Why `document` is neither view.
    pub fn from_document(document: serde_json::Value) -> Result<NodeStatus, String> {
        if document.get("books").is_some() {
            serde_json::from_value(document).map(NodeStatus::Merchant)
        } else if document.get("accounts").is_some() {
            serde_json::from_value(document).map(NodeStatus::Broker)
        } else {
            return Err("neither a broker's nor a merchant's view".to_owned());
        }
        .map_err(|e| e.to_string())
    }
}

/// Runs `peerscrip-ops status`.
///
/// # Errors
/// [`StatusError`].
pub fn run(args: &StatusArgs, json: bool) -> Result<(), StatusError> {
    let token = match &args.token_file {
        None => None,
        Some(path) => Some(
            shared::daemon::read_secret_line(path)
                .map_err(|e| StatusError::Usage(e.to_string()))?,
        ),
    };
    let document = fetch(
        &args.url,
        token.as_ref().map(shared::secret::SecretBytes::expose),
        Duration::from_secs(args.timeout_secs.max(1)),
    )?;
    if json {
        // The node's document, marked like every other `--json` result.
        let mut document = document;
        if let Some(fields) = document.as_object_mut() {
            fields.insert("ok".to_owned(), serde_json::Value::Bool(true));
        }
        println!("{document}");
        return Ok(());
    }
    let view = NodeStatus::from_document(document).map_err(|reason| StatusError::Malformed {
        url: args.url.clone(),
        reason,
    })?;
    print!("{}", render(&view, shared::runtime::system_clock()));
    Ok(())
}

/// `GET <url>/status` with the bearer token, if any: the JSON document.
///
/// # Errors
/// [`StatusError`].
pub fn fetch(
    url: &str,
    token: Option<&[u8]>,
    timeout: Duration,
) -> Result<serde_json::Value, StatusError> {
    let base = url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(StatusError::Usage(format!(
            "{url:?} is not an http:// or https:// URL"
        )));
    }
    let address = format!("{base}/status");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(&address);
    if let Some(token) = token {
        let token = std::str::from_utf8(token)
            .map_err(|_| StatusError::Usage("the token is not UTF-8".to_owned()))?;
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.call().map_err(|e| match e {
        ureq::Error::Timeout(_) => StatusError::TimedOut {
            url: address.clone(),
            reason: e.to_string(),
        },
        ureq::Error::BadUri(_) => StatusError::Usage(format!("{url:?}: {e}")),
        other => StatusError::Unreachable {
            url: address.clone(),
            reason: other.to_string(),
        },
    })?;
    match response.status().as_u16() {
        200 => {}
        401 => return Err(StatusError::Unauthorized { url: address }),
        503 => {
            let reason = response
                .body_mut()
                .read_to_string()
                .unwrap_or_default()
                .trim()
                .to_owned();
            return Err(StatusError::TimedOut {
                url: address,
                reason,
            });
        }
        other => {
            return Err(StatusError::Malformed {
                url: address,
                reason: format!("HTTP {other}"),
            });
        }
    }
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| StatusError::Malformed {
            url: address.clone(),
            reason: e.to_string(),
        })?;
    serde_json::from_str(&text).map_err(|e| StatusError::Malformed {
        url: address,
        reason: e.to_string(),
    })
}

/// The view for a person, times relative to `now`.
#[must_use]
pub fn render(view: &NodeStatus, now: UnixSecs) -> String {
    match view {
        NodeStatus::Broker(b) => render_broker(b, now),
        NodeStatus::Merchant(m) => render_merchant(m),
    }
}

fn serving(serving: bool) -> &'static str {
    if serving {
        "serving"
    } else {
        "NOT SERVING (cannot write its log)"
    }
}

/// A deadline for people, as of `now`: `2026-12-07 20:19:13 UTC (expires in 4m 10s)`.
fn deadline(at: &Moment, now: UnixSecs) -> String {
    expiry_text(UnixSecs::new(at.unix), now)
}

/// An instant for people: `2026-12-07 20:19:13 UTC`.
fn when(at: &Moment) -> String {
    UnixSecs::new(at.unix).utc()
}

/// The peers the text lists (all of the view's are in `--json`).
const SHOWN_PEERS: usize = 10;

fn render_broker(b: &BrokerStatus, now: UnixSecs) -> String {
    let mut out = String::new();
    let a = &b.accounts;
    let _ = writeln!(
        out,
        "broker {}  {}  {}, log at event {}, read {}",
        b.uid,
        b.suite,
        serving(b.serving),
        b.head,
        when(&b.at)
    );
    let _ = writeln!(
        out,
        "bank accounts  {} holding {}; external {}",
        a.bank_accounts, a.bank_total.value, a.external.value
    );
    let _ = writeln!(
        out,
        "float:broker   {} in {} live BrokerScrip ({} held)",
        a.float_broker.value, b.live_scrip.count, b.live_scrip.held
    );
    let _ = writeln!(
        out,
        "peers          {} registered: {} merchants, {} customers",
        b.peers.total, b.peers.merchants, b.peers.customers
    );
    for p in b.peers.rows.iter().take(SHOWN_PEERS) {
        let name = p
            .name
            .as_deref()
            .map_or_else(String::new, |n| format!("  {n}"));
        let _ = writeln!(out, "  {}  {}{name}", p.uid, p.kind);
    }
    if b.peers.total > SHOWN_PEERS.min(b.peers.rows.len()) {
        let _ = writeln!(
            out,
            "  … and {} more (--json lists the first {})",
            b.peers.total - SHOWN_PEERS.min(b.peers.rows.len()),
            b.peers.rows.len()
        );
    }
    let _ = writeln!(
        out,
        "merchants      {} known; {} of their VendorScrip outstanding (vendor memos)",
        b.floats.total, a.vendor_memo_total.value
    );
    for f in &b.floats.rows {
        let name = f
            .name
            .as_deref()
            .map_or_else(String::new, |n| format!("{n}  "));
        let _ = writeln!(
            out,
            "  {}  {name}memo float:vendor {}",
            f.merchant, f.memo.value
        );
    }
    more(&mut out, b.floats.total, b.floats.rows.len());
    let _ = writeln!(out, "open exchanges {} (6.2)", b.exchanges.total);
    for e in &b.exchanges.rows {
        let _ = writeln!(
            out,
            "  tx {}  customer {}  merchant {}  closes {}",
            e.tx,
            e.customer,
            e.merchant,
            deadline(&e.deadline, now)
        );
    }
    more(&mut out, b.exchanges.total, b.exchanges.rows.len());
    let _ = writeln!(out, "open escrows   {} (6.5)", b.escrows.total);
    for e in &b.escrows.rows {
        let _ = writeln!(
            out,
            "  tx {}  customer {}  merchant {}  top-up {}  released {}",
            e.tx,
            e.customer,
            e.merchant,
            e.top_up.value,
            deadline(&e.deadline, now)
        );
    }
    more(&mut out, b.escrows.total, b.escrows.rows.len());
    out
}

fn more(out: &mut String, total: usize, shown: usize) {
    if total > shown {
        let _ = writeln!(
            out,
            "  … and {} more (--json lists the first {shown})",
            total - shown
        );
    }
}

fn render_merchant(m: &MerchantStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "merchant {}{}  {}  {}, log at event {}, read {}",
        m.uid,
        m.name
            .as_deref()
            .map_or_else(String::new, |n| format!("  {n}")),
        m.suite,
        serving(m.serving),
        m.head,
        when(&m.at)
    );
    let _ = writeln!(out, "broker         {}", m.broker);
    let _ = writeln!(
        out,
        "VendorScrip    issued {}, paid for goods {}, withdrawn or lapsed {}",
        m.books.issued.value, m.books.paid.value, m.books.withdrawn.value
    );
    let _ = writeln!(
        out,
        "live scrip     {} worth {} ({} held, {} due to lapse)",
        m.live_scrip.count, m.live_scrip.value.value, m.live_scrip.held, m.live_scrip.due_to_lapse
    );
    let p = &m.pending;
    let _ = writeln!(
        out,
        "owed to broker {} reports worth {}; awaiting it: {} exchanges, {} top-ups, {} withdrawals, {} lapse notices",
        p.reports, p.reports_value.value, p.exchanges, p.top_ups, p.withdrawals, p.lapses
    );
    let _ = writeln!(out, "sales          {}", m.sales);
    for o in &m.orders {
        let _ = writeln!(
            out,
            "  {}  {} × {}  paid {}  customer {}  tx {}",
            when(&o.at),
            o.quantity,
            o.item_id,
            o.paid.value,
            o.customer,
            o.tx
        );
    }
    more(&mut out, m.sales, m.orders.len());
    out
}
