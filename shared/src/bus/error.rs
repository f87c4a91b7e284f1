//! What can go wrong moving a frame (protocol.md section 3). Every variant is the same
//! whichever [`Bus`](super::Bus) implementation produced it, so node code handles one set.

/// A transport failure.
///
/// None of these carries a payload or a credential: the text is safe to log and to show.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// No reply arrived within the request's timeout. The requester may repeat the request
    /// with the same tx (protocol.md section 3, "On an `Error`, or no reply"; section 7).
    #[error("no reply within the timeout")]
    Timeout,
    /// Nobody subscribes to the request's subject, so no reply can come (NATS answers this at
    /// once instead of letting the request time out). A node that is down looks like this.
    #[error("no responders on the subject")]
    NoResponders,
    /// The outgoing payload is larger than [`MAX_FRAME_BYTES`](super::MAX_FRAME_BYTES)
    /// (protocol.md section 3, "Limits"); it was not sent.
    #[error(
        "frame of {size} bytes exceeds the {} byte limit",
        super::MAX_FRAME_BYTES
    )]
    TooLarge {
        /// The refused payload's length in bytes.
        size: usize,
    },
    /// [`Incoming::respond`](super::Incoming::respond) on a one-way delivery, which has no
    /// reply subject: only requests get replies (protocol.md section 3).
    #[error("the message is a delivery and has no reply subject")]
    NoReplySubject,
    /// The bus connection is closed (the NATS client's connection task has stopped); nothing
    /// further can be sent on this handle.
    #[error("the bus is closed")]
    Closed,
    /// Connecting to the NATS server failed (address, network or authentication). The URL is
    /// deliberately not in the message: it may hold credentials.
    #[error("cannot connect to the NATS server: {0}")]
    Connect(#[source] async_nats::ConnectError),
    /// The configured NATS credential could not be used (an unreadable creds file, a
    /// password that is not UTF-8). The message names the file, never a secret.
    #[error("unusable NATS credentials: {0}")]
    Credentials(String),
    /// TLS to the NATS server failed: a configured certificate or key file cannot be
    /// read, the server's certificate does not verify against the configured CA, or one
    /// side requires TLS and the other does not offer it. The message says which, and
    /// which setting to fix.
    #[error("TLS to the NATS server failed: {0}")]
    Tls(String),
    /// Any other failure reported by the transport client (subscribe, flush, publish).
    #[error("transport failure: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
}
