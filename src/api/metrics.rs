//! Request and decision counters, rendered in the Prometheus text format for `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::App;
use crate::engine::StateStore;
use crate::{Outcome, RecoveryAction};

/// Upper bounds (seconds) of the request-duration histogram.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default, Clone)]
struct RouteStats {
    count: u64,
    sum_s: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Counters shared by all requests.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    routes: Mutex<BTreeMap<(&'static str, u16), RouteStats>>,
    strategies: Mutex<BTreeMap<&'static str, u64>>,
    decisions: AtomicU64,
    outcomes: AtomicU64,
    successes: AtomicU64,
    reloads: AtomicU64,
}

impl Metrics {
    pub(crate) fn request(&self, route: &'static str, status: u16, took: Duration) {
        let s = took.as_secs_f64();
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let r = routes.entry((route, status)).or_default();
        r.count += 1;
        r.sum_s += s;
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            r.buckets[i] += 1;
        }
    }

    pub(crate) fn decided(&self, actions: &[std::sync::Arc<RecoveryAction>]) {
        self.decisions
            .fetch_add(actions.len() as u64, Ordering::Relaxed);
        let mut by = self.strategies.lock().unwrap_or_else(|p| p.into_inner());
        for a in actions {
            *by.entry(a.strategy.as_str()).or_default() += 1;
        }
    }

    pub(crate) fn outcomes(&self, outcomes: &[Outcome]) {
        self.outcomes
            .fetch_add(outcomes.len() as u64, Ordering::Relaxed);
        let ok = outcomes.iter().filter(|o| o.success).count() as u64;
        self.successes.fetch_add(ok, Ordering::Relaxed);
    }

    pub(crate) fn reloaded(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn decisions_total(&self) -> u64 {
        self.decisions.load(Ordering::Relaxed)
    }

    pub(crate) fn outcomes_total(&self) -> u64 {
        self.outcomes.load(Ordering::Relaxed)
    }

    pub(crate) fn successes_total(&self) -> u64 {
        self.successes.load(Ordering::Relaxed)
    }

    pub(crate) fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    pub(crate) fn requests_total(&self) -> u64 {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes.values().map(|r| r.count).sum()
    }

    pub(crate) fn by_strategy(&self) -> BTreeMap<&'static str, u64> {
        self.strategies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The Prometheus exposition.
    pub(crate) fn render(&self, app: &App) -> String {
        let mut o = String::new();
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        o.push_str("# HELP faultline_http_requests_total HTTP requests by route and status.\n");
        o.push_str("# TYPE faultline_http_requests_total counter\n");
        for ((route, status), r) in &routes {
            let _ = writeln!(
                o,
                "faultline_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {}",
                r.count
            );
        }
        o.push_str("# HELP faultline_http_request_duration_seconds Request latency by route.\n");
        o.push_str("# TYPE faultline_http_request_duration_seconds histogram\n");
        let mut merged: BTreeMap<&str, RouteStats> = BTreeMap::new();
        for ((route, _), r) in &routes {
            let m = merged.entry(route).or_default();
            m.count += r.count;
            m.sum_s += r.sum_s;
            for (a, b) in m.buckets.iter_mut().zip(r.buckets) {
                *a += b;
            }
        }
        for (route, r) in &merged {
            let mut cumulative = 0;
            for (le, n) in BUCKETS.iter().zip(r.buckets) {
                cumulative += n;
                let _ = writeln!(
                    o,
                    "faultline_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                o,
                "faultline_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                r.count
            );
            let _ = writeln!(
                o,
                "faultline_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                r.sum_s
            );
            let _ = writeln!(
                o,
                "faultline_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                r.count
            );
        }
        o.push_str("# HELP faultline_decisions_total Recovery decisions by strategy.\n");
        o.push_str("# TYPE faultline_decisions_total counter\n");
        for (s, n) in self.by_strategy() {
            let _ = writeln!(o, "faultline_decisions_total{{strategy=\"{s}\"}} {n}");
        }
        let gauge = |o: &mut String, name: &str, help: &str, kind: &str, v: f64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        gauge(
            &mut o,
            "faultline_outcomes_total",
            "Outcomes reported.",
            "counter",
            self.outcomes_total() as f64,
        );
        gauge(
            &mut o,
            "faultline_outcome_successes_total",
            "Outcomes reported as successful.",
            "counter",
            self.successes_total() as f64,
        );
        gauge(
            &mut o,
            "faultline_model_reloads_total",
            "Model reloads.",
            "counter",
            self.reloads() as f64,
        );
        let flush = app.flush_health();
        gauge(
            &mut o,
            "faultline_flush_failures_total",
            "Flushes of the history from the WAL into Parquet that failed.",
            "counter",
            flush.failures_total as f64,
        );
        gauge(
            &mut o,
            "faultline_flush_failing",
            "Flushes failed in a row since the latest success (0: healthy).",
            "gauge",
            f64::from(flush.failing),
        );
        let compact = app.compact_health();
        gauge(
            &mut o,
            "faultline_compactions_total",
            "Compactions of the history's Parquet parts (periodic and asked for) that finished.",
            "counter",
            compact.runs_total as f64,
        );
        gauge(
            &mut o,
            "faultline_compaction_failures_total",
            "Compactions of the history's Parquet parts that failed.",
            "counter",
            compact.failures_total as f64,
        );
        gauge(
            &mut o,
            "faultline_compaction_parts_removed_total",
            "Parquet parts merged into others by compactions (or removed as already merged).",
            "counter",
            compact.parts_removed_total as f64,
        );
        gauge(
            &mut o,
            "faultline_wal_recoveries_total",
            "Times the data directory was opened again after the write-ahead log failed.",
            "counter",
            app.shared
                .wal_recoveries
                .load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
        let (tasks, pending) = {
            let e = app.engine();
            (e.state().len(), e.pending_entries())
        };
        gauge(
            &mut o,
            "faultline_wal_pending_entries",
            "Entries logged to the WAL and not yet flushed into Parquet.",
            "gauge",
            pending as f64,
        );
        gauge(
            &mut o,
            "faultline_tasks",
            "Tasks the engine knows.",
            "gauge",
            tasks as f64,
        );
        gauge(
            &mut o,
            "faultline_uptime_seconds",
            "Seconds since the server started.",
            "gauge",
            app.shared.started.elapsed().as_secs_f64(),
        );
        if let Some(rss) = resident_bytes() {
            gauge(
                &mut o,
                "process_resident_memory_bytes",
                "Resident memory.",
                "gauge",
                rss as f64,
            );
        }
        let model = app.model();
        if let Some(m) = &model.model {
            let man = m.manifest();
            let _ = writeln!(
                o,
                "# HELP faultline_model_info The model in use.\n# TYPE faultline_model_info gauge\nfaultline_model_info{{name=\"{}\",format_version=\"{}\"}} 1",
                man.name.replace(['"', '\\', '\n'], "_"),
                man.format_version
            );
        }
        o
    }
}

/// Resident set size from /proc (Linux); none elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
