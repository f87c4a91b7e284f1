//! A real `nats-server` for tests (style.md: "Its integration tests start a real
//! `nats-server` on a free port per test and kill it on `Drop`. No mocks of the broker.").
//!
//! [`NatsServer::start`] runs the installed binary on a free port of 127.0.0.1 with
//! JetStream and a store directory of its own, and returns only once the server answers
//! the NATS protocol. Its stderr goes to `server.log` in its temporary directory; a failed
//! start reports the log's tail. Dropping the value kills the process and waits for it.
//!
//! If `nats-server` is not installed, `start` fails and says how to install it: tests that
//! need a server fail rather than silently skip.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to accept NATS connections.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many fresh ports `start` tries when another process takes the one it picked.
const PORT_ATTEMPTS: u32 = 5;

/// How often readiness is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How much of the log an error quotes.
const LOG_TAIL_BYTES: u64 = 4096;

/// Where the binary is looked for after `PATH` (sbin directories are often not on a
/// non-root `PATH`).
const FALLBACK_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"];

/// The binary's name.
const BINARY: &str = "nats-server";

/// Makes each server's name unique within this process (see [`NatsServer::server_name`]).
static NEXT_SERVER: AtomicU64 = AtomicU64::new(0);

/// Why a test server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No `nats-server` binary on `PATH` or in the usual sbin directories.
    #[error(
        "nats-server is not installed (looked on PATH and in /usr/sbin, /usr/local/sbin, \
         /usr/local/bin); install it with `apt-get install nats-server`"
    )]
    NotInstalled,
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server process exited before it accepted connections (bad config, port taken).
    #[error("nats-server exited during startup ({status}); log tail:\n{log_tail}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// The end of what it wrote during this start.
        log_tail: String,
    },
    /// The server kept running but did not answer the NATS protocol in time; it was killed.
    #[error(
        "nats-server did not accept NATS connections on port {port} within {waited:?}; \
         log tail:\n{log_tail}"
    )]
    NotReady {
        /// The port it was told to listen on.
        port: u16,
        /// How long the harness waited.
        waited: Duration,
        /// The end of what it wrote during this start.
        log_tail: String,
    },
    /// Every port tried was taken by another process before the server could bind it.
    #[error("no free port after {attempts} attempts; last log tail:\n{log_tail}")]
    NoFreePort {
        /// How many ports were tried.
        attempts: u32,
        /// The end of the last attempt's log.
        log_tail: String,
    },
}

/// `map_err` helper naming what failed.
fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> HarnessError {
    move |source| HarnessError::Io { what, source }
}

/// A running `nats-server`, killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    name: String,
    binary: PathBuf,
    config: Option<PathBuf>,
    dir: TempDir,
}

impl NatsServer {
    /// Starts a server with the default configuration (plus JetStream).
    ///
    /// # Errors
    /// See [`HarnessError`].
    pub fn start() -> Result<NatsServer, HarnessError> {
        Self::launch(None)
    }

    /// Starts a server with `config_text` as its configuration file (e.g. accounts and
    /// permissions). The harness still sets the address, port, JetStream and store directory
    /// on the command line, which override the file.
    ///
    /// # Errors
    /// See [`HarnessError`]; a config the server refuses gives [`HarnessError::Exited`]
    /// with the server's complaint in the log tail.
    pub fn start_with_config(config_text: &str) -> Result<NatsServer, HarnessError> {
        Self::launch(Some(config_text))
    }

    /// `nats://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory, inside this server's temporary directory.
    #[must_use]
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The file the server's stdout and stderr go to (appended across restarts).
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The name the server announces in its INFO line. The readiness check compares it,
    /// so a different server that grabbed the same port is never mistaken for this one.
    #[must_use]
    pub fn server_name(&self) -> &str {
        &self.name
    }

    /// Kills the server and starts it again on the same port with the same store directory
    /// and configuration (for reconnect and recovery tests).
    ///
    /// # Errors
    /// As [`NatsServer::start`]; [`HarnessError::Exited`] if another process took the port
    /// in between.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.start_again()
    }

    /// Kills the server and leaves it down (its port and store kept for
    /// [`NatsServer::start_again`]): what the nodes see while NATS is away.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts a [`NatsServer::stop`]ped server again on its port, store and configuration.
    ///
    /// # Errors
    /// As [`NatsServer::restart`].
    pub fn start_again(&mut self) -> Result<(), HarnessError> {
        self.spawn_and_wait()
    }

    /// [`NatsServer::start_with_config`] with another `nats-server` binary (the cluster's,
    /// [`crate::nats_cluster`]).
    ///
    /// # Errors
    /// As [`NatsServer::start`].
    pub fn start_binary_with_config(
        binary: &Path,
        config_text: &str,
    ) -> Result<NatsServer, HarnessError> {
        NatsServer::launch_binary(binary.to_owned(), Some(config_text))
    }

    fn launch(config_text: Option<&str>) -> Result<NatsServer, HarnessError> {
        NatsServer::launch_binary(locate(search_dirs())?, config_text)
    }

    fn launch_binary(
        binary: PathBuf,
        config_text: Option<&str>,
    ) -> Result<NatsServer, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("peerscrip-nats-")
            .tempdir()
            .map_err(io("creating the server's temporary directory"))?;
        fs::create_dir(dir.path().join("store")).map_err(io("creating the store directory"))?;
        let config = match config_text {
            Some(text) => {
                let path = dir.path().join("nats.conf");
                fs::write(&path, text).map_err(io("writing the server config"))?;
                Some(path)
            }
            None => None,
        };
        let name = format!(
            "peerscrip-test-{}-{}",
            std::process::id(),
            NEXT_SERVER.fetch_add(1, Ordering::Relaxed)
        );
        let mut server = NatsServer {
            child: None,
            port: 0,
            name,
            binary,
            config,
            dir,
        };
        let mut last_tail = String::new();
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                // Another process bound the port between our probe and the server's bind.
                Err(HarnessError::Exited { log_tail, .. })
                    if log_tail.contains("address already in use") =>
                {
                    last_tail = log_tail;
                }
                Err(e) => return Err(e),
            }
        }
        Err(HarnessError::NoFreePort {
            attempts: PORT_ATTEMPTS,
            log_tail: last_tail,
        })
    }

    /// Spawns the process on `self.port` and waits until it answers the NATS protocol.
    fn spawn_and_wait(&mut self) -> Result<(), HarnessError> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("opening the server log"))?;
        let log_start = log
            .metadata()
            .map_err(io("reading the server log's length"))?
            .len();
        let stdout = log.try_clone().map_err(io("sharing the server log"))?;
        let mut command = Command::new(&self.binary);
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["--server_name", &self.name, "-js", "-sd"])
            .arg(self.store_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(log));
        let child = command.spawn().map_err(io("spawning nats-server"))?;
        self.child = Some(child);

        let started = Instant::now();
        loop {
            if let Some(status) = self.try_wait()? {
                self.child = None;
                return Err(HarnessError::Exited {
                    status,
                    log_tail: log_tail(&log_path, log_start),
                });
            }
            if answers_nats(self.port, &self.name) {
                return Ok(());
            }
            if started.elapsed() >= STARTUP_TIMEOUT {
                self.kill();
                return Err(HarnessError::NotReady {
                    port: self.port,
                    waited: STARTUP_TIMEOUT,
                    log_tail: log_tail(&log_path, log_start),
                });
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>, HarnessError> {
        match &mut self.child {
            Some(child) => child.try_wait().map_err(io("polling nats-server")),
            None => Ok(None),
        }
    }

    /// Kills the process (if running) and reaps it, so its port is released.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Both fail only if the process is already gone, which is the goal.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `PATH`, then the fallback directories.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(FALLBACK_DIRS.iter().map(PathBuf::from));
    dirs
}

/// The first executable `nats-server` in `dirs`.
pub(crate) fn locate(dirs: impl IntoIterator<Item = PathBuf>) -> Result<PathBuf, HarnessError> {
    use std::os::unix::fs::PermissionsExt;
    dirs.into_iter()
        .map(|d| d.join(BINARY))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .ok_or(HarnessError::NotInstalled)
}

/// A port that was free a moment ago (the OS picks it for a bind to port 0).
///
/// # Errors
/// [`HarnessError::Io`] when no port can be bound.
pub fn free_port() -> Result<u16, HarnessError> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("reading the free port"))?
        .port())
}

/// `true` if the server named `name` answers on `port`: it sends its INFO line, and
/// answers CONNECT + PING with PONG (or with `-ERR` when its config demands credentials,
/// which still proves it is serving clients).
fn answers_nats(port: u16, name: &str) -> bool {
    let probe = || -> std::io::Result<bool> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if !line.starts_with("INFO ") || !line.contains(&format!("\"server_name\":\"{name}\"")) {
            return Ok(false);
        }
        // A server that requires TLS now waits for a TLS handshake, not for CONNECT: its
        // INFO, naming it, is its answer (the harness speaks no TLS).
        if line.contains("\"tls_required\":true") {
            return Ok(true);
        }
        writer.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n")?;
        line.clear();
        reader.read_line(&mut line)?;
        Ok(line.starts_with("PONG") || line.starts_with("-ERR"))
    };
    probe().unwrap_or(false)
}

/// The last [`LOG_TAIL_BYTES`] of the log written since `start`.
fn log_tail(path: &Path, start: u64) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let end = file.metadata()?.len();
        file.seek(SeekFrom::Start(
            start.max(end.saturating_sub(LOG_TAIL_BYTES)),
        ))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|e| format!("(could not read {}: {e})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_says_how_to_install() {
        let empty = tempfile::tempdir().unwrap();
        let err = locate([empty.path().to_path_buf()]).unwrap_err();
        assert!(matches!(err, HarnessError::NotInstalled));
        assert!(err.to_string().contains("apt-get install nats-server"));
    }

    #[test]
    fn non_executable_file_is_not_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(BINARY), b"#!/bin/sh\n").unwrap();
        assert!(matches!(
            locate([dir.path().to_path_buf()]),
            Err(HarnessError::NotInstalled)
        ));
    }

    #[test]
    fn log_tail_reads_only_since_start_and_at_most_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "old run\nnew run\n").unwrap();
        assert_eq!(log_tail(&path, 8), "new run\n");
        let long = "x".repeat(10_000);
        fs::write(&path, &long).unwrap();
        assert_eq!(log_tail(&path, 0).len(), LOG_TAIL_BYTES as usize);
    }
}
