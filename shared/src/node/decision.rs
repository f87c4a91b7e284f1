//! What a node's decision gives and where each frame goes: [`Decision`] and [`Outcome`]
//! (a core's answer to a request, before signing) and [`Handled`] (the sealed frames, typed
//! by what the bus does with them: the reply, deliveries to peer subjects, and requests of
//! the node's own that want an answer). Plain data, with no I/O: the cores build them and
//! the node driver (docs/adr/0013) seals and routes them.

use crate::events::NewEvent;
use crate::ids::Uid;
use crate::wire::{Frame, LabelKind};

use super::{Draft, Refusal, SentFrame};

/// A frame a node sends: to whom, and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient.
    pub to: Uid,
    /// The encoded frame.
    pub frame: Vec<u8>,
}

impl From<SentFrame> for Outgoing {
    fn from(sent: SentFrame) -> Outgoing {
        Outgoing {
            to: sent.to,
            frame: sent.frame,
        }
    }
}

/// What handling one request frame produced, typed by where each frame goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handled {
    /// The answer on the request's reply subject (an `Error` for a refusal, unsigned for a
    /// frame that did not verify or a quota's, protocol.md section 3); `None`
    /// for a frame too broken to answer (no readable header), for a request whose answer
    /// waits for the broker's decision (6.2 step 3), and for a delivery (6.5 step 2, which
    /// the merchant answers with a request of its own, in `requests`).
    pub reply: Option<Outgoing>,
    /// One-way frames to other parties' peer subjects.
    pub deliveries: Vec<Outgoing>,
    /// Requests of this node that want an answer (the merchant's `PurchaseCompleted` and
    /// its relays to the broker): stored with their events, sent by the node's reporter
    /// until the answer is recorded (section 7).
    pub requests: Vec<Outgoing>,
    /// Why the request was refused, if it was.
    pub refusal: Option<Refusal>,
}

impl Handled {
    /// The reply's bytes; empty when there is none.
    #[must_use]
    pub fn reply_frame(&self) -> &[u8] {
        self.reply.as_ref().map_or(&[], |r| r.frame.as_slice())
    }

    /// `frames` of a decision or a repeat, each put where its label says: the first in the
    /// reply slot if `reply` (it answers the request), then requests by their label kind,
    /// the rest deliveries.
    #[must_use]
    pub fn of(frames: impl IntoIterator<Item = Outgoing>, reply: bool) -> Handled {
        let mut handled = Handled::default();
        let mut frames = frames.into_iter();
        if reply {
            handled.reply = frames.next();
        }
        for out in frames {
            let request = Frame::header_of(&out.frame)
                .is_ok_and(|h| matches!(h.label.kind(), LabelKind::Request { .. }));
            if request {
                handled.requests.push(out);
            } else {
                handled.deliveries.push(out);
            }
        }
        handled
    }

    /// The stored frame of a repeat (section 7), put where its own label says: a reply
    /// goes back to the requester, a request of the node's own (the merchant's answer to a
    /// repeated 6.5 delivery) to its reporter, anything else to the peer subject.
    #[must_use]
    pub fn repeat(to: Uid, frame: Vec<u8>) -> Handled {
        let kind = Frame::header_of(&frame).map(|h| h.label.kind());
        let out = Outgoing { to, frame };
        match kind {
            Ok(LabelKind::Reply) => Handled {
                reply: Some(out),
                ..Handled::default()
            },
            _ => Handled::of([out], false),
        }
    }
}

/// A decision of a core, in the driver's terms: the events to append (empty for a read),
/// the reply (`None` when it is held or the request was a delivery) and the other frames.
#[derive(Debug)]
pub struct Decision<K> {
    /// Appended in one commit with the sealed frames, before anything leaves.
    pub events: Vec<NewEvent<K>>,
    /// The answer to the requester.
    pub reply: Option<Draft>,
    /// The other frames: deliveries, and requests of the node's own.
    pub deliveries: Vec<Draft>,
}

/// What [`Core::decide`] gives for a request that is not refused.
#[derive(Debug)]
pub enum Outcome<K> {
    /// A repeat (same sender, tx, label and digest, section 7): the stored frame, byte for
    /// byte, and no event.
    Repeat(Vec<u8>),
    /// A new request, decided.
    Decided(Box<Decision<K>>),
}
