//! The OpenAPI 3.0 description served at `GET /openapi.json`.

use serde_json::{json, Value};

fn error_responses(codes: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for c in codes {
        m.insert(
            (*c).to_string(),
            json!({
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            }),
        );
    }
    Value::Object(m)
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
    let write_errors = error_responses(&["400", "401", "413", "500", "503"]);
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
                "FailureRecord": {
                    "type": "object", "required": ["task_id", "worker_id", "error"],
                    "additionalProperties": false,
                    "description": "The failure record of the README (unknown fields are rejected).",
                    "properties": {
                        "task_id": {"type": "string"}, "worker_id": {"type": "string"},
                        "hardware": {"type": "object"}, "platform": {"type": "object"},
                        "error": {"type": "object", "required": ["message"], "properties": {
                            "message": {"type": "string"}, "type": {"type": "string"},
                            "stacktrace": {"type": "string"}, "exit_code": {"type": "integer"}}},
                        "timestamp": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                        "task": {"type": "object"}
                    }
                },
                "RecoveryAction": {
                    "type": "object",
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
                        "kind": {"type": "string"}, "failure_type": {"type": "string"}
                    }
                },
                "Decision": {
                    "type": "object", "required": ["action"],
                    "properties": {
                        "action": {"$ref": "#/components/schemas/RecoveryAction"},
                        "annotation": {"type": "object", "description": "template and cluster of the failure under the loaded model"},
                        "model": {"type": "string"}
                    }
                },
                "Outcome": {
                    "type": "object", "required": ["task_id", "success"], "additionalProperties": false,
                    "properties": {
                        "task_id": {"type": "string"}, "success": {"type": "boolean"},
                        "strategy": {"type": "string"}, "time_to_recovery_s": {"type": "number"},
                        "cost": {"type": "number"}, "timestamp": {"oneOf": [{"type": "string"}, {"type": "number"}]}
                    }
                },
                "TaskState": {"type": "string", "enum": ["pending", "running", "recovering", "succeeded", "escalated", "failed"]}
            }
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": ok_json(json!({"type": "object"}))}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text/plain exposition", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": ok_json(json!({"type": "object"}))}}},
            "/v1/failures": {"post": {
                "summary": "Decide a recovery for one failure (object) or a batch (array)",
                "security": auth,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/FailureRecord"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/FailureRecord"}}]}}}},
                "responses": merge(json!({"200": ok_json(json!({"oneOf": [
                    {"$ref": "#/components/schemas/Decision"},
                    {"type": "object", "properties": {"results": {"type": "array", "items": {"$ref": "#/components/schemas/Decision"}}}}]}))}), write_errors.clone())
            }},
            "/v1/outcomes": {"post": {
                "summary": "Report the outcome of an applied action (object or array)",
                "security": auth,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Outcome"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/Outcome"}}]}}}},
                "responses": merge(json!({"200": ok_json(json!({"type": "object", "properties": {"recorded": {"type": "integer"}}}))}),
                    merge(write_errors.clone(), error_responses(&["404"])))
            }},
            "/v1/tasks/{id}/state": {
                "parameters": task_param(),
                "get": {"summary": "The engine's state of a task", "responses": merge(json!({"200": ok_json(json!({"type": "object"}))}), error_responses(&["400", "404"]))},
                "put": {"summary": "Set a task's lifecycle state", "security": auth,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["state"], "additionalProperties": false,
                        "properties": {"state": {"$ref": "#/components/schemas/TaskState"}, "note": {"type": "string"}, "timestamp": {"type": "string"}}}}}},
                    "responses": merge(json!({"200": ok_json(json!({"type": "object"}))}), write_errors.clone())}
            },
            "/v1/tasks/{id}/checkpoints": {
                "parameters": task_param(),
                "post": {"summary": "Store a checkpoint (any bytes)", "security": auth,
                    "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}, "application/json": {"schema": {}}}},
                    "responses": merge(json!({"201": ok_json(json!({"type": "object", "properties": {"checkpoint_id": {"type": "string"}}}))}), write_errors.clone())}
            },
            "/v1/tasks/{id}/checkpoints/latest": {
                "parameters": task_param(),
                "get": {"summary": "The newest checkpoint that verifies (bytes; id in x-checkpoint-id)",
                    "responses": merge(json!({"200": {"description": "checkpoint bytes", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}), error_responses(&["400", "404"]))}
            },
            "/v1/tasks/{id}/history": {
                "parameters": task_param(),
                "get": {"summary": "A task's recent recovery actions", "responses": merge(json!({"200": ok_json(json!({"type": "object", "properties": {"actions": {"type": "array", "items": {"$ref": "#/components/schemas/RecoveryAction"}}}}))}), error_responses(&["400", "404"]))}
            },
            "/v1/patterns": {"get": {"summary": "Active failure patterns, bad workers, open breakers", "responses": {"200": ok_json(json!({"type": "object"}))}}},
            "/v1/stats": {"get": {"summary": "Counters and the model in use", "responses": {"200": ok_json(json!({"type": "object"}))}}},
            "/v1/admin/reload": {"post": {
                "summary": "Reload the model (optionally from another directory) without dropping requests",
                "security": auth,
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"model": {"type": "string"}}}}}},
                "responses": merge(json!({"200": ok_json(json!({"type": "object"}))}), merge(write_errors, error_responses(&["422"])))
            }}
        }
    })
}
