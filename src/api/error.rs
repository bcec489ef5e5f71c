//! The API's errors and their JSON form: `{"error": {"status", "code", "message", "field"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::engine::EngineError;
use crate::train::TrainError;

/// Errors of the API; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON, or does not fit the schema (wrong type, unknown field).
    #[error("invalid request body{}: {message}", at(.field))]
    BadBody {
        /// Path of the offending field (`error.message`, `[2].task_id`), when known.
        field: Option<String>,
        /// What is wrong (serde's words, with line and column).
        message: String,
    },
    /// A field parsed but its value is not acceptable.
    #[error("invalid {field}: {detail}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        detail: String,
    },
    /// The request body is larger than the limit.
    #[error("request body larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// The body could not be read (client went away, bad framing).
    #[error("cannot read the request body: {0}")]
    Body(String),
    /// Missing or wrong bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// No such route, task or checkpoint.
    #[error("{0}")]
    NotFound(String),
    /// The task has checkpoints, but none verifies: each one's content differs from its
    /// hash, or its blob is gone.
    #[error("no checkpoint of task '{task}' verifies: all {skipped} skipped as damaged (content differs from its hash, or its blob is gone)")]
    CheckpointDamaged {
        /// The task.
        task: String,
        /// How many checkpoints were tried and skipped.
        skipped: usize,
    },
    /// An outcome names a task the engine never saw (or an invalid task id).
    #[error("outcome for unknown task '{task}' at {field}")]
    UnknownTask {
        /// Path of the task id in the body: `task_id`, or `[2].task_id` in a batch.
        field: String,
        /// The task id as sent.
        task: String,
    },
    /// A batch of outcomes gives one task both verdicts; nothing of it was applied.
    #[error("the batch gives task '{task}' both verdicts (success true and false, the second at {field}); nothing of it was applied")]
    BatchConflict {
        /// Path of the second verdict in the body: `[3].success`.
        field: String,
        /// The task.
        task: String,
    },
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request took longer than the configured timeout.
    #[error("request timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The engine or the store failed; nothing was acknowledged.
    #[error(transparent)]
    Engine(EngineError),
    /// The model directory could not be loaded.
    #[error(transparent)]
    Model(#[from] TrainError),
    /// Anything else on the server's side.
    #[error("internal error: {0}")]
    Internal(String),
}

fn at(field: &Option<String>) -> String {
    match field {
        Some(f) if !f.is_empty() => format!(" at {f}"),
        _ => String::new(),
    }
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadBody { .. } | ApiError::Invalid { .. } | ApiError::Body(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::UnknownTask { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::CheckpointDamaged { .. } | ApiError::BatchConflict { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Engine(EngineError::UnknownTask(_)) => StatusCode::NOT_FOUND,
            ApiError::Engine(
                EngineError::NoAction(_)
                | EngineError::StaleState { .. }
                | EngineError::StaleOutcome { .. }
                | EngineError::ConflictingOutcome { .. },
            ) => StatusCode::CONFLICT,
            ApiError::Engine(EngineError::InvalidOutcome { .. }) => StatusCode::BAD_REQUEST,
            ApiError::Model(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Engine(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadBody { .. } => "invalid_body",
            ApiError::Invalid { .. } => "invalid_field",
            ApiError::TooLarge { .. } => "body_too_large",
            ApiError::Body(_) => "unreadable_body",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::UnknownTask { .. } => "unknown_task",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::CheckpointDamaged { .. } => "checkpoint_damaged",
            ApiError::BatchConflict { .. } => "conflicting_outcome",
            ApiError::Timeout(_) => "timeout",
            ApiError::Engine(EngineError::UnknownTask(_)) => "unknown_task",
            ApiError::Engine(EngineError::NoAction(_)) => "no_action",
            ApiError::Engine(EngineError::StaleState { .. }) => "stale_state",
            ApiError::Engine(EngineError::StaleOutcome { .. }) => "stale_outcome",
            ApiError::Engine(EngineError::ConflictingOutcome { .. }) => "conflicting_outcome",
            ApiError::Engine(EngineError::InvalidOutcome { .. }) => "invalid_field",
            ApiError::Engine(_) => "engine_error",
            ApiError::Model(_) => "model_error",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::BadBody { field, .. } => field.as_deref().filter(|f| !f.is_empty()),
            ApiError::Invalid { field, .. }
            | ApiError::UnknownTask { field, .. }
            | ApiError::BatchConflict { field, .. } => Some(field),
            ApiError::TooLarge { .. } | ApiError::Body(_) => Some("body"),
            ApiError::Engine(EngineError::UnknownTask(_) | EngineError::NoAction(_)) => {
                Some("task_id")
            }
            ApiError::Engine(EngineError::InvalidOutcome { error, .. }) => Some(error.field()),
            // Only a reload loads a model over HTTP: what it names is the body's `model`.
            ApiError::Model(_) => Some("model"),
            ApiError::Engine(EngineError::StaleState { .. }) => Some("timestamp"),
            ApiError::Engine(EngineError::StaleOutcome { .. }) => Some("attempt"),
            ApiError::Engine(EngineError::ConflictingOutcome { .. }) => Some("success"),
            _ => None,
        }
    }
}

/// The JSON body of an error response.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub(crate) error: ErrorDetail<'a>,
}

/// The `error` object.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorDetail<'a> {
    pub(crate) status: u16,
    pub(crate) code: &'a str,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) field: Option<&'a str>,
}

/// A JSON error response.
pub(crate) fn json_error(
    status: StatusCode,
    code: &str,
    message: String,
    field: Option<&str>,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            status: status.as_u16(),
            code,
            message,
            field,
        },
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut r = json_error(status, self.code(), self.to_string(), self.field());
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            // The limit is reported by the caller, which knows it.
            ApiError::TooLarge { limit: 0 }
        } else {
            ApiError::Body(r.body_text())
        }
    }
}

impl From<crate::model::ModelError> for ApiError {
    fn from(e: crate::model::ModelError) -> Self {
        match e {
            crate::model::ModelError::Invalid { field, detail } => ApiError::Invalid {
                field: field.to_string(),
                detail,
            },
            crate::model::ModelError::Conflict { field, detail } => ApiError::Invalid {
                field: field.to_string(),
                detail: format!("conflicting values: {detail}"),
            },
        }
    }
}
