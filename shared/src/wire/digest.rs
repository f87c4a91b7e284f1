//! The request digest of protocol.md section 7: what makes a request idempotent.
//!
//! It hashes the request header and the verified bodies in order (with the origin header
//! of a forwarded body), and not signatures, ciphertexts or IdProofs: a retry that re-signs
//! and re-seals the same bodies, byte for byte, has the same digest and gets the stored
//! reply; other content under the same (sender, tx, label) is `TxReused`.

use super::error::WireError;
use super::header::{Header, len_prefix};

/// Domain-separation tag of the request digest. No `0x00` follows it (the test vector of
/// test-vectors.md, "Frame bytes", is computed so).
pub const REQ_TAG: &[u8] = b"peerscrip/v1/req";

/// One verified body as the digest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigestItem<'a> {
    /// The origin header when the body came in a forwarded part, else `None`.
    pub origin: Option<&'a Header>,
    /// The body's postcard bytes, as signed.
    pub body: &'a [u8],
}

/// `H("peerscrip/v1/req" ‖ HeaderBytes ‖ for each body: [origin HeaderBytes] ‖ len (u32
/// BE) ‖ body)` in the request's suite (protocol.md section 7).
pub fn request_digest(request: &Header, bodies: &[DigestItem<'_>]) -> Result<Vec<u8>, WireError> {
    let header = request.to_bytes();
    let mut prefixes = Vec::with_capacity(bodies.len());
    for item in bodies {
        prefixes.push((
            item.origin.map(Header::to_bytes),
            len_prefix(item.body.len())?,
        ));
    }
    let mut parts: Vec<&[u8]> = Vec::with_capacity(2 + 3 * bodies.len());
    parts.push(REQ_TAG);
    parts.push(header.as_bytes());
    for (item, (origin, len)) in bodies.iter().zip(&prefixes) {
        if let Some(origin) = origin {
            parts.push(origin.as_bytes());
        }
        parts.push(len);
        parts.push(item.body);
    }
    Ok(request.suite.hash(&parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Uid;
    use crate::suite::Suite;
    use crate::wire::Label;
    use crate::wire::header::tests::{VECTOR_BODY, vector_header};

    fn direct(body: &[u8]) -> DigestItem<'_> {
        DigestItem { origin: None, body }
    }

    /// test-vectors.md, "Frame bytes": request digest over the one sample body.
    #[test]
    fn request_digest_known_answers() {
        let body = hex::decode(VECTOR_BODY).unwrap();
        assert_eq!(
            hex::encode(request_digest(&vector_header(Suite::Modern), &[direct(&body)]).unwrap()),
            "c47da46b940a699adfea6270605d43b93e4363f4df28fdcb7ddce9a5d43005cc"
        );
        assert_eq!(
            hex::encode(request_digest(&vector_header(Suite::Paper), &[direct(&body)]).unwrap()),
            "1107c06d562d7dc016fe08f3e0fd768081efefbc"
        );
    }

    /// The exact concatenation, forwarded body included.
    #[test]
    fn request_digest_layout_with_a_forwarded_body() {
        let h = vector_header(Suite::Modern);
        let origin = h.next(Label::VendorScripRequest, Uid([1; 16]));
        let digest = request_digest(
            &h,
            &[
                direct(b"ab"),
                DigestItem {
                    origin: Some(&origin),
                    body: b"xyz",
                },
            ],
        )
        .unwrap();
        let expected = Suite::Modern.hash(&[
            REQ_TAG,
            h.to_bytes().as_bytes(),
            &[0, 0, 0, 2],
            b"ab",
            origin.to_bytes().as_bytes(),
            &[0, 0, 0, 3],
            b"xyz",
        ]);
        assert_eq!(digest, expected);
    }

    #[test]
    fn digest_depends_on_order_origin_and_header() {
        let h = vector_header(Suite::Modern);
        let base = request_digest(&h, &[direct(b"a"), direct(b"b")]).unwrap();
        assert_ne!(
            base,
            request_digest(&h, &[direct(b"b"), direct(b"a")]).unwrap()
        );
        // Length prefixes keep "a" ‖ "b" apart from "ab".
        assert_ne!(base, request_digest(&h, &[direct(b"ab")]).unwrap());
        let forwarded = DigestItem {
            origin: Some(&h),
            body: b"b",
        };
        assert_ne!(
            base,
            request_digest(&h, &[direct(b"a"), forwarded]).unwrap()
        );
        let other = h.next(Label::BrokerScripTopUp, h.sender);
        assert_ne!(
            base,
            request_digest(&other, &[direct(b"a"), direct(b"b")]).unwrap()
        );
    }
}
