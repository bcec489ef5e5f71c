//! Tier 3 — a success model as an alternative ranker (`ranking.ranker = "model"`): one
//! smartcore logistic regression per strategy predicts P(success) from the failure context,
//! and the ranker takes the valid strategy with the highest prediction (ε-greedy).
//!
//! - **Features** (one-hot, built by hand: no ndarray here): hardware class, failure kind,
//!   their pair (an L2-shrunk residual on top of the two main effects, so a pair with little
//!   evidence leans on what its class and its kind do elsewhere), whether the task failed
//!   before (attempt > 1), whether the failed worker is flagged bad, whether the strategy was
//!   already used on this task, and the engine's fine context key
//!   ([`fine_key`](super::fine_key): classifier rule, Xid, repeat, worker standing — it tells
//!   causes reported as one kind apart). One regression per strategy makes every feature a
//!   strategy interaction. Only the columns present in the training window exist; each
//!   regression's matrix only those its rows use.
//! - **Where the Bayes ranker differs.** The posteriors of [`Ranker`](super::Ranker) are per
//!   (class, kind [, fine key]) and share nothing across contexts; the regression shares the
//!   kind's effect across classes and the worker/repeat bits across kinds, at the price of
//!   the bias of an additive model.
//! - **Fitting.** [`SuccessModel::fit`] fits offline from [`Row`]s (e.g. logged actions
//!   joined to outcomes); [`ModelRanker::update`] keeps the last `window` outcomes and refits
//!   after `min_outcomes`, then after as many outcomes as the last fit saw, at most every
//!   `refit_every` — on the outcome path, never per decision. A decision costs a handful of
//!   coefficient lookups per valid strategy. A refit is not cheap (smartcore's L-BFGS on a
//!   dense matrix: a 20k-failure simulation with the default 5,000-outcome window and a refit
//!   every 200 outcomes spends 15–45 s in ~90 refits, release build), so the record_outcome
//!   that triggers one stalls for it; between refits the model does not learn, which is what
//!   `refit_every` trades against. When the engine opens a data directory, the replayed
//!   outcomes fill the window and the model is fitted once at the end
//!   ([`ModelRanker::defer_fits`]).
//! - **Sparse strategies.** A strategy with fewer than `min_rows` rows (or only successes or
//!   only failures) gets its smoothed rate, `(s + m·prior) / (n + m)`, with the ladder prior
//!   of the Bayes ranker (`prior_top`, `prior_other`, `prior_strength`); an unseen strategy
//!   gets the prior itself.
//! - **Cold start.** Before the first fit, or for a failure kind absent from the training
//!   window, the ranker abstains and the rules decide — exactly the rules.
//! - **Propensity.** ε-greedy: `1 − ε + ε/|valid|` for the best prediction, `ε/|valid|` for
//!   any other; logged for off-policy evaluation.

use std::collections::{HashMap, VecDeque};

use rand::Rng;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

use super::{Choice, Observed, RankContext, RankingError, N};
use crate::config::{ModelParams, RankingParams};
use crate::model::{FailureKind, HardwareClass, RecoveryStrategy};

const C: usize = HardwareClass::ALL.len();
const K: usize = FailureKind::ALL.len();
/// Raw feature space: class, kind, class × kind, repeat, flagged, tried.
const RAW: usize = C + K + C * K + 3;
const REPEAT: usize = RAW - 3;
const FLAGGED: usize = RAW - 2;
const TRIED: usize = RAW - 1;
/// Columns absent from the training window.
const ABSENT: u32 = u32::MAX;

impl ModelParams {
    /// Validates the parameters (field names as in the config file).
    pub fn check(&self) -> Result<(), RankingError> {
        let bad = |f: &str, d: String| RankingError::Invalid {
            field: format!("ranking.model.{f}"),
            detail: d,
        };
        if !(0.0..1.0).contains(&self.epsilon) {
            return Err(bad("epsilon", format!("{} is not in [0, 1)", self.epsilon)));
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(bad("alpha", format!("{} is not ≥ 0", self.alpha)));
        }
        if self.min_outcomes == 0 {
            return Err(bad("min_outcomes", "0 is not ≥ 1".into()));
        }
        if self.window < self.min_outcomes {
            return Err(bad(
                "window",
                format!(
                    "{} is less than min_outcomes ({})",
                    self.window, self.min_outcomes
                ),
            ));
        }
        if self.refit_every == 0 {
            return Err(bad("refit_every", "0 is not ≥ 1".into()));
        }
        if self.min_rows < 2 {
            return Err(bad("min_rows", format!("{} is not ≥ 2", self.min_rows)));
        }
        Ok(())
    }
}

/// Context bits beyond (class, kind) that the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Bits {
    /// The task failed before (attempt > 1).
    pub repeat: bool,
    /// The failed worker is flagged bad.
    pub flagged: bool,
}

impl Bits {
    /// The bits of a decision at `attempt` on a worker flagged bad or not.
    pub fn new(attempt: u32, flagged: bool) -> Self {
        Bits {
            repeat: attempt > 1,
            flagged,
        }
    }
}

/// One training row: a strategy applied in a context, and whether it recovered the task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Hardware class of the failed worker.
    pub class: HardwareClass,
    /// Failure kind.
    pub kind: FailureKind,
    /// The engine's fine context key ([`fine_key`](super::fine_key)), when known.
    pub fine: Option<u64>,
    /// Repeat and flagged-worker bits.
    pub bits: Bits,
    /// Whether the strategy had already been used on the task before this decision.
    pub tried: bool,
    /// The strategy applied.
    pub strategy: RecoveryStrategy,
    /// Whether it recovered the task.
    pub success: bool,
}

/// Raw feature indices of a context (the `tried` bit is per strategy, added apart).
fn raw(class: HardwareClass, kind: FailureKind, bits: Bits) -> ([usize; 5], usize) {
    let (c, k) = (class.index(), kind.index());
    let mut a = [0; 5];
    a[0] = c;
    a[1] = C + k;
    a[2] = C + K + c * K + k;
    let mut n = 3;
    if bits.repeat {
        a[n] = REPEAT;
        n += 1;
    }
    if bits.flagged {
        a[n] = FLAGGED;
        n += 1;
    }
    (a, n)
}

/// The model's columns: the raw features and fine keys present in the training rows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct Columns {
    /// Raw feature → column (`u32::MAX` when absent).
    raw: Vec<u32>,
    /// Fine key → column.
    fine: HashMap<u64, u32, FxBuildHasher>,
    /// Number of columns.
    width: usize,
}

/// The columns of one context (at most five raw features and a fine key).
#[derive(Debug, Clone, Copy)]
struct Active {
    cols: [u32; 6],
    n: usize,
    /// Column of the `tried` bit, when it exists.
    tried: Option<u32>,
}

impl Active {
    fn cols(&self, tried: bool) -> impl Iterator<Item = usize> + '_ {
        let t = if tried { self.tried } else { None };
        self.cols[..self.n]
            .iter()
            .copied()
            .chain(t)
            .map(|c| c as usize)
    }
}

impl Columns {
    fn of(rows: &[Row]) -> Self {
        let mut c = Columns {
            raw: vec![ABSENT; RAW],
            ..Default::default()
        };
        let mut width = 0u32;
        let mut next = || {
            width += 1;
            width - 1
        };
        for r in rows {
            let (a, n) = raw(r.class, r.kind, r.bits);
            let tried = r.tried.then_some(TRIED);
            for i in a[..n].iter().chain(tried.iter()) {
                if c.raw[*i] == ABSENT {
                    c.raw[*i] = next();
                }
            }
            if let Some(f) = r.fine {
                c.fine.entry(f).or_insert_with(&mut next);
            }
        }
        c.width = width as usize;
        c
    }

    fn active(
        &self,
        class: HardwareClass,
        kind: FailureKind,
        bits: Bits,
        fine: Option<u64>,
    ) -> Active {
        let (a, n) = raw(class, kind, bits);
        let mut act = Active {
            cols: [0; 6],
            n: 0,
            tried: Some(self.raw[TRIED]).filter(|c| *c != ABSENT),
        };
        let fine = fine.and_then(|f| self.fine.get(&f).copied());
        for c in a[..n]
            .iter()
            .map(|i| self.raw[*i])
            .chain(fine)
            .filter(|c| *c != ABSENT)
        {
            act.cols[act.n] = c;
            act.n += 1;
        }
        act
    }
}

/// What the model knows about one strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StrategyFit {
    /// No row.
    Unseen,
    /// Too few rows, or only one outcome: successes and rows.
    Rate {
        /// Successes.
        success: f64,
        /// Rows.
        rows: f64,
    },
    /// A logistic regression over the model's columns.
    Logistic {
        /// One weight per column.
        weights: Vec<f64>,
        /// Intercept.
        intercept: f64,
        /// Rows it was fitted on.
        rows: usize,
    },
}

/// A fitted success model: P(success | context, strategy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuccessModel {
    columns: Columns,
    /// One fit per strategy, indexed like [`RecoveryStrategy::ALL`].
    fits: Vec<StrategyFit>,
    /// Rows the model was fitted on.
    rows: usize,
    /// Strategies whose regression failed to fit and fell back to their rate.
    fallbacks: usize,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl SuccessModel {
    /// Fits one logistic regression per strategy with at least `p.min_rows` rows of both
    /// outcomes; other strategies keep their rate.
    pub fn fit(rows: &[Row], p: &ModelParams) -> Self {
        let columns = Columns::of(rows);
        let mut fits = Vec::with_capacity(N);
        let mut fallbacks = 0;
        for s in RecoveryStrategy::ALL {
            let mine: Vec<&Row> = rows.iter().filter(|r| r.strategy == *s).collect();
            let success = mine.iter().filter(|r| r.success).count();
            let rate = StrategyFit::Rate {
                success: success as f64,
                rows: mine.len() as f64,
            };
            let fit = if mine.is_empty() {
                StrategyFit::Unseen
            } else if mine.len() < p.min_rows || success == 0 || success == mine.len() {
                rate
            } else {
                match logistic(&mine, &columns, p.alpha) {
                    Some((weights, intercept)) => StrategyFit::Logistic {
                        weights,
                        intercept,
                        rows: mine.len(),
                    },
                    None => {
                        fallbacks += 1;
                        rate
                    }
                }
            };
            fits.push(fit);
        }
        SuccessModel {
            columns,
            fits,
            rows: rows.len(),
            fallbacks,
        }
    }

    /// Rows the model was fitted on.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of feature columns.
    pub fn width(&self) -> usize {
        self.columns.width
    }

    /// Strategies whose regression did not converge to a usable fit and use their rate.
    pub fn fallbacks(&self) -> usize {
        self.fallbacks
    }

    /// What the model knows about `s`.
    pub fn fit_of(&self, s: RecoveryStrategy) -> &StrategyFit {
        &self.fits[s.index()]
    }

    /// Whether the training rows contained failures of `kind`.
    pub fn knows(&self, kind: FailureKind) -> bool {
        self.columns.raw[C + kind.index()] != ABSENT
    }

    /// Predicted success of `s` in a context; `prior` (mean, strength) smooths the rate of a
    /// strategy without a regression and is the answer for an unseen one.
    #[allow(clippy::too_many_arguments)]
    pub fn predict(
        &self,
        class: HardwareClass,
        kind: FailureKind,
        fine: Option<u64>,
        bits: Bits,
        tried: bool,
        s: RecoveryStrategy,
        prior: (f64, f64),
    ) -> f64 {
        let act = self.columns.active(class, kind, bits, fine);
        self.score(&act, tried, s, prior)
    }

    fn score(
        &self,
        act: &Active,
        tried: bool,
        s: RecoveryStrategy,
        (mean, strength): (f64, f64),
    ) -> f64 {
        match &self.fits[s.index()] {
            StrategyFit::Unseen => mean,
            StrategyFit::Rate { success, rows } => (success + strength * mean) / (rows + strength),
            StrategyFit::Logistic {
                weights, intercept, ..
            } => sigmoid(intercept + act.cols(tried).map(|c| weights[c]).sum::<f64>()),
        }
    }
}

/// Fits one strategy's regression; `None` when smartcore fails. The matrix holds only the
/// columns the strategy's rows use (a column without a one has zero gradient from the data
/// and, with the L2 penalty, a zero weight anyway), so a rare strategy fits a narrow matrix;
/// the weights are scattered back to the model's columns.
fn logistic(rows: &[&Row], columns: &Columns, alpha: f64) -> Option<(Vec<f64>, f64)> {
    let mut local = vec![ABSENT; columns.width];
    let mut used: Vec<usize> = Vec::new();
    let acts: Vec<Active> = rows
        .iter()
        .map(|r| columns.active(r.class, r.kind, r.bits, r.fine))
        .collect();
    for (act, r) in acts.iter().zip(rows) {
        for c in act.cols(r.tried) {
            if local[c] == ABSENT {
                local[c] = used.len() as u32;
                used.push(c);
            }
        }
    }
    let width = used.len();
    let mut x = vec![0.0f64; rows.len() * width];
    let mut y = Vec::with_capacity(rows.len());
    for (i, (act, r)) in acts.iter().zip(rows).enumerate() {
        // Every feature of a training row has a column (`Columns::of` saw it).
        for c in act.cols(r.tried) {
            x[i * width + local[c] as usize] = 1.0;
        }
        y.push(u32::from(r.success));
    }
    let x = DenseMatrix::new(rows.len(), width, x, false).ok()?;
    let params = LogisticRegressionParameters::default().with_alpha(alpha);
    let m = LogisticRegression::fit(&x, &y, params).ok()?;
    // Two classes, sorted: the coefficients are those of class 1 (success).
    if m.classes().as_slice() != [0, 1] {
        return None;
    }
    let mut weights = vec![0.0; columns.width];
    for (j, c) in used.iter().enumerate() {
        weights[*c] = *m.coefficients().get((0, j));
    }
    let intercept = *m.intercept().get((0, 0));
    (intercept.is_finite() && weights.iter().all(|w| w.is_finite())).then_some((weights, intercept))
}

/// The prior mean of `s` given the remaining ladder and the failure (the Bayes ranker's
/// prior, [`RankingParams::prior_means`]).
fn prior_mean(p: &RankingParams, s: RecoveryStrategy, c: &RankContext<'_>) -> f64 {
    p.prior_means(c.ladder, super::device_fault(c.class, c.kind))[s.index()]
}

/// The online model ranker: a window of outcomes, a fitted [`SuccessModel`], ε-greedy
/// selection.
#[derive(Debug, Clone)]
pub struct ModelRanker {
    params: RankingParams,
    rows: VecDeque<Row>,
    since_fit: usize,
    fitted_on: usize,
    deferred: bool,
    model: Option<SuccessModel>,
}

impl ModelRanker {
    /// An empty ranker (it abstains until `model.min_outcomes` outcomes were seen).
    pub fn new(params: RankingParams) -> Result<Self, RankingError> {
        params.check()?;
        Ok(ModelRanker {
            params,
            rows: VecDeque::new(),
            since_fit: 0,
            fitted_on: 0,
            deferred: false,
            model: None,
        })
    }

    /// A ranker fitted now on `rows` (e.g. logged history), which keeps learning online.
    pub fn from_rows(params: RankingParams, rows: &[Row]) -> Result<Self, RankingError> {
        let mut r = ModelRanker::new(params)?;
        let w = r.params.model.window;
        r.rows
            .extend(rows[rows.len().saturating_sub(w)..].iter().copied());
        r.refit();
        Ok(r)
    }

    /// The parameters.
    pub fn params(&self) -> &RankingParams {
        &self.params
    }

    /// The current model (None before the first fit).
    pub fn model(&self) -> Option<&SuccessModel> {
        self.model.as_ref()
    }

    /// Fits the model on the window now.
    pub fn refit(&mut self) {
        let rows: Vec<Row> = self.rows.iter().copied().collect();
        self.fitted_on = rows.len();
        self.since_fit = 0;
        self.model = (!rows.is_empty()).then(|| SuccessModel::fit(&rows, &self.params.model));
    }

    /// Defers refits while `on` (e.g. while the engine replays its history at open); turning
    /// it off refits once when outcomes arrived meanwhile and the window holds at least
    /// `min_outcomes`.
    pub fn defer_fits(&mut self, on: bool) {
        let was = std::mem::replace(&mut self.deferred, on);
        if was && !on && self.since_fit > 0 && self.rows.len() >= self.params.model.min_outcomes {
            self.refit();
        }
    }

    /// Records an outcome with its context bits and whether its strategy had been used on
    /// the task before; refits when due (see the module docs).
    pub fn update(&mut self, o: &Observed, bits: Bits, tried: bool) {
        let m = &self.params.model;
        self.rows.push_back(Row {
            class: o.class,
            kind: o.kind,
            fine: o.template,
            bits,
            tried,
            strategy: o.strategy,
            success: o.success,
        });
        while self.rows.len() > m.window {
            self.rows.pop_front();
        }
        self.since_fit += 1;
        let due = m.refit_every.min(self.fitted_on.max(m.min_outcomes));
        if !self.deferred && self.rows.len() >= m.min_outcomes && self.since_fit >= due {
            self.refit();
        }
    }

    /// The valid strategy with the highest predicted success, or `None` (abstain: the rules
    /// decide) before the first fit, for a kind the model never saw, or with nothing valid.
    pub fn greedy(&self, c: &RankContext<'_>, bits: Bits) -> Option<Choice> {
        self.best(c, bits).map(|(j, p)| Choice {
            strategy: c.valid[j],
            propensity: 1.0,
            expected_success: p,
            continuation: None,
        })
    }

    fn best(&self, c: &RankContext<'_>, bits: Bits) -> Option<(usize, f64)> {
        let model = self.model.as_ref()?;
        if c.valid.is_empty() || !model.knows(c.kind) {
            return None;
        }
        let act = model.columns.active(c.class, c.kind, bits, c.template);
        let mut best: Option<(usize, f64)> = None;
        for (j, s) in c.valid.iter().enumerate() {
            let prior = (prior_mean(&self.params, *s, c), self.params.prior_strength);
            let p = model.score(&act, c.tried[s.index()] > 0, *s, prior);
            if best.is_none_or(|(_, v)| p > v) {
                best = Some((j, p));
            }
        }
        best
    }

    /// Every valid strategy as the model sees it for a failure, best first by predicted
    /// success (ties in `c.valid`'s order, so the first is [`ModelRanker::greedy`]'s choice),
    /// for an explanation; `None` where it abstains. `success` and `score` are the
    /// prediction, `prior` the ladder's prior mean (the answer for a strategy the model never
    /// saw, and what a strategy with too few rows is smoothed towards), `weight` the rows the
    /// model fitted the strategy on; the outcome counts are left empty (the caller has them).
    pub fn explain(&self, c: &RankContext<'_>, bits: Bits) -> Option<Vec<super::Estimate>> {
        let model = self.model.as_ref()?;
        if c.valid.is_empty() || !model.knows(c.kind) {
            return None;
        }
        let act = model.columns.active(c.class, c.kind, bits, c.template);
        let none = super::Evidence {
            successes: 0.0,
            failures: 0.0,
        };
        let mut out: Vec<super::Estimate> = c
            .valid
            .iter()
            .map(|s| {
                let k = s.index();
                let prior = prior_mean(&self.params, *s, c);
                let p = model.score(
                    &act,
                    c.tried[k] > 0,
                    *s,
                    (prior, self.params.prior_strength),
                );
                let weight = match model.fit_of(*s) {
                    StrategyFit::Unseen => 0.0,
                    StrategyFit::Rate { rows, .. } => *rows,
                    StrategyFit::Logistic { rows, .. } => *rows as f64,
                };
                super::Estimate {
                    strategy: *s,
                    ladder_step: None,
                    prior,
                    success: p,
                    weight,
                    coarse: none,
                    fine: None,
                    finest: None,
                    other_classes: None,
                    bad_workers: None,
                    expected_attempts: None,
                    tried: c.tried[k],
                    score: p,
                }
            })
            .collect();
        // Stable: equal predictions stay in `c.valid`'s order, as `best` keeps the first.
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        Some(out)
    }

    /// ε-greedy choice among `c.valid` (see [`ModelRanker::greedy`] for when it abstains).
    pub fn choose<R: Rng + ?Sized>(
        &self,
        c: &RankContext<'_>,
        bits: Bits,
        rng: &mut R,
    ) -> Option<Choice> {
        let (best, p_best) = self.best(c, bits)?;
        let eps = self.params.model.epsilon;
        let nv = c.valid.len() as f64;
        if eps > 0.0 && rng.gen::<f64>() < eps {
            let j = rng.gen_range(0..c.valid.len());
            let s = c.valid[j];
            let prior = (prior_mean(&self.params, s, c), self.params.prior_strength);
            // `best` returned Some: the model exists.
            let p = self.model.as_ref().map_or(0.0, |m| {
                m.predict(
                    c.class,
                    c.kind,
                    c.template,
                    bits,
                    c.tried[s.index()] > 0,
                    s,
                    prior,
                )
            });
            let propensity = if j == best {
                1.0 - eps + eps / nv
            } else {
                eps / nv
            };
            return Some(Choice {
                strategy: s,
                propensity,
                expected_success: p,
                continuation: None,
            });
        }
        Some(Choice {
            strategy: c.valid[best],
            propensity: 1.0 - eps + eps / nv,
            expected_success: p_best,
            continuation: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::tests::ctx;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;
    use RecoveryStrategy as S;

    fn row(kind: FailureKind, s: S, success: bool, flagged: bool) -> Row {
        Row {
            class: HardwareClass::Gpu,
            kind,
            fine: None,
            bits: Bits {
                repeat: false,
                flagged,
            },
            tried: false,
            strategy: s,
            success,
        }
    }

    /// OOM: REDUCED_BATCH_SIZE works 70 %, DELAYED_RETRY 20 %; on a flagged worker
    /// DIFFERENT_WORKER works 95 % and DELAYED_RETRY 5 %; otherwise DIFFERENT_WORKER 30 %.
    fn synthetic(n: usize, seed: u64) -> Vec<Row> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let flagged = i % 4 == 0;
                let s = [S::ReducedBatchSize, S::DelayedRetry, S::DifferentWorker][i % 3];
                let p = match (s, flagged) {
                    (S::ReducedBatchSize, _) => 0.7,
                    (S::DelayedRetry, false) => 0.2,
                    (S::DelayedRetry, true) => 0.05,
                    (_, true) => 0.95,
                    _ => 0.3,
                };
                row(FailureKind::OomGpu, s, rng.gen::<f64>() < p, flagged)
            })
            .collect()
    }

    #[test]
    fn the_model_learns_which_strategy_works_in_which_context() {
        let p = ModelParams::default();
        let m = SuccessModel::fit(&synthetic(1200, 1), &p);
        assert!(matches!(
            m.fit_of(S::ReducedBatchSize),
            StrategyFit::Logistic { .. }
        ));
        assert_eq!(m.fit_of(S::FallbackCpu), &StrategyFit::Unseen);
        let at = |s, flagged| {
            m.predict(
                HardwareClass::Gpu,
                FailureKind::OomGpu,
                None,
                Bits {
                    repeat: false,
                    flagged,
                },
                false,
                s,
                (0.5, 4.0),
            )
        };
        assert!(at(S::ReducedBatchSize, false) > at(S::DelayedRetry, false) + 0.3);
        // The flagged-worker bit turns DIFFERENT_WORKER from worse into better than a
        // reduced batch.
        assert!(at(S::DifferentWorker, false) < at(S::ReducedBatchSize, false));
        assert!(at(S::DifferentWorker, true) > at(S::ReducedBatchSize, true));
        assert!((at(S::ReducedBatchSize, false) - 0.7).abs() < 0.1);
        // An unseen strategy answers with the prior.
        assert_eq!(at(S::FallbackCpu, false), 0.5);
    }

    /// The outcome a synthetic row stands for (no fine key, no cost).
    fn observed(x: &Row) -> Observed {
        Observed {
            class: x.class,
            kind: x.kind,
            template: None,
            signature: None,
            strategy: x.strategy,
            success: x.success,
            cost: None,
            burst: false,
            bad_worker: false,
        }
    }

    #[test]
    fn the_ranker_abstains_until_fitted_then_picks_the_best() {
        let params = RankingParams {
            model: ModelParams {
                epsilon: 0.0,
                min_outcomes: 300,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut r = ModelRanker::new(params).unwrap();
        let ladder = [S::DelayedRetry, S::ReducedBatchSize];
        let valid = [S::DelayedRetry, S::DifferentWorker, S::ReducedBatchSize];
        let tried = [0; N];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let c = ctx(&ladder, &valid, &tried);
        assert!(r.choose(&c, Bits::default(), &mut rng).is_none());
        let rows = synthetic(300, 3);
        for (i, x) in rows.iter().enumerate() {
            assert_eq!(r.model().is_some(), i >= 300, "{i}");
            r.update(&observed(x), x.bits, x.tried);
        }
        assert_eq!(r.model().map(SuccessModel::rows), Some(300));
        let ch = r.choose(&c, Bits::default(), &mut rng).unwrap();
        assert_eq!(ch.strategy, S::ReducedBatchSize);
        assert_eq!(ch.propensity, 1.0);
        let flagged = Bits {
            repeat: false,
            flagged: true,
        };
        assert_eq!(r.greedy(&c, flagged).unwrap().strategy, S::DifferentWorker);
        // A kind the model never saw: abstain.
        let other = RankContext {
            kind: FailureKind::Network,
            ..c
        };
        assert!(r.choose(&other, Bits::default(), &mut rng).is_none());
    }

    #[test]
    fn deferred_fits_happen_once_when_resumed() {
        let params = RankingParams {
            model: ModelParams {
                min_outcomes: 50,
                refit_every: 50,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut r = ModelRanker::new(params).unwrap();
        r.defer_fits(true);
        for x in &synthetic(300, 8) {
            r.update(&observed(x), x.bits, x.tried);
        }
        assert!(r.model().is_none());
        r.defer_fits(false);
        assert_eq!(r.model().map(SuccessModel::rows), Some(300));
    }

    #[test]
    fn epsilon_greedy_explores_with_the_logged_propensity() {
        let params = RankingParams {
            model: ModelParams {
                epsilon: 0.3,
                ..Default::default()
            },
            ..Default::default()
        };
        let r = ModelRanker::from_rows(params, &synthetic(300, 4)).unwrap();
        let ladder = [S::ReducedBatchSize];
        let valid = [S::DelayedRetry, S::DifferentWorker, S::ReducedBatchSize];
        let tried = [0; N];
        let c = ctx(&ladder, &valid, &tried);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut best = 0;
        for _ in 0..1000 {
            let ch = r.choose(&c, Bits::default(), &mut rng).unwrap();
            if ch.strategy == S::ReducedBatchSize {
                best += 1;
                assert!((ch.propensity - 0.8).abs() < 1e-12);
            } else {
                assert!((ch.propensity - 0.1).abs() < 1e-12);
            }
        }
        // 1 − ε + ε/3 = 0.8 of the time.
        assert!((700..900).contains(&best), "{best}");
    }

    #[test]
    fn the_fine_key_tells_causes_of_one_kind_apart() {
        // Two causes reported as one kind: under key 1 a reduced batch cures, under key 2
        // another worker does.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let rows: Vec<Row> = (0..800)
            .map(|i| {
                let key = 1 + (i % 2) as u64;
                let s = [S::ReducedBatchSize, S::DifferentWorker][(i / 2) % 2];
                let p = if (key == 1) == (s == S::ReducedBatchSize) {
                    0.9
                } else {
                    0.1
                };
                Row {
                    fine: Some(key),
                    ..row(FailureKind::TpuError, s, rng.gen::<f64>() < p, false)
                }
            })
            .collect();
        let m = SuccessModel::fit(&rows, &ModelParams::default());
        let at = |key, s| {
            m.predict(
                HardwareClass::Gpu,
                FailureKind::TpuError,
                Some(key),
                Bits::default(),
                false,
                s,
                (0.5, 4.0),
            )
        };
        assert!(at(1, S::ReducedBatchSize) > at(1, S::DifferentWorker) + 0.5);
        assert!(at(2, S::DifferentWorker) > at(2, S::ReducedBatchSize) + 0.5);
        // An unknown key falls back to the kind's average: no preference worth the name.
        assert!((at(3, S::DifferentWorker) - at(3, S::ReducedBatchSize)).abs() < 0.15);
    }

    #[test]
    fn sparse_strategies_use_their_smoothed_rate() {
        let mut rows = synthetic(300, 6);
        for _ in 0..3 {
            rows.push(row(FailureKind::OomGpu, S::FallbackCpu, true, false));
        }
        let m = SuccessModel::fit(&rows, &ModelParams::default());
        assert_eq!(
            m.fit_of(S::FallbackCpu),
            &StrategyFit::Rate {
                success: 3.0,
                rows: 3.0
            }
        );
        let p = m.predict(
            HardwareClass::Gpu,
            FailureKind::OomGpu,
            None,
            Bits::default(),
            false,
            S::FallbackCpu,
            (0.15, 4.0),
        );
        assert!((p - (3.0 + 0.6) / 7.0).abs() < 1e-12, "{p}");
    }

    #[test]
    fn each_validation_error_names_its_field() {
        let e = |m: ModelParams| {
            ModelRanker::new(RankingParams {
                model: m,
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
        };
        let d = ModelParams::default;
        for (m, field) in [
            (
                ModelParams {
                    epsilon: 1.0,
                    ..d()
                },
                "ranking.model.epsilon",
            ),
            (ModelParams { alpha: -1.0, ..d() }, "ranking.model.alpha"),
            (
                ModelParams {
                    min_outcomes: 0,
                    ..d()
                },
                "ranking.model.min_outcomes",
            ),
            (ModelParams { window: 10, ..d() }, "ranking.model.window"),
            (
                ModelParams {
                    refit_every: 0,
                    ..d()
                },
                "ranking.model.refit_every",
            ),
            (ModelParams { min_rows: 1, ..d() }, "ranking.model.min_rows"),
        ] {
            let m = e(m);
            assert!(m.contains(field), "{m}");
        }
        assert!(ModelParams::default().check().is_ok());
    }

    #[test]
    fn autotraits() {
        fn is<T: Send + Sync + Clone>() {}
        is::<ModelRanker>();
        is::<SuccessModel>();
    }
}
