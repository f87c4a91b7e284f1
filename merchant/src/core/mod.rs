//! The merchant's sans-IO core (docs/adr/0006): plain functions, no I/O, no
//! clock (`now`, a `UnixSecs`, is an argument everywhere).
//!
//! Every incoming request goes through three steps:
//! - [`open::open`]: decrypt and verify the frame into a [`open::VerifiedRequest`];
//! - [`decide`]: every check of protocol.md sections 4–7 against the [`state::State`],
//!   giving the events to append and the reply to send, or a refusal that changes nothing;
//! - [`state::State::try_apply`]: the fold of one event into the state; replay is the fold
//!   over the log, and live operation applies the decided events through the same function.
//!
//! One file per transaction: [`register`] (6.0, the merchant's own registration) and
//! [`public_key`] (6.0b, a customer's key), [`buy_item`] (6.3 steps 3–4), [`report`] (6.3 step 5, the
//! report to the broker and its `Ack`), [`renew`] (6.8), [`issue`] (the issuance of
//! VendorScrip that 6.2 and 6.5 call), [`obtain_vendor_scrip`] (6.2),
//! [`top_up_vendor_scrip`] (6.5), [`withdraw_vendor_scrip`] (6.7), [`lapse`] (section 4:
//! unrenewed VendorScrip past its grace, its value back to the owner through the broker),
//! [`transaction_status`] (section 7). [`broker_reply`] opens the broker's decisions on the merchant's own
//! requests, which [`decide_reply`] acts on. [`catalogue`] is what the merchant sells and its answer to a
//! `CatalogueRequest` (the read-only extension of docs/adr/0009);
//! [`events`] its event kinds.
//!
//! The three-party transactions follow section 7: the merchant records what it asks or
//! holds (an event, with the request frame, before the request leaves), repeats the
//! request until the broker's signed decision arrives ([`state::Awaiting`]), and acts on
//! that decision only; it never undoes on its own timer. Each is a state machine
//! ([`machine`]) with one transition function, which `decide` and [`decide_reply`] ask
//! whether a request or a decision may move its transaction now, the fold whether a stored
//! event is a legal move, and the auditor likewise of every event of a log.

pub mod broker_reply;
pub mod buy_item;
pub mod catalogue;
pub mod events;
pub mod issue;
pub mod lapse;
pub mod machine;
pub mod obtain_vendor_scrip;
pub mod open;
pub mod profile;
pub mod public_key;
pub mod register;
pub mod renew;
pub mod report;
pub mod state;
pub mod status;
pub mod top_up_vendor_scrip;
pub mod transaction_status;
pub mod withdraw_vendor_scrip;

#[cfg(test)]
pub(crate) mod testkit;

use shared::UnixSecs;
use shared::events::NewEvent;
use shared::ids::{AccountId, Pan};
use shared::node::{Draft, LiveRecord, Lookup, Quotas, Refusal, ReplyKey};
use shared::wire::bodies::{
    ExchangeAuthorizationResponseX5, VendorTopUpDecisionBody, VendorWithdrawResponseX3,
};
use shared::wire::{Frame, Label};
use shared::{ExpiryRule, Mint, Scrip, Uid};
use shared::{KeyPair, PublicKey};

use catalogue::Catalogue;
use events::Kind;
use open::VerifiedRequest;
use state::State;

/// Default lifetime of issued VendorScrip: 30 days (protocol.md section 4, "Expiry").
pub const DEFAULT_SCRIP_LIFETIME_SECS: u64 = 30 * 24 * 3600;
/// Default grace period of renewal after expiry: one year (protocol.md section 4).
pub const DEFAULT_RENEWAL_GRACE_SECS: u64 = 365 * 24 * 3600;
/// Default deadline of a 6.7 escrow, seconds after the request: ten minutes, long enough
/// for a few repeats of step 2 to reach the broker (protocol.md section 7).
pub const DEFAULT_ESCROW_WINDOW_SECS: u64 = 600;

/// What a merchant is configured with: not derived from its log, the same at every start.
#[derive(Debug)]
pub struct Config {
    /// The merchant's Mint (its UID, suite and root key; section 4).
    pub mint: Mint,
    /// What it sells (6.3).
    pub catalogue: Catalogue,
    /// Its display name (docs/adr/0016), signed into every catalogue answer; `None` when
    /// the operator configured none (customers then see its UID).
    pub name: Option<shared::wire::bodies::MerchantName>,
    /// The broker's UID, pinned out of band (section 1): where `PurchaseCompleted` goes.
    pub broker: Uid,
    /// Lifetime of issued scrip, seconds (section 4, default 30 days).
    pub scrip_lifetime_secs: u64,
    /// How long after expiry renewal stays open, seconds (section 4, default one year).
    pub renewal_grace_secs: u64,
    /// The merchant's bank account (protocol.md 6.2 step 3: a merchant is a registered peer with
    /// an account): its PAN, for the operator's records.
    pub pan: Pan,
    /// Its `ID`, derived from its PANSecret at setup: what the `IdProof` of 6.2 step 3 and
    /// 6.7 step 2 proves to the broker. A secret; never logged.
    pub account_id: AccountId,
    /// The deadline of a 6.7 escrow, seconds after the request (default ten minutes).
    pub escrow_window_secs: u64,
    /// What one peer may make the merchant spend and hold (section 10).
    pub quotas: Quotas,
}

impl Config {
    /// A configuration with the default lifetime, grace period and escrow window.
    #[must_use]
    pub fn new(
        mint: Mint,
        catalogue: Catalogue,
        broker: Uid,
        pan: Pan,
        account_id: AccountId,
    ) -> Config {
        Config {
            mint,
            catalogue,
            name: None,
            broker,
            scrip_lifetime_secs: DEFAULT_SCRIP_LIFETIME_SECS,
            renewal_grace_secs: DEFAULT_RENEWAL_GRACE_SECS,
            pan,
            account_id,
            escrow_window_secs: DEFAULT_ESCROW_WINDOW_SECS,
            quotas: Quotas::DEFAULT,
        }
    }

    /// The merchant's UID (the producer of its VendorScrip).
    #[must_use]
    pub fn me(&self) -> Uid {
        self.mint.producer()
    }

    /// The expiry of scrip issued at `now`, in the bare seconds a `ScripBody` carries
    /// (protocol.md section 4).
    #[must_use]
    pub fn expiry_from(&self, now: UnixSecs) -> u64 {
        now.saturating_add_secs(self.scrip_lifetime_secs).get()
    }
}

/// Whether a stored deadline or grace end (bare unix seconds) has passed at `now`: it is
/// still open during its own second (protocol.md sections 4 and 7).
pub(crate) fn passed(now: UnixSecs, deadline: u64) -> bool {
    now > UnixSecs::new(deadline)
}

/// What `decide` gives for a new request: the events to append, the reply (`None` when it
/// is held for the broker's decision, 6.2 step 3, or the incoming frame was a delivery,
/// 6.5 step 2; for a decision of the broker acted on, the held reply to the customer, 6.2
/// step 7), and the other frames (e.g. 6.3 step 5's `PurchaseCompleted` to the broker).
/// All unsigned: the node driver signs and seals them, then commits the events with the
/// frames before anything leaves.
pub type Decision = shared::node::Decision<Kind>;

/// The result of `decide` for a request that is not refused.
#[derive(Debug)]
pub enum Outcome {
    /// A repeat of a request already answered (same sender, tx, label and digest): the
    /// stored reply, byte for byte, and no event (protocol.md section 7).
    Repeat(Vec<u8>),
    /// A new request, decided.
    Decided(Box<Decision>),
    /// An answer that changes nothing and is not stored (a `TransactionStatus` answer, the
    /// `Ack` pending of a repeated 6.2 request, a catalogue listing): signed and sent only.
    Answer(Draft),
}

/// What became of a reply of the broker (see [`decide_reply`]).
#[derive(Debug)]
pub enum ReplyDecision {
    /// The `Ack` of a report (6.3 step 5): the event that ends the duty to send it.
    Acknowledged(Box<NewEvent<Kind>>),
    /// A decision of a three-party transaction, acted on (6.2, 6.5, 6.7).
    Decided(Box<Decision>),
}

/// Acts on a reply of the broker to one of the merchant's own requests, by its label:
/// `Ack` (6.3 step 5), `ExchangeAuthorizationResponse` (6.2 step 6),
/// `VendorTopUpDecision` (6.5 step 4), `VendorWithdrawResponse` (6.7 step 4). Anything
/// else, an `Error` included (never a decision, section 3), is discarded: the merchant
/// repeats its request.
pub fn decide_reply(
    state: &State,
    config: &Config,
    frame: &Frame,
    me: &KeyPair,
    broker: &PublicKey,
    now: UnixSecs,
) -> Result<ReplyDecision, broker_reply::AckError> {
    use broker_reply::open_broker_reply;
    let decided = match frame.header.label {
        // The `Ack` of a lapse notice is signed (section 4); a report's is not (ADR 0008):
        // which one the tx awaits decides how it is checked.
        Label::Ack => {
            let ack = broker_reply::Ack { frame, me, broker };
            let lapse = matches!(
                state.tables.awaiting.get(&frame.header.tx),
                Some(state::Awaiting::Lapse { .. })
            );
            let acknowledged = if lapse {
                lapse::acknowledge(&ack, state, now)
            } else {
                report::acknowledge(&ack, state, now)
            };
            return acknowledged.map(|e| ReplyDecision::Acknowledged(Box::new(e)));
        }
        Label::ExchangeAuthorizationResponse => {
            let reply = open_broker_reply::<ExchangeAuthorizationResponseX5>(
                frame,
                me,
                broker,
                Label::ExchangeAuthorizationRequest,
            )?;
            obtain_vendor_scrip::decided(state, config, &reply, now)?
        }
        Label::VendorTopUpDecision => {
            let reply = open_broker_reply::<VendorTopUpDecisionBody>(
                frame,
                me,
                broker,
                Label::VendorTopUpAccepted,
            )?;
            top_up_vendor_scrip::decided(state, config, &reply, now)?
        }
        Label::VendorWithdrawResponse => {
            let reply = open_broker_reply::<VendorWithdrawResponseX3>(
                frame,
                me,
                broker,
                Label::VendorWithdrawAuthorization,
            )?;
            withdraw_vendor_scrip::decided(state, &reply, now)?
        }
        other => return Err(broker_reply::AckError::Unexpected(other)),
    };
    Ok(ReplyDecision::Decided(Box::new(decided)))
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
    now: UnixSecs,
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
        VerifiedRequest::Withdraw(w) => withdraw_vendor_scrip::decide(state, config, w, now)?,
        VerifiedRequest::TopUp(t) => top_up_vendor_scrip::decide(state, config, t, now)?,
        VerifiedRequest::Exchange(e) => return obtain_vendor_scrip::decide(state, config, e, now),
        VerifiedRequest::Status(s) => {
            return Ok(Outcome::Answer(transaction_status::answer(
                state, config, s,
            )));
        }
        VerifiedRequest::Catalogue(c) => return Ok(Outcome::Answer(catalogue::answer(config, c))),
    };
    Ok(Outcome::Decided(Box::new(decision)))
}

/// Section 7: the tx of a customer's request under `header` may be a tx of `kind` between
/// its sender and this merchant; one bound to another transaction or other parties is
/// `TxReused`. Gives the customer.
fn customer_bound(
    state: &State,
    config: &Config,
    header: &shared::wire::Header,
    kind: shared::node::TxKind,
) -> Result<Uid, Refusal> {
    let customer = header.sender;
    state
        .tables
        .bindings
        .check(&header.tx, kind, &[customer, config.me()])?;
    Ok(customer)
}

/// Section 4's validation of a scrip presented to this merchant by `presenter`: the Mint's
/// checks (producer, certificate, CustomerSecret, expiry under `expiry`), then the live
/// table's (live, not held, body equal to the record, presenter the owner). The owner of a
/// scrip that lapsed ([`lapse`]) is told where its value went
/// (`ScripCheckError::refusal`).
fn check_presented<'s>(
    state: &'s State,
    config: &Config,
    scrip: &Scrip,
    cs: &shared::CustomerSecret,
    presenter: Uid,
    now: UnixSecs,
    expiry: ExpiryRule,
) -> Result<&'s LiveRecord, Refusal> {
    state
        .tables
        .live
        .check_spendable(scrip, cs.expose(), presenter, now, expiry, &config.mint)
        .map_err(|e| e.refusal(scrip.id(), &state.tables.bindings))
}
