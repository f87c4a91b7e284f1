//! The machinery every node core shares (protocol.md sections 4 and 7): plain, sans-IO data
//! structures with their checks, embedded in the broker's, each merchant's and (where it
//! fits) the wallet's `State`.
//!
//! Why one place: the rules they enforce are the protocol's, not a node's. A scrip is spent
//! at most once, a held scrip is refused by everyone but its escrow's decision, a repeated
//! request gets the stored reply and a reused tx gets `TxReused`: two nodes that coded these
//! apart would sooner or later disagree.
//!
//! - [`Refusal`]: what a core's `decide` returns instead of a decision: a stable
//!   [`ErrorCode`](crate::ErrorCode) and a message with no secret in it.
//! - [`LiveScrip`]: the producer's lookup table of section 4 (`ScripId → body, owner,
//!   Live | Held`), with [`LiveScrip::check_spendable`] (section 4's validation) and an
//!   owner index (a customer holds at most one live scrip per producer).
//! - [`Replies`]: the stored replies by (sender, tx, label) with their request digest, and
//!   the section 7 lookup: [`Lookup::Repeat`], [`Lookup::TxReused`] or [`Lookup::New`].
//! - [`TxBindings`]: who a tx belongs to (its 6.x kind, initiator, counterparties), with the
//!   section 7 check.
//! - [`Outbox`]: every frame sent in a tx, by recipient, for `TransactionStatus` (section 7).
//! - [`Draft`], [`SentFrame`], [`Recorded`]: an unsigned output of `decide`, the sealed frame
//!   it becomes, and the event envelope kind that stores those frames with the event that
//!   produced them, so that replies and outbox are rebuilt by replay (section 8).
//! - [`Driver`] over a [`Core`]: the one batch step of every node (open in parallel, decide
//!   in order, seal, append, one commit, one failure path), its typed outputs
//!   ([`Handled`]: reply, deliveries, requests of the node's own) (docs/adr/0013).
//! - [`Availability`]: whether a node serves or is down after a storage fault, and the
//!   unsigned `Error { Unavailable }` it answers meanwhile ([`Unavailable`], section 10).
//! - [`Quotas`]: what one peer may make a node spend and hold (section 10): a request rate
//!   ([`RateLimiter`], in the driver) and caps on its open transactions ([`OpenTxs`], in
//!   each core's state), refused `TooManyRequests` unsigned ([`unsigned_error`]).
//!
//! # How a node core uses them (the shape of every core, ADR 0006)
//!
//! 1. `open` verifies a decoded frame into a typed request with its digest
//!    ([`digest_of_verified`](crate::wire::digest_of_verified)); a failure is a
//!    [`Refusal`] (`BadFrame` for every crypto or decoding failure: no oracle).
//! 2. `decide(&State, &request, now)` first asks [`Replies::lookup`] (repeat → return the
//!    stored frame bytes, append nothing; same key, other digest → `TxReused`), then
//!    [`TxBindings::check`], then the transaction's own checks (e.g.
//!    [`LiveScrip::check_spendable`]). It returns events (of the node's kind `K`) and
//!    [`Draft`]s, or a [`Refusal`] with the state untouched.
//! 3. The drafts are signed and sealed ([`Draft::seal`]) into [`SentFrame`]s and attached to
//!    the decision's last event as [`Recorded::sent`]; the events are appended in one redb
//!    commit, and only then is the reply returned.
//! 4. `apply(&mut State, &Event<Recorded<K>>)` folds the node's own kind and calls
//!    [`record_sent`] for the frames, which fills [`Replies`] and [`Outbox`]. Replay is the
//!    same `apply` over the log, so live and replayed state cannot differ.

mod availability;
mod bindings;
mod decision;
mod draft;
#[cfg(feature = "io")]
mod driver;
mod live_scrip;
mod outbox;
mod quota;
mod refusal;
mod replies;

pub use availability::{
    Availability, Gate, RETRY_AFTER_SECS, UNAVAILABLE_MESSAGE, Unavailable, is_unavailable,
    unavailable_batch, unavailable_reply,
};
pub use bindings::{TxBinding, TxBindings, TxKind};
pub use decision::{Decision, Handled, Outcome, Outgoing};
pub use draft::{Answered, Draft, DraftError, Recorded, SentFrame, record_sent};
#[cfg(feature = "io")]
pub use driver::{Batch, BatchResults, Core, Driver, Unserved};
pub use live_scrip::{LiveRecord, LiveScrip, ScripCheckError, ScripState, lapse_tx};
pub use outbox::Outbox;
pub use quota::{
    OpenKind, OpenTxs, PURCHASE_WINDOW_SECS, Quotas, RateLimiter, Sender,
    TOO_MANY_REQUESTS_MESSAGE, too_many_requests,
};
pub use refusal::{Refusal, is_repeat_later, unsigned_error, unsigned_error_in, unsigned_error_of};
pub use replies::{Lookup, Replies, ReplyKey, StoredReply};
