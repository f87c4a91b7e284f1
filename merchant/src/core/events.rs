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

use shared::wire::bodies::{OrderInfo, Receipt};
use shared::{ScripBody, Uid};

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
        }
    }
}

/// An event's time: the envelope keeps unix milliseconds, the cores are given unix seconds.
#[must_use]
pub const fn event_time(now: u64) -> u64 {
    now.saturating_mul(1000)
}
