//! The operator's administration requests (ADR 0010): the bank operator's API of
//! [`bank`](super::bank) and the broker operator's peer list, over the bus.
//!
//! Only the operator key the broker is configured with may send `AdminRequest`; without
//! one configured, the broker serves no administration at all (`UnknownPeer`, before any
//! cryptography). The request is sealed to the broker and signed by the operator, so it is
//! authenticated, private and bound to its tx like any request; an account opening's
//! PANSecret comes beside the signed body and only its ID is kept (in the secrets table,
//! written in the same commit, never in the log, protocol.md section 1).
//!
//! Writes (open, deposit, payout) take the request's tx as the event's tx and store the
//! reply with it, so a repeated request gets the same answer and moves no money twice
//! (section 7). Reads (balance, peers) append nothing and are answered fresh each time.

use shared::ids::{AccountId, Pan};
use shared::node::{Draft, Refusal};
use shared::wire::bodies::{
    AdminOp, AdminRequestX0, AdminResponseX1, AdminResult, MAX_LISTED_PEERS, PeerInfo, Re,
};
use shared::wire::{Frame, WireError};
use shared::{ErrorCode, KeyPair, PublicKey};

use super::bank::{self, BankError};
use super::request::{AdminRequest, Request, Verified, finish, single_part};
use super::{Ctx, Decision, State};

/// Opens an `AdminRequest`: from the configured operator, one part sealed to the broker
/// holding the operator's signed `X0` (and, for an opening, the PANSecret).
pub(super) fn open(
    frame: &Frame,
    me: &KeyPair,
    operator: Option<&PublicKey>,
) -> Result<Verified, Refusal> {
    let header = frame.header;
    let operator = operator
        .filter(|k| k.uid() == header.sender)
        .ok_or_else(|| {
            Refusal::new(
                ErrorCode::UnknownPeer,
                "the sender is not this broker's operator",
            )
        })?;
    let opened = single_part(frame)?.open_sealed(me)?;
    let x = opened.signed::<AdminRequestX0>(operator)?;
    let request = match x.body.op {
        AdminOp::OpenAccount { pan } => {
            let secret = opened.pan_secret()?;
            AdminRequest::OpenAccount {
                id: AccountId::derive(me.suite(), &secret, &pan),
                weak_secret: secret.expose().len() < bank::MIN_PAN_SECRET_BYTES,
                pan,
            }
        }
        op => {
            if opened
                .inners()
                .iter()
                .any(|i| matches!(i, shared::wire::Inner::PanSecret { .. }))
            {
                return Err(WireError::DuplicateInner { kind: "PanSecret" }.into());
            }
            AdminRequest::Other(op)
        }
    };
    finish(header, vec![x.evidence], Request::Admin(request))
}

/// Decides a verified administration request (after the idempotency lookup of `decide`).
pub(super) fn decide(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    request: &AdminRequest,
) -> Result<Decision, Refusal> {
    let tx = v.header.tx;
    let (events, result) = match request {
        AdminRequest::OpenAccount {
            weak_secret: true, ..
        } => {
            return Err(refusal(&BankError::WeakSecret));
        }
        AdminRequest::OpenAccount { pan, id, .. } => {
            let event = bank::open_account_with_id(state, ctx.config.suite, pan, id, tx, ctx.now)
                .map_err(|e| refusal(&e))?;
            (vec![event], AdminResult::AccountOpened { pan: pan.clone() })
        }
        AdminRequest::Other(AdminOp::Deposit { pan, amount }) => {
            let event = bank::deposit(state, pan, *amount, tx, ctx.now).map_err(|e| refusal(&e))?;
            let balance = after(state, pan, |b| b.checked_add(*amount))?;
            (
                vec![event],
                AdminResult::Moved {
                    pan: pan.clone(),
                    balance,
                },
            )
        }
        AdminRequest::Other(AdminOp::Payout { pan, amount }) => {
            let event = bank::payout(state, pan, *amount, tx, ctx.now).map_err(|e| refusal(&e))?;
            let balance = after(state, pan, |b| b.checked_sub(*amount))?;
            (
                vec![event],
                AdminResult::Moved {
                    pan: pan.clone(),
                    balance,
                },
            )
        }
        AdminRequest::Other(AdminOp::Balance { pan }) => {
            if !state.pans.contains_key(pan) {
                return Err(refusal(&BankError::PanUnknown(pan.clone())));
            }
            (
                Vec::new(),
                AdminResult::Balance {
                    pan: pan.clone(),
                    balance: state.bank_balance(pan),
                    available: bank::available_for_payout(state, pan),
                },
            )
        }
        AdminRequest::Other(AdminOp::Peers { after }) => {
            let mut peers = state
                .peers
                .iter()
                .filter(|(uid, _)| after.is_none_or(|a| **uid > a))
                .map(|(uid, peer)| PeerInfo {
                    uid: *uid,
                    pan: peer.pan.clone(),
                })
                .take(MAX_LISTED_PEERS + 1)
                .collect::<Vec<_>>();
            let more = peers.len() > MAX_LISTED_PEERS;
            peers.truncate(MAX_LISTED_PEERS);
            (Vec::new(), AdminResult::Peers { peers, more })
        }
        AdminRequest::Other(AdminOp::OpenAccount { .. }) => {
            // `open` turns every opening into `AdminRequest::OpenAccount`.
            return Err(Refusal::new(
                ErrorCode::Internal,
                "an account opening without its secret",
            ));
        }
    };
    let body = AdminResponseX1 {
        re: Re::new(&v.header, v.digest.clone()),
        result,
    };
    let reply = Draft::reply(ctx.me, &v.header, &v.digest, &body).sealed_with(Vec::new());
    Ok(Decision {
        events,
        reply,
        deliveries: Vec::new(),
    })
}

/// The balance of `pan` after `change`.
fn after(
    state: &State,
    pan: &Pan,
    change: impl FnOnce(shared::Amount) -> Result<shared::Amount, shared::AmountError>,
) -> Result<shared::Amount, Refusal> {
    change(state.bank_balance(pan)).map_err(|_| refusal(&BankError::Overflow))
}

/// The wire refusal of a bank operation.
fn refusal(e: &BankError) -> Refusal {
    Refusal::new(e.code(), e.to_string())
}
