//! Property: whatever balanced batches are appended, the balances sum to zero after every
//! append (protocol.md section 5), and match a model kept beside the log.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::fixture::{Ledger, TestKind, a, balance_sum, bank, temp_log, tx, vendor};
use crate::events::{Account, Direction, LogError, NewEvent, Posting};

/// Six accounts, `external` among them.
fn account(i: u8) -> Account {
    match i % 6 {
        0 => Account::External,
        1 => Account::FloatBroker,
        2 => vendor(1),
        n => bank(n),
    }
}

/// An event of transfers (from, to, amount); `merge` folds the postings of one account and
/// direction into one line, giving multi-legged entries.
fn event(t: u8, transfers: &[(u8, u8, u64)], merge: bool) -> NewEvent<TestKind> {
    let mut postings = Vec::new();
    for &(from, to, v) in transfers {
        postings.push(Posting::decrease(account(from), a(v)));
        postings.push(Posting::increase(account(to), a(v)));
    }
    if merge {
        let mut merged: BTreeMap<(Account, bool), u64> = BTreeMap::new();
        for p in &postings {
            *merged
                .entry((p.account.clone(), p.direction == Direction::Increase))
                .or_default() += p.amount.minor();
        }
        postings = merged
            .into_iter()
            .map(|((acct, up), v)| {
                if up {
                    Posting::increase(acct, a(v))
                } else {
                    Posting::decrease(acct, a(v))
                }
            })
            .collect();
    }
    NewEvent::new(
        crate::UnixMillis::new(u64::from(t)),
        tx(t),
        TestKind::Transfer {
            note: String::new(),
        },
    )
    .with_postings(postings)
}

/// Transfers (from, to, amount) of one event.
type Transfers = Vec<(u8, u8, u64)>;
/// Batches of events: each its transfers and whether to merge its postings.
type Batches = Vec<Vec<(Transfers, bool)>>;

fn transfers() -> impl Strategy<Value = Transfers> {
    prop::collection::vec((0u8..6, 0u8..6, 0u64..1_000_000), 0..5)
}

fn batches() -> impl Strategy<Value = Batches> {
    prop::collection::vec(
        prop::collection::vec((transfers(), any::<bool>()), 1..5),
        1..5,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn balances_sum_to_zero_after_every_append(batches in batches()) {
        let (_dir, _path, log) = temp_log();
        let mut model: BTreeMap<String, i128> = BTreeMap::new();
        let mut t = 0u8;
        for batch in &batches {
            let events: Vec<_> = batch
                .iter()
                .map(|(transfers, merge)| {
                    t = t.wrapping_add(1);
                    for &(from, to, v) in transfers {
                        *model.entry(account(from).to_string()).or_default() -= i128::from(v);
                        *model.entry(account(to).to_string()).or_default() += i128::from(v);
                    }
                    event(t, transfers, *merge)
                })
                .collect();
            log.append(events, &Ledger).unwrap();
            prop_assert_eq!(balance_sum(&log.begin_read().unwrap()), 0);
            for (name, expected) in &model {
                let found = super::fixture::balance(&log, &name.parse().unwrap());
                prop_assert_eq!(found, *expected, "{}", name);
            }
        }
        prop_assert_eq!(log.verify_chain().unwrap().events, batches.iter().map(|b| b.len() as u64).sum::<u64>());
    }

    #[test]
    fn one_unbalanced_event_refuses_its_whole_batch(
        batch in prop::collection::vec((transfers(), any::<bool>()), 1..5),
        at in any::<prop::sample::Index>(),
        by in 1u64..1000,
    ) {
        let (_dir, _path, log) = temp_log();
        log.append(vec![event(0, &[(0, 3, 500)], false)], &Ledger).unwrap();
        let before = (log.head().unwrap(), log.dump_projection(&Ledger).unwrap());
        let mut events: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, (transfers, merge))| event(u8::try_from(i).unwrap() + 1, transfers, *merge))
            .collect();
        let bad = at.index(events.len());
        events[bad].postings.push(Posting::increase(account(4), a(by)));
        let err = log.append(events, &Ledger).unwrap_err();
        let is_unbalanced = matches!(err, LogError::Unbalanced { index, .. } if index == bad);
        prop_assert!(is_unbalanced, "{:?}", err);
        prop_assert_eq!((log.head().unwrap(), log.dump_projection(&Ledger).unwrap()), before);
    }
}
