//! 6.2 exchanges at the broker in process: `BrokerNode::handle_batch` on the merchant's
//! `ExchangeAuthorizationRequest`s (6.2 step 3: M's own part and C's `VendorScripRequest`
//! part forwarded unchanged), up to [`BATCH`] a commit, in exchanges/s against the
//! broker's crypto in 6.2.
//!
//! The broker's crypto per exchange (`broker::core::open`, `open_relay`, and the decision
//! of `obtain_vendor_scrip::authorize`): two unwraps (M's sealed part and C's), four
//! verifications (each part's signature and its `IdProof`, protocol.md section 3), and two
//! signatures and two wraps (the `ExchangeAuthorizationResponse` to M and the
//! `ChangeBrokerScrip` to C, each signed and sealed to its recipient); its bound is the
//! cores over the sum of those times, from the same run's primitives
//! ([`super::primitives::Rates::exchange_bound`]).
//!
//! The route to valid step 3 frames: a customer holds at most one BrokerScrip (section 4),
//! and a wallet starts no exchange while it holds VendorScrip of that merchant, so each
//! exchange is a customer of its own: a fresh key, an account with a deposit at the broker,
//! a real wallet that registers (6.0), fetches the merchant's key (6.0b), obtains its
//! BrokerScrip (6.1) and announces the exchange (6.2 step 1), every request handled by the
//! site's broker node; then its step 2 is handed to the site's merchant node, which stores
//! its step 3 for the broker (`Handled::requests`). All of that is setup, not timed; only
//! the broker's handling of the step 3 frames is. Every exchange must be authorized
//! (one `ExchangeAuthorized` each: the merchant's float grows by the whole value) and the
//! books must hold, else the run fails. The merchant does not take the broker's answers
//! (its side is not measured here).

use std::time::{Duration, Instant};

use customer_cli::{Outgoing, Wallet};
use shared::runtime::{parallel_map, system_clock};
use shared::wire::Label;
use shared::{Amount, KeyPair, Pan, PanSecret};

use super::BenchError;
use super::figures::Figure;
use super::setup::Site;

/// The ratio of the broker's 6.2 throughput to its crypto bound it must reach.
pub const TARGET: f64 = 0.8;
/// Step 3 frames a commit (the shell's largest batch).
pub const BATCH: usize = 256;
/// The value of each exchange (minor units).
pub const VALUE: u64 = 10;

/// The PAN of exchanging customer `i` (distinct from the site's and from [`super::fill`]'s).
fn pan(i: usize) -> Pan {
    Pan::new(format!("DE{i:020}"))
}

/// One customer's way to its step 3: see the module doc. Returns the frame M stores for
/// the broker.
fn step3(site: &mut Site, keys: KeyPair, i: usize) -> Result<Vec<u8>, BenchError> {
    let now = system_clock();
    let merchant = site.merchant.uid();
    let (pan, secret) = (pan(i), PanSecret::generate());
    site.broker.open_account(&pan, &secret, now)?;
    site.broker.deposit(&pan, Amount::from_minor(VALUE), now)?;
    let mut wallet = Wallet::create(
        site.dir().join(format!("exchange-wallet-{i}.redb")),
        keys.clone(),
        site.broker.public_key(),
        now,
    )?;
    wallet.link_account(pan, &secret, now)?;
    let value = Amount::from_minor(VALUE);
    // Each request to the broker node, its reply taken by the wallet.
    let ask = |site: &mut Site, wallet: &mut Wallet, out: Outgoing| -> Result<(), BenchError> {
        let handled = site.broker.handle(&out.frame, now)?;
        wallet.handle_reply(handled.reply_frame(), now)?;
        Ok(())
    };
    let out = wallet.register(now)?;
    ask(site, &mut wallet, out)?;
    let out = wallet.request_public_key(merchant, now)?;
    ask(site, &mut wallet, out)?;
    let out = wallet.obtain_broker_scrip(value, now)?;
    ask(site, &mut wallet, out)?;
    let notice = wallet.obtain_vendor_scrip(merchant, value, now)?;
    let tx = notice.tx;
    ask(site, &mut wallet, notice)?;
    let step2 = wallet.resend(tx, Label::VendorScripRequest)?;
    site.merchant_node.add_peer(keys.public().clone());
    let mut handled = site.merchant_node.handle(&step2.frame, now)?;
    if let Some(refusal) = handled.refusal {
        return Err(BenchError::Setup(format!(
            "the merchant refused a 6.2 step 2: {refusal:?}"
        )));
    }
    match (handled.requests.pop(), handled.requests.is_empty()) {
        (Some(out), true) => Ok(out.frame),
        _ => Err(BenchError::Setup(
            "the merchant's 6.2 step 2 did not store one request for the broker".into(),
        )),
    }
}

/// The broker's 6.2 figure of `suite`: `exchanges` step 3 frames, [`BATCH`] a commit, in
/// exchanges/s against `bound`.
///
/// # Errors
/// A step of setup (see the module doc); the node's failure; an exchange not authorized.
pub fn figure(
    site: &mut Site,
    suite: shared::Suite,
    exchanges: usize,
    bound: f64,
) -> Result<Figure, BenchError> {
    // The customers' keys on every core: the slowest part of setup.
    let keys: Vec<Result<KeyPair, shared::CryptoError>> =
        parallel_map(&vec![suite; exchanges], |s| KeyPair::generate(*s));
    let mut frames = Vec::with_capacity(exchanges);
    for (i, keys) in keys.into_iter().enumerate() {
        frames.push(step3(site, keys?, i)?);
    }
    let now = system_clock();
    let merchant = site.merchant.uid();
    let float_before = site.broker.state().memo(&merchant);
    let before = site.broker.log().len()?;
    let mut elapsed = Duration::ZERO;
    for chunk in frames.chunks(BATCH) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let start = Instant::now();
        let results = site.broker.handle_batch(&refs, now);
        elapsed += start.elapsed();
        for result in results {
            let handled = result?;
            if let Some(refusal) = handled.refusal {
                return Err(BenchError::Setup(format!(
                    "the broker refused a 6.2 step 3: {refusal:?}"
                )));
            }
        }
    }
    let events = site.broker.log().len()? - before;
    let expected = exchanges as u64;
    if events != expected {
        return Err(BenchError::NotRecorded { expected, events });
    }
    let grown = site.broker.state().memo(&merchant) - float_before;
    let exchanged = i128::from(VALUE) * exchanges as i128;
    if grown != exchanged {
        return Err(BenchError::Setup(format!(
            "the merchant's float grew by {grown}, not by the {exchanged} exchanged: \
             not every exchange was authorized"
        )));
    }
    if let Err(e) = site.broker.state().check_conserved() {
        return Err(BenchError::Ledger(e.to_string()));
    }
    Ok(Figure::bounded(
        format!("{suite} broker 6.2"),
        exchanges as f64 / elapsed.as_secs_f64(),
        "exchanges/s",
        bound,
        Some(TARGET),
    ))
}
