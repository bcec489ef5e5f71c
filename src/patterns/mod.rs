//! Tier 3 — failure patterns found online over sliding windows of report time:
//!
//! - **threshold** patterns per hardware class, failure kind, worker and template: at least
//!   `threshold` failures of one key within `window_s`. Counts update with every failure and a
//!   pattern expires as soon as its window no longer holds enough failures — patterns never
//!   outlive their evidence (the earlier system's never expired and hijacked every decision).
//! - **rapid failure** per task: at least `rapid_min_failures` failures whose mean gap
//!   (last − first)/(n − 1) is below `rapid_max_gap_s` (equal timestamps give a gap of 0, never
//!   a division by zero).
//! - **bad worker**: within a hardware class, a worker whose failure count in the window is
//!   improbably high if failures fell on the class's workers uniformly: the exact binomial
//!   upper tail P(X ≥ x | n = class failures, p = 1/workers) below `bad_worker_alpha` divided
//!   by the number of workers tested (Bonferroni), with at least `bad_worker_min_failures`
//!   failures of evidence. Confidence = 1 − Bonferroni-corrected p-value.
//! - **burst** per (hardware class, failure kind): a rate spike against the pair's own
//!   baseline ([`spike`]: at least `spike_min_failures` within `spike_window_s`, `spike_ratio`
//!   times the expectation, Poisson p < `spike_alpha`). The learned ranking keeps a burst's
//!   outcomes apart from the usual evidence of its context.
//! - **suspect workers** (not a reported pattern): the same tail without the correction below
//!   `suspect_alpha`, with at least 2 failures — early, weak evidence that the learned ranking
//!   uses as context (a degrading worker needs other recoveries than a healthy one).
//!
//! Patterns inform decisions without overriding stronger rules or evidence: the engine avoids
//! workers under an active bad-worker pattern when it picks a replacement, and reports them.

pub mod spike;

use std::collections::{HashMap, VecDeque};

use rustc_hash::FxBuildHasher;

use serde::{Deserialize, Serialize};

use crate::config::PatternParams;
use crate::model::{FailureKind, HardwareClass, TaskId, Timestamp, WorkerId};

/// Errors of pattern parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatternError {
    /// A parameter is out of range.
    #[error("invalid pattern parameter {field}: {detail}")]
    Invalid {
        /// Field path.
        field: String,
        /// Why.
        detail: String,
    },
}

impl PatternParams {
    /// Validates the parameters.
    pub fn check(&self) -> Result<(), PatternError> {
        let bad = |f: &str, d: String| PatternError::Invalid {
            field: format!("patterns.{f}"),
            detail: d,
        };
        if !(self.window_s.is_finite() && self.window_s > 0.0) {
            return Err(bad("window_s", format!("{} is not > 0", self.window_s)));
        }
        if self.threshold == 0 {
            return Err(bad("threshold", "must be at least 1".into()));
        }
        if self.rapid_min_failures < 2 {
            return Err(bad("rapid_min_failures", "must be at least 2".into()));
        }
        if !(self.rapid_max_gap_s.is_finite() && self.rapid_max_gap_s > 0.0) {
            return Err(bad(
                "rapid_max_gap_s",
                format!("{} is not > 0", self.rapid_max_gap_s),
            ));
        }
        if !(self.bad_worker_window_s.is_finite() && self.bad_worker_window_s > 0.0) {
            return Err(bad(
                "bad_worker_window_s",
                format!("{} is not > 0", self.bad_worker_window_s),
            ));
        }
        if !(self.bad_worker_alpha > 0.0 && self.bad_worker_alpha < 1.0) {
            return Err(bad(
                "bad_worker_alpha",
                format!("{} is not in (0, 1)", self.bad_worker_alpha),
            ));
        }
        for (name, v) in [
            ("spike_window_s", self.spike_window_s),
            ("spike_baseline_s", self.spike_baseline_s),
            ("spike_max_s", self.spike_max_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(name, format!("{v} is not > 0")));
            }
        }
        if !(self.spike_ratio.is_finite() && self.spike_ratio >= 1.0) {
            return Err(bad(
                "spike_ratio",
                format!("{} is not ≥ 1", self.spike_ratio),
            ));
        }
        if !(self.spike_alpha > 0.0 && self.spike_alpha < 1.0) {
            return Err(bad(
                "spike_alpha",
                format!("{} is not in (0, 1)", self.spike_alpha),
            ));
        }
        if !(self.suspect_alpha > 0.0 && self.suspect_alpha < 1.0) {
            return Err(bad(
                "suspect_alpha",
                format!("{} is not in (0, 1)", self.suspect_alpha),
            ));
        }
        Ok(())
    }
}

/// What a pattern is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    /// Many failures of one hardware class.
    HardwareClass,
    /// Many failures of one kind.
    FailureKind,
    /// Many failures on one worker.
    Worker,
    /// Many failures with one message template.
    Template,
    /// One task failing again and again quickly.
    RapidFailure,
    /// A worker failing far more than its peers.
    BadWorker,
    /// A cluster of similar failures (from clustering).
    Cluster,
    /// One failure kind on one hardware class arriving far faster than its baseline.
    Burst,
}

impl PatternKind {
    /// Name used in reports and the patterns table.
    pub fn as_str(self) -> &'static str {
        match self {
            PatternKind::HardwareClass => "hardware_class",
            PatternKind::FailureKind => "failure_kind",
            PatternKind::Worker => "worker",
            PatternKind::Template => "template",
            PatternKind::RapidFailure => "rapid_failure",
            PatternKind::BadWorker => "bad_worker",
            PatternKind::Cluster => "cluster",
            PatternKind::Burst => "burst",
        }
    }
}

/// A detected pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    /// Kind.
    pub kind: PatternKind,
    /// Key (class, kind, worker id, template id, task id, cluster id).
    pub key: String,
    /// Failures counted in the window.
    pub count: u64,
    /// First failure counted.
    pub first_seen: Timestamp,
    /// Latest failure counted.
    pub last_seen: Timestamp,
    /// Confidence in [0, 1] (see the module docs for each kind's computation).
    pub confidence: f64,
    /// What to do about it.
    pub recommended_action: String,
    /// Human-readable evidence.
    pub description: String,
}

/// Confidence of a cluster pattern (a cluster of similar failures found by clustering):
/// `dominant_share × (1 − e^(−size/20)) / (1 + cohesion)` — the share of the cluster's most
/// frequent failure kind (purity), saturating in its size (20 failures → 0.63, 60 → 0.95), and
/// discounted by its mean distance to the centroid in standardized units (tightness). A large,
/// pure, tight cluster approaches 1; a small, mixed or loose one stays low.
pub fn cluster_confidence(dominant_share: f64, size: u64, cohesion: f64) -> f64 {
    let purity = dominant_share.clamp(0.0, 1.0);
    let mass = 1.0 - (-(size as f64) / 20.0).exp();
    let tight = 1.0 / (1.0 + cohesion.max(0.0));
    (purity * mass * tight).clamp(0.0, 1.0)
}

/// One failure as the detector sees it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// Task.
    pub task: &'a TaskId,
    /// Worker.
    pub worker: &'a WorkerId,
    /// Hardware class.
    pub class: HardwareClass,
    /// Kind.
    pub kind: FailureKind,
    /// Template id, when mined.
    pub template: Option<u64>,
    /// When.
    pub at: Timestamp,
}

/// Most failure times one window keeps. Beyond it (one key failing more than this within its
/// window — an overload, or a replayed log whose times never expire) the oldest are dropped:
/// counts saturate at the cap instead of memory growing without bound.
pub const WINDOW_CAP: usize = 1 << 13;

#[derive(Debug, Clone, Default)]
struct Window(VecDeque<i64>);

impl Window {
    fn push(&mut self, t: i64, from: i64) {
        if self.0.len() >= WINDOW_CAP {
            self.0.pop_front();
        }
        self.0.push_back(t);
        self.expire(from);
    }
    fn expire(&mut self, from: i64) {
        while self.0.front().is_some_and(|&x| x <= from) {
            self.0.pop_front();
        }
    }
}

/// A task's recent failure times and the worker of its latest failure.
#[derive(Debug, Clone, Default)]
struct TaskTrack {
    times: VecDeque<i64>,
    last_worker: Option<WorkerId>,
}

/// One worker's evidence in the bad-worker window (see `PatternDetector::worker_tails`).
struct Tail<'a> {
    id: &'a WorkerId,
    class: HardwareClass,
    /// Its failures (first per task on it).
    n: u64,
    /// Its class's failures.
    total: u64,
    /// Workers of the class.
    peers: usize,
    first: i64,
    last: i64,
    /// Binomial upper tail without correction.
    p_value: f64,
}

/// The online detector.
#[derive(Debug, Clone)]
pub struct PatternDetector {
    params: PatternParams,
    classes: HashMap<HardwareClass, Window, FxBuildHasher>,
    kinds: HashMap<FailureKind, Window, FxBuildHasher>,
    /// Per worker: class, every failure, and failures that were a task's first on it.
    workers: HashMap<WorkerId, (HardwareClass, Window, Window), FxBuildHasher>,
    templates: HashMap<u64, Window, FxBuildHasher>,
    tasks: HashMap<TaskId, TaskTrack, FxBuildHasher>,
    /// Workers per class known from the inventory (0 = use the workers seen).
    fleet: HashMap<HardwareClass, usize>,
    /// Rate spikes per (class, kind).
    spikes: spike::SpikeDetector,
    now: i64,
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; |error| < 1e-13 for x ≥ 0.5).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// P(X ≥ k) for X ~ Binomial(n, p), summed in log space from k up (exact, stable).
pub fn binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // First term in log space, then the ratio recurrence
    // t(i+1) = t(i) · (n − i)/(i + 1) · p/q, stopping once terms are negligible.
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let ln_first =
        ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
            + k as f64 * lp
            + (n - k) as f64 * lq;
    let ratio = p / (1.0 - p);
    let mut term = ln_first.exp();
    let mut total = term;
    let mut i = k;
    while i < n {
        term *= (n - i) as f64 / (i + 1) as f64 * ratio;
        total += term;
        i += 1;
        if term <= total * 1e-17 {
            break;
        }
    }
    total.min(1.0)
}

impl PatternDetector {
    /// A detector with checked parameters.
    pub fn new(params: PatternParams) -> Result<Self, PatternError> {
        params.check()?;
        Ok(PatternDetector {
            spikes: spike::SpikeDetector::new(&params),
            params,
            classes: HashMap::default(),
            kinds: HashMap::default(),
            workers: HashMap::default(),
            templates: HashMap::default(),
            tasks: HashMap::default(),
            fleet: HashMap::new(),
            now: i64::MIN,
        })
    }

    /// Tells the detector how many workers each class has (from the inventory), so that
    /// workers without failures count as peers.
    pub fn set_fleet(&mut self, fleet: HashMap<HardwareClass, usize>) {
        self.fleet = fleet;
    }

    /// Counts one failure.
    pub fn observe(&mut self, o: &Observation<'_>) {
        let t = o.at.as_micros();
        self.now = self.now.max(t);
        let from = self.now - (self.params.window_s * 1e6) as i64;
        self.classes.entry(o.class).or_default().push(t, from);
        self.kinds.entry(o.kind).or_default().push(t, from);
        // get_mut first: no key allocation on the hot path for known workers and tasks.
        // The task first: a task failing again on the same worker is not new evidence
        // against the worker (retries of one broken task are not independent failures).
        let keep = self.params.rapid_min_failures.max(2) as usize;
        let task = match self.tasks.get_mut(o.task) {
            Some(q) => q,
            None => self.tasks.entry(o.task.clone()).or_default(),
        };
        // A burst is many tasks failing, not one task failing again and again: the burst
        // detector counts a task's first failure within the window only.
        if task.times.back().is_none_or(|&x| x <= from) {
            self.spikes.observe(o.class, o.kind, o.at);
        }
        task.times.push_back(t);
        while task.times.len() > keep {
            task.times.pop_front();
        }
        let fresh = task.last_worker.as_ref() != Some(o.worker);
        if fresh {
            task.last_worker = Some(o.worker.clone());
        }
        // get_mut first: no key allocation on the hot path for known workers. A placeholder
        // for "no worker known" (`NULL`, `unknown`) is not a worker to judge.
        let long_from = self.now - (self.params.bad_worker_window_s * 1e6) as i64;
        match self.workers.get_mut(o.worker) {
            _ if o.worker.is_placeholder() => {}
            Some(w) => {
                w.0 = o.class;
                w.1.push(t, from);
                if fresh {
                    w.2.push(t, long_from);
                }
            }
            None => {
                let mut all = Window::default();
                all.push(t, from);
                let mut distinct = Window::default();
                distinct.push(t, long_from);
                self.workers
                    .insert(o.worker.clone(), (o.class, all, distinct));
            }
        }
        if let Some(id) = o.template {
            self.templates.entry(id).or_default().push(t, from);
        }
    }

    /// Whether failures of `kind` on `class` are in a burst (as of their latest failure).
    #[inline]
    pub fn in_burst(&self, class: HardwareClass, kind: FailureKind) -> bool {
        self.spikes.spiking(class, kind)
    }

    /// Drops keys with no failure left in the window (bounded memory over long runs).
    pub fn prune(&mut self) {
        let from = self.now - (self.params.window_s * 1e6) as i64;
        for w in self.classes.values_mut() {
            w.expire(from);
        }
        for w in self.kinds.values_mut() {
            w.expire(from);
        }
        let long_from = self.now - (self.params.bad_worker_window_s * 1e6) as i64;
        self.workers.retain(|_, (_, w, d)| {
            w.expire(from);
            d.expire(long_from);
            !w.0.is_empty() || !d.0.is_empty()
        });
        self.templates.retain(|_, w| {
            w.expire(from);
            !w.0.is_empty()
        });
        self.tasks
            .retain(|_, q| q.times.back().is_some_and(|&t| t > from));
    }

    fn from(&self, at: Timestamp) -> i64 {
        at.as_micros().max(self.now) - (self.params.window_s * 1e6) as i64
    }

    fn live(w: &Window, from: i64) -> (u64, i64, i64) {
        // The window is sorted by time (timestamps only grow within a stream, and pushes keep
        // arrival order): skip the expired prefix, count the rest.
        let skip = w.0.iter().take_while(|&&x| x <= from).count();
        let n = (w.0.len() - skip) as u64;
        (
            n,
            w.0.get(skip).copied().unwrap_or(0),
            w.0.back().copied().unwrap_or(0),
        )
    }

    /// Workers under an active bad-worker pattern at `at`.
    pub fn bad_workers(&self, at: Timestamp) -> Vec<WorkerId> {
        self.bad_worker_patterns(at)
            .into_iter()
            .map(|(w, _)| w)
            .collect()
    }

    /// Workers whose failure count is improbably high for one of their class's workers
    /// without the multiple-testing correction (p < `suspect_alpha`, at least 2 failures),
    /// the workers under a bad-worker pattern included; sorted by id.
    pub fn suspect_workers(&self, at: Timestamp) -> Vec<WorkerId> {
        self.worker_standing(at).1
    }

    /// [`PatternDetector::bad_workers`] and [`PatternDetector::suspect_workers`] in one pass.
    pub fn worker_standing(&self, at: Timestamp) -> (Vec<WorkerId>, Vec<WorkerId>) {
        let mut suspects = Vec::new();
        let bad = self
            .bad_worker_patterns_and(at, |t| {
                if t.n >= 2 && t.p_value < self.params.suspect_alpha {
                    suspects.push(t.id.clone());
                }
            })
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        suspects.sort_unstable();
        (bad, suspects)
    }

    /// Calls `f` for every worker above its share of its class's failures in the bad-worker
    /// window with at least `min` failures; classes with fewer than 2 workers are skipped.
    fn worker_tails(&self, at: Timestamp, min: u64, mut f: impl FnMut(&Tail<'_>)) {
        let from = at.as_micros().max(self.now) - (self.params.bad_worker_window_s * 1e6) as i64;
        let mut per_class: HashMap<HardwareClass, Vec<(&WorkerId, u64, i64, i64)>> = HashMap::new();
        for (id, (class, _, distinct)) in &self.workers {
            let (n, first, last) = Self::live(distinct, from);
            if n > 0 {
                per_class
                    .entry(*class)
                    .or_default()
                    .push((id, n, first, last));
            }
        }
        for (class, ws) in per_class {
            let total: u64 = ws.iter().map(|w| w.1).sum();
            let peers = self.fleet.get(&class).copied().unwrap_or(0).max(ws.len());
            if peers < 2 {
                continue;
            }
            let p = 1.0 / peers as f64;
            for (id, n, first, last) in ws {
                // Not above its share: the p-value is large; skip the sum.
                if n < min || n as f64 <= total as f64 * p {
                    continue;
                }
                f(&Tail {
                    id,
                    class,
                    n,
                    total,
                    peers,
                    first,
                    last,
                    p_value: binomial_upper_tail(n, total, p),
                });
            }
        }
    }

    fn bad_worker_patterns(&self, at: Timestamp) -> Vec<(WorkerId, Pattern)> {
        self.bad_worker_patterns_and(at, |_| {})
    }

    /// The bad-worker patterns, calling `also` with every worker's tail (at least 2 failures).
    fn bad_worker_patterns_and(
        &self,
        at: Timestamp,
        mut also: impl FnMut(&Tail<'_>),
    ) -> Vec<(WorkerId, Pattern)> {
        let mut out = Vec::new();
        let min = self.params.bad_worker_min_failures;
        self.worker_tails(at, min.min(2), |tail| {
            also(tail);
            if tail.n < min {
                return;
            }
            let &Tail {
                id,
                class,
                n,
                total,
                peers,
                first,
                last,
                p_value,
            } = tail;
            let pv = (p_value * peers as f64).min(1.0);
            if pv < self.params.bad_worker_alpha {
                let expected = total as f64 / peers as f64;
                out.push((
                    id.clone(),
                    Pattern {
                        kind: PatternKind::BadWorker,
                        key: id.to_string(),
                        count: n,
                        first_seen: Timestamp::from_micros(first),
                        last_seen: Timestamp::from_micros(last),
                        confidence: 1.0 - pv,
                        recommended_action: format!("quarantine worker {id} and inspect it"),
                        description: format!(
                            "{n} of {total} {class} task failures (first per task on a worker) in the last {:.1} days on {id}, {:.1}× the {expected:.1} expected over {peers} workers (Bonferroni p = {pv:.2e})",
                            self.params.bad_worker_window_s / 86_400.0,
                            n as f64 / expected.max(1e-9),
                        ),
                    },
                ));
            }
        });
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every active pattern at `at`, most severe (confidence, then count) first.
    pub fn patterns(&self, at: Timestamp) -> Vec<Pattern> {
        let from = self.from(at);
        let thr = self.params.threshold as u64;
        let window = self.params.window_s;
        let mut out: Vec<Pattern> = Vec::new();
        let mut threshold = |kind: PatternKind, key: String, w: &Window, action: String| {
            let (n, first, last) = Self::live(w, from);
            if n >= thr {
                out.push(Pattern {
                    kind,
                    key: key.clone(),
                    count: n,
                    first_seen: Timestamp::from_micros(first),
                    last_seen: Timestamp::from_micros(last),
                    // Share of the window's threshold exceeded, saturating: n = threshold → 0.5.
                    confidence: 1.0 - 0.5 * (thr as f64 / n as f64),
                    recommended_action: action,
                    description: format!(
                        "{n} failures of {} {key} within {window:.0} s (threshold {thr})",
                        kind.as_str().replace('_', " ")
                    ),
                });
            }
        };
        for (c, w) in &self.classes {
            let action = if c.is_browser() {
                "restart browser instances or use other browsers".to_string()
            } else {
                format!("check the {c} fleet; consider other workers or hardware")
            };
            threshold(PatternKind::HardwareClass, c.to_string(), w, action);
        }
        for (k, w) in &self.kinds {
            threshold(
                PatternKind::FailureKind,
                k.to_string(),
                w,
                format!("investigate the rise of {k}"),
            );
        }
        for (id, (_, w, _)) in &self.workers {
            threshold(
                PatternKind::Worker,
                id.to_string(),
                w,
                format!("inspect worker {id}"),
            );
        }
        for (id, w) in &self.templates {
            threshold(
                PatternKind::Template,
                format!("{id}"),
                w,
                "investigate this message template".into(),
            );
        }
        for (task, track) in &self.tasks {
            let ts = &track.times;
            let n = ts.len();
            if n < self.params.rapid_min_failures as usize {
                continue;
            }
            let (first, last) = (ts[0], ts[n - 1]);
            if last <= from {
                continue;
            }
            let gap = (last - first) as f64 / 1e6 / (n - 1) as f64;
            if gap < self.params.rapid_max_gap_s {
                out.push(Pattern {
                    kind: PatternKind::RapidFailure,
                    key: task.to_string(),
                    count: n as u64,
                    first_seen: Timestamp::from_micros(first),
                    last_seen: Timestamp::from_micros(last),
                    confidence: (0.6 + 0.35 * (1.0 - gap / self.params.rapid_max_gap_s)).min(0.95),
                    recommended_action: "stop retrying blindly: change the task or escalate".into(),
                    description: format!(
                        "task {task} failed {n} times, {gap:.1} s apart on average"
                    ),
                });
            }
        }
        out.extend(self.bad_worker_patterns(at).into_iter().map(|(_, p)| p));
        for b in self.spikes.spikes(at) {
            let p_value = spike::poisson_upper_tail(b.count, b.expected);
            let action = "find the common cause (a release, a switch, a rack, a data shard); \
                          move work off the class while it lasts";
            out.push(Pattern {
                kind: PatternKind::Burst,
                key: format!("{} {}", b.class, b.kind),
                count: b.count,
                first_seen: b.first_seen,
                last_seen: b.last_seen,
                confidence: (1.0 - p_value).clamp(0.0, 1.0),
                recommended_action: action.into(),
                description: format!(
                    "{} failures of {} on {} within {:.0} s, {:.1}× the {:.1} expected",
                    b.count,
                    b.kind,
                    b.class,
                    self.params.spike_window_s,
                    b.count as f64 / b.expected.max(1e-9),
                    b.expected
                ),
            });
        }
        out.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then(b.count.cmp(&a.count))
                .then(a.kind.cmp(&b.kind))
                .then(a.key.cmp(&b.key))
        });
        out
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    #[test]
    fn a_window_is_bounded_even_when_nothing_expires() {
        let mut w = Window::default();
        for t in 0..(WINDOW_CAP as i64 + 10) {
            w.push(t, -1);
        }
        assert_eq!(w.0.len(), WINDOW_CAP);
        assert_eq!(w.0.front(), Some(&10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn obs<'a>(task: &'a TaskId, worker: &'a WorkerId, at: f64) -> Observation<'a> {
        Observation {
            task,
            worker,
            class: HardwareClass::Gpu,
            kind: FailureKind::CudaError,
            template: Some(7),
            at: Timestamp::from_secs_f64(at),
        }
    }

    #[test]
    fn binomial_tail_matches_known_values() {
        // P(X ≥ 3 | n = 10, p = 0.5) = 1 - (1 + 10 + 45)/1024
        assert_relative_eq!(
            binomial_upper_tail(3, 10, 0.5),
            1.0 - 56.0 / 1024.0,
            epsilon = 1e-12
        );
        assert_relative_eq!(
            binomial_upper_tail(10, 10, 0.5),
            1.0 / 1024.0,
            epsilon = 1e-15
        );
        assert_eq!(binomial_upper_tail(0, 10, 0.1), 1.0);
        assert_eq!(binomial_upper_tail(11, 10, 0.1), 0.0);
        assert!(binomial_upper_tail(60, 1000, 0.01) < 1e-15);
        assert_relative_eq!(ln_gamma(5.0), 24f64.ln(), epsilon = 1e-12);
    }

    /// Regression: with a 7-day window this worker was never called bad (14 failures in a
    /// week against 2.6 expected gives a Bonferroni p of 1.2e-3 over 1,600 peers), so the
    /// ranking treated its failures as a healthy worker's (fresh fleet tpu-v5e-spot-inference).
    #[test]
    fn a_slow_bad_worker_in_a_large_fleet_is_called_bad_and_stays_bad() {
        // 1,600 TPUs: 1,599 share 600 new failing tasks a day evenly (each about 2.6 a week),
        // and one fails twice a day. Over 28 days, its standing at the end of every day.
        let mut d = PatternDetector::new(PatternParams::default()).unwrap();
        d.set_fleet(HashMap::from([(HardwareClass::Tpu, 1600)]));
        let healthy: Vec<WorkerId> = (0..1599)
            .map(|i| WorkerId::new(&format!("tpu-{i}")).unwrap())
            .collect();
        let bad = WorkerId::new("tpu-bad").unwrap();
        let at = |step: usize| Timestamp::from_secs_f64(step as f64 * 144.0);
        let observe = |d: &mut PatternDetector, task: &TaskId, worker: &WorkerId, step| {
            d.observe(&Observation {
                task,
                worker,
                class: HardwareClass::Tpu,
                kind: FailureKind::TpuError,
                template: None,
                at: at(step),
            })
        };
        let mut called = Vec::new();
        for step in 0..28 * 600 {
            let task = TaskId::new(&format!("h{step}")).unwrap();
            observe(&mut d, &task, &healthy[step % healthy.len()], step);
            if step % 300 == 0 {
                let task = TaskId::new(&format!("b{step}")).unwrap();
                observe(&mut d, &task, &bad, step);
            }
            if step % 600 == 599 {
                let (b, _) = d.worker_standing(at(step));
                assert!(
                    b.iter().all(|w| *w == bad),
                    "a healthy worker called bad: {b:?}"
                );
                called.push(b.contains(&bad));
            }
        }
        let first = called.iter().position(|&c| c).expect("never called bad");
        assert!(first < 14, "called bad only on day {}", first + 1);
        assert!(called[first..].iter().all(|&c| c), "released: {called:?}");
    }

    #[test]
    fn threshold_patterns_expire_with_their_window() {
        let mut d = PatternDetector::new(PatternParams::default()).unwrap();
        let w = WorkerId::new("g1").unwrap();
        for i in 0..3 {
            let t = TaskId::new(&format!("t{i}")).unwrap();
            d.observe(&obs(&t, &w, i as f64 * 10.0));
        }
        let ps = d.patterns(Timestamp::from_secs_f64(30.0));
        assert!(ps
            .iter()
            .any(|p| p.kind == PatternKind::Worker && p.key == "g1" && p.count == 3));
        assert!(ps
            .iter()
            .any(|p| p.kind == PatternKind::Template && p.key == "7"));
        // An hour later nothing is left.
        assert!(d.patterns(Timestamp::from_secs_f64(3_700.0)).is_empty());
    }

    #[test]
    fn a_burst_of_new_tasks_is_reported_and_one_task_failing_fast_is_not() {
        let mut d = PatternDetector::new(PatternParams::default()).unwrap();
        let w = WorkerId::new("g1").unwrap();
        // A day of one new task failing every 30 minutes.
        let mut t = 0.0;
        for i in 0..48 {
            let id = TaskId::new(&format!("n{i}")).unwrap();
            d.observe(&obs(&id, &w, t));
            t += 1800.0;
        }
        // One task failing 40 times in 40 minutes: retries, not a burst.
        let one = TaskId::new("retrying").unwrap();
        for _ in 0..40 {
            d.observe(&obs(&one, &w, t));
            t += 60.0;
        }
        assert!(!d.in_burst(HardwareClass::Gpu, FailureKind::CudaError));
        // 30 new tasks in 30 minutes: a burst.
        for i in 0..30 {
            let id = TaskId::new(&format!("b{i}")).unwrap();
            d.observe(&obs(&id, &w, t));
            t += 60.0;
        }
        assert!(d.in_burst(HardwareClass::Gpu, FailureKind::CudaError));
        let ps = d.patterns(Timestamp::from_secs_f64(t));
        let b = ps
            .iter()
            .find(|p| p.kind == PatternKind::Burst)
            .expect("a burst pattern");
        assert_eq!(b.key, "GPU cuda_error");
        assert!(b.count >= 30, "{}", b.count);
        assert!(b.confidence > 0.999, "{}", b.confidence);
        assert!(b.description.contains("expected"), "{}", b.description);
        // Two windows later it is gone.
        assert!(!d
            .patterns(Timestamp::from_secs_f64(t + 7200.0))
            .iter()
            .any(|p| p.kind == PatternKind::Burst));
    }

    #[test]
    fn rapid_failure_with_equal_timestamps_does_not_divide_by_zero() {
        let mut d = PatternDetector::new(PatternParams::default()).unwrap();
        let t = TaskId::new("t").unwrap();
        let w = WorkerId::new("w").unwrap();
        for _ in 0..3 {
            d.observe(&obs(&t, &w, 5.0));
        }
        let p = d.patterns(Timestamp::from_secs_f64(5.0));
        let r = p
            .iter()
            .find(|p| p.kind == PatternKind::RapidFailure)
            .unwrap();
        assert!(r.confidence.is_finite() && r.confidence <= 0.95);
        assert!(r.description.contains("0.0 s apart"));
    }

    /// A detector that knows of 50 GPU workers, and their ids g0..g49.
    fn gpu_fleet_of_50() -> (PatternDetector, Vec<WorkerId>) {
        let mut d = PatternDetector::new(PatternParams::default()).unwrap();
        let mut fleet = HashMap::new();
        fleet.insert(HardwareClass::Gpu, 50);
        d.set_fleet(fleet);
        let ids = (0..50)
            .map(|i| WorkerId::new(&format!("g{i}")).unwrap())
            .collect();
        (d, ids)
    }

    #[test]
    fn a_bad_worker_stands_out_and_fair_ones_do_not() {
        let (mut d, ids) = gpu_fleet_of_50();
        let mut clock = 0.0;
        let mut n = 0;
        let mut next_task = || {
            n += 1;
            TaskId::new(&format!("t{n}")).unwrap()
        };
        for _ in 0..4 {
            for w in &ids {
                clock += 1.0;
                d.observe(&obs(&next_task(), w, clock));
            }
        }
        for _ in 0..25 {
            clock += 1.0;
            d.observe(&obs(&next_task(), &ids[7], clock));
        }
        // One task failing over and over on a worker is one piece of evidence, not many.
        let stuck = TaskId::new("stuck").unwrap();
        for _ in 0..40 {
            clock += 1.0;
            d.observe(&obs(&stuck, &ids[3], clock));
        }
        let bad = d.bad_workers(Timestamp::from_secs_f64(clock));
        assert_eq!(bad, vec![ids[7].clone()]);
        let p = d.patterns(Timestamp::from_secs_f64(clock));
        let b = p.iter().find(|p| p.kind == PatternKind::BadWorker).unwrap();
        assert!(
            b.confidence > 0.999 && b.description.contains("Bonferroni"),
            "{b:?}"
        );
    }

    /// Regression (BGL's 2k sample): a log's placeholder for "no node" (`NULL`) collected the
    /// failures of every line without one and was called a bad worker.
    #[test]
    fn a_placeholder_worker_id_is_never_called_bad() {
        let (mut d, ids) = gpu_fleet_of_50();
        let null = WorkerId::new("NULL").unwrap();
        let mut clock = 0.0;
        for (n, w) in ids.iter().chain(std::iter::repeat_n(&null, 30)).enumerate() {
            clock += 1.0;
            d.observe(&obs(&TaskId::new(&format!("t{n}")).unwrap(), w, clock));
        }
        let at = Timestamp::from_secs_f64(clock);
        assert!(d.bad_workers(at).is_empty(), "{:?}", d.bad_workers(at));
        let (_, suspects) = d.worker_standing(at);
        assert!(suspects.is_empty(), "{suspects:?}");
        // The same failures on a real id are a bad worker.
        let (mut d, ids) = gpu_fleet_of_50();
        for (n, w) in ids
            .iter()
            .chain(std::iter::repeat_n(&ids[0], 30))
            .enumerate()
        {
            d.observe(&obs(
                &TaskId::new(&format!("t{n}")).unwrap(),
                w,
                n as f64 + 1.0,
            ));
        }
        assert_eq!(d.bad_workers(at), vec![ids[0].clone()]);
    }

    #[test]
    fn a_worker_with_a_modest_excess_is_suspect_before_it_is_bad() {
        let (mut d, ids) = gpu_fleet_of_50();
        let mut clock = 0.0;
        let mut n = 0;
        let mut fail = |d: &mut PatternDetector, w: &WorkerId| {
            n += 1;
            clock += 1.0;
            d.observe(&obs(&TaskId::new(&format!("t{n}")).unwrap(), w, clock));
        };
        for _ in 0..2 {
            for w in &ids {
                fail(&mut d, w);
            }
        }
        // 8 failures where 2 are expected: P(X ≥ 8 | 106, 1/50) ≈ 1e-3 — improbable for
        // one worker, not after testing 50 (Bonferroni ≈ 0.05 > α = 0.001).
        for _ in 0..6 {
            fail(&mut d, &ids[7]);
        }
        let at = Timestamp::from_secs_f64(200.0);
        assert!(d.bad_workers(at).is_empty());
        assert_eq!(d.suspect_workers(at), vec![ids[7].clone()]);
        // Evidence keeps coming: the suspect is called bad (and stays on the suspect list).
        for _ in 0..12 {
            fail(&mut d, &ids[7]);
        }
        let at = Timestamp::from_secs_f64(300.0);
        assert_eq!(d.bad_workers(at), vec![ids[7].clone()]);
        assert_eq!(d.suspect_workers(at), vec![ids[7].clone()]);
    }

    #[test]
    fn cluster_confidence_rewards_purity_size_and_tightness() {
        let big_pure_tight = cluster_confidence(1.0, 200, 0.0);
        assert!(big_pure_tight > 0.99);
        assert!(cluster_confidence(0.5, 200, 0.0) < big_pure_tight);
        assert!(cluster_confidence(1.0, 5, 0.0) < cluster_confidence(1.0, 50, 0.0));
        assert!(cluster_confidence(1.0, 200, 2.0) < big_pure_tight);
        assert!((cluster_confidence(1.0, 20, 0.0) - (1.0 - (-1f64).exp())).abs() < 1e-12);
        assert_eq!(cluster_confidence(f64::NAN.max(0.0), 0, 0.0), 0.0);
    }

    #[test]
    fn each_validation_error() {
        let e = |p: PatternParams| p.check().unwrap_err().to_string();
        assert!(e(PatternParams {
            window_s: 0.0,
            ..Default::default()
        })
        .contains("patterns.window_s"));
        assert!(e(PatternParams {
            threshold: 0,
            ..Default::default()
        })
        .contains("threshold"));
        assert!(e(PatternParams {
            rapid_min_failures: 1,
            ..Default::default()
        })
        .contains("rapid_min_failures"));
        assert!(e(PatternParams {
            rapid_max_gap_s: -1.0,
            ..Default::default()
        })
        .contains("rapid_max_gap_s"));
        assert!(e(PatternParams {
            bad_worker_alpha: 1.5,
            ..Default::default()
        })
        .contains("bad_worker_alpha"));
        assert!(e(PatternParams {
            suspect_alpha: 0.0,
            ..Default::default()
        })
        .contains("patterns.suspect_alpha"));
    }
}
