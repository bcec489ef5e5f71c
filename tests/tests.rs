//! Integration tests: one binary, one module per area.

mod analyze;
mod api;
mod cli;
mod cluster;
mod crash;
mod http;
mod ingest;
mod interop;
mod patterns;
mod ranking;
mod restart;
mod sim;
mod template;
mod tiers;
mod train;
mod util;
