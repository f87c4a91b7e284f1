//! The admin listener of a daemon run by a test (README "Operate it"): its address from
//! the daemon's log, and HTTP requests to it, each bounded, polls bounded by [`PATIENCE`].
//! Every function here panics when the daemon does not behave: the panic is the test's
//! failure message.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::processes::{Daemon, PATIENCE};

/// `GET url` with an optional bearer token: the status code and the body.
///
/// # Panics
/// When the request cannot be made.
pub fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.call().expect("the admin listener answers");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().expect("a text body");
    (status, body)
}

/// The admin address a daemon logged: `http://127.0.0.1:<port>`.
///
/// # Panics
/// When the daemon logged none.
pub fn admin_url(daemon: &Daemon) -> String {
    let log = daemon.log();
    let line = log
        .lines()
        .find(|l| l.contains("admin endpoints listening"))
        .unwrap_or_else(|| panic!("no admin line in:\n{log}"));
    let address = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("listen="))
        .expect("the address on the admin line");
    format!("http://{address}")
}

/// Polls `url`'s `/status` until `done` holds of it, within [`PATIENCE`].
///
/// # Panics
/// When it does not in time, or `/status` fails.
pub fn status_until(url: &str, token: Option<&str>, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (code, body) = get(&format!("{url}/status"), token);
        assert_eq!(code, 200, "{body}");
        let doc: Value = serde_json::from_str(&body).expect("/status is JSON");
        if done(&doc) {
            return doc;
        }
        assert!(start.elapsed() < PATIENCE, "never reached: {doc}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `url`'s `/readyz` until its status code is `code`, within [`PATIENCE`]: the body.
///
/// # Panics
/// When it does not in time.
pub fn readyz_until(url: &str, code: u16) -> Value {
    let start = Instant::now();
    loop {
        let (got, body) = get(&format!("{url}/readyz"), None);
        if got == code {
            return serde_json::from_str(&body).expect("/readyz is JSON");
        }
        assert!(start.elapsed() < PATIENCE, "/readyz stayed {got}: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
