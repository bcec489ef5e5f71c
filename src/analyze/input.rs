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
    self, BadLine, Chunk, ColumnMap, CsvSource, Format, IngestError, JsonlSource, KernelOptions,
    KernelSource, Memo, PipelineOptions, Source,
};
use crate::model::{
    FailureKind, FailureRecord, FailureType, HardwareClass, Outcome, RecoveryAction, Timestamp,
};
use crate::store::import::{import_failures, ParquetImport};
use crate::store::{ActionRow, Encoded, Entry, FailureRow, OutcomeRow, ParquetStore, StoreError};

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
struct Plan {
    failures: Vec<(PathBuf, Format)>,
    actions: Vec<PathBuf>,
    outcomes: Vec<PathBuf>,
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

fn plan(inputs: &[PathBuf], format: Option<Format>) -> Result<Plan, AnalyzeError> {
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
    let stdin = path.as_os_str() == "-";
    let name = Path::new("<stdin>");
    Ok(match (format, stdin) {
        (Format::Jsonl, false) => Box::new(JsonlSource::open(path)?),
        (Format::Jsonl, true) => Box::new(JsonlSource::from_reader(name, std::io::stdin())),
        (Format::Csv | Format::Tsv, _) => {
            let delim = if format == Format::Tsv { '\t' } else { ',' };
            if stdin {
                Box::new(CsvSource::from_reader(
                    name,
                    std::io::stdin(),
                    delim,
                    &o.map,
                )?)
            } else {
                Box::new(CsvSource::open(path, delim, &o.map)?)
            }
        }
        (Format::Kernel, false) => Box::new(KernelSource::open(path, o.kernel.clone())?),
        (Format::Kernel, true) => Box::new(KernelSource::from_reader(
            name,
            std::io::stdin(),
            o.kernel.clone(),
        )),
        (Format::Parquet, true) => {
            return Err(AnalyzeError::Input(
                "Parquet cannot be read from standard input".into(),
            ))
        }
        (Format::Parquet, false) => Box::new(ParquetSource::open(path)?),
    })
}

#[derive(Debug, Clone, Copy)]
struct Verdict {
    kind: FailureKind,
    failure_type: FailureType,
    rule: &'static str,
    xid: Option<u32>,
}

/// A pipeline worker that classifies each checked record (with a per-thread cache of
/// verdicts) into a failures-table entry with its payload encoded (on the worker thread, so
/// the writer only builds columns); shared by `analyze` and `faultline ingest`. Write the
/// results with [`write_classified`].
pub fn classifying_worker() -> impl FnMut(FailureRecord) -> Result<Encoded, StoreError> {
    let classifier = Classifier::new();
    let mut memo: Memo<Verdict> = Memo::new(1 << 16);
    move |record: FailureRecord| {
        let v = memo.get_or_insert_with(&record, || verdict(&classifier, &record));
        Encoded::new(Entry::Failure(Box::new(FailureRow {
            record,
            kind: v.kind,
            failure_type: v.failure_type,
            classifier_rule: v.rule.to_string(),
            xid: v.xid,
            template_id: None,
            cluster_id: None,
        })))
    }
}

/// Writes a batch of [`classifying_worker`] results with one commit; the first encoding
/// error stops it before anything is written.
pub fn write_classified(
    store: &mut ParquetStore,
    batch: Vec<Result<Encoded, StoreError>>,
) -> Result<(), StoreError> {
    let batch = batch.into_iter().collect::<Result<Vec<_>, _>>()?;
    store.write_encoded(batch)
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
        ingest::run(
            sources,
            &opts,
            classifying_worker,
            |batch: Vec<Result<Encoded, StoreError>>| {
                if want_classes {
                    for e in batch.iter().flatten() {
                        if let Entry::Failure(f) = e.entry() {
                            task_class.insert(
                                f.record.task_id.as_str().to_string(),
                                f.record.hardware.class,
                            );
                        }
                    }
                }
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
                    action,
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

    #[test]
    fn missing_input_is_named() {
        let e = plan(&[PathBuf::from("/nonexistent/x.jsonl")], None).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.jsonl"));
    }
}
