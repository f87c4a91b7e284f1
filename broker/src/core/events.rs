//! The broker's event kinds (protocol.md sections 5, 6 and 8): one variant per event name.
//!
//! Money moves only through the envelope's postings and memos (section 5), which `apply`
//! folds for every event alike; a variant says what happened and carries what the
//! projections need beyond the money. Issued scrip is stored as its body, never with its
//! CustomerSecret (the Mint re-derives it: `Mint::issue_with_ids` is deterministic).

use serde::{Deserialize, Serialize};

use shared::ids::{Pan, ScripId, Uid};
use shared::node::Recorded;
use shared::{Amount, ScripBody};

/// What happened at the broker. Stored as [`Recorded`]`<Kind>` (with the frames sent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// The bank operator opened `bank:<pan>` (sections 1, 5). Holds only the commitment
    /// `H("peerscrip/id-commit" ‖ ID)`; the ID goes to the secrets table in the same commit.
    AccountOpened {
        /// The new account.
        pan: Pan,
        /// `H("peerscrip/id-commit" ‖ ID)`.
        id_commitment: Vec<u8>,
    },
    /// The bank operator deposited money: `external −v, bank:<pan> +v` (section 5).
    Deposited {
        /// The account credited.
        pan: Pan,
        /// How much.
        amount: Amount,
    },
    /// The bank operator paid money out: `bank:<pan> −v, external +v` (section 5).
    PaidOut {
        /// The account debited.
        pan: Pan,
        /// How much.
        amount: Amount,
    },
    /// 6.0: a peer's key was registered for an account.
    PeerRegistered {
        /// `UID_P`, the hash of the key.
        uid: Uid,
        /// `K_P`, SubjectPublicKeyInfo DER.
        spki_der: Vec<u8>,
        /// The account it was registered for.
        pan: Pan,
    },
    /// 6.1: BrokerScrip issued, `bank:C −W, float:broker +W`.
    BrokerScripIssued {
        /// `UID_C`, its owner.
        customer: Uid,
        /// `B0`'s body.
        scrip: ScripBody,
    },
    /// 6.4: `B0` spent, `B1` of `W_new` issued, `bank:C −(W_new − B0), float:broker +…`.
    BrokerScripToppedUp {
        /// `UID_C`.
        customer: Uid,
        /// `B0`.
        spent: ScripId,
        /// `B1`'s body.
        issued: ScripBody,
    },
    /// 6.6: `B0` spent, `float:broker −v, bank:C +v`.
    BrokerScripWithdrawn {
        /// `UID_C`.
        customer: Uid,
        /// `B0`.
        spent: ScripId,
        /// Its value, credited.
        value: Amount,
    },
    /// 6.8: `E0` spent, `E1` of the same value issued with a new id and expiry; no money
    /// moves.
    ScripRenewed {
        /// `UID_C`.
        customer: Uid,
        /// `E0`.
        spent: ScripId,
        /// `E1`'s body.
        issued: ScripBody,
    },
}

/// A stored broker event.
pub type BrokerEvent = shared::events::Event<Recorded<Kind>>;
