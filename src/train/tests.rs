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
            busy: false,
            budget_left: None,
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
                    attempt: None,
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
    // Regression (CLI audit): a simulator's JSONL output is named as such, with the way in.
    std::fs::write(dir.path().join("actions.jsonl"), "").unwrap();
    let e = train(dir.path(), &opts()).unwrap_err();
    assert!(e.to_string().contains("faultline ingest"), "{e}");
    std::fs::remove_file(dir.path().join("actions.jsonl")).unwrap();
    std::fs::create_dir(dir.path().join("history")).unwrap();
    let e = train(dir.path(), &opts()).unwrap_err();
    assert!(matches!(e, TrainError::Empty { .. }), "{e}");
    assert!(!e.to_string().contains("above its commit point"), "{e}");
}

/// Regression (nightly-train audit): after an ingest killed before it committed, train said
/// only "no failures to train on" beside a hundred part files of the killed write. It says
/// what they are.
#[test]
fn an_empty_history_names_the_rows_of_an_interrupted_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_history(&data, 10);
    // As a write killed before its commit leaves it: the rows there, the commit point below.
    let manifest = data.join("history").join("_manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["flushed_seq"] = serde_json::json!(0);
    std::fs::write(&manifest, m.to_string()).unwrap();
    let e = train(&data, &opts()).unwrap_err();
    assert!(
        matches!(
            e,
            TrainError::Empty {
                above_commit: 10,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("10 failure row(s) lie in parts above its commit point"),
        "{e}"
    );
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
    // Found by an audit: any directory with a file named manifest.json was replaced whole.
    // A folder of the user's with one, a model that also holds a history, and a newer
    // faultline's model are refused and kept.
    let web = dir.path().join("webapp");
    std::fs::create_dir(&web).unwrap();
    std::fs::write(web.join(MANIFEST_FILE), r#"{"name":"webapp"}"#).unwrap();
    std::fs::write(web.join("notes.txt"), "keep").unwrap();
    let used = dir.path().join("used");
    model.save(&used).unwrap();
    std::fs::create_dir_all(used.join("history")).unwrap();
    let newer = dir.path().join("newer");
    model.save(&newer).unwrap();
    let m = newer.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(
        &m,
        text.replace("\"format_version\": 2", "\"format_version\": 99"),
    )
    .unwrap();
    for (target, why) in [
        (&web, "not a faultline model's manifest"),
        (&used, "also 1 that is not the model's (history)"),
        (&newer, "format 99, newer"),
    ] {
        let err = model.save(target).unwrap_err().to_string();
        assert!(
            err.contains(why) && err.contains("refusing to replace"),
            "{err}"
        );
    }
    assert!(web.join("notes.txt").is_file() && used.join("history").is_dir());
    assert!(std::fs::read_to_string(&m).unwrap().contains("99"));
    // An earlier model alone is still replaced.
    model.save(&fresh).unwrap();
}

/// Failures of a few tasks on a few workers, close in time, with history features (attempt,
/// worker gap and rate, the task's recent failures) that thinning the timeline would change;
/// given out of time order.
fn busy_rows(n: usize) -> Vec<FailureRow> {
    let mut rows: Vec<FailureRow> = (0..n)
        .map(|i| {
            let (_, class, kind) = message(i % 3, i);
            let ts = 1_700_000_000.0 + (i * 7 % n) as f64 * 11.0 + (i % 5) as f64;
            let mut r = row(
                &format!("t{}", i % 17),
                &format!("w{}", i % 4),
                class,
                kind,
                ts,
            );
            r.template_id = Some((i % 3) as u64);
            r.record.task.config.batch_size = Some(8 << (i % 3));
            r
        })
        .collect();
    rows.swap(0, n / 2);
    rows
}

/// Regression: with a history larger than `--sample`, the sampled rows were featurized among
/// themselves, so their history features came from a thinned timeline while online placement
/// sees every failure. Now the fitted rows' vectors are those rows' vectors in the
/// featurization of the whole history, and the scaler is fitted on them.
#[test]
fn sampled_rows_are_featurized_on_the_whole_timeline() {
    use crate::features::Scaler;
    let rows = busy_rows(240);
    let params = opts().cluster.features;
    let order = time_order(&rows);
    let sys = crate::cluster::Systematic::new(order.len(), 80);
    let picked: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(pos, _)| sys.keeps(*pos))
        .map(|(_, &i)| i)
        .collect();
    assert_eq!(picked.len(), 80);
    let sampled = sampled_features(&rows, &order, sys, &params).unwrap();
    // The whole history featurized at once (`extend` visits it in time order).
    let full = Featurizer::new(params.clone()).unwrap().extend(&rows);
    assert_eq!(sampled.schema, full.schema);
    assert_eq!(sampled.x, full.x.select(ndarray::Axis(0), &picked));
    // Featurized among themselves, the sampled rows' history features differ: the data
    // exercises what the fix is about.
    let thinned: Vec<FailureRow> = picked.iter().map(|&i| rows[i].clone()).collect();
    let alone = Featurizer::new(params.clone()).unwrap().extend(&thinned);
    assert_ne!(alone.x, sampled.x);
    // Step 1 is the plain featurization of every row.
    let all = sampled_features(
        &rows,
        &order,
        crate::cluster::Systematic::new(order.len(), order.len()),
        &params,
    )
    .unwrap();
    assert_eq!(all.x, full.x.select(ndarray::Axis(0), &order));

    // Training with a sample of a third fits the scaler on those vectors.
    let mut o = opts();
    o.sample = 80;
    let (model, metrics) = fit_clusters(&rows, &o, &o.cluster.clone().check().unwrap()).unwrap();
    let model = model.expect("clusters fitted");
    assert_eq!(metrics.fitted_rows, 80);
    assert_eq!(model.rows, 80);
    let want = Scaler::fit(&sampled, &model.params.weights).unwrap();
    assert_eq!(model.scaler, want);
    assert_ne!(
        model.scaler,
        Scaler::fit(&alone, &model.params.weights).unwrap()
    );
}

/// Copies the first part of `table` under `root` beside it, as an interrupted compaction
/// leaves a row in two parts.
fn duplicate_a_part(root: &Path, table: &str) {
    let dir = root.join("history").join(table);
    let date = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let part = std::fs::read_dir(&date)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .unwrap();
    std::fs::copy(&part, date.join("part-zz-copy.parquet")).unwrap();
}

fn manifest_seq(root: &Path) -> u64 {
    crate::store::flushed_seq(root).unwrap().unwrap()
}

fn set_flushed_seq(root: &Path, s: u64) {
    let p = root.join("history").join("_manifest.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    v["flushed_seq"] = s.into();
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// Outcomes in the success tables (coarse, and refined at each level).
fn counted(m: &Model) -> (f64, f64, f64) {
    let t = m.success_tables();
    let level = |l| -> f64 {
        t.refined
            .iter()
            .filter(|r| r.level == l)
            .flat_map(|r| &r.strategies)
            .map(|s| s.successes + s.failures)
            .sum()
    };
    (
        t.outcomes(),
        level(RefinedLevel::Fine),
        level(RefinedLevel::Finest),
    )
}

/// Regression: the success tables were read with scans that saw every part — a duplicated
/// part (an interrupted compaction) was counted twice, the parts of an interrupted flush
/// were counted, and an outcomes directory without a part (a live server before its first
/// flush of outcomes) failed training. They now count the committed history, as the rest of
/// training reads it.
#[test]
fn success_tables_count_the_committed_history_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_history(&data, 40);
    let clean = train(&data, &opts()).unwrap();
    assert_eq!(counted(&clean), (30.0, 30.0, 30.0));

    // An outcomes part and a failures part duplicated: each row counted once.
    duplicate_a_part(&data, "outcomes");
    duplicate_a_part(&data, "failures");
    let m = train(&data, &opts()).unwrap();
    assert_eq!(counted(&m), (30.0, 30.0, 30.0));
    assert_eq!(m.success_tables(), clean.success_tables());
    assert_eq!(m.manifest().data_range.outcomes, 30);

    // Parts of a flush whose manifest update never happened: not counted.
    let committed = manifest_seq(&data);
    let mut store = ParquetStore::open(&data, StoreOptions::default()).unwrap();
    let more: Vec<Entry> = (0..5)
        .map(|i| {
            Entry::Outcome(OutcomeRow {
                outcome: Outcome {
                    task_id: format!("t{i}"),
                    success: true,
                    strategy: Some(RecoveryStrategy::DelayedRetry),
                    time_to_recovery_s: None,
                    cost: None,
                    timestamp: None,
                    attempt: None,
                },
                timestamp: Timestamp::from_secs_f64(1_700_000_000.0 + 40.0 * 37.0 + f64::from(i)),
                hardware_class: Some(HardwareClass::Gpu),
                kind: Some(FailureKind::OomGpu),
            })
        })
        .collect();
    store.write_batch(more).unwrap();
    drop(store);
    assert_eq!(
        train(&data, &opts())
            .unwrap()
            .manifest()
            .metrics
            .success
            .outcomes,
        35.0
    );
    set_flushed_seq(&data, committed);
    let m = train(&data, &opts()).unwrap();
    assert_eq!(counted(&m), (30.0, 30.0, 30.0));
    assert_eq!(m.success_tables(), clean.success_tables());

    // An outcomes table without any part: no outcomes, not an error.
    let outcomes = data.join("history").join("outcomes");
    std::fs::remove_dir_all(&outcomes).unwrap();
    std::fs::create_dir(&outcomes).unwrap();
    let m = train(&data, &opts()).unwrap();
    assert_eq!(counted(&m), (0.0, 0.0, 0.0));
    assert_eq!(m.manifest().metrics.success.contexts, 0);
    assert_eq!(m.manifest().data_range.failures, 40);
}

/// The test below failed once under load: a model replaced twice during one load has the
/// manifest the load started with, and the load gave up. A load now also sees that the
/// directory itself was replaced, which every save does, even with the same model.
#[test]
fn every_save_puts_another_directory_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_history(&data, 24);
    let model = train(&data, &opts()).unwrap();
    let out = dir.path().join("models").join("m");
    model.save(&out).unwrap();
    let first = super::model::dir_identity(&out);
    model.save(&out).unwrap();
    let second = super::model::dir_identity(&out);
    if cfg!(unix) {
        assert!(first.is_some());
        assert_ne!(first, second);
    }
    assert_eq!(
        Model::load(&out).unwrap().manifest().name,
        model.manifest().name
    );
}

/// Regression: replacing a model moved the old one aside, then the new one in — a crash
/// between left no model, and a reader between found none. Now a reader loading the model
/// while it is replaced, again and again, always gets a whole model, the old or the new.
#[test]
fn a_model_replaced_while_it_is_read_is_always_whole() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    // Two models that differ in every artifact: a manifest of one with the artifacts of
    // the other would not load.
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    write_history(&data_a, 24);
    write_history(&data_b, 36);
    let mut a = opts();
    a.name = "a".into();
    let mut b = opts();
    b.name = "b".into();
    let (a, b) = (train(&data_a, &a).unwrap(), train(&data_b, &b).unwrap());
    for (x, y) in a.manifest().artifacts.iter().zip(&b.manifest().artifacts) {
        assert_ne!(x.blake3, y.blake3, "{}", x.file);
    }
    let out = dir.path().join("models").join("m");
    a.save(&out).unwrap();
    let stop = AtomicBool::new(false);
    let loads = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut loads = 0;
            while !stop.load(Ordering::Relaxed) {
                let m = Model::load(&out).unwrap_or_else(|e| panic!("load {loads}: {e}"));
                assert!(["a", "b"].contains(&m.manifest().name.as_str()));
                loads += 1;
            }
            loads
        });
        for i in 0..100 {
            if i % 2 == 0 { &b } else { &a }.save(&out).unwrap();
            // A reader retries a load a replacement interrupted a few times, not forever.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    });
    assert!(loads > 0);
    assert_eq!(Model::load(&out).unwrap().manifest().name, "a");
    let names: Vec<String> = std::fs::read_dir(dir.path().join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["m"], "no old or temporary directory left");
}

/// The exchange the replacement relies on swaps two directories in one step.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn directories_are_exchanged_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (dir.path().join("x"), dir.path().join("y"));
    for (d, f) in [(&x, "from-x"), (&y, "from-y")] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join(f), "").unwrap();
    }
    model::exchange(&x, &y).unwrap();
    assert!(x.join("from-y").is_file() && y.join("from-x").is_file());
    let e = model::exchange(&x, &dir.path().join("absent")).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
}

/// Regression: a model whose `clusters.json` numbers its clusters out of place loaded, and
/// the server then assigned by id — another cluster's radius, or a panic past the end. The
/// loader refuses it, naming the file and the cluster.
#[test]
fn a_model_with_cluster_ids_out_of_place_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_history(&data, 80);
    let model = train(&data, &opts()).unwrap();
    assert!(model.clusters().is_some_and(|c| c.clusters.len() >= 2));
    let out = dir.path().join("m");
    model.save(&out).unwrap();
    // clusters.json with the first cluster's id made 1, its hash updated in the manifest.
    let f = out.join(CLUSTERS_FILE);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
    v["clusters"][0]["id"] = 1.into();
    let bytes = serde_json::to_vec_pretty(&v).unwrap();
    std::fs::write(&f, &bytes).unwrap();
    edit_manifest(&out, |m| {
        for a in m["artifacts"].as_array_mut().unwrap() {
            if a["file"] == CLUSTERS_FILE {
                a["blake3"] = blake3::hash(&bytes).to_hex().to_string().into();
                a["bytes"] = bytes.len().into();
            }
        }
    });
    let e = Model::load(&out).unwrap_err();
    assert!(matches!(e, TrainError::Artifact { .. }), "{e}");
    let e = e.to_string();
    assert!(e.contains(CLUSTERS_FILE), "{e}");
    assert!(e.contains("cluster c1 is at position 0"), "{e}");
}
