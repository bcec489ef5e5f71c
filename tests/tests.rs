//! Integration tests: one binary, one module per area.

mod cli;
mod tiers;
mod util;
