//! Round trips and exact bytes of the bodies.

use super::*;
use crate::amount::Amount;
use crate::ids::{CustId, Nonce, Pan, ScripId, TxId};
use crate::scrip::ScripBody;
use crate::suite::Suite;
use crate::wire::header::tests::{VECTOR_BODY, vector_header};

fn scrip(value: u64) -> Scrip {
    Scrip {
        body: ScripBody {
            producer: Uid([0xaa; 16]),
            value: Amount::from_minor(value),
            scrip_id: ScripId([1; 16]),
            cust_id: CustId([2; 16]),
            expires: 1_767_225_600,
        },
        certificate: vec![3; 32],
    }
}

fn re() -> Re {
    Re::new(&vector_header(Suite::Modern), vec![4; 32])
}

fn order() -> OrderInfo {
    OrderInfo {
        item_id: "sku-1".into(),
        name: "tea".into(),
        unit_price: Amount::from_minor(250),
        quantity: 3,
        order_id: OrderId([5; 16]),
    }
}

/// Encodes, checks the label, decodes, compares; and refuses the bytes with one more.
fn round_trip<B: Body + PartialEq + std::fmt::Debug>(body: &B, label: Label) {
    assert_eq!(B::LABEL, label);
    let bytes = body.to_bytes();
    assert_eq!(&B::from_bytes(&bytes).unwrap(), body);
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        B::from_bytes(&longer),
        Err(WireError::TrailingBytes { count: 1 })
    );
    if !bytes.is_empty() {
        assert!(B::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}

/// The sample body of test-vectors.md is exactly `BrokerScripRequestX0 { W = 1234,
/// N = 0x40..0x4f }`: varint 1234 (`d2 09`) then the nonce, fields in section 6 order.
#[test]
fn broker_scrip_request_is_the_vector_body() {
    let body = BrokerScripRequestX0 {
        value: Amount::from_minor(1234),
        nonce: Nonce(std::array::from_fn(|i| 0x40 + i as u8)),
    };
    assert_eq!(hex::encode(body.to_bytes()), VECTOR_BODY);
}

#[test]
fn re_comes_first_in_reply_bodies() {
    let ack = AckBody {
        re: re(),
        deadline: Some(7),
    };
    let bytes = ack.to_bytes();
    let re_bytes = postcard::to_allocvec(&re()).unwrap();
    assert_eq!(&bytes[..re_bytes.len()], re_bytes.as_slice());
    assert_eq!(&bytes[re_bytes.len()..], &[1, 7]);
    assert_eq!(ack.re(), &re());
    // Re: sender, label as its code, digest.
    assert_eq!(&re_bytes[..16], &[0xaa; 16]);
    assert_eq!(re_bytes[16], Label::BrokerScripRequest.code());
    assert_eq!(re_bytes[17], 32);
}

#[test]
fn registration_bodies_round_trip() {
    round_trip(
        &RegistrationRequestX0 {
            pan: Pan::new("GR1601101250000000012300695"),
        },
        Label::RegistrationRequest,
    );
    round_trip(
        &RegistrationResponseX1 {
            re: re(),
            uid: Uid([9; 16]),
            info: "registered".into(),
        },
        Label::RegistrationResponse,
    );
    round_trip(
        &PublicKeyRequestX0 {
            target: Uid([9; 16]),
            nonce: Nonce([1; 16]),
        },
        Label::PublicKeyRequest,
    );
    round_trip(
        &PublicKeyResponseX1 {
            re: re(),
            target: Uid([9; 16]),
            spki_der: vec![0x30, 0x82],
            nonce: Nonce([1; 16]),
        },
        Label::PublicKeyResponse,
    );
}

#[test]
fn broker_scrip_bodies_round_trip() {
    round_trip(
        &BrokerScripRequestX0 {
            value: Amount::from_minor(u64::MAX),
            nonce: Nonce([1; 16]),
        },
        Label::BrokerScripRequest,
    );
    round_trip(
        &BrokerScripResponseX1 {
            re: re(),
            scrip: scrip(100),
            cs_hash: vec![6; 32],
            nonce: Nonce([1; 16]),
        },
        Label::BrokerScripResponse,
    );
    round_trip(
        &BrokerScripTopUpX0 {
            scrip: scrip(100),
            cs_hash: vec![6; 20],
            new_value: Amount::from_minor(200),
            nonce: Nonce([1; 16]),
        },
        Label::BrokerScripTopUp,
    );
    round_trip(
        &BrokerScripWithdrawX0 {
            scrip: scrip(100),
            cs_hash: vec![6; 20],
        },
        Label::BrokerScripWithdraw,
    );
    round_trip(
        &BrokerScripWithdrawResponseX1 {
            re: re(),
            info: "credited".into(),
            value: Amount::from_minor(100),
        },
        Label::BrokerScripWithdrawResponse,
    );
}

#[test]
fn exchange_bodies_round_trip() {
    round_trip(
        &VendorScripNoticeX0 {
            merchant: Uid([7; 16]),
        },
        Label::VendorScripNotice,
    );
    round_trip(
        &VendorScripNoticeResponseX0 {
            re: re(),
            deadline: 1_800_000_000,
        },
        Label::VendorScripNoticeResponse,
    );
    round_trip(
        &VendorScripRequestX1 {
            scrip: scrip(500),
            cs_hash: vec![6; 32],
            value: Amount::from_minor(300),
        },
        Label::VendorScripRequest,
    );
    round_trip(
        &VendorScripRequestX2 {
            value: Amount::from_minor(300),
        },
        Label::VendorScripRequest,
    );
    round_trip(
        &ExchangeAuthorizationRequestX3 {
            value: Amount::from_minor(300),
            customer: Uid([8; 16]),
        },
        Label::ExchangeAuthorizationRequest,
    );
    for change in [
        None,
        Some(ScripWithSecret {
            scrip: scrip(200),
            cs_hash: vec![6; 32],
        }),
    ] {
        round_trip(
            &ChangeBrokerScripX4 {
                outcome: Decision::Ok,
                change,
                undertaking: Some(Undertaking {
                    body: vec![1, 2],
                    sig: vec![3; 64],
                }),
            },
            Label::ChangeBrokerScrip,
        );
    }
    round_trip(
        &ChangeBrokerScripX4 {
            outcome: Decision::nok(ErrorCode::Declined, "out of stock"),
            change: None,
            undertaking: None,
        },
        Label::ChangeBrokerScrip,
    );
    for decision in [
        Decision::Ok,
        Decision::nok(ErrorCode::ExceedsScrip, "B0 < W"),
    ] {
        round_trip(
            &ExchangeAuthorizationResponseX5 {
                re: re(),
                decision,
                customer: Uid([8; 16]),
                value: Amount::from_minor(300),
            },
            Label::ExchangeAuthorizationResponse,
        );
    }
    round_trip(
        &VendorScripResponseX6 {
            re: re(),
            scrip: scrip(300),
            cs_hash: vec![6; 32],
        },
        Label::VendorScripResponse,
    );
}

#[test]
fn purchase_bodies_round_trip() {
    round_trip(
        &PurchaseInitiatedX0 {
            merchant: Uid([7; 16]),
            value: Amount::from_minor(750),
        },
        Label::PurchaseInitiated,
    );
    round_trip(
        &PurchaseRequestX1 {
            scrip: scrip(1000),
            cs_hash: vec![6; 32],
            order: order(),
        },
        Label::PurchaseRequest,
    );
    round_trip(
        &PurchaseResponseX2 {
            re: re(),
            change: Some(ScripWithSecret {
                scrip: scrip(250),
                cs_hash: vec![6; 32],
            }),
            order: order(),
            receipt: Receipt {
                order_id: OrderId([5; 16]),
                paid: Amount::from_minor(750),
                issued_at: 1_800_000_000,
            },
        },
        Label::PurchaseResponse,
    );
    round_trip(
        &PurchaseCompletedX3 {
            customer: Uid([8; 16]),
            value: Amount::from_minor(750),
        },
        Label::PurchaseCompleted,
    );
}

#[test]
fn order_total_is_checked() {
    assert_eq!(order().total(), Ok(Amount::from_minor(750)));
    let huge = OrderInfo {
        quantity: u64::MAX,
        ..order()
    };
    assert_eq!(huge.total(), Err(crate::AmountError::Overflow));
    assert_eq!(
        OrderId([0xab; 16]).to_string(),
        "abababababababababababababababab"
    );
    assert_ne!(OrderId::random(), OrderId::random());
}

#[test]
fn vendor_top_up_bodies_round_trip() {
    round_trip(
        &VendorTopUpRequestX0 {
            new_value: Amount::from_minor(800),
            top_up: Amount::from_minor(300),
            merchant: Uid([7; 16]),
            broker_scrip: scrip(1000),
            cs_hash: vec![6; 32],
        },
        Label::VendorTopUpRequest,
    );
    round_trip(
        &VendorTopUpRequestX1 {
            new_value: Amount::from_minor(800),
            vendor_scrip: scrip(500),
            cs_hash: vec![6; 32],
        },
        Label::VendorTopUpRequest,
    );
    round_trip(
        &VendorTopUpAuthorizationX2 {
            new_value: Amount::from_minor(800),
            top_up: Amount::from_minor(300),
            customer: Uid([8; 16]),
            deadline: 1_800_000_000,
        },
        Label::VendorTopUpAuthorization,
    );
    let accept = VendorTopUpAcceptedX3::Accept {
        customer: Uid([8; 16]),
        top_up: Amount::from_minor(300),
        new_value: Amount::from_minor(800),
        scrip_id: ScripId([1; 16]),
    };
    let decline = VendorTopUpAcceptedX3::Decline {
        reason: "closed".into(),
        customer: Uid([8; 16]),
        top_up: Amount::from_minor(300),
    };
    for x3 in [&accept, &decline] {
        round_trip(x3, Label::VendorTopUpAccepted);
        assert_eq!(x3.customer(), Uid([8; 16]));
        assert_eq!(x3.top_up(), Amount::from_minor(300));
    }
    // accept/decline comes first, then UID_C (section 6.5 step 3).
    assert_eq!(
        accept.to_bytes()[..17],
        [[0u8].as_slice(), &[8; 16]].concat()
    );
    assert_eq!(decline.to_bytes()[0], 1);
    round_trip(
        &VendorTopUpDecisionBody {
            re: re(),
            decision: Decision::nok(ErrorCode::DeadlinePassed, "expired"),
        },
        Label::VendorTopUpDecision,
    );
    round_trip(
        &VendorTopUpResponseX4 {
            scrip: scrip(800),
            cs_hash: vec![6; 32],
        },
        Label::VendorTopUpResponse,
    );
    assert_eq!(ChangeBrokerScripX5::LABEL, Label::ChangeBrokerScrip);
}

#[test]
fn vendor_withdraw_bodies_round_trip() {
    round_trip(
        &VendorWithdrawRequestX0 {
            scrip: scrip(500),
            cs_hash: vec![6; 32],
        },
        Label::VendorWithdrawRequest,
    );
    round_trip(
        &VendorWithdrawRequestX1 {
            value: Amount::from_minor(500),
            merchant: Uid([7; 16]),
        },
        Label::VendorWithdrawRequest,
    );
    round_trip(
        &VendorWithdrawAuthorizationX2 {
            value: Amount::from_minor(500),
            customer: Uid([8; 16]),
            deadline: 1_800_000_000,
        },
        Label::VendorWithdrawAuthorization,
    );
    round_trip(
        &VendorWithdrawResponseX3 {
            re: re(),
            decision: Decision::Ok,
            customer: Uid([8; 16]),
            value: Amount::from_minor(500),
        },
        Label::VendorWithdrawResponse,
    );
    round_trip(
        &VendorWithdrawResultX4 {
            merchant: Uid([7; 16]),
            decision: Decision::nok(ErrorCode::MerchantBalanceTooLow, "bank:M < W"),
            info: "refused".into(),
        },
        Label::VendorWithdrawResult,
    );
}

#[test]
fn renew_bodies_round_trip() {
    round_trip(
        &RenewRequestX0 {
            scrip: scrip(500),
            cs_hash: vec![6; 32],
        },
        Label::RenewRequest,
    );
    round_trip(
        &RenewResponseX1 {
            re: re(),
            scrip: scrip(500),
            cs_hash: vec![6; 32],
        },
        Label::RenewResponse,
    );
}

#[test]
fn control_bodies_round_trip() {
    round_trip(
        &AckBody {
            re: re(),
            deadline: None,
        },
        Label::Ack,
    );
    let error = ErrorBody::new(re(), ErrorCode::Spent, "scrip is spent");
    assert_eq!(error.code, 16);
    assert_eq!(error.error_code(), Some(ErrorCode::Spent));
    round_trip(&error, Label::Error);
    let future = ErrorBody { code: 999, ..error };
    assert_eq!(future.error_code(), None);
    round_trip(&future, Label::Error);
    round_trip(
        &TransactionStatusBody { tx: TxId([3; 16]) },
        Label::TransactionStatus,
    );
    for status in [
        TxStatus::Pending,
        TxStatus::Frames {
            frames: vec![vec![1, 2, 3], vec![4]],
            omitted: 0,
        },
        TxStatus::Frames {
            frames: Vec::new(),
            omitted: 2,
        },
    ] {
        round_trip(
            &TransactionStatusResponseBody { re: re(), status },
            Label::TransactionStatusResponse,
        );
    }
    round_trip(
        &ScripLapsedNoticeBody {
            scrip_id: ScripId([1; 16]),
            owner: Uid([8; 16]),
            value: Amount::from_minor(500),
            expires: 1_767_225_600,
        },
        Label::ScripLapsedNotice,
    );
}

#[test]
fn stored_frames_are_bounded() {
    let many = TransactionStatusResponseBody {
        re: re(),
        status: TxStatus::Frames {
            frames: vec![vec![]; control::MAX_STORED_FRAMES + 1],
            omitted: 0,
        },
    };
    assert_eq!(
        TransactionStatusResponseBody::from_bytes(&many.to_bytes()),
        Err(WireError::Decode(postcard::Error::SerdeDeCustom))
    );
}

/// Section 7: the answer holds the most recent stored frames that fit one frame, and says
/// how many earlier ones it leaves out, so an asker never mistakes a partial answer for all.
#[test]
fn a_status_answer_keeps_the_latest_frames_that_fit_and_counts_the_rest() {
    assert_eq!(TxStatus::of_stored(&[]), TxStatus::Pending);
    let small: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1000]).collect();
    let many: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 10]).collect();
    let big = vec![vec![0u8; 25_000]; 4];
    let huge = vec![vec![0u8; 30_000], vec![0u8; crate::wire::MAX_FRAME_LEN]];
    // The stored frames, how many of the earliest the answer leaves out, and why.
    let cases: [(&[Vec<u8>], usize, &str); 4] = [
        (&small, 0, "all that fit"),
        (&many, 4, "at most MAX_STORED_FRAMES, the latest"),
        (&big, 2, "two of 25,000 bytes fit one answer, three do not"),
        (
            &huge,
            2,
            "a frame too large for any answer is never sent, and is counted",
        ),
    ];
    for (stored, omitted, why) in cases {
        let status = TxStatus::of_stored(stored);
        assert_eq!(
            status,
            TxStatus::Frames {
                frames: stored[omitted..].to_vec(),
                omitted: u32::try_from(omitted).unwrap()
            },
            "{why}"
        );
        // Whatever is chosen fits one frame with its response around it.
        let body = TransactionStatusResponseBody { re: re(), status };
        assert!(
            body.to_bytes().len() + control::STATUS_RESPONSE_RESERVE <= crate::wire::MAX_FRAME_LEN
        );
    }
}

#[test]
fn decisions_and_reasons() {
    assert!(Decision::Ok.is_ok());
    let nok = Decision::nok(ErrorCode::DeadlinePassed, "expired");
    assert!(!nok.is_ok());
    let Decision::Nok(reason) = nok else {
        panic!("not a NOK")
    };
    assert_eq!(reason.code, ErrorCode::DeadlinePassed.code());
    assert_eq!(reason.error_code(), Some(ErrorCode::DeadlinePassed));
    assert_eq!(reason.message, "expired");
}

/// A body decoded from bytes of another body type is refused or differs: the label check
/// of the openers is what stops such confusion; this only shows bodies do not collide
/// by accident on the simplest case.
#[test]
fn bodies_of_another_type_do_not_decode() {
    let x2 = VendorScripRequestX2 {
        value: Amount::from_minor(1),
    };
    assert!(VendorScripRequestX1::from_bytes(&x2.to_bytes()).is_err());
}
