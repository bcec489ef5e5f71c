//! Tier 4 — evaluation suites on labelled data.
//!
//! [`tsv`] reads tab-separated files (also used by `faultline classify --tsv`); [`classify`]
//! scores the failure classifier on labelled messages.

pub mod classify;
pub mod tsv;
