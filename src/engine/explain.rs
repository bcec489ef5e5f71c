//! The engine's account of one decision ([`Engine::decide_explained`]): which mechanism
//! decided — the retry limit, the rules, the learned ranking, then a circuit breaker or the
//! retry budget — and, when the ranking was asked, what it knew of every strategy it could
//! choose from (posterior chance of success, the ladder's prior, the evidence behind it) and
//! why the others were left out. Built only when asked for: the plain decision path
//! allocates none of it.
//!
//! [`Engine::decide_explained`]: super::Engine::decide_explained

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::{RankerKind, RankingParams, Selection};
use crate::model::{FailureKind, HardwareClass, RecoveryAction, RecoveryStrategy};
use crate::ranking::{Choice, Estimate, WorkerStanding};
use crate::retry::breaker::BreakerState;

/// Why the engine decided as it did for one failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The decision in words: what decided, and why the ranking did or did not.
    pub summary: String,
    /// What the learned ranking saw, when it was asked (not with the ranking off, nor beyond
    /// the retry limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking: Option<RankingView>,
}

impl Explanation {
    /// The explanation of an answer that repeats a decision made before (a client's retry):
    /// it was decided, and explained or not, then.
    pub fn repeat(action: &RecoveryAction) -> Self {
        Explanation {
            summary: format!(
                "a repeat of a failure already decided (attempt {}): the action decided then",
                action.attempt
            ),
            ranking: None,
        }
    }
}

/// One step of the rule ladder still ahead of the task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LadderStep {
    /// The ladder's own step number (1-based, as the action's `source.step` counts).
    pub step: u32,
    /// Its strategy.
    pub strategy: RecoveryStrategy,
    /// Whether the step can be carried out now (the rules pass over one that cannot: a batch
    /// of 1, no worker to move to).
    pub possible: bool,
}

/// A strategy the ranking did not rank, and why.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LeftOut {
    /// The strategy.
    pub strategy: RecoveryStrategy,
    /// Why it was left out.
    pub reason: &'static str,
}

/// The learned ranking's view of one failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankingView {
    /// The ranker: `bayes` (Beta posteriors, the default) or `model` (the success model:
    /// its candidates' `success` is the model's prediction, `weight` the rows it fitted the
    /// strategy on).
    pub ranker: &'static str,
    /// Hardware class of the failed worker.
    pub class: HardwareClass,
    /// The kind the ranking ranks in (an out-of-memory on a TPU or an NPU is ranked as
    /// `oom_gpu`).
    pub kind: FailureKind,
    /// The failed worker's standing with the bad-worker test: `healthy`, `suspect` (more
    /// failures than its share) or `bad`.
    pub worker: &'static str,
    /// Whether the failure came in a burst of its (class, kind): it is ranked in the burst's
    /// own contexts.
    pub burst: bool,
    /// The failed worker's circuit breaker: `closed`, `open` (only moves away from the worker
    /// are ranked, when one can be made), `half_open` or `off` (worker breakers disabled).
    pub worker_breaker: &'static str,
    /// The hardware class's circuit breaker: `closed`, `open` (only moves to another class
    /// are ranked, when one can be made), `half_open` or `off` (class breakers disabled).
    pub class_breaker: &'static str,
    /// Whether the retry budget is spent (retries run delayed, at the backoff cap).
    pub retry_budget_spent: bool,
    /// Outcomes (discounted: older ones count less) recorded for (class, kind), all
    /// strategies: with none the ranking abstains and the rules decide.
    pub outcomes: f64,
    /// The rule ladder's steps still ahead of the task, the next first; the rules take the
    /// first that is `possible` (none: they escalate).
    pub ladder: Vec<LadderStep>,
    /// What the candidates are sorted by.
    pub order: &'static str,
    /// Every strategy the ranking could choose from, best first by `order`.
    pub candidates: Vec<Estimate>,
    /// The strategies it could not choose from, and why.
    pub left_out: Vec<LeftOut>,
}

/// [`LeftOut::reason`]: chosen, but no worker could take the task.
pub const NO_WORKER_FOR_CHOICE: &str = "chosen, but no worker could take the task";
/// [`LeftOut::reason`]: the failed worker's breaker is open and a move can be made.
pub const WORKER_BREAKER: &str =
    "the worker's circuit breaker is open: no retry, reset or restart on the worker";
/// [`LeftOut::reason`]: the class's breaker is open and a move can be made.
pub const CLASS_BREAKER: &str =
    "the class's circuit breaker is open: no retry on the worker and no move within the class";
/// [`LeftOut::reason`]: the retry budget is spent.
pub const BUDGET_SPENT: &str = "the retry budget is spent: retries run delayed";

/// Why strategy `s` cannot be carried out for the task (the task's state or its hardware
/// class, not the fleet), given that `mutate::applicable` says it cannot.
pub(super) fn inapplicable(s: RecoveryStrategy) -> &'static str {
    use RecoveryStrategy as S;
    match s {
        S::BrowserRestart => "not a browser worker",
        S::FallbackCpu | S::DifferentHardwareClass => "not for a task already on a CPU",
        S::ReducedBatchSize => "the task's batch size is 1 or not given",
        S::ReducedPrecision => "no lower precision after the task's (or none given)",
        S::SimplifiedModel => "the task names no fallback_models",
        S::SkipCheckpointing => "checkpointing is already off",
        _ => "cannot be carried out for this task",
    }
}

/// Why the fleet rules out a move, if it does.
pub(super) fn no_worker(s: RecoveryStrategy) -> &'static str {
    match s {
        RecoveryStrategy::FallbackCpu => "no CPU worker could take the task",
        RecoveryStrategy::DifferentHardwareClass => {
            "no worker of another class could take the task"
        }
        _ => "no other worker of this class could take the task",
    }
}

/// The words for a breaker's state (`off`: breakers of its kind are disabled).
pub(super) fn breaker_word(enabled: bool, b: BreakerState) -> &'static str {
    match (enabled, b) {
        (false, _) => "off",
        (_, BreakerState::Closed) => "closed",
        (_, BreakerState::Open) => "open",
        (_, BreakerState::HalfOpen) => "half_open",
    }
}

/// The words for a worker's standing.
pub(super) fn standing_word(s: WorkerStanding) -> &'static str {
    match s {
        WorkerStanding::Healthy => "healthy",
        WorkerStanding::Suspect => "suspect",
        WorkerStanding::Bad => "bad",
    }
}

/// What the candidates of a ranking configured by `p` are sorted by.
pub(super) fn order_of(p: &RankingParams) -> &'static str {
    match (p.ranker, p.selection) {
        (RankerKind::Model, _) => "predicted chance of success",
        (_, Selection::Thompson) if p.continuation > 0.0 => {
            "expected attempts to recovery, fewest first (Thompson sampling draws around it)"
        }
        (_, Selection::Thompson) => {
            "posterior chance of success (Thompson sampling draws around it)"
        }
        (_, Selection::Ucb) => "upper confidence bound of success (UCB)",
        (_, Selection::ExpectedCost) => "expected cost to recovery, lowest first",
    }
}

/// What happened to the ranking during one decision, for the summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum RankOutcome {
    /// Beyond the retry limit: nothing was asked.
    OverLimit {
        /// The attempt.
        attempt: u32,
        /// `retry.max_attempts`.
        max: u32,
    },
    /// `ranking.enabled = false`.
    Off,
    /// The ranking abstained (no evidence in the coarse context, or no model yet).
    Abstained,
    /// The ladder was walked and the ranking's pick was below `escalate_below`.
    GaveWay(Choice),
    /// Nothing the ranking chose could be carried out.
    NothingPossible,
    /// The ranking's choice was carried out.
    Chose(Choice),
}

/// What the summary of a decision is made from.
pub(super) struct Facts<'a> {
    /// What the ranking did.
    pub outcome: RankOutcome,
    /// The ladder's name and whether it is a rule's (else a hardware class's).
    pub ladder: Option<(&'a str, bool)>,
    /// What the ranking saw.
    pub view: Option<&'a RankingView>,
    /// What changed the decision after the ladder or the ranking (breakers, budget).
    pub overrides: &'a [String],
    /// The steps of the rule set's longest ladder, and `ranking.escalate_below`.
    pub walked: (usize, f64),
    /// The task's attempt.
    pub attempt: u32,
    /// The decided strategy.
    pub strategy: RecoveryStrategy,
}

/// A probability as text: three decimals, and no 0.000 or 1.000 for what is not exactly so.
pub fn probability(p: f64) -> String {
    if p > 0.0 && p < 0.001 {
        "<0.001".to_string()
    } else if p < 1.0 && p > 0.999 {
        ">0.999".to_string()
    } else {
        format!("{p:.3}")
    }
}

/// The summary of a decision.
pub(super) fn summary(f: &Facts<'_>) -> String {
    let mut s = String::new();
    // Who decided, and whose ladder it is.
    let (rules, ladder_of) = match f.ladder {
        Some((name, true)) => (
            format!("rule '{name}'"),
            format!("the ladder of rule '{name}'"),
        ),
        Some((name, false)) => {
            let l = match name.strip_prefix("ladder:") {
                Some(class) => format!("the {class} ladder"),
                None => format!("ladder '{name}'"),
            };
            (l.clone(), l)
        }
        None => ("the rules".to_string(), "the ladder".to_string()),
    };
    let model = f.view.is_some_and(|v| v.ranker == "model");
    let mut ranked = false;
    let _ = match f.outcome {
        RankOutcome::OverLimit { attempt, max } => write!(
            s,
            "attempt {attempt} is beyond retry.max_attempts ({max}): escalated without asking the rules or the ranking"
        ),
        RankOutcome::Off => write!(
            s,
            "the learned ranking is off (the default; [ranking] enabled = true turns it on): {rules} decided"
        ),
        RankOutcome::Abstained => match f.view {
            Some(_) if model => write!(
                s,
                "the success model has nothing fitted for this failure yet: {rules} decided"
            ),
            Some(v) => write!(
                s,
                "no outcome is recorded yet for {} on {}: the ranking abstains and {rules} decided",
                v.kind, v.class
            ),
            None => write!(s, "the ranking abstained: {rules} decided"),
        },
        RankOutcome::GaveWay(c) => {
            ranked = true;
            write!(
                s,
                "no step left on {ladder_of} is one the ranking may take, the task has failed more often than the longest ladder has steps ({}), and the ranking's pick, {} at {}, is below ranking.escalate_below ({}): {rules} decided",
                f.walked.0,
                c.strategy,
                probability(c.expected_success),
                f.walked.1
            )
        }
        RankOutcome::NothingPossible => {
            ranked = true;
            write!(
                s,
                "no strategy the ranking could choose can be carried out (see left_out): {rules} decided"
            )
        }
        RankOutcome::Chose(c) => {
            ranked = true;
            let what = if model {
                "the success model chose"
            } else {
                "the learned ranking chose"
            };
            let chance = if model {
                "predicted chance of success"
            } else {
                "posterior chance of success"
            };
            let _ = write!(
                s,
                "{what} {} ({chance} {}, chosen with probability {})",
                c.strategy,
                probability(c.expected_success),
                probability(c.propensity)
            );
            if let Some(v) = f.view {
                let score = |x: RecoveryStrategy| {
                    v.candidates
                        .iter()
                        .find(|e| e.strategy == x)
                        .map(|e| e.score)
                };
                if let (Some(top), Some(mine)) = (v.candidates.first(), score(c.strategy)) {
                    if top.score > mine + 1e-9 {
                        let _ = if model {
                            write!(
                                s,
                                "; an exploratory pick (ranking.model.epsilon): {} has the highest predicted chance",
                                top.strategy
                            )
                        } else {
                            write!(
                                s,
                                "; an exploratory draw: {} is first by the ranking's score",
                                top.strategy
                            )
                        };
                    }
                }
            }
            match f.view.map(|v| v.ladder.iter().find(|l| l.possible)) {
                Some(Some(next)) if next.strategy == c.strategy => write!(
                    s,
                    "; it is also the step {ladder_of} takes next (step {})",
                    next.step
                ),
                Some(Some(next)) => write!(
                    s,
                    "; {ladder_of} takes {} next (step {})",
                    next.strategy, next.step
                ),
                Some(None) => write!(
                    s,
                    "; no step of {ladder_of} can be taken now (the rules would escalate): the ranking recovers on, and gives up only once the task has failed more often than the longest ladder has steps ({}) and its pick is below ranking.escalate_below ({}); this is failure {}",
                    f.walked.0, f.walked.1, f.attempt
                ),
                None => Ok(()),
            }
        }
    };
    if let Some(v) = f.view.filter(|_| ranked) {
        let left = |reason: &str| v.left_out.iter().any(|l| l.reason == reason);
        if left(WORKER_BREAKER) {
            s.push_str(
                "; the worker's circuit breaker is open: no retry, reset or restart on it was ranked",
            );
        } else if v.worker_breaker == "open" && super::retries_in_place(f.strategy) {
            s.push_str(
                "; the worker's circuit breaker is open, but no other worker could take the task",
            );
        }
        if left(CLASS_BREAKER) {
            let _ = write!(
                s,
                "; the {} circuit breaker is open: no retry and no move within {} was ranked",
                v.class, v.class
            );
        }
        if left(BUDGET_SPENT) {
            s.push_str("; the retry budget is spent: an immediate retry was not ranked");
        }
    }
    for o in f.overrides {
        s.push_str("; then ");
        s.push_str(o);
    }
    s
}
