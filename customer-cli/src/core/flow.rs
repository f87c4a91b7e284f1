//! Where a pending request stands in its flow: a named state per flow whose outcome is more
//! than one message (protocol.md sections 6.2, 6.5 and 6.7), and the one transition
//! function of each.
//!
//! The wallet's decision on an incoming frame (`core::decide_reply`), its fold of an event
//! into the state (`WalletState::apply`, live and in replay alike) and every checker that
//! folds the log (the auditor) move a pending request by [`Progress::on`] and nothing else,
//! so they cannot disagree on what may follow what: a message a state does not take is a
//! [`TransitionError`], raised in this one place. A message already recorded is
//! [`TransitionError::Repeat`] (section 7: a repeat, or a frame fetched again by
//! `TransactionStatus`, changes nothing).
//!
//! The request's reply status (sent, refused, given up: `PendingStatus`) is another matter
//! and does not move these states.

use serde::{Deserialize, Serialize};

use super::request::Expect;

/// A message that moves a pending request on, as the event that records it says
/// (`WalletEvent::message`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// The one reply of a request answered by one message (6.0, 6.0b, 6.1, 6.4, 6.6, 6.8,
    /// both requests of 6.3, and the 6.2 notice).
    Reply,
    /// `Ack { re, deadline }` to a request that stays open: B's in 6.5 step 1, M's in 6.7
    /// step 1.
    Ack,
    /// The broker's decision: `ChangeBrokerScrip` (6.2 step 5, 6.5 step 6) or
    /// `VendorWithdrawResult` (6.7 step 5).
    Decision {
        /// Whether it is an OK.
        ok: bool,
    },
    /// The merchant's new VendorScrip: `VendorScripResponse` (6.2 step 7) or
    /// `VendorTopUpResponse` (6.5 step 5).
    VendorScrip,
}

/// Where a pending request stands (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Progress {
    /// A request answered by one message: waiting for it.
    Awaiting,
    /// 6.2 step 1, the notice: waiting for B's answer, which saves step 2 (section 7).
    /// B's NOK `ChangeBrokerScrip` may end it first (its answer lost and the exchange
    /// expired or refused); an OK cannot come before step 2, which B decides on.
    Notice,
    /// 6.2 step 2, sent to M.
    Exchange(Exchange),
    /// 6.5, sent to B.
    TopUp(TopUp),
    /// 6.7, sent to M.
    Withdrawal(Withdrawal),
}

/// 6.2 step 2: B's `ChangeBrokerScrip` (step 5) and M's `VendorScripResponse` (step 7)
/// arrive in either order. A NOK ends the exchange at once: M issues V0 only on B's OK.
///
/// ```text
/// Sent ──B's OK──▶ BrokerPaid ──M's V0──▶ (done)
/// Sent ──M's V0──▶ VendorScripIn ──B's OK or NOK──▶ (done)
/// Sent ──B's NOK──▶ (done)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exchange {
    /// Neither outcome message is in yet.
    Sent,
    /// B's OK is in: B0 is spent and the change stored; M's V0 is owed.
    BrokerPaid,
    /// M's V0 is in; B's decision is owed (B0 stays committed until it arrives).
    VendorScripIn,
}

/// 6.5: B's `Ack` (step 1), M's `VendorTopUpResponse` (step 5) and B's `ChangeBrokerScrip`
/// (step 6). The two outcome messages arrive in either order; a NOK ends the top-up at once
/// (M releases V0 on the same NOK). The `Ack` only says that B holds B0 in escrow: it
/// usually comes first, but a lost one fetched again later is still recorded, once.
///
/// ```text
/// Sent ──Ack──▶ Escrowed
/// Sent | Escrowed ──B's OK──▶ BrokerPaid ──M's V1──▶ (done)
/// Sent | Escrowed ──M's V1──▶ VendorScripIn ──B's OK or NOK──▶ (done)
/// Sent | Escrowed ──B's NOK──▶ (done)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopUp {
    /// Nothing is back yet.
    Sent,
    /// B's `Ack`: B0 is held in escrow until B's deadline.
    Escrowed,
    /// B's OK is in: B0 is spent and the change stored; M's V1 is owed.
    BrokerPaid {
        /// Whether B's `Ack` was recorded too.
        acked: bool,
    },
    /// M's V1 is in, in place of V0; B's decision is owed.
    VendorScripIn {
        /// Whether B's `Ack` was recorded too.
        acked: bool,
    },
}

/// 6.7: M's `Ack` (step 1), then B's `VendorWithdrawResult` (step 5), which ends the
/// withdrawal either way. The result may come first; the `Ack` then finds nothing pending.
///
/// ```text
/// Sent ──M's Ack──▶ Held ──B's OK or NOK──▶ (done)
/// Sent ──B's OK or NOK──▶ (done)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Withdrawal {
    /// Nothing is back yet.
    Sent,
    /// M's `Ack`: M holds V0 until its deadline; B's result is owed.
    Held,
}

/// Why a state does not take a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The message is already recorded (section 7: it changes nothing).
    #[error("{message:?} is already recorded ({state:?})")]
    Repeat {
        /// The state.
        state: Progress,
        /// The message.
        message: Message,
    },
    /// The flow has no such step here.
    #[error("{message:?} does not follow {state:?}")]
    Impossible {
        /// The state.
        state: Progress,
        /// The message.
        message: Message,
    },
}

/// What one machine's transition says of a message, before [`Progress::on`] names the
/// state in the error.
enum Refusal {
    Repeat,
    Impossible,
}

/// The next state, or `None` when the message ends the request.
type Step<S> = Result<Option<S>, Refusal>;

impl Progress {
    /// The state a request starts in when it is saved, by what its reply must say.
    #[must_use]
    pub fn start(expect: &Expect) -> Progress {
        match expect {
            Expect::VendorScripNotice { .. } => Progress::Notice,
            Expect::VendorScripRequest { .. } => Progress::Exchange(Exchange::Sent),
            Expect::VendorTopUp { .. } => Progress::TopUp(TopUp::Sent),
            Expect::VendorWithdraw { .. } => Progress::Withdrawal(Withdrawal::Sent),
            _ => Progress::Awaiting,
        }
    }

    /// The transition: the state after `message`, or `None` when it ends the request.
    pub fn on(self, message: Message) -> Result<Option<Progress>, TransitionError> {
        let next = match self {
            Progress::Awaiting => match message {
                Message::Reply => Ok(None),
                _ => Err(Refusal::Impossible),
            },
            Progress::Notice => match message {
                Message::Reply | Message::Decision { ok: false } => Ok(None),
                _ => Err(Refusal::Impossible),
            },
            Progress::Exchange(s) => s.on(message).map(|s| s.map(Progress::Exchange)),
            Progress::TopUp(s) => s.on(message).map(|s| s.map(Progress::TopUp)),
            Progress::Withdrawal(s) => s.on(message).map(|s| s.map(Progress::Withdrawal)),
        };
        next.map_err(|refusal| match refusal {
            Refusal::Repeat => TransitionError::Repeat {
                state: self,
                message,
            },
            Refusal::Impossible => TransitionError::Impossible {
                state: self,
                message,
            },
        })
    }

    /// Whether the broker's OK is in (6.2, 6.5): B0 is spent.
    #[must_use]
    pub fn broker_paid(self) -> bool {
        matches!(
            self,
            Progress::Exchange(Exchange::BrokerPaid) | Progress::TopUp(TopUp::BrokerPaid { .. })
        )
    }

    /// Whether the merchant's new VendorScrip is in (6.2, 6.5).
    #[must_use]
    pub fn vendor_scrip_in(self) -> bool {
        matches!(
            self,
            Progress::Exchange(Exchange::VendorScripIn)
                | Progress::TopUp(TopUp::VendorScripIn { .. })
        )
    }
}

impl Exchange {
    fn on(self, message: Message) -> Step<Exchange> {
        match (self, message) {
            (Exchange::Sent, Message::Decision { ok: true }) => Ok(Some(Exchange::BrokerPaid)),
            (Exchange::Sent, Message::VendorScrip) => Ok(Some(Exchange::VendorScripIn)),
            (Exchange::Sent, Message::Decision { ok: false })
            | (Exchange::BrokerPaid, Message::VendorScrip)
            | (Exchange::VendorScripIn, Message::Decision { .. }) => Ok(None),
            (Exchange::BrokerPaid, Message::Decision { .. })
            | (Exchange::VendorScripIn, Message::VendorScrip) => Err(Refusal::Repeat),
            (_, Message::Reply | Message::Ack) => Err(Refusal::Impossible),
        }
    }
}

impl TopUp {
    fn on(self, message: Message) -> Step<TopUp> {
        let acked = matches!(self, TopUp::Escrowed);
        match (self, message) {
            (TopUp::Sent, Message::Ack) => Ok(Some(TopUp::Escrowed)),
            (TopUp::BrokerPaid { acked: false }, Message::Ack) => {
                Ok(Some(TopUp::BrokerPaid { acked: true }))
            }
            (TopUp::VendorScripIn { acked: false }, Message::Ack) => {
                Ok(Some(TopUp::VendorScripIn { acked: true }))
            }
            (TopUp::Sent | TopUp::Escrowed, Message::Decision { ok: true }) => {
                Ok(Some(TopUp::BrokerPaid { acked }))
            }
            (TopUp::Sent | TopUp::Escrowed, Message::VendorScrip) => {
                Ok(Some(TopUp::VendorScripIn { acked }))
            }
            (TopUp::Sent | TopUp::Escrowed, Message::Decision { ok: false })
            | (TopUp::BrokerPaid { .. }, Message::VendorScrip)
            | (TopUp::VendorScripIn { .. }, Message::Decision { .. }) => Ok(None),
            (
                TopUp::Escrowed
                | TopUp::BrokerPaid { acked: true }
                | TopUp::VendorScripIn { acked: true },
                Message::Ack,
            )
            | (TopUp::BrokerPaid { .. }, Message::Decision { .. })
            | (TopUp::VendorScripIn { .. }, Message::VendorScrip) => Err(Refusal::Repeat),
            (_, Message::Reply) => Err(Refusal::Impossible),
        }
    }
}

impl Withdrawal {
    fn on(self, message: Message) -> Step<Withdrawal> {
        match (self, message) {
            (Withdrawal::Sent, Message::Ack) => Ok(Some(Withdrawal::Held)),
            (_, Message::Decision { .. }) => Ok(None),
            (Withdrawal::Held, Message::Ack) => Err(Refusal::Repeat),
            (_, Message::Reply | Message::VendorScrip) => Err(Refusal::Impossible),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Message = Message::Decision { ok: true };
    const NOK: Message = Message::Decision { ok: false };

    /// Folds `messages` from `start`: the state after each, `None` once the request ended.
    fn run(start: Progress, messages: &[Message]) -> Result<Option<Progress>, TransitionError> {
        let mut state = Some(start);
        for m in messages {
            let Some(s) = state else {
                panic!("{m:?} after the request ended");
            };
            state = s.on(*m)?;
        }
        Ok(state)
    }

    /// 6.2 step 2: both orders end the exchange; a NOK ends it at once, also after V0.
    #[test]
    fn an_exchange_ends_on_both_messages_in_either_order_or_a_nok() {
        let sent = Progress::Exchange(Exchange::Sent);
        assert_eq!(run(sent, &[OK, Message::VendorScrip]), Ok(None));
        assert_eq!(run(sent, &[Message::VendorScrip, OK]), Ok(None));
        assert_eq!(run(sent, &[Message::VendorScrip, NOK]), Ok(None));
        assert_eq!(run(sent, &[NOK]), Ok(None));
        assert_eq!(
            run(sent, &[OK]),
            Ok(Some(Progress::Exchange(Exchange::BrokerPaid)))
        );
        assert!(matches!(
            run(sent, &[OK, OK]),
            Err(TransitionError::Repeat { .. })
        ));
        assert!(matches!(
            run(sent, &[Message::VendorScrip, Message::VendorScrip]),
            Err(TransitionError::Repeat { .. })
        ));
        // M's `Ack` to a repeated step 2 is never recorded (it says "not decided yet").
        assert!(matches!(
            run(sent, &[Message::Ack]),
            Err(TransitionError::Impossible { .. })
        ));
    }

    /// 6.2 step 1: B's answer or its NOK ends the notice; an OK cannot come before step 2.
    #[test]
    fn a_notice_ends_on_its_reply_or_a_nok_never_an_ok() {
        assert_eq!(Progress::Notice.on(Message::Reply), Ok(None));
        assert_eq!(Progress::Notice.on(NOK), Ok(None));
        assert!(matches!(
            Progress::Notice.on(OK),
            Err(TransitionError::Impossible { .. })
        ));
    }

    /// 6.5: the `Ack` is recorded once wherever it comes; the outcome messages as in 6.2.
    #[test]
    fn a_top_up_records_its_ack_once_and_ends_on_both_messages_or_a_nok() {
        let sent = Progress::TopUp(TopUp::Sent);
        assert_eq!(
            run(sent, &[Message::Ack, OK]),
            Ok(Some(Progress::TopUp(TopUp::BrokerPaid { acked: true })))
        );
        assert_eq!(
            run(sent, &[Message::Ack, OK, Message::VendorScrip]),
            Ok(None)
        );
        assert_eq!(
            run(sent, &[Message::VendorScrip, Message::Ack, OK]),
            Ok(None)
        );
        assert_eq!(run(sent, &[Message::Ack, NOK]), Ok(None));
        assert_eq!(
            run(sent, &[OK, Message::Ack]),
            Ok(Some(Progress::TopUp(TopUp::BrokerPaid { acked: true })))
        );
        for repeat in [
            &[Message::Ack, Message::Ack][..],
            &[OK, Message::Ack, Message::Ack],
            &[Message::VendorScrip, Message::VendorScrip],
            &[OK, NOK],
        ] {
            assert!(matches!(
                run(sent, repeat),
                Err(TransitionError::Repeat { .. })
            ));
        }
    }

    /// 6.7: the result ends the withdrawal with or without M's `Ack` before it.
    #[test]
    fn a_withdrawal_ends_on_the_result() {
        let sent = Progress::Withdrawal(Withdrawal::Sent);
        assert_eq!(run(sent, &[Message::Ack, OK]), Ok(None));
        assert_eq!(run(sent, &[NOK]), Ok(None));
        assert!(matches!(
            run(sent, &[Message::Ack, Message::Ack]),
            Err(TransitionError::Repeat { .. })
        ));
        assert!(matches!(
            run(sent, &[Message::VendorScrip]),
            Err(TransitionError::Impossible { .. })
        ));
    }

    /// A one-reply request takes its reply and nothing else.
    #[test]
    fn a_one_reply_request_takes_only_its_reply() {
        assert_eq!(Progress::Awaiting.on(Message::Reply), Ok(None));
        for m in [Message::Ack, OK, NOK, Message::VendorScrip] {
            assert!(matches!(
                Progress::Awaiting.on(m),
                Err(TransitionError::Impossible { .. })
            ));
        }
    }
}
