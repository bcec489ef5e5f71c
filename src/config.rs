//! Tier 0 — configuration: serde structs with defaults and `deny_unknown_fields`, as written
//! in a TOML file or built in code. Each section is validated once into checked types by the
//! module that uses it (`retry`, `rules`), which names the offending field on error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Errors loading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (the message names line and field).
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Parser message with line, column and field.
        message: String,
    },
}

/// Engine configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Seed of every random choice (jitter, sampling), for reproducibility.
    pub seed: u64,
    /// Retry policy.
    pub retry: RetryParams,
    /// Recovery actions kept in memory per task (older ones live only in the store).
    pub history_per_task: usize,
    /// Report time, seconds, after a task's latest failure (or state change) when the engine
    /// forgets the task's record (its history stays in the store): a long-running server or
    /// state file does not keep every task ever seen. A task that fails again after that
    /// starts afresh. Kept longer: a task with a checkpoint (not forgotten), and one whose
    /// latest action still awaits its outcome (four times as long). Forgetting runs with the
    /// bad-worker refresh (`patterns.refresh_*`), not at every failure. 0: never.
    pub forget_after_s: f64,
    /// Circuit breakers.
    pub breakers: BreakersConfig,
    /// Pattern detection.
    pub patterns: PatternParams,
    /// Learned ranking of strategies.
    pub ranking: RankingParams,
}

/// How the learned ranking picks among valid strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Sample each posterior, take the best sample (explores in proportion to uncertainty).
    #[default]
    Thompson,
    /// Posterior mean plus an exploration bonus (deterministic).
    Ucb,
    /// Lowest expected cost to recovery: mean cost of the strategy / posterior success.
    ExpectedCost,
}

/// Which learned ranker the engine consults when the ranking is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RankerKind {
    /// Beta–Bernoulli posteriors per (class, kind [, fine key]) × strategy (`ranking`).
    #[default]
    Bayes,
    /// A logistic-regression success model over the failure context, refit online
    /// (`ranking::smart`).
    Model,
}

/// Parameters of the success-model ranker (`ranking.ranker = "model"`, see `ranking::smart`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelParams {
    /// Probability of taking a uniformly random valid strategy instead of the one with the
    /// highest predicted success (ε-greedy exploration), in [0, 1).
    pub epsilon: f64,
    /// L2 penalty of each strategy's logistic regression (≥ 0; the loss is summed over rows).
    pub alpha: f64,
    /// Most recent outcomes kept for fitting (≥ `min_outcomes`).
    pub window: usize,
    /// Outcomes between refits once the model is warm (≥ 1); early refits come sooner: after
    /// as many outcomes as the last fit saw.
    pub refit_every: usize,
    /// Outcomes before the first fit (≥ 1); until then the rules decide.
    pub min_outcomes: usize,
    /// Rows of one strategy below which its success is a smoothed rate rather than a
    /// regression (≥ 2).
    pub min_rows: usize,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            epsilon: 0.02,
            alpha: 1.0,
            window: 5000,
            refit_every: 200,
            min_outcomes: 200,
            min_rows: 20,
        }
    }
}

/// Learned ranking parameters (see the `ranking` module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankingParams {
    /// Whether the engine consults the ranking at all (off: the rules decide alone).
    pub enabled: bool,
    /// Which ranker decides: `bayes` (posteriors per context) or `model` (success model).
    pub ranker: RankerKind,
    /// Selection rule.
    pub selection: Selection,
    /// Prior success mean of the strategy the rule ladder would take now.
    pub prior_top: f64,
    /// Prior success mean of valid strategies outside the ladder. Not too low: the rules
    /// never name some strategies (a worker reset for a hung accelerator, a smaller model
    /// when the batch cannot shrink), and a prior far below the ladder's keeps the ranking
    /// from ever trying them where they are the best (0.25 against 0.15: measured on fleets
    /// whose best recovery is off the ladder, see `notebooks/ranking-experiments.md`).
    pub prior_other: f64,
    /// Prior success mean of RESET_WORKER_STATE, when the rules do not take it, for a device
    /// fault on an accelerator ([`crate::ranking::device_fault`]: a driver or runtime error,
    /// device hardware, a lost device context, a timeout or an unrecognised error on a
    /// worker that is neither a CPU nor a browser). A device stuck busy, hung or in a bad state is commonly
    /// cleared by resetting it, a cure no default ladder names; with `prior_other` its draws
    /// seldom beat a fair incumbent, so it was found late or never. 0: `prior_other` like any
    /// strategy off the ladder. 0.4: measured against 0.35, 0.45 and 0.5 (see
    /// `notebooks/ranking-experiments.md`).
    pub prior_reset: f64,
    /// Prior success mean of RESET_WORKER_STATE for a failure whose message says the device
    /// is held busy by another process ([`crate::classify::device_busy`]: "Device or resource
    /// busy", a TPU "already in use by process") on an accelerator: a stale process holding
    /// the device is what a reset clears. It backs the message's own context (its classifier
    /// rule's fine context) with `backoff_min` pseudo-observations at this mean when the coarser
    /// evidence says less, so the reset is tried there however it fared for the device's other
    /// faults (on a worker called bad, in a burst: not). 0: off.
    pub prior_busy: f64,
    /// Pseudo-observations behind the ladder prior.
    pub prior_strength: f64,
    /// Pseudo-observations with which a coarser posterior backs a finer context, when
    /// `backoff_adaptive` is off.
    pub backoff_strength: f64,
    /// Estimate those pseudo-observations per coarse context, strategy and level from how
    /// much the finer contexts' success rates differ beyond sampling noise (empirical Bayes):
    /// finer contexts that all succeed alike lean hard on the coarse posterior, ones that
    /// differ (a bad worker, another cause under one rule) stand on their own evidence.
    pub backoff_adaptive: bool,
    /// Keep the outcomes of failures that come in a burst (a rate spike of their hardware
    /// class and failure kind, see `patterns.spike_*`) in contexts of their own, apart from
    /// the usual evidence (off: a burst teaches its context like any other failure).
    pub burst_apart: bool,
    /// Pool a failure kind's evidence across hardware classes: a (class, kind) context's
    /// prior is the kind's success on the other classes, worth as many outcomes as the
    /// classes' agreement warrants (empirical Bayes, like the finer back-off; `backoff_min`
    /// while fewer than two classes have evidence to compare, and for `unknown`, the
    /// classifier's catch-all, whose failures on one class say nothing of another's; off:
    /// the ladder prior alone).
    pub backoff_kind: bool,
    /// Treat a worker called bad as another regime: its outcomes teach the class's
    /// bad-worker evidence (across failure kinds) and its own finer contexts, not the coarse
    /// context; a decision on it leans on that evidence (worth `backoff_strength` outcomes
    /// against the kind's own). Off: its outcomes teach like any other.
    pub backoff_bad: bool,
    /// A finest context (a message signature) whose success rates differ from the rest of its
    /// fine context beyond chance (a two-proportion test over the strategies both have tried,
    /// χ² at 0.001) holds another cause than the other messages under its classifier rule:
    /// the fine posterior then backs it with only `backoff_min` pseudo-observations, also for
    /// the strategies it has not tried. Off: it leans on the fine context as the adaptive
    /// back-off says, and a strategy it never tried is ranked by the fine evidence alone —
    /// the other causes', so a cure of this one that failed for them is never tried here.
    /// Only the finest level: a fine context differs from the rest of its coarse one by the
    /// worker's standing and whether the task failed before as well, which are no other cause
    /// (testing it there too cost more exploration than it found, see
    /// `notebooks/ranking-experiments.md`).
    pub backoff_distinct: bool,
    /// Fewest pseudo-observations of the adaptive back-off (> 0).
    pub backoff_min: f64,
    /// Most pseudo-observations of the adaptive back-off (≥ `backoff_min`).
    pub backoff_max: f64,
    /// Thompson sampling's spread: each score is drawn with this multiple of the posterior's
    /// standard deviation (1 = plain Thompson sampling; smaller explores less once evidence
    /// exists, larger explores more).
    pub exploration: f64,
    /// Pseudo-observations n0 up to which a posterior is sampled with nearly its full spread:
    /// the spread multiple is `exploration` + (1 − `exploration`) · n0 / (n0 + n) for a
    /// posterior worth n. A strategy tried once or never (a failure or two on tiny evidence)
    /// keeps a real chance to be tried again; one with much evidence is sampled at
    /// `exploration`. 0: `exploration` for every posterior. Measured: fleets whose best
    /// recovery is one the rules never name, or one an early failure made look bad (see
    /// `notebooks/ranking-experiments.md`).
    pub exploration_n0: f64,
    /// Per-outcome decay of all of a context's counts (1 = never forget): evidence on a
    /// strategy not used for long fades, so it is tried again now and then.
    pub discount: f64,
    /// Per-outcome decay of the used strategy's own counts in the context (1 = off): a
    /// strategy's evidence also ages with its own use, so a much-used strategy that stops
    /// working (drift) shows it within a few hundred of its own outcomes, without making
    /// every other strategy's evidence fade as fast. 0.998 with `discount` 0.9995 followed a
    /// drift 1.7 times sooner than `discount` 0.999 alone, with regret no higher (see
    /// `notebooks/ranking-experiments.md`).
    pub discount_own: f64,
    /// UCB exploration constant.
    pub ucb_c: f64,
    /// Thompson sampling's first try: once a (hardware class, failure kind) context holds
    /// this many (discounted) outcomes, a valid strategy never tried in it is tried once
    /// (one at random when several are), outside bursts and bad workers. A prior says a
    /// strategy off the rule ladder is unlikely to work; in a busy context one try is cheap
    /// and a sampled draw would rarely give it that try. 0: never.
    pub explore_after: f64,
    /// With `explore_after`: a strategy tried first is tried again while it has not failed,
    /// up to this many times in all (one success against a prior that says 0.25 is weak
    /// evidence; a failure ends its first tries).
    pub explore_tries: u32,
    /// Failure pseudo-counts added per earlier use of a strategy on the same task (0: the
    /// fine context's "failed before" bit learns what a repeat is worth instead).
    pub tried_penalty: f64,
    /// When the rule ladder is exhausted (the rules would escalate), the ranking still tries
    /// its chosen strategy if that strategy's posterior mean success is at least this — and
    /// does in any case until the task has failed more often than the rule set's longest
    /// ladder has steps: it gives up no sooner than the rules could have (where every cure
    /// is rare, giving up at the ladder's end recovered fewer tasks than the rules, whose
    /// ladder the ranking had jumped along; notebook). 0: it tries on until
    /// `retry.max_attempts`.
    pub escalate_below: f64,
    /// How much what a strategy leaves behind counts (Thompson sampling only; 0: rank by the
    /// chance of success alone; 1: by expected attempts, (1 − success) × the further attempts
    /// a task needs after that strategy failed). Those further attempts, the continuation,
    /// are learned online from each task's next decision (see the ranking module): how hard
    /// the failure is (its finest context's mean continuation) plus what the strategy adds to
    /// that (its excess, learned per hardware class and failure kind), of which this multiple
    /// counts. A strategy that uses up the options a later failure needs (the CPU fallback
    /// before another accelerator class, for a bug that travels with the task) ranks below
    /// one as likely to work that keeps them. Near the end of a task's budget the
    /// continuation is what decides whether the task recovers at all (a fallback more
    /// likely to work now that leaves the task where nothing cures it): 1, the expected
    /// attempts themselves, recovered more tasks than the rules on tight-budget traps where
    /// 0.5 recovered fewer, at +0.002 regret on llm-gpu-training (0.35, 0.5 and 0.75
    /// measured too, see `notebooks/ranking-experiments.md`).
    pub continuation: f64,
    /// Pseudo-continuations of no excess with which each strategy's excess is shrunk
    /// towards 0 (a strategy failed a few times is not yet known to cost more).
    pub continuation_strength: f64,
    /// Most outcomes per strategy with which a trained model's success tables seed a context
    /// the ranking has no evidence of (`faultline serve --model`, `simulate --model`): enough
    /// to start from the fleet's success rates, few enough that a strategy the earlier history
    /// never tried still gets explored and the context's own outcomes soon outweigh them.
    /// 60: measured against 20 and 150 and the discount's whole memory (500), on models
    /// trained from a rules-only and from a learned history (see `notebooks/ranking-experiments.md`).
    pub seed_strength: f64,
    /// Seed also the refined contexts (fine: classifier rule, Xid code, repeat failure;
    /// finest: the message signature) of a trained model's tables below each (hardware
    /// class, kind) context it seeds, each capped at `seed_strength` like the coarse ones.
    /// Off: measured on models trained from 20,000-failure rules and learned histories of
    /// the four example scenarios (seeds 1–5 after), it started worse everywhere — regret
    /// after the warm-up +0.004 to +0.012 per decision (test-farm 0.0161 → 0.0289 from a
    /// rules history), also with the refined counts cut to a tenth and with the bad workers'
    /// outcomes left out: a history's repeat failures follow its own policy's earlier
    /// choices, which a new policy does not repeat, and a fine context seeded from them
    /// leans on the wrong population until its own outcomes outweigh them.
    pub seed_refined: bool,
    /// The success-model ranker (used when `ranker = "model"`).
    pub model: ModelParams,
}

impl Default for RankingParams {
    fn default() -> Self {
        RankingParams {
            enabled: false,
            ranker: RankerKind::Bayes,
            selection: Selection::Thompson,
            prior_top: 0.6,
            prior_other: 0.25,
            prior_reset: 0.4,
            prior_busy: 0.6,
            prior_strength: 4.0,
            backoff_strength: 20.0,
            backoff_adaptive: true,
            burst_apart: true,
            backoff_kind: true,
            backoff_bad: true,
            backoff_distinct: true,
            backoff_min: 2.0,
            backoff_max: 200.0,
            exploration: 0.5,
            exploration_n0: 5.0,
            discount: 0.9995,
            discount_own: 0.998,
            ucb_c: 0.5,
            explore_after: 0.0,
            explore_tries: 1,
            tried_penalty: 0.0,
            escalate_below: 0.05,
            continuation: 1.0,
            continuation_strength: 20.0,
            seed_strength: 60.0,
            seed_refined: false,
            model: ModelParams::default(),
        }
    }
}

/// Pattern detection parameters (see the `patterns` module for the tests they feed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatternParams {
    /// Sliding window, seconds of report time.
    pub window_s: f64,
    /// Failures of one key within the window that make a threshold pattern.
    pub threshold: u32,
    /// Failures of one task that can make a rapid-failure pattern.
    pub rapid_min_failures: u32,
    /// Mean gap between those failures below which they are rapid, seconds.
    pub rapid_max_gap_s: f64,
    /// Window of the bad-worker test, seconds: long, because a bad worker shows itself over
    /// days, not minutes, and the test is corrected for every peer of its class (a fleet of
    /// 1,600 TPUs that each fail a few times a week needs two weeks of evidence to single out
    /// a bad one). The flag still expires: a repaired worker is released within the window.
    pub bad_worker_window_s: f64,
    /// Failures of one worker in the window needed before it can be called bad.
    pub bad_worker_min_failures: u64,
    /// Family-wise significance level of the bad-worker test.
    pub bad_worker_alpha: f64,
    /// Per-worker significance level (no multiple-testing correction) below which a worker
    /// not (yet) called bad is a *suspect*: the learned ranking keeps its decisions apart,
    /// because what works on a degrading worker is not what works on a healthy one.
    pub suspect_alpha: f64,
    /// How often (seconds of report time) the engine refreshes its bad-worker list.
    pub refresh_s: f64,
    /// ... and after at least this many failures since the last refresh.
    pub refresh_failures: u32,
    /// Longest report time between two refreshes, whatever the number of failures, seconds
    /// (default a day): a quiet fleet still gets its bad worker flagged, and a repaired worker
    /// released, within this time ([`PatternParams::refresh_due`]). Measured on the example
    /// scenarios (seeds 1–5), an hourly refresh made the learned ranking worse (regret
    /// 0.0143 → 0.0162 on average): a worker's standing, part of the ranking context, changed
    /// more often than its evidence; with a day they refresh as before (200 failures).
    pub refresh_max_s: f64,
    /// Window of the burst detector (a rate spike of one failure kind on one hardware
    /// class), seconds.
    pub spike_window_s: f64,
    /// Time constant of the burst detector's baseline rate, seconds: long, so a burst does
    /// not become its own baseline, yet a lasting rise does after a few of them.
    pub spike_baseline_s: f64,
    /// How many times the baseline's expectation the window must hold to be a burst.
    pub spike_ratio: f64,
    /// Failures the window must hold at least to be a burst.
    pub spike_min_failures: u64,
    /// Poisson significance level of a burst against the baseline.
    pub spike_alpha: f64,
    /// Longest burst, seconds: while a burst lasts it is judged against the baseline from
    /// before it (so it does not become its own baseline), for at most this long; a rise that
    /// lasts longer is the new normal.
    pub spike_max_s: f64,
}

impl Default for PatternParams {
    /// The seed's threshold (3 failures) and window (1 hour); rapid failures 3 within 300 s
    /// on average; bad workers over 14 days at α = 0.001 with at least 5 failures; bursts:
    /// at least 8 failures of one (class, kind) within an hour, 4× the 7-day baseline, at
    /// α = 0.001, judged against the baseline from before the burst for at most a day.
    fn default() -> Self {
        PatternParams {
            window_s: 3600.0,
            threshold: 3,
            rapid_min_failures: 3,
            rapid_max_gap_s: 300.0,
            bad_worker_window_s: 14.0 * 86_400.0,
            bad_worker_min_failures: 5,
            bad_worker_alpha: 1e-3,
            suspect_alpha: 0.05,
            refresh_s: 60.0,
            refresh_failures: 200,
            refresh_max_s: 86_400.0,
            spike_window_s: 3600.0,
            spike_baseline_s: 7.0 * 86_400.0,
            spike_ratio: 4.0,
            spike_min_failures: 8,
            spike_alpha: 1e-3,
            spike_max_s: 86_400.0,
        }
    }
}

impl PatternParams {
    /// Whether the bad-worker list is due for a refresh, `failures` failures and `elapsed_us`
    /// microseconds of report time after the last one: both `refresh_failures` and
    /// `refresh_s` have passed (its cost is linear in the fleet, its verdicts change slowly),
    /// or `refresh_max_s` has (a quiet fleet is not left with a stale list).
    pub fn refresh_due(&self, failures: u32, elapsed_us: i64) -> bool {
        let secs = elapsed_us as f64 / 1e6;
        (failures >= self.refresh_failures && secs >= self.refresh_s) || secs >= self.refresh_max_s
    }
}

/// Circuit breaker settings per worker and per hardware class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakersConfig {
    /// Per-worker breakers: an open one turns same-worker retries into DIFFERENT_WORKER.
    pub worker: BreakerParams,
    /// Per-hardware-class breakers: an open one moves same-class retries to another class.
    pub hardware_class: BreakerParams,
}

impl Default for BreakersConfig {
    fn default() -> Self {
        BreakersConfig {
            worker: BreakerParams::worker(),
            hardware_class: BreakerParams::hardware_class(),
        }
    }
}

/// Breaker parameters (unchecked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerParams {
    /// Whether this breaker kind affects decisions.
    pub enabled: bool,
    /// Failures within `window_s` that open the breaker.
    pub threshold: u32,
    /// Window for counting failures, seconds.
    pub window_s: f64,
    /// Seconds an open breaker waits before letting a trial through (half-open).
    pub recovery_s: f64,
    /// Successes in half-open state that close the breaker.
    pub success_threshold: u32,
    /// Recovery time multiplier after a failed trial.
    pub backoff_factor: f64,
    /// Upper bound of the recovery time, seconds.
    pub max_recovery_s: f64,
}

impl BreakerParams {
    /// The seed's worker breaker: 5 failures, 60 s recovery (×2 up to 600 s), 3 successes.
    pub fn worker() -> Self {
        BreakerParams {
            enabled: true,
            threshold: 5,
            window_s: 60.0,
            recovery_s: 60.0,
            success_threshold: 3,
            backoff_factor: 2.0,
            max_recovery_s: 600.0,
        }
    }

    /// The seed's hardware-class breaker: 3 failures, 120 s recovery (×1.5 up to 1800 s),
    /// 5 successes. Off by default: across a fleet, three failures of one class within two
    /// minutes are routine, and an open class breaker moves every task of the class elsewhere.
    /// Switch it on (and raise the threshold) for small, homogeneous fleets.
    pub fn hardware_class() -> Self {
        BreakerParams {
            enabled: false,
            threshold: 3,
            window_s: 120.0,
            recovery_s: 120.0,
            success_threshold: 5,
            backoff_factor: 1.5,
            max_recovery_s: 1800.0,
        }
    }
}

impl Default for BreakerParams {
    fn default() -> Self {
        BreakerParams::worker()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            seed: 42,
            retry: RetryParams::default(),
            history_per_task: 64,
            forget_after_s: 7.0 * 86_400.0,
            breakers: BreakersConfig::default(),
            patterns: PatternParams::default(),
            ranking: RankingParams::default(),
        }
    }
}

impl EngineConfig {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

/// How the exponential delay is randomized (see the AWS architecture blog's "Exponential
/// Backoff And Jitter").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Exactly `base · factorⁿ⁻¹`.
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// Uniform in `[d/2, d]`: never less than half the backoff.
    #[default]
    Equal,
    /// Uniform in `[base, 3 · previous]` (previous = base on the first attempt), capped.
    Decorrelated,
}

/// Backoff parameters (unchecked, as written in config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackoffParams {
    /// Delay of the first retry, seconds (≥ 0).
    pub base_s: f64,
    /// Growth per attempt (≥ 1).
    pub factor: f64,
    /// Upper bound on any delay, seconds (≥ base).
    pub cap_s: f64,
    /// Jitter mode.
    pub jitter: Jitter,
}

impl Default for BackoffParams {
    /// The seed's base 2 s, factor 2, cap 60 s, with equal jitter.
    fn default() -> Self {
        BackoffParams {
            base_s: 2.0,
            factor: 2.0,
            cap_s: 60.0,
            jitter: Jitter::Equal,
        }
    }
}

/// Retry budget parameters (the tower model): within a sliding window, retries may be at
/// most `min_retries + ratio × first failures`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetParams {
    /// Switch the budget on or off.
    pub enabled: bool,
    /// Window length, seconds of report time.
    pub window_s: f64,
    /// Retries always allowed per window.
    pub min_retries: u32,
    /// Share of first failures (new tasks) that may retry on top of `min_retries`.
    pub ratio: f64,
}

impl Default for BudgetParams {
    fn default() -> Self {
        BudgetParams {
            enabled: true,
            window_s: 10.0,
            min_retries: 10,
            ratio: 0.5,
        }
    }
}

/// Retry configuration: a default backoff, per-kind overrides, maximum attempts, budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRetry")]
pub struct RetryParams {
    /// Backoff for kinds without their own policy: the fields a config file gives, the rest
    /// from [`BackoffParams::default`].
    pub default: BackoffParams,
    /// Per-kind backoff, keyed by failure kind name. A config file's policies are laid over
    /// the built-in ones (OOM without delay, network and timeouts longer, see
    /// [`RetryParams::default`]): a kind it names gets the fields it gives, the rest from
    /// that kind's built-in policy, or from `default` (as the file gives it) for a kind
    /// without one; kinds it does not name keep theirs. Before, naming one kind dropped the
    /// others' built-in policies (library audit: OOM retries were delayed 2 s once the
    /// network's was set).
    pub policies: BTreeMap<String, BackoffParams>,
    /// A task's failures beyond this number are escalated.
    pub max_attempts: u32,
    /// Retry budget.
    pub budget: BudgetParams,
}

/// [`BackoffParams`] as a config file may give them: any field left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialBackoff {
    base_s: Option<f64>,
    factor: Option<f64>,
    cap_s: Option<f64>,
    jitter: Option<Jitter>,
}

impl PartialBackoff {
    /// The fields given, the rest from `base`.
    fn over(self, base: &BackoffParams) -> BackoffParams {
        BackoffParams {
            base_s: self.base_s.unwrap_or(base.base_s),
            factor: self.factor.unwrap_or(base.factor),
            cap_s: self.cap_s.unwrap_or(base.cap_s),
            jitter: self.jitter.unwrap_or(base.jitter),
        }
    }
}

/// `[retry]` as a config file gives it (see [`RetryParams`]).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRetry {
    default: PartialBackoff,
    policies: BTreeMap<String, PartialBackoff>,
    max_attempts: Option<u32>,
    budget: Option<BudgetParams>,
}

impl TryFrom<RawRetry> for RetryParams {
    type Error = String;

    /// The default laid over [`BackoffParams::default`], the policies over the built-in ones
    /// (see [`RetryParams::policies`]).
    fn try_from(raw: RawRetry) -> Result<Self, String> {
        let built_in = RetryParams::default();
        let default = raw.default.over(&built_in.default);
        let policies = policies_over(raw.policies, built_in.policies, &default)?;
        Ok(RetryParams {
            default,
            policies,
            max_attempts: raw.max_attempts.unwrap_or(built_in.max_attempts),
            budget: raw.budget.unwrap_or(built_in.budget),
        })
    }
}

/// The policies a config file gives, laid over the built-in ones (see
/// [`RetryParams::policies`]); a kind without a built-in policy starts from `default`.
fn policies_over(
    given: BTreeMap<String, PartialBackoff>,
    mut out: BTreeMap<String, BackoffParams>,
    default: &BackoffParams,
) -> Result<BTreeMap<String, BackoffParams>, String> {
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    for (key, p) in given {
        // A kind as the check reads it (any case, `-` or a space for `_`; the kinds' names
        // are lower case with `_`): `Network` must replace the built-in `network`, not sit
        // beside it and lose to it (review). An unknown name stays unknown, for the check.
        let kind: String = key
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        if let Some(first) = named.insert(kind.clone(), key.clone()) {
            return Err(format!(
                "retry.policies: `{first}` and `{key}` name the same kind ({kind})"
            ));
        }
        let base = out.get(&kind).unwrap_or(default).clone();
        out.insert(kind, p.over(&base));
    }
    Ok(out)
}

impl Default for RetryParams {
    /// Default backoff; OOM retries without delay (the task changed, waiting buys nothing);
    /// network and timeouts back off longer (base 5 s, cap 300 s); at most 10 attempts.
    fn default() -> Self {
        let no_delay = BackoffParams {
            base_s: 0.0,
            factor: 1.0,
            cap_s: 0.0,
            jitter: Jitter::None,
        };
        let longer = BackoffParams {
            base_s: 5.0,
            factor: 2.0,
            cap_s: 300.0,
            jitter: Jitter::Decorrelated,
        };
        let mut policies = BTreeMap::new();
        policies.insert("oom_gpu".to_string(), no_delay.clone());
        policies.insert("oom_host".to_string(), no_delay);
        policies.insert("network".to_string(), longer.clone());
        policies.insert("timeout".to_string(), longer);
        RetryParams {
            default: BackoffParams::default(),
            policies,
            max_attempts: 10,
            budget: BudgetParams::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_toml_round_trip_and_unknown_field() {
        let c = EngineConfig::default();
        let t = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<EngineConfig>(&t).unwrap(), c);
        let e = toml::from_str::<EngineConfig>("seed = 1\n[retry]\nmax_atempts = 3\n").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("max_atempts") && m.contains("line 3"), "{m}");
        let p: EngineConfig = toml::from_str("[retry.policies.network]\nbase_s = 1.0\n").unwrap();
        assert_eq!(p.retry.policies["network"].base_s, 1.0);
    }

    /// Regression (library audit): naming one kind's policy replaced the whole map, so OOM
    /// lost its no-delay policy, and a policy given in part took the generic defaults for the
    /// rest instead of its kind's.
    #[test]
    fn a_policy_given_in_part_is_laid_over_the_built_in_ones() {
        let built_in = RetryParams::default().policies;
        let p: EngineConfig = toml::from_str(
            "[retry.policies.network]\nbase_s = 1.0\n[retry.policies.thermal]\ncap_s = 9.0\n",
        )
        .unwrap();
        let got = &p.retry.policies;
        assert_eq!(got["oom_gpu"], built_in["oom_gpu"]);
        assert_eq!(got["timeout"], built_in["timeout"]);
        assert_eq!(
            got["network"],
            BackoffParams {
                base_s: 1.0,
                ..built_in["network"].clone()
            }
        );
        assert_eq!(
            got["thermal"],
            BackoffParams {
                cap_s: 9.0,
                ..BackoffParams::default()
            }
        );
        // Review: a kind without a built-in policy starts from the file's own default, not
        // the generic one; the built-in kinds keep theirs.
        let p: EngineConfig = toml::from_str(
            "[retry.default]\nbase_s = 10.0\ncap_s = 100.0\n[retry.policies.thermal]\nfactor = 3.0\n[retry.policies.network]\nfactor = 3.0\n",
        )
        .unwrap();
        let d = BackoffParams {
            base_s: 10.0,
            cap_s: 100.0,
            ..BackoffParams::default()
        };
        assert_eq!(p.retry.default, d);
        assert_eq!(
            p.retry.policies["thermal"],
            BackoffParams {
                factor: 3.0,
                ..d.clone()
            }
        );
        assert_eq!(
            p.retry.policies["network"],
            BackoffParams {
                factor: 3.0,
                ..built_in["network"].clone()
            }
        );
        assert_eq!(p.retry.max_attempts, RetryParams::default().max_attempts);
        // A kind written in another case or with `-` replaces the built-in one (review: it
        // sat beside it and lost); two names of one kind are refused.
        let p: EngineConfig = toml::from_str(
            "[retry.policies.Network]\nbase_s = 0.5\n[retry.policies.oom-gpu]\ncap_s = 3.0\n",
        )
        .unwrap();
        assert_eq!(p.retry.policies["network"].base_s, 0.5);
        assert_eq!(p.retry.policies["oom_gpu"].cap_s, 3.0);
        assert_eq!(p.retry.policies["oom_gpu"].base_s, 0.0);
        assert!(!p.retry.policies.contains_key("Network"));
        let e = toml::from_str::<EngineConfig>(
            "[retry.policies.network]\nbase_s = 1.0\n[retry.policies.NETWORK]\nbase_s = 2.0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("name the same kind"), "{e}");
        // Unknown fields inside a policy are still refused, naming the field.
        let e = toml::from_str::<EngineConfig>("[retry.policies.network]\nbase = 1.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("base"), "{e}");
        // And the round trip holds.
        let t = toml::to_string(&p).unwrap();
        assert_eq!(toml::from_str::<EngineConfig>(&t).unwrap(), p);
    }
}
