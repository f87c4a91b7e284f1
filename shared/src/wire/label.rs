//! Message labels (protocol.md section 6, plus the extensions: the catalogue query of
//! docs/adr/0009, the operator's administration of 0010, merchants by name of 0016):
//! the paper's `C_i` as an enum, with the stable
//! `label` byte of `HeaderBytes` (section 3) and the kind of each message (request and its
//! reply label, reply, or delivery).
//!
//! A label is serialized as its code, not as serde's variant index, so that the byte on
//! the wire equals the byte that is signed. Codes are never reused or renumbered.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of message a label names (protocol.md section 3, "Requests, replies and
/// deliveries").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LabelKind {
    /// Sent with a reply inbox; answered by exactly one reply with this label (or `Error`).
    Request {
        /// The label of the (successful) reply.
        reply: Label,
    },
    /// The answer to a request; its body starts with `re`.
    Reply,
    /// One-way, to the recipient's peer subject.
    Delivery,
}

/// A byte that is not the code of any label (protocol.md section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown message label code {0}")]
pub struct UnknownLabel(pub u8);

macro_rules! labels {
    ($($(#[$doc:meta])* $name:ident = $code:literal => $kind:expr,)*) => {
        /// A message label, `C_i` of the paper (protocol.md section 6, table of labels).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(into = "u8", try_from = "u8")]
        pub enum Label {
            $($(#[$doc])* $name,)*
        }

        impl Label {
            /// Every label, in code order.
            pub const ALL: &'static [Label] = &[$(Label::$name,)*];

            /// The `label` byte of `HeaderBytes` (protocol.md sections 3 and 6).
            #[must_use]
            pub const fn code(self) -> u8 {
                match self {
                    $(Label::$name => $code,)*
                }
            }

            /// The label with this code.
            pub const fn from_code(code: u8) -> Result<Label, UnknownLabel> {
                match code {
                    $($code => Ok(Label::$name),)*
                    other => Err(UnknownLabel(other)),
                }
            }

            /// Request (with its reply label), reply or delivery (protocol.md section 6).
            #[must_use]
            pub const fn kind(self) -> LabelKind {
                use LabelKind::{Delivery, Reply, Request};
                match self {
                    $(Label::$name => $kind,)*
                }
            }

            /// The label's name as in protocol.md, e.g. `BrokerScripRequest`.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $(Label::$name => stringify!($name),)*
                }
            }
        }
    };
}

labels! {
    /// 6.0 step 1, P → B.
    RegistrationRequest = 1 => Request { reply: Label::RegistrationResponse },
    /// 6.0 step 3, B → P.
    RegistrationResponse = 2 => Reply,
    /// 6.0b step 1, P → B.
    PublicKeyRequest = 3 => Request { reply: Label::PublicKeyResponse },
    /// 6.0b step 3, B → P.
    PublicKeyResponse = 4 => Reply,
    /// 6.1 step 1, C → B.
    BrokerScripRequest = 5 => Request { reply: Label::BrokerScripResponse },
    /// 6.1 step 3 and 6.4 step 3, B → C.
    BrokerScripResponse = 6 => Reply,
    /// 6.2 step 1, C → B.
    VendorScripNotice = 7 => Request { reply: Label::VendorScripNoticeResponse },
    /// 6.2 step 1 reply, B → C.
    VendorScripNoticeResponse = 8 => Reply,
    /// 6.2 step 2, C → M.
    VendorScripRequest = 9 => Request { reply: Label::VendorScripResponse },
    /// 6.2 step 3, M → B.
    ExchangeAuthorizationRequest = 10 => Request { reply: Label::ExchangeAuthorizationResponse },
    /// 6.2 step 6, B → M.
    ExchangeAuthorizationResponse = 11 => Reply,
    /// 6.2 step 5 and 6.5 step 6, B → C.
    ChangeBrokerScrip = 12 => Delivery,
    /// 6.2 step 7, M → C.
    VendorScripResponse = 13 => Reply,
    /// 6.3 step 1, C → B.
    PurchaseInitiated = 14 => Request { reply: Label::Ack },
    /// 6.3 step 2, C → M.
    PurchaseRequest = 15 => Request { reply: Label::PurchaseResponse },
    /// 6.3 step 4, M → C.
    PurchaseResponse = 16 => Reply,
    /// 6.3 step 5, M → B.
    PurchaseCompleted = 17 => Request { reply: Label::Ack },
    /// 6.4 step 1, C → B.
    BrokerScripTopUp = 18 => Request { reply: Label::BrokerScripResponse },
    /// 6.5 step 1, C → B.
    VendorTopUpRequest = 19 => Request { reply: Label::Ack },
    /// 6.5 step 2, B → M.
    VendorTopUpAuthorization = 20 => Delivery,
    /// 6.5 step 3, M → B.
    VendorTopUpAccepted = 21 => Request { reply: Label::VendorTopUpDecision },
    /// 6.5 step 4, B → M.
    VendorTopUpDecision = 22 => Reply,
    /// 6.5 step 5, M → C.
    VendorTopUpResponse = 23 => Delivery,
    /// 6.6 step 1, C → B.
    BrokerScripWithdraw = 24 => Request { reply: Label::BrokerScripWithdrawResponse },
    /// 6.6 step 3, B → C.
    BrokerScripWithdrawResponse = 25 => Reply,
    /// 6.7 step 1, C → M.
    VendorWithdrawRequest = 26 => Request { reply: Label::Ack },
    /// 6.7 step 2, M → B.
    VendorWithdrawAuthorization = 27 => Request { reply: Label::VendorWithdrawResponse },
    /// 6.7 step 4, B → M.
    VendorWithdrawResponse = 28 => Reply,
    /// 6.7 step 5, B → C.
    VendorWithdrawResult = 29 => Delivery,
    /// 6.8 step 1, C → producer.
    RenewRequest = 30 => Request { reply: Label::RenewResponse },
    /// 6.8 step 3, producer → C.
    RenewResponse = 31 => Reply,
    /// Section 7: a party asks for the stored frames of a tx.
    TransactionStatus = 32 => Request { reply: Label::TransactionStatusResponse },
    /// Section 7: the stored frames, or `Pending`.
    TransactionStatusResponse = 33 => Reply,
    /// Section 3/6: `Ack { re, deadline? }`, the reply to requests that decide later.
    Ack = 34 => Reply,
    /// Section 3: a signed refusal `Error { re, code, message }`.
    Error = 35 => Reply,
    /// Section 4, lapse: M tells the broker a VendorScrip lapsed.
    ScripLapsedNotice = 36 => Request { reply: Label::Ack },
    /// Extension (docs/adr/0009): C asks M for its catalogue, read-only at M.
    CatalogueRequest = 37 => Request { reply: Label::CatalogueResponse },
    /// Extension (docs/adr/0009): M's signed catalogue, the items 6.3's `OI` names.
    CatalogueResponse = 38 => Reply,
    /// The operator's administration request (extension, ADR 0010).
    AdminRequest = 39 => Request { reply: Label::AdminResponse },
    /// The broker's answer to an administration request.
    AdminResponse = 40 => Reply,
    /// Extension (docs/adr/0016): M registers its display name at the broker; answered `Ack`.
    MerchantProfile = 41 => Request { reply: Label::Ack },
    /// Extension (docs/adr/0016): a peer asks the broker for the named merchants, read-only.
    MerchantDirectoryRequest = 42 => Request { reply: Label::MerchantDirectoryResponse },
    /// Extension (docs/adr/0016): the broker's signed page of (UID, name).
    MerchantDirectoryResponse = 43 => Reply,
}

impl Label {
    /// Whether a frame with this label may answer a request labelled `self`: its own reply
    /// label or `Error` (protocol.md section 3). `false` when `self` is not a request.
    #[must_use]
    pub fn accepts_reply(self, reply: Label) -> bool {
        match self.kind() {
            LabelKind::Request { reply: expected } => reply == expected || reply == Label::Error,
            LabelKind::Reply | LabelKind::Delivery => false,
        }
    }
}

impl From<Label> for u8 {
    fn from(label: Label) -> u8 {
        label.code()
    }
}

impl TryFrom<u8> for Label {
    type Error = UnknownLabel;

    fn try_from(code: u8) -> Result<Label, UnknownLabel> {
        Label::from_code(code)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 36 labels of protocol.md section 6 have codes 1 to 36; extensions take codes
    /// after them (ADR 0010). Every code round-trips and none is used twice.
    #[test]
    fn the_protocol_labels_are_one_to_thirty_six_and_every_code_is_unique() {
        for (i, &label) in Label::ALL[..36].iter().enumerate() {
            assert_eq!(usize::from(label.code()), i + 1);
        }
        let mut seen = std::collections::BTreeSet::new();
        for &label in Label::ALL {
            assert!(
                seen.insert(label.code()),
                "code {} used twice",
                label.code()
            );
            assert_eq!(Label::from_code(label.code()), Ok(label));
            assert_eq!(Label::try_from(label.code()), Ok(label));
        }
        assert!(Label::ALL[36..].iter().all(|l| l.code() > 36));
        assert_eq!(Label::CatalogueRequest.code(), 37);
        assert_eq!(Label::CatalogueResponse.code(), 38);
        assert_eq!(Label::AdminRequest.code(), 39);
        assert_eq!(Label::AdminResponse.code(), 40);
        assert_eq!(Label::MerchantProfile.code(), 41);
        assert_eq!(Label::MerchantDirectoryRequest.code(), 42);
        assert_eq!(Label::MerchantDirectoryResponse.code(), 43);
        assert_eq!(
            Label::MerchantProfile.kind(),
            LabelKind::Request { reply: Label::Ack }
        );
        assert_eq!(
            Label::MerchantDirectoryRequest.kind(),
            LabelKind::Request {
                reply: Label::MerchantDirectoryResponse
            }
        );
        assert_eq!(Label::from_code(0), Err(UnknownLabel(0)));
        assert_eq!(Label::from_code(44), Err(UnknownLabel(44)));
        assert_eq!(Label::from_code(255), Err(UnknownLabel(255)));
    }

    /// Spot checks against the table of protocol.md section 6.
    #[test]
    fn codes_and_kinds_follow_the_table() {
        assert_eq!(Label::BrokerScripRequest.code(), 5);
        assert_eq!(Label::ChangeBrokerScrip.code(), 12);
        assert_eq!(Label::VendorWithdrawResult.code(), 29);
        assert_eq!(Label::Ack.code(), 34);
        assert_eq!(Label::Error.code(), 35);
        assert_eq!(Label::ScripLapsedNotice.code(), 36);
        assert_eq!(Label::CatalogueRequest.code(), 37);
        assert_eq!(Label::CatalogueResponse.code(), 38);
        assert_eq!(
            Label::CatalogueRequest.kind(),
            LabelKind::Request {
                reply: Label::CatalogueResponse
            }
        );
        assert_eq!(
            Label::BrokerScripTopUp.kind(),
            LabelKind::Request {
                reply: Label::BrokerScripResponse
            }
        );
        assert_eq!(
            Label::VendorWithdrawRequest.kind(),
            LabelKind::Request { reply: Label::Ack }
        );
        assert_eq!(Label::VendorTopUpAuthorization.kind(), LabelKind::Delivery);
        assert_eq!(Label::Error.kind(), LabelKind::Reply);
        let deliveries: Vec<u8> = Label::ALL
            .iter()
            .filter(|l| l.kind() == LabelKind::Delivery)
            .map(|l| l.code())
            .collect();
        assert_eq!(deliveries, [12, 20, 23, 29]);
        let acked: Vec<u8> = Label::ALL
            .iter()
            .filter(|l| l.kind() == LabelKind::Request { reply: Label::Ack })
            .map(|l| l.code())
            .collect();
        assert_eq!(acked, [14, 17, 19, 26, 36, 41]);
    }

    #[test]
    fn every_request_names_a_reply_label() {
        for &label in Label::ALL {
            if let LabelKind::Request { reply } = label.kind() {
                assert_eq!(reply.kind(), LabelKind::Reply, "{label}");
                assert!(label.accepts_reply(reply));
                assert!(label.accepts_reply(Label::Error));
                assert!(!label.accepts_reply(label));
            } else {
                assert!(!label.accepts_reply(Label::Error));
            }
        }
    }

    /// The wire byte is the code, not serde's variant index (which would be code − 1).
    #[test]
    fn serializes_as_its_code() {
        for &label in Label::ALL {
            let bytes = postcard::to_allocvec(&label).unwrap();
            assert_eq!(bytes, [label.code()]);
            assert_eq!(postcard::from_bytes::<Label>(&bytes).unwrap(), label);
        }
        assert!(postcard::from_bytes::<Label>(&[0]).is_err());
        assert!(postcard::from_bytes::<Label>(&[44]).is_err());
    }

    #[test]
    fn names_display() {
        assert_eq!(
            Label::VendorTopUpAccepted.to_string(),
            "VendorTopUpAccepted"
        );
    }
}
