//! Policies: what answers a simulated failure. [`Policy`] is the seam any decision maker
//! plugs into; [`EnginePolicy`] is the engine with its rules (`rules`), with its learned
//! ranking on (`learned`: Bayes posteriors) or with its success-model ranker on (`model`:
//! logistic regressions refit online, see `ranking::smart`), [`FixedPolicy`] a table per (class, kind), [`OraclePolicy`] the
//! ground truth's best strategy.
//!
//! A policy sees what a coordinator would see — the failure record, the task's failure
//! count, the workers the task already failed on — and, only if it asks for it
//! ([`Policy::wants_ground_truth`]), the ground truth. Only the oracle does.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use super::scenario::{
    locate, parse_toml, Checker, ClassKey, FixedFile, KindKey, Scenario, StrategyList,
};
use super::truth::{self, Cost, Probs, N};
use super::SimError;
use crate::classify::{Classifier, ClassifyInput};
use crate::config::{EngineConfig, RankerKind, RetryParams};
use crate::engine::{mutate, Engine};
use crate::model::{
    DecisionSource, FailureKind, FailureRecord, HardwareClass, HardwareRequirements, Outcome,
    RecoveryAction, RecoveryStrategy, Timestamp, WorkerId,
};
use crate::retry::RetryPolicy;
use crate::rules::RuleSet;

/// The ground truth of one failure, for policies that may see it.
#[derive(Debug, Clone, Copy)]
pub struct GroundTruth<'a> {
    /// The true kind.
    pub kind: FailureKind,
    /// True success probability of every strategy in the task's current state.
    pub success: &'a Probs,
    /// Cost of every strategy on the failed worker's class.
    pub cost: &'a [Cost; N],
    /// Whether the failed worker is bad.
    pub bad_worker: bool,
}

/// What a policy is asked about.
#[derive(Debug, Clone, Copy)]
pub struct DecisionContext<'a> {
    /// The failure.
    pub record: &'a FailureRecord,
    /// The task's failure count, this one included (1 = first failure).
    pub attempt: u32,
    /// Failures beyond this number must be escalated.
    pub max_attempts: u32,
    /// Workers this task has already failed on and left.
    pub excluded: &'a [WorkerId],
    /// The ground truth, given only to policies that want it.
    pub ground_truth: Option<GroundTruth<'a>>,
}

/// Something that answers failures with recovery actions and learns from outcomes.
pub trait Policy {
    /// Name written into the outputs.
    fn name(&self) -> &'static str;

    /// Whether the policy reads the ground truth (only an oracle should).
    fn wants_ground_truth(&self) -> bool {
        false
    }

    /// The action for one failure (shared: the engine keeps it in the task's history).
    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Arc<RecoveryAction>;

    /// Feeds back the outcome of the latest action of a task.
    fn observe(&mut self, outcome: &Outcome) -> Result<(), SimError>;

    /// The task ended (succeeded or escalated); its state may be dropped.
    fn finish(&mut self, _task: &crate::model::TaskId) {}

    /// The learned ranking the policy decides with, when it has one (`learned`): to seed it
    /// before the run, e.g. with a trained model's success tables.
    fn ranker_mut(&mut self) -> Option<&mut crate::ranking::Ranker> {
        None
    }
}

/// The policies `faultline simulate --policy` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// The engine with its rules.
    Rules,
    /// A fixed table per (class, kind).
    Fixed,
    /// The ground truth's best strategy.
    Oracle,
    /// The engine with its learned ranking, learning from the fed-back outcomes.
    Learned,
    /// The engine with its success-model ranker (`ranking.ranker = "model"`), refit online
    /// from the fed-back outcomes.
    Model,
}

impl FromStr for PolicyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "rules" => Ok(PolicyKind::Rules),
            "fixed" => Ok(PolicyKind::Fixed),
            "oracle" => Ok(PolicyKind::Oracle),
            "learned" => Ok(PolicyKind::Learned),
            "model" => Ok(PolicyKind::Model),
            _ => Err(format!(
                "unknown policy '{s}' (expected one of: rules, fixed, oracle, learned, model)"
            )),
        }
    }
}

/// Builds a policy for a scenario. `rules` replaces the default rules of the `rules`,
/// `learned` and `model` policies, `engine` their engine configuration (its seed and `max_attempts` are
/// replaced by the run's); `fixed` replaces the scenario's table of the `fixed` policy.
pub fn build(
    kind: PolicyKind,
    scenario: &Scenario,
    rules: Option<RuleSet>,
    engine: Option<EngineConfig>,
    fixed: Option<FixedTable>,
    seed: u64,
) -> Result<Box<dyn Policy>, SimError> {
    let rules = || rules.unwrap_or_else(RuleSet::defaults);
    let engine = engine.unwrap_or_default();
    Ok(match kind {
        PolicyKind::Rules => Box::new(
            EnginePolicy::rules(rules(), engine, seed, scenario.max_attempts)?.with_fleet(scenario),
        ),
        PolicyKind::Learned => Box::new(
            EnginePolicy::learned(rules(), engine, seed, scenario.max_attempts)?
                .with_fleet(scenario),
        ),
        PolicyKind::Model => Box::new(
            EnginePolicy::model(rules(), engine, seed, scenario.max_attempts)?.with_fleet(scenario),
        ),
        PolicyKind::Fixed => Box::new(FixedPolicy::new(
            fixed.unwrap_or_else(|| scenario.fixed.clone()),
        )),
        PolicyKind::Oracle => Box::new(OraclePolicy::new()),
    })
}

/// The ranker a policy decides with: `learned` is the Bayes ranker, `model` the success
/// model; the other policies have none.
fn policy_ranker(kind: PolicyKind) -> Option<RankerKind> {
    match kind {
        PolicyKind::Learned => Some(RankerKind::Bayes),
        PolicyKind::Model => Some(RankerKind::Model),
        PolicyKind::Rules | PolicyKind::Fixed | PolicyKind::Oracle => None,
    }
}

fn ranker_name(r: RankerKind) -> &'static str {
    match r {
        RankerKind::Bayes => "bayes",
        RankerKind::Model => "model",
    }
}

fn ranker_conflict(at: String, kind: PolicyKind, written: RankerKind) -> SimError {
    let other = match written {
        RankerKind::Bayes => "learned",
        RankerKind::Model => "model",
    };
    let own = policy_ranker(kind).map_or("none", ranker_name);
    SimError::Config {
        at,
        field: "ranking.ranker".into(),
        detail: format!(
            "\"{}\" contradicts policy {}, which is the {own} ranker: use policy {other}, or remove ranking.ranker",
            ranker_name(written),
            match kind {
                PolicyKind::Learned => "learned",
                PolicyKind::Model => "model",
                PolicyKind::Rules => "rules",
                PolicyKind::Fixed => "fixed",
                PolicyKind::Oracle => "oracle",
            }
        ),
    }
}

/// Checks an engine configuration file's text (`--config`) against the policy it is given
/// to: a `ranking.ranker` naming the other ranker than the policy's (`learned` is `bayes`,
/// `model` is `model`) is refused, naming the file, the line and `ranking.ranker`, where it
/// used to be silently overridden or obeyed while the outputs named the policy. A text that
/// does not parse is left to the configuration's own loader.
pub fn check_config_ranker(kind: PolicyKind, text: &str, path: &str) -> Result<(), SimError> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    // `ranking.enabled` written against the policy, which sets it (an audit: `true` under
    // policy rules was ignored and `false` under policy learned overridden, without a word,
    // while a contradicting `ranker` was refused).
    let enabled = table
        .get("ranking")
        .and_then(|r| r.get("enabled"))
        .and_then(toml::Value::as_bool);
    let contradiction = match (kind, enabled) {
        (PolicyKind::Rules, Some(true)) => {
            Some("policy rules decides by the rules alone: use --policy learned (or model)")
        }
        (PolicyKind::Learned | PolicyKind::Model, Some(false)) => {
            Some("the policy turns the ranking on: use --policy rules")
        }
        _ => None,
    };
    if let (Some(why), Some(e)) = (contradiction, enabled) {
        let at = match locate(text, "ranking.enabled") {
            Some(line) => format!("{path}:{line}"),
            None => path.to_string(),
        };
        return Err(SimError::Config {
            at,
            field: "ranking.enabled".into(),
            detail: format!("{e} contradicts the policy: {why}, or remove ranking.enabled"),
        });
    }
    let Some(own) = policy_ranker(kind) else {
        return Ok(());
    };
    let written = table
        .get("ranking")
        .and_then(|r| r.get("ranker"))
        .and_then(|v| v.clone().try_into::<RankerKind>().ok());
    match written {
        Some(w) if w != own => {
            let at = match locate(text, "ranking.ranker") {
                Some(line) => format!("{path}:{line}"),
                None => path.to_string(),
            };
            Err(ranker_conflict(at, kind, w))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// rules, learned
// ---------------------------------------------------------------------------------------

/// The engine (`Engine::handle_failure` / `record_outcome`): with its rules alone (`rules`),
/// or with its learned ranking switched on (`learned`), which starts from the rule ladders
/// as priors and learns from every outcome the simulator feeds back.
#[derive(Debug)]
pub struct EnginePolicy {
    engine: Engine,
    name: &'static str,
    /// Each running task's latest failure: an outcome the engine does not know the task of
    /// is accepted only when the engine may have forgotten it (see `observe`).
    last_failure: HashMap<crate::model::TaskId, Timestamp>,
}

impl EnginePolicy {
    /// The engine deciding with `rules` alone (ranking off), seeded, escalating beyond
    /// `max_attempts`.
    pub fn rules(
        rules: RuleSet,
        mut config: EngineConfig,
        seed: u64,
        max_attempts: u32,
    ) -> Result<Self, SimError> {
        config.ranking.enabled = false;
        Self::new(rules, config, seed, max_attempts, "rules")
    }

    /// The engine with its learned ranking on (the Bayes ranker). A configuration whose
    /// `ranking.ranker` is `model` is refused: it would run the `model` policy under the
    /// name `learned`.
    pub fn learned(
        rules: RuleSet,
        mut config: EngineConfig,
        seed: u64,
        max_attempts: u32,
    ) -> Result<Self, SimError> {
        if config.ranking.ranker != RankerKind::Bayes {
            return Err(ranker_conflict(
                "the engine configuration".into(),
                PolicyKind::Learned,
                config.ranking.ranker,
            ));
        }
        config.ranking.enabled = true;
        Self::new(rules, config, seed, max_attempts, "learned")
    }

    /// The engine with its success-model ranker on (the rules decide until its first fit).
    pub fn model(
        rules: RuleSet,
        mut config: EngineConfig,
        seed: u64,
        max_attempts: u32,
    ) -> Result<Self, SimError> {
        config.ranking.enabled = true;
        config.ranking.ranker = crate::config::RankerKind::Model;
        Self::new(rules, config, seed, max_attempts, "model")
    }

    /// Tells the engine the scenario's fleet shape (workers per class), as a coordinator
    /// that places tasks itself knows it ([`Engine::set_fleet_shape`]).
    pub fn with_fleet(mut self, scenario: &Scenario) -> Self {
        self.engine
            .set_fleet_shape(scenario.classes.iter().map(|c| (c.class, c.count as usize)));
        self
    }

    fn new(
        rules: RuleSet,
        mut config: EngineConfig,
        seed: u64,
        max_attempts: u32,
        name: &'static str,
    ) -> Result<Self, SimError> {
        config.seed = seed;
        config.retry.max_attempts = max_attempts;
        Ok(EnginePolicy {
            engine: Engine::with_parts(config, rules, Default::default())?,
            name,
            last_failure: HashMap::new(),
        })
    }
}

impl Policy for EnginePolicy {
    fn name(&self) -> &'static str {
        self.name
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Arc<RecoveryAction> {
        self.last_failure
            .insert(ctx.record.task_id.clone(), ctx.record.timestamp);
        self.engine.handle_failure(ctx.record)
    }

    fn finish(&mut self, task: &crate::model::TaskId) {
        self.last_failure.remove(task);
    }

    fn observe(&mut self, outcome: &Outcome) -> Result<(), SimError> {
        match self.engine.record_outcome(outcome) {
            // The engine forgot the task while its outcome was on the way: a failed recovery
            // is known when the task fails again, which with a long `refail_mean_s` is after
            // the engine's `forget_after_s` (four times it for a task awaiting its outcome).
            // A coordinator's engine would answer the same; the task's next failure starts
            // afresh. Before, this ended the whole run with an error. Any other unknown task
            // is the simulator's bug, and still an error.
            Err(crate::engine::EngineError::UnknownTask(_)) if self.may_have_forgotten(outcome) => {
                Ok(())
            }
            r => Ok(r?),
        }
    }

    fn ranker_mut(&mut self) -> Option<&mut crate::ranking::Ranker> {
        let r = &self.engine.config().ranking;
        (r.enabled && r.ranker == crate::config::RankerKind::Bayes)
            .then(|| self.engine.ranker_mut())
    }
}

impl EnginePolicy {
    /// Whether the engine may have forgotten the task of `outcome`: the task is running, and
    /// its latest failure is at least `forget_after_s` before the outcome.
    fn may_have_forgotten(&self, outcome: &Outcome) -> bool {
        let after = self.engine.config().forget_after_s;
        let Ok(id) = crate::model::TaskId::new(&outcome.task_id) else {
            return false;
        };
        match (self.last_failure.get(&id), outcome.timestamp) {
            (Some(last), Some(at)) => after > 0.0 && at.secs_since(*last) >= after,
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------
// fixed
// ---------------------------------------------------------------------------------------

/// The fixed policy's table: a list of strategies per (class, kind). The n-th failure of a
/// task uses entry n; the last entry repeats. Lookup order: `<class>.<kind>`,
/// `<class>.any`, `any.<kind>`, `any.any`, then DELAYED_RETRY.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FixedTable {
    cells: Vec<((ClassKey, KindKey), Vec<RecoveryStrategy>)>,
}

impl FixedTable {
    /// Reads a table file for `scenario`: the shape of a scenario's `[fixed]`, at the top
    /// level (`[gpu]\noom_gpu = ["REDUCED_BATCH_SIZE", "FALLBACK_CPU"]`), checked as the
    /// scenario's own `[fixed]` is: a class or kind given twice in two spellings, or a class
    /// the scenario's fleet does not have, is refused.
    pub fn load(path: &Path, scenario: &Scenario) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let p = path.display().to_string();
        let fixed = |e: SimError| match e {
            SimError::Invalid { at, field, detail } => SimError::InvalidFixed { at, field, detail },
            other => other,
        };
        let raw: FixedFile = parse_toml(&text, &p).map_err(fixed)?;
        let fleet: Vec<HardwareClass> = scenario.classes.iter().map(|c| c.class).collect();
        Self::from_raw(
            &raw.rows,
            &fleet,
            &Checker {
                path: &p,
                text: &text,
            },
            "",
        )
        .map_err(fixed)
    }

    /// The table from its rows; `fleet`: the classes with workers (a row for another class
    /// would never be used, and is refused).
    pub(crate) fn from_raw(
        raw: &std::collections::BTreeMap<
            ClassKey,
            std::collections::BTreeMap<KindKey, StrategyList>,
        >,
        fleet: &[HardwareClass],
        ck: &Checker<'_>,
        prefix: &str,
    ) -> Result<Self, SimError> {
        let dot = if prefix.is_empty() { "" } else { "." };
        let mut cells = Vec::new();
        for (c, row) in raw {
            if let ClassKey::Class(class) = c {
                if !fleet.contains(class) {
                    return Err(ck.bad(
                        format!("{prefix}{dot}{c}"),
                        format!("no workers of class {class}: this table would never be used"),
                    ));
                }
            }
            for (k, list) in row {
                if list.0.is_empty() {
                    return Err(ck.bad(format!("{prefix}{dot}{c}.{k}"), "must name a strategy"));
                }
                cells.push(((*c, *k), list.0.clone()));
            }
        }
        Ok(FixedTable { cells })
    }

    /// The strategies for (class, kind).
    pub fn lookup(&self, class: HardwareClass, kind: FailureKind) -> &[RecoveryStrategy] {
        const DEFAULT: &[RecoveryStrategy] = &[RecoveryStrategy::DelayedRetry];
        let keys = [
            (ClassKey::Class(class), KindKey::Kind(kind)),
            (ClassKey::Class(class), KindKey::Any),
            (ClassKey::Any, KindKey::Kind(kind)),
            (ClassKey::Any, KindKey::Any),
        ];
        keys.iter()
            .find_map(|key| self.cells.iter().find(|(k, _)| k == key))
            .map_or(DEFAULT, |(_, v)| v.as_slice())
    }
}

/// Answers with the fixed table, on the classifier's kind (what a coordinator knows).
#[derive(Debug)]
pub struct FixedPolicy {
    table: FixedTable,
    classifier: Classifier,
    retry: RetryPolicy,
}

impl FixedPolicy {
    /// A fixed policy over `table`.
    pub fn new(table: FixedTable) -> Self {
        FixedPolicy {
            table,
            classifier: Classifier::new(),
            retry: default_retry(),
        }
    }
}

fn default_retry() -> RetryPolicy {
    // The default retry parameters are valid (tested in `retry`).
    RetryParams::default()
        .check()
        .expect("default retry parameters are valid")
        .0
}

impl Policy for FixedPolicy {
    fn name(&self) -> &'static str {
        "fixed"
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Arc<RecoveryAction> {
        let rec = ctx.record;
        let cls = self.classifier.verdict(&ClassifyInput::of_record(rec));
        let list = self.table.lookup(rec.hardware.class, cls.kind);
        let n = (ctx.attempt as usize).clamp(1, list.len());
        let (strategy, source) = if ctx.attempt > ctx.max_attempts {
            (
                RecoveryStrategy::Escalation,
                source("max_attempts", None, None),
            )
        } else {
            (
                list[n - 1],
                source(
                    "fixed",
                    Some(format!(
                        "fixed:{}.{}",
                        rec.hardware.class.as_str().to_ascii_lowercase(),
                        cls.kind
                    )),
                    Some(n as u32),
                ),
            )
        };
        let mut a = build_action(ctx, strategy, cls.kind, source, &self.retry);
        a.classifier_rule = cls.rule.into();
        a.xid = cls.xid;
        Arc::new(a)
    }

    fn observe(&mut self, _outcome: &Outcome) -> Result<(), SimError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// oracle
// ---------------------------------------------------------------------------------------

/// Answers with the strategy of highest true success probability ([`truth::oracle_choice`]).
#[derive(Debug)]
pub struct OraclePolicy {
    retry: RetryPolicy,
}

impl OraclePolicy {
    /// The oracle.
    pub fn new() -> Self {
        OraclePolicy {
            retry: default_retry(),
        }
    }
}

impl Default for OraclePolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl Policy for OraclePolicy {
    fn name(&self) -> &'static str {
        "oracle"
    }

    fn wants_ground_truth(&self) -> bool {
        true
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Arc<RecoveryAction> {
        let (strategy, kind, src) = match ctx.ground_truth {
            Some(gt) => {
                let i = truth::oracle_choice(gt.success, gt.cost, ctx.attempt, ctx.max_attempts);
                let why = if ctx.attempt > ctx.max_attempts {
                    "max_attempts"
                } else {
                    "oracle"
                };
                (RecoveryStrategy::ALL[i], gt.kind, why)
            }
            // Not given the truth (a simulator defect): hand the task to a human.
            None => (RecoveryStrategy::Escalation, FailureKind::Unknown, "oracle"),
        };
        let mut a = build_action(ctx, strategy, kind, source(src, None, None), &self.retry);
        a.classifier_rule = "ground_truth".into();
        Arc::new(a)
    }

    fn observe(&mut self, _outcome: &Outcome) -> Result<(), SimError> {
        Ok(())
    }
}

fn source(kind: &'static str, rule: Option<String>, step: Option<u32>) -> DecisionSource {
    DecisionSource {
        kind: kind.into(),
        rule: rule.map(Into::into),
        step,
    }
}

/// A complete action for `strategy`, with the payload the engine would give it: the new
/// config (batch halved, precision lowered, model simplified, checkpointing off), hardware
/// requirements (CPU, or the next class), the worker to retry on or to exclude, and the
/// nominal (un-jittered) backoff for DELAYED_RETRY.
pub fn build_action(
    ctx: &DecisionContext<'_>,
    strategy: RecoveryStrategy,
    kind: FailureKind,
    source: DecisionSource,
    retry: &RetryPolicy,
) -> RecoveryAction {
    use RecoveryStrategy as S;
    let rec = ctx.record;
    let class = rec.hardware.class;
    let cfg = &rec.task.config;
    let modified_config = match strategy {
        S::ReducedBatchSize => mutate::reduced_batch(cfg),
        S::ReducedPrecision => mutate::reduced_precision(cfg, class),
        S::SimplifiedModel => mutate::simplified_model(cfg),
        S::SkipCheckpointing => mutate::without_checkpointing(cfg),
        _ => None,
    };
    let requirement = |c: HardwareClass| HardwareRequirements {
        hardware: vec![c.requirement_name().to_string()],
        browser: None,
        min_memory_gib: None,
    };
    let hardware_requirements = match strategy {
        S::FallbackCpu => Some(requirement(HardwareClass::Cpu)),
        S::DifferentHardwareClass => mutate::fallback_class(class).map(requirement),
        _ => None,
    };
    let moves = !truth::stays_on_worker(strategy) && strategy != S::Escalation;
    let mut excluded = ctx.excluded.to_vec();
    if moves && !excluded.contains(&rec.worker_id) {
        excluded.push(rec.worker_id.clone());
    }
    let target_worker = matches!(
        strategy,
        S::ImmediateRetry | S::DelayedRetry | S::BrowserRestart | S::ResetWorkerState
    )
    .then(|| rec.worker_id.clone());
    let delay_s = if strategy == S::DelayedRetry {
        retry.backoff(kind).nominal(ctx.attempt)
    } else {
        0.0
    };
    let reason = format!(
        "{kind} on {class} worker {} (attempt {}; {source}): {strategy}",
        rec.worker_id, ctx.attempt
    );
    RecoveryAction {
        task_id: rec.task_id.clone(),
        strategy,
        failed_worker: rec.worker_id.clone(),
        target_worker,
        excluded_workers: excluded,
        delay_s,
        modified_config,
        hardware_requirements,
        resume_checkpoint: None,
        priority_adjustment: if strategy == S::Escalation {
            0
        } else {
            (ctx.attempt.saturating_sub(1)).min(3) as i32
        },
        worker_attention: None,
        reason,
        source,
        propensity: 1.0,
        attempt: ctx.attempt,
        kind,
        failure_type: kind.failure_type(),
        classifier_rule: "".into(),
        xid: None,
        timestamp: rec.timestamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ErrorInfo, HardwareProfile, Precision, TaskConfig, TaskSpec, Timestamp};
    use RecoveryStrategy as S;

    fn rec() -> FailureRecord {
        FailureRecord {
            task_id: crate::model::TaskId::new("t1").unwrap(),
            worker_id: WorkerId::new("gpu-0001").unwrap(),
            hardware: HardwareProfile::of_class(HardwareClass::Gpu),
            error: ErrorInfo {
                message: "CUDA out of memory. Tried to allocate 2.00 GiB".into(),
                ..Default::default()
            },
            timestamp: Timestamp::from_micros(0),
            task: TaskSpec {
                config: TaskConfig {
                    batch_size: Some(32),
                    precision: Some(Precision::Fp16),
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    #[test]
    fn policy_names_parse_and_engine_policies_are_named() {
        assert_eq!("Rules".parse::<PolicyKind>().unwrap(), PolicyKind::Rules);
        assert_eq!(
            "learned".parse::<PolicyKind>().unwrap(),
            PolicyKind::Learned
        );
        assert!("best"
            .parse::<PolicyKind>()
            .unwrap_err()
            .contains("rules, fixed"));
        let s = Scenario::from_toml(
            "[workers.cpu]\ncount = 1\nfailure_rate_per_hour = 1\n[[failures.cpu]]\nkind = \"timeout\"\nweight = 1\n",
            "s.toml",
        )
        .unwrap();
        for (kind, name) in [
            (PolicyKind::Rules, "rules"),
            (PolicyKind::Learned, "learned"),
            (PolicyKind::Model, "model"),
            (PolicyKind::Fixed, "fixed"),
            (PolicyKind::Oracle, "oracle"),
        ] {
            let p = build(kind, &s, None, None, None, 1).unwrap();
            assert_eq!(p.name(), name);
            assert_eq!(p.wants_ground_truth(), kind == PolicyKind::Oracle);
        }
    }

    #[test]
    fn fixed_table_lookup_goes_from_specific_to_default() {
        let raw: std::collections::BTreeMap<
            ClassKey,
            std::collections::BTreeMap<KindKey, StrategyList>,
        > = toml::from_str(
            "[gpu]\noom_gpu = [\"REDUCED_BATCH_SIZE\", \"FALLBACK_CPU\"]\nany = \"DIFFERENT_WORKER\"\n[any]\nnetwork = \"DELAYED_RETRY\"\n",
        )
        .unwrap();
        let t = FixedTable::from_raw(
            &raw,
            &[HardwareClass::Gpu, HardwareClass::Cpu],
            &Checker {
                path: "f",
                text: "",
            },
            "",
        )
        .unwrap();
        assert_eq!(
            t.lookup(HardwareClass::Gpu, FailureKind::OomGpu),
            [S::ReducedBatchSize, S::FallbackCpu]
        );
        assert_eq!(
            t.lookup(HardwareClass::Gpu, FailureKind::Timeout),
            [S::DifferentWorker]
        );
        assert_eq!(
            t.lookup(HardwareClass::Cpu, FailureKind::Network),
            [S::DelayedRetry]
        );
        assert_eq!(
            FixedTable::default().lookup(HardwareClass::Tpu, FailureKind::TpuError),
            [S::DelayedRetry]
        );
    }

    /// A scenario of GPUs and CPUs.
    fn gpu_cpu_fleet() -> Scenario {
        Scenario::from_toml(
            "[workers.gpu]\ncount = 2\nfailure_rate_per_hour = 1\n[workers.cpu]\ncount = 1\nfailure_rate_per_hour = 1\n\
             [[failures.gpu]]\nkind = \"oom_gpu\"\nweight = 1\n[[failures.cpu]]\nkind = \"timeout\"\nweight = 1\n",
            "s.toml",
        )
        .unwrap()
    }

    #[test]
    fn fixed_table_files_are_checked_naming_file_line_and_field() {
        let sc = gpu_cpu_fleet();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fixed.toml");
        std::fs::write(&p, "[gpu]\noom_gpu = \"REDUCED_BATCH\"\n").unwrap();
        let e = FixedTable::load(&p, &sc).unwrap_err().to_string();
        assert!(
            e.contains("fixed.toml:2") && e.contains("gpu.oom_gpu") && e.contains("REDUCED_BATCH"),
            "{e}"
        );
        // Named for what it is (an audit: "invalid scenario fixed.toml:2").
        assert!(e.starts_with("invalid --fixed table "), "{e}");
        std::fs::write(&p, "[gpu]\noom_gpu = []\n").unwrap();
        let e = FixedTable::load(&p, &sc).unwrap_err().to_string();
        assert!(
            e.contains("gpu.oom_gpu") && e.contains("must name a strategy"),
            "{e}"
        );
        std::fs::write(&p, "[qpu]\nany = \"DELAYED_RETRY\"\n").unwrap();
        let e = FixedTable::load(&p, &sc).unwrap_err().to_string();
        assert!(e.contains("QPU") || e.contains("qpu"), "{e}");
        std::fs::write(
            &p,
            "[gpu]\noom_gpu = [\"REDUCED_BATCH_SIZE\", \"FALLBACK_CPU\"]\n",
        )
        .unwrap();
        let t = FixedTable::load(&p, &sc).unwrap();
        assert_eq!(t.lookup(HardwareClass::Gpu, FailureKind::OomGpu).len(), 2);
        let e = FixedTable::load(&dir.path().join("missing.toml"), &sc)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
    }

    #[test]
    fn built_actions_carry_the_engine_payload() {
        let r = rec();
        let ctx = DecisionContext {
            record: &r,
            attempt: 2,
            max_attempts: 10,
            excluded: &[],
            ground_truth: None,
        };
        let retry = default_retry();
        let src = || source("fixed", None, None);
        let a = build_action(
            &ctx,
            S::ReducedBatchSize,
            FailureKind::OomGpu,
            src(),
            &retry,
        );
        assert_eq!(a.modified_config.unwrap().batch_size, Some(16));
        let a = build_action(&ctx, S::FallbackCpu, FailureKind::OomGpu, src(), &retry);
        assert_eq!(a.hardware_requirements.unwrap().hardware, vec!["cpu"]);
        assert_eq!(a.excluded_workers, vec![r.worker_id.clone()]);
        let a = build_action(&ctx, S::DelayedRetry, FailureKind::Network, src(), &retry);
        assert_eq!(a.delay_s, 10.0);
        assert_eq!(a.target_worker, Some(r.worker_id.clone()));
    }

    /// Review finding: a `--fixed` file was read into a plain map, so `[gpu]` then `[GPU]`
    /// silently replaced one another, and a row for a class the fleet lacks was accepted,
    /// where the scenario's own `[fixed]` refuses both. Both go through the same checks.
    #[test]
    fn a_fixed_file_is_checked_as_the_scenarios_fixed_table_is() {
        let sc = gpu_cpu_fleet();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fixed.toml");
        std::fs::write(
            &p,
            "[gpu]\nany = \"DELAYED_RETRY\"\n[GPU]\nany = \"FALLBACK_CPU\"\n",
        )
        .unwrap();
        let e = FixedTable::load(&p, &sc).unwrap_err().to_string();
        assert!(
            e.contains("fixed.toml") && e.contains("class `gpu` is given twice"),
            "{e}"
        );
        std::fs::write(
            &p,
            "[gpu]\noom_gpu = \"FALLBACK_CPU\"\nOOM_GPU = \"DELAYED_RETRY\"\n",
        )
        .unwrap();
        let e = FixedTable::load(&p, &sc).unwrap_err().to_string();
        assert!(e.contains("kind `oom_gpu` is given twice"), "{e}");
        std::fs::write(
            &p,
            "[gpu]\nany = \"DELAYED_RETRY\"\n\n[tpu]\nany = \"FALLBACK_CPU\"\n",
        )
        .unwrap();
        let e = FixedTable::load(&p, &sc).unwrap_err().to_string();
        assert!(
            e.contains("fixed.toml:4: tpu:") && e.contains("no workers of class TPU"),
            "{e}"
        );
        // The scenario's own table says the same.
        let e = Scenario::from_toml(
            "[workers.gpu]\ncount = 1\nfailure_rate_per_hour = 1\n[[failures.gpu]]\nkind = \"oom_gpu\"\nweight = 1\n[fixed.tpu]\nany = \"FALLBACK_CPU\"\n",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("s.toml:7: fixed.tpu:") && e.contains("no workers of class TPU"),
            "{e}"
        );
        // `any` rows and the fleet's classes are fine.
        std::fs::write(
            &p,
            "[any]\nany = \"DELAYED_RETRY\"\n[cpu]\ntimeout = \"IMMEDIATE_RETRY\"\n",
        )
        .unwrap();
        let t = FixedTable::load(&p, &sc).unwrap();
        assert_eq!(
            t.lookup(HardwareClass::Cpu, FailureKind::Timeout),
            [S::ImmediateRetry]
        );
    }

    /// Review finding: `--policy learned --config C` with `[ranking] ranker = "model"` ran the
    /// success-model ranker while the outputs said "learned". A `ranking.ranker` that
    /// contradicts the policy is refused, naming the field.
    #[test]
    fn a_config_ranker_contradicting_the_policy_is_refused() {
        let sc = gpu_cpu_fleet();
        let mut config = EngineConfig::default();
        config.ranking.ranker = RankerKind::Model;
        let e = match build(
            PolicyKind::Learned,
            &sc,
            None,
            Some(config.clone()),
            None,
            1,
        ) {
            Ok(p) => panic!("accepted as {}", p.name()),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("ranking.ranker") && e.contains("contradicts policy learned"),
            "{e}"
        );
        // The model policy is the model ranker; the rules do not rank.
        for kind in [PolicyKind::Model, PolicyKind::Rules] {
            let p = build(kind, &sc, None, Some(config.clone()), None, 1).unwrap();
            assert_eq!(
                p.name(),
                if kind == PolicyKind::Model {
                    "model"
                } else {
                    "rules"
                }
            );
        }
        // The file's text: a written ranker naming the other one is refused, with its line.
        let model = "[retry]\n\n[ranking]\nranker = \"model\"\n";
        let e = check_config_ranker(PolicyKind::Learned, model, "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid engine config c.toml:4: ranking.ranker: \"model\" contradicts policy learned"),
            "{e}"
        );
        let bayes = "[ranking]\nranker = \"bayes\"\n";
        let e = check_config_ranker(PolicyKind::Model, bayes, "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.toml:2: ranking.ranker") && e.contains("contradicts policy model"),
            "{e}"
        );
        // Regression (CLI audit): `enabled` against the policy is refused too, with its line.
        for (kind, text, word) in [
            (
                PolicyKind::Rules,
                "[ranking]\nenabled = true\n",
                "true contradicts",
            ),
            (
                PolicyKind::Learned,
                "[ranking]\nenabled = false\n",
                "false contradicts",
            ),
        ] {
            let e = check_config_ranker(kind, text, "c.toml")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("c.toml:2: ranking.enabled") && e.contains(word),
                "{e}"
            );
        }
        for (kind, text) in [
            (PolicyKind::Learned, bayes),
            (PolicyKind::Model, model),
            (PolicyKind::Rules, model),
            (PolicyKind::Learned, "[ranking]\nenabled = true\n"),
            (PolicyKind::Model, ""),
        ] {
            assert!(
                check_config_ranker(kind, text, "c.toml").is_ok(),
                "{kind:?} {text}"
            );
        }
    }
}

#[cfg(test)]
mod forgotten_tests {
    use super::*;

    /// Review finding: the simulator ignored every outcome for a task its engine did not
    /// know, which would hide a bug of the world's. Only a task the engine may have forgotten
    /// (idle `forget_after_s` since its latest failure) is let through.
    #[test]
    fn only_an_outcome_the_engine_may_have_forgotten_is_let_through() {
        let mut p = EnginePolicy::rules(RuleSet::default(), EngineConfig::default(), 1, 5).unwrap();
        let at = |s: f64| Some(Timestamp::from_secs_f64(1_700_000_000.0 + s));
        let ghost = Outcome {
            timestamp: at(0.0),
            ..Outcome::verdict("ghost", true)
        };
        assert!(p.observe(&ghost).is_err(), "a task nobody decided for");
        // Decided for, then idle past forget_after_s: let through.
        p.last_failure.insert(
            crate::model::TaskId::new("ghost").unwrap(),
            at(0.0).unwrap(),
        );
        let late = Outcome {
            timestamp: at(8.0 * 86_400.0),
            ..Outcome::verdict("ghost", false)
        };
        assert!(p.observe(&late).is_ok());
        // Not idle long enough: still an error.
        let soon = Outcome {
            timestamp: at(60.0),
            ..Outcome::verdict("ghost", false)
        };
        assert!(p.observe(&soon).is_err());
    }
}
