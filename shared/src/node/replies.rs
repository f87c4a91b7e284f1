//! Stored replies for idempotency (protocol.md section 7).
//!
//! Every request is idempotent per (sender, tx, label). With the reply a node stores the
//! request digest (section 7: over the header and the verified bodies, not over signatures,
//! seals or IdProofs, so a retry that re-signs and re-seals the same content matches). A
//! repeat with the same digest gets the stored frame bytes, byte for byte, and appends no
//! event; the same key with another digest is refused with `TxReused`. Only requests that
//! were acted on (an event appended) have a stored reply: a refusal changes nothing, so a
//! repeat of a refused request is simply decided again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{TxId, Uid};
use crate::wire::{Header, Label};

use super::Refusal;

/// (sender, tx, label): the key of a request (protocol.md section 7). Ordered so that the
/// table iterates deterministically (its projection rows are written in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplyKey {
    /// Who sent the request; a stored reply goes back only to them.
    pub sender: Uid,
    /// The request's tx.
    pub tx: TxId,
    /// The request's label.
    pub label: Label,
}

impl ReplyKey {
    /// The key of the request with `header`.
    #[must_use]
    pub const fn of(header: &Header) -> ReplyKey {
        ReplyKey {
            sender: header.sender,
            tx: header.tx,
            label: header.label,
        }
    }
}

/// A reply as stored: the request digest and the encoded reply frame, as sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReply {
    /// The request digest (section 7).
    pub digest: Vec<u8>,
    /// The encoded reply frame (signed, and sealed to the requester where section 6 says).
    pub frame: Vec<u8>,
}

/// What [`Replies::lookup`] found (protocol.md section 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Never answered: decide it.
    New,
    /// Answered before with the same digest: send these stored bytes again, append nothing.
    Repeat(&'a StoredReply),
    /// Answered before with another digest: refuse with `TxReused`, change nothing.
    TxReused,
}

impl Lookup<'_> {
    /// The `TxReused` refusal for this outcome, if it is one.
    pub fn refuse_reuse(&self) -> Result<(), Refusal> {
        match self {
            Lookup::TxReused => Err(Refusal::new(
                ErrorCode::TxReused,
                "this tx and label were already used for another request",
            )),
            Lookup::New | Lookup::Repeat(_) => Ok(()),
        }
    }
}

/// The stored replies (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replies {
    rows: BTreeMap<ReplyKey, StoredReply>,
}

impl Replies {
    /// An empty table.
    #[must_use]
    pub fn new() -> Replies {
        Replies::default()
    }

    /// The section 7 lookup of the request `key` whose digest is `digest`.
    #[must_use]
    pub fn lookup(&self, key: &ReplyKey, digest: &[u8]) -> Lookup<'_> {
        match self.rows.get(key) {
            None => Lookup::New,
            Some(stored) if stored.digest == digest => Lookup::Repeat(stored),
            Some(_) => Lookup::TxReused,
        }
    }

    /// The stored reply of `key`.
    #[must_use]
    pub fn get(&self, key: &ReplyKey) -> Option<&StoredReply> {
        self.rows.get(key)
    }

    /// Stores the reply to `key`. Called by `apply` only. A key is answered once: a second
    /// store under the same key is an invariant violation (`decide` returned the stored
    /// reply instead) and panics in debug builds; the first reply is kept.
    pub fn store(&mut self, key: ReplyKey, reply: StoredReply) {
        debug_assert!(
            !self.rows.contains_key(&key),
            "reply to {key:?} stored twice"
        );
        self.rows.entry(key).or_insert(reply);
    }

    /// Every stored reply, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&ReplyKey, &StoredReply)> {
        self.rows.iter()
    }

    /// The number of stored replies.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether none is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(label: Label) -> ReplyKey {
        ReplyKey {
            sender: Uid([1; 16]),
            tx: TxId([2; 16]),
            label,
        }
    }

    #[test]
    fn new_repeat_and_reuse() {
        let mut r = Replies::new();
        let k = key(Label::BrokerScripRequest);
        assert_eq!(r.lookup(&k, b"d1"), Lookup::New);
        assert_eq!(r.lookup(&k, b"d1").refuse_reuse(), Ok(()));
        let stored = StoredReply {
            digest: b"d1".to_vec(),
            frame: vec![7, 7, 7],
        };
        r.store(k, stored.clone());
        assert_eq!(r.lookup(&k, b"d1"), Lookup::Repeat(&stored));
        assert_eq!(r.lookup(&k, b"d2"), Lookup::TxReused);
        assert_eq!(
            r.lookup(&k, b"d2").refuse_reuse().map_err(|e| e.code),
            Err(ErrorCode::TxReused)
        );
        // Another label, or another sender, is another request.
        assert_eq!(r.lookup(&key(Label::BrokerScripTopUp), b"d1"), Lookup::New);
        let other = ReplyKey {
            sender: Uid([3; 16]),
            ..k
        };
        assert_eq!(r.lookup(&other, b"d1"), Lookup::New);
        assert_eq!(r.get(&k), Some(&stored));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn key_of_a_header() {
        let h = Header::new(
            crate::Suite::Modern,
            Label::RenewRequest,
            TxId([5; 16]),
            Uid([6; 16]),
        );
        assert_eq!(
            ReplyKey::of(&h),
            ReplyKey {
                sender: Uid([6; 16]),
                tx: TxId([5; 16]),
                label: Label::RenewRequest
            }
        );
    }
}
