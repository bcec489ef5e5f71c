//! Clustering parameters: unchecked [`ClusterParams`] (serde, defaults) turned by
//! [`ClusterParams::check`] into [`ClusterValidParams`]; only checked parameters run.

use serde::{Deserialize, Serialize};

use super::ClusterError;
use crate::features::{FeatureError, FeatureParams, FeatureWeights};

/// Largest `k` considered.
const MAX_K: usize = 1024;
/// Most rows of the k-means sample: its silhouette holds a distance for every pair (10,000
/// rows: 800 MB).
const MAX_SAMPLE: usize = 10_000;

/// Which algorithm fits the clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    /// Density-based: clusters of any shape, noise as `None`.
    #[serde(rename = "dbscan")]
    Dbscan,
    /// Centroid-based: k clusters, every row in one.
    #[serde(rename = "kmeans")]
    KMeans,
}

impl Algorithm {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Dbscan => "dbscan",
            Algorithm::KMeans => "kmeans",
        }
    }
}

/// DBSCAN parameters (in standardized feature units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbscanParams {
    /// Neighbourhood radius. The cost grows quickly with it (more neighbours per row).
    pub eps: f64,
    /// Rows within `eps` (the row itself included, as scikit-learn's `min_samples`) that make a
    /// core row; at least 2.
    pub min_points: usize,
    /// DBSCAN runs on a seeded sample of at most this many rows (`None`: on every row); each
    /// other row joins the cluster of its nearest clustered sample row if that lies within
    /// `eps`, and is noise otherwise. DBSCAN's cost grows with rows × neighbours per row, so
    /// the cap keeps a fit on a large history in seconds; `min_points` then counts sample rows.
    pub max_rows: Option<usize>,
}

impl Default for DbscanParams {
    /// eps 1.0, 10 points, at most 20,000 rows. With the default
    /// [`FeatureWeights`](crate::features::FeatureWeights) two kinds stand 2.83 apart and two
    /// hardware classes or templates 2.12: eps stays well below both, so that a cluster does
    /// not bridge kinds through chains of neighbours.
    fn default() -> Self {
        DbscanParams {
            eps: 1.0,
            min_points: 10,
            max_rows: Some(20_000),
        }
    }
}

/// KMeans parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KMeansParams {
    /// Number of clusters; `None` chooses it by silhouette over `k_min..=k_max`.
    pub k: Option<usize>,
    /// Smallest k tried by the silhouette search (at least 2).
    pub k_min: usize,
    /// Largest k tried by the silhouette search.
    pub k_max: usize,
    /// The search takes the smallest k whose mean silhouette is within this of the best one
    /// (0: the best itself). On the flat curves of real failure histories the best moved
    /// from 14 to 32 clusters when three failures were added (a nightly-train audit; 32 on
    /// 302 rows); the smallest k nearly as good is steadier and easier to read.
    pub k_within: f64,
    /// Rows of the seeded sample on which candidate k are fitted and scored (the silhouette
    /// is quadratic in it); also the sample of the model's reported silhouette.
    pub sample: usize,
    /// Independent k-means++ starts; the lowest inertia wins (scikit-learn's `n_init`).
    pub n_runs: usize,
    /// Lloyd iterations per run at most.
    pub max_iterations: u64,
    /// Convergence: stop when the squared centroid shift is below `tolerance` times the mean
    /// feature variance (scikit-learn's criterion).
    pub tolerance: f64,
}

impl Default for KMeansParams {
    /// k by silhouette in 2..=32 on 2,000 rows (the smallest within 0.02 of the best); 1 run of k-means++ (scikit-learn's `n_init =
    /// "auto"`), 100 iterations, tolerance 1e-4.
    fn default() -> Self {
        KMeansParams {
            k: None,
            k_min: 2,
            k_max: 32,
            k_within: 0.02,
            sample: 2000,
            n_runs: 1,
            max_iterations: 100,
            tolerance: 1e-4,
        }
    }
}

/// How a fitted model places new failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssignParams {
    /// Quantile of the members' distances to their centroid that sets a cluster's radius.
    pub quantile: f64,
    /// Factor applied to that quantile.
    pub factor: f64,
    /// Smallest radius (standardized units), so that a tight cluster still accepts near
    /// neighbours. DBSCAN clusters never get less than `eps`.
    pub min_radius: f64,
}

impl Default for AssignParams {
    /// Radius = 1.25 × the 99th percentile of the members' distances, at least 0.5.
    fn default() -> Self {
        AssignParams {
            quantile: 0.99,
            factor: 1.25,
            min_radius: 0.5,
        }
    }
}

/// Clustering parameters, as written in a configuration file (`[cluster]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterParams {
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Seed of every random choice (sampling, k-means++), normally `EngineConfig::seed`.
    pub seed: u64,
    /// Featurization.
    pub features: FeatureParams,
    /// Weights of the feature blocks in distances.
    pub weights: FeatureWeights,
    /// DBSCAN settings.
    pub dbscan: DbscanParams,
    /// KMeans settings.
    pub kmeans: KMeansParams,
    /// Online assignment.
    pub assign: AssignParams,
    /// Entries kept per dominant list (hardware, kinds, templates, workers) of a summary.
    pub top: usize,
}

impl Default for ClusterParams {
    /// KMeans with k by silhouette, seed 42 (the engine's default seed), default features.
    fn default() -> Self {
        ClusterParams {
            algorithm: Algorithm::KMeans,
            seed: 42,
            features: FeatureParams::default(),
            weights: FeatureWeights::default(),
            dbscan: DbscanParams::default(),
            kmeans: KMeansParams::default(),
            assign: AssignParams::default(),
            top: 5,
        }
    }
}

/// Checked clustering parameters: the only ones the algorithms accept.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterValidParams(ClusterParams);

impl ClusterValidParams {
    /// The parameters.
    pub fn params(&self) -> &ClusterParams {
        &self.0
    }
}

fn bad(field: &str, detail: String) -> ClusterError {
    ClusterError::InvalidParam {
        field: format!("cluster.{field}"),
        detail,
    }
}

fn positive(field: &str, v: f64) -> Result<(), ClusterError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(bad(field, format!("{v} is not a finite number > 0")))
    }
}

impl DbscanParams {
    pub(crate) fn check(&self) -> Result<(), ClusterError> {
        positive("dbscan.eps", self.eps)?;
        if self.min_points < 2 {
            return Err(bad(
                "dbscan.min_points",
                format!("{} is less than 2", self.min_points),
            ));
        }
        if let Some(m) = self.max_rows {
            if m < self.min_points {
                return Err(bad(
                    "dbscan.max_rows",
                    format!("{m} is less than min_points ({})", self.min_points),
                ));
            }
        }
        Ok(())
    }
}

impl KMeansParams {
    pub(crate) fn check(&self) -> Result<(), ClusterError> {
        if let Some(k) = self.k {
            if !(1..=MAX_K).contains(&k) {
                return Err(bad("kmeans.k", format!("{k} is not in 1..={MAX_K}")));
            }
        }
        if self.k_min < 2 {
            return Err(bad(
                "kmeans.k_min",
                format!("{} is less than 2", self.k_min),
            ));
        }
        if self.k_max < self.k_min || self.k_max > MAX_K {
            return Err(bad(
                "kmeans.k_max",
                format!(
                    "{} is not in k_min..={MAX_K} ({}..={MAX_K})",
                    self.k_max, self.k_min
                ),
            ));
        }
        if !(self.k_within.is_finite() && (0.0..1.0).contains(&self.k_within)) {
            return Err(bad(
                "kmeans.k_within",
                format!("{} is not a silhouette difference in [0, 1)", self.k_within),
            ));
        }
        if self.sample > MAX_SAMPLE {
            return Err(bad(
                "kmeans.sample",
                format!(
                    "{} rows are too many (at most {MAX_SAMPLE}: the silhouette holds a distance for every pair)",
                    self.sample
                ),
            ));
        }
        if self.sample < 2 * self.k_max.max(self.k.unwrap_or(0)).max(10) {
            return Err(bad(
                "kmeans.sample",
                format!(
                    "{} rows are too few (at least twice the largest k, and 20)",
                    self.sample
                ),
            ));
        }
        if self.n_runs == 0 {
            return Err(bad("kmeans.n_runs", "must be at least 1".into()));
        }
        if self.max_iterations == 0 {
            return Err(bad("kmeans.max_iterations", "must be at least 1".into()));
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(bad(
                "kmeans.tolerance",
                format!("{} is not a finite number >= 0", self.tolerance),
            ));
        }
        Ok(())
    }
}

impl ClusterParams {
    /// The same parameters fitted to a sample of `n` rows: the silhouette sample is at most
    /// `n` and holds at least twice the largest k tried (what [`KMeansParams`] checks).
    pub fn for_sample(&self, n: usize) -> Self {
        let mut p = self.clone();
        p.kmeans.sample = p.kmeans.sample.min(n);
        p.kmeans.k_max = p.kmeans.k_max.min(p.kmeans.sample / 2).max(2);
        p.kmeans.k_min = p.kmeans.k_min.min(p.kmeans.k_max);
        // A fixed k is capped alike (k-means would cap it at the rows anyway).
        p.kmeans.k = p.kmeans.k.map(|k| k.min((p.kmeans.sample / 2).max(1)));
        p
    }

    /// The same parameters with another seed (e.g. `EngineConfig::seed`).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Validates every field; the error names the first offending one
    /// (`cluster.dbscan.eps`, `cluster.features.window_s`...).
    pub fn check(self) -> Result<ClusterValidParams, ClusterError> {
        let nest = |e: FeatureError| match e {
            FeatureError::InvalidParam { field, detail } => bad(&field, detail),
            other => ClusterError::Features(other),
        };
        self.features.check().map_err(nest)?;
        self.weights.check().map_err(nest)?;
        self.dbscan.check()?;
        self.kmeans.check()?;
        let a = &self.assign;
        if !(a.quantile > 0.0 && a.quantile <= 1.0) {
            return Err(bad(
                "assign.quantile",
                format!("{} is not in (0, 1]", a.quantile),
            ));
        }
        positive("assign.factor", a.factor)?;
        if !(a.min_radius.is_finite() && a.min_radius >= 0.0) {
            return Err(bad(
                "assign.min_radius",
                format!("{} is not a finite number >= 0", a.min_radius),
            ));
        }
        if self.top == 0 {
            return Err(bad("top", "must be at least 1".into()));
        }
        Ok(ClusterValidParams(self))
    }
}
