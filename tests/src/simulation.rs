//! A seeded, deterministic simulator of a whole network (TigerBeetle's VOPR, in small): the
//! sans-IO nodes of a [`Network`] (the broker's and merchants' `handle` / `handle_reply`,
//! the wallet library) exchange frames through one in-process queue, and a seeded generator
//! decides everything the real world would: which customer starts which transaction, and for
//! each frame whether it is delivered, lost, duplicated or delayed past later frames; between
//! steps it restarts a node (closes and reopens its redb file), moves the clock past the
//! deadlines and runs the broker's timer (`expire`, `to_resend`), and fires the parties'
//! retries.
//!
//! The parties retry as protocol.md section 7 says, nothing more: a wallet repeats a pending
//! request (`Wallet::resend`, the saved bodies, so the node answers with its stored reply)
//! or asks `TransactionStatus` as `Pending::next_steps` tells it, and gives up a request
//! only once it was refused; a merchant re-sends its unacknowledged reports and its requests
//! awaiting the broker's decision; the broker re-sends its open 6.5 authorizations and
//! closes what ran out. A restarted party resumes every tx with no recorded outcome.
//!
//! After every step the ledger invariants hold ([`invariants::conserved`]); at the end, once
//! the clock has passed every deadline and the network is quiet, every exchange and escrow
//! is closed, every memo `float:vendor:M` equals M's live VendorScrip, every wallet holds
//! exactly what is live for it, every customer's value is its deposit less what it bought,
//! every chain verifies and every node's replay equals its state ([`invariants`]).
//!
//! Nothing reads the wall clock or the OS's randomness for a decision: a run is reproduced
//! by its seed (tx ids, nonces and signatures are random, but no decision of the simulator
//! depends on them). A failure is a [`SimError`] naming the seed and the last steps.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use customer_cli::WalletError;
use customer_cli::core::{HistoryKind, NextStep, PendingStatus, SavedRequest};
use merchant::node::ReplyOutcome;
use shared::node::Unavailable;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use shared::events::Account;
use shared::wire::Label;
use shared::wire::bodies::{OrderId, OrderInfo};
use shared::{Amount, Suite, TxId, Uid};

use crate::invariants::{self, Violation};
use crate::network::{Network, NetworkError, NetworkSpec};

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

/// The double-delivery property (issue 4): `seed`'s scenario run with every frame
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

/// The restart property (issue 4: "a node dropped and reopened between any two messages of
/// 6.2, 6.5 and 6.7 ends in a state its log justifies"), at its strongest: `seed`'s
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
    now: u64,
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
            now: crate::network::NOW + 1,
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
            self.now - crate::network::NOW
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
        self.report()
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
                self.now += self.rng.random_range(0..3);
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

    /// Between two steps: a restart, a clock jump with the broker's timer, a retry.
    fn strike(&mut self, faults: Faults) -> Step {
        if self.per_mille(faults.restart) {
            let nodes = 1 + self.merchant_uids.len() + self.wallet_uids.len();
            let pick = self.rng.random_range(0..nodes);
            let node = self.node_by_index(pick);
            // A process restarted on a full disk cannot open its file (opening writes);
            // its supervisor starts it again once there is space: no restart meanwhile.
            if self.full_disks.contains_key(&node) {
                self.note(format!("no restart of {node:?} on a full disk"));
            } else {
                self.restart(node)?;
            }
        }
        if self.per_mille(faults.disk_full) {
            // The broker or a merchant (the wallets' disks are not faulty here).
            let pick = self.rng.random_range(0..=self.merchant_uids.len());
            let span = self.rng.random_range(1..=MAX_FULL_STEPS);
            self.fill_disk(self.node_by_index(pick), span)?;
        }
        if self.per_mille(faults.lapse) {
            self.lapse_jump()?;
        }
        if self.per_mille(faults.clock_jump) {
            self.jump()?;
        }
        if self.per_mille(faults.expiry) {
            self.counters.clock_jumps += 1;
            self.now += EXPIRY_JUMP_SECS;
            self.note(format!(
                "clock +{EXPIRY_JUMP_SECS} s past every expiry, broker timer"
            ));
            self.timer()?;
        }
        if self.per_mille(faults.retry) {
            let nodes = 1 + self.merchant_uids.len() + self.wallet_uids.len();
            let pick = self.rng.random_range(0..nodes);
            self.retry(self.node_by_index(pick))?;
        }
        Ok(())
    }

    fn node_by_index(&self, pick: usize) -> Node {
        let m = self.merchant_uids.len();
        match pick {
            0 => Node::Broker,
            p if p <= m => Node::Merchant(p - 1),
            p => Node::Wallet(p - 1 - m),
        }
    }

    /// Closes `node`'s file and opens it again; with faults, its client (or shell) then
    /// resumes every tx with no recorded outcome (section 7). Without faults nothing was
    /// lost, so the restarted party just carries on from its file (a resumption after
    /// every message would only feed more restarts).
    fn restart(&mut self, node: Node) -> Step {
        let resume = self.faults().is_some();
        self.counters.restarts += 1;
        self.note(format!("restart {node:?}"));
        match node {
            Node::Broker => self.network.reopen_broker().map_err(net),
            Node::Merchant(i) => {
                self.network.reopen_merchant(i).map_err(net)?;
                if resume { self.retry(node) } else { Ok(()) }
            }
            Node::Wallet(j) => {
                self.network.reopen_wallet(j).map_err(net)?;
                // The restarted client resumes every pending request by its next steps
                // (a resend, or a status query where the request cannot be rendered again).
                let pending: BTreeSet<(TxId, Label)> = self
                    .network
                    .wallet(j)
                    .map_err(net)?
                    .pending()
                    .map(|p| (p.request.tx(), p.request.label()))
                    .collect();
                self.clients[j].sent = pending;
                if resume { self.wallet_retry(j) } else { Ok(()) }
            }
        }
    }

    /// `node`'s disk is full from now for `span` steps (section 10, "Storage faults").
    fn fill_disk(&mut self, node: Node, span: u64) -> Step {
        if self.full_disks.contains_key(&node) {
            return Ok(());
        }
        self.disk(node)?.fill_disk();
        self.counters.disks_filled += 1;
        self.full_disks.insert(node, self.step + span);
        self.note(format!("{node:?}'s disk is full for {span} steps"));
        Ok(())
    }

    /// Frees every disk whose span ended (`all`: every disk, the quiet phase).
    fn free_disks(&mut self, all: bool) -> Step {
        let step = self.step;
        let freed: Vec<Node> = self
            .full_disks
            .iter()
            .filter(|(_, until)| all || **until <= step)
            .map(|(node, _)| *node)
            .collect();
        for node in freed {
            self.full_disks.remove(&node);
            self.disk(node)?.free_space();
            self.note(format!("{node:?}'s disk has space again"));
        }
        Ok(())
    }

    /// The switch of `node`'s disk.
    fn disk(&self, node: Node) -> Result<shared::events::faults::Faults, String> {
        match node {
            Node::Broker => self.network.broker_disk(),
            Node::Merchant(i) => self.network.merchant_disk(i),
            Node::Wallet(_) => None,
        }
        .cloned()
        .ok_or_else(|| format!("{node:?} is on no faulty disk"))
    }

    /// Counts the nodes that went down after a failed commit and those that recovered
    /// since the last step.
    fn count_down(&mut self) -> Step {
        let mut down = BTreeSet::new();
        if self.network.broker().map_err(net)?.is_down() {
            down.insert(Node::Broker);
        }
        for i in 0..self.merchant_uids.len() {
            if self.network.merchant(i).map_err(net)?.is_down() {
                down.insert(Node::Merchant(i));
            }
        }
        self.counters.went_down += down.difference(&self.down).count() as u64;
        self.counters.recovered += self.down.difference(&down).count() as u64;
        self.down = down;
        Ok(())
    }

    /// The clock moves past every scrip's renewal grace (section 4, "Lapse"), and the
    /// timers run: the broker's (its `expire` lapses every live BrokerScrip), then each
    /// merchant's lapse timer, whose notices its reporter then sends.
    fn lapse_jump(&mut self) -> Step {
        self.counters.lapse_jumps += 1;
        let jump = self.lapse_jump_secs()?;
        self.now += jump;
        self.note(format!("clock +{jump} s past every renewal grace, timers"));
        self.timer()?;
        for i in 0..self.merchant_uids.len() {
            self.lapse_timer(i)?;
        }
        Ok(())
    }

    /// Past the expiry and the renewal grace of any scrip issued until now, at the broker
    /// (`Config::grace_secs`) or a merchant (`merchant::core::Config::renewal_grace_secs`,
    /// `DEFAULT_RENEWAL_GRACE_SECS` in the network kit), and a day more.
    fn lapse_jump_secs(&self) -> Result<u64, String> {
        let broker = self.network.broker_config;
        let mut longest = broker.scrip_lifetime_secs + broker.grace_secs;
        for i in 0..self.merchant_uids.len() {
            let config = self.network.merchant(i).map_err(net)?.config();
            longest = longest.max(config.scrip_lifetime_secs + config.renewal_grace_secs);
        }
        Ok(longest + 24 * 3600)
    }

    /// Merchant `i`'s lapse timer (`merchant::shell`): `lapse`, then its reporter sends
    /// every request awaiting the broker, the new notices among them. Down after a failed
    /// commit, the call is its chance to recover (section 10).
    fn lapse_timer(&mut self, i: usize) -> Step {
        let now = self.now;
        match self.network.merchant_mut(i).map_err(net)?.lapse(now) {
            Ok(0) => Ok(()),
            Ok(n) => {
                let n = n as u64;
                self.note(format!("merchant {i} lapses {n} VendorScrip"));
                self.counters.vendor_lapsed += n;
                self.counters.most_lapsed_at_once = self.counters.most_lapsed_at_once.max(n);
                self.retry(Node::Merchant(i))
            }
            Err(merchant::node::NodeError::Unavailable(down)) => {
                self.note(format!("merchant {i}'s lapse timer: {}", down.reason));
                Ok(())
            }
            Err(e) => Err(format!("merchant {i}'s lapse: {e}")),
        }
    }

    /// The clock moves past every open window; the broker's timer runs.
    fn jump(&mut self) -> Step {
        self.counters.clock_jumps += 1;
        self.now += JUMP_SECS;
        self.note(format!("clock +{JUMP_SECS} s, broker timer"));
        self.timer()
    }

    /// The broker's timer (broker::shell): `expire`, then every delivery it sealed and
    /// every 6.5 authorization to re-send.
    fn timer(&mut self) -> Step {
        let now = self.now;
        let broker = self.network.broker_mut().map_err(net)?;
        let expired = match broker.expire(now) {
            Ok(expired) => expired,
            // Down (or its commit failed): the timer runs again later (section 10).
            Err(broker::node::NodeError::Unavailable(down)) => {
                self.note(format!("the broker's timer: {}", down.reason));
                return Ok(());
            }
            Err(e) => return Err(format!("expire: {e}")),
        };
        let resend = broker.to_resend(now);
        if expired.events > 0 {
            self.note(format!("expire: {} events", expired.events));
        }
        let mut out: Vec<_> = expired.deliveries.into_iter().chain(resend).collect();
        out.sort_by_key(|d| self.order_of_frame(&d.frame));
        for d in out {
            let to = self.node_of(d.to)?;
            self.send(to, Kind::Delivery, d.frame);
        }
        Ok(())
    }

    /// Where `tx` stands in the order the customers started their transactions: tx ids
    /// are random, so every list a node returns in tx order is put in this order before
    /// the generator decides anything about its frames (a seed reproduces its run).
    fn order_of(&self, tx: TxId) -> (u64, TxId) {
        (self.tx_order.get(&tx).copied().unwrap_or(u64::MAX), tx)
    }

    /// [`Sim::order_of`] of a frame's tx.
    fn order_of_frame(&self, frame: &[u8]) -> (u64, TxId) {
        let tx = shared::wire::Frame::decode(frame).map_or(TxId([0; 16]), |f| f.header.tx);
        self.order_of(tx)
    }

    /// `node`'s retry timer fires (section 7).
    fn retry(&mut self, node: Node) -> Step {
        match node {
            Node::Broker => self.timer(),
            Node::Merchant(i) => {
                let merchant = self.network.merchant(i).map_err(net)?;
                let mut owed = merchant.pending_reports();
                owed.extend(merchant.pending_broker_requests());
                owed.sort_by_key(|out| self.order_of_frame(&out.frame));
                for out in owed {
                    self.counters.retries += 1;
                    self.note(format!("merchant {i} re-sends {}", label_of(&out.frame)));
                    self.send(
                        Node::Broker,
                        Kind::Request {
                            from: node,
                            status: None,
                        },
                        out.frame,
                    );
                }
                Ok(())
            }
            Node::Wallet(j) => self.wallet_retry(j),
        }
    }

    /// Wallet `j`'s retry: every pending request's next steps (`Pending::next_steps`).
    fn wallet_retry(&mut self, j: usize) -> Step {
        let broker = self.network.broker_uid();
        let mut pending: Vec<(TxId, Label, Vec<NextStep>)> = self
            .network
            .wallet(j)
            .map_err(net)?
            .pending()
            .map(|p| (p.request.tx(), p.request.label(), p.next_steps(broker)))
            .collect();
        pending.sort_by_key(|(tx, label, _)| (self.order_of(*tx), *label));
        for (tx, label, steps) in pending {
            for step in steps {
                match step {
                    NextStep::Resend => {
                        if !self.may_send(j, tx, label)? {
                            continue;
                        }
                        let wallet = self.network.wallet(j).map_err(net)?;
                        match wallet.resend(tx, label) {
                            Ok(out) => {
                                self.counters.retries += 1;
                                self.note(format!("wallet {j} resends {label} of {tx}"));
                                let to = self.node_of(out.to)?;
                                self.clients[j].sent.insert((tx, label));
                                self.request(Node::Wallet(j), to, out.frame);
                            }
                            Err(e) => self.declined(j, &e)?,
                        }
                    }
                    NextStep::AskStatus(node) => {
                        let wallet = self.network.wallet(j).map_err(net)?;
                        match wallet.transaction_status(tx, node) {
                            Ok((query, out)) => {
                                self.counters.retries += 1;
                                self.note(format!("wallet {j} asks {node} about {tx}"));
                                let to = self.node_of(node)?;
                                self.send(
                                    to,
                                    Kind::Request {
                                        from: Node::Wallet(j),
                                        status: Some(Box::new(query)),
                                    },
                                    out.frame,
                                );
                            }
                            Err(e) => self.declined(j, &e)?,
                        }
                    }
                    NextStep::Decide => self.abandon(j, tx, label)?,
                }
            }
        }
        Ok(())
    }

    /// 6.3's second request goes to the merchant only once the broker acknowledged the
    /// first (`Wallet::buy_item`); every other request may go at once.
    fn may_send(&self, j: usize, tx: TxId, label: Label) -> Result<bool, String> {
        if label != Label::PurchaseRequest {
            return Ok(true);
        }
        let wallet = self.network.wallet(j).map_err(net)?;
        Ok(!wallet
            .pending()
            .any(|p| p.request.tx() == tx && p.request.label() == Label::PurchaseInitiated))
    }

    /// Wallet `j` after any change: every pending request not yet sent goes out (6.2 step
    /// 2 once the notice is answered, 6.3's purchase once its announcement is); a refused
    /// one is given up.
    fn kick(&mut self, j: usize) -> Step {
        let mut pending: Vec<(TxId, Label, bool)> = self
            .network
            .wallet(j)
            .map_err(net)?
            .pending()
            .map(|p| {
                (
                    p.request.tx(),
                    p.request.label(),
                    p.status == PendingStatus::Sent,
                )
            })
            .collect();
        pending.sort_by_key(|(tx, label, _)| (self.order_of(*tx), *label));
        for (tx, label, sent_status) in pending {
            if !sent_status {
                self.abandon(j, tx, label)?;
                continue;
            }
            if self.clients[j].sent.contains(&(tx, label)) || !self.may_send(j, tx, label)? {
                continue;
            }
            let wallet = self.network.wallet(j).map_err(net)?;
            match wallet.resend(tx, label) {
                Ok(out) => {
                    self.clients[j].sent.insert((tx, label));
                    self.note(format!("wallet {j} sends {label} of {tx}"));
                    let to = self.node_of(out.to)?;
                    self.request(Node::Wallet(j), to, out.frame);
                }
                // Not renderable any more (its scrip is settled): its outcome comes by
                // TransactionStatus, on the next retry.
                Err(e) => self.declined(j, &e)?,
            }
        }
        Ok(())
    }

    fn abandon(&mut self, j: usize, tx: TxId, label: Label) -> Step {
        let now = self.now;
        self.note(format!("wallet {j} gives up refused {label} of {tx}"));
        match self
            .network
            .wallet_mut(j)
            .map_err(net)?
            .abandon(tx, label, now)
        {
            Ok(()) => Ok(()),
            Err(e) => self.declined(j, &e),
        }
    }

    /// A wallet's refusal of a frame or a call. What a correct network makes a wallet
    /// refuse (a repeat, a late or out-of-turn frame, a refused request, a call its state
    /// does not allow yet) is counted; anything else (a reply that fails a check, a broken
    /// file) means a node or the wallet misbehaved, and fails the run.
    fn declined(&mut self, j: usize, e: &WalletError) -> Step {
        match e {
            WalletError::AlreadyReceived { .. }
            | WalletError::NoPendingRequest { .. }
            | WalletError::NotPending { .. }
            | WalletError::UnexpectedLabel { .. }
            | WalletError::AwaitingDecision { .. }
            | WalletError::Refused { .. }
            | WalletError::AlreadyPending { .. }
            | WalletError::ScripBusy { .. }
            | WalletError::VendorScripLive { .. }
            | WalletError::BrokerScripLive { .. }
            | WalletError::NoScrip { .. }
            | WalletError::InsufficientScrip { .. }
            | WalletError::TopUpNotLarger { .. }
            | WalletError::NotRefused { .. } => {
                let name = format!("{e:?}");
                let name = name
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                *self.counters.declined.entry(name).or_default() += 1;
                self.note(format!("wallet {j} declines: {e}"));
                Ok(())
            }
            other => Err(format!("wallet {j} failed: {other}")),
        }
    }

    /// Whether wallet `j` has a request pending.
    fn waiting(&self, j: usize) -> Result<bool, String> {
        Ok(self
            .network
            .wallet(j)
            .map_err(net)?
            .pending()
            .next()
            .is_some())
    }

    /// Customer `j`'s turn: with nothing pending, it starts its next transaction; with
    /// something pending, it waits (its retry timer is a fault of its own).
    fn customer_turn(&mut self, j: usize) -> Step {
        if self.waiting(j)? {
            // Without faults nothing is lost: the answer is on its way, and the customer
            // waits for it (so its choices stay those of the run delivered once). With
            // faults, its patience runs out now and then (its client's timeout), and now
            // and then it starts another transaction meanwhile (the wallet refuses one
            // that would present a scrip a pending request holds).
            if self.faults().is_some() {
                match self.rng.random_range(0..4) {
                    0 => return self.wallet_retry(j),
                    1 => {}
                    _ => return Ok(()),
                }
            } else {
                return Ok(());
            }
        }
        self.clients[j].remaining -= 1;
        self.start(j)
    }

    /// Customer `j` starts a transaction its wallet allows, drawn by its own generator
    /// (so its choices do not depend on how frames travel).
    fn start(&mut self, j: usize) -> Step {
        let broker = self.network.broker_uid();
        let merchants = self.merchant_uids.clone();
        let now = self.now;
        let wallet = self.network.wallet(j).map_err(net)?;
        let broker_scrip = wallet.broker_scrip().map(|s| s.scrip.value().minor());
        let vendor: Vec<Option<u64>> = merchants
            .iter()
            .map(|m| wallet.scrip(*m).map(|s| s.scrip.value().minor()))
            .collect();
        let rng = &mut self.clients[j].rng;
        let m = rng.random_range(0..merchants.len());
        let merchant = merchants[m];
        // 1: 6.1, 2: 6.4, 3: 6.3, 4: 6.2, 5: 6.5, 6: 6.6, 7: 6.7, 8: 6.8 of the
        // BrokerScrip, 9: 6.8 of the VendorScrip; weighted towards the three-party flows.
        let mut choices: Vec<u8> = Vec::new();
        match (broker_scrip, vendor[m]) {
            (None, None) => choices.extend([1]),
            (None, Some(_)) => choices.extend([1, 3, 3, 3, 7, 9]),
            (Some(_), None) => choices.extend([2, 4, 4, 4, 6, 8]),
            (Some(_), Some(_)) => choices.extend([2, 3, 3, 3, 5, 5, 5, 6, 7, 7, 8, 9]),
        }
        let choice = choices[rng.random_range(0..choices.len())];
        let wallet = self.network.wallet_mut(j).map_err(net)?;
        let started = match (choice, broker_scrip, vendor[m]) {
            (1, _, _) => {
                let value = rng.random_range(5..=30) * 100;
                wallet.obtain_broker_scrip(Amount::from_minor(value), now)
            }
            (2, Some(b), _) => {
                let value = b + rng.random_range(1..=10) * 100;
                wallet.top_up_broker_scrip(Amount::from_minor(value), now)
            }
            (4, Some(b), _) if b > 0 => {
                let w = rng.random_range(1..=b);
                wallet.obtain_vendor_scrip(merchant, Amount::from_minor(w), now)
            }
            (6, Some(_), _) => wallet.withdraw_broker_scrip(now),
            (8, Some(_), _) => wallet.renew(broker, now),
            (3, _, Some(v)) => {
                let (item, price) = if v >= 1200 && rng.random_range(0..3) == 0 {
                    ("book", 1200)
                } else {
                    ("tea", 150)
                };
                let most = v / price;
                if most == 0 {
                    self.note(format!("wallet {j} cannot afford {item}"));
                    return Ok(());
                }
                let quantity = rng.random_range(1..=most.min(4));
                let order = OrderInfo {
                    item_id: item.into(),
                    name: if item == "tea" { "Green tea" } else { "A book" }.into(),
                    unit_price: Amount::from_minor(price),
                    quantity,
                    order_id: OrderId::random(),
                };
                wallet
                    .buy_item(merchant, order, now)
                    .map(|(first, _)| first)
            }
            (5, Some(b), Some(_)) if b > 0 => {
                let top_up = rng.random_range(1..=b);
                wallet.top_up_vendor_scrip(merchant, Amount::from_minor(top_up), now)
            }
            (7, _, Some(_)) => wallet.withdraw_vendor_scrip(merchant, now),
            (9, _, Some(_)) => wallet.renew(merchant, now),
            _ => {
                self.note(format!("wallet {j} has nothing to do ({choice})"));
                return Ok(());
            }
        };
        match started {
            Ok(out) => {
                *self
                    .counters
                    .started
                    .entry(out.label.to_string())
                    .or_default() += 1;
                self.note(format!("wallet {j} starts {} of {}", out.label, out.tx));
                self.clients[j].sent.insert((out.tx, out.label));
                let order = self.tx_order.len() as u64;
                self.tx_order.insert(out.tx, order);
                let to = self.node_of(out.to)?;
                self.request(Node::Wallet(j), to, out.frame);
                Ok(())
            }
            Err(e) => {
                self.note(format!("wallet {j} declines to start: {e}"));
                // Declined because of another pending request (a transient refusal of a
                // customer that did not wait): the transaction is not used up.
                if self.waiting(j)? {
                    self.clients[j].remaining += 1;
                }
                self.declined(j, &e)
            }
        }
    }

    /// The UID of `node`.
    fn uid_of(&self, node: Node) -> Result<Uid, String> {
        match node {
            Node::Broker => Ok(self.network.broker_uid()),
            Node::Merchant(i) => self.merchant_uids.get(i).copied().ok_or(i),
            Node::Wallet(j) => self.wallet_uids.get(j).copied().ok_or(j),
        }
        .map_err(|_| format!("{node:?} is no party"))
    }

    fn node_of(&self, uid: Uid) -> Result<Node, String> {
        if uid == self.network.broker_uid() {
            return Ok(Node::Broker);
        }
        if let Some(i) = self.merchant_uids.iter().position(|m| *m == uid) {
            return Ok(Node::Merchant(i));
        }
        if let Some(j) = self.wallet_uids.iter().position(|w| *w == uid) {
            return Ok(Node::Wallet(j));
        }
        Err(format!("a frame for {uid}, who is no party"))
    }

    /// Sends a request of `from` to `to` (not a status query).
    fn request(&mut self, from: Node, to: Node, frame: Vec<u8>) {
        self.send(to, Kind::Request { from, status: None }, frame);
    }

    /// Puts a frame on the wire: as the delivery mode says, it is queued, lost, or queued
    /// with a copy held back for later.
    fn send(&mut self, to: Node, kind: Kind, frame: Vec<u8>) {
        self.next_id += 1;
        let envelope = Envelope {
            id: self.next_id,
            to,
            kind,
            frame,
        };
        match self.delivery() {
            Delivery::Once | Delivery::RestartEach => self.queue.push_back(envelope),
            Delivery::Twice => {
                if !matches!(envelope.kind, Kind::Reply { .. }) {
                    self.counters.duplicated += 1;
                    self.held.push(envelope.clone());
                }
                self.queue.push_back(envelope);
            }
            Delivery::Faulty(faults) => {
                if self.per_mille(faults.drop) {
                    self.counters.dropped += 1;
                    self.note(format!("lost {} to {to:?}", label_of(&envelope.frame)));
                    return;
                }
                if self.per_mille(faults.duplicate) {
                    self.counters.duplicated += 1;
                    self.held.push(envelope.clone());
                }
                self.queue.push_back(envelope);
            }
        }
    }

    /// Delivers one frame: the oldest, or (reordering) a random one of the queue, or a
    /// copy held back.
    fn deliver_next(&mut self) -> Step {
        let from_held =
            !self.held.is_empty() && (self.queue.is_empty() || self.rng.random_range(0..4) == 0);
        let envelope = if from_held {
            let i = self.rng.random_range(0..self.held.len());
            self.held.swap_remove(i)
        } else {
            let reorder = match self.faults() {
                Some(f) if self.queue.len() > 1 => self.per_mille(f.reorder),
                _ => false,
            };
            let i = if reorder {
                self.rng.random_range(0..self.queue.len())
            } else {
                0
            };
            match self.queue.remove(i) {
                Some(e) => e,
                None => return Ok(()),
            }
        };
        self.deliver(envelope)
    }

    /// Delivers every frame in flight, oldest first, with no fault (the quiet phase).
    fn drain(&mut self) -> Step {
        let mut budget = 10_000;
        while let Some(envelope) = self.queue.pop_front().or_else(|| self.held.pop()) {
            budget -= 1;
            if budget == 0 {
                return Err("the quiet phase does not drain".into());
            }
            self.deliver(envelope)?;
        }
        Ok(())
    }

    fn log_len(&self, node: Node) -> Result<u64, String> {
        let len = match node {
            Node::Broker => self.network.broker().map_err(net)?.log().len(),
            Node::Merchant(i) => self.network.merchant(i).map_err(net)?.log().len(),
            Node::Wallet(j) => self.network.wallet(j).map_err(net)?.log().len(),
        };
        len.map_err(|e| format!("{node:?}'s log: {e}"))
    }

    /// Hands `envelope` to its node and sends what the node answers.
    fn deliver(&mut self, envelope: Envelope) -> Step {
        self.counters.delivered += 1;
        let label = label_of(&envelope.frame);
        self.note(format!("deliver {label} to {:?}", envelope.to));
        let twice =
            self.scenario.delivery == Delivery::Twice && !matches!(envelope.kind, Kind::Reply { .. });
        // Only Twice compares logs; a node down after a failed commit (never in Twice)
        // cannot even be read.
        let before = if twice { self.log_len(envelope.to)? } else { 0 };
        let reply = self.handle(&envelope)?;
        if twice {
            let appended = self.log_len(envelope.to)? != before;
            match self.first.get(&envelope.id) {
                None => {
                    self.first
                        .insert(envelope.id, FirstHandling { appended, reply });
                }
                Some(first) => {
                    self.counters.repeats_checked += 1;
                    if appended {
                        return Err(format!(
                            "a repeated {label} appended events at {:?}",
                            envelope.to
                        ));
                    }
                    if first.appended && first.reply.is_some() {
                        self.counters.replies_compared += 1;
                        if first.reply != reply {
                            return Err(format!(
                                "a repeated {label} at {:?} got another reply than the first",
                                envelope.to
                            ));
                        }
                    }
                }
            }
        }
        if self.delivery() == Delivery::RestartEach {
            self.restart(envelope.to)?;
        }
        Ok(())
    }

    /// The reply to `envelope` (a request) from `from`.
    fn reply_kind(from: Node, envelope: &Envelope) -> Kind {
        let status = match &envelope.kind {
            Kind::Request { status, .. } => status.clone(),
            Kind::Reply { .. } | Kind::Delivery => None,
        };
        let re = shared::wire::Frame::header_of(&envelope.frame)
            .map_or(Label::Error, |h| h.label);
        Kind::Reply { from, re, status }
    }

    /// A node could not commit (section 10): its unsigned `Error { Unavailable }`, if the
    /// frame had a header to answer under, goes back to the requester, who repeats later;
    /// it is no decision. An answer to a delivery goes nowhere (a delivery has no reply
    /// subject; its sender re-sends on its timer).
    fn unavailable(&mut self, at: Node, envelope: &Envelope, down: Unavailable) {
        self.note(format!("{at:?} cannot commit: {}", down.reason));
        if let (Kind::Request { from, .. }, Some(reply)) = (&envelope.kind, down.reply) {
            let kind = Sim::reply_kind(at, envelope);
            self.send(*from, kind, reply);
        }
    }

    /// What `envelope`'s node does with it; returns the reply it sent (if any).
    fn handle(&mut self, envelope: &Envelope) -> Result<Option<Vec<u8>>, String> {
        let now = self.now;
        if let Kind::Reply { from, re, status } = &envelope.kind
            && let Some(tx) = self.unavailable_tx(*from, &envelope.frame)?
        {
            self.repeat_later(envelope.to, *from, (tx, *re), status.as_deref())?;
            return Ok(None);
        }
        match (envelope.to, &envelope.kind) {
            (Node::Broker, Kind::Request { from, .. }) => {
                let handled = match self
                    .network
                    .broker_mut()
                    .map_err(net)?
                    .handle(&envelope.frame, now)
                {
                    Ok(handled) => handled,
                    Err(broker::node::NodeError::Unavailable(down)) => {
                        self.unavailable(Node::Broker, envelope, down);
                        return Ok(None);
                    }
                    Err(e) => return Err(format!("the broker failed: {e}")),
                };
                for d in handled.deliveries {
                    let to = self.node_of(d.to)?;
                    self.send(to, Kind::Delivery, d.frame);
                }
                let kind = Sim::reply_kind(Node::Broker, envelope);
                self.send(*from, kind, handled.reply.clone());
                Ok(Some(handled.reply))
            }
            (Node::Merchant(i), Kind::Request { .. } | Kind::Delivery) => {
                let me = Node::Merchant(i);
                let handled = match self
                    .network
                    .merchant_mut(i)
                    .map_err(net)?
                    .handle(&envelope.frame, now)
                {
                    Ok(handled) => handled,
                    Err(merchant::node::NodeError::Unavailable(down)) => {
                        self.unavailable(me, envelope, down);
                        return Ok(None);
                    }
                    Err(e) => return Err(format!("merchant {i} failed: {e}")),
                };
                if let Some(refusal) = &handled.refusal {
                    self.note(format!("merchant {i} refuses: {refusal:?}"));
                }
                for d in handled.deliveries {
                    let to = self.node_of(d.to)?;
                    if to == Node::Broker {
                        self.request(me, to, d.frame);
                    } else {
                        self.send(to, Kind::Delivery, d.frame);
                    }
                }
                let reply = handled.reply.map(|r| r.frame);
                // A delivery has no reply subject: an answer to one goes nowhere.
                if let (Kind::Request { from, .. }, Some(frame)) = (&envelope.kind, &reply) {
                    let kind = Sim::reply_kind(me, envelope);
                    self.send(*from, kind, frame.clone());
                }
                Ok(reply)
            }
            (Node::Merchant(i), Kind::Reply { .. }) => {
                let outcome = match self
                    .network
                    .merchant_mut(i)
                    .map_err(net)?
                    .handle_reply(&envelope.frame, now)
                {
                    Ok(outcome) => outcome,
                    // Down, it cannot record the broker's answer: lost, as if the frame
                    // had been; its reporter asks again and the broker repeats its
                    // stored reply (section 7).
                    Err(merchant::node::NodeError::Unavailable(down)) => {
                        self.note(format!(
                            "merchant {i} is down, the broker's answer is lost: {}",
                            down.reason
                        ));
                        return Ok(None);
                    }
                    Err(e) => return Err(format!("merchant {i} failed on a reply: {e}")),
                };
                self.note(format!("merchant {i}: {}", reply_outcome(&outcome)));
                if let ReplyOutcome::Decided(frames) = outcome {
                    for out in frames {
                        let to = self.node_of(out.to)?;
                        self.send(to, Kind::Delivery, out.frame);
                    }
                }
                Ok(None)
            }
            (
                Node::Wallet(j),
                Kind::Reply {
                    status: Some(query),
                    ..
                },
            ) => {
                let wallet = self.network.wallet_mut(j).map_err(net)?;
                match wallet.handle_status(query, &envelope.frame, now) {
                    Ok(results) => {
                        for r in results {
                            match r {
                                Ok(entry) => self.note(format!("wallet {j}: {:?}", entry.what)),
                                Err(e) => self.declined(j, &e)?,
                            }
                        }
                    }
                    Err(e) => self.declined(j, &e)?,
                }
                self.kick(j)?;
                Ok(None)
            }
            (Node::Wallet(j), Kind::Reply { status: None, .. } | Kind::Delivery) => {
                let wallet = self.network.wallet_mut(j).map_err(net)?;
                match wallet.handle_reply(&envelope.frame, now) {
                    Ok(entry) => self.note(format!("wallet {j}: {:?}", entry.what)),
                    Err(e) => self.declined(j, &e)?,
                }
                self.kick(j)?;
                Ok(None)
            }
            (to, kind) => Err(format!("nobody handles {kind:?} at {to:?}")),
        }
    }

    /// The tx of `frame` if it is `from`'s unsigned `Error { Unavailable }` (section 10),
    /// as the wallet's client and the merchant's reporter tell it
    /// (`shared::node::is_unavailable`).
    fn unavailable_tx(&self, from: Node, frame: &[u8]) -> Result<Option<TxId>, String> {
        let uid = self.uid_of(from)?;
        Ok(shared::wire::Frame::header_of(frame)
            .ok()
            .map(|h| h.tx)
            .filter(|tx| shared::node::is_unavailable(frame, uid, *tx)))
    }

    /// `requester`'s request `re` of the tx of an `Unavailable` answer from `node` is
    /// repeated later (section 10: the client's pause, the reporter's backoff): its saved
    /// bodies again (or the status query asked again), held back and delivered at a
    /// random later step, like a duplicate.
    fn repeat_later(
        &mut self,
        requester: Node,
        node: Node,
        (tx, re): (TxId, Label),
        status: Option<&SavedRequest>,
    ) -> Step {
        self.counters.unavailable += 1;
        self.note(format!(
            "{requester:?}: {node:?} is unavailable, {re} of {tx} repeated later"
        ));
        let again = match requester {
            Node::Wallet(j) => {
                let wallet = self.network.wallet(j).map_err(net)?;
                let at = self.uid_of(node)?;
                let out = match status {
                    Some(_) => wallet
                        .transaction_status(tx, at)
                        .map(|(query, out)| (Some(Box::new(query)), out)),
                    None => wallet.resend(tx, re).map(|out| (None, out)),
                };
                match out {
                    Ok((status, out)) => Some((
                        Kind::Request {
                            from: requester,
                            status,
                        },
                        out.frame,
                    )),
                    // Settled meanwhile (another copy's answer came): nothing to repeat.
                    Err(e) => {
                        self.declined(j, &e)?;
                        None
                    }
                }
            }
            Node::Merchant(i) => {
                // The stored frame (byte for byte, section 7) if the request still awaits
                // its answer; none while the merchant is itself down (its timer resends).
                let merchant = self.network.merchant(i).map_err(net)?;
                let mut owed = merchant.pending_reports();
                owed.extend(merchant.pending_broker_requests());
                owed.into_iter()
                    .find(|out| {
                        shared::wire::Frame::header_of(&out.frame)
                            .is_ok_and(|h| h.tx == tx && h.label == re)
                    })
                    .map(|out| {
                        (
                            Kind::Request {
                                from: requester,
                                status: None,
                            },
                            out.frame,
                        )
                    })
            }
            Node::Broker => None,
        };
        if let Some((kind, frame)) = again {
            self.next_id += 1;
            self.held.push(Envelope {
                id: self.next_id,
                to: node,
                kind,
                frame,
            });
        }
        Ok(())
    }

    /// The quiet phase: no new transaction, no fault; every party retries and the clock
    /// passes every deadline until the network settles (or it is a failure).
    fn settle(&mut self) -> Step {
        self.quiet = true;
        if self.scenario.faulty_disks() {
            // Space is back everywhere, and a second passes: the timers (the next call of
            // every down node) reopen the logs (section 10).
            self.free_disks(true)?;
            self.now += shared::node::RETRY_AFTER_SECS;
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
