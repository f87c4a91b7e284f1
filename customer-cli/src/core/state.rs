//! The wallet's state: the projection of its log (protocol.md section 8), in memory, in
//! deterministic order. [`WalletState::apply`] is the one fold, used live and in replay, so
//! the two cannot disagree; it reports the rows it touched so the redb tables follow it
//! row by row (`crate::store`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::events::Event;
use shared::wire::Label;
use shared::{ErrorCode, PublicKey, ScripId, TxId, Uid};

use super::events::{AccountRecord, HistoryEntry, HistoryKind, Identity, OwnedScrip, WalletEvent};
use super::flow::{Exchange, Progress, TopUp, Withdrawal};
use super::request::SavedRequest;

/// Where a pending request stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingStatus {
    /// Saved and (about to be) sent; no reply yet.
    Sent,
    /// The node answered `Error` (section 3); it may be repeated or given up.
    Refused {
        /// The `ErrorCode` number.
        code: u16,
        /// The node's text.
        message: String,
    },
    /// Given up after a refusal (`Wallet::abandon`): not repeated, commits no scrip, and
    /// not listed as pending; but kept, because a refusal is not stored at the node, so a
    /// copy of the request still on the network (a retry, a duplicate) is decided again
    /// there and may succeed later (section 3: "on an `Error` … a requester may repeat
    /// the request"). Its success is then taken like any reply; a late `Error` is not.
    Abandoned,
}

/// A request saved and not yet answered (protocol.md section 7: "on restart every node and
/// wallet resumes each tx with no recorded outcome").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The saved request.
    pub request: SavedRequest,
    /// Its status.
    pub status: PendingStatus,
    /// When it was saved (its event's time).
    pub saved_at: shared::UnixMillis,
    /// Where it stands in its flow: which messages of its outcome are in (see
    /// [`super::flow`]).
    pub progress: Progress,
}

impl Pending {
    /// `request`, saved at `saved_at` (an event time) and not answered yet.
    #[must_use]
    pub fn new(request: SavedRequest, saved_at: shared::UnixMillis) -> Pending {
        Pending {
            progress: Progress::start(&request.expect),
            request,
            status: PendingStatus::Sent,
            saved_at,
        }
    }

    /// The scrip this request still commits: those it presents, until the message that
    /// settles each has arrived (6.2, 6.5: B's `ChangeBrokerScrip` spends or returns B0;
    /// 6.5: M's `VendorTopUpResponse` replaces V0). A NOK closes the request, so its scrip
    /// are free again.
    ///
    /// A request its node refused with `Lapsed` commits nothing: the scrip it presented is
    /// gone (section 4, docs/adr/0011), and the request can never succeed.
    #[must_use]
    pub fn committed_scrips(&self) -> Vec<ScripId> {
        let lapsed = matches!(
            self.status,
            PendingStatus::Refused { code, .. } if code == ErrorCode::Lapsed.code()
        );
        if self.status == PendingStatus::Abandoned || lapsed {
            return Vec::new();
        }
        match &self.request.expect {
            super::Expect::VendorTopUp {
                broker_spent,
                vendor_spent,
                ..
            } => {
                let mut out = Vec::with_capacity(2);
                if !self.progress.broker_paid() {
                    out.push(*broker_spent);
                }
                if !self.progress.vendor_scrip_in() {
                    out.push(*vendor_spent);
                }
                out
            }
            _ if self.progress.broker_paid() => Vec::new(),
            expect => expect.presented_scrip().into_iter().collect(),
        }
    }
}

/// What a pending request still needs (section 7: "on restart every node and wallet
/// resumes each tx with no recorded outcome"), as [`Pending::next_steps`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Repeat the request to its node (`Wallet::resend`): its reply is still owed; a node
    /// answers a repeat with its stored reply (or `Ack` while it waits for the broker).
    /// Offered only while every scrip the request carries is still held.
    Resend,
    /// Ask this node for the frames of the tx (`Wallet::transaction_status`): a delivery
    /// of it is still owed.
    AskStatus(Uid),
    /// The node refused the request: repeat it or give it up (`Wallet::abandon`).
    Decide,
}

impl Pending {
    /// What this request still needs, in order, by the state of its flow.
    #[must_use]
    pub fn next_steps(&self, broker: Uid) -> Vec<NextStep> {
        use NextStep::{AskStatus, Resend};
        match self.status {
            PendingStatus::Sent => {}
            PendingStatus::Refused { .. } => return vec![NextStep::Decide],
            PendingStatus::Abandoned => return Vec::new(),
        }
        // The merchant asked: the request's recipient in 6.2 step 2 and 6.7, named by the
        // expectation in 6.5 (sent to B).
        let merchant = match &self.request.expect {
            super::Expect::VendorTopUp { merchant, .. } => *merchant,
            _ => self.request.to,
        };
        match self.progress {
            Progress::Awaiting | Progress::Notice => vec![Resend],
            // Once the broker's settlement is in, B0 is spent and its CustomerSecret gone:
            // step 2 can no longer be rendered, and M's stored answer is fetched instead.
            Progress::Exchange(Exchange::Sent) => vec![AskStatus(broker), Resend],
            Progress::Exchange(Exchange::BrokerPaid)
            | Progress::TopUp(TopUp::BrokerPaid { .. }) => {
                vec![AskStatus(merchant)]
            }
            Progress::Exchange(Exchange::VendorScripIn)
            | Progress::TopUp(TopUp::VendorScripIn { .. })
            | Progress::Withdrawal(Withdrawal::Held) => vec![AskStatus(broker)],
            Progress::TopUp(TopUp::Sent) => vec![Resend, AskStatus(broker), AskStatus(merchant)],
            Progress::TopUp(TopUp::Escrowed) => vec![AskStatus(broker), AskStatus(merchant)],
            Progress::Withdrawal(Withdrawal::Sent) => vec![Resend, AskStatus(broker)],
        }
    }
}

/// The key of a pending request: a request is idempotent per (sender, tx, label), and the
/// sender is the wallet.
pub type PendingKey = (TxId, Label);

/// A row of the wallet's tables, named by its key (what `apply` touched).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Row {
    /// The identity row.
    Identity,
    /// The account row.
    Account,
    /// The registration row.
    Registration,
    /// A cached peer key.
    Peer(Uid),
    /// The scrip of a producer.
    Scrip(Uid),
    /// A pending request.
    Pending(TxId, Label),
    /// A history line, by event seq.
    History(u64),
    /// A merchant's name (docs/adr/0016).
    Name(Uid),
}

/// The wallet's state (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalletState {
    /// Who the wallet is; `None` before `WalletCreated`.
    pub identity: Option<Identity>,
    /// The linked bank account.
    pub account: Option<AccountRecord>,
    /// The UID the broker registered (6.0).
    pub registered: Option<Uid>,
    /// Peer keys obtained by 6.0b, SPKI DER.
    pub peers: BTreeMap<Uid, Vec<u8>>,
    /// Merchants' names as last learned (docs/adr/0016).
    pub names: BTreeMap<Uid, shared::wire::bodies::MerchantName>,
    /// The scrip held, by producer: at most one BrokerScrip and one VendorScrip per merchant
    /// (protocol.md section 4).
    pub scrip: BTreeMap<Uid, OwnedScrip>,
    /// Requests without a recorded outcome.
    pub pending: BTreeMap<PendingKey, Pending>,
    /// The history, by event seq.
    pub history: BTreeMap<u64, HistoryEntry>,
}

/// An event that contradicts the state: `decide` never produces one, so meeting it means
/// the log was not written by this wallet's core. The node stops rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {seq} does not apply: {reason}")]
pub struct ApplyError {
    /// The event.
    pub seq: u64,
    /// Why.
    pub reason: String,
}

impl WalletState {
    /// The pinned broker's UID, once the wallet exists.
    #[must_use]
    pub fn broker(&self) -> Option<Uid> {
        self.identity.as_ref().map(|i| i.broker)
    }

    /// The public key of `uid`: the pinned broker's, the wallet's own, or a cached peer's
    /// (section 6.0b: a key never arrives any other way).
    #[must_use]
    pub fn key_of(&self, uid: Uid) -> Option<PublicKey> {
        let identity = self.identity.as_ref()?;
        let der = if uid == identity.broker {
            &identity.broker_key
        } else if uid == identity.me {
            &identity.my_key
        } else {
            self.peers.get(&uid)?
        };
        PublicKey::from_spki_der(identity.suite, der).ok()
    }

    /// The BrokerScrip held, if any.
    #[must_use]
    pub fn broker_scrip(&self) -> Option<&OwnedScrip> {
        self.scrip.get(&self.broker()?)
    }

    /// The pending request that presents `scrip_id`, if any.
    #[must_use]
    pub fn pending_with_scrip(&self, scrip_id: ScripId) -> Option<&Pending> {
        self.pending
            .values()
            .find(|p| p.committed_scrips().contains(&scrip_id))
    }

    /// Folds one event into the state and returns the rows it changed. Total on every
    /// event the wallet's core decided; an [`ApplyError`] names a log it did not write, and
    /// leaves this state half-applied: callers discard it (a live append folds into a copy
    /// and aborts its commit; an open that meets one fails).
    pub fn apply(&mut self, event: &Event<WalletEvent>) -> Result<Vec<Row>, ApplyError> {
        let fail = |reason: String| ApplyError {
            seq: event.seq,
            reason,
        };
        let tx = event.tx;
        let mut rows = Vec::new();
        // The request this event answers, as it was before the event (a closing event
        // removes it, and some arms read its expectation).
        let mut answered: Option<Pending> = None;
        if let Some(label) = event.kind.answers() {
            let Some(pending) = self.pending.get_mut(&(tx, label)) else {
                return Err(fail(format!("no pending {label} in tx {tx}")));
            };
            answered = Some(pending.clone());
            // The flow's one transition function (`super::flow`), as `decide_reply` uses it.
            if let Some(message) = event.kind.message() {
                let next = pending
                    .progress
                    .on(message)
                    .map_err(|e| fail(format!("{label} of tx {tx}: {e}")))?;
                match next {
                    None => {
                        self.pending.remove(&(tx, label));
                    }
                    Some(next) => {
                        pending.progress = next;
                        // A message of the flow arrived for a request given up: a copy of
                        // it succeeded, so the request is live again and resumed like any
                        // other.
                        if pending.status == PendingStatus::Abandoned {
                            pending.status = PendingStatus::Sent;
                        }
                    }
                }
            }
            rows.push(Row::Pending(tx, label));
        }
        let history = |what: HistoryKind| HistoryEntry {
            tx,
            time: event.time,
            what,
        };
        let entry = match &event.kind {
            WalletEvent::WalletCreated { identity } => {
                if self.identity.is_some() {
                    return Err(fail("a second WalletCreated".into()));
                }
                self.identity = Some(identity.clone());
                rows.push(Row::Identity);
                None
            }
            WalletEvent::AccountLinked { account } => {
                self.account = Some(account.clone());
                rows.push(Row::Account);
                None
            }
            WalletEvent::RequestSaved { request } => {
                rows.push(self.save(tx, request, event.time).map_err(fail)?);
                None
            }
            WalletEvent::RequestRefused {
                label,
                code,
                message,
            } => {
                let mut lapsed = None;
                if let Some(p) = self.pending.get_mut(&(tx, *label)) {
                    // Section 4, docs/adr/0011: the producer this request showed its scrip
                    // to says, signed, that the scrip lapsed and its value went back to the
                    // bank account. Only the producer decides that of its own scrip, so the
                    // wallet drops it (what the request presented to that node).
                    if *code == ErrorCode::Lapsed.code() {
                        let producer = p.request.to;
                        let presented = p.committed_scrips();
                        lapsed = self
                            .scrip
                            .get(&producer)
                            .filter(|s| presented.contains(&s.scrip.id()))
                            .map(|s| (producer, s.scrip.value()));
                    }
                    p.status = PendingStatus::Refused {
                        code: *code,
                        message: message.clone(),
                    };
                }
                match lapsed {
                    Some((producer, value)) => {
                        self.scrip.remove(&producer);
                        rows.push(Row::Scrip(producer));
                        Some(history(HistoryKind::ScripLapsed {
                            producer,
                            value,
                            label: *label,
                        }))
                    }
                    None => Some(history(HistoryKind::Refused {
                        label: *label,
                        code: *code,
                    })),
                }
            }
            WalletEvent::RequestAbandoned { label } => {
                if let Some(p) = self.pending.get_mut(&(tx, *label)) {
                    p.status = PendingStatus::Abandoned;
                }
                Some(history(HistoryKind::Abandoned { label: *label }))
            }
            WalletEvent::Registered { uid } => {
                self.registered = Some(*uid);
                rows.push(Row::Registration);
                Some(history(HistoryKind::Registered { uid: *uid }))
            }
            WalletEvent::PeerKeyCached { uid, spki_der } => {
                self.peers.insert(*uid, spki_der.clone());
                rows.push(Row::Peer(*uid));
                Some(history(HistoryKind::PeerKey { uid: *uid }))
            }
            WalletEvent::MerchantNamed { uid, name } => {
                self.names.insert(*uid, name.clone());
                rows.push(Row::Name(*uid));
                None
            }
            WalletEvent::BrokerScripObtained { scrip } => {
                let producer = scrip.producer();
                if Some(producer) != self.broker() || self.scrip.contains_key(&producer) {
                    return Err(fail("BrokerScrip obtained while one is held".into()));
                }
                self.scrip.insert(producer, scrip.clone());
                rows.push(Row::Scrip(producer));
                Some(history(HistoryKind::BrokerScripObtained {
                    value: scrip.scrip.value(),
                }))
            }
            WalletEvent::BrokerScripToppedUp { spent, scrip } => {
                let from = self
                    .replace(scrip.producer(), *spent, Some(scrip.clone()))
                    .map_err(fail)?;
                rows.push(Row::Scrip(scrip.producer()));
                Some(history(HistoryKind::BrokerScripToppedUp {
                    from,
                    to: scrip.scrip.value(),
                }))
            }
            WalletEvent::BrokerScripWithdrawn { spent, value } => {
                let broker = self.broker().ok_or_else(|| fail("no wallet".into()))?;
                self.replace(broker, *spent, None).map_err(fail)?;
                rows.push(Row::Scrip(broker));
                Some(history(HistoryKind::BrokerScripWithdrawn { value: *value }))
            }
            WalletEvent::ScripRenewed { spent, scrip } => {
                self.replace(scrip.producer(), *spent, Some(scrip.clone()))
                    .map_err(fail)?;
                rows.push(Row::Scrip(scrip.producer()));
                Some(history(HistoryKind::ScripRenewed {
                    producer: scrip.producer(),
                    value: scrip.scrip.value(),
                    expires: scrip.scrip.body.expires,
                }))
            }
            WalletEvent::ExchangeNoticed { request, .. } => {
                rows.push(self.save(tx, request, event.time).map_err(fail)?);
                Some(history(HistoryKind::Step {
                    label: Label::VendorScripNotice,
                }))
            }
            // A step of a flow recorded, no value moved yet: the request stays pending (6.5
            // and 6.7) or its twin goes on (6.3 step 2).
            WalletEvent::PurchaseAnnounced
            | WalletEvent::VendorTopUpAcked { .. }
            | WalletEvent::VendorWithdrawAcked { .. } => event
                .kind
                .answers()
                .map(|label| history(HistoryKind::Step { label })),
            WalletEvent::ExchangeSettled {
                spent,
                outcome,
                change,
            }
            | WalletEvent::VendorTopUpSettled {
                spent,
                outcome,
                change,
            } => {
                let merchant = match answered.as_ref().map(|p| &p.request.expect) {
                    Some(
                        super::Expect::VendorScripRequest { merchant, .. }
                        | super::Expect::VendorTopUp { merchant, .. },
                    ) => *merchant,
                    _ => return Err(fail(format!("no payment to a merchant pending in tx {tx}"))),
                };
                let ok = outcome.is_ok();
                let (from, change) = self
                    .settle_broker_change(*spent, ok, change, &mut rows)
                    .map_err(fail)?;
                Some(history(match event.kind {
                    WalletEvent::ExchangeSettled { .. } => HistoryKind::ExchangeSettled {
                        merchant,
                        ok,
                        from,
                        change,
                    },
                    _ => HistoryKind::VendorTopUpSettled {
                        merchant,
                        ok,
                        from,
                        change,
                    },
                }))
            }
            WalletEvent::ExchangeEndedAtNotice { .. } => {
                let (merchant, spent) = match answered.as_ref().map(|p| &p.request.expect) {
                    Some(super::Expect::VendorScripNotice {
                        merchant, spent, ..
                    }) => (*merchant, *spent),
                    _ => return Err(fail(format!("no notice pending in tx {tx}"))),
                };
                let from = self
                    .scrip
                    .values()
                    .find(|s| s.scrip.id() == spent)
                    .map(|s| s.scrip.value())
                    .ok_or_else(|| fail(format!("scrip {spent} is not held")))?;
                Some(history(HistoryKind::ExchangeSettled {
                    merchant,
                    ok: false,
                    from,
                    change: shared::Amount::ZERO,
                }))
            }
            WalletEvent::VendorScripObtained { scrip } => {
                let producer = scrip.producer();
                if self.scrip.contains_key(&producer) {
                    return Err(fail(format!("a second scrip of {producer}")));
                }
                self.scrip.insert(producer, scrip.clone());
                rows.push(Row::Scrip(producer));
                Some(history(HistoryKind::VendorScripObtained {
                    merchant: producer,
                    value: scrip.scrip.value(),
                }))
            }
            WalletEvent::ItemBought {
                spent,
                change,
                receipt,
                ..
            } => {
                let merchant = match self.scrip.values().find(|s| s.scrip.id() == *spent) {
                    Some(s) => s.producer(),
                    None => return Err(fail(format!("scrip {spent} is not held"))),
                };
                self.replace(merchant, *spent, change.clone())
                    .map_err(fail)?;
                rows.push(Row::Scrip(merchant));
                Some(history(HistoryKind::ItemBought {
                    merchant,
                    paid: receipt.paid,
                    change: change
                        .as_ref()
                        .map_or(shared::Amount::ZERO, |c| c.scrip.value()),
                }))
            }
            WalletEvent::VendorScripToppedUp { spent, scrip } => {
                let merchant = scrip.producer();
                let from = self
                    .replace(merchant, *spent, Some(scrip.clone()))
                    .map_err(fail)?;
                rows.push(Row::Scrip(merchant));
                Some(history(HistoryKind::VendorScripToppedUp {
                    merchant,
                    from,
                    to: scrip.scrip.value(),
                }))
            }
            WalletEvent::VendorWithdrawDecided {
                spent,
                outcome,
                value,
            } => {
                let merchant = match self.scrip.values().find(|s| s.scrip.id() == *spent) {
                    Some(s) => s.producer(),
                    None => return Err(fail(format!("scrip {spent} is not held"))),
                };
                if outcome.is_ok() {
                    self.replace(merchant, *spent, None).map_err(fail)?;
                    rows.push(Row::Scrip(merchant));
                }
                Some(history(HistoryKind::VendorWithdrawDecided {
                    merchant,
                    ok: outcome.is_ok(),
                    value: *value,
                }))
            }
        };
        if let Some(entry) = entry {
            self.history.insert(event.seq, entry);
            rows.push(Row::History(event.seq));
        }
        debug_assert!(
            self.pending
                .values()
                .flat_map(Pending::committed_scrips)
                .all(|id| self.scrip.values().any(|s| s.scrip.id() == id)),
            "every pending request presents a scrip the wallet holds"
        );
        Ok(rows)
    }

    /// Saves `request` of the event's `tx` as pending (section 7), unless it is already.
    fn save(
        &mut self,
        tx: TxId,
        request: &SavedRequest,
        time: shared::UnixMillis,
    ) -> Result<Row, String> {
        let key = (request.tx(), request.label());
        if tx != request.tx() || self.pending.contains_key(&key) {
            return Err(format!("request {} of tx {tx} saved twice", key.1));
        }
        self.pending
            .insert(key, Pending::new(request.clone(), time));
        Ok(Row::Pending(key.0, key.1))
    }

    /// The broker's answer to a payment out of its scrip `spent` (6.2 `ExchangeSettled`,
    /// 6.5 `VendorTopUpSettled`): on OK `spent` is replaced by the change (or removed), on
    /// NOK it stays and no change may come. Returns the spent scrip's value and the
    /// change's, for the history.
    fn settle_broker_change(
        &mut self,
        spent: ScripId,
        ok: bool,
        change: &Option<OwnedScrip>,
        rows: &mut Vec<Row>,
    ) -> Result<(shared::Amount, shared::Amount), String> {
        let broker = self.broker().ok_or("no wallet")?;
        let from = self
            .scrip
            .get(&broker)
            .filter(|s| s.scrip.id() == spent)
            .map(|s| s.scrip.value())
            .ok_or_else(|| format!("scrip {spent} is not the one held"))?;
        if ok {
            self.replace(broker, spent, change.clone())?;
            rows.push(Row::Scrip(broker));
        } else if change.is_some() {
            return Err("change with a NOK".into());
        }
        let change = change
            .as_ref()
            .map_or(shared::Amount::ZERO, |c| c.scrip.value());
        Ok((from, change))
    }

    /// Replaces `producer`'s scrip `spent` by `with` (or removes it) and returns the old
    /// value.
    fn replace(
        &mut self,
        producer: Uid,
        spent: ScripId,
        with: Option<OwnedScrip>,
    ) -> Result<shared::Amount, String> {
        let held = self
            .scrip
            .get(&producer)
            .ok_or_else(|| format!("no scrip of {producer} held"))?;
        if held.scrip.id() != spent {
            return Err(format!("scrip {spent} is not the one held"));
        }
        let old = held.scrip.value();
        match with {
            Some(new) => self.scrip.insert(producer, new),
            None => self.scrip.remove(&producer),
        };
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::request::{Expect, SavedInner, SavedPart, SavedRequest};
    use crate::sealed::SealedSecret;
    use shared::wire::Header;
    use shared::{Amount, CustId, Nonce, Scrip, ScripBody, Suite};

    const ME: Uid = Uid([1; 16]);
    const BROKER: Uid = Uid([2; 16]);
    const TX: TxId = TxId([5; 16]);

    fn event(seq: u64, tx: TxId, kind: WalletEvent) -> Event<WalletEvent> {
        Event {
            seq,
            time: shared::UnixSecs::new(seq).to_millis(),
            tx,
            prev_hash: [0; 32],
            postings: Vec::new(),
            memos: Vec::new(),
            evidence: Vec::new(),
            kind,
        }
    }

    fn created() -> WalletState {
        let mut state = WalletState::default();
        let identity = Identity {
            suite: Suite::Paper,
            me: ME,
            my_key: vec![1],
            broker: BROKER,
            broker_key: vec![2],
        };
        let rows = state
            .apply(&event(
                1,
                TxId([0; 16]),
                WalletEvent::WalletCreated { identity },
            ))
            .unwrap();
        assert_eq!(rows, [Row::Identity]);
        state
    }

    fn owned(producer: Uid, id: u8, value: u64) -> OwnedScrip {
        OwnedScrip {
            scrip: Scrip {
                body: ScripBody {
                    producer,
                    value: Amount::from_minor(value),
                    scrip_id: ScripId([id; 16]),
                    cust_id: CustId([id; 16]),
                    expires: 10,
                },
                certificate: Vec::new(),
            },
            cs_hash: Vec::new(),
            sealed_cs: SealedSecret {
                wrapped_key: Vec::new(),
                ciphertext: Vec::new(),
            },
            obtained_in: TX,
        }
    }

    fn obtain_request(tx: TxId) -> SavedRequest {
        SavedRequest::new(
            Header::new(Suite::Paper, Label::BrokerScripRequest, tx, ME),
            BROKER,
            vec![SavedPart::Sealed {
                to: BROKER,
                inners: vec![SavedInner::IdProof, SavedInner::Signed { body: vec![7] }],
            }],
            Expect::ObtainBrokerScrip {
                value: Amount::from_minor(3),
                nonce: Nonce([0; 16]),
            },
        )
        .unwrap()
    }

    #[test]
    fn a_request_saved_then_answered_leaves_scrip_and_history() {
        let mut state = created();
        let rows = state
            .apply(&event(
                2,
                TX,
                WalletEvent::RequestSaved {
                    request: obtain_request(TX),
                },
            ))
            .unwrap();
        assert_eq!(rows, [Row::Pending(TX, Label::BrokerScripRequest)]);
        let rows = state
            .apply(&event(
                3,
                TX,
                WalletEvent::BrokerScripObtained {
                    scrip: owned(BROKER, 9, 3),
                },
            ))
            .unwrap();
        assert_eq!(
            rows,
            [
                Row::Pending(TX, Label::BrokerScripRequest),
                Row::Scrip(BROKER),
                Row::History(3)
            ]
        );
        assert!(state.pending.is_empty());
        assert_eq!(
            state.broker_scrip().map(|s| s.scrip.id()),
            Some(ScripId([9; 16]))
        );
        assert_eq!(
            state.history[&3].what,
            HistoryKind::BrokerScripObtained {
                value: Amount::from_minor(3)
            }
        );
    }

    #[test]
    fn events_the_core_never_decides_do_not_apply() {
        let mut state = created();
        // A completion with no pending request.
        let orphan = event(
            2,
            TX,
            WalletEvent::BrokerScripObtained {
                scrip: owned(BROKER, 9, 3),
            },
        );
        assert_eq!(state.apply(&orphan).unwrap_err().seq, 2);
        // The same request saved twice.
        let saved = event(
            2,
            TX,
            WalletEvent::RequestSaved {
                request: obtain_request(TX),
            },
        );
        state.apply(&saved).unwrap();
        assert!(state.apply(&saved).is_err());
        // A second BrokerScrip while one is held.
        state
            .apply(&event(
                3,
                TX,
                WalletEvent::BrokerScripObtained {
                    scrip: owned(BROKER, 9, 3),
                },
            ))
            .unwrap();
        let tx2 = TxId([6; 16]);
        state
            .apply(&event(
                4,
                tx2,
                WalletEvent::RequestSaved {
                    request: obtain_request(tx2),
                },
            ))
            .unwrap();
        let before = state.clone();
        assert!(
            state
                .apply(&event(
                    5,
                    tx2,
                    WalletEvent::BrokerScripObtained {
                        scrip: owned(BROKER, 8, 3),
                    }
                ))
                .is_err()
        );
        // A top-up or renewal of a scrip that is not the one held.
        let mut other = before.clone();
        other.pending.insert(
            (tx2, Label::RenewRequest),
            before.pending[&(tx2, Label::BrokerScripRequest)].clone(),
        );
        assert!(
            other
                .apply(&event(
                    5,
                    tx2,
                    WalletEvent::ScripRenewed {
                        spent: ScripId([1; 16]),
                        scrip: owned(BROKER, 8, 3),
                    }
                ))
                .is_err()
        );
    }

    /// Section 4: a second live scrip of one producer is never stored over the first (the
    /// value of neither is lost): the event does not apply and the state is untouched.
    #[test]
    fn a_second_vendor_scrip_of_a_merchant_does_not_apply() {
        const MERCHANT: Uid = Uid([3; 16]);
        let mut state = created();
        state.scrip.insert(MERCHANT, owned(MERCHANT, 7, 40));
        let request = SavedRequest::new(
            Header::new(Suite::Paper, Label::VendorScripRequest, TX, ME),
            MERCHANT,
            Vec::new(),
            Expect::VendorScripRequest {
                merchant: MERCHANT,
                value: Amount::from_minor(30),
                spent: ScripId([7; 16]),
                spent_value: Amount::from_minor(40),
                deadline: 10,
            },
        )
        .unwrap();
        state
            .apply(&event(2, TX, WalletEvent::RequestSaved { request }))
            .unwrap();
        let mut copy = state.clone();
        assert!(
            copy.apply(&event(
                3,
                TX,
                WalletEvent::VendorScripObtained {
                    scrip: owned(MERCHANT, 8, 30),
                },
            ))
            .is_err()
        );
        // Even the half-applied copy still holds the first scrip, not the second.
        assert_eq!(copy.scrip[&MERCHANT].scrip.id(), ScripId([7; 16]));
    }

    #[test]
    fn a_refusal_keeps_the_request_pending_and_an_abandon_removes_it() {
        let mut state = created();
        state
            .apply(&event(
                2,
                TX,
                WalletEvent::RequestSaved {
                    request: obtain_request(TX),
                },
            ))
            .unwrap();
        state
            .apply(&event(
                3,
                TX,
                WalletEvent::RequestRefused {
                    label: Label::BrokerScripRequest,
                    code: 10,
                    message: "low".into(),
                },
            ))
            .unwrap();
        assert_eq!(
            state.pending[&(TX, Label::BrokerScripRequest)].status,
            PendingStatus::Refused {
                code: 10,
                message: "low".into()
            }
        );
        state
            .apply(&event(
                4,
                TX,
                WalletEvent::RequestAbandoned {
                    label: Label::BrokerScripRequest,
                },
            ))
            .unwrap();
        // Given up, but kept for a late success of a copy still on the network.
        assert_eq!(
            state.pending[&(TX, Label::BrokerScripRequest)].status,
            PendingStatus::Abandoned
        );
        assert_eq!(state.history.len(), 2);
    }
}
