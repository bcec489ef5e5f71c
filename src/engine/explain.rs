//! The engine's account of one decision ([`Engine::decide_explained`]): which mechanism
//! decided — the retry limit, the rules, the learned ranking, then a circuit breaker or the
//! retry budget — and, when the ranking was asked, what it knew of every strategy it could
//! choose from (posterior chance of success, the ladder's prior, the evidence behind it).
//! Built only when asked for: the plain decision path allocates none of it.
//!
//! [`Engine::decide_explained`]: super::Engine::decide_explained

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::{FailureKind, HardwareClass, RecoveryAction, RecoveryStrategy};
use crate::ranking::{Choice, Estimate, WorkerStanding};

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

/// The learned ranking's view of one failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankingView {
    /// The ranker: `bayes` (Beta posteriors, the default) or `model` (the success model,
    /// which lists no candidates).
    pub ranker: &'static str,
    /// Hardware class of the failed worker.
    pub class: HardwareClass,
    /// The kind the ranking ranks in (an out-of-memory on a TPU or an NPU is ranked as
    /// `oom_gpu`).
    pub kind: FailureKind,
    /// The failed worker's standing: `healthy`, `suspect` or `bad`.
    pub worker: &'static str,
    /// Whether the failure came in a burst of its (class, kind): it is ranked in the burst's
    /// own contexts.
    pub burst: bool,
    /// Outcomes (discounted) recorded for (class, kind), all strategies: with none the
    /// ranking abstains and the rules decide.
    pub outcomes: f64,
    /// The rule ladder's remaining steps the ranking could take, what the rules would do
    /// now first.
    pub ladder: Vec<RecoveryStrategy>,
    /// Every strategy valid for the task's state, best first by the ranking's score.
    pub candidates: Vec<Estimate>,
    /// Strategies the ranking chose that could not be carried out (no worker could take
    /// the task); it ranked again without them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_possible: Vec<RecoveryStrategy>,
}

impl RankingView {
    /// The view before the candidates are filled in.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        ranker: &'static str,
        class: HardwareClass,
        kind: FailureKind,
        standing: WorkerStanding,
        burst: bool,
        outcomes: f64,
        ladder: &[RecoveryStrategy],
        candidates: Vec<Estimate>,
    ) -> Self {
        RankingView {
            ranker,
            class,
            kind,
            worker: match standing {
                WorkerStanding::Healthy => "healthy",
                WorkerStanding::Suspect => "suspect",
                WorkerStanding::Bad => "bad",
            },
            burst,
            outcomes,
            ladder: ladder.to_vec(),
            candidates,
            not_possible: Vec::new(),
        }
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
    /// The ladder was walked and the ranking's best was below `escalate_below`.
    GaveWay(Choice, f64),
    /// Nothing the ranking chose could be carried out.
    NothingPossible,
    /// The ranking's choice was carried out.
    Chose(Choice),
}

/// The summary of a decision: `outcome` of the ranking, the ladder `rule` (its name and
/// whether it is a rule's or a hardware class's), the final `action`.
pub(super) fn summary(
    outcome: RankOutcome,
    (ladder, from_rule): (Option<&str>, bool),
    view: Option<&RankingView>,
    action: &RecoveryAction,
) -> String {
    let mut s = String::new();
    let rules = match ladder {
        Some(name) if from_rule => format!("rule '{name}'"),
        Some(name) => format!("ladder '{name}'"),
        None => "the rules".to_string(),
    };
    let _ = match outcome {
        RankOutcome::OverLimit { attempt, max } => write!(
            s,
            "attempt {attempt} is beyond retry.max_attempts ({max}): escalated without asking the rules or the ranking"
        ),
        RankOutcome::Off => write!(
            s,
            "the learned ranking is off ([ranking] enabled = false): {rules} decided"
        ),
        RankOutcome::Abstained => match view {
            Some(v) if v.ranker == "model" => write!(
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
        RankOutcome::GaveWay(c, below) => write!(
            s,
            "the ladder is walked and the ranking's best, {} at {:.2}, is below ranking.escalate_below ({below}): {rules} decided",
            c.strategy, c.expected_success
        ),
        RankOutcome::NothingPossible => write!(
            s,
            "no strategy the ranking chose could be carried out: {rules} decided"
        ),
        RankOutcome::Chose(c) => {
            let _ = write!(
                s,
                "the learned ranking chose {} (posterior chance of success {:.2}, chosen with probability {:.2})",
                c.strategy, c.expected_success, c.propensity
            );
            match view.and_then(|v| v.ladder.first()) {
                Some(first) if *first != c.strategy => {
                    write!(s, "; {rules} would have taken {first}")
                }
                Some(_) => write!(s, "; {rules} takes the same step"),
                None => Ok(()),
            }
        }
    };
    match action.source.kind.as_ref() {
        "circuit_breaker" | "retry_budget" => {
            let what = if action.source.kind == "retry_budget" {
                "the retry budget"
            } else {
                "an open circuit breaker"
            };
            let _ = write!(s, "; then {what} made it {}", action.strategy);
        }
        _ => {}
    }
    s
}
