//! Each log read and folded into the facts the other parties can check (see the module
//! doc of `reconcile`).

use super::*;

/// What one log says happened in one tx, in the terms the other parties can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Fact {
    /// 6.1 (broker).
    BrokerScripIssued { value: Amount },
    /// 6.4 (broker): B1's value.
    BrokerScripToppedUp { to: Amount },
    /// 6.6 (broker).
    BrokerScripWithdrawn { value: Amount },
    /// 6.8, at the producer.
    Renewed { producer: Uid, value: Amount },
    /// 6.2 step 4 (broker): `W` paid from B0, change B1.
    Exchanged {
        merchant: Uid,
        value: Amount,
        change: Amount,
    },
    /// 6.2 step 7 (merchant).
    VendorScripIssued { merchant: Uid, value: Amount },
    /// 6.3 step 3 (merchant).
    Bought {
        merchant: Uid,
        paid: Amount,
        change: Amount,
    },
    /// 6.3 step 5 (broker).
    PurchaseRecorded { merchant: Uid, value: Amount },
    /// 6.5 step 4 (broker).
    TopUpSettled {
        merchant: Uid,
        top_up: Amount,
        change: Amount,
    },
    /// 6.5 step 5 (merchant).
    ToppedUp {
        merchant: Uid,
        from: Amount,
        to: Amount,
    },
    /// 6.7 step 3 (broker).
    Redeemed { merchant: Uid, value: Amount },
    /// 6.7 step 4 (merchant).
    Withdrawn { merchant: Uid, value: Amount },
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fact::BrokerScripIssued { value } => write!(f, "BrokerScrip {value} issued"),
            Fact::BrokerScripToppedUp { to } => write!(f, "BrokerScrip topped up to {to}"),
            Fact::BrokerScripWithdrawn { value } => write!(f, "BrokerScrip {value} withdrawn"),
            Fact::Renewed { producer, value } => {
                write!(f, "scrip {value} of {producer} renewed")
            }
            Fact::Exchanged {
                merchant,
                value,
                change,
            } => write!(
                f,
                "exchange of {value} for {merchant}'s VendorScrip authorized, change {change}"
            ),
            Fact::VendorScripIssued { merchant, value } => {
                write!(f, "VendorScrip {value} issued by {merchant}")
            }
            Fact::Bought {
                merchant,
                paid,
                change,
            } => write!(f, "purchase of {paid} made at {merchant}, change {change}"),
            Fact::PurchaseRecorded { merchant, value } => {
                write!(f, "purchase of {value} at {merchant} recorded")
            }
            Fact::TopUpSettled {
                merchant,
                top_up,
                change,
            } => write!(
                f,
                "top-up of {top_up} onto {merchant}'s VendorScrip settled, change {change}"
            ),
            Fact::ToppedUp { merchant, from, to } => {
                write!(f, "VendorScrip of {merchant} topped up from {from} to {to}")
            }
            Fact::Redeemed { merchant, value } => {
                write!(f, "withdrawal of {value} of {merchant}'s VendorScrip paid")
            }
            Fact::Withdrawn { merchant, value } => {
                write!(
                    f,
                    "VendorScrip {value} of {merchant} spent for a withdrawal"
                )
            }
        }
    }
}

impl Fact {
    /// 6.8: `issued`, the renewed scrip, at its producer.
    fn renewed(issued: &shared::ScripBody) -> Fact {
        Fact::Renewed {
            producer: issued.producer,
            value: issued.value,
        }
    }

    /// The merchant whose log keeps this fact, or `None` for the broker's.
    pub(super) fn keeper(&self, broker: Uid) -> Option<Uid> {
        match self {
            Fact::Renewed { producer, .. } if *producer != broker => Some(*producer),
            Fact::VendorScripIssued { merchant, .. }
            | Fact::Bought { merchant, .. }
            | Fact::ToppedUp { merchant, .. }
            | Fact::Withdrawn { merchant, .. } => Some(*merchant),
            _ => None,
        }
    }
}

/// Facts by (tx, customer), in order.
pub(super) type Facts = BTreeMap<(TxId, Uid), BTreeSet<Fact>>;

pub(super) fn add_fact(facts: &mut Facts, tx: TxId, customer: Uid, fact: Fact) {
    facts.entry((tx, customer)).or_default().insert(fact);
}

/// The broker's log, folded.
pub(super) struct BrokerLog {
    pub(super) uid: Uid,
    pub(super) state: broker::core::State,
    pub(super) facts: Facts,
    /// `PurchaseUnmatched` by tx: a report the broker could not match (no posting).
    pub(super) unmatched: BTreeSet<TxId>,
    /// Every lapse the broker recorded: its own BrokerScrip's and merchants' notices.
    pub(super) lapsed: Vec<Lapse>,
    /// The time of its last event, the epoch for an empty log.
    pub(super) end: UnixMillis,
    /// Registered UIDs.
    pub(super) registered: BTreeSet<Uid>,
}

/// A lapse the broker recorded (section 4): the value went back to the owner's account.
pub(super) struct Lapse {
    pub(super) tx: TxId,
    /// The merchant whose notice it was; `None` for the broker's own BrokerScrip.
    pub(super) merchant: Option<Uid>,
    pub(super) scrip_id: ScripId,
    pub(super) value: Amount,
    /// When the broker recorded it.
    pub(super) time: UnixMillis,
}

/// A merchant's log, folded.
pub(super) struct MerchantLog {
    pub(super) path: PathBuf,
    pub(super) uid: Uid,
    pub(super) state: merchant::core::state::State,
    pub(super) facts: Facts,
    /// The time of the last event of each tx: when what the merchant still
    /// waits for in that tx began to wait.
    pub(super) tx_time: BTreeMap<TxId, UnixMillis>,
    /// The time of its last event.
    pub(super) end: UnixMillis,
}

/// A wallet's log, folded.
pub(super) struct WalletLog {
    pub(super) path: PathBuf,
    /// The customer (its identity's UID).
    pub(super) me: Uid,
    pub(super) state: customer_cli::core::WalletState,
    /// The time of its last event.
    pub(super) end: UnixMillis,
}

/// The log file of `target` for a node of `kind`: the file itself, or its log in a data
/// directory (the broker's by `ops::audit::log_file`).
pub(super) fn log_path(target: &Path, kind: &str) -> PathBuf {
    if !target.is_dir() {
        return target.to_owned();
    }
    match kind {
        k if k == merchant::node::NODE_KIND => target.join(merchant::config::LOG_FILE),
        k if k == customer_cli::NODE_KIND => target.join(WALLET_FILE),
        _ => crate::audit::log_file(target),
    }
}

/// Opens the log of a `kind` node at `target`, verifies its chain and returns its path,
/// suite and events.
pub(super) fn read_events<K>(
    target: &Path,
    kind: &'static str,
) -> Result<(PathBuf, shared::Suite, Vec<Event<K>>), ReconcileError>
where
    K: serde::Serialize + serde::de::DeserializeOwned,
{
    let path = log_path(target, kind);
    let log_error = |source: LogError| ReconcileError::Log {
        path: path.clone(),
        source,
    };
    let log = EventLog::<K>::open_existing(&path).map_err(log_error)?;
    if log.identity().node_kind != kind {
        return Err(ReconcileError::WrongKind {
            path,
            expected: kind,
            found: log.identity().node_kind.clone(),
        });
    }
    log.verify_chain().map_err(|source| ReconcileError::Chain {
        path: path.clone(),
        source,
    })?;
    let events = log
        .iter()
        .map_err(log_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(log_error)?;
    Ok((path, log.identity().suite, events))
}

/// The sender of the first decodable frame in `sent`: the node that logged it.
pub(super) fn sender_of(sent: &[SentFrame]) -> Option<Uid> {
    sent.iter()
        .find_map(|s| Frame::decode(&s.frame).ok())
        .map(|f| f.header.sender)
}

pub(super) fn change_of(change: Option<&shared::ScripBody>) -> Amount {
    change.map_or(Amount::ZERO, |c| c.value)
}

/// The refusal of the log at `path` whose node's own fold refused one of its events.
fn illegal(path: &Path) -> impl Fn(IllegalEvent) -> ReconcileError + '_ {
    |source| ReconcileError::Illegal {
        path: path.to_owned(),
        source,
    }
}

/// The fact a broker event states, with the customer it concerns.
fn broker_fact(kind: &broker::core::Kind) -> Option<(Uid, Fact)> {
    use broker::core::Kind;
    Some(match *kind {
        Kind::BrokerScripIssued { customer, scrip } => {
            (customer, Fact::BrokerScripIssued { value: scrip.value })
        }
        Kind::BrokerScripToppedUp {
            customer, issued, ..
        } => (customer, Fact::BrokerScripToppedUp { to: issued.value }),
        Kind::BrokerScripWithdrawn {
            customer, value, ..
        } => (customer, Fact::BrokerScripWithdrawn { value }),
        Kind::ScripRenewed {
            customer, issued, ..
        } => (customer, Fact::renewed(&issued)),
        Kind::ExchangeAuthorized {
            customer,
            merchant,
            value,
            change,
            ..
        } => (
            customer,
            Fact::Exchanged {
                merchant,
                value,
                change: change_of(change.as_ref()),
            },
        ),
        Kind::PurchaseRecorded {
            customer,
            merchant,
            value,
        } => (customer, Fact::PurchaseRecorded { merchant, value }),
        Kind::VendorTopUpSettled {
            customer,
            merchant,
            top_up,
            change,
            ..
        } => (
            customer,
            Fact::TopUpSettled {
                merchant,
                top_up,
                change: change_of(change.as_ref()),
            },
        ),
        Kind::VendorScripRedeemed {
            customer,
            merchant,
            value,
        } => (customer, Fact::Redeemed { merchant, value }),
        _ => return None,
    })
}

/// A lapse a broker event records, if it is one.
fn broker_lapse(tx: TxId, time: UnixMillis, kind: &broker::core::Kind) -> Option<Lapse> {
    use broker::core::Kind;
    let (merchant, scrip_id, value) = match *kind {
        Kind::VendorScripLapsed {
            merchant,
            scrip_id,
            value,
            ..
        } => (Some(merchant), scrip_id, value),
        Kind::ScripLapsed {
            scrip_id, value, ..
        } => (None, scrip_id, value),
        _ => return None,
    };
    Some(Lapse {
        tx,
        merchant,
        scrip_id,
        value,
        time,
    })
}

pub(super) fn read_broker(target: &Path) -> Result<(PathBuf, BrokerLog), ReconcileError> {
    use broker::core::Kind;
    let (path, suite, events) = read_events::<Recorded<Kind>>(target, broker::node::NODE_KIND)?;
    let mut log = BrokerLog {
        uid: Uid([0; 16]),
        state: broker::core::State::new(suite),
        facts: Facts::new(),
        unmatched: BTreeSet::new(),
        lapsed: Vec::new(),
        registered: BTreeSet::new(),
        end: events.last().map_or(UnixMillis::EPOCH, |e| e.time),
    };
    let mut uid = None;
    for event in &events {
        uid = uid.or_else(|| sender_of(&event.kind.sent));
        log.state.fold(event).map_err(illegal(&path))?;
        let (tx, kind) = (event.tx, &event.kind.kind);
        if let Some((customer, fact)) = broker_fact(kind) {
            add_fact(&mut log.facts, tx, customer, fact);
        }
        log.lapsed.extend(broker_lapse(tx, event.time, kind));
        match kind {
            Kind::PeerRegistered { uid, .. } => {
                log.registered.insert(*uid);
            }
            Kind::PurchaseUnmatched { .. } => {
                log.unmatched.insert(tx);
            }
            _ => {}
        }
    }
    // A broker that never answered a frame registered no merchant: nothing to reconcile.
    log.uid = uid.ok_or_else(|| ReconcileError::NoBrokerUid { path: path.clone() })?;
    Ok((path, log))
}

/// The fact a merchant event states, with the customer it concerns.
fn merchant_fact(kind: &merchant::core::events::Kind) -> Option<(Uid, Fact)> {
    use merchant::core::events::Kind;
    Some(match kind {
        Kind::VendorScripIssued { scrip, owner } => (
            *owner,
            Fact::VendorScripIssued {
                merchant: scrip.producer,
                value: scrip.value,
            },
        ),
        Kind::PurchaseMade {
            customer,
            spent,
            change,
            receipt,
            ..
        } => (
            *customer,
            Fact::Bought {
                merchant: spent.producer,
                paid: receipt.paid,
                change: change_of(change.as_ref()),
            },
        ),
        Kind::VendorScripToppedUp { customer, old, new } => (
            *customer,
            Fact::ToppedUp {
                merchant: old.producer,
                from: old.value,
                to: new.value,
            },
        ),
        Kind::VendorScripWithdrawn { customer, spent } => (
            *customer,
            Fact::Withdrawn {
                merchant: spent.producer,
                value: spent.value,
            },
        ),
        Kind::ScripRenewed { owner, new, .. } => (*owner, Fact::renewed(new)),
        _ => return None,
    })
}

pub(super) fn read_merchant(target: &Path) -> Result<MerchantLog, ReconcileError> {
    use merchant::core::events::Kind;
    let (path, _, events) = read_events::<Recorded<Kind>>(target, merchant::node::NODE_KIND)?;
    let mut state = merchant::core::state::State::new();
    let mut facts = Facts::new();
    let mut tx_time = BTreeMap::new();
    let mut uid = None;
    for event in &events {
        uid = uid.or_else(|| sender_of(&event.kind.sent));
        state.try_apply(event).map_err(illegal(&path))?;
        tx_time.insert(event.tx, event.time);
        if let Some((customer, fact)) = merchant_fact(&event.kind.kind) {
            add_fact(&mut facts, event.tx, customer, fact);
        }
    }
    let uid = uid.ok_or_else(|| ReconcileError::NoMerchantUid { path: path.clone() })?;
    Ok(MerchantLog {
        path,
        uid,
        state,
        facts,
        tx_time,
        end: events.last().map_or(UnixMillis::EPOCH, |e| e.time),
    })
}

pub(super) fn read_wallet(target: &Path) -> Result<WalletLog, ReconcileError> {
    let (path, _, events) =
        read_events::<customer_cli::core::WalletEvent>(target, customer_cli::NODE_KIND)?;
    let mut state = customer_cli::core::WalletState::default();
    for event in &events {
        state.apply(event).map_err(|e| ReconcileError::Wallet {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    let Some(me) = state.identity.as_ref().map(|i| i.me) else {
        return Err(ReconcileError::Wallet {
            path,
            reason: "the wallet log has no identity (WalletCreated)".to_owned(),
        });
    };
    Ok(WalletLog {
        path,
        me,
        state,
        end: events.last().map_or(UnixMillis::EPOCH, |e| e.time),
    })
}
