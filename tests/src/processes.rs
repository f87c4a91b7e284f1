//! The workspace's binaries run as processes, as an operator and a customer run them
//! (`tests/tests/daemons.rs`, `tests/tests/journey.rs`): a long-running [`Daemon`] whose
//! standard error is collected line by line, and one-shot commands whose `--json` output
//! is parsed ([`Run`]).
//!
//! Waiting: a daemon is ready when its log says so ("… serving"); each wait is bounded by
//! [`PATIENCE`], and a wait that runs out fails the test with the daemon's log. Nothing
//! asserts on a duration.
//!
//! Every function here panics with the process's output when a process does not behave:
//! this is a test kit, and the panic is the test's failure message.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bound on any wait for a process (start, log line, exit).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The command for `binary` with an environment of only `PATH`: no `PEERSCRIP_*` or
/// `RUST_LOG` of the caller's shell reaches the process under test.
#[must_use]
pub fn clean_command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

/// `command` run under the file mode mask `umask` (e.g. `"022"`, what a shell gives by
/// default), through `/bin/sh`, which sets it and then `exec`s the command in its own
/// process: the umask is per process, so the test's own is untouched, and the process id
/// (signals, exit code) stays the command's. Its environment and working directory are
/// kept.
///
/// # Panics
/// Never; the shell reports a failed `exec` as the command's failure.
#[must_use]
pub fn under_umask(command: &Command, umask: &str) -> Command {
    let mut wrapped = Command::new("/bin/sh");
    wrapped.env_clear();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            wrapped.env(key, value);
        }
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .arg(command.get_program())
        .args(command.get_args());
    wrapped
}

/// A running daemon process, its standard error collected line by line.
pub struct Daemon {
    name: &'static str,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `command` (stdin and stdout closed, stderr collected).
    ///
    /// # Panics
    /// When the process cannot be started.
    #[must_use]
    pub fn spawn(name: &'static str, mut command: Command) -> Daemon {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn the daemon");
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("log lock").push(line);
            }
        });
        Daemon { name, child, lines }
    }

    /// Everything the daemon logged so far.
    ///
    /// # Panics
    /// When the reader thread panicked.
    #[must_use]
    pub fn log(&self) -> String {
        self.lines.lock().expect("log lock").join("\n")
    }

    /// How many log lines contain `needle`.
    ///
    /// # Panics
    /// When the reader thread panicked.
    #[must_use]
    pub fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .expect("log lock")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until `times` log lines contain `needle`.
    ///
    /// # Panics
    /// With the log, if the daemon exits or [`PATIENCE`] runs out first.
    pub fn wait_for(&mut self, needle: &str, times: usize) {
        let start = Instant::now();
        while self.count(needle) < times {
            if let Some(status) = self.child.try_wait().expect("poll the daemon") {
                // Let the reader thread drain what is left.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "{} exited ({status}) before logging {needle:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{} did not log {needle:?} {times} time(s):\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `command` as [`Daemon::spawn`] and waits until its log says `ready` (its
    /// "… serving" line).
    ///
    /// # Panics
    /// As [`Daemon::spawn`] and [`Daemon::wait_for`].
    #[must_use]
    pub fn start(name: &'static str, command: Command, ready: &str) -> Daemon {
        let mut daemon = Daemon::spawn(name, command);
        daemon.wait_for(ready, 1);
        daemon
    }

    /// Whether the process is still running.
    ///
    /// # Panics
    /// When the process cannot be polled.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll the daemon").is_none()
    }

    /// Waits for the process to exit (bounded by [`PATIENCE`]).
    ///
    /// # Panics
    /// With the log, when it does not exit in time.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the daemon") {
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{} did not exit:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status.
    ///
    /// # Panics
    /// When the signal cannot be sent or the process does not exit in time.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        self.wait_exit()
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the process.
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILL: no shutdown at all.
    ///
    /// # Panics
    /// When the process cannot be killed.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the daemon");
        self.child.wait().expect("reap the daemon");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What one run of a command gave.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Run {
    /// Runs `command` to its end, stdin closed.
    ///
    /// # Panics
    /// When the process cannot be started or prints other than UTF-8.
    #[must_use]
    pub fn of(mut command: Command) -> Run {
        let out = command
            .stdin(Stdio::null())
            .output()
            .expect("run the command");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("UTF-8 on stdout"),
            stderr: String::from_utf8(out.stderr).expect("UTF-8 on stderr"),
        }
    }

    /// Runs `command` to its end like [`Run::of`], but kills it once `limit` has passed:
    /// a command that hangs then fails the test (exit code -1, said on its stderr) rather
    /// than the test hanging with it.
    ///
    /// # Panics
    /// When the process cannot be started or prints other than UTF-8.
    #[must_use]
    pub fn within(mut command: Command, limit: Duration) -> Run {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the command");
        let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8(bytes).expect("UTF-8 output")
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout is piped")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr is piped")));
        let start = Instant::now();
        let mut killed = false;
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll the command") {
                break status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                killed = true;
                break child.wait().expect("reap the command");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = stderr.join().expect("stderr reader");
        if killed {
            stderr.push_str(&format!("\n[killed by the test after {limit:?}]"));
        }
        Run {
            code: if killed {
                -1
            } else {
                status.code().unwrap_or(-1)
            },
            stdout: stdout.join().expect("stdout reader"),
            stderr,
        }
    }

    /// The one JSON document on stdout.
    ///
    /// # Panics
    /// When stdout is not one JSON document.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    /// The JSON of a successful run: exit 0 and, when the document has an `ok` field, `ok`
    /// true.
    ///
    /// # Panics
    /// When the run failed.
    #[must_use]
    pub fn ok(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "{self:?}");
        let doc = self.json();
        if let Some(ok) = doc.get("ok") {
            assert_eq!(ok, true, "{self:?}");
        }
        doc
    }
}

/// An amount of the binaries' JSON (`{"minor": …, "value": "…"}`), in minor units, its
/// two renderings checked against each other.
///
/// # Panics
/// When `v` is no such amount, or its renderings differ.
#[must_use]
pub fn minor(v: &serde_json::Value) -> u64 {
    let m = v["minor"]
        .as_u64()
        .unwrap_or_else(|| panic!("no amount: {v}"));
    assert_eq!(
        v["value"].as_str(),
        Some(shared::Amount::from_minor(m).to_string().as_str()),
        "{v}"
    );
    m
}

/// `doc` without the relative forms of its times (`"relative": "expires in 3h 12m"`,
/// every `--json` document's expiries and deadlines), which depend on when the command
/// ran: two documents of the same state compare equal this way.
#[must_use]
pub fn timeless(doc: &serde_json::Value) -> serde_json::Value {
    match doc {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(key, _)| key.as_str() != "relative")
            .map(|(key, value)| (key.clone(), timeless(value)))
            .collect(),
        serde_json::Value::Array(items) => items.iter().map(timeless).collect(),
        other => other.clone(),
    }
}

/// The `kind` of each entry of `entries`, a JSON array of a wallet's history.
///
/// # Panics
/// When `entries` is no array of entries with a kind.
#[must_use]
pub fn kinds(entries: &serde_json::Value) -> Vec<&str> {
    entries
        .as_array()
        .unwrap_or_else(|| panic!("not a list of entries: {entries}"))
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_else(|| panic!("no kind: {e}")))
        .collect()
}
