//! Tier 4 — the fleet simulator: a seeded, closed-loop simulation of a heterogeneous fleet
//! whose failures, recovery outcomes and hidden causes are known, so that pattern detection
//! and strategy ranking can be judged against a ground truth (`faultline simulate`).
//!
//! A run goes like this:
//!
//! 1. A [`Scenario`] (TOML, see below and `data/scenarios/README.md`) is parsed and checked
//!    once; every error names the file, the line where known, and the field path
//!    (`workers.gpu.count`, `failures.gpu[1].weight`, `truth.gpu.oom_gpu.REDUCED_BATCH_SIZE`).
//! 2. The fleet is built from it: workers per hardware class (memory, vendor, browser), some
//!    of them secretly *bad* (a failure-rate multiplier and kinds of their own).
//! 3. New tasks fail as a Poisson process over the simulated clock (per-worker rates, plus
//!    bursts of one class and kind in a time window). Every failure is a
//!    [`FailureRecord`](crate::model::FailureRecord) whose timestamp comes from the simulated
//!    clock — never the wall clock — and whose message is rendered from a template the
//!    classifier recognises.
//! 4. A [`Policy`] answers each failure with a [`RecoveryAction`](crate::model::RecoveryAction):
//!    `rules` (the engine with its rules), `learned` (the engine with its learned ranking,
//!    learning from the outcomes fed back), `fixed` (a table per class and kind), `oracle`
//!    (the strategy with the highest true success probability). The simulator samples the
//!    outcome from the true success probability of the chosen strategy in the task's current
//!    state, applies the action (new config, new worker), feeds the outcome back
//!    ([`Policy::observe`]) and continues the task until it succeeds or is escalated.
//! 5. A [`Sink`] receives the failure, action and outcome history (JSON lines in
//!    [`JsonlSink`]) and, separately, the ground truth (bad workers, burst ids, causes, true
//!    success probabilities), so an analysis reading the history cannot peek.
//!
//! ```
//! use faultline::sim::{self, MemorySink, PolicyKind, RunOptions, Scenario};
//!
//! let scenario = Scenario::from_toml(r#"
//!     name = "tiny"
//!     [workers.gpu]
//!     count = 4
//!     failure_rate_per_hour = 1.0
//!     memory_gib = 80
//!     [[failures.gpu]]
//!     kind = "oom_gpu"
//!     weight = 1
//!     messages = ["CUDA out of memory. Tried to allocate {gib} GiB"]
//! "#, "tiny.toml").unwrap();
//! let mut policy = sim::policy::build(PolicyKind::Oracle, &scenario, None, None, None, 7).unwrap();
//! let mut sink = MemorySink::default();
//! let summary = sim::run(&scenario, policy.as_mut(), &RunOptions { seed: 7, failures: 50, warmup: 0 },
//!                        &mut sink).unwrap();
//! assert!(summary.failures >= 50);
//! assert_eq!(summary.tasks, summary.succeeded + summary.escalations);
//! ```
//!
//! # What the truth depends on
//!
//! The true success probability of a strategy is looked up per *cause* (a failure-mix entry:
//! hardware class + kind, optionally with its own overrides), then made state-dependent
//! ([`truth::true_success`]): strategies that cannot apply in the task's state succeed with
//! probability 0 (REDUCED_BATCH_SIZE once the batch cannot shrink, REDUCED_PRECISION at
//! int4, BROWSER_RESTART off a browser, FALLBACK_CPU on a CPU or in a fleet without CPUs,
//! DIFFERENT_WORKER when no other worker is left); when the failed worker is bad,
//! strategies that stay on it are multiplied by `same_worker_factor` and DIFFERENT_WORKER
//! succeeds at least with `different_worker_success`; during a burst every strategy that
//! keeps the task on the burst's class is multiplied by the burst's `success_factor`.
//! ESCALATION is not a recovery: its success probability is 0 and it ends the task.

mod messages;
mod output;
pub mod policy;
mod scenario;
pub mod truth;
mod world;

pub use messages::Template;
pub use output::{
    DriftTruth, FailureTruth, FleetTruth, JsonlSink, MemorySink, NullSink, Sink, Summary, TaskEnd,
    TaskTruth, TotalCost,
};
pub use policy::{DecisionContext, EnginePolicy, FixedTable, GroundTruth, Policy, PolicyKind};
pub use scenario::{
    BadWorkers, Burst, Cause, ClassKey, ClassSpec, KindKey, Scenario, ScenarioFile, TaskProps,
    Variant, Weighted, HORIZON_H, MAX_TOTAL_RATE_PER_H, MAX_WORKERS_PER_CLASS,
};
pub use world::{run, RunOptions, DEFAULT_WARMUP};

/// Errors of the simulator. Scenario errors name the file, the line where known, and the
/// field path; I/O errors name the path (their cause is the error's `source`).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A scenario or table file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An output file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A scenario (or fixed-policy table) that does not parse or does not make sense.
    #[error("invalid scenario {at}: {field}: {detail}")]
    Invalid {
        /// `file:line`, or the file alone when the line is not known.
        at: String,
        /// Field path, e.g. `workers.gpu.count`.
        field: String,
        /// Why.
        detail: String,
    },
    /// A `--fixed` table file that does not parse or does not make sense (an audit: its
    /// errors called it a scenario).
    #[error("invalid --fixed table {at}: {field}: {detail}")]
    InvalidFixed {
        /// `file:line`, or the file alone when the line is not known.
        at: String,
        /// Field path, e.g. `gpu.oom_gpu`.
        field: String,
        /// Why.
        detail: String,
    },
    /// An engine configuration that contradicts the policy it is given to (`ranking.ranker`
    /// naming the other ranker than `--policy learned` or `model`).
    #[error("invalid engine config {at}: {field}: {detail}")]
    Config {
        /// `file:line`, the file alone, or "the engine configuration" when no file is known.
        at: String,
        /// Field path, e.g. `ranking.ranker`.
        field: String,
        /// Why.
        detail: String,
    },
    /// Run options that do not make sense (`failures = 0`).
    #[error("invalid run options: {field}: {detail}")]
    Options {
        /// The option, e.g. `failures`.
        field: String,
        /// Why.
        detail: String,
    },
    /// A feature that does not exist yet (Parquet output).
    #[error("{what} is not available yet: {why}")]
    Unavailable {
        /// What was asked for.
        what: String,
        /// Why it is missing and what to use instead.
        why: String,
    },
    /// The engine refused an outcome (a simulator defect if it ever happens).
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}
