//! Check 6 of the module doc of `reconcile`: a wallet's history against the broker's and
//! the merchants' logs.

use super::*;

/// The facts a wallet's history line claims, each to be found in its keeper's log.
pub(super) fn wallet_facts(entry: &customer_cli::core::HistoryEntry) -> Result<Vec<Fact>, String> {
    use customer_cli::core::HistoryKind as H;
    let minus = |a: Amount, b: Amount| {
        a.checked_sub(b)
            .map_err(|_| format!("a history line whose change {b} exceeds {a}"))
    };
    Ok(match &entry.what {
        H::BrokerScripObtained { value } => vec![Fact::BrokerScripIssued { value: *value }],
        H::BrokerScripToppedUp { to, .. } => vec![Fact::BrokerScripToppedUp { to: *to }],
        H::BrokerScripWithdrawn { value } => vec![Fact::BrokerScripWithdrawn { value: *value }],
        H::ScripRenewed {
            producer, value, ..
        } => vec![Fact::Renewed {
            producer: *producer,
            value: *value,
        }],
        H::ExchangeSettled {
            merchant,
            ok: true,
            from,
            change,
        } => vec![Fact::Exchanged {
            merchant: *merchant,
            value: minus(*from, *change)?,
            change: *change,
        }],
        H::VendorScripObtained { merchant, value } => vec![Fact::VendorScripIssued {
            merchant: *merchant,
            value: *value,
        }],
        H::ItemBought {
            merchant,
            paid,
            change,
        } => vec![
            Fact::Bought {
                merchant: *merchant,
                paid: *paid,
                change: *change,
            },
            Fact::PurchaseRecorded {
                merchant: *merchant,
                value: *paid,
            },
        ],
        H::VendorTopUpSettled {
            merchant,
            ok: true,
            from,
            change,
        } => vec![Fact::TopUpSettled {
            merchant: *merchant,
            top_up: minus(*from, *change)?,
            change: *change,
        }],
        H::VendorScripToppedUp { merchant, from, to } => vec![Fact::ToppedUp {
            merchant: *merchant,
            from: *from,
            to: *to,
        }],
        H::VendorWithdrawDecided {
            merchant,
            ok: true,
            value,
        } => vec![
            Fact::Redeemed {
                merchant: *merchant,
                value: *value,
            },
            Fact::Withdrawn {
                merchant: *merchant,
                value: *value,
            },
        ],
        _ => Vec::new(),
    })
}

pub(super) fn reconcile_wallet(
    b: &BrokerLog,
    merchants: &BTreeMap<Uid, &MerchantLog>,
    w: &WalletLog,
    report: &mut Report,
) -> WalletSummary {
    let me = w.me;
    let mut summary = WalletSummary {
        path: w.path.clone(),
        uid: me,
        compared: 0,
        skipped: 0,
    };
    let kept = |fact: &Fact| match fact.keeper(b.uid) {
        None => true,
        Some(m) => merchants.contains_key(&m),
    };
    let in_flight: BTreeSet<TxId> = report.in_flight.iter().map(|f| f.tx).collect();
    // What the wallet claims, by tx.
    let mut claimed: BTreeMap<TxId, BTreeSet<Fact>> = BTreeMap::new();
    for entry in w.state.history.values() {
        if let customer_cli::core::HistoryKind::Registered { uid } = &entry.what {
            summary.compared += 1;
            if !b.registered.contains(uid) {
                report.mismatches.push(Mismatch {
                    tx: Some(entry.tx),
                    check: Check::WalletHistory,
                    party: me,
                    expected: format!("the broker's PeerRegistered of {uid}"),
                    found: "none in the broker's log".to_owned(),
                });
            }
            continue;
        }
        match wallet_facts(entry) {
            Ok(facts) => {
                for fact in facts {
                    if kept(&fact) {
                        claimed.entry(entry.tx).or_default().insert(fact);
                    } else {
                        summary.skipped += 1;
                    }
                }
            }
            Err(reason) => report.mismatches.push(Mismatch {
                tx: Some(entry.tx),
                check: Check::WalletHistory,
                party: me,
                expected: "a consistent history line".to_owned(),
                found: reason,
            }),
        }
    }
    // What the nodes logged about this customer, by tx.
    let mut logged: BTreeMap<TxId, BTreeSet<Fact>> = BTreeMap::new();
    let node_facts = std::iter::once(&b.facts).chain(merchants.values().map(|m| &m.facts));
    for facts in node_facts {
        for ((tx, customer), set) in facts {
            if *customer == me {
                logged.entry(*tx).or_default().extend(set.iter().copied());
            }
        }
    }
    // Section 4: a scrip whose lapse the broker recorded is back at the owner's bank
    // account; a wallet still holding it shows value twice until it next presents it (and
    // is told `Lapsed`). In flight until then; stuck past the age limit.
    for owned in w.state.scrip.values() {
        let body = &owned.scrip.body;
        if let Some(lapse) = b.lapsed.iter().find(|l| l.scrip_id == body.scrip_id) {
            report.in_flight.push(InFlight {
                tx: lapse.tx,
                merchant: body.producer,
                what: format!(
                    "wallet {me} still holds scrip {} of {} that lapsed and went back to its bank account",
                    body.scrip_id, body.value
                ),
                amount: 0,
                since: lapse.time,
            });
        }
    }
    let pending: BTreeSet<TxId> = w.state.pending.keys().map(|(tx, _)| *tx).collect();
    let txs: BTreeSet<TxId> = claimed.keys().chain(logged.keys()).copied().collect();
    let empty = BTreeSet::new();
    for tx in txs {
        let (c, l) = (
            claimed.get(&tx).unwrap_or(&empty),
            logged.get(&tx).unwrap_or(&empty),
        );
        summary.compared += c.len() as u64;
        let words = |set: Vec<&Fact>| {
            if set.is_empty() {
                "nothing".to_owned()
            } else {
                set.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        // In flight, the lagging side has not logged what the wallet already holds: the
        // broker's record of a purchase not yet reported, the merchant's spend of a
        // VendorScrip the broker already paid out.
        let unclaimed: Vec<&Fact> = c
            .difference(l)
            .filter(|f| {
                !(matches!(f, Fact::PurchaseRecorded { .. } | Fact::Withdrawn { .. })
                    && in_flight.contains(&tx))
            })
            .collect();
        if !unclaimed.is_empty() {
            report.mismatches.push(Mismatch {
                tx: Some(tx),
                check: Check::WalletHistory,
                party: me,
                expected: words(unclaimed),
                found: words(l.iter().collect()),
            });
        }
        let unseen: Vec<&Fact> = l.difference(c).collect();
        if !unseen.is_empty() && !pending.contains(&tx) {
            report.mismatches.push(Mismatch {
                tx: Some(tx),
                check: Check::MissingFromWallet,
                party: me,
                expected: words(unseen),
                found: words(c.iter().collect()),
            });
        }
    }
    summary
}
