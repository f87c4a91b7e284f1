//! How a command of `peerscrip` or `peerscrip-ops` ends: one table of exit codes for both
//! binaries ([`Exit`], shown by `--help` from [`exit_codes_help`] and stated once in the
//! README), and the wallet's typed error behind a non-zero one (codes that tell refused,
//! unreachable and timed out apart, for scripts). `peerscrip-ops` maps its own errors onto
//! the same table (`ops::cli::exit_code`).
//!
//! No variant carries a secret: messages are built from typed errors that hold none
//! (`WalletError`, `CryptoError`, `BusError`), and from paths and UIDs.

use shared::bus::BusError;
use shared::wire::Label;
use shared::{ErrorCode, TxId};

use crate::WalletError;
use crate::client::ClientError;

/// The exit codes of every command of both binaries: a script tells what happened from
/// the code alone, whichever tool it ran. Clap's own usage errors exit [`Exit::Usage`]
/// too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: the command did what it was asked, every check held.
    Done,
    /// 1: it could not run, or failed in a way none of the others name.
    Failed,
    /// 2: bad arguments or configuration; nothing was done.
    Usage,
    /// 3: refused by a node or the wallet's own checks, or a check did not hold.
    Refused,
    /// 4: the NATS server or the node could not be reached.
    Unreachable,
    /// 5: no answer in time: pending, or a wait that ran out.
    TimedOut,
}

impl Exit {
    /// Every code, in order: the rows of the table.
    pub const ALL: [Exit; 6] = [
        Exit::Done,
        Exit::Failed,
        Exit::Usage,
        Exit::Refused,
        Exit::Unreachable,
        Exit::TimedOut,
    ];

    /// The process exit code.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Refused => 3,
            Exit::Unreachable => 4,
            Exit::TimedOut => 5,
        }
    }

    /// Its name in a `--json` error document (`"error"`).
    #[must_use]
    pub const fn kind(self) -> &'static str {
        match self {
            Exit::Done => "done",
            Exit::Failed => "failed",
            Exit::Usage => "usage",
            Exit::Refused => "refused",
            Exit::Unreachable => "unreachable",
            Exit::TimedOut => "timed_out",
        }
    }

    /// What it means, for `--help` and the README (one row of the table each).
    #[must_use]
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Done => "done (every check held)",
            Exit::Failed => {
                "failed: could not run (a file, a key, a log that cannot be read, a reply \
                 that did not verify, I/O)"
            }
            Exit::Usage => {
                "usage or configuration: bad arguments, no wallet, wrong passphrase, NATS \
                 credentials or TLS refused, `demo --data-dir` not empty, a key `audit` needs \
                 and was not given; nothing was done"
            }
            Exit::Refused => {
                "refused: by the node (its signed Error) or the wallet's own checks, nothing \
                 changed; or a check did not hold: an audit finding, a reconcile mismatch, \
                 a dispute bundle that does not verify or whose statements contradict, a \
                 demo check, an export stream that disagrees with the log"
            }
            Exit::Unreachable => {
                "unreachable: no NATS server at the URL, or no node serving the subject"
            }
            Exit::TimedOut => {
                "timed out: no answer in time; a wallet transaction stays pending (run \
                 `peerscrip status <tx>`), a bank request may be repeated as it was; or \
                 another peerscrip command kept the wallet busy for the whole --timeout \
                 (nothing was done)"
            }
        }
    }
}

/// The table of exit codes as `--help` shows it (`after_help` of both binaries and of the
/// `peerscrip-ops` subcommands), generated from [`Exit`] so that it cannot drift from the
/// codes.
#[must_use]
pub fn exit_codes_help() -> String {
    let mut text =
        String::from("Exit codes (the same for peerscrip and every peerscrip-ops command):");
    for exit in Exit::ALL {
        text.push_str(&format!("\n  {}  {}", exit.code(), exit.meaning()));
    }
    text.push_str(
        "\n--json: one JSON document on stdout, errors included ({\"ok\": false, \"error\", \
         \"exit_code\", \"message\"}); amounts as {\"value\": \"12.34\", \"minor\": 1234}, \
         times as {\"unix\", \"rfc3339\"} (and \"relative\" for an expiry or deadline). \
         `completions` and `man` write scripts and pages, not results: --json does not \
         apply to them.",
    );
    text
}

/// The error document of `--json`: the same keys for every command of both binaries
/// (`ok`, `error` the code's kind, `exit_code`, `message`); callers add what they know
/// (`tx`, `code`, `hint`).
#[must_use]
pub fn error_json(exit: Exit, message: &str) -> serde_json::Value {
    serde_json::json!({
        "ok": false,
        "error": exit.kind(),
        "exit_code": exit.code(),
        "message": message,
    })
}

/// Clap's message for a usage error, for the `--json` error document: its first
/// paragraph on one line (what is wrong, with the arguments it names), without the usage
/// and help lines that follow.
#[must_use]
pub fn usage_message(e: &clap::Error) -> String {
    let rendered = e.to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    let message = message.trim_start_matches("error: ");
    if message.is_empty() {
        "bad arguments".to_owned()
    } else {
        message.to_owned()
    }
}

/// Why a command did not succeed (see the module doc for the codes).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or configuration; exit 2.
    #[error("{0}")]
    Usage(String),
    /// The node refused the request with a signed `Error`; exit 3.
    #[error("{label} refused by the node: {name} ({code}): {message}")]
    Refused {
        /// The transaction.
        tx: TxId,
        /// The request refused.
        label: Label,
        /// The code's name, or "unknown code".
        name: &'static str,
        /// The code's number.
        code: u16,
        /// The node's text.
        message: String,
    },
    /// The broker decided NOK on a three-party transaction (protocol.md section 3: a
    /// decision, not an `Error`); nothing was paid; exit 3.
    #[error("declined: {message} (tx {tx})")]
    Declined {
        /// The transaction.
        tx: TxId,
        /// The decision in words.
        message: String,
    },
    /// The wallet refused to start the request (nothing was sent); exit 3.
    #[error("the wallet refused: {0}")]
    WalletRefused(String),
    /// No server or no responder; exit 4. `tx` when a transaction was left pending.
    #[error("unreachable: {message}")]
    Unreachable {
        /// What could not be reached.
        message: String,
        /// The transaction left pending, if any.
        tx: Option<TxId>,
    },
    /// The deadline passed with the transaction pending; exit 5.
    #[error("timed out: {message}; the transaction {tx} is pending: run `peerscrip status {tx}`")]
    Pending {
        /// The pending transaction.
        tx: TxId,
        /// What is still awaited.
        message: String,
    },
    /// Another `peerscrip` command kept the wallet file open (its lock) for the whole
    /// wait; nothing was done; exit 5 (timed out: the wait for the wallet ran out).
    #[error(
        "the wallet is in use by another peerscrip command; waited {}s for it: nothing was \
         done, run this command again when the other one has finished (or wait longer with \
         --timeout)",
        waited.as_secs_f64()
    )]
    WalletBusy {
        /// How long the command waited.
        waited: std::time::Duration,
    },
    /// Anything else; exit 1.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// Its row of the table ([`Exit`]).
    #[must_use]
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Failed(_) => Exit::Failed,
            CliError::Usage(_) => Exit::Usage,
            CliError::Refused { .. } | CliError::Declined { .. } | CliError::WalletRefused(_) => {
                Exit::Refused
            }
            CliError::Unreachable { .. } => Exit::Unreachable,
            CliError::Pending { .. } | CliError::WalletBusy { .. } => Exit::TimedOut,
        }
    }

    /// The process exit code ([`Exit::code`]).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        self.exit().code()
    }

    /// The short kind of the error, for `--json` ([`Exit::kind`]).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.exit().kind()
    }

    /// The transaction the error concerns, if any.
    #[must_use]
    pub fn tx(&self) -> Option<TxId> {
        match self {
            CliError::Refused { tx, .. }
            | CliError::Declined { tx, .. }
            | CliError::Pending { tx, .. } => Some(*tx),
            CliError::Unreachable { tx, .. } => *tx,
            _ => None,
        }
    }

    /// The next step, when there is one obvious to the user: a scrip refused as `Expired`
    /// is not lost, it is renewed (protocol.md 6.8), which the wallet does with `peerscrip
    /// renew` (every expired scrip it holds, or one producer's).
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::Refused { code, .. } if *code == ErrorCode::Expired.code() => Some(
                "the scrip has expired; `peerscrip renew` exchanges expired scrip for fresh \
                 scrip of the same producer (6.8)",
            ),
            _ => None,
        }
    }

    /// The error as one JSON document (`--json`).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = error_json(self.exit(), &self.to_string());
        if let Some(tx) = self.tx() {
            doc["tx"] = tx.to_string().into();
        }
        if let CliError::Refused { code, name, .. } = self {
            doc["code"] = (*code).into();
            doc["code_name"] = (*name).into();
        }
        if let Some(hint) = self.hint() {
            doc["hint"] = hint.into();
        }
        doc
    }

    /// A wallet error met while a transaction `tx` (if any) was under way.
    #[must_use]
    pub fn from_wallet(e: WalletError, tx: Option<TxId>) -> CliError {
        match e {
            WalletError::Refused {
                label,
                error_code,
                code,
                message,
            } => CliError::Refused {
                tx: tx.unwrap_or(crate::LOCAL_TX),
                label,
                name: error_code.map_or("unknown code", ErrorCode::name),
                code,
                message,
            },
            e @ (WalletError::NoAccount
            | WalletError::AlreadyRegistered { .. }
            | WalletError::BrokerScripLive { .. }
            | WalletError::NoScrip { .. }
            | WalletError::TopUpNotLarger { .. }
            | WalletError::ScripBusy { .. }
            | WalletError::UnknownPeer { .. }
            | WalletError::AlreadyPending { .. }
            | WalletError::InsufficientScrip { .. }
            | WalletError::ZeroValue
            | WalletError::VendorScripLive { .. }) => CliError::WalletRefused(e.to_string()),
            // The node could not verify the request now: nothing was decided (protocol.md
            // section 3); the node cannot serve it yet. A saved request stays pending
            // (`from_client`).
            e @ WalletError::NotVerified { .. } => CliError::Unreachable {
                message: e.to_string(),
                tx: None,
            },
            WalletError::NotAWallet => {
                CliError::Usage("no wallet here: run `peerscrip init` first".to_owned())
            }
            e @ (WalletError::WrongKey { .. } | WalletError::WrongSuite { .. }) => {
                CliError::Usage(e.to_string())
            }
            other => CliError::Failed(other.to_string()),
        }
    }

    /// A transport failure while `tx` (if any) was under way.
    #[must_use]
    pub fn from_bus(e: &BusError, what: &str, tx: Option<TxId>) -> CliError {
        match (e, tx) {
            (BusError::Timeout, Some(tx)) => CliError::Pending {
                tx,
                message: format!("no answer from {what}"),
            },
            // The connection to the server failed in the middle of the request: whether it
            // arrived is unknown, so a saved request stays pending like one unanswered.
            (BusError::Transport(_), Some(tx)) => CliError::Pending {
                tx,
                message: format!("{what}: the connection to the NATS server failed: {e}"),
            },
            (
                BusError::Timeout
                | BusError::NoResponders
                | BusError::Connect(_)
                | BusError::Transport(_),
                _,
            ) => CliError::Unreachable {
                message: format!("{what}: {e}"),
                tx,
            },
            _ => CliError::Failed(format!("{what}: {e}")),
        }
    }

    /// A failure of [`crate::client::Client::send`] or `ask` for `tx` (its request saved,
    /// when `saved`).
    #[must_use]
    pub fn from_client(e: ClientError, what: &str, tx: TxId, saved: bool) -> CliError {
        let tx_if_saved = saved.then_some(tx);
        match e {
            ClientError::NoReply { last, .. } => CliError::from_bus(&last, what, tx_if_saved),
            e @ (ClientError::Unavailable { .. } | ClientError::OverQuota { .. }) => {
                let message = if matches!(e, ClientError::Unavailable { .. }) {
                    format!(
                        "{what} cannot write its log now (Unavailable, docs/protocol.md section 10)"
                    )
                } else {
                    format!(
                        "{what} refused it as over its quota; try again later (TooManyRequests, docs/protocol.md section 10)"
                    )
                };
                match tx_if_saved {
                    Some(tx) => CliError::Pending { tx, message },
                    None => CliError::Unreachable { message, tx: None },
                }
            }
            ClientError::Bus(e) => CliError::from_bus(&e, what, tx_if_saved),
            // Not verified by the node after every attempt: like `Unavailable`.
            ClientError::Wallet(e @ WalletError::NotVerified { .. }) => match tx_if_saved {
                Some(tx) => CliError::Pending {
                    tx,
                    message: format!("{what}: {e}"),
                },
                None => CliError::from_wallet(e, None),
            },
            ClientError::Wallet(e) => CliError::from_wallet(e, Some(tx)),
        }
    }
}

impl From<WalletError> for CliError {
    fn from(e: WalletError) -> CliError {
        CliError::from_wallet(e, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection that fails in the middle of a request leaves a saved request pending
    /// (exit 5) and a query unreachable (exit 4), never a failure (exit 1).
    #[test]
    fn a_lost_connection_is_pending_or_unreachable() {
        let tx = TxId([7; 16]);
        let lost = || BusError::Transport(Box::new(std::io::Error::other("reset")));
        assert_eq!(
            CliError::from_bus(&lost(), "the broker", Some(tx)).exit_code(),
            5
        );
        assert_eq!(
            CliError::from_bus(&lost(), "the broker", None).exit_code(),
            4
        );
        let large = BusError::TooLarge { size: 1 << 20 };
        assert_eq!(
            CliError::from_bus(&large, "the broker", Some(tx)).exit_code(),
            1
        );
    }

    #[test]
    fn each_kind_has_its_exit_code_and_json() {
        let tx = TxId([7; 16]);
        let cases = [
            (CliError::Failed("x".into()), 1, "failed"),
            (CliError::Usage("x".into()), 2, "usage"),
            (CliError::WalletRefused("x".into()), 3, "refused"),
            (
                CliError::Declined {
                    tx,
                    message: "x".into(),
                },
                3,
                "refused",
            ),
            (
                CliError::Unreachable {
                    message: "x".into(),
                    tx: None,
                },
                4,
                "unreachable",
            ),
            (
                CliError::Pending {
                    tx,
                    message: "x".into(),
                },
                5,
                "timed_out",
            ),
            (
                CliError::WalletBusy {
                    waited: std::time::Duration::from_secs(2),
                },
                5,
                "timed_out",
            ),
        ];
        for (e, code, kind) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
            let doc = e.to_json();
            assert_eq!(doc["ok"], false);
            assert_eq!(doc["error"], kind);
            assert_eq!(doc["exit_code"], code);
        }
    }

    /// One row per code, 0 to 5 in order, each in the help text once; the kinds are
    /// distinct (a script may switch on either).
    #[test]
    fn the_table_is_the_codes_in_order_and_the_help_states_each_once() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5]);
        let kinds: std::collections::BTreeSet<_> = Exit::ALL.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds.len(), Exit::ALL.len());
        let help = exit_codes_help();
        for exit in Exit::ALL {
            let row = format!("\n  {}  {}", exit.code(), exit.meaning());
            assert_eq!(help.matches(&row).count(), 1, "{help}");
        }
        let busy = CliError::WalletBusy {
            waited: std::time::Duration::from_secs(1),
        };
        assert_eq!(busy.exit(), Exit::TimedOut);
        assert!(
            busy.to_string().starts_with("the wallet is in use"),
            "{busy}"
        );
    }

    #[test]
    fn a_node_refusal_keeps_its_code_and_tx() {
        let tx = TxId([9; 16]);
        let e = CliError::from_wallet(
            WalletError::Refused {
                label: Label::BrokerScripRequest,
                error_code: Some(ErrorCode::InsufficientFunds),
                code: ErrorCode::InsufficientFunds.code(),
                message: "not enough".into(),
            },
            Some(tx),
        );
        assert_eq!(e.exit_code(), 3);
        let doc = e.to_json();
        assert_eq!(doc["code_name"], "InsufficientFunds");
        assert_eq!(doc["tx"], tx.to_string());
    }

    #[test]
    fn an_expired_refusal_suggests_renew_and_no_other_does() {
        let refused = |code: ErrorCode| {
            CliError::from_wallet(
                WalletError::Refused {
                    label: Label::PurchaseRequest,
                    error_code: Some(code),
                    code: code.code(),
                    message: "refused".into(),
                },
                Some(TxId([7; 16])),
            )
        };
        let expired = refused(ErrorCode::Expired);
        let hint = expired.hint().unwrap();
        assert!(hint.contains("`peerscrip renew`"), "{hint}");
        assert_eq!(expired.to_json()["hint"], hint);
        assert_eq!(expired.exit_code(), 3);
        let spent = refused(ErrorCode::Spent);
        assert_eq!(spent.hint(), None);
        assert!(spent.to_json().get("hint").is_none());
    }

    #[test]
    fn transport_failures_are_unreachable_or_pending() {
        let tx = TxId([1; 16]);
        assert_eq!(
            CliError::from_bus(&BusError::Timeout, "b", Some(tx)).exit_code(),
            5
        );
        assert_eq!(
            CliError::from_bus(&BusError::Timeout, "b", None).exit_code(),
            4
        );
        let no_one = CliError::from_bus(&BusError::NoResponders, "b", Some(tx));
        assert_eq!(no_one.exit_code(), 4);
        assert_eq!(no_one.tx(), Some(tx));
        assert_eq!(
            CliError::from_bus(&BusError::Closed, "b", None).exit_code(),
            1
        );
        assert_eq!(
            CliError::from(WalletError::ZeroValue).exit_code(),
            3,
            "the wallet's own refusal"
        );
        assert_eq!(CliError::from(WalletError::NotAWallet).exit_code(), 2);
    }
}
