//! Rendering a saved request into its frame (protocol.md sections 3 and 7: the saved
//! bodies byte for byte, fresh signatures, IdProof and seals) from inputs gathered off the
//! wallet first, so that the private-key work can run while the wallet goes on: 6.3's
//! step 2 is rendered on rayon's pool while step 1 is in flight ([`Rendering`],
//! `Wallet::start_buy`), which takes its signature and the opening of V0's CustomerSecret
//! off the purchase's path (ARCHITECTURE.md, "Where the time goes").

use futures::channel::oneshot;
use shared::{AccountId, CustomerSecret, KeyPair, PublicKey, Uid};

use crate::core::reply::open_cs;
use crate::core::{self, OwnedScrip, RenderInputs, SavedPart, SavedRequest, WalletState};
use crate::error::WalletError;
use crate::wallet::Outgoing;

/// What rendering one saved request takes, owned: the wallet's keys, the request, the
/// account ID if it carries an IdProof, the scrip whose CustomerSecrets it carries (still
/// sealed: opening them is part of the work) and its recipients' keys.
pub(crate) struct RenderJob {
    keys: KeyPair,
    request: SavedRequest,
    account_id: Option<AccountId>,
    sealed: Vec<OwnedScrip>,
    recipients: Vec<(Uid, PublicKey)>,
}

impl RenderJob {
    /// Gathers what rendering `request` takes from the wallet's `state`. What the wallet
    /// lacks is refused here, before anything is saved: a scrip it does not hold, a
    /// recipient whose key it has not cached (6.0b). `account_id` is the opened ID when
    /// the request carries an IdProof.
    pub(crate) fn gather(
        state: &WalletState,
        keys: &KeyPair,
        account_id: Option<AccountId>,
        request: &SavedRequest,
    ) -> Result<RenderJob, WalletError> {
        let sealed = request
            .secrets_needed()
            .map(|scrip_id| {
                state
                    .scrip
                    .values()
                    .find(|s| s.scrip.id() == scrip_id)
                    .cloned()
                    .ok_or_else(|| WalletError::SealedSecret(format!("scrip {scrip_id} not held")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let recipients = request
            .parts
            .iter()
            .filter_map(|part| match part {
                SavedPart::Sealed { to, .. } => Some(*to),
                SavedPart::Signed { .. } => None,
            })
            .map(|to| {
                state
                    .key_of(to)
                    .map(|key| (to, key))
                    .ok_or(WalletError::UnknownPeer { uid: to })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RenderJob {
            keys: keys.clone(),
            request: request.clone(),
            account_id,
            sealed,
            recipients,
        })
    }

    /// Renders the frame: opens the CustomerSecrets, signs and seals.
    pub(crate) fn run(self) -> Result<Outgoing, WalletError> {
        let secrets = self
            .sealed
            .iter()
            .map(|owned| Ok((owned.scrip.id(), open_cs(&self.keys, owned)?)))
            .collect::<Result<Vec<(_, CustomerSecret)>, WalletError>>()?;
        let recipients = &self.recipients;
        let recipient_key = |uid: Uid| {
            recipients
                .iter()
                .find(|(to, _)| *to == uid)
                .map(|(_, key)| key.clone())
        };
        let inputs = RenderInputs {
            keys: &self.keys,
            account_id: self.account_id.as_ref(),
            secrets: &secrets,
            recipient_key: &recipient_key,
        };
        let frame = core::request::render_bytes(&self.request, &inputs)?;
        Ok(Outgoing {
            tx: self.request.tx(),
            label: self.request.label(),
            to: self.request.to,
            frame,
        })
    }

    /// Starts [`RenderJob::run`] on rayon's pool (`shared::runtime::spawn`) and hands
    /// back its pending result.
    pub(crate) fn spawn(self) -> Rendering {
        let (done, frame) = oneshot::channel();
        shared::runtime::spawn(move || {
            // The receiver is gone only if the caller gave up on the frame.
            let _ = done.send(self.run());
        });
        Rendering(frame)
    }
}

/// A request's frame being rendered on rayon's pool (see the module doc). The request is
/// saved already: a frame that never comes (an error here) leaves it pending, to be sent
/// again (`Wallet::resend`) as after a lost reply.
#[must_use = "the request is saved; its frame is sent once rendered"]
pub struct Rendering(oneshot::Receiver<Result<Outgoing, WalletError>>);

impl Rendering {
    /// The frame, once rendered.
    ///
    /// # Errors
    /// What rendering failed with ([`WalletError::SealedSecret`] for a CustomerSecret that
    /// does not open, [`WalletError::Build`] for a signature or seal).
    pub async fn outgoing(self) -> Result<Outgoing, WalletError> {
        self.0
            .await
            .map_err(|_| WalletError::Internal("the rendering of a frame stopped".into()))?
    }

    /// [`Rendering::outgoing`], blocking the calling thread until the frame is rendered.
    /// Not from a thread of rayon's pool: on a pool of one thread the rendering would wait
    /// behind its own caller.
    ///
    /// # Errors
    /// As [`Rendering::outgoing`].
    pub fn wait(self) -> Result<Outgoing, WalletError> {
        futures::executor::block_on(self.outgoing())
    }
}
