//! The wallet's sans-IO core: the client side of protocol.md section 6, one file per
//! transaction, plus its state and events.
//!
//! Each transaction file has two plain functions:
//! - `request(&WalletState, tx, …) -> SavedRequest`: the request's exact bodies and frame
//!   layout (section 6), its request digest (section 7) and what the reply must say. The
//!   wallet saves it as a `RequestSaved` event before the rendered frame leaves.
//! - `accept(&Incoming, …what the request expects) -> NewEvent`: checks the reply (see
//!   [`reply`]: the common opening, [`Incoming`]: pending request, sender, signature by the
//!   pinned or cached key, `re`; then the flow's own checks: `N`, values, producer,
//!   `cs_hash`) and returns the one event that records the outcome. [`decide_reply`] picks
//!   the check by the pending request's saved [`Expect`] and hands it its fields. Nothing
//!   changes until that event is appended and folded by [`WalletState::apply`], live and in
//!   replay alike.
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
pub mod directory;
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
pub use reply::{Decided, Incoming};
pub use request::{Expect, RenderInputs, SavedInner, SavedPart, SavedRequest, render};
pub use state::{ApplyError, NextStep, Pending, PendingKey, PendingStatus, Row, WalletState};

use shared::UnixSecs;
use shared::events::NewEvent;
use shared::wire::{Frame, Header, Label, LabelKind};
use shared::{KeyPair, ScripId, TxId, Uid};

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

/// Refuses a request that carries an IdProof while no bank account is linked (section 1).
pub(crate) fn account_linked(state: &WalletState) -> Result<(), WalletError> {
    state
        .account
        .as_ref()
        .map(|_| ())
        .ok_or(WalletError::NoAccount)
}

/// The BrokerScrip held, to present to the broker (6.2, 6.4, 6.5, 6.6).
pub(crate) fn held_broker_scrip(state: &WalletState) -> Result<&OwnedScrip, WalletError> {
    let broker = state.broker().ok_or(WalletError::NotAWallet)?;
    state
        .broker_scrip()
        .ok_or(WalletError::NoScrip { producer: broker })
}

/// The VendorScrip held of `merchant`, to present to it (6.3, 6.5, 6.7): the part that
/// carries it is sealed to the merchant, whose key the wallet must have cached (6.0b).
pub(crate) fn held_vendor_scrip(
    state: &WalletState,
    merchant: Uid,
) -> Result<&OwnedScrip, WalletError> {
    let held = state
        .scrip
        .get(&merchant)
        .filter(|_| state.broker() != Some(merchant))
        .ok_or(WalletError::NoScrip { producer: merchant })?;
    match state.key_of(merchant) {
        Some(_) => Ok(held),
        None => Err(WalletError::UnknownPeer { uid: merchant }),
    }
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

/// Checks a reply or broker delivery against the wallet's pending requests and decides
/// what it changes (protocol.md section 3 for the common checks, the transaction's section
/// for the rest). An `Err` changes nothing; a message of the tx already recorded is
/// [`WalletError::AlreadyReceived`] (section 7: a repeat changes nothing).
pub fn decide_reply(
    state: &WalletState,
    frame: &Frame,
    keys: &KeyPair,
    now: UnixSecs,
) -> Result<ReplyOutcome, WalletError> {
    let incoming = |pending| Incoming {
        state,
        pending,
        frame,
        keys,
        now,
    };
    if matches!(frame.header.label.kind(), LabelKind::Delivery) {
        let delivery = incoming(reply::find_delivery_pending(state, frame)?);
        return completed(&delivery, accept_delivery(&delivery)?);
    }
    let reply = incoming(match reply::find_pending(state, frame) {
        Err(e @ WalletError::UnexpectedLabel { .. }) if frame.header.label == Label::Ack => {
            return Err(awaiting(state, frame, keys).unwrap_or(e));
        }
        other => other?,
    });
    if frame.header.label == Label::Error {
        // A given-up request takes only a success (see `PendingStatus::Abandoned`).
        if reply.pending.status == PendingStatus::Abandoned {
            return Err(WalletError::NoPendingRequest {
                tx: frame.header.tx,
            });
        }
        let (event, error) = reply.refusal()?;
        return Ok(ReplyOutcome::Refused(event, error));
    }
    completed(&reply, accept_reply(&reply)?)
}

/// The check of a reply by the flow of its request, with what the request expects.
fn accept_reply(reply: &Incoming<'_>) -> Decided {
    match &reply.pending.request.expect {
        Expect::Registration => register::accept(reply),
        Expect::PublicKey { target, nonce } => public_key::accept(reply, *target, *nonce),
        Expect::ObtainBrokerScrip { value, nonce } => {
            obtain_broker_scrip::accept(reply, *value, *nonce)
        }
        Expect::TopUpBrokerScrip {
            spent,
            new_value,
            nonce,
        } => top_up_broker_scrip::accept(reply, *spent, *new_value, *nonce),
        Expect::WithdrawBrokerScrip { spent, value } => {
            withdraw_broker_scrip::accept(reply, *spent, *value)
        }
        Expect::Renew {
            producer,
            spent,
            value,
        } => renew::accept(reply, *producer, *spent, *value),
        Expect::VendorScripNotice {
            merchant,
            value,
            spent,
        } => obtain_vendor_scrip::accept_notice(reply, *merchant, *value, *spent),
        Expect::VendorScripRequest {
            merchant, value, ..
        } => obtain_vendor_scrip::accept_vendor_scrip(reply, *merchant, *value),
        Expect::PurchaseInitiated { .. } => buy_item::accept_initiated(reply),
        Expect::Purchase {
            merchant,
            spent,
            spent_value,
            order,
        } => buy_item::accept_purchase(reply, *merchant, *spent, *spent_value, order),
        Expect::VendorWithdraw { .. } => {
            reply.ack(|deadline| WalletEvent::VendorWithdrawAcked { deadline })
        }
        Expect::VendorTopUp { .. } => {
            reply.ack(|deadline| WalletEvent::VendorTopUpAcked { deadline })
        }
        Expect::TransactionStatus { .. } | Expect::Catalogue { .. } | Expect::MerchantDirectory => {
            Err(WalletError::UnexpectedLabel {
                request: reply.pending.request.label(),
                reply: reply.frame.header.label,
            })
        }
    }
}

/// The check of a delivery by the flow of the request it belongs to.
fn accept_delivery(delivery: &Incoming<'_>) -> Decided {
    match (
        delivery.frame.header.label,
        &delivery.pending.request.expect,
    ) {
        (
            Label::VendorWithdrawResult,
            Expect::VendorWithdraw {
                merchant,
                spent,
                value,
            },
        ) => withdraw_vendor_scrip::accept_result(delivery, *merchant, *spent, *value),
        (Label::ChangeBrokerScrip, Expect::VendorScripNotice { .. }) => {
            obtain_vendor_scrip::accept_change_at_notice(delivery)
        }
        (
            Label::ChangeBrokerScrip,
            Expect::VendorScripRequest {
                merchant,
                value,
                spent,
                spent_value,
                ..
            },
        ) => obtain_vendor_scrip::accept_change(delivery, *merchant, *value, *spent, *spent_value),
        (
            Label::ChangeBrokerScrip,
            Expect::VendorTopUp {
                merchant,
                top_up,
                new_value,
                broker_spent,
                broker_value,
                vendor_spent,
            },
        ) => top_up_vendor_scrip::accept_change(
            delivery,
            *merchant,
            (*broker_spent, *broker_value),
            (*top_up, *new_value, *vendor_spent),
        ),
        (
            Label::VendorTopUpResponse,
            Expect::VendorTopUp {
                merchant,
                new_value,
                vendor_spent,
                ..
            },
        ) => {
            top_up_vendor_scrip::accept_vendor_scrip(delivery, *merchant, *new_value, *vendor_spent)
        }
        (reply, _) => Err(WalletError::UnexpectedLabel {
            request: delivery.pending.request.label(),
            reply,
        }),
    }
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
    let ack = Incoming {
        state,
        pending,
        frame,
        keys,
        now: UnixSecs::EPOCH,
    };
    Some(match ack.any::<shared::wire::bodies::AckBody>() {
        Ok(_) => WalletError::AwaitingDecision {
            tx: frame.header.tx,
            label: Label::VendorScripRequest,
        },
        Err(e) => e,
    })
}

/// The outcome of an accepted message, unless it was already recorded or its flow does
/// not take it where the request stands (the transition `apply` will make, checked first).
fn completed(
    reply: &Incoming<'_>,
    event: NewEvent<WalletEvent>,
) -> Result<ReplyOutcome, WalletError> {
    let (pending, frame) = (reply.pending, reply.frame);
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
