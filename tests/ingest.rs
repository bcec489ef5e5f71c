//! `faultline ingest` and `faultline compact`: every input format into the Parquet history.

use std::path::Path;

use faultline::store::{scan, Entry, HistoryStore, ParquetStore, StoreOptions, Table};
use serde_json::Value;

use crate::util::{refused, repo, stderr, stdout, Dir};

fn record(task: &str, msg: &str) -> String {
    serde_json::json!({
        "task_id": task, "worker_id": "w1", "hardware": {"class": "GPU"},
        "error": {"message": msg}, "ts": "2025-03-13T00:00:00Z",
        "task": {"config": {"batch_size": 32, "precision": "fp16"}}
    })
    .to_string()
}

fn entries(data: &Path) -> Vec<Entry> {
    ParquetStore::open(data, StoreOptions::default())
        .expect("open store")
        .entries()
        .expect("entries")
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

fn failures(data: &Path) -> Vec<faultline::store::FailureRow> {
    entries(data)
        .into_iter()
        .map(|e| match e {
            Entry::Failure(f) => *f,
            other => panic!("not a failure: {other:?}"),
        })
        .collect()
}

fn summary(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).expect("json summary")
}

fn parts(data: &Path) -> Vec<std::path::PathBuf> {
    crate::util::parquet_parts(&data.join("history/failures"))
}

#[test]
fn mixed_jsonl_ingests_good_lines_and_reports_bad_ones() {
    let d = Dir::new();
    let text = [
        record("t1", "CUDA out of memory. Tried to allocate 2.00 GiB"),
        "not json".to_string(),
        record("t2", "NCCL watchdog timeout"),
        String::new(),
        record("../t3", "bad id"),
        r#"{"task_id":"t4","error":{"message":"no worker"}}"#.to_string(),
        record("t5", "Connection reset by peer"),
    ]
    .join("\n");
    d.write("in.jsonl", &text);
    let out = d.run(&["ingest", "in.jsonl", "--data", "data", "--json"], "");
    let s = summary(&out);
    assert_eq!(
        (&s["read"], &s["ingested"], &s["rejected"], &s["skipped"]),
        (
            &Value::from(6),
            &Value::from(3),
            &Value::from(3),
            &Value::from(1)
        )
    );
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with("in.jsonl:2: invalid JSON: "), "{err}");
    assert!(
        lines[1].starts_with("in.jsonl:5: invalid task_id: "),
        "{err}"
    );
    assert!(
        lines[2].starts_with("in.jsonl:6: missing field `worker_id`"),
        "{err}"
    );
    assert_eq!(s["rejections"][1]["line"], 5);

    let data = d.path("data");
    assert!(!parts(&data).is_empty());
    assert!(parts(&data)[0]
        .to_string_lossy()
        .contains("date=2025-03-13"));
    let rows = failures(&data);
    let tasks: Vec<&str> = rows.iter().map(|r| r.record.task_id.as_str()).collect();
    assert_eq!(tasks, ["t1", "t2", "t5"], "input order is kept");
    assert_eq!(rows[0].record.task.config.batch_size, Some(32));
    assert!(!rows[0].classifier_rule.is_empty());
    let df = scan(&data, Table::Failures)
        .expect("scan")
        .collect()
        .expect("collect");
    assert_eq!(df.height(), 3);
}

#[test]
fn text_summary_and_capped_rejections() {
    let d = Dir::new();
    let mut text = String::new();
    for i in 0..30 {
        text.push_str("{broken\n");
        text.push_str(&record(&format!("t{i}"), "Segmentation fault"));
        text.push('\n');
    }
    d.write("in.jsonl", &text);
    let out = d.run(&["ingest", "in.jsonl", "--data", "data"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("in.jsonl:")).count(),
        20
    );
    assert!(err.contains("... and 10 more rejected lines"), "{err}");
    let o = stdout(&out);
    assert!(
        o.starts_with("read 60 records from 1 input: ingested 30, rejected 30 in "),
        "{o}"
    );
    let quiet = d.run(&["ingest", "in.jsonl", "--data", "data2", "--quiet"], "");
    assert!(quiet.status.success());
    assert_eq!(stderr(&quiet), "");
}

#[test]
fn strict_stops_at_the_first_bad_line_with_exit_2() {
    let d = Dir::new();
    let text = format!(
        "{}\n{}\n{{oops\n{}\n",
        record("t1", "a"),
        record("t2", "b"),
        record("t3", "c")
    );
    d.write("in.jsonl", &text);
    let out = d.run(&["ingest", "in.jsonl", "--data", "data", "--strict"], "");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("faultline: error: in.jsonl:3: invalid JSON: "),
        "{err}"
    );
    assert!(err.contains("strict"), "{err}");
    assert!(
        failures(&d.path("data")).is_empty(),
        "nothing after a strict failure"
    );
}

#[test]
fn all_rejected_usage_errors_and_unknown_formats_exit_2() {
    let d = Dir::new();
    d.write("bad.jsonl", "{\n[\n");
    let out = d.run(&["ingest", "bad.jsonl", "--data", "data"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nothing ingested: all 2 records were rejected"));
    d.write("x.bin", "");
    let out = d.run(&["ingest", "x.bin", "--data", "data"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("x.bin: cannot tell the input format from the file name; use --format"),
        "{}",
        stderr(&out)
    );
    let out = d.run(&["ingest", "missing.jsonl", "--data", "data"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.jsonl: no such file or directory"));
    let out = d.run(&["ingest", "x.bin", "--data", "data", "--map", "msg"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("'msg' is not FIELD=COLUMN"),
        "{}",
        stderr(&out)
    );
    // An empty input is not an error.
    d.write("empty.jsonl", "");
    let s = summary(&d.run(&["ingest", "empty.jsonl", "--data", "data", "--json"], ""));
    assert_eq!(s["read"], 0);
}

/// Found by an audit: a rerun after an ingest killed partway (some batches committed, the
/// input not yet logged as taken in) read the whole input again — 33,801 duplicates in a
/// 100k history. The input is marked begun before anything is written; a rerun that finds
/// the mark without its end refuses, naming the input and --again.
#[test]
fn a_rerun_after_an_interrupted_ingest_is_refused_unless_again() {
    let d = Dir::new();
    let lines: String = (0..5)
        .map(|i| record(&format!("t{i}"), "CUDA out of memory") + "\n")
        .collect();
    d.write("a.jsonl", &lines);
    let out = d.run(&["ingest", "a.jsonl", "--data", "data"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(failures(&d.path("data")).len(), 5);
    // As a run killed after committing leaves the log: the begun mark without its end.
    let log = d.path("data").join("ingested.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    assert_eq!(kept.len(), 2, "{text}");
    assert!(kept[0].contains("\"started\""), "{text}");
    std::fs::write(&log, format!("{}\n", kept[0])).unwrap();
    let out = d.run(&["ingest", "a.jsonl", "--data", "data"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("a.jsonl") && e.contains("did not finish") && e.contains("--again"),
        "{e}"
    );
    assert_eq!(failures(&d.path("data")).len(), 5, "nothing added");
    // Regression (durability audit): a file that grew after the kill was read again from its
    // start, without a refusal (its size and time no longer matched the mark).
    let grown = format!("{lines}{}\n", record("t5", "CUDA out of memory"));
    d.write("a.jsonl", &grown);
    let out = d.run(&["ingest", "a.jsonl", "--data", "data"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the file changed since"),
        "{}",
        stderr(&out)
    );
    assert_eq!(failures(&d.path("data")).len(), 5, "nothing added");
    d.write("a.jsonl", &lines);
    // --again ingests it all anyway; then it is taken in and skipped as usual.
    let out = d.run(&["ingest", "a.jsonl", "--data", "data", "--again"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(failures(&d.path("data")).len(), 10);
    let out = d.run(&["ingest", "a.jsonl", "--data", "data"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("skipped"), "{}", stderr(&out));
    // Regression (nightly-train audit): a run killed before its first commit (its mark
    // without its end, the commit point where the mark found it) was refused as if part of
    // the input were in the history. It is read again, with a note.
    d.write("b.jsonl", &lines);
    let out = d.run(&["ingest", "b.jsonl", "--data", "data"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    let mut kept: Vec<String> = text.lines().map(str::to_string).collect();
    let done = kept.pop().unwrap();
    assert!(
        done.contains("b.jsonl") && !done.contains("started"),
        "{done}"
    );
    let mark = kept.last().unwrap().clone();
    assert!(
        mark.contains("started") && mark.contains("flushed_before"),
        "{mark}"
    );
    // As if b's run had been killed before committing: its records not there, its mark the
    // latest line, the commit point where the mark found it.
    std::fs::remove_dir_all(d.path("data")).unwrap();
    let out = d.run(&["ingest", "a.jsonl", "--data", "data"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let flushed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.path("data/history/_manifest.json")).unwrap(),
    )
    .unwrap();
    let mut mark: serde_json::Value = serde_json::from_str(&mark).unwrap();
    mark["flushed_before"] = flushed["flushed_seq"].clone();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, format!("{mark}\n").as_bytes()).unwrap();
    drop(f);
    let out = d.run(&["ingest", "b.jsonl", "--data", "data"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("committed nothing"),
        "{}",
        stderr(&out)
    );
    assert_eq!(failures(&d.path("data")).len(), 10);
    // Regression (review): a manifest gone or damaged since the mark is no commit point that
    // stood still (opening the store rebuilds it from the parts, with whatever the killed run
    // committed): refused — also when the mark was made on a fresh directory (commit point
    // 0), which an unreadable manifest was once taken to equal.
    mark["flushed_before"] = serde_json::json!(0);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, format!("{mark}\n").as_bytes()).unwrap();
    drop(f);
    let manifest = d.path("data/history/_manifest.json");
    let kept_manifest = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, "").unwrap();
    let out = d.run(&["ingest", "b.jsonl", "--data", "data"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("did not finish"), "{}", stderr(&out));
    std::fs::write(&manifest, kept_manifest).unwrap();
    assert_eq!(failures(&d.path("data")).len(), 10);
    // An input with nothing to take in ends its mark too: no refusal next time.
    d.write("bad.jsonl", "{\n");
    let out = d.run(&["ingest", "bad.jsonl", "--data", "data"], "");
    assert_eq!(out.status.code(), Some(2));
    let out = d.run(&["ingest", "bad.jsonl", "--data", "data"], "");
    assert!(
        stderr(&out).contains("nothing ingested"),
        "{}",
        stderr(&out)
    );
}

/// Found by an audit (the analyze side of it): a data directory given as an input was read
/// file by file — its Parquet parts as failures, its WAL and lock as unknown files. `ingest`
/// refuses it, naming it and what reads it, and writes nothing.
#[test]
fn a_data_directory_as_an_input_is_refused_naming_it() {
    let d = Dir::new();
    d.write("a.jsonl", &record("t1", "CUDA out of memory"));
    let out = d.run(&["ingest", "a.jsonl", "--data", "first"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    for input in ["first", "."] {
        let out = d.run(&["ingest", input, "--data", "second"], "");
        assert_eq!(out.status.code(), Some(2), "{input}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(
            e.contains("first is a faultline data directory") && e.contains("analyze --data"),
            "{input}: {e}"
        );
        assert!(!d.path("second").join("history").exists(), "{input}");
    }
}

#[test]
fn stdin_is_read_as_jsonl() {
    let d = Dir::new();
    let text = format!("{}\n{}\n", record("t1", "a"), record("t2", "b"));
    let s = summary(&d.run(&["ingest", "-", "--data", "data", "--json"], &text));
    assert_eq!(s["ingested"], 2);
    assert_eq!(s["files"][0]["path"], "<stdin>");
}

/// Regression (CLI audit): records dated before 1973 (a placeholder `0`, kernel times from
/// boot) or far ahead of the clock were ingested without a word; only a later `analyze`
/// said so. They are kept as dated, and counted on standard error and in `--json`.
#[test]
fn records_dated_before_1973_or_far_ahead_are_counted() {
    let d = Dir::new();
    let at = |ts: &str| record("t", "CUDA out of memory").replace("2025-03-13T00:00:00Z", ts);
    let text = [
        at("1970-01-01T00:00:00Z"),
        at("1971-06-01T00:00:00Z"),
        at("2025-03-13T00:00:00Z"),
        at("2099-01-01T00:00:00Z"),
    ]
    .join("\n");
    let o = d.run(&["ingest", "-", "--data", "data", "--json"], &text);
    let s = summary(&o);
    assert_eq!(s["ingested"], 4);
    assert_eq!(s["dated_before_1973"], 2);
    assert_eq!(s["dated_ahead"], 1);
    let err = stderr(&o);
    assert!(
        err.contains("2 records are dated before 1973 (the earliest 1970-01-01T00:00:00Z)"),
        "{err}"
    );
    assert!(
        err.contains("1 record is dated more than a day ahead of this machine's clock (the latest 2099-01-01T00:00:00Z)"),
        "{err}"
    );
    assert_eq!(failures(&d.path("data")).len(), 4, "kept as dated");
    // Records of ordinary times: nothing said.
    let o = d.run(
        &["ingest", "-", "--data", "data2"],
        &at("2025-03-13T00:00:00Z"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("dated"), "{}", stderr(&o));
}

#[test]
fn csv_with_a_column_mapping() {
    let d = Dir::new();
    d.write(
        "jobs.csv",
        "job,host,msg,platform,time,bs\n\
         j1,n1,CUDA out of memory,GPU,2025-03-13T01:00:00Z,64\n\
         j2,n2,\"Traceback (most recent call last):\n  File \"\"x.py\"\", line 1\nRuntimeError: NCCL error\",gpu,2025-03-13 02:00:00,\n\
         j3,n3,bad batch,GPU,2025-03-13T03:00:00Z,zero\n\
         j4,n4,Killed,CPU,1741835000,\n",
    );
    let out = d.run(
        &[
            "ingest",
            "jobs.csv",
            "--data",
            "data",
            "--json",
            "--map",
            "task_id=job,message=msg,worker_id=host,hardware.class=platform,timestamp=time,batch_size=bs",
        ],
        "",
    );
    let s = summary(&out);
    assert_eq!(
        (&s["ingested"], &s["rejected"]),
        (&Value::from(3), &Value::from(1))
    );
    assert_eq!(
        stderr(&out).trim(),
        "jobs.csv:6: column 'bs': 'zero' is not a non-negative integer"
    );
    let rows = failures(&d.path("data"));
    assert_eq!(rows[0].record.task.config.batch_size, Some(64));
    assert_eq!(rows[0].record.hardware.class.as_str(), "GPU");
    assert!(rows[1]
        .record
        .error
        .message
        .ends_with("RuntimeError: NCCL error"));
    assert_eq!(rows[2].record.worker_id.as_str(), "n4");
    assert_eq!(rows[2].record.timestamp.to_string(), "2025-03-13T03:03:20Z");
}

const DMESG: &str = "\
[Sun Feb 23 16:24:18 2025] NVRM: GPU at PCI:0000:9b:00: GPU-509665ad-b600-ac93-3616-d754b23d636d
[Sun Feb 23 16:24:18 2025] NVRM: Xid (PCI:0000:9b:00): 79, pid=2024380, name=python, GPU has fallen off the bus.
[Sun Feb 23 16:24:19 2025] nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 12028, Non-fatal, Link 35 egress non-posted PRIV error
[Sun Feb 23 16:25:00 2025] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task=python,pid=4242,uid=0
[Sun Feb 23 16:25:00 2025] Out of memory: Killed process 4242 (python) total-vm:1000kB
[Sun Feb 23 16:26:00 2025] mce: [Hardware Error]: CPU 7: Machine Check Exception: 5 Bank 4: be00000000800400
[Sun Feb 23 16:27:00 2025] EDAC MC1: 2 CE memory read error on CPU_SrcID#1_Ha#0_Chan#2_DIMM#0
[Sun Feb 23 16:28:00 2025] NVRM: Xid (PCI:0000:9b:00): seventy-nine
[Sun Feb 23 16:29:00 2025] usb 1-1: new high-speed USB device number 2 using xhci_hcd
[Sun Feb 23 16:30:00 2025] EDAC MC1: 1 UE memory read error on CPU_SrcID#1_Ha#0_Chan#2_DIMM#0
";

#[test]
fn kernel_log_fixture() {
    let d = Dir::new();
    d.write("node7-dmesg.log", DMESG);
    let out = d.run(
        &["ingest", "node7-dmesg.log", "--data", "data", "--json"],
        "",
    );
    let s = summary(&out);
    assert_eq!(
        (&s["ingested"], &s["rejected"], &s["skipped"]),
        // The corrected EDAC error (line 7) is skipped: nothing failed; the uncorrected one
        // (line 10) is a failure.
        (&Value::from(5), &Value::from(1), &Value::from(4))
    );
    assert_eq!(
        stderr(&out).trim(),
        "node7-dmesg.log:8: NVIDIA Xid line without a PCI address and a numeric code"
    );
    let rows = failures(&d.path("data"));
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.record.task_id.as_str(),
                r.record.worker_id.as_str(),
                r.record.hardware.class.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("pid-2024380", "node7-dmesg", "GPU"),
            ("nvswitch-0000:05:00.0", "node7-dmesg", "GPU"),
            ("pid-4242", "node7-dmesg", "CPU"),
            ("cpu-7", "node7-dmesg", "CPU"),
            ("mc-1", "node7-dmesg", "CPU"),
        ]
    );
    assert_eq!(rows[0].record.timestamp.to_string(), "2025-02-23T16:24:18Z");
    // --worker overrides the file stem; kmsg times are offsets from --boot-time.
    d.write(
        "kmsg.txt",
        "3,100,5000000,-;NVRM: Xid (PCI:0000:3b:00): 48, pid='<unknown>', name=<unknown>, DBE\n",
    );
    let s = summary(&d.run(
        &[
            "ingest",
            "kmsg.txt",
            "--data",
            "data2",
            "--json",
            "--worker",
            "gpu-node-1",
            "--boot-time",
            "2025-03-01T00:00:00Z",
        ],
        "",
    ));
    assert_eq!(s["ingested"], 1);
    let r = &failures(&d.path("data2"))[0].record;
    assert_eq!(
        (r.task_id.as_str(), r.worker_id.as_str()),
        ("gpu-0000:3b:00", "gpu-node-1")
    );
    assert_eq!(r.timestamp.to_string(), "2025-03-01T00:00:05Z");
}

#[test]
fn parquet_parts_of_another_history_are_ingested() {
    let d = Dir::new();
    let text: String = (0..50)
        .map(|i| record(&format!("t{i}"), "CUDA error: an illegal memory access") + "\n")
        .collect();
    d.write("in.jsonl", &text);
    let s = summary(&d.run(&["ingest", "in.jsonl", "--data", "a", "--json"], ""));
    assert_eq!(s["ingested"], 50);
    let failures_dir = d.path("a/history/failures");
    let out = d.run(
        &[
            "ingest",
            failures_dir.to_str().unwrap(),
            "--data",
            "b",
            "--json",
        ],
        "",
    );
    let s = summary(&out);
    assert_eq!(s["ingested"], 50);
    assert_eq!(s["files"][0]["format"], "parquet");
    let a: Vec<_> = failures(&d.path("a"))
        .into_iter()
        .map(|r| r.record)
        .collect();
    let b: Vec<_> = failures(&d.path("b"))
        .into_iter()
        .map(|r| r.record)
        .collect();
    assert_eq!(a, b, "records survive a round trip through Parquet");
}

#[test]
fn compact_twice_is_idempotent() {
    let d = Dir::new();
    for (i, day) in ["13", "13", "14"].iter().enumerate() {
        let text = record(&format!("t{i}"), "x").replace("2025-03-13", &format!("2025-03-{day}"));
        d.write(&format!("in{i}.jsonl"), &text);
        let out = d.run(&["ingest", &format!("in{i}.jsonl"), "--data", "data"], "");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let data = d.path("data");
    assert_eq!(parts(&data).len(), 3);
    let before = failures(&data);
    let out = d.run(&["compact", "--data", "data"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "compacted 1 partition, removed 2 parts"
    );
    assert_eq!(parts(&data).len(), 2);
    let out = d.run(&["compact", "--data", "data", "--json"], "");
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["partitions_compacted"], 0);
    assert_eq!(v["parts_removed"], 0);
    assert_eq!(parts(&data).len(), 2);
    assert_eq!(failures(&data), before);
    let out = d.run(&["compact", "--data", "nowhere"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nowhere: no faultline history here"));
    assert!(!d.path("nowhere").exists());
    // Repairs at open are reported, the first 10 and then how many more (audit: a rerun
    // after an interrupted compaction printed 1,270 lines).
    for i in 0..15 {
        // Both names: before, temporaries were `NAME.parquet.tmp`; now `_NAME.parquet.tmp`
        // (Parquet readers skip names that start with `_`).
        let name = if i % 2 == 0 { "x" } else { "_x" };
        std::fs::write(
            data.join(format!("history/failures/{name}{i}.parquet.tmp")),
            b"",
        )
        .unwrap();
    }
    let out = d.run(&["compact", "--data", "data"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    assert_eq!(e.matches("unfinished write removed").count(), 10, "{e}");
    assert!(e.contains("... and 5 more like these"), "{e}");
    assert_eq!(failures(&data), before);
}

/// Regression (CLI audit): a part damaged inside its data (its footer intact, so opening the
/// store lets it through) failed every `train` without naming a way past it, and `compact`
/// failed on it too. `train` now names the part and `compact`; `compact` sets it aside and
/// merges the rest.
#[test]
fn compact_sets_aside_a_part_damaged_inside_its_data() {
    let d = Dir::new();
    for i in 0..3 {
        d.write(
            &format!("in{i}.jsonl"),
            &record(&format!("t{i}"), "CUDA out of memory"),
        );
        let out = d.run(&["ingest", &format!("in{i}.jsonl"), "--data", "data"], "");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let data = d.path("data");
    let mut all = parts(&data);
    all.sort();
    assert_eq!(all.len(), 3);
    let victim = all[1].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    for b in &mut bytes[4..40] {
        *b = 0xff;
    }
    std::fs::write(&victim, &bytes).unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let out = d.run(&["train", "--data", "data", "--out", "m"], "");
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains(&name) && e.contains("faultline compact --data"),
        "{e}"
    );
    let out = d.run(&["compact", "--data", "data"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("unreadable part") && e.contains(&name), "{e}");
    assert!(
        stdout(&out).contains("set aside 1 unreadable part"),
        "{}",
        stdout(&out)
    );
    assert!(victim
        .with_file_name(format!(
            "_{}.corrupt",
            victim.file_name().unwrap().to_string_lossy()
        ))
        .exists());
    let kept: Vec<String> = failures(&data)
        .into_iter()
        .map(|f| f.record.task_id.as_str().to_string())
        .collect();
    assert_eq!(kept, vec!["t0".to_string(), "t2".to_string()]);
    let out = d.run(&["train", "--data", "data", "--out", "m"], "");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn bench_stream_ingests_completely() {
    let stream = repo().join("../shared/data/bench/stream_10k.jsonl");
    if !stream.is_file() {
        eprintln!("skipping: {} is absent", stream.display());
        return;
    }
    let d = Dir::new();
    let out = d.run(
        &[
            "ingest",
            stream.to_str().unwrap(),
            "--data",
            "data",
            "--json",
            "--batch",
            "3000",
        ],
        "",
    );
    let s = summary(&out);
    assert_eq!(
        (&s["read"], &s["ingested"]),
        (&Value::from(10_000), &Value::from(10_000))
    );
    assert_eq!(s["rejected"], 0);
    assert_eq!(s["batches"], 4);
    let df = scan(&d.path("data"), Table::Failures)
        .expect("scan")
        .collect()
        .expect("collect");
    assert_eq!(df.height(), 10_000);
}

/// Regression: a `simulate --out` directory was read file by file as failure records, so its
/// actions, outcomes, summary and ground truth were thousands of rejections. It is imported
/// as the log it is: each failure, its action and its outcome, as `simulate --format parquet`
/// writes it.
#[test]
fn a_simulator_directory_is_imported_as_its_log() {
    let d = Dir::new();
    let scenario = repo().join("data/scenarios/browser-fleet.toml");
    for (out, format) in [("sim", "jsonl"), ("simpq", "parquet")] {
        let o = d.run(
            &[
                "simulate",
                "--scenario",
                scenario.to_str().unwrap(),
                "--failures",
                "60",
                "--out",
                out,
                "--format",
                format,
            ],
            "",
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let count = |f: &str| {
        std::fs::read_to_string(d.path(&format!("sim/{f}")))
            .unwrap()
            .lines()
            .count() as u64
    };
    let o = d.run(&["ingest", "sim", "--data", "hist", "--json"], "");
    let s = summary(&o);
    let n = count("failures.jsonl");
    assert_eq!(s["read"], n);
    assert_eq!(s["ingested"], n);
    assert_eq!(s["rejected"], 0, "{}", stderr(&o));
    assert_eq!(s["actions"], count("actions.jsonl"));
    assert_eq!(s["outcomes"], count("outcomes.jsonl"));
    // The same rows, in the same order, as the simulator's own Parquet output.
    let rows = |dir: &str| -> Vec<String> {
        entries(&d.path(dir))
            .into_iter()
            .map(|e| match e {
                Entry::Failure(f) => {
                    format!("F {} {} {}", f.record.task_id, f.kind, f.classifier_rule)
                }
                Entry::Action(a) => format!("A {} {}", a.action.task_id, a.action.strategy),
                Entry::Outcome(o) => format!(
                    "O {} {:?} {:?} {}",
                    o.outcome.task_id, o.hardware_class, o.kind, o.outcome.success
                ),
                other => format!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(rows("hist"), rows("simpq"));
    assert_eq!(s["rejected_other"], 0);
    // Regression: an outcome line that does not read was counted with the failure records
    // (`rejected` above `read` − `ingested`). It is an action or outcome line rejected on its
    // own: every failure is still ingested, and --strict refuses it like any rejection.
    let outcomes = std::fs::read_to_string(d.path("sim/outcomes.jsonl")).unwrap();
    let (first, rest) = outcomes.split_once('\n').unwrap();
    d.write(
        "sim/outcomes.jsonl",
        &format!("{}\n{rest}", first.replace("\"success\"", "\"succes\"")),
    );
    let o = d.run(&["ingest", "sim", "--data", "hist2", "--json"], "");
    let s = summary(&o);
    assert_eq!(
        (&s["read"], &s["ingested"]),
        (&Value::from(n), &Value::from(n))
    );
    // The outcome line only: the action left without it is kept, not rejected (audit).
    assert_eq!(
        (&s["rejected"], &s["rejected_other"]),
        (&Value::from(0), &Value::from(1))
    );
    assert_eq!(s["actions_without_outcome"], 1, "{s}");
    assert!(stderr(&o).contains("outcomes.jsonl:1:"), "{}", stderr(&o));
    // --strict refuses it before writing anything (the directory is checked first).
    let o = d.run(&["ingest", "sim", "--data", "hist3", "--strict"], "");
    refused(&o, "outcomes.jsonl:1: unknown field `succes`");
    assert!(!stderr(&o).contains("more rejected line"), "{}", stderr(&o));
    assert!(!d.path("hist3").exists(), "nothing written");
}

/// Simulates test-farm under the rules (seed 1) into `sim/`: `failures` failures.
fn test_farm_rules(d: &Dir, failures: u32) {
    let scenario = repo().join("data/scenarios/test-farm.toml");
    let failures = failures.to_string();
    let o = d.run(
        &[
            "simulate",
            "--scenario",
            scenario.to_str().unwrap(),
            "--policy",
            "rules",
            "--seed",
            "1",
            "--failures",
            &failures,
            "--out",
            "sim",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Regression (audit): a simulator directory's failures.jsonl ingested alone took in the
/// failures without a word about the actions and outcomes beside it (and the directory,
/// ingested later, was skipped as taken in). It is said, with the directory to give.
#[test]
fn a_simulator_failures_file_named_alone_is_noted() {
    let d = Dir::new();
    test_farm_rules(&d, 30);
    let o = d.run(&["ingest", "sim/failures.jsonl", "--data", "h"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("sim/failures.jsonl is a simulator directory's failures, read alone"),
        "{}",
        stderr(&o)
    );
}

/// Regression: --strict did not check simulator directories before writing: a bad line in
/// one was found while importing it, after the other inputs (and the directory's earlier
/// lines) were committed, and the run exited 2 having written part of it. Each directory is
/// read whole first, as the import reads it, and a rejected line stops the run before any
/// write, named by its file and line.
#[test]
fn a_strict_run_checks_simulator_directories_before_writing() {
    let d = Dir::new();
    test_farm_rules(&d, 50);
    let lines: Vec<String> = (0..3)
        .map(|i| record(&format!("j{i}"), "CUDA out of memory"))
        .collect();
    d.write("in.jsonl", &(lines.join("\n") + "\n"));
    // A clean directory ingests under --strict with the counts of a run without it.
    let counts = |data: &str, strict: bool| {
        let mut args = vec!["ingest", "in.jsonl", "sim", "--data", data, "--json"];
        if strict {
            args.push("--strict");
        }
        let s = summary(&d.run(&args, ""));
        let keys = ["read", "ingested", "rejected", "actions", "outcomes"];
        let mut v: Vec<Value> = keys.iter().map(|k| s[*k].clone()).collect();
        v.push(s["rejected_other"].clone());
        (v, entries(&d.path(data)).len())
    };
    let loose = counts("loose", false);
    assert_eq!(counts("clean", true), loose);
    let (v, rows) = &loose;
    assert_eq!((&v[2], &v[5]), (&Value::from(0), &Value::from(0)), "{v:?}");
    assert!(v[1].as_u64().unwrap() > 3 && *rows > 3, "{v:?}");
    // One outcome line that does not read: refused before anything is written.
    let path = d.path("sim/outcomes.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut outcomes: Vec<String> = text.lines().map(str::to_string).collect();
    let before = outcomes[2].clone();
    outcomes[2] = before
        .replace("\"success\":true", "\"success\":\"maybe\"")
        .replace("\"success\":false", "\"success\":\"maybe\"");
    assert_ne!(outcomes[2], before, "{before}");
    std::fs::write(&path, outcomes.join("\n") + "\n").unwrap();
    let o = d.run(
        &["ingest", "in.jsonl", "sim", "--data", "h", "--strict"],
        "",
    );
    refused(
        &o,
        "faultline: error: sim/outcomes.jsonl:3: field success: invalid type",
    );
    assert!(stderr(&o).contains("strict"), "{}", stderr(&o));
    // Not even the valid JSONL input before it, nor the directory's own earlier lines.
    assert!(!d.path("h").exists(), "nothing written under the data dir");
    assert!(entries(&d.path("h")).is_empty(), "no failures afterwards");
    // Without --strict the same inputs ingest, the bad line counted on its own.
    let s = summary(&d.run(&["ingest", "in.jsonl", "sim", "--data", "h4", "--json"], ""));
    assert_eq!(s["ingested"], loose.0[1]);
    assert!(s["rejected_other"].as_u64().unwrap() >= 1, "{s}");
}

/// Regression: running the same `ingest` twice doubled the history without a word.
#[test]
fn the_same_input_twice_is_skipped_unless_asked_again() {
    let d = Dir::new();
    let text: String = (0..5)
        .map(|i| record(&format!("t{i}"), "CUDA out of memory") + "\n")
        .collect();
    d.write("a.jsonl", &text);
    let first = summary(&d.run(&["ingest", "a.jsonl", "--data", "h", "--json"], ""));
    assert_eq!(first["ingested"], 5);
    let o = d.run(&["ingest", "a.jsonl", "--data", "h", "--json"], "");
    let second = summary(&o);
    assert_eq!(second["ingested"], 0);
    assert!(stderr(&o).contains("a.jsonl skipped"), "{}", stderr(&o));
    // The JSON summary says so too (an audit: it listed only what was read).
    let left = &second["left_out"];
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{second}");
    assert_eq!(left[0]["reason"], "taken_in");
    assert!(left[0]["path"].as_str().unwrap().ends_with("a.jsonl"));
    assert!(left[0]["at"].is_string(), "{second}");
    assert_eq!(first["left_out"], serde_json::json!([]));
    assert_eq!(failures(&d.path("h")).len(), 5);
    let third = summary(&d.run(
        &["ingest", "a.jsonl", "--data", "h", "--json", "--again"],
        "",
    ));
    assert_eq!(third["ingested"], 5);
    assert_eq!(failures(&d.path("h")).len(), 10);
    // Regression (audit): a file that grew was ingested whole again, its first part twice.
    // What was appended is read, from its own line on.
    let grown = text.clone() + &record("t9", "NCCL timeout") + "\n" + "{\"bad\":1}\n";
    d.write("a.jsonl", &grown);
    let o = d.run(&["ingest", "a.jsonl", "--data", "h", "--json"], "");
    let fourth = summary(&o);
    assert_eq!(fourth["ingested"], 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a.jsonl grew since") && stderr(&o).contains("read from line 6 on"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("a.jsonl:7: unknown field"),
        "{}",
        stderr(&o)
    );
    assert_eq!(failures(&d.path("h")).len(), 11);
    // A file that changed otherwise (rewritten, its bad lines fixed) is read whole.
    d.write(
        "a.jsonl",
        &grown.replace("{\"bad\":1}\n", "").replace("t0", "t0b"),
    );
    let o = d.run(&["ingest", "a.jsonl", "--data", "h", "--json"], "");
    assert_eq!(summary(&o)["ingested"], 6);
    assert!(
        stderr(&o).contains("a.jsonl changed since"),
        "{}",
        stderr(&o)
    );
    let log = std::fs::read_to_string(d.path("h/ingested.jsonl")).unwrap();
    // Each run marks its input begun, then taken in: the ends are the entries that count.
    let ends = |log: &str| log.lines().filter(|l| !l.contains("\"started\"")).count();
    assert_eq!(ends(&log), 4, "{log}");
    assert_eq!(log.lines().count(), 8, "{log}");
    // The log is written once the history is, before anything is printed: a reader that
    // stops early does not make the input look new.
    d.write("b.jsonl", &(record("t20", "CUDA out of memory") + "\n"));
    let o = d.run_closed(&["ingest", "b.jsonl", "--data", "h", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = summary(&d.run(&["ingest", "b.jsonl", "--data", "h", "--json"], ""));
    assert_eq!(again["ingested"], 0);
    // A line cut short does not block later ingests.
    let mut log = std::fs::read_to_string(d.path("h/ingested.jsonl")).unwrap();
    log.push_str("{\"path\":\"/x\",\"si");
    std::fs::write(d.path("h/ingested.jsonl"), log).unwrap();
    d.write("c.jsonl", &(record("t21", "CUDA out of memory") + "\n"));
    let o = d.run(&["ingest", "c.jsonl", "--data", "h", "--json"], "");
    assert_eq!(summary(&o)["ingested"], 1);
    assert!(stderr(&o).contains("ingested.jsonl:11:"), "{}", stderr(&o));
    let again = summary(&d.run(&["ingest", "c.jsonl", "--data", "h", "--json"], ""));
    assert_eq!(
        again["ingested"], 0,
        "c.jsonl's entry is on a line of its own"
    );
}

/// Regression: an input given twice in one run (`in/a.jsonl in/a.jsonl ./in/../in/a.jsonl`,
/// or inside a directory given too) was ingested once per mention.
#[test]
fn an_input_given_twice_in_one_run_is_read_once() {
    let d = Dir::new();
    std::fs::create_dir(d.path("in")).unwrap();
    let text: String = (0..5)
        .map(|i| record(&format!("t{i}"), "CUDA out of memory") + "\n")
        .collect();
    d.write("in/a.jsonl", &text);
    let o = d.run(
        &[
            "ingest",
            "in/a.jsonl",
            "in/a.jsonl",
            "./in/../in/a.jsonl",
            "in",
            "--data",
            "h",
            "--json",
        ],
        "",
    );
    let s = summary(&o);
    assert_eq!(
        (&s["read"], &s["ingested"]),
        (&Value::from(5), &Value::from(5))
    );
    assert_eq!(s["files"].as_array().unwrap().len(), 1);
    let err = stderr(&o);
    assert!(
        err.contains("faultline: note: skipping in/a.jsonl: given twice\n"),
        "{err}"
    );
    assert!(
        err.contains("skipping ./in/../in/a.jsonl: given twice (first as in/a.jsonl)"),
        "{err}"
    );
    // The second mention, the third, and the file again inside `in`.
    assert_eq!(err.matches("given twice").count(), 3, "{err}");
    assert_eq!(failures(&d.path("h")).len(), 5);
    let log = std::fs::read_to_string(d.path("h/ingested.jsonl")).unwrap();
    // Marked begun, then taken in: once each.
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(!log.lines().nth(1).unwrap().contains("started"), "{log}");
}

/// Regression: with --strict --batch 2 and a bad line 7, six records were committed (exit 2,
/// nothing in ingested.jsonl), and running again after fixing the line gave 16 failures for
/// 10 tasks. A strict run reads its inputs whole before writing anything.
#[test]
fn a_failed_strict_run_writes_nothing_and_the_rerun_ingests_once() {
    let d = Dir::new();
    let mut lines: Vec<String> = (0..10)
        .map(|i| record(&format!("s{i}"), "CUDA out of memory"))
        .collect();
    let good = lines[6].clone();
    lines[6] = "{oops".into();
    d.write("s.jsonl", &(lines.join("\n") + "\n"));
    let args = [
        "ingest",
        "s.jsonl",
        "--data",
        "h",
        "--strict",
        "--batch",
        "2",
        "--threads",
        "2",
    ];
    let o = d.run(&args, "");
    refused(&o, "s.jsonl:7: invalid JSON");
    assert!(stderr(&o).contains("strict"), "{}", stderr(&o));
    assert!(failures(&d.path("h")).is_empty(), "nothing from the file");
    assert!(!d.path("h/ingested.jsonl").exists());
    lines[6] = good;
    d.write("s.jsonl", &(lines.join("\n") + "\n"));
    let o = d.run(&args, "");
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = failures(&d.path("h"));
    assert_eq!(rows.len(), 10);
    let tasks: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.record.task_id.as_str()).collect();
    assert_eq!(tasks.len(), 10);
    // The same from standard input (read twice, from a copy).
    let mut bad = lines.clone();
    bad[8] = "[".into();
    let o = d.run(
        &["ingest", "-", "--data", "h2", "--strict", "--batch", "2"],
        &(bad.join("\n") + "\n"),
    );
    refused(&o, "<stdin>:9: invalid JSON");
    assert!(failures(&d.path("h2")).is_empty());
    let s = summary(&d.run(
        &[
            "ingest", "-", "--data", "h2", "--strict", "--batch", "2", "--json",
        ],
        &(lines.join("\n") + "\n"),
    ));
    assert_eq!(s["ingested"], 10);
    assert_eq!(failures(&d.path("h2")).len(), 10);
}

/// A flat Parquet table of `n` rows (tasks p1..pn, `ts` in epoch milliseconds) with
/// `compression`.
fn write_flat_parquet(path: &Path, n: usize, compression: parquet::basic::Compression) {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let tasks: Vec<String> = (1..=n).map(|i| format!("p{i}")).collect();
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("task_id", Arc::new(StringArray::from(tasks))),
        ("worker_id", Arc::new(StringArray::from(vec!["w1"; n]))),
        (
            "message",
            Arc::new(StringArray::from(vec!["CUDA out of memory"; n])),
        ),
        ("ts", Arc::new(Int64Array::from(vec![1_741_824_000_000; n]))),
    ];
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(compression)
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Regression: a snappy-compressed Parquet file (pyarrow's and Spark's default) gave "read 1
/// record … rejected 1 … disabled feature at compile time: snap", and its other rows were in
/// no count; epoch milliseconds were read as seconds (the year 57166).
#[test]
fn snappy_parquet_is_ingested_and_an_undecodable_one_is_rejected_whole() {
    let d = Dir::new();
    write_flat_parquet(&d.path("s.parquet"), 7, parquet::basic::Compression::SNAPPY);
    let s = summary(&d.run(&["ingest", "s.parquet", "--data", "h", "--json"], ""));
    assert_eq!(
        (&s["read"], &s["ingested"]),
        (&Value::from(7), &Value::from(7))
    );
    let rows = failures(&d.path("h"));
    assert_eq!(rows.len(), 7);
    assert_eq!(
        rows[0].record.timestamp.to_string(),
        "2025-03-13T00:00:00Z",
        "epoch milliseconds"
    );
    // The data pages broken, the footer intact: every row of the footer is rejected.
    let p = d.path("broken.parquet");
    write_flat_parquet(&p, 7, parquet::basic::Compression::SNAPPY);
    let mut bytes = std::fs::read(&p).unwrap();
    let footer = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap());
    let data_end = bytes.len() - 8 - footer as usize;
    bytes[4..data_end].fill(0xFF);
    std::fs::write(&p, bytes).unwrap();
    let o = d.run(&["ingest", "broken.parquet", "--data", "h2"], "");
    assert_eq!(o.status.code(), Some(2));
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(
        out.starts_with("read 7 records from 1 input: ingested 0, rejected 7"),
        "{out}"
    );
    assert!(
        err.contains("broken.parquet:1: cannot decode the file: all 7 rows rejected: "),
        "{err}"
    );
    assert!(
        err.contains("nothing ingested: all 7 records were rejected"),
        "{err}"
    );
}

/// Regression: numeric timestamps were always epoch seconds; milliseconds gave a last_seen
/// in the year 57166.
#[test]
fn epoch_milliseconds_in_jsonl_and_csv_are_read_as_milliseconds() {
    let d = Dir::new();
    d.write(
        "a.jsonl",
        "{\"task_id\":\"t1\",\"worker_id\":\"w1\",\"error\":{\"message\":\"x\"},\"ts\":1741824000500}\n\
         {\"task_id\":\"t2\",\"worker_id\":\"w1\",\"error\":{\"message\":\"x\"},\"ts\":1741824000}\n",
    );
    d.write(
        "b.csv",
        "task_id,worker_id,message,timestamp\nt3,w1,x,1741824000500000\n",
    );
    let s = summary(&d.run(&["ingest", "a.jsonl", "b.csv", "--data", "h", "--json"], ""));
    assert_eq!(s["ingested"], 3);
    let ts: Vec<String> = failures(&d.path("h"))
        .iter()
        .map(|r| r.record.timestamp.to_string())
        .collect();
    assert_eq!(
        ts,
        [
            "2025-03-13T00:00:00.500Z",
            "2025-03-13T00:00:00Z",
            "2025-03-13T00:00:00.500Z"
        ]
    );
}

/// Regression (review): a simulator directory's rejected failure line was printed, then
/// counted again in "... and N more rejected records", as if it had not been shown.
#[test]
fn a_simulator_directory_rejection_printed_is_not_counted_again_as_more() {
    let d = Dir::new();
    test_farm_rules(&d, 30);
    let text = std::fs::read_to_string(d.path("sim/failures.jsonl")).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    d.write(
        "sim/failures.jsonl",
        &format!("{}\n{rest}", first.replace("\"task_id\"", "\"task\"")),
    );
    let o = d.run(&["ingest", "sim", "--data", "hist"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("failures.jsonl:1:"), "{err}");
    assert!(!err.contains("more rejected"), "{err}");
}

/// Regression (audit): a gzip-compressed input got "cannot tell the input format ...; use
/// --format", and with --format every line was garbage. It is named as compressed now.
#[test]
fn a_gzip_input_is_named_as_compressed() {
    let d = Dir::new();
    let gz = d.path("f.jsonl.gz");
    std::fs::write(
        &gz,
        [
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01,
        ],
    )
    .unwrap();
    for args in [
        &["ingest", "f.jsonl.gz", "--data", "d"][..],
        &["ingest", "f.jsonl.gz", "--data", "d", "--format", "jsonl"][..],
    ] {
        let o = d.run(args, "");
        assert!(!o.status.success(), "{args:?}");
        assert!(
            stderr(&o).contains("f.jsonl.gz: gzip-compressed; decompress it first"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

/// Regression (audit): a directory holding a CSV whose header has no column for a required
/// field beside the logs (Loghub's templates files) stopped `ingest` at that file, and
/// `--json` printed nothing, where `analyze` left the file out with a note. It is left out
/// now, named in the summary's `left_out` with the reason, and the next run does not take
/// it for an interrupted ingest.
#[test]
fn a_csv_of_something_else_in_an_input_directory_is_left_out() {
    let d = Dir::new();
    std::fs::create_dir_all(d.path("logs")).unwrap();
    d.write(
        "logs/jobs.csv",
        "job,host,msg,time\nj1,n1,CUDA out of memory,2025-03-13T01:00:00Z\n",
    );
    d.write(
        "logs/templates.csv",
        "EventId,EventTemplate\nE1,CUDA out of <*>\n",
    );
    let args = [
        "ingest",
        "logs",
        "--data",
        "data",
        "--json",
        "--map",
        "task_id=job,message=msg,worker_id=host,timestamp=time",
    ];
    let o = d.run(&args, "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = summary(&o);
    assert_eq!(s["ingested"], 1, "{s}");
    let left = s["left_out"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{s}");
    assert_eq!(left[0]["reason"], "unreadable");
    assert!(left[0]["path"].as_str().unwrap().ends_with("templates.csv"));
    assert!(
        left[0]["detail"]
            .as_str()
            .unwrap()
            .contains("EventTemplate"),
        "{s}"
    );
    assert!(stderr(&o).contains("note: skipped"), "{}", stderr(&o));
    // Again: the log is taken in already, the other file still left out; no refusal.
    let o = d.run(&args, "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(summary(&o)["ingested"], 0);
}

/// Regression (durability audit): an ingest that failed part way (a full disk) said only
/// "cannot write ...", though whole batches of it were in the history, and the rerun was
/// then refused without a number. The error says how many records were committed.
#[test]
fn a_failed_ingest_says_how_many_records_it_committed() {
    let d = Dir::new();
    let day = |task: &str, t: &str| {
        format!(
            "{{\"task_id\":\"{task}\",\"worker_id\":\"w1\",\"error\":{{\"message\":\"CUDA out of memory\"}},\"timestamp\":\"{t}\"}}\n"
        )
    };
    d.write("seed.jsonl", &day("s", "2025-03-12T00:00:00Z"));
    let out = d.run(&["ingest", "seed.jsonl", "--data", "data", "-q"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    // The second day's partition cannot be made: a file stands where its directory goes.
    std::fs::write(
        d.path("data/history/failures/date=2025-03-14"),
        b"in the way",
    )
    .unwrap();
    d.write(
        "two.jsonl",
        &(day("a", "2025-03-13T00:00:00Z") + &day("b", "2025-03-14T00:00:00Z")),
    );
    let out = d.run(
        &[
            "ingest",
            "two.jsonl",
            "--data",
            "data",
            "--batch",
            "1",
            "-q",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 record of this run was committed"),
        "{}",
        stderr(&out)
    );
}

/// Regression (audit): a JSON-lines log whose last line was being written when it was taken
/// in (no line end yet) was read whole again once it grew, and its records stored twice. It
/// goes on from that line: read again when it was cut off mid-write, after it when it was
/// whole.
#[test]
fn a_log_caught_mid_line_goes_on_from_that_line() {
    let d = Dir::new();
    let g1 = record("g1", "CUDA out of memory");
    let g2 = record("g2", "NCCL timeout");
    let g3 = record("g3", "Xid 79: GPU has fallen off the bus");
    let (head, rest) = g2.split_at(30);
    d.write("grow.jsonl", &format!("{g1}\n{head}"));
    let o = d.run(&["ingest", "grow.jsonl", "--data", "h", "--json"], "");
    assert_eq!(summary(&o)["ingested"], 1, "{}", stderr(&o));
    d.write("grow.jsonl", &format!("{g1}\n{g2}\n{g3}\n"));
    let o = d.run(&["ingest", "grow.jsonl", "--data", "h", "--json"], "");
    assert_eq!(summary(&o)["ingested"], 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("read from line 2 on"), "{}", stderr(&o));
    assert!(!rest.is_empty());
    let mut ids: Vec<String> = failures(&d.path("h"))
        .iter()
        .map(|f| f.record.task_id.as_str().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["g1", "g2", "g3"]);
    // A whole last line without its line end was taken in: it is not read again.
    let g4 = record("g4", "CUDA out of memory");
    let g5 = record("g5", "CUDA out of memory");
    d.write("b.jsonl", &g4);
    let o = d.run(&["ingest", "b.jsonl", "--data", "h", "--json"], "");
    assert_eq!(summary(&o)["ingested"], 1, "{}", stderr(&o));
    d.write("b.jsonl", &format!("{g4}\n{g5}\n"));
    let o = d.run(&["ingest", "b.jsonl", "--data", "h", "--json"], "");
    assert_eq!(summary(&o)["ingested"], 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("read from line 2 on"), "{}", stderr(&o));
    assert_eq!(failures(&d.path("h")).len(), 5);
    // Regression (review): a CRLF writer caught between a whole last line and its `\r\n`,
    // and a byte-order mark before a file's one unterminated line, were read whole again.
    d.write("crlf.jsonl", &g4);
    d.run(&["ingest", "crlf.jsonl", "--data", "h", "--json"], "");
    d.write("crlf.jsonl", &format!("{g4}\r\n{g5}\r\n"));
    let o = d.run(&["ingest", "crlf.jsonl", "--data", "h", "--json"], "");
    assert_eq!(summary(&o)["ingested"], 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("read from line 2 on"), "{}", stderr(&o));
    d.write("bom.jsonl", &format!("\u{feff}{g4}"));
    let o = d.run(&["ingest", "bom.jsonl", "--data", "h", "--json"], "");
    assert_eq!(summary(&o)["ingested"], 1, "{}", stderr(&o));
    d.write("bom.jsonl", &format!("\u{feff}{g4}\n{g5}\n"));
    let o = d.run(&["ingest", "bom.jsonl", "--data", "h", "--json"], "");
    assert_eq!(summary(&o)["ingested"], 1, "{}", stderr(&o));
    assert_eq!(failures(&d.path("h")).len(), 9);
    // Appended to the whole line itself (no line end between): changed, read whole.
    d.write("c.jsonl", &g4);
    d.run(&["ingest", "c.jsonl", "--data", "h", "--json"], "");
    d.write("c.jsonl", &format!("{g4}x\n{g5}\n"));
    let o = d.run(&["ingest", "c.jsonl", "--data", "h", "--json"], "");
    assert!(
        stderr(&o).contains("c.jsonl changed since"),
        "{}",
        stderr(&o)
    );
}

/// Regression (audit): a data directory filled by `ingest` (failures, no decisions) gave a
/// server or `recommend --data` no task and no pattern, without a word. They say how many
/// stored failures are not replayed.
#[test]
fn failures_taken_in_without_decisions_are_said_not_replayed() {
    let d = Dir::new();
    let text: String = ["a", "b", "a"]
        .iter()
        .map(|t| record(t, "CUDA out of memory") + "\n")
        .collect();
    d.write("in.jsonl", &text);
    d.run(&["ingest", "in.jsonl", "--data", "h"], "");
    let o = d.run(
        &["recommend", "--data", "h"],
        &(record("c", "CUDA out of memory") + "\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("3 failures in the history had no decision logged after them"),
        "{}",
        stderr(&o)
    );
    // What recommend decided is replayed next time: the warning still counts the three.
    let o = d.run(
        &["recommend", "--data", "h"],
        &(record("d", "CUDA out of memory") + "\n"),
    );
    assert!(stderr(&o).contains("3 failures"), "{}", stderr(&o));
}
