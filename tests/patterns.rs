//! Bad-worker detection against a simulated fleet's ground truth (`faultline eval patterns`
//! on a `faultline simulate` run of data/scenarios/bad-workers.toml).

use crate::util::{repo, stderr, stdout, Dir};

#[test]
fn eval_patterns_finds_the_injected_bad_workers() {
    let d = Dir::new();
    let scenario = repo().join("data/scenarios/bad-workers.toml");
    let o = d.run(
        &[
            "simulate",
            "--scenario",
            scenario.to_str().unwrap(),
            "--seed",
            "7",
            "--failures",
            "5000",
            "--out",
            "sim",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.run(&["eval", "patterns", "sim", "--json"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let f = &v["fleets"][0];
    assert_eq!(f["bad"], 10);
    // Seeded and deterministic: all 10 bad workers, no false alarm.
    assert_eq!(f["true_positives"], 10, "{f}");
    assert_eq!(f["false_positives"].as_array().unwrap().len(), 0, "{f}");
    let o = d.run(&["eval", "patterns", "missing"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("missing/ground_truth.json"),
        "{}",
        stderr(&o)
    );
}
