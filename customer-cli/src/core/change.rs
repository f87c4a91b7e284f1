//! The broker's `ChangeBrokerScrip` as 6.2 step 5 and 6.5 step 6 both check it (protocol.md
//! sections 6.2 and 6.5; appendix A: `outcome, change, undertaking`). One place, so the two
//! flows cannot drift apart on what an OK or a NOK must carry.

use shared::events::Evidence;
use shared::wire::bodies::ChangeBrokerScripX4;
use shared::wire::{Body, Decision, Header, Undertaking};
use shared::{Amount, Uid};

use super::events::{Outcome, OwnedScrip};
use super::reply::Incoming;
use crate::error::WalletError;

/// What the wallet paid out of its BrokerScrip B0 to a merchant, which B's
/// `ChangeBrokerScrip` settles.
pub struct Payment<X> {
    /// The merchant paid.
    pub merchant: Uid,
    /// B0's value.
    pub spent_value: Amount,
    /// The value paid out of it (`W` in 6.2, `W_V` in 6.5).
    pub value: Amount,
    /// What the merchant's signed undertaking must say: its `X3 = W, UID_C` (6.2 step 3)
    /// or its acceptance of the top-up (6.5 step 3).
    pub undertaking: X,
}

/// The broker's decision, checked.
pub struct Settlement {
    /// OK or NOK.
    pub outcome: Outcome,
    /// The change B1, on OK when not zero.
    pub change: Option<OwnedScrip>,
    /// The broker's signed body, and on OK the merchant's undertaking: the customer's proof
    /// against a merchant who is paid and does not deliver (section 8).
    pub evidence: Vec<Evidence>,
}

/// Opens and checks B's `ChangeBrokerScrip` for `payment`. A NOK carries neither change
/// nor undertaking (B0 is live again). An OK needs the merchant's undertaking, which must
/// verify and say what `payment` says; its change is worth `spent_value − value`, signed by
/// the broker, its secret matching the signed hash, and is absent only when that is zero.
pub fn settlement<X: Body + PartialEq>(
    reply: &Incoming<'_>,
    payment: &Payment<X>,
) -> Result<Settlement, WalletError> {
    let (verified, opened) = reply.broker_delivery::<ChangeBrokerScripX4>()?;
    let mut evidence = vec![Evidence::from(&verified.evidence)];
    let body = verified.body;
    let outcome = Outcome::from(&body.outcome);
    if let Decision::Nok(_) = body.outcome {
        if body.change.is_some() || body.undertaking.is_some() {
            return Err(WalletError::InconsistentDecision(
                "a NOK with change or an undertaking",
            ));
        }
        return Ok(Settlement {
            outcome,
            change: None,
            evidence,
        });
    }
    let undertaking = body.undertaking.ok_or(WalletError::InconsistentDecision(
        "an OK without the merchant's signed undertaking",
    ))?;
    evidence.push(merchant_undertaking(reply, payment, &undertaking)?);
    let change_value = payment.spent_value.checked_sub(payment.value)?;
    let broker = reply.state.broker().ok_or(WalletError::NotAWallet)?;
    let change = reply.change(&opened, body.change, broker, change_value)?;
    Ok(Settlement {
        outcome,
        change,
        evidence,
    })
}

/// The merchant's undertaking: its `X3`, signed under the header of the message it sent the
/// broker in this tx (its label is `X3`'s), verified with its cached key (6.0b) and equal to
/// what `payment` says; returned as evidence (section 8) so anyone holding the merchant's
/// key can verify it again.
fn merchant_undertaking<X: Body + PartialEq>(
    reply: &Incoming<'_>,
    payment: &Payment<X>,
    undertaking: &Undertaking,
) -> Result<Evidence, WalletError> {
    let merchant = payment.merchant;
    let key = reply
        .state
        .key_of(merchant)
        .ok_or(WalletError::UnknownPeer { uid: merchant })?;
    let header = Header::new(reply.keys.suite(), X::LABEL, reply.tx(), merchant);
    let says = undertaking
        .verify::<X>(&header, &key)
        .map_err(|_| WalletError::BadUndertaking)?;
    if says != payment.undertaking {
        return Err(WalletError::BadUndertaking);
    }
    Ok(Evidence {
        header: header.to_bytes().as_bytes().to_vec(),
        body: undertaking.body.clone(),
        sig: undertaking.sig.clone(),
        signer: merchant,
    })
}
