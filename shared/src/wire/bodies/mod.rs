//! Every signed body `X_i` of protocol.md section 6 as a typed struct, plus the bodies of
//! the control messages (`Ack`, `Error`, `TransactionStatus`, `ScripLapsedNotice`), the
//! operator's administration messages (`admin`, an extension), the catalogue query
//! (`catalogue`, an extension, docs/adr/0009) and merchants by name (`directory`, an
//! extension, docs/adr/0016).
//!
//! A body is the postcard encoding of its struct, fields in the order section 6 lists them
//! (protocol.md section 3); amounts, UIDs and scrip ids are their own types. Each struct is
//! named after its message label and `X` index (`BrokerScripRequestX0` is `X0` of
//! `BrokerScripRequest`, 6.1 step 1) and lives in the file of its transaction. A
//! CustomerSecret never sits in a body: where section 6 writes `CS_x`, the body holds
//! `cs_hash = H("peerscrip/cs" ‖ CS_x)` and the same sealed part carries `Inner::Secret`.
//! Every reply body starts with [`Re`].

mod admin;
mod broker_scrip;
mod catalogue;
mod control;
mod directory;
mod exchange;
mod purchase;
mod registration;
mod renew;
mod vendor_top_up;
mod vendor_withdraw;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use admin::{
    AdminOp, AdminRequestX0, AdminResponseX1, AdminResult, MAX_LISTED_PEERS, PeerInfo,
};
pub use broker_scrip::{
    BrokerScripRequestX0, BrokerScripResponseX1, BrokerScripTopUpX0, BrokerScripWithdrawResponseX1,
    BrokerScripWithdrawX0,
};
pub use catalogue::{
    CATALOGUE_RESPONSE_RESERVE, CatalogueItem, CatalogueRequestX0, CatalogueResponseX1,
    MAX_CATALOGUE_ITEMS,
};
pub use control::{
    AckBody, ErrorBody, MAX_STORED_FRAMES, STATUS_RESPONSE_RESERVE, ScripLapsedNoticeBody,
    TransactionStatusBody, TransactionStatusResponseBody, TxStatus,
};
pub use directory::{
    MAX_LISTED_MERCHANTS, MAX_NAME_CHARS, MerchantDirectoryRequestX0, MerchantDirectoryResponseX1,
    MerchantEntry, MerchantName, MerchantProfileX0, NameError,
};
pub use exchange::{
    ChangeBrokerScripX4, ExchangeAuthorizationRequestX3, ExchangeAuthorizationResponseX5,
    VendorScripNoticeResponseX0, VendorScripNoticeX0, VendorScripRequestX1, VendorScripRequestX2,
    VendorScripResponseX6,
};
pub use purchase::{
    OrderId, OrderInfo, PurchaseCompletedX3, PurchaseInitiatedX0, PurchaseRequestX1,
    PurchaseResponseX2, Receipt,
};
pub use registration::{
    PublicKeyRequestX0, PublicKeyResponseX1, RegistrationRequestX0, RegistrationResponseX1,
};
pub use renew::{RenewRequestX0, RenewResponseX1};
pub use vendor_top_up::{
    ChangeBrokerScripX5, VendorTopUpAcceptedX3, VendorTopUpAuthorizationX2,
    VendorTopUpDecisionBody, VendorTopUpRequestX0, VendorTopUpRequestX1, VendorTopUpResponseX4,
};
pub use vendor_withdraw::{
    VendorWithdrawAuthorizationX2, VendorWithdrawRequestX0, VendorWithdrawRequestX1,
    VendorWithdrawResponseX3, VendorWithdrawResultX4,
};

use super::codec::decode_exact;
use super::error::WireError;
use super::header::Header;
use super::label::Label;
use crate::error::ErrorCode;
use crate::ids::Uid;
use crate::scrip::Scrip;

/// A signed body `X_i`: its postcard bytes are what a `Signed` part carries and signs.
pub trait Body: Serialize + DeserializeOwned {
    /// The label of the message that carries this body. A body is only accepted under a
    /// header with this label, so bytes signed as one message never decode as another.
    const LABEL: Label;

    /// The postcard encoding (protocol.md section 3).
    fn to_bytes(&self) -> Vec<u8> {
        // Postcard into a growable Vec fails only for sequences of unknown length or a
        // failing `Serialize` impl; bodies have neither, so this cannot fail.
        postcard::to_allocvec(self).expect("a body always encodes")
    }

    /// Decodes a body, refusing trailing bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        decode_exact(bytes)
    }
}

/// A reply body: it starts with `re` (protocol.md section 3).
pub trait Reply: Body {
    /// Which request this answers.
    fn re(&self) -> &Re;
}

/// A request body that presents a scrip: the scrip and the hash of its CustomerSecret,
/// whose secret the same sealed part carries (protocol.md sections 3 and 4;
/// `Opened::secret`).
pub trait PresentsScrip: Body {
    /// The scrip presented and its `cs_hash`.
    fn presented(&self) -> (&Scrip, &[u8]);
}

/// Implements [`PresentsScrip`] for bodies with `scrip` and `cs_hash` fields.
macro_rules! presents_scrip {
    ($($ty:ty),* $(,)?) => {
        $(impl PresentsScrip for $ty {
            fn presented(&self) -> (&Scrip, &[u8]) {
                (&self.scrip, &self.cs_hash)
            }
        })*
    };
}

presents_scrip!(BrokerScripTopUpX0, BrokerScripWithdrawX0, RenewRequestX0);

/// Implements [`Body`] for a struct, with its label.
macro_rules! body {
    ($ty:ty => $label:ident) => {
        impl $crate::wire::bodies::Body for $ty {
            const LABEL: $crate::wire::Label = $crate::wire::Label::$label;
        }
    };
}

/// Implements [`Body`] and [`Reply`] for a struct whose first field is `re`.
macro_rules! reply {
    ($ty:ty => $label:ident) => {
        body!($ty => $label);
        impl $crate::wire::bodies::Reply for $ty {
            fn re(&self) -> &$crate::wire::bodies::Re {
                &self.re
            }
        }
    };
}

pub(crate) use {body, reply};

/// `re = (request sender, request label, request digest)`: the first field of every reply
/// body (protocol.md section 3). A node discards a reply whose `re` matches no request it
/// has pending.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Re {
    /// The sender of the request.
    pub sender: Uid,
    /// The label of the request.
    pub label: Label,
    /// The request digest (protocol.md section 7).
    pub digest: Vec<u8>,
}

impl Re {
    /// The `re` of a reply to the request with `header` and `digest`.
    #[must_use]
    pub fn new(request: &Header, digest: Vec<u8>) -> Re {
        Re {
            sender: request.sender,
            label: request.label,
            digest,
        }
    }
}

/// `R = OK | NOK(reason)`: a broker's decision in a three-party transaction (6.2 step 6,
/// 6.5 step 4, 6.7 steps 4 and 5). A decision is recorded as an event and is final; it is
/// never an `Error` (protocol.md section 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Authorized.
    Ok,
    /// Refused, with the reason.
    Nok(Reason),
}

impl Decision {
    /// A refusal with this code and text.
    #[must_use]
    pub fn nok(code: ErrorCode, message: impl Into<String>) -> Decision {
        Decision::Nok(Reason::new(code, message))
    }

    /// Whether the decision is OK.
    #[must_use]
    pub const fn is_ok(&self) -> bool {
        matches!(self, Decision::Ok)
    }
}

/// Why something was refused: a stable code (protocol.md section 3, `error.rs`) and a text
/// with no secret in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// An [`ErrorCode`] number. Kept as the number so that a node reads a code newer than
    /// itself instead of refusing the whole body.
    pub code: u16,
    /// Human-readable detail.
    pub message: String,
}

impl Reason {
    /// A reason with this code and text.
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Reason {
        Reason {
            code: code.code(),
            message: message.into(),
        }
    }

    /// The code, if this node knows it.
    #[must_use]
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_code(self.code)
    }
}

/// A scrip with the hash of its CustomerSecret (`B_j, CS_Bj` of section 6): the secret
/// itself is the `Inner::Secret` of the same sealed part (protocol.md section 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScripWithSecret {
    /// The scrip.
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS)`.
    pub cs_hash: Vec<u8>,
}

/// A signed body of another party carried inside a body: "X3 of M, sig of M" (6.2 step 5,
/// 6.5 step 6), the merchant's undertaking that the customer keeps as proof against a
/// merchant who is paid and does not deliver. It is verified against the header the
/// merchant signed it under, which the customer rebuilds from the tx, the merchant's UID
/// and the label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undertaking {
    /// The merchant's body, as signed.
    pub body: Vec<u8>,
    /// The merchant's signature over its `SigInput`.
    pub sig: Vec<u8>,
}

#[cfg(test)]
mod tests;
