//! The wallet's events (protocol.md section 8: "each customer wallet keeps an append-only
//! log of events in its own redb file"), one variant per thing that happened to it.
//!
//! No event holds a secret: CustomerSecrets and the account ID are [`SealedSecret`]s under
//! the wallet's own key; a saved request names the scrip whose secret it carries but not the
//! secret. The evidence of a completion (the node's signed reply body, section 8) is in the
//! event envelope's `evidence`, not here.

use serde::{Deserialize, Serialize};
use shared::wire::Label;
use shared::{Amount, Pan, Scrip, ScripId, Suite, TxId, Uid};

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
}

impl WalletEvent {
    /// The request a completion or status event closes or updates: `None` for the events
    /// that answer no request.
    #[must_use]
    pub fn answers(&self) -> Option<Label> {
        match self {
            WalletEvent::WalletCreated { .. }
            | WalletEvent::AccountLinked { .. }
            | WalletEvent::RequestSaved { .. } => None,
            WalletEvent::RequestRefused { label, .. } | WalletEvent::RequestAbandoned { label } => {
                Some(*label)
            }
            WalletEvent::Registered { .. } => Some(Label::RegistrationRequest),
            WalletEvent::PeerKeyCached { .. } => Some(Label::PublicKeyRequest),
            WalletEvent::BrokerScripObtained { .. } => Some(Label::BrokerScripRequest),
            WalletEvent::BrokerScripToppedUp { .. } => Some(Label::BrokerScripTopUp),
            WalletEvent::BrokerScripWithdrawn { .. } => Some(Label::BrokerScripWithdraw),
            WalletEvent::ScripRenewed { .. } => Some(Label::RenewRequest),
        }
    }
}

/// One line of the wallet's history (what `peerscrip history` shows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The transaction.
    pub tx: TxId,
    /// Unix milliseconds of the event.
    pub time: u64,
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
}
