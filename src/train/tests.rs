//! Unit tests of training: options, the learned classifier, success tables, and a small
//! train → save → load cycle on a history written with the store API.

use std::path::Path;

use super::*;
use crate::config::RankingParams;
use crate::features::tests::row;
use crate::model::{FailureKind, HardwareClass, Outcome, RecoveryStrategy};
use crate::store::{Entry, OutcomeRow, ParquetStore, StoreOptions};

/// Whether two JSON documents are equal, numbers within 1e-12 relative: serde_json (without
/// its `float_roundtrip` feature) may read a float back one ulp away from what it wrote.
pub(crate) fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}

/// Every part of a model as JSON.
pub(crate) fn as_json(m: &Model) -> serde_json::Value {
    serde_json::json!({
        "manifest": m.manifest(),
        "templates": m.templates().state(),
        "classifier": m.classifier(),
        "clusters": m.clusters(),
        "success": m.success_tables(),
    })
}

fn autotraits<T: Send + Sync + Clone + std::fmt::Debug>() {}

#[test]
fn model_and_error_are_send_sync() {
    autotraits::<Model>();
    autotraits::<Manifest>();
    autotraits::<TrainOptions>();
    fn send_sync<T: Send + Sync + std::error::Error>() {}
    send_sync::<TrainError>();
}

fn opts() -> TrainOptions {
    let mut o = TrainOptions::new("unit", Timestamp::from_micros(1_700_000_000_000_000));
    // Small k range: debug builds of linfa are slow.
    o.cluster.kmeans.k_max = 4;
    o
}

#[test]
fn options_errors_name_the_option() {
    type Edit = fn(&mut TrainOptions);
    let cases: [(&str, Edit); 5] = [
        ("name", |o| o.name = " ".into()),
        ("sample", |o| o.sample = 3),
        ("holdout_every", |o| o.holdout_every = 1),
        ("min_support", |o| o.min_support = 0),
        ("min_purity", |o| o.min_purity = 1.5),
    ];
    for (field, f) in cases {
        let mut o = opts();
        assert!(o.check().is_ok());
        f(&mut o);
        match o.check() {
            Err(TrainError::Invalid { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn classifier_learns_majorities_with_support_and_purity() {
    use FailureKind::*;
    let t = |i| TemplateId(i);
    let pairs = [
        (t(1), OomGpu),
        (t(1), OomGpu),
        (t(1), OomGpu),
        (t(1), Timeout), // 3 of 4 = 75 %
        (t(2), Network),
        (t(2), Network), // only 2
        (t(3), Unknown),
        (t(3), Unknown),
        (t(3), Unknown), // unknown is no evidence
        (t(4), DiskFull),
        (t(4), DiskFull),
        (t(4), DiskFull),
        (t(4), Unknown),
    ];
    let c = TemplateClassifier::fit(pairs, 3, 0.7);
    assert_eq!(c.kind_of(t(1)), Some(OomGpu));
    assert_eq!(c.entries[0].count, 3);
    assert_eq!(c.entries[0].total, 4);
    assert_eq!(c.kind_of(t(2)), None);
    assert_eq!(c.kind_of(t(3)), None);
    assert_eq!(c.kind_of(t(4)), Some(DiskFull));
    let strict = TemplateClassifier::fit(pairs, 3, 0.8);
    assert_eq!(strict.kind_of(t(1)), None);
    assert_eq!(strict.kind_of(t(4)), Some(DiskFull));
}

#[test]
fn evaluation_scores_held_out_rows_only() {
    use FailureKind::*;
    // Template 1: oom everywhere except held-out seq 9 (timeout); template 2 only held out.
    let mut rows: Vec<(u64, TemplateId, FailureKind)> =
        (0..10).map(|s| (s, TemplateId(1), OomGpu)).collect();
    rows[9].2 = Timeout;
    rows.push((14, TemplateId(2), Network));
    rows.push((19, TemplateId(1), Unknown));
    assert!(classifier::held_out(4, 5) && classifier::held_out(9, 5));
    assert!(!classifier::held_out(5, 5) && !classifier::held_out(3, 0));
    let m = classifier::evaluate(&rows, 5, 3, 0.8);
    // Held out: 4 (oom), 9 (timeout), 14 (network, template unseen), 19 (unknown).
    assert_eq!(m.holdout_rows, 3);
    assert_eq!(m.covered, 2);
    assert_eq!(m.agree, 1);
    assert_eq!(m.unknown_recovered, 1);
    assert!((m.accuracy - 0.5).abs() < 1e-12);
    assert!((m.coverage - 2.0 / 3.0).abs() < 1e-12);
    assert!((m.holdout_share - 0.2).abs() < 1e-12);
}

#[test]
fn success_tables_round_trip_through_a_ranker() {
    let mut r = crate::ranking::Ranker::new(RankingParams::default()).unwrap();
    let mut c = crate::ranking::Counts::default();
    let k = RecoveryStrategy::ReducedBatchSize.index();
    c.success[k] = 3.0;
    c.failure[k] = 1.0;
    c.cost[k] = 8.0;
    c.costed[k] = 4.0;
    r.set_counts(HardwareClass::Gpu, FailureKind::OomGpu, c);
    let t = SuccessTables::from_ranker(&r);
    assert_eq!(t.contexts.len(), 1);
    assert_eq!(t.contexts[0].strategies.len(), 1);
    assert_eq!(t.outcomes(), 4.0);
    assert_eq!(t.successes(), 3.0);
    let back = t.ranker(RankingParams::default()).unwrap();
    assert_eq!(back.counts(HardwareClass::Gpu, FailureKind::OomGpu), &c);
    assert_eq!(SuccessTables::from_ranker(&back), t);
}

/// Seeding refined contexts (`ranking.seed_refined`): a trained model whose history told two
/// causes of one (class, kind) apart (their classifier rules, one cured by moving the task,
/// the other by a reset) seeds a fresh ranker so that each starts from its own cure; from the
/// per-kind tables alone, or with the option off (the default), both start from the pooled
/// one.
#[test]
fn refined_tables_seed_each_cause_with_its_own_cure() {
    use crate::ranking::{fine_key, Counts, RankContext, Ranker, WorkerStanding, N};
    use RecoveryStrategy as S;
    let at = (HardwareClass::Gpu, FailureKind::CudaError);
    let counts = |cells: &[(S, f64, f64)]| {
        let mut c = Counts::default();
        for &(s, ok, failed) in cells {
            c.success[s.index()] = ok;
            c.failure[s.index()] = failed;
        }
        c
    };
    let (key_a, key_b) = (
        fine_key("rule-a", None, 1, WorkerStanding::Healthy),
        fine_key("rule-b", None, 1, WorkerStanding::Healthy),
    );
    let a = counts(&[
        (S::DifferentWorker, 78.0, 2.0),
        (S::ResetWorkerState, 2.0, 18.0),
    ]);
    let b = counts(&[
        (S::DifferentWorker, 2.0, 18.0),
        (S::ResetWorkerState, 28.0, 2.0),
    ]);
    let refined = |key, c: &Counts| RefinedContext {
        hardware_class: at.0,
        kind: at.1,
        level: RefinedLevel::Fine,
        key,
        strategies: super::success::strategy_counts(c),
    };
    let pooled = counts(&[
        (S::DifferentWorker, 80.0, 20.0),
        (S::ResetWorkerState, 30.0, 20.0),
    ]);
    let coarse = SuccessTables {
        contexts: vec![ContextCounts {
            hardware_class: at.0,
            kind: at.1,
            strategies: super::success::strategy_counts(&pooled),
        }],
        refined: Vec::new(),
    };
    let tables = SuccessTables {
        refined: vec![refined(key_a, &a), refined(key_b, &b)],
        ..coarse.clone()
    };
    // Greedy on the posterior means.
    let params = RankingParams {
        selection: crate::config::Selection::Ucb,
        ucb_c: 0.0,
        seed_refined: true,
        ..RankingParams::default()
    };
    let valid = [S::DifferentWorker, S::ResetWorkerState];
    let ladder = [S::DifferentWorker];
    let tried = [0u32; N];
    let choose = |r: &Ranker, key| {
        let c = RankContext {
            class: at.0,
            kind: at.1,
            template: Some(key),
            signature: None,
            ladder: &ladder,
            valid: &valid,
            tried: &tried,
            burst: false,
            bad_worker: false,
        };
        let mut rng = rand::rngs::mock::StepRng::new(0, 1);
        r.choose(&c, &mut rng).unwrap().strategy
    };
    let mut r = Ranker::new(params.clone()).unwrap();
    assert_eq!(tables.seed(&mut r), 1);
    assert!(r.fine_counts(at.0, at.1, key_b).is_some());
    assert_eq!(choose(&r, key_a), S::DifferentWorker);
    assert_eq!(choose(&r, key_b), S::ResetWorkerState);
    let mut r = Ranker::new(params.clone()).unwrap();
    assert_eq!(coarse.seed(&mut r), 1);
    assert_eq!(
        choose(&r, key_b),
        S::DifferentWorker,
        "pooled without refined tables"
    );
    let mut r = Ranker::new(RankingParams {
        seed_refined: false,
        ..params.clone()
    })
    .unwrap();
    assert_eq!(tables.seed(&mut r), 1);
    assert!(r.fine_counts(at.0, at.1, key_b).is_none());
    assert_eq!(
        choose(&r, key_b),
        S::DifferentWorker,
        "pooled with the option off"
    );

    // A refined context whose kind has no per-kind table (memory exhausted on a TPU, logged
    // as a TPU error but ranked as an out-of-memory): its fine contexts' sum seeds the coarse
    // context, so they are consulted.
    let oom = SuccessTables {
        contexts: Vec::new(),
        refined: vec![RefinedContext {
            hardware_class: HardwareClass::Tpu,
            kind: FailureKind::OomGpu,
            ..refined(key_b, &b)
        }],
    };
    let mut r = Ranker::new(params).unwrap();
    assert_eq!(oom.seed(&mut r), 1);
    let c = r.counts(HardwareClass::Tpu, FailureKind::OomGpu);
    let k = S::ResetWorkerState.index();
    assert_eq!((c.success[k], c.failure[k]), (28.0, 2.0));
    // A ranker with evidence of its own keeps it: nothing is seeded.
    assert_eq!(oom.seed(&mut r), 0);
}

/// A message of one of four families, with a varying value.
fn message(family: usize, i: usize) -> (String, HardwareClass, FailureKind) {
    match family {
        0 => (
            format!("CUDA out of memory. Tried to allocate {}.00 GiB", i % 7 + 1),
            HardwareClass::Gpu,
            FailureKind::OomGpu,
        ),
        1 => (
            format!(
                "NCCL watchdog timeout after {} ms on rank {}",
                1000 + i,
                i % 8
            ),
            HardwareClass::Tpu,
            FailureKind::Timeout,
        ),
        2 => (
            format!("No space left on device: /scratch/run-{i}/ckpt.bin"),
            HardwareClass::Cpu,
            FailureKind::DiskFull,
        ),
        _ => (
            format!("frobnicator stalled at step {i}"),
            HardwareClass::Npu,
            FailureKind::Unknown,
        ),
    }
}

/// Writes `n` failures (four families) and an outcome for each of the first three families
/// to a store under `root`; returns the outcomes' (class, kind, strategy, success).
fn write_history(
    root: &Path,
    n: usize,
) -> Vec<(HardwareClass, FailureKind, RecoveryStrategy, bool)> {
    let mut store = ParquetStore::open(root, StoreOptions::default()).unwrap();
    let mut entries = Vec::new();
    let mut truth = Vec::new();
    for i in 0..n {
        let fam = i % 4;
        let (msg, class, kind) = message(fam, i);
        let ts = 1_700_000_000.0 + i as f64 * 37.0;
        let mut r = row(&format!("t{i}"), &format!("w{}", i % 5), class, kind, ts);
        r.record.error.message = msg;
        r.record.task.config.batch_size = Some(8 << (i % 3));
        entries.push(Entry::Failure(Box::new(r)));
        if fam < 3 {
            let strategy = if i % 3 == 0 {
                RecoveryStrategy::DelayedRetry
            } else {
                RecoveryStrategy::DifferentWorker
            };
            let success = i % 5 != 0;
            entries.push(Entry::Outcome(OutcomeRow {
                outcome: Outcome {
                    task_id: format!("t{i}"),
                    success,
                    strategy: Some(strategy),
                    time_to_recovery_s: None,
                    cost: Some(2.0),
                    timestamp: None,
                },
                timestamp: Timestamp::from_secs_f64(ts + 5.0),
                hardware_class: Some(class),
                kind: Some(kind),
            }));
            truth.push((class, kind, strategy, success));
        }
    }
    store.write_batch(entries).unwrap();
    truth
}

#[test]
fn trains_saves_and_loads_a_small_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let truth = write_history(&data, 80);
    let model = train(&data, &opts()).unwrap();
    let m = model.manifest();
    assert_eq!(m.format_version, MODEL_FORMAT_VERSION);
    assert_eq!(m.data_range.failures, 80);
    assert_eq!(m.data_range.outcomes, 60);
    assert_eq!(
        m.data_range.first,
        Some(Timestamp::from_secs_f64(1_700_000_000.0))
    );
    assert_eq!(
        m.metrics.templates.templates, 4,
        "{:?}",
        m.metrics.templates
    );
    // Three templates have classified failures; the unknown family teaches nothing.
    assert_eq!(m.metrics.classifier.entries, 3);
    // Sequence numbers interleave failures and outcomes (store order).
    let (mut seq, mut held) = (0u64, 0u64);
    for i in 0..80 {
        seq += 1;
        held += u64::from(i % 4 != 3 && seq % 5 == 4);
        seq += u64::from(i % 4 < 3);
    }
    assert!(held > 5);
    assert_eq!(m.metrics.classifier.holdout_rows, held);
    assert_eq!(m.metrics.classifier.accuracy, 1.0);
    assert_eq!(m.metrics.classifier.unknown_recovered, 0);
    assert!(m.metrics.clusters.clusters >= 2, "{:?}", m.metrics.clusters);
    assert_eq!(
        m.feature_schema.names,
        m.feature_schema.params.schema().names
    );
    assert_eq!(m.artifacts.len(), 4);

    // Success tables = the history's outcomes.
    let ranker = model.ranker(RankingParams::default()).unwrap();
    for &(class, kind, strategy, _) in &truth {
        let (ok, bad) = truth
            .iter()
            .filter(|t| (t.0, t.1, t.2) == (class, kind, strategy))
            .fold(
                (0.0, 0.0),
                |(a, b), t| if t.3 { (a + 1.0, b) } else { (a, b + 1.0) },
            );
        let c = ranker.counts(class, kind);
        assert_eq!(
            (c.success[strategy.index()], c.failure[strategy.index()]),
            (ok, bad)
        );
    }
    assert_eq!(m.metrics.success.outcomes, 60.0);
    assert_eq!(m.metrics.success.contexts, 3);
    // Refined tables: every outcome joined to the failure it answered, once per level. Each
    // family has one classifier rule and each task failed once, so each family is one fine
    // context with its (class, kind) context's outcomes.
    let t = model.success_tables();
    for level in [RefinedLevel::Fine, RefinedLevel::Finest] {
        let n: f64 = t
            .refined
            .iter()
            .filter(|r| r.level == level)
            .flat_map(|r| &r.strategies)
            .map(|s| s.successes + s.failures)
            .sum();
        assert_eq!(n, 60.0, "{level:?}");
    }
    let fine: Vec<_> = t
        .refined
        .iter()
        .filter(|r| r.level == RefinedLevel::Fine)
        .collect();
    assert_eq!(fine.len(), 3);
    for r in fine {
        let (c, coarse) = (r.counts(), ranker.counts(r.hardware_class, r.kind));
        assert_eq!((c.success, c.failure), (coarse.success, coarse.failure));
    }

    // Annotation: template, learned kind, cluster; nothing for an unseen message.
    let mut rec = row("tx", "w1", HardwareClass::Gpu, FailureKind::OomGpu, 1.7e9).record;
    rec.error.message = "CUDA out of memory. Tried to allocate 3.00 GiB".into();
    let a = model.annotate(&rec, FailureKind::OomGpu);
    assert_eq!(
        a.template.as_deref(),
        Some("CUDA out of memory. Tried to allocate <*>")
    );
    assert_eq!(a.learned_kind, Some(FailureKind::OomGpu));
    assert!(a.template_id.is_some());
    rec.error.message = "frobnicator stalled at step 99999".into();
    let a = model.annotate(&rec, FailureKind::Unknown);
    assert!(a.template.is_some());
    assert_eq!(a.learned_kind, None, "unknown failures teach no kind");
    rec.error.message = "entirely new words here".into();
    let a = model.annotate(&rec, FailureKind::Unknown);
    assert_eq!((a.template_id, a.learned_kind), (None, None));

    // Round trip, and saving over an existing model.
    let out = dir.path().join("models").join("unit");
    model.save(&out).unwrap();
    model.save(&out).unwrap();
    let back = Model::load(&out).unwrap();
    assert!(close(&as_json(&back), &as_json(&model)));
    assert_eq!(back.manifest().artifacts, model.manifest().artifacts);
    assert_eq!(back.success_tables(), model.success_tables());
    assert_eq!(back.classifier(), model.classifier());
    assert_eq!(back.templates().state(), model.templates().state());
    assert!(
        std::fs::read_dir(dir.path().join("models"))
            .unwrap()
            .all(|e| e.unwrap().file_name() == "unit"),
        "no temporary directory left"
    );

    // A corrupt artifact is named.
    let f = out.join(CLASSIFIER_FILE);
    let mut text = std::fs::read_to_string(&f).unwrap();
    text.push(' ');
    std::fs::write(&f, text).unwrap();
    let e = Model::load(&out).unwrap_err();
    assert!(matches!(e, TrainError::Hash { .. }), "{e}");
    assert!(e.to_string().contains(CLASSIFIER_FILE), "{e}");
}

/// Writes a copy of the manifest under `dir` changed by `f`.
fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join(MANIFEST_FILE);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn loader_dispatches_on_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_history(&data, 12); // too few to cluster: a model without clusters
    let model = train(&data, &opts()).unwrap();
    assert!(model.clusters().is_none());
    assert!(model.manifest().metrics.clusters.skipped.is_some());
    let out = dir.path().join("m");
    model.save(&out).unwrap();
    assert_eq!(
        Model::load(&out).unwrap(),
        model,
        "no floats without clusters"
    );

    edit_manifest(&out, |v| {
        v["format_version"] = (MODEL_FORMAT_VERSION + 1).into()
    });
    let e = Model::load(&out).unwrap_err();
    assert!(matches!(e, TrainError::NewerFormat { found: 3, .. }), "{e}");
    assert!(e.to_string().contains("newer"), "{e}");
    assert!(e.to_string().contains(MANIFEST_FILE), "{e}");

    edit_manifest(&out, |v| v["format_version"] = 0.into());
    assert!(matches!(
        Model::load(&out),
        Err(TrainError::UnknownFormat { found: 0, .. })
    ));

    edit_manifest(&out, |v| {
        v["format_version"] = 1.into();
        v["name"] = 5.into();
    });
    let e = Model::load(&out).unwrap_err().to_string();
    assert!(
        e.contains(MANIFEST_FILE) && e.contains("invalid type"),
        "{e}"
    );

    edit_manifest(&out, |v| {
        v["name"] = "m".into();
        v["artifacts"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a["file"] != SUCCESS_FILE);
    });
    let e = Model::load(&out).unwrap_err().to_string();
    assert!(e.contains("artifacts") && e.contains(SUCCESS_FILE), "{e}");

    std::fs::remove_file(out.join(MANIFEST_FILE)).unwrap();
    let e = Model::load(&out).unwrap_err();
    assert!(
        matches!(&e, TrainError::Io { path, .. } if path.ends_with(MANIFEST_FILE)),
        "{e}"
    );
}

#[test]
fn a_directory_without_history_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = train(dir.path(), &opts()).unwrap_err();
    assert!(matches!(e, TrainError::NoHistory { .. }), "{e}");
    std::fs::create_dir(dir.path().join("history")).unwrap();
    let e = train(dir.path(), &opts()).unwrap_err();
    assert!(matches!(e, TrainError::Empty { .. }), "{e}");
}

#[test]
fn save_replaces_a_model_but_never_a_directory_or_file_that_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_history(&data, 40);
    let model = train(&data, &opts()).unwrap();
    // A new directory, an empty one and an earlier model are written.
    let fresh = dir.path().join("models/v1");
    model.save(&fresh).unwrap();
    model.save(&fresh).unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    model.save(&empty).unwrap();
    assert!(empty.join(MANIFEST_FILE).is_file());
    // The data directory itself, a folder of the user's and a file are refused and kept.
    let notes = dir.path().join("precious");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("notes.txt"), "important").unwrap();
    let file = dir.path().join("good.jsonl");
    std::fs::write(&file, "{}\n").unwrap();
    for target in [&data, &notes, &file] {
        let err = model.save(target).unwrap_err().to_string();
        assert!(err.contains("refusing to replace"), "{err}");
        assert!(err.contains(&target.display().to_string()), "{err}");
    }
    assert!(data.join("history").is_dir());
    assert_eq!(
        std::fs::read_to_string(notes.join("notes.txt")).unwrap(),
        "important"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{}\n");
    // Nothing was left beside them.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["data", "empty", "good.jsonl", "models", "precious"]);
    // A link to a model is named as a link (replacing it would leave its target behind).
    #[cfg(unix)]
    {
        let link = dir.path().join("current");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        let err = model.save(&link).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
    }
}
