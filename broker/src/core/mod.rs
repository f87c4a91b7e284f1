//! The broker's sans-IO core (ADR 0006; architecture.md, "Each node: a sans-IO core inside
//! an actor shell").
//!
//! Three plain functions per incoming frame:
//! - [`open()`](open::open) (CPU-heavy, pure): verifies the frame into a typed
//!   [`Verified`] request with its digest;
//! - [`decide`] (pure, fast, no crypto but the Mint's MACs): the idempotency lookup
//!   (section 7), then the transaction's checks, each in its own file; returns a
//!   [`Decision`] (events and unsigned drafts) or a [`Refusal`], never touching the state;
//! - [`State::try_apply`]: the fold, the only code that changes the state, live and in
//!   replay.
//!
//! The three-party transactions (6.2, 6.5, 6.7) are state machines ([`machine`]): one
//! transition function each, which `decide` asks whether a request may move its
//! transaction now, the fold whether a stored event is a legal move, and the auditor
//! likewise of every event of a log.
//!
//! The bank operator's API ([`bank`]) decides account openings, deposits and payouts the
//! same way, called directly on a stopped broker's file or sent over the bus by the
//! operator ([`admin`], ADR 0010). `now` is an argument everywhere (a `UnixSecs`); no clock is read here.

pub mod admin;
pub mod bank;
pub mod events;
pub mod open;
pub mod request;
pub mod sealed_id;
pub mod state;
pub mod status;

mod buy_item;
pub mod lapse;
pub mod machine;
pub mod names;
mod obtain_broker_scrip;
pub mod obtain_vendor_scrip;
mod public_key;
mod register;
mod renew;
mod top_up_broker_scrip;
pub mod top_up_vendor_scrip;
mod transaction_status;
mod withdraw_broker_scrip;
mod withdraw_vendor_scrip;

use std::collections::BTreeMap;

use shared::ErrorCode;
use shared::events::{Evidence, NewEvent};
use shared::ids::{AccountId, Pan, Uid};
use shared::node::{Draft, Lookup, OpenKind, Quotas, Refusal, ReplyKey};
use shared::{Mint, Suite, UnixSecs};

pub use events::{BrokerEvent, Kind};
pub use machine::{EscrowState, ExchangeState, WithdrawalState};
pub use open::open;
pub use register::REFUSED as REGISTRATION_REFUSED;
pub use request::{AdminRequest, ExchangeAuthorization, Request, VendorTopUp, Verified};
pub use state::{
    Escrow, Exchange, LedgerError, Naming, PanRecord, Peer, Purchase, State, Touched, Withdrawal,
};

/// Seconds in a day.
const DAY: u64 = 24 * 3600;

/// The broker's policy (protocol.md section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The deployment's suite.
    pub suite: Suite,
    /// Lifetime of an issued scrip, seconds (default 30 days).
    pub scrip_lifetime_secs: u64,
    /// How long after expiry renewal stays open, seconds (default one year).
    pub grace_secs: u64,
    /// How long an announced exchange (6.2 step 1) waits for M's authorization request,
    /// seconds (default ten minutes).
    pub exchange_window_secs: u64,
    /// How long the broker holds `B0` for a VendorScrip top-up (6.5 step 2) waiting for
    /// M's answer, seconds (default ten minutes): the deadline of `EscrowOpened`.
    pub escrow_window_secs: u64,
    /// What one peer may make the broker spend and hold (section 10).
    pub quotas: Quotas,
}

impl Config {
    /// The defaults of section 4 in `suite`.
    #[must_use]
    pub const fn new(suite: Suite) -> Config {
        Config {
            suite,
            scrip_lifetime_secs: 30 * DAY,
            grace_secs: 365 * DAY,
            exchange_window_secs: 600,
            escrow_window_secs: 600,
            quotas: Quotas::DEFAULT,
        }
    }
}

/// The account IDs of the secrets table (protocol.md section 1), by PAN. Not a projection:
/// the log holds only their commitments, so they cannot be rebuilt from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountIds(BTreeMap<Pan, AccountId>);

impl AccountIds {
    /// No IDs.
    #[must_use]
    pub fn new() -> AccountIds {
        AccountIds::default()
    }

    /// The ID of `pan`.
    #[must_use]
    pub fn get(&self, pan: &Pan) -> Option<&AccountId> {
        self.0.get(pan)
    }

    /// Records the ID of `pan` (after its `AccountOpened` commit).
    pub fn insert(&mut self, pan: Pan, id: AccountId) {
        self.0.insert(pan, id);
    }

    /// Every (PAN, ID).
    pub fn iter(&self) -> impl Iterator<Item = (&Pan, &AccountId)> {
        self.0.iter()
    }
}

/// What `decide` needs beside the state: who the broker is, its Mint, its policy, the time.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The broker's UID (the producer of BrokerScrip, the sender of its frames).
    pub me: Uid,
    /// The broker's Mint (its root key).
    pub mint: &'a Mint,
    /// Policy.
    pub config: &'a Config,
    /// The instant the request is decided at.
    pub now: UnixSecs,
}

impl Ctx<'_> {
    /// The expiry of a scrip issued now (protocol.md section 4), in the bare seconds a
    /// `ScripBody` carries.
    pub fn expiry(&self) -> Result<u64, Refusal> {
        self.after(self.config.scrip_lifetime_secs, "expiry out of range")
    }

    /// Refuses a new `kind` transaction of `peer` at its cap of open ones (section 10:
    /// `TooManyRequests`, sent unsigned, nothing recorded).
    pub(crate) fn within_quota(
        &self,
        state: &State,
        kind: OpenKind,
        peer: Uid,
    ) -> Result<(), Refusal> {
        state.open.within(&self.config.quotas, kind, peer, self.now)
    }

    /// `secs` after now, in the bare seconds a stored deadline or expiry keeps; refused
    /// with `what` rather than wrapped (protocol.md sections 4 and 7).
    pub(crate) fn after(&self, secs: u64, what: &'static str) -> Result<u64, Refusal> {
        self.now
            .checked_add_secs(secs)
            .map(UnixSecs::get)
            .ok_or_else(|| Refusal::new(ErrorCode::Internal, what))
    }
}

/// Whether a stored deadline (bare unix seconds) has passed at `now`: a deadline is still
/// open during its own second (protocol.md section 7).
pub(crate) fn passed(now: UnixSecs, deadline: u64) -> bool {
    now > UnixSecs::new(deadline)
}

/// What `decide` returns for a new request: the events to append, the reply, and the
/// deliveries (unsigned drafts; the secrets to seal travel inside them).
#[derive(Debug)]
pub struct Decision {
    /// Appended in one commit before the reply leaves; empty for a read-only query.
    pub events: Vec<NewEvent<Kind>>,
    /// The answer to the request.
    pub reply: Draft,
    /// One-way messages to other parties.
    pub deliveries: Vec<Draft>,
}

/// The outcome of [`decide`].
#[derive(Debug)]
pub enum Outcome {
    /// A new request, decided.
    Decided(Box<Decision>),
    /// A repeat (same key, same digest, section 7): the stored reply bytes; no event.
    Repeat(Vec<u8>),
}

/// Decides a verified request (see the module doc). The idempotency lookup comes first: a
/// repeat gets the stored reply whatever the state is now, and a reused key is refused
/// before any other check.
pub fn decide(state: &State, ctx: &Ctx<'_>, v: &Verified) -> Result<Outcome, Refusal> {
    match state.replies.lookup(&ReplyKey::of(&v.header), &v.digest) {
        Lookup::Repeat(stored) => return Ok(Outcome::Repeat(stored.frame.clone())),
        reuse @ Lookup::TxReused => reuse.refuse_reuse()?,
        Lookup::New => {}
    }
    let decision = match &v.request {
        Request::Registration {
            pan,
            public_key,
            id_proven,
        } => register::decide(state, ctx, v, pan, public_key, *id_proven)?,
        Request::PublicKey(x) => public_key::decide(state, ctx, v, x)?,
        Request::ObtainBrokerScrip(x) => obtain_broker_scrip::decide(state, ctx, v, x)?,
        Request::TopUpBrokerScrip { body, cs } => {
            top_up_broker_scrip::decide(state, ctx, v, body, cs)?
        }
        Request::WithdrawBrokerScrip { body, cs } => {
            withdraw_broker_scrip::decide(state, ctx, v, body, cs)?
        }
        Request::Renew { body, cs } => renew::decide(state, ctx, v, body, cs)?,
        Request::VendorScripNotice(x) => obtain_vendor_scrip::notice(state, ctx, v, x)?,
        Request::ExchangeAuthorization(x) => obtain_vendor_scrip::authorize(state, ctx, v, x)?,
        Request::PurchaseInitiated(x) => buy_item::initiated(state, ctx, v, x)?,
        Request::PurchaseCompleted(x) => buy_item::completed(state, ctx, v, x)?,
        Request::TransactionStatus(x) => transaction_status::decide(state, ctx, v, x)?,
        Request::ScripLapsedNotice(x) => lapse::notice(state, ctx, v, x)?,
        Request::VendorTopUpRequest(x) => top_up_vendor_scrip::request(state, ctx, v, x)?,
        Request::VendorTopUpAccepted { x3, x3_evidence } => {
            top_up_vendor_scrip::accepted(state, ctx, v, x3, x3_evidence)?
        }
        Request::VendorWithdrawAuthorization { x2, x1 } => {
            withdraw_vendor_scrip::decide(state, ctx, v, x2, x1)?
        }
        Request::Admin(request) => admin::decide(state, ctx, v, request)?,
        Request::MerchantProfile(x) => names::profile(state, ctx, v, x)?,
        Request::MerchantDirectory(x) => names::directory(state, ctx, v, x)?,
    };
    Ok(Outcome::Decided(Box::new(decision)))
}

/// The evidence of a verified request, as its events keep it (section 8).
fn evidence_of(v: &Verified) -> Vec<Evidence> {
    v.evidence.iter().map(Evidence::from).collect()
}

/// `MemoAlarm` if decreasing the memo `float:vendor:<merchant>` by `value` takes it below
/// zero: an audit alarm, never a refusal (section 5).
fn memo_alarm(
    state: &State,
    ctx: &Ctx<'_>,
    tx: shared::ids::TxId,
    merchant: Uid,
    value: shared::Amount,
) -> Option<NewEvent<Kind>> {
    let memo = state.memo(&merchant) - i128::from(value.minor());
    (memo < 0).then(|| NewEvent::new(ctx.now.to_millis(), tx, Kind::MemoAlarm { merchant, memo }))
}

/// Section 4's validation of a BrokerScrip `scrip` presented by `presenter` with `cs`
/// (`LiveScrip::check_spendable`: the Mint's checks under `expiry`, then the live table's);
/// the owner of a scrip that lapsed is told so (`ScripCheckError::refusal`).
fn check_presented(
    state: &State,
    ctx: &Ctx<'_>,
    scrip: &shared::Scrip,
    cs: &shared::CustomerSecret,
    presenter: Uid,
    expiry: shared::ExpiryRule,
) -> Result<(), Refusal> {
    state
        .live
        .check_spendable(scrip, cs.expose(), presenter, ctx.now, expiry, ctx.mint)
        .map(drop)
        .map_err(|e| e.refusal(scrip.id(), &state.bindings))
}

/// The registered peer who sent `v` (`open` refused anyone else).
fn sender_peer<'a>(state: &'a State, v: &Verified) -> Result<&'a Peer, Refusal> {
    state.peers.get(&v.header.sender).ok_or_else(|| {
        Refusal::new(
            ErrorCode::UnknownPeer,
            "the sender is not a registered peer",
        )
    })
}
