//! Tier 4 — the online manager: `handle_failure` turns a checked failure record into a
//! [`RecoveryAction`], keeping its own per-task attempt counter, ladder positions, recovery
//! history and task configuration; `record_outcome` feeds results back; [`apply`] carries an
//! action out on a [`Coordinator`].
//!
//! Decision order: classify → attempt counter → max attempts (escalate) → first matching rule
//! or the class ladder → first applicable step from the task's position on that ladder →
//! retry budget → payload (delay, worker, config, requirements, checkpoint).
//! No wall clock is read: time comes from the record.

mod coordinator;
mod durable;
mod explain;
pub mod mutate;
mod ranked;
mod registry;
mod state;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use std::collections::HashMap;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

pub use coordinator::{
    apply, Applied, Coordinator, CoordinatorError, CoordinatorEvent, MemoryCoordinator,
};
pub use durable::DurableState;
pub use explain::{probability, Explanation, LadderStep, LeftOut, RankingView};
pub use registry::{Want, Worker, WorkerRegistry};
pub use state::{
    CheckpointSnapshot, CheckpointWrite, CommittedCheckpoint, FailedRecovery, MemoryState,
    StateStore, TaskRecord, WrittenCheckpoint,
};

use crate::classify::{Classifier, ClassifyInput, MaskedRow};
use crate::config::EngineConfig;
use crate::model::{
    DecisionSource, FailureRecord, FailureType, HardwareClass, HardwareRequirements, Outcome,
    RecoveryAction, RecoveryStrategy, TaskConfig, TaskId, TaskState, Timestamp, WorkerId,
};
use crate::patterns::{Observation, Pattern, PatternDetector, PatternError};
use crate::ranking::{self, Observed, Ranker, RankingError};
use crate::retry::breaker::{BreakerState, Breakers};
use crate::retry::{RetryBudget, RetryError, RetryPolicy};
use crate::rules::{LadderRef, MatchContext, RuleSet, RulesError, Step};
use crate::store::{
    Ack, ActionRow, CompactJob, CompactScope, Entry, FailureRow, FlushFailed, FlushJob, OpenReport,
    OutcomeRow, ParquetStore, RankingSeedRow, Retention, SeedLevel, SeededContext, StoreOptions,
    TaskStateRow,
};

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Invalid retry configuration.
    #[error(transparent)]
    Retry(#[from] RetryError),
    /// Invalid rules.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// Invalid pattern parameters.
    #[error(transparent)]
    Patterns(#[from] PatternError),
    /// Invalid ranking parameters.
    #[error(transparent)]
    Ranking(#[from] RankingError),
    /// An invalid engine setting (the message names it).
    #[error("invalid config: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file could not be parsed.
    #[error("invalid {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The history store failed; the write was not acknowledged.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// An outcome for a task the engine never saw.
    #[error("outcome for unknown task '{0}'")]
    UnknownTask(String),
    /// An outcome for a task the engine knows (its state was set, or a checkpoint stored) but
    /// never recommended an action for: there is nothing to credit it to.
    #[error("outcome for task '{0}', which has no recovery action to credit it to (report its failure first)")]
    NoAction(String),
    /// A lifecycle state dated before the latest one a coordinator set for the task: a
    /// delayed message, not applied (an audit: it replaced the newer state, whose time the
    /// task then showed).
    #[error("task '{task}' has a newer state ({state}, set at {latest}); a change dated {at} is older and was not applied")]
    StaleState {
        /// The task.
        task: String,
        /// The state in force.
        state: TaskState,
        /// When it was set.
        latest: Timestamp,
        /// The stale change's time.
        at: Timestamp,
    },
    /// An outcome naming the attempt of an earlier action than its task's latest: it arrived
    /// after the task failed again (when that recovery was counted as failed), and is not
    /// credited to the latest action.
    #[error("outcome for task '{task}' is about attempt {attempt}, but the task failed again since: its latest action is attempt {latest}, and attempt {attempt}'s recovery was counted as failed")]
    StaleOutcome {
        /// The outcome's task.
        task: String,
        /// The attempt it names.
        attempt: u32,
        /// The task's latest action's attempt.
        latest: u32,
    },
    /// An outcome whose verdict contradicts the one already recorded for the task's latest
    /// action (a retried outcome repeats its verdict and is answered as a duplicate).
    #[error("outcome for task '{task}' says success {}, but its latest action already has an outcome saying success {recorded}; the first is kept", !recorded)]
    ConflictingOutcome {
        /// The outcome's task.
        task: String,
        /// The verdict recorded.
        recorded: bool,
    },
    /// A failure record a durable engine cannot log (a time outside the years 0000–9999,
    /// which no log could read back: it was decided and then lost at the next open); the
    /// message names the field.
    #[error("failure of task '{task}': {error}")]
    InvalidFailure {
        /// The failure's task.
        task: String,
        /// What is wrong, naming the field.
        error: crate::model::ModelError,
    },
    /// An outcome whose numbers are not acceptable (negative, NaN or infinite
    /// `time_to_recovery_s` or `cost`; the message names the field).
    #[error("outcome for task '{task}': {error}")]
    InvalidOutcome {
        /// The outcome's task.
        task: String,
        /// What is wrong, naming the field.
        error: crate::model::ModelError,
    },
}

/// How far apart two clocks may be when the engine compares a coordinator's time with a
/// failure's (a worker's, or the server's when the report had none): an outcome or a
/// lifecycle state dated up to this many seconds before the task's latest failure is taken
/// (a review: with the strict comparison, a state stamped by a server whose clock was a
/// minute behind the worker's, or an outcome dated by a coordinator 5 s behind the server,
/// was refused). The default of `serve --max-clock-skew`.
pub const CLOCK_TOLERANCE_S: f64 = 300.0;

/// Whether an outcome can be about task `t`'s latest action (an audit: the API took an
/// outcome dated before the failure it answers, and one naming BROWSER_RESTART for a GPU's
/// failure, and credited them). Its time, when given, is not before the task's latest
/// failure; the strategy it names, when not the action's own, is one that can be carried out
/// on the failed worker's hardware class (BROWSER_RESTART on a browser only, FALLBACK_CPU and
/// DIFFERENT_HARDWARE_CLASS off a CPU only). A coordinator may carry out another strategy than
/// the one recommended, and its outcome then teaches that strategy.
fn outcome_fits(outcome: &Outcome, t: &state::TaskRecord) -> Result<(), crate::model::ModelError> {
    use crate::model::ModelError;
    // The failure the latest action answers is the action's own time (a late failure's
    // action answers a failure dated before the task's latest).
    let answered = t.history.back().map(|a| a.timestamp).or(t.last_failure);
    if let (Some(at), Some(failed)) = (outcome.timestamp, answered) {
        if at.secs_since(failed) < -CLOCK_TOLERANCE_S {
            return Err(ModelError::Invalid {
                field: "timestamp",
                detail: format!(
                    "{at} is more than {CLOCK_TOLERANCE_S} s before the failure the task's latest action answers ({failed})"
                ),
            });
        }
    }
    let (Some(s), Some(class)) = (outcome.strategy, t.last_class) else {
        return Ok(());
    };
    if crate::rules::can_carry_out(s, class) || t.history.back().is_some_and(|a| a.strategy == s) {
        Ok(())
    } else {
        Err(ModelError::Invalid {
            field: "strategy",
            detail: format!("{s} cannot be carried out for a failure on {class} hardware"),
        })
    }
}

/// The decision engine.
#[derive(Debug, Clone)]
pub struct Engine<S: StateStore = MemoryState> {
    config: EngineConfig,
    classifier: Classifier,
    /// Recent classifications by exact (message, hint, exit code, class): messages repeat.
    class_cache: ClassCache,
    rules: RuleSet,
    retry: RetryPolicy,
    budget: RetryBudget,
    worker_breakers: Breakers<WorkerId>,
    class_breakers: Breakers<HardwareClass>,
    patterns: PatternDetector,
    ranker: Ranker,
    /// The success-model ranker, when `ranking.ranker = "model"` (it then decides).
    model_ranker: Option<crate::ranking::smart::ModelRanker>,
    /// Workers under a bad-worker pattern, as of the last refresh (`PatternParams::refresh_due`).
    bad_workers: Vec<WorkerId>,
    /// The same workers sorted, for the per-decision membership test.
    bad_sorted: Vec<WorkerId>,
    /// Bad and suspect workers (see `PatternDetector::worker_standing`), same refresh.
    standings: HashMap<WorkerId, ranking::WorkerStanding, rustc_hash::FxBuildHasher>,
    bad_workers_at: i64,
    since_refresh: u32,
    registry: WorkerRegistry,
    /// Workers per hardware class when the fleet's shape is known without a registry
    /// ([`Engine::set_fleet_shape`]; index: [`HardwareClass::index`]).
    shape: Option<[usize; HardwareClass::ALL.len()]>,
    /// The registry was handed out mutably ([`Engine::registry_mut`]): the bad-worker test's
    /// fleet is counted again before the next decision.
    fleet_stale: bool,
    /// Whether the decision under way is explained ([`Engine::decide_explained`]).
    explaining: bool,
    /// The explanation of the latest decision made while `explaining`.
    explained: Option<Explanation>,
    state: S,
}

impl Engine<MemoryState> {
    /// An engine with the default rules and in-memory state.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        Self::with_parts(config, RuleSet::defaults(), MemoryState::default())
    }

    /// The same as [`Engine::new`] with default config (for tests and embedding).
    pub fn in_memory() -> Self {
        // Default config is valid (tested).
        Self::new(EngineConfig::default()).expect("default config is valid")
    }
}

/// Everything a decision needs about the failure, resolved once.
struct Ctx<'a> {
    rec: &'a FailureRecord,
    class: HardwareClass,
    config: &'a TaskConfig,
    failed_memory: Option<f64>,
    browser: Option<&'a str>,
    /// The failed device's vendor (from the record, else the registry).
    vendor: Option<&'a str>,
    /// Other workers of the failed worker's class the task already moved away from
    /// (`TaskRecord::left_in`; counted only where the fleet's shape decides the moves).
    left: usize,
}

/// What a decision needs from a classification (Copy: no allocation on a cache hit).
#[derive(Debug, Clone, Copy)]
struct Classified {
    kind: crate::model::FailureKind,
    /// The kind the learned ranking uses (`ranking::ranked_kind`).
    rank_kind: crate::model::FailureKind,
    rule: &'static str,
    xid: Option<u32>,
    /// `ranking::message_signature` of the message.
    signature: u64,
    /// `ranking::fine_key_prefix` of rule and Xid.
    rule_key: u64,
}

/// A bounded exact-match cache of classifications (cleared when full), and one by message
/// shape (digits masked, see `classify::mask_digits`): messages that differ only in their
/// numbers share the table's verdict on their digit-free rows and their signature.
#[derive(Debug, Clone, Default)]
struct ClassCache {
    map: HashMap<u64, (CacheKey, Classified), rustc_hash::FxBuildHasher>,
    shapes: HashMap<u64, (Box<str>, MaskedRow, u64), rustc_hash::FxBuildHasher>,
    /// The latest message masked (reused: no allocation per miss).
    masked: String,
}

#[derive(Debug, Clone, PartialEq)]
struct CacheKey {
    message: Box<str>,
    hint: Option<Box<str>>,
    exit_code: Option<i32>,
    class: HardwareClass,
}

/// Entries kept before the cache starts over.
const CLASS_CACHE_CAP: usize = 8192;

/// Longest message (and type hint), in bytes, the classification cache keeps: the cap above
/// counts entries, so 8,192 messages of a megabyte each (as a server's body limit lets
/// through) would have pinned gigabytes twice over (input audit). Longer ones are
/// classified afresh each time, as messages with a stack trace are.
const CLASS_CACHE_MAX_MESSAGE: usize = 4096;

/// A step made concrete for this task.
struct Prepared {
    strategy: RecoveryStrategy,
    config: Option<TaskConfig>,
    requirements: Option<HardwareRequirements>,
    target: Option<WorkerId>,
    moves: bool,
    note: String,
}

impl<S: StateStore> Engine<S> {
    /// An engine from checked parts.
    pub fn with_parts(config: EngineConfig, rules: RuleSet, state: S) -> Result<Self, EngineError> {
        let (retry, budget) = config.retry.check()?;
        // An audit: 0 was taken and quietly kept one action per task.
        if config.history_per_task == 0 {
            return Err(EngineError::Config(
                "history_per_task must be at least 1 (the latest action is kept to credit its outcome to)"
                    .into(),
            ));
        }
        if !(config.forget_after_s.is_finite() && config.forget_after_s >= 0.0) {
            return Err(EngineError::Config(format!(
                "forget_after_s must be a finite number of seconds ≥ 0 (0: never), got {}",
                config.forget_after_s
            )));
        }
        config.breakers.worker.check("breakers.worker")?;
        config
            .breakers
            .hardware_class
            .check("breakers.hardware_class")?;
        let worker_breakers = Breakers::new(config.breakers.worker.clone());
        let class_breakers = Breakers::new(config.breakers.hardware_class.clone());
        let patterns = PatternDetector::new(config.patterns.clone())?;
        let ranker = Ranker::new(config.ranking.clone())?;
        let model_ranker = ranked::model_ranker(&config.ranking)?;
        Ok(Engine {
            config,
            classifier: Classifier::new(),
            class_cache: ClassCache::default(),
            rules,
            retry,
            budget,
            worker_breakers,
            class_breakers,
            patterns,
            ranker,
            model_ranker,
            bad_workers: Vec::new(),
            bad_sorted: Vec::new(),
            standings: HashMap::default(),
            bad_workers_at: i64::MIN,
            since_refresh: u32::MAX - 1,
            registry: WorkerRegistry::new(),
            shape: None,
            fleet_stale: false,
            explaining: false,
            explained: None,
            state,
        })
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Replaces the worker registry.
    pub fn set_registry(&mut self, mut registry: WorkerRegistry) {
        registry.merge_flags(&self.registry);
        registry.take_placements(&mut self.registry);
        self.registry = registry;
        self.sync_fleet();
    }

    /// Tells the engine how many workers each hardware class has, for a coordinator that
    /// places tasks itself (no registry): a move the fleet cannot make (another worker of a
    /// class of one, the CPU in a fleet without CPUs, another class where the next class has
    /// no workers) is then not offered, and an open breaker does not ask for one. A
    /// registry, when set, is what counts.
    pub fn set_fleet_shape(&mut self, counts: impl IntoIterator<Item = (HardwareClass, usize)>) {
        let mut shape = [0; HardwareClass::ALL.len()];
        for (c, n) in counts {
            shape[c.index()] += n;
        }
        self.shape = Some(shape);
        // The bad-worker test keeps counting the workers it has seen: given the shape's
        // counts instead it was no better on the examples (see `notebooks/ranking-experiments.md`).
    }

    /// The worker registry.
    pub fn registry(&self) -> &WorkerRegistry {
        &self.registry
    }

    /// Mutable access to the worker registry (register workers, clear flags). The bad-worker
    /// test counts the registry's workers again before the next decision, as after
    /// [`Engine::set_registry`] (before, workers registered here were unknown to it, and a
    /// class where one worker failed had no peers to compare it with).
    pub fn registry_mut(&mut self) -> &mut WorkerRegistry {
        self.fleet_stale = true;
        &mut self.registry
    }

    /// The rules in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The classifier.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The state store.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// Sets how many checkpoints per task are kept, and for how long
    /// ([`Retention::default`]: 5, none older than 7 days but the newest), from the next
    /// commit on; in memory and durable alike (before, an engine from [`Engine::open`] could
    /// not change it).
    pub fn set_checkpoint_retention(&mut self, retention: Retention) -> Result<(), EngineError> {
        if retention.keep_last == 0 {
            return Err(EngineError::Config(
                "checkpoint retention: keep_last must be at least 1".into(),
            ));
        }
        if retention
            .max_age_s
            .is_some_and(|a| !a.is_finite() || a < 0.0)
        {
            return Err(EngineError::Config(
                "checkpoint retention: max_age_s must be a finite number of seconds, at least 0"
                    .into(),
            ));
        }
        self.state.set_retention(retention);
        Ok(())
    }

    /// Consumes the engine, returning its state (e.g. to save it).
    pub fn into_state(self) -> S {
        self.state
    }

    /// A task's record.
    pub fn task(&self, id: &TaskId) -> Option<&TaskRecord> {
        self.state.task(id)
    }

    /// A task's recent recovery history, oldest first (the actions it shares, not copies).
    pub fn recovery_history(&self, id: &TaskId) -> Vec<Arc<RecoveryAction>> {
        self.state
            .task(id)
            .map(|t| t.history.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Decides the recovery for one failure and logs failure and action; the [`Ack`] resolves
    /// once both are durable (at once for in-memory state). Callers that answer over a network
    /// wait on the Ack after releasing any lock around the engine, so fsyncs are shared.
    ///
    /// The action is shared with the task's in-memory history (an `Arc`, not a copy: keeping
    /// a decision costs a reference count, not a clone of its reason, configuration and
    /// exclusions).
    pub fn decide(
        &mut self,
        rec: &FailureRecord,
    ) -> Result<(Arc<RecoveryAction>, Ack), EngineError> {
        // A logged record must read back: a time outside the years 0000–9999 was decided,
        // acknowledged and then skipped at the next open. (In memory any time is taken; the
        // windows saturate at the ends of the range.)
        if self.state.durable()
            && Timestamp::from_micros_checked(rec.timestamp.as_micros()).is_none()
        {
            return Err(EngineError::InvalidFailure {
                task: rec.task_id.as_str().to_string(),
                error: crate::model::ModelError::Invalid {
                    field: "timestamp",
                    detail: format!(
                        "{} µs since the epoch is outside the years 0000-9999",
                        rec.timestamp.as_micros()
                    ),
                },
            });
        }
        if self.fleet_stale {
            self.fleet_stale = false;
            self.sync_fleet();
        }
        let class = rec.hardware.class;
        let cls = self.classify(rec);
        let kind = cls.kind;

        // The engine's own counters.
        let entry = self.state.task_mut(&rec.task_id);
        let first = entry.attempts == 0;
        let failed_recovery = entry.failed_recovery.take();
        entry.observe(rec, kind);
        entry.last_signature = Some(cls.signature);
        entry.last_fine_key = None;
        self.left_placement(rec);
        if first {
            self.budget.deposit(rec.timestamp);
        }
        self.observe_patterns(rec, kind);
        let burst = self.in_burst(class, kind);
        let worker_breaker = self.worker_breaker_failure(rec);
        let class_breaker = self.class_breakers.failure(&class, rec.timestamp);
        // Asked without forgetting expired retries: a replay does not decide again.
        let retry_open = self.budget.would_allow(rec.timestamp);
        let entry = self.state.task(&rec.task_id).expect("observed above");
        let attempt = entry.attempts;
        let failure_type = FailureType::judge(
            kind,
            entry.streak - 1,
            entry.recovered_kinds.contains(&kind),
        );
        let checkpoint = entry.latest_checkpoint.clone();
        let last_delay = entry.last_delay_s;
        let default_config = TaskConfig::default();
        let ctx = self.ctx(rec, entry, &default_config);

        let mut source;
        let mut prepared;
        let mut attention = None;
        let mut propensity = 1.0;
        let mut decided_key: Option<u64> = None;
        let mut chosen: Option<ranking::Choice> = None;
        // For an explained decision only (`decide_explained`): what the ranking made of it.
        let mut rank_outcome = explain::RankOutcome::Off;
        let mut view = None;
        let mut from_rule = false;
        let mut overrides: Vec<String> = Vec::new();
        if attempt > self.retry.max_attempts {
            rank_outcome = explain::RankOutcome::OverLimit {
                attempt,
                max: self.retry.max_attempts,
            };
            source = DecisionSource {
                kind: "max_attempts".into(),
                rule: None,
                step: None,
            };
            prepared = escalation(format!(
                "exceeded maximum attempts ({})",
                self.retry.max_attempts
            ));
        } else {
            let ladder = self.ladder(&ctx, &cls, attempt);
            let start = entry.next_step(ladder.name) as usize;
            let excluded = &entry.excluded;
            from_rule = ladder.from_rule;
            source = DecisionSource {
                kind: if ladder.from_rule { "rule" } else { "ladder" }.into(),
                rule: Some(ladder.name.clone()),
                step: None,
            };
            let attention_for = |step: &Step| {
                step.attention.then(|| {
                    match (
                        cls.xid,
                        cls.xid.and_then(|x| self.rules.xid_table().action(x)),
                    ) {
                        (Some(x), Some(a)) => format!("NVIDIA Xid {x}: vendor action {a}"),
                        _ => format!("{kind} on this worker"),
                    }
                })
            };
            // The learned ranking first (when on and it has evidence): its step is prepared
            // once, and the ladder's only when the ranking abstains or has nothing that can
            // be carried out. No allocation: fixed arrays over the strategies.
            let mut learned = None;
            if self.config.ranking.enabled {
                let l = self.rank_and_prepare(
                    &ctx,
                    &cls,
                    entry,
                    (&ladder, start),
                    attempt,
                    (worker_breaker, class_breaker, burst),
                    retry_open,
                );
                decided_key = Some(l.ranked.key);
                chosen = l.ranked.choice;
                if self.explaining {
                    view = l.ranked.view;
                    // A choice that could not be carried out was left out and the failure
                    // ranked again: no choice at the end of that means none was possible.
                    let any_denied = view.as_deref().is_some_and(|v: &RankingView| {
                        v.left_out
                            .iter()
                            .any(|x| x.reason == explain::NO_WORKER_FOR_CHOICE)
                    });
                    rank_outcome = match (chosen, &l.prepared) {
                        (None, _) if any_denied => explain::RankOutcome::NothingPossible,
                        (None, _) => explain::RankOutcome::Abstained,
                        (Some(c), Some(_)) => explain::RankOutcome::Chose(c),
                        // `rank_and_prepare` returns a choice unprepared only when it gives way.
                        (Some(c), None) => explain::RankOutcome::GaveWay(c),
                    };
                }
                if let (Some((p, step, index)), Some(choice)) = (l.prepared, chosen) {
                    learned = Some((p, step, index, choice));
                }
            }
            match learned {
                Some((p, step, index, choice)) => {
                    source.kind = "learned".into();
                    source.step = index;
                    attention = attention_for(&step);
                    prepared = p;
                    propensity = choice.propensity;
                }
                None => {
                    let found =
                        ladder
                            .steps
                            .iter()
                            .enumerate()
                            .skip(start)
                            .find_map(|(i, step)| {
                                self.prepare(step, &ctx, excluded).map(|p| (i, *step, p))
                            });
                    match found {
                        Some((i, step, p)) => {
                            source.step = Some(i as u32 + 1);
                            attention = attention_for(&step);
                            prepared = p;
                        }
                        None => {
                            prepared = escalation(format!(
                                "ladder '{}' exhausted after {} step(s)",
                                ladder.name,
                                ladder.steps.len()
                            ));
                        }
                    }
                }
            }
        }

        // Circuit breakers: an open worker breaker moves same-worker retries elsewhere; an open
        // class breaker moves same-class attempts to another class.
        use RecoveryStrategy as S;
        let same_worker = retries_in_place(prepared.strategy);
        if self.worker_breakers.enabled() && worker_breaker == BreakerState::Open && same_worker {
            if let Some(p) = self.prepare(&Step::plain(S::DifferentWorker), &ctx, &entry.excluded) {
                source.kind = "circuit_breaker".into();
                if self.explaining {
                    overrides.push(format!(
                        "worker {}'s circuit breaker is open: {} instead of {}, which stays on the worker",
                        rec.worker_id, p.strategy, prepared.strategy
                    ));
                }
                prepared = p;
                prepared.note = format!(
                    "worker {} breaker is open; {}",
                    rec.worker_id, prepared.note
                );
            }
        }
        let same_class = stays_in_class(prepared.strategy);
        if self.class_breakers.enabled() && class_breaker == BreakerState::Open && same_class {
            if let Some(p) = self.prepare(
                &Step::plain(S::DifferentHardwareClass),
                &ctx,
                &entry.excluded,
            ) {
                source.kind = "circuit_breaker".into();
                if self.explaining {
                    overrides.push(format!(
                        "the {class} circuit breaker is open: {} instead of {}, which stays on {class}",
                        p.strategy, prepared.strategy
                    ));
                }
                prepared = p;
                prepared.note = format!("{class} breaker is open; {}", prepared.note);
            }
        }

        // Retry budget: a plain retry beyond the budget is deferred to the backoff cap.
        let backoff = *self.retry.backoff(kind);
        let mut rng = decision_rng(self.config.seed, &rec.task_id, attempt);
        let mut delay = 0.0;
        if prepared.strategy.is_retry() {
            // `retry_open` changed nothing: `allows` here forgot expired entries on a deferral,
            // which records no retry and which a replay therefore never asks about (review).
            if retry_open {
                if prepared.strategy == RecoveryStrategy::DelayedRetry {
                    delay = backoff.delay(attempt, last_delay, &mut rng);
                }
            } else {
                source.kind = "retry_budget".into();
                if self.explaining {
                    overrides.push(match prepared.strategy {
                        S::DelayedRetry => format!(
                            "the retry budget is spent: the delayed retry waits the backoff cap ({} s)",
                            backoff.cap()
                        ),
                        other => format!(
                            "the retry budget is spent: {other} deferred to a DELAYED_RETRY at the backoff cap ({} s)",
                            backoff.cap()
                        ),
                    });
                }
                prepared.strategy = RecoveryStrategy::DelayedRetry;
                prepared.note = "retry budget exhausted: deferred to the backoff cap".into();
                delay = backoff.cap();
            }
        }

        let excluded = if prepared.moves {
            let mut ex = entry.excluded.clone();
            if !ex.contains(&rec.worker_id) {
                ex.push(rec.worker_id.clone());
            }
            ex
        } else {
            entry.excluded.clone()
        };
        let target = match prepared.strategy {
            RecoveryStrategy::ImmediateRetry
            | RecoveryStrategy::DelayedRetry
            | RecoveryStrategy::BrowserRestart
            | RecoveryStrategy::ResetWorkerState => Some(rec.worker_id.clone()),
            _ => prepared.target.take(),
        };
        // "{kind} on {class} worker {worker} (attempt {attempt}; {source}): {strategy} — {note}",
        // sized once and pieced together without the formatting machinery (the decision
        // path's costliest text).
        let mut reason = String::with_capacity(128 + prepared.note.len());
        let mut number = itoa::Buffer::new();
        for piece in [
            kind.as_str(),
            " on ",
            class.as_str(),
            " worker ",
            rec.worker_id.as_str(),
            " (attempt ",
            number.format(attempt),
            "; ",
        ] {
            reason.push_str(piece);
        }
        let _ = source.write_into(&mut reason);
        reason.push_str("): ");
        reason.push_str(prepared.strategy.as_str());
        if !prepared.note.is_empty() {
            reason.push_str(" — ");
            reason.push_str(&prepared.note);
        }
        let action = Arc::new(RecoveryAction {
            task_id: rec.task_id.clone(),
            strategy: prepared.strategy,
            failed_worker: rec.worker_id.clone(),
            target_worker: target,
            excluded_workers: excluded,
            delay_s: delay,
            modified_config: prepared.config,
            hardware_requirements: prepared.requirements,
            resume_checkpoint: if prepared.strategy == RecoveryStrategy::Escalation {
                None
            } else {
                checkpoint
            },
            priority_adjustment: if prepared.strategy == RecoveryStrategy::Escalation {
                0
            } else {
                (attempt - 1).min(3) as i32
            },
            worker_attention: attention.clone(),
            reason,
            source,
            propensity,
            attempt,
            kind,
            failure_type,
            classifier_rule: Cow::Borrowed(cls.rule),
            xid: cls.xid,
            timestamp: rec.timestamp,
        });
        if self.explaining {
            let facts = explain::Facts {
                outcome: rank_outcome,
                ladder: action.source.rule.as_deref().map(|n| (n, from_rule)),
                view: view.as_deref(),
                overrides: &overrides,
                walked: (self.longest_ladder(), self.config.ranking.escalate_below),
                attempt,
                strategy: action.strategy,
            };
            self.explained = Some(Explanation {
                summary: explain::summary(&facts),
                ranking: view.map(|v| *v),
            });
        }
        if let Some(f) = failed_recovery {
            self.learn_continuation(&f, &action, chosen);
        }
        self.apply_ranked_action(&action, decided_key, Some(burst));
        let ack = if self.state.durable() {
            self.state.log(vec![
                Entry::Failure(Box::new(FailureRow {
                    record: rec.clone(),
                    kind,
                    failure_type: kind.failure_type(),
                    classifier_rule: action.classifier_rule.to_string(),
                    xid: action.xid,
                    template_id: None,
                    cluster_id: None,
                })),
                Entry::Action(Box::new(ActionRow {
                    action: Arc::clone(&action),
                    model_version: Cow::Borrowed(MODEL_VERSION_RULES),
                })),
            ])?
        } else {
            Ack::done()
        };
        Ok((action, ack))
    }

    /// [`Engine::decide`], and why: which mechanism decided and, when the learned ranking
    /// was asked, what it knew of each strategy it could choose from
    /// ([`Explanation`]). The decision is the one `decide` makes from the same state (the
    /// explanation draws nothing); building the explanation costs allocations `decide`
    /// does not make, so ask for it when someone will read it.
    pub fn decide_explained(
        &mut self,
        rec: &FailureRecord,
    ) -> Result<(Arc<RecoveryAction>, Ack, Explanation), EngineError> {
        self.explaining = true;
        self.explained = None;
        let decided = self.decide(rec);
        self.explaining = false;
        let (action, ack) = decided?;
        let explanation = self.explained.take().unwrap_or_else(|| Explanation {
            summary: String::new(),
            ranking: None,
        });
        Ok((action, ack, explanation))
    }

    /// Decides and waits until the decision is durable.
    pub fn try_handle_failure(
        &mut self,
        rec: &FailureRecord,
    ) -> Result<Arc<RecoveryAction>, EngineError> {
        let (action, ack) = self.decide(rec)?;
        ack.wait()?;
        Ok(action)
    }

    /// Classifies a record, from the cache when the same message was seen on the same class
    /// (records with a stack trace are always classified afresh).
    fn classify(&mut self, rec: &FailureRecord) -> Classified {
        use std::hash::{BuildHasher, Hash, Hasher};
        let class = rec.hardware.class;
        let input = ClassifyInput::of_record(rec);
        let cacheable = rec.error.stacktrace.as_deref().is_none_or(str::is_empty)
            && rec.error.message.len() <= CLASS_CACHE_MAX_MESSAGE
            && rec
                .error
                .type_hint
                .as_deref()
                .is_none_or(|h| h.len() <= CLASS_CACHE_MAX_MESSAGE);
        if !cacheable {
            let c = self.classifier.verdict(&input);
            return Classified {
                kind: c.kind,
                rank_kind: ranking::ranked_kind(c.kind, c.rule),
                rule: c.rule,
                xid: c.xid,
                signature: ranking::message_signature(&rec.error.message),
                rule_key: ranking::fine_key_prefix(c.rule, c.xid),
            };
        }
        let mut h = rustc_hash::FxBuildHasher.build_hasher();
        rec.error.message.hash(&mut h);
        rec.error.type_hint.hash(&mut h);
        rec.error.exit_code.hash(&mut h);
        class.hash(&mut h);
        let key = h.finish();
        if let Some((k, c)) = self.class_cache.map.get(&key) {
            if *k.message == *rec.error.message
                && k.hint.as_deref() == rec.error.type_hint.as_deref()
                && k.exit_code == rec.error.exit_code
                && k.class == class
            {
                return *c;
            }
        }
        // A new message of a known shape: only the table's rows that tell digits apart run.
        let cache = &mut self.class_cache;
        crate::classify::mask_digits(&rec.error.message, &mut cache.masked);
        let shape = rustc_hash::FxBuildHasher.hash_one(&cache.masked);
        let (row, signature) = match cache.shapes.get(&shape) {
            Some((k, row, sig)) if **k == *cache.masked => (*row, *sig),
            _ => {
                let row = self.classifier.masked_row(&cache.masked);
                // Masking keeps a digit a digit: the signature is the message's.
                let sig = ranking::message_signature(&cache.masked);
                if cache.shapes.len() >= CLASS_CACHE_CAP {
                    cache.shapes.clear();
                }
                cache
                    .shapes
                    .insert(shape, (cache.masked.as_str().into(), row, sig));
                (row, sig)
            }
        };
        let c = self.classifier.verdict_masked(&input, row);
        let c = Classified {
            kind: c.kind,
            rank_kind: ranking::ranked_kind(c.kind, c.rule),
            rule: c.rule,
            xid: c.xid,
            signature,
            rule_key: ranking::fine_key_prefix(c.rule, c.xid),
        };
        if self.class_cache.map.len() >= CLASS_CACHE_CAP {
            self.class_cache.map.clear();
        }
        self.class_cache.map.insert(
            key,
            (
                CacheKey {
                    message: rec.error.message.as_str().into(),
                    hint: rec.error.type_hint.as_deref().map(Into::into),
                    exit_code: rec.error.exit_code,
                    class,
                },
                c,
            ),
        );
        c
    }

    /// Applies a decided action to the engine's state: the task's record (ladder position,
    /// exclusions, config, history), the retry budget and the worker registry. Used by
    /// `handle_failure` and, on restart, to replay logged actions into the same state.
    pub fn apply_action(&mut self, action: &RecoveryAction) {
        self.apply_ranked_action(&Arc::new(action.clone()), None, None);
    }

    /// [`Engine::apply_action`], keeping the fine ranking key the action was decided in and
    /// whether its failure came in a burst (`None`: as the task's latest failure said).
    fn apply_ranked_action(
        &mut self,
        action: &Arc<RecoveryAction>,
        fine_key: Option<u64>,
        burst: Option<bool>,
    ) {
        let cap = self.config.history_per_task.max(1);
        let entry = self.state.task_mut(&action.task_id);
        entry.apply_action(action, cap);
        // The task holds a slot of the worker it is moved to; retried where it failed, it
        // keeps the slot it held there (if it had been moved there); otherwise (escalated,
        // moved with no worker named) it holds none.
        let stays = action.target_worker.as_ref() == Some(&action.failed_worker);
        let held = if stays {
            entry
                .placed_on
                .clone()
                .filter(|w| *w == action.failed_worker)
        } else {
            action.target_worker.clone()
        };
        let new = held.clone();
        if let Some(w) = std::mem::replace(&mut entry.placed_on, held) {
            self.registry.unplace(&w);
        }
        if let Some(w) = &new {
            self.registry.place(w);
        }
        if let Some(burst) = burst {
            entry.last_burst = burst;
        }
        if fine_key.is_some() {
            entry.last_fine_key = fine_key;
        }
        if action.strategy.is_retry() && action.source.kind != "retry_budget" {
            self.budget.record_retry(action.timestamp);
        }
        if let Some(why) = &action.worker_attention {
            self.registry.flag(&action.failed_worker, why);
        }
        // A late failure of a task already in a final state holds no slot (a review: it held
        // one until the task was forgotten).
        self.settle_placement(&action.task_id);
    }

    /// Teaches the ranking the continuation of a task's failed recovery `f` from the
    /// decision that followed it: the attempts the budget still counts when the task is
    /// escalated, else one more attempt plus the expected further attempts of the ranking's
    /// choice ((1 − its success) × its own continuation). A decision the ranking did not make
    /// (the rules alone, a breaker's or the retry budget's override) teaches nothing. What
    /// it teaches depends on the budget the failed recovery left the task
    /// ([`ranking::Ranker::learn_continuation_at`]).
    fn learn_continuation(
        &mut self,
        f: &FailedRecovery,
        action: &RecoveryAction,
        chosen: Option<ranking::Choice>,
    ) {
        let further = if action.strategy == RecoveryStrategy::Escalation {
            Some(f64::from(
                (self.retry.max_attempts + 1).saturating_sub(f.attempt),
            ))
        } else {
            chosen
                .filter(|c| c.strategy == action.strategy && action.source.kind == "learned")
                .and_then(|c| {
                    c.continuation
                        .map(|cont| 1.0 + (1.0 - c.expected_success) * cont)
                })
        };
        if let Some(x) = further {
            self.ranker.learn_continuation_at(
                (f.class, f.kind),
                (f.template, f.signature),
                f.strategy,
                x,
                Some(self.retry.max_attempts.saturating_sub(f.attempt)),
            );
        }
    }

    /// The action already decided for `rec` when `rec` repeats one of the task's failures — a
    /// client's retry of a request whose answer it lost, or a client resending its log after
    /// a crash — to be answered with that action ([`Engine::logged`]) rather than decided
    /// again, which would count the failure twice and advance the ladder. The task's latest
    /// failure is repeated by the same timestamp to the microsecond, worker and message
    /// signature (its words, numbers masked) while it has no outcome yet (after one, the same
    /// report is the task failing again); an earlier failure, dated before the latest, by the
    /// same timestamp and worker as an action the task's history holds, classified alike
    /// (the same classifier rule and Xid; an audit: resending 1,000 lines after a
    /// crash stored 850 of them again, out of time order). The server
    /// and `recommend --data` check this before [`Engine::decide`]; `decide` itself decides
    /// every record it is given.
    pub fn duplicate_failure(&self, rec: &FailureRecord) -> Option<Arc<RecoveryAction>> {
        let entry = self.state.task(&rec.task_id)?;
        let latest = entry.last_failure?;
        // The latest failure by time decided before an earlier-dated one arrived: it is not
        // the last decided, and is found among the earlier ones (a review: its resend was
        // decided again as a new attempt — 367 decisions for 300 failures under load).
        let overtaken = rec.timestamp == latest
            && entry
                .history
                .back()
                .is_some_and(|l| l.timestamp != rec.timestamp);
        if rec.timestamp < latest || overtaken {
            let a = entry
                .history
                .iter()
                .rev()
                .find(|a| a.timestamp == rec.timestamp && a.failed_worker == rec.worker_id)?;
            // The same failure is classified the same way (an audit: a late Xid 79 report
            // dated like an earlier out-of-memory on the same worker got that failure's
            // action and was never recorded).
            let c = self.classifier.verdict(&ClassifyInput::of_record(rec));
            return (c.rule == a.classifier_rule && c.xid == a.xid).then(|| Arc::clone(a));
        }
        if latest != rec.timestamp || entry.outcome_recorded {
            return None;
        }
        let last = entry.history.back()?;
        (last.failed_worker == rec.worker_id
            && last.timestamp == rec.timestamp
            && entry.last_signature == Some(ranking::message_signature(&rec.error.message)))
        .then(|| Arc::clone(last))
    }

    /// An [`Ack`] that resolves once everything logged so far is durable: what the answer to
    /// a duplicate ([`Engine::duplicate_failure`]) waits for.
    pub fn logged(&self) -> Ack {
        self.state.logged()
    }

    /// Gives back the slot a task held where it had been moved when its failure `rec` came
    /// from another worker: it left that one (before its next move is picked, which may take
    /// the slot again). Failed there, it holds the slot until its next action says whether it
    /// stays (a review: a retry in place gave it back while the task still ran there).
    fn left_placement(&mut self, rec: &FailureRecord) {
        let Some(entry) = self.state.task(&rec.task_id) else {
            return;
        };
        if entry
            .placed_on
            .as_ref()
            .is_some_and(|w| *w != rec.worker_id)
        {
            if let Some(w) = self.state.task_mut(&rec.task_id).placed_on.take() {
                self.registry.unplace(&w);
            }
        }
    }

    /// Replays one logged failure and the action decided for it (restart): the same state
    /// changes as `handle_failure`, without deciding again.
    pub fn replay(&mut self, rec: &FailureRecord, action: &Arc<RecoveryAction>) {
        let entry = self.state.task_mut(&rec.task_id);
        let first = entry.attempts == 0;
        let failed_recovery = entry.failed_recovery.take();
        entry.observe(rec, action.kind);
        entry.last_signature = Some(ranking::message_signature(&rec.error.message));
        entry.last_fine_key = None;
        self.left_placement(rec);
        if first {
            self.budget.deposit(rec.timestamp);
        }
        self.observe_patterns(rec, action.kind);
        let burst = self.in_burst(rec.hardware.class, action.kind);
        let worker_breaker = self.worker_breaker_failure(rec);
        let class_breaker = self
            .class_breakers
            .failure(&rec.hardware.class, rec.timestamp);
        if let Some(f) = failed_recovery {
            let retry_open = self.budget.would_allow(rec.timestamp);
            // What `decide` learned: the ranking's choice again, from the same state.
            let chosen = (self.config.ranking.enabled && action.source.kind == "learned")
                .then(|| {
                    let cls = self.classify(rec);
                    let entry = self.state.task(&rec.task_id).expect("observed above");
                    let default_config = TaskConfig::default();
                    let ctx = self.ctx(rec, entry, &default_config);
                    let ladder = self.ladder(&ctx, &cls, entry.attempts);
                    let start = entry.next_step(ladder.name) as usize;
                    self.rank_and_prepare(
                        &ctx,
                        &cls,
                        entry,
                        (&ladder, start),
                        entry.attempts,
                        (worker_breaker, class_breaker, burst),
                        retry_open,
                    )
                    .ranked
                    .choice
                })
                .flatten();
            self.learn_continuation(&f, action, chosen);
        }
        self.apply_ranked_action(action, None, Some(burst));
    }

    /// Whether a failure of `kind` on `class`, just observed, came in a burst whose outcomes
    /// the ranking keeps apart (`ranking.burst_apart`).
    fn in_burst(&self, class: HardwareClass, kind: crate::model::FailureKind) -> bool {
        self.config.ranking.burst_apart && self.patterns.in_burst(class, kind)
    }

    fn observe_patterns(&mut self, rec: &FailureRecord, kind: crate::model::FailureKind) {
        self.patterns.observe(&Observation {
            task: &rec.task_id,
            worker: &rec.worker_id,
            class: rec.hardware.class,
            kind,
            template: None,
            at: rec.timestamp,
        });
        // Refresh the bad-worker list when due (`PatternParams::refresh_due`).
        let now = rec.timestamp.as_micros();
        self.since_refresh = self.since_refresh.saturating_add(1);
        if self
            .config
            .patterns
            .refresh_due(self.since_refresh, now.saturating_sub(self.bad_workers_at))
        {
            self.patterns.prune();
            let (bad, suspects) = self.patterns.worker_standing(rec.timestamp);
            self.standings.clear();
            for w in suspects {
                self.standings.insert(w, ranking::WorkerStanding::Suspect);
            }
            for w in &bad {
                self.standings
                    .insert(w.clone(), ranking::WorkerStanding::Bad);
            }
            self.bad_workers = bad;
            self.bad_sorted.clone_from(&self.bad_workers);
            self.bad_sorted.sort_unstable();
            self.bad_workers_at = now;
            self.since_refresh = 0;
            self.forget_idle(rec.timestamp);
        }
    }

    /// Forgets the tasks whose latest failure or state change (the later; a task that never
    /// failed has only the latter) is more than `forget_after_s` of report time
    /// before `now` (run with the bad-worker refresh, linear in the tasks) — but not a task
    /// with a checkpoint to resume from, and not one whose latest action still awaits its
    /// outcome (unless idle four times as long: a coordinator that never reports outcomes).
    fn forget_idle(&mut self, now: Timestamp) {
        let after = self.config.forget_after_s;
        if after <= 0.0 {
            return;
        }
        let cutoff = now.as_micros().saturating_sub((after * 1e6) as i64);
        let long_cutoff = now.as_micros().saturating_sub((4.0 * after * 1e6) as i64);
        // The slots forgotten tasks held.
        let mut freed = Vec::new();
        self.state.retain_tasks(&mut |t| {
            // The later of the latest failure and the latest state a coordinator set (a task
            // that never failed, known from a state change alone, is forgotten too).
            let Some(last) = t
                .last_failure
                .max(t.last_state_at)
                .map(Timestamp::as_micros)
            else {
                return true;
            };
            let settled =
                t.history.is_empty() || t.outcome_recorded || t.state == TaskState::Escalated;
            let keep = last >= cutoff
                || t.latest_checkpoint.is_some()
                || (!settled && last >= long_cutoff);
            if !keep {
                freed.extend(t.placed_on.clone());
            }
            keep
        });
        for w in &freed {
            self.registry.unplace(w);
        }
    }

    /// Gives back the slot task `id` holds where it was moved once it reached a final state
    /// (succeeded, escalated, failed).
    fn settle_placement(&mut self, id: &TaskId) {
        let Some(t) = self.state.task(id) else {
            return;
        };
        if !matches!(
            t.state,
            TaskState::Succeeded | TaskState::Escalated | TaskState::Failed
        ) || t.placed_on.is_none()
        {
            return;
        }
        if let Some(w) = self.state.task_mut(id).placed_on.take() {
            self.registry.unplace(&w);
        }
    }

    /// Records a failure with the failed worker's breaker and returns its state; a placeholder
    /// for "no worker known" (`NULL`, `unknown`, [`WorkerId::is_placeholder`]) has no breaker:
    /// the failures of every task without a worker would otherwise open one and move them all.
    fn worker_breaker_failure(&mut self, rec: &FailureRecord) -> BreakerState {
        if rec.worker_id.is_placeholder() {
            BreakerState::Closed
        } else {
            self.worker_breakers.failure(&rec.worker_id, rec.timestamp)
        }
    }

    /// Active patterns at `at`, most severe first.
    pub fn patterns(&self, at: Timestamp) -> Vec<Pattern> {
        self.patterns.patterns(at)
    }

    /// The latest report time pattern detection has seen (none before the first failure):
    /// the time its windows, like the breakers', run on.
    pub fn pattern_time(&self) -> Option<Timestamp> {
        self.patterns.now()
    }

    /// Workers under an active bad-worker pattern (as of the last refresh).
    pub fn bad_workers(&self) -> &[WorkerId] {
        &self.bad_workers
    }

    /// Tells pattern detection how many workers each class has (from the registry).
    fn sync_fleet(&mut self) {
        let mut fleet = HashMap::new();
        for c in HardwareClass::ALL {
            let n = self.registry.count(*c);
            if n > 0 {
                fleet.insert(*c, n);
            }
        }
        self.patterns.set_fleet(fleet);
    }

    /// Applies an outcome to the task and, on success, to the breakers of the worker and
    /// class the task ran on after its last action ([`ran_on`]; never a worker or class it
    /// was moved away from), used live and on replay.
    fn apply_outcome(&mut self, id: &TaskId, outcome: &Outcome) -> Timestamp {
        let entry = self.state.task_mut(id);
        entry.apply_outcome(outcome);
        // A recovery that failed ran no further where it was moved: its slot is free (a
        // recovered task holds it until it fails again or ends).
        if !outcome.success {
            if let Some(w) = entry.placed_on.take() {
                self.registry.unplace(&w);
            }
        }
        let entry = self.state.task_mut(id);
        let at = outcome.timestamp.or(entry.last_failure).unwrap_or_default();
        let last = entry.history.back().map(|a| {
            let kind = ranking::ranked_kind(a.kind, &a.classifier_rule);
            (kind, a.strategy, a.attempt)
        });
        // Where a success happened: what its breakers are credited with.
        let credit = entry.history.back().filter(|_| outcome.success).map(|a| {
            let strategy = outcome.strategy.unwrap_or(a.strategy);
            let (worker, class) = ran_on(a, strategy, entry.last_class);
            (worker.cloned(), class)
        });
        // Whether the decision was ranked as on a worker called bad (its fine key says so).
        let on_bad = entry.history.back().is_some_and(|a| {
            let bad = ranking::fine_key(
                &a.classifier_rule,
                a.xid,
                a.attempt,
                ranking::WorkerStanding::Bad,
            );
            entry.last_fine_key == Some(bad)
                || (entry.last_fine_key.is_none()
                    && standing(&self.standings, &a.failed_worker) == ranking::WorkerStanding::Bad)
        });
        let class = entry.last_class;
        let signature = entry.last_signature;
        let burst = entry.last_burst;
        // The fine ranking context the last action was decided in (see `decide`); recomputed
        // from the action when it was not kept (replayed history).
        let fine_key = entry.last_fine_key;
        let rank_key = fine_key.or_else(|| {
            entry.history.back().map(|a| {
                let standing = standing(&self.standings, &a.failed_worker);
                let key = ranking::fine_key(&a.classifier_rule, a.xid, a.attempt, standing);
                if burst {
                    ranking::burst_key(key)
                } else {
                    key
                }
            })
        });
        // A failed recovery waits for the task's next decision to learn its continuation.
        entry.failed_recovery = match (&last, class) {
            (Some((kind, strategy, attempt)), Some(class)) if !outcome.success => {
                Some(FailedRecovery {
                    class,
                    kind: *kind,
                    template: rank_key,
                    signature,
                    strategy: outcome.strategy.unwrap_or(*strategy),
                    attempt: *attempt,
                })
            }
            _ => None,
        };
        let model_bits = self
            .model_ranker
            .as_ref()
            .and_then(|_| ranked::outcome_bits(&entry.history, &self.bad_workers));
        if let Some((worker, class)) = credit {
            if let Some(worker) = &worker {
                self.worker_breakers.success(worker, at);
            }
            if let Some(class) = class {
                self.class_breakers.success(&class, at);
            }
        }
        if let (Some((kind, strategy, _)), Some(class)) = (last, class) {
            let observed = Observed {
                class,
                kind,
                template: rank_key,
                signature,
                strategy: outcome.strategy.unwrap_or(strategy),
                success: outcome.success,
                cost: outcome.cost,
                burst,
                bad_worker: on_bad && !burst,
            };
            self.ranker.update(&observed);
            self.update_model(&observed, model_bits);
        }
        at
    }

    /// The learned ranking (its counts, for reports and training).
    pub fn ranker(&self) -> &Ranker {
        &self.ranker
    }

    /// Replaces the learned ranking wholesale: what it learned (finer contexts,
    /// continuations) is gone. To add a trained model's evidence instead, seed it through
    /// [`Engine::seed_ranking`], which logs the seed so that a replay takes it at the same
    /// point.
    pub fn set_ranker(&mut self, ranker: Ranker) {
        self.ranker = ranker;
    }

    /// The learned ranking, to change it in place. A change here is not logged, so a replay
    /// of the history does not make it: seed a trained model's success tables through
    /// [`Engine::seed_ranking`] instead (a review: seeded here, a durable engine restarted
    /// with the model decided otherwise).
    pub fn ranker_mut(&mut self) -> &mut Ranker {
        &mut self.ranker
    }

    /// Seeds the learned ranking with a trained model's success tables where it has no
    /// evidence of its own ([`Ranker::apply_seed`]; `model` names the model) and logs what it
    /// took: a replay of the history seeds the same contexts at the same point, so an engine
    /// opened again decides as this one would have (a review: restarted with `--model`, a
    /// server decided 4,995 of 5,000 later failures otherwise than one that never stopped,
    /// as the replay learned every outcome before the model came). Returns the (hardware
    /// class, kind) contexts seeded. Nothing is logged when nothing was taken (the model an
    /// opened history already took, again).
    ///
    /// Nothing is seeded (or logged) while the learned ranking is off or is the smartcore
    /// model ranker, which has no success tables (a review: a model given to a server only to
    /// annotate its answers seeded a ranking turned on months later). The seed is logged
    /// first and taken after: when the log refuses it, nothing changes.
    pub fn seed_ranking(
        &mut self,
        model: &str,
        contexts: &[SeededContext],
    ) -> Result<usize, EngineError> {
        let ranking = &self.config.ranking;
        if !ranking.enabled || ranking.ranker != crate::config::RankerKind::Bayes {
            return Ok(0);
        }
        let plan = self.ranker.seed_plan(contexts);
        if plan.is_empty() {
            return Ok(0);
        }
        if self.state.durable() {
            // Not waited for: the log keeps its order, so a decision acknowledged after this
            // has it durable too; one lost with a crash is taken again at the next start.
            let _in_order = self.state.log(vec![Entry::RankingSeed(RankingSeedRow {
                timestamp: Timestamp::now(),
                model: model.to_string(),
                contexts: plan.clone(),
            })])?;
        }
        self.ranker.restore_seed(&plan);
        Ok(plan.iter().filter(|c| c.level == SeedLevel::Coarse).count())
    }

    /// Workers whose breaker is open at `at`.
    pub fn open_worker_breakers(&self, at: Timestamp) -> Vec<WorkerId> {
        self.worker_breakers.open_keys(at)
    }

    /// Where the registered fleet (when there is one) lets a task that failed on `failed`
    /// (of `class`) move: no FALLBACK_CPU without a CPU worker, no DIFFERENT_HARDWARE_CLASS
    /// without a worker of the class it moves to, no DIFFERENT_WORKER without another worker
    /// of the class (nor, see `prepare` and [`Engine::fleet_moves_for`], without one that
    /// could take the task: not excluded, flagged, under a bad-worker pattern or with an open
    /// breaker; a full one is waited for).
    /// Without a registry, the fleet's shape says the same from the counts
    /// ([`Engine::set_fleet_shape`]; the failed worker is taken to be one of its class, and
    /// the `left` other workers of the class the task already moved away from are not
    /// offered again); without either the engine cannot know, and every move is allowed.
    fn fleet_moves(&self, class: HardwareClass, failed: &WorkerId, left: usize) -> FleetMoves {
        if self.registry.is_empty() {
            let Some(shape) = &self.shape else {
                return FleetMoves::ANY;
            };
            // The failed worker is one of its class.
            return FleetMoves {
                cpu: shape[HardwareClass::Cpu.index()] > 0,
                other_class: mutate::fallback_class(class).is_some_and(|to| shape[to.index()] > 0),
                other_worker: shape[class.index()] > 1 + left,
            };
        }
        let own = self.registry.get(failed).is_some_and(|w| w.class == class);
        FleetMoves {
            cpu: self.registry.count(HardwareClass::Cpu) > 0,
            other_class: mutate::fallback_class(class)
                .is_some_and(|to| self.registry.count(to) > 0),
            other_worker: self.registry.count(class) > usize::from(own),
        }
    }

    /// [`Engine::fleet_moves`] for a failure in context `c`, the task excluding `excluded`:
    /// with a registry, DIFFERENT_WORKER also needs an eligible worker of the class (what
    /// `prepare` asks of it: one pick, without wishes, which a pick relaxes anyway; when it
    /// finds nothing, whether the class is merely full). Not checked here for FALLBACK_CPU
    /// and DIFFERENT_HARDWARE_CLASS (two more picks on every ranked decision): when the
    /// ranking chooses one of them and no worker there could take the task, `prepare`
    /// refuses it and the ranking chooses again without it (`Engine::rank_and_prepare`).
    fn fleet_moves_for(&self, c: &Ctx<'_>, excluded: &[WorkerId]) -> FleetMoves {
        let mut fleet = self.fleet_moves(c.class, &c.rec.worker_id, c.left);
        if fleet.other_worker && !self.registry.is_empty() {
            let want = self.want(c.class, c, excluded, false, false);
            fleet.other_worker = self.registry.has_eligible(&want);
        }
        fleet
    }

    /// Whether an open worker breaker, and an open class breaker, would move this decision
    /// (to another worker, to another class): only when the move can be made.
    fn breakers_move(
        &self,
        worker: BreakerState,
        class: BreakerState,
        c: &Ctx<'_>,
        excluded: &[WorkerId],
    ) -> (bool, bool) {
        use RecoveryStrategy as S;
        let open = |on: bool, state: BreakerState, to: S| {
            on && state == BreakerState::Open
                && self.prepare(&Step::plain(to), c, excluded).is_some()
        };
        (
            open(self.worker_breakers.enabled(), worker, S::DifferentWorker),
            open(
                self.class_breakers.enabled(),
                class,
                S::DifferentHardwareClass,
            ),
        )
    }

    /// A failure's context for preparing steps: its task's configuration (as faultline last
    /// set it, else as the latest report carrying one gave it, else `default_config`), the
    /// failed worker's memory and browser (from the record, else the registry).
    fn ctx<'a>(
        &'a self,
        rec: &'a FailureRecord,
        entry: &'a TaskRecord,
        default_config: &'a TaskConfig,
    ) -> Ctx<'a> {
        let failed_memory = rec
            .hardware
            .memory_gib
            .or_else(|| self.registry.get(&rec.worker_id).and_then(|w| w.memory_gib));
        let browser = rec
            .hardware
            .browser
            .as_ref()
            .map(|b| b.name.as_str())
            .or(rec.task.requirements.browser.as_deref())
            .or_else(|| {
                self.registry
                    .get(&rec.worker_id)
                    .and_then(|w| w.browser.as_deref())
            });
        let vendor = rec.hardware.vendor.as_deref().or_else(|| {
            self.registry
                .get(&rec.worker_id)
                .and_then(|w| w.vendor.as_deref())
        });
        Ctx {
            rec,
            class: rec.hardware.class,
            config: entry.config.as_ref().unwrap_or(default_config),
            failed_memory,
            browser,
            vendor,
            // Only the fleet's shape needs it (a registry's pick skips the excluded itself).
            left: if self.shape.is_some() && self.registry.is_empty() {
                entry.left_in(rec.hardware.class, &rec.worker_id)
            } else {
                0
            },
        }
    }

    /// The ladder for a failure: the first matching rule's, else its class's.
    fn ladder<'r>(&'r self, ctx: &Ctx<'_>, cls: &Classified, attempt: u32) -> LadderRef<'r> {
        self.rules.select(&MatchContext {
            class: ctx.class,
            kind: cls.kind,
            message: &ctx.rec.error.message,
            exit_code: ctx.rec.error.exit_code,
            xid: cls.xid,
            attempt,
            browser: ctx.browser,
        })
    }

    /// Makes a ladder step concrete for this task, or `None` when it does not apply.
    fn prepare(&self, step: &Step, c: &Ctx<'_>, excluded: &[WorkerId]) -> Option<Prepared> {
        use RecoveryStrategy as S;
        let moves = matches!(
            step.strategy,
            S::FallbackCpu | S::DifferentHardwareClass | S::DifferentWorker
        );
        if !mutate::applicable(step.strategy, c.class, c.config)
            || (moves
                && !self
                    .fleet_moves(c.class, &c.rec.worker_id, c.left)
                    .allow(step.strategy))
        {
            return None;
        }
        let mut p = Prepared {
            strategy: step.strategy,
            config: None,
            requirements: None,
            target: None,
            moves: false,
            note: String::new(),
        };
        let requirement = |class: HardwareClass| HardwareRequirements {
            hardware: vec![class.requirement_name().to_string()],
            browser: None,
            min_memory_gib: None,
        };
        match step.strategy {
            S::ImmediateRetry | S::Escalation => {}
            S::DelayedRetry => {}
            S::ResetWorkerState => p.note = format!("reset {} and retry there", c.rec.worker_id),
            S::BrowserRestart => {
                if !c.class.is_browser() {
                    return None;
                }
                p.note = format!("restart the browser of {}", c.rec.worker_id);
            }
            S::ReducedBatchSize => {
                let n = mutate::reduced_batch(c.config)?;
                p.note = format!("batch {} → {}", show_batch(c.config), show_batch(&n));
                p.config = Some(n);
            }
            S::ReducedPrecision => {
                let n = mutate::reduced_precision(c.config, c.class)?;
                p.note = format!(
                    "precision {} → {}",
                    c.config.precision.map_or("?", |x| x.as_str()),
                    n.precision.map_or("?", |x| x.as_str())
                );
                p.config = Some(n);
            }
            S::SimplifiedModel => {
                let n = mutate::simplified_model(c.config)?;
                p.note = format!("model → {}", n.model.as_deref().unwrap_or("?"));
                p.config = Some(n);
            }
            S::SkipCheckpointing => {
                p.config = Some(mutate::without_checkpointing(c.config)?);
                p.note = "checkpointing off".into();
            }
            S::FallbackCpu => {
                if c.class == HardwareClass::Cpu {
                    return None;
                }
                p.moves = true;
                p.requirements = Some(requirement(HardwareClass::Cpu));
                p.target = self.pick_or_wait(HardwareClass::Cpu, c, excluded, false, false);
                // With a registry, no CPU that could take the task (see `pick_or_wait`): no
                // move to make, as for DIFFERENT_WORKER below.
                if p.target.is_none() && !self.registry.is_empty() {
                    return None;
                }
                p.note = "run on CPU".into();
            }
            S::DifferentHardwareClass => {
                let to = mutate::fallback_class(c.class)?;
                p.moves = true;
                p.requirements = Some(requirement(to));
                p.target = self.pick_or_wait(to, c, excluded, false, false);
                // With a registry, no worker of the other class that could take the task.
                if p.target.is_none() && !self.registry.is_empty() {
                    return None;
                }
                p.note = format!("move from {} to {to}", c.class);
            }
            S::DifferentWorker => {
                p.moves = true;
                p.target =
                    self.pick_or_wait(c.class, c, excluded, step.more_memory, step.other_browser);
                // With a registry, no worker of the class that could take the task (all
                // excluded, flagged, under a bad-worker pattern or with an open breaker; a
                // full one is waited for): no move to make.
                if p.target.is_none() && !self.registry.is_empty() {
                    return None;
                }
                // After an out-of-memory, more memory: the target's, when it has more than the
                // failed device. When no eligible worker has (the registry relaxed the wish),
                // the move goes on without a memory requirement, and the reason says so (an
                // audit: the action asked for `min_memory_gib: 0.0` after an OOM on 40 GiB).
                let mut relaxed = None;
                if step.more_memory {
                    let min = match (&p.target, c.failed_memory) {
                        (Some(t), failed) => {
                            let has = self.registry.get(t).and_then(|w| w.memory_gib);
                            match (has, failed) {
                                (Some(h), Some(f)) if h <= f => {
                                    relaxed = Some(f);
                                    None
                                }
                                _ => has,
                            }
                        }
                        (None, Some(m)) => Some(m + 1.0),
                        (None, None) => None,
                    };
                    if min.is_some() {
                        p.requirements = Some(HardwareRequirements {
                            min_memory_gib: min,
                            ..requirement(c.class)
                        });
                    }
                }
                if step.other_browser {
                    if let Some(b) = c.browser {
                        p.note = format!("a browser other than {b}; ");
                    }
                }
                p.note.push_str(&match &p.target {
                    Some(t) => format!("move to {t}"),
                    None => format!("any worker but {}", c.rec.worker_id),
                });
                if let Some(f) = relaxed {
                    // The vendor narrows the pick (a review: the reason denied a larger
                    // device of another vendor).
                    match c.vendor {
                        Some(v) => p
                            .note
                            .push_str(&format!(" (no eligible {v} worker has more than {f} GiB)")),
                        None => p
                            .note
                            .push_str(&format!(" (no eligible worker has more than {f} GiB)")),
                    }
                }
            }
        }
        Some(p)
    }

    /// The registry's pick ([`WorkerRegistry::pick`]) for a move to `class`, else, when every
    /// worker that could take the task is full, the one it would pick once it has a free slot
    /// ([`WorkerRegistry::pick_waiting`]): a full class is a passing state, so the move names
    /// that worker and the task waits for its slot, still never on a worker faultline avoids.
    /// `None` without a registry, and (with one: the move is pointless) when no worker there
    /// could take the task (every one excluded, flagged, called bad or breaker-open). The
    /// second walk runs only after a pick found nothing.
    fn pick_or_wait(
        &self,
        class: HardwareClass,
        c: &Ctx<'_>,
        excluded: &[WorkerId],
        more_memory: bool,
        other_browser: bool,
    ) -> Option<WorkerId> {
        if self.registry.is_empty() {
            return None;
        }
        let want = self.want(class, c, excluded, more_memory, other_browser);
        self.registry.pick_or_waiting(&want).map(|w| w.id.clone())
    }

    /// What a pick for a failure in context `c` asks of the registry.
    fn want<'a>(
        &'a self,
        class: HardwareClass,
        c: &Ctx<'a>,
        excluded: &'a [WorkerId],
        more_memory: bool,
        other_browser: bool,
    ) -> Want<'a> {
        Want {
            class,
            excluded,
            // The failed worker is excluded too (without copying `excluded`).
            also_excluded: Some(&c.rec.worker_id),
            // Patterns inform, never override: avoid workers under a bad-worker pattern.
            avoid_sorted: &self.bad_sorted,
            more_memory_than: if more_memory { c.failed_memory } else { None },
            other_browser_than: if other_browser { c.browser } else { None },
            // The same vendor within the failed worker's class.
            vendor: if class == c.class { c.vendor } else { None },
            // No worker whose breaker is open; a half-open one only as a last resort.
            breakers: self
                .worker_breakers
                .enabled()
                .then_some((&self.worker_breakers, c.rec.timestamp)),
        }
    }

    /// Feeds back the outcome of an applied action and waits until it is durable.
    pub fn record_outcome(&mut self, outcome: &Outcome) -> Result<(), EngineError> {
        Ok(self.log_outcome(outcome)?.wait()?)
    }

    /// Checks an outcome as [`Engine::log_outcome`] does, without logging or applying it:
    /// its task must be one the engine knows, and its numbers must pass [`Outcome::check`]
    /// (an audit found a negative or NaN cost, which the HTTP API refuses, logged durably
    /// through the library). Returns the task's id. A caller holding several
    /// outcomes checks them all first, so that one bad outcome rejects the lot before any is
    /// applied. A duplicate ([`Engine::is_duplicate_outcome`]) with the recorded verdict passes:
    /// it is answered, not rejected; one with the other verdict is
    /// [`EngineError::ConflictingOutcome`].
    pub fn check_outcome(&self, outcome: &Outcome) -> Result<TaskId, EngineError> {
        let unknown = || EngineError::UnknownTask(outcome.task_id.clone());
        // An id no task can have is a bad field, not an unknown task (an audit: "" and "a b"
        // were answered 404).
        let id = TaskId::new(&outcome.task_id).map_err(|e| EngineError::InvalidOutcome {
            task: outcome.task_id.clone(),
            error: e.in_field("task_id"),
        })?;
        match self.state.task(&id) {
            None => return Err(unknown()),
            // An audit: an outcome for a task with no action flipped it to succeeded and was
            // logged and counted, crediting nothing.
            Some(t) if t.history.is_empty() => {
                return Err(EngineError::NoAction(outcome.task_id.clone()))
            }
            Some(t) => {
                outcome
                    .check()
                    .and_then(|()| outcome_fits(outcome, t))
                    .map_err(|error| EngineError::InvalidOutcome {
                        task: outcome.task_id.clone(),
                        error,
                    })?;
                let latest = t.history.back().map_or(0, |a| a.attempt);
                match outcome.attempt {
                    Some(n) if n < latest => {
                        return Err(EngineError::StaleOutcome {
                            task: outcome.task_id.clone(),
                            attempt: n,
                            latest,
                        })
                    }
                    Some(n) if n > latest => {
                        return Err(EngineError::InvalidOutcome {
                            task: outcome.task_id.clone(),
                            error: crate::model::ModelError::Invalid {
                                field: "attempt",
                                detail: format!(
                                    "{n}: the task's latest action is attempt {latest}"
                                ),
                            },
                        })
                    }
                    _ => {}
                }
                // A retry repeats its verdict; another verdict for an action that already
                // has one is a coordinator's mistake, not a retry (a library audit: it was
                // answered as a duplicate and silently dropped).
                if t.outcome_recorded && t.recovered != outcome.success {
                    return Err(EngineError::ConflictingOutcome {
                        task: outcome.task_id.clone(),
                        recorded: t.recovered,
                    });
                }
            }
        }
        Ok(id)
    }

    /// Whether an outcome for task `id` now would be a duplicate: the task's latest action
    /// already has its outcome (a client retrying a write). [`Engine::log_outcome`] neither
    /// applies nor logs a duplicate; the task's next action makes the next outcome count.
    pub fn is_duplicate_outcome(&self, id: &TaskId) -> bool {
        self.state.task(id).is_some_and(|t| t.outcome_recorded)
    }

    /// Feeds back the outcome of an applied action; durable once the returned [`Ack`]
    /// resolves (a server waits for it outside its lock on the engine). A duplicate
    /// ([`Engine::is_duplicate_outcome`]) changes nothing and logs nothing: idempotent, so a
    /// client may retry an outcome. With the success-model ranker (`ranking.ranker =
    /// "model"`), the outcome that completes `refit_every` refits the model before this
    /// returns (a fraction of a second, see [`crate::ranking::smart`]): under a server's lock,
    /// every other request waits for it.
    pub fn log_outcome(&mut self, outcome: &Outcome) -> Result<Ack, EngineError> {
        let id = self.check_outcome(outcome)?;
        if self.is_duplicate_outcome(&id) {
            // Answered once the original outcome is durable.
            return Ok(self.state.logged());
        }
        let at = self.apply_outcome(&id, outcome);
        if self.state.durable() {
            let entry = self.state.task(&id);
            let last = entry.and_then(|t| t.history.back());
            let mut outcome = outcome.clone();
            if outcome.strategy.is_none() {
                outcome.strategy = last.map(|a| a.strategy);
            }
            let row = OutcomeRow {
                outcome,
                timestamp: at,
                hardware_class: entry.and_then(|t| t.last_class),
                kind: last.map(|a| a.kind),
            };
            return Ok(self.state.log(vec![Entry::Outcome(row)])?);
        }
        Ok(Ack::done())
    }

    /// Sets a task's lifecycle state (a coordinator's word: running again, succeeded, given
    /// up); logged like every other change, durable once the returned [`Ack`] resolves. A
    /// change dated before the latest one set for the task, or more than
    /// [`CLOCK_TOLERANCE_S`] before its latest failure (which set it recovering), is refused
    /// ([`EngineError::StaleState`]) and changes nothing; one at the same time applies.
    pub fn set_task_state(
        &mut self,
        task: &TaskId,
        state: TaskState,
        at: Timestamp,
        note: &str,
    ) -> Result<Ack, EngineError> {
        // The latest state is a coordinator's or a failure's (which set the task recovering):
        // an audit saw `succeeded` dated before the task's latest failure replace the
        // `recovering` that failure set.
        if let Some((latest, current)) = self.state.task(task).and_then(|t| {
            // A coordinator's states are ordered by their own times; against the latest
            // failure (another clock), with [`CLOCK_TOLERANCE_S`].
            let state = t.last_state_at.filter(|&l| at < l);
            let failure = t
                .last_failure
                .filter(|&f| at.secs_since(f) < -CLOCK_TOLERANCE_S);
            state.or(failure).map(|l| (l, t.state))
        }) {
            return Err(EngineError::StaleState {
                task: task.to_string(),
                state: current,
                latest,
                at,
            });
        }
        let t = self.state.task_mut(task);
        t.state = state;
        t.last_state_at = Some(t.last_state_at.map_or(at, |x| x.max(at)));
        self.settle_placement(task);
        if self.state.durable() {
            return Ok(self.state.log(vec![Entry::TaskState(TaskStateRow {
                task_id: task.clone(),
                state,
                timestamp: at,
                note: note.to_string(),
            })])?);
        }
        Ok(Ack::done())
    }

    /// Stores a checkpoint for a task (durably, for a durable engine) and returns its id;
    /// later recovery actions for the task name the newest one to resume from. Runs all
    /// three steps of [`Engine::begin_checkpoint`], [`CheckpointWrite::write`] and
    /// [`Engine::commit_checkpoint`] and waits for durability: for callers that hold no lock
    /// around the engine (the CLI, embedding). A server runs the steps itself, writing the blob
    /// and waiting for the fsync outside its lock.
    pub fn create_checkpoint(
        &mut self,
        task: &TaskId,
        data: &[u8],
        at: Timestamp,
    ) -> Result<String, EngineError> {
        let written = self.begin_checkpoint(task, at).write(data)?;
        Ok(self.commit_checkpoint(written)?.finish()?)
    }

    /// Begins a checkpoint of `task` at `at` (quick: reserves the number that makes its id
    /// unique, even among checkpoints of the task begun and not yet committed). Write the blob
    /// with [`CheckpointWrite::write`] — it needs no access to the engine, so a server does it
    /// outside its lock — then hand the result to [`Engine::commit_checkpoint`].
    pub fn begin_checkpoint(&mut self, task: &TaskId, at: Timestamp) -> CheckpointWrite {
        self.state.begin_checkpoint(task, at)
    }

    /// Indexes a written checkpoint, applies retention and logs the rows (quick: the WAL
    /// append is not waited for); the task's recovery actions then name its newest checkpoint.
    /// Durable once [`CommittedCheckpoint::ack`] resolves — a server waits for it outside its
    /// lock on the engine, then calls [`CommittedCheckpoint::remove_retired`].
    pub fn commit_checkpoint(
        &mut self,
        written: WrittenCheckpoint,
    ) -> Result<CommittedCheckpoint, EngineError> {
        let task = written.row().task_id.clone();
        let committed = self.state.commit_checkpoint(written)?;
        self.state.task_mut(&task).latest_checkpoint = committed.latest.clone();
        Ok(committed)
    }

    /// The newest checkpoint of a task whose content verifies: `(id, bytes)`. Corrupted newer
    /// checkpoints are reported in the error list and skipped. Blobs are read under the
    /// caller's borrow of the engine; a server takes [`Engine::checkpoint_snapshot`] instead
    /// and reads outside its lock.
    pub fn latest_checkpoint(
        &self,
        task: &TaskId,
    ) -> (Option<(String, Vec<u8>)>, Vec<crate::store::StoreError>) {
        let (found, errors) = self.state.load_checkpoint(task);
        (found.map(|(row, data)| (row.checkpoint_id, data)), errors)
    }

    /// What a complete read of `task`'s checkpoints ([`CheckpointSnapshot::load`] of
    /// `snapshot`, every error met a damaged blob, not a passing I/O error) found: `usable`,
    /// the newest that verified, if any. When the checkpoint recovery actions name (the
    /// task's latest) is one of the snapshot's, they name `usable` from now on (none when
    /// nothing verified): lower when newer ones are damaged, back up when a read finds one
    /// that verifies; a checkpoint committed since the snapshot is left as the latest.
    /// Returns whether it changed. In memory only: after a restart the next read finds the
    /// damage again.
    pub fn checkpoints_verified(
        &mut self,
        task: &TaskId,
        snapshot: &CheckpointSnapshot,
        usable: Option<&crate::store::CheckpointRow>,
    ) -> bool {
        let Some(latest) = self
            .state
            .task(task)
            .and_then(|t| t.latest_checkpoint.as_deref())
        else {
            return false;
        };
        let to = usable.map(|r| r.checkpoint_id.as_str());
        if Some(latest) == to || !snapshot.rows().iter().any(|r| r.checkpoint_id == latest) {
            return false;
        }
        let to = to.map(str::to_string);
        self.state.task_mut(task).latest_checkpoint = to;
        true
    }

    /// A task's live checkpoints as of now (quick: no blob is read); load them with
    /// [`CheckpointSnapshot::load`], which needs no access to the engine.
    pub fn checkpoint_snapshot(&self, task: &TaskId) -> CheckpointSnapshot {
        self.state.checkpoint_snapshot(task)
    }

    /// Tasks still running (or recovering) whose latest checkpoint is older than
    /// `interval_s` at `now`, or that have none: the periodic checkpoint hook's work list.
    pub fn checkpoints_due(
        &self,
        tasks: &[TaskId],
        now: Timestamp,
        interval_s: f64,
    ) -> Vec<TaskId> {
        tasks
            .iter()
            .filter(|t| {
                let rec = self.state.task(t);
                if rec.is_some_and(|r| {
                    matches!(
                        r.state,
                        TaskState::Succeeded | TaskState::Escalated | TaskState::Failed
                    )
                }) {
                    return false;
                }
                match rec.and_then(|r| r.latest_checkpoint.as_deref()) {
                    None => true,
                    Some(id) => {
                        checkpoint_time(id).is_none_or(|at| now.secs_since(at) >= interval_s)
                    }
                }
            })
            .cloned()
            .collect()
    }
}

impl Engine<MemoryState> {
    /// Decides the recovery for one failure (in-memory state: nothing to wait for).
    pub fn handle_failure(&mut self, rec: &FailureRecord) -> Arc<RecoveryAction> {
        match self.decide(rec) {
            Ok((action, _)) => action,
            // In-memory state never fails to log, and takes any time.
            Err(e) => unreachable!("in-memory logging failed: {e}"),
        }
    }

    /// Loads in-memory state saved by [`Engine::save_state`] (for the CLI's `--state FILE`).
    /// Checkpoint blobs are not saved, so a task's `latest_checkpoint` is cleared: an action
    /// must not name a checkpoint to resume from that this engine cannot load.
    pub fn load_state(&mut self, path: &Path) -> Result<(), EngineError> {
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.display().to_string(),
            source,
        })?;
        self.state = serde_json::from_str(&text).map_err(|e| EngineError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        // A file from before `config_changed` was kept: the history says it.
        for t in self.state.tasks.values_mut() {
            t.config_changed |= t.history.iter().any(|a| a.modified_config.is_some());
            t.latest_checkpoint = None;
        }
        // The slots its tasks hold where they were moved (a review: the counts started
        // empty, and a loaded task leaving its worker gave back another task's slot).
        self.registry.clear_placements();
        for t in self.state.tasks.values() {
            if let Some(w) = &t.placed_on {
                self.registry.place(w);
            }
        }
        Ok(())
    }

    /// Saves the in-memory state atomically and durably (temporary file, fsync, rename, fsync
    /// of the directory). The temporary file is `.NAME.tmp-PID` beside it: neither another
    /// file of the user's (`jobs.tmp` beside `jobs.json`, which an audit found overwritten)
    /// nor another process's. Two processes saving to one file must take turns (the CLI's
    /// `recommend --state` holds a lock beside it); this does not lock.
    ///
    /// What is saved is the per-task state (attempts, ladder positions, histories, configs,
    /// exclusions). Not saved: checkpoint blobs, the learned ranking, breakers, the retry
    /// budget, patterns and worker flags — an engine loaded from the file starts those afresh.
    /// A coordinator that must keep what it learned across restarts uses a durable engine
    /// ([`Engine::open`] on a data directory), which replays all of it from its history.
    pub fn save_state(&self, path: &Path) -> Result<(), EngineError> {
        let io = |source| EngineError::Io {
            path: path.display().to_string(),
            source,
        };
        let name = path
            .file_name()
            .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let text = serde_json::to_string_pretty(&self.state).map_err(|e| EngineError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            // Before the rename: a crash must not leave an empty file under the name.
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }
}

impl Engine<DurableState> {
    /// Opens (or creates) a durable engine on a data directory: opens the store (repairing
    /// what a crash left), then replays the history — failures with their actions, outcomes,
    /// task states, checkpoints — into attempt counters, ladder positions, recovery histories,
    /// task states, the retry budget and worker flags. Returns the engine and what opening
    /// found (warnings name files).
    pub fn open(
        dir: &Path,
        config: EngineConfig,
        rules: RuleSet,
        opts: StoreOptions,
    ) -> Result<(Self, OpenReport), EngineError> {
        Self::replayed(ParquetStore::open(dir, opts)?, config, rules, true, None)
    }

    /// [`Engine::open`] with a worker inventory set before the history is replayed, as it
    /// was set while the history was written: the replay then learns what the live engine
    /// learned where the inventory shapes a decision (which moves were valid, and so the
    /// ranking's choices and propensities; a serve audit: after a restart with `--workers`,
    /// 4,875 of 5,000 later decisions had another propensity and 1,145 another strategy or
    /// target than an engine that never stopped).
    pub fn open_with_registry(
        dir: &Path,
        config: EngineConfig,
        rules: RuleSet,
        opts: StoreOptions,
        registry: Option<WorkerRegistry>,
    ) -> Result<(Self, OpenReport), EngineError> {
        Self::replayed(
            ParquetStore::open(dir, opts)?,
            config,
            rules,
            true,
            registry,
        )
    }

    /// What opens this engine's data directory again and replays it
    /// ([`EngineReopener::open`]), beside this engine, which keeps the directory locked
    /// meanwhile ([`ParquetStore::reopener`]): the engine a restart would open, with this
    /// one's configuration and rules. For an owner whose write-ahead log failed: what it
    /// decided in memory and could not log is not in the new engine, as after a restart.
    pub fn reopener(&self) -> Result<EngineReopener, EngineError> {
        Ok(EngineReopener {
            store: self.state.store().reopener()?,
            config: self.config.clone(),
            rules: self.rules.clone(),
        })
    }

    /// An engine over `store` with its history replayed (see [`Engine::open`]); with
    /// `sweep`, checkpoint files no replayed row names are removed.
    fn replayed(
        store: ParquetStore,
        config: EngineConfig,
        rules: RuleSet,
        sweep: bool,
        registry: Option<WorkerRegistry>,
    ) -> Result<(Self, OpenReport), EngineError> {
        let report = store.open_report().clone();
        // Read a batch of each part at a time: the history is never in memory whole (it was:
        // about 1.2 KB a record on top of the engine's own state).
        let history = store.history_reader()?;
        let mut engine = Engine::with_parts(config, rules, DurableState::new(store))?;
        if let Some(r) = registry {
            engine.set_registry(r);
        }
        engine.defer_model_fits(true);
        // Each failure waiting for its action, with its sequence number.
        let mut failures: HashMap<TaskId, (u64, FailureRecord)> = HashMap::new();
        // Failures no decision followed (taken in by `faultline ingest` from logs; the engine
        // logs each failure with its action in one write): not replayed, and said (an audit:
        // a server over an ingested history started with no task and no pattern, silently).
        let mut undecided = 0u64;
        let mut next_sweep = UNDECIDED_SWEEP;
        // Each task's latest action (`None` inside: the actions could not be read, and
        // nothing is dropped; the replay names the part that fails).
        let mut later: Option<Option<HashMap<TaskId, u64>>> = None;
        history.for_each(|seq, e| {
            // The engine's own failures are followed by their actions at once (one write takes
            // consecutive numbers): one still waiting far behind never gets one. Dropped, so
            // that a history of ingested failures is not held in memory (1M of them took
            // 1.7 GB at a start).
            if seq >= next_sweep {
                next_sweep = seq + UNDECIDED_SWEEP;
                if failures
                    .values()
                    .any(|(at, _)| seq - *at >= UNDECIDED_SWEEP)
                {
                    // Kept while its task has an action further on: a history an earlier
                    // version wrote with every action after every failure (`ingest` of a
                    // simulator directory) still pairs them (a review: 7,693 decisions of such
                    // a history were lost). The actions table is read once, when needed.
                    if later.is_none() {
                        later = Some(history.latest_actions().ok());
                    }
                    if let Some(Some(later)) = &later {
                        let before = failures.len();
                        failures.retain(|task, (at, _)| {
                            seq - *at < UNDECIDED_SWEEP || later.get(task).is_some_and(|a| a > at)
                        });
                        undecided += (before - failures.len()) as u64;
                    }
                }
            }
            match e {
                Entry::Failure(f) => {
                    if failures
                        .insert(f.record.task_id.clone(), (seq, f.record))
                        .is_some()
                    {
                        undecided += 1;
                    }
                }
                Entry::Action(a) => {
                    if let Some((_, rec)) = failures.remove(&a.action.task_id) {
                        engine.replay(&rec, &a.action);
                    }
                }
                Entry::Outcome(o) => {
                    if let Ok(id) = TaskId::new(&o.outcome.task_id) {
                        // A duplicate a log from before duplicates were refused may hold
                        // is skipped, as `log_outcome` skips one now.
                        if engine.state.task(&id).is_some() && !engine.is_duplicate_outcome(&id) {
                            engine.apply_outcome(&id, &o.outcome);
                        }
                    }
                }
                Entry::TaskState(s) => {
                    let t = engine.state.task_mut(&s.task_id);
                    t.state = s.state;
                    t.last_state_at =
                        Some(t.last_state_at.map_or(s.timestamp, |x| x.max(s.timestamp)));
                    engine.settle_placement(&s.task_id);
                }
                Entry::Checkpoint(c) => {
                    let task = c.task_id.clone();
                    engine.state.index_row(c);
                    let latest = crate::store::Checkpoints::newest(&engine.state.index[&task])
                        .map(|r| r.checkpoint_id.clone());
                    engine.state.task_mut(&task).latest_checkpoint = latest;
                }
                Entry::RankingSeed(r) => {
                    // As it was taken, whatever `seed_strength` and `seed_refined` say now.
                    engine.ranker.restore_seed(&r.contexts);
                }
                Entry::Pattern(_) => {}
            }
        })?;
        engine.defer_model_fits(false);
        let mut report = report;
        if sweep {
            let damaged = !report.warnings.is_empty();
            report.warnings.extend(engine.state.sweep_blobs(damaged)?);
        }
        let undecided = undecided + failures.len() as u64;
        if undecided > 0 {
            report.warnings.push(undecided_warning(undecided));
        }
        Ok((engine, report))
    }

    /// Moves logged entries into Parquet parts. Blocks: it waits for the WAL's fsync, writes
    /// and fsyncs the parts and the manifest. A server that holds a lock around the engine
    /// uses [`Engine::begin_flush`] instead.
    pub fn flush(&mut self) -> Result<(), EngineError> {
        Ok(self.state.store_mut().flush()?)
    }

    /// Starts a flush to run outside the owner's lock (see [`ParquetStore::begin_flush`]);
    /// hand the job's result to [`Engine::finish_flush`]. Not free: it waits for the WAL's
    /// fsync of what is pending (normally already done, as each decision's ack waits for it)
    /// and starts a new WAL segment; the Parquet writing is the job's.
    pub fn begin_flush(&mut self) -> Result<Option<FlushJob>, EngineError> {
        Ok(self.state.store_mut().begin_flush()?)
    }

    /// Why the write-ahead log failed, once it has (a full disk): no write is acknowledged
    /// any more; what was acknowledged is safe, and opening the data directory again (a
    /// restart) goes on from it.
    pub fn wal_failure(&self) -> Option<String> {
        self.state.store().wal_failure()
    }

    /// Entries logged and not yet flushed into Parquet.
    pub fn pending_entries(&self) -> usize {
        self.state.store().pending_len()
    }

    /// Ends a flush begun with [`Engine::begin_flush`].
    pub fn finish_flush(&mut self, result: Result<u64, FlushFailed>) -> Result<(), EngineError> {
        Ok(self.state.store_mut().finish_flush(result)?)
    }

    /// Starts a compaction of the committed history that runs outside the engine's lock
    /// (see [`ParquetStore::begin_compact`]); end it with [`Engine::finish_compact`].
    pub fn begin_compact(&mut self, scope: CompactScope) -> Result<CompactJob, EngineError> {
        Ok(self.state.store_mut().begin_compact(scope)?)
    }

    /// Ends a compaction begun with [`Engine::begin_compact`].
    pub fn finish_compact(&mut self) {
        self.state.store_mut().finish_compact();
    }
}

/// An engine's data directory to open again and replay, its lock held
/// ([`Engine::reopener`]).
#[derive(Debug)]
pub struct EngineReopener {
    store: crate::store::Reopener,
    config: EngineConfig,
    rules: RuleSet,
}

impl EngineReopener {
    /// Opens the directory and replays it, as [`Engine::open`] does — except that checkpoint
    /// files no replayed row names are kept: an upload may be between its file and its row
    /// beside the engine being replaced (a review: its file was removed, then its row
    /// logged on the new engine). The next start sweeps them. The worker registry and a
    /// model's seeding are the owner's to set again, as after [`Engine::open`].
    pub fn open(self) -> Result<(Engine<DurableState>, OpenReport), EngineError> {
        self.open_with_registry(None)
    }

    /// [`EngineReopener::open`] with a worker inventory set before the replay (see
    /// [`Engine::open_with_registry`]).
    pub fn open_with_registry(
        self,
        registry: Option<WorkerRegistry>,
    ) -> Result<(Engine<DurableState>, OpenReport), EngineError> {
        Engine::replayed(self.store.open()?, self.config, self.rules, false, registry)
    }
}

/// The creation time encoded in a checkpoint id (`<micros hex>-...`).
fn checkpoint_time(id: &str) -> Option<Timestamp> {
    let hex = id.split('-').next()?;
    i64::from_str_radix(hex, 16)
        .ok()
        .map(Timestamp::from_micros)
}

/// Model version recorded for decisions of the rule engine.
pub const MODEL_VERSION_RULES: &str = "rules";

/// Whether a strategy retries the task where it failed (what an open worker breaker moves to
/// another worker): the plain retries, and a reset or a browser restart of the failed worker
/// followed by a retry there.
fn retries_in_place(s: RecoveryStrategy) -> bool {
    use RecoveryStrategy as S;
    matches!(
        s,
        S::ImmediateRetry | S::DelayedRetry | S::ResetWorkerState | S::BrowserRestart
    )
}

/// Where a task ran after `action`, carried out as `strategy` (the action's own, or the one
/// its outcome names), its latest failure on `class`: the worker and hardware class its
/// outcome is about. In place (retries, a reset, a browser restart): the failed worker.
/// A config change (smaller batch, lower precision, simpler model, no checkpointing): the
/// failed worker too, as nothing moves the task (no target, the worker not excluded; the
/// simulator keeps it there), unless the action excludes that worker. DIFFERENT_WORKER: the
/// target the registry picked, or no worker when the coordinator chose. FALLBACK_CPU and
/// DIFFERENT_HARDWARE_CLASS: their target, if any, and the class moved to. Never a worker or
/// class the task was moved away from; an escalation ran nowhere.
fn ran_on(
    action: &RecoveryAction,
    strategy: RecoveryStrategy,
    class: Option<HardwareClass>,
) -> (Option<&WorkerId>, Option<HardwareClass>) {
    use RecoveryStrategy as S;
    // The action's target was chosen for its own strategy only.
    let target = if strategy == action.strategy {
        action.target_worker.as_ref()
    } else {
        None
    };
    let failed = &action.failed_worker;
    match strategy {
        S::ImmediateRetry | S::DelayedRetry | S::ResetWorkerState | S::BrowserRestart => {
            (Some(failed), class)
        }
        S::ReducedBatchSize | S::ReducedPrecision | S::SimplifiedModel | S::SkipCheckpointing => {
            let stays = !action.excluded_workers.contains(failed);
            (stays.then_some(failed), class)
        }
        S::DifferentWorker => (target, class),
        S::FallbackCpu => (target, Some(HardwareClass::Cpu)),
        S::DifferentHardwareClass => (target, class.and_then(mutate::fallback_class)),
        S::Escalation => (None, None),
    }
}

/// Whether a strategy keeps the task on its hardware class (what an open class breaker moves
/// to another class).
fn stays_in_class(s: RecoveryStrategy) -> bool {
    retries_in_place(s) || s == RecoveryStrategy::DifferentWorker
}

fn escalation(note: String) -> Prepared {
    Prepared {
        strategy: RecoveryStrategy::Escalation,
        config: None,
        requirements: None,
        target: None,
        moves: false,
        note,
    }
}

fn show_batch(c: &TaskConfig) -> String {
    match (&c.batch_size, &c.batch_sizes) {
        (Some(b), None) => b.to_string(),
        (None, Some(l)) => format!("{l:?}"),
        (Some(b), Some(l)) => format!("{b} {l:?}"),
        (None, None) => "?".into(),
    }
}

/// A worker's standing for the ranking context (healthy unless listed at the last refresh).
fn standing(
    standings: &HashMap<WorkerId, ranking::WorkerStanding, rustc_hash::FxBuildHasher>,
    id: &WorkerId,
) -> ranking::WorkerStanding {
    standings
        .get(id)
        .copied()
        .unwrap_or(ranking::WorkerStanding::Healthy)
}

/// Which moves the registered fleet, or the fleet's shape, allows (see
/// `Engine::fleet_moves`).
#[derive(Debug, Clone, Copy)]
struct FleetMoves {
    cpu: bool,
    other_class: bool,
    other_worker: bool,
}

impl FleetMoves {
    /// Every move (no registry).
    const ANY: FleetMoves = FleetMoves {
        cpu: true,
        other_class: true,
        other_worker: true,
    };

    fn allow(self, s: RecoveryStrategy) -> bool {
        match s {
            RecoveryStrategy::FallbackCpu => self.cpu,
            RecoveryStrategy::DifferentHardwareClass => self.other_class,
            RecoveryStrategy::DifferentWorker => self.other_worker,
            _ => true,
        }
    }
}

/// A per-decision generator: reproducible from (seed, task, attempt) whatever the order of
/// decisions, so no generator state has to be persisted.
fn decision_rng(seed: u64, task: &TaskId, attempt: u32) -> Xoshiro256PlusPlus {
    // FNV-1a: stable across toolchains, unlike std's DefaultHasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in task.as_str().bytes().chain(attempt.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Xoshiro256PlusPlus::seed_from_u64(seed ^ h)
}

/// How far behind (in sequence numbers) a replayed failure may wait for its action before it
/// is taken for one no decision followed, and how often the waiting ones are looked at.
const UNDECIDED_SWEEP: u64 = if cfg!(test) { 64 } else { 1 << 16 };

/// The open report's line for `n` failures in the history that no decision followed.
fn undecided_warning(n: u64) -> String {
    format!(
        "{n} failure{} in the history had no decision logged after {} (taken in by `faultline ingest` from logs, not decided here): not replayed into tasks, attempts, breakers or patterns; `analyze --data` and `train` read them",
        if n == 1 { "" } else { "s" },
        if n == 1 { "it" } else { "them" }
    )
}

#[cfg(test)]
mod tests;
