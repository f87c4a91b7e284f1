//! A seeded, deterministic simulator of a whole network (TigerBeetle's VOPR, in small): the
//! sans-IO nodes of a [`Network`] (the broker's and merchants' `handle` / `handle_reply`,
//! the wallet library) exchange frames through one in-process queue, and a seeded generator
//! decides everything the real world would: which customer starts which transaction, and for
//! each frame whether it is delivered, lost, duplicated or delayed past later frames; between
//! steps it restarts a node (closes and reopens its redb file), moves the clock past the
//! deadlines and runs the broker's timer (`expire`, `to_resend`), and fires the parties'
//! retries.
//!
//! Two faults reach past the wire ([`Faults`]):
//! - **Lapse** (protocol.md section 4, "Lapse"; docs/adr/0011): the clock jumps past every
//!   scrip's expiry and renewal grace, and the timers run: the broker's `expire` lapses
//!   every live BrokerScrip (its value back to the owner's bank account), each merchant's
//!   `MerchantNode::lapse` every live VendorScrip, several of one merchant in one run of
//!   its timer (one per customer holding one), each with its `ScripLapsedNotice` under its
//!   own tx, which the merchant's reporter sends to the broker like its other requests
//!   (lost, duplicated, reordered like them) until the broker's `Ack`. A wallet learns of
//!   a lapse only when it presents the scrip: refused `Lapsed`, it drops it.
//! - **A full disk** (section 10, "Storage faults"): the broker's and merchants' logs sit on
//!   `shared::events::faults::FaultyFile`, and the disk of one of them fills for a random
//!   short span of steps. A commit meanwhile fails: the node writes nothing, answers every
//!   frame of the batch with the unsigned `Error { Unavailable }`, and is down (answering
//!   so without writing) until a call a second later reopens its log and rebuilds its
//!   state. The answer goes back to the requester, which repeats its request later (a
//!   wallet: its saved bodies, `Wallet::resend`; a merchant: its stored frame); it is never
//!   taken as a decision. The clock moves on with the steps, so the node recovers.
//!
//! The parties retry as protocol.md section 7 says, nothing more: a wallet repeats a pending
//! request (`Wallet::resend`, the saved bodies, so the node answers with its stored reply)
//! or asks `TransactionStatus` as `Pending::next_steps` tells it, and gives up a request
//! only once it was refused; a merchant re-sends its unacknowledged reports and its requests
//! awaiting the broker's decision (lapse notices among them); the broker re-sends its open
//! 6.5 authorizations and closes what ran out. A restarted party resumes every tx with no
//! recorded outcome.
//!
//! After every step the ledger invariants hold ([`invariants::conserved`]) on every node
//! that is not down (a down node's in-memory state may hold the failed commit's
//! decisions; it is checked again once it recovered from its log); at the end, once the
//! disks have space, the clock has passed every deadline and the network is quiet, every
//! node is up, every exchange and escrow is closed, every memo `float:vendor:M` equals M's
//! live VendorScrip, every wallet holds exactly what is live for it (or a scrip whose lapse
//! its producer recorded and the broker paid back, counted zero: see
//! [`invariants::settled`]), every customer's value (bank account and live scrip) is its
//! deposit less what it bought, every chain verifies and every node's replay equals its
//! state ([`invariants`]).
//!
//! Nothing reads the wall clock or the OS's randomness for a decision: a run is reproduced
//! by its seed. The ids of the scrip the nodes issue come from sources seeded by it
//! (`NetworkSpec::ids_seed`, `shared::IdSource`); tx ids, nonces and signatures are random,
//! but no decision of the simulator depends on them. A failure is a [`SimError`] naming the seed and the last steps.
//!
//! Files: this one holds the scenario, the run and its phases; `wire.rs` the frames in
//! flight and their delivery; `faults.rs` the faults between steps and the timers;
//! `customers.rs` what the customers start and how their clients retry.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use customer_cli::core::{HistoryKind, SavedRequest};
use merchant::node::ReplyOutcome;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use shared::events::Account;
use shared::wire::Label;
use shared::{Amount, Suite, TxId, Uid};

use crate::invariants::{self, Violation};
use crate::network::{Network, NetworkError, NetworkSpec};

mod customers;
mod faults;
mod wire;

/// The faults a faulty run injects, each in per mille (out of 1000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Faults {
    /// A frame is lost.
    pub drop: u32,
    /// A frame is delivered twice (the copy at a random later time).
    pub duplicate: u32,
    /// The next frame delivered is a random one of the queue, not the oldest.
    pub reorder: u32,
    /// Between two steps, a random node is closed and reopened from its file.
    pub restart: u32,
    /// Between two steps, the clock jumps past the 6.2 / 6.5 windows and the broker's
    /// timer runs.
    pub clock_jump: u32,
    /// Between two steps, a random party's retry timer fires.
    pub retry: u32,
    /// Between two steps, the clock jumps past every scrip's expiry (31 days, within the
    /// renewal grace): purchases and withdrawals are refused until the scrip is renewed
    /// (6.8).
    pub expiry: u32,
    /// Between two steps, the clock jumps past every scrip's renewal grace (section 4,
    /// "Lapse") and the timers run: the broker's `expire` lapses every live BrokerScrip,
    /// each merchant's `lapse` every live VendorScrip (several of one merchant in one
    /// run of its timer: one per customer holding one), and each merchant's
    /// `ScripLapsedNotice` goes to the broker as its other requests do, lost, repeated and
    /// reordered like them. A wallet learns of a lapse only when it presents the scrip
    /// (refused `Lapsed`, it drops it).
    pub lapse: u32,
    /// Between two steps, the disk of the broker or a merchant fills for a random span of
    /// steps (section 10, "Storage faults"): each commit meanwhile fails, the node answers
    /// the unsigned `Error { Unavailable }` and is down until a call a second later
    /// reopens its log; the requester repeats later. (Only with
    /// [`Scenario::faulty_disks`].)
    pub disk_full: u32,
}

impl Faults {
    /// The mix of the CI seeds: enough of each fault that most runs meet every one.
    pub const DEFAULT: Faults = Faults {
        drop: 80,
        duplicate: 80,
        reorder: 250,
        restart: 20,
        clock_jump: 10,
        retry: 60,
        expiry: 2,
        lapse: 10,
        disk_full: 15,
    };
}

/// How frames travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Every frame delivered once, oldest first.
    Once,
    /// Every request and delivery to a node delivered twice: the copy is held back and
    /// delivered at a random later step, out of order with the frames sent meanwhile (a
    /// copy may also come first: the original is then the repeat).
    Twice,
    /// Every frame delivered once, oldest first, and its recipient closed and reopened
    /// from its file right after handling it.
    RestartEach,
    /// Frames lost, duplicated and reordered, nodes restarted, the clock moved: [`Faults`].
    Faulty(Faults),
}

/// One simulated run: its seed, the network and how frames travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Decides everything (see the module doc).
    pub seed: u64,
    /// The suite of every party.
    pub suite: Suite,
    /// How many merchants (each with the default catalogue).
    pub merchants: usize,
    /// How many customers.
    pub customers: usize,
    /// Each customer's initial deposit, minor units.
    pub deposit: u64,
    /// How many transactions each customer starts.
    pub transactions: usize,
    /// How frames travel.
    pub delivery: Delivery,
}

impl Scenario {
    /// Whether the broker's and merchants' logs sit on disks the run can fill: with the
    /// faults of [`Faults::disk_full`].
    #[must_use]
    pub fn faulty_disks(&self) -> bool {
        matches!(self.delivery, Delivery::Faulty(f) if f.disk_full > 0)
    }

    /// The CI scenario of `seed`: two merchants, three customers with 5,000 each, eight
    /// transactions each, in the suite the seed picks (even: paper, odd: modern).
    #[must_use]
    pub fn new(seed: u64, delivery: Delivery) -> Scenario {
        Scenario {
            seed,
            suite: if seed.is_multiple_of(2) {
                Suite::Paper
            } else {
                Suite::Modern
            },
            merchants: 2,
            customers: 3,
            deposit: 5_000,
            transactions: 8,
            delivery,
        }
    }
}

/// Why a run failed: the seed to reproduce it, the step, what broke, and the last steps.
#[derive(Debug, thiserror::Error)]
#[error(
    "simulation seed {seed} ({suite}), step {step}: {what}\n  reproduce: PEERSCRIP_SIM_SEED={seed}\n  last steps:\n    {trace}"
)]
pub struct SimError {
    /// The seed.
    pub seed: u64,
    /// The suite.
    pub suite: Suite,
    /// The step at which it broke.
    pub step: u64,
    /// What broke.
    pub what: String,
    /// The last steps, oldest first, one a line.
    pub trace: String,
}

/// What a run did and how it ended: what [`double_delivery`] and
/// [`restart_after_every_message`] compare, and counters that
/// show the faults were met.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Per customer, the outcomes in its wallet's history, in order (what each tx came
    /// to). Tx ids and signatures are random, so histories are compared by what they say,
    /// not by bytes. Intermediate steps (`HistoryKind::Step`: 6.2's notice answered, 6.5's
    /// and 6.7's `Ack`) are left out: the broker's final delivery may overtake M's `Ack`
    /// (a real network may deliver them in either order), and then the wallet closes the
    /// request on the final message and discards the late `Ack`, as it should.
    pub histories: Vec<Vec<HistoryKind>>,
    /// The broker's accounts at the end.
    pub accounts: BTreeMap<Account, i128>,
    /// The broker's memos at the end.
    pub memos: BTreeMap<Uid, i128>,
    /// Per merchant: issued, paid, withdrawn.
    pub books: Vec<(Amount, Amount, Amount)>,
    /// Per customer: the value of each scrip held, by producer.
    pub scrip: Vec<Vec<(Uid, Amount)>>,
    /// Events in each node's log: broker, then merchants. (A wallet's log also holds
    /// the intermediate steps it took, which a reordering may skip: see `histories`.)
    pub log_lengths: Vec<u64>,
    /// Counters (not compared between runs): frames delivered, lost, duplicated; restarts;
    /// clock jumps; retries fired; repeats checked (Twice); transactions started.
    pub counters: Counters,
}

/// See [`Report::counters`].
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Frames delivered.
    pub delivered: u64,
    /// Frames lost.
    pub dropped: u64,
    /// Frames duplicated.
    pub duplicated: u64,
    /// Nodes restarted.
    pub restarts: u64,
    /// Clock jumps past the deadlines (with the broker's timer).
    pub clock_jumps: u64,
    /// Retries fired (a wallet's resend or status query, a merchant's report or request).
    pub retries: u64,
    /// Repeats whose log was checked against the first handling (Twice).
    pub repeats_checked: u64,
    /// Of those, repeats of a decided request whose reply was compared byte for byte.
    pub replies_compared: u64,
    /// Transactions started, by request label.
    pub started: BTreeMap<String, u64>,
    /// Clock jumps past every renewal grace (with the broker's and merchants' timers).
    pub lapse_jumps: u64,
    /// VendorScrip lapsed at their merchants.
    pub vendor_lapsed: u64,
    /// The most VendorScrip one merchant lapsed in one run of its timer.
    pub most_lapsed_at_once: u64,
    /// Disks filled (a node's commits fail until it is freed).
    pub disks_filled: u64,
    /// Times a node went down after a failed commit.
    pub went_down: u64,
    /// Times a down node recovered (reopened its log and served again).
    pub recovered: u64,
    /// Unsigned `Error { Unavailable }` answers a requester took as "repeat later".
    pub unavailable: u64,
    /// Scrip the wallets still held at the end that had lapsed at their producers.
    pub lapsed_held_at_end: u64,
    /// Frames a wallet declined (stale, repeated, out of turn), by error.
    pub declined: BTreeMap<String, u64>,
}

/// Counters differ between the runs [`double_delivery`] and
/// [`restart_after_every_message`] compare, by design.
impl PartialEq for Counters {
    fn eq(&self, _: &Counters) -> bool {
        true
    }
}

impl Eq for Counters {}

/// Runs `scenario` to the end and checks every invariant (see the module doc).
///
/// # Errors
/// [`SimError`]: the first invariant that broke, with the seed.
pub fn run(scenario: &Scenario) -> Result<Report, SimError> {
    let mut sim = Sim::new(scenario).map_err(|e| SimError {
        seed: scenario.seed,
        suite: scenario.suite,
        step: 0,
        what: format!("setup: {e}"),
        trace: String::new(),
    })?;
    let result = sim.run();
    result.map_err(|what| sim.error(what))
}

/// The double-delivery property (protocol.md section 7): `seed`'s scenario run with every frame
/// delivered once in order, and again with every request and delivery delivered twice, the
/// copies interleaved out of order. In the second run every repeat must get the reply the
/// first copy got, byte for byte, when that first handling decided something (section 7:
/// the stored reply), and must append no event anywhere; and both runs must end the same:
/// outcomes, balances, memos, books, scrip values and the number of events in every node's
/// log. (A repeat of a read or of a refused request is decided again, so its reply is a
/// fresh signature; it is checked for appending nothing.)
///
/// # Errors
/// [`SimError`] from either run, or the difference between them.
pub fn double_delivery(seed: u64) -> Result<(Report, Report), SimError> {
    same_end(seed, Delivery::Twice)
}

/// The restart property (section 7: a node dropped and reopened between any two messages of
/// 6.2, 6.5 and 6.7 ends in a state its log justifies), at its strongest: `seed`'s
/// scenario run with every frame delivered once in order, and again with the recipient of
/// every frame closed and reopened from its file right after handling it; each restarted
/// party resumes its open transactions (section 7). Both runs must end the same (as
/// [`double_delivery`] compares them).
///
/// # Errors
/// [`SimError`] from either run, or the difference between them.
pub fn restart_after_every_message(seed: u64) -> Result<(Report, Report), SimError> {
    same_end(seed, Delivery::RestartEach)
}

/// Runs `scenario` twice: a seed must reproduce its run, faults, counters and end alike
/// (what makes a failing seed worth printing).
///
/// # Errors
/// [`SimError`] from either run, or the difference between them.
pub fn reproduce(scenario: &Scenario) -> Result<Report, SimError> {
    let first = run(scenario)?;
    let second = run(scenario)?;
    let counters = differs(
        "counters",
        &format!("{:?}", first.counters),
        &format!("{:?}", second.counters),
    );
    match difference(&first, &second).or(counters) {
        None => Ok(first),
        Some(what) => Err(SimError {
            seed: scenario.seed,
            suite: scenario.suite,
            step: 0,
            what: format!("the seed did not reproduce its run: {what}"),
            trace: String::new(),
        }),
    }
}

/// Transactions per customer in the runs [`same_end`] compares: fewer than the faulty
/// scenario's, since each seed runs twice and a restart after every message replays the
/// log at every frame; what matters there is every kind of message repeated or
/// restarted around, which five transactions each of three customers already meet.
const PROPERTY_TRANSACTIONS: usize = 5;

/// `seed`'s scenario (with [`PROPERTY_TRANSACTIONS`]) delivered once in order, then as
/// `delivery` says: both must end the same.
fn same_end(seed: u64, delivery: Delivery) -> Result<(Report, Report), SimError> {
    let scenario = |delivery| Scenario {
        transactions: PROPERTY_TRANSACTIONS,
        ..Scenario::new(seed, delivery)
    };
    let once = run(&scenario(Delivery::Once))?;
    let other = run(&scenario(delivery))?;
    match difference(&once, &other) {
        None => Ok((once, other)),
        Some(what) => Err(SimError {
            seed,
            suite: Scenario::new(seed, Delivery::Once).suite,
            step: 0,
            what: format!("{delivery:?}: the run ended otherwise than delivered once: {what}"),
            trace: String::new(),
        }),
    }
}

/// Where two reports differ (counters aside), said field by field; `None` when they agree.
fn difference(a: &Report, b: &Report) -> Option<String> {
    let mut out = Vec::new();
    for (j, (ha, hb)) in a.histories.iter().zip(&b.histories).enumerate() {
        if ha != hb {
            let at = ha
                .iter()
                .zip(hb)
                .position(|(x, y)| x != y)
                .unwrap_or(ha.len().min(hb.len()));
            out.push(format!(
                "customer {j}'s history from entry {at}: {:?} vs {:?}",
                &ha[at.min(ha.len())..],
                &hb[at.min(hb.len())..]
            ));
        }
    }
    if a.histories.len() != b.histories.len() {
        out.push("not as many customers".into());
    }
    out.extend(
        [
            differs("accounts", &a.accounts, &b.accounts),
            differs("memos", &a.memos, &b.memos),
            differs("books", &a.books, &b.books),
            differs("scrip", &a.scrip, &b.scrip),
            differs("events per log", &a.log_lengths, &b.log_lengths),
        ]
        .into_iter()
        .flatten(),
    );
    (!out.is_empty()).then(|| out.join("\n  "))
}

/// `name: a vs b` when they differ.
fn differs<T: PartialEq + std::fmt::Debug>(name: &str, a: &T, b: &T) -> Option<String> {
    (a != b).then(|| format!("{name}: {a:?} vs {b:?}"))
}

/// A node of the network, as an address on the simulated wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Broker,
    Merchant(usize),
    Wallet(usize),
}

/// What a frame in flight is.
#[derive(Clone, Debug)]
enum Kind {
    /// A request; the reply goes back to `from`. `status` is the wallet's
    /// `TransactionStatus` query it is, to check the answer with.
    Request {
        from: Node,
        status: Option<Box<SavedRequest>>,
    },
    /// The reply to a request of the recipient: from `from`, to its request `re` (the
    /// label), `status` as in the request.
    Reply {
        from: Node,
        re: Label,
        status: Option<Box<SavedRequest>>,
    },
    /// A one-way delivery (to a peer subject).
    Delivery,
}

/// A frame in flight. Copies of one frame share its `id`.
#[derive(Clone, Debug)]
struct Envelope {
    id: u64,
    to: Node,
    kind: Kind,
    frame: Vec<u8>,
}

/// When a party's frame goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    /// Now, subject to the faults of the wire.
    Now,
    /// Held back and delivered at a random later step (a repeat after a pause).
    Later,
}

/// How the first copy of a frame was handled (Twice): whether it appended events, and its
/// reply.
#[derive(Clone, Debug)]
struct FirstHandling {
    appended: bool,
    reply: Option<Vec<u8>>,
}

/// A customer's client: its generator, its remaining transactions, the requests it has
/// sent at least once (a restarted client resumes each by its next steps instead).
struct Client {
    rng: StdRng,
    remaining: usize,
    sent: BTreeSet<(TxId, Label)>,
}

/// Steps after which a run that has not ended is stuck.
const MAX_STEPS: u64 = 20_000;
/// Rounds of the quiet phase (retries, then the clock past every deadline) before a
/// network that does not settle is a failure.
const SETTLE_ROUNDS: usize = 12;
/// How far a clock jump moves: past the broker's 6.2 and 6.5 windows (600 s) and the
/// merchant's 6.7 window, far from any scrip's lifetime (30 days).
const JUMP_SECS: u64 = 700;
/// How far an expiry jump moves: past the 30-day lifetime of every scrip, well within the
/// one-year renewal grace (so nothing lapses unless many jumps add up).
const EXPIRY_JUMP_SECS: u64 = 31 * 24 * 3600;
/// The longest span of steps a disk stays full.
const MAX_FULL_STEPS: u64 = 12;
/// Lines of trace kept for a failure report.
const TRACE_LINES: usize = 1000;

struct Sim {
    scenario: Scenario,
    network: Network,
    rng: StdRng,
    clients: Vec<Client>,
    queue: VecDeque<Envelope>,
    /// Copies held back (Twice, and duplicates of Faulty).
    held: Vec<Envelope>,
    first: BTreeMap<u64, FirstHandling>,
    /// The quiet phase: no fault any more.
    quiet: bool,
    /// Each transaction started, numbered in the order it was started.
    tx_order: BTreeMap<TxId, u64>,
    next_id: u64,
    now: shared::UnixSecs,
    step: u64,
    trace: VecDeque<String>,
    counters: Counters,
    merchant_uids: Vec<Uid>,
    wallet_uids: Vec<Uid>,
    /// Nodes whose disk is full, with the step from which it is freed.
    full_disks: BTreeMap<Node, u64>,
    /// Nodes down after a failed commit, as of the last step (for the counters).
    down: BTreeSet<Node>,
}

type Step = Result<(), String>;

fn net(e: NetworkError) -> String {
    e.to_string()
}

fn violated(e: Violation) -> String {
    e.to_string()
}

impl Sim {
    fn new(scenario: &Scenario) -> Result<Sim, NetworkError> {
        let mut spec = NetworkSpec::new(
            scenario.suite,
            scenario.merchants,
            scenario.customers,
            Amount::from_minor(scenario.deposit),
        );
        spec.faulty_disks = scenario.faulty_disks();
        spec.ids_seed = Some(scenario.seed);
        let network = Network::new(&spec)?;
        let clients = (0..scenario.customers)
            .map(|j| Client {
                rng: StdRng::seed_from_u64(
                    scenario
                        .seed
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .wrapping_add(j as u64 + 1),
                ),
                remaining: scenario.transactions,
                sent: BTreeSet::new(),
            })
            .collect();
        let merchant_uids = network.merchants.iter().map(|m| m.party.uid()).collect();
        let wallet_uids = network.customers.iter().map(|c| c.party.uid()).collect();
        Ok(Sim {
            scenario: *scenario,
            network,
            rng: StdRng::seed_from_u64(scenario.seed),
            clients,
            queue: VecDeque::new(),
            held: Vec::new(),
            first: BTreeMap::new(),
            quiet: false,
            tx_order: BTreeMap::new(),
            next_id: 0,
            now: crate::network::NOW.saturating_add_secs(1),
            step: 0,
            trace: VecDeque::new(),
            counters: Counters::default(),
            merchant_uids,
            wallet_uids,
            full_disks: BTreeMap::new(),
            down: BTreeSet::new(),
        })
    }

    fn error(&self, what: String) -> SimError {
        SimError {
            seed: self.scenario.seed,
            suite: self.scenario.suite,
            step: self.step,
            what,
            trace: self
                .trace
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n    "),
        }
    }

    fn note(&mut self, line: String) {
        if self.trace.len() == TRACE_LINES {
            self.trace.pop_front();
        }
        self.trace.push_back(format!(
            "[{} t+{}] {line}",
            self.step,
            self.now.secs_since(crate::network::NOW)
        ));
    }

    /// How frames travel now: as the scenario says, or once and in order in the quiet
    /// phase.
    fn delivery(&self) -> Delivery {
        if self.quiet {
            Delivery::Once
        } else {
            self.scenario.delivery
        }
    }

    fn faults(&self) -> Option<Faults> {
        match self.delivery() {
            Delivery::Faulty(f) => Some(f),
            Delivery::Once | Delivery::Twice | Delivery::RestartEach => None,
        }
    }

    fn per_mille(&mut self, p: u32) -> bool {
        p > 0 && self.rng.random_range(0..1000) < p
    }

    /// The whole run: the active phase, the quiet phase, the final checks.
    fn run(&mut self) -> Result<Report, String> {
        self.active()?;
        self.settle()?;
        invariants::conserved(&self.network).map_err(violated)?;
        invariants::settled(&self.network).map_err(violated)?;
        let paid = self.paid()?;
        for (j, paid) in paid.iter().enumerate() {
            invariants::value_kept(&self.network, j, *paid).map_err(violated)?;
        }
        invariants::replayed(&mut self.network).map_err(violated)?;
        self.counters.lapsed_held_at_end = self.lapsed_held()?;
        self.report()
    }

    /// How many scrip the wallets still hold that lapsed at their producers (never
    /// presented since): what the end's checks count zero (`invariants::settled`).
    fn lapsed_held(&self) -> Result<u64, String> {
        let mut n = 0;
        for j in 0..self.wallet_uids.len() {
            for s in self.network.wallet(j).map_err(net)?.state().scrip.values() {
                if self
                    .network
                    .lapsed_at_producer(s.scrip.body.producer, s.scrip.id())
                    .map_err(net)?
                {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Customers start their transactions while frames travel (and faults strike), until
    /// every customer has started all of its transactions and nothing is in flight.
    fn active(&mut self) -> Step {
        loop {
            let can_act: Vec<usize> = (0..self.clients.len())
                .filter(|j| self.clients[*j].remaining > 0)
                .collect();
            if can_act.is_empty() && self.queue.is_empty() && self.held.is_empty() {
                return Ok(());
            }
            self.step += 1;
            if self.step > MAX_STEPS {
                return Err("the run did not end".into());
            }
            if let Some(faults) = self.faults() {
                self.now = self.now.saturating_add_secs(self.rng.random_range(0..3));
                self.free_disks(false)?;
                self.strike(faults)?;
            }
            let in_flight = !self.queue.is_empty() || !self.held.is_empty();
            if in_flight && (can_act.is_empty() || self.rng.random_range(0..10) < 7) {
                self.deliver_next()?;
            } else if !can_act.is_empty() {
                let j = can_act[self.rng.random_range(0..can_act.len())];
                self.customer_turn(j)?;
            }
            self.count_down()?;
            invariants::conserved(&self.network).map_err(violated)?;
        }
    }

    /// The quiet phase: no new transaction, no fault; every party retries and the clock
    /// passes every deadline until the network settles (or it is a failure).
    fn settle(&mut self) -> Step {
        self.quiet = true;
        if self.scenario.faulty_disks() {
            // Space is back everywhere, and a second passes: the timers (the next call of
            // every down node) reopen the logs (section 10).
            self.free_disks(true)?;
            self.now = self.now.saturating_add_secs(shared::node::RETRY_AFTER_SECS);
            self.timer()?;
            for i in 0..self.merchant_uids.len() {
                self.lapse_timer(i)?;
            }
        }
        for round in 0..SETTLE_ROUNDS {
            self.step += 1;
            self.drain()?;
            if invariants::settled(&self.network).is_ok() {
                return Ok(());
            }
            self.note(format!("quiet round {round}: retries"));
            for i in 0..self.merchant_uids.len() {
                self.lapse_timer(i)?;
                self.retry(Node::Merchant(i))?;
            }
            for j in 0..self.wallet_uids.len() {
                self.wallet_retry(j)?;
            }
            if !round.is_multiple_of(2) {
                self.jump()?;
            } else {
                self.timer()?;
            }
            invariants::conserved(&self.network).map_err(violated)?;
        }
        invariants::settled(&self.network).map_err(|e| format!("the network never settled: {e}"))
    }

    /// What each customer paid for goods (6.3), from its wallet's history.
    fn paid(&self) -> Result<Vec<Amount>, String> {
        (0..self.wallet_uids.len())
            .map(|j| {
                let wallet = self.network.wallet(j).map_err(net)?;
                Amount::checked_sum(wallet.history().filter_map(|h| match h.what {
                    HistoryKind::ItemBought { paid, .. } => Some(paid),
                    _ => None,
                }))
                .map_err(|e| format!("wallet {j}'s purchases: {e}"))
            })
            .collect()
    }

    fn report(&self) -> Result<Report, String> {
        let broker = self.network.broker().map_err(net)?;
        let mut report = Report {
            accounts: broker.state().accounts.clone(),
            memos: broker.state().memos.clone(),
            log_lengths: vec![self.log_len(Node::Broker)?],
            counters: self.counters.clone(),
            ..Report::default()
        };
        for i in 0..self.merchant_uids.len() {
            let books = self.network.merchant(i).map_err(net)?.state().tables.books;
            report
                .books
                .push((books.issued, books.paid, books.withdrawn));
            report.log_lengths.push(self.log_len(Node::Merchant(i))?);
        }
        for j in 0..self.wallet_uids.len() {
            let wallet = self.network.wallet(j).map_err(net)?;
            report.histories.push(
                wallet
                    .history()
                    .filter(|h| !matches!(h.what, HistoryKind::Step { .. }))
                    .map(|h| h.what.clone())
                    .collect(),
            );
            report.scrip.push(
                wallet
                    .state()
                    .scrip
                    .iter()
                    .map(|(p, s)| (*p, s.scrip.value()))
                    .collect(),
            );
        }
        Ok(report)
    }
}

/// What a merchant did with a reply from the broker, for the trace.
fn reply_outcome(outcome: &ReplyOutcome) -> String {
    match outcome {
        ReplyOutcome::Recorded => "recorded an Ack".into(),
        ReplyOutcome::Decided(frames) => format!("acted on a decision, {} frames", frames.len()),
        ReplyOutcome::Discarded(e) => format!("discarded a reply: {e}"),
    }
}

/// The label of a frame, for the trace (`?` if it does not decode).
fn label_of(frame: &[u8]) -> String {
    shared::wire::Frame::decode(frame).map_or_else(|_| "?".into(), |f| f.header.label.to_string())
}
