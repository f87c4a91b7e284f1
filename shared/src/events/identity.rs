//! [`LogIdentity`]: whose log a file is, recorded in its `meta` table at creation and
//! checked at every open (protocol.md section 2: a node never serves a log of another
//! deployment). Its own file so that the log, its meta table and its errors all name it
//! without depending on each other.

use std::fmt;

use crate::suite::Suite;

/// Whose log a file is: a file is opened only by the node kind and suite it was created for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogIdentity {
    /// The deployment's suite (protocol.md section 2).
    pub suite: Suite,
    /// The kind of node, e.g. `broker`, `merchant`, `wallet`.
    pub node_kind: String,
}

impl LogIdentity {
    /// The identity of a `node_kind` log in `suite`.
    #[must_use]
    pub fn new(suite: Suite, node_kind: impl Into<String>) -> Self {
        LogIdentity {
            suite,
            node_kind: node_kind.into(),
        }
    }
}

impl fmt::Display for LogIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} log of suite {}", self.node_kind, self.suite)
    }
}
