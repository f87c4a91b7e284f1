//! The wallet's side of the catalogue query (docs/adr/0009): the listing is taken only
//! when signed by the merchant asked under the key cached by 6.0b and naming this very
//! query in `re`; anything else is refused and the wallet records nothing either way.
#![allow(clippy::unwrap_used)]

mod support;

use shared::wire::bodies::{CatalogueItem, CatalogueRequestX0, CatalogueResponseX1, ErrorBody};
use shared::wire::{Frame, Re, digest_of_verified};
use shared::{Amount, ErrorCode, Suite};
use support::{Setup, customer_keys, forger_keys, reply_clear};

use customer_cli::WalletError;

fn items() -> Vec<CatalogueItem> {
    vec![
        CatalogueItem {
            id: "pot".into(),
            name: "Tea pot".into(),
            unit_price: Amount::from_minor(2_500),
        },
        CatalogueItem {
            id: "tea".into(),
            name: "Green tea, 100 g".into(),
            unit_price: Amount::from_minor(450),
        },
    ]
}

/// The query as the merchant opens it: its frame and the `re` of an answer.
fn opened(s: &Setup, bytes: &[u8]) -> (Frame, Re) {
    let frame = Frame::decode(bytes).unwrap();
    let verified = frame
        .part(0)
        .unwrap()
        .verify_signed::<CatalogueRequestX0>(customer_keys(s.suite).public())
        .unwrap();
    let digest = digest_of_verified(&frame.header, &[&verified.evidence]).unwrap();
    let re = Re::new(&frame.header, digest);
    (frame, re)
}

#[test]
fn a_signed_listing_naming_the_query_is_taken_and_nothing_is_recorded() {
    for suite in [Suite::Paper, Suite::Modern] {
        let mut s = Setup::new(suite);
        let merchant = s.merchant.keys.uid();
        assert!(matches!(
            s.wallet.catalogue_query(merchant),
            Err(WalletError::UnknownPeer { uid }) if uid == merchant
        ));
        s.learn_merchant();
        let before = s.snapshot();
        let (query, out) = s.wallet.catalogue_query(merchant).unwrap();
        assert_eq!(out.to, merchant);
        let (frame, re) = opened(&s, &out.frame);
        let answer = reply_clear(
            s.merchant.keys,
            &frame,
            &CatalogueResponseX1::listing(re, items()),
        );
        let listing = s.wallet.handle_catalogue(&query, &answer).unwrap();
        assert_eq!(listing.merchant, merchant);
        assert_eq!(listing.items, items());
        assert_eq!(listing.omitted, 0);
        assert_eq!(
            listing.item("tea").unwrap().unit_price,
            Amount::from_minor(450)
        );
        assert!(listing.item("coffee").is_none());
        assert_eq!(s.snapshot(), before);
    }
}

#[test]
fn a_forged_stale_or_refused_answer_is_refused() {
    let mut s = Setup::new(Suite::Paper);
    let merchant = s.merchant.keys.uid();
    s.learn_merchant();
    let before = s.snapshot();
    let (query, out) = s.wallet.catalogue_query(merchant).unwrap();
    let (frame, re) = opened(&s, &out.frame);

    // Signed by a key that is not the merchant's, under the merchant's UID.
    let forged = {
        let header = frame
            .header
            .next(shared::wire::Label::CatalogueResponse, merchant);
        let body = CatalogueResponseX1::listing(re.clone(), items());
        let sig = forger_keys(Suite::Paper)
            .sign(&shared::wire::sig_input(&header, &shared::wire::Body::to_bytes(&body)).unwrap())
            .unwrap();
        Frame::new(
            header,
            vec![shared::wire::Part::Signed {
                body: shared::wire::Body::to_bytes(&body),
                sig,
            }],
        )
        .encode()
        .unwrap()
    };
    assert!(matches!(
        s.wallet.handle_catalogue(&query, &forged),
        Err(WalletError::BadReply(_))
    ));

    // The answer to another query (another tx and nonce): it answers nothing pending here.
    let (_, earlier) = s.wallet.catalogue_query(merchant).unwrap();
    let (earlier_frame, earlier_re) = opened(&s, &earlier.frame);
    let stale = reply_clear(
        s.merchant.keys,
        &earlier_frame,
        &CatalogueResponseX1::listing(earlier_re, items()),
    );
    assert!(matches!(
        s.wallet.handle_catalogue(&query, &stale),
        Err(WalletError::NoPendingRequest { tx }) if tx == earlier.tx
    ));

    // Signed by the broker, not the merchant asked.
    let wrong_sender = reply_clear(
        s.broker.keys,
        &frame,
        &CatalogueResponseX1::listing(re.clone(), items()),
    );
    assert!(matches!(
        s.wallet.handle_catalogue(&query, &wrong_sender),
        Err(WalletError::UnexpectedSender { .. })
    ));

    // The merchant's signed refusal.
    let refused = reply_clear(
        s.merchant.keys,
        &frame,
        &ErrorBody::new(re, ErrorCode::UnknownPeer, "unknown sender"),
    );
    assert!(matches!(
        s.wallet.handle_catalogue(&query, &refused),
        Err(WalletError::Refused {
            error_code: Some(ErrorCode::UnknownPeer),
            ..
        })
    ));
    assert_eq!(s.snapshot(), before);
}
