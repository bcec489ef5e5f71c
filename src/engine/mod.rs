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
pub mod mutate;
mod registry;
mod state;

use std::path::Path;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

pub use coordinator::{apply, Coordinator, CoordinatorError, CoordinatorEvent, MemoryCoordinator};
pub use registry::{Want, Worker, WorkerRegistry};
pub use state::{MemoryState, StateStore, TaskRecord};

use crate::classify::{Classifier, ClassifyInput};
use crate::config::EngineConfig;
use crate::model::{
    DecisionSource, FailureRecord, FailureType, HardwareClass, HardwareRequirements, Outcome,
    RecoveryAction, RecoveryStrategy, TaskConfig, TaskId, WorkerId,
};
use crate::retry::{RetryBudget, RetryError, RetryPolicy};
use crate::rules::{MatchContext, RuleSet, RulesError, Step};

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Invalid retry configuration.
    #[error(transparent)]
    Retry(#[from] RetryError),
    /// Invalid rules.
    #[error(transparent)]
    Rules(#[from] RulesError),
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
    /// An outcome for a task the engine never saw.
    #[error("outcome for unknown task '{0}'")]
    UnknownTask(String),
}

/// The decision engine.
#[derive(Debug, Clone)]
pub struct Engine<S: StateStore = MemoryState> {
    config: EngineConfig,
    classifier: Classifier,
    rules: RuleSet,
    retry: RetryPolicy,
    budget: RetryBudget,
    registry: WorkerRegistry,
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
}

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
        Ok(Engine {
            config,
            classifier: Classifier::new(),
            rules,
            retry,
            budget,
            registry: WorkerRegistry::new(),
            state,
        })
    }

    /// Replaces the worker registry.
    pub fn set_registry(&mut self, registry: WorkerRegistry) {
        self.registry = registry;
    }

    /// The worker registry.
    pub fn registry(&self) -> &WorkerRegistry {
        &self.registry
    }

    /// Mutable access to the worker registry (register workers, clear flags).
    pub fn registry_mut(&mut self) -> &mut WorkerRegistry {
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

    /// Consumes the engine, returning its state (e.g. to save it).
    pub fn into_state(self) -> S {
        self.state
    }

    /// A task's record.
    pub fn task(&self, id: &TaskId) -> Option<&TaskRecord> {
        self.state.task(id)
    }

    /// A task's recent recovery history, oldest first.
    pub fn recovery_history(&self, id: &TaskId) -> Vec<RecoveryAction> {
        self.state
            .task(id)
            .map(|t| t.history.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Records that a checkpoint exists for a task; later actions name it for resumption.
    pub fn note_checkpoint(&mut self, task: &TaskId, checkpoint_id: &str) {
        self.state.task_mut(task).latest_checkpoint = Some(checkpoint_id.to_string());
    }

    /// Decides the recovery for one failure.
    pub fn handle_failure(&mut self, rec: &FailureRecord) -> RecoveryAction {
        let class = rec.hardware.class;
        let cls = self.classifier.classify(&ClassifyInput {
            message: &rec.error.message,
            type_hint: rec.error.type_hint.as_deref(),
            exit_code: rec.error.exit_code,
            stacktrace: rec.error.stacktrace.as_deref(),
            hardware: Some(class),
        });
        let kind = cls.kind;

        // The engine's own counters.
        let entry = self.state.task_mut(&rec.task_id);
        let first = entry.attempts == 0;
        entry.observe(rec, kind);
        if first {
            self.budget.deposit(rec.timestamp);
        }
        let entry = self.state.task(&rec.task_id).expect("observed above");
        let attempt = entry.attempts;
        let failure_type = FailureType::judge(
            kind,
            entry.streak - 1,
            entry.recovered_kinds.contains(&kind),
        );
        let checkpoint = entry.latest_checkpoint.clone();
        let last_delay = entry.last_delay_s;
        let config = entry.config.clone().unwrap_or_default();

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
        let ctx = Ctx {
            rec,
            class,
            config: &config,
            failed_memory,
            browser,
        };

        let mut source;
        let mut prepared;
        let mut attention = None;
        if attempt > self.retry.max_attempts {
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
            let ladder = self.rules.select(&MatchContext {
                class,
                kind,
                message: &rec.error.message,
                exit_code: rec.error.exit_code,
                xid: cls.xid,
                attempt,
                browser,
            });
            let start = entry.next_step(ladder.name) as usize;
            let excluded = &entry.excluded;
            let found = ladder
                .steps
                .iter()
                .enumerate()
                .skip(start)
                .find_map(|(i, step)| self.prepare(step, &ctx, excluded).map(|p| (i, *step, p)));
            source = DecisionSource {
                kind: if ladder.from_rule { "rule" } else { "ladder" }.into(),
                rule: Some(ladder.name.to_string()),
                step: None,
            };
            match found {
                Some((i, step, p)) => {
                    source.step = Some(i as u32 + 1);
                    if step.attention {
                        attention = Some(
                            match (
                                cls.xid,
                                cls.xid.and_then(|x| self.rules.xid_table().action(x)),
                            ) {
                                (Some(x), Some(a)) => format!("NVIDIA Xid {x}: vendor action {a}"),
                                _ => format!("{kind} on this worker"),
                            },
                        );
                    }
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

        // Retry budget: a plain retry beyond the budget is deferred to the backoff cap.
        let backoff = *self.retry.backoff(kind);
        let mut rng = decision_rng(self.config.seed, &rec.task_id, attempt);
        let mut delay = 0.0;
        if prepared.strategy.is_retry() {
            if self.budget.allows(rec.timestamp) {
                if prepared.strategy == RecoveryStrategy::DelayedRetry {
                    delay = backoff.delay(attempt, last_delay, &mut rng);
                }
            } else {
                source.kind = "retry_budget".into();
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
        let reason = format!(
            "{kind} on {class} worker {} (attempt {attempt}; {}): {}{}{}",
            rec.worker_id,
            source,
            prepared.strategy,
            if prepared.note.is_empty() {
                ""
            } else {
                " — "
            },
            prepared.note,
        );
        let action = RecoveryAction {
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
            propensity: 1.0,
            attempt,
            kind,
            failure_type,
            classifier_rule: cls.rule.to_string(),
            xid: cls.xid,
            timestamp: rec.timestamp,
        };
        self.apply_action(&action);
        self.state.on_action(&action);
        action
    }

    /// Applies a decided action to the engine's state: the task's record (ladder position,
    /// exclusions, config, history), the retry budget and the worker registry. Used by
    /// `handle_failure` and, on restart, to replay logged actions into the same state.
    pub fn apply_action(&mut self, action: &RecoveryAction) {
        let cap = self.config.history_per_task.max(1);
        self.state.task_mut(&action.task_id).apply_action(action, cap);
        if action.strategy.is_retry() && action.source.kind != "retry_budget" {
            self.budget.record_retry(action.timestamp);
        }
        if let Some(why) = &action.worker_attention {
            self.registry.flag(&action.failed_worker, why);
        }
    }

    /// Replays one logged failure and the action decided for it (restart): the same state
    /// changes as `handle_failure`, without deciding again.
    pub fn replay(&mut self, rec: &FailureRecord, action: &RecoveryAction) {
        let entry = self.state.task_mut(&rec.task_id);
        let first = entry.attempts == 0;
        entry.observe(rec, action.kind);
        if first {
            self.budget.deposit(rec.timestamp);
        }
        self.apply_action(action);
    }

    /// Makes a ladder step concrete for this task, or `None` when it does not apply.
    fn prepare(&self, step: &Step, c: &Ctx<'_>, excluded: &[WorkerId]) -> Option<Prepared> {
        use RecoveryStrategy as S;
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
                p.target = self.pick(HardwareClass::Cpu, c, excluded, false, false);
                p.note = "run on CPU".into();
            }
            S::DifferentHardwareClass => {
                let to = mutate::fallback_class(c.class)?;
                p.moves = true;
                p.requirements = Some(requirement(to));
                p.target = self.pick(to, c, excluded, false, false);
                p.note = format!("move from {} to {to}", c.class);
            }
            S::DifferentWorker => {
                p.moves = true;
                p.target = self.pick(c.class, c, excluded, step.more_memory, step.other_browser);
                if step.more_memory {
                    let min = match (&p.target, c.failed_memory) {
                        (Some(t), _) => self.registry.get(t).and_then(|w| w.memory_gib),
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
            }
        }
        Some(p)
    }

    fn pick(
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
        let mut ex: Vec<WorkerId> = excluded.to_vec();
        ex.push(c.rec.worker_id.clone());
        self.registry
            .pick(&Want {
                class,
                excluded: &ex,
                more_memory_than: if more_memory { c.failed_memory } else { None },
                other_browser_than: if other_browser { c.browser } else { None },
            })
            .map(|w| w.id.clone())
    }

    /// Feeds back the outcome of an applied action.
    pub fn record_outcome(&mut self, outcome: &Outcome) -> Result<(), EngineError> {
        let id = TaskId::new(&outcome.task_id)
            .map_err(|_| EngineError::UnknownTask(outcome.task_id.clone()))?;
        if self.state.task(&id).is_none() {
            return Err(EngineError::UnknownTask(outcome.task_id.clone()));
        }
        self.state.task_mut(&id).apply_outcome(outcome);
        self.state.on_outcome(outcome);
        Ok(())
    }
}

impl Engine<MemoryState> {
    /// Loads in-memory state saved by [`Engine::save_state`] (for the CLI's `--state FILE`).
    pub fn load_state(&mut self, path: &Path) -> Result<(), EngineError> {
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.display().to_string(),
            source,
        })?;
        self.state = serde_json::from_str(&text).map_err(|e| EngineError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(())
    }

    /// Saves the in-memory state atomically (temporary file, then rename).
    pub fn save_state(&self, path: &Path) -> Result<(), EngineError> {
        let io = |source| EngineError::Io {
            path: path.display().to_string(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(&self.state).map_err(|e| EngineError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
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

#[cfg(test)]
mod tests;
