//! The analysis proper: the history's tables → [`Analysis`] (and the classified export).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use ndarray::{Array1, Array2, Axis};
use polars::prelude::*;
use rustc_hash::FxBuildHasher;

use crate::cluster::{self, ClusterId, ClusterModel, OnlineClusterer};
use crate::features::{FeatureMatrix, FeatureParams, Featurizer};
use crate::model::{
    ErrorInfo, FailureKind, FailureRecord, FailureType, HardwareClass, HardwareProfile, Precision,
    TaskId, TaskSpec, Timestamp, WorkerId,
};
use crate::patterns::spike::poisson_upper_tail;
use crate::patterns::{Observation, PatternDetector, PatternKind};
use crate::store::export::{ClassifiedBatch, ClassifiedWriter};
use crate::store::{scan, schema, FailureRow, Table};
use crate::template::{TemplateId, TemplateMiner};

use super::stats::{pca2, project, time_step, wilson};
use super::summary::*;
use super::{AnalyzeError, AnalyzeParams, NoProgress, Progress};

type FxMap<K, V> = HashMap<K, V, FxBuildHasher>;

/// Rows between progress updates.
const TICK: usize = 1 << 16;
/// Rows per batch of the classified export.
const EXPORT_BATCH: usize = 100_000;
/// Messages remembered with their template (a cache of the miner, cleared when full).
const TEMPLATE_CACHE: usize = 1 << 18;
/// Fewest failures clustering runs on (the cluster parameters' smallest sample).
const MIN_CLUSTER_ROWS: usize = 20;
/// The classified export's file name.
pub(crate) const CLASSIFIED_FILE: &str = "failures.parquet";

fn q(e: impl std::fmt::Display) -> AnalyzeError {
    AnalyzeError::Query(e.to_string())
}

fn ts_string(us: i64) -> String {
    Timestamp::from_micros(us).to_string()
}

/// Whether `table` has at least one Parquet part under `root`.
fn has_parts(root: &Path, table: Table) -> bool {
    fn any(dir: &Path) -> bool {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return false;
        };
        rd.flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                any(&p)
            } else {
                p.extension().is_some_and(|x| x == "parquet")
            }
        })
    }
    any(&root.join("history").join(table.dir_name()))
}

/// The failures as the analysis holds them: projected columns, in sequence order.
struct Failures<'a> {
    seq: Vec<u64>,
    ts: Vec<i64>,
    task: Vec<&'a str>,
    worker: Vec<&'a str>,
    class: Vec<HardwareClass>,
    kind: Vec<FailureKind>,
    failure_type: Vec<&'a str>,
    message: Vec<&'a str>,
    batch: Vec<Option<u32>>,
    precision: Vec<Option<Precision>>,
    memory: Vec<Option<f64>>,
}

fn load_frame(root: &Path) -> Result<DataFrame, AnalyzeError> {
    use schema::*;
    scan(root, Table::Failures)?
        .select([
            col(SEQ),
            col(TIMESTAMP).cast(DataType::Int64).alias("ts_us"),
            col(TASK_ID),
            col(WORKER_ID),
            col(HARDWARE_CLASS),
            col(KIND),
            col(FAILURE_TYPE),
            col(MESSAGE),
            col(BATCH_SIZE),
            col(PRECISION),
            col(MEMORY_GIB),
        ])
        .sort([SEQ], SortMultipleOptions::default())
        .collect()
        // Polars does not say which file it could not read; find it (an audit found only
        // "Invalid thrift: bad data" for a part damaged inside its data).
        .map_err(
            |e| match crate::store::first_unreadable_part(root, Table::Failures) {
                Some(part) => AnalyzeError::Query(part.to_string()),
                None => q(e),
            },
        )
}

fn strs<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<&'a str>, AnalyzeError> {
    Ok(df
        .column(name)
        .map_err(q)?
        .str()
        .map_err(q)?
        .iter()
        .map(|s| s.unwrap_or(""))
        .collect())
}

impl<'a> Failures<'a> {
    fn from_frame(df: &'a DataFrame) -> Result<Self, AnalyzeError> {
        use schema::*;
        let seq = df
            .column(SEQ)
            .map_err(q)?
            .u64()
            .map_err(q)?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        let ts = df
            .column("ts_us")
            .map_err(q)?
            .i64()
            .map_err(q)?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        let class = strs(df, HARDWARE_CLASS)?
            .into_iter()
            .map(|s| s.parse().unwrap_or(HardwareClass::Unknown))
            .collect();
        let kind = strs(df, KIND)?
            .into_iter()
            .map(|s| s.parse().unwrap_or(FailureKind::Unknown))
            .collect();
        let batch = df
            .column(BATCH_SIZE)
            .map_err(q)?
            .u32()
            .map_err(q)?
            .iter()
            .collect();
        let precision = df
            .column(PRECISION)
            .map_err(q)?
            .str()
            .map_err(q)?
            .iter()
            .map(|s| s.and_then(|s| s.parse().ok()))
            .collect();
        let memory = df
            .column(MEMORY_GIB)
            .map_err(q)?
            .f64()
            .map_err(q)?
            .iter()
            .collect();
        Ok(Failures {
            seq,
            ts,
            task: strs(df, TASK_ID)?,
            worker: strs(df, WORKER_ID)?,
            class,
            kind,
            failure_type: strs(df, FAILURE_TYPE)?,
            message: strs(df, MESSAGE)?,
            batch,
            precision,
            memory,
        })
    }

    fn len(&self) -> usize {
        self.seq.len()
    }

    /// Row `i` as the featurizer and detector see it (no message, no payload).
    fn row(&self, i: usize, template: Option<u64>) -> Option<FailureRow> {
        let mut hardware = HardwareProfile::of_class(self.class[i]);
        hardware.memory_gib = self.memory[i];
        let mut task = TaskSpec::default();
        task.config.batch_size = self.batch[i];
        task.config.precision = self.precision[i];
        Some(FailureRow {
            record: FailureRecord {
                task_id: TaskId::new(self.task[i]).ok()?,
                worker_id: WorkerId::new(self.worker[i]).ok()?,
                hardware,
                error: ErrorInfo::default(),
                timestamp: Timestamp::from_micros(self.ts[i]),
                task,
            },
            kind: self.kind[i],
            failure_type: self.failure_type[i].parse().unwrap_or(FailureType::Unknown),
            classifier_rule: String::new(),
            xid: None,
            template_id: template,
            cluster_id: None,
        })
    }
}

/// Analyses the history under `root` (a data directory). With `params.export` and `out`,
/// writes `out/failures.parquet`. An empty or missing history gives an analysis of nothing,
/// not an error.
pub fn analyze(
    root: &Path,
    out: Option<&Path>,
    params: &AnalyzeParams,
    input: Option<InputSummary>,
    progress: &mut dyn Progress,
) -> Result<Analysis, AnalyzeError> {
    analyze_history(root, out, params, input, progress).map_err(|e| match e {
        // Polars does not say which file it could not read: the first part of any table that
        // does not read is named, with what sets it aside (a README walk-through: an actions
        // part with a damaged footer failed `analyze --data` with "cannot skip field type
        // Set" alone).
        AnalyzeError::Query(m) if !m.contains("this part cannot be read") => {
            match [Table::Failures, Table::Actions, Table::Outcomes]
                .into_iter()
                .find_map(|t| crate::store::first_unreadable_part(root, t))
            {
                Some(part) => AnalyzeError::Query(format!("{m}: {part}")),
                None => AnalyzeError::Query(m),
            }
        }
        e => e,
    })
}

fn analyze_history(
    root: &Path,
    out: Option<&Path>,
    params: &AnalyzeParams,
    input: Option<InputSummary>,
    progress: &mut dyn Progress,
) -> Result<Analysis, AnalyzeError> {
    params.check()?;
    progress.stage("load", 0);
    let df = if has_parts(root, Table::Failures) {
        Some(load_frame(root)?)
    } else {
        None
    };
    let empty = DataFrame::empty();
    let f = match &df {
        Some(df) => Failures::from_frame(df)?,
        None => Failures::from_frame_empty(&empty),
    };
    let n = f.len();
    progress.finish();

    // Templates: two-pass mining, cached per distinct message.
    progress.stage("templates", n as u64 * 2);
    let tparams = params
        .templates
        .clone()
        .check()
        .map_err(|e| AnalyzeError::Template(e.to_string()))?;
    let mut miner = TemplateMiner::new(tparams);
    let mut cache: FxMap<&str, TemplateId> = FxMap::default();
    let mut first = Vec::with_capacity(n);
    for (i, m) in f.message.iter().enumerate() {
        let id = match cache.get(m) {
            Some(id) => *id,
            None => {
                let id = miner.add(m).0;
                if cache.len() >= TEMPLATE_CACHE {
                    cache.clear();
                }
                cache.insert(m, id);
                id
            }
        };
        first.push(id);
        if i % TICK == 0 {
            progress.position(i as u64);
        }
    }
    miner.refine();
    cache.clear();
    let mut templates = Vec::with_capacity(n);
    for (i, (m, id)) in f.message.iter().zip(&first).enumerate() {
        let fin = match cache.get(m) {
            Some(t) => *t,
            None => {
                let t = miner.finalize(m, *id);
                if cache.len() >= TEMPLATE_CACHE {
                    cache.clear();
                }
                cache.insert(m, t);
                t
            }
        };
        templates.push(fin);
        if i % TICK == 0 {
            progress.position((n + i) as u64);
        }
    }
    drop(first);
    drop(cache);
    miner.recount(&templates);
    progress.finish();

    // Time order (stable on sequence).
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by_key(|&i| f.ts[i as usize]);
    // Failures read without a time were given the run's (`input.read_at`): their times are
    // made up, and would make a burst of them and stretch the span to today. Patterns, the
    // timeline and the span are found over the others; when none has a time of its own,
    // there is no timeline and no span (an audit: the run's own time was shown as the
    // history's range, and all its failures in one bin of one second).
    let stamped = input
        .as_ref()
        .filter(|i| i.stamped_at_read > 0)
        .and_then(|i| i.read_at)
        .map(Timestamp::as_micros);
    let dated: std::borrow::Cow<'_, [u32]> = match stamped {
        Some(s) => order
            .iter()
            .copied()
            .filter(|&i| f.ts[i as usize] != s)
            .collect::<Vec<_>>()
            .into(),
        None => order.as_slice().into(),
    };
    let spanned: &[u32] = &dated;

    // Clusters (fit on a sample, assign every row online) on this thread; patterns, bursts
    // and the actions/outcomes aggregates on a second one: they read the same columns and
    // nothing of each other.
    let (clustered, side) = std::thread::scope(|s| {
        let side = s.spawn(|| -> Result<_, AnalyzeError> {
            let (patterns, online) =
                pattern_stage(&f, &templates, &dated, params, &mut NoProgress)?;
            let bursts = bursts(&f, &dated, params, &online);
            let strategies = strategy_stage(root)?;
            let actions = count_actions(root)?;
            let attempts = attempts_stage(root, &f, &order, strategies.1)?;
            Ok((patterns, bursts, strategies, actions, attempts))
        });
        let clustered = cluster_stage(&f, &templates, &order, &miner, params, progress);
        (clustered, side.join())
    });
    let (mut clusters, labels) = clustered?;
    // A cluster's times, like the patterns', over its failures with a time of their own
    // (those read without one were given the run's: a cluster of a month-old history "last
    // seen" today — review). A cluster with none keeps the made-up times in the clusters
    // section and makes no pattern (patterns are found over dated failures only).
    let mut seen: FxMap<i64, (i64, i64)> = FxMap::default();
    if stamped.is_some() {
        for &i in dated.iter() {
            if let Some(c) = labels[i as usize] {
                let t = f.ts[i as usize];
                let e = seen.entry(c.as_i64()).or_insert((t, t));
                e.0 = e.0.min(t);
                e.1 = e.1.max(t);
            }
        }
        for c in &mut clusters.items {
            if let Some(&(lo, hi)) = seen.get(&c.id) {
                c.first_seen = ts_string(lo);
                c.last_seen = ts_string(hi);
            }
        }
    }
    let (mut patterns, burst_items, (strategies, outcomes, successes), actions, attempts) =
        side.map_err(|_| AnalyzeError::Input("an analysis thread panicked".into()))??;
    let dated_cluster = |id: i64| stamped.is_none() || seen.contains_key(&id);
    patterns.extend(cluster_patterns(
        clusters
            .items
            .iter()
            .filter(|c| c.size >= 2 && dated_cluster(c.id)),
    ));
    patterns.extend(burst_items);
    let patterns_left_out = rank_patterns(&mut patterns, params.top_patterns);

    // Counts.
    progress.stage("aggregates", 0);
    let mut totals = Totals {
        failures: n as u64,
        ..Totals::default()
    };
    let by_kind = counts(f.kind.iter().map(|k| k.as_str()), n);
    let by_hardware = counts(f.class.iter().map(|c| c.as_str()), n);
    let mut cells: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (c, k) in f.class.iter().zip(&f.kind) {
        *cells.entry((c.as_str(), k.as_str())).or_default() += 1;
    }
    let heatmap = cells
        .into_iter()
        .map(|((c, k), count)| Cell {
            hardware_class: c.to_string(),
            kind: k.to_string(),
            count,
        })
        .collect();
    totals.tasks = f.task.iter().collect::<HashSet<_>>().len() as u64;
    totals.workers = f.worker.iter().collect::<HashSet<_>>().len() as u64;
    totals.hardware_classes = by_hardware.len() as u64;
    totals.kinds = by_kind.len() as u64;
    totals.unknown = f
        .kind
        .iter()
        .filter(|k| **k == FailureKind::Unknown)
        .count() as u64;
    let mut template_counts: FxMap<u64, (u64, [u64; 32])> = FxMap::default();
    for (t, k) in templates.iter().zip(&f.kind) {
        let e = template_counts.entry(t.get()).or_insert((0, [0; 32]));
        e.0 += 1;
        e.1[k.index().min(31)] += 1;
    }
    totals.templates = template_counts.len() as u64;
    if let (Some(&lo), Some(&hi)) = (spanned.first(), spanned.last()) {
        let (lo, hi) = (f.ts[lo as usize], f.ts[hi as usize]);
        totals.first_seen = Some(ts_string(lo));
        totals.last_seen = Some(ts_string(hi));
        totals.span_s = (hi - lo) as f64 / 1e6;
        let (n, first) = far_apart(spanned.iter().map(|&i| f.ts[i as usize]));
        totals.far_apart = n;
        totals.far_apart_example = first.map(ts_string);
    }
    let timeline = timeline(&f, spanned, params.timeline_bins);
    let mut top: Vec<(u64, (u64, [u64; 32]))> = template_counts.into_iter().collect();
    top.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    let top_templates = top
        .iter()
        .take(params.top_templates)
        .map(|(id, (count, kinds))| {
            let best = kinds
                .iter()
                .enumerate()
                .max_by_key(|(_, c)| **c)
                .map_or(0, |(i, _)| i);
            TemplateItem {
                id: *id,
                text: template_text(&miner, *id),
                count: *count,
                share: *count as f64 / n.max(1) as f64,
                kind: FailureKind::ALL
                    .get(best)
                    .map_or("unknown", |k| k.as_str())
                    .to_string(),
            }
        })
        .collect();

    // Actions and outcomes (polars lazy aggregates, computed above).
    totals.outcomes = outcomes;
    totals.successes = successes;
    totals.actions = actions;
    progress.finish();

    // The classified export.
    let mut outputs = Outputs {
        report: "report.html".into(),
        summary: "summary.json".into(),
        classified: None,
    };
    if let (true, Some(out)) = (params.export, out) {
        progress.stage("export", n as u64);
        export(
            &out.join(CLASSIFIED_FILE),
            &f,
            &templates,
            &labels,
            &miner,
            progress,
        )?;
        outputs.classified = Some(CLASSIFIED_FILE.into());
        progress.finish();
    } else if let Some(out) = out {
        // An earlier run's export is not this run's (an audit: a rerun with --no-export left
        // the previous input's failures.parquet beside the new summary).
        let stale = out.join(CLASSIFIED_FILE);
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(AnalyzeError::Io {
                    path: stale,
                    source,
                })
            }
        }
    }

    totals.clusters = clusters.items.len() as u64;
    totals.patterns = patterns.len() as u64;
    totals.patterns_left_out = patterns_left_out;
    clusters.assigned_rows = labels.iter().filter(|l| l.is_some()).count() as u64;
    Ok(Analysis {
        format_version: SUMMARY_FORMAT_VERSION,
        history: root.display().to_string(),
        input,
        totals,
        by_kind,
        by_hardware,
        heatmap,
        timeline,
        strategies,
        attempts_to_recovery: attempts,
        clusters,
        patterns,
        templates: top_templates,
        outputs,
    })
}

impl Failures<'_> {
    fn from_frame_empty(_: &DataFrame) -> Self {
        Failures {
            seq: Vec::new(),
            ts: Vec::new(),
            task: Vec::new(),
            worker: Vec::new(),
            class: Vec::new(),
            kind: Vec::new(),
            failure_type: Vec::new(),
            message: Vec::new(),
            batch: Vec::new(),
            precision: Vec::new(),
            memory: Vec::new(),
        }
    }
}

fn template_text(miner: &TemplateMiner, id: u64) -> String {
    miner
        .get(TemplateId(id))
        .map_or_else(|| format!("template {id}"), |t| t.text())
}

fn counts<'a>(keys: impl Iterator<Item = &'a str>, n: usize) -> Vec<Count> {
    let mut m: BTreeMap<&str, u64> = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_default() += 1;
    }
    let mut v: Vec<Count> = m
        .into_iter()
        .map(|(k, c)| Count {
            key: k.to_string(),
            count: c,
            share: c as f64 / n.max(1) as f64,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
    v
}

/// The cluster patterns: one per cluster, except that clusters that are the same failure —
/// the same dominant kind, hardware class and template, each at least [`SAME_FAILURE`] of
/// its members — make one pattern, keyed by their ids joined with `+` (an audit: 50
/// identical out-of-memory errors made ten "cluster" patterns of one description, split by
/// when and on which worker they failed). The clusters section keeps them apart.
fn cluster_patterns<'a>(clusters: impl Iterator<Item = &'a ClusterItem>) -> Vec<PatternItem> {
    // (kind, hardware class, template), each dominant.
    type What = Option<(String, String, String)>;
    let what = |c: &ClusterItem| -> What {
        let top = |v: &[(String, f64)]| {
            v.first()
                .filter(|(_, share)| *share >= SAME_FAILURE)
                .map(|(k, _)| k.clone())
        };
        Some((top(&c.kinds)?, top(&c.hardware)?, top(&c.templates)?))
    };
    let mut groups: Vec<(What, Vec<&ClusterItem>)> = Vec::new();
    for c in clusters {
        let w = what(c);
        match groups.iter_mut().find(|(g, _)| w.is_some() && *g == w) {
            Some((_, members)) => members.push(c),
            None => groups.push((w, vec![c])),
        }
    }
    groups
        .into_iter()
        .map(|(_, mut members)| {
            members.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));
            let c = members[0];
            let size: u64 = members.iter().map(|m| m.size).sum();
            let dominant = c.kinds.first().map_or(0.0, |k| k.1);
            let mut ids: Vec<i64> = members.iter().map(|m| m.id).collect();
            ids.sort_unstable();
            let key = ids
                .iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join("+");
            let description = if members.len() == 1 {
                c.summary.clone()
            } else {
                format!(
                    "{} ({} clusters of the same failure, {size} in all, apart only in when or where it failed)",
                    c.summary,
                    members.len()
                )
            };
            PatternItem {
                kind: "cluster".into(),
                key: format!("cluster-{key}"),
                count: size,
                first_seen: members.iter().map(|m| m.first_seen.clone()).min().unwrap_or_default(),
                last_seen: members.iter().map(|m| m.last_seen.clone()).max().unwrap_or_default(),
                confidence: crate::patterns::cluster_confidence(dominant, size, c.cohesion),
                severity: 0.0,
                episodes: members.len() as u64,
                recommended_action: c.kinds.first().map_or_else(
                    || "investigate this group of similar failures".to_string(),
                    |k| format!("investigate the common cause of these {} failures", k.0),
                ),
                description,
            }
        })
        .collect()
}

/// The share of a cluster's members its dominant kind, class and template must each hold for
/// [`cluster_patterns`] to take it for the same failure as another cluster.
const SAME_FAILURE: f64 = 0.9;

/// Failures dated before this (10⁸ s since the epoch, 1973-03-03) are counted far apart
/// whatever the others' times: no failure log holds such times, but kernel times counted
/// from boot without `--boot-time` do (an audit: a node's kmsg lines, more than 1 % of the
/// records, were dated 1970 and inside the middle 98 %, and nothing was said).
const BEFORE_ANY_LOG: i64 = 100_000_000_000_000;

/// How many of `times` (µs, in time order) lie far apart from the others — more than
/// [`FAR_APART_S`] and ten times the span of the middle 98 % (1st to 99th percentile) before
/// or after it, or before 1973 ([`BEFORE_ANY_LOG`]) — and the earliest of them.
fn far_apart(times: impl ExactSizeIterator<Item = i64> + Clone) -> (u64, Option<i64>) {
    let n = times.len();
    if n < 3 {
        return (0, None);
    }
    let at = |q: f64| {
        times
            .clone()
            .nth(((n - 1) as f64 * q).round() as usize)
            .unwrap_or_default()
    };
    let (p1, p99) = (at(0.01), at(0.99));
    let margin = ((p99 - p1) as f64 * 10.0).max(FAR_APART_S * 1e6);
    let far = |t: i64| (p1 - t) as f64 > margin || (t - p99) as f64 > margin || t < BEFORE_ANY_LOG;
    let count = times.clone().filter(|&t| far(t)).count() as u64;
    (count, times.clone().find(|&t| far(t)))
}

/// The timeline of the failures `rows` (in time order).
fn timeline(f: &Failures<'_>, rows: &[u32], max_bins: usize) -> Timeline {
    let (Some(&lo), Some(&hi)) = (rows.first(), rows.last()) else {
        return Timeline::default();
    };
    let (lo, hi) = (f.ts[lo as usize], f.ts[hi as usize]);
    let span = (hi - lo) as f64 / 1e6;
    let max_bins = max_bins.max(1);
    // Bins start at a multiple of the step (before `lo`), so a step that cuts the span into
    // `max_bins` pieces can need one bin more: then a step for a longer span, until the
    // bins fit (a step for `span + step` fits unless it is a longer step, which is tried in
    // turn; steps only grow, so this ends).
    let mut extra = 0.0;
    let (bin_s, bin_label, step, start, bins) = loop {
        let (bin_s, bin_label) = time_step(span + extra, max_bins);
        let step = ((bin_s * 1e6) as i64).max(1);
        let start = lo.div_euclid(step) * step;
        let bins = ((hi - start) / step + 1).max(1) as usize;
        if bins <= max_bins || extra > span * 4.0 + bin_s * 4.0 {
            break (bin_s, bin_label, step, start, bins.min(max_bins));
        }
        extra += bin_s;
    };
    let kinds: Vec<FailureKind> = {
        let c = counts(
            rows.iter().map(|&i| f.kind[i as usize].as_str()),
            rows.len(),
        );
        c.iter().filter_map(|c| c.key.parse().ok()).collect()
    };
    let slot: HashMap<FailureKind, usize> =
        kinds.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut counts = vec![vec![0u64; kinds.len()]; bins];
    for &i in rows {
        let (t, k) = (f.ts[i as usize], &f.kind[i as usize]);
        let b = (((t - start) / step) as usize).min(bins - 1);
        if let Some(&s) = slot.get(k) {
            counts[b][s] += 1;
        }
    }
    Timeline {
        start_us: start,
        bin_s,
        bin_label,
        kinds: kinds.iter().map(|k| k.as_str().to_string()).collect(),
        counts,
    }
}

/// The feature vectors of the failures of `order` that `sys` keeps and that have a row
/// (`sampled` of them, as [`cluster_stage`] samples them), each featurized after every failure before it
/// in `order`: the whole timeline streams through one featurizer, only the sampled vectors
/// are kept (as `train` does).
fn sampled_features(
    f: &Failures<'_>,
    order: &[u32],
    templates: &[TemplateId],
    sys: cluster::Systematic,
    sampled: usize,
    params: &FeatureParams,
) -> Result<FeatureMatrix, AnalyzeError> {
    let mut featurizer = Featurizer::new(params.clone()).map_err(cluster::ClusterError::from)?;
    let w = featurizer.width();
    let mut x = Array2::zeros((sampled, w));
    let mut scratch = vec![0.0; w];
    let mut k = 0;
    for (pos, &i) in order.iter().enumerate() {
        let i = i as usize;
        let Some(row) = f.row(i, Some(templates[i].get())) else {
            continue;
        };
        let keep = sys.keeps(pos) && k < sampled;
        let out = if keep {
            x.row_mut(k)
                .into_slice()
                .expect("a row of a standard-layout array is contiguous")
        } else {
            &mut scratch[..]
        };
        featurizer
            .push_into(&row, out)
            .map_err(cluster::ClusterError::from)?;
        k += usize::from(keep);
    }
    debug_assert_eq!(k, sampled);
    Ok(FeatureMatrix {
        schema: featurizer.schema().clone(),
        x,
    })
}

fn cluster_stage(
    f: &Failures<'_>,
    templates: &[TemplateId],
    order: &[u32],
    miner: &TemplateMiner,
    params: &AnalyzeParams,
    progress: &mut dyn Progress,
) -> Result<(Clusters, Vec<Option<ClusterId>>), AnalyzeError> {
    let n = f.len();
    let mut labels = vec![None; n];
    let skipped = |why: &str| Clusters {
        algorithm: "none".into(),
        skipped: Some(why.to_string()),
        ..Clusters::default()
    };
    if n < 3 {
        return Ok((skipped("fewer than 3 failures: nothing to cluster"), labels));
    }
    progress.stage("cluster", 0);
    // A systematic sample over time.
    let sys = cluster::Systematic::new(order.len(), params.sample);
    let idx: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(pos, _)| sys.keeps(*pos))
        .map(|(_, &i)| i as usize)
        .collect();
    let rows: Vec<FailureRow> = idx
        .iter()
        .filter_map(|&i| f.row(i, Some(templates[i].get())))
        .collect();
    if rows.len() < MIN_CLUSTER_ROWS {
        progress.finish();
        return Ok((
            skipped(&if sys.len() < order.len() {
                // The sample asked for, not the history, is small (an audit: "5 failures"
                // of 5,005 at `--sample 5`).
                format!(
                    "a sample of {} failures (--sample): clustering needs at least {MIN_CLUSTER_ROWS}",
                    rows.len()
                )
            } else {
                format!(
                    "{} failures: clustering needs at least {MIN_CLUSTER_ROWS}",
                    rows.len()
                )
            }),
            labels,
        ));
    }
    // The silhouette sample holds at least twice the largest k (checked by the params).
    let cp = params.cluster.for_sample(rows.len());
    // The sampled rows' features as online assignment below computes them: each row
    // featurized after every failure before it on the whole timeline (attempt, the worker's
    // gap and rate, the task's recent failures), not among the sample alone — fitted on the
    // sample's own history, 38 % of the rows were noise at `--sample 500` against 1 % for
    // `train` on the same history.
    let raw = if sys.len() == order.len() {
        Featurizer::new(cp.features.clone())
            .map_err(cluster::ClusterError::from)?
            .extend(&rows)
    } else {
        sampled_features(f, order, templates, sys, rows.len(), &cp.features)?
    };
    // Distinct feature vectors: KMeans needs at least two.
    if cluster::distinct_rows(&raw.x) < 3 {
        progress.finish();
        return Ok((
            skipped("the failures are (nearly) all alike: nothing to cluster"),
            labels,
        ));
    }
    let valid = cp.check()?;
    let (model, fit_labels) = match ClusterModel::fit_featurized(&rows, &raw, &valid) {
        Ok(fit) => fit,
        Err(e) => {
            progress.finish();
            return Ok((skipped(&format!("clustering failed: {e}")), labels));
        }
    };
    // PCA over the scaled sample.
    let z = model
        .scaler
        .transform(&raw)
        .map_err(cluster::ClusterError::from)?;
    let pca = pca_of(&z, &fit_labels, &model, params.pca_points);
    // Online assignment of every row, in time order.
    progress.stage("assign", n as u64);
    let mut online = OnlineClusterer::new(model.clone())?;
    let mut sizes = vec![0u64; model.clusters.len()];
    for (done, &i) in order.iter().enumerate() {
        let i = i as usize;
        if let Some(row) = f.row(i, Some(templates[i].get())) {
            let c = online.assign(&row);
            if let Some(c) = c {
                sizes[c.0 as usize] += 1;
            }
            labels[i] = c;
        }
        if done % TICK == 0 {
            progress.position(done as u64);
        }
    }
    progress.finish();
    let noise = labels.iter().filter(|l| l.is_none()).count() as u64;
    // What each cluster holds, counted over its members (every row assigned to it), not over
    // the sample it was fitted on (an audit: with --sample, "mostly software_exception
    // (44 %)" where tpu_error led its members, 37.8 % against 37.0 %). A cluster no row
    // was assigned to keeps the fit's figures.
    let k = model.clusters.len();
    let mut kind_n: Vec<FxMap<FailureKind, u64>> = vec![FxMap::default(); k];
    let mut class_n: Vec<FxMap<HardwareClass, u64>> = vec![FxMap::default(); k];
    let mut template_n: Vec<FxMap<u64, u64>> = vec![FxMap::default(); k];
    let mut worker_n: Vec<FxMap<&str, u64>> = vec![FxMap::default(); k];
    for (i, label) in labels.iter().enumerate() {
        if let Some(c) = label {
            let c = c.0 as usize;
            *kind_n[c].entry(f.kind[i]).or_default() += 1;
            *class_n[c].entry(f.class[i]).or_default() += 1;
            *template_n[c].entry(templates[i].get()).or_default() += 1;
            *worker_n[c].entry(f.worker[i]).or_default() += 1;
        }
    }
    let most = params.cluster.top;
    // The `most` commonest values with their counts, most common first (ties by `name`).
    fn commonest<T: Copy>(
        counts: &FxMap<T, u64>,
        most: usize,
        name: impl Fn(T) -> String,
    ) -> Vec<(T, u64)> {
        let mut v: Vec<(T, u64, String)> = counts.iter().map(|(&t, &n)| (t, n, name(t))).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.2.cmp(&b.2)));
        v.truncate(most);
        v.into_iter().map(|(t, n, _)| (t, n)).collect()
    }
    let kind_name = |k: FailureKind| k.as_str().to_string();
    let class_name = |h: HardwareClass| h.as_str().to_string();
    // The message a cluster's summary quotes: the commonest template among its members of
    // its dominant kind and class (an audit: with 16 templates of equal share, the first
    // quoted a GPU network message under "mostly tpu_error on TPU").
    let dominant: Vec<Option<(FailureKind, HardwareClass)>> = model
        .clusters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let kind = commonest(&kind_n[i], 1, kind_name).first().map(|k| k.0);
            let class = commonest(&class_n[i], 1, class_name).first().map(|h| h.0);
            kind.zip(class).or_else(|| {
                c.kinds
                    .first()
                    .map(|k| k.value)
                    .zip(c.hardware.first().map(|h| h.value))
            })
        })
        .collect();
    let mut quoted: FxMap<(u32, u64), u64> = FxMap::default();
    for (i, label) in labels.iter().enumerate() {
        if let Some((c, Some((kind, class)))) = label.map(|c| (c.0, dominant[c.0 as usize])) {
            if f.kind[i] == kind && f.class[i] == class {
                *quoted.entry((c, templates[i].get())).or_default() += 1;
            }
        }
    }
    let mut quote: FxMap<u32, (u64, u64)> = FxMap::default();
    for (&(c, t), &count) in &quoted {
        let e = quote.entry(c).or_insert((t, count));
        if count > e.1 || (count == e.1 && t < e.0) {
            *e = (t, count);
        }
    }
    let mut items: Vec<ClusterItem> = model
        .clusters
        .iter()
        .map(|c| {
            let i = c.id.0 as usize;
            let members = sizes[i];
            let (kinds, hardware, templates, workers) = if members > 0 {
                let shares = |v: Vec<(String, u64)>| -> Vec<(String, f64)> {
                    v.into_iter()
                        .map(|(t, n)| (t, n as f64 / members as f64))
                        .collect()
                };
                (
                    shares(
                        commonest(&kind_n[i], most, kind_name)
                            .into_iter()
                            .map(|(k, n)| (kind_name(k), n))
                            .collect(),
                    ),
                    shares(
                        commonest(&class_n[i], most, class_name)
                            .into_iter()
                            .map(|(h, n)| (class_name(h), n))
                            .collect(),
                    ),
                    shares(
                        commonest(&template_n[i], most, |t: u64| format!("{t:020}"))
                            .into_iter()
                            .map(|(t, n)| (template_text(miner, t), n))
                            .collect(),
                    ),
                    shares(
                        commonest(&worker_n[i], most, |w: &str| w.to_string())
                            .into_iter()
                            .map(|(w, n)| (w.to_string(), n))
                            .collect(),
                    ),
                )
            } else {
                (
                    c.kinds
                        .iter()
                        .map(|s| (s.value.as_str().to_string(), s.share))
                        .collect(),
                    c.hardware
                        .iter()
                        .map(|s| (s.value.as_str().to_string(), s.share))
                        .collect(),
                    c.templates
                        .iter()
                        .map(|s| (template_text(miner, s.value), s.share))
                        .collect(),
                    c.workers
                        .iter()
                        .map(|s| (s.value.as_str().to_string(), s.share))
                        .collect(),
                )
            };
            let size = sizes[c.id.0 as usize];
            // "mostly" for a majority only (an audit: "mostly software_exception (29 %)").
            let most = if kinds.first().is_some_and(|k| k.1 > 0.5) {
                "mostly"
            } else {
                "most often"
            };
            let summary = format!(
                "{} — {most} {} on {}{}",
                c.id,
                kinds.first().map_or("?".to_string(), |k| format!(
                    "{} ({:.0} %)",
                    k.0,
                    k.1 * 100.0
                )),
                hardware.first().map_or("?".to_string(), |h| format!(
                    "{} ({:.0} %)",
                    h.0,
                    h.1 * 100.0
                )),
                quote
                    .get(&c.id.0)
                    .map(|&(t, _)| template_text(miner, t))
                    .or_else(|| templates.first().map(|t| t.0.clone()))
                    .map_or(String::new(), |t| format!(": “{t}”")),
            );
            ClusterItem {
                id: c.id.as_i64(),
                size,
                share: size as f64 / n as f64,
                kinds,
                hardware,
                templates,
                workers,
                cohesion: c.cohesion,
                first_seen: c.first_seen.to_string(),
                last_seen: c.last_seen.to_string(),
                summary,
            }
        })
        .collect();
    items.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));
    Ok((
        Clusters {
            algorithm: model.algorithm.as_str().to_string(),
            skipped: None,
            fitted_rows: rows.len() as u64,
            assigned_rows: 0,
            noise,
            silhouette: model.silhouette,
            items,
            pca,
        },
        labels,
    ))
}

fn pca_of(
    z: &Array2<f64>,
    labels: &[Option<ClusterId>],
    model: &crate::cluster::ClusterModel,
    max_points: usize,
) -> Pca {
    let Some((comps, explained)) = pca2(z) else {
        return Pca::default();
    };
    let Some(mean) = z.mean_axis(Axis(0)) else {
        return Pca::default();
    };
    let n = z.nrows();
    let step = n.div_ceil(max_points.max(1)).max(1);
    let idx: Vec<usize> = (0..n).step_by(step).collect();
    let sub = z.select(Axis(0), &idx);
    let p = project(&sub, &mean, &comps);
    let points = idx
        .iter()
        .zip(p.rows())
        .map(|(&i, r)| {
            (
                r[0],
                r[1],
                labels.get(i).copied().flatten().map_or(-1, |c| c.as_i64()),
            )
        })
        .collect();
    let centroids = if model.clusters.is_empty() {
        Vec::new()
    } else {
        let c = model.centroids();
        let pc = project(&c, &mean, &comps);
        model
            .clusters
            .iter()
            .zip(pc.rows())
            .map(|(cl, r)| (r[0], r[1], cl.id.as_i64()))
            .collect()
    };
    let _: &Array1<f64> = &mean;
    Pca {
        explained,
        points,
        centroids,
    }
}

/// Where the online detector reported bursts, per (class, kind): disjoint `(first, last)`
/// failure times (µs) in time order, overlapping reports merged.
type OnlineBursts = FxMap<(HardwareClass, FailureKind), Vec<(i64, i64)>>;

/// The detector's patterns over the history (bad workers, rapid failures, online bursts),
/// and the spans of its bursts.
fn pattern_stage(
    f: &Failures<'_>,
    templates: &[TemplateId],
    order: &[u32],
    params: &AnalyzeParams,
    progress: &mut dyn Progress,
) -> Result<(Vec<PatternItem>, OnlineBursts), AnalyzeError> {
    // The failures observed: `order` (all, or those with a time of their own).
    let n = order.len();
    let mut online = OnlineBursts::default();
    if n == 0 {
        return Ok((Vec::new(), online));
    }
    progress.stage("patterns", n as u64);
    let mut pp = params.patterns.clone();
    // Threshold patterns count every key with 3 failures an hour: over a whole history they
    // fire everywhere. Bursts are found against each kind's own rate instead (`bursts`).
    pp.threshold = u32::MAX;
    let mut det = PatternDetector::new(pp.clone())?;
    // The detector is asked for its active patterns every half window of report time, quiet
    // gaps skipped (below): at most a few checks per failure, however long the history. (An
    // audit: with the step stretched to the span, one record dated in the year 9999 — or,
    // before that, a year after the rest — hid every rapid failure of the history.)
    let step = (pp.window_s * 1e6 / 2.0).max(1.0) as i64;
    let mut next_check = f.ts[order[0] as usize] + step;
    let mut merged: FxMap<(PatternKind, String), PatternItem> = FxMap::default();
    let mut check = |det: &mut PatternDetector, at: i64| {
        for p in det.patterns(Timestamp::from_micros(at)) {
            let key = (p.kind, p.key.clone());
            let first = p.first_seen.to_string();
            let last = p.last_seen.to_string();
            let e = merged.entry(key).or_insert_with(|| PatternItem {
                kind: p.kind.as_str().to_string(),
                key: p.key.clone(),
                count: 0,
                first_seen: first.clone(),
                last_seen: last.clone(),
                confidence: 0.0,
                severity: 0.0,
                episodes: 0,
                recommended_action: p.recommended_action.clone(),
                description: String::new(),
            });
            e.episodes += 1;
            // The count and description are the strongest detection's, and say when it was
            // (an audit: "task 5 failed 10 times, 0.2 s apart" under a range of two years,
            // with nothing to tell when the 10 happened).
            if p.count > e.count {
                e.count = p.count;
                e.description = if first == last {
                    format!("{} (at {first})", p.description)
                } else {
                    format!("{} ({first} .. {last})", p.description)
                };
            }
            e.confidence = e.confidence.max(p.confidence);
            if first < e.first_seen {
                e.first_seen = first;
            }
            if last > e.last_seen {
                e.last_seen = last;
            }
        }
        for b in det.bursts(Timestamp::from_micros(at)) {
            let (first, last) = (b.first_seen.as_micros(), b.last_seen.as_micros());
            let spans = online.entry((b.class, b.kind)).or_default();
            match spans.last_mut() {
                Some(s) if first <= s.1 => s.1 = s.1.max(last),
                _ => spans.push((first, last)),
            }
        }
        det.prune();
    };
    let mut workers: FxMap<&str, Option<WorkerId>> = FxMap::default();
    for (done, &i) in order.iter().enumerate() {
        let i = i as usize;
        let t = f.ts[i];
        while t >= next_check {
            check(&mut det, next_check);
            next_check += step;
            if t - next_check > step * 4 {
                // A long quiet gap: jump (nothing changes without failures).
                next_check = t.div_euclid(step) * step;
            }
        }
        // Workers are few: check each id once.
        let worker = workers
            .entry(f.worker[i])
            .or_insert_with(|| WorkerId::new(f.worker[i]).ok());
        let (Ok(task), Some(worker)) = (TaskId::new(f.task[i]), worker.as_ref()) else {
            continue;
        };
        det.observe(&Observation {
            task: &task,
            worker,
            class: f.class[i],
            kind: f.kind[i],
            template: Some(templates[i].get()),
            at: Timestamp::from_micros(t),
        });
        if done % TICK == 0 {
            progress.position(done as u64);
        }
    }
    let end = f.ts[order[n - 1] as usize];
    check(&mut det, end);
    // A worker flagged once and not at the end of the history is said to be so: its
    // "quarantine" was advice for then (an audit found one flagged for a day listed four
    // months later beside the live ones, with nothing to tell them apart).
    let live: HashSet<String> = det
        .patterns(Timestamp::from_micros(end))
        .into_iter()
        .filter(|p| p.kind == PatternKind::BadWorker)
        .map(|p| p.key)
        .collect();
    let mut items: Vec<PatternItem> = merged.into_values().collect();
    // The online detector tests each (class, kind) at every failure against `spike_alpha`,
    // as a live fleet needs; over a whole history that is thousands of tests, and a few
    // pass by chance (an audit: bursts on a simulated fleet without any, at 8 failures
    // against 2.0 expected). Kept here: the bursts whose peak is beyond chance over every
    // (class, kind) and window of the history (Bonferroni, as the time bins are tested).
    let pairs = order
        .iter()
        .map(|&i| (f.class[i as usize], f.kind[i as usize]))
        .collect::<HashSet<_>>()
        .len() as f64;
    let windows = ((end - f.ts[order[0] as usize]) as f64 / (pp.spike_window_s * 1e6)).max(1.0);
    let alpha = pp.spike_alpha / (pairs * windows).max(1.0);
    items.retain(|p| p.kind != PatternKind::Burst.as_str() || 1.0 - p.confidence < alpha);
    for p in &mut items {
        if p.kind == PatternKind::BadWorker.as_str() && !live.contains(&p.key) {
            p.recommended_action = format!(
                "not flagged at the end of the history (last {}): check it before acting; then: {}",
                p.last_seen, p.recommended_action
            );
        }
    }
    progress.finish();
    Ok((items, online))
}

/// Time bins (the pattern window wide) where a kind or a hardware class fails far above its
/// own mean rate — at least `burst_factor` times it and `burst_min` failures — and more than
/// chance allows: the bin's count has a Poisson upper tail (at the key's mean per bin) below
/// `patterns.spike_alpha` divided by the number of (key, bin) cells tested (Bonferroni), as
/// the engine's online burst test asks of one window. The mean is over the bins that hold
/// any failure, not over the whole span: a history with gaps (logs of a few days, one record
/// dated a year off) is not a quiet fleet, and its busy hours are not bursts (an audit: one
/// record a year early made a steady five hours two bursts "1753× its mean"). Like the online detector, a bin counts
/// a task's first failure in it only: one task retried again and again is not a burst.
/// Consecutive burst bins merge into one burst, keyed `class:CLASS` or `kind:KIND`, from its
/// first counted failure to its last; its confidence is 1 − 1/(peak bin ÷ mean), at most
/// 0.99. A burst the online detector already reported for the same class or kind (`online`)
/// in an overlapping span is not reported again.
fn bursts(
    f: &Failures<'_>,
    order: &[u32],
    params: &AnalyzeParams,
    online: &OnlineBursts,
) -> Vec<PatternItem> {
    let n = order.len();
    if n == 0 {
        return Vec::new();
    }
    let lo = f.ts[order[0] as usize];
    let width = ((params.patterns.window_s * 1e6) as i64).max(1);
    // A task's first failure per bin (`order` is in time order).
    let mut seen: HashSet<(&str, i64), FxBuildHasher> = HashSet::default();
    let firsts: Vec<u32> = order
        .iter()
        .copied()
        .filter(|&i| seen.insert((f.task[i as usize], (f.ts[i as usize] - lo) / width)))
        .collect();
    drop(seen);
    // The bins the fleet reported anything in: the time it was observed.
    let nbins = firsts
        .iter()
        .map(|&i| (f.ts[i as usize] - lo) / width)
        .collect::<HashSet<_>>()
        .len() as f64;
    if nbins < 2.0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Every (kind, bin) and (class, bin) cell is a test.
    let keys = |key_of: &dyn Fn(usize) -> &'static str| {
        firsts
            .iter()
            .map(|&i| key_of(i as usize))
            .collect::<HashSet<_>>()
            .len()
    };
    let tests = (keys(&|i| f.kind[i].as_str()) + keys(&|i| f.class[i].as_str())) as f64 * nbins;
    let alpha = params.patterns.spike_alpha / tests.max(1.0);
    // Whether an online burst of a (class, kind) that `pair` accepts spans part of [a, b].
    let covered = |pair: &dyn Fn(HardwareClass, FailureKind) -> bool, a: i64, b: i64| {
        online
            .iter()
            .filter(|((c, k), _)| pair(*c, *k))
            .any(|(_, spans)| spans.iter().any(|&(s, e)| s <= b && a <= e))
    };
    let mut per_key = |label: &str,
                       key_of: &dyn Fn(usize) -> &'static str,
                       is_online: &dyn Fn(&str, i64, i64) -> bool| {
        // (key, bin) → (failures, first, last)
        let mut bins: BTreeMap<(&'static str, i64), (u64, i64, i64)> = BTreeMap::new();
        let mut totals: HashMap<&'static str, u64> = HashMap::new();
        for &i in &firsts {
            let i = i as usize;
            let (k, t) = (key_of(i), f.ts[i]);
            let e = bins.entry((k, (t - lo) / width)).or_insert((0, t, t));
            e.0 += 1;
            e.1 = e.1.min(t);
            e.2 = e.2.max(t);
            *totals.entry(k).or_default() += 1;
        }
        // The current run of burst bins of one key.
        struct Run<'k> {
            key: &'k str,
            b0: i64,
            b1: i64,
            count: u64,
            peak: u64,
            mean: f64,
            first: i64,
            last: i64,
        }
        let mut run: Option<Run<'_>> = None;
        let flush = |r: Option<Run<'_>>, out: &mut Vec<PatternItem>| {
            let Some(r) = r else { return };
            if is_online(r.key, r.first, r.last) {
                return;
            }
            let Run {
                key: k,
                b0,
                b1,
                count,
                peak,
                mean,
                first,
                last,
            } = r;
            let ratio = peak as f64 / mean.max(1e-9);
            out.push(PatternItem {
                kind: "surge".into(),
                key: format!("{label}:{k}"),
                count,
                first_seen: ts_string(first),
                last_seen: ts_string(last),
                // Every burst passed the significance test; how far above its mean it
                // rose tells bursts apart.
                confidence: (1.0 - 1.0 / ratio).clamp(0.0, 0.99),
                severity: 0.0,
                episodes: (b1 - b0 + 1) as u64,
                recommended_action: format!("investigate what changed for {label} {k} then"),
                description: format!(
                    "{count} {label} {k} failures (a task's first per bin) in {} bin(s) of {:.0} s; peak {peak} per bin, {ratio:.1}× its mean of {mean:.2}",
                    b1 - b0 + 1,
                    width as f64 / 1e6
                ),
            });
        };
        for ((k, b), (c, first, last)) in bins {
            let mean = totals[k] as f64 / nbins;
            let hot = c >= params.burst_min
                && c as f64 >= params.burst_factor * mean
                && poisson_upper_tail(c, mean) < alpha;
            match (&mut run, hot) {
                (Some(r), true) if r.key == k && r.b1 + 1 == b => {
                    r.b1 = b;
                    r.count += c;
                    r.peak = r.peak.max(c);
                    r.last = last;
                }
                (_, true) => {
                    flush(run.take(), &mut out);
                    run = Some(Run {
                        key: k,
                        b0: b,
                        b1: b,
                        count: c,
                        peak: c,
                        mean,
                        first,
                        last,
                    });
                }
                (_, false) => flush(run.take(), &mut out),
            }
        }
        flush(run, &mut out);
    };
    per_key("kind", &|i| f.kind[i].as_str(), &|k, a, b| {
        covered(&|_, kind| kind.as_str() == k, a, b)
    });
    per_key("class", &|i| f.class[i].as_str(), &|k, a, b| {
        covered(&|class, _| class.as_str() == k, a, b)
    });
    out
}

/// Severity = kind weight × confidence × ln(1 + count); keeps the `top` most severe of each
/// kind, most severe first.
fn rank_patterns(v: &mut Vec<PatternItem>, top: usize) -> u64 {
    for p in v.iter_mut() {
        let w = match p.kind.as_str() {
            "bad_worker" => 3.0,
            "burst" | "surge" => 2.0,
            _ => 1.0,
        };
        p.severity = w * p.confidence * (1.0 + p.count as f64).ln();
    }
    v.sort_by(|a, b| {
        b.severity
            .total_cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then(a.key.cmp(&b.key))
    });
    let mut seen: HashMap<String, usize> = HashMap::new();
    let before = v.len();
    v.retain(|p| {
        let c = seen.entry(p.kind.clone()).or_default();
        *c += 1;
        *c <= top
    });
    (before - v.len()) as u64
}

/// Rows of the actions table.
fn count_actions(root: &Path) -> Result<u64, AnalyzeError> {
    if !has_parts(root, Table::Actions) {
        return Ok(0);
    }
    let df = scan(root, Table::Actions)?
        .select([len().alias("n")])
        .collect()
        .map_err(q)?;
    Ok(df
        .column("n")
        .map_err(q)?
        .cast(&DataType::UInt64)
        .map_err(q)?
        .u64()
        .map_err(q)?
        .get(0)
        .unwrap_or(0))
}

fn strategy_stage(root: &Path) -> Result<(Vec<StrategyStat>, u64, u64), AnalyzeError> {
    use schema::*;
    if !has_parts(root, Table::Outcomes) {
        return Ok((Vec::new(), 0, 0));
    }
    let df = scan(root, Table::Outcomes)?
        .group_by([col(STRATEGY)])
        .agg([
            col(SUCCESS).cast(DataType::UInt64).sum().alias("successes"),
            len().cast(DataType::UInt64).alias("n"),
            col(COST).mean().alias("mean_cost"),
        ])
        .collect()
        .map_err(q)?;
    let strategy = df.column(STRATEGY).map_err(q)?.str().map_err(q)?;
    let succ = df.column("successes").map_err(q)?.u64().map_err(q)?;
    let n = df.column("n").map_err(q)?.u64().map_err(q)?;
    let cost = df.column("mean_cost").map_err(q)?.f64().map_err(q)?;
    let mut out = Vec::new();
    let (mut total, mut total_ok) = (0, 0);
    for i in 0..df.height() {
        let (k, ok) = (n.get(i).unwrap_or(0), succ.get(i).unwrap_or(0));
        total += k;
        total_ok += ok;
        let Some(s) = strategy.get(i) else { continue };
        let (lo, hi) = wilson(ok, k);
        out.push(StrategyStat {
            strategy: s.to_string(),
            n: k,
            successes: ok,
            rate: if k > 0 { ok as f64 / k as f64 } else { 0.0 },
            ci_low: lo,
            ci_high: hi,
            mean_cost: cost.get(i),
        });
    }
    out.sort_by(|a, b| {
        b.rate
            .total_cmp(&a.rate)
            .then(b.n.cmp(&a.n))
            .then(a.strategy.cmp(&b.strategy))
    });
    Ok((out, total, total_ok))
}

/// Failures of each task up to (and including the time of) its first successful outcome.
/// A task without one is unrecovered when it was escalated, else pending (its outcome not
/// reported, or still running: counted as unrecovered before, which a history cut short or a
/// live one turned into hundreds of "unrecovered" tasks — audit). With no `outcomes` in the
/// history, recovery cannot be judged: neither is counted (`None`).
fn attempts_stage(
    root: &Path,
    f: &Failures<'_>,
    order: &[u32],
    outcomes: u64,
) -> Result<AttemptsToRecovery, AnalyzeError> {
    use schema::*;
    const MAX_BUCKET: u64 = 10;
    let mut first_success: FxMap<String, i64> = FxMap::default();
    if has_parts(root, Table::Outcomes) {
        let df = scan(root, Table::Outcomes)?
            .filter(col(SUCCESS).eq(lit(true)))
            .group_by([col(TASK_ID)])
            .agg([col(TIMESTAMP).cast(DataType::Int64).min().alias("t")])
            .collect()
            .map_err(q)?;
        let task = df.column(TASK_ID).map_err(q)?.str().map_err(q)?;
        let t = df.column("t").map_err(q)?.i64().map_err(q)?;
        for (k, v) in task.iter().zip(t.iter()) {
            if let (Some(k), Some(v)) = (k, v) {
                first_success.insert(k.to_string(), v);
            }
        }
    }
    let mut escalated: HashSet<String> = HashSet::new();
    if has_parts(root, Table::Actions) {
        let df = scan(root, Table::Actions)?
            .filter(col(STRATEGY).eq(lit(crate::model::RecoveryStrategy::Escalation.as_str())))
            .select([col(TASK_ID)])
            .unique(None, UniqueKeepStrategy::Any)
            .collect()
            .map_err(q)?;
        let task = df.column(TASK_ID).map_err(q)?.str().map_err(q)?;
        escalated.extend(task.iter().flatten().map(str::to_string));
    }
    let mut per_task: FxMap<&str, (u64, bool)> = FxMap::default();
    for &i in order {
        let i = i as usize;
        let e = per_task.entry(f.task[i]).or_insert((0, false));
        match first_success.get(f.task[i]) {
            Some(&t) => {
                e.1 = true;
                if f.ts[i] <= t {
                    e.0 += 1;
                }
            }
            None => e.0 += 1,
        }
    }
    let mut out = AttemptsToRecovery {
        max_bucket: MAX_BUCKET,
        ..AttemptsToRecovery::default()
    };
    let mut hist = vec![0u64; MAX_BUCKET as usize + 1];
    let mut all: Vec<u64> = Vec::new();
    let (mut unrecovered, mut pending) = (0, 0);
    for (task, (attempts, recovered)) in &per_task {
        if *recovered {
            let a = (*attempts).max(1);
            out.recovered_tasks += 1;
            hist[a.min(MAX_BUCKET) as usize] += 1;
            all.push(a);
        } else if escalated.contains(*task) {
            unrecovered += 1;
        } else {
            pending += 1;
        }
    }
    out.unrecovered_tasks = (outcomes > 0).then_some(unrecovered);
    out.pending_tasks = (outcomes > 0).then_some(pending);
    if !all.is_empty() {
        all.sort_unstable();
        out.mean = Some(all.iter().sum::<u64>() as f64 / all.len() as f64);
        out.median = Some(all[all.len() / 2]);
        out.histogram = hist
            .iter()
            .enumerate()
            .skip(1)
            .map(|(a, c)| (a as u64, *c))
            .collect();
    }
    Ok(out)
}

fn export(
    path: &Path,
    f: &Failures<'_>,
    templates: &[TemplateId],
    labels: &[Option<ClusterId>],
    miner: &TemplateMiner,
    progress: &mut dyn Progress,
) -> Result<(), AnalyzeError> {
    let mut texts: FxMap<u64, String> = FxMap::default();
    for t in templates {
        texts
            .entry(t.get())
            .or_insert_with(|| template_text(miner, t.get()));
    }
    let mut w = ClassifiedWriter::create(path)?;
    let n = f.len();
    let mut start = 0;
    while start < n {
        let end = (start + EXPORT_BATCH).min(n);
        let r = start..end;
        let b = ClassifiedBatch {
            seq: f.seq[r.clone()].to_vec(),
            timestamp_us: f.ts[r.clone()].to_vec(),
            task_id: f.task[r.clone()].to_vec(),
            worker_id: f.worker[r.clone()].to_vec(),
            hardware_class: f.class[r.clone()].iter().map(|c| c.as_str()).collect(),
            kind: f.kind[r.clone()].iter().map(|k| k.as_str()).collect(),
            failure_type: f.failure_type[r.clone()].to_vec(),
            template_id: templates[r.clone()].iter().map(|t| t.get()).collect(),
            template: templates[r.clone()]
                .iter()
                .map(|t| texts.get(&t.get()).map_or("", String::as_str))
                .collect(),
            cluster_id: labels[r.clone()]
                .iter()
                .map(|l| l.map(|c| c.as_i64()))
                .collect(),
            message: f.message[r].to_vec(),
        };
        w.write(&b)?;
        start = end;
        progress.position(start as u64);
    }
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures_at(ts: &[i64]) -> Failures<'static> {
        let mut f = Failures::from_frame_empty(&DataFrame::empty());
        for &t in ts {
            f.ts.push(t);
            f.kind.push(FailureKind::OomGpu);
            f.task.push("t1");
        }
        f
    }

    /// Regression: bins start at a multiple of the step before the first failure, so a span
    /// of exactly `max` steps (or one not aligned to them) took `max + 1` bins: 61 where the
    /// documented maximum is 60.
    #[test]
    fn the_timeline_never_has_more_bins_than_the_maximum() {
        let min = 60_000_000i64;
        // 60 minutes from a whole minute: 61 one-minute bins before.
        let t0 = 1_741_824_000_000_000;
        let tl = timeline(&failures_at(&[t0, t0 + 60 * min]), &[0, 1], 60);
        assert!(tl.counts.len() <= 60, "{} bins", tl.counts.len());
        assert_eq!(tl.counts.iter().map(|c| c[0]).sum::<u64>(), 2);
        // Every span and offset, for a few maxima.
        for max in [1, 2, 7, 12, 60] {
            for span_s in [
                0,
                1,
                59,
                60,
                61,
                3599,
                3600,
                3601,
                86_400,
                86_399 * 3,
                40_000_000,
            ] {
                for offset_s in [0, 1, 29, 59] {
                    let lo = t0 + offset_s * 1_000_000;
                    let hi = lo + span_s * 1_000_000;
                    let tl = timeline(&failures_at(&[lo, hi]), &[0, 1], max);
                    let n = tl.counts.len();
                    assert!(
                        (1..=max).contains(&n),
                        "max {max} span {span_s} offset {offset_s}: {n} bins"
                    );
                    let step = (tl.bin_s * 1e6) as i64;
                    assert!(tl.start_us <= lo && hi < tl.start_us + step * n as i64);
                    assert_eq!(tl.counts.iter().map(|c| c[0]).sum::<u64>(), 2);
                    assert!(tl.counts[0][0] >= 1 && tl.counts[n - 1][0] >= 1);
                }
            }
        }
    }

    /// 48 hours of a few failures an hour (each a new task), a task stuck in hour 10 and
    /// retried 40 times, and 30 new tasks failing with `network` on the TPUs in hour 30.
    fn a_stuck_task_and_a_burst(names: &[String]) -> (Failures<'_>, Vec<u32>, i64) {
        let h = 3_600_000_000i64;
        let t0 = 1_700_000_000_000_000i64;
        let mut rows: Vec<(i64, &str, HardwareClass, FailureKind)> = Vec::new();
        let mut next = 0;
        let mut task = || {
            next += 1;
            names[next].as_str()
        };
        for hour in 0..48 {
            let t = t0 + hour * h;
            rows.push((
                t + 60_000_000,
                task(),
                HardwareClass::Gpu,
                FailureKind::OomGpu,
            ));
            rows.push((
                t + 120_000_000,
                task(),
                HardwareClass::Cpu,
                FailureKind::Timeout,
            ));
        }
        for i in 0..40 {
            let t = t0 + 10 * h + 300_000_000 + i * 60_000_000;
            rows.push((
                t,
                names[0].as_str(),
                HardwareClass::Cpu,
                FailureKind::Timeout,
            ));
        }
        for i in 0..30 {
            let t = t0 + 30 * h + 300_000_000 + i * 60_000_000;
            rows.push((t, task(), HardwareClass::Tpu, FailureKind::Network));
        }
        rows.sort_by_key(|r| r.0);
        let mut f = Failures::from_frame_empty(&DataFrame::empty());
        for (t, task, class, kind) in rows {
            f.ts.push(t);
            f.task.push(task);
            f.class.push(class);
            f.kind.push(kind);
        }
        let order = (0..f.ts.len() as u32).collect();
        (f, order, t0 + 30 * h + 300_000_000)
    }

    /// Regression: the binned bursts counted every failure, so one task stuck and retried 40
    /// times in an hour was a "burst" (the online detector counts a task's first failure in
    /// its window only); first/last seen were bin edges, not failure times; keys did not say
    /// whether they named a class or a kind.
    /// Regression (audit): 50 identical out-of-memory errors made ten "cluster" patterns of
    /// one description (split by when and on which worker they failed); clusters of the same
    /// failure make one pattern, others stay apart.
    #[test]
    fn clusters_of_the_same_failure_make_one_pattern() {
        let item = |id: i64, size: u64, kind: &str, share: f64, first: &str| ClusterItem {
            id,
            size,
            share: 0.0,
            kinds: vec![(kind.into(), share)],
            hardware: vec![("GPU".into(), 1.0)],
            templates: vec![("CUDA out of memory".into(), 1.0)],
            workers: Vec::new(),
            cohesion: 0.1,
            first_seen: first.into(),
            last_seen: first.into(),
            summary: format!("c{id}"),
        };
        let items = [
            item(0, 10, "oom_gpu", 1.0, "2026-01-02"),
            item(1, 30, "oom_gpu", 1.0, "2026-01-01"),
            item(2, 5, "timeout", 1.0, "2026-01-03"),
            item(3, 7, "oom_gpu", 0.6, "2026-01-04"),
            item(4, 4, "oom_gpu", 0.95, "2026-01-05"),
        ];
        let p = cluster_patterns(items.iter());
        let keys: Vec<(&str, u64)> = p.iter().map(|p| (p.key.as_str(), p.count)).collect();
        assert_eq!(
            keys,
            [("cluster-0+1+4", 44), ("cluster-2", 5), ("cluster-3", 7)]
        );
        assert_eq!(p[0].first_seen, "2026-01-01");
        assert_eq!(p[0].last_seen, "2026-01-05");
        assert!(
            p[0].description
                .starts_with("c1 (3 clusters of the same failure"),
            "{}",
            p[0].description
        );
        assert_eq!(p[1].description, "c2");
    }

    /// Regression (audit): the pattern list stopped at 50 of a kind without a word; how many
    /// were left out is counted.
    #[test]
    fn ranking_patterns_counts_what_it_leaves_out() {
        let item = |kind: &str, key: usize, count: u64| PatternItem {
            kind: kind.into(),
            key: format!("k{key}"),
            count,
            first_seen: String::new(),
            last_seen: String::new(),
            confidence: 0.9,
            severity: 0.0,
            episodes: 1,
            recommended_action: String::new(),
            description: String::new(),
        };
        let mut v: Vec<PatternItem> = (0..7)
            .map(|i| item("rapid_failure", i, 3 + i as u64))
            .collect();
        v.extend((0..2).map(|i| item("bad_worker", i, 10)));
        assert_eq!(rank_patterns(&mut v, 5), 2);
        assert_eq!(v.len(), 7);
        assert_eq!(v.iter().filter(|p| p.kind == "rapid_failure").count(), 5);
        // The most severe are kept: the largest counts.
        assert!(v.iter().all(|p| p.kind != "rapid_failure" || p.count >= 5));
    }

    #[test]
    fn far_apart_counts_the_failures_far_from_the_rest() {
        let day = 86_400_000_000i64;
        let base = 1_741_824_000_000_000i64; // 2025-03-13
        let steady: Vec<i64> = (0..500).map(|i| base + i * 60_000_000).collect();
        assert_eq!(far_apart(steady.iter().copied()), (0, None));
        // A month of data with a gap of a week is no outlier; one a year early and one in
        // 9999 are.
        let mut gap: Vec<i64> = (0..300).map(|i| base + i * day / 10).collect();
        gap.extend((0..300).map(|i| base + 37 * day + i * day / 10));
        assert_eq!(far_apart(gap.iter().copied()).0, 0);
        let mut odd = vec![base - 365 * day];
        odd.extend(&steady);
        odd.push(253_402_300_799_000_000);
        assert_eq!(far_apart(odd.iter().copied()), (2, Some(base - 365 * day)));
        assert_eq!(far_apart([base + 1, base + 2].into_iter()), (0, None));
        // Regression (analyze audit): kernel times counted from boot without a boot time,
        // more than 1 % of the records and so inside the middle 98 %, were not counted.
        let mut boot: Vec<i64> = (0..20).map(|i| i * 1_000_000).collect();
        boot.extend(&steady);
        assert_eq!(far_apart(boot.iter().copied()), (20, Some(0)));
    }

    #[test]
    fn regression_a_retried_task_is_no_burst_and_a_burst_spans_its_failures() {
        let names: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
        let (f, order, start) = a_stuck_task_and_a_burst(&names);
        let params = AnalyzeParams::default();
        let found = bursts(&f, &order, &params, &OnlineBursts::default());
        let mut keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["class:TPU", "kind:network"], "{found:#?}");
        for p in &found {
            assert_eq!(p.count, 30);
            assert_eq!(p.first_seen, ts_string(start));
            assert_eq!(p.last_seen, ts_string(start + 29 * 60_000_000));
        }
    }

    /// Regression: a burst the online detector had reported was reported again by the time
    /// bins of its class and of its kind — one burst three times.
    #[test]
    fn regression_a_burst_the_online_detector_reported_is_not_binned_again() {
        let names: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
        let (f, order, start) = a_stuck_task_and_a_burst(&names);
        let params = AnalyzeParams::default();
        let mut online = OnlineBursts::default();
        online.insert(
            (HardwareClass::Tpu, FailureKind::Network),
            vec![(start + 600_000_000, start + 1_200_000_000)],
        );
        assert!(bursts(&f, &order, &params, &online).is_empty());
        // An online burst of the same class but another kind covers the class only.
        let mut online = OnlineBursts::default();
        online.insert(
            (HardwareClass::Tpu, FailureKind::OomGpu),
            vec![(start, start + 60_000_000)],
        );
        let keys: Vec<String> = bursts(&f, &order, &params, &online)
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(keys, ["kind:network"]);
        // One elsewhere in time covers nothing.
        let mut online = OnlineBursts::default();
        online.insert(
            (HardwareClass::Tpu, FailureKind::Network),
            vec![(start - 20 * 3_600_000_000, start - 19 * 3_600_000_000)],
        );
        assert_eq!(bursts(&f, &order, &params, &online).len(), 2);
    }

    #[test]
    fn without_outcomes_no_task_is_counted_unrecovered() {
        let dir = tempfile::tempdir().unwrap();
        let f = failures_at(&[1, 2, 3]);
        let at = attempts_stage(dir.path(), &f, &[0, 1, 2], 0).unwrap();
        assert_eq!((at.recovered_tasks, at.unrecovered_tasks), (0, None));
        assert_eq!(at.pending_tasks, None);
        // Outcomes elsewhere in the history (none for this task) and no escalation of it:
        // pending, not unrecovered (audit: a history cut short counted every task whose
        // outcome was missing as unrecovered).
        let at = attempts_stage(dir.path(), &f, &[0, 1, 2], 5).unwrap();
        assert_eq!(
            (at.recovered_tasks, at.unrecovered_tasks, at.pending_tasks),
            (0, Some(0), Some(1))
        );
    }
}
