//! `dispute verify`: a bundle checked offline against the broker's pinned key alone
//! (protocol.md section 1: the broker is the only certification authority and every peer
//! pins its key).
//!
//! In order, each failure a [`BundleError`]:
//! 1. the key given is the broker the bundle names;
//! 2. every key in the bundle is certified: its broker `PeerRegistered` event holds the key,
//!    the key's hash is the UID (section 1), and among the frames the broker sent with it is
//!    a `RegistrationResponse` naming that UID under the broker's signature (6.0 step 3);
//! 3. every record decodes as its log's event, is of the disputed tx, and belongs to the
//!    broker or to a certified party;
//! 4. every evidence (section 8) was signed under a header of this tx by a certified key,
//!    and its signature verifies (section 3, `SigInput`).

use std::collections::BTreeMap;

use shared::events::{Event, Evidence};
use shared::node::Recorded;
use shared::wire::bodies::{Body as _, RegistrationResponseX1};
use shared::wire::{Frame, Label, Part, verify_signature};
use shared::{PublicKey, Uid};

use super::{Bundle, BundleError, KeyRecord, Node, header_of};

/// A broker event.
pub type BrokerEvent = Event<Recorded<broker::core::Kind>>;
/// A merchant event.
pub type MerchantEvent = Event<Recorded<merchant::core::events::Kind>>;
/// A wallet event.
pub type WalletEvent = Event<customer_cli::core::WalletEvent>;

/// A record's event, decoded as its log's kind.
#[derive(Clone, Debug)]
pub enum Decoded {
    /// The broker's.
    Broker(BrokerEvent),
    /// A merchant's.
    Merchant(MerchantEvent),
    /// A wallet's.
    Wallet(WalletEvent),
}

impl Decoded {
    /// The event's evidence.
    #[must_use]
    pub fn evidence(&self) -> &[Evidence] {
        match self {
            Decoded::Broker(e) => &e.evidence,
            Decoded::Merchant(e) => &e.evidence,
            Decoded::Wallet(e) => &e.evidence,
        }
    }

    /// The senders of the frames a node stored with the event (its own, section 7): they
    /// must be the log's owner.
    #[must_use]
    pub fn senders(&self) -> Vec<Uid> {
        let sent = match self {
            Decoded::Broker(e) => &e.kind.sent,
            Decoded::Merchant(e) => &e.kind.sent,
            Decoded::Wallet(_) => return Vec::new(),
        };
        sent.iter()
            .filter_map(|s| Frame::decode(&s.frame).ok())
            .map(|f| f.header.sender)
            .collect()
    }

    /// Its (seq, time, tx).
    #[must_use]
    pub fn position(&self) -> (u64, shared::UnixMillis, shared::TxId) {
        match self {
            Decoded::Broker(e) => (e.seq, e.time, e.tx),
            Decoded::Merchant(e) => (e.seq, e.time, e.tx),
            Decoded::Wallet(e) => (e.seq, e.time, e.tx),
        }
    }
}

/// One verified record.
#[derive(Clone, Debug)]
pub struct VerifiedRecord {
    /// Its log.
    pub node: Node,
    /// Whose log.
    pub owner: Uid,
    /// The event.
    pub event: Decoded,
}

/// A bundle that verified: its events decoded, its keys certified.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The bundle.
    pub bundle: Bundle,
    /// Its records, in order.
    pub records: Vec<VerifiedRecord>,
    /// Every certified key by UID, the broker's included.
    pub keys: BTreeMap<Uid, PublicKey>,
    /// Signatures verified (evidence and certificates).
    pub signatures: usize,
}

/// Verifies `bundle` against the broker key `broker_pem` (see the module doc).
pub fn verify(bundle: &Bundle, broker_pem: &str) -> Result<Verified, BundleError> {
    let broker_key = PublicKey::from_pem(bundle.suite, broker_pem)
        .map_err(|e| BundleError::BrokerKey(e.to_string()))?;
    if broker_key.uid() != bundle.broker {
        return Err(BundleError::WrongBroker {
            bundle: bundle.broker,
            given: broker_key.uid(),
        });
    }
    let mut signatures = 0;
    let mut keys = BTreeMap::new();
    keys.insert(bundle.broker, broker_key.clone());
    for record in &bundle.keys {
        let key = certify(bundle, record, &broker_key)?;
        signatures += 1;
        keys.insert(record.uid, key);
    }
    let mut records = Vec::with_capacity(bundle.records.len());
    for (index, record) in bundle.records.iter().enumerate() {
        let event = decode(record.node, &record.event).ok_or(BundleError::Event {
            record: index,
            node: record.node,
        })?;
        let (_, _, tx) = event.position();
        if tx != bundle.tx {
            return Err(BundleError::ForeignEvent {
                record: index,
                found: tx,
            });
        }
        let owner_ok = match record.node {
            Node::Broker => record.owner == bundle.broker,
            Node::Merchant | Node::Wallet => {
                record.owner != bundle.broker && keys.contains_key(&record.owner)
            }
        } && event.senders().iter().all(|s| *s == record.owner);
        if !owner_ok {
            return Err(BundleError::Owner {
                record: index,
                owner: record.owner,
            });
        }
        for (i, evidence) in event.evidence().iter().enumerate() {
            check_evidence(bundle, &keys, index, i, evidence)?;
            signatures += 1;
        }
        records.push(VerifiedRecord {
            node: record.node,
            owner: record.owner,
            event,
        });
    }
    Ok(Verified {
        bundle: bundle.clone(),
        records,
        keys,
        signatures,
    })
}

fn decode(node: Node, bytes: &[u8]) -> Option<Decoded> {
    Some(match node {
        Node::Broker => Decoded::Broker(Event::decode(bytes).ok()?),
        Node::Merchant => Decoded::Merchant(Event::decode(bytes).ok()?),
        Node::Wallet => Decoded::Wallet(Event::decode(bytes).ok()?),
    })
}

/// Step 2 of the module doc for one key.
fn certify(
    bundle: &Bundle,
    record: &KeyRecord,
    broker_key: &PublicKey,
) -> Result<PublicKey, BundleError> {
    let refuse = |reason: &str| BundleError::KeyNotCertified {
        uid: record.uid,
        reason: reason.to_owned(),
    };
    let event: BrokerEvent = Event::decode(&record.registration)
        .map_err(|_| refuse("its registration does not decode as a broker event"))?;
    let broker::core::Kind::PeerRegistered { uid, spki_der, .. } = &event.kind.kind else {
        return Err(refuse("its registration is not a PeerRegistered event"));
    };
    if *uid != record.uid {
        return Err(refuse("its registration is of another UID"));
    }
    let key = PublicKey::from_spki_der(bundle.suite, spki_der)
        .map_err(|_| refuse("the registered key does not parse"))?;
    if key.uid() != record.uid {
        return Err(refuse("the registered key does not hash to the UID"));
    }
    let certified = event.kind.sent.iter().any(|sent| {
        let Ok(frame) = Frame::decode(&sent.frame) else {
            return false;
        };
        let h = &frame.header;
        if h.sender != bundle.broker || h.label != Label::RegistrationResponse {
            return false;
        }
        let Some(Part::Signed { body, sig }) = frame.parts.first() else {
            return false;
        };
        verify_signature(h, body, sig, broker_key).is_ok()
            && RegistrationResponseX1::from_bytes(body).is_ok_and(|x| x.uid == record.uid)
    });
    if !certified {
        return Err(refuse(
            "no RegistrationResponse signed by the broker names it",
        ));
    }
    Ok(key)
}

/// Step 4 of the module doc for one evidence.
fn check_evidence(
    bundle: &Bundle,
    keys: &BTreeMap<Uid, PublicKey>,
    record: usize,
    index: usize,
    evidence: &Evidence,
) -> Result<(), BundleError> {
    let header = header_of(&evidence.header).map_err(|reason| BundleError::EvidenceHeader {
        record,
        evidence: index,
        reason,
    })?;
    if header.tx != bundle.tx {
        return Err(BundleError::EvidenceHeader {
            record,
            evidence: index,
            reason: format!("signed under tx {}", header.tx),
        });
    }
    let key = keys
        .get(&evidence.signer)
        .ok_or(BundleError::UnknownSigner {
            record,
            evidence: index,
            signer: evidence.signer,
        })?;
    verify_signature(&header, &evidence.body, &evidence.sig, key).map_err(|_| {
        BundleError::BadSignature {
            record,
            evidence: index,
            signer: evidence.signer,
        }
    })
}
