//! How many RSA operations this thread has done: the measure behind protocol.md 6.3, "the
//! broker's whole cost in a purchase is these two signature verifications and the log
//! append", and behind the per-transaction cost figures of the benchmarks.
//!
//! Thread-local on purpose: a test that drives a sans-IO node on its own thread reads
//! exactly that node's work, whatever other tests run in parallel, and the count costs one
//! non-atomic increment per RSA operation (which itself takes a fraction of a millisecond
//! to milliseconds).

use std::cell::Cell;

thread_local! {
    static COUNT: Cell<OpCount> = const { Cell::new(OpCount::ZERO) };
}

/// RSA operations by kind. Private-key operations are the expensive ones (milliseconds);
/// public-key ones cost a few tens of microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCount {
    /// Signatures made (`Sign_K`, `SignOnly_K`).
    pub sign: u64,
    /// Session keys unwrapped (`PKDec_K`).
    pub unwrap: u64,
    /// Signatures verified.
    pub verify: u64,
    /// Session keys wrapped (`PKEnc_K`).
    pub wrap: u64,
}

impl OpCount {
    const ZERO: OpCount = OpCount {
        sign: 0,
        unwrap: 0,
        verify: 0,
        wrap: 0,
    };

    /// The operations this thread has done so far.
    #[must_use]
    pub fn on_this_thread() -> OpCount {
        COUNT.with(Cell::get)
    }

    /// The operations this thread has done since `earlier` (a reading of
    /// [`OpCount::on_this_thread`]).
    #[must_use]
    pub fn since(earlier: OpCount) -> OpCount {
        let now = OpCount::on_this_thread();
        OpCount {
            sign: now.sign.saturating_sub(earlier.sign),
            unwrap: now.unwrap.saturating_sub(earlier.unwrap),
            verify: now.verify.saturating_sub(earlier.verify),
            wrap: now.wrap.saturating_sub(earlier.wrap),
        }
    }

    /// Private-key operations: signatures and unwraps.
    #[must_use]
    pub fn private(&self) -> u64 {
        self.sign.saturating_add(self.unwrap)
    }
}

/// Counts one operation on this thread.
pub(super) fn count(op: fn(&mut OpCount)) {
    COUNT.with(|c| {
        let mut n = c.get();
        op(&mut n);
        c.set(n);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::suite::{SessionKey, Suite};

    #[test]
    fn each_operation_is_counted_on_its_own_thread() {
        let k = fixtures::keypair(Suite::Modern, 0);
        let start = OpCount::on_this_thread();
        let sig = k.sign(b"m").unwrap();
        k.public().verify(b"m", &sig).unwrap();
        let session = SessionKey::generate(Suite::Modern);
        let wrapped = k.public().wrap_key(&session).unwrap();
        k.unwrap_key(&wrapped).unwrap();
        let done = OpCount::since(start);
        assert_eq!(
            done,
            OpCount {
                sign: 1,
                unwrap: 1,
                verify: 1,
                wrap: 1
            }
        );
        assert_eq!(done.private(), 2);
        // Another thread's operations are not this thread's.
        std::thread::spawn(move || k.sign(b"elsewhere").unwrap())
            .join()
            .unwrap();
        assert_eq!(OpCount::since(start), done);
    }
}
