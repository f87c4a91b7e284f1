//! The broker's `ChangeBrokerScrip` decision as 6.2 step 5 and 6.5 step 6 both check it
//! (protocol.md sections 6.2 and 6.5; appendix A: `outcome, change, undertaking`). One place,
//! so the two flows cannot drift apart on what an OK or a NOK must carry.

use shared::events::Evidence;
use shared::wire::{Decision, Opened, ScripWithSecret, Undertaking};
use shared::{Amount, KeyPair, TxId};

use super::events::OwnedScrip;
use super::reply::{check_new_scrip, new_secret, own_scrip};
use super::state::WalletState;
use crate::error::WalletError;

/// What a `ChangeBrokerScrip` decision carries, with what the wallet expects of it.
pub struct ChangeDecision<'a> {
    /// The broker's decision.
    pub outcome: &'a Decision,
    /// The change, if any.
    pub change: Option<ScripWithSecret>,
    /// The merchant's signed undertaking (or acceptance), if any.
    pub undertaking: Option<&'a Undertaking>,
    /// The value of the BrokerScrip spent (B0).
    pub spent_value: Amount,
    /// The value paid out of it (`W` or `W_V`).
    pub value: Amount,
    /// The reason given when an OK comes without the undertaking.
    pub missing_undertaking: &'static str,
}

/// Checks a `ChangeBrokerScrip` decision. A NOK carries neither change nor undertaking
/// (B0 is live again). An OK needs the merchant's undertaking, checked by
/// `check_undertaking` and returned as evidence (the customer's proof against a merchant who
/// is paid and does not deliver); its change is worth `spent_value − value`, signed by the
/// broker, its secret matching the signed hash, and is absent only when that is zero.
pub fn check_change(
    state: &WalletState,
    keys: &KeyPair,
    opened: &Opened,
    tx: TxId,
    decision: ChangeDecision<'_>,
    check_undertaking: impl FnOnce(&Undertaking) -> Result<Evidence, WalletError>,
) -> Result<(Option<OwnedScrip>, Option<Evidence>), WalletError> {
    match decision.outcome {
        Decision::Nok(_) => {
            if decision.change.is_some() || decision.undertaking.is_some() {
                return Err(WalletError::InconsistentDecision(
                    "a NOK with change or an undertaking",
                ));
            }
            Ok((None, None))
        }
        Decision::Ok => {
            let undertaking = decision
                .undertaking
                .ok_or(WalletError::InconsistentDecision(
                    decision.missing_undertaking,
                ))?;
            let evidence = check_undertaking(undertaking)?;
            let change_value = decision.spent_value.checked_sub(decision.value)?;
            let change = match decision.change {
                None if change_value.is_zero() => None,
                None => {
                    return Err(WalletError::ValueMismatch {
                        expected: change_value,
                        found: Amount::ZERO,
                    });
                }
                Some(c) => {
                    let broker = state.broker().ok_or(WalletError::NotAWallet)?;
                    check_new_scrip(&c.scrip, broker, change_value)?;
                    let cs = new_secret(opened, c.scrip.id(), &c.cs_hash)?;
                    Some(own_scrip(keys, c.scrip, &cs, c.cs_hash, tx)?)
                }
            };
            Ok((change, Some(evidence)))
        }
    }
}
