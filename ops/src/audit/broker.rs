//! The audit of a broker's log (see the module doc of `audit`): chain, postings, evidence,
//! ledger after every event, and the stored tables against the replay. The fold is the
//! broker's own `State::fold`, the one code that turns events into tables (ADR 0006), run
//! here on a fresh state from nothing but the log; whether an event may move its
//! three-party transaction is the broker's own transition function (`State::transition`),
//! asked first of the broker's own checks.

use std::collections::BTreeMap;
use std::path::Path;

use broker::core::{Kind, State};
use broker::store::{LiveProjection, render};
use shared::events::{Event, EventLog, LogError, ProjectionDump};
use shared::node::{Recorded, ScripState};
use shared::variant::variant_name;
use shared::{Amount, PublicKey, ScripBody, ScripId, Suite, TxId, Uid};

use super::invariants::{Deadlines, ScripIds, legal_move, stored_replies, unexpired};
use super::walk::{Failure, KeyRing, Named, Node, key_for};
use super::{AuditError, Check};

/// The broker's side of the walk: its state, folded from nothing, and what the named
/// invariants remember across events.
pub(super) struct Broker {
    suite: Suite,
    state: State,
    ids: ScripIds,
    deadlines: Deadlines,
}

impl Broker {
    /// A fresh state of `suite`.
    pub fn new(suite: Suite) -> Broker {
        Broker {
            suite,
            state: State::new(suite),
            ids: ScripIds::default(),
            deadlines: Deadlines::default(),
        }
    }
}

impl Node for Broker {
    type Kind = Recorded<Kind>;

    const NODE_KIND: &'static str = broker::node::NODE_KIND;
    const KEEPS_ACCOUNTS: bool = true;

    fn kind_name(kind: &Recorded<Kind>) -> String {
        variant_name(&kind.kind)
    }

    /// A registration (6.0) is signed by the key it registers, which must hash to the UID.
    fn keys_before_evidence(
        &mut self,
        event: &Event<Recorded<Kind>>,
        keys: &mut KeyRing,
    ) -> Result<(), Failure> {
        if let Kind::PeerRegistered { uid, spki_der, .. } = &event.kind.kind {
            keys.insert(*uid, key_for(self.suite, uid, spki_der)?);
        }
        Ok(())
    }

    /// The move the event makes in its three-party transaction (the broker's own
    /// transition function), the named invariants before the event (see [`before`]), then
    /// the broker's invariant after it (section 5): accounts sum to zero, none is below
    /// zero, `float:broker` equals the live BrokerScrip.
    fn event(&mut self, event: &Event<Recorded<Kind>>, named: &Named) -> Result<(), Failure> {
        let moved = legal_move(self.state.transition(&event.tx, &event.kind.kind))?;
        before(&self.state, &mut self.ids, event)?;
        let replies = &self.state.replies;
        stored_replies(event.tx, &event.kind.sent, |key| replies.get(key).is_some())?;
        // 6.2 and 6.5: the broker is the decision point, and enforces each deadline until
        // the transaction ends.
        if let Kind::ExchangeOpened { deadline, .. } | Kind::EscrowOpened { deadline, .. } =
            &event.kind.kind
        {
            self.deadlines.open(event.tx, *deadline, named);
        }
        if moved.is_some_and(|m| m.is_final()) {
            self.deadlines.close(&event.tx);
        }
        let touched = legal_move(self.state.fold(event).map_err(|e| e.transition))?;
        // What the event changed is enough: its postings were checked to balance before it
        // was folded (`walk::check_postings`), so the accounts still sum to zero, as they
        // did from the empty state on (`State::check_touched`).
        self.state.check_touched(&touched).map_err(|e| {
            Failure::new(
                Check::Ledger,
                "accounts summing to zero, none negative, float equal to live scrip",
                e.to_string(),
            )
        })
    }

    fn finish(&mut self, last: Option<&Event<Recorded<Kind>>>) -> Result<(), (Named, Failure)> {
        last.map_or(Ok(()), |last| self.deadlines.check(last.time))
    }

    fn rendered(&self) -> Result<ProjectionDump, AuditError> {
        render(&self.state).map_err(|e| AuditError::Render(e.to_string()))
    }

    fn stored(log: &EventLog<Recorded<Kind>>) -> Result<ProjectionDump, LogError> {
        log.dump_projection(&LiveProjection::new(&mut State::new(log.identity().suite)))
    }

    fn balances(&self) -> BTreeMap<String, i128> {
        self.state
            .accounts
            .iter()
            .map(|(account, balance)| (account.to_string(), *balance))
            .collect()
    }
}

/// The keys the broker's log at `path` registered (6.0), for the audit of another node's
/// log (registered keys come from the broker's log): a merchant's log holds
/// none. The log must be a broker's of `suite` whose chain verifies; audit it too, for the
/// rest.
pub(super) fn registered_keys(path: &Path, suite: Suite) -> Result<Vec<PublicKey>, AuditError> {
    let refuse = |reason: String| AuditError::Key {
        path: path.to_owned(),
        reason,
    };
    let log =
        EventLog::<Recorded<Kind>>::open_existing(path).map_err(|source| AuditError::Open {
            path: path.to_owned(),
            source,
        })?;
    let identity = log.identity();
    if identity.node_kind != broker::node::NODE_KIND || identity.suite != suite {
        return Err(refuse(format!(
            "a {} log of the {} suite, not the broker's log of the {suite} suite",
            identity.node_kind, identity.suite
        )));
    }
    log.verify_chain()
        .map_err(|e| refuse(format!("its chain does not verify: {e}")))?;
    let mut keys = Vec::new();
    for event in log.iter().map_err(|e| refuse(e.to_string()))? {
        let event = event.map_err(|e| refuse(e.to_string()))?;
        if let Kind::PeerRegistered { uid, spki_der, .. } = &event.kind.kind {
            let key = key_for(suite, uid, spki_der)
                .map_err(|f| refuse(format!("event {}: {}", event.seq, f.found)))?;
            keys.push(key);
        }
    }
    Ok(keys)
}

/// The named invariants of an event that issues or spends BrokerScrip, checked against the
/// state before it (the broker's fold asserts them in debug builds): a spent id is spent
/// once (`SpentOnce`) and was live, its owner's, not held by another transaction and (but
/// in a renewal, or the decision of the escrow that holds it) unexpired (`LiveSpend`); the
/// change is what was consumed less what was paid, a withdrawal credits all of it, a
/// renewal keeps it (`Change`); an issued id is new (`ScripIssuedOnce`). That a decision
/// has its exchange or escrow open is the transition check's, before these.
fn before(state: &State, ids: &mut ScripIds, event: &Event<Recorded<Kind>>) -> Result<(), Failure> {
    let tx = event.tx;
    // The scrip spent and what must come back for it; then the scrip issued.
    let (spend, issued): (Option<Spend>, Option<&ScripBody>) = match &event.kind.kind {
        Kind::BrokerScripIssued { scrip, .. } => (None, Some(scrip)),
        Kind::BrokerScripToppedUp {
            customer,
            spent,
            issued,
        } => {
            // 6.4: W_new > B0.value; the difference comes from the bank account.
            let at_least = value_of(state, spent).filter(|v| issued.value > *v);
            let expected = at_least.map(|_| issued.value);
            let spend = Spend::of(Standing::Live, *spent, *customer, expected, issued.value);
            (Some(spend), Some(issued))
        }
        Kind::BrokerScripWithdrawn {
            customer,
            spent,
            value,
        } => {
            let expected = value_of(state, spent);
            let spend = Spend::of(Standing::Live, *spent, *customer, expected, *value);
            (Some(spend), None)
        }
        Kind::ScripRenewed {
            customer,
            spent,
            issued,
        } => {
            let expected = value_of(state, spent);
            let spend = Spend::of(Standing::Renewal, *spent, *customer, expected, issued.value);
            (Some(spend), Some(issued))
        }
        Kind::ExchangeAuthorized {
            customer,
            value: paid,
            spent,
            change,
            ..
        }
        | Kind::VendorTopUpSettled {
            customer,
            top_up: paid,
            spent,
            change,
            ..
        } => {
            // 6.2 step 4 pays from B0, live; 6.5 step 4 from the B0 its escrow holds.
            let standing = if matches!(event.kind.kind, Kind::VendorTopUpSettled { .. }) {
                Standing::HeldHere
            } else {
                Standing::Live
            };
            let rest = value_of(state, spent).and_then(|v| v.checked_sub(*paid).ok());
            let change_value = change.map_or(Amount::ZERO, |c| c.value);
            let spend = Spend::of(standing, *spent, *customer, rest, change_value);
            (Some(spend), change.as_ref())
        }
        Kind::EscrowOpened {
            customer, scrip, ..
        } => {
            // The hold commits B0 to this tx: it must be spendable now.
            let body = live(state, scrip, *customer, None)?;
            unexpired(body, event.time)?;
            (None, None)
        }
        Kind::EscrowReleased { scrip, .. } => {
            if state.live.held_by(scrip, tx).is_err() {
                return Err(Failure::new(
                    Check::Ledger,
                    format!("scrip {scrip} held by this tx's escrow, to release"),
                    "not held by it".to_owned(),
                ));
            }
            (None, None)
        }
        Kind::ScripLapsed { scrip_id, .. } => {
            ids.spend(*scrip_id)?;
            if state.live.get(scrip_id).is_none() {
                return Err(Failure::new(
                    Check::Ledger,
                    format!("scrip {scrip_id} live, to lapse"),
                    "not in the live table".to_owned(),
                ));
            }
            (None, None)
        }
        _ => (None, None),
    };
    if let Some(spend) = spend {
        ids.spend(spend.id)?;
        let held_here = (spend.standing == Standing::HeldHere).then_some(tx);
        let body = live(state, &spend.id, spend.owner, held_here)?;
        // A renewal takes an expired scrip (6.8); a held one was unexpired when its escrow
        // took it, and may expire while held (section 4: only its decision ends the hold).
        if spend.standing == Standing::Live {
            unexpired(body, event.time)?;
        }
        if spend.expected != Some(spend.found) {
            return Err(Failure::new(
                Check::Change,
                format!(
                    "{} for scrip {} (consumed less paid, all of it, or the value kept)",
                    spend.expected.map_or_else(
                        || "a value the records justify".to_owned(),
                        |v| v.to_string()
                    ),
                    spend.id
                ),
                spend.found.to_string(),
            ));
        }
        if issued.is_some_and(|i| i.value == Amount::ZERO) {
            return Err(Failure::new(
                Check::Change,
                "no change scrip when the change is zero",
                "a scrip of zero".to_owned(),
            ));
        }
    }
    if let Some(issued) = issued {
        ids.issue(issued.scrip_id)?;
    }
    Ok(())
}

/// Where a BrokerScrip an event spends must stand (section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Standing {
    /// Live (not held) and unexpired: every spend but those below.
    Live,
    /// Held by the escrow of this tx, whose decision spends it (6.5); it may have expired
    /// while held.
    HeldHere,
    /// Live, and possibly expired: a renewal (6.8).
    Renewal,
}

/// A BrokerScrip an event spends, and what must come back for it.
struct Spend {
    /// Where it must stand.
    standing: Standing,
    /// The scrip.
    id: ScripId,
    /// Its owner, who spends it.
    owner: Uid,
    /// What must come back or be credited, as the records say.
    expected: Option<Amount>,
    /// What came back or was credited.
    found: Amount,
}

impl Spend {
    fn of(
        standing: Standing,
        id: ScripId,
        owner: Uid,
        expected: Option<Amount>,
        found: Amount,
    ) -> Spend {
        Spend {
            standing,
            id,
            owner,
            expected,
            found,
        }
    }
}

/// `LiveSpend`: `id` is live and `owner`'s, and `Live` (or, with `held_by`, held by that
/// tx's escrow). Its body, to check its expiry.
fn live<'s>(
    state: &'s State,
    id: &ScripId,
    owner: Uid,
    held_by: Option<TxId>,
) -> Result<&'s ScripBody, Failure> {
    let fail = |expected: String, found: String| Failure::new(Check::LiveSpend, expected, found);
    let record = state.live.get(id).ok_or_else(|| {
        fail(
            format!("scrip {id} live"),
            "not in the live table (spent or never issued)".to_owned(),
        )
    })?;
    let state_ok = match held_by {
        None => record.state == ScripState::Live,
        Some(tx) => matches!(record.state, ScripState::Held { tx: t, .. } if t == tx),
    };
    if !state_ok {
        return Err(fail(
            format!("scrip {id} not held by another transaction"),
            format!("{:?}", record.state),
        ));
    }
    if record.owner != owner {
        return Err(fail(
            format!("scrip {id} spent by its owner {}", record.owner),
            format!("spent by {owner}"),
        ));
    }
    Ok(&record.body)
}

/// The value of the live scrip `id`.
fn value_of(state: &State, id: &ScripId) -> Option<Amount> {
    state.live.get(id).map(|r| r.body.value)
}
