//! The broker the bench measures: a `BrokerNode` on a durable redb file in a temporary
//! directory, with one merchant and one customer registered (6.0) and the merchant given a
//! float by a real 6.2 exchange, so that each purchase the bench records is one an honest
//! deployment records (`PurchaseOpened`, then `PurchaseRecorded` against the float), not an
//! audit alarm (`MemoAlarm`, protocol.md section 5) of a merchant with no float.
//!
//! Keys and root keys are generated fresh. The exchange runs as the demo's does: the broker
//! and the merchant in their actor shells on a `MemoryBus`, the customer's real wallet
//! driving them; the shells are then stopped and the broker node is handed to the
//! measurements.

use std::time::Duration;

use broker::core::Config as BrokerConfig;
use broker::node::BrokerNode;
use customer_cli::Wallet;
use customer_cli::client::{Client, collect_deliveries};
use merchant::core::Config as MerchantConfig;
use merchant::core::catalogue::{Catalogue, Item};
use merchant::core::register::{Registration, accept_registration, registration};
use merchant::node::MerchantNode;
use shared::bus::{Bus, MemoryBus, Subjects};
use shared::ids::Uid;
use shared::node::Quotas;
use shared::runtime::system_clock;
use shared::wire::Label;
use shared::{AccountId, Amount, KeyPair, Mint, Pan, PanSecret, RootKey, Suite, TxId};

use super::BenchError;

/// How long a party waits for a reply or a delivery during setup.
pub(super) const TIMEOUT: Duration = Duration::from_secs(60);
const CUSTOMER_PAN: &str = "GR1601101250000000012300695";
const MERCHANT_PAN: &str = "GR9608100010000001234567890";

/// The broker under measurement and the peers whose frames it records.
pub struct Site {
    /// The broker.
    pub broker: BrokerNode,
    /// The registered customer.
    pub customer: KeyPair,
    /// The registered merchant, whose float is [`Site::float`].
    pub merchant: KeyPair,
    /// The merchant's float at the broker after setup (minor units).
    pub float: i128,
    /// The merchant's node (its catalogue sells [`ITEM`] at [`super::broker::PRICE`]),
    /// which knows the customer's key.
    pub merchant_node: MerchantNode,
    /// Keeps the files until the end of the run; last, so that it is removed after the
    /// nodes have closed their files (fields drop in order).
    dir: tempfile::TempDir,
}

/// A [`Site`] whose nodes were taken out to run in their actor shells
/// ([`Site::into_nodes`]), to be put back ([`Parts::with_nodes`]).
pub struct Parts {
    customer: KeyPair,
    merchant: KeyPair,
    float: i128,
    dir: tempfile::TempDir,
}

impl Site {
    /// The nodes, and the rest to put them back into.
    #[must_use]
    pub fn into_nodes(self) -> (BrokerNode, MerchantNode, Parts) {
        let Site {
            broker,
            customer,
            merchant,
            float,
            merchant_node,
            dir,
        } = self;
        (
            broker,
            merchant_node,
            Parts {
                customer,
                merchant,
                float,
                dir,
            },
        )
    }

    /// The temporary directory of the site's files.
    #[must_use]
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Parts {
    /// The site again, with its nodes back.
    #[must_use]
    pub fn with_nodes(self, broker: BrokerNode, merchant_node: MerchantNode) -> Site {
        let Parts {
            customer,
            merchant,
            float,
            dir,
        } = self;
        Site {
            broker,
            customer,
            merchant,
            float,
            merchant_node,
            dir,
        }
    }
}

/// The item the merchant sells, at [`super::broker::PRICE`].
pub const ITEM: &str = "tea";
/// Its name in the catalogue (an order names it, 6.3).
pub const ITEM_NAME: &str = "Green tea";

/// Quotas, the broker's and the merchant's, that let one customer and one merchant send
/// every frame of the run at one `now`: the bench sends thousands of frames from the same
/// two senders within a second, far beyond the per-sender rate and open-purchase cap of
/// protocol.md section 10, which would otherwise refuse them (`TooManyRequests`) and
/// measure the refusal instead of the purchase. The 6.2 figure's setup registers hundreds
/// of new customers as fast as the broker decides them, beyond the strangers' shared
/// budget. The caps themselves are checked on every frame all the same, so their cost is
/// in the figures.
fn unbounded_quotas() -> Quotas {
    Quotas {
        requests_per_sec: u32::MAX,
        burst: u32::MAX,
        strangers_per_sec: u32::MAX,
        strangers_burst: u32::MAX,
        open_purchases: u32::MAX,
        ..Quotas::DEFAULT
    }
}

fn setup_error(what: impl Into<String>) -> BenchError {
    BenchError::Setup(what.into())
}

/// The buses of one site's parties: the broker's, the merchant's and the customer's (one
/// connection each on NATS, as deployed; clones of one router in memory).
#[derive(Clone, Debug)]
pub struct Buses<B> {
    /// The broker's.
    pub broker: B,
    /// The merchant's.
    pub merchant: B,
    /// The customer's.
    pub customer: B,
}

impl Buses<MemoryBus> {
    /// One in-memory bus for all three.
    #[must_use]
    pub fn memory() -> Buses<MemoryBus> {
        let bus = MemoryBus::new();
        Buses {
            broker: bus.clone(),
            merchant: bus.clone(),
            customer: bus,
        }
    }
}

/// A site whose broker and merchant serve in their actor shells, with the customer's
/// wallet holding VendorScrip of the whole float and its long-lived client.
pub struct Established<B: Bus> {
    /// The broker's shell.
    pub broker_shell: broker::shell::Running,
    /// The merchant's shell.
    pub merchant_shell: merchant::shell::Running,
    /// The customer's wallet.
    pub wallet: Wallet,
    /// The customer's client on its bus.
    pub client: Client<B>,
    /// The customer's keys.
    pub customer: KeyPair,
    /// The broker's identity.
    pub broker: Uid,
    /// The merchant's keys.
    pub merchant: KeyPair,
    /// The float exchanged in 6.2 (minor units).
    pub value: Amount,
    /// The files (last: removed after the nodes have closed them).
    pub dir: tempfile::TempDir,
}

/// Builds the site of `suite`: a float of `float` minor units for the merchant, on a
/// broker log that already holds `prefill` events of the bank operator's
/// ([`super::fill`]; none when 0); the nodes are handed back out of their shells.
///
/// # Errors
/// Any step of setup that failed, named.
pub async fn build(suite: Suite, float: u64, prefill: u64) -> Result<Site, BenchError> {
    let site = establish(suite, float, prefill, Buses::memory()).await?;
    let merchant_node = site
        .merchant_shell
        .stop()
        .await
        .ok_or_else(|| setup_error("the merchant's actor is gone"))?;
    let broker = site
        .broker_shell
        .stop()
        .await
        .ok_or_else(|| setup_error("the broker's actor is gone"))?;
    let float = broker.state().memo(&site.merchant.uid());
    if float != i128::from(site.value.minor()) {
        return Err(setup_error(format!(
            "the merchant's float is {float}, not the {} exchanged",
            site.value
        )));
    }
    drop(site.wallet);
    Ok(Site {
        broker,
        customer: site.customer,
        merchant: site.merchant,
        float,
        merchant_node,
        dir: site.dir,
    })
}

/// Builds the site of `suite` on `buses` as [`build`] does, and leaves it serving.
///
/// # Errors
/// Any step of setup that failed, named.
pub async fn establish<B: Bus>(
    suite: Suite,
    float: u64,
    prefill: u64,
    buses: Buses<B>,
) -> Result<Established<B>, BenchError> {
    let dir = tempfile::tempdir()?;
    if prefill > 0 {
        super::fill::build(&dir.path().join("broker.redb"), suite, prefill)?;
    }
    let subjects = Subjects::default();
    let now = system_clock();
    let broker_keys = KeyPair::generate(suite)?;
    let merchant_keys = KeyPair::generate(suite)?;
    let customer_keys = KeyPair::generate(suite)?;
    let mut config = BrokerConfig::new(suite);
    config.quotas = unbounded_quotas();
    let mut broker = BrokerNode::open(
        dir.path().join("broker.redb"),
        broker_keys.clone(),
        RootKey::generate(),
        config,
    )?;

    let customer = (Pan::new(CUSTOMER_PAN), PanSecret::generate());
    let merchant = (Pan::new(MERCHANT_PAN), PanSecret::generate());
    for (pan, secret) in [&customer, &merchant] {
        broker.open_account(pan, secret, now)?;
    }
    // The customer's deposit pays for the merchant's float (6.1, then 6.2).
    broker.deposit(&customer.0, Amount::from_minor(float), now)?;

    // 6.0 for the merchant, before it serves (as the demo registers it).
    let merchant_id = AccountId::derive(suite, &merchant.1, &merchant.0);
    let tx = TxId::random();
    let frame = registration(
        &merchant_keys,
        broker_keys.public(),
        &merchant.0,
        &merchant_id,
        tx,
    )?;
    let handled = broker.handle(&frame, now)?;
    match accept_registration(
        handled.reply_frame(),
        &merchant_keys,
        broker_keys.public(),
        tx,
    ) {
        Ok(Registration::Registered) => {}
        Ok(Registration::AlreadyRegistered) => {
            return Err(setup_error(
                "the merchant's fresh key was registered before",
            ));
        }
        Err(e) => return Err(setup_error(format!("the merchant's registration: {e}"))),
    }

    let mut merchant_config = MerchantConfig::new(
        Mint::new(suite, merchant_keys.uid(), RootKey::generate()),
        Catalogue::new(vec![Item::new(
            ITEM,
            ITEM_NAME,
            Amount::from_minor(super::broker::PRICE),
        )])?,
        broker_keys.uid(),
        merchant.0.clone(),
        merchant_id,
    );
    merchant_config.quotas = unbounded_quotas();
    let merchant_node = MerchantNode::open(
        dir.path().join("merchant.redb"),
        merchant_keys.clone(),
        merchant_config,
        [broker_keys.public().clone(), customer_keys.public().clone()],
    )?;
    let broker_shell =
        broker::shell::serve(broker, buses.broker, subjects.clone(), system_clock).await?;
    let merchant_shell = merchant::shell::serve(
        merchant_node,
        buses.merchant,
        subjects.clone(),
        system_clock,
        TIMEOUT,
    )
    .await?;

    let client = Client::new(buses.customer, subjects, broker_keys.uid(), TIMEOUT, 3);
    let mut wallet = Wallet::create(
        dir.path().join("wallet.redb"),
        customer_keys.clone(),
        broker_keys.public(),
        system_clock(),
    )?;
    wallet.link_account(customer.0.clone(), &customer.1, system_clock())?;
    let mut deliveries = client.subscribe_deliveries(&customer_keys.uid()).await?;
    let out = wallet.register(system_clock())?;
    client.send(&mut wallet, out, system_clock()).await?;
    let out = wallet.request_public_key(merchant_keys.uid(), system_clock())?;
    client.send(&mut wallet, out, system_clock()).await?;
    let value = Amount::from_minor(float);
    let out = wallet.obtain_broker_scrip(value, system_clock())?;
    client.send(&mut wallet, out, system_clock()).await?;
    // 6.2: all of the BrokerScrip for the merchant's VendorScrip, which credits its float.
    let out = wallet.obtain_vendor_scrip(merchant_keys.uid(), value, system_clock())?;
    let tx = out.tx;
    client.send(&mut wallet, out, system_clock()).await?;
    let step2 = wallet.resend(tx, Label::VendorScripRequest)?;
    client.publish(&step2).await?;
    let got = collect_deliveries::<B, _>(&mut deliveries, 2, TIMEOUT).await;
    for frame in &got {
        wallet.handle_reply(frame, system_clock())?;
    }
    if wallet.pending().count() != 0 {
        return Err(setup_error("the 6.2 exchange did not complete"));
    }

    Ok(Established {
        broker_shell,
        merchant_shell,
        wallet,
        client,
        customer: customer_keys,
        broker: broker_keys.uid(),
        merchant: merchant_keys,
        value,
        dir,
    })
}
