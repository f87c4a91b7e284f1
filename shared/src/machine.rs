//! The three-party transactions as state machines (protocol.md section 7: "Multi-party
//! transactions (6.2, 6.5, 6.7) are state machines whose every state is durable (an event)
//! before the next message leaves").
//!
//! Why one trait: each party's core declares, once per transaction, its named states and
//! the one transition function between them ([`Machine::next`]); its `decide` asks it
//! whether a request may move the transaction now, its fold asks it whether a stored event
//! is a legal move (and refuses to fold one that is not), and the auditor asks it of every
//! event of a log it reads. So the three cannot disagree about which step may follow which.
//! What a step carries beyond its name (an amount, a scrip) is checked where the step is
//! decided; the machine is about order.

/// A three-party transaction at one party: its states are the values of the implementing
/// type, and it moves by steps (one per event of the transaction at that party).
pub trait Machine: Sized {
    /// The transaction and the party, as a finding names it (e.g. "6.2 exchange at the
    /// broker").
    const NAME: &'static str;

    /// What moves it: one variant per event of the transaction at this party.
    type Step;

    /// This state's name.
    fn name(&self) -> &'static str;

    /// A step's name: the name of its event in protocol.md section 6.
    fn step_name(step: &Self::Step) -> &'static str;

    /// The transition table: where `step` leads from `from` (`None`: the tx has not entered
    /// this machine), or `None` when the protocol has no such move.
    fn next(from: Option<&Self>, step: &Self::Step) -> Option<Self>;

    /// Whether no step leads anywhere from this state: the transaction has ended here.
    fn is_final(&self) -> bool;

    /// Whether `step` may follow this state.
    fn allows(&self, step: &Self::Step) -> bool {
        Self::next(Some(self), step).is_some()
    }

    /// The one transition function: [`Machine::next`], a move the protocol does not have
    /// given as a typed error naming the machine, the state and the step.
    fn transition(from: Option<&Self>, step: &Self::Step) -> Result<Self, TransitionError> {
        Self::next(from, step).ok_or_else(|| TransitionError {
            machine: Self::NAME,
            from: from.map(Self::name),
            step: Self::step_name(step),
        })
    }
}

/// A step that cannot follow where its transaction stands (see [`Machine::transition`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{machine}: {step} cannot follow {}", .from.unwrap_or("nothing (the tx has not begun)"))]
pub struct TransitionError {
    /// The machine ([`Machine::NAME`]).
    pub machine: &'static str,
    /// The state it stood in, by name; `None`: the tx had not entered it.
    pub from: Option<&'static str>,
    /// The step refused, by its event's name.
    pub step: &'static str,
}

impl TransitionError {
    /// This refusal as that of the stored event `seq` of `tx`.
    #[must_use]
    pub fn at(self, seq: u64, tx: crate::TxId) -> IllegalEvent {
        IllegalEvent {
            seq,
            tx,
            transition: self,
        }
    }
}

/// A stored event that is no legal move of its transaction: what a node's checked fold
/// refuses to fold (protocol.md section 8: the tables must follow from the log; a log that
/// moves a transaction out of order justifies none).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {seq} of tx {tx}: {transition}")]
pub struct IllegalEvent {
    /// The event's seq.
    pub seq: u64,
    /// Its tx.
    pub tx: crate::TxId,
    /// The move refused.
    #[source]
    pub transition: TransitionError,
}

/// Where a replay that looks at the state only after the whole log (a node's, which then
/// renders its tables and compares them with its file's) keeps the first event its checked
/// fold refused: from it on nothing more is folded, and the state can be refused whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Halt(Option<IllegalEvent>);

impl Halt {
    /// Folds `event` into `state` with the checked `fold`, unless `state` halted already
    /// (its [`Halt`], which `halt` gives): an event the fold refuses halts it there and is
    /// not folded. What the fold touched, or nothing.
    pub fn fold<S, E, T: Default>(
        state: &mut S,
        halt: fn(&mut S) -> &mut Halt,
        fold: fn(&mut S, &E) -> Result<T, IllegalEvent>,
        event: &E,
    ) -> T {
        if halt(state).0.is_some() {
            return T::default();
        }
        fold(state, event).unwrap_or_else(|illegal| {
            halt(state).0 = Some(illegal);
            T::default()
        })
    }

    /// The event that halted the fold, if one did.
    #[must_use]
    pub fn event(&self) -> Option<&IllegalEvent> {
        self.0.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A door: closed → open → closed, and locked only when closed.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Door {
        Closed,
        Open,
        Locked,
    }

    enum Push {
        Open,
        Close,
        Lock,
    }

    impl Machine for Door {
        const NAME: &'static str = "door";
        type Step = Push;

        fn name(&self) -> &'static str {
            match self {
                Door::Closed => "Closed",
                Door::Open => "Open",
                Door::Locked => "Locked",
            }
        }

        fn step_name(step: &Push) -> &'static str {
            match step {
                Push::Open => "Opened",
                Push::Close => "Closed",
                Push::Lock => "Locked",
            }
        }

        fn next(from: Option<&Door>, step: &Push) -> Option<Door> {
            match (from, step) {
                (None | Some(Door::Open), Push::Close) => Some(Door::Closed),
                (Some(Door::Closed), Push::Open) => Some(Door::Open),
                (Some(Door::Closed), Push::Lock) => Some(Door::Locked),
                _ => None,
            }
        }

        fn is_final(&self) -> bool {
            *self == Door::Locked
        }
    }

    #[test]
    fn a_move_off_the_table_is_named() {
        assert_eq!(Door::transition(None, &Push::Close), Ok(Door::Closed));
        assert_eq!(
            Door::transition(Some(&Door::Open), &Push::Lock),
            Err(TransitionError {
                machine: "door",
                from: Some("Open"),
                step: "Locked",
            })
        );
        let err = Door::transition(None, &Push::Open).unwrap_err();
        assert_eq!(
            err.to_string(),
            "door: Opened cannot follow nothing (the tx has not begun)"
        );
        assert!(Door::Locked.is_final());
        assert!(Door::Closed.allows(&Push::Lock) && !Door::Open.allows(&Push::Lock));
    }

    /// A door and the halt of the replay that moves it.
    #[derive(Default)]
    struct Replayed {
        door: Option<Door>,
        halt: Halt,
    }

    fn push(r: &mut Replayed, step: &(u64, Push)) -> Result<u64, IllegalEvent> {
        r.door = Some(
            Door::transition(r.door.as_ref(), &step.1).map_err(|transition| IllegalEvent {
                seq: step.0,
                tx: crate::TxId([0; 16]),
                transition,
            })?,
        );
        Ok(step.0)
    }

    #[test]
    fn a_replay_halts_at_the_first_illegal_event() {
        let mut r = Replayed::default();
        let fold = |r: &mut Replayed, step| Halt::fold(r, |r| &mut r.halt, push, &step);
        assert_eq!(fold(&mut r, (1, Push::Close)), 1);
        assert_eq!(
            fold(&mut r, (2, Push::Close)),
            0,
            "Closed cannot follow Closed"
        );
        assert_eq!(r.halt.event().map(|e| e.seq), Some(2));
        assert_eq!(fold(&mut r, (3, Push::Open)), 0, "nothing after the halt");
        assert_eq!(r.door, Some(Door::Closed));
        assert_eq!(r.halt.event().map(|e| e.seq), Some(2));
    }
}
