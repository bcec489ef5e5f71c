//! Tier 4 — batch analysis, the offline job behind `faultline analyze`: a pile of failure logs
//! (or an existing history) → counts, templates, clusters, patterns, strategy effectiveness,
//! and the files the report and notebooks read.
//!
//! ```text
//! inputs ──► ingest (chunked pipeline, classify) ──► history (Parquet, DIR/history)
//!                                                        │ polars lazy scans
//!  failures ──► template::mine (two-pass) ──► features ──► cluster::fit on a sample ≤ N rows
//!                                                        ──► ClusterModel assigns every row online
//!           ──► PatternDetector in time order (bad workers, rapid failures, bursts) + surges (time bins)
//!  outcomes ──► strategy success with Wilson intervals;  failures ⋈ outcomes ──► attempts
//!                                    ──► Analysis (summary.json) ──► report (report.html)
//! ```
//!
//! Memory stays bounded by the columns analysed, not by the records: ingest streams in
//! batches, aggregates over actions and outcomes are polars lazy group-bys, the failures are
//! held as a few projected columns (no payload), clustering is fitted on a systematic sample
//! of at most [`AnalyzeParams::sample`] rows and every other row is placed online by the
//! fitted [`ClusterModel`](crate::cluster::ClusterModel), and the classified export is written
//! in batches.
//!
//! # Outputs
//!
//! | file | content |
//! |---|---|
//! | `DIR/report.html` | the self-contained report ([`crate::report`]) |
//! | `DIR/summary.json` | [`Analysis`], keys below |
//! | `DIR/failures.parquet` | classified failures: `seq`, `timestamp`, `task_id`, `worker_id`, `hardware_class`, `kind`, `failure_type`, `template_id`, `template`, `cluster_id` (null = noise), `message` ([`crate::store::export`]) |
//! | `DIR/history/` | the Parquet history when the analysis started from input files (`--data` analyses that directory in place) |
//!
//! # `summary.json` keys
//!
//! | key | meaning |
//! |---|---|
//! | `format_version` | layout version (1) |
//! | `history` | the data directory analysed |
//! | `input` | ingest counts (`read` = `ingested` + `rejected` failure records, `skipped`, `actions`, `outcomes`, `rejected_other` action or outcome lines of a simulator directory rejected on their own, first `rejections`; `actions_without_outcome` actions of a simulator directory kept (in `actions`) with no outcome left for them, not rejections; `stamped_at_read` records without a time, given `read_at`, the time of the run; `feedback` records carrying an outcome of their own (`ml_feedback`), not imported; `unknown_files` in input directories left out — of no known format, or a CSV whose header could not be mapped — the first in `unknown_file_names`; `unreadable`, the first of them left out for their header as `PATH: reason`; `histories`, data directories read whole as inputs), or null with `--data` |
//! | `totals` | `failures`, `actions`, `outcomes`, `successes`, `tasks`, `workers`, `hardware_classes`, `kinds`, `unknown`, `templates`, `clusters`, `patterns`, `first_seen`, `last_seen` (RFC 3339), `span_s` (over the failures with a time of their own, see `input.stamped_at_read`: null and 0 when none has one), `far_apart` failures dated far from all the others (30 days and ten times the span of the middle 98 % away, or before 1973: a wrong year, clock or boot time; kept, and warned about) with `far_apart_example`, the first one's time; `patterns_left_out` patterns found beyond the most severe `top_patterns` (50) of each kind, not listed |
//! | `by_kind`, `by_hardware` | lists of `{key, count, share}`, most frequent first |
//! | `heatmap` | non-zero `{hardware_class, kind, count}` cells |
//! | `timeline` | `start_us`, `bin_s`, `bin_label`, `kinds`, `counts[bin][kind]` — the whole history but the failures stamped at read (none when no failure has a time of its own), at most [`AnalyzeParams::timeline_bins`] bins of a nice width |
//! | `strategies` | per strategy: `strategy`, `n`, `successes`, `rate`, `ci_low`, `ci_high` (95 % Wilson), `mean_cost` |
//! | `attempts_to_recovery` | `recovered_tasks`, `unrecovered_tasks` (null when the history has no outcomes: recovery cannot be judged), `pending_tasks` (tasks whose latest action has no outcome yet: neither recovered nor unrecovered), `histogram` of `[attempts, tasks]`, `max_bucket`, `mean`, `median` |
//! | `clusters` | `algorithm`, `skipped` (why none), `fitted_rows`, `assigned_rows`, `noise`, `silhouette`, `items` (`id`, `size` (every failure assigned to it), `share`, the commonest `kinds`/`hardware`/`templates`/`workers` among those members as `[name, share]`, `cohesion` (of the fit sample's members), `first_seen`, `last_seen`, `summary`), `pca` (`explained`, `points` `[x, y, cluster]`, `centroids`) |
//! | `patterns` | list of `{kind, key, count, first_seen, last_seen, confidence, severity, episodes, recommended_action, description}`, most severe first; `kind` is `bad_worker`, `rapid_failure`, `burst`, `surge` (these three found over the failures with a time of their own only) or `cluster`; a `burst` is the online detector's, keyed `CLASS kind` (tasks failing with one kind on one class within the sliding window, a task's first failure in the window counted; kept when its peak is beyond chance over every (class, kind) and window of the history, Bonferroni); a `surge` is found over time bins of the whole history, keyed `class:CLASS` or `kind:KIND` (a task's first failure per bin, judged against the mean over the bins that hold failures, left out where an online burst of the class or kind overlaps; `count` sums its bins, `episodes` counts them); a cluster's `key` is `cluster-ID`, or `cluster-ID+ID...` for clusters of the same failure (dominant kind, class and template each ≥ 90 %), one pattern; a `bad_worker` not flagged at the end of the history says so first in its `recommended_action`; `count` and `description` are the strongest detection's (the description gives its time), `first_seen`..`last_seen` span every detection, `episodes` counts the detector's checks (every half window) at which it was active — not separate episodes |
//! | `templates` | top templates `{id, text, count, share, kind}` |
//! | `outputs` | `report`, `summary`, `classified` file names |

mod compute;
mod input;
pub mod stats;
mod summary;

use std::path::PathBuf;

pub use compute::analyze;
pub use input::{
    check_simulation, check_simulation_complete, classifying_rows, classifying_rows_at, given_once,
    import_history, import_simulation, ingest_inputs, ingest_opened, is_data_dir, plan,
    plan_analysis, plan_excluding, write_classified, ClassifiedBatch, ClassifiedRows, InputOptions,
    OddTimes, OpenInputs, ParquetSource, Plan, AHEAD_OF_CLOCK_S,
};
pub use summary::{
    Analysis, AttemptsToRecovery, Cell, ClusterItem, Clusters, Count, InputSummary, Outputs,
    PatternItem, Pca, StrategyStat, TemplateItem, Timeline, Totals, SUMMARY_FORMAT_VERSION,
};

use crate::cluster::{ClusterError, ClusterParams};
use crate::config::PatternParams;
use crate::ingest::IngestError;
use crate::patterns::PatternError;
use crate::store::StoreError;
use crate::template::TemplateConfig;

/// Errors of the analysis.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The inputs cannot be analysed as given.
    #[error("{0}")]
    Input(String),
    /// Reading the inputs failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The history could not be written or scanned.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A polars query over the history failed.
    #[error("query over the history failed: {0}")]
    Query(String),
    /// Clustering parameters or fitting failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Pattern parameters are invalid.
    #[error(transparent)]
    Patterns(#[from] PatternError),
    /// Template parameters are invalid.
    #[error("invalid template parameters: {0}")]
    Template(String),
    /// An analysis parameter is out of range.
    #[error("invalid analysis parameter {field}: {detail}")]
    InvalidParam {
        /// The parameter.
        field: &'static str,
        /// Why.
        detail: String,
    },
    /// The summary could not be encoded.
    #[error("cannot encode the summary: {0}")]
    Encode(String),
}

/// Parameters of the analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeParams {
    /// Rows clustering is fitted on at most (a systematic sample over time); every row is
    /// then assigned online.
    pub sample: usize,
    /// Clustering parameters (features, algorithm, seed).
    pub cluster: ClusterParams,
    /// Pattern detector parameters (bad workers, rapid failures, bursts; the analysis turns
    /// threshold patterns off: over a whole history they would fire everywhere).
    pub patterns: PatternParams,
    /// Template miner configuration.
    pub templates: TemplateConfig,
    /// Templates listed in the summary.
    pub top_templates: usize,
    /// Patterns kept per pattern kind, most severe first.
    pub top_patterns: usize,
    /// PCA points kept for the scatter.
    pub pca_points: usize,
    /// Timeline bins at most.
    pub timeline_bins: usize,
    /// A time bin is a burst of a kind (or a hardware class) when it holds at least this many
    /// times its mean per bin (and at least `burst_min` failures), a task counted once per bin.
    pub burst_factor: f64,
    /// Fewest failures in a burst bin.
    pub burst_min: u64,
    /// Write `failures.parquet` (classified failures) into the output directory.
    pub export: bool,
}

impl Default for AnalyzeParams {
    /// 20,000-row clustering sample, KMeans with k in 2..=12 by silhouette (the smallest k
    /// within 0.02 of the best), 20 templates,
    /// 50 patterns per kind, 1,500 PCA points, 60 timeline bins, bursts at 4× the mean.
    fn default() -> Self {
        let mut cluster = ClusterParams::default();
        cluster.kmeans.k_max = 12;
        AnalyzeParams {
            sample: 20_000,
            cluster,
            patterns: PatternParams::default(),
            templates: TemplateConfig::default(),
            top_templates: 20,
            top_patterns: 50,
            pca_points: 1_500,
            timeline_bins: 60,
            burst_factor: 4.0,
            burst_min: 5,
            export: true,
        }
    }
}

impl AnalyzeParams {
    /// Checks the parameters that the stages below do not check themselves.
    pub fn check(&self) -> Result<(), AnalyzeError> {
        let bad = |field, detail: String| Err(AnalyzeError::InvalidParam { field, detail });
        if self.sample < 2 {
            return bad("sample", format!("{} is below 2", self.sample));
        }
        if self.timeline_bins == 0 {
            return bad("timeline_bins", "must be at least 1".into());
        }
        if !(self.burst_factor.is_finite() && self.burst_factor >= 1.0) {
            return bad("burst_factor", format!("{} is not ≥ 1", self.burst_factor));
        }
        self.patterns.check()?;
        Ok(())
    }
}

/// Progress of the stages (the CLI draws bars; the library only reports).
pub trait Progress {
    /// A stage begins; `total` is its work in its own units (0 = unknown).
    fn stage(&mut self, name: &'static str, total: u64);
    /// Work done so far in the current stage.
    fn position(&mut self, done: u64);
    /// The current stage ended.
    fn finish(&mut self);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&mut self, _: &'static str, _: u64) {}
    fn position(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_params_check() {
        AnalyzeParams::default().check().unwrap();
    }

    #[test]
    fn each_invalid_param_is_named() {
        let mut p = AnalyzeParams {
            sample: 1,
            ..AnalyzeParams::default()
        };
        assert!(p.check().unwrap_err().to_string().contains("sample"));
        p.sample = 10;
        p.timeline_bins = 0;
        assert!(p.check().unwrap_err().to_string().contains("timeline_bins"));
        p.timeline_bins = 10;
        p.burst_factor = 0.5;
        assert!(p.check().unwrap_err().to_string().contains("burst_factor"));
    }

    #[test]
    fn autotraits() {
        fn check<T: Send + Sync>() {}
        check::<AnalyzeError>();
        check::<AnalyzeParams>();
        check::<Analysis>();
    }
}
