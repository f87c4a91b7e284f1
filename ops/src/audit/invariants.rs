//! The named invariants of protocol.md sections 4–7 that every node's audit shares, each a
//! [`Check`] of its own so that a finding says which rule an event broke:
//! - [`ScripIds`]: `ScripIssuedOnce` (section 4: every scrip gets a new scrip id; an id is
//!   never issued twice, not even after it was spent) and `SpentOnce` (section 4: "a
//!   removed id never validates again, so a scrip is spent at most once");
//! - [`unexpired`]: part of `LiveSpend` (section 4: an expired scrip is refused everywhere
//!   but renewal);
//! - [`Deadlines`]: `Deadline` (section 7: every multi-party transaction has a deadline; at
//!   the log's last event, each is closed or still within it);
//! - [`stored_replies`]: `StoredReply` (section 7: a reply is stored with the request it
//!   answers, once, in that request's tx, to its sender, with a label that answers it);
//! - [`legal_move`]: `Transition` (section 7: a three-party transaction is a state
//!   machine); the rule is the node's own transition function, the auditor has none of its
//!   own.
//!
//! `LiveSpend` against the live table and `Change` are the node's own (their records
//! differ), in `broker`, `merchant` and `wallet`.

use std::collections::{BTreeMap, BTreeSet};

use customer_cli::cli::output::relative;
use shared::machine::TransitionError;
use shared::node::{ReplyKey, SentFrame};
use shared::wire::{Frame, LabelKind};
use shared::{ScripBody, ScripId, TxId, UnixMillis, UnixSecs};

use super::Check;
use super::walk::{Failure, Named};

/// Every scrip id issued and spent so far in the log.
#[derive(Debug, Default)]
pub(super) struct ScripIds {
    issued: BTreeSet<ScripId>,
    spent: BTreeSet<ScripId>,
}

impl ScripIds {
    /// `ScripIssuedOnce`: `id` is issued (or received, at a wallet) for the first time.
    pub fn issue(&mut self, id: ScripId) -> Result<(), Failure> {
        if self.issued.insert(id) {
            Ok(())
        } else {
            Err(Failure::new(
                Check::ScripIssuedOnce,
                format!("scrip {id} issued for the first time"),
                "an id issued before".to_owned(),
            ))
        }
    }

    /// `SpentOnce`: `id` is spent for the first time.
    pub fn spend(&mut self, id: ScripId) -> Result<(), Failure> {
        if self.spent.insert(id) {
            Ok(())
        } else {
            Err(Failure::new(
                Check::SpentOnce,
                format!("scrip {id} spent once"),
                "an id spent before".to_owned(),
            ))
        }
    }
}

/// `LiveSpend`, in part: `body` has not expired at `time` (an event's time). A scrip is
/// valid up to and including its `expires` second (`shared::scrip`).
pub(super) fn unexpired(body: &ScripBody, time: UnixMillis) -> Result<(), Failure> {
    let now = time.to_secs();
    let expires = UnixSecs::new(body.expires);
    if now > expires {
        return Err(Failure::new(
            Check::LiveSpend,
            format!(
                "scrip {} spent unexpired (it expires at {})",
                body.scrip_id,
                expires.utc()
            ),
            format!(
                "spent at {} (the scrip {})",
                now.utc(),
                relative(expires, now)
            ),
        ));
    }
    Ok(())
}

/// The multi-party transactions opened in the log and not yet closed, with their deadline
/// (unix seconds) and the event that opened them.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    open: BTreeMap<TxId, (u64, Named)>,
}

impl Deadlines {
    /// `tx` opened by the event `named`, due by `deadline`.
    pub fn open(&mut self, tx: TxId, deadline: u64, named: &Named) {
        self.open.insert(tx, (deadline, named.clone()));
    }

    /// `tx` closed (its decision recorded).
    pub fn close(&mut self, tx: &TxId) {
        self.open.remove(tx);
    }

    /// `Deadline`, at the log's last event (at `last`): every
    /// transaction still open is within its deadline. A transaction may close after its
    /// deadline (section 7: the broker's stored decision answers a late repeat), so this is
    /// judged only at the end; the finding names the event that opened it.
    pub fn check(&self, last: UnixMillis) -> Result<(), (Named, Failure)> {
        let now = last.to_secs();
        match self
            .open
            .values()
            .find(|(deadline, _)| now.get() > *deadline)
        {
            Some((deadline, named)) => Err((
                named.clone(),
                Failure::new(
                    Check::Deadline,
                    format!(
                        "tx {} closed, or open within its deadline {}",
                        named.tx,
                        UnixSecs::new(*deadline).utc()
                    ),
                    format!(
                        "still open at the log's last event, {} (the deadline {})",
                        now.utc(),
                        relative(UnixSecs::new(*deadline), now)
                    ),
                ),
            )),
            None => Ok(()),
        }
    }
}

/// `StoredReply`: every frame an event stores as a reply (`SentFrame::answers`) answers a
/// request of the event's tx, goes back to that request's sender, is a frame of that tx
/// with a label that answers the request (its reply or `Error`; for a broker's delivery,
/// the node's own request, 6.5 step 3), and is the only reply ever stored to it.
/// `stored_before` says whether a reply to a key is already stored.
pub(super) fn stored_replies(
    tx: TxId,
    sent: &[SentFrame],
    stored_before: impl Fn(&ReplyKey) -> bool,
) -> Result<(), Failure> {
    let mut keys = BTreeSet::new();
    for s in sent {
        let Some(answered) = &s.answers else {
            continue;
        };
        let key = answered.key;
        let fail =
            |expected: String, found: String| Failure::new(Check::StoredReply, expected, found);
        if key.tx != tx {
            return Err(fail(
                format!("a reply to a request of tx {tx}"),
                format!("a reply to {} of tx {}", key.label, key.tx),
            ));
        }
        if s.to != key.sender {
            return Err(fail(
                format!(
                    "the reply to {} sent to its sender {}",
                    key.label, key.sender
                ),
                format!("sent to {}", s.to),
            ));
        }
        let header = Frame::decode(&s.frame).map(|f| f.header).map_err(|e| {
            fail(
                format!("the stored reply to {} as a frame", key.label),
                e.to_string(),
            )
        })?;
        let answers = match key.label.kind() {
            LabelKind::Request { .. } => key.label.accepts_reply(header.label),
            LabelKind::Delivery => matches!(header.label.kind(), LabelKind::Request { .. }),
            LabelKind::Reply => false,
        };
        if header.tx != tx || !answers {
            return Err(fail(
                format!("a frame of tx {tx} answering {}", key.label),
                format!("{} of tx {}", header.label, header.tx),
            ));
        }
        if stored_before(&key) || !keys.insert(key) {
            return Err(fail(
                format!("one stored reply to {} of {}", key.label, key.sender),
                "a second reply to the same request".to_owned(),
            ));
        }
    }
    Ok(())
}

/// `Transition`: the node's own transition function (`State::transition` of its core)
/// found the event to be a legal move of its three-party transaction.
pub(super) fn legal_move<T>(checked: Result<T, TransitionError>) -> Result<T, Failure> {
    checked.map_err(|e| {
        Failure::new(
            Check::Transition,
            format!("a move the {} may make", e.machine),
            format!(
                "{} after {}",
                e.step,
                e.from.unwrap_or("nothing (the tx had not begun)")
            ),
        )
    })
}
