//! Clustering benchmark on 100k seeded synthetic failures (see `common/mod.rs`), featurized and
//! scaled with the default parameters (a 100k × 45 matrix):
//!
//! - `cluster/dbscan_full_eps1`: linfa DBSCAN on all 100k rows, eps 1.0, 10 points, k-d tree
//!   (the matrix and parameters that `sklearn_compare.py` replays);
//! - `cluster/dbscan_sampled`: the default DBSCAN of `fit` (the same on a 20k-row sample, the
//!   other rows placed by their nearest clustered sample row);
//! - `cluster/kmeans_k16`: linfa KMeans, k = 16, one k-means++ run, ≤ 100 Lloyd iterations,
//!   scikit-learn's relative tolerance 1e-4;
//! - `cluster/choose_k`: the silhouette search over k = 2..=32 on a 2,000-row sample;
//! - `assign/*`: online assignment of one new failure (featurize with history, scale, nearest
//!   centroid within its radius) to a fitted KMeans or DBSCAN model.
//!
//! ```sh
//! cargo bench --bench cluster
//! python3 benches/sklearn_compare.py      # scikit-learn on the same matrix, and the ratio
//! ```
//!
//! Before criterion runs, one timed run of each is printed, and the matrix, the labels and the
//! timings are written to `$FAULTLINE_BENCH_OUT` (default `benches/out/`, not committed):
//! `features_100k.npy` (float64, C order), `dbscan_labels_100k.npy` and
//! `kmeans_labels_100k.npy` (int64, -1 = noise), `rust_cluster.json`.

mod common;

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use faultline::cluster::{
    choose_k, dbscan, fit, kmeans, Algorithm, ClusterParams, Clustering, DbscanParams,
    OnlineClusterer,
};
use faultline::features::{Featurizer, Scaler};
use faultline::store::FailureRow;
use ndarray::Array2;

const SEED: u64 = 20_250_313;
const ROWS: usize = 100_000;
/// Later failures placed online.
const LATER: usize = 10_000;
const K: usize = 16;

fn out_dir() -> PathBuf {
    std::env::var_os("FAULTLINE_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/out"))
}

/// The .npy v1.0 header for `descr` and `shape`, padded to 64 bytes.
fn npy_header(descr: &str, shape: &str) -> Vec<u8> {
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}").into_bytes();
    let pad = (64 - (10 + dict.len() + 1) % 64) % 64;
    dict.extend(std::iter::repeat_n(b' ', pad));
    dict.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict);
    out
}

fn write_npy_matrix(path: &Path, x: &Array2<f64>) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    w.write_all(&npy_header(
        "<f8",
        &format!("({}, {})", x.nrows(), x.ncols()),
    ))?;
    for row in x.rows() {
        for v in row {
            w.write_all(&v.to_le_bytes())?;
        }
    }
    w.flush()
}

fn write_npy_labels(path: &Path, labels: &[Option<usize>]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    w.write_all(&npy_header("<i8", &format!("({},)", labels.len())))?;
    for l in labels {
        w.write_all(&l.map_or(-1i64, |c| c as i64).to_le_bytes())?;
    }
    w.flush()
}

fn median_secs(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn params(algorithm: Algorithm) -> ClusterParams {
    ClusterParams {
        algorithm,
        seed: SEED,
        ..Default::default()
    }
}

/// Places every later failure once; returns µs per failure and the share placed.
fn time_assign(c: &Clustering, later: &[FailureRow]) -> (f64, f64) {
    let mut online = OnlineClusterer::with_featurizer(c.model.clone(), c.featurizer.clone())
        .expect("a fresh model is valid");
    let started = Instant::now();
    let placed = later
        .iter()
        .filter(|r| black_box(online.assign(r)).is_some())
        .count();
    (
        started.elapsed().as_secs_f64() * 1e6 / later.len() as f64,
        placed as f64 / later.len() as f64,
    )
}

fn cluster(c: &mut Criterion) {
    let all = common::rows(ROWS + LATER, SEED);
    let (train, later) = all.split_at(ROWS);
    let p = params(Algorithm::KMeans);
    let mut featurizer = Featurizer::new(p.features.clone()).expect("valid");
    let raw = featurizer.extend(train);
    let scaler = Scaler::fit(&raw, &p.weights).expect("rows");
    let z = scaler.transform(&raw).expect("same schema");
    let (n, d) = z.dim();

    let full = DbscanParams {
        max_rows: None,
        ..p.dbscan.clone()
    };
    let started = Instant::now();
    let db = dbscan(&z, &full, SEED).expect("valid");
    let dbscan_s = started.elapsed().as_secs_f64();
    let db_clusters = db.iter().flatten().max().map_or(0, |m| m + 1);
    let db_noise = db.iter().filter(|l| l.is_none()).count();
    eprintln!(
        "cluster/dbscan_full {n}×{d} eps {} min_points {}: {dbscan_s:.2} s, {db_clusters} clusters, {db_noise} noise",
        full.eps, full.min_points
    );
    let mut sampled = Vec::new();
    let sampled_s = median_secs(3, || sampled = dbscan(&z, &p.dbscan, SEED).expect("valid"));
    let agree = db
        .iter()
        .zip(&sampled)
        .filter(|(a, b)| a.is_some() == b.is_some())
        .count();
    eprintln!(
        "cluster/dbscan_sampled {n}×{d} on {:?} rows: median of 3 {sampled_s:.2} s, {} clusters, {} noise; noise/clustered agrees with the full run on {:.1} % of rows",
        p.dbscan.max_rows,
        sampled.iter().flatten().max().map_or(0, |m| m + 1),
        sampled.iter().filter(|l| l.is_none()).count(),
        agree as f64 * 100.0 / n as f64
    );
    let mut km = None;
    let kmeans_s = median_secs(3, || {
        km = Some(kmeans(&z, K, &p.kmeans, SEED).expect("valid"))
    });
    let km = km.expect("ran");
    eprintln!(
        "cluster/kmeans {n}×{d} k {K} runs {} max_iterations {} tolerance {}: median of 3 {kmeans_s:.3} s, inertia {:.3}",
        p.kmeans.n_runs, p.kmeans.max_iterations, p.kmeans.tolerance, km.inertia
    );
    let mut chosen = (0, Vec::new());
    let choose_s = median_secs(1, || chosen = choose_k(&z, &p.kmeans, SEED).expect("valid"));
    eprintln!(
        "cluster/choose_k {}..={} on {} rows: {choose_s:.2} s, k = {}",
        p.kmeans.k_min, p.kmeans.k_max, p.kmeans.sample, chosen.0
    );

    let started = Instant::now();
    let kfit = fit(train, &p.clone().check().expect("valid")).expect("fit");
    let fit_kmeans_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let dfit = fit(train, &params(Algorithm::Dbscan).check().expect("valid")).expect("fit");
    let fit_dbscan_s = started.elapsed().as_secs_f64();
    let (assign_kmeans_us, placed_k) = time_assign(&kfit, later);
    let (assign_dbscan_us, placed_d) = time_assign(&dfit, later);
    eprintln!(
        "cluster/fit (featurize + scale + cluster + summaries) kmeans: {fit_kmeans_s:.2} s ({} clusters), dbscan: {fit_dbscan_s:.2} s ({} clusters)",
        kfit.model.clusters.len(),
        dfit.model.clusters.len()
    );
    eprintln!(
        "assign/online {LATER} failures: kmeans {assign_kmeans_us:.2} µs per failure ({:.0} % placed), dbscan {assign_dbscan_us:.2} µs ({:.0} % placed)",
        placed_k * 100.0,
        placed_d * 100.0
    );

    let dir = out_dir();
    let written = std::fs::create_dir_all(&dir)
        .and_then(|_| write_npy_matrix(&dir.join("features_100k.npy"), &z))
        .and_then(|_| write_npy_labels(&dir.join("dbscan_labels_100k.npy"), &db))
        .and_then(|_| {
            let labels: Vec<Option<usize>> = km.labels.iter().map(|&l| Some(l)).collect();
            write_npy_labels(&dir.join("kmeans_labels_100k.npy"), &labels)
        })
        .and_then(|_| {
            let summary = serde_json::json!({
                "rows": n, "cols": d, "seed": SEED,
                "dbscan": {"eps": full.eps, "min_points": full.min_points,
                           "seconds": dbscan_s, "clusters": db_clusters, "noise": db_noise},
                "dbscan_sampled": {"max_rows": p.dbscan.max_rows, "seconds": sampled_s},
                "kmeans": {"k": K, "n_runs": p.kmeans.n_runs, "max_iterations": p.kmeans.max_iterations,
                           "tolerance": p.kmeans.tolerance, "seconds": kmeans_s, "inertia": km.inertia},
                "choose_k": {"k_min": p.kmeans.k_min, "k_max": p.kmeans.k_max,
                             "sample": p.kmeans.sample, "seconds": choose_s, "k": chosen.0},
                "fit_seconds": {"kmeans": fit_kmeans_s, "dbscan": fit_dbscan_s},
                "assign_us": {"kmeans": assign_kmeans_us, "dbscan": assign_dbscan_us,
                              "kmeans_clusters": kfit.model.clusters.len(),
                              "dbscan_clusters": dfit.model.clusters.len()},
            });
            std::fs::write(
                dir.join("rust_cluster.json"),
                serde_json::to_string_pretty(&summary).unwrap_or_default(),
            )
        });
    match written {
        Ok(()) => eprintln!("wrote {}", dir.display()),
        Err(e) => eprintln!("cannot write {}: {e}", dir.display()),
    }

    let mut g = c.benchmark_group("cluster");
    g.sample_size(10);
    g.bench_with_input(BenchmarkId::new("dbscan_full_eps1", n), &z, |b, z| {
        b.iter(|| dbscan(z, &full, SEED).expect("valid"))
    });
    g.bench_with_input(BenchmarkId::new("dbscan_sampled_20k", n), &z, |b, z| {
        b.iter(|| dbscan(z, &p.dbscan, SEED).expect("valid"))
    });
    g.bench_with_input(BenchmarkId::new(format!("kmeans_k{K}"), n), &z, |b, z| {
        b.iter(|| kmeans(z, K, &p.kmeans, SEED).expect("valid"))
    });
    g.bench_with_input(BenchmarkId::new("choose_k", n), &z, |b, z| {
        b.iter(|| choose_k(z, &p.kmeans, SEED).expect("valid"))
    });
    g.finish();

    let mut g = c.benchmark_group("assign");
    g.throughput(Throughput::Elements(1));
    for (name, fitted) in [("kmeans", &kfit), ("dbscan", &dfit)] {
        let mut online =
            OnlineClusterer::with_featurizer(fitted.model.clone(), fitted.featurizer.clone())
                .expect("a fresh model is valid");
        let id = BenchmarkId::new(
            format!("{name}_{}_clusters", fitted.model.clusters.len()),
            n,
        );
        let mut i = 0;
        g.bench_function(id, |b| {
            b.iter(|| {
                let r = &later[i % later.len()];
                i += 1;
                online.assign(r)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, cluster);
criterion_main!(benches);
