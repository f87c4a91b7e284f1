//! The deployment fixture: the test kit's [`Network`] (a broker, merchants and customers
//! with their bank accounts, keys and files) run as a deployment runs it. Each node serves
//! in its actor shell (`broker::shell`, `merchant::shell`: node actor, group commit,
//! gateway, timers) on a bus, and each customer's wallet reaches them through its
//! `customer_cli::client::Client`: on the in-process [`MemoryBus`]
//! ([`Deployment::in_memory`]), or on a harness `nats-server` with every party on a
//! connection of its own, its replies under `_INBOX.<uid>` ([`Deployment::on_nats`]).
//!
//! A node is lent to its shell while it serves ([`Deployment::serve_broker`],
//! [`Deployment::serve_merchant`]) and handed back to the network when the shell stops
//! ([`Deployment::stop_broker`], [`Deployment::stop_merchant`], [`Deployment::stop`]):
//! while it serves, the network finds it closed; once it is back, every check of the
//! network ([`crate::invariants`]) reads it, and [`Network::reopen_broker`] and its kin
//! restart it from its file, so a test can stop a node, restart it and serve it again
//! under another clock.
//!
//! The shells read their clock from a function (`shared::runtime::Clock`); a test that
//! moves time past a deadline gives one that reads a value it changes.

use std::future::Future;
use std::time::Duration;

use customer_cli::client::Client;
use shared::Uid;
use shared::bus::{Bus, BusError, InboxPrefix, MemoryBus, NatsBus, NatsOptions, Subjects};
use shared::runtime::Clock;

use crate::NatsServer;
use crate::network::{Network, NetworkError, NetworkSpec};

/// How long a client or a merchant's reporter waits for one reply: generous, since a lost
/// reply is retried and no test waits for a timeout to pass.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// How many times a client sends a request nobody answers before it gives up.
pub const ATTEMPTS: u32 = 3;

/// How the parties of a deployment reach one another.
pub trait Transport {
    /// The bus a party joins.
    type Bus: Bus;

    /// The bus as the party `uid` joins it; `name` names the connection (a server's
    /// monitoring shows it).
    fn join(&self, uid: &Uid, name: &str) -> impl Future<Output = Result<Self::Bus, BusError>>;
}

/// The in-process bus: one for every party.
#[derive(Clone, Debug, Default)]
pub struct InMemory(pub MemoryBus);

impl Transport for InMemory {
    type Bus = MemoryBus;

    async fn join(&self, _: &Uid, _: &str) -> Result<MemoryBus, BusError> {
        Ok(self.0.clone())
    }
}

/// A `nats-server`: every party connects on its own, its replies under `_INBOX.<uid>`
/// (architecture.md "The bus"), as a deployment's permissions require.
#[derive(Clone, Debug)]
pub struct OnNats {
    /// The server's URL.
    pub url: String,
}

impl Transport for OnNats {
    type Bus = NatsBus;

    async fn join(&self, uid: &Uid, name: &str) -> Result<NatsBus, BusError> {
        let options = NatsOptions {
            inbox_prefix: Some(InboxPrefix::for_uid(uid)),
            name: Some(name.to_owned()),
            ..NatsOptions::default()
        };
        NatsBus::connect(&self.url, options).await
    }
}

/// A merchant's running shell and the bus it serves on.
struct Serving<B> {
    shell: merchant::shell::Running,
    bus: B,
}

/// The network, its nodes serving on a transport (see the module doc).
pub struct Deployment<T: Transport> {
    /// The nodes, wallets and files; a serving node is lent to its shell.
    pub net: Network,
    /// How the parties reach one another.
    pub transport: T,
    /// The subjects every party uses.
    pub subjects: Subjects,
    broker: Option<(broker::shell::Running, T::Bus)>,
    merchants: Vec<Option<Serving<T::Bus>>>,
}

impl Deployment<InMemory> {
    /// The network of `spec` on a fresh [`MemoryBus`], no node serving yet.
    ///
    /// # Errors
    /// As [`Network::new`].
    pub fn in_memory(spec: &NetworkSpec) -> Result<Self, NetworkError> {
        Self::new(spec, InMemory::default())
    }
}

impl Deployment<OnNats> {
    /// The network of `spec` with `server` for its bus, no node serving yet.
    ///
    /// # Errors
    /// As [`Network::new`].
    pub fn on_nats(spec: &NetworkSpec, server: &NatsServer) -> Result<Self, NetworkError> {
        Self::new(spec, OnNats { url: server.url() })
    }
}

impl<T: Transport> Deployment<T> {
    /// The network of `spec` on `transport`, no node serving yet.
    ///
    /// # Errors
    /// As [`Network::new`].
    pub fn new(spec: &NetworkSpec, transport: T) -> Result<Self, NetworkError> {
        let net = Network::new(spec)?;
        let merchants = net.merchants.iter().map(|_| None).collect();
        Ok(Deployment {
            net,
            transport,
            subjects: Subjects::default(),
            broker: None,
            merchants,
        })
    }

    /// Serves the broker in its shell, its timer reading `clock`.
    ///
    /// # Errors
    /// A broker serving already or closed, or a bus that cannot be joined.
    pub async fn serve_broker(&mut self, clock: Clock) -> Result<(), NetworkError> {
        if self.broker.is_some() {
            return Err(NetworkError::Shape("the broker serves already".into()));
        }
        let bus = self
            .transport
            .join(&self.net.broker_uid(), "broker")
            .await?;
        let node = self.net.take_broker()?;
        let shell = broker::shell::serve(node, bus.clone(), self.subjects.clone(), clock).await?;
        self.broker = Some((shell, bus));
        Ok(())
    }

    /// The broker's running shell.
    ///
    /// # Errors
    /// [`NetworkError::Shape`] if it does not serve.
    pub fn broker_shell(&self) -> Result<&broker::shell::Running, NetworkError> {
        self.broker
            .as_ref()
            .map(|(shell, _)| shell)
            .ok_or_else(|| not_serving("the broker"))
    }

    /// One tick of the broker's timer now (`broker::shell::tick`): what expired is closed
    /// and its deliveries published, and the open 6.5 authorizations are sent again.
    ///
    /// # Errors
    /// [`NetworkError::Shape`] if it does not serve, or its actor is gone.
    pub async fn tick_broker(&self) -> Result<(), NetworkError> {
        let (shell, bus) = self
            .broker
            .as_ref()
            .ok_or_else(|| not_serving("the broker"))?;
        if broker::shell::tick(&shell.addr, bus, &self.subjects).await {
            Ok(())
        } else {
            Err(NetworkError::Shape("the broker's actor is gone".into()))
        }
    }

    /// Stops the broker's shell (the requests it took are answered) and gives the node
    /// back to the network.
    ///
    /// # Errors
    /// [`NetworkError::Shape`] if it does not serve, or its actor is gone.
    pub async fn stop_broker(&mut self) -> Result<(), NetworkError> {
        let (shell, _) = self
            .broker
            .take()
            .ok_or_else(|| not_serving("the broker"))?;
        let node = shell
            .stop()
            .await
            .ok_or_else(|| NetworkError::Shape("the broker's actor is gone".into()))?;
        self.net.put_broker(node);
        Ok(())
    }

    /// Serves merchant `i` in its shell, its timers reading `clock`.
    ///
    /// # Errors
    /// A merchant serving already, absent or closed, or a bus that cannot be joined.
    pub async fn serve_merchant(&mut self, i: usize, clock: Clock) -> Result<(), NetworkError> {
        if self.merchants.get(i).is_some_and(Option::is_some) {
            return Err(NetworkError::Shape(format!("merchant {i} serves already")));
        }
        let uid = self.net.merchant(i)?.config().me();
        let bus = self.transport.join(&uid, &format!("merchant-{i}")).await?;
        let node = self.net.take_merchant(i)?;
        let shell =
            merchant::shell::serve(node, bus.clone(), self.subjects.clone(), clock, TIMEOUT)
                .await?;
        self.merchants[i] = Some(Serving { shell, bus });
        Ok(())
    }

    /// Merchant `i`'s running shell.
    ///
    /// # Errors
    /// [`NetworkError::Shape`] if it does not serve.
    pub fn merchant_shell(&self, i: usize) -> Result<&merchant::shell::Running, NetworkError> {
        self.serving(i).map(|s| &s.shell)
    }

    /// One round of merchant `i`'s reporter now (`merchant::shell::send_reports`): when it
    /// returns, every report and request it owed the broker that the broker answered is
    /// recorded. Returns how many this round recorded.
    ///
    /// # Errors
    /// [`NetworkError::Shape`] if it does not serve, or its actor is gone.
    pub async fn send_reports(&self, i: usize) -> Result<usize, NetworkError> {
        let serving = self.serving(i)?;
        merchant::shell::send_reports(&serving.shell.addr, &serving.bus, &self.subjects, TIMEOUT)
            .await
            .map_err(|e| NetworkError::Shape(format!("merchant {i}: {e}")))
    }

    /// Stops merchant `i`'s shell and gives the node back to the network.
    ///
    /// # Errors
    /// [`NetworkError::Shape`] if it does not serve, or its actor is gone.
    pub async fn stop_merchant(&mut self, i: usize) -> Result<(), NetworkError> {
        let serving = self
            .merchants
            .get_mut(i)
            .and_then(Option::take)
            .ok_or_else(|| not_serving(&format!("merchant {i}")))?;
        let node = serving
            .shell
            .stop()
            .await
            .ok_or_else(|| NetworkError::Shape(format!("merchant {i}'s actor is gone")))?;
        self.net.put_merchant(i, node)
    }

    /// Stops every serving node, the merchants first (so a report in flight reaches the
    /// broker), and gives each back to the network.
    ///
    /// # Errors
    /// As [`Deployment::stop_merchant`] and [`Deployment::stop_broker`].
    pub async fn stop(&mut self) -> Result<(), NetworkError> {
        for i in 0..self.merchants.len() {
            if self.merchants[i].is_some() {
                self.stop_merchant(i).await?;
            }
        }
        if self.broker.is_some() {
            self.stop_broker().await?;
        }
        Ok(())
    }

    /// Customer `j`'s own connection to the bus, for frames built by hand.
    ///
    /// # Errors
    /// No customer `j`, or a bus that cannot be joined.
    pub async fn customer_bus(&self, j: usize) -> Result<T::Bus, NetworkError> {
        let uid = self.customer_uid(j)?;
        Ok(self.transport.join(&uid, &format!("customer-{j}")).await?)
    }

    /// Customer `j`'s wallet client on its own connection: [`TIMEOUT`] for each reply,
    /// [`ATTEMPTS`] sends of a request nobody answers.
    ///
    /// # Errors
    /// As [`Deployment::customer_bus`].
    pub async fn client(&self, j: usize) -> Result<Client<T::Bus>, NetworkError> {
        let bus = self.customer_bus(j).await?;
        Ok(Client::new(
            bus,
            self.subjects.clone(),
            self.net.broker_uid(),
            TIMEOUT,
            ATTEMPTS,
        ))
    }

    fn customer_uid(&self, j: usize) -> Result<Uid, NetworkError> {
        self.net
            .customers
            .get(j)
            .map(|c| c.party.uid())
            .ok_or_else(|| NetworkError::Shape(format!("no customer {j}")))
    }

    fn serving(&self, i: usize) -> Result<&Serving<T::Bus>, NetworkError> {
        self.merchants
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| not_serving(&format!("merchant {i}")))
    }
}

fn not_serving(what: &str) -> NetworkError {
    NetworkError::Shape(format!("{what} does not serve"))
}
