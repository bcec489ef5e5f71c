//! Integration tests: one binary, one module per area.

mod cli;
mod cluster;
mod crash;
mod ingest;
mod interop;
mod patterns;
mod ranking;
mod restart;
mod sim;
mod template;
mod tiers;
mod util;
