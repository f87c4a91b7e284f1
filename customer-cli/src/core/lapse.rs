//! Lapse (protocol.md section 4), the customer's side: what the wallet may still count as
//! held.
//!
//! A scrip is renewable (6.8) for a grace period after it expires; when the grace ends, its
//! producer removes it (`ScripLapsed`) and its value goes back to the owner's bank account,
//! never lost. The producer does not tell the wallet: the wallet learns it for sure only
//! when it next presents the scrip and is refused `Lapsed` (the `RequestRefused` fold in
//! `state`, which then drops the scrip). Until then the wallet judges by its own clock and
//! the grace it is configured with (the deployment's, default one year): a scrip past
//! `expires + grace` is shown as lapsed, its value as gone back to the bank account, and
//! not counted in what the wallet holds. The rule is the producers' own (`now > expires +
//! grace`, as the broker's and merchant's lapse timers apply it). A scrip that a pending
//! request presents is still counted until that request's outcome is in: it may be held in
//! an escrow, which a producer never lapses (section 4: a hold ends only by its own event),
//! or spent or renewed by the request.
//!
//! Nothing here changes the state: this is a view, and `now` is an argument (no clock is
//! read in the core).

use shared::UnixSecs;

use super::events::OwnedScrip;
use super::state::WalletState;

/// The renewal grace a wallet assumes when its configuration names none: one year, the
/// default of protocol.md section 4.
pub const DEFAULT_GRACE_SECS: u64 = 365 * 24 * 3600;

/// The last second at which `owned` may still be renewed: its expiry plus `grace_secs`.
#[must_use]
pub fn grace_end(owned: &OwnedScrip, grace_secs: u64) -> u64 {
    owned.scrip.body.expires.saturating_add(grace_secs)
}

/// The wallet's scrip, split into what it holds and what has lapsed by `now`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holdings<'a> {
    /// Scrip the wallet holds (live, expired but renewable, or presented by a pending
    /// request), in producer order.
    pub held: Vec<&'a OwnedScrip>,
    /// Scrip whose renewal grace ended before `now`: its producer removed it and its
    /// value went back to the owner's bank account. In producer order.
    pub lapsed: Vec<&'a OwnedScrip>,
}

/// Splits the scrip of `state` at `now` under a renewal grace of `grace_secs`.
#[must_use]
pub fn holdings(state: &WalletState, now: UnixSecs, grace_secs: u64) -> Holdings<'_> {
    let mut out = Holdings::default();
    for owned in state.scrip.values() {
        let presented = state.pending_with_scrip(owned.scrip.id()).is_some();
        if !presented && now > UnixSecs::new(grace_end(owned, grace_secs)) {
            out.lapsed.push(owned);
        } else {
            out.held.push(owned);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::SealedSecret;
    use shared::{Amount, Mint, Suite, TxId, fixtures};

    fn owned(mint: &Mint, me: &shared::KeyPair, expires: u64) -> OwnedScrip {
        let (scrip, cs) = mint.issue(Amount::from_minor(500), expires);
        OwnedScrip {
            cs_hash: cs.cs_hash(Suite::Paper),
            sealed_cs: SealedSecret::seal(me.public(), b"cs", cs.expose()).unwrap(),
            scrip,
            obtained_in: TxId([1; 16]),
        }
    }

    /// The boundary is the producers' own: renewable up to and including `expires +
    /// grace`, lapsed one second later.
    #[test]
    fn a_scrip_lapses_one_second_after_its_grace_ends() {
        let me = fixtures::keypair(Suite::Paper, 0);
        let producer = fixtures::keypair(Suite::Paper, 2);
        let mint = Mint::new(Suite::Paper, producer.uid(), fixtures::root_key(2));
        let mut state = WalletState::default();
        let scrip = owned(&mint, me, 1_000);
        state.scrip.insert(producer.uid(), scrip.clone());
        assert_eq!(grace_end(&scrip, 100), 1_100);
        let at_end = holdings(&state, UnixSecs::new(1_100), 100);
        assert_eq!(at_end.held, vec![&scrip]);
        assert!(at_end.lapsed.is_empty());
        let after = holdings(&state, UnixSecs::new(1_101), 100);
        assert!(after.held.is_empty());
        assert_eq!(after.lapsed, vec![&scrip]);
        assert_eq!(
            grace_end(&owned(&mint, me, u64::MAX - 1), DEFAULT_GRACE_SECS),
            u64::MAX
        );
    }

    /// A scrip a pending request presents (here a 6.8 renewal saved but not answered) is
    /// counted as held past its grace: the request's outcome decides what became of it.
    #[test]
    fn a_scrip_a_pending_request_presents_is_still_held() {
        let me = fixtures::keypair(Suite::Paper, 0);
        let broker = fixtures::keypair(Suite::Paper, 1);
        let mint = Mint::new(Suite::Paper, broker.uid(), fixtures::root_key(1));
        let mut state = WalletState {
            identity: Some(crate::core::Identity {
                suite: Suite::Paper,
                me: me.uid(),
                my_key: me.public().spki_der().to_vec(),
                broker: broker.uid(),
                broker_key: broker.public().spki_der().to_vec(),
            }),
            ..WalletState::default()
        };
        let scrip = owned(&mint, me, 1_000);
        state.scrip.insert(broker.uid(), scrip.clone());
        assert_eq!(
            holdings(&state, UnixSecs::new(2_000), 100).lapsed,
            vec![&scrip]
        );
        let tx = TxId([2; 16]);
        let request = crate::core::renew::request(&state, tx, broker.uid()).unwrap();
        state.pending.insert(
            (tx, request.label()),
            crate::core::Pending::new(request, shared::UnixMillis::EPOCH),
        );
        let split = holdings(&state, UnixSecs::new(2_000), 100);
        assert_eq!(split.held, vec![&scrip]);
        assert!(split.lapsed.is_empty());
    }
}
