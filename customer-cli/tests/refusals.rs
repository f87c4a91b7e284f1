//! Tampered, forged and misdirected replies: each refused with its exact typed error and
//! no change to the wallet (state and log length), after which the genuine reply still
//! completes the request (protocol.md section 3: a reply whose `re`, signer or content does
//! not match the pending request is discarded).

mod support;

use customer_cli::WalletError;
use shared::UnixSecs;
use shared::wire::bodies::{
    BrokerScripResponseX1, BrokerScripWithdrawResponseX1, ErrorBody, PublicKeyResponseX1,
    RegistrationResponseX1, RenewResponseX1,
};
use shared::wire::{Frame, Inner, Label, Part, Re, WireError, seal, sign};
use shared::{Amount, CustomerSecret, ErrorCode, Nonce, Suite, TxId};
use support::*;

/// Feeds `reply` and asserts it is refused with nothing changed; returns the error.
fn refused(s: &mut Setup, reply: &[u8], now: u64) -> WalletError {
    let before = s.snapshot();
    let err = s
        .wallet
        .handle_reply(reply, UnixSecs::new(now))
        .expect_err("the reply must be refused");
    assert_eq!(
        s.snapshot(),
        before,
        "a refused reply changed the wallet: {err}"
    );
    s.wallet
        .check_tables()
        .expect("tables still equal the state");
    err
}

/// A pending 6.1 request of 1500 and the broker's view of it.
fn pending_obtain(
    s: &mut Setup,
) -> (
    Opened1<shared::wire::bodies::BrokerScripRequestX0>,
    shared::Scrip,
    CustomerSecret,
) {
    s.register();
    let out = s
        .wallet
        .obtain_broker_scrip(Amount::from_minor(1500), UnixSecs::new(NOW))
        .expect("6.1 starts");
    let req = open_obtain(&s.broker, &s.id, &out.frame);
    let (scrip, cs) = s.broker.issue(1500, NOW);
    (req, scrip, cs)
}

fn response(
    req: &Opened1<shared::wire::bodies::BrokerScripRequestX0>,
    scrip: &shared::Scrip,
    cs: &CustomerSecret,
) -> BrokerScripResponseX1 {
    BrokerScripResponseX1 {
        re: req.re.clone(),
        scrip: scrip.clone(),
        cs_hash: cs.cs_hash(req.frame.header.suite),
        nonce: req.body.nonce,
    }
}

/// 6.1: every way the BrokerScripResponse can be wrong, then the genuine one.
#[test]
fn tampered_broker_scrip_responses_are_refused() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let (req, scrip, cs) = pending_obtain(&mut s);
        let broker = s.broker.keys;
        let forger = forger_keys(suite);
        let good = response(&req, &scrip, &cs);
        let secret = Some((scrip.id(), &cs));

        // Signed and sent by another key.
        let e = refused(
            &mut s,
            &reply_sealed(forger, &req.frame, &good, secret),
            NOW,
        );
        assert!(matches!(
            e,
            WalletError::UnexpectedSender { expected, found }
                if expected == broker.uid() && found == forger.uid()
        ));
        // Claims to be the broker, signed by another key.
        let e = refused(
            &mut s,
            &forged_sealed(forger, broker, &req.frame, &good, secret),
            NOW,
        );
        assert!(matches!(e, WalletError::BadReply(WireError::BadSignature)));
        // `re` naming another digest, label or sender.
        for re in [
            Re {
                digest: vec![0; req.re.digest.len()],
                ..req.re.clone()
            },
            Re {
                label: Label::BrokerScripTopUp,
                ..req.re.clone()
            },
            Re {
                sender: forger.uid(),
                ..req.re.clone()
            },
        ] {
            let body = BrokerScripResponseX1 { re, ..good.clone() };
            let e = refused(
                &mut s,
                &reply_sealed(broker, &req.frame, &body, secret),
                NOW,
            );
            assert!(matches!(e, WalletError::ReMismatch), "{e}");
        }
        // Another nonce.
        let body = BrokerScripResponseX1 {
            nonce: Nonce([7; 16]),
            ..good.clone()
        };
        let e = refused(
            &mut s,
            &reply_sealed(broker, &req.frame, &body, secret),
            NOW,
        );
        assert!(matches!(e, WalletError::NonceMismatch));
        // Another value.
        let (small, small_cs) = s.broker.issue(1499, NOW);
        let body = BrokerScripResponseX1 {
            re: req.re.clone(),
            scrip: small.clone(),
            cs_hash: small_cs.cs_hash(suite),
            nonce: req.body.nonce,
        };
        let e = refused(
            &mut s,
            &reply_sealed(broker, &req.frame, &body, Some((small.id(), &small_cs))),
            NOW,
        );
        assert!(matches!(
            e,
            WalletError::ValueMismatch { expected, found }
                if expected == Amount::from_minor(1500) && found == Amount::from_minor(1499)
        ));
        // A scrip of another producer.
        let (theirs, theirs_cs) = s.merchant.issue(1500, NOW);
        let body = BrokerScripResponseX1 {
            re: req.re.clone(),
            scrip: theirs.clone(),
            cs_hash: theirs_cs.cs_hash(suite),
            nonce: req.body.nonce,
        };
        let e = refused(
            &mut s,
            &reply_sealed(broker, &req.frame, &body, Some((theirs.id(), &theirs_cs))),
            NOW,
        );
        assert!(matches!(e, WalletError::WrongProducer { .. }));
        // A CS that does not hash to cs_hash, and no CS at all.
        let wrong = CustomerSecret::from_bytes(b"not the secret");
        let e = refused(
            &mut s,
            &reply_sealed(broker, &req.frame, &good, Some((scrip.id(), &wrong))),
            NOW,
        );
        assert!(matches!(e, WalletError::SecretMismatch { scrip_id } if scrip_id == scrip.id()));
        let e = refused(&mut s, &reply_sealed(broker, &req.frame, &good, None), NOW);
        assert!(matches!(e, WalletError::SecretMismatch { .. }));
        // Sealed to another party.
        let header = reply_header(&req.frame, Label::BrokerScripResponse, broker);
        let inners: Vec<Inner> = vec![sign(broker, &header, &good).unwrap().into()];
        let misaddressed = Frame::new(
            header,
            vec![seal(&header, s.merchant.keys.public(), &inners).unwrap()],
        )
        .encode()
        .unwrap();
        let e = refused(&mut s, &misaddressed, NOW);
        assert!(matches!(
            e,
            WalletError::BadReply(WireError::NotForMe { .. })
        ));
        // The reply label of another request.
        let other = reply_clear(
            broker,
            &req.frame,
            &BrokerScripWithdrawResponseX1 {
                re: req.re.clone(),
                info: String::new(),
                value: Amount::from_minor(1500),
            },
        );
        let e = refused(&mut s, &other, NOW);
        assert!(matches!(
            e,
            WalletError::UnexpectedLabel {
                request: Label::BrokerScripRequest,
                reply: Label::BrokerScripWithdrawResponse
            }
        ));
        // Not a frame.
        let e = refused(&mut s, b"\x00\x01garbage", NOW);
        assert!(matches!(e, WalletError::Decode(_)));

        // The genuine reply still completes the request; repeated, it is discarded.
        let genuine = reply_scrip(broker, &req, &scrip, &cs, Some(req.body.nonce));
        s.wallet.handle_reply(&genuine, UnixSecs::new(NOW)).unwrap();
        assert_eq!(s.wallet.broker_scrip().unwrap().scrip, scrip);
        let e = refused(&mut s, &genuine, NOW);
        assert!(matches!(e, WalletError::NoPendingRequest { .. }));
    }
}

/// A signed body cut from the broker's reply in one tx and pasted into a frame of another
/// fails its signature: the signature covers the header (protocol.md section 3).
#[test]
fn a_signed_reply_body_moved_to_another_tx_is_refused() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.register();
        // Two pending requests: 6.0b for the merchant's key, and 6.1.
        let out_a = s
            .wallet
            .request_public_key(s.merchant.keys.uid(), UnixSecs::new(NOW))
            .unwrap();
        let req_a = open_public_key(&out_a.frame, customer_keys(suite));
        let out_b = s
            .wallet
            .obtain_broker_scrip(Amount::from_minor(10), UnixSecs::new(NOW))
            .unwrap();
        let req_b = open_obtain(&s.broker, &s.id, &out_b.frame);
        let (scrip, cs) = s.broker.issue(10, NOW);
        let genuine_b = Frame::decode(&reply_scrip(
            s.broker.keys,
            &req_b,
            &scrip,
            &cs,
            Some(req_b.body.nonce),
        ))
        .unwrap();
        // B's whole reply moved under A's tx.
        let mut moved = genuine_b.clone();
        moved.header.tx = out_a.tx;
        let e = refused(&mut s, &moved.encode().unwrap(), NOW);
        // A's pending request is a 6.0b: a BrokerScripResponse does not answer it.
        assert!(matches!(e, WalletError::UnexpectedLabel { .. }));
        // And a PublicKeyResponse body signed for tx B, moved to tx A.
        let body = PublicKeyResponseX1 {
            re: req_a.re.clone(),
            target: s.merchant.keys.uid(),
            spki_der: s.merchant.keys.public().spki_der().to_vec(),
            nonce: req_a.body.nonce,
        };
        let header_b = reply_header(&req_b.frame, Label::PublicKeyResponse, s.broker.keys);
        let signed_b = sign(s.broker.keys, &header_b, &body).unwrap();
        let header_a = reply_header(&req_a.frame, Label::PublicKeyResponse, s.broker.keys);
        let pasted = Frame::new(
            header_a,
            vec![seal(&header_a, customer_keys(suite).public(), &[signed_b.into()]).unwrap()],
        );
        let e = refused(&mut s, &pasted.encode().unwrap(), NOW);
        assert!(matches!(e, WalletError::BadReply(WireError::BadSignature)));
    }
}

/// A reply of another suite, or to a tx with no pending request, is refused before any
/// cryptography.
#[test]
fn replies_of_another_suite_or_tx_are_refused() {
    let mut s = Setup::new(Suite::Modern);
    let (req, scrip, cs) = pending_obtain(&mut s);
    let mut frame = Frame::decode(&reply_scrip(
        s.broker.keys,
        &req,
        &scrip,
        &cs,
        Some(req.body.nonce),
    ))
    .unwrap();
    frame.header.tx = TxId([9; 16]);
    let e = refused(&mut s, &frame.encode().unwrap(), NOW);
    assert!(matches!(e, WalletError::NoPendingRequest { tx } if tx == TxId([9; 16])));
    frame.header.tx = req.frame.header.tx;
    frame.header.suite = Suite::Paper;
    let e = refused(&mut s, &frame.encode().unwrap(), NOW);
    assert!(matches!(
        e,
        WalletError::ReplySuite {
            expected: Suite::Modern,
            found: Suite::Paper
        }
    ));
}

/// `Error` replies are authenticated like any reply: a forged one or one naming another
/// request changes nothing, not even the status.
#[test]
fn forged_or_misdirected_error_replies_change_nothing() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let bk = s.broker.keys;
        let (req, _, _) = pending_obtain(&mut s);
        let forger = forger_keys(suite);
        let body = ErrorBody::new(req.re.clone(), ErrorCode::InsufficientFunds, "no");
        let header = reply_header(&req.frame, Label::Error, s.broker.keys);
        let bytes = shared::wire::Body::to_bytes(&body);
        let sig = forger
            .sign(&shared::wire::sig_input(&header, &bytes).unwrap())
            .unwrap();
        let forged = Frame::new(header, vec![Part::Signed { body: bytes, sig }])
            .encode()
            .unwrap();
        let e = refused(&mut s, &forged, NOW);
        assert!(matches!(e, WalletError::BadReply(WireError::BadSignature)));
        let other_re = ErrorBody::new(
            Re {
                digest: vec![1; 4],
                ..req.re.clone()
            },
            ErrorCode::InsufficientFunds,
            "no",
        );
        let e = refused(&mut s, &reply_clear(bk, &req.frame, &other_re), NOW);
        assert!(matches!(e, WalletError::ReMismatch));
        assert!(
            s.wallet
                .pending()
                .all(|p| p.status == customer_cli::core::PendingStatus::Sent)
        );
    }
}

/// 6.0: the registered UID must be the wallet's; 6.0b: the key must be the target's and
/// N echoed.
#[test]
fn registration_and_public_key_replies_are_checked() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let bk = s.broker.keys;
        let out = s.wallet.register(UnixSecs::new(NOW)).unwrap();
        let req = open_registration(&s.broker, &s.id, &out.frame);
        let wrong_uid = RegistrationResponseX1 {
            re: req.re.clone(),
            uid: s.merchant.keys.uid(),
            info: String::new(),
        };
        let e = refused(&mut s, &reply_clear(bk, &req.frame, &wrong_uid), NOW);
        assert!(matches!(e, WalletError::UidMismatch { .. }));
        s.wallet
            .handle_reply(
                &reply_clear(
                    s.broker.keys,
                    &req.frame,
                    &RegistrationResponseX1 {
                        uid: s.wallet.uid(),
                        ..wrong_uid
                    },
                ),
                UnixSecs::new(NOW),
            )
            .unwrap();

        let target = s.merchant.keys.uid();
        let out = s
            .wallet
            .request_public_key(target, UnixSecs::new(NOW))
            .unwrap();
        let req = open_public_key(&out.frame, customer_keys(suite));
        let good = PublicKeyResponseX1 {
            re: req.re.clone(),
            target,
            spki_der: s.merchant.keys.public().spki_der().to_vec(),
            nonce: req.body.nonce,
        };
        // Another peer's key under the target's UID.
        let swapped = PublicKeyResponseX1 {
            spki_der: forger_keys(suite).public().spki_der().to_vec(),
            ..good.clone()
        };
        let e = refused(&mut s, &reply_sealed(bk, &req.frame, &swapped, None), NOW);
        assert!(matches!(e, WalletError::BadPeerKey { target: t } if t == target));
        // Not a key at all.
        let junk = PublicKeyResponseX1 {
            spki_der: vec![1, 2, 3],
            ..good.clone()
        };
        let e = refused(&mut s, &reply_sealed(bk, &req.frame, &junk, None), NOW);
        assert!(matches!(e, WalletError::BadPeerKey { .. }));
        // Another target, another nonce.
        let other_target = PublicKeyResponseX1 {
            target: forger_keys(suite).uid(),
            spki_der: forger_keys(suite).public().spki_der().to_vec(),
            ..good.clone()
        };
        let e = refused(
            &mut s,
            &reply_sealed(bk, &req.frame, &other_target, None),
            NOW,
        );
        assert!(matches!(e, WalletError::UidMismatch { .. }));
        let other_nonce = PublicKeyResponseX1 {
            nonce: Nonce([3; 16]),
            ..good.clone()
        };
        let e = refused(
            &mut s,
            &reply_sealed(bk, &req.frame, &other_nonce, None),
            NOW,
        );
        assert!(matches!(e, WalletError::NonceMismatch));
        s.wallet
            .handle_reply(
                &reply_sealed(bk, &req.frame, &good, None),
                UnixSecs::new(NOW),
            )
            .unwrap();
    }
}

/// 6.4 new value, 6.6 credited value, 6.8 unchanged value: each checked.
#[test]
fn values_of_top_up_withdraw_and_renew_replies_are_checked() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.register();
        s.obtain(1000);
        let broker = s.broker.keys;

        // 6.4: B1 must be of W_new.
        let out = s
            .wallet
            .top_up_broker_scrip(Amount::from_minor(3000), UnixSecs::new(NOW))
            .unwrap();
        let req = open_top_up(&s.broker, &s.id, &out.frame);
        let (short, short_cs) = s.broker.issue(2999, NOW);
        let e = refused(
            &mut s,
            &reply_scrip(broker, &req, &short, &short_cs, Some(req.body.nonce)),
            NOW,
        );
        assert!(matches!(
            e,
            WalletError::ValueMismatch { expected, .. } if expected == Amount::from_minor(3000)
        ));
        let (b1, cs1) = s.broker.issue(3000, NOW);
        let e = refused(&mut s, &reply_scrip(broker, &req, &b1, &cs1, None), NOW);
        assert!(matches!(e, WalletError::NonceMismatch));
        s.wallet
            .handle_reply(
                &reply_scrip(broker, &req, &b1, &cs1, Some(req.body.nonce)),
                UnixSecs::new(NOW),
            )
            .unwrap();

        // 6.8: E1 keeps E0's value.
        let later = NOW + LIFETIME + 1;
        let out = s.wallet.renew(broker.uid(), UnixSecs::new(later)).unwrap();
        let req = open_renew(&s.broker, &out.frame, later);
        let (more, more_cs) = s.broker.issue(3001, later);
        let body = RenewResponseX1 {
            re: req.re.clone(),
            scrip: more.clone(),
            cs_hash: more_cs.cs_hash(suite),
        };
        let e = refused(
            &mut s,
            &reply_sealed(broker, &req.frame, &body, Some((more.id(), &more_cs))),
            later,
        );
        assert!(matches!(
            e,
            WalletError::ValueMismatch { expected, found }
                if expected == Amount::from_minor(3000) && found == Amount::from_minor(3001)
        ));
        let (e1, e1_cs) = s.broker.issue(3000, later);
        let body = RenewResponseX1 {
            re: req.re.clone(),
            scrip: e1.clone(),
            cs_hash: e1_cs.cs_hash(suite),
        };
        s.wallet
            .handle_reply(
                &reply_sealed(broker, &req.frame, &body, Some((e1.id(), &e1_cs))),
                UnixSecs::new(later),
            )
            .unwrap();

        // 6.6: the credited value must be the scrip's.
        let out = s
            .wallet
            .withdraw_broker_scrip(UnixSecs::new(later))
            .unwrap();
        let req = open_withdraw(&s.broker, &s.id, &out.frame);
        let body = BrokerScripWithdrawResponseX1 {
            re: req.re.clone(),
            info: String::new(),
            value: Amount::from_minor(2000),
        };
        let e = refused(&mut s, &reply_clear(broker, &req.frame, &body), later);
        assert!(matches!(e, WalletError::ValueMismatch { .. }));
        let body = BrokerScripWithdrawResponseX1 {
            value: Amount::from_minor(3000),
            ..body
        };
        s.wallet
            .handle_reply(
                &reply_clear(broker, &req.frame, &body),
                UnixSecs::new(later),
            )
            .unwrap();
        assert!(s.wallet.broker_scrip().is_none());
    }
}

/// Every single-byte change of a genuine reply (header, lengths, wrapped key, ciphertext,
/// body, signature) is refused and changes nothing; the genuine reply then completes.
/// Paper suite at every byte, modern at every fifth (its RSA-2048 unwraps are slower).
#[test]
fn every_flipped_byte_of_a_reply_is_refused() {
    for (suite, step) in [(Suite::Paper, 1), (Suite::Modern, 5)] {
        let mut s = Setup::new(suite);
        let (req, scrip, cs) = pending_obtain(&mut s);
        let genuine = reply_scrip(s.broker.keys, &req, &scrip, &cs, Some(req.body.nonce));
        for i in (0..genuine.len()).step_by(step) {
            let mut bytes = genuine.clone();
            bytes[i] ^= 0x01;
            refused(&mut s, &bytes, NOW);
        }
        s.wallet.handle_reply(&genuine, UnixSecs::new(NOW)).unwrap();
        assert_eq!(s.wallet.broker_scrip().unwrap().scrip, scrip);
    }
}
