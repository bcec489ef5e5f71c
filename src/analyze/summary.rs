//! The analysis result: what `summary.json` holds and what the report draws. Every key is
//! documented in the [module docs](super).

use serde::{Deserialize, Serialize};

/// Version of the `summary.json` layout.
pub const SUMMARY_FORMAT_VERSION: u32 = 1;

/// The whole analysis (serialized as `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Layout version ([`SUMMARY_FORMAT_VERSION`]).
    pub format_version: u32,
    /// The history analysed (data directory).
    pub history: String,
    /// What ingest read, when the analysis started from input files.
    pub input: Option<InputSummary>,
    /// Headline counts.
    pub totals: Totals,
    /// Failures per kind, most frequent first.
    pub by_kind: Vec<Count>,
    /// Failures per hardware class, most frequent first.
    pub by_hardware: Vec<Count>,
    /// Failures per (hardware class, kind), non-zero cells only.
    pub heatmap: Vec<Cell>,
    /// Failures over time, stacked per kind.
    pub timeline: Timeline,
    /// Success rate of every recovery strategy, from the outcomes table.
    pub strategies: Vec<StrategyStat>,
    /// Failures a task took until its first successful recovery.
    pub attempts_to_recovery: AttemptsToRecovery,
    /// Clusters of similar failures.
    pub clusters: Clusters,
    /// Patterns found anywhere in the history, most severe first.
    pub patterns: Vec<PatternItem>,
    /// Most frequent message templates.
    pub templates: Vec<TemplateItem>,
    /// Files written next to `summary.json`, relative to the output directory.
    pub outputs: Outputs,
}

/// Counts of the ingest stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputSummary {
    /// Failure records read (ingested + rejected).
    pub read: u64,
    /// Failure records ingested.
    pub ingested: u64,
    /// Failure records rejected (the first ones are in `rejections`): with `ingested`, what
    /// makes `read`.
    pub rejected: u64,
    /// Other lines rejected on their own, of a simulator directory's `actions.jsonl` and
    /// `outcomes.jsonl`: an outcome that does not read or that no action asked for, an action
    /// without a failure line (in `rejections` too). The failures, if any, were ingested.
    #[serde(default)]
    pub rejected_other: u64,
    /// Actions of a simulator directory with no outcome left for them in `outcomes.jsonl`
    /// (a run cut short, or their outcome line rejected): not rejections, they are in the
    /// history and counted in `actions`, without an outcome.
    #[serde(default)]
    pub actions_without_outcome: u64,
    /// Lines holding no record.
    pub skipped: u64,
    /// Failure records ingested that carried an outcome of their own (`ml_feedback`, as the
    /// bench stream's records do): not imported — the history's outcomes answer its own
    /// actions — so they are not in the strategies' success rates.
    #[serde(default)]
    pub feedback: u64,
    /// Actions read from `actions.jsonl` files and data directories.
    pub actions: u64,
    /// Outcomes read from `outcomes.jsonl` files and data directories.
    pub outcomes: u64,
    /// The first rejections, `FILE:LINE: reason`.
    pub rejections: Vec<String>,
    /// The first failure record rejected, `FILE:LINE: reason`, when it is not the first of
    /// `rejections` (an outcome line rejected may come first there); not kept on disk.
    #[serde(skip)]
    pub first_record_rejection: Option<String>,
    /// Failure records ingested without a time of their own, given `read_at` (the time of
    /// the run). They are left out of the timeline, the time span and the patterns, whose
    /// times they would fabricate (a burst at `read_at`, a span reaching it).
    #[serde(default)]
    pub stamped_at_read: u64,
    /// The time given to records without one.
    #[serde(default)]
    pub read_at: Option<crate::model::Timestamp>,
    /// Files in input directories left out: of no known format, or a CSV whose header could
    /// not be mapped.
    #[serde(default)]
    pub unknown_files: u64,
    /// The first 20 of them.
    #[serde(default)]
    pub unknown_file_names: Vec<String>,
    /// The first 20 of those left out for their header, `PATH: reason` (a CSV without a
    /// column for a required field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
    /// Data directories read whole as inputs (a `faultline ingest` history, or an earlier
    /// `analyze --out` found inside an input directory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histories: Vec<String>,
}

/// Rejections an [`InputSummary`] keeps.
pub(crate) const KEPT_REJECTIONS: usize = 20;

impl InputSummary {
    /// Adds the counts of `other` (another input's), keeping the first 20
    /// rejections of both.
    pub fn add(&mut self, other: InputSummary) {
        self.read += other.read;
        self.ingested += other.ingested;
        self.rejected += other.rejected;
        self.rejected_other += other.rejected_other;
        self.actions_without_outcome += other.actions_without_outcome;
        self.skipped += other.skipped;
        self.feedback += other.feedback;
        self.actions += other.actions;
        self.outcomes += other.outcomes;
        self.stamped_at_read += other.stamped_at_read;
        self.read_at = self.read_at.or(other.read_at);
        self.first_record_rejection = self
            .first_record_rejection
            .take()
            .or(other.first_record_rejection);
        self.unknown_files += other.unknown_files;
        let room = KEPT_REJECTIONS.saturating_sub(self.unknown_file_names.len());
        self.unknown_file_names
            .extend(other.unknown_file_names.into_iter().take(room));
        let room = KEPT_REJECTIONS.saturating_sub(self.unreadable.len());
        self.unreadable
            .extend(other.unreadable.into_iter().take(room));
        self.histories.extend(other.histories);
        let room = KEPT_REJECTIONS.saturating_sub(self.rejections.len());
        self.rejections
            .extend(other.rejections.into_iter().take(room));
    }
}

/// Headline counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Failures in the history.
    pub failures: u64,
    /// Actions in the history.
    pub actions: u64,
    /// Outcomes in the history.
    pub outcomes: u64,
    /// Successful outcomes.
    pub successes: u64,
    /// Distinct tasks that failed.
    pub tasks: u64,
    /// Distinct workers that failed.
    pub workers: u64,
    /// Distinct hardware classes.
    pub hardware_classes: u64,
    /// Distinct kinds.
    pub kinds: u64,
    /// Failures the classifier could not recognise (`unknown`).
    pub unknown: u64,
    /// Distinct message templates.
    pub templates: u64,
    /// Clusters found.
    pub clusters: u64,
    /// Patterns found.
    pub patterns: u64,
    /// Earliest failure (RFC 3339), if any.
    pub first_seen: Option<String>,
    /// Latest failure (RFC 3339), if any.
    pub last_seen: Option<String>,
    /// Seconds from the first to the last failure.
    pub span_s: f64,
    /// Failures dated far apart from all the others (30 days and ten times the span
    /// of the middle 98 % away from it): a wrong year, clock or boot time (a kernel log's
    /// seconds since boot read without `--boot-time` are dated 1970). They stay in the
    /// analysis, and stretch its timeline.
    #[serde(default)]
    pub far_apart: u64,
    /// The time of the first of them (RFC 3339).
    #[serde(default)]
    pub far_apart_example: Option<String>,
    /// Patterns found but not listed: beyond the most severe `top_patterns` of their kind
    /// (an audit: the list stopped at 50 rapid failures without a word).
    #[serde(default)]
    pub patterns_left_out: u64,
}

/// How far (seconds) at least a failure lies from the middle 98 % of the others to count in
/// [`Totals::far_apart`]: 30 days.
pub const FAR_APART_S: f64 = 30.0 * 86_400.0;

/// One labelled count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Count {
    /// The label (a kind or a hardware class).
    pub key: String,
    /// Failures.
    pub count: u64,
    /// Share of all failures.
    pub share: f64,
}

/// One heatmap cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Hardware class.
    pub hardware_class: String,
    /// Failure kind.
    pub kind: String,
    /// Failures.
    pub count: u64,
}

/// Failures per time bin and kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Start of the first bin, µs since the epoch (UTC).
    pub start_us: i64,
    /// Width of a bin, seconds (a "nice" width: 1 s … 1 year).
    pub bin_s: f64,
    /// The bin width in words ("5 min", "1 day").
    pub bin_label: String,
    /// Kinds stacked, in the order of `counts[i]`.
    pub kinds: Vec<String>,
    /// `counts[bin][kind]`.
    pub counts: Vec<Vec<u64>>,
}

/// Success of one strategy over the outcomes table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyStat {
    /// Strategy name.
    pub strategy: String,
    /// Outcomes reported for it.
    pub n: u64,
    /// Successful ones.
    pub successes: u64,
    /// successes / n.
    pub rate: f64,
    /// Lower end of the 95 % Wilson score interval.
    pub ci_low: f64,
    /// Upper end of the 95 % Wilson score interval.
    pub ci_high: f64,
    /// Mean cost of its outcomes, when they carried one.
    pub mean_cost: Option<f64>,
}

/// Distribution of failures per task until the first successful outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptsToRecovery {
    /// Tasks with a successful outcome.
    pub recovered_tasks: u64,
    /// Failed tasks escalated without one (given up: an ESCALATION action); `None` (null)
    /// when the history holds no outcomes at all (e.g. plain logs): recovery cannot be judged
    /// then, and no task is counted as unrecovered.
    pub unrecovered_tasks: Option<u64>,
    /// Failed tasks with neither a successful outcome nor an escalation: still running, or
    /// their outcome was never reported (`None` as `unrecovered_tasks`).
    #[serde(default)]
    pub pending_tasks: Option<u64>,
    /// `(attempts, tasks)`: recovered tasks by their failure count (the last bucket holds
    /// `max_bucket` and more).
    pub histogram: Vec<(u64, u64)>,
    /// The last bucket (attempts at or above it are counted there).
    pub max_bucket: u64,
    /// Mean failures per recovered task.
    pub mean: Option<f64>,
    /// Median failures per recovered task.
    pub median: Option<u64>,
}

/// The clustering stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Clusters {
    /// Algorithm (`kmeans`, `dbscan`), or `none` when nothing was clustered.
    pub algorithm: String,
    /// Why there are no clusters, when there are none.
    pub skipped: Option<String>,
    /// Rows the model was fitted on (a sample of at most the configured size).
    pub fitted_rows: u64,
    /// Rows assigned online (every failure).
    pub assigned_rows: u64,
    /// Failures beyond every cluster's radius.
    pub noise: u64,
    /// Mean silhouette of the fit sample.
    pub silhouette: Option<f64>,
    /// The clusters, largest first.
    pub items: Vec<ClusterItem>,
    /// 2-D PCA projection of the scaled features of the fit sample.
    pub pca: Pca,
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterItem {
    /// Cluster id (as in the `cluster_id` column).
    pub id: i64,
    /// Failures assigned to it (all rows).
    pub size: u64,
    /// Share of all failures.
    pub share: f64,
    /// Commonest kinds among its members (every failure assigned to it), `(kind, share)`.
    pub kinds: Vec<(String, f64)>,
    /// Commonest hardware classes among its members, `(class, share)`.
    pub hardware: Vec<(String, f64)>,
    /// Commonest templates among its members, `(template text, share)`.
    pub templates: Vec<(String, f64)>,
    /// Commonest workers among its members, `(worker, share)`.
    pub workers: Vec<(String, f64)>,
    /// Mean distance of its sample members to the centroid (standardized units).
    pub cohesion: f64,
    /// Earliest member of the fit sample (RFC 3339).
    #[serde(default)]
    pub first_seen: String,
    /// Latest member of the fit sample (RFC 3339).
    #[serde(default)]
    pub last_seen: String,
    /// One-line description.
    pub summary: String,
}

/// The PCA projection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    /// Share of the total variance along each of the two components.
    pub explained: Vec<f64>,
    /// Points `(x, y, cluster id or -1 for noise)`, at most the configured number.
    pub points: Vec<(f64, f64, i64)>,
    /// Cluster centroids projected, `(x, y, cluster id)`.
    pub centroids: Vec<(f64, f64, i64)>,
}

/// A pattern, merged over the whole history: the strongest instance of each `(kind, key)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternItem {
    /// `bad_worker`, `rapid_failure`, `burst` (the online detector's, over its sliding
    /// window), `surge` (time bins over the whole history), or `cluster` (confidence:
    /// `patterns::cluster_confidence`).
    pub kind: String,
    /// What it is about: the worker id (`bad_worker`), the task id (`rapid_failure`),
    /// `cluster-ID` (`cluster`); for a `burst`, `CLASS kind` (one kind on one class, e.g.
    /// `GPU oom_gpu`); for a `surge`, `class:CLASS` / `kind:KIND` (time bins where a class or
    /// a kind rose, and no burst of it overlaps).
    pub key: String,
    /// Failures in its strongest window (a `surge`: in all its bins); for a `burst` and a
    /// `surge`, a task's first failure in the window (bin) only.
    pub count: u64,
    /// First failure seen while the pattern was active (RFC 3339).
    pub first_seen: String,
    /// Last failure seen while it was active (RFC 3339).
    pub last_seen: String,
    /// Highest confidence reached.
    pub confidence: f64,
    /// Rank key: kind weight × confidence × ln(1 + count); larger is more severe.
    pub severity: f64,
    /// Times the detector reported it active (checks at regular report-time steps).
    pub episodes: u64,
    /// What to do about it.
    pub recommended_action: String,
    /// Evidence from its strongest window.
    pub description: String,
}

/// A message template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateItem {
    /// Template id (as in the `template_id` column).
    pub id: u64,
    /// Text, `<*>` for variable parts.
    pub text: String,
    /// Failures with it.
    pub count: u64,
    /// Share of all failures.
    pub share: f64,
    /// Its most frequent kind.
    pub kind: String,
}

/// Output files, relative to the output directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    /// The HTML report.
    pub report: String,
    /// This document.
    pub summary: String,
    /// Classified failures (Parquet), when written.
    pub classified: Option<String>,
}
