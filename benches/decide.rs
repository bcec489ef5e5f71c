//! Decision benchmark: replays the standard 10k-failure stream
//! (`../shared/data/bench/stream_10k.jsonl`, 200 workers) through `Engine::handle_failure`.
//!
//! Prints per-decision latency percentiles (p50, p90, p99, p99.9 over 5 full replays, each on
//! a fresh engine) and, from one more untimed replay, the heap allocations and bytes a
//! decision asks for; then lets criterion time whole replays (throughput in decisions/s).
//! Run: `cargo bench --bench decide`.

use std::alloc::{GlobalAlloc, Layout};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The allocator the `faultline` binary (CLI, server) uses, counting allocations only while
/// [`COUNTING`] is set (the timed replays pay one relaxed load per allocation).
struct Counted;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to mimalloc unchanged; the counters do not touch the memory.
unsafe impl GlobalAlloc for Counted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        mimalloc::MiMalloc.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        mimalloc::MiMalloc.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        mimalloc::MiMalloc.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        mimalloc::MiMalloc.realloc(ptr, layout, new_size)
    }
}

fn count(size: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counted = Counted;

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

/// Feeds the stream's logged outcome of `r`'s decision back to the engine, when it has one.
fn feed_back(e: &mut Engine, r: &FailureRecord, success: Option<bool>) {
    if let Some(success) = success {
        e.record_outcome(&Outcome {
            task_id: r.task_id.to_string(),
            success,
            strategy: None,
            time_to_recovery_s: None,
            cost: None,
            timestamp: None,
            attempt: None,
        })
        .expect("known task");
    }
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
            if ranking {
                feed_back(&mut e, r, *success);
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

/// Heap allocations (and reallocations) and bytes asked for per decision, ranking on, over one
/// replay on a fresh engine, after one decision on another engine that warms the process (the
/// classifier's patterns are compiled once per process). The outcomes are fed back uncounted.
fn allocations(records: &Stream, registry: &WorkerRegistry) {
    let mut e = engine(registry, true);
    for (r, _) in records.iter().take(1) {
        std::hint::black_box(e.handle_failure(r));
    }
    let mut e = engine(registry, true);
    ALLOCATIONS.store(0, Ordering::Relaxed);
    BYTES.store(0, Ordering::Relaxed);
    for (r, success) in records {
        COUNTING.store(true, Ordering::Relaxed);
        let a = e.handle_failure(r);
        COUNTING.store(false, Ordering::Relaxed);
        std::hint::black_box(&a);
        feed_back(&mut e, r, *success);
    }
    let n = records.len() as f64;
    eprintln!(
        "decide/stream_10k (ranking on) per decision over {} decisions: {:.2} allocations, {:.0} bytes",
        records.len(),
        ALLOCATIONS.load(Ordering::Relaxed) as f64 / n,
        BYTES.load(Ordering::Relaxed) as f64 / n
    );
}

fn decide(c: &mut Criterion) {
    let Some((records, registry)) = load() else {
        return;
    };
    percentiles(&records, &registry, false);
    percentiles(&records, &registry, true);
    allocations(&records, &registry);
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
