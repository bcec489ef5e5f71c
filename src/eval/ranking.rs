//! Off-policy evaluation of recovery policies from the logged history
//! (`faultline eval ranking --data DIR`).
//!
//! Every logged action carries the probability with which the logging policy chose it
//! (`propensity`); every applied action gets an outcome. Each logged decision is one round of
//! a contextual bandit: context = (hardware class, failure kind, attempt bucket) plus the
//! task's state (its rule ladder position and config), action = the strategy, reward = the
//! outcome's success (0/1). A *candidate* policy is scored on the decisions the logging policy
//! made, without running it:
//!
//! - **IPS** (inverse propensity): mean of `w·r`, `w = 1{candidate = logged}/propensity`,
//!   clipped at `clip` (clipping trades a downward bias for variance; the number of clipped
//!   weights is reported).
//! - **SNIPS** (self-normalised IPS): `Σ w·r / Σ w` — bounded in [0, 1], less variance.
//! - **DR** (doubly robust): mean of `q̂(x, candidate) + w·(r − q̂(x, logged))` with a reward
//!   model `q̂` = success rate per (context, strategy) on the training split, backing off to
//!   the strategy's rate, then the overall rate.
//!
//! Standard errors come from the variance formula (sample standard deviation of the
//! per-decision terms / √n; the delta method for SNIPS). The effective sample size
//! `(Σw)²/Σw²` says how many decisions the estimate is really worth.
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
//! (attempt 1): their contexts do not depend on the policy that ran before, so the value of a
//! candidate on first decisions is also what a run under that candidate would measure.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{ModelParams, RankerKind, RankingParams, Selection};
use crate::engine::mutate;
use crate::model::{FailureKind, FailureRecord, HardwareClass, RecoveryStrategy, TaskConfig};
use crate::ranking::smart::{Bits, ModelRanker, Row};
use crate::ranking::{
    fine_key, ranked_kind, Observed, RankContext, Ranker, RankingError, WorkerStanding, N,
};
use crate::rules::{MatchContext, RuleSet};
use crate::store::{read_part, Entry, StoreError, Table};

/// Errors of the ranking evaluation.
#[derive(Debug, thiserror::Error)]
pub enum RankingEvalError {
    /// The history could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A directory could not be listed.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Fraction of the decisions (in log order) used to train the learned candidate and the
    /// reward model; the rest is evaluated. In (0, 1).
    pub split: f64,
    /// Largest importance weight (weights above are cut to it). ≥ 1.
    pub clip: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            split: 0.5,
            clip: 20.0,
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
    /// Outcomes without a pending action.
    pub unmatched_outcomes: usize,
}

fn parts(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RankingEvalError> {
    if !dir.is_dir() {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|source| RankingEvalError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in rd {
        let p = e
            .map_err(|source| RankingEvalError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if p.is_dir() {
            parts(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads failures, actions and outcomes of a data directory, in log order (deduplicated by
/// sequence number, so a compacted part beside its originals counts once).
pub fn read_history(root: &Path) -> Result<Vec<Entry>, RankingEvalError> {
    if !root.join("history").is_dir() {
        return Err(RankingEvalError::Empty(format!(
            "{}: no history/ directory (a data directory of `faultline recommend --data`, `serve`, `ingest` or `simulate --format parquet`)",
            root.display()
        )));
    }
    let mut by_seq = BTreeMap::new();
    for t in [Table::Failures, Table::Actions, Table::Outcomes] {
        let mut files = Vec::new();
        parts(&root.join("history").join(t.dir_name()), &mut files)?;
        for f in files {
            for (seq, e) in read_part(&f)? {
                by_seq.insert(seq, e);
            }
        }
    }
    Ok(by_seq.into_values().collect())
}

#[derive(Default)]
struct TaskState {
    record: Option<FailureRecord>,
    config: Option<TaskConfig>,
    ladder_next: HashMap<String, u32>,
    tried: [u32; N],
    pending: VecDeque<Decision>,
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
                if t.config.is_none() {
                    t.config = Some(f.record.task.config.clone());
                }
                t.record = Some(f.record.clone());
            }
            Entry::Action(a) => {
                let a = &a.action;
                stats.actions += 1;
                let t = tasks.entry(a.task_id.to_string()).or_default();
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
                if a.strategy == RecoveryStrategy::Escalation {
                    stats.escalations += 1;
                } else {
                    t.pending.push_back(Decision {
                        task: a.task_id.to_string(),
                        context: Context {
                            class,
                            kind: a.kind,
                            bucket: attempt_bucket(a.attempt),
                        },
                        attempt: a.attempt,
                        rank_kind: ranked_kind(a.kind, &a.classifier_rule),
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
                    });
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
                }
                t.tried[a.strategy.index()] += 1;
            }
            Entry::Outcome(o) => {
                let Some(t) = tasks.get_mut(&o.outcome.task_id) else {
                    stats.unmatched_outcomes += 1;
                    continue;
                };
                let mut matched = false;
                while let Some(mut d) = t.pending.pop_front() {
                    if o.outcome.strategy.is_some_and(|s| s != d.strategy) {
                        stats.unmatched_actions += 1;
                        continue;
                    }
                    d.reward = if o.outcome.success { 1.0 } else { 0.0 };
                    d.cost = o.outcome.cost.filter(|c| c.is_finite());
                    out.push(d);
                    matched = true;
                    break;
                }
                if !matched {
                    stats.unmatched_outcomes += 1;
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

/// The three estimates of one candidate on a set of decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimates {
    /// Decisions.
    pub n: usize,
    /// Decisions where the candidate may take the logged action (weight > 0).
    pub matched: usize,
    /// Weights cut to the clip.
    pub clipped: usize,
    /// Effective sample size (Σw)²/Σw².
    pub ess: f64,
    /// Inverse propensity scoring with clipped weights.
    pub ips: Estimate,
    /// Self-normalised IPS (None when no decision matched).
    pub snips: Option<Estimate>,
    /// Doubly robust.
    pub dr: Estimate,
}

fn mean_se(v: &[f64]) -> Estimate {
    let n = v.len() as f64;
    if v.is_empty() {
        return Estimate {
            value: f64::NAN,
            se: f64::NAN,
        };
    }
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Estimate {
        value: m,
        se: (var / n).sqrt(),
    }
}

/// IPS, SNIPS and DR over samples, with weights `target/propensity` cut at `clip`.
pub fn estimate(samples: &[Sample], clip: f64) -> Estimates {
    let mut clipped = 0;
    let w: Vec<f64> = samples
        .iter()
        .map(|s| {
            let w = s.target / s.propensity.max(1e-12);
            if w > clip {
                clipped += 1;
                clip
            } else {
                w
            }
        })
        .collect();
    let ips: Vec<f64> = samples.iter().zip(&w).map(|(s, w)| w * s.reward).collect();
    let dr: Vec<f64> = samples
        .iter()
        .zip(&w)
        .map(|(s, w)| s.q_target + w * (s.reward - s.q_logged))
        .collect();
    let sw: f64 = w.iter().sum();
    let sw2: f64 = w.iter().map(|x| x * x).sum();
    let snips = (sw > 0.0).then(|| {
        let v = ips.iter().sum::<f64>() / sw;
        let r: f64 = samples
            .iter()
            .zip(&w)
            .map(|(s, w)| (w * (s.reward - v)).powi(2))
            .sum();
        Estimate {
            value: v,
            se: r.sqrt() / sw,
        }
    });
    Estimates {
        n: samples.len(),
        matched: w.iter().filter(|x| **x > 0.0).count(),
        clipped,
        ess: if sw2 > 0.0 { sw * sw / sw2 } else { 0.0 },
        ips: mean_se(&ips),
        snips,
        dr: mean_se(&dr),
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
}

/// The estimates on one set of decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeReport {
    /// `all` or `first` (attempt 1).
    pub scope: String,
    /// Decisions evaluated.
    pub n: usize,
    /// One report per candidate.
    pub policies: Vec<PolicyReport>,
}

/// The report of `faultline eval ranking`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankingReport {
    /// Data directory.
    pub data: String,
    /// The join.
    pub join: JoinStats,
    /// Decisions joined to an outcome.
    pub decisions: usize,
    /// Decisions used for training (the first part).
    pub train: usize,
    /// Decisions evaluated (the rest).
    pub evaluated: usize,
    /// The options.
    pub split: f64,
    /// Weight clip.
    pub clip: f64,
    /// Smallest logged propensity among evaluated decisions.
    pub min_propensity: f64,
    /// Evaluated decisions logged with propensity < 1.
    pub stochastic: usize,
    /// True when every evaluated decision was logged with propensity 1: IPS then only sees
    /// the decisions where a candidate agrees with the logging policy (see `matched`).
    pub deterministic_logging: bool,
    /// Estimates on all evaluated decisions and on first decisions.
    pub scopes: Vec<ScopeReport>,
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
    }
}

fn model_choice(m: &ModelRanker, d: &Decision) -> RecoveryStrategy {
    if d.rules == RecoveryStrategy::Escalation && !d.ladder.is_empty() {
        return d.rules;
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
    if d.rules == RecoveryStrategy::Escalation && !d.ladder.is_empty() {
        return d.rules;
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

/// Evaluates the candidates on joined decisions (in log order).
pub fn evaluate_decisions(
    decisions: &[Decision],
    opts: Options,
) -> Result<(usize, Vec<ScopeReport>), RankingEvalError> {
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
            "{} decision(s) joined to an outcome: too few to split into training and evaluation",
            decisions.len()
        )));
    }
    let model = RewardModel::fit(train);
    // Greedy on the posterior means: UCB with no bonus, no discount (the training part is
    // one batch), no penalty beyond the engine's.
    let mut ranker = Ranker::new(RankingParams {
        selection: Selection::Ucb,
        ucb_c: 0.0,
        discount: 1.0,
        discount_own: 1.0,
        ..Default::default()
    })?;
    for d in train {
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
    let defaults = ModelParams::default();
    let model_ranker = ModelRanker::from_rows(
        RankingParams {
            ranker: RankerKind::Model,
            model: ModelParams {
                epsilon: 0.0,
                window: train.len().max(defaults.min_outcomes),
                ..defaults
            },
            ..Default::default()
        },
        &model_rows(train),
    )?;
    let mut scopes = Vec::new();
    for scope in ["all", "first"] {
        let sel: Vec<&Decision> = test
            .iter()
            .filter(|d| scope == "all" || d.attempt == 1)
            .collect();
        let mut policies = Vec::new();
        for name in CANDIDATES {
            let mut samples = Vec::with_capacity(sel.len());
            let mut agree = 0usize;
            let (mut cw, mut cwc) = (0.0, 0.0);
            for d in &sel {
                let q_logged = model.predict(&d.context, d.strategy);
                let (target, q_target) = match name {
                    "logged" => (1.0, q_logged),
                    _ => {
                        let s = match name {
                            "rules" => d.rules,
                            "model" => model_choice(&model_ranker, d),
                            _ => learned_choice(&ranker, d),
                        };
                        (
                            f64::from(u8::from(s == d.strategy)),
                            model.predict(&d.context, s),
                        )
                    }
                };
                if target > 0.0 {
                    agree += 1;
                }
                let sample = Sample {
                    reward: d.reward,
                    propensity: if name == "logged" { 1.0 } else { d.propensity },
                    target,
                    q_logged,
                    q_target,
                };
                if let Some(c) = d.cost {
                    let w = (sample.target / sample.propensity.max(1e-12)).min(opts.clip);
                    cw += w * c;
                    cwc += w;
                }
                samples.push(sample);
            }
            let estimates = estimate(&samples, opts.clip);
            policies.push(PolicyReport {
                policy: name.to_string(),
                agreement: if sel.is_empty() {
                    0.0
                } else {
                    agree as f64 / sel.len() as f64
                },
                estimates,
                cost: (cwc > 0.0).then(|| cw / cwc),
            });
        }
        scopes.push(ScopeReport {
            scope: scope.to_string(),
            n: sel.len(),
            policies,
        });
    }
    Ok((train.len(), scopes))
}

/// Reads the history under `root` and evaluates the candidates.
pub fn evaluate_dir(
    root: &Path,
    rules: &RuleSet,
    opts: Options,
) -> Result<RankingReport, RankingEvalError> {
    let entries = read_history(root)?;
    let (decisions, join) = join(&entries, rules);
    let (train, scopes) = evaluate_decisions(&decisions, opts)?;
    let test = &decisions[train..];
    let stochastic = test.iter().filter(|d| d.propensity < 1.0).count();
    Ok(RankingReport {
        data: root.display().to_string(),
        join,
        decisions: decisions.len(),
        train,
        evaluated: test.len(),
        split: opts.split,
        clip: opts.clip,
        min_propensity: test.iter().map(|d| d.propensity).fold(1.0, f64::min),
        stochastic,
        deterministic_logging: stochastic == 0,
        scopes,
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
            "history {}: {} actions ({} escalations), {} decisions joined to an outcome \
             ({} actions and {} outcomes unmatched)",
            self.data,
            self.join.actions,
            self.join.escalations,
            self.decisions,
            self.join.unmatched_actions,
            self.join.unmatched_outcomes
        );
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
                "{} of {} evaluated decisions logged with propensity < 1 (smallest {:.4})",
                self.stochastic, self.evaluated, self.min_propensity
            );
        }
        let f = |e: &Estimate| format!("{:.4} ± {:.4}", e.value, e.se);
        for sc in &self.scopes {
            let _ = writeln!(
                s,
                "\n{} decisions ({}):",
                if sc.scope == "first" {
                    "first (attempt 1)"
                } else {
                    "all"
                },
                sc.n
            );
            let _ = writeln!(
                s,
                "  {:<8} {:>6} {:>8} {:>8} {:>8} {:>18} {:>18} {:>18} {:>8}",
                "policy", "agree", "matched", "clipped", "ess", "IPS", "SNIPS", "DR", "cost"
            );
            for p in &sc.policies {
                let e = &p.estimates;
                let _ = writeln!(
                    s,
                    "  {:<8} {:>6.3} {:>8} {:>8} {:>8.1} {:>18} {:>18} {:>18} {:>8}",
                    p.policy,
                    p.agreement,
                    e.matched,
                    e.clipped,
                    e.ess,
                    f(&e.ips),
                    e.snips.as_ref().map_or("-".into(), f),
                    f(&e.dr),
                    p.cost.map_or("-".into(), |c| format!("{c:.3}"))
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!((e.ess - 144.0 / 104.0).abs() < 1e-12);
        let e = estimate(&s, 1000.0);
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
            Options {
                split: 1.0,
                clip: 20.0,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("split"), "{e}");
        let e = evaluate_decisions(
            &[],
            Options {
                split: 0.5,
                clip: 0.5,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("clip"), "{e}");
        let e = evaluate_decisions(&[], Options::default()).unwrap_err();
        assert!(e.to_string().contains("too few"), "{e}");
    }
}
