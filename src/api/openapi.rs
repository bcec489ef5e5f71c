//! The OpenAPI 3.0 description served at `GET /openapi.json`.

use serde_json::{json, Value};

/// JSON error responses for the given status codes.
fn error_responses(codes: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for c in codes {
        let description = match *c {
            "400" => "invalid request (body, field or path parameter)",
            "401" => "missing or wrong bearer token",
            "404" => "unknown task, checkpoint or endpoint",
            "409" => "a conflict: the task's checkpoints exist but none verifies (code checkpoint_damaged), an outcome for a task with no recovery action to credit it to (code no_action), a task state dated before the task's latest one (code stale_state, not applied), an outcome naming an earlier attempt than the task's latest action (code stale_outcome), or an outcome whose verdict contradicts the one already recorded for the task's latest action (code conflicting_outcome; a retry with the same verdict is answered as a duplicate)",
            "405" => "method not allowed on this path (the Allow header lists those that are)",
            "413" => "request body over the limit",
            "422" => "the model directory cannot be loaded",
            "500" => "internal error (the engine or the store failed; nothing acknowledged)",
            "503" => "timeout: the request took longer than the server's limit",
            _ => "error",
        };
        m.insert(
            (*c).to_string(),
            json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            }),
        );
    }
    Value::Object(m)
}

/// A timestamp: RFC 3339, a naive ISO date-time (UTC), a date, or a number since the epoch.
fn timestamp() -> Value {
    json!({
        "oneOf": [{"type": "string"}, {"type": "number"}],
        "description": "RFC 3339 (an offset may be written -0500), a naive ISO date-time (read as UTC), a date alone (its midnight, UTC), or a number since the Unix epoch: seconds, or milliseconds, microseconds or nanoseconds by its magnitude (from 10^11, 10^14 and 10^17)"
    })
}

/// A case-insensitive name out of a closed set (`-` and `_` interchangeable): a string, the
/// canonical names listed in the description (an `enum` would refuse other spellings).
fn name_of(what: &str, names: &[&str]) -> Value {
    json!({
        "type": "string",
        "description": format!("{what}, case-insensitive: {}", names.join(", "))
    })
}

/// The failure record as `FailureReport` (src/model/record.rs) reads it: every field it
/// accepts, aliases included; unknown fields are rejected. A test checks a full record
/// against it.
fn failure_record() -> Value {
    use crate::model::{HardwareClass, Precision, RecoveryStrategy};
    let classes: Vec<&str> = HardwareClass::ALL.iter().map(|c| c.as_str()).collect();
    let precisions: Vec<&str> = Precision::ALL.iter().map(|p| p.as_str()).collect();
    let strategies: Vec<&str> = RecoveryStrategy::ALL.iter().map(|s| s.as_str()).collect();
    let class = name_of("hardware class", &classes);
    let count = json!({"type": "integer", "minimum": 0});
    json!({
        "type": "object", "required": ["task_id", "worker_id", "error"],
        "additionalProperties": false,
        "description": "The failure record of the README (unknown fields are rejected).",
        "properties": {
            "task_id": {"type": "string", "maxLength": 256},
            "worker_id": {"type": "string", "maxLength": 256},
            "hardware": {
                "type": "object", "required": ["class"], "additionalProperties": false,
                "properties": {
                    "class": class,
                    "vendor": {"type": "string"}, "model": {"type": "string"},
                    "memory_gib": {"type": "number", "minimum": 0},
                    "compute_units": count,
                    "browser": {
                        "type": "object", "required": ["name"], "additionalProperties": false,
                        "properties": {"name": {"type": "string"}, "version": {"type": "string"}}
                    }
                }
            },
            "platform": name_of("hardware class when `hardware` is absent", &classes),
            "error": {
                "type": "object", "required": ["message"], "additionalProperties": false,
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string", "description": "the caller's error-type hint"},
                    "error_type": {"type": "string", "description": "alias of `type`"},
                    "stacktrace": {"type": "string"},
                    "stack_trace": {"type": "string", "description": "alias of `stacktrace`"},
                    "exit_code": {"type": "integer"}
                }
            },
            "timestamp": timestamp(),
            "ts": merge(timestamp(), json!({"description": "alias of `timestamp`"})),
            "task": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "task_id": {"type": "string", "description": "must agree with the record's task_id"},
                    "model": {"type": "string"},
                    "platform": class,
                    "config": {
                        "type": "object", "additionalProperties": true,
                        "description": "the task's configuration; other keys are kept as they are",
                        "properties": {
                            "model": {"type": "string"},
                            "batch_size": {"type": "integer", "minimum": 1},
                            "batch_sizes": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                            "precision": name_of("precision", &precisions),
                            "fallback_models": {"type": "array", "items": {"type": "string"}},
                            "checkpointing": {"type": "boolean"}
                        }
                    },
                    "requirements": {
                        "type": "object", "additionalProperties": false,
                        "properties": {
                            "hardware": {"type": "array", "items": {"type": "string"}},
                            "browser": {"type": "string"},
                            "min_memory_gib": {"type": "number"}
                        }
                    },
                    "retry_count": merge(count.clone(), json!({"description": "informational"}))
                }
            },
            "attempt": merge(count.clone(), json!({"description": "informational"})),
            "seq": merge(count.clone(), json!({"description": "sequence number in a log (informational)"})),
            "t_offset_s": {"type": "number", "description": "seconds since the start of a log (informational)"},
            "task_is_new": {"type": "boolean", "description": "informational"},
            "template": {"type": "string", "description": "the producer's template label (informational)"},
            "ml_feedback": {
                "type": "object", "required": ["strategy", "success"], "additionalProperties": false,
                "description": "logged outcome of the recovery applied to this failure",
                "properties": {
                    "strategy": name_of("recovery strategy", &strategies),
                    "success": {"type": "boolean"}
                }
            }
        }
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(x), Value::Object(y)) = (&mut a, b) {
        x.extend(y);
    }
    a
}

fn ok_json(schema: Value) -> Value {
    json!({"description": "ok", "content": {"application/json": {"schema": schema}}})
}

/// The schema of a decision's explanation (`POST /v1/failures?explain=true`); apart from
/// the document's, whose `json!` would pass the macro's recursion limit.
fn explanation() -> Value {
    let strategies: Vec<&str> = crate::model::RecoveryStrategy::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let strategy = json!({"type": "string", "enum": strategies});
    let breaker = json!({"type": "string", "enum": ["closed", "open", "half_open", "off"]});
    // Inline, not a $ref: OpenAPI 3.0 ignores a description beside a $ref.
    let evidence = json!({"type": "object", "required": ["successes", "failures"],
        "properties": {"successes": {"type": "number"}, "failures": {"type": "number"}}});
    let candidate = json!({
        "type": "object", "required": ["strategy", "prior", "success", "weight", "coarse", "tried", "score"],
        "properties": {
            "strategy": strategy.clone(),
            "ladder_step": {"type": "integer", "description": "its step on the rule ladder, if the ladder names it"},
            "prior": {"type": "number", "description": "the prior mean the ladder gives it"},
            "success": {"type": "number", "description": "posterior mean chance of success"},
            "weight": {"type": "number", "description": "what the posterior is worth, in outcomes"},
            "coarse": merge(evidence.clone(), json!({"description": "its outcomes in (class, kind)"})),
            "fine": merge(evidence.clone(), json!({"description": "its outcomes in the fine context: classifier rule and Xid, repeat, worker standing"})),
            "finest": merge(evidence.clone(), json!({"description": "its outcomes in the finest context: the fine one and the message's shape"})),
            "other_classes": merge(evidence.clone(), json!({"description": "the kind's outcomes on the other hardware classes, which lend their mean"})),
            "bad_workers": merge(evidence, json!({"description": "on a worker called bad: the class's outcomes on its bad workers"})),
            "expected_attempts": {"type": "number", "description": "expected attempts to recovery with it (with ranking.continuation)"},
            "tried": {"type": "integer", "description": "how often the task already used it"},
            "score": {"type": "number", "description": "what the candidates are sorted by, highest first (see order)"}
        }
    });
    json!({
        "type": "object", "required": ["summary"],
        "description": "why the engine decided as it did (POST /v1/failures?explain=true; for a duplicate only that it is one)",
        "properties": {
            "summary": {"type": "string", "description": "what decided (the retry limit, a rule's ladder, the learned ranking, then a circuit breaker or the retry budget) and why the ranking did or did not"},
            "ranking": {"type": "object", "description": "what the learned ranking saw, when it was asked",
                "required": ["ranker", "class", "kind", "worker", "burst", "worker_breaker", "class_breaker", "retry_budget_spent", "outcomes", "ladder", "order", "candidates", "left_out"],
                "properties": {
                    "ranker": {"type": "string", "enum": ["bayes", "model"]},
                    "class": {"type": "string"},
                    "kind": {"type": "string", "description": "the kind the ranking ranks in (memory exhausted on a TPU or an NPU: oom_gpu)"},
                    "worker": {"type": "string", "enum": ["healthy", "suspect", "bad"], "description": "the failed worker's standing with the bad-worker test"},
                    "burst": {"type": "boolean", "description": "the failure came in a burst of its (class, kind) and is ranked in the burst's own contexts"},
                    "worker_breaker": breaker.clone(),
                    "class_breaker": breaker,
                    "retry_budget_spent": {"type": "boolean"},
                    "outcomes": {"type": "number", "description": "outcomes recorded for (class, kind), discounted (older ones count less): with none the ranking abstains"},
                    "ladder": {"type": "array", "description": "the rule ladder's steps still ahead of the task, the next first", "items": {
                        "type": "object", "required": ["step", "strategy", "possible"],
                        "properties": {"step": {"type": "integer", "description": "the ladder's own step number, as the action's source.step"}, "strategy": strategy.clone(),
                            "possible": {"type": "boolean", "description": "whether the step can be carried out now; the rules take the first that can (none: they escalate)"}}
                    }},
                    "order": {"type": "string", "description": "what the candidates are sorted by"},
                    "candidates": {"type": "array", "description": "every strategy the ranking could choose from, best first by `order` (for the success model: its predictions, once it has a fit)", "items": candidate},
                    "left_out": {"type": "array", "description": "strategies the ranking could not choose from", "items": {
                        "type": "object", "required": ["strategy", "reason"],
                        "properties": {"strategy": strategy, "reason": {"type": "string"}}
                    }}
                }
            }
        }
    })
}

fn task_param() -> Value {
    json!([{
        "name": "id", "in": "path", "required": true,
        "description": "Task id: no whitespace, '/', '\\\\' or '..'; at most 256 bytes.",
        "schema": {"type": "string", "maxLength": 256}
    }])
}

/// The document.
pub(crate) fn document() -> Value {
    let auth = json!([{"bearer": []}]);
    // Every path answers 405 to a method it does not take (an audit: undocumented).
    let write_errors = error_responses(&["400", "401", "405", "413", "500", "503"]);
    // Any request may time out (503); the handlers' own failures are 500s.
    let read_errors = error_responses(&["405", "500", "503"]);
    let task_read_errors = merge(error_responses(&["400", "404"]), read_errors.clone());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "faultline",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Recovery decisions for failing ML jobs. A 200 on a write is an acknowledgement: the record is fsynced to the write-ahead log. Errors are JSON: {\"error\": {\"status\", \"code\", \"message\", \"field\"}}."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["status", "code", "message"],
                        "properties": {
                            "status": {"type": "integer"}, "code": {"type": "string"},
                            "message": {"type": "string"}, "field": {"type": "string"}}}}
                },
                "FailureRecord": failure_record(),
                "RecoveryAction": {
                    "type": "object",
                    "required": ["task_id", "strategy", "failed_worker", "delay_s", "priority_adjustment",
                        "reason", "source", "propensity", "attempt", "kind", "failure_type",
                        "classifier_rule", "timestamp"],
                    "properties": {
                        "strategy": {"type": "string", "enum": [
                            "IMMEDIATE_RETRY", "DELAYED_RETRY", "DIFFERENT_WORKER",
                            "DIFFERENT_HARDWARE_CLASS", "REDUCED_PRECISION", "REDUCED_BATCH_SIZE",
                            "SIMPLIFIED_MODEL", "FALLBACK_CPU", "BROWSER_RESTART",
                            "SKIP_CHECKPOINTING", "RESET_WORKER_STATE", "ESCALATION"]},
                        "task_id": {"type": "string"}, "failed_worker": {"type": "string"},
                        "target_worker": {"type": "string"}, "delay_s": {"type": "number"},
                        "modified_config": {"type": "object"}, "resume_checkpoint": {"type": "string"},
                        "reason": {"type": "string"}, "source": {"type": "object"},
                        "propensity": {"type": "number"}, "attempt": {"type": "integer"},
                        "kind": {"type": "string"}, "failure_type": {"type": "string"},
                        "excluded_workers": {"type": "array", "items": {"type": "string"}},
                        "hardware_requirements": {"type": "object"},
                        "priority_adjustment": {"type": "integer"},
                        "worker_attention": {"type": "string"},
                        "classifier_rule": {"type": "string"},
                        "xid": {"type": "integer"},
                        "timestamp": {"type": "string", "format": "date-time"}
                    }
                },
                "Decision": {
                    "type": "object", "required": ["action", "duplicate"],
                    "properties": {
                        "action": {"$ref": "#/components/schemas/RecoveryAction"},
                        "duplicate": {"type": "boolean", "description": "the record repeated a failure already decided (a retry): the action is the one decided then"},
                        "annotation": {"type": "object", "description": "template and cluster of the failure under the loaded model"},
                        "model": {"type": "string"},
                        "explanation": {"$ref": "#/components/schemas/Explanation"}
                    }
                },
                "Explanation": explanation(),
                "Outcome": {
                    "type": "object", "required": ["task_id", "success"], "additionalProperties": false,
                    "properties": {
                        "task_id": {"type": "string"}, "success": {"type": "boolean"},
                        "strategy": {"type": "string", "description": "recovery strategy, case-insensitive; default: the task's last action"},
                        "time_to_recovery_s": {"type": "number"},
                        "cost": {"type": "number"}, "timestamp": timestamp(),
                        "attempt": {"type": "integer", "minimum": 1, "description": "the attempt of the action the outcome is about (its `attempt`); given, an earlier one than the task's latest is refused (409 stale_outcome: the task failed again since)"}
                    }
                },
                "TaskState": {"type": "string", "enum": ["pending", "running", "recovering", "succeeded", "escalated", "failed"]}
            }
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness: status \"ok\", \"degraded\" while the latest flush of the history into Parquet failed (flush_error: message, failing, since_unix_s; acknowledged records are safe in the WAL), or \"failed\" (answered 503, for liveness probes) once a write of the WAL failed (wal_error: message, restart_needed false, recovering true; every write is refused until the server opens its data directory again — it tries 1 s later, then 2, 4... up to a minute apart — or a restart does; what was acknowledged is safe)", "responses": merge(json!({"200": ok_json(json!({"type": "object", "properties": {"status": {"type": "string", "enum": ["ok", "degraded", "failed"]}, "uptime_s": {"type": "number"}, "model": {"type": "string", "nullable": true}, "flush_failures_total": {"type": "integer"}, "flush_error": {"type": "object", "properties": {"message": {"type": "string"}, "failing": {"type": "integer"}, "since_unix_s": {"type": "number"}}}, "wal_error": {"type": "object", "properties": {"message": {"type": "string"}, "restart_needed": {"type": "boolean"}, "recovering": {"type": "boolean"}}}}}))}), read_errors.clone())}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": merge(json!({"200": {"description": "text/plain exposition", "content": {"text/plain": {"schema": {"type": "string"}}}}}), read_errors.clone())}},
            "/openapi.json": {"get": {"summary": "This document", "responses": merge(json!({"200": ok_json(json!({"type": "object"}))}), read_errors.clone())}},
            "/v1/failures": {"post": {
                "summary": "Decide a recovery for one failure (object) or a batch (array)",
                "security": auth,
                "parameters": [{"name": "explain", "in": "query", "required": false, "allowEmptyValue": true,
                    "schema": {"type": "string", "enum": ["", "true", "false", "1", "0"]},
                    "description": "a flag: also say why each failure was decided as it was (`explanation`); present without a value, true or 1 turns it on"}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/FailureRecord"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/FailureRecord"}}]}}}},
                "responses": merge(json!({"200": ok_json(json!({"oneOf": [
                    {"$ref": "#/components/schemas/Decision"},
                    {"type": "object", "required": ["results"], "properties": {"results": {"type": "array", "items": {"$ref": "#/components/schemas/Decision"}}}}]}))}), write_errors.clone())
            }},
            "/v1/outcomes": {"post": {
                "summary": "Report the outcome of an applied action (object or array)",
                "security": auth,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Outcome"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/Outcome"}}]}}}},
                "responses": merge(json!({"200": ok_json(json!({"type": "object", "properties": {"recorded": {"type": "integer"}, "duplicate": {"type": "boolean"}, "duplicates": {"type": "integer"}, "results": {"type": "array", "items": {"type": "object", "properties": {"duplicate": {"type": "boolean"}}}}}}))}),
                    merge(write_errors.clone(), error_responses(&["404", "409"])))
            }},
            "/v1/tasks/{id}/state": {
                "parameters": task_param(),
                "get": {"summary": "The engine's state of a task", "responses": merge(json!({"200": ok_json(json!({"type": "object"}))}), task_read_errors.clone())},
                "put": {"summary": "Set a task's lifecycle state", "security": auth,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["state"], "additionalProperties": false,
                        "properties": {"state": {"$ref": "#/components/schemas/TaskState"}, "note": {"type": "string"}, "timestamp": timestamp()}}}}},
                    "responses": merge(json!({"200": ok_json(json!({"type": "object"}))}), merge(write_errors.clone(), error_responses(&["409"])))}
            },
            "/v1/tasks/{id}/checkpoints": {
                "parameters": task_param(),
                "post": {"summary": "Store a checkpoint (any bytes, not none: an empty body is a 400)", "security": auth,
                    "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}, "application/json": {"schema": {}}}},
                    "responses": merge(json!({"201": ok_json(json!({"type": "object", "properties": {"checkpoint_id": {"type": "string"}}}))}), write_errors.clone())}
            },
            "/v1/tasks/{id}/checkpoints/latest": {
                "parameters": task_param(),
                "get": {"summary": "The newest checkpoint that verifies (bytes; id in x-checkpoint-id)",
                    "responses": merge(json!({"200": {"description": "checkpoint bytes", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}), merge(task_read_errors.clone(), error_responses(&["409"])))}
            },
            "/v1/tasks/{id}/history": {
                "parameters": task_param(),
                "get": {"summary": "A task's recent recovery actions", "responses": merge(json!({"200": ok_json(json!({"type": "object", "properties": {"actions": {"type": "array", "items": {"$ref": "#/components/schemas/RecoveryAction"}}}}))}), task_read_errors.clone())}
            },
            "/v1/patterns": {"get": {"summary": "Active failure patterns, bad workers, open breakers", "responses": merge(json!({"200": ok_json(json!({"type": "object"}))}), read_errors.clone())}},
            "/v1/stats": {"get": {"summary": "Counters and the model in use", "responses": merge(json!({"200": ok_json(json!({"type": "object"}))}), read_errors)}},
            "/v1/admin/reload": {"post": {
                "summary": "Reload the model (optionally from another directory) without dropping requests",
                "security": auth,
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"model": {"type": "string"}}}}}},
                "responses": merge(json!({"200": ok_json(json!({"type": "object"}))}), merge(write_errors.clone(), error_responses(&["422"])))
            }},
            "/v1/admin/flush": {"post": {
                "summary": "Write every acknowledged record still in the write-ahead log into the Parquet history now (for a reader of the parts, e.g. a nightly `faultline train`, beside the running server)",
                "security": auth,
                "responses": merge(json!({"200": ok_json(json!({"type": "object", "required": ["flushed", "flushed_seq"], "properties": {"flushed": {"type": "boolean"}, "flushed_seq": {"type": "integer", "nullable": true, "description": "the history's commit point: every record up to this sequence number is in the Parquet parts"}}}))}), write_errors.clone())
            }},
            "/v1/admin/compact": {"post": {
                "summary": "Flush the write-ahead log, then merge each partition's Parquet parts into one now, beside requests (the server also does it every --compact-interval; `faultline compact` is refused while the server runs). Every part is read whole: a damaged one is set aside and named in set_aside",
                "security": auth,
                "responses": merge(json!({"200": ok_json(json!({"type": "object", "required": ["compacted", "partitions_compacted", "parts_removed", "set_aside"], "properties": {"compacted": {"type": "boolean"}, "partitions_compacted": {"type": "integer"}, "parts_removed": {"type": "integer"}, "set_aside": {"type": "array", "items": {"type": "string"}, "description": "unreadable parts set aside: the error and where each went"}, "gone_acknowledged": {"type": "integer", "description": "committed rows found gone at an earlier open (said at every open until now), acknowledged"}}}))}), write_errors)
            }}
        }
    })
}
