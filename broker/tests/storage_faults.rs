//! The broker on a disk that fills up (protocol.md section 10, "Storage faults"): a failed
//! commit writes nothing and is answered with the unsigned `Error { Unavailable }`; the
//! broker is down (answering `Unavailable` without touching its log) until its next
//! attempt, a second later, reopens the log and rebuilds its state; once the disk takes a
//! commit again it serves as before, without a restart, and nothing acknowledged is lost.
//! Without the reopen, redb would refuse every later write ("Previous I/O error").
#![allow(clippy::unwrap_used)]

mod wire_client;

use broker::node::NodeError;
use shared::ids::{Nonce, TxId};
use shared::wire::bodies::BrokerScripResponseX1;
use shared::{Amount, Suite};
use wire_client::{NOW, World};

#[test]
fn a_full_disk_is_answered_unavailable_and_the_broker_serves_again_once_it_can_write() {
    for suite in Suite::ALL {
        let (mut w, disk) = World::on_faulty_disk(suite);
        let c = w.client(0, "A-1");
        w.onboard(&c, 5_000);
        let (state, len) = (w.state().clone(), w.log_len());

        // The disk is full: the request is answered Unavailable and nothing is written.
        disk.fill_disk();
        let request = c.obtain(TxId::random(), 1_000, Nonce::random());
        w.assert_unavailable(&request, NOW);
        // Down for the rest of this second, even with space back: no write is tried.
        disk.free_space();
        w.assert_unavailable(&request, NOW);
        // Still full at the next attempt: the reopen fails, and the broker stays down.
        disk.fill_disk();
        w.assert_unavailable(&request, NOW.saturating_add_secs(1));

        // Space is back: the next attempt reopens the log and the same request (its saved
        // bodies, section 7) is decided as if nothing had happened.
        disk.free_space();
        let reply = w.send(&request, NOW.saturating_add_secs(2));
        let scrip = c.open_sealed::<BrokerScripResponseX1>(&reply).scrip;
        assert_eq!(scrip.value(), Amount::from_minor(1_000));
        assert_eq!(
            w.log_len(),
            len + 1,
            "the request once, nothing of the failed commits"
        );
        assert_eq!(
            w.state().bank_balance(&c.pan),
            state
                .bank_balance(&c.pan)
                .checked_sub(Amount::from_minor(1_000))
                .unwrap()
        );

        // The operator's calls go the same way.
        disk.fill_disk();
        let deposit = w
            .node()
            .deposit(&c.pan, Amount::from_minor(7), NOW.saturating_add_secs(3));
        assert!(
            matches!(deposit, Err(NodeError::Unavailable(_))),
            "{deposit:?}"
        );
        disk.free_space();
        w.node()
            .deposit(&c.pan, Amount::from_minor(7), NOW.saturating_add_secs(4))
            .unwrap();
        assert_eq!(w.log_len(), len + 2);

        // Nothing acknowledged was lost, and replay gives the tables (`open` compares).
        let after = w.state().clone();
        w.reopen();
        assert_eq!(w.state(), &after);
        assert_eq!(w.state().check_conserved(), Ok(()));
    }
}
