//! What `open` gives `decide` (ADR 0006): a [`Verified`] request, every signature, seal
//! and IdProof of it checked, as one [`Request`] variant per label the broker serves, with
//! its request digest (protocol.md section 7). Its own file so that the openers (`open`,
//! and `admin` for the operator's requests) and the deciders depend on it, and it on none
//! of them.

use shared::ids::{AccountId, Pan};
use shared::node::Refusal;
use shared::wire::bodies::{
    AdminOp, BrokerScripRequestX0, BrokerScripTopUpX0, BrokerScripWithdrawX0,
    ExchangeAuthorizationRequestX3, MerchantDirectoryRequestX0, MerchantProfileX0,
    PublicKeyRequestX0, PurchaseCompletedX3, PurchaseInitiatedX0, RenewRequestX0,
    ScripLapsedNoticeBody, TransactionStatusBody, VendorScripNoticeX0, VendorScripRequestX1,
    VendorTopUpAcceptedX3, VendorTopUpRequestX0, VendorWithdrawAuthorizationX2,
    VendorWithdrawRequestX1,
};
use shared::wire::{Frame, Header, Part, Reason, SignedEvidence, WireError, digest_of_verified};
use shared::{CustomerSecret, PublicKey};

/// A request whose every signature, seal and IdProof has been verified; a registration's
/// IdProof was checked and its result is in [`Request::Registration`] (see the module doc).
#[derive(Debug)]
pub struct Verified {
    /// The request's header.
    pub header: Header,
    /// The request digest (section 7).
    pub digest: Vec<u8>,
    /// The verified signed parts, in order: the evidence its events keep (section 8).
    pub evidence: Vec<SignedEvidence>,
    /// What is asked, typed.
    pub request: Request,
}

/// One variant per request label the broker serves (so far).
#[derive(Debug)]
pub enum Request {
    /// 6.0: register `public_key` for `pan`. The `X0` signature verified; the IdProof
    /// was checked and its result is `id_proven` (see the module doc).
    Registration {
        /// The account.
        pan: Pan,
        /// The peer's key, whose UID is the sender.
        public_key: PublicKey,
        /// The PAN is an account's and the IdProof proves its ID for this tx and label.
        id_proven: bool,
    },
    /// 6.0b: the key of a registered peer.
    PublicKey(PublicKeyRequestX0),
    /// 6.1 (IdProof verified).
    ObtainBrokerScrip(BrokerScripRequestX0),
    /// 6.4 (IdProof verified), with `CS_B0` matching the body's `cs_hash`.
    TopUpBrokerScrip {
        /// `X0`.
        body: BrokerScripTopUpX0,
        /// `CS_B0`.
        cs: CustomerSecret,
    },
    /// 6.6 (IdProof verified), with `CS_B0`.
    WithdrawBrokerScrip {
        /// `X0`.
        body: BrokerScripWithdrawX0,
        /// `CS_B0`.
        cs: CustomerSecret,
    },
    /// 6.8, with `CS_E0`.
    Renew {
        /// `X0`.
        body: RenewRequestX0,
        /// `CS_E0`.
        cs: CustomerSecret,
    },
    /// 6.2 step 1 (C's IdProof verified).
    VendorScripNotice(VendorScripNoticeX0),
    /// 6.2 step 3: M's part and C's forwarded part, both verified.
    ExchangeAuthorization(Box<ExchangeAuthorization>),
    /// 6.3 step 1, signed in the clear by C.
    PurchaseInitiated(PurchaseInitiatedX0),
    /// 6.3 step 5, signed in the clear by M.
    PurchaseCompleted(PurchaseCompletedX3),
    /// Section 7: the frames of a tx sent to the asking party.
    TransactionStatus(TransactionStatusBody),
    /// Section 4: a merchant reports a lapsed VendorScrip, signed in the clear.
    ScripLapsedNotice(ScripLapsedNoticeBody),
    /// 6.5 step 1: C's `X0` (IdProof verified) with `CS_B0`, and C's part for M (opaque
    /// to the broker), to be forwarded unchanged.
    VendorTopUpRequest(Box<VendorTopUp>),
    /// 6.5 step 3: M's `X3` (accept or decline), signed inside a part sealed to B.
    VendorTopUpAccepted {
        /// `X3`.
        x3: VendorTopUpAcceptedX3,
        /// `X3`'s evidence: the undertaking C receives in `ChangeBrokerScrip`.
        x3_evidence: SignedEvidence,
    },
    /// The operator's administration request (ADR 0010), from the configured operator key.
    Admin(AdminRequest),
    /// A registered peer names itself (docs/adr/0016), signed in the clear.
    MerchantProfile(MerchantProfileX0),
    /// A registered peer lists the named merchants (docs/adr/0016), signed in the clear.
    MerchantDirectory(MerchantDirectoryRequestX0),
    /// 6.7 step 2: M's `X2` (M's IdProof verified) and C's forwarded `X1` (C's IdProof
    /// verified against C's origin header).
    VendorWithdrawAuthorization {
        /// `X2 = W, UID_C, deadline`, signed by M (the sender).
        x2: VendorWithdrawAuthorizationX2,
        /// `X1 = W, UID_M`, signed by C, or why C's forwarded part did not open or verify
        /// (refused with a recorded NOK once M's own part verified, 6.7 step 3).
        x1: Result<VendorWithdrawRequestX1, Reason>,
    },
}

/// 6.5 step 1 as verified: C's `X0` with `CS_B0`, and C's part sealed to M, which the
/// broker cannot read and relays unchanged (step 2).
#[derive(Debug)]
pub struct VendorTopUp {
    /// `X0 = W_V1, W_V, UID_M, B0, CS_B0`, signed by C.
    pub x0: VendorTopUpRequestX0,
    /// `CS_B0`.
    pub cs: CustomerSecret,
    /// C's part sealed to `UID_M` (part 1 of the frame), as received.
    pub merchant_part: Part,
}

/// 6.2 step 3 as verified: M's `X3` (with M's IdProof) and C's forwarded `X1` (with C's
/// IdProof and `CS_B0`), checked against the origin header C signed it under.
#[derive(Debug)]
pub struct ExchangeAuthorization {
    /// `X3 = W, UID_C`, signed by M (the sender).
    pub x3: ExchangeAuthorizationRequestX3,
    /// `X3`'s evidence: the undertaking C receives in `ChangeBrokerScrip`.
    pub x3_evidence: SignedEvidence,
    /// C's forwarded part, or why it did not open or verify (refused with a recorded NOK
    /// once M's own part verified, protocol.md 6.2 step 4).
    pub customer_part: Result<CustomerPart, Reason>,
}

/// C's forwarded part of 6.2 step 3, verified.
#[derive(Debug)]
pub struct CustomerPart {
    /// `X1 = B0, CS_B0, W`, signed by C.
    pub x1: VendorScripRequestX1,
    /// `CS_B0`.
    pub cs: CustomerSecret,
}

/// An administration request as `open` verified it.
#[derive(Debug)]
pub enum AdminRequest {
    /// Open `bank:<pan>` with the ID derived from the operator's PANSecret.
    OpenAccount {
        /// The account.
        pan: Pan,
        /// `ID = H(PANSecret ‖ H(PANSecret) ‖ PAN)`, for the secrets table only.
        id: AccountId,
        /// The PANSecret is shorter than 128 bits (section 1): `decide` refuses it, with
        /// the request's digest, so the operator can match the refusal.
        weak_secret: bool,
    },
    /// Any other operation: no secret comes with it.
    Other(AdminOp),
}

/// The [`Verified`] request of `header`, `evidence` and `request`, with its digest
/// (section 7: over the verified bodies).
pub(super) fn finish(
    header: Header,
    evidence: Vec<SignedEvidence>,
    request: Request,
) -> Result<Verified, Refusal> {
    let refs: Vec<&SignedEvidence> = evidence.iter().collect();
    let digest = digest_of_verified(&header, &refs)?;
    Ok(Verified {
        header,
        digest,
        evidence,
        request,
    })
}

/// The frame's only part, not forwarded; a frame with more parts than its message has is
/// malformed.
pub(super) fn single_part(frame: &Frame) -> Result<shared::wire::PartRef<'_>, Refusal> {
    if frame.parts.len() != 1 {
        return Err(WireError::TooManyParts {
            count: frame.parts.len(),
        }
        .into());
    }
    let part = frame.part(0)?;
    if part.forwarded {
        // A customer's own request relays nothing.
        return Err(WireError::WrongPartKind {
            expected: "Signed or Sealed",
            found: "Forwarded",
        }
        .into());
    }
    Ok(part)
}
