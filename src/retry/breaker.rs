//! Circuit breakers per worker and per hardware class: closed → open after `threshold`
//! failures within `window_s`; open → half-open after `recovery_s`; half-open → closed after
//! `success_threshold` successes, or back to open (with the recovery time multiplied by
//! `backoff_factor`, up to `max_recovery_s`) on a failure. Time is the failures' and
//! outcomes' own timestamps; no clock is read.

use std::collections::{HashMap, VecDeque};

use rustc_hash::FxBuildHasher;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

use super::RetryError;

pub use crate::config::BreakerParams;

impl BreakerParams {
    /// Validates; `field` prefixes error paths.
    pub fn check(&self, field: &str) -> Result<(), RetryError> {
        let bad = |name: &str, detail: String| RetryError::Invalid {
            field: format!("{field}.{name}"),
            detail,
        };
        if self.threshold == 0 {
            return Err(bad("threshold", "must be at least 1".into()));
        }
        if self.success_threshold == 0 {
            return Err(bad("success_threshold", "must be at least 1".into()));
        }
        for (name, v) in [("window_s", self.window_s), ("recovery_s", self.recovery_s)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(name, format!("{v} is not > 0")));
            }
        }
        if !(self.backoff_factor.is_finite() && self.backoff_factor >= 1.0) {
            return Err(bad(
                "backoff_factor",
                format!("{} is not ≥ 1", self.backoff_factor),
            ));
        }
        if !(self.max_recovery_s.is_finite() && self.max_recovery_s >= self.recovery_s) {
            return Err(bad(
                "max_recovery_s",
                format!("{} is not ≥ recovery_s", self.max_recovery_s),
            ));
        }
        Ok(())
    }
}

/// State of one breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// Traffic is diverted until the recovery time has passed.
    Open,
    /// Trials pass; successes close, a failure reopens.
    HalfOpen,
}

#[derive(Debug, Clone)]
struct Breaker {
    state: BreakerState,
    failures: VecDeque<i64>,
    opened_at: i64,
    recovery_us: i64,
    successes: u32,
}

/// A set of breakers keyed by worker id or hardware class.
#[derive(Debug, Clone)]
pub struct Breakers<K: Eq + Hash + Clone> {
    params: BreakerParams,
    map: HashMap<K, Breaker, FxBuildHasher>,
}

impl<K: Eq + Hash + Clone> Breakers<K> {
    /// Breakers with checked parameters.
    pub fn new(params: BreakerParams) -> Self {
        Breakers {
            params,
            map: HashMap::default(),
        }
    }

    /// Whether these breakers affect decisions.
    pub fn enabled(&self) -> bool {
        self.params.enabled
    }

    fn advance(p: &BreakerParams, b: &mut Breaker, now: i64) {
        // Saturating: a caller's time near the ends of i64 must not overflow (library audit).
        if b.state == BreakerState::Open && now.saturating_sub(b.opened_at) >= b.recovery_us {
            b.state = BreakerState::HalfOpen;
            b.successes = 0;
        }
        let from = now.saturating_sub((p.window_s * 1e6) as i64);
        while b.failures.front().is_some_and(|&t| t <= from) {
            b.failures.pop_front();
        }
    }

    /// Records a failure of `key` at `at`; returns the state after it.
    pub fn failure(&mut self, key: &K, at: Timestamp) -> BreakerState {
        let p = &self.params;
        let now = at.as_micros();
        // get_mut first: no key clone for known keys on the hot path.
        if !self.map.contains_key(key) {
            self.map.insert(
                key.clone(),
                Breaker {
                    state: BreakerState::Closed,
                    failures: VecDeque::new(),
                    opened_at: 0,
                    recovery_us: (p.recovery_s * 1e6) as i64,
                    successes: 0,
                },
            );
        }
        let Some(b) = self.map.get_mut(key) else {
            return BreakerState::Closed;
        };
        Self::advance(p, b, now);
        match b.state {
            BreakerState::Closed => {
                b.failures.push_back(now);
                if b.failures.len() as u32 >= p.threshold {
                    b.state = BreakerState::Open;
                    b.opened_at = now;
                    b.failures.clear();
                }
            }
            BreakerState::HalfOpen => {
                b.state = BreakerState::Open;
                b.opened_at = now;
                b.recovery_us = ((b.recovery_us as f64 * p.backoff_factor) as i64)
                    .min((p.max_recovery_s * 1e6) as i64);
            }
            BreakerState::Open => {}
        }
        b.state
    }

    /// Records a success of `key` at `at`.
    pub fn success(&mut self, key: &K, at: Timestamp) -> BreakerState {
        let p = &self.params;
        let Some(b) = self.map.get_mut(key) else {
            return BreakerState::Closed;
        };
        Self::advance(p, b, at.as_micros());
        match b.state {
            BreakerState::HalfOpen => {
                b.successes += 1;
                if b.successes >= p.success_threshold {
                    b.state = BreakerState::Closed;
                    b.failures.clear();
                    b.recovery_us = (p.recovery_s * 1e6) as i64;
                }
            }
            BreakerState::Closed => b.failures.clear(),
            BreakerState::Open => {}
        }
        b.state
    }

    /// The state of `key` at `at` (open breakers past their recovery time read half-open).
    pub fn state(&self, key: &K, at: Timestamp) -> BreakerState {
        match self.map.get(key) {
            None => BreakerState::Closed,
            Some(b)
                if b.state == BreakerState::Open
                    && at.as_micros().saturating_sub(b.opened_at) >= b.recovery_us =>
            {
                BreakerState::HalfOpen
            }
            Some(b) => b.state,
        }
    }

    /// Keys whose breaker is open at `at`.
    pub fn open_keys(&self, at: Timestamp) -> Vec<K> {
        self.map
            .keys()
            .filter(|k| self.state(k, at) == BreakerState::Open)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: f64) -> Timestamp {
        Timestamp::from_secs_f64(s)
    }

    #[test]
    fn opens_half_opens_and_closes() {
        let mut b: Breakers<&str> = Breakers::new(BreakerParams::worker());
        for i in 0..4 {
            assert_eq!(b.failure(&"w", t(i as f64)), BreakerState::Closed);
        }
        assert_eq!(b.failure(&"w", t(4.0)), BreakerState::Open);
        assert_eq!(b.state(&"w", t(30.0)), BreakerState::Open);
        assert_eq!(b.state(&"w", t(64.0)), BreakerState::HalfOpen);
        // A failed trial reopens with twice the recovery time.
        assert_eq!(b.failure(&"w", t(65.0)), BreakerState::Open);
        assert_eq!(b.state(&"w", t(65.0 + 100.0)), BreakerState::Open);
        assert_eq!(b.state(&"w", t(65.0 + 120.0)), BreakerState::HalfOpen);
        for i in 0..2 {
            assert_eq!(b.success(&"w", t(190.0 + i as f64)), BreakerState::HalfOpen);
        }
        assert_eq!(b.success(&"w", t(193.0)), BreakerState::Closed);
        assert_eq!(b.open_keys(t(200.0)), Vec::<&str>::new());
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut b: Breakers<&str> = Breakers::new(BreakerParams::worker());
        for i in 0..10 {
            assert_eq!(b.failure(&"w", t(i as f64 * 20.0)), BreakerState::Closed);
        }
        // Equal timestamps are fine.
        for _ in 0..5 {
            b.failure(&"x", t(1.0));
        }
        assert_eq!(b.state(&"x", t(1.0)), BreakerState::Open);
    }

    #[test]
    fn each_validation_error() {
        let e = |p: BreakerParams| p.check("breakers.worker").unwrap_err().to_string();
        assert!(e(BreakerParams {
            threshold: 0,
            ..BreakerParams::worker()
        })
        .contains("breakers.worker.threshold"));
        assert!(e(BreakerParams {
            success_threshold: 0,
            ..BreakerParams::worker()
        })
        .contains("success_threshold"));
        assert!(e(BreakerParams {
            window_s: 0.0,
            ..BreakerParams::worker()
        })
        .contains("window_s"));
        assert!(e(BreakerParams {
            recovery_s: -1.0,
            ..BreakerParams::worker()
        })
        .contains("recovery_s"));
        assert!(e(BreakerParams {
            backoff_factor: 0.5,
            ..BreakerParams::worker()
        })
        .contains("backoff_factor"));
        assert!(e(BreakerParams {
            max_recovery_s: 1.0,
            ..BreakerParams::worker()
        })
        .contains("max_recovery_s"));
    }
}
