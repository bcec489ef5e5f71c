//! The featurizer: one failure row → one feature vector, keeping per-worker and per-task state
//! so that each new failure costs O(1) (amortized: trailing windows are queues).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::schema::{FeatureSchema, Layout};
use super::FeatureError;
use crate::model::{Precision, Timestamp};
use crate::store::FailureRow;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Memory above this (GiB) is clamped, so that garbage cannot overflow a scaler's variance.
const MAX_MEMORY_GIB: f64 = 1e6;
/// Template buckets allowed.
const MAX_TEMPLATE_BUCKETS: usize = 256;

/// Featurization parameters. Stored with fitted models: they shape the columns' values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureParams {
    /// Hashed template columns (`tpl_0` ...): 1 to 256.
    pub template_buckets: usize,
    /// Trailing window of the worker failure rate and the task's recent failures, seconds.
    pub window_s: f64,
    /// Cap of the time since the worker's previous failure, seconds (also the value for a
    /// worker's first failure).
    pub gap_cap_s: f64,
    /// Cap of the attempt column.
    pub attempt_cap: u32,
}

impl Default for FeatureParams {
    /// 8 template buckets, a 1-hour window, gaps capped at 1 day, attempts capped at 32.
    fn default() -> Self {
        FeatureParams {
            template_buckets: 8,
            window_s: 3600.0,
            gap_cap_s: 86_400.0,
            attempt_cap: 32,
        }
    }
}

impl FeatureParams {
    /// Validates the parameters; the error names the field.
    pub fn check(&self) -> Result<(), FeatureError> {
        let bad = |f: &str, d: String| FeatureError::InvalidParam {
            field: format!("features.{f}"),
            detail: d,
        };
        if !(1..=MAX_TEMPLATE_BUCKETS).contains(&self.template_buckets) {
            return Err(bad(
                "template_buckets",
                format!(
                    "{} is not in 1..={MAX_TEMPLATE_BUCKETS}",
                    self.template_buckets
                ),
            ));
        }
        // The window is turned into whole microseconds: keep it well inside i64.
        if !(self.window_s.is_finite() && self.window_s > 0.0 && self.window_s <= 1e12) {
            return Err(bad(
                "window_s",
                format!("{} is not in (0, 1e12]", self.window_s),
            ));
        }
        if !(self.gap_cap_s.is_finite() && self.gap_cap_s > 0.0) {
            return Err(bad("gap_cap_s", format!("{} is not > 0", self.gap_cap_s)));
        }
        if self.attempt_cap == 0 {
            return Err(bad("attempt_cap", "must be at least 1".into()));
        }
        Ok(())
    }

    /// The schema these parameters produce.
    pub fn schema(&self) -> FeatureSchema {
        FeatureSchema::new(self.template_buckets)
    }
}

/// A feature matrix with its schema: row i is the i-th input row.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    /// Column names and version.
    pub schema: FeatureSchema,
    /// One row per failure, `schema.width()` columns.
    pub x: Array2<f64>,
}

/// Hasher for keys that are already well-mixed 64-bit hashes: passes them through.
#[derive(Default, Clone, Copy)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (keys are u64); fold anything else in for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Worker and task state keyed by a 64-bit SipHash of the id: no string is copied or compared
/// per failure. Two ids would share a history only on a 64-bit collision (for 10 million ids,
/// a chance of about 3 in a million), which would blur their history features, nothing else.
type IdMap<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;

fn id_key(id: &str) -> u64 {
    // `DefaultHasher::new()` is SipHash with fixed keys: the same id gives the same key within
    // a process, which is all the featurizer's (unserialized) state needs.
    let mut h = std::hash::DefaultHasher::new();
    h.write(id.as_bytes());
    h.finish()
}

/// One SplitMix64 step (advance by the golden gamma, then finalise): spreads template ids
/// over buckets and signs; also derives the simulator's per-failure random streams.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, Default)]
struct WorkerState {
    last: Option<i64>,
    recent: VecDeque<i64>,
}

#[derive(Debug, Clone, Default)]
struct TaskHistory {
    attempts: u32,
    last: i64,
    recent: VecDeque<i64>,
}

/// Drops the timestamps before `ts - window` from the front of a queue, and returns how many
/// remain (the earlier failures within the window).
fn trim(queue: &mut VecDeque<i64>, ts: i64, window_us: i64) -> usize {
    let from = ts.saturating_sub(window_us);
    while queue.front().is_some_and(|&t| t < from) {
        queue.pop_front();
    }
    queue.len()
}

/// Online featurizer: remembers, per worker, its previous failure and recent failures, and per
/// task, its attempts and recent failures. Feed failures in time order.
///
/// ```
/// use faultline::features::{FeatureParams, Featurizer};
/// let f = Featurizer::new(FeatureParams::default()).unwrap();
/// assert_eq!(f.schema().names[0], "hw_CPU");
/// ```
#[derive(Debug, Clone)]
pub struct Featurizer {
    params: FeatureParams,
    schema: FeatureSchema,
    layout: Layout,
    window_us: i64,
    workers: IdMap<WorkerState>,
    tasks: IdMap<TaskHistory>,
}

impl Featurizer {
    /// A featurizer with no history; fails on invalid parameters.
    pub fn new(params: FeatureParams) -> Result<Self, FeatureError> {
        params.check()?;
        let layout = Layout::new(params.template_buckets);
        Ok(Featurizer {
            schema: params.schema(),
            layout,
            window_us: (params.window_s * 1e6).round() as i64,
            params,
            workers: IdMap::default(),
            tasks: IdMap::default(),
        })
    }

    /// The schema of the vectors produced.
    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    /// The parameters.
    pub fn params(&self) -> &FeatureParams {
        &self.params
    }

    /// Width of a feature vector.
    pub fn width(&self) -> usize {
        self.layout.width
    }

    /// Workers and tasks currently remembered.
    pub fn tracked(&self) -> (usize, usize) {
        (self.workers.len(), self.tasks.len())
    }

    /// Forgets workers and tasks whose latest failure is more than `idle_s` seconds before
    /// `now` (bounding memory on a long-running stream). A forgotten task starts again at
    /// attempt 1; a forgotten worker's next gap is the cap. Returns how many were dropped.
    pub fn forget_idle(&mut self, now: Timestamp, idle_s: f64) -> usize {
        let cut = now
            .as_micros()
            .saturating_sub((idle_s.max(0.0) * 1e6).min(i64::MAX as f64) as i64);
        let before = self.workers.len() + self.tasks.len();
        self.workers.retain(|_, w| w.last.is_some_and(|t| t >= cut));
        self.tasks.retain(|_, t| t.last >= cut);
        before - self.workers.len() - self.tasks.len()
    }

    /// Featurizes one failure into a new vector and records it in the history.
    pub fn push(&mut self, row: &FailureRow) -> Vec<f64> {
        let mut out = vec![0.0; self.layout.width];
        self.fill(row, &mut out);
        out
    }

    /// Featurizes one failure into `out` (which must have [`Self::width`] entries) and records
    /// it in the history.
    pub fn push_into(&mut self, row: &FailureRow, out: &mut [f64]) -> Result<(), FeatureError> {
        if out.len() != self.layout.width {
            return Err(FeatureError::Width {
                expected: self.layout.width,
                got: out.len(),
            });
        }
        self.fill(row, out);
        Ok(())
    }

    /// Featurizes a batch, continuing this featurizer's history: rows are visited in time
    /// order (stable for equal timestamps) and row i of the matrix is `rows[i]`.
    pub fn extend(&mut self, rows: &[FailureRow]) -> FeatureMatrix {
        let w = self.layout.width;
        // At most one new task per row; growing the table row by row costs more than this.
        self.tasks
            .reserve(rows.len().saturating_sub(self.tasks.len()) / 2);
        let mut x = Array2::zeros((rows.len(), w));
        let sorted = rows
            .windows(2)
            .all(|p| p[0].record.timestamp <= p[1].record.timestamp);
        // `Array2::zeros` is in standard (row-major, contiguous) layout.
        let data = x
            .as_slice_mut()
            .expect("a freshly allocated array is contiguous");
        if sorted {
            for (row, out) in rows.iter().zip(data.chunks_exact_mut(w)) {
                self.fill(row, out);
            }
        } else {
            let mut order: Vec<usize> = (0..rows.len()).collect();
            order.sort_by_key(|&i| rows[i].record.timestamp);
            for i in order {
                self.fill(&rows[i], &mut data[i * w..(i + 1) * w]);
            }
        }
        FeatureMatrix {
            schema: self.schema.clone(),
            x,
        }
    }

    fn fill(&mut self, row: &FailureRow, out: &mut [f64]) {
        let l = self.layout;
        let p = &self.params;
        let rec = &row.record;
        let ts = rec.timestamp.as_micros();
        out.fill(0.0);

        out[rec.hardware.class.index()] = 1.0;
        out[l.kind + row.kind.index()] = 1.0;
        if let Some(id) = row.template_id {
            let h = splitmix64(id);
            // High bits pick the bucket, the low bit the sign.
            let bucket = ((u128::from(h >> 1) * p.template_buckets as u128) >> 63) as usize;
            out[l.template + bucket] = if h & 1 == 0 { 1.0 } else { -1.0 };
        }

        let cfg = &rec.task.config;
        let n = l.numeric;
        out[n] = cfg
            .batch_size
            .map(|b| f64::from(b.max(1)).log2())
            .unwrap_or(0.0);
        out[n + 1] = cfg.precision.unwrap_or(Precision::Fp32).index() as f64;

        let task = self.tasks.entry(id_key(rec.task_id.as_str())).or_default();
        task.attempts = task.attempts.saturating_add(1);
        task.last = task.last.max(ts);
        out[n + 2] = f64::from(task.attempts.min(p.attempt_cap));
        out[n + 3] = rec
            .hardware
            .memory_gib
            .filter(|m| m.is_finite() && *m >= 0.0)
            .map_or(0.0, |m| m.min(MAX_MEMORY_GIB));

        let task_recent = trim(&mut task.recent, ts, self.window_us);
        task.recent.push_back(ts);

        let worker = self
            .workers
            .entry(id_key(rec.worker_id.as_str()))
            .or_default();
        let gap = match worker.last {
            // i128: arbitrary timestamps must not overflow.
            Some(prev) => {
                ((i128::from(ts) - i128::from(prev)) as f64 / 1e6).clamp(0.0, p.gap_cap_s)
            }
            None => p.gap_cap_s,
        };
        worker.last = Some(worker.last.map_or(ts, |prev| prev.max(ts)));
        out[n + 4] = gap.ln_1p();
        let worker_recent = trim(&mut worker.recent, ts, self.window_us);
        worker.recent.push_back(ts);
        out[n + 5] = worker_recent as f64 * 3600.0 / p.window_s;
        out[n + 6] = task_recent as f64;

        let day = ts.rem_euclid(MICROS_PER_DAY) as f64 / MICROS_PER_DAY as f64;
        let angle = std::f64::consts::TAU * day;
        out[n + 7] = angle.sin();
        out[n + 8] = angle.cos();
    }
}

/// Featurizes `rows` from an empty history (see [`Featurizer::extend`]).
pub fn featurize(
    rows: &[FailureRow],
    params: &FeatureParams,
) -> Result<FeatureMatrix, FeatureError> {
    Ok(Featurizer::new(params.clone())?.extend(rows))
}
