//! Tier 3 — failure patterns found online over sliding windows of report time:
//!
//! - **threshold** patterns per hardware class, failure kind and worker (and per message
//!   template when the caller passes a template id with each failure — the engine does not,
//!   so the online detector never reports template patterns; the batch analysis turns
//!   threshold patterns off altogether, see `analyze`): at least `threshold` failures of one
//!   key within `window_s`. Counts update with every failure and a pattern expires as soon as
//!   its window no longer holds enough failures — patterns never outlive their evidence (the
//!   earlier system's never expired and hijacked every decision).
//! - **rapid failure** per task: at least `rapid_min_failures` failures whose mean gap
//!   (last − first)/(n − 1) is below `rapid_max_gap_s` (equal timestamps give a gap of 0, never
//!   a division by zero). The pattern reports the whole current run — every failure since the
//!   latest `rapid_min_failures` first became rapid, and its start — not only the latest few.
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
//! Cluster patterns ([`PatternKind::Cluster`], [`cluster_confidence`]) come from clustering in
//! the batch analysis, not from this detector.
//!
//! Patterns inform decisions without overriding stronger rules or evidence: the engine avoids
//! workers under an active bad-worker pattern when it picks a replacement, and reports them.
//! They are computed on demand from the detector's in-memory windows and are not persisted:
//! nothing writes `history/patterns/` (a restarted engine rebuilds its windows from the
//! failures it replays).
//!
//! Report times may arrive out of order. Every window is kept sorted by time and expires by
//! value: a late failure is inserted at its own time, and one older than a window's start
//! never enters that window (it is counted in [`PatternDetector::late`] when it is older than
//! the `window_s` windows' start). Patterns are evaluated at the later of the time asked for
//! and the latest report time seen ([`PatternDetector::now`]).

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

/// Longest window (or gap, refresh period) the parameters accept, seconds: 10 years. Longer
/// ones are no window at all, and in microseconds they would leave the range of report times.
pub const MAX_WINDOW_S: f64 = 10.0 * 365.0 * 86_400.0;

impl PatternParams {
    /// Validates the parameters.
    pub fn check(&self) -> Result<(), PatternError> {
        let bad = |f: &str, d: String| PatternError::Invalid {
            field: format!("patterns.{f}"),
            detail: d,
        };
        // Every window and gap: finite, > 0 and at most `MAX_WINDOW_S`.
        for (name, v) in [
            ("window_s", self.window_s),
            ("rapid_max_gap_s", self.rapid_max_gap_s),
            ("bad_worker_window_s", self.bad_worker_window_s),
            ("spike_window_s", self.spike_window_s),
            ("spike_baseline_s", self.spike_baseline_s),
            ("spike_max_s", self.spike_max_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(name, format!("{v} is not > 0")));
            }
            if v > MAX_WINDOW_S {
                return Err(bad(name, format!("{v} is above {MAX_WINDOW_S} (10 years)")));
            }
        }
        if self.threshold == 0 {
            return Err(bad("threshold", "must be at least 1".into()));
        }
        if self.rapid_min_failures < 2 {
            return Err(bad("rapid_min_failures", "must be at least 2".into()));
        }
        if !(self.bad_worker_alpha > 0.0 && self.bad_worker_alpha < 1.0) {
            return Err(bad(
                "bad_worker_alpha",
                format!("{} is not in (0, 1)", self.bad_worker_alpha),
            ));
        }
        for (name, v) in [
            ("refresh_s", self.refresh_s),
            ("refresh_max_s", self.refresh_max_s),
        ] {
            // NaN is not in the range either.
            if !(0.0..=MAX_WINDOW_S).contains(&v) {
                return Err(bad(name, format!("{v} is not in [0, {MAX_WINDOW_S}]")));
            }
        }
        if self.refresh_failures == 0 {
            return Err(bad("refresh_failures", "must be at least 1".into()));
        }
        if self.spike_baseline_s < self.spike_window_s {
            return Err(bad(
                "spike_baseline_s",
                format!(
                    "{} is below spike_window_s = {}: the baseline must be at least one window",
                    self.spike_baseline_s, self.spike_window_s
                ),
            ));
        }
        if self.spike_min_failures == 0 {
            return Err(bad("spike_min_failures", "must be at least 1".into()));
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

/// Failure times within a window (µs), sorted, oldest first.
#[derive(Debug, Clone, Default)]
struct Window(VecDeque<i64>);

/// Inserts `t` into the sorted `q` at its place (after equal times): a push at the back for
/// in-order times, a search only for late ones. Returns its index.
fn insert_sorted(q: &mut VecDeque<i64>, t: i64) -> usize {
    let i = if q.back().is_none_or(|&x| x <= t) {
        q.len()
    } else {
        q.partition_point(|&x| x <= t)
    };
    q.insert(i, t);
    i
}

impl Window {
    /// Counts a failure at `t` in the window that starts after `from`: inserted at its time
    /// (the window stays sorted whatever the arrival order), or left out when it is not
    /// after `from` — a late failure older than the window is not evidence of the window.
    fn push(&mut self, t: i64, from: i64) {
        if t > from {
            if self.0.len() >= WINDOW_CAP {
                self.0.pop_front();
            }
            insert_sorted(&mut self.0, t);
        }
        self.expire(from);
    }
    fn expire(&mut self, from: i64) {
        while self.0.front().is_some_and(|&x| x <= from) {
            self.0.pop_front();
        }
    }
}

/// A task's recent failure times, its current rapid run and the worker of its latest failure.
#[derive(Debug, Clone, Default)]
struct TaskTrack {
    /// Its latest `rapid_min_failures` failure times (µs), sorted, oldest first.
    times: VecDeque<i64>,
    /// The current rapid run — `(first failure, failures)` since `times` last became rapid —
    /// or `None` while `times` is not rapid.
    run: Option<(i64, u64)>,
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
    /// Latest report time seen (µs), `i64::MIN` before any.
    now: i64,
    /// Earliest report time seen (µs), `i64::MAX` before any.
    start: i64,
    /// Failures that arrived older than the start of the `window_s` windows.
    late: u64,
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

/// Mean gap, seconds, between `n` ≥ 2 sorted failure times from `first` to `last` (0 for
/// equal times; `n` < 2 gives the whole span).
fn mean_gap_s(first: i64, last: i64, n: u64) -> f64 {
    last.saturating_sub(first) as f64 / 1e6 / n.saturating_sub(1).max(1) as f64
}

/// A span of report time for a description: days from two days on, then hours, minutes,
/// seconds.
fn span_text(s: f64) -> String {
    if s >= 2.0 * 86_400.0 {
        format!("{:.1} days", s / 86_400.0)
    } else if s >= 2.0 * 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s >= 120.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
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
            start: i64::MAX,
            late: 0,
        })
    }

    /// The latest report time seen (the time patterns are evaluated at when asked for an
    /// earlier one), `None` before any failure.
    pub fn now(&self) -> Option<Timestamp> {
        (self.now != i64::MIN).then(|| Timestamp::from_micros(self.now))
    }

    /// Failures that arrived older than the start of the `window_s` windows (later report
    /// times had been seen already) and were left out of them. A feed in time order has none.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// `window_s` in µs (at most `MAX_WINDOW_S`, checked).
    fn window_us(&self) -> i64 {
        (self.params.window_s * 1e6) as i64
    }

    /// `bad_worker_window_s` in µs.
    fn long_window_us(&self) -> i64 {
        (self.params.bad_worker_window_s * 1e6) as i64
    }

    /// Tells the detector how many workers each class has (from the inventory), so that
    /// workers without failures count as peers.
    pub fn set_fleet(&mut self, fleet: HashMap<HardwareClass, usize>) {
        self.fleet = fleet;
    }

    /// Counts one failure. Times may arrive out of order (see the module docs).
    pub fn observe(&mut self, o: &Observation<'_>) {
        let t = o.at.as_micros();
        self.now = self.now.max(t);
        self.start = self.start.min(t);
        let window = self.window_us();
        let from = self.now.saturating_sub(window);
        if t <= from && t < self.now {
            self.late += 1;
        }
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
        // detector counts a task's first failure within the window only — none of its known
        // failures within `window_s` before it (nor after it, for a late one).
        let lo = t.saturating_sub(window);
        if task
            .times
            .iter()
            .all(|&x| x <= lo || (x > t && x.saturating_sub(t) >= window))
        {
            self.spikes.observe(o.class, o.kind, o.at);
        }
        let latest = task.times.back().is_none_or(|&x| x <= t);
        let at = insert_sorted(&mut task.times, t);
        let dropped = task.times.len().saturating_sub(keep);
        for _ in 0..dropped {
            task.times.pop_front();
        }
        // Unless it fell off the front at once (a late failure older than every kept one),
        // the latest times changed: is the task (still) failing rapidly?
        if at >= dropped {
            let n = task.times.len();
            let rapid = n >= self.params.rapid_min_failures as usize
                && mean_gap_s(task.times[0], task.times[n - 1], n as u64)
                    < self.params.rapid_max_gap_s;
            task.run = match (rapid, task.run) {
                (false, _) => None,
                (true, Some((first, count))) => Some((first.min(t), count + 1)),
                (true, None) => Some((task.times[0], n as u64)),
            };
        }
        let fresh = task.last_worker.as_ref() != Some(o.worker);
        // The worker of the task's latest failure (a late one does not replace it).
        if fresh && latest {
            task.last_worker = Some(o.worker.clone());
        }
        // get_mut first: no key allocation on the hot path for known workers. A placeholder
        // for "no worker known" (`NULL`, `unknown`) is not a worker to judge.
        let long_from = self.now.saturating_sub(self.long_window_us());
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
        let from = self.now.saturating_sub(self.window_us());
        for w in self.classes.values_mut() {
            w.expire(from);
        }
        for w in self.kinds.values_mut() {
            w.expire(from);
        }
        let long_from = self.now.saturating_sub(self.long_window_us());
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

    /// The time patterns are evaluated at when asked at `at`: never before the latest
    /// report time seen.
    fn eval_at(&self, at: Timestamp) -> i64 {
        at.as_micros().max(self.now)
    }

    fn from(&self, at: Timestamp) -> i64 {
        self.eval_at(at).saturating_sub(self.window_us())
    }

    fn live(w: &Window, from: i64) -> (u64, i64, i64) {
        // The window is sorted by time (late failures are inserted at their place): skip the
        // expired prefix, count the rest.
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
        let from = self.eval_at(at).saturating_sub(self.long_window_us());
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
        // The span the evidence covers: the window, or the history seen when it is shorter.
        let span = span_text(
            self.params
                .bad_worker_window_s
                .min(self.eval_at(at).saturating_sub(self.start).max(0) as f64 / 1e6),
        );
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
                            "{n} of {total} {class} task failures (first per task on a worker) in the last {span} on {id}, {:.1}× the {} expected over {peers} workers (Bonferroni p = {pv:.2e})",
                            n as f64 / expected.max(1e-9),
                            small(expected),
                        ),
                    },
                ));
            }
        });
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The (class, kind) pairs in a burst at `at` (or at the latest report time seen, when
    /// later), with their failures in the spike window ending then.
    pub fn bursts(&self, at: Timestamp) -> Vec<spike::Spike> {
        self.spikes.spikes(Timestamp::from_micros(self.eval_at(at)))
    }

    /// Every active pattern at `at`, most severe (confidence, then count) first. They are
    /// evaluated at the later of `at` and the latest report time seen ([`Self::now`]): the
    /// windows run on report time, so a wall-clock `at` behind it does not hide what they
    /// hold, and the earliest `at` evaluates at the latest report time.
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
            // Sorted: the gap is never negative, whatever the arrival order.
            let (first, last) = (ts[0], ts[n - 1]);
            if last <= from {
                continue;
            }
            let gap = mean_gap_s(first, last, n as u64);
            if gap < self.params.rapid_max_gap_s {
                // The whole run, not only its latest failures (`track.run` is set whenever
                // `ts` is rapid; the fallback is the latest failures alone).
                let (start, count) = track.run.unwrap_or((first, n as u64));
                let mean = mean_gap_s(start, last, count);
                out.push(Pattern {
                    kind: PatternKind::RapidFailure,
                    key: task.to_string(),
                    count,
                    first_seen: Timestamp::from_micros(start),
                    last_seen: Timestamp::from_micros(last),
                    // From the latest failures: how rapid the task is failing now.
                    confidence: (0.6 + 0.35 * (1.0 - gap / self.params.rapid_max_gap_s)).min(0.95),
                    recommended_action: "stop retrying blindly: change the task or escalate".into(),
                    description: format!(
                        "task {task} failed {count} times, {mean:.1} s apart on average"
                    ),
                });
            }
        }
        out.extend(self.bad_worker_patterns(at).into_iter().map(|(_, p)| p));
        for b in self.bursts(at) {
            // The window as it stands at `at`, and what passed the test: the window at its
            // fullest while the burst lasted (an audit found "7 failures, 3.6× the 2.0
            // expected" reported against thresholds of 8 and 4×, and nothing more).
            let (peak, expected) = b.peak;
            let p_value = spike::poisson_upper_tail(peak, expected);
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
                description: {
                    let now = format!(
                        "{} tasks failed with {} on {} within {:.0} s (a task's first failure in the window counted), {:.1}× the {} expected",
                        b.count,
                        b.kind,
                        b.class,
                        self.params.spike_window_s,
                        b.count as f64 / b.expected.max(1e-9),
                        small(b.expected),
                    );
                    // The peak only when it says more than the window as it stands (an audit:
                    // the same numbers twice).
                    if peak == b.count && small(expected) == small(b.expected) {
                        now
                    } else {
                        format!(
                            "{now}; at the peak {peak}, {:.1}× the {} expected",
                            peak as f64 / expected.max(1e-9),
                            small(expected)
                        )
                    }
                },
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

/// An expected count as a description gives it: one decimal, or two significant digits below
/// 0.1 (an audit: "680.6× the 0.0 expected", where 0.018 was expected).
fn small(x: f64) -> String {
    if !(x.is_finite() && x > 0.0) || x >= 0.1 {
        return format!("{x:.1}");
    }
    let decimals = (-x.log10()).ceil() as usize + 1;
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod window_tests {
    use super::*;

    /// Regression (analyze audit): "680.6× the 0.0 expected" where 0.018 was expected.
    #[test]
    fn small_expected_counts_keep_two_significant_digits() {
        assert_eq!(small(2.04), "2.0");
        assert_eq!(small(0.1), "0.1");
        assert_eq!(small(0.0183), "0.018");
        assert_eq!(small(0.0042), "0.0042");
        assert_eq!(small(0.0), "0.0");
    }

    #[test]
    fn a_window_is_bounded_even_when_nothing_expires() {
        let mut w = Window::default();
        for t in 0..(WINDOW_CAP as i64 + 10) {
            w.push(t, -1);
        }
        assert_eq!(w.0.len(), WINDOW_CAP);
        assert_eq!(w.0.front(), Some(&10));
    }

    /// Regression: a late time was appended at the back as if current, so the window was no
    /// longer sorted and expired by position, not by value.
    #[test]
    fn a_window_stays_sorted_and_leaves_out_times_older_than_it() {
        let mut w = Window::default();
        for t in [100, 200, 300] {
            w.push(t, 0);
        }
        w.push(150, 0);
        // Older than the window's start: not in it.
        w.push(40, 50);
        assert_eq!(w.0, [100, 150, 200, 300]);
        w.expire(160);
        assert_eq!(w.0, [200, 300]);
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

    /// Regression: a task whose retry was reported late (after later ones) was reported
    /// "failed 3 times, -1497.5 s apart": the gap was taken over arrival order.
    #[test]
    fn regression_a_late_retry_never_makes_a_negative_gap() {
        let mut d = PatternDetector::new(PatternParams::default()).unwrap();
        let (t, w) = (TaskId::new("t").unwrap(), WorkerId::new("w").unwrap());
        for s in [3000.0, 3005.0, 5.0] {
            d.observe(&obs(&t, &w, s));
        }
        // Sorted, the three are 1500 s apart on average: not rapid.
        let ps = d.patterns(Timestamp::from_secs_f64(3005.0));
        assert!(
            !ps.iter().any(|p| p.kind == PatternKind::RapidFailure),
            "{ps:#?}"
        );
        // A late one inside a rapid run is counted at its own time.
        let mut d = PatternDetector::new(PatternParams::default()).unwrap();
        for s in [100.0, 110.0, 105.0] {
            d.observe(&obs(&t, &w, s));
        }
        let ps = d.patterns(Timestamp::from_secs_f64(110.0));
        let r = ps
            .iter()
            .find(|p| p.kind == PatternKind::RapidFailure)
            .unwrap();
        assert_eq!(r.count, 3);
        assert_eq!(r.first_seen, Timestamp::from_secs_f64(100.0));
        assert_eq!(r.last_seen, Timestamp::from_secs_f64(110.0));
        assert!(r.description.contains("5.0 s apart"), "{}", r.description);
        assert_eq!(d.late(), 0);
    }

    /// Regression: a failure reported after later ones entered every window as if current
    /// (appended at the back, never expired by value) and was counted long after its time.
    #[test]
    fn regression_late_failures_are_counted_at_their_own_time_or_not_at_all() {
        let mut d = PatternDetector::new(PatternParams::default()).unwrap();
        let w = WorkerId::new("g1").unwrap();
        let task = |i: usize| TaskId::new(&format!("t{i}")).unwrap();
        for (i, s) in [10_000.0, 10_010.0, 10_020.0].into_iter().enumerate() {
            d.observe(&obs(&task(i), &w, s));
        }
        // Older than the window's start (10,020 − 3,600): left out, counted as late.
        d.observe(&obs(&task(3), &w, 100.0));
        assert_eq!(d.late(), 1);
        assert_eq!(d.now(), Some(Timestamp::from_secs_f64(10_020.0)));
        let count = |d: &PatternDetector, s: f64| {
            d.patterns(Timestamp::from_secs_f64(s))
                .into_iter()
                .find(|p| p.kind == PatternKind::Worker)
                .map(|p| (p.count, p.first_seen, p.last_seen))
        };
        let ts = Timestamp::from_secs_f64;
        assert_eq!(count(&d, 10_020.0), Some((3, ts(10_000.0), ts(10_020.0))));
        // Within the window: counted at its own time, and it expires at its own time.
        d.observe(&obs(&task(4), &w, 9_000.0));
        assert_eq!(d.late(), 1);
        assert_eq!(count(&d, 10_020.0), Some((4, ts(9_000.0), ts(10_020.0))));
        assert_eq!(count(&d, 12_601.0), Some((3, ts(10_000.0), ts(10_020.0))));
        d.prune();
        assert_eq!(count(&d, 12_601.0), Some((3, ts(10_000.0), ts(10_020.0))));
    }

    /// Regression: a task failing 40 times 60 s apart was reported "failed 3 times": only
    /// the latest `rapid_min_failures` times were kept.
    #[test]
    fn regression_a_rapid_failure_reports_its_whole_run() {
        let mut d = PatternDetector::new(PatternParams::default()).unwrap();
        let (t, w) = (TaskId::new("stuck").unwrap(), WorkerId::new("w").unwrap());
        // An earlier, slow episode is not part of the run.
        for s in [0.0, 2_000.0] {
            d.observe(&obs(&t, &w, s));
        }
        let t0 = 10_000.0;
        for i in 0..40 {
            d.observe(&obs(&t, &w, t0 + 60.0 * i as f64));
        }
        let last = t0 + 60.0 * 39.0;
        let ps = d.patterns(Timestamp::from_secs_f64(last));
        let r = ps
            .iter()
            .find(|p| p.kind == PatternKind::RapidFailure)
            .unwrap();
        assert_eq!(r.count, 40);
        assert_eq!(r.first_seen, Timestamp::from_secs_f64(t0));
        assert_eq!(r.last_seen, Timestamp::from_secs_f64(last));
        assert!(
            r.description.contains("failed 40 times, 60.0 s apart"),
            "{}",
            r.description
        );
        // A long pause ends the run; the next one starts afresh.
        let t1 = last + 10_000.0;
        for i in 0..3 {
            d.observe(&obs(&t, &w, t1 + 10.0 * i as f64));
        }
        let ps = d.patterns(Timestamp::from_secs_f64(t1 + 20.0));
        let r = ps
            .iter()
            .find(|p| p.kind == PatternKind::RapidFailure)
            .unwrap();
        assert_eq!((r.count, r.first_seen), (3, Timestamp::from_secs_f64(t1)));
    }

    /// Regression: the bad-worker description said "in the last 14.0 days" over a few
    /// minutes of history.
    #[test]
    fn regression_a_bad_worker_states_the_span_its_evidence_covers() {
        let (mut d, ids) = gpu_fleet_of_50();
        let mut clock = 0.0;
        let mut n = 0;
        for w in ids.iter().chain(std::iter::repeat_n(&ids[7], 25)) {
            n += 1;
            clock += 1.0;
            d.observe(&obs(&TaskId::new(&format!("t{n}")).unwrap(), w, clock));
        }
        // 74 s of history.
        let p = d.patterns(Timestamp::from_secs_f64(clock));
        let b = p.iter().find(|p| p.kind == PatternKind::BadWorker).unwrap();
        assert!(
            b.description.contains("in the last 74 s on g7"),
            "{}",
            b.description
        );
        // 13 days later (the failures still within the window): 13 days of history.
        let p = d.patterns(Timestamp::from_secs_f64(clock + 13.0 * 86_400.0));
        let b = p.iter().find(|p| p.kind == PatternKind::BadWorker).unwrap();
        assert!(
            b.description.contains("in the last 13.0 days"),
            "{}",
            b.description
        );
        assert_eq!(span_text(14.0 * 86_400.0), "14.0 days");
        assert_eq!(span_text(3.0 * 3600.0), "3.0 h");
        assert_eq!(span_text(600.0), "10 min");
    }

    /// Patterns are evaluated at the latest report time when asked for an earlier one —
    /// a wall clock ahead of or behind report time does not hide what the windows hold.
    #[test]
    fn patterns_are_evaluated_no_earlier_than_the_latest_report_time() {
        let mut d = PatternDetector::new(PatternParams::default()).unwrap();
        assert_eq!(d.now(), None);
        assert!(d.patterns(Timestamp::from_micros(i64::MIN)).is_empty());
        let w = WorkerId::new("g1").unwrap();
        let mut t = 0.0;
        for i in 0..48 {
            d.observe(&obs(&TaskId::new(&format!("n{i}")).unwrap(), &w, t));
            t += 1800.0;
        }
        for i in 0..30 {
            d.observe(&obs(&TaskId::new(&format!("b{i}")).unwrap(), &w, t));
            t += 60.0;
        }
        let latest = d.now().unwrap();
        assert_eq!(latest, Timestamp::from_secs_f64(t - 60.0));
        let earliest = d.patterns(Timestamp::from_micros(i64::MIN));
        assert!(earliest.iter().any(|p| p.kind == PatternKind::Burst));
        assert_eq!(earliest, d.patterns(latest));
        assert_eq!(d.bursts(Timestamp::from_micros(0)), d.bursts(latest));
    }

    /// Regression: an online burst's count was its window's as of the pair's latest failure,
    /// while the description states the window ending at the time asked for.
    #[test]
    fn regression_a_burst_count_is_that_of_the_stated_window() {
        let mut d = PatternDetector::new(PatternParams::default()).unwrap();
        let w = WorkerId::new("g1").unwrap();
        let mut t = 0.0;
        for i in 0..48 {
            d.observe(&obs(&TaskId::new(&format!("n{i}")).unwrap(), &w, t));
            t += 1800.0;
        }
        // An hour's pause, so that the burst's window holds only the burst.
        t += 3600.0;
        let start = t;
        for i in 0..30 {
            d.observe(&obs(&TaskId::new(&format!("b{i}")).unwrap(), &w, t));
            t += 60.0;
        }
        let last = t - 60.0;
        let burst = |s: f64| {
            d.patterns(Timestamp::from_secs_f64(s))
                .into_iter()
                .find(|p| p.kind == PatternKind::Burst)
        };
        let b = burst(last).unwrap();
        assert_eq!(b.count, 30);
        assert_eq!(b.first_seen, Timestamp::from_secs_f64(start));
        // 45 minutes later the hour holds the failures after `last` − 15 min: 15 of them.
        let b = burst(last + 2700.0).unwrap();
        assert_eq!(b.count, 15, "{b:?}");
        assert_eq!(b.first_seen, Timestamp::from_secs_f64(last - 840.0));
        assert!(
            b.description.starts_with("15 tasks failed with"),
            "{}",
            b.description
        );
    }

    /// Regression: windows of 1e300 s saturated to `i64::MAX` µs and `now − window`
    /// overflowed; the largest accepted windows must not overflow at any report time.
    #[test]
    fn regression_the_largest_windows_do_not_overflow() {
        let p = PatternParams {
            window_s: MAX_WINDOW_S,
            bad_worker_window_s: MAX_WINDOW_S,
            spike_window_s: MAX_WINDOW_S,
            spike_baseline_s: MAX_WINDOW_S,
            spike_max_s: MAX_WINDOW_S,
            ..Default::default()
        };
        let mut d = PatternDetector::new(p).unwrap();
        d.prune();
        let (t, w) = (TaskId::new("t").unwrap(), WorkerId::new("w").unwrap());
        for us in [i64::MIN + 1, i64::MIN + 2, 0, i64::MAX - 1, i64::MIN + 3] {
            let at = Timestamp::from_micros(us);
            d.observe(&Observation {
                at,
                ..obs(&t, &w, 0.0)
            });
            d.prune();
            let _ = d.patterns(at);
            let _ = d.worker_standing(at);
        }
        let _ = d.patterns(Timestamp::from_micros(i64::MIN));
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

    /// Regression: `spike_min_failures = 0`, a NaN or negative `refresh_s`, `refresh_failures
    /// = 0`, a baseline shorter than the spike window and windows of 1e300 s were accepted.
    #[test]
    fn regression_each_new_validation_error_names_its_field() {
        let e = |p: PatternParams| p.check().unwrap_err().to_string();
        let d = PatternParams::default;
        for (p, field) in [
            (
                PatternParams {
                    window_s: 1e300,
                    ..d()
                },
                "patterns.window_s",
            ),
            (
                PatternParams {
                    bad_worker_window_s: MAX_WINDOW_S * 1.01,
                    ..d()
                },
                "patterns.bad_worker_window_s",
            ),
            (
                PatternParams {
                    spike_max_s: f64::INFINITY,
                    ..d()
                },
                "patterns.spike_max_s",
            ),
            (
                PatternParams {
                    rapid_max_gap_s: 1e300,
                    ..d()
                },
                "patterns.rapid_max_gap_s",
            ),
            (
                PatternParams {
                    spike_min_failures: 0,
                    ..d()
                },
                "patterns.spike_min_failures",
            ),
            (
                PatternParams {
                    refresh_s: f64::NAN,
                    ..d()
                },
                "patterns.refresh_s",
            ),
            (
                PatternParams {
                    refresh_s: -1.0,
                    ..d()
                },
                "patterns.refresh_s",
            ),
            (
                PatternParams {
                    refresh_max_s: f64::NAN,
                    ..d()
                },
                "patterns.refresh_max_s",
            ),
            (
                PatternParams {
                    refresh_failures: 0,
                    ..d()
                },
                "patterns.refresh_failures",
            ),
            (
                PatternParams {
                    spike_baseline_s: 1800.0,
                    ..d()
                },
                "patterns.spike_baseline_s",
            ),
        ] {
            assert!(e(p.clone()).contains(field), "{p:?}: {}", e(p.clone()));
        }
        // The bounds themselves are accepted.
        PatternParams {
            window_s: MAX_WINDOW_S,
            refresh_s: 0.0,
            refresh_failures: 1,
            spike_min_failures: 1,
            spike_baseline_s: 3600.0,
            ..d()
        }
        .check()
        .unwrap();
    }

    #[test]
    fn autotraits() {
        fn check<T: Send + Sync>() {}
        check::<PatternError>();
        check::<PatternDetector>();
    }
}
