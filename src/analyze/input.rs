//! The first stage of `analyze` from raw inputs: files and directories → the Parquet history
//! under the output directory, through the bulk ingest pipeline (chunked, bounded queues,
//! classification cached per thread), exactly as `faultline ingest` does.
//!
//! A directory written by `faultline simulate` (it holds `failures.jsonl`) contributes its
//! `actions.jsonl` and `outcomes.jsonl` to the actions and outcomes tables, so strategy
//! effectiveness and attempts-to-recovery have data; its `summary.json` and
//! `ground_truth.json` are not failure records and are left alone.

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
    schema, ActionRow, ColumnBatch, Encoded, Entry, FailureRow, OutcomeRow, ParquetStore,
    StoreError,
};

use super::summary::InputSummary;
use super::{AnalyzeError, Progress};

/// Rejections kept for the summary.
const KEPT_REJECTIONS: usize = 20;
/// Actions and outcomes per Parquet commit.
const SIDE_BATCH: usize = 100_000;

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

/// Inputs sorted into failure sources and the side tables of simulator directories.
#[derive(Debug, Default)]
pub struct Plan {
    /// Failure record sources with their formats.
    pub failures: Vec<(PathBuf, Format)>,
    /// `actions.jsonl` of simulator directories (a directory holding `failures.jsonl`).
    pub actions: Vec<PathBuf>,
    /// `outcomes.jsonl` of simulator directories.
    pub outcomes: Vec<PathBuf>,
}

fn io(path: &Path, source: std::io::Error) -> AnalyzeError {
    AnalyzeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), AnalyzeError> {
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let p = e.map_err(|e| io(dir, e))?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Sorts `inputs` (files, directories walked recursively and sorted, `-` for stdin) into
/// failure sources by format (`format` for all, else by extension; files of no known format
/// in a directory are left out) and, in a simulator directory, its actions and outcomes (its
/// `summary.json` and `ground_truth.json` are not records and are left out).
pub fn plan(inputs: &[PathBuf], format: Option<Format>) -> Result<Plan, AnalyzeError> {
    let mut plan = Plan::default();
    for p in inputs {
        if p.as_os_str() == "-" {
            plan.failures
                .push((p.clone(), format.unwrap_or(Format::Jsonl)));
        } else if p.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files)?;
            files.sort();
            let before = plan.failures.len();
            let sim_dirs: Vec<PathBuf> = files
                .iter()
                .filter(|f| f.file_name().is_some_and(|n| n == "failures.jsonl"))
                .filter_map(|f| f.parent().map(Path::to_path_buf))
                .collect();
            for f in files {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let in_sim = f.parent().is_some_and(|d| sim_dirs.iter().any(|s| s == d));
                if in_sim {
                    match name.as_str() {
                        "failures.jsonl" => plan.failures.push((f, Format::Jsonl)),
                        "actions.jsonl" => plan.actions.push(f),
                        "outcomes.jsonl" => plan.outcomes.push(f),
                        _ => {}
                    }
                } else if let Some(fmt) = format.or_else(|| Format::detect(&f)) {
                    plan.failures.push((f, fmt));
                }
            }
            if plan.failures.len() == before {
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
            let fmt = format
                .or_else(|| Format::detect(p))
                .ok_or_else(|| IngestError::UnknownFormat { path: p.clone() })?;
            plan.failures.push((p.clone(), fmt));
        }
    }
    Ok(plan)
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
    /// The first encoding error and its row.
    error: Option<(u64, StoreError)>,
    classes: Option<Vec<(String, HardwareClass)>>,
}

/// A pipeline worker (for [`ingest::run_rows`]) that classifies each checked record (with
/// a per-thread cache of verdicts), encodes its failures-table entry and adds it to the
/// chunk's [`ClassifiedRows`]; shared by `analyze` and `faultline ingest`. With
/// `record_classes`, the rows also keep each failure's task id and hardware class (see
/// [`ClassifiedBatch::take_classes`]). Collect the rows in a [`ClassifiedBatch`] and write
/// it with [`write_classified`].
pub fn classifying_rows(record_classes: bool) -> impl FnMut(FailureRecord, &mut ClassifiedRows) {
    let classifier = Classifier::new();
    let mut memo: Memo<Verdict> = Memo::new(1 << 16);
    let mut payload: Vec<u8> = Vec::with_capacity(4096);
    move |record: FailureRecord, rows: &mut ClassifiedRows| {
        let row = rows.rows;
        rows.rows += 1;
        if record_classes {
            rows.classes
                .get_or_insert_with(Vec::new)
                .push((record.task_id.as_str().to_string(), record.hardware.class));
        }
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
    classes: Vec<(String, HardwareClass)>,
}

impl ClassifiedBatch {
    /// An empty batch.
    pub fn new() -> Self {
        ClassifiedBatch::default()
    }

    /// The task ids and hardware classes of the failures in the batch, in input order
    /// (empty unless the worker was made with `record_classes`).
    pub fn take_classes(&mut self) -> Vec<(String, HardwareClass)> {
        std::mem::take(&mut self.classes)
    }
}

impl ingest::Batch<ClassifiedRows> for ClassifiedBatch {
    fn append(&mut self, from: &mut ClassifiedRows, rows: std::ops::Range<usize>) {
        let range = rows.start as u64..rows.end as u64;
        if from.error.as_ref().is_some_and(|(r, _)| range.contains(r)) {
            if let Some((_, e)) = from.error.take() {
                self.error.get_or_insert(e);
            }
        }
        if let Some(classes) = &mut from.classes {
            self.classes.extend(
                classes[rows.clone()]
                    .iter_mut()
                    .map(|(task, class)| (std::mem::take(task), *class)),
            );
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

/// Ingests `inputs` into the store at `root` (created if absent): failures through the
/// pipeline, then the actions and outcomes of simulator directories. Rejected records are
/// counted and the first ones kept; an I/O error stops the run.
pub fn ingest_inputs(
    inputs: &[PathBuf],
    root: &Path,
    o: &InputOptions,
    progress: &mut dyn Progress,
) -> Result<InputSummary, AnalyzeError> {
    let plan = plan(inputs, o.format)?;
    let sources = plan
        .failures
        .iter()
        .map(|(p, f)| open(p, *f, o))
        .collect::<Result<Vec<_>, _>>()?;
    let total: u64 = sources.iter().filter_map(|s| s.len_hint()).sum();
    let mut store = ParquetStore::open(root, Default::default())?;
    let mut opts = PipelineOptions::new(o.now);
    opts.batch_size = o.batch.max(1);
    if let Some(t) = o.threads {
        opts.threads = t.max(1);
    }
    // The hardware class of each task's latest failure, for the outcomes table.
    let mut task_class: HashMap<String, HardwareClass, FxBuildHasher> = HashMap::default();
    let mut rejections: Vec<String> = Vec::new();
    progress.stage("ingest", total);
    let summary = {
        let store = &mut store;
        let task_class = &mut task_class;
        let want_classes = !plan.outcomes.is_empty();
        ingest::run_rows(
            sources,
            &opts,
            || classifying_rows(want_classes),
            ClassifiedBatch::new,
            |mut batch: ClassifiedBatch| {
                task_class.extend(batch.take_classes());
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
    let mut out = InputSummary {
        read: summary.read,
        ingested: summary.ingested,
        rejected: summary.rejected,
        skipped: summary.skipped,
        rejections,
        ..InputSummary::default()
    };
    // Actions, then outcomes (each outcome gets the kind of its task's latest action).
    // Lines parse and encode on `opts.threads` threads; maps update in input order.
    progress.stage("side tables", 0);
    let threads = opts.threads;
    let mut task_kind: HashMap<String, (FailureKind, Timestamp), FxBuildHasher> =
        HashMap::default();
    for path in &plan.actions {
        out.actions += side_table(
            path,
            &mut store,
            &mut out.rejections,
            threads,
            |line| {
                let action: RecoveryAction =
                    serde_json::from_str(line).map_err(|e| e.to_string())?;
                Encoded::new(Entry::Action(Box::new(ActionRow {
                    action: action.into(),
                    model_version: "input".into(),
                })))
                .map_err(|e| e.to_string())
            },
            |e| {
                if let Entry::Action(a) = e.entry() {
                    task_kind.insert(
                        a.action.task_id.as_str().to_string(),
                        (a.action.kind, a.action.timestamp),
                    );
                }
            },
        )?;
    }
    let (task_kind, task_class) = (&task_kind, &task_class);
    for path in &plan.outcomes {
        out.outcomes += side_table(
            path,
            &mut store,
            &mut out.rejections,
            threads,
            |line| {
                let outcome: Outcome = serde_json::from_str(line).map_err(|e| e.to_string())?;
                let latest = task_kind.get(&outcome.task_id).copied();
                let timestamp = outcome.timestamp.or(latest.map(|l| l.1)).unwrap_or(o.now);
                Encoded::new(Entry::Outcome(OutcomeRow {
                    hardware_class: task_class.get(&outcome.task_id).copied(),
                    kind: latest.map(|l| l.0),
                    outcome,
                    timestamp,
                }))
                .map_err(|e| e.to_string())
            },
            |_| {},
        )?;
    }
    store.flush()?;
    progress.finish();
    Ok(out)
}

/// Bytes of a side table read (and parsed in parallel) at a time.
const SIDE_BLOCK: usize = 8 << 20;

/// Reads one JSON-lines side table into the store in batches; returns the rows written.
/// Blocks of lines are parsed by `parse` on `threads` threads; `seen` then gets every row
/// in input order. Blank lines are skipped; a line that does not parse is a rejection.
fn side_table<P, S>(
    path: &Path,
    store: &mut ParquetStore,
    rejections: &mut Vec<String>,
    threads: usize,
    parse: P,
    mut seen: S,
) -> Result<u64, AnalyzeError>
where
    P: Fn(&str) -> Result<Encoded, String> + Sync,
    S: FnMut(&Encoded),
{
    let mut file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut batch: Vec<Encoded> = Vec::with_capacity(SIDE_BATCH.min(4096));
    let mut n = 0u64;
    let mut line_no = 0usize;
    let mut carry: Vec<u8> = Vec::new();
    let mut eof = false;
    while !eof {
        // A block of whole lines.
        let mut block = std::mem::take(&mut carry);
        let want = block.len() + SIDE_BLOCK;
        while block.len() < want {
            let start = block.len();
            block.resize(want, 0);
            let got = loop {
                match std::io::Read::read(&mut file, &mut block[start..]) {
                    Ok(k) => break k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io(path, e)),
                }
            };
            block.truncate(start + got);
            if got == 0 {
                eof = true;
                break;
            }
        }
        if !eof {
            let cut = block.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            carry = block.split_off(cut);
        }
        let lines: Vec<&[u8]> = if block.is_empty() {
            Vec::new()
        } else {
            block
                .strip_suffix(b"\n")
                .unwrap_or(&block)
                .split(|&b| b == b'\n')
                .collect()
        };
        let parts = threads.max(1).min(lines.len().max(1));
        let per = lines.len().div_ceil(parts).max(1);
        type Parsed = Vec<Option<Result<Encoded, String>>>;
        let parse_lines = |ls: &[&[u8]]| -> Result<Parsed, std::io::Error> {
            ls.iter()
                .map(|l| {
                    let l = l.strip_suffix(b"\r").unwrap_or(l);
                    let text = std::str::from_utf8(l).map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "stream did not contain valid UTF-8",
                        )
                    })?;
                    Ok((!text.trim().is_empty()).then(|| parse(text)))
                })
                .collect()
        };
        let results: Vec<Result<Parsed, std::io::Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = lines
                .chunks(per)
                .skip(1)
                .map(|c| s.spawn(|| parse_lines(c)))
                .collect();
            let mut out = vec![parse_lines(lines.chunks(per).next().unwrap_or(&[]))];
            out.extend(handles.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a side-table thread panicked")))
            }));
            out
        });
        for part in results {
            for item in part.map_err(|e| io(path, e))? {
                line_no += 1;
                match item {
                    None => continue,
                    Some(Ok(e)) => {
                        seen(&e);
                        batch.push(e);
                    }
                    Some(Err(reason)) => {
                        if rejections.len() < KEPT_REJECTIONS {
                            rejections.push(format!("{}:{line_no}: {reason}", path.display()));
                        }
                        continue;
                    }
                }
                if batch.len() >= SIDE_BATCH {
                    n += batch.len() as u64;
                    store.write_encoded(std::mem::take(&mut batch))?;
                }
            }
        }
    }
    n += batch.len() as u64;
    if !batch.is_empty() {
        store.write_encoded(batch)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulator_directories_contribute_side_tables() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
        let p = plan(&[dir], None).unwrap();
        assert_eq!(p.failures.len(), 1);
        assert!(p.failures[0].0.ends_with("failures.jsonl"));
        assert_eq!(p.actions.len(), 1);
        assert_eq!(p.outcomes.len(), 1);
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
            || classifying_rows(true),
            ClassifiedBatch::new,
            |mut batch: ClassifiedBatch| {
                assert_eq!(batch.take_classes().len(), ingest::Batch::len(&batch));
                write_classified(&mut store, batch)
            },
            |_: &BadLine| bad += 1,
            |_| {},
        )
        .unwrap();
        assert_eq!((s.ingested, s.rejected, bad), (494, 6, 6));
        let mut plain = ParquetStore::open(b.path(), Default::default()).unwrap();
        let classifier = Classifier::new();
        let encoded: Vec<Encoded> = crate::ingest::Records::new(JsonlSource::from_reader(
            Path::new("in.jsonl"),
            std::io::Cursor::new(text.clone()),
        ))
        .filter_map(Result::ok)
        .map(|r| {
            let record = r.check(Timestamp::from_micros(0)).unwrap();
            let v = verdict(&classifier, &record);
            Encoded::new(Entry::Failure(Box::new(v.row(record)))).unwrap()
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

    #[test]
    fn missing_input_is_named() {
        let e = plan(&[PathBuf::from("/nonexistent/x.jsonl")], None).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.jsonl"));
    }
}
