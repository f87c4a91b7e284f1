//! The merchant's sans-IO core (design brief of issue 4): plain functions, no I/O, no
//! clock (`now`, unix seconds, is an argument everywhere).
//!
//! Every incoming request goes through three steps:
//! - [`open::open`]: decrypt and verify the frame into a [`open::VerifiedRequest`];
//! - [`decide`]: every check of protocol.md sections 4–7 against the [`state::State`],
//!   giving the events to append and the reply to send, or a refusal that changes nothing;
//! - [`state::State::apply`]: the fold of one event into the state; replay is `apply` over
//!   the log, and live operation applies the decided events through the same function.
//!
//! One file per transaction: [`buy_item`] (6.3 steps 3–4), [`report`] (6.3 step 5, the
//! report to the broker and its `Ack`), [`renew`] (6.8), [`issue`] (the issuance of
//! VendorScrip that 6.2 and 6.5 will call). [`catalogue`] is what the merchant sells;
//! [`events`] its event kinds.

pub mod buy_item;
pub mod catalogue;
pub mod events;
pub mod issue;
pub mod open;
pub mod renew;
pub mod report;
pub mod state;

#[cfg(test)]
pub(crate) mod testkit;

use shared::events::NewEvent;
use shared::node::{Draft, LiveRecord, Lookup, Refusal, ReplyKey};
use shared::{ExpiryRule, Mint, Scrip, Uid};

use catalogue::Catalogue;
use events::Kind;
use open::VerifiedRequest;
use state::State;

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

/// What `decide` gives for a new request: the events to append, the reply, and the other
/// frames to send (all unsigned; the node signs and seals them, then commits the events
/// with the frames before anything leaves).
#[derive(Debug)]
pub struct Decision {
    /// The events, in order.
    pub events: Vec<NewEvent<Kind>>,
    /// The reply to the requester.
    pub reply: Draft,
    /// Other frames of the decision (e.g. 6.3 step 5's `PurchaseCompleted` to the broker).
    pub deliveries: Vec<Draft>,
}

/// The result of `decide` for a request that is not refused.
#[derive(Debug)]
pub enum Outcome {
    /// A repeat of a request already answered (same sender, tx, label and digest): the
    /// stored reply, byte for byte, and no event (protocol.md section 7).
    Repeat(Vec<u8>),
    /// A new request, decided.
    Decided(Box<Decision>),
}

/// Decides a verified request against the state (protocol.md sections 4–7). Pure and
/// fast: no signature or decryption, only the Mint's MAC checks. A refusal leaves the state
/// as it was.
///
/// Idempotency comes first (section 7): a repeat gets the stored reply, the same key with
/// another digest gets `TxReused`; then the transaction's own checks.
pub fn decide(
    state: &State,
    config: &Config,
    request: &VerifiedRequest,
    now: u64,
) -> Result<Outcome, Refusal> {
    match state
        .tables
        .replies
        .lookup(&ReplyKey::of(request.header()), request.digest())
    {
        Lookup::Repeat(stored) => return Ok(Outcome::Repeat(stored.frame.clone())),
        lookup @ Lookup::TxReused => lookup.refuse_reuse()?,
        Lookup::New => {}
    }
    let decision = match request {
        VerifiedRequest::Purchase(p) => buy_item::decide(state, config, p, now)?,
        VerifiedRequest::Renew(r) => renew::decide(state, config, r, now)?,
    };
    Ok(Outcome::Decided(Box::new(decision)))
}

/// Section 4's validation of a scrip presented to this merchant by `presenter`: the Mint's
/// checks (producer, certificate, CustomerSecret, expiry under `expiry`), then the live
/// table's (live, not held, body equal to the record, presenter the owner).
fn check_presented<'s>(
    state: &'s State,
    config: &Config,
    scrip: &Scrip,
    cs: &shared::CustomerSecret,
    presenter: Uid,
    now: u64,
    expiry: ExpiryRule,
) -> Result<&'s LiveRecord, Refusal> {
    Ok(state.tables.live.check_spendable(
        scrip,
        cs.expose(),
        presenter,
        now,
        expiry,
        &config.mint,
    )?)
}
