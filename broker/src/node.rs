//! [`BrokerNode`]: one broker, its redb file and its in-memory state, running each frame
//! through decode → open → decide → seal → commit (ADR 0006). This is what the tests and,
//! next, the actor shell call; it does no I/O but its own file, and reads no clock.
//!
//! The order is the protocol's (sections 6 and 7): every check happens before any state
//! change; the events, the projection rows, the stored reply and the outbox frames commit
//! in one redb write transaction before the reply is returned; a refusal changes nothing
//! and is answered with a signed `Error` that is not stored.

use std::path::Path;

use shared::events::{EventLog, LogError, LogIdentity, NewEvent, ProjectionError};
use shared::ids::{Pan, PanSecret, TxId, Uid};
use shared::node::{Draft, DraftError, Recorded, Refusal, SentFrame};
use shared::wire::bodies::{ErrorBody, Re};
use shared::wire::{Frame, Header, WireError};
use shared::{Amount, KeyPair, Mint, PublicKey, RootKey};

use crate::core::bank::{self, BankError};
use crate::core::obtain_vendor_scrip::Timed;
use crate::core::{
    AccountIds, Config, Ctx, Decision, Kind, Outcome, State, decide, open as open_frame,
};
use crate::store::{self, LiveProjection};

/// The node kind recorded in the broker's log.
pub const NODE_KIND: &str = "broker";

/// A frame the broker sends: to whom, and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient.
    pub to: Uid,
    /// The encoded frame.
    pub frame: Vec<u8>,
}

/// What handling one request produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    /// The reply to the requester (a signed `Error` for a refusal).
    pub reply: Vec<u8>,
    /// Deliveries to other parties (to their peer subjects).
    pub deliveries: Vec<Outgoing>,
}

/// The node's own failures: the request changed nothing and may be repeated (the shell
/// answers `Internal`).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The frame could not be decoded at all (no header to answer under).
    #[error("undecodable frame: {0}")]
    Frame(#[source] WireError),
    /// The log refused an append or a read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A draft could not be signed or sealed.
    #[error(transparent)]
    Draft(#[from] DraftError),
    /// A projection or secrets table could not be read.
    #[error(transparent)]
    Table(#[from] ProjectionError),
    /// The bank operator's request was refused.
    #[error(transparent)]
    Bank(#[from] BankError),
    /// The file's tables disagree with the state replayed from its log, or a secret
    /// record with its commitment: the node refuses to serve.
    #[error("inconsistent broker file: {0}")]
    Inconsistent(String),
}

/// A broker (see the module doc).
pub struct BrokerNode {
    log: EventLog<Recorded<Kind>>,
    state: State,
    ids: AccountIds,
    keys: KeyPair,
    mint: Mint,
    config: Config,
}

impl std::fmt::Debug for BrokerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerNode")
            .field("uid", &self.keys.uid())
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl BrokerNode {
    /// Opens (or creates) the broker's file at `path`: replays the log into the state,
    /// checks that the projection tables equal the replayed state byte for byte and that
    /// every account's secret record matches its commitment.
    pub fn open(
        path: impl AsRef<Path>,
        keys: KeyPair,
        root: RootKey,
        config: Config,
    ) -> Result<BrokerNode, NodeError> {
        let log = EventLog::open(path, LogIdentity::new(config.suite, NODE_KIND))?;
        let state = replay(&log, &config)?;
        let tables = log.dump_projection(&LiveProjection::new(&mut State::new(config.suite)))?;
        if tables != store::render(&state)? {
            return Err(NodeError::Inconsistent(
                "projection tables differ from the replayed log".to_owned(),
            ));
        }
        let ids = store::read_account_ids(&log.begin_read()?)?;
        check_secrets(&state, &ids, &config)?;
        let mint = Mint::new(config.suite, keys.uid(), root);
        Ok(BrokerNode {
            log,
            state,
            ids,
            keys,
            mint,
            config,
        })
    }

    /// The state (the projection of the log).
    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The log.
    #[must_use]
    pub fn log(&self) -> &EventLog<Recorded<Kind>> {
        &self.log
    }

    /// The broker's UID.
    #[must_use]
    pub fn uid(&self) -> Uid {
        self.keys.uid()
    }

    /// The broker's public key (what every peer pins, section 1).
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        self.keys.public()
    }

    /// Closes the file (releasing its lock).
    pub fn close(self) -> Result<(), NodeError> {
        Ok(self.log.close()?)
    }

    /// Handles one request frame received at `now` (unix seconds): decode, open, decide,
    /// seal, commit; returns the reply and deliveries. A refusal is an `Ok` with a signed
    /// `Error` reply; `Err` is the node's own failure.
    pub fn handle(&mut self, bytes: &[u8], now: u64) -> Result<Handled, NodeError> {
        let frame = Frame::decode(bytes).map_err(NodeError::Frame)?;
        let verified = match open_frame(&frame, &self.keys, &self.state, &self.ids) {
            Ok(v) => v,
            Err(refusal) => return self.refuse(&frame.header, &[], &refusal),
        };
        let ctx = Ctx {
            me: self.keys.uid(),
            mint: &self.mint,
            config: &self.config,
            now,
        };
        match decide(&self.state, &ctx, &verified) {
            Ok(Outcome::Repeat(reply)) => Ok(Handled {
                reply,
                deliveries: Vec::new(),
            }),
            Ok(Outcome::Decided(decision)) => self.commit(*decision),
            Err(refusal) => self.refuse(&verified.header, &verified.digest, &refusal),
        }
    }

    /// Bank operator: opens `bank:<pan>` with `secret` (section 1). Returns its tx.
    pub fn open_account(
        &mut self,
        pan: &Pan,
        secret: &PanSecret,
        now: u64,
    ) -> Result<TxId, NodeError> {
        let tx = TxId::random();
        let opening = bank::open_account(&self.state, self.config.suite, pan, secret, tx, now)?;
        let id = opening.id;
        let result = self.log.append_with(
            Recorded::attach(vec![opening.event], Vec::new()),
            &LiveProjection::new(&mut self.state),
            |txn, _| store::write_account_id(txn, pan, &id),
        );
        self.after_append(result)?;
        self.ids.insert(pan.clone(), id);
        Ok(tx)
    }

    /// Bank operator: deposits `amount` into `bank:<pan>` (section 5). Returns its tx.
    pub fn deposit(&mut self, pan: &Pan, amount: Amount, now: u64) -> Result<TxId, NodeError> {
        let tx = TxId::random();
        let event = bank::deposit(&self.state, pan, amount, tx, now)?;
        self.append(vec![event], Vec::new())?;
        Ok(tx)
    }

    /// Bank operator: pays `amount` out of `bank:<pan>`, limited to the balance less the
    /// memo `float:vendor` of its merchant (section 5). Returns its tx.
    pub fn payout(&mut self, pan: &Pan, amount: Amount, now: u64) -> Result<TxId, NodeError> {
        let tx = TxId::random();
        let event = bank::payout(&self.state, pan, amount, tx, now)?;
        self.append(vec![event], Vec::new())?;
        Ok(tx)
    }

    /// The broker's timer (sections 4 and 7: the broker enforces every deadline): closes
    /// every exchange of 6.2 whose deadline passed before `now` with no decision
    /// (`ExchangeExpired`), releases every escrow of 6.5 likewise (`EscrowReleased`), each
    /// telling C with a NOK `ChangeBrokerScrip`, and lapses every BrokerScrip whose renewal grace ended
    /// (`ScripLapsed`, its value back to the owner's bank account). Returns how many events
    /// it appended.
    pub fn expire(&mut self, now: u64) -> Result<usize, NodeError> {
        let mut timed = crate::core::obtain_vendor_scrip::expired(&self.state, self.uid(), now);
        timed.extend(crate::core::top_up_vendor_scrip::expired(
            &self.state,
            self.uid(),
            now,
        ));
        timed.extend(
            crate::core::lapse::lapsed(&self.state, &self.config, now)
                .into_iter()
                .map(|event| Timed {
                    event,
                    deliveries: Vec::new(),
                }),
        );
        let count = timed.len();
        // Each event keeps the frames it sent (they belong to its tx); one commit for all.
        let mut events = Vec::with_capacity(count);
        for t in timed {
            let sent = t
                .deliveries
                .iter()
                .map(|d| self.seal(d))
                .collect::<Result<Vec<_>, _>>()?;
            events.extend(Recorded::attach(vec![t.event], sent));
        }
        if !events.is_empty() {
            let result = self
                .log
                .append(events, &LiveProjection::new(&mut self.state));
            self.after_append(result)?;
        }
        Ok(count)
    }

    /// The `VendorTopUpAuthorization` deliveries (6.5 step 2) to re-send at `now`: one per
    /// open escrow whose deadline has not passed, the stored bytes (so M answers a repeat
    /// by digest). The shell calls it on its timer; nothing is appended.
    #[must_use]
    pub fn to_resend(&self, now: u64) -> Vec<Outgoing> {
        crate::core::top_up_vendor_scrip::to_resend(&self.state, now)
            .into_iter()
            .map(|(to, frame)| Outgoing { to, frame })
            .collect()
    }

    /// Seals the decision's drafts and commits its events with the frames, then returns
    /// them. A decision without events (a read) commits nothing and stores nothing.
    fn commit(&mut self, decision: Decision) -> Result<Handled, NodeError> {
        let reply = self.seal(&decision.reply)?;
        let deliveries = decision
            .deliveries
            .iter()
            .map(|d| self.seal(d))
            .collect::<Result<Vec<_>, _>>()?;
        let handled = Handled {
            reply: reply.frame.clone(),
            deliveries: deliveries
                .iter()
                .map(|s| Outgoing {
                    to: s.to,
                    frame: s.frame.clone(),
                })
                .collect(),
        };
        if !decision.events.is_empty() {
            let mut sent = vec![reply];
            sent.extend(deliveries);
            self.append(decision.events, sent)?;
        }
        Ok(handled)
    }

    fn seal(&self, draft: &Draft) -> Result<SentFrame, NodeError> {
        let recipient = self.state.peers.get(&draft.to).map(|p| &p.public_key);
        Ok(draft.seal(&self.keys, recipient)?)
    }

    fn append(
        &mut self,
        events: Vec<NewEvent<Kind>>,
        sent: Vec<SentFrame>,
    ) -> Result<(), NodeError> {
        let result = self.log.append(
            Recorded::attach(events, sent),
            &LiveProjection::new(&mut self.state),
        );
        self.after_append(result)
    }

    /// On a failed append the in-memory state may have folded events the file does not
    /// hold: rebuild it from the log, which is the truth.
    fn after_append<T>(&mut self, result: Result<T, LogError>) -> Result<(), NodeError> {
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                self.state = replay(&self.log, &self.config)?;
                Err(e.into())
            }
        }
    }

    /// A signed `Error` answering the request with `header` (and `digest`, empty when the
    /// request could not be verified). Not stored: a refusal changes nothing. Signed under
    /// the broker's own suite, so that a `WrongSuite` frame is answered too.
    fn refuse(
        &self,
        header: &Header,
        digest: &[u8],
        refusal: &Refusal,
    ) -> Result<Handled, NodeError> {
        let body = ErrorBody::new(
            Re::new(header, digest.to_vec()),
            refusal.code,
            refusal.message.clone(),
        );
        let mut draft = Draft::reply(self.keys.uid(), header, digest, &body);
        draft.header.suite = self.config.suite;
        Ok(Handled {
            reply: self.seal(&draft)?.frame,
            deliveries: Vec::new(),
        })
    }
}

/// The state rebuilt by folding every event of `log` (chain verified first).
fn replay(log: &EventLog<Recorded<Kind>>, config: &Config) -> Result<State, NodeError> {
    log.verify_chain()?;
    let mut state = State::new(config.suite);
    for event in log.iter()? {
        state.apply(&event?);
    }
    Ok(state)
}

/// Every account has its ID, and each ID matches the commitment its event recorded.
fn check_secrets(state: &State, ids: &AccountIds, config: &Config) -> Result<(), NodeError> {
    for (pan, record) in &state.pans {
        let id = ids.get(pan).ok_or_else(|| {
            NodeError::Inconsistent(format!("no secret record for account {pan:?}"))
        })?;
        if id.commitment(config.suite) != record.id_commitment {
            return Err(NodeError::Inconsistent(format!(
                "secret record of account {pan:?} does not match its commitment"
            )));
        }
    }
    Ok(())
}
