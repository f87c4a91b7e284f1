//! The parts of a frame and the inners of a sealed part (protocol.md section 3).
//!
//! A part is a signed body in the clear, a sealed envelope for one recipient, a part
//! relayed unchanged with the header it arrived under, or (the broker's `Ack` in 6.3 only)
//! an unsigned body. Relaying nests at most once: the
//! decoder's types stop a deeper nesting (so a hostile frame cannot recurse the decoder
//! into a stack overflow), and [`Frame::part`](super::Frame::part) refuses the one extra
//! level the decoder still reads, with the typed [`WireError::NestedForward`].

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::codec::{bounded_vec, customer_secret, decode_exact, pan_secret};
use super::error::WireError;
use super::header::Header;
use crate::ids::{PanSecret, ScripId, Uid};
use crate::scrip::CustomerSecret;

/// Most inners one sealed part may hold. The protocol needs at most four (registration:
/// Signed, IdProof, PublicKey; a scrip request: IdProof, Signed, Secret); a bound keeps the
/// decoder's memory proportional to its input (protocol.md section 3, "Limits").
pub const MAX_INNERS: usize = 8;

/// One part of a frame (protocol.md section 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "PartRepr<PartRepr<PartRepr<Never>>>")]
pub enum Part {
    /// `Sign_K(X)` in the clear: the postcard body and the signature over its `SigInput`.
    Signed {
        /// The postcard encoding of the body `X_i`.
        body: Vec<u8>,
        /// The signature over `SigInput(header, body)`.
        sig: Vec<u8>,
    },
    /// `PKEnc_K(k), Enc_k(Vec<Inner>)` for the holder of the key with UID `to`.
    Sealed {
        /// The recipient.
        to: Uid,
        /// The fresh session key, wrapped for the recipient.
        wrapped_key: Vec<u8>,
        /// The sealed postcard `Vec<Inner>` (IV ‖ CBC, or nonce ‖ GCM ‖ tag).
        ciphertext: Vec<u8>,
    },
    /// A part relayed unchanged, with the header of the frame it came in (6.2, 6.5, 6.7).
    Forwarded {
        /// The header the part was made under: its signatures and associated data are
        /// checked against this, not against the relay's header.
        origin: Header,
        /// The relayed part: `Signed` or `Sealed`, never another `Forwarded`.
        part: Box<Part>,
    },
    /// A reply body with no signature: only the broker's `Ack` to 6.3 steps 1 and 5, so
    /// that a purchase costs the broker no private-key operation (protocol.md 6.3; ADR
    /// 0008 says why this is safe and how a receiver accepts it). Never a request, never
    /// relayed, never anything that carries value or a decision.
    Clear {
        /// The postcard encoding of the body.
        body: Vec<u8>,
    },
}

impl Part {
    /// The variant's name, for error messages.
    #[must_use]
    pub const fn kind_name(&self) -> &'static str {
        match self {
            Part::Signed { .. } => "Signed",
            Part::Sealed { .. } => "Sealed",
            Part::Forwarded { .. } => "Forwarded",
            Part::Clear { .. } => "Clear",
        }
    }

    /// Wraps `part`, received under `origin`, for relaying (protocol.md section 3,
    /// "Forwarded parts"). A forwarded part is relayed at most once: forwarding one again
    /// is refused with [`WireError::NestedForward`].
    pub fn forwarded(origin: Header, part: Part) -> Result<Part, WireError> {
        match part {
            Part::Forwarded { .. } => Err(WireError::NestedForward),
            Part::Clear { .. } => Err(WireError::WrongPartKind {
                expected: "Signed or Sealed",
                found: "Clear",
            }),
            part => Ok(Part::Forwarded {
                origin,
                part: Box::new(part),
            }),
        }
    }
}

/// One element of a sealed part's plaintext (protocol.md section 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Inner {
    /// `Sign_K(X)`, as [`Part::Signed`].
    Signed {
        /// The postcard encoding of the body `X_i`.
        body: Vec<u8>,
        /// The signature over `SigInput(header, body)`.
        sig: Vec<u8>,
    },
    /// `SignOnly_K(ID)`: a signature over `H("peerscrip/id" ‖ ID ‖ tx ‖ label)`.
    IdProof {
        /// The signature.
        sig: Vec<u8>,
    },
    /// The sender's public key, SPKI DER (registration only, 6.0).
    PublicKey {
        /// SubjectPublicKeyInfo DER.
        spki_der: Vec<u8>,
    },
    /// A CustomerSecret whose hash a signed body of the same part holds as `cs_hash`.
    Secret {
        /// The scrip the secret belongs to.
        scrip_id: ScripId,
        /// The CustomerSecret; never printed, zeroized on drop.
        #[serde(with = "customer_secret")]
        cs: CustomerSecret,
    },
    /// The PANSecret of an account the operator opens (`AdminRequest`, ADR 0010), beside
    /// the signed body that names the account, never inside it.
    PanSecret {
        /// The PANSecret; never printed, zeroized on drop.
        #[serde(with = "pan_secret")]
        secret: PanSecret,
    },
}

impl Inner {
    /// The variant's name, for error messages.
    #[must_use]
    pub const fn kind_name(&self) -> &'static str {
        match self {
            Inner::Signed { .. } => "Signed",
            Inner::IdProof { .. } => "IdProof",
            Inner::PublicKey { .. } => "PublicKey",
            Inner::Secret { .. } => "Secret",
            Inner::PanSecret { .. } => "PanSecret",
        }
    }
}

/// The plaintext of a sealed part: postcard `Vec<Inner>`. Zeroized on drop, since it may
/// hold a CustomerSecret.
pub(crate) fn encode_inners(inners: &[Inner]) -> Result<Zeroizing<Vec<u8>>, WireError> {
    if inners.len() > MAX_INNERS {
        return Err(WireError::TooManyInners {
            count: inners.len(),
        });
    }
    postcard::to_allocvec(inners)
        .map(Zeroizing::new)
        .map_err(WireError::Encode)
}

/// Decodes a sealed part's plaintext, at most [`MAX_INNERS`] inners, nothing left over.
pub(crate) fn decode_inners(plaintext: &[u8]) -> Result<Vec<Inner>, WireError> {
    #[derive(Deserialize)]
    struct Inners(#[serde(deserialize_with = "bounded_vec::<_, _, MAX_INNERS>")] Vec<Inner>);
    decode_exact::<Inners>(plaintext).map(|i| i.0)
}

/// What the decoder reads for a [`Part`]: the same encoding, with the nesting depth in the
/// type. `Part` decodes as `PartRepr<PartRepr<PartRepr<Never>>>`, so a forwarded part
/// inside a forwarded part still decodes (and is refused with a typed error by
/// [`Frame::part`](super::Frame::part)), and a third level is a decoding error.
#[derive(Deserialize)]
#[serde(rename = "Part")]
enum PartRepr<F> {
    Signed {
        body: Vec<u8>,
        sig: Vec<u8>,
    },
    Sealed {
        to: Uid,
        wrapped_key: Vec<u8>,
        ciphertext: Vec<u8>,
    },
    Forwarded {
        origin: Header,
        part: Box<F>,
    },
    Clear {
        body: Vec<u8>,
    },
}

/// The part below the deepest level the decoder reads: there is none.
#[derive(Deserialize)]
enum Never {}

impl From<Never> for Part {
    fn from(never: Never) -> Part {
        match never {}
    }
}

impl<F: Into<Part>> From<PartRepr<F>> for Part {
    fn from(repr: PartRepr<F>) -> Part {
        match repr {
            PartRepr::Signed { body, sig } => Part::Signed { body, sig },
            PartRepr::Sealed {
                to,
                wrapped_key,
                ciphertext,
            } => Part::Sealed {
                to,
                wrapped_key,
                ciphertext,
            },
            PartRepr::Forwarded { origin, part } => Part::Forwarded {
                origin,
                part: Box::new((*part).into()),
            },
            PartRepr::Clear { body } => Part::Clear { body },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Suite;
    use crate::wire::header::tests::vector_header;

    fn signed() -> Part {
        Part::Signed {
            body: vec![1, 2, 3],
            sig: vec![9; 5],
        }
    }

    fn nest(part: Part, levels: usize) -> Part {
        (0..levels).fold(part, |p, _| Part::Forwarded {
            origin: vector_header(Suite::Modern),
            part: Box::new(p),
        })
    }

    #[test]
    fn parts_round_trip() {
        let sealed = Part::Sealed {
            to: Uid([0xbb; 16]),
            wrapped_key: vec![4; 7],
            ciphertext: vec![5; 9],
        };
        for part in [signed(), sealed.clone(), nest(signed(), 1), nest(sealed, 1)] {
            let bytes = postcard::to_allocvec(&part).unwrap();
            assert_eq!(decode_exact::<Part>(&bytes).unwrap(), part);
        }
    }

    /// Variant indices are the protocol's order: Signed 0, Sealed 1, Forwarded 2.
    #[test]
    fn signed_part_bytes() {
        assert_eq!(
            postcard::to_allocvec(&signed()).unwrap(),
            [0, 3, 1, 2, 3, 5, 9, 9, 9, 9, 9]
        );
    }

    #[test]
    fn nesting_depth_is_bounded_by_the_decoder() {
        let twice = postcard::to_allocvec(&nest(signed(), 2)).unwrap();
        assert_eq!(decode_exact::<Part>(&twice).unwrap(), nest(signed(), 2));
        let thrice = postcard::to_allocvec(&nest(signed(), 3)).unwrap();
        assert_eq!(
            decode_exact::<Part>(&thrice),
            Err(WireError::Decode(postcard::Error::SerdeDeCustom))
        );
        // A deep nesting is refused at the third level, without recursing further.
        let deep = postcard::to_allocvec(&nest(signed(), 1000)).unwrap();
        assert!(decode_exact::<Part>(&deep).is_err());
    }

    #[test]
    fn forwarding_a_forwarded_part_is_refused() {
        let h = vector_header(Suite::Paper);
        let once = Part::forwarded(h, signed()).unwrap();
        assert_eq!(once, nest_paper(signed()));
        assert_eq!(Part::forwarded(h, once), Err(WireError::NestedForward));

        fn nest_paper(p: Part) -> Part {
            Part::Forwarded {
                origin: vector_header(Suite::Paper),
                part: Box::new(p),
            }
        }
    }

    #[test]
    fn inners_round_trip_and_are_bounded() {
        let inners = vec![
            Inner::Signed {
                body: vec![1],
                sig: vec![2],
            },
            Inner::IdProof { sig: vec![3] },
            Inner::PublicKey {
                spki_der: vec![4, 5],
            },
            Inner::Secret {
                scrip_id: ScripId([7; 16]),
                cs: CustomerSecret::from_bytes(b"customer secret"),
            },
        ];
        let pt = encode_inners(&inners).unwrap();
        assert_eq!(decode_inners(&pt).unwrap(), inners);

        let many = vec![Inner::IdProof { sig: vec![] }; MAX_INNERS + 1];
        assert_eq!(
            encode_inners(&many),
            Err(WireError::TooManyInners {
                count: MAX_INNERS + 1
            })
        );
        let raw = postcard::to_allocvec(&many).unwrap();
        assert_eq!(
            decode_inners(&raw),
            Err(WireError::Decode(postcard::Error::SerdeDeCustom))
        );
    }

    #[test]
    fn a_secret_inner_does_not_print() {
        let inner = Inner::Secret {
            scrip_id: ScripId([7; 16]),
            cs: CustomerSecret::from_bytes(b"customer secret"),
        };
        assert!(!format!("{inner:?}").contains("customer"));
    }
}
