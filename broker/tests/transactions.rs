//! Per-transaction tests of the broker (6.0, 6.0b, 6.1, 6.4, 6.6, 6.8 and the bank
//! operator's API) through `BrokerNode` with a real redb file: every success path with
//! conservation after each step, and every refusal of sections 4 and 7 that applies, each asserting
//! the exact `ErrorCode` and that neither the state nor the log changed.
#![allow(clippy::unwrap_used)]

mod wire_client;

use broker::core::bank::BankError;
use broker::node::NodeError;
use shared::UnixSecs;
use shared::events::Account;
use shared::ids::{AccountId, Nonce, Pan, PanSecret, TxId};
use shared::node::ScripState;
use shared::wire::bodies::{
    BrokerScripResponseX1, BrokerScripWithdrawResponseX1, ErrorBody, PublicKeyResponseX1,
    RegistrationRequestX0, RegistrationResponseX1, RenewResponseX1,
};
use shared::wire::{
    Body, DigestItem, Frame, Header, Label, id_proof, request_digest, seal, secret_inner, sign,
};
use shared::{Amount, ErrorCode, Mint, Suite, fixtures};
use wire_client::{Client, Held, NOW, World, error_code};

const DAY: u64 = 24 * 3600;

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

fn bank(w: &World, c: &Client) -> i128 {
    w.state().balance(&Account::Bank(c.pan.clone()))
}

/// 6.1: obtains a BrokerScrip of `value` and returns it.
fn obtain(w: &mut World, c: &Client, value: u64) -> Held {
    let nonce = Nonce::random();
    let reply = w.send(&c.obtain(TxId::random(), value, nonce), NOW);
    assert_eq!(error_code(&w.broker_key(), &reply), None);
    let (body, held) =
        c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
    assert_eq!(body.nonce, nonce);
    assert_eq!(held.scrip.value(), amount(value));
    held
}

// ---------------------------------------------------------------- bank operator

#[test]
fn bank_operator_opens_deposits_and_pays_out() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "GR1601101250000000012300695");
    w.node().open_account(&c.pan, &c.secret, NOW).unwrap();
    let record = w.state().pans.get(&c.pan).unwrap().clone();
    assert_eq!(record.id_commitment, c.id().commitment(Suite::Modern));
    assert_eq!(record.registered, None);
    w.node().deposit(&c.pan, amount(5000), NOW).unwrap();
    assert_eq!(bank(&w, &c), 5000);
    assert_eq!(w.state().balance(&Account::External), -5000);
    w.node().payout(&c.pan, amount(1500), NOW).unwrap();
    assert_eq!(bank(&w, &c), 3500);
    wire_client::assert_conserved(w.state());
    assert_eq!(w.log_len(), 3);

    let before = w.state().clone();
    let refusals = [
        w.node().open_account(&c.pan, &c.secret, NOW),
        w.node()
            .open_account(&Pan::new("X1"), &PanSecret::new("short"), NOW),
    ];
    assert!(matches!(
        refusals[0],
        Err(NodeError::Bank(BankError::PanExists(_)))
    ));
    assert!(matches!(
        refusals[1],
        Err(NodeError::Bank(BankError::WeakSecret))
    ));
    assert!(matches!(
        w.node().deposit(&Pan::new("nope"), amount(1), NOW),
        Err(NodeError::Bank(BankError::PanUnknown(_)))
    ));
    assert!(matches!(
        w.node().deposit(&c.pan, Amount::ZERO, NOW),
        Err(NodeError::Bank(BankError::ZeroAmount))
    ));
    assert!(matches!(
        w.node().payout(&c.pan, amount(3501), NOW),
        Err(NodeError::Bank(BankError::Insufficient { available, .. })) if available == amount(3500)
    ));
    assert_eq!(w.state(), &before);
    assert_eq!(w.log_len(), 3);
}

/// Section 1: the log holds only the ID's commitment; the ID itself is in the secrets
/// table, which survives a reopen and is checked against the commitment.
#[test]
fn the_log_never_holds_the_account_id() {
    let mut w = World::new(Suite::Paper);
    let c = w.client(0, "GR1601101250000000012300695");
    w.node().open_account(&c.pan, &c.secret, NOW).unwrap();
    let id = c.id();
    let event = w.node.as_ref().unwrap().log().read(1).unwrap().unwrap();
    let bytes = event.encode().unwrap();
    assert!(
        !bytes
            .windows(id.expose().len())
            .any(|win| win == id.expose())
    );
    assert!(
        !bytes
            .windows(c.secret.expose().len())
            .any(|win| win == c.secret.expose())
    );
    w.reopen();
    // The reopened broker still verifies the account's IdProof.
    let reply = w.send(&c.registration(TxId::random()), NOW);
    assert_eq!(error_code(&w.broker_key(), &reply), None);
}

// ---------------------------------------------------------------- 6.0 registration

#[test]
fn registration_in_both_suites() {
    for suite in Suite::ALL {
        let mut w = World::new(suite);
        let c = w.client(0, "GR1601101250000000012300695");
        w.node().open_account(&c.pan, &c.secret, NOW).unwrap();
        let tx = TxId::random();
        let reply = w.send(&c.registration(tx), NOW);
        let body = c.open_clear::<RegistrationResponseX1>(&reply);
        assert_eq!(body.uid, c.uid());
        assert_eq!(body.re.sender, c.uid());
        assert_eq!(body.re.label, Label::RegistrationRequest);
        let peer = w.state().peers.get(&c.uid()).unwrap();
        assert_eq!(&peer.public_key, c.key.public());
        assert_eq!(peer.pan, c.pan);
        assert_eq!(w.state().pans[&c.pan].registered, Some(c.uid()));
        // The event keeps the verified X0 as evidence, and it verifies again.
        let evidence = w.evidence();
        assert_eq!(evidence.len(), 1);
        assert_eq!(evidence[0].signer, c.uid());
        // A repeat gets the same bytes and appends nothing.
        let len = w.log_len();
        assert_eq!(w.send(&c.registration(tx), NOW), reply);
        assert_eq!(w.log_len(), len);
    }
}

/// 6.0: the broker's signed `Error` to a registration whose `X0` verified: its code, its
/// message and its `re`, which names the request by its digest (section 3), so that the
/// registrant's wallet recognises the refusal of its pending request and ends it.
fn assert_registration_refused(
    w: &mut World,
    c: &Client,
    tx: TxId,
    frame: &[u8],
    pan: &Pan,
    code: ErrorCode,
) -> ErrorBody {
    let before = w.state().clone();
    let len = w.log_len();
    let reply = w.send(frame, NOW);
    assert_eq!(error_code(&w.broker_key(), &reply), Some(code));
    assert_eq!(w.state(), &before, "a refusal changed the state");
    assert_eq!(w.log_len(), len, "a refusal appended an event");
    let body = c.open_clear::<ErrorBody>(&reply);
    let header = c.header(Label::RegistrationRequest, tx);
    let x0 = RegistrationRequestX0 { pan: pan.clone() }.to_bytes();
    let digest = request_digest(
        &header,
        &[DigestItem {
            origin: None,
            body: &x0,
        }],
    )
    .unwrap();
    assert_eq!(body.re.sender, c.uid());
    assert_eq!(body.re.label, Label::RegistrationRequest);
    assert_eq!(body.re.digest, digest, "re names the refused request");
    body
}

/// 6.0: an unknown PAN, a wrong ID (a wrong PANSecret, or an IdProof replayed from another
/// tx) and a PAN that has a key are one refusal with one message, so that the reply does
/// not tell which account numbers exist; each is signed with the request's `re`, changes
/// nothing (no event, no peer) and binds nothing, so the corrected request registers.
#[test]
fn registration_refusals() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "GR1601101250000000012300695");
    w.node().open_account(&c.pan, &c.secret, NOW).unwrap();
    let mut messages = Vec::new();

    // PAN unknown (an account number with a typo).
    let tx = TxId::random();
    let typo = Pan::new("GR1601101250000000012300696");
    let frame = c.registration_for(tx, &typo, &c.id());
    let body = assert_registration_refused(
        &mut w,
        &c,
        tx,
        &frame,
        &typo,
        ErrorCode::RegistrationRefused,
    );
    messages.push(body.message);

    // Wrong PANSecret: the IdProof proves another ID.
    let wrong = AccountId::derive(
        Suite::Modern,
        &PanSecret::new("not the secret at all!"),
        &c.pan,
    );
    let tx = TxId::random();
    let frame = c.registration_for(tx, &c.pan, &wrong);
    let body = assert_registration_refused(
        &mut w,
        &c,
        tx,
        &frame,
        &c.pan,
        ErrorCode::RegistrationRefused,
    );
    messages.push(body.message);

    // An IdProof replayed from another tx: made for tx A, sent in tx B.
    let (tx_a, tx_b) = (TxId::random(), TxId::random());
    let h_a = c.header(Label::RegistrationRequest, tx_a);
    let h_b = c.header(Label::RegistrationRequest, tx_b);
    let replayed = seal(
        &h_b,
        &w.broker_key(),
        &[
            sign(c.key, &h_b, &RegistrationRequestX0 { pan: c.pan.clone() })
                .unwrap()
                .into(),
            id_proof(c.key, &h_a, &c.id()).unwrap(),
            shared::wire::public_key_inner(c.key.public()),
        ],
    )
    .unwrap();
    let frame = Frame::new(h_b, vec![replayed]).encode().unwrap();
    let body = assert_registration_refused(
        &mut w,
        &c,
        tx_b,
        &frame,
        &c.pan,
        ErrorCode::RegistrationRefused,
    );
    messages.push(body.message);
    assert!(w.state().peers.is_empty());
    assert_eq!(w.state().pans[&c.pan].registered, None);

    // The corrected request registers: a refusal bound nothing, not even its tx.
    let reply = w.send(&c.registration(tx), NOW);
    assert_eq!(error_code(&w.broker_key(), &reply), None);
    assert_eq!(w.state().pans[&c.pan].registered, Some(c.uid()));

    // Registered once; the same UID again (new tx) is told so: it reveals nothing about
    // any account to the holder of that key.
    w.assert_refused(
        &c.registration(TxId::random()),
        NOW,
        ErrorCode::AlreadyRegistered,
    );
    // Another key for the same PAN, with the right PANSecret.
    let thief = Client {
        secret: c.secret.clone(),
        pan: c.pan.clone(),
        ..w.client(2, "ignored")
    };
    let tx = TxId::random();
    let frame = thief.registration(tx);
    let body = assert_registration_refused(
        &mut w,
        &thief,
        tx,
        &frame,
        &c.pan,
        ErrorCode::RegistrationRefused,
    );
    messages.push(body.message);
    assert_eq!(w.state().peers.len(), 1);

    // One message for all four: nothing tells which account numbers exist.
    assert!(
        messages
            .iter()
            .all(|m| m == broker::core::REGISTRATION_REFUSED),
        "{messages:?}"
    );
}

#[test]
fn wrong_suite_unknown_peer_and_garbage() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    w.onboard(&c, 1000);
    // A paper-suite frame to a modern broker.
    let paper_broker = fixtures::keypair(Suite::Paper, wire_client::BROKER_KEY)
        .public()
        .clone();
    let p = Client::new(Suite::Paper, 0, "A-1", &paper_broker);
    w.assert_refused(
        &p.obtain(TxId::random(), 10, Nonce::random()),
        NOW,
        ErrorCode::WrongSuite,
    );
    // A sender that never registered, before any cryptography.
    let stranger = w.client(3, "B-1");
    w.assert_refused(
        &stranger.obtain(TxId::random(), 10, Nonce::random()),
        NOW,
        ErrorCode::UnknownPeer,
    );
    // A sealed part whose ciphertext was damaged.
    let mut frame = Frame::decode(&c.obtain(TxId::random(), 10, Nonce::random())).unwrap();
    if let shared::wire::Part::Sealed { ciphertext, .. } = &mut frame.parts[0] {
        let last = ciphertext.len() - 1;
        ciphertext[last] ^= 1;
    }
    w.assert_refused(&frame.encode().unwrap(), NOW, ErrorCode::BadFrame);
    // A frame that does not decode at all is refused with no answer (no header to answer
    // under), and changes nothing.
    let len = w.log_len();
    let handled = w.node().handle(&[1, 2, 3], NOW).unwrap();
    assert_eq!(handled.reply, None);
    assert_eq!(handled.refusal.map(|r| r.code), Some(ErrorCode::BadFrame));
    assert_eq!(w.log_len(), len);
}

/// A signed part cut from one message (a 6.4 top-up) and pasted into another (a 6.6
/// withdrawal) of the same tx: its signature covers the label, so it is refused.
#[test]
fn a_signed_part_cut_into_another_message_is_refused() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    w.onboard(&c, 1000);
    let held = obtain(&mut w, &c, 300);
    let tx = TxId::random();
    let top_up_header = c.header(Label::BrokerScripTopUp, tx);
    let body = shared::wire::bodies::BrokerScripWithdrawX0 {
        scrip: held.scrip.clone(),
        cs_hash: held.cs.cs_hash(Suite::Modern),
    };
    // Signed as if under the top-up's header (sign_bytes skips the label check of `sign`).
    let signed =
        shared::wire::sign_bytes(c.key, &top_up_header, shared::wire::Body::to_bytes(&body))
            .unwrap();
    let h = c.header(Label::BrokerScripWithdraw, tx);
    let part = seal(
        &h,
        &w.broker_key(),
        &[
            id_proof(c.key, &h, &c.id()).unwrap(),
            signed.into(),
            secret_inner(held.scrip.id(), &held.cs),
        ],
    )
    .unwrap();
    let frame = Frame::new(h, vec![part]).encode().unwrap();
    w.assert_refused(&frame, NOW, ErrorCode::BadFrame);
}

// ---------------------------------------------------------------- 6.0b public key

#[test]
fn public_key_request() {
    let mut w = World::new(Suite::Paper);
    let c = w.client(0, "A-1");
    let m = w.client(2, "M-1");
    w.onboard(&c, 0);
    w.onboard(&m, 0);
    let nonce = Nonce::random();
    let len = w.log_len();
    let reply = w.send(&c.public_key_request(TxId::random(), m.uid(), nonce), NOW);
    let body = c.open_sealed::<PublicKeyResponseX1>(&reply);
    assert_eq!(body.target, m.uid());
    assert_eq!(body.nonce, nonce);
    assert_eq!(body.spki_der, m.key.public().spki_der());
    assert_eq!(w.log_len(), len, "a key lookup appends nothing");
    let nobody = fixtures::keypair(Suite::Paper, 4).uid();
    w.assert_refused(
        &c.public_key_request(TxId::random(), nobody, nonce),
        NOW,
        ErrorCode::UnknownPeer,
    );
}

// ---------------------------------------------------------------- 6.1 obtain

#[test]
fn obtain_broker_scrip_in_both_suites() {
    for suite in Suite::ALL {
        let mut w = World::new(suite);
        let c = w.client(0, "A-1");
        w.onboard(&c, 1000);
        let tx = TxId::random();
        let nonce = Nonce::random();
        let request = c.obtain(tx, 400, nonce);
        let reply = w.send(&request, NOW);
        let (body, held) =
            c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
        assert_eq!(body.scrip.body.producer, w.node().uid());
        assert_eq!(
            body.scrip.body.expires,
            NOW.saturating_add_secs(30 * DAY).get()
        );
        assert_eq!(bank(&w, &c), 600);
        assert_eq!(w.state().balance(&Account::FloatBroker), 400);
        let row = w.state().live.get(&held.scrip.id()).unwrap();
        assert_eq!(row.owner, c.uid());
        assert_eq!(row.state, ScripState::Live);

        // Repeat: identical stored bytes, no new event (also after a reopen).
        let len = w.log_len();
        assert_eq!(w.send(&request, NOW), reply);
        assert_eq!(
            w.send(&c.obtain(tx, 400, nonce), NOW),
            reply,
            "re-sealed retry"
        );
        w.reopen();
        assert_eq!(w.send(&request, NOW), reply);
        assert_eq!(w.log_len(), len);

        // The event holds the body and cs_hash-free X0, never the CustomerSecret.
        let bytes: Vec<u8> = w
            .node
            .as_ref()
            .unwrap()
            .log()
            .iter()
            .unwrap()
            .flat_map(|e| e.unwrap().encode().unwrap())
            .collect();
        let cs = held.cs.expose();
        assert!(!bytes.windows(cs.len()).any(|win| win == cs));
    }
}

#[test]
fn obtain_refusals() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    w.onboard(&c, 1000);
    // Insufficient bank balance.
    w.assert_refused(
        &c.obtain(TxId::random(), 1001, Nonce::random()),
        NOW,
        ErrorCode::InsufficientFunds,
    );
    // Zero value.
    w.assert_refused(
        &c.obtain(TxId::random(), 0, Nonce::random()),
        NOW,
        ErrorCode::AmountOutOfRange,
    );
    // Same key, other digest: TxReused.
    let tx = TxId::random();
    let reply = w.send(&c.obtain(tx, 100, Nonce::random()), NOW);
    assert_eq!(error_code(&w.broker_key(), &reply), None);
    w.assert_refused(
        &c.obtain(tx, 200, Nonce::random()),
        NOW,
        ErrorCode::TxReused,
    );
    // A second BrokerScrip while one is live: top up instead.
    w.assert_refused(
        &c.obtain(TxId::random(), 100, Nonce::random()),
        NOW,
        ErrorCode::BrokerScripLive,
    );
}

/// Section 7: a tx bound to one customer's 6.1 cannot be used by another party, nor for
/// another kind of transaction.
#[test]
fn a_bound_tx_refuses_other_parties_and_kinds() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    let d = w.client(2, "B-1");
    w.onboard(&c, 1000);
    w.onboard(&d, 1000);
    let tx = TxId::random();
    let reply = w.send(&c.obtain(tx, 100, Nonce::random()), NOW);
    let (_, held) =
        c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
    w.assert_refused(
        &d.obtain(tx, 100, Nonce::random()),
        NOW,
        ErrorCode::TxReused,
    );
    w.assert_refused(&c.withdraw(tx, &held), NOW, ErrorCode::TxReused);
    // A fresh tx works.
    let reply = w.send(&c.withdraw(TxId::random(), &held), NOW);
    assert_eq!(error_code(&w.broker_key(), &reply), None);
}

// ---------------------------------------------------------------- 6.4 top up

#[test]
fn top_up_broker_scrip() {
    for suite in Suite::ALL {
        let mut w = World::new(suite);
        let c = w.client(0, "A-1");
        w.onboard(&c, 1000);
        let b0 = obtain(&mut w, &c, 300);
        let nonce = Nonce::random();
        let tx = TxId::random();
        let reply = w.send(&c.top_up(tx, &b0, 700, nonce), NOW);
        let (body, b1) =
            c.open_scrip::<BrokerScripResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
        assert_eq!(body.nonce, nonce);
        assert_eq!(b1.scrip.value(), amount(700));
        assert_ne!(b1.scrip.id(), b0.scrip.id());
        assert_eq!(bank(&w, &c), 300);
        assert_eq!(w.state().balance(&Account::FloatBroker), 700);
        assert!(w.state().live.get(&b0.scrip.id()).is_none());
        // Repeat: same bytes, nothing appended.
        let len = w.log_len();
        assert_eq!(w.send(&c.top_up(tx, &b0, 700, nonce), NOW), reply);
        assert_eq!(w.log_len(), len);
        // B0 is spent now.
        w.assert_refused(
            &c.top_up(TxId::random(), &b0, 800, nonce),
            NOW,
            ErrorCode::Spent,
        );
    }
}

#[test]
fn top_up_refusals() {
    let suite = Suite::Modern;
    let mut w = World::new(suite);
    let c = w.client(0, "A-1");
    let d = w.client(2, "B-1");
    w.onboard(&c, 1000);
    w.onboard(&d, 1000);
    let b0 = obtain(&mut w, &c, 300);
    let n = Nonce::random;
    // Top-up to a smaller or equal value.
    w.assert_refused(
        &c.top_up(TxId::random(), &b0, 300, n()),
        NOW,
        ErrorCode::TopUpNotLarger,
    );
    w.assert_refused(
        &c.top_up(TxId::random(), &b0, 200, n()),
        NOW,
        ErrorCode::TopUpNotLarger,
    );
    // Insufficient bank balance for the difference (700 left, 701 asked).
    w.assert_refused(
        &c.top_up(TxId::random(), &b0, 1001, n()),
        NOW,
        ErrorCode::InsufficientFunds,
    );
    // Wrong customer secret (consistent with its cs_hash, but not the scrip's).
    let wrong = Held {
        cs: shared::CustomerSecret::from_bytes(&[7; 32]),
        ..b0.clone()
    };
    w.assert_refused(
        &c.top_up(TxId::random(), &wrong, 500, n()),
        NOW,
        ErrorCode::BadCustomerSecret,
    );
    // A CS that does not match the body's cs_hash fails in the frame (BadFrame).
    let h = c.header(Label::BrokerScripTopUp, TxId::random());
    let x0 = shared::wire::bodies::BrokerScripTopUpX0 {
        scrip: b0.scrip.clone(),
        cs_hash: b0.cs.cs_hash(suite),
        new_value: amount(500),
        nonce: n(),
    };
    let part = seal(
        &h,
        &w.broker_key(),
        &[
            id_proof(c.key, &h, &c.id()).unwrap(),
            sign(c.key, &h, &x0).unwrap().into(),
            secret_inner(b0.scrip.id(), &wrong.cs),
        ],
    )
    .unwrap();
    w.assert_refused(
        &Frame::new(h, vec![part]).encode().unwrap(),
        NOW,
        ErrorCode::BadFrame,
    );
    // Forged certificate.
    let mut forged = b0.clone();
    forged.scrip.certificate[0] ^= 1;
    w.assert_refused(
        &c.top_up(TxId::random(), &forged, 500, n()),
        NOW,
        ErrorCode::BadCertificate,
    );
    // A higher value written into the body: the certificate no longer matches.
    let mut inflated = b0.clone();
    inflated.scrip.body.value = amount(900);
    w.assert_refused(
        &c.top_up(TxId::random(), &inflated, 950, n()),
        NOW,
        ErrorCode::BadCertificate,
    );
    // Scrip not issued by this producer (a merchant's, whatever its certificate).
    let m = fixtures::keypair(suite, 3);
    let (foreign, foreign_cs) = Mint::new(suite, m.uid(), fixtures::root_key(9))
        .issue(amount(300), NOW.saturating_add_secs(DAY).get());
    let foreign = Held {
        scrip: foreign,
        cs: foreign_cs,
    };
    w.assert_refused(
        &c.top_up(TxId::random(), &foreign, 500, n()),
        NOW,
        ErrorCode::WrongProducer,
    );
    // Presented by someone other than its owner (with the right secret).
    w.assert_refused(
        &d.top_up(TxId::random(), &b0, 500, n()),
        NOW,
        ErrorCode::NotOwner,
    );
    // Expired.
    w.assert_refused(
        &c.top_up(TxId::random(), &b0, 500, n()),
        NOW.saturating_add_secs(31 * DAY),
        ErrorCode::Expired,
    );
}

// ---------------------------------------------------------------- 6.6 withdraw

#[test]
fn withdraw_broker_scrip() {
    for suite in Suite::ALL {
        let mut w = World::new(suite);
        let c = w.client(0, "A-1");
        w.onboard(&c, 1000);
        let b0 = obtain(&mut w, &c, 250);
        let tx = TxId::random();
        let reply = w.send(&c.withdraw(tx, &b0), NOW);
        let body = c.open_clear::<BrokerScripWithdrawResponseX1>(&reply);
        assert_eq!(body.value, amount(250));
        assert_eq!(bank(&w, &c), 1000);
        assert_eq!(w.state().balance(&Account::FloatBroker), 0);
        assert!(w.state().live.is_empty());
        let len = w.log_len();
        assert_eq!(w.send(&c.withdraw(tx, &b0), NOW), reply);
        assert_eq!(w.log_len(), len);
        w.assert_refused(&c.withdraw(TxId::random(), &b0), NOW, ErrorCode::Spent);
        // With B0 gone, a new 6.1 is allowed.
        obtain(&mut w, &c, 100);
    }
}

#[test]
fn withdraw_of_an_expired_scrip_is_refused() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    w.onboard(&c, 1000);
    let b0 = obtain(&mut w, &c, 250);
    w.assert_refused(
        &c.withdraw(TxId::random(), &b0),
        NOW.saturating_add_secs(30 * DAY + 1),
        ErrorCode::Expired,
    );
    // Still live at its last second.
    let reply = w.send(
        &c.withdraw(TxId::random(), &b0),
        NOW.saturating_add_secs(30 * DAY),
    );
    assert_eq!(error_code(&w.broker_key(), &reply), None);
}

// ---------------------------------------------------------------- 6.8 renew

#[test]
fn renew_within_grace_and_refused_after() {
    for suite in Suite::ALL {
        let mut w = World::new(suite);
        let c = w.client(0, "A-1");
        w.onboard(&c, 1000);
        let e0 = obtain(&mut w, &c, 500);
        let expired_at = NOW.saturating_add_secs(30 * DAY);
        let later = expired_at.saturating_add_secs(200 * DAY);
        let tx = TxId::random();
        let reply = w.send(&c.renew(tx, &e0), later);
        let (_, e1) =
            c.open_scrip::<RenewResponseX1>(&reply, |b| (b.scrip.clone(), b.cs_hash.clone()));
        assert_eq!(e1.scrip.value(), amount(500));
        assert_ne!(e1.scrip.id(), e0.scrip.id());
        assert_ne!(e1.scrip.body.cust_id, e0.scrip.body.cust_id);
        assert_eq!(
            e1.scrip.body.expires,
            later.saturating_add_secs(30 * DAY).get()
        );
        assert_eq!(bank(&w, &c), 500, "no money moves");
        assert_eq!(w.state().balance(&Account::FloatBroker), 500);
        let len = w.log_len();
        assert_eq!(w.send(&c.renew(tx, &e0), later), reply);
        assert_eq!(w.log_len(), len);
        w.assert_refused(&c.renew(TxId::random(), &e0), later, ErrorCode::Spent);
        // E1 works in 6.6 now.
        let reply = w.send(&c.withdraw(TxId::random(), &e1), later);
        assert_eq!(error_code(&w.broker_key(), &reply), None);

        // After the grace period: GraceOver.
        let e2 = obtain(&mut w, &c, 100);
        let grace_end = e2.scrip.body.expires + 365 * DAY;
        w.assert_refused(
            &c.renew(TxId::random(), &e2),
            UnixSecs::new(grace_end + 1),
            ErrorCode::GraceOver,
        );
        let reply = w.send(&c.renew(TxId::random(), &e2), UnixSecs::new(grace_end));
        assert_eq!(
            error_code(&w.broker_key(), &reply),
            None,
            "the last second of grace"
        );
    }
}

#[test]
fn renew_refuses_another_owner_and_wrong_secret() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    let d = w.client(2, "B-1");
    w.onboard(&c, 1000);
    w.onboard(&d, 0);
    let e0 = obtain(&mut w, &c, 500);
    let later = NOW.saturating_add_secs(40 * DAY);
    w.assert_refused(&d.renew(TxId::random(), &e0), later, ErrorCode::NotOwner);
    let wrong = Held {
        cs: shared::CustomerSecret::from_bytes(&[1; 32]),
        ..e0
    };
    w.assert_refused(
        &c.renew(TxId::random(), &wrong),
        later,
        ErrorCode::BadCustomerSecret,
    );
}

/// The `re` of every reply names the request it answers.
#[test]
fn error_replies_name_the_request() {
    let mut w = World::new(Suite::Modern);
    let c = w.client(0, "A-1");
    w.onboard(&c, 10);
    let tx = TxId::random();
    let reply = w.send(&c.obtain(tx, 11, Nonce::random()), NOW);
    let frame = Frame::decode(&reply).unwrap();
    assert_eq!(
        frame.header,
        Header::new(Suite::Modern, Label::Error, tx, w.node().uid())
    );
    let body = frame
        .part(0)
        .unwrap()
        .verify_signed::<shared::wire::bodies::ErrorBody>(&w.broker_key())
        .unwrap()
        .body;
    assert_eq!(body.re.sender, c.uid());
    assert_eq!(body.re.label, Label::BrokerScripRequest);
    assert_eq!(body.re.digest.len(), Suite::Modern.hash_len());
}
