//! Every flow of the wallet end to end against a stand-in broker (and merchant) that opens
//! the requests with the `shared::wire` openers, as the nodes do, and answers with the wire
//! builders: 6.0, 6.0b, 6.1, 6.4, 6.6, 6.8, in both suites.

mod support;

use customer_cli::WalletError;
use customer_cli::core::{HistoryKind, PendingStatus};
use shared::UnixSecs;
use shared::wire::Label;
use shared::wire::bodies::{BrokerScripWithdrawResponseX1, PublicKeyResponseX1, RenewResponseX1};
use shared::{Amount, ErrorCode, Suite};
use support::*;

/// 6.0: the request is sealed to the broker and carries X0 = PAN, an IdProof that verifies
/// against the ID the broker recomputes, and the wallet's key; the reply registers the UID.
#[test]
fn registration_in_both_suites() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let out = s.wallet.register(UnixSecs::new(NOW)).unwrap();
        assert_eq!(out.label, Label::RegistrationRequest);
        assert_eq!(out.to, s.broker.keys.uid());
        let req = open_registration(&s.broker, &s.id, &out.frame);
        assert_eq!(req.body.pan.as_str(), PAN);
        assert_eq!(s.wallet.pending().count(), 1);
        let reply = reply_clear(
            s.broker.keys,
            &req.frame,
            &shared::wire::bodies::RegistrationResponseX1 {
                re: req.re.clone(),
                uid: s.wallet.uid(),
                info: "welcome".into(),
            },
        );
        let done = s.wallet.handle_reply(&reply, UnixSecs::new(NOW)).unwrap();
        assert_eq!(
            done.what,
            HistoryKind::Registered {
                uid: s.wallet.uid()
            }
        );
        assert_eq!(s.wallet.state().registered, Some(s.wallet.uid()));
        assert_eq!(s.wallet.pending().count(), 0);
        // Registered once: a second registration is refused locally.
        assert!(matches!(
            s.wallet.register(UnixSecs::new(NOW)),
            Err(WalletError::AlreadyRegistered { .. })
        ));
    }
}

/// 6.0b: X0 = (target, N) in the clear, signed by the wallet; the sealed reply's key is
/// cached under the target's UID, and a later 6.8 to that merchant can be sealed to it.
#[test]
fn public_key_request_caches_the_key() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        let target = s.merchant.keys.uid();
        assert_eq!(s.wallet.state().key_of(target), None);
        let out = s
            .wallet
            .request_public_key(target, UnixSecs::new(NOW))
            .unwrap();
        let req = open_public_key(&out.frame, customer_keys(suite));
        assert_eq!(req.body.target, target);
        assert_eq!(part_kinds(&req.frame), ["Signed"]);
        let reply = reply_sealed(
            s.broker.keys,
            &req.frame,
            &PublicKeyResponseX1 {
                re: req.re.clone(),
                target,
                spki_der: s.merchant.keys.public().spki_der().to_vec(),
                nonce: req.body.nonce,
            },
            None,
        );
        let done = s.wallet.handle_reply(&reply, UnixSecs::new(NOW)).unwrap();
        assert_eq!(done.what, HistoryKind::PeerKey { uid: target });
        assert_eq!(
            s.wallet.state().key_of(target).as_ref(),
            Some(s.merchant.keys.public())
        );
    }
}

/// 6.1: `Sealed(to B){ IdProof, Signed(X0 = W, N) }`; the reply's B0 is stored with its CS
/// sealed under the wallet's key, and the CS opens to the one the broker issued.
#[test]
fn obtain_broker_scrip_in_both_suites() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.register();
        let out = s
            .wallet
            .obtain_broker_scrip(Amount::from_minor(1500), UnixSecs::new(NOW))
            .unwrap();
        let req = open_obtain(&s.broker, &s.id, &out.frame);
        assert_eq!(req.body.value, Amount::from_minor(1500));
        let (scrip, cs) = s.broker.issue(1500, NOW);
        let reply = reply_scrip(s.broker.keys, &req, &scrip, &cs, Some(req.body.nonce));
        let done = s.wallet.handle_reply(&reply, UnixSecs::new(NOW)).unwrap();
        assert_eq!(
            done.what,
            HistoryKind::BrokerScripObtained {
                value: Amount::from_minor(1500)
            }
        );
        let held = s.wallet.broker_scrip().unwrap();
        assert_eq!(held.scrip, scrip);
        assert_eq!(held.cs_hash, cs.cs_hash(suite));
        assert_eq!(s.wallet.customer_secret(s.broker.keys.uid()).unwrap(), cs);
        // Section 4: one live BrokerScrip; the next purchase of one is a top-up.
        assert!(matches!(
            s.wallet
                .obtain_broker_scrip(Amount::from_minor(1), UnixSecs::new(NOW)),
            Err(WalletError::BrokerScripLive { .. })
        ));
    }
}

/// 6.4: X0 carries B0, its cs_hash, W_new and N, with CS_B0 beside it (the broker validates
/// it with its Mint); the reply's B1 of W_new replaces B0.
#[test]
fn top_up_broker_scrip_in_both_suites() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.register();
        let (b0, cs0) = s.obtain(1000);
        assert!(matches!(
            s.wallet
                .top_up_broker_scrip(Amount::from_minor(1000), UnixSecs::new(NOW)),
            Err(WalletError::TopUpNotLarger { .. })
        ));
        let out = s
            .wallet
            .top_up_broker_scrip(Amount::from_minor(2500), UnixSecs::new(NOW))
            .unwrap();
        let req = open_top_up(&s.broker, &s.id, &out.frame);
        assert_eq!(req.body.scrip, b0);
        assert_eq!(req.secret.as_ref(), Some(&cs0));
        assert_eq!(req.body.new_value, Amount::from_minor(2500));
        // B0 is presented by a pending request: nothing else may present it meanwhile.
        assert!(matches!(
            s.wallet.withdraw_broker_scrip(UnixSecs::new(NOW)),
            Err(WalletError::ScripBusy { .. })
        ));
        let (b1, cs1) = s.broker.issue(2500, NOW);
        let reply = reply_scrip(s.broker.keys, &req, &b1, &cs1, Some(req.body.nonce));
        let done = s.wallet.handle_reply(&reply, UnixSecs::new(NOW)).unwrap();
        assert_eq!(
            done.what,
            HistoryKind::BrokerScripToppedUp {
                from: Amount::from_minor(1000),
                to: Amount::from_minor(2500)
            }
        );
        assert_eq!(s.wallet.broker_scrip().unwrap().scrip, b1);
        assert_eq!(s.wallet.customer_secret(s.broker.keys.uid()).unwrap(), cs1);
    }
}

/// 6.6: X0 = (B0, cs_hash) with CS_B0; the clear reply's value must be B0's; B0 is deleted.
#[test]
fn withdraw_broker_scrip_in_both_suites() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.register();
        let (b0, cs0) = s.obtain(700);
        let out = s.wallet.withdraw_broker_scrip(UnixSecs::new(NOW)).unwrap();
        let req = open_withdraw(&s.broker, &s.id, &out.frame);
        assert_eq!(req.body.scrip, b0);
        assert_eq!(req.secret.as_ref(), Some(&cs0));
        let reply = reply_clear(
            s.broker.keys,
            &req.frame,
            &BrokerScripWithdrawResponseX1 {
                re: req.re.clone(),
                info: "credited".into(),
                value: Amount::from_minor(700),
            },
        );
        let done = s.wallet.handle_reply(&reply, UnixSecs::new(NOW)).unwrap();
        assert_eq!(
            done.what,
            HistoryKind::BrokerScripWithdrawn {
                value: Amount::from_minor(700)
            }
        );
        assert!(s.wallet.broker_scrip().is_none());
        assert!(matches!(
            s.wallet.withdraw_broker_scrip(UnixSecs::new(NOW)),
            Err(WalletError::NoScrip { .. })
        ));
    }
}

/// 6.8 of an expired BrokerScrip: sealed to the broker, no IdProof; E1 of the same value.
#[test]
fn renew_broker_scrip_in_both_suites() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.register();
        let (e0, _) = s.obtain(900);
        let later = NOW + LIFETIME + 10; // E0 has expired.
        let out = s
            .wallet
            .renew(s.broker.keys.uid(), UnixSecs::new(later))
            .unwrap();
        let req = open_renew(&s.broker, &out.frame, later);
        assert_eq!(req.body.scrip, e0);
        let (e1, cs1) = s.broker.issue(900, later);
        let reply = reply_sealed(
            s.broker.keys,
            &req.frame,
            &RenewResponseX1 {
                re: req.re.clone(),
                scrip: e1.clone(),
                cs_hash: cs1.cs_hash(suite),
            },
            Some((e1.id(), &cs1)),
        );
        let done = s.wallet.handle_reply(&reply, UnixSecs::new(later)).unwrap();
        assert_eq!(
            done.what,
            HistoryKind::ScripRenewed {
                producer: s.broker.keys.uid(),
                value: Amount::from_minor(900),
                expires: e1.body.expires
            }
        );
        assert_eq!(s.wallet.broker_scrip().unwrap().scrip, e1);
        assert_eq!(s.wallet.customer_secret(s.broker.keys.uid()).unwrap(), cs1);
    }
}

/// 6.8 of a scrip the wallet does not hold (a merchant's, or a BrokerScrip before 6.1) is
/// refused before anything is saved.
#[test]
fn renewal_of_a_scrip_not_held_saves_nothing() {
    let suite = Suite::Paper;
    let mut s = Setup::new(suite);
    let before = s.snapshot();
    assert!(matches!(
        s.wallet.renew(s.merchant.keys.uid(), UnixSecs::new(NOW)),
        Err(WalletError::NoScrip { .. })
    ));
    assert!(matches!(
        s.wallet.renew(s.broker.keys.uid(), UnixSecs::new(NOW)),
        Err(WalletError::NoScrip { .. })
    ));
    assert_eq!(s.snapshot(), before);
}

/// A signed `Error` reply is a typed error with its code; only the request's status
/// changes, and the request can be repeated (same digest) and then succeed.
#[test]
fn error_reply_is_typed_and_the_request_can_be_repeated() {
    for suite in Suite::ALL {
        let mut s = Setup::new(suite);
        s.register();
        let out = s
            .wallet
            .obtain_broker_scrip(Amount::from_minor(5000), UnixSecs::new(NOW))
            .unwrap();
        let req = open_obtain(&s.broker, &s.id, &out.frame);
        let (state_before, len_before) = s.snapshot();
        let err = s
            .wallet
            .handle_reply(
                &reply_error(s.broker.keys, &req, ErrorCode::InsufficientFunds),
                UnixSecs::new(NOW),
            )
            .unwrap_err();
        assert_eq!(err.refused_code(), Some(ErrorCode::InsufficientFunds));
        assert!(matches!(
            err,
            WalletError::Refused {
                label: Label::BrokerScripRequest,
                code: 10,
                ..
            }
        ));
        // One event (the status), no scrip, the same pending request.
        assert_eq!(s.wallet.log().len().unwrap(), len_before + 1);
        assert!(s.wallet.broker_scrip().is_none());
        let pending = &s.wallet.state().pending[&(out.tx, out.label)];
        assert!(matches!(
            pending.status,
            PendingStatus::Refused { code: 10, .. }
        ));
        assert_eq!(
            pending.request,
            state_before.pending[&(out.tx, out.label)].request
        );
        // Repeat: the broker sees the same digest; this time it issues.
        let again = s.wallet.resend(out.tx, out.label).unwrap();
        let req2 = open_obtain(&s.broker, &s.id, &again.frame);
        assert_eq!(req2.re, req.re);
        assert_eq!(req2.body, req.body);
        let (scrip, cs) = s.broker.issue(5000, NOW);
        let reply = reply_scrip(s.broker.keys, &req2, &scrip, &cs, Some(req2.body.nonce));
        s.wallet.handle_reply(&reply, UnixSecs::new(NOW)).unwrap();
        assert_eq!(s.wallet.broker_scrip().unwrap().scrip, scrip);
    }
}

/// A refused request may be given up; one that was not refused may not (it may have
/// succeeded at the node). A registration the broker refused (`RegistrationRefused`, 6.0:
/// a wrong PANSecret, here) ends with nothing pending, and the corrected details register.
#[test]
fn only_a_refused_request_can_be_abandoned() {
    let mut s = Setup::new(Suite::Paper);
    let wrong = shared::AccountId::derive(
        Suite::Paper,
        &shared::PanSecret::new("not the account's secret"),
        &shared::Pan::new(PAN),
    );
    s.wallet
        .link_account(
            shared::Pan::new(PAN),
            &shared::PanSecret::new("not the account's secret"),
            UnixSecs::new(NOW),
        )
        .unwrap();
    let out = s.wallet.register(UnixSecs::new(NOW)).unwrap();
    assert!(matches!(
        s.wallet.abandon(out.tx, out.label, UnixSecs::new(NOW)),
        Err(WalletError::NotRefused { .. })
    ));
    let req = open_registration(&s.broker, &wrong, &out.frame);
    let err = s
        .wallet
        .handle_reply(
            &reply_error(s.broker.keys, &req, ErrorCode::RegistrationRefused),
            UnixSecs::new(NOW),
        )
        .unwrap_err();
    assert_eq!(err.refused_code(), Some(ErrorCode::RegistrationRefused));
    s.wallet
        .abandon(out.tx, out.label, UnixSecs::new(NOW))
        .unwrap();
    assert_eq!(s.wallet.pending().count(), 0);
    let kinds: Vec<_> = s.wallet.history().map(|h| h.what.clone()).collect();
    assert_eq!(
        kinds,
        [
            HistoryKind::Refused {
                label: Label::RegistrationRequest,
                code: ErrorCode::RegistrationRefused.code()
            },
            HistoryKind::Abandoned {
                label: Label::RegistrationRequest
            }
        ]
    );
    // A new registration may start now, with the corrected PANSecret: its IdProof proves
    // the account's ID.
    s.wallet
        .link_account(
            shared::Pan::new(PAN),
            &shared::PanSecret::new(PAN_SECRET),
            UnixSecs::new(NOW),
        )
        .unwrap();
    s.register();
    assert_eq!(s.wallet.state().registered, Some(s.wallet.uid()));
}

/// A scrip that arrives already expired (the producer's clock, or a short lifetime) is
/// stored, not refused: the producer has spent what it replaced, and 6.8 renews it.
#[test]
fn a_scrip_that_arrives_expired_is_kept() {
    let mut s = Setup::new(Suite::Paper);
    s.register();
    let out = s
        .wallet
        .obtain_broker_scrip(Amount::from_minor(40), UnixSecs::new(NOW))
        .unwrap();
    let req = open_obtain(&s.broker, &s.id, &out.frame);
    let (old, cs) = s.broker.issue(40, NOW - 2 * LIFETIME);
    assert!(old.body.is_expired_at(shared::UnixSecs::new(NOW)));
    let reply = reply_scrip(s.broker.keys, &req, &old, &cs, Some(req.body.nonce));
    s.wallet.handle_reply(&reply, UnixSecs::new(NOW)).unwrap();
    assert_eq!(s.wallet.broker_scrip().unwrap().scrip, old);
    s.wallet
        .renew(s.broker.keys.uid(), UnixSecs::new(NOW))
        .unwrap();
}
