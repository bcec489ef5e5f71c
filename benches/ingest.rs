//! Ingest benchmark: 1M JSONL failure records → the Parquet history, through the same
//! pipeline as `faultline ingest` (parse, check, classify with a per-thread cache and encode
//! the payload into Arrow columns on worker threads, `ParquetStore::write_columns` every 50k records).
//!
//! The records are generated once, seeded, with the message templates, hardware mix and
//! record shape of `../shared/data/bench/stream_10k.jsonl`, into
//! `$FAULTLINE_BENCH_DIR` (default: the system temp dir)/`faultline-ingest-bench/`; the file
//! is reused by later runs and by the peak-RSS measurement of the CLI:
//!
//! ```sh
//! cargo bench --bench ingest
//! /usr/bin/time -v target/release/faultline ingest /tmp/faultline-ingest-bench/records_1000000.jsonl \
//!     --data /tmp/faultline-ingest-bench/store --quiet
//! ```
//!
//! Prints one timed ingest per thread count (records/s, MB/s), then lets criterion time
//! whole ingests (throughput in records/s), then each stage alone on one thread over the
//! first 20k records (`ingest_stage/{parse,check,classify_encode,write}`), to show where a
//! record's CPU time goes: `cargo bench --bench ingest -- ingest_stage`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use faultline::analyze::{classifying_rows, write_classified, ClassifiedBatch, ClassifiedRows};
use faultline::ingest::{self, BadLine, JsonlSource, PipelineOptions, Source, Summary};
use faultline::model::{FailureRecord, FailureReport};
use faultline::store::{ParquetStore, StoreOptions};
use faultline::Timestamp;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const SEED: u64 = 20_250_313;
const SIZES: [usize; 1] = [1_000_000];
const BATCHES: [u32; 5] = [1, 4, 8, 16, 32];

fn bench_dir() -> PathBuf {
    std::env::var_os("FAULTLINE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("faultline-ingest-bench")
}

/// One message of a template, with its variable parts drawn from `rng`.
fn message(template: &str, worker: &str, rng: &mut Xoshiro256PlusPlus) -> String {
    let models = [
        "llama-2-7b",
        "whisper-tiny",
        "t5-large",
        "vit-base-patch16-224",
        "bert-base",
    ];
    match template {
        "cuda_oom" => {
            let total = [39.59, 79.15, 23.65][rng.gen_range(0..3)];
            format!(
                "CUDA out of memory. Tried to allocate {:.2} GiB (GPU {}; {total:.2} GiB total capacity; {:.2} GiB already allocated)",
                [0.5, 1.0, 2.0, 4.0, 8.0][rng.gen_range(0..5)],
                rng.gen_range(0..8),
                rng.gen_range(1.0..total)
            )
        }
        "cuda_illegal" => {
            "RuntimeError: CUDA error: an illegal memory access was encountered".into()
        }
        "cuda_assert" => "RuntimeError: CUDA error: device-side assert triggered".into(),
        "cuda_failure" => format!(
            "CUDA failure {}: unspecified launch failure",
            [700, 719, 999][rng.gen_range(0..3)]
        ),
        "nccl" => format!(
            "RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:{}, unhandled system error, NCCL version 2.18.{}",
            rng.gen_range(1000..2000),
            rng.gen_range(1..6)
        ),
        "conn_reset" => format!(
            "ConnectionResetError: [Errno 104] Connection reset by peer ({worker} -> coordinator:{})",
            [8080, 8765][rng.gen_range(0..2)]
        ),
        "grpc_deadline" => format!(
            "grpc: DEADLINE_EXCEEDED; connection timed out after {} ms",
            [5000, 10000, 30000][rng.gen_range(0..3)]
        ),
        "timeout" => format!(
            "TimeoutError after {}s waiting for {}",
            [60, 120, 300, 600][rng.gen_range(0..4)],
            ["inference", "result upload", "allreduce", "checkpoint write", "data loader"]
                [rng.gen_range(0..5)]
        ),
        "value_error" => format!(
            "ValueError: expected input with shape [1, {}] but got [{}, {}]",
            [128, 512, 1024][rng.gen_range(0..3)],
            [1, 8, 16][rng.gen_range(0..3)],
            [256, 2048][rng.gen_range(0..2)]
        ),
        "segfault" => format!(
            "Fatal Python error: Segmentation fault (core dumped) in thread {}",
            rng.gen_range(1..100)
        ),
        "model_missing" => format!(
            "KeyError: '{}' not found in model registry",
            models[rng.gen_range(0..models.len())]
        ),
        "oom_killer" => format!(
            "Killed (OOM killer): process {} rss={}MB",
            rng.gen_range(1000..60000),
            rng.gen_range(8000..90000)
        ),
        "cpu_oom" => format!(
            "MemoryError: Unable to allocate {}.0 GiB for an array (out of memory)",
            rng.gen_range(1..8)
        ),
        "disk_full" => format!(
            "OSError: [Errno 28] No space left on device: '/tmp/cache/shard-{}.bin'",
            rng.gen_range(0..1000)
        ),
        "mkl" => "Intel MKL ERROR: Parameter 4 was incorrect on entry to DGEMM".into(),
        "worker_disc" => format!("worker disconnected: missed {} heartbeats", rng.gen_range(3..13)),
        "tpu_oom" => format!(
            "RESOURCE_EXHAUSTED: Out of memory while trying to allocate {} bytes",
            rng.gen_range(1_000_000_000u64..20_000_000_000)
        ),
        "tpu_unresponsive" => format!(
            "TPU unresponsive: health check failed on tpu-host-{}",
            rng.gen_range(0..40)
        ),
        "xla_compile" => format!(
            "XlaRuntimeError: INTERNAL: compilation failure for HLO module jit_step.{}",
            rng.gen_range(0..1000)
        ),
        "webgpu_lost" => format!(
            "WebGPU context lost (reason: {})",
            ["unknown", "destroyed"][rng.gen_range(0..2)]
        ),
        "gpubuffer_oom" => format!(
            "GPUDevice.createBuffer: out of memory ({} MB requested)",
            [256, 512, 1024, 2048][rng.gen_range(0..4)]
        ),
        "browser_crash" => format!(
            "browser crash detected ({} renderer pid {})",
            ["chrome", "edge", "firefox"][rng.gen_range(0..3)],
            rng.gen_range(1000..60000)
        ),
        "browser_disc" => format!(
            "browser disconnected: websocket closed with code {}",
            [1001, 1006][rng.gen_range(0..2)]
        ),
        "webnn_unsupported" => format!(
            "WebNN: failed to build graph: operator '{}' is not supported",
            ["gelu", "layerNormalization", "gather", "erf"][rng.gen_range(0..4)]
        ),
        other => format!("unexpected failure in {other}"),
    }
}

/// (platform, template, error type, weight) — the mix of the bench stream.
const MIX: &[(&str, &str, &str, u32)] = &[
    ("GPU", "cuda_oom", "cuda_error", 1015),
    ("WEBGPU", "webgpu_lost", "webgpu_error", 626),
    ("CPU", "segfault", "runtime_error", 479),
    ("CPU", "cpu_oom", "resource_error", 429),
    ("GPU", "cuda_illegal", "cuda_error", 397),
    ("GPU", "timeout", "timeout", 370),
    ("GPU", "conn_reset", "network_error", 359),
    ("WEBGPU", "browser_crash", "browser_error", 348),
    ("GPU", "cuda_assert", "cuda_error", 279),
    ("GPU", "value_error", "runtime_error", 269),
    ("WEBNN", "browser_crash", "browser_error", 266),
    ("TPU", "tpu_unresponsive", "hardware_error", 261),
    ("CPU", "conn_reset", "network_error", 241),
    ("CPU", "disk_full", "system_error", 239),
    ("WEBGPU", "timeout", "timeout", 236),
    ("CPU", "timeout", "timeout", 221),
    ("CPU", "mkl", "runtime_error", 216),
    ("TPU", "tpu_oom", "resource_error", 212),
    ("WEBGPU", "conn_reset", "network_error", 199),
    ("GPU", "oom_killer", "system_error", 189),
    ("WEBNN", "webnn_unsupported", "webnn_error", 185),
    ("WEBGPU", "browser_disc", "browser_error", 174),
    ("GPU", "nccl", "runtime_error", 164),
    ("CPU", "value_error", "runtime_error", 162),
    ("GPU", "worker_disc", "worker_error", 143),
    ("TPU", "xla_compile", "runtime_error", 123),
    ("CPU", "oom_killer", "system_error", 112),
    ("GPU", "grpc_deadline", "network_error", 106),
    ("WEBGPU", "gpubuffer_oom", "webgpu_error", 105),
    ("GPU", "model_missing", "runtime_error", 102),
    ("TPU", "timeout", "timeout", 99),
    ("GPU", "cuda_failure", "cuda_error", 98),
];

/// Writes `n` records like the bench stream's lines (seeded) to `path`.
fn generate(n: usize, path: &Path) -> std::io::Result<()> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let total: u32 = MIX.iter().map(|m| m.3).sum();
    let tmp = path.with_extension("jsonl.tmp");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let start = Timestamp::parse("2025-03-13T00:00:00").map_or(0, Timestamp::as_micros);
    let mut t = start;
    let mut task = 0u64;
    let precisions = ["fp32", "fp16", "bf16"];
    let models = [
        "llama-2-7b",
        "whisper-tiny",
        "t5-large",
        "vit-base-patch16-224",
        "bert-base",
    ];
    for seq in 0..n {
        let mut pick = rng.gen_range(0..total);
        let (platform, template, etype, _) = *MIX
            .iter()
            .find(|m| {
                if pick < m.3 {
                    true
                } else {
                    pick -= m.3;
                    false
                }
            })
            .unwrap_or(&MIX[0]);
        // ~1.1 s between failures on average: 1M records span about 13 days.
        t += rng.gen_range(0..2_200_000);
        let new_task = rng.gen_bool(0.55);
        if new_task {
            task += 1;
        }
        let worker = format!(
            "worker-{}-{:03}",
            platform.to_ascii_lowercase(),
            rng.gen_range(0..40)
        );
        let msg = message(template, &worker, &mut rng);
        let ts = Timestamp::from_micros(t).to_string();
        let ts = ts.trim_end_matches('Z');
        let mut line = serde_json::json!({
            "seq": seq,
            "ts": ts,
            "t_offset_s": (t - start) as f64 / 1e6,
            "task_id": format!("task-{task:07}"),
            "task_is_new": new_task,
            "attempt": if new_task { 1 } else { rng.gen_range(2..6) },
            "worker_id": worker,
            "platform": platform,
            "error": {"message": msg, "type": etype, "stacktrace": ""},
            "template": template,
        });
        if new_task {
            line["task"] = serde_json::json!({
                "task_id": format!("task-{task:07}"),
                "model": models[rng.gen_range(0..models.len())],
                "platform": platform,
                "config": {
                    "batch_size": BATCHES[rng.gen_range(0..BATCHES.len())],
                    "precision": precisions[rng.gen_range(0..3)],
                },
                "requirements": {"hardware": [platform.to_ascii_lowercase()]},
                "retry_count": 0,
            });
        }
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, path)
}

/// The input file of `n` records, generated on first use.
fn data_file(n: usize) -> PathBuf {
    let dir = bench_dir();
    let path = dir.join(format!("records_{n}.jsonl"));
    if !path.is_file() {
        std::fs::create_dir_all(&dir).expect("bench directory");
        let t = Instant::now();
        generate(n, &path).expect("generate bench records");
        eprintln!(
            "ingest: generated {} ({n} records) in {:.1} s",
            path.display(),
            t.elapsed().as_secs_f64()
        );
    }
    path
}

/// The pipeline of `faultline ingest`: JSONL → check → classify (cached) and encode on the
/// workers → `ParquetStore::write_columns`.
fn ingest(input: &Path, data: &Path, threads: Option<usize>) -> Summary {
    let mut store = ParquetStore::open(data, StoreOptions::default()).expect("open store");
    let sources: Vec<Box<dyn Source>> =
        vec![Box::new(JsonlSource::open(input).expect("open input"))];
    let mut opts = PipelineOptions::new(Timestamp::from_micros(0));
    if let Some(t) = threads {
        opts.threads = t;
    }
    ingest::run_rows(
        sources,
        &opts,
        classifying_rows,
        ClassifiedBatch::new,
        |batch| write_classified(&mut store, batch),
        |bad: &BadLine| panic!("generated record rejected: {bad}"),
        |_| {},
    )
    .expect("ingest")
}

fn once(n: usize, input: &Path) {
    let bytes = std::fs::metadata(input).map_or(0, |m| m.len());
    let cpus = std::thread::available_parallelism().map_or(2, usize::from);
    let mut counts = vec![1, cpus];
    counts.dedup();
    for threads in counts {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        let s = ingest(input, dir.path(), Some(threads));
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(s.ingested as usize, n);
        eprintln!(
            "ingest/jsonl_{n} with {threads} worker thread{}: {:.2} s, {:.0} records/s, {:.0} MB/s, {} batches",
            if threads == 1 { "" } else { "s" },
            secs,
            n as f64 / secs,
            bytes as f64 / secs / 1e6,
            s.batches
        );
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(40))
        .warm_up_time(Duration::from_secs(1));
    for n in SIZES {
        let input = data_file(n);
        once(n, &input);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("jsonl", n), &input, |b, input| {
            b.iter_batched(
                || tempfile::tempdir().expect("tempdir"),
                |dir| {
                    let s = ingest(input, dir.path(), None);
                    std::hint::black_box(s);
                    dir
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

/// Records per stage measurement.
const STAGE_RECORDS: usize = 20_000;

/// Each stage of the pipeline alone, on one thread, over the first [`STAGE_RECORDS`]
/// records of the input: where a record's CPU time goes.
fn stages(c: &mut Criterion) {
    let input = data_file(SIZES[0]);
    let text: Vec<u8> = std::fs::read(&input)
        .expect("read input")
        .split_inclusive(|&b| b == b'\n')
        .take(STAGE_RECORDS)
        .flatten()
        .copied()
        .collect();
    let now = Timestamp::from_micros(0);
    let reports = || -> Vec<FailureReport> {
        let (items, _) = ingest::jsonl::parse_chunk(1, &text);
        items.into_iter().map(|(_, r)| r.expect("parses")).collect()
    };
    let records = || -> Vec<FailureRecord> {
        reports()
            .into_iter()
            .map(|r| r.check(now).expect("checks"))
            .collect()
    };
    let mut g = c.benchmark_group("ingest_stage");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(STAGE_RECORDS as u64));
    g.bench_function("parse", |b| {
        b.iter(|| ingest::jsonl::parse_chunk(1, std::hint::black_box(&text)))
    });
    g.bench_function("check", |b| {
        b.iter_batched(
            reports,
            |rs| {
                rs.into_iter()
                    .map(|r| r.check(now).expect("checks"))
                    .collect::<Vec<_>>()
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("classify_encode", |b| {
        b.iter_batched(
            records,
            |rs| {
                // A fresh worker each time: its verdict cache starts empty, as on a chunk
                // of new messages.
                let mut add = classifying_rows();
                let mut rows = ClassifiedRows::default();
                for r in rs {
                    add(r, &mut rows);
                }
                rows
            },
            BatchSize::LargeInput,
        )
    });
    let rows = || {
        let mut add = classifying_rows();
        let mut rows = ClassifiedRows::default();
        for r in records() {
            add(r, &mut rows);
        }
        rows
    };
    g.bench_function("write", |b| {
        b.iter_batched(
            || (rows(), tempfile::tempdir().expect("tempdir")),
            |(mut rows, dir)| {
                let mut store =
                    ParquetStore::open(dir.path(), StoreOptions::default()).expect("open store");
                let mut batch = ClassifiedBatch::new();
                ingest::Batch::append(&mut batch, &mut rows, 0..STAGE_RECORDS);
                write_classified(&mut store, batch).expect("write");
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench, stages);
criterion_main!(benches);
