//! `customer_cli::client::collect_deliveries`: every expected delivery on the wallet's peer
//! subject, in order, or what arrived by the deadline. Tokio's clock is paused, so the
//! deadline is reached deterministically (no wall-clock timing).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use customer_cli::client::collect_deliveries;
use shared::Uid;
use shared::bus::{Bus, MemoryBus, Subjects};

#[tokio::test(start_paused = true)]
async fn collects_the_expected_deliveries_in_order_or_stops_at_the_deadline() {
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let me = Uid::random();
    let mut subscription = bus.subscribe(&subjects.peer(&me)).await.unwrap();
    for payload in [&b"one"[..], b"two", b"three"] {
        bus.publish(&subjects.peer(&me), Bytes::from_static(payload))
            .await
            .unwrap();
    }
    // Another peer's delivery is not ours.
    bus.publish(&subjects.peer(&Uid::random()), Bytes::from_static(b"x"))
        .await
        .unwrap();
    let got = collect_deliveries(&mut subscription, 2, Duration::from_secs(30)).await;
    assert_eq!(
        got,
        [Bytes::from_static(b"one"), Bytes::from_static(b"two")]
    );
    let start = tokio::time::Instant::now();
    let got = collect_deliveries(&mut subscription, 2, Duration::from_secs(30)).await;
    assert_eq!(got, [Bytes::from_static(b"three")]);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(30),
        "gave up at the deadline"
    );
}
