//! The merchant's sans-IO core (design brief of issue 4): plain functions, no I/O, no
//! clock (`now`, unix seconds, is an argument everywhere).
//!
//! Every incoming request goes through three steps:
//! - [`open::open`]: decrypt and verify the frame into a [`open::VerifiedRequest`];
//! - `decide`: every check of protocol.md sections 4–7 against the [`state::State`], giving
//!   the events to append and the reply to send, or a refusal that changes nothing;
//! - `apply`: the fold of one event into the state; replay is `apply` over the log, and
//!   live operation applies the decided events through the same function.
//!
//! One file per transaction: [`buy_item`] (6.3), [`renew`] (6.8), [`issue`] (the issuance
//! of VendorScrip that 6.2 and 6.5 call).

pub mod catalogue;
pub mod events;
pub mod open;
pub mod state;

#[cfg(test)]
pub(crate) mod testkit;

use shared::{Mint, Uid};

use catalogue::Catalogue;

/// Default lifetime of issued VendorScrip: 30 days (protocol.md section 4, "Expiry").
pub const DEFAULT_SCRIP_LIFETIME_SECS: u64 = 30 * 24 * 3600;
/// Default grace period of renewal after expiry: one year (protocol.md section 4).
pub const DEFAULT_RENEWAL_GRACE_SECS: u64 = 365 * 24 * 3600;

/// What a merchant is configured with: not derived from its log, the same at every start.
#[derive(Debug)]
pub struct Config {
    /// The merchant's Mint (its UID, suite and root key; section 4).
    pub mint: Mint,
    /// What it sells (6.3).
    pub catalogue: Catalogue,
    /// The broker's UID, pinned out of band (section 1): where `PurchaseCompleted` goes.
    pub broker: Uid,
    /// Lifetime of issued scrip, seconds (section 4, default 30 days).
    pub scrip_lifetime_secs: u64,
    /// How long after expiry renewal stays open, seconds (section 4, default one year).
    pub renewal_grace_secs: u64,
}

impl Config {
    /// A configuration with the default lifetime and grace period.
    #[must_use]
    pub fn new(mint: Mint, catalogue: Catalogue, broker: Uid) -> Config {
        Config {
            mint,
            catalogue,
            broker,
            scrip_lifetime_secs: DEFAULT_SCRIP_LIFETIME_SECS,
            renewal_grace_secs: DEFAULT_RENEWAL_GRACE_SECS,
        }
    }

    /// The merchant's UID (the producer of its VendorScrip).
    #[must_use]
    pub fn me(&self) -> Uid {
        self.mint.producer()
    }

    /// The expiry of scrip issued at `now`.
    #[must_use]
    pub fn expiry_from(&self, now: u64) -> u64 {
        now.saturating_add(self.scrip_lifetime_secs)
    }
}
