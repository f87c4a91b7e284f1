//! The wallet file (protocol.md sections 7 and 8): reopened it gives the same scrip and
//! secrets; its tables equal the log replayed, live and in a fresh file; no secret is in it
//! in the clear; a pending request survives a restart and is re-sent with the same bodies.

mod support;

use customer_cli::store::WalletProjection;
use customer_cli::{Wallet, WalletError};
use shared::UnixSecs;
use shared::events::{LogError, dump_projection};
use shared::{AccountId, Amount, Pan, PanSecret, Suite};
use support::*;

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A wallet that registered, cached a key, obtained a BrokerScrip and has a top-up pending.
fn busy_wallet(suite: Suite) -> Setup {
    let mut s = Setup::new(suite);
    s.register();
    let out = s
        .wallet
        .request_public_key(s.merchant.keys.uid(), UnixSecs::new(NOW))
        .expect("6.0b starts");
    let req = open_public_key(&out.frame, customer_keys(suite));
    let reply = reply_sealed(
        s.broker.keys,
        &req.frame,
        &shared::wire::bodies::PublicKeyResponseX1 {
            re: req.re.clone(),
            target: s.merchant.keys.uid(),
            spki_der: s.merchant.keys.public().spki_der().to_vec(),
            nonce: req.body.nonce,
        },
        None,
    );
    s.wallet
        .handle_reply(&reply, UnixSecs::new(NOW))
        .expect("6.0b completes");
    s.obtain(1200);
    s.wallet
        .top_up_broker_scrip(Amount::from_minor(2000), UnixSecs::new(NOW))
        .expect("6.4 starts");
    s
}

#[test]
fn reopened_wallet_has_the_same_scrip_secrets_and_pending_requests() {
    for suite in Suite::ALL {
        let s = busy_wallet(suite);
        let state = s.wallet.state().clone();
        let cs = s.wallet.customer_secret(s.broker.keys.uid()).unwrap();
        let len = s.wallet.log().len().unwrap();
        let s = s.reopen();
        assert_eq!(s.wallet.state(), &state);
        assert_eq!(s.wallet.log().len().unwrap(), len);
        assert_eq!(s.wallet.customer_secret(s.broker.keys.uid()).unwrap(), cs);
        assert_eq!(s.wallet.pending().count(), 1);
        assert_eq!(s.wallet.history().count(), 3);
        s.wallet.check_tables().unwrap();
    }
}

/// Replay into a fresh file gives the live tables byte for byte, and the same state.
#[test]
fn replay_into_a_fresh_file_gives_identical_tables_and_state() {
    for suite in Suite::ALL {
        let s = busy_wallet(suite);
        let target = redb::Database::create(s.dir.path().join("replay.redb")).unwrap();
        let projection = WalletProjection::default();
        s.wallet.log().replay_into(&projection, &target).unwrap();
        let live = s.wallet.log().dump_projection(&projection).unwrap();
        let rebuilt = dump_projection(&target, &projection).unwrap();
        assert_eq!(live, rebuilt);
        assert!(live.values().map(Vec::len).sum::<usize>() >= 8, "{live:?}");
        assert_eq!(&projection.into_state(), s.wallet.state());
    }
}

/// No CustomerSecret, account ID or PANSecret in the file in the clear; the scrip ids are
/// there (so the scan does find what the file holds).
#[test]
fn no_secret_is_in_the_file_in_the_clear() {
    for suite in Suite::ALL {
        let mut s = busy_wallet(suite);
        let b0 = s.wallet.broker_scrip().unwrap().scrip.clone();
        let cs0 = s.wallet.customer_secret(s.broker.keys.uid()).unwrap();
        // Finish the top-up so the file holds two scrips' histories.
        let out = s.wallet.pending().next().unwrap().request.clone();
        let resent = s.wallet.resend(out.tx(), out.label()).unwrap();
        let req = open_top_up(&s.broker, &s.id, &resent.frame);
        let (b1, cs1) = s.broker.issue(2000, NOW);
        s.wallet
            .handle_reply(
                &reply_scrip(s.broker.keys, &req, &b1, &cs1, Some(req.body.nonce)),
                UnixSecs::new(NOW),
            )
            .unwrap();
        let path = s.path.clone();
        drop(s.wallet);
        let bytes = std::fs::read(&path).unwrap();
        assert!(contains(&bytes, b0.id().as_bytes()));
        assert!(contains(&bytes, b1.id().as_bytes()));
        let id = AccountId::derive(suite, &PanSecret::new(PAN_SECRET), &Pan::new(PAN));
        for (what, secret) in [
            ("CS of B0", cs0.expose()),
            ("CS of B1", cs1.expose()),
            ("account ID", id.expose()),
            ("PANSecret", PAN_SECRET.as_bytes()),
        ] {
            assert!(
                !contains(&bytes, secret),
                "{what} is in the file in the clear"
            );
        }
    }
}

/// Section 7: a request pending at a restart is re-sent with the same bodies byte for byte
/// (fresh signatures and seals), so the broker computes the same digest; the reply to it
/// completes it.
#[test]
fn retry_after_restart_sends_the_same_bodies() {
    for suite in Suite::ALL {
        let s = busy_wallet(suite);
        let pending = s.wallet.pending().next().unwrap().request.clone();
        let first = s.wallet.resend(pending.tx(), pending.label()).unwrap();
        let seen_first = open_top_up(&s.broker, &s.id, &first.frame);
        let mut s = s.reopen();
        let again = s.wallet.resend(pending.tx(), pending.label()).unwrap();
        assert_ne!(again.frame, first.frame, "fresh seals");
        let seen_again = open_top_up(&s.broker, &s.id, &again.frame);
        assert_eq!(seen_again.re, seen_first.re, "same digest");
        assert_eq!(seen_again.re.digest, pending.digest);
        assert_eq!(seen_again.body, seen_first.body);
        assert_eq!(seen_again.secret, seen_first.secret);
        // The broker's stored reply (made for the first delivery) completes it.
        let (b1, cs1) = s.broker.issue(2000, NOW);
        let reply = reply_scrip(
            s.broker.keys,
            &seen_first,
            &b1,
            &cs1,
            Some(seen_first.body.nonce),
        );
        s.wallet.handle_reply(&reply, UnixSecs::new(NOW)).unwrap();
        assert_eq!(s.wallet.broker_scrip().unwrap().scrip, b1);
        assert_eq!(s.wallet.pending().count(), 0);
        assert!(matches!(
            s.wallet.resend(pending.tx(), pending.label()),
            Err(WalletError::NotPending { .. })
        ));
    }
}

#[test]
fn the_file_opens_only_with_its_key_and_suite() {
    let s = Setup::new(Suite::Paper);
    let path = s.path.clone();
    let broker = s.broker.keys.public().clone();
    drop(s.wallet);
    let other = forger_keys(Suite::Paper).clone();
    assert!(matches!(
        Wallet::open(&path, other),
        Err(WalletError::WrongKey { .. })
    ));
    assert!(matches!(
        Wallet::open(&path, customer_keys(Suite::Modern).clone()),
        Err(WalletError::Log(LogError::IdentityMismatch { .. }))
    ));
    assert!(matches!(
        Wallet::create(
            &path,
            customer_keys(Suite::Paper).clone(),
            &broker,
            UnixSecs::new(NOW)
        ),
        Err(WalletError::AlreadyAWallet { .. })
    ));
    assert!(matches!(
        Wallet::open(
            s.dir.path().join("empty.redb"),
            customer_keys(Suite::Paper).clone()
        ),
        Err(WalletError::NotAWallet)
    ));
    assert!(matches!(
        Wallet::create(
            s.dir.path().join("mixed.redb"),
            customer_keys(Suite::Paper).clone(),
            customer_keys(Suite::Modern).public(),
            UnixSecs::new(NOW)
        ),
        Err(WalletError::WrongSuite { .. })
    ));
    Wallet::open(&path, customer_keys(Suite::Paper).clone()).unwrap();
}

/// A projection row changed behind the log's back is found at open.
#[test]
fn a_table_that_differs_from_the_log_is_refused_at_open() {
    let mut s = Setup::new(Suite::Paper);
    s.register();
    s.obtain(100);
    let path = s.path.clone();
    drop(s.wallet);
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(customer_cli::store::SCRIP).unwrap();
            let key = s.broker.keys.uid();
            assert!(table.remove(key.as_bytes().as_slice()).unwrap().is_some());
        }
        txn.commit().unwrap();
    }
    assert!(matches!(
        Wallet::open(&path, customer_keys(Suite::Paper).clone()),
        Err(WalletError::TablesDiffer)
    ));
}

/// A wallet file damaged outside redb (16 bytes inverted inside a page of its committed
/// data, here where the file holds the customer's UID) is refused when it is opened, with
/// the storage error naming the corruption: never trusted, never a panic later (protocol.md
/// section 10, "Files"; redb's integrity check on open).
#[test]
fn a_damaged_wallet_file_is_refused_at_open() {
    for suite in Suite::ALL {
        let s = busy_wallet(suite);
        let Setup {
            dir, path, wallet, ..
        } = s;
        drop(wallet);
        let mut bytes = std::fs::read(&path).unwrap();
        let uid = customer_keys(suite).uid().0;
        let at = bytes
            .windows(uid.len())
            .position(|w| w == uid)
            .expect("the file holds the customer's UID");
        for b in &mut bytes[at..at + 16] {
            *b = !*b;
        }
        std::fs::write(&path, &bytes).unwrap();
        let opened = Wallet::open(&path, customer_keys(suite).clone());
        let Err(WalletError::Log(LogError::Storage(e))) = opened else {
            panic!("expected a storage error, got {:?}", opened.map(|_| ()))
        };
        assert!(e.to_string().contains("corrupted"), "{e}");
        drop(dir);
    }
}

/// `data/wallet-format-0.redb`: a Paper wallet (customer fixture 0, broker fixture 1) written
/// by the wallet before its tables recorded a format (tables format 0, commit 562f6f1),
/// whose `wallet_pending` rows list the messages received as labels. It holds three flows
/// half done: a 6.5 top-up of 250 with merchant fixture 2 (B's `Ack` and OK in, V1 of 650
/// owed), a 6.2 exchange with merchant fixture 4 (V0 in, B's decision owed) and a 6.7
/// withdrawal of that V0 (M's `Ack` in, B's result owed).
const FORMAT_0_WALLET: &[u8] = include_bytes!("data/wallet-format-0.redb");

/// The tables format of the file at `path` (not open elsewhere).
fn tables_format(path: &std::path::Path) -> u32 {
    let log = shared::events::EventLog::<customer_cli::core::WalletEvent>::open_existing(path)
        .expect("a wallet file");
    let dump = log
        .dump_projection(&WalletProjection::default())
        .expect("its tables");
    customer_cli::store::stored_format(&dump).expect("a format")
}

/// A wallet file of an older tables format (`store::TABLES_FORMAT`) opens: its tables are
/// rebuilt from its log (section 8), each pending flow stands where its messages left it,
/// and goes on from there.
#[test]
fn a_wallet_file_of_tables_format_0_is_rebuilt_at_open_and_goes_on() {
    use customer_cli::core::{Exchange, NextStep, Progress, TopUp, Withdrawal};
    use shared::wire::Label;
    let suite = Suite::Paper;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wallet.redb");
    std::fs::write(&path, FORMAT_0_WALLET).unwrap();
    assert_eq!(tables_format(&path), 0);
    let mut wallet = Wallet::open(&path, customer_keys(suite).clone()).unwrap();
    wallet.check_tables().unwrap();
    let (b, m2) = (Producer::new(suite, 1), Producer::new(suite, 2));
    let flows: Vec<_> = wallet
        .pending()
        .map(|p| (p.request.label(), p.progress, p.next_steps(b.keys.uid())))
        .collect();
    assert_eq!(
        flows,
        [
            (
                Label::VendorTopUpRequest,
                Progress::TopUp(TopUp::BrokerPaid { acked: true }),
                vec![NextStep::AskStatus(m2.keys.uid())]
            ),
            (
                Label::VendorWithdrawRequest,
                Progress::Withdrawal(Withdrawal::Held),
                vec![NextStep::AskStatus(b.keys.uid())]
            ),
            (
                Label::VendorScripRequest,
                Progress::Exchange(Exchange::VendorScripIn),
                vec![NextStep::AskStatus(b.keys.uid())]
            ),
        ]
    );
    // The top-up's last message, M's V1 of 650, ends it.
    let tx = wallet.pending().next().unwrap().request.tx();
    let (v1, cs) = m2.issue(650, NOW);
    let response = vendor_top_up_response(m2.keys, tx, &v1, &cs);
    wallet.handle_reply(&response, UnixSecs::new(NOW)).unwrap();
    assert_eq!(wallet.pending().count(), 2);
    assert_eq!(wallet.scrip(m2.keys.uid()).unwrap().scrip, v1);
    drop(wallet);
    assert_eq!(tables_format(&path), customer_cli::store::TABLES_FORMAT);
    Wallet::open(&path, customer_keys(suite).clone())
        .unwrap()
        .check_tables()
        .unwrap();
}

/// A file whose tables are of a format newer than this build's is refused at open.
#[test]
fn a_wallet_file_of_a_newer_tables_format_is_refused() {
    let s = Setup::new(Suite::Paper);
    let Setup {
        dir, path, wallet, ..
    } = s;
    drop(wallet);
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(customer_cli::store::PROFILE).unwrap();
            let newer = postcard::to_allocvec(&(customer_cli::store::TABLES_FORMAT + 1)).unwrap();
            table
                .insert(b"tables_format".as_slice(), newer.as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    assert!(matches!(
        Wallet::open(&path, customer_keys(Suite::Paper).clone()),
        Err(WalletError::TablesFormat { found: 2, .. })
    ));
    drop(dir);
}
