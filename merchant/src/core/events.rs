//! The merchant's events (protocol.md sections 6 and 8): one variant per event name of
//! section 6 that a merchant appends, each documented with its section.
//!
//! What an event holds, and why:
//! - issued scrip as its body only, never its CustomerSecret: the Mint re-derives the
//!   secret from the body (`Mint::issue_with_ids` is deterministic), and the log never
//!   holds a CustomerSecret (section 8);
//! - the customer's signed request as evidence (`events::Evidence`, in the envelope), so an
//!   auditor can check that the customer asked for what happened;
//! - enough for `apply` to rebuild every table by itself (section 8: replay gives identical
//!   tables), so the fold needs no clock, no key and no randomness.

use serde::{Deserialize, Serialize};

use shared::node::ReplyKey;
use shared::wire::Reason;
use shared::wire::bodies::{OrderInfo, Receipt};
use shared::{Amount, ScripBody, ScripId, Uid};

/// What an escrow of the merchant holds a VendorScrip for (protocol.md section 4, `Held`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Escrow {
    /// 6.5: V0 is held while the broker decides the top-up the merchant accepted.
    TopUp {
        /// `W_V`, the amount added.
        top_up: Amount,
        /// `W_V1 = V0.value + W_V`, the value of V1 the merchant undertook to issue.
        new_value: Amount,
        /// The request digest of the merchant's step 3 (section 7): the broker's decision
        /// must carry it in its `re`.
        digest: Vec<u8>,
    },
    /// 6.7: V0 is held while the broker decides the withdrawal of `W = V0.value`.
    Withdraw {
        /// `W`.
        value: Amount,
    },
}

/// What happened at a merchant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// VendorScrip issued to `owner` against value the broker paid the merchant (6.2 step
    /// 7, `VendorScripIssued`; 6.5 step 5 issues through it too). The scrip's value enters
    /// the merchant's books here and only here.
    VendorScripIssued {
        /// The issued scrip's body (its certificate and secret are re-derived).
        scrip: ScripBody,
        /// Its owner, the only UID that may present it (section 4).
        owner: Uid,
    },
    /// A purchase (6.3 step 3, `PurchaseMade`): `spent` is removed from the live table,
    /// `change` (V1 = V0 − W_P, none when zero) is issued to the same customer, the order
    /// is recorded, and the merchant owes the broker a `PurchaseCompleted` report (step 5)
    /// until the broker acknowledges it ([`Kind::PurchaseReported`]).
    PurchaseMade {
        /// The customer, owner of V0 and V1.
        customer: Uid,
        /// V0 as recorded in the live table.
        spent: ScripBody,
        /// V1, or `None` when W_P = V0.value.
        change: Option<ScripBody>,
        /// `OI`, as signed by the customer.
        order: OrderInfo,
        /// The merchant's receipt (W_P and the time of the purchase).
        receipt: Receipt,
    },
    /// The broker acknowledged the `PurchaseCompleted` report of this event's tx (6.3 step
    /// 5): the report leaves the merchant's outbox and is not sent again.
    PurchaseReported,
    /// 6.2 step 3, `ExchangeRequested`: the merchant asks the broker to authorize C's
    /// exchange of `value`. Recorded before the request leaves (its frame is stored with
    /// it, section 7), so that after a restart the merchant asks again and finishes; C's
    /// reply is held until the broker's decision, and C's repeats get `Ack` (pending).
    ExchangeRequested {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M` (this merchant), for the tx binding.
        merchant: Uid,
        /// `W`.
        value: Amount,
        /// C's request (sender, tx, label), answered once the broker decides.
        request: ReplyKey,
        /// Its request digest.
        digest: Vec<u8>,
    },
    /// 6.2 step 6 with `R = NOK`, `ExchangeRefused`: the broker's final refusal, recorded;
    /// nothing is issued and C is answered with an `Error` carrying the reason.
    ExchangeRefused {
        /// The broker's reason.
        reason: Reason,
    },
    /// 6.5 step 3 and 6.7 step 2, `VendorEscrowOpened`: `scrip_id` (V0) is `Held` by this
    /// tx until the broker's decision; only that decision's event ends the hold (section 4).
    VendorEscrowOpened {
        /// `UID_C`, V0's owner.
        customer: Uid,
        /// V0.
        scrip_id: ScripId,
        /// The escrow's deadline (6.5: the broker's; 6.7: the merchant's).
        until: u64,
        /// Why it is held.
        escrow: Escrow,
    },
    /// 6.5 step 3, declined: the merchant's signed decline was sent, nothing is held; the
    /// merchant repeats it until the broker's decision closes the tx.
    VendorTopUpDeclined {
        /// `UID_C`.
        customer: Uid,
        /// `UID_M` (this merchant), for the tx binding.
        merchant: Uid,
        /// `W_V`.
        top_up: Amount,
        /// Why (the check that failed).
        reason: Reason,
        /// The request digest of the decline (section 7).
        digest: Vec<u8>,
    },
    /// The broker's decision on a declined top-up (6.5 step 4, `NOK(Declined)` or any
    /// other): the tx is closed, nothing moved.
    VendorTopUpClosed,
    /// 6.5 step 5, `VendorScripToppedUp`: V0 (held by this tx) is spent and V1 of
    /// `W_V1 = V0.value + W_V` issued to the same owner; `W_V` enters the books as issued
    /// (the broker paid it into the merchant's account, 6.5 step 4).
    VendorScripToppedUp {
        /// The owner of both.
        customer: Uid,
        /// V0 as recorded.
        old: ScripBody,
        /// V1.
        new: ScripBody,
    },
    /// 6.7 step 4 with `R = OK`, `VendorScripWithdrawn`: V0 (held by this tx) is spent;
    /// the broker paid its value from the merchant's account to C's.
    VendorScripWithdrawn {
        /// The owner.
        customer: Uid,
        /// V0 as recorded.
        spent: ScripBody,
    },
    /// 6.5 step 5 and 6.7 step 4 with `R = NOK`, `VendorEscrowReleased`: V0 is `Live` again,
    /// nothing moved.
    VendorEscrowReleased {
        /// V0.
        scrip_id: ScripId,
        /// The broker's reason.
        reason: Reason,
    },
    /// A renewal (6.8 step 2, `ScripRenewed`): `old` is spent, `new` has the same value
    /// and owner, a new scrip id, cust id and expiry.
    ScripRenewed {
        /// The owner of both.
        owner: Uid,
        /// E0 as recorded in the live table.
        old: ScripBody,
        /// E1.
        new: ScripBody,
    },
    /// Lapse (protocol.md section 4, `ScripLapsed`): `scrip`'s renewal grace ended
    /// unrenewed; it is removed, its value counts as withdrawn, and the merchant owes the
    /// broker a `ScripLapsedNotice` (stored with this event, digest `digest`) until the
    /// broker's `Ack` ([`Kind::LapseReported`]). The tx is the scrip id.
    ScripLapsed {
        /// The scrip's owner, whose bank account gets the value.
        owner: Uid,
        /// The scrip as recorded in the live table.
        scrip: ScripBody,
        /// The request digest of the notice (section 7).
        digest: Vec<u8>,
    },
    /// The broker's signed `Ack` of the lapse notice of this event's tx: the notice is not
    /// sent again.
    LapseReported,
}

impl Kind {
    /// The event's name as protocol.md section 6 writes it, for logs and the demo.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Kind::VendorScripIssued { .. } => "VendorScripIssued",
            Kind::PurchaseMade { .. } => "PurchaseMade",
            Kind::PurchaseReported => "PurchaseReported",
            Kind::ScripRenewed { .. } => "ScripRenewed",
            Kind::ExchangeRequested { .. } => "ExchangeRequested",
            Kind::ExchangeRefused { .. } => "ExchangeRefused",
            Kind::VendorEscrowOpened { .. } => "VendorEscrowOpened",
            Kind::VendorTopUpDeclined { .. } => "VendorTopUpDeclined",
            Kind::VendorTopUpClosed => "VendorTopUpClosed",
            Kind::VendorScripToppedUp { .. } => "VendorScripToppedUp",
            Kind::VendorScripWithdrawn { .. } => "VendorScripWithdrawn",
            Kind::VendorEscrowReleased { .. } => "VendorEscrowReleased",
            Kind::ScripLapsed { .. } => "ScripLapsed",
            Kind::LapseReported => "LapseReported",
        }
    }
}
