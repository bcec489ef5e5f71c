//! Tier 3 — clustering of failures (linfa lives here and nowhere else): groups similar
//! failures offline and places new ones online.
//!
//! ```text
//! FailureRow[] ──► features::Featurizer ──► Scaler ──► DBSCAN | KMeans (linfa) ──► ClusterModel
//!                                                                                   │ centroids, radii,
//! new FailureRow ──► Featurizer (online state) ──► Scaler ──► nearest centroid ◄────┘ summaries
//!                                                            within its radius → Some(ClusterId), else None
//! ```
//!
//! - **DBSCAN** (`linfa_clustering::Dbscan`, k-d tree neighbours): clusters of any shape; rows in
//!   no dense region are noise (`None`). Its cost grows with rows × neighbours per row (with
//!   `eps`), so above `max_rows` rows it runs on a seeded sample and every other row joins the
//!   cluster of its nearest clustered sample row within `eps` (a `linfa_nn` k-d tree query).
//! - **KMeans** (`linfa_clustering::KMeans`, k-means++ initialisation, few runs, a tolerance
//!   relative to the data's variance as in scikit-learn): `k` configured, or chosen by mean
//!   silhouette over `k_min..=k_max` — the smallest k within `k_within` (0.02) of the best —
//!   each candidate fitted on the same seeded sample.
//!
//! Clusters are numbered by size (0 = largest). Each gets a [`ClusterSummary`]: size, dominant
//! hardware classes, kinds, templates and workers with their shares, first and last seen,
//! cohesion (mean distance of its members to the centroid, in standardized units) and the
//! radius used online. The fitted [`ClusterModel`] (serde, `format_version`) assigns a new
//! failure to the nearest centroid when it lies within that cluster's radius — a quantile of
//! the members' distances times a factor, never below `min_radius` (nor `eps` for DBSCAN) — and
//! to no cluster (`None`, noise) otherwise, without refitting. A model written with another
//! format version or feature schema is refused with a [`ClusterError`] that says which.
//!
//! Seeds come from the configuration (`seed`, normally `EngineConfig::seed`), so a fit is
//! reproducible.
//!
//! ```
//! use faultline::cluster::{fit, ClusterParams};
//! # use faultline::store::FailureRow;
//! # let rows: Vec<FailureRow> = Vec::new();
//! let params = ClusterParams::default().with_seed(7).check().unwrap();
//! assert!(fit(&rows, &params).is_err()); // nothing to cluster
//! ```

mod algorithm;
mod model;
mod params;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use algorithm::{choose_k, dbscan, kmeans, silhouette, KMeansFit};
pub use model::{
    fit, ClusterModel, ClusterSummary, Clustering, OnlineClusterer, Share, CLUSTER_FORMAT_VERSION,
};
pub use params::{
    Algorithm, AssignParams, ClusterParams, ClusterValidParams, DbscanParams, KMeansParams,
};

use crate::features::FeatureError;

/// A systematic sample of `m` of `n` positions in order, evenly spread: positions ⌊k·n/m⌋
/// for k in 0..m (every position when m ≥ n). The rows clustering is fitted on, taken over
/// time: exactly `m` of them (an audit: a whole-number stride fitted `--sample 5004` of 5,005
/// failures on 2,503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Systematic {
    n: usize,
    m: usize,
}

impl Systematic {
    /// `m` of `n` positions (all `n` when `m` ≥ `n`).
    pub fn new(n: usize, m: usize) -> Self {
        Systematic { n, m: m.min(n) }
    }

    /// How many positions are kept.
    pub fn len(&self) -> usize {
        self.m
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.m == 0
    }

    /// Whether position `pos` (0-based, below `n`) is kept.
    pub fn keeps(&self, pos: usize) -> bool {
        if pos >= self.n || self.m == 0 {
            return false;
        }
        // The first k with ⌊k·n/m⌋ ≥ pos; the position is kept when that one is `pos`.
        let (pos, n, m) = (pos as u128, self.n as u128, self.m as u128);
        let k = (pos * m).div_ceil(n);
        k < m && k * n < (pos + 1) * m
    }
}

/// Number of distinct rows of a feature matrix (compared bit for bit): clustering needs at
/// least a few different vectors to mean anything.
pub fn distinct_rows(x: &ndarray::Array2<f64>) -> usize {
    x.rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v.to_bits()).collect::<Vec<u64>>())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// Identifier of a cluster within one fitted model (0 = the largest cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClusterId(pub u32);

impl ClusterId {
    /// The id as stored in `FailureRow::cluster_id`.
    pub fn as_i64(self) -> i64 {
        i64::from(self.0)
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Errors of the clustering stage.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    /// A parameter is out of range.
    #[error("invalid cluster parameter {field}: {detail}")]
    InvalidParam {
        /// Field path, e.g. `cluster.dbscan.eps`.
        field: String,
        /// Why.
        detail: String,
    },
    /// Featurization or scaling failed (e.g. a schema mismatch).
    #[error(transparent)]
    Features(#[from] FeatureError),
    /// Nothing to cluster.
    #[error("cannot cluster an empty set of failures")]
    Empty,
    /// The clustering library failed.
    #[error("{algorithm} failed: {detail}")]
    Algorithm {
        /// "dbscan" or "kmeans".
        algorithm: &'static str,
        /// The library's message.
        detail: String,
    },
    /// A stored model has a format version this build does not read.
    #[error("cluster model format version {found} is not supported (this build reads version {expected})")]
    FormatVersion {
        /// Version in the model.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// A stored model is inconsistent (e.g. a centroid of the wrong width).
    #[error("invalid cluster model: {0}")]
    InvalidModel(String),
    /// A stored model is not valid JSON for this schema.
    #[error("cannot read cluster model: {0}")]
    Json(String),
}
