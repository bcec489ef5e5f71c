//! The HTTP API: the router driven without a socket, a real server on a free loopback port,
//! a bad-input battery, kill -9 under load, and reload under load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use faultline::api::{App, ServeOptions};
use faultline::store::{Entry, HistoryStore, ParquetStore, StoreOptions};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::http::Server;

const OOM: &str = r#"{"task_id":"t1","worker_id":"w1","hardware":{"class":"GPU","memory_gib":24},"error":{"message":"CUDA out of memory. Tried to allocate 2.00 GiB"},"task":{"config":{"batch_size":32,"precision":"fp16"}}}"#;

fn failure(task: &str, i: usize) -> String {
    let msgs = [
        "CUDA out of memory. Tried to allocate 2.00 GiB",
        "NCCL watchdog thread terminated with exception: CUDA error: uncorrectable ECC error encountered",
        "WebGPU device lost (2): Device was destroyed.",
        "ConnectionResetError: [Errno 104] Connection reset by peer",
    ];
    format!(
        r#"{{"task_id":"{task}","worker_id":"w-{}","hardware":{{"class":"GPU","memory_gib":24}},"error":{{"message":"{}"}},"task":{{"config":{{"batch_size":32,"precision":"fp16"}}}}}}"#,
        i % 7,
        msgs[i % msgs.len()]
    )
}

/// `GET /v1/tasks/{task}/checkpoints/latest` through the router, the whole response.
async fn latest_checkpoint(app: &App, task: &str) -> axum::response::Response {
    app.router()
        .oneshot(
            Request::get(format!("/v1/tasks/{task}/checkpoints/latest"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
}

/// Outcomes in the durable history under `data` (the server stopped).
fn stored_outcomes(data: &std::path::Path) -> usize {
    let store = ParquetStore::open(data, StoreOptions::default()).unwrap();
    store
        .entries()
        .unwrap()
        .into_iter()
        .filter(|(_, e)| matches!(e, Entry::Outcome(_)))
        .count()
}

/// One request through the router, no socket.
async fn call(
    app: &App,
    method: &str,
    uri: &str,
    body: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .router()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

#[tokio::test]
async fn router_serves_every_endpoint_without_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("data"));
    opts.token = Some("s3cret".into());
    let (app, _) = App::open(opts).unwrap();
    let t = Some("s3cret");

    // The OOM ladder across requests: the engine counts attempts itself.
    let (s, v) = call(&app, "POST", "/v1/failures", OOM, t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["action"]["strategy"], "REDUCED_BATCH_SIZE");
    assert_eq!(v["action"]["modified_config"]["batch_size"], 16);
    let (_, v) = call(&app, "POST", "/v1/failures", OOM, t).await;
    assert_eq!(v["action"]["strategy"], "REDUCED_PRECISION");

    // A batch answers in order.
    let batch = format!("[{},{}]", failure("b1", 0), failure("b2", 2));
    let (s, v) = call(&app, "POST", "/v1/failures", &batch, t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["action"]["task_id"], "b1");
    assert_eq!(results[1]["action"]["kind"], "webgpu_context_lost");

    // Outcomes, task state, checkpoints, history. An outcome dated far ahead of the server's
    // clock is refused, as a failure is (input audit: it carried a worker's open breaker past
    // its recovery wait); in a batch, naming its index.
    for (body, field) in [
        (
            r#"{"task_id":"t1","success":true,"timestamp":"2099-01-01T00:00:00Z"}"#,
            "timestamp",
        ),
        (
            r#"[{"task_id":"t1","success":true},{"task_id":"t1","success":true,"timestamp":"2099-01-01T00:00:00Z"}]"#,
            "[1].timestamp",
        ),
        // Regression (serve audit): nor before 1973 — `0` as a placeholder time made every
        // failure of a task look like a retry of its first.
        (
            r#"{"task_id":"t1","success":true,"timestamp":0}"#,
            "timestamp",
        ),
    ] {
        let (s, v) = call(&app, "POST", "/v1/outcomes", body, t).await;
        assert_eq!(
            (s, &v["error"]["field"]),
            (StatusCode::BAD_REQUEST, &json!(field)),
            "{v}"
        );
    }
    let (s, v) = call(
        &app,
        "POST",
        "/v1/outcomes",
        r#"{"task_id":"t1","success":true,"time_to_recovery_s":12.5}"#,
        t,
    )
    .await;
    assert_eq!((s, &v["recorded"]), (StatusCode::OK, &json!(1)));
    let (s, v) = call(
        &app,
        "PUT",
        "/v1/tasks/t1/state",
        r#"{"state":"running","note":"resumed"}"#,
        t,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A state change dated far ahead of the server's clock is refused, as a failure is (it
    // would keep the task from ever being forgotten).
    let (s, v) = call(
        &app,
        "PUT",
        "/v1/tasks/t1/state",
        r#"{"state":"succeeded","timestamp":"2099-01-01T00:00:00Z"}"#,
        t,
    )
    .await;
    assert_eq!(
        (s, &v["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("timestamp")),
        "{v}"
    );
    let (s, v) = call(&app, "GET", "/v1/tasks/t1/state", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["state"], "running");
    assert_eq!(v["attempts"], 2);
    assert_eq!(v["config"]["precision"], "int8");
    let (s, v) = call(
        &app,
        "POST",
        "/v1/tasks/t1/checkpoints",
        r#"{"step":1200}"#,
        t,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let cid = v["checkpoint_id"].as_str().unwrap().to_string();
    let resp = latest_checkpoint(&app, "t1").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-checkpoint-id"], cid.as_str());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(&bytes[..], br#"{"step":1200}"#);
    // The next action for the task names the checkpoint to resume from.
    let (_, v) = call(&app, "POST", "/v1/failures", OOM, t).await;
    assert_eq!(v["action"]["resume_checkpoint"], cid.as_str());
    let (s, v) = call(&app, "GET", "/v1/tasks/t1/history", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["actions"].as_array().unwrap().len(), 3);

    // Read-only endpoints.
    let (s, v) = call(&app, "GET", "/v1/patterns", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["patterns"].is_array());
    let (s, v) = call(&app, "GET", "/v1/stats", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["decisions"], 5);
    assert_eq!(v["outcomes"], 1);
    let (s, v) = call(&app, "GET", "/healthz", "", None).await;
    assert_eq!((s, &v["status"]), (StatusCode::OK, &json!("ok")));
    let (s, v) = call(&app, "GET", "/metrics", "", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.as_str().unwrap();
    assert!(
        text.contains(r#"faultline_http_requests_total{route="/v1/failures",status="200"} 4"#),
        "{text}"
    );
    assert!(
        text.contains(r#"faultline_decisions_total{strategy="REDUCED_BATCH_SIZE"}"#),
        "{text}"
    );
    let (s, v) = call(&app, "GET", "/openapi.json", "", None).await;
    assert_eq!(s, StatusCode::OK);
    for p in [
        "/v1/failures",
        "/v1/outcomes",
        "/v1/tasks/{id}/state",
        "/v1/tasks/{id}/checkpoints",
        "/v1/tasks/{id}/checkpoints/latest",
        "/v1/tasks/{id}/history",
        "/v1/patterns",
        "/v1/stats",
        "/v1/admin/reload",
        "/healthz",
        "/metrics",
    ] {
        assert!(v["paths"].get(p).is_some(), "openapi lacks {p}");
    }

    // Errors are JSON with the right status.
    let (s, v) = call(&app, "POST", "/v1/failures", OOM, None).await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (StatusCode::UNAUTHORIZED, &json!("unauthorized"))
    );
    let (s, v) = call(&app, "GET", "/v1/tasks/nope/state", "", None).await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
    let (s, v) = call(&app, "DELETE", "/v1/stats", "", t).await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (StatusCode::METHOD_NOT_ALLOWED, &json!("method_not_allowed"))
    );
    let (s, v) = call(
        &app,
        "POST",
        "/v1/outcomes",
        r#"{"task_id":"nope","success":true}"#,
        t,
    )
    .await;
    assert_eq!(
        (s, &v["error"]["field"]),
        (StatusCode::NOT_FOUND, &json!("task_id"))
    );
    let (s, v) = call(&app, "POST", "/v1/admin/reload", "", t).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no model to reload: {v}");

    // Everything acknowledged is in the history after a flush (read once the server's store,
    // which holds the directory's lock, is closed).
    app.flush().unwrap();
    drop(app);
    let store = ParquetStore::open(&dir.path().join("data"), StoreOptions::default()).unwrap();
    let mut n = HashMap::<&str, usize>::new();
    for (_, e) in store.entries().unwrap() {
        let k = match e {
            Entry::Failure(_) => "failures",
            Entry::Action(_) => "actions",
            Entry::Outcome(_) => "outcomes",
            Entry::TaskState(_) => "task_states",
            Entry::Checkpoint(_) => "checkpoints",
            Entry::Pattern(_) => "patterns",
            Entry::RankingSeed(_) => "ranking_seeds",
        };
        *n.entry(k).or_default() += 1;
    }
    assert_eq!(n["failures"], 5, "{n:?}");
    assert_eq!(n["actions"], 5, "{n:?}");
    assert_eq!(n["outcomes"], 1, "{n:?}");
    assert_eq!(n["task_states"], 1, "{n:?}");
    assert_eq!(n["checkpoints"], 1, "{n:?}");
}

/// Regression: an outcome batch with an unknown task was answered 404 yet partly applied and
/// logged (the outcomes before the bad one), and its error had code `not_found` and no
/// `field`. Now the whole batch is checked first: a rejected batch changes nothing, in memory
/// or in the history, and the error is `unknown_task` at `[i].task_id`.
#[tokio::test]
async fn regression_a_rejected_outcome_batch_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app, _) = App::open(ServeOptions::new(&data)).unwrap();
    let (s, v) = call(&app, "POST", "/v1/failures", &failure("t2", 0), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, before) = call(&app, "GET", "/v1/tasks/t2/state", "", None).await;
    assert_ne!(before["state"], "succeeded", "{before}");

    for (body, field) in [
        (
            r#"[{"task_id":"t2","success":true},{"task_id":"nope","success":true}]"#,
            "[1].task_id",
        ),
        (
            r#"[{"task_id":"nope","success":true},{"task_id":"t2","success":true}]"#,
            "[0].task_id",
        ),
        // An id no task can have is a bad field (audit), still with its index.
        (
            r#"[{"task_id":"t2","success":true},{"task_id":"t2","success":true},{"task_id":"../x","success":false}]"#,
            "[2].task_id",
        ),
    ] {
        let (s, v) = call(&app, "POST", "/v1/outcomes", body, None).await;
        let (status, code) = if body.contains("../x") {
            (StatusCode::BAD_REQUEST, "invalid_field")
        } else {
            (StatusCode::NOT_FOUND, "unknown_task")
        };
        assert_eq!(s, status, "{body}: {v}");
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
        let (_, after) = call(&app, "GET", "/v1/tasks/t2/state", "", None).await;
        assert_eq!(after, before, "{body}: the rejected batch changed the task");
    }
    // A single outcome for an unknown task: the same code, its field.
    let (s, v) = call(
        &app,
        "POST",
        "/v1/outcomes",
        r#"{"task_id":"nope","success":true}"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        (&v["error"]["code"], &v["error"]["field"]),
        (&json!("unknown_task"), &json!("task_id"))
    );
    let (_, stats) = call(&app, "GET", "/v1/stats", "", None).await;
    assert_eq!(stats["outcomes"], 0, "{stats}");

    // Nothing of the rejected batches reached the history, before or after a restart.
    app.flush().unwrap();
    drop(app);
    let (app, _) = App::open(ServeOptions::new(&data)).unwrap();
    let (_, after) = call(&app, "GET", "/v1/tasks/t2/state", "", None).await;
    assert_ne!(after["state"], "succeeded", "{after}");
    drop(app);
    let outcomes = stored_outcomes(&data);
    assert_eq!(outcomes, 0);

    // Two verdicts for one action in one batch: a conflict, and nothing of the batch is
    // applied (the first was, before the check saw the second).
    let (app, _) = App::open(ServeOptions::new(&data)).unwrap();
    let (s, v) = call(
        &app,
        "POST",
        "/v1/outcomes",
        r#"[{"task_id":"t2","success":true},{"task_id":"t2","success":false}]"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        (&v["error"]["code"], &v["error"]["field"]),
        (&json!("conflicting_outcome"), &json!("[1].success")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing of it was applied")),
        "{v}"
    );
    let (_, after) = call(&app, "GET", "/v1/tasks/t2/state", "", None).await;
    assert_ne!(after["state"], "succeeded", "{after}");
    // A valid batch is still recorded whole (but for a duplicate: the second outcome for the
    // same action).
    let (s, v) = call(
        &app,
        "POST",
        "/v1/outcomes",
        r#"[{"task_id":"t2","success":true},{"task_id":"t2","success":true}]"#,
        None,
    )
    .await;
    assert_eq!((s, &v["recorded"]), (StatusCode::OK, &json!(1)), "{v}");
    assert_eq!(v["duplicates"], 1, "{v}");
    assert_eq!(
        v["results"],
        json!([{"duplicate": false}, {"duplicate": true}]),
        "{v}"
    );
    let (_, after) = call(&app, "GET", "/v1/tasks/t2/state", "", None).await;
    assert_eq!(after["state"], "succeeded", "{after}");
}

/// Regression (review): `GET /v1/patterns` was evaluated at the latest report time alone, so
/// when failures stopped nothing expired until the next one. It now runs on from there with
/// the server's clock.
#[tokio::test]
async fn patterns_expire_when_failures_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("data"));
    opts.config.patterns.window_s = 1.0;
    let (app, _) = App::open(opts).unwrap();
    for i in 0..3 {
        let (s, v) = call(
            &app,
            "POST",
            "/v1/failures",
            &failure(&format!("p{i}"), 0),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let worker = |v: &Value| {
        v["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "worker" && p["key"] == "w-0")
    };
    let (_, v) = call(&app, "GET", "/v1/patterns", "", None).await;
    assert!(worker(&v), "{v}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, later) = call(&app, "GET", "/v1/patterns", "", None).await;
    assert!(!worker(&later), "{later}");
    assert!(later["at"].as_str().unwrap() > v["at"].as_str().unwrap());
}

/// A review found recovery actions naming the newest checkpoint even after a read found it
/// corrupted (GET .../latest skipped it): the actions now name the one that verified.
#[tokio::test]
async fn actions_stop_naming_a_checkpoint_that_failed_verification() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app, _) = App::open(ServeOptions::new(&data)).unwrap();
    let (s, v) = call(&app, "POST", "/v1/failures", &failure("t1", 0), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let uri = "/v1/tasks/t1/checkpoints";
    let (_, old) = call(&app, "POST", uri, "epoch 1", None).await;
    let (_, new) = call(&app, "POST", uri, "epoch 2", None).await;
    let (old, new) = (
        old["checkpoint_id"].as_str().unwrap(),
        new["checkpoint_id"].as_str().unwrap(),
    );
    let decide = |i| {
        let app = app.clone();
        async move {
            let (s, v) = call(&app, "POST", "/v1/failures", &failure("t1", i), None).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v["action"]["resume_checkpoint"].clone()
        }
    };
    assert_eq!(decide(1).await, json!(new));
    let blob = data.join("checkpoints/t1").join(format!("{new}.bin"));
    // A read that fails for another reason than damage (here the blob's path is a
    // directory; out of file handles, say) changes nothing.
    std::fs::rename(&blob, dir.path().join("aside")).unwrap();
    std::fs::create_dir(&blob).unwrap();
    let resp = latest_checkpoint(&app, "t1").await;
    assert_eq!(resp.headers()["x-checkpoint-id"], old);
    assert_eq!(decide(2).await, json!(new));
    std::fs::remove_dir(&blob).unwrap();
    std::fs::rename(dir.path().join("aside"), &blob).unwrap();
    // The newest blob is damaged on disk; the read skips it and serves the older one.
    std::fs::write(&blob, b"bit rot").unwrap();
    let resp = latest_checkpoint(&app, "t1").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-checkpoint-id"], old);
    assert_eq!(resp.headers()["x-checkpoint-skipped"], "1");
    assert_eq!(decide(3).await, json!(old));
    // Once it reads again (restored from a backup), it is named again.
    std::fs::write(&blob, b"epoch 2").unwrap();
    let resp = latest_checkpoint(&app, "t1").await;
    assert_eq!(resp.headers()["x-checkpoint-id"], new);
    assert_eq!(decide(4).await, json!(new));
    // A checkpoint committed later is named.
    let (_, newer) = call(&app, "POST", uri, "epoch 3", None).await;
    assert_eq!(decide(5).await, newer["checkpoint_id"]);
}

/// Regression: a retried `POST /v1/outcomes` (after a `503 timeout`, which may still have
/// recorded the write) was applied and counted again. A retry is now a duplicate: 200,
/// `"duplicate": true`, nothing applied, logged or counted; a new failure's outcome counts.
#[tokio::test]
async fn regression_a_retried_outcome_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app, _) = App::open(ServeOptions::new(&data)).unwrap();
    let (s, v) = call(&app, "POST", "/v1/failures", &failure("t1", 0), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let body = r#"{"task_id":"t1","success":true}"#;
    let (s, v) = call(&app, "POST", "/v1/outcomes", body, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["recorded"], &v["duplicate"]),
        (&json!(1), &json!(false))
    );
    for _ in 0..2 {
        let (s, v) = call(&app, "POST", "/v1/outcomes", body, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!((&v["recorded"], &v["duplicate"]), (&json!(0), &json!(true)));
    }
    let (s, v) = call(&app, "POST", "/v1/outcomes", &format!("[{body}]"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((&v["recorded"], &v["duplicates"]), (&json!(0), &json!(1)));
    // Regression (library audit): the other verdict was answered as a duplicate and dropped
    // without a word; it is a conflict naming `success`, and the first verdict stands.
    let other = r#"{"task_id":"t1","success":false}"#;
    let (s, v) = call(&app, "POST", "/v1/outcomes", other, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        (&v["error"]["code"], &v["error"]["field"]),
        (&json!("conflicting_outcome"), &json!("success")),
        "{v}"
    );
    let (_, stats) = call(&app, "GET", "/v1/stats", "", None).await;
    assert_eq!(stats["outcomes"], 1, "{stats}");
    // Still a duplicate after a restart; a new failure makes the next outcome count.
    app.flush().unwrap();
    drop(app);
    let (app, _) = App::open(ServeOptions::new(&data)).unwrap();
    let (s, v) = call(&app, "POST", "/v1/outcomes", body, None).await;
    assert_eq!((s, &v["duplicate"]), (StatusCode::OK, &json!(true)), "{v}");
    let (s, v) = call(&app, "POST", "/v1/failures", &failure("t1", 1), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(&app, "POST", "/v1/outcomes", body, None).await;
    assert_eq!((s, &v["duplicate"]), (StatusCode::OK, &json!(false)), "{v}");
    app.flush().unwrap();
    drop(app);
    let outcomes = stored_outcomes(&data);
    assert_eq!(outcomes, 2);
}

/// Regression: a checkpoint upload held the engine's lock while it wrote and fsynced its
/// blob and waited for the WAL, so uploads and decisions queued behind it. Now uploads to one
/// task run side by side with decisions: each gets its own id (identical bodies too), each is
/// in the history, retention keeps the newest five blobs, and the latest one reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checkpoint_uploads_to_one_task_get_distinct_durable_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = App::open(ServeOptions::new(dir.path().join("data"))).unwrap();
    let mut jobs = Vec::new();
    for i in 0..16 {
        let app = app.clone();
        jobs.push(tokio::spawn(async move {
            if i % 4 == 0 {
                (i, call(&app, "POST", "/v1/failures", OOM, None).await)
            } else {
                let uri = "/v1/tasks/t1/checkpoints";
                (i, call(&app, "POST", uri, "same bytes", None).await)
            }
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for job in jobs {
        let (i, (s, v)) = job.await.unwrap();
        if i % 4 == 0 {
            assert_eq!(s, StatusCode::OK, "{v}");
        } else {
            assert_eq!(s, StatusCode::CREATED, "{v}");
            ids.insert(v["checkpoint_id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(ids.len(), 12, "{ids:?}");

    // The newest is the one served.
    let resp = latest_checkpoint(&app, "t1").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let newest = resp.headers()["x-checkpoint-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(resp.headers()["x-checkpoint-skipped"], "0");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"same bytes");
    // Every acknowledged upload is in the history (read once the server's store, which holds
    // the directory's lock, is closed).
    drop(app);
    let store = ParquetStore::open(&dir.path().join("data"), StoreOptions::default()).unwrap();
    let mut live = Vec::new();
    let mut retired = 0;
    for (_, e) in store.entries().unwrap() {
        if let Entry::Checkpoint(c) = e {
            if c.deleted {
                retired += 1;
            } else {
                live.push((c.timestamp, c.checkpoint_id));
            }
        }
    }
    live.sort();
    assert_eq!(live.len(), 12);
    assert!(live.iter().all(|(_, id)| ids.contains(id)));
    assert_eq!(retired, 7);
    let blobs = std::fs::read_dir(dir.path().join("data/checkpoints/t1"))
        .unwrap()
        .count();
    assert_eq!(blobs, 5, "retention keeps five blobs, nothing else");
    assert_eq!(newest, live[11].1);
}

/// Regression: `Authorization: bearer TOKEN` was refused; the scheme is case-insensitive
/// (RFC 7235).
#[tokio::test]
async fn regression_the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("data"));
    opts.token = Some("s3cret".into());
    let (app, _) = App::open(opts).unwrap();
    for (header, want) in [
        ("Bearer s3cret", StatusCode::OK),
        ("bearer s3cret", StatusCode::OK),
        ("BEARER s3cret", StatusCode::OK),
        ("Basic s3cret", StatusCode::UNAUTHORIZED),
        ("bearer wrong", StatusCode::UNAUTHORIZED),
    ] {
        let req = Request::post("/v1/failures")
            .header("authorization", header)
            .body(Body::from(OOM))
            .unwrap();
        let resp = app.router().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), want, "{header}");
    }
}

/// Regression: a failure dated years ahead was accepted, and its time became the report time
/// of pattern detection, the retry budget and the breakers (a permanent burst, windows that
/// no longer expired). Such a failure is refused, alone or in a batch, and changes nothing.
#[tokio::test]
async fn regression_a_failure_dated_far_ahead_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = App::open(ServeOptions::new(dir.path().join("data"))).unwrap();
    let ahead = faultline::Timestamp::from_secs_f64(
        faultline::Timestamp::now().as_micros() as f64 / 1e6 + 10.0 * 365.0 * 86_400.0,
    );
    let future = OOM.replace(
        r#""task_id":"t1","#,
        &format!(r#""task_id":"t1","timestamp":"{ahead}","#),
    );
    let (s, v) = call(&app, "POST", "/v1/failures", &future, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["field"], "timestamp", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("ahead of the server's clock"), "{v}");
    let batch = format!("[{OOM},{future}]");
    let (s, v) = call(&app, "POST", "/v1/failures", &batch, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["field"], "[1].timestamp", "{v}");
    // Nothing was decided: the task's first failure is still its first attempt.
    let (s, v) = call(&app, "POST", "/v1/failures", OOM, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["action"]["attempt"], 1, "{v}");
}

/// Regression: a client's retry of a failure (same record, its answer lost) was decided
/// again: counted as a second attempt, the ladder advanced.
#[tokio::test]
async fn regression_a_retried_failure_gets_the_same_action() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = App::open(ServeOptions::new(dir.path().join("data"))).unwrap();
    let dated = OOM.replace(
        r#""task_id":"t1","#,
        r#""task_id":"t1","timestamp":"2026-01-01T00:00:00Z","#,
    );
    let (_, first) = call(&app, "POST", "/v1/failures", &dated, None).await;
    let (s, again) = call(&app, "POST", "/v1/failures", &dated, None).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(first["action"], again["action"]);
    assert_eq!(again["action"]["attempt"], 1);
    // The answer says it is a retry's (serve audit: nothing did).
    assert_eq!(
        (&first["duplicate"], &again["duplicate"]),
        (&json!(false), &json!(true))
    );
    // An audit: the retry's answer was counted as another decision.
    let (_, stats) = call(&app, "GET", "/v1/stats", "", None).await;
    assert_eq!(stats["decisions"], 1, "{stats}");
    // The recovery failed and the task failed again at the same instant: a new failure.
    let (s, v) = call(
        &app,
        "POST",
        "/v1/outcomes",
        r#"{"task_id":"t1","success":false}"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, next) = call(&app, "POST", "/v1/failures", &dated, None).await;
    assert_eq!(next["action"]["attempt"], 2, "{next}");
}

/// After a restart, a retried failure gets the answer it got before, delay digits included.
/// (An audit found 8 of 51 delays changed in their last digit across a server's SIGTERM and
/// restart, 1.3530185393755065 → 1.3530185393755063, fixed by serde_json's exact float round
/// trips; that reproduction is a server's, checked by hand. This in-process test passes
/// without the fix too: it guards the behaviour, it does not reproduce that bug.)
#[tokio::test]
async fn regression_a_retried_failure_gets_the_same_delay_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Recent: a task idle for a week is forgotten at the next open, and then decided afresh
    // (the same answer for another reason).
    let at = chrono::Utc::now().timestamp() - 60;
    let body = |i: usize| {
        format!(
            r#"{{"task_id":"fp{i}","worker_id":"wf{i}","error":{{"message":"segfault"}},"timestamp":{at}}}"#
        )
    };
    let mut before = Vec::new();
    {
        let (app, _) = App::open(ServeOptions::new(&data)).unwrap();
        for i in 0..40 {
            let (s, v) = call(&app, "POST", "/v1/failures", &body(i), None).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            before.push(v["action"].clone());
        }
        // A stop flushes the log into Parquet, whose rows the next open reads back.
        app.flush().unwrap();
    }
    let (app, _) = App::open(ServeOptions::new(&data)).unwrap();
    let mut delays = 0;
    for (i, first) in before.iter().enumerate() {
        let (_, again) = call(&app, "POST", "/v1/failures", &body(i), None).await;
        assert_eq!(again["action"]["attempt"], 1, "a retry: {again}");
        assert_eq!(
            again["action"].to_string(),
            first.to_string(),
            "task fp{i}, after the restart"
        );
        delays += usize::from(first["delay_s"].as_f64().is_some_and(|d| d.fract() != 0.0));
    }
    assert!(
        delays > 10,
        "the failures must get jittered delays: {delays}"
    );
}

/// Regression (audit): a config nested 123 levels deep was acknowledged (200) and lost at the
/// next replay of the write-ahead log; it is refused now, naming the field, and nothing is
/// logged.
#[tokio::test]
async fn regression_a_config_too_deep_to_replay_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = App::open(ServeOptions::new(dir.path().join("data"))).unwrap();
    let body = format!(
        r#"{{"task_id":"deep","worker_id":"w","error":{{"message":"x"}},"task":{{"config":{{"extra":{}{}}}}}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let (s, v) = call(&app, "POST", "/v1/failures", &body, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["field"], "task.config", "{v}");
    let (s, _) = call(&app, "GET", "/v1/tasks/deep/state", "", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Regression (audit): the served OpenAPI document used 3.1's `"type": [.., "null"]` in a
/// 3.0.3 document, and its RecoveryAction left out fields every answer carries. Every field of
/// a real answer is in the schema, every required one is in the answer, and no `type` is a
/// list.
#[tokio::test]
async fn regression_the_openapi_schema_matches_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = App::open(ServeOptions::new(dir.path().join("data"))).unwrap();
    let (_, doc) = call(&app, "GET", "/openapi.json", "", None).await;
    assert_eq!(doc["openapi"], "3.0.3");
    fn no_type_lists(v: &Value, at: &str) {
        match v {
            Value::Object(o) => {
                if let Some(t) = o.get("type") {
                    assert!(!t.is_array(), "a type list at {at}: {t}");
                }
                for (k, x) in o {
                    no_type_lists(x, &format!("{at}/{k}"));
                }
            }
            Value::Array(a) => a.iter().for_each(|x| no_type_lists(x, at)),
            _ => {}
        }
    }
    no_type_lists(&doc, "");
    let schema = &doc["components"]["schemas"]["RecoveryAction"];
    let (s, v) = call(&app, "POST", "/v1/failures", OOM, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let action = v["action"].as_object().unwrap();
    for k in action.keys() {
        assert!(schema["properties"].get(k).is_some(), "schema lacks {k}");
    }
    for k in schema["required"].as_array().unwrap() {
        assert!(action.contains_key(k.as_str().unwrap()), "answer lacks {k}");
    }
    // Regression (serve audit): a single decision matched both branches of the answer's
    // `oneOf` (the batch's had no required field), which validators refuse; and the state
    // PUT's 409 stale_state was not listed.
    let answer = &doc["paths"]["/v1/failures"]["post"]["responses"]["200"]["content"]
        ["application/json"]["schema"]["oneOf"];
    assert_eq!(answer[1]["required"], json!(["results"]), "{answer}");
    assert!(
        doc["paths"]["/v1/tasks/{id}/state"]["put"]["responses"]
            .get("409")
            .is_some(),
        "no 409 for the state PUT"
    );
    // Every operation lists the 405 every path answers to another method.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if method != "parameters" {
                assert!(
                    op["responses"].get("405").is_some(),
                    "{method} {path}: no 405"
                );
            }
        }
    }
}

/// Regression (audit): an outcome for a task with no action (its state set, nothing decided)
/// flipped it to succeeded and was logged and counted; an invalid task id in an outcome was
/// answered 404 "unknown task". Now 409 `no_action` and 400 `invalid_field`, nothing logged.
#[tokio::test]
async fn regression_an_outcome_needs_an_action_and_a_valid_task_id() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = App::open(ServeOptions::new(dir.path().join("data"))).unwrap();
    let state = r#"{"state":"running"}"#;
    let (s, v) = call(&app, "PUT", "/v1/tasks/idle/state", state, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let outcome = r#"{"task_id":"idle","success":true}"#;
    let (s, v) = call(&app, "POST", "/v1/outcomes", outcome, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        (&v["error"]["code"], &v["error"]["field"]),
        (&json!("no_action"), &json!("task_id")),
        "{v}"
    );
    let (_, state) = call(&app, "GET", "/v1/tasks/idle/state", "", None).await;
    assert_eq!(state["state"], "running", "{state}");
    for bad in ["", "a b"] {
        let body = format!(r#"{{"task_id":"{bad}","success":true}}"#);
        let (s, v) = call(&app, "POST", "/v1/outcomes", &body, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            (&v["error"]["code"], &v["error"]["field"]),
            (&json!("invalid_field"), &json!("task_id")),
            "{v}"
        );
    }
    let (_, stats) = call(&app, "GET", "/v1/stats", "", None).await;
    assert_eq!(stats["outcomes"], 0, "{stats}");
}

/// Every bad input gets a 4xx JSON error naming the problem, and the server keeps serving.
#[test]
fn bad_input_battery_gets_json_4xx_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--token", "tok"]);
    let mut c = server.client();
    c.token = Some("tok".into());
    let big = format!(
        r#"{{"task_id":"t","worker_id":"w","error":{{"message":"{}"}}}}"#,
        "x".repeat(10 << 20)
    );
    // (what, path, body, status, code, field)
    type Case<'a> = (&'a str, &'a str, String, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("malformed JSON", "/v1/failures", r#"{"task_id": "t1", "worker_id"#.into(), 400, "invalid_body", None),
        ("not JSON at all", "/v1/failures", "hello".into(), 400, "invalid_body", Some("body")),
        ("empty body", "/v1/outcomes", String::new(), 400, "invalid_body", Some("body")),
        ("wrong type", "/v1/failures", r#"{"task_id":"t1","worker_id":"w1","error":{"message":42}}"#.into(), 400, "invalid_body", Some("error.message")),
        ("wrong type in a batch", "/v1/failures", format!("[{},{}]", failure("ok1", 0), r#"{"task_id":"t2","worker_id":"w1","error":{"message":"x"},"hardware":{"class":7}}"#), 400, "invalid_body", Some("[1].hardware.class")),
        ("unknown field", "/v1/failures", r#"{"task_id":"t1","worker_id":"w1","error":{"message":"x"},"colour":"red"}"#.into(), 400, "invalid_body", Some("colour")),
        ("unknown hardware class", "/v1/failures", r#"{"task_id":"t1","worker_id":"w1","hardware":{"class":"QPU"},"error":{"message":"x"}}"#.into(), 400, "invalid_body", Some("hardware.class")),
        ("missing message", "/v1/failures", r#"{"task_id":"t1","worker_id":"w1","error":{}}"#.into(), 400, "invalid_body", Some("error.message")),
        ("missing error", "/v1/failures", r#"{"task_id":"t1","worker_id":"w1"}"#.into(), 400, "invalid_body", Some("error")),
        ("missing error in a batch", "/v1/failures", format!(r#"[{},{{"task_id":"t1","worker_id":"w1"}}]"#, failure("ok2", 0)), 400, "invalid_body", Some("[1].error")),
        ("outcome missing success", "/v1/outcomes", r#"{"task_id":"t1"}"#.into(), 400, "invalid_body", Some("success")),
        ("id with ../", "/v1/failures", r#"{"task_id":"../../etc/passwd","worker_id":"w1","error":{"message":"x"}}"#.into(), 400, "invalid_field", Some("task_id")),
        ("10 MB body", "/v1/failures", big, 413, "body_too_large", Some("body")),
        ("outcome wrong type", "/v1/outcomes", r#"{"task_id":"t1","success":"yes"}"#.into(), 400, "invalid_body", Some("success")),
        ("outcome unknown field", "/v1/outcomes", r#"{"task_id":"t1","success":true,"mood":1}"#.into(), 400, "invalid_body", Some("mood")),
        ("bad state", "/v1/tasks/t1/state", r#"{"state":"sleeping"}"#.into(), 400, "invalid_body", Some("state")),
    ];
    for (what, path, body, status, code, field) in &cases {
        let method = if path.ends_with("/state") {
            "PUT"
        } else {
            "POST"
        };
        let r = c
            .send(method, path, body.as_bytes())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(r.status, *status, "{what}: {}", r.body);
        let v = r.json();
        assert_eq!(v["error"]["code"], *code, "{what}: {v}");
        assert_eq!(v["error"]["status"], *status, "{what}: {v}");
        if let Some(f) = field {
            assert_eq!(v["error"]["field"], *f, "{what}: {v}");
        }
        assert!(
            !v["error"]["message"].as_str().unwrap().is_empty(),
            "{what}"
        );
        assert_eq!(
            c.get("/healthz").status,
            200,
            "server stopped serving after {what}"
        );
    }
    // Ids with ../ in the path, percent-encoded.
    let r = c.get("/v1/tasks/..%2F..%2Fetc/state");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "id");
    let r = c
        .send("POST", "/v1/tasks/..%2Fx/checkpoints", b"data")
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    // An empty checkpoint is refused, naming the body (an audit: it was stored, and actions
    // then named a checkpoint that resumes from nothing); nothing is stored.
    let r = c
        .send("POST", "/v1/tasks/t-empty/checkpoints", b"")
        .unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (400, json!("body")),
        "{}",
        r.body
    );
    assert_eq!(c.get("/v1/tasks/t-empty/checkpoints/latest").status, 404);
    // Missing and wrong token.
    let mut anon = server.client();
    let r = anon.post("/v1/failures", OOM);
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
    anon.token = Some("wrong".into());
    let r = anon.post("/v1/failures", OOM);
    assert_eq!(r.status, 401);
    assert_eq!(anon.post("/v1/admin/reload", "").status, 401);
    // Reads need no token; the server still decides.
    assert_eq!(anon.get("/v1/stats").status, 200);
    let r = c.post("/v1/failures", OOM);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["action"]["strategy"], "REDUCED_BATCH_SIZE");
    assert!(server.stop().success());
}

/// kill -9 of the server under load, then restart: every acknowledged failure and outcome
/// is in the history exactly once.
#[test]
fn acknowledged_requests_survive_kill_9_under_load() {
    const ROUNDS: usize = 6;
    const CLIENTS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
    let mut acked_failures: Vec<String> = Vec::new();
    let mut acked_outcomes: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        let mut server = Server::start(&data, &["--flush-interval", "0.2"]);
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let sent = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|k| {
                let (stop, got, sent) = (stop.clone(), got.clone(), sent.clone());
                let mut c = server.client();
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let task = format!("r{round}-c{k}-{i}");
                        match c.send("POST", "/v1/failures", failure(&task, i).as_bytes()) {
                            Ok(r) if r.status == 200 => got.lock().unwrap().0.push(task.clone()),
                            _ => break,
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                        if i % 3 == 0 {
                            let o = format!(r#"{{"task_id":"{task}","success":true}}"#);
                            match c.send("POST", "/v1/outcomes", o.as_bytes()) {
                                Ok(r) if r.status == 200 => got.lock().unwrap().1.push(task),
                                _ => break,
                            }
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        // Kill at a random moment once requests flow (mid-request, mid-flush).
        let t0 = Instant::now();
        while sent.load(Ordering::Relaxed) < 20 && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..700)));
        server.child.kill().expect("SIGKILL");
        server.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        let (f, o) = std::mem::take(&mut *got.lock().unwrap());
        acked_failures.extend(f);
        acked_outcomes.extend(o);
    }
    // Restart, stop gracefully (flushes), then read the history.
    let server = Server::start(&data, &[]);
    let mut c = server.client();
    assert_eq!(c.get("/healthz").status, 200);
    assert!(server.stop().success());
    let (failures, actions, outcomes) = crate::util::rows_per_task(&data);
    let lost: Vec<&String> = acked_failures
        .iter()
        .filter(|t| failures.get(*t) != Some(&1) || actions.get(*t) != Some(&1))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged failures lost or duplicated: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let lost: Vec<&String> = acked_outcomes
        .iter()
        .filter(|t| outcomes.get(*t) != Some(&1))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged outcomes lost or duplicated: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(failures.values().all(|&n| n == 1), "a duplicated failure");
    eprintln!(
        "api kill -9: {ROUNDS} rounds, {} failures and {} outcomes acknowledged, 0 lost",
        acked_failures.len(),
        acked_outcomes.len()
    );
    assert!(
        acked_failures.len() >= ROUNDS * 10,
        "too few acknowledgements: {}",
        acked_failures.len()
    );
}

/// Hot reload under load: no request fails while the model switches.
#[test]
fn reload_under_load_drops_no_request() {
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--model", model.to_str().unwrap(), "--token", "t"],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..3)
        .map(|k| {
            let (stop, failed, ok) = (stop.clone(), failed.clone(), ok.clone());
            let mut c = server.client();
            c.token = Some("t".into());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    match c.send(
                        "POST",
                        "/v1/failures",
                        failure(&format!("c{k}-{i}"), i).as_bytes(),
                    ) {
                        Ok(r) if r.status == 200 && r.json()["model"].is_string() => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let mut admin = server.client();
    admin.token = Some("t".into());
    const RELOADS: usize = 5;
    for _ in 0..RELOADS {
        std::thread::sleep(Duration::from_millis(150));
        let r = admin.post("/v1/admin/reload", "");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["reloaded"], true);
    }
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let stats = admin.get("/v1/stats").json();
    assert_eq!(stats["reloads"], RELOADS as u64);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during reloads"
    );
    assert!(ok.load(Ordering::Relaxed) > 0);
    // A bad model directory is refused and the old model stays.
    let r = admin.post("/v1/admin/reload", r#"{"model":"/nonexistent/model"}"#);
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(admin.post("/v1/failures", OOM).status, 200);
    // A batch is annotated item by item (off the async threads): the same message, the same
    // annotation under the model's name.
    let batch: Vec<String> = (0..12)
        .map(|i| failure(&format!("batch-{i}"), 4 * i))
        .collect();
    let r = admin.post("/v1/failures", &format!("[{}]", batch.join(",")));
    assert_eq!(r.status, 200, "{}", r.body);
    let results = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 12);
    for x in &results {
        assert!(x["model"].is_string(), "{x}");
        assert!(x["annotation"].is_object(), "{x}");
    }
    assert!(results[0]["annotation"]["cluster"].is_i64(), "{results:?}");
    assert_eq!(results[0]["annotation"], results[1]["annotation"]);
    assert!(server.stop().success());
}

/// A request slower than the timeout is answered 503 with a JSON error (the write itself may
/// still become durable: the timeout only stops the wait).
#[tokio::test]
async fn a_request_over_the_timeout_gets_a_json_503() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("data"));
    opts.timeout = Duration::from_nanos(1);
    // A group commit that waits makes every acknowledged write slower than 1 ns. Not 5 ms:
    // a test thread descheduled that long between logging and its first wait found the
    // fsync done and answered 200 (seen under parallel test load).
    opts.store.group_wait = Duration::from_millis(250);
    let (app, _) = App::open(opts).unwrap();
    let (s, v) = call(&app, "POST", "/v1/failures", OOM, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "timeout");
    // Reads that finish at once still answer.
    let (s, _) = call(&app, "GET", "/openapi.json", "", None).await;
    assert_eq!(s, StatusCode::OK);
}

/// Regression: a SIGTERM that arrives as soon as the server has said where it listens stops
/// it gracefully (exit status 0, history flushed). The signal handlers used to be installed
/// only once serving had begun, so an early SIGTERM killed the process instead — seen as a
/// failed graceful stop right after a restart in `acknowledged_requests_survive_kill_9_under_load`.
#[test]
fn sigterm_right_after_listening_is_a_graceful_stop() {
    for _ in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&dir.path().join("data"), &[]);
        let status = server.stop();
        assert!(status.success(), "{status:?}");
    }
}

/// Regressions of one audit of the HTTP API, each answered now with the status, code and
/// field a client can act on: a token configured with a trailing newline (from a secrets
/// file) locked out every client; a path id that does not decode got a bare "bad request";
/// a failed reload and a repeated key named no field; an array where an object belongs was
/// read as the object (`["succeeded"]` set a task's state); a state change dated before the
/// task's latest replaced it.
#[tokio::test]
async fn regression_serve_audit_answers_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("data"));
    opts.token = Some("s3cret\n".into());
    let (app, _) = App::open(opts).unwrap();
    let tok = Some("s3cret");
    let (s, v) = call(&app, "POST", "/v1/failures", OOM, tok).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let err = |v: &Value| (v["error"]["code"].clone(), v["error"]["field"].clone());
    // A path id that is not UTF-8 once decoded.
    let (s, v) = call(&app, "GET", "/v1/tasks/%FF%FE/state", "", None).await;
    assert_eq!(
        (s, err(&v)),
        (
            StatusCode::BAD_REQUEST,
            (json!("invalid_field"), json!("id"))
        ),
        "{v}"
    );
    // A model directory that is not there.
    let (s, v) = call(
        &app,
        "POST",
        "/v1/admin/reload",
        r#"{"model":"/nonexistent"}"#,
        tok,
    )
    .await;
    assert_eq!(err(&v).1, json!("model"), "{s} {v}");
    // A key given twice, at the top and inside a batch element.
    let twice = r#"{"task_id":"a","worker_id":"w","error":{"message":"x"},"task_id":"b"}"#;
    let (s, v) = call(&app, "POST", "/v1/failures", twice, tok).await;
    assert_eq!(
        (s, err(&v)),
        (
            StatusCode::BAD_REQUEST,
            (json!("invalid_body"), json!("task_id"))
        ),
        "{v}"
    );
    let batch = format!("[{OOM},{twice}]");
    let (_, v) = call(&app, "POST", "/v1/failures", &batch, tok).await;
    assert_eq!(err(&v).1, json!("[1].task_id"), "{v}");
    // Arrays where objects belong: refused, nothing changed.
    let (s, v) = call(&app, "PUT", "/v1/tasks/t1/state", r#"["succeeded"]"#, tok).await;
    assert_eq!(
        (s, err(&v).0),
        (StatusCode::BAD_REQUEST, json!("invalid_body")),
        "{v}"
    );
    let (s, v) = call(&app, "POST", "/v1/outcomes", r#"[["t1",true]]"#, tok).await;
    assert_eq!(
        (s, err(&v)),
        (
            StatusCode::BAD_REQUEST,
            (json!("invalid_body"), json!("[0]"))
        ),
        "{v}"
    );
    let (_, v) = call(&app, "GET", "/v1/tasks/t1/state", "", None).await;
    assert_ne!(v["state"], "succeeded", "{v}");
    let (_, stats) = call(&app, "GET", "/v1/stats", "", None).await;
    assert_eq!(stats["outcomes"], 0, "{stats}");
    // A state change older than the task's latest: 409, the newer state stays.
    let newer = r#"{"state":"succeeded","timestamp":"2026-01-02T00:20:00Z"}"#;
    let older = r#"{"state":"running","timestamp":"2026-01-02T00:10:00Z"}"#;
    let (s, v) = call(&app, "PUT", "/v1/tasks/o1/state", newer, tok).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(&app, "PUT", "/v1/tasks/o1/state", older, tok).await;
    assert_eq!(
        (s, err(&v)),
        (
            StatusCode::CONFLICT,
            (json!("stale_state"), json!("timestamp"))
        ),
        "{v}"
    );
    let (_, v) = call(&app, "GET", "/v1/tasks/o1/state", "", None).await;
    assert_eq!(
        (&v["state"], &v["last_state_at"]),
        (&json!("succeeded"), &json!("2026-01-02T00:20:00Z")),
        "{v}"
    );
    let (s, v) = call(
        &app,
        "PUT",
        "/v1/tasks/o1/state",
        newer.replace("succeeded", "running").as_str(),
        tok,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "a change at the same time applies: {v}");
}

/// Regression (audit): a client that never finished sending its headers kept a server that
/// had been told to stop alive for as long as it stayed connected. The stop now waits for the
/// requests in flight at most their timeout and a little more, then closes what is open;
/// what was acknowledged before is flushed.
#[test]
fn regression_a_half_sent_request_does_not_hold_up_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &["--timeout", "5"]);
    let r = server.client().post("/v1/failures", OOM);
    assert_eq!(r.status, 200, "{}", r.body);
    let mut slow = std::net::TcpStream::connect(server.addr).unwrap();
    std::io::Write::write_all(&mut slow, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = server.child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    // Generous: the server gives open connections its 5 s timeout and 2 s more.
    let mut status = None;
    for _ in 0..600 {
        if let Some(s) = server.child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = status.expect("the server was still running 60 s after SIGTERM");
    assert!(status.success(), "{status:?}");
    drop(slow);
    let (failures, _, _) = crate::util::rows_per_task(&data);
    assert_eq!(failures.values().sum::<usize>(), 1);
}

/// Regression (audit): a connection that never finished its headers was held open for as
/// long as the client liked, the server running (one task and one socket each: a few hundred
/// such clients hold a server's descriptors). It now has the request timeout to send them and
/// is closed otherwise, as is an idle kept-alive connection; the server keeps serving.
#[test]
fn regression_a_half_sent_request_is_closed_after_the_timeout() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--timeout", "1"]);
    let mut slow = std::net::TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // A guard against a hang, not a measurement: the server closes it after about 1 s.
    slow.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut answer = Vec::new();
    let read = slow.read_to_end(&mut answer);
    assert!(
        read.is_ok(),
        "the half-sent request's connection was still open after 60 s: {read:?}"
    );
    // A finished request on a kept-alive connection, then silence: closed as well.
    let mut idle = std::net::TcpStream::connect(server.addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    idle.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut answer = Vec::new();
    let read = idle.read_to_end(&mut answer);
    assert!(
        read.is_ok(),
        "the idle connection was still open after 60 s: {read:?}"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let r = server.client().post("/v1/failures", OOM);
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Regression (an audit found it): `POST /v1/outcomes` accepted and recorded an outcome with
/// a negative `time_to_recovery_s` or `cost` (`-1e308`), while a negative `memory_gib` on a
/// failure was refused. Such an outcome is now a 400 naming the field, alone or in a batch
/// (which is then refused whole); zero is fine.
#[tokio::test]
async fn regression_an_outcome_with_a_negative_number_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = App::open(ServeOptions::new(dir.path().join("data"))).unwrap();
    let (s, v) = call(&app, "POST", "/v1/failures", &failure("t", 0), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for (body, field) in [
        (
            r#"{"task_id":"t","success":true,"time_to_recovery_s":-5,"cost":-1e308}"#,
            "time_to_recovery_s",
        ),
        (r#"{"task_id":"t","success":true,"cost":-1e308}"#, "cost"),
        (
            r#"[{"task_id":"t","success":true},{"task_id":"t","success":false,"cost":-1}]"#,
            "[1].cost",
        ),
    ] {
        let (s, v) = call(&app, "POST", "/v1/outcomes", body, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["code"], "invalid_field", "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    let (_, stats) = call(&app, "GET", "/v1/stats", "", None).await;
    assert_eq!(stats["outcomes"], 0, "{stats}");
    let zero = r#"{"task_id":"t","success":true,"time_to_recovery_s":0,"cost":0}"#;
    let (s, v) = call(&app, "POST", "/v1/outcomes", zero, None).await;
    assert_eq!((s, &v["recorded"]), (StatusCode::OK, &json!(1)), "{v}");
}

/// Regression (an audit found it): when every checkpoint of a task failed verification
/// (content differs from its hash, blob gone), `GET .../checkpoints/latest` answered 404 "no
/// checkpoint", as for a task that never stored one. It is now a 409 `checkpoint_damaged`
/// naming how many were skipped; a task without checkpoints keeps its 404.
#[tokio::test]
async fn regression_a_task_whose_every_checkpoint_is_damaged_is_not_a_404() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app, _) = App::open(ServeOptions::new(&data)).unwrap();
    for task in ["t1", "t2"] {
        let (s, v) = call(&app, "POST", "/v1/failures", &failure(task, 0), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let uri = "/v1/tasks/t1/checkpoints";
    let (_, old) = call(&app, "POST", uri, "epoch 1", None).await;
    let (_, new) = call(&app, "POST", uri, "epoch 2", None).await;
    let blob = |v: &Value| {
        data.join("checkpoints/t1")
            .join(format!("{}.bin", v["checkpoint_id"].as_str().unwrap()))
    };
    std::fs::write(blob(&new), b"bit rot").unwrap();
    std::fs::remove_file(blob(&old)).unwrap();
    let (s, v) = call(&app, "GET", "/v1/tasks/t1/checkpoints/latest", "", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "checkpoint_damaged", "{v}");
    assert_eq!(v["error"]["status"], 409, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("all 2 skipped"), "{v}");
    // No checkpoint at all (a known task, an unknown one): still 404.
    for task in ["t2", "never-seen"] {
        let (s, v) = call(
            &app,
            "GET",
            &format!("/v1/tasks/{task}/checkpoints/latest"),
            "",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{task}: {v}");
        assert_eq!(v["error"]["code"], "not_found", "{task}: {v}");
    }
    // The OpenAPI description lists the 409.
    let (_, doc) = call(&app, "GET", "/openapi.json", "", None).await;
    let responses = &doc["paths"]["/v1/tasks/{id}/checkpoints/latest"]["get"]["responses"];
    assert!(responses.get("409").is_some(), "{responses}");
}

/// Regression (an audit found it): `serve --body-limit 0` started, and then answered every
/// POST with 413. It is refused at startup (exit 2, naming the flag), as a zero or negative
/// --timeout or --flush-interval is, before the data directory is touched.
#[test]
fn regression_serve_refuses_a_body_limit_of_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (flag, value) in [
        ("--body-limit", "0"),
        ("--timeout", "0"),
        ("--timeout", "-1"),
        ("--timeout", "1e300"),
        ("--flush-interval", "0"),
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(["serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(&data)
            .arg(format!("{flag}={value}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server that started anyway is stopped, and the test fails (rather than hangs).
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("{flag} {value}: the server started");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let o = child.wait_with_output().unwrap();
        crate::util::refused(&o, flag);
        assert!(
            !data.exists(),
            "{flag} {value}: the data directory was created"
        );
    }
}

/// Runs `serve` with its stdout and stderr going to `out` and `err` until it has said where it
/// listens, then stops it (SIGTERM); returns the two as text (the same text for one file).
fn serve_output(data: &std::path::Path, dir: &std::path::Path, combined: bool) -> (String, String) {
    use std::process::{Command, Stdio};
    let (out, err) = (dir.join("out.log"), dir.join("err.log"));
    let out_file = std::fs::File::create(&out).unwrap();
    let err_file = if combined {
        out_file.try_clone().unwrap()
    } else {
        std::fs::File::create(&err).unwrap()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(&out)
        .unwrap()
        .contains("listening on")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    (read(&out), if combined { read(&out) } else { read(&err) })
}

/// Regression (an audit found it): `serve` printed "listening on ..." to stdout and to stderr,
/// so a log taking both (`serve > log 2>&1`) showed it twice. It is now printed once there;
/// with stdout and stderr apart, stdout (read by scripts) and stderr (the log) each have it.
#[test]
fn regression_the_listening_line_shows_once_in_a_combined_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (log, _) = serve_output(&data, dir.path(), true);
    assert_eq!(log.matches("listening on http://").count(), 1, "{log}");
    let (out, err) = serve_output(&data, dir.path(), false);
    assert_eq!(out.matches("listening on http://").count(), 1, "{out}");
    assert_eq!(err.matches("listening on http://").count(), 1, "{err}");
}

/// A flush of the history into Parquet that fails (here: the history directory replaced by a
/// file, as a disk gone read-only or full would fail it) shows in `/healthz` as "degraded"
/// with the error, and in `/metrics`; the next flush that succeeds clears it, and nothing
/// acknowledged meanwhile is lost. Before, the periodic flush only printed a warning, every
/// 50 ms while entries were pending, and `/healthz` said "ok".
#[tokio::test]
async fn regression_a_failing_flush_shows_in_healthz_until_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app, _) = App::open(ServeOptions::new(data.clone())).unwrap();
    let (s, v) = call(&app, "POST", "/v1/failures", &failure("f1", 0), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let outcome = r#"{"task_id": "f1", "success": true, "time_to_recovery_s": 1.0}"#;
    let (s, v) = call(&app, "POST", "/v1/outcomes", outcome, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let history = data.join("history");
    let aside = dir.path().join("history-aside");
    std::fs::rename(&history, &aside).unwrap();
    std::fs::write(&history, b"not a directory").unwrap();
    let a = app.clone();
    let failed = tokio::task::spawn_blocking(move || a.flush())
        .await
        .unwrap();
    assert!(failed.is_err(), "the flush must fail: {failed:?}");

    let (s, v) = call(&app, "GET", "/healthz", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "degraded", "{v}");
    assert_eq!(v["flush_failures_total"], 1, "{v}");
    assert_eq!(v["flush_error"]["failing"], 1, "{v}");
    assert!(
        v["flush_error"]["since_unix_s"].as_f64().unwrap() > 1.7e9,
        "{v}"
    );
    let message = v["flush_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("history"),
        "the error names the path: {message}"
    );
    let (_, m) = call(&app, "GET", "/metrics", "", None).await;
    let text = m.as_str().unwrap();
    assert!(
        text.contains("faultline_flush_failures_total 1\n"),
        "{text}"
    );
    assert!(text.contains("faultline_flush_failing 1\n"), "{text}");

    // The disk is back: the next flush succeeds and clears the report; the count stays.
    std::fs::remove_file(&history).unwrap();
    std::fs::rename(&aside, &history).unwrap();
    let a = app.clone();
    tokio::task::spawn_blocking(move || a.flush())
        .await
        .unwrap()
        .unwrap();
    let (_, v) = call(&app, "GET", "/healthz", "", None).await;
    assert_eq!(v["status"], "ok", "{v}");
    assert!(v.get("flush_error").is_none(), "{v}");
    assert_eq!(v["flush_failures_total"], 1, "{v}");
    let (_, m) = call(&app, "GET", "/metrics", "", None).await;
    assert!(m.as_str().unwrap().contains("faultline_flush_failing 0\n"));
    drop(app);
    assert_eq!(
        stored_outcomes(&data),
        1,
        "the outcome acknowledged before is kept"
    );
}

/// An app over `data` whose write and admin endpoints need a token, and that token.
fn with_token(data: &std::path::Path) -> (App, Option<&'static str>) {
    let mut opts = ServeOptions::new(data);
    opts.token = Some("s3cret".into());
    (App::open(opts).unwrap().0, Some("s3cret"))
}

/// Regression (nightly-train audit): a reader of the Parquet history beside a running server
/// (`faultline train`) missed what the write-ahead log still held, up to a flush interval, and
/// the `compact` the warning suggested is refused while the server holds the directory.
/// `POST /v1/admin/flush` writes it into the parts now (an admin endpoint: the token applies).
#[tokio::test]
async fn an_admin_flush_puts_every_acknowledged_record_in_the_parquet_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app, t) = with_token(&data);
    for i in 0..3 {
        let (s, v) = call(
            &app,
            "POST",
            "/v1/failures",
            &failure(&format!("f{i}"), 0),
            t,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let in_parts = || {
        let flushed = faultline::store::flushed_seq(&data).unwrap();
        faultline::store::committed_rows(&data, faultline::store::Table::Failures, flushed)
            .map_or(0, |rows| rows.len())
    };
    assert_eq!(in_parts(), 0, "the periodic flush has not run yet");
    let (s, v) = call(&app, "POST", "/v1/admin/flush", "", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, v) = call(&app, "POST", "/v1/admin/flush", "", t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["flushed"], true, "{v}");
    assert!(v["flushed_seq"].as_u64().is_some_and(|n| n >= 3), "{v}");
    assert_eq!(in_parts(), 3);
    let (s, _) = call(&app, "GET", "/v1/admin/flush", "", t).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}

/// The parts of `table` under `data`, per partition directory: (all, written by a flush —
/// not by a compaction, whose parts' names end in `-c`).
fn parts_per_partition(data: &std::path::Path, table: &str) -> HashMap<String, (usize, usize)> {
    let mut out = HashMap::new();
    let Ok(days) = std::fs::read_dir(data.join("history").join(table)) else {
        return out;
    };
    for day in days {
        let day = day.unwrap().path();
        let names: Vec<String> = std::fs::read_dir(&day)
            .map(|d| {
                d.filter_map(|f| f.ok())
                    .map(|f| f.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".parquet") && !n.starts_with('_'))
                    .collect()
            })
            .unwrap_or_default();
        let flushed = names.iter().filter(|n| !n.ends_with("-c.parquet")).count();
        out.insert(day.display().to_string(), (names.len(), flushed));
    }
    out
}

/// `POST /v1/admin/compact` merges the parts the flushes wrote while the server runs
/// (`faultline compact` is refused while it holds the directory): an admin endpoint, the
/// token applies; every record is in the history once afterwards, and requests go on.
#[tokio::test]
async fn an_admin_compact_merges_the_parts_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app, t) = with_token(&data);
    // One day's failures (the server's clock would split them at midnight).
    let dated =
        |task: &str| failure(task, 0).replacen('{', r#"{"timestamp":"2026-01-01T12:00:00Z","#, 1);
    for i in 0..3 {
        let body = dated(&format!("f{i}"));
        let (s, v) = call(&app, "POST", "/v1/failures", &body, t).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = call(&app, "POST", "/v1/admin/flush", "", t).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let before = parts_per_partition(&data, "failures");
    assert_eq!(
        before.values().copied().collect::<Vec<_>>(),
        [(3, 3)],
        "{before:?}"
    );
    // Logged, not yet flushed: the compaction flushes it first.
    let (s, v) = call(&app, "POST", "/v1/failures", &dated("f3"), t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(&app, "POST", "/v1/admin/compact", "", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, v) = call(&app, "POST", "/v1/admin/compact", "", t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["compacted"], true, "{v}");
    assert_eq!(v["set_aside"], json!([]), "{v}");
    assert_eq!(v["gone_acknowledged"], 0, "{v}");
    // Failures and actions: four parts each (three flushed, one by the compaction's flush),
    // merged into one new part per table.
    assert_eq!(v["partitions_compacted"], json!(2), "{v}");
    assert_eq!(v["parts_removed"], json!(8), "{v}");
    assert!(parts_per_partition(&data, "failures")
        .values()
        .all(|n| *n == (1, 0)));
    assert!(parts_per_partition(&data, "actions")
        .values()
        .all(|n| *n == (1, 0)));
    let flushed = faultline::store::flushed_seq(&data).unwrap();
    let rows = faultline::store::committed_rows(&data, faultline::store::Table::Failures, flushed)
        .unwrap();
    assert_eq!(rows.len(), 4);
    // Requests go on; a second compaction merges the new records' parts into the merged.
    let (s, v) = call(&app, "POST", "/v1/failures", &dated("f4"), t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(&app, "POST", "/v1/admin/compact", "", t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["parts_removed"], json!(4), "{v}");
    let (_, metrics) = call(&app, "GET", "/metrics", "", None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("faultline_compactions_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("faultline_compaction_parts_removed_total 12"),
        "{metrics}"
    );
    let (s, _) = call(&app, "GET", "/v1/admin/compact", "", t).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}

/// A running `faultline serve` merges its flushes' parts every `--compact-interval`
/// (before, they piled up — 288 per table and day at the default flush interval — until the
/// server was stopped for `faultline compact`). A reader of the history beside it reads
/// every record once throughout, and nothing is lost at the stop.
#[test]
fn serve_compacts_its_parts_periodically_beside_readers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = crate::http::Server::start(
        &data,
        &["--flush-interval", "0.05", "--compact-interval", "0.4"],
    );
    let mut c = server.client();
    let read = || {
        faultline::store::reread_while_compacting(|| {
            let flushed = faultline::store::flushed_seq(&data)?;
            faultline::store::committed_rows(&data, faultline::store::Table::Failures, flushed)
        })
        .unwrap()
    };
    let n = 30;
    for i in 0..n {
        let r = c.post("/v1/failures", &failure(&format!("p{i}"), i));
        assert_eq!(r.status, 200, "{}", r.body);
        std::thread::sleep(Duration::from_millis(30));
        // Each record once: never more rows than were posted, each sequence once.
        let rows = read();
        assert!(
            rows.len() <= i + 1,
            "{} rows after {} failures",
            rows.len(),
            i + 1
        );
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
    }
    // Waits for the flushes and compactions to catch up (a wait, not a speed check): the
    // parts flushes wrote are merged into compactions' parts, but for at most one (a lone
    // part flushed after the last compaction has nothing to merge with). Today is still
    // being written, so each compaction merged what was flushed since the one before into
    // one more part.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let merged = ["failures", "actions"].iter().all(|t| {
            let p = parts_per_partition(&data, t);
            !p.is_empty() && p.values().all(|(_, flushed)| *flushed <= 1)
        });
        if merged && read().len() == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not compacted: {:?}, {} rows",
            parts_per_partition(&data, "failures"),
            read().len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = c.get("/metrics").body;
    let removed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("faultline_compaction_parts_removed_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    let runs = metrics
        .lines()
        .find_map(|l| l.strip_prefix("faultline_compactions_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    let (parts, _) = parts_per_partition(&data, "failures")
        .into_values()
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(removed > parts as f64, "{metrics}\n{parts} parts");
    assert!(parts as f64 <= runs + 1.0, "{metrics}\n{parts} parts");
    assert!(
        metrics.contains("faultline_compaction_failures_total 0"),
        "{metrics}"
    );
    // `faultline compact` beside the server is refused, and says what to do instead.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["compact", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("POST /v1/admin/compact"), "{err}");
    assert!(server.stop().success());
    let store = ParquetStore::open(&data, StoreOptions::default()).unwrap();
    let failures = store
        .entries()
        .unwrap()
        .into_iter()
        .filter(|(_, e)| matches!(e, Entry::Failure(_)))
        .count();
    assert_eq!(failures, n);
}

/// `POST /v1/failures?explain=true`: each decision comes with its explanation (the ranking
/// asked once outcomes exist, its candidates listing the chosen strategy); a repeat's says it
/// is one; a query the endpoint does not take is a 400 naming `query`; without the query the
/// answer is as before.
#[tokio::test]
async fn failures_explained_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("data"));
    opts.config.ranking.enabled = true;
    let (app, _) = App::open(opts).unwrap();
    let oom = |task: &str| OOM.replace("\"t1\"", &format!("\"{task}\""));
    let (s, v) = call(&app, "POST", "/v1/failures?explain=true", &oom("a"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let summary = v["explanation"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("no outcome is recorded yet for oom_gpu on GPU"),
        "{summary}"
    );
    // Outcomes teach the ranking; then it decides, and says so.
    for i in 0..12 {
        let task = format!("k{i}");
        let (s, v) = call(&app, "POST", "/v1/failures", &oom(&task), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v.get("explanation").is_none(), "{v}");
        let body = format!(r#"{{"task_id":"{task}","success":true}}"#);
        let (s, v) = call(&app, "POST", "/v1/outcomes", &body, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let batch = format!("[{},{}]", oom("e1"), oom("e2"));
    let (s, v) = call(&app, "POST", "/v1/failures?explain=true", &batch, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for r in v["results"].as_array().unwrap() {
        let why = &r["explanation"];
        assert_eq!(r["action"]["source"]["kind"], "learned", "{r}");
        assert!(
            why["summary"]
                .as_str()
                .unwrap()
                .starts_with("the learned ranking chose REDUCED_BATCH_SIZE"),
            "{why}"
        );
        let first = &why["ranking"]["candidates"][0];
        assert_eq!(first["strategy"], "REDUCED_BATCH_SIZE", "{why}");
        // Twelve successes, discounted as the ranking weighs them.
        let ok = first["coarse"]["successes"].as_f64().unwrap();
        assert!((11.0..=12.0).contains(&ok), "{why}");
    }
    // A repeat (a client's retry: same time, worker and message) is answered with the
    // action already decided; its explanation says only that.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let timed = oom("r").replacen('{', &format!(r#"{{"timestamp":{now},"#), 1);
    let (s, v) = call(&app, "POST", "/v1/failures?explain=true", &timed, None).await;
    assert_eq!((s, &v["duplicate"]), (StatusCode::OK, &json!(false)), "{v}");
    assert!(v.get("explanation").is_some(), "{v}");
    let (s, v) = call(&app, "POST", "/v1/failures?explain=true", &timed, None).await;
    assert_eq!((s, &v["duplicate"]), (StatusCode::OK, &json!(true)), "{v}");
    let summary = v["explanation"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("a repeat of a failure already decided"),
        "{v}"
    );
    assert!(v["explanation"].get("ranking").is_none(), "{v}");
    // A bare flag and 1 are taken (an audit); anything else is refused, naming the query.
    for uri in ["/v1/failures?explain", "/v1/failures?explain=1"] {
        let (s, v) = call(&app, "POST", uri, &oom("f"), None).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        assert!(v.get("explanation").is_some(), "{uri}: {v}");
    }
    for uri in ["/v1/failures?explain=yes", "/v1/failures?verbose=1"] {
        let (s, v) = call(&app, "POST", uri, &oom("z"), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["error"]["field"], "query", "{uri}: {v}");
    }
}
