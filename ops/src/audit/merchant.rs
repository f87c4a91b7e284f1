//! The audit of a merchant's log (see the module doc of `audit`): chain, postings (a
//! merchant keeps none), evidence, the merchant's books after every event, and the stored
//! tables against the replay. The fold is the merchant's own `State::try_apply` and the
//! tables its own `rows_of` (what `MerchantNode::check_tables` compares at every start),
//! run here on a fresh state from nothing but the log.
//!
//! The merchant's fold refuses an event that moves a three-party transaction out of order
//! (its transition function, asked here first: `transition`), and trusts its `decide` for
//! the rest: it asserts (in debug builds) that a scrip it spends is live, that a purchase
//! conserves value, that no id is issued twice. A forged log breaks exactly those, so each
//! is checked here *before* the event is folded, and named as a finding instead.
//!
//! Keys: a merchant's log holds none (the daemon keeps the customers' keys it fetched by
//! 6.0b in `peers/` beside it), so the broker's key is pinned with `--keys`, and the
//! customers' with `--keys` too, or taken from the broker's log (`--broker-log`: the keys
//! it registered, 6.0), or read from the data directory's `peers/`.

use std::collections::BTreeMap;

use merchant::core::events::{Escrow, Kind};
use merchant::core::machine::TopUpState;
use merchant::core::state::{Awaiting, State, Tables};
use merchant::store::{Mirror, rows_of};
use shared::events::{Event, EventLog, LogError, ProjectionDump};
use shared::node::{Recorded, ScripState, TxKind};
use shared::{Amount, ScripBody, ScripId, TxId, Uid};

use super::invariants::{Deadlines, ScripIds, legal_move, stored_replies, unexpired};
use super::walk::{Failure, Named, Node};
use super::{AuditError, Check};

type MerchantEvent = Event<Recorded<Kind>>;

/// The merchant's side of the walk: its state, folded from nothing, and what the named
/// invariants remember across events.
pub(super) struct Merchant {
    state: State,
    ids: ScripIds,
    deadlines: Deadlines,
}

impl Merchant {
    /// A fresh state (no peer keys: the fold needs none).
    pub fn new() -> Merchant {
        Merchant {
            state: State::new(),
            ids: ScripIds::default(),
            deadlines: Deadlines::default(),
        }
    }
}

impl Node for Merchant {
    type Kind = Recorded<Kind>;

    const NODE_KIND: &'static str = merchant::node::NODE_KIND;
    const KEEPS_ACCOUNTS: bool = false;
    const BRINGS_KEYS: bool = false;

    fn kind_name(kind: &Recorded<Kind>) -> String {
        kind.kind.name().to_owned()
    }

    /// The move the event makes in its three-party transaction (the merchant's own
    /// transition function), what the fold takes for granted (see [`before`]), then the
    /// books after it.
    fn event(&mut self, event: &MerchantEvent, named: &Named) -> Result<(), Failure> {
        let moved = legal_move(self.state.transition(&event.tx, &event.kind.kind))?;
        before(&self.state.tables, &mut self.ids, event)?;
        let t = &self.state.tables;
        stored_replies(event.tx, &event.kind.sent, |key| {
            t.replies.get(key).is_some()
        })?;
        // 6.5, 6.7: the escrow is the merchant's part of a three-party transaction, until
        // the merchant acts on the broker's decision.
        if let Kind::VendorEscrowOpened { until, .. } = &event.kind.kind {
            self.deadlines.open(event.tx, *until, named);
        }
        if moved.is_some_and(|m| m.is_final()) {
            self.deadlines.close(&event.tx);
        }
        legal_move(self.state.try_apply(event).map_err(|e| e.transition))?;
        books(&self.state)
    }

    fn finish(&mut self, last: Option<&MerchantEvent>) -> Result<(), (Named, Failure)> {
        last.map_or(Ok(()), |last| self.deadlines.check(last.time))
    }

    fn rendered(&self) -> Result<ProjectionDump, AuditError> {
        rows_of(&self.state).map_err(|e| AuditError::Render(e.to_string()))
    }

    fn stored(log: &EventLog<Recorded<Kind>>) -> Result<ProjectionDump, LogError> {
        log.dump_projection(&Mirror::new(State::new()))
    }

    fn balances(&self) -> BTreeMap<String, i128> {
        let books = &self.state.tables.books;
        let live = self.state.live_value().unwrap_or_default();
        [
            ("books:issued", books.issued),
            ("books:paid", books.paid),
            ("books:withdrawn", books.withdrawn),
            ("live", live),
        ]
        .into_iter()
        .map(|(name, amount)| (name.to_owned(), i128::from(amount.minor())))
        .collect()
    }
}

/// The merchant's ledger after every event (protocol.md section 4, "Value is conserved"):
/// every unit it issued against the broker's payment is still live, paid for goods, or
/// withdrawn: `issued = live + paid + withdrawn`.
fn books(state: &State) -> Result<(), Failure> {
    let ledger = |found: String| {
        Failure::new(
            Check::Ledger,
            "books with issued = live + paid + withdrawn",
            found,
        )
    };
    let b = &state.tables.books;
    let live = state
        .live_value()
        .map_err(|e| ledger(format!("live value: {e}")))?;
    let accounted = live
        .checked_add(b.paid)
        .and_then(|sum| sum.checked_add(b.withdrawn))
        .map_err(|e| ledger(format!("live + paid + withdrawn: {e}")))?;
    if accounted == b.issued {
        Ok(())
    } else {
        Err(ledger(format!(
            "issued {}, live {live} + paid {} + withdrawn {} = {accounted}",
            b.issued, b.paid, b.withdrawn
        )))
    }
}

/// What the fold takes for granted about an event, checked against the tables before it
/// (see the module doc), each under the invariant it belongs to: a spent id is spent once
/// (`SpentOnce`) and was live, unexpired, unheld and its owner's (`LiveSpend`), the change
/// is what was consumed less what was paid (`Change`), an issued id is new
/// (`ScripIssuedOnce`); what is left is the books' and the bindings' (`Ledger`).
fn before(t: &Tables, ids: &mut ScripIds, event: &MerchantEvent) -> Result<(), Failure> {
    let tx = event.tx;
    match &event.kind.kind {
        Kind::VendorScripIssued { scrip, .. } => {
            ids.issue(scrip.scrip_id)?;
            sum("issued", t.books.issued, scrip.value)?;
        }
        Kind::PurchaseMade {
            customer,
            spent,
            change,
            receipt,
            ..
        } => {
            ids.spend(spent.scrip_id)?;
            spendable(t, spent, *customer)?;
            unexpired(spent, event.time)?;
            let change_value = change.map_or(Amount::ZERO, |c| c.value);
            let expected = spent.value.checked_sub(receipt.paid).ok();
            if expected != Some(change_value) || change.is_some_and(|c| c.value == Amount::ZERO) {
                return Err(Failure::new(
                    Check::Change,
                    format!(
                        "change = consumed {} - paid {} (none when zero)",
                        spent.value, receipt.paid
                    ),
                    format!("change {change_value}"),
                ));
            }
            if let Some(change) = change {
                ids.issue(change.scrip_id)?;
            }
            bound(t, tx, TxKind::BuyItem)?;
            sum("paid", t.books.paid, receipt.paid)?;
        }
        Kind::ScripRenewed { owner, old, new } => {
            ids.spend(old.scrip_id)?;
            // 6.8: renewal accepts an expired scrip, so only live-ness and owner matter.
            spendable(t, old, *owner)?;
            if new.value != old.value {
                return Err(Failure::new(
                    Check::Change,
                    format!("a renewal keeping the value {}", old.value),
                    format!("new value {}", new.value),
                ));
            }
            ids.issue(new.scrip_id)?;
            bound(t, tx, TxKind::Renew)?;
        }
        Kind::ExchangeRequested { .. } => bound(t, tx, TxKind::ObtainVendorScrip)?,
        Kind::VendorEscrowOpened {
            customer,
            scrip_id,
            escrow,
            ..
        } => {
            // The hold commits the scrip to this tx: it must be spendable now.
            let record = live_record(t, scrip_id)?;
            if record.owner != *customer {
                return Err(Failure::new(
                    Check::LiveSpend,
                    format!("scrip {scrip_id} held for its owner {customer}"),
                    format!("owner {}", record.owner),
                ));
            }
            unexpired(&record.body, event.time)?;
            let kind = match escrow {
                Escrow::TopUp { .. } => TxKind::TopUpVendorScrip,
                Escrow::Withdraw { .. } => TxKind::WithdrawVendorScrip,
            };
            bound(t, tx, kind)?;
        }
        Kind::VendorTopUpDeclined { .. } => bound(t, tx, TxKind::TopUpVendorScrip)?,
        Kind::VendorScripToppedUp { old, new, .. } => {
            ids.spend(old.scrip_id)?;
            held_here(t, old, tx)?;
            // 6.5 step 3: the merchant undertook to issue V1 of W_V1 = V0.value + W_V.
            let undertaken = match t.awaiting.get(&tx) {
                Some(Awaiting::TopUp {
                    state: TopUpState::Accepted { held },
                    new_value,
                    ..
                }) if *held == old.scrip_id => Some(*new_value),
                _ => None,
            };
            if undertaken != Some(new.value) {
                return Err(Failure::new(
                    Check::Change,
                    format!(
                        "V1 of the value accepted for V0 {} ({})",
                        old.scrip_id,
                        undertaken
                            .map_or_else(|| "no accepted top-up".to_owned(), |v| v.to_string())
                    ),
                    format!("V1 of {}", new.value),
                ));
            }
            let added = new.value.checked_sub(old.value).map_err(|_| {
                Failure::new(
                    Check::Change,
                    format!("a top-up raising the value {}", old.value),
                    format!("new value {}", new.value),
                )
            })?;
            ids.issue(new.scrip_id)?;
            sum("issued", t.books.issued, added)?;
        }
        Kind::VendorScripWithdrawn { spent, .. } => {
            ids.spend(spent.scrip_id)?;
            held_here(t, spent, tx)?;
            // 6.7: W = V0.value, all of it credited, no change.
            let asked = match t.awaiting.get(&tx) {
                Some(Awaiting::Withdraw { held, value, .. }) if *held == spent.scrip_id => {
                    Some(*value)
                }
                _ => None,
            };
            if asked != Some(spent.value) {
                return Err(Failure::new(
                    Check::Change,
                    format!(
                        "a withdrawal of all of V0 {}, {}",
                        spent.scrip_id, spent.value
                    ),
                    asked.map_or_else(|| "no withdrawal asked".to_owned(), |v| v.to_string()),
                ));
            }
            sum("withdrawn", t.books.withdrawn, spent.value)?;
        }
        Kind::VendorEscrowReleased { scrip_id, .. } => {
            let held = t.live.held_by(scrip_id, tx).is_ok();
            if !held {
                return Err(Failure::new(
                    Check::Ledger,
                    format!("scrip {scrip_id} held by this tx's escrow, to release"),
                    "not held by it".to_owned(),
                ));
            }
        }
        Kind::ScripLapsed { owner, scrip, .. } => {
            // Section 4: only a live, unheld scrip of its owner lapses, once, and only once
            // it has expired (its grace is the merchant's configuration, not in the log).
            ids.spend(scrip.scrip_id)?;
            spendable(t, scrip, *owner)?;
            if event.time.to_secs().get() <= scrip.expires {
                let expires = shared::UnixSecs::new(scrip.expires);
                return Err(Failure::new(
                    Check::LiveSpend,
                    format!(
                        "scrip {} lapsing after its expiry {}",
                        scrip.scrip_id,
                        expires.utc()
                    ),
                    format!(
                        "lapsed at {}, while the scrip {}",
                        event.time.utc(),
                        customer_cli::cli::output::relative(expires, event.time.to_secs())
                    ),
                ));
            }
            bound(t, tx, TxKind::Lapse)?;
            sum("withdrawn", t.books.withdrawn, scrip.value)?;
        }
        Kind::PurchaseReported
        | Kind::LapseReported
        | Kind::ExchangeRefused { .. }
        | Kind::VendorTopUpClosed => {}
    }
    Ok(())
}

/// The live row of `id`, `Live` (not held): `LiveSpend`.
fn live_record<'t>(t: &'t Tables, id: &ScripId) -> Result<&'t shared::node::LiveRecord, Failure> {
    let record = t.live.get(id).ok_or_else(|| {
        Failure::new(
            Check::LiveSpend,
            format!("scrip {id} live"),
            "not in the live table (spent or never issued)".to_owned(),
        )
    })?;
    if record.state != ScripState::Live {
        return Err(Failure::new(
            Check::LiveSpend,
            format!("scrip {id} live, not held"),
            format!("{:?}", record.state),
        ));
    }
    Ok(record)
}

/// A scrip spent by its owner (section 4's validation against the table): live, not held,
/// the body as recorded, `owner` its recorded owner. `LiveSpend`.
fn spendable(t: &Tables, body: &ScripBody, owner: Uid) -> Result<(), Failure> {
    let record = live_record(t, &body.scrip_id)?;
    if record.body != *body || record.owner != owner {
        return Err(Failure::new(
            Check::LiveSpend,
            format!(
                "scrip {} spent as recorded, by its owner {}",
                body.scrip_id, record.owner
            ),
            format!("another body or owner {owner}"),
        ));
    }
    Ok(())
}

/// A scrip the decision of `tx`'s escrow spends: held by that escrow, as recorded.
/// `LiveSpend` (held by this tx, not another).
fn held_here(t: &Tables, body: &ScripBody, tx: TxId) -> Result<(), Failure> {
    match t.live.held_by(&body.scrip_id, tx) {
        Ok(record) if record.body == *body => Ok(()),
        Ok(_) => Err(Failure::new(
            Check::LiveSpend,
            format!("scrip {} spent as recorded", body.scrip_id),
            "another body".to_owned(),
        )),
        Err(e) => Err(Failure::new(
            Check::LiveSpend,
            format!("scrip {} held by the escrow of tx {tx}", body.scrip_id),
            e.to_string(),
        )),
    }
}

/// Section 7: a tx keeps the kind of its first event.
fn bound(t: &Tables, tx: TxId, kind: TxKind) -> Result<(), Failure> {
    match t.bindings.get(&tx) {
        Some(binding) if binding.kind != kind => Err(Failure::new(
            Check::Ledger,
            format!("tx {tx} of one kind of transaction, {kind:?}"),
            format!("bound to {:?}", binding.kind),
        )),
        _ => Ok(()),
    }
}

/// A book that can take `add` more without overflowing.
fn sum(book: &str, total: Amount, add: Amount) -> Result<(), Failure> {
    total.checked_add(add).map(|_| ()).map_err(|e| {
        Failure::new(
            Check::Ledger,
            format!("books:{book} {total} + {add} in range"),
            e.to_string(),
        )
    })
}
