//! `faultline train` and the model directory: training on a durable history written by the
//! engine, loading, annotation, the ranker's counts, corrupt and newer models, the CLI, and
//! the golden model of every format version.

use std::collections::HashMap;
use std::path::Path;

use faultline::config::{EngineConfig, RankingParams};
use faultline::engine::Engine;
use faultline::rules::RuleSet;
use faultline::store::StoreOptions;
use faultline::train::{train, Model, TrainError, TrainOptions, CLUSTERS_FILE, MANIFEST_FILE};
use faultline::{
    FailureKind, FailureRecord, FailureReport, HardwareClass, Outcome, RecoveryStrategy, Timestamp,
};

use crate::util::{repo, stderr, stdout, Dir};

type Context = (HardwareClass, FailureKind, RecoveryStrategy);

fn record(task: &str, worker: &str, class: &str, message: &str, second: usize) -> FailureRecord {
    let line = serde_json::json!({
        "task_id": task, "worker_id": worker, "hardware": {"class": class},
        "error": {"message": message},
        "timestamp": format!("2026-11-01T10:{:02}:{:02}Z", second / 60, second % 60),
        "task": {"config": {"batch_size": 16, "precision": "fp16"}},
    });
    serde_json::from_value::<FailureReport>(line)
        .unwrap()
        .check(Timestamp::from_micros(0))
        .unwrap()
}

/// Writes `n` failures of three families through the engine (with an outcome each) into a
/// data directory; returns the successes and failures per (class, kind, strategy).
fn engine_history(root: &Path, n: usize) -> HashMap<Context, (f64, f64)> {
    let (mut e, _) = Engine::open(
        root,
        EngineConfig::default(),
        RuleSet::defaults(),
        StoreOptions::default(),
    )
    .unwrap();
    let mut truth: HashMap<Context, (f64, f64)> = HashMap::new();
    for i in 0..n {
        let (class, message) = match i % 3 {
            0 => (
                "GPU",
                format!("CUDA out of memory. Tried to allocate {}.00 GiB", i % 5 + 1),
            ),
            1 => (
                "TPU",
                format!(
                    "NCCL watchdog timeout after {} ms on rank {}",
                    1000 + i,
                    i % 4
                ),
            ),
            _ => (
                "CPU",
                format!("OSError: [Errno 28] No space left on device: '/data/{i}.bin'"),
            ),
        };
        let r = record(&format!("t{i}"), &format!("w{}", i % 4), class, &message, i);
        let action = e.try_handle_failure(&r).unwrap();
        let success = i % 4 != 0;
        e.record_outcome(&Outcome {
            task_id: format!("t{i}"),
            success,
            strategy: None,
            time_to_recovery_s: None,
            cost: Some(1.0),
            timestamp: None,
            attempt: None,
        })
        .unwrap();
        let c = truth
            .entry((r.hardware.class, action.kind, action.strategy))
            .or_default();
        if success {
            c.0 += 1.0;
        } else {
            c.1 += 1.0;
        }
    }
    e.flush().unwrap();
    truth
}

fn options() -> TrainOptions {
    let mut o = TrainOptions::new("it", Timestamp::from_micros(0));
    o.cluster.kmeans.k_max = 4; // debug builds of linfa are slow
    o
}

#[test]
fn train_on_an_engine_history_then_load_annotate_and_rank() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let truth = engine_history(&data, 45);
    let model = train(&data, &options()).unwrap();
    let out = dir.path().join("models").join("it");
    model.save(&out).unwrap();
    let model = Model::load(&out).unwrap();
    let m = model.manifest();
    assert_eq!((m.name.as_str(), m.format_version), ("it", 2));
    assert_eq!(m.data_range.failures, 45);
    assert_eq!(m.data_range.outcomes, 45);
    assert_eq!(m.metrics.templates.templates, 3);
    assert_eq!(m.metrics.classifier.entries, 3);
    assert_eq!(m.metrics.classifier.accuracy, 1.0);
    assert!(m.metrics.clusters.clusters >= 2);

    // The ranker's counts are the history's outcomes, context by context.
    let ranker = model.ranker(RankingParams::default()).unwrap();
    let mut total = 0.0;
    for ((class, kind, strategy), (ok, bad)) in &truth {
        let c = ranker.counts(*class, *kind);
        let k = strategy.index();
        assert_eq!(
            (c.success[k], c.failure[k]),
            (*ok, *bad),
            "{class} {kind} {strategy}"
        );
        total += ok + bad;
    }
    assert_eq!(total, 45.0);
    assert_eq!(m.metrics.success.outcomes, 45.0);

    // Annotation matches without learning.
    let r = record(
        "tz",
        "w9",
        "GPU",
        "CUDA out of memory. Tried to allocate 7.00 GiB",
        0,
    );
    let a = model.annotate(&r, FailureKind::OomGpu);
    assert_eq!(
        a.template.as_deref(),
        Some("CUDA out of memory. Tried to allocate <*>")
    );
    assert_eq!(a.learned_kind, Some(FailureKind::OomGpu));
    assert!(
        a.cluster.is_some(),
        "an OOM like the history's joins a cluster"
    );
    let again = model.annotate(&r, FailureKind::OomGpu);
    assert_eq!(a, again, "annotation does not learn");
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["learned_kind"], "oom_gpu");
    let r = record(
        "tz",
        "w9",
        "GPU",
        "the flux capacitor is out of jiggawatts",
        0,
    );
    let a = model.annotate(&r, FailureKind::Unknown);
    assert_eq!((a.template_id, a.learned_kind), (None, None));
}

#[test]
fn corrupt_and_newer_models_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    copy_dir(&repo().join("tests/golden/model_v1"), &out);
    assert!(Model::load(&out).is_ok());

    let f = out.join(CLUSTERS_FILE);
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replacen("\"radius\": ", "\"radius\": 1", 1)).unwrap();
    let e = Model::load(&out).unwrap_err();
    assert!(matches!(e, TrainError::Hash { .. }), "{e}");
    assert!(e.to_string().contains("clusters.json"), "{e}");
    std::fs::write(&f, text).unwrap();

    let p = out.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text.replacen("\"format_version\": 1", "\"format_version\": 7", 1),
    )
    .unwrap();
    let e = Model::load(&out).unwrap_err().to_string();
    assert!(e.contains("manifest.json"), "{e}");
    assert!(e.contains("format_version 7 is newer"), "{e}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The committed format-1 model (trained by `faultline train` on the first 200 failures of
/// `data/sample`) still loads, with these exact values.
#[test]
fn golden_model_v1_loads() {
    let model = Model::load(&repo().join("tests/golden/model_v1")).unwrap();
    let m = model.manifest();
    assert_eq!(m.format_version, 1);
    assert_eq!(m.name, "golden-v1");
    assert_eq!(m.feature_schema.version, 1);
    assert_eq!(m.feature_schema.names.len(), 45);
    assert_eq!(m.data_range.failures, 200);
    assert_eq!(m.data_range.outcomes, 200);
    assert_eq!(
        m.data_range.first.unwrap().to_string(),
        "2026-11-01T00:00:42.717106Z"
    );
    assert_eq!(m.metrics.templates.templates, 28);
    assert_eq!(m.metrics.classifier.entries, 21);
    assert_eq!(
        (
            m.metrics.classifier.holdout_rows,
            m.metrics.classifier.agree
        ),
        (40, 36)
    );
    assert_eq!(m.metrics.clusters.clusters, 29);
    assert_eq!(m.metrics.success.contexts, 16);
    assert_eq!(m.artifacts.len(), 4);

    // A failure like the sample's (A100 40 GiB, batch 8, bf16) on a new task and worker.
    let r: FailureRecord = serde_json::from_str::<FailureReport>(
        r#"{"task_id":"g1","worker_id":"gpu-0999","hardware":{"class":"GPU","memory_gib":40.0},
            "error":{"message":"RuntimeError: CUDA out of memory. Tried to allocate 1.00 GiB (GPU 0; 39.40 GiB total capacity; 1.00 MiB free)"},
            "timestamp":"2026-11-01T00:24:00Z","task":{"config":{"batch_size":8,"precision":"bf16"}}}"#,
    )
    .unwrap()
    .check(Timestamp::from_micros(0))
    .unwrap();
    let a = model.annotate(&r, FailureKind::OomGpu);
    assert_eq!(a.template_id.as_deref(), Some("6"));
    assert_eq!(
        a.template.as_deref(),
        Some("RuntimeError: CUDA out of memory. Tried to allocate <*> (GPU <*>; <*> total capacity; <*> free)")
    );
    assert_eq!(a.learned_kind, Some(FailureKind::OomGpu));
    assert_eq!(a.cluster, GOLDEN_CLUSTER);
    let mut far = r.clone();
    far.timestamp = Timestamp::parse("2026-11-01T04:24:00Z").unwrap();
    assert_eq!(
        model.annotate(&far, FailureKind::OomGpu).cluster,
        None,
        "four hours later it lies outside the nearest cluster's radius"
    );

    let ranker = model.ranker(RankingParams::default()).unwrap();
    let c = ranker.counts(HardwareClass::Cpu, FailureKind::OomHost);
    let k = RecoveryStrategy::ReducedBatchSize.index();
    assert_eq!((c.success[k], c.failure[k]), (5.0, 5.0));
    assert_eq!(c.mean_cost(k), 60.0);
}

/// The cluster of the golden annotation above.
const GOLDEN_CLUSTER: Option<i64> = Some(26);

#[test]
fn cli_trains_a_model_directory() {
    let d = Dir::new();
    let data = d.path("data");
    engine_history(&data, 30);
    let o = d.run(
        &[
            "train",
            "--data",
            "data",
            "--out",
            "models/cli",
            "--json",
            "--quiet",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["path"], "models/cli");
    assert_eq!(v["manifest"]["name"], "cli");
    assert_eq!(v["manifest"]["data_range"]["failures"], 30);
    assert_eq!(v["manifest"]["metrics"]["success"]["outcomes"], 30.0);
    let model = Model::load(&d.path("models/cli")).unwrap();
    assert_eq!(model.manifest().metrics.classifier.entries, 3);

    let o = d.run(&["train", "--data", "data", "--out", "models/second"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("30 failures") && s.contains("models/second"),
        "{s}"
    );

    let o = d.run(&["train", "--data", "nowhere", "--out", "models/x"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("nowhere: no such directory"),
        "{}",
        stderr(&o)
    );
    assert!(!d.path("models/x").exists());

    // Records still in the write-ahead log are not read: said, with what flushes them (an
    // audit found them left out without a word).
    {
        use faultline::store::{Entry, HistoryStore, ParquetStore};
        let mut store = ParquetStore::open(&data, StoreOptions::default()).unwrap();
        let some: Vec<Entry> = store
            .entries()
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| matches!(e, Entry::Failure(_)))
            .take(3)
            .collect();
        store.log(some).unwrap().wait().unwrap();
    }
    let o = d.run(&["train", "--data", "data", "--out", "models/third"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("holds 3 record(s) in its write-ahead log") && e.contains("compact --data"),
        "{e}"
    );
    assert!(stdout(&o).contains("30 failures"), "{}", stdout(&o));
    // `analyze --data`, and a data directory given as an input, say the same (an audit:
    // they said "0 failures" for a history all in its log, without a word).
    for args in [
        &["analyze", "--data", "data", "--out", "rep1"][..],
        &["analyze", "data", "--out", "rep2"][..],
    ] {
        let o = d.run(args, "");
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("holds 3 record(s) in its write-ahead log that this analysis does not read")
                && e.contains("compact --data data"),
            "{args:?}: {e}"
        );
    }
}

/// The shipped model loads and is the sample's.
#[test]
fn shipped_default_model_loads() {
    let model = Model::load(&repo().join("models/default")).unwrap();
    let m = model.manifest();
    assert_eq!((m.name.as_str(), m.format_version), ("default", 2));
    assert_eq!(m.data_range.failures, 5005);
    assert_eq!(m.data_range.outcomes, 4722);
    assert!(model.clusters().is_some());
    assert_eq!(m.metrics.success.outcomes, 4722.0);
    assert!(!model.success_tables().refined.is_empty());
}

/// The refined success tables key their contexts as the engine's ranking does: on a history
/// the engine wrote with its learned ranking on (no discounting, so its counts are the raw
/// outcomes), every fine and finest context of the model holds exactly the outcomes the
/// engine's ranker learned there — first failures and repeats, several rules per class, a
/// TPU out-of-memory ranked as an out-of-memory.
#[test]
fn refined_tables_key_contexts_as_the_engine_ranks_them() {
    use faultline::train::RefinedLevel;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = EngineConfig::default();
    config.ranking.enabled = true;
    config.ranking.discount = 1.0;
    config.ranking.discount_own = 1.0;
    let (mut e, _) =
        Engine::open(&data, config, RuleSet::defaults(), StoreOptions::default()).unwrap();
    let messages = [
        ("GPU", "CUDA out of memory. Tried to allocate 2.00 GiB"),
        (
            "GPU",
            "CUDA error: an illegal memory access was encountered",
        ),
        ("GPU", "NCCL watchdog timeout after 1800000 ms on rank 3"),
        (
            "TPU",
            "RESOURCE_EXHAUSTED: Ran out of memory in memory space hbm. Used 9.13G of 31.75G hbm.",
        ),
        (
            "CPU",
            "OSError: [Errno 28] No space left on device: '/data/x.bin'",
        ),
    ];
    let mut second = 0;
    for t in 0..60 {
        let (class, message) = messages[t % messages.len()];
        // Tasks fail once, twice or three times: repeats have fine contexts of their own.
        for k in 0..=(t % 3) {
            second += 1;
            let r = record(
                &format!("t{t}"),
                &format!("w{}", (t + k) % 40),
                class,
                message,
                second,
            );
            e.try_handle_failure(&r).unwrap();
            e.record_outcome(&Outcome {
                task_id: format!("t{t}"),
                success: k == t % 3 && t % 5 != 0,
                strategy: None,
                time_to_recovery_s: None,
                cost: Some(1.0),
                timestamp: None,
                attempt: None,
            })
            .unwrap();
        }
    }
    e.flush().unwrap();
    let model = train(
        &data,
        &TrainOptions::new("refined", Timestamp::from_micros(0)),
    )
    .unwrap();
    let refined = &model.success_tables().refined;
    let fine = refined
        .iter()
        .filter(|r| r.level == RefinedLevel::Fine)
        .count();
    assert!(fine >= 8, "{fine} fine contexts");
    assert!(refined
        .iter()
        .any(|r| (r.hardware_class, r.kind) == (HardwareClass::Tpu, FailureKind::OomGpu)));
    let mut outcomes = 0.0;
    for r in refined {
        let mine = r.counts();
        let engine = e
            .ranker()
            .fine_counts(r.hardware_class, r.kind, r.key)
            .unwrap_or_else(|| panic!("the engine has no context {r:?}"));
        assert_eq!(
            (mine.success, mine.failure),
            (engine.success, engine.failure),
            "{r:?}"
        );
        outcomes += mine.total();
    }
    // Every outcome at both levels.
    assert_eq!(outcomes, 2.0 * 120.0);
}

/// The committed format-2 model (trained by `faultline train --name golden-v2` on a
/// 300-failure rules history of test-farm, `simulate --seed 7 --format parquet`) loads, with
/// its refined tables: an NPU out-of-memory (logged as an NPU error) is an `oom_gpu` context
/// there, and seeding a ranker fills that context with its fine contexts' sum.
#[test]
fn golden_model_v2_loads_with_refined_tables() {
    use faultline::ranking::Ranker;
    use faultline::train::RefinedLevel;
    let model = Model::load(&repo().join("tests/golden/model_v2")).unwrap();
    let m = model.manifest();
    assert_eq!((m.format_version, m.name.as_str()), (2, "golden-v2"));
    assert_eq!((m.data_range.failures, m.data_range.outcomes), (302, 289));
    assert_eq!(m.metrics.templates.templates, 32);
    assert_eq!(m.metrics.success.contexts, 18);
    let t = model.success_tables();
    let fine = t
        .refined
        .iter()
        .filter(|r| r.level == RefinedLevel::Fine)
        .count();
    assert_eq!((fine, t.refined.len() - fine), (36, 47));
    assert!(t
        .contexts
        .iter()
        .all(|c| (c.hardware_class, c.kind) != (HardwareClass::Npu, FailureKind::OomGpu)));

    let mut r = Ranker::new(RankingParams::default()).unwrap();
    // The 18 per-kind contexts, and the TPU's and the NPU's out-of-memory.
    assert_eq!(model.seed_ranker(&mut r), 20);
    assert!(r.counts(HardwareClass::Tpu, FailureKind::OomGpu).total() > 0.0);
    let c = r.counts(HardwareClass::Npu, FailureKind::OomGpu);
    let cell = |s: RecoveryStrategy| (c.success[s.index()], c.failure[s.index()]);
    assert_eq!(cell(RecoveryStrategy::ReducedBatchSize), (12.0, 6.0));
    assert_eq!(cell(RecoveryStrategy::DifferentWorker), (5.0, 2.0));
    assert_eq!(cell(RecoveryStrategy::DelayedRetry), (0.0, 3.0));
}

/// Every `*.parquet` part under `dir`, recursively.
fn parquet_parts(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(parquet_parts(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Regression: `train` beside a live server before its first flush of outcomes (an outcomes
/// directory without a part) failed with polars' "expanded paths were empty", and a part left
/// twice by an interrupted compaction was counted twice. Training again over the model
/// replaces it.
#[test]
fn cli_trains_on_the_committed_history_and_replaces_its_model() {
    let d = Dir::new();
    let data = d.path("data");
    engine_history(&data, 30);
    let train_json = |d: &Dir| {
        let o = d.run(
            &[
                "train", "--data", "data", "--out", "models/m", "--json", "--quiet",
            ],
            "",
        );
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    // A duplicated part of each table: every row counted once.
    for table in ["failures", "outcomes"] {
        let part = parquet_parts(&data.join("history").join(table))[0].clone();
        std::fs::copy(&part, part.with_file_name("part-zz-copy.parquet")).unwrap();
    }
    let v = train_json(&d);
    assert_eq!(v["manifest"]["data_range"]["failures"], 30);
    assert_eq!(v["manifest"]["metrics"]["success"]["outcomes"], 30.0);
    // No outcome part yet: no outcomes, and the model of the same name is replaced.
    for part in parquet_parts(&data.join("history").join("outcomes")) {
        std::fs::remove_file(part).unwrap();
    }
    let v = train_json(&d);
    assert_eq!(v["manifest"]["metrics"]["success"]["outcomes"], 0.0);
    assert_eq!(v["manifest"]["data_range"]["outcomes"], 0);
    let model = Model::load(&d.path("models/m")).unwrap();
    assert_eq!(model.manifest().metrics.success.outcomes, 0.0);
    let names: Vec<String> = std::fs::read_dir(d.path("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["m"], "no old or temporary directory left");
}

/// Rewrites every Parquet part under `dir` without the column `name`, keeping the store's
/// key-value metadata (schema version, table, flush).
fn drop_column(dir: &Path, name: &str) -> usize {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            n += drop_column(&p, name);
            continue;
        }
        if p.extension().is_none_or(|x| x != "parquet") {
            continue;
        }
        let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap()).unwrap();
        let kv: Vec<parquet::file::metadata::KeyValue> = b
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|k| k.key != "ARROW:schema")
            .collect();
        let keep = b.schema().index_of(name).unwrap();
        let batches: Vec<arrow_array::RecordBatch> = b
            .build()
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                let cols: Vec<usize> = (0..r.num_columns()).filter(|i| *i != keep).collect();
                r.project(&cols).unwrap()
            })
            .collect();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_key_value_metadata(Some(kv))
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&p).unwrap(),
            batches[0].schema(),
            Some(props),
        )
        .unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        w.close().unwrap();
        n += 1;
    }
    n
}

/// Regression (audit): with the `success` column gone from the outcome parts, `train`
/// printed polars' resolved query plan ("---> FAILED HERE RESOLVING 'select' <---") and named
/// no file; now the error names the part and the column.
#[test]
fn a_part_without_a_column_is_named_with_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    engine_history(&data, 12);
    assert!(drop_column(&data.join("history").join("outcomes"), "success") > 0);
    let e = train(&data, &options()).unwrap_err().to_string();
    assert!(e.contains("no success column"), "{e}");
    assert!(
        e.contains("history/outcomes/") && e.contains(".parquet:"),
        "{e}"
    );
    assert!(
        !e.contains("Resolved plan") && !e.contains("FAILED HERE"),
        "{e}"
    );
}

/// Regression (audit): a history without outcomes gave `"outcomes": -0.0` (an empty sum of
/// floats) and a success rate of 0 in the model's metrics; now 0 and no rate (null).
#[test]
fn a_history_without_outcomes_has_no_success_rate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut e, _) = Engine::open(
        &data,
        EngineConfig::default(),
        RuleSet::defaults(),
        StoreOptions::default(),
    )
    .unwrap();
    for i in 0..6 {
        e.try_handle_failure(&record(
            &format!("t{i}"),
            "w1",
            "GPU",
            "CUDA out of memory",
            i,
        ))
        .unwrap();
    }
    e.flush().unwrap();
    drop(e);
    let model = train(&data, &options()).unwrap();
    let s = &model.manifest().metrics.success;
    assert_eq!(s.success_rate, None);
    let json = serde_json::to_value(s).unwrap();
    assert_eq!(json["outcomes"].to_string(), "0.0");
    assert!(json["success_rate"].is_null(), "{json}");
}

/// Regressions (nightly-train audit): a history without outcomes replaced a useful model with
/// one whose success tables were empty, without a word; a models directory that could not be
/// written failed only after the whole training; temporaries of killed saves stayed forever.
#[test]
fn a_nightly_train_fails_early_and_keeps_the_model_it_would_not_improve() {
    let d = Dir::new();
    engine_history(&d.path("data"), 30);
    let o = d.run(&["train", "--data", "data", "--out", "models/m", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(d.path("models/m/manifest.json")).unwrap();
    // A history of failures alone.
    {
        let (mut e, _) = Engine::open(
            &d.path("bare"),
            EngineConfig::default(),
            RuleSet::defaults(),
            StoreOptions::default(),
        )
        .unwrap();
        for i in 0..30 {
            let r = record(&format!("t{i}"), "w1", "GPU", "CUDA out of memory", i);
            e.try_handle_failure(&r).unwrap();
        }
        e.flush().unwrap();
    }
    let o = d.run(
        &[
            "train",
            "--data",
            "bare",
            "--out",
            "models/m",
            "--min-outcomes",
            "10",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("0 outcome(s), fewer than the 10 required")
            && stderr(&o).contains("nothing was trained or written"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(d.path("models/m/manifest.json")).unwrap(),
        before
    );
    // Without --min-outcomes it is written, with a warning — with --quiet too, as a nightly
    // job runs it (an audit: `-q` hid the warning).
    for quiet in [&[][..], &["-q"][..], &["-q", "--json"][..]] {
        let mut args = vec!["train", "--data", "bare", "--out", "models/bare"];
        args.extend_from_slice(quiet);
        let o = d.run(&args, "");
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("holds no outcomes"),
            "{quiet:?}: {}",
            stderr(&o)
        );
    }
    // A place no directory can be made in (even by root: /proc): refused by the probe
    // before training, not by the save after it.
    if Path::new("/proc/self").exists() {
        let o = d.run(
            &[
                "train",
                "--data",
                "data",
                "--out",
                "/proc/faultline-m",
                "-q",
            ],
            "",
        );
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("faultline-probe"), "{}", stderr(&o));
    }
    // A killed save's temporary of a process long gone (and changed over an hour ago) is
    // removed; a live process's is not, nor a recent one (another host's save, maybe).
    let stale = d.path("models/.m.tmp-4000000000");
    let recent = d.path("models/.m.tmp-4000000001");
    let live = d.path(&format!("models/.m.tmp-{}", std::process::id()));
    for dir in [&stale, &recent, &live] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::open(&stale)
        .unwrap()
        .set_modified(hours_ago)
        .unwrap();
    let o = d.run(
        &[
            "train", "--data", "data", "--out", "models/m", "-q", "--json",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stale.exists() || !Path::new("/proc/self").exists());
    assert!(live.exists() && recent.exists());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["unflushed_records"], 0, "{v}");
}
