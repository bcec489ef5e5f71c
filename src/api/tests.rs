//! Unit tests of the API's pieces; the endpoints are tested through the router in
//! `tests/api.rs`.

use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;

use super::handlers::{constant_time_eq, is_array, jsonify, needs_token, parse, static_route};
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
    assert!(matches!(e, ApiError::BadBody { field: None, .. }), "{e:?}");
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
        (ApiError::Internal("x".into()), 500, "internal"),
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

/// A server started with a model keeps what its own history taught the learned ranking
/// (the counts as its discounts left them, continuations); the model's success tables fill
/// only the contexts that history never met, at a new server too. Regression: the model's
/// coarse, undiscounted tables used to replace the ranking replayed from the history, at
/// start and at every reload, so a restart with `--model` forgot what the server had learned.
#[test]
fn a_model_seeds_the_ranking_without_replacing_what_the_history_taught() {
    use crate::config::EngineConfig;
    use crate::model::{FailureKind, HardwareClass, RecoveryStrategy};
    use crate::train::{train, TrainOptions};
    use crate::{Outcome, Timestamp};
    use std::path::{Path, PathBuf};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = EngineConfig::default();
    config.ranking.enabled = true;
    let opts = |model: Option<PathBuf>, data: &Path| {
        let mut o = super::ServeOptions::new(data);
        o.config = config.clone();
        o.model = model;
        o
    };
    {
        let (app, _) = super::App::open(opts(None, &data)).unwrap();
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
                e.record_outcome(&Outcome {
                    task_id: format!("t{i}"),
                    success: ok,
                    strategy: None,
                    time_to_recovery_s: None,
                    cost: None,
                    timestamp: None,
                })
                .unwrap();
                if ok {
                    break;
                }
            }
        }
        e.flush().unwrap();
    }
    let model = dir.path().join("model");
    let mut t = TrainOptions::new("seed", Timestamp::from_micros(1_700_000_000_000_000));
    t.cluster.kmeans.k_max = 4;
    train(&data, &t).unwrap().save(&model).unwrap();

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
