//! What a verified bundle says, in plain words, and the verdict.
//!
//! Each signed evidence becomes a [`Statement`] of its signer (what they put their
//! signature to: protocol.md section 6's bodies), and each event one of its log's owner
//! (what the log records it did). A statement makes [`Claim`]s on a few [`Topic`]s: the
//! amount paid, the change, the amount exchanged, who the customer and the merchant are,
//! the order, the decision. The verdict compares every claim on a topic with the first
//! signed claim on it: consistent when all agree, otherwise each statement that
//! contradicts it, named with both parties and messages. Signed statements come first,
//! because a signature binds its signer and a log binds nobody but its keeper.

use std::collections::BTreeMap;
use std::fmt;

use shared::events::Evidence;
use shared::time::{UnixMillis, UnixSecs};
use shared::variant::variant_name;
use shared::wire::bodies::{
    Body as _, ChangeBrokerScripX4, ExchangeAuthorizationRequestX3,
    ExchangeAuthorizationResponseX5, OrderId, PurchaseCompletedX3, PurchaseInitiatedX0,
    PurchaseRequestX1, PurchaseResponseX2, VendorScripNoticeResponseX0, VendorScripNoticeX0,
    VendorScripRequestX1, VendorScripRequestX2, VendorScripResponseX6, VendorTopUpAcceptedX3,
    VendorTopUpAuthorizationX2, VendorTopUpDecisionBody, VendorTopUpRequestX0,
    VendorTopUpRequestX1, VendorTopUpResponseX4, VendorWithdrawAuthorizationX2,
    VendorWithdrawRequestX0, VendorWithdrawRequestX1, VendorWithdrawResponseX3,
    VendorWithdrawResultX4,
};
use shared::wire::{Decision, Label};
use shared::{Amount, Uid};

use super::Node;
use super::header_of;
use super::verify::{Decoded, Verified};

/// What a claim is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topic {
    /// `W_P`, the price paid (6.3).
    Paid,
    /// The change returned (6.3: `V0 − W_P`).
    Change,
    /// `W`, the value exchanged (6.2).
    Exchanged,
    /// `W_V`, the value added by a VendorScrip top-up (6.5).
    TopUp,
    /// `W_V1`, the VendorScrip's value after the top-up (6.5).
    NewValue,
    /// `W`, the value of a VendorScrip withdrawal (6.7).
    Withdrawn,
    /// `UID_C`.
    Customer,
    /// `UID_M`.
    Merchant,
    /// The order id (6.3).
    Order,
    /// The broker's decision (6.2, 6.5, 6.7): authorized or not.
    Authorized,
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Topic::Paid => "the amount paid",
            Topic::Change => "the change",
            Topic::Exchanged => "the amount exchanged",
            Topic::TopUp => "the amount topped up",
            Topic::NewValue => "the VendorScrip's new value",
            Topic::Withdrawn => "the amount withdrawn",
            Topic::Customer => "the customer",
            Topic::Merchant => "the merchant",
            Topic::Order => "the order",
            Topic::Authorized => "the broker's decision",
        })
    }
}

/// A claim's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// An amount.
    Amount(Amount),
    /// A party.
    Party(Uid),
    /// An order.
    Order(OrderId),
    /// Yes or no.
    Yes(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Amount(a) => write!(f, "{a}"),
            Value::Party(u) => write!(f, "{u}"),
            Value::Order(o) => write!(f, "order {o}"),
            Value::Yes(true) => f.write_str("OK"),
            Value::Yes(false) => f.write_str("NOK"),
        }
    }
}

/// One claim.
pub type Claim = (Topic, Value);

/// Where a statement comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A signed body kept as evidence in `kept_by`'s log.
    Signed {
        /// The message it was signed as.
        label: Label,
        /// Whose log kept it.
        kept_by: Uid,
        /// Which event of that log.
        seq: u64,
    },
    /// An event of the party's own log.
    Logged {
        /// The log's kind.
        node: Node,
        /// The event's seq.
        seq: u64,
        /// Its time.
        time: UnixMillis,
        /// Its kind's name.
        kind: String,
    },
}

/// What one party signed or logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The party.
    pub party: Uid,
    /// Where it comes from.
    pub source: Source,
    /// In words (parties by UID; [`Account::name`] names them).
    pub text: String,
    /// Its claims.
    pub claims: Vec<Claim>,
}

/// Two statements that disagree on a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contradiction {
    /// The topic.
    pub topic: Topic,
    /// The first signed statement on it (index into [`Account::statements`]).
    pub first: usize,
    /// The one that contradicts it.
    pub second: usize,
}

/// A verified bundle, told.
#[derive(Clone, Debug)]
pub struct Account {
    /// The bundle, verified.
    pub verified: Verified,
    /// Every statement: signed ones first, then logged ones, each in bundle order.
    pub statements: Vec<Statement>,
    /// Every contradiction; empty when consistent.
    pub contradictions: Vec<Contradiction>,
    /// Each party's role, as the bundle shows it.
    roles: BTreeMap<Uid, &'static str>,
}

impl Account {
    /// Whether every statement agrees.
    #[must_use]
    pub fn consistent(&self) -> bool {
        self.contradictions.is_empty()
    }

    /// A party in words: "the broker", "merchant 0e72451a", "customer e57137bd".
    #[must_use]
    pub fn name(&self, uid: &Uid) -> String {
        if *uid == self.verified.bundle.broker {
            return "the broker".to_owned();
        }
        let short: String = uid.to_string().chars().take(8).collect();
        format!("{} {short}", self.roles.get(uid).copied().unwrap_or("peer"))
    }

    /// A statement's source in words.
    #[must_use]
    pub fn source(&self, s: &Statement) -> String {
        match &s.source {
            Source::Signed {
                label,
                kept_by,
                seq,
            } => {
                format!(
                    "{label}, kept in {}'s log at event {seq}",
                    self.name(kept_by)
                )
            }
            Source::Logged {
                seq, time, kind, ..
            } => {
                format!("{kind}, event {seq} at {}", time.utc())
            }
        }
    }
}

/// The role a label's sender plays (section 6).
pub(crate) fn sender_role(label: Label) -> Option<&'static str> {
    use Label as L;
    match label {
        L::PurchaseInitiated
        | L::PurchaseRequest
        | L::VendorScripNotice
        | L::VendorScripRequest
        | L::BrokerScripRequest
        | L::BrokerScripTopUp
        | L::BrokerScripWithdraw
        | L::VendorTopUpRequest
        | L::VendorWithdrawRequest => Some("customer"),
        L::PurchaseResponse
        | L::PurchaseCompleted
        | L::ExchangeAuthorizationRequest
        | L::VendorScripResponse
        | L::VendorTopUpAccepted
        | L::VendorTopUpResponse
        | L::VendorWithdrawAuthorization => Some("merchant"),
        _ => None,
    }
}

/// Tells `verified` (see the module doc).
#[must_use]
pub fn tell(verified: Verified) -> Account {
    let mut signed = Vec::new();
    let mut logged = Vec::new();
    let mut seen: Vec<&Evidence> = Vec::new();
    for record in &verified.records {
        let (seq, time, _) = record.event.position();
        for evidence in record.event.evidence() {
            // The same signed part kept by two logs is one statement.
            if seen.contains(&evidence) {
                continue;
            }
            seen.push(evidence);
            if let Some(statement) = signed_statement(evidence, record.owner, seq) {
                signed.push(statement);
            }
        }
        let (text, claims, kind) = logged_statement(&record.event);
        logged.push(Statement {
            party: record.owner,
            source: Source::Logged {
                node: record.node,
                seq,
                time,
                kind,
            },
            text,
            claims,
        });
    }
    let mut roles: BTreeMap<Uid, &'static str> = BTreeMap::new();
    for record in &verified.records {
        match record.node {
            Node::Merchant => {
                roles.insert(record.owner, "merchant");
            }
            Node::Wallet => {
                roles.insert(record.owner, "customer");
            }
            Node::Broker => {}
        }
    }
    let statements: Vec<Statement> = signed.into_iter().chain(logged).collect();
    for s in &statements {
        if let Source::Signed { label, .. } = &s.source
            && let Some(role) = sender_role(*label)
        {
            roles.entry(s.party).or_insert(role);
        }
        for (topic, value) in &s.claims {
            if let Value::Party(uid) = value {
                let role = match topic {
                    Topic::Customer => "customer",
                    _ => "merchant",
                };
                roles.entry(*uid).or_insert(role);
            }
        }
    }
    let contradictions = contradictions(&statements);
    Account {
        verified,
        statements,
        contradictions,
        roles,
    }
}

/// Every statement whose claim on a topic differs from the first statement's on it.
fn contradictions(statements: &[Statement]) -> Vec<Contradiction> {
    let mut first: BTreeMap<Topic, (usize, Value)> = BTreeMap::new();
    let mut out = Vec::new();
    for (index, s) in statements.iter().enumerate() {
        for (topic, value) in &s.claims {
            match first.get(topic) {
                None => {
                    first.insert(*topic, (index, *value));
                }
                Some((at, v)) if v != value => out.push(Contradiction {
                    topic: *topic,
                    first: *at,
                    second: index,
                }),
                Some(_) => {}
            }
        }
    }
    out
}

fn party(uid: Uid) -> Value {
    Value::Party(uid)
}

fn amount(a: Amount) -> Value {
    Value::Amount(a)
}

fn ok(d: &Decision) -> Value {
    Value::Yes(d.is_ok())
}

fn decision(d: &Decision) -> String {
    match d {
        Decision::Ok => "OK".to_owned(),
        Decision::Nok(r) => format!("NOK ({})", r.message),
    }
}

/// The statement of a signed evidence kept by `kept_by` at `seq`. An evidence whose
/// header does not parse was refused by `verify`; it yields none here.
fn signed_statement(e: &Evidence, kept_by: Uid, seq: u64) -> Option<Statement> {
    let header = header_of(&e.header).ok()?;
    let s = e.signer;
    let b = &e.body;
    let (text, claims): (String, Vec<Claim>) = match header.label {
        Label::PurchaseInitiated => match PurchaseInitiatedX0::from_bytes(b) {
            Ok(x) => (
                format!(
                    "announced to the broker a purchase of {} from {}",
                    x.value, x.merchant
                ),
                vec![
                    (Topic::Paid, amount(x.value)),
                    (Topic::Merchant, party(x.merchant)),
                    (Topic::Customer, party(s)),
                ],
            ),
            Err(_) => undecoded(header.label),
        },
        Label::PurchaseRequest => match PurchaseRequestX1::from_bytes(b) {
            Ok(x) => {
                let total = x.order.total().unwrap_or(Amount::from_minor(u64::MAX));
                let spent = x.scrip.value();
                let mut claims = vec![
                    (Topic::Paid, amount(total)),
                    (Topic::Merchant, party(x.scrip.body.producer)),
                    (Topic::Customer, party(s)),
                    (Topic::Order, Value::Order(x.order.order_id)),
                ];
                if let Ok(change) = spent.checked_sub(total) {
                    claims.push((Topic::Change, amount(change)));
                }
                (
                    format!(
                        "paid {} {total} of VendorScrip {} ({spent}) for {} × {} at {} (order {})",
                        x.scrip.body.producer,
                        x.scrip.body.scrip_id,
                        x.order.quantity,
                        x.order.name,
                        x.order.unit_price,
                        x.order.order_id
                    ),
                    claims,
                )
            }
            Err(_) => undecoded(header.label),
        },
        Label::PurchaseResponse => match PurchaseResponseX2::from_bytes(b) {
            Ok(x) => {
                let change = x.change.as_ref().map_or(Amount::ZERO, |c| c.scrip.value());
                (
                    format!(
                        "gave a receipt for {} (order {}) and change {change}",
                        x.receipt.paid, x.receipt.order_id
                    ),
                    vec![
                        (Topic::Paid, amount(x.receipt.paid)),
                        (Topic::Change, amount(change)),
                        (Topic::Merchant, party(s)),
                        (Topic::Order, Value::Order(x.receipt.order_id)),
                    ],
                )
            }
            Err(_) => undecoded(header.label),
        },
        Label::PurchaseCompleted => match PurchaseCompletedX3::from_bytes(b) {
            Ok(x) => (
                format!(
                    "reported to the broker that {} paid {}",
                    x.customer, x.value
                ),
                vec![
                    (Topic::Paid, amount(x.value)),
                    (Topic::Customer, party(x.customer)),
                    (Topic::Merchant, party(s)),
                ],
            ),
            Err(_) => undecoded(header.label),
        },
        Label::VendorScripNotice => match VendorScripNoticeX0::from_bytes(b) {
            Ok(x) => (
                format!("announced to the broker an exchange with {}", x.merchant),
                vec![
                    (Topic::Merchant, party(x.merchant)),
                    (Topic::Customer, party(s)),
                ],
            ),
            Err(_) => undecoded(header.label),
        },
        Label::VendorScripRequest => {
            if let Ok(x) = VendorScripRequestX1::from_bytes(b) {
                (
                    format!(
                        "offered the broker BrokerScrip {} ({}) for {} of VendorScrip",
                        x.scrip.body.scrip_id,
                        x.scrip.value(),
                        x.value
                    ),
                    vec![
                        (Topic::Exchanged, amount(x.value)),
                        (Topic::Customer, party(s)),
                    ],
                )
            } else if let Ok(x) = VendorScripRequestX2::from_bytes(b) {
                (
                    format!("asked the merchant for {} of VendorScrip", x.value),
                    vec![
                        (Topic::Exchanged, amount(x.value)),
                        (Topic::Customer, party(s)),
                    ],
                )
            } else {
                undecoded(header.label)
            }
        }
        Label::ExchangeAuthorizationRequest => {
            match ExchangeAuthorizationRequestX3::from_bytes(b) {
                Ok(x) => (
                    format!(
                        "undertook to issue {} of VendorScrip to {} if the broker authorizes",
                        x.value, x.customer
                    ),
                    vec![
                        (Topic::Exchanged, amount(x.value)),
                        (Topic::Customer, party(x.customer)),
                        (Topic::Merchant, party(s)),
                    ],
                ),
                Err(_) => undecoded(header.label),
            }
        }
        Label::ExchangeAuthorizationResponse => {
            match ExchangeAuthorizationResponseX5::from_bytes(b) {
                Ok(x) => (
                    format!(
                        "decided {} on the exchange of {} for {}",
                        decision(&x.decision),
                        x.value,
                        x.customer
                    ),
                    vec![
                        (Topic::Exchanged, amount(x.value)),
                        (Topic::Customer, party(x.customer)),
                        (Topic::Authorized, ok(&x.decision)),
                    ],
                ),
                Err(_) => undecoded(header.label),
            }
        }
        Label::ChangeBrokerScrip => match ChangeBrokerScripX4::from_bytes(b) {
            Ok(x) => (
                format!(
                    "told the customer its decision {}, change {}",
                    decision(&x.outcome),
                    x.change.as_ref().map_or(Amount::ZERO, |c| c.scrip.value())
                ),
                vec![(Topic::Authorized, ok(&x.outcome))],
            ),
            // 6.5 step 6 (`ChangeBrokerScripX5`) is the same body.
            Err(_) => undecoded(header.label),
        },
        Label::VendorScripResponse => match VendorScripResponseX6::from_bytes(b) {
            Ok(x) => (
                format!(
                    "issued VendorScrip {} of {}",
                    x.scrip.body.scrip_id,
                    x.scrip.value()
                ),
                vec![
                    (Topic::Exchanged, amount(x.scrip.value())),
                    (Topic::Merchant, party(s)),
                ],
            ),
            Err(_) => undecoded(header.label),
        },
        Label::VendorTopUpRequest
        | Label::VendorTopUpAuthorization
        | Label::VendorTopUpAccepted
        | Label::VendorTopUpDecision
        | Label::VendorTopUpResponse => top_up_body(header.label, s, b),
        Label::VendorWithdrawRequest
        | Label::VendorWithdrawAuthorization
        | Label::VendorWithdrawResponse
        | Label::VendorWithdrawResult => withdraw_body(header.label, s, b),
        Label::Ack => ("acknowledged the request".to_owned(), Vec::new()),
        Label::VendorScripNoticeResponse => match VendorScripNoticeResponseX0::from_bytes(b) {
            Ok(x) => (
                format!(
                    "answered the notice: the exchange is open until {}",
                    UnixSecs::new(x.deadline).utc()
                ),
                Vec::new(),
            ),
            Err(_) => undecoded(header.label),
        },
        other => undecoded(other),
    };
    Some(Statement {
        party: s,
        source: Source::Signed {
            label: header.label,
            kept_by,
            seq,
        },
        text,
        claims,
    })
}

/// The signed bodies of 6.5 (VendorScrip top-up), signed by `s`.
fn top_up_body(label: Label, s: Uid, b: &[u8]) -> (String, Vec<Claim>) {
    if label == Label::VendorTopUpRequest {
        if let Ok(x) = VendorTopUpRequestX0::from_bytes(b) {
            return (
                format!(
                    "asked the broker to pay {} of its BrokerScrip {} ({}) onto its VendorScrip of {}, to {}",
                    x.top_up,
                    x.broker_scrip.body.scrip_id,
                    x.broker_scrip.value(),
                    x.merchant,
                    x.new_value
                ),
                vec![
                    (Topic::TopUp, amount(x.top_up)),
                    (Topic::NewValue, amount(x.new_value)),
                    (Topic::Merchant, party(x.merchant)),
                    (Topic::Customer, party(s)),
                ],
            );
        }
        if let Ok(x) = VendorTopUpRequestX1::from_bytes(b) {
            let v = &x.vendor_scrip;
            let mut claims = vec![
                (Topic::NewValue, amount(x.new_value)),
                (Topic::Merchant, party(v.body.producer)),
                (Topic::Customer, party(s)),
            ];
            if let Ok(added) = x.new_value.checked_sub(v.value()) {
                claims.push((Topic::TopUp, amount(added)));
            }
            return (
                format!(
                    "asked {} to top up its VendorScrip {} ({}) to {}",
                    v.body.producer,
                    v.body.scrip_id,
                    v.value(),
                    x.new_value
                ),
                claims,
            );
        }
    }
    if let (Label::VendorTopUpAuthorization, Ok(x)) =
        (label, VendorTopUpAuthorizationX2::from_bytes(b))
    {
        return (
            format!(
                "told the merchant it holds {} of {}'s BrokerScrip for a top-up to {}, until {}",
                x.top_up,
                x.customer,
                x.new_value,
                UnixSecs::new(x.deadline).utc()
            ),
            vec![
                (Topic::TopUp, amount(x.top_up)),
                (Topic::NewValue, amount(x.new_value)),
                (Topic::Customer, party(x.customer)),
            ],
        );
    }
    if let (Label::VendorTopUpAccepted, Ok(x)) = (label, VendorTopUpAcceptedX3::from_bytes(b)) {
        return match x {
            VendorTopUpAcceptedX3::Accept {
                customer,
                top_up,
                new_value,
                scrip_id,
            } => (
                format!(
                    "undertook to issue {customer} VendorScrip of {new_value} in place of {scrip_id} once the broker pays it {top_up}"
                ),
                vec![
                    (Topic::TopUp, amount(top_up)),
                    (Topic::NewValue, amount(new_value)),
                    (Topic::Customer, party(customer)),
                    (Topic::Merchant, party(s)),
                ],
            ),
            VendorTopUpAcceptedX3::Decline {
                reason,
                customer,
                top_up,
            } => (
                format!("declined the top-up of {top_up} for {customer}: {reason}"),
                vec![
                    (Topic::TopUp, amount(top_up)),
                    (Topic::Customer, party(customer)),
                    (Topic::Merchant, party(s)),
                ],
            ),
        };
    }
    if let (Label::VendorTopUpDecision, Ok(x)) = (label, VendorTopUpDecisionBody::from_bytes(b)) {
        return (
            format!("decided {} on the top-up", decision(&x.decision)),
            vec![(Topic::Authorized, ok(&x.decision))],
        );
    }
    if let (Label::VendorTopUpResponse, Ok(x)) = (label, VendorTopUpResponseX4::from_bytes(b)) {
        return (
            format!(
                "issued VendorScrip {} of {}",
                x.scrip.body.scrip_id,
                x.scrip.value()
            ),
            vec![
                (Topic::NewValue, amount(x.scrip.value())),
                (Topic::Merchant, party(s)),
            ],
        );
    }
    undecoded(label)
}

/// The signed bodies of 6.7 (VendorScrip withdrawal), signed by `s`.
fn withdraw_body(label: Label, s: Uid, b: &[u8]) -> (String, Vec<Claim>) {
    if label == Label::VendorWithdrawRequest {
        if let Ok(x) = VendorWithdrawRequestX1::from_bytes(b) {
            return (
                format!(
                    "asked the broker to pay it {} for its VendorScrip of {}",
                    x.value, x.merchant
                ),
                vec![
                    (Topic::Withdrawn, amount(x.value)),
                    (Topic::Merchant, party(x.merchant)),
                    (Topic::Customer, party(s)),
                ],
            );
        }
        if let Ok(x) = VendorWithdrawRequestX0::from_bytes(b) {
            return (
                format!(
                    "asked {} to cash in its VendorScrip {} ({})",
                    x.scrip.body.producer,
                    x.scrip.body.scrip_id,
                    x.scrip.value()
                ),
                vec![
                    (Topic::Withdrawn, amount(x.scrip.value())),
                    (Topic::Merchant, party(x.scrip.body.producer)),
                    (Topic::Customer, party(s)),
                ],
            );
        }
    }
    if let (Label::VendorWithdrawAuthorization, Ok(x)) =
        (label, VendorWithdrawAuthorizationX2::from_bytes(b))
    {
        return (
            format!(
                "asked the broker to pay {} {} from its account, until {}",
                x.customer,
                x.value,
                UnixSecs::new(x.deadline).utc()
            ),
            vec![
                (Topic::Withdrawn, amount(x.value)),
                (Topic::Customer, party(x.customer)),
                (Topic::Merchant, party(s)),
            ],
        );
    }
    if let (Label::VendorWithdrawResponse, Ok(x)) = (label, VendorWithdrawResponseX3::from_bytes(b))
    {
        return (
            format!(
                "decided {} on paying {} {}",
                decision(&x.decision),
                x.customer,
                x.value
            ),
            vec![
                (Topic::Withdrawn, amount(x.value)),
                (Topic::Customer, party(x.customer)),
                (Topic::Authorized, ok(&x.decision)),
            ],
        );
    }
    if let (Label::VendorWithdrawResult, Ok(x)) = (label, VendorWithdrawResultX4::from_bytes(b)) {
        return (
            format!(
                "told the customer its decision {} on the withdrawal from {}",
                decision(&x.decision),
                x.merchant
            ),
            vec![
                (Topic::Merchant, party(x.merchant)),
                (Topic::Authorized, ok(&x.decision)),
            ],
        );
    }
    undecoded(label)
}

/// A signed body told by its label only (no claim is read from it).
fn undecoded(label: Label) -> (String, Vec<Claim>) {
    (format!("signed a {label} message"), Vec::new())
}

/// The statement of an event: its text, claims and kind name.
fn logged_statement(event: &Decoded) -> (String, Vec<Claim>, String) {
    match event {
        Decoded::Broker(e) => {
            use broker::core::Kind as K;
            let kind = &e.kind.kind;
            let name = variant_name(kind);
            let (text, claims) = match kind {
                K::PurchaseOpened {
                    customer,
                    merchant,
                    value,
                } => (
                    format!(
                        "logged that {customer} announced a purchase of {value} from {merchant}"
                    ),
                    vec![
                        (Topic::Paid, amount(*value)),
                        (Topic::Customer, party(*customer)),
                        (Topic::Merchant, party(*merchant)),
                    ],
                ),
                K::PurchaseRecorded {
                    customer,
                    merchant,
                    value,
                } => (
                    format!(
                        "recorded the purchase: {customer} paid {merchant} {value}, and lowered the memo float:vendor of {merchant} by {value}"
                    ),
                    vec![
                        (Topic::Paid, amount(*value)),
                        (Topic::Customer, party(*customer)),
                        (Topic::Merchant, party(*merchant)),
                    ],
                ),
                K::PurchaseUnmatched {
                    customer,
                    merchant,
                    value,
                } => (
                    format!(
                        "recorded a report by {merchant} of a purchase of {value} by {customer} it had no announcement of"
                    ),
                    vec![
                        (Topic::Paid, amount(*value)),
                        (Topic::Customer, party(*customer)),
                        (Topic::Merchant, party(*merchant)),
                    ],
                ),
                K::ExchangeOpened {
                    customer,
                    merchant,
                    deadline,
                } => (
                    format!(
                        "opened an exchange of {customer} with {merchant}, open until {}",
                        UnixSecs::new(*deadline).utc()
                    ),
                    vec![
                        (Topic::Customer, party(*customer)),
                        (Topic::Merchant, party(*merchant)),
                    ],
                ),
                K::ExchangeAuthorized {
                    customer,
                    merchant,
                    value,
                    spent,
                    change,
                } => {
                    let change = change.map_or(Amount::ZERO, |c| c.value);
                    (
                        format!(
                            "authorized the exchange: spent {customer}'s BrokerScrip {spent}, paid {merchant} {value}, returned change {change}"
                        ),
                        vec![
                            (Topic::Exchanged, amount(*value)),
                            (Topic::Customer, party(*customer)),
                            (Topic::Merchant, party(*merchant)),
                            (Topic::Authorized, Value::Yes(true)),
                        ],
                    )
                }
                K::ExchangeRefused {
                    customer,
                    merchant,
                    reason,
                } => (
                    format!(
                        "refused the exchange of {customer} with {merchant}: {}",
                        reason.message
                    ),
                    vec![
                        (Topic::Customer, party(*customer)),
                        (Topic::Merchant, party(*merchant)),
                        (Topic::Authorized, Value::Yes(false)),
                    ],
                ),
                K::EscrowOpened {
                    customer,
                    merchant,
                    scrip,
                    top_up,
                    new_value,
                    deadline,
                } => (
                    format!(
                        "held {customer}'s BrokerScrip {scrip} for a top-up of {top_up} onto {merchant}'s VendorScrip (to {new_value}) until {}",
                        UnixSecs::new(*deadline).utc()
                    ),
                    vec![
                        (Topic::TopUp, amount(*top_up)),
                        (Topic::NewValue, amount(*new_value)),
                        (Topic::Customer, party(*customer)),
                        (Topic::Merchant, party(*merchant)),
                    ],
                ),
                K::VendorTopUpSettled {
                    customer,
                    merchant,
                    top_up,
                    spent,
                    change,
                } => {
                    let change = change.map_or(Amount::ZERO, |c| c.value);
                    (
                        format!(
                            "settled the top-up: spent {customer}'s BrokerScrip {spent}, paid {merchant} {top_up}, returned change {change}"
                        ),
                        vec![
                            (Topic::TopUp, amount(*top_up)),
                            (Topic::Customer, party(*customer)),
                            (Topic::Merchant, party(*merchant)),
                            (Topic::Authorized, Value::Yes(true)),
                        ],
                    )
                }
                K::EscrowReleased {
                    customer,
                    merchant,
                    reason,
                    ..
                }
                | K::VendorTopUpRefused {
                    customer,
                    merchant,
                    reason,
                } => (
                    format!(
                        "ended {customer}'s top-up with {merchant} with nothing moved: {}",
                        reason.message
                    ),
                    vec![
                        (Topic::Customer, party(*customer)),
                        (Topic::Merchant, party(*merchant)),
                        (Topic::Authorized, Value::Yes(false)),
                    ],
                ),
                K::VendorScripRedeemed {
                    customer,
                    merchant,
                    value,
                } => (
                    format!(
                        "paid {customer} {value} from {merchant}'s account, and lowered the memo float:vendor of {merchant} by {value}"
                    ),
                    vec![
                        (Topic::Withdrawn, amount(*value)),
                        (Topic::Customer, party(*customer)),
                        (Topic::Merchant, party(*merchant)),
                        (Topic::Authorized, Value::Yes(true)),
                    ],
                ),
                K::VendorWithdrawRefused {
                    customer,
                    merchant,
                    value,
                    reason,
                } => (
                    format!(
                        "refused to pay {customer} {value} from {merchant}'s account: {}",
                        reason.message
                    ),
                    vec![
                        (Topic::Withdrawn, amount(*value)),
                        (Topic::Customer, party(*customer)),
                        (Topic::Merchant, party(*merchant)),
                        (Topic::Authorized, Value::Yes(false)),
                    ],
                ),
                _ => (format!("logged {name}"), Vec::new()),
            };
            (text, claims, name)
        }
        Decoded::Merchant(e) => {
            use merchant::core::events::Kind as K;
            let kind = &e.kind.kind;
            let name = kind.name().to_owned();
            let (text, claims) = match kind {
                K::PurchaseMade {
                    customer,
                    spent,
                    change,
                    order,
                    receipt,
                } => {
                    let change = change.map_or(Amount::ZERO, |c| c.value);
                    (
                        format!(
                            "took {} of {customer}'s VendorScrip {} ({}) for {} × {} and issued change {change}",
                            receipt.paid, spent.scrip_id, spent.value, order.quantity, order.name
                        ),
                        vec![
                            (Topic::Paid, amount(receipt.paid)),
                            (Topic::Change, amount(change)),
                            (Topic::Customer, party(*customer)),
                            (Topic::Order, Value::Order(receipt.order_id)),
                        ],
                    )
                }
                K::PurchaseReported => (
                    "was told by the broker that its report was received".to_owned(),
                    Vec::new(),
                ),
                K::ExchangeRequested {
                    customer, value, ..
                } => (
                    format!("asked the broker to authorize {customer}'s exchange of {value}"),
                    vec![
                        (Topic::Exchanged, amount(*value)),
                        (Topic::Customer, party(*customer)),
                    ],
                ),
                K::VendorScripIssued { scrip, owner } => (
                    format!(
                        "issued VendorScrip {} of {} to {owner}",
                        scrip.scrip_id, scrip.value
                    ),
                    vec![
                        (Topic::Exchanged, amount(scrip.value)),
                        (Topic::Customer, party(*owner)),
                    ],
                ),
                K::ExchangeRefused { reason } => (
                    format!("was refused the exchange by the broker: {}", reason.message),
                    vec![(Topic::Authorized, Value::Yes(false))],
                ),
                K::VendorEscrowOpened {
                    customer,
                    scrip_id,
                    escrow,
                    ..
                } => match escrow {
                    merchant::core::events::Escrow::TopUp {
                        top_up, new_value, ..
                    } => (
                        format!(
                            "held {customer}'s VendorScrip {scrip_id} for a top-up of {top_up} to {new_value}"
                        ),
                        vec![
                            (Topic::TopUp, amount(*top_up)),
                            (Topic::NewValue, amount(*new_value)),
                            (Topic::Customer, party(*customer)),
                        ],
                    ),
                    merchant::core::events::Escrow::Withdraw { value } => (
                        format!(
                            "held {customer}'s VendorScrip {scrip_id} for a withdrawal of {value}"
                        ),
                        vec![
                            (Topic::Withdrawn, amount(*value)),
                            (Topic::Customer, party(*customer)),
                        ],
                    ),
                },
                K::VendorScripToppedUp { customer, old, new } => {
                    let mut claims = vec![
                        (Topic::NewValue, amount(new.value)),
                        (Topic::Customer, party(*customer)),
                    ];
                    if let Ok(added) = new.value.checked_sub(old.value) {
                        claims.push((Topic::TopUp, amount(added)));
                    }
                    (
                        format!(
                            "replaced {customer}'s VendorScrip {} ({}) by {} ({})",
                            old.scrip_id, old.value, new.scrip_id, new.value
                        ),
                        claims,
                    )
                }
                K::VendorScripWithdrawn { customer, spent } => (
                    format!(
                        "spent {customer}'s VendorScrip {} ({}) for the withdrawal",
                        spent.scrip_id, spent.value
                    ),
                    vec![
                        (Topic::Withdrawn, amount(spent.value)),
                        (Topic::Customer, party(*customer)),
                    ],
                ),
                K::VendorEscrowReleased { scrip_id, reason } => (
                    format!(
                        "released VendorScrip {scrip_id}, nothing moved: {}",
                        reason.message
                    ),
                    vec![(Topic::Authorized, Value::Yes(false))],
                ),
                _ => (format!("logged {name}"), Vec::new()),
            };
            (text, claims, name)
        }
        Decoded::Wallet(e) => {
            use customer_cli::core::WalletEvent as W;
            let name = variant_name(&e.kind);
            let (text, claims) = match &e.kind {
                W::RequestSaved { request } => (
                    format!(
                        "saved its {} request before sending it",
                        request.header.label
                    ),
                    Vec::new(),
                ),
                W::PurchaseAnnounced => (
                    "was told by the broker that the purchase was announced".to_owned(),
                    Vec::new(),
                ),
                W::ItemBought {
                    change, receipt, ..
                } => {
                    let change = change.as_ref().map_or(Amount::ZERO, |c| c.scrip.value());
                    (
                        format!(
                            "received the receipt for {} (order {}) and change {change}",
                            receipt.paid, receipt.order_id
                        ),
                        vec![
                            (Topic::Paid, amount(receipt.paid)),
                            (Topic::Change, amount(change)),
                            (Topic::Order, Value::Order(receipt.order_id)),
                        ],
                    )
                }
                W::ExchangeSettled {
                    outcome, change, ..
                } => (
                    format!(
                        "received the broker's decision {}, change {}",
                        if outcome.is_ok() { "OK" } else { "NOK" },
                        change.as_ref().map_or(Amount::ZERO, |c| c.scrip.value())
                    ),
                    vec![(Topic::Authorized, Value::Yes(outcome.is_ok()))],
                ),
                W::ExchangeNoticed { deadline, .. } => (
                    format!(
                        "was told by the broker that the exchange is open until {}",
                        UnixSecs::new(*deadline).utc()
                    ),
                    Vec::new(),
                ),
                W::VendorTopUpAcked { deadline } | W::VendorWithdrawAcked { deadline } => (
                    format!(
                        "was told its scrip is held until {}",
                        UnixSecs::new(*deadline).utc()
                    ),
                    Vec::new(),
                ),
                W::VendorTopUpSettled {
                    outcome, change, ..
                } => (
                    format!(
                        "received the broker's decision {} on the top-up, change {}",
                        if outcome.is_ok() { "OK" } else { "NOK" },
                        change.as_ref().map_or(Amount::ZERO, |c| c.scrip.value())
                    ),
                    vec![(Topic::Authorized, Value::Yes(outcome.is_ok()))],
                ),
                W::VendorScripToppedUp { scrip, .. } => (
                    format!(
                        "received VendorScrip {} of {}",
                        scrip.scrip.body.scrip_id,
                        scrip.scrip.value()
                    ),
                    vec![(Topic::NewValue, amount(scrip.scrip.value()))],
                ),
                W::VendorWithdrawDecided { outcome, value, .. } => (
                    format!(
                        "received the broker's decision {} on cashing in {value}",
                        if outcome.is_ok() { "OK" } else { "NOK" }
                    ),
                    vec![
                        (Topic::Withdrawn, amount(*value)),
                        (Topic::Authorized, Value::Yes(outcome.is_ok())),
                    ],
                ),
                W::VendorScripObtained { scrip } => (
                    format!(
                        "received VendorScrip {} of {}",
                        scrip.scrip.body.scrip_id,
                        scrip.scrip.value()
                    ),
                    vec![(Topic::Exchanged, amount(scrip.scrip.value()))],
                ),
                _ => (format!("logged {name}"), Vec::new()),
            };
            (text, claims, name)
        }
    }
}

/// A claim's value for JSON: an amount in the format of every `--json` document
/// (`{"value": "9.00", "minor": 900}`), a party's UID, an order id, or yes/no.
fn value_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Amount(a) => customer_cli::cli::output::amount_json(*a),
        Value::Party(u) => u.to_string().into(),
        Value::Order(o) => o.to_string().into(),
        Value::Yes(yes) => (*yes).into(),
    }
}

/// `account` as one JSON object (`dispute verify --json`): what [`print`] says, with the
/// parties by UID and role, each statement's claims, the contradictions by the indexes of
/// their statements, and the verdict; a contradicted one carries the keys of every `--json`
/// error (`ok: false`, `error`, `exit_code`, `message`).
#[must_use]
pub fn to_json(account: &Account) -> serde_json::Value {
    let v = &account.verified;
    let statements: Vec<_> = account
        .statements
        .iter()
        .map(|s| {
            let (signed, node, seq, time) = match &s.source {
                Source::Signed { kept_by, seq, .. } => (true, account.name(kept_by), *seq, None),
                Source::Logged {
                    seq, time, node, ..
                } => (
                    false,
                    node.kind().to_owned(),
                    *seq,
                    Some(customer_cli::cli::output::time_json(time.to_secs())),
                ),
            };
            serde_json::json!({
                "party": s.party.to_string(),
                "name": account.name(&s.party),
                "signed": signed,
                "source": account.source(s),
                "log": node,
                "seq": seq,
                "time": time,
                "text": s.text,
                "claims": s.claims.iter().map(|(topic, value)| serde_json::json!({
                    "topic": topic.to_string(), "value": value_json(value),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let contradictions: Vec<_> = account
        .contradictions
        .iter()
        .map(|c| {
            serde_json::json!({
                "topic": c.topic.to_string(), "first": c.first, "second": c.second,
            })
        })
        .collect();
    let mut doc = serde_json::json!({
        "ok": account.consistent(),
        "tx": v.bundle.tx.to_string(),
        "suite": v.bundle.suite.name(),
        "broker": v.bundle.broker.to_string(),
        "events": v.records.len(),
        "signatures": v.signatures,
        "verdict": if account.consistent() { "consistent" } else { "contradicted" },
        "statements": statements,
        "contradictions": contradictions,
    });
    if !account.consistent() {
        let message = super::Contradicted(account.contradictions.len()).to_string();
        if let (Some(doc), serde_json::Value::Object(error)) = (
            doc.as_object_mut(),
            customer_cli::cli::exit::error_json(customer_cli::cli::exit::Exit::Refused, &message),
        ) {
            doc.extend(error);
        }
    }
    doc
}

/// Prints `account`: the checks that held, each party's statements with every UID named by
/// its role, and the verdict.
pub fn print(account: &Account) {
    let v = &account.verified;
    let names = |text: &str| -> String {
        let mut out = text.to_owned();
        for uid in v.keys.keys() {
            out = out.replace(&uid.to_string(), &account.name(uid));
        }
        for record in &v.records {
            out = out.replace(&record.owner.to_string(), &account.name(&record.owner));
        }
        out
    };
    println!(
        "dispute bundle of tx {} ({} suite): {} events, {} signatures verified, every key certified by the broker {}",
        v.bundle.tx,
        v.bundle.suite,
        v.records.len(),
        v.signatures,
        v.bundle.broker
    );
    println!("what each party signed:");
    for s in account
        .statements
        .iter()
        .filter(|s| matches!(s.source, Source::Signed { .. }))
    {
        println!(
            "  {} signed {}: {}",
            account.name(&s.party),
            names(&account.source(s)),
            names(&s.text)
        );
    }
    println!("what each log records:");
    for s in account
        .statements
        .iter()
        .filter(|s| matches!(s.source, Source::Logged { .. }))
    {
        println!(
            "  {} ({}): {}",
            account.name(&s.party),
            account.source(s),
            names(&s.text)
        );
    }
    if account.consistent() {
        println!("verdict: consistent: every signed statement and every log agree");
        return;
    }
    println!("verdict: CONTRADICTED");
    for c in &account.contradictions {
        let (a, b) = (&account.statements[c.first], &account.statements[c.second]);
        let claim = |s: &Statement| {
            s.claims
                .iter()
                .find(|(t, _)| *t == c.topic)
                .map_or_else(String::new, |(_, value)| names(&value.to_string()))
        };
        println!(
            "  on {}: {}'s {} ({}) contradicts {}'s {} ({})",
            c.topic,
            account.name(&b.party),
            names(&account.source(b)),
            claim(b),
            account.name(&a.party),
            names(&account.source(a)),
            claim(a)
        );
    }
}
