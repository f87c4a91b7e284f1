//! `peerscrip renew [<producer>]`: renews scrip (protocol.md 6.8, section 4 "Expiry"):
//! that of one producer, or every scrip held whose expiry has passed. Same value, new
//! expiry; each is one request to its producer.

use serde_json::json;
use shared::Uid;

use super::history::{describe, entry_json};
use crate::cli::exit::CliError;
use crate::cli::output::Done;
use crate::cli::session::{Session, now};

/// Renews the scrip of `producer`, or every expired scrip.
pub async fn run(session: &mut Session, producer: Option<Uid>) -> Result<Done, CliError> {
    let producers: Vec<Uid> = match producer {
        Some(p) => vec![p],
        None => {
            let t = now();
            session
                .wallet
                .state()
                .scrip
                .values()
                .filter(|s| s.scrip.body.expires <= t)
                .map(crate::core::OwnedScrip::producer)
                .collect()
        }
    };
    if producers.is_empty() {
        return Ok(Done::new(
            vec!["no expired scrip to renew".to_owned()],
            json!({"command": "renew", "renewed": []}),
        ));
    }
    let mut recorded = Vec::new();
    for p in producers {
        let out = session.wallet.renew(p, now())?;
        recorded.push(session.send(out, "6.8: renewing scrip").await?);
    }
    Ok(Done::new(
        recorded.iter().map(|e| describe(&e.what)).collect(),
        json!({
            "command": "renew",
            "renewed": recorded.iter().map(entry_json).collect::<Vec<_>>(),
        }),
    ))
}
