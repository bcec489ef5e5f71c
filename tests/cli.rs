//! The command-line contract: recommend, classify, rules, eval.

use crate::util::{real_data, refused, repo, stderr, stdout, Dir};
use serde_json::Value;

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn walk(dir: &Dir, flags: &[&str], n: usize) -> Vec<Value> {
    (0..n)
        .map(|_| {
            let mut args = vec![
                "recommend",
                "--json",
                "--state",
                "state.json",
                "--timestamp",
                "2026-01-01T00:00:00Z",
            ];
            args.extend_from_slice(flags);
            let o = dir.run(&args, "");
            assert!(o.status.success(), "{}", stderr(&o));
            serde_json::from_str(&stdout(&o)).unwrap()
        })
        .collect()
}

fn strategies(v: &[Value]) -> Vec<&str> {
    v.iter().map(|a| a["strategy"].as_str().unwrap()).collect()
}

/// One task's GPU out-of-memory, given on the command line.
const GPU_OOM: [&str; 12] = [
    "--task",
    "t1",
    "--worker",
    "w1",
    "--class",
    "GPU",
    "--message",
    "CUDA out of memory. Tried to allocate 2.00 GiB",
    "--batch-size",
    "32",
    "--precision",
    "fp16",
];

#[test]
fn recommend_walks_the_gpu_oom_ladder_across_calls() {
    let d = Dir::new();
    let v = walk(&d, &GPU_OOM, 5);
    assert_eq!(
        strategies(&v),
        [
            "REDUCED_BATCH_SIZE",
            "REDUCED_PRECISION",
            "DIFFERENT_WORKER",
            "FALLBACK_CPU",
            "ESCALATION"
        ]
    );
    assert_eq!(v[0]["modified_config"]["batch_size"], 16);
    assert_eq!(v[1]["modified_config"]["precision"], "int8");
    assert_eq!(v[1]["modified_config"]["batch_size"], 16);
    assert_eq!(v[4]["attempt"], 5);
}

#[test]
fn recommend_walks_the_webgpu_browser_crash_ladder() {
    let d = Dir::new();
    let flags = [
        "--task",
        "t2",
        "--worker",
        "b1",
        "--class",
        "WEBGPU",
        "--browser",
        "chrome",
        "--message",
        "browser crash detected",
    ];
    let v = walk(&d, &flags, 4);
    assert_eq!(
        strategies(&v),
        [
            "BROWSER_RESTART",
            "DIFFERENT_WORKER",
            "FALLBACK_CPU",
            "ESCALATION"
        ]
    );
    assert_eq!(v[0]["target_worker"], "b1");
}

#[test]
fn recommend_walks_the_cuda_error_ladder() {
    let d = Dir::new();
    let flags = [
        "--task",
        "t3",
        "--worker",
        "g1",
        "--class",
        "GPU",
        "--message",
        "CUDA error: device-side assert triggered",
    ];
    let v = walk(&d, &flags, 4);
    assert_eq!(
        strategies(&v),
        [
            "DIFFERENT_WORKER",
            "DELAYED_RETRY",
            "FALLBACK_CPU",
            "ESCALATION"
        ]
    );
    assert_eq!(v[0]["excluded_workers"][0], "g1");
    assert!(v[1]["delay_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn recommend_accepts_the_minimal_record_on_stdin() {
    let d = Dir::new();
    let o = d.run(&["recommend", "--json"], r#"{"task_id":"t1","worker_id":"w1","hardware":{"class":"GPU"},"error":{"message":"CUDA out of memory. Tried to allocate 2.00 GiB"},"task":{"config":{"batch_size":32,"precision":"fp16"}}}"#);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["strategy"], "REDUCED_BATCH_SIZE");
    assert_eq!(v["kind"], "oom_gpu");
    // Text output names the strategy and the reason.
    let o = d.run(&["recommend"], r#"{"task_id":"t1","worker_id":"w1","hardware":{"class":"GPU"},"error":{"message":"CUDA out of memory"},"task":{"config":{"batch_size":32}}}"#);
    assert!(
        stdout(&o).starts_with("REDUCED_BATCH_SIZE"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("batch 32 → 16"), "{}", stdout(&o));
}

/// Regressions (audit): an invalid value in `--config` was refused without naming the file;
/// an array of records sent as one line got serde's words about its first element; a rules
/// file whose rule is named like a default passed `rules check` without a word.
#[test]
fn config_rules_and_record_errors_say_what_and_where() {
    let d = Dir::new();
    d.write("cfg.toml", "[retry]\nmax_attempts = 0\n");
    let rec = r#"{"task_id":"t1","worker_id":"w1","hardware":{"class":"GPU"},"error":{"message":"CUDA out of memory"}}"#;
    let o = d.run(&["recommend", "--config", "cfg.toml"], rec);
    crate::util::refused(&o, "cfg.toml");
    assert!(stderr(&o).contains("max_attempts"), "{}", stderr(&o));
    let o = d.run(&["recommend"], &format!("[{rec}]"));
    crate::util::refused(&o, "a JSON array");
    d.write(
        "r.toml",
        "[[rule]]\nname = \"oom\"\nmatch.kind = [\"oom_gpu\"]\nladder = [\"REDUCED_BATCH_SIZE\"]\n",
    );
    // An invalid --worker is one usage error, not a rejection per kernel line.
    d.write("dmesg.log", "<4>[  201.650687] NVRM: Xid (PCI:0000:9b:00): 79, pid=1, name=x, GPU has fallen off the bus.\n");
    let o = d.run(
        &["ingest", "--data", "h", "--worker", "a b", "dmesg.log"],
        "",
    );
    crate::util::refused(&o, "--worker");
    assert!(!stderr(&o).contains("dmesg.log:1"), "{}", stderr(&o));
    let o = d.run(&["rules", "check", "r.toml"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("rule 'oom' has the name of a default rule"),
        "{}",
        stderr(&o)
    );
}

/// Regression (audit): a record starting with a UTF-8 byte-order mark, as Windows editors
/// write one, was "invalid JSON at column 1" for `recommend`, stateless and durable, while
/// ingest and analyze accept it.
#[test]
fn recommend_accepts_a_byte_order_mark() {
    let d = Dir::new();
    let rec = "\u{feff}{\"task_id\":\"t1\",\"worker_id\":\"w1\",\"hardware\":{\"class\":\"GPU\"},\"error\":{\"message\":\"CUDA out of memory\"},\"task\":{\"config\":{\"batch_size\":32}}}\n";
    for args in [
        &["recommend", "--json"][..],
        &["recommend", "--json", "--data", "hist"],
    ] {
        let o = d.run(args, rec);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let v: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
        assert_eq!(v["strategy"], "REDUCED_BATCH_SIZE", "{args:?}");
    }
}

/// Regression (audit): `--year 0` stored kernel-log records under `date=0000-…` and
/// `--year -5` rejected every line as an unreadable timestamp; the argument itself is checked.
#[test]
fn a_kernel_log_year_out_of_range_is_refused_naming_the_argument() {
    let d = Dir::new();
    d.write("sys.log", "Nov 28 10:00:00 node1 kernel: NVRM: Xid (PCI:0000:9b:00): 79, GPU has fallen off the bus.\n");
    for year in ["0", "-5", "10000"] {
        let o = d.run(&["ingest", "sys.log", "--data", "hist", "--year", year], "");
        assert_eq!(o.status.code(), Some(2), "{year}");
        assert!(stderr(&o).contains("--year"), "{year}: {}", stderr(&o));
        assert!(!d.path("hist").exists(), "{year}");
    }
}

#[test]
fn recommend_runs_the_committed_examples() {
    let text = std::fs::read_to_string(repo().join("data/examples/failures.jsonl")).unwrap();
    let d = Dir::new();
    let o = d.run(&["recommend", "--json"], &text);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!(v.len(), text.lines().count());
    // The same task's OOMs advance its ladder within one call.
    assert_eq!(
        strategies(&v[..3]),
        [
            "REDUCED_BATCH_SIZE",
            "REDUCED_PRECISION",
            "DIFFERENT_WORKER"
        ]
    );
}

/// Regression: flag-mode flags given with a record on stdin were silently ignored (the
/// answer was for the record's GPU and batch, not the --class CPU asked for), and a
/// pretty-printed record with one bad value was reported as "line 1: EOF while parsing".
#[test]
fn recommend_refuses_ignored_flags_and_names_a_pretty_records_bad_field() {
    let d = Dir::new();
    let record = r#"{"task_id":"t1","worker_id":"w1","hardware":{"class":"GPU"},"error":{"message":"CUDA out of memory"},"task":{"config":{"batch_size":32}}}"#;
    for flag in [
        &["--class", "CPU"][..],
        &["--batch-size", "2"],
        &["--exit-code", "137"],
        &["--timestamp", "2026-01-01T00:00:00Z"],
    ] {
        let mut args = vec!["recommend"];
        args.extend_from_slice(flag);
        let o = d.run(&args, record);
        assert_eq!(o.status.code(), Some(2), "{flag:?}");
        assert!(stderr(&o).contains("--message"), "{flag:?}: {}", stderr(&o));
    }
    let pretty = "{\n  \"task_id\": \"t1\",\n  \"worker_id\": \"w1\",\n  \"hardware\": {\n    \"class\": \"GPUX\"\n  },\n  \"error\": {\"message\": \"x\"}\n}\n";
    let o = d.run(&["recommend"], pretty);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("line 5") && err.contains("hardware.class"),
        "{err}"
    );
    assert!(!err.contains("EOF"), "{err}");
}

/// Regression: only `serve` refused a failure dated far ahead of its clock; one such record
/// in a log fed to `recommend` became the report time of the retry budget, the breakers and
/// pattern detection, and froze their windows for every later record.
#[test]
fn recommend_refuses_a_failure_dated_far_ahead_of_the_clock() {
    let d = Dir::new();
    let line = |task: &str, ts: &str| {
        format!(
            r#"{{"task_id":"{task}","worker_id":"w1","hardware":{{"class":"GPU"}},"error":{{"message":"CUDA out of memory"}},"timestamp":"{ts}"}}"#
        )
    };
    let input = format!(
        "{}\n{}\n",
        line("t1", "2020-01-01T00:00:00Z"),
        line("t2", "2099-01-01T00:00:00Z")
    );
    // With a state file: nothing decided, nothing saved.
    let state = d.path("state.json");
    let st = state.to_str().unwrap();
    let o = d.run(&["recommend", "--state", st], &input);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("line 2")
            && err.contains("field timestamp")
            && err.contains("--max-clock-skew"),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
    assert!(!state.exists());
    // Durable mode: the line before it is decided and printed, then the run stops there.
    let data = d.path("data");
    let o = d.run(
        &["recommend", "--json", "--data", data.to_str().unwrap()],
        &input,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["task_id"], "t1");
    // A wider skew accepts it; a negative one is a usage error.
    let o = d.run(&["recommend", "--max-clock-skew", "3000000000"], &input);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.run(&["recommend", "--max-clock-skew", "-1"], &input);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("100 years"), "{}", stderr(&o));
}

/// Found by a README walk-through: an empty pipe read as "invalid JSON: EOF", and in durable
/// mode a resent line was counted as a second failure (attempt 2), where `serve` answers a
/// repeat with the action it already decided.
#[test]
fn recommend_says_when_stdin_is_empty_and_answers_a_resent_line_once() {
    let d = Dir::new();
    let o = d.run(&["recommend"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no failure given: stdin was empty"),
        "{}",
        stderr(&o)
    );
    let line = r#"{"task_id":"t1","worker_id":"w1","hardware":{"class":"GPU"},"error":{"message":"CUDA out of memory"},"timestamp":"2020-01-01T00:00:00Z"}"#;
    let data = d.path("data");
    let o = d.run(
        &["recommend", "--json", "--data", data.to_str().unwrap()],
        &format!("{line}\n{line}\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!(v.len(), 2);
    assert_eq!(v[0], v[1], "the repeat gets the same action");
    assert_eq!(v[1]["attempt"], 1);
    // Sent again after a restart, still the same answer.
    let o = d.run(
        &["recommend", "--json", "--data", data.to_str().unwrap()],
        &format!("{line}\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&stdout(&o))[0], v[0]);
}

/// Found by an audit: 20 concurrent `recommend --state` calls on one file left 1–2 tasks in
/// it (each read, changed and wrote the file back), and saving went through `NAME.tmp`, so
/// `--state jobs.json` overwrote the user's `jobs.tmp`. Calls take turns on a lock beside the
/// file, and the temporary file is the call's own.
#[test]
fn concurrent_recommend_calls_on_one_state_file_keep_every_task() {
    let d = Dir::new();
    d.write("jobs.tmp", "mine");
    let state = d.path("jobs.json");
    let children: Vec<_> = (0..12)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
                .current_dir(d.path(""))
                .args([
                    "recommend",
                    "--state",
                    state.to_str().unwrap(),
                    "--task",
                    &format!("task-{i}"),
                    "--worker",
                    "w1",
                    "--class",
                    "GPU",
                    "--message",
                    "CUDA out of memory",
                ])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let text = std::fs::read_to_string(&state).unwrap();
    for i in 0..12 {
        assert!(text.contains(&format!("\"task-{i}\"")), "task-{i} lost");
    }
    assert_eq!(std::fs::read_to_string(d.path("jobs.tmp")).unwrap(), "mine");
}

/// Regression (audit): a client resending its log after a crash — as the help says, from an
/// earlier line — had every failure of a task but its latest decided again (counted twice,
/// the ladder advanced, stored out of time order). Each is answered with its action.
#[test]
fn recommend_data_answers_a_resent_log_with_the_actions_already_decided() {
    let d = Dir::new();
    let data = d.path("data");
    let line = |t: u64| {
        format!(
            "{{\"task_id\":\"t\",\"worker_id\":\"w1\",\"hardware\":{{\"class\":\"GPU\"}},\"error\":{{\"message\":\"CUDA out of memory\"}},\"timestamp\":{t}}}\n"
        )
    };
    let t0 = 1_764_000_000u64;
    let log: String = (0..3).map(|i| line(t0 + 60 * i)).collect();
    let args = ["recommend", "--data", data.to_str().unwrap(), "--json"];
    let first = d.run(&args, &log);
    assert!(first.status.success(), "{}", stderr(&first));
    let again = d.run(&args, &log);
    assert!(again.status.success(), "{}", stderr(&again));
    let attempts = |o: &std::process::Output| -> Vec<Value> {
        json_lines(&stdout(o))
            .iter()
            .map(|a| a["attempt"].clone())
            .collect()
    };
    assert_eq!(
        attempts(&first),
        [
            serde_json::json!(1),
            serde_json::json!(2),
            serde_json::json!(3)
        ]
    );
    assert_eq!(attempts(&again), attempts(&first));
    // A new failure after them is the fourth.
    let next = d.run(&args, &line(t0 + 600));
    assert_eq!(attempts(&next), [serde_json::json!(4)]);
}

/// Regression (train/eval audit): records carrying their own outcome (`ml_feedback`, as the
/// bench stream's do) were decided, and their outcomes dropped without a word.
#[test]
fn recommend_says_it_does_not_learn_records_own_outcomes() {
    let d = Dir::new();
    let line = |i: u32| {
        format!(
            r#"{{"task_id":"t{i}","worker_id":"w","error":{{"message":"CUDA out of memory"}},"ml_feedback":{{"strategy":"DELAYED_RETRY","success":true}}}}"#
        )
    };
    let two = format!("{}\n{}\n", line(1), line(2));
    for args in [&["recommend"][..], &["recommend", "--data", "data"][..]] {
        let o = d.run(args, &two);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("2 records carried an outcome of their own (ml_feedback), which recommend does not learn from"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = d.run(
        &["recommend"],
        r#"{"task_id":"t","worker_id":"w","error":{"message":"CUDA out of memory"}}"#,
    );
    assert!(!stderr(&o).contains("ml_feedback"), "{}", stderr(&o));
}

/// Regression (nightly-train audit): `recommend --data DIR --model M` refused for the
/// ranking being off, or for M not being a model, had already made DIR (a lock, a manifest,
/// a write-ahead log): a mistyped path left a stray data directory.
#[test]
fn a_refused_recommend_data_leaves_no_data_directory() {
    let d = Dir::new();
    d.write("rank.toml", "[ranking]\nenabled = true\n");
    std::fs::create_dir_all(d.path("not-a-model")).unwrap();
    let line = r#"{"task_id":"t","worker_id":"w","error":{"message":"CUDA out of memory"}}"#;
    for (args, says) in [
        (
            &["recommend", "--data", "fresh", "--model", "not-a-model"][..],
            "ranking, which is off",
        ),
        (
            &[
                "recommend",
                "--data",
                "fresh",
                "--model",
                "not-a-model",
                "--config",
                "rank.toml",
            ][..],
            "loading the model",
        ),
    ] {
        let o = d.run(args, line);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
        assert!(
            !d.path("fresh").exists(),
            "{args:?} made the data directory"
        );
    }
}

#[test]
fn recommend_input_errors_exit_2_and_name_the_problem() {
    let d = Dir::new();
    let o = d.run(
        &["recommend"],
        "{\"task_id\":\"t\",\"worker_id\":\"w\",\"error\":{\"message\":\"x\"},\"colour\":1}",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("colour"), "{}", stderr(&o));
    // Durable mode names the field as stateless mode does (audit).
    let data = d.path("data");
    let o = d.run(
        &["recommend", "--data", data.to_str().unwrap()],
        "{\"task_id\":\"t\",\"worker_id\":\"w\",\"error\":{\"mesage\":\"x\"}}\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("stdin line 1") && stderr(&o).contains("field error.mesage"),
        "{}",
        stderr(&o)
    );
    let o = d.run(&["recommend"], "{\"task_id\":\"t\",\"worker_id\":\"w\",\"error\":{\"message\":\"x\"}}\n{\"task_id\":\"t\"}\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
    // Regression (CLI audit): a truncated first record of JSON lines was reported on the
    // valid line after it, and a single truncated line as "line 2".
    for input in [
        "{\"task_id\":\"t1\"\n{\"task_id\":\"t2\",\"worker_id\":\"w\",\"error\":{\"message\":\"x\"}}\n",
        "{\"task_id\":\"t1\"\n",
    ] {
        let o = d.run(&["recommend"], input);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("stdin line 1:"), "{}", stderr(&o));
    }
    let o = d.run(
        &["recommend"],
        "{\"task_id\":\"../x\",\"worker_id\":\"w\",\"error\":{\"message\":\"x\"}}",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("task_id"), "{}", stderr(&o));
    // Regression (audit): a single record's checks named "(stdin)" where its schema errors
    // named "stdin line 1".
    assert!(stderr(&o).contains("stdin line 1"), "{}", stderr(&o));
    let o = d.run(
        &[
            "recommend",
            "--task",
            "t",
            "--worker",
            "w",
            "--class",
            "QPU",
            "--message",
            "x",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("QPU"), "{}", stderr(&o));
    let o = d.run(
        &[
            "recommend",
            "--state",
            "missing-dir/s.json",
            "--task",
            "t",
            "--worker",
            "w",
            "--message",
            "x",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing-dir/s.json"), "{}", stderr(&o));
}

#[test]
fn classify_prints_one_json_line_per_input_line_in_order() {
    let d = Dir::new();
    let input = "CUDA out of memory. Tried to allocate 2.00 GiB\nKeyError: 'bloom-560m'\nNo space left on device\n\nNVRM: Xid (PCI:0000:3b:00): 79, pid=1, GPU has fallen off the bus.\n";
    let o = d.run(&["classify", "--hardware", "GPU"], input);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&stdout(&o));
    assert_eq!(v.len(), 5);
    for l in &v {
        assert!(l["kind"].is_string() && l["failure_type"].is_string() && l["rule"].is_string());
    }
    assert_eq!(v[0]["kind"], "oom_gpu");
    assert_ne!(v[1]["kind"], "oom_gpu");
    assert_eq!(v[2]["kind"], "disk_full");
    assert_eq!(v[4]["kind"], "gpu_hardware");
    assert_eq!(v[4]["xid"], 79);
}

/// Regression (probe): `--hardware browser` was refused although `--hardware-column` takes
/// `browser`; both read it as a WebGPU browser worker (where "out of memory" is the device's).
#[test]
fn classify_takes_browser_as_a_hardware_class() {
    let d = Dir::new();
    let o = d.run(&["classify", "--hardware", "browser"], "out of memory\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&stdout(&o))[0]["kind"], "oom_gpu");
    let o = d.run(&["classify", "--hardware", "CPU"], "out of memory\n");
    assert_eq!(json_lines(&stdout(&o))[0]["kind"], "oom_host");
    let o = d.run(&["classify", "--hardware", "toaster"], "out of memory\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("or browser"), "{}", stderr(&o));
}

#[test]
fn classify_reads_a_tsv_column() {
    let d = Dir::new();
    d.write(
        "m.tsv",
        "id\tmessage\n1\tCUDA out of memory\n2\tConnection refused\n",
    );
    let o = d.run(&["classify", "--tsv", "m.tsv", "--column", "message"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&stdout(&o)).len(), 2);
    let o = d.run(&["classify", "--tsv", "m.tsv", "--column", "msg"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("msg"), "{}", stderr(&o));
}

#[test]
fn rules_check_names_file_line_and_field() {
    let d = Dir::new();
    d.write(
        "ok.toml",
        "[[rule]]\nname = \"nccl\"\nmatch.message = '(?i)nccl'\nladder = [\"DIFFERENT_WORKER\"]\n",
    );
    let o = d.run(&["rules", "check", "ok.toml"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    d.write(
        "bad.toml",
        "[[rule]]\nname = \"x\"\nmatch.kind = [\"oom\"]\nladder = [\"DELAYED_RETRY\"]\n",
    );
    let o = d.run(&["rules", "check", "bad.toml"], "");
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("bad.toml:3: rule[1] 'x'.match.kind:") && e.contains("oom"),
        "{e}"
    );
    let o = d.run(&["rules", "show", "--rules", "ok.toml"], "");
    assert!(stdout(&o).contains("nccl"));
    // `--toml` prints the defaults: with --rules it is refused rather than ignoring the file
    // (README walk-through).
    let both = d.run(&["rules", "show", "--rules", "ok.toml", "--toml"], "");
    assert_eq!(both.status.code(), Some(2));
    assert!(stderr(&both).contains("--toml"), "{}", stderr(&both));
    assert!(stdout(&o).contains("WEBNN"));
}

/// Regression: `rules check` reported an empty class ladder at line 1 and a bad rule field at
/// its `[[rule]]` header, and accepted `GPU` and `gpu` in `[ladders]` (the last one won).
#[test]
fn rules_check_names_the_line_of_the_offending_key() {
    let d = Dir::new();
    for (text, want) in [
        ("[ladders]\nGPU = []\n", "e.toml:2: ladders.GPU:"),
        (
            "\n[[rule]]\nname = \"b\"\nmatch.kind = [\"timeout\"]\nmatch.xid_action = [\"PRAY\"]\nladder = [\"ESCALATION\"]\n",
            "e.toml:5: rule[1] 'b'.match.xid_action:",
        ),
        (
            "[ladders]\nGPU = [\"DELAYED_RETRY\"]\ngpu = [\"FALLBACK_CPU\"]\n",
            "e.toml:3: ladders.gpu: 'gpu' and 'GPU' (line 2) both name hardware class GPU",
        ),
    ] {
        d.write("e.toml", text);
        let o = d.run(&["rules", "check", "e.toml"], "");
        assert_eq!(o.status.code(), Some(2), "{text}");
        let e = stderr(&o);
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn eval_classify_meets_the_bar_on_the_real_dev_set() {
    let Some(real) = real_data() else { return };
    let tsv = real.join("error_messages_dev.tsv");
    let d = Dir::new();
    let o = d.run(
        &["eval", "classify", "--tsv", tsv.to_str().unwrap(), "--json"],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let f1 = v["macro_f1"].as_f64().unwrap();
    assert!(f1 >= 0.85, "macro-F1 {f1}");
    let o = d.run(&["eval", "classify", "--tsv", tsv.to_str().unwrap()], "");
    assert!(
        stdout(&o).to_lowercase().contains("macro"),
        "{}",
        stdout(&o)
    );
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

/// `eval classify --jsonl`: the dev set written as JSON lines scores exactly as its TSV; one
/// of `--tsv` and `--jsonl` is required, and a bad line is named.
#[test]
fn eval_classify_reads_json_lines_as_it_reads_the_tsv() {
    let d = Dir::new();
    let tsv = d.write(
        "m.tsv",
        "id\tmessage\tlabel\talt_label\thw_class\n1\tout of memory\toom_host\t\tCPU\n2\tCUDA out of memory\toom_gpu\t\tGPU\n3\tWebGPU device lost\twebgpu_context_lost\tunknown\tbrowser\n",
    );
    let jsonl = d.write(
        "m.jsonl",
        concat!(
            r#"{"id": 1, "message": "out of memory", "label": "oom_host", "hw_class": "CPU"}"#,
            "\n",
            r#"{"id": 2, "message": "CUDA out of memory", "label": "oom_gpu", "hw_class": "GPU"}"#,
            "\n",
            r#"{"id": 3, "message": "WebGPU device lost", "label": "webgpu_context_lost", "alt_label": "unknown", "hw_class": "browser"}"#,
            "\n",
        ),
    );
    let report = |args: &[&str]| -> Value {
        let o = d.run(args, "");
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let a = report(&["eval", "classify", "--tsv", tsv.to_str().unwrap(), "--json"]);
    let b = report(&[
        "eval",
        "classify",
        "--jsonl",
        jsonl.to_str().unwrap(),
        "--json",
    ]);
    for k in [
        "total",
        "correct",
        "accuracy",
        "macro_f1",
        "per_kind",
        "confusion",
    ] {
        assert_eq!(a[k], b[k], "{k}");
    }
    assert_eq!(a["total"], 3);
    let o = d.run(&["eval", "classify"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--tsv") && stderr(&o).contains("--jsonl"),
        "{}",
        stderr(&o)
    );
    let bad = d.write("b.jsonl", "{\"message\": \"x\", \"label\": \"oom\"}\n");
    let o = d.run(&["eval", "classify", "--jsonl", bad.to_str().unwrap()], "");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("b.jsonl:1: field label"),
        "{}",
        stderr(&o)
    );
}

/// Found by an audit: a `hw_class` naming no hardware class was dropped without a word (the
/// row scored as if no hint were given). It is warned about, naming the line.
#[test]
fn eval_classify_warns_about_a_hw_class_it_cannot_read() {
    let d = Dir::new();
    let tsv = d.write(
        "m.tsv",
        "id\tmessage\tlabel\thw_class\n1\tout of memory\toom_host\tCPUU\n2\tCUDA out of memory\toom_gpu\tGPU\n",
    );
    let o = d.run(&["eval", "classify", "--tsv", tsv.to_str().unwrap()], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("m.tsv:2: hw_class 'CPUU' names no hardware class"),
        "{e}"
    );
    let o = d.run(
        &["eval", "classify", "--tsv", tsv.to_str().unwrap(), "--json"],
        "",
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{v}");
}

#[test]
fn help_teaches() {
    let d = Dir::new();
    let o = d.run(&["recommend", "--help"], "");
    let h = stdout(&o);
    assert!(h.contains("--state") && h.contains("task_id"), "{h}");
    let o = d.run(&["frobnicate"], "");
    assert_eq!(o.status.code(), Some(2));
}

/// Regression: `recommend --state s.json ... | head -1` saved the state only after printing,
/// so a reader that stopped early lost the decision (the README's loop walked the ladder's
/// first step five times); `rules show | head` and others panicked on the closed pipe.
#[test]
fn a_reader_that_stops_early_ends_the_command_quietly_and_keeps_its_state() {
    let d = Dir::new();
    let flags: Vec<&str> = ["recommend", "--state", "s.json"]
        .into_iter()
        .chain(GPU_OOM)
        .collect();
    for _ in 0..3 {
        let o = d.run_closed(&flags);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stderr(&o), "");
    }
    let mut args = flags.to_vec();
    args.push("--json");
    let o = d.run(&args, "");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["attempt"], 4, "the three unread decisions were kept");
    assert_eq!(v["strategy"], "FALLBACK_CPU");
    for args in [
        &["rules", "show"][..],
        &["rules", "show", "--toml"],
        &[
            "simulate",
            "--scenario",
            "SCENARIO",
            "--failures",
            "50",
            "--json",
        ],
    ] {
        let scenario = repo().join("data/scenarios/browser-fleet.toml");
        let scenario = scenario.to_str().unwrap();
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "SCENARIO" { scenario } else { a })
            .collect();
        let o = d.run_closed(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}

/// Regression (audit): `faultline analyze … 2>&1 | head` panicked (exit 101) once `head` had
/// gone, at the first message to the closed standard error; an error then lost its exit
/// status 2 the same way.
#[test]
fn a_closed_standard_error_neither_panics_nor_changes_the_exit_status() {
    let d = Dir::new();
    let sample = repo().join("data/sample");
    let status = d.run_all_closed(&["analyze", sample.to_str().unwrap(), "--out", "report"]);
    assert_eq!(status.code(), Some(0), "analyze");
    assert!(d.path("report/summary.json").is_file());
    let status = d.run_all_closed(&["rules", "check", "nope.toml"]);
    assert_eq!(status.code(), Some(2), "an error keeps its exit status");
}

/// Regression (audit): `--map` given for JSON lines was ignored without a word.
#[test]
fn a_column_map_for_input_without_columns_is_said_to_be_ignored() {
    let d = Dir::new();
    let jsonl = repo().join("data/examples/failures.jsonl");
    let o = d.run(
        &[
            "analyze",
            jsonl.to_str().unwrap(),
            "--out",
            "report",
            "-q",
            "--map",
            "message=msg",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--map is ignored") && stderr(&o).contains("jsonl"),
        "{}",
        stderr(&o)
    );
    // A CSV among the inputs: the map is used, no warning.
    std::fs::write(
        d.path("f.csv"),
        "job,msg,host\nj1,CUDA out of memory. Tried to allocate 2.00 GiB,gpu-1\n",
    )
    .unwrap();
    let o = d.run(
        &[
            "analyze",
            "f.csv",
            "--out",
            "report2",
            "-q",
            "--map",
            "task_id=job,message=msg,worker_id=host",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("--map is ignored"), "{}", stderr(&o));
}

/// Regression: an error whose message already names its cause printed the cause twice
/// ("No such file or directory (os error 2): No such file or directory (os error 2)").
#[test]
fn an_error_names_its_cause_once() {
    let d = Dir::new();
    let o = d.run(&["rules", "check", "nope.toml"], "");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("nope.toml"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

/// Regression: `--failures -5` was reported as an unknown flag `-5`.
#[test]
fn a_negative_number_is_an_invalid_value_not_an_unknown_flag() {
    let d = Dir::new();
    let scenario = repo().join("data/scenarios/test-farm.toml");
    for args in [
        vec![
            "simulate",
            "--scenario",
            scenario.to_str().unwrap(),
            "--failures",
            "-5",
        ],
        vec![
            "recommend",
            "--task",
            "t",
            "--worker",
            "w",
            "--message",
            "x",
            "--batch-size",
            "-3",
        ],
    ] {
        let o = d.run(&args, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains("invalid value '-"), "{args:?}: {err}");
    }
}

/// Regression: one byte that is not UTF-8 stopped `classify` ("stream did not contain valid
/// UTF-8", no line) and `recommend` with no line number.
#[test]
fn bytes_that_are_not_utf8_cost_one_line_not_the_input() {
    let d = Dir::new();
    let o = crate::util::run_bytes_in(
        d.tmp.path(),
        &["classify"],
        b"CUDA out of memory\n\xff\xfe bad\nNCCL watchdog timeout\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["kind"], "oom_gpu");
    let mut tsv = b"message\nCUDA out of memory\n".to_vec();
    tsv.extend_from_slice(b"\xff bad\n");
    std::fs::write(d.path("t.tsv"), tsv).unwrap();
    let o = d.run(&["classify", "--tsv", "t.tsv", "--column", "message"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&stdout(&o)).len(), 2);
    let o = crate::util::run_bytes_in(
        d.tmp.path(),
        &["recommend"],
        b"{\"task_id\":\"t\",\"worker_id\":\"w\",\"error\":{\"message\":\"x\"}}\n{\"task_id\":\"t\",\"worker_id\":\"w\",\"error\":{\"message\":\"\xff\"}}\n",
    );
    refused(&o, "stdin line 2: not valid UTF-8");
}

/// Regression: `eval ranking` on a directory without a history reported "0 decision(s)
/// joined", and `serve --model` with a wrong path blamed the data directory.
#[test]
fn a_missing_history_or_model_is_named_as_such() {
    let d = Dir::new();
    let o = d.run(&["eval", "ranking", "--data", "nope"], "");
    refused(&o, "nope: no such directory");
    std::fs::create_dir(d.path("empty")).unwrap();
    let o = d.run(&["eval", "ranking", "--data", "empty"], "");
    refused(&o, "empty: no history/ directory");
    let o = d.run(
        &[
            "serve",
            "--data",
            "srv",
            "--model",
            "nope",
            "--addr",
            "127.0.0.1:0",
        ],
        "",
    );
    refused(&o, "--model nope: not a model directory");
}

/// Regression: an unknown value in `classify --hardware-column` was ignored without a word,
/// and `template --save` to a path it cannot write failed only after the whole input.
#[test]
fn a_bad_hardware_value_or_save_path_is_named_before_the_work() {
    let d = Dir::new();
    d.write(
        "t.tsv",
        "message\thw\nCUDA out of memory\tGPU\nkilled\tQPU\n",
    );
    let by_column = [
        "classify",
        "--tsv",
        "t.tsv",
        "--column",
        "message",
        "--hardware-column",
        "hw",
    ];
    let o = d.run(&by_column, "");
    refused(&o, "t.tsv:3: column 'hw': unknown hardware class 'QPU'");
    // Regression (audit): `--hardware` beside `--hardware-column` was ignored silently.
    let o = d.run(&[&by_column[..], &["--hardware", "TPU"]].concat(), "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    let o = d.run(&["template", "--save", "missing/dir/m.json"], "one line\n");
    refused(&o, "--save missing/dir/m.json");
    assert_eq!(stdout(&o), "", "nothing was mined before the check");
}

/// Regression (audit): `classify` on a pipe printed nothing until stdin closed (`tail -f log
/// | faultline classify` seemed to hang), and a byte-order mark made the first line
/// `unknown`. Each line's answer now comes before the next line is sent.
#[test]
fn classify_answers_each_line_as_it_comes_and_strips_a_bom() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("classify")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // A guard against a hang, not a speed limit: without the flush no line ever comes.
    let wait = std::time::Duration::from_secs(120);
    stdin.write_all(b"\xef\xbb\xbfKilled\n").unwrap();
    stdin.flush().unwrap();
    let first = rx
        .recv_timeout(wait)
        .expect("no answer before stdin closed");
    assert!(first.contains("\"kind\":\"oom_host\""), "{first}");
    stdin.write_all(b"CUDA out of memory\n").unwrap();
    stdin.flush().unwrap();
    let second = rx.recv_timeout(wait).expect("no answer to the second line");
    assert!(second.contains("\"kind\":\"oom_gpu\""), "{second}");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// Regression (audit): an empty --state file (as `mktemp` makes one) was "EOF while parsing".
#[test]
fn an_empty_state_file_is_no_state_yet() {
    let d = Dir::new();
    d.write("s.json", "");
    let args = [
        "recommend",
        "--state",
        "s.json",
        "--task",
        "t",
        "--worker",
        "w",
        "--class",
        "GPU",
        "--message",
        "CUDA out of memory",
    ];
    let o = d.run(&args, "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::metadata(d.path("s.json")).unwrap().len() > 0);
    let o = d.run(&args, "");
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Regression (CLI audit): a trained model could seed the learned ranking of `serve` and
/// `simulate` only. `recommend --model` seeds it too (the committed default model decides by
/// the ranking where the rules alone would); without the ranking on it is refused, and
/// `--flush-every 0` is refused rather than taken as 1.
#[test]
fn recommend_seeds_the_ranking_from_a_model() {
    let d = Dir::new();
    let model = crate::util::repo().join("models/default");
    let model = model.to_str().unwrap();
    d.write("on.toml", "[ranking]\nenabled = true\n");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            "recommend",
            "--task",
            "t",
            "--worker",
            "w",
            "--class",
            "GPU",
            "--message",
            "CUDA out of memory",
            "--json",
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect()
    };
    let run = |v: Vec<String>| d.run(&v.iter().map(String::as_str).collect::<Vec<_>>(), "");
    let o = run(args(&["--model", model]));
    refused(&o, "[ranking] enabled = true");
    let source = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", stderr(o));
        let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        a["source"]["kind"].as_str().unwrap().to_string()
    };
    assert_eq!(source(&run(args(&["--config", "on.toml"]))), "rule");
    assert_eq!(
        source(&run(args(&["--config", "on.toml", "--model", model]))),
        "learned"
    );
    let o = d.run(&["recommend", "--data", "h", "--flush-every", "0"], "");
    refused(&o, "--flush-every 0");
}

/// Regression (CLI audit, then its check): a TSV row too short to hold the message column
/// was classified `unknown` without a word; the first warning could never fire (short rows
/// are padded). It now names the row, and the row still gets its output line.
#[test]
fn classify_tsv_warns_about_a_row_without_its_message() {
    let d = Dir::new();
    d.write("q.tsv", "id\tmessage\n1\tCUDA out of memory\n2\n");
    let o = d.run(&["classify", "--tsv", "q.tsv", "--column", "message"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 row without a 'message' field (the first on line 3)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
}

/// `recommend --explain` over a simulated history: the JSON document gains an
/// `explanation` whose ranking lists the candidates (the chosen strategy among them) and
/// whose summary says what decided; the text form prints the summary and the candidates'
/// table; without --explain there is no explanation.
#[test]
fn recommend_explain_says_why_over_a_history() {
    let d = Dir::new();
    let scenario = repo().join("data/scenarios/llm-gpu-training.toml");
    let o = d.run(
        &[
            "simulate",
            "--scenario",
            scenario.to_str().unwrap(),
            "--policy",
            "learned",
            "--failures",
            "600",
            "--out",
            "sim",
            "--format",
            "parquet",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    d.write("cfg.toml", "[ranking]\nenabled = true\n");
    let rec = |task: &str| {
        format!(
            r#"{{"task_id":"{task}","worker_id":"gpu-x","hardware":{{"class":"GPU"}},"error":{{"message":"CUDA out of memory. Tried to allocate 2.00 GiB"}},"task":{{"config":{{"batch_size":32,"precision":"fp16"}}}}}}"#
        )
    };
    let args = [
        "recommend",
        "--data",
        "sim",
        "--config",
        "cfg.toml",
        "--max-clock-skew",
        "3e9",
    ];
    let mut json = args.to_vec();
    json.extend(["--json", "--explain"]);
    let o = d.run(&json, &rec("x1"));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let why = &v["explanation"];
    let summary = why["summary"].as_str().unwrap();
    assert!(
        summary.contains("decided") || summary.contains("chose"),
        "{why}"
    );
    let ranking = &why["ranking"];
    assert_eq!(ranking["class"], "GPU");
    assert_eq!(ranking["kind"], "oom_gpu");
    assert!(ranking["outcomes"].as_f64().unwrap() > 0.0, "{why}");
    let candidates = ranking["candidates"].as_array().unwrap();
    assert!(
        candidates.iter().any(|c| c["strategy"] == v["strategy"]),
        "{why}"
    );
    if v["source"]["kind"] == "learned" {
        assert!(
            summary.starts_with("the learned ranking chose"),
            "{summary}"
        );
    }
    let mut text = args.to_vec();
    text.push("--explain");
    let o = d.run(&text, &rec("x2"));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("  why:       "), "{out}");
    assert!(
        out.contains("ranking:   Bayes ranker; GPU x oom_gpu"),
        "{out}"
    );
    assert!(
        out.contains("ladder:    step 1 REDUCED_BATCH_SIZE > step 2"),
        "{out}"
    );
    assert!(
        out.contains("left out:  SIMPLIFIED_MODEL (the task names no fallback_models)"),
        "{out}"
    );
    assert!(out.contains("REDUCED_BATCH_SIZE"), "{out}");
    let mut plain = args.to_vec();
    plain.push("--json");
    let o = d.run(&plain, &rec("x3"));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(v.get("explanation").is_none(), "{v}");
}

/// Every verb's and every subcommand's `--help` teaches with an example (an audit found
/// `rules`, `rules show`, `rules check` and `eval` without one).
#[test]
fn every_verb_and_subcommand_help_has_an_example() {
    let d = Dir::new();
    fn commands(help: &str) -> Vec<String> {
        help.lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            // A command's line starts two spaces in; a wrapped description more.
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .map(str::to_string)
            .collect()
    }
    let top = stdout(&d.run(&["--help"], ""));
    let verbs = commands(&top);
    assert!(verbs.len() >= 10, "{top}");
    let mut missing = Vec::new();
    for v in &verbs {
        let help = stdout(&d.run(&[v, "--help"], ""));
        if !help.contains("Example") {
            missing.push(v.clone());
        }
        for s in commands(&help) {
            let sub = stdout(&d.run(&[v, &s, "--help"], ""));
            if !sub.contains("Example") {
                missing.push(format!("{v} {s}"));
            }
        }
    }
    assert!(missing.is_empty(), "no example in the help of: {missing:?}");
}

/// Regression (audit): `recommend --data` decided and kept a record dated before 1973 (`-5`,
/// `0`), which `serve` refuses, so a server over that history answered the same record with
/// a 400. With `--data` it is refused naming the field; without, old logs are read as
/// they are.
#[test]
fn recommend_data_refuses_a_placeholder_time_as_serve_does() {
    let d = Dir::new();
    let rec = "{\"task_id\":\"t3\",\"worker_id\":\"w1\",\"error\":{\"message\":\"x\"},\"timestamp\":-5}\n";
    let o = d.run(&["recommend", "--data", "h"], rec);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("field timestamp") && stderr(&o).contains("before 1973"),
        "{}",
        stderr(&o)
    );
    let o = d.run(&["recommend"], rec);
    assert!(o.status.success(), "{}", stderr(&o));
}
