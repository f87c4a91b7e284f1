//! The wallet's side of merchants by name (docs/adr/0016): the broker's directory page is
//! taken only when signed by the pinned broker and naming this very query; the names it
//! brings, and the name a merchant signs into its catalogue, are remembered once (a name
//! seen again appends nothing), and the remembered names survive a reopen: replay equals
//! the live state and the `wallet_names` table.
#![allow(clippy::unwrap_used)]

mod support;

use shared::UnixSecs;
use shared::ids::Uid;
use shared::wire::bodies::{
    CatalogueResponseX1, ErrorBody, MerchantDirectoryRequestX0, MerchantDirectoryResponseX1,
    MerchantEntry, MerchantName,
};
use shared::wire::{Frame, Re, digest_of_verified};
use shared::{ErrorCode, Suite};
use support::{Setup, customer_keys, reply_clear};

use customer_cli::WalletError;
use customer_cli::core::WalletEvent;

const NOW: UnixSecs = UnixSecs::new(1_800_000_000);

fn name(s: &str) -> MerchantName {
    MerchantName::new(s).unwrap()
}

/// The query as the broker opens it: its frame and the `re` of an answer.
fn opened(s: &Setup, bytes: &[u8]) -> (Frame, Re, MerchantDirectoryRequestX0) {
    let frame = Frame::decode(bytes).unwrap();
    let verified = frame
        .part(0)
        .unwrap()
        .verify_signed::<MerchantDirectoryRequestX0>(customer_keys(s.suite).public())
        .unwrap();
    let digest = digest_of_verified(&frame.header, &[&verified.evidence]).unwrap();
    let re = Re::new(&frame.header, digest);
    (frame, re, verified.body)
}

fn page(re: Re, merchants: &[(Uid, &str)], more: bool) -> MerchantDirectoryResponseX1 {
    MerchantDirectoryResponseX1 {
        re,
        merchants: merchants
            .iter()
            .map(|(uid, n)| MerchantEntry {
                uid: *uid,
                name: name(n),
            })
            .collect(),
        more,
    }
}

fn named_events(s: &Setup) -> usize {
    s.wallet
        .log()
        .iter()
        .unwrap()
        .filter(|e| matches!(e.as_ref().unwrap().kind, WalletEvent::MerchantNamed { .. }))
        .count()
}

#[test]
fn a_signed_page_is_taken_and_its_names_remembered_once() {
    for suite in [Suite::Paper, Suite::Modern] {
        let mut s = Setup::new(suite);
        let (m1, m2) = (Uid([0x11; 16]), Uid([0x22; 16]));
        let (query, out) = s.wallet.directory_query(None).unwrap();
        assert_eq!(out.to, s.broker.keys.uid());
        let (frame, re, asked) = opened(&s, &out.frame);
        assert_eq!(asked.after, None);
        let answer = reply_clear(
            s.broker.keys,
            &frame,
            &page(re, &[(m1, "Green Tea House"), (m2, "Book Nook")], false),
        );
        let got = s
            .wallet
            .handle_directory(&query, None, &answer, NOW)
            .unwrap();
        assert_eq!(
            got.merchants,
            vec![(m1, name("Green Tea House")), (m2, name("Book Nook"))]
        );
        assert!(!got.more);
        assert_eq!(s.wallet.merchant_name(m1), Some(&name("Green Tea House")));
        assert_eq!(named_events(&s), 2);

        // The same names again: nothing appended.
        let before = s.snapshot();
        s.wallet
            .remember_names([(&m1, &name("Green Tea House"))], NOW)
            .unwrap();
        assert_eq!(s.snapshot(), before);
        // A changed name: one event.
        s.wallet
            .remember_names([(&m1, &name("Black Tea House"))], NOW)
            .unwrap();
        assert_eq!(named_events(&s), 3);

        // Reopened: the log replays to the same names, and the tables match it.
        let state = s.wallet.state().clone();
        let s = s.reopen();
        assert_eq!(s.wallet.state(), &state);
        s.wallet.check_tables().unwrap();
        assert_eq!(s.wallet.merchant_name(m1), Some(&name("Black Tea House")));
        assert_eq!(s.wallet.merchant_name(m2), Some(&name("Book Nook")));
    }
}

#[test]
fn a_forged_disordered_or_refused_page_is_refused_and_nothing_is_recorded() {
    let mut s = Setup::new(Suite::Paper);
    let (m1, m2) = (Uid([0x11; 16]), Uid([0x22; 16]));
    let before = s.snapshot();
    let (query, out) = s.wallet.directory_query(Some(m1)).unwrap();
    let (frame, re, asked) = opened(&s, &out.frame);
    assert_eq!(asked.after, Some(m1));

    // Signed by a merchant, not the broker asked.
    let wrong_sender = reply_clear(
        s.merchant.keys,
        &frame,
        &page(re.clone(), &[(m2, "Book Nook")], false),
    );
    assert!(matches!(
        s.wallet
            .handle_directory(&query, Some(m1), &wrong_sender, NOW),
        Err(WalletError::UnexpectedSender { .. })
    ));
    // Not after the cursor asked, or not in UID order.
    for merchants in [vec![(m1, "Green Tea House")], vec![(m2, "B"), (m2, "C")]] {
        let answer = reply_clear(s.broker.keys, &frame, &page(re.clone(), &merchants, false));
        assert!(matches!(
            s.wallet.handle_directory(&query, Some(m1), &answer, NOW),
            Err(WalletError::DirectoryOutOfOrder)
        ));
    }
    // The broker's signed refusal.
    let refused = reply_clear(
        s.broker.keys,
        &frame,
        &ErrorBody::new(re, ErrorCode::UnknownPeer, "not registered"),
    );
    assert!(matches!(
        s.wallet.handle_directory(&query, Some(m1), &refused, NOW),
        Err(WalletError::Refused {
            error_code: Some(ErrorCode::UnknownPeer),
            ..
        })
    ));
    assert_eq!(s.snapshot(), before);
}

/// The name a merchant signs into its catalogue comes with the listing.
#[test]
fn the_catalogue_brings_the_merchants_signed_name() {
    let mut s = Setup::new(Suite::Modern);
    s.learn_merchant();
    let merchant = s.merchant.keys.uid();
    let (query, out) = s.wallet.catalogue_query(merchant).unwrap();
    let frame = Frame::decode(&out.frame).unwrap();
    let verified = frame
        .part(0)
        .unwrap()
        .verify_signed::<shared::wire::bodies::CatalogueRequestX0>(customer_keys(s.suite).public())
        .unwrap();
    let re = Re::new(
        &frame.header,
        digest_of_verified(&frame.header, &[&verified.evidence]).unwrap(),
    );
    let answer = reply_clear(
        s.merchant.keys,
        &frame,
        &CatalogueResponseX1::named_listing(re, Some(name("Green Tea House")), Vec::new()),
    );
    let listing = s.wallet.handle_catalogue(&query, &answer).unwrap();
    assert_eq!(listing.name, Some(name("Green Tea House")));
}
