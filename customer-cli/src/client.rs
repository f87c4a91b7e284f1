//! The wallet's async driver on a [`Bus`] (architecture.md "Transport"; protocol.md
//! sections 3 and 7).
//!
//! - [`Client::send`] sends a request the wallet saved (`RequestSaved`) to the node it is
//!   addressed to (`Subjects::broker()`, or `Subjects::merchant(uid)` for a producer in 6.8
//!   and 6.3) and waits for the reply with a timeout. With no reply it sends the same
//!   request again ([`Wallet::resend`]: the saved bodies byte for byte, so the same request
//!   digest, which the node answers with its stored reply if the first one got through,
//!   section 7), up to [`Client::attempts`] times. The reply goes to
//!   [`Wallet::handle_reply`], which checks and records it.
//! - A node that cannot write its log answers the unsigned `Error { Unavailable }`
//!   (protocol.md section 10): no decision, only "repeat". The client sends the same
//!   request again after a growing pause ([`UNAVAILABLE_PAUSE`] first), like a lost reply.
//!   So it does on the unsigned `Error { TooManyRequests }` of a node's quota.
//! - So does an `Error` whose `re` names the request with an empty digest: the node could
//!   not verify it (e.g. `UnknownPeer`, a merchant that cannot learn the customer's key
//!   while the broker is unreachable; protocol.md section 3: "repeat or give up").
//! - After the last attempt the request stays pending in the wallet, so it can be repeated
//!   later (also after a restart) and its outcome is never guessed.
//! - [`Client::subscribe_deliveries`] subscribes to the wallet's peer subject: done
//!   *before* the first request of a three-party transaction, so no delivery can be missed;
//!   [`collect_deliveries`] then waits for every expected delivery until a deadline.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use shared::UnixSecs;
use shared::bus::{Bus, BusError, Subject, Subjects};
use shared::node::{is_repeat_later, is_unavailable};
use shared::runtime::Backoff;
use shared::wire::Label;
use shared::{TxId, Uid};

use crate::core::HistoryEntry;
use crate::{Outgoing, Wallet, WalletError};

/// Why [`Client::send`] produced no recorded outcome.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No reply after every attempt. The request is still pending in the wallet: repeat it
    /// later; it is never assumed to have failed (section 7).
    #[error("no reply to {label:?} of tx {tx} after {attempts} attempts: {last}")]
    NoReply {
        /// The transaction.
        tx: TxId,
        /// The request's label.
        label: Label,
        /// How many times it was sent.
        attempts: u32,
        /// The last transport error.
        #[source]
        last: BusError,
    },
    /// The node answered `Unavailable` to every attempt: it cannot write its log now
    /// (protocol.md section 10). The request is still pending in the wallet: repeat it
    /// later.
    #[error(
        "{label:?} of tx {tx}: the node cannot write its log now (Unavailable) after {attempts} attempts"
    )]
    Unavailable {
        /// The transaction.
        tx: TxId,
        /// The request's label.
        label: Label,
        /// How many times it was sent.
        attempts: u32,
    },
    /// The node answered `TooManyRequests` to every attempt: this wallet is over one of its
    /// quotas (protocol.md section 10). Nothing was recorded; the request is still pending
    /// in the wallet: repeat it later.
    #[error(
        "{label:?} of tx {tx}: the node refused it as over its quota (TooManyRequests) after {attempts} attempts"
    )]
    OverQuota {
        /// The transaction.
        tx: TxId,
        /// The request's label.
        label: Label,
        /// How many times it was sent.
        attempts: u32,
    },
    /// The bus refused to send at all (too large, closed): retrying cannot help.
    #[error(transparent)]
    Bus(BusError),
    /// The wallet refused the reply or recorded a refusal ([`WalletError::Refused`]).
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

/// The first pause before a request answered `Unavailable` is sent again; it doubles up to
/// the client's timeout. A node down after a storage fault tries to recover once a second
/// (`shared::node::RETRY_AFTER_SECS`).
pub const UNAVAILABLE_PAUSE: Duration = Duration::from_millis(500);

/// The wallet's transport (see the module doc). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client<B: Bus> {
    bus: B,
    subjects: Subjects,
    broker: Uid,
    timeout: Duration,
    attempts: u32,
}

impl<B: Bus> Client<B> {
    /// A client talking to the broker `broker` over `bus`, waiting `timeout` for each
    /// reply and sending each request at most `attempts` times (at least once).
    pub fn new(bus: B, subjects: Subjects, broker: Uid, timeout: Duration, attempts: u32) -> Self {
        Client {
            bus,
            subjects,
            broker,
            timeout,
            attempts: attempts.max(1),
        }
    }

    /// How many times a request is sent before [`ClientError::NoReply`].
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The subject of the node `to`: the broker's, or the merchant's.
    #[must_use]
    pub fn subject_of(&self, to: Uid) -> Subject {
        if to == self.broker {
            self.subjects.broker()
        } else {
            self.subjects.merchant(&to)
        }
    }

    /// Sends `out` (just saved by the wallet) and records its reply at `now`; see the
    /// module doc for the retries. A refusal is `Err(ClientError::Wallet(Refused))`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn send(
        &self,
        wallet: &mut Wallet,
        out: Outgoing,
        now: UnixSecs,
    ) -> Result<HistoryEntry, ClientError> {
        let mut saved = Saved {
            wallet,
            out: &out,
            now,
        };
        self.request(&out, &mut saved).await
    }

    /// Sends a read-only query (`TransactionStatus`, section 7; `CatalogueRequest`,
    /// docs/adr/0009) and returns the raw answer, for [`Wallet::handle_status`] or
    /// [`Wallet::handle_catalogue`] to check. Nothing is saved, so a lost answer is simply
    /// asked for again: the same frame, up to [`Client::attempts`] times.
    ///
    /// # Errors
    /// [`ClientError::NoReply`] or [`ClientError::Unavailable`] after the last attempt,
    /// [`ClientError::Bus`] if the bus refused to send.
    pub async fn ask(&self, out: &Outgoing) -> Result<Bytes, ClientError> {
        let mut query = Query(Bytes::from(out.frame.clone()));
        self.request(out, &mut query).await
    }

    /// Sends `attempts`' frame to `out`'s node until it takes an answer, at most
    /// [`Client::attempts`] times (the module doc: a lost reply is repeated at once; an
    /// `Unavailable`, or an answer the request asks to repeat, after a growing pause).
    async fn request<A: Attempt>(
        &self,
        out: &Outgoing,
        attempts: &mut A,
    ) -> Result<A::Done, ClientError> {
        let subject = self.subject_of(out.to);
        let mut backoff = Backoff::new(UNAVAILABLE_PAUSE, self.timeout);
        let mut attempt = 1;
        loop {
            let frame = attempts.frame(attempt)?;
            let (failed, pause) = match self.bus.request(&subject, frame, self.timeout).await {
                Ok(reply) if is_repeat_later(&reply, out.to, out.tx) => {
                    let (tx, label, attempts) = (out.tx, out.label, attempt);
                    let e = if is_unavailable(&reply, out.to, out.tx) {
                        ClientError::Unavailable {
                            tx,
                            label,
                            attempts,
                        }
                    } else {
                        ClientError::OverQuota {
                            tx,
                            label,
                            attempts,
                        }
                    };
                    (e, true)
                }
                Ok(reply) => match attempts.answer(&reply)? {
                    Answer::Done(done) => return Ok(done),
                    Answer::Repeat(e) => (e, true),
                },
                Err(e @ (BusError::Timeout | BusError::NoResponders)) => {
                    let e = ClientError::NoReply {
                        tx: out.tx,
                        label: out.label,
                        attempts: attempt,
                        last: e,
                    };
                    (e, false)
                }
                Err(e) => return Err(ClientError::Bus(e)),
            };
            if attempt >= self.attempts {
                return Err(failed);
            }
            if pause {
                tokio::time::sleep(backoff.pause()).await;
            }
            attempt += 1;
        }
    }

    /// Hands a saved request to its node one way (no reply subject): for a step whose answer
    /// comes later as a delivery on the wallet's peer subject (6.2 step 2: the merchant
    /// answers once the broker decided). Repeat it with [`Wallet::resend`] if the delivery
    /// does not come by its deadline, or ask `TransactionStatus`.
    ///
    /// Returns once the server has the frame ([`Bus::flush`]): a one-way step has no reply
    /// to show it left, and a caller that exits or blocks next must not leave it in the
    /// connection's buffer.
    ///
    /// # Errors
    /// As [`Bus::publish`] and [`Bus::flush`].
    pub async fn publish(&self, out: &Outgoing) -> Result<(), BusError> {
        self.bus
            .publish(&self.subject_of(out.to), Bytes::from(out.frame.clone()))
            .await?;
        self.bus.flush().await
    }

    /// Subscribes to the wallet `me`'s peer subject; active when this returns. Call it
    /// before the first request of a transaction with deliveries.
    ///
    /// # Errors
    /// As [`Bus::subscribe`].
    pub async fn subscribe_deliveries(&self, me: &Uid) -> Result<B::Subscription, BusError> {
        self.bus.subscribe(&self.subjects.peer(me)).await
    }
}

/// One kind of request as [`Client::request`] repeats it: the frame of each attempt, and
/// what an answer means.
trait Attempt {
    /// What a taken answer gives.
    type Done;
    /// The frame of attempt `attempt` (from 1).
    fn frame(&mut self, attempt: u32) -> Result<Bytes, ClientError>;
    /// The answer taken, or to be repeated.
    fn answer(&mut self, reply: &Bytes) -> Result<Answer<Self::Done>, ClientError>;
}

/// What an answer means to its request.
enum Answer<T> {
    /// Taken.
    Done(T),
    /// No decision: repeat the request (why, if it was the last attempt).
    Repeat(ClientError),
}

/// A request the wallet saved: each repeat is its saved bodies ([`Wallet::resend`]), and
/// its answer is recorded by [`Wallet::handle_reply`].
struct Saved<'a> {
    wallet: &'a mut Wallet,
    out: &'a Outgoing,
    now: UnixSecs,
}

impl Attempt for Saved<'_> {
    type Done = HistoryEntry;

    fn frame(&mut self, attempt: u32) -> Result<Bytes, ClientError> {
        if attempt == 1 {
            Ok(Bytes::from(self.out.frame.clone()))
        } else {
            let again = self.wallet.resend(self.out.tx, self.out.label)?;
            Ok(Bytes::from(again.frame))
        }
    }

    fn answer(&mut self, reply: &Bytes) -> Result<Answer<HistoryEntry>, ClientError> {
        match self.wallet.handle_reply(reply, self.now) {
            // The node could not verify the request (protocol.md section 3): no decision,
            // only "repeat", like `Unavailable`.
            Err(e @ WalletError::NotVerified { .. }) => Ok(Answer::Repeat(e.into())),
            outcome => Ok(Answer::Done(outcome?)),
        }
    }
}

/// A read-only query: the same frame each time, its answer returned as it came.
struct Query(Bytes);

impl Attempt for Query {
    type Done = Bytes;

    fn frame(&mut self, _: u32) -> Result<Bytes, ClientError> {
        Ok(self.0.clone())
    }

    fn answer(&mut self, reply: &Bytes) -> Result<Answer<Bytes>, ClientError> {
        Ok(Answer::Done(reply.clone()))
    }
}

/// Takes deliveries from `subscription` until `expected` arrived or `deadline` passed
/// (protocol.md section 7: a party waits for what it expects with a deadline, then asks
/// `TransactionStatus`). Returns what arrived, in order; fewer than `expected` means the
/// deadline passed or the subscription ended.
pub async fn collect_deliveries<B, S>(
    subscription: &mut S,
    expected: usize,
    deadline: Duration,
) -> Vec<Bytes>
where
    B: Bus,
    S: futures::Stream<Item = shared::bus::Incoming<B>> + Unpin,
{
    let mut got = Vec::with_capacity(expected);
    let until = tokio::time::Instant::now() + deadline;
    while got.len() < expected {
        match tokio::time::timeout_at(until, subscription.next()).await {
            Ok(Some(incoming)) => got.push(incoming.into_payload()),
            Ok(None) | Err(_) => break,
        }
    }
    got
}
