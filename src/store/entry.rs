//! The rows of the history: one [`Entry`] per logged fact, in one of six tables.

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{
    FailureKind, FailureRecord, FailureType, HardwareClass, Outcome, RecoveryAction, TaskId,
    TaskState, Timestamp,
};

/// The tables of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Failures with their classification.
    Failures,
    /// Recovery actions decided.
    Actions,
    /// Outcomes of applied actions.
    Outcomes,
    /// Task state changes.
    TaskStates,
    /// Detected failure patterns.
    Patterns,
    /// Checkpoint index.
    Checkpoints,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 6] = [
        Table::Failures,
        Table::Actions,
        Table::Outcomes,
        Table::TaskStates,
        Table::Patterns,
        Table::Checkpoints,
    ];

    /// Directory name under `history/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Table::Failures => "failures",
            Table::Actions => "actions",
            Table::Outcomes => "outcomes",
            Table::TaskStates => "task_states",
            Table::Patterns => "patterns",
            Table::Checkpoints => "checkpoints",
        }
    }
}

/// A failure with its classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRow {
    /// The checked record.
    pub record: FailureRecord,
    /// Classified kind.
    pub kind: FailureKind,
    /// Coarse type.
    pub failure_type: FailureType,
    /// Classifier rule that decided.
    pub classifier_rule: String,
    /// Xid code, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xid: Option<u32>,
    /// Template id (set by the template miner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<u64>,
    /// Cluster id (set by clustering; `None` = noise or not clustered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<i64>,
}

/// A decided action with the version of the model that decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRow {
    /// The action (it carries source and propensity; shared with the engine's history).
    pub action: std::sync::Arc<RecoveryAction>,
    /// Model version ("rules" for the rule engine).
    pub model_version: std::borrow::Cow<'static, str>,
}

/// An outcome, with the time it was logged and the context of the action it is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRow {
    /// The outcome (its `strategy` filled from the task's latest action when it had none).
    pub outcome: Outcome,
    /// When (the outcome's own timestamp, or the task's latest failure).
    pub timestamp: Timestamp,
    /// Hardware class of the failure the action answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_class: Option<HardwareClass>,
    /// Kind of the failure the action answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FailureKind>,
}

/// A task state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStateRow {
    /// Task.
    pub task_id: TaskId,
    /// New state.
    pub state: TaskState,
    /// When.
    pub timestamp: Timestamp,
    /// Free text (who set it, why).
    #[serde(default)]
    pub note: String,
}

/// A detected pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternRow {
    /// Pattern kind (bad_worker, burst, rapid_failure, cluster...).
    pub kind: String,
    /// What it is about (worker id, class, kind, template...).
    pub key: String,
    /// Failures counted.
    pub count: u64,
    /// First failure in the pattern.
    pub first_seen: Timestamp,
    /// Latest failure in the pattern.
    pub last_seen: Timestamp,
    /// Confidence in [0, 1].
    pub confidence: f64,
    /// Recommended action, as text.
    pub recommended_action: String,
    /// Description.
    pub description: String,
}

/// A checkpoint in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRow {
    /// Task.
    pub task_id: TaskId,
    /// Checkpoint id.
    pub checkpoint_id: String,
    /// When it was created.
    pub timestamp: Timestamp,
    /// Size of the blob in bytes.
    pub size_bytes: u64,
    /// CRC32C of the blob, hex.
    pub checksum: String,
    /// Set when retention deleted the blob.
    #[serde(default)]
    pub deleted: bool,
}

/// An entry with its `payload` column (the entry as JSON) encoded ahead of the write, e.g. on
/// the side-table threads of `analyze`, so that [`ParquetStore::write_encoded`] only builds columns.
///
/// [`ParquetStore::write_encoded`]: super::ParquetStore::write_encoded
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    entry: Entry,
    payload: String,
}

impl Encoded {
    /// Encodes `entry`'s payload.
    pub fn new(entry: Entry) -> Result<Self, StoreError> {
        let payload =
            super::schema::payload(&entry).map_err(|e| StoreError::Encode(e.to_string()))?;
        Ok(Encoded { entry, payload })
    }

    /// The entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Its payload: the entry as JSON, exactly as the `payload` column holds it.
    pub fn payload(&self) -> &str {
        &self.payload
    }

    /// The entry, without its payload.
    pub fn into_entry(self) -> Entry {
        self.entry
    }
}

/// One logged fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "table", content = "row", rename_all = "snake_case")]
pub enum Entry {
    /// A failure.
    Failure(Box<FailureRow>),
    /// An action.
    Action(Box<ActionRow>),
    /// An outcome.
    Outcome(OutcomeRow),
    /// A task state change.
    TaskState(TaskStateRow),
    /// A pattern.
    Pattern(PatternRow),
    /// A checkpoint.
    Checkpoint(CheckpointRow),
}

impl Entry {
    /// The table this entry belongs to.
    pub fn table(&self) -> Table {
        match self {
            Entry::Failure(_) => Table::Failures,
            Entry::Action(_) => Table::Actions,
            Entry::Outcome(_) => Table::Outcomes,
            Entry::TaskState(_) => Table::TaskStates,
            Entry::Pattern(_) => Table::Patterns,
            Entry::Checkpoint(_) => Table::Checkpoints,
        }
    }

    /// The entry's time (it decides the date partition).
    pub fn timestamp(&self) -> Timestamp {
        match self {
            Entry::Failure(f) => f.record.timestamp,
            Entry::Action(a) => a.action.timestamp,
            Entry::Outcome(o) => o.timestamp,
            Entry::TaskState(s) => s.timestamp,
            Entry::Pattern(p) => p.last_seen,
            Entry::Checkpoint(c) => c.timestamp,
        }
    }
}
