//! What every daemon does at start before it opens its log: its data directory made private
//! (`crate::private_dir`, protocol.md appendix E), and a warning when it serves the paper
//! suite on a network (protocol.md section 2; README "Running on a network you do not
//! trust").

use std::path::Path;

use crate::private_dir::{self, PrivateDirError};
use crate::suite::Suite;

/// Makes the node's data directory private: created mode 0700 on the first start; when an
/// existing one (or anything in it) is readable by others, tightened to its owner only,
/// with one warning per file or directory tightened, so that the operator learns the
/// ledger was exposed until now.
///
/// # Errors
/// [`PrivateDirError`]: the path is a file or a shared directory (sticky bit), or its mode
/// cannot be changed (another user's directory).
pub fn prepare_data_dir(dir: &Path) -> Result<(), PrivateDirError> {
    for tightened in private_dir::prepare(dir)? {
        tracing::warn!(
            path = %tightened.path.display(),
            was = %format_args!("{:04o}", tightened.was),
            now = %format_args!("{:04o}", tightened.now),
            "the data directory was readable by other users of this machine; tightened to \
             its owner only (a node's log holds its ledger)"
        );
    }
    Ok(())
}

/// Warns, in one log line, when `suite` has a warning for an open network
/// ([`Suite::open_network_warning`]): the paper suite.
pub fn warn_of_suite(suite: Suite) {
    if let Some(warning) = suite.open_network_warning() {
        tracing::warn!(%suite, "{warning}");
    }
}
