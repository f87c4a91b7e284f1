//! `TransactionStatus`, the customer's side (protocol.md section 7): "a lost delivery (change scrip, VendorScrip, a withdrawal result) is never
//! lost value: the wallet asks again".
//!
//! The wallet asks the broker or a merchant, in the clear, `Signed(TransactionStatus { tx
//! })` under a header of that same tx, for every frame of the tx the node sent it. The
//! request is read-only at the node (never stored, not in its reply cache) and so it is
//! not saved in the wallet's log either: [`request`] builds it, the caller keeps the
//! [`SavedRequest`] to check the answer with [`frames_of`] (signed by the node asked, `re`
//! naming this query). Each returned frame is then fed to the wallet exactly as if it had
//! just arrived (`Wallet::handle_status`): its own signature and content are checked as
//! usual, one already recorded changes nothing (`AlreadyReceived`, or nothing pending any
//! more), so asking again after a partial loss is always safe.

use shared::wire::bodies::{TransactionStatusBody, TransactionStatusResponseBody, TxStatus};
use shared::wire::{Body, Frame, Label};
use shared::{KeyPair, TxId, Uid};

use super::reply::read_answer;
use super::request::{Expect, SavedPart, SavedRequest};
use super::request_header;
use super::state::WalletState;
use crate::error::WalletError;

/// The status request for `tx` to `node` (the pinned broker, or a merchant whose key the
/// wallet holds: the answer must be verified).
pub fn request(state: &WalletState, tx: TxId, node: Uid) -> Result<SavedRequest, WalletError> {
    let (_, header) = request_header(state, Label::TransactionStatus, tx)?;
    if state.key_of(node).is_none() {
        return Err(WalletError::UnknownPeer { uid: node });
    }
    let body = TransactionStatusBody { tx };
    SavedRequest::new(
        header,
        node,
        vec![SavedPart::Signed {
            body: body.to_bytes(),
        }],
        Expect::TransactionStatus { node },
    )
}

/// Checks the node's answer to `query` and returns the frames it holds for the wallet, in
/// order (none while `Pending`), and how many earlier frames the answer left out because
/// they did not fit one frame (0 in practice). A signed `Error` is
/// [`WalletError::Refused`]; nothing is recorded either way.
pub fn frames_of(
    state: &WalletState,
    keys: &KeyPair,
    query: &SavedRequest,
    frame: &Frame,
) -> Result<(Vec<Vec<u8>>, u32), WalletError> {
    let verified = read_answer::<TransactionStatusResponseBody>(state, keys, query, frame)?;
    Ok(match verified.body.status {
        TxStatus::Pending => (Vec::new(), 0),
        TxStatus::Frames { frames, omitted } => (frames, omitted),
    })
}
