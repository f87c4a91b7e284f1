//! Tests of the wire layer with real keys, in both suites: round trips of every kind of
//! part, every refusal of the openers, and tampering (bit flips, moved parts).
//!
//! Keys are the shared fixtures (parsed once per test binary); frames that several tests
//! and property cases reuse are built once in a `LazyLock`.

mod refusals;
mod round_trip;
mod tamper;

use crate::amount::Amount;
use crate::fixtures;
use crate::ids::{AccountId, Pan, PanSecret, TxId};
use crate::scrip::{CustomerSecret, Mint, Scrip};
use crate::suite::{KeyPair, Suite};
use crate::wire::{Header, Label};

/// The parties of a test transaction, in one suite.
pub(super) struct Parties {
    pub suite: Suite,
    /// Customer.
    pub c: &'static KeyPair,
    /// Broker.
    pub b: &'static KeyPair,
    /// Merchant.
    pub m: &'static KeyPair,
    /// The customer's account ID, as the broker recomputes it.
    pub id_c: AccountId,
    /// The merchant's account ID.
    pub id_m: AccountId,
    /// A BrokerScrip of the customer, and its CustomerSecret.
    pub scrip: Scrip,
    pub cs: CustomerSecret,
    pub tx: TxId,
}

impl Parties {
    pub fn new(suite: Suite) -> Parties {
        let b = fixtures::keypair(suite, 1);
        let mint = Mint::new(suite, b.uid(), fixtures::root_key(1));
        let (scrip, cs) = mint.issue(Amount::from_minor(1000), 1_900_000_000);
        Parties {
            suite,
            c: fixtures::keypair(suite, 0),
            b,
            m: fixtures::keypair(suite, 2),
            id_c: account_id(
                suite,
                "GR1601101250000000012300695",
                "correct horse battery staple",
            ),
            id_m: account_id(suite, "GR9999", "merchant secret"),
            scrip,
            cs,
            tx: TxId(std::array::from_fn(|i| 0x30 + i as u8)),
        }
    }

    /// The header of a message of this transaction.
    pub fn header(&self, label: Label, sender: &KeyPair) -> Header {
        Header::new(self.suite, label, self.tx, sender.uid())
    }
}

fn account_id(suite: Suite, pan: &str, secret: &str) -> AccountId {
    AccountId::derive(suite, &PanSecret::new(secret), &Pan::new(pan))
}
