//! `faultline ingest`: failure logs in any input format → the Parquet history.
//!
//! read (ingest readers, store::import for Parquet) → check → classify (cached per distinct
//! message and hardware, per thread) → failures-table rows with their payload, in Arrow
//! columns per chunk on the worker threads → batches of columns → `ParquetStore::write_columns`,
//! so memory stays bounded whatever the input size.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::Datelike;
use faultline::ingest::{
    self, BadLine, ColumnMap, Format, IngestError, KernelOptions, PipelineOptions, Source, Summary,
};
use faultline::store::{ParquetStore, StoreOptions};
use faultline::Timestamp;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Ingest failure records into the Parquet history under --data.
///
/// Inputs (files or directories) by extension, or all of one --format:
///   .jsonl .json .ndjson   one failure record per line (the JSON schema of `recommend`)
///   .csv .tsv              a header row; columns found by name or mapped with --map
///   .log .txt dmesg* kmsg* kernel logs: NVIDIA Xid/SXid, OOM killer, machine checks,
///                          uncorrected EDAC errors (a corrected one is skipped),
///                          segfaults, kernel crashes (BUG, Oops, panic, lockups), hung tasks
///   .parquet               task_id, worker_id, message (+ optional) columns, or faultline parts
///   -                      standard input (JSONL unless --format)
///
/// A record that does not read is reported as FILE:LINE: REASON on stderr (the first 20,
/// then a count), counted, and the rest goes on; --strict stops at the first one (exit 2),
/// having read every input whole before writing anything, so that it writes nothing:
/// simulator directories too (every failure, action and outcome line).
/// An input given twice (by another path too) is read once.
/// Exit 2 when records were read and every one was rejected; an empty input ingests nothing
/// (exit 0, "read 0 records"). A simulator's output directory (`simulate --out`) is imported
/// whole: each failure, its action and that action's outcome, in log order.
///
/// Example:
///
///   faultline ingest logs/*.jsonl dmesg.log --data history/
///   faultline ingest jobs.csv --data history/ \
///     --map task_id=job,message=msg,worker_id=host,timestamp=time
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Input files or directories (`-` for standard input).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// The data directory (created if absent).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Read every input as this format: jsonl, csv, tsv, kernel, parquet.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// CSV column mapping, FIELD=COLUMN,... (e.g. message=msg,worker_id=host,
    /// hardware.class=platform,timestamp=time); unmapped fields are found by header name,
    /// and FIELD=- reads no column for an optional field (timestamp=- when a `Time` column
    /// holds no date).
    #[arg(long, value_name = "MAP", value_parser = parse_map)]
    map: Option<ColumnMap>,
    #[command(flatten)]
    kernel: KernelArgs,
    /// Stop at the first rejected record (exit 2). The inputs are read whole first (a second
    /// read; standard input is copied to a temporary file), simulator directories included
    /// (every failure, action and outcome line), so a strict run that fails writes nothing.
    #[arg(long)]
    strict: bool,
    /// Ingest again an input this data directory already took in (same path, size and
    /// modification time, listed in DATA/ingested.jsonl); without it such an input is skipped
    /// with a note, so running the same command twice does not double the history, and a
    /// JSON-lines file that grew since, unchanged up to where it ended, is read from there
    /// on (what was appended; a last line caught mid-write, without its line end, is read
    /// again from its start once completed; any other change reads it whole, with a
    /// warning).
    #[arg(long)]
    again: bool,
    /// No progress bar and no per-record rejection messages.
    #[arg(long, short)]
    quiet: bool,
    /// Print the summary as one JSON document: counts, per-file counts (`files`), the first
    /// rejected lines (`rejections`), the inputs not read with why (`left_out`: of unknown
    /// type, or taken in already), and the records dated before 1973 or more than a day
    /// ahead of this machine's clock (`dated_before_1973`, `dated_ahead`).
    #[arg(long)]
    json: bool,
    /// Records per Parquet commit (one part file per date in each). Two commits' records are
    /// in memory at once: one being written, one being filled.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Worker threads (default: one per CPU).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    threads: Option<u64>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse().map_err(|e: IngestError| e.to_string())
}

/// `--map FIELD=COLUMN,...` (shared with `faultline analyze`).
pub(crate) fn parse_map(s: &str) -> Result<ColumnMap, String> {
    ColumnMap::parse(s).map_err(|e| e.to_string())
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).ok_or_else(|| {
        format!("invalid time '{s}' (expected RFC 3339, ISO date-time or epoch seconds)")
    })
}

/// A `--worker` id, checked as a record's is (an audit: an invalid one was refused once per
/// line read, as each record's `worker_id`).
fn parse_worker(s: &str) -> Result<String, String> {
    faultline::WorkerId::new(s)
        .map(|w| w.as_str().to_string())
        .map_err(|e| e.to_string())
}

/// How kernel logs are read: the options `faultline ingest` and `faultline analyze` share.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct KernelArgs {
    /// Kernel logs: worker id of every line (default: the syslog host, else the file stem).
    #[arg(long, value_parser = parse_worker)]
    worker: Option<String>,
    /// Kernel logs: boot time, for relative timestamps ([12.5], kmsg µs); default the epoch.
    #[arg(long, value_parser = parse_time)]
    boot_time: Option<Timestamp>,
    /// Kernel logs: year of syslog timestamps, which have none (default: the year of
    /// --boot-time when given, else this year); 1970–9999.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1970..=9999))]
    year: Option<i32>,
}

impl KernelArgs {
    /// The reader's options: syslog lines without a year are read in --year, else in the
    /// boot's year, else this year.
    pub(crate) fn options(&self) -> KernelOptions {
        let boot_year = self
            .boot_time
            .and_then(|t| t.date_string().get(..4).and_then(|y| y.parse().ok()));
        KernelOptions {
            worker: self.worker.clone(),
            boot_time: self.boot_time,
            year: Some(
                self.year
                    .or(boot_year)
                    .unwrap_or_else(|| chrono::Utc::now().year()),
            ),
        }
    }
}

/// Rejections printed before only counting.
const SHOWN_REJECTIONS: usize = 20;
/// Inputs smaller than this get no progress bar.
const PROGRESS_MIN_BYTES: u64 = 4 << 20;

/// Opens one input; standard input is read from `spool` when it was copied there (--strict
/// reads every input twice).
fn open(
    path: &Path,
    format: Format,
    a: &Args,
    spool: Option<&Spool>,
    tail: Option<&Tail>,
    end: Option<u64>,
) -> anyhow::Result<Box<dyn Source>> {
    let kernel = a.kernel.options();
    let map = a.map.clone().unwrap_or_default();
    if let Some(t) = tail {
        use std::io::Seek;
        let mut f =
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        f.seek(std::io::SeekFrom::Start(t.offset))
            .with_context(|| format!("reading {}", path.display()))?;
        let s = ingest::JsonlSource::from_reader(path, f).starting_at_line(t.line);
        return Ok(Box::new(match end {
            Some(end) => s.up_to(end.saturating_sub(t.offset)),
            None => s,
        }));
    }
    // A JSON-lines file is read up to the size it had when this run began, the size the
    // run's log entry records: lines appended meanwhile are read by the next run, from
    // there (a review: they were taken in by both).
    if let (Format::Jsonl, Some(end)) = (format, end) {
        if path.as_os_str() != "-" && !ingest::is_gzip(path) {
            return Ok(Box::new(ingest::JsonlSource::open(path)?.up_to(end)));
        }
    }
    if let (Some(spool), true) = (spool, path.as_os_str() == "-") {
        let f = std::fs::File::open(&spool.0)
            .with_context(|| format!("reading {}", spool.0.display()))?;
        return Ok(ingest::open_reader(
            Path::new("<stdin>"),
            f,
            format,
            &map,
            &kernel,
        )?);
    }
    ingest::open_source(path, format, &map, &kernel, |p| {
        Ok(Box::new(faultline::analyze::ParquetSource::open(p)?) as Box<dyn Source>)
    })
}

/// Where a grown JSON-lines file is read from: what it held when taken in before ends at
/// byte `offset`, before line `line`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tail {
    offset: u64,
    line: u64,
}

/// A copy of standard input in a temporary file, removed when dropped.
struct Spool(PathBuf);

impl Spool {
    /// Copies standard input to a temporary file.
    fn stdin() -> anyhow::Result<Spool> {
        let path = std::env::temp_dir().join(format!(
            "faultline-ingest-stdin-{}-{}",
            std::process::id(),
            Timestamp::now().as_micros()
        ));
        let spool = Spool(path);
        let mut f = std::fs::File::create(&spool.0)
            .with_context(|| format!("creating {}", spool.0.display()))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut f)
            .with_context(|| format!("copying standard input to {}", spool.0.display()))?;
        Ok(spool)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// --strict: reads every input whole (parse and check, no classification, nothing written)
/// and stops at the first rejected record, so that a strict run that fails writes nothing.
/// The pipeline's inputs first, then each simulator directory (inputs without a format, named
/// by their failures.jsonl), read by `analyze::check_simulation` — the import's own reading
/// without its writes — so every failure, action and outcome line it would reject (a line that
/// does not read, an action past the last failure, an outcome no action asked for) is refused
/// here, by its FILE:LINE and reason. An action with no outcome left (a run cut short) is not
/// a rejection: it is kept without one.
///
/// Chosen over recording what a failed run committed: the history gets nothing from a file
/// with a bad record, and fixing the file and running again ingests it once. It costs a
/// second read of the inputs (standard input is copied to a temporary file for it).
fn validate(
    inputs: &[(PathBuf, Option<Format>)],
    tails: &[Option<Tail>],
    ids: &[Option<(String, u64, u64)>],
    a: &Args,
    spool: Option<&Spool>,
    opts: &PipelineOptions,
    sim: &faultline::analyze::InputOptions,
) -> anyhow::Result<()> {
    let sources = inputs
        .iter()
        .zip(tails)
        .zip(ids)
        .filter_map(|(((p, f), t), id)| {
            f.map(|f| open(p, f, a, spool, t.as_ref(), id.as_ref().map(|id| id.1)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    ingest::run(
        sources,
        opts,
        || |_: faultline::model::FailureRecord| (),
        |_: Vec<()>| Ok::<(), std::convert::Infallible>(()),
        |_: &BadLine| {},
        |_| {},
    )?;
    for (p, _) in inputs.iter().filter(|(_, f)| f.is_none()) {
        let dir = p.parent().unwrap_or(Path::new("."));
        let s = faultline::analyze::check_simulation(dir, sim)
            .with_context(|| format!("checking the simulator directory {}", dir.display()))?;
        // The whole directory is read: the first rejection met is shown, the rest counted.
        let rejected = s.rejected + s.rejected_other;
        if let Some(first) = s.rejections.first() {
            let more = rejected - 1;
            bail!(
                "{first} (strict mode: nothing written{})",
                if more > 0 {
                    format!(
                        "; {more} more rejected line{} in {}",
                        if more == 1 { "" } else { "s" },
                        dir.display()
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct FileJson<'a> {
    path: String,
    format: &'a str,
    read: u64,
    ingested: u64,
    rejected: u64,
    skipped: u64,
}

#[derive(Serialize)]
struct Rejection {
    file: String,
    line: u64,
    reason: String,
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    data: String,
    read: u64,
    ingested: u64,
    rejected: u64,
    skipped: u64,
    /// Records ingested that carried an outcome of their own (`ml_feedback`), not imported.
    feedback: u64,
    bytes: u64,
    batches: u64,
    seconds: f64,
    records_per_s: f64,
    /// Actions and outcomes of simulator directories.
    actions: u64,
    outcomes: u64,
    /// Their action and outcome lines rejected on their own (not counted in `rejected`, which
    /// counts failure records).
    rejected_other: u64,
    /// Actions of simulator directories with no outcome left for them (a run cut short):
    /// kept without one, not rejected.
    actions_without_outcome: u64,
    files: Vec<FileJson<'a>>,
    rejections: Vec<Rejection>,
    /// Inputs not read, each with why (an audit: `--json` listed only what was read, and
    /// the skips were told on standard error alone).
    left_out: Vec<LeftOut>,
    /// Records ingested dated before 1973 (a placeholder, or a kernel time from boot).
    dated_before_1973: u64,
    /// Records ingested dated more than a day ahead of this machine's clock.
    dated_ahead: u64,
}

/// An input `ingest` did not read.
#[derive(Serialize)]
struct LeftOut {
    path: String,
    /// `unknown_type` (a file in an input directory of no known format), `taken_in` (the
    /// data directory took it in already, unchanged; `--again` reads it), `unreadable` (a
    /// file found in an input directory that cannot be read as its format: a CSV whose
    /// header has no column for a required field, beside the logs).
    reason: &'static str,
    /// Why, for `unreadable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// When it was taken in, for `taken_in`.
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<String>,
}

/// The log of inputs a data directory took in, one JSON line each.
const INGESTED_LOG: &str = "ingested.jsonl";

/// One input file ingested into a data directory (a line of `DATA/ingested.jsonl`; fields a
/// later version adds are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
struct Ingested {
    /// The input's canonical path.
    path: String,
    /// Its size in bytes when it was read.
    size: u64,
    /// Its modification time, nanoseconds since the Unix epoch.
    modified_ns: u64,
    /// When it was ingested (RFC 3339).
    at: String,
    /// Records it gave to the history.
    ingested: u64,
    /// Absent: taken in (`ingested` records). `started`: an ingest of it began and, unless a
    /// later line of the same input says otherwise, never finished — some of its records may
    /// be in the history (a run killed after committing a batch). `empty`: read to the end,
    /// nothing taken in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    /// The BLAKE3 hash (hex) of its `size` bytes and the lines they hold, when they end with
    /// a line end: a JSON-lines file that grew past them, unchanged before, is read from
    /// there on the next ingest (absent in logs of earlier versions: read whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<Prefix>,
    /// On a `started` mark: the history's commit point (its manifest's `flushed_seq`) when the
    /// ingest began. While it is still the commit point, nothing of that ingest was committed
    /// and the input is read again without --again (absent in logs of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flushed_before: Option<u64>,
}

/// What [`Ingested::prefix`] holds.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
struct Prefix {
    /// BLAKE3 (hex) of the bytes up to the last line end (all of them when `len` is absent).
    b3: String,
    /// Lines in them (each ends with `\n`).
    lines: u64,
    /// Where the last line end was, when the bytes taken in ended in a line without one (a
    /// log caught mid-write): `b3` and `lines` cover the bytes before that line (absent in
    /// logs of earlier versions, which kept no prefix for such a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    len: Option<u64>,
    /// That unterminated line's BLAKE3 (hex), when it read as a whole JSON document (taken
    /// in, or refused as a record): the next ingest goes on after it once it has its line
    /// end. Absent, the line was cut off mid-write (refused) and is read again from its
    /// start once the file grew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_line: Option<String>,
}

/// The [`Prefix`] of the first `size` bytes of `path`, when there are that many.
fn prefix_of(path: &Path, size: u64) -> Option<Prefix> {
    use std::io::Read;
    if size == 0 {
        return None;
    }
    let f = std::fs::File::open(path).ok()?;
    let mut h = blake3::Hasher::new();
    // The bytes after the latest line end.
    let mut open: Vec<u8> = Vec::new();
    let (mut lines, mut read) = (0u64, 0u64);
    let mut buf = vec![0u8; 1 << 16];
    let mut r = f.take(size);
    loop {
        let n = r.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        match chunk.iter().rposition(|&b| b == b'\n') {
            Some(j) => {
                h.update(&open);
                h.update(&chunk[..=j]);
                open.clear();
                open.extend_from_slice(&chunk[j + 1..]);
                lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            }
            None => open.extend_from_slice(chunk),
        }
        read += n as u64;
    }
    if read != size {
        return None;
    }
    // A byte-order mark at the file's start is the reader's to strip (a review: the line
    // was taken in, but read here as not JSON, and taken in again).
    let body = if lines == 0 {
        open.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&open)
    } else {
        &open
    };
    let whole = !open.is_empty() && serde_json::from_slice::<serde_json::Value>(body).is_ok();
    Some(Prefix {
        b3: h.finalize().to_hex().to_string(),
        lines,
        len: (!open.is_empty()).then(|| size - open.len() as u64),
        last_line: whole.then(|| blake3::hash(&open).to_hex().to_string()),
    })
}

/// Where to go on reading `path`, now `now` bytes, taken in before as its first `size` bytes
/// with `pre` — when it grew and what was taken in is unchanged: after the last line taken
/// in, or at the start of a line that was cut off mid-write then (an audit: a log whose last
/// line was being written was read whole again, and its records stored twice).
fn resume_at(path: &Path, size: u64, now: u64, pre: &Prefix) -> Option<Tail> {
    use std::io::{Read, Seek};
    if now <= size {
        return None;
    }
    let len = pre.len.unwrap_or(size);
    let same = if len == 0 {
        pre.lines == 0 && pre.b3 == blake3::hash(b"").to_hex().to_string()
    } else {
        prefix_of(path, len)
            .is_some_and(|p| p.len.is_none() && p.b3 == pre.b3 && p.lines == pre.lines)
    };
    if !same {
        return None;
    }
    match (pre.len, &pre.last_line) {
        (None, _) => Some(Tail {
            offset: size,
            line: pre.lines + 1,
        }),
        (Some(len), None) => Some(Tail {
            offset: len,
            line: pre.lines + 1,
        }),
        // The whole last line, unchanged and now ended (after white space at most, such as a
        // CRLF's `\r`, a review): on after it.
        (Some(len), Some(b3)) => {
            let mut f = std::fs::File::open(path).ok()?;
            f.seek(std::io::SeekFrom::Start(len)).ok()?;
            let mut line = vec![0u8; (size - len) as usize];
            f.read_exact(&mut line).ok()?;
            if blake3::hash(&line).to_hex().to_string() != *b3 {
                return None;
            }
            let mut after = Vec::new();
            f.take(4096).read_to_end(&mut after).ok()?;
            let end = after.iter().position(|&b| b == b'\n')?;
            after[..end]
                .iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\r'))
                .then(|| Tail {
                    offset: size + end as u64 + 1,
                    line: pre.lines + 2,
                })
        }
    }
}

/// [`Ingested::state`] of an ingest that began.
const STARTED: &str = "started";
/// [`Ingested::state`] of an input read to the end with nothing taken in.
const EMPTY: &str = "empty";

impl Ingested {
    /// The identity of `path` as it is now (`None` for stdin or what cannot be read).
    fn of(path: &Path) -> Option<(String, u64, u64)> {
        if path.as_os_str() == "-" {
            return None;
        }
        let meta = std::fs::metadata(path).ok()?;
        let modified = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        let canonical = std::fs::canonicalize(path).ok()?;
        Some((
            canonical.display().to_string(),
            meta.len(),
            u64::try_from(modified.as_nanos()).unwrap_or(u64::MAX),
        ))
    }

    fn same(&self, id: &(String, u64, u64)) -> bool {
        (&self.path, self.size, self.modified_ns) == (&id.0, id.1, id.2)
    }

    /// Whether the input was taken in (not merely begun, not empty).
    fn taken(&self) -> bool {
        self.state.is_none()
    }
}

/// The inputs `data` took in before (an absent log is an empty one). A line that does not
/// read (a write cut short) is left out with a warning: it must not block later ingests.
fn read_ingested(data: &Path) -> anyhow::Result<Vec<Ingested>> {
    let path = data.join(INGESTED_LOG);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(i, l)| match serde_json::from_str(l) {
            Ok(e) => Some(e),
            Err(e) => {
                say!(
                    "faultline: warning: {}:{}: {e}; the line is left out (its input may be ingested again)",
                    path.display(),
                    i + 1
                );
                None
            }
        })
        .collect())
}

/// Appends `entries` to `data`'s log of inputs (one write of whole lines, then fsync).
fn log_ingested(data: &Path, entries: &[Ingested]) -> anyhow::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let path = data.join(INGESTED_LOG);
    let mut text = String::new();
    // After a write cut short, start on a line of its own.
    if std::fs::read(&path).is_ok_and(|b| b.last().is_some_and(|&c| c != b'\n')) {
        text.push('\n');
    }
    for e in entries {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    super::note_terminal_stdin(&a.inputs);
    // Directories expanded (files of a known format, sorted); simulator output directories
    // are imported whole (`analyze::import_simulation`). Every input in one list, for the
    // check below: the files with their format, then each simulator directory by its
    // failures.jsonl (no format).
    // The data directory is not read as an input when it lies in an input directory.
    // A data directory given (or found) as an input is a history, not a log: its parts hold
    // actions and outcomes besides failures, and its WAL and lock are not records. Refused,
    // naming it, rather than read file by file.
    let mut plan = faultline::analyze::plan_analysis(&a.inputs, a.format, Some(&a.data))?;
    // An input given twice in this run (the same path, or another path to the same file,
    // or a file also inside a directory given) is read once; the notes say so.
    faultline::analyze::given_once(&mut plan);
    if let Some(h) = plan.histories.first() {
        bail!(
            "{} is a faultline data directory (a Parquet history), not a log to ingest: analyze it with `faultline analyze --data {}`, or serve or train from it with --data",
            h.display(),
            h.display()
        );
    }
    for note in plan.notes() {
        say!("faultline: note: {note}");
    }
    super::warn_unused_map(a.map.as_ref(), &plan.failures);
    let walked: std::collections::HashSet<PathBuf> = plan.walked.iter().cloned().collect();
    let mut left_out: Vec<LeftOut> = plan
        .unknown
        .iter()
        .map(|p| LeftOut {
            path: p.display().to_string(),
            reason: "unknown_type",
            at: None,
            detail: None,
        })
        .collect();
    let all: Vec<(PathBuf, Option<Format>)> = plan
        .failures
        .into_iter()
        .map(|(p, f)| (p, Some(f)))
        .chain(
            plan.simulations
                .iter()
                .map(|d| (d.join("failures.jsonl"), None)),
        )
        .collect();
    let mut inputs = all;
    // Each input's identity as it is now, before it is read: a file that grows while it is
    // read is logged as it was, so that what was appended is not mistaken for ingested.
    let mut ids: Vec<Option<(String, u64, u64)>> =
        inputs.iter().map(|(p, _)| Ingested::of(p)).collect();
    let before = read_ingested(&a.data)?;
    // Per input: read from where it ended when it was taken in (a JSON-lines file that grew).
    let mut tails: Vec<Option<Tail>> = vec![None; inputs.len()];
    if !a.again {
        // An input whose latest line is an ingest that began and never finished (a run
        // killed after committing a batch): some of its records may be in the history, and
        // reading it again would add them a second time (an audit found 33,801 duplicates
        // after a rerun). Refused, unless --again.
        // The latest entry for the path, whatever its size and time now (an audit: a log
        // that grew, or was only touched, after the kill was read again from the start, and
        // 100,000 records were stored twice without a word).
        // Only a commit point read as it is (a manifest that reads): a missing or damaged
        // one is rebuilt from the parts when the store opens, with whatever the killed run
        // committed (a review: counted as 0, it let such a rerun add those rows twice).
        let now_flushed = faultline::store::flushed_seq(&a.data).ok().flatten();
        for ((p, _), id) in inputs.iter().zip(&ids) {
            let last = id.as_ref().and_then(|id| {
                before
                    .iter()
                    .rev()
                    .find(|e| e.path == id.0)
                    .map(|e| (e, id))
            });
            if let Some((e, id)) = last.filter(|(e, _)| e.state.as_deref() == Some(STARTED)) {
                // Nothing committed since the mark (the commit point has not moved): the
                // killed run wrote nothing that counts, and reading the input again adds
                // nothing twice (an audit: a run killed before its first commit was refused
                // as if it had).
                if e.flushed_before.is_some() && e.flushed_before == now_flushed {
                    say!(
                        "faultline: note: {}: an earlier ingest of it began at {} and did not finish, but committed nothing (the history's commit point has not moved since): reading it again",
                        p.display(),
                        e.at
                    );
                    continue;
                }
                bail!(
                    "{}: an earlier ingest of it into {} began at {} and did not finish{}, so part of it may be in the history already; ingesting it again would add that part twice. Pass --again to ingest all of it anyway (what was taken in stays), or ingest it into a new data directory",
                    p.display(),
                    a.data.display(),
                    e.at,
                    if e.same(id) {
                        ""
                    } else {
                        " (the file changed since: it grew or was rewritten)"
                    }
                );
            }
        }
        // When each input was taken in before, if it was (as it is now).
        let seen: Vec<Option<String>> = ids
            .iter()
            .map(|id| {
                id.as_ref().and_then(|id| {
                    before
                        .iter()
                        .find(|e| e.same(id) && e.taken())
                        .map(|e| e.at.clone())
                })
            })
            .collect();
        let mut i = 0;
        inputs.retain(|(p, format)| {
            let seen = &seen[i];
            let id = &ids[i];
            let tail = &mut tails[i];
            i += 1;
            if let Some(at) = seen {
                say!(
                    "faultline: note: {} skipped: {} took it in at {at} (same path, size and modification time; --again ingests it again)",
                    p.display(),
                    a.data.display()
                );
                left_out.push(LeftOut {
                    path: p.display().to_string(),
                    reason: "taken_in",
                    at: Some(at.clone()),
                    detail: None,
                });
            } else if let Some(e) = id
                .as_ref()
                .and_then(|id| before.iter().rev().find(|e| e.path == id.0 && e.taken()))
            {
                // A JSON-lines file that grew, unchanged up to where it ended, is read from
                // there (an audit: a log that grew was ingested whole again, its first part
                // twice); any other change reads it whole.
                let grown = e
                    .prefix
                    .as_ref()
                    .filter(|_| *format == Some(Format::Jsonl))
                    .and_then(|pre| resume_at(p, e.size, id.as_ref()?.1, pre));
                if let Some(t) = grown {
                    say!(
                        "faultline: note: {} grew since {} took it in at {} ({} records): read from line {} on",
                        p.display(),
                        a.data.display(),
                        e.at,
                        e.ingested,
                        t.line
                    );
                    *tail = Some(t);
                    return true;
                }
                // A file that changed since (its bad lines fixed, rewritten) is read whole.
                say!(
                    "faultline: warning: {} changed since {} took it in at {} ({} records): all of it is ingested again, and the records it gave then stay",
                    p.display(),
                    a.data.display(),
                    e.at,
                    e.ingested
                );
            }
            seen.is_none()
        });
        let mut i = 0;
        ids.retain(|_| {
            i += 1;
            seen[i - 1].is_none()
        });
        let mut i = 0;
        tails.retain(|_| {
            i += 1;
            seen[i - 1].is_none()
        });
    }
    // A file found in an input directory that cannot be read as its format (a CSV whose
    // header has no column for a required field, beside the logs) is left out with a note,
    // as analyze leaves it out (an audit: ingest stopped at the first such file of a
    // directory analyze read, and --json printed nothing). A file named alone still stops
    // the run. Checked before anything is marked begun.
    let mut keep = vec![true; inputs.len()];
    for (i, ((p, f), t)) in inputs.iter().zip(&tails).enumerate() {
        if let (Some(f), true) = (f, walked.contains(p)) {
            if let Err(e) = open(p, *f, &a, None, t.as_ref(), None) {
                // The error names the file.
                say!("faultline: note: skipped {e:#}");
                left_out.push(LeftOut {
                    path: p.display().to_string(),
                    reason: "unreadable",
                    at: None,
                    detail: Some(format!("{e:#}")),
                });
                keep[i] = false;
            }
        }
    }
    fn kept<T>(v: &mut Vec<T>, keep: &[bool]) {
        let mut i = 0;
        v.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }
    kept(&mut inputs, &keep);
    kept(&mut ids, &keep);
    kept(&mut tails, &keep);
    let mut opts = PipelineOptions::new(Timestamp::now());
    opts.strict = a.strict;
    opts.batch_size = usize::try_from(a.batch).unwrap_or(usize::MAX);
    if let Some(t) = a.threads {
        opts.threads = usize::try_from(t).unwrap_or(1);
    }
    // --strict reads standard input twice: from a copy.
    let stdin_given = inputs
        .iter()
        .any(|(p, f)| f.is_some() && p.as_os_str() == "-");
    let spool = if a.strict && stdin_given {
        Some(Spool::stdin()?)
    } else {
        None
    };
    let sim_opts = faultline::analyze::InputOptions::new(opts.now);
    for (p, _) in inputs.iter().filter(|(_, f)| f.is_none()) {
        faultline::analyze::check_simulation_complete(p.parent().unwrap_or(Path::new(".")))?;
    }
    if a.strict {
        validate(&inputs, &tails, &ids, &a, spool.as_ref(), &opts, &sim_opts)?;
    }
    let sources = inputs
        .iter()
        .zip(&tails)
        .zip(&ids)
        .filter_map(|(((p, f), t), id)| {
            f.map(|f| {
                open(
                    p,
                    f,
                    &a,
                    spool.as_ref(),
                    t.as_ref(),
                    id.as_ref().map(|id| id.1),
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let total: u64 = sources.iter().filter_map(|s| s.len_hint()).sum();
    let mut store = ParquetStore::open(&a.data, StoreOptions::default())
        .with_context(|| format!("opening the store under {}", a.data.display()))?;
    super::print_open_warnings("faultline", &store.open_report().warnings);
    let bar = if a.quiet || !std::io::stderr().is_terminal() || total < PROGRESS_MIN_BYTES {
        ProgressBar::hidden()
    } else {
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        ProgressBar::new(total).with_style(style)
    };
    // Each input is marked begun before anything of it is written: a run killed after
    // committing part of it leaves the mark, which the next run heeds (above).
    let begun = Timestamp::now().to_string();
    // The commit point as the store opened it (an earlier run's WAL replayed, parts above the
    // commit point set aside): what this run commits moves it.
    let flushed_before = faultline::store::flushed_seq(&a.data).ok().flatten();
    let marks: Vec<Ingested> = ids
        .iter()
        .flatten()
        .map(|(path, size, modified_ns)| Ingested {
            path: path.clone(),
            size: *size,
            modified_ns: *modified_ns,
            at: begun.clone(),
            ingested: 0,
            state: Some(STARTED.into()),
            prefix: None,
            flushed_before,
        })
        .collect();
    log_ingested(&a.data, &marks)?;
    let mut shown: Vec<BadLine> = Vec::new();
    let started = Instant::now();
    // Records committed by this run, for an error's message: a run that fails part way (a
    // full disk) has committed whole batches, and the next run is refused for them.
    let mut committed: u64 = 0;
    let mut odd = faultline::analyze::OddTimes::default();
    let summary = ingest::run_rows(
        sources,
        &opts,
        faultline::analyze::classifying_rows,
        faultline::analyze::ClassifiedBatch::new,
        |batch| {
            let n = faultline::ingest::Batch::len(&batch) as u64;
            odd.add(batch.odd_times());
            faultline::analyze::write_classified(&mut store, batch)?;
            committed += n;
            Ok::<(), faultline::store::StoreError>(())
        },
        |bad: &BadLine| {
            if shown.len() < SHOWN_REJECTIONS {
                if !a.quiet {
                    bar.suspend(|| say!("{bad}"));
                }
                shown.push(bad.clone());
            }
        },
        |bytes| bar.set_position(bytes),
    );
    bar.finish_and_clear();
    // An audit: a run that failed on a full disk said only "cannot write ...", though 145,000
    // of its records were in the history, and the rerun was then refused without a number.
    let mut summary = summary.with_context(|| {
        format!(
            "{committed} record{} of this run {} committed to {} before the error; a rerun of the same input is refused (it would add them again) unless --again, which does",
            if committed == 1 { "" } else { "s" },
            if committed == 1 { "was" } else { "were" },
            a.data.display()
        )
    })?;
    // Simulator directories: each failure, its action and its outcome in log order.
    // Actions, outcomes, action or outcome lines rejected on their own, and actions kept
    // without an outcome.
    let mut side = (0u64, 0u64, 0u64, 0u64);
    // Rejected lines not printed: the pipeline's beyond those shown, and each simulator
    // directory's beyond the first it keeps (review: a directory's printed rejections were
    // counted again as "more").
    let mut unshown = summary.rejected.saturating_sub(shown.len() as u64);
    for (p, _) in inputs.iter().filter(|(_, f)| f.is_none()) {
        let dir = p.parent().unwrap_or(Path::new("."));
        // A bar while a simulator directory is read (an audit: 200k records took four
        // minutes without a sign of life).
        let mut bars = super::Bars::new(!a.quiet && std::io::stderr().is_terminal());
        let s = faultline::analyze::import_simulation(dir, &mut store, &sim_opts, &mut bars)
            .with_context(|| format!("importing the simulator directory {}", dir.display()))?;
        if !a.quiet {
            for r in &s.rejections {
                say!("{r}");
            }
        }
        unshown += (s.rejected + s.rejected_other).saturating_sub(s.rejections.len() as u64);
        summary.read += s.read;
        summary.ingested += s.ingested;
        summary.rejected += s.rejected;
        summary.skipped += s.skipped;
        summary.files.push(ingest::FileSummary {
            path: p.clone(),
            read: s.read,
            ingested: s.ingested,
            rejected: s.rejected,
            skipped: s.skipped,
            feedback: 0,
            bytes: 0,
        });
        side.0 += s.actions;
        side.1 += s.outcomes;
        side.2 += s.rejected_other;
        side.3 += s.actions_without_outcome;
    }
    store.flush()?;
    // The history is committed: remember which inputs it took something from, before anything
    // is printed or refused (a reader that stops early must not make them look new).
    let at = Timestamp::now().to_string();
    // Every input marked begun gets its end: taken in, or read with nothing taken in (which
    // a later run reads again, its bad lines perhaps fixed).
    let taken: Vec<Ingested> = ids
        .iter()
        .zip(&summary.files)
        .zip(&inputs)
        .filter_map(|((id, f), (p, format))| {
            id.clone().map(|(path, size, modified_ns)| Ingested {
                prefix: (*format == Some(Format::Jsonl))
                    .then(|| prefix_of(p, size))
                    .flatten(),
                path,
                size,
                modified_ns,
                at: at.clone(),
                ingested: f.ingested,
                state: (f.ingested == 0).then(|| EMPTY.into()),
                flushed_before: None,
            })
        })
        .collect();
    log_ingested(&a.data, &taken)?;
    let seconds = started.elapsed().as_secs_f64();
    if !a.quiet && unshown > 0 {
        say!("... and {unshown} more rejected lines");
    }
    if a.json {
        print_json(&a, &inputs, &summary, side, shown, left_out, &odd, seconds)?;
    } else {
        print_text(&a, &summary, side, seconds)?;
    }
    warn_odd_times(&odd);
    if summary.ingested == 0 && summary.rejected > 0 {
        let stdin_hint = super::stdin_format_hint(a.format, &a.inputs);
        bail!(
            "nothing ingested: all {} records were rejected{stdin_hint}",
            summary.rejected
        );
    }
    if a.strict && summary.rejected + side.2 > 0 {
        // `validate` refused every rejection before the writes; this is only met when an input
        // changed between that check and its import.
        bail!(
            "{} record(s) and {} action or outcome line(s) rejected (--strict)",
            summary.rejected,
            side.2
        );
    }
    Ok(())
}

/// Says how many records ingested are dated where no failure is (before 1973, or more than a
/// day ahead of this machine's clock). They are kept as dated: the history holds what the
/// input said, and `analyze` counts them far apart.
fn warn_odd_times(odd: &faultline::analyze::OddTimes) {
    let plural = |n: u64| if n == 1 { "record is" } else { "records are" };
    if let (n @ 1.., Some(first)) = (odd.before, odd.first_before) {
        say!(
            "faultline: warning: {n} {} dated before 1973 (the earliest {first}): a placeholder such as 0, or kernel times counted from boot (give --boot-time); kept as dated, and `analyze` counts them far apart",
            plural(n)
        );
    }
    if let (n @ 1.., Some(last)) = (odd.ahead, odd.last_ahead) {
        say!(
            "faultline: warning: {n} {} dated more than a day ahead of this machine's clock (the latest {last}): a wrong clock or year (give --year for syslog lines); kept as dated",
            plural(n)
        );
    }
}

fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

fn print_text(
    a: &Args,
    s: &Summary,
    side: (u64, u64, u64, u64),
    seconds: f64,
) -> anyhow::Result<()> {
    let files = s.files.len();
    outln!(
        "read {} record{} from {files} input{}: ingested {}, rejected {}{}{} in {seconds:.2} s ({:.0} records/s) into {}",
        s.read,
        if s.read == 1 { "" } else { "s" },
        if files == 1 { "" } else { "s" },
        s.ingested,
        s.rejected,
        if s.skipped > 0 {
            format!(" ({} lines without a record skipped)", s.skipped)
        } else {
            String::new()
        },
        if side != (0, 0, 0, 0) {
            format!(
                "; with their {} actions and {} outcomes{}{}",
                side.0,
                side.1,
                if side.2 > 0 {
                    format!(" ({} action or outcome lines rejected)", side.2)
                } else {
                    String::new()
                },
                if side.3 > 0 {
                    format!(
                        "; {} action{} without an outcome, kept",
                        side.3,
                        if side.3 == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                }
            )
        } else {
            String::new()
        },
        rate(s.read, seconds),
        a.data.display()
    );
    if s.feedback > 0 {
        say!(
            "faultline: note: {} record{} carried an outcome of {} own (ml_feedback), which is not imported: the history's outcomes answer its own recovery actions",
            s.feedback,
            if s.feedback == 1 { "" } else { "s" },
            if s.feedback == 1 { "its" } else { "their" }
        );
    }
    Ok(())
}

// Each argument is one part of the document, computed in a different stage of the run.
#[allow(clippy::too_many_arguments)]
fn print_json(
    a: &Args,
    inputs: &[(PathBuf, Option<Format>)],
    s: &Summary,
    side: (u64, u64, u64, u64),
    shown: Vec<BadLine>,
    left_out: Vec<LeftOut>,
    odd: &faultline::analyze::OddTimes,
    seconds: f64,
) -> anyhow::Result<()> {
    let doc = SummaryJson {
        data: a.data.display().to_string(),
        read: s.read,
        ingested: s.ingested,
        rejected: s.rejected,
        skipped: s.skipped,
        feedback: s.feedback,
        bytes: s.bytes,
        batches: s.batches,
        seconds,
        records_per_s: rate(s.read, seconds),
        actions: side.0,
        outcomes: side.1,
        rejected_other: side.2,
        actions_without_outcome: side.3,
        files: s
            .files
            .iter()
            .zip(inputs)
            .map(|(f, (_, fmt))| FileJson {
                path: f.path.display().to_string(),
                format: fmt.map_or("simulation", |f| f.as_str()),
                read: f.read,
                ingested: f.ingested,
                rejected: f.rejected,
                skipped: f.skipped,
            })
            .collect(),
        rejections: shown
            .into_iter()
            .map(|b| Rejection {
                file: b.path.display().to_string(),
                line: b.line,
                reason: b.reason,
            })
            .collect(),
        left_out,
        dated_before_1973: odd.before,
        dated_ahead: odd.ahead,
    };
    outln!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(boot: Option<&str>, year: Option<i32>) -> KernelArgs {
        KernelArgs {
            worker: None,
            boot_time: boot.map(|b| Timestamp::parse(b).unwrap()),
            year,
        }
    }

    /// Review finding: --year defaulted to this year even when --boot-time said another.
    #[test]
    fn syslog_lines_take_the_year_of_the_boot_unless_told() {
        assert_eq!(
            args(Some("2024-03-01T00:00:00Z"), None).options().year,
            Some(2024)
        );
        assert_eq!(
            args(Some("2024-03-01T00:00:00Z"), Some(2022))
                .options()
                .year,
            Some(2022)
        );
        assert_eq!(
            args(None, None).options().year,
            Some(chrono::Utc::now().year())
        );
    }
}
