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
