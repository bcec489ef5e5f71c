//! Unit tests of the API's pieces; the endpoints are tested through the router in
//! `tests/api.rs`.

use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;

use super::handlers::{
    bearer_credentials, constant_time_eq, is_array, jsonify, needs_token, parse, static_route,
};
use super::ApiError;
use crate::engine::EngineError;
use crate::FailureReport;

#[test]
fn only_write_and_admin_endpoints_need_the_token() {
    assert!(needs_token("/v1/failures", &Method::POST));
    assert!(needs_token("/v1/outcomes", &Method::POST));
    assert!(needs_token("/v1/tasks/{id}/state", &Method::PUT));
    assert!(needs_token("/v1/tasks/{id}/checkpoints", &Method::POST));
    assert!(needs_token("/v1/admin/reload", &Method::POST));
    assert!(!needs_token("/v1/tasks/{id}/state", &Method::GET));
    assert!(!needs_token("/v1/stats", &Method::GET));
    assert!(!needs_token("/metrics", &Method::GET));
    // A wrong method is answered 405, not 401.
    assert!(!needs_token("/v1/stats", &Method::DELETE));
}

#[test]
fn token_comparison_is_exact() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
    assert!(!constant_time_eq(b"", b"a"));
}

/// Regression: the scheme of `Authorization: Bearer TOKEN` was matched case-sensitively;
/// RFC 7235 makes it case-insensitive.
#[test]
fn regression_bearer_scheme_is_case_insensitive() {
    for v in ["Bearer tok", "bearer tok", "BEARER tok", "bEaReR tok"] {
        assert_eq!(bearer_credentials(v), Some("tok"), "{v}");
    }
    for v in [
        "Basic tok",
        "Bearertok",
        "Bearer",
        "tok",
        "",
        "Bearer-x tok",
    ] {
        assert_eq!(bearer_credentials(v), None, "{v}");
    }
}

#[test]
fn a_batch_is_a_json_array() {
    assert!(is_array(b"  \n[{}]"));
    assert!(!is_array(b"{\"a\":[1]}"));
    assert!(!is_array(b""));
}

#[test]
fn routes_are_labelled_only_by_registered_patterns() {
    assert_eq!(static_route("/v1/failures"), "/v1/failures");
    assert_eq!(static_route("/v1/tasks/{id}/state"), "/v1/tasks/{id}/state");
    assert_eq!(static_route("/v1/anything"), "other");
}

#[test]
fn parse_errors_name_the_field() {
    let e = parse::<FailureReport>(br#"{"task_id":"t","worker_id":"w","error":{"message":1}}"#)
        .unwrap_err();
    match &e {
        ApiError::BadBody { field, message } => {
            assert_eq!(field.as_deref(), Some("error.message"));
            assert!(message.contains("expected a string"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    // Trailing garbage after a valid document is an error too.
    let e = parse::<serde_json::Value>(b"{} x").unwrap_err();
    assert!(
        matches!(&e, ApiError::BadBody { field: Some(f), .. } if f == "body"),
        "{e:?}"
    );
}

/// Regression: a missing required field was reported at the object lacking it (`error` for a
/// missing `error.message`, nothing at all at the top level, `[1]` in a batch).
#[test]
fn regression_a_missing_field_is_named_in_field() {
    let cases: [(&[u8], &str); 4] = [
        (br#"{"task_id":"t1","worker_id":"w1"}"#, "error"),
        (
            br#"{"task_id":"t1","worker_id":"w1","error":{}}"#,
            "error.message",
        ),
        (
            br#"[{"task_id":"t1","worker_id":"w1","error":{"message":"x"}},{"task_id":"t1","worker_id":"w1"}]"#,
            "[1].error",
        ),
        (
            br#"[{"task_id":"t1","worker_id":"w1","error":{"message":"x"}},{"task_id":"t1","worker_id":"w1","error":{"type":"x"}}]"#,
            "[1].error.message",
        ),
    ];
    for (body, want) in cases {
        let e = if body.starts_with(b"[") {
            parse::<Vec<FailureReport>>(body).map(|_| ()).unwrap_err()
        } else {
            parse::<FailureReport>(body).map(|_| ()).unwrap_err()
        };
        match &e {
            ApiError::BadBody { field, message } => {
                assert_eq!(field.as_deref(), Some(want), "{message}");
                assert!(message.starts_with("missing field"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    // Other errors keep the path they had.
    let e = parse::<crate::Outcome>(br#"{"task_id":"t1"}"#).unwrap_err();
    assert!(
        matches!(&e, ApiError::BadBody { field: Some(f), .. } if f == "success"),
        "{e:?}"
    );
}

#[test]
fn every_error_has_its_status_and_code() {
    let cases: Vec<(ApiError, u16, &str)> = vec![
        (ApiError::TooLarge { limit: 10 }, 413, "body_too_large"),
        (ApiError::Unauthorized("no"), 401, "unauthorized"),
        (ApiError::NotFound("x".into()), 404, "not_found"),
        (ApiError::MethodNotAllowed, 405, "method_not_allowed"),
        (
            ApiError::Timeout(std::time::Duration::from_secs(1)),
            503,
            "timeout",
        ),
        (
            ApiError::Engine(EngineError::UnknownTask("t".into())),
            404,
            "unknown_task",
        ),
        (
            ApiError::UnknownTask {
                field: "[1].task_id".into(),
                task: "t".into(),
            },
            404,
            "unknown_task",
        ),
        (ApiError::Internal("x".into()), 500, "internal"),
        (
            ApiError::CheckpointDamaged {
                task: "t".into(),
                skipped: 2,
            },
            409,
            "checkpoint_damaged",
        ),
    ];
    for (e, status, code) in cases {
        assert_eq!(e.status().as_u16(), status, "{e}");
        assert_eq!(e.code(), code);
        let r = e.into_response();
        assert_eq!(r.headers()["content-type"], "application/json");
    }
}

#[test]
fn plain_error_responses_become_json() {
    let r = (StatusCode::NOT_FOUND, "nope").into_response();
    let r = jsonify(r, 5);
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = jsonify((StatusCode::PAYLOAD_TOO_LARGE, "big").into_response(), 5);
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Successes pass untouched.
    let r = jsonify((StatusCode::OK, "fine").into_response(), 5);
    assert!(r
        .headers()
        .get("content-type")
        .is_some_and(|v| v != "application/json"));
}

#[test]
fn model_errors_keep_their_field() {
    let e: ApiError = crate::model::ModelError::Invalid {
        field: "task_id",
        detail: "bad".into(),
    }
    .into();
    assert!(matches!(&e, ApiError::Invalid { field, .. } if field == "task_id"));
}

/// Whether a JSON value fits a schema's `type` (or one of its `oneOf` alternatives).
fn fits(v: &serde_json::Value, schema: &serde_json::Value) -> bool {
    if let Some(alts) = schema.get("oneOf").and_then(|a| a.as_array()) {
        return alts.iter().any(|a| fits(v, a));
    }
    match schema.get("type").and_then(|t| t.as_str()) {
        Some("string") => v.is_string(),
        Some("number") => v.is_number(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("boolean") => v.is_boolean(),
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        _ => false,
    }
}

/// Every field of `record` (recursively) that `schema` does not list with a fitting type.
/// Keys an object schema does not list are accepted only with `additionalProperties: true`.
fn unlisted(record: &serde_json::Value, schema: &serde_json::Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    let serde_json::Value::Object(fields) = record else {
        return out;
    };
    let open = schema["additionalProperties"] == true;
    for (k, v) in fields {
        let path = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        let Some(s) = schema.get("properties").and_then(|p| p.get(k)) else {
            if !open {
                out.push(format!("{path}: not in the schema"));
            }
            continue;
        };
        if !fits(v, s) {
            out.push(format!("{path}: {v} does not fit {s}"));
        }
        match v {
            serde_json::Value::Object(_) => out.extend(unlisted(v, s, &path)),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !fits(item, &s["items"]) {
                        out.push(format!("{path}[{i}]: {item} does not fit {}", s["items"]));
                    }
                    out.extend(unlisted(item, &s["items"], &format!("{path}[{i}]")));
                }
            }
            _ => {}
        }
    }
    out
}

/// Regression: openapi.json declared `FailureRecord` closed (`additionalProperties: false`)
/// yet omitted fields the server accepts (`ts`, `attempt`, `seq`, `t_offset_s`,
/// `task_is_new`, `template`, `ml_feedback`, `error.error_type`, `error.stack_trace`) and
/// typed `platform` as an object. Every field of a full record must be in the schema with its
/// type: a record built from the struct with every field set (a new field breaks this struct
/// literal, so the schema cannot silently fall behind), a record with the aliases, and the
/// bench stream's records when present.
#[test]
fn regression_openapi_failure_record_lists_every_accepted_field() {
    use crate::model::{
        BrowserInfo, EmbeddedOutcome, ErrorInfo, HardwareClass, HardwareProfile,
        HardwareRequirements, Precision, RecoveryStrategy, TaskConfig, TaskSpec,
    };
    use crate::Timestamp;

    let doc = super::openapi::document();
    let schema = &doc["components"]["schemas"]["FailureRecord"];
    assert_eq!(schema["additionalProperties"], false);
    let full = FailureReport {
        task_id: "t1".into(),
        worker_id: "w1".into(),
        hardware: Some(HardwareProfile {
            class: HardwareClass::Webgpu,
            vendor: Some("NVIDIA".into()),
            model: Some("A100".into()),
            memory_gib: Some(40.0),
            compute_units: Some(108),
            browser: Some(BrowserInfo {
                name: "chrome".into(),
                version: Some("131".into()),
            }),
        }),
        platform: Some(HardwareClass::Gpu),
        error: ErrorInfo {
            message: "CUDA out of memory".into(),
            type_hint: Some("cuda_error".into()),
            stacktrace: Some("Traceback".into()),
            exit_code: Some(137),
        },
        timestamp: Some(Timestamp::from_micros(1_700_000_000_000_000)),
        task: Some(TaskSpec {
            task_id: Some("t1".into()),
            model: Some("llama-3-8b".into()),
            platform: Some(HardwareClass::Gpu),
            config: TaskConfig {
                model: Some("llama-3-8b".into()),
                batch_size: Some(32),
                batch_sizes: Some(vec![8, 16]),
                precision: Some(Precision::Fp16),
                fallback_models: Some(vec!["llama-3-1b".into()]),
                checkpointing: Some(true),
                extra: [("lr".to_string(), serde_json::json!(0.001))].into(),
            },
            requirements: HardwareRequirements {
                hardware: vec!["cuda".into()],
                browser: Some("chrome".into()),
                min_memory_gib: Some(40.0),
            },
            retry_count: Some(0),
        }),
        attempt: Some(1),
        seq: Some(7),
        t_offset_s: Some(0.5),
        task_is_new: Some(true),
        template: Some("oom".into()),
        ml_feedback: Some(EmbeddedOutcome {
            strategy: RecoveryStrategy::ReducedBatchSize,
            success: true,
        }),
    };
    let full = serde_json::to_value(&full).unwrap();
    // The aliases, and a timestamp as epoch seconds.
    let aliases = serde_json::json!({
        "task_id": "t1", "worker_id": "w1", "ts": 1_700_000_000,
        "error": {"message": "x", "error_type": "cuda_error", "stack_trace": "Traceback"}
    });
    let mut records = vec![
        ("struct".to_string(), full),
        ("aliases".to_string(), aliases),
    ];
    let stream = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/bench/stream_10k.jsonl"
    );
    match std::fs::read_to_string(stream) {
        Ok(text) => records.extend(text.lines().enumerate().map(|(i, l)| {
            (
                format!("stream line {}", i + 1),
                serde_json::from_str(l).unwrap(),
            )
        })),
        Err(e) => eprintln!("skipping the bench stream: cannot read {stream}: {e}"),
    }
    for (what, record) in &records {
        // Each record is valid input, so the schema must describe all of it.
        serde_json::from_value::<FailureReport>(record.clone())
            .unwrap_or_else(|e| panic!("{what} does not parse: {e}"));
        let missing = unlisted(record, schema, "");
        assert!(missing.is_empty(), "{what}: {missing:#?}");
    }
    // The checker itself: an unknown field and a wrong type are caught.
    let bad = serde_json::json!({"task_id": "t", "worker_id": "w", "error": {"message": "x", "colour": 1}, "seq": "x"});
    assert_eq!(unlisted(&bad, schema, "").len(), 2);
    // Other timestamps accept epoch seconds too.
    let put = &doc["paths"]["/v1/tasks/{id}/state"]["put"]["requestBody"]["content"]
        ["application/json"]["schema"]["properties"]["timestamp"];
    assert!(fits(&serde_json::json!(1_700_000_000), put), "{put}");
    assert!(
        fits(&serde_json::json!("2026-01-01T00:00:00Z"), put),
        "{put}"
    );
    let outcome = &doc["components"]["schemas"]["Outcome"];
    let o = serde_json::to_value(crate::Outcome {
        task_id: "t1".into(),
        success: true,
        strategy: Some(RecoveryStrategy::DelayedRetry),
        time_to_recovery_s: Some(1.5),
        cost: Some(2.0),
        timestamp: Some(Timestamp::from_micros(0)),
        attempt: Some(1),
    })
    .unwrap();
    let missing = unlisted(&o, outcome, "");
    assert!(missing.is_empty(), "outcome: {missing:#?}");
}

/// Every GET endpoint lists the 503 of the timeout and the 500 of an internal error.
#[test]
fn openapi_get_endpoints_list_500_and_503() {
    let doc = super::openapi::document();
    let mut gets = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(get) = item.get("get") else {
            continue;
        };
        gets += 1;
        for code in ["500", "503"] {
            assert!(
                get["responses"].get(code).is_some(),
                "GET {path} lacks {code}"
            );
        }
    }
    assert_eq!(gets, 8);
}

/// A server started with a model keeps what its own history taught the learned ranking
/// (the counts as its discounts left them, continuations); the model's success tables fill
/// only the contexts that history never met, at a new server too. Regression: the model's
/// coarse, undiscounted tables used to replace the ranking replayed from the history, at
/// start and at every reload, so a restart with `--model` forgot what the server had learned.
#[test]
fn a_model_seeds_the_ranking_without_replacing_what_the_history_taught() {
    use crate::config::EngineConfig;
    use crate::model::{FailureKind, HardwareClass, RecoveryStrategy};
    use std::path::{Path, PathBuf};

    let dir = tempfile::tempdir().unwrap();
    let model = seed_model(dir.path());
    let data = dir.path().join("history");
    let mut config = EngineConfig::default();
    config.ranking.enabled = true;
    let opts = |model: Option<PathBuf>, data: &Path| {
        let mut o = super::ServeOptions::new(data);
        o.config = config.clone();
        o.model = model;
        o
    };

    let contexts = [
        (HardwareClass::Gpu, FailureKind::OomGpu),
        (HardwareClass::Cpu, FailureKind::Timeout),
    ];
    let taught = |app: &super::App| {
        let e = app.engine();
        let (mut counts, mut continuations) = (Vec::new(), Vec::new());
        for (class, kind) in contexts {
            let c = e.ranker().counts(class, kind);
            counts.extend(c.success.iter().chain(&c.failure).copied());
            for s in RecoveryStrategy::ALL {
                continuations.push(e.ranker().continuation(class, kind, *s));
            }
        }
        (counts, continuations)
    };
    let want = {
        let (plain, _) = super::App::open(opts(None, &data)).unwrap();
        taught(&plain)
    };
    assert!(
        want.1.iter().any(|&x| x > 1.0),
        "the history taught continuations: {:?}",
        want.1
    );
    let (served, _) = super::App::open(opts(Some(model.clone()), &data)).unwrap();
    assert_eq!(taught(&served), want, "opening with the model");
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(served.reload(None))
        .unwrap();
    assert_eq!(taught(&served), want, "after a reload");
    drop(served);

    // A server without a history of its own starts from the model's success rates.
    let (fresh, _) = super::App::open(opts(Some(model), &dir.path().join("fresh"))).unwrap();
    let e = fresh.engine();
    for (class, kind) in contexts {
        let tables = want_rates(&data, class, kind);
        let c = e.ranker().counts(class, kind);
        assert!(c.total() > 0.0, "{class:?} {kind:?} seeded");
        for (s, rate) in tables {
            let k = s.index();
            let got = c.success[k] / (c.success[k] + c.failure[k]);
            assert!((got - rate).abs() < 1e-9, "{s:?}: {got} vs {rate}");
        }
    }
}

/// Writes a served history of 150 tasks (GPU out-of-memory and CPU timeouts, some
/// recovering at the second attempt) under `data`, with the learned ranking as `config` has it.
fn write_seed_history(data: &std::path::Path, config: &crate::config::EngineConfig) {
    use crate::model::RecoveryStrategy;
    use crate::{Outcome, Timestamp};
    let opts = |model: Option<std::path::PathBuf>, data: &std::path::Path| {
        let mut o = super::ServeOptions::new(data);
        o.config = config.clone();
        o.model = model;
        o
    };
    {
        let (app, _) = super::App::open(opts(None, data)).unwrap();
        let mut e = app.engine();
        for i in 0..150u32 {
            let (class, msg) = if i % 2 == 0 {
                ("GPU", "CUDA out of memory. Tried to allocate 2.00 GiB")
            } else {
                ("CPU", "operation timed out after 30 s")
            };
            for attempt in 0..3u32 {
                let raw = format!(
                    r#"{{"task_id":"t{i}","worker_id":"w{}","timestamp":{},"hardware":{{"class":"{class}"}},"error":{{"message":"{msg}"}},"task":{{"config":{{"batch_size":32,"precision":"fp32"}}}}}}"#,
                    (i + attempt) % 5,
                    1_700_000_000 + i * 100 + attempt * 10,
                );
                let rec = serde_json::from_str::<FailureReport>(&raw)
                    .unwrap()
                    .check(Timestamp::now())
                    .unwrap();
                let (a, _) = e.decide(&rec).unwrap();
                if a.strategy == RecoveryStrategy::Escalation {
                    break;
                }
                let ok = attempt == 1 || i % 3 == 0;
                e.record_outcome(&Outcome::verdict(format!("t{i}"), ok))
                    .unwrap();
                if ok {
                    break;
                }
            }
        }
        e.flush().unwrap();
    }
}

/// A model trained on [`write_seed_history`]'s history, saved under `dir/model`.
fn seed_model(dir: &std::path::Path) -> std::path::PathBuf {
    use crate::train::{train, TrainOptions};
    let mut config = crate::config::EngineConfig::default();
    config.ranking.enabled = true;
    let data = dir.join("history");
    write_seed_history(&data, &config);
    let model = dir.join("model");
    let mut t = TrainOptions::new("seed", crate::Timestamp::from_micros(1_700_000_000_000_000));
    t.cluster.kmeans.k_max = 4;
    train(&data, &t).unwrap().save(&model).unwrap();
    model
}

/// Regression (a review): a server restarted with `--model` decided 4,995 of 5,000 later
/// failures otherwise than one that never stopped. The live server took the model's tables
/// in, then learned from its outcomes; the restarted one replayed every outcome first, then
/// seeded only the contexts still without evidence. The seeds a server takes (at a start,
/// at a reload) are logged where they happen, and a replay takes them in there.
#[test]
fn a_restart_with_a_model_decides_as_the_server_that_never_stopped() {
    use crate::config::EngineConfig;
    use crate::model::RecoveryStrategy;
    use crate::{Outcome, Timestamp};
    use std::path::{Path, PathBuf};

    let dir = tempfile::tempdir().unwrap();
    let model = seed_model(dir.path());
    let mut config = EngineConfig::default();
    config.ranking.enabled = true;
    let open = |model: Option<PathBuf>, data: &Path| {
        let mut o = super::ServeOptions::new(data);
        o.config = config.clone();
        o.model = model;
        super::App::open(o).unwrap().0
    };
    let msgs = [
        ("GPU", "CUDA out of memory. Tried to allocate 2.00 GiB"),
        ("CPU", "operation timed out after 30 s"),
        ("GPU", "NCCL watchdog timeout"),
    ];
    let step = |app: &super::App, i: u32| {
        let mut e = app.engine();
        let (class, msg) = msgs[i as usize % 3];
        let task = format!("t{}", i / 2);
        let raw = format!(
            r#"{{"task_id":"{task}","worker_id":"w{}","timestamp":{},"hardware":{{"class":"{class}"}},"error":{{"message":"{msg}"}},"task":{{"config":{{"batch_size":32,"precision":"fp32"}}}}}}"#,
            i % 7,
            1_700_100_000 + i * 20,
        );
        let rec = serde_json::from_str::<FailureReport>(&raw)
            .unwrap()
            .check(Timestamp::now())
            .unwrap();
        let (a, _) = e.decide(&rec).unwrap();
        if a.strategy != RecoveryStrategy::Escalation {
            e.record_outcome(&Outcome::verdict(task, (i * 7) % 5 < 2))
                .unwrap();
        }
        a
    };
    let reload = |app: &super::App| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(app.reload(Some(model.clone())))
            .unwrap();
    };
    // Started with the model; started without one and given it by a reload.
    for reloaded in [false, true] {
        let start = |d: &Path| open((!reloaded).then(|| model.clone()), d);
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let (steady, restarted) = (start(dirs[0].path()), start(dirs[1].path()));
        for i in 0..240 {
            // Before the first failure: every context is empty, and the reload seeds.
            if reloaded && i == 0 {
                reload(&steady);
                reload(&restarted);
            }
            assert_eq!(*step(&steady, i), *step(&restarted, i), "decision {i}");
        }
        drop(restarted);
        let restarted = open(Some(model.clone()), dirs[1].path());
        let mut moved = 0;
        for i in 240..480 {
            let (a, b) = (step(&steady, i), step(&restarted, i));
            assert_eq!(
                *a, *b,
                "decision {i} after the restart (reload: {reloaded})"
            );
            moved += usize::from(a.source.kind == "learned");
        }
        assert!(moved > 0, "the ranking decided after the restart");
    }

    // Regression (a review): with the ranking off, a model given only to annotate answers
    // logged a seed, which primed the ranking once it was turned on, with no model given.
    let off = tempfile::tempdir().unwrap();
    {
        let mut o = super::ServeOptions::new(off.path());
        o.config = EngineConfig::default();
        o.model = Some(model.clone());
        let (app, _) = super::App::open(o).unwrap();
        let total = app
            .engine()
            .ranker()
            .counts(
                crate::model::HardwareClass::Gpu,
                crate::model::FailureKind::OomGpu,
            )
            .total();
        assert_eq!(total, 0.0, "seeded with the ranking off");
        for i in 0..20 {
            step(&app, i);
        }
        app.flush().unwrap();
    }
    assert!(
        !off.path().join("history/ranking_seeds").exists(),
        "a seed was logged with the ranking off"
    );
}

/// Success rates per strategy of one context of the history under `data`.
fn want_rates(
    data: &std::path::Path,
    class: crate::model::HardwareClass,
    kind: crate::model::FailureKind,
) -> Vec<(crate::model::RecoveryStrategy, f64)> {
    let t = crate::train::SuccessTables::from_history(data).unwrap();
    let c = t
        .contexts
        .iter()
        .find(|c| c.hardware_class == class && c.kind == kind)
        .expect("the history has the context");
    c.strategies
        .iter()
        .map(|s| (s.strategy, s.successes / (s.successes + s.failures)))
        .collect()
}

/// Regression: `GET /v1/patterns` evaluated the windows at the wall clock while they run on
/// report time, so failures reported with their own (older) times showed no pattern.
#[test]
fn regression_patterns_are_evaluated_at_the_latest_report_time() {
    use crate::Timestamp;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let (app, _) = super::App::open(super::ServeOptions::new(dir.path().join("data"))).unwrap();
    {
        // One task failing three times 10 s apart, in November 2023.
        let mut e = app.engine();
        for i in 0..3u32 {
            let raw = format!(
                r#"{{"task_id":"t1","worker_id":"w{i}","timestamp":{},"hardware":{{"class":"GPU"}},"error":{{"message":"operation timed out after 30 s"}}}}"#,
                1_700_000_000 + i * 10,
            );
            let rec = serde_json::from_str::<FailureReport>(&raw)
                .unwrap()
                .check(Timestamp::now())
                .unwrap();
            let _ = e.decide(&rec).unwrap();
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let v: serde_json::Value = rt.block_on(async {
        let resp = app
            .router()
            .oneshot(Request::get("/v1/patterns").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    });
    let rapid: Vec<&serde_json::Value> = v["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "rapid_failure")
        .collect();
    assert_eq!(rapid.len(), 1, "{v:#}");
    assert_eq!(
        (&rapid[0]["key"], &rapid[0]["count"]),
        (&serde_json::json!("t1"), &serde_json::json!(3))
    );
    // The time they were evaluated at is the latest report time (carried forward by the
    // moments since the server saw it), not the server's clock, years later.
    let at: Timestamp = serde_json::from_value(v["at"].clone()).unwrap();
    let latest = Timestamp::from_secs_f64(1_700_000_020.0);
    assert!(at >= latest && at.secs_since(latest) < 60.0, "{v:#}");
}

/// A review found the report clock of `GET /v1/patterns` running backwards when a failure
/// came in a little late (its time behind the time carried forward): patterns that had
/// expired came back. It carries the later of the two forward.
#[test]
fn the_report_clock_runs_on_and_never_backwards() {
    use crate::model::Timestamp;
    let clock = super::ReportClock::default();
    let t = Timestamp::from_secs_f64(1_700_000_000.0);
    clock.seen(Some(t));
    std::thread::sleep(std::time::Duration::from_millis(30));
    let a = clock.now(Some(t));
    assert!(a.secs_since(t) >= 0.03, "{a} {t}");
    // A failure reported 10 ms after the anchor's time (behind the 30 ms carried forward).
    let late = Timestamp::from_micros(t.as_micros() + 10_000);
    let b = clock.now(Some(late));
    assert!(b >= a, "{b} < {a}");
    // One ahead of it moves it on.
    let ahead = Timestamp::from_micros(b.as_micros() + 60_000_000);
    assert!(clock.now(Some(ahead)) >= ahead);
    // Before any failure: the server's clock.
    let fresh = super::ReportClock::default();
    assert!(fresh.now(None).secs_since(Timestamp::now()).abs() < 60.0);
}

/// Once the write-ahead log failed (its disk full), every write is refused; the server then
/// opens its data directory again itself (`App::recover_wal`, which the flush thread runs
/// 1 s later, then 2, 4... apart) and takes writes again. Before, it stayed failed until it
/// was restarted. What it decided in memory for the refused write is gone, as after a
/// restart: the log stays the truth.
#[test]
fn a_failed_write_ahead_log_is_recovered_without_a_restart() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let (app, _) = super::App::open(super::ServeOptions::new(dir.path().join("data"))).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let call = |method: &str, uri: &str, body: String| {
        rt.block_on(async {
            let resp = app
                .router()
                .oneshot(
                    Request::builder()
                        .method(method)
                        .uri(uri)
                        .body(Body::from(body))
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            // JSON, or the text (`/metrics`) as a JSON string.
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
            });
            (status, v)
        })
    };
    let failure = |at: u32| {
        format!(
            r#"{{"task_id":"t1","worker_id":"w1","timestamp":{},"hardware":{{"class":"GPU"}},"error":{{"message":"CUDA out of memory. Tried to allocate 2.00 GiB"}},"task":{{"config":{{"batch_size":32}}}}}}"#,
            1_700_000_000 + at
        )
    };
    let (s, v) = call("POST", "/v1/failures", failure(0));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["action"]["attempt"], 1, "{v}");
    assert!(!app.recover_wal().unwrap(), "nothing to recover from");

    app.engine()
        .state()
        .store()
        .fail_wal_for_test("no space left on device");
    let (s, v) = call("POST", "/v1/failures", failure(10));
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    let (s, v) = call("GET", "/healthz", String::new());
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["wal_error"]["recovering"], true, "{v}");

    // An upload between its file and its row (a review: the recovery's sweep removed the
    // file, and the row was then logged on the new engine) keeps its file.
    let uploading = dir.path().join("data/checkpoints/t1/0000-uploading.bin");
    std::fs::create_dir_all(uploading.parent().unwrap()).unwrap();
    std::fs::write(&uploading, b"weights").unwrap();
    assert!(app.recover_wal().unwrap());
    assert!(uploading.exists());
    let (s, v) = call("GET", "/healthz", String::new());
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "ok", "{v}");
    // The refused failure is not counted: the next one is the task's second attempt.
    let (s, v) = call("POST", "/v1/failures", failure(20));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["action"]["attempt"], 2, "{v}");
    let (_, metrics) = call("GET", "/metrics", String::new());
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(
        metrics.contains("faultline_wal_recoveries_total 1"),
        "{metrics}"
    );
    // What a restart opens is what the recovered server holds.
    drop(app);
    let (app, report) =
        super::App::open(super::ServeOptions::new(dir.path().join("data"))).unwrap();
    // A start sweeps a file no row names (here, the upload that never logged its row).
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert!(
        report.warnings[0].contains("0000-uploading.bin"),
        "{report:?}"
    );
    assert!(!uploading.exists());
    let e = app.engine();
    let t = crate::engine::StateStore::task(e.state(), &crate::model::TaskId::new("t1").unwrap())
        .unwrap();
    assert_eq!(t.attempts, 2);
}
