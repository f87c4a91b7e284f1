//! `open`: the CPU-heavy, pure first step (ADR 0006). It takes a decoded frame, opens the
//! sealed parts addressed to the broker, verifies every signature and IdProof, and returns
//! a typed [`Verified`] request with the request digest (protocol.md section 7).
//!
//! Refusals, in the order they are checked: `WrongSuite` (a public property of the frame,
//! before any cryptography); `UnknownPeer` for a sender that is not registered, before any
//! cryptography (every request but registration); `BadFrame` for any failure to open,
//! decode or verify, one class with one message (no oracle, section 3); `BadIdProof` when
//! the IdProof does not prove the account's ID for this tx and label (so an IdProof
//! replayed from another tx fails too). Each of these is answered with an unsigned `Error`
//! (section 3: the request did not verify), by the driver.
//!
//! A merchant's relay (6.2 step 3, 6.7 step 2) whose own part verified is not refused here
//! when the customer's forwarded part does not: the reason goes to `decide`, which records
//! a NOK (6.2 step 4, 6.7 step 3; section 10: every request for a decision gets one).
//!
//! A registration (6.0) is the exception to the last: once its `X0` signature verified,
//! an unknown PAN or an IdProof that does not prove the PAN's ID is not refused here but
//! carried to `decide` as [`Request::Registration`]'s `id_proven`, so that the refusal is
//! the one `RegistrationRefused` of 6.0 and a signed `Error` whose `re` holds the request
//! digest (section 3: the registrant's wallet must recognise it and end its request).

use shared::ErrorCode;
use shared::ids::{AccountId, Pan, Uid};
use shared::node::Refusal;
use shared::wire::bodies::{
    BrokerScripRequestX0, BrokerScripTopUpX0, BrokerScripWithdrawX0,
    ExchangeAuthorizationRequestX3, MerchantDirectoryRequestX0, MerchantProfileX0, PresentsScrip,
    PublicKeyRequestX0, PurchaseCompletedX3, PurchaseInitiatedX0, RegistrationRequestX0,
    RenewRequestX0, ScripLapsedNoticeBody, TransactionStatusBody, VendorScripNoticeX0,
    VendorScripRequestX1, VendorTopUpAcceptedX3, VendorTopUpRequestX0,
    VendorWithdrawAuthorizationX2, VendorWithdrawRequestX1,
};
use shared::wire::{Body, Frame, Label, Opened, Part, Reason, WireError};
use shared::{CustomerSecret, KeyPair, PublicKey};

use super::AccountIds;
use super::request::{
    CustomerPart, ExchangeAuthorization, Request, VendorTopUp, Verified, finish, single_part,
};
use super::state::{Peer, State};

/// Opens and verifies `frame` for the broker `me` (see the module doc); `operator` is the
/// key allowed to send administration requests, if one is configured.
pub fn open(
    frame: &Frame,
    me: &KeyPair,
    state: &State,
    ids: &AccountIds,
    operator: Option<&PublicKey>,
) -> Result<Verified, Refusal> {
    let header = frame.header;
    header.check_suite(me.suite())?;
    if header.label == Label::RegistrationRequest {
        return open_registration(frame, me, state, ids);
    }
    match header.label {
        Label::AdminRequest => return super::admin::open(frame, me, operator),
        Label::ExchangeAuthorizationRequest => {
            return open_exchange_authorization(frame, me, state, ids);
        }
        Label::VendorWithdrawAuthorization => {
            return open_vendor_withdraw_authorization(frame, me, state, ids);
        }
        Label::VendorTopUpRequest => return open_vendor_top_up(frame, me, state, ids),
        _ => {}
    }
    let peer = state.peers.get(&header.sender).ok_or_else(unknown_sender)?;
    let key = &peer.public_key;
    let id = || account_id(ids, &peer.pan);
    match header.label {
        Label::PublicKeyRequest => {
            let part = single_part(frame)?;
            let x = part.verify_signed::<PublicKeyRequestX0>(key)?;
            finish(header, vec![x.evidence], Request::PublicKey(x.body))
        }
        Label::BrokerScripRequest => {
            let opened = open_single(frame, me)?;
            let x = opened.signed::<BrokerScripRequestX0>(key)?;
            id_proof(&opened, key, id()?)?;
            finish(header, vec![x.evidence], Request::ObtainBrokerScrip(x.body))
        }
        Label::BrokerScripTopUp => {
            let (x, cs) = open_presenting::<BrokerScripTopUpX0>(frame, me, key, Some(id()?))?;
            finish(
                header,
                vec![x.evidence],
                Request::TopUpBrokerScrip { body: x.body, cs },
            )
        }
        Label::BrokerScripWithdraw => {
            let (x, cs) = open_presenting::<BrokerScripWithdrawX0>(frame, me, key, Some(id()?))?;
            finish(
                header,
                vec![x.evidence],
                Request::WithdrawBrokerScrip { body: x.body, cs },
            )
        }
        Label::RenewRequest => {
            // No IdProof: the CustomerSecret proves ownership (6.8).
            let (x, cs) = open_presenting::<RenewRequestX0>(frame, me, key, None)?;
            finish(
                header,
                vec![x.evidence],
                Request::Renew { body: x.body, cs },
            )
        }
        Label::VendorScripNotice => {
            let opened = open_single(frame, me)?;
            let x = opened.signed::<VendorScripNoticeX0>(key)?;
            id_proof(&opened, key, id()?)?;
            finish(header, vec![x.evidence], Request::VendorScripNotice(x.body))
        }
        Label::VendorTopUpAccepted => {
            let opened = open_single(frame, me)?;
            let x = opened.signed::<VendorTopUpAcceptedX3>(key)?;
            let x3_evidence = x.evidence.clone();
            finish(
                header,
                vec![x.evidence],
                Request::VendorTopUpAccepted {
                    x3: x.body,
                    x3_evidence,
                },
            )
        }
        Label::PurchaseInitiated => {
            let x = single_part(frame)?.verify_signed::<PurchaseInitiatedX0>(key)?;
            finish(header, vec![x.evidence], Request::PurchaseInitiated(x.body))
        }
        Label::PurchaseCompleted => {
            let x = single_part(frame)?.verify_signed::<PurchaseCompletedX3>(key)?;
            finish(header, vec![x.evidence], Request::PurchaseCompleted(x.body))
        }
        Label::ScripLapsedNotice => {
            let x = single_part(frame)?.verify_signed::<ScripLapsedNoticeBody>(key)?;
            finish(header, vec![x.evidence], Request::ScripLapsedNotice(x.body))
        }
        Label::TransactionStatus => {
            let x = single_part(frame)?.verify_signed::<TransactionStatusBody>(key)?;
            finish(header, vec![x.evidence], Request::TransactionStatus(x.body))
        }
        Label::MerchantProfile => {
            let x = single_part(frame)?.verify_signed::<MerchantProfileX0>(key)?;
            finish(header, vec![x.evidence], Request::MerchantProfile(x.body))
        }
        Label::MerchantDirectoryRequest => {
            let x = single_part(frame)?.verify_signed::<MerchantDirectoryRequestX0>(key)?;
            finish(header, vec![x.evidence], Request::MerchantDirectory(x.body))
        }
        other => Err(not_served(other)),
    }
}

/// Part 0 of a frame of two parts whose first is its sender's own (6.2 step 3, 6.5 step 1,
/// 6.7 step 2): sealed to the broker, its signed `Own` verified under the registered
/// sender's key, with the sender's IdProof. Gives it with the opened part, for a secret it
/// carries; part 1 is the caller's.
fn open_own_of_two<Own: Body>(
    frame: &Frame,
    me: &KeyPair,
    state: &State,
    ids: &AccountIds,
) -> Result<(shared::wire::Verified<Own>, Opened), Refusal> {
    let sender = state
        .peers
        .get(&frame.header.sender)
        .ok_or_else(unknown_sender)?;
    if frame.parts.len() != 2 {
        return Err(WireError::TooManyParts {
            count: frame.parts.len(),
        }
        .into());
    }
    let mine = frame.part(0)?;
    if mine.forwarded {
        return Err(WireError::WrongPartKind {
            expected: "Sealed",
            found: "Forwarded",
        }
        .into());
    }
    let opened = mine.open_sealed(me)?;
    let own = signed_by_account::<Own>(&opened, sender, ids)?;
    Ok((own, opened))
}

/// The signed `B` of an opened part and the IdProof beside it, both of the registered
/// `peer` (its key, and the ID of its account).
fn signed_by_account<B: Body>(
    opened: &Opened,
    peer: &Peer,
    ids: &AccountIds,
) -> Result<shared::wire::Verified<B>, Refusal> {
    let verified = opened.signed::<B>(&peer.public_key)?;
    id_proof(opened, &peer.public_key, account_id(ids, &peer.pan)?)?;
    Ok(verified)
}

/// A merchant's relay (6.2 step 3, 6.7 step 2): M's own signed body (with M's IdProof),
/// verified, and the customer's forwarded body (with the customer's IdProof) with the
/// opened forwarded part for any secret it carries, or why that part did not verify.
///
/// Once M's own part verified, a customer part that does not is no reason to leave M
/// without a decision (protocol.md 6.2 step 4, section 10): M may not undo on its own
/// timer, so it would repeat its request for ever. The broker refuses it with a recorded
/// NOK instead, and `forwarded` carries the reason to `decide`.
struct Relay<Own, Fwd> {
    own: shared::wire::Verified<Own>,
    forwarded: Result<Forwarded<Fwd>, Reason>,
}

/// The customer's forwarded part of a relay, verified and opened.
struct Forwarded<Fwd> {
    body: shared::wire::Verified<Fwd>,
    opened: Opened,
}

/// Opens a relay: part 0 is the relaying merchant's own sealed part, part 1 the customer's
/// broker part forwarded unchanged. The forwarded part must come from the customer that
/// `customer_of` reads from M's verified body, under `origin_label` of this tx (the frame
/// checks the tx), and is verified against that origin header, not M's (protocol.md
/// section 3, "Forwarded parts"). A failure of M's part is the frame's refusal; a failure
/// of the customer's is [`Relay::forwarded`]'s reason.
fn open_relay<Own: Body, Fwd: Body>(
    frame: &Frame,
    me: &KeyPair,
    state: &State,
    ids: &AccountIds,
    origin_label: Label,
    customer_of: impl Fn(&Own) -> Uid,
) -> Result<Relay<Own, Fwd>, Refusal> {
    let (own, _) = open_own_of_two::<Own>(frame, me, state, ids)?;
    let customer_uid = customer_of(&own.body);
    let forwarded = open_forwarded::<Fwd>(frame, me, state, ids, origin_label, customer_uid)
        .map_err(|r| Reason::new(r.code, r.message));
    Ok(Relay { own, forwarded })
}

/// The customer's forwarded part of a relay (see [`open_relay`]).
fn open_forwarded<Fwd: Body>(
    frame: &Frame,
    me: &KeyPair,
    state: &State,
    ids: &AccountIds,
    origin_label: Label,
    customer_uid: Uid,
) -> Result<Forwarded<Fwd>, Refusal> {
    let relayed = frame.part(1)?;
    if !relayed.forwarded {
        return Err(WireError::WrongPartKind {
            expected: "Forwarded",
            found: "Sealed",
        }
        .into());
    }
    let origin = relayed.header;
    if origin.label != origin_label || origin.sender != customer_uid {
        return Err(Refusal::from(WireError::LabelMismatch {
            expected: origin_label,
            found: origin.label,
        }));
    }
    let customer = state.peers.get(&customer_uid).ok_or_else(|| {
        Refusal::new(
            ErrorCode::UnknownPeer,
            "the customer is not a registered peer",
        )
    })?;
    let opened = relayed.open_sealed(me)?;
    let body = signed_by_account::<Fwd>(&opened, customer, ids)?;
    Ok(Forwarded { body, opened })
}

/// 6.2 step 3: M's `X3` and C's forwarded `VendorScripRequest` part with `CS_B0` (or why
/// it did not verify: refused with a recorded NOK, 6.2 step 4).
fn open_exchange_authorization(
    frame: &Frame,
    me: &KeyPair,
    state: &State,
    ids: &AccountIds,
) -> Result<Verified, Refusal> {
    let relay = open_relay::<ExchangeAuthorizationRequestX3, VendorScripRequestX1>(
        frame,
        me,
        state,
        ids,
        Label::VendorScripRequest,
        |x3| x3.customer,
    )?;
    let x3 = relay.own;
    let mut evidence = vec![x3.evidence.clone()];
    let customer_part = relay.forwarded.and_then(|f| {
        let cs = f
            .opened
            .secret(f.body.body.scrip.id(), &f.body.body.cs_hash)
            .map_err(|e| {
                let r = Refusal::from(e);
                Reason::new(r.code, r.message)
            })?;
        evidence.push(f.body.evidence);
        Ok(CustomerPart {
            x1: f.body.body,
            cs,
        })
    });
    finish(
        frame.header,
        evidence,
        Request::ExchangeAuthorization(Box::new(ExchangeAuthorization {
            x3: x3.body,
            x3_evidence: x3.evidence,
            customer_part,
        })),
    )
}

/// 6.5 step 1: part 0 sealed to the broker (`IdProof(ID_C)`, `X0`, `Secret(CS_B0)`), part
/// 1 C's part sealed to the merchant `X0` names (protocol.md 6.5 step 1, in that order).
/// The broker cannot open part 1; it checks only that it is a sealed part addressed to that
/// merchant, so that it relays nothing else. Only `X0` is verified, so the request digest
/// covers `X0` alone (section 7: the verified bodies).
fn open_vendor_top_up(
    frame: &Frame,
    me: &KeyPair,
    state: &State,
    ids: &AccountIds,
) -> Result<Verified, Refusal> {
    let (x, opened) = open_own_of_two::<VendorTopUpRequestX0>(frame, me, state, ids)?;
    let cs = opened.secret(x.body.broker_scrip.id(), &x.body.cs_hash)?;
    let merchant_part = frame.parts[1].clone();
    match &merchant_part {
        Part::Sealed { to, .. } if *to == x.body.merchant => {}
        _ => {
            return Err(WireError::WrongPartKind {
                expected: "Sealed to the merchant",
                found: "another part",
            }
            .into());
        }
    }
    finish(
        frame.header,
        vec![x.evidence],
        Request::VendorTopUpRequest(Box::new(VendorTopUp {
            x0: x.body,
            cs,
            merchant_part,
        })),
    )
}

/// 6.7 step 2: M's `X2` and C's forwarded `VendorWithdrawRequest` part `X1` (or why it
/// did not verify: refused with a recorded NOK, 6.7 step 3).
fn open_vendor_withdraw_authorization(
    frame: &Frame,
    me: &KeyPair,
    state: &State,
    ids: &AccountIds,
) -> Result<Verified, Refusal> {
    let relay = open_relay::<VendorWithdrawAuthorizationX2, VendorWithdrawRequestX1>(
        frame,
        me,
        state,
        ids,
        Label::VendorWithdrawRequest,
        |x2| x2.customer,
    )?;
    let x2 = relay.own;
    let mut evidence = vec![x2.evidence];
    let x1 = relay.forwarded.map(|f| {
        evidence.push(f.body.evidence);
        f.body.body
    });
    finish(
        frame.header,
        evidence,
        Request::VendorWithdrawAuthorization { x2: x2.body, x1 },
    )
}

fn unknown_sender() -> Refusal {
    Refusal::new(
        ErrorCode::UnknownPeer,
        "the sender is not a registered peer",
    )
}

/// 6.0: the key comes in the sealed part, so the sender cannot be looked up first.
///
/// Once `X0` verified under the included key, the sender is known to hold that key, so a
/// refusal is answered signed with the request's digest (section 3): an unknown PAN and an
/// IdProof that does not prove the PAN's ID become `id_proven: false`, refused by `decide`
/// as the one `RegistrationRefused`. An unknown PAN's IdProof is still checked (against an
/// ID no account has) so that the two cost the broker the same work.
fn open_registration(
    frame: &Frame,
    me: &KeyPair,
    state: &State,
    ids: &AccountIds,
) -> Result<Verified, Refusal> {
    let opened = open_single(frame, me)?;
    let public_key = opened.public_key()?;
    // `signed` checks that the key's UID is the header's sender, then the signature.
    let x = opened.signed::<RegistrationRequestX0>(&public_key)?;
    let no_account;
    let id = if state.pans.contains_key(&x.body.pan) {
        account_id(ids, &x.body.pan)?
    } else {
        no_account =
            AccountId::from_secret(shared::SecretBytes::new(vec![
                0;
                me.suite().hash(&[]).len()
            ]));
        &no_account
    };
    let id_proven = match opened.verify_id_proof(&public_key, id) {
        Ok(()) => state.pans.contains_key(&x.body.pan),
        Err(WireError::BadIdProof) => false,
        Err(other) => return Err(other.into()),
    };
    finish(
        frame.header,
        vec![x.evidence],
        Request::Registration {
            pan: x.body.pan,
            public_key,
            id_proven,
        },
    )
}

fn open_single(frame: &Frame, me: &KeyPair) -> Result<Opened, Refusal> {
    Ok(single_part(frame)?.open_sealed(me)?)
}

/// A request sealed to the broker that presents a scrip (6.4, 6.6, 6.8): its signed body,
/// the sender's IdProof of `id` when the transaction asks for one, and the scrip's
/// CustomerSecret checked against the body's `cs_hash`.
fn open_presenting<B: PresentsScrip>(
    frame: &Frame,
    me: &KeyPair,
    key: &PublicKey,
    id: Option<&AccountId>,
) -> Result<(shared::wire::Verified<B>, CustomerSecret), Refusal> {
    let opened = open_single(frame, me)?;
    let x = opened.signed::<B>(key)?;
    if let Some(id) = id {
        id_proof(&opened, key, id)?;
    }
    let (scrip, cs_hash) = x.body.presented();
    let cs = opened.secret(scrip.id(), cs_hash)?;
    Ok((x, cs))
}

fn id_proof(opened: &Opened, key: &PublicKey, id: &AccountId) -> Result<(), Refusal> {
    opened.verify_id_proof(key, id).map_err(|e| match e {
        WireError::BadIdProof => Refusal::new(
            ErrorCode::BadIdProof,
            "the IdProof does not prove this account for this tx",
        ),
        other => other.into(),
    })
}

/// The ID of `pan` from the secrets table. Every opened account has one (written in the
/// same commit as `AccountOpened`); a missing one is the node's fault, not the sender's.
fn account_id<'a>(ids: &'a AccountIds, pan: &Pan) -> Result<&'a AccountId, Refusal> {
    ids.get(pan).ok_or_else(|| {
        Refusal::new(
            ErrorCode::Internal,
            "the account's secret record is missing",
        )
    })
}

fn not_served(label: Label) -> Refusal {
    Refusal::new(
        ErrorCode::BadFrame,
        format!("the broker does not serve {label} requests"),
    )
}
