//! The merchant selling 6.3 in process: `MerchantNode::handle_batch` on its durable log,
//! fed the customer's `PurchaseRequest`s (6.3 step 2: `Sealed(to M){ Signed(X1 = V0,
//! hash(CS_V0), OI), Secret(CS_V0) }`) built beforehand, [`BATCH`] a commit, in
//! purchases/s against the merchant's bound (protocol.md 6.3: the unwrap and verification
//! of the request, the signatures of the response and of the report, the wrap that seals
//! the response).
//!
//! The route to valid requests, chosen as the simplest correct one: each purchase presents
//! its own VendorScrip. A wallet holds one VendorScrip of a merchant and pays the next
//! purchase with the change of the last, which the merchant only issues when it decides
//! that purchase; requests built beforehand cannot chain. So setup issues one VendorScrip
//! of [`SCRIP_VALUE`] to the site's customer per purchase with the merchant's own
//! `MerchantNode::issue_vendor_scrip` (an operator's issuance: one `ScripIssued` event, no
//! RSA, untimed), and each request spends one of them on one item at
//! [`super::broker::PRICE`]: every purchase is answered with the item and change (section 4:
//! `V1 = V0 − W_P`), as a wallet's is, the change sealed to the customer with `CS_V1`.
//!
//! Every request must be answered with a `PurchaseResponse` (not an `Error`) and recorded
//! as one event (`PurchaseMade`), and the merchant's books (`issued = live + paid +
//! withdrawn`) must hold after the run, else it fails. Each purchase's step 1 is recorded
//! at the broker beforehand ([`record_initiated`]); the `PurchaseCompleted` reports the
//! merchant owes the broker (step 5) are stored with each purchase and sent later, by the
//! merchant's shell ([`super::merchant_shell`]): the broker's side of 6.3 is measured on
//! its own ([`super::broker`]).

use std::time::{Duration, Instant};

use shared::runtime::{parallel_map, system_clock};
use shared::wire::bodies::{OrderId, OrderInfo, PurchaseRequestX1};
use shared::wire::{Frame, Header, Label, Part, seal, secret_inner, sign};
use shared::{Amount, CustomerSecret, Scrip, TxId};

use super::BenchError;
use super::broker;
use super::figures::Figure;
use super::setup::{ITEM, ITEM_NAME, Site};

/// The ratio of the merchant's 6.3 throughput at [`BATCH`] to its bound it must reach.
pub const TARGET: f64 = 0.8;
/// Requests a commit (the shell's largest batch, `shared::runtime::MAX_BATCH`).
pub const BATCH: usize = 256;
/// The value of each VendorScrip the customer presents (minor units): one item and change.
pub const SCRIP_VALUE: u64 = 2 * super::broker::PRICE;

/// One VendorScrip of [`SCRIP_VALUE`] per purchase, issued to the site's customer.
///
/// # Errors
/// The merchant's node refused or could not record an issuance.
pub fn issue_scrip(
    site: &mut Site,
    purchases: usize,
) -> Result<Vec<(Scrip, CustomerSecret)>, BenchError> {
    let owner = site.customer.uid();
    let now = system_clock();
    (0..purchases)
        .map(|_| {
            Ok(site.merchant_node.issue_vendor_scrip(
                owner,
                Amount::from_minor(SCRIP_VALUE),
                TxId::random(),
                now,
            )?)
        })
        .collect()
}

/// The customer's 6.3 step 2 for each of `scrip`, signed and sealed to the merchant on
/// every core (the customer's work, not timed).
///
/// # Errors
/// A frame that could not be signed, sealed or encoded.
pub fn request_frames(
    site: &Site,
    scrip: &[(Scrip, CustomerSecret)],
) -> Result<Vec<(TxId, Vec<u8>)>, BenchError> {
    let customer = &site.customer;
    let suite = customer.suite();
    let to = site.merchant.public();
    parallel_map(
        scrip,
        |(scrip, cs)| -> Result<(TxId, Vec<u8>), BenchError> {
            let tx = TxId::random();
            let header = Header::new(suite, Label::PurchaseRequest, tx, customer.uid());
            let body = PurchaseRequestX1 {
                scrip: scrip.clone(),
                cs_hash: cs.cs_hash(suite),
                order: OrderInfo {
                    item_id: ITEM.into(),
                    name: ITEM_NAME.into(),
                    unit_price: Amount::from_minor(super::broker::PRICE),
                    quantity: 1,
                    order_id: OrderId::random(),
                },
            };
            let signed = sign(customer, &header, &body)?;
            let part: Part = seal(&header, to, &[signed.into(), secret_inner(scrip.id(), cs)])?;
            Ok((tx, Frame::new(header, vec![part]).encode()?))
        },
    )
    .into_iter()
    .collect()
}

/// Records at the site's broker step 1 (`PurchaseInitiated`) of each of `requests`, as
/// the customer sends it before paying (6.3 step 1; not timed): the merchant's reports of
/// these purchases, when its shell sends them ([`super::merchant_shell`]), then match, as
/// an honest customer's do, and the broker records each against the float.
///
/// # Errors
/// As [`broker::record`].
pub fn record_initiated(site: &mut Site, requests: &[(TxId, Vec<u8>)]) -> Result<(), BenchError> {
    let initiated = requests
        .iter()
        .map(|(tx, _)| broker::initiated_frame(site, *tx))
        .collect::<Result<Vec<_>, _>>()?;
    broker::record(site, &initiated, BATCH)?;
    Ok(())
}

/// Checks that `reply` is the merchant's `PurchaseResponse`.
///
/// # Errors
/// [`BenchError::Setup`] naming what came instead.
pub fn check_response(reply: &[u8]) -> Result<(), BenchError> {
    let label = Frame::header_of(reply)?.label;
    if label == Label::PurchaseResponse {
        Ok(())
    } else {
        Err(BenchError::Setup(format!(
            "the merchant answered a purchase with {label:?}, not PurchaseResponse"
        )))
    }
}

/// Checks that the merchant's log grew by one event per purchase since `before` and that
/// its books hold.
///
/// # Errors
/// [`BenchError::NotRecorded`], [`BenchError::Ledger`].
pub fn check_recorded(
    node: &merchant::node::MerchantNode,
    before: u64,
    purchases: usize,
) -> Result<(), BenchError> {
    let events = node.log().len()? - before;
    let expected = purchases as u64;
    if events != expected {
        return Err(BenchError::NotRecorded { expected, events });
    }
    node.state()
        .check_books()
        .map_err(|e| BenchError::Ledger(format!("the merchant's: {e}")))
}

/// The merchant's 6.3 figure of `suite`: `purchases` purchases [`BATCH`] a commit, in
/// purchases/s against `bound` (the merchant's bound from the same run's primitives).
///
/// # Errors
/// As [`issue_scrip`] and [`request_frames`]; the node's failure; a purchase not answered
/// or not recorded.
pub fn figure(
    site: &mut Site,
    suite: shared::Suite,
    purchases: usize,
    bound: f64,
) -> Result<Figure, BenchError> {
    let scrip = issue_scrip(site, purchases)?;
    let requests = request_frames(site, &scrip)?;
    record_initiated(site, &requests)?;
    let frames: Vec<Vec<u8>> = requests.into_iter().map(|(_, frame)| frame).collect();
    let now = system_clock();
    let node = &mut site.merchant_node;
    let before = node.log().len()?;
    let mut elapsed = Duration::ZERO;
    for chunk in frames.chunks(BATCH) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let start = Instant::now();
        let results = node.handle_batch(&refs, now);
        elapsed += start.elapsed();
        for result in results {
            let handled = result?;
            if let Some(refusal) = handled.refusal {
                return Err(BenchError::Setup(format!(
                    "the merchant refused a purchase: {refusal:?}"
                )));
            }
            check_response(handled.reply_frame())?;
        }
    }
    check_recorded(node, before, purchases)?;
    Ok(Figure::bounded(
        format!("{suite} merchant 6.3 batch {BATCH}"),
        purchases as f64 / elapsed.as_secs_f64(),
        "purchases/s",
        bound,
        Some(TARGET),
    ))
}
