//! Saved requests (protocol.md section 7): "a sender saves a request before it leaves: an
//! event with the tx, the label and the exact bodies". A retry, also after a restart,
//! renders the same bodies byte for byte with fresh signatures and seals, so its request
//! digest is the same and the node answers with its stored reply.
//!
//! A [`SavedRequest`] keeps the layout of the frame (which parts, sealed to whom, which
//! inners) and every signed body's bytes, but no secret: an IdProof is re-made from the
//! wallet's account ID, a CustomerSecret is named by its scrip id and taken from the
//! wallet's sealed store when the frame is rendered.

use serde::{Deserialize, Serialize};
use shared::wire::bodies::OrderInfo;
use shared::wire::{
    Body, DigestItem, Frame, Header, Inner, Label, id_proof, public_key_inner, request_digest,
    seal, secret_inner, sign_bytes,
};
use shared::{AccountId, Amount, CustomerSecret, KeyPair, Nonce, PublicKey, ScripId, TxId, Uid};

use super::events::OwnedScrip;
use crate::error::WalletError;

/// An inner of a saved sealed part (protocol.md section 3), without its secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SavedInner {
    /// `Sign_K(X)`: the body's exact bytes; the signature is made when rendered.
    Signed {
        /// The postcard body.
        body: Vec<u8>,
    },
    /// `SignOnly_K(ID)` for the frame's tx and label, made from the wallet's account ID.
    IdProof,
    /// The wallet's public key (6.0).
    PublicKey,
    /// The CustomerSecret of this scrip, taken from the wallet's sealed store.
    Secret {
        /// The scrip.
        scrip_id: ScripId,
    },
}

impl SavedInner {
    /// `Sign_K(X)` of `body`.
    pub fn signed(body: &impl Body) -> SavedInner {
        SavedInner::Signed {
            body: body.to_bytes(),
        }
    }

    /// The CustomerSecret of `held`, the scrip the request presents (section 3).
    #[must_use]
    pub fn secret_of(held: &OwnedScrip) -> SavedInner {
        SavedInner::Secret {
            scrip_id: held.scrip.id(),
        }
    }
}

/// A part of a saved request (protocol.md section 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SavedPart {
    /// A body signed in the clear.
    Signed {
        /// The postcard body.
        body: Vec<u8>,
    },
    /// A part sealed to `to`.
    Sealed {
        /// The recipient.
        to: Uid,
        /// Its inners, in order.
        inners: Vec<SavedInner>,
    },
}

impl SavedPart {
    /// `body` signed in the clear.
    pub fn signed(body: &impl Body) -> SavedPart {
        SavedPart::Signed {
            body: body.to_bytes(),
        }
    }

    /// The part sealed to the broker in which the customer proves its account (section 1):
    /// `IdProof(ID_C)`, `body` signed, and the CustomerSecret of the BrokerScrip it
    /// `presents`, if any (section 3).
    pub fn to_broker(broker: Uid, body: &impl Body, presents: Option<&OwnedScrip>) -> SavedPart {
        let mut inners = vec![SavedInner::IdProof, SavedInner::signed(body)];
        inners.extend(presents.map(SavedInner::secret_of));
        SavedPart::sealed(broker, inners)
    }

    /// A part sealed to `to` of `inners`, in order.
    pub fn sealed(to: Uid, inners: impl Into<Vec<SavedInner>>) -> SavedPart {
        SavedPart::Sealed {
            to,
            inners: inners.into(),
        }
    }
}

/// What the reply to a request must say, beyond its `re` (protocol.md section 6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    /// 6.0: `X1 = UID_P, I` with `UID_P` the wallet's UID.
    Registration,
    /// 6.0b: `X1 = UID_target, K_target, N`.
    PublicKey {
        /// The peer asked about.
        target: Uid,
        /// `N` of the request.
        nonce: Nonce,
    },
    /// 6.1: `X1 = B0, CS_B0, N`, B0 of value `value` by the broker.
    ObtainBrokerScrip {
        /// `W`.
        value: Amount,
        /// `N`.
        nonce: Nonce,
    },
    /// 6.4: `X1 = B1, CS_B1, N`, B1 of value `new_value` replacing `spent`.
    TopUpBrokerScrip {
        /// B0, spent by the top-up.
        spent: ScripId,
        /// `W_new`.
        new_value: Amount,
        /// `N`.
        nonce: Nonce,
    },
    /// 6.6: `X1 = I, value` with the value of `spent`.
    WithdrawBrokerScrip {
        /// B0, cashed in.
        spent: ScripId,
        /// Its value.
        value: Amount,
    },
    /// 6.8: `X1 = E1, CS_E1` of the same value and producer as `spent`.
    Renew {
        /// The producer.
        producer: Uid,
        /// E0, replaced.
        spent: ScripId,
        /// Its value, which E1 keeps.
        value: Amount,
    },
    /// 6.2 step 1: the notice to the broker. B0 is committed to the exchange from here on
    /// (it must not be presented elsewhere), although it leaves only in step 2.
    VendorScripNotice {
        /// `UID_M`.
        merchant: Uid,
        /// `W`, the VendorScrip value to ask for in step 2.
        value: Amount,
        /// B0, the BrokerScrip that pays.
        spent: ScripId,
    },
    /// 6.2 step 2: the request to M; its outcome is two messages, B's `ChangeBrokerScrip`
    /// (`B1 = B0 − W`, M's undertaking) and M's `VendorScripResponse` (V0 of `W`).
    VendorScripRequest {
        /// `UID_M`.
        merchant: Uid,
        /// `W`.
        value: Amount,
        /// B0.
        spent: ScripId,
        /// B0's value.
        spent_value: Amount,
        /// The broker's deadline from the notice's reply (unix seconds).
        deadline: u64,
    },
    /// 6.3 step 1: `PurchaseInitiated` to the broker, answered by `Ack`.
    PurchaseInitiated {
        /// `UID_M`.
        merchant: Uid,
        /// `W_P`.
        value: Amount,
    },
    /// 6.3 step 2: `PurchaseRequest` to M, answered by `PurchaseResponse` with the change
    /// `V1 = V0 − W_P` (none when zero), `OI` echoed and a receipt.
    Purchase {
        /// `UID_M`.
        merchant: Uid,
        /// V0.
        spent: ScripId,
        /// V0's value.
        spent_value: Amount,
        /// `OI`.
        order: OrderInfo,
    },
    /// `TransactionStatus { tx }` to `node` (section 7): read-only, never saved;
    /// the answer's frames go through the same checks as when first received.
    TransactionStatus {
        /// The node asked (the broker or a merchant).
        node: Uid,
    },
    /// 6.5 step 1: `VendorTopUpRequest` to B, answered by B's `Ack { deadline }`; the
    /// outcome is B's `ChangeBrokerScrip` (`B1 = B0 − W_V`, M's acceptance) and M's
    /// `VendorTopUpResponse` (V1 of `W_V1` in place of V0).
    VendorTopUp {
        /// `UID_M`.
        merchant: Uid,
        /// `W_V`, paid from B0.
        top_up: Amount,
        /// `W_V1 = V0.value + W_V`.
        new_value: Amount,
        /// B0.
        broker_spent: ScripId,
        /// B0's value.
        broker_value: Amount,
        /// V0.
        vendor_spent: ScripId,
    },
    /// 6.7 step 1: `VendorWithdrawRequest` to M, answered by M's `Ack { deadline }`; the
    /// outcome is B's `VendorWithdrawResult` delivery.
    VendorWithdraw {
        /// `UID_M`.
        merchant: Uid,
        /// V0.
        spent: ScripId,
        /// `W = V0.value`.
        value: Amount,
    },
    /// `CatalogueRequest` to `merchant` (docs/adr/0009): read-only, never saved; the
    /// answer is the merchant's signed listing.
    Catalogue {
        /// `UID_M`.
        merchant: Uid,
    },
    /// `MerchantDirectoryRequest` to the broker (docs/adr/0016): read-only, never saved;
    /// the answer is the broker's signed page of named merchants.
    MerchantDirectory,
}

impl Expect {
    /// The scrip this request presents (and so spends, if it succeeds), if any (6.5
    /// presents two: see `Pending::committed_scrips`, which is what the wallet checks). The
    /// 6.2 notice names B0 although B0 leaves only with step 2: from the notice on, B0 is
    /// committed to the exchange.
    #[must_use]
    pub fn presented_scrip(&self) -> Option<ScripId> {
        match self {
            Expect::TopUpBrokerScrip { spent, .. }
            | Expect::WithdrawBrokerScrip { spent, .. }
            | Expect::Renew { spent, .. }
            | Expect::VendorScripNotice { spent, .. }
            | Expect::VendorScripRequest { spent, .. }
            | Expect::Purchase { spent, .. }
            | Expect::VendorWithdraw { spent, .. }
            | Expect::VendorTopUp {
                broker_spent: spent,
                ..
            } => Some(*spent),
            Expect::Registration
            | Expect::PublicKey { .. }
            | Expect::ObtainBrokerScrip { .. }
            | Expect::PurchaseInitiated { .. }
            | Expect::TransactionStatus { .. }
            | Expect::Catalogue { .. }
            | Expect::MerchantDirectory => None,
        }
    }
}

/// A request as saved before it leaves (protocol.md section 7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRequest {
    /// The request's header: the wallet's suite, the label, the tx, the wallet's UID.
    pub header: Header,
    /// The node it is sent to (the broker, or a scrip's producer in 6.8).
    pub to: Uid,
    /// The parts, in order.
    pub parts: Vec<SavedPart>,
    /// The request digest (protocol.md section 7), which the reply's `re` must carry.
    pub digest: Vec<u8>,
    /// What the reply must say.
    pub expect: Expect,
}

impl SavedRequest {
    /// A request of `parts` under `header` to `to`, with its digest computed over the signed
    /// bodies in order, as the node computes it from what it verifies (section 7). Only
    /// `to` answers, and it verifies only the clear parts and the parts sealed to it: a
    /// part sealed to another party (6.2, 6.5, 6.7: the one it forwards unread) is not in
    /// its digest, so not in the one the reply's `re` must carry.
    pub fn new(
        header: Header,
        to: Uid,
        parts: Vec<SavedPart>,
        expect: Expect,
    ) -> Result<Self, WalletError> {
        let digest = {
            let items: Vec<DigestItem<'_>> = signed_bodies(&parts, to)
                .map(|body| DigestItem { origin: None, body })
                .collect();
            request_digest(&header, &items).map_err(WalletError::Build)?
        };
        Ok(SavedRequest {
            header,
            to,
            parts,
            digest,
            expect,
        })
    }

    /// The tx.
    #[must_use]
    pub fn tx(&self) -> TxId {
        self.header.tx
    }

    /// The request label.
    #[must_use]
    pub fn label(&self) -> Label {
        self.header.label
    }

    /// The scrip ids whose CustomerSecret the frame carries.
    pub fn secrets_needed(&self) -> impl Iterator<Item = ScripId> + '_ {
        self.parts
            .iter()
            .filter_map(|p| match p {
                SavedPart::Sealed { inners, .. } => Some(inners),
                SavedPart::Signed { .. } => None,
            })
            .flatten()
            .filter_map(|i| match i {
                SavedInner::Secret { scrip_id } => Some(*scrip_id),
                _ => None,
            })
    }

    /// Whether the frame carries an IdProof.
    #[must_use]
    pub fn needs_id(&self) -> bool {
        self.parts.iter().any(|p| {
            matches!(p, SavedPart::Sealed { inners, .. }
                if inners.iter().any(|i| matches!(i, SavedInner::IdProof)))
        })
    }
}

/// Every signed body of `parts` that `reader` can verify, in frame order: what its
/// request digest hashes.
fn signed_bodies(parts: &[SavedPart], reader: Uid) -> impl Iterator<Item = &[u8]> {
    parts.iter().flat_map(move |p| -> Vec<&[u8]> {
        match p {
            SavedPart::Signed { body } => vec![body.as_slice()],
            SavedPart::Sealed { to, .. } if *to != reader => Vec::new(),
            SavedPart::Sealed { inners, .. } => inners
                .iter()
                .filter_map(|i| match i {
                    SavedInner::Signed { body } => Some(body.as_slice()),
                    _ => None,
                })
                .collect(),
        }
    })
}

/// What rendering a saved request needs besides the request: the wallet's keys, its
/// account ID when the request carries an IdProof, the CustomerSecrets it carries, and the
/// public key of each sealed part's recipient.
pub struct RenderInputs<'a> {
    /// The wallet's key pair (signs every body and IdProof).
    pub keys: &'a KeyPair,
    /// The account ID, if an IdProof is needed.
    pub account_id: Option<&'a AccountId>,
    /// The CustomerSecrets the request carries, by scrip.
    pub secrets: &'a [(ScripId, CustomerSecret)],
    /// The key of a sealed part's recipient.
    pub recipient_key: &'a dyn Fn(Uid) -> Option<PublicKey>,
}

/// Renders a saved request into a frame: the saved bodies byte for byte, fresh signatures,
/// IdProof and seals (protocol.md sections 3 and 7).
pub fn render(request: &SavedRequest, inputs: &RenderInputs<'_>) -> Result<Frame, WalletError> {
    let header = &request.header;
    let mut parts = Vec::with_capacity(request.parts.len());
    for part in &request.parts {
        parts.push(match part {
            SavedPart::Signed { body } => sign_bytes(inputs.keys, header, body.clone())
                .map_err(WalletError::Build)?
                .into(),
            SavedPart::Sealed { to, inners } => {
                let key =
                    (inputs.recipient_key)(*to).ok_or(WalletError::UnknownPeer { uid: *to })?;
                let mut plain: Vec<Inner> = Vec::with_capacity(inners.len());
                for inner in inners {
                    plain.push(render_inner(inner, header, inputs)?);
                }
                seal(header, &key, &plain).map_err(WalletError::Build)?
            }
        });
    }
    let frame = Frame::new(*header, parts);
    frame.check().map_err(WalletError::Build)?;
    Ok(frame)
}

fn render_inner(
    inner: &SavedInner,
    header: &Header,
    inputs: &RenderInputs<'_>,
) -> Result<Inner, WalletError> {
    Ok(match inner {
        SavedInner::Signed { body } => sign_bytes(inputs.keys, header, body.clone())
            .map_err(WalletError::Build)?
            .into(),
        SavedInner::IdProof => {
            let id = inputs.account_id.ok_or(WalletError::NoAccount)?;
            id_proof(inputs.keys, header, id).map_err(WalletError::Build)?
        }
        SavedInner::PublicKey => public_key_inner(inputs.keys.public()),
        SavedInner::Secret { scrip_id } => {
            let cs = inputs
                .secrets
                .iter()
                .find(|(id, _)| id == scrip_id)
                .map(|(_, cs)| cs)
                .ok_or_else(|| {
                    WalletError::SealedSecret(format!("no CustomerSecret for scrip {scrip_id}"))
                })?;
            secret_inner(*scrip_id, cs)
        }
    })
}

/// The encoded frame of `request`, ready to send.
pub fn render_bytes(
    request: &SavedRequest,
    inputs: &RenderInputs<'_>,
) -> Result<Vec<u8>, WalletError> {
    render(request, inputs)?
        .encode()
        .map_err(WalletError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::Suite;

    /// The digest covers the signed bodies in frame order (clear parts and sealed inners),
    /// nothing else: the layout the node's `digest_of_verified` sees (section 7).
    #[test]
    fn digest_covers_the_signed_bodies_in_order() {
        let header = Header::new(
            Suite::Modern,
            Label::BrokerScripTopUp,
            TxId([1; 16]),
            Uid([2; 16]),
        );
        let parts = vec![
            SavedPart::Signed {
                body: b"a".to_vec(),
            },
            SavedPart::Sealed {
                to: Uid([3; 16]),
                inners: vec![
                    SavedInner::IdProof,
                    SavedInner::Signed {
                        body: b"bc".to_vec(),
                    },
                    SavedInner::Secret {
                        scrip_id: ScripId([4; 16]),
                    },
                ],
            },
        ];
        let request = SavedRequest::new(header, Uid([3; 16]), parts, Expect::Registration).unwrap();
        let expected = request_digest(
            &header,
            &[
                DigestItem {
                    origin: None,
                    body: b"a",
                },
                DigestItem {
                    origin: None,
                    body: b"bc",
                },
            ],
        )
        .unwrap();
        assert_eq!(request.digest, expected);
        assert!(request.needs_id());
        assert_eq!(
            request.secrets_needed().collect::<Vec<_>>(),
            [ScripId([4; 16])]
        );
        let clear = SavedRequest::new(
            header,
            Uid([3; 16]),
            vec![SavedPart::Signed {
                body: b"a".to_vec(),
            }],
            Expect::Registration,
        )
        .unwrap();
        assert!(!clear.needs_id());
        assert_ne!(clear.digest, request.digest);
    }
}
