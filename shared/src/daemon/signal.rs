//! The daemons' shutdown signal (graceful shutdown on SIGINT and SIGTERM). The
//! daemon stops taking requests when it arrives, finishes what is in flight, commits and
//! exits 0 (see `broker::shell::Running::shutdown`).

use std::fmt;

use tokio::signal::unix::{SignalKind, signal};

/// Which signal asked the daemon to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGINT (Ctrl-C in a terminal).
    Interrupt,
    /// SIGTERM (systemd, `kill`).
    Terminate,
}

impl fmt::Display for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shutdown::Interrupt => "SIGINT",
            Shutdown::Terminate => "SIGTERM",
        })
    }
}

/// Installs the SIGINT and SIGTERM handlers now (so a signal sent right after this returns
/// is not lost) and returns a future that completes with the first of them.
///
/// # Errors
/// When a handler cannot be installed (no signal driver in this runtime).
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = Shutdown>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => Shutdown::Interrupt,
            _ = terminate.recv() => Shutdown::Terminate,
        }
    })
}
