//! The wallet's one error type: why a request could not be started, why a reply was
//! refused, or why the wallet file could not be used.
//!
//! A refused reply (every variant under "reply checks") changes nothing in the wallet: the
//! request stays pending and may be repeated (protocol.md section 7). An `Error` frame from
//! the node is [`WalletError::Refused`], which records only the pending request's status.
//! No variant carries a secret.

use shared::events::LogError;
use shared::suite::CryptoError;
use shared::wire::{Label, WireError};
use shared::{Amount, AmountError, ErrorCode, ScripId, Suite, TxId, Uid};

/// A failure of the wallet (see the module doc).
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    // --- the wallet file and its keys ---
    /// The event log refused or failed (protocol.md section 8).
    #[error("wallet file: {0}")]
    Log(#[from] LogError),
    /// The file holds no wallet (no `WalletCreated` event).
    #[error("the file holds no wallet")]
    NotAWallet,
    /// [`crate::Wallet::create`] on a file that already holds a wallet.
    #[error("the file already holds the wallet of {uid}")]
    AlreadyAWallet {
        /// The wallet's UID.
        uid: Uid,
    },
    /// The key pair given is not the one the wallet was created for.
    #[error("the wallet belongs to {expected}, the key given is {found}")]
    WrongKey {
        /// The wallet's UID.
        expected: Uid,
        /// The UID of the key given.
        found: Uid,
    },
    /// A key of another suite than the wallet's (protocol.md section 2).
    #[error("a {found} key for a {expected} wallet")]
    WrongSuite {
        /// The wallet's suite.
        expected: Suite,
        /// The key's suite.
        found: Suite,
    },
    /// The projection tables differ from the state replayed from the log (section 8).
    #[error("wallet tables differ from its log replayed")]
    TablesDiffer,
    /// The file's tables are of a newer format than this build reads
    /// (`store::TABLES_FORMAT`): it was written by a later version of the wallet.
    #[error("wallet tables of format {found}; this build reads up to {supported}")]
    TablesFormat {
        /// The file's format.
        found: u32,
        /// This build's.
        supported: u32,
    },
    /// A sealed secret did not open, or opened to something other than what was sealed.
    #[error("a sealed secret of the wallet does not open: {0}")]
    SealedSecret(String),
    /// Sealing a secret or building a frame failed locally.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// A local frame could not be built (never a peer's fault).
    #[error("could not build the request: {0}")]
    Build(#[source] WireError),
    /// A local invariant failed (a bug, never a peer's doing); nothing was changed.
    #[error("internal: {0}")]
    Internal(String),
    /// An amount computation overflowed.
    #[error("amount: {0}")]
    Amount(#[from] AmountError),

    // --- starting a request ---
    /// No bank account is linked: requests with an IdProof need its PAN and ID (section 1).
    #[error("no bank account linked to the wallet")]
    NoAccount,
    /// The wallet is already registered (6.0: one registration per key).
    #[error("the wallet is already registered as {uid}")]
    AlreadyRegistered {
        /// The registered UID.
        uid: Uid,
    },
    /// A BrokerScrip is live: top it up instead (protocol.md sections 4 and 6.1).
    #[error("a BrokerScrip of {value} is live: top it up instead")]
    BrokerScripLive {
        /// Its value.
        value: Amount,
    },
    /// The wallet holds no scrip of this producer.
    #[error("no scrip of {producer} in the wallet")]
    NoScrip {
        /// The producer.
        producer: Uid,
    },
    /// A top-up must be to a larger value (6.4).
    #[error("top-up to {requested} is not more than the current {current}")]
    TopUpNotLarger {
        /// The live value.
        current: Amount,
        /// The value asked for.
        requested: Amount,
    },
    /// The scrip is already presented in a pending request: finish that one first.
    #[error("scrip {scrip_id} is in the pending request of tx {tx}")]
    ScripBusy {
        /// The scrip.
        scrip_id: ScripId,
        /// The pending request's tx.
        tx: TxId,
    },
    /// No key of this peer is known: ask the broker (6.0b); a key arrives no other way.
    #[error("no key of peer {uid}: request it from the broker (6.0b)")]
    UnknownPeer {
        /// The peer.
        uid: Uid,
    },
    /// No pending request has this tx and label.
    #[error("no pending {label} in tx {tx}")]
    NotPending {
        /// The tx.
        tx: TxId,
        /// The request label.
        label: Label,
    },
    /// A request of this kind is already pending: repeat it (or give it up if refused).
    #[error("a {label} is already pending in tx {tx}")]
    AlreadyPending {
        /// Its tx.
        tx: TxId,
        /// Its label.
        label: Label,
    },
    /// The scrip held is worth less than the transaction needs (6.2, 6.3).
    #[error("the scrip holds {held}, the transaction needs {needed}")]
    InsufficientScrip {
        /// The scrip's value.
        held: Amount,
        /// What is needed.
        needed: Amount,
    },
    /// A transaction of no value (a zero `W` or `W_P`).
    #[error("a transaction of no value")]
    ZeroValue,
    /// A VendorScrip of this merchant is live: top it up instead (6.5; section 4: at most
    /// one per merchant).
    #[error("a VendorScrip of {merchant} worth {value} is live: top it up instead")]
    VendorScripLive {
        /// The merchant.
        merchant: Uid,
        /// Its value.
        value: Amount,
    },
    /// A `TransactionStatusResponse` left out this many earlier frames of the tx because
    /// they did not fit one frame (protocol.md section 7): the frames it did carry were
    /// taken, the rest cannot be fetched this way.
    #[error("the node's status answer left out {omitted} earlier frames of the tx")]
    StatusIncomplete {
        /// How many frames were left out.
        omitted: u32,
    },
    /// Only a request the node refused (an `Error` reply) may be given up: any other may
    /// have succeeded at the node, and its outcome must still be fetched.
    #[error("the pending {label} of tx {tx} was not refused: repeat it instead")]
    NotRefused {
        /// The tx.
        tx: TxId,
        /// The request label.
        label: Label,
    },

    // --- reply checks (nothing changes in the wallet) ---
    /// The reply does not decode as a frame (section 3).
    #[error("reply does not decode: {0}")]
    Decode(#[source] WireError),
    /// No request of the wallet is pending in the reply's tx (section 3: discarded).
    #[error("no pending request in tx {tx}")]
    NoPendingRequest {
        /// The reply's tx.
        tx: TxId,
    },
    /// The reply's label does not answer the pending request (section 6, table of labels).
    #[error("a {reply} does not answer a {request}")]
    UnexpectedLabel {
        /// The pending request's label.
        request: Label,
        /// The reply's label.
        reply: Label,
    },
    /// The reply comes from another party than the request went to.
    #[error("reply from {found}, the request went to {expected}")]
    UnexpectedSender {
        /// The party asked.
        expected: Uid,
        /// The reply's sender.
        found: Uid,
    },
    /// The reply's suite is not the wallet's (section 2).
    #[error("reply of suite {found} to a {expected} wallet")]
    ReplySuite {
        /// The wallet's suite.
        expected: Suite,
        /// The reply's.
        found: Suite,
    },
    /// The reply's part does not open or verify (wrong signer, bad signature, tampering).
    #[error("reply does not verify: {0}")]
    BadReply(#[source] WireError),
    /// The reply's `re` names another request (section 3: discarded).
    #[error("reply's re does not match the pending request")]
    ReMismatch,
    /// The node answered the request with an `Error` whose `re` names it with an empty
    /// digest: it could not verify the request (e.g. `UnknownPeer`, a merchant that could
    /// not learn the customer's key while the broker was unreachable). Protocol.md section
    /// 3: such an `Error` only says "repeat or give up", never a decision; nothing was
    /// recorded and the request stays pending.
    #[error("{label:?} could not be verified by the node now ({code}: {message}); repeat it")]
    NotVerified {
        /// The request's label.
        label: Label,
        /// The `Error`'s code.
        code: u16,
        /// The node's text.
        message: String,
    },
    /// The reply's `N` is not the request's (6.0b, 6.1, 6.4).
    #[error("reply's nonce does not match the request's")]
    NonceMismatch,
    /// A value in the reply is not the one asked for (6.1, 6.4, 6.6, 6.8).
    #[error("reply's value {found} is not the expected {expected}")]
    ValueMismatch {
        /// What the request implies.
        expected: Amount,
        /// What the reply says.
        found: Amount,
    },
    /// The scrip in the reply is not produced by the party that issued it.
    #[error("scrip produced by {found}, expected {expected}")]
    WrongProducer {
        /// The replying producer.
        expected: Uid,
        /// The scrip's producer.
        found: Uid,
    },
    /// The CustomerSecret is missing or does not hash to the body's `cs_hash` (section 3).
    #[error("the CustomerSecret of scrip {scrip_id} is missing or does not match its cs_hash")]
    SecretMismatch {
        /// The scrip.
        scrip_id: ScripId,
    },
    /// This message of the tx was already recorded (section 7: a repeated delivery, or a
    /// frame fetched again by `TransactionStatus`); nothing changes.
    #[error("{label} of tx {tx} was already recorded")]
    AlreadyReceived {
        /// The tx.
        tx: TxId,
        /// The message's label.
        label: Label,
    },
    /// A message its flow does not take where the request stands (`core::flow`): nothing
    /// changes.
    #[error("out of step: {0}")]
    OutOfStep(#[source] crate::core::TransitionError),
    /// The node answered `Ack { re }`: it has not decided yet (6.2: M waits for the
    /// broker). Nothing changes; repeat the request later.
    #[error("{label} of tx {tx} is not decided yet: repeat it later")]
    AwaitingDecision {
        /// The tx.
        tx: TxId,
        /// The request.
        label: Label,
    },
    /// The broker's directory page (docs/adr/0016) is not in UID order after the cursor
    /// asked: not the page requested.
    #[error("the broker's merchant directory is not in UID order after the cursor")]
    DirectoryOutOfOrder,
    /// The reply's `OI` or receipt is not the order the wallet sent (6.3 step 4).
    #[error("the reply's order or receipt is not the order sent")]
    OrderMismatch,
    /// An `Ack` without the deadline its flow requires (6.5, 6.7), or a notice reply
    /// without one.
    #[error("the Ack carries no deadline")]
    MissingDeadline,
    /// The merchant's undertaking in `ChangeBrokerScrip` does not verify under the
    /// merchant's key, or does not say `W` to this customer (6.2 step 5).
    #[error("the merchant's undertaking does not verify or does not match the exchange")]
    BadUndertaking,
    /// A broker's decision whose parts disagree (change or undertaking with a NOK, none
    /// with an OK, change where none is due).
    #[error("the decision is inconsistent: {0}")]
    InconsistentDecision(&'static str),
    /// The reply names another UID than the one asked about (6.0, 6.0b).
    #[error("reply names {found}, expected {expected}")]
    UidMismatch {
        /// The UID asked about.
        expected: Uid,
        /// The UID in the reply.
        found: Uid,
    },
    /// The key in a 6.0b reply is not a key of the target (its UID differs) or not a key.
    #[error("the key in the reply is not a key of {target}")]
    BadPeerKey {
        /// The peer asked about.
        target: Uid,
    },
    /// The node refused the request with a signed `Error` (section 3). Recorded as the
    /// pending request's status; the request may be repeated.
    #[error("{label} refused: {} ({code}): {message}", code_name(*.error_code))]
    Refused {
        /// The request refused.
        label: Label,
        /// The code, if this wallet knows it.
        error_code: Option<ErrorCode>,
        /// The code's number.
        code: u16,
        /// The node's text.
        message: String,
    },
}

fn code_name(code: Option<ErrorCode>) -> &'static str {
    code.map_or("unknown code", ErrorCode::name)
}

impl WalletError {
    /// The node's error code of a [`WalletError::Refused`].
    #[must_use]
    pub fn refused_code(&self) -> Option<ErrorCode> {
        match self {
            WalletError::Refused { error_code, .. } => *error_code,
            _ => None,
        }
    }
}
