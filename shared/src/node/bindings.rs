//! Who a tx belongs to (protocol.md section 7).
//!
//! A tx belongs to the parties of the transaction that first used it at a node: its kind
//! (which 6.x), its initiator and its counterparties are recorded with its first event there,
//! and only by a request that passed every check (a refused request binds nothing). A later
//! frame carrying the tx under another kind, or from or about anyone else (its sender, a
//! forwarded origin, `UID_C` or `UID_M` in a signed body), is refused with `TxReused`, so a
//! reused tx can never fetch or steer another party's transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{TxId, Uid};

use super::Refusal;

/// The transactions of protocol.md section 6, plus the operator's and the lapse's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TxKind {
    /// 6.0 Peer registration.
    Registration,
    /// 6.1 Obtain BrokerScrip.
    ObtainBrokerScrip,
    /// 6.2 Obtain VendorScrip from a merchant.
    ObtainVendorScrip,
    /// 6.3 Buy item.
    BuyItem,
    /// 6.4 Top up BrokerScrip.
    TopUpBrokerScrip,
    /// 6.5 Top up VendorScrip.
    TopUpVendorScrip,
    /// 6.6 Withdraw BrokerScrip.
    WithdrawBrokerScrip,
    /// 6.7 Withdraw VendorScrip.
    WithdrawVendorScrip,
    /// 6.8 Renew expired scrip.
    Renew,
    /// Section 4, lapse: a scrip's grace period ended.
    Lapse,
    /// Section 5: the bank operator's account opening, deposit or payout.
    Bank,
}

/// The parties of a bound tx.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxBinding {
    /// Which transaction.
    pub kind: TxKind,
    /// Who started it (the customer, or the merchant of a lapse notice).
    pub initiator: Uid,
    /// The other parties (the merchant of 6.2, 6.3, 6.5, 6.7; empty for two-party ones).
    pub counterparties: Vec<Uid>,
}

impl TxBinding {
    /// Whether `uid` is a party of the tx.
    #[must_use]
    pub fn is_party(&self, uid: &Uid) -> bool {
        self.initiator == *uid || self.counterparties.contains(uid)
    }
}

/// The bindings of every tx seen (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxBindings {
    rows: BTreeMap<TxId, TxBinding>,
}

impl TxBindings {
    /// An empty table.
    #[must_use]
    pub fn new() -> TxBindings {
        TxBindings::default()
    }

    /// The binding of `tx`, if bound.
    #[must_use]
    pub fn get(&self, tx: &TxId) -> Option<&TxBinding> {
        self.rows.get(tx)
    }

    /// The section 7 check of a request of `kind` in `tx` that involves `involved` (its
    /// sender, every forwarded origin's sender, every UID its verified bodies name). An
    /// unbound tx passes (the request's first event will bind it); a bound one passes only
    /// under the same kind with every involved UID a party. Otherwise `TxReused`.
    pub fn check(&self, tx: &TxId, kind: TxKind, involved: &[Uid]) -> Result<(), Refusal> {
        let Some(binding) = self.rows.get(tx) else {
            return Ok(());
        };
        if binding.kind != kind {
            return Err(Refusal::new(
                ErrorCode::TxReused,
                "this tx belongs to another kind of transaction",
            ));
        }
        if involved.iter().all(|uid| binding.is_party(uid)) {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorCode::TxReused,
                "this tx belongs to other parties",
            ))
        }
    }

    /// Binds `tx` with its first event. Called by `apply` only. A tx already bound keeps its
    /// first binding (a later event of the same transaction passed [`TxBindings::check`],
    /// so it names the same parties); returns whether this call bound it.
    pub fn bind(&mut self, tx: TxId, binding: TxBinding) -> bool {
        if let Some(existing) = self.rows.get(&tx) {
            debug_assert_eq!(
                existing.kind, binding.kind,
                "tx {tx} rebound to another kind"
            );
            return false;
        }
        self.rows.insert(tx, binding);
        true
    }

    /// Every binding, in tx order.
    pub fn iter(&self) -> impl Iterator<Item = (&TxId, &TxBinding)> {
        self.rows.iter()
    }

    /// The number of bound txs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no tx is bound.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Uid = Uid([1; 16]);
    const M: Uid = Uid([2; 16]);
    const X: Uid = Uid([3; 16]);
    const TX: TxId = TxId([9; 16]);

    #[test]
    fn unbound_passes_bound_checks_kind_and_parties() {
        let mut b = TxBindings::new();
        assert_eq!(b.check(&TX, TxKind::ObtainVendorScrip, &[X]), Ok(()));
        assert!(b.bind(
            TX,
            TxBinding {
                kind: TxKind::ObtainVendorScrip,
                initiator: C,
                counterparties: vec![M],
            }
        ));
        assert_eq!(b.check(&TX, TxKind::ObtainVendorScrip, &[C, M]), Ok(()));
        assert_eq!(b.check(&TX, TxKind::ObtainVendorScrip, &[M]), Ok(()));
        let code = |r: Result<(), Refusal>| r.map_err(|e| e.code);
        assert_eq!(
            code(b.check(&TX, TxKind::ObtainVendorScrip, &[C, X])),
            Err(ErrorCode::TxReused)
        );
        assert_eq!(
            code(b.check(&TX, TxKind::ObtainBrokerScrip, &[C])),
            Err(ErrorCode::TxReused)
        );
        assert!(!b.bind(
            TX,
            TxBinding {
                kind: TxKind::ObtainVendorScrip,
                initiator: C,
                counterparties: vec![],
            }
        ));
        assert_eq!(b.get(&TX).map(|x| x.counterparties.clone()), Some(vec![M]));
        assert_eq!(b.len(), 1);
    }
}
