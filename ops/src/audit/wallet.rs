//! The audit of a customer wallet's log (see the module doc of `audit`): chain, postings (a
//! wallet keeps none), evidence, the wallet's own fold after every event, and the stored
//! tables against the replay. The fold is the wallet's own `WalletState::apply` and the
//! tables its own `expected_dump` (what `Wallet::check_tables` compares at every open).
//!
//! Secrets: the wallet's log is not encrypted as a file, but it holds no secret in the
//! clear (protocol.md section 8): every CustomerSecret and the account `ID` are sealed
//! under the wallet's own key (`customer_cli::sealed`), the PANSecret is never kept. The
//! audit needs neither the wallet's key nor its passphrase: it never opens a sealed secret,
//! and a finding names events, ids and amounts only, never an event's content.
//!
//! Keys: the wallet's first event pins the broker's key and its own (section 1), each
//! checked to hash to its UID; a peer's key arrives only by 6.0b (`PeerKeyCached`), taken
//! once the broker's signature over it (the event's evidence) verified.

use std::collections::BTreeMap;

use customer_cli::core::{Expect, OwnedScrip, PendingStatus, WalletEvent, WalletState};
use customer_cli::store::{WalletProjection, expected_dump};
use shared::events::{Event, EventLog, LogError, ProjectionDump};
use shared::variant::variant_name;
use shared::{Amount, ScripId, Suite};

use super::invariants::{Deadlines, ScripIds, unexpired};
use super::walk::{Failure, KeyRing, Named, Node, key_for};
use super::{AuditError, Check};

/// The wallet's side of the walk: its state, folded from nothing, and what the named
/// invariants remember across events.
pub(super) struct Wallet {
    suite: Suite,
    state: WalletState,
    ids: ScripIds,
    deadlines: Deadlines,
}

impl Wallet {
    /// A fresh state of `suite`.
    pub fn new(suite: Suite) -> Wallet {
        Wallet {
            suite,
            state: WalletState::default(),
            ids: ScripIds::default(),
            deadlines: Deadlines::default(),
        }
    }
}

impl Node for Wallet {
    type Kind = WalletEvent;

    const NODE_KIND: &'static str = customer_cli::NODE_KIND;
    const KEEPS_ACCOUNTS: bool = false;

    fn kind_name(kind: &WalletEvent) -> String {
        variant_name(kind)
    }

    /// Section 1: the wallet pins the broker's key at creation, beside its own.
    fn keys_before_evidence(
        &mut self,
        event: &Event<WalletEvent>,
        keys: &mut KeyRing,
    ) -> Result<(), Failure> {
        if let WalletEvent::WalletCreated { identity } = &event.kind {
            if identity.suite != self.suite {
                return Err(Failure::new(
                    Check::Evidence,
                    format!("a wallet of the log's suite {}", self.suite),
                    format!("suite {}", identity.suite),
                ));
            }
            keys.insert(
                identity.broker,
                key_for(self.suite, &identity.broker, &identity.broker_key)?,
            );
            keys.insert(
                identity.me,
                key_for(self.suite, &identity.me, &identity.my_key)?,
            );
        }
        Ok(())
    }

    /// Section 6.0b: a peer's key, certified by the broker's signature just verified.
    fn keys_after_evidence(
        &mut self,
        event: &Event<WalletEvent>,
        keys: &mut KeyRing,
    ) -> Result<(), Failure> {
        if let WalletEvent::PeerKeyCached { uid, spki_der } = &event.kind {
            let broker = self.state.broker();
            if event.evidence.is_empty() || event.evidence.iter().any(|e| Some(e.signer) != broker)
            {
                return Err(Failure::new(
                    Check::Evidence,
                    format!("the key of {uid} certified by the pinned broker (6.0b)"),
                    format!(
                        "evidence signed by {}",
                        event
                            .evidence
                            .iter()
                            .map(|e| e.signer.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            keys.insert(*uid, key_for(self.suite, uid, spki_der)?);
        }
        Ok(())
    }

    /// The named invariants first (see [`before`]); then the wallet's fold, which refuses
    /// an event its core would never have decided (a scrip spent that is not held, a reply
    /// with no pending request, a second scrip of a producer): its reason is the finding.
    fn event(&mut self, event: &Event<WalletEvent>, named: &Named) -> Result<(), Failure> {
        before(&self.state, &mut self.ids, event)?;
        match &event.kind {
            // The wallet's part of 6.2, 6.5 and 6.7: the broker's or the merchant's deadline.
            WalletEvent::ExchangeNoticed { deadline, .. }
            | WalletEvent::VendorTopUpAcked { deadline }
            | WalletEvent::VendorWithdrawAcked { deadline } => {
                self.deadlines.open(event.tx, *deadline, named);
            }
            _ => {}
        }
        self.state.apply(event).map_err(|e| {
            Failure::new(
                Check::Ledger,
                "an event the wallet's own fold applies",
                e.reason,
            )
        })?;
        let open = self
            .state
            .pending
            .iter()
            .any(|((tx, _), p)| *tx == event.tx && p.status != PendingStatus::Abandoned);
        if !open {
            self.deadlines.close(&event.tx);
        }
        Ok(())
    }

    fn finish(&mut self, last: Option<&Event<WalletEvent>>) -> Result<(), (Named, Failure)> {
        last.map_or(Ok(()), |last| self.deadlines.check(last.time))
    }

    fn rendered(&self) -> Result<ProjectionDump, AuditError> {
        expected_dump(&self.state).map_err(|e| AuditError::Render(e.to_string()))
    }

    fn stored(log: &EventLog<WalletEvent>) -> Result<ProjectionDump, LogError> {
        log.dump_projection(&WalletProjection::default())
    }

    /// The value held, by producer (`scrip:broker` for the BrokerScrip).
    fn balances(&self) -> BTreeMap<String, i128> {
        let broker = self.state.broker();
        self.state
            .scrip
            .iter()
            .map(|(producer, owned)| {
                let name = if Some(*producer) == broker {
                    "scrip:broker".to_owned()
                } else {
                    format!("scrip:{producer}")
                };
                (name, i128::from(owned.scrip.value().minor()))
            })
            .collect()
    }
}

/// What a spend and a receipt of scrip must satisfy, checked against the state before the
/// event: the scrip spent is spent once (`SpentOnce`), held by the wallet, not committed to
/// another transaction's request and (but in a renewal) unexpired when its request was
/// saved (`LiveSpend`); what comes back is what was consumed less what was paid, or the
/// value asked for (`Change`); a scrip received has an id never held before
/// (`ScripIssuedOnce`).
fn before(
    state: &WalletState,
    ids: &mut ScripIds,
    event: &Event<WalletEvent>,
) -> Result<(), Failure> {
    let pending = event
        .kind
        .answers()
        .and_then(|label| state.pending.get(&(event.tx, label)));
    let expect = pending.map(|p| &p.request.expect);
    let value_of =
        |scrip: &Option<OwnedScrip>| scrip.as_ref().map_or(Amount::ZERO, |s| s.scrip.value());
    // The scrip spent and what must come back for it; then the scrip received.
    let (spend, received): (Option<Spend>, Option<&OwnedScrip>) = match &event.kind {
        WalletEvent::BrokerScripObtained { scrip } | WalletEvent::VendorScripObtained { scrip } => {
            (None, Some(scrip))
        }
        WalletEvent::BrokerScripToppedUp { spent, scrip } => {
            let asked = match expect {
                Some(Expect::TopUpBrokerScrip { new_value, .. }) => Some(*new_value),
                _ => None,
            };
            (
                Some(Spend::new(*spent, false, asked, scrip.scrip.value())),
                Some(scrip),
            )
        }
        WalletEvent::BrokerScripWithdrawn { spent, value } => {
            let held = held_value(state, *spent);
            (Some(Spend::new(*spent, false, held, *value)), None)
        }
        WalletEvent::ScripRenewed { spent, scrip } => {
            let held = held_value(state, *spent);
            (
                Some(Spend::new(*spent, true, held, scrip.scrip.value())),
                Some(scrip),
            )
        }
        WalletEvent::ExchangeSettled {
            spent,
            outcome,
            change,
        } if outcome.is_ok() => {
            let rest = match expect {
                Some(Expect::VendorScripRequest { value, .. }) => {
                    held_value(state, *spent).and_then(|held| held.checked_sub(*value).ok())
                }
                _ => None,
            };
            (
                Some(Spend::new(*spent, false, rest, value_of(change))),
                change.as_ref(),
            )
        }
        WalletEvent::VendorTopUpSettled {
            spent,
            outcome,
            change,
        } if outcome.is_ok() => {
            let rest = match expect {
                Some(Expect::VendorTopUp { top_up, .. }) => {
                    held_value(state, *spent).and_then(|held| held.checked_sub(*top_up).ok())
                }
                _ => None,
            };
            (
                Some(Spend::new(*spent, false, rest, value_of(change))),
                change.as_ref(),
            )
        }
        WalletEvent::ItemBought {
            spent,
            change,
            receipt,
            ..
        } => {
            let rest =
                held_value(state, *spent).and_then(|held| held.checked_sub(receipt.paid).ok());
            (
                Some(Spend::new(*spent, false, rest, value_of(change))),
                change.as_ref(),
            )
        }
        WalletEvent::VendorScripToppedUp { spent, scrip } => {
            let asked = match expect {
                Some(Expect::VendorTopUp { new_value, .. }) => Some(*new_value),
                _ => None,
            };
            (
                Some(Spend::new(*spent, false, asked, scrip.scrip.value())),
                Some(scrip),
            )
        }
        WalletEvent::VendorWithdrawDecided {
            spent,
            outcome,
            value,
        } if outcome.is_ok() => {
            let held = held_value(state, *spent);
            (Some(Spend::new(*spent, false, held, *value)), None)
        }
        _ => (None, None),
    };
    if let Some(Spend {
        id,
        renewal,
        expected,
        found,
    }) = spend
    {
        ids.spend(id)?;
        let held = state
            .scrip
            .values()
            .find(|s| s.scrip.id() == id)
            .ok_or_else(|| {
                Failure::new(
                    Check::LiveSpend,
                    format!("scrip {id} held by the wallet"),
                    "not held (spent, or never received)".to_owned(),
                )
            })?;
        if let Some(other) = state
            .pending
            .values()
            .find(|p| p.request.tx() != event.tx && p.committed_scrips().contains(&id))
        {
            return Err(Failure::new(
                Check::LiveSpend,
                format!("scrip {id} spent by the request it is committed to"),
                format!(
                    "committed to {} of tx {}",
                    other.request.label(),
                    other.request.tx()
                ),
            ));
        }
        if let (false, Some(pending)) = (renewal, pending) {
            unexpired(&held.scrip.body, pending.saved_at)?;
        }
        if expected != Some(found) {
            return Err(Failure::new(
                Check::Change,
                format!(
                    "{} back for scrip {id} (consumed less paid, or the value asked)",
                    expected.map_or_else(
                        || "no pending request to say what".to_owned(),
                        |v| v.to_string()
                    )
                ),
                found.to_string(),
            ));
        }
    }
    if let Some(received) = received {
        ids.issue(received.scrip.id())?;
    }
    Ok(())
}

/// A scrip an event spends, and what must come back for it.
struct Spend {
    /// The scrip spent.
    id: ScripId,
    /// Whether it may be expired (6.8).
    renewal: bool,
    /// The value that must come back or be credited, if the wallet's records say.
    expected: Option<Amount>,
    /// What came back or was credited.
    found: Amount,
}

impl Spend {
    fn new(id: ScripId, renewal: bool, expected: Option<Amount>, found: Amount) -> Spend {
        Spend {
            id,
            renewal,
            expected,
            found,
        }
    }
}

/// The value of the scrip `id` the wallet holds, if it does.
fn held_value(state: &WalletState, id: ScripId) -> Option<Amount> {
    state
        .scrip
        .values()
        .find(|s| s.scrip.id() == id)
        .map(|s| s.scrip.value())
}
