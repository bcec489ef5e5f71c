//! The engine's seam to its learned rankers: the Bayes ranker ([`Ranker`]) or, with
//! `ranking.ranker = "model"`, the success-model ranker ([`ModelRanker`]), which needs the
//! decision's repeat and flagged-worker bits beside the ranking context.

use std::collections::VecDeque;

use rand::Rng;

use super::{Engine, EngineError, StateStore};
use crate::config::{RankerKind, RankingParams};
use crate::model::{RecoveryAction, WorkerId};
use crate::ranking::smart::{Bits, ModelRanker};
use crate::ranking::{Choice, Observed, RankContext};

/// The model ranker when the configuration asks for it.
pub(super) fn model_ranker(p: &RankingParams) -> Result<Option<ModelRanker>, EngineError> {
    Ok(match p.ranker {
        RankerKind::Bayes => None,
        RankerKind::Model => Some(ModelRanker::new(p.clone())?),
    })
}

/// The model's view of the task's latest action: its context bits and whether its strategy
/// had been used on the task before it.
pub(super) fn outcome_bits(
    history: &VecDeque<RecoveryAction>,
    bad_workers: &[WorkerId],
) -> Option<(Bits, bool)> {
    let last = history.back()?;
    let tried = history
        .iter()
        .take(history.len() - 1)
        .any(|a| a.strategy == last.strategy);
    let bits = Bits::new(last.attempt, bad_workers.contains(&last.failed_worker));
    Some((bits, tried))
}

impl<S: StateStore> Engine<S> {
    /// The configured ranker's choice (see `decide`); `None` lets the rules decide.
    pub(super) fn rank<R: Rng + ?Sized>(
        &self,
        c: &RankContext<'_>,
        attempt: u32,
        flagged: bool,
        rng: &mut R,
    ) -> Option<Choice> {
        match &self.model_ranker {
            Some(m) => m.choose(c, Bits::new(attempt, flagged), rng),
            None => self.ranker.choose(c, rng),
        }
    }

    /// Feeds an outcome to the model ranker, when there is one.
    pub(super) fn update_model(&mut self, o: &Observed, bits: Option<(Bits, bool)>) {
        if let (Some(m), Some((bits, tried))) = (&mut self.model_ranker, bits) {
            m.update(o, bits, tried);
        }
    }

    /// Defers the model ranker's refits (history replay at open: one fit at the end instead of
    /// one every `refit_every` replayed outcomes).
    pub(super) fn defer_model_fits(&mut self, on: bool) {
        if let Some(m) = &mut self.model_ranker {
            m.defer_fits(on);
        }
    }

    /// The success-model ranker (`ranking.ranker = "model"`), if configured.
    pub fn model_ranker(&self) -> Option<&ModelRanker> {
        self.model_ranker.as_ref()
    }

    /// Replaces the success-model ranker (e.g. one fitted from the history).
    pub fn set_model_ranker(&mut self, ranker: ModelRanker) {
        self.model_ranker = Some(ranker);
    }
}
