//! Tier 3 — retry policy: exponential backoff with jitter, per-kind policies, maximum
//! attempts, and a retry budget against retry storms.
//!
//! The delay for attempt `n` (1-based) is `min(cap, jitter(base · factorⁿ⁻¹))`: the cap is
//! applied after jitter, so no mode ever exceeds it. The power is taken in floating point, so
//! attempt 1,000,000 is simply the cap and no exponent overflows. All randomness comes from a
//! caller-provided RNG (seeded from config), never from a global.

pub mod breaker;

use std::collections::VecDeque;

pub use crate::config::{BackoffParams, BudgetParams, Jitter, RetryParams};
use crate::model::{FailureKind, Timestamp};
use rand::Rng;

/// Errors of retry parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetryError {
    /// A parameter is out of range.
    #[error("invalid retry parameter {field}: {detail}")]
    Invalid {
        /// Field path, e.g. `retry.policies.network.cap_s`.
        field: String,
        /// Why.
        detail: String,
    },
}

/// Checked backoff parameters; the only kind that computes delays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: f64,
    factor: f64,
    cap: f64,
    jitter: Jitter,
}

impl BackoffParams {
    /// Validates into a [`Backoff`]; `field` prefixes error paths.
    pub fn check(&self, field: &str) -> Result<Backoff, RetryError> {
        let bad = |name: &str, detail: String| RetryError::Invalid {
            field: format!("{field}.{name}"),
            detail,
        };
        if !(self.base_s.is_finite() && self.base_s >= 0.0) {
            return Err(bad("base_s", format!("{} is not ≥ 0", self.base_s)));
        }
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(bad("factor", format!("{} is not ≥ 1", self.factor)));
        }
        if !(self.cap_s.is_finite() && self.cap_s >= self.base_s) {
            return Err(bad(
                "cap_s",
                format!("{} is not ≥ base_s ({})", self.cap_s, self.base_s),
            ));
        }
        Ok(Backoff {
            base: self.base_s,
            factor: self.factor,
            cap: self.cap_s,
            jitter: self.jitter,
        })
    }
}

impl Backoff {
    /// The un-jittered delay of `attempt` (1-based), capped. Computed in `f64` as
    /// `base · factor^(attempt-1)`: no integer exponent to overflow, non-decreasing in the
    /// attempt up to the cap for every factor ≥ 1 (a product past `f64::MAX` is infinite, which
    /// the cap absorbs), and never NaN or negative.
    pub fn nominal(&self, attempt: u32) -> f64 {
        let n = attempt.max(1) - 1;
        if self.base == 0.0 {
            return 0.0;
        }
        if self.factor == 1.0 {
            return self.base.min(self.cap);
        }
        // An earlier version clamped an integer exponent: `as u32 + 1` overflowed for factors
        // within ~1e-9 of 1, and a fixed limit of 1023 stopped growth short of the cap for
        // factors near 1. `powf` takes any exponent and is exact for representable powers.
        (self.base * self.factor.powf(f64::from(n))).min(self.cap)
    }

    /// The jittered delay of `attempt` (1-based). `previous` is the delay issued for the
    /// previous attempt of the same task (used by decorrelated jitter).
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, previous: Option<f64>, rng: &mut R) -> f64 {
        let d = self.nominal(attempt);
        let v = match self.jitter {
            Jitter::None => d,
            Jitter::Full => rng.gen::<f64>() * d,
            Jitter::Equal => d / 2.0 + rng.gen::<f64>() * (d / 2.0),
            Jitter::Decorrelated => {
                let prev = previous.unwrap_or(self.base).max(self.base);
                let hi = (prev * 3.0).min(self.cap).max(self.base);
                self.base + rng.gen::<f64>() * (hi - self.base)
            }
        };
        v.clamp(0.0, self.cap)
    }

    /// The cap.
    pub fn cap(&self) -> f64 {
        self.cap
    }
}

impl BudgetParams {
    /// Validates into a [`RetryBudget`].
    pub fn check(&self) -> Result<RetryBudget, RetryError> {
        if !(self.window_s.is_finite() && self.window_s > 0.0) {
            return Err(RetryError::Invalid {
                field: "retry.budget.window_s".into(),
                detail: format!("{} is not > 0", self.window_s),
            });
        }
        if !(self.ratio.is_finite() && self.ratio >= 0.0) {
            return Err(RetryError::Invalid {
                field: "retry.budget.ratio".into(),
                detail: format!("{} is not ≥ 0", self.ratio),
            });
        }
        Ok(RetryBudget {
            enabled: self.enabled,
            window_us: (self.window_s * 1e6) as i64,
            min_retries: self.min_retries,
            ratio: self.ratio,
            firsts: VecDeque::new(),
            retries: VecDeque::new(),
        })
    }
}

/// A sliding-window retry budget over report timestamps.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    enabled: bool,
    window_us: i64,
    min_retries: u32,
    ratio: f64,
    firsts: VecDeque<i64>,
    retries: VecDeque<i64>,
}

impl RetryBudget {
    fn expire(&mut self, now: i64) {
        // Saturating: a caller's time near the ends of i64 must not overflow (library audit).
        let from = now.saturating_sub(self.window_us);
        while self.firsts.front().is_some_and(|&t| t <= from) {
            self.firsts.pop_front();
        }
        while self.retries.front().is_some_and(|&t| t <= from) {
            self.retries.pop_front();
        }
    }

    /// Records the first failure of a task (a deposit).
    pub fn deposit(&mut self, at: Timestamp) {
        if self.enabled {
            self.expire(at.as_micros());
            self.firsts.push_back(at.as_micros());
        }
    }

    /// Whether one more retry at `at` fits the budget (does not spend it).
    pub fn allows(&mut self, at: Timestamp) -> bool {
        if !self.enabled {
            return true;
        }
        self.expire(at.as_micros());
        let allowed = self.min_retries as f64 + self.ratio * self.firsts.len() as f64;
        (self.retries.len() as f64) < allowed
    }

    /// Whether one more retry at `at` fits the budget, forgetting nothing: the same answer as
    /// [`RetryBudget::allows`] without its change of state. A decision that does not retry
    /// must leave the budget as the replay of its action does (a restarted engine replays
    /// only the actions), so the ranking asks this one.
    pub fn would_allow(&self, at: Timestamp) -> bool {
        if !self.enabled {
            return true;
        }
        let from = at.as_micros().saturating_sub(self.window_us);
        let live = |q: &VecDeque<i64>| q.len() - q.iter().take_while(|&&t| t <= from).count();
        let allowed = self.min_retries as f64 + self.ratio * live(&self.firsts) as f64;
        (live(&self.retries) as f64) < allowed
    }

    /// Spends one retry at `at`.
    pub fn record_retry(&mut self, at: Timestamp) {
        if self.enabled {
            self.expire(at.as_micros());
            self.retries.push_back(at.as_micros());
        }
    }

    /// Asks to spend one retry at `at`; returns false when the budget is exhausted.
    pub fn try_withdraw(&mut self, at: Timestamp) -> bool {
        let ok = self.allows(at);
        if ok {
            self.record_retry(at);
        }
        ok
    }
}

/// Checked retry policy.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    by_kind: [Backoff; FailureKind::ALL.len()],
    /// A task's failures beyond this number are escalated.
    pub max_attempts: u32,
}

impl RetryParams {
    /// Validates the whole retry section.
    pub fn check(&self) -> Result<(RetryPolicy, RetryBudget), RetryError> {
        let default = self.default.check("retry.default")?;
        let mut by_kind = [default; FailureKind::ALL.len()];
        for (name, p) in &self.policies {
            let kind: FailureKind =
                name.parse()
                    .map_err(|e: crate::model::ParseEnumError| RetryError::Invalid {
                        field: format!("retry.policies.{name}"),
                        detail: e.to_string(),
                    })?;
            by_kind[kind.index()] = p.check(&format!("retry.policies.{name}"))?;
        }
        if self.max_attempts == 0 {
            return Err(RetryError::Invalid {
                field: "retry.max_attempts".into(),
                detail: "must be at least 1".into(),
            });
        }
        Ok((
            RetryPolicy {
                by_kind,
                max_attempts: self.max_attempts,
            },
            self.budget.check()?,
        ))
    }
}

impl RetryPolicy {
    /// The backoff for `kind`.
    pub fn backoff(&self, kind: FailureKind) -> &Backoff {
        &self.by_kind[kind.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (review): `[retry.policies.Network]` sat beside the built-in `network`
    /// policy and lost to it in the check; it now replaces it.
    #[test]
    fn a_policy_named_in_another_case_is_the_one_in_force() {
        let c: crate::config::EngineConfig = toml::from_str(
            "[retry.policies.Network]\nbase_s = 0.5\ncap_s = 0.5\njitter = \"none\"\n",
        )
        .unwrap();
        let (policy, _) = c.retry.check().unwrap();
        assert_eq!(policy.backoff(FailureKind::Network).nominal(1), 0.5);
    }
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn params(jitter: Jitter) -> Backoff {
        BackoffParams {
            jitter,
            ..Default::default()
        }
        .check("t")
        .unwrap()
    }

    #[test]
    fn seed_growth_and_cap() {
        let b = params(Jitter::None);
        assert_eq!(b.nominal(1), 2.0);
        assert_eq!(b.nominal(2), 4.0);
        assert_eq!(b.nominal(3), 8.0);
        assert_eq!(b.nominal(10), 60.0);
        assert_eq!(b.nominal(1_000_000), 60.0);
        assert_eq!(b.nominal(u32::MAX), 60.0);
    }

    /// Regression: the exponent clamp `ceil(ln(cap/base)/ln(factor)) as u32 + 1` overflowed
    /// (a panic in debug builds) for factors within ~1e-9 of 1, and `.min(1023)` froze the
    /// delay below the cap for factors near 1 past attempt 1024.
    #[test]
    fn factors_near_one_neither_overflow_nor_stop_short_of_the_cap() {
        let b = |factor: f64, cap_s: f64| {
            BackoffParams {
                base_s: 1.0,
                factor,
                cap_s,
                jitter: Jitter::None,
            }
            .check("t")
            .unwrap()
        };
        let tiny = b(1.0 + 1e-12, 30.0);
        for a in [1, 2, 1_000_000, u32::MAX] {
            let d = tiny.nominal(a);
            assert!((1.0..=30.0).contains(&d), "attempt {a}: {d}");
        }
        assert!(tiny.nominal(u32::MAX) > tiny.nominal(1_000_000));
        // 1.001^n reaches 1e6 only after ~13,800 attempts.
        let slow = b(1.001, 1e6);
        assert!(slow.nominal(2_000) > slow.nominal(1_025));
        assert!(slow.nominal(1_025) > slow.nominal(1_024));
        assert_eq!(slow.nominal(20_000), 1e6);
        assert_eq!(slow.nominal(u32::MAX), 1e6);
    }

    #[test]
    fn equal_jitter_bounds_for_first_attempts() {
        let b = params(Jitter::Equal);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for _ in 0..1000 {
            let d1 = b.delay(1, None, &mut rng);
            assert!((1.0..=2.0).contains(&d1), "{d1}");
            let d3 = b.delay(3, None, &mut rng);
            assert!((4.0..=8.0).contains(&d3), "{d3}");
        }
    }

    #[test]
    fn each_validation_error() {
        let e = |p: BackoffParams| p.check("x").unwrap_err().to_string();
        assert!(e(BackoffParams {
            base_s: -1.0,
            ..Default::default()
        })
        .contains("x.base_s"));
        assert!(e(BackoffParams {
            factor: 0.5,
            ..Default::default()
        })
        .contains("x.factor"));
        assert!(e(BackoffParams {
            cap_s: 1.0,
            ..Default::default()
        })
        .contains("x.cap_s"));
        let mut r = RetryParams::default();
        r.policies.insert("oom".into(), BackoffParams::default());
        let m = r.check().unwrap_err().to_string();
        assert!(
            m.contains("retry.policies.oom") && m.contains("unknown failure kind"),
            "{m}"
        );
        let r = RetryParams {
            max_attempts: 0,
            ..Default::default()
        };
        assert!(r.check().unwrap_err().to_string().contains("max_attempts"));
        let r = RetryParams {
            budget: BudgetParams {
                window_s: 0.0,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(r.check().unwrap_err().to_string().contains("window_s"));
    }

    #[test]
    fn budget_limits_retry_storms_and_refills() {
        let (_, mut b) = RetryParams {
            budget: BudgetParams {
                enabled: true,
                window_s: 10.0,
                min_retries: 2,
                ratio: 0.5,
            },
            ..Default::default()
        }
        .check()
        .unwrap();
        let t = |s: f64| Timestamp::from_secs_f64(s);
        b.deposit(t(0.0));
        b.deposit(t(0.0));
        // 2 + 0.5 × 2 = 3 retries allowed in the window.
        assert!(b.try_withdraw(t(1.0)));
        assert!(b.try_withdraw(t(1.0)));
        assert!(b.try_withdraw(t(1.0)));
        assert!(!b.try_withdraw(t(1.0)));
        // After the window, the old retries expire.
        assert!(b.try_withdraw(t(12.0)));
    }

    #[test]
    fn autotraits() {
        fn ok<T: Send + Sync>() {}
        ok::<RetryPolicy>();
        ok::<RetryBudget>();
    }

    proptest! {
        /// `would_allow` answers as `allows` would, whatever the order of the times (reports
        /// of many tasks come out of order); it takes `&self`, so it changes nothing.
        #[test]
        fn would_allow_answers_as_allows(
            events in proptest::collection::vec((0u8..3, 0u32..60), 1..80),
        ) {
            let mut b = RetryParams {
                budget: BudgetParams { enabled: true, window_s: 10.0, min_retries: 1, ratio: 0.5 },
                ..Default::default()
            }
            .check()
            .unwrap()
            .1;
            for (what, s) in events {
                let t = Timestamp::from_secs_f64(f64::from(s));
                match what {
                    0 => b.deposit(t),
                    1 => b.record_retry(t),
                    _ => prop_assert_eq!(b.would_allow(t), b.clone().allows(t)),
                }
            }
        }

        #[test]
        fn delay_never_exceeds_cap(
            attempt in 1u32..2_000_000,
            base in 0.0f64..100.0,
            factor in 1.0f64..10.0,
            extra in 0.0f64..1000.0,
            mode in 0usize..4,
            seed in any::<u64>(),
            prev in proptest::option::of(0.0f64..5000.0),
        ) {
            let jitter = [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated][mode];
            let b = BackoffParams { base_s: base, factor, cap_s: base + extra, jitter }.check("p").unwrap();
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let d = b.delay(attempt, prev, &mut rng);
            prop_assert!(d.is_finite());
            prop_assert!(d >= 0.0);
            prop_assert!(d <= b.cap());
        }

        #[test]
        fn decorrelated_within_base_and_cap(
            attempt in 1u32..1000,
            base in 0.01f64..10.0,
            extra in 0.0f64..100.0,
            seed in any::<u64>(),
            prev in proptest::option::of(0.0f64..500.0),
        ) {
            let b = BackoffParams { base_s: base, factor: 2.0, cap_s: base + extra, jitter: Jitter::Decorrelated }.check("p").unwrap();
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let d = b.delay(attempt, prev, &mut rng);
            prop_assert!(d >= base && d <= base + extra, "{} not in [{}, {}]", d, base, base + extra);
        }

        /// Before jitter, delays are non-decreasing in the attempt, never above the cap and
        /// never NaN or negative, for any factor in (1, 10] (including within 1e-15 of 1) and
        /// attempts up to 1e6.
        #[test]
        fn nominal_is_monotone_and_capped_for_every_factor_and_attempt(
            base in 1e-6f64..100.0,
            factor in prop_oneof![
                (1e-15f64..1e-6).prop_map(|e| 1.0 + e),
                (1.0f64..=10.0).prop_filter("factor > 1", |f| *f > 1.0),
            ],
            extra in 0.0f64..1e7,
            a in 1u32..=1_000_000,
            step in 1u32..1_000_000,
        ) {
            let b = BackoffParams { base_s: base, factor, cap_s: base + extra, jitter: Jitter::None }.check("p").unwrap();
            let (d0, d1, d2) = (b.nominal(a), b.nominal(a + 1), b.nominal(a.saturating_add(step)));
            for d in [d0, d1, d2] {
                prop_assert!(!d.is_nan() && d >= 0.0 && d <= b.cap(), "{}", d);
            }
            prop_assert!(d0 <= d1 && d1 <= d2, "{} {} {}", d0, d1, d2);
            prop_assert!(d0 >= base.min(b.cap()));
        }

        #[test]
        fn nominal_is_monotone(base in 0.01f64..10.0, factor in 1.0f64..4.0, a in 1u32..200) {
            let b = BackoffParams { base_s: base, factor, cap_s: 1e6, jitter: Jitter::None }.check("p").unwrap();
            prop_assert!(b.nominal(a + 1) >= b.nominal(a));
        }
    }
}
