//! Tests of the featurizer: the schema matches the columns, one-hot blocks, the signed
//! template bucket, history features in time order, numeric columns, and properties.

use approx::assert_abs_diff_eq;
use proptest::prelude::*;

use super::*;
use crate::model::{
    ErrorInfo, FailureKind, FailureRecord, HardwareClass, HardwareProfile, Precision, TaskId,
    TaskSpec, Timestamp, WorkerId,
};
use crate::store::FailureRow;

/// A failure row for tests (also used by the cluster tests).
pub(crate) fn row(
    task: &str,
    worker: &str,
    class: HardwareClass,
    kind: FailureKind,
    ts_s: f64,
) -> FailureRow {
    FailureRow {
        record: FailureRecord {
            task_id: TaskId::new(task).unwrap(),
            worker_id: WorkerId::new(worker).unwrap(),
            hardware: HardwareProfile::of_class(class),
            error: ErrorInfo {
                message: "m".into(),
                ..Default::default()
            },
            timestamp: Timestamp::from_secs_f64(ts_s),
            task: TaskSpec::default(),
        },
        kind,
        failure_type: kind.failure_type(),
        classifier_rule: "test".into(),
        xid: None,
        template_id: None,
        cluster_id: None,
    }
}

fn col(m: &FeatureMatrix, name: &str) -> Vec<f64> {
    let j = m.schema.index_of(name).unwrap();
    m.x.column(j).to_vec()
}

#[test]
fn schema_names_match_columns() {
    let p = FeatureParams::default();
    let rows = vec![row("t", "w", HardwareClass::Gpu, FailureKind::OomGpu, 0.0)];
    let m = featurize(&rows, &p).unwrap();
    assert_eq!(m.x.ncols(), m.schema.names.len());
    assert_eq!(m.schema.version, FEATURE_SCHEMA_VERSION);
    assert_eq!(
        m.schema.width(),
        HardwareClass::ALL.len() + FailureKind::ALL.len() + p.template_buckets + 9
    );
    let mut names = m.schema.names.clone();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), m.schema.width(), "names are unique");
    for n in NUMERIC_COLUMNS {
        assert!(m.schema.index_of(n).is_some(), "{n}");
        assert!(!m.schema.is_indicator(m.schema.index_of(n).unwrap()));
    }
    assert!(m
        .schema
        .is_indicator(m.schema.index_of("kind_oom_gpu").unwrap()));
    assert_eq!(m.schema.names.last().map(String::as_str), Some("hour_cos"));
}

#[test]
fn one_hot_blocks_have_exactly_the_class_and_kind() {
    let mut rows = Vec::new();
    for (i, &c) in HardwareClass::ALL.iter().enumerate() {
        for (j, &k) in FailureKind::ALL.iter().enumerate() {
            rows.push(row(&format!("t{i}_{j}"), "w", c, k, (i * 100 + j) as f64));
        }
    }
    let m = featurize(&rows, &FeatureParams::default()).unwrap();
    let nc = HardwareClass::ALL.len();
    let nk = FailureKind::ALL.len();
    for (r, x) in rows.iter().zip(m.x.rows()) {
        let hw: Vec<f64> = x.iter().take(nc).copied().collect();
        let kind: Vec<f64> = x.iter().skip(nc).take(nk).copied().collect();
        assert_eq!(hw.iter().sum::<f64>(), 1.0);
        assert_eq!(hw[r.record.hardware.class.index()], 1.0);
        assert_eq!(kind.iter().sum::<f64>(), 1.0);
        assert_eq!(kind[r.kind.index()], 1.0);
        let name = &m.schema.names[nc + r.kind.index()];
        assert_eq!(name, &format!("kind_{}", r.kind.as_str()));
    }
}

#[test]
fn template_is_one_signed_bucket_and_stable() {
    let p = FeatureParams::default();
    let t0 = m_index(&p, "tpl_0");
    let mut rows = Vec::new();
    for id in [None, Some(1u64), Some(2), Some(1), Some(u64::MAX)] {
        let mut r = row("t", "w", HardwareClass::Cpu, FailureKind::Unknown, 0.0);
        r.template_id = id;
        rows.push(r);
    }
    let m = featurize(&rows, &p).unwrap();
    let block = |i: usize| -> Vec<f64> {
        m.x.row(i)
            .iter()
            .skip(t0)
            .take(p.template_buckets)
            .copied()
            .collect()
    };
    assert!(block(0).iter().all(|&v| v == 0.0), "no template, no bucket");
    for i in 1..5 {
        let b = block(i);
        assert_eq!(b.iter().filter(|v| **v != 0.0).count(), 1, "{b:?}");
        assert!(b.iter().all(|v| [0.0, 1.0, -1.0].contains(v)));
    }
    assert_eq!(block(1), block(3), "same id, same bucket and sign");
}

fn m_index(p: &FeatureParams, name: &str) -> usize {
    p.schema().index_of(name).unwrap()
}

#[test]
fn history_features_follow_time_order() {
    let p = FeatureParams {
        window_s: 100.0,
        gap_cap_s: 1000.0,
        ..Default::default()
    };
    let g = HardwareClass::Gpu;
    let k = FailureKind::Timeout;
    // Given out of order: the batch must visit them by time.
    let rows = vec![
        row("t1", "w1", g, k, 50.0),
        row("t1", "w1", g, k, 0.0),
        row("t2", "w1", g, k, 200.0),
        row("t1", "w2", g, k, 60.0),
    ];
    let m = featurize(&rows, &p).unwrap();
    assert_eq!(col(&m, "attempt"), vec![2.0, 1.0, 1.0, 3.0]);
    let gaps: Vec<f64> = col(&m, "log_gap_worker_s")
        .iter()
        .map(|v| v.exp_m1())
        .collect();
    assert_abs_diff_eq!(gaps[1], 1000.0, epsilon = 1e-9); // first failure of w1: the cap
    assert_abs_diff_eq!(gaps[0], 50.0, epsilon = 1e-9);
    assert_abs_diff_eq!(gaps[2], 150.0, epsilon = 1e-9);
    assert_abs_diff_eq!(gaps[3], 1000.0, epsilon = 1e-9); // first failure of w2
                                                          // w1's earlier failures within 100 s, per hour: at 50 → one (0), at 200 → none.
    assert_eq!(col(&m, "worker_rate_per_h"), vec![36.0, 0.0, 0.0, 0.0]);
    assert_eq!(col(&m, "task_recent_failures"), vec![1.0, 0.0, 0.0, 2.0]);

    // The same rows fed online in time order give the same vectors.
    let mut f = Featurizer::new(p).unwrap();
    for i in [1, 0, 3, 2] {
        assert_eq!(f.push(&rows[i]), m.x.row(i).to_vec());
    }
    assert_eq!(f.tracked(), (2, 2));
}

#[test]
fn numeric_columns_read_the_record() {
    let mut r = row(
        "t",
        "w",
        HardwareClass::Tpu,
        FailureKind::TpuError,
        6.0 * 3600.0,
    );
    r.record.task.config.batch_size = Some(32);
    r.record.task.config.precision = Some(Precision::Int8);
    r.record.hardware.memory_gib = Some(40.0);
    let m = featurize(&[r], &FeatureParams::default()).unwrap();
    assert_eq!(col(&m, "log2_batch_size"), vec![5.0]);
    assert_eq!(
        col(&m, "precision_rank"),
        vec![Precision::Int8.index() as f64]
    );
    assert_eq!(col(&m, "memory_gib"), vec![40.0]);
    assert_abs_diff_eq!(col(&m, "hour_sin")[0], 1.0, epsilon = 1e-12);
    assert_abs_diff_eq!(col(&m, "hour_cos")[0], 0.0, epsilon = 1e-12);
    // Unknown batch size and precision: 0 and fp32.
    let m = featurize(
        &[row("t", "w", HardwareClass::Cpu, FailureKind::Unknown, 0.0)],
        &FeatureParams::default(),
    )
    .unwrap();
    assert_eq!(col(&m, "log2_batch_size"), vec![0.0]);
    assert_eq!(
        col(&m, "precision_rank"),
        vec![Precision::Fp32.index() as f64]
    );
}

#[test]
fn attempt_is_capped_and_idle_state_is_forgotten() {
    let p = FeatureParams {
        attempt_cap: 2,
        ..Default::default()
    };
    let mut f = Featurizer::new(p).unwrap();
    let j = f.schema().index_of("attempt").unwrap();
    let attempts: Vec<f64> = (0..4)
        .map(|i| {
            f.push(&row(
                "t",
                "w",
                HardwareClass::Cpu,
                FailureKind::Unknown,
                i as f64,
            ))[j]
        })
        .collect();
    assert_eq!(attempts, vec![1.0, 2.0, 2.0, 2.0]);
    assert_eq!(f.forget_idle(Timestamp::from_secs_f64(10.0), 100.0), 0);
    assert_eq!(f.forget_idle(Timestamp::from_secs_f64(1000.0), 100.0), 2);
    assert_eq!(f.tracked(), (0, 0));
    let v = f.push(&row(
        "t",
        "w",
        HardwareClass::Cpu,
        FailureKind::Unknown,
        1000.0,
    ));
    assert_eq!(v[j], 1.0);
}

fn sample_matrix() -> FeatureMatrix {
    let mut rows = Vec::new();
    for i in 0..50 {
        let class = HardwareClass::ALL[i % 3];
        let kind = FailureKind::ALL[i % 5];
        let mut r = row(
            &format!("t{}", i % 7),
            &format!("w{}", i % 4),
            class,
            kind,
            i as f64 * 37.0,
        );
        r.record.task.config.batch_size = Some(1 << (i % 6));
        r.template_id = Some((i % 4) as u64);
        rows.push(r);
    }
    featurize(&rows, &FeatureParams::default()).unwrap()
}

#[test]
fn scaler_round_trips_standardizes_measures_and_weights_blocks() {
    let m = sample_matrix();
    let unit = FeatureWeights {
        hardware: 1.0,
        kind: 1.0,
        template: 1.0,
        config: 1.0,
        history: 1.0,
        hour: 1.0,
    };
    let s = Scaler::fit(&m, &unit).unwrap();
    let z = s.transform(&m).unwrap();
    for j in 0..z.ncols() {
        let c = z.column(j);
        if m.schema.is_indicator(j) {
            assert_eq!(c, m.x.column(j), "indicator {j} is kept as it is");
            continue;
        }
        if m.schema.block(j) == Some(Block::Hour) {
            assert_eq!(s.mean[j], 0.0);
            assert_abs_diff_eq!(s.factor[j], std::f64::consts::SQRT_2, epsilon = 1e-12);
            continue;
        }
        let mean = c.mean().unwrap();
        let sd = c.std(0.0);
        assert_abs_diff_eq!(mean, 0.0, epsilon = 1e-9);
        assert!(
            sd.abs() < 1e-9 || (sd - 1.0).abs() < 1e-9,
            "column {j} sd {sd}"
        );
    }
    // A constant measure keeps factor 1.
    let mem = m.schema.index_of("memory_gib").unwrap();
    assert_eq!(s.factor[mem], 1.0);
    let back = s.inverse_transform(&z).unwrap();
    for (a, b) in back.iter().zip(m.x.iter()) {
        assert_abs_diff_eq!(a, b, epsilon = 1e-9);
    }
    let json = serde_json::to_string(&s).unwrap();
    let back: Scaler = serde_json::from_str(&json).unwrap();
    assert_eq!(back.schema, s.schema);
    assert_eq!(back.weights, s.weights);
    for (a, b) in back
        .mean
        .iter()
        .chain(&back.factor)
        .zip(s.mean.iter().chain(&s.factor))
    {
        assert_abs_diff_eq!(a, b, epsilon = 1e-12);
    }

    // Weights multiply their blocks; a zero weight drops a block.
    let w = FeatureWeights {
        kind: 3.0,
        hour: 0.0,
        ..unit
    };
    let sw = Scaler::fit(&m, &w).unwrap();
    let zw = sw.transform(&m).unwrap();
    let k = m.schema.index_of("kind_oom_gpu").unwrap();
    let h = m.schema.index_of("hour_sin").unwrap();
    let b = m.schema.index_of("log2_batch_size").unwrap();
    for i in 0..m.x.nrows() {
        assert_eq!(zw[[i, k]], 3.0 * z[[i, k]]);
        assert_eq!(zw[[i, h]], 0.0);
        assert_eq!(zw[[i, b]], z[[i, b]]);
    }
    let mut one = m.x.row(3).to_vec();
    sw.transform_row(&mut one).unwrap();
    for (a, b) in one.iter().zip(zw.row(3)) {
        assert_abs_diff_eq!(a, b, epsilon = 1e-12);
    }
    let e = Scaler::fit(&m, &FeatureWeights { kind: -1.0, ..unit }).unwrap_err();
    assert_eq!(field_of(e), "weights.kind");
}

#[test]
fn scaler_of_another_schema_version_is_refused() {
    let m = sample_matrix();
    let mut s = Scaler::fit(&m, &FeatureWeights::default()).unwrap();
    s.schema.version = FEATURE_SCHEMA_VERSION + 1;
    let e = s.transform(&m).unwrap_err();
    assert!(matches!(e, FeatureError::SchemaMismatch { .. }));
    assert!(e.to_string().contains("schema version"), "{e}");
    let mut s = Scaler::fit(&m, &FeatureWeights::default()).unwrap();
    s.schema.names[0] = "hw_cpu_renamed".into();
    let e = s.check_schema(&m.schema).unwrap_err();
    assert!(e.to_string().contains("column 0"), "{e}");
}

#[test]
fn width_and_empty_errors() {
    let mut f = Featurizer::new(FeatureParams::default()).unwrap();
    let r = row("t", "w", HardwareClass::Cpu, FailureKind::Unknown, 0.0);
    let e = f.push_into(&r, &mut [0.0; 3]).unwrap_err();
    assert_eq!(
        e,
        FeatureError::Width {
            expected: f.width(),
            got: 3
        }
    );
    let empty = featurize(&[], &FeatureParams::default()).unwrap();
    assert_eq!(
        Scaler::fit(&empty, &FeatureWeights::default()).unwrap_err(),
        FeatureError::Empty
    );
    let s = Scaler::fit(&sample_matrix(), &FeatureWeights::default()).unwrap();
    assert!(matches!(
        s.transform_row(&mut [0.0; 2]),
        Err(FeatureError::Width { got: 2, .. })
    ));
}

fn field_of(e: FeatureError) -> String {
    match e {
        FeatureError::InvalidParam { field, .. } => field,
        other => panic!("{other}"),
    }
}

#[test]
fn invalid_template_buckets() {
    for b in [0, 10_000] {
        let p = FeatureParams {
            template_buckets: b,
            ..Default::default()
        };
        assert_eq!(
            field_of(p.check().unwrap_err()),
            "features.template_buckets"
        );
    }
}

#[test]
fn invalid_window() {
    for w in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let p = FeatureParams {
            window_s: w,
            ..Default::default()
        };
        assert_eq!(
            field_of(Featurizer::new(p).unwrap_err()),
            "features.window_s"
        );
    }
}

#[test]
fn invalid_gap_cap() {
    let p = FeatureParams {
        gap_cap_s: 0.0,
        ..Default::default()
    };
    assert_eq!(field_of(p.check().unwrap_err()), "features.gap_cap_s");
}

#[test]
fn invalid_attempt_cap() {
    let p = FeatureParams {
        attempt_cap: 0,
        ..Default::default()
    };
    assert_eq!(field_of(p.check().unwrap_err()), "features.attempt_cap");
}

#[test]
fn params_reject_unknown_fields() {
    let e = toml::from_str::<FeatureParams>("window_secs = 5\n").unwrap_err();
    assert!(e.to_string().contains("window_secs"), "{e}");
    let p: FeatureParams = toml::from_str("window_s = 60.0\n").unwrap();
    assert_eq!(p.window_s, 60.0);
    assert_eq!(
        p.template_buckets,
        FeatureParams::default().template_buckets
    );
}

#[test]
fn autotraits() {
    fn has<T: Send + Sync>() {}
    has::<Featurizer>();
    has::<Scaler>();
    has::<FeatureMatrix>();
    has::<FeatureError>();
}

fn arb_row() -> impl Strategy<Value = FailureRow> {
    (
        0..HardwareClass::ALL.len(),
        0..FailureKind::ALL.len(),
        0u8..4,
        0u8..4,
        any::<i64>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(0..Precision::ALL.len()),
        proptest::option::of(any::<f64>()),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(c, k, t, w, ts, batch, prec, mem, tpl)| {
            let mut r = row(
                &format!("t{t}"),
                &format!("w{w}"),
                HardwareClass::ALL[c],
                FailureKind::ALL[k],
                0.0,
            );
            r.record.timestamp = Timestamp::from_micros(ts);
            r.record.task.config.batch_size = batch;
            r.record.task.config.precision = prec.map(|i| Precision::ALL[i]);
            r.record.hardware.memory_gib = mem;
            r.template_id = tpl;
            r
        })
}

proptest! {
    #[test]
    fn features_are_finite_for_arbitrary_records(rows in proptest::collection::vec(arb_row(), 1..40)) {
        let m = featurize(&rows, &FeatureParams::default()).unwrap();
        prop_assert_eq!(m.x.nrows(), rows.len());
        prop_assert!(m.x.iter().all(|v| v.is_finite()));
        let s = Scaler::fit(&m, &FeatureWeights::default()).unwrap();
        let z = s.transform(&m).unwrap();
        prop_assert!(z.iter().all(|v| v.is_finite()));
    }
}

/// Regression: fitted on a short window (here 90 minutes), the hour columns' spread was tiny
/// and their factor huge (10 against 0.35 for a week): the same failure at another hour of
/// the day landed far from every cluster.
#[test]
fn the_hour_of_day_keeps_its_scale_whatever_the_training_span() {
    let short = {
        let mut rows = Vec::new();
        for i in 0..35 {
            rows.push(row(
                &format!("t{i}"),
                "w1",
                HardwareClass::Gpu,
                FailureKind::OomGpu,
                i as f64 * 150.0,
            ));
        }
        featurize(&rows, &FeatureParams::default()).unwrap()
    };
    let w = FeatureWeights::default();
    let s = Scaler::fit(&short, &w).unwrap();
    for name in ["hour_sin", "hour_cos"] {
        let j = short.schema.index_of(name).unwrap();
        assert_eq!(s.mean[j], 0.0, "{name}");
        assert_abs_diff_eq!(
            s.factor[j],
            w.hour * std::f64::consts::SQRT_2,
            epsilon = 1e-12
        );
    }
    // Twelve hours apart on the circle: as far apart as the weight says, not ten times more.
    let (sin, cos) = (
        short.schema.index_of("hour_sin").unwrap(),
        short.schema.index_of("hour_cos").unwrap(),
    );
    let mut a = short.x.row(0).to_vec();
    let mut b = a.clone();
    b[sin] = -a[sin];
    b[cos] = -a[cos];
    s.transform_row(&mut a).unwrap();
    s.transform_row(&mut b).unwrap();
    let d = ((a[sin] - b[sin]).powi(2) + (a[cos] - b[cos]).powi(2)).sqrt();
    assert_abs_diff_eq!(d, 2.0 * w.hour * std::f64::consts::SQRT_2, epsilon = 1e-9);
}
