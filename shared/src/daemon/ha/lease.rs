//! The lease: one writer per deployment (docs/adr/0017).
//!
//! The lease is the key `<node kind>` in a KV bucket whose entries live `lease_ttl`
//! (`max_age`, one entry of history, the replicas of the stream). A node takes it with
//! `create`, refused while the key exists, and renews it every third of the TTL with
//! `update` by revision, refused to anyone holding a stale revision. Only the answer to a
//! `create` or an `update` says who holds the lease: a read may come from a follower and
//! lag.
//!
//! # Validity
//!
//! The holder counts its lease from the moment it *sent* the request the server granted,
//! and only for three quarters of the TTL ([`Validity`]): the server starts the entry's
//! age later than that, so the holder always gives up before the key can expire and a
//! competitor's `create` succeed. A process frozen past its validity (SIGSTOP, a VM
//! paused) finds it lapsed when it runs again and writes nothing more; the expected
//! sequence of its appends fences it besides (`super::replica`).
//!
//! # Keeping it
//!
//! [`LeaseKeeper`] renews in a task of its own. A renewal refused by revision fences the
//! node at once; one that cannot reach the servers is tried again until the validity
//! ends, which fences it too. [`LeaseKeeper::release`] deletes the key (by revision) on a
//! graceful stop, so that a standby takes it at its next attempt instead of waiting out the
//! TTL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Fence, HaError, HaSettings};

/// Until when the holder may write (see the module doc); `None`: not held.
#[derive(Debug, Default)]
pub struct Validity {
    until: Mutex<Option<Instant>>,
}

impl Validity {
    /// Whether the lease holds at `now`.
    #[must_use]
    pub fn holds(&self, now: Instant) -> bool {
        self.until().is_some_and(|until| now < until)
    }

    /// Until when it holds.
    #[must_use]
    pub fn until(&self) -> Option<Instant> {
        *self
            .until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, until: Option<Instant>) {
        *self
            .until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = until;
    }
}

/// The part of the TTL a grant is counted for (see the module doc).
fn valid_for(ttl: Duration) -> Duration {
    ttl * 3 / 4
}

/// The deployment's lease bucket.
#[derive(Clone, Debug)]
pub struct Lease {
    store: kv::Store,
    key: String,
    holder: Bytes,
    ttl: Duration,
    renew_every: Duration,
}

impl Lease {
    /// The bucket of `settings` (created if missing) and the lease of `node_kind` in it,
    /// to be held as `settings.instance`.
    ///
    /// # Errors
    /// [`HaError::Nats`] if JetStream does not answer or the bucket cannot be made.
    pub async fn open(
        js: &jetstream::Context,
        settings: &HaSettings,
        node_kind: &str,
    ) -> Result<Lease, HaError> {
        let store = match js.get_key_value(&settings.bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: settings.bucket.clone(),
                    history: 1,
                    max_age: settings.lease_ttl,
                    num_replicas: settings.replicas,
                    ..kv::Config::default()
                })
                .await
                .map_err(|e| HaError::nats("creating the lease bucket", e))?,
        };
        let status = store
            .status()
            .await
            .map_err(|e| HaError::nats("reading the lease bucket", e))?;
        if status.max_age() != settings.lease_ttl {
            return Err(HaError::Stream {
                stream: settings.bucket.clone(),
                reason: format!(
                    "the lease bucket keeps entries {:?}, the configured lease_ttl is {:?}: \
                     every broker of a deployment must use one TTL",
                    status.max_age(),
                    settings.lease_ttl
                ),
            });
        }
        Ok(Lease {
            store,
            key: node_kind.to_owned(),
            holder: Bytes::from(settings.instance.clone()),
            ttl: settings.lease_ttl,
            renew_every: settings.renew_every(),
        })
    }

    /// One attempt to take the lease: `Some` with its keeper when it was free and is now
    /// this node's, `None` while another holds it.
    ///
    /// # Errors
    /// [`HaError::Nats`] if the servers did not answer.
    pub async fn try_take(&self, fence: Arc<Fence>) -> Result<Option<LeaseKeeper>, HaError> {
        let sent = Instant::now();
        match self.store.create(&self.key, self.holder.clone()).await {
            Ok(revision) => {
                let validity = Arc::new(Validity::default());
                validity.set(Some(sent + valid_for(self.ttl)));
                let (stop, stopped) = oneshot::channel();
                let task = tokio::spawn(keep(
                    self.clone(),
                    revision,
                    validity.clone(),
                    fence,
                    stopped,
                ));
                Ok(Some(LeaseKeeper {
                    validity,
                    stop: Some(stop),
                    task,
                }))
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(HaError::nats("taking the lease", e)),
        }
    }

    /// Who holds the lease, as some server last saw it (not proof: see the module doc).
    ///
    /// # Errors
    /// [`HaError::Nats`] if the servers did not answer.
    pub async fn holder(&self) -> Result<Option<String>, HaError> {
        let value = self
            .store
            .get(&self.key)
            .await
            .map_err(|e| HaError::nats("reading the lease", e))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

/// A lease this node holds, renewed by a task (see the module doc).
#[derive(Debug)]
pub struct LeaseKeeper {
    validity: Arc<Validity>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseKeeper {
    /// Until when the node may write (shared with its replica).
    #[must_use]
    pub fn validity(&self) -> Arc<Validity> {
        self.validity.clone()
    }

    /// Stops renewing and deletes the key by revision, so that a standby takes over at
    /// once (a graceful stop). The node must have stopped writing.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(e) = (&mut self.task).await {
            tracing::warn!(error = %e, "the lease keeper ended abnormally");
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        // Dropped without a release (the node was fenced): stop renewing; the key lapses.
        self.task.abort();
        self.validity.set(None);
    }
}

/// Renews `lease` every third of its TTL until told to stop (then deletes it) or until a
/// renewal is refused or the validity ends (then fences the node).
async fn keep(
    lease: Lease,
    mut revision: u64,
    validity: Arc<Validity>,
    fence: Arc<Fence>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut next = Instant::now() + lease.renew_every;
    loop {
        let lapse = validity.until().unwrap_or_else(Instant::now);
        tokio::select! {
            _ = &mut stopped => {
                validity.set(None);
                if let Err(e) = lease.store.delete_expect_revision(&lease.key, Some(revision)).await {
                    tracing::warn!(error = %e, "the lease was not released; it lapses after its TTL");
                }
                return;
            }
            _ = fence.fenced() => {
                validity.set(None);
                return;
            }
            () = tokio::time::sleep_until(lapse) => {
                validity.set(None);
                fence.fence("the lease could not be renewed before it lapsed");
                return;
            }
            () = tokio::time::sleep_until(next) => {}
        }
        let sent = Instant::now();
        let renewed = tokio::time::timeout(
            lease.renew_every,
            lease
                .store
                .update(&lease.key, lease.holder.clone(), revision),
        )
        .await;
        match renewed {
            Ok(Ok(new)) => {
                revision = new;
                validity.set(Some(sent + valid_for(lease.ttl)));
                next = sent + lease.renew_every;
            }
            Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                validity.set(None);
                fence.fence(format!("another node holds the lease ({e})"));
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "renewing the lease failed; trying again");
                next = Instant::now() + lease.renew_every / 4;
            }
            Err(_) => {
                tracing::warn!("renewing the lease got no answer; trying again");
                next = Instant::now();
            }
        }
    }
}
