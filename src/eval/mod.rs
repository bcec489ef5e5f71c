//! Tier 4 — evaluation suites on labelled data (placeholder).
pub mod classify;
pub mod tsv;
