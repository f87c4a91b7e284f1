//! Every NATS subject peerscrip uses, built in one place (architecture.md "Transport",
//! protocol.md section 3: requests go to a node's subject, deliveries to a peer's subject,
//! replies to the requester's inbox).
//!
//! Nobody formats a subject by hand elsewhere: the [`Bus`](super::Bus) methods take a
//! [`Subject`], and the only public ways to get one are the builders here. So a typo in a
//! subject is a compile error, and the deployment's permission config (which names exactly
//! these subjects) stays in step with the code.
//!
//! Layout, with the default prefix `peerscrip`:
//!
//! | subject                     | who subscribes              | what arrives             |
//! |-----------------------------|-----------------------------|--------------------------|
//! | `peerscrip.broker`          | the serving broker          | requests (§3, §6)        |
//! | `peerscrip.merchant.<uid>`  | merchant `<uid>`            | requests (§3, §6)        |
//! | `peerscrip.peer.<uid>`      | peer `<uid>`                | deliveries (§3, §6)      |
//! | `_INBOX.<uid>.<token>`      | peer `<uid>` (its requests) | replies (§3)             |
//!
//! Inboxes are not under the prefix: NATS clients put reply inboxes under `_INBOX` and the
//! permission config grants each peer `_INBOX.<own uid>.>` only.

use std::fmt;

use crate::ids::Uid;

/// The prefix every peerscrip subject starts with unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "peerscrip";

/// The first token of every reply inbox (the NATS convention).
const INBOX_ROOT: &str = "_INBOX";

/// A subject prefix that breaks the NATS subject rules.
///
/// The prefix is configuration, not a secret, so it is echoed in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// The prefix is empty (architecture.md "Transport": subjects are `<prefix>.<role>…`).
    #[error("subject prefix is empty")]
    Empty,
    /// A dot-separated token of the prefix is empty (leading, trailing or doubled dot): NATS
    /// refuses such subjects.
    #[error("subject prefix {prefix:?} has an empty token")]
    EmptyToken {
        /// The refused prefix.
        prefix: String,
    },
    /// The prefix contains a NATS wildcard (`*` or `>`): a node's subject must name exactly
    /// one destination, or a request could reach (and a subscription hear) other nodes.
    #[error("subject prefix {prefix:?} contains a wildcard ('*' or '>')")]
    Wildcard {
        /// The refused prefix.
        prefix: String,
    },
    /// The prefix contains whitespace, a control character or a non-ASCII character; NATS
    /// subjects are whitespace-delimited on the wire, and we keep them plain ASCII.
    #[error("subject prefix {prefix:?} contains the forbidden character {ch:?}")]
    BadChar {
        /// The refused prefix.
        prefix: String,
        /// The first forbidden character.
        ch: char,
    },
}

/// One complete NATS subject, valid by construction.
///
/// Built only by [`Subjects`] and [`InboxPrefix`], or (inside the bus) taken from a message
/// the NATS server delivered.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Subject(String);

impl Subject {
    /// The subject as NATS sees it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A subject received from the transport (a delivered message's subject or reply
    /// subject). The server only routes valid subjects, so no check is repeated here.
    pub(crate) fn from_transport(subject: String) -> Self {
        Subject(subject)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subject({})", self.0)
    }
}

/// The inbox prefix of one peer, `_INBOX.<uid>`: every reply to that peer's requests is
/// addressed below it, so the server can grant the peer `_INBOX.<uid>.>` and nothing else
/// (architecture.md "Transport").
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct InboxPrefix(String);

impl InboxPrefix {
    /// The inbox prefix of the peer `uid`.
    #[must_use]
    pub fn for_uid(uid: &Uid) -> Self {
        InboxPrefix(format!("{INBOX_ROOT}.{uid}"))
    }

    /// The prefix as a string, e.g. for `async_nats::ConnectOptions::custom_inbox_prefix`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The inbox `<prefix>.<token>`, one per outstanding request.
    #[must_use]
    pub fn inbox(&self, token: u64) -> Subject {
        Subject(format!("{}.{token}", self.0))
    }
}

impl fmt::Display for InboxPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InboxPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InboxPrefix({})", self.0)
    }
}

/// Builds every peerscrip subject under one validated prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Default for Subjects {
    /// The subjects under [`DEFAULT_PREFIX`].
    fn default() -> Self {
        Subjects {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl Subjects {
    /// Subjects under `prefix`, which may have several dot-separated tokens
    /// (`acme.peerscrip`). Each token must be non-empty printable ASCII with no wildcard.
    ///
    /// # Errors
    /// [`SubjectError`] naming the first rule the prefix breaks.
    pub fn new(prefix: impl Into<String>) -> Result<Self, SubjectError> {
        let prefix = prefix.into();
        validate_prefix(&prefix)?;
        Ok(Subjects { prefix })
    }

    /// The configured prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>.broker`: requests to the one serving broker (protocol.md section 1, 3).
    #[must_use]
    pub fn broker(&self) -> Subject {
        Subject(format!("{}.broker", self.prefix))
    }

    /// `<prefix>.merchant.<uid>`: requests to merchant `uid` (protocol.md section 3).
    #[must_use]
    pub fn merchant(&self, uid: &Uid) -> Subject {
        Subject(format!("{}.merchant.{uid}", self.prefix))
    }

    /// `<prefix>.peer.<uid>`: one-way deliveries to peer `uid` — change scrip and the results
    /// of three-party transactions (protocol.md section 3, 6).
    #[must_use]
    pub fn peer(&self, uid: &Uid) -> Subject {
        Subject(format!("{}.peer.{uid}", self.prefix))
    }

    /// `_INBOX.<uid>`: where replies to peer `uid`'s requests go (see [`InboxPrefix`]). Not
    /// under the prefix: it is the NATS inbox convention the permission config relies on.
    #[must_use]
    pub fn inbox_prefix(&self, uid: &Uid) -> InboxPrefix {
        InboxPrefix::for_uid(uid)
    }
}

/// Checks the NATS token rules on a prefix (see [`SubjectError`] for each rule's reason).
fn validate_prefix(prefix: &str) -> Result<(), SubjectError> {
    if prefix.is_empty() {
        return Err(SubjectError::Empty);
    }
    if let Some(ch) = prefix
        .chars()
        .find(|c| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(SubjectError::BadChar {
            prefix: prefix.to_owned(),
            ch,
        });
    }
    if prefix.contains(['*', '>']) {
        return Err(SubjectError::Wildcard {
            prefix: prefix.to_owned(),
        });
    }
    if prefix.split('.').any(str::is_empty) {
        return Err(SubjectError::EmptyToken {
            prefix: prefix.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn uid() -> Uid {
        Uid([0xab; 16])
    }

    #[test]
    fn default_subjects() {
        let s = Subjects::default();
        let hex = "abababababababababababababababab";
        assert_eq!(s.prefix(), "peerscrip");
        assert_eq!(s.broker().as_str(), "peerscrip.broker");
        assert_eq!(
            s.merchant(&uid()).as_str(),
            format!("peerscrip.merchant.{hex}")
        );
        assert_eq!(s.peer(&uid()).as_str(), format!("peerscrip.peer.{hex}"));
        assert_eq!(s.inbox_prefix(&uid()).as_str(), format!("_INBOX.{hex}"));
        assert_eq!(
            s.inbox_prefix(&uid()).inbox(7).as_str(),
            format!("_INBOX.{hex}.7")
        );
    }

    #[test]
    fn custom_multi_token_prefix() {
        let s = Subjects::new("acme.pay-2").unwrap();
        assert_eq!(s.broker().as_str(), "acme.pay-2.broker");
        // The inbox is never under the prefix.
        assert!(s.inbox_prefix(&uid()).as_str().starts_with("_INBOX."));
    }

    #[test]
    fn refused_prefixes() {
        assert_eq!(Subjects::new(""), Err(SubjectError::Empty));
        for p in [".a", "a.", "a..b", "."] {
            assert_eq!(
                Subjects::new(p),
                Err(SubjectError::EmptyToken { prefix: p.into() }),
                "{p}"
            );
        }
        for p in ["a.*", "a.>", "*", "x>y"] {
            assert_eq!(
                Subjects::new(p),
                Err(SubjectError::Wildcard { prefix: p.into() }),
                "{p}"
            );
        }
        for (p, ch) in [
            ("a b", ' '),
            ("a\tb", '\t'),
            ("a\nb", '\n'),
            ("é", 'é'),
            ("a\0", '\0'),
        ] {
            assert_eq!(
                Subjects::new(p),
                Err(SubjectError::BadChar {
                    prefix: p.into(),
                    ch
                }),
                "{p:?}"
            );
        }
    }

    #[test]
    fn display_and_debug() {
        let s = Subjects::default().broker();
        assert_eq!(s.to_string(), "peerscrip.broker");
        assert_eq!(format!("{s:?}"), "Subject(peerscrip.broker)");
        let i = InboxPrefix::for_uid(&uid());
        assert_eq!(i.to_string(), format!("_INBOX.{}", uid()));
    }

    proptest! {
        /// A prefix is accepted exactly when it is dot-joined non-empty tokens of printable
        /// ASCII without wildcards; every subject built from it has only valid tokens.
        #[test]
        fn accepted_prefixes_build_valid_subjects(prefix in "[ -~]{0,12}", raw in any::<[u8; 16]>()) {
            let valid = !prefix.is_empty()
                && !prefix.contains([' ', '*', '>'])
                && prefix.split('.').all(|t| !t.is_empty());
            match Subjects::new(prefix.clone()) {
                Ok(s) => {
                    prop_assert!(valid);
                    let uid = Uid(raw);
                    for subject in [s.broker(), s.merchant(&uid), s.peer(&uid)] {
                        let text = subject.as_str();
                        let expected_start = format!("{prefix}.");
                        prop_assert!(text.starts_with(&expected_start));
                        prop_assert!(text.split('.').all(|t| !t.is_empty()
                            && !t.contains([' ', '*', '>'])));
                    }
                }
                Err(_) => prop_assert!(!valid),
            }
        }
    }
}
