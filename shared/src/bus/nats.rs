//! [`NatsBus`]: the bus over a NATS server (async-nats), for nodes in separate processes
//! (architecture.md "Transport"). It keeps [`MemoryBus`](super::MemoryBus)'s contract: the
//! frame limit on both sides, and the same [`BusError`] for no responders and timeouts.
//!
//! Requests use a fresh inbox subscription each (under the configured inbox prefix) rather
//! than async-nats's shared reply mux, so that an oversized reply can be dropped like any
//! other oversized message and the request still waits for a good one until its timeout —
//! exactly as in memory.

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::client::{FlushErrorKind, PublishError, PublishErrorKind};
use async_nats::{Client, ConnectOptions, StatusCode, Subscriber};
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::subject::{InboxPrefix, Subject};
use super::{Bus, BusError, Incoming, MAX_FRAME_BYTES, admit_incoming, check_outgoing};
use crate::secret::SecretBytes;

/// How long [`Bus::flush`] (and so [`Bus::subscribe`]) waits for the server's echo before
/// failing with [`BusError::Timeout`] (e.g. while the client is reconnecting).
pub const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(10);

/// How a [`NatsBus`] connects.
#[derive(Clone, Debug, Default)]
pub struct NatsOptions {
    /// Where replies to this client's requests go: `_INBOX.<own uid>` for a peer, so the
    /// server's permissions can confine it to its own inbox (architecture.md "Transport").
    /// `None` keeps the NATS default `_INBOX`.
    pub inbox_prefix: Option<InboxPrefix>,
    /// The client name the server shows in its monitoring (e.g. `broker`).
    pub name: Option<String>,
    /// How long the initial connection may take; `None` keeps async-nats's default.
    pub connection_timeout: Option<Duration>,
    /// How the client authenticates (one credential per node, architecture.md
    /// "Transport"); `None` connects without credentials.
    pub credentials: Option<NatsCredentials>,
    /// TLS to the server, required when set; `None` takes TLS only if the server asks
    /// for it (or the URL says `tls://`), verified against the system's roots.
    pub tls: Option<NatsTls>,
}

/// TLS to the NATS server (README "Running on a network you do not trust"): frames are
/// sealed end to end, but without TLS the NATS passwords cross the network in the clear
/// and anyone on the path sees who talks to whom. With this set the client refuses a server
/// that does not speak TLS, and checks the server's certificate against `ca_file`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatsTls {
    /// The PEM file of the CA certificate(s) the server's certificate must chain to;
    /// `None` uses the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The client's own certificate, for a server that verifies its clients
    /// (`verify: true` in its `tls {}` block).
    pub client_cert: Option<ClientCert>,
}

/// A client certificate and its private key, both PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate (chain).
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1 PEM), readable by the node only.
    pub key: PathBuf,
}

impl NatsTls {
    /// The files this configuration names, each with the setting that names it.
    fn files(&self) -> Vec<(&'static str, &PathBuf)> {
        let mut files = Vec::new();
        if let Some(ca) = &self.ca_file {
            files.push(("CA file", ca));
        }
        if let Some(client) = &self.client_cert {
            files.push(("client certificate", &client.cert));
            files.push(("client key", &client.key));
        }
        files
    }

    /// `connect` set up to require TLS with these files, each checked readable first so
    /// that a typo names its file instead of surfacing as a handshake failure.
    fn apply(&self, mut connect: ConnectOptions) -> Result<ConnectOptions, BusError> {
        for (what, path) in self.files() {
            std::fs::File::open(path).map_err(|e| {
                BusError::Tls(format!("cannot read the {what} {}: {e}", path.display()))
            })?;
        }
        if let Some(ca) = &self.ca_file {
            connect = connect.add_root_certificates(ca.clone());
        }
        if let Some(client) = &self.client_cert {
            connect = connect.add_client_certificate(client.cert.clone(), client.key.clone());
        }
        Ok(connect.require_tls(true))
    }
}

/// The TLS failure `e` is, if it is one: async-nats's own `Tls` kind (its configuration:
/// `None` inside), or the handshake's failure, which it reports as an I/O error wrapping
/// rustls's error (a certificate that does not verify, an alert from the server).
fn tls_failure(e: &async_nats::ConnectError) -> Option<Option<&async_nats::rustls::Error>> {
    use std::error::Error as _;
    let handshake = e
        .source()
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::get_ref)
        .and_then(|inner| inner.downcast_ref::<async_nats::rustls::Error>());
    match handshake {
        Some(rustls) => Some(Some(rustls)),
        None => (e.kind() == async_nats::ConnectErrorKind::Tls).then_some(None),
    }
}

/// A connection failure in [`BusError`] terms: a TLS failure becomes [`BusError::Tls`]
/// with what to configure, since the TLS library's own text (e.g. "invalid peer
/// certificate: UnknownIssuer") does not say which setting would fix it.
fn connect_error(e: async_nats::ConnectError, tls: Option<&NatsTls>) -> BusError {
    let Some(failure) = tls_failure(&e) else {
        return BusError::Connect(e);
    };
    let hint = match (failure, tls.and_then(|t| t.ca_file.as_ref())) {
        // The server ended the handshake: it did not take our certificate, or wanted one.
        (Some(async_nats::rustls::Error::AlertReceived(_)), _) => {
            "the server refused the handshake: it may require a client certificate signed by \
             a CA it trusts (nats.client_cert and nats.client_key, --nats-client-cert and \
             --nats-client-key)"
                .to_owned()
        }
        // What came back was not TLS: a server without TLS answered in plain text.
        (Some(async_nats::rustls::Error::InvalidMessage(_)), _) => {
            "the server does not speak TLS: enable it there (its tls {} block, `peerscrip-ops \
             nats-config --tls-cert`) or remove the client's TLS settings"
                .to_owned()
        }
        (Some(_), Some(ca)) => format!(
            "check that the server's certificate is signed by the CA in {} and names the \
             URL's host",
            ca.display()
        ),
        (Some(_), None) => "the server's certificate must verify: configure the CA that \
                            signed it (nats.ca_file, --nats-ca-file)"
            .to_owned(),
        (None, _) => "check the TLS settings (nats.ca_file, nats.client_cert, \
                      nats.client_key)"
            .to_owned(),
    };
    BusError::Tls(format!("{e}; {hint}"))
}

/// A NATS credential. The password never reaches a log: `Debug` shows only the user.
#[derive(Clone)]
pub enum NatsCredentials {
    /// A user name and password from the server's `authorization` block.
    UserPassword {
        /// The user.
        user: String,
        /// The password (zeroized on drop, never printed).
        password: SecretBytes,
    },
    /// A `.creds` file (JWT and NKey seed), as `nsc` writes it.
    CredsFile(PathBuf),
}

impl fmt::Debug for NatsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatsCredentials::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .finish_non_exhaustive(),
            NatsCredentials::CredsFile(path) => f.debug_tuple("CredsFile").field(path).finish(),
        }
    }
}

/// A bus on one NATS connection. Clones share the connection.
#[derive(Clone)]
pub struct NatsBus {
    client: Client,
}

impl fmt::Debug for NatsBus {
    /// The connection state only: the server address may carry credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("state", &self.client.connection_state())
            .finish()
    }
}

impl NatsBus {
    /// Whether the connection is up now (`/readyz`; `false` while the client reconnects).
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Connects to the server(s) at `url` (e.g. `nats://127.0.0.1:4222`). Fails at once if
    /// no server answers; once connected, the client reconnects by itself.
    ///
    /// # Errors
    /// [`BusError::Connect`] when the first connection fails.
    pub async fn connect(url: &str, options: NatsOptions) -> Result<Self, BusError> {
        let client = NatsBus::client(url, &options).await?;
        let max_payload = client.server_info().max_payload;
        if max_payload < MAX_FRAME_BYTES {
            tracing::warn!(
                max_payload,
                frame_limit = MAX_FRAME_BYTES,
                "the NATS server's max_payload is below the protocol's frame limit; \
                 large frames will be refused"
            );
        }
        Ok(NatsBus { client })
    }

    /// A plain async-nats client connected as `options` say (inbox prefix, name, timeout,
    /// credential): what [`NatsBus::connect`] wraps, and what a daemon's event export
    /// (`crate::daemon::export`) publishes to JetStream on, a connection of its own so
    /// that the export never queues behind, or in front of, the node's replies.
    ///
    /// # Errors
    /// [`BusError::Connect`] when the first connection fails, [`BusError::Credentials`]
    /// when the credential cannot be used, [`BusError::Tls`] when TLS fails.
    pub async fn client(url: &str, options: &NatsOptions) -> Result<Client, BusError> {
        let mut connect = ConnectOptions::new();
        if let Some(prefix) = &options.inbox_prefix {
            connect = connect.custom_inbox_prefix(prefix.as_str());
        }
        if let Some(name) = &options.name {
            connect = connect.name(name);
        }
        if let Some(timeout) = options.connection_timeout {
            connect = connect.connection_timeout(timeout);
        }
        match &options.credentials {
            None => {}
            Some(NatsCredentials::UserPassword { user, password }) => {
                let password = String::from_utf8(password.expose().to_vec())
                    .map_err(|_| BusError::Credentials("the password is not UTF-8".to_owned()))?;
                connect = connect.user_and_password(user.clone(), password);
            }
            Some(NatsCredentials::CredsFile(path)) => {
                connect = connect.credentials_file(path).await.map_err(|e| {
                    BusError::Credentials(format!("reading {}: {e}", path.display()))
                })?;
            }
        }
        if let Some(tls) = &options.tls {
            connect = tls.apply(connect)?;
        }
        let name = options.name.clone().unwrap_or_default();
        let retrying = name.clone();
        connect = connect
            .event_callback(move |event| log_event(name.clone(), event))
            .reconnect_delay_callback(move |attempts| reconnect_delay(&retrying, attempts));
        connect
            .connect(servers(url)?)
            .await
            .map_err(|e| connect_error(e, options.tls.as_ref()))
    }
}

/// The servers of `url`: one URL, or several separated by commas (the servers of a
/// cluster, docs/adr/0017): the client connects to any that answers and learns the others
/// from the cluster.
fn servers(url: &str) -> Result<Vec<async_nats::ServerAddr>, BusError> {
    url.split(',')
        .map(|one| {
            one.trim().parse::<async_nats::ServerAddr>().map_err(|e| {
                BusError::Connect(async_nats::ConnectError::with_source(
                    async_nats::ConnectErrorKind::ServerParse,
                    e,
                ))
            })
        })
        .collect()
}

/// The longest pause between two reconnection attempts (async-nats's own default).
pub const RECONNECT_MAX: Duration = Duration::from_secs(4);

/// The pause before reconnection attempt `attempts` (0 ms for the first, then doubling
/// from 2 ms up to [`RECONNECT_MAX`], as async-nats does by default), logged at `warn`
/// (README "Operate it": an operator sees every retry while NATS is away).
fn reconnect_delay(connection: &str, attempts: usize) -> Duration {
    let delay = match attempts {
        0 | 1 => Duration::ZERO,
        n => {
            let exp = u32::try_from(n - 1).unwrap_or(u32::MAX);
            Duration::from_millis(2_u64.saturating_pow(exp)).min(RECONNECT_MAX)
        }
    };
    tracing::warn!(
        connection,
        attempt = attempts,
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "reconnecting to NATS"
    );
    delay
}

/// Logs what happens to the connection named `name`: a lost connection and the server's
/// errors at `warn`, a (re)connection at `info`. The client's own errors are the failed
/// attempts [`reconnect_delay`] already reports, one per retry: `debug`.
async fn log_event(name: String, event: async_nats::Event) {
    use async_nats::Event;
    match event {
        Event::Connected => tracing::info!(connection = %name, "connected to NATS"),
        Event::Disconnected => {
            tracing::warn!(connection = %name, "lost the NATS connection; reconnecting");
        }
        Event::ClientError(e) => tracing::debug!(connection = %name, error = %e, "NATS client"),
        other => tracing::warn!(connection = %name, event = %other, "NATS"),
    }
}

/// A publish failure in [`BusError`] terms.
fn publish_error(e: PublishError, size: usize) -> BusError {
    match e.kind() {
        // The server's own max_payload is below ours: the frame is still too large to send.
        PublishErrorKind::MaxPayloadExceeded => BusError::TooLarge { size },
        PublishErrorKind::Send => BusError::Closed,
        PublishErrorKind::InvalidSubject => BusError::Transport(Box::new(e)),
    }
}

impl Bus for NatsBus {
    type Subscription = NatsSubscription;

    async fn request(
        &self,
        subject: &Subject,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        check_outgoing(&payload)?;
        let size = payload.len();
        let inbox = self.client.new_inbox();
        let mut replies = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| BusError::Transport(Box::new(e)))?;
        self.client
            .publish_with_reply(subject.as_str().to_owned(), inbox, payload)
            .await
            .map_err(|e| publish_error(e, size))?;
        let first_good_reply = async {
            while let Some(m) = replies.next().await {
                if m.status == Some(StatusCode::NO_RESPONDERS) {
                    return Err(BusError::NoResponders);
                }
                if admit_incoming(m.subject.as_str(), &m.payload) {
                    return Ok(m.payload);
                }
            }
            Err(BusError::Closed)
        };
        tokio::time::timeout(timeout, first_good_reply)
            .await
            .unwrap_or(Err(BusError::Timeout))
    }

    async fn publish(&self, subject: &Subject, payload: Bytes) -> Result<(), BusError> {
        check_outgoing(&payload)?;
        let size = payload.len();
        self.client
            .publish(subject.as_str().to_owned(), payload)
            .await
            .map_err(|e| publish_error(e, size))
    }

    async fn subscribe(&self, subject: &Subject) -> Result<NatsSubscription, BusError> {
        let subscriber = self
            .client
            .subscribe(subject.as_str().to_owned())
            .await
            .map_err(|e| BusError::Transport(Box::new(e)))?;
        // Wait until the server has processed the SUB, so that a message another connection
        // sends after `subscribe` returns is not missed (a customer subscribes to its peer
        // subject before starting a three-party transaction, architecture.md "Transport").
        self.round_trip().await?;
        Ok(NatsSubscription {
            subscriber,
            bus: self.clone(),
        })
    }

    async fn flush(&self) -> Result<(), BusError> {
        self.round_trip().await
    }
}

impl NatsBus {
    /// A round trip through the server: returns once the server has processed everything
    /// this connection sent before, subscriptions and unsubscriptions included.
    ///
    /// async-nats's own `flush` only empties the socket buffer, and it offers no PING, so the
    /// round trip is a message to a fresh inbox of our own that the server echoes back. That
    /// is why a node's credential must allow publishing to its own inbox prefix
    /// (`_INBOX.<uid>.>`; harmless, only the node subscribes there). Bounded by
    /// [`ROUND_TRIP_TIMEOUT`] so that a disconnected client fails instead of hanging.
    async fn round_trip(&self) -> Result<(), BusError> {
        // The whole round trip is bounded, not only the wait for the echo: while the
        // client is disconnected, async-nats's own flush waits for the reconnection, which
        // may never come (a daemon stopping after its server went away must still stop).
        tokio::time::timeout(ROUND_TRIP_TIMEOUT, self.echo())
            .await
            .unwrap_or(Err(BusError::Timeout))
    }

    /// Subscribes to a fresh inbox, publishes to it and waits for the message to come back.
    async fn echo(&self) -> Result<(), BusError> {
        let inbox = self.client.new_inbox();
        let mut echo = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| BusError::Transport(Box::new(e)))?;
        self.client
            .publish(inbox, Bytes::new())
            .await
            .map_err(|e| publish_error(e, 0))?;
        self.client.flush().await.map_err(|e| match e.kind() {
            FlushErrorKind::SendError => BusError::Closed,
            FlushErrorKind::FlushError => BusError::Transport(Box::new(e)),
        })?;
        echo.next().await.map(|_| ()).ok_or(BusError::Closed)
    }
}

/// The messages on one subject of a [`NatsBus`]. Dropping it unsubscribes (the server
/// learns of it in order with this client's later messages; [`Bus::flush`] waits for it).
pub struct NatsSubscription {
    subscriber: Subscriber,
    bus: NatsBus,
}

impl fmt::Debug for NatsSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSubscription").finish_non_exhaustive()
    }
}

impl Stream for NatsSubscription {
    type Item = Incoming<NatsBus>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.subscriber.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(m)) => {
                    if admit_incoming(m.subject.as_str(), &m.payload) {
                        let subject = Subject::from_transport(m.subject.to_string());
                        let reply = m.reply.map(|r| Subject::from_transport(r.to_string()));
                        let bus = self.bus.clone();
                        return Poll::Ready(Some(Incoming::new(subject, reply, m.payload, bus)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A TLS file that cannot be read is named, with its role, before any connection is
    /// tried (so the message is not a handshake failure): the server here does not exist.
    #[tokio::test]
    async fn an_unreadable_tls_file_is_named_before_connecting() {
        let missing = PathBuf::from("/nonexistent/peerscrip/ca.pem");
        let options = NatsOptions {
            tls: Some(NatsTls {
                ca_file: Some(missing.clone()),
                client_cert: None,
            }),
            ..NatsOptions::default()
        };
        let Err(e) = NatsBus::client("nats://127.0.0.1:1", &options).await else {
            panic!("connected without a server");
        };
        assert!(matches!(e, BusError::Tls(_)), "{e}");
        assert!(
            e.to_string()
                .starts_with("TLS to the NATS server failed: cannot read the CA file /nonexistent/peerscrip/ca.pem"),
            "{e}"
        );
    }
}
