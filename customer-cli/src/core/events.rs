//! The wallet's events (protocol.md section 8: "each customer wallet keeps an append-only
//! log of events in its own redb file"), one variant per thing that happened to it.
//!
//! No event holds a secret: CustomerSecrets and the account ID are [`SealedSecret`]s under
//! the wallet's own key; a saved request names the scrip whose secret it carries but not the
//! secret. The evidence of a completion (the node's signed reply body, section 8) is in the
//! event envelope's `evidence`, not here.

use serde::{Deserialize, Serialize};
use shared::wire::Label;
use shared::wire::bodies::{OrderId, Receipt};
use shared::{Amount, Pan, Scrip, ScripId, Suite, TxId, Uid};

use super::flow::Message;
use super::request::SavedRequest;
use crate::sealed::SealedSecret;

/// The wallet's own identity and the broker it pins (protocol.md section 1: the broker's
/// key is distributed out of band and every peer pins it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The deployment's suite (section 2).
    pub suite: Suite,
    /// The wallet's UID: the key pair it must be opened with.
    pub me: Uid,
    /// The wallet's public key, SPKI DER.
    pub my_key: Vec<u8>,
    /// The pinned broker's UID.
    pub broker: Uid,
    /// The pinned broker's public key, SPKI DER.
    pub broker_key: Vec<u8>,
}

/// The bank account the wallet proves with IdProofs (protocol.md sections 1 and 3). The
/// PANSecret is never kept; the `ID` derived from it is kept sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// The account number.
    pub pan: Pan,
    /// `ID = H(PANSecret ‖ H(PANSecret) ‖ PAN)`, sealed under the wallet's key.
    pub sealed_id: SealedSecret,
    /// `H("peerscrip/id-commit" ‖ ID)`, to check the opened ID (section 1).
    pub id_commitment: Vec<u8>,
}

/// A scrip the wallet holds, with its CustomerSecret sealed under the wallet's key (the
/// paper's `PKEnc_KC(B0)`, protocol.md section 6.1 step 4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedScrip {
    /// The scrip as the producer certified it.
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS)`, as the producer signed it; checks the opened secret.
    pub cs_hash: Vec<u8>,
    /// The CustomerSecret, sealed.
    pub sealed_cs: SealedSecret,
    /// The tx that brought it.
    pub obtained_in: TxId,
}

impl OwnedScrip {
    /// The producer.
    #[must_use]
    pub fn producer(&self) -> Uid {
        self.scrip.body.producer
    }
}

/// What happened to the wallet. The event's tx (in the envelope) is the transaction's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalletEvent {
    /// The wallet file was made for this key pair and this broker (section 1).
    WalletCreated {
        /// Who the wallet is and which broker it pins.
        identity: Identity,
    },
    /// The bank account was linked (section 1).
    AccountLinked {
        /// The PAN and the sealed ID.
        account: AccountRecord,
    },
    /// A request was saved before it left (section 7).
    RequestSaved {
        /// The request, its bodies byte for byte.
        request: SavedRequest,
    },
    /// The node refused the request with a signed `Error` (section 3). Only the pending
    /// request's status changes; it may be repeated.
    RequestRefused {
        /// The request's label.
        label: Label,
        /// The `ErrorCode` number.
        code: u16,
        /// The node's text (never a secret).
        message: String,
    },
    /// The customer gave up a refused request.
    RequestAbandoned {
        /// The request's label.
        label: Label,
    },
    /// 6.0 step 3: the broker registered the wallet's key.
    Registered {
        /// The registered UID (the wallet's).
        uid: Uid,
    },
    /// 6.0b step 3: a peer's key, certified by the broker's signature.
    PeerKeyCached {
        /// The peer.
        uid: Uid,
        /// Its key, SPKI DER.
        spki_der: Vec<u8>,
    },
    /// 6.1 step 4: B0 stored.
    BrokerScripObtained {
        /// B0 with its sealed CS.
        scrip: OwnedScrip,
    },
    /// 6.4 step 3: B0 spent, B1 stored.
    BrokerScripToppedUp {
        /// B0.
        spent: ScripId,
        /// B1 with its sealed CS.
        scrip: OwnedScrip,
    },
    /// 6.6 step 3: B0 cashed in, deleted.
    BrokerScripWithdrawn {
        /// B0.
        spent: ScripId,
        /// The value credited to the bank account.
        value: Amount,
    },
    /// 6.8 step 3: E0 replaced by E1.
    ScripRenewed {
        /// E0.
        spent: ScripId,
        /// E1 with its sealed CS.
        scrip: OwnedScrip,
    },
    /// 6.2 step 1's reply: the broker opened the exchange; step 2 (`VendorScripRequest`
    /// to M) is saved in the same event, so it is never sent before the notice is answered
    /// and is resumed after a restart.
    ExchangeNoticed {
        /// The broker's deadline, unix seconds.
        deadline: u64,
        /// Step 2, saved (section 7).
        request: SavedRequest,
    },
    /// 6.2 step 5: the broker's `ChangeBrokerScrip`. OK: B0 spent, the change
    /// B1 stored (none when zero); M's undertaking is in the event's evidence. NOK: B0 is
    /// live again and the exchange is over.
    ExchangeSettled {
        /// B0.
        spent: ScripId,
        /// The broker's decision.
        outcome: Outcome,
        /// B1, on OK with change.
        change: Option<OwnedScrip>,
    },
    /// 6.2 step 7: M's `VendorScripResponse`: V0 stored.
    VendorScripObtained {
        /// V0 with its sealed CS.
        scrip: OwnedScrip,
    },
    /// 6.3 step 1's `Ack`: the broker logged the purchase.
    PurchaseAnnounced,
    /// 6.3 step 4: V0 spent, the change V1 stored (none when zero), the receipt kept.
    ItemBought {
        /// V0.
        spent: ScripId,
        /// V1, if any.
        change: Option<OwnedScrip>,
        /// The order.
        order_id: OrderId,
        /// M's receipt.
        receipt: Receipt,
    },
    /// 6.5 step 1's `Ack`: B holds B0 in escrow until `deadline`.
    VendorTopUpAcked {
        /// B's deadline, unix seconds.
        deadline: u64,
    },
    /// 6.5 step 6: B's `ChangeBrokerScrip`. OK: B0 spent, B1 stored (none when
    /// zero), M's acceptance in the evidence. NOK (declined, expired, released): B0 and V0
    /// are live again and the top-up is over.
    VendorTopUpSettled {
        /// B0.
        spent: ScripId,
        /// The broker's decision.
        outcome: Outcome,
        /// B1, on OK with change.
        change: Option<OwnedScrip>,
    },
    /// 6.5 step 5: M's `VendorTopUpResponse`: V0 replaced by V1.
    VendorScripToppedUp {
        /// V0.
        spent: ScripId,
        /// V1 with its sealed CS.
        scrip: OwnedScrip,
    },
    /// 6.7 step 1's `Ack`: M holds V0 until `deadline`; the outcome comes from the broker.
    VendorWithdrawAcked {
        /// M's deadline, unix seconds.
        deadline: u64,
    },
    /// 6.7 step 5: the broker's `VendorWithdrawResult`. OK: V0 gone, its value credited
    /// to the bank account. NOK: V0 live again.
    VendorWithdrawDecided {
        /// V0.
        spent: ScripId,
        /// The broker's decision.
        outcome: Outcome,
        /// V0's value.
        value: Amount,
    },
    /// 6.2: the broker's NOK `ChangeBrokerScrip` arrived while the notice was still
    /// unanswered (its reply lost, the exchange expired or refused): the exchange is over
    /// before step 2 was sent; B0 was never presented and is free again.
    ExchangeEndedAtNotice {
        /// The broker's decision (always a NOK).
        outcome: Outcome,
    },
    /// Merchants by name (docs/adr/0016): a merchant's display name as the wallet last
    /// learned it, from the broker's signed directory or the merchant's signed catalogue;
    /// every output that names the merchant shows it. Recorded only when it changed.
    MerchantNamed {
        /// `UID_M`.
        uid: Uid,
        /// Its name.
        name: shared::wire::bodies::MerchantName,
    },
}

/// A broker's decision `R` as the wallet records it (section 6: OK or NOK with a reason).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// OK.
    Ok,
    /// NOK, with the reason's `ErrorCode` number and text.
    Nok {
        /// The code number.
        code: u16,
        /// The text.
        message: String,
    },
}

impl Outcome {
    /// Whether it is OK.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }
}

impl From<&shared::wire::Decision> for Outcome {
    fn from(d: &shared::wire::Decision) -> Outcome {
        match d {
            shared::wire::Decision::Ok => Outcome::Ok,
            shared::wire::Decision::Nok(r) => Outcome::Nok {
                code: r.code,
                message: r.message.clone(),
            },
        }
    }
}

impl WalletEvent {
    /// Whether a crash may lose this record without harm, so that it need not be flushed
    /// before the wallet goes on (`EventLog::append_deferred`): it holds no value and no
    /// deadline, and a repeat of its request fetches it again (the node answers from its
    /// stored reply, protocol.md section 7). Only 6.3 step 1's `Ack`: the wallet sends
    /// step 2 right after it, and a wallet that lost it repeats step 1 on resuming.
    #[must_use]
    pub fn is_refetchable(&self) -> bool {
        matches!(self, WalletEvent::PurchaseAnnounced)
    }

    /// The request a completion or status event closes or updates: `None` for the events
    /// that answer no request.
    #[must_use]
    pub fn answers(&self) -> Option<Label> {
        match self {
            WalletEvent::WalletCreated { .. }
            | WalletEvent::AccountLinked { .. }
            | WalletEvent::RequestSaved { .. }
            | WalletEvent::MerchantNamed { .. } => None,
            WalletEvent::RequestRefused { label, .. } | WalletEvent::RequestAbandoned { label } => {
                Some(*label)
            }
            WalletEvent::Registered { .. } => Some(Label::RegistrationRequest),
            WalletEvent::PeerKeyCached { .. } => Some(Label::PublicKeyRequest),
            WalletEvent::BrokerScripObtained { .. } => Some(Label::BrokerScripRequest),
            WalletEvent::BrokerScripToppedUp { .. } => Some(Label::BrokerScripTopUp),
            WalletEvent::BrokerScripWithdrawn { .. } => Some(Label::BrokerScripWithdraw),
            WalletEvent::ScripRenewed { .. } => Some(Label::RenewRequest),
            WalletEvent::ExchangeNoticed { .. } | WalletEvent::ExchangeEndedAtNotice { .. } => {
                Some(Label::VendorScripNotice)
            }
            WalletEvent::ExchangeSettled { .. } | WalletEvent::VendorScripObtained { .. } => {
                Some(Label::VendorScripRequest)
            }
            WalletEvent::PurchaseAnnounced => Some(Label::PurchaseInitiated),
            WalletEvent::ItemBought { .. } => Some(Label::PurchaseRequest),
            WalletEvent::VendorWithdrawAcked { .. } | WalletEvent::VendorWithdrawDecided { .. } => {
                Some(Label::VendorWithdrawRequest)
            }
            WalletEvent::VendorTopUpAcked { .. }
            | WalletEvent::VendorTopUpSettled { .. }
            | WalletEvent::VendorScripToppedUp { .. } => Some(Label::VendorTopUpRequest),
        }
    }

    /// The message of its flow this event records, which moves its pending request on
    /// ([`Progress::on`](super::flow::Progress::on)); `None` for the events that only
    /// change a request's status or answer no request.
    #[must_use]
    pub fn message(&self) -> Option<Message> {
        match self {
            WalletEvent::WalletCreated { .. }
            | WalletEvent::AccountLinked { .. }
            | WalletEvent::RequestSaved { .. }
            | WalletEvent::RequestRefused { .. }
            | WalletEvent::RequestAbandoned { .. }
            | WalletEvent::MerchantNamed { .. } => None,
            WalletEvent::Registered { .. }
            | WalletEvent::PeerKeyCached { .. }
            | WalletEvent::BrokerScripObtained { .. }
            | WalletEvent::BrokerScripToppedUp { .. }
            | WalletEvent::BrokerScripWithdrawn { .. }
            | WalletEvent::ScripRenewed { .. }
            | WalletEvent::ExchangeNoticed { .. }
            | WalletEvent::PurchaseAnnounced
            | WalletEvent::ItemBought { .. } => Some(Message::Reply),
            WalletEvent::VendorTopUpAcked { .. } | WalletEvent::VendorWithdrawAcked { .. } => {
                Some(Message::Ack)
            }
            WalletEvent::ExchangeSettled { outcome, .. }
            | WalletEvent::ExchangeEndedAtNotice { outcome }
            | WalletEvent::VendorTopUpSettled { outcome, .. }
            | WalletEvent::VendorWithdrawDecided { outcome, .. } => Some(Message::Decision {
                ok: outcome.is_ok(),
            }),
            WalletEvent::VendorScripObtained { .. } | WalletEvent::VendorScripToppedUp { .. } => {
                Some(Message::VendorScrip)
            }
        }
    }

    /// Whether this event records the broker's NOK (6.2, 6.5, 6.7): the request moved no
    /// value. For a request given up a NOK is not taken: it changed nothing, as when it
    /// was given up, and its scrip may since have been used (`PendingStatus::Abandoned`).
    #[must_use]
    pub fn is_nok(&self) -> bool {
        self.message() == Some(Message::Decision { ok: false })
    }
}

/// One line of the wallet's history (what `peerscrip history` shows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The transaction.
    pub tx: TxId,
    /// The event's time.
    pub time: shared::UnixMillis,
    /// What happened.
    pub what: HistoryKind,
}

/// What a history line records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryKind {
    /// 6.0.
    Registered {
        /// The UID.
        uid: Uid,
    },
    /// 6.0b.
    PeerKey {
        /// The peer.
        uid: Uid,
    },
    /// 6.1.
    BrokerScripObtained {
        /// Its value.
        value: Amount,
    },
    /// 6.4.
    BrokerScripToppedUp {
        /// The old value.
        from: Amount,
        /// The new value.
        to: Amount,
    },
    /// 6.6.
    BrokerScripWithdrawn {
        /// The value credited.
        value: Amount,
    },
    /// 6.8.
    ScripRenewed {
        /// The producer.
        producer: Uid,
        /// The value (unchanged).
        value: Amount,
        /// E1's expiry.
        expires: u64,
    },
    /// A request refused by the node.
    Refused {
        /// The request.
        label: Label,
        /// The code number.
        code: u16,
    },
    /// A refused request given up.
    Abandoned {
        /// The request.
        label: Label,
    },
    /// 6.2: the broker's decision on the exchange (B1 is the change).
    ExchangeSettled {
        /// The merchant.
        merchant: Uid,
        /// OK or NOK.
        ok: bool,
        /// B0's value.
        from: Amount,
        /// The change's value (zero when none or NOK).
        change: Amount,
    },
    /// 6.2: VendorScrip received.
    VendorScripObtained {
        /// The merchant.
        merchant: Uid,
        /// Its value.
        value: Amount,
    },
    /// 6.3: an item bought.
    ItemBought {
        /// The merchant.
        merchant: Uid,
        /// `W_P`.
        paid: Amount,
        /// The change's value.
        change: Amount,
    },
    /// 6.5: the broker's decision on a VendorScrip top-up (B1 is the change).
    VendorTopUpSettled {
        /// The merchant.
        merchant: Uid,
        /// OK or NOK.
        ok: bool,
        /// B0's value.
        from: Amount,
        /// The change's value (zero when none or NOK).
        change: Amount,
    },
    /// 6.5: V0 replaced by V1.
    VendorScripToppedUp {
        /// The merchant.
        merchant: Uid,
        /// V0's value.
        from: Amount,
        /// V1's value.
        to: Amount,
    },
    /// 6.7: the broker's decision on a VendorScrip withdrawal.
    VendorWithdrawDecided {
        /// The merchant.
        merchant: Uid,
        /// OK (credited) or NOK (V0 live again).
        ok: bool,
        /// V0's value.
        value: Amount,
    },
    /// A step of a flow recorded (a notice answered, an `Ack`): no value moved yet.
    Step {
        /// The request answered.
        label: Label,
    },
    /// Section 4: the producer refused the scrip a request presented with `Lapsed`; its
    /// value went back to the bank account and the wallet no longer holds it.
    ScripLapsed {
        /// The producer.
        producer: Uid,
        /// The scrip's value.
        value: Amount,
        /// The refused request.
        label: Label,
    },
}
