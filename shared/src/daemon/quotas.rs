//! The `[quotas]` section both daemons share (protocol.md section 10), each key also an
//! environment variable (file < environment), so that an operator under attack can lower
//! one without editing the file.

use super::config::ConfigError;
use crate::node::Quotas;

/// Each quota's file key (under `[quotas]`) and environment variable, with a reader and a
/// writer of its field: the one table `resolve` and `describe` go through.
#[allow(clippy::type_complexity)]
const KEYS: &[(&str, &str, fn(&Quotas) -> u64, fn(&mut Quotas, u64) -> bool)] = &[
    (
        "requests_per_sec",
        "PEERSCRIP_QUOTA_REQUESTS_PER_SEC",
        |q| u64::from(q.requests_per_sec),
        |q, v| u32::try_from(v).map(|v| q.requests_per_sec = v).is_ok(),
    ),
    (
        "burst",
        "PEERSCRIP_QUOTA_BURST",
        |q| u64::from(q.burst),
        |q, v| u32::try_from(v).map(|v| q.burst = v).is_ok(),
    ),
    (
        "strangers_per_sec",
        "PEERSCRIP_QUOTA_STRANGERS_PER_SEC",
        |q| u64::from(q.strangers_per_sec),
        |q, v| u32::try_from(v).map(|v| q.strangers_per_sec = v).is_ok(),
    ),
    (
        "strangers_burst",
        "PEERSCRIP_QUOTA_STRANGERS_BURST",
        |q| u64::from(q.strangers_burst),
        |q, v| u32::try_from(v).map(|v| q.strangers_burst = v).is_ok(),
    ),
    (
        "open_exchanges",
        "PEERSCRIP_QUOTA_OPEN_EXCHANGES",
        |q| u64::from(q.open_exchanges),
        |q, v| u32::try_from(v).map(|v| q.open_exchanges = v).is_ok(),
    ),
    (
        "open_escrows",
        "PEERSCRIP_QUOTA_OPEN_ESCROWS",
        |q| u64::from(q.open_escrows),
        |q, v| u32::try_from(v).map(|v| q.open_escrows = v).is_ok(),
    ),
    (
        "open_purchases",
        "PEERSCRIP_QUOTA_OPEN_PURCHASES",
        |q| u64::from(q.open_purchases),
        |q, v| u32::try_from(v).map(|v| q.open_purchases = v).is_ok(),
    ),
];

/// The file's `[quotas]` with each set environment variable over it (`env` reads one).
///
/// # Errors
/// [`ConfigError::Invalid`] naming the key and variable of a value that is not a whole
/// number from 1 to 4,294,967,295 (a quota of zero would refuse every request).
pub fn resolve(file: Quotas, env: &dyn Fn(&str) -> Option<String>) -> Result<Quotas, ConfigError> {
    let mut quotas = file;
    for (key, var, get, set) in KEYS {
        let field = format!("quotas.{key} ({var})");
        let value = match env(var) {
            Some(text) => text
                .trim()
                .parse::<u64>()
                .map_err(|e| ConfigError::invalid(&field, e.to_string()))?,
            None => get(&quotas),
        };
        if value == 0 || !set(&mut quotas, value) {
            return Err(ConfigError::invalid(
                &field,
                "must be a whole number from 1 to 4294967295",
            ));
        }
    }
    Ok(quotas)
}

/// One `quotas.<key> = <value>` line per quota (`--check-config`).
#[must_use]
pub fn describe(quotas: &Quotas) -> String {
    KEYS.iter()
        .map(|(key, _, get, _)| format!("quotas.{key} = {}\n", get(quotas)))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_environment_overrides_the_file_and_zero_is_refused() {
        let file = Quotas {
            open_purchases: 7,
            ..Quotas::default()
        };
        let env = |var: &str| (var == "PEERSCRIP_QUOTA_BURST").then(|| "9".to_owned());
        let q = resolve(file, &env).unwrap();
        assert_eq!((q.open_purchases, q.burst), (7, 9));
        assert!(describe(&q).contains("quotas.burst = 9\n"));
        assert!(describe(&q).contains("quotas.open_purchases = 7\n"));

        let zero = |var: &str| (var == "PEERSCRIP_QUOTA_OPEN_ESCROWS").then(|| "0".to_owned());
        let e = resolve(Quotas::default(), &zero).unwrap_err().to_string();
        assert!(
            e.contains("quotas.open_escrows (PEERSCRIP_QUOTA_OPEN_ESCROWS)"),
            "{e}"
        );
        let bad = |var: &str| (var == "PEERSCRIP_QUOTA_BURST").then(|| "many".to_owned());
        assert!(resolve(Quotas::default(), &bad).is_err());
        let huge = Quotas {
            requests_per_sec: 0,
            ..Quotas::default()
        };
        assert!(resolve(huge, &|_| None).is_err(), "zero in the file too");
    }
}
