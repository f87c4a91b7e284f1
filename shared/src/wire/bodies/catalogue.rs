//! The catalogue query, an extension of protocol.md section 6 (docs/adr/0009): a customer
//! asks a merchant what it sells before a purchase (6.3 step 2 needs the item's id, name
//! and unit price exactly as the merchant lists them). Labels 37 and 38.
//!
//! Read-only at the merchant, like `TransactionStatus` (section 7): never stored, no event.
//! The answer is signed by the merchant so the wallet can trust the prices it is about to
//! sign into `OI`; the request carries a fresh nonce, so its digest, which the answer's
//! `re` names, binds the answer to this one ask (an old answer cannot be replayed as a new
//! one).

use serde::{Deserialize, Serialize};

use super::{MerchantName, Re, body, reply};
use crate::amount::Amount;
use crate::ids::Nonce;
use crate::wire::MAX_FRAME_LEN;
use crate::wire::codec::{bounded_vec, encode};

/// Most items one `CatalogueResponse` lists; a longer catalogue is listed in part, with
/// the count of the items left out. Bounds the decoder's memory like every other
/// structured sequence on the wire (protocol.md section 3, "Limits").
pub const MAX_CATALOGUE_ITEMS: usize = 256;

/// Room kept in a `CatalogueResponse` for everything but the items: the header, `re` (with
/// its digest), the signature (up to RSA-3072: 384 bytes) and the encoding overhead.
pub const CATALOGUE_RESPONSE_RESERVE: usize = 2048;

/// `CatalogueRequest` (label 37), C → M, signed in the clear: `X0 = N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueRequestX0 {
    /// A fresh nonce: makes each ask's request digest, and so the answer's `re`, unique.
    pub nonce: Nonce,
}
body!(CatalogueRequestX0 => CatalogueRequest);

/// One item as the merchant lists it: what an order (`OI`, 6.3 step 2) must repeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueItem {
    /// `OI.item id`.
    pub id: String,
    /// The name an order repeats exactly.
    pub name: String,
    /// The price of one item.
    pub unit_price: Amount,
}

/// `CatalogueResponse` (label 38), M → C, signed in the clear by the merchant:
/// `X1 = re, items, omitted, name`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueResponseX1 {
    /// The request answered.
    pub re: Re,
    /// The items, in id order: all of them, or the first that fit one frame.
    #[serde(deserialize_with = "bounded_vec::<_, _, MAX_CATALOGUE_ITEMS>")]
    pub items: Vec<CatalogueItem>,
    /// How many later items this answer leaves out because they did not fit one frame (at
    /// most [`MAX_CATALOGUE_ITEMS`] items and 64 KiB): the customer sees the listing is
    /// partial instead of guessing.
    pub omitted: u32,
    /// The merchant's display name (docs/adr/0016), signed with its prices so a customer
    /// who asks the merchant itself learns it from the merchant's key; `None` when the
    /// merchant has none configured.
    pub name: Option<MerchantName>,
}
reply!(CatalogueResponseX1 => CatalogueResponse);

impl CatalogueResponseX1 {
    /// The answer to `re` for a catalogue of `items` (in id order): the first items that
    /// fit one frame, at most [`MAX_CATALOGUE_ITEMS`], and the count of the rest.
    #[must_use]
    pub fn listing(re: Re, items: impl IntoIterator<Item = CatalogueItem>) -> CatalogueResponseX1 {
        CatalogueResponseX1::named_listing(re, None, items)
    }

    /// [`CatalogueResponseX1::listing`] of a merchant called `name` (docs/adr/0016): the
    /// name's bytes come out of the items' budget.
    #[must_use]
    pub fn named_listing(
        re: Re,
        name: Option<MerchantName>,
        items: impl IntoIterator<Item = CatalogueItem>,
    ) -> CatalogueResponseX1 {
        let name_cost = encode(&name).map_or(0, |b| b.len());
        let budget = MAX_FRAME_LEN
            .saturating_sub(CATALOGUE_RESPONSE_RESERVE)
            .saturating_sub(name_cost);
        let mut used = 0usize;
        let mut kept = Vec::new();
        let mut omitted = 0u32;
        for item in items {
            // An item that does not encode cannot be listed; it counts as left out.
            let cost = encode(&item).map_or(usize::MAX, |b| b.len());
            if omitted > 0
                || kept.len() == MAX_CATALOGUE_ITEMS
                || used.saturating_add(cost) > budget
            {
                omitted = omitted.saturating_add(1);
                continue;
            }
            used += cost;
            kept.push(item);
        }
        CatalogueResponseX1 {
            re,
            items: kept,
            omitted,
            name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Uid;
    use crate::wire::Label;
    use crate::wire::bodies::Body;

    fn re() -> Re {
        Re {
            sender: Uid([3; 16]),
            label: Label::CatalogueRequest,
            digest: vec![9; 32],
        }
    }

    fn item(i: usize, name_len: usize) -> CatalogueItem {
        CatalogueItem {
            id: format!("item-{i:04}"),
            name: "n".repeat(name_len),
            unit_price: Amount::from_minor(100 + i as u64),
        }
    }

    #[test]
    fn bodies_round_trip_under_their_labels() {
        let request = CatalogueRequestX0 {
            nonce: Nonce([5; 16]),
        };
        assert_eq!(CatalogueRequestX0::LABEL, Label::CatalogueRequest);
        assert_eq!(
            CatalogueRequestX0::from_bytes(&request.to_bytes()).unwrap(),
            request
        );
        let response = CatalogueResponseX1::listing(re(), (0..3).map(|i| item(i, 8)));
        assert_eq!(response.items.len(), 3);
        assert_eq!(response.omitted, 0);
        assert_eq!(CatalogueResponseX1::LABEL, Label::CatalogueResponse);
        assert_eq!(
            CatalogueResponseX1::from_bytes(&response.to_bytes()).unwrap(),
            response
        );
    }

    #[test]
    fn a_listing_keeps_at_most_the_bound_and_counts_the_rest() {
        let response = CatalogueResponseX1::listing(re(), (0..300).map(|i| item(i, 4)));
        assert_eq!(response.items.len(), MAX_CATALOGUE_ITEMS);
        assert_eq!(response.omitted, 300 - 256);
        assert_eq!(response.items[0].id, "item-0000");
        assert!(response.to_bytes().len() <= MAX_FRAME_LEN - CATALOGUE_RESPONSE_RESERVE);
    }

    #[test]
    fn a_listing_fits_one_frame() {
        // 40 items of 2 KiB names: only the first that fit the budget are listed.
        let response = CatalogueResponseX1::listing(re(), (0..40).map(|i| item(i, 2048)));
        let kept = response.items.len();
        assert!(kept > 0 && kept < 40);
        assert_eq!(response.omitted as usize, 40 - kept);
        assert!(response.to_bytes().len() <= MAX_FRAME_LEN - CATALOGUE_RESPONSE_RESERVE);
    }

    #[test]
    fn the_decoder_refuses_more_items_than_the_bound() {
        let mut response = CatalogueResponseX1::listing(re(), (0..1).map(|i| item(i, 1)));
        response.items = (0..=MAX_CATALOGUE_ITEMS).map(|i| item(i, 1)).collect();
        let bytes = postcard::to_allocvec(&response).unwrap();
        assert!(CatalogueResponseX1::from_bytes(&bytes).is_err());
        response.items.pop();
        let bytes = postcard::to_allocvec(&response).unwrap();
        assert_eq!(
            CatalogueResponseX1::from_bytes(&bytes).unwrap().items.len(),
            MAX_CATALOGUE_ITEMS
        );
    }

    /// The merchant's name (docs/adr/0016) travels in the signed listing and its bytes come
    /// out of the items' budget, so a named listing still fits one frame.
    #[test]
    fn a_named_listing_carries_the_name_and_still_fits_one_frame() {
        let name =
            MerchantName::new(&"\u{10348}".repeat(crate::wire::bodies::MAX_NAME_CHARS)).unwrap();
        let response = CatalogueResponseX1::named_listing(
            re(),
            Some(name.clone()),
            (0..40).map(|i| item(i, 2048)),
        );
        assert_eq!(response.name.as_ref(), Some(&name));
        assert!(response.to_bytes().len() <= MAX_FRAME_LEN - CATALOGUE_RESPONSE_RESERVE);
        assert_eq!(
            CatalogueResponseX1::from_bytes(&response.to_bytes()).unwrap(),
            response
        );
    }
}
