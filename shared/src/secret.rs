//! `SecretBytes`: the one container for every secret byte string (PANSecret, account ID,
//! root keys, master secrets, CustomerSecrets, session keys).
//!
//! Why a type of its own: a secret must never reach a log, an event, an error message or
//! the terminal, must be compared in constant time, and must be wiped from memory when it
//! is dropped (protocol.md sections 1 and 8, the project's standards). So it has no
//! `Display`, a `Debug` that prints only its length, no `Serialize`, an `Eq` built on
//! `subtle::ConstantTimeEq`, and zeroizes on drop. Reading the bytes is explicit:
//! [`SecretBytes::expose`].

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Secret bytes: zeroized on drop, compared in constant time, never printed.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are wiped when the secret is dropped.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new secret (the caller wipes its own copy).
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// `n` bytes from the operating system's CSPRNG.
    #[must_use]
    pub fn random(n: usize) -> Self {
        use rand::Rng;
        let mut bytes = Zeroizing::new(vec![0u8; n]);
        rand::rng().fill_bytes(&mut bytes);
        SecretBytes(bytes)
    }

    /// The secret bytes. Every call site is a place where a secret is used; keep them few.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (not secret).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with plain bytes (e.g. a presented CustomerSecret).
    /// Lengths are not secret: a length mismatch returns early.
    #[must_use]
    pub fn ct_eq_bytes(&self, other: &[u8]) -> bool {
        self.0.as_slice().ct_eq(other).into()
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq_bytes(other.expose())
    }
}

impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = SecretBytes::new(b"correct horse battery staple".to_vec());
        let shown = format!("{s:?}");
        assert_eq!(shown, "SecretBytes(<28 bytes redacted>)");
        assert!(!shown.contains("horse"));
    }

    #[test]
    fn equality_is_by_content() {
        let a = SecretBytes::from_slice(b"abc");
        assert_eq!(a, SecretBytes::from_slice(b"abc"));
        assert_ne!(a, SecretBytes::from_slice(b"abd"));
        assert_ne!(a, SecretBytes::from_slice(b"ab"));
        assert!(a.ct_eq_bytes(b"abc"));
        assert!(!a.ct_eq_bytes(b""));
    }

    #[test]
    fn random_secrets_differ() {
        let a = SecretBytes::random(32);
        assert_eq!(a.len(), 32);
        assert_ne!(a, SecretBytes::random(32));
    }
}
