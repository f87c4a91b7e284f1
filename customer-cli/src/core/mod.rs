//! The wallet's sans-IO core: the client side of protocol.md section 6, one file per
//! transaction, plus its state and events.
//!
//! Each transaction file has two plain functions:
//! - `request(&WalletState, tx, …) -> SavedRequest`: the request's exact bodies and frame
//!   layout (section 6), its request digest (section 7) and what the reply must say. The
//!   wallet saves it as a `RequestSaved` event before the rendered frame leaves.
//! - `accept(&WalletState, &Pending, &Frame, &KeyPair, now) -> NewEvent`: checks the reply
//!   (see [`reply`]: pending request, sender, signature by the pinned or cached key, `re`;
//!   then the flow's own checks: `N`, values, producer, `cs_hash`) and returns the one event
//!   that records the outcome. Nothing changes until that event is appended and folded by
//!   [`WalletState::apply`], live and in replay alike.
//!
//! Deliveries (protocol.md section 3: one-way frames, no `re`) go through the same
//! [`decide_reply`]: B's `ChangeBrokerScrip` (6.2, 6.5) and `VendorWithdrawResult` (6.7),
//! M's `VendorTopUpResponse` (6.5). A delivery belongs to the pending request of its tx
//! whose flow it ends; its sender must be the party that sends it (the pinned broker, or
//! the merchant of the request), its body signed under the delivery's own header.
//!
//! Flows whose outcome is more than one message (6.2, 6.5: the broker's decision and the
//! merchant's scrip, in either order; 6.5 and 6.7: an `Ack` first) keep their request
//! pending and move it through the named states of [`flow`] as each message arrives
//! (`Pending::progress`); the request ends when the last one is in, or at once on the
//! broker's NOK. A message already recorded is [`WalletError::AlreadyReceived`] and changes
//! nothing, so repeats and `TransactionStatus` re-feeds are harmless; one its flow does not
//! take where the request stands is [`WalletError::OutOfStep`].
//!
//! A request's digest covers only the bodies its recipient verifies (the clear parts and
//! the parts sealed to it), as the node computes it: in 6.2 M's `re` covers `X2` only.
//!
//! No clock is read here: `now` (unix seconds) is an argument; tx ids and nonces are drawn
//! by the caller.

pub mod buy_item;
pub mod catalogue;
pub mod change;
pub mod events;
pub mod flow;
pub mod lapse;
pub mod obtain_broker_scrip;
pub mod obtain_vendor_scrip;
pub mod public_key;
pub mod register;
pub mod renew;
pub mod reply;
pub mod request;
pub mod state;
pub mod top_up_broker_scrip;
pub mod top_up_vendor_scrip;
pub mod transaction_status;
pub mod withdraw_broker_scrip;
pub mod withdraw_vendor_scrip;

pub use events::{
    AccountRecord, HistoryEntry, HistoryKind, Identity, Outcome, OwnedScrip, WalletEvent,
};
pub use flow::{Exchange, Message, Progress, TopUp, TransitionError, Withdrawal};
pub use request::{Expect, RenderInputs, SavedInner, SavedPart, SavedRequest, render};
pub use state::{ApplyError, NextStep, Pending, PendingKey, PendingStatus, Row, WalletState};

use shared::events::NewEvent;
use shared::wire::{Frame, Header, Label, LabelKind};
use shared::{KeyPair, ScripId, TxId};

use crate::error::WalletError;

/// The wallet's identity and the header of a new request `label` in `tx`.
pub(crate) fn request_header(
    state: &WalletState,
    label: Label,
    tx: TxId,
) -> Result<(&Identity, Header), WalletError> {
    let identity = state.identity.as_ref().ok_or(WalletError::NotAWallet)?;
    Ok((
        identity,
        Header::new(identity.suite, label, tx, identity.me),
    ))
}

/// Refuses a second pending request of `label` (repeat the first instead).
pub(crate) fn already_pending(state: &WalletState, label: Label) -> Result<(), WalletError> {
    match state
        .pending
        .iter()
        .find(|((_, l), p)| *l == label && p.status != PendingStatus::Abandoned)
    {
        Some(((tx, _), _)) => Err(WalletError::AlreadyPending { tx: *tx, label }),
        None => Ok(()),
    }
}

/// Refuses to present a scrip that a pending request already presents.
pub(crate) fn scrip_free(state: &WalletState, scrip_id: ScripId) -> Result<(), WalletError> {
    match state.pending_with_scrip(scrip_id) {
        Some(p) => Err(WalletError::ScripBusy {
            scrip_id,
            tx: p.request.tx(),
        }),
        None => Ok(()),
    }
}

/// A pending request whose saved expectation is not of its label's flow: the wallet wrote
/// it, so this is a bug, reported rather than guessed around.
pub(crate) fn mismatched_expect(pending: &Pending) -> WalletError {
    WalletError::Internal(format!(
        "pending {} saved with the expectation {:?}",
        pending.request.label(),
        pending.request.expect
    ))
}

/// What a checked reply leads to.
#[derive(Debug)]
pub enum ReplyOutcome {
    /// The request succeeded: the event that records it.
    Completed(NewEvent<WalletEvent>),
    /// The node answered `Error`: the status event, and the typed error to give the caller
    /// once it is recorded.
    Refused(NewEvent<WalletEvent>, WalletError),
}

/// The signature of a flow's check of one incoming frame.
type Accept =
    fn(&WalletState, &Pending, &Frame, &KeyPair, u64) -> Result<NewEvent<WalletEvent>, WalletError>;

/// Checks a reply or broker delivery against the wallet's pending requests and decides
/// what it changes (protocol.md section 3 for the common checks, the transaction's section
/// for the rest). An `Err` changes nothing; a message of the tx already recorded is
/// [`WalletError::AlreadyReceived`] (section 7: a repeat changes nothing).
pub fn decide_reply(
    state: &WalletState,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<ReplyOutcome, WalletError> {
    if matches!(frame.header.label.kind(), LabelKind::Delivery) {
        let pending = reply::find_delivery_pending(state, frame)?;
        let accept: Accept = match (frame.header.label, pending.request.label()) {
            (Label::VendorWithdrawResult, Label::VendorWithdrawRequest) => {
                withdraw_vendor_scrip::accept_result
            }
            (Label::ChangeBrokerScrip, Label::VendorScripRequest) => {
                obtain_vendor_scrip::accept_change
            }
            (Label::ChangeBrokerScrip, Label::VendorScripNotice) => {
                obtain_vendor_scrip::accept_change_at_notice
            }
            (Label::ChangeBrokerScrip, Label::VendorTopUpRequest) => {
                top_up_vendor_scrip::accept_change
            }
            (Label::VendorTopUpResponse, Label::VendorTopUpRequest) => {
                top_up_vendor_scrip::accept_vendor_scrip
            }
            (reply, request) => return Err(WalletError::UnexpectedLabel { request, reply }),
        };
        return completed(pending, frame, accept(state, pending, frame, keys, now)?);
    }
    let pending = match reply::find_pending(state, frame) {
        Err(e @ WalletError::UnexpectedLabel { .. }) if frame.header.label == Label::Ack => {
            return Err(awaiting(state, frame, keys).unwrap_or(e));
        }
        other => other?,
    };
    if frame.header.label == Label::Error {
        // A given-up request takes only a success (see `PendingStatus::Abandoned`).
        if pending.status == PendingStatus::Abandoned {
            return Err(WalletError::NoPendingRequest {
                tx: frame.header.tx,
            });
        }
        let (event, error) = reply::refusal(state, pending, frame, keys, now)?;
        return Ok(ReplyOutcome::Refused(event, error));
    }
    let accept: Accept = match pending.request.label() {
        Label::RegistrationRequest => register::accept,
        Label::PublicKeyRequest => public_key::accept,
        Label::BrokerScripRequest => obtain_broker_scrip::accept,
        Label::BrokerScripTopUp => top_up_broker_scrip::accept,
        Label::BrokerScripWithdraw => withdraw_broker_scrip::accept,
        Label::RenewRequest => renew::accept,
        Label::VendorScripNotice => obtain_vendor_scrip::accept_notice,
        Label::VendorScripRequest => obtain_vendor_scrip::accept_vendor_scrip,
        Label::PurchaseInitiated => buy_item::accept_initiated,
        Label::PurchaseRequest => buy_item::accept_purchase,
        Label::VendorWithdrawRequest => withdraw_vendor_scrip::accept_ack,
        Label::VendorTopUpRequest => top_up_vendor_scrip::accept_ack,
        other => {
            return Err(WalletError::UnexpectedLabel {
                request: other,
                reply: frame.header.label,
            });
        }
    };
    completed(pending, frame, accept(state, pending, frame, keys, now)?)
}

/// Protocol.md section 6: "a node that must ask the broker before it can answer (M in 6.2
/// step 3) holds its own reply until it has the decision; if its requester times out and
/// repeats, it answers `Ack { re }` (pending)". Such an `Ack`, verified (signed by the
/// node asked, `re` naming the request), is [`WalletError::AwaitingDecision`]: nothing
/// changes, the request stays pending and is repeated later. `None` if the frame is no
/// such `Ack` (the caller reports its own error).
fn awaiting(state: &WalletState, frame: &Frame, keys: &KeyPair) -> Option<WalletError> {
    let pending = state
        .pending
        .get(&(frame.header.tx, Label::VendorScripRequest))
        .filter(|p| p.request.to == frame.header.sender)?;
    Some(
        match reply::any_reply::<shared::wire::bodies::AckBody>(state, pending, frame, keys) {
            Ok(_) => WalletError::AwaitingDecision {
                tx: frame.header.tx,
                label: Label::VendorScripRequest,
            },
            Err(e) => e,
        },
    )
}

/// The outcome of an accepted message, unless it was already recorded.
fn completed(
    pending: &Pending,
    frame: &Frame,
    event: NewEvent<WalletEvent>,
) -> Result<ReplyOutcome, WalletError> {
    if let Some(message) = event.kind.message() {
        pending.progress.on(message).map_err(|e| match e {
            TransitionError::Repeat { .. } => WalletError::AlreadyReceived {
                tx: frame.header.tx,
                label: frame.header.label,
            },
            impossible @ TransitionError::Impossible { .. } => WalletError::OutOfStep(impossible),
        })?;
    }
    // A request given up takes a late success, not a NOK (see `PendingStatus::Abandoned`).
    if pending.status == PendingStatus::Abandoned && event.kind.is_nok() {
        return Err(WalletError::NoPendingRequest {
            tx: frame.header.tx,
        });
    }
    Ok(ReplyOutcome::Completed(event))
}
