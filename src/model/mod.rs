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
pub use time::{LiveTimeError, Timestamp};

/// The name (then `-PID`) of the file `faultline simulate --out DIR` keeps in `DIR` while it
/// replaces its output files (failures, actions, outcomes, ground truth, summary) one rename
/// at a time. A directory holding one is a run interrupted in that window (or one replacing
/// them now): its files may be of two runs, and the readers of simulation directories refuse
/// it, naming it ([`simulation_replacing`]).
pub const SIMULATION_REPLACING: &str = ".simulate-replacing";

/// The first [`SIMULATION_REPLACING`] marker in `dir`, if any.
pub fn simulation_replacing(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        e.file_name()
            .to_string_lossy()
            .starts_with(SIMULATION_REPLACING)
            .then(|| e.path())
    })
}

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
    /// The field the error is about, as a JSON path.
    pub fn field(&self) -> &'static str {
        match self {
            ModelError::Invalid { field, .. } | ModelError::Conflict { field, .. } => field,
        }
    }

    /// Renames the field of an `Invalid` error (ids are checked without knowing their field).
    pub fn in_field(self, field: &'static str) -> Self {
        match self {
            ModelError::Invalid { detail, .. } => ModelError::Invalid { field, detail },
            other => other,
        }
    }
}
