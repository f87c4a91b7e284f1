//! Every refusal of the builders and openers, with its exact variant and wire code.

use super::Parties;
use crate::amount::Amount;
use crate::error::ErrorCode;
use crate::ids::{ScripId, Uid};
use crate::scrip::CustomerSecret;
use crate::suite::{CryptoError, Suite};
use crate::wire::bodies::{BrokerScripRequestX0, BrokerScripWithdrawX0, PurchaseInitiatedX0};
use crate::wire::{
    Frame, Inner, Label, Part, WireError, id_proof, public_key_inner, seal, secret_inner, sign,
    sign_bytes,
};
use crate::{Nonce, fixtures};

fn request() -> BrokerScripRequestX0 {
    BrokerScripRequestX0 {
        value: Amount::from_minor(1234),
        nonce: Nonce([4; 16]),
    }
}

#[test]
fn builders_refuse_a_header_the_key_cannot_sign_under() {
    for suite in Suite::ALL {
        let p = Parties::new(suite);
        let h = p.header(Label::BrokerScripRequest, p.c);
        assert_eq!(
            sign(p.c, &h.next(Label::BrokerScripTopUp, p.c.uid()), &request()),
            Err(WireError::LabelMismatch {
                expected: Label::BrokerScripRequest,
                found: Label::BrokerScripTopUp
            })
        );
        assert_eq!(
            sign(p.b, &h, &request()),
            Err(WireError::SignerMismatch {
                sender: p.c.uid(),
                signer: p.b.uid()
            })
        );
        assert_eq!(
            id_proof(p.b, &h, &p.id_c),
            Err(WireError::SignerMismatch {
                sender: p.c.uid(),
                signer: p.b.uid()
            })
        );
        let other = match suite {
            Suite::Paper => Suite::Modern,
            Suite::Modern => Suite::Paper,
        };
        let foreign = fixtures::keypair(other, 0);
        assert_eq!(
            sign_bytes(foreign, &h, vec![]),
            Err(WireError::WrongSuite {
                expected: other,
                found: suite
            })
        );
        assert_eq!(
            seal(&h, foreign.public(), &[]),
            Err(WireError::WrongSuite {
                expected: other,
                found: suite
            })
        );
        let many = vec![Inner::IdProof { sig: vec![] }; crate::wire::MAX_INNERS + 1];
        assert_eq!(
            seal(&h, p.b.public(), &many),
            Err(WireError::TooManyInners {
                count: crate::wire::MAX_INNERS + 1
            })
        );
    }
}

#[test]
fn signed_part_refusals() {
    for suite in Suite::ALL {
        let p = Parties::new(suite);
        let h = p.header(Label::BrokerScripRequest, p.c);
        let signed = sign(p.c, &h, &request()).unwrap();
        let frame = Frame::new(h, vec![signed.clone().into()]);
        let part = frame.part(0).unwrap();

        // Verified with another key than the sender's.
        assert_eq!(
            part.verify_signed::<BrokerScripRequestX0>(p.b.public()),
            Err(WireError::SignerMismatch {
                sender: p.c.uid(),
                signer: p.b.uid()
            })
        );
        // Decoded as the body of another message.
        assert_eq!(
            part.verify_signed::<PurchaseInitiatedX0>(p.c.public()),
            Err(WireError::LabelMismatch {
                expected: Label::PurchaseInitiated,
                found: Label::BrokerScripRequest
            })
        );
        // A sealed part where a signed one is needed, and the reverse.
        assert_eq!(
            part.open_sealed(p.b).map(|_| ()),
            Err(WireError::WrongPartKind {
                expected: "Sealed",
                found: "Signed"
            })
        );
        let sealed = Frame::new(h, vec![seal(&h, p.b.public(), &[]).unwrap()]);
        assert_eq!(
            sealed
                .part(0)
                .unwrap()
                .verify_signed::<BrokerScripRequestX0>(p.c.public()),
            Err(WireError::WrongPartKind {
                expected: "Signed",
                found: "Sealed"
            })
        );
        // A body altered after signing.
        let mut body = signed.body.clone();
        body[0] ^= 1;
        let altered = Frame::new(
            h,
            vec![Part::Signed {
                body,
                sig: signed.sig.clone(),
            }],
        );
        assert_eq!(
            altered
                .part(0)
                .unwrap()
                .verify_signed::<BrokerScripRequestX0>(p.c.public()),
            Err(WireError::BadSignature)
        );
        // A valid signature over bytes that are not the body type.
        let junk = sign_bytes(p.c, &h, vec![0xff; 3]).unwrap();
        let junk = Frame::new(h, vec![junk.into()]);
        assert!(matches!(
            junk.part(0)
                .unwrap()
                .verify_signed::<BrokerScripRequestX0>(p.c.public()),
            Err(WireError::Decode(_) | WireError::TrailingBytes { .. })
        ));
    }
}

#[test]
fn sealed_part_refusals() {
    for suite in Suite::ALL {
        let p = Parties::new(suite);
        let h = p.header(Label::BrokerScripWithdraw, p.c);
        let body = BrokerScripWithdrawX0 {
            scrip: p.scrip.clone(),
            cs_hash: p.cs.cs_hash(suite),
        };
        let signed: Inner = sign(p.c, &h, &body).unwrap().into();
        let open = |inners: &[Inner]| {
            let f = Frame::new(h, vec![seal(&h, p.b.public(), inners).unwrap()]);
            f.part(0).unwrap().open_sealed(p.b).unwrap()
        };

        // Addressed to another UID: refused before any private-key operation.
        let to_m = Frame::new(
            h,
            vec![seal(&h, p.m.public(), std::slice::from_ref(&signed)).unwrap()],
        );
        assert_eq!(
            to_m.part(0).unwrap().open_sealed(p.b).map(|_| ()),
            Err(WireError::NotForMe { to: p.m.uid() })
        );
        // Re-addressed without re-wrapping: the key does not unwrap or the AEAD fails.
        let Part::Sealed {
            wrapped_key,
            ciphertext,
            ..
        } = to_m.parts[0].clone()
        else {
            panic!("sealed")
        };
        let readdressed = Frame::new(
            h,
            vec![Part::Sealed {
                to: p.b.uid(),
                wrapped_key,
                ciphertext,
            }],
        );
        let got = readdressed.part(0).unwrap().open_sealed(p.b).map(|_| ());
        assert!(
            matches!(
                got,
                Err(WireError::KeyUnwrap | WireError::Decrypt | WireError::Decode(_))
                    | Err(WireError::TrailingBytes { .. })
            ),
            "{got:?}"
        );

        // Missing and duplicated inners.
        let o = open(std::slice::from_ref(&signed));
        assert_eq!(
            o.verify_id_proof(p.c.public(), &p.id_c),
            Err(WireError::MissingInner { kind: "IdProof" })
        );
        assert_eq!(
            o.public_key().map(|_| ()),
            Err(WireError::MissingInner { kind: "PublicKey" })
        );
        assert_eq!(
            o.secret(p.scrip.id(), &body.cs_hash).map(|_| ()),
            Err(WireError::MissingSecret {
                scrip_id: p.scrip.id()
            })
        );
        let o = open(&[signed.clone(), signed.clone()]);
        assert_eq!(
            o.signed::<BrokerScripWithdrawX0>(p.c.public()).map(|_| ()),
            Err(WireError::DuplicateInner { kind: "Signed" })
        );
        let o = open(&[]);
        assert_eq!(
            o.signed::<BrokerScripWithdrawX0>(p.c.public()).map(|_| ()),
            Err(WireError::MissingInner { kind: "Signed" })
        );

        // An IdProof for another ID, or by another key.
        let o = open(&[id_proof(p.c, &h, &p.id_c).unwrap()]);
        assert_eq!(
            o.verify_id_proof(p.c.public(), &p.id_m),
            Err(WireError::BadIdProof)
        );
        assert_eq!(
            o.verify_id_proof(p.m.public(), &p.id_c),
            Err(WireError::SignerMismatch {
                sender: p.c.uid(),
                signer: p.m.uid()
            })
        );

        // A CustomerSecret that does not hash to cs_hash; two secrets for one scrip; a
        // secret for another scrip only.
        let wrong = CustomerSecret::from_bytes(b"not the secret");
        let o = open(&[secret_inner(p.scrip.id(), &wrong)]);
        assert_eq!(
            o.secret(p.scrip.id(), &body.cs_hash).map(|_| ()),
            Err(WireError::SecretMismatch {
                scrip_id: p.scrip.id()
            })
        );
        let o = open(&[
            secret_inner(p.scrip.id(), &p.cs),
            secret_inner(p.scrip.id(), &p.cs),
        ]);
        assert_eq!(
            o.secret(p.scrip.id(), &body.cs_hash).map(|_| ()),
            Err(WireError::DuplicateInner { kind: "Secret" })
        );
        let o = open(&[secret_inner(ScripId([0; 16]), &p.cs)]);
        assert_eq!(
            o.secret(p.scrip.id(), &body.cs_hash).map(|_| ()),
            Err(WireError::MissingSecret {
                scrip_id: p.scrip.id()
            })
        );

        // A public key inner that is not a key of the suite.
        let o = open(&[Inner::PublicKey {
            spki_der: vec![0x30, 0x00],
        }]);
        assert!(matches!(
            o.public_key(),
            Err(WireError::BadPublicKey(CryptoError::Pem(_)))
        ));
        let other = match suite {
            Suite::Paper => Suite::Modern,
            Suite::Modern => Suite::Paper,
        };
        let o = open(&[public_key_inner(fixtures::keypair(other, 0).public())]);
        assert!(matches!(
            o.public_key(),
            Err(WireError::BadPublicKey(CryptoError::KeySize { .. }))
        ));
    }
}

#[test]
fn a_frame_of_another_suite_is_refused_by_the_opener() {
    let p = Parties::new(Suite::Modern);
    let paper = Parties::new(Suite::Paper);
    let h = paper.header(Label::BrokerScripRequest, paper.c);
    let f = Frame::new(h, vec![seal(&h, paper.b.public(), &[]).unwrap()]);
    assert_eq!(
        f.part(0).unwrap().open_sealed(p.b).map(|_| ()),
        Err(WireError::WrongSuite {
            expected: Suite::Modern,
            found: Suite::Paper
        })
    );
    let signed = Frame::new(h, vec![sign(paper.c, &h, &request()).unwrap().into()]);
    assert_eq!(
        signed
            .part(0)
            .unwrap()
            .verify_signed::<BrokerScripRequestX0>(p.c.public())
            .map(|_| ()),
        Err(WireError::WrongSuite {
            expected: Suite::Modern,
            found: Suite::Paper
        })
    );
}

/// Every failure to decode, decrypt or verify is `BadFrame` to the peer; size, version and
/// suite keep their own codes; local build failures are `Internal`.
#[test]
fn wire_codes() {
    let bad_frame = [
        WireError::Decode(postcard::Error::DeserializeUnexpectedEnd),
        WireError::TrailingBytes { count: 1 },
        WireError::TooManyParts { count: 9 },
        WireError::TooManyInners { count: 9 },
        WireError::NestedForward,
        WireError::OriginTxMismatch,
        WireError::OriginSuiteMismatch,
        WireError::MissingPart { index: 0 },
        WireError::WrongPartKind {
            expected: "Signed",
            found: "Sealed",
        },
        WireError::LabelMismatch {
            expected: Label::Ack,
            found: Label::Error,
        },
        WireError::NotForMe { to: Uid([0; 16]) },
        WireError::SignerMismatch {
            sender: Uid([0; 16]),
            signer: Uid([1; 16]),
        },
        WireError::BadSignature,
        WireError::BadIdProof,
        WireError::KeyUnwrap,
        WireError::Decrypt,
        WireError::BadPublicKey(CryptoError::Pem("x".into())),
        WireError::MissingInner { kind: "IdProof" },
        WireError::DuplicateInner { kind: "Signed" },
        WireError::MissingSecret {
            scrip_id: ScripId([0; 16]),
        },
        WireError::SecretMismatch {
            scrip_id: ScripId([0; 16]),
        },
    ];
    for e in bad_frame {
        assert_eq!(e.code(), ErrorCode::BadFrame, "{e}");
    }
    assert_eq!(
        WireError::FrameTooLarge { size: 70000 }.code(),
        ErrorCode::FrameTooLarge
    );
    assert_eq!(
        WireError::UnsupportedVersion { version: 2 }.code(),
        ErrorCode::UnsupportedVersion
    );
    assert_eq!(
        WireError::WrongSuite {
            expected: Suite::Modern,
            found: Suite::Paper
        }
        .code(),
        ErrorCode::WrongSuite
    );
    assert_eq!(
        WireError::Build(CryptoError::Sign).code(),
        ErrorCode::Internal
    );
    assert_eq!(
        WireError::Encode(postcard::Error::SerializeBufferFull).code(),
        ErrorCode::Internal
    );
    // Error texts name ids, never secrets.
    assert_eq!(
        WireError::NotForMe {
            to: Uid([0xbb; 16])
        }
        .to_string(),
        "sealed part is addressed to bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb, not to this node"
    );
}
