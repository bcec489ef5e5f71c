//! Success-rate tables: per (hardware class, failure kind, strategy), the successes, failures
//! and reported costs of the history's outcomes — the counts [`Ranker`] consumes — and the
//! same per refined context (the ranker's fine and finest contexts: classifier rule, Xid code,
//! repeat failure, message signature), from each outcome joined to the failure it answered.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::RankingParams;
use crate::model::{FailureKind, HardwareClass, RecoveryStrategy};
use crate::ranking::{frames, seeded_context, Counts, Ranker};
use crate::store::{SeedLevel, SeededContext};

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
        ranker_counts(&self.strategies)
    }
}

/// Which finer context of the ranker a [`RefinedContext`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefinedLevel {
    /// A fine context: classifier rule and Xid code, whether the task had failed before
    /// (`ranking::fine_key`, worker standing healthy).
    Fine,
    /// A finest context: a fine context refined by the message's signature.
    Finest,
}

/// The strategies tried in one refined context below a (hardware class, kind) context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefinedContext {
    /// Hardware class of the failures answered.
    pub hardware_class: HardwareClass,
    /// Their kind as the ranker uses it (`ranking::ranked_kind`: memory exhausted on a TPU
    /// or an NPU is `oom_gpu`).
    pub kind: FailureKind,
    /// Fine or finest.
    pub level: RefinedLevel,
    /// The context's key at that level, as the ranker computes it.
    pub key: u64,
    /// Strategies with at least one outcome, in [`RecoveryStrategy::ALL`] order.
    pub strategies: Vec<StrategyCount>,
}

impl RefinedContext {
    /// The counts as the ranker keeps them.
    pub fn counts(&self) -> Counts {
        ranker_counts(&self.strategies)
    }
}

fn ranker_counts(strategies: &[StrategyCount]) -> Counts {
    let mut counts = Counts::default();
    for s in strategies {
        let i = s.strategy.index();
        counts.success[i] = s.successes;
        counts.failure[i] = s.failures;
        counts.cost[i] = s.cost;
        counts.costed[i] = s.costed;
    }
    counts
}

/// The strategies with outcomes in `counts`, in [`RecoveryStrategy::ALL`] order.
pub(super) fn strategy_counts(counts: &Counts) -> Vec<StrategyCount> {
    RecoveryStrategy::ALL
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
        .collect()
}

/// Every context with evidence, in (class, kind) order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SuccessTables {
    /// The contexts.
    pub contexts: Vec<ContextCounts>,
    /// The refined contexts (none in a model of format 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refined: Vec<RefinedContext>,
}

impl SuccessTables {
    /// The tables of the outcomes under `root` (via [`frames::success_rates`]); empty when the
    /// history has no outcomes.
    pub fn from_history(root: &Path) -> Result<Self, TrainError> {
        Self::from_history_upto(root, None)
    }

    /// [`SuccessTables::from_history`] of the rows up to sequence number `upto` (the commit
    /// point the rest of a model was read at; `None`: all committed rows).
    pub fn from_history_upto(root: &Path, upto: Option<u64>) -> Result<Self, TrainError> {
        let dir = root.join("history").join("outcomes");
        if !dir.is_dir() {
            return Ok(SuccessTables::default());
        }
        let frame = frames::success_rates_upto(root, upto)?;
        let ranker = frames::ranker_from_frame(&frame, RankingParams::default())?;
        let mut tables = Self::from_ranker(&ranker);
        if root.join("history").join("failures").is_dir() {
            let refined = frames::refined_success_rates_upto(root, upto)?;
            tables.refined = frames::refined_counts(&refined)?
                .into_iter()
                .map(|r| RefinedContext {
                    hardware_class: r.class,
                    kind: r.kind,
                    level: if r.level == frames::LEVEL_FINE {
                        RefinedLevel::Fine
                    } else {
                        RefinedLevel::Finest
                    },
                    key: r.key,
                    strategies: strategy_counts(&r.counts),
                })
                .filter(|r| !r.strategies.is_empty())
                .collect();
        }
        Ok(tables)
    }

    /// The coarse counts of a ranker, contexts without evidence left out.
    pub fn from_ranker(ranker: &Ranker) -> Self {
        let mut contexts = Vec::new();
        for &c in HardwareClass::ALL {
            for &k in FailureKind::ALL {
                let strategies = strategy_counts(ranker.counts(c, k));
                if !strategies.is_empty() {
                    contexts.push(ContextCounts {
                        hardware_class: c,
                        kind: k,
                        strategies,
                    });
                }
            }
        }
        SuccessTables {
            contexts,
            refined: Vec::new(),
        }
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
    /// has evidence of keep their own). Returns the (hardware class, kind) contexts seeded.
    /// This is how a server uses a trained model: what its own history taught it, fine
    /// contexts and continuations included, stays; the model fills the contexts that history
    /// never met. A refined context's kind is the ranker's: where the per-kind tables have
    /// no (class, kind) context of that kind (memory exhausted on a TPU, logged as a TPU
    /// error), its fine contexts' sum seeds it. With `ranking.seed_refined` the refined
    /// contexts below a seeded context are seeded too ([`Ranker::seed_child`]); off by
    /// default, because it started worse on every example scenario (see
    /// [`RankingParams::seed_refined`]).
    pub fn seed(&self, ranker: &mut Ranker) -> usize {
        ranker
            .apply_seed(&self.seed_contexts())
            .iter()
            .filter(|c| c.level == SeedLevel::Coarse)
            .count()
    }

    /// What [`SuccessTables::seed`] offers a ranker, in the order it is taken: every coarse
    /// context; then, per (class, kind) of the fine contexts, their sum (taken where the
    /// tables have no coarse context of their own and the ranker no evidence); then every
    /// refined context (taken with `ranking.seed_refined`, below a coarse context seeded in
    /// the same call).
    pub fn seed_contexts(&self) -> Vec<SeededContext> {
        let mut out: Vec<SeededContext> = self
            .contexts
            .iter()
            .map(|c| {
                seeded_context(
                    (c.hardware_class, c.kind),
                    SeedLevel::Coarse,
                    0,
                    &c.counts(),
                )
            })
            .collect();
        let mut sums: Vec<((HardwareClass, FailureKind), Counts)> = Vec::new();
        for r in self
            .refined
            .iter()
            .filter(|r| r.level == RefinedLevel::Fine)
        {
            let at = (r.hardware_class, r.kind);
            let i = match sums.iter().position(|(c, _)| *c == at) {
                Some(i) => i,
                None => {
                    sums.push((at, Counts::default()));
                    sums.len() - 1
                }
            };
            let (sum, add) = (&mut sums[i].1, r.counts());
            for s in 0..crate::ranking::N {
                sum.success[s] += add.success[s];
                sum.failure[s] += add.failure[s];
                sum.cost[s] += add.cost[s];
                sum.costed[s] += add.costed[s];
            }
        }
        out.extend(
            sums.iter()
                .map(|(at, sum)| seeded_context(*at, SeedLevel::Coarse, 0, sum)),
        );
        out.extend(self.refined.iter().map(|r| {
            let level = match r.level {
                RefinedLevel::Fine => SeedLevel::Fine,
                RefinedLevel::Finest => SeedLevel::Finest,
            };
            seeded_context((r.hardware_class, r.kind), level, r.key, &r.counts())
        }));
        out
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
