//! Tier 2 — features: failure rows → an `Array2<f64>` with named columns, for the clustering
//! and ranking stages above.
//!
//! ```text
//! store (FailureRow) ──► Featurizer ──► FeatureMatrix (raw) ──► Scaler ──► cluster / ranking
//!                        per-worker/per-task state, O(1) per failure
//! ```
//!
//! The columns, in order (see [`FeatureSchema`]; version [`FEATURE_SCHEMA_VERSION`]):
//!
//! | columns | value |
//! |---|---|
//! | `hw_<CLASS>` × 11 | one-hot hardware class, in [`HardwareClass::ALL`] order |
//! | `kind_<kind>` × 17 | one-hot failure kind, in [`FailureKind::ALL`] order |
//! | `tpl_<i>` × `template_buckets` | signed feature hashing of the template id: ±1 in one bucket, all 0 without a template |
//! | `log2_batch_size` | log2 of the batch size (0 when unknown) |
//! | `precision_rank` | position of the precision from fp64 (0) to int4 (7); fp32 (1) when unknown |
//! | `attempt` | the task's failure count so far, this one included (1 = first), capped at `attempt_cap` |
//! | `memory_gib` | device memory in GiB (0 when unknown or invalid) |
//! | `log_gap_worker_s` | ln(1 + seconds since the worker's previous failure), the gap capped at `gap_cap_s` (a worker's first failure counts as the cap) |
//! | `worker_rate_per_h` | the worker's earlier failures within the trailing `window_s`, per hour |
//! | `task_recent_failures` | the task's earlier failures within the trailing `window_s` |
//! | `hour_sin`, `hour_cos` | UTC hour of day on the unit circle |
//!
//! History features (attempt, gaps, rates) are computed in timestamp order: the batch
//! [`featurize`] visits rows by time (stable for ties) and writes each row in its input
//! position; the online [`Featurizer`] sees failures as they come. A batch over rows equals the
//! same rows fed one by one in time order.
//!
//! A [`Scaler`] (fitted on training rows: measures standardized, indicators kept as 0/±1, then
//! each block multiplied by its [`FeatureWeights`] weight) is stored beside a fitted model with
//! the schema it was fitted on; loading it under another schema is refused
//! ([`FeatureError::SchemaMismatch`]).
//!
//! ```
//! use faultline::features::{featurize, FeatureParams, Scaler};
//! # use faultline::store::FailureRow;
//! # let rows: Vec<FailureRow> = Vec::new();
//! let raw = featurize(&rows, &FeatureParams::default()).unwrap();
//! assert!(Scaler::fit(&raw, &Default::default()).is_err()); // no rows to fit on
//! assert_eq!(raw.x.ncols(), raw.schema.names.len());
//! ```
//!
//! [`HardwareClass::ALL`]: crate::model::HardwareClass::ALL
//! [`FailureKind::ALL`]: crate::model::FailureKind::ALL

mod featurizer;
mod scaler;
mod schema;
#[cfg(test)]
pub(crate) mod tests;

pub use featurizer::{featurize, splitmix64, FeatureMatrix, FeatureParams, Featurizer};
pub use scaler::{FeatureWeights, Scaler};
pub use schema::{Block, FeatureSchema, FEATURE_SCHEMA_VERSION, NUMERIC_COLUMNS};

/// Errors of the features stage.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    /// A parameter is out of range.
    #[error("invalid feature parameter {field}: {detail}")]
    InvalidParam {
        /// Field path, e.g. `features.window_s`.
        field: String,
        /// Why.
        detail: String,
    },
    /// A stored artifact was built with another feature schema.
    #[error("feature schema mismatch: {detail}")]
    SchemaMismatch {
        /// Which version or column differs.
        detail: String,
    },
    /// A matrix or row does not have the schema's width.
    #[error("expected {expected} feature columns, got {got}")]
    Width {
        /// Columns of the schema.
        expected: usize,
        /// Columns given.
        got: usize,
    },
    /// A scaler cannot be fitted on no rows.
    #[error("cannot fit a scaler on an empty matrix")]
    Empty,
}
