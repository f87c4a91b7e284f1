//! The wire format (protocol.md sections 3, 6 and 7): frames, parts, labels, every signed
//! body, the exact signed and hashed bytes, and the request digest.
//!
//! A tour, in the order a frame is read:
//! - [`Frame::decode`] refuses a frame over 64 KiB before decoding, decodes it from the
//!   slice, and checks the version and every forwarded part ([`frame`]).
//! - [`Frame::part`] gives each part with the header it is verified against: the frame's,
//!   or the origin's for a forwarded part ([`PartRef`]).
//! - Signed bodies are typed structs ([`bodies`]), one per `X_i` of section 6, each tied
//!   to its [`Label`]; [`sig_input`] and [`aead_aad`] are the exact bytes that are signed
//!   and authenticated ([`header`]).
//! - [`PartRef::verify_signed`] and [`PartRef::open_sealed`] check a part and return
//!   typed [`Verified`] bodies with their evidence; [`Opened`] checks each inner of a
//!   sealed part ([`open`]). The builders of [`seal`] make what they accept.
//! - [`request_digest`] makes a request idempotent (section 7, [`digest`]);
//!   [`digest_of_verified`] computes it from the verified bodies.
//!
//! Every failure is a [`WireError`]; what a peer sees is [`WireError::code`].

pub mod bodies;
mod codec;
pub mod digest;
mod error;
pub mod frame;
pub mod header;
pub mod label;
pub mod open;
pub mod part;
pub mod seal;

pub use bodies::{Body, Decision, Re, Reason, Reply, ScripWithSecret, Undertaking};
pub use digest::{DigestItem, request_digest};
pub use error::WireError;
pub use frame::{Frame, MAX_FRAME_LEN, MAX_PARTS, PartRef};
pub use header::{Header, HeaderBytes, PROTOCOL_VERSION, aead_aad, sig_input};
pub use label::{Label, LabelKind, UnknownLabel};
pub use open::{Opened, SignedEvidence, Verified, digest_of_verified, verify_signature};
pub use part::{Inner, MAX_INNERS, Part};
pub use seal::{
    SignedBody, id_proof, id_proof_message, public_key_inner, seal, secret_inner, sign, sign_bytes,
};

#[cfg(test)]
mod tests;
