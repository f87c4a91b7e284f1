//! The codec rules every wire structure follows (protocol.md section 3, "Limits").
//!
//! Frames, sealed plaintexts and bodies are postcard. Decoding is always from a slice and
//! must consume it exactly (trailing bytes are refused, so one value has one accepted
//! encoding length). Postcard only pre-allocates a sequence when its announced length fits
//! in the remaining input, so a length prefix cannot make the decoder allocate more than
//! the input holds; sequences of structured elements are additionally bounded by a
//! protocol maximum ([`bounded_vec`]), because one input byte can stand for an element that
//! is much larger in memory.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::error::WireError;

/// Encodes `value` as postcard.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    postcard::to_allocvec(value).map_err(WireError::Encode)
}

/// Decodes exactly one `T` from `bytes`: any byte left over is refused with
/// [`WireError::TrailingBytes`].
pub(crate) fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(WireError::Decode)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(WireError::TrailingBytes { count: rest.len() })
    }
}

/// Deserializes a sequence of at most `MAX` elements, refusing a longer one as soon as its
/// announced length is known, and never reserving room for more than `MAX` elements.
pub(crate) fn bounded_vec<'de, D, T, const MAX: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_seq(BoundedVisitor::<T, MAX>(PhantomData))
}

struct BoundedVisitor<T, const MAX: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedVisitor<T, MAX> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sequence of at most {MAX} elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let hint = seq.size_hint().unwrap_or(0);
        if hint > MAX {
            return Err(A::Error::invalid_length(hint, &self));
        }
        let mut out = Vec::with_capacity(hint);
        while let Some(item) = seq.next_element()? {
            if out.len() == MAX {
                return Err(A::Error::invalid_length(MAX + 1, &self));
            }
            out.push(item);
        }
        Ok(out)
    }
}

/// Serde for the [`CustomerSecret`](crate::CustomerSecret) of an `Inner::Secret`: the
/// same bytes as a `Vec<u8>` on the wire, but the value in memory zeroizes and never
/// prints (protocol.md section 3: a CustomerSecret travels only inside a sealed part).
/// Serde for a PANSecret inside a sealed part (`Inner::PanSecret`): its bytes, as for a
/// CustomerSecret.
pub(crate) mod pan_secret {
    use std::fmt;

    use serde::de::Visitor;
    use serde::{Deserializer, Serializer};

    use crate::ids::PanSecret;

    pub(crate) fn serialize<S: Serializer>(secret: &PanSecret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(secret.expose())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PanSecret, D::Error> {
        d.deserialize_bytes(SecretVisitor)
    }

    struct SecretVisitor;

    impl Visitor<'_> for SecretVisitor {
        type Value = PanSecret;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a PANSecret")
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<PanSecret, E> {
            Ok(PanSecret::from_bytes(v))
        }
    }
}

pub(crate) mod customer_secret {
    use std::fmt;

    use serde::de::Visitor;
    use serde::{Deserializer, Serializer};

    use crate::scrip::CustomerSecret;

    pub(crate) fn serialize<S: Serializer>(cs: &CustomerSecret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(cs.expose())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CustomerSecret, D::Error> {
        d.deserialize_bytes(SecretVisitor)
    }

    struct SecretVisitor;

    impl Visitor<'_> for SecretVisitor {
        type Value = CustomerSecret;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a CustomerSecret")
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<CustomerSecret, E> {
            Ok(CustomerSecret::from_bytes(v))
        }
    }
}

/// Serde for the `suite` field of a [`Header`](super::Header): the suite's `HeaderBytes`
/// code (paper 1, modern 2), not serde's variant index, so that the wire byte equals the
/// signed byte (protocol.md section 3).
pub(crate) mod suite_code {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::suite::Suite;

    // Serde's `serialize_with` hands the field by reference.
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub(crate) fn serialize<S: Serializer>(suite: &Suite, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(suite.code())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Suite, D::Error> {
        let code = u8::deserialize(d)?;
        Suite::from_code(code).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrip::CustomerSecret;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Three(#[serde(deserialize_with = "bounded_vec::<_, _, 3>")] Vec<u16>);

    #[derive(Serialize, Deserialize)]
    struct Secret(#[serde(with = "customer_secret")] CustomerSecret);

    #[test]
    fn bounded_vec_accepts_up_to_the_bound() {
        let v = Three(vec![1, 2, 300]);
        let bytes = encode(&v).unwrap();
        assert_eq!(decode_exact::<Three>(&bytes).unwrap(), v);
    }

    #[test]
    fn bounded_vec_refuses_more() {
        let bytes = encode(&vec![1u16, 2, 3, 4]).unwrap();
        assert!(matches!(
            decode_exact::<Three>(&bytes),
            Err(WireError::Decode(postcard::Error::SerdeDeCustom))
        ));
    }

    #[test]
    fn a_huge_announced_length_is_refused_without_allocating() {
        // Varint of u32::MAX: five bytes, then nothing.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(matches!(
            decode_exact::<Vec<u8>>(&bytes),
            Err(WireError::Decode(postcard::Error::DeserializeUnexpectedEnd))
        ));
        assert!(decode_exact::<Three>(&bytes).is_err());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert!(matches!(
            decode_exact::<u8>(&[7, 0, 0]),
            Err(WireError::TrailingBytes { count: 2 })
        ));
    }

    #[test]
    fn customer_secrets_encode_like_a_vec() {
        let secret = Secret(CustomerSecret::from_bytes(b"cs"));
        let bytes = encode(&secret).unwrap();
        assert_eq!(bytes, encode(&b"cs".to_vec()).unwrap());
        let back: Secret = decode_exact(&bytes).unwrap();
        assert_eq!(back.0.expose(), b"cs");
    }
}
