//! Decision benchmark: replays the standard 10k-failure stream
//! (`../shared/data/bench/stream_10k.jsonl`, 200 workers) through `Engine::handle_failure`.
//!
//! Prints per-decision latency percentiles (p50, p90, p99, p99.9 over 5 full replays, each on
//! a fresh engine), then lets criterion time whole replays (throughput in decisions/s).
//! Run: `cargo bench --bench decide`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The allocator the `faultline` binary (CLI, server) uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use faultline::config::EngineConfig;
use faultline::engine::{Engine, WorkerRegistry};
use faultline::{FailureRecord, FailureReport, Outcome, Timestamp};

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/bench")
}

/// Records with the logged outcome of the stream (`ml_feedback.success`), when it has one.
type Stream = Vec<(FailureRecord, Option<bool>)>;

fn load() -> Option<(Stream, WorkerRegistry)> {
    let dir = bench_dir();
    let stream = dir.join("stream_10k.jsonl");
    let Ok(text) = std::fs::read_to_string(&stream) else {
        eprintln!("skipping: {} is absent", stream.display());
        return None;
    };
    let records = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let r: FailureReport = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", stream.display(), i + 1));
            let success = r.ml_feedback.as_ref().map(|f| f.success);
            (
                r.check(Timestamp::from_micros(0)).expect("valid record"),
                success,
            )
        })
        .collect();
    let registry = WorkerRegistry::load(&dir.join("workers_200.json")).expect("workers");
    Some((records, registry))
}

fn engine(registry: &WorkerRegistry, ranking: bool) -> Engine {
    let mut config = EngineConfig::default();
    config.ranking.enabled = ranking;
    let mut e = Engine::new(config).expect("default config");
    e.set_registry(registry.clone());
    e
}

/// Per-decision latency over 5 replays. With `ranking`, the learned ranking is on and the
/// stream's logged outcomes are fed back after each decision (not timed), so the ranking has
/// evidence to rank with.
fn percentiles(records: &Stream, registry: &WorkerRegistry, ranking: bool) {
    let mut lat: Vec<Duration> = Vec::with_capacity(records.len() * 5);
    for _ in 0..5 {
        let mut e = engine(registry, ranking);
        for (r, success) in records {
            let t = Instant::now();
            let a = e.handle_failure(r);
            lat.push(t.elapsed());
            std::hint::black_box(&a);
            if let (true, Some(success)) = (ranking, success) {
                e.record_outcome(&Outcome {
                    task_id: r.task_id.to_string(),
                    success: *success,
                    strategy: None,
                    time_to_recovery_s: None,
                    cost: None,
                    timestamp: None,
                })
                .expect("known task");
            }
        }
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize].as_nanos() as f64 / 1000.0;
    let total: Duration = lat.iter().sum();
    eprintln!(
        "decide/stream_10k{} per decision over {} decisions: p50 {:.2} µs, p90 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs; {:.0} decisions/s",
        if ranking { " (ranking on)" } else { "" },
        lat.len(),
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.999),
        lat.len() as f64 / total.as_secs_f64()
    );
}

fn decide(c: &mut Criterion) {
    let Some((records, registry)) = load() else {
        return;
    };
    percentiles(&records, &registry, false);
    percentiles(&records, &registry, true);
    let records: Vec<FailureRecord> = records.into_iter().map(|r| r.0).collect();
    let mut g = c.benchmark_group("decide");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.sample_size(20);
    g.bench_with_input(
        BenchmarkId::new("stream_replay", records.len()),
        &records,
        |b, recs| {
            b.iter_batched(
                || engine(&registry, false),
                |mut e| {
                    for r in recs {
                        std::hint::black_box(e.handle_failure(r));
                    }
                    e
                },
                BatchSize::LargeInput,
            )
        },
    );
    g.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
