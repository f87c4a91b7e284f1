//! [`Wallet`]: the customer's wallet file, its key pair and its state, with one method per
//! step the customer takes. It draws tx ids and nonces, renders and encodes frames
//! ([`crate::rendering`]), and appends events; the checks live in [`crate::core`].
//!
//! Every state change is an event appended with its projection rows in one redb write
//! transaction (protocol.md section 8) before the method returns: a request is saved before
//! its frame is handed out (section 7), a reply's outcome is stored before it is reported.
//! [`Wallet::open`] rebuilds the state by replaying the log and checks it against the
//! tables (first rebuilt from the log if the file's tables are of an older format,
//! `store::TABLES_FORMAT`).

use std::path::Path;

use shared::UnixSecs;
use shared::events::{Event, EventLog, LogIdentity, NewEvent, ProjectionDump};
use shared::wire::bodies::OrderInfo;
use shared::wire::{Frame, Label};
use shared::{
    AccountId, Amount, CustomerSecret, KeyPair, Nonce, Pan, PanSecret, PublicKey, SecretBytes,
    TxId, Uid,
};

use crate::core::reply::open_cs;
use crate::core::{
    self, AccountRecord, HistoryEntry, Identity, OwnedScrip, Pending, ReplyOutcome, SavedRequest,
    WalletEvent, WalletState,
};
use crate::error::WalletError;
use crate::rendering::{RenderJob, Rendering};
use crate::sealed::SealedSecret;
use crate::store::{self, TABLES_FORMAT, WalletProjection, expected_dump};

/// The node kind recorded in a wallet file's log identity.
pub const NODE_KIND: &str = "wallet";

/// The tx of the wallet's own events that belong to no protocol transaction (creation,
/// account link).
pub const LOCAL_TX: TxId = TxId([0; 16]);

/// The sealing context of the account ID.
const ID_CONTEXT: &[u8] = b"account-id";

/// A frame to send: the encoded request and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The transaction.
    pub tx: TxId,
    /// The request's label.
    pub label: Label,
    /// The node it goes to (the broker, or a producer in 6.8).
    pub to: Uid,
    /// The encoded frame.
    pub frame: Vec<u8>,
}

/// The customer's wallet (see the module doc).
pub struct Wallet {
    log: EventLog<WalletEvent>,
    state: WalletState,
    keys: KeyPair,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("path", &self.log.path())
            .field("uid", &self.keys.uid())
            .finish_non_exhaustive()
    }
}

impl Wallet {
    /// Creates the wallet file at `path` for `keys`, pinning `broker_key` (protocol.md
    /// section 1). Refuses a file that already holds a wallet.
    pub fn create(
        path: impl AsRef<Path>,
        keys: KeyPair,
        broker_key: &PublicKey,
        now: UnixSecs,
    ) -> Result<Wallet, WalletError> {
        if broker_key.suite() != keys.suite() {
            return Err(WalletError::WrongSuite {
                expected: keys.suite(),
                found: broker_key.suite(),
            });
        }
        let log = EventLog::open(path, LogIdentity::new(keys.suite(), NODE_KIND))?;
        let state = replay(&log)?;
        if let Some(identity) = state.identity {
            return Err(WalletError::AlreadyAWallet { uid: identity.me });
        }
        let mut wallet = Wallet { log, state, keys };
        let identity = Identity {
            suite: wallet.keys.suite(),
            me: wallet.keys.uid(),
            my_key: wallet.keys.public().spki_der().to_vec(),
            broker: broker_key.uid(),
            broker_key: broker_key.spki_der().to_vec(),
        };
        wallet.commit(NewEvent::new(
            now.to_millis(),
            LOCAL_TX,
            WalletEvent::WalletCreated { identity },
        ))?;
        Ok(wallet)
    }

    /// Opens the wallet file at `path` with its key pair: replays the log (verifying its
    /// hash chain), checks the key is the wallet's and that the tables equal the replayed
    /// state (protocol.md section 8). A missing file is [`WalletError::NotAWallet`] (and is
    /// not created).
    pub fn open(path: impl AsRef<Path>, keys: KeyPair) -> Result<Wallet, WalletError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(WalletError::NotAWallet);
        }
        let log = EventLog::open(path, LogIdentity::new(keys.suite(), NODE_KIND))?;
        log.verify_chain()?;
        let state = replay(&log)?;
        let identity = state.identity.as_ref().ok_or(WalletError::NotAWallet)?;
        if identity.me != keys.uid() {
            return Err(WalletError::WrongKey {
                expected: identity.me,
                found: keys.uid(),
            });
        }
        let wallet = Wallet { log, state, keys };
        let stored = wallet.upgrade_tables()?;
        wallet.compare_tables(&stored).map(|()| wallet)
    }

    /// The projection tables as the file holds them, first rebuilt from the log if the file
    /// was written in an older format than this build's (`store::TABLES_FORMAT`; the tables
    /// project the log, section 8, so nothing is lost). A newer format is refused.
    fn upgrade_tables(&self) -> Result<ProjectionDump, WalletError> {
        let stored = self.log.dump_projection(&WalletProjection::default())?;
        match store::stored_format(&stored).map_err(|_| WalletError::TablesDiffer)? {
            TABLES_FORMAT => Ok(stored),
            found if found > TABLES_FORMAT => Err(WalletError::TablesFormat {
                found,
                supported: TABLES_FORMAT,
            }),
            _ => {
                self.log.rebuild_projection(&WalletProjection::default())?;
                Ok(self.log.dump_projection(&WalletProjection::default())?)
            }
        }
    }

    /// Checks that the projection tables in the file equal the state, byte for byte.
    pub fn check_tables(&self) -> Result<(), WalletError> {
        self.compare_tables(&self.log.dump_projection(&WalletProjection::default())?)
    }

    /// Checks that `stored` (the file's tables) equals the state, byte for byte.
    fn compare_tables(&self, stored: &ProjectionDump) -> Result<(), WalletError> {
        let expected = expected_dump(&self.state)
            .map_err(|e| WalletError::Internal(format!("encoding a row: {e}")))?;
        if *stored == expected {
            Ok(())
        } else {
            Err(WalletError::TablesDiffer)
        }
    }

    /// Appends `event` with its rows in one commit, then adopts the state it produced. A
    /// record a crash may lose ([`WalletEvent::is_refetchable`]) is not flushed on its own:
    /// the next commit makes it durable.
    fn commit(&mut self, event: NewEvent<WalletEvent>) -> Result<Event<WalletEvent>, WalletError> {
        let projection = WalletProjection::from_state(self.state.clone());
        let mut stored = if event.kind.is_refetchable() {
            self.log.append_deferred(vec![event], &projection)?
        } else {
            self.log.append(vec![event], &projection)?
        };
        self.state = projection.into_state();
        stored
            .pop()
            .ok_or_else(|| WalletError::Internal("an append of one event stored none".into()))
    }

    /// The wallet's UID.
    #[must_use]
    pub fn uid(&self) -> Uid {
        self.keys.uid()
    }

    /// The state (the projection of the log).
    #[must_use]
    pub fn state(&self) -> &WalletState {
        &self.state
    }

    /// The event log, for audits and tests.
    #[must_use]
    pub fn log(&self) -> &EventLog<WalletEvent> {
        &self.log
    }

    /// The scrip held of `producer`.
    #[must_use]
    pub fn scrip(&self, producer: Uid) -> Option<&OwnedScrip> {
        self.state.scrip.get(&producer)
    }

    /// The BrokerScrip held.
    #[must_use]
    pub fn broker_scrip(&self) -> Option<&OwnedScrip> {
        self.state.broker_scrip()
    }

    /// The CustomerSecret of the scrip held of `producer`, opened with the wallet's key.
    pub fn customer_secret(&self, producer: Uid) -> Result<CustomerSecret, WalletError> {
        let owned = self
            .scrip(producer)
            .ok_or(WalletError::NoScrip { producer })?;
        open_cs(&self.keys, owned)
    }

    /// The requests saved and not yet answered (a request given up is not listed: see
    /// `PendingStatus::Abandoned`).
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.state
            .pending
            .values()
            .filter(|p| p.status != core::PendingStatus::Abandoned)
    }

    /// The history, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.state.history.values()
    }

    /// Links the bank account `pan` (protocol.md section 1): keeps the PAN and the `ID`
    /// derived from `secret`, sealed under the wallet's key; the PANSecret is not kept.
    pub fn link_account(
        &mut self,
        pan: Pan,
        secret: &PanSecret,
        now: UnixSecs,
    ) -> Result<(), WalletError> {
        let suite = self.keys.suite();
        let id = AccountId::derive(suite, secret, &pan);
        let account = AccountRecord {
            sealed_id: SealedSecret::seal(self.keys.public(), ID_CONTEXT, id.expose())?,
            id_commitment: id.commitment(suite),
            pan,
        };
        self.commit(NewEvent::new(
            now.to_millis(),
            LOCAL_TX,
            WalletEvent::AccountLinked { account },
        ))?;
        Ok(())
    }

    /// The account ID, opened and checked against its commitment.
    fn account_id(&self) -> Result<AccountId, WalletError> {
        let account = self.state.account.as_ref().ok_or(WalletError::NoAccount)?;
        let plain = account
            .sealed_id
            .open(&self.keys, ID_CONTEXT)
            .map_err(|e| WalletError::SealedSecret(format!("account ID: {e}")))?;
        let id = AccountId::from_secret(SecretBytes::from_slice(&plain));
        if id.commitment(self.keys.suite()) == account.id_commitment {
            Ok(id)
        } else {
            Err(WalletError::SealedSecret(
                "account ID does not match its commitment".into(),
            ))
        }
    }

    /// What rendering `request` takes, gathered (see [`RenderJob::gather`]); opens the
    /// account ID when the request carries an IdProof.
    fn render_job(&self, request: &SavedRequest) -> Result<RenderJob, WalletError> {
        let account_id = if request.needs_id() {
            Some(self.account_id()?)
        } else {
            None
        };
        RenderJob::gather(&self.state, &self.keys, account_id, request)
    }

    /// Appends `events` with their rows in one commit, then adopts the state they produced.
    fn commit_all(&mut self, events: Vec<NewEvent<WalletEvent>>) -> Result<(), WalletError> {
        let projection = WalletProjection::from_state(self.state.clone());
        self.log.append(events, &projection)?;
        self.state = projection.into_state();
        Ok(())
    }

    /// The frame of `request` to send: its saved bodies, fresh signatures and seals.
    fn outgoing(&self, request: &SavedRequest) -> Result<Outgoing, WalletError> {
        self.render_job(request)?.run()
    }

    /// Renders a new request, saves it (`RequestSaved`, section 7: saved before it
    /// leaves), and hands out its frame.
    fn save(&mut self, request: SavedRequest, now: UnixSecs) -> Result<Outgoing, WalletError> {
        let outgoing = self.outgoing(&request)?;
        self.commit_all(saved(vec![request], now))?;
        Ok(outgoing)
    }

    /// Starts the request `build` makes in a fresh tx (the requester's choice, section 7):
    /// saved, then its frame handed out.
    fn start(
        &mut self,
        now: UnixSecs,
        build: impl FnOnce(&WalletState, TxId) -> Result<SavedRequest, WalletError>,
    ) -> Result<Outgoing, WalletError> {
        let request = build(&self.state, TxId::random())?;
        self.save(request, now)
    }

    /// 6.0 step 1: registers the wallet's key for the linked account.
    pub fn register(&mut self, now: UnixSecs) -> Result<Outgoing, WalletError> {
        self.start(now, core::register::request)
    }

    /// 6.0b step 1: asks the broker for `target`'s key.
    pub fn request_public_key(
        &mut self,
        target: Uid,
        now: UnixSecs,
    ) -> Result<Outgoing, WalletError> {
        self.start(now, |state, tx| {
            core::public_key::request(state, tx, target, Nonce::random())
        })
    }

    /// 6.1 step 1: asks for a BrokerScrip of `value`.
    pub fn obtain_broker_scrip(
        &mut self,
        value: Amount,
        now: UnixSecs,
    ) -> Result<Outgoing, WalletError> {
        self.start(now, |state, tx| {
            core::obtain_broker_scrip::request(state, tx, value, Nonce::random())
        })
    }

    /// 6.4 step 1: asks to replace the BrokerScrip by one of `new_value`.
    pub fn top_up_broker_scrip(
        &mut self,
        new_value: Amount,
        now: UnixSecs,
    ) -> Result<Outgoing, WalletError> {
        self.start(now, |state, tx| {
            core::top_up_broker_scrip::request(state, tx, new_value, Nonce::random())
        })
    }

    /// 6.6 step 1: asks to cash in the BrokerScrip.
    pub fn withdraw_broker_scrip(&mut self, now: UnixSecs) -> Result<Outgoing, WalletError> {
        self.start(now, core::withdraw_broker_scrip::request)
    }

    /// 6.8 step 1: asks `producer` to renew the scrip held of it.
    pub fn renew(&mut self, producer: Uid, now: UnixSecs) -> Result<Outgoing, WalletError> {
        self.start(now, |state, tx| core::renew::request(state, tx, producer))
    }

    /// 6.2 step 1: tells the broker of an exchange of `value` of the BrokerScrip for
    /// VendorScrip of `merchant`. When [`Wallet::handle_reply`] has taken the broker's
    /// answer, step 2 is saved: send `resend(tx, Label::VendorScripRequest)` to the merchant.
    pub fn obtain_vendor_scrip(
        &mut self,
        merchant: Uid,
        value: Amount,
        now: UnixSecs,
    ) -> Result<Outgoing, WalletError> {
        self.start(now, |state, tx| {
            core::obtain_vendor_scrip::request(state, tx, merchant, value)
        })
    }

    /// 6.3 steps 1 and 2: buys `order` from `merchant` with the VendorScrip held of it.
    /// Both requests are saved in one commit; send the first (`PurchaseInitiated`, to the
    /// broker) and, once it is acknowledged, the second (`PurchaseRequest`, to the merchant).
    /// The frames are rendered on rayon's pool ([`Rendering`]): the first while the two are
    /// saved, the second until the first is acknowledged, which takes its signature and the
    /// opening of V0's CustomerSecret off the purchase's path. What the wallet lacks to
    /// render either is refused before anything is saved; a rendering that fails after the
    /// save leaves its request pending, to be sent again ([`Wallet::resend`]).
    pub fn start_buy(
        &mut self,
        merchant: Uid,
        order: OrderInfo,
        now: UnixSecs,
    ) -> Result<(Outgoing, Rendering), WalletError> {
        let (initiated, purchase) =
            core::buy_item::request(&self.state, TxId::random(), merchant, order)?;
        let first = self.render_job(&initiated)?.spawn();
        let second = self.render_job(&purchase)?.spawn();
        self.commit_all(saved(vec![initiated, purchase], now))?;
        Ok((first.wait()?, second))
    }

    /// [`Wallet::start_buy`], waiting for the second frame: both frames at once.
    pub fn buy_item(
        &mut self,
        merchant: Uid,
        order: OrderInfo,
        now: UnixSecs,
    ) -> Result<(Outgoing, Outgoing), WalletError> {
        let (first, second) = self.start_buy(merchant, order, now)?;
        Ok((first, second.wait()?))
    }

    /// 6.5 step 1: adds `top_up` from the BrokerScrip to the VendorScrip held of
    /// `merchant` (sent to the broker).
    pub fn top_up_vendor_scrip(
        &mut self,
        merchant: Uid,
        top_up: Amount,
        now: UnixSecs,
    ) -> Result<Outgoing, WalletError> {
        self.start(now, |state, tx| {
            core::top_up_vendor_scrip::request(state, tx, merchant, top_up)
        })
    }

    /// 6.7 step 1: asks `merchant` to cash in the VendorScrip held of it.
    pub fn withdraw_vendor_scrip(
        &mut self,
        merchant: Uid,
        now: UnixSecs,
    ) -> Result<Outgoing, WalletError> {
        self.start(now, |state, tx| {
            core::withdraw_vendor_scrip::request(state, tx, merchant)
        })
    }

    /// Section 7: asks `node` (the broker or a merchant) for the frames of `tx`
    /// it sent the wallet. Read-only: nothing is saved; keep the returned query to check
    /// the answer with [`Wallet::handle_status`].
    pub fn transaction_status(
        &self,
        tx: TxId,
        node: Uid,
    ) -> Result<(SavedRequest, Outgoing), WalletError> {
        let query = core::transaction_status::request(&self.state, tx, node)?;
        let outgoing = self.outgoing(&query)?;
        Ok((query, outgoing))
    }

    /// Takes the answer to a [`Wallet::transaction_status`] query: checks it (signed by the
    /// node asked, `re` naming the query), then feeds each frame it holds, in order, to
    /// [`Wallet::handle_reply`], exactly as if it had just arrived. Returns each frame's
    /// result: a frame already recorded comes back as `AlreadyReceived` (or finds nothing
    /// pending, or a later step of its tx pending) and changes nothing, so asking again is
    /// always safe. An `Err` of the whole call changes nothing. If the node's answer left
    /// out earlier frames that did not fit one frame, a last entry
    /// [`WalletError::StatusIncomplete`] says how many: the wallet's view of the tx may
    /// then lack a step, which its history and `status` show instead of hiding.
    pub fn handle_status(
        &mut self,
        query: &SavedRequest,
        bytes: &[u8],
        now: UnixSecs,
    ) -> Result<Vec<Result<HistoryEntry, WalletError>>, WalletError> {
        let frame = Frame::decode(bytes).map_err(WalletError::Decode)?;
        let (frames, omitted) =
            core::transaction_status::frames_of(&self.state, &self.keys, query, &frame)?;
        let mut results: Vec<_> = frames.iter().map(|f| self.handle_reply(f, now)).collect();
        if omitted > 0 {
            results.push(Err(WalletError::StatusIncomplete { omitted }));
        }
        Ok(results)
    }

    /// The catalogue query to `merchant` (docs/adr/0009): read-only, nothing is saved;
    /// keep the returned query to check the answer with [`Wallet::handle_catalogue`]. The
    /// merchant's key must be cached (6.0b).
    pub fn catalogue_query(&self, merchant: Uid) -> Result<(SavedRequest, Outgoing), WalletError> {
        let query =
            core::catalogue::request(&self.state, TxId::random(), merchant, Nonce::random())?;
        let outgoing = self.outgoing(&query)?;
        Ok((query, outgoing))
    }

    /// Checks the merchant's answer to a [`Wallet::catalogue_query`] and returns its
    /// listing. Changes nothing.
    pub fn handle_catalogue(
        &self,
        query: &SavedRequest,
        bytes: &[u8],
    ) -> Result<core::catalogue::Listing, WalletError> {
        let frame = Frame::decode(bytes).map_err(WalletError::Decode)?;
        core::catalogue::listing_of(&self.state, &self.keys, query, &frame)
    }

    /// The directory query to the broker (docs/adr/0016): the page of named merchants
    /// after `after`. Read-only, nothing is saved; keep the query to check the answer with
    /// [`Wallet::handle_directory`].
    pub fn directory_query(
        &self,
        after: Option<Uid>,
    ) -> Result<(SavedRequest, Outgoing), WalletError> {
        let query = core::directory::request(&self.state, TxId::random(), after, Nonce::random())?;
        let outgoing = self.outgoing(&query)?;
        Ok((query, outgoing))
    }

    /// Checks the broker's answer to a [`Wallet::directory_query`] of `after`, and
    /// remembers the names it brings ([`Wallet::remember_names`]).
    pub fn handle_directory(
        &mut self,
        query: &SavedRequest,
        after: Option<Uid>,
        bytes: &[u8],
        now: UnixSecs,
    ) -> Result<core::directory::Page, WalletError> {
        let frame = Frame::decode(bytes).map_err(WalletError::Decode)?;
        let page = core::directory::page_of(&self.state, &self.keys, query, after, &frame)?;
        self.remember_names(page.merchants.iter().map(|(u, n)| (u, n)), now)?;
        Ok(page)
    }

    /// Records the merchants' names the wallet did not know, or knew under another name
    /// (docs/adr/0016), in one commit under [`LOCAL_TX`] (a name belongs to no protocol
    /// transaction): every later output names those merchants. Names seen again append
    /// nothing.
    pub fn remember_names<'a>(
        &mut self,
        learned: impl IntoIterator<Item = (&'a Uid, &'a shared::wire::bodies::MerchantName)>,
        now: UnixSecs,
    ) -> Result<(), WalletError> {
        let events: Vec<NewEvent<WalletEvent>> =
            core::directory::changed_names(&self.state, learned)
                .into_iter()
                .map(|e| NewEvent::new(now.to_millis(), LOCAL_TX, e))
                .collect();
        if events.is_empty() {
            return Ok(());
        }
        self.commit_all(events)
    }

    /// The name the wallet knows `merchant` by (docs/adr/0016), if any.
    #[must_use]
    pub fn merchant_name(&self, merchant: Uid) -> Option<&shared::wire::bodies::MerchantName> {
        self.state.names.get(&merchant)
    }

    /// The frame of a pending request again, for a retry (also after a restart): the saved
    /// bodies byte for byte, fresh signatures and seals, so the same request digest
    /// (protocol.md section 7). Changes nothing. A request whose presented scrip is already
    /// settled (6.2 step 2 once the broker's change is in) cannot be rendered again (its
    /// CustomerSecret is gone): [`Pending::next_steps`] says to ask the node instead.
    pub fn resend(&self, tx: TxId, label: Label) -> Result<Outgoing, WalletError> {
        let pending = self
            .state
            .pending
            .get(&(tx, label))
            .filter(|p| p.status != core::PendingStatus::Abandoned)
            .ok_or(WalletError::NotPending { tx, label })?;
        self.outgoing(&pending.request)
    }

    /// Gives up a request the node refused with `Error` (a refusal changed nothing at the
    /// node, section 3). A request without a refusal cannot be given up: it may have
    /// succeeded, and its outcome must be fetched by repeating it. A request given up is
    /// no longer repeated and frees its scrip, but a late success of a copy of it still on
    /// the network is taken (`PendingStatus::Abandoned`).
    pub fn abandon(&mut self, tx: TxId, label: Label, now: UnixSecs) -> Result<(), WalletError> {
        let pending = self
            .state
            .pending
            .get(&(tx, label))
            .filter(|p| p.status != core::PendingStatus::Abandoned)
            .ok_or(WalletError::NotPending { tx, label })?;
        if pending.status == core::PendingStatus::Sent {
            return Err(WalletError::NotRefused { tx, label });
        }
        self.commit(NewEvent::new(
            now.to_millis(),
            tx,
            WalletEvent::RequestAbandoned { label },
        ))?;
        Ok(())
    }

    /// Takes a reply frame, or a broker delivery (`ChangeBrokerScrip`,
    /// `VendorWithdrawResult`): checks it against the pending request it answers and records
    /// the outcome (protocol.md section 6, the request's transaction). A message already
    /// recorded is [`WalletError::AlreadyReceived`] and changes nothing. Returns the history
    /// line of the outcome. An `Error` reply is recorded as the request's status and
    /// returned as [`WalletError::Refused`]; any other error changes nothing.
    pub fn handle_reply(
        &mut self,
        bytes: &[u8],
        now: UnixSecs,
    ) -> Result<HistoryEntry, WalletError> {
        let frame = Frame::decode(bytes).map_err(WalletError::Decode)?;
        match core::decide_reply(&self.state, &frame, &self.keys, now)? {
            ReplyOutcome::Completed(event) => {
                let stored = self.commit(event)?;
                self.state
                    .history
                    .get(&stored.seq)
                    .cloned()
                    .ok_or_else(|| WalletError::Internal("a completion left no history".into()))
            }
            ReplyOutcome::Refused(event, error) => {
                self.commit(event)?;
                Err(error)
            }
        }
    }
}

/// The events that save `requests` (section 7), at `now`.
fn saved(requests: Vec<SavedRequest>, now: UnixSecs) -> Vec<NewEvent<WalletEvent>> {
    requests
        .into_iter()
        .map(|request| {
            NewEvent::new(
                now.to_millis(),
                request.tx(),
                WalletEvent::RequestSaved { request },
            )
        })
        .collect()
}

/// The state the log folds to.
fn replay(log: &EventLog<WalletEvent>) -> Result<WalletState, WalletError> {
    let mut state = WalletState::default();
    for event in log.iter()? {
        state.apply(&event?).map_err(|e| {
            WalletError::Log(shared::events::LogError::Projection {
                seq: e.seq,
                source: shared::events::ProjectionError::Invariant(e.reason),
            })
        })?;
    }
    Ok(state)
}
