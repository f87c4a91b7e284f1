//! The merchant's catalogue (protocol.md section 6.3): what it sells and at which unit
//! price. A purchase's `OI` must name an item of it exactly, or it is refused with
//! `CatalogueMismatch`.
//!
//! Why a typed, validated value built in code: the catalogue is configuration, not state
//! derived from the log, so it is checked once when the node starts (unique ids, non-empty
//! ids and names, a price above zero) and every later lookup can trust it. Loading it from
//! a TOML file is `merchant::config::catalogue`, which builds this same type.
//!
//! [`answer`] lists it to a customer who asks (`CatalogueRequest`, the extension of
//! docs/adr/0009): a read like `TransactionStatus` (section 7), never stored and no event,
//! signed so the customer can trust the names and prices it will sign into `OI`.

use std::collections::BTreeMap;

use shared::Amount;
use shared::node::Draft;
use shared::wire::bodies::{CatalogueItem, CatalogueResponseX1, OrderInfo, Re};

use super::Config;
use super::open::CatalogueQuery;

/// One thing the merchant sells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The id an order names (`OI.item id`, 6.3 step 2).
    pub id: String,
    /// The name shown to customers; an order must repeat it exactly.
    pub name: String,
    /// Price of one item, in minor units.
    pub unit_price: Amount,
}

impl Item {
    /// An item with this id, name and unit price (validated by [`Catalogue::new`]).
    #[must_use]
    pub fn new(id: impl Into<String>, name: impl Into<String>, unit_price: Amount) -> Item {
        Item {
            id: id.into(),
            name: name.into(),
            unit_price,
        }
    }
}

/// Why a catalogue could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// Two items share an id: an order could not say which one it means.
    #[error("duplicate item id {0:?}")]
    DuplicateId(String),
    /// An item id is empty (or only whitespace).
    #[error("an item has an empty id")]
    EmptyId,
    /// An item's name is empty (or only whitespace): a customer could not tell what it buys.
    #[error("item {0:?} has an empty name")]
    EmptyName(String),
    /// An item's unit price is zero: a purchase of it would pay nothing and spend scrip
    /// for no value, which 6.3 has no use for.
    #[error("item {0:?} has a zero unit price")]
    ZeroPrice(String),
}

/// Why an order does not match the catalogue (6.3 step 3). Each maps to a wire code in
/// `core::refusal`; the message never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// No item has this id.
    #[error("no item {0:?} in the catalogue")]
    UnknownItem(String),
    /// The order's name differs from the catalogue's.
    #[error("item {0:?}: the name differs from the catalogue")]
    NameMismatch(String),
    /// The order's unit price differs from the catalogue's.
    #[error("item {id:?}: unit price {ordered} differs from the catalogue's {listed}")]
    PriceMismatch {
        /// The item.
        id: String,
        /// What the order says.
        ordered: Amount,
        /// What the catalogue says.
        listed: Amount,
    },
    /// The order's quantity is zero.
    #[error("item {0:?}: quantity zero")]
    ZeroQuantity(String),
    /// `price × quantity` overflows an amount.
    #[error("item {0:?}: price times quantity overflows")]
    TotalOverflow(String),
}

/// The merchant's items by id, in id order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Catalogue {
    items: BTreeMap<String, Item>,
}

impl Catalogue {
    /// Builds a catalogue, refusing duplicate or empty ids, empty names and zero prices.
    pub fn new(items: impl IntoIterator<Item = Item>) -> Result<Catalogue, CatalogueError> {
        let mut map = BTreeMap::new();
        for item in items {
            if item.id.trim().is_empty() {
                return Err(CatalogueError::EmptyId);
            }
            if item.name.trim().is_empty() {
                return Err(CatalogueError::EmptyName(item.id));
            }
            if item.unit_price.is_zero() {
                return Err(CatalogueError::ZeroPrice(item.id));
            }
            if map.contains_key(&item.id) {
                return Err(CatalogueError::DuplicateId(item.id));
            }
            map.insert(item.id.clone(), item);
        }
        Ok(Catalogue { items: map })
    }

    /// The item with this id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Item> {
        self.items.get(id)
    }

    /// Every item, in id order.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.values()
    }

    /// How many items.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the catalogue sells nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Checks `OI` against the catalogue (6.3 step 3: "OI matches its catalogue") and
    /// returns `W_P = unit price × quantity`, checked. The item must exist and the order
    /// must repeat its name and unit price exactly: the customer signed what it believes it
    /// buys, and the merchant sells only what it lists, so any difference is refused rather
    /// than corrected.
    pub fn price(&self, order: &OrderInfo) -> Result<Amount, OrderError> {
        let item = self
            .get(&order.item_id)
            .ok_or_else(|| OrderError::UnknownItem(order.item_id.clone()))?;
        if item.name != order.name {
            return Err(OrderError::NameMismatch(item.id.clone()));
        }
        if item.unit_price != order.unit_price {
            return Err(OrderError::PriceMismatch {
                id: item.id.clone(),
                ordered: order.unit_price,
                listed: item.unit_price,
            });
        }
        if order.quantity == 0 {
            return Err(OrderError::ZeroQuantity(item.id.clone()));
        }
        order
            .total()
            .map_err(|_| OrderError::TotalOverflow(item.id.clone()))
    }
}

/// The answer to a `CatalogueRequest` (docs/adr/0009): every item in id order, or the
/// first that fit one frame with the count of the rest, and the merchant's name
/// (docs/adr/0016); a reply that is signed and sent, never stored.
#[must_use]
pub fn answer(config: &Config, query: &CatalogueQuery) -> Draft {
    let items = config.catalogue.items().map(|item| CatalogueItem {
        id: item.id.clone(),
        name: item.name.clone(),
        unit_price: item.unit_price,
    });
    let body = CatalogueResponseX1::named_listing(
        Re::new(&query.header, query.digest.clone()),
        config.name.clone(),
        items,
    );
    Draft::reply(config.me(), &query.header, &query.digest, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::ErrorCode;
    use shared::wire::bodies::{Body, CatalogueRequestX0, OrderId};
    use shared::wire::{Frame, Header, Label, sign};
    use shared::{Nonce, Suite, TxId};

    use crate::core::open::{VerifiedRequest, open};
    use crate::core::testkit::{Kit, NOW};
    use crate::core::{Outcome, decide};

    fn catalogue_request(kit: &Kit, from: &shared::KeyPair) -> Frame {
        let header = Header::new(
            kit.suite,
            Label::CatalogueRequest,
            TxId::random(),
            from.uid(),
        );
        let body = CatalogueRequestX0 {
            nonce: Nonce::random(),
        };
        Frame::new(header, vec![sign(from, &header, &body).unwrap().into()])
    }

    /// A known customer's `CatalogueRequest` is answered with the signed listing of every
    /// item, `re` naming the request, and decided as an answer: no event, nothing stored.
    #[test]
    fn a_catalogue_request_is_answered_with_the_signed_listing_and_changes_nothing() {
        let kit = Kit::new(Suite::Paper);
        let mut config = kit.config();
        config.name = Some(shared::wire::bodies::MerchantName::new("Green Tea House").unwrap());
        let state = kit.state();
        let frame = catalogue_request(&kit, kit.customer);
        let verified = open(&frame, kit.merchant, &state, kit.broker.uid()).unwrap();
        let VerifiedRequest::Catalogue(query) = &verified else {
            panic!("not a catalogue query: {verified:?}");
        };
        let Outcome::Answer(draft) = decide(&state, &config, &verified, NOW).unwrap() else {
            panic!("a catalogue request must be a read");
        };
        let sent = draft.seal(kit.merchant, None).unwrap();
        let reply = Frame::decode(&sent.frame).unwrap();
        assert_eq!(reply.header.label, Label::CatalogueResponse);
        assert_eq!(reply.header.sender, kit.merchant.uid());
        assert_eq!(reply.header.tx, frame.header.tx);
        let body = reply
            .part(0)
            .unwrap()
            .verify_signed::<CatalogueResponseX1>(kit.merchant.public())
            .unwrap()
            .body;
        assert_eq!(body.re, Re::new(&frame.header, query.digest.clone()));
        assert_eq!(body.omitted, 0);
        assert_eq!(body.name, config.name);
        let listed: Vec<(String, String, Amount)> = body
            .items
            .into_iter()
            .map(|i| (i.id, i.name, i.unit_price))
            .collect();
        let expected: Vec<(String, String, Amount)> = config
            .catalogue
            .items()
            .map(|i| (i.id.clone(), i.name.clone(), i.unit_price))
            .collect();
        assert_eq!(listed, expected);
        assert!(!listed.is_empty());
        // A read: the state is not touched (decide takes it by reference and no event is
        // produced), so a second ask is answered afresh.
        assert!(matches!(
            decide(&state, &config, &verified, NOW),
            Ok(Outcome::Answer(_))
        ));
        assert_eq!(CatalogueRequestX0::LABEL, Label::CatalogueRequest);
    }

    /// A stranger's request cannot be verified: `UnknownPeer`, before any cryptography.
    #[test]
    fn a_stranger_gets_unknown_peer() {
        let kit = Kit::new(Suite::Paper);
        let frame = catalogue_request(&kit, kit.stranger);
        let refused = open(&frame, kit.merchant, &kit.state(), kit.broker.uid()).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::UnknownPeer);
    }

    fn amount(minor: u64) -> Amount {
        Amount::from_minor(minor)
    }

    fn catalogue() -> Catalogue {
        Catalogue::new([
            Item::new("tea", "Green tea, 100 g", amount(450)),
            Item::new("mug", "Mug", amount(1_200)),
        ])
        .expect("valid catalogue")
    }

    fn order(id: &str, name: &str, price: u64, quantity: u64) -> OrderInfo {
        OrderInfo {
            item_id: id.into(),
            name: name.into(),
            unit_price: amount(price),
            quantity,
            order_id: OrderId([1; 16]),
        }
    }

    #[test]
    fn builds_in_id_order() {
        let c = catalogue();
        assert_eq!(c.len(), 2);
        assert!(!c.is_empty());
        let ids: Vec<&str> = c.items().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["mug", "tea"]);
        assert_eq!(c.get("tea").map(|i| i.unit_price), Some(amount(450)));
        assert_eq!(c.get("coffee"), None);
        assert!(Catalogue::new([]).expect("empty is valid").is_empty());
    }

    #[test]
    fn refuses_invalid_items() {
        let ok = Item::new("a", "A", amount(1));
        assert_eq!(
            Catalogue::new([ok.clone(), Item::new("a", "Other", amount(2))]),
            Err(CatalogueError::DuplicateId("a".into()))
        );
        assert_eq!(
            Catalogue::new([ok.clone(), Item::new(" ", "B", amount(2))]),
            Err(CatalogueError::EmptyId)
        );
        assert_eq!(
            Catalogue::new([Item::new("b", "", amount(2))]),
            Err(CatalogueError::EmptyName("b".into()))
        );
        assert_eq!(
            Catalogue::new([Item::new("b", "\t", amount(2))]),
            Err(CatalogueError::EmptyName("b".into()))
        );
        assert_eq!(
            Catalogue::new([Item::new("b", "B", amount(0))]),
            Err(CatalogueError::ZeroPrice("b".into()))
        );
    }

    #[test]
    fn prices_a_matching_order() {
        let c = catalogue();
        assert_eq!(
            c.price(&order("tea", "Green tea, 100 g", 450, 3)),
            Ok(amount(1_350))
        );
        assert_eq!(c.price(&order("mug", "Mug", 1_200, 1)), Ok(amount(1_200)));
    }

    #[test]
    fn refuses_an_order_that_does_not_match() {
        let c = catalogue();
        assert_eq!(
            c.price(&order("coffee", "Coffee", 450, 1)),
            Err(OrderError::UnknownItem("coffee".into()))
        );
        assert_eq!(
            c.price(&order("tea", "Black tea", 450, 1)),
            Err(OrderError::NameMismatch("tea".into()))
        );
        assert_eq!(
            c.price(&order("tea", "Green tea, 100 g", 449, 1)),
            Err(OrderError::PriceMismatch {
                id: "tea".into(),
                ordered: amount(449),
                listed: amount(450)
            })
        );
        assert_eq!(
            c.price(&order("tea", "Green tea, 100 g", 450, 0)),
            Err(OrderError::ZeroQuantity("tea".into()))
        );
        assert_eq!(
            c.price(&order("tea", "Green tea, 100 g", 450, u64::MAX)),
            Err(OrderError::TotalOverflow("tea".into()))
        );
    }
}
