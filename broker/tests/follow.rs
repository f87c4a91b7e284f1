//! A broker's log on a replica and a standby following it (docs/adr/0017), in process: the
//! replica gets every commit, the account IDs sealed beside their openings; a standby that
//! appends what the replica got has the leader's state, tables and secrets table, and
//! serves the leader's customers; a row that does not continue the standby's log is
//! refused with nothing written; a fenced replica leaves the leader answering
//! `Unavailable` with nothing more replicated.
#![allow(clippy::unwrap_used)]

mod wire_client;

use std::sync::Arc;

use broker::core::events::Kind;
use broker::node::NodeError;
use broker::store::LiveProjection;
use shared::Suite;
use shared::events::{Event, ReplicaRow};
use shared::fixtures::RecordingReplica as Recording;
use shared::ids::{Nonce, TxId};
use shared::node::Recorded;
use shared::wire::bodies::BrokerScripResponseX1;
use wire_client::{NOW, World, assert_conserved, error_code};

/// A leader whose log goes to a [`Recording`] from its first event, with two customers
/// onboarded (account openings among them) and one holding BrokerScrip.
fn leader(suite: Suite) -> (World, Arc<Recording>) {
    let mut w = World::new(suite);
    let replica = Arc::new(Recording::default());
    w.node().set_replica(Some(replica.clone()));
    let c = w.client(0, "C-1");
    let d = w.client(3, "D-1");
    w.onboard(&c, 5_000);
    w.onboard(&d, 700);
    let reply = w.send(&c.obtain(TxId::random(), 1_000, Nonce::random()), NOW);
    assert_eq!(error_code(&w.broker_key(), &reply), None);
    (w, replica)
}

fn kind(row: &ReplicaRow) -> Kind {
    Event::<Recorded<Kind>>::decode(&row.bytes)
        .unwrap()
        .kind
        .kind
}

#[test]
fn a_standby_following_the_replica_has_the_leaders_tables_and_secrets_and_serves_its_customers() {
    for suite in Suite::ALL {
        let (leader, replica) = leader(suite);
        let rows = replica.rows();
        assert_eq!(
            rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (1..=leader.log_len()).collect::<Vec<_>>(),
            "every event, once, in order"
        );
        let c = leader.client(0, "C-1");
        for row in &rows {
            let opening = matches!(kind(row), Kind::AccountOpened { .. });
            assert_eq!(row.annex.is_some(), opening, "event {}", row.seq);
            if let Some(annex) = &row.annex {
                let id = c.id();
                assert!(
                    !annex.windows(id.expose().len()).any(|w| w == id.expose()),
                    "no account ID in the clear"
                );
            }
        }

        let mut standby = World::new(suite);
        let (first, rest) = rows.split_at(3);
        assert_eq!(standby.node().follow(first, NOW).unwrap(), 3);
        assert_eq!(
            standby.node().follow(rest, NOW).unwrap(),
            leader.log_len(),
            "the new head"
        );
        assert_eq!(standby.state(), leader.state());
        let tables = |w: &World| {
            w.node
                .as_ref()
                .unwrap()
                .log()
                .dump_projection(&LiveProjection::new(&mut broker::core::State::new(suite)))
                .unwrap()
        };
        assert_eq!(tables(&standby), tables(&leader));
        // Reopening checks the secrets table against every commitment; then the standby
        // serves D, whose IdProof needs D's account ID there.
        standby.reopen();
        standby.assert_replay_matches(&tables(&leader));
        let d = leader.client(3, "D-1");
        let reply = standby.send(&d.obtain(TxId::random(), 300, Nonce::random()), NOW);
        let (_, held) =
            d.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
        assert_eq!(held.scrip.value().minor(), 300);
        assert_conserved(standby.state());
    }
}

#[test]
fn a_row_that_does_not_continue_the_log_is_refused_and_nothing_is_written() {
    let suite = Suite::Modern;
    let (_leader, replica) = leader(suite);
    let rows = replica.rows();
    let mut standby = World::new(suite);
    standby.node().follow(&rows[..1], NOW).unwrap();

    let refused = |standby: &mut World, rows: &[ReplicaRow]| {
        let before = (standby.log_len(), standby.state().clone());
        let e = standby.node().follow(rows, NOW).unwrap_err();
        assert_eq!((standby.log_len(), standby.state().clone()), before);
        let NodeError::Replicated { seq, reason } = e else {
            panic!("{e:?}")
        };
        (seq, reason)
    };
    // A gap.
    assert_eq!(
        refused(&mut standby, &rows[2..]),
        (3, "holds event 3, and the log's next is 2".to_owned())
    );
    // Another history: the same seq from another leader.
    let (_other, other_replica) = leader(suite);
    let other = other_replica.rows();
    assert_eq!(
        refused(&mut standby, &other[1..2]),
        (
            2,
            "does not link to the log's last event: another history".to_owned()
        )
    );
    // Damaged bytes.
    let mut damaged = rows[1].clone();
    damaged.bytes.truncate(damaged.bytes.len() / 2);
    let (seq, reason) = refused(&mut standby, &[damaged]);
    assert_eq!(seq, 2);
    assert!(reason.starts_with("does not decode"), "{reason}");
    // An opening without its sealed ID, or with another account's.
    let opening = rows
        .iter()
        .position(|r| r.seq > 1 && matches!(kind(r), Kind::AccountOpened { .. }))
        .unwrap();
    standby.node().follow(&rows[1..opening], NOW).unwrap();
    let mut bare = rows[opening].clone();
    bare.annex = None;
    let (_, reason) = refused(&mut standby, &[bare]);
    assert!(reason.ends_with("without its sealed ID"), "{reason}");
    let mut swapped = rows[opening].clone();
    swapped.annex = rows[0].annex.clone();
    let (_, reason) = refused(&mut standby, &[swapped]);
    assert!(reason.contains("sealed account ID"), "{reason}");
    // The right row still follows.
    standby
        .node()
        .follow(&rows[opening..=opening], NOW)
        .unwrap();
}

#[test]
fn a_fenced_replica_leaves_the_leader_answering_unavailable_with_nothing_more_replicated() {
    for suite in Suite::ALL {
        let (mut leader, replica) = leader(suite);
        let d = leader.client(3, "D-1");
        let replicated = replica.rows().len();
        replica.refuse_with(Some("the lease lapsed"));
        let request = d.obtain(TxId::random(), 200, Nonce::random());
        leader.assert_unavailable(&request, NOW);
        // Fenced for good: later requests, even a second later, are not served.
        replica.refuse_with(None);
        leader.assert_unavailable(&request, NOW.saturating_add_secs(5));
        assert_eq!(replica.rows().len(), replicated);
    }
}
