//! The first stage of `analyze` from raw inputs: files and directories → the Parquet history
//! under the output directory, through the bulk ingest pipeline (chunked, bounded queues,
//! classification cached per thread), exactly as `faultline ingest` does.
//!
//! A directory written by `faultline simulate` (it holds `failures.jsonl`) is imported as the
//! log it is ([`import_simulation`]): each failure, its action and that action's outcome in
//! turn, so that every outcome is joined to the failure it answered (strategy effectiveness
//! per class and kind, the refined success tables `train` builds, attempts to recovery); its
//! `summary.json` and `ground_truth.json` are not records and are left alone.
//!
//! A faultline data directory (a Parquet history: `ingest --data`, `serve --data`, `simulate
//! --format parquet`, an earlier `analyze --out`; see [`is_data_dir`]) given to `analyze` is
//! read as `analyze --data` reads it ([`import_history`]): its committed failures, actions and
//! outcomes, in the order they were logged; none of its files is read as a log of its own.
//!
//! Every input is found and opened ([`OpenInputs`]) before anything is written, so that a
//! typo fails before an earlier analysis is replaced. The directory being written (`analyze
//! --out`, `ingest --data`) is never read back when it lies in an input directory, and files
//! of unknown type are left out: both are listed in the [`Plan`] for the user to hear about.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::classify::{Classifier, ClassifyInput};
use crate::ingest::{
    self, BadLine, Chunk, ColumnMap, Format, IngestError, KernelOptions, Memo, PipelineOptions,
    Source,
};
use crate::model::{
    FailureKind, FailureRecord, FailureType, HardwareClass, Outcome, RecoveryAction, Timestamp,
};
use crate::store::import::{import_failures, ParquetImport};
use crate::store::{
    committed_rows, flushed_seq, part_info, schema, ActionRow, ColumnBatch, Entry, FailureRow,
    OutcomeRow, ParquetStore, StoreError, Table,
};

use super::summary::{InputSummary, KEPT_REJECTIONS};
use super::{AnalyzeError, Progress};

/// How inputs are read.
#[derive(Debug, Clone)]
pub struct InputOptions {
    /// Read every input as this format (default: by extension).
    pub format: Option<Format>,
    /// CSV column mapping.
    pub map: ColumnMap,
    /// Kernel-log options (worker, boot time, year).
    pub kernel: KernelOptions,
    /// Records per Parquet commit.
    pub batch: usize,
    /// Worker threads (default: one per CPU).
    pub threads: Option<usize>,
    /// The time given to records without one.
    pub now: Timestamp,
}

impl InputOptions {
    /// Defaults: formats by extension, batches of 100,000, `now` for records without time.
    pub fn new(now: Timestamp) -> Self {
        InputOptions {
            format: None,
            map: ColumnMap::default(),
            kernel: KernelOptions::default(),
            batch: 100_000,
            threads: None,
            now,
        }
    }
}

/// Inputs sorted into failure sources and simulator directories.
#[derive(Debug, Default)]
pub struct Plan {
    /// Failure record sources with their formats.
    pub failures: Vec<(PathBuf, Format)>,
    /// Simulator output directories (a directory holding `failures.jsonl`, with its
    /// `actions.jsonl` and `outcomes.jsonl`), imported by [`import_simulation`].
    pub simulations: Vec<PathBuf>,
    /// Data directories ([`is_data_dir`]), imported whole by [`import_history`]; planned by
    /// [`plan_analysis`] only (the other plans walk them like any directory).
    pub histories: Vec<PathBuf>,
    /// Directories met while walking the inputs and not read because they are the output
    /// directory (see [`plan_excluding`]).
    pub excluded: Vec<PathBuf>,
    /// Files in input directories of no known format, left out (sorted per input).
    pub unknown: Vec<PathBuf>,
    /// Failure sources found by walking an input directory (not named by the user): one
    /// whose CSV header cannot be mapped is left out by [`OpenInputs::open`], not fatal.
    pub walked: Vec<PathBuf>,
    /// Inputs left out by [`OpenInputs::open`] as the same file or directory as an earlier
    /// one, each with the path it was first given as.
    pub repeated: Vec<(PathBuf, PathBuf)>,
    /// Files found in input directories and left out by [`OpenInputs::open`] because their
    /// header has no column for a required field (a CSV of something else beside the
    /// logs), with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
    /// A simulator directory's `failures.jsonl` named alone: read as failure records, its
    /// actions and outcomes beside it are not (an audit: ingested so, the directory was
    /// later skipped as taken in, and its actions and outcomes never arrived).
    pub simulation_failures_alone: Vec<PathBuf>,
}

/// Names of unknown files a [`Plan::notes`] line and an [`InputSummary`] list.
const SHOWN_UNKNOWN: usize = 5;

impl Plan {
    /// Whether there is nothing to read.
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty() && self.simulations.is_empty() && self.histories.is_empty()
    }

    /// What the user should hear about inputs left out, one line each: every output
    /// directory skipped, and the files of unknown type (a count and the first few).
    pub fn notes(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .excluded
            .iter()
            .map(|d| format!("skipping {}: it is the output directory", d.display()))
            .collect();
        if let Some(n) = (!self.unknown.is_empty()).then_some(self.unknown.len()) {
            let names: Vec<String> = self
                .unknown
                .iter()
                .take(SHOWN_UNKNOWN)
                .map(|p| p.display().to_string())
                .collect();
            out.push(format!(
                "skipped {n} file{} of unknown type: {}{}",
                if n == 1 { "" } else { "s" },
                names.join(", "),
                if n > SHOWN_UNKNOWN { ", ..." } else { "" }
            ));
        }
        for (p, before) in &self.repeated {
            out.push(if p == before {
                format!("skipping {}: given twice", p.display())
            } else {
                format!(
                    "skipping {}: given twice (first as {})",
                    p.display(),
                    before.display()
                )
            });
        }
        for (p, why) in self.unreadable.iter().take(SHOWN_UNKNOWN) {
            out.push(format!(
                "skipped {}: {why}; name it alone (with --map) to read it",
                p.display()
            ));
        }
        if self.unreadable.len() > SHOWN_UNKNOWN {
            out.push(format!(
                "skipped {} more files whose header could not be mapped",
                self.unreadable.len() - SHOWN_UNKNOWN
            ));
        }
        for p in &self.simulation_failures_alone {
            let dir = p.parent().unwrap_or(Path::new("."));
            out.push(format!(
                "{} is a simulator directory's failures, read alone: the actions and outcomes beside it are not read (give the directory, {}, to read them together)",
                p.display(),
                dir.display()
            ));
        }
        out
    }
}

fn io(path: &Path, source: std::io::Error) -> AnalyzeError {
    AnalyzeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `dir` is a faultline data directory: a Parquet history, `history/` holding its
/// `_manifest.json` or beside a `wal/` (what `ingest --data`, `serve --data`, `simulate
/// --format parquet` and `analyze --out` write, and what `analyze --data` reads).
pub fn is_data_dir(dir: &Path) -> bool {
    let history = dir.join("history");
    history.is_dir() && (history.join("_manifest.json").is_file() || dir.join("wal").is_dir())
}

/// Collects the files under `dir` into `out`, leaving out (into `excluded`) a directory whose
/// canonical path is `skip`, and, with `histories`, a data directory ([`is_data_dir`]), which
/// goes there instead of being walked.
fn walk(
    dir: &Path,
    skip: Option<&Path>,
    out: &mut Vec<PathBuf>,
    excluded: &mut Vec<PathBuf>,
    mut histories: Option<&mut Vec<PathBuf>>,
) -> Result<(), AnalyzeError> {
    let mut seen = std::collections::HashSet::new();
    if let Ok(c) = std::fs::canonicalize(dir) {
        seen.insert(c);
    }
    walk_once(dir, skip, out, excluded, &mut histories, &mut seen)
}

/// [`walk`], entering each directory once (`seen`, canonical paths): a symbolic link back
/// to a directory above (a loop) or beside is not walked again (an audit: `logs/a/up -> ..`
/// read one file 41 times).
fn walk_once(
    dir: &Path,
    skip: Option<&Path>,
    out: &mut Vec<PathBuf>,
    excluded: &mut Vec<PathBuf>,
    histories: &mut Option<&mut Vec<PathBuf>>,
    seen: &mut std::collections::HashSet<PathBuf>,
) -> Result<(), AnalyzeError> {
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let p = e.map_err(|e| io(dir, e))?.path();
        if p.is_dir() {
            let canonical = std::fs::canonicalize(&p).ok();
            if skip.is_some_and(|s| canonical.as_deref() == Some(s)) {
                excluded.push(p);
            } else if canonical.is_some_and(|c| !seen.insert(c)) {
                // Walked already.
            } else if let Some(h) = histories.as_deref_mut().filter(|_| is_data_dir(&p)) {
                h.push(p);
            } else {
                walk_once(&p, skip, out, excluded, histories, seen)?;
            }
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Sorts `inputs` (files, directories walked recursively and sorted, `-` for stdin) into
/// failure sources by format (`format` for all, else by extension; files of no known format
/// in a directory are left out, listed in [`Plan::unknown`]) and simulator directories
/// (whose other files are not read).
pub fn plan(inputs: &[PathBuf], format: Option<Format>) -> Result<Plan, AnalyzeError> {
    plan_excluding(inputs, format, None)
}

/// [`plan`] for a run that writes into the directory `out` (`analyze --out`, `ingest
/// --data`): a directory met while walking the inputs that is `out` (compared canonically)
/// is not read — it holds this run's own history and reports — and is listed in
/// [`Plan::excluded`]. An input that is `out` itself, or lies in the history or WAL under
/// it, is an error. A data directory is walked like any other directory (its Parquet parts
/// are read as Parquet files of failures); [`plan_analysis`] plans it whole.
pub fn plan_excluding(
    inputs: &[PathBuf],
    format: Option<Format>,
    out: Option<&Path>,
) -> Result<Plan, AnalyzeError> {
    plan_inputs(inputs, format, out, false)
}

/// [`plan_excluding`] for `analyze`: a data directory ([`is_data_dir`]) given as an input or
/// met while walking one is planned whole, in [`Plan::histories`], to be read as `analyze
/// --data` reads it ([`import_history`]); none of its files is read on its own (its history
/// parts hold actions and outcomes too, its WAL and lock are not logs, and what lies beside
/// them — a simulator's ground truth and summary, an analysis's report and classified export —
/// describes that history or copies it).
pub fn plan_analysis(
    inputs: &[PathBuf],
    format: Option<Format>,
    out: Option<&Path>,
) -> Result<Plan, AnalyzeError> {
    plan_inputs(inputs, format, out, true)
}

/// [`plan_excluding`], planning data directories whole when `histories` is set
/// ([`plan_analysis`]).
fn plan_inputs(
    inputs: &[PathBuf],
    format: Option<Format>,
    out: Option<&Path>,
    histories: bool,
) -> Result<Plan, AnalyzeError> {
    let skip = out.and_then(|o| std::fs::canonicalize(o).ok());
    let skip = skip.as_deref();
    let mut plan = Plan::default();
    for p in inputs {
        if p.as_os_str() == "-" {
            plan.failures
                .push((p.clone(), format.unwrap_or(Format::Jsonl)));
            continue;
        }
        if let (Some(s), Ok(c)) = (skip, std::fs::canonicalize(p)) {
            let written =
                c == s || c.starts_with(s.join("history")) || c.starts_with(s.join("wal"));
            if written {
                return Err(AnalyzeError::Input(format!(
                    "{}: this input is the output directory or its history, which this run writes; choose another output directory",
                    p.display()
                )));
            }
        }
        if histories && p.is_dir() && is_data_dir(p) {
            plan.histories.push(p.clone());
            continue;
        }
        if p.is_dir() {
            let mut files = Vec::new();
            let mut found = Vec::new();
            walk(
                p,
                skip,
                &mut files,
                &mut plan.excluded,
                histories.then_some(&mut found),
            )?;
            files.sort();
            found.sort();
            let before = plan.failures.len() + plan.simulations.len() + plan.histories.len();
            plan.histories.extend(found);
            // A simulator's output: failures, actions and outcomes side by side (a lone
            // failures.jsonl is a user's file like any other).
            let sim_dirs: Vec<PathBuf> = files.iter().filter_map(|f| simulation_of(f)).collect();
            for f in files {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let in_sim = f.parent().is_some_and(|d| sim_dirs.iter().any(|s| s == d));
                if !in_sim {
                    simulator_part_alone(&f)?;
                }
                if in_sim {
                    if name == "failures.jsonl" {
                        if let Some(d) = f.parent() {
                            plan.simulations.push(d.to_path_buf());
                        }
                    }
                } else if let Some(fmt) = format.or_else(|| Format::detect(&f)) {
                    plan.walked.push(f.clone());
                    plan.failures.push((f, fmt));
                } else {
                    plan.unknown.push(f);
                }
            }
            if plan.failures.len() + plan.simulations.len() + plan.histories.len() == before {
                return Err(AnalyzeError::Input(format!(
                    "{}: no input files of a known format",
                    p.display()
                )));
            }
        } else if !p.exists() {
            return Err(AnalyzeError::Input(format!(
                "{}: no such file or directory",
                p.display()
            )));
        } else {
            simulator_part_alone(p)?;
            if simulation_of(p).is_some() {
                plan.simulation_failures_alone.push(p.clone());
            }
            let fmt = format.or_else(|| Format::detect(p)).ok_or_else(|| {
                if crate::ingest::is_gzip(p) {
                    IngestError::Compressed { path: p.clone() }
                } else {
                    IngestError::UnknownFormat { path: p.clone() }
                }
            })?;
            plan.failures.push((p.clone(), fmt));
        }
    }
    Ok(plan)
}

/// Keeps the first of inputs that are the same file or directory (the same path given twice,
/// another path to it, a file also inside a directory given, a link to it), listing the others
/// in [`Plan::repeated`]: each is read once (an audit: `analyze a.jsonl a.jsonl` counted every
/// failure twice). Standard input is kept as given. [`OpenInputs::open`] runs it; `faultline
/// ingest` runs it on its own plan.
pub fn given_once(plan: &mut Plan) {
    let mut seen: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut repeated = Vec::new();
    let mut first = |p: &Path| {
        if p.as_os_str() == "-" {
            return true;
        }
        let key = std::fs::canonicalize(p).unwrap_or_else(|_| p.into());
        match seen.get(&key) {
            Some(before) => {
                repeated.push((p.to_path_buf(), before.clone()));
                false
            }
            None => {
                seen.insert(key, p.to_path_buf());
                true
            }
        }
    };
    plan.failures.retain(|(p, _)| first(p));
    plan.simulations.retain(|d| first(d));
    plan.histories.retain(|d| first(d));
    plan.repeated = repeated;
}

/// Parquet rows as an ingest pipeline source (used by `analyze` and `faultline ingest`).
pub struct ParquetSource {
    path: Arc<Path>,
    import: ParquetImport,
    done_bytes: u64,
}

impl ParquetSource {
    /// Opens a Parquet file of failure records (see `store::import`).
    pub fn open(path: &Path) -> Result<Self, crate::store::StoreError> {
        Ok(ParquetSource {
            path: Arc::from(path),
            import: import_failures(path)?,
            done_bytes: 0,
        })
    }
}

impl Source for ParquetSource {
    fn path(&self) -> &Path {
        &self.path
    }
    fn len_hint(&self) -> Option<u64> {
        Some(self.import.bytes())
    }
    fn next_chunk(&mut self) -> Result<Option<Chunk>, IngestError> {
        let Some(rows) = self.import.next_batch() else {
            return Ok(None);
        };
        let last = rows.last().map_or(0, |r| r.0);
        let items = rows
            .into_iter()
            .map(|(row, r)| (row, r.map_err(|e| e.reason)))
            .collect();
        let total = self.import.bytes();
        let upto = if self.import.rows() == 0 {
            total
        } else {
            (u128::from(total) * u128::from(last) / u128::from(self.import.rows())) as u64
        };
        let bytes = upto.saturating_sub(self.done_bytes);
        self.done_bytes = upto;
        Ok(Some(Chunk::ready(self.path.clone(), bytes, items, 0)))
    }
}

fn open(path: &Path, format: Format, o: &InputOptions) -> Result<Box<dyn Source>, AnalyzeError> {
    ingest::open_source(path, format, &o.map, &o.kernel, |p| {
        Ok(Box::new(ParquetSource::open(p)?) as Box<dyn Source>)
    })
}

#[derive(Debug, Clone, Copy)]
struct Verdict {
    kind: FailureKind,
    failure_type: FailureType,
    rule: &'static str,
    xid: Option<u32>,
}

impl Verdict {
    /// The failures-table row of `record` classified so (no template or cluster yet).
    fn row(self, record: FailureRecord) -> FailureRow {
        FailureRow {
            record,
            kind: self.kind,
            failure_type: self.failure_type,
            classifier_rule: self.rule.to_string(),
            xid: self.xid,
            template_id: None,
            cluster_id: None,
        }
    }
}

/// The rows a pipeline worker builds from the accepted records of one chunk (see
/// [`classifying_rows`]): failures-table entries laid out in the columns of their Parquet
/// parts, payload included, so nothing per record leaves the worker thread.
#[derive(Debug, Default)]
pub struct ClassifiedRows {
    columns: ColumnBatch,
    rows: u64,
    /// Rows whose time is the run's own (see [`classifying_rows_at`]).
    stamped: u64,
    /// Rows dated where no failure is.
    odd: OddTimes,
    /// The first encoding error and its row.
    error: Option<(u64, StoreError)>,
}

/// How far ahead of this machine's clock a record's time may be before [`OddTimes`] counts
/// it (a day: logs of machines whose clocks are a little ahead are not odd).
pub const AHEAD_OF_CLOCK_S: f64 = 86_400.0;

/// Records dated where no failure can be: before 1973 ([`Timestamp::EARLIEST_LIVE`]: a
/// placeholder such as `0`, or a kernel time counted from boot) or more than
/// [`AHEAD_OF_CLOCK_S`] ahead of this machine's clock (a wrong clock or year). They are kept
/// as dated; `faultline ingest` says how many there are (an audit: it said nothing, and only
/// a later `analyze` did).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OddTimes {
    /// Records dated before 1973.
    pub before: u64,
    /// The earliest of them.
    pub first_before: Option<Timestamp>,
    /// Records dated more than a day ahead.
    pub ahead: u64,
    /// The latest of them.
    pub last_ahead: Option<Timestamp>,
}

impl OddTimes {
    /// Counts `at` when it is odd, against `limit` (the clock plus [`AHEAD_OF_CLOCK_S`]).
    fn note(&mut self, at: Timestamp, limit: Timestamp) {
        if at < Timestamp::EARLIEST_LIVE {
            self.before += 1;
            self.first_before = Some(self.first_before.map_or(at, |t| t.min(at)));
        } else if at > limit {
            self.ahead += 1;
            self.last_ahead = Some(self.last_ahead.map_or(at, |t| t.max(at)));
        }
    }

    /// Both counts together.
    pub fn add(&mut self, other: &OddTimes) {
        self.before += other.before;
        self.ahead += other.ahead;
        self.first_before = match (self.first_before, other.first_before) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ahead = match (self.last_ahead, other.last_ahead) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Whether no record was odd.
    pub fn is_empty(&self) -> bool {
        self.before == 0 && self.ahead == 0
    }
}

/// A pipeline worker (for [`ingest::run_rows`]) that classifies each checked record (with
/// a per-thread cache of verdicts), encodes its failures-table entry and adds it to the
/// chunk's [`ClassifiedRows`]; shared by `analyze` and `faultline ingest`. Collect the rows
/// in a [`ClassifiedBatch`] and write it with [`write_classified`].
pub fn classifying_rows() -> impl FnMut(FailureRecord, &mut ClassifiedRows) {
    rows_worker(None)
}

/// [`classifying_rows`] for a pipeline whose records without a time get `now`
/// ([`PipelineOptions::now`]): the rows stamped so — whose time is `now` to the microsecond —
/// are counted ([`ClassifiedBatch::stamped`]).
pub fn classifying_rows_at(now: Timestamp) -> impl FnMut(FailureRecord, &mut ClassifiedRows) {
    rows_worker(Some(now))
}

fn rows_worker(now: Option<Timestamp>) -> impl FnMut(FailureRecord, &mut ClassifiedRows) {
    let classifier = Classifier::new();
    let mut memo: Memo<Verdict> = Memo::new(1 << 16);
    let mut payload: Vec<u8> = Vec::with_capacity(4096);
    let limit = Timestamp::from_secs_f64(Timestamp::now().as_secs_f64() + AHEAD_OF_CLOCK_S);
    move |record: FailureRecord, rows: &mut ClassifiedRows| {
        let row = rows.rows;
        rows.rows += 1;
        if now == Some(record.timestamp) {
            rows.stamped += 1;
        }
        rows.odd.note(record.timestamp, limit);
        let v = memo.get_or_insert_with(&record, || verdict(&classifier, &record));
        let entry = Entry::Failure(Box::new(v.row(record)));
        payload.clear();
        let pushed = schema::write_payload(&mut payload, &entry)
            .and_then(|p| rows.columns.push_at(row, &entry, p));
        if let Err(e) = pushed {
            rows.error.get_or_insert((row, e));
        }
    }
}

impl ingest::Rows for ClassifiedRows {
    /// Columns that make room for as much as this chunk's hold (and 1/8 more).
    fn next_empty(&self) -> Self {
        ClassifiedRows {
            columns: self.columns.empty_like(),
            ..ClassifiedRows::default()
        }
    }
}

/// The rows of one commit, moved from the workers' [`ClassifiedRows`] in input order. A
/// batch that received a row that failed to encode keeps the error and fails the write.
#[derive(Debug, Default)]
pub struct ClassifiedBatch {
    columns: ColumnBatch,
    error: Option<StoreError>,
    stamped: u64,
    odd: OddTimes,
}

impl ClassifiedBatch {
    /// An empty batch.
    pub fn new() -> Self {
        ClassifiedBatch::default()
    }

    /// Rows of this batch that had no time and were given the run's (counted only by the
    /// workers of [`classifying_rows_at`]).
    pub fn stamped(&self) -> u64 {
        self.stamped
    }

    /// Rows of this batch dated before 1973 or more than a day ahead of this machine's
    /// clock ([`OddTimes`]).
    pub fn odd_times(&self) -> &OddTimes {
        &self.odd
    }
}

impl ingest::Batch<ClassifiedRows> for ClassifiedBatch {
    fn append(&mut self, from: &mut ClassifiedRows, rows: std::ops::Range<usize>) {
        let range = rows.start as u64..rows.end as u64;
        // A chunk's rows go to one batch, or to two at a commit boundary: the stamped count
        // goes with the first part (the total is what is reported).
        self.stamped += std::mem::take(&mut from.stamped);
        self.odd.add(&std::mem::take(&mut from.odd));
        if from.error.as_ref().is_some_and(|(r, _)| range.contains(r)) {
            if let Some((_, e)) = from.error.take() {
                self.error.get_or_insert(e);
            }
        }
        if let Err(e) = self.columns.append_rows(&mut from.columns, range) {
            self.error.get_or_insert(e);
        }
    }

    fn len(&self) -> usize {
        self.columns.len()
    }
}

/// Writes a [`ClassifiedBatch`] with one commit; a batch holding an encoding error writes
/// nothing and returns it.
pub fn write_classified(
    store: &mut ParquetStore,
    batch: ClassifiedBatch,
) -> Result<(), StoreError> {
    match batch.error {
        Some(e) => Err(e),
        None => store.write_columns(batch.columns),
    }
}

fn verdict(classifier: &Classifier, r: &FailureRecord) -> Verdict {
    let c = classifier.classify(&ClassifyInput {
        message: &r.error.message,
        type_hint: r.error.type_hint.as_deref(),
        exit_code: r.error.exit_code,
        stacktrace: r.error.stacktrace.as_deref(),
        hardware: (r.hardware.class != HardwareClass::Unknown).then_some(r.hardware.class),
    });
    Verdict {
        kind: c.kind,
        failure_type: c.failure_type,
        rule: c.rule,
        xid: c.xid,
    }
}

/// Inputs planned ([`plan_analysis`]) and opened: every file was opened (a Parquet file's
/// footer read, a CSV header found; a data directory's manifest and the footers of its
/// parts), so that an input missing or unreadable fails before anything is written or
/// cleared. Ingest them with [`ingest_opened`].
pub struct OpenInputs {
    plan: Plan,
    sources: Vec<Box<dyn Source>>,
}

impl std::fmt::Debug for OpenInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenInputs")
            .field("plan", &self.plan)
            .field("sources", &self.sources.len())
            .finish()
    }
}

impl OpenInputs {
    /// Plans `inputs` for a run writing into `out` ([`plan_analysis`]) and opens every
    /// failure source, every file of each simulator directory and each data directory's
    /// manifest and parts. An empty plan is an error.
    pub fn open(
        inputs: &[PathBuf],
        out: Option<&Path>,
        o: &InputOptions,
    ) -> Result<Self, AnalyzeError> {
        let mut plan = plan_analysis(inputs, o.format, out)?;
        given_once(&mut plan);
        if plan.is_empty() {
            return Err(AnalyzeError::Input("no inputs to read".into()));
        }
        // A file found in a directory whose header cannot be mapped is left out, with the
        // reason (an audit: one unrelated CSV beside the logs stopped the whole run); one the
        // user named is an error.
        let mut sources = Vec::with_capacity(plan.failures.len());
        let mut kept = Vec::with_capacity(plan.failures.len());
        for (p, f) in std::mem::take(&mut plan.failures) {
            match open(&p, f, o) {
                Ok(s) => {
                    sources.push(s);
                    kept.push((p, f));
                }
                Err(AnalyzeError::Ingest(IngestError::Header { reason, .. }))
                    if plan.walked.contains(&p) =>
                {
                    plan.unreadable.push((p, reason));
                }
                Err(e) => return Err(e),
            }
        }
        plan.failures = kept;
        if plan.is_empty() {
            let why: Vec<String> = plan
                .unreadable
                .iter()
                .map(|(p, r)| format!("{}: {r}", p.display()))
                .collect();
            return Err(AnalyzeError::Input(format!(
                "no inputs to read: no file's header could be mapped ({})",
                why.join("; ")
            )));
        }
        for dir in &plan.simulations {
            check_simulation_complete(dir)?;
            for name in ["failures.jsonl", "actions.jsonl", "outcomes.jsonl"] {
                let p = dir.join(name);
                std::fs::File::open(&p).map_err(|e| io(&p, e))?;
            }
        }
        for dir in &plan.histories {
            flushed_seq(dir)?;
            for table in HISTORY_TABLES {
                for part in history_parts(dir, table)? {
                    part_info(&part)?;
                }
            }
        }
        Ok(OpenInputs { plan, sources })
    }

    /// The plan the inputs were opened by (for its [`Plan::notes`]).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

/// Ingests `inputs` into the store at `root` (created if absent), which is not read as an
/// input: [`OpenInputs::open`] with `root` as the output directory, then [`ingest_opened`].
pub fn ingest_inputs(
    inputs: &[PathBuf],
    root: &Path,
    o: &InputOptions,
    progress: &mut dyn Progress,
) -> Result<InputSummary, AnalyzeError> {
    ingest_opened(OpenInputs::open(inputs, Some(root), o)?, root, o, progress)
}

/// Ingests opened inputs into the store at `root` (created if absent): failures through the
/// pipeline, then simulator directories ([`import_simulation`]), then data directories
/// ([`import_history`]). Rejected records are counted
/// and the first ones kept, so are the records without a time (given `o.now`) and the files
/// of unknown type left out; an I/O error stops the run.
pub fn ingest_opened(
    inputs: OpenInputs,
    root: &Path,
    o: &InputOptions,
    progress: &mut dyn Progress,
) -> Result<InputSummary, AnalyzeError> {
    let OpenInputs { plan, sources } = inputs;
    let total: u64 = sources.iter().filter_map(|s| s.len_hint()).sum();
    let mut store = ParquetStore::open(root, Default::default())?;
    let mut opts = PipelineOptions::new(o.now);
    opts.batch_size = o.batch.max(1);
    if let Some(t) = o.threads {
        opts.threads = t.max(1);
    }
    let mut rejections: Vec<String> = Vec::new();
    let mut out = InputSummary {
        read_at: Some(o.now),
        unknown_files: (plan.unknown.len() + plan.unreadable.len()) as u64,
        unknown_file_names: plan
            .unknown
            .iter()
            .chain(plan.unreadable.iter().map(|(p, _)| p))
            .take(KEPT_REJECTIONS)
            .map(|p| p.display().to_string())
            .collect(),
        unreadable: plan
            .unreadable
            .iter()
            .take(KEPT_REJECTIONS)
            .map(|(p, why)| format!("{}: {why}", p.display()))
            .collect(),
        histories: plan
            .histories
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        ..InputSummary::default()
    };
    if !sources.is_empty() || (plan.simulations.is_empty() && plan.histories.is_empty()) {
        progress.stage("ingest", total);
        let mut stamped = 0;
        let now = o.now;
        let summary = {
            let store = &mut store;
            let stamped = &mut stamped;
            ingest::run_rows(
                sources,
                &opts,
                move || classifying_rows_at(now),
                ClassifiedBatch::new,
                |batch: ClassifiedBatch| {
                    *stamped += batch.stamped();
                    write_classified(store, batch)
                },
                |bad: &BadLine| {
                    if rejections.len() < KEPT_REJECTIONS {
                        rejections.push(bad.to_string());
                    }
                },
                |bytes| progress.position(bytes),
            )?
        };
        progress.finish();
        out.read = summary.read;
        out.ingested = summary.ingested;
        out.rejected = summary.rejected;
        out.skipped = summary.skipped;
        out.feedback = summary.feedback;
        out.stamped_at_read = stamped;
    }
    // These inputs hold failure records only.
    out.first_record_rejection = rejections.first().cloned();
    out.rejections = rejections;
    for dir in &plan.simulations {
        out.add(import_simulation(dir, &mut store, o, progress)?);
    }
    for dir in &plan.histories {
        out.add(import_history(dir, &mut store, progress)?);
    }
    store.flush()?;
    Ok(out)
}

/// The tables of a data directory [`import_history`] copies: what `analyze --data` reads.
const HISTORY_TABLES: [Table; 3] = [Table::Failures, Table::Actions, Table::Outcomes];

/// Every `*.parquet` file under the directory of `table` in the data directory `dir`
/// (recursively, sorted); none when the table has no directory.
fn history_parts(dir: &Path, table: Table) -> Result<Vec<PathBuf>, AnalyzeError> {
    fn collect(d: &Path, out: &mut Vec<PathBuf>) -> Result<(), AnalyzeError> {
        let rd = match std::fs::read_dir(d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(d, e)),
        };
        for e in rd {
            let p = e.map_err(|e| io(d, e))?.path();
            if p.is_dir() {
                collect(&p, out)?;
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    collect(&dir.join("history").join(table.dir_name()), &mut out)?;
    out.sort();
    Ok(out)
}

/// Imports the data directory `dir` (a Parquet history, [`is_data_dir`]) into `store` as
/// `analyze --data` reads it: the committed rows of its failures, actions and outcomes
/// (parts up to the manifest's `flushed_seq`, each sequence number once; records still in
/// its write-ahead log are not read), in the order `dir` logged them, so that each outcome
/// still follows the failure and action it answered. Failures keep the classification they
/// were stored with. Nothing under `dir` is created, repaired or locked (a live server may be
/// writing it). The three tables are held in memory while they are copied, as `train` reads
/// a history. `read` and `ingested` count the failures, `actions` and `outcomes` the others.
pub fn import_history(
    dir: &Path,
    store: &mut ParquetStore,
    progress: &mut dyn Progress,
) -> Result<InputSummary, AnalyzeError> {
    if !dir.join("history").is_dir() {
        return Err(AnalyzeError::Input(format!(
            "{}: no history here (expected {}/history)",
            dir.display(),
            dir.join("history").display()
        )));
    }
    let flushed = flushed_seq(dir)?;
    let mut tables = Vec::with_capacity(HISTORY_TABLES.len());
    for table in HISTORY_TABLES {
        tables.push(committed_rows(dir, table, flushed)?.into_iter().peekable());
    }
    let total: usize = tables.iter().map(|t| t.len()).sum();
    progress.stage("history", total as u64);
    let mut n = InputSummary::default();
    let mut batch: Vec<Entry> = Vec::with_capacity(SIM_BATCH.min(total));
    let mut done = 0u64;
    // The three tables merged by sequence number: the order `dir` logged its entries in.
    loop {
        let first = tables
            .iter_mut()
            .enumerate()
            .filter_map(|(i, t)| t.peek().map(|(seq, _)| (*seq, i)))
            .min();
        let Some((_, entry)) = first.and_then(|(_, i)| tables[i].next()) else {
            break;
        };
        match &entry {
            Entry::Failure(_) => {
                n.read += 1;
                n.ingested += 1;
            }
            Entry::Action(_) => n.actions += 1,
            Entry::Outcome(_) => n.outcomes += 1,
            _ => {}
        }
        batch.push(entry);
        done += 1;
        if batch.len() >= SIM_BATCH {
            store.write_batch(std::mem::take(&mut batch))?;
            progress.position(done);
        }
    }
    store.write_batch(batch)?;
    progress.finish();
    Ok(n)
}

/// The simulator directory `f` is the failures of: `f` is a `failures.jsonl` with the
/// simulator's `actions.jsonl` and `outcomes.jsonl` beside it (a lone failures.jsonl is a
/// user's file like any other).
fn simulation_of(f: &Path) -> Option<PathBuf> {
    let dir = f
        .parent()
        .filter(|_| f.file_name().is_some_and(|n| n == "failures.jsonl"))?;
    (dir.join("actions.jsonl").is_file() && dir.join("outcomes.jsonl").is_file())
        .then(|| dir.to_path_buf())
}

/// Refuses a simulator's `actions.jsonl` or `outcomes.jsonl` read as failure records (given
/// alone, or in a directory without all three of the simulator's files): every line of it
/// was rejected as a failure record ("unknown field `strategy`") and the run went on without
/// the actions (audit).
fn simulator_part_alone(f: &Path) -> Result<(), AnalyzeError> {
    let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name != "actions.jsonl" && name != "outcomes.jsonl" {
        return Ok(());
    }
    let dir = f.parent().unwrap_or(Path::new("."));
    let missing: Vec<&str> = ["failures.jsonl", "actions.jsonl", "outcomes.jsonl"]
        .into_iter()
        .filter(|n| !dir.join(n).is_file())
        .collect();
    Err(AnalyzeError::Input(if missing.is_empty() {
        format!(
            "{}: a simulator's {name}, not failure records: give its directory ({}) to read failures, actions and outcomes together",
            f.display(),
            dir.display()
        )
    } else {
        format!(
            "{}: a simulator's {name}, not failure records, and {} lacks {}: a simulator directory holds failures.jsonl, actions.jsonl and outcomes.jsonl (`faultline simulate --out`); move {name} aside to read the failures alone",
            f.display(),
            dir.display(),
            missing.join(" and ")
        )
    }))
}

/// A simulator directory's `outcomes.jsonl`, read only as far as the actions need: a task's
/// n-th outcome answers its n-th action that is not an escalation, and the simulator writes
/// each outcome when its recovery resolves, after its action, so the outcomes read ahead and
/// not yet asked for are those of the tasks in flight — not the whole file (a 1M-failure
/// directory held its ~950,000 outcomes in memory before).
struct OutcomeStream {
    path: PathBuf,
    lines: ByteLines<std::io::BufReader<std::fs::File>>,
    /// Lines read so far.
    read: usize,
    /// Outcomes read and not yet asked for, per task in file order, with their line; `None`
    /// for a line rejected that still names its task (its action gets no outcome, and the
    /// task's later outcomes stay with their own actions).
    pending: HashMap<String, std::collections::VecDeque<(usize, Option<Outcome>)>, FxBuildHasher>,
}

/// One line of `outcomes.jsonl` read by [`OutcomeStream::next`]: its task and its outcome
/// (`None`: the line was rejected but names its task, read loosely).
type OutcomeLine = (String, Option<Outcome>);

impl OutcomeStream {
    /// Reads the next line: `None` at the end, `Some(None)` for a blank line or one rejected
    /// (handed to `reject`) that names no task.
    fn next(
        &mut self,
        reject: &mut dyn FnMut(String),
    ) -> Result<Option<Option<OutcomeLine>>, AnalyzeError> {
        let Some(line) = self.lines.next() else {
            return Ok(None);
        };
        let line = line.map_err(|e| io(&self.path, e))?;
        self.read += 1;
        if blank(&line) {
            return Ok(Some(None));
        }
        // An outcome's numbers are checked as the API checks them (`Outcome::check`: a
        // negative, NaN or infinite time to recovery or cost is refused, naming the field).
        match parse_sim_line::<Outcome>(&line)
            .and_then(|x| x.check().map(|()| x).map_err(|e| e.to_string()))
        {
            Ok(x) => Ok(Some(Some((x.task_id.clone(), Some(x))))),
            Err(e) => {
                reject(format!("{}:{}: {e}", self.path.display(), self.read));
                // Its task, read loosely: the task's action gets no outcome rather than the
                // task's next one (which would pair every later action with the wrong one).
                let task = serde_json::from_slice::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("task_id")?.as_str().map(str::to_string));
                Ok(Some(task.map(|t| (t, None))))
            }
        }
    }

    /// The first outcome of `task` not yet taken (with its line; `None` for a line of the
    /// task that was rejected), reading ahead as far as it takes; `None` when the file has
    /// no more.
    fn take(
        &mut self,
        task: &str,
        reject: &mut dyn FnMut(String),
    ) -> Result<Option<(usize, Option<Outcome>)>, AnalyzeError> {
        if let Some(q) = self.pending.get_mut(task) {
            if let Some(x) = q.pop_front() {
                if q.is_empty() {
                    self.pending.remove(task);
                }
                return Ok(Some(x));
            }
        }
        while let Some(next) = self.next(reject)? {
            let Some((t, x)) = next else { continue };
            if t == task {
                return Ok(Some((self.read, x)));
            }
            self.pending.entry(t).or_default().push_back((self.read, x));
        }
        Ok(None)
    }

    /// Reads the rest of the file into `pending`.
    fn read_to_end(&mut self, reject: &mut dyn FnMut(String)) -> Result<(), AnalyzeError> {
        while let Some(next) = self.next(reject)? {
            if let Some((t, x)) = next {
                self.pending.entry(t).or_default().push_back((self.read, x));
            }
        }
        Ok(())
    }
}

/// The lines of a file as bytes, without their `\n` or `\r\n`: a line that is not UTF-8 is
/// read like any other, and its parser rejects it with its file and line (as the JSONL reader
/// does), instead of the whole file failing as text.
struct ByteLines<R> {
    reader: R,
}

impl<R: std::io::BufRead> Iterator for ByteLines<R> {
    type Item = std::io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                Some(Ok(line))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

/// Whether a line holds nothing but (ASCII) white space.
fn blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Entries per Parquet commit when importing a simulator directory.
const SIM_BATCH: usize = 100_000;

/// Reads one line of a simulator directory's `actions.jsonl` or `outcomes.jsonl` as `T`; why
/// it does not, naming the field at fault where there is one (`field delay_s: invalid type:
/// ...`), as the JSONL reader does for failure records. Only a rejected line is parsed again,
/// with the path tracked.
fn parse_sim_line<T: serde::de::DeserializeOwned>(line: &[u8]) -> Result<T, String> {
    serde_json::from_slice(line).map_err(|first| {
        crate::ingest::jsonl::explain_as::<T>(line)
            .unwrap_or_else(|| crate::ingest::jsonl::reason(&first))
    })
}

/// Imports a directory written by `faultline simulate` (`failures.jsonl`, `actions.jsonl`
/// line for line beside it, `outcomes.jsonl`) into `store` as the log it is: each failure
/// (classified), its action and — unless it escalated — that action's outcome, in this order,
/// so that the history joins every outcome to the failure it answered, as the engine's own
/// log does. A task's n-th outcome answers its n-th action that is not an escalation (the
/// simulator's tasks wait for each outcome before failing again); the outcome row carries that
/// failure's hardware class and the action's kind. Lines that do not read are rejections
/// (`FILE:LINE: reason`, naming the field at fault where there is one; the first ones kept in
/// the summary's `rejections`); a failure rejected takes its action and outcome with it.
/// `read`, `ingested`, `rejected` and `skipped` count failure lines (`read` = `ingested` +
/// `rejected`); action and outcome lines rejected on their own count in `rejected_other`.
/// An action with no outcome left for it (a run cut short, or its outcome line rejected) is
/// not a rejection: it is imported without an outcome and counted in
/// `actions_without_outcome`. [`check_simulation`] reads a directory the same way and writes nothing.
pub fn import_simulation(
    dir: &Path,
    store: &mut ParquetStore,
    o: &InputOptions,
    progress: &mut dyn Progress,
) -> Result<InputSummary, AnalyzeError> {
    read_simulation(dir, Some(store), o, progress)
}

/// A dry run of [`import_simulation`]: reads every failure, action and outcome line of the
/// simulator directory `dir` as the import does, with the same parsing, pairing and
/// rejections, and returns the summary the import would (the same counts and `rejections`)
/// without classifying or writing anything. `ingest --strict` checks simulator directories
/// with it before it writes. An I/O error (a file missing or unreadable) is an error, as in
/// the import.
pub fn check_simulation(dir: &Path, o: &InputOptions) -> Result<InputSummary, AnalyzeError> {
    read_simulation(dir, None, o, &mut super::NoProgress)
}

/// Refuses a simulation directory whose `faultline simulate` run was interrupted while
/// replacing its files (a [`crate::model::SIMULATION_REPLACING`] marker is still there): they
/// may be of two runs.
/// The import checks it; `ingest` checks it before it opens the store, so that a refused
/// run writes nothing.
pub fn check_simulation_complete(dir: &Path) -> Result<(), AnalyzeError> {
    if let Some(marker) = crate::model::simulation_replacing(dir) {
        return Err(AnalyzeError::Input(format!(
            "{}: a `faultline simulate` run into it was interrupted while replacing its files ({} is there), so they may be of two runs; run the simulation again",
            dir.display(),
            marker.display()
        )));
    }
    Ok(())
}

/// [`import_simulation`] into `store`, or, without one, its dry run ([`check_simulation`]):
/// the reading, pairing and rejections are this one code, only the classification and the
/// writes are left out.
fn read_simulation(
    dir: &Path,
    mut store: Option<&mut ParquetStore>,
    o: &InputOptions,
    progress: &mut dyn Progress,
) -> Result<InputSummary, AnalyzeError> {
    check_simulation_complete(dir)?;
    let mut n = InputSummary {
        read_at: Some(o.now),
        ..InputSummary::default()
    };
    // A failure line not ingested (`rejected`), or an action or outcome line on its own
    // (`rejected_other`). An action kept without an outcome is neither
    // (`actions_without_outcome`).
    let keep = |n: &mut InputSummary, what: String| {
        if n.rejections.len() < KEPT_REJECTIONS {
            n.rejections.push(what);
        }
    };
    let reject = |n: &mut InputSummary, what: String| {
        n.rejected += 1;
        if n.first_record_rejection.is_none() {
            n.first_record_rejection = Some(what.clone());
        }
        keep(n, what);
    };
    let reject_other = |n: &mut InputSummary, what: String| {
        n.rejected_other += 1;
        keep(n, what);
    };
    let lines = |name: &str| -> Result<
        (PathBuf, ByteLines<std::io::BufReader<std::fs::File>>),
        AnalyzeError,
    > {
        let p = dir.join(name);
        let f = std::fs::File::open(&p).map_err(|e| io(&p, e))?;
        let reader = std::io::BufReader::with_capacity(1 << 20, f);
        Ok((p, ByteLines { reader }))
    };
    // The outcomes, read as the actions ask for them (see [`OutcomeStream`]).
    let (outcomes_path, outcome_lines) = lines("outcomes.jsonl")?;
    let mut outcomes = OutcomeStream {
        path: outcomes_path,
        lines: outcome_lines,
        read: 0,
        pending: HashMap::default(),
    };
    let (failures_path, failure_lines) = lines("failures.jsonl")?;
    let (actions_path, mut action_lines) = lines("actions.jsonl")?;
    let total = std::fs::metadata(&failures_path).map_or(0, |m| m.len());
    progress.stage("simulation", total);
    // Classifying is for the import only (a dry run writes nothing).
    let mut classify = store
        .is_some()
        .then(|| (Classifier::new(), Memo::<Verdict>::new(1 << 16)));
    let mut batch: Vec<Entry> = Vec::new();
    if store.is_some() {
        batch.reserve(SIM_BATCH.min(1 << 14));
    }
    let mut bytes = 0u64;
    for (i, line) in failure_lines.enumerate() {
        let line = line.map_err(|e| io(&failures_path, e))?;
        bytes += line.len() as u64 + 1;
        // Line n of actions.jsonl answers line n of failures.jsonl, blank or not.
        let action = action_lines
            .next()
            .transpose()
            .map_err(|e| io(&actions_path, e))?;
        if blank(&line) {
            n.skipped += 1;
            if action.as_deref().is_some_and(|a| !blank(a)) {
                reject_other(
                    &mut n,
                    format!(
                        "{}:{}: an action for a blank failure line",
                        actions_path.display(),
                        i + 1
                    ),
                );
            }
            continue;
        }
        n.read += 1;
        let at = |p: &Path| format!("{}:{}", p.display(), i + 1);
        let failure = crate::ingest::jsonl::parse_line(&line).and_then(|r| {
            let undated = r.timestamp.is_none();
            r.check(o.now)
                .map(|r| (r, undated))
                .map_err(|e| e.to_string())
        });
        let action_text = action;
        let action = match &action_text {
            None => Err("no action on this line (actions.jsonl is shorter)".to_string()),
            Some(a) => parse_sim_line::<RecoveryAction>(a),
        };
        // The outcome this action got, taken whether or not the pair reads (an action that
        // does not read still names its task and strategy, read loosely), so that the task's
        // later outcomes stay with their own actions.
        let asked = match &action {
            Ok(a) => Some((
                a.task_id.to_string(),
                a.strategy != crate::model::RecoveryStrategy::Escalation,
            )),
            Err(_) => action_text.as_deref().and_then(|t| {
                let v: serde_json::Value = serde_json::from_slice(t).ok()?;
                Some((
                    v.get("task_id")?.as_str()?.to_string(),
                    v.get("strategy").and_then(|s| s.as_str()) != Some("ESCALATION"),
                ))
            }),
        };
        let outcome = match &asked {
            Some((task, true)) => {
                Some(outcomes.take(task, &mut |what| reject_other(&mut n, what))?)
            }
            _ => None,
        };
        let (record, action) = match (failure, action) {
            (Ok((r, _)), Ok(a)) if r.task_id.as_str() != a.task_id.as_str() => {
                reject(
                    &mut n,
                    format!(
                        "{}: the action is for task {}, the failure on this line of task {} (the files do not line up)",
                        at(&actions_path),
                        a.task_id,
                        r.task_id
                    ),
                );
                continue;
            }
            (Ok((r, undated)), Ok(a)) => {
                n.stamped_at_read += u64::from(undated);
                (r, a)
            }
            (Err(e), _) => {
                reject(&mut n, format!("{}: {e}", at(&failures_path)));
                continue;
            }
            (_, Err(e)) => {
                reject(&mut n, format!("{}: {e}", at(&actions_path)));
                continue;
            }
        };
        n.ingested += 1;
        n.actions += 1;
        let outcome = match outcome {
            Some(Some((_, Some(outcome)))) => {
                n.outcomes += 1;
                Some(outcome)
            }
            // Kept, without an outcome: counted, not rejected (it was counted in
            // `rejected_other` although imported; audit). Its outcome line, when rejected,
            // is in `rejected_other`.
            Some(Some((_, None))) | Some(None) => {
                n.actions_without_outcome += 1;
                None
            }
            None => None,
        };
        // A dry run stops here: classifying and writing reject nothing.
        let (Some(store), Some((classifier, memo))) = (store.as_deref_mut(), classify.as_mut())
        else {
            continue;
        };
        let class = record.hardware.class;
        let kind = action.kind;
        let fallback = action.timestamp;
        let v = memo.get_or_insert_with(&record, || verdict(classifier, &record));
        batch.push(Entry::Failure(Box::new(v.row(record))));
        batch.push(Entry::Action(Box::new(ActionRow {
            action: action.into(),
            model_version: "simulated".into(),
        })));
        if let Some(outcome) = outcome {
            batch.push(Entry::Outcome(OutcomeRow {
                timestamp: outcome.timestamp.unwrap_or(fallback),
                hardware_class: Some(class),
                kind: Some(kind),
                outcome,
            }));
        }
        if batch.len() >= SIM_BATCH {
            store.write_batch(std::mem::take(&mut batch))?;
            progress.position(bytes);
        }
    }
    if let Some(store) = store {
        store.write_batch(batch)?;
    }
    // Actions beyond the last failure line answer nothing.
    let mut line_no = n.read + n.skipped;
    for line in action_lines {
        line_no += 1;
        if !blank(&line.map_err(|e| io(&actions_path, e))?) {
            reject_other(
                &mut n,
                format!(
                    "{}:{line_no}: no failure on this line (failures.jsonl is shorter)",
                    actions_path.display()
                ),
            );
        }
    }
    // Outcomes no action asked for.
    outcomes.read_to_end(&mut |what| reject_other(&mut n, what))?;
    let mut left: Vec<(usize, String)> = std::mem::take(&mut outcomes.pending)
        .into_iter()
        .flat_map(|(task, q)| {
            // A rejected line was reported as such.
            q.into_iter()
                .filter(|(_, x)| x.is_some())
                .map(move |(line, _)| (line, task.clone()))
        })
        .collect();
    left.sort_unstable();
    for (line, task) in left {
        reject_other(
            &mut n,
            format!(
                "{}:{line}: no action of task {task} is left for this outcome",
                outcomes.path.display()
            ),
        );
    }
    progress.finish();
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulator_directories_are_planned_whole() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
        let p = plan(std::slice::from_ref(&dir), None).unwrap();
        assert!(p.failures.is_empty());
        assert_eq!(p.simulations, [dir]);
        // A user's own failures.jsonl beside other logs is not a simulator's output: every
        // file is read as what it is.
        let mine = tempfile::tempdir().unwrap();
        std::fs::write(mine.path().join("failures.jsonl"), "").unwrap();
        std::fs::write(mine.path().join("kern.log"), "").unwrap();
        let p = plan(&[mine.path().to_path_buf()], None).unwrap();
        assert!(p.simulations.is_empty());
        let names: Vec<_> = p
            .failures
            .iter()
            .map(|(f, _)| f.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["failures.jsonl", "kern.log"]);
    }

    /// Regression: the outcomes of a simulator directory were written after all its failures
    /// and each took the class and kind of its task's latest action, so an outcome was
    /// credited to the task's last failure, not the one it answered (a third of the sample's
    /// outcomes in the wrong class × kind). Imported as a log, each outcome follows its own
    /// failure and action, and carries their class and kind.
    #[test]
    fn a_simulator_outcome_follows_the_failure_it_answered() {
        let rec = |task: &str, class: &str, msg: &str, t: u64, attempt: u32| {
            format!(
                r#"{{"task_id":"{task}","worker_id":"w-{class}","hardware":{{"class":"{class}"}},"error":{{"message":"{msg}"}},"timestamp":{t},"attempt":{attempt}}}"#
            )
        };
        let act = |task: &str, strategy: &str, kind: &str, t: u64, attempt: u32| {
            format!(
                r#"{{"task_id":"{task}","strategy":"{strategy}","failed_worker":"w","delay_s":0.0,"priority_adjustment":0,"reason":"r","source":{{"kind":"rule","rule":"x","step":1}},"propensity":1.0,"attempt":{attempt},"kind":"{kind}","failure_type":"UNKNOWN","classifier_rule":"x","timestamp":"{}"}}"#,
                Timestamp::from_micros(t as i64 * 1_000_000)
            )
        };
        let out = |task: &str, strategy: &str, ok: bool, t: u64| {
            format!(
                r#"{{"task_id":"{task}","success":{ok},"strategy":"{strategy}","timestamp":"{}"}}"#,
                Timestamp::from_micros(t as i64 * 1_000_000)
            )
        };
        // Task a: an OOM on a GPU (smaller batch fails), then a network error on a CPU
        // (retry works). Task b: a CUDA error escalated at once, then nothing.
        let failures = [
            rec("a", "GPU", "CUDA out of memory", 1_700_000_000, 1),
            rec(
                "b",
                "GPU",
                "CUDA error: an illegal memory access",
                1_700_000_001,
                1,
            ),
            rec("a", "CPU", "Connection reset by peer", 1_700_000_100, 2),
        ];
        let actions = [
            act("a", "REDUCED_BATCH_SIZE", "oom_gpu", 1_700_000_000, 1),
            act("b", "ESCALATION", "cuda_error", 1_700_000_001, 1),
            act("a", "DELAYED_RETRY", "network", 1_700_000_100, 2),
        ];
        let outcomes = [
            out("a", "REDUCED_BATCH_SIZE", false, 1_700_000_050),
            out("a", "DELAYED_RETRY", true, 1_700_000_160),
        ];
        let dir = tempfile::tempdir().unwrap();
        let sim = dir.path().join("sim");
        std::fs::create_dir(&sim).unwrap();
        for (name, lines) in [
            ("failures.jsonl", &failures[..]),
            ("actions.jsonl", &actions[..]),
            ("outcomes.jsonl", &outcomes[..]),
        ] {
            std::fs::write(sim.join(name), lines.join("\n") + "\n").unwrap();
        }
        let root = dir.path().join("out");
        let o = InputOptions::new(Timestamp::from_micros(0));
        let s = ingest_inputs(&[sim], &root, &o, &mut super::super::NoProgress).unwrap();
        assert_eq!(
            (s.ingested, s.actions, s.outcomes, s.rejected),
            (3, 3, 2, 0),
            "{s:?}"
        );
        let store = ParquetStore::open(&root, Default::default()).unwrap();
        let entries = crate::store::HistoryStore::entries(&store).unwrap();
        let shape: Vec<String> = entries
            .iter()
            .map(|(_, e)| match e {
                Entry::Failure(f) => format!("F {} {}", f.record.task_id, f.kind),
                Entry::Action(a) => format!("A {} {}", a.action.task_id, a.action.strategy),
                Entry::Outcome(o) => format!(
                    "O {} {:?} {:?} {}",
                    o.outcome.task_id, o.hardware_class, o.kind, o.outcome.success
                ),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "F a oom_gpu",
                "A a REDUCED_BATCH_SIZE",
                "O a Some(Gpu) Some(OomGpu) false",
                "F b cuda_error",
                "A b ESCALATION",
                "F a network",
                "A a DELAYED_RETRY",
                "O a Some(Cpu) Some(Network) true",
            ]
        );

        // An outcome with a negative cost is refused as the API refuses it (review), naming
        // the file, line and field; the rest is imported.
        let bad = [
            out("a", "REDUCED_BATCH_SIZE", false, 1_700_000_050),
            out("a", "DELAYED_RETRY", true, 1_700_000_160).replace("}", r#","cost":-5}"#),
        ];
        let sim2 = dir.path().join("sim");
        std::fs::write(sim2.join("outcomes.jsonl"), bad.join("\n") + "\n").unwrap();
        let root = dir.path().join("out2");
        let s = ingest_inputs(&[sim2], &root, &o, &mut super::super::NoProgress).unwrap();
        assert_eq!((s.ingested, s.outcomes), (3, 1), "{s:?}");
        assert!(
            s.rejections
                .iter()
                .any(|r| r.contains("outcomes.jsonl:2") && r.contains("cost")),
            "{:?}",
            s.rejections
        );
    }

    /// Outcomes are read only as far as an action needs: what is read ahead waits per task,
    /// and a task's outcomes are taken in their order.
    #[test]
    fn outcomes_are_read_as_far_as_the_actions_ask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outcomes.jsonl");
        let line = |task: &str, ok: bool| format!(r#"{{"task_id":"{task}","success":{ok}}}"#);
        let lines = [
            line("a", false),
            line("b", true),
            String::new(),
            line("a", true),
            line("c", true),
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let mut s = OutcomeStream {
            path,
            lines: ByteLines {
                reader: std::io::BufReader::new(f),
            },
            read: 0,
            pending: HashMap::default(),
        };
        let mut rejected = Vec::new();
        let mut take = |s: &mut OutcomeStream, task: &str| {
            s.take(task, &mut |r| rejected.push(r))
                .unwrap()
                .map(|(line, o)| (line, o.map(|o| o.success)))
        };
        assert_eq!(take(&mut s, "b"), Some((2, Some(true))));
        assert_eq!((s.read, s.pending.len()), (2, 1), "a's first outcome waits");
        assert_eq!(take(&mut s, "a"), Some((1, Some(false))));
        assert!(s.pending.is_empty());
        assert_eq!(take(&mut s, "a"), Some((4, Some(true))));
        assert_eq!(s.read, 4, "c's outcome is not read before it is asked for");
        assert_eq!(take(&mut s, "d"), None);
        assert_eq!(s.pending.len(), 1);
        assert!(rejected.is_empty());
    }

    /// A simulator directory's failure line for `task` (a GPU out of memory).
    fn sim_failure(task: &str) -> String {
        format!(
            r#"{{"task_id":"{task}","worker_id":"w","hardware":{{"class":"GPU"}},"error":{{"message":"CUDA out of memory"}},"timestamp":1700000000}}"#
        )
    }

    /// Its action line (the rules' smaller batch).
    fn sim_action(task: &str) -> String {
        format!(
            r#"{{"task_id":"{task}","strategy":"REDUCED_BATCH_SIZE","failed_worker":"w","delay_s":0.0,"priority_adjustment":0,"reason":"r","source":{{"kind":"rule","rule":"oom","step":1}},"propensity":1.0,"attempt":1,"kind":"oom_gpu","failure_type":"RESOURCE_EXHAUSTION","classifier_rule":"x","timestamp":"2023-11-14T22:13:20Z"}}"#
        )
    }

    /// Its outcome line (a success).
    fn sim_outcome(task: &str) -> String {
        format!(r#"{{"task_id":"{task}","success":true}}"#)
    }

    /// Lines that do not line up are rejections that name their file and line, never
    /// silently dropped: an action past the last failure, an outcome no action asked for, a
    /// failure line that does not read (its action and outcome go with it). An action whose
    /// outcome is missing is kept and counted, not rejected.
    #[test]
    fn a_simulator_directory_that_does_not_line_up_names_each_line() {
        let (rec, act, out) = (sim_failure, sim_action, sim_outcome);
        let dir = tempfile::tempdir().unwrap();
        let sim = dir.path().join("sim");
        std::fs::create_dir(&sim).unwrap();
        let write = |name: &str, lines: &[String]| {
            std::fs::write(sim.join(name), lines.join("\n") + "\n").unwrap()
        };
        // Line 4: an action that does not read (its outcome must still be set aside, or the
        // task's next action would take it); line 5: the next action of that task; line 6: an
        // action for another task than its failure's.
        write(
            "failures.jsonl",
            &[
                rec("a"),
                "{not json".into(),
                rec("c"),
                rec("e"),
                rec("e"),
                rec("f"),
            ],
        );
        write(
            "actions.jsonl",
            &[
                act("a"),
                act("b"),
                act("c"),
                act("e").replace("\"delay_s\":0.0", "\"delay_s\":\"soon\""),
                act("e").replace("\"attempt\":1", "\"attempt\":2"),
                act("g"),
                act("d"),
            ],
        );
        write(
            "outcomes.jsonl",
            &[
                out("a"),
                out("b"),
                out("z"),
                out("e"),
                out("e").replace("true", "false"),
            ],
        );
        let root = dir.path().join("out");
        let o = InputOptions::new(Timestamp::from_micros(0));
        let s = ingest_inputs(&[sim], &root, &o, &mut super::super::NoProgress).unwrap();
        assert_eq!((s.ingested, s.actions, s.outcomes), (3, 3, 2), "{s:?}");
        let text = s.rejections.join("\n");
        // Three failure lines not ingested (2, 4, 6) and two lines on their own; c's action
        // (line 3) kept without an outcome.
        assert_eq!((s.read, s.rejected, s.rejected_other), (6, 3, 2), "{text}");
        assert_eq!(s.actions_without_outcome, 1, "{text}");
        assert!(!text.contains("no outcome left"), "{text}");
        for want in [
            "failures.jsonl:2: invalid JSON",
            "actions.jsonl:4: field delay_s: invalid type",
            "actions.jsonl:6: the action is for task g, the failure on this line of task f",
            "actions.jsonl:7: no failure on this line",
            "outcomes.jsonl:3: no action of task z is left for this outcome",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        // Task e's second action got its own outcome (the failed one), not the first's.
        let store = ParquetStore::open(&root, Default::default()).unwrap();
        let e: Vec<bool> = crate::store::HistoryStore::entries(&store)
            .unwrap()
            .into_iter()
            .filter_map(|(_, x)| match x {
                Entry::Outcome(o) if o.outcome.task_id == "e" => Some(o.outcome.success),
                _ => None,
            })
            .collect();
        assert_eq!(e, [false]);
    }

    /// Regression (review): an outcome line that did not read was skipped, and its action took
    /// the task's next outcome: a's smaller batch was recorded as recovered by the move that
    /// came after it, and the move got none. A rejected line that names its task now leaves
    /// its own action without an outcome.
    #[test]
    fn a_rejected_outcome_line_leaves_its_own_action_without_an_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let sim = dir.path().join("sim");
        std::fs::create_dir(&sim).unwrap();
        let moved = sim_action("a").replace("REDUCED_BATCH_SIZE", "DIFFERENT_WORKER");
        for (name, lines) in [
            ("failures.jsonl", [sim_failure("a"), sim_failure("a")]),
            ("actions.jsonl", [sim_action("a"), moved]),
            (
                "outcomes.jsonl",
                [
                    r#"{"task_id":"a","success":"yes"}"#.to_string(),
                    r#"{"task_id":"a","success":true,"strategy":"DIFFERENT_WORKER"}"#.to_string(),
                ],
            ),
        ] {
            std::fs::write(sim.join(name), lines.join("\n") + "\n").unwrap();
        }
        let o = InputOptions::new(Timestamp::from_micros(0));
        let root = dir.path().join("out");
        let s = ingest_inputs(&[sim], &root, &o, &mut super::super::NoProgress).unwrap();
        assert_eq!(
            (
                s.actions,
                s.outcomes,
                s.rejected_other,
                s.actions_without_outcome
            ),
            (2, 1, 1, 1),
            "{s:?}"
        );
        let text = s.rejections.join("\n");
        assert!(text.contains("outcomes.jsonl:1: field success"), "{text}");
        assert!(!text.contains("no action"), "{text}");
        let store = ParquetStore::open(&root, Default::default()).unwrap();
        let order: Vec<String> = crate::store::HistoryStore::entries(&store)
            .unwrap()
            .into_iter()
            .filter_map(|(_, x)| match x {
                Entry::Action(a) => Some(format!("action {}", a.action.strategy)),
                Entry::Outcome(o) => Some(format!("outcome {}", o.outcome.success)),
                _ => None,
            })
            .collect();
        assert_eq!(
            order,
            [
                "action REDUCED_BATCH_SIZE",
                "action DIFFERENT_WORKER",
                "outcome true"
            ]
        );
    }

    /// Regression (audit): an action with no outcome left for it (here the last outcome line
    /// is missing, as in a run cut short) was counted in `rejected_other` ("action or outcome
    /// lines rejected") and listed in `rejections`, yet imported and analysed. It is counted
    /// in `actions_without_outcome`; nothing is rejected.
    #[test]
    fn an_action_without_its_outcome_is_kept_and_not_counted_as_rejected() {
        let (rec, act, out) = (sim_failure, sim_action, sim_outcome);
        let dir = tempfile::tempdir().unwrap();
        let sim = dir.path().join("sim");
        std::fs::create_dir(&sim).unwrap();
        let tasks = ["a", "b", "c"];
        for (name, lines) in [
            ("failures.jsonl", tasks.map(rec)),
            ("actions.jsonl", tasks.map(act)),
        ] {
            std::fs::write(sim.join(name), lines.join("\n") + "\n").unwrap();
        }
        std::fs::write(
            sim.join("outcomes.jsonl"),
            out("a") + "\n" + &out("b") + "\n",
        )
        .unwrap();
        let o = InputOptions::new(Timestamp::from_micros(0));
        let checked = check_simulation(&sim, &o).unwrap();
        let root = dir.path().join("out");
        let s = ingest_inputs(&[sim], &root, &o, &mut super::super::NoProgress).unwrap();
        assert_eq!(
            (s.ingested, s.actions, s.outcomes, s.actions_without_outcome),
            (3, 3, 2, 1),
            "{s:?}"
        );
        assert_eq!((s.rejected, s.rejected_other), (0, 0), "{s:?}");
        assert!(s.rejections.is_empty(), "{:?}", s.rejections);
        assert_eq!(checked.actions_without_outcome, 1);
        // c's action is in the history, without an outcome.
        let store = ParquetStore::open(&root, Default::default()).unwrap();
        let c: Vec<&str> = crate::store::HistoryStore::entries(&store)
            .unwrap()
            .into_iter()
            .filter_map(|(_, x)| match x {
                Entry::Action(a) if a.action.task_id.as_str() == "c" => Some("action"),
                Entry::Outcome(o) if o.outcome.task_id == "c" => Some("outcome"),
                _ => None,
            })
            .collect();
        assert_eq!(c, ["action"]);
        // Counts add up across inputs.
        let mut both = checked.clone();
        both.add(checked);
        assert_eq!(both.actions_without_outcome, 2);
    }

    /// `ingest --strict` checks a simulator directory with [`check_simulation`] before it
    /// writes: the dry run reads every line as the import does, so it rejects the same lines
    /// with the same messages (naming the field at fault) and counts the same, and it writes
    /// nothing; a clean directory passes with the import's counts.
    #[test]
    fn a_dry_run_of_a_simulator_import_rejects_the_same_lines_and_writes_nothing() {
        let (rec, act, out) = (sim_failure, sim_action, sim_outcome);
        let dir = tempfile::tempdir().unwrap();
        let write = |sim: &Path, failures: &[String], actions: &[String], outcomes: &[String]| {
            std::fs::create_dir(sim).unwrap();
            for (name, lines) in [
                ("failures.jsonl", failures),
                ("actions.jsonl", actions),
                ("outcomes.jsonl", outcomes),
            ] {
                std::fs::write(sim.join(name), lines.join("\n") + "\n").unwrap();
            }
        };
        let tasks = ["a", "b", "c", "d"];
        let all = |line: fn(&str) -> String| tasks.map(line).to_vec();
        let o = InputOptions::new(Timestamp::from_micros(0));
        // Clean: nothing rejected, the import's counts.
        let clean = dir.path().join("clean");
        write(&clean, &all(rec), &all(act), &all(out));
        let checked = check_simulation(&clean, &o).unwrap();
        assert_eq!(
            (
                checked.read,
                checked.ingested,
                checked.actions,
                checked.outcomes
            ),
            (4, 4, 4, 4)
        );
        assert_eq!(
            (
                checked.rejected,
                checked.rejected_other,
                checked.actions_without_outcome
            ),
            (0, 0, 0)
        );
        let root = dir.path().join("clean-history");
        let mut store = ParquetStore::open(&root, Default::default()).unwrap();
        let imported =
            import_simulation(&clean, &mut store, &o, &mut super::super::NoProgress).unwrap();
        assert_eq!(checked, imported);
        // Bad: outcome line 2 (b's) gives `success` a string, failure line 3 has a
        // `timestamp` that is not a time, action line 4 a `delay_s` that is not a number.
        let bad = dir.path().join("bad");
        let mut failures = all(rec);
        failures[2] = failures[2].replace("1700000000", "\"soon\"");
        let mut actions = all(act);
        actions[3] = actions[3].replace("\"delay_s\":0.0", "\"delay_s\":\"soon\"");
        let mut outcomes = all(out);
        outcomes[1] = outcomes[1].replace("true", "\"yes\"");
        write(&bad, &failures, &actions, &outcomes);
        let checked = check_simulation(&bad, &o).unwrap();
        let text = checked.rejections.join("\n");
        assert_eq!((checked.read, checked.ingested), (4, 2), "{text}");
        // b's outcome line rejected: b's action is kept without one.
        assert_eq!(
            (checked.rejected_other, checked.actions_without_outcome),
            (1, 1),
            "{text}"
        );
        for want in [
            "outcomes.jsonl:2: field success: invalid type: string \"yes\"",
            "failures.jsonl:3: field timestamp",
            "actions.jsonl:4: field delay_s: invalid type",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        // The first rejection met is the bad outcome, by its file and line.
        assert!(
            checked.rejections[0].starts_with(&format!(
                "{}:2: field success",
                bad.join("outcomes.jsonl").display()
            )),
            "{text}"
        );
        let root = dir.path().join("bad-history");
        let mut store = ParquetStore::open(&root, Default::default()).unwrap();
        let imported =
            import_simulation(&bad, &mut store, &o, &mut super::super::NoProgress).unwrap();
        assert_eq!(checked, imported);
        // The dry runs wrote nothing: only the two imports made histories.
        let mut made: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        made.sort();
        assert_eq!(made, ["bad", "bad-history", "clean", "clean-history"]);
        for sim in [&clean, &bad] {
            assert_eq!(std::fs::read_dir(sim).unwrap().count(), 3);
        }
        // A file missing is an error naming it, as in the import.
        std::fs::remove_file(bad.join("actions.jsonl")).unwrap();
        let e = check_simulation(&bad, &o).unwrap_err();
        assert!(e.to_string().contains("actions.jsonl"), "{e}");
    }

    /// Rows built per chunk on the workers and split across batches at any row give the
    /// same history, byte for byte, as encoding each entry and writing batches of entries.
    #[test]
    fn classified_rows_write_the_same_parts_as_encoded_entries() {
        use crate::ingest::{BadLine, JsonlSource};
        let mut text = String::new();
        for i in 0..500 {
            if i % 97 == 13 {
                text.push_str("{not json\n");
                continue;
            }
            // Three days, interleaved, and messages that repeat and that do not.
            let day = 13 + (i * 7) % 3;
            text.push_str(&format!(
                "{{\"task_id\":\"t{}\",\"worker_id\":\"w{}\",\"platform\":\"GPU\",\"ts\":\"2025-03-{day}T00:00:{:02}Z\",\"error\":{{\"message\":\"CUDA out of memory {}\"}}}}\n",
                i % 40,
                i % 7,
                i % 60,
                i % 11 + (i / 400) * 1000,
            ));
        }
        let source = |t: &str| -> Vec<Box<dyn Source>> {
            vec![Box::new(
                JsonlSource::from_reader(
                    Path::new("in.jsonl"),
                    std::io::Cursor::new(t.to_string()),
                )
                .with_chunk_bytes(1500),
            )]
        };
        let mut opts = PipelineOptions::new(Timestamp::from_micros(0));
        opts.batch_size = 64;
        opts.threads = 2;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut store = ParquetStore::open(a.path(), Default::default()).unwrap();
        let mut bad = 0;
        let s = ingest::run_rows(
            source(&text),
            &opts,
            classifying_rows,
            ClassifiedBatch::new,
            |batch: ClassifiedBatch| write_classified(&mut store, batch),
            |_: &BadLine| bad += 1,
            |_| {},
        )
        .unwrap();
        assert_eq!((s.ingested, s.rejected, bad), (494, 6, 6));
        let mut plain = ParquetStore::open(b.path(), Default::default()).unwrap();
        let classifier = Classifier::new();
        let encoded: Vec<crate::store::Encoded> = crate::ingest::Records::new(
            JsonlSource::from_reader(Path::new("in.jsonl"), std::io::Cursor::new(text.clone())),
        )
        .filter_map(Result::ok)
        .map(|r| {
            let record = r.check(Timestamp::from_micros(0)).unwrap();
            let v = verdict(&classifier, &record);
            crate::store::Encoded::new(Entry::Failure(Box::new(v.row(record)))).unwrap()
        })
        .collect();
        for chunk in encoded.chunks(64) {
            plain.write_encoded(chunk.to_vec()).unwrap();
        }
        let files = |d: &Path| {
            let mut out = Vec::new();
            let mut stack = vec![d.join("history")];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(&dir).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        let rel = p.strip_prefix(d).unwrap().to_path_buf();
                        out.push((rel, std::fs::read(&p).unwrap()));
                    }
                }
            }
            out.sort();
            out
        };
        let (fa, fb) = (files(a.path()), files(b.path()));
        assert!(fa.len() > 8, "several batches over three days");
        assert_eq!(fa, fb);
    }

    /// Regression: the output directory inside an input directory was read back as input
    /// (a second `analyze logs --out logs/report` re-imported report/failures.parquet and
    /// rejected summary.json line by line; `ingest logs --data logs/hist` its own parts).
    #[test]
    fn the_output_directory_is_not_read_as_input() {
        let d = tempfile::tempdir().unwrap();
        let logs = d.path().join("logs");
        let report = logs.join("report");
        std::fs::create_dir_all(report.join("history")).unwrap();
        std::fs::write(logs.join("a.jsonl"), "").unwrap();
        std::fs::write(report.join("failures.parquet"), "").unwrap();
        std::fs::write(report.join("summary.json"), "{}").unwrap();
        // Named another way (`logs/./report`): compared canonically.
        let out = logs.join(".").join("report");
        let p = plan_excluding(std::slice::from_ref(&logs), None, Some(&out)).unwrap();
        let files: Vec<_> = p.failures.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(files, [logs.join("a.jsonl")]);
        assert_eq!(p.excluded, [report.as_path()]);
        assert_eq!(
            p.notes(),
            [format!(
                "skipping {}: it is the output directory",
                report.display()
            )]
        );
        // Without an output directory everything is read.
        let p = plan(std::slice::from_ref(&logs), None).unwrap();
        assert_eq!(p.failures.len(), 3, "{p:?}");
        // The output directory itself, or its history, as an input: refused.
        for input in [report.clone(), report.join("history")] {
            let e = plan_excluding(std::slice::from_ref(&input), None, Some(&report)).unwrap_err();
            assert!(
                e.to_string().contains(&input.display().to_string())
                    && e.to_string().contains("output directory"),
                "{e}"
            );
        }
    }

    /// Regression: files of unknown type in an input directory were dropped without a word.
    #[test]
    fn files_of_unknown_type_are_listed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        for f in ["a.jsonl", "crlf.jsonl.gz", "sub/app.out"] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        let p = plan(&[d.path().to_path_buf()], None).unwrap();
        assert_eq!(p.failures.len(), 1);
        assert_eq!(
            p.unknown,
            [d.path().join("crlf.jsonl.gz"), d.path().join("sub/app.out")]
        );
        let notes = p.notes();
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("skipped 2 files of unknown type: ")
                && notes[0].contains("crlf.jsonl.gz")
                && notes[0].contains("app.out"),
            "{notes:?}"
        );
        // Counted in the ingest summary, with their names.
        let root = d.path().join("out");
        let o = InputOptions::new(Timestamp::from_micros(1));
        let s = ingest_inputs(
            &[d.path().to_path_buf()],
            &root,
            &o,
            &mut super::super::NoProgress,
        )
        .unwrap();
        assert_eq!(s.unknown_files, 2);
        assert_eq!(s.unknown_file_names.len(), 2);
    }

    /// Regression (audit): `analyze` read a file once per mention — given twice, given and
    /// inside a directory given — and walked a symbolic link back up the tree 40 levels deep
    /// (one record counted 41 times). Each file and directory is read once now, with a note
    /// for each repeat.
    #[test]
    fn each_input_is_read_once() {
        let d = tempfile::tempdir().unwrap();
        let logs = d.path().join("logs");
        std::fs::create_dir_all(logs.join("a")).unwrap();
        let one = "{\"task_id\":\"t1\",\"worker_id\":\"w1\",\"hardware\":{\"class\":\"GPU\"},\"error\":{\"message\":\"CUDA out of memory\"},\"timestamp\":\"2026-11-01T10:00:00Z\"}\n";
        std::fs::write(logs.join("r.jsonl"), one).unwrap();
        std::os::unix::fs::symlink("..", logs.join("a/up")).unwrap();
        let root = d.path().join("out");
        let o = InputOptions::new(Timestamp::from_micros(1));
        let file = logs.join("r.jsonl");
        for inputs in [
            vec![file.clone(), file.clone()],
            vec![logs.clone()],
            vec![logs.clone(), file.clone()],
        ] {
            let opened = OpenInputs::open(&inputs, Some(&root), &o).unwrap();
            assert_eq!(opened.plan().failures.len(), 1, "{inputs:?}");
            let notes = opened.plan().notes();
            if inputs.len() > 1 {
                assert!(
                    notes.iter().any(|n| n.contains("given twice")),
                    "{inputs:?}: {notes:?}"
                );
            }
            let s = ingest_opened(opened, &root, &o, &mut super::super::NoProgress).unwrap();
            assert_eq!(s.ingested, 1, "{inputs:?}");
            std::fs::remove_dir_all(&root).unwrap();
        }
    }

    /// Regression (audit): one CSV beside the logs whose header has no column for a
    /// required field stopped the analysis of the whole directory. Found in a directory, it
    /// is left out with the reason and counted; named alone, it is still an error.
    #[test]
    fn a_csv_in_a_directory_whose_header_cannot_be_mapped_is_left_out() {
        let d = tempfile::tempdir().unwrap();
        let logs = d.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        std::fs::write(
            logs.join("a.jsonl"),
            "{\"task_id\":\"t1\",\"worker_id\":\"w1\",\"hardware\":{\"class\":\"GPU\"},\"error\":{\"message\":\"CUDA out of memory\"},\"timestamp\":\"2026-11-01T10:00:00Z\"}\n",
        )
        .unwrap();
        std::fs::write(
            logs.join("metrics.csv"),
            "time,cpu_util,mem_util\n1,0.5,0.2\n",
        )
        .unwrap();
        let root = d.path().join("out");
        let o = InputOptions::new(Timestamp::from_micros(1));
        let inputs = OpenInputs::open(std::slice::from_ref(&logs), Some(&root), &o).unwrap();
        let notes = inputs.plan().notes();
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("skipped ") && n.contains("metrics.csv: ")),
            "{notes:?}"
        );
        let s = ingest_opened(inputs, &root, &o, &mut super::super::NoProgress).unwrap();
        assert_eq!((s.ingested, s.unknown_files), (1, 1));
        assert!(s.unknown_file_names[0].ends_with("metrics.csv"));
        // Named alone, it is an error naming the file.
        let e = OpenInputs::open(&[logs.join("metrics.csv")], Some(&root), &o).unwrap_err();
        assert!(e.to_string().contains("metrics.csv"), "{e}");
        // A directory of nothing else says why there is nothing to read.
        std::fs::remove_file(logs.join("a.jsonl")).unwrap();
        let e = OpenInputs::open(std::slice::from_ref(&logs), Some(&root), &o).unwrap_err();
        assert!(
            e.to_string().contains("no inputs to read") && e.to_string().contains("metrics.csv"),
            "{e}"
        );
    }

    /// Inputs are opened before anything is written: a missing or unreadable one fails
    /// [`OpenInputs::open`], and nothing is created under the output directory.
    #[test]
    fn inputs_are_opened_before_anything_is_written() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("a.jsonl");
        std::fs::write(&good, "").unwrap();
        let o = InputOptions::new(Timestamp::from_micros(1));
        let e =
            OpenInputs::open(&[good.clone(), d.path().join("typo.jsonl")], None, &o).unwrap_err();
        assert!(e.to_string().contains("typo.jsonl"), "{e}");
        // A Parquet file that is not one fails at open, not halfway through the ingest.
        let bad = d.path().join("x.parquet");
        std::fs::write(&bad, "not parquet").unwrap();
        assert!(OpenInputs::open(&[good.clone(), bad], None, &o).is_err());
        let opened = OpenInputs::open(std::slice::from_ref(&good), None, &o).unwrap();
        assert_eq!(opened.plan().failures.len(), 1);
    }

    /// Regression: records without a time were given the run's and nothing said so. They
    /// are counted, in the pipeline and in a simulator directory alike.
    #[test]
    fn records_without_a_time_are_counted() {
        let d = tempfile::tempdir().unwrap();
        let rec = |t: Option<u64>| {
            let ts = t.map_or(String::new(), |t| format!(r#","timestamp":{t}"#));
            format!(
                r#"{{"task_id":"t","worker_id":"w","error":{{"message":"CUDA out of memory"}}{ts}}}"#
            )
        };
        let lines = [rec(Some(1_700_000_000)), rec(None), rec(None)];
        let input = d.path().join("a.jsonl");
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        let now = Timestamp::from_micros(1_800_000_000_000_000);
        let o = InputOptions::new(now);
        let s = ingest_inputs(
            std::slice::from_ref(&input),
            &d.path().join("out"),
            &o,
            &mut super::super::NoProgress,
        )
        .unwrap();
        assert_eq!(
            (s.ingested, s.stamped_at_read, s.read_at),
            (3, 2, Some(now))
        );
    }

    /// Regression: one byte that is not UTF-8 in a simulator directory's failures, actions or
    /// outcomes aborted the whole import ("stream did not contain valid UTF-8", no line); it
    /// rejects that line, with its file and line, as the JSONL reader does.
    #[test]
    fn invalid_utf8_in_a_simulator_directory_rejects_the_line() {
        let (rec, act, out) = (sim_failure, sim_action, sim_outcome);
        // A byte that is not UTF-8 inside a string of the line.
        let bad = |line: String| {
            let mut b = line.into_bytes();
            let at = b.len() - 3;
            b.insert(at, 0xff);
            b
        };
        let join = |lines: Vec<Vec<u8>>| {
            let mut v = Vec::new();
            for l in lines {
                v.extend(l);
                v.extend(b"\r\n");
            }
            v
        };
        let dir = tempfile::tempdir().unwrap();
        let sim = dir.path().join("sim");
        std::fs::create_dir(&sim).unwrap();
        let tasks = ["a", "b", "c", "d"];
        // Failure line 2 and action line 3 are not UTF-8, nor is outcome line 4.
        // Line `bad_at` (0-based) of a file of `line(task)` lines is not UTF-8.
        let lines = |bad_at: usize, line: &dyn Fn(&str) -> String| {
            tasks
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if i == bad_at {
                        bad(line(t))
                    } else {
                        line(t).into_bytes()
                    }
                })
                .collect::<Vec<_>>()
        };
        let (failures, actions, outcomes) = (lines(1, &rec), lines(2, &act), lines(3, &out));
        std::fs::write(sim.join("failures.jsonl"), join(failures)).unwrap();
        std::fs::write(sim.join("actions.jsonl"), join(actions)).unwrap();
        std::fs::write(sim.join("outcomes.jsonl"), join(outcomes)).unwrap();
        let o = InputOptions::new(Timestamp::from_micros(0));
        let s = ingest_inputs(
            &[sim],
            &dir.path().join("out"),
            &o,
            &mut super::super::NoProgress,
        )
        .unwrap();
        let text = s.rejections.join("\n");
        // Failures a and d ingested (d's action without its outcome), b and c rejected.
        assert_eq!((s.read, s.ingested, s.rejected), (4, 2, 2), "{text}");
        assert_eq!((s.actions, s.outcomes), (2, 1), "{text}");
        // Outcome lines 3 (c's, its action rejected) and 4 on their own; d's action kept.
        assert_eq!(
            (s.rejected_other, s.actions_without_outcome),
            (2, 1),
            "{text}"
        );
        for want in [
            "failures.jsonl:2: ",
            "actions.jsonl:3: ",
            "outcomes.jsonl:4: ",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        assert!(!text.contains("valid UTF-8"), "{text}");
    }

    #[test]
    fn missing_input_is_named() {
        let e = plan(&[PathBuf::from("/nonexistent/x.jsonl")], None).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.jsonl"));
    }

    /// A data directory given to `analyze` (alone or inside an input directory) is planned
    /// whole and imported as its log: its failures, actions and outcomes in the order it
    /// logged them, none of its files read on its own. `ingest`'s plan walks it as before.
    #[test]
    fn a_data_directory_is_planned_whole_and_imported_in_log_order() {
        let d = tempfile::tempdir().unwrap();
        let sim = d.path().join("sim");
        std::fs::create_dir(&sim).unwrap();
        let tasks = ["a", "b", "c"];
        for (name, line) in [
            ("failures.jsonl", sim_failure as fn(&str) -> String),
            ("actions.jsonl", sim_action),
            ("outcomes.jsonl", sim_outcome),
        ] {
            let lines: Vec<String> = tasks.iter().map(|t| line(t)).collect();
            std::fs::write(sim.join(name), lines.join("\n") + "\n").unwrap();
        }
        let runs = d.path().join("runs");
        let src = runs.join("src");
        let o = InputOptions::new(Timestamp::from_micros(0));
        ingest_inputs(&[sim], &src, &o, &mut super::super::NoProgress).unwrap();
        std::fs::write(src.join("summary.json"), "{}").unwrap();
        std::fs::write(runs.join("mine.jsonl"), sim_failure("d") + "\n").unwrap();
        assert!(is_data_dir(&src) && !is_data_dir(&runs));

        let p = plan_analysis(std::slice::from_ref(&src), None, None).unwrap();
        assert_eq!(p.histories, std::slice::from_ref(&src));
        assert!(p.failures.is_empty(), "{p:?}");
        let p = plan_analysis(std::slice::from_ref(&runs), None, None).unwrap();
        assert_eq!(p.histories, std::slice::from_ref(&src));
        let files: Vec<_> = p.failures.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(files, [runs.join("mine.jsonl")]);
        assert!(p.unknown.is_empty(), "{p:?}");
        let p = plan_excluding(std::slice::from_ref(&src), None, None).unwrap();
        assert!(p.histories.is_empty() && !p.failures.is_empty(), "{p:?}");

        let dst = d.path().join("dst");
        let s = ingest_inputs(
            std::slice::from_ref(&src),
            &dst,
            &o,
            &mut super::super::NoProgress,
        )
        .unwrap();
        assert_eq!(
            (s.read, s.ingested, s.actions, s.outcomes, s.rejected),
            (3, 3, 3, 3, 0),
            "{s:?}"
        );
        let log = |root: &Path| -> Vec<Entry> {
            let store = ParquetStore::open(root, Default::default()).unwrap();
            crate::store::HistoryStore::entries(&store)
                .unwrap()
                .into_iter()
                .map(|(_, e)| e)
                .collect()
        };
        let copied = log(&dst);
        assert_eq!(copied.len(), 9);
        assert_eq!(copied, log(&src));
    }
}
