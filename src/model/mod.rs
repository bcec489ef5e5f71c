//! Tier 0 — the domain types every other module speaks: failure records, hardware profiles,
//! failure kinds and types, recovery strategies and actions, outcomes, task states.

mod enums;
mod ids;
mod record;
mod time;

pub use enums::{
    FailureKind, FailureType, HardwareClass, ParseEnumError, Precision, RecoveryStrategy, TaskState,
};
pub use ids::{TaskId, WorkerId, MAX_ID_LEN};
pub use record::{
    BrowserInfo, DecisionSource, EmbeddedOutcome, ErrorInfo, FailureRecord, FailureReport,
    HardwareProfile, HardwareRequirements, Outcome, RecoveryAction, TaskConfig, TaskSpec,
};
pub use time::Timestamp;

/// Errors of the domain model: a field that does not validate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A field's value is not acceptable.
    #[error("invalid {field}: {detail}")]
    Invalid {
        /// The field, as a JSON path.
        field: &'static str,
        /// Why.
        detail: String,
    },
    /// Two fields disagree.
    #[error("conflicting {field}: {detail}")]
    Conflict {
        /// The field, as a JSON path.
        field: &'static str,
        /// Why.
        detail: String,
    },
}

impl ModelError {
    /// Renames the field of an `Invalid` error (ids are checked without knowing their field).
    pub fn in_field(self, field: &'static str) -> Self {
        match self {
            ModelError::Invalid { detail, .. } => ModelError::Invalid { field, detail },
            other => other,
        }
    }
}
