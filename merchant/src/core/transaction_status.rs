//! `TransactionStatus { tx }` at the merchant (protocol.md section 7; wave 2, ruling 3): a
//! party asks for every frame of a tx the merchant sent it (a held VendorScrip of 6.2, a
//! top-up's V1 of 6.5, a purchase's change), so that a lost message is never lost value.
//!
//! Read-only: never stored, not subject to the reply cache, built fresh from the outbox
//! each time. Only the asker's own frames are returned (the outbox is keyed by recipient
//! and the asker is authenticated by its signature). At most `MAX_STORED_FRAMES` of them,
//! the most recent, which a 64 KiB frame holds (a merchant sends a party one or two frames
//! per tx); the asker processes them and may ask again.

use shared::node::Draft;
use shared::wire::bodies::{MAX_STORED_FRAMES, Re, TransactionStatusResponseBody, TxStatus};

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
    let status = if frames.is_empty() {
        TxStatus::Pending
    } else {
        let skip = frames.len().saturating_sub(MAX_STORED_FRAMES);
        TxStatus::Frames {
            frames: frames[skip..].to_vec(),
        }
    };
    let body = TransactionStatusResponseBody {
        re: Re::new(&request.header, request.digest.clone()),
        status,
    };
    Draft::reply(config.me(), &request.header, &request.digest, &body)
}
