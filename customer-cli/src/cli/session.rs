//! A command's wallet and its connection (architecture.md "Transport"): the wallet opened
//! with its decrypted key, a [`Client`] on a NATS connection whose inbox is the wallet's
//! own (`_INBOX.<uid>`), and the wallet's peer subject subscribed before any request, so
//! no delivery of the command's transactions can be missed.
//!
//! Resume (protocol.md section 7, "on restart every node and wallet resumes each tx with
//! no recorded outcome"): every request is saved in the wallet before it leaves, so a
//! command that was interrupted or timed out leaves its transaction pending.
//! [`Session::reconcile_all`], run at the start of every command, and
//! [`Session::settle`], run by `status <tx>` and at the end of every three-party
//! transaction, finish it the way
//! [`crate::core::Pending::next_steps`] says: repeat the saved request (the same bodies,
//! so the same request digest: a node that already did it answers with its stored reply
//! and does nothing twice), or ask the node for the frames of the tx
//! (`TransactionStatus`). The wallet never starts a second request with a scrip a pending
//! one presents (`ScripBusy`), so the customer never pays twice.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use shared::bus::{BusError, NatsBus, NatsOptions, NatsSubscription};
use shared::wire::Label;
use shared::{KeyPair, TxId, Uid, UnixSecs};

use super::config::{ATTEMPTS, Settings, WalletDir, redact_url};
use super::exit::CliError;
use super::output::Progress;
use super::secret_input;
use crate::client::{Client, ClientError};
use crate::core::{HistoryEntry, NextStep, PendingStatus};
use crate::{Outgoing, Wallet, WalletError};

/// The wall clock (the wallet's core takes `now` as an argument).
#[must_use]
pub fn now() -> UnixSecs {
    UnixSecs::new(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Reads and decrypts the wallet's private key. A wrong passphrase is a usage error that
/// says so; the passphrase itself is never shown.
pub fn load_keys(
    dir: &WalletDir,
    settings: &Settings,
    passphrase_file: Option<&std::path::Path>,
) -> Result<KeyPair, CliError> {
    let path = dir.key();
    let pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(&path)
            .map_err(|e| CliError::Usage(format!("reading {}: {e}", path.display())))?,
    );
    let passphrase = secret_input::passphrase(passphrase_file, false)?;
    KeyPair::from_pkcs8_pem(settings.suite, &pem, Some(passphrase.as_bytes())).map_err(
        |e| match e {
            shared::suite::CryptoError::WrongPassphrase => {
                CliError::Usage(format!("wrong passphrase for {}", path.display()))
            }
            other => CliError::Usage(format!("{}: {other}", path.display())),
        },
    )
}

/// The first pause while the wallet file is in use by another command; each next pause
/// doubles, up to [`LOCK_PAUSE_MAX`].
const LOCK_PAUSE_FIRST: Duration = Duration::from_millis(25);
/// The longest pause between two attempts to open a wallet file in use.
const LOCK_PAUSE_MAX: Duration = Duration::from_millis(500);

/// Opens the wallet of `dir` with its key.
///
/// One wallet file has one writer at a time (redb's file lock, as a node's log: two
/// handles folding one log would each decide from a state the other changes), so a
/// second `peerscrip` command on the same wallet waits for the first to finish: it tries
/// again after a pause that doubles from 25 ms up to 0.5 s, for at most `settings.timeout`
/// (`--timeout`), then gives up with [`CliError::WalletBusy`], having changed nothing.
pub async fn open_wallet(
    dir: &WalletDir,
    settings: &Settings,
    passphrase_file: Option<&std::path::Path>,
    progress: &Progress,
) -> Result<Wallet, CliError> {
    let keys = load_keys(dir, settings, passphrase_file)?;
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let mut backoff = shared::runtime::Backoff::new(LOCK_PAUSE_FIRST, LOCK_PAUSE_MAX);
    loop {
        match Wallet::open(dir.wallet(), keys.clone()) {
            Err(WalletError::Log(shared::events::LogError::Locked { .. })) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    progress.finish();
                    return Err(CliError::WalletBusy {
                        waited: settings.timeout,
                    });
                }
                progress.step("the wallet is in use by another peerscrip command; waiting for it");
                tokio::time::sleep(backoff.pause().min(left)).await;
            }
            other => {
                progress.finish();
                return other.map_err(CliError::from);
            }
        }
    }
}

/// What reconciling one pending transaction came to.
#[derive(Clone, Debug)]
pub struct Resumed {
    /// The transaction.
    pub tx: TxId,
    /// Its history lines recorded while resuming.
    pub recorded: Vec<HistoryEntry>,
    /// Whether it is still pending.
    pub still_pending: bool,
}

/// A wallet with its connection (see the module doc).
pub struct Session {
    /// The wallet.
    pub wallet: Wallet,
    /// Its driver on the bus.
    pub client: Client<NatsBus>,
    /// The wallet's peer subject.
    deliveries: NatsSubscription,
    /// The settings it runs with.
    pub settings: Settings,
    /// The progress line.
    pub progress: Progress,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("wallet", &self.wallet)
            .finish_non_exhaustive()
    }
}

/// The wallet's client on a new NATS connection, and its peer subject subscribed.
async fn link(
    wallet: &Wallet,
    settings: &Settings,
) -> Result<(Client<NatsBus>, NatsSubscription), CliError> {
    let uid = wallet.uid();
    let broker = wallet
        .state()
        .broker()
        .ok_or_else(|| CliError::Failed("the wallet pins no broker".to_owned()))?;
    let credentials = match &settings.credentials {
        Some(c) => Some(c.load()?),
        None => None,
    };
    let options = NatsOptions {
        inbox_prefix: Some(settings.subjects.inbox_prefix(&uid)),
        name: Some("peerscrip".to_owned()),
        connection_timeout: Some(settings.timeout),
        credentials,
        tls: settings.tls.clone(),
    };
    let bus = NatsBus::connect(&settings.nats_url, options)
        .await
        .map_err(|e| connect_error(&e, &settings.nats_url))?;
    let client = Client::new(
        bus,
        settings.subjects.clone(),
        broker,
        settings.timeout,
        ATTEMPTS,
    );
    let deliveries = client
        .subscribe_deliveries(&uid)
        .await
        .map_err(|e| CliError::from_bus(&e, "subscribing to the wallet's peer subject", None))?;
    Ok((client, deliveries))
}

/// Why the first connection failed, as the command's error: credentials or TLS the server
/// (or the wallet) could not use are a configuration error; anything else is unreachable.
fn connect_error(e: &BusError, url: &str) -> CliError {
    use async_nats::ConnectErrorKind;
    let url = redact_url(url);
    match e {
        BusError::Credentials(_) | BusError::Tls(_) => CliError::Usage(e.to_string()),
        BusError::Connect(c)
            if matches!(
                c.kind(),
                ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication
            ) =>
        {
            CliError::Usage(format!(
                "the NATS server at {url} refused the wallet's credentials: {c}"
            ))
        }
        _ => CliError::Unreachable {
            message: format!("no NATS server at {url}: {e}"),
            tx: None,
        },
    }
}

/// Whether a refused request may be given up (`Wallet::abandon`): the node's refusal of
/// it changed nothing anywhere (protocol.md section 3). Not so for 6.2 step 2: the broker
/// already holds B0 for the exchange, and its decision (a NOK returning B0 at the
/// deadline) must still find the request pending.
fn may_abandon(label: Label) -> bool {
    label != Label::VendorScripRequest
}

impl Session {
    /// Connects `wallet` to the NATS server of `settings` and subscribes its peer subject.
    /// On failure the wallet is handed back with the error (a local command still shows
    /// it).
    pub async fn connect(
        wallet: Wallet,
        settings: Settings,
        progress: Progress,
    ) -> Result<Session, Box<(CliError, Wallet)>> {
        progress.step(format!("connecting to {}", redact_url(&settings.nats_url)));
        match link(&wallet, &settings).await {
            Ok((client, deliveries)) => Ok(Session {
                wallet,
                client,
                deliveries,
                settings,
                progress,
            }),
            Err(e) => Err(Box::new((e, wallet))),
        }
    }

    /// The pinned broker's UID.
    #[must_use]
    pub fn broker(&self) -> Uid {
        self.wallet.state().broker().unwrap_or(Uid([0; 16]))
    }

    /// Whether any request of `tx` is pending.
    #[must_use]
    pub fn is_pending(&self, tx: TxId) -> bool {
        self.wallet.pending().any(|p| p.request.tx() == tx)
    }

    /// Sends a request the wallet just saved and records its reply. A node's refusal gives
    /// the request up (when that is safe, see [`may_abandon`]) and is
    /// [`CliError::Refused`]; no answer leaves it pending ([`CliError::Pending`] or
    /// [`CliError::Unreachable`] with the tx).
    pub async fn send(&mut self, out: Outgoing, what: &str) -> Result<HistoryEntry, CliError> {
        let (tx, label) = (out.tx, out.label);
        self.progress.step(what.to_owned());
        match self.client.send(&mut self.wallet, out, now()).await {
            Ok(entry) => Ok(entry),
            Err(e) => Err(self.failed(e, what, tx, label)),
        }
    }

    /// The error of a saved request `(tx, label)` that got no recorded outcome; a refusal
    /// gives the request up first when that is safe.
    fn failed(&mut self, e: ClientError, what: &str, tx: TxId, label: Label) -> CliError {
        match e {
            ClientError::Wallet(e @ WalletError::Refused { .. }) => {
                if may_abandon(label)
                    && let Err(abandon) = self.wallet.abandon(tx, label, now())
                {
                    return CliError::from(abandon);
                }
                CliError::from_wallet(e, Some(tx))
            }
            e => CliError::from_client(e, what, tx, true),
        }
    }

    /// Takes deliveries from the peer subject until `tx` has no pending request or
    /// `deadline` passed. A delivery of another tx (a late one of an earlier command) is
    /// recorded too; one the wallet refuses changes nothing and is skipped.
    pub async fn await_deliveries(&mut self, tx: TxId, deadline: Duration) -> Vec<HistoryEntry> {
        let until = tokio::time::Instant::now() + deadline;
        let mut recorded = Vec::new();
        while self.is_pending(tx) {
            match tokio::time::timeout_at(until, self.deliveries.next()).await {
                Ok(Some(incoming)) => {
                    if let Ok(entry) = self.wallet.handle_reply(&incoming.into_payload(), now()) {
                        recorded.push(entry);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        recorded
    }

    /// Asks `node` for the frames of `tx` it sent the wallet and records them (section 7).
    async fn ask_status(&mut self, tx: TxId, node: Uid) -> Result<Vec<HistoryEntry>, CliError> {
        self.progress
            .step(format!("asking {node} for the state of tx {tx}"));
        let (query, out) = self.wallet.transaction_status(tx, node)?;
        let answer = self
            .client
            .ask(&out)
            .await
            .map_err(|e| CliError::from_client(e, "TransactionStatus", tx, false))?;
        let results = self.wallet.handle_status(&query, &answer, now())?;
        Ok(results.into_iter().filter_map(Result::ok).collect())
    }

    /// Finishes `tx` as far as its nodes allow now (see the module doc): deliveries, then
    /// each pending request's next steps, then the deliveries those caused. `Ok` with the
    /// history lines recorded once nothing of `tx` is pending; [`CliError::Pending`] (or
    /// [`CliError::Unreachable`], or the node's refusal) otherwise.
    pub async fn settle(&mut self, tx: TxId) -> Result<Vec<HistoryEntry>, CliError> {
        let timeout = self.settings.timeout;
        let mut recorded = self.await_deliveries(tx, Duration::ZERO).await;
        let mut last_error: Option<CliError> = None;
        // Each step is taken once, and the next one is chosen from the state it left: a
        // `TransactionStatus` that brought the broker's settlement of 6.2 makes step 2
        // unrenderable (B0 is gone) and the merchant's answer the thing to ask for.
        let mut tried: Vec<(Label, NextStep)> = Vec::new();
        while let Some((label, step)) = self.next_step(tx, &tried) {
            tried.push((label, step));
            let result = match step {
                NextStep::Resend => self.resend(tx, label).await,
                NextStep::AskStatus(node) => self.ask_status(tx, node).await,
                NextStep::Decide => {
                    self.wallet.abandon(tx, label, now())?;
                    Ok(Vec::new())
                }
            };
            match result {
                Ok(lines) => recorded.extend(lines),
                Err(e @ CliError::Refused { .. }) => return Err(e),
                Err(e) => last_error = Some(e),
            }
        }
        recorded.extend(self.await_deliveries(tx, timeout).await);
        if !self.is_pending(tx) {
            return Ok(recorded);
        }
        Err(match last_error {
            Some(e @ CliError::Unreachable { .. }) => CliError::Unreachable {
                message: e.to_string(),
                tx: Some(tx),
            },
            Some(e) => CliError::Pending {
                tx,
                message: e.to_string(),
            },
            None => CliError::Pending {
                tx,
                message: self.awaited(tx),
            },
        })
    }

    /// The next step of a pending request of `tx` not yet in `tried`, as
    /// [`crate::core::Pending::next_steps`] says. A refused request is given up
    /// (`Decide`) when that is safe; a refused 6.2 step 2 is not (the broker holds B0
    /// until its deadline), so the broker is asked for its decision instead.
    fn next_step(&self, tx: TxId, tried: &[(Label, NextStep)]) -> Option<(Label, NextStep)> {
        let broker = self.broker();
        self.wallet
            .pending()
            .filter(|p| p.request.tx() == tx)
            .find_map(|p| {
                let label = p.request.label();
                let steps = match p.status {
                    PendingStatus::Sent => p.next_steps(broker),
                    PendingStatus::Refused { .. } if may_abandon(label) => vec![NextStep::Decide],
                    PendingStatus::Refused { .. } => vec![NextStep::AskStatus(broker)],
                    // Given up: nothing more to do (`Wallet::pending` does not list it).
                    PendingStatus::Abandoned => Vec::new(),
                };
                steps
                    .into_iter()
                    .find(|s| !tried.contains(&(label, *s)))
                    .map(|s| (label, s))
            })
    }

    /// What the pending requests of `tx` still wait for, in words.
    #[must_use]
    pub fn awaited(&self, tx: TxId) -> String {
        let labels: Vec<String> = self
            .wallet
            .pending()
            .filter(|p| p.request.tx() == tx)
            .map(|p| format!("the outcome of {}", p.request.label()))
            .collect();
        labels.join(", ")
    }

    /// Repeats a pending request: 6.2 step 2 one way (the merchant answers on the peer
    /// subject once the broker decided), any other as a request with its reply. A node
    /// still waiting for the broker answers `Ack`: not an error, the tx stays pending.
    async fn resend(&mut self, tx: TxId, label: Label) -> Result<Vec<HistoryEntry>, CliError> {
        let out = self.wallet.resend(tx, label)?;
        if label == Label::VendorScripRequest {
            self.progress.step(format!("repeating {label} of tx {tx}"));
            self.client
                .publish(&out)
                .await
                .map_err(|e| CliError::from_bus(&e, "repeating 6.2 step 2", Some(tx)))?;
            return Ok(Vec::new());
        }
        let what = format!("repeating {label} of tx {tx}");
        self.progress.step(what.clone());
        match self.client.send(&mut self.wallet, out, now()).await {
            Ok(entry) => Ok(vec![entry]),
            Err(ClientError::Wallet(WalletError::AwaitingDecision { .. })) => Ok(Vec::new()),
            Err(e) => Err(self.failed(e, &what, tx, label)),
        }
    }

    /// Reconciles every pending transaction (the start of every command): each is settled
    /// as far as its nodes allow now. Never fails the command: what stays pending is
    /// reported, and a new request that would present its scrip is refused by the wallet.
    pub async fn reconcile_all(&mut self) -> Vec<Resumed> {
        let mut txs: Vec<TxId> = self.wallet.pending().map(|p| p.request.tx()).collect();
        txs.dedup();
        let mut out = Vec::new();
        for tx in txs {
            self.progress.step(format!("resuming tx {tx}"));
            let (recorded, still_pending) = match self.settle(tx).await {
                Ok(recorded) => (recorded, false),
                Err(_) => (Vec::new(), self.is_pending(tx)),
            };
            out.push(Resumed {
                tx,
                recorded,
                still_pending,
            });
        }
        out
    }

    /// Makes sure the wallet holds `peer`'s key, asking the broker for it (6.0b: a key
    /// arrives no other way) when it does not.
    pub async fn ensure_peer_key(&mut self, peer: Uid) -> Result<(), CliError> {
        if self.wallet.state().key_of(peer).is_some() {
            return Ok(());
        }
        let out = self.wallet.request_public_key(peer, now())?;
        self.send(out, "6.0b: fetching the merchant's key from the broker")
            .await
            .map(|_| ())
    }
}
