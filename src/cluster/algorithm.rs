//! The algorithms over a standardized matrix: linfa's DBSCAN and KMeans, the silhouette and
//! the choice of k.

use linfa::prelude::*;
use linfa::DatasetBase;
use linfa_clustering::{Dbscan, KMeans, KMeansInit};
use linfa_nn::distance::L2Dist;
use linfa_nn::{CommonNearestNeighbour, NearestNeighbour};
use ndarray::{Array2, ArrayView1, Axis};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;

use super::params::{DbscanParams, KMeansParams};
use super::ClusterError;

/// DBSCAN labels of the rows of `z` (`None` = noise), clusters numbered in discovery order.
/// Above `p.max_rows` rows, DBSCAN runs on a sample drawn with `seed` and the other rows join
/// the cluster of their nearest clustered sample row within `eps` (see [`DbscanParams`]).
pub fn dbscan(
    z: &Array2<f64>,
    p: &DbscanParams,
    seed: u64,
) -> Result<Vec<Option<usize>>, ClusterError> {
    p.check()?;
    if z.nrows() == 0 {
        return Ok(Vec::new());
    }
    let fail = |detail: String| ClusterError::Algorithm {
        algorithm: "dbscan",
        detail,
    };
    // linfa's trees want contiguous rows.
    let z = z.as_standard_layout();
    let n = z.nrows();
    let (idx, xs) = match p.max_rows {
        Some(m) if n > m => {
            let idx = sample_rows(n, m, seed);
            let xs = z.select(Axis(0), &idx);
            (Some(idx), xs)
        }
        _ => (None, z.to_owned()),
    };
    let sample_labels = Dbscan::params(p.min_points)
        .tolerance(p.eps)
        .transform(&xs)
        .map_err(|e| fail(e.to_string()))?;
    let Some(idx) = idx else {
        return Ok(sample_labels.to_vec());
    };
    let mut labels = vec![None; n];
    for (&i, l) in idx.iter().zip(&sample_labels) {
        labels[i] = *l;
    }
    let clustered: Vec<usize> = (0..xs.nrows())
        .filter(|&j| sample_labels[j].is_some())
        .collect();
    if clustered.is_empty() {
        return Ok(labels);
    }
    let anchors = xs.select(Axis(0), &clustered);
    let index = CommonNearestNeighbour::KdTree
        .from_batch(&anchors, L2Dist)
        .map_err(|e| fail(e.to_string()))?;
    let mut in_sample = vec![false; n];
    idx.iter().for_each(|&i| in_sample[i] = true);
    for (i, row) in z.rows().into_iter().enumerate() {
        if in_sample[i] {
            continue;
        }
        let nearest = index.k_nearest(row, 1).map_err(|e| fail(e.to_string()))?;
        if let Some((point, j)) = nearest.first() {
            if dist(point.view(), row) <= p.eps {
                labels[i] = sample_labels[clustered[*j]];
            }
        }
    }
    Ok(labels)
}

/// A KMeans fit.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansFit {
    /// Centroids, one row per cluster (some may have no member).
    pub centroids: Array2<f64>,
    /// Cluster of each row.
    pub labels: Vec<usize>,
    /// Mean squared distance of the rows to their centroid.
    pub inertia: f64,
}

/// Mean of the column variances (the scale of scikit-learn's tolerance).
fn mean_variance(z: &Array2<f64>) -> f64 {
    if z.ncols() == 0 || z.nrows() == 0 {
        return 0.0;
    }
    z.var_axis(Axis(0), 0.0).mean().unwrap_or(0.0)
}

/// KMeans with `k` clusters (at most one per row) over the rows of `z`: `n_runs` k-means++
/// starts seeded with `seed`, Lloyd iterations until the squared centroid shift falls below
/// `tolerance × mean variance` or `max_iterations`.
pub fn kmeans(
    z: &Array2<f64>,
    k: usize,
    p: &KMeansParams,
    seed: u64,
) -> Result<KMeansFit, ClusterError> {
    p.check()?;
    if z.nrows() == 0 {
        return Err(ClusterError::Empty);
    }
    if k == 0 {
        return Err(ClusterError::InvalidParam {
            field: "cluster.kmeans.k".into(),
            detail: "must be at least 1".into(),
        });
    }
    let k = k.min(z.nrows());
    // linfa compares the Frobenius norm of the shift (not its square) and wants it > 0.
    let tol = (p.tolerance * mean_variance(z))
        .sqrt()
        .max(f64::MIN_POSITIVE);
    let rng = Xoshiro256Plus::seed_from_u64(seed);
    let fail = |detail: String| ClusterError::Algorithm {
        algorithm: "kmeans",
        detail,
    };
    let model = KMeans::params_with_rng(k, rng)
        .n_runs(p.n_runs)
        .max_n_iterations(p.max_iterations)
        .tolerance(tol)
        .init_method(KMeansInit::KMeansPlusPlus)
        .check()
        .map_err(|e| fail(e.to_string()))?
        .fit(&DatasetBase::from(z.view()))
        .map_err(|e| fail(e.to_string()))?;
    let labels = model.predict(z).to_vec();
    Ok(KMeansFit {
        centroids: model.centroids().clone(),
        labels,
        inertia: model.inertia(),
    })
}

fn dist(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// Pairwise distances of the rows of `x`, row-major m × m.
fn distances(x: &Array2<f64>) -> Vec<f64> {
    let m = x.nrows();
    let mut d = vec![0.0; m * m];
    for i in 0..m {
        for j in (i + 1)..m {
            let v = dist(x.row(i), x.row(j));
            d[i * m + j] = v;
            d[j * m + i] = v;
        }
    }
    d
}

/// Mean silhouette from a distance matrix; rows labelled `None` are left out. `None` when fewer
/// than two clusters are present.
fn silhouette_of(d: &[f64], m: usize, labels: &[Option<usize>]) -> Option<f64> {
    let k = labels.iter().flatten().max()? + 1;
    let mut counts = vec![0usize; k];
    for l in labels.iter().flatten() {
        counts[*l] += 1;
    }
    if counts.iter().filter(|&&c| c > 0).count() < 2 {
        return None;
    }
    let mut sums = vec![0.0; k];
    let mut total = 0.0;
    let mut n = 0usize;
    for i in 0..m {
        let Some(ci) = labels[i] else { continue };
        sums.iter_mut().for_each(|s| *s = 0.0);
        for (j, lj) in labels.iter().enumerate() {
            if let Some(cj) = lj {
                sums[*cj] += d[i * m + j];
            }
        }
        n += 1;
        if counts[ci] < 2 {
            continue; // a singleton's silhouette is 0
        }
        let a = sums[ci] / (counts[ci] - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != ci && counts[c] > 0)
            .map(|c| sums[c] / counts[c] as f64)
            .fold(f64::INFINITY, f64::min);
        let s = if a.max(b) > 0.0 {
            (b - a) / a.max(b)
        } else {
            0.0
        };
        total += s;
    }
    (n > 0).then(|| total / n as f64)
}

/// Mean silhouette coefficient of the labelled rows of `x` (noise, `None`, left out): in
/// [-1, 1], higher is better separated. Quadratic in the rows: pass a sample. `None` when fewer
/// than two clusters are present.
pub fn silhouette(x: &Array2<f64>, labels: &[Option<usize>]) -> Option<f64> {
    if labels.len() != x.nrows() {
        return None;
    }
    silhouette_of(&distances(x), x.nrows(), labels)
}

/// Indices of a seeded sample of at most `m` of `n` rows, in increasing order.
pub(crate) fn sample_rows(n: usize, m: usize, seed: u64) -> Vec<usize> {
    if n <= m {
        return (0..n).collect();
    }
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, n, m).into_vec();
    idx.sort_unstable();
    idx
}

/// Chooses k by mean silhouette over `k_min..=k_max`: the smallest k whose score is within
/// `p.k_within` of the best (the best itself at 0; smaller k on ties), every candidate fitted
/// and scored on the same seeded sample of `p.sample` rows. Returns the k and every
/// candidate's score. With fewer than 3 distinct sample rows, k is 1.
pub fn choose_k(
    z: &Array2<f64>,
    p: &KMeansParams,
    seed: u64,
) -> Result<(usize, Vec<(usize, f64)>), ClusterError> {
    p.check()?;
    if z.nrows() == 0 {
        return Err(ClusterError::Empty);
    }
    let idx = sample_rows(z.nrows(), p.sample, seed);
    let xs = z.select(Axis(0), &idx);
    let m = xs.nrows();
    let d = distances(&xs);
    let mut scores = Vec::new();
    for k in p.k_min..=p.k_max.min(m.saturating_sub(1)) {
        let fit = kmeans(&xs, k, p, seed)?;
        let labels: Vec<Option<usize>> = fit.labels.iter().map(|&l| Some(l)).collect();
        if let Some(s) = silhouette_of(&d, m, &labels) {
            scores.push((k, s));
        }
    }
    let top = scores
        .iter()
        .map(|&(_, s)| s)
        .fold(f64::NEG_INFINITY, f64::max);
    let best = scores
        .iter()
        .find(|&&(_, s)| s >= top - p.k_within)
        .map_or(1, |&(k, _)| k);
    Ok((best, scores))
}
