//! Where a simulation's history goes: the [`Sink`] trait, JSON-lines files
//! ([`JsonlSink`]), memory ([`MemorySink`], for tests) or nowhere ([`NullSink`]); and the
//! documents written: the summary and the ground truth.
//!
//! [`JsonlSink`] writes into one directory:
//!
//! | file | one line per | schema |
//! |---|---|---|
//! | `failures.jsonl` | failure | the failure record (`faultline recommend` reads it), with `seq`, `attempt`, `t_offset_s`, `task_is_new` |
//! | `actions.jsonl` | failure (line n answers failure n) | the recovery action |
//! | `outcomes.jsonl` | action other than ESCALATION | the outcome (`task_id`, `success`, `strategy`, `time_to_recovery_s`, `cost`, `timestamp`) |
//! | `ground_truth.json` | — | [`FleetTruth`] plus `failures` ([`FailureTruth`], one per failure) and `tasks` ([`TaskTruth`]) |
//! | `summary.json` | — | [`Summary`] |
//!
//! Files are written under temporary names of their own process and renamed when all are
//! complete, while a [`SIMULATION_REPLACING`]`-PID` marker of the run marks the directory: a
//! crash among the renames leaves it, and the readers of simulation directories refuse such
//! a directory instead of reading files of two runs as one. A crash before the renames leaves
//! the previous run whole. The temporaries and markers of runs whose process is gone are
//! removed by the next run into the directory (the markers once it has replaced every file).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::truth::{Cost, N};
use super::SimError;
use crate::model::{
    FailureKind, FailureReport, HardwareClass, Outcome, RecoveryAction, RecoveryStrategy,
    Timestamp, SIMULATION_REPLACING,
};

/// Receives a simulation's history, in simulated-time order.
pub trait Sink {
    /// Called once, before anything else.
    fn begin(&mut self, fleet: &FleetTruth) -> Result<(), SimError>;
    /// A failure record.
    fn failure(&mut self, report: &FailureReport) -> Result<(), SimError>;
    /// The action answering the latest failure.
    fn action(&mut self, action: &RecoveryAction) -> Result<(), SimError>;
    /// An outcome.
    fn outcome(&mut self, outcome: &Outcome) -> Result<(), SimError>;
    /// The ground truth of the latest failure.
    fn truth(&mut self, truth: &FailureTruth) -> Result<(), SimError>;
    /// Called once at the end.
    fn end(&mut self, tasks: &[TaskTruth], summary: &Summary) -> Result<(), SimError>;
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEnd {
    /// A recovery succeeded.
    Succeeded,
    /// Escalated to a human.
    Escalated,
}

/// Ground truth of the fleet, written first.
#[derive(Debug, Clone, Serialize)]
pub struct FleetTruth {
    /// Format version of the ground-truth document.
    pub format_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Seed.
    pub seed: u64,
    /// Order of the probability vectors (`p`) below.
    pub strategies: Vec<RecoveryStrategy>,
    /// Every worker.
    pub workers: Vec<WorkerTruth>,
    /// Ids of the bad workers.
    pub bad_workers: Vec<String>,
    /// Every burst.
    pub bursts: Vec<BurstTruth>,
    /// Every cause with its base success probabilities (before any drift).
    pub causes: Vec<CauseTruth>,
    /// Every drift, in the order the simulator applies them (by `at_failure`; the latest in
    /// force for a class, kind and strategy wins): from failure `at_failure` on, the base
    /// success of `strategy` for every cause of `kind` on `class` is `p` instead of the
    /// cause's `p`.
    pub drifts: Vec<DriftTruth>,
}

/// A drift of a strategy's base success probability.
#[derive(Debug, Clone, Serialize)]
pub struct DriftTruth {
    /// Class.
    pub class: HardwareClass,
    /// Kind: every cause of this kind on the class.
    pub kind: FailureKind,
    /// The strategy whose base success changes.
    pub strategy: RecoveryStrategy,
    /// First failure (sequence number, `seq`) with the new probability.
    pub at_failure: u64,
    /// The new base success probability.
    pub p: f64,
}

/// A worker as it really is.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerTruth {
    /// Id.
    pub id: String,
    /// Class.
    pub class: HardwareClass,
    /// Device model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Memory, GiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_gib: Option<f64>,
    /// Browser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// Whether it is bad.
    pub bad: bool,
}

/// A burst.
#[derive(Debug, Clone, Serialize)]
pub struct BurstTruth {
    /// Id.
    pub id: String,
    /// Class.
    pub class: HardwareClass,
    /// Kind.
    pub kind: FailureKind,
    /// Cause id.
    pub cause: String,
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// Failures per hour while active.
    pub rate_per_hour: f64,
    /// Success multiplier of same-class strategies while active.
    pub success_factor: f64,
}

/// A cause.
#[derive(Debug, Clone, Serialize)]
pub struct CauseTruth {
    /// Id.
    pub id: String,
    /// Class.
    pub class: HardwareClass,
    /// Kind.
    pub kind: FailureKind,
    /// Weight in the class's mix.
    pub weight: f64,
    /// Base success probability per strategy (order: `strategies`).
    pub p: [f64; N],
}

/// The ground truth of one failure.
#[derive(Debug, Clone, Serialize)]
pub struct FailureTruth {
    /// Position in `failures.jsonl` (0-based).
    pub seq: u64,
    /// Task.
    pub task_id: String,
    /// Worker.
    pub worker_id: String,
    /// Cause id.
    pub cause: String,
    /// True kind.
    pub kind: FailureKind,
    /// Whether the worker is bad.
    pub bad_worker: bool,
    /// Burst id, when the failure belongs to an active burst.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<String>,
    /// True success probability of every strategy in the task's state (order: `strategies`).
    pub p: [f64; N],
    /// The strategy chosen.
    pub chosen: RecoveryStrategy,
    /// The oracle's strategy.
    pub oracle: RecoveryStrategy,
    /// Whether the chosen recovery succeeded (absent for ESCALATION).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
}

/// How a task went.
#[derive(Debug, Clone, Serialize)]
pub struct TaskTruth {
    /// Task.
    pub task_id: String,
    /// How it ended.
    pub end: TaskEnd,
    /// Its failures.
    pub failures: u32,
}

/// Total cost of the actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TotalCost {
    /// Seconds (recovery time plus backoff delays; escalations: time to a human).
    pub seconds: f64,
    /// Device-seconds.
    pub device_seconds: f64,
}

impl TotalCost {
    pub(crate) fn add(&mut self, c: &Cost, delay: f64) {
        self.seconds += c.seconds + delay;
        self.device_seconds += c.device_seconds;
    }
}

/// The summary of a run (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Seed.
    pub seed: u64,
    /// Tasks that failed at least once.
    pub tasks: u64,
    /// Failure records (≥ the requested number: tasks in flight are finished).
    pub failures: u64,
    /// Tasks recovered.
    pub succeeded: u64,
    /// Tasks escalated.
    pub escalations: u64,
    /// `succeeded / tasks` (0 when there are no tasks, as every rate and mean below: the
    /// text summary then says that no task failed).
    pub success_rate: f64,
    /// Mean failures of a *recovered* task until its successful recovery. Tasks that were
    /// escalated are left out, so a policy that gives up on hard tasks early looks better
    /// here than one that recovers them; compare policies with `attempts_to_recovery`. `None`
    /// (null) when no task was recovered: no mean (an audit: the JSON said 0.0 while the text
    /// said "no recovered task").
    pub mean_attempts_to_recovery: Option<f64>,
    /// Mean over *all* tasks of the attempts (decisions) until recovery, where a task that
    /// was never recovered (escalated, or forced to escalate past `max_attempts`) counts at
    /// the whole budget, `max_attempts + 1` — a restricted mean of the attempt at which the
    /// task recovers. Lower is better; giving up early does not pay, recovering does.
    pub attempts_to_recovery: f64,
    /// `failures / tasks`: decisions per task until it ended, recovered or escalated (each
    /// task counted at its own number of attempts, the escalation included).
    pub decisions_per_task: f64,
    /// Total cost of all actions.
    pub cost: TotalCost,
    /// Mean over decisions of p(oracle's strategy) − p(chosen strategy), true probabilities.
    pub regret_per_decision: f64,
    /// Failures treated as warm-up (the run's `warmup`).
    pub warmup_failures: u64,
    /// `regret_per_decision` over the decisions on failures after the warm-up only; `None`
    /// (null) when no decision came after it (a run no longer than its warm-up).
    pub regret_per_decision_after_warmup: Option<f64>,
    /// Decisions on failures after the warm-up (what the regret above is a mean over).
    pub decisions_after_warmup: u64,
    /// Mean true success probability of the chosen strategies.
    pub mean_true_success: f64,
    /// Share of decisions equal to the oracle's.
    pub oracle_agreement: f64,
    /// Decisions per strategy.
    pub strategies: BTreeMap<RecoveryStrategy, u64>,
    /// Failures on a bad worker.
    pub failures_on_bad_workers: u64,
    /// Failures belonging to a burst.
    pub burst_failures: u64,
    /// Actions the simulator replaced by ESCALATION because the policy went past
    /// `max_attempts` (0 for the built-in policies).
    pub forced_escalations: u64,
    /// Timestamps (failures, outcomes, bursts' ends) that fell after the year 9999 and were
    /// held at its last microsecond, which keeps the order of events but not their spacing
    /// (retries decades apart near the latest `start`); 0 on any ordinary run.
    pub timestamps_held_at_latest: u64,
    /// Simulated time from the start to the last event, hours.
    pub simulated_hours: f64,
}

impl Summary {
    /// The summary as text (what `faultline simulate` prints without `--json`). The regret,
    /// true success and oracle agreement of the whole run come first, then the regret after
    /// the warm-up alone.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let s = self;
        writeln!(
            out,
            "{} under policy {} (seed {}): {} failures of {} tasks over {:.1} simulated hours",
            s.scenario, s.policy, s.seed, s.failures, s.tasks, s.simulated_hours
        )?;
        // A run whose failures ran out before the first (a rate of about one failure a
        // century) has no task: its rates are 0 in the JSON, which says nothing here.
        if s.tasks == 0 {
            return writeln!(
                out,
                "  no task failed, so there is nothing to recover and no rate to report"
            );
        }
        // With nothing recovered there is no mean to show (null in the JSON).
        let per_recovered = match s.mean_attempts_to_recovery {
            Some(m) => format!("{m:.2} failures per recovered task"),
            None => "no recovered task".to_string(),
        };
        writeln!(
            out,
            "  recovered {} ({:.1} %), escalated {}, {per_recovered}",
            s.succeeded,
            100.0 * s.success_rate,
            s.escalations,
        )?;
        writeln!(
            out,
            "  attempts to recovery {:.3} (unrecovered tasks at the budget), {:.3} decisions per task",
            s.attempts_to_recovery, s.decisions_per_task
        )?;
        writeln!(
            out,
            "  whole run: regret per decision {:.4}, true success {:.3}, oracle agreement {:.1} %",
            s.regret_per_decision,
            s.mean_true_success,
            100.0 * s.oracle_agreement
        )?;
        writeln!(
            out,
            "  after the {} warm-up failures: {}",
            s.warmup_failures,
            s.regret_per_decision_after_warmup.map_or_else(
                || "no decision came after them".to_string(),
                |r| format!(
                    "regret per decision {r:.4} over {} decisions",
                    s.decisions_after_warmup
                )
            ),
        )?;
        writeln!(
            out,
            "  cost {:.0} s, {:.0} device-s",
            s.cost.seconds, s.cost.device_seconds
        )?;
        if s.timestamps_held_at_latest > 0 {
            writeln!(
                out,
                "  note: {} timestamps fell after 9999-12-31 and were held at its last \
                 microsecond (their order is kept, their spacing lost)",
                s.timestamps_held_at_latest
            )?;
        }
        let strategies: Vec<String> = s
            .strategies
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(out, "  strategies: {}", strategies.join(", "))
    }
}

/// Discards everything (for timing and summaries).
#[derive(Debug, Default)]
pub struct NullSink;

impl Sink for NullSink {
    fn begin(&mut self, _: &FleetTruth) -> Result<(), SimError> {
        Ok(())
    }
    fn failure(&mut self, _: &FailureReport) -> Result<(), SimError> {
        Ok(())
    }
    fn action(&mut self, _: &RecoveryAction) -> Result<(), SimError> {
        Ok(())
    }
    fn outcome(&mut self, _: &Outcome) -> Result<(), SimError> {
        Ok(())
    }
    fn truth(&mut self, _: &FailureTruth) -> Result<(), SimError> {
        Ok(())
    }
    fn end(&mut self, _: &[TaskTruth], _: &Summary) -> Result<(), SimError> {
        Ok(())
    }
}

/// Keeps everything in memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    /// The fleet's truth.
    pub fleet: Option<FleetTruth>,
    /// Failures.
    pub failures: Vec<FailureReport>,
    /// Actions.
    pub actions: Vec<RecoveryAction>,
    /// Outcomes.
    pub outcomes: Vec<Outcome>,
    /// Per-failure truth.
    pub truths: Vec<FailureTruth>,
    /// Per-task truth.
    pub tasks: Vec<TaskTruth>,
}

impl Sink for MemorySink {
    fn begin(&mut self, fleet: &FleetTruth) -> Result<(), SimError> {
        self.fleet = Some(fleet.clone());
        Ok(())
    }
    fn failure(&mut self, r: &FailureReport) -> Result<(), SimError> {
        self.failures.push(r.clone());
        Ok(())
    }
    fn action(&mut self, a: &RecoveryAction) -> Result<(), SimError> {
        self.actions.push(a.clone());
        Ok(())
    }
    fn outcome(&mut self, o: &Outcome) -> Result<(), SimError> {
        self.outcomes.push(o.clone());
        Ok(())
    }
    fn truth(&mut self, t: &FailureTruth) -> Result<(), SimError> {
        self.truths.push(t.clone());
        Ok(())
    }
    fn end(&mut self, tasks: &[TaskTruth], _: &Summary) -> Result<(), SimError> {
        self.tasks = tasks.to_vec();
        Ok(())
    }
}

/// The files a [`JsonlSink`] writes.
const FILE_NAMES: [&str; 5] = [
    "failures.jsonl",
    "actions.jsonl",
    "outcomes.jsonl",
    "ground_truth.json",
    "summary.json",
];

/// One output file being written under a temporary name.
struct Out {
    path: PathBuf,
    tmp: PathBuf,
    w: BufWriter<File>,
}

impl Out {
    fn create(dir: &Path, name: &str) -> Result<Out, SimError> {
        let path = dir.join(name);
        // Of this process: two runs into one directory do not write into one file.
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let f = File::create(&tmp).map_err(|source| SimError::Write {
            path: tmp.display().to_string(),
            source,
        })?;
        Ok(Out {
            path,
            tmp,
            w: BufWriter::with_capacity(1 << 16, f),
        })
    }

    fn err(&self, source: std::io::Error) -> SimError {
        SimError::Write {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), SimError> {
        self.w.write_all(b).map_err(|e| self.err(e))
    }

    fn line<T: Serialize>(&mut self, v: &T) -> Result<(), SimError> {
        serde_json::to_writer(&mut self.w, v).map_err(|e| self.err(e.into()))?;
        self.bytes(b"\n")
    }

    /// Flushes and syncs the temporary file; [`Out::commit`] then renames it.
    fn finish(mut self) -> Result<Out, SimError> {
        self.w.flush().map_err(|e| self.err(e))?;
        self.w.get_ref().sync_all().map_err(|e| self.err(e))?;
        Ok(self)
    }

    fn commit(self) -> Result<(), SimError> {
        std::fs::rename(&self.tmp, &self.path).map_err(|e| self.err(e))
    }
}

/// Syncs a directory, so that renames in it survive a crash.
fn sync_dir(dir: &Path) -> Result<(), SimError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| SimError::Write {
            path: dir.display().to_string(),
            source,
        })
}

/// Writes the history as JSON lines into a directory (see the module docs).
pub struct JsonlSink {
    dir: PathBuf,
    files: Option<JsonlFiles>,
}

struct JsonlFiles {
    failures: Out,
    actions: Out,
    outcomes: Out,
    truth: Out,
    truths_written: u64,
}

impl JsonlSink {
    /// A sink writing into `dir` (created if missing). The temporary files of earlier runs
    /// into it that were killed (their process gone) are removed: with names of their own
    /// process, no later run overwrites them (review: two interrupted runs left 605 MB).
    pub fn new(dir: &Path) -> Result<Self, SimError> {
        std::fs::create_dir_all(dir).map_err(|source| SimError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        for name in FILE_NAMES {
            remove_dead(dir, &format!(".{name}.tmp"));
        }
        Ok(JsonlSink {
            dir: dir.to_path_buf(),
            files: None,
        })
    }

    /// The open files; an error when `begin` was not called (the simulator always calls it
    /// first).
    fn files(&mut self) -> Result<&mut JsonlFiles, SimError> {
        let dir = &self.dir;
        self.files.as_mut().ok_or_else(|| SimError::Write {
            path: dir.display().to_string(),
            source: std::io::Error::other("the sink was written to before begin()"),
        })
    }
}

impl Sink for JsonlSink {
    fn begin(&mut self, fleet: &FleetTruth) -> Result<(), SimError> {
        let mut truth = Out::create(&self.dir, "ground_truth.json")?;
        let mut head = serde_json::to_string(fleet).map_err(|e| truth.err(e.into()))?;
        // An object always ends in '}': reopen it to stream the per-failure truth.
        head.pop();
        truth.bytes(head.as_bytes())?;
        truth.bytes(b",\"failures\":[\n")?;
        self.files = Some(JsonlFiles {
            failures: Out::create(&self.dir, "failures.jsonl")?,
            actions: Out::create(&self.dir, "actions.jsonl")?,
            outcomes: Out::create(&self.dir, "outcomes.jsonl")?,
            truth,
            truths_written: 0,
        });
        Ok(())
    }

    fn failure(&mut self, r: &FailureReport) -> Result<(), SimError> {
        self.files()?.failures.line(r)
    }

    fn action(&mut self, a: &RecoveryAction) -> Result<(), SimError> {
        self.files()?.actions.line(a)
    }

    fn outcome(&mut self, o: &Outcome) -> Result<(), SimError> {
        self.files()?.outcomes.line(o)
    }

    fn truth(&mut self, t: &FailureTruth) -> Result<(), SimError> {
        let f = self.files()?;
        if f.truths_written > 0 {
            f.truth.bytes(b",\n")?;
        }
        f.truths_written += 1;
        serde_json::to_writer(&mut f.truth.w, t).map_err(|e| f.truth.err(e.into()))
    }

    fn end(&mut self, tasks: &[TaskTruth], summary: &Summary) -> Result<(), SimError> {
        let Some(mut f) = self.files.take() else {
            return Ok(());
        };
        f.truth.bytes(b"\n],\"tasks\":[\n")?;
        for (i, t) in tasks.iter().enumerate() {
            if i > 0 {
                f.truth.bytes(b",\n")?;
            }
            serde_json::to_writer(&mut f.truth.w, t).map_err(|e| f.truth.err(e.into()))?;
        }
        f.truth.bytes(b"\n]}\n")?;
        let mut s = Out::create(&self.dir, "summary.json")?;
        serde_json::to_writer_pretty(&mut s.w, summary).map_err(|e| s.err(e.into()))?;
        s.bytes(b"\n")?;
        let done = [
            f.failures.finish()?,
            f.actions.finish()?,
            f.outcomes.finish()?,
            f.truth.finish()?,
            s.finish()?,
        ];
        // Every file is complete and synced; mark the directory for the renames (an audit
        // found a crash between them leaving files of two runs side by side, unmarked).
        let marker = self
            .dir
            .join(format!("{SIMULATION_REPLACING}-{}", std::process::id()));
        let write_err = |source| SimError::Write {
            path: marker.display().to_string(),
            source,
        };
        File::create(&marker)
            .and_then(|m| m.sync_all())
            .map_err(write_err)?;
        sync_dir(&self.dir)?;
        for out in done {
            out.commit()?;
        }
        sync_dir(&self.dir)?;
        std::fs::remove_file(&marker).map_err(write_err)?;
        // The markers of runs that died among their renames: this run's files replaced
        // theirs whole. A live run's marker stays.
        remove_dead(&self.dir, SIMULATION_REPLACING);
        sync_dir(&self.dir)
    }
}

/// The process id ending a name `PREFIX-PID` or `PREFIX.tmp-PID`, if it has one.
fn pid_of(name: &str) -> Option<u32> {
    name.rsplit_once('-')?.1.parse().ok()
}

/// Whether process `pid` is gone (this machine's /proc says so; where there is no /proc,
/// nothing is taken for gone).
fn gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the files in `dir` whose name starts with `prefix` and ends in the id of a process
/// that is gone, or in none (the fixed names of earlier versions): the temporaries and markers
/// of runs that were killed. Best effort.
fn remove_dead(dir: &Path, prefix: &str) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && pid_of(&name).is_none_or(gone) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_before_begin_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = JsonlSink::new(dir.path()).unwrap();
        let o = Outcome {
            task_id: "t".into(),
            success: true,
            strategy: None,
            time_to_recovery_s: None,
            cost: None,
            timestamp: None,
            attempt: None,
        };
        let e = sink.outcome(&o).unwrap_err().to_string();
        assert!(e.starts_with("cannot write"), "{e}");
    }

    #[test]
    fn write_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let e = JsonlSink::new(&file.join("out")).err().unwrap().to_string();
        assert!(
            e.starts_with("cannot write") && e.contains("plain-file/out"),
            "{e}"
        );
    }

    #[test]
    fn the_ground_truth_document_is_one_json_object() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = JsonlSink::new(dir.path()).unwrap();
        let fleet = FleetTruth {
            format_version: 1,
            scenario: "s".into(),
            policy: "p".into(),
            seed: 1,
            strategies: RecoveryStrategy::ALL.to_vec(),
            workers: vec![],
            bad_workers: vec![],
            bursts: vec![],
            causes: vec![],
            drifts: vec![],
        };
        sink.begin(&fleet).unwrap();
        let t = FailureTruth {
            seq: 0,
            task_id: "t".into(),
            worker_id: "w".into(),
            cause: "gpu.oom_gpu".into(),
            kind: FailureKind::OomGpu,
            bad_worker: false,
            burst: None,
            p: [0.5; N],
            chosen: RecoveryStrategy::DelayedRetry,
            oracle: RecoveryStrategy::DelayedRetry,
            success: Some(true),
        };
        sink.truth(&t).unwrap();
        sink.truth(&t).unwrap();
        let summary = Summary {
            scenario: "s".into(),
            policy: "p".into(),
            seed: 1,
            tasks: 0,
            failures: 0,
            succeeded: 0,
            escalations: 0,
            success_rate: 0.0,
            mean_attempts_to_recovery: None,
            attempts_to_recovery: 0.0,
            decisions_per_task: 0.0,
            cost: TotalCost::default(),
            regret_per_decision: 0.0,
            warmup_failures: 0,
            regret_per_decision_after_warmup: None,
            decisions_after_warmup: 0,
            mean_true_success: 0.0,
            oracle_agreement: 0.0,
            strategies: BTreeMap::new(),
            failures_on_bad_workers: 0,
            burst_failures: 0,
            forced_escalations: 0,
            timestamps_held_at_latest: 0,
            simulated_hours: 0.0,
        };
        let task = TaskTruth {
            task_id: "t".into(),
            end: TaskEnd::Succeeded,
            failures: 2,
        };
        sink.end(&[task], &summary).unwrap();
        let text = std::fs::read_to_string(dir.path().join("ground_truth.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["failures"].as_array().unwrap().len(), 2);
        assert_eq!(v["tasks"][0]["end"], "succeeded");
        assert_eq!(v["scenario"], "s");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "temporaries or the marker left: {left:?}");
        assert!(dir.path().join("summary.json").exists());
    }

    /// Review finding: the text summary printed the whole run's true success and oracle
    /// agreement inside its "after the warm-up" clause, as if they were after it. They are
    /// on the whole-run line; the warm-up line has the regret after the warm-up alone.
    #[test]
    fn the_text_summary_labels_whole_run_figures_as_such() {
        let summary = Summary {
            scenario: "s".into(),
            policy: "learned".into(),
            seed: 1,
            tasks: 10,
            failures: 20,
            succeeded: 9,
            escalations: 1,
            success_rate: 0.9,
            mean_attempts_to_recovery: Some(1.5),
            attempts_to_recovery: 2.45,
            decisions_per_task: 2.0,
            cost: TotalCost::default(),
            regret_per_decision: 0.125,
            warmup_failures: 5,
            regret_per_decision_after_warmup: Some(0.0625),
            decisions_after_warmup: 15,
            mean_true_success: 0.75,
            oracle_agreement: 0.5,
            strategies: BTreeMap::from([(RecoveryStrategy::DelayedRetry, 20)]),
            failures_on_bad_workers: 0,
            burst_failures: 0,
            forced_escalations: 0,
            timestamps_held_at_latest: 0,
            simulated_hours: 1.0,
        };
        let text = |s: &Summary| {
            let mut out = Vec::new();
            s.write_text(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let t = text(&summary);
        let line = |start: &str| {
            t.lines()
                .find(|l| l.trim_start().starts_with(start))
                .unwrap_or_else(|| panic!("no line {start}: {t}"))
                .to_string()
        };
        assert_eq!(
            line("whole run"),
            "  whole run: regret per decision 0.1250, true success 0.750, oracle agreement 50.0 %"
        );
        let warm = line("after the");
        assert_eq!(
            warm,
            "  after the 5 warm-up failures: regret per decision 0.0625 over 15 decisions"
        );
        assert!(!warm.contains("true success") && !warm.contains("oracle"));
        assert!(t.contains("strategies: DELAYED_RETRY 20"), "{t}");
        assert!(
            t.contains("escalated 1, 1.50 failures per recovered task"),
            "{t}"
        );
        // Found by an audit: with nothing recovered the line read "0.00 failures per
        // recovered task".
        let lost = Summary {
            succeeded: 0,
            success_rate: 0.0,
            mean_attempts_to_recovery: None,
            ..summary.clone()
        };
        assert!(serde_json::to_value(&lost).unwrap()["mean_attempts_to_recovery"].is_null());
        assert!(
            text(&lost).contains("escalated 1, no recovered task\n"),
            "{}",
            text(&lost)
        );
        assert!(!t.contains("note:"), "{t}");
        // Found by an audit: a run with no task printed "recovered 0 (0.0 %)" and a regret.
        let empty = text(&Summary {
            tasks: 0,
            failures: 0,
            succeeded: 0,
            escalations: 0,
            success_rate: 0.0,
            ..summary.clone()
        });
        assert!(empty.contains("no task failed"), "{empty}");
        assert!(
            !empty.contains("recovered 0") && !empty.contains("regret"),
            "{empty}"
        );
        let held = Summary {
            timestamps_held_at_latest: 3,
            ..summary.clone()
        };
        assert!(
            text(&held).contains("  note: 3 timestamps fell after 9999-12-31"),
            "{}",
            text(&held)
        );
        let none = Summary {
            regret_per_decision_after_warmup: None,
            decisions_after_warmup: 0,
            ..summary
        };
        assert!(
            text(&none).contains("  after the 5 warm-up failures: no decision came after them\n"),
            "{}",
            text(&none)
        );
    }
}
