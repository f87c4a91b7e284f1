//! Every frame a node sent in a tx, by recipient (protocol.md section 7).
//!
//! Stored sealed, in the same commit as the event that produced it, so that
//! `TransactionStatus { tx }` from a party returns every frame of that tx addressed to it,
//! in order: a lost delivery (change scrip, VendorScrip, a withdrawal result) is never lost
//! value. A party gets only its own frames.

use std::collections::BTreeMap;

use crate::ids::{TxId, Uid};

/// The frames sent, by (tx, recipient), in the order sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    rows: BTreeMap<(TxId, Uid), Vec<Vec<u8>>>,
}

impl Outbox {
    /// An empty outbox.
    #[must_use]
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Records `frame` sent to `to` in `tx`. Called by `apply` only.
    pub fn push(&mut self, tx: TxId, to: Uid, frame: Vec<u8>) {
        self.rows.entry((tx, to)).or_default().push(frame);
    }

    /// The frames of `tx` sent to `to`, in order; empty when none.
    #[must_use]
    pub fn frames(&self, tx: &TxId, to: &Uid) -> &[Vec<u8>] {
        self.rows.get(&(*tx, *to)).map_or(&[], Vec::as_slice)
    }

    /// Every (tx, recipient) with its frames, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&(TxId, Uid), &Vec<Vec<u8>>)> {
        self.rows.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_by_tx_and_recipient_in_order() {
        let (tx, c, m) = (TxId([1; 16]), Uid([2; 16]), Uid([3; 16]));
        let mut o = Outbox::new();
        o.push(tx, c, vec![1]);
        o.push(tx, m, vec![2]);
        o.push(tx, c, vec![3]);
        assert_eq!(o.frames(&tx, &c), &[vec![1], vec![3]]);
        assert_eq!(o.frames(&tx, &m), &[vec![2]]);
        assert!(o.frames(&TxId([0; 16]), &c).is_empty());
        assert_eq!(o.iter().count(), 2);
    }
}
