//! A core's outputs: [`Draft`] (typed, unsigned, what `decide` returns), [`SentFrame`] (the
//! signed and sealed frame it becomes) and [`Recorded`] (the event kind envelope that stores
//! the frames with the event that produced them).
//!
//! Why frames are stored in the log: the stored replies and the outbox are projections that
//! replay must rebuild (protocol.md sections 7 and 8), and a repeated request must get the
//! same bytes as the first answer. Re-sealing draws a fresh session key, so only the bytes
//! as sent can be returned; they live in the event. A sealed frame holds its CustomerSecret
//! only encrypted to the recipient's public key: the node that stored it cannot read it
//! back, so the log holds no secret it could leak (section 8).

use serde::{Deserialize, Serialize};

use crate::events::{Evidence, NewEvent};
use crate::ids::{AccountId, ScripId, TxId, Uid};
use crate::scrip::CustomerSecret;
use crate::suite::{KeyPair, PublicKey, Suite};
use crate::wire::{
    Body, Frame, Header, Inner, Part, Reply, SignedEvidence, WireError, id_proof, seal,
    secret_inner, sign_bytes,
};

use super::{Outbox, Replies, ReplyKey, StoredReply};

/// Which request a reply answers: its key and digest, stored with the frame (section 7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    /// (sender, tx, label) of the request.
    pub key: ReplyKey,
    /// The request digest.
    pub digest: Vec<u8>,
}

/// An output of `decide` before signing: a typed body (kept as its postcard bytes, its
/// label fixed by the constructor), its recipient, whether it is sealed, the
/// CustomerSecrets to seal with it, and parts relayed unchanged after it.
///
/// Build one with [`Draft::reply`] (the answer to a request) or [`Draft::delivery`] (a
/// one-way message), then [`Draft::sealed_with`] and [`Draft::forwarding`] as section 6
/// says. Signing and sealing is [`Draft::seal`]: the CPU-heavy step, outside `decide`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// Who receives it.
    pub to: Uid,
    /// The outgoing header (sender: this node).
    pub header: Header,
    /// The body, postcard, of a [`Body`] whose label is `header.label`.
    pub body: Vec<u8>,
    /// Sealed to `to` (with the body signed inside), or signed in the clear.
    pub sealed: bool,
    /// `Inner::Secret`s sealed with the body (only if `sealed`).
    pub secrets: Vec<(ScripId, CustomerSecret)>,
    /// Parts relayed unchanged after the node's own (e.g. 6.5 step 2).
    pub forwarded: Vec<Part>,
    /// The sender's account `ID`, when the sealed part carries an `IdProof` bound to this
    /// header (a merchant's relay to the broker, 6.2 step 3 and 6.7 step 2). Never stored:
    /// the proof is computed at sealing time and only the signature leaves.
    pub id_proof: Option<AccountId>,
    /// For a reply: the request it answers, so it is stored for repeats.
    pub answers: Option<Answered>,
    /// Sent as an unsigned [`Part::Clear`] (the broker's `Ack` in 6.3 only, ADR 0008).
    pub unsigned: bool,
}

impl Draft {
    /// The reply of `me` to the request with `request` header and `digest`, signed in the
    /// clear; the body's label is the reply's.
    #[must_use]
    pub fn reply<B: Reply>(me: Uid, request: &Header, digest: &[u8], body: &B) -> Draft {
        Draft {
            to: request.sender,
            header: request.next(B::LABEL, me),
            body: body.to_bytes(),
            sealed: false,
            secrets: Vec::new(),
            forwarded: Vec::new(),
            id_proof: None,
            unsigned: false,
            answers: Some(Answered {
                key: ReplyKey::of(request),
                digest: digest.to_vec(),
            }),
        }
    }

    /// A one-way message of `me` to `to` in `tx`, signed in the clear.
    #[must_use]
    pub fn delivery<B: Body>(suite: Suite, tx: TxId, me: Uid, to: Uid, body: &B) -> Draft {
        Draft {
            to,
            header: Header::new(suite, B::LABEL, tx, me),
            body: body.to_bytes(),
            sealed: false,
            secrets: Vec::new(),
            forwarded: Vec::new(),
            id_proof: None,
            answers: None,
            unsigned: false,
        }
    }

    /// Sent with no signature, as a [`Part::Clear`]: only for the broker's `Ack` to 6.3
    /// steps 1 and 5, so that a purchase costs the broker no private-key operation
    /// (protocol.md 6.3; ADR 0008). A sealed draft is always signed: [`Draft::seal`]
    /// refuses the combination.
    #[must_use]
    pub fn unsigned(mut self) -> Draft {
        self.unsigned = true;
        self
    }

    /// Sealed to the recipient, with these CustomerSecrets beside the signed body.
    #[must_use]
    pub fn sealed_with(mut self, secrets: Vec<(ScripId, CustomerSecret)>) -> Draft {
        self.sealed = true;
        self.secrets = secrets;
        self
    }

    /// With these parts relayed unchanged after the node's own.
    #[must_use]
    pub fn forwarding(mut self, parts: Vec<Part>) -> Draft {
        self.forwarded = parts;
        self
    }

    /// Sealed, with an `IdProof` of `id` (the sender's account ID) beside the signed body
    /// (protocol.md section 3: `SignOnly_K(ID)` bound to this tx and label).
    #[must_use]
    pub fn proving(mut self, id: AccountId) -> Draft {
        self.sealed = true;
        self.id_proof = Some(id);
        self
    }

    /// The frame of an [`unsigned`](Draft::unsigned) draft: its body in one
    /// [`Part::Clear`], no key needed. Refuses a draft that is not unsigned, sealed or
    /// relaying parts.
    pub fn seal_unsigned(&self) -> Result<SentFrame, DraftError> {
        if !self.unsigned || self.sealed || !self.forwarded.is_empty() {
            return Err(DraftError::UnsignedSealed);
        }
        let frame = Frame::new(
            self.header,
            vec![Part::Clear {
                body: self.body.clone(),
            }],
        )
        .encode()?;
        Ok(SentFrame {
            to: self.to,
            answers: self.answers.clone(),
            frame,
        })
    }

    /// Signs the body with `me` (whose UID must be the header's sender) and, if sealed,
    /// seals it to `recipient` (whose UID must be `to`), then encodes the frame.
    pub fn seal(
        &self,
        me: &KeyPair,
        recipient: Option<&PublicKey>,
    ) -> Result<SentFrame, DraftError> {
        if self.unsigned {
            return self.seal_unsigned();
        }
        let signed = sign_bytes(me, &self.header, self.body.clone())?;
        let own: Part = if self.sealed {
            let key = recipient
                .filter(|k| k.uid() == self.to)
                .ok_or(DraftError::NoRecipientKey(self.to))?;
            let mut inners: Vec<Inner> = Vec::with_capacity(2 + self.secrets.len());
            if let Some(id) = &self.id_proof {
                inners.push(id_proof(me, &self.header, id)?);
            }
            inners.push(signed.into());
            inners.extend(self.secrets.iter().map(|(id, cs)| secret_inner(*id, cs)));
            seal(&self.header, key, &inners)?
        } else {
            signed.into()
        };
        let mut parts = vec![own];
        parts.extend(self.forwarded.iter().cloned());
        let frame = Frame::new(self.header, parts).encode()?;
        Ok(SentFrame {
            to: self.to,
            answers: self.answers.clone(),
            frame,
        })
    }
}

/// Why a [`Draft`] could not become a frame: a local failure (the request changed nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    /// Signing, sealing or encoding failed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A sealed draft for a recipient whose key was not given.
    #[error("no public key for recipient {0}")]
    NoRecipientKey(Uid),
    /// An unsigned draft that is also sealed or relays parts (only a bare `Ack` or `Error`
    /// goes unsigned, ADR 0008 and protocol.md section 3), or a signed draft given to
    /// [`Draft::seal_unsigned`].
    #[error("only an unsigned draft that is neither sealed nor relaying parts goes unsigned")]
    UnsignedSealed,
}

/// A frame as sent and stored (section 7): its recipient, the request it answers if it is a
/// reply, and its encoded bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentFrame {
    /// The recipient.
    pub to: Uid,
    /// `Some` for a reply: stored in [`Replies`] for repeats.
    pub answers: Option<Answered>,
    /// The encoded frame.
    pub frame: Vec<u8>,
}

/// The kind of a node's stored events: the node's own kind `K` and the frames sent with it
/// (usually only on the last event of a decision; empty otherwise).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded<K> {
    /// What happened, in the node's terms.
    pub kind: K,
    /// The frames this event's decision sent.
    pub sent: Vec<SentFrame>,
}

impl<K> Recorded<K> {
    /// The events of one decision, each frame attached to the last event of its own tx
    /// (the frame's header names it): the outbox and the stored replies are kept per tx
    /// (section 7), so a decision over several txs (the merchant's lapse of several scrip
    /// in one timer run, each under its own tx) must store each frame under the tx it
    /// belongs to. A frame of a tx no event names goes with the last event. A decision
    /// that appends no event stores no frame (it changed nothing, e.g. a refusal or a
    /// read-only query): its frames are sent but not kept.
    #[must_use]
    pub fn attach(events: Vec<NewEvent<K>>, sent: Vec<SentFrame>) -> Vec<NewEvent<Recorded<K>>> {
        let last = events.len().saturating_sub(1);
        let mut attached: Vec<Vec<SentFrame>> = events.iter().map(|_| Vec::new()).collect();
        for frame in sent {
            let owner = Frame::header_of(&frame.frame)
                .ok()
                .and_then(|header| events.iter().rposition(|e| e.tx == header.tx))
                .unwrap_or(last);
            if let Some(slot) = attached.get_mut(owner) {
                slot.push(frame);
            }
        }
        events
            .into_iter()
            .zip(attached)
            .map(|(e, sent)| NewEvent {
                time: e.time,
                tx: e.tx,
                postings: e.postings,
                memos: e.memos,
                evidence: e.evidence,
                kind: Recorded { kind: e.kind, sent },
            })
            .collect()
    }
}

/// Folds the frames an event sent into the stored replies and the outbox: what every
/// node's `apply` calls for [`Recorded::sent`].
pub fn record_sent(replies: &mut Replies, outbox: &mut Outbox, tx: TxId, sent: &[SentFrame]) {
    for s in sent {
        outbox.push(tx, s.to, s.frame.clone());
        if let Some(answered) = &s.answers {
            replies.store(
                answered.key,
                StoredReply {
                    digest: answered.digest.clone(),
                    frame: s.frame.clone(),
                },
            );
        }
    }
}

impl From<&SignedEvidence> for Evidence {
    /// A verified signed part as an event keeps it (section 8): the exact `HeaderBytes` it
    /// was signed under (the origin's, if forwarded), body, signature and signer.
    fn from(e: &SignedEvidence) -> Evidence {
        Evidence {
            header: e.header.to_bytes().as_bytes().to_vec(),
            body: e.body.clone(),
            sig: e.sig.clone(),
            signer: e.signer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Amount;
    use crate::fixtures;
    use crate::ids::Nonce;
    use crate::scrip::Mint;
    use crate::wire::Label;
    use crate::wire::bodies::{BrokerScripResponseX1, ErrorBody, Re};

    #[test]
    fn a_sealed_reply_opens_at_its_recipient_with_its_secret() {
        let suite = Suite::Modern;
        let (b, c) = (fixtures::keypair(suite, 1), fixtures::keypair(suite, 0));
        let request = Header::new(suite, Label::BrokerScripRequest, TxId([4; 16]), c.uid());
        let mint = Mint::new(suite, b.uid(), fixtures::root_key(1));
        let (scrip, cs) = mint.issue(Amount::from_minor(100), 2_000_000_000);
        let body = BrokerScripResponseX1 {
            re: Re::new(&request, b"digest".to_vec()),
            scrip: scrip.clone(),
            cs_hash: cs.cs_hash(suite),
            nonce: Nonce([1; 16]),
        };
        let draft = Draft::reply(b.uid(), &request, b"digest", &body)
            .sealed_with(vec![(scrip.id(), cs.clone())]);
        assert_eq!(draft.to, c.uid());
        assert_eq!(draft.header.label, Label::BrokerScripResponse);
        assert_eq!(
            draft.seal(b, None),
            Err(DraftError::NoRecipientKey(c.uid()))
        );
        assert_eq!(
            draft.seal(b, Some(b.public())),
            Err(DraftError::NoRecipientKey(c.uid())),
            "a key of someone else is refused"
        );
        let sent = draft.seal(b, Some(c.public())).unwrap();
        let frame = Frame::decode(&sent.frame).unwrap();
        let opened = frame.part(0).unwrap().open_sealed(c).unwrap();
        let v = opened.signed::<BrokerScripResponseX1>(b.public()).unwrap();
        assert_eq!(v.body, body);
        assert_eq!(opened.secret(scrip.id(), &v.body.cs_hash).unwrap(), cs);

        let mut replies = Replies::new();
        let mut outbox = Outbox::new();
        record_sent(
            &mut replies,
            &mut outbox,
            request.tx,
            std::slice::from_ref(&sent),
        );
        assert_eq!(
            replies.lookup(&ReplyKey::of(&request), b"digest"),
            super::super::Lookup::Repeat(&StoredReply {
                digest: b"digest".to_vec(),
                frame: sent.frame.clone()
            })
        );
        assert_eq!(outbox.frames(&request.tx, &c.uid()), &[sent.frame]);
    }

    /// A relay's own part (6.2 step 3, 6.7 step 2): the IdProof is bound to the draft's
    /// header and verifies for the sender's ID only; the forwarded part follows unchanged.
    #[test]
    fn a_proving_draft_carries_an_id_proof_bound_to_its_header() {
        use crate::ids::{AccountId, Pan, PanSecret};
        use crate::wire::bodies::ExchangeAuthorizationRequestX3;
        let suite = Suite::Modern;
        let (b, m) = (fixtures::keypair(suite, 1), fixtures::keypair(suite, 2));
        let pan = Pan::new("M-1");
        let id = AccountId::derive(suite, &PanSecret::new("m secret"), &pan);
        let other_id = AccountId::derive(suite, &PanSecret::new("another"), &pan);
        let tx = TxId([9; 16]);
        let origin = Header::new(suite, Label::VendorScripRequest, tx, Uid([3; 16]));
        let relayed = Part::forwarded(
            origin,
            seal(
                &origin,
                b.public(),
                &[secret_inner(
                    ScripId([1; 16]),
                    &CustomerSecret::from_bytes(&[7; 16]),
                )],
            )
            .unwrap(),
        )
        .unwrap();
        let body = ExchangeAuthorizationRequestX3 {
            value: Amount::from_minor(5),
            customer: Uid([3; 16]),
        };
        let draft = Draft::delivery(suite, tx, m.uid(), b.uid(), &body)
            .proving(id.clone())
            .forwarding(vec![relayed.clone()]);
        assert!(draft.sealed);
        let sent = draft.seal(m, Some(b.public())).unwrap();
        let frame = Frame::decode(&sent.frame).unwrap();
        assert_eq!(frame.parts.len(), 2);
        assert_eq!(frame.parts[1], relayed);
        let opened = frame.part(0).unwrap().open_sealed(b).unwrap();
        assert_eq!(
            opened
                .signed::<ExchangeAuthorizationRequestX3>(m.public())
                .unwrap()
                .body,
            body
        );
        opened.verify_id_proof(m.public(), &id).unwrap();
        assert_eq!(
            opened.verify_id_proof(m.public(), &other_id),
            Err(WireError::BadIdProof)
        );
    }

    #[test]
    fn a_clear_reply_needs_no_key_and_events_carry_frames_on_the_last() {
        let suite = Suite::Paper;
        let b = fixtures::keypair(suite, 1);
        let request = Header::new(suite, Label::RenewRequest, TxId([4; 16]), Uid([7; 16]));
        let body = ErrorBody::new(Re::new(&request, Vec::new()), crate::ErrorCode::Spent, "no");
        let sent = Draft::reply(b.uid(), &request, b"", &body)
            .seal(b, None)
            .unwrap();
        let frame = Frame::decode(&sent.frame).unwrap();
        assert_eq!(frame.header.label, Label::Error);
        let v = frame
            .part(0)
            .unwrap()
            .verify_signed::<ErrorBody>(b.public())
            .unwrap();
        assert_eq!(v.body, body);
        assert_eq!(Evidence::from(&v.evidence).signer, b.uid());
        assert_eq!(Evidence::from(&v.evidence).header.len(), 36);

        let events = vec![
            NewEvent::new(crate::UnixMillis::new(1), request.tx, 'a'),
            NewEvent::new(crate::UnixMillis::new(1), request.tx, 'b'),
        ];
        let recorded = Recorded::attach(events, vec![sent.clone()]);
        assert!(recorded[0].kind.sent.is_empty());
        assert_eq!(recorded[1].kind.sent, vec![sent]);
        assert_eq!(recorded[1].kind.kind, 'b');
        assert!(Recorded::<char>::attach(Vec::new(), Vec::new()).is_empty());
    }

    /// A decision over several txs (the merchant's lapse of several scrip at once) stores
    /// each frame under its own tx, where the outbox and a status request look for it.
    #[test]
    fn each_frame_goes_with_the_last_event_of_its_own_tx() {
        let suite = Suite::Modern;
        let m = fixtures::keypair(suite, 2);
        let delivery = |tx: TxId| {
            let body = ErrorBody::new(
                Re::new(
                    &Header::new(suite, Label::RenewRequest, tx, m.uid()),
                    Vec::new(),
                ),
                crate::ErrorCode::Spent,
                "no",
            );
            Draft::delivery(suite, tx, m.uid(), Uid([9; 16]), &body)
                .seal(m, None)
                .unwrap()
        };
        let (x, y, z) = (TxId([1; 16]), TxId([2; 16]), TxId([3; 16]));
        let (to_x, to_y, to_z) = (delivery(x), delivery(y), delivery(z));
        assert_eq!(Frame::header_of(&to_y.frame).unwrap().tx, y);
        let events = vec![
            NewEvent::new(crate::UnixMillis::new(1), x, 'a'),
            NewEvent::new(crate::UnixMillis::new(1), y, 'b'),
            NewEvent::new(crate::UnixMillis::new(1), x, 'c'),
        ];
        let recorded = Recorded::attach(
            events,
            vec![to_x.clone(), to_y.clone(), to_z.clone(), to_x.clone()],
        );
        let sent: Vec<_> = recorded.iter().map(|e| e.kind.sent.clone()).collect();
        assert_eq!(
            sent,
            vec![vec![], vec![to_y], vec![to_x.clone(), to_z, to_x]],
            "x's frames on x's last event, y's on y's, z (no event) on the last"
        );
    }
}
