//! Merchants by name, the customer's side (docs/adr/0016): `peerscrip merchants` asks the
//! broker, in the clear, `Signed(MerchantDirectoryRequest { after, N })` under a fresh tx
//! for the merchants that registered a name, a page at a time.
//!
//! Read-only like the catalogue query (docs/adr/0009): the answer is checked with
//! `read_answer` (signed by the pinned broker, of the query's tx, `re` naming this query,
//! whose digest covers the fresh nonce) and nothing is saved as a request. The names it
//! brings are remembered by the wallet ([`changed_names`] picks those it did not know), so
//! every later output names the merchant.

use shared::wire::bodies::{MerchantDirectoryRequestX0, MerchantDirectoryResponseX1, MerchantName};
use shared::wire::{Body, Frame, Label};
use shared::{KeyPair, Nonce, TxId, Uid};

use super::events::WalletEvent;
use super::reply::read_answer;
use super::request::{Expect, SavedPart, SavedRequest};
use super::request_header;
use super::state::WalletState;
use crate::error::WalletError;

/// One verified page of the broker's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// (UID, name), in UID order.
    pub merchants: Vec<(Uid, MerchantName)>,
    /// Whether more merchants follow the last one.
    pub more: bool,
}

/// The directory query in `tx` with the fresh `nonce`: the page after `after`.
pub fn request(
    state: &WalletState,
    tx: TxId,
    after: Option<Uid>,
    nonce: Nonce,
) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::MerchantDirectoryRequest, tx)?;
    let body = MerchantDirectoryRequestX0 { after, nonce };
    SavedRequest::new(
        header,
        identity.broker,
        vec![SavedPart::Signed {
            body: body.to_bytes(),
        }],
        Expect::MerchantDirectory,
    )
}

/// Checks the broker's answer to `query` and returns its page. A signed `Error` is
/// [`WalletError::Refused`]; a page out of UID order, or not after the cursor asked, is
/// not what was asked and is refused as a mismatch.
pub fn page_of(
    state: &WalletState,
    keys: &KeyPair,
    query: &SavedRequest,
    after: Option<Uid>,
    frame: &Frame,
) -> Result<Page, WalletError> {
    let verified = read_answer::<MerchantDirectoryResponseX1>(state, keys, query, frame)?;
    let merchants: Vec<(Uid, MerchantName)> = verified
        .body
        .merchants
        .into_iter()
        .map(|e| (e.uid, e.name))
        .collect();
    let mut previous = after;
    for (uid, _) in &merchants {
        if previous.is_some_and(|p| *uid <= p) {
            return Err(WalletError::DirectoryOutOfOrder);
        }
        previous = Some(*uid);
    }
    Ok(Page {
        merchants,
        more: verified.body.more,
    })
}

/// The `MerchantNamed` events for the names in `learned` that the wallet does not know
/// yet or knows under another name: a name seen again appends nothing.
pub fn changed_names<'a>(
    state: &WalletState,
    learned: impl IntoIterator<Item = (&'a Uid, &'a MerchantName)>,
) -> Vec<WalletEvent> {
    learned
        .into_iter()
        .filter(|(uid, name)| state.names.get(uid) != Some(name))
        .map(|(uid, name)| WalletEvent::MerchantNamed {
            uid: *uid,
            name: name.clone(),
        })
        .collect()
}
