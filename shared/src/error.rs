//! Stable error codes: what a peer sees in an `Error` frame (protocol.md section 3).
//!
//! Each library module has its own `thiserror` enum for its own failures; this module holds
//! the one list of codes that go on the wire. A code is a `u16` that is never reused or
//! renumbered, so that an old client reads a new node's refusal correctly. The text a peer
//! gets with a code never contains a secret.
//!
//! Every failure to decode, decrypt or verify a frame maps to the single code
//! [`ErrorCode::BadFrame`], so that the sender learns nothing about which step failed (no
//! padding or MAC oracle, protocol.md section 3).

use std::fmt;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// A refusal's stable wire code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
        }

        impl ErrorCode {
            /// Every code, in code order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The stable number of this code.
            #[must_use]
            pub const fn code(self) -> u16 {
                match self {
                    $(ErrorCode::$name => $code,)*
                }
            }

            /// The code with this number, if it is one of ours.
            #[must_use]
            pub fn from_code(code: u16) -> Option<ErrorCode> {
                match code {
                    $($code => Some(ErrorCode::$name),)*
                    _ => None,
                }
            }

            /// The code's name, e.g. `Spent`, for logs and JSON output.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => stringify!($name),)*
                }
            }
        }
    };
}

error_codes! {
    /// The frame could not be decoded, decrypted or verified (one class: no oracle, §3).
    BadFrame = 1,
    /// The frame is larger than 64 KiB and was refused before decoding (§3).
    FrameTooLarge = 2,
    /// The frame names a suite this node is not configured for (§2).
    WrongSuite = 3,
    /// The frame's protocol version is not one this node speaks (§3).
    UnsupportedVersion = 4,
    /// The sender (or a UID named in the request) is not a registered peer (§6.0b).
    UnknownPeer = 5,
    /// This UID is already registered (§6.0).
    AlreadyRegistered = 6,
    /// No bank account has this PAN. No longer sent for a registration, which gets
    /// [`ErrorCode::RegistrationRefused`] (§6.0); kept so the number is never reused.
    PanUnknown = 7,
    /// This PAN already has a registered key. No longer sent: a registration gets
    /// [`ErrorCode::RegistrationRefused`] (§6.0); kept so the number is never reused.
    PanRegistered = 8,
    /// The IdProof does not prove knowledge of the account's ID for this tx and label (§3).
    /// A registration's gets [`ErrorCode::RegistrationRefused`] instead (§6.0).
    BadIdProof = 9,
    /// The bank account balance is too low (§6.1, §6.4).
    InsufficientFunds = 10,
    /// The customer already holds a live BrokerScrip: top it up instead (§4, §6.1).
    BrokerScripLive = 11,
    /// The scrip was not produced by this node (§4).
    WrongProducer = 12,
    /// The scrip's certificate does not match its body (§4).
    BadCertificate = 13,
    /// The presented CustomerSecret does not match the scrip (§4).
    BadCustomerSecret = 14,
    /// The presenter is not the scrip's recorded owner (§4).
    NotOwner = 15,
    /// The scrip id is not live: spent, lapsed or never issued (§4).
    Spent = 16,
    /// The scrip has expired; renew it (§4, §6.8).
    Expired = 17,
    /// The scrip expired longer ago than the grace period allows renewal (§4).
    GraceOver = 18,
    /// The scrip is held by an escrow of another transaction (§4).
    Held = 19,
    /// Amounts that must agree between parts or parties do not (§6.2, §6.5, §6.7).
    AmountMismatch = 20,
    /// The order does not match the merchant's catalogue (§6.3).
    CatalogueMismatch = 21,
    /// The amount exceeds the scrip's value (§6.2, §6.3, §6.5).
    ExceedsScrip = 22,
    /// A top-up must be to a larger value (§6.4).
    TopUpNotLarger = 23,
    /// No open exchange exists for this tx; the notice may still be on its way (§6.2).
    NoOpenExchange = 24,
    /// The merchant's bank balance is too low for this withdrawal (§6.7).
    MerchantBalanceTooLow = 25,
    /// This tx is bound to another transaction, party or request content (§7).
    TxReused = 26,
    /// The transaction's deadline has passed (§6.2, §6.5, §6.7).
    DeadlinePassed = 27,
    /// The presented scrip body differs from the producer's live record (§4).
    BodyMismatch = 28,
    /// The sender is not a party of this transaction (§7).
    NotAParty = 29,
    /// An amount computation would overflow or go below zero.
    AmountOutOfRange = 30,
    /// The node failed internally; the request changed nothing and may be repeated.
    Internal = 31,
    /// The merchant declined the transaction; the broker released its escrow (§6.5).
    Declined = 32,
    /// The operator asked to open a bank account that exists (ADR 0010).
    AccountExists = 33,
    /// The operator's PANSecret for a new account is shorter than 128 bits (§1).
    WeakPanSecret = 34,
    /// The presented scrip lapsed after its renewal grace period; its value went back to
    /// its owner's bank account (§4, docs/adr/0011). Only its owner is told.
    Lapsed = 35,
    /// The registration was refused: the PAN is unknown, already has a registered key, or
    /// the IdProof does not prove its ID. One code and one message for the three, so that
    /// the reply does not tell a stranger which account numbers exist (§6.0, §9).
    RegistrationRefused = 36,
    /// The node cannot write its log (a full disk, an I/O error): nothing was decided or
    /// written; repeat the request later. Sent unsigned (§3, §10).
    Unavailable = 37,
    /// The sender is over one of the node's quotas (requests per second, open transactions
    /// of a kind): nothing was recorded; repeat it later. Sent unsigned (§3, §10).
    TooManyRequests = 38,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &c in ErrorCode::ALL {
            assert!(seen.insert(c.code()), "duplicate code {}", c.code());
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
        }
        assert_eq!(ErrorCode::from_code(0), None);
        assert_eq!(ErrorCode::from_code(9999), None);
    }

    /// Codes are part of the wire protocol: this test fails if one is renumbered.
    #[test]
    fn codes_are_stable() {
        assert_eq!(ErrorCode::BadFrame.code(), 1);
        assert_eq!(ErrorCode::Spent.code(), 16);
        assert_eq!(ErrorCode::TxReused.code(), 26);
        assert_eq!(ErrorCode::Internal.code(), 31);
        assert_eq!(ErrorCode::Declined.code(), 32);
        assert_eq!(ErrorCode::Lapsed.code(), 35);
        assert_eq!(ErrorCode::RegistrationRefused.code(), 36);
        assert_eq!(ErrorCode::Unavailable.code(), 37);
        assert_eq!(ErrorCode::TooManyRequests.code(), 38);
        assert_eq!(ErrorCode::Held.to_string(), "Held (19)");
    }
}
