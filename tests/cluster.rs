//! Clustering on the seeded 10k-failure stream (`../shared/data/bench/stream_10k.jsonl`):
//! classified failures, featurized and clustered, give clusters dominated by one kind; a model
//! survives JSON and places the stream's later failures online.

use faultline::classify::{Classifier, ClassifyInput};
use faultline::cluster::{fit, Algorithm, ClusterModel, ClusterParams, OnlineClusterer};
use faultline::store::FailureRow;
use faultline::{FailureReport, Timestamp};

use crate::util::repo;

/// Rows used: debug builds of linfa are slow, so the test keeps to the stream's beginning.
const ROWS: usize = 3000;

fn stream_rows(limit: usize) -> Option<Vec<FailureRow>> {
    let path = repo().join("../shared/data/bench/stream_10k.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: {} is absent", path.display());
        return None;
    };
    let classifier = Classifier::new();
    let rows = text
        .lines()
        .take(limit)
        .map(|line| {
            let report: FailureReport = serde_json::from_str(line).expect("stream line parses");
            let record = report.check(Timestamp::from_micros(0)).expect("valid");
            let c = classifier.classify(&ClassifyInput {
                message: &record.error.message,
                type_hint: record.error.type_hint.as_deref(),
                exit_code: record.error.exit_code,
                stacktrace: record.error.stacktrace.as_deref(),
                hardware: Some(record.hardware.class),
            });
            FailureRow {
                record,
                kind: c.kind,
                failure_type: c.failure_type,
                classifier_rule: c.rule.to_string(),
                xid: c.xid,
                template_id: None,
                cluster_id: None,
            }
        })
        .collect();
    Some(rows)
}

/// Share of the clusters whose dominant kind holds at least 60 % of their members, and the
/// share of clustered rows that carry their cluster's dominant kind.
fn coherence(model: &ClusterModel) -> (f64, f64) {
    let coherent = model
        .clusters
        .iter()
        .filter(|c| c.dominant_kind().is_some_and(|k| k.share >= 0.6))
        .count();
    let dominant_rows: usize = model
        .clusters
        .iter()
        .map(|c| c.dominant_kind().map_or(0, |k| k.count))
        .sum();
    let clustered: usize = model.clusters.iter().map(|c| c.size).sum();
    (
        coherent as f64 / model.clusters.len() as f64,
        dominant_rows as f64 / clustered.max(1) as f64,
    )
}

fn print(model: &ClusterModel) {
    eprintln!(
        "{} clusters, {} noise, silhouette {:?}, k scores {:?}",
        model.clusters.len(),
        model.noise,
        model.silhouette,
        model.k_scores
    );
    for c in &model.clusters {
        let k = c.dominant_kind().unwrap();
        let h = c.dominant_hardware().unwrap();
        eprintln!(
            "  {} size {:5} kind {} {:.2} hw {} {:.2} cohesion {:.2} radius {:.2}",
            c.id, c.size, k.value, k.share, h.value, h.share, c.cohesion, c.radius
        );
    }
}

#[test]
fn kmeans_clusters_of_the_stream_are_dominated_by_one_kind() {
    let Some(rows) = stream_rows(ROWS + 200) else {
        return;
    };
    let (train, later) = rows.split_at(ROWS);
    let mut params = ClusterParams::default();
    params.kmeans.sample = 500;
    let c = fit(train, &params.check().unwrap()).unwrap();
    print(&c.model);
    let (clusters, rows_share) = coherence(&c.model);
    eprintln!("coherent clusters {clusters:.2}, rows with their dominant kind {rows_share:.2}");
    assert!(c.model.clusters.len() >= 2);
    assert!(clusters >= 0.6, "{clusters}");
    assert!(rows_share >= 0.6, "{rows_share}");

    // The model survives JSON and places later failures online, mostly with their kind.
    let model = ClusterModel::from_json(&c.model.to_json().unwrap()).unwrap();
    let mut online = OnlineClusterer::with_featurizer(model, c.featurizer).unwrap();
    let (mut placed, mut same_kind) = (0, 0);
    for r in later {
        if let Some(id) = online.assign(r) {
            placed += 1;
            let s = online.model().cluster(id).unwrap();
            same_kind += usize::from(s.kinds.iter().any(|k| k.value == r.kind));
        }
    }
    eprintln!(
        "online: {placed} of {} placed, {same_kind} in a cluster holding their kind",
        later.len()
    );
    assert!(placed * 2 >= later.len(), "{placed}");
    assert!(same_kind * 10 >= placed * 8, "{same_kind} of {placed}");
}

#[test]
fn dbscan_clusters_of_the_stream_are_dominated_by_one_kind() {
    let Some(rows) = stream_rows(ROWS) else {
        return;
    };
    let mut params = ClusterParams {
        algorithm: Algorithm::Dbscan,
        ..Default::default()
    };
    params.kmeans.sample = 500;
    let c = fit(&rows, &params.check().unwrap()).unwrap();
    print(&c.model);
    let (clusters, rows_share) = coherence(&c.model);
    eprintln!("coherent clusters {clusters:.2}, rows with their dominant kind {rows_share:.2}");
    assert!(c.model.clusters.len() >= 2);
    assert!(c.model.noise < rows.len() / 2, "{}", c.model.noise);
    assert!(clusters >= 0.6, "{clusters}");
    assert!(rows_share >= 0.6, "{rows_share}");
}
