//! The audit of a broker's log (see the module doc of `audit`): chain, postings, evidence,
//! ledger after every event, and the stored tables against the replay. The fold is the
//! broker's own `State::fold`, the one code that turns events into tables (ADR 0006), run
//! here on a fresh state from nothing but the log.

use std::collections::BTreeMap;

use broker::core::{Kind, State};
use broker::store::{LiveProjection, render};
use shared::Suite;
use shared::events::{Event, EventLog, LogError, ProjectionDump};
use shared::node::Recorded;

use super::walk::{Failure, KeyRing, Named, Node, key_for, variant_name};
use super::{AuditError, Check};

/// The broker's side of the walk: its state, folded from nothing.
pub(super) struct Broker {
    suite: Suite,
    state: State,
}

impl Broker {
    /// A fresh state of `suite`.
    pub fn new(suite: Suite) -> Broker {
        Broker {
            suite,
            state: State::new(suite),
        }
    }
}

impl Node for Broker {
    type Kind = Recorded<Kind>;

    const NODE_KIND: &'static str = broker::node::NODE_KIND;
    const KEEPS_ACCOUNTS: bool = true;

    fn kind_name(kind: &Recorded<Kind>) -> String {
        variant_name(&format!("{:?}", kind.kind))
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

    /// The broker's invariant after every event (section 5): accounts sum to zero, none is
    /// below zero, `float:broker` equals the live BrokerScrip.
    fn event(&mut self, event: &Event<Recorded<Kind>>, _: &Named) -> Result<(), Failure> {
        self.state.fold(event);
        self.state.check_conserved().map_err(|e| {
            Failure::new(
                Check::Ledger,
                "accounts summing to zero, none negative, float equal to live scrip",
                e.to_string(),
            )
        })
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
