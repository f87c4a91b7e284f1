//! Merchants by name (docs/adr/0016) through `BrokerNode` with a real redb file: a
//! registered peer names itself (`MerchantProfile`), repeats and changes its name, and any
//! registered peer lists the named merchants page by page (`MerchantDirectoryRequest`);
//! every refusal asserts its exact code and that neither the state nor the log changed, and
//! the names survive a replay and a reopen.
#![allow(clippy::unwrap_used)]

mod wire_client;

use broker::core::names::NAME_CHANGE_INTERVAL_SECS;
use broker::core::{Kind, State};
use broker::store::{self, LiveProjection};
use serde::Serialize;
use shared::UnixSecs;
use shared::ids::{Nonce, TxId, Uid};
use shared::wire::bodies::{
    AckBody, MerchantDirectoryRequestX0, MerchantDirectoryResponseX1, MerchantName,
    MerchantProfileX0,
};
use shared::wire::{Body, Frame, Label, Part, sign};
use shared::{ErrorCode, Suite};
use wire_client::{Client, NOW, World, error_code};

fn name(s: &str) -> MerchantName {
    MerchantName::new(s).unwrap()
}

fn profile(c: &Client, tx: TxId, name: &MerchantName) -> Vec<u8> {
    signed_frame(
        c,
        Label::MerchantProfile,
        tx,
        &MerchantProfileX0 { name: name.clone() },
    )
}

fn directory(c: &Client, after: Option<Uid>) -> Vec<u8> {
    let x0 = MerchantDirectoryRequestX0 {
        after,
        nonce: Nonce::random(),
    };
    signed_frame(c, Label::MerchantDirectoryRequest, TxId::random(), &x0)
}

fn signed_frame<B: Body>(c: &Client, label: Label, tx: TxId, body: &B) -> Vec<u8> {
    let h = c.header(label, tx);
    let part: Part = sign(c.key, &h, body).unwrap().into();
    Frame::new(h, vec![part]).encode().unwrap()
}

/// A `MerchantProfileX0` with any string for a name, as a hostile peer could sign it.
#[derive(Serialize, serde::Deserialize)]
struct RawProfile {
    name: String,
}
impl Body for RawProfile {
    const LABEL: Label = Label::MerchantProfile;
}

fn listed(w: &mut World, c: &Client, after: Option<Uid>) -> MerchantDirectoryResponseX1 {
    let reply = w.send(&directory(c, after), NOW);
    assert_eq!(error_code(&w.broker_key(), &reply), None);
    let page = c.open_clear::<MerchantDirectoryResponseX1>(&reply);
    assert_eq!(page.re.sender, c.uid());
    assert_eq!(page.re.label, Label::MerchantDirectoryRequest);
    page
}

fn entries(page: &MerchantDirectoryResponseX1) -> Vec<(Uid, String)> {
    page.merchants
        .iter()
        .map(|e| (e.uid, e.name.as_str().to_owned()))
        .collect()
}

#[test]
fn a_merchant_names_itself_once_repeats_for_free_and_changes_its_name() {
    for suite in Suite::ALL {
        let mut w = World::new(suite);
        let m = w.client(2, "GR1601101250000000012300001");
        let c = w.client(3, "GR1601101250000000012300002");
        w.onboard(&m, 0);
        w.onboard(&c, 0);
        assert!(listed(&mut w, &c, None).merchants.is_empty());

        // First: one MerchantNamed event, answered Ack, its reply stored.
        let len = w.log_len();
        let tx = TxId::random();
        let reply = w.send(&profile(&m, tx, &name("Green Tea House")), NOW);
        let ack = m.open_clear::<AckBody>(&reply);
        assert_eq!(ack.re.sender, m.uid());
        assert_eq!(ack.re.label, Label::MerchantProfile);
        assert_eq!(ack.deadline, None);
        assert_eq!(w.log_len(), len + 1);
        let event = w
            .node
            .as_ref()
            .unwrap()
            .log()
            .read(len + 1)
            .unwrap()
            .unwrap();
        assert_eq!(
            event.kind.kind,
            Kind::MerchantNamed {
                merchant: m.uid(),
                name: name("Green Tea House"),
            }
        );
        assert_eq!(event.evidence.len(), 1, "the signed X0 is kept as evidence");
        assert_eq!(event.evidence[0].signer, m.uid());
        assert_eq!(
            entries(&listed(&mut w, &c, None)),
            vec![(m.uid(), "Green Tea House".to_owned())]
        );

        // The same tx again: the stored bytes, nothing appended (section 7).
        assert_eq!(
            w.send(&profile(&m, tx, &name("Green Tea House")), NOW),
            reply
        );
        // The same name under a new tx: Ack, nothing appended, nothing changed.
        let before = w.state().clone();
        let reply = w.send(&profile(&m, TxId::random(), &name("Green Tea House")), NOW);
        assert_eq!(
            m.open_clear::<AckBody>(&reply).re.label,
            Label::MerchantProfile
        );
        assert_eq!(w.log_len(), len + 1);
        assert_eq!(w.state(), &before);

        // A change within the interval: TooManyRequests, nothing recorded.
        let soon = UnixSecs::new(NOW.get() + NAME_CHANGE_INTERVAL_SECS - 1);
        w.assert_refused(
            &profile(&m, TxId::random(), &name("Black Tea House")),
            soon,
            ErrorCode::TooManyRequests,
        );
        // After it: a second event, and the directory shows the new name.
        let later = UnixSecs::new(NOW.get() + NAME_CHANGE_INTERVAL_SECS);
        let reply = w.send(
            &profile(&m, TxId::random(), &name("Black Tea House")),
            later,
        );
        assert_eq!(error_code(&w.broker_key(), &reply), None);
        assert_eq!(w.log_len(), len + 2);
        assert_eq!(
            entries(&listed(&mut w, &c, None)),
            vec![(m.uid(), "Black Tea House".to_owned())]
        );
    }
}

#[test]
fn an_unregistered_sender_and_an_invalid_name_are_refused_with_nothing_recorded() {
    let mut w = World::new(Suite::Modern);
    let m = w.client(2, "GR1601101250000000012300001");
    let stranger = w.client(4, "GR1601101250000000012300009");
    w.onboard(&m, 0);

    w.assert_refused(
        &profile(&stranger, TxId::random(), &name("Shady Shop")),
        NOW,
        ErrorCode::UnknownPeer,
    );
    w.assert_refused(&directory(&stranger, None), NOW, ErrorCode::UnknownPeer);
    for bad in [
        "x".repeat(65),
        String::new(),
        "Tea\u{1b}[2J".to_owned(),
        " Tea ".to_owned(),
    ] {
        let frame = signed_frame(
            &m,
            Label::MerchantProfile,
            TxId::random(),
            &RawProfile { name: bad },
        );
        w.assert_refused(&frame, NOW, ErrorCode::BadFrame);
    }
    assert!(w.state().names.is_empty());
}

#[test]
fn the_directory_is_paged_in_uid_order() {
    let mut w = World::new(Suite::Modern);
    let clients: Vec<Client> = (0..5)
        .map(|i| w.client(i, &format!("GR16011012500000000123000{i:02}")))
        .collect();
    for (i, c) in clients.iter().enumerate() {
        w.onboard(c, 0);
        if i > 0 {
            let reply = w.send(
                &profile(c, TxId::random(), &name(&format!("Shop {i}"))),
                NOW,
            );
            assert_eq!(error_code(&w.broker_key(), &reply), None);
        }
    }
    let asker = &clients[0];
    let mut expected: Vec<(Uid, String)> = clients[1..]
        .iter()
        .enumerate()
        .map(|(i, c)| (c.uid(), format!("Shop {}", i + 1)))
        .collect();
    expected.sort();
    let page = listed(&mut w, asker, None);
    assert!(!page.more);
    assert_eq!(entries(&page), expected);
    // After the second UID: the last two, in order.
    let page = listed(&mut w, asker, Some(expected[1].0));
    assert!(!page.more);
    assert_eq!(entries(&page), expected[2..].to_vec());
    // After the last: nothing.
    let page = listed(&mut w, asker, Some(expected[3].0));
    assert!(page.merchants.is_empty() && !page.more);
}

/// The names are a projection of the log: replay into a fresh file and a reopen give the
/// same state and the same `broker_names` table.
#[test]
fn names_survive_replay_and_reopen() {
    let suite = Suite::Paper;
    let mut w = World::new(suite);
    let m = w.client(2, "GR1601101250000000012300001");
    w.onboard(&m, 0);
    w.send(&profile(&m, TxId::random(), &name("Green Tea House")), NOW);
    let later = UnixSecs::new(NOW.get() + NAME_CHANGE_INTERVAL_SECS);
    w.send(
        &profile(&m, TxId::random(), &name("Black Tea House")),
        later,
    );
    let state = w.state().clone();
    assert_eq!(state.names[&m.uid()].name, name("Black Tea House"));
    assert_eq!(state.names[&m.uid()].at, later.get());

    let live = w
        .node()
        .log()
        .dump_projection(&LiveProjection::new(&mut State::new(suite)))
        .unwrap();
    assert_eq!(live, store::render(&state).unwrap());
    assert_eq!(live["broker_names"].len(), 1);

    assert_eq!(w.state(), &state);
    w.assert_replay_matches(&live);

    w.reopen();
    assert_eq!(w.state(), &state);
}
