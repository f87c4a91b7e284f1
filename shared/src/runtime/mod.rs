//! The actor shell every node runs in (architecture.md "Each node: a sans-IO core inside
//! an actor shell"), generic over the node's core and the [`crate::bus::Bus`]:
//!
//! - [`parallel_map`]: the crypto pool's fan-out, used by a node's batch step to open the
//!   frames of a batch (RSA unwrap, signature checks) on every core;
//! - [`shell`]: the node actor, its group-commit batching on the blocking pool, and the
//!   gateway that connects it to a bus subject;
//! - [`backoff`]: the growing pause between re-sends of open work;
//! - [`observe`]: what the shell tells the operator: a log line per request, the metrics'
//!   names and records, and [`Observe`], a node's live view.

pub mod backoff;
pub mod observe;
pub mod shell;

pub use backoff::Backoff;
pub use observe::{Gauge, Observe, RequestOutcome};

pub use shell::{
    Admission, Batched, Call, CallFn, Clock, Dropped, MAX_BATCH, Next, NodeActor, Pending, Prepare,
    Screen, ServeNode, Served, ServedBatch, Stop, Submit, frame_span, gateway, gateway_until,
    reply_is_senders, served, served_each, start, system_clock, unavailable,
};

/// `f` over every item on rayon's pool of worker threads (one per core, started once for
/// the process), results in input order. CPU-bound work only (it blocks the calling thread
/// until all are done): the shell calls it from the blocking pool, never from an actor
/// thread. A pool rather than threads started per batch: a batch of one paid for starting
/// them (and for reading the machine's CPU quota) with every request, and a pool balances
/// uneven items by work stealing where fixed chunks wait for the slowest. A panic in `f` is
/// a bug in the core and propagates as the caller's panic.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use rayon::prelude::*;
    if items.len() <= 1 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    items.par_iter().map(f).collect()
}

/// Runs `here` on the calling thread and `there` on the same pool as [`parallel_map`] at
/// the same time, and returns both results once both are done: a node's commit, which
/// mostly waits for the disk, beside the opening of the frames that arrived meanwhile
/// (`crate::node::Driver::serve`). `here` need not be `Send` (a redb write transaction);
/// `there` may use the pool itself. A panic in either propagates as the caller's.
pub fn overlap<A, B: Send>(here: impl FnOnce() -> A, there: impl FnOnce() -> B + Send) -> (A, B) {
    let mut theirs = None;
    let ours = rayon::in_place_scope(|scope| {
        scope.spawn(|_| theirs = Some(there()));
        here()
    });
    // `in_place_scope` returns only after every job it spawned has run.
    let theirs = theirs.unwrap_or_else(|| unreachable!("the scope ran its job"));
    (ours, theirs)
}

/// Runs `f` on the same pool as [`parallel_map`] without waiting for it: CPU-bound work
/// whose result the caller collects later through a channel of its own (a wallet renders
/// 6.3's step 2 while step 1 is in flight). A panic in `f` aborts the process, as rayon's
/// `spawn` does: `f` must not panic on any input.
pub fn spawn(f: impl FnOnce() + Send + 'static) {
    rayon::spawn(f);
}

#[cfg(test)]
mod tests {
    use super::parallel_map;

    #[test]
    fn keeps_input_order_for_any_length() {
        for n in [0_usize, 1, 2, 3, 7, 64, 1001] {
            let items: Vec<usize> = (0..n).collect();
            let out = parallel_map(&items, |x| x * 3 + 1);
            assert_eq!(out, items.iter().map(|x| x * 3 + 1).collect::<Vec<_>>());
        }
    }
}
