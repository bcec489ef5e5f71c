//! Success-rate frames from a durable history (polars) and a ranker trained from them.

use faultline::config::EngineConfig;
use faultline::engine::Engine;
use faultline::ranking::frames::{ranker_from_frame, success_rates};
use faultline::rules::RuleSet;
use faultline::store::StoreOptions;
use faultline::{FailureReport, HardwareClass, Outcome, RecoveryStrategy, Timestamp};

#[test]
fn success_rates_come_from_the_parquet_history() {
    let dir = tempfile::tempdir().unwrap();
    let (mut e, _) = Engine::open(
        dir.path(),
        EngineConfig::default(),
        RuleSet::defaults(),
        StoreOptions::default(),
    )
    .unwrap();
    for i in 0..20 {
        let line = format!(
            r#"{{"task_id":"t{i}","worker_id":"w{i}","hardware":{{"class":"GPU"}},"error":{{"message":"CUDA out of memory"}},"timestamp":"2026-11-01T10:00:{i:02}Z","task":{{"config":{{"batch_size":8}}}}}}"#
        );
        let r = serde_json::from_str::<FailureReport>(&line)
            .unwrap()
            .check(Timestamp::from_micros(0))
            .unwrap();
        e.try_handle_failure(&r).unwrap();
        e.record_outcome(&Outcome {
            task_id: format!("t{i}"),
            success: i % 4 != 0,
            strategy: None,
            time_to_recovery_s: Some(10.0),
            cost: Some(2.0),
            timestamp: None,
        })
        .unwrap();
    }
    e.flush().unwrap();
    let df = success_rates(dir.path()).unwrap();
    assert_eq!(df.height(), 1);
    let rate = df.column("rate").unwrap().f64().unwrap().get(0).unwrap();
    assert!((rate - 0.75).abs() < 1e-9, "{rate}");
    let r = ranker_from_frame(&df, Default::default()).unwrap();
    let c = r.counts(HardwareClass::Gpu, faultline::FailureKind::OomGpu);
    let k = RecoveryStrategy::ReducedBatchSize.index();
    assert_eq!((c.success[k], c.failure[k]), (15.0, 5.0));
    assert!((c.mean_cost(k) - 2.0).abs() < 1e-9);
}
