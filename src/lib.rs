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
//! The online loop of a coordinator that embeds the engine: decide, apply, report the
//! outcome, and keep the state across restarts. An in-memory engine saves its per-task state
//! with [`Engine::save_state`](engine::Engine::save_state); a durable one ([`Engine::open`](engine::Engine::open) on a data directory) logs
//! every decision and outcome and replays them, learned ranking included, when it opens again.
//! Give each report its own time (here one second apart): the retry budget, breakers and
//! patterns run on report time.
//!
//! ```
//! use faultline::prelude::*;
//! use faultline::store::StoreOptions;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut config = EngineConfig::default();
//! config.ranking.enabled = true; // learn which recovery works from the outcomes
//! let rules = faultline::rules::RuleSet::default();
//! let (mut engine, _opened) =
//!     Engine::open(dir.path(), config.clone(), rules.clone(), StoreOptions::default()).unwrap();
//! for i in 0..3 {
//!     let report: FailureReport = serde_json::from_str(&format!(
//!         r#"{{"task_id":"job-{i}","worker_id":"gpu-7","hardware":{{"class":"GPU"}},
//!            "error":{{"message":"CUDA out of memory"}},"timestamp":{}}}"#,
//!         1_767_225_600 + i
//!     ))
//!     .unwrap();
//!     let now = Timestamp::now();
//!     let record = report.check(now).unwrap();
//!     // Live: not a placeholder time, not dated far ahead of this clock.
//!     record.timestamp.check_live(now, faultline::engine::CLOCK_TOLERANCE_S).unwrap();
//!     let (action, ack) = engine.decide(&record).unwrap();
//!     ack.wait().unwrap(); // durable: now act on `action`
//!     let outcome = Outcome::verdict(action.task_id.as_str(), true);
//!     engine.record_outcome(&outcome).unwrap(); // logged and learned from
//! }
//! drop(engine);
//! // A restart: the three tasks, their outcomes and what the ranking learned come back.
//! let (engine, opened) = Engine::open(dir.path(), config, rules, StoreOptions::default()).unwrap();
//! assert!(opened.warnings.is_empty());
//! let job = engine.task(&TaskId::new("job-2").unwrap()).unwrap();
//! assert_eq!(job.attempts, 1);
//! assert!(job.outcome_recorded);
//! ```
//!
//! To see why an action was chosen, ask for the same decision with its explanation
//! ([`Engine::decide_explained`](engine::Engine::decide_explained)): what decided, and what
//! the learned ranking knew of each strategy it could choose from.
//!
//! ```
//! use faultline::prelude::*;
//!
//! let mut engine = Engine::new(EngineConfig::default()).unwrap();
//! let report: FailureReport = serde_json::from_str(r#"{"task_id":"t1","worker_id":"w1",
//!     "hardware":{"class":"GPU"},"error":{"message":"CUDA out of memory"},
//!     "task":{"config":{"batch_size":32}}}"#).unwrap();
//! let record = report.check(Timestamp::from_micros(0)).unwrap();
//! let (action, _ack, why) = engine.decide_explained(&record).unwrap();
//! assert_eq!(action.strategy, RecoveryStrategy::ReducedBatchSize);
//! assert!(why.summary.starts_with("the learned ranking is off"), "{}", why.summary);
//! ```
//!
//! Tiers (see `../shared/DESIGN.md` and `tests/tiers.rs`): `model`, `config` (0) →
//! `classify`, `template`, `ingest`, `store` (1) → `features` (2) → `rules`, `retry`,
//! `cluster`, `patterns`, `ranking` (3) → `engine`, `train`, `analyze`, `sim`, `eval` (4) →
//! `report`, `api` (5). A module imports only from lower tiers, with two exceptions the
//! tier test allows: `sim` and `eval` drive the `engine` (all three are tier 4).
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
