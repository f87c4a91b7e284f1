//! The fixed world every vector is built in: who is who (fixture keys, docs/protocol.md
//! section 1), their bank accounts, the producers' root keys and the scrip they issued.
//!
//! Everything here is a constant or derived from one, so the bodies of the vectors are the
//! same on every run; only the randomized parts of a frame (PSS salts, OAEP padding, IVs
//! and nonces) differ between two builds, which is why a stored frame is checked by
//! opening it rather than by comparing its bytes (docs/vectors/README.md).

use shared::fixtures;
use shared::{AccountId, Amount, CustId, CustomerSecret, KeyPair, Mint, Pan, PanSecret, Scrip};
use shared::{ScripId, Suite, TxId, Uid};

/// A party of the vectors and its fixture key index (`shared/testdata/keys/<suite>-<i>.pem`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The broker, fixture key 0, producer of BrokerScrip with root key 0.
    Broker,
    /// The merchant M, fixture key 1, producer of VendorScrip with root key 1.
    Merchant,
    /// The customer C, fixture key 2.
    Customer,
    /// The broker's operator (docs/adr/0010), fixture key 3.
    Operator,
}

impl Role {
    /// Every role, in key order.
    pub const ALL: [Role; 4] = [Role::Broker, Role::Merchant, Role::Customer, Role::Operator];

    /// The fixture key index.
    pub const fn index(self) -> usize {
        match self {
            Role::Broker => 0,
            Role::Merchant => 1,
            Role::Customer => 2,
            Role::Operator => 3,
        }
    }

    /// The name used in the vector files.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Broker => "broker",
            Role::Merchant => "merchant",
            Role::Customer => "customer",
            Role::Operator => "operator",
        }
    }
}

/// The customer's account: the PAN and PANSecret of docs/test-vectors.md.
pub const CUSTOMER_PAN: &str = "GR1601101250000000012300695";
/// The customer's PANSecret (docs/test-vectors.md, "Account ID").
pub const CUSTOMER_PAN_SECRET: &str = "correct horse battery staple";
/// The merchant's account.
pub const MERCHANT_PAN: &str = "GR9601101250000000099999999";
/// The merchant's PANSecret, in the form the bank tool draws one: 32 lowercase hex
/// characters, hashed as text (docs/protocol.md section 1).
pub const MERCHANT_PAN_SECRET: &str = "00112233445566778899aabbccddeeff";
/// The PAN of the account the operator opens in the `AdminRequest` vector.
pub const NEW_PAN: &str = "GR0000000000000000000000042";
/// The PANSecret sent with it.
pub const NEW_PAN_SECRET: &str = "ffeeddccbbaa99887766554433221100";

/// Every scrip expires at this second (2027-01-15 08:00:00 UTC).
pub const EXPIRES: u64 = 1_800_000_000;
/// The deadline of every escrow and exchange in the vectors.
pub const DEADLINE: u64 = 1_799_000_000;

/// The tx of a transaction of section 6: 16 bytes of `n`, one `n` per transaction.
pub const fn tx(n: u8) -> TxId {
    TxId([n; 16])
}

/// A scrip with its CustomerSecret.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The scrip.
    pub scrip: Scrip,
    /// Its CustomerSecret.
    pub cs: CustomerSecret,
}

impl Issued {
    /// `cs_hash` of its CustomerSecret (docs/protocol.md section 3).
    pub fn cs_hash(&self, suite: Suite) -> Vec<u8> {
        self.cs.cs_hash(suite)
    }
}

/// The world of one suite.
pub struct World {
    /// The suite of every key and frame.
    pub suite: Suite,
    broker_mint: Mint,
    merchant_mint: Mint,
}

impl World {
    /// The world of `suite`.
    pub fn new(suite: Suite) -> World {
        World {
            suite,
            broker_mint: Mint::new(suite, key(suite, Role::Broker).uid(), fixtures::root_key(0)),
            merchant_mint: Mint::new(
                suite,
                key(suite, Role::Merchant).uid(),
                fixtures::root_key(1),
            ),
        }
    }

    /// The key pair of `role`.
    pub fn key(&self, role: Role) -> &'static KeyPair {
        key(self.suite, role)
    }

    /// The UID of `role`.
    pub fn uid(&self, role: Role) -> Uid {
        self.key(role).uid()
    }

    /// The account `ID` of `role` (the customer's or the merchant's).
    pub fn account_id(&self, role: Role) -> AccountId {
        let (pan, secret) = account(role);
        AccountId::derive(self.suite, &PanSecret::new(secret), &Pan::new(pan))
    }

    /// BrokerScrip of `value` with ids made of `id` (scrip id) and `id + 1` (cust id).
    pub fn broker_scrip(&self, value: u64, id: u8) -> Issued {
        issue(&self.broker_mint, value, id)
    }

    /// VendorScrip of the merchant, as [`World::broker_scrip`].
    pub fn vendor_scrip(&self, value: u64, id: u8) -> Issued {
        issue(&self.merchant_mint, value, id)
    }
}

/// The fixture key of `role` in `suite`.
pub fn key(suite: Suite, role: Role) -> &'static KeyPair {
    fixtures::keypair(suite, role.index())
}

/// The PAN and PANSecret of `role`'s account. Only the customer and the merchant have one.
pub fn account(role: Role) -> (&'static str, &'static str) {
    match role {
        Role::Customer => (CUSTOMER_PAN, CUSTOMER_PAN_SECRET),
        Role::Merchant => (MERCHANT_PAN, MERCHANT_PAN_SECRET),
        Role::Broker | Role::Operator => panic!("the {} has no account", role.name()),
    }
}

fn issue(mint: &Mint, value: u64, id: u8) -> Issued {
    let (scrip, cs) = mint.issue_with_ids(
        Amount::from_minor(value),
        EXPIRES,
        ScripId([id; 16]),
        CustId([id.wrapping_add(1); 16]),
    );
    Issued { scrip, cs }
}
