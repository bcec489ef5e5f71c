//! Restart equivalence: replay the 10k bench stream into a durable engine, drop it without a
//! clean shutdown (as a kill would), reopen — the next decisions equal those of an engine that
//! never stopped.

use faultline::config::EngineConfig;
use faultline::engine::{Engine, WorkerRegistry};
use faultline::rules::RuleSet;
use faultline::store::StoreOptions;
use faultline::{FailureRecord, FailureReport, Timestamp};

fn stream() -> Option<(Vec<FailureRecord>, WorkerRegistry)> {
    let dir = crate::util::repo().join("../shared/data/bench");
    let Ok(text) = std::fs::read_to_string(dir.join("stream_10k.jsonl")) else {
        eprintln!(
            "skipping: {} is absent",
            dir.join("stream_10k.jsonl").display()
        );
        return None;
    };
    let recs = text
        .lines()
        .map(|l| {
            serde_json::from_str::<FailureReport>(l)
                .unwrap()
                .check(Timestamp::from_micros(0))
                .unwrap()
        })
        .collect();
    Some((
        recs,
        WorkerRegistry::load(&dir.join("workers_200.json")).unwrap(),
    ))
}

#[test]
fn reopened_engine_decides_like_one_that_never_stopped() {
    let Some((recs, workers)) = stream() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        flush_every: 7_000, // one flush mid-stream: history is split between Parquet and WAL
        ..Default::default()
    };
    let mut steady = Engine::in_memory();
    steady.set_registry(workers.clone());
    {
        let (mut durable, _) = Engine::open(
            dir.path(),
            EngineConfig::default(),
            RuleSet::defaults(),
            opts.clone(),
        )
        .unwrap();
        durable.set_registry(workers.clone());
        let mut last = None;
        for r in &recs {
            // Decide without waiting for each fsync; the last Ack covers them all.
            let (a, ack) = durable.decide(r).unwrap();
            assert_eq!(a, steady.handle_failure(r));
            last = Some(ack);
        }
        last.unwrap().wait().unwrap();
        // Dropped here without flush: the tail lives only in the WAL.
    }
    let (mut reopened, report) = Engine::open(
        dir.path(),
        EngineConfig::default(),
        RuleSet::defaults(),
        opts,
    )
    .unwrap();
    assert!(report.replayed > 0, "the WAL tail must be replayed");
    reopened.set_registry(workers);
    // The same stream again, an hour later: attempt counters, ladders, exclusions, budget and
    // worker flags all matter now.
    let hour = 3_600_000_000;
    let mut differing = 0;
    for r in recs.iter().take(3_000) {
        let mut r = r.clone();
        r.timestamp = Timestamp::from_micros(r.timestamp.as_micros() + hour);
        let (a, _ack) = reopened.decide(&r).unwrap();
        let b = steady.handle_failure(&r);
        if a != b {
            differing += 1;
            assert_eq!(a, b, "decision {} differs after restart", r.task_id);
        }
    }
    assert_eq!(differing, 0);
}
