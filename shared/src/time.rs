//! Times: [`UnixSecs`] and [`UnixMillis`], two units that never mix by accident.
//!
//! The protocol counts in two units. Unix seconds are what parties agree on: a scrip's
//! expiry (protocol.md section 4), a transaction's deadline (section 7), the `issued_at`
//! of a notice, and the `now` a node decides at. Unix milliseconds are the timestamp of a
//! logged event (section 8), which only its own log reads. Both are encoded as their bare
//! `u64` (appendix A.2: a postcard varint), so a stored event or a frame is byte for byte
//! what it was when these were plain integers.
//!
//! There is one conversion each way: [`UnixSecs::to_millis`] (saturating) and
//! [`UnixMillis::to_secs`] (truncating). Arithmetic is only what a deadline or an expiry
//! needs (a time plus a duration in seconds, checked or saturating, and the elapsed time
//! between two instants); no `Add` can overflow silently. `shared` reads no clock: a time
//! is always given by the caller.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Milliseconds per second.
const MILLIS_PER_SEC: u64 = 1000;

/// An instant in unix seconds (seconds since 1970-01-01 UTC): a scrip's expiry (protocol.md
/// section 4), a deadline (section 7), the `now` a core decides at. Encoded as its `u64`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixSecs(u64);

/// An instant in unix milliseconds: the time of a logged event (protocol.md section 8).
/// Encoded as its `u64`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMillis(u64);

impl UnixSecs {
    /// 1970-01-01 00:00:00 UTC.
    pub const EPOCH: UnixSecs = UnixSecs(0);

    /// The instant `secs` seconds after the epoch.
    #[must_use]
    pub const fn new(secs: u64) -> Self {
        UnixSecs(secs)
    }

    /// Seconds since the epoch.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The same instant in milliseconds, the unit of an event's time (protocol.md section
    /// 8); saturates at `u64::MAX` (a time no clock reaches).
    #[must_use]
    pub const fn to_millis(self) -> UnixMillis {
        UnixMillis(self.0.saturating_mul(MILLIS_PER_SEC))
    }

    /// `secs` seconds later, or `None` past `u64::MAX`: a deadline or an expiry that must
    /// not wrap (protocol.md sections 4 and 7).
    #[must_use]
    pub const fn checked_add_secs(self, secs: u64) -> Option<Self> {
        match self.0.checked_add(secs) {
            Some(t) => Some(UnixSecs(t)),
            None => None,
        }
    }

    /// `secs` seconds later, at most `u64::MAX` (never: an expiry that far is "never").
    #[must_use]
    pub const fn saturating_add_secs(self, secs: u64) -> Self {
        UnixSecs(self.0.saturating_add(secs))
    }

    /// `secs` seconds earlier, at least the epoch.
    #[must_use]
    pub const fn saturating_sub_secs(self, secs: u64) -> Self {
        UnixSecs(self.0.saturating_sub(secs))
    }

    /// Seconds from `earlier` to `self`, 0 if `earlier` is not earlier.
    #[must_use]
    pub const fn secs_since(self, earlier: UnixSecs) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `2026-12-06 21:52:47 UTC`.
    #[must_use]
    pub fn utc(self) -> String {
        utc(self.0)
    }

    /// RFC 3339 in UTC, `2026-12-07T20:19:13Z`: the text form of every time in a JSON
    /// document (the calendar of [`UnixSecs::utc`], which people read).
    #[must_use]
    pub fn rfc3339(self) -> String {
        let utc = self.utc();
        let bare = utc.strip_suffix(" UTC").unwrap_or(&utc);
        format!("{}Z", bare.replacen(' ', "T", 1))
    }

    /// "expires in 3h 12m" when `self` is after `now`, else "expired 5m ago" (an expiry
    /// that is `now` has passed: a scrip is live while `now < expires`, protocol.md
    /// section 4).
    #[must_use]
    pub fn relative_to(self, now: UnixSecs) -> String {
        if self > now {
            format!("expires in {}", span(self.secs_since(now)))
        } else {
            format!("expired {} ago", span(now.secs_since(self)))
        }
    }
}

/// A time in the one time format of every JSON document of the tools and the daemons'
/// live view (README "Exit codes and `--json`"): `{"unix": 1796674753, "rfc3339":
/// "2026-12-07T20:19:13Z"}`, and for an expiry or a deadline `"relative": "expires in
/// 3h 12m"` as of the document's time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    /// Unix seconds.
    pub unix: u64,
    /// [`UnixSecs::rfc3339`].
    pub rfc3339: String,
    /// [`UnixSecs::relative_to`] the document's time, for an expiry or a deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<String>,
}

impl Moment {
    /// An instant.
    #[must_use]
    pub fn at(t: UnixSecs) -> Moment {
        Moment {
            unix: t.get(),
            rfc3339: t.rfc3339(),
            relative: None,
        }
    }

    /// An expiry or a deadline, as of `now`.
    #[must_use]
    pub fn expiry(t: UnixSecs, now: UnixSecs) -> Moment {
        Moment {
            relative: Some(t.relative_to(now)),
            ..Moment::at(t)
        }
    }
}

/// A length of time in its two largest units: `45s`, `5m`, `12m 5s`, `3h 12m`, `2d 3h`,
/// `1y 4d` (a year of 365 days; the calendar date beside it is exact).
fn span(secs: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (365 * 86_400, "y"),
        (86_400, "d"),
        (3_600, "h"),
        (60, "m"),
        (1, "s"),
    ];
    let Some(first) = UNITS.iter().position(|(size, _)| secs >= *size) else {
        return "0s".to_owned();
    };
    let (size, unit) = UNITS[first];
    let mut text = format!("{}{unit}", secs / size);
    let rest = secs % size;
    if let Some((next, next_unit)) = UNITS.get(first + 1) {
        let n = rest / next;
        if n > 0 {
            text.push_str(&format!(" {n}{next_unit}"));
        }
    }
    text
}

impl UnixMillis {
    /// 1970-01-01 00:00:00.000 UTC.
    pub const EPOCH: UnixMillis = UnixMillis(0);

    /// The instant `ms` milliseconds after the epoch.
    #[must_use]
    pub const fn new(ms: u64) -> Self {
        UnixMillis(ms)
    }

    /// Milliseconds since the epoch.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The second this instant falls in (truncating), the unit expiries and deadlines are
    /// compared in (protocol.md sections 4 and 7).
    #[must_use]
    pub const fn to_secs(self) -> UnixSecs {
        UnixSecs(self.0 / MILLIS_PER_SEC)
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is not earlier.
    #[must_use]
    pub const fn millis_since(self, earlier: UnixMillis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The second this instant falls in, as `2026-12-06 21:52:47 UTC`.
    #[must_use]
    pub fn utc(self) -> String {
        self.to_secs().utc()
    }
}

/// The bare number of seconds, as the tools have always printed it.
impl fmt::Display for UnixSecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The bare number of milliseconds.
impl fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Unix seconds as `2026-12-06 21:52:47 UTC` (the proleptic Gregorian calendar;
/// H. Hinnant's `civil_from_days`).
fn utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_show_their_two_largest_units() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(45), "45s");
        assert_eq!(span(300), "5m");
        assert_eq!(span(12 * 60 + 5), "12m 5s");
        assert_eq!(span(2 * 86_400 + 3 * 3600 + 59), "2d 3h");
        assert_eq!(span(366 * 86_400), "1y 1d");
    }

    #[test]
    fn moments_carry_both_forms_and_an_expiry_its_relative_one() {
        let t = UnixSecs::new(1_796_674_753);
        assert_eq!(t.rfc3339(), "2026-12-07T20:19:13Z");
        assert_eq!(Moment::at(t).relative, None);
        let m = Moment::expiry(t, t.saturating_sub_secs(3 * 3600 + 12 * 60 + 7));
        assert_eq!(m.unix, 1_796_674_753);
        assert_eq!(m.relative.as_deref(), Some("expires in 3h 12m"));
        assert_eq!(t.relative_to(t.saturating_add_secs(300)), "expired 5m ago");
    }

    #[test]
    fn encodings_are_the_bare_u64() {
        for n in [0, 1, 127, 128, 1_700_000_000, 1_700_000_000_123, u64::MAX] {
            let bare = postcard::to_allocvec(&n).expect("encode u64");
            assert_eq!(
                postcard::to_allocvec(&UnixSecs::new(n)).expect("secs"),
                bare
            );
            assert_eq!(
                postcard::to_allocvec(&UnixMillis::new(n)).expect("ms"),
                bare
            );
            assert_eq!(
                postcard::from_bytes::<UnixSecs>(&bare).expect("decode secs"),
                UnixSecs::new(n)
            );
            assert_eq!(
                postcard::from_bytes::<UnixMillis>(&bare).expect("decode ms"),
                UnixMillis::new(n)
            );
        }
    }

    #[test]
    fn the_one_conversion_saturates_up_and_truncates_down() {
        assert_eq!(UnixSecs::new(1_700).to_millis(), UnixMillis::new(1_700_000));
        assert_eq!(
            UnixSecs::new(u64::MAX).to_millis(),
            UnixMillis::new(u64::MAX)
        );
        assert_eq!(UnixMillis::new(1_700_999).to_secs(), UnixSecs::new(1_700));
        assert_eq!(UnixMillis::new(999).to_secs(), UnixSecs::EPOCH);
    }

    #[test]
    fn durations_neither_wrap_nor_go_below_the_epoch() {
        let t = UnixSecs::new(100);
        assert_eq!(t.checked_add_secs(5), Some(UnixSecs::new(105)));
        assert_eq!(UnixSecs::new(u64::MAX).checked_add_secs(1), None);
        assert_eq!(
            UnixSecs::new(u64::MAX).saturating_add_secs(1),
            UnixSecs::new(u64::MAX)
        );
        assert_eq!(t.saturating_sub_secs(500), UnixSecs::EPOCH);
        assert_eq!(t.secs_since(UnixSecs::new(40)), 60);
        assert_eq!(t.secs_since(UnixSecs::new(400)), 0);
        assert_eq!(
            UnixMillis::new(5_000).millis_since(UnixMillis::new(1_500)),
            3_500
        );
    }

    #[test]
    fn utc_and_display() {
        assert_eq!(UnixSecs::EPOCH.utc(), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            UnixSecs::new(1_796_593_967).utc(),
            "2026-12-06 21:52:47 UTC"
        );
        assert_eq!(
            UnixMillis::new(1_796_593_967_999).utc(),
            "2026-12-06 21:52:47 UTC"
        );
        assert_eq!(
            UnixMillis::new(1_700_000_000_000).utc(),
            "2023-11-14 22:13:20 UTC"
        );
        // A leap day, and the last second of a century year that is not a leap year.
        assert_eq!(
            UnixMillis::new(951_782_400_000).utc(),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(
            UnixMillis::new(4_107_542_399_999).utc(),
            "2100-02-28 23:59:59 UTC"
        );
        assert_eq!(UnixSecs::new(42).to_string(), "42");
        assert_eq!(UnixMillis::new(42_000).to_string(), "42000");
    }
}
