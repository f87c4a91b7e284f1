//! Test support: the parties of a merchant's transactions with fixture keys, in one suite,
//! and the customer side of the requests a merchant serves (built with the same `wire`
//! builders a wallet uses).

use shared::fixtures;
use shared::ids::{AccountId, Pan, PanSecret};
use shared::wire::bodies::{Body, OrderId, OrderInfo, PurchaseRequestX1, RenewRequestX0};
use shared::wire::{Frame, Header, Part, seal, secret_inner, sign};
use shared::{Amount, CustomerSecret, KeyPair, Mint, PublicKey, Scrip, Suite, TxId, UnixSecs};

use super::Config;
use super::catalogue::{Catalogue, Item};
use super::state::State;

/// A time well before every expiry the tests use.
pub const NOW: UnixSecs = UnixSecs::new(1_800_000_000);

/// The parties, in one suite. Fixture key indexes: broker 0, merchant 1, customer 2,
/// another registered customer 3, an unknown peer 4, another merchant 5.
pub struct Kit {
    pub suite: Suite,
    pub broker: &'static KeyPair,
    pub merchant: &'static KeyPair,
    pub customer: &'static KeyPair,
    pub other: &'static KeyPair,
    pub stranger: &'static KeyPair,
    pub other_merchant: &'static KeyPair,
}

impl Kit {
    pub fn new(suite: Suite) -> Kit {
        Kit {
            suite,
            broker: fixtures::keypair(suite, 0),
            merchant: fixtures::keypair(suite, 1),
            customer: fixtures::keypair(suite, 2),
            other: fixtures::keypair(suite, 3),
            stranger: fixtures::keypair(suite, 4),
            other_merchant: fixtures::keypair(suite, 5),
        }
    }

    /// The merchant's configuration: its Mint (root key 1) and [`catalogue`].
    pub fn config(&self) -> Config {
        Config::new(
            self.mint(),
            catalogue(),
            self.broker.uid(),
            merchant_pan(),
            AccountId::derive(self.suite, &merchant_pan_secret(), &merchant_pan()),
        )
    }

    /// The merchant's Mint.
    pub fn mint(&self) -> Mint {
        Mint::new(self.suite, self.merchant.uid(), fixtures::root_key(1))
    }

    /// Another merchant's Mint (its scrip is not this merchant's).
    pub fn other_mint(&self) -> Mint {
        Mint::new(self.suite, self.other_merchant.uid(), fixtures::root_key(5))
    }

    /// An empty state that knows every party but the stranger.
    pub fn state(&self) -> State {
        let mut state = State::new();
        for k in [self.broker, self.customer, self.other, self.other_merchant] {
            state.add_peer(k.public().clone());
        }
        state
    }

    /// A frame from `from` to the merchant presenting `scrip` in `body`.
    pub fn presenting<B: Body>(
        &self,
        from: &KeyPair,
        tx: TxId,
        body: &B,
        scrip: &Scrip,
        cs: &CustomerSecret,
    ) -> Frame {
        presenting_to(from, self.merchant.public(), tx, body, scrip, cs)
    }

    /// 6.3 step 2 from `from`.
    pub fn purchase(
        &self,
        from: &KeyPair,
        tx: TxId,
        scrip: &Scrip,
        cs: &CustomerSecret,
        order: &OrderInfo,
    ) -> Frame {
        let body = PurchaseRequestX1 {
            scrip: scrip.clone(),
            cs_hash: cs.cs_hash(self.suite),
            order: order.clone(),
        };
        self.presenting(from, tx, &body, scrip, cs)
    }

    /// 6.8 step 1 from `from`.
    pub fn renew(&self, from: &KeyPair, tx: TxId, scrip: &Scrip, cs: &CustomerSecret) -> Frame {
        let body = RenewRequestX0 {
            scrip: scrip.clone(),
            cs_hash: cs.cs_hash(self.suite),
        };
        self.presenting(from, tx, &body, scrip, cs)
    }
}

/// A frame from `from` to `to`: one sealed part holding `Signed(body)` and the secret of
/// `scrip`, under a header of `body`'s label.
pub fn presenting_to<B: Body>(
    from: &KeyPair,
    to: &PublicKey,
    tx: TxId,
    body: &B,
    scrip: &Scrip,
    cs: &CustomerSecret,
) -> Frame {
    let header = Header::new(from.suite(), B::LABEL, tx, from.uid());
    let signed = sign(from, &header, body).expect("sign");
    let part: Part =
        seal(&header, to, &[signed.into(), secret_inner(scrip.id(), cs)]).expect("seal");
    Frame::new(header, vec![part])
}

/// The merchant's bank account number in the tests.
pub fn merchant_pan() -> Pan {
    Pan::new("MERCHANT-0001")
}

/// Its PANSecret.
pub fn merchant_pan_secret() -> PanSecret {
    PanSecret::new("secret of the merchant's account for tests")
}

/// The catalogue every test uses.
pub fn catalogue() -> Catalogue {
    Catalogue::new([
        Item::new("tea", "Green tea, 100 g", Amount::from_minor(450)),
        Item::new("mug", "Mug", Amount::from_minor(1_200)),
    ])
    .expect("valid catalogue")
}

/// An order of `quantity` of the catalogue's tea.
pub fn tea(quantity: u64) -> OrderInfo {
    OrderInfo {
        item_id: "tea".into(),
        name: "Green tea, 100 g".into(),
        unit_price: Amount::from_minor(450),
        quantity,
        order_id: OrderId::random(),
    }
}

/// Folds a decided event into `state` as the log would store it (no frames sent).
pub fn fold(state: &mut State, event: shared::events::NewEvent<super::events::Kind>) {
    let stored = shared::events::Event {
        seq: 1,
        time: event.time,
        tx: event.tx,
        prev_hash: shared::events::GENESIS_PREV_HASH,
        postings: event.postings,
        memos: event.memos,
        evidence: event.evidence,
        kind: shared::node::Recorded {
            kind: event.kind,
            sent: Vec::new(),
        },
    };
    state.apply(&stored);
}
