//! 6.8 Renew expired scrip (paper 6.8, fig. 14), for this merchant's VendorScrip.
//!
//! The customer presents E0 with its CustomerSecret; the merchant checks it as section 4
//! says but accepts it expired, up to and including `expires + grace` (default one year),
//! spends it and issues E1 of the same value to the same owner with a new scrip id, cust
//! id and expiry (`ScripRenewed`). After the grace period the request is refused with
//! `GraceOver` (the scrip lapses instead, section 4).
//!
//! An unexpired scrip is renewed too. Why accept rather than refuse: renewing early only
//! moves the expiry later, which renewing after expiry does as well, so refusing it would
//! protect nothing; the value, owner and liveness checks are the same either way, and no
//! `ErrorCode` of the protocol names "not yet expired", so a refusal would have to misuse
//! one. A wallet may renew a scrip that is about to expire without waiting for it to.

use shared::ExpiryRule;
use shared::UnixSecs;
use shared::events::{Evidence, NewEvent};
use shared::node::{Draft, Refusal, TxKind};
use shared::wire::bodies::{Re, RenewRequestX0, RenewResponseX1};

use super::events::Kind;
use super::open::Presented;
use super::state::State;
use super::{Config, Decision, check_presented, customer_bound};

/// Decides a verified `RenewRequest` (6.8 step 2). Idempotency was checked by
/// [`super::decide`].
pub fn decide(
    state: &State,
    config: &Config,
    request: &Presented<RenewRequestX0>,
    now: UnixSecs,
) -> Result<Decision, Refusal> {
    let header = &request.header;
    let owner = customer_bound(state, config, header, TxKind::Renew)?;
    let me = config.me();
    let record = check_presented(
        state,
        config,
        &request.body.scrip,
        &request.cs,
        owner,
        now,
        ExpiryRule::Renewal {
            grace_secs: config.renewal_grace_secs,
        },
    )?;
    let (renewed, cs) = config
        .mint
        .issue(record.body.value, config.expiry_from(now));
    let event = NewEvent::new(
        now.to_millis(),
        header.tx,
        Kind::ScripRenewed {
            owner,
            old: record.body,
            new: renewed.body,
        },
    )
    .with_evidence(vec![Evidence::from(&request.evidence)]);
    let response = RenewResponseX1 {
        re: Re::new(header, request.digest.clone()),
        cs_hash: cs.cs_hash(header.suite),
        scrip: renewed.clone(),
    };
    let reply =
        Draft::reply(me, header, &request.digest, &response).sealed_with(vec![(renewed.id(), cs)]);
    Ok(Decision {
        events: vec![event],
        reply: Some(reply),
        deliveries: Vec::new(),
    })
}
