//! The test kit: a whole peerscrip network in one process (LDK's `create_network`, in
//! small). [`Network::new`] opens a broker, `N` merchants with their catalogues and `M`
//! wallets, each on its own redb file in one temporary directory; opens and funds a bank
//! account for every party (section 1, section 5: the bank operator's API), registers every
//! merchant and wallet (6.0) and gives every wallet every merchant's key (6.0b). Any node
//! can be closed and reopened from its file between two messages ([`Network::reopen_broker`],
//! [`Network::reopen_merchant`], [`Network::reopen_wallet`]): every test that drives the
//! network can become a restart test (section 7: "on restart every node resumes each tx
//! with no recorded outcome").
//!
//! With [`NetworkSpec::registered`] off, each wallet is created with its account linked and
//! nothing more, for a test of registration itself. To serve a node in its actor shell,
//! [`crate::deployment`] takes it out of the network ([`Network::take_broker`],
//! [`Network::take_merchant`]) and puts it back when the shell stops.
//!
//! With [`NetworkSpec::faulty_disks`], the broker's and every merchant's log sit on a
//! `shared::events::faults::FaultyFile`, a disk the test fills and frees at will
//! ([`Network::broker_disk`], [`Network::merchant_disk`]): their commits then fail, as on a
//! full disk (protocol.md section 10, "Storage faults").
//!
//! Keys are `shared::fixtures` (test-only PEMs, no key generation): the broker is fixture
//! key 1, merchant `i` is `[2, 3, 4, 5][i]` and customer `j` is `[0, 5, 4, 3][j]`, so a
//! network of one merchant and one customer uses the indexes the older tests used (merchant
//! 2, customer 0). At most five parties besides the broker.
//!
//! Nothing here reads a clock: every call takes `now` (unix seconds), and setup runs at
//! [`NOW`].

use std::path::{Path, PathBuf};

use broker::core::Config as BrokerConfig;
use broker::node::BrokerNode;
use customer_cli::{Wallet, WalletError};
use merchant::core::Config as MerchantConfig;
use merchant::core::catalogue::{Catalogue, CatalogueError, Item};
use merchant::node::MerchantNode;
use shared::events::faults::{Faults as Disk, FaultyFile};
use shared::events::{EventLog, LogIdentity};
use shared::node::{TxKind, lapse_tx};
use shared::wire::{Header, Label, WireError};
use shared::{
    AccountId, Amount, IdSource, KeyPair, Mint, Pan, PanSecret, ScripId, Suite, TxId, Uid,
    UnixSecs, fixtures,
};

/// The kit's "now" at setup: 2027-01-15, the fixed time of every older test.
pub const NOW: UnixSecs = UnixSecs::new(1_800_000_000);
/// The broker's fixture key index.
pub const BROKER_KEY: usize = 1;
/// Fixture key indexes of the merchants, in order.
const MERCHANT_KEYS: [usize; 4] = [2, 3, 4, 5];
/// Fixture key indexes of the customers, in order.
const CUSTOMER_KEYS: [usize; 4] = [0, 5, 4, 3];

/// Why a network could not be built or a node reopened. Test support: the caller reports
/// it; nothing here is retried.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The broker's node failed.
    #[error("broker: {0}")]
    Broker(#[from] broker::node::NodeError),
    /// A merchant's node failed.
    #[error("merchant: {0}")]
    Merchant(#[from] merchant::node::NodeError),
    /// A wallet failed or refused.
    #[error("wallet: {0}")]
    Wallet(#[from] WalletError),
    /// A hand-built frame (a merchant's registration) could not be built or read.
    #[error("wire: {0}")]
    Wire(#[from] WireError),
    /// A node's shell could not reach the bus.
    #[error("bus: {0}")]
    Bus(#[from] shared::bus::BusError),
    /// A log on a faulty disk could not be opened.
    #[error("log: {0}")]
    Log(#[source] shared::events::LogError),
    /// A catalogue was refused.
    #[error("catalogue: {0}")]
    Catalogue(#[from] CatalogueError),
    /// The temporary directory could not be made.
    #[error("temporary directory: {0}")]
    Io(#[from] std::io::Error),
    /// More parties than fixture keys, or a node asked for that is not there.
    #[error("network: {0}")]
    Shape(String),
    /// The broker answered a setup request with something other than success.
    #[error("setup refused: {0}")]
    Refused(String),
}

/// What to build: the suite, the merchants (one catalogue each) and the customers (one
/// initial deposit each).
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    /// The suite every party runs.
    pub suite: Suite,
    /// One catalogue per merchant.
    pub catalogues: Vec<Vec<Item>>,
    /// One initial bank deposit per customer (minor units).
    pub deposits: Vec<Amount>,
    /// The broker's configuration (lifetimes and windows).
    pub broker_config: BrokerConfig,
    /// The broker's and merchants' logs on disks the test can fill (see the module doc);
    /// off by default.
    pub faulty_disks: bool,
    /// Every wallet registered (6.0) with every merchant's key (6.0b) at setup; on by
    /// default. Off, a wallet is created with its account linked and nothing more, for a
    /// test of registration itself.
    pub registered: bool,
    /// The ids of the scrip the broker and the merchants issue drawn from sources seeded
    /// from this (`shared::IdSource::seeded`, a fresh stream at every open of a node), so
    /// that a run is repeated exactly from its seed (the simulator); `None`: seeded from the
    /// operating system, as a node that serves.
    pub ids_seed: Option<u64>,
}

impl NetworkSpec {
    /// `merchants` merchants each selling tea at 150 and a book at 1200, and `customers`
    /// customers with `deposit` each, under the broker's default configuration.
    #[must_use]
    pub fn new(suite: Suite, merchants: usize, customers: usize, deposit: Amount) -> NetworkSpec {
        NetworkSpec {
            suite,
            catalogues: (0..merchants).map(|_| default_items()).collect(),
            deposits: vec![deposit; customers],
            broker_config: BrokerConfig::new(suite),
            faulty_disks: false,
            ids_seed: None,
            registered: true,
        }
    }
}

/// The default catalogue: a cheap item and a dear one.
#[must_use]
pub fn default_items() -> Vec<Item> {
    vec![
        Item::new("tea", "Green tea", Amount::from_minor(150)),
        Item::new("book", "A book", Amount::from_minor(1200)),
    ]
}

/// A bank account holder: its fixture key and its account (section 1).
#[derive(Clone, Debug)]
pub struct Party {
    /// The fixture key pair.
    pub keys: &'static KeyPair,
    /// The PAN.
    pub pan: Pan,
    /// The PANSecret (test-only, derived from the PAN).
    pub secret: PanSecret,
}

impl Party {
    /// Fixture key `index` of `suite` with the account `pan` and its PANSecret derived from
    /// it (test-only).
    #[must_use]
    pub fn new(suite: Suite, index: usize, pan: &str) -> Party {
        Party::with_account(
            suite,
            index,
            pan,
            &format!("secret of account {pan} for tests"),
        )
    }

    /// Fixture key `index` of `suite` with the account `pan` and the PANSecret `secret`
    /// (e.g. the account of test-vectors.md).
    #[must_use]
    pub fn with_account(suite: Suite, index: usize, pan: &str, secret: &str) -> Party {
        Party {
            keys: fixtures::keypair(suite, index),
            pan: Pan::new(pan),
            secret: PanSecret::new(secret),
        }
    }

    /// The party's UID.
    #[must_use]
    pub fn uid(&self) -> Uid {
        self.keys.uid()
    }

    /// The account's `ID` (section 1).
    #[must_use]
    pub fn account_id(&self) -> AccountId {
        AccountId::derive(self.keys.suite(), &self.secret, &self.pan)
    }

    /// The header of a frame the party sends: `label` in `tx`.
    #[must_use]
    pub fn header(&self, label: Label, tx: TxId) -> Header {
        Header::new(self.keys.suite(), label, tx, self.uid())
    }
}

/// A merchant of the network: its party, its file, its node (absent while closed).
#[derive(Debug)]
pub struct MerchantSlot {
    /// Who it is.
    pub party: Party,
    /// Its redb file.
    pub path: PathBuf,
    node: Option<MerchantNode>,
    /// The configuration, kept while the node is closed.
    config: Option<MerchantConfig>,
    /// The switch of its disk, with [`NetworkSpec::faulty_disks`].
    disk: Option<Disk>,
    /// Its catalogue, to build its configuration again if closing the node failed.
    items: Vec<Item>,
}

/// A customer of the network: its party, its wallet file, its wallet, what it deposited.
#[derive(Debug)]
pub struct CustomerSlot {
    /// Who it is.
    pub party: Party,
    /// Its wallet file.
    pub path: PathBuf,
    /// Its initial bank deposit.
    pub deposit: Amount,
    wallet: Option<Wallet>,
}

/// The network (see the module doc).
#[derive(Debug)]
pub struct Network {
    /// The suite.
    pub suite: Suite,
    /// The broker's configuration.
    pub broker_config: BrokerConfig,
    /// The broker's redb file.
    pub broker_path: PathBuf,
    broker: Option<BrokerNode>,
    /// The switch of the broker's disk, with [`NetworkSpec::faulty_disks`].
    broker_disk: Option<Disk>,
    /// The merchants, in spec order.
    pub merchants: Vec<MerchantSlot>,
    /// The customers, in spec order.
    pub customers: Vec<CustomerSlot>,
    /// Every file lives here; removed on drop.
    dir: tempfile::TempDir,
    /// [`NetworkSpec::ids_seed`], and how many nodes were opened with it so far.
    ids_seed: Option<(u64, u64)>,
}

impl Network {
    /// Builds the network of `spec` at [`NOW`] (see the module doc).
    ///
    /// # Errors
    /// [`NetworkError`]: a node that did not open, a setup request that was refused.
    pub fn new(spec: &NetworkSpec) -> Result<Network, NetworkError> {
        let suite = spec.suite;
        if spec.catalogues.len() > MERCHANT_KEYS.len()
            || spec.deposits.len() > CUSTOMER_KEYS.len()
            || spec.catalogues.len() + spec.deposits.len() > fixtures::COUNT - 1
        {
            return Err(NetworkError::Shape(format!(
                "{} merchants and {} customers: at most {} parties besides the broker",
                spec.catalogues.len(),
                spec.deposits.len(),
                fixtures::COUNT - 1
            )));
        }
        let dir = tempfile::tempdir()?;
        let broker_path = dir.path().join("broker.redb");
        let broker_disk = spec.faulty_disks.then(Disk::new);
        let mut ids_seed = spec.ids_seed.map(|seed| (seed, 0));
        let mut broker = open_broker_on(&broker_path, spec.broker_config, broker_disk.as_ref())?;
        if let Some(ids) = next_ids(&mut ids_seed) {
            broker = broker.with_ids(ids);
        }

        let mut merchants = Vec::with_capacity(spec.catalogues.len());
        for (i, items) in spec.catalogues.iter().enumerate() {
            let index = MERCHANT_KEYS[i];
            let party = Party::new(suite, index, &format!("GR96MERCHANT{i:04}"));
            broker.open_account(&party.pan, &party.secret, NOW)?;
            register_merchant(&mut broker, &party)?;
            let config = merchant_config(&party, index, items.clone())?;
            merchants.push(MerchantSlot {
                party,
                path: dir.path().join(format!("merchant-{i}.redb")),
                node: None,
                config: Some(config),
                disk: spec.faulty_disks.then(Disk::new),
                items: items.clone(),
            });
        }
        let mut customers = Vec::with_capacity(spec.deposits.len());
        for (j, deposit) in spec.deposits.iter().enumerate() {
            let party = Party::new(suite, CUSTOMER_KEYS[j], &format!("GR16CUSTOMER{j:04}"));
            broker.open_account(&party.pan, &party.secret, NOW)?;
            if !deposit.is_zero() {
                broker.deposit(&party.pan, *deposit, NOW)?;
            }
            customers.push(CustomerSlot {
                party,
                path: dir.path().join(format!("wallet-{j}.redb")),
                deposit: *deposit,
                wallet: None,
            });
        }
        let mut network = Network {
            suite,
            broker_config: spec.broker_config,
            broker_path,
            broker: Some(broker),
            broker_disk,
            merchants,
            customers,
            dir,
            ids_seed,
        };
        for i in 0..network.merchants.len() {
            network.reopen_merchant(i)?;
        }
        for j in 0..network.customers.len() {
            network.create_wallet(j, spec.registered)?;
        }
        Ok(network)
    }

    /// The directory of every file.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The broker's UID.
    #[must_use]
    pub fn broker_uid(&self) -> Uid {
        broker_keys(self.suite).uid()
    }

    /// The switch of the broker's disk (with [`NetworkSpec::faulty_disks`]): while it is
    /// on, every write of the broker's log fails as on a full disk.
    #[must_use]
    pub fn broker_disk(&self) -> Option<&Disk> {
        self.broker_disk.as_ref()
    }

    /// The switch of merchant `i`'s disk, as [`Network::broker_disk`].
    #[must_use]
    pub fn merchant_disk(&self, i: usize) -> Option<&Disk> {
        self.merchants.get(i).and_then(|m| m.disk.as_ref())
    }

    /// The broker.
    ///
    /// # Errors
    /// [`NetworkError::Shape`] while it is closed (a reopen failed).
    pub fn broker(&self) -> Result<&BrokerNode, NetworkError> {
        self.broker.as_ref().ok_or_else(|| closed("the broker"))
    }

    /// The broker, to drive.
    ///
    /// # Errors
    /// As [`Network::broker`].
    pub fn broker_mut(&mut self) -> Result<&mut BrokerNode, NetworkError> {
        self.broker.as_mut().ok_or_else(|| closed("the broker"))
    }

    /// Merchant `i`.
    ///
    /// # Errors
    /// [`NetworkError::Shape`] if there is none or it is closed.
    pub fn merchant(&self, i: usize) -> Result<&MerchantNode, NetworkError> {
        self.merchants
            .get(i)
            .and_then(|m| m.node.as_ref())
            .ok_or_else(|| closed(&format!("merchant {i}")))
    }

    /// Merchant `i`, to drive.
    ///
    /// # Errors
    /// As [`Network::merchant`].
    pub fn merchant_mut(&mut self, i: usize) -> Result<&mut MerchantNode, NetworkError> {
        self.merchants
            .get_mut(i)
            .and_then(|m| m.node.as_mut())
            .ok_or_else(|| closed(&format!("merchant {i}")))
    }

    /// Customer `j`'s wallet.
    ///
    /// # Errors
    /// [`NetworkError::Shape`] if there is none or it is closed.
    pub fn wallet(&self, j: usize) -> Result<&Wallet, NetworkError> {
        self.customers
            .get(j)
            .and_then(|c| c.wallet.as_ref())
            .ok_or_else(|| closed(&format!("wallet {j}")))
    }

    /// Customer `j`'s wallet, to drive.
    ///
    /// # Errors
    /// As [`Network::wallet`].
    pub fn wallet_mut(&mut self, j: usize) -> Result<&mut Wallet, NetworkError> {
        self.customers
            .get_mut(j)
            .and_then(|c| c.wallet.as_mut())
            .ok_or_else(|| closed(&format!("wallet {j}")))
    }

    /// Takes the broker out of the network, to serve it in its shell
    /// (`crate::deployment`); the network finds it closed until [`Network::put_broker`].
    ///
    /// # Errors
    /// [`NetworkError::Shape`] if it is closed already.
    pub fn take_broker(&mut self) -> Result<BrokerNode, NetworkError> {
        self.broker.take().ok_or_else(|| closed("the broker"))
    }

    /// Gives the network back the broker its shell returned.
    pub fn put_broker(&mut self, node: BrokerNode) {
        self.broker = Some(node);
    }

    /// Takes merchant `i` out of the network, as [`Network::take_broker`].
    ///
    /// # Errors
    /// [`NetworkError::Shape`] if there is none or it is closed already.
    pub fn take_merchant(&mut self, i: usize) -> Result<MerchantNode, NetworkError> {
        self.merchants
            .get_mut(i)
            .and_then(|m| m.node.take())
            .ok_or_else(|| closed(&format!("merchant {i}")))
    }

    /// Gives the network back merchant `i`, as [`Network::put_broker`].
    ///
    /// # Errors
    /// [`NetworkError::Shape`] if there is no merchant `i`.
    pub fn put_merchant(&mut self, i: usize, node: MerchantNode) -> Result<(), NetworkError> {
        let slot = self
            .merchants
            .get_mut(i)
            .ok_or_else(|| closed(&format!("merchant {i}")))?;
        slot.node = Some(node);
        Ok(())
    }

    /// Closes the broker's file and opens it again: replay, tables checked against it
    /// (`BrokerNode::open`).
    ///
    /// # Errors
    /// [`NetworkError::Broker`] if it does not reopen (it stays closed).
    pub fn reopen_broker(&mut self) -> Result<(), NetworkError> {
        if let Some(node) = self.broker.take() {
            close_node(node.is_down(), node.close())?;
        }
        let broker = open_broker_on(
            &self.broker_path,
            self.broker_config,
            self.broker_disk.as_ref(),
        )?;
        self.broker = Some(match next_ids(&mut self.ids_seed) {
            Some(ids) => broker.with_ids(ids),
            None => broker,
        });
        Ok(())
    }

    /// Closes merchant `i`'s file (if open) and opens it again, knowing the broker's and
    /// every customer's key.
    ///
    /// # Errors
    /// [`NetworkError::Merchant`] if it does not reopen (it stays closed).
    pub fn reopen_merchant(&mut self, i: usize) -> Result<(), NetworkError> {
        let peers: Vec<_> = std::iter::once(broker_keys(self.suite).public().clone())
            .chain(self.customers.iter().map(|c| c.party.keys.public().clone()))
            .collect();
        let slot = self
            .merchants
            .get_mut(i)
            .ok_or_else(|| closed(&format!("merchant {i}")))?;
        if let Some(node) = slot.node.take() {
            let down = node.is_down();
            slot.config = match node.close() {
                Ok((_, config)) => Some(config),
                // A node down after a storage fault may fail to close (see
                // `close_node`): its configuration is built again.
                Err(e) => {
                    close_node(down, Err::<(), _>(e))?;
                    let index = MERCHANT_KEYS
                        .get(i)
                        .copied()
                        .ok_or_else(|| closed(&format!("merchant {i}'s key")))?;
                    Some(merchant_config(&slot.party, index, slot.items.clone())?)
                }
            };
        }
        let config = slot
            .config
            .take()
            .ok_or_else(|| closed(&format!("merchant {i}'s configuration")))?;
        let keys = slot.party.keys.clone();
        let ids = next_ids(&mut self.ids_seed);
        let node = match &slot.disk {
            None => MerchantNode::open(&slot.path, keys, config, peers)?,
            Some(disk) => MerchantNode::on_log(
                EventLog::open_on_backend(
                    &slot.path,
                    faulty_file(&slot.path, disk),
                    LogIdentity::new(keys.suite(), merchant::node::NODE_KIND),
                )
                .map_err(NetworkError::Log)?,
                keys,
                config,
                peers,
            )?,
        };
        slot.node = Some(match ids {
            Some(ids) => node.with_ids(ids),
            None => node,
        });
        Ok(())
    }

    /// Closes customer `j`'s wallet file and opens it again (`Wallet::open`: replay, tables
    /// checked).
    ///
    /// # Errors
    /// [`NetworkError::Wallet`] if it does not reopen (it stays closed).
    pub fn reopen_wallet(&mut self, j: usize) -> Result<(), NetworkError> {
        let slot = self
            .customers
            .get_mut(j)
            .ok_or_else(|| closed(&format!("wallet {j}")))?;
        // Dropping the wallet closes its log (and releases the file's lock).
        drop(slot.wallet.take());
        slot.wallet = Some(Wallet::open(&slot.path, slot.party.keys.clone())?);
        Ok(())
    }

    /// Customer `j`'s value: its bank balance at the broker plus every scrip its wallet
    /// holds that has not lapsed at its producer (what the e2e tests conserve: it changes
    /// only by what the customer buys). A lapsed scrip's value went back to the bank
    /// account (protocol.md section 4, "Lapse"); the wallet learns it only when it next
    /// presents the scrip, so until then it may still hold it, and it counts zero.
    ///
    /// # Errors
    /// A closed node, or an overflowing sum.
    pub fn customer_value(&self, j: usize) -> Result<Amount, NetworkError> {
        let pan = &self
            .customers
            .get(j)
            .ok_or_else(|| closed(&format!("customer {j}")))?
            .party
            .pan;
        let bank = self.broker()?.state().bank_balance(pan);
        let mut held = Vec::new();
        for s in self.wallet(j)?.state().scrip.values() {
            if !self.lapsed_at_producer(s.scrip.body.producer, s.scrip.id())? {
                held.push(s.scrip.value());
            }
        }
        let scrip = Amount::checked_sum(held)
            .map_err(|e| NetworkError::Shape(format!("customer {j}'s scrip: {e}")))?;
        bank.checked_add(scrip)
            .map_err(|e| NetworkError::Shape(format!("customer {j}'s value: {e}")))
    }

    /// Whether `producer` (the broker or a merchant) recorded the lapse of its scrip `id`:
    /// the lapse's tx (the scrip id, `shared::node::lapse_tx`) is bound as a lapse there.
    ///
    /// # Errors
    /// A closed node, or a producer that is no node of the network.
    pub fn lapsed_at_producer(&self, producer: Uid, id: ScripId) -> Result<bool, NetworkError> {
        let tx = lapse_tx(id);
        let binding = if producer == self.broker_uid() {
            self.broker()?.state().bindings.get(&tx).cloned()
        } else {
            let i = self
                .merchants
                .iter()
                .position(|m| m.party.uid() == producer)
                .ok_or_else(|| NetworkError::Shape(format!("{producer} produces no scrip here")))?;
            self.merchant(i)?.state().tables.bindings.get(&tx).cloned()
        };
        Ok(binding.is_some_and(|b| b.kind == TxKind::Lapse))
    }

    /// Creates customer `j`'s wallet and links its account; if `register`, registers it
    /// (6.0) and fetches every merchant's key (6.0b), each request answered by the broker
    /// at once.
    fn create_wallet(&mut self, j: usize, register: bool) -> Result<(), NetworkError> {
        let merchants: Vec<Uid> = self.merchants.iter().map(|m| m.party.uid()).collect();
        let slot = self
            .customers
            .get_mut(j)
            .ok_or_else(|| closed(&format!("wallet {j}")))?;
        slot.wallet = Some(create_wallet(&slot.path, &slot.party)?);
        if !register {
            return Ok(());
        }
        let out = self.wallet_mut(j)?.register(NOW)?;
        self.answer_at_broker(j, &out.frame)?;
        for m in merchants {
            let out = self.wallet_mut(j)?.request_public_key(m, NOW)?;
            self.answer_at_broker(j, &out.frame)?;
        }
        Ok(())
    }

    /// One request of wallet `j` to the broker at [`NOW`], its reply taken by the wallet.
    fn answer_at_broker(&mut self, j: usize, frame: &[u8]) -> Result<(), NetworkError> {
        let handled = self.broker_mut()?.handle(frame, NOW)?;
        self.wallet_mut(j)?
            .handle_reply(handled.reply_frame(), NOW)?;
        Ok(())
    }
}

/// Opens (or creates) the broker's file at `path` with fixture key [`BROKER_KEY`] and its
/// fixture root key, in `config`'s suite.
///
/// # Errors
/// The id source of the next node opened under [`NetworkSpec::ids_seed`]: each open
/// its own stream, so a node reopened after a crash never draws an id it drew before.
fn next_ids(ids_seed: &mut Option<(u64, u64)>) -> Option<IdSource> {
    let (seed, opens) = ids_seed.as_mut()?;
    *opens += 1;
    Some(IdSource::seeded(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(*opens),
    ))
}

/// As `BrokerNode::open`.
pub fn open_broker(path: &Path, config: BrokerConfig) -> Result<BrokerNode, NetworkError> {
    open_broker_on(path, config, None)
}

/// [`open_broker`], on the faulty disk `disk` if one is given.
fn open_broker_on(
    path: &Path,
    config: BrokerConfig,
    disk: Option<&Disk>,
) -> Result<BrokerNode, NetworkError> {
    let keys = broker_keys(config.suite).clone();
    let root = fixtures::root_key(BROKER_KEY as u64);
    Ok(match disk {
        None => BrokerNode::open(path, keys, root, config)?,
        Some(disk) => BrokerNode::on_log(
            EventLog::open_on_backend(
                path,
                faulty_file(path, disk),
                LogIdentity::new(config.suite, broker::node::NODE_KIND),
            )
            .map_err(NetworkError::Log)?,
            keys,
            root,
            config,
        )?,
    })
}

/// The backend of a log at `path` on a `FaultyFile` with the switch `disk`: every reopen
/// of the log after a fault opens the file again on the same switch.
fn faulty_file(
    path: &Path,
    disk: &Disk,
) -> impl Fn() -> std::io::Result<FaultyFile> + Send + Sync + 'static {
    let (file, switch) = (path.to_owned(), disk.clone());
    move || FaultyFile::open(&file, switch.clone())
}

/// What closing a node before reopening it comes to: a node down after a storage fault
/// (protocol.md section 10) holds a log handle that redb refuses every operation since the
/// failed write, so its close may fail; like a process that crashed, it is done with
/// the file anyway, and the reopen (replay of what was committed) is what counts. Any
/// other close failure is reported.
fn close_node<E: Into<NetworkError>>(
    down: bool,
    closed: Result<impl Sized, E>,
) -> Result<(), NetworkError> {
    match closed {
        Ok(_) => Ok(()),
        Err(_) if down => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The configuration of the merchant `party` (fixture key `index`, whose fixture root key
/// its Mint uses) selling `items`, pinning the fixture broker.
///
/// # Errors
/// A catalogue that is refused.
pub fn merchant_config(
    party: &Party,
    index: usize,
    items: Vec<Item>,
) -> Result<MerchantConfig, NetworkError> {
    let suite = party.keys.suite();
    Ok(MerchantConfig::new(
        Mint::new(suite, party.uid(), fixtures::root_key(index as u64)),
        Catalogue::new(items)?,
        broker_keys(suite).uid(),
        party.pan.clone(),
        party.account_id(),
    ))
}

/// A new wallet file at `path` for `party`, pinning the fixture broker, its account
/// linked (section 1); not registered yet.
///
/// # Errors
/// As `Wallet::create` and `Wallet::link_account`.
pub fn create_wallet(path: &Path, party: &Party) -> Result<Wallet, NetworkError> {
    let suite = party.keys.suite();
    let mut wallet = Wallet::create(path, party.keys.clone(), broker_keys(suite).public(), NOW)?;
    wallet.link_account(party.pan.clone(), &party.secret, NOW)?;
    Ok(wallet)
}

/// The broker's fixture key pair in `suite`.
#[must_use]
pub fn broker_keys(suite: Suite) -> &'static KeyPair {
    fixtures::keypair(suite, BROKER_KEY)
}

fn closed(what: &str) -> NetworkError {
    NetworkError::Shape(format!("{what} is not open"))
}

/// 6.0 for a merchant: its `RegistrationRequest` (`Signed(X0)`, its `IdProof`, its key)
/// sealed to the broker, built by the merchant's core (`merchant::core::register`, as its
/// daemon sends it) and handed to the broker node.
///
/// # Errors
/// A frame that could not be built, or any answer but `RegistrationResponse`.
pub fn register_merchant(broker: &mut BrokerNode, party: &Party) -> Result<(), NetworkError> {
    use merchant::core::register::{Registration, accept_registration, registration};
    let (keys, tx) = (party.keys, TxId::random());
    let broker_key = broker.public_key().clone();
    let request = registration(keys, &broker_key, &party.pan, &party.account_id(), tx)?;
    let handled = broker.handle(&request, NOW)?;
    match accept_registration(handled.reply_frame(), keys, &broker_key, tx) {
        Ok(Registration::Registered) => Ok(()),
        other => Err(NetworkError::Refused(format!(
            "the merchant's registration was answered {other:?}"
        ))),
    }
}
