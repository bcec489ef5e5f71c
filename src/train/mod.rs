//! Tier 4 — offline training: the whole Parquet history → a versioned model directory under
//! `models/`, which the online side (engine, HTTP API) loads.
//!
//! ```text
//! <data-dir>/history ──► failures ──► template miner (two passes, refined) ──► templates.json
//!   (read-only,              │                 │
//!    committed parts)        │                 └──► template → kind table ──► classifier.json
//!                            └──► features ──► scaler + KMeans/DBSCAN ─────► clusters.json
//!                    outcomes ──► ranking::frames::success_rates ──────────► success_rates.json
//!        outcomes ⋈ failures ──► ranking::frames::refined_success_rates ──┘ (refined)
//!                                                     manifest.json: format version, feature
//!                                                     schema, data range, metrics, BLAKE3 hashes
//! ```
//!
//! - **Templates**: the Drain-style miner of [`template`](crate::template) learns every
//!   failure message, is refined, and each message gets its final template.
//! - **Learned classifier** ([`TemplateClassifier`]): the majority kind of each template among
//!   the failures the rule table classified (at least `min_support` of them, the majority
//!   holding at least `min_purity`). It does not replace the rules: it is the fallback for a
//!   message the rules call `unknown` whose template the history knows. Its accuracy is
//!   measured on held-out failures (every `holdout_every`-th by sequence number; the table is
//!   refitted without them; template ids come from the miner fitted on every message) as
//!   agreement with the rules, with the share of held-out failures it covers.
//! - **Scaler and clusters**: fitted ([`ClusterModel::fit_featurized`]) on a systematic
//!   sample over time (at most `sample` rows) whose feature vectors come from featurizing
//!   every failure in time order — the history features (attempt, worker gap and rate, the
//!   task's recent failures) of the whole timeline, as online placement computes them, not of
//!   the thinned one — then every failure is placed online to measure the noise share.
//!   Skipped, with the reason in the metrics, on fewer than 20 rows or when the failures are
//!   nearly all alike.
//! - **Success-rate tables** ([`SuccessTables`]): successes, failures and costs per (hardware
//!   class, kind, strategy) — the counts [`Ranker`](crate::ranking::Ranker) consumes: a
//!   server seeds its ranking with them where its own history has no evidence
//!   ([`Model::seed_ranker`]). These are per reported kind (the outcomes table's). Beside
//!   them, the **refined tables** (format 2): each outcome joined to the failure it answered
//!   ([`refined_success_rates`](crate::ranking::frames::refined_success_rates)), counted per
//!   fine context (classifier rule, Xid code, repeat failure) and finest context (the message
//!   signature), keyed exactly as the online ranking keys them and under the kind it ranks
//!   with ([`ranked_kind`](crate::ranking::ranked_kind)): memory exhausted on a TPU or an
//!   NPU, logged as the device's runtime error, is an `oom_gpu` context there, and seeds
//!   that context of a server's ranking. Seeding the refined contexts themselves is an
//!   option (`ranking.seed_refined`), off: measured, it started worse.
//!
//! Training reads only the committed history: rows of flushes up to the manifest's
//! `flushed_seq`, each sequence number once, in the lazy scans of the success tables
//! ([`store::scan`](crate::store::scan)) as in the rows read whole
//! ([`committed_rows`](crate::store::committed_rows)); records still in the write-ahead log
//! are left for the next run. It writes nothing under the data directory, so it can run
//! beside a live server. [`Model::save`] writes the
//! directory atomically, and replaces an existing model in one step; [`Model::load`] verifies
//! hashes and reads every format version up to [`MODEL_FORMAT_VERSION`].
//!
//! ```no_run
//! use faultline::train::{train, Model, TrainOptions};
//! use faultline::Timestamp;
//! use std::path::Path;
//!
//! let model = train(Path::new("data"), &TrainOptions::new("nightly", Timestamp::now())).unwrap();
//! model.save(Path::new("models/nightly")).unwrap();
//! let back = Model::load(Path::new("models/nightly")).unwrap();
//! assert_eq!(back.manifest().name, "nightly");
//! ```

mod classifier;
mod history;
mod model;
mod success;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use classifier::{ClassifierMetrics, TemplateClassifier, TemplateKind, CLASSIFIER_METHOD};
pub use model::{
    check_model_dir, prepare_model_dir, Annotation, Artifact, ClassifierInfo, ClusterMetrics,
    DataRange, FeatureSchemaInfo, Manifest, Metrics, Model, SuccessMetrics, TemplateMetrics,
    CLASSIFIER_FILE, CLUSTERS_FILE, MANIFEST_FILE, MODEL_FORMAT_VERSION, SUCCESS_FILE,
    TEMPLATES_FILE,
};
pub use success::{ContextCounts, RefinedContext, RefinedLevel, StrategyCount, SuccessTables};

use crate::cluster::{self, ClusterError, ClusterModel, ClusterParams, OnlineClusterer};
use crate::features::{FeatureError, FeatureMatrix, FeatureParams, Featurizer};
use crate::model::Timestamp;
use crate::ranking::RankingError;
use crate::store::{FailureRow, StoreError};
use crate::template::{TemplateConfig, TemplateError, TemplateId, TemplateMiner};

/// Fewest sampled failures clustering runs on.
const MIN_CLUSTER_ROWS: usize = 20;

/// Errors of training and of loading a model. Every I/O error names its path.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The data directory holds no history.
    #[error("{}: no history/ directory (write one with `faultline ingest` or `faultline analyze`)", path.display())]
    NoHistory {
        /// The data directory.
        path: PathBuf,
    },
    /// The directory is a simulator's JSONL output, not a data directory (an audit: it got
    /// the plain "no history" answer, where `eval ranking` said what to do).
    #[error("{0}: a simulator's JSONL output, not a data directory; `faultline ingest {0} --data DIR` imports it (or run the simulator with --format parquet)", path.display())]
    Simulation {
        /// The directory.
        path: PathBuf,
    },
    /// The history holds fewer outcomes than [`TrainOptions::min_outcomes`].
    #[error("{}: the history holds {found} outcome(s), fewer than the {min} required (--min-outcomes): nothing was trained or written", path.display())]
    TooFewOutcomes {
        /// The data directory.
        path: PathBuf,
        /// Outcome rows in the history.
        found: u64,
        /// The least required.
        min: u64,
    },
    /// The history holds no failures.
    #[error("{}: the history has no failures to train on{}", path.display(), if *above_commit > 0 {
        format!(" ({above_commit} failure row(s) lie in parts above its commit point, left by a write interrupted before it committed, e.g. a killed ingest: they are not part of the history, and the next write to the directory sets them aside)")
    } else {
        String::new()
    })]
    Empty {
        /// The data directory.
        path: PathBuf,
        /// Failure rows in parts above the commit point (an interrupted write's).
        above_commit: usize,
    },
    /// A training option is out of range.
    #[error("invalid training option {field}: {detail}")]
    Invalid {
        /// The option.
        field: String,
        /// Why.
        detail: String,
    },
    /// A model file is not what its format says (the detail names the field).
    #[error("{}: {detail}", path.display())]
    Artifact {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An artifact's bytes do not match the hash in the manifest.
    #[error("{}: blake3 hash mismatch (manifest {expected}, file {found}): the file was changed or is corrupt", path.display())]
    Hash {
        /// The file.
        path: PathBuf,
        /// Hash in the manifest.
        expected: String,
        /// Hash of the file.
        found: String,
    },
    /// The model was written by a newer faultline.
    #[error("{}: model format_version {found} is newer than this faultline reads (up to {supported}); upgrade faultline or retrain the model", path.display())]
    NewerFormat {
        /// The manifest.
        path: PathBuf,
        /// Its version.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The manifest names a format version that never existed.
    #[error("{}: model format_version {found} does not exist", path.display())]
    UnknownFormat {
        /// The manifest.
        path: PathBuf,
        /// Its version.
        found: u64,
    },
    /// A model part could not be encoded.
    #[error("cannot encode {what}: {detail}")]
    Encode {
        /// The artifact.
        what: String,
        /// The encoder's message.
        detail: String,
    },
    /// Reading the history failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The success-rate query or the ranking parameters failed.
    #[error(transparent)]
    Ranking(#[from] RankingError),
    /// Clustering failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Featurization failed.
    #[error(transparent)]
    Features(#[from] FeatureError),
    /// Invalid template configuration.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// Training options.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// The model's name (written to the manifest).
    pub name: String,
    /// When it is trained (the caller's clock: the library never reads it).
    pub created_at: Timestamp,
    /// Template miner configuration.
    pub templates: TemplateConfig,
    /// Clustering parameters (features, weights, algorithm, seed).
    pub cluster: ClusterParams,
    /// Rows the clusters are fitted on at most (a systematic sample over time).
    pub sample: usize,
    /// Every this-many-th failure (by sequence number) is held out to evaluate the learned
    /// classifier (5 = 20 %); 0 holds nothing out.
    pub holdout_every: u64,
    /// Fewest classified failures a template needs for a learned kind.
    pub min_support: u64,
    /// Fewest outcome rows the history must hold, else nothing is trained
    /// ([`TrainError::TooFewOutcomes`]): a nightly job's guard against replacing a model with
    /// one whose success tables learned from nothing. 0: no guard.
    pub min_outcomes: u64,
    /// Smallest share of a template's classified failures its learned kind needs.
    pub min_purity: f64,
}

impl TrainOptions {
    /// Defaults: default templates and clustering (seed 42), 20,000 cluster rows, 20 %
    /// held out, a learned kind from 3 failures agreeing at 80 %.
    pub fn new(name: impl Into<String>, created_at: Timestamp) -> Self {
        TrainOptions {
            name: name.into(),
            created_at,
            templates: TemplateConfig::default(),
            cluster: ClusterParams::default(),
            sample: 20_000,
            holdout_every: 5,
            min_support: 3,
            min_outcomes: 0,
            min_purity: 0.8,
        }
    }

    /// Validates the options; the error names the option.
    pub fn check(&self) -> Result<(), TrainError> {
        let bad = |f: &str, d: String| TrainError::Invalid {
            field: f.to_string(),
            detail: d,
        };
        if self.name.trim().is_empty() {
            return Err(bad("name", "must not be empty".into()));
        }
        if self.sample < MIN_CLUSTER_ROWS {
            return Err(bad(
                "sample",
                format!("{} is below {MIN_CLUSTER_ROWS}", self.sample),
            ));
        }
        if self.holdout_every == 1 {
            return Err(bad(
                "holdout_every",
                "1 would hold out every failure (0 holds out none)".into(),
            ));
        }
        if self.min_support == 0 {
            return Err(bad("min_support", "must be at least 1".into()));
        }
        if !(self.min_purity > 0.0 && self.min_purity <= 1.0) {
            return Err(bad(
                "min_purity",
                format!("{} is not in (0, 1]", self.min_purity),
            ));
        }
        Ok(())
    }
}

/// Trains a model on the history under `data` (a data directory).
pub fn train(data: &Path, opts: &TrainOptions) -> Result<Model, TrainError> {
    train_with(data, opts, &mut |_| {})
}

/// [`train`], calling `stage` with the name of each stage as it starts ("read", "templates",
/// "classifier", "clusters", "success_rates"), for a progress display.
pub fn train_with(
    data: &Path,
    opts: &TrainOptions,
    stage: &mut dyn FnMut(&'static str),
) -> Result<Model, TrainError> {
    opts.check()?;
    let params = opts
        .templates
        .clone()
        .check()
        .map_err(TemplateError::from)?;
    let cluster_params = opts.cluster.clone().check()?;

    stage("read");
    let h = history::read(data)?;
    // Every later read of the history stops at the commit point this one read: one model,
    // one snapshot, however much is committed while it trains (an audit: the success tables
    // of a train beside an ingest counted 5,010 outcomes against the 288 of the rest).
    let snapshot = h.flushed;
    if h.failures.is_empty() {
        return Err(TrainError::Empty {
            path: data.to_path_buf(),
            above_commit: crate::store::rows_above_commit(
                data,
                crate::store::Table::Failures,
                snapshot,
            ),
        });
    }
    if (h.outcomes.len() as u64) < opts.min_outcomes {
        return Err(TrainError::TooFewOutcomes {
            path: data.to_path_buf(),
            found: h.outcomes.len() as u64,
            min: opts.min_outcomes,
        });
    }
    let n = h.failures.len();

    stage("templates");
    let (miner, templates) = mine(
        params,
        h.failures.iter().map(|f| f.1.record.error.message.as_str()),
    );
    let distinct = h
        .failures
        .iter()
        .map(|f| f.1.record.error.message.as_str())
        .collect::<HashSet<_>>()
        .len();
    let mut sizes: Vec<u64> = miner.templates().map(|t| t.count).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let template_metrics = TemplateMetrics {
        templates: miner.len() as u64,
        distinct_messages: distinct as u64,
        top10_share: sizes.iter().take(10).sum::<u64>() as f64 / n as f64,
    };

    stage("classifier");
    let labelled: Vec<(u64, TemplateId, crate::model::FailureKind)> = h
        .failures
        .iter()
        .zip(&templates)
        .map(|((seq, f), t)| (*seq, *t, f.kind))
        .collect();
    let mut classifier_metrics = classifier::evaluate(
        &labelled,
        opts.holdout_every,
        opts.min_support,
        opts.min_purity,
    );
    let table = TemplateClassifier::fit(
        labelled.iter().map(|(_, t, k)| (*t, *k)),
        opts.min_support,
        opts.min_purity,
    );
    classifier_metrics.entries = table.entries.len() as u64;

    stage("clusters");
    let rows: Vec<FailureRow> = h
        .failures
        .into_iter()
        .zip(&templates)
        .map(|((_, mut f), t)| {
            f.template_id = Some(t.get());
            f
        })
        .collect();
    let (clusters, cluster_metrics) = fit_clusters(&rows, opts, &cluster_params)?;

    stage("success_rates");
    let success = SuccessTables::from_history_upto(data, snapshot)?;
    let outcomes = success.outcomes();
    let success_metrics = SuccessMetrics {
        contexts: success.contexts.len() as u64,
        cells: success
            .contexts
            .iter()
            .map(|c| c.strategies.len() as u64)
            .sum(),
        // An empty sum of floats is −0 (audit: the JSON said `"outcomes": -0.0`).
        outcomes: outcomes + 0.0,
        success_rate: (outcomes > 0.0).then(|| success.successes() / outcomes),
    };

    let ts = |it: &mut dyn Iterator<Item = Timestamp>| {
        let v: Vec<Timestamp> = it.collect();
        (v.iter().min().copied(), v.iter().max().copied())
    };
    let (first, last) = ts(&mut rows.iter().map(|r| r.record.timestamp));
    let (first_outcome, last_outcome) = ts(&mut h.outcomes.iter().map(|o| o.timestamp));
    let features = clusters.as_ref().map_or_else(
        || cluster_params.params().features.clone(),
        |c| c.params.features.clone(),
    );
    let schema = features.schema();
    let manifest = Manifest {
        format_version: MODEL_FORMAT_VERSION,
        name: opts.name.clone(),
        created_at: opts.created_at,
        faultline_version: env!("CARGO_PKG_VERSION").to_string(),
        feature_schema: FeatureSchemaInfo {
            version: schema.version,
            names: schema.names.clone(),
            params: features,
        },
        data_range: DataRange {
            data: data.display().to_string(),
            first,
            last,
            failures: n as u64,
            outcomes: h.outcomes.len() as u64,
            first_outcome,
            last_outcome,
        },
        metrics: Metrics {
            templates: template_metrics,
            classifier: classifier_metrics,
            clusters: cluster_metrics,
            success: success_metrics,
        },
        classifier: ClassifierInfo {
            method: CLASSIFIER_METHOD.to_string(),
            description: format!(
                "message template → majority failure kind among the history's classified \
                 failures (≥ {} failures, ≥ {:.0} % agreeing); a fallback for messages the rule \
                 table calls unknown; accuracy = held-out agreement with the rules",
                opts.min_support,
                opts.min_purity * 100.0
            ),
        },
        artifacts: Vec::new(),
    };
    let mut model = Model::assemble(manifest, miner, table, clusters, success)?;
    model.refresh_artifacts()?;
    Ok(model)
}

/// Two-pass mining (learn every message, refine, finalize each), each distinct message
/// tokenized once per pass.
fn mine<'a>(
    params: crate::template::TemplateParams,
    messages: impl Iterator<Item = &'a str> + Clone,
) -> (TemplateMiner, Vec<TemplateId>) {
    let mut miner = TemplateMiner::new(params);
    let mut cache: HashMap<&str, TemplateId> = HashMap::new();
    let first: Vec<TemplateId> = messages
        .clone()
        .map(|m| *cache.entry(m).or_insert_with(|| miner.add(m).0))
        .collect();
    miner.refine();
    cache.clear();
    let ids: Vec<TemplateId> = messages
        .zip(&first)
        .map(|(m, id)| *cache.entry(m).or_insert_with(|| miner.finalize(m, *id)))
        .collect();
    miner.recount(&ids);
    (miner, ids)
}

/// Fits the cluster model on a systematic sample over time and places every failure online.
/// The sampled rows' feature vectors are computed on the whole timeline (every failure, in
/// time order), as online placement computes them, not among the sampled rows alone.
fn fit_clusters(
    rows: &[FailureRow],
    opts: &TrainOptions,
    params: &cluster::ClusterValidParams,
) -> Result<(Option<ClusterModel>, ClusterMetrics), TrainError> {
    let skipped = |why: String, fitted: usize| {
        (
            None,
            ClusterMetrics {
                algorithm: "none".into(),
                skipped: Some(why),
                fitted_rows: fitted as u64,
                clusters: 0,
                noise_share: 1.0,
                silhouette: None,
            },
        )
    };
    let n = rows.len();
    let order = time_order(rows);
    let sys = crate::cluster::Systematic::new(n, opts.sample);
    let sample: Vec<FailureRow> = order
        .iter()
        .enumerate()
        .filter(|(pos, _)| sys.keeps(*pos))
        .map(|(_, &i)| rows[i].clone())
        .collect();
    if sample.len() < MIN_CLUSTER_ROWS {
        return Ok(skipped(
            format!(
                "{} failures: clustering needs at least {MIN_CLUSTER_ROWS}",
                sample.len()
            ),
            sample.len(),
        ));
    }
    // The silhouette sample holds at least twice the largest k (checked by the params).
    let cp = params.params().for_sample(sample.len());
    let raw = sampled_features(rows, &order, sys, &cp.features)?;
    if cluster::distinct_rows(&raw.x) < 3 {
        return Ok(skipped(
            "the failures are (nearly) all alike: nothing to cluster".into(),
            sample.len(),
        ));
    }
    let (model, _) = ClusterModel::fit_featurized(&sample, &raw, &cp.check()?)?;
    let mut online = OnlineClusterer::new(model.clone())?;
    let noise = order
        .iter()
        .filter(|&&i| online.assign(&rows[i]).is_none())
        .count();
    let metrics = ClusterMetrics {
        algorithm: model.algorithm.as_str().to_string(),
        skipped: None,
        fitted_rows: sample.len() as u64,
        clusters: model.clusters.len() as u64,
        noise_share: noise as f64 / n as f64,
        silhouette: model.silhouette,
    };
    Ok((Some(model), metrics))
}

/// Indices of `rows` in time order (stable: equal timestamps keep sequence order).
fn time_order(rows: &[FailureRow]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i].record.timestamp);
    order
}

/// The feature vectors of the rows of `order` that `sys` keeps (row `k` of the matrix is the
/// `k`-th kept), each featurized after every failure before it in `order`: the whole
/// timeline is featurized, streaming through one buffer, and only the sampled rows' vectors
/// are kept. Keeping every position, this is [`Featurizer::extend`] of the rows in time
/// order.
fn sampled_features(
    rows: &[FailureRow],
    order: &[usize],
    sys: crate::cluster::Systematic,
    params: &FeatureParams,
) -> Result<FeatureMatrix, FeatureError> {
    let mut featurizer = Featurizer::new(params.clone())?;
    let w = featurizer.width();
    let mut x = ndarray::Array2::zeros((sys.len(), w));
    let mut skipped = vec![0.0; w];
    // `Array2::zeros` is in standard (row-major, contiguous) layout.
    let mut kept = x
        .as_slice_mut()
        .expect("a freshly allocated array is contiguous")
        .chunks_exact_mut(w);
    for (pos, &i) in order.iter().enumerate() {
        let out = if sys.keeps(pos) {
            kept.next().unwrap_or(&mut skipped)
        } else {
            &mut skipped
        };
        featurizer.push_into(&rows[i], out)?;
    }
    Ok(FeatureMatrix {
        schema: featurizer.schema().clone(),
        x,
    })
}
