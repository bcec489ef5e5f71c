//! Tier 4 — evaluation suites on labelled data.
//!
//! [`tsv`] reads tab-separated files (also used by `faultline classify --tsv`); [`classify`]
//! scores the failure classifier on labelled messages; [`patterns`] scores bad-worker detection
//! against simulated fleets' ground truth; [`ranking`] estimates off-policy, from the logged
//! history and its propensities, how candidate recovery policies would do.

pub mod classify;
pub mod patterns;
pub mod ranking;
pub mod templates;
pub mod tsv;
