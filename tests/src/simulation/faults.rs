//! The faults the generator strikes between two steps, and the timers they run: restarts,
//! clock jumps (past the deadlines, every expiry, every renewal grace: protocol.md section
//! 4, "Lapse"), full disks (section 10, "Storage faults"), and the parties' retry timers
//! (section 7).

use std::collections::BTreeSet;

use rand::RngExt;
use shared::TxId;
use shared::wire::Label;

use super::{
    EXPIRY_JUMP_SECS, Faults, JUMP_SECS, Kind, MAX_FULL_STEPS, Node, Sim, Step, label_of, net,
};

impl Sim {
    /// Between two steps: a restart, a full disk, a lapse (the clock past every renewal
    /// grace, with the timers), a clock jump with the broker's timer, an expiry jump, a retry.
    pub(super) fn strike(&mut self, faults: Faults) -> Step {
        if self.per_mille(faults.restart) {
            let nodes = 1 + self.merchant_uids.len() + self.wallet_uids.len();
            let pick = self.rng.random_range(0..nodes);
            let node = self.node_by_index(pick);
            // A process restarted on a full disk cannot open its file (opening writes);
            // its supervisor starts it again once there is space: no restart meanwhile.
            if self.full_disks.contains_key(&node) {
                self.note(format!("no restart of {node:?} on a full disk"));
            } else {
                self.restart(node)?;
            }
        }
        if self.per_mille(faults.disk_full) {
            // The broker or a merchant (the wallets' disks are not faulty here).
            let pick = self.rng.random_range(0..=self.merchant_uids.len());
            let span = self.rng.random_range(1..=MAX_FULL_STEPS);
            self.fill_disk(self.node_by_index(pick), span)?;
        }
        if self.per_mille(faults.lapse) {
            self.lapse_jump()?;
        }
        if self.per_mille(faults.clock_jump) {
            self.jump()?;
        }
        if self.per_mille(faults.expiry) {
            self.counters.clock_jumps += 1;
            self.now = self.now.saturating_add_secs(EXPIRY_JUMP_SECS);
            self.note(format!(
                "clock +{EXPIRY_JUMP_SECS} s past every expiry, broker timer"
            ));
            self.timer()?;
        }
        if self.per_mille(faults.retry) {
            let nodes = 1 + self.merchant_uids.len() + self.wallet_uids.len();
            let pick = self.rng.random_range(0..nodes);
            self.retry(self.node_by_index(pick))?;
        }
        Ok(())
    }

    pub(super) fn node_by_index(&self, pick: usize) -> Node {
        let m = self.merchant_uids.len();
        match pick {
            0 => Node::Broker,
            p if p <= m => Node::Merchant(p - 1),
            p => Node::Wallet(p - 1 - m),
        }
    }

    /// Closes `node`'s file and opens it again; with faults, its client (or shell) then
    /// resumes every tx with no recorded outcome (section 7). Without faults nothing was
    /// lost, so the restarted party just carries on from its file (a resumption after
    /// every message would only feed more restarts).
    pub(super) fn restart(&mut self, node: Node) -> Step {
        let resume = self.faults().is_some();
        self.counters.restarts += 1;
        self.note(format!("restart {node:?}"));
        match node {
            Node::Broker => self.network.reopen_broker().map_err(net),
            Node::Merchant(i) => {
                self.network.reopen_merchant(i).map_err(net)?;
                if resume { self.retry(node) } else { Ok(()) }
            }
            Node::Wallet(j) => {
                self.network.reopen_wallet(j).map_err(net)?;
                // The restarted client resumes every pending request by its next steps
                // (a resend, or a status query where the request cannot be rendered again).
                let pending: BTreeSet<(TxId, Label)> = self
                    .network
                    .wallet(j)
                    .map_err(net)?
                    .pending()
                    .map(|p| (p.request.tx(), p.request.label()))
                    .collect();
                self.clients[j].sent = pending;
                if resume { self.wallet_retry(j) } else { Ok(()) }
            }
        }
    }

    /// `node`'s disk is full from now for `span` steps (section 10, "Storage faults").
    pub(super) fn fill_disk(&mut self, node: Node, span: u64) -> Step {
        if self.full_disks.contains_key(&node) {
            return Ok(());
        }
        self.disk(node)?.fill_disk();
        self.counters.disks_filled += 1;
        self.full_disks.insert(node, self.step + span);
        self.note(format!("{node:?}'s disk is full for {span} steps"));
        Ok(())
    }

    /// Frees every disk whose span ended (`all`: every disk, the quiet phase).
    pub(super) fn free_disks(&mut self, all: bool) -> Step {
        let step = self.step;
        let freed: Vec<Node> = self
            .full_disks
            .iter()
            .filter(|(_, until)| all || **until <= step)
            .map(|(node, _)| *node)
            .collect();
        for node in freed {
            self.full_disks.remove(&node);
            self.disk(node)?.free_space();
            self.note(format!("{node:?}'s disk has space again"));
        }
        Ok(())
    }

    /// The switch of `node`'s disk.
    pub(super) fn disk(&self, node: Node) -> Result<shared::events::faults::Faults, String> {
        match node {
            Node::Broker => self.network.broker_disk(),
            Node::Merchant(i) => self.network.merchant_disk(i),
            Node::Wallet(_) => None,
        }
        .cloned()
        .ok_or_else(|| format!("{node:?} is on no faulty disk"))
    }

    /// Counts the nodes that went down after a failed commit and those that recovered
    /// since the last step.
    pub(super) fn count_down(&mut self) -> Step {
        let mut down = BTreeSet::new();
        if self.network.broker().map_err(net)?.is_down() {
            down.insert(Node::Broker);
        }
        for i in 0..self.merchant_uids.len() {
            if self.network.merchant(i).map_err(net)?.is_down() {
                down.insert(Node::Merchant(i));
            }
        }
        self.counters.went_down += down.difference(&self.down).count() as u64;
        self.counters.recovered += self.down.difference(&down).count() as u64;
        self.down = down;
        Ok(())
    }

    /// The clock moves past every scrip's renewal grace (section 4, "Lapse"), and the
    /// timers run: the broker's (its `expire` lapses every live BrokerScrip), then each
    /// merchant's lapse timer, whose notices its reporter then sends.
    pub(super) fn lapse_jump(&mut self) -> Step {
        self.counters.lapse_jumps += 1;
        let jump = self.lapse_jump_secs()?;
        self.now = self.now.saturating_add_secs(jump);
        self.note(format!("clock +{jump} s past every renewal grace, timers"));
        self.timer()?;
        for i in 0..self.merchant_uids.len() {
            self.lapse_timer(i)?;
        }
        Ok(())
    }

    /// Past the expiry and the renewal grace of any scrip issued until now, at the broker
    /// (`Config::grace_secs`) or a merchant (`merchant::core::Config::renewal_grace_secs`,
    /// `DEFAULT_RENEWAL_GRACE_SECS` in the network kit), and a day more.
    pub(super) fn lapse_jump_secs(&self) -> Result<u64, String> {
        let broker = self.network.broker_config;
        let mut longest = broker.scrip_lifetime_secs + broker.grace_secs;
        for i in 0..self.merchant_uids.len() {
            let config = self.network.merchant(i).map_err(net)?.config();
            longest = longest.max(config.scrip_lifetime_secs + config.renewal_grace_secs);
        }
        Ok(longest + 24 * 3600)
    }

    /// Merchant `i`'s lapse timer (`merchant::shell`): `lapse`, then its reporter sends
    /// every request awaiting the broker, the new notices among them. Down after a failed
    /// commit, the call is its chance to recover (section 10).
    pub(super) fn lapse_timer(&mut self, i: usize) -> Step {
        let now = self.now;
        match self.network.merchant_mut(i).map_err(net)?.lapse(now) {
            Ok(0) => Ok(()),
            Ok(n) => {
                let n = n as u64;
                self.note(format!("merchant {i} lapses {n} VendorScrip"));
                self.counters.vendor_lapsed += n;
                self.counters.most_lapsed_at_once = self.counters.most_lapsed_at_once.max(n);
                self.retry(Node::Merchant(i))
            }
            Err(merchant::node::NodeError::Unavailable(down)) => {
                self.note(format!("merchant {i}'s lapse timer: {}", down.reason));
                Ok(())
            }
            Err(e) => Err(format!("merchant {i}'s lapse: {e}")),
        }
    }

    /// The clock moves past every open window; the broker's timer runs.
    pub(super) fn jump(&mut self) -> Step {
        self.counters.clock_jumps += 1;
        self.now = self.now.saturating_add_secs(JUMP_SECS);
        self.note(format!("clock +{JUMP_SECS} s, broker timer"));
        self.timer()
    }

    /// The broker's timer (broker::shell): `expire`, then every delivery it sealed and
    /// every 6.5 authorization to re-send.
    pub(super) fn timer(&mut self) -> Step {
        let now = self.now;
        let broker = self.network.broker_mut().map_err(net)?;
        let expired = match broker.expire(now) {
            Ok(expired) => expired,
            // Down (or its commit failed): the timer runs again later (section 10).
            Err(broker::node::NodeError::Unavailable(down)) => {
                self.note(format!("the broker's timer: {}", down.reason));
                return Ok(());
            }
            Err(e) => return Err(format!("expire: {e}")),
        };
        let resend = broker.to_resend(now);
        if expired.events > 0 {
            self.note(format!("expire: {} events", expired.events));
        }
        let mut out: Vec<_> = expired.deliveries.into_iter().chain(resend).collect();
        out.sort_by_key(|d| self.order_of_frame(&d.frame));
        for d in out {
            let to = self.node_of(d.to)?;
            self.send(to, Kind::Delivery, d.frame);
        }
        Ok(())
    }

    /// Where `tx` stands in the order the customers started their transactions: tx ids
    /// are random, so every list a node returns in tx order is put in this order before
    /// the generator decides anything about its frames (a seed reproduces its run).
    pub(super) fn order_of(&self, tx: TxId) -> (u64, TxId) {
        (self.tx_order.get(&tx).copied().unwrap_or(u64::MAX), tx)
    }

    /// [`Sim::order_of`] of a frame's tx.
    pub(super) fn order_of_frame(&self, frame: &[u8]) -> (u64, TxId) {
        let tx = shared::wire::Frame::decode(frame).map_or(TxId([0; 16]), |f| f.header.tx);
        self.order_of(tx)
    }

    /// `node`'s retry timer fires (section 7).
    pub(super) fn retry(&mut self, node: Node) -> Step {
        match node {
            Node::Broker => self.timer(),
            Node::Merchant(i) => {
                let merchant = self.network.merchant(i).map_err(net)?;
                let mut owed = merchant.pending_reports();
                owed.extend(merchant.pending_broker_requests());
                owed.sort_by_key(|out| self.order_of_frame(&out.frame));
                for out in owed {
                    self.counters.retries += 1;
                    self.note(format!("merchant {i} re-sends {}", label_of(&out.frame)));
                    self.send(
                        Node::Broker,
                        Kind::Request {
                            from: node,
                            status: None,
                        },
                        out.frame,
                    );
                }
                Ok(())
            }
            Node::Wallet(j) => self.wallet_retry(j),
        }
    }
}
