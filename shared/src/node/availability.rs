//! What a node does when it cannot write its log (protocol.md section 10, "Storage
//! faults"): a failed commit loses nothing acknowledged (it wrote nothing, and no reply of
//! its batch has left), the requests of that batch are answered with an unsigned
//! `Error { Unavailable }`, and the node reopens its log and rebuilds its state from it,
//! then serves again as soon as a commit succeeds, without a restart. It never stays up
//! answering nothing.
//!
//! [`Availability`] is the part every node shares: whether the node may serve, and when it
//! next tries to recover after a fault. Recovery (reopen the log, replay it) is at most
//! once per [`RETRY_AFTER_SECS`], so a node on a full disk does not replay its whole log
//! for every request that arrives meanwhile. The node's own code does the reopening.

use crate::error::ErrorCode;
use crate::ids::{TxId, Uid};
use crate::suite::Suite;
use crate::time::UnixSecs;
use crate::wire::Frame;

use super::{Refusal, unsigned_error, unsigned_error_of};

/// The least time between two attempts to recover after a storage fault.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The message of every `Unavailable` answer: no detail of the fault leaves the node.
pub const UNAVAILABLE_MESSAGE: &str = "the node cannot write its log now; repeat the request";

/// Whether a node serves, or is down after a storage fault (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Availability {
    down: Option<Down>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Down {
    reason: String,
    retry_at: UnixSecs,
}

/// What a node does with the work in front of it, at `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Serve: the log is open and its state is the log's.
    Serve,
    /// Down, and time to try to recover: reopen the log, rebuild the state, then serve (or
    /// [`Availability::failed`] again).
    Recover,
    /// Down (with why): answer `Unavailable` without touching the log.
    Unavailable(String),
}

impl Availability {
    /// What to do at `now`.
    #[must_use]
    pub fn gate(&self, now: UnixSecs) -> Gate {
        match &self.down {
            None => Gate::Serve,
            Some(down) if now >= down.retry_at => Gate::Recover,
            Some(down) => Gate::Unavailable(down.reason.clone()),
        }
    }

    /// A commit or a recovery failed at `now` because of `reason`: down until the next
    /// attempt, [`RETRY_AFTER_SECS`] later.
    pub fn failed(&mut self, reason: impl Into<String>, now: UnixSecs) {
        self.down = Some(Down {
            reason: reason.into(),
            retry_at: now.saturating_add_secs(RETRY_AFTER_SECS),
        });
    }

    /// A failed commit, append or recovery at `now`, because of `reason`: down
    /// ([`Availability::failed`]), and what the node reports for it.
    pub fn fault(&mut self, reason: impl std::fmt::Display, now: UnixSecs) -> Unavailable {
        let reason = reason.to_string();
        self.failed(reason.clone(), now);
        Unavailable {
            reason,
            reply: None,
        }
    }

    /// `Ok` when the node may serve at `now`. Down, and time to try again: runs `recover`
    /// (reopen the log, rebuild the state from it) and serves if it succeeds, else stays
    /// down for another [`RETRY_AFTER_SECS`]. Down otherwise: [`Unavailable`].
    pub fn serving<E: std::fmt::Display>(
        &mut self,
        now: UnixSecs,
        recover: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), Unavailable> {
        match self.gate(now) {
            Gate::Serve => Ok(()),
            Gate::Unavailable(reason) => Err(Unavailable {
                reason,
                reply: None,
            }),
            Gate::Recover => match recover() {
                Ok(()) => {
                    self.recovered();
                    Ok(())
                }
                Err(e) => Err(self.fault(e, now)),
            },
        }
    }

    /// The log was reopened and the state rebuilt from it: serve again.
    pub fn recovered(&mut self) {
        self.down = None;
    }

    /// Why the node is down, if it is.
    #[must_use]
    pub fn down(&self) -> Option<&str> {
        self.down.as_ref().map(|d| d.reason.as_str())
    }
}

/// A node that could not serve a request because it cannot write its log: why, and the
/// unsigned `Error { Unavailable }` to send back ([`unavailable_reply`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unavailable: {reason}")]
pub struct Unavailable {
    /// The storage fault, for the node's own log (never sent).
    pub reason: String,
    /// The answer for the requester, if the frame had a header to answer under.
    pub reply: Option<Vec<u8>>,
}

impl Unavailable {
    /// The fault `reason` as the answer to the request `bytes`, from `me` in `suite`.
    #[must_use]
    pub fn answering(reason: impl Into<String>, bytes: &[u8], suite: Suite, me: Uid) -> Self {
        Unavailable {
            reason: reason.into(),
            reply: unavailable_reply(suite, me, bytes),
        }
    }
}

/// Every frame of a batch a node could not serve because of `reason`, each with its
/// unsigned answer ([`Unavailable::answering`]), in order.
#[must_use]
pub fn unavailable_batch(
    frames: &[&[u8]],
    reason: &str,
    suite: Suite,
    me: Uid,
) -> Vec<Unavailable> {
    frames
        .iter()
        .map(|bytes| Unavailable::answering(reason, bytes, suite, me))
        .collect()
}

/// The unsigned `Error { re, Unavailable }` of `me` to the request `bytes`, or `None` if
/// they hold no readable header of this suite. Unsigned (protocol.md section 3): it is no
/// decision, only "repeat", and answering it must cost no private-key operation. Its `re`
/// names the request's sender and label with an empty digest, as for a frame not verified.
#[must_use]
pub fn unavailable_reply(suite: Suite, me: Uid, bytes: &[u8]) -> Option<Vec<u8>> {
    let request = Frame::header_of(bytes).ok()?;
    if request.suite != suite {
        return None;
    }
    let refusal = Refusal::new(ErrorCode::Unavailable, UNAVAILABLE_MESSAGE);
    unsigned_error(suite, me, &request, &[], &refusal)
}

/// Whether `bytes` are the unsigned `Error { Unavailable }` of the node `from` in `tx`: a
/// requester's cue to repeat its request later (it is no decision and changes nothing,
/// protocol.md section 10). Anything else, a signed `Error` included, is not.
#[must_use]
pub fn is_unavailable(bytes: &[u8], from: Uid, tx: TxId) -> bool {
    unsigned_error_of(bytes, from, tx)
        .is_some_and(|body| body.error_code() == Some(ErrorCode::Unavailable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::ids::TxId;
    use crate::wire::bodies::{ErrorBody, Re};
    use crate::wire::{Header, Label};

    #[test]
    fn down_answers_unavailable_and_tries_to_recover_once_a_second() {
        let mut a = Availability::default();
        assert_eq!(a.gate(UnixSecs::new(100)), Gate::Serve);
        a.failed("disk full", UnixSecs::new(100));
        assert_eq!(
            a.gate(UnixSecs::new(100)),
            Gate::Unavailable("disk full".to_owned())
        );
        assert_eq!(a.down(), Some("disk full"));
        assert_eq!(a.gate(UnixSecs::new(101)), Gate::Recover);
        a.failed("still full", UnixSecs::new(101));
        assert_eq!(
            a.gate(UnixSecs::new(101)),
            Gate::Unavailable("still full".to_owned())
        );
        a.recovered();
        assert_eq!(a.gate(UnixSecs::new(101)), Gate::Serve);
        assert_eq!(a.down(), None);
    }

    #[test]
    fn the_answer_is_an_unsigned_error_naming_the_request() {
        let suite = Suite::Modern;
        let (node, peer) = (fixtures::keypair(suite, 1), fixtures::keypair(suite, 0));
        let request = Header::new(suite, Label::BrokerScripRequest, TxId([7; 16]), peer.uid());
        let bytes = Frame::new(request, Vec::new()).encode().unwrap();
        let reply = unavailable_reply(suite, node.uid(), &bytes).unwrap();
        let frame = Frame::decode(&reply).unwrap();
        assert_eq!(
            (frame.header.label, frame.header.tx, frame.header.sender),
            (Label::Error, request.tx, node.uid())
        );
        let body: ErrorBody = frame.part(0).unwrap().unsigned().unwrap();
        assert_eq!(body.error_code(), Some(ErrorCode::Unavailable));
        assert_eq!(body.re, Re::new(&request, Vec::new()));
        assert_eq!(body.message, UNAVAILABLE_MESSAGE);
        assert!(
            frame
                .part(0)
                .unwrap()
                .verify_signed::<ErrorBody>(node.public())
                .is_err(),
            "no signature"
        );
        assert!(is_unavailable(&reply, node.uid(), request.tx));
        assert!(
            !is_unavailable(&reply, peer.uid(), request.tx),
            "from another node"
        );
        assert!(
            !is_unavailable(&reply, node.uid(), TxId([8; 16])),
            "of another tx"
        );
        assert_eq!(unavailable_reply(suite, node.uid(), b"garbage"), None);
        assert_eq!(unavailable_reply(Suite::Paper, node.uid(), &bytes), None);
    }
}
