//! Durable decisions: `Engine::decide` with WAL logging and group commit, replaying the
//! standard 10k stream (`../shared/data/bench/stream_10k.jsonl`) from 1, 4 and 16 threads
//! sharing one engine behind a mutex (decide under the lock, wait for the fsync outside it).
//! Prints decisions/s and per-decision latency (decide + fsync) p50/p99.
//! Run: `cargo bench --bench durable`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline::config::EngineConfig;
use faultline::engine::{Engine, WorkerRegistry};
use faultline::rules::RuleSet;
use faultline::store::StoreOptions;
use faultline::{FailureRecord, FailureReport, Timestamp};

fn main() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/bench");
    let Ok(text) = std::fs::read_to_string(dir.join("stream_10k.jsonl")) else {
        eprintln!(
            "skipping: {} is absent",
            dir.join("stream_10k.jsonl").display()
        );
        return;
    };
    let recs: Arc<Vec<FailureRecord>> = Arc::new(
        text.lines()
            .map(|l| {
                serde_json::from_str::<FailureReport>(l)
                    .unwrap()
                    .check(Timestamp::from_micros(0))
                    .unwrap()
            })
            .collect(),
    );
    let workers = WorkerRegistry::load(&dir.join("workers_200.json")).unwrap();
    for threads in [1usize, 4, 16] {
        let data = tempfile::tempdir().unwrap();
        let (mut engine, _) = Engine::open(
            data.path(),
            EngineConfig::default(),
            RuleSet::defaults(),
            StoreOptions::default(),
        )
        .unwrap();
        engine.set_registry(workers.clone());
        let engine = Arc::new(Mutex::new(engine));
        // Each thread takes every `threads`-th record, in stream order per thread.
        let n = if threads == 1 { 2_000 } else { recs.len() };
        let start = Instant::now();
        let lat: Vec<Duration> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|t| {
                    let engine = Arc::clone(&engine);
                    let recs = Arc::clone(&recs);
                    s.spawn(move || {
                        let mut lat = Vec::new();
                        for r in recs.iter().take(n).skip(t).step_by(threads) {
                            let t0 = Instant::now();
                            let (_, ack) = engine.lock().unwrap().decide(r).unwrap();
                            ack.wait().unwrap();
                            lat.push(t0.elapsed());
                        }
                        lat
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let wall = start.elapsed();
        let mut lat = lat;
        lat.sort();
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        eprintln!(
            "durable/stream_10k threads={threads} decisions={}: {:.0} decisions/s, latency p50 {:.0} µs, p99 {:.0} µs",
            lat.len(),
            lat.len() as f64 / wall.as_secs_f64(),
            p(0.5),
            p(0.99)
        );
    }
}
