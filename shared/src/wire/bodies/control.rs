//! Bodies of the control messages: `Ack` and `Error` (section 3), `TransactionStatus`
//! (section 7) and `ScripLapsedNotice` (section 4, lapse).

use serde::{Deserialize, Serialize};

use super::{Re, body, reply};
use crate::amount::Amount;
use crate::error::ErrorCode;
use crate::ids::{ScripId, TxId, Uid};
use crate::wire::MAX_FRAME_LEN;
use crate::wire::codec::bounded_vec;

/// Most stored frames one `TransactionStatusResponse` carries. A party receives at most a
/// handful of frames per transaction (a reply and a delivery or two); the bound keeps the
/// decoder's memory proportional to its input.
pub const MAX_STORED_FRAMES: usize = 8;

/// `Ack { re, deadline? }` (label 34): "received, the decision comes later", the reply to
/// requests decided after other parties act (6.3 steps 1 and 5, 6.5 step 1, 6.7 step 1,
/// lapse notices), and the answer of a node still waiting for the broker (section 6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckBody {
    /// The request answered.
    pub re: Re,
    /// The transaction's deadline, unix seconds, where it has one (6.5, 6.7).
    pub deadline: Option<u64>,
}
reply!(AckBody => Ack);

/// `Error { re, code, message }` (label 35): a signed refusal of a request (section 3).
/// Never a decision of a three-party transaction; the requester may repeat the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The request refused.
    pub re: Re,
    /// An [`ErrorCode`] number (kept as the number, so a newer code still decodes).
    pub code: u16,
    /// Human-readable detail, never containing a secret.
    pub message: String,
}
reply!(ErrorBody => Error);

impl ErrorBody {
    /// A refusal of the request `re` with `code`.
    #[must_use]
    pub fn new(re: Re, code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            re,
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

/// `TransactionStatus { tx }` (label 32, section 7): a party asks for every stored frame
/// of `tx` addressed to it, to recover a lost reply or delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionStatusBody {
    /// The transaction asked about.
    pub tx: TxId,
}
body!(TransactionStatusBody => TransactionStatus);

/// The answer to `TransactionStatus` (label 33, section 7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionStatusResponseBody {
    /// The request answered.
    pub re: Re,
    /// The stored frames, or `Pending`.
    pub status: TxStatus,
}
reply!(TransactionStatusResponseBody => TransactionStatusResponse);

/// What a node holds for a party of a transaction (section 7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxStatus {
    /// No outcome stored yet.
    Pending,
    /// The stored frames of the tx addressed to the asking party, encoded, in order: all of
    /// them, or the most recent that fit one answer.
    Frames {
        /// The encoded frames, each as it was sent (sealed to the asking party).
        #[serde(deserialize_with = "bounded_vec::<_, _, MAX_STORED_FRAMES>")]
        frames: Vec<Vec<u8>>,
        /// How many earlier frames this answer leaves out because they did not fit one
        /// frame (at most [`MAX_STORED_FRAMES`] frames and 64 KiB). A party is sent a
        /// handful of frames of about 1 KiB per tx, so this is 0 in practice; when it is
        /// not, the asker knows its view of the tx is incomplete instead of guessing.
        omitted: u32,
    },
}

/// Room kept in a `TransactionStatusResponse` for everything but the returned frames: the
/// header, `re` (with its digest), the signature (up to RSA-3072: 384 bytes) and the
/// encoding overhead.
pub const STATUS_RESPONSE_RESERVE: usize = 2048;

impl TxStatus {
    /// The answer for a party whose stored frames are `frames`, oldest first: `Pending`
    /// when there are none, else the most recent that fit one answer (those a retrying
    /// party most likely lacks), and how many earlier ones were left out.
    #[must_use]
    pub fn of_stored(frames: &[Vec<u8>]) -> TxStatus {
        if frames.is_empty() {
            return TxStatus::Pending;
        }
        let budget = MAX_FRAME_LEN.saturating_sub(STATUS_RESPONSE_RESERVE);
        let mut used = 0usize;
        let mut start = frames.len();
        for (i, frame) in frames.iter().enumerate().rev() {
            // A postcard length prefix of a frame under 64 KiB is at most 3 bytes.
            let cost = frame.len().saturating_add(3);
            if frames.len() - i > MAX_STORED_FRAMES || used.saturating_add(cost) > budget {
                break;
            }
            used += cost;
            start = i;
        }
        TxStatus::Frames {
            frames: frames[start..].to_vec(),
            omitted: u32::try_from(start).unwrap_or(u32::MAX),
        }
    }
}

/// `ScripLapsedNotice` (label 36, section 4, lapse): a merchant tells the broker that a
/// VendorScrip lapsed, so that the broker posts bank:M −v, bank:owner +v, memo
/// float:vendor:M −v.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScripLapsedNoticeBody {
    /// The lapsed scrip.
    pub scrip_id: ScripId,
    /// Its recorded owner, whose bank account gets the value.
    pub owner: Uid,
    /// Its value.
    pub value: Amount,
    /// Its expiry, unix seconds (the grace period ran from here).
    pub expires: u64,
}
body!(ScripLapsedNoticeBody => ScripLapsedNotice);
