//! Timestamps passed in by callers. Nothing in a decision reads the wall clock: the CLI and
//! the API decide what "now" is for a report without a timestamp.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Numeric epoch timestamps at or above this magnitude are milliseconds (10¹¹ s is in the
/// year 5138).
const EPOCH_MS_FROM: f64 = 1e11;
/// ... microseconds.
const EPOCH_US_FROM: f64 = 1e14;
/// ... nanoseconds.
const EPOCH_NS_FROM: f64 = 1e17;

/// Microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(i64);

/// The earliest time a caller's timestamp may give: 0000-01-01T00:00:00Z (RFC 3339 has
/// four-digit years; a time before it was once accepted and then written where it could not
/// be read back).
const MIN_US: i64 = -62_167_219_200_000_000;
/// The latest: 9999-12-31T23:59:59.999999Z.
const MAX_US: i64 = 253_402_300_799_999_999;

/// `us` as a timestamp when it is within years 0000–9999.
fn within_years(us: i64) -> Option<Timestamp> {
    (MIN_US..=MAX_US).contains(&us).then_some(Timestamp(us))
}

/// Why a time a live caller gave cannot be the time of a failure happening now (see
/// [`Timestamp::check_live`]).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum LiveTimeError {
    /// Before [`Timestamp::EARLIEST_LIVE`]: a placeholder (`0`), not a time.
    #[error("{0} is before 1973: not the time of a failure")]
    BeforeEarliest(Timestamp),
    /// Further ahead of the caller's clock than it allows.
    #[error(
        "{at} is {ahead_s:.3} s ahead of the clock ({now}); at most {max_ahead_s} s is accepted"
    )]
    Ahead {
        /// The time given.
        at: Timestamp,
        /// The caller's clock.
        now: Timestamp,
        /// Seconds `at` is ahead of `now`.
        ahead_s: f64,
        /// The most allowed.
        max_ahead_s: f64,
    },
}

impl Timestamp {
    /// The earliest time a live failure, outcome or state change may carry:
    /// 1973-03-03T09:46:40Z (10⁸ s after the epoch). Earlier is a placeholder such as `0`:
    /// a client sending one for every failure had each taken for a retry of the first.
    pub const EARLIEST_LIVE: Timestamp = Timestamp(100_000_000_000_000);

    /// Checks a time given by a caller reporting something that happens now (a coordinator
    /// embedding the engine; `faultline serve` checks every time it is given so) against its clock
    /// `now`: not before [`Timestamp::EARLIEST_LIVE`] and at most `max_ahead_s` seconds ahead
    /// of `now`. A failure dated far ahead would hold the windows of the patterns, the
    /// retry budget and the breakers for every later failure (an audit: one report dated
    /// 2099 turned bad-worker and pattern detection off for the rest of the run), so a
    /// live caller checks before [`Engine::decide`](crate::engine::Engine::decide); a log
    /// read afterwards (`faultline ingest`, `analyze`) is not checked this way.
    /// [`crate::engine::CLOCK_TOLERANCE_S`] is a sensible `max_ahead_s`.
    pub fn check_live(self, now: Timestamp, max_ahead_s: f64) -> Result<(), LiveTimeError> {
        if self < Self::EARLIEST_LIVE {
            return Err(LiveTimeError::BeforeEarliest(self));
        }
        let ahead_s = self.secs_since(now);
        if ahead_s > max_ahead_s {
            return Err(LiveTimeError::Ahead {
                at: self,
                now,
                ahead_s,
                max_ahead_s,
            });
        }
        Ok(())
    }

    /// The latest timestamp any input may give or any history hold:
    /// 9999-12-31T23:59:59.999999Z.
    pub const LATEST: Timestamp = Timestamp(MAX_US);

    /// From microseconds since the epoch.
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    /// From microseconds since the epoch read from a caller's input: `None` outside the
    /// years 0000–9999, which no stored history could hold.
    pub fn from_micros_checked(us: i64) -> Option<Self> {
        within_years(us)
    }

    /// From (possibly fractional) seconds since the epoch. Saturating: a value beyond what
    /// 64 bits of microseconds hold gives the nearest end, NaN the epoch; neither is within
    /// the years 0000–9999, which [`Timestamp::from_micros_checked`] and the engine require.
    pub fn from_secs_f64(s: f64) -> Self {
        Timestamp((s * 1e6).round() as i64)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Seconds since the epoch.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        // In i128: the difference of two i64 times may not fit an i64 (library audit).
        (i128::from(self.0) - i128::from(earlier.0)) as f64 / 1e6
    }

    /// The current wall-clock time. Only the binary and the API edge call this.
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_micros())
    }

    /// A number since the Unix epoch, in the unit its magnitude says (see
    /// [`Timestamp::from_epoch`]); `None` for NaN, infinities and times outside the years
    /// 0000–9999.
    ///
    /// ```
    /// use faultline::Timestamp;
    /// let t = Timestamp::from_micros(1_741_824_000_000_000); // 2025-03-13T00:00:00Z
    /// assert_eq!(Timestamp::from_epoch_f64(1_741_824_000.0), Some(t));
    /// assert_eq!(Timestamp::from_epoch_f64(1_741_824_000_000.0), Some(t)); // ms
    /// ```
    pub fn from_epoch_f64(x: f64) -> Option<Self> {
        if !x.is_finite() {
            return None;
        }
        let us = match x.abs() {
            a if a < EPOCH_MS_FROM => x * 1e6,
            a if a < EPOCH_US_FROM => x * 1e3,
            a if a < EPOCH_NS_FROM => x,
            _ => x / 1e3,
        }
        .round();
        // i64::MAX as f64 rounds up to 2^63, which does not fit.
        if us.abs() < 9.2e18 {
            within_years(us as i64)
        } else {
            None
        }
    }

    /// An integer since the Unix epoch, read in the unit its magnitude says — the one rule
    /// for every numeric timestamp (JSON numbers, numeric strings, number columns of CSV and
    /// Parquet inputs):
    ///
    /// | magnitude | unit | e.g. (2025-03-13) |
    /// |---|---|---|
    /// | \|x\| < 10¹¹ | seconds (up to the year 5138) | `1741824000` |
    /// | 10¹¹ ≤ \|x\| < 10¹⁴ | milliseconds | `1741824000000` |
    /// | 10¹⁴ ≤ \|x\| < 10¹⁷ | microseconds | `1741824000000000` |
    /// | \|x\| ≥ 10¹⁷ | nanoseconds | `1741824000000000000` |
    ///
    /// So any time from 1973 (10⁸ s) to 5138 (10¹¹ s) is read right in any of the four
    /// units; seconds before 5138 stay seconds as they always were. (A millisecond,
    /// microsecond or nanosecond time before 1973 would be read in a coarser unit.) `None`
    /// for a time outside the years 0000–9999 (RFC 3339's).
    ///
    /// ```
    /// use faultline::Timestamp;
    /// let t = Timestamp::from_micros(1_741_824_000_000_000); // 2025-03-13T00:00:00Z
    /// for x in [1_741_824_000, 1_741_824_000_000, 1_741_824_000_000_000, 1_741_824_000_000_000_000] {
    ///     assert_eq!(Timestamp::from_epoch(x), Some(t));
    /// }
    /// assert_eq!(Timestamp::from_epoch(-12), Some(Timestamp::from_micros(-12_000_000)));
    /// ```
    pub fn from_epoch(x: i64) -> Option<Self> {
        // Compared as integers: 10¹⁷ - 1 as an f64 is 10¹⁷.
        let a = x.unsigned_abs();
        let us = if a < EPOCH_MS_FROM as u64 {
            x.checked_mul(1_000_000)?
        } else if a < EPOCH_US_FROM as u64 {
            x.checked_mul(1_000)?
        } else if a < EPOCH_NS_FROM as u64 {
            x
        } else {
            x.div_euclid(1_000)
        };
        within_years(us)
    }

    /// Parses RFC 3339 (also with an offset written `-0500`), a naive ISO date-time (taken as
    /// UTC), a date alone (its midnight, UTC), or a number since the epoch
    /// (seconds, or milliseconds, microseconds or nanoseconds by its magnitude: see
    /// [`Timestamp::from_epoch`]); `None` for a time outside the years 0000–9999.
    pub fn parse(s: &str) -> Option<Self> {
        Self::parse_any(s).and_then(|t| within_years(t.0))
    }

    fn parse_any(s: &str) -> Option<Self> {
        let s = s.trim();
        // The common shapes (`2025-03-13T00:00:00.180138`, with `Z` or `±HH:MM`) are read
        // without chrono's format machinery; anything else takes the general path below,
        // which gives the same answer for the shapes the fast path accepts.
        if let Some(t) = fast::parse(s.as_bytes()) {
            return Some(t);
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Timestamp(dt.timestamp_micros()));
        }
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
                return Some(Timestamp(dt.and_utc().timestamp_micros()));
            }
        }
        // ISO 8601 offsets without a colon (`-0500`: Python's `%z`, git, many exporters) and
        // a space before the offset; an audit found a whole dataset refused for them.
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%Y-%m-%d %H:%M:%S%.f%z",
            "%Y-%m-%d %H:%M:%S%.f %z",
        ] {
            if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
                return Some(Timestamp(dt.timestamp_micros()));
            }
        }
        // A date alone: its midnight, UTC.
        if s.len() == 10 {
            if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                return Some(Timestamp(
                    d.and_time(NaiveTime::MIN).and_utc().timestamp_micros(),
                ));
            }
        }
        // Integers exactly (an f64 holds nanoseconds to a quarter microsecond only).
        if let Ok(i) = s.parse::<i64>() {
            return Self::from_epoch(i);
        }
        s.parse::<f64>().ok().and_then(Self::from_epoch_f64)
    }

    /// The UTC date as `YYYY-MM-DD` (`1970-01-01` for times chrono cannot represent).
    pub fn date_string(self) -> String {
        let mut buf = [0u8; 10];
        match fast::date(self.0, &mut buf) {
            Some(d) => d.to_string(),
            None => DateTime::<Utc>::from_timestamp_micros(self.0)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "1970-01-01".into()),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; fast::RFC3339_MAX];
        if let Some(text) = fast::rfc3339(self.0, &mut buf) {
            return f.write_str(text);
        }
        match DateTime::<Utc>::from_timestamp_micros(self.0) {
            Some(dt) => f.write_str(&dt.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => write!(f, "{}us", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TimestampVisitor)
    }
}

/// Reads a number (since the epoch, its unit by its magnitude: [`Timestamp::from_epoch`]) or
/// a string (any form [`Timestamp::parse`] reads) without buffering the value first.
struct TimestampVisitor;

impl TimestampVisitor {
    fn number<E: de::Error>(t: Option<Timestamp>, v: impl fmt::Display) -> Result<Timestamp, E> {
        t.ok_or_else(|| E::custom(format!("invalid timestamp {v}")))
    }
}

impl de::Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RFC 3339, ISO date-time or epoch seconds")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        Self::number(Timestamp::from_epoch(v), v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        let t = match i64::try_from(v) {
            Ok(i) => Timestamp::from_epoch(i),
            Err(_) => Timestamp::from_epoch_f64(v as f64),
        };
        Self::number(t, v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
        Self::number(Timestamp::from_epoch_f64(v), v)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Timestamp, E> {
        Timestamp::parse(s).ok_or_else(|| {
            E::custom(format!(
                "invalid timestamp '{s}' (expected RFC 3339, ISO date-time or epoch seconds)"
            ))
        })
    }
}

/// Allocation-free reading and writing of the usual timestamp shapes (proleptic Gregorian,
/// years 0000–9999); `None` sends the caller to chrono.
mod fast {
    /// Longest text of [`rfc3339`]: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub const RFC3339_MAX: usize = 27;

    const DAY_US: i64 = 86_400_000_000;

    /// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The civil date of a day since 1970-01-01 (`civil_from_days`).
    fn civil_from_days(z: i64) -> (i64, i64, i64) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (
            if m <= 2 {
                yoe + era * 400 + 1
            } else {
                yoe + era * 400
            },
            m,
            d,
        )
    }

    fn days_in_month(y: i64, m: i64) -> i64 {
        match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    fn digits(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    }

    /// `YYYY-MM-DD(T| )HH:MM:SS[.f{1,9}]` then, after `T` only, an optional `Z` or `±HH:MM`.
    pub fn parse(s: &[u8]) -> Option<super::Timestamp> {
        if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
            return None;
        }
        let (y, mo, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
        let (h, mi, sec) = (
            digits(&s[11..13])?,
            digits(&s[14..16])?,
            digits(&s[17..19])?,
        );
        let t_sep = match s[10] {
            b'T' => true,
            b' ' => false,
            _ => return None,
        };
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
            return None;
        }
        if sec > 59 {
            return None; // leap seconds: chrono decides
        }
        let mut rest = &s[19..];
        let mut nanos = 0i64;
        if let Some(frac) = rest.strip_prefix(b".") {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || n > 9 {
                return None;
            }
            nanos = digits(&frac[..n])? * 10i64.pow(9 - n as u32);
            rest = &frac[n..];
        }
        let offset_s = match rest {
            [] => 0,
            [b'Z'] if t_sep => 0,
            [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] if t_sep => {
                let oh = digits(&[*oh1, *oh2])?;
                let om = digits(&[*om1, *om2])?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let o = oh * 3600 + om * 60;
                if *sign == b'-' {
                    -o
                } else {
                    o
                }
            }
            _ => return None,
        };
        let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
        Some(super::Timestamp(secs * 1_000_000 + nanos / 1000))
    }

    fn put(buf: &mut [u8], mut v: i64) {
        for b in buf.iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }

    /// Writes `YYYY-MM-DD` of `us` into `buf`.
    pub fn date(us: i64, buf: &mut [u8; 10]) -> Option<&str> {
        let (y, m, d) = civil_from_days(us.div_euclid(DAY_US));
        if !(0..=9999).contains(&y) {
            return None;
        }
        put(&mut buf[0..4], y);
        buf[4] = b'-';
        put(&mut buf[5..7], m);
        buf[7] = b'-';
        put(&mut buf[8..10], d);
        std::str::from_utf8(&buf[..]).ok()
    }

    /// Writes `us` as chrono's `to_rfc3339_opts(SecondsFormat::AutoSi, true)` does.
    pub fn rfc3339(us: i64, buf: &mut [u8; RFC3339_MAX]) -> Option<&str> {
        let (y, m, d) = civil_from_days(us.div_euclid(DAY_US));
        if !(0..=9999).contains(&y) {
            return None;
        }
        let in_day = us.rem_euclid(DAY_US);
        let (secs, micros) = (in_day / 1_000_000, in_day % 1_000_000);
        put(&mut buf[0..4], y);
        buf[4] = b'-';
        put(&mut buf[5..7], m);
        buf[7] = b'-';
        put(&mut buf[8..10], d);
        buf[10] = b'T';
        put(&mut buf[11..13], secs / 3600);
        buf[13] = b':';
        put(&mut buf[14..16], secs / 60 % 60);
        buf[16] = b':';
        put(&mut buf[17..19], secs % 60);
        let mut n = 19;
        if micros != 0 {
            buf[19] = b'.';
            if micros % 1000 == 0 {
                put(&mut buf[20..23], micros / 1000);
                n = 23;
            } else {
                put(&mut buf[20..26], micros);
                n = 26;
            }
        }
        buf[n] = b'Z';
        std::str::from_utf8(&buf[..=n]).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (library audit): the live-time check lived only in the server and the CLI;
    /// an embedding coordinator had none, and one report dated 2099 held every window.
    #[test]
    fn a_live_time_is_neither_a_placeholder_nor_far_ahead() {
        let now = Timestamp::parse("2026-12-02T12:00:00Z").unwrap();
        assert_eq!(now.check_live(now, 300.0), Ok(()));
        let ahead = Timestamp::parse("2026-12-02T12:04:59Z").unwrap();
        assert_eq!(ahead.check_live(now, 300.0), Ok(()));
        let far = Timestamp::parse("2099-01-01T00:00:00Z").unwrap();
        let err = far.check_live(now, 300.0).unwrap_err();
        assert!(matches!(err, LiveTimeError::Ahead { .. }), "{err}");
        assert!(err.to_string().contains("at most 300 s"), "{err}");
        assert_eq!(
            Timestamp::from_micros(0).check_live(now, 300.0),
            Err(LiveTimeError::BeforeEarliest(Timestamp::from_micros(0)))
        );
        // Old but real times pass: a failure an hour or a year ago.
        let old = Timestamp::parse("2025-12-02T12:00:00Z").unwrap();
        assert_eq!(old.check_live(now, 300.0), Ok(()));
        // The extremes do not overflow.
        let max = Timestamp::from_micros(i64::MAX);
        assert!(max
            .check_live(Timestamp::from_micros(i64::MIN), 300.0)
            .is_err());
    }

    #[test]
    fn parses_every_form_and_round_trips() {
        let a = Timestamp::parse("2025-03-13T00:00:00.180138").unwrap();
        let b = Timestamp::parse("2025-03-13T00:00:00.180138Z").unwrap();
        let c = Timestamp::parse("2025-03-13T01:00:00.180138+01:00").unwrap();
        let d = Timestamp::parse("1741824000.180138").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&j).unwrap(), a);
        assert_eq!(
            serde_json::from_str::<Timestamp>("12.5")
                .unwrap()
                .as_micros(),
            12_500_000
        );
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    /// The chrono forms the fast paths stand in for.
    fn chrono_text(us: i64) -> Option<String> {
        DateTime::<Utc>::from_timestamp_micros(us)
            .map(|dt| dt.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    /// What chrono reads, within the years a timestamp may give (`within_years`).
    fn chrono_parse(s: &str) -> Option<Timestamp> {
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return within_years(dt.timestamp_micros());
        }
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
                return within_years(dt.and_utc().timestamp_micros());
            }
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%Y-%m-%d %H:%M:%S%.f%z",
            "%Y-%m-%d %H:%M:%S%.f %z",
        ] {
            if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
                return within_years(dt.timestamp_micros());
            }
        }
        None
    }

    #[test]
    fn fast_paths_agree_with_chrono() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Microsecond times over years 0..=9999 and a little beyond, with round values.
        let span = 320_000_000_000_000_000i64;
        for i in 0..200_000 {
            let mut us = (next() % (span as u64)) as i64 - 64_000_000_000_000_000;
            match i % 4 {
                1 => us -= us.rem_euclid(1_000_000),
                2 => us -= us.rem_euclid(1_000),
                _ => {}
            }
            let t = Timestamp::from_micros(us);
            let want = chrono_text(us).unwrap_or_else(|| format!("{us}us"));
            let got = t.to_string();
            assert_eq!(got, want, "{us}");
            let date = DateTime::<Utc>::from_timestamp_micros(us)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "1970-01-01".into());
            assert_eq!(t.date_string(), date, "{us}");
            if let Some(text) = chrono_text(us) {
                assert_eq!(Timestamp::parse(&text), chrono_parse(&text), "{text}");
                let naive = text.trim_end_matches('Z');
                assert_eq!(Timestamp::parse(naive), chrono_parse(naive), "{naive}");
                let spaced = naive.replacen('T', " ", 1);
                assert_eq!(Timestamp::parse(&spaced), chrono_parse(&spaced), "{spaced}");
            }
        }
    }

    #[test]
    fn fast_parse_agrees_with_chrono_on_odd_shapes() {
        for s in [
            "2025-03-13T00:00:00",
            "2025-03-13T00:00:00.1",
            "2025-03-13T00:00:00.123456789",
            "2025-03-13T00:00:00.1234567891",
            "2025-03-13T00:00:00.",
            "2025-03-13T23:59:60Z",
            "2025-03-13T24:00:00Z",
            "2025-02-29T00:00:00Z",
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-00-01T00:00:00Z",
            "2025-03-00T00:00:00Z",
            "2025-04-31T00:00:00Z",
            "2025-03-13t00:00:00Z",
            "2025-03-13T00:00:00z",
            "2025-03-13 00:00:00Z",
            "2025-03-13 00:00:00+01:00",
            "2025-03-13T00:00:00+01:00",
            "2025-03-13T00:00:00-09:30",
            "2025-03-13T00:00:00+23:59",
            "2025-03-13T00:00:00+24:00",
            "2025-03-13T00:00:00+0100",
            "2025-03-13T00:00:00.5-00:00",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "1969-12-31T23:59:59.999999Z",
            "+2025-03-13T00:00:00Z",
            "2025-3-13T00:00:00Z",
            "2025-03-13T0:00:00Z",
            "2025-03-13T00:00:00ZZ",
            "2025-03-13T00:00:00 ",
        ] {
            assert_eq!(Timestamp::parse(s), chrono_parse(s.trim()), "{s}");
        }
    }

    /// Regression: epoch milliseconds were read as seconds (a last_seen in the year 57166).
    #[test]
    fn numeric_epochs_are_read_in_the_unit_their_magnitude_says() {
        let t = Timestamp::from_micros(1_741_824_000_123_000); // 2025-03-13T00:00:00.123Z
        for x in [
            "1741824000.123",
            "1741824000123",
            "1741824000123000",
            "1741824000123000000",
        ] {
            assert_eq!(Timestamp::parse(x), Some(t), "string {x}");
            assert_eq!(
                serde_json::from_str::<Timestamp>(x).unwrap(),
                t,
                "number {x}"
            );
        }
        assert_eq!(
            serde_json::from_str::<Timestamp>("1741824000123.0").unwrap(),
            t
        );
        // Either side of each boundary (10¹¹, 10¹⁴, 10¹⁷).
        let e = |x: i64| Timestamp::from_epoch(x).unwrap().as_micros();
        assert_eq!(e(99_999_999_999), 99_999_999_999_000_000); // seconds: year 5138
        assert_eq!(e(100_000_000_000), 100_000_000_000_000); // ms: 1973
        assert_eq!(e(99_999_999_999_999), 99_999_999_999_999_000);
        assert_eq!(e(100_000_000_000_000), 100_000_000_000_000); // µs
        assert_eq!(e(99_999_999_999_999_999), 99_999_999_999_999_999);
        assert_eq!(e(100_000_000_000_000_000), 100_000_000_000_000); // ns
        assert_eq!(e(-1_741_824_000_000), -1_741_824_000_000_000); // ms before 1970
        assert_eq!(e(i64::MAX), i64::MAX / 1000);
        assert_eq!(e(0), 0);
        let f = |x: f64| Timestamp::from_epoch_f64(x).map(Timestamp::as_micros);
        assert_eq!(f(99_999_999_999.5), Some(99_999_999_999_500_000));
        assert_eq!(f(1e11), Some(100_000_000_000_000));
        assert_eq!(f(1e14), Some(100_000_000_000_000));
        assert_eq!(f(1e17), Some(100_000_000_000_000));
        assert_eq!(f(1.5e19), Some(15_000_000_000_000_000));
        assert_eq!(f(f64::NAN), None);
        assert_eq!(f(f64::INFINITY), None);
        assert_eq!(f(1e30), None);
        assert_eq!(Timestamp::parse("1e30"), None);
        let big = serde_json::from_str::<Timestamp>("18446744073709551615").unwrap();
        assert_eq!(big.as_micros(), 18_446_744_073_709_552);
        assert!(serde_json::from_str::<Timestamp>("1e300")
            .unwrap_err()
            .to_string()
            .contains("invalid timestamp"));
        // Date-time strings are read as before, whatever their digits.
        assert_eq!(
            Timestamp::parse("2025-03-13T00:00:00.123Z"),
            Some(t),
            "unchanged"
        );
    }

    /// Regression (analyze audit): an ISO 8601 offset without a colon (`-0500`) and a date
    /// alone were refused, and with them every row of a real disk-failure dataset.
    #[test]
    fn offsets_without_a_colon_and_dates_alone_are_read() {
        let t = Timestamp::parse("2019-01-04T19:41:12Z").unwrap();
        for s in [
            "2019-01-04T14:41:12-0500",
            "2019-01-04T14:41:12-05:00",
            "2019-01-04 14:41:12-0500",
            "2019-01-04 14:41:12 -0500",
            "2019-01-05T01:11:12+0530",
        ] {
            assert_eq!(Timestamp::parse(s), Some(t), "{s}");
        }
        assert_eq!(
            Timestamp::parse("2019-01-04T14:41:12.250-0500"),
            Some(Timestamp::from_micros(t.as_micros() + 250_000))
        );
        assert_eq!(
            Timestamp::parse("2015-10-18"),
            Timestamp::parse("2015-10-18T00:00:00Z")
        );
        for bad in [
            "2019-01-04T14:41:12-05",
            "2015-10-32",
            "2019-01-04T14:41:12 EST",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn non_timestamps_are_rejected_with_the_expected_forms() {
        for bad in ["true", "null", "[1]", "{}"] {
            let e = serde_json::from_str::<Timestamp>(bad).unwrap_err();
            assert!(
                e.to_string()
                    .contains("RFC 3339, ISO date-time or epoch seconds"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            serde_json::from_str::<Timestamp>("-12")
                .unwrap()
                .as_micros(),
            -12_000_000
        );
        assert_eq!(
            serde_json::from_str::<Timestamp>("1741824000")
                .unwrap()
                .as_micros(),
            1_741_824_000_000_000
        );
    }

    /// Found by an audit: a time before the year 0 was accepted (HTTP 200), written into a
    /// partition `date=-0001-12-31` whose rows could not be read back, and the data directory
    /// could not be opened again. Times outside the years 0000–9999 are refused on every path.
    #[test]
    fn times_outside_the_years_0000_to_9999_are_refused() {
        let first = Timestamp::parse("0000-01-01T00:00:00Z").unwrap();
        assert_eq!(first.as_micros(), MIN_US);
        let last = Timestamp::parse("9999-12-31T23:59:59.999999Z").unwrap();
        assert_eq!(last.as_micros(), MAX_US);
        assert_eq!(Timestamp::parse(&first.to_string()), Some(first));
        assert_eq!(Timestamp::parse(&last.to_string()), Some(last));
        for bad in [
            "-62167219201",
            "-99999999999999",
            "-62167219200.5",
            "+10000-01-01T00:00:00Z",
            "0000-01-01T00:00:00+01:00",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
            let json = if bad.starts_with(['+', '0']) {
                format!("\"{bad}\"")
            } else {
                bad.to_string()
            };
            let e = serde_json::from_str::<Timestamp>(&json).unwrap_err();
            assert!(e.to_string().contains("invalid timestamp"), "{bad}: {e}");
        }
        assert_eq!(Timestamp::from_epoch(-62_167_219_201), None);
        assert_eq!(Timestamp::from_epoch_f64(-62_167_219_201.0), None);
        assert_eq!(
            Timestamp::from_epoch(-62_167_219_200),
            Some(Timestamp::from_micros(MIN_US))
        );
    }
}
