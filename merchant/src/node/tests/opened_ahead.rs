//! The next batch opened while this one commits (`shared::node::Driver::serve`): frames
//! that arrive during a commit are opened against the state the batch leaves and served
//! next with the same results as if they had been handed over after it; if the commit
//! fails they come back unopened and are served from the start once the node can write
//! (protocol.md section 10). Two customers' purchases, so that neither waits on the other.

use shared::fixtures::RecordingReplica;
use shared::node::{Batch, Unserved, is_unavailable};

use super::*;

/// Two purchases of two customers, each paying with a VendorScrip of 2,000 issued to it.
fn two_purchases(kit: &Kit, node: &mut MerchantNode) -> [(TxId, Vec<u8>); 2] {
    [kit.customer, kit.other].map(|customer| {
        let (v0, cs0) = node
            .issue_vendor_scrip(customer.uid(), amount(2_000), TxId::random(), NOW)
            .expect("issue");
        let tx = TxId::random();
        let frame = kit
            .purchase(customer, tx, &v0, &cs0, &tea(2))
            .encode()
            .expect("encode");
        (tx, frame)
    })
}

#[test]
fn frames_opened_during_a_commit_are_served_next_as_if_they_came_after_it() {
    for suite in Suite::ALL {
        let kit = Kit::new(suite);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut node = open_node(&kit, &dir, kit.config());
        let [(_, first), (_, second)] = two_purchases(&kit, &mut node);
        let len = node.log().len().expect("len");

        let (served, ahead) = node.serve(Batch::new(vec![first.as_slice()]), NOW, || {
            vec![second.as_slice()]
        });
        let [(_, Ok(handled))] = served.as_slice() else {
            panic!("one purchase served: {served:?}")
        };
        assert_eq!(handled.refusal, None);
        let ahead = ahead.expect("the frame that waited comes back as the next batch");
        assert!(ahead.is_opened(), "opened during the commit");
        assert_eq!(ahead.frames(), [second.as_slice()]);
        assert_eq!(
            node.log().len().expect("len"),
            len + 1,
            "only the first so far"
        );

        let (served, none) = node.serve(ahead, NOW, Vec::new);
        assert!(none.is_none(), "nothing waited");
        let [(_, Ok(handled))] = served.as_slice() else {
            panic!("one purchase served: {served:?}")
        };
        assert_eq!(handled.refusal, None);
        assert!(handled.reply.is_some());
        assert_eq!(node.log().len().expect("len"), len + 2);
        let books = node.state().tables.books;
        assert_eq!((books.issued, books.paid), (amount(4_000), amount(1_800)));
        assert_eq!(node.pending_reports().len(), 2);
        node.check_tables().expect("tables match the state");
    }
}

#[test]
fn frames_opened_during_a_failed_commit_come_back_unopened_and_are_served_once_it_can_write() {
    for suite in Suite::ALL {
        let kit = Kit::new(suite);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut node = open_node(&kit, &dir, kit.config());
        let [(first_tx, first), (_, second)] = two_purchases(&kit, &mut node);
        let len = node.log().len().expect("len");

        // The commit fails at its end, after the frame was taken and opened: the log's
        // replica refuses it, as a replicated log does (docs/adr/0017).
        let replica = std::sync::Arc::new(RecordingReplica::default());
        node.driver.set_replica(Some(replica.clone()));
        replica.refuse_with(Some("the lease is lost"));
        let (served, ahead) = node.serve(Batch::new(vec![first.as_slice()]), NOW, || {
            vec![second.as_slice()]
        });
        let [(_, Err(Unserved::Unavailable(down)))] = served.as_slice() else {
            panic!("expected Unavailable, got {served:?}")
        };
        let reply = down.reply.as_ref().expect("an unsigned answer");
        assert!(is_unavailable(reply, kit.merchant.uid(), first_tx));
        let ahead = ahead.expect("the frame taken during the commit comes back");
        assert!(
            !ahead.is_opened(),
            "opened against decisions the log does not hold: served from the start"
        );
        assert_eq!(ahead.frames(), [second.as_slice()]);
        // The file holds the first purchase, the replicated log does not: the node is down
        // until it has reloaded its log (docs/adr/0017), and serves nothing meanwhile.
        assert!(node.driver.is_down());
        node.driver.set_replica(None);

        // A second later the node reopens its log: the second purchase is decided, and the
        // first, repeated, is answered (from the reply stored with it) and recorded once.
        let later = NOW.saturating_add_secs(1);
        let (served, _) = node.serve(ahead, later, Vec::new);
        assert!(matches!(served.as_slice(), [(_, Ok(h))] if h.refusal.is_none()));
        let handled = node.handle(&first, later).expect("served again");
        assert_eq!(handled.refusal, None);
        assert_eq!(node.log().len().expect("len"), len + 2);
        let books = node.state().tables.books;
        assert_eq!((books.issued, books.paid), (amount(4_000), amount(1_800)));
        node.check_tables().expect("tables match the state");
    }
}
