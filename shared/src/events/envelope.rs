//! The event envelope (protocol.md section 8): what every node's log stores, whatever the
//! node's own event kinds are.
//!
//! A caller builds a [`NewEvent`] (time, tx, postings, memos, evidence, kind); the log gives
//! it its sequence number and the hash of its predecessor and stores the resulting [`Event`]
//! as its postcard encoding.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::events::posting::Posting;
use crate::ids::{TxId, Uid};
use crate::time::UnixMillis;

/// A SHA-256 digest linking an event to its predecessor (see [`crate::events::chain`]).
pub type ChainHash = [u8; 32];

/// One signed part that justified an event (protocol.md section 8), kept so that anyone
/// holding the public keys can verify it again.
///
/// Raw bytes on purpose: the typed header lives in `wire`, and keeping exactly the bytes that
/// were signed is what makes re-verification possible. IdProof signatures are never kept
/// (the event records that the ID was verified), and bodies hold `cs_hash`, never a
/// CustomerSecret (protocol.md section 3), so evidence holds no secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Evidence {
    /// The exact `HeaderBytes` (protocol.md section 3, 36 bytes) the part was signed under;
    /// for a forwarded part, its origin header.
    pub header: Vec<u8>,
    /// The signed body, as signed.
    pub body: Vec<u8>,
    /// The signature over `SigInput(header, body)`.
    pub sig: Vec<u8>,
    /// The UID of the signer, whose public key verifies `sig`.
    pub signer: Uid,
}

/// An event as the caller proposes it, before the log numbers and chains it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent<K> {
    /// When it happened, given by the caller: `shared` reads no clock (protocol.md section
    /// 8). Encoded as its bare `u64`.
    pub time: UnixMillis,
    /// The transaction this event belongs to (protocol.md section 3).
    pub tx: TxId,
    /// Money moved; must balance (protocol.md section 5). Empty when no money moves.
    pub postings: Vec<Posting>,
    /// Memo postings (`memo float:vendor:M`), their own ledger, outside the zero sum.
    pub memos: Vec<Posting>,
    /// The signed parts that justified the event (protocol.md section 8).
    pub evidence: Vec<Evidence>,
    /// What happened, in the node's own terms.
    pub kind: K,
}

impl<K> NewEvent<K> {
    /// An event with no postings, memos or evidence.
    #[must_use]
    pub fn new(time: UnixMillis, tx: TxId, kind: K) -> Self {
        NewEvent {
            time,
            tx,
            postings: Vec::new(),
            memos: Vec::new(),
            evidence: Vec::new(),
            kind,
        }
    }

    /// With these postings.
    #[must_use]
    pub fn with_postings(mut self, postings: Vec<Posting>) -> Self {
        self.postings = postings;
        self
    }

    /// With these memo postings.
    #[must_use]
    pub fn with_memos(mut self, memos: Vec<Posting>) -> Self {
        self.memos = memos;
        self
    }

    /// With this evidence.
    #[must_use]
    pub fn with_evidence(mut self, evidence: Vec<Evidence>) -> Self {
        self.evidence = evidence;
        self
    }

    /// The stored event this becomes at `seq`, after the event whose hash is `prev_hash`.
    #[cfg_attr(not(feature = "io"), allow(dead_code))]
    pub(crate) fn into_event(self, seq: u64, prev_hash: ChainHash) -> Event<K> {
        Event {
            seq,
            time: self.time,
            tx: self.tx,
            prev_hash,
            postings: self.postings,
            memos: self.memos,
            evidence: self.evidence,
            kind: self.kind,
        }
    }
}

/// A stored event (protocol.md section 8). Fields are encoded in this order; the chain hash
/// covers all of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event<K> {
    /// Position in the log: the first event is 1, each next one is one more, no gaps.
    pub seq: u64,
    /// When it happened, as the caller gave it (protocol.md section 8).
    pub time: UnixMillis,
    /// The transaction this event belongs to.
    pub tx: TxId,
    /// SHA-256 of the previous event's encoding; all zeros for seq 1.
    pub prev_hash: ChainHash,
    /// Balanced postings (protocol.md section 5).
    pub postings: Vec<Posting>,
    /// Memo postings, outside the zero sum.
    pub memos: Vec<Posting>,
    /// The signed parts that justified the event.
    pub evidence: Vec<Evidence>,
    /// What happened, in the node's own terms.
    pub kind: K,
}

impl<K> Event<K> {
    /// The event as its writer proposed it, without its place in the chain: what a copy
    /// of the log appends to its own (a standby broker following the replicated log,
    /// docs/adr/0017), which numbers and chains it again to the same bytes.
    #[must_use]
    pub fn into_new(self) -> NewEvent<K> {
        NewEvent {
            time: self.time,
            tx: self.tx,
            postings: self.postings,
            memos: self.memos,
            evidence: self.evidence,
            kind: self.kind,
        }
    }
}

impl<K: Serialize> Event<K> {
    /// The event's postcard encoding: what the log stores and what the chain hash covers.
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }
}

impl<K: DeserializeOwned> Event<K> {
    /// Decodes a stored event, refusing trailing bytes (a stored row is exactly one event).
    pub fn decode(bytes: &[u8]) -> Result<Event<K>, postcard::Error> {
        let (event, rest) = postcard::take_from_bytes::<Event<K>>(bytes)?;
        if rest.is_empty() {
            Ok(event)
        } else {
            Err(postcard::Error::DeserializeBadEncoding)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::events::posting::Account;

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    enum Kind {
        Opened { note: String },
    }

    fn sample() -> Event<Kind> {
        NewEvent::new(
            UnixMillis::new(1_700_000_000_000),
            TxId([7; 16]),
            Kind::Opened { note: "hi".into() },
        )
        .with_postings(vec![
            Posting::decrease(Account::External, Amount::from_minor(5)),
            Posting::increase(Account::FloatBroker, Amount::from_minor(5)),
        ])
        .with_memos(vec![Posting::increase(
            Account::FloatVendor(Uid([2; 16])),
            Amount::from_minor(5),
        )])
        .with_evidence(vec![Evidence {
            header: vec![1; 36],
            body: vec![2, 3],
            sig: vec![4; 8],
            signer: Uid([9; 16]),
        }])
        .into_event(3, [0xee; 32])
    }

    #[test]
    fn encode_decode_round_trips() {
        let event = sample();
        let bytes = event.encode().unwrap();
        assert_eq!(Event::<Kind>::decode(&bytes), Ok(event.clone()));
        assert_eq!(
            event.chain_hash().unwrap(),
            crate::events::chain::hash_bytes(&bytes)
        );
    }

    #[test]
    fn decode_refuses_trailing_and_truncated_bytes() {
        let mut bytes = sample().encode().unwrap();
        bytes.push(0);
        assert_eq!(
            Event::<Kind>::decode(&bytes),
            Err(postcard::Error::DeserializeBadEncoding)
        );
        bytes.truncate(bytes.len() - 2);
        assert_eq!(
            Event::<Kind>::decode(&bytes),
            Err(postcard::Error::DeserializeUnexpectedEnd)
        );
    }

    /// The encoding is part of the chain: this fails if a field is added, removed or moved.
    #[test]
    fn encoding_starts_with_seq_time_tx_prev_hash() {
        let bytes = sample().encode().unwrap();
        assert_eq!(bytes[0], 3, "seq varint");
        // 1_700_000_000_000 as a LEB128 varint is six bytes.
        assert_eq!(bytes[1..7], [0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31]);
        assert_eq!(bytes[7..23], [7; 16]);
        assert_eq!(bytes[23..55], [0xee; 32]);
    }
}
