//! Quotas (protocol.md section 10, "Quotas per verified peer"): what one peer may make a
//! node spend and hold, so that any registered customer, or anyone who can publish on a
//! node's subject, cannot stall it or grow its log without bound.
//!
//! Two kinds, checked at two places:
//!
//! - a **rate** ([`RateLimiter`]): the requests a sender may have opened per second, a
//!   token bucket per known sender, and one shared bucket for every sender the node does
//!   not know (a registration at the broker: its sender is new by definition). The driver
//!   checks it from the frame's header, before any private-key operation (section 10,
//!   "Cheap checks first"). It lives in memory only: it records nothing, so a restart
//!   forgets it and replay is untouched;
//! - **open transactions** ([`OpenTxs`]): the transactions a peer has open with the node,
//!   by kind (6.2 exchanges, 6.5 and 6.7 escrows, 6.3 announcements). A core checks them
//!   in `decide`, against its state, before anything is recorded. They are derived from
//!   the log by the state's fold, so replay rebuilds them exactly.
//!
//! Over either, the frame is refused `TooManyRequests`, unsigned (section 3), and nothing
//! is recorded. The defaults are far above an honest wallet's use: a wallet has one
//! request in flight at a time.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{TxId, Uid};
use crate::time::UnixSecs;

use super::Refusal;

/// The quotas of one node (the `[quotas]` section of its configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    /// Requests a known sender may have served per second, on average.
    pub requests_per_sec: u32,
    /// Requests a known sender may send at once, above its rate.
    pub burst: u32,
    /// Requests per second shared by every sender the node does not know yet
    /// (registrations at the broker): each costs a private-key decryption.
    pub strangers_per_sec: u32,
    /// The strangers' burst.
    pub strangers_burst: u32,
    /// 6.2 exchanges one customer may have open (at the broker: opened, no decision; at a
    /// merchant: asked of the broker, not answered).
    pub open_exchanges: u32,
    /// 6.5 and 6.7 escrows one customer may have open.
    pub open_escrows: u32,
    /// 6.3 announcements (`PurchaseInitiated`) one customer may have unmatched at the
    /// broker, made within the last [`PURCHASE_WINDOW_SECS`]; and reports
    /// (`PurchaseCompleted`) one merchant may have there ahead of their announcements.
    pub open_purchases: u32,
}

/// How long an unmatched 6.3 announcement counts against [`Quotas::open_purchases`]: an
/// announcement has no deadline of its own (a merchant may refuse the order and never
/// report it), so the cap counts only the recent ones, and an honest customer whose
/// purchases were refused is not shut out for ever.
pub const PURCHASE_WINDOW_SECS: u64 = 3600;

impl Quotas {
    /// The defaults: far above an honest wallet's use (one request in flight at a time).
    pub const DEFAULT: Quotas = Quotas {
        requests_per_sec: 100,
        burst: 400,
        strangers_per_sec: 20,
        strangers_burst: 100,
        open_exchanges: 32,
        open_escrows: 32,
        open_purchases: 256,
    };
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas::DEFAULT
    }
}

/// The message of every quota refusal.
pub const TOO_MANY_REQUESTS_MESSAGE: &str = "over this node's quota; repeat later";

/// The refusal of a frame over a quota (sent unsigned, section 3).
#[must_use]
pub fn too_many_requests() -> Refusal {
    Refusal::new(ErrorCode::TooManyRequests, TOO_MANY_REQUESTS_MESSAGE)
}

/// A token bucket refilled once a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    tokens: u64,
    at: UnixSecs,
}

impl Bucket {
    fn full(burst: u32, now: UnixSecs) -> Bucket {
        Bucket {
            tokens: u64::from(burst),
            at: now,
        }
    }

    fn refill(&mut self, per_sec: u32, burst: u32, now: UnixSecs) {
        let elapsed = now.secs_since(self.at);
        if elapsed > 0 {
            self.tokens = self
                .tokens
                .saturating_add(elapsed.saturating_mul(u64::from(per_sec)))
                .min(u64::from(burst));
            self.at = now;
        }
    }

    fn take(&mut self, per_sec: u32, burst: u32, now: UnixSecs) -> bool {
        self.refill(per_sec, burst, now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// Who a frame's sender is to the node, for its rate (section 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// A key the node does not know yet: shares the strangers' budget.
    Stranger,
    /// A registered peer whose key it knows: its own bucket.
    Peer,
    /// A party the node trusts by configuration (a merchant's pinned broker, the broker's
    /// operator): no rate. The broker relays its customers' 6.5 requests to a merchant at
    /// whatever rate they come, each already within its customer's quotas.
    Trusted,
}

/// How many buckets a [`RateLimiter`] keeps at least before it forgets the full ones.
const PRUNE_ABOVE: usize = 4096;

/// The request rate of each sender (see the module doc): one bucket per known sender, one
/// shared by the senders the node does not know.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    quotas: Quotas,
    known: HashMap<Uid, Bucket>,
    strangers: Option<Bucket>,
    /// The size at which the full buckets are next forgotten: twice what the last pruning
    /// kept (at least [`PRUNE_ABOVE`]), so that many senders active at once cost a
    /// pruning now and then, not a scan of the map per request.
    prune_at: usize,
}

impl RateLimiter {
    /// A limiter of `quotas`, every bucket full.
    #[must_use]
    pub fn new(quotas: Quotas) -> RateLimiter {
        RateLimiter {
            quotas,
            known: HashMap::new(),
            strangers: None,
            prune_at: PRUNE_ABOVE,
        }
    }

    /// Takes one request of `sender` (who it is to the node: `kind`) at `now`; `false`
    /// when it is over its rate and must be refused before any work.
    pub fn admit(&mut self, sender: Uid, kind: Sender, now: UnixSecs) -> bool {
        let q = self.quotas;
        if kind == Sender::Trusted {
            return true;
        }
        if kind == Sender::Stranger {
            return self
                .strangers
                .get_or_insert_with(|| Bucket::full(q.strangers_burst, now))
                .take(q.strangers_per_sec, q.strangers_burst, now);
        }
        if self.known.len() > self.prune_at {
            // A full bucket is the same as none: forget those, so the map holds only the
            // senders active in the last `burst / rate` seconds.
            self.known.retain(|_, b| {
                b.refill(q.requests_per_sec, q.burst, now);
                b.tokens < u64::from(q.burst)
            });
            self.prune_at = self.known.len().saturating_mul(2).max(PRUNE_ABOVE);
        }
        self.known
            .entry(sender)
            .or_insert_with(|| Bucket::full(q.burst, now))
            .take(q.requests_per_sec, q.burst, now)
    }
}

/// The kinds of transaction a peer may have open with a node (section 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpenKind {
    /// A 6.2 exchange.
    Exchange,
    /// A 6.5 or 6.7 escrow.
    Escrow,
    /// A 6.3 announcement not yet matched.
    Purchase,
}

/// The transactions each peer has open with a node, by kind, with when each opened: kept
/// by a state's fold from the log (so replay rebuilds it), read by `decide` to enforce
/// [`Quotas`]' caps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenTxs {
    by_peer: BTreeMap<(OpenKind, Uid), BTreeMap<TxId, UnixSecs>>,
}

impl OpenTxs {
    /// Records that `tx` of `peer` is open as `kind` since `at` (a repeat keeps the first
    /// time).
    pub fn open(&mut self, kind: OpenKind, peer: Uid, tx: TxId, at: UnixSecs) {
        self.by_peer
            .entry((kind, peer))
            .or_default()
            .entry(tx)
            .or_insert(at);
    }

    /// Records that `tx` of `peer` is no longer open as `kind`.
    pub fn close(&mut self, kind: OpenKind, peer: Uid, tx: &TxId) {
        if let Some(open) = self.by_peer.get_mut(&(kind, peer)) {
            open.remove(tx);
            if open.is_empty() {
                self.by_peer.remove(&(kind, peer));
            }
        }
    }

    /// Forgets `peer`'s open `kind` transactions opened before `before` (the
    /// announcements of 6.3, which have no deadline: see [`PURCHASE_WINDOW_SECS`]).
    pub fn forget_before(&mut self, kind: OpenKind, peer: Uid, before: UnixSecs) {
        if let Some(open) = self.by_peer.get_mut(&(kind, peer)) {
            open.retain(|_, at| *at >= before);
            if open.is_empty() {
                self.by_peer.remove(&(kind, peer));
            }
        }
    }

    /// How many `kind` transactions `peer` has open, counting only those opened at or
    /// after `since` when given.
    #[must_use]
    pub fn count(&self, kind: OpenKind, peer: Uid, since: Option<UnixSecs>) -> usize {
        self.by_peer
            .get(&(kind, peer))
            .map_or(0, |open| match since {
                None => open.len(),
                Some(since) => open.values().filter(|at| **at >= since).count(),
            })
    }

    /// Refuses a new `kind` transaction of `peer` at `now` when it already has its cap of
    /// `quotas` open (announcements: made within [`PURCHASE_WINDOW_SECS`]).
    ///
    /// # Errors
    /// [`too_many_requests`] at the cap.
    pub fn within(
        &self,
        quotas: &Quotas,
        kind: OpenKind,
        peer: Uid,
        now: UnixSecs,
    ) -> Result<(), Refusal> {
        let (cap, since) = match kind {
            OpenKind::Exchange => (quotas.open_exchanges, None),
            OpenKind::Escrow => (quotas.open_escrows, None),
            OpenKind::Purchase => (
                quotas.open_purchases,
                Some(now.saturating_sub_secs(PURCHASE_WINDOW_SECS)),
            ),
        };
        self.check(kind, peer, cap, since)
    }

    /// Refuses a new `kind` transaction of `peer` when it already has `cap` open (since
    /// `since`): `TooManyRequests` (section 10).
    ///
    /// # Errors
    /// [`too_many_requests`] at the cap.
    pub fn check(
        &self,
        kind: OpenKind,
        peer: Uid,
        cap: u32,
        since: Option<UnixSecs>,
    ) -> Result<(), Refusal> {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        if self.count(kind, peer, since) >= cap {
            Err(too_many_requests())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(n: u8) -> Uid {
        Uid([n; 16])
    }

    #[test]
    fn a_known_sender_gets_its_burst_then_its_rate() {
        let quotas = Quotas {
            requests_per_sec: 2,
            burst: 3,
            ..Quotas::default()
        };
        let mut limiter = RateLimiter::new(quotas);
        let t = UnixSecs::new(1_000);
        let admitted = (0..10)
            .filter(|_| limiter.admit(uid(1), Sender::Peer, t))
            .count();
        assert_eq!(admitted, 3, "the burst");
        assert!(
            limiter.admit(uid(2), Sender::Peer, t),
            "another sender has its own bucket"
        );
        let next = UnixSecs::new(1_001);
        let admitted = (0..10)
            .filter(|_| limiter.admit(uid(1), Sender::Peer, next))
            .count();
        assert_eq!(admitted, 2, "one second's rate");
        let later = UnixSecs::new(1_100);
        let admitted = (0..10)
            .filter(|_| limiter.admit(uid(1), Sender::Peer, later))
            .count();
        assert_eq!(admitted, 3, "refilled to the burst, never above it");
    }

    #[test]
    fn strangers_share_one_bucket() {
        let quotas = Quotas {
            strangers_per_sec: 1,
            strangers_burst: 2,
            ..Quotas::default()
        };
        let mut limiter = RateLimiter::new(quotas);
        let t = UnixSecs::new(5);
        assert!(limiter.admit(uid(1), Sender::Stranger, t));
        assert!(limiter.admit(uid(2), Sender::Stranger, t));
        assert!(
            !limiter.admit(uid(3), Sender::Stranger, t),
            "a new UID does not help"
        );
        assert!(
            limiter.admit(uid(1), Sender::Peer, t),
            "known senders are not strangers"
        );
        assert!(limiter.admit(uid(4), Sender::Stranger, UnixSecs::new(6)));
        assert!(
            (0..1_000).all(|_| limiter.admit(uid(5), Sender::Trusted, t)),
            "no rate for a trusted party"
        );
    }

    #[test]
    fn idle_senders_are_forgotten() {
        let mut limiter = RateLimiter::new(Quotas::default());
        let t = UnixSecs::new(10);
        for n in 0..=u16::try_from(PRUNE_ABOVE).unwrap() {
            let mut id = [0; 16];
            id[..2].copy_from_slice(&n.to_be_bytes());
            limiter.admit(Uid(id), Sender::Peer, t);
        }
        limiter.admit(uid(200), Sender::Peer, UnixSecs::new(100));
        assert!(limiter.known.len() <= 2, "{}", limiter.known.len());
    }

    /// Many senders active at once are kept, and the map is scanned again only once it
    /// has doubled: a pruning now and then, not one per request.
    #[test]
    fn many_active_senders_are_pruned_now_and_then() {
        let mut limiter = RateLimiter::new(Quotas::default());
        let t = UnixSecs::new(10);
        let active = PRUNE_ABOVE * 3;
        for n in 0..u32::try_from(active).unwrap() {
            let mut id = [0; 16];
            id[..4].copy_from_slice(&n.to_be_bytes());
            assert!(limiter.admit(Uid(id), Sender::Peer, t));
        }
        assert_eq!(limiter.known.len(), active, "no active sender is forgotten");
        // The last pruning kept everyone and moved the next one past the map's size.
        assert!(limiter.prune_at >= active, "{}", limiter.prune_at);
    }

    #[test]
    fn open_transactions_are_counted_per_peer_and_kind() {
        let mut open = OpenTxs::default();
        let t = UnixSecs::new(100);
        for n in 0..3 {
            open.open(OpenKind::Exchange, uid(1), TxId([n; 16]), t);
        }
        open.open(
            OpenKind::Exchange,
            uid(1),
            TxId([0; 16]),
            UnixSecs::new(200),
        );
        open.open(OpenKind::Escrow, uid(1), TxId([9; 16]), t);
        assert_eq!(open.count(OpenKind::Exchange, uid(1), None), 3);
        assert_eq!(open.count(OpenKind::Exchange, uid(2), None), 0);
        assert_eq!(
            open.check(OpenKind::Exchange, uid(1), 3, None),
            Err(too_many_requests())
        );
        assert_eq!(open.check(OpenKind::Exchange, uid(1), 4, None), Ok(()));
        open.close(OpenKind::Exchange, uid(1), &TxId([1; 16]));
        assert_eq!(open.check(OpenKind::Exchange, uid(1), 3, None), Ok(()));
        assert_eq!(
            open.count(OpenKind::Exchange, uid(1), Some(UnixSecs::new(101))),
            0,
            "a repeat keeps the first time"
        );
        open.forget_before(OpenKind::Exchange, uid(1), UnixSecs::new(101));
        assert_eq!(open.count(OpenKind::Exchange, uid(1), None), 0);
        assert_eq!(open, {
            let mut only_escrow = OpenTxs::default();
            only_escrow.open(OpenKind::Escrow, uid(1), TxId([9; 16]), t);
            only_escrow
        });
    }
}
