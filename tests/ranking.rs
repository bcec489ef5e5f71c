//! Success-rate frames from a durable history (polars) and a ranker trained from them.

use faultline::config::EngineConfig;
use faultline::engine::Engine;
use faultline::ranking::frames::{ranker_from_frame, success_rates};
use faultline::rules::RuleSet;
use faultline::store::StoreOptions;
use faultline::{FailureReport, HardwareClass, Outcome, RecoveryStrategy, Timestamp};

/// Task `t{i}` on worker `w{i}`: a CUDA OOM at batch 8, at 10:00:{i} on 2026-11-01.
fn gpu_oom(i: usize) -> faultline::FailureRecord {
    let line = format!(
        r#"{{"task_id":"t{i}","worker_id":"w{i}","hardware":{{"class":"GPU"}},"error":{{"message":"CUDA out of memory"}},"timestamp":"2026-11-01T10:00:{i:02}Z","task":{{"config":{{"batch_size":8}}}}}}"#
    );
    serde_json::from_str::<FailureReport>(&line)
        .unwrap()
        .check(Timestamp::from_micros(0))
        .unwrap()
}

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
        let r = gpu_oom(i);
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

/// `faultline eval ranking` on simulated histories whose truth is known: the learned policy
/// logs stochastic (Thompson) choices with propensities < 1; the rules policy runs the same
/// scenario and seed. The off-policy estimate of the rules on first decisions (whose
/// contexts do not depend on the policy) from the learned history must agree with the rate the
/// rules run measures, within 3 standard errors of the difference.
#[test]
fn off_policy_estimates_match_the_simulated_truth() {
    use faultline::eval::ranking::{evaluate_dir, Options};
    let d = crate::util::Dir::new();
    let scenario = crate::util::repo().join("data/scenarios/llm-gpu-training.toml");
    let sim = |policy: &str, out: &str| {
        let o = d.run(
            &[
                "simulate",
                "--scenario",
                scenario.to_str().unwrap(),
                "--policy",
                policy,
                "--seed",
                "3",
                "--failures",
                "4000",
                "--format",
                "parquet",
                "--out",
                out,
            ],
            "",
        );
        assert!(o.status.success(), "{}", crate::util::stderr(&o));
        d.path(out)
    };
    let learned = sim("learned", "learned");
    let rules = sim("rules", "rules");
    let opts = Options::default();
    let lr = evaluate_dir(&learned, &RuleSet::defaults(), opts).unwrap();
    let rr = evaluate_dir(&rules, &RuleSet::defaults(), opts).unwrap();

    // Every outcome found its action; every action either an outcome or an escalation.
    for r in [&lr, &rr] {
        assert_eq!(r.join.unmatched_outcomes, 0, "{:?}", r.join);
        assert_eq!(r.join.unmatched_actions, 0, "{:?}", r.join);
        assert_eq!(r.decisions + r.join.escalations, r.join.actions);
        assert_eq!(r.train + r.evaluated, r.decisions);
    }
    // The decision count agrees with the outcomes table read by polars.
    let df = success_rates(&learned).unwrap();
    let n: f64 = df
        .column("n")
        .unwrap()
        .cast(&polars::prelude::DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .sum();
    assert_eq!(n as usize, lr.decisions);

    // Thompson sampling logs propensities < 1; the rules log 1 and the report says so.
    assert!(!lr.deterministic_logging && lr.stochastic > 0, "{lr:?}");
    assert!(lr.min_propensity < 1.0);
    assert!(rr.deterministic_logging && rr.stochastic == 0);
    assert!(rr.render_text().contains("deterministic"));

    // The logged policy: weights are 1, every decision matches, IPS is the on-policy rate.
    let logged = lr.policy("all", "logged").unwrap();
    assert_eq!(logged.estimates.matched, lr.evaluated);
    assert!(logged.agreement == 1.0 && logged.estimates.ess > 0.99 * lr.evaluated as f64);
    let snips = logged.estimates.snips.unwrap();
    assert!(logged.estimates.dr.covers(snips.value, 1.0), "{logged:?}");

    // The rules on first decisions, estimated off-policy, against the rules run's own rate.
    let truth = rr.policy("first", "logged").unwrap().estimates.ips;
    let est = lr.policy("first", "rules").unwrap();
    assert!(est.estimates.matched > 0, "{est:?}");
    // (SNIPS is not held to it: the logged Thompson propensities are an approximation and
    // their weights average below 1, which self-normalising turns into an upward bias.)
    for (name, e) in [("DR", est.estimates.dr), ("IPS", est.estimates.ips)] {
        let se = (e.se.powi(2) + truth.se.powi(2)).sqrt();
        assert!(
            (e.value - truth.value).abs() <= 3.0 * se,
            "{name} {e:?} vs rules run {truth:?}\n{}",
            lr.render_text()
        );
    }
    // In the rules history the rules candidate is the logged policy (ladder replay is exact).
    let same = rr.policy("all", "rules").unwrap();
    assert!(same.agreement > 0.95, "{}", rr.render_text());
}

/// The success-model ranker end to end: `simulate --policy model` decides with the rules until
/// the model's first fit, then with the model (ε-greedy, logged propensities < 1); `eval
/// ranking` scores the `model` candidate next to `rules` and `learned`; a bad `[ranking.model]`
/// value is rejected naming the field.
#[test]
fn the_model_ranker_runs_in_the_simulator_and_is_a_candidate_of_eval_ranking() {
    let d = crate::util::Dir::new();
    let scenario = crate::util::repo().join("data/scenarios/test-farm.toml");
    d.write(
        "model.toml",
        "[ranking.model]\nmin_outcomes = 100\nrefit_every = 200\nwindow = 1000\n",
    );
    let o = d.run(
        &[
            "simulate",
            "--scenario",
            scenario.to_str().unwrap(),
            "--policy",
            "model",
            "--config",
            "model.toml",
            "--seed",
            "2",
            "--failures",
            "1200",
            "--format",
            "parquet",
            "--out",
            "h",
        ],
        "",
    );
    assert!(o.status.success(), "{}", crate::util::stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("h/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["policy"], "model");

    let o = d.run(&["eval", "ranking", "--data", "h", "--json"], "");
    assert!(o.status.success(), "{}", crate::util::stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&crate::util::stdout(&o)).unwrap();
    // The model decided some of the logged decisions, with ε-greedy propensities.
    assert!(!r["deterministic_logging"].as_bool().unwrap(), "{r}");
    for scope in r["scopes"].as_array().unwrap() {
        let names: Vec<&str> = scope["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["policy"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["logged", "rules", "learned", "model"]);
    }
    let model = r["scopes"][0]["policies"][3].clone();
    let dr = model["dr"]["value"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&dr), "{model}");
    assert!(model["agreement"].as_f64().unwrap() > 0.0, "{model}");

    d.write("bad.toml", "[ranking.model]\nepsilon = 1.5\n");
    let o = d.run(
        &[
            "simulate",
            "--scenario",
            scenario.to_str().unwrap(),
            "--policy",
            "model",
            "--config",
            "bad.toml",
            "--failures",
            "10",
        ],
        "",
    );
    assert!(!o.status.success());
    assert!(
        crate::util::stderr(&o).contains("ranking.model.epsilon"),
        "{}",
        crate::util::stderr(&o)
    );
}

/// Opening a data directory replays its outcomes into the model ranker's window and fits the
/// model once at the end.
#[test]
fn the_model_ranker_is_refitted_from_the_replayed_history_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::default();
    config.ranking.enabled = true;
    config.ranking.ranker = faultline::config::RankerKind::Model;
    config.ranking.model.min_outcomes = 20;
    let open = || {
        Engine::open(
            dir.path(),
            config.clone(),
            RuleSet::defaults(),
            StoreOptions::default(),
        )
        .unwrap()
        .0
    };
    let mut e = open();
    for i in 0..30 {
        let r = gpu_oom(i);
        e.try_handle_failure(&r).unwrap();
        e.record_outcome(&Outcome {
            task_id: format!("t{i}"),
            success: i % 3 != 0,
            strategy: None,
            time_to_recovery_s: None,
            cost: None,
            timestamp: None,
        })
        .unwrap();
    }
    // Live: fitted after 20 outcomes, not yet refitted.
    assert_eq!(e.model_ranker().unwrap().model().unwrap().rows(), 20);
    e.flush().unwrap();
    drop(e);
    let e = open();
    assert_eq!(e.model_ranker().unwrap().model().unwrap().rows(), 30);
}
