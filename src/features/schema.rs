//! The feature schema: column names in order, with a version that changes whenever a column's
//! meaning or position does.

use serde::{Deserialize, Serialize};

use super::FeatureError;
use crate::model::{FailureKind, HardwareClass};

/// Version of the feature layout produced by this build. Bump it when a column is added,
/// removed, reordered or computed differently.
pub const FEATURE_SCHEMA_VERSION: u32 = 1;

/// The numeric columns after the one-hot and hashed blocks, in order.
pub const NUMERIC_COLUMNS: [&str; 9] = [
    "log2_batch_size",
    "precision_rank",
    "attempt",
    "memory_gib",
    "log_gap_worker_s",
    "worker_rate_per_h",
    "task_recent_failures",
    "hour_sin",
    "hour_cos",
];

/// Groups of columns, weighted together by a [`Scaler`](super::Scaler).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Block {
    /// `hw_*`: one-hot hardware class.
    Hardware,
    /// `kind_*`: one-hot failure kind.
    Kind,
    /// `tpl_*`: hashed template.
    Template,
    /// Batch size, precision, memory.
    Config,
    /// Attempt, gap since the worker's previous failure, worker rate, task's recent failures.
    History,
    /// Hour of day (sin, cos).
    Hour,
}

/// Column layout: named columns with a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSchema {
    /// Layout version ([`FEATURE_SCHEMA_VERSION`] for schemas built here).
    pub version: u32,
    /// Column names, one per matrix column.
    pub names: Vec<String>,
}

/// Offsets of the column blocks for a given number of template buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) kind: usize,
    pub(crate) template: usize,
    pub(crate) numeric: usize,
    pub(crate) width: usize,
}

impl Layout {
    pub(crate) fn new(template_buckets: usize) -> Self {
        let kind = HardwareClass::ALL.len();
        let template = kind + FailureKind::ALL.len();
        let numeric = template + template_buckets;
        Layout {
            kind,
            template,
            numeric,
            width: numeric + NUMERIC_COLUMNS.len(),
        }
    }
}

impl FeatureSchema {
    /// The schema of this build for `template_buckets` hashed template columns.
    pub fn new(template_buckets: usize) -> Self {
        let mut names = Vec::with_capacity(Layout::new(template_buckets).width);
        names.extend(
            HardwareClass::ALL
                .iter()
                .map(|c| format!("hw_{}", c.as_str())),
        );
        names.extend(
            FailureKind::ALL
                .iter()
                .map(|k| format!("kind_{}", k.as_str())),
        );
        names.extend((0..template_buckets).map(|i| format!("tpl_{i}")));
        names.extend(NUMERIC_COLUMNS.iter().map(|n| n.to_string()));
        FeatureSchema {
            version: FEATURE_SCHEMA_VERSION,
            names,
        }
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// Position of a column by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Whether column `j` is an indicator (one-hot or hashed template) rather than a measure.
    pub fn is_indicator(&self, j: usize) -> bool {
        matches!(
            self.block(j),
            Some(Block::Hardware | Block::Kind | Block::Template)
        )
    }

    /// The block column `j` belongs to (`None` past the last column or for an unknown name).
    pub fn block(&self, j: usize) -> Option<Block> {
        let n = self.names.get(j)?.as_str();
        Some(if n.starts_with("hw_") {
            Block::Hardware
        } else if n.starts_with("kind_") {
            Block::Kind
        } else if n.starts_with("tpl_") {
            Block::Template
        } else if n.starts_with("hour_") {
            Block::Hour
        } else if matches!(n, "log2_batch_size" | "precision_rank" | "memory_gib") {
            Block::Config
        } else if NUMERIC_COLUMNS.contains(&n) {
            Block::History
        } else {
            return None;
        })
    }

    /// Refuses an artifact's schema (`stored`) that differs from `self` (what this build
    /// produces): another version, or other columns.
    pub fn check_compatible(&self, stored: &FeatureSchema) -> Result<(), FeatureError> {
        if stored.version != self.version {
            return Err(FeatureError::SchemaMismatch {
                detail: format!(
                    "stored features have schema version {}, this build produces version {}",
                    stored.version, self.version
                ),
            });
        }
        if stored.names != self.names {
            let first = stored
                .names
                .iter()
                .zip(&self.names)
                .position(|(a, b)| a != b)
                .unwrap_or(stored.names.len().min(self.names.len()));
            return Err(FeatureError::SchemaMismatch {
                detail: format!(
                    "stored features have {} columns, this build {}; first difference at column {first} ({:?} vs {:?})",
                    stored.names.len(),
                    self.names.len(),
                    stored.names.get(first),
                    self.names.get(first)
                ),
            });
        }
        Ok(())
    }
}
