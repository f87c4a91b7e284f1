//! What every reply goes through before its flow looks at it (protocol.md section 3,
//! "Requests, replies and deliveries"): it must answer a request the wallet has pending
//! (same tx, an accepted reply label, from the party asked, in the wallet's suite), its one
//! part must open and verify under the replier's pinned or cached key, and its `re` must
//! name that request (sender, label, digest). A signed `Error` reply becomes a
//! `RequestRefused` event: only the request's status changes.

use shared::events::{Evidence, NewEvent};
use shared::wire::bodies::ErrorBody;
use shared::wire::{Frame, Label, Opened, Re, Reply, SignedEvidence, Verified, WireError};
use shared::{CustomerSecret, KeyPair, Scrip, ScripId, TxId, Uid};

use super::events::{OwnedScrip, WalletEvent};
use super::state::{Pending, WalletState};
use crate::error::WalletError;
use crate::sealed::SealedSecret;

/// Unix seconds to the log's unix milliseconds.
#[must_use]
pub fn event_time(now: u64) -> u64 {
    now.saturating_mul(1000)
}

/// The event evidence of a verified body (protocol.md section 8).
#[must_use]
pub fn evidence(e: &SignedEvidence) -> Evidence {
    Evidence {
        header: e.header.to_bytes().as_bytes().to_vec(),
        body: e.body.clone(),
        sig: e.sig.clone(),
        signer: e.signer,
    }
}

/// The pending request `frame` answers. Checks the suite, the tx, the label and the
/// sender, in that order, before any cryptography.
pub fn find_pending<'a>(state: &'a WalletState, frame: &Frame) -> Result<&'a Pending, WalletError> {
    let header = &frame.header;
    let identity = state.identity.as_ref().ok_or(WalletError::NotAWallet)?;
    if header.suite != identity.suite {
        return Err(WalletError::ReplySuite {
            expected: identity.suite,
            found: header.suite,
        });
    }
    let mut in_tx = state
        .pending
        .range((header.tx, Label::RegistrationRequest)..)
        .take_while(|((tx, _), _)| *tx == header.tx)
        .map(|(_, p)| p)
        .peekable();
    let first = *in_tx
        .peek()
        .ok_or(WalletError::NoPendingRequest { tx: header.tx })?;
    let candidates: Vec<&Pending> = in_tx
        .filter(|p| p.request.label().accepts_reply(header.label))
        .collect();
    let Some(first_candidate) = candidates.first() else {
        return Err(WalletError::UnexpectedLabel {
            request: first.request.label(),
            reply: header.label,
        });
    };
    // Two requests of one tx may go to different nodes (6.3: B and M); the reply is the
    // one to the request sent to its sender.
    candidates
        .iter()
        .copied()
        .find(|p| p.request.to == header.sender)
        .ok_or(WalletError::UnexpectedSender {
            expected: first_candidate.request.to,
            found: header.sender,
        })
}

/// The pending request a delivery (6.2 step 5, 6.5 steps 5 and 6, 6.7 step 5) belongs to:
/// same suite and tx, a request of the flow the delivery's label ends. The sender and
/// signature are checked by [`delivery_from`].
pub fn find_delivery_pending<'a>(
    state: &'a WalletState,
    frame: &Frame,
) -> Result<&'a Pending, WalletError> {
    let header = &frame.header;
    let identity = state.identity.as_ref().ok_or(WalletError::NotAWallet)?;
    if header.suite != identity.suite {
        return Err(WalletError::ReplySuite {
            expected: identity.suite,
            found: header.suite,
        });
    }
    let requests: &[Label] = match header.label {
        Label::ChangeBrokerScrip => &[
            Label::VendorScripNotice,
            Label::VendorScripRequest,
            Label::VendorTopUpRequest,
        ],
        Label::VendorWithdrawResult => &[Label::VendorWithdrawRequest],
        Label::VendorTopUpResponse => &[Label::VendorTopUpRequest],
        other => {
            return Err(WalletError::UnexpectedLabel {
                request: other,
                reply: other,
            });
        }
    };
    let mut in_tx = state
        .pending
        .range((header.tx, Label::RegistrationRequest)..)
        .take_while(|((tx, _), _)| *tx == header.tx)
        .map(|(_, p)| p)
        .peekable();
    let first = *in_tx
        .peek()
        .ok_or(WalletError::NoPendingRequest { tx: header.tx })?;
    in_tx
        .find(|p| requests.contains(&p.request.label()))
        .ok_or(WalletError::UnexpectedLabel {
            request: first.request.label(),
            reply: header.label,
        })
}

/// The frame's only part: every reply of section 6 has exactly one.
fn only_part(frame: &Frame) -> Result<shared::wire::PartRef<'_>, WalletError> {
    if frame.parts.len() > 1 {
        return Err(WalletError::BadReply(WireError::TooManyParts {
            count: frame.parts.len(),
        }));
    }
    frame.part(0).map_err(WalletError::BadReply)
}

/// The replier's key: the pinned broker's or a cached peer's.
fn replier_key(state: &WalletState, uid: Uid) -> Result<shared::PublicKey, WalletError> {
    state.key_of(uid).ok_or(WalletError::UnknownPeer { uid })
}

/// Checks `re` against the pending request (protocol.md section 3).
pub fn check_re(re: &Re, pending: &Pending, me: Uid) -> Result<(), WalletError> {
    let request = &pending.request;
    if re.sender == me && re.label == request.label() && re.digest == request.digest {
        Ok(())
    } else {
        Err(WalletError::ReMismatch)
    }
}

/// A reply signed in the clear (6.0, 6.6), verified and its `re` checked.
pub fn clear_reply<B: Reply>(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
) -> Result<Verified<B>, WalletError> {
    let key = replier_key(state, frame.header.sender)?;
    let verified = only_part(frame)?
        .verify_signed::<B>(&key)
        .map_err(WalletError::BadReply)?;
    check_re(verified.body.re(), pending, me(state)?)?;
    Ok(verified)
}

/// The answer to a read-only query the wallet did not save (`TransactionStatus`, section 7;
/// `CatalogueRequest`, docs/adr/0009): in the wallet's suite, of the query's tx, an
/// accepted reply label, from the node asked, signed in the clear by it and its `re`
/// naming the query. A signed `Error` is [`WalletError::Refused`]. Records nothing.
pub fn read_answer<B: Reply>(
    state: &WalletState,
    query: &super::SavedRequest,
    frame: &Frame,
) -> Result<Verified<B>, WalletError> {
    let identity = state.identity.as_ref().ok_or(WalletError::NotAWallet)?;
    let header = &frame.header;
    if header.suite != identity.suite {
        return Err(WalletError::ReplySuite {
            expected: identity.suite,
            found: header.suite,
        });
    }
    if header.tx != query.tx() {
        return Err(WalletError::NoPendingRequest { tx: header.tx });
    }
    if !query.label().accepts_reply(header.label) {
        return Err(WalletError::UnexpectedLabel {
            request: query.label(),
            reply: header.label,
        });
    }
    if header.sender != query.to {
        return Err(WalletError::UnexpectedSender {
            expected: query.to,
            found: header.sender,
        });
    }
    let pending = Pending::new(query.clone(), 0);
    if header.label == Label::Error {
        let key = replier_key(state, header.sender)?;
        let verified = only_part(frame)?
            .verify_signed::<ErrorBody>(&key)
            .map_err(WalletError::BadReply)?;
        not_verified(&verified.body, query.label(), me(state)?)?;
        check_re(&verified.body.re, &pending, me(state)?)?;
        let body = verified.body;
        return Err(WalletError::Refused {
            label: query.label(),
            error_code: body.error_code(),
            code: body.code,
            message: body.message,
        });
    }
    clear_reply::<B>(state, &pending, frame)
}

/// A reply sealed to the wallet (6.0b, 6.1, 6.4, 6.8): opened, its signed body verified and
/// its `re` checked. The opened part is returned for its `Secret` inner.
pub fn sealed_reply<B: Reply>(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
) -> Result<(Verified<B>, Opened), WalletError> {
    let key = replier_key(state, frame.header.sender)?;
    let opened = only_part(frame)?
        .open_sealed(keys)
        .map_err(WalletError::BadReply)?;
    let verified = opened.signed::<B>(&key).map_err(WalletError::BadReply)?;
    check_re(verified.body.re(), pending, keys.uid())?;
    Ok((verified, opened))
}

/// The broker's unsigned `Ack` to 6.3 step 1 (ADR 0008): from the pinned broker, one
/// `Clear` part, its `re` the pending request's. The `re` is what binds it: its digest is
/// over the request's exact header and body, which only the broker reads.
pub fn unsigned_ack(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
) -> Result<shared::wire::bodies::AckBody, WalletError> {
    let broker = state.broker().ok_or(WalletError::NotAWallet)?;
    if frame.header.sender != broker {
        return Err(WalletError::UnexpectedSender {
            expected: broker,
            found: frame.header.sender,
        });
    }
    let ack = only_part(frame)?
        .unsigned_ack()
        .map_err(WalletError::BadReply)?;
    check_re(&ack.re, pending, me(state)?)?;
    Ok(ack)
}

/// A reply that may come signed in the clear or sealed to the wallet (an `Ack`, a
/// notice reply): verified under the replier's key and its `re` checked.
pub fn any_reply<B: Reply>(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
) -> Result<Verified<B>, WalletError> {
    let key = replier_key(state, frame.header.sender)?;
    let part = only_part(frame)?;
    let verified = match part.part {
        shared::wire::Part::Sealed { .. } => {
            part.open_sealed(keys).and_then(|o| o.signed::<B>(&key))
        }
        _ => part.verify_signed::<B>(&key),
    }
    .map_err(WalletError::BadReply)?;
    check_re(verified.body.re(), pending, keys.uid())?;
    Ok(verified)
}

/// A delivery from the broker (6.2 step 5, 6.5 step 6, 6.7 step 5): see [`delivery_from`].
pub fn broker_delivery<B: shared::wire::Body>(
    state: &WalletState,
    frame: &Frame,
    keys: &KeyPair,
) -> Result<(Verified<B>, Opened), WalletError> {
    let broker = state.broker().ok_or(WalletError::NotAWallet)?;
    delivery_from(state, frame, keys, broker)
}

/// A delivery from `sender` (the broker's, or M's `VendorTopUpResponse` in 6.5 step 5):
/// one part sealed to the wallet, its body signed by `sender`'s pinned or cached key under
/// the delivery's header. A delivery carries no `re`: the signed header (tx, label,
/// sender) binds it to the tx, and its content is checked against the pending request.
pub fn delivery_from<B: shared::wire::Body>(
    state: &WalletState,
    frame: &Frame,
    keys: &KeyPair,
    sender: Uid,
) -> Result<(Verified<B>, Opened), WalletError> {
    if frame.header.sender != sender {
        return Err(WalletError::UnexpectedSender {
            expected: sender,
            found: frame.header.sender,
        });
    }
    let key = replier_key(state, sender)?;
    let opened = only_part(frame)?
        .open_sealed(keys)
        .map_err(WalletError::BadReply)?;
    let verified = opened.signed::<B>(&key).map_err(WalletError::BadReply)?;
    Ok((verified, opened))
}

/// The wallet's UID.
fn me(state: &WalletState) -> Result<Uid, WalletError> {
    state
        .identity
        .as_ref()
        .map(|i| i.me)
        .ok_or(WalletError::NotAWallet)
}

/// The CustomerSecret of the new scrip from the sealed reply, checked against the signed
/// `cs_hash` (protocol.md section 3).
pub fn new_secret(
    opened: &Opened,
    scrip_id: ScripId,
    cs_hash: &[u8],
) -> Result<CustomerSecret, WalletError> {
    opened.secret(scrip_id, cs_hash).map_err(|e| match e {
        WireError::MissingSecret { .. } | WireError::SecretMismatch { .. } => {
            WalletError::SecretMismatch { scrip_id }
        }
        other => WalletError::BadReply(other),
    })
}

/// Checks a newly issued scrip: its producer is the replier and its value the expected
/// one. Its expiry is not judged on the wallet's clock: the producer has already spent what
/// it replaces, so a scrip that arrives expired is kept (and renewed, 6.8) rather than lost.
pub fn check_new_scrip(
    scrip: &Scrip,
    producer: Uid,
    value: shared::Amount,
) -> Result<(), WalletError> {
    if scrip.body.producer != producer {
        return Err(WalletError::WrongProducer {
            expected: producer,
            found: scrip.body.producer,
        });
    }
    if scrip.value() != value {
        return Err(WalletError::ValueMismatch {
            expected: value,
            found: scrip.value(),
        });
    }
    Ok(())
}

/// The sealing context of a scrip's CustomerSecret in the wallet.
#[must_use]
pub fn cs_context(scrip_id: ScripId) -> Vec<u8> {
    let mut ctx = b"cs".to_vec();
    ctx.extend_from_slice(scrip_id.as_bytes());
    ctx
}

/// A new scrip as the wallet keeps it: its CustomerSecret sealed under the wallet's own key.
pub fn own_scrip(
    keys: &KeyPair,
    scrip: Scrip,
    cs: &CustomerSecret,
    cs_hash: Vec<u8>,
    tx: TxId,
) -> Result<OwnedScrip, WalletError> {
    let sealed_cs = SealedSecret::seal(keys.public(), &cs_context(scrip.id()), cs.expose())?;
    Ok(OwnedScrip {
        scrip,
        cs_hash,
        sealed_cs,
        obtained_in: tx,
    })
}

/// The CustomerSecret of a held scrip, opened with the wallet's key and checked against
/// its `cs_hash`.
pub fn open_cs(keys: &KeyPair, owned: &OwnedScrip) -> Result<CustomerSecret, WalletError> {
    let plain = owned
        .sealed_cs
        .open(keys, &cs_context(owned.scrip.id()))
        .map_err(|e| WalletError::SealedSecret(format!("scrip {}: {e}", owned.scrip.id())))?;
    let cs = CustomerSecret::from_bytes(&plain);
    if cs.cs_hash(keys.suite()) == owned.cs_hash {
        Ok(cs)
    } else {
        Err(WalletError::SealedSecret(format!(
            "scrip {}: opened secret does not match its cs_hash",
            owned.scrip.id()
        )))
    }
}

/// [`WalletError::NotVerified`] when `body`, an `Error` to the wallet `me`'s request
/// `label`, names that request with an empty digest: the node could not verify the request
/// (protocol.md section 3), so the `Error` is no refusal of it, only "repeat".
fn not_verified(body: &ErrorBody, label: Label, me: Uid) -> Result<(), WalletError> {
    if body.re.sender == me && body.re.label == label && body.re.digest.is_empty() {
        Err(WalletError::NotVerified {
            label,
            code: body.code,
            message: body.message.clone(),
        })
    } else {
        Ok(())
    }
}

/// An `Error` reply (protocol.md section 3): verified under the replier's key (in the
/// clear or sealed to the wallet), its `re` checked; becomes a `RequestRefused` event and
/// the typed [`WalletError::Refused`] the caller gets once it is recorded. An `Error` to a
/// request the node could not verify is [`WalletError::NotVerified`] and records nothing.
pub fn refusal(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<(NewEvent<WalletEvent>, WalletError), WalletError> {
    let key = replier_key(state, frame.header.sender)?;
    let part = only_part(frame)?;
    let verified = match part.part {
        shared::wire::Part::Sealed { .. } => part
            .open_sealed(keys)
            .and_then(|o| o.signed::<ErrorBody>(&key)),
        _ => part.verify_signed::<ErrorBody>(&key),
    }
    .map_err(WalletError::BadReply)?;
    not_verified(&verified.body, pending.request.label(), keys.uid())?;
    check_re(&verified.body.re, pending, keys.uid())?;
    let label = pending.request.label();
    let body = verified.body;
    let event = NewEvent::new(
        event_time(now),
        pending.request.tx(),
        WalletEvent::RequestRefused {
            label,
            code: body.code,
            message: body.message.clone(),
        },
    )
    .with_evidence(vec![evidence(&verified.evidence)]);
    let error = WalletError::Refused {
        label,
        error_code: body.error_code(),
        code: body.code,
        message: body.message,
    };
    Ok((event, error))
}

/// An `Ack { re, deadline }` to a request that stays open (6.5 step 1 from B, 6.7 step 1
/// from M): checked like any reply, its deadline required; `acked` builds the event.
pub fn accept_ack(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
    acked: impl FnOnce(u64) -> WalletEvent,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let verified = any_reply::<shared::wire::bodies::AckBody>(state, pending, frame, keys)?;
    let deadline = verified.body.deadline.ok_or(WalletError::MissingDeadline)?;
    Ok(
        NewEvent::new(event_time(now), pending.request.tx(), acked(deadline))
            .with_evidence(vec![evidence(&verified.evidence)]),
    )
}
