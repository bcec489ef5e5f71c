//! The engine's seam to its learned rankers: the Bayes ranker ([`Ranker`]) or, with
//! `ranking.ranker = "model"`, the success-model ranker ([`ModelRanker`]), which needs the
//! decision's repeat and flagged-worker bits beside the ranking context.

use std::collections::VecDeque;
use std::sync::Arc;

use rand::Rng;

use super::explain::RankingView;
use super::{
    decision_rng, mutate, retries_in_place, standing, stays_in_class, Classified, Ctx, Engine,
    EngineError, Prepared, StateStore, TaskRecord,
};
use crate::config::{RankerKind, RankingParams};
use crate::model::{RecoveryAction, RecoveryStrategy, WorkerId};
use crate::ranking::smart::{Bits, ModelRanker};
use crate::ranking::{self, Choice, Observed, RankContext};
use crate::retry::breaker::BreakerState;
use crate::rules::{LadderRef, Step};

/// What the learned ranking made of a failure (see [`Engine::rank_failure`]).
pub(super) struct RankedFailure {
    /// Its choice (`None`: it abstains and the rules decide).
    pub choice: Option<Choice>,
    /// The fine ranking key the failure was ranked in.
    pub key: u64,
    /// Steps left on the task's ladder that the ranking could take.
    pub ladder_left: usize,
    /// What the ranking saw, when the engine is explaining its decision
    /// ([`Engine::decide_explained`]).
    pub view: Option<Box<RankingView>>,
}

/// The ranking's decision that can be carried out (see [`Engine::rank_and_prepare`]).
pub(super) struct Learned {
    /// The ranked failure; its choice is the last one made (the one prepared, if any).
    pub ranked: RankedFailure,
    /// The chosen step prepared, with its position on the ladder (1-based) when it is the
    /// ladder's own step; `None` when the ranking abstains, would escalate past the ladder's
    /// end, or chose nothing that can be carried out — then the rules decide.
    pub prepared: Option<(Prepared, Step, Option<u32>)>,
}

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
    history: &VecDeque<Arc<RecoveryAction>>,
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
    /// Ranks a failure in its context (`decide`, and `replay` to learn what `decide` learned):
    /// the strategies valid for the task's state, the fleet and open breakers (`breakers`:
    /// worker, class and whether the failure came in a burst), the ladder's remaining steps
    /// from `start` as the prior, the task's history as what was tried; seeded per task and
    /// attempt, so the same state gives the same choice. Strategies marked in `denied` are
    /// left out, and the immediate retry when the retry budget is spent (`retry_open` false).
    /// No allocation: fixed arrays.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rank_failure(
        &self,
        ctx: &Ctx<'_>,
        cls: &Classified,
        entry: &TaskRecord,
        (ladder, start): (&LadderRef<'_>, usize),
        attempt: u32,
        (worker_breaker, class_breaker, burst): (BreakerState, BreakerState, bool),
        retry_open: bool,
        denied: &[bool; ranking::N],
    ) -> RankedFailure {
        use RecoveryStrategy as S;
        let (rec, class) = (ctx.rec, ctx.class);
        let mut ok = [false; ranking::N];
        let mut valid = [S::Escalation; ranking::N];
        let mut nv = 0;
        let fleet = self.fleet_moves_for(ctx, &entry.excluded);
        // An open breaker moves what would stay (see `decide`): the ranking chooses among the
        // moves, so that what it learns is what was done.
        let (stay_worker, stay_class) =
            self.breakers_move(worker_breaker, class_breaker, ctx, &entry.excluded);
        // With the retry budget spent, every retry runs as a delayed retry at the backoff cap
        // (see `decide`): the ranking leaves out the immediate one, so that the delayed
        // retry's logged propensity is the probability with which it is run (logged as the
        // chosen retry's, it understated it: the immediate retry's share ran as the delayed
        // one). Left out like a denied strategy, it is off the ladder prior too: the ladder's
        // next step gets the top prior.
        // Why a strategy cannot be ranked (`None`: it can): one list of conditions for the
        // ranking and its explanation.
        let left_out = |s: S| {
            use super::explain as x;
            if denied[s.index()] {
                Some(x::NO_WORKER_FOR_CHOICE)
            } else if !mutate::applicable(s, class, ctx.config) {
                Some(x::inapplicable(s))
            } else if !fleet.allow(s) {
                Some(x::no_worker(s))
            } else if stay_worker && retries_in_place(s) {
                Some(x::WORKER_BREAKER)
            } else if stay_class && stays_in_class(s) {
                Some(x::CLASS_BREAKER)
            } else if !retry_open && s == S::ImmediateRetry {
                Some(x::BUDGET_SPENT)
            } else {
                None
            }
        };
        for s in RecoveryStrategy::ALL {
            if *s != S::Escalation && left_out(*s).is_none() {
                ok[s.index()] = true;
                valid[nv] = *s;
                nv += 1;
            }
        }
        let mut remaining = [S::Escalation; ranking::N];
        let mut nr = 0;
        for step in ladder.steps.iter().skip(start) {
            if ok[step.strategy.index()]
                && nr < ranking::N
                && !remaining[..nr].contains(&step.strategy)
            {
                remaining[nr] = step.strategy;
                nr += 1;
            }
        }
        let mut tried = [0u32; ranking::N];
        for a in &entry.history {
            tried[a.strategy.index()] += 1;
        }
        // A pass after a denial draws from a stream of its own: the same draws again would tie
        // its choice to the denied one's (review).
        let pass = denied.iter().filter(|d| **d).count() as u64;
        let mut rng = decision_rng(
            self.config.seed ^ 0x7261_6e6b ^ pass.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            &rec.task_id,
            attempt,
        );
        let standing = standing(&self.standings, &rec.worker_id);
        let mut key = ranking::fine_key_finish(cls.rule_key, attempt, standing);
        if burst {
            key = ranking::burst_key(key);
        }
        let bad_worker = standing == ranking::WorkerStanding::Bad;
        let rank_ctx = RankContext {
            class,
            kind: cls.rank_kind,
            template: Some(key),
            signature: Some(cls.signature),
            ladder: &remaining[..nr],
            valid: &valid[..nv],
            tried: &tried,
            burst,
            bad_worker,
            busy: crate::classify::device_busy(cls.rule),
            budget_left: Some(self.retry.max_attempts.saturating_sub(attempt)),
        };
        let view = self.explaining.then(|| {
            use super::explain as x;
            let bayes = self.ranker.explain(&rank_ctx);
            let (ranker, mut candidates) = match &self.model_ranker {
                Some(m) => {
                    let mut est = m
                        .explain(&rank_ctx, Bits::new(attempt, bad_worker))
                        .unwrap_or_default();
                    // The outcomes recorded for each strategy, as the ranking counts them
                    // (the model fits its own window of them).
                    for e in &mut est {
                        if let Some(b) = bayes.iter().flatten().find(|b| b.strategy == e.strategy) {
                            e.coarse = b.coarse;
                            e.fine = b.fine;
                            e.finest = b.finest;
                            e.other_classes = b.other_classes;
                            e.bad_workers = b.bad_workers;
                        }
                    }
                    ("model", est)
                }
                None => ("bayes", bayes.unwrap_or_default()),
            };
            // The ladder's own step numbers, as the action's `source.step` counts them.
            let step_of = |s: S| {
                ladder
                    .steps
                    .iter()
                    .enumerate()
                    .skip(start)
                    .find(|(_, st)| st.strategy == s)
                    .map(|(i, _)| i as u32 + 1)
            };
            for c in &mut candidates {
                c.ladder_step = step_of(c.strategy);
            }
            let left_out = RecoveryStrategy::ALL
                .iter()
                .filter(|s| **s != S::Escalation)
                .filter_map(|s| {
                    left_out(*s).map(|reason| x::LeftOut {
                        strategy: *s,
                        reason,
                    })
                })
                .collect();
            Box::new(RankingView {
                ranker,
                class,
                kind: cls.rank_kind,
                worker: x::standing_word(standing),
                burst,
                worker_breaker: x::breaker_word(self.worker_breakers.enabled(), worker_breaker),
                class_breaker: x::breaker_word(self.class_breakers.enabled(), class_breaker),
                retry_budget_spent: !retry_open,
                outcomes: self.ranker.counts(class, cls.rank_kind).total(),
                ladder: ladder
                    .steps
                    .iter()
                    .enumerate()
                    .skip(start)
                    .map(|(i, st)| x::LadderStep {
                        step: i as u32 + 1,
                        strategy: st.strategy,
                        possible: self.prepare(st, ctx, &entry.excluded).is_some(),
                    })
                    .collect(),
                order: x::order_of(&self.config.ranking),
                candidates,
                left_out,
            })
        });
        RankedFailure {
            choice: self.rank(&rank_ctx, attempt, bad_worker, &mut rng),
            key,
            ladder_left: nr,
            view,
        }
    }

    /// The ranking's decision for a failure, prepared (`decide`, and `replay` to learn what
    /// `decide` learned): [`Engine::rank_failure`], then the chosen step — the ladder's own
    /// step when the strategy is still ahead on it (it keeps its options, e.g. more memory),
    /// else the plain strategy. With the ladder exhausted (the rules would escalate) the
    /// ranking still recovers when its choice is likely enough to work
    /// (`ranking.escalate_below`). A choice that cannot be carried out (a move to a class
    /// where no worker could take the task: not checked up front, it would cost every
    /// ranked decision two more picks) is left out and the failure ranked again among the
    /// rest, with draws of its own; the rules decide only when the ranking has nothing left
    /// or abstains. The logged propensity is then that of a ranking over what is left, which
    /// understates the action's probability when the first ranking could have chosen it
    /// directly (P₁(x) + P₁(denied)·P(x | the rest) against P(x | the rest)); this happens
    /// only with a registry in which no worker of a class could take the task. A choice the
    /// first ranking made is logged with P₁(x), which understates it the same way when
    /// another valid choice could not have been carried out: the exact probability needs to
    /// know which could not, a worker pick per valid move on every ranked decision (tried:
    /// the decisions through a denial alone are not enough). `retry_open`:
    /// whether the retry budget allows another retry (when not, the immediate retry is left
    /// out, see [`Engine::rank_failure`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rank_and_prepare(
        &self,
        ctx: &Ctx<'_>,
        cls: &Classified,
        entry: &TaskRecord,
        (ladder, start): (&LadderRef<'_>, usize),
        attempt: u32,
        breakers: (BreakerState, BreakerState, bool),
        retry_open: bool,
    ) -> Learned {
        let mut denied = [false; ranking::N];
        loop {
            let ranked = self.rank_failure(
                ctx,
                cls,
                entry,
                (ladder, start),
                attempt,
                breakers,
                retry_open,
                &denied,
            );
            let Some(choice) = ranked.choice else {
                return Learned {
                    ranked,
                    prepared: None,
                };
            };
            // The rules escalate once their ladder is walked, one step per failure. The
            // ranking, which may jump to a ladder's last step at once or move the task where
            // a shorter ladder applies, gives up no sooner than the rules could have, the
            // longest ladder walked (audit: with every cure rare, it escalated at the second
            // or third failure where the rules tried on to the fourth or seventh, and
            // recovered fewer tasks).
            if ranked.ladder_left == 0
                && choice.expected_success < self.config.ranking.escalate_below
                && attempt as usize > self.longest_ladder().max(ladder.steps.len())
            {
                return Learned {
                    ranked,
                    prepared: None,
                };
            }
            let pos = ladder
                .steps
                .iter()
                .enumerate()
                .skip(start)
                .find(|(_, s)| s.strategy == choice.strategy);
            let step = pos.map_or(Step::plain(choice.strategy), |(_, s)| *s);
            if let Some(p) = self.prepare(&step, ctx, &entry.excluded) {
                return Learned {
                    ranked,
                    prepared: Some((p, step, pos.map(|(i, _)| i as u32 + 1))),
                };
            }
            // Each pass leaves out one more strategy: at most N passes.
            denied[choice.strategy.index()] = true;
        }
    }

    /// Steps of the rule set's longest ladder (its rules' and its classes'): the most
    /// failures the rules walk before they escalate.
    pub(super) fn longest_ladder(&self) -> usize {
        self.rules
            .rules()
            .iter()
            .map(|r| r.ladder.len())
            .chain(
                crate::model::HardwareClass::ALL
                    .iter()
                    .map(|c| self.rules.class_ladder(*c).len()),
            )
            .max()
            .unwrap_or(0)
    }

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
