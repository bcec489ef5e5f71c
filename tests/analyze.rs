//! `faultline analyze`: outputs, "no data" states, and the report in a headless browser.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{stderr, stdout, Dir};

const CHARTS: [&str; 7] = [
    "by_kind",
    "by_hardware",
    "heatmap",
    "timeline",
    "strategies",
    "attempts",
    "clusters",
];

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample")
}

/// The sample's first `n` failures and their actions as a simulator directory, with the
/// outcomes of those actions (a consistent log; debug builds are slow: keep inputs small).
fn small_sim(d: &Dir, n: usize) -> PathBuf {
    let dir = d.path("sim");
    std::fs::create_dir_all(&dir).unwrap();
    let read = |f: &str| std::fs::read_to_string(sample().join(f)).unwrap();
    let (failures, actions, outcomes) = (
        read("failures.jsonl"),
        read("actions.jsonl"),
        read("outcomes.jsonl"),
    );
    let actions: Vec<&str> = actions.lines().take(n).collect();
    // Per task, the outcomes its first-n actions asked for (those that are not escalations).
    let mut owed: std::collections::HashMap<String, usize> = Default::default();
    for a in &actions {
        let v: Value = serde_json::from_str(a).unwrap();
        if v["strategy"] != "ESCALATION" {
            *owed
                .entry(v["task_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let outcomes: Vec<&str> = outcomes
        .lines()
        .filter(|o| {
            let v: Value = serde_json::from_str(o).unwrap();
            match owed.get_mut(v["task_id"].as_str().unwrap()) {
                Some(k) if *k > 0 => {
                    *k -= 1;
                    true
                }
                _ => false,
            }
        })
        .collect();
    let failures: Vec<&str> = failures.lines().take(n).collect();
    for (f, lines) in [
        ("failures.jsonl", failures),
        ("actions.jsonl", actions),
        ("outcomes.jsonl", outcomes),
    ] {
        std::fs::write(dir.join(f), lines.join("\n") + "\n").unwrap();
    }
    dir
}

fn analyze_ok(d: &Dir, args: &[&str]) -> (Value, String) {
    let o = d.run(args, "");
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    let out = d.path("out");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    (summary, html)
}

fn charts(html: &str) -> Vec<String> {
    html.match_indices("data-chart=\"")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

fn nodata(html: &str) -> Vec<String> {
    html.match_indices("data-nodata=\"")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

fn record(task: &str, worker: &str, class: &str, message: &str, t: u64) -> String {
    format!(
        r#"{{"task_id":"{task}","worker_id":"{worker}","hardware":{{"class":"{class}"}},"error":{{"message":"{message}"}},"timestamp":{t}}}"#
    )
}

/// Regression (audit): one record dated a year after the others hid every rapid-failure
/// pattern (the detector was checked less often on long histories: every 2.2 hours here).
#[test]
fn a_late_record_does_not_hide_rapid_failures() {
    let d = Dir::new();
    let t0 = 1_761_991_200; // 2025-11-01T10:00:00Z
    let mut lines: Vec<String> = (0..4)
        .map(|i| record("r", "w1", "GPU", "CUDA out of memory", t0 + 60 * i))
        .collect();
    d.write("rapid.jsonl", &(lines.join("\n") + "\n"));
    lines.push(record(
        "x",
        "w2",
        "GPU",
        "NCCL watchdog timeout",
        t0 + 365 * 86_400,
    ));
    d.write("late.jsonl", &(lines.join("\n") + "\n"));
    let rapid = |s: &Value| {
        s["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "rapid_failure" && p["key"] == "r")
    };
    let (s, _) = analyze_ok(&d, &["analyze", "rapid.jsonl", "--out", "out", "-q"]);
    assert!(rapid(&s), "{:#}", s["patterns"]);
    let (s, _) = analyze_ok(&d, &["analyze", "late.jsonl", "--out", "out", "-q"]);
    assert!(rapid(&s), "{:#}", s["patterns"]);
    // Regression (audit): records' own outcomes (`ml_feedback`, as the bench stream has) were
    // dropped without a word; counted and said now.
    let plain = record("f", "w1", "GPU", "CUDA out of memory", t0);
    let fed = format!(
        r#"{},"ml_feedback":{{"strategy":"REDUCED_BATCH_SIZE","success":true}}}}"#,
        plain.strip_suffix('}').unwrap()
    );
    d.write("fed.jsonl", &(fed + "\n"));
    let o = d.run(&["analyze", "fed.jsonl", "--out", "out"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "1 record carried an outcome of its own (ml_feedback), which is not imported"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(summary_of(&d, "out")["input"]["feedback"], 1);
}

/// Regression (audit): one record dated in the year 9999, or a year early, hid every
/// rapid-failure pattern (the checks were spread over the span) and made steady hours
/// "bursts" (their mean per bin was taken over the whole span, gap included), without a word.
/// Now the patterns are those of the history without it, no burst is found, and the record
/// is named in a warning and counted in `totals.far_apart`.
#[test]
fn a_record_dated_far_from_the_rest_is_warned_about_and_changes_no_pattern() {
    let d = Dir::new();
    let t0 = 1_761_991_200; // 2025-11-01T10:00:00Z
                            // Five steady hours: 40 tasks a hour on 10 GPUs, task "r" failing every minute.
    let mut lines: Vec<String> = Vec::new();
    for i in 0..200u64 {
        let w = format!("w{}", i % 10);
        lines.push(record(
            &format!("t{i}"),
            &w,
            "GPU",
            "CUDA out of memory",
            t0 + 90 * i,
        ));
    }
    for i in 0..5 {
        lines.push(record(
            "r",
            "w1",
            "GPU",
            "NCCL watchdog timeout",
            t0 + 60 * i,
        ));
    }
    let patterns = |s: &Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = s["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] != "cluster")
            .map(|p| {
                (
                    p["kind"].as_str().unwrap().into(),
                    p["key"].as_str().unwrap().into(),
                )
            })
            .collect();
        v.sort();
        v
    };
    d.write("steady.jsonl", &(lines.join("\n") + "\n"));
    let (s, _) = analyze_ok(&d, &["analyze", "steady.jsonl", "--out", "out", "-q"]);
    let base = patterns(&s);
    assert!(
        base.contains(&("rapid_failure".into(), "r".into())),
        "{base:?}"
    );
    assert!(
        base.iter().all(|(k, _)| k != "burst" && k != "surge"),
        "{base:?}"
    );
    assert_eq!(s["totals"]["far_apart"], 0);
    let odd = record("odd", "w3", "GPU", "CUDA out of memory", t0);
    let odd_at = |t: &str| {
        odd.replace(
            &format!("\"timestamp\":{t0}"),
            &format!("\"timestamp\":{t}"),
        )
    };
    for (name, t) in [
        ("future", "\"9999-12-31T23:59:59Z\"".to_string()),
        ("early", (t0 - 365 * 86_400).to_string()),
        ("epoch", "\"1978-01-12T00:00:00Z\"".to_string()),
    ] {
        let mut with = lines.clone();
        with.push(odd_at(&t));
        d.write(&format!("{name}.jsonl"), &(with.join("\n") + "\n"));
        let o = d.run(&["analyze", &format!("{name}.jsonl"), "--out", "out"], "");
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("1 failure is dated far from all the others"),
            "{name}: {}",
            stderr(&o)
        );
        let s = summary_of(&d, "out");
        assert_eq!(s["totals"]["far_apart"], 1, "{name}");
        assert_eq!(patterns(&s), base, "{name}");
        // The report says so too, before its charts (report audit: only the CLI did).
        let html = std::fs::read_to_string(d.path("out/report.html")).unwrap();
        assert!(
            html.contains("1 failure is dated far from all the others"),
            "{name}: no caveat in the report"
        );
    }
}

/// Regression (audit): gzip on stdin was read as text ("all 9 records were rejected ...
/// invalid JSON"), as a named .gz file is not; and an empty input made a report of 0
/// failures without a word.
#[test]
fn gzip_on_stdin_is_named_and_an_empty_input_is_warned_about() {
    let d = Dir::new();
    // A gzip stream's first bytes (the magic number, deflate, no name), then anything.
    let gz = [
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x4b, 0x04, 0x00,
    ];
    let o = crate::util::run_bytes_in(
        &d.path(""),
        &["analyze", "-", "--format", "jsonl", "--out", "out"],
        &gz,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("<stdin>: gzip-compressed; decompress it first"),
        "{}",
        stderr(&o)
    );
    d.write("empty.jsonl", "");
    let o = d.run(&["analyze", "empty.jsonl", "--out", "out2", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("held nothing to read (empty)"),
        "{}",
        stderr(&o)
    );
}

/// Regression (audit): a worker flagged bad for a day was listed months later beside the
/// live ones with "quarantine", nothing telling them apart. One not flagged at the end of
/// the history says so in its action.
#[test]
fn a_bad_worker_no_longer_flagged_at_the_end_says_so() {
    let d = Dir::new();
    let t0 = 1_764_000_000u64;
    let mut recs: Vec<(u64, String)> = Vec::new();
    let mut n = 0;
    let mut push = |w: &str, t: u64, recs: &mut Vec<(u64, String)>| {
        n += 1;
        recs.push((
            t,
            record(&format!("t{n}"), w, "GPU", "CUDA out of memory", t),
        ));
    };
    for i in 0..40 {
        push("w0", t0 + i * 60, &mut recs);
    }
    for day in 0..31 {
        for w in 0..10 {
            for k in 0..2 {
                push(
                    &format!("w{w}"),
                    t0 + day * 86_400 + 3_600 + w * 300 + k * 7_000,
                    &mut recs,
                );
            }
        }
    }
    recs.sort();
    let text: String = recs.into_iter().map(|(_, r)| r + "\n").collect();
    d.write("s.jsonl", &text);
    let (s, _) = analyze_ok(&d, &["analyze", "s.jsonl", "--out", "out", "-q"]);
    let w0 = s["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "bad_worker" && p["key"] == "w0")
        .unwrap_or_else(|| panic!("{:#}", s["patterns"]));
    let action = w0["recommended_action"].as_str().unwrap();
    assert!(
        action.starts_with("not flagged at the end of the history"),
        "{action}"
    );
}

/// Regression (audit): on a simulated fleet without bursts (bad-workers, seed 2, 8k
/// failures) the report listed two, at 7 failures against about 2 expected: the online
/// detector's per-failure tests, thousands over a history, were not corrected for. (True
/// bursts are still found: `a_burst_must_beat_chance_not_only_a_ratio` below; by hand, the
/// sample's two and llm-gpu-training's and test-farm's four, seed 2.)
#[test]
fn a_fleet_without_bursts_reports_none() {
    let d = Dir::new();
    crate::util::simulate(
        &d,
        "bad-workers.toml",
        &["--seed", "2", "--failures", "8000", "--out", "sim"],
    );
    let (s, _) = analyze_ok(
        &d,
        &["analyze", "sim", "--out", "out", "-q", "--sample", "1500"],
    );
    let bursts: Vec<&Value> = s["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "burst" || p["kind"] == "surge")
        .collect();
    assert!(bursts.is_empty(), "{bursts:#?}");
}

#[test]
fn analyze_a_simulator_directory_writes_every_output() {
    let d = Dir::new();
    let sim = small_sim(&d, 300);
    let (s, html) = analyze_ok(
        &d,
        &["analyze", sim.to_str().unwrap(), "--out", "out", "-q"],
    );
    assert_eq!(s["format_version"], 1);
    assert_eq!(s["totals"]["failures"], 300);
    assert_eq!(s["input"]["actions"], 300);
    let outcomes = std::fs::read_to_string(sim.join("outcomes.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(outcomes > 250, "{outcomes}");
    assert_eq!(s["input"]["outcomes"], outcomes);
    assert_eq!(s["input"]["rejected"], 0);
    // Strategy table with Wilson intervals around the rate.
    let st = s["strategies"].as_array().unwrap();
    assert!(!st.is_empty());
    for r in st {
        let (lo, rate, hi) = (
            r["ci_low"].as_f64().unwrap(),
            r["rate"].as_f64().unwrap(),
            r["ci_high"].as_f64().unwrap(),
        );
        assert!(lo <= rate && rate <= hi && (0.0..=1.0).contains(&lo) && hi <= 1.0);
    }
    assert!(
        s["attempts_to_recovery"]["recovered_tasks"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Patterns are a list of items with kind and key.
    for p in s["patterns"].as_array().unwrap() {
        assert!(p["kind"].is_string() && p["key"].is_string(), "{p}");
    }
    assert!(s["clusters"]["items"].as_array().unwrap().len() >= 2);
    assert!(!s["clusters"]["pca"]["points"]
        .as_array()
        .unwrap()
        .is_empty());
    // Every chart drawn, nothing missing.
    let drawn = charts(&html);
    for c in CHARTS {
        assert!(drawn.iter().any(|d| d == c), "chart {c} missing: {drawn:?}");
    }
    assert!(nodata(&html).is_empty(), "{:?}", nodata(&html));
    // Self-contained: no external resources.
    for bad in ["<script", "http://", "https://", "<link"] {
        assert!(!html.contains(bad), "report contains {bad}");
    }
    assert!(d.path("out/failures.parquet").is_file());
    assert!(d.path("out/history/failures").is_dir());

    // --data analyses the history in place, and --json prints the summary.
    let o = d.run(
        &["analyze", "--data", "out", "--out", "again", "--json", "-q"],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(again["totals"]["failures"], 300);
    assert!(again["input"].is_null());
    assert_eq!(again["totals"]["outcomes"], s["totals"]["outcomes"]);

    // Running again into the same --out replaces the previous analysis.
    let o = d.run(
        &["analyze", sim.to_str().unwrap(), "--out", "out", "-q"],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s2: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(s2["totals"]["failures"], 300);
}

#[test]
fn empty_input_renders_no_data_states() {
    let d = Dir::new();
    d.write("empty.jsonl", "");
    let (s, html) = analyze_ok(&d, &["analyze", "empty.jsonl", "--out", "out", "-q"]);
    assert_eq!(s["totals"]["failures"], 0);
    assert!(charts(&html).is_empty());
    let nd = nodata(&html);
    for c in CHARTS {
        assert!(nd.iter().any(|n| n == c), "no 'no data' for {c}: {nd:?}");
    }
    assert!(nd.iter().any(|n| n == "history"));
}

#[test]
fn a_single_record_renders() {
    let d = Dir::new();
    d.write(
        "one.jsonl",
        &(record(
            "t1",
            "w1",
            "GPU",
            "CUDA out of memory. Tried to allocate 2.00 GiB",
            1_700_000_000,
        ) + "\n"),
    );
    let (s, html) = analyze_ok(&d, &["analyze", "one.jsonl", "--out", "out", "-q"]);
    assert_eq!(s["totals"]["failures"], 1);
    assert_eq!(s["by_kind"][0]["key"], "oom_gpu");
    let drawn = charts(&html);
    assert!(drawn.contains(&"by_kind".to_string()) && drawn.contains(&"timeline".to_string()));
    let nd = nodata(&html);
    assert!(nd.contains(&"clusters".to_string()), "{nd:?}");
    assert!(nd.contains(&"strategies".to_string()));
    assert!(s["clusters"]["skipped"].is_string());
}

#[test]
fn only_unknown_messages_render() {
    let d = Dir::new();
    let text: String = (0..12)
        .map(|i| {
            record(
                &format!("t{}", i % 4),
                &format!("w{}", i % 3),
                "CPU",
                &format!("the frobnicator declined request {i}"),
                1_700_000_000 + i * 7,
            ) + "\n"
        })
        .collect();
    d.write("unknown.jsonl", &text);
    let (s, html) = analyze_ok(&d, &["analyze", "unknown.jsonl", "--out", "out", "-q"]);
    assert_eq!(s["totals"]["unknown"], 12);
    assert_eq!(s["by_kind"].as_array().unwrap().len(), 1);
    assert!(html.contains("data-chart=\"by_kind\""));
    assert!(nodata(&html).contains(&"strategies".to_string()));
}

#[test]
fn one_hardware_class_only_renders() {
    let d = Dir::new();
    let msgs = [
        "CUDA out of memory. Tried to allocate 2.00 GiB",
        "NCCL watchdog timeout after 1800000 ms",
        "CUDA error: an illegal memory access was encountered",
    ];
    let text: String = (0..40)
        .map(|i| {
            record(
                &format!("t{}", i % 15),
                &format!("gpu-{}", i % 5),
                "GPU",
                msgs[i as usize % 3],
                1_700_000_000 + i * 61,
            ) + "\n"
        })
        .collect();
    d.write("gpu.jsonl", &text);
    let (s, html) = analyze_ok(&d, &["analyze", "gpu.jsonl", "--out", "out", "-q"]);
    assert_eq!(s["totals"]["hardware_classes"], 1);
    assert!(html.contains("One hardware class only"));
    assert!(html.contains("data-chart=\"heatmap\""));
}

#[test]
fn analyze_errors_name_the_problem_and_exit_2() {
    let d = Dir::new();
    let o = d.run(&["analyze", "missing.jsonl", "--out", "out"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing.jsonl"));
    let o = d.run(&["analyze", "--data", "nowhere", "--out", "out"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nowhere"));
}

/// Renders report.html in headless Chromium: a screenshot is taken and the DOM dump must hold
/// every chart as a rendered `<svg>` with its marks. Skips (printing why) without Chromium.
/// With `FAULTLINE_SCREENSHOT_DIR` set, the screenshot is copied there for a person to look at.
#[test]
fn report_renders_in_headless_chromium() {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        eprintln!("skipping: /usr/bin/chromium is absent (apt-get install chromium)");
        return;
    }
    let d = Dir::new();
    let sim = small_sim(&d, 300);
    let (_, _) = analyze_ok(
        &d,
        &["analyze", sim.to_str().unwrap(), "--out", "out", "-q"],
    );
    let report = d.path("out/report.html");
    let shot = d.path("shot.png");
    let profile = d.path("profile");
    let url = format!("file://{}", report.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ];
    let user_data = format!("--user-data-dir={}", profile.display());
    let o = Command::new(chromium)
        .args(common)
        .arg(&user_data)
        .arg("--window-size=1280,2400")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(
        shot.is_file() && std::fs::metadata(&shot).unwrap().len() > 10_000,
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(chromium)
        .args(common)
        .arg(&user_data)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(
        dom.contains("</html>"),
        "no DOM: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let svgs = dom.matches("<svg class=\"chart\"").count();
    assert_eq!(svgs, CHARTS.len(), "rendered charts in the DOM");
    for c in CHARTS {
        let at = dom
            .find(&format!("data-chart=\"{c}\""))
            .unwrap_or_else(|| panic!("chart {c} not in the DOM"));
        let tag = &dom[at..at + dom[at..].find('>').unwrap()];
        let marks: usize = tag
            .split("data-marks=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(marks > 0, "chart {c} drew nothing");
    }
    if let Ok(dir) = std::env::var("FAULTLINE_SCREENSHOT_DIR") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(&shot, Path::new(&dir).join("report.png"));
        let _ = std::fs::copy(&report, Path::new(&dir).join("report.html"));
    }
}

/// Writes `mixed.jsonl`: three records, the second not valid JSON.
fn write_mixed(d: &Dir) {
    let good = |t: &str, i: u64| record(t, "w1", "GPU", "CUDA out of memory", 1_700_000_000 + i);
    d.write(
        "mixed.jsonl",
        &format!(
            "{}\n{{\"task_id\":\"t2\",\n{}\n",
            good("t1", 0),
            good("t3", 2)
        ),
    );
}

/// Regression: rejected records were only counted inside summary.json and the report; the
/// terminal said "analysed 2 failures" and nothing else.
#[test]
fn rejected_records_are_reported_on_stderr_with_file_and_line() {
    let d = Dir::new();
    write_mixed(&d);
    let o = d.run(&["analyze", "mixed.jsonl", "--out", "out"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("1 of 3 records rejected"), "{err}");
    assert!(err.contains("mixed.jsonl:2: invalid JSON"), "{err}");
}

/// Regression (audit): `analyze -q` still printed a line per rejected record on stderr. With
/// -q the count is printed, not the records; a run that fails still says why.
#[test]
fn quiet_prints_no_line_per_rejected_record() {
    let d = Dir::new();
    write_mixed(&d);
    let o = d.run(&["analyze", "mixed.jsonl", "--out", "out", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("1 of 3 records rejected"), "{err}");
    assert!(!err.contains("mixed.jsonl:2"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    // The record is still in summary.json.
    let s = summary_of(&d, "out");
    assert!(
        s["input"]["rejections"][0]
            .as_str()
            .unwrap()
            .contains("mixed.jsonl:2: invalid JSON"),
        "{s:#}"
    );
    // Every record rejected: the run fails and says why, in its error, with the first reason.
    d.write("bad.jsonl", "{not json\n{\"task_id\":\n");
    let o = d.run(&["analyze", "bad.jsonl", "--out", "out2", "-q"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("nothing ingested: all 2 records were rejected; the first: bad.jsonl:1:"),
        "{err}"
    );
    assert!(!err.contains("bad.jsonl:2"), "{err}");
}

/// Regression (audit): an action of a simulator directory with no outcome left for it (a
/// run cut short) was counted in `input.rejected_other` and shown as a rejected line, yet
/// imported and analysed. It is counted in `input.actions_without_outcome`; nothing rejected.
#[test]
fn an_action_without_its_outcome_is_not_a_rejected_line() {
    let d = Dir::new();
    let sim = small_sim(&d, 40);
    let path = sim.join("outcomes.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let o = d.run(
        &["analyze", sim.to_str().unwrap(), "--out", "out", "--json"],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let i = &s["input"];
    assert_eq!(
        (&i["actions"], &i["outcomes"], &s["totals"]["actions"]),
        (
            &Value::from(40),
            &Value::from(lines.len()),
            &Value::from(40)
        ),
        "{i:#}"
    );
    assert_eq!(
        (&i["rejected_other"], &i["actions_without_outcome"]),
        (&Value::from(0), &Value::from(1)),
        "{i:#}"
    );
    assert_eq!(i["rejections"], Value::Array(vec![]), "{i:#}");
    let err = stderr(&o);
    assert!(!err.contains("rejected"), "{err}");
    assert!(
        err.contains("1 action of a simulator directory had no outcome"),
        "{err}"
    );
    let html = std::fs::read_to_string(d.path("out/report.html")).unwrap();
    assert!(
        html.contains("1 action without an outcome"),
        "no count in the report"
    );
    assert!(
        !html.contains("lines rejected"),
        "a rejection in the report"
    );
}

/// Regression: a bin at 4× its key's mean was a burst whatever chance allowed, so the sample
/// showed 16 bursts where it has 2. A burst must also beat chance (Poisson, corrected for
/// every bin tested): a busy hour of a rare kind is not one, an injected burst is.
#[test]
fn a_burst_must_beat_chance_not_only_a_ratio() {
    let d = Dir::new();
    let t0 = 1_700_000_000u64;
    let mut text = String::new();
    let mut n = 0;
    let mut add = |text: &mut String, class: &str, msg: &str, t: u64| {
        n += 1;
        text.push_str(&(record(&format!("t{n}"), &format!("w{}", n % 40), class, msg, t) + "\n"));
    };
    for h in 0..48u64 {
        let t = t0 + h * 3600;
        add(
            &mut text,
            "GPU",
            "CUDA out of memory. Tried to allocate 2.00 GiB",
            t + 60,
        );
        add(
            &mut text,
            "CPU",
            "ConnectionResetError: Connection reset by peer",
            t + 120,
        );
        add(
            &mut text,
            "CPU",
            "Killed process 4242 (python) total-vm:1024kB oom-kill",
            t + 180,
        );
    }
    // A busy hour of out-of-memory errors (6 against a mean of ~1.1): more than 4×, yet
    // likely enough among ~250 hours tested.
    for i in 0..5 {
        add(
            &mut text,
            "GPU",
            "CUDA out of memory. Tried to allocate 2.00 GiB",
            t0 + 10 * 3600 + 600 + i,
        );
    }
    // A real burst: 30 network failures on the TPUs within an hour.
    for i in 0..30 {
        add(
            &mut text,
            "TPU",
            "ConnectionResetError: Connection reset by peer",
            t0 + 30 * 3600 + 300 + i * 60,
        );
    }
    d.write("burst.jsonl", &text);
    let (s, _) = analyze_ok(&d, &["analyze", "burst.jsonl", "--out", "out", "-q"]);
    let items = s["patterns"]["items"]
        .as_array()
        .or_else(|| s["patterns"].as_array())
        .unwrap()
        .clone();
    let mut batch: Vec<String> = items
        .iter()
        .filter(|p| p["kind"] == "surge" && p["description"].as_str().unwrap().contains("bin(s)"))
        .map(|p| p["key"].as_str().unwrap().to_string())
        .collect();
    batch.sort();
    assert_eq!(batch, ["class:TPU", "kind:network"], "{items:#?}");
    // The confidence still tells bursts apart (how far above its mean the burst rose).
    for p in items
        .iter()
        .filter(|p| p["kind"] == "surge" && p["description"].as_str().unwrap().contains("bin(s)"))
    {
        let c = p["confidence"].as_f64().unwrap();
        assert!(c > 0.5 && c < 0.99, "{p:#}");
    }
}

fn summary_of(d: &Dir, out: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(d.path(out).join("summary.json")).unwrap())
        .unwrap()
}

/// logs/a.jsonl: ten GPU out-of-memory failures of ten tasks, a second apart.
fn ten_records_in_logs(d: &Dir) {
    std::fs::create_dir(d.path("logs")).unwrap();
    let lines: Vec<String> = (0..10)
        .map(|i| {
            record(
                &format!("t{i}"),
                "w1",
                "GPU",
                "CUDA out of memory",
                1_700_000_000 + i,
            )
        })
        .collect();
    d.write("logs/a.jsonl", &(lines.join("\n") + "\n"));
}

/// Regression: an --out (or ingest's --data) inside an input directory was read back as
/// input: the second `analyze logs --out logs/report` re-imported report/failures.parquet
/// (20 failures from 10 records) and rejected summary.json line by line.
#[test]
fn analyze_does_not_read_its_output_directory_back() {
    let d = Dir::new();
    ten_records_in_logs(&d);
    for run in 0..2 {
        let o = d.run(&["analyze", "logs", "--out", "logs/report", "-q"], "");
        assert!(o.status.success(), "run {run}: {}", stderr(&o));
        let s = summary_of(&d, "logs/report");
        assert_eq!(s["input"]["read"], 10, "run {run}: {s:#}");
        assert_eq!(s["input"]["rejected"], 0, "run {run}");
        assert_eq!(s["totals"]["failures"], 10, "run {run}");
        let err = stderr(&o);
        assert_eq!(
            err.matches("skipping logs/report: it is the output directory")
                .count(),
            1,
            "run {run}: {err}"
        );
    }
}

/// Regression: `ingest logs --data logs/hist` run again re-imported its own history parts and
/// rejected _manifest.json and ingested.jsonl line by line.
#[test]
fn ingest_does_not_read_its_data_directory_back() {
    let d = Dir::new();
    ten_records_in_logs(&d);
    let o = d.run(&["ingest", "logs", "--data", "logs/hist", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    d.write("logs/plot.png", "not a log\n");
    let o = d.run(&["ingest", "logs", "--data", "logs/hist", "--json"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("skipping logs/hist: it is the output directory"),
        "{err}"
    );
    let s: Value = serde_json::from_str(&stdout(&o)).unwrap();
    // a.jsonl was taken in before; nothing else is an input.
    assert_eq!(
        (s["read"].as_u64(), s["rejected"].as_u64()),
        (Some(0), Some(0)),
        "{s:#}"
    );
    // Both inputs left out are in the summary, with why.
    let left: Vec<(String, String)> = s["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["path"].as_str().unwrap().to_string(),
                l["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(left.len(), 2, "{s:#}");
    assert!(
        left.iter()
            .any(|(p, r)| p.ends_with("plot.png") && r == "unknown_type"),
        "{left:?}"
    );
    assert!(
        left.iter()
            .any(|(p, r)| p.ends_with("a.jsonl") && r == "taken_in"),
        "{left:?}"
    );
    let (failures, _, _) = crate::util::rows_per_task(&d.path("logs/hist"));
    assert_eq!(failures.values().sum::<usize>(), 10);
}

/// Regression: after an analysis that failed (every record rejected: a history but no
/// summary.json), the corrected run was refused ("already holds a history that no earlier
/// analysis wrote").
#[test]
fn a_failed_analysis_does_not_block_the_next_one() {
    let d = Dir::new();
    d.write("bad.jsonl", "{not json\n{\"task_id\":\n");
    let o = d.run(&["analyze", "bad.jsonl", "--out", "out", "-q"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("all 2 records were rejected"),
        "{}",
        stderr(&o)
    );
    // Regression (audit): the failed run left the empty output directory it had made.
    assert!(!d.path("out").exists());
    let o = d.run(&["analyze", "missing.jsonl", "--out", "out", "-q"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!d.path("out").exists());
    // Nor the parents it made (review).
    let o = d.run(&["analyze", "missing.jsonl", "--out", "a/b/c", "-q"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!d.path("a").exists());
    d.write(
        "good.jsonl",
        &(record("t1", "w1", "GPU", "CUDA out of memory", 1_700_000_000) + "\n"),
    );
    let o = d.run(&["analyze", "good.jsonl", "--out", "out", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary_of(&d, "out")["totals"]["failures"], 1);
    // A history no analysis wrote is still not removed.
    let o = d.run(&["ingest", "good.jsonl", "--data", "theirs", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.run(&["analyze", "good.jsonl", "--out", "theirs", "-q"], "");
    crate::util::refused(&o, "no earlier analysis wrote");
    assert!(d.path("theirs/history").is_dir());
}

/// Regression: a typo in an input removed the previous analysis's history (cleared before
/// the inputs were checked), leaving its summary.json and report.html behind.
#[test]
fn a_missing_input_keeps_the_previous_analysis() {
    let d = Dir::new();
    d.write(
        "good.jsonl",
        &(record("t1", "w1", "GPU", "CUDA out of memory", 1_700_000_000) + "\n"),
    );
    let o = d.run(&["analyze", "good.jsonl", "--out", "out", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.run(
        &["analyze", "good.jsonl", "typo.jsonl", "--out", "out", "-q"],
        "",
    );
    crate::util::refused(&o, "typo.jsonl");
    assert!(d.path("out/history/failures").is_dir());
    let (failures, _, _) = crate::util::rows_per_task(&d.path("out"));
    assert_eq!(failures.values().sum::<usize>(), 1);
    // Regression (audit): a rerun whose every record is rejected removed the history too
    // (the check came after the clearing), leaving the old summary.json beside an empty one.
    d.write("allbad.jsonl", "{\"task_id\":\"t1\"}\n");
    let o = d.run(&["analyze", "allbad.jsonl", "--out", "out", "-q"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let (failures, _, _) = crate::util::rows_per_task(&d.path("out"));
    assert_eq!(failures.values().sum::<usize>(), 1);
    assert!(!d.path("out/.faultline-analyze-new").exists());
    let o = d.run(&["analyze", "--data", "out", "--out", "again", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary_of(&d, "again")["totals"]["failures"], 1);
    // A rerun that succeeds replaces it.
    d.write(
        "two.jsonl",
        &[
            record("t2", "w1", "GPU", "CUDA out of memory", 1_700_000_000),
            record("t3", "w1", "GPU", "NCCL watchdog timeout", 1_700_000_100),
        ]
        .join("\n"),
    );
    let o = d.run(&["analyze", "two.jsonl", "--out", "out", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary_of(&d, "out")["totals"]["failures"], 2);
    let (failures, _, _) = crate::util::rows_per_task(&d.path("out"));
    assert_eq!(failures.values().sum::<usize>(), 2);
    assert!(!d.path("out/.faultline-analyze-new").exists());
    // Regression (audit): an --out that is a file got "File exists (os error 17)".
    d.write("afile", "x");
    let o = d.run(&["analyze", "two.jsonl", "--out", "afile"], "");
    crate::util::refused(&o, "--out afile is a file, not a directory");
    // Regression (audit): JSON lines in a `.txt` file (read as a kernel log) gave "analysed
    // 0 failures" and nothing else; now a warning says no line held a record.
    std::fs::copy(d.path("two.jsonl"), d.path("two.txt")).unwrap();
    let o = d.run(&["analyze", "two.txt", "--out", "txt"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no failure record in the 2 lines read")
            && stderr(&o).contains("--format"),
        "{}",
        stderr(&o)
    );
}

/// Regression: `analyze` had no --year/--boot-time and dated syslog kernel lines in 1970,
/// where `ingest` (then `analyze --data`) dated them this year.
#[test]
fn analyze_dates_kernel_logs_as_ingest_does() {
    use chrono::Datelike;
    let d = Dir::new();
    d.write(
        "kern.log",
        "Feb 23 16:24:18 node7 kernel: NVRM: Xid (PCI:0000:9b:00): 79, pid=1234, name=python, GPU has fallen off the bus.\n",
    );
    let first_seen = |s: &Value| s["totals"]["first_seen"].as_str().unwrap().to_string();
    let (s, _) = analyze_ok(&d, &["analyze", "kern.log", "--out", "out", "-q"]);
    let this_year = chrono::Utc::now().year();
    assert!(
        first_seen(&s).starts_with(&format!("{this_year}-02-23T16:24:18")),
        "{s:#}"
    );
    let o = d.run(&["ingest", "kern.log", "--data", "hist", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.run(
        &["analyze", "--data", "hist", "--out", "viaingest", "-q"],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(first_seen(&summary_of(&d, "viaingest")), first_seen(&s));
    let (s, _) = analyze_ok(
        &d,
        &[
            "analyze", "kern.log", "--out", "out", "--year", "2024", "-q",
        ],
    );
    assert!(first_seen(&s).starts_with("2024-02-23T16:24:18"), "{s:#}");
    // Relative kernel times count from --boot-time.
    d.write(
        "rel.log",
        "[  201.5] NVRM: Xid (PCI:0000:9b:00): 79, pid=1234, name=python, GPU has fallen off the bus.\n",
    );
    let (s, _) = analyze_ok(
        &d,
        &[
            "analyze",
            "rel.log",
            "--out",
            "out",
            "--boot-time",
            "2025-03-01T00:00:00Z",
            "-q",
        ],
    );
    assert!(first_seen(&s).starts_with("2025-03-01T00:03:21.5"), "{s:#}");
}

/// Regression: records without a time were given the run's time, silently, which made a
/// burst of them ("30000000000.0× the 0.0 expected") and a span reaching today. They are
/// counted (stderr and input.stamped_at_read) and left out of the patterns and the span.
#[test]
fn records_without_a_time_are_counted_and_make_no_burst() {
    let d = Dir::new();
    let mut text = String::new();
    for i in 0..5u64 {
        text += &(record(
            &format!("d{i}"),
            &format!("w{i}"),
            "GPU",
            "CUDA error: an illegal memory access was encountered",
            1_741_478_400 + i * 600,
        ) + "\n");
    }
    for i in 0..30 {
        text += &format!(
            "{{\"task_id\":\"u{i}\",\"worker_id\":\"v{i}\",\"hardware\":{{\"class\":\"GPU\"}},\"error\":{{\"message\":\"CUDA error: an illegal memory access was encountered\"}}}}\n"
        );
    }
    d.write("nots.jsonl", &text);
    let o = d.run(&["analyze", "nots.jsonl", "--out", "out", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("30 records had no time and were given the time of this run"),
        "{err}"
    );
    let s = summary_of(&d, "out");
    assert_eq!(s["input"]["stamped_at_read"], 30);
    let html = std::fs::read_to_string(d.path("out/report.html")).unwrap();
    assert!(
        html.contains("30 failures had no time of their own"),
        "no caveat in the report"
    );
    assert_eq!(s["totals"]["failures"], 35);
    assert_eq!(s["totals"]["last_seen"], "2025-03-09T00:40:00Z", "{s:#}");
    let bursts: Vec<&Value> = s["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "burst" || p["kind"] == "surge")
        .collect();
    assert!(bursts.is_empty(), "{bursts:#?}");
    // Nor do they make a cluster pattern "last seen" today (review: a cluster's times were
    // the run's); a cluster with dated failures spans only those.
    for p in s["patterns"].as_array().unwrap() {
        let last = p["last_seen"].as_str().unwrap();
        assert!(last <= "2025-03-09T00:40:00Z", "{p:#}");
    }
    let items = s["clusters"]["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{s:#}");
    for c in items.iter().filter(|c| c["size"].as_u64() != Some(30)) {
        assert!(
            c["last_seen"].as_str().unwrap() <= "2025-03-09T00:40:00Z",
            "{c:#}"
        );
    }
    let timeline: u64 = s["timeline"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(timeline, 5);
}

/// Regression (analyze audit): with no record holding a time, the run's own time was shown
/// as the history's range and every failure in one bin of one second. There is no span and
/// no timeline now, and the report says why.
#[test]
fn records_none_of_which_has_a_time_make_no_timeline() {
    let d = Dir::new();
    let text: String = (0..12)
        .map(|i| {
            format!(
                "{{\"task_id\":\"u{i}\",\"worker_id\":\"v{i}\",\"hardware\":{{\"class\":\"GPU\"}},\"error\":{{\"message\":\"CUDA out of memory\"}}}}\n"
            )
        })
        .collect();
    d.write("nots.jsonl", &text);
    let o = d.run(&["analyze", "nots.jsonl", "--out", "out", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary_of(&d, "out");
    assert_eq!(s["totals"]["failures"], 12);
    assert!(s["totals"]["first_seen"].is_null(), "{s:#}");
    let html = std::fs::read_to_string(d.path("out/report.html")).unwrap();
    assert!(
        html.contains("No data — no failure has a time of its own"),
        "no such note in the report"
    );
}

/// Regression (audit): a task whose outcome was missing (a history cut short, a task still
/// running) was counted as unrecovered; unrecovered tasks are the escalated ones without a
/// success, the others pending.
#[test]
fn tasks_without_an_outcome_are_pending_not_unrecovered() {
    let d = Dir::new();
    let sim = small_sim(&d, 400);
    let outcomes = std::fs::read_to_string(sim.join("outcomes.jsonl")).unwrap();
    let kept: Vec<&str> = outcomes
        .lines()
        .take(outcomes.lines().count() / 2)
        .collect();
    std::fs::write(sim.join("outcomes.jsonl"), kept.join("\n") + "\n").unwrap();
    let json = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let succeeded: std::collections::HashSet<String> = json(&kept.join("\n"))
        .iter()
        .filter(|o| o["success"] == true)
        .map(|o| o["task_id"].as_str().unwrap().to_string())
        .collect();
    let actions = json(&std::fs::read_to_string(sim.join("actions.jsonl")).unwrap());
    let escalated: std::collections::HashSet<String> = actions
        .iter()
        .filter(|a| a["strategy"] == "ESCALATION")
        .map(|a| a["task_id"].as_str().unwrap().to_string())
        .filter(|t| !succeeded.contains(t))
        .collect();
    let o = d.run(&["analyze", "sim", "--out", "out", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary_of(&d, "out");
    let at = &s["attempts_to_recovery"];
    assert_eq!(
        at["unrecovered_tasks"].as_u64(),
        Some(escalated.len() as u64),
        "{at:#}"
    );
    assert_eq!(
        at["recovered_tasks"].as_u64(),
        Some(succeeded.len() as u64),
        "{at:#}"
    );
    let pending = at["pending_tasks"].as_u64().unwrap();
    assert!(pending > 0, "{at:#}");
    assert_eq!(
        succeeded.len() as u64 + escalated.len() as u64 + pending,
        s["totals"]["tasks"].as_u64().unwrap()
    );
}

/// Regression (audit): a simulator directory without its outcomes.jsonl was read as failure
/// files, every action rejected as "unknown field `strategy`", and the run succeeded without
/// them; an actions.jsonl given alone likewise. Both are refused, naming what is missing.
#[test]
fn a_simulators_actions_are_not_read_as_failure_records() {
    let d = Dir::new();
    let sim = small_sim(&d, 20);
    let outcomes = sim.join("outcomes.jsonl");
    let aside = d.path("outcomes.jsonl");
    std::fs::rename(&outcomes, &aside).unwrap();
    let o = d.run(&["analyze", "sim", "--out", "out", "-q"], "");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("actions.jsonl") && err.contains("lacks outcomes.jsonl"),
        "{err}"
    );
    assert!(!d.path("out").join("summary.json").exists());
    std::fs::rename(&aside, &outcomes).unwrap();
    let o = d.run(
        &[
            "analyze",
            "sim/failures.jsonl",
            "sim/actions.jsonl",
            "--out",
            "out",
            "-q",
        ],
        "",
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("give its directory"), "{}", stderr(&o));
    // The whole directory is read as the simulator's output.
    let o = d.run(&["analyze", "sim", "--out", "out", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Regression: one byte that is not UTF-8 in a simulator directory aborted the run ("stream
/// did not contain valid UTF-8", no line); the JSONL reader rejects just that line.
#[test]
fn invalid_utf8_in_a_simulator_directory_rejects_only_that_line() {
    let d = Dir::new();
    let sim = small_sim(&d, 20);
    let path = sim.join("failures.jsonl");
    let text = std::fs::read(&path).unwrap();
    // A byte that is not UTF-8 in the message of line 3.
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            text.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let line3 = &text[starts[2]..starts[3]];
    let at = starts[2] + line3.windows(9).position(|w| w == b"\"message\"").unwrap() + 12;
    let mut bytes = text.clone();
    bytes.insert(at, 0xff);
    std::fs::write(&path, bytes).unwrap();
    // Without -q: the rejected line is named on stderr.
    let o = d.run(&["analyze", sim.to_str().unwrap(), "--out", "out"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("failures.jsonl:3: "), "{err}");
    let s = summary_of(&d, "out");
    assert_eq!(
        (s["input"]["read"].as_u64(), s["input"]["rejected"].as_u64()),
        (Some(20), Some(1))
    );
    assert_eq!(s["totals"]["failures"], 19);
}

/// Regression: files of unknown type in an input directory were left out without a word.
#[test]
fn files_of_unknown_type_are_reported() {
    let d = Dir::new();
    std::fs::create_dir_all(d.path("logs/sub")).unwrap();
    d.write(
        "logs/a.jsonl",
        &(record("t1", "w1", "GPU", "CUDA out of memory", 1_700_000_000) + "\n"),
    );
    d.write("logs/crlf.jsonl.gz", "");
    d.write("logs/sub/app.out", "");
    let o = d.run(&["analyze", "logs", "--out", "out", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("skipped 2 files of unknown type: logs/crlf.jsonl.gz, logs/sub/app.out"),
        "{err}"
    );
    let s = summary_of(&d, "out");
    assert_eq!(s["input"]["unknown_files"], 2);
    assert_eq!(
        s["input"]["unknown_file_names"],
        serde_json::json!(["logs/crlf.jsonl.gz", "logs/sub/app.out"])
    );
    // ingest says so too.
    let o = d.run(&["ingest", "logs", "--data", "hist", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("skipped 2 files of unknown type"),
        "{}",
        stderr(&o)
    );
}

/// Regression: with more failures than `--sample`, clusters were fitted on features computed
/// among the sampled rows alone (a tenth of each worker's and task's history) while every row
/// was placed with its whole history: on 2,000 failures at `--sample 200`, 1,046 were noise
/// (23 now).
#[test]
fn a_sampled_fit_places_the_whole_history() {
    let d = Dir::new();
    let lines: Vec<&str> = include_str!("../data/sample/failures.jsonl")
        .lines()
        .take(2000)
        .collect();
    std::fs::write(d.path("f.jsonl"), lines.join("\n") + "\n").unwrap();
    let (summary, _) = analyze_ok(
        &d,
        &["analyze", "f.jsonl", "--sample", "200", "--out", "out"],
    );
    let c = &summary["clusters"];
    assert_eq!(c["fitted_rows"], 200, "{c}");
    let noise = c["noise"].as_u64().unwrap();
    let assigned = c["assigned_rows"].as_u64().unwrap();
    assert!(
        noise * 10 < assigned,
        "noise {noise} of {}",
        noise + assigned
    );
}

/// Regression (found by an audit): a `simulate --format parquet` directory given to `analyze`
/// as an input was walked file by file: its history's failure parts were read as Parquet
/// failures, its actions and outcomes not at all (0 of each), ground_truth.json was rejected
/// line by line and the WAL and `.lock` were files of unknown type. A data directory given as
/// an input is read as `--data` reads it.
#[test]
fn a_data_directory_given_as_an_input_is_read_as_with_data() {
    let d = Dir::new();
    let scenario = crate::util::repo().join("data/scenarios/test-farm.toml");
    let o = d.run(
        &[
            "simulate",
            "--scenario",
            scenario.to_str().unwrap(),
            "--failures",
            "120",
            "--format",
            "parquet",
            "--out",
            "pq",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.run(&["analyze", "--data", "pq", "--out", "with-data", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let want = summary_of(&d, "with-data");
    assert!(want["totals"]["outcomes"].as_u64().unwrap() > 0, "{want:#}");
    // Alone, and inside a directory given as an input.
    std::fs::create_dir(d.path("runs")).unwrap();
    std::fs::rename(d.path("pq"), d.path("runs/pq")).unwrap();
    for (input, out) in [("runs/pq", "as-input"), ("runs", "in-a-dir")] {
        let o = d.run(&["analyze", input, "--out", out, "-q"], "");
        assert!(o.status.success(), "{input}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("unknown type"),
            "{input}: {}",
            stderr(&o)
        );
        let s = summary_of(&d, out);
        for k in ["failures", "actions", "outcomes", "successes", "tasks"] {
            assert_eq!(s["totals"][k], want["totals"][k], "{input}: totals.{k}");
        }
        for k in ["strategies", "attempts_to_recovery", "by_kind"] {
            assert_eq!(s[k], want[k], "{input}: {k}");
        }
        let input_counts = &s["input"];
        assert_eq!(input_counts["rejected"], 0, "{input}: {input_counts:#}");
        assert_eq!(
            input_counts["unknown_files"], 0,
            "{input}: {input_counts:#}"
        );
        assert_eq!(
            input_counts["actions"], want["totals"]["actions"],
            "{input}"
        );
        assert_eq!(
            input_counts["outcomes"], want["totals"]["outcomes"],
            "{input}"
        );
    }
}

/// Regression (found by an audit): the patterns table's `<span class="pill cluster">` had no
/// background rule, so its white label sat on white. Every pill kind the report shows has a
/// background colour of its own.
#[test]
fn every_pattern_pill_in_the_report_has_a_colour() {
    let d = Dir::new();
    let sim = small_sim(&d, 300);
    let (_, html) = analyze_ok(
        &d,
        &["analyze", sim.to_str().unwrap(), "--out", "out", "-q"],
    );
    let style = &html[html.find("<style>").unwrap()..html.find("</style>").unwrap()];
    let kinds: std::collections::BTreeSet<&str> = html
        .match_indices("<span class=\"pill ")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert!(kinds.contains("cluster"), "{kinds:?}");
    for k in kinds {
        assert!(
            style.contains(&format!(".{k}{{background:#")),
            "pill kind {k} has no background in the report's CSS"
        );
    }
}

/// Regression (review): `analyze -q` named the first rejection as the reason every record
/// was rejected, but a simulator directory's outcome line rejected comes first there (the
/// outcomes are read ahead of their failures). The error names the first failure record.
#[test]
fn quiet_names_the_first_failure_record_when_every_record_is_rejected() {
    let d = Dir::new();
    let sim = small_sim(&d, 10);
    let corrupt = |name: &str, which: &dyn Fn(usize) -> bool| {
        let path = sim.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if which(i) {
                    "{not json".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    };
    corrupt("outcomes.jsonl", &|i| i == 0);
    corrupt("failures.jsonl", &|_| true);
    let o = d.run(
        &["analyze", sim.to_str().unwrap(), "--out", "out", "-q"],
        "",
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("failures.jsonl:1: invalid JSON"), "{err}");
    assert!(!err.contains("outcomes.jsonl"), "{err}");
}

/// Regression (audit): a kernel log piped in without `--format` gave a page of "invalid
/// JSON" lines and no hint that standard input is read as JSON lines.
#[test]
fn a_kernel_log_on_stdin_without_format_gets_a_hint() {
    let d = Dir::new();
    let o = d.run(
        &["analyze", "-", "--out", "out", "-q"],
        "[  201.650687] NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.\n",
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--format kernel"), "{}", stderr(&o));
    let o = d.run(
        &["analyze", "-", "--format", "kernel", "--out", "out", "-q"],
        "[  201.650687] NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Regression (report audit): a rerun with `--no-export` kept the previous run's
/// failures.parquet (another input's rows) beside the new summary.
#[test]
fn a_rerun_without_export_removes_the_previous_export() {
    let d = Dir::new();
    d.write(
        "a.jsonl",
        &(record("t1", "w1", "GPU", "CUDA out of memory", 1_700_000_000) + "\n"),
    );
    let o = d.run(&["analyze", "a.jsonl", "--out", "out", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.path("out/failures.parquet").is_file());
    let o = d.run(
        &["analyze", "a.jsonl", "--out", "out", "--no-export", "-q"],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!d.path("out/failures.parquet").exists());
    assert!(summary_of(&d, "out")["outputs"]["classified"].is_null());
}

/// Regression (report audit): with clustering fitted on a sample, each cluster's kinds,
/// classes, templates and workers were the sample's shares while its size counted every
/// member ("mostly software_exception (44 %)" where tpu_error led its members). They are
/// counted over the members now: the summary's kinds agree with the export's rows.
#[test]
fn a_clusters_shares_are_its_members_not_the_fit_samples() {
    use arrow_array::{Array, Int64Array, StringArray};
    let d = Dir::new();
    let sim = small_sim(&d, 3000);
    let o = d.run(
        &[
            "analyze",
            sim.to_str().unwrap(),
            "--out",
            "out",
            "--sample",
            "300",
            "-q",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary_of(&d, "out");
    let file = std::fs::File::open(d.path("out/failures.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut per: std::collections::HashMap<i64, std::collections::HashMap<String, u64>> =
        Default::default();
    for batch in reader {
        let batch = batch.unwrap();
        let col = |n: &str| batch.column(batch.schema().index_of(n).unwrap()).clone();
        let kinds = col("kind");
        let kinds = kinds.as_any().downcast_ref::<StringArray>().unwrap();
        let ids = col("cluster_id");
        let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..batch.num_rows() {
            if ids.is_valid(i) {
                *per.entry(ids.value(i))
                    .or_default()
                    .entry(kinds.value(i).to_string())
                    .or_default() += 1;
            }
        }
    }
    let items = s["clusters"]["items"].as_array().unwrap();
    assert!(items.len() > 1, "{s:#}");
    for c in items {
        let members = &per[&c["id"].as_i64().unwrap()];
        let size: u64 = members.values().sum();
        assert_eq!(c["size"].as_u64().unwrap(), size, "{c:#}");
        for k in c["kinds"].as_array().unwrap() {
            let (kind, share) = (k[0].as_str().unwrap(), k[1].as_f64().unwrap());
            let want = members[kind] as f64 / size as f64;
            assert!(
                (share - want).abs() < 1e-9,
                "{kind}: {share} vs {want} in {c:#}"
            );
        }
    }
}

/// Regressions (analyze audit): what was not read at all reached stderr only, or the foot of
/// the page — a CSV of something else in an input directory (3,766 rows), rejected records
/// (15 % of an input), a data directory an earlier `analyze --out` left inside the input
/// (every failure counted twice) — and a history without times said "no pattern was found"
/// where none was looked for. The report's "Read first" names each.
#[test]
fn the_report_says_first_what_was_not_read_or_not_evaluated() {
    let d = Dir::new();
    let t0 = 1_761_991_200;
    let mut lines: Vec<String> = (0..30)
        .map(|i| {
            record(
                &format!("t{i}"),
                &format!("w{}", i % 4),
                "GPU",
                "CUDA out of memory",
                t0 + 60 * i,
            )
        })
        .collect();
    lines.push("{\"task_id\": 5}".into());
    std::fs::create_dir_all(d.path("in/sub")).unwrap();
    d.write("in/good.jsonl", &(lines.join("\n") + "\n"));
    d.write("in/sub/metrics.csv", "node,temperature\nn1,71\n");
    let (s, html) = analyze_ok(&d, &["analyze", "in", "--out", "out", "-q"]);
    assert_eq!(s["input"]["rejected"], 1);
    let caveats = &html[html.find("id=\"caveats\"").expect("a Read first box")..];
    let caveats = &caveats[..caveats.find("</section>").unwrap()];
    assert!(
        caveats.contains("1 of 31 failure records was rejected"),
        "{caveats}"
    );
    assert!(
        caveats.contains("1 file in the input directories was left out")
            && caveats.contains("metrics.csv: "),
        "{caveats}"
    );
    assert!(!caveats.contains("Read whole as data"), "{caveats}");

    // An earlier output inside the input is read whole again, and said.
    let o = d.run(&["analyze", "in", "--out", "in/old", "-q"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let (s, html) = analyze_ok(&d, &["analyze", "in", "--out", "out", "-q"]);
    assert_eq!(s["totals"]["failures"], 60, "counted twice");
    assert_eq!(
        s["input"]["histories"].as_array().unwrap().len(),
        1,
        "{s:#}"
    );
    assert!(html.contains("Read whole as data directory"), "no caveat");

    // No failure has a time: patterns are not evaluated, not "none found".
    let undated: Vec<String> = (0..5)
        .map(|i| {
            format!(
                r#"{{"task_id":"u{i}","worker_id":"w1","hardware":{{"class":"GPU"}},"error":{{"message":"CUDA out of memory"}}}}"#
            )
        })
        .collect();
    d.write("undated.jsonl", &(undated.join("\n") + "\n"));
    let (_, html) = analyze_ok(&d, &["analyze", "undated.jsonl", "--out", "out", "-q"]);
    assert!(
        html.contains("not evaluated: no failure has a time of its own"),
        "patterns said to be none"
    );
    assert!(!html.contains("no bad worker, burst, surge or rapidly failing task was found"));
}

/// Regression (README walk-through): an actions part whose footer was damaged failed
/// `analyze --data` with polars' "cannot skip field type Set" alone; the part is named, with
/// what sets it aside.
#[test]
fn analyze_data_names_a_damaged_part_of_any_table() {
    let d = Dir::new();
    crate::util::simulate(
        &d,
        "test-farm.toml",
        &[
            "--seed",
            "1",
            "--failures",
            "300",
            "--format",
            "parquet",
            "--out",
            "h",
        ],
    );
    let parts = crate::util::parquet_parts(&d.path("h/history/actions"));
    let victim = parts.first().expect("an actions part").clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 600..n - 8] {
        *b ^= 0x5a;
    }
    std::fs::write(&victim, &bytes).unwrap();
    let o = d.run(&["analyze", "--data", "h", "--out", "out"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        err.contains(&name) && err.contains("faultline compact --data"),
        "{err}"
    );
}
