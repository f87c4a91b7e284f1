//! The frame: one postcard message on the wire (protocol.md section 3), its size limit and
//! the rules a decoded frame must satisfy before anyone looks inside.
//!
//! Why the checks sit here and not in each node: the size limit must come before decoding,
//! and the version, nesting and origin checks of forwarded parts are the same for every
//! party, so no node can forget them.

use serde::{Deserialize, Serialize};

use super::codec::{bounded_vec, decode_exact, encode};
use super::error::WireError;
use super::header::Header;
use super::part::Part;

/// Largest accepted frame, in bytes (protocol.md section 3, "Limits": 64 KiB).
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Most parts one frame may carry. The protocol needs at most two (6.2 step 2: a part for
/// the broker and one for the merchant; step 3: the merchant's own and a forwarded one).
pub const MAX_PARTS: usize = 8;

/// One message on the wire (protocol.md section 3). On the wire the header's five fields
/// come first, then the parts; postcard encodes a nested struct as the concatenation of its
/// fields, so this is byte for byte the flat `Frame` of the protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// version, suite, label, tx, sender.
    pub header: Header,
    /// The parts, in the order section 6 lists them.
    #[serde(deserialize_with = "bounded_vec::<_, _, MAX_PARTS>")]
    pub parts: Vec<Part>,
}

/// A part of a frame together with the header it must be verified against: the frame's
/// header for a direct part, the origin header for a forwarded part (protocol.md section
/// 3, "Forwarded parts"). `part` is never `Forwarded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartRef<'a> {
    /// The header every signature, IdProof and associated data of the part is bound to.
    pub header: &'a Header,
    /// Whether the part was relayed (then `header` is the origin's).
    pub forwarded: bool,
    /// The `Signed` or `Sealed` part itself.
    pub part: &'a Part,
}

impl Frame {
    /// A frame of `parts` under `header`.
    #[must_use]
    pub const fn new(header: Header, parts: Vec<Part>) -> Frame {
        Frame { header, parts }
    }

    /// Encodes the frame. A frame this node could not accept itself is not sent: it must
    /// pass [`Frame::check`] and fit in [`MAX_FRAME_LEN`].
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        self.check()?;
        let bytes = encode(self)?;
        if bytes.len() > MAX_FRAME_LEN {
            return Err(WireError::FrameTooLarge { size: bytes.len() });
        }
        Ok(bytes)
    }

    /// Decodes a frame received from the network. A frame over [`MAX_FRAME_LEN`] is
    /// refused before a byte of it is decoded; decoding reads from the slice and allocates
    /// in proportion to it; the frame must then pass [`Frame::check`]
    /// (protocol.md section 3, "Limits").
    pub fn decode(bytes: &[u8]) -> Result<Frame, WireError> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(WireError::FrameTooLarge { size: bytes.len() });
        }
        let frame: Frame = decode_exact(bytes)?;
        frame.check()?;
        Ok(frame)
    }

    /// The header of an encoded frame, decoding nothing after it: the header is a frame's
    /// first field, so its bytes are a prefix of the frame's. For frames this node encoded
    /// itself (its stored sent frames), where only the tx or label is wanted; a frame from
    /// the network goes through [`Frame::decode`].
    pub fn header_of(bytes: &[u8]) -> Result<Header, WireError> {
        let (header, _) = postcard::take_from_bytes::<Header>(bytes).map_err(WireError::Decode)?;
        Ok(header)
    }

    /// The rules of a well-formed frame: version 1, at most [`MAX_PARTS`] parts, and every
    /// forwarded part well formed (see [`Frame::part`]).
    pub fn check(&self) -> Result<(), WireError> {
        self.header.check_version()?;
        if self.parts.len() > MAX_PARTS {
            return Err(WireError::TooManyParts {
                count: self.parts.len(),
            });
        }
        for index in 0..self.parts.len() {
            self.part(index)?;
        }
        Ok(())
    }

    /// Part `index` with the header it is verified against. A forwarded part must carry a
    /// version-1 origin of this frame's suite and tx (so a relay cannot move a part into
    /// another transaction) and must not itself be forwarded (protocol.md section 3).
    /// The caller still checks that `origin.label` and `origin.sender` are those its
    /// transaction expects.
    pub fn part(&self, index: usize) -> Result<PartRef<'_>, WireError> {
        let part = self
            .parts
            .get(index)
            .ok_or(WireError::MissingPart { index })?;
        match part {
            Part::Signed { .. } | Part::Sealed { .. } | Part::Clear { .. } => Ok(PartRef {
                header: &self.header,
                forwarded: false,
                part,
            }),
            Part::Forwarded { origin, part } => {
                origin.check_version()?;
                if origin.suite != self.header.suite {
                    return Err(WireError::OriginSuiteMismatch);
                }
                if origin.tx != self.header.tx {
                    return Err(WireError::OriginTxMismatch);
                }
                if matches!(**part, Part::Forwarded { .. }) {
                    return Err(WireError::NestedForward);
                }
                if matches!(**part, Part::Clear { .. }) {
                    return Err(WireError::WrongPartKind {
                        expected: "Signed or Sealed",
                        found: "Clear",
                    });
                }
                Ok(PartRef {
                    header: origin,
                    forwarded: true,
                    part,
                })
            }
        }
    }

    /// Part `index`, wrapped for relaying with this frame's header as its origin (6.2
    /// step 3, 6.5 step 2, 6.7 step 2). A part that was itself forwarded is not relayed
    /// again ([`WireError::NestedForward`]).
    pub fn forward(&self, index: usize) -> Result<Part, WireError> {
        let part = self
            .parts
            .get(index)
            .ok_or(WireError::MissingPart { index })?;
        Part::forwarded(self.header, part.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{TxId, Uid};
    use crate::suite::Suite;
    use crate::wire::Label;
    use crate::wire::header::tests::vector_header;
    use proptest::prelude::*;

    fn signed(n: u8) -> Part {
        Part::Signed {
            body: vec![n; 4],
            sig: vec![n; 8],
        }
    }

    fn frame() -> Frame {
        Frame::new(vector_header(Suite::Modern), vec![signed(1), signed(2)])
    }

    #[test]
    fn frame_round_trips() {
        let f = frame();
        let bytes = f.encode().unwrap();
        assert_eq!(Frame::decode(&bytes).unwrap(), f);
        // The header's five fields come first, as in the flat Frame of section 3.
        let header = postcard::to_allocvec(&f.header).unwrap();
        assert_eq!(&bytes[..header.len()], header.as_slice());
        assert_eq!(bytes[header.len()], 2, "then the number of parts");
    }

    #[test]
    fn a_frame_over_64_kib_is_refused_before_decoding() {
        // Not a frame at all: were it decoded, the error would be a decoding error.
        let big = vec![0xff; MAX_FRAME_LEN + 1];
        assert_eq!(
            Frame::decode(&big),
            Err(WireError::FrameTooLarge {
                size: MAX_FRAME_LEN + 1
            })
        );
        // Exactly 64 KiB is not refused for its size.
        let limit = vec![0xff; MAX_FRAME_LEN];
        assert!(matches!(Frame::decode(&limit), Err(WireError::Decode(_))));
    }

    #[test]
    fn encode_refuses_a_frame_over_64_kib() {
        let f = Frame::new(
            vector_header(Suite::Modern),
            vec![Part::Signed {
                body: vec![0; MAX_FRAME_LEN],
                sig: vec![],
            }],
        );
        assert!(matches!(
            f.encode(),
            Err(WireError::FrameTooLarge { size }) if size > MAX_FRAME_LEN
        ));
    }

    #[test]
    fn version_other_than_one_is_refused() {
        let mut f = frame();
        f.header.version = 2;
        let bytes = postcard::to_allocvec(&f).unwrap();
        assert_eq!(
            Frame::decode(&bytes),
            Err(WireError::UnsupportedVersion { version: 2 })
        );
        assert_eq!(
            f.encode(),
            Err(WireError::UnsupportedVersion { version: 2 })
        );
    }

    #[test]
    fn too_many_parts_are_refused() {
        let f = Frame::new(vector_header(Suite::Modern), vec![signed(0); MAX_PARTS + 1]);
        assert_eq!(
            f.encode(),
            Err(WireError::TooManyParts {
                count: MAX_PARTS + 1
            })
        );
        let bytes = postcard::to_allocvec(&f).unwrap();
        assert_eq!(
            Frame::decode(&bytes),
            Err(WireError::Decode(postcard::Error::SerdeDeCustom))
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = frame().encode().unwrap();
        bytes.push(0);
        assert_eq!(
            Frame::decode(&bytes),
            Err(WireError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn forwarded_parts_resolve_to_their_origin() {
        let origin = vector_header(Suite::Modern).next(Label::VendorScripRequest, Uid([3; 16]));
        let incoming = Frame::new(origin, vec![signed(7), signed(8)]);
        let relay = Frame::new(
            origin.next(Label::ExchangeAuthorizationRequest, Uid([4; 16])),
            vec![signed(9), incoming.forward(0).unwrap()],
        );
        let relay = Frame::decode(&relay.encode().unwrap()).unwrap();
        let own = relay.part(0).unwrap();
        assert_eq!(own.header, &relay.header);
        assert!(!own.forwarded);
        let fwd = relay.part(1).unwrap();
        assert_eq!(fwd.header, &origin);
        assert!(fwd.forwarded);
        assert_eq!(fwd.part, &signed(7));
        assert_eq!(relay.part(2), Err(WireError::MissingPart { index: 2 }));
    }

    #[test]
    fn a_forwarded_part_inside_a_forwarded_part_is_refused() {
        let h = vector_header(Suite::Modern);
        let nested = Part::Forwarded {
            origin: h,
            part: Box::new(Part::Forwarded {
                origin: h,
                part: Box::new(signed(1)),
            }),
        };
        let f = Frame::new(h, vec![nested]);
        assert_eq!(f.encode(), Err(WireError::NestedForward));
        let bytes = postcard::to_allocvec(&f).unwrap();
        assert_eq!(Frame::decode(&bytes), Err(WireError::NestedForward));
        let relay = Frame::new(h, vec![Part::forwarded(h, signed(1)).unwrap()]);
        assert_eq!(relay.forward(0), Err(WireError::NestedForward));
    }

    #[test]
    fn a_forwarded_part_from_another_tx_or_suite_is_refused() {
        let h = vector_header(Suite::Modern);
        let other_tx = Header {
            tx: TxId([0; 16]),
            ..h
        };
        let f = Frame::new(h, vec![Part::forwarded(other_tx, signed(1)).unwrap()]);
        let bytes = postcard::to_allocvec(&f).unwrap();
        assert_eq!(Frame::decode(&bytes), Err(WireError::OriginTxMismatch));

        let other_suite = vector_header(Suite::Paper);
        let f = Frame::new(h, vec![Part::forwarded(other_suite, signed(1)).unwrap()]);
        let bytes = postcard::to_allocvec(&f).unwrap();
        assert_eq!(Frame::decode(&bytes), Err(WireError::OriginSuiteMismatch));

        let old = Header { version: 0, ..h };
        let f = Frame::new(h, vec![Part::forwarded(old, signed(1)).unwrap()]);
        let bytes = postcard::to_allocvec(&f).unwrap();
        assert_eq!(
            Frame::decode(&bytes),
            Err(WireError::UnsupportedVersion { version: 0 })
        );
    }

    proptest! {
        /// Random bytes never panic the decoder; whatever decodes re-encodes to the same
        /// bytes (one accepted encoding per decoded value, up to varint leniency).
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(f) = Frame::decode(&bytes) {
                prop_assert!(f.encode().is_ok());
            }
        }

        /// Every truncation of a valid frame is refused, and never panics.
        #[test]
        fn truncated_frames_are_refused(cut in 0usize..1000) {
            let bytes = frame().encode().unwrap();
            let cut = cut % bytes.len();
            prop_assert!(Frame::decode(&bytes[..cut]).is_err());
        }

        /// Random bytes after a valid header prefix, the decoder's hardest input.
        #[test]
        fn random_parts_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut bytes = postcard::to_allocvec(&vector_header(Suite::Paper)).unwrap();
            bytes.extend_from_slice(&tail);
            let _ = Frame::decode(&bytes);
        }
    }
}
