//! Frames read and built by hand, as a party's code reads and builds them, for the tests
//! that play a party's part themselves or send what no real party would: the body of a
//! reply opened as its recipient opens it, the code of an `Error`, and a request presenting
//! a scrip (its body signed, sealed with the scrip's secret and, to the broker, the
//! customer's IdProof). The parties' own headers, signatures and IdProofs are
//! [`Party`](crate::network::Party)'s.
//!
//! Every function here panics on a frame that does not read as expected: this is a test
//! kit, and the panic is the test's failure message.

use shared::wire::bodies::{Body, ErrorBody};
use shared::wire::{Frame, Header, Inner, Label, Part, id_proof, seal, secret_inner, sign};
use shared::{AccountId, CustomerSecret, ErrorCode, KeyPair, PublicKey, Scrip, TxId};

/// The label of `frame`.
///
/// # Panics
/// When it does not decode.
#[must_use]
pub fn label_of(frame: &[u8]) -> Label {
    Frame::decode(frame).expect("a frame").header.label
}

/// The body of `frame`'s first part, signed in the clear by `signer`.
///
/// # Panics
/// When the frame is not such a `B`.
#[must_use]
pub fn clear_body<B: Body>(frame: &[u8], signer: &KeyPair) -> B {
    let frame = Frame::decode(frame).expect("a frame");
    assert_eq!(frame.header.label, B::LABEL);
    frame
        .part(0)
        .expect("a first part")
        .verify_signed::<B>(signer.public())
        .expect("signed by the signer")
        .body
}

/// The body of the `Error` `frame` from `signer`: unsigned when `signer` could not verify
/// the request or refused it by a quota (protocol.md section 3), else signed by it.
///
/// # Panics
/// When the frame is neither.
#[must_use]
pub fn error_body(frame: &[u8], signer: &KeyPair) -> shared::wire::bodies::ErrorBody {
    let decoded = Frame::decode(frame).expect("a frame");
    match shared::node::unsigned_error_in(&decoded, signer.uid(), decoded.header.tx) {
        Some(body) => body,
        None => clear_body(frame, signer),
    }
}

/// The body of `frame`'s first part, sealed to `me` and signed by `signer`.
///
/// # Panics
/// When the frame is not such a `B`.
#[must_use]
pub fn sealed_body<B: Body>(frame: &[u8], me: &KeyPair, signer: &KeyPair) -> B {
    let frame = Frame::decode(frame).expect("a frame");
    assert_eq!(frame.header.label, B::LABEL);
    let opened = frame
        .part(0)
        .expect("a first part")
        .open_sealed(me)
        .expect("sealed to me");
    opened
        .signed::<B>(signer.public())
        .expect("signed by the signer")
        .body
}

/// The code of `reply` if it is an `Error` signed by `signer`, `None` for any other reply.
///
/// # Panics
/// When it does not decode, or is an `Error` not signed by `signer`.
#[must_use]
pub fn error_code(signer: &KeyPair, reply: &[u8]) -> Option<ErrorCode> {
    (label_of(reply) == Label::Error)
        .then(|| clear_body::<ErrorBody>(reply, signer).error_code())
        .flatten()
}

/// A part of `from`'s frame under `header`, sealed to `to`, laid out as protocol.md
/// section 6 lays out a customer's parts: its IdProof of the account `id` first when one is
/// given (a part for the broker), then `Signed(body)`, then the secret of the scrip it
/// presents, if any.
///
/// # Panics
/// When a key cannot sign or seal.
#[must_use]
pub fn sealed_part<B: Body>(
    from: &KeyPair,
    header: &Header,
    to: &PublicKey,
    id: Option<&AccountId>,
    body: &B,
    presented: Option<(&Scrip, &CustomerSecret)>,
) -> Part {
    let mut inners: Vec<Inner> = Vec::new();
    if let Some(id) = id {
        inners.push(id_proof(from, header, id).expect("an IdProof"));
    }
    inners.push(sign(from, header, body).expect("a signature").into());
    if let Some((scrip, cs)) = presented {
        inners.push(secret_inner(scrip.id(), cs));
    }
    seal(header, to, &inners).expect("a sealed part")
}

/// The frame of `parts` under `header`, encoded.
///
/// # Panics
/// When it does not encode (a frame over the size limit).
#[must_use]
pub fn encoded(header: Header, parts: Vec<Part>) -> Vec<u8> {
    Frame::new(header, parts).encode().expect("a frame")
}

/// A one-part request of `from` to `to` in `tx` presenting `scrip` with its secret `cs`
/// ([`sealed_part`]), with the IdProof of `id` when it goes to the broker.
///
/// # Panics
/// When a key cannot sign or seal.
#[must_use]
pub fn presenting<B: Body>(
    from: &KeyPair,
    to: &KeyPair,
    tx: TxId,
    id: Option<&AccountId>,
    body: &B,
    (scrip, cs): (&Scrip, &CustomerSecret),
) -> Vec<u8> {
    let header = Header::new(from.suite(), B::LABEL, tx, from.uid());
    let part = sealed_part(from, &header, to.public(), id, body, Some((scrip, cs)));
    encoded(header, vec![part])
}
