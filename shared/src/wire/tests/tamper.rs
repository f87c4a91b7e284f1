//! Tampering: a flipped bit anywhere in an encoded frame, and parts moved between frames,
//! are refused (protocol.md section 3: a signature covers tag, header and body; a sealed
//! part is bound to its header by the AEAD (modern) and by its inner signatures (paper)).

use std::sync::LazyLock;

use proptest::prelude::*;

use super::Parties;
use crate::amount::Amount;
use crate::ids::{Nonce, TxId};
use crate::suite::Suite;
use crate::wire::bodies::{BrokerScripRequestX0, BrokerScripTopUpX0};
use crate::wire::{
    Body, Frame, Header, Label, Opened, Part, PartRef, WireError, id_proof, public_key_inner, seal,
    secret_inner, sign, verify_signature,
};

/// An encoded frame with one signed part (6.1 request body, signed in the clear).
fn signed_frame(p: &Parties) -> Frame {
    let h = p.header(Label::BrokerScripRequest, p.c);
    let body = BrokerScripRequestX0 {
        value: Amount::from_minor(1234),
        nonce: Nonce([4; 16]),
    };
    Frame::new(h, vec![sign(p.c, &h, &body).unwrap().into()])
}

/// An encoded frame with one sealed part holding every inner kind (6.4 request).
fn sealed_frame(p: &Parties) -> Frame {
    let h = p.header(Label::BrokerScripTopUp, p.c);
    let body = BrokerScripTopUpX0 {
        scrip: p.scrip.clone(),
        cs_hash: p.cs.cs_hash(p.suite),
        new_value: Amount::from_minor(2000),
        nonce: Nonce([5; 16]),
    };
    let inners = [
        id_proof(p.c, &h, &p.id_c).unwrap(),
        sign(p.c, &h, &body).unwrap().into(),
        public_key_inner(p.c.public()),
        secret_inner(p.scrip.id(), &p.cs),
    ];
    Frame::new(h, vec![seal(&h, p.b.public(), &inners).unwrap()])
}

/// Everything the receiver of the signed frame checks.
fn accept_signed(p: &Parties, bytes: &[u8]) -> Result<(), WireError> {
    let frame = Frame::decode(bytes)?;
    frame
        .part(0)?
        .verify_signed::<BrokerScripRequestX0>(p.c.public())?;
    Ok(())
}

/// Everything the broker checks of the sealed frame: open, signed body, IdProof, that the
/// carried key is the sender's, the CustomerSecret against the body's cs_hash.
fn accept_sealed(p: &Parties, bytes: &[u8]) -> Result<(), WireError> {
    let frame = Frame::decode(bytes)?;
    let opened = frame.part(0)?.open_sealed(p.b)?;
    let v = opened.signed::<BrokerScripTopUpX0>(p.c.public())?;
    opened.verify_id_proof(p.c.public(), &p.id_c)?;
    let key = opened.public_key()?;
    if key.uid() != frame.header.sender {
        return Err(WireError::SignerMismatch {
            sender: frame.header.sender,
            signer: key.uid(),
        });
    }
    opened.secret(v.body.scrip.id(), &v.body.cs_hash)?;
    Ok(())
}

/// Per suite: the parties and the two encoded frames, built once for all property cases.
struct Fixture {
    parties: Parties,
    signed: Vec<u8>,
    sealed: Vec<u8>,
}

static FIXTURES: LazyLock<[Fixture; 2]> = LazyLock::new(|| {
    Suite::ALL.map(|suite| {
        let parties = Parties::new(suite);
        let signed = signed_frame(&parties).encode().unwrap();
        let sealed = sealed_frame(&parties).encode().unwrap();
        Fixture {
            parties,
            signed,
            sealed,
        }
    })
});

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

/// The untampered frames are accepted: the property tests below would pass vacuously
/// otherwise.
#[test]
fn untampered_frames_are_accepted() {
    for f in FIXTURES.iter() {
        assert_eq!(accept_signed(&f.parties, &f.signed), Ok(()));
        assert_eq!(accept_sealed(&f.parties, &f.sealed), Ok(()));
    }
}

/// A flip in each header field gives the exact refusal: the header is covered by the
/// signature (tx, label, sender) or by the decoder (version, suite).
#[test]
fn header_flips_are_refused_with_the_expected_error() {
    for f in FIXTURES.iter() {
        let p = &f.parties;
        let len = postcard::to_allocvec(&Header::new(p.suite, Label::Ack, p.tx, p.c.uid()))
            .unwrap()
            .len();
        assert_eq!(len, 35, "version varint, suite, label, tx, sender");
        // Byte 0: version 1 → 3.
        assert_eq!(
            accept_signed(p, &flip(&f.signed, 1)),
            Err(WireError::UnsupportedVersion { version: 3 })
        );
        // Byte 1: suite code → not a suite.
        assert!(matches!(
            accept_signed(p, &flip(&f.signed, 8 + 2)),
            Err(WireError::Decode(_))
        ));
        // Byte 2: label 5 → 4 (PublicKeyResponse): the body type no longer matches.
        assert_eq!(
            accept_signed(p, &flip(&f.signed, 16)),
            Err(WireError::LabelMismatch {
                expected: Label::BrokerScripRequest,
                found: Label::PublicKeyResponse
            })
        );
        // Bytes 3..19: tx.
        assert_eq!(
            accept_signed(p, &flip(&f.signed, 3 * 8 + 5)),
            Err(WireError::BadSignature)
        );
        // Bytes 19..35: sender; the expected signer's key is no longer the sender's.
        assert!(matches!(
            accept_signed(p, &flip(&f.signed, 19 * 8)),
            Err(WireError::SignerMismatch { .. })
        ));
        // The sealed frame: a changed tx is caught by the AEAD (modern) or by the inner
        // signatures (paper).
        let expected = match p.suite {
            Suite::Modern => WireError::Decrypt,
            Suite::Paper => WireError::BadSignature,
        };
        assert_eq!(accept_sealed(p, &flip(&f.sealed, 3 * 8 + 5)), Err(expected));
    }
}

proptest! {
    /// Any single flipped bit in a frame with a signed part is refused.
    #[test]
    fn any_bit_flip_in_a_signed_frame_is_refused(suite in 0usize..2, bit in any::<usize>()) {
        let f = &FIXTURES[suite];
        let bit = bit % (f.signed.len() * 8);
        prop_assert!(accept_signed(&f.parties, &flip(&f.signed, bit)).is_err(), "bit {bit}");
    }

    /// Any single flipped bit in a frame with a sealed part is refused.
    #[test]
    fn any_bit_flip_in_a_sealed_frame_is_refused(suite in 0usize..2, bit in any::<usize>()) {
        let f = &FIXTURES[suite];
        let bit = bit % (f.sealed.len() * 8);
        prop_assert!(accept_sealed(&f.parties, &flip(&f.sealed, bit)).is_err(), "bit {bit}");
    }

    /// Truncations of the sealed frame are refused, and never panic.
    #[test]
    fn truncated_sealed_frames_are_refused(suite in 0usize..2, cut in any::<usize>()) {
        let f = &FIXTURES[suite];
        let cut = cut % f.sealed.len();
        prop_assert!(Frame::decode(&f.sealed[..cut]).is_err());
    }
}

/// The part of `frame` moved under `header`, as a frame an attacker would send.
fn moved(frame: &Frame, header: Header) -> Frame {
    Frame::new(header, frame.parts.clone())
}

/// Asserts that the signed first part of `frame`, moved there from another header, does not
/// verify as a `B` (the body type of `frame`'s label) from C.
fn signature_fails<B: Body>(p: &Parties, frame: &Frame) {
    assert_eq!(
        frame
            .part(0)
            .unwrap()
            .verify_signed::<B>(p.c.public())
            .map(|_| ()),
        Err(WireError::BadSignature)
    );
}

/// A sealed part read under a header it was not sealed under: the AEAD refuses it
/// (modern, the header is its associated data); CBC opens it (paper, no associated data),
/// and C's IdProof inside, bound to the original header, fails. What the paper suite
/// opened, for further checks.
fn opens_only_under_its_own_header(p: &Parties, part: &PartRef<'_>) -> Option<Opened> {
    match p.suite {
        Suite::Modern => {
            assert_eq!(part.open_sealed(p.b).map(|_| ()), Err(WireError::Decrypt));
            None
        }
        Suite::Paper => {
            let opened = part.open_sealed(p.b).unwrap();
            assert_eq!(
                opened.verify_id_proof(p.c.public(), &p.id_c),
                Err(WireError::BadIdProof)
            );
            Some(opened)
        }
    }
}

#[test]
fn a_signed_part_moved_to_another_tx_or_label_is_refused() {
    for f in FIXTURES.iter() {
        let p = &f.parties;
        let frame = Frame::decode(&f.signed).unwrap();
        let other_tx = moved(
            &frame,
            Header {
                tx: TxId([0x77; 16]),
                ..frame.header
            },
        );
        signature_fails::<BrokerScripRequestX0>(p, &other_tx);
        let other_label = moved(
            &frame,
            frame.header.next(Label::BrokerScripTopUp, p.c.uid()),
        );
        signature_fails::<BrokerScripTopUpX0>(p, &other_label);
        // Under the moved header the signature itself fails, whatever type is asked for.
        let Part::Signed { body, sig } = &frame.parts[0] else {
            panic!("signed")
        };
        assert_eq!(
            verify_signature(&other_label.header, body, sig, p.c.public()),
            Err(WireError::BadSignature)
        );
    }
}

#[test]
fn a_sealed_part_moved_to_another_tx_or_label_is_refused() {
    for f in FIXTURES.iter() {
        let p = &f.parties;
        let frame = Frame::decode(&f.sealed).unwrap();
        for header in [
            Header {
                tx: TxId([0x77; 16]),
                ..frame.header
            },
            frame.header.next(Label::BrokerScripWithdraw, p.c.uid()),
        ] {
            let m = moved(&frame, header);
            let part = m.part(0).unwrap();
            // In the paper suite every signature inside is bound to the original header.
            if let Some(opened) = opens_only_under_its_own_header(p, &part) {
                let Some(crate::wire::Inner::Signed { body, sig }) = opened
                    .inners()
                    .iter()
                    .find(|i| matches!(i, crate::wire::Inner::Signed { .. }))
                else {
                    panic!("signed inner")
                };
                assert_eq!(
                    verify_signature(&header, body, sig, p.c.public()),
                    Err(WireError::BadSignature)
                );
            }
            assert!(accept_sealed(p, &m.encode().unwrap()).is_err());
        }
    }
}

/// A forwarded part relayed under another tx is refused at decoding; relayed with a forged
/// origin of the right tx but another label or sender, its signatures fail.
#[test]
fn a_forwarded_part_cannot_be_re_addressed() {
    for f in FIXTURES.iter() {
        let p = &f.parties;
        let frame = Frame::decode(&f.sealed).unwrap();
        let relay_header = frame
            .header
            .next(Label::ExchangeAuthorizationRequest, p.m.uid());
        let forged_origin = frame.header.next(Label::VendorScripRequest, p.c.uid());
        let relay = Frame::new(
            relay_header,
            vec![Part::forwarded(forged_origin, frame.parts[0].clone()).unwrap()],
        );
        let relay = Frame::decode(&relay.encode().unwrap()).unwrap();
        let part = relay.part(0).unwrap();
        assert_eq!(part.header, &forged_origin);
        opens_only_under_its_own_header(p, &part);
        // The honest relay (true origin) opens and verifies.
        let honest = Frame::new(relay_header, vec![frame.forward(0).unwrap()]);
        let honest = Frame::decode(&honest.encode().unwrap()).unwrap();
        let opened = honest.part(0).unwrap().open_sealed(p.b).unwrap();
        assert_eq!(opened.verify_id_proof(p.c.public(), &p.id_c), Ok(()));
        assert!(opened.signed::<BrokerScripTopUpX0>(p.c.public()).is_ok());
    }
}
