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

use customer_cli::core::{WalletEvent, WalletState};
use customer_cli::store::{WalletProjection, expected_dump};
use shared::Suite;
use shared::events::{Event, EventLog, LogError, ProjectionDump};

use super::walk::{Failure, KeyRing, Named, Node, key_for, variant_name};
use super::{AuditError, Check};

/// The wallet's side of the walk: its state, folded from nothing.
pub(super) struct Wallet {
    suite: Suite,
    state: WalletState,
}

impl Wallet {
    /// A fresh state of `suite`.
    pub fn new(suite: Suite) -> Wallet {
        Wallet {
            suite,
            state: WalletState::default(),
        }
    }
}

impl Node for Wallet {
    type Kind = WalletEvent;

    const NODE_KIND: &'static str = customer_cli::NODE_KIND;
    const KEEPS_ACCOUNTS: bool = false;

    fn kind_name(kind: &WalletEvent) -> String {
        variant_name(&format!("{kind:?}"))
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

    /// The wallet's fold refuses an event its core would never have decided (a scrip
    /// spent that is not held, a reply with no pending request, a second scrip of a
    /// producer): its reason is the finding.
    fn event(&mut self, event: &Event<WalletEvent>, _: &Named) -> Result<(), Failure> {
        self.state.apply(event).map(|_| ()).map_err(|e| {
            Failure::new(
                Check::Ledger,
                "an event the wallet's own fold applies",
                e.reason,
            )
        })
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
