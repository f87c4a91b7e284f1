//! Lapse (protocol.md section 4): when a scrip's renewal grace period ends, its value goes
//! back to its owner's bank account, never lost.
//!
//! - BrokerScrip: the broker's timer ([`lapsed`]) appends `ScripLapsed` for each live, not
//!   held, BrokerScrip whose grace ended: `float:broker −v, bank:owner +v`, and removes it.
//!   A held scrip does not lapse: only its escrow's event ends a hold (section 4).
//! - VendorScrip: M sends a signed `ScripLapsedNotice` ([`notice`]); the broker posts
//!   `bank:M −v, bank:owner +v`, memo `float:vendor:M −v` (`VendorScripLapsed`) and answers
//!   `Ack`. M moves its own money to the owner, so the broker need not see the scrip; it
//!   refuses a notice of a scrip it already recorded as lapsed (`Spent`), one whose owner is
//!   not registered, and one that M's bank balance cannot pay (`MerchantBalanceTooLow`).

use shared::events::{Account, NewEvent, Posting};
use shared::node::{Draft, Refusal, ScripState, TxKind, lapse_tx};
use shared::wire::bodies::{AckBody, Re, ScripLapsedNoticeBody};
use shared::{ErrorCode, UnixSecs};

use super::{
    Config, Ctx, Decision, Kind, State, Verified, evidence_of, memo_alarm, passed, sender_peer,
};

/// `ScripLapsed` for every live BrokerScrip whose grace period ended before `now`. Each is
/// its own tx, named by the scrip id, so an auditor finds the lapse of scrip X under tx X.
#[must_use]
pub fn lapsed(state: &State, config: &Config, now: UnixSecs) -> Vec<NewEvent<Kind>> {
    state
        .live
        .iter()
        .filter(|(_, r)| {
            r.state == ScripState::Live
                && passed(now, r.body.expires.saturating_add(config.grace_secs))
        })
        .filter_map(|(id, r)| {
            let pan = &state.peers.get(&r.owner)?.pan;
            let value = r.body.value;
            Some(
                NewEvent::new(
                    now.to_millis(),
                    lapse_tx(*id),
                    Kind::ScripLapsed {
                        owner: r.owner,
                        scrip_id: *id,
                        value,
                    },
                )
                .with_postings(vec![
                    Posting::decrease(Account::FloatBroker, value),
                    Posting::increase(Account::Bank(pan.clone()), value),
                ]),
            )
        })
        .collect()
}

/// A merchant's `ScripLapsedNotice` (see the module doc).
pub(super) fn notice(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &ScripLapsedNoticeBody,
) -> Result<Decision, Refusal> {
    let merchant = v.header.sender;
    let tx = v.header.tx;
    state
        .bindings
        .check(&tx, TxKind::Lapse, &[merchant, x.owner])?;
    let owner_pan = &state
        .peers
        .get(&x.owner)
        .ok_or_else(|| Refusal::new(ErrorCode::UnknownPeer, "the owner is not a registered peer"))?
        .pan;
    if x.value.is_zero() {
        return Err(Refusal::new(
            ErrorCode::AmountOutOfRange,
            "a lapsed scrip must have a value",
        ));
    }
    if state.vendor_lapsed.contains(&(merchant, x.scrip_id)) {
        return Err(Refusal::new(
            ErrorCode::Spent,
            "this scrip's lapse is already recorded",
        ));
    }
    let merchant_pan = &sender_peer(state, v)?.pan;
    if state.bank_balance(merchant_pan) < x.value {
        return Err(Refusal::new(
            ErrorCode::MerchantBalanceTooLow,
            "the merchant's bank balance cannot pay the lapsed value",
        ));
    }
    let mut events = vec![
        NewEvent::new(
            ctx.now.to_millis(),
            tx,
            Kind::VendorScripLapsed {
                merchant,
                owner: x.owner,
                scrip_id: x.scrip_id,
                value: x.value,
            },
        )
        .with_postings(vec![
            Posting::decrease(Account::Bank(merchant_pan.clone()), x.value),
            Posting::increase(Account::Bank(owner_pan.clone()), x.value),
        ])
        .with_memos(vec![Posting::decrease(
            Account::FloatVendor(merchant),
            x.value,
        )])
        .with_evidence(evidence_of(v)),
    ];
    events.extend(memo_alarm(state, ctx, tx, merchant, x.value));
    let body = AckBody {
        re: Re::new(&v.header, v.digest.clone()),
        deadline: None,
    };
    Ok(Decision {
        events,
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body),
        deliveries: Vec::new(),
    })
}
