//! systemd's readiness protocol (`Type=notify`, `ops/deploy/systemd`): a daemon says
//! `READY=1` once it serves its subject (so a unit ordered after it starts only then) and
//! `STOPPING=1` when a stop begins. Outside systemd (`NOTIFY_SOCKET` unset) nothing is
//! sent; a failed notification is logged, never fatal: the daemon serves either way.

use sd_notify::NotifyState;

/// Tells systemd the daemon is ready, with `status` as its one-line state.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "could not notify systemd");
    }
}
