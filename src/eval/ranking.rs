//! Off-policy evaluation of recovery policies from the logged history
//! (`faultline eval ranking --data DIR`).
//!
//! Every logged action carries the probability with which the logging policy chose it
//! (`propensity`); an applied action gets an outcome — the task's latest action, as the
//! engine credits one — or, when its task fails again first, counts as a failed recovery. Each logged decision is one round of
//! a contextual bandit: context = (hardware class, failure kind, attempt bucket) plus the
//! task's state (its rule ladder position and config), action = the strategy, reward = the
//! outcome's success (0/1). An escalation is a decision too, with reward 0 (no automatic
//! recovery) and no outcome to wait for; a candidate that escalates gets that known 0 with
//! weight 1 (in SNIPS's denominator as well), whatever was logged. A *candidate* policy is
//! scored on the decisions the logging policy made, without running it:
//!
//! - **IPS** (inverse propensity): mean of `w·r`, `w = 1{candidate = logged}/propensity`,
//!   clipped at `clip` (clipping trades a downward bias for variance; the number of clipped
//!   weights and the weight cut off per decision, which bounds that bias, are reported).
//! - **SNIPS** (self-normalised IPS): `Σ w·r / Σ w` on the uncut weights — bounded in
//!   [0, 1], less variance than uncut IPS, consistent.
//! - **DR** (doubly robust): mean of `q̂(x, candidate) + w·(r − q̂(x, logged))` on the uncut
//!   weights, with a reward
//!   model `q̂` = success rate per (context, strategy) on the training split, backing off to
//!   the strategy's rate, then the overall rate. Unbiased if either the propensities or the
//!   model are right — but only where the logging policy could take the candidate's choice
//!   (support); elsewhere DR is the model's guess.
//!
//! A decision whose logged propensity is not a finite number in [1e-6, 1] cannot be weighted: it
//! is left out of every estimate and counted in the report ([`InvalidPropensity`]).
//!
//! Standard errors are cluster-robust by task (the decisions of one task are correlated):
//! `√(G/(G−1) · Σ_g (Σ_{i∈g} (x_i − x̄))²) / n` over the G tasks, for the per-decision terms
//! of IPS and DR and for the linearised terms `w·(r − v)` of SNIPS (delta method, divided by
//! `Σw`). With one decision per task (the `first` scope) this is the usual sample standard
//! error. The effective sample size `(Σw)²/Σw²` (uncut weights) says how many decisions SNIPS
//! and DR are really worth, and the mean weight `Σw/n` (before clipping) whether the logging policy took
//! the candidate's choices at all: it is 1 in expectation with full support, and far below 1
//! when the logging policy rarely took them (support deficiency) — IPS is then biased low, and
//! SNIPS and DR lean on few decisions (DR on the reward model).
//!
//! The history is read as training reads it ([`crate::store::committed_rows`]): committed Parquet parts only
//! (sequence ≤ the manifest's `flushed_seq`, so the parts of an interrupted flush are left
//! out), plus the records still in the write-ahead log (`wal/`, read without repairing it),
//! which the report counts.
//!
//! Candidates: `logged` (the on-policy average, a sanity check: weights are 1), `rules` (the
//! rule engine's choice: the ladder the rules select for the failure, from the task's
//! position on it, first step applicable to the task's config — reconstructed from the
//! logged actions; circuit breakers and the retry budget are not replayed), `learned` (greedy
//! on the posterior means of a [`Ranker`] trained on the first `split` of the decisions, in
//! log order, and evaluated on the rest; where it abstains the rules decide), `model` (greedy
//! on the success model of a [`ModelRanker`] fitted on the same training part; where it
//! abstains the rules decide). Both see the engine's fine context key rebuilt from the logged
//! classifier rule, Xid and attempt; the flagged-worker bit is not logged and taken as off.
//!
//! Every estimate is reported for all evaluated decisions and for *first* decisions
//! (attempt 1 of a task's first episode): their contexts do not depend on the policy that ran
//! before, so the value of a candidate on first decisions is also what a run under that
//! candidate would measure. (Attempt 1 after a recovery is left out: the task's config and
//! the strategies it tried carry the earlier decisions.)

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use serde::Serialize;

use crate::config::{ModelParams, RankerKind, RankingParams, Selection};
use crate::engine::mutate;
use crate::model::{FailureKind, FailureRecord, HardwareClass, RecoveryStrategy, TaskConfig};
use crate::ranking::smart::{Bits, ModelRanker, Row};
use crate::ranking::{
    fine_key, ranked_kind, Observed, RankContext, Ranker, RankingError, WorkerStanding, N,
};
use crate::rules::{MatchContext, RuleSet};
use crate::store::{
    committed_rows, flushed_seq, reread_while_compacting, unflushed_logged, Entry, StoreError,
    Table,
};

/// Errors of the ranking evaluation.
#[derive(Debug, thiserror::Error)]
pub enum RankingEvalError {
    /// The Parquet history, its manifest or the write-ahead log could not be read (the error
    /// names the file).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The learned candidate could not be built.
    #[error(transparent)]
    Ranking(#[from] RankingError),
    /// An option is out of range.
    #[error("invalid option {field}: {detail}")]
    Invalid {
        /// The option.
        field: &'static str,
        /// Why.
        detail: String,
    },
    /// Nothing to evaluate.
    #[error("{0}")]
    Empty(String),
}

/// Options of the evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Fraction of the decisions (in log order) used to train the `learned` and `model`
    /// candidates and the reward model; the rest is evaluated. In (0, 1).
    pub split: f64,
    /// Largest importance weight (weights above are cut to it). ≥ 1.
    pub clip: f64,
    /// The engine's ranking parameters the `learned` and `model` candidates start from (the
    /// ladder priors, the back-off, the model ranker's features); both candidates are greedy
    /// whatever its selection, exploration and discounts (`eval ranking --config`).
    pub ranking: RankingParams,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            split: 0.5,
            clip: 20.0,
            ranking: RankingParams::default(),
        }
    }
}

/// Attempt bucket of the context: 1, 2, or 3 for "3 or more".
pub fn attempt_bucket(attempt: u32) -> u8 {
    attempt.clamp(1, 3) as u8
}

/// The context of a decision as the reward model and the report see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Context {
    /// Hardware class of the failed worker.
    pub class: HardwareClass,
    /// Failure kind.
    pub kind: FailureKind,
    /// Attempt bucket ([`attempt_bucket`]).
    pub bucket: u8,
}

/// One logged decision joined to its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The task.
    pub task: String,
    /// Context.
    pub context: Context,
    /// The task's attempt number.
    pub attempt: u32,
    /// The kind the learned rankers use ([`ranked_kind`] of the logged kind and classifier
    /// rule).
    pub rank_kind: FailureKind,
    /// The engine's fine context key of the decision ([`fine_key`] of the logged classifier
    /// rule, Xid and attempt; the flagged-worker bit is not logged and taken as off).
    pub fine: u64,
    /// Logged strategy.
    pub strategy: RecoveryStrategy,
    /// Probability with which the logging policy chose it.
    pub propensity: f64,
    /// Decision source kind (rule, ladder, learned, circuit_breaker, ...).
    pub source: String,
    /// Outcome: 1 success, 0 failure.
    pub reward: f64,
    /// Reported cost of the outcome.
    pub cost: Option<f64>,
    /// The rule engine's choice in this state (ESCALATION when its ladder is exhausted).
    pub rules: RecoveryStrategy,
    /// The rule ladder's remaining applicable steps, in order.
    pub ladder: Vec<RecoveryStrategy>,
    /// Strategies applicable to the task's config (ESCALATION excluded).
    pub valid: Vec<RecoveryStrategy>,
    /// How often each strategy was already used for this task.
    pub tried: [u32; N],
    /// Whether the task had not recovered before (its first episode): only there is an
    /// attempt-1 context free of the policy that ran before (after a recovery the task's
    /// config and the strategies it tried carry the earlier decisions).
    pub first_episode: bool,
    /// Whether the classifier read a device held busy ([`crate::classify::device_busy`]).
    pub busy: bool,
}

/// What joining actions to outcomes found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JoinStats {
    /// Logged actions.
    pub actions: usize,
    /// Escalations (no outcome by design).
    pub escalations: usize,
    /// Non-escalation actions without an outcome.
    pub unmatched_actions: usize,
    /// Non-escalation actions their task failed again after, before any outcome: failed
    /// recoveries (reward 0). The engine gives a later outcome to the task's latest action,
    /// so these never get one.
    pub superseded: usize,
    /// Outcomes without a pending action.
    pub unmatched_outcomes: usize,
    /// Actions whose task has no logged failure before them: the rules and the rankers
    /// decide there without the failure's message, class or exit code.
    pub without_failure: usize,
}

/// What the write-ahead log added to the Parquet history.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WalStats {
    /// Failure, action and outcome records read from `wal/` that the committed Parquet parts
    /// do not hold (not yet flushed).
    pub records: usize,
    /// Actions among them.
    pub actions: usize,
    /// Problems found reading the log (torn tail, bad checksum), each naming its file.
    pub warnings: Vec<String>,
}

/// The logged history of a data directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoggedHistory {
    /// Failures, actions and outcomes in log order.
    pub entries: Vec<Entry>,
    /// What came from the write-ahead log.
    pub wal: WalStats,
}

/// Reads failures, actions and outcomes of a data directory, in log order: the committed
/// Parquet parts as training reads them (sequence ≤ the manifest's `flushed_seq`, each
/// sequence number once), then the write-ahead log's records above `flushed_seq` (read only:
/// a torn tail is reported, not cut).
pub fn read_history(root: &Path) -> Result<LoggedHistory, RankingEvalError> {
    if !root.exists() {
        return Err(RankingEvalError::Empty(format!(
            "{}: no such directory",
            root.display()
        )));
    }
    if !root.join("history").is_dir() && root.join("actions.jsonl").is_file() {
        return Err(RankingEvalError::Empty(format!(
            "{0}: a simulator's JSONL output, not a data directory; `faultline ingest {0} \
             --data DIR` imports it (or run the simulator with --format parquet)",
            root.display()
        )));
    }
    if !root.join("history").is_dir() {
        return Err(RankingEvalError::Empty(format!(
            "{}: no history/ directory (a data directory of `faultline recommend --data`, `serve`, `ingest` or `simulate --format parquet`)",
            root.display()
        )));
    }
    // Read again if a compaction replaced a part under the read.
    let (flushed, mut by_seq) = reread_while_compacting(|| {
        let flushed = flushed_seq(root)?;
        let mut by_seq = BTreeMap::new();
        for t in [Table::Failures, Table::Actions, Table::Outcomes] {
            by_seq.extend(committed_rows(root, t, flushed)?);
        }
        Ok((flushed, by_seq))
    })?;
    let (records, warnings) = unflushed_logged(root, flushed)?;
    let mut stats = WalStats {
        warnings,
        ..WalStats::default()
    };
    for (seq, entry) in records {
        if let std::collections::btree_map::Entry::Vacant(v) = by_seq.entry(seq) {
            stats.records += 1;
            stats.actions += usize::from(matches!(entry, Entry::Action(_)));
            v.insert(entry);
        }
    }
    Ok(LoggedHistory {
        entries: by_seq.into_values().collect(),
        wal: stats,
    })
}

#[derive(Default)]
struct TaskState {
    record: Option<FailureRecord>,
    config: Option<TaskConfig>,
    /// Whether a logged action changed the task's config (then reports no longer set it).
    config_changed: bool,
    /// Whether the task's latest outcome was a success: its next failure starts a new
    /// episode, as in the engine (`TaskRecord::observe`).
    recovered: bool,
    ladder_next: HashMap<String, u32>,
    tried: [u32; N],
    pending: VecDeque<Decision>,
    /// Episodes the task started after a recovery.
    episodes: u32,
}

/// Joins every logged decision to its outcome (per task, in order; an outcome naming a
/// strategy skips pending decisions of another strategy) and reconstructs, from the logged
/// actions, the state the rule engine would decide in: the ladder the rules select, the
/// task's position on it and its current config.
pub fn join(entries: &[Entry], rules: &RuleSet) -> (Vec<Decision>, JoinStats) {
    let mut tasks: HashMap<String, TaskState> = HashMap::new();
    let mut out: Vec<Decision> = Vec::new();
    let mut stats = JoinStats::default();
    for e in entries {
        match e {
            Entry::Failure(f) => {
                let t = tasks.entry(f.record.task_id.to_string()).or_default();
                // Actions still waiting for an outcome when their task fails again did not
                // recover it: reward 0. Before, they were left out (counted unmatched), which
                // kept exactly the recoveries that did not hold out of every estimate, and a
                // later outcome was credited to the oldest of them instead of the latest
                // action, as the engine credits it (review).
                while let Some(d) = t.pending.pop_front() {
                    stats.superseded += 1;
                    out.push(d);
                }
                // The engine's state change (TaskRecord::observe): a failure after a
                // recovery starts a new episode (ladder positions afresh); the task's config
                // is the reports' until a logged action changed it.
                if t.recovered {
                    t.recovered = false;
                    t.ladder_next.clear();
                    t.episodes += 1;
                }
                let reported = &f.record.task.config;
                if t.config.is_none()
                    || (!t.config_changed
                        && *reported != TaskConfig::default()
                        && t.config.as_ref() != Some(reported))
                {
                    t.config = Some(reported.clone());
                }
                t.record = Some(f.record.clone());
            }
            Entry::Action(a) => {
                let a = &a.action;
                stats.actions += 1;
                let t = tasks.entry(a.task_id.to_string()).or_default();
                stats.without_failure += usize::from(t.record.is_none());
                let config = t.config.clone().unwrap_or_default();
                let class = t
                    .record
                    .as_ref()
                    .map_or(HardwareClass::Unknown, |r| r.hardware.class);
                let (message, exit_code, browser) = match &t.record {
                    Some(r) => (
                        r.error.message.as_str(),
                        r.error.exit_code,
                        r.hardware.browser.as_ref().map(|b| b.name.as_str()).or(r
                            .task
                            .requirements
                            .browser
                            .as_deref()),
                    ),
                    None => ("", None, None),
                };
                let ladder = rules.select(&MatchContext {
                    class,
                    kind: a.kind,
                    message,
                    exit_code,
                    xid: a.xid,
                    attempt: a.attempt,
                    browser,
                });
                let start = t.ladder_next.get(&**ladder.name).copied().unwrap_or(0) as usize;
                let mut remaining: Vec<RecoveryStrategy> = Vec::new();
                for s in ladder.steps.iter().skip(start) {
                    if s.strategy != RecoveryStrategy::Escalation
                        && mutate::applicable(s.strategy, class, &config)
                        && !remaining.contains(&s.strategy)
                    {
                        remaining.push(s.strategy);
                    }
                }
                let valid: Vec<RecoveryStrategy> = RecoveryStrategy::ALL
                    .iter()
                    .copied()
                    .filter(|s| {
                        *s != RecoveryStrategy::Escalation && mutate::applicable(*s, class, &config)
                    })
                    .collect();
                let rules_choice = if a.source.kind == "max_attempts" {
                    RecoveryStrategy::Escalation
                } else {
                    remaining
                        .first()
                        .copied()
                        .unwrap_or(RecoveryStrategy::Escalation)
                };
                let decision = Decision {
                    task: a.task_id.to_string(),
                    context: Context {
                        class,
                        kind: a.kind,
                        bucket: attempt_bucket(a.attempt),
                    },
                    attempt: a.attempt,
                    rank_kind: ranked_kind(a.kind, &a.classifier_rule),
                    busy: crate::classify::device_busy(&a.classifier_rule),
                    fine: fine_key(
                        &a.classifier_rule,
                        a.xid,
                        a.attempt,
                        WorkerStanding::Healthy,
                    ),
                    strategy: a.strategy,
                    propensity: a.propensity,
                    source: a.source.kind.to_string(),
                    reward: 0.0,
                    cost: None,
                    rules: rules_choice,
                    ladder: remaining,
                    valid,
                    tried: t.tried,
                    first_episode: t.episodes == 0,
                };
                if a.strategy == RecoveryStrategy::Escalation {
                    // A decision whose reward is known: no automatic recovery (0), with no
                    // outcome to wait for.
                    stats.escalations += 1;
                    out.push(decision);
                } else {
                    t.pending.push_back(decision);
                }
                // The engine's state change (TaskRecord::apply_action).
                if let Some(rule) = &a.source.rule {
                    match a.source.step {
                        Some(step) => {
                            t.ladder_next.insert(rule.to_string(), step);
                        }
                        None if a.strategy == RecoveryStrategy::Escalation => {
                            t.ladder_next.insert(rule.to_string(), u32::MAX);
                        }
                        None => {}
                    }
                }
                if let Some(c) = &a.modified_config {
                    t.config = Some(c.clone());
                    t.config_changed = true;
                }
                t.recovered = false;
                t.tried[a.strategy.index()] += 1;
            }
            Entry::Outcome(o) => {
                let Some(t) = tasks.get_mut(&o.outcome.task_id) else {
                    stats.unmatched_outcomes += 1;
                    continue;
                };
                // The task's latest action, as the engine applies an outcome
                // (`Engine::log_outcome`); an outcome naming another strategy matches nothing.
                match t.pending.pop_back() {
                    Some(mut d) if o.outcome.strategy.is_none_or(|s| s == d.strategy) => {
                        d.reward = if o.outcome.success { 1.0 } else { 0.0 };
                        d.cost = o.outcome.cost.filter(|c| c.is_finite());
                        out.push(d);
                    }
                    // The outcome names another strategy than the one logged: what ran is
                    // not what was chosen, so the decision cannot be scored (left out and
                    // counted, as before). Kept pending, it would have been taken for a
                    // failed recovery at the task's next failure, even after a success
                    // (review).
                    Some(_) => {
                        stats.unmatched_actions += 1;
                        stats.unmatched_outcomes += 1;
                    }
                    None => stats.unmatched_outcomes += 1,
                }
                // As the engine (`TaskRecord::apply_outcome`): any success of a known task
                // ends its episode, also one reported for an escalated task.
                if o.outcome.success {
                    t.recovered = true;
                }
            }
            _ => {}
        }
    }
    stats.unmatched_actions += tasks.values().map(|t| t.pending.len()).sum::<usize>();
    (out, stats)
}

/// The reward model of the doubly robust estimator: success rate per (context, strategy),
/// backing off to the strategy's rate (fewer than `min_n` observations), then to the overall
/// rate. ESCALATION is worth 0 (it is not a recovery).
#[derive(Debug, Clone, Default)]
pub struct RewardModel {
    cell: HashMap<(Context, RecoveryStrategy), (f64, f64)>,
    strategy: HashMap<RecoveryStrategy, (f64, f64)>,
    all: (f64, f64),
    min_n: f64,
}

impl RewardModel {
    /// Fits the model on decisions.
    pub fn fit(decisions: &[Decision]) -> Self {
        let mut m = RewardModel {
            min_n: 3.0,
            ..Default::default()
        };
        for d in decisions {
            for v in [
                m.cell.entry((d.context, d.strategy)).or_default(),
                m.strategy.entry(d.strategy).or_default(),
                &mut m.all,
            ] {
                v.0 += d.reward;
                v.1 += 1.0;
            }
        }
        m
    }

    /// Whether the model predicts `s` in context `c` from that context's own outcomes (at
    /// least `min_n` of them), not from the strategy's or the overall rate. ESCALATION needs
    /// none (its worth is known).
    pub fn seen(&self, c: &Context, s: RecoveryStrategy) -> bool {
        s == RecoveryStrategy::Escalation
            || self.cell.get(&(*c, s)).is_some_and(|v| v.1 >= self.min_n)
    }

    /// Predicted success of `s` in context `c`.
    pub fn predict(&self, c: &Context, s: RecoveryStrategy) -> f64 {
        if s == RecoveryStrategy::Escalation {
            return 0.0;
        }
        let rate = |v: &(f64, f64)| v.0 / v.1;
        match (self.cell.get(&(*c, s)), self.strategy.get(&s)) {
            (Some(v), _) if v.1 >= self.min_n => rate(v),
            (_, Some(v)) if v.1 >= self.min_n => rate(v),
            _ if self.all.1 > 0.0 => rate(&self.all),
            _ => 0.0,
        }
    }
}

/// One decision as the estimators see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Observed reward of the logged action.
    pub reward: f64,
    /// Logging propensity of the logged action.
    pub propensity: f64,
    /// Probability that the candidate takes the logged action (0 or 1 for a deterministic
    /// candidate).
    pub target: f64,
    /// Reward model at the logged action.
    pub q_logged: f64,
    /// Reward model's expectation under the candidate.
    pub q_target: f64,
}

/// A value with its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// Estimated value (success rate).
    pub value: f64,
    /// Standard error.
    pub se: f64,
}

impl Estimate {
    /// Whether `x` lies within `k` standard errors.
    pub fn covers(&self, x: f64, k: f64) -> bool {
        (self.value - x).abs() <= k * self.se
    }
}

/// The smallest logged propensity a decision can be weighted with: the engine logs none
/// below it (a choice this unlikely is made about once in 10⁶ draws). Below it a weight
/// 1/propensity could overflow the sums (an audit: propensities of 1e-300 printed
/// 300-digit weights, a NaN effective sample size and DR −1.9e297).
pub const MIN_PROPENSITY: f64 = 1e-6;

/// Whether a logged propensity can weight a decision: a finite number in
/// [[`MIN_PROPENSITY`], 1].
pub fn valid_propensity(p: f64) -> bool {
    p.is_finite() && (MIN_PROPENSITY..=1.0).contains(&p)
}

/// Decisions left out because their logged propensity is not a finite number in [1e-6, 1].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InvalidPropensity {
    /// All of them.
    pub total: usize,
    /// NaN or infinite.
    pub not_finite: usize,
    /// ≤ 0 (the weight 1/propensity would be infinite or negative).
    pub not_positive: usize,
    /// Above 0 but below [`MIN_PROPENSITY`] (a weight no sum can hold safely; the engine
    /// logs none such).
    pub below_floor: usize,
    /// Above 1 (not a probability).
    pub above_one: usize,
}

impl InvalidPropensity {
    /// Counts `p` if it is invalid; returns whether it is valid.
    pub fn check(&mut self, p: f64) -> bool {
        if valid_propensity(p) {
            return true;
        }
        self.total += 1;
        if !p.is_finite() {
            self.not_finite += 1;
        } else if p <= 0.0 {
            self.not_positive += 1;
        } else if p < MIN_PROPENSITY {
            self.below_floor += 1;
        } else {
            self.above_one += 1;
        }
        false
    }
}

/// The three estimates of one candidate on a set of decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimates {
    /// Decisions estimated on.
    pub n: usize,
    /// Samples left out: logged propensity not a finite number in [1e-6, 1]. Always 0 from
    /// [`evaluate_decisions`], which leaves such decisions out before (and counts them).
    pub invalid_propensity: usize,
    /// Decisions where the candidate may take the logged action (weight > 0).
    pub matched: usize,
    /// Weights cut to the clip.
    pub clipped: usize,
    /// Weight cut off by the clip, per decision: Σ(w − min(w, clip))/n. IPS is biased down by
    /// at most this much (rewards are in [0, 1]); SNIPS and DR use the weights uncut.
    pub clipped_mass: f64,
    /// Mean importance weight Σw/n before clipping: 1 in expectation when the logging policy
    /// can take every choice of the candidate; far below 1 when it rarely took them (support
    /// deficiency: IPS is biased low, SNIPS and DR lean on few decisions).
    pub mean_weight: f64,
    /// Effective sample size (Σw)²/Σw² of the uncut weights: how many decisions SNIPS and DR
    /// are really worth.
    pub ess: f64,
    /// Inverse propensity scoring with clipped weights.
    pub ips: Estimate,
    /// Self-normalised IPS on the uncut weights (None when no decision matched).
    pub snips: Option<Estimate>,
    /// Doubly robust on the uncut weights.
    pub dr: Estimate,
}

/// Cluster-robust standard error of a sum of terms divided by `denom`:
/// `√(G/(G−1) · Σ_g (Σ_{i∈g} x_i)²) / denom` over the G clusters; NaN with fewer than two
/// clusters (nothing to say how clusters vary).
fn cluster_se(terms: impl Iterator<Item = (usize, f64)>, denom: f64) -> f64 {
    let mut sums: BTreeMap<usize, f64> = BTreeMap::new();
    for (c, x) in terms {
        *sums.entry(c).or_default() += x;
    }
    let g = sums.len() as f64;
    if sums.len() < 2 {
        return f64::NAN;
    }
    (g / (g - 1.0) * sums.values().map(|x| x * x).sum::<f64>()).sqrt() / denom
}

/// Mean of `v` with its cluster-robust standard error (`clusters[i]` is the cluster of
/// `v[i]`).
fn mean_se(v: &[f64], clusters: &[usize]) -> Estimate {
    if v.is_empty() {
        return Estimate {
            value: f64::NAN,
            se: f64::NAN,
        };
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    Estimate {
        value: m,
        se: cluster_se(clusters.iter().copied().zip(v.iter().map(|x| x - m)), n),
    }
}

/// IPS, SNIPS and DR over samples, with weights `target/propensity` cut at `clip`, each
/// sample its own cluster (independent decisions). See [`estimate_clustered`].
pub fn estimate(samples: &[Sample], clip: f64) -> Estimates {
    let clusters: Vec<usize> = (0..samples.len()).collect();
    estimate_clustered(samples, &clusters, clip)
}

/// IPS, SNIPS and DR over samples, with weights `target/propensity` cut at `clip` and standard
/// errors cluster-robust over `clusters` (`clusters[i]` is the cluster, e.g. the task, of
/// `samples[i]`). A sample whose propensity is not a finite number in [1e-6, 1] is left out and
/// counted.
///
/// # Panics
///
/// If `clusters` and `samples` differ in length.
pub fn estimate_clustered(samples: &[Sample], clusters: &[usize], clip: f64) -> Estimates {
    assert_eq!(samples.len(), clusters.len(), "one cluster per sample");
    let mut invalid = InvalidPropensity::default();
    let (samples, clusters): (Vec<Sample>, Vec<usize>) = samples
        .iter()
        .zip(clusters)
        .filter(|(s, _)| invalid.check(s.propensity))
        .map(|(s, c)| (*s, *c))
        .unzip();
    let raw: Vec<f64> = samples.iter().map(|s| s.target / s.propensity).collect();
    let clipped = raw.iter().filter(|w| **w > clip).count();
    let w: Vec<f64> = raw.iter().map(|w| w.min(clip)).collect();
    let ips: Vec<f64> = samples.iter().zip(&w).map(|(s, w)| w * s.reward).collect();
    // SNIPS and DR on the uncut weights: cut, they were no longer consistent, and missed
    // the truth by several standard errors where the logging policy seldom took the
    // candidate's choice, while every diagnostic looked fine (review). Their standard errors
    // and the effective sample size now show how little such decisions are worth.
    let dr: Vec<f64> = samples
        .iter()
        .zip(&raw)
        .map(|(s, w)| s.q_target + w * (s.reward - s.q_logged))
        .collect();
    let sw: f64 = raw.iter().sum();
    let sw2: f64 = raw.iter().map(|x| x * x).sum();
    let snips = (sw > 0.0).then(|| {
        let v = samples
            .iter()
            .zip(&raw)
            .map(|(s, w)| w * s.reward)
            .sum::<f64>()
            / sw;
        // Delta method: the linearised terms w·(r − v), summed per cluster.
        let terms = samples.iter().zip(&raw).map(|(s, w)| w * (s.reward - v));
        Estimate {
            value: v,
            se: cluster_se(clusters.iter().copied().zip(terms), sw),
        }
    });
    Estimates {
        n: samples.len(),
        invalid_propensity: invalid.total,
        matched: w.iter().filter(|x| **x > 0.0).count(),
        clipped,
        clipped_mass: if samples.is_empty() {
            0.0
        } else {
            raw.iter().zip(&w).map(|(r, c)| r - c).sum::<f64>() / samples.len() as f64
        },
        mean_weight: if samples.is_empty() {
            f64::NAN
        } else {
            raw.iter().sum::<f64>() / samples.len() as f64
        },
        ess: if sw2 > 0.0 { sw * sw / sw2 } else { 0.0 },
        ips: mean_se(&ips, &clusters),
        snips,
        dr: mean_se(&dr, &clusters),
    }
}

/// A candidate's report on one scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReport {
    /// Candidate name.
    pub policy: String,
    /// Fraction of decisions where the candidate agrees with the logged action.
    pub agreement: f64,
    /// The estimates.
    #[serde(flatten)]
    pub estimates: Estimates,
    /// Self-normalised IPS estimate of the mean cost per decision, when costs were logged.
    pub cost: Option<f64>,
    /// Share of the decisions where the logging policy took another action with certainty
    /// (propensity 1) and the candidate does not escalate: no logged decision can correct the
    /// reward model there, so DR is the model's guess on them, and its standard error counts
    /// only the sampling noise, not the model's error. (With a propensity below 1 the
    /// candidate's choice may have had support; the share is a lower bound then.)
    pub model_only: f64,
    /// Share of the decisions where the candidate's choice is not the logged action and the
    /// reward model had fewer than 3 outcomes of it in the decision's context (in the training
    /// part), so it predicted the choice from the strategy's
    /// rate over all contexts, or the overall rate (an audit: a log of one strategy only
    /// gave every other strategy that strategy's rate, and DR a tight, wrong value).
    pub model_unseen: f64,
}

/// A candidate's DR is flagged in the text report when the reward model alone makes more
/// than this share of it ([`PolicyReport::model_only`]).
pub const MODEL_ONLY_FLAG: f64 = 0.25;

impl PolicyReport {
    /// Whether the reward model alone makes more than [`MODEL_ONLY_FLAG`] of this DR (the
    /// text report marks it `*`).
    pub fn dr_is_guess(&self) -> bool {
        self.model_only > MODEL_ONLY_FLAG
    }
}

/// The estimates on one set of decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeReport {
    /// `all` or `first` (attempt 1).
    pub scope: String,
    /// Decisions evaluated.
    pub n: usize,
    /// Decisions of the scope left out: logged propensity not a finite number in [1e-6, 1].
    pub invalid_propensity: usize,
    /// Tasks the decisions belong to (the clusters of the standard errors).
    pub tasks: usize,
    /// One report per candidate.
    pub policies: Vec<PolicyReport>,
}

/// The report of `faultline eval ranking`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankingReport {
    /// Data directory.
    pub data: String,
    /// Records read from the write-ahead log (not yet flushed to Parquet).
    pub wal: WalStats,
    /// The join.
    pub join: JoinStats,
    /// Decisions: actions joined to an outcome, and escalations (reward 0).
    pub decisions: usize,
    /// Decisions used for training (the first part).
    pub train: usize,
    /// Decisions evaluated (the rest), including those left out for an invalid propensity.
    pub evaluated: usize,
    /// Evaluated decisions left out of every estimate: logged propensity not a finite number
    /// in [1e-6, 1].
    pub invalid_propensity: InvalidPropensity,
    /// Evaluated decisions left out of every estimate: a circuit breaker replaced a
    /// stochastic choice ([`overridden`]).
    pub overridden: usize,
    /// The options.
    pub split: f64,
    /// Weight clip.
    pub clip: f64,
    /// Smallest valid logged propensity among evaluated decisions.
    pub min_propensity: f64,
    /// Evaluated decisions logged with a valid propensity < 1.
    pub stochastic: usize,
    /// True when every evaluated decision with a valid propensity was logged with propensity
    /// 1: IPS then only sees
    /// the decisions where a candidate agrees with the logging policy (see `matched`).
    pub deterministic_logging: bool,
    /// Estimates on all evaluated decisions and on first decisions.
    pub scopes: Vec<ScopeReport>,
    /// What the reader should know before trusting the numbers (e.g. many actions without
    /// an outcome).
    pub warnings: Vec<String>,
}

/// Above this share of recovery actions without an outcome (left out), the report warns.
pub const UNMATCHED_WARN: f64 = 0.1;

/// Refuses a history without a single outcome, and warns when many recovery actions have
/// none, or many actions no logged failure (audit: with no outcome reported, every decision scored 0 and exit 0; with half of
/// them dropped, `logged` fell from 0.40 to 0.27 without a word).
fn check_join(
    root: &Path,
    join: &JoinStats,
    decisions: usize,
) -> Result<Vec<String>, RankingEvalError> {
    let recoveries = join.actions - join.escalations;
    let with_outcome = decisions - join.superseded - join.escalations;
    if recoveries > 0 && with_outcome == 0 && join.unmatched_outcomes == 0 {
        return Err(RankingEvalError::Empty(format!(
            "{}: none of the {recoveries} recovery actions has an outcome — the history holds \
             no outcome at all, so every recovery would count as failed; report outcomes \
             (POST /v1/outcomes to `faultline serve`, or the library's record_outcome) \
             before evaluating; `faultline ingest` takes outcomes only with their failures \
             and actions, from a simulator directory",
            root.display()
        )));
    }
    let mut warnings = Vec::new();
    // An audit: with the failures table emptied, the numbers changed without a word.
    if join.without_failure as f64 > UNMATCHED_WARN * join.actions as f64 {
        warnings.push(format!(
            "{} of {} actions have no logged failure of their task before them: the rules \
             and the rankers judge those without the failure's message, class and exit code \
             (is history/failures complete?)",
            join.without_failure, join.actions
        ));
    }
    if recoveries > 0 && join.unmatched_actions as f64 > UNMATCHED_WARN * recoveries as f64 {
        warnings.push(format!(
            "{} of {recoveries} recovery actions ({:.0} %) have no outcome and their task did \
             not fail again: they are left out. If outcomes go unreported, the estimates see the \
             failed recoveries (the task failed again) and miss the successes",
            join.unmatched_actions,
            100.0 * join.unmatched_actions as f64 / recoveries as f64
        ));
    }
    Ok(warnings)
}

/// The candidate policies.
pub const CANDIDATES: [&str; 4] = ["logged", "rules", "learned", "model"];

/// The ranking context of a logged decision (its fine key rebuilt from the log; no message
/// signature, which is not logged).
fn rank_context(d: &Decision) -> RankContext<'_> {
    RankContext {
        class: d.context.class,
        kind: d.rank_kind,
        template: Some(d.fine),
        signature: None,
        ladder: &d.ladder,
        valid: &d.valid,
        tried: &d.tried,
        burst: false,
        bad_worker: false,
        busy: d.busy,
        budget_left: None,
    }
}

fn model_choice(m: &ModelRanker, d: &Decision) -> RecoveryStrategy {
    // Past the attempt budget every policy escalates (the engine checks it before ranking).
    if d.source == "max_attempts"
        || (d.rules == RecoveryStrategy::Escalation && !d.ladder.is_empty())
    {
        return RecoveryStrategy::Escalation;
    }
    let c = rank_context(d);
    match m.greedy(&c, Bits::new(d.attempt, false)) {
        Some(ch) if !d.ladder.is_empty() || ch.expected_success >= m.params().escalate_below => {
            ch.strategy
        }
        _ => d.rules,
    }
}

/// The training rows of the `model` candidate: each decision's context, its strategy and
/// whether that strategy had been used on the task before, and the outcome.
pub fn model_rows(decisions: &[Decision]) -> Vec<Row> {
    decisions
        .iter()
        .map(|d| Row {
            class: d.context.class,
            kind: d.rank_kind,
            fine: Some(d.fine),
            bits: Bits::new(d.attempt, false),
            tried: d.tried[d.strategy.index()] > 0,
            strategy: d.strategy,
            success: d.reward > 0.5,
        })
        .collect()
}

fn learned_choice(r: &Ranker, d: &Decision) -> RecoveryStrategy {
    // Past the attempt budget every policy escalates (the engine checks it before ranking).
    if d.source == "max_attempts"
        || (d.rules == RecoveryStrategy::Escalation && !d.ladder.is_empty())
    {
        return RecoveryStrategy::Escalation;
    }
    let mut rng = rand::rngs::mock::StepRng::new(0, 0);
    let c = rank_context(d);
    match r.choose(&c, &mut rng) {
        Some(ch) if !d.ladder.is_empty() || ch.expected_success >= r.params().escalate_below => {
            ch.strategy
        }
        _ => d.rules,
    }
}

/// What [`evaluate_decisions`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Decisions used for training (the first part).
    pub train: usize,
    /// Evaluated decisions left out of every estimate for their logged propensity.
    pub invalid_propensity: InvalidPropensity,
    /// Evaluated decisions left out of every estimate because a circuit breaker replaced a
    /// stochastic choice ([`overridden`]).
    pub overridden: usize,
    /// Estimates on all evaluated decisions and on first decisions.
    pub scopes: Vec<ScopeReport>,
}

/// Whether a circuit breaker replaced a stochastic choice: the logged propensity is the
/// replaced choice's, not the probability of the action taken, so the decision cannot be
/// weighted. (After a deterministic choice, propensity 1, the override is deterministic too
/// and the decision stays. A retry-budget deferral stays as well: with the budget spent the
/// ranking chooses without the immediate retry, so the delayed retry it ran is logged with
/// the probability it was run with. A candidate choosing the immediate retry there gets
/// weight 0 although the engine would run the delayed one.)
pub fn overridden(d: &Decision) -> bool {
    d.source == "circuit_breaker" && d.propensity < 1.0
}

/// Evaluates the candidates on joined decisions (in log order). Evaluated decisions whose
/// logged propensity is not a finite number in [1e-6, 1] are left out of every candidate's
/// estimates and counted (training does not use propensities and keeps them).
pub fn evaluate_decisions(
    decisions: &[Decision],
    opts: &Options,
) -> Result<Evaluation, RankingEvalError> {
    if !(opts.split > 0.0 && opts.split < 1.0) {
        return Err(RankingEvalError::Invalid {
            field: "split",
            detail: format!("{} is not in (0, 1)", opts.split),
        });
    }
    if opts.clip.is_nan() || opts.clip < 1.0 {
        return Err(RankingEvalError::Invalid {
            field: "clip",
            detail: format!("{} is not ≥ 1", opts.clip),
        });
    }
    let cut = ((decisions.len() as f64) * opts.split).round() as usize;
    let (train, test) = decisions.split_at(cut.min(decisions.len()));
    if train.is_empty() || test.is_empty() {
        return Err(RankingEvalError::Empty(format!(
            "{} decision(s) (actions joined to an outcome, or escalations): too few to split into training and evaluation",
            decisions.len()
        )));
    }
    // The reward model and the rankers learn from recoveries; an escalation is no outcome of
    // a strategy (its reward is known: 0).
    let recoveries: Vec<Decision> = train
        .iter()
        .filter(|d| d.strategy != RecoveryStrategy::Escalation)
        .cloned()
        .collect();
    let model = RewardModel::fit(&recoveries);
    // Greedy on the posterior means: UCB with no bonus, no discount (the training part is
    // one batch), no penalty beyond the engine's.
    let mut ranker = Ranker::new(RankingParams {
        selection: Selection::Ucb,
        ucb_c: 0.0,
        discount: 1.0,
        discount_own: 1.0,
        ..opts.ranking.clone()
    })?;
    for d in &recoveries {
        ranker.update(&Observed {
            class: d.context.class,
            kind: d.rank_kind,
            template: Some(d.fine),
            signature: None,
            strategy: d.strategy,
            success: d.reward > 0.5,
            cost: d.cost,
            burst: false,
            bad_worker: false,
        });
    }
    // Greedy on the success model fitted once on the whole training part.
    let defaults = opts.ranking.model.clone();
    let model_ranker = ModelRanker::from_rows(
        RankingParams {
            ranker: RankerKind::Model,
            model: ModelParams {
                epsilon: 0.0,
                window: recoveries.len().max(defaults.min_outcomes),
                ..defaults
            },
            ..opts.ranking.clone()
        },
        &model_rows(&recoveries),
    )?;
    let mut invalid = InvalidPropensity::default();
    let valid: Vec<&Decision> = test
        .iter()
        .filter(|d| !overridden(d))
        .filter(|d| invalid.check(d.propensity))
        .collect();
    let overridden = test.iter().filter(|d| overridden(d)).count();
    if valid.is_empty() {
        return Err(RankingEvalError::Empty(format!(
            "none of the {} evaluated decisions has a logged propensity in [1e-6, 1]",
            test.len()
        )));
    }
    // Standard errors cluster by task.
    let mut task_ids: HashMap<&str, usize> = HashMap::new();
    let mut scopes = Vec::new();
    for scope in ["all", "first"] {
        // First decisions: attempt 1 of a task's first episode (review: a later episode's
        // context carries the earlier decisions' configs and tries).
        let in_scope = |d: &&Decision| scope == "all" || (d.attempt == 1 && d.first_episode);
        let sel: Vec<&Decision> = valid.iter().copied().filter(in_scope).collect();
        let clusters: Vec<usize> = sel
            .iter()
            .map(|d| {
                let next = task_ids.len();
                *task_ids.entry(d.task.as_str()).or_insert(next)
            })
            .collect();
        let mut policies = Vec::new();
        for name in CANDIDATES {
            let mut samples = Vec::with_capacity(sel.len());
            let mut agree = 0usize;
            let (mut model_only, mut model_unseen) = (0usize, 0usize);
            let (mut cw, mut cwc) = (0.0, 0.0);
            for d in &sel {
                let q_logged = model.predict(&d.context, d.strategy);
                let choice = match name {
                    "logged" => d.strategy,
                    "rules" => d.rules,
                    "model" => model_choice(&model_ranker, d),
                    _ => learned_choice(&ranker, d),
                };
                agree += usize::from(choice == d.strategy);
                let escalates = name != "logged" && choice == RecoveryStrategy::Escalation;
                if !escalates && choice != d.strategy {
                    model_only += usize::from(d.propensity >= 1.0);
                    model_unseen += usize::from(!model.seen(&d.context, choice));
                }
                let sample = if escalates {
                    // The candidate escalates: its reward is known (0) whatever was logged,
                    // a decision with weight 1 (in SNIPS's denominator too) and nothing to
                    // correct.
                    Sample {
                        reward: 0.0,
                        propensity: 1.0,
                        target: 1.0,
                        q_logged: 0.0,
                        q_target: 0.0,
                    }
                } else {
                    Sample {
                        reward: d.reward,
                        propensity: if name == "logged" { 1.0 } else { d.propensity },
                        target: f64::from(u8::from(choice == d.strategy)),
                        q_logged,
                        q_target: model.predict(&d.context, choice),
                    }
                };
                if let Some(c) = d.cost.filter(|_| !escalates) {
                    // The propensity is valid (checked above).
                    let w = (sample.target / sample.propensity).min(opts.clip);
                    cw += w * c;
                    cwc += w;
                }
                samples.push(sample);
            }
            let estimates = estimate_clustered(&samples, &clusters, opts.clip);
            // A share of nothing is no number (null in the JSON, as the estimates).
            let share = |k: usize| {
                if sel.is_empty() {
                    f64::NAN
                } else {
                    k as f64 / sel.len() as f64
                }
            };
            policies.push(PolicyReport {
                policy: name.to_string(),
                agreement: share(agree),
                estimates,
                cost: (cwc > 0.0).then(|| cw / cwc),
                model_only: share(model_only),
                model_unseen: share(model_unseen),
            });
        }
        scopes.push(ScopeReport {
            scope: scope.to_string(),
            n: sel.len(),
            invalid_propensity: test
                .iter()
                .filter(|d| in_scope(d) && !valid_propensity(d.propensity))
                .count(),
            tasks: clusters
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            policies,
        });
    }
    Ok(Evaluation {
        train: train.len(),
        invalid_propensity: invalid,
        overridden,
        scopes,
    })
}

/// A candidate's estimates rest on too few decisions when its effective sample size is
/// below this many decisions, or below [`WEAK_ESS_SHARE`] of the scope's.
pub const WEAK_ESS: f64 = 30.0;

/// See [`WEAK_ESS`].
pub const WEAK_ESS_SHARE: f64 = 0.01;

/// Warnings on estimates not to be trusted (an audit: on an ε-greedy log, the rules'
/// estimates rested on 3–6 effective decisions of 687–1,500, and DR came out below 0,
/// without a word): a candidate whose effective sample size is below [`WEAK_ESS`] or
/// [`WEAK_ESS_SHARE`] of the scope's decisions, and a DR outside [0, 1], where no success
/// rate lies. The `logged` candidate (weight 1 everywhere) never is.
fn weak_estimates(scopes: &[ScopeReport]) -> Vec<String> {
    let mut out = Vec::new();
    for sc in scopes.iter().filter(|sc| sc.n > 0) {
        // Too few decisions for any estimate, whoever took them: said once, not blamed on
        // the logging policy (an audit: one decision, which the rules agreed with, was said
        // to be a choice the logging policy seldom took).
        if (sc.n as f64) < WEAK_ESS {
            out.push(format!(
                "{} decisions: only {} evaluated, too few for any estimate to be trusted (a smaller --split, or a longer history)",
                sc.scope, sc.n
            ));
            continue;
        }
        let floor = WEAK_ESS.max(WEAK_ESS_SHARE * sc.n as f64);
        for p in sc.policies.iter().filter(|p| p.policy != "logged") {
            let e = &p.estimates;
            if e.ess < floor {
                out.push(format!(
                    "{} on {} decisions: an effective sample size of {:.1} of {} decisions — the logging policy seldom took its choices, so its IPS and SNIPS rest on a few decisions and its DR mostly on the reward model",
                    p.policy, sc.scope, e.ess, sc.n
                ));
            }
            if !(0.0..=1.0).contains(&e.dr.value) {
                out.push(format!(
                    "{} on {} decisions: DR {:.4} lies outside [0, 1], where every success rate lies (a few large weights against the reward model): not an estimate to use",
                    p.policy, sc.scope, e.dr.value
                ));
            }
        }
    }
    out
}

/// Fewer training decisions than this are said to be too few to learn from.
pub const TRAIN_MIN: usize = 30;

/// Reads the history under `root` and evaluates the candidates.
pub fn evaluate_dir(
    root: &Path,
    rules: &RuleSet,
    opts: Options,
) -> Result<RankingReport, RankingEvalError> {
    let history = read_history(root)?;
    let (decisions, join) = join(&history.entries, rules);
    let mut warnings = check_join(root, &join, decisions.len())?;
    let Evaluation {
        train,
        invalid_propensity,
        overridden: n_overridden,
        scopes,
    } = evaluate_decisions(&decisions, &opts)?;
    // Candidates learned from a handful of decisions are the rules (an audit: `--split
    // 0.0001` trained on one decision, and `learned` was presented as an estimate, agreeing
    // with the rules everywhere).
    if train < TRAIN_MIN {
        warnings.push(format!(
            "the learned candidates were trained on {train} decision{} only (--split {}): too few to learn from, they decide as the rules do (a larger --split)",
            if train == 1 { "" } else { "s" },
            opts.split
        ));
    }
    warnings.extend(weak_estimates(&scopes));
    let test = &decisions[train..];
    let valid = || {
        test.iter()
            .filter(|d| !overridden(d) && valid_propensity(d.propensity))
    };
    let stochastic = valid().filter(|d| d.propensity < 1.0).count();
    Ok(RankingReport {
        data: root.display().to_string(),
        wal: history.wal,
        join,
        decisions: decisions.len(),
        train,
        evaluated: test.len(),
        invalid_propensity,
        overridden: n_overridden,
        split: opts.split,
        clip: opts.clip,
        min_propensity: valid().map(|d| d.propensity).fold(1.0, f64::min),
        stochastic,
        deterministic_logging: stochastic == 0,
        scopes,
        warnings,
    })
}

impl RankingReport {
    /// The report of one candidate on one scope.
    pub fn policy(&self, scope: &str, policy: &str) -> Option<&PolicyReport> {
        self.scopes
            .iter()
            .find(|s| s.scope == scope)?
            .policies
            .iter()
            .find(|p| p.policy == policy)
    }

    /// Human-readable report.
    pub fn render_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "history {}: {} actions ({} escalations), {} decisions (joined to an outcome, \
             or escalations: reward 0; {} followed by another failure of their task before \
             any outcome: reward 0) ({} actions and {} outcomes unmatched)",
            self.data,
            self.join.actions,
            self.join.escalations,
            self.decisions,
            self.join.superseded,
            self.join.unmatched_actions,
            self.join.unmatched_outcomes
        );
        if self.wal.records > 0 {
            let _ = writeln!(
                s,
                "{} records ({} actions) read from the write-ahead log are not in the Parquet \
                 history yet (training does not see them; `faultline compact --data {}` \
                 flushes them when no server writes the directory)",
                self.wal.records, self.wal.actions, self.data
            );
        }
        for w in &self.wal.warnings {
            let _ = writeln!(s, "warning: write-ahead log: {w}");
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        let _ = writeln!(
            s,
            "split {}: {} decisions train the learned and model candidates and the reward model, {} are \
             evaluated; weights clipped at {}",
            self.split, self.train, self.evaluated, self.clip
        );
        if self.deterministic_logging {
            let _ = writeln!(
                s,
                "logging was deterministic (every propensity is 1): IPS only sees the decisions \
                 where a candidate agrees with the logged action (`matched`); the rest is the \
                 reward model's guess (DR)"
            );
        } else {
            let _ = writeln!(
                s,
                "{} of {} evaluated decisions logged with propensity < 1 (smallest {})",
                self.stochastic,
                self.evaluated,
                // Not "0.0000" for 2.2e-5 (an audit: it read as an invalid zero).
                if self.min_propensity >= 1e-3 {
                    format!("{:.4}", self.min_propensity)
                } else {
                    format!("{:.2e}", self.min_propensity)
                }
            );
        }
        let bad = &self.invalid_propensity;
        if bad.total > 0 {
            let _ = writeln!(
                s,
                "{} of {} evaluated decisions left out of every estimate: their logged \
                 propensity is not a number in [1e-6, 1] ({} NaN or infinite, {} ≤ 0, {} in (0, \
                 1e-6), {} > 1)",
                bad.total,
                self.evaluated,
                bad.not_finite,
                bad.not_positive,
                bad.below_floor,
                bad.above_one
            );
        }
        if self.overridden > 0 {
            let _ = writeln!(
                s,
                "{} of {} evaluated decisions left out of every estimate: a circuit breaker \
                 replaced the ranking's choice, whose propensity they carry",
                self.overridden, self.evaluated
            );
        }
        let f = |e: &Estimate| format!("{:.4} ± {:.4}", e.value, e.se);
        let mut flagged = false;
        for sc in &self.scopes {
            let title = if sc.scope == "first" {
                "first (attempt 1 of a task's first episode)"
            } else {
                "all"
            };
            if sc.n == 0 {
                // Audit: an empty scope printed rows of NaN ± NaN.
                let _ = writeln!(
                    s,
                    "\n{title} decisions: none among the {} evaluated{} — nothing to estimate \
                     (a smaller --split leaves more to evaluate)",
                    self.evaluated,
                    if sc.invalid_propensity > 0 {
                        format!(" ({} left out, invalid propensity)", sc.invalid_propensity)
                    } else {
                        String::new()
                    }
                );
                continue;
            }
            let _ = writeln!(
                s,
                "\n{title} decisions ({} of {} tasks{}):",
                sc.n,
                sc.tasks,
                if sc.invalid_propensity > 0 {
                    format!("; {} left out, invalid propensity", sc.invalid_propensity)
                } else {
                    String::new()
                }
            );
            let _ = writeln!(
                s,
                "  {:<8} {:>6} {:>8} {:>8} {:>7} {:>7} {:>8} {:>18} {:>18} {:>6} {:>19} {:>8}",
                "policy",
                "agree",
                "matched",
                "clipped",
                "cut w",
                "mean w",
                "ess",
                "IPS",
                "SNIPS",
                "model",
                "DR",
                "cost"
            );
            for p in &sc.policies {
                let e = &p.estimates;
                let flag = p.dr_is_guess();
                flagged |= flag;
                let _ = writeln!(
                    s,
                    "  {:<8} {:>6.3} {:>8} {:>8} {:>7.3} {:>7.3} {:>8.1} {:>18} {:>18} {:>6.3} {:>18}{} {:>8}",
                    p.policy,
                    p.agreement,
                    e.matched,
                    e.clipped,
                    e.clipped_mass,
                    e.mean_weight,
                    e.ess,
                    f(&e.ips),
                    e.snips.as_ref().map_or("-".into(), f),
                    p.model_only,
                    f(&e.dr),
                    if flag { "*" } else { " " },
                    p.cost.map_or("-".into(), |c| format!("{c:.3}"))
                );
            }
            for p in sc.policies.iter().filter(|p| p.dr_is_guess()) {
                let _ = writeln!(
                    s,
                    "  * {}: the logging policy took another action with certainty on {:.0} % \
                     of these decisions, so DR there is the reward model's guess{}",
                    p.policy,
                    100.0 * p.model_only,
                    if p.model_unseen > 0.0 {
                        format!(
                            "; on {:.0} % the model had not seen the candidate's choice in \
                             the context and used that strategy's rate elsewhere, or the \
                             overall rate",
                            100.0 * p.model_unseen
                        )
                    } else {
                        String::new()
                    }
                );
            }
        }
        let _ = writeln!(
            s,
            "\n± one standard error, clustered by task. IPS uses the weights clipped, SNIPS \
             and DR the weights uncut; cut w = weight the clip cut off per decision, the most \
             IPS is biased down by. mean w = Σw/n before clipping: about 1 \
             when the logging policy could take the candidate's choices; far below 1 means it \
             rarely took them (support deficiency): IPS is then biased low, and SNIPS and DR \
             lean on few decisions (DR on the reward model); ess (uncut weights) says how few. \
             model = share of decisions where the logging policy took another action with \
             certainty: DR is the reward model's guess there, and its ± does not count the \
             model's error{}",
            if flagged {
                " (* above a quarter: read that DR as a guess)"
            } else {
                ""
            }
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::{assert_abs_diff_eq, assert_relative_eq};
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// A two-armed bandit: arm 0 succeeds with 0.3, arm 1 with 0.8; the logging policy picks
    /// arm 1 with probability 0.2. The candidate "always arm 1" is worth 0.8.
    fn bandit(n: usize, seed: u64) -> Vec<Sample> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let arm1 = rng.gen::<f64>() < 0.2;
                let p_ok = if arm1 { 0.8 } else { 0.3 };
                Sample {
                    reward: f64::from(u8::from(rng.gen::<f64>() < p_ok)),
                    propensity: if arm1 { 0.2 } else { 0.8 },
                    target: f64::from(u8::from(arm1)),
                    q_logged: 0.5,
                    q_target: 0.5,
                }
            })
            .collect()
    }

    /// A GPU timeout of `task` on `worker`, `secs` after 1,700,000,000 s.
    fn gpu_timeout(task: &str, worker: &str, secs: f64) -> FailureRecord {
        use crate::model::{ErrorInfo, HardwareProfile, TaskId, TaskSpec, Timestamp, WorkerId};
        FailureRecord {
            task_id: TaskId::new(task).unwrap(),
            worker_id: WorkerId::new(worker).unwrap(),
            hardware: HardwareProfile::of_class(HardwareClass::Gpu),
            error: ErrorInfo {
                message: "operation timed out after 300 s".into(),
                ..Default::default()
            },
            timestamp: Timestamp::from_secs_f64(1_700_000_000.0 + secs),
            task: TaskSpec::default(),
        }
    }

    /// A durable engine on `dir` with the default configuration and rules.
    fn rules_engine(dir: &Path) -> crate::engine::Engine<crate::engine::DurableState> {
        crate::engine::Engine::open(
            dir,
            crate::config::EngineConfig::default(),
            RuleSet::defaults(),
            crate::store::StoreOptions::default(),
        )
        .unwrap()
        .0
    }

    /// Writes a rules-only history to `dir`: `tasks` tasks × `episodes` episodes of a GPU
    /// timeout that fails once more (DELAYED_RETRY, then DIFFERENT_WORKER on the class
    /// ladder) and then recovers; every failure on a worker of its own, an hour apart.
    pub(crate) fn recovered_episodes(dir: &Path, tasks: usize, episodes: usize) {
        use crate::model::Outcome;
        let mut e = rules_engine(dir);
        let mut n = 0;
        for _ in 0..episodes {
            for t in 0..tasks {
                for ok in [false, true] {
                    n += 1;
                    let rec = gpu_timeout(&format!("t{t}"), &format!("w{n}"), 3600.0 * n as f64);
                    let (a, ack) = e.decide(&rec).unwrap();
                    ack.wait().unwrap();
                    assert_eq!(a.propensity, 1.0);
                    e.record_outcome(&Outcome::verdict(format!("t{t}"), ok))
                        .unwrap();
                }
            }
        }
        e.flush().unwrap();
    }

    /// A second review: an operator's success reported for an escalated task (its outcome
    /// matches no waiting decision) did not end the task's episode in the join, so the rules
    /// candidate kept the exhausted ladder; and the learned and model candidates recovered
    /// past the attempt budget, where every policy escalates.
    #[test]
    fn a_success_after_an_escalation_ends_the_episode_and_the_budget_binds_every_candidate() {
        use crate::model::Outcome;
        let dir = tempfile::tempdir().unwrap();
        let mut e = rules_engine(dir.path());
        let outcome = |success| Outcome::verdict("t", success);
        let mut last = None;
        for n in 0..12 {
            let rec = gpu_timeout("t", &format!("w{n}"), 3600.0 * f64::from(n));
            let (a, ack) = e.decide(&rec).unwrap();
            ack.wait().unwrap();
            // Failed recoveries until the budget escalates; then an operator's fix.
            e.record_outcome(&outcome(a.strategy == RecoveryStrategy::Escalation))
                .unwrap();
            if a.strategy == RecoveryStrategy::Escalation {
                last = Some(n);
                break;
            }
        }
        assert!(last.is_some(), "the budget escalates");
        let rec = gpu_timeout("t", "w-again", 100_000.0);
        let (again, ack) = e.decide(&rec).unwrap();
        ack.wait().unwrap();
        assert_eq!(again.attempt, 1);
        e.record_outcome(&outcome(true)).unwrap();
        e.flush().unwrap();
        drop(e);
        let h = read_history(dir.path()).unwrap();
        let (decisions, _) = join(&h.entries, &RuleSet::defaults());
        let d = decisions.last().unwrap();
        assert_eq!((d.attempt, d.rules), (1, again.strategy), "{d:?}");
        // Past the budget every candidate escalates, the ladder spent or not.
        let mut esc = decisions
            .iter()
            .find(|d| d.strategy == RecoveryStrategy::Escalation)
            .expect("the escalation is a decision")
            .clone();
        esc.source = "max_attempts".into();
        esc.ladder.clear();
        esc.rules = RecoveryStrategy::Escalation;
        let esc = &esc;
        // Greedy, as `evaluate_decisions` trains it (no draws).
        let mut ranker = Ranker::new(RankingParams {
            selection: Selection::Ucb,
            ucb_c: 0.0,
            ..Default::default()
        })
        .unwrap();
        ranker.update(&Observed {
            class: HardwareClass::Gpu,
            kind: esc.rank_kind,
            template: Some(esc.fine),
            signature: None,
            strategy: RecoveryStrategy::DelayedRetry,
            success: true,
            cost: None,
            burst: false,
            bad_worker: false,
        });
        assert_eq!(learned_choice(&ranker, esc), RecoveryStrategy::Escalation);
    }

    /// Review (off-policy audit): an outcome was credited to the task's oldest action waiting
    /// for one, not its latest as the engine credits it, and an action its task failed again
    /// after, before any outcome, was left out (exactly the recoveries that did not hold).
    /// The latest action gets the outcome; a superseded one is a failed recovery.
    #[test]
    fn an_outcome_is_the_latest_actions_and_a_superseded_action_failed() {
        use crate::model::Outcome;
        let dir = tempfile::tempdir().unwrap();
        let mut e = rules_engine(dir.path());
        // Two failures without an outcome between them, then a success.
        for (i, w) in ["w1", "w2"].iter().enumerate() {
            let (_, ack) = e.decide(&gpu_timeout("t", w, 60.0 * i as f64)).unwrap();
            ack.wait().unwrap();
        }
        e.record_outcome(&Outcome::verdict("t", true)).unwrap();
        e.flush().unwrap();
        drop(e);
        let h = read_history(dir.path()).unwrap();
        let (decisions, stats) = join(&h.entries, &RuleSet::defaults());
        assert_eq!(decisions.len(), 2, "{stats:?}");
        assert_eq!(
            (stats.superseded, stats.unmatched_actions),
            (1, 0),
            "{stats:?}"
        );
        let by_attempt = |n: u32| decisions.iter().find(|d| d.attempt == n).unwrap();
        assert_eq!(by_attempt(1).reward, 0.0, "the first recovery did not hold");
        assert_eq!(
            by_attempt(2).reward,
            1.0,
            "the success is the latest action's"
        );
    }

    /// A second review: an outcome naming another strategy than the logged one left the
    /// action pending, and the task's next failure then scored it as a failed recovery,
    /// although the task had recovered. It is left out and counted.
    #[test]
    fn an_outcome_of_another_strategy_leaves_its_action_out() {
        use crate::model::Outcome;
        let dir = tempfile::tempdir().unwrap();
        let mut e = rules_engine(dir.path());
        let (a, ack) = e.decide(&gpu_timeout("t", "w1", 0.0)).unwrap();
        ack.wait().unwrap();
        let other = RecoveryStrategy::ALL
            .iter()
            .copied()
            .find(|s| *s != a.strategy && *s != RecoveryStrategy::Escalation)
            .unwrap();
        e.record_outcome(&Outcome {
            strategy: Some(other),
            ..Outcome::verdict("t", true)
        })
        .unwrap();
        let (_, ack) = e.decide(&gpu_timeout("t", "w2", 86_400.0)).unwrap();
        ack.wait().unwrap();
        e.flush().unwrap();
        drop(e);
        let h = read_history(dir.path()).unwrap();
        let (decisions, stats) = join(&h.entries, &RuleSet::defaults());
        // The first action is left out; the second still waits for its outcome.
        assert!(decisions.is_empty(), "{decisions:?}");
        assert_eq!(
            (
                stats.superseded,
                stats.unmatched_outcomes,
                stats.unmatched_actions
            ),
            (0, 1, 2),
            "{stats:?}"
        );
    }

    /// A review found the join walking a recovered task's ladder on from where its last
    /// episode left it (the engine starts afresh): on a rules-only history the rules
    /// candidate agreed with the logged actions on 2 decisions of 3.
    #[test]
    fn a_recovered_task_starts_its_ladder_afresh_in_the_join() {
        let dir = tempfile::tempdir().unwrap();
        recovered_episodes(dir.path(), 4, 3);
        let h = read_history(dir.path()).unwrap();
        let (decisions, stats) = join(&h.entries, &RuleSet::defaults());
        assert_eq!(decisions.len(), 4 * 3 * 2, "{stats:?}");
        for d in &decisions {
            assert_eq!(d.rules, d.strategy, "attempt {} of {}", d.attempt, d.task);
        }
        let firsts: Vec<_> = decisions.iter().filter(|d| d.attempt == 1).collect();
        assert_eq!(firsts.len(), 12);
        // Only the first episode's attempt 1 is free of the decisions before it (review):
        // the first scope takes 4 of the 12.
        assert_eq!(firsts.iter().filter(|d| d.first_episode).count(), 4);
        assert!(firsts
            .iter()
            .all(|d| d.strategy == RecoveryStrategy::DelayedRetry));
    }

    /// The same review: the refined success tables counted a task's failures over its whole
    /// log, so every failure after a recovery was filed as a repeat ("failed before").
    #[test]
    fn the_refined_tables_file_a_recovered_tasks_next_failure_as_a_first() {
        use crate::ranking::frames::{refined_counts, refined_success_rates, LEVEL_FINE};
        let dir = tempfile::tempdir().unwrap();
        recovered_episodes(dir.path(), 4, 3);
        let h = read_history(dir.path()).unwrap();
        let (decisions, _) = join(&h.entries, &RuleSet::defaults());
        let first = decisions.iter().find(|d| d.attempt == 1).unwrap().fine;
        let rows = refined_counts(&refined_success_rates(dir.path()).unwrap()).unwrap();
        let delayed = RecoveryStrategy::DelayedRetry.index();
        let mut delayed_first = 0.0;
        for r in rows.iter().filter(|r| r.level == LEVEL_FINE) {
            let n = r.counts.success[delayed] + r.counts.failure[delayed];
            if n > 0.0 {
                assert_eq!(r.key, first, "a first failure filed as a repeat");
                delayed_first += n;
            }
        }
        assert_eq!(delayed_first, 12.0);
    }

    #[test]
    fn ips_is_unbiased_on_a_known_bandit() {
        // Over many independent logs the IPS mean converges to the truth; each log's
        // estimate lies within 4 standard errors.
        let mut sum = 0.0;
        for seed in 0..20 {
            let e = estimate(&bandit(2000, seed), 100.0);
            assert!(e.ips.covers(0.8, 4.0), "{seed}: {:?}", e.ips);
            assert!(e.dr.covers(0.8, 4.0), "{seed}: {:?}", e.dr);
            assert_eq!(e.clipped, 0);
            sum += e.ips.value;
        }
        assert!((sum / 20.0 - 0.8).abs() < 0.02, "{}", sum / 20.0);
        // The on-policy average of the logging policy itself: 0.2·0.8 + 0.8·0.3 = 0.4.
        let s: Vec<Sample> = bandit(4000, 99)
            .into_iter()
            .map(|s| Sample {
                target: 1.0,
                propensity: 1.0,
                ..s
            })
            .collect();
        assert!(estimate(&s, 20.0).ips.covers(0.4, 4.0));
    }

    #[test]
    fn dr_equals_the_model_when_weights_are_zero() {
        let s: Vec<Sample> = bandit(500, 3)
            .into_iter()
            .map(|s| Sample {
                target: 0.0,
                q_target: 0.625,
                ..s
            })
            .collect();
        let e = estimate(&s, 20.0);
        assert_eq!(e.matched, 0);
        assert_eq!(e.ips.value, 0.0);
        assert!(e.snips.is_none());
        assert!(
            (e.dr.value - 0.625).abs() < 1e-12 && e.dr.se < 1e-12,
            "{:?}",
            e.dr
        );
        assert_eq!(e.ess, 0.0);
    }

    /// Review (off-policy audit): SNIPS and DR took the clipped weights, and missed the truth
    /// by several standard errors where the logging policy seldom took the candidate's choice,
    /// while the diagnostics looked fine. Two equally likely contexts; the candidate's action
    /// is logged with probability 0.98 in one (it succeeds 0.9 of the time) and 0.002 in the
    /// other (0.1): its value is 0.5. With the default clip, SNIPS and DR (with a wrong reward
    /// model) are within four standard errors of it, and the cut weight says how far IPS
    /// may be off.
    #[test]
    fn snips_and_dr_are_consistent_under_the_clip_and_the_cut_weight_is_reported() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let samples: Vec<Sample> = (0..200_000)
            .map(|_| {
                let (mu, p_ok) = if rng.gen::<bool>() {
                    (0.98, 0.9)
                } else {
                    (0.002, 0.1)
                };
                let took = rng.gen::<f64>() < mu;
                Sample {
                    reward: f64::from(u8::from(took && rng.gen::<f64>() < p_ok)),
                    propensity: if took { mu } else { 1.0 - mu },
                    target: f64::from(u8::from(took)),
                    q_logged: 0.9,
                    q_target: 0.9,
                }
            })
            .collect();
        let e = estimate(&samples, 20.0);
        let snips = e.snips.unwrap();
        assert!(
            (snips.value - 0.5).abs() < 4.0 * snips.se,
            "SNIPS {} ± {}",
            snips.value,
            snips.se
        );
        assert!(
            (e.dr.value - 0.5).abs() < 4.0 * e.dr.se,
            "DR {} ± {}",
            e.dr.value,
            e.dr.se
        );
        // Half the weight mass is in the rare context, cut from 500 to 20.
        assert!(e.clipped_mass > 0.4, "{}", e.clipped_mass);
        assert!(e.ess < 1_000.0, "{}", e.ess);
        assert!(0.5 - e.ips.value <= e.clipped_mass + 4.0 * e.ips.se);
    }

    #[test]
    fn weights_above_the_clip_are_cut_and_counted() {
        let s = [
            Sample {
                reward: 1.0,
                propensity: 0.01,
                target: 1.0,
                q_logged: 0.0,
                q_target: 0.0,
            },
            Sample {
                reward: 1.0,
                propensity: 0.5,
                target: 1.0,
                q_logged: 0.0,
                q_target: 0.0,
            },
        ];
        let e = estimate(&s, 10.0);
        assert_eq!(e.clipped, 1);
        // (10·1 + 2·1) / 2
        assert!((e.ips.value - 6.0).abs() < 1e-12);
        // The effective sample size of the uncut weights 100 and 2: (102)²/(100² + 2²).
        assert!((e.ess - 102.0 * 102.0 / 10_004.0).abs() < 1e-12);
        // 90 of the first weight was cut: 45 per decision, the most IPS is biased down by.
        assert!((e.clipped_mass - 45.0).abs() < 1e-12);
        // DR on the uncut weights (q̂ = 0): the same as uncut IPS.
        assert!((e.dr.value - 51.0).abs() < 1e-12);
        let e = estimate(&s, 1000.0);
        assert_eq!(e.clipped_mass, 0.0);
        assert_eq!(e.clipped, 0);
        assert!((e.ips.value - 51.0).abs() < 1e-12);
        assert_eq!(e.snips.unwrap().value, 1.0);
    }

    #[test]
    fn reward_model_backs_off_from_context_to_strategy_to_overall() {
        use RecoveryStrategy as S;
        let c = |kind| Context {
            class: HardwareClass::Gpu,
            kind,
            bucket: 1,
        };
        let d = |kind, s, r| Decision {
            task: "t".into(),
            context: c(kind),
            attempt: 1,
            rank_kind: kind,
            fine: 0,
            strategy: s,
            propensity: 1.0,
            source: "rule".into(),
            reward: r,
            cost: None,
            rules: s,
            ladder: vec![],
            valid: vec![],
            tried: [0; N],
            first_episode: true,
            busy: false,
        };
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(d(FailureKind::OomGpu, S::ReducedBatchSize, 1.0));
            v.push(d(
                FailureKind::Network,
                S::ReducedBatchSize,
                f64::from(i % 2),
            ));
        }
        v.push(d(FailureKind::Network, S::DelayedRetry, 0.0));
        let m = RewardModel::fit(&v);
        assert_eq!(m.predict(&c(FailureKind::OomGpu), S::ReducedBatchSize), 1.0);
        assert_eq!(
            m.predict(&c(FailureKind::Network), S::ReducedBatchSize),
            0.5
        );
        // Unseen context: the strategy's rate (6 of 8).
        assert_eq!(
            m.predict(&c(FailureKind::Timeout), S::ReducedBatchSize),
            0.75
        );
        // One observation is too few: the overall rate (6 of 9).
        assert!((m.predict(&c(FailureKind::Network), S::DelayedRetry) - 6.0 / 9.0).abs() < 1e-12);
        assert_eq!(m.predict(&c(FailureKind::Network), S::Escalation), 0.0);
    }

    #[test]
    fn options_are_checked() {
        let e = evaluate_decisions(
            &[],
            &Options {
                split: 1.0,
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("split"), "{e}");
        let e = evaluate_decisions(
            &[],
            &Options {
                clip: 0.5,
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("clip"), "{e}");
        let e = evaluate_decisions(&[], &Options::default()).unwrap_err();
        assert!(e.to_string().contains("too few"), "{e}");
    }

    /// A logged GPU OOM decision of `task` (attempt `attempt`) that took REDUCED_BATCH_SIZE,
    /// the rules' choice, with `propensity` and `reward`.
    fn oom(task: usize, attempt: u32, propensity: f64, reward: f64) -> Decision {
        use RecoveryStrategy as S;
        Decision {
            task: format!("t{task}"),
            context: Context {
                class: HardwareClass::Gpu,
                kind: FailureKind::OomGpu,
                bucket: attempt_bucket(attempt),
            },
            attempt,
            rank_kind: FailureKind::OomGpu,
            fine: 0,
            strategy: S::ReducedBatchSize,
            propensity,
            source: "learned".into(),
            reward,
            cost: None,
            rules: S::ReducedBatchSize,
            ladder: vec![S::ReducedBatchSize, S::DelayedRetry],
            valid: vec![S::ReducedBatchSize, S::DelayedRetry, S::DifferentWorker],
            tried: [0; N],
            first_episode: true,
            busy: false,
        }
    }

    /// 20 tasks of two decisions each (attempts 1 and 2), in log order; a task's two
    /// outcomes are the same (correlated), alternating between tasks as 1, 1, 0.
    fn two_per_task() -> Vec<Decision> {
        (0..20)
            .flat_map(|t| {
                let r = f64::from(u8::from(t % 3 != 2));
                [oom(t, 1, 0.5, r), oom(t, 2, 0.5, r)]
            })
            .collect()
    }

    /// Audit: a log of one strategy, chosen with certainty, gave every candidate that chose
    /// otherwise a tight DR from the reward model's fallback alone. The report now says how
    /// much of DR is the model's guess (`model_only`) and how much of it the model never saw
    /// (`model_unseen`); the text marks such a DR.
    #[test]
    fn dr_says_how_much_of_it_is_the_reward_models_guess() {
        let v: Vec<Decision> = two_per_task()
            .into_iter()
            .map(|mut d| {
                d.strategy = RecoveryStrategy::DifferentWorker;
                d.propensity = 1.0;
                d
            })
            .collect();
        let ev = evaluate_decisions(&v, &Options::default()).unwrap();
        let all = &ev.scopes[0];
        let get = |name: &str| all.policies.iter().find(|p| p.policy == name).unwrap();
        // The rules reduce the batch, which the log never did: all of DR is the model's.
        let rules = get("rules");
        assert_eq!(
            (rules.model_only, rules.model_unseen),
            (1.0, 1.0),
            "{rules:?}"
        );
        assert_eq!(rules.estimates.matched, 0);
        let logged = get("logged");
        assert_eq!((logged.model_only, logged.model_unseen), (0.0, 0.0));
        // With a random logging policy the candidate's choice may have had support.
        let mut r = v.clone();
        for d in &mut r {
            d.propensity = 0.5;
        }
        let ev = evaluate_decisions(&r, &Options::default()).unwrap();
        let rules = ev.scopes[0]
            .policies
            .iter()
            .find(|p| p.policy == "rules")
            .unwrap();
        assert_eq!((rules.model_only, rules.model_unseen), (0.0, 1.0));

        let text = report_of(&v, Options::default()).render_text();
        assert!(
            text.contains(
                "* rules: the logging policy took another action with certainty on 100 %"
            ),
            "{text}"
        );
        assert!(
            text.contains("model had not seen the candidate's choice"),
            "{text}"
        );
        assert!(!text.contains("* logged:"), "{text}");
    }

    /// The report of `decisions` as `evaluate_dir` builds it (no data directory).
    fn report_of(decisions: &[Decision], opts: Options) -> RankingReport {
        let ev = evaluate_decisions(decisions, &opts).unwrap();
        RankingReport {
            data: "mem".into(),
            wal: WalStats::default(),
            join: JoinStats::default(),
            decisions: decisions.len(),
            train: ev.train,
            evaluated: decisions.len() - ev.train,
            invalid_propensity: ev.invalid_propensity,
            overridden: ev.overridden,
            split: opts.split,
            clip: opts.clip,
            min_propensity: 0.5,
            stochastic: 1,
            deterministic_logging: false,
            scopes: ev.scopes,
            warnings: Vec::new(),
        }
    }

    /// Audit: a scope without decisions printed four rows of `NaN ± NaN`, and its JSON said
    /// agreement 0 beside null estimates.
    #[test]
    fn an_empty_scope_says_so() {
        // Only the last decision (attempt 2) is evaluated: no first decisions.
        let opts = Options {
            split: 39.0 / 40.0,
            ..Options::default()
        };
        let r = report_of(&two_per_task(), opts);
        assert_eq!((r.scopes[0].n, r.scopes[1].n), (1, 0));
        let text = r.render_text();
        assert!(
            text.contains(
                "first (attempt 1 of a task's first episode) decisions: none among the 1 evaluated"
            ),
            "{text}"
        );
        assert!(!text.contains("NaN ± NaN\n  rules"), "{text}");
        let json = serde_json::to_value(&r).unwrap();
        let first = &json["scopes"][1]["policies"][1];
        assert!(first["agreement"].is_null(), "{first}");
        assert!(first["model_only"].is_null(), "{first}");
    }

    /// Audit: with no outcome reported every decision scored 0 (exit 0), and with half of
    /// them dropped `logged` fell without a word.
    #[test]
    fn no_outcome_is_refused_and_many_unmatched_actions_warn() {
        let root = Path::new("/data");
        let none = JoinStats {
            actions: 10,
            escalations: 2,
            unmatched_actions: 5,
            superseded: 3,
            unmatched_outcomes: 0,
            without_failure: 0,
        };
        // 10 decisions: 2 escalations and 3 superseded, 5 pending: no outcome at all.
        let e = check_join(root, &none, 5).unwrap_err().to_string();
        assert!(
            e.contains("none of the 8 recovery actions has an outcome"),
            "{e}"
        );
        // One outcome matched: a warning for the 4 of 8 without one.
        let some = JoinStats {
            unmatched_actions: 4,
            ..none.clone()
        };
        let w = check_join(root, &some, 6).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("4 of 8 recovery actions (50 %) have no outcome"),
            "{w:?}"
        );
        // At most a tenth unmatched: quiet.
        let few = JoinStats {
            actions: 100,
            escalations: 0,
            unmatched_actions: 10,
            superseded: 10,
            unmatched_outcomes: 0,
            without_failure: 10,
        };
        assert!(check_join(root, &few, 90).unwrap().is_empty());
        // Many actions of tasks without a logged failure: a warning.
        let blind = JoinStats {
            without_failure: 11,
            ..few
        };
        let w = check_join(root, &blind, 90).unwrap();
        assert!(
            w.len() == 1 && w[0].starts_with("11 of 100 actions have no logged failure"),
            "{w:?}"
        );
    }

    /// A review found decisions whose action a circuit breaker put in place of the ranking's
    /// random choice weighted with that choice's propensity: they are left out and counted;
    /// after a deterministic choice (propensity 1) they stay, and so do retry-budget
    /// deferrals (a second review: leaving them out selects on the action taken).
    #[test]
    fn decisions_overridden_after_a_random_choice_are_left_out_and_counted() {
        let mut v = two_per_task();
        v[20].source = "circuit_breaker".into(); // propensity 0.5: left out
        v[22].source = "circuit_breaker".into(); // 0.5: left out
        v[26].source = "retry_budget".into(); // a deferral: stays
        v[24].source = "circuit_breaker".into();
        v[24].propensity = 1.0; // deterministic: stays
        let ev = evaluate_decisions(&v, &Options::default()).unwrap();
        assert_eq!(ev.overridden, 2);
        assert_eq!(ev.invalid_propensity.total, 0);
        assert_eq!(ev.scopes[0].n, 18);
    }

    /// A review found escalations left out of the rounds: the logged policy's rate was its
    /// rate given that it did not escalate, and a candidate's escalation never matched, so
    /// SNIPS reported success given that the candidate did not escalate. An escalation is a
    /// decision with the known reward 0, weight 1 for a candidate that escalates.
    #[test]
    fn escalations_are_decisions_with_reward_zero() {
        let mut v = two_per_task();
        // The rules would escalate every evaluated second attempt.
        for d in v[20..].iter_mut().filter(|d| d.attempt == 2) {
            d.rules = RecoveryStrategy::Escalation;
        }
        let ev = evaluate_decisions(&v, &Options::default()).unwrap();
        let all = &ev.scopes[0];
        let rules = all.policies.iter().find(|p| p.policy == "rules").unwrap();
        let logged = all.policies.iter().find(|p| p.policy == "logged").unwrap();
        // Every escalating decision is matched with weight 1 and reward 0: SNIPS is the
        // first attempts' successes over all 20 decisions' weights.
        let first_weight: f64 = 10.0 / 0.5;
        let first_successes: f64 = v[20..]
            .iter()
            .filter(|d| d.attempt == 1 && d.rules == d.strategy)
            .map(|d| d.reward / 0.5)
            .sum();
        let snips = rules.estimates.snips.unwrap().value;
        assert_relative_eq!(
            snips,
            first_successes / (first_weight + 10.0),
            epsilon = 1e-12
        );
        assert!(snips < logged.estimates.snips.unwrap().value);
        assert_eq!(rules.estimates.matched, 20);
        // A logged escalation is a decision with reward 0.
        let mut w = two_per_task();
        w[21].strategy = RecoveryStrategy::Escalation;
        w[21].reward = 0.0;
        let ev = evaluate_decisions(&w, &Options::default()).unwrap();
        assert_eq!(ev.scopes[0].n, 20);
    }

    /// Regression (review: invalid logged propensities were weighted silently): a decision
    /// whose logged propensity is ≤ 0, above 1 or NaN is left out of every candidate's
    /// estimates and counted, and the estimates are those of the valid decisions alone.
    #[test]
    fn invalid_propensities_are_left_out_and_counted() {
        let mut v = two_per_task();
        // Evaluated part: decisions 20.. (tasks 10..19).
        v[20].propensity = 0.0; // t10, attempt 1
        v[23].propensity = -0.5; // t11, attempt 2
        v[25].propensity = 1.5; // t12, attempt 2
        v[26].propensity = f64::NAN; // t13, attempt 1
                                     // Audit: a propensity of 1e-300 overflowed every sum (weights of 300 digits).
        v[29].propensity = 1e-300; // t14, attempt 2
        let ev = evaluate_decisions(&v, &Options::default()).unwrap();
        assert_eq!(ev.train, 20);
        assert_eq!(
            ev.invalid_propensity,
            InvalidPropensity {
                total: 5,
                not_finite: 1,
                not_positive: 2,
                below_floor: 1,
                above_one: 1,
            }
        );
        let (all, first) = (&ev.scopes[0], &ev.scopes[1]);
        assert_eq!((all.n, all.invalid_propensity), (15, 5));
        assert_eq!((first.n, first.invalid_propensity), (8, 2));
        for p in &all.policies {
            assert_eq!(p.estimates.n, 15, "{p:?}");
            assert!(p.estimates.ess.is_finite(), "{p:?}");
            assert_eq!(p.estimates.clipped, 0, "{p:?}");
            assert_eq!(p.estimates.invalid_propensity, 0, "{p:?}");
        }
        // The same as evaluating the valid decisions alone (same training part).
        let clean: Vec<Decision> = v
            .iter()
            .filter(|d| valid_propensity(d.propensity))
            .cloned()
            .collect();
        let ev_clean = evaluate_decisions(
            &clean,
            &Options {
                split: 20.0 / 35.0,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(ev_clean.train, 20);
        assert_eq!(ev_clean.invalid_propensity.total, 0);
        for (a, b) in ev.scopes.iter().zip(&ev_clean.scopes) {
            assert_eq!(a.policies, b.policies);
        }

        // The estimator itself never weights an invalid propensity either.
        let sample = |propensity| Sample {
            reward: 1.0,
            propensity,
            target: 1.0,
            q_logged: 0.0,
            q_target: 0.0,
        };
        let e = estimate(
            &[
                sample(0.5),
                sample(0.0),
                sample(f64::NAN),
                sample(2.0),
                sample(1e-300),
            ],
            20.0,
        );
        assert_eq!((e.n, e.invalid_propensity, e.clipped), (1, 4, 0));
        assert_eq!(e.ips.value, 2.0);

        // Nothing left to estimate on is an error, not NaNs.
        let mut none = two_per_task();
        for d in &mut none[20..] {
            d.propensity = 0.0;
        }
        let e = evaluate_decisions(&none, &Options::default()).unwrap_err();
        assert!(e.to_string().contains("propensity in [1e-6, 1]"), "{e}");
    }

    /// The usual standard errors: the sample standard deviation / √n for IPS and DR, and the
    /// delta method with the n/(n−1) factor for SNIPS.
    fn plain_se(samples: &[Sample], clip: f64) -> (f64, f64, f64) {
        let n = samples.len() as f64;
        let w: Vec<f64> = samples
            .iter()
            .map(|s| (s.target / s.propensity).min(clip))
            .collect();
        let sd_over_root_n = |v: Vec<f64>| {
            let m = v.iter().sum::<f64>() / n;
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
        };
        let ips: Vec<f64> = samples.iter().zip(&w).map(|(s, w)| w * s.reward).collect();
        let dr: Vec<f64> = samples
            .iter()
            .zip(&w)
            .map(|(s, w)| s.q_target + w * (s.reward - s.q_logged))
            .collect();
        let sw: f64 = w.iter().sum();
        let v = ips.iter().sum::<f64>() / sw;
        let snips = (samples
            .iter()
            .zip(&w)
            .map(|(s, w)| (w * (s.reward - v)).powi(2))
            .sum::<f64>()
            * n
            / (n - 1.0))
            .sqrt()
            / sw;
        (sd_over_root_n(ips), sd_over_root_n(dr), snips)
    }

    /// Regression (review: decisions of one task were treated as independent): with one
    /// decision per cluster the clustered standard error is the plain one.
    #[test]
    fn clustered_se_is_the_plain_se_with_one_decision_per_task() {
        let s: Vec<Sample> = bandit(300, 7)
            .into_iter()
            .enumerate()
            .map(|(i, s)| Sample {
                q_target: 0.1 * (i % 7) as f64,
                ..s
            })
            .collect();
        let (ips, dr, snips) = plain_se(&s, 20.0);
        // Any distinct cluster ids, in any order.
        let clusters: Vec<usize> = (0..s.len()).map(|i| 1000 - i).collect();
        for e in [estimate(&s, 20.0), estimate_clustered(&s, &clusters, 20.0)] {
            assert_abs_diff_eq!(e.ips.se, ips, epsilon = 1e-12);
            assert_abs_diff_eq!(e.dr.se, dr, epsilon = 1e-12);
            assert_abs_diff_eq!(e.snips.unwrap().se, snips, epsilon = 1e-12);
        }
    }

    /// Regression (review: decisions of one task were treated as independent): when each
    /// task's two decisions are copies of each other, clustering by task widens every
    /// standard error by √((2G−1)/(G−1)) over the plain one (G tasks).
    #[test]
    fn clustered_se_widens_when_a_task_repeats_itself() {
        let one: Vec<Sample> = bandit(200, 11);
        let two: Vec<Sample> = one.iter().flat_map(|s| [*s, *s]).collect();
        let tasks: Vec<usize> = (0..two.len()).map(|i| i / 2).collect();
        let g = one.len() as f64;
        let widen = ((2.0 * g - 1.0) / (g - 1.0)).sqrt();
        let (ips, dr, snips) = plain_se(&two, 20.0);
        let e = estimate_clustered(&two, &tasks, 20.0);
        assert_relative_eq!(e.ips.se, ips * widen, max_relative = 1e-10);
        assert_relative_eq!(e.dr.se, dr * widen, max_relative = 1e-10);
        assert_relative_eq!(e.snips.unwrap().se, snips * widen, max_relative = 1e-10);
        // The values do not change; one task is no basis for a standard error.
        assert_eq!(e.ips.value, estimate(&two, 20.0).ips.value);
        assert!(estimate_clustered(&two[..2], &[0, 0], 20.0).ips.se.is_nan());
    }

    /// Regression (review: decisions of one task were treated as independent): the `all`
    /// scope of the report clusters by task; the `first` scope (one decision per task) keeps
    /// the plain standard error.
    #[test]
    fn the_report_clusters_all_decisions_by_task() {
        let v = two_per_task();
        let ev = evaluate_decisions(&v, &Options::default()).unwrap();
        let se = |scope: usize| {
            ev.scopes[scope]
                .policies
                .iter()
                .find(|p| p.policy == "logged")
                .unwrap()
                .estimates
                .ips
                .se
        };
        // The logged policy's IPS terms are the rewards of the evaluated part.
        let r: Vec<f64> = v[20..].iter().map(|d| d.reward).collect();
        let m = r.iter().sum::<f64>() / 20.0;
        let by_task: f64 = r
            .chunks(2)
            .map(|c| c.iter().map(|x| x - m).sum::<f64>().powi(2))
            .sum();
        let clustered = (10.0 / 9.0 * by_task).sqrt() / 20.0;
        let plain = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 19.0 / 20.0).sqrt();
        assert_eq!(ev.scopes[0].tasks, 10);
        assert_relative_eq!(se(0), clustered, max_relative = 1e-12);
        assert!(se(0) > 1.3 * plain, "{} vs {plain}", se(0));
        // First decisions: one per task.
        let r1: Vec<f64> = r.iter().step_by(2).copied().collect();
        let m1 = r1.iter().sum::<f64>() / 10.0;
        let plain1 = (r1.iter().map(|x| (x - m1).powi(2)).sum::<f64>() / 9.0 / 10.0).sqrt();
        assert_eq!((ev.scopes[1].n, ev.scopes[1].tasks), (10, 10));
        assert_relative_eq!(se(1), plain1, max_relative = 1e-12);
    }

    /// Regression (review: the report had no sign of support deficiency): the mean weight is
    /// Σw/n before clipping, about 1 with full support.
    #[test]
    fn mean_weight_is_the_unclipped_average_weight() {
        let s = |propensity, target| Sample {
            reward: 1.0,
            propensity,
            target,
            q_logged: 0.0,
            q_target: 0.0,
        };
        let e = estimate(&[s(0.01, 1.0), s(0.5, 1.0), s(0.5, 0.0)], 10.0);
        assert_eq!(e.clipped, 1);
        assert_relative_eq!(e.mean_weight, 34.0, max_relative = 1e-12);
        // "Always arm 1" under a logging policy that takes arm 1 with 0.2: E[w] = 1.
        let e = estimate(&bandit(4000, 5), 100.0);
        assert!((e.mean_weight - 1.0).abs() < 0.1, "{}", e.mean_weight);
        // The logged policy: every weight is 1.
        let ev = evaluate_decisions(&two_per_task(), &Options::default()).unwrap();
        assert_eq!(ev.scopes[0].policies[0].estimates.mean_weight, 1.0);
    }
}

#[cfg(test)]
mod weak_tests {
    use super::*;

    fn policy(name: &str, ess: f64, dr: f64) -> PolicyReport {
        let est = |value| Estimate { value, se: 0.01 };
        PolicyReport {
            policy: name.into(),
            agreement: 0.5,
            estimates: Estimates {
                n: 1000,
                invalid_propensity: 0,
                matched: 500,
                clipped: 0,
                clipped_mass: 0.0,
                mean_weight: 1.0,
                ess,
                ips: est(0.5),
                snips: Some(est(0.5)),
                dr: est(dr),
            },
            cost: None,
            model_only: 0.0,
            model_unseen: 0.0,
        }
    }

    /// Regression (CLI audit): estimates resting on 3–6 effective decisions of up to 1,500,
    /// and a DR below 0, were printed without a warning.
    #[test]
    fn few_effective_decisions_and_a_dr_outside_0_1_are_warned_about() {
        let scope = ScopeReport {
            scope: "all".into(),
            n: 1000,
            invalid_propensity: 0,
            tasks: 400,
            policies: vec![
                policy("logged", 1.0, 0.5),
                policy("rules", 6.3, -0.03),
                policy("learned", 400.0, 0.6),
            ],
        };
        let w = weak_estimates(std::slice::from_ref(&scope));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("rules on all decisions: an effective sample size of 6.3 of 1000"),
            "{w:?}"
        );
        assert!(w[1].contains("DR -0.0300 lies outside [0, 1]"), "{w:?}");
        // Regression (audit): a scope of one decision, which the rules agreed with, blamed
        // the logging policy; too few decisions are said once as such.
        let tiny = ScopeReport {
            n: 1,
            policies: vec![policy("logged", 1.0, 1.0), policy("rules", 1.0, 1.0)],
            ..scope
        };
        let w = weak_estimates(std::slice::from_ref(&tiny));
        assert_eq!(
            w,
            ["all decisions: only 1 evaluated, too few for any estimate to be trusted (a smaller --split, or a longer history)"]
        );
    }
}
