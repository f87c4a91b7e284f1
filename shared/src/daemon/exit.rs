//! How a daemon that cannot start says why (a start-up refusal has a clear message and a
//! non-zero exit): one line, the error and each of its causes that the message does
//! not already contain.

use std::error::Error;

/// `error` and its causes as one line, `a: b: c`, without repeating a cause whose text a
/// message before it already includes.
#[must_use]
pub fn describe(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read f: {0}")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("invalid configuration")]
    struct Top(#[source] Outer);

    #[test]
    fn each_cause_appears_once() {
        let e = Top(Outer(std::io::Error::other("gone")));
        assert_eq!(describe(&e), "invalid configuration: cannot read f: gone");
    }
}
