//! Features benchmark: 1M seeded synthetic failure rows (see `common/mod.rs`) → the raw
//! feature matrix, in one batch (`featurize`: visits rows in time order, fills a 1M × 45
//! matrix) and one failure at a time (`Featurizer::push_into`, the online path).
//!
//! ```sh
//! cargo bench --bench features
//! ```
//!
//! Prints one timed run of each (records/s), then lets criterion time the batch (throughput
//! in records/s).

mod common;

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use faultline::features::{featurize, FeatureParams, Featurizer};

const SEED: u64 = 20_250_313;
const SIZES: [usize; 1] = [1_000_000];

fn features(c: &mut Criterion) {
    let params = FeatureParams::default();
    let mut g = c.benchmark_group("features");
    g.sample_size(10);
    for n in SIZES {
        let started = Instant::now();
        let rows = common::rows(n, SEED);
        eprintln!("generated {n} rows in {:.2?}", started.elapsed());

        let started = Instant::now();
        let m = featurize(&rows, &params).expect("default parameters are valid");
        let s = started.elapsed().as_secs_f64();
        eprintln!(
            "features/featurize {n} rows × {} columns: {s:.3} s, {:.0} records/s",
            m.x.ncols(),
            n as f64 / s
        );
        drop(m);

        let mut f = Featurizer::new(params.clone()).expect("default parameters are valid");
        let mut out = vec![0.0; f.width()];
        let started = Instant::now();
        for r in &rows {
            f.push_into(r, &mut out).expect("width matches");
            black_box(&out);
        }
        let s = started.elapsed().as_secs_f64();
        eprintln!(
            "features/online {n} rows: {:.1} ns per failure, {:.0} records/s",
            s * 1e9 / n as f64,
            n as f64 / s
        );

        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("featurize", n), &rows, |b, rows| {
            b.iter(|| featurize(rows, &params).expect("valid"))
        });
    }
    g.finish();
}

criterion_group!(benches, features);
criterion_main!(benches);
