//! The merchant on a disk that fills up (protocol.md section 10, "Storage faults"): a
//! purchase whose commit fails is answered with the unsigned `Error { Unavailable }` and
//! writes nothing; the merchant owes the broker nothing of it and serves nothing from its
//! state until, a second later, it has reopened its log and rebuilt the state; then the same
//! request is decided once, as if nothing had happened. Without the reopen, redb would
//! refuse every later write ("Previous I/O error").

use shared::events::faults::{Faults, FaultyFile};
use shared::events::{EventLog, LogIdentity};
use shared::node::{Unavailable, is_unavailable};

use super::*;
use crate::node::{NODE_KIND, NodeError};

/// A merchant node whose file is on a disk the test can fill.
fn on_faulty_disk(kit: &Kit, dir: &TempDir) -> (MerchantNode, Faults) {
    let faults = Faults::new();
    let path = dir.path().join("merchant.redb");
    let switch = faults.clone();
    let log = EventLog::open_on_backend(
        dir.path().join("merchant.redb"),
        move || FaultyFile::open(&path, switch.clone()),
        LogIdentity::new(kit.merchant.suite(), NODE_KIND),
    )
    .expect("open the log");
    let peers = kit.state().peer_keys().cloned().collect::<Vec<_>>();
    let node = MerchantNode::on_log(log, kit.merchant.clone(), kit.config(), peers)
        .expect("open the node");
    (node, faults)
}

#[test]
fn a_full_disk_is_answered_unavailable_and_the_merchant_serves_again_once_it_can_write() {
    for suite in Suite::ALL {
        let kit = Kit::new(suite);
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut node, disk) = on_faulty_disk(&kit, &dir);
        let (v0, cs0) = node
            .issue_vendor_scrip(kit.customer.uid(), amount(2_000), TxId::random(), NOW)
            .expect("issue");
        let len = node.log().len().expect("len");
        let tx = TxId::random();
        let request = kit
            .purchase(kit.customer, tx, &v0, &cs0, &tea(2))
            .encode()
            .expect("encode");

        disk.fill_disk();
        let result = node.handle(&request, NOW);
        let Err(NodeError::Unavailable(Unavailable { reply, .. })) = result else {
            panic!("expected Unavailable, got {result:?}")
        };
        let reply = reply.expect("an unsigned answer");
        assert!(is_unavailable(&reply, kit.merchant.uid(), tx));
        // Down: no report of the failed purchase is owed, none is sent, and the lapse
        // timer and the operator's issuance are refused alike until the next attempt.
        assert!(node.pending_reports().is_empty());
        assert!(node.pending_broker_requests().is_empty());
        assert!(matches!(node.lapse(NOW), Err(NodeError::Unavailable(_))));
        disk.free_space();
        assert!(matches!(
            node.handle(&request, NOW),
            Err(NodeError::Unavailable(_))
        ));

        // A second later it reopens, rebuilds, and decides the same request once.
        let handled = node
            .handle(&request, NOW.saturating_add_secs(1))
            .expect("served again");
        assert_eq!(handled.refusal, None);
        let (body, _) = open_purchase_reply(&kit, &handled);
        assert_eq!(body.receipt.paid, amount(900));
        assert_eq!(node.log().len().expect("len"), len + 1);
        assert_eq!(
            node.pending_reports().len(),
            1,
            "the report of this purchase only"
        );
        let books = node.state().tables.books;
        assert_eq!((books.issued, books.paid), (amount(2_000), amount(900)));
        node.check_tables().expect("tables match the state");
        let tables = node.state().tables.clone();
        node.close().expect("close");
        let reopened = open_node(&kit, &dir, kit.config());
        assert_eq!(reopened.state().tables, tables, "replay agrees");
    }
}
