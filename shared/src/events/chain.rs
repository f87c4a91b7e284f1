//! The hash chain over a log (protocol.md section 8: "the hash of the previous event").
//!
//! Each stored event carries `prev_hash`, the SHA-256 of the previous event's stored bytes
//! (its postcard encoding); the first event (seq 1) carries 32 zero bytes. The log's `meta`
//! table records the head: the last seq and its hash. Always SHA-256, whatever the suite:
//! the log is local storage, not a protocol primitive, and a chain needs the collision
//! resistance SHA-1 lacks.
//!
//! Verification ([`crate::events::EventLog::verify_chain`], and every replay) walks the
//! stored rows in seq order, one at a time (a log of a million events is never loaded at
//! once), and names the event that was altered, removed or moved:
//!
//! - a row that does not decode, or decodes but is not the canonical encoding of what it
//!   decodes to, is named itself;
//! - a row whose `seq` field is not its key (two events swapped, a row copied) is named;
//! - a seq with no row, below the head, is named as missing;
//! - a broken link (`prev_hash` of k ≠ hash of k−1) has two single-fault explanations:
//!   k−1's bytes changed, or k's `prev_hash` changed. The next link decides: if k's own hash
//!   still matches what k+1 (or the head) recorded, k−1 was altered; otherwise k was.

use sha2::{Digest, Sha256};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::events::envelope::{ChainHash, Event};

/// The seq of the first event of every log.
pub const FIRST_SEQ: u64 = 1;

/// The `prev_hash` of the first event: 32 zero bytes.
pub const GENESIS_PREV_HASH: ChainHash = [0; 32];

/// SHA-256 of a stored event's bytes: the link to the next event.
#[must_use]
pub fn hash_bytes(bytes: &[u8]) -> ChainHash {
    Sha256::digest(bytes).into()
}

impl<K: serde::Serialize> Event<K> {
    /// This event's chain hash: SHA-256 of [`Event::encode`]. Here, with the chain's rules,
    /// so that the envelope does not depend on the chain that links it.
    pub fn chain_hash(&self) -> Result<ChainHash, postcard::Error> {
        self.encode().map(|bytes| hash_bytes(&bytes))
    }
}

/// What is wrong with the event a chain error names (protocol.md section 8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The stored bytes do not decode as an event.
    #[error("stored bytes do not decode: {0}")]
    Undecodable(postcard::Error),
    /// The stored bytes decode, but are not the encoding of the event they decode to.
    #[error("stored bytes are not the canonical encoding of the event")]
    NonCanonical,
    /// The event stored under this seq says it is another seq: rows were swapped or copied.
    #[error("the event stored here says it is seq {found}")]
    SeqMismatch {
        /// The seq field of the stored event.
        found: u64,
    },
    /// No event is stored under this seq, though later events or the head say it exists.
    #[error("the event is missing")]
    Missing,
    /// An event is stored past the head the log's meta table records.
    #[error("the event lies beyond the recorded head")]
    BeyondHead,
    /// The event's bytes no longer hash to what the next event (or the head) recorded.
    #[error("the event's hash does not match the next link")]
    HashMismatch,
    /// The event's `prev_hash` is not its predecessor's hash.
    #[error("the event's prev_hash does not match its predecessor")]
    PrevHashMismatch,
}

/// A verified chain: how many events, and the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainReport {
    /// Number of events (the last seq: seqs start at 1 without gaps).
    pub events: u64,
    /// The last seq and its hash; `None` for an empty log.
    pub head: Option<(u64, ChainHash)>,
}

/// A chain that does not verify: the seq it names and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "io"), allow(dead_code))]
pub(crate) struct Break {
    pub seq: u64,
    pub reason: ChainBreak,
}

/// What the verifier needs of one stored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "io"), allow(dead_code))]
pub(crate) struct RowFacts {
    /// The `seq` field inside the event.
    pub seq: u64,
    /// The `prev_hash` field inside the event.
    pub prev_hash: ChainHash,
    /// The hash of the stored bytes.
    pub hash: ChainHash,
}

/// Decodes one stored row and checks it is canonical, returning the event and its facts.
#[cfg_attr(not(feature = "io"), allow(dead_code))]
pub(crate) fn examine<K: Serialize + DeserializeOwned>(
    bytes: &[u8],
) -> Result<(Event<K>, RowFacts), ChainBreak> {
    let event = Event::<K>::decode(bytes).map_err(ChainBreak::Undecodable)?;
    match event.encode() {
        Ok(again) if again == bytes => {}
        _ => return Err(ChainBreak::NonCanonical),
    }
    let facts = RowFacts {
        seq: event.seq,
        prev_hash: event.prev_hash,
        hash: hash_bytes(bytes),
    };
    Ok((event, facts))
}

/// Walks stored rows in key order and names the first fault (see the module doc).
#[derive(Debug)]
#[cfg_attr(not(feature = "io"), allow(dead_code))]
pub(crate) struct ChainVerifier {
    /// The key the next row must have.
    next_seq: u64,
    /// Hash of the last row accepted (the genesis value before any).
    last_hash: ChainHash,
    /// A seq k ≥ 2 whose incoming link is broken, waiting for its outgoing link to decide
    /// whether k−1 or k was altered.
    suspect: Option<u64>,
}

// The verifier is pure; the log (feature `io`) is what runs it.
#[cfg_attr(not(feature = "io"), allow(dead_code))]
impl ChainVerifier {
    pub(crate) fn new() -> Self {
        ChainVerifier {
            next_seq: FIRST_SEQ,
            last_hash: GENESIS_PREV_HASH,
            suspect: None,
        }
    }

    /// Takes the next stored row, which [`examine`] found sound: its key and facts.
    pub(crate) fn push(&mut self, key: u64, facts: RowFacts) -> Result<(), Break> {
        if key != self.next_seq {
            return Err(self.blame(self.next_seq, ChainBreak::Missing));
        }
        if facts.seq != key {
            return Err(self.blame(key, ChainBreak::SeqMismatch { found: facts.seq }));
        }
        let link_holds = facts.prev_hash == self.last_hash;
        if let Some(suspect) = self.suspect {
            return Err(Self::decide(suspect, link_holds));
        }
        if !link_holds {
            if key == FIRST_SEQ {
                // No predecessor whose bytes could have changed: the field itself did.
                return Err(Break {
                    seq: key,
                    reason: ChainBreak::PrevHashMismatch,
                });
            }
            self.suspect = Some(key);
        }
        self.last_hash = facts.hash;
        self.next_seq = key.saturating_add(1);
        Ok(())
    }

    /// The fault to report for the next stored row, under `key`, which [`examine`] refused.
    pub(crate) fn reject(&self, key: u64, reason: ChainBreak) -> Break {
        if key == self.next_seq {
            self.blame(key, reason)
        } else {
            self.blame(self.next_seq, ChainBreak::Missing)
        }
    }

    /// Checks the rows seen against the head recorded in meta, and reports.
    pub(crate) fn finish(self, head: Option<(u64, ChainHash)>) -> Result<ChainReport, Break> {
        let last = self.next_seq - FIRST_SEQ;
        let Some((head_seq, head_hash)) = head else {
            if last == 0 {
                return Ok(ChainReport {
                    events: 0,
                    head: None,
                });
            }
            return Err(self.blame(FIRST_SEQ, ChainBreak::BeyondHead));
        };
        if head_seq > last {
            return Err(self.blame(self.next_seq, ChainBreak::Missing));
        }
        if head_seq < last {
            return Err(self.blame(head_seq.saturating_add(1), ChainBreak::BeyondHead));
        }
        let link_holds = head_hash == self.last_hash;
        if let Some(suspect) = self.suspect {
            return Err(Self::decide(suspect, link_holds));
        }
        if !link_holds {
            return Err(Break {
                seq: last,
                reason: ChainBreak::HashMismatch,
            });
        }
        Ok(ChainReport {
            events: last,
            head: Some((last, head_hash)),
        })
    }

    /// The suspect's incoming link is broken; `outgoing_holds` says whether its own hash still
    /// matches the next link. If it does, its predecessor changed; if not, it did.
    fn decide(suspect: u64, outgoing_holds: bool) -> Break {
        if outgoing_holds {
            Break {
                seq: suspect - 1,
                reason: ChainBreak::HashMismatch,
            }
        } else {
            Break {
                seq: suspect,
                reason: ChainBreak::PrevHashMismatch,
            }
        }
    }

    /// A fault found at `seq`; an earlier broken link, still undecided, is reported first
    /// (a second fault means more than one event was touched: name the earliest link).
    fn blame(&self, seq: u64, reason: ChainBreak) -> Break {
        match self.suspect {
            Some(suspect) => Break {
                seq: suspect,
                reason: ChainBreak::PrevHashMismatch,
            },
            None => Break { seq, reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::events::envelope::NewEvent;
    use crate::events::posting::{Account, Posting};
    use crate::ids::TxId;
    use serde::Deserialize;

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    enum Kind {
        Moved { note: String },
    }

    /// Five chained events as the log would store them, and the head.
    /// Stored rows: (key, bytes).
    type StoredRows = Vec<(u64, Vec<u8>)>;

    fn chain() -> (StoredRows, (u64, ChainHash)) {
        let mut rows = Vec::new();
        let mut prev = GENESIS_PREV_HASH;
        for seq in 1..=5u64 {
            let amount = Amount::from_minor(seq * 100);
            let bytes = NewEvent::new(
                crate::UnixSecs::new(seq).to_millis(),
                TxId([u8::try_from(seq).unwrap(); 16]),
                Kind::Moved {
                    note: format!("event {seq}"),
                },
            )
            .with_postings(vec![
                Posting::decrease(Account::External, amount),
                Posting::increase(Account::FloatBroker, amount),
            ])
            .into_event(seq, prev)
            .encode()
            .unwrap();
            prev = hash_bytes(&bytes);
            rows.push((seq, bytes));
        }
        (rows, (5, prev))
    }

    fn verify(
        rows: &[(u64, Vec<u8>)],
        head: Option<(u64, ChainHash)>,
    ) -> Result<ChainReport, Break> {
        let mut verifier = ChainVerifier::new();
        for (key, bytes) in rows {
            match examine::<Kind>(bytes) {
                Ok((_, facts)) => verifier.push(*key, facts)?,
                Err(reason) => return Err(verifier.reject(*key, reason)),
            }
        }
        verifier.finish(head)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (rows, head) = chain();
        assert_eq!(
            verify(&rows, Some(head)),
            Ok(ChainReport {
                events: 5,
                head: Some(head)
            })
        );
        assert_eq!(
            verify(&[], None),
            Ok(ChainReport {
                events: 0,
                head: None
            })
        );
    }

    /// Every single-byte change of the first, a middle and the last event names that event,
    /// whichever field it lands in.
    #[test]
    fn every_flipped_byte_names_its_event() {
        let (rows, head) = chain();
        for target in [1usize, 3, 5] {
            let len = rows[target - 1].1.len();
            for pos in 0..len {
                for mask in [0x01u8, 0x80, 0xff] {
                    let mut tampered = rows.clone();
                    tampered[target - 1].1[pos] ^= mask;
                    let broken = verify(&tampered, Some(head)).unwrap_err();
                    assert_eq!(
                        broken.seq, target as u64,
                        "event {target}, byte {pos}, mask {mask:#x}: {broken:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_changed_prev_hash_is_named_with_its_reason() {
        let (mut rows, head) = chain();
        // prev_hash of event 3 starts after seq (1), time (2) and tx (16).
        rows[2].1[19] ^= 1;
        assert_eq!(
            verify(&rows, Some(head)),
            Err(Break {
                seq: 3,
                reason: ChainBreak::PrevHashMismatch
            })
        );
    }

    #[test]
    fn a_deleted_event_is_named_missing() {
        let (rows, head) = chain();
        for gone in [1usize, 3, 5] {
            let mut tampered = rows.clone();
            tampered.remove(gone - 1);
            assert_eq!(
                verify(&tampered, Some(head)),
                Err(Break {
                    seq: gone as u64,
                    reason: ChainBreak::Missing
                }),
                "deleted {gone}"
            );
        }
    }

    #[test]
    fn swapped_events_are_named() {
        let (mut rows, head) = chain();
        let (a, b) = (rows[1].1.clone(), rows[3].1.clone());
        rows[1].1 = b;
        rows[3].1 = a;
        assert_eq!(
            verify(&rows, Some(head)),
            Err(Break {
                seq: 2,
                reason: ChainBreak::SeqMismatch { found: 4 }
            })
        );
    }

    #[test]
    fn the_head_must_match_the_last_event() {
        let (rows, (seq, hash)) = chain();
        let mut other = hash;
        other[0] ^= 1;
        assert_eq!(
            verify(&rows, Some((seq, other))),
            Err(Break {
                seq: 5,
                reason: ChainBreak::HashMismatch
            })
        );
        assert_eq!(
            verify(&rows, Some((4, hash))),
            Err(Break {
                seq: 5,
                reason: ChainBreak::BeyondHead
            })
        );
        assert_eq!(
            verify(&rows, None),
            Err(Break {
                seq: 1,
                reason: ChainBreak::BeyondHead
            })
        );
        assert_eq!(
            verify(&rows, Some((6, hash))),
            Err(Break {
                seq: 6,
                reason: ChainBreak::Missing
            })
        );
    }

    #[test]
    fn a_row_with_trailing_bytes_is_named() {
        let (mut rows, head) = chain();
        rows[3].1.push(0);
        assert_eq!(
            verify(&rows, Some(head)),
            Err(Break {
                seq: 4,
                reason: ChainBreak::Undecodable(postcard::Error::DeserializeBadEncoding)
            })
        );
    }

    #[test]
    fn a_non_canonical_row_is_named() {
        let (mut rows, head) = chain();
        // seq 2 as the overlong varint 0x82 0x00 decodes to 2 but is not canonical.
        let mut bytes = vec![0x82, 0x00];
        bytes.extend_from_slice(&rows[1].1[1..]);
        rows[1].1 = bytes;
        assert_eq!(
            verify(&rows, Some(head)),
            Err(Break {
                seq: 2,
                reason: ChainBreak::NonCanonical
            })
        );
    }
}
