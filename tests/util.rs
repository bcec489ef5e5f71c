//! Helpers: run the `faultline` binary in a temporary directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary working directory for one test.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        Dir {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    /// Runs `faultline ARGS` with `stdin`, in this directory.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_in(self.tmp.path(), args, stdin)
    }

    /// Runs `faultline ARGS` in this directory with its stdout a pipe whose reader is already
    /// gone (as `| head` that stopped reading).
    pub fn run_closed(&self, args: &[&str]) -> Output {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(args)
            .current_dir(self.tmp.path())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run faultline")
    }

    /// Runs faultline with standard output and standard error both on a pipe nobody reads
    /// (`faultline … 2>&1 | head` once `head` has gone); only the exit status is left.
    pub fn run_all_closed(&self, args: &[&str]) -> std::process::ExitStatus {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let err = writer.try_clone().expect("clone the pipe");
        Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(args)
            .current_dir(self.tmp.path())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(err)
            .status()
            .expect("run faultline")
    }
}

pub fn run_in(dir: &Path, args: &[&str], stdin: &str) -> Output {
    run_bytes_in(dir, args, stdin.as_bytes())
}

/// [`run_in`] with raw bytes on stdin (not necessarily UTF-8).
pub fn run_bytes_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn faultline");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that a command failed as a usage or input error (exit 2) whose message names `want`.
pub fn refused(o: &Output, want: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    assert!(stderr(o).contains(want), "{}", stderr(o));
}

/// The repository's root (for committed example data).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/data/real`, or `None` (with a printed reason) when absent.
pub fn real_data() -> Option<PathBuf> {
    let p = repo().join("../shared/data/real");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: {} is absent", p.display());
        None
    }
}

/// Rows per task id of a history, by table: (failures, actions, outcomes). Opening the
/// store repairs what a crash left, as a restart would.
pub type TaskCounts = std::collections::HashMap<String, usize>;

pub fn rows_per_task(data: &Path) -> (TaskCounts, TaskCounts, TaskCounts) {
    use faultline::store::{Entry, HistoryStore, ParquetStore, StoreOptions};
    let store = ParquetStore::open(data, StoreOptions::default()).expect("reopen the store");
    let (mut failures, mut actions, mut outcomes) =
        (TaskCounts::new(), TaskCounts::new(), TaskCounts::new());
    for (_, e) in store.entries().expect("read the history") {
        match e {
            Entry::Failure(f) => *failures.entry(f.record.task_id.to_string()).or_default() += 1,
            Entry::Action(a) => *actions.entry(a.action.task_id.to_string()).or_default() += 1,
            Entry::Outcome(o) => *outcomes.entry(o.outcome.task_id.clone()).or_default() += 1,
            _ => {}
        }
    }
    (failures, actions, outcomes)
}

/// Every Parquet file under `dir`, at any depth, sorted (none when `dir` is absent).
pub fn parquet_parts(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// `faultline simulate --scenario data/scenarios/SCENARIO ARGS...` in `d`; panics unless it
/// succeeds.
pub fn simulate(d: &Dir, scenario: &str, args: &[&str]) -> Output {
    let scenario = repo().join("data/scenarios").join(scenario);
    let mut all = vec!["simulate", "--scenario", scenario.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = d.run(&all, "");
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    o
}
