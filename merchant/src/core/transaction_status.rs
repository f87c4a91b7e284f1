//! `TransactionStatus { tx }` at the merchant (protocol.md section 7): a party asks for
//! every frame of a tx the merchant sent it (a held VendorScrip of 6.2, a top-up's V1 of
//! 6.5, a purchase's change), so that a lost message is never lost value.
//!
//! Read-only: never stored, not subject to the reply cache, built fresh from the outbox
//! each time. Only the asker's own frames are returned (the outbox is keyed by recipient
//! and the asker is authenticated by its signature). The answer must fit one frame:
//! [`TxStatus::of_stored`] keeps the most recent frames that fit and says how many earlier
//! ones it left out.

use shared::node::Draft;
use shared::wire::bodies::{Re, TransactionStatusResponseBody, TxStatus};

use super::Config;
use super::open::StatusRequest;
use super::state::State;

/// The answer to a `TransactionStatus`: a reply that is signed and sent, never stored.
#[must_use]
pub fn answer(state: &State, config: &Config, request: &StatusRequest) -> Draft {
    let frames = state
        .tables
        .outbox
        .frames(&request.body.tx, &request.header.sender);
    let body = TransactionStatusResponseBody {
        re: Re::new(&request.header, request.digest.clone()),
        status: TxStatus::of_stored(frames),
    };
    Draft::reply(config.me(), &request.header, &request.digest, &body)
}
