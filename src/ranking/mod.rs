//! Tier 3 — learning which recovery works: Beta–Bernoulli posteriors of success per
//! (context, strategy), with priors from the rule engine's ladder, hierarchical back-off from
//! fine to coarse contexts, discounting so recent evidence outweighs old, and selection by
//! Thompson sampling (default) or UCB among the strategies valid for the task's state.
//!
//! - **Contexts**, three levels. Coarse: (hardware class, failure kind). Fine: coarse + the
//!   engine's fine key ([`fine_key`]: classifier rule and Xid code, whether the task failed
//!   before, the worker's standing — healthy, suspect or bad). Finest: fine + the message's
//!   signature ([`message_signature`]: its words with numbers masked), which separates causes
//!   one classifier rule lumps together. Stats live in a flat array for the coarse level (no
//!   hashing on the hot path) and a map for the finer levels; all update in O(strategies) per
//!   outcome. The kind of a context is the failure's kind except for memory exhausted on a TPU
//!   or an NPU, which those runtimes report as their own error kind: it is ranked as
//!   `oom_gpu` ([`ranked_kind`]), so it learns apart from the device's other runtime errors
//!   and pools with out-of-memory evidence on the other accelerators (below).
//! - **Priors.** The strategy the rule ladder would take now gets prior mean `prior_top`, the
//!   ladder's later steps decreasing means, every other valid strategy `prior_other`, each with
//!   `prior_strength` pseudo-observations. A worker reset, which no default ladder names, has
//!   the higher `prior_reset` for a device fault on an accelerator ([`device_fault`]; not in a
//!   browser, whose reset is the browser restart on its ladder): a device stuck busy, hung or
//!   in a bad state is commonly cleared by a reset, and under `prior_other` such a cure was
//!   found late or never. A failure whose message says the device is held busy by another
//!   process ([`crate::classify::device_busy`]: "Device or resource busy", a TPU already in
//!   use) backs the reset in its own fine context with `prior_busy`, worth `backoff_min`
//!   outcomes, where the coarser evidence says less: the device's other faults, for which a
//!   reset may fail, do not bury the cure of this one. With no evidence at all in the coarse
//!   context the ranker abstains and the rules decide — exactly the rules, not a sample from
//!   their prior.
//! - **Across classes.** A failure kind's evidence on the other hardware classes (sums kept
//!   per kind over its coarse contexts) is the coarse context's prior, worth as many
//!   pseudo-observations as the classes' agreement warrants (the same empirical-Bayes
//!   strength as below; with fewer than two classes to compare, `backoff_min`: one class's
//!   evidence lends its mean, not its certainty; `backoff_kind = false`: the ladder prior
//!   alone). A software bug or a
//!   network reset is answered alike on a CPU and a TPU; an out-of-memory may not be. An
//!   unrecognised failure (`unknown`, the classifier's catch-all) on the other classes lends
//!   its mean at `backoff_min` pseudo-observations whatever they agree on: what was not
//!   recognised on an FPGA says nothing of what was not recognised on a DSP.
//! - **Bad workers.** Outcomes on a worker called bad teach its fine contexts and the class's
//!   bad-worker evidence (across failure kinds), not the coarse context; a decision on a bad
//!   worker backs its fine context with that evidence, worth `backoff_strength` outcomes
//!   against the kind's own (`backoff_bad = false`: one context like any other). On a
//!   failing GPU moving away works whatever the message said.
//! - **Bursts.** Outcomes of failures decided during a burst of their (class, kind)
//!   ([`crate::patterns::spike`], [`burst_key`]) teach only the burst's own finer contexts,
//!   whose prior is worth `backoff_min`: a burst neither poisons the usual ranking after it
//!   ends nor has to be unlearned (`burst_apart = false`: they teach like any other).
//! - **Back-off.** Each finer posterior uses the next coarser posterior mean as its prior, so
//!   thin fine evidence leans on the coarser level. The prior is worth as many
//!   pseudo-observations as the spread of the finer contexts' rates warrants (empirical
//!   Bayes, per coarse context, strategy and level: the Beta whose variance is the observed
//!   between-context variance less what sampling explains, within `backoff_min` ..
//!   `backoff_max`), or a fixed `backoff_strength` with `backoff_adaptive = false`. Where the
//!   finer contexts do not differ (one cause under many message signatures) they pool their
//!   evidence; where they do (a bad worker's failures) they stand apart.
//! - **Another cause under one rule.** A message signature whose success rates differ from
//!   the rest of its fine context beyond chance (two-proportion z² summed over the strategies
//!   both tried, against χ² at 0.001) is another cause than the other messages
//!   its classifier rule lumps with it. Its fine prior is then worth `backoff_min`
//!   pseudo-observations for every strategy, also those it never tried, whose fine evidence
//!   is the other causes' (`backoff_distinct`): a cure of this cause that failed for them is
//!   still tried here.
//! - **Discount.** Each outcome in a context first multiplies that context's counts by
//!   `discount` (0.9995 → an effective memory of ~2000 outcomes), and the used strategy's own
//!   counts by `discount_own` as well (0.998 → ~500 of its own outcomes): a much-used strategy
//!   that stops working shows it soon (drift), while a strategy seldom used keeps its evidence
//!   longer than its context's recent outcomes would allow.
//! - **Exploration.** Thompson sampling draws each score from the posterior's normal
//!   approximation with its spread scaled by `exploration` (default 0.5: half the posterior
//!   standard deviation — less regret on stable contexts, still switching after drift), and
//!   by up to the full spread for a strategy with little evidence (`exploration_n0`): one
//!   early failure must not bury a strategy for good. Optionally (`explore_after`, off by
//!   default), a busy context tries once each valid strategy it never tried (and again while
//!   it has not failed, up to `explore_tries`): the ladder prior keeps a strategy off the
//!   ladder from ever being drawn against a good incumbent.
//! - **Continuation.** A recovery that fails costs more than its own attempt: the task needs
//!   further attempts, fewer if the failed strategy kept the options a later failure needs
//!   (a bug that travels with the task is cured on another accelerator class, not on the CPU
//!   a fallback left it on). When a failed recovery's task fails again, its next decision
//!   teaches the failed strategy's continuation: one attempt plus the expected further
//!   attempts of the ranking's choice there, (1 − its success) × its own continuation (a
//!   temporal-difference target; when the task is escalated instead, what the budget still
//!   counts, `max_attempts` + 1 − the failed recovery's attempt). A continuation is
//!   the failure's hardness — its finest context's mean continuation over all strategies,
//!   else its fine's, else its coarse context's — plus the strategy's excess, the mean of its
//!   continuations less the hardness of the failures they followed, per coarse context and
//!   shrunk towards 0 by `continuation_strength` (a strategy used mostly on hard causes is
//!   not blamed for them). Thompson sampling then ranks by expected attempts,
//!   −(1 − success draw) × (hardness + `continuation` × excess), with
//!   `continuation` = 0 the chance of success alone.
//! - **The budget.** A recovery that leaves the task b more before the escalation
//!   ([`RankContext::budget_left`]) costs at most b + 1 further attempts if it fails, and its
//!   continuation is capped there: at the last attempt every failure costs the same, and
//!   the chance of success alone decides. Where the budget is tight (b = 1 or 2) a strategy's
//!   failure costs less than with more left, and what it costs says whether the task will
//!   recover at all (a fallback a little more likely to work now, to a class where nothing
//!   cures what the task meets next): continuations learned there are kept per coarse
//!   context, b and strategy, and teach neither the loose excess nor the hardness. There a
//!   strategy's continuation is its own mean, shrunk by `continuation_strength`
//!   pseudo-continuations towards b's mean over all strategies, which stands for the
//!   hardness (the loose hardness, learned where more was left, is longer; excesses over it
//!   came out alike for every strategy and a fallback into a dead end was taken again);
//!   until b has any, the loose continuation, capped. A recovery at the last attempt
//!   (b = 0) teaches nothing, the escalation following whatever it was. With the excess
//!   mixed over all budgets and counted at half, a tight budget of 3 recovered fewer tasks
//!   than the rules (0.66 against 0.71, notebook). Not in the trained success tables: a
//!   trained ranker starts without it and ranks as with 0 until its tasks teach it (a
//!   restarted engine relearns it from its log, see `Engine::replay`).
//! - **Propensity.** UCB is deterministic (1). For Thompson sampling, the probability that
//!   the chosen strategy's draw beats every rival's, from the same (scaled) normals: the
//!   rivals' maximum approximated by one normal (Clark's moments of the maximum of two
//!   normals, folded over the rivals), then Φ((μ − μ_max)/√(κ²σ² + σ²_max)); below 0.05,
//!   where that approximation overstates (0.021 for a choice made 1.0e-4 of the time), the
//!   probability is integrated instead (see `thompson_propensity`), clamped to [10⁻⁶, 1];
//!   it is logged with every action for off-policy evaluation. (The product of
//!   the pairwise probabilities, used before, treats the comparisons as independent although
//!   they share the chosen draw: it logged 0.001 for a strategy chosen 5 % of the time.)
//!
//! An alternative ranker, a success model (one logistic regression per strategy over the
//! failure context, refit online; `ranking.ranker = "model"`), lives in [`smart`].

pub mod frames;
pub mod smart;

use std::collections::HashMap;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

pub use crate::config::RankingParams;
use crate::config::Selection;
use crate::model::{FailureKind, HardwareClass, RecoveryStrategy};
use crate::store::{SeedLevel, SeededContext, SeededStrategy};

/// Number of strategies.
pub const N: usize = RecoveryStrategy::ALL.len();

/// Errors of the ranking.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RankingError {
    /// A parameter is out of range.
    #[error("invalid ranking parameter {field}: {detail}")]
    Invalid {
        /// Field path.
        field: String,
        /// Why.
        detail: String,
    },
    /// Reading the history failed.
    #[error("cannot read the history: {0}")]
    History(String),
}

impl RankingParams {
    /// Validates the parameters.
    pub fn check(&self) -> Result<(), RankingError> {
        let bad = |f: &str, d: String| RankingError::Invalid {
            field: format!("ranking.{f}"),
            detail: d,
        };
        for (name, v) in [
            ("prior_top", self.prior_top),
            ("prior_other", self.prior_other),
        ] {
            if !(v > 0.0 && v < 1.0) {
                return Err(bad(name, format!("{v} is not in (0, 1)")));
            }
        }
        // The ladder's steps are ranked down from `prior_top` towards `prior_other`: the other
        // way round, strategies off the ladder would start above its steps (an audit).
        if self.prior_top <= self.prior_other {
            return Err(bad(
                "prior_top",
                format!(
                    "{} is not above prior_other ({}): the ladder's first step starts as the likeliest cure",
                    self.prior_top, self.prior_other
                ),
            ));
        }
        for (name, v) in [
            ("prior_reset", self.prior_reset),
            ("prior_busy", self.prior_busy),
        ] {
            if !(v == 0.0 || (v > 0.0 && v < 1.0)) {
                return Err(bad(name, format!("{v} is neither 0 (off) nor in (0, 1)")));
            }
        }
        for (name, v) in [
            ("prior_strength", self.prior_strength),
            ("backoff_strength", self.backoff_strength),
            ("backoff_min", self.backoff_min),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(name, format!("{v} is not > 0")));
            }
        }
        if !self.backoff_max.is_finite() {
            return Err(bad(
                "backoff_max",
                format!("{} is not a finite number", self.backoff_max),
            ));
        }
        if self.backoff_max < self.backoff_min {
            return Err(bad(
                "backoff_max",
                format!(
                    "{} is not ≥ backoff_min ({})",
                    self.backoff_max, self.backoff_min
                ),
            ));
        }
        for (name, v) in [
            ("discount", self.discount),
            ("discount_own", self.discount_own),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(bad(name, format!("{v} is not in (0, 1]")));
            }
        }
        for (name, v) in [
            ("escalate_below", self.escalate_below),
            ("continuation", self.continuation),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(name, format!("{v} is not in [0, 1]")));
            }
        }
        for (name, v) in [
            ("continuation_strength", self.continuation_strength),
            ("seed_strength", self.seed_strength),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(name, format!("{v} is not > 0")));
            }
        }
        for (name, v) in [
            ("exploration", self.exploration),
            ("tried_penalty", self.tried_penalty),
            ("exploration_n0", self.exploration_n0),
            ("explore_after", self.explore_after),
            ("ucb_c", self.ucb_c),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(name, format!("{v} is not ≥ 0")));
            }
        }
        if self.explore_tries == 0 {
            return Err(bad("explore_tries", "0 is not ≥ 1".into()));
        }
        self.model.check()
    }
}

impl RankingParams {
    /// Prior means of every strategy given the ladder (both rankers' prior): `prior_top` for
    /// its first step, decreasing along it, `prior_other` off it — but `prior_reset` for a
    /// worker reset off it when `device_fault` (see [`device_fault`]).
    pub fn prior_means(&self, ladder: &[RecoveryStrategy], device_fault: bool) -> [f64; N] {
        let mut m = [self.prior_other; N];
        if device_fault && self.prior_reset > 0.0 {
            m[RecoveryStrategy::ResetWorkerState.index()] = self.prior_reset;
        }
        let step = (self.prior_top - self.prior_other) / (ladder.len() as f64 + 1.0);
        for (i, s) in ladder.iter().enumerate().rev() {
            m[s.index()] = self.prior_top - step * i as f64;
        }
        m
    }
}

/// A seeded context's outcomes as counts (its strategies' successes, failures and costs; a
/// strategy named twice adds up).
pub fn seed_counts_of(c: &SeededContext) -> Counts {
    let mut counts = Counts::default();
    for s in &c.strategies {
        let k = s.strategy.index();
        counts.success[k] += s.successes;
        counts.failure[k] += s.failures;
        counts.cost[k] += s.cost;
        counts.costed[k] += s.costed;
    }
    counts
}

/// `counts` of one context as a seed: every strategy with an outcome or a cost.
pub fn seeded_context(
    (hardware_class, kind): (HardwareClass, FailureKind),
    level: SeedLevel,
    key: u64,
    counts: &Counts,
) -> SeededContext {
    let strategies = RecoveryStrategy::ALL
        .iter()
        .filter_map(|&strategy| {
            let k = strategy.index();
            let (successes, failures) = (counts.success[k], counts.failure[k]);
            let (cost, costed) = (counts.cost[k], counts.costed[k]);
            (successes != 0.0 || failures != 0.0 || cost != 0.0 || costed != 0.0).then_some(
                SeededStrategy {
                    strategy,
                    successes,
                    failures,
                    cost,
                    costed,
                },
            )
        })
        .collect();
    SeededContext {
        hardware_class,
        kind,
        level,
        key,
        strategies,
    }
}

/// Successes, failures and costs (discounted) per strategy in one context.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Counts {
    /// Successes per strategy.
    pub success: [f64; N],
    /// Failures per strategy.
    pub failure: [f64; N],
    /// Sum of reported costs per strategy.
    pub cost: [f64; N],
    /// Outcomes with a reported cost per strategy.
    pub costed: [f64; N],
    /// Sum of the further attempts tasks needed after the strategy failed here (its
    /// continuation, see [`Ranker::learn_continuation`]). Learned online; not kept on disk.
    #[serde(skip)]
    pub further: [f64; N],
    /// Continuations learned per strategy (the weights of `further` and `excess`).
    #[serde(skip)]
    pub further_n: [f64; N],
    /// Sum of each continuation's excess over the mean continuation of the failure's own
    /// finest context (what the strategy adds to how hard its failures were).
    #[serde(skip)]
    pub excess: [f64; N],
    /// Σ ln(`discount`) over the outcomes added here: one added when this stood at `a` now
    /// weighs exp(this − a) (times the own decay below). Kept for [`distinct`]; not on disk.
    #[serde(skip)]
    log_decay: f64,
    /// Σ ln(`discount_own`) per strategy over its outcomes added here.
    #[serde(skip)]
    log_decay_own: [f64; N],
    /// A finest context's own outcomes (successes, failures per strategy) as its fine context
    /// holds them: decayed on the fine context's schedule up to `in_parent_at` (the fine
    /// context's `log_decay + log_decay_own[k]` then), so that the rest of the fine context
    /// is its counts less these, brought up to date ([`distinct`]).
    #[serde(skip)]
    in_parent: [[f64; 2]; N],
    /// See `in_parent`.
    #[serde(skip)]
    in_parent_at: [f64; N],
    /// Whether this finest context held another cause than the rest of its fine context as
    /// of its latest outcome ([`distinct`], computed on the outcome path: the decision reads
    /// it).
    #[serde(skip)]
    apart: bool,
}

impl Counts {
    /// All outcomes (discounted) over the strategies.
    pub fn total(&self) -> f64 {
        self.success.iter().sum::<f64>() + self.failure.iter().sum::<f64>()
    }
    /// Adds one outcome of strategy `s`: first every count decays by `discount`, and the
    /// strategy's own by `own` as well (see [`RankingParams::discount_own`]).
    fn add(&mut self, s: usize, ok: bool, cost: Option<f64>, (discount, own): (f64, f64)) {
        self.log_decay += discount.ln();
        self.log_decay_own[s] += own.ln();
        if own < 1.0 {
            self.success[s] *= own;
            self.failure[s] *= own;
            self.cost[s] *= own;
            self.costed[s] *= own;
        }
        if discount < 1.0 {
            for v in self
                .success
                .iter_mut()
                .chain(self.failure.iter_mut())
                .chain(self.cost.iter_mut())
                .chain(self.costed.iter_mut())
            {
                *v *= discount;
            }
        }
        if ok {
            self.success[s] += 1.0;
        } else {
            self.failure[s] += 1.0;
        }
        if let Some(c) = cost.filter(|c| c.is_finite() && *c >= 0.0) {
            self.cost[s] += c;
            self.costed[s] += 1.0;
        }
    }

    /// The decay stamp of strategy `s` here: what an outcome of `s` added now is measured from
    /// (see `log_decay`).
    fn decay_stamp(&self, s: usize) -> f64 {
        self.log_decay + self.log_decay_own[s]
    }

    /// Records one outcome of strategy `s` of this (finest) context as its fine context
    /// holds it, the fine context standing at `stamp` ([`Counts::decay_stamp`]) just after
    /// taking it in.
    fn add_in_parent(&mut self, s: usize, ok: bool, stamp: f64) {
        let w = (stamp - self.in_parent_at[s]).exp();
        let c = &mut self.in_parent[s];
        c[0] *= w;
        c[1] *= w;
        c[usize::from(!ok)] += 1.0;
        self.in_parent_at[s] = stamp;
    }

    /// This (finest) context's own successes and failures of strategy `k` as its fine context
    /// `parent` holds them now.
    fn held_by(&self, parent: &Counts, k: usize) -> (f64, f64) {
        let [s, f] = self.in_parent[k];
        if s + f <= 0.0 {
            return (0.0, 0.0);
        }
        let w = (parent.decay_stamp(k) - self.in_parent_at[k]).exp();
        (s * w, f * w)
    }

    /// Adds a continuation of strategy `s` and its excess over the failure's hardness, all
    /// of them decaying by `discount` first.
    fn add_further(&mut self, s: usize, further: f64, excess: f64, discount: f64) {
        if discount < 1.0 {
            for v in self
                .further
                .iter_mut()
                .chain(self.further_n.iter_mut())
                .chain(self.excess.iter_mut())
            {
                *v *= discount;
            }
        }
        self.further[s] += further;
        self.further_n[s] += 1.0;
        self.excess[s] += excess;
    }

    /// The mean continuation over all strategies (`None` without any).
    fn further_mean(&self) -> Option<f64> {
        let n: f64 = self.further_n.iter().sum();
        (n > 0.0).then(|| self.further.iter().sum::<f64>() / n)
    }

    /// Strategy `s`'s mean excess, shrunk towards 0 by `strength` pseudo-continuations.
    fn excess_of(&self, s: usize, strength: f64) -> f64 {
        self.excess[s] / (self.further_n[s] + strength)
    }

    /// Mean reported cost of a strategy (1 when none was reported).
    pub fn mean_cost(&self, s: usize) -> f64 {
        if self.costed[s] > 0.0 {
            (self.cost[s] / self.costed[s]).max(1e-9)
        } else {
            1.0
        }
    }
}

/// How the success rates of one strategy spread over the child contexts of a coarse context
/// (one level: fine or finest), for the empirical-Bayes back-off: sums over the children of
/// their (discounted) outcomes `n`, successes `s`, `s²/n`, and the number of children with
/// outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Spread {
    n: [f64; N],
    s: [f64; N],
    s2n: [f64; N],
    m: [f64; N],
    /// [`Spread::strength`] per strategy as of the latest [`Spread::refresh`] (read on the
    /// decision path, computed on the outcome path).
    q: [f64; N],
}

impl Spread {
    /// Adds (`sign` 1) or removes (`sign` −1) a child's counts.
    fn add(&mut self, c: &Counts, sign: f64) {
        for k in 0..N {
            let n = c.success[k] + c.failure[k];
            if n > 0.0 {
                self.n[k] += sign * n;
                self.s[k] += sign * c.success[k];
                self.s2n[k] += sign * c.success[k] * c.success[k] / n;
                self.m[k] += sign;
            }
        }
    }

    /// Recomputes the kept strengths ([`Spread::strength`]) within `[lo, hi]`; `lone` where
    /// fewer than two children have evidence.
    fn refresh(&mut self, lo: f64, hi: f64, lone: f64) {
        for k in 0..N {
            self.q[k] = self.strength(k, lo, hi, lone);
        }
    }

    /// The pseudo-observations a child's prior is worth for strategy `k`: the Beta whose
    /// variance is the between-children variance of the success rate (method of moments:
    /// the observed variance of the children's rates less what sampling alone explains),
    /// clamped to `[lo, hi]`; `hi` when the children do not differ beyond sampling noise;
    /// `lone` when fewer than two children have evidence (nothing to compare).
    fn strength(&self, k: usize, lo: f64, hi: f64, lone: f64) -> f64 {
        let w = self.n[k];
        if w <= 0.0 || self.m[k] < 2.0 {
            return lone;
        }
        let mean = (self.s[k] / w).clamp(0.0, 1.0);
        // Sums kept by adding and removing children carry rounding: a rate within 1e-9 of 0
        // or 1, or a variance within 1e-12 of none, is treated as exactly that.
        let pq = mean * (1.0 - mean);
        if pq <= 1e-9 {
            return hi;
        }
        let observed = self.s2n[k] / w - mean * mean;
        let tau2 = observed - self.m[k] * pq / w;
        if tau2 <= 1e-12 {
            return hi;
        }
        (pq / tau2 - 1.0).clamp(lo, hi)
    }
}

/// One outcome to learn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    /// Hardware class of the failure the strategy answered.
    pub class: HardwareClass,
    /// Its kind.
    pub kind: FailureKind,
    /// Its fine context key ([`fine_key`]), when known.
    pub template: Option<u64>,
    /// Its message signature ([`message_signature`]), the finest context, when known.
    pub signature: Option<u64>,
    /// The strategy applied.
    pub strategy: RecoveryStrategy,
    /// Whether it recovered the task.
    pub success: bool,
    /// What it cost, if reported.
    pub cost: Option<f64>,
    /// Whether the failure came in a burst of its (class, kind) ([`burst_key`]): then it
    /// teaches only the burst's own finer contexts, not the coarse context or the back-off
    /// spreads.
    pub burst: bool,
    /// Whether the failed worker was called bad when the strategy was chosen: the outcome
    /// also teaches the class's bad-worker evidence (across failure kinds).
    pub bad_worker: bool,
}

/// What the ranker knows about a decision.
#[derive(Debug, Clone, Copy)]
pub struct RankContext<'a> {
    /// Hardware class of the failed worker.
    pub class: HardwareClass,
    /// Classified kind.
    pub kind: FailureKind,
    /// Fine context key ([`fine_key`]), when known.
    pub template: Option<u64>,
    /// Message signature ([`message_signature`]), refining the fine context, when known.
    pub signature: Option<u64>,
    /// The rule ladder's remaining steps from the task's position, in order (the first is
    /// what the rules would do now).
    pub ladder: &'a [RecoveryStrategy],
    /// Strategies that can be carried out in the task's state (ESCALATION excluded).
    pub valid: &'a [RecoveryStrategy],
    /// How often each strategy was already used for this task.
    pub tried: &'a [u32; N],
    /// Whether the failure came in a burst of its (class, kind); `template` is then the
    /// burst's key ([`burst_key`]).
    pub burst: bool,
    /// Whether the failed worker is called bad: the class's bad-worker evidence (across
    /// failure kinds) then backs the fine context.
    pub bad_worker: bool,
    /// Whether the message says the device is held busy by another process
    /// ([`crate::classify::device_busy`]): a worker reset is then a likely cure
    /// ([`RankingParams::prior_busy`]).
    pub busy: bool,
    /// How many more recoveries the task's budget allows after this one (`max_attempts` −
    /// this attempt), when known: a failure of this recovery then costs at most that many
    /// attempts and the escalation that ends them, so a continuation is capped there (at
    /// the last attempt every failure costs the same, and the chance of success alone
    /// decides).
    pub budget_left: Option<u32>,
}

/// The ranker's choice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Chosen strategy.
    pub strategy: RecoveryStrategy,
    /// Probability with which it was chosen (see the module docs).
    pub propensity: f64,
    /// Posterior mean success of the chosen strategy.
    pub expected_success: f64,
    /// The chosen strategy's learned continuation for this failure (its hardness plus the
    /// strategy's excess): the further attempts the task needs if it fails (`None` from a
    /// ranker that does not learn one).
    pub continuation: Option<f64>,
}

/// Every valid strategy's posterior in one failure's contexts ([`Ranker::assess`]), per
/// index into the context's `valid` list (priors per strategy index).
struct Assessment<'s> {
    co: &'s Counts,
    fine: Option<&'s Counts>,
    finest: Option<&'s Counts>,
    /// (mean, variance, pseudo-observations).
    stats: [(f64, f64, f64); N],
    /// Thompson sampling's spread multiple.
    kappa: [f64; N],
    /// How far a score can plausibly fall from its mean.
    spread: [f64; N],
    /// The highest score every leader's draw plausibly exceeds.
    floor: f64,
    /// Pseudo-observations over all valid strategies.
    total: f64,
    /// Score means: the posterior mean, or −(1 − mean) × continuation.
    mu: [f64; N],
    /// The multiple of the success draw a score moves by (the continuation, when it counts).
    scale: [f64; N],
    /// The ladder's prior means, per strategy index.
    priors: [f64; N],
    /// How hard the failure is (see [`hardness`]).
    hardness: f64,
    /// The most further attempts a failure of this recovery can cost (the budget left and
    /// the escalation; unbounded when the budget is not known).
    cap: f64,
    /// The coarse context's index.
    index: usize,
    /// Where the budget is tight and continuations were learned there: that budget and its
    /// mean continuation over all strategies (see [`Ranker::tight_at`]), worked out once.
    tight: Option<(usize, f64)>,
}

/// Outcomes of one strategy in one context, discounted as the ranking weighs them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Evidence {
    /// Successes.
    pub successes: f64,
    /// Failures.
    pub failures: f64,
}

/// One valid strategy as the ranking sees it for a failure ([`Ranker::explain`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// The strategy.
    pub strategy: RecoveryStrategy,
    /// Its step on the rule ladder (the ladder's own number, as the action's `source.step`
    /// counts), if the ladder names it: filled in by the engine's explanation
    /// (`Engine::decide_explained`); [`Ranker::explain`], which sees only the steps still
    /// ahead, leaves it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ladder_step: Option<u32>,
    /// The prior mean the ladder gives it (`prior_top`, decreasing along the ladder,
    /// `prior_other` off it, `prior_reset` for a worker reset after a device fault).
    pub prior: f64,
    /// Posterior mean chance of success.
    pub success: f64,
    /// What the posterior is worth, in outcomes (the prior's pseudo-observations and
    /// what the back-off lends included).
    pub weight: f64,
    /// Its outcomes in the failure's (hardware class, kind).
    pub coarse: Evidence,
    /// Its outcomes in the fine context (classifier rule and Xid, repeat, the worker's
    /// standing), when that context has any outcome at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fine: Option<Evidence>,
    /// Its outcomes in the finest context (the fine one and the message's signature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finest: Option<Evidence>,
    /// The failure kind's outcomes on the other hardware classes, which lend the (class,
    /// kind) context their mean (`backoff_kind`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_classes: Option<Evidence>,
    /// On a worker called bad: the class's outcomes on its bad workers, whatever the kind,
    /// which outweigh the kind's own (`backoff_bad`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_workers: Option<Evidence>,
    /// Expected attempts to recovery with it: 1 + (1 − success) × the further attempts a
    /// failure of it leads to (`ranking.continuation` > 0, Thompson sampling only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_attempts: Option<f64>,
    /// How often it was already used for this task.
    pub tried: u32,
    /// The score the candidates are sorted by, highest first (Thompson sampling: the
    /// posterior mean, or with `continuation` the negated expected further attempts; UCB:
    /// the upper bound; expected cost: the negated cost / success).
    pub score: f64,
}

/// The online ranker.
#[derive(Debug, Clone)]
pub struct Ranker {
    params: RankingParams,
    coarse: Vec<Counts>,
    fine: HashMap<(usize, u64), Counts, FxBuildHasher>,
    /// Per coarse context: the spread of its fine children, then of its finest children.
    spread: Vec<[Spread; 2]>,
    /// Per failure kind: the spread of its coarse contexts (one per hardware class), whose
    /// sums are also the kind's evidence across classes.
    kind_spread: Vec<Spread>,
    /// Per hardware class: outcomes on workers called bad, whatever the failure kind.
    bad: Vec<Counts>,
    /// Per coarse context: the strategies' continuations learned where the budget was tight.
    tight: Vec<TightContinuations>,
}

/// Budgets left that keep continuations of their own: one and two more recoveries after the
/// failed one. With more left, or the budget not known, the coarse context's [`Counts`]
/// learn them.
const TIGHT_BUDGETS: usize = 2;

/// A coarse context's continuations learned from failed recoveries that left the task a
/// tight budget (1 or 2 more recoveries): a strategy's failure costs less there (the
/// escalation comes soon whatever follows), so these would understate what it costs with
/// more left, and what it costs here is not what it costs with more left.
#[derive(Debug, Clone, Copy, Default)]
struct TightContinuations {
    /// Per budget left − 1, per strategy: the sum of the continuations.
    further: [[f64; N]; TIGHT_BUDGETS],
    /// Their (discounted) number.
    n: [[f64; N]; TIGHT_BUDGETS],
}

impl TightContinuations {
    /// Budget `b`'s mean continuation over all strategies (`None` without any).
    fn mean(&self, b: usize) -> Option<f64> {
        let n: f64 = self.n[b].iter().sum();
        (n > 0.0).then(|| self.further[b].iter().sum::<f64>() / n)
    }
}

/// Which tight budget a recovery leaving `budget_left` more belongs to (`None`: a loose one).
fn tight_index(budget_left: Option<u32>) -> Option<usize> {
    match budget_left {
        Some(b @ 1..) if b as usize <= TIGHT_BUDGETS => Some(b as usize - 1),
        _ => None,
    }
}

/// Standard deviations beyond which a Thompson draw counts as impossible (P < 1e-9).
const SAMPLE_REACH: f64 = 6.0;

/// Number of coarse contexts: (hardware class, failure kind) pairs.
const COARSE_CONTEXTS: usize = HardwareClass::ALL.len() * FailureKind::ALL.len();

/// How hard a failure is: the mean continuation of its finest context with any, else of
/// its fine, else of its coarse context (1 with none).
fn hardness(coarse: &Counts, fine: Option<&Counts>, finest: Option<&Counts>) -> f64 {
    let mean = |c: Option<&Counts>| c.and_then(Counts::further_mean);
    mean(finest)
        .or_else(|| mean(fine))
        .or_else(|| coarse.further_mean())
        .unwrap_or(1.0)
}

fn coarse_index(class: HardwareClass, kind: FailureKind) -> usize {
    class.index() * FailureKind::ALL.len() + kind.index()
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 on erf; |error| < 1.5e-7).
fn phi_exact(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Intervals of the Φ table over [0, [`PHI_TABLE_MAX`]].
const PHI_TABLE_STEPS: usize = 512;
/// Where the Φ table ends (beyond it, [`phi_exact`]).
const PHI_TABLE_MAX: f64 = 4.0;

/// Φ at `PHI_TABLE_STEPS + 1` evenly spaced points of [0, `PHI_TABLE_MAX`].
static PHI_TABLE: std::sync::LazyLock<[f64; PHI_TABLE_STEPS + 1]> =
    std::sync::LazyLock::new(|| {
        std::array::from_fn(|i| phi_exact(i as f64 * PHI_TABLE_MAX / PHI_TABLE_STEPS as f64))
    });

/// Standard normal CDF Φ(x) and density φ(x) from the Φ table: the density is the slope of
/// the table's interval carried to x (|error| < 1e-5); beyond the table, exact.
fn phi_and_density(x: f64) -> (f64, f64) {
    let a = x.abs();
    if a < PHI_TABLE_MAX {
        let pos = a * (PHI_TABLE_STEPS as f64 / PHI_TABLE_MAX);
        let i = pos as usize;
        let t = &*PHI_TABLE;
        let slope = t[i + 1] - t[i];
        let v = t[i] + slope * (pos - i as f64);
        // The slope is the density at the interval's midpoint m; φ'(x) = −x·φ(x) carries
        // it to a.
        let h = PHI_TABLE_MAX / PHI_TABLE_STEPS as f64;
        let m = (i as f64 + 0.5) * h;
        let density = slope / h * (1.0 - m * (a - m));
        (if x >= 0.0 { v } else { 1.0 - v }, density)
    } else {
        (phi(x), density_exact(x))
    }
}

/// Standard normal density.
fn density_exact(x: f64) -> f64 {
    (-0.5 * x * x).exp() * std::f64::consts::FRAC_1_SQRT_2 * 0.5 * std::f64::consts::FRAC_2_SQRT_PI
}

/// Standard normal CDF for the logged propensity: a linearly interpolated table on |x| < 4
/// (|error| < 2e-6, no `exp` on the decision path), [`phi_exact`] beyond.
fn phi(x: f64) -> f64 {
    let a = x.abs();
    let v = if a < PHI_TABLE_MAX {
        let pos = a * (PHI_TABLE_STEPS as f64 / PHI_TABLE_MAX);
        let i = pos as usize;
        let t = &*PHI_TABLE;
        let f = pos - i as f64;
        t[i] + (t[i + 1] - t[i]) * f
    } else if a.is_finite() {
        phi_exact(a)
    } else {
        1.0
    };
    if x >= 0.0 {
        v
    } else {
        1.0 - v
    }
}

impl Ranker {
    /// An empty ranker (no evidence: it abstains everywhere).
    pub fn new(params: RankingParams) -> Result<Self, RankingError> {
        params.check()?;
        let mut empty = Spread::default();
        empty.refresh(params.backoff_min, params.backoff_max, params.backoff_max);
        let mut kind_empty = Spread::default();
        kind_empty.refresh(params.backoff_min, params.backoff_max, params.backoff_min);
        Ok(Ranker {
            params,
            coarse: vec![Counts::default(); COARSE_CONTEXTS],
            fine: HashMap::default(),
            spread: vec![[empty; 2]; COARSE_CONTEXTS],
            kind_spread: vec![kind_empty; FailureKind::ALL.len()],
            bad: vec![Counts::default(); HardwareClass::ALL.len()],
            tight: vec![TightContinuations::default(); COARSE_CONTEXTS],
        })
    }

    /// The parameters.
    pub fn params(&self) -> &RankingParams {
        &self.params
    }

    /// Records the outcome of `strategy` in a context.
    pub fn update(&mut self, o: &Observed) {
        let i = coarse_index(o.class, o.kind);
        let d = (self.params.discount, self.params.discount_own);
        if o.burst {
            // A burst is another regime: its outcomes stay in its own contexts.
            if let Some(t) = o.template {
                let k = o.strategy.index();
                self.fine
                    .entry((i, t))
                    .or_default()
                    .add(k, o.success, o.cost, d);
                if let Some(sig) = o.signature {
                    self.fine
                        .entry((i, finest_key(t, sig)))
                        .or_default()
                        .add(k, o.success, o.cost, d);
                }
            }
            return;
        }
        if o.bad_worker && self.params.backoff_bad {
            // A worker called bad is another regime: its outcomes teach the class's
            // bad-worker evidence and its own finer contexts, not the kind's usual evidence.
            self.bad[o.class.index()].add(o.strategy.index(), o.success, o.cost, d);
            if let Some(t) = o.template {
                self.add_children(i, t, o);
            }
            return;
        }
        let ks = &mut self.kind_spread[o.kind.index()];
        ks.add(&self.coarse[i], -1.0);
        self.coarse[i].add(o.strategy.index(), o.success, o.cost, d);
        ks.add(&self.coarse[i], 1.0);
        ks.refresh(
            self.params.backoff_min,
            self.params.backoff_max,
            self.params.backoff_min,
        );
        if let Some(t) = o.template {
            self.add_children(i, t, o);
        }
    }

    /// Adds an outcome to fine context `t` of coarse context `i` and to its finest context
    /// (`o.signature`), which also records it as the fine context holds it ([`distinct`]).
    fn add_children(&mut self, i: usize, t: u64, o: &Observed) {
        let k = o.strategy.index();
        let on = self.params.backoff_distinct;
        let fine = self.add_child(i, t, 0, o);
        let stamp = fine.decay_stamp(k);
        // The test reads the whole fine context beside the finest one (one map): a copy, only
        // when the test is on.
        let fine = if on { Some(*fine) } else { None };
        if let Some(sig) = o.signature {
            let x = self.add_child(i, finest_key(t, sig), 1, o);
            x.add_in_parent(k, o.success, stamp);
            x.apart = fine.is_some_and(|f| distinct(&f, x));
        }
    }

    /// Records a continuation: after `strategy` failed in (class, kind) and its fine and
    /// finest contexts (`template`, `signature` as in [`Observed`]), the task needed `further`
    /// attempts more, counting the failure that followed (learned from the task's next
    /// decision, see the module docs), its budget not known. See
    /// [`Ranker::learn_continuation_at`].
    pub fn learn_continuation(
        &mut self,
        context: (HardwareClass, FailureKind),
        finer: (Option<u64>, Option<u64>),
        strategy: RecoveryStrategy,
        further: f64,
    ) {
        self.learn_continuation_at(context, finer, strategy, further, None);
    }

    /// Records a continuation as [`Ranker::learn_continuation`] does, for a failed recovery
    /// that left the task `budget_left` more recoveries (its [`RankContext::budget_left`]).
    /// With more than two left (or not known), the finer contexts learn how hard their
    /// failures are (their mean continuation over all strategies) and the coarse context
    /// what each strategy adds to that; with one or two left, the coarse context learns the
    /// strategy's continuation where the budget is that tight, apart (the escalation soon
    /// ends whatever follows: a continuation there is shorter); with none left, nothing
    /// (the escalation follows whatever the strategy was).
    pub fn learn_continuation_at(
        &mut self,
        (class, kind): (HardwareClass, FailureKind),
        (template, signature): (Option<u64>, Option<u64>),
        strategy: RecoveryStrategy,
        further: f64,
        budget_left: Option<u32>,
    ) {
        if !(further.is_finite() && further >= 0.0) || budget_left == Some(0) {
            return;
        }
        let (i, k, d) = (
            coarse_index(class, kind),
            strategy.index(),
            self.params.discount,
        );
        let finest = match (template, signature) {
            (Some(t), Some(sig)) => Some(finest_key(t, sig)),
            _ => None,
        };
        if let Some(b) = tight_index(budget_left) {
            let t = &mut self.tight[i];
            if d < 1.0 {
                for v in t.further[b].iter_mut().chain(t.n[b].iter_mut()) {
                    *v *= d;
                }
            }
            t.further[b][k] += further;
            t.n[b][k] += 1.0;
            return;
        }
        let at = |key: Option<u64>| key.and_then(|key| self.fine.get(&(i, key)));
        let hardness = hardness(&self.coarse[i], at(template), at(finest));
        self.coarse[i].add_further(k, further, further - hardness, d);
        for key in template.into_iter().chain(finest) {
            if let Some(c) = self.fine.get_mut(&(i, key)) {
                c.add_further(k, further, 0.0, d);
            }
        }
    }

    /// Where the budget is tight (`budget_left` 1 or 2) and continuations were learned
    /// there in coarse context `i`: that budget and its mean continuation over all
    /// strategies, which stands for the failure's hardness (see [`Ranker::excess_in`]).
    fn tight_at(&self, i: usize, budget_left: Option<u32>) -> Option<(usize, f64)> {
        tight_index(budget_left).and_then(|b| self.tight[i].mean(b).map(|mean| (b, mean)))
    }

    /// Strategy `k`'s excess in coarse context `i`: the loose excess over the failure's
    /// hardness (shrunk towards 0 by `continuation_strength`), or where the budget is tight
    /// and continuations were learned there (`tight`, from [`Ranker::tight_at`]), its mean
    /// continuation there, shrunk by as many pseudo-continuations towards the budget's mean
    /// over all strategies (a strategy not yet tried there is as costly as the others),
    /// less that mean.
    fn excess_in(&self, i: usize, k: usize, tight: Option<(usize, f64)>) -> f64 {
        let strength = self.params.continuation_strength;
        match tight {
            Some((b, mean)) => {
                let t = &self.tight[i];
                (t.further[b][k] + strength * mean) / (t.n[b][k] + strength) - mean
            }
            None => self.coarse[i].excess_of(k, strength),
        }
    }

    /// The learned continuation of `strategy` for a failure in (class, kind) whose finer
    /// contexts know nothing: the further attempts its failed recoveries needed, the
    /// context's mean plus the strategy's excess (shrunk towards 0 by
    /// `continuation_strength`), at least 1 (1 with no evidence at all).
    pub fn continuation(
        &self,
        class: HardwareClass,
        kind: FailureKind,
        strategy: RecoveryStrategy,
    ) -> f64 {
        let i = coarse_index(class, kind);
        let excess = self.excess_in(i, strategy.index(), None);
        (self.coarse[i].further_mean().unwrap_or(1.0) + excess).max(1.0)
    }

    /// Adds an outcome to a child context of coarse context `i` at `level` (0 fine, 1
    /// finest), keeping the level's spread up to date.
    fn add_child(&mut self, i: usize, key: u64, level: usize, o: &Observed) -> &mut Counts {
        let d = (self.params.discount, self.params.discount_own);
        let c = self.fine.entry((i, key)).or_default();
        let spread = &mut self.spread[i][level];
        spread.add(c, -1.0);
        c.add(o.strategy.index(), o.success, o.cost, d);
        spread.add(c, 1.0);
        spread.refresh(
            self.params.backoff_min,
            self.params.backoff_max,
            self.params.backoff_max,
        );
        c
    }

    /// Counts of a coarse context.
    pub fn counts(&self, class: HardwareClass, kind: FailureKind) -> &Counts {
        &self.coarse[coarse_index(class, kind)]
    }

    /// Outcomes on workers called bad in a hardware class, whatever the failure kind.
    pub fn bad_counts(&self, class: HardwareClass) -> &Counts {
        &self.bad[class.index()]
    }

    /// Counts of a fine context ([`fine_key`]), when it has any.
    pub fn fine_counts(
        &self,
        class: HardwareClass,
        kind: FailureKind,
        fine_key: u64,
    ) -> Option<&Counts> {
        self.fine.get(&(coarse_index(class, kind), fine_key))
    }

    /// Replaces a coarse context's counts (training from the history).
    pub fn set_counts(&mut self, class: HardwareClass, kind: FailureKind, counts: Counts) {
        let i = coarse_index(class, kind);
        let ks = &mut self.kind_spread[kind.index()];
        ks.add(&self.coarse[i], -1.0);
        self.coarse[i] = counts;
        ks.add(&self.coarse[i], 1.0);
        ks.refresh(
            self.params.backoff_min,
            self.params.backoff_max,
            self.params.backoff_min,
        );
    }

    /// Seeds a coarse context that has no evidence of its own with counts learned elsewhere
    /// (a trained model's success tables), each strategy's scaled down to at most
    /// `seed_strength` outcomes, its success rate and mean cost unchanged: the undiscounted
    /// counts of a long history would otherwise outweigh thousands of later outcomes and
    /// keep a strategy that history never tried from being explored. A strategy whose counts
    /// are not finite and non-negative is left out (and its cost when the cost is not).
    /// Returns whether the context was seeded.
    ///
    /// A context with evidence of its own is left as it is: its outcomes are this ranker's
    /// own, from which its finer contexts and continuations were learned too. Seeded counts
    /// are evidence too, so a later model does not replace an earlier one's seed; and since
    /// they are not part of the history, an engine replaying its history after a restart
    /// seeds again only the contexts that history never met. A context whose outcomes all
    /// came from workers called bad or from bursts (which teach only their own contexts)
    /// has no coarse evidence and is seeded.
    pub fn seed_counts(
        &mut self,
        class: HardwareClass,
        kind: FailureKind,
        counts: &Counts,
    ) -> bool {
        let i = coarse_index(class, kind);
        if self.coarse[i].total() > 0.0 {
            return false;
        }
        let seeded = self.capped(counts);
        if seeded.total() <= 0.0 {
            return false;
        }
        self.set_counts(class, kind, seeded);
        true
    }

    /// Seeds a finer context below (class, kind) that has no evidence of its own: `level`
    /// 0 a fine context ([`fine_key`]), 1 a finest one (a fine context refined by a message
    /// signature, as [`frames::refined_success_rates`] keys them). Each strategy's counts are
    /// scaled down to at most `seed_strength` outcomes as in [`Ranker::seed_counts`], and the
    /// level's spread (the adaptive back-off) takes the seeded context in. Returns whether it
    /// was seeded. A finer context is consulted only below a coarse context with evidence, so
    /// seed the coarse context too.
    pub fn seed_child(
        &mut self,
        (class, kind): (HardwareClass, FailureKind),
        level: usize,
        key: u64,
        counts: &Counts,
    ) -> bool {
        let i = coarse_index(class, kind);
        if level > 1 || self.fine.get(&(i, key)).is_some_and(|c| c.total() > 0.0) {
            return false;
        }
        let seeded = self.capped(counts);
        if seeded.total() <= 0.0 {
            return false;
        }
        let (lo, hi) = (self.params.backoff_min, self.params.backoff_max);
        let c = self.fine.entry((i, key)).or_default();
        let spread = &mut self.spread[i][level];
        spread.add(c, -1.0);
        *c = seeded;
        spread.add(c, 1.0);
        spread.refresh(lo, hi, hi);
        true
    }

    /// Takes a trained model's success tables in (see [`Ranker::seed_counts`] and
    /// [`Ranker::seed_child`]): [`Ranker::seed_plan`], then [`Ranker::restore_seed`] of it.
    /// Returns the plan: what was taken.
    pub fn apply_seed(&mut self, contexts: &[SeededContext]) -> Vec<SeededContext> {
        let plan = self.seed_plan(contexts);
        self.restore_seed(&plan);
        plan
    }

    /// What [`Ranker::apply_seed`] would take of `contexts`, without taking it: in order,
    /// each coarse context that has no evidence, then, when `seed_refined` is on, each finer
    /// context without evidence below a coarse context this plan seeds; each with its counts
    /// as the ranking would hold them (scaled down to `seed_strength`). What to log before
    /// taking it (an engine logs, then takes: nothing changes when the log refuses it), so
    /// that a replay takes the same contexts at the same point ([`Ranker::restore_seed`];
    /// [`crate::store::RankingSeedRow`]).
    pub fn seed_plan(&self, contexts: &[SeededContext]) -> Vec<SeededContext> {
        let mut plan: Vec<SeededContext> = Vec::new();
        for c in contexts {
            let at = (c.hardware_class, c.kind);
            let i = coarse_index(at.0, at.1);
            let free = match c.level {
                SeedLevel::Coarse => {
                    self.coarse[i].total() <= 0.0
                        && !plan.iter().any(|p| {
                            p.level == SeedLevel::Coarse && (p.hardware_class, p.kind) == at
                        })
                }
                _ => {
                    self.params.seed_refined
                        && plan.iter().any(|p| {
                            p.level == SeedLevel::Coarse && (p.hardware_class, p.kind) == at
                        })
                        && !self.fine.get(&(i, c.key)).is_some_and(|f| f.total() > 0.0)
                        && !plan.iter().any(|p| {
                            p.level != SeedLevel::Coarse
                                && (p.hardware_class, p.kind) == at
                                && p.key == c.key
                        })
                }
            };
            if !free {
                continue;
            }
            let capped = self.capped(&seed_counts_of(c));
            if capped.total() > 0.0 {
                plan.push(seeded_context(at, c.level, c.key, &capped));
            }
        }
        plan
    }

    /// Takes in a [`Ranker::seed_plan`] as it was made (its counts as they are, whatever
    /// `seed_strength` and `seed_refined` say now): what a replay does with a logged seed.
    /// A context that has evidence by now is left as it is (a replay meets the same state as
    /// the engine that logged it, so none has).
    pub fn restore_seed(&mut self, plan: &[SeededContext]) {
        let (lo, hi) = (self.params.backoff_min, self.params.backoff_max);
        for c in plan {
            let (class, kind) = (c.hardware_class, c.kind);
            let i = coarse_index(class, kind);
            let counts = seed_counts_of(c);
            if counts.total() <= 0.0 {
                continue;
            }
            match c.level {
                SeedLevel::Coarse => {
                    if self.coarse[i].total() <= 0.0 {
                        self.set_counts(class, kind, counts);
                    }
                }
                level => {
                    let level = usize::from(level == SeedLevel::Finest);
                    let f = self.fine.entry((i, c.key)).or_default();
                    if f.total() > 0.0 {
                        continue;
                    }
                    let spread = &mut self.spread[i][level];
                    spread.add(f, -1.0);
                    *f = counts;
                    spread.add(f, 1.0);
                    spread.refresh(lo, hi, hi);
                }
            }
        }
    }

    /// `counts` with each strategy's outcomes scaled down to at most `seed_strength` (its
    /// success rate and mean cost unchanged); a strategy whose counts are not finite and
    /// non-negative is left out (and its cost when the cost is not).
    fn capped(&self, counts: &Counts) -> Counts {
        let cap = self.params.seed_strength;
        let mut seeded = Counts::default();
        let usable = |v: f64| v.is_finite() && v >= 0.0;
        for s in 0..N {
            let (ok, failed) = (counts.success[s], counts.failure[s]);
            let n = ok + failed;
            if !(usable(ok) && usable(failed) && n > 0.0) {
                continue;
            }
            let f = n.min(cap) / n;
            seeded.success[s] = ok * f;
            seeded.failure[s] = failed * f;
            if counts.costed[s] > 0.0 && counts.costed[s].is_finite() && usable(counts.cost[s]) {
                seeded.cost[s] = counts.cost[s] * f;
                seeded.costed[s] = counts.costed[s] * f;
            }
        }
        seeded
    }

    /// Prior mean of `s` given the ladder.
    #[cfg(test)]
    fn prior_mean(&self, s: RecoveryStrategy, ladder: &[RecoveryStrategy]) -> f64 {
        self.prior_means(ladder, false)[s.index()]
    }

    /// [`RankingParams::prior_means`].
    fn prior_means(&self, ladder: &[RecoveryStrategy], device_fault: bool) -> [f64; N] {
        self.params.prior_means(ladder, device_fault)
    }

    /// Posterior (α, β) of strategy `s` given the coarse and (optional) finer counts.
    #[cfg(test)]
    fn posterior(
        &self,
        co: &Counts,
        finer: [Option<&Counts>; 2],
        c: &RankContext<'_>,
        s: RecoveryStrategy,
    ) -> (f64, f64) {
        let m = self.prior_mean(s, c.ladder);
        let q = self.params.backoff_strength;
        self.posterior_with(
            None,
            co,
            None,
            finer,
            false,
            |_| q,
            m,
            0.0,
            c.tried,
            s.index(),
        )
    }

    /// Posterior (α, β) of strategy index `k` with prior mean `m`; `lift` > 0: the finer
    /// contexts start from at least that mean (a device held busy, `prior_busy`). A plain
    /// number, not an `Option`: the decision benchmark's p50 was 0.2 µs slower with one.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn posterior_with(
        &self,
        kind: Option<(&Spread, f64)>,
        co: &Counts,
        bad: Option<&Counts>,
        finer: [Option<&Counts>; 2],
        finest_apart: bool,
        strength: impl Fn(usize) -> f64,
        m: f64,
        lift: f64,
        tried: &[u32; N],
        k: usize,
    ) -> (f64, f64) {
        let p = self.params.prior_strength;
        let (mut a, mut b) = (p * m, p * (1.0 - m));
        if let Some((ks, q)) = kind {
            // The kind's evidence on the other hardware classes (the kind's sums less this
            // context's own), worth at most `q` outcomes, is the coarse context's prior.
            let n = co.success[k] + co.failure[k];
            let other_n = ks.n[k] - n;
            if other_n > 1e-9 {
                let other_s = (ks.s[k] - co.success[k]).clamp(0.0, other_n);
                (a, b) = at_most(a + other_s, b + other_n - other_s, q);
            }
        }
        a += co.success[k];
        b += co.failure[k];
        if let Some(bc) = bad {
            // On a worker called bad: what worked on the class's bad workers, whatever the
            // kind, outweighs what works for this kind on healthy ones.
            if bc.success[k] + bc.failure[k] > 0.0 {
                (a, b) = at_most(a, b, self.params.backoff_strength);
                a += bc.success[k];
                b += bc.failure[k];
            }
        }
        if lift > 0.0 && a < lift * (a + b) {
            // The message names a cure the coarser evidence (the device's other faults) says
            // less of: its own context starts from `lift`, worth `backoff_min` outcomes.
            let n = (a + b).min(self.params.backoff_min);
            (a, b) = (lift * n, (1.0 - lift) * n);
        }
        for (level, f) in finer.into_iter().enumerate() {
            let Some(f) = f else { continue };
            // A finest context that holds another cause than the rest of its fine context
            // leans on it with `backoff_min` pseudo-observations, also for strategies it has
            // not tried: the rest's evidence of them is the other causes'.
            let apart = level == 1 && finest_apart;
            if f.success[k] + f.failure[k] > 0.0 || apart {
                // Computed only where a finer context has evidence to combine with.
                let q = if apart {
                    self.params.backoff_min
                } else {
                    strength(level)
                };
                // Back-off: the coarser posterior mean, worth `backoff_strength` outcomes, is
                // the prior of the finer context — never worth more than the evidence behind
                // it (a strategy the coarser context barely tried stays uncertain below it):
                // (α, β) scaled down to `backoff_strength` pseudo-observations when above.
                (a, b) = at_most(a, b, q);
                a += f.success[k];
                b += f.failure[k];
            }
        }
        // A strategy already tried on this task is less likely to work again.
        let tried = tried[k] as f64;
        if tried > 0.0 {
            b += tried * self.params.tried_penalty;
        }
        (a, b)
    }

    /// The back-off strength of strategy `k` below coarse context `i` at `level` (0 fine,
    /// 1 finest).
    #[inline]
    fn backoff_strength(&self, i: usize, k: usize, level: usize) -> f64 {
        let p = &self.params;
        if p.backoff_adaptive {
            self.spread[i][level].q[k]
        } else {
            p.backoff_strength
        }
    }

    /// Thompson sampling's spread multiple for a posterior worth `n` pseudo-observations:
    /// `exploration` + (1 − `exploration`) · n0 / (n0 + n) with n0 = `exploration_n0` — close
    /// to plain Thompson sampling (1) for a strategy barely tried, `exploration` for one with
    /// much evidence.
    #[inline]
    fn exploration_at(&self, n: f64) -> f64 {
        let e = self.params.exploration;
        let n0 = self.params.exploration_n0;
        if n0 > 0.0 && e < 1.0 {
            e + (1.0 - e) * n0 / (n0 + n)
        } else {
            e
        }
    }

    /// Thompson sampling's first try ([`RankingParams::explore_after`]): in a busy coarse
    /// context, the index in `c.valid` of a strategy never tried in it (one at random) and
    /// how many there were to choose from.
    fn untried<R: Rng + ?Sized>(
        &self,
        c: &RankContext<'_>,
        co: &Counts,
        stats: &[(f64, f64, f64); N],
        rng: &mut R,
    ) -> Option<(usize, usize)> {
        let after = self.params.explore_after;
        if after <= 0.0
            || self.params.selection != Selection::Thompson
            || c.burst
            || c.bad_worker
            || co.total() < after
        {
            return None;
        }
        let mut untried = [0usize; N];
        let mut n = 0;
        // Untried: no failure yet and fewer successes than the tries it is owed.
        let owed = self.params.explore_tries as f64 - 0.5;
        for (j, s) in c.valid.iter().enumerate() {
            let k = s.index();
            // Evidence from elsewhere (the kind on other classes) already says something.
            let informed = stats[j].2 > self.params.prior_strength + owed;
            if co.failure[k] <= 0.0 && co.success[k] < owed && !informed {
                untried[n] = j;
                n += 1;
            }
        }
        match n {
            0 => None,
            1 => Some((untried[0], 1)),
            _ => Some((untried[rng.gen_range(0..n)], n)),
        }
    }

    /// Every valid strategy's posterior in the failure's contexts, as [`Ranker::choose`] and
    /// [`Ranker::explain`] see it; `None` when nothing is valid (or more than [`N`]).
    #[inline]
    fn assess<'s>(&'s self, c: &RankContext<'_>) -> Option<Assessment<'s>> {
        let i = coarse_index(c.class, c.kind);
        let co = &self.coarse[i];
        if c.valid.is_empty() || c.valid.len() > N {
            return None;
        }
        let fine = c.template.and_then(|t| self.fine.get(&(i, t)));
        let finest = match (fine, c.template, c.signature) {
            (Some(_), Some(t), Some(sig)) => self.fine.get(&(i, finest_key(t, sig))),
            _ => None,
        };
        let bad = (c.bad_worker && self.params.backoff_bad).then(|| &self.bad[c.class.index()]);
        // Whether the finest context holds another cause than the rest of its fine context
        // (a burst's and, with `backoff_bad`, a bad worker's contexts lean on the usual
        // evidence in their own way).
        let finest_apart = self.params.backoff_distinct
            && !c.burst
            && !(c.bad_worker && self.params.backoff_bad)
            && finest.is_some_and(|x| x.apart);
        let tight = self.tight_at(i, c.budget_left);
        let mut a = Assessment {
            co,
            fine,
            finest,
            stats: [(0.0, 0.0, 0.0); N],
            kappa: [0.0; N],
            spread: [0.0; N],
            floor: f64::NEG_INFINITY,
            total: 0.0,
            mu: [0.0; N],
            scale: [1.0; N],
            priors: [0.0; N],
            hardness: tight.map_or_else(|| hardness(co, fine, finest), |(_, mean)| mean),
            cap: c.budget_left.map_or(f64::INFINITY, |b| f64::from(b) + 1.0),
            index: i,
            tight,
        };
        let device_fault = device_fault(c.class, c.kind);
        a.priors = self.prior_means(c.ladder, device_fault);
        // A device held busy: the reset starts from `prior_busy` in the message's own context
        // (not on a worker called bad, whose evidence says move, nor in a burst).
        let busy_lift =
            if c.busy && device_fault && !c.burst && !(c.bad_worker && self.params.backoff_bad) {
                self.params.prior_busy
            } else {
                0.0
            };
        let reset = RecoveryStrategy::ResetWorkerState.index();
        // Thompson sampling's score per valid strategy: its mean, and the multiple of the
        // success draw it moves by (the continuation, when it counts).
        let lambda = match self.params.selection {
            Selection::Thompson => self.params.continuation,
            _ => 0.0,
        };
        // How hard this failure is (its finest context's mean continuation, else its fine's,
        // else its coarse context's), and what each strategy adds to that when it fails.
        let excess = |k: usize| self.excess_in(i, k, tight);
        for (j, s) in c.valid.iter().enumerate() {
            let k = s.index();
            // A burst's contexts lean on the usual evidence as little as allowed: what works
            // in a burst is what the burst says.
            let q = |level| {
                if c.burst {
                    self.params.backoff_min
                } else {
                    self.backoff_strength(i, k, level)
                }
            };
            let kind = self.params.backoff_kind.then(|| {
                let ks = &self.kind_spread[c.kind.index()];
                let q = if self.params.backoff_adaptive {
                    ks.q[k]
                } else {
                    self.params.backoff_strength
                };
                // An unrecognised failure on another class tells nothing of this class's:
                // the classifier's catch-all holds whatever it did not recognise there. Its
                // evidence lends its mean, not its weight.
                let q = if c.kind == FailureKind::Unknown {
                    q.min(self.params.backoff_min)
                } else {
                    q
                };
                (ks, q)
            });
            let (al, be) = self.posterior_with(
                kind,
                co,
                bad,
                [fine, finest],
                finest_apart,
                q,
                a.priors[k],
                if k == reset { busy_lift } else { 0.0 },
                c.tried,
                k,
            );
            let n = al + be;
            let mean = al / n;
            let var = mean * (1.0 - mean) / (n + 1.0);
            a.stats[j] = (mean, var, n);
            a.total += n;
            a.kappa[j] = self.exploration_at(n);
            // Expected further attempts, negated: −(1 − success) × continuation.
            if lambda > 0.0 {
                let cont = (a.hardness + lambda * excess(k)).max(1.0).min(a.cap);
                a.scale[j] = cont;
                a.mu[j] = (mean - 1.0) * cont;
            } else {
                a.mu[j] = mean;
            }
            let reach = SAMPLE_REACH * a.kappa[j] * var.sqrt() * a.scale[j];
            a.spread[j] = reach;
            a.floor = a.floor.max(a.mu[j] - reach);
        }
        Some(a)
    }

    /// The continuation of strategy index `k` in an assessed context (see the module docs).
    fn continuation_in(&self, a: &Assessment<'_>, k: usize) -> f64 {
        (a.hardness + self.excess_in(a.index, k, a.tight))
            .max(1.0)
            .min(a.cap)
    }

    /// What the ranking knows of each valid strategy for a failure in context `c`, best
    /// first by the selection's score without its randomness (Thompson sampling: the
    /// posterior mean, or with `continuation` the expected further attempts; UCB: the upper
    /// bound; expected cost: cost / success) — the ranking's reasons, for an operator asking
    /// why a strategy was chosen. No draws: the same state explains the same way. `None`
    /// when nothing is valid.
    pub fn explain(&self, c: &RankContext<'_>) -> Option<Vec<Estimate>> {
        let a = self.assess(c)?;
        let counts = |x: &Counts, k: usize| Evidence {
            successes: x.success[k],
            failures: x.failure[k],
        };
        let lambda = match self.params.selection {
            Selection::Thompson => self.params.continuation,
            _ => 0.0,
        };
        let mut out: Vec<(f64, Estimate)> = c
            .valid
            .iter()
            .enumerate()
            .map(|(j, s)| {
                let k = s.index();
                let (mean, _, n) = a.stats[j];
                let score = match self.params.selection {
                    Selection::ExpectedCost => -a.co.mean_cost(k) / mean.max(1e-6),
                    Selection::Ucb => mean + self.params.ucb_c * (a.total.max(1.0).ln() / n).sqrt(),
                    Selection::Thompson => a.mu[j],
                };
                // The kind's outcomes on the other hardware classes (what lends the coarse
                // context its prior) and the class's on workers called bad.
                let other_classes = self.params.backoff_kind.then(|| {
                    let ks = &self.kind_spread[c.kind.index()];
                    // What rounding leaves of a subtraction is no evidence.
                    let tiny = |x: f64| if x < 1e-9 { 0.0 } else { x };
                    let n = tiny(ks.n[k] - a.co.success[k] - a.co.failure[k]);
                    let ok = tiny((ks.s[k] - a.co.success[k]).clamp(0.0, n));
                    Evidence {
                        successes: ok,
                        failures: n - ok,
                    }
                });
                let bad_workers = (c.bad_worker && self.params.backoff_bad)
                    .then(|| counts(&self.bad[c.class.index()], k));
                let estimate = Estimate {
                    strategy: *s,
                    // The engine's explanation numbers it as the ladder does.
                    ladder_step: None,
                    prior: a.priors[k],
                    success: mean,
                    weight: n,
                    coarse: counts(a.co, k),
                    fine: a.fine.map(|f| counts(f, k)),
                    finest: a.finest.map(|f| counts(f, k)),
                    other_classes,
                    bad_workers,
                    expected_attempts: (lambda > 0.0).then(|| 1.0 + (1.0 - mean) * a.scale[j]),
                    tried: c.tried[k],
                    score,
                };
                (score, estimate)
            })
            .collect();
        out.sort_by(|x, y| y.0.total_cmp(&x.0));
        Some(out.into_iter().map(|(_, e)| e).collect())
    }

    /// Chooses among `c.valid`, or abstains (`None`) when the coarse context has no evidence
    /// or nothing is valid — then the rules decide.
    ///
    /// Thompson sampling draws each strategy's success from a normal with the Beta
    /// posterior's mean and variance (one standard-normal draw per strategy, no allocation)
    /// and scores it by expected attempts (see the module docs: with `continuation` = 0, the
    /// draw itself); the logged propensity uses the same normals.
    pub fn choose<R: Rng + ?Sized>(&self, c: &RankContext<'_>, rng: &mut R) -> Option<Choice> {
        if self.coarse[coarse_index(c.class, c.kind)].total() <= 0.0 {
            return None;
        }
        let a = self.assess(c)?;
        let Assessment {
            co,
            stats,
            kappa,
            spread,
            floor,
            total,
            mu,
            scale,
            ..
        } = &a;
        let (floor, total) = (*floor, *total);
        if let Some((j, n)) = self.untried(c, co, stats, rng) {
            return Some(Choice {
                strategy: c.valid[j],
                propensity: 1.0 / n as f64,
                expected_success: stats[j].0,
                continuation: Some(self.continuation_in(&a, c.valid[j].index())),
            });
        }
        let total = total.max(1.0);
        let mut best: Option<(usize, f64)> = None;
        for (j, s) in c.valid.iter().enumerate() {
            let (mean, var, n) = stats[j];
            let score = match self.params.selection {
                // A strategy whose best plausible score stays below the leader's worst
                // plausible one cannot win: not sampled (a draw beyond SAMPLE_REACH standard
                // deviations has probability < 1e-9).
                Selection::Thompson if mu[j] + spread[j] < floor => continue,
                Selection::Thompson => {
                    let z: f64 = StandardNormal.sample(rng);
                    mu[j] + kappa[j] * var.sqrt() * scale[j] * z
                }
                Selection::Ucb => mean + self.params.ucb_c * (total.ln() / n).sqrt(),
                // Expected cost to recovery of a geometric number of tries: cost / p.
                Selection::ExpectedCost => -co.mean_cost(s.index()) / mean.max(1e-6),
            };
            if best.is_none_or(|(_, v)| score > v) {
                best = Some((j, score));
            }
        }
        let (j, _) = best?;
        let propensity = match self.params.selection {
            Selection::Thompson => {
                // P(the chosen draw beats every rival's draw). Rivals that cannot win (their
                // best plausible score below every leader's worst, as in the sampling above)
                // are left out.
                let sd = |o: usize| (spread[o] / SAMPLE_REACH).max(1e-6);
                let mut rivals = [(0.0, 0.0); N];
                let mut k = 0;
                for o in 0..c.valid.len() {
                    if o != j && mu[o] + spread[o] >= floor {
                        rivals[k] = (mu[o], sd(o));
                        k += 1;
                    }
                }
                thompson_propensity(mu[j], sd(j), &rivals[..k])
            }
            _ => 1.0,
        };
        Some(Choice {
            strategy: c.valid[j],
            propensity,
            expected_success: stats[j].0,
            continuation: Some(self.continuation_in(&a, c.valid[j].index())),
        })
    }
}

/// Whether a failure is a device fault on an accelerator, for which a worker reset is a
/// plausible cure ([`RankingParams::prior_reset`]): a driver or runtime error (`cuda_error`,
/// `tpu_error`, `npu_error`), device hardware (`gpu_hardware`), a lost device context, a
/// timeout (a hung device shows as one) or an unrecognised error (the runtimes of DSPs, FPGAs
/// and other devices the classifier does not know) on an accelerator. Not on a CPU, and not
/// in a browser (WebGPU, WebNN), whose reset is the browser restart its ladder already
/// names. Not an out-of-memory (ranked as `oom_gpu`, see [`ranked_kind`]), a software or
/// data error, the network or storage.
pub fn device_fault(class: HardwareClass, kind: FailureKind) -> bool {
    use FailureKind as K;
    !matches!(
        class,
        HardwareClass::Cpu | HardwareClass::Webgpu | HardwareClass::Webnn
    ) && matches!(
        kind,
        K::CudaError
            | K::GpuHardware
            | K::TpuError
            | K::NpuError
            | K::WebgpuContextLost
            | K::Timeout
            | K::Unknown
    )
}

/// The failure kind a failure is ranked under (see the module docs): `oom_gpu` for memory
/// exhausted on a TPU or an NPU (`tpu_error` / `npu_error` from a rule that reports exhausted
/// memory, [`crate::classify::memory_exhausted`]), else `kind` itself.
pub fn ranked_kind(kind: FailureKind, classifier_rule: &str) -> FailureKind {
    if matches!(kind, FailureKind::TpuError | FailureKind::NpuError)
        && crate::classify::memory_exhausted(classifier_rule)
    {
        FailureKind::OomGpu
    } else {
        kind
    }
}

/// P(X > every Yₒ) for independent normals X ~ N(mj, sj²) and Yₒ ~ N(mₒ, sₒ²): the
/// probability a Thompson draw picks the strategy whose draw is X. First the rivals' maximum
/// approximated by one normal (Clark 1961: moments of the maximum of two normals, folded over
/// the rivals), then one Φ — a handful of operations, right for the usual choice of a leader.
/// That approximation overstates small probabilities (a wide and a tight rival give the
/// maximum a fat left tail: 0.021 logged against 1.0e-4, review), and 1/propensity is then
/// the importance weight off-policy evaluation takes; so when it or the smallest pairwise
/// probability (an upper bound of the truth) is below [`PROPENSITY_REFINE_BELOW`], or it
/// falls half as far again outside the bounds the pairwise probabilities set, the
/// probability is integrated instead, ∫ φ_X(x) Πₒ Φ((x − mₒ)/sₒ) dx by Simpson's rule — on the rare path
/// where the chosen strategy was unlikely, so the decision's cost stays where it was.
fn thompson_propensity(mj: f64, sj: f64, rivals: &[(f64, f64)]) -> f64 {
    let mut max: Option<(f64, f64)> = None;
    for &(mo, so) in rivals {
        // A rival more than 4 standard deviations behind the chosen beats it with
        // P < 3.2e-5: less than the approximation's own error.
        if mj > mo && (mj - mo) * (mj - mo) > 16.0 * (sj * sj + so * so) {
            continue;
        }
        max = Some(match max {
            None => (mo, so * so),
            Some((m1, v1)) => clark_max(m1, v1, mo, so * so),
        });
    }
    let clark = match max {
        None => return 1.0,
        Some((mm, vm)) => phi((mj - mm) / (sj * sj + vm).max(1e-18).sqrt()),
    };
    // The true value lies between the product of the pairwise probabilities (the events
    // share X, so they are positively associated) and the smallest of them. Clark outside
    // those bounds, or either small, is not to be trusted (review: with a wide and a tight
    // rival Clark gave 0.086 where the smallest pairwise probability was 1.2e-4).
    let (mut lower, mut upper) = (1.0f64, 1.0f64);
    for &(mo, so) in rivals {
        let p = phi((mj - mo) / (sj * sj + so * so).max(1e-18).sqrt());
        lower *= p;
        upper = upper.min(p);
    }
    // Clark's small errors around the bounds are its usual approximation (a few per cent);
    // a factor of 1.5 past them is the failure it is not trusted with.
    if clark >= PROPENSITY_REFINE_BELOW
        && upper >= PROPENSITY_REFINE_BELOW
        && clark <= 1.5 * upper
        && clark >= lower / 1.5
    {
        return clark.min(1.0);
    }
    win_probability(mj, sj, rivals).clamp(PROPENSITY_FLOOR, 1.0)
}

/// Below this, [`thompson_propensity`] integrates instead of approximating.
const PROPENSITY_REFINE_BELOW: f64 = 0.05;

/// The smallest propensity logged: a choice this unlikely is made about once in 10⁶ draws,
/// and its weight in off-policy evaluation is at most 10⁶.
const PROPENSITY_FLOOR: f64 = 1e-6;

/// ∫ φ_X(x) Πₒ Φ((x − mₒ)/sₒ) dx for X ~ N(mj, sj²), by Simpson's rule over mj ± 8 sj (the
/// rest of X's mass is below 1.3e-15), with the exact Φ (no table). The range is cut at
/// mₒ and mₒ ± 8 sₒ of every rival tighter than X, so that a rival's Φ, nearly a step there,
/// is integrated on a grid of its own width (review: on one grid of step sj/16 a rival of
/// sₒ ≪ sj was off by up to 18 %); each piece gets steps of at most sj/16, and at least 16.
fn win_probability(mj: f64, sj: f64, rivals: &[(f64, f64)]) -> f64 {
    let (a, b) = (mj - 8.0 * sj, mj + 8.0 * sj);
    let mut cuts = [0.0f64; 3 * N + 2];
    let mut nc = 0;
    cuts[nc] = a;
    nc += 1;
    cuts[nc] = b;
    nc += 1;
    for &(mo, so) in rivals {
        if so < sj {
            for x in [mo - 8.0 * so, mo, mo + 8.0 * so] {
                if a < x && x < b && nc < cuts.len() {
                    cuts[nc] = x;
                    nc += 1;
                }
            }
        }
    }
    let cuts = &mut cuts[..nc];
    cuts.sort_by(f64::total_cmp);
    let f = |x: f64| {
        let t = (x - mj) / sj;
        let mut v = (-0.5 * t * t).exp();
        for &(mo, so) in rivals {
            if v == 0.0 {
                break;
            }
            v *= phi_exact((x - mo) / so);
        }
        v
    };
    let mut sum = 0.0;
    for w in cuts.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        if hi <= lo {
            continue;
        }
        // Even, at least 16, steps of at most sj/16.
        let steps = (((hi - lo) / (sj / 16.0)).ceil() as usize).clamp(16, 256) & !1;
        let h = (hi - lo) / steps as f64;
        let mut part = f(lo) + f(hi);
        for k in 1..steps {
            part += if k % 2 == 1 { 4.0 } else { 2.0 } * f(lo + h * k as f64);
        }
        sum += part * h / 3.0;
    }
    // φ's 1/(sj√(2π)).
    sum / (sj * (2.0 * std::f64::consts::PI).sqrt())
}

/// Mean and variance of max(X₁, X₂) for independent normals X₁ ~ N(m1, v1), X₂ ~ N(m2, v2)
/// (Clark 1961); the maximum of several is approximated by folding this over them.
#[inline]
fn clark_max(m1: f64, v1: f64, m2: f64, v2: f64) -> (f64, f64) {
    // Beyond 6 standard deviations one of the two is the maximum (P < 1e-9): told apart
    // before any square root or division (a rival far behind is the usual case).
    let (d, v) = (m1 - m2, (v1 + v2).max(1e-18));
    if d * d > 36.0 * v {
        return if d > 0.0 { (m1, v1) } else { (m2, v2) };
    }
    let theta = v.sqrt();
    let a = d / theta;
    let (p1, density) = phi_and_density(a);
    let p2 = 1.0 - p1;
    let mean = m1 * p1 + m2 * p2 + theta * density;
    let second = (m1 * m1 + v1) * p1 + (m2 * m2 + v2) * p2 + (m1 + m2) * theta * density;
    (mean, (second - mean * mean).max(0.0))
}

/// χ² at 0.001 for 1..=N degrees of freedom.
const CHI2_999: [f64; N] = [
    10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588, 31.264, 32.909,
];

/// Outcomes a strategy needs in a child context and in the rest of its parent to count in
/// [`distinct`].
const DISTINCT_MIN: f64 = 2.0;

/// Whether finest context `child` holds another cause than the rest of its fine context
/// `parent` ([`RankingParams::backoff_distinct`]): over the strategies both have tried (at
/// least [`DISTINCT_MIN`] discounted outcomes each), the sum of the two-proportion z² exceeds
/// χ² at 0.001 for that many degrees of freedom. Both sides are as the parent holds them: the
/// child's outcomes recorded on the parent's decay schedule, and the rest, the parent less
/// those (each context decays with its own outcomes: the child's counts keep outcomes the
/// busier parent has mostly forgotten, and subtracting them as they stand in the child left a
/// rest of noise, which set a single cause's messages apart for up to 60 % of their decisions;
/// comparing them as they stand with the rest set one apart after a drift — reviews). A seeded
/// context's seeded evidence is not recorded so and never tested; only the outcomes it takes
/// are. Run on the outcome path, for the finest context that took
/// the outcome (its `apart`); a decision reads the result.
fn distinct(parent: &Counts, child: &Counts) -> bool {
    let mut z2 = 0.0;
    let mut df = 0;
    for k in 0..N {
        // Both sides on the parent's schedule: the child's own counts decay only with its
        // own outcomes, and after a drift still held the old regime that the rest had
        // forgotten (a single cause set apart for thousands of outcomes — review).
        let (s1, f1) = child.held_by(parent, k);
        let n1 = s1 + f1;
        if n1 < DISTINCT_MIN {
            continue;
        }
        let s2 = (parent.success[k] - s1).max(0.0);
        let n2 = s2 + (parent.failure[k] - f1).max(0.0);
        if n2 < DISTINCT_MIN {
            continue;
        }
        let p = (s1 + s2) / (n1 + n2);
        let pq = p * (1.0 - p);
        if pq < 1e-9 {
            continue;
        }
        let d = s1 / n1 - s2 / n2;
        z2 += d * d / (pq * (1.0 / n1 + 1.0 / n2));
        df += 1;
    }
    df > 0 && z2 > CHI2_999[df - 1]
}

/// (α, β) scaled down to `q` pseudo-observations when they are worth more (the mean kept).
#[inline]
fn at_most(a: f64, b: f64, q: f64) -> (f64, f64) {
    let n = a + b;
    if n > q {
        let r = q / n;
        (a * r, b * r)
    } else {
        (a, b)
    }
}

/// The key of the finest context: a fine context refined by a message signature.
fn finest_key(fine: u64, signature: u64) -> u64 {
    (fine ^ signature.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Words of a message its signature reads ([`message_signature`]): 64, so the signature sees
/// a whole message as most runtimes print it (in a set of 146 real error messages, 18 have
/// more than 24 words and 2 more than 64). PyTorch's out-of-memory messages tell an
/// allocation too large for the card (`... this process has 9.2 GiB memory in use`) from
/// memory another process holds (`... Process 4121 has 30.1 GiB memory in use`) only after
/// their 24th word; with 24 words a fleet with both (a zombie process of an earlier job,
/// cured by a worker reset) pooled them, and the ranking shrank the batch for both or moved
/// both (regret 0.065 per decision against 0.019 with 64, seeds 1–3).
pub const SIGNATURE_WORDS: usize = 64;

/// A message's signature: FNV-1a over its whitespace-separated words, each word that holds a
/// digit replaced by one placeholder (ids, addresses, sizes, times, paths with numbers), at
/// most the first [`SIGNATURE_WORDS`] words. Causes that one classifier rule lumps together usually differ in
/// their words (`stream synchronize timeout` vs `driver error`), and messages of one cause
/// usually differ only in their numbers — so the signature refines the ranking context where
/// the rule cannot, without a template miner on the decision path.
pub fn message_signature(message: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for word in message.split_ascii_whitespace().take(SIGNATURE_WORDS) {
        if word.bytes().any(|b| b.is_ascii_digit()) {
            eat(0x01);
        } else {
            for b in word.bytes() {
                eat(b);
            }
        }
        eat(b' ');
    }
    h
}

/// What the pattern detector says about the failed worker, as ranking context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerStanding {
    /// Nothing unusual.
    Healthy,
    /// Under an active bad-worker pattern.
    Bad,
    /// More failures than its share, not (yet) enough to be called bad.
    Suspect,
}

/// The fine-context key the engine ranks with: the classifier's rule and Xid code (which
/// tell causes of one kind apart, e.g. a GPU that fell off the bus from an ECC error),
/// whether the task already failed before (attempt 1 or later: a repeated failure says
/// something about the worker and the cause), and the failed worker's standing (a degrading
/// worker needs another recovery than a healthy one). FNV-1a, so it is the same in every
/// process (healthy and bad hash as the earlier `false`/`true` flag did).
pub fn fine_key(rule: &str, xid: Option<u32>, attempt: u32, worker: WorkerStanding) -> u64 {
    fine_key_finish(fine_key_prefix(rule, xid), attempt, worker)
}

/// The part of [`fine_key`] that depends on the classification only (cacheable with it).
pub fn fine_key_prefix(rule: &str, xid: Option<u32>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rule
        .bytes()
        .chain([0xff])
        .chain(xid.map_or(u32::MAX, |x| x).to_le_bytes())
    {
        h = fnv(h, b);
    }
    h
}

/// [`fine_key`] from its [`fine_key_prefix`].
pub fn fine_key_finish(prefix: u64, attempt: u32, worker: WorkerStanding) -> u64 {
    let h = fnv(prefix, u8::from(attempt > 1));
    fnv(
        h,
        match worker {
            WorkerStanding::Healthy => 0,
            WorkerStanding::Bad => 1,
            WorkerStanding::Suspect => 2,
        },
    )
}

/// The fine key of a failure that came in a burst of its (class, kind): the usual fine key
/// ([`fine_key`]) moved to a context of its own, so a burst's outcomes neither mix with nor
/// outlive the usual evidence.
pub fn burst_key(fine: u64) -> u64 {
    fnv(fnv(fine, 0xb5), 0x01)
}

/// One FNV-1a step.
#[inline]
fn fnv(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
}

#[cfg(test)]
mod tests;
