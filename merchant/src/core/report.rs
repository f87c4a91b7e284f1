//! 6.3 step 5, the merchant's side: `PurchaseCompleted` to the broker, and the broker's
//! `Ack` that ends the merchant's duty to send it.
//!
//! Why an outbox: the purchase (`PurchaseMade`) records that the merchant owes the broker
//! this report, and the signed report frame is stored in the outbox, both in the same
//! commit as the purchase. The report is a request: the node sends the stored frame (again
//! after a restart, byte for byte, so the broker answers a repeat from its stored reply,
//! protocol.md section 7) until the broker's `Ack` (unsigned, ADR 0008) answers it; only then does the
//! event `PurchaseReported` take it out of the list of reports owed.

use shared::UnixSecs;
use shared::events::NewEvent;
use shared::node::Draft;
use shared::wire::bodies::{Body, PurchaseCompletedX3};
use shared::wire::{DigestItem, Frame, Header, Label, WireError, request_digest};
use shared::{Suite, TxId, Uid};

use super::Config;
use super::broker_reply::{Ack, AckError};
use super::events::Kind;
use super::state::{State, Unreported};

/// The header of the merchant's report of the purchase `tx`.
#[must_use]
pub fn report_header(suite: Suite, tx: TxId, me: Uid) -> Header {
    Header::new(suite, Label::PurchaseCompleted, tx, me)
}

/// `X3 = UID_C, W_P` of the purchase.
#[must_use]
pub fn report_body(report: &Unreported) -> PurchaseCompletedX3 {
    PurchaseCompletedX3 {
        customer: report.customer,
        value: report.value,
    }
}

/// The report of the purchase `tx` as a draft: `Signed(X3)` in the clear, as the paper has
/// it, so that the broker does no private-key operation per purchase (6.3 step 5).
#[must_use]
pub fn report_draft(config: &Config, tx: TxId, report: &Unreported) -> Draft {
    Draft::delivery(
        config.mint.suite(),
        tx,
        config.me(),
        config.broker,
        &report_body(report),
    )
}

/// The request digest of the report (protocol.md section 7), which the broker's `Ack`
/// must carry in its `re`.
pub fn report_digest(
    suite: Suite,
    tx: TxId,
    me: Uid,
    report: &Unreported,
) -> Result<Vec<u8>, WireError> {
    let body = report_body(report).to_bytes();
    request_digest(
        &report_header(suite, tx, me),
        &[DigestItem {
            origin: None,
            body: &body,
        }],
    )
}

/// Every report the merchant still owes, as the frame stored when the purchase was made:
/// what the node sends after a purchase and again after every restart.
#[must_use]
pub fn pending_reports(state: &State, broker: Uid) -> Vec<(TxId, Vec<u8>)> {
    state
        .tables
        .unreported
        .keys()
        .filter_map(|tx| {
            let frames = state.tables.outbox.frames(tx, &broker);
            let report = frames.iter().rev().find(|f| {
                Frame::decode(f).is_ok_and(|f| f.header.label == Label::PurchaseCompleted)
            })?;
            Some((*tx, report.clone()))
        })
        .collect()
}

/// Checks the broker's reply `frame` to a report and gives the event that takes the report
/// out of the list owed (`PurchaseReported`). A reply whose `re` does not match the
/// report's request (sender, label and digest) is discarded (protocol.md section 3).
pub fn acknowledge(
    reply: &Ack<'_>,
    state: &State,
    now: UnixSecs,
) -> Result<NewEvent<Kind>, AckError> {
    let tx = reply.frame.header.tx;
    // Unsigned (ADR 0008): the broker signs nothing per purchase; the `re` checked below
    // (over the report's exact header and body) is what binds it to this report.
    let ack = reply.part()?.unsigned_ack()?;
    let report = state
        .tables
        .unreported
        .get(&tx)
        .ok_or(AckError::NotPending)?;
    let me = reply.me;
    let expected = report_digest(me.suite(), tx, me.uid(), report)?;
    reply.answers(&ack.re, Label::PurchaseCompleted, &expected)?;
    Ok(NewEvent::new(now.to_millis(), tx, Kind::PurchaseReported))
}
