//! Timestamps passed in by callers. Nothing in a decision reads the wall clock: the CLI and
//! the API decide what "now" is for a report without a timestamp.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From microseconds since the epoch.
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    /// From (possibly fractional) seconds since the epoch.
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
        (self.0 - earlier.0) as f64 / 1e6
    }

    /// The current wall-clock time. Only the binary and the API edge call this.
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_micros())
    }

    /// Parses RFC 3339, a naive ISO date-time (taken as UTC), or seconds since the epoch.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Timestamp(dt.timestamp_micros()));
        }
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
                return Some(Timestamp(dt.and_utc().timestamp_micros()));
            }
        }
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Self::from_secs_f64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<'a> {
            Num(f64),
            Str(std::borrow::Cow<'a, str>),
        }
        match Raw::deserialize(d)? {
            Raw::Num(f) if f.is_finite() => Ok(Timestamp::from_secs_f64(f)),
            Raw::Num(f) => Err(serde::de::Error::custom(format!("invalid timestamp {f}"))),
            Raw::Str(s) => Timestamp::parse(&s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid timestamp '{s}' (expected RFC 3339, ISO date-time or epoch seconds)"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
