//! Request handlers and the guard middleware (auth, timeout, metrics, JSON errors).

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::json_error;
use super::{ApiError, App};
use crate::engine::StateStore;
use crate::store::Ack;
use crate::{
    FailureRecord, FailureReport, LiveTimeError, Outcome, RecoveryAction, TaskId, TaskState,
    Timestamp,
};

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Auth on write and admin endpoints, the request timeout, metrics per route, and JSON bodies
/// for the errors axum produces itself (unknown route, wrong method).
pub(crate) async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| static_route(p.as_str()));
    let response = if let Err(e) = authorize(&app, route, req.method(), req.headers()) {
        e.into_response()
    } else {
        match tokio::time::timeout(app.shared.timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => ApiError::Timeout(app.shared.timeout).into_response(),
        }
    };
    let response = jsonify(response, app.shared.body_limit);
    app.shared
        .metrics
        .request(route, response.status().as_u16(), started.elapsed());
    response
}

/// Routes as `'static` labels for metrics (only the registered patterns).
pub(crate) fn static_route(p: &str) -> &'static str {
    const ROUTES: &[&str] = &[
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/v1/failures",
        "/v1/outcomes",
        "/v1/tasks/{id}/state",
        "/v1/tasks/{id}/checkpoints",
        "/v1/tasks/{id}/checkpoints/latest",
        "/v1/tasks/{id}/history",
        "/v1/patterns",
        "/v1/stats",
        "/v1/admin/reload",
        "/v1/admin/flush",
        "/v1/admin/compact",
    ];
    ROUTES.iter().find(|r| **r == p).copied().unwrap_or("other")
}

/// Write and admin endpoints: the ones that need the token.
pub(crate) fn needs_token(route: &str, method: &Method) -> bool {
    match *method {
        Method::POST => matches!(
            route,
            "/v1/failures"
                | "/v1/outcomes"
                | "/v1/tasks/{id}/checkpoints"
                | "/v1/admin/reload"
                | "/v1/admin/flush"
                | "/v1/admin/compact"
        ),
        Method::PUT => route == "/v1/tasks/{id}/state",
        _ => false,
    }
}

fn authorize(app: &App, route: &str, method: &Method, headers: &HeaderMap) -> Result<()> {
    let Some(token) = &app.shared.token else {
        return Ok(());
    };
    if !needs_token(route, method) {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized(
            "missing bearer token: send 'Authorization: Bearer TOKEN'",
        ))?
        .to_str()
        .ok()
        .and_then(bearer_credentials)
        .ok_or(ApiError::Unauthorized(
            "malformed authorization header: expected 'Bearer TOKEN'",
        ))?;
    if constant_time_eq(given.trim().as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("wrong bearer token"))
    }
}

/// The credentials of an `Authorization` value of the bearer scheme, whose name is
/// case-insensitive (RFC 7235 section 2.1): `Bearer TOKEN`, `bearer TOKEN`, `BEARER TOKEN`.
pub(crate) fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(credentials)
}

/// Compares without an early exit on the first differing byte.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Gives error responses without a JSON body (axum's own 404/405/413) one.
pub(crate) fn jsonify(r: Response, limit: usize) -> Response {
    let status = r.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return r;
    }
    let is_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return r;
    }
    match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = r.headers().get(header::ALLOW).cloned();
            let mut j = ApiError::MethodNotAllowed.into_response();
            if let Some(a) = allow {
                j.headers_mut().insert(header::ALLOW, a);
            }
            j
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge { limit }.into_response(),
        StatusCode::NOT_FOUND => ApiError::NotFound("no such endpoint".into()).into_response(),
        other => json_error(
            other,
            "error",
            other.canonical_reason().unwrap_or("error").to_lowercase(),
            None,
        ),
    }
}

/// Parses a JSON body, naming the offending field on error (a missing field included:
/// `error.message`, `[1].error`).
///
/// Every body is a JSON object or an array of them: anything else is refused before it is
/// read as `T` (an audit: serde reads a struct from an array too, so `["succeeded"]` set a
/// task's state and `[["t1", true]]` recorded an outcome).
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    read::<ObjectOrObjects>(body)?;
    read(body)
}

/// [`parse`] without the shape check.
fn read<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // serde_path_to_error says "." for the top level and "?" where it lost track.
        let known = !matches!(path.as_str(), "" | "." | "?");
        // A missing or repeated field is reported at the object that holds it: name the
        // field itself.
        let field = match named_field(&message) {
            Some(name) if matches!(path.as_str(), "" | ".") => Some(name.to_string()),
            Some(name) if known => Some(format!("{path}.{name}")),
            // The body itself (empty, not JSON, the wrong shape): `body` (an audit: no field).
            _ => Some(if known { path } else { "body".to_string() }),
        };
        ApiError::BadBody { field, message }
    })?;
    de.end().map_err(|e| ApiError::BadBody {
        field: Some("body".to_string()),
        message: e.to_string(),
    })?;
    Ok(value)
}

/// The name of the field a serde "missing field `x`" or "duplicate field `x`" error is
/// about.
fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("duplicate field `"))?;
    rest.split_once('`').map(|(name, _)| name)
}

/// A body's shape, read without keeping anything: an object, or an array of objects.
struct ObjectOrObjects;

/// One JSON object, read without keeping anything.
struct Object;

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Object;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Object, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Object)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for ObjectOrObjects {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ObjectOrObjects;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object or an array of objects")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<ObjectOrObjects, A::Error> {
                Object::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ObjectOrObjects)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<ObjectOrObjects, A::Error> {
                while seq.next_element::<Object>()?.is_some() {}
                Ok(ObjectOrObjects)
            }
        }
        d.deserialize_any(V)
    }
}

/// The body, or the limit/IO error it hit.
fn body(app: &App, body: Result<Bytes, BytesRejection>) -> Result<Bytes> {
    body.map_err(|r| match ApiError::from(r) {
        ApiError::TooLarge { .. } => ApiError::TooLarge {
            limit: app.shared.body_limit,
        },
        other => other,
    })
}

/// Is the body a JSON array (a batch)?
pub(crate) fn is_array(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[')
}

/// The engine's record of a task, or 404.
fn known_task<'e>(
    engine: &'e crate::engine::Engine<crate::engine::DurableState>,
    id: &TaskId,
) -> Result<&'e crate::engine::TaskRecord> {
    engine
        .task(id)
        .ok_or_else(|| ApiError::NotFound(format!("unknown task '{id}'")))
}

fn task_id(id: &str) -> Result<TaskId> {
    TaskId::new(id).map_err(|e| ApiError::from(e.in_field("id")))
}

/// The task id of a route's path, checked ([`task_id`]); one that does not decode (percent
/// escapes of bytes that are not UTF-8) is an invalid `id` too (an audit: a bare "bad
/// request" naming no field).
fn task_id_in_path(id: std::result::Result<Path<String>, PathRejection>) -> Result<TaskId> {
    match id {
        Ok(Path(id)) => task_id(&id),
        Err(e) => Err(ApiError::Invalid {
            field: "id".into(),
            detail: format!("the task id in the path does not decode: {}", e.body_text()),
        }),
    }
}

/// `GET /healthz`: `"ok"`, or `"degraded"` while the latest flush of the history into
/// Parquet failed (`flush_error` says why and since when; acknowledged records are safe in
/// the WAL, which grows until a flush succeeds), or `"failed"` once a write of the WAL itself
/// failed (`wal_error`: every write is refused until the server opens its data directory
/// again, which it tries 1 s later, then 2, 4... up to a minute apart, or a restart does;
/// what was acknowledged is safe). 200 but when failed: 503, so that a liveness probe may
/// restart the server.
pub(crate) async fn healthz(State(app): State<App>) -> Response {
    let model = app.model();
    let flush = app.flush_health();
    let wal = app.engine().wal_failure();
    let mut body = json!({
        "status": if wal.is_some() { "failed" } else if flush.last_error.is_some() { "degraded" } else { "ok" },
        "uptime_s": app.shared.started.elapsed().as_secs_f64(),
        "model": model.model.as_ref().map(|m| m.manifest().name.clone()),
        "flush_failures_total": flush.failures_total,
    });
    if let Some(e) = flush.last_error {
        body["flush_error"] = json!({
            "message": e,
            "failing": flush.failing,
            "since_unix_s": flush.failing_since,
        });
    }
    // A write-ahead log that could not be written (its disk full) acknowledges nothing more
    // until the data directory is opened again (an audit: it stayed "degraded" after space
    // was freed, with nothing to say a restart was needed; now the server opens it again
    // itself, and a restart does too). What was acknowledged is safe.
    let status = if let Some(e) = wal {
        body["wal_error"] = json!({
            "message": e,
            "restart_needed": false,
            "recovering": true,
        });
        // A liveness probe that reads the status code restarts it (a review: 200 while
        // failed left a probe none the wiser).
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics` (Prometheus text format).
pub(crate) async fn metrics(State(app): State<App>) -> Response {
    let text = app.shared.metrics.render(&app);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

/// `GET /openapi.json`.
pub(crate) async fn openapi() -> Response {
    Json(super::openapi::document()).into_response()
}

/// Unknown route.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

/// The answer to one failure.
#[derive(Debug, Serialize)]
struct Decided {
    action: std::sync::Arc<RecoveryAction>,
    /// Whether the record repeated a failure already decided (a retry): the action is the
    /// one decided then, not a new attempt (an audit: nothing told a client so).
    duplicate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotation: Option<crate::train::Annotation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    /// Why, with `?explain=true` (for a repeat, that it is one: its decision was explained,
    /// or not, when it was made).
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<crate::engine::Explanation>,
}

/// The query of `POST /v1/failures`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FailureQuery {
    /// Explain each decision: `explain`, `explain=true` or `explain=1` (`false`, `0`: no).
    #[serde(default, deserialize_with = "flag")]
    explain: bool,
}

/// A query flag: present without a value, `true`/`1` or `false`/`0`.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    let v = String::deserialize(d)?;
    match v.as_str() {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "explain takes true, false, 1 or 0, not {other:?}"
        ))),
    }
}

/// The query, or an error naming it (400 `invalid_field`, field `query`).
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T> {
    q.map(|Query(q)| q).map_err(|e| ApiError::Invalid {
        field: "query".into(),
        detail: format!(
            "{} (the query takes explain=true or explain=false)",
            e.body_text()
        ),
    })
}

/// Records a failure batch may have for its annotation to run on the async thread.
const ANNOTATE_INLINE: usize = 8;

/// The answers to `records`, decided as `actions`, annotated under the loaded model if any.
fn annotated(
    loaded: &super::Loaded,
    records: &[FailureRecord],
    actions: Vec<Answer>,
) -> Vec<Decided> {
    let model_name = loaded.model.as_ref().map(|m| m.manifest().name.clone());
    records
        .iter()
        .zip(actions)
        .map(|(rec, (action, duplicate, explanation))| Decided {
            annotation: loaded.model.as_ref().map(|m| m.annotate(rec, action.kind)),
            model: model_name.clone(),
            action,
            duplicate,
            explanation,
        })
        .collect()
}

/// One failure's answer before annotation: the action, whether it repeats one decided
/// before, and its explanation when asked for.
type Answer = (
    std::sync::Arc<RecoveryAction>,
    bool,
    Option<crate::engine::Explanation>,
);

/// `rec` unless its timestamp is more than `skew` ahead of `now` (the server's clock).
fn not_ahead(rec: FailureRecord, now: Timestamp, skew: Duration) -> Result<FailureRecord> {
    time_not_ahead(rec.timestamp, now, skew)?;
    Ok(rec)
}

/// An error (field `timestamp`) when `at` is not a live time against `now`, the server's clock
/// ([`Timestamp::check_live`]): before 1973 (a placeholder: a client sending `0` for every
/// failure had each taken for a retry of the first), or more than `skew` ahead (a time far
/// ahead would hold the windows of the patterns, the retry budget and the breakers, or keep
/// a task from being forgotten).
fn time_not_ahead(at: Timestamp, now: Timestamp, skew: Duration) -> Result<()> {
    at.check_live(now, skew.as_secs_f64())
        .map_err(|e| ApiError::Invalid {
            field: "timestamp".into(),
            detail: match e {
                LiveTimeError::BeforeEarliest(_) => format!(
                    "{e} (leave timestamp out for the server's clock)"
                ),
                LiveTimeError::Ahead { ahead_s, .. } => format!(
                    "{at} is {ahead_s:.3} s ahead of the server's clock ({now}); at most {} s is accepted (serve --max-clock-skew)",
                    skew.as_secs_f64()
                ),
            },
        })
}

/// `POST /v1/failures`: one failure record (an object) or a batch (an array) → the recovery
/// action(s), answered once durable. A batch is checked whole before anything is decided: one
/// bad record rejects it with the record's index in `field`. A timestamp further ahead of the
/// server's clock than `max_clock_skew` is a bad record. A record that repeats its task's
/// latest failure (same timestamp, worker and message, no outcome yet: a retried request) is
/// answered with the action already decided, not decided again.
pub(crate) async fn post_failures(
    State(app): State<App>,
    q: Result<Query<FailureQuery>, QueryRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let explain = query(q)?.explain;
    let raw = body(&app, raw)?;
    let now = Timestamp::now();
    let batch = is_array(&raw);
    let records: Vec<FailureRecord> = if batch {
        let reports: Vec<FailureReport> = parse(&raw)?;
        reports
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let rec = r.check(now).map_err(ApiError::from);
                rec.and_then(|r| not_ahead(r, now, app.shared.max_clock_skew))
                    .map_err(|e| match e {
                        ApiError::Invalid { field, detail } => ApiError::Invalid {
                            field: format!("[{i}].{field}"),
                            detail,
                        },
                        other => other,
                    })
            })
            .collect::<Result<_>>()?
    } else {
        let rec = parse::<FailureReport>(&raw)?.check(now)?;
        vec![not_ahead(rec, now, app.shared.max_clock_skew)?]
    };
    let mut actions = Vec::with_capacity(records.len());
    // The decisions made now: a retry's answer is not counted again (an audit: three
    // identical posts counted one decision three times in /metrics and /v1/stats).
    let mut decided = Vec::with_capacity(records.len());
    let ack = {
        let mut engine = app.engine();
        let mut last = Ack::done();
        for rec in &records {
            // A client's retry of a failure already decided (it lost the answer): the same
            // action, answered once the original is durable; not counted again.
            let (action, ack, duplicate, why) = match engine.duplicate_failure(rec) {
                Some(action) => {
                    let why = explain.then(|| crate::engine::Explanation::repeat(&action));
                    (action, engine.logged(), true, why)
                }
                None if explain => {
                    let (action, ack, why) = engine.decide_explained(rec)?;
                    decided.push(action.clone());
                    (action, ack, false, Some(why))
                }
                None => {
                    let (action, ack) = engine.decide(rec)?;
                    decided.push(action.clone());
                    (action, ack, false, None)
                }
            };
            actions.push((action, duplicate, why));
            last = ack;
        }
        app.shared.report_clock.seen(engine.pattern_time());
        last
    };
    // WAL sequence numbers increase: the last record's fsync covers the batch.
    app.shared.fsync.wait(ack).await?;
    app.shared.metrics.decided(&decided);
    let loaded = app.model();
    let mut out = if loaded.model.is_some() && records.len() > ANNOTATE_INLINE {
        // Annotating (template lookup, featurizing, cluster assignment) is CPU work that grows
        // with the batch: not on the async threads, which serve every other request. A few
        // records are annotated in place (cheaper than the hand-off).
        tokio::task::spawn_blocking(move || annotated(&loaded, &records, actions))
            .await
            .map_err(|e| ApiError::Internal(format!("annotating the decisions: {e}")))?
    } else {
        annotated(&loaded, &records, actions)
    };
    Ok(if batch {
        Json(json!({ "results": out })).into_response()
    } else {
        Json(out.pop().expect("one record, one action")).into_response()
    })
}

/// `POST /v1/outcomes`: one outcome or an array of outcomes, answered once durable. A batch
/// is checked whole before any outcome is logged or applied, as a failure batch is: one
/// outcome with a negative, NaN or infinite `time_to_recovery_s` or `cost`, or a `timestamp`
/// further ahead of the server's clock than `max_clock_skew`, rejects it (400
/// `invalid_field`, `field` `[i].cost`), one for an unknown task too (404 `unknown_task`,
/// `field` `[i].task_id`), and a rejected batch changes nothing. A duplicate (the task's
/// latest action already has its outcome: a retry) is neither applied nor logged again: `"duplicate": true` (per item in a batch's `results`,
/// counted in `duplicates`), not counted in `recorded`.
pub(crate) async fn post_outcomes(
    State(app): State<App>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let raw = body(&app, raw)?;
    let batch = is_array(&raw);
    let outcomes: Vec<Outcome> = if batch {
        parse(&raw)?
    } else {
        vec![parse(&raw)?]
    };
    // Their numbers and times first (no lock needed): a bad one rejects the lot, naming its
    // field. A time far ahead of the server's clock is refused as a failure's is: it would
    // carry a worker's open breaker past its recovery wait (input audit).
    let now = Timestamp::now();
    for (i, o) in outcomes.iter().enumerate() {
        o.check()
            .map_err(ApiError::from)
            .and_then(|()| match o.timestamp {
                Some(at) => time_not_ahead(at, now, app.shared.max_clock_skew),
                None => Ok(()),
            })
            .map_err(|e| match e {
                ApiError::Invalid { field, detail } if batch => ApiError::Invalid {
                    field: format!("[{i}].{field}"),
                    detail,
                },
                other => other,
            })?;
    }
    let mut acks = Ack::done();
    let mut duplicates = Vec::with_capacity(outcomes.len());
    {
        let mut engine = app.engine();
        // The verdict an earlier outcome of the batch gives each task: a later one for the
        // same task is its duplicate, or a conflict found here, before anything is applied
        // (the check below sees only what the engine holds).
        let mut given: std::collections::HashMap<&str, bool> = std::collections::HashMap::new();
        // Under the same lock as the logging below, so the check still holds then.
        for (i, o) in outcomes.iter().enumerate() {
            let at = |field: &str| {
                if batch {
                    format!("[{i}].{field}")
                } else {
                    field.to_string()
                }
            };
            engine.check_outcome(o).map_err(|e| match e {
                crate::engine::EngineError::UnknownTask(task) => ApiError::UnknownTask {
                    field: at("task_id"),
                    task,
                },
                // The batch's index in the field, as for the other bad fields.
                crate::engine::EngineError::InvalidOutcome {
                    error: crate::model::ModelError::Invalid { field, detail },
                    ..
                } if batch => ApiError::Invalid {
                    field: at(field),
                    detail,
                },
                e => ApiError::Engine(e),
            })?;
            // After the outcome's own checks (a stale one is answered as stale).
            if let Some(&first) = given.get(o.task_id.as_str()) {
                if first != o.success {
                    return Err(ApiError::BatchConflict {
                        field: at("success"),
                        task: o.task_id.clone(),
                    });
                }
            }
            given.entry(o.task_id.as_str()).or_insert(o.success);
        }
        for o in &outcomes {
            let id = engine.check_outcome(o)?;
            let duplicate = engine.is_duplicate_outcome(&id);
            // A later write's ack covers the earlier ones; a duplicate logs nothing, and its
            // ack waits for what was logged before it (its original among them).
            acks = engine.log_outcome(o)?;
            duplicates.push(duplicate);
        }
    }
    app.shared.fsync.wait(acks).await?;
    let recorded: Vec<Outcome> = outcomes
        .into_iter()
        .zip(&duplicates)
        .filter(|(_, d)| !**d)
        .map(|(o, _)| o)
        .collect();
    app.shared.metrics.outcomes(&recorded);
    let n_dup = duplicates.iter().filter(|d| **d).count();
    Ok(Json(if batch {
        let results: Vec<_> = duplicates
            .iter()
            .map(|d| json!({ "duplicate": d }))
            .collect();
        json!({ "recorded": recorded.len(), "duplicates": n_dup, "results": results })
    } else {
        json!({ "recorded": recorded.len(), "duplicate": n_dup == 1 })
    })
    .into_response())
}

/// `GET /v1/tasks/{id}/state`.
pub(crate) async fn get_task_state(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let id = task_id_in_path(id)?;
    let engine = app.engine();
    let rec = known_task(&engine, &id)?;
    let mut v = serde_json::to_value(rec).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        m.remove("history");
        m.insert("task_id".into(), Value::String(id.to_string()));
        m.insert("actions".into(), json!(rec.history.len()));
    }
    Ok(Json(v).into_response())
}

/// Body of `PUT /v1/tasks/{id}/state`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateChange {
    state: TaskState,
    #[serde(default)]
    note: String,
    #[serde(default)]
    timestamp: Option<Timestamp>,
}

/// `PUT /v1/tasks/{id}/state`: sets the lifecycle state (running, succeeded, failed, ...).
pub(crate) async fn put_task_state(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let id = task_id_in_path(id)?;
    let raw = body(&app, raw)?;
    let change: StateChange = parse(&raw)?;
    let now = Timestamp::now();
    let at = change.timestamp.unwrap_or(now);
    time_not_ahead(at, now, app.shared.max_clock_skew)?;
    let ack = app
        .engine()
        .set_task_state(&id, change.state, at, &change.note)?;
    app.shared.fsync.wait(ack).await?;
    Ok(Json(json!({ "task_id": id.as_str(), "state": change.state })).into_response())
}

/// `POST /v1/tasks/{id}/checkpoints`: the body (any bytes but none; JSON is fine) becomes the task's
/// newest checkpoint; later recovery actions name it in `resume_checkpoint`. Answered `201`
/// once both the blob and its history row are durable. The engine's lock is held only to
/// reserve the checkpoint's number and to index and log it: the blob's write and fsync, the
/// WAL fsync and the removal of blobs retention retired all happen outside it.
pub(crate) async fn post_checkpoint(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let id = task_id_in_path(id)?;
    let raw = body(&app, raw)?;
    // An audit: an empty body was stored, and recovery actions then named a checkpoint that
    // resumes from nothing.
    if raw.is_empty() {
        return Err(ApiError::Invalid {
            field: "body".into(),
            detail: "a checkpoint cannot be empty: send the bytes to resume from".into(),
        });
    }
    let write = app.engine().begin_checkpoint(&id, Timestamp::now());
    let written = tokio::task::spawn_blocking(move || write.write(&raw))
        .await
        .map_err(|e| ApiError::Internal(format!("checkpoint task failed: {e}")))?
        .map_err(|e| ApiError::Engine(e.into()))?;
    let done = app.engine().commit_checkpoint(written)?;
    app.shared.fsync.wait(done.ack.clone()).await?;
    let cid = done.id.clone();
    if !done.retired().is_empty() {
        // Their deletion is durable now; a blob left behind is one nothing names.
        match tokio::task::spawn_blocking(move || done.remove_retired()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!("faultline serve: warning: {e}"),
            Err(e) => warn!("faultline serve: warning: checkpoint cleanup failed: {e}"),
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({ "task_id": id.as_str(), "checkpoint_id": cid })),
    )
        .into_response())
}

/// Snapshots of a task's checkpoints tried before errors are reported as they are.
const CHECKPOINT_READ_TRIES: usize = 3;

/// `GET /v1/tasks/{id}/checkpoints/latest`: the newest checkpoint whose content verifies, as
/// bytes, with its id in `x-checkpoint-id`; corrupted newer ones are skipped (counted in
/// `x-checkpoint-skipped`). A task without a checkpoint is a 404; one whose every checkpoint
/// is damaged (content differs from its hash, or its blob is gone) a 409
/// `checkpoint_damaged` naming how many were skipped. The candidates are taken under the
/// engine's lock; the blobs are read and verified outside it.
pub(crate) async fn get_latest_checkpoint(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let id = task_id_in_path(id)?;
    let mut snapshot = app.engine().checkpoint_snapshot(&id);
    let mut tries = 1;
    let (found, errors) = loop {
        let s = snapshot.clone();
        let (found, errors) = tokio::task::spawn_blocking(move || s.load())
            .await
            .map_err(|e| ApiError::Internal(format!("checkpoint task failed: {e}")))?;
        if errors.is_empty() || tries == CHECKPOINT_READ_TRIES {
            break (found, errors);
        }
        // Retention may have removed a blob while it was read: errors count only against the
        // task's current checkpoints.
        let now = app.engine().checkpoint_snapshot(&id);
        if now.same_checkpoints(&snapshot) {
            break (found, errors);
        }
        snapshot = now;
        tries += 1;
    };
    for e in &errors {
        warn!("faultline serve: warning: {e}");
    }
    // Recovery actions name the newest checkpoint that verifies: not one a read found
    // damaged (its content differs from its hash, or its blob is gone), and again a newer one
    // once it reads. A passing I/O error (out of file handles, say) changes nothing.
    let damaged = |e: &crate::store::StoreError| match e {
        crate::store::StoreError::Decode(_) => true,
        crate::store::StoreError::Io { source, .. } => {
            source.kind() == std::io::ErrorKind::NotFound
        }
        _ => false,
    };
    if errors.iter().all(damaged) {
        app.engine()
            .checkpoints_verified(&id, &snapshot, found.as_ref().map(|(row, _)| row));
    }
    let Some((row, data)) = found else {
        return Err(if errors.is_empty() {
            ApiError::NotFound(format!("no checkpoint for task '{id}'"))
        } else if errors.iter().all(damaged) {
            // Checkpoints exist, and every one is damaged: not the 404 of a task that never
            // stored one, which a client would take as "start from scratch" without a word.
            ApiError::CheckpointDamaged {
                task: id.to_string(),
                skipped: errors.len(),
            }
        } else {
            // A read failed for another reason (logged above): the server's trouble, not the
            // checkpoints'; a retry may serve one.
            ApiError::Internal(format!(
                "no checkpoint of task '{id}' could be read ({} read(s) failed)",
                errors.len()
            ))
        });
    };
    let mut r = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        data,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&row.checkpoint_id) {
        r.headers_mut().insert("x-checkpoint-id", v);
    }
    r.headers_mut()
        .insert("x-checkpoint-skipped", HeaderValue::from(errors.len()));
    Ok(r)
}

/// `GET /v1/tasks/{id}/history`: the task's recent recovery actions, oldest first.
pub(crate) async fn get_history(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let id = task_id_in_path(id)?;
    let engine = app.engine();
    let rec = known_task(&engine, &id)?;
    Ok(Json(json!({
        "task_id": id.as_str(),
        "state": rec.state,
        "attempts": rec.attempts,
        "actions": engine.recovery_history(&id),
    }))
    .into_response())
}

/// `GET /v1/patterns`: active patterns (most severe first), workers under a bad-worker
/// pattern, workers whose breaker is open. The pattern windows run on report time: they are
/// evaluated at the latest report time seen carried forward by the time elapsed since the
/// server saw it ([`super::ReportClock`]), not at the wall clock, which a history with older
/// report times would leave behind every window; and not at the latest report time alone,
/// which would hold every pattern until the next failure.
pub(crate) async fn get_patterns(State(app): State<App>) -> Result<Response> {
    let engine = app.engine();
    let at = app.shared.report_clock.now(engine.pattern_time());
    Ok(Json(json!({
        "at": at,
        "patterns": engine.patterns(at),
        // The list the engine avoids (as of its latest refresh), not re-evaluated at `at`.
        "bad_workers": engine.bad_workers(),
        "open_worker_breakers": engine.open_worker_breakers(at),
    }))
    .into_response())
}

/// `GET /v1/stats`: the counters of this process (they start at 0 after a restart; `tasks`
/// is what the engine holds, replayed history included) and the model in use.
pub(crate) async fn get_stats(State(app): State<App>) -> Result<Response> {
    let tasks = app.engine().state().len();
    let loaded = app.model();
    let m = &app.shared.metrics;
    Ok(Json(json!({
        "uptime_s": app.shared.started.elapsed().as_secs_f64(),
        "tasks": tasks,
        "decisions": m.decisions_total(),
        "decisions_by_strategy": m.by_strategy(),
        "outcomes": m.outcomes_total(),
        "outcome_successes": m.successes_total(),
        "requests": m.requests_total(),
        "model": loaded.model.as_ref().map(|x| x.manifest()),
        "model_dir": loaded.dir,
        "model_loaded_at": loaded.loaded_at,
        "reloads": m.reloads(),
    }))
    .into_response())
}

/// Body of `POST /v1/admin/reload` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadRequest {
    #[serde(default)]
    model: Option<std::path::PathBuf>,
}

/// `POST /v1/admin/flush`: writes every acknowledged record still in the write-ahead log
/// into the history's Parquet parts now, rather than at the next periodic flush, so that a
/// reader of the parts (`faultline train`, `analyze --data`, `eval ranking`, pyarrow) beside
/// the running server sees them (a nightly-train audit: up to a flush interval of records was
/// left out, and the `compact` the warning suggested is refused while the server holds the
/// directory). Answers `{"flushed": true, "flushed_seq"}` once the parts are committed.
pub(crate) async fn post_flush(State(app): State<App>) -> Result<Response> {
    let a = app.clone();
    tokio::task::spawn_blocking(move || a.flush())
        .await
        .map_err(|e| ApiError::Internal(format!("flush task failed: {e}")))??;
    let root = app.engine().state().store().root().to_path_buf();
    let seq = crate::store::flushed_seq(&root).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({ "flushed": true, "flushed_seq": seq })).into_response())
}

/// `POST /v1/admin/compact`: flushes the write-ahead log, then merges each partition's
/// Parquet parts into one now, rather than at the next periodic compaction, while requests go
/// on — `faultline compact` is refused while the server holds the data directory. Reads every
/// part whole, as `faultline compact` does (a damaged part is set aside and named). Answers
/// `{"compacted": true, "partitions_compacted", "parts_removed", "set_aside",
/// "gone_acknowledged"}`.
pub(crate) async fn post_compact(State(app): State<App>) -> Result<Response> {
    let a = app.clone();
    let r = tokio::task::spawn_blocking(move || a.compact(crate::store::CompactScope::Full))
        .await
        .map_err(|e| ApiError::Internal(format!("compaction task failed: {e}")))??;
    Ok(Json(json!({
        "compacted": true,
        "partitions_compacted": r.partitions_compacted,
        "parts_removed": r.parts_removed,
        "set_aside": r.set_aside,
        "gone_acknowledged": r.gone_acknowledged,
    }))
    .into_response())
}

/// `POST /v1/admin/reload`: loads the model directory again (or the one named in the body)
/// and swaps it in without stopping requests.
pub(crate) async fn post_reload(
    State(app): State<App>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let raw = body(&app, raw)?;
    let req: ReloadRequest = if raw.iter().all(u8::is_ascii_whitespace) {
        ReloadRequest::default()
    } else {
        parse(&raw)?
    };
    let loaded = app.reload(req.model).await?;
    Ok(Json(json!({
        "reloaded": true,
        "model": loaded.model.as_ref().map(|m| m.manifest()),
        "model_dir": loaded.dir,
        "loaded_at": loaded.loaded_at,
    }))
    .into_response())
}
