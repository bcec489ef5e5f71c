//! Success-rate tables: per (hardware class, failure kind, strategy), the successes, failures
//! and reported costs of the history's outcomes — the counts [`Ranker`] consumes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::RankingParams;
use crate::model::{FailureKind, HardwareClass, RecoveryStrategy};
use crate::ranking::{frames, Counts, Ranker};

use super::TrainError;

/// One (context, strategy) cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyCount {
    /// The strategy.
    pub strategy: RecoveryStrategy,
    /// Outcomes that recovered the task.
    pub successes: f64,
    /// Outcomes that did not.
    pub failures: f64,
    /// Sum of reported costs.
    pub cost: f64,
    /// Outcomes with a reported cost.
    pub costed: f64,
}

/// The strategies tried in one (hardware class, kind) context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextCounts {
    /// Hardware class of the failures answered.
    pub hardware_class: HardwareClass,
    /// Their kind.
    pub kind: FailureKind,
    /// Strategies with at least one outcome, in [`RecoveryStrategy::ALL`] order.
    pub strategies: Vec<StrategyCount>,
}

impl ContextCounts {
    /// The counts as the ranker keeps them.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for s in &self.strategies {
            let i = s.strategy.index();
            counts.success[i] = s.successes;
            counts.failure[i] = s.failures;
            counts.cost[i] = s.cost;
            counts.costed[i] = s.costed;
        }
        counts
    }
}

/// Every context with evidence, in (class, kind) order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SuccessTables {
    /// The contexts.
    pub contexts: Vec<ContextCounts>,
}

impl SuccessTables {
    /// The tables of the outcomes under `root` (via [`frames::success_rates`]); empty when the
    /// history has no outcomes.
    pub fn from_history(root: &Path) -> Result<Self, TrainError> {
        let dir = root.join("history").join("outcomes");
        if !dir.is_dir() {
            return Ok(SuccessTables::default());
        }
        let frame = frames::success_rates(root)?;
        let ranker = frames::ranker_from_frame(&frame, RankingParams::default())?;
        Ok(Self::from_ranker(&ranker))
    }

    /// The coarse counts of a ranker, contexts without evidence left out.
    pub fn from_ranker(ranker: &Ranker) -> Self {
        let mut contexts = Vec::new();
        for &c in HardwareClass::ALL {
            for &k in FailureKind::ALL {
                let counts = ranker.counts(c, k);
                let strategies: Vec<StrategyCount> = RecoveryStrategy::ALL
                    .iter()
                    .filter_map(|&s| {
                        let i = s.index();
                        (counts.success[i] + counts.failure[i] > 0.0).then(|| StrategyCount {
                            strategy: s,
                            successes: counts.success[i],
                            failures: counts.failure[i],
                            cost: counts.cost[i],
                            costed: counts.costed[i],
                        })
                    })
                    .collect();
                if !strategies.is_empty() {
                    contexts.push(ContextCounts {
                        hardware_class: c,
                        kind: k,
                        strategies,
                    });
                }
            }
        }
        SuccessTables { contexts }
    }

    /// A ranker whose coarse counts are these tables, as they are (undiscounted).
    pub fn ranker(&self, params: RankingParams) -> Result<Ranker, TrainError> {
        let mut r = Ranker::new(params)?;
        for c in &self.contexts {
            r.set_counts(c.hardware_class, c.kind, c.counts());
        }
        Ok(r)
    }

    /// Seeds `ranker` with these tables where it has no evidence of its own
    /// ([`Ranker::seed_counts`]: at most `seed_strength` outcomes per strategy; contexts it
    /// has evidence of keep their own). Returns the contexts seeded. This is how a server uses a trained
    /// model: what its own history taught it, fine contexts and continuations included,
    /// stays; the model fills the contexts that history never met.
    pub fn seed(&self, ranker: &mut Ranker) -> usize {
        let mut seeded = 0;
        for c in &self.contexts {
            if ranker.seed_counts(c.hardware_class, c.kind, &c.counts()) {
                seeded += 1;
            }
        }
        seeded
    }

    /// Outcomes counted in every context.
    pub fn outcomes(&self) -> f64 {
        self.cells().map(|s| s.successes + s.failures).sum()
    }

    /// Successful outcomes in every context.
    pub fn successes(&self) -> f64 {
        self.cells().map(|s| s.successes).sum()
    }

    fn cells(&self) -> impl Iterator<Item = &StrategyCount> {
        self.contexts.iter().flat_map(|c| &c.strategies)
    }

    /// The counts of one cell.
    pub fn get(
        &self,
        class: HardwareClass,
        kind: FailureKind,
        strategy: RecoveryStrategy,
    ) -> Option<&StrategyCount> {
        self.contexts
            .iter()
            .find(|c| c.hardware_class == class && c.kind == kind)?
            .strategies
            .iter()
            .find(|s| s.strategy == strategy)
    }
}
