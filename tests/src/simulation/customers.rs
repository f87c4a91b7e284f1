//! The customers: what each starts, drawn by its own generator, and how its client
//! follows its wallet's pending requests (`Pending::next_steps`, protocol.md section 7).

use customer_cli::WalletError;
use customer_cli::core::{NextStep, PendingStatus};
use rand::RngExt;
use shared::wire::Label;
use shared::wire::bodies::{OrderId, OrderInfo};
use shared::{Amount, TxId};

use super::{Kind, Node, Sim, Step, When, net};

impl Sim {
    /// Wallet `j`'s retry: every pending request's next steps (`Pending::next_steps`).
    pub(super) fn wallet_retry(&mut self, j: usize) -> Step {
        self.wallet_follow(j, |_, _| true, When::Now)
    }

    /// Wallet `j`'s client follows the next steps (`Pending::next_steps`) of each pending
    /// request `which` picks (by tx and label), in the order the transactions were
    /// started; `when` says whether what it sends goes on the wire now, or is held back
    /// and delivered at a random later step (a repeat after an `Unavailable` answer, after
    /// the client's pause, section 10).
    pub(super) fn wallet_follow(
        &mut self,
        j: usize,
        which: impl Fn(TxId, Label) -> bool,
        when: When,
    ) -> Step {
        let broker = self.network.broker_uid();
        let mut pending: Vec<(TxId, Label, Vec<NextStep>)> = self
            .network
            .wallet(j)
            .map_err(net)?
            .pending()
            .filter(|p| which(p.request.tx(), p.request.label()))
            .map(|p| (p.request.tx(), p.request.label(), p.next_steps(broker)))
            .collect();
        pending.sort_by_key(|(tx, label, _)| (self.order_of(*tx), *label));
        let from = Node::Wallet(j);
        for (tx, label, steps) in pending {
            for step in steps {
                match step {
                    NextStep::Resend => {
                        if !self.may_send(j, tx, label)? {
                            continue;
                        }
                        let wallet = self.network.wallet(j).map_err(net)?;
                        match wallet.resend(tx, label) {
                            Ok(out) => {
                                self.counters.retries += 1;
                                self.note(format!("wallet {j} resends {label} of {tx}"));
                                let to = self.node_of(out.to)?;
                                self.clients[j].sent.insert((tx, label));
                                let kind = Kind::Request { from, status: None };
                                self.dispatch(to, kind, out.frame, when);
                            }
                            Err(e) => self.declined(j, &e)?,
                        }
                    }
                    NextStep::AskStatus(node) => {
                        let wallet = self.network.wallet(j).map_err(net)?;
                        match wallet.transaction_status(tx, node) {
                            Ok((query, out)) => {
                                self.counters.retries += 1;
                                self.note(format!("wallet {j} asks {node} about {tx}"));
                                let to = self.node_of(node)?;
                                let status = Some(Box::new(query));
                                self.dispatch(to, Kind::Request { from, status }, out.frame, when);
                            }
                            Err(e) => self.declined(j, &e)?,
                        }
                    }
                    NextStep::Decide => self.abandon(j, tx, label)?,
                }
            }
        }
        Ok(())
    }

    /// 6.3's second request goes to the merchant only once the broker acknowledged the
    /// first (`Wallet::buy_item`); every other request may go at once.
    pub(super) fn may_send(&self, j: usize, tx: TxId, label: Label) -> Result<bool, String> {
        if label != Label::PurchaseRequest {
            return Ok(true);
        }
        let wallet = self.network.wallet(j).map_err(net)?;
        Ok(!wallet
            .pending()
            .any(|p| p.request.tx() == tx && p.request.label() == Label::PurchaseInitiated))
    }

    /// Wallet `j` after any change: every pending request not yet sent goes out (6.2 step
    /// 2 once the notice is answered, 6.3's purchase once its announcement is); a refused
    /// one is given up.
    pub(super) fn kick(&mut self, j: usize) -> Step {
        let mut pending: Vec<(TxId, Label, bool)> = self
            .network
            .wallet(j)
            .map_err(net)?
            .pending()
            .map(|p| {
                (
                    p.request.tx(),
                    p.request.label(),
                    p.status == PendingStatus::Sent,
                )
            })
            .collect();
        pending.sort_by_key(|(tx, label, _)| (self.order_of(*tx), *label));
        for (tx, label, sent_status) in pending {
            if !sent_status {
                self.abandon(j, tx, label)?;
                continue;
            }
            if self.clients[j].sent.contains(&(tx, label)) || !self.may_send(j, tx, label)? {
                continue;
            }
            let wallet = self.network.wallet(j).map_err(net)?;
            match wallet.resend(tx, label) {
                Ok(out) => {
                    self.clients[j].sent.insert((tx, label));
                    self.note(format!("wallet {j} sends {label} of {tx}"));
                    let to = self.node_of(out.to)?;
                    self.request(Node::Wallet(j), to, out.frame);
                }
                // Not renderable any more (its scrip is settled): its outcome comes by
                // TransactionStatus, on the next retry.
                Err(e) => self.declined(j, &e)?,
            }
        }
        Ok(())
    }

    pub(super) fn abandon(&mut self, j: usize, tx: TxId, label: Label) -> Step {
        let now = self.now;
        self.note(format!("wallet {j} gives up refused {label} of {tx}"));
        match self
            .network
            .wallet_mut(j)
            .map_err(net)?
            .abandon(tx, label, now)
        {
            Ok(()) => Ok(()),
            Err(e) => self.declined(j, &e),
        }
    }

    /// A wallet's refusal of a frame or a call. What a correct network makes a wallet
    /// refuse (a repeat, a late or out-of-turn frame, a refused request, a call its state
    /// does not allow yet) is counted; anything else (a reply that fails a check, a broken
    /// file) means a node or the wallet misbehaved, and fails the run.
    pub(super) fn declined(&mut self, j: usize, e: &WalletError) -> Step {
        match e {
            WalletError::AlreadyReceived { .. }
            | WalletError::NoPendingRequest { .. }
            | WalletError::NotPending { .. }
            | WalletError::UnexpectedLabel { .. }
            | WalletError::AwaitingDecision { .. }
            | WalletError::Refused { .. }
            | WalletError::AlreadyPending { .. }
            | WalletError::ScripBusy { .. }
            | WalletError::VendorScripLive { .. }
            | WalletError::BrokerScripLive { .. }
            | WalletError::NoScrip { .. }
            | WalletError::InsufficientScrip { .. }
            | WalletError::TopUpNotLarger { .. }
            | WalletError::NotRefused { .. } => {
                let name = format!("{e:?}");
                let name = name
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                *self.counters.declined.entry(name).or_default() += 1;
                self.note(format!("wallet {j} declines: {e}"));
                Ok(())
            }
            other => Err(format!("wallet {j} failed: {other}")),
        }
    }

    /// Whether wallet `j` has a request pending.
    pub(super) fn waiting(&self, j: usize) -> Result<bool, String> {
        Ok(self
            .network
            .wallet(j)
            .map_err(net)?
            .pending()
            .next()
            .is_some())
    }

    /// Customer `j`'s turn: with nothing pending, it starts its next transaction; with
    /// something pending, it waits (its retry timer is a fault of its own).
    pub(super) fn customer_turn(&mut self, j: usize) -> Step {
        if self.waiting(j)? {
            // Without faults nothing is lost: the answer is on its way, and the customer
            // waits for it (so its choices stay those of the run delivered once). With
            // faults, its patience runs out now and then (its client's timeout), and now
            // and then it starts another transaction meanwhile (the wallet refuses one
            // that would present a scrip a pending request holds).
            if self.faults().is_some() {
                match self.rng.random_range(0..4) {
                    0 => return self.wallet_retry(j),
                    1 => {}
                    _ => return Ok(()),
                }
            } else {
                return Ok(());
            }
        }
        self.clients[j].remaining -= 1;
        self.start(j)
    }

    /// Customer `j` starts a transaction its wallet allows, drawn by its own generator
    /// (so its choices do not depend on how frames travel).
    pub(super) fn start(&mut self, j: usize) -> Step {
        let broker = self.network.broker_uid();
        let merchants = self.merchant_uids.clone();
        let now = self.now;
        let wallet = self.network.wallet(j).map_err(net)?;
        let broker_scrip = wallet.broker_scrip().map(|s| s.scrip.value().minor());
        let vendor: Vec<Option<u64>> = merchants
            .iter()
            .map(|m| wallet.scrip(*m).map(|s| s.scrip.value().minor()))
            .collect();
        let rng = &mut self.clients[j].rng;
        let m = rng.random_range(0..merchants.len());
        let merchant = merchants[m];
        // 1: 6.1, 2: 6.4, 3: 6.3, 4: 6.2, 5: 6.5, 6: 6.6, 7: 6.7, 8: 6.8 of the
        // BrokerScrip, 9: 6.8 of the VendorScrip; weighted towards the three-party flows.
        let mut choices: Vec<u8> = Vec::new();
        match (broker_scrip, vendor[m]) {
            (None, None) => choices.extend([1]),
            (None, Some(_)) => choices.extend([1, 3, 3, 3, 7, 9]),
            (Some(_), None) => choices.extend([2, 4, 4, 4, 6, 8]),
            (Some(_), Some(_)) => choices.extend([2, 3, 3, 3, 5, 5, 5, 6, 7, 7, 8, 9]),
        }
        let choice = choices[rng.random_range(0..choices.len())];
        let wallet = self.network.wallet_mut(j).map_err(net)?;
        let started = match (choice, broker_scrip, vendor[m]) {
            (1, _, _) => {
                let value = rng.random_range(5..=30) * 100;
                wallet.obtain_broker_scrip(Amount::from_minor(value), now)
            }
            (2, Some(b), _) => {
                let value = b + rng.random_range(1..=10) * 100;
                wallet.top_up_broker_scrip(Amount::from_minor(value), now)
            }
            (4, Some(b), _) if b > 0 => {
                let w = rng.random_range(1..=b);
                wallet.obtain_vendor_scrip(merchant, Amount::from_minor(w), now)
            }
            (6, Some(_), _) => wallet.withdraw_broker_scrip(now),
            (8, Some(_), _) => wallet.renew(broker, now),
            (3, _, Some(v)) => {
                let (item, price) = if v >= 1200 && rng.random_range(0..3) == 0 {
                    ("book", 1200)
                } else {
                    ("tea", 150)
                };
                let most = v / price;
                if most == 0 {
                    self.note(format!("wallet {j} cannot afford {item}"));
                    return Ok(());
                }
                let quantity = rng.random_range(1..=most.min(4));
                let order = OrderInfo {
                    item_id: item.into(),
                    name: if item == "tea" { "Green tea" } else { "A book" }.into(),
                    unit_price: Amount::from_minor(price),
                    quantity,
                    order_id: OrderId::random(),
                };
                wallet
                    .buy_item(merchant, order, now)
                    .map(|(first, _)| first)
            }
            (5, Some(b), Some(_)) if b > 0 => {
                let top_up = rng.random_range(1..=b);
                wallet.top_up_vendor_scrip(merchant, Amount::from_minor(top_up), now)
            }
            (7, _, Some(_)) => wallet.withdraw_vendor_scrip(merchant, now),
            (9, _, Some(_)) => wallet.renew(merchant, now),
            _ => {
                self.note(format!("wallet {j} has nothing to do ({choice})"));
                return Ok(());
            }
        };
        match started {
            Ok(out) => {
                *self
                    .counters
                    .started
                    .entry(out.label.to_string())
                    .or_default() += 1;
                self.note(format!("wallet {j} starts {} of {}", out.label, out.tx));
                self.clients[j].sent.insert((out.tx, out.label));
                let order = self.tx_order.len() as u64;
                self.tx_order.insert(out.tx, order);
                let to = self.node_of(out.to)?;
                self.request(Node::Wallet(j), to, out.frame);
                Ok(())
            }
            Err(e) => {
                self.note(format!("wallet {j} declines to start: {e}"));
                // Declined because of another pending request (a transient refusal of a
                // customer that did not wait): the transaction is not used up.
                if self.waiting(j)? {
                    self.clients[j].remaining += 1;
                }
                self.declined(j, &e)
            }
        }
    }
}
