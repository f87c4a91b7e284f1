//! The pause between two sends of open work that has no answer yet: short at first, so a
//! node that restarts or a peer that comes back finishes quickly, then doubling up to a
//! ceiling, so a peer that stays away costs little (protocol.md sections 7 and 10: a node
//! re-sends its open requests with backoff until it has a decision).

use std::time::Duration;

/// A doubling pause from `first` up to `max` (see the module doc). [`Backoff::pause`] gives
/// the pause before the next attempt; [`Backoff::reset`] starts again from `first` once
/// nothing is left to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Pauses of `first`, twice that, … up to `max` (`first` if `max` is shorter).
    #[must_use]
    pub fn new(first: Duration, max: Duration) -> Backoff {
        let max = max.max(first);
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The pause before the next attempt; the one after it is twice as long, up to `max`.
    pub fn pause(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    /// Starts again from `first` (the work is done, or new work arrived).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn doubles_from_the_first_pause_up_to_the_ceiling_and_resets() {
        let s = Duration::from_secs;
        let mut b = Backoff::new(s(1), s(10));
        let waits: Vec<Duration> = (0..6).map(|_| b.pause()).collect();
        assert_eq!(waits, vec![s(1), s(2), s(4), s(8), s(10), s(10)]);
        b.reset();
        assert_eq!(b.pause(), s(1));
        let mut short = Backoff::new(s(5), s(1));
        assert_eq!(
            (short.pause(), short.pause()),
            (s(5), s(5)),
            "max never below first"
        );
    }
}
