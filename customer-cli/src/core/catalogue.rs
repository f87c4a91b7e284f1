//! The catalogue query, the customer's side (the extension of docs/adr/0009): before a
//! purchase (6.3) the wallet asks the merchant, in the clear, `Signed(CatalogueRequest { N
//! })` under a fresh tx, for the items it sells; 6.3's `OI` must repeat an item's id, name
//! and unit price exactly.
//!
//! Read-only, like `TransactionStatus` (section 7): nothing is saved in the wallet's log.
//! [`request`] builds the query, the caller keeps the [`SavedRequest`] to check the answer
//! with [`listing_of`]: signed by the merchant under the key the wallet cached by 6.0b
//! (section 6.0b: a key arrives no other way), `re` naming this query (its digest covers
//! the fresh nonce, so an old answer cannot pass for this one).

use shared::wire::bodies::{CatalogueItem, CatalogueRequestX0, CatalogueResponseX1};
use shared::wire::{Body, Frame, Label};
use shared::{KeyPair, Nonce, TxId, Uid};

use super::reply::read_answer;
use super::request::{Expect, SavedPart, SavedRequest};
use super::request_header;
use super::state::WalletState;
use crate::error::WalletError;

/// A merchant's verified catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The merchant that signed it.
    pub merchant: Uid,
    /// Its items, in id order.
    pub items: Vec<CatalogueItem>,
    /// How many more items the merchant has than fit its answer.
    pub omitted: u32,
    /// The merchant's name, signed with the listing (docs/adr/0016), if it has one.
    pub name: Option<shared::wire::bodies::MerchantName>,
}

impl Listing {
    /// The item with this id.
    #[must_use]
    pub fn item(&self, id: &str) -> Option<&CatalogueItem> {
        self.items.iter().find(|i| i.id == id)
    }
}

/// The catalogue query to `merchant` in `tx` with the fresh `nonce`. The merchant's key
/// must be cached (6.0b): its answer is verified with it.
pub fn request(
    state: &WalletState,
    tx: TxId,
    merchant: Uid,
    nonce: Nonce,
) -> Result<SavedRequest, WalletError> {
    let (_, header) = request_header(state, Label::CatalogueRequest, tx)?;
    if state.key_of(merchant).is_none() {
        return Err(WalletError::UnknownPeer { uid: merchant });
    }
    let body = CatalogueRequestX0 { nonce };
    SavedRequest::new(
        header,
        merchant,
        vec![SavedPart::Signed {
            body: body.to_bytes(),
        }],
        Expect::Catalogue { merchant },
    )
}

/// Checks the merchant's answer to `query` (see the module doc) and returns its listing.
/// A signed `Error` is [`WalletError::Refused`]; nothing is recorded either way.
pub fn listing_of(
    state: &WalletState,
    keys: &KeyPair,
    query: &SavedRequest,
    frame: &Frame,
) -> Result<Listing, WalletError> {
    let verified = read_answer::<CatalogueResponseX1>(state, keys, query, frame)?;
    Ok(Listing {
        merchant: query.to,
        items: verified.body.items,
        omitted: verified.body.omitted,
        name: verified.body.name,
    })
}
