//! The broker's event kinds (protocol.md sections 5, 6 and 8): one variant per event name.
//!
//! Money moves only through the envelope's postings and memos (section 5), which `apply`
//! folds for every event alike; a variant says what happened and carries what the
//! projections need beyond the money. Issued scrip is stored as its body, never with its
//! CustomerSecret (the Mint re-derives it: `Mint::issue_with_ids` is deterministic).

use serde::{Deserialize, Serialize};

use shared::ids::{Pan, ScripId, Uid};
use shared::node::Recorded;
use shared::wire::Reason;
use shared::wire::bodies::MerchantName;
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
    /// 6.2 step 1: C announced an exchange with M; open until `deadline` (unix seconds).
    ExchangeOpened {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// After it, the exchange closes with no decision (`ExchangeExpired`).
        deadline: u64,
    },
    /// 6.2 step 4, OK: B0 spent, change B1 issued (none when zero), `float:broker −W,
    /// bank:M +W`, memo `float:vendor:M +W`.
    ExchangeAuthorized {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// `W`.
        value: Amount,
        /// `B0`.
        spent: ScripId,
        /// `B1`'s body, when `B0 > W`.
        change: Option<ScripBody>,
    },
    /// 6.2 step 4, NOK: the final, recorded refusal of the exchange (nothing moves).
    ExchangeRefused {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// Why.
        reason: Reason,
    },
    /// 6.2: the deadline passed with no decision; the exchange is closed.
    ExchangeExpired {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
    },
    /// 6.3 step 1: C announced a purchase of `W_P` from M.
    PurchaseOpened {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// `W_P`.
        value: Amount,
    },
    /// 6.3 step 5, matched with step 1: memo `float:vendor:M −W_P`.
    PurchaseRecorded {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// `W_P`.
        value: Amount,
    },
    /// 6.3 step 5 with no matching step 1 (yet, or ever): recorded for the auditor, no
    /// posting. A step 1 arriving later with the same parties and value records the match.
    PurchaseUnmatched {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// `W_P`.
        value: Amount,
    },
    /// 6.7 step 3, OK: `bank:M −W, bank:C +W`, memo `float:vendor:M −W`.
    VendorScripRedeemed {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// `W`.
        value: Amount,
    },
    /// 6.7 step 3, NOK: the final, recorded refusal (nothing moves; M releases `V0`).
    VendorWithdrawRefused {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// `W` as M's `X2` states it.
        value: Amount,
        /// Why.
        reason: Reason,
    },
    /// Section 4, lapse of a BrokerScrip: removed, `float:broker −v, bank:owner +v`.
    ScripLapsed {
        /// Its owner, credited.
        owner: Uid,
        /// The lapsed scrip.
        scrip_id: ScripId,
        /// Its value.
        value: Amount,
    },
    /// Section 4, lapse of M's VendorScrip (M's notice): `bank:M −v, bank:owner +v`, memo
    /// `float:vendor:M −v`.
    VendorScripLapsed {
        /// `UID_M`.
        merchant: Uid,
        /// The scrip's owner, credited.
        owner: Uid,
        /// The lapsed scrip.
        scrip_id: ScripId,
        /// Its value.
        value: Amount,
    },
    /// Section 5: a memo `float:vendor:M` went below zero: an audit alarm, never a refusal.
    MemoAlarm {
        /// `UID_M`.
        merchant: Uid,
        /// The memo after the posting that took it below zero.
        memo: i128,
    },
    // 6.5 variants come last: postcard encodes a variant by its index, so new kinds are
    // appended and logs written before them still decode.
    /// 6.5 step 2: `B0` held for this tx until `deadline` (section 4: refused with `Held`
    /// by every other request); nothing moves yet. C's merchant part goes to M with X2.
    EscrowOpened {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// `B0`, now held.
        scrip: ScripId,
        /// `W_V`, to be paid from `B0`.
        top_up: Amount,
        /// `W_V1 = V0.value + W_V`, as C stated it.
        new_value: Amount,
        /// After it, with no decision, the broker releases `B0` (`EscrowReleased`).
        deadline: u64,
    },
    /// 6.5 step 4, M accepted in time: `B0` spent, change `B1 = B0 − W_V` issued (none when
    /// zero), `float:broker −W_V, bank:M +W_V`, memo `float:vendor:M +W_V`.
    VendorTopUpSettled {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// `W_V`.
        top_up: Amount,
        /// `B0`.
        spent: ScripId,
        /// `B1`'s body, when `B0 > W_V`.
        change: Option<ScripBody>,
    },
    /// 6.5: the escrow ended with no payment (M declined, its accept did not match C's
    /// request, or the deadline passed): `B0` is `Live` again, nothing moved. The reason is
    /// the NOK that M and C receive, and every later step 3 of this tx.
    EscrowReleased {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// `B0`, live again.
        scrip: ScripId,
        /// Why: `Declined`, `AmountMismatch` or `DeadlinePassed`.
        reason: Reason,
    },
    /// 6.5 step 4, a first step 3 that came after the escrow was released (by its
    /// deadline): the recorded answer, the escrow's stored NOK, so that a repeat gets the
    /// same bytes (section 7). Nothing moves.
    VendorTopUpRefused {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M`.
        merchant: Uid,
        /// The escrow's reason.
        reason: Reason,
    },
    /// Extension (docs/adr/0016): a registered peer named itself; it is listed to
    /// customers under this name until it names itself again. Nothing moves.
    MerchantNamed {
        /// `UID_M`.
        merchant: Uid,
        /// The name, validated when its body was decoded.
        name: MerchantName,
    },
}

/// A stored broker event.
pub type BrokerEvent = shared::events::Event<Recorded<Kind>>;
