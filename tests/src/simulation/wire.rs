//! The simulated wire: frames put in flight (lost, duplicated, held back as the delivery
//! mode says), delivered to their node, and what the node answers sent on; a node that
//! cannot commit answers the unsigned `Error { Unavailable }` (protocol.md section 10),
//! which its requester takes as "repeat later".

use customer_cli::core::SavedRequest;
use merchant::node::ReplyOutcome;
use rand::RngExt;
use shared::node::{Handled, Unavailable};
use shared::wire::Label;
use shared::{TxId, Uid};

use super::{
    Delivery, Envelope, FirstHandling, Kind, Node, Sim, Step, When, label_of, net, reply_outcome,
};

impl Sim {
    /// The UID of `node`.
    pub(super) fn uid_of(&self, node: Node) -> Result<Uid, String> {
        match node {
            Node::Broker => Ok(self.network.broker_uid()),
            Node::Merchant(i) => self.merchant_uids.get(i).copied().ok_or(i),
            Node::Wallet(j) => self.wallet_uids.get(j).copied().ok_or(j),
        }
        .map_err(|_| format!("{node:?} is no party"))
    }

    pub(super) fn node_of(&self, uid: Uid) -> Result<Node, String> {
        if uid == self.network.broker_uid() {
            return Ok(Node::Broker);
        }
        if let Some(i) = self.merchant_uids.iter().position(|m| *m == uid) {
            return Ok(Node::Merchant(i));
        }
        if let Some(j) = self.wallet_uids.iter().position(|w| *w == uid) {
            return Ok(Node::Wallet(j));
        }
        Err(format!("a frame for {uid}, who is no party"))
    }

    /// Sends a request of `from` to `to` (not a status query).
    pub(super) fn request(&mut self, from: Node, to: Node, frame: Vec<u8>) {
        self.send(to, Kind::Request { from, status: None }, frame);
    }

    /// Puts a frame on the wire: as the delivery mode says, it is queued, lost, or queued
    /// with a copy held back for later.
    pub(super) fn send(&mut self, to: Node, kind: Kind, frame: Vec<u8>) {
        self.next_id += 1;
        let envelope = Envelope {
            id: self.next_id,
            to,
            kind,
            frame,
        };
        match self.delivery() {
            Delivery::Once | Delivery::RestartEach => self.queue.push_back(envelope),
            Delivery::Twice => {
                if !matches!(envelope.kind, Kind::Reply { .. }) {
                    self.counters.duplicated += 1;
                    self.held.push(envelope.clone());
                }
                self.queue.push_back(envelope);
            }
            Delivery::Faulty(faults) => {
                if self.per_mille(faults.drop) {
                    self.counters.dropped += 1;
                    self.note(format!("lost {} to {to:?}", label_of(&envelope.frame)));
                    return;
                }
                if self.per_mille(faults.duplicate) {
                    self.counters.duplicated += 1;
                    self.held.push(envelope.clone());
                }
                self.queue.push_back(envelope);
            }
        }
    }

    /// Delivers one frame: the oldest, or (reordering) a random one of the queue, or a
    /// copy held back.
    pub(super) fn deliver_next(&mut self) -> Step {
        let from_held =
            !self.held.is_empty() && (self.queue.is_empty() || self.rng.random_range(0..4) == 0);
        let envelope = if from_held {
            let i = self.rng.random_range(0..self.held.len());
            self.held.swap_remove(i)
        } else {
            let reorder = match self.faults() {
                Some(f) if self.queue.len() > 1 => self.per_mille(f.reorder),
                _ => false,
            };
            let i = if reorder {
                self.rng.random_range(0..self.queue.len())
            } else {
                0
            };
            match self.queue.remove(i) {
                Some(e) => e,
                None => return Ok(()),
            }
        };
        self.deliver(envelope)
    }

    /// Delivers every frame in flight, oldest first, with no fault (the quiet phase).
    pub(super) fn drain(&mut self) -> Step {
        let mut budget = 10_000;
        while let Some(envelope) = self.queue.pop_front().or_else(|| self.held.pop()) {
            budget -= 1;
            if budget == 0 {
                return Err("the quiet phase does not drain".into());
            }
            self.deliver(envelope)?;
        }
        Ok(())
    }

    pub(super) fn log_len(&self, node: Node) -> Result<u64, String> {
        let len = match node {
            Node::Broker => self.network.broker().map_err(net)?.log().len(),
            Node::Merchant(i) => self.network.merchant(i).map_err(net)?.log().len(),
            Node::Wallet(j) => self.network.wallet(j).map_err(net)?.log().len(),
        };
        len.map_err(|e| format!("{node:?}'s log: {e}"))
    }

    /// Hands `envelope` to its node and sends what the node answers.
    pub(super) fn deliver(&mut self, envelope: Envelope) -> Step {
        self.counters.delivered += 1;
        let label = label_of(&envelope.frame);
        self.note(format!("deliver {label} to {:?}", envelope.to));
        let twice = self.scenario.delivery == Delivery::Twice
            && !matches!(envelope.kind, Kind::Reply { .. });
        // Only Twice compares logs; a node down after a failed commit (never in Twice)
        // cannot even be read.
        let before = if twice { self.log_len(envelope.to)? } else { 0 };
        let reply = self.handle(&envelope)?;
        if twice {
            let appended = self.log_len(envelope.to)? != before;
            match self.first.get(&envelope.id) {
                None => {
                    self.first
                        .insert(envelope.id, FirstHandling { appended, reply });
                }
                Some(first) => {
                    self.counters.repeats_checked += 1;
                    if appended {
                        return Err(format!(
                            "a repeated {label} appended events at {:?}",
                            envelope.to
                        ));
                    }
                    if first.appended && first.reply.is_some() {
                        self.counters.replies_compared += 1;
                        if first.reply != reply {
                            return Err(format!(
                                "a repeated {label} at {:?} got another reply than the first",
                                envelope.to
                            ));
                        }
                    }
                }
            }
        }
        if self.delivery() == Delivery::RestartEach {
            self.restart(envelope.to)?;
        }
        Ok(())
    }

    /// The reply to `envelope` (a request) from `from`.
    pub(super) fn reply_kind(from: Node, envelope: &Envelope) -> Kind {
        let status = match &envelope.kind {
            Kind::Request { status, .. } => status.clone(),
            Kind::Reply { .. } | Kind::Delivery => None,
        };
        let re = shared::wire::Frame::header_of(&envelope.frame).map_or(Label::Error, |h| h.label);
        Kind::Reply { from, re, status }
    }

    /// A node could not commit (section 10): its unsigned `Error { Unavailable }`, if the
    /// frame had a header to answer under, goes back to the requester, who repeats later;
    /// it is no decision. An answer to a delivery goes nowhere (a delivery has no reply
    /// subject; its sender re-sends on its timer).
    pub(super) fn unavailable(&mut self, at: Node, envelope: &Envelope, down: Unavailable) {
        self.note(format!("{at:?} cannot commit: {}", down.reason));
        if let (Kind::Request { from, .. }, Some(reply)) = (&envelope.kind, down.reply) {
            let kind = Sim::reply_kind(at, envelope);
            self.send(*from, kind, reply);
        }
    }

    /// Puts what node `me` produced for `envelope` on the wire: its own requests (the
    /// merchant's to the broker) as requests, deliveries to peers, the reply back to the
    /// requester (a delivery has no reply subject: an answer to one goes nowhere). Returns
    /// the reply.
    fn put_out(
        &mut self,
        me: Node,
        envelope: &Envelope,
        handled: Handled,
    ) -> Result<Option<Vec<u8>>, String> {
        for r in handled.requests {
            let to = self.node_of(r.to)?;
            self.request(me, to, r.frame);
        }
        for d in handled.deliveries {
            let to = self.node_of(d.to)?;
            self.send(to, Kind::Delivery, d.frame);
        }
        let reply = handled.reply.map(|r| r.frame);
        if let (Kind::Request { from, .. }, Some(frame)) = (&envelope.kind, &reply) {
            let kind = Sim::reply_kind(me, envelope);
            self.send(*from, kind, frame.clone());
        }
        Ok(reply)
    }

    /// What `envelope`'s node does with it; returns the reply it sent (if any).
    pub(super) fn handle(&mut self, envelope: &Envelope) -> Result<Option<Vec<u8>>, String> {
        let now = self.now;
        if let Kind::Reply { from, re, status } = &envelope.kind
            && let Some(tx) = self.unavailable_tx(*from, &envelope.frame)?
        {
            self.repeat_later(envelope.to, *from, (tx, *re), status.as_deref())?;
            return Ok(None);
        }
        match (envelope.to, &envelope.kind) {
            (Node::Broker, Kind::Request { .. }) => {
                let handled = match self
                    .network
                    .broker_mut()
                    .map_err(net)?
                    .handle(&envelope.frame, now)
                {
                    Ok(handled) => handled,
                    Err(broker::node::NodeError::Unavailable(down)) => {
                        self.unavailable(Node::Broker, envelope, down);
                        return Ok(None);
                    }
                    Err(e) => return Err(format!("the broker failed: {e}")),
                };
                self.put_out(Node::Broker, envelope, handled)
            }
            (Node::Merchant(i), Kind::Request { .. } | Kind::Delivery) => {
                let me = Node::Merchant(i);
                let handled = match self
                    .network
                    .merchant_mut(i)
                    .map_err(net)?
                    .handle(&envelope.frame, now)
                {
                    Ok(handled) => handled,
                    Err(merchant::node::NodeError::Unavailable(down)) => {
                        self.unavailable(me, envelope, down);
                        return Ok(None);
                    }
                    Err(e) => return Err(format!("merchant {i} failed: {e}")),
                };
                if let Some(refusal) = &handled.refusal {
                    self.note(format!("merchant {i} refuses: {refusal:?}"));
                }
                self.put_out(me, envelope, handled)
            }
            (Node::Merchant(i), Kind::Reply { .. }) => {
                let outcome = match self
                    .network
                    .merchant_mut(i)
                    .map_err(net)?
                    .handle_reply(&envelope.frame, now)
                {
                    Ok(outcome) => outcome,
                    // Down, it cannot record the broker's answer: lost, as if the frame
                    // had been; its reporter asks again and the broker repeats its
                    // stored reply (section 7).
                    Err(merchant::node::NodeError::Unavailable(down)) => {
                        self.note(format!(
                            "merchant {i} is down, the broker's answer is lost: {}",
                            down.reason
                        ));
                        return Ok(None);
                    }
                    Err(e) => return Err(format!("merchant {i} failed on a reply: {e}")),
                };
                self.note(format!("merchant {i}: {}", reply_outcome(&outcome)));
                if let ReplyOutcome::Decided(frames) = outcome {
                    for out in frames {
                        let to = self.node_of(out.to)?;
                        self.send(to, Kind::Delivery, out.frame);
                    }
                }
                Ok(None)
            }
            (
                Node::Wallet(j),
                Kind::Reply {
                    status: Some(query),
                    ..
                },
            ) => {
                let wallet = self.network.wallet_mut(j).map_err(net)?;
                match wallet.handle_status(query, &envelope.frame, now) {
                    Ok(results) => {
                        for r in results {
                            match r {
                                Ok(entry) => self.note(format!("wallet {j}: {:?}", entry.what)),
                                Err(e) => self.declined(j, &e)?,
                            }
                        }
                    }
                    Err(e) => self.declined(j, &e)?,
                }
                self.kick(j)?;
                Ok(None)
            }
            (Node::Wallet(j), Kind::Reply { status: None, .. } | Kind::Delivery) => {
                let wallet = self.network.wallet_mut(j).map_err(net)?;
                match wallet.handle_reply(&envelope.frame, now) {
                    Ok(entry) => self.note(format!("wallet {j}: {:?}", entry.what)),
                    Err(e) => self.declined(j, &e)?,
                }
                self.kick(j)?;
                Ok(None)
            }
            (to, kind) => Err(format!("nobody handles {kind:?} at {to:?}")),
        }
    }

    /// The tx of `frame` if it is `from`'s unsigned `Error { Unavailable }` (section 10),
    /// as the wallet's client and the merchant's reporter tell it
    /// (`shared::node::is_unavailable`).
    pub(super) fn unavailable_tx(&self, from: Node, frame: &[u8]) -> Result<Option<TxId>, String> {
        let uid = self.uid_of(from)?;
        Ok(shared::wire::Frame::header_of(frame)
            .ok()
            .map(|h| h.tx)
            .filter(|tx| shared::node::is_unavailable(frame, uid, *tx)))
    }

    /// `requester`'s request `re` of the tx of an `Unavailable` answer from `node` is
    /// repeated later (section 10: the client's pause, the reporter's backoff), held back
    /// and delivered at a random later step, like a duplicate. A wallet's client follows
    /// the request's next steps as they are then (`Pending::next_steps`; for a status query,
    /// those of every pending request of the tx): its saved bodies again, or a status
    /// query where they can no longer be rendered (6.2 once B0 is settled), as the next
    /// command's resumption would. A merchant's reporter sends its stored frame again
    /// (byte for byte, section 7) if the request still awaits its answer.
    fn repeat_later(
        &mut self,
        requester: Node,
        node: Node,
        (tx, re): (TxId, Label),
        status: Option<&SavedRequest>,
    ) -> Step {
        self.counters.unavailable += 1;
        self.note(format!(
            "{requester:?}: {node:?} is unavailable, {re} of {tx} repeated later"
        ));
        match requester {
            Node::Wallet(j) => {
                let query = status.is_some();
                self.wallet_follow(j, |t, l| t == tx && (query || l == re), When::Later)
            }
            Node::Merchant(i) => {
                // None while the merchant is itself down (its timers send them again).
                let merchant = self.network.merchant(i).map_err(net)?;
                let mut owed = merchant.pending_reports();
                owed.extend(merchant.pending_broker_requests());
                let again = owed.into_iter().find(|out| {
                    shared::wire::Frame::header_of(&out.frame)
                        .is_ok_and(|h| h.tx == tx && h.label == re)
                });
                if let Some(out) = again {
                    let kind = Kind::Request {
                        from: requester,
                        status: None,
                    };
                    self.dispatch(node, kind, out.frame, When::Later);
                }
                Ok(())
            }
            Node::Broker => Ok(()),
        }
    }

    /// Puts a frame on the wire now ([`Sim::send`]), or holds it back for a random later
    /// step.
    pub(super) fn dispatch(&mut self, to: Node, kind: Kind, frame: Vec<u8>, when: When) {
        match when {
            When::Now => self.send(to, kind, frame),
            When::Later => {
                self.next_id += 1;
                self.held.push(Envelope {
                    id: self.next_id,
                    to,
                    kind,
                    frame,
                });
            }
        }
    }
}
