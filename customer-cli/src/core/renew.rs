//! 6.8 Renew expired scrip, the customer's side (protocol.md section 6.8; paper 6.8,
//! fig. 14). Works for BrokerScrip (producer = the broker) and VendorScrip (producer = a
//! merchant whose key the wallet obtained by 6.0b).
//!
//! 1. C → producer `RenewRequest`: `Sealed(to producer){ Signed(X0 = E0, CS_E0) }` (with
//!    `Secret(CS_E0)`).
//! 3. producer → C `RenewResponse`: `Sealed(to C){ Signed(X1 = E1, CS_E1) }`; the wallet
//!    checks the producer's signature, `re`, that E1 is the producer's with the value of
//!    E0 unchanged, and that CS_E1 hashes to its `cs_hash`; then E0 is replaced by E1.
//!
//! Whether E0 may be renewed (expired, within grace) is the producer's decision (section 4);
//! the wallet does not refuse a renewal on its own clock.

use shared::wire::Label;
use shared::wire::bodies::{RenewRequestX0, RenewResponseX1};
use shared::{Amount, ScripId, TxId, Uid};

use super::events::WalletEvent;
use super::reply::{Decided, Incoming};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::WalletState;
use super::{request_header, scrip_free};
use crate::error::WalletError;

/// Step 1: the request to renew the scrip held of `producer`.
pub fn request(state: &WalletState, tx: TxId, producer: Uid) -> Result<SavedRequest, WalletError> {
    let (_, header) = request_header(state, Label::RenewRequest, tx)?;
    let held = state
        .scrip
        .get(&producer)
        .ok_or(WalletError::NoScrip { producer })?;
    if state.key_of(producer).is_none() {
        return Err(WalletError::UnknownPeer { uid: producer });
    }
    scrip_free(state, held.scrip.id())?;
    let x0 = RenewRequestX0 {
        scrip: held.scrip.clone(),
        cs_hash: held.cs_hash.clone(),
    };
    SavedRequest::new(
        header,
        producer,
        vec![SavedPart::sealed(
            producer,
            [SavedInner::signed(&x0), SavedInner::secret_of(held)],
        )],
        Expect::Renew {
            producer,
            spent: held.scrip.id(),
            value: held.scrip.value(),
        },
    )
}

/// Step 3: the producer's `RenewResponse`, checked; E0 replaced by E1.
pub fn accept(reply: &Incoming<'_>, producer: Uid, spent: ScripId, value: Amount) -> Decided {
    let (verified, opened) = reply.sealed::<RenewResponseX1>()?;
    let issued = (verified.body.scrip, verified.body.cs_hash);
    let scrip = reply.new_scrip(&opened, issued, producer, value)?;
    Ok(reply.record(
        WalletEvent::ScripRenewed { spent, scrip },
        &verified.evidence,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::events::{Identity, OwnedScrip};
    use crate::sealed::SealedSecret;
    use shared::fixtures;
    use shared::{Amount, Suite};

    /// 6.8 goes to the scrip's producer: a merchant's renewal is sealed to the merchant's
    /// key, which the wallet must hold from 6.0b; without it nothing is built.
    #[test]
    fn a_merchant_renewal_needs_the_merchant_key_from_6_0b() {
        let suite = Suite::Paper;
        let (me, broker, merchant) = (
            fixtures::keypair(suite, 0),
            fixtures::keypair(suite, 1),
            fixtures::keypair(suite, 2),
        );
        let mint = shared::Mint::new(suite, merchant.uid(), fixtures::root_key(2));
        let (v0, cs) = mint.issue(Amount::from_minor(30), 100);
        let mut state = WalletState {
            identity: Some(Identity {
                suite,
                me: me.uid(),
                my_key: me.public().spki_der().to_vec(),
                broker: broker.uid(),
                broker_key: broker.public().spki_der().to_vec(),
            }),
            ..WalletState::default()
        };
        state.scrip.insert(
            merchant.uid(),
            OwnedScrip {
                cs_hash: cs.cs_hash(suite),
                sealed_cs: SealedSecret::seal(me.public(), b"cs", cs.expose()).unwrap(),
                scrip: v0.clone(),
                obtained_in: TxId([1; 16]),
            },
        );
        let tx = TxId([2; 16]);
        assert!(matches!(
            request(&state, tx, merchant.uid()),
            Err(WalletError::UnknownPeer { uid }) if uid == merchant.uid()
        ));
        state
            .peers
            .insert(merchant.uid(), merchant.public().spki_der().to_vec());
        let saved = request(&state, tx, merchant.uid()).unwrap();
        assert_eq!(saved.to, merchant.uid());
        assert_eq!(
            saved.expect,
            Expect::Renew {
                producer: merchant.uid(),
                spent: v0.id(),
                value: Amount::from_minor(30)
            }
        );
        assert!(matches!(
            &saved.parts[..],
            [SavedPart::Sealed { to, .. }] if *to == merchant.uid()
        ));
        assert!(!saved.needs_id(), "6.8 carries no IdProof");
    }
}
