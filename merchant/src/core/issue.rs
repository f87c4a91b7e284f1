//! Issuance of VendorScrip (protocol.md section 4; `VendorScripIssued`, 6.2 step 7): a
//! plain core function that the three-party flows call once the broker's signed OK says
//! the merchant was paid (6.2 step 6; 6.5 issues V1 through it too).
//!
//! Why a function of its own rather than part of one flow: value enters the merchant's
//! books only here, so the checks (a value above zero, books that do not overflow) and the
//! event are written once. The CustomerSecret is returned for the caller to seal to the
//! owner; the event keeps only the body (section 8).

use shared::UnixSecs;
use shared::events::{Evidence, NewEvent};
use shared::node::Refusal;
use shared::{Amount, CustomerSecret, ErrorCode, Scrip, TxId, Uid};

use super::Config;
use super::events::Kind;
use super::state::State;

/// A scrip decided to be issued: the event to append, and the scrip with its secret to
/// seal to its owner once the event is committed.
#[derive(Debug)]
pub struct Issued {
    /// `VendorScripIssued`.
    pub event: NewEvent<Kind>,
    /// The new scrip.
    pub scrip: Scrip,
    /// Its CustomerSecret: delivered only sealed to the owner, never logged.
    pub cs: CustomerSecret,
}

/// Decides the issuance of VendorScrip of `value` to `owner` in `tx`, expiring one
/// configured lifetime after `now`, justified by `evidence` (the broker's signed decision
/// in 6.2 and 6.5). Refuses a zero value (no scrip of nothing) and a value that would
/// overflow the merchant's books (`AmountOutOfRange`).
pub fn issue_vendor_scrip(
    state: &State,
    config: &Config,
    owner: Uid,
    value: Amount,
    tx: TxId,
    now: UnixSecs,
    evidence: Vec<Evidence>,
) -> Result<Issued, Refusal> {
    if value.is_zero() {
        return Err(Refusal::new(
            ErrorCode::AmountOutOfRange,
            "VendorScrip must have a value above zero",
        ));
    }
    state.tables.books.issued.checked_add(value).map_err(|_| {
        Refusal::new(
            ErrorCode::AmountOutOfRange,
            "the issued total would overflow",
        )
    })?;
    let (scrip, cs) = config.mint.issue(value, config.expiry_from(now));
    let event = NewEvent::new(
        now.to_millis(),
        tx,
        Kind::VendorScripIssued {
            scrip: scrip.body,
            owner,
        },
    )
    .with_evidence(evidence);
    Ok(Issued { event, scrip, cs })
}
