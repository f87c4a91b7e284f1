//! What every reply goes through before its flow looks at it (protocol.md section 3,
//! "Requests, replies and deliveries"): it must answer a request the wallet has pending
//! (same tx, an accepted reply label, from the party asked, in the wallet's suite), its one
//! part must open and verify under the replier's pinned or cached key, and its `re` must
//! name that request (sender, label, digest). A signed `Error` reply becomes a
//! `RequestRefused` event: only the request's status changes.
//!
//! [`Incoming`] is that opening, once for every flow: a frame with the pending request it
//! answers, whose methods verify it as its flow expects (sealed, in the clear, a delivery),
//! take the new scrip it brings, and make the one event that records the outcome.

use shared::UnixSecs;
use shared::events::{Evidence, NewEvent};
use shared::node::unsigned_error_in;
use shared::wire::bodies::{AckBody, ErrorBody};
use shared::wire::{
    Body, Frame, Header, Label, Opened, Part, PartRef, Re, Reply, ScripWithSecret, SignedEvidence,
    Verified, WireError,
};
use shared::{Amount, CustomerSecret, KeyPair, PublicKey, Scrip, ScripId, TxId, Uid};

use super::events::{OwnedScrip, WalletEvent};
use super::request::SavedRequest;
use super::state::{Pending, WalletState};
use crate::error::WalletError;
use crate::sealed::SealedSecret;

/// Refuses a frame of another suite than the wallet's (section 2), before anything else.
fn check_suite(state: &WalletState, header: &Header) -> Result<(), WalletError> {
    let identity = state.identity.as_ref().ok_or(WalletError::NotAWallet)?;
    if header.suite == identity.suite {
        Ok(())
    } else {
        Err(WalletError::ReplySuite {
            expected: identity.suite,
            found: header.suite,
        })
    }
}

/// The requests pending in the frame's tx, in label order (at least one, in the wallet's
/// suite), and the label of the first, which an error names.
fn pending_in_tx<'a>(
    state: &'a WalletState,
    header: &Header,
) -> Result<(Label, Vec<&'a Pending>), WalletError> {
    check_suite(state, header)?;
    let in_tx: Vec<&Pending> = state
        .pending
        .range((header.tx, Label::RegistrationRequest)..)
        .take_while(|((tx, _), _)| *tx == header.tx)
        .map(|(_, p)| p)
        .collect();
    match in_tx.first() {
        Some(first) => Ok((first.request.label(), in_tx)),
        None => Err(WalletError::NoPendingRequest { tx: header.tx }),
    }
}

/// The pending request `frame` answers. Checks the suite, the tx, the label and the
/// sender, in that order, before any cryptography.
pub fn find_pending<'a>(state: &'a WalletState, frame: &Frame) -> Result<&'a Pending, WalletError> {
    let header = &frame.header;
    let (first, in_tx) = pending_in_tx(state, header)?;
    let candidates: Vec<&Pending> = in_tx
        .iter()
        .copied()
        .filter(|p| p.request.label().accepts_reply(header.label))
        .collect();
    let Some(first_candidate) = candidates.first() else {
        return Err(WalletError::UnexpectedLabel {
            request: first,
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
/// signature are checked by [`Incoming::delivery`].
pub fn find_delivery_pending<'a>(
    state: &'a WalletState,
    frame: &Frame,
) -> Result<&'a Pending, WalletError> {
    let header = &frame.header;
    let requests: &[Label] = match header.label {
        Label::ChangeBrokerScrip => &[
            Label::VendorScripNotice,
            Label::VendorScripRequest,
            Label::VendorTopUpRequest,
        ],
        Label::VendorWithdrawResult => &[Label::VendorWithdrawRequest],
        Label::VendorTopUpResponse => &[Label::VendorTopUpRequest],
        other => {
            check_suite(state, header)?;
            return Err(WalletError::UnexpectedLabel {
                request: other,
                reply: other,
            });
        }
    };
    let (first, in_tx) = pending_in_tx(state, header)?;
    in_tx
        .iter()
        .copied()
        .find(|p| requests.contains(&p.request.label()))
        .ok_or(WalletError::UnexpectedLabel {
            request: first,
            reply: header.label,
        })
}

/// What a flow's check of an incoming frame returns: the one event that records it.
pub type Decided = Result<NewEvent<WalletEvent>, WalletError>;

/// A frame that answers a pending request (its reply, or a delivery of its flow), with what
/// checking it needs: the one opening every flow's `accept` starts from.
#[derive(Clone, Copy)]
pub struct Incoming<'a> {
    /// The wallet's state.
    pub state: &'a WalletState,
    /// The request it answers.
    pub pending: &'a Pending,
    /// The frame, decoded.
    pub frame: &'a Frame,
    /// The wallet's key pair.
    pub keys: &'a KeyPair,
    /// Unix seconds.
    pub now: UnixSecs,
}

impl<'a> Incoming<'a> {
    /// The tx.
    #[must_use]
    pub fn tx(&self) -> TxId {
        self.pending.request.tx()
    }

    /// The sender's key: the pinned broker's or a cached peer's (6.0b).
    fn sender_key(&self) -> Result<PublicKey, WalletError> {
        let uid = self.frame.header.sender;
        self.state
            .key_of(uid)
            .ok_or(WalletError::UnknownPeer { uid })
    }

    /// The frame's only part: every reply of section 6 has exactly one.
    fn only_part(&self) -> Result<PartRef<'a>, WalletError> {
        if self.frame.parts.len() > 1 {
            return Err(WalletError::BadReply(WireError::TooManyParts {
                count: self.frame.parts.len(),
            }));
        }
        self.frame.part(0).map_err(WalletError::BadReply)
    }

    /// Checks `re` against the pending request (protocol.md section 3).
    fn check_re(&self, re: &Re) -> Result<(), WalletError> {
        let request = &self.pending.request;
        if re.sender == self.keys.uid()
            && re.label == request.label()
            && re.digest == request.digest
        {
            Ok(())
        } else {
            Err(WalletError::ReMismatch)
        }
    }

    /// The part signed in the clear by the sender, verified; `re` not yet checked.
    fn signed_clear<B: Body>(&self) -> Result<Verified<B>, WalletError> {
        self.only_part()?
            .verify_signed::<B>(&self.sender_key()?)
            .map_err(WalletError::BadReply)
    }

    /// The part sealed to the wallet, opened, its body signed by the sender verified; `re`
    /// not yet checked. The opened part is returned for its `Secret` inner.
    fn signed_sealed<B: Body>(&self) -> Result<(Verified<B>, Opened), WalletError> {
        let key = self.sender_key()?;
        let opened = self
            .only_part()?
            .open_sealed(self.keys)
            .map_err(WalletError::BadReply)?;
        let verified = opened.signed::<B>(&key).map_err(WalletError::BadReply)?;
        Ok((verified, opened))
    }

    /// The part signed by the sender, in the clear or sealed to the wallet, verified; `re`
    /// not yet checked.
    fn signed_any<B: Body>(&self) -> Result<Verified<B>, WalletError> {
        self.sender_key()?;
        match self.only_part()?.part {
            Part::Sealed { .. } => self.signed_sealed::<B>().map(|(verified, _)| verified),
            _ => self.signed_clear::<B>(),
        }
    }

    /// A reply signed in the clear (6.0, 6.6), verified and its `re` checked.
    pub fn clear<B: Reply>(&self) -> Result<Verified<B>, WalletError> {
        let verified = self.signed_clear::<B>()?;
        self.check_re(verified.body.re())?;
        Ok(verified)
    }

    /// A reply that may come signed in the clear or sealed to the wallet (an `Ack`, a
    /// notice reply): verified under the replier's key and its `re` checked.
    pub fn any<B: Reply>(&self) -> Result<Verified<B>, WalletError> {
        let verified = self.signed_any::<B>()?;
        self.check_re(verified.body.re())?;
        Ok(verified)
    }

    /// A reply sealed to the wallet (6.0b, 6.1, 6.2 step 7, 6.3, 6.4, 6.8): opened, its
    /// signed body verified and its `re` checked. The opened part is returned for its
    /// `Secret` inner.
    pub fn sealed<B: Reply>(&self) -> Result<(Verified<B>, Opened), WalletError> {
        let (verified, opened) = self.signed_sealed::<B>()?;
        self.check_re(verified.body.re())?;
        Ok((verified, opened))
    }

    /// The broker's unsigned `Ack` to 6.3 step 1 (ADR 0008): from the pinned broker, one
    /// `Clear` part, its `re` the pending request's. The `re` is what binds it: its digest
    /// is over the request's exact header and body, which only the broker reads.
    pub fn unsigned_ack(&self) -> Result<AckBody, WalletError> {
        self.check_sender(self.broker()?)?;
        let ack = self
            .only_part()?
            .unsigned_ack()
            .map_err(WalletError::BadReply)?;
        self.check_re(&ack.re)?;
        Ok(ack)
    }

    /// An `Ack { re, deadline }` to a request that stays open (6.5 step 1 from B, 6.7 step
    /// 1 from M): checked like any reply, its deadline required; `acked` makes the event.
    pub fn ack(&self, acked: impl FnOnce(u64) -> WalletEvent) -> Decided {
        let verified = self.any::<AckBody>()?;
        let deadline = verified.body.deadline.ok_or(WalletError::MissingDeadline)?;
        Ok(self.record(acked(deadline), &verified.evidence))
    }

    /// A delivery from `sender` (6.2 step 5, 6.5 steps 5 and 6, 6.7 step 5): one part
    /// sealed to the wallet, its body signed by `sender`'s pinned or cached key under the
    /// delivery's header. A delivery carries no `re`: the signed header (tx, label, sender)
    /// binds it to the tx, and its content is checked against the pending request.
    pub fn delivery<B: Body>(&self, sender: Uid) -> Result<(Verified<B>, Opened), WalletError> {
        self.check_sender(sender)?;
        self.signed_sealed::<B>()
    }

    /// A delivery from the pinned broker: see [`Incoming::delivery`].
    pub fn broker_delivery<B: Body>(&self) -> Result<(Verified<B>, Opened), WalletError> {
        self.delivery(self.broker()?)
    }

    /// The pinned broker.
    fn broker(&self) -> Result<Uid, WalletError> {
        self.state.broker().ok_or(WalletError::NotAWallet)
    }

    /// Refuses a frame whose sender is not `sender`.
    fn check_sender(&self, sender: Uid) -> Result<(), WalletError> {
        if self.frame.header.sender == sender {
            Ok(())
        } else {
            Err(WalletError::UnexpectedSender {
                expected: sender,
                found: self.frame.header.sender,
            })
        }
    }

    /// An unsigned `Error` from the node asked (protocol.md section 3: a refusal of a
    /// request the node could not verify, or over one of its quotas, section 10): never a
    /// decision, so [`WalletError::NotVerified`], recording nothing. `Ok` when the frame is
    /// not one (a signed `Error` goes on to be verified).
    fn unsigned_error(&self) -> Result<(), WalletError> {
        let tx = self.pending.request.tx();
        let Some(body) = unsigned_error_in(self.frame, self.pending.request.to, tx) else {
            return Ok(());
        };
        let label = self.pending.request.label();
        if body.re.sender != self.keys.uid() || body.re.label != label {
            return Err(WalletError::ReMismatch);
        }
        Err(WalletError::NotVerified {
            label,
            code: body.code,
            message: body.message,
        })
    }

    /// An `Error` body verified, checked: [`WalletError::NotVerified`] when it names the
    /// request with an empty digest (the node could not verify the request, protocol.md
    /// section 3: no refusal of it, only "repeat"), else its `re` must name the request.
    fn error(&self, verified: Verified<ErrorBody>) -> Result<Verified<ErrorBody>, WalletError> {
        let (body, label) = (&verified.body, self.pending.request.label());
        if body.re.sender == self.keys.uid() && body.re.label == label && body.re.digest.is_empty()
        {
            return Err(WalletError::NotVerified {
                label,
                code: body.code,
                message: body.message.clone(),
            });
        }
        self.check_re(&body.re)?;
        Ok(verified)
    }

    /// An `Error` reply (protocol.md section 3): verified under the replier's key (in the
    /// clear or sealed to the wallet), its `re` checked; becomes a `RequestRefused` event
    /// and the typed [`WalletError::Refused`] the caller gets once it is recorded. An
    /// `Error` to a request the node could not verify is [`WalletError::NotVerified`] and
    /// records nothing.
    pub fn refusal(&self) -> Result<(NewEvent<WalletEvent>, WalletError), WalletError> {
        self.unsigned_error()?;
        let verified = self.error(self.signed_any::<ErrorBody>()?)?;
        let label = self.pending.request.label();
        let event = self.record(
            WalletEvent::RequestRefused {
                label,
                code: verified.body.code,
                message: verified.body.message.clone(),
            },
            &verified.evidence,
        );
        Ok((event, refused(label, verified.body)))
    }

    /// A new scrip the reply brings (6.1, 6.2, 6.3's change, 6.4, 6.5, 6.8): `(scrip,
    /// cs_hash)` as the producer signed them, checked to be produced by `producer` and
    /// worth `value`, its CustomerSecret (beside it in `opened`) matching `cs_hash`
    /// (protocol.md section 3); kept with that secret sealed under the wallet's own key.
    /// Its expiry is not judged on the wallet's clock: the producer has already spent what
    /// it replaces, so a scrip that arrives expired is kept (and renewed, 6.8) rather than
    /// lost.
    pub fn new_scrip(
        &self,
        opened: &Opened,
        (scrip, cs_hash): (Scrip, Vec<u8>),
        producer: Uid,
        value: Amount,
    ) -> Result<OwnedScrip, WalletError> {
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
        let scrip_id = scrip.id();
        let cs = opened.secret(scrip_id, &cs_hash).map_err(|e| match e {
            WireError::MissingSecret { .. } | WireError::SecretMismatch { .. } => {
                WalletError::SecretMismatch { scrip_id }
            }
            other => WalletError::BadReply(other),
        })?;
        let sealed_cs = SealedSecret::seal(self.keys.public(), &cs_context(scrip_id), cs.expose())?;
        Ok(OwnedScrip {
            scrip,
            cs_hash,
            sealed_cs,
            obtained_in: self.tx(),
        })
    }

    /// The change of a payment (6.2 step 5, 6.3 step 4, 6.5 step 6): a new scrip of
    /// `producer` worth `value` (see [`Incoming::new_scrip`]), absent only when `value` is
    /// zero.
    pub fn change(
        &self,
        opened: &Opened,
        change: Option<ScripWithSecret>,
        producer: Uid,
        value: Amount,
    ) -> Result<Option<OwnedScrip>, WalletError> {
        match change {
            None if value.is_zero() => Ok(None),
            None => Err(WalletError::ValueMismatch {
                expected: value,
                found: Amount::ZERO,
            }),
            Some(c) => self
                .new_scrip(opened, (c.scrip, c.cs_hash), producer, value)
                .map(Some),
        }
    }

    /// The event that records the outcome, with the verified body that brought it as its
    /// evidence (protocol.md section 8).
    #[must_use]
    pub fn record(&self, kind: WalletEvent, evidence: &SignedEvidence) -> NewEvent<WalletEvent> {
        self.record_all(kind, vec![Evidence::from(evidence)])
    }

    /// The event that records the outcome, with `evidence`.
    #[must_use]
    pub fn record_all(&self, kind: WalletEvent, evidence: Vec<Evidence>) -> NewEvent<WalletEvent> {
        NewEvent::new(self.now.to_millis(), self.tx(), kind).with_evidence(evidence)
    }
}

/// The typed refusal of the request `label` by `body`.
fn refused(label: Label, body: ErrorBody) -> WalletError {
    WalletError::Refused {
        label,
        error_code: body.error_code(),
        code: body.code,
        message: body.message,
    }
}

/// The answer to a read-only query the wallet did not save (`TransactionStatus`, section 7;
/// `CatalogueRequest`, docs/adr/0009): in the wallet's suite, of the query's tx, an
/// accepted reply label, from the node asked, signed in the clear by it and its `re`
/// naming the query. A signed `Error` is [`WalletError::Refused`]. Records nothing.
pub fn read_answer<B: Reply>(
    state: &WalletState,
    keys: &KeyPair,
    query: &SavedRequest,
    frame: &Frame,
) -> Result<Verified<B>, WalletError> {
    let header = &frame.header;
    check_suite(state, header)?;
    if header.tx != query.tx() {
        return Err(WalletError::NoPendingRequest { tx: header.tx });
    }
    if !query.label().accepts_reply(header.label) {
        return Err(WalletError::UnexpectedLabel {
            request: query.label(),
            reply: header.label,
        });
    }
    let pending = Pending::new(query.clone(), shared::UnixMillis::EPOCH);
    let answer = Incoming {
        state,
        pending: &pending,
        frame,
        keys,
        now: UnixSecs::EPOCH,
    };
    answer.check_sender(query.to)?;
    if header.label == Label::Error {
        answer.unsigned_error()?;
        let verified = answer.error(answer.signed_clear::<ErrorBody>()?)?;
        return Err(refused(query.label(), verified.body));
    }
    answer.clear::<B>()
}

/// The sealing context of a scrip's CustomerSecret in the wallet.
#[must_use]
pub fn cs_context(scrip_id: ScripId) -> Vec<u8> {
    let mut ctx = b"cs".to_vec();
    ctx.extend_from_slice(scrip_id.as_bytes());
    ctx
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
