//! The frame header and the exact bytes that are signed and authenticated (protocol.md
//! section 3, "Exact bytes").
//!
//! Why exact bytes of our own rather than the postcard encoding: every signature, every
//! AEAD tag and the request digest of section 7 must be reproducible by another
//! implementation and by the auditor, independent of the wire codec.

use serde::{Deserialize, Serialize};

use super::codec::suite_code;
use super::error::WireError;
use super::label::Label;
use crate::ids::{TxId, Uid};
use crate::suite::{PublicKey, Suite};

/// The only protocol version this implementation speaks (protocol.md section 3).
pub const PROTOCOL_VERSION: u16 = 1;

/// Domain-separation tag of [`sig_input`] (protocol.md section 3).
pub const SIG_TAG: &[u8] = b"peerscrip/v1/sig";
/// Domain-separation tag of [`aead_aad`] (protocol.md section 3).
pub const AAD_TAG: &[u8] = b"peerscrip/v1/aad";

/// The first five fields of a frame (protocol.md section 3): what every signature, IdProof
/// and associated data is bound to, so that no part can be moved to another message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Header {
    /// Protocol version, [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The suite of every primitive in the frame (protocol.md section 2).
    #[serde(with = "suite_code")]
    pub suite: Suite,
    /// What the message is (protocol.md section 6).
    pub label: Label,
    /// The transaction, chosen by its initiator (protocol.md sections 3 and 7).
    pub tx: TxId,
    /// The UID of the party that sent (and signed) this frame.
    pub sender: Uid,
}

/// Length of [`HeaderBytes`]: 2 + 1 + 1 + 16 + 16.
pub const HEADER_BYTES_LEN: usize = 36;

/// `version (u16 BE) ‖ suite (u8) ‖ label (u8) ‖ tx (16) ‖ sender (16)` (protocol.md
/// section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeaderBytes(pub [u8; HEADER_BYTES_LEN]);

impl HeaderBytes {
    /// The 36 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; HEADER_BYTES_LEN] {
        &self.0
    }
}

impl Header {
    /// A version-1 header.
    #[must_use]
    pub const fn new(suite: Suite, label: Label, tx: TxId, sender: Uid) -> Header {
        Header {
            version: PROTOCOL_VERSION,
            suite,
            label,
            tx,
            sender,
        }
    }

    /// The same header with another label and sender: the header of the next message of
    /// the same transaction.
    #[must_use]
    pub const fn next(&self, label: Label, sender: Uid) -> Header {
        Header {
            label,
            sender,
            ..*self
        }
    }

    /// The exact header bytes (protocol.md section 3).
    #[must_use]
    pub fn to_bytes(&self) -> HeaderBytes {
        let mut out = [0u8; HEADER_BYTES_LEN];
        out[0..2].copy_from_slice(&self.version.to_be_bytes());
        out[2] = self.suite.code();
        out[3] = self.label.code();
        out[4..20].copy_from_slice(self.tx.as_bytes());
        out[20..36].copy_from_slice(self.sender.as_bytes());
        HeaderBytes(out)
    }

    /// Reads `HeaderBytes` back (an event's evidence keeps the exact bytes a part was
    /// signed under, section 8): the auditor re-verifies a signature against the header
    /// these bytes name. Anything but 36 bytes of a known suite and label is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Header, WireError> {
        let bytes: &[u8; HEADER_BYTES_LEN] =
            bytes.try_into().map_err(|_| WireError::TrailingBytes {
                count: bytes.len().abs_diff(HEADER_BYTES_LEN),
            })?;
        let [v0, v1, suite, label, ..] = *bytes;
        let suite = Suite::from_code(suite).map_err(|_| WireError::UnknownSuiteCode(suite))?;
        let label = Label::from_code(label).map_err(|e| WireError::UnknownLabelCode(e.0))?;
        let mut tx = [0u8; 16];
        tx.copy_from_slice(&bytes[4..20]);
        let mut sender = [0u8; 16];
        sender.copy_from_slice(&bytes[20..36]);
        Ok(Header {
            version: u16::from_be_bytes([v0, v1]),
            suite,
            label,
            tx: TxId(tx),
            sender: Uid(sender),
        })
    }

    /// Refuses a version other than [`PROTOCOL_VERSION`] (protocol.md section 3).
    pub fn check_version(&self) -> Result<(), WireError> {
        if self.version == PROTOCOL_VERSION {
            Ok(())
        } else {
            Err(WireError::UnsupportedVersion {
                version: self.version,
            })
        }
    }

    /// Refuses a key of another suite than the header's (protocol.md section 2: a node
    /// rejects a suite it is not configured for).
    pub fn check_suite(&self, key_suite: Suite) -> Result<(), WireError> {
        if self.suite == key_suite {
            Ok(())
        } else {
            Err(WireError::WrongSuite {
                expected: key_suite,
                found: self.suite,
            })
        }
    }

    /// Refuses a signer key that is not the sender's, or of another suite: everything
    /// under a header is signed by its sender (protocol.md section 3; for a forwarded part
    /// the header is the origin's, and so is the signer).
    pub fn check_signer(&self, key: &PublicKey) -> Result<(), WireError> {
        self.check_suite(key.suite())?;
        if key.uid() == self.sender {
            Ok(())
        } else {
            Err(WireError::SignerMismatch {
                sender: self.sender,
                signer: key.uid(),
            })
        }
    }
}

/// A body or plaintext length as the `u32 BE` prefix of the signed and hashed inputs.
/// Anything that long cannot be in a frame, so it is refused as too large.
pub(crate) fn len_prefix(len: usize) -> Result<[u8; 4], WireError> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| WireError::FrameTooLarge { size: len })
}

/// `SigInput = "peerscrip/v1/sig" ‖ 0x00 ‖ HeaderBytes ‖ len(body) (u32 BE) ‖ body`: what
/// every `Signed` part or inner signs (protocol.md section 3), so that a signature covers
/// the tag, the header and the body.
pub fn sig_input(header: &Header, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let len = len_prefix(body.len())?;
    let mut out = Vec::with_capacity(SIG_TAG.len() + 1 + HEADER_BYTES_LEN + 4 + body.len());
    out.extend_from_slice(SIG_TAG);
    out.push(0);
    out.extend_from_slice(header.to_bytes().as_bytes());
    out.extend_from_slice(&len);
    out.extend_from_slice(body);
    Ok(out)
}

/// AEAD associated data of a sealed part (protocol.md section 3):
/// `"peerscrip/v1/aad" ‖ 0x00 ‖ HeaderBytes ‖ to (16)`. Binds the ciphertext to its
/// message and its recipient (modern suite; the paper suite's CBC has no associated data,
/// there the inner signatures bind it).
#[must_use]
pub fn aead_aad(header: &Header, to: &Uid) -> Vec<u8> {
    let mut out = Vec::with_capacity(AAD_TAG.len() + 1 + HEADER_BYTES_LEN + 16);
    out.extend_from_slice(AAD_TAG);
    out.push(0);
    out.extend_from_slice(header.to_bytes().as_bytes());
    out.extend_from_slice(to.as_bytes());
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The sample frame of test-vectors.md, "Frame bytes".
    pub(crate) fn vector_header(suite: Suite) -> Header {
        Header::new(
            suite,
            Label::BrokerScripRequest,
            TxId(std::array::from_fn(|i| 0x30 + i as u8)),
            Uid([0xaa; 16]),
        )
    }

    /// The sample body of test-vectors.md (raw bytes, not a postcard body).
    pub(crate) const VECTOR_BODY: &str = "d209404142434445464748494a4b4c4d4e4f";

    #[test]
    fn header_bytes_read_back() {
        for suite in Suite::ALL {
            let h = vector_header(suite);
            assert_eq!(Header::from_bytes(h.to_bytes().as_bytes()), Ok(h));
        }
        let bytes = vector_header(Suite::Modern).to_bytes().0;
        assert!(Header::from_bytes(&bytes[..35]).is_err());
        let mut bad = bytes;
        bad[2] = 9;
        assert_eq!(
            Header::from_bytes(&bad),
            Err(WireError::UnknownSuiteCode(9))
        );
        let mut bad = bytes;
        bad[3] = 200;
        assert_eq!(
            Header::from_bytes(&bad),
            Err(WireError::UnknownLabelCode(200))
        );
    }

    #[test]
    fn header_bytes_known_answers() {
        assert_eq!(
            hex::encode(vector_header(Suite::Modern).to_bytes().as_bytes()),
            "00010205303132333435363738393a3b3c3d3e3faaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        );
        assert_eq!(
            hex::encode(vector_header(Suite::Paper).to_bytes().as_bytes()),
            "00010105303132333435363738393a3b3c3d3e3faaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        );
    }

    #[test]
    fn sig_input_known_answer() {
        let body = hex::decode(VECTOR_BODY).unwrap();
        assert_eq!(
            hex::encode(sig_input(&vector_header(Suite::Modern), &body).unwrap()),
            "7065657273637269702f76312f7369670000010205303132333435363738393a3b3c3d3e3f\
             aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000012d209404142434445464748494a4b4c4d4e4f"
        );
    }

    #[test]
    fn aead_aad_known_answer() {
        assert_eq!(
            hex::encode(aead_aad(&vector_header(Suite::Modern), &Uid([0xbb; 16]))),
            "7065657273637269702f76312f6161640000010205303132333435363738393a3b3c3d3e3f\
             aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        );
    }

    /// On the wire the suite and label are their codes, as in `HeaderBytes`.
    #[test]
    fn postcard_header_carries_the_codes() {
        for suite in Suite::ALL {
            let h = vector_header(suite);
            let bytes = postcard::to_allocvec(&h).unwrap();
            // version 1 is one varint byte, then suite and label codes.
            assert_eq!(&bytes[..3], &[1, suite.code(), 5]);
            assert_eq!(bytes.len(), 1 + 1 + 1 + 16 + 16);
            assert_eq!(postcard::from_bytes::<Header>(&bytes).unwrap(), h);
        }
        let mut bad = postcard::to_allocvec(&vector_header(Suite::Modern)).unwrap();
        bad[1] = 3;
        assert!(postcard::from_bytes::<Header>(&bad).is_err());
    }

    #[test]
    fn version_must_be_one() {
        let mut h = vector_header(Suite::Modern);
        assert_eq!(h.check_version(), Ok(()));
        h.version = 2;
        assert_eq!(
            h.check_version(),
            Err(WireError::UnsupportedVersion { version: 2 })
        );
    }

    #[test]
    fn next_keeps_version_suite_and_tx() {
        let h = vector_header(Suite::Paper);
        let n = h.next(Label::BrokerScripResponse, Uid([1; 16]));
        assert_eq!(
            n,
            Header {
                version: 1,
                suite: Suite::Paper,
                label: Label::BrokerScripResponse,
                tx: h.tx,
                sender: Uid([1; 16]),
            }
        );
    }
}
