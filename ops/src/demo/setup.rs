//! The world of the demo: the bank's accounts, the broker, two merchants and two customers
//! (protocol.md section 6). Keys and root keys are generated fresh; the first customer's account is the
//! one of `docs/test-vectors.md`, the others' PANSecrets are drawn with
//! [`PanSecret::generate`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use broker::core::Config as BrokerConfig;
use broker::node::BrokerNode;
use customer_cli::Wallet;
use customer_cli::client::Client;
use merchant::core::Config as MerchantConfig;
use merchant::core::catalogue::{Catalogue, Item};
use merchant::node::MerchantNode;
use shared::bus::{Bus, MemoryBus, Subjects};
use shared::{AccountId, Amount, KeyPair, Mint, Pan, PanSecret, RootKey, Suite, TxId, Uid};

use super::Options;

/// The demo's start time (unix seconds; 2027-01-15).
pub const START: u64 = 1_800_000_000;
/// The broker's configured scrip lifetime: one hour, so that 6.8 can show expiry by moving
/// the clock forward (section 4, "Expiry").
pub const BROKER_SCRIP_LIFETIME_SECS: u64 = 3600;
/// How long a party waits for a reply or delivery; nothing here waits for a timeout.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The one clock every node and wallet reads: the shells take a `fn() -> UnixSecs`
/// ([`clock`]), so the time the demo moves forward lives here.
static NOW: AtomicU64 = AtomicU64::new(START);

/// The demo's clock (unix seconds).
pub fn now() -> u64 {
    NOW.load(Ordering::SeqCst)
}

/// The demo's clock as the shells read it.
pub fn clock() -> shared::UnixSecs {
    shared::UnixSecs::new(now())
}

/// Moves the clock forward by `secs`.
pub fn advance(secs: u64) {
    NOW.fetch_add(secs, Ordering::SeqCst);
}

/// The first customer's account: test-vectors.md.
pub const ALICE_PAN: &str = "GR1601101250000000012300695";
const ALICE_SECRET: &str = "correct horse battery staple";
const BOB_PAN: &str = "GR2101101250000000012300696";
const TEA_PAN: &str = "GR9608100010000001234567890";
const BOOK_PAN: &str = "GR9608100010000001234567891";

/// Each opened bank account's initial deposit, minor units.
pub const ALICE_DEPOSIT: u64 = 10_000;
/// Bob's deposit.
pub const BOB_DEPOSIT: u64 = 5_000;

/// A running merchant.
pub struct Merchant {
    /// Its display name.
    pub name: &'static str,
    /// Its keys (the UID the wallets address).
    pub keys: KeyPair,
    /// Its bank account.
    pub pan: Pan,
    /// Its redb file.
    pub path: PathBuf,
    /// The actor shell.
    pub running: merchant::shell::Running,
}

/// A customer and its wallet.
pub struct Customer {
    /// Its display name.
    pub name: &'static str,
    /// Its keys.
    pub keys: KeyPair,
    /// Its bank account.
    pub pan: Pan,
    /// Its wallet file.
    pub path: PathBuf,
    /// The wallet.
    pub wallet: Wallet,
    /// Its peer subject (deliveries), subscribed before any request.
    pub deliveries: <MemoryBus as Bus>::Subscription,
}

/// Everything the steps drive.
pub struct World {
    /// The suite.
    pub suite: Suite,
    /// The data directory.
    pub dir: PathBuf,
    /// Kept alive until the end when the directory is temporary.
    pub _tmp: Option<tempfile::TempDir>,
    /// The bus.
    pub bus: MemoryBus,
    /// Its subjects.
    pub subjects: Subjects,
    /// The customers' client.
    pub client: Client<MemoryBus>,
    /// The broker's keys.
    pub broker_keys: KeyPair,
    /// The broker's root key (to reopen its file for replay).
    pub broker_root: RootKey,
    /// The broker's configuration.
    pub broker_config: BrokerConfig,
    /// The broker's file.
    pub broker_path: PathBuf,
    /// The running broker.
    pub broker: broker::shell::Running,
    /// Tea shop, then book shop.
    pub merchants: Vec<Merchant>,
    /// Alice, then Bob.
    pub customers: Vec<Customer>,
    /// Every bank account: (holder's name, PAN).
    pub accounts: Vec<(&'static str, Pan)>,
}

fn node_dir(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = root.join(name);
    shared::private_dir::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The directory of `--data-dir` where the run's public keys go, one `<node>.pem` each:
/// what `peerscrip-ops audit --keys` pins to audit a merchant's log, which holds no key
/// (README, "Audit a log").
pub const KEYS_DIR: &str = "keys";

/// Writes each node's public key as PEM into [`KEYS_DIR`] under `root`, named for the
/// directory of the node's log (`broker.pem`, `merchant-tea.pem`, …).
fn write_public_keys<'a>(
    root: &Path,
    nodes: impl Iterator<Item = (&'a PathBuf, &'a shared::PublicKey)>,
) -> anyhow::Result<()> {
    let dir = node_dir(root, KEYS_DIR)?;
    for (log, key) in nodes {
        let name = log
            .parent()
            .and_then(Path::file_name)
            .with_context(|| format!("the node directory of {}", log.display()))?;
        let path = dir.join(name).with_extension("pem");
        let pem = key.to_pem().context("encoding a public key")?;
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The merchant registers its key for its account (6.0) at the broker before it serves,
/// proving the account with its IdProof (protocol.md 6.2 step 3).
fn register_merchant(
    broker: &mut BrokerNode,
    broker_key: &shared::PublicKey,
    keys: &KeyPair,
    pan: &Pan,
    id: &AccountId,
) -> anyhow::Result<()> {
    use merchant::core::register::{Registration, accept_registration, registration};
    let tx = TxId::random();
    let handled = broker.handle(&registration(keys, broker_key, pan, id, tx)?, clock())?;
    match accept_registration(handled.reply_frame(), keys, broker_key, tx)? {
        Registration::Registered => Ok(()),
        Registration::AlreadyRegistered => bail!("the merchant's key was registered before"),
    }
}

impl World {
    /// Opens the accounts, starts the broker and the merchants in their shells, creates the
    /// wallets.
    ///
    /// # Errors
    /// Any node that could not open or start.
    pub async fn start(options: &Options) -> anyhow::Result<World> {
        let suite = options.suite;
        let (tmp, dir) = match &options.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let bus = MemoryBus::new();
        let subjects = Subjects::default();
        let broker_keys = KeyPair::generate(suite)?;
        let broker_root = RootKey::generate();
        let mut broker_config = BrokerConfig::new(suite);
        broker_config.scrip_lifetime_secs = BROKER_SCRIP_LIFETIME_SECS;
        let broker_path = node_dir(&dir, "broker")?.join("broker.redb");
        let mut broker = BrokerNode::open(
            &broker_path,
            broker_keys.clone(),
            broker_root.clone(),
            broker_config,
        )?;

        // The bank: four accounts, two funded (the operator API, before serving).
        let alice = (Pan::new(ALICE_PAN), PanSecret::new(ALICE_SECRET));
        let bob = (Pan::new(BOB_PAN), PanSecret::generate());
        let tea = (Pan::new(TEA_PAN), PanSecret::generate());
        let book = (Pan::new(BOOK_PAN), PanSecret::generate());
        for (pan, secret) in [&alice, &bob, &tea, &book] {
            broker.open_account(pan, secret, clock())?;
        }
        broker.deposit(&alice.0, Amount::from_minor(ALICE_DEPOSIT), clock())?;
        broker.deposit(&bob.0, Amount::from_minor(BOB_DEPOSIT), clock())?;

        let customer_keys = [KeyPair::generate(suite)?, KeyPair::generate(suite)?];
        let mut merchants_cfg = Vec::new();
        for (name, dirname, (pan, secret), items) in [
            (
                "tea shop",
                "merchant-tea",
                &tea,
                vec![
                    Item::new("tea", "Green tea, 100 g", Amount::from_minor(450)),
                    Item::new("pot", "Tea pot", Amount::from_minor(2_500)),
                ],
            ),
            (
                "book shop",
                "merchant-books",
                &book,
                vec![
                    Item::new("novel", "A novel", Amount::from_minor(1_290)),
                    Item::new("map", "City map", Amount::from_minor(320)),
                ],
            ),
        ] {
            let keys = KeyPair::generate(suite)?;
            let id = AccountId::derive(suite, secret, pan);
            register_merchant(&mut broker, broker_keys.public(), &keys, pan, &id)?;
            let config = MerchantConfig::new(
                Mint::new(suite, keys.uid(), RootKey::generate()),
                Catalogue::new(items)?,
                broker_keys.uid(),
                pan.clone(),
                id,
            );
            let path = node_dir(&dir, dirname)?.join("merchant.redb");
            merchants_cfg.push((name, keys, pan.clone(), path, config));
        }

        let broker_running =
            broker::shell::serve(broker, bus.clone(), subjects.clone(), clock).await?;
        let mut merchants = Vec::new();
        for (name, keys, pan, path, config) in merchants_cfg {
            let peers = [
                broker_keys.public().clone(),
                customer_keys[0].public().clone(),
                customer_keys[1].public().clone(),
            ];
            let node = MerchantNode::open(&path, keys.clone(), config, peers)?;
            let running =
                merchant::shell::serve(node, bus.clone(), subjects.clone(), clock, TIMEOUT).await?;
            merchants.push(Merchant {
                name,
                keys,
                pan,
                path,
                running,
            });
        }

        let client = Client::new(bus.clone(), subjects.clone(), broker_keys.uid(), TIMEOUT, 3);
        let mut customers = Vec::new();
        for ((name, dirname, (pan, secret)), keys) in [
            ("alice", "customer-alice", &alice),
            ("bob", "customer-bob", &bob),
        ]
        .into_iter()
        .zip(customer_keys)
        {
            let path = node_dir(&dir, dirname)?.join("wallet.redb");
            let mut wallet = Wallet::create(&path, keys.clone(), broker_keys.public(), clock())?;
            wallet.link_account(pan.clone(), secret, clock())?;
            let deliveries = client.subscribe_deliveries(&keys.uid()).await?;
            customers.push(Customer {
                name,
                keys,
                pan: pan.clone(),
                path,
                wallet,
                deliveries,
            });
        }
        if options.data_dir.is_some() {
            let nodes = std::iter::once((&broker_path, broker_keys.public()))
                .chain(merchants.iter().map(|m| (&m.path, m.keys.public())))
                .chain(customers.iter().map(|c| (&c.path, c.keys.public())));
            write_public_keys(&dir, nodes)?;
        }
        let accounts = vec![
            ("alice", alice.0.clone()),
            ("bob", bob.0.clone()),
            ("tea shop", tea.0.clone()),
            ("book shop", book.0.clone()),
        ];
        Ok(World {
            suite,
            dir,
            _tmp: tmp,
            bus,
            subjects,
            client,
            broker_keys,
            broker_root,
            broker_config,
            broker_path,
            broker: broker_running,
            merchants,
            customers,
            accounts,
        })
    }

    /// A merchant's UID.
    pub fn merchant_uid(&self, m: usize) -> Uid {
        self.merchants[m].keys.uid()
    }
}
