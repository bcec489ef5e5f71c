//! The fitted model: centroids, radii and summaries; offline fit and online assignment.

use std::collections::HashMap;

use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};

use super::algorithm::{self, sample_rows};
use super::params::{Algorithm, ClusterParams, ClusterValidParams};
use super::{ClusterError, ClusterId};
use crate::features::{FeatureMatrix, FeatureSchema, Featurizer, Scaler};
use crate::model::{FailureKind, HardwareClass, Timestamp, WorkerId};
use crate::store::FailureRow;

/// Version of the serialized [`ClusterModel`] layout this build writes and reads.
pub const CLUSTER_FORMAT_VERSION: u32 = 1;

/// A value with its count and share of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share<T> {
    /// The value (hardware class, kind, template id, worker).
    pub value: T,
    /// Members with that value.
    pub count: usize,
    /// `count / size`.
    pub share: f64,
}

/// What one cluster holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSummary {
    /// Id (0 = the largest cluster).
    pub id: ClusterId,
    /// Members.
    pub size: usize,
    /// Most frequent hardware classes, most frequent first.
    pub hardware: Vec<Share<HardwareClass>>,
    /// Most frequent failure kinds.
    pub kinds: Vec<Share<FailureKind>>,
    /// Most frequent template ids (members without a template are not counted).
    pub templates: Vec<Share<u64>>,
    /// Most frequent workers.
    pub workers: Vec<Share<WorkerId>>,
    /// Earliest member.
    pub first_seen: Timestamp,
    /// Latest member.
    pub last_seen: Timestamp,
    /// Mean distance of the members to the centroid (standardized units; lower is tighter).
    pub cohesion: f64,
    /// Distance from the centroid within which a new failure is assigned to this cluster.
    pub radius: f64,
    /// Centroid in standardized feature space.
    pub centroid: Vec<f64>,
}

impl ClusterSummary {
    /// The most frequent kind, with its share.
    pub fn dominant_kind(&self) -> Option<&Share<FailureKind>> {
        self.kinds.first()
    }

    /// The most frequent hardware class, with its share.
    pub fn dominant_hardware(&self) -> Option<&Share<HardwareClass>> {
        self.hardware.first()
    }
}

/// A fitted clustering: what a model directory stores, and what assigns new failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterModel {
    /// Layout version ([`CLUSTER_FORMAT_VERSION`]).
    pub format_version: u32,
    /// Algorithm that fitted it.
    pub algorithm: Algorithm,
    /// The parameters of the fit (features, seed, algorithm settings, assignment).
    pub params: ClusterParams,
    /// The feature schema of the centroids.
    pub schema: FeatureSchema,
    /// The standardization fitted on the training rows.
    pub scaler: Scaler,
    /// The clusters, by id.
    pub clusters: Vec<ClusterSummary>,
    /// Training rows.
    pub rows: usize,
    /// Training rows left as noise (DBSCAN).
    pub noise: usize,
    /// Mean silhouette on a seeded sample of the training rows (noise left out), when at
    /// least two clusters were present.
    pub silhouette: Option<f64>,
    /// KMeans: the silhouette of every k tried, when k was chosen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub k_scores: Vec<(usize, f64)>,
}

/// The result of [`fit`]: the model, the training labels, and the featurizer with the training
/// history (to continue online from where the training rows end).
#[derive(Debug, Clone)]
pub struct Clustering {
    /// The fitted model.
    pub model: ClusterModel,
    /// Cluster of each training row (`None` = noise), in input order.
    pub labels: Vec<Option<ClusterId>>,
    /// The featurizer after the training rows.
    pub featurizer: Featurizer,
}

fn top<T: Clone + Ord>(counts: HashMap<T, usize>, size: usize, n: usize) -> Vec<Share<T>> {
    let mut v: Vec<(T, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v.into_iter()
        .map(|(value, count)| Share {
            value,
            count,
            share: count as f64 / size.max(1) as f64,
        })
        .collect()
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Renumbers raw labels so that cluster 0 is the largest (ties by first appearance), dropping
/// empty clusters.
fn renumber(raw: &[Option<usize>]) -> (Vec<Option<ClusterId>>, usize) {
    let mut sizes: Vec<(usize, usize, usize)> = Vec::new(); // (raw id, size, first row)
    let mut slot: HashMap<usize, usize> = HashMap::new();
    for (i, l) in raw.iter().enumerate() {
        if let Some(c) = l {
            let s = *slot.entry(*c).or_insert_with(|| {
                sizes.push((*c, 0, i));
                sizes.len() - 1
            });
            sizes[s].1 += 1;
        }
    }
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    let map: HashMap<usize, u32> = sizes
        .iter()
        .enumerate()
        .map(|(new, &(old, _, _))| (old, new as u32))
        .collect();
    let labels = raw
        .iter()
        .map(|l| l.and_then(|c| map.get(&c).map(|&n| ClusterId(n))))
        .collect();
    (labels, sizes.len())
}

/// Fits clusters on `rows`: featurize (time order), standardize, run the configured algorithm,
/// summarize. Fails on no rows.
pub fn fit(rows: &[FailureRow], params: &ClusterValidParams) -> Result<Clustering, ClusterError> {
    if rows.is_empty() {
        return Err(ClusterError::Empty);
    }
    let mut featurizer = Featurizer::new(params.params().features.clone())?;
    let raw = featurizer.extend(rows);
    let (model, labels) = ClusterModel::fit_featurized(rows, &raw, params)?;
    Ok(Clustering {
        model,
        labels,
        featurizer,
    })
}

impl ClusterModel {
    /// Fits clusters on `rows` whose feature vectors the caller computed: row i of `raw` is
    /// `rows[i]`'s vector, of the schema of `params`' features. [`fit`] featurizes the rows
    /// among themselves; a caller fitting on a sample of a longer history featurizes the whole
    /// history in time order and passes the sampled rows' vectors, so that their history
    /// features (attempt, worker gap and rate, the task's recent failures) are those online
    /// assignment computes. Returns the model and each row's cluster (`None` = noise). Fails on
    /// no rows, a schema other than the parameters' or a row count other than `rows`'.
    pub fn fit_featurized(
        rows: &[FailureRow],
        raw: &FeatureMatrix,
        params: &ClusterValidParams,
    ) -> Result<(ClusterModel, Vec<Option<ClusterId>>), ClusterError> {
        let p = params.params();
        if rows.is_empty() {
            return Err(ClusterError::Empty);
        }
        p.features.schema().check_compatible(&raw.schema)?;
        if raw.x.nrows() != rows.len() {
            return Err(ClusterError::InvalidParam {
                field: "rows".into(),
                detail: format!(
                    "{} feature vectors for {} failures",
                    raw.x.nrows(),
                    rows.len()
                ),
            });
        }
        fit_matrix(rows, raw, p)
    }
}

fn fit_matrix(
    rows: &[FailureRow],
    raw: &FeatureMatrix,
    p: &ClusterParams,
) -> Result<(ClusterModel, Vec<Option<ClusterId>>), ClusterError> {
    let scaler = Scaler::fit(raw, &p.weights)?;
    let z = scaler.transform(raw)?;
    let mut k_scores = Vec::new();
    let raw_labels: Vec<Option<usize>> = match p.algorithm {
        Algorithm::Dbscan => algorithm::dbscan(&z, &p.dbscan, p.seed)?,
        Algorithm::KMeans => {
            let k = match p.kmeans.k {
                Some(k) => k,
                None => {
                    let (k, scores) = algorithm::choose_k(&z, &p.kmeans, p.seed)?;
                    k_scores = scores;
                    k
                }
            };
            algorithm::kmeans(&z, k, &p.kmeans, p.seed)?
                .labels
                .into_iter()
                .map(Some)
                .collect()
        }
    };
    let (labels, k) = renumber(&raw_labels);
    let clusters = summarize(rows, &z, &labels, k, p);
    let noise = labels.iter().filter(|l| l.is_none()).count();
    let idx = sample_rows(rows.len(), p.kmeans.sample, p.seed);
    let sample_labels: Vec<Option<usize>> = idx
        .iter()
        .map(|&i| labels[i].map(|c| c.0 as usize))
        .collect();
    let silhouette = algorithm::silhouette(&z.select(Axis(0), &idx), &sample_labels);
    let model = ClusterModel {
        format_version: CLUSTER_FORMAT_VERSION,
        algorithm: p.algorithm,
        params: p.clone(),
        schema: raw.schema.clone(),
        scaler,
        clusters,
        rows: rows.len(),
        noise,
        silhouette,
        k_scores,
    };
    Ok((model, labels))
}

#[derive(Default)]
struct Acc<'a> {
    size: usize,
    sum: Vec<f64>,
    hardware: HashMap<HardwareClass, usize>,
    kinds: HashMap<FailureKind, usize>,
    templates: HashMap<u64, usize>,
    workers: HashMap<&'a WorkerId, usize>,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    dists: Vec<f64>,
}

fn summarize(
    rows: &[FailureRow],
    z: &Array2<f64>,
    labels: &[Option<ClusterId>],
    k: usize,
    p: &ClusterParams,
) -> Vec<ClusterSummary> {
    let d = z.ncols();
    let mut acc: Vec<Acc<'_>> = (0..k)
        .map(|_| Acc {
            sum: vec![0.0; d],
            ..Default::default()
        })
        .collect();
    for ((r, l), x) in rows.iter().zip(labels).zip(z.rows()) {
        let Some(c) = l else { continue };
        let a = &mut acc[c.0 as usize];
        a.size += 1;
        a.sum.iter_mut().zip(x).for_each(|(s, v)| *s += v);
        *a.hardware.entry(r.record.hardware.class).or_default() += 1;
        *a.kinds.entry(r.kind).or_default() += 1;
        if let Some(t) = r.template_id {
            *a.templates.entry(t).or_default() += 1;
        }
        *a.workers.entry(&r.record.worker_id).or_default() += 1;
        let ts = r.record.timestamp;
        a.first = Some(a.first.map_or(ts, |f| f.min(ts)));
        a.last = Some(a.last.map_or(ts, |f| f.max(ts)));
    }
    for a in &mut acc {
        let n = a.size.max(1) as f64;
        a.sum.iter_mut().for_each(|s| *s /= n);
    }
    for (l, x) in labels.iter().zip(z.rows()) {
        let Some(c) = l else { continue };
        let a = &mut acc[c.0 as usize];
        let x = x.as_slice().map_or_else(|| x.to_vec(), <[f64]>::to_vec);
        a.dists.push(sq_dist(&x, &a.sum).sqrt());
    }
    let floor = match p.algorithm {
        Algorithm::Dbscan => p.assign.min_radius.max(p.dbscan.eps),
        Algorithm::KMeans => p.assign.min_radius,
    };
    acc.into_iter()
        .enumerate()
        .map(|(i, mut a)| {
            a.dists.sort_by(f64::total_cmp);
            let cohesion = a.dists.iter().sum::<f64>() / a.dists.len().max(1) as f64;
            let radius = (quantile(&a.dists, p.assign.quantile) * p.assign.factor).max(floor);
            let workers = a.workers.into_iter().map(|(w, c)| (w.clone(), c)).collect();
            ClusterSummary {
                id: ClusterId(i as u32),
                size: a.size,
                hardware: top(a.hardware, a.size, p.top),
                kinds: top(a.kinds, a.size, p.top),
                templates: top(a.templates, a.size, p.top),
                workers: top(workers, a.size, p.top),
                first_seen: a.first.unwrap_or_default(),
                last_seen: a.last.unwrap_or_default(),
                cohesion,
                radius,
                centroid: a.sum,
            }
        })
        .collect()
}

impl ClusterModel {
    /// Checks that this build can use the model: format version, feature schema (version and
    /// columns, as this build produces them for the model's feature parameters), widths, and
    /// that each cluster's id is its position in [`Self::clusters`] (assignment indexes by id).
    pub fn validate(&self) -> Result<(), ClusterError> {
        if self.format_version != CLUSTER_FORMAT_VERSION {
            return Err(ClusterError::FormatVersion {
                found: self.format_version,
                expected: CLUSTER_FORMAT_VERSION,
            });
        }
        let current = self.params.features.schema();
        current.check_compatible(&self.schema)?;
        self.scaler.check_schema(&current)?;
        let d = current.width();
        for (i, c) in self.clusters.iter().enumerate() {
            // Assignment indexes the clusters by id: an id out of place would pick another
            // cluster's radius, or panic past the end.
            if c.id.0 as usize != i {
                return Err(ClusterError::InvalidModel(format!(
                    "cluster {} is at position {i} of the clusters: each cluster's id must be its position",
                    c.id
                )));
            }
            if c.centroid.len() != d {
                return Err(ClusterError::InvalidModel(format!(
                    "cluster {} has a centroid of {} values, the schema {d} columns",
                    c.id,
                    c.centroid.len()
                )));
            }
            if !(c.radius.is_finite() && c.radius >= 0.0) {
                return Err(ClusterError::InvalidModel(format!(
                    "cluster {} has radius {}",
                    c.id, c.radius
                )));
            }
        }
        Ok(())
    }

    /// Writes the model as JSON.
    pub fn to_json(&self) -> Result<String, ClusterError> {
        serde_json::to_string_pretty(self).map_err(|e| ClusterError::Json(e.to_string()))
    }

    /// Reads a model written by [`Self::to_json`] and [validates](Self::validate) it.
    pub fn from_json(text: &str) -> Result<ClusterModel, ClusterError> {
        let m: ClusterModel =
            serde_json::from_str(text).map_err(|e| ClusterError::Json(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// Centroids as a k × d matrix (standardized units).
    pub fn centroids(&self) -> Array2<f64> {
        let d = self.schema.width();
        let mut out = Array2::zeros((self.clusters.len(), d));
        for (mut row, c) in out.rows_mut().into_iter().zip(&self.clusters) {
            row.iter_mut().zip(&c.centroid).for_each(|(o, v)| *o = *v);
        }
        out
    }

    /// The nearest cluster to a standardized vector and its distance, regardless of radius.
    pub fn nearest(&self, z: &[f64]) -> Option<(ClusterId, f64)> {
        self.clusters
            .iter()
            .map(|c| (c.id, sq_dist(z, &c.centroid)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(id, d2)| (id, d2.sqrt()))
    }

    /// The cluster of a standardized vector: the nearest, if within its radius; `None` (noise)
    /// otherwise.
    pub fn assign_scaled(&self, z: &[f64]) -> Option<ClusterId> {
        let (id, d) = self.nearest(z)?;
        (d <= self.clusters[id.0 as usize].radius).then_some(id)
    }

    /// The summary of a cluster.
    pub fn cluster(&self, id: ClusterId) -> Option<&ClusterSummary> {
        self.clusters.get(id.0 as usize)
    }
}

/// Online assignment of new failures to a fitted model's clusters, without refitting: keeps
/// the featurizer's per-worker/per-task state, so each failure costs O(k·d).
///
/// ```
/// # use faultline::cluster::{ClusterModel, OnlineClusterer};
/// # fn demo(model: ClusterModel, row: &faultline::store::FailureRow) {
/// let mut online = OnlineClusterer::new(model).unwrap();
/// let cluster = online.assign(row); // Some(id), or None for noise
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct OnlineClusterer {
    model: ClusterModel,
    featurizer: Featurizer,
    buf: Vec<f64>,
}

impl OnlineClusterer {
    /// Online assignment from an empty history; refuses a model of another format or schema.
    pub fn new(model: ClusterModel) -> Result<Self, ClusterError> {
        let featurizer = Featurizer::new(model.params.features.clone())?;
        Self::with_featurizer(model, featurizer)
    }

    /// Online assignment continuing `featurizer`'s history (e.g. [`Clustering::featurizer`]).
    pub fn with_featurizer(
        model: ClusterModel,
        featurizer: Featurizer,
    ) -> Result<Self, ClusterError> {
        model.validate()?;
        model.schema.check_compatible(featurizer.schema())?;
        if featurizer.params() != &model.params.features {
            return Err(ClusterError::InvalidModel(
                "the featurizer's parameters differ from the model's".into(),
            ));
        }
        let buf = vec![0.0; featurizer.width()];
        Ok(OnlineClusterer {
            model,
            featurizer,
            buf,
        })
    }

    /// The model.
    pub fn model(&self) -> &ClusterModel {
        &self.model
    }

    /// Featurizes `row` (recording it in the history), standardizes it and returns its
    /// cluster, or `None` when it is beyond every cluster's radius.
    pub fn assign(&mut self, row: &FailureRow) -> Option<ClusterId> {
        self.assign_with_distance(row)
            .and_then(|(id, d)| (d <= self.model.clusters[id.0 as usize].radius).then_some(id))
    }

    /// Like [`Self::assign`] but returns the nearest cluster and its distance whatever the
    /// radius (`None` only for a model without clusters).
    pub fn assign_with_distance(&mut self, row: &FailureRow) -> Option<(ClusterId, f64)> {
        // The buffer has the featurizer's width (set in the constructor), and the scaler's
        // width equals it (checked by `validate`): neither call can fail.
        self.featurizer.push_into(row, &mut self.buf).ok()?;
        self.model.scaler.transform_row(&mut self.buf).ok()?;
        self.model.nearest(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::tests::row;

    /// Two groups of failures, far apart: a KMeans model of two clusters.
    fn two_clusters() -> ClusterModel {
        let mut rows = Vec::new();
        for i in 0..20 {
            let (class, kind) = if i % 2 == 0 {
                (HardwareClass::Gpu, FailureKind::OomGpu)
            } else {
                (HardwareClass::Cpu, FailureKind::DiskFull)
            };
            let mut r = row(
                &format!("t{i}"),
                &format!("w{}", i % 2),
                class,
                kind,
                i as f64,
            );
            r.template_id = Some(i % 2);
            rows.push(r);
        }
        let mut p = ClusterParams::default().for_sample(rows.len());
        p.kmeans.k = Some(2);
        fit(&rows, &p.check().unwrap()).unwrap().model
    }

    /// Assignment indexes the clusters by id: a stored model whose ids are not their positions
    /// (ids swapped, or one past the end) is refused, naming the cluster, instead of assigning
    /// failures to the wrong cluster's radius or panicking.
    #[test]
    fn validate_refuses_cluster_ids_out_of_place() {
        let model = two_clusters();
        assert_eq!(model.clusters.len(), 2);
        model.validate().unwrap();

        let mut swapped = model.clone();
        swapped.clusters[0].id = ClusterId(1);
        swapped.clusters[1].id = ClusterId(0);
        let e = swapped.validate().unwrap_err();
        assert!(matches!(e, ClusterError::InvalidModel(_)), "{e}");
        assert!(e.to_string().contains("cluster c1 is at position 0"), "{e}");

        let mut beyond = model.clone();
        beyond.clusters[1].id = ClusterId(7);
        let e = ClusterModel::from_json(&beyond.to_json().unwrap()).unwrap_err();
        assert!(e.to_string().contains("cluster c7 is at position 1"), "{e}");
        assert!(OnlineClusterer::new(beyond).is_err());
    }

    /// [`ClusterModel::fit_featurized`] refuses vectors that are not the rows'.
    #[test]
    fn fit_featurized_checks_rows_and_schema() {
        let model = two_clusters();
        let params = model.params.clone().check().unwrap();
        let rows: Vec<FailureRow> = (0..4)
            .map(|i| {
                row(
                    &format!("t{i}"),
                    "w",
                    HardwareClass::Gpu,
                    FailureKind::OomGpu,
                    f64::from(i),
                )
            })
            .collect();
        let raw = Featurizer::new(model.params.features.clone())
            .unwrap()
            .extend(&rows);
        let e = ClusterModel::fit_featurized(&rows[..3], &raw, &params).unwrap_err();
        assert!(
            e.to_string().contains("4 feature vectors for 3 failures"),
            "{e}"
        );
        assert!(matches!(
            ClusterModel::fit_featurized(&[], &raw, &params),
            Err(ClusterError::Empty)
        ));
    }
}
