//! faultline — hardware-aware fault tolerance for ML jobs.
//!
//! A failure report goes in ([`FailureReport`]); the engine classifies it
//! ([`classify`]), looks up the rule ladder for its hardware class and kind ([`rules`]),
//! computes a backoff ([`retry`]), mutates the task where the strategy asks for it, and
//! returns a [`RecoveryAction`] that says what to do, where, and why (in an `Arc`: the
//! engine keeps the same action in the task's history, without a copy).
//!
//! ```
//! use faultline::prelude::*;
//!
//! let mut engine = Engine::new(EngineConfig::default()).unwrap();
//! let report: FailureReport = serde_json::from_str(r#"{"task_id":"t1","worker_id":"w1",
//!     "hardware":{"class":"GPU"},
//!     "error":{"message":"CUDA out of memory. Tried to allocate 2.00 GiB"},
//!     "task":{"config":{"batch_size":32,"precision":"fp16"}}}"#).unwrap();
//! let action = engine.handle_failure(&report.check(Timestamp::from_micros(0)).unwrap());
//! assert_eq!(action.strategy, RecoveryStrategy::ReducedBatchSize);
//! assert_eq!(action.modified_config.as_ref().unwrap().batch_size, Some(16));
//! ```
//!
//! Tiers (see ARCHITECTURE.md): `model`, `error`, `config` (0) → `classify` (1) →
//! `rules`, `retry` (3) → `engine`, `eval` (4). A module imports only from lower tiers.
#![warn(missing_docs)]

pub mod analyze;
pub mod api;
pub mod classify;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod error;
pub mod eval;
pub mod features;
pub mod ingest;
pub mod model;
pub mod patterns;
pub mod ranking;
pub mod report;
pub mod retry;
pub mod rules;
pub mod sim;
pub mod store;
pub mod template;
pub mod train;

pub use error::{Error, Result};
pub use model::*;

/// The names most programs need.
pub mod prelude {
    pub use crate::classify::{Classification, Classifier, ClassifyInput};
    pub use crate::config::EngineConfig;
    pub use crate::engine::{apply, Coordinator, Engine, MemoryCoordinator, Worker};
    pub use crate::model::*;
    pub use crate::rules::RuleSet;
}
