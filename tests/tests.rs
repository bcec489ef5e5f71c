//! Integration tests: one binary, one module per area.

mod cli;
mod crash;
mod restart;
mod tiers;
mod util;
