//! The rows of the history: one [`Entry`] per logged fact, in one of seven tables.

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{
    FailureKind, FailureRecord, FailureType, HardwareClass, Outcome, RecoveryAction,
    RecoveryStrategy, TaskId, TaskState, Timestamp,
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
    /// Trained models' success tables applied to the learned ranking, where they were.
    RankingSeeds,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 7] = [
        Table::Failures,
        Table::Actions,
        Table::Outcomes,
        Table::TaskStates,
        Table::Patterns,
        Table::Checkpoints,
        Table::RankingSeeds,
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
            Table::RankingSeeds => "ranking_seeds",
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

/// Where in the learned ranking a seeded context sits: a coarse (hardware class, kind)
/// context, or a finer one below it keyed as the ranking keys them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedLevel {
    /// The (hardware class, kind) context itself.
    Coarse,
    /// A fine context below it (classifier rule, Xid code, repeat failure).
    Fine,
    /// A finest context (a fine context refined by a message signature).
    Finest,
}

/// One strategy's outcomes in a seeded context (undiscounted, as a model's tables count
/// them; the ranking scales them down to its `seed_strength`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeededStrategy {
    /// The strategy.
    pub strategy: RecoveryStrategy,
    /// Successful outcomes.
    pub successes: f64,
    /// Failed outcomes.
    pub failures: f64,
    /// Sum of the reported costs.
    #[serde(default)]
    pub cost: f64,
    /// Outcomes with a reported cost.
    #[serde(default)]
    pub costed: f64,
}

/// The outcomes of one context of the learned ranking, learned elsewhere (a trained model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeededContext {
    /// Hardware class.
    pub hardware_class: HardwareClass,
    /// Failure kind (as the ranking ranks it).
    pub kind: FailureKind,
    /// Coarse, fine or finest.
    pub level: SeedLevel,
    /// The finer context's key (0 for a coarse context).
    #[serde(default)]
    pub key: u64,
    /// Outcomes per strategy.
    pub strategies: Vec<SeededStrategy>,
}

/// A trained model's success tables as the learned ranking took them in: only the contexts
/// it seeded (those it had no evidence of), in the order it did, each with its counts as the
/// ranking then held them (scaled down to its `seed_strength`). Logged where it happened,
/// so that a replay seeds the same contexts at the same point of the history as the engine
/// that applied the model did (a review: restarted with `--model`, a server decided 4,995 of
/// 5,000 later failures otherwise than one that never stopped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingSeedRow {
    /// When it was applied (wall clock).
    pub timestamp: Timestamp,
    /// The model's name and version, as its manifest gives them.
    pub model: String,
    /// The contexts seeded, in order.
    pub contexts: Vec<SeededContext>,
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
    /// A model's success tables applied to the learned ranking.
    RankingSeed(RankingSeedRow),
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
            Entry::RankingSeed(_) => Table::RankingSeeds,
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
            Entry::RankingSeed(r) => r.timestamp,
        }
    }
}
