//! Checks 1 to 5 of the module doc of `reconcile`: the broker's log against one
//! merchant's, transaction by transaction, and the merchant's float.

use super::*;

/// One pairing of a broker fact with the merchant fact that must answer it (checks 1 to 4
/// of the module doc).
pub(super) struct Pairing {
    /// The broker's side, as (merchant, amount) when the fact is of this pairing.
    pub(super) broker: fn(&Fact) -> Option<(Uid, Amount)>,
    /// The merchant's side likewise.
    pub(super) merchant: fn(&Fact) -> Option<(Uid, Amount)>,
    /// Named when the merchant's side is missing, when the broker's is, when they differ.
    pub(super) missing_at_merchant: Check,
    pub(super) missing_at_broker: Check,
    pub(super) differs: Check,
}

pub(super) const PAIRINGS: [Pairing; 4] = [
    Pairing {
        broker: |f| match f {
            Fact::Exchanged {
                merchant, value, ..
            } => Some((*merchant, *value)),
            _ => None,
        },
        merchant: |f| match f {
            Fact::VendorScripIssued { merchant, value } => Some((*merchant, *value)),
            _ => None,
        },
        missing_at_merchant: Check::VendorScripNotIssued,
        missing_at_broker: Check::VendorScripUnauthorized,
        differs: Check::VendorScripDiffers,
    },
    Pairing {
        broker: |f| match f {
            Fact::PurchaseRecorded { merchant, value } => Some((*merchant, *value)),
            _ => None,
        },
        merchant: |f| match f {
            Fact::Bought { merchant, paid, .. } => Some((*merchant, *paid)),
            _ => None,
        },
        missing_at_merchant: Check::PurchaseNotMade,
        missing_at_broker: Check::PurchaseNotRecorded,
        differs: Check::PurchaseDiffers,
    },
    Pairing {
        broker: |f| match f {
            Fact::TopUpSettled {
                merchant, top_up, ..
            } => Some((*merchant, *top_up)),
            _ => None,
        },
        merchant: |f| match f {
            Fact::ToppedUp { merchant, from, to } => {
                Some((*merchant, to.checked_sub(*from).unwrap_or(Amount::ZERO)))
            }
            _ => None,
        },
        missing_at_merchant: Check::TopUpNotApplied,
        missing_at_broker: Check::TopUpUnsettled,
        differs: Check::TopUpDiffers,
    },
    Pairing {
        broker: |f| match f {
            Fact::Redeemed { merchant, value } => Some((*merchant, *value)),
            _ => None,
        },
        merchant: |f| match f {
            Fact::Withdrawn { merchant, value } => Some((*merchant, *value)),
            _ => None,
        },
        missing_at_merchant: Check::WithdrawalNotSpent,
        missing_at_broker: Check::WithdrawalNotPaid,
        differs: Check::WithdrawalDiffers,
    },
];

/// (tx → (customer, amount)) of one side of a pairing, for merchant `m`.
pub(super) fn side(
    facts: &Facts,
    m: Uid,
    pick: fn(&Fact) -> Option<(Uid, Amount)>,
) -> BTreeMap<TxId, (Uid, Amount)> {
    let mut out = BTreeMap::new();
    for ((tx, customer), set) in facts {
        for fact in set {
            if let Some((merchant, amount)) = pick(fact)
                && merchant == m
            {
                out.insert(*tx, (*customer, amount));
            }
        }
    }
    out
}

/// What the merchant's own log says it still waits for in `tx`, as the in-flight line and
/// its effect on `memo − live`, for the check whose other side is missing.
pub(super) fn merchant_waits(
    m: &MerchantLog,
    tx: &TxId,
    check: Check,
    amount: Amount,
) -> Option<InFlight> {
    use merchant::core::state::Awaiting;
    let tables = &m.state.tables;
    let minor = i128::from(amount.minor());
    let (what, amount) = match (check, tables.awaiting.get(tx)) {
        (Check::VendorScripNotIssued, Some(Awaiting::Exchange { .. })) => (
            format!("the broker authorized {amount}; the merchant has not issued it yet"),
            minor,
        ),
        (Check::TopUpNotApplied, Some(Awaiting::TopUp { .. })) => (
            format!("the broker settled a top-up of {amount}; the merchant has not applied it yet"),
            minor,
        ),
        (Check::WithdrawalNotSpent, Some(Awaiting::Withdraw { .. })) => (
            format!("the broker paid a withdrawal of {amount}; the merchant still holds the scrip"),
            -minor,
        ),
        (Check::PurchaseNotRecorded, _) if tables.unreported.contains_key(tx) => (
            format!("a purchase of {amount} the merchant has not yet reported to the broker"),
            minor,
        ),
        _ => return None,
    };
    Some(InFlight {
        tx: *tx,
        merchant: m.uid,
        what,
        amount,
        since: m.tx_time.get(tx).copied().unwrap_or(m.end),
    })
}

pub(super) fn reconcile_merchant(
    b: &BrokerLog,
    m: &MerchantLog,
    report: &mut Report,
) -> MerchantSummary {
    let mut in_flight_sum: i128 = 0;
    for pairing in &PAIRINGS {
        let at_broker = side(&b.facts, m.uid, pairing.broker);
        let at_merchant = side(&m.facts, m.uid, pairing.merchant);
        let txs: BTreeSet<&TxId> = at_broker.keys().chain(at_merchant.keys()).collect();
        for tx in txs {
            let describe = |(customer, amount): &(Uid, Amount)| format!("{amount} for {customer}");
            let (check, expected, found, amount) = match (at_broker.get(tx), at_merchant.get(tx)) {
                (Some(x), Some(y)) if x == y => {
                    report.matched += 1;
                    continue;
                }
                (Some(x), Some(y)) => (
                    pairing.differs,
                    format!("the broker's {}", describe(x)),
                    format!("the merchant's {}", describe(y)),
                    None,
                ),
                (Some(x), None) => (
                    pairing.missing_at_merchant,
                    format!("the merchant's event for the broker's {}", describe(x)),
                    "none in the merchant's log".to_owned(),
                    Some(x.1),
                ),
                (None, Some(y)) => {
                    let found = if b.unmatched.contains(tx) {
                        "only PurchaseUnmatched (no posting) in the broker's log"
                    } else {
                        "none in the broker's log"
                    };
                    (
                        pairing.missing_at_broker,
                        format!("the broker's event for the merchant's {}", describe(y)),
                        found.to_owned(),
                        Some(y.1),
                    )
                }
                (None, None) => continue,
            };
            if let Some(flight) = amount.and_then(|a| merchant_waits(m, tx, check, a)) {
                in_flight_sum += flight.amount;
                report.in_flight.push(flight);
                continue;
            }
            report.mismatches.push(Mismatch {
                tx: Some(*tx),
                check,
                party: m.uid,
                expected,
                found,
            });
        }
    }
    for lapse in &b.lapsed {
        if lapse.merchant == Some(m.uid) && m.state.tables.live.get(&lapse.scrip_id).is_some() {
            let amount = -i128::from(lapse.value.minor());
            in_flight_sum += amount;
            report.in_flight.push(InFlight {
                tx: lapse.tx,
                merchant: m.uid,
                what: format!(
                    "VendorScrip {} of {} lapsed at the broker, still live at the merchant",
                    lapse.scrip_id, lapse.value
                ),
                amount,
                since: lapse.time,
            });
        }
    }
    // Section 4: the merchant removed a lapsed scrip and owes the broker its notice; until
    // the broker records it, the broker's memo still counts the value.
    for (tx, awaiting) in &m.state.tables.awaiting {
        let merchant::core::state::Awaiting::Lapse {
            scrip_id, value, ..
        } = awaiting
        else {
            continue;
        };
        let recorded = b
            .lapsed
            .iter()
            .any(|l| l.merchant == Some(m.uid) && l.scrip_id == *scrip_id);
        if !recorded {
            let amount = i128::from(value.minor());
            in_flight_sum += amount;
            report.in_flight.push(InFlight {
                tx: *tx,
                merchant: m.uid,
                what: format!(
                    "VendorScrip {scrip_id} of {value} lapsed at the merchant, its notice not yet recorded by the broker"
                ),
                amount,
                since: m.tx_time.get(tx).copied().unwrap_or(m.end),
            });
        }
    }
    let memo = b.state.memo(&m.uid);
    // In i128, as the broker's memo: a forged log's sum beyond u64 is still compared.
    let live: i128 = m
        .state
        .tables
        .live
        .iter()
        .map(|(_, r)| i128::from(r.body.value.minor()))
        .sum();
    let expected = live + in_flight_sum;
    if memo != expected {
        report.mismatches.push(Mismatch {
            tx: None,
            check: Check::FloatVendor,
            party: m.uid,
            expected: format!(
                "float:vendor:{} = {} (live VendorScrip {} + in flight {})",
                m.uid,
                signed_amount(expected),
                signed_amount(live),
                signed_amount(in_flight_sum)
            ),
            found: format!("the broker's memo {}", signed_amount(memo)),
        });
    }
    MerchantSummary {
        path: m.path.clone(),
        uid: m.uid,
        memo,
        live,
        in_flight: in_flight_sum,
    }
}
