//! CSV/TSV reader: a header row, then one failure per row, columns mapped onto record
//! fields by header name or by an explicit [`ColumnMap`]
//! (`--map message=msg,worker_id=host,hardware.class=platform,timestamp=time`).
//!
//! Quoting follows RFC 4180 (`"a ""quoted"", multi-line field"`); a quote inside an
//! unquoted field is literal. A row is rejected — with the line it starts on — when it has
//! the wrong number of fields, a quoted field never closes (only that line is lost: the
//! lines it swallowed are read again), or a cell does not convert (`batch_size` that is not
//! a positive integer, an unknown hardware class, an unreadable timestamp...).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use super::{file_len, open, Body, Chunk, IngestError, Item, Source};
use crate::model::{
    BrowserInfo, ErrorInfo, FailureReport, HardwareClass, HardwareProfile, Precision, TaskConfig,
    TaskSpec, Timestamp,
};

/// A field of the failure record that a column can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// `task_id` (required).
    TaskId,
    /// `worker_id` (required).
    WorkerId,
    /// `error.message` (required).
    Message,
    /// `error.type`, the caller's hint.
    ErrorType,
    /// `error.exit_code`.
    ExitCode,
    /// `error.stacktrace`.
    Stacktrace,
    /// `hardware.class`.
    HardwareClass,
    /// `hardware.vendor`.
    Vendor,
    /// `hardware.model`.
    DeviceModel,
    /// `hardware.memory_gib`.
    MemoryGib,
    /// `hardware.browser.name`.
    Browser,
    /// `timestamp`.
    Timestamp,
    /// `task.config.model`.
    Model,
    /// `task.config.batch_size`.
    BatchSize,
    /// `task.config.precision`.
    Precision,
    /// `attempt`.
    Attempt,
}

const N_FIELDS: usize = 16;

impl Field {
    /// Every field.
    pub const ALL: [Field; N_FIELDS] = [
        Field::TaskId,
        Field::WorkerId,
        Field::Message,
        Field::ErrorType,
        Field::ExitCode,
        Field::Stacktrace,
        Field::HardwareClass,
        Field::Vendor,
        Field::DeviceModel,
        Field::MemoryGib,
        Field::Browser,
        Field::Timestamp,
        Field::Model,
        Field::BatchSize,
        Field::Precision,
        Field::Attempt,
    ];

    /// The field's path in the record schema.
    pub fn name(self) -> &'static str {
        self.names()[0]
    }

    /// Names accepted on the left of `--map` (the first is canonical).
    fn names(self) -> &'static [&'static str] {
        match self {
            Field::TaskId => &["task_id", "task.task_id"],
            Field::WorkerId => &["worker_id"],
            Field::Message => &["message", "error.message"],
            Field::ErrorType => &["error.type", "error_type", "type"],
            Field::ExitCode => &["exit_code", "error.exit_code"],
            Field::Stacktrace => &["stacktrace", "error.stacktrace"],
            Field::HardwareClass => &["hardware.class", "hardware_class", "platform", "class"],
            Field::Vendor => &["hardware.vendor", "vendor"],
            Field::DeviceModel => &["hardware.model", "device_model"],
            Field::MemoryGib => &["hardware.memory_gib", "memory_gib"],
            Field::Browser => &["browser", "hardware.browser"],
            Field::Timestamp => &["timestamp", "ts"],
            Field::Model => &["model", "task.model", "task.config.model"],
            Field::BatchSize => &["batch_size", "task.config.batch_size"],
            Field::Precision => &["precision", "task.config.precision"],
            Field::Attempt => &["attempt"],
        }
    }

    /// Header names (normalized) that fill this field when no mapping names it.
    fn header_aliases(self) -> &'static [&'static str] {
        match self {
            Field::TaskId => &["task_id", "task", "taskid", "job_id", "job", "jobid"],
            Field::WorkerId => &[
                "worker_id",
                "worker",
                "workerid",
                "host",
                "hostname",
                "node",
                "node_id",
                "machine",
            ],
            Field::Message => &[
                "message",
                "error.message",
                "msg",
                "error",
                "error_message",
                "error_msg",
                "log",
                "text",
            ],
            Field::ErrorType => &["error.type", "error_type", "type"],
            Field::ExitCode => &["exit_code", "error.exit_code", "exitcode", "exit_status"],
            Field::Stacktrace => &["stacktrace", "error.stacktrace", "stack_trace", "traceback"],
            Field::HardwareClass => &[
                "hardware.class",
                "hardware_class",
                "platform",
                "hardware",
                "class",
                "device_type",
            ],
            Field::Vendor => &["hardware.vendor", "vendor"],
            Field::DeviceModel => &["hardware.model", "device_model", "gpu_model", "device"],
            Field::MemoryGib => &["hardware.memory_gib", "memory_gib", "mem_gib"],
            Field::Browser => &["browser", "hardware.browser"],
            Field::Timestamp => &["timestamp", "ts", "time", "datetime", "event_time"],
            Field::Model => &["model", "task.model", "task.config.model", "model_name"],
            Field::BatchSize => &["batch_size", "task.config.batch_size", "batch"],
            Field::Precision => &["precision", "task.config.precision", "dtype"],
            Field::Attempt => &["attempt", "attempts"],
        }
    }

    /// Parses a field name (any of its accepted names, case-insensitive).
    pub fn parse(s: &str) -> Option<Field> {
        let n = normalize(s);
        Field::ALL
            .into_iter()
            .find(|f| f.names().contains(&n.as_str()))
    }

    fn required(self) -> bool {
        matches!(self, Field::TaskId | Field::WorkerId | Field::Message)
    }
}

fn normalize(s: &str) -> String {
    s.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Explicit column mapping: `FIELD=COLUMN,...` (`message=msg,hardware.class=platform`).
/// Fields it does not name are found by header name; `FIELD=-` reads no column for an
/// optional field (e.g. `timestamp=-` when a `Time` column holds times of day).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMap {
    pairs: Vec<(Field, String)>,
}

impl ColumnMap {
    /// Parses `FIELD=COLUMN` pairs separated by commas.
    pub fn parse(spec: &str) -> Result<Self, IngestError> {
        let bad = |reason: String| IngestError::Mapping {
            spec: spec.to_string(),
            reason,
        };
        let mut pairs: Vec<(Field, String)> = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (f, col) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("'{part}' is not FIELD=COLUMN")))?;
            let field = Field::parse(f).ok_or_else(|| {
                let known: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
                bad(format!(
                    "unknown field '{}' (expected one of: {})",
                    f.trim(),
                    known.join(", ")
                ))
            })?;
            let col = col.trim();
            if col.is_empty() {
                return Err(bad(format!(
                    "no column given for {} (`{}=-` reads none, for an optional field)",
                    field.name(),
                    field.name()
                )));
            }
            if col == NO_COLUMN && field.required() {
                return Err(bad(format!(
                    "{} is required: it cannot be left out",
                    field.name()
                )));
            }
            if pairs.iter().any(|(g, _)| *g == field) {
                return Err(bad(format!("{} is mapped twice", field.name())));
            }
            pairs.push((field, col.to_string()));
        }
        Ok(ColumnMap { pairs })
    }

    /// The column mapped to `field`, if any.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, c)| c.as_str())
    }
}

impl FromStr for ColumnMap {
    type Err = IngestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ColumnMap::parse(s)
    }
}

/// The column given to a field to read no column for it (`timestamp=-`).
pub const NO_COLUMN: &str = "-";

/// A mapping resolved against one header: the column index of every field.
#[derive(Debug)]
pub(crate) struct Resolved {
    idx: [Option<usize>; N_FIELDS],
    /// Whether the field's column was found by its header name (not mapped).
    by_name: [bool; N_FIELDS],
    header: Vec<String>,
}

impl Resolved {
    fn new(path: &Path, header: Vec<String>, map: &ColumnMap) -> Result<Self, IngestError> {
        let norm: Vec<String> = header.iter().map(|h| normalize(h)).collect();
        let mut idx = [None; N_FIELDS];
        let mut by_name = [false; N_FIELDS];
        let mut used = vec![false; header.len()];
        // Explicit mappings first, then header names for the rest.
        for (slot, f) in idx.iter_mut().zip(Field::ALL) {
            if let Some(col) = map.get(f).filter(|c| *c != NO_COLUMN) {
                let i = norm
                    .iter()
                    .position(|h| *h == normalize(col))
                    .ok_or_else(|| IngestError::Header {
                        path: path.to_path_buf(),
                        reason: format!(
                            "column '{col}' (mapped to {}) is not in the header (columns: {})",
                            f.name(),
                            header.join(", ")
                        ),
                    })?;
                *slot = Some(i);
                used[i] = true;
            }
        }
        for ((slot, named), f) in idx.iter_mut().zip(&mut by_name).zip(Field::ALL) {
            if slot.is_none() && map.get(f).is_none() {
                *slot = f.header_aliases().iter().find_map(|a| {
                    norm.iter()
                        .enumerate()
                        .position(|(i, h)| !used[i] && h == a)
                });
                if let Some(i) = *slot {
                    used[i] = true;
                    *named = true;
                }
            }
        }
        // A column read under a name the header holds twice: which one is meant? (An audit:
        // `message,message` kept the first and dropped the second without a word.)
        for (f, i) in Field::ALL.into_iter().zip(idx) {
            let Some(i) = i else { continue };
            if let Some(j) = (0..norm.len()).find(|&j| j != i && norm[j] == norm[i]) {
                return Err(IngestError::Header {
                    path: path.to_path_buf(),
                    reason: format!(
                        "column '{}' (read as {}) is in the header twice (columns {} and {}): rename one",
                        header[i],
                        f.name(),
                        i.min(j) + 1,
                        i.max(j) + 1
                    ),
                });
            }
        }
        if let Some(f) = Field::ALL
            .into_iter()
            .zip(idx)
            .find_map(|(f, i)| (f.required() && i.is_none()).then_some(f))
        {
            // One column whose name holds another separator: the file is not split the way
            // it was written (an audit: a `;`-separated file was told to use --map).
            let other = (header.len() == 1)
                .then(|| {
                    [';', '|', '\t', ',']
                        .into_iter()
                        .find(|c| header[0].contains(*c))
                })
                .flatten();
            let hint = match other {
                Some(c) => format!(
                    "; the header is one column holding {c:?}: only ',' (csv) and a tab (tsv, --format tsv) separate columns here, so convert the file (e.g. `tr '{}' ','` when no field holds a comma)",
                    if c == '\t' { "\\t".to_string() } else { c.to_string() }
                ),
                None => format!("; name one with --map {}=COLUMN", f.name()),
            };
            return Err(IngestError::Header {
                path: path.to_path_buf(),
                reason: format!(
                    "no column for {} (columns: {}){hint}",
                    f.name(),
                    header.join(", "),
                ),
            });
        }
        Ok(Resolved {
            idx,
            by_name,
            header,
        })
    }

    fn col(&self, f: Field) -> Option<usize> {
        self.idx[f as usize]
    }
}

/// One record as split from the input: its first line and its fields (or why it could not
/// be split).
#[derive(Debug)]
pub(crate) struct RawRow {
    line: u64,
    fields: Result<Vec<String>, String>,
}

/// Rows per chunk.
const ROWS_PER_CHUNK: usize = 4096;
/// A quoted field may span at most this many lines.
const MAX_RECORD_LINES: usize = 10_000;

/// A CSV or TSV input with its resolved header.
pub struct CsvSource {
    path: Arc<Path>,
    input: Box<dyn BufRead + Send>,
    delimiter: char,
    map: Option<Arc<Resolved>>,
    line: u64,
    pushback: VecDeque<(u64, Vec<u8>)>,
    len: Option<u64>,
}

impl std::fmt::Debug for CsvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSource")
            .field("path", &self.path)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl CsvSource {
    /// Opens a file and resolves its header against `map`; `delimiter` is `,` or `\t`.
    pub fn open(path: &Path, delimiter: char, map: &ColumnMap) -> Result<Self, IngestError> {
        let f = open(path)?;
        let mut s = Self::from_reader(path, f, delimiter, map)?;
        s.len = file_len(path);
        Ok(s)
    }

    /// Reads from any reader; `path` names it in rejections. An empty input has no header
    /// and yields nothing.
    pub fn from_reader(
        path: &Path,
        input: impl Read + Send + 'static,
        delimiter: char,
        map: &ColumnMap,
    ) -> Result<Self, IngestError> {
        let mut s = CsvSource {
            path: Arc::from(path),
            input: Box::new(BufReader::with_capacity(256 * 1024, input)),
            delimiter,
            map: None,
            line: 0,
            pushback: VecDeque::new(),
            len: None,
        };
        loop {
            match s.next_record()? {
                None => return Ok(s),
                Some((_, None)) => continue,
                Some((_, Some(row))) => {
                    let header = row.fields.map_err(|reason| IngestError::Header {
                        path: path.to_path_buf(),
                        reason: format!("header: {reason}"),
                    })?;
                    s.map = Some(Arc::new(Resolved::new(path, header, map)?));
                    return Ok(s);
                }
            }
        }
    }

    /// The next physical line without its line end, with its number and byte length.
    fn next_line(&mut self) -> Result<Option<(u64, Vec<u8>, u64)>, IngestError> {
        if let Some((n, l)) = self.pushback.pop_front() {
            return Ok(Some((n, l, 0)));
        }
        let mut buf = Vec::new();
        let n = self
            .input
            .read_until(b'\n', &mut buf)
            .map_err(|e| IngestError::io(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if buf.ends_with(b"\n") {
            buf.pop();
        }
        if buf.ends_with(b"\r") {
            buf.pop();
        }
        Ok(Some((self.line, buf, n as u64)))
    }

    /// The next record: `(bytes read, None)` for a blank line, `(bytes, Some(row))`
    /// otherwise; `None` at the end.
    fn next_record(&mut self) -> Result<Option<(u64, Option<RawRow>)>, IngestError> {
        let Some((start, first, mut bytes)) = self.next_line()? else {
            return Ok(None);
        };
        if first.iter().all(u8::is_ascii_whitespace) {
            return Ok(Some((bytes, None)));
        }
        let mut bad_utf8 = false;
        let mut text = decode(first, &mut bad_utf8);
        let mut taken: Vec<(u64, Vec<u8>)> = Vec::new();
        // Whether a quoted field is still open, scanned a line at a time: splitting the whole
        // record again after each line was quadratic in a stray quote's run (input audit).
        let mut quotes = Quotes::default();
        quotes.scan(&text, self.delimiter);
        let fields = loop {
            if !quotes.open() {
                break split(&text, self.delimiter)
                    .ok_or_else(|| "unterminated quoted field".to_string());
            }
            match () {
                () if taken.len() + 1 >= MAX_RECORD_LINES => {
                    break Err(format!(
                        "quoted field runs on past {MAX_RECORD_LINES} lines"
                    ))
                }
                () => match self.next_line()? {
                    Some((n, l, b)) => {
                        bytes += b;
                        let from = text.len();
                        text.push('\n');
                        text.push_str(&String::from_utf8_lossy(&l));
                        quotes.scan(&text[from..], self.delimiter);
                        bad_utf8 |= std::str::from_utf8(&l).is_err();
                        taken.push((n, l));
                    }
                    None => break Err("unterminated quoted field".to_string()),
                },
            }
        };
        let fields = match fields {
            Ok(_) if bad_utf8 => Err("invalid UTF-8".to_string()),
            Ok(f) => Ok(f),
            Err(reason) => {
                // Only the opening line is lost: read the swallowed lines again.
                for t in taken.into_iter().rev() {
                    self.pushback.push_front(t);
                }
                Err(reason)
            }
        };
        Ok(Some((
            bytes,
            Some(RawRow {
                line: start,
                fields,
            }),
        )))
    }
}

fn decode(bytes: Vec<u8>, bad: &mut bool) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| {
        *bad = true;
        String::from_utf8_lossy(e.as_bytes()).into_owned()
    })
}

/// Where [`split`] would be after a stretch of text, scanned a piece at a time: inside a
/// quoted field or not, at a field's start or not. A quote just read inside a field may be
/// the first of a doubled `""`; `pending` holds that until the next character.
#[derive(Debug, Default, Clone, Copy)]
struct Quotes {
    in_quotes: bool,
    at_start: bool,
    started: bool,
    pending: bool,
}

impl Quotes {
    fn scan(&mut self, piece: &str, delim: char) {
        if !self.started {
            self.started = true;
            self.at_start = true;
        }
        for c in piece.chars() {
            if self.pending {
                self.pending = false;
                if c == '"' {
                    // A doubled quote: still inside.
                    continue;
                }
                self.in_quotes = false;
            }
            if self.in_quotes {
                if c == '"' {
                    self.pending = true;
                }
            } else if c == delim {
                self.at_start = true;
            } else if c == '"' && self.at_start {
                self.in_quotes = true;
                self.at_start = false;
            } else {
                self.at_start = false;
            }
        }
    }

    /// Whether a quoted field is still open at the end of what was scanned (a quote waiting
    /// for the next character closes it).
    fn open(&self) -> bool {
        self.in_quotes && !self.pending
    }
}

/// Splits one record; `None` when a quoted field is still open at the end of `text`.
fn split(text: &str, delim: char) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut at_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
        } else if c == delim {
            fields.push(std::mem::take(&mut field));
            at_start = true;
        } else if c == '"' && at_start {
            in_quotes = true;
            at_start = false;
        } else {
            field.push(c);
            at_start = false;
        }
    }
    if in_quotes {
        return None;
    }
    fields.push(field);
    Some(fields)
}

impl Source for CsvSource {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len_hint(&self) -> Option<u64> {
        self.len
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, IngestError> {
        let Some(map) = self.map.clone() else {
            return Ok(None);
        };
        let mut rows = Vec::new();
        let (mut bytes, mut skipped) = (0, 0);
        while rows.len() < ROWS_PER_CHUNK {
            match self.next_record()? {
                None => break,
                Some((b, None)) => {
                    bytes += b;
                    skipped += 1;
                }
                Some((b, Some(row))) => {
                    bytes += b;
                    rows.push(row);
                }
            }
        }
        if rows.is_empty() && skipped == 0 {
            return Ok(None);
        }
        Ok(Some(Chunk {
            path: self.path.clone(),
            bytes,
            body: Body::Csv { rows, map, skipped },
        }))
    }
}

/// A time before this, from a column found by its name alone, is taken for a misread column
/// (2000-01-01T00:00:00Z).
const EARLIEST_GUESS: Timestamp = Timestamp::from_micros(946_684_800_000_000);

/// A number read as a time before this (10⁸ s since the epoch, 1973-03-03) is refused from
/// any column, mapped or found by its name: no failure log counts from 1970 in seconds.
const EARLIEST_NUMBER: Timestamp = Timestamp::from_micros(100_000_000_000_000);

/// What a bad time from a column found by its name alone adds to the rejection.
const GUESSED_TIME_HINT: &str = "; the column was taken for the time by its name: \
    `--map timestamp=-` reads no time, `--map timestamp=COLUMN` another column";

/// Converts split rows into reports.
pub(crate) fn convert_rows(rows: Vec<RawRow>, map: &Resolved) -> Vec<Item> {
    rows.into_iter()
        .map(|r| {
            let report = r.fields.and_then(|f| {
                if f.len() != map.header.len() {
                    Err(format!(
                        "expected {} fields, found {}",
                        map.header.len(),
                        f.len()
                    ))
                } else {
                    to_report(f, map)
                }
            });
            (r.line, report)
        })
        .collect()
}

fn to_report(fields: Vec<String>, map: &Resolved) -> Result<FailureReport, String> {
    let mut vals: [Option<String>; N_FIELDS] = Default::default();
    for (slot, f) in vals.iter_mut().zip(Field::ALL) {
        *slot = map
            .col(f)
            .map(|i| fields[i].trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string);
    }
    let mut get = |f: Field| vals[f as usize].take();
    let task_id = get(Field::TaskId).unwrap_or_default();
    let worker_id = get(Field::WorkerId).unwrap_or_default();
    let message = get(Field::Message).unwrap_or_default();
    let col = |f: Field| {
        map.col(f)
            .map(|i| map.header[i].as_str())
            .unwrap_or_default()
    };
    let bad = |f: Field, v: &str, what: &str| format!("column '{}': '{v}' is not {what}", col(f));
    let class = get(Field::HardwareClass)
        .map(|v| {
            v.parse::<HardwareClass>()
                .map_err(|e| format!("column '{}': {e}", col(Field::HardwareClass)))
        })
        .transpose()?;
    let exit_code = get(Field::ExitCode)
        .map(|v| {
            v.parse::<i32>()
                .map_err(|_| bad(Field::ExitCode, &v, "an integer"))
        })
        .transpose()?;
    let memory_gib = get(Field::MemoryGib)
        .map(|v| {
            v.parse::<f64>()
                .map_err(|_| bad(Field::MemoryGib, &v, "a number"))
        })
        .transpose()?;
    let batch_size = get(Field::BatchSize)
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| bad(Field::BatchSize, &v, "a non-negative integer"))
        })
        .transpose()?;
    let attempt = get(Field::Attempt)
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| bad(Field::Attempt, &v, "a non-negative integer"))
        })
        .transpose()?;
    let precision = get(Field::Precision)
        .map(|v| {
            v.parse::<Precision>()
                .map_err(|e| format!("column '{}': {e}", col(Field::Precision)))
        })
        .transpose()?;
    // A column taken for the time by its header name alone may hold something else (an
    // audit: Loghub's `Time` holds times of day, or HDFS's HHMMSS read as epoch seconds in
    // 1970): say so, and how to read no time.
    // The hint is built on a bad value only: nothing is allocated per row.
    let guessed = map.by_name[Field::Timestamp as usize];
    let hint = || if guessed { GUESSED_TIME_HINT } else { "" };
    let timestamp = get(Field::Timestamp)
        .map(|v| {
            let t = Timestamp::parse(&v).ok_or_else(|| {
                format!(
                    "column '{}': invalid timestamp '{v}' (expected RFC 3339, ISO date-time or epoch seconds){}",
                    col(Field::Timestamp),
                    hint()
                )
            })?;
            if guessed && t < EARLIEST_GUESS {
                return Err(format!(
                    "column '{}': '{v}' read as epoch seconds is {t}, before 2000{}",
                    col(Field::Timestamp),
                    hint()
                ));
            }
            // A number this small is no time since the epoch, even in a column named for the
            // time (an audit: HDFS's HHMMSS mapped with `--map timestamp=Time` was read as
            // 1970, and patterns were found on the made-up times).
            if t < EARLIEST_NUMBER && v.trim().parse::<f64>().is_ok() {
                return Err(format!(
                    "column '{}': '{v}' read as epoch seconds is {t}, before 1973: not a time since the epoch (a time of day?); `--map timestamp=-` reads no time",
                    col(Field::Timestamp),
                ));
            }
            Ok(t)
        })
        .transpose()?;
    let vendor = get(Field::Vendor);
    let device_model = get(Field::DeviceModel);
    let browser = get(Field::Browser);
    let hardware =
        (vendor.is_some() || device_model.is_some() || memory_gib.is_some() || browser.is_some())
            .then(|| HardwareProfile {
                class: class.unwrap_or(HardwareClass::Unknown),
                vendor,
                model: device_model,
                memory_gib,
                compute_units: None,
                browser: browser.map(|name| BrowserInfo {
                    name,
                    version: None,
                }),
            });
    let model = get(Field::Model);
    let task = (model.is_some() || batch_size.is_some() || precision.is_some()).then(|| TaskSpec {
        config: TaskConfig {
            model,
            batch_size,
            precision,
            ..TaskConfig::default()
        },
        ..TaskSpec::default()
    });
    Ok(FailureReport {
        task_id,
        worker_id,
        platform: if hardware.is_none() { class } else { None },
        hardware,
        error: ErrorInfo {
            message,
            type_hint: get(Field::ErrorType),
            stacktrace: get(Field::Stacktrace),
            exit_code,
        },
        timestamp,
        task,
        attempt,
        seq: None,
        t_offset_s: None,
        task_is_new: None,
        template: None,
        ml_feedback: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{BadLine, Records};
    use proptest::prelude::*;

    proptest! {
        /// The line-at-a-time quote scan (input audit: splitting the whole record again after
        /// each line was quadratic) agrees with `split` on whether a quoted field is open,
        /// however the text is cut into lines.
        #[test]
        fn the_quote_scan_agrees_with_split(
            text in "[a,\"\n]{0,40}",
            cuts in proptest::collection::vec(0usize..40, 0..4),
        ) {
            let mut q = Quotes::default();
            let mut from = 0;
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= text.len()).collect();
            cuts.sort_unstable();
            for c in cuts.into_iter().chain([text.len()]) {
                q.scan(&text[from..c.max(from)], ',');
                from = c.max(from);
            }
            prop_assert_eq!(q.open(), split(&text, ',').is_none(), "{:?}", text);
        }
    }

    /// Regression (input audit): one stray quote followed by thousands of lines without one
    /// re-split the whole growing record after every line. The record is now scanned once;
    /// the rows after the stray quote are read again as their own records.
    #[test]
    fn a_stray_quote_costs_its_line_only() {
        let mut text = String::from("task_id,worker_id,message\n");
        text.push_str("t0,w1,\"CUDA error\n");
        for i in 1..3000 {
            text.push_str(&format!("t{i},w1,CUDA out of memory\n"));
        }
        let rows = read(&text, ',', "").unwrap();
        assert_eq!(rows.len(), 3000);
        assert!(rows[0].is_err());
        assert_eq!(rows.iter().filter(|r| r.is_ok()).count(), 2999);
    }

    fn read(
        text: &str,
        delim: char,
        map: &str,
    ) -> Result<Vec<Result<FailureReport, BadLine>>, IngestError> {
        let map = ColumnMap::parse(map)?;
        let src = CsvSource::from_reader(
            Path::new("in.csv"),
            std::io::Cursor::new(text.to_string()),
            delim,
            &map,
        )?;
        Ok(Records::new(src).collect())
    }

    /// Regression (audit): a `;`-separated file was told to name a column with --map, which
    /// cannot help: the error says the header is one column and how to convert it.
    #[test]
    fn a_header_split_by_another_separator_is_said_to_be() {
        let e = read("task_id;worker_id;message\nt1;w1;x\n", ',', "")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the header is one column holding ';'") && e.contains("tr ';' ','"),
            "{e}"
        );
        let e = read("a,b\n1,2\n", ',', "").unwrap_err().to_string();
        assert!(e.contains("--map task_id=COLUMN"), "{e}");
    }

    /// Regression (audit): a header holding a column name twice kept the first column and
    /// dropped the second without a word. A column read twice is refused, naming both; a
    /// repeated column nothing reads is harmless.
    #[test]
    fn a_column_read_under_a_repeated_name_is_refused() {
        let e = read("task_id,worker_id,message,message\nt1,w1,a,b\n", ',', "")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "column 'message' (read as message) is in the header twice (columns 3 and 4)"
            ),
            "{e}"
        );
        let e = read(
            "id,w,m,m\nt1,w1,a,b\n",
            ',',
            "task_id=id,worker_id=w,message=m",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("twice"), "{e}");
        let items = read(
            "task_id,worker_id,message,note,note\nt1,w1,a,x,y\n",
            ',',
            "",
        )
        .unwrap();
        assert_eq!(items.len(), 1);
        assert!(items[0].is_ok(), "{items:?}");
    }

    #[test]
    fn default_header_names_fill_the_record() {
        let text = "task_id,worker,message,platform,batch_size,precision,timestamp,exit_code\n\
                    t1,w1,CUDA out of memory,GPU,32,fp16,2025-03-13T00:00:00Z,\n\
                    t2,w2,\"Killed, \"\"OOM\"\"\",cpu,,,1741824000,137\n";
        let items = read(text, ',', "").unwrap();
        assert_eq!(items.len(), 2);
        let a = items[0].as_ref().unwrap();
        assert_eq!((a.task_id.as_str(), a.worker_id.as_str()), ("t1", "w1"));
        assert_eq!(a.platform, Some(HardwareClass::Gpu));
        let cfg = &a.task.as_ref().unwrap().config;
        assert_eq!(
            (cfg.batch_size, cfg.precision),
            (Some(32), Some(Precision::Fp16))
        );
        assert_eq!(a.timestamp.unwrap().as_micros(), 1_741_824_000_000_000);
        let b = items[1].as_ref().unwrap();
        assert_eq!(b.error.message, "Killed, \"OOM\"");
        assert_eq!(b.error.exit_code, Some(137));
        assert_eq!(b.platform, Some(HardwareClass::Cpu));
        assert!(b.task.is_none());
    }

    #[test]
    fn explicit_mapping_wins_and_multi_line_fields_keep_line_numbers() {
        let text = "id,host,msg,platform,time\n\
                    t1,n1,\"Traceback:\n  line 2\n  RuntimeError\",GPU,2025-03-13 00:00:01\n\
                    t2,n2,NCCL watchdog timeout,gpu,2025-03-13 00:00:02\n";
        let items = read(
            text,
            ',',
            "task_id=id, message=msg,worker_id=host,hardware.class=platform,timestamp=time",
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].as_ref().unwrap().error.message,
            "Traceback:\n  line 2\n  RuntimeError"
        );
        assert_eq!(items[1].as_ref().unwrap().worker_id, "n2");
    }

    /// An audit: Loghub's CSVs have a `Time` column of times of day (rejected row by row with
    /// no way out) or, in HDFS, HHMMSS numbers (read as epoch seconds in 1970, silently). A
    /// column taken for the time by its name alone now says so and how to leave it out, a
    /// time before 2000 from it is refused, and `timestamp=-` reads no time.
    #[test]
    fn a_time_column_found_by_name_can_be_left_out() {
        let text = "LineId,Time,Component,Content\n1,20:10:40,spark,Executor lost\n2,203615,dfs,Block lost\n";
        let map = "message=Content,task_id=LineId,worker_id=Component";
        let errs: Vec<String> = read(text, ',', map)
            .unwrap()
            .into_iter()
            .filter_map(|r| r.err().map(|e| e.to_string()))
            .collect();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("in.csv:2: column 'Time': invalid timestamp '20:10:40'"),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("in.csv:3: column 'Time': '203615' read as epoch seconds is 1970-"),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .all(|e| e.contains("`--map timestamp=-` reads no time")),
            "{errs:?}"
        );
        let kept = read(text, ',', &format!("{map},timestamp=-")).unwrap();
        assert_eq!(kept.len(), 2);
        for r in &kept {
            assert!(r.as_ref().unwrap().timestamp.is_none(), "{r:?}");
        }
        // Regression (analyze audit): a mapped column of numbers too small to be times since
        // the epoch (HDFS's HHMMSS, line numbers) was read as 1970, and patterns found on the
        // made-up times. Refused, saying why; a mapped column of real epochs, from 1973 on,
        // is the user's word and stays, before 2000 too.
        let mapped = read(text, ',', &format!("{map},timestamp=LineId")).unwrap();
        assert!(mapped.iter().all(Result::is_err), "{mapped:?}");
        let e = mapped[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("before 1973: not a time since the epoch"), "{e}");
        let epochs = "LineId,At,Component,Content\n1,946684799,spark,Executor lost\n2,100000000,dfs,Block lost\n";
        let kept = read(epochs, ',', &format!("{map},timestamp=At")).unwrap();
        assert!(kept.iter().all(Result::is_ok), "{kept:?}");
        // A required field cannot be left out.
        let e = ColumnMap::parse("message=-").unwrap_err().to_string();
        assert!(e.contains("message is required"), "{e}");
    }

    #[test]
    fn bad_rows_are_rejected_with_line_and_reason() {
        let text = "task_id,worker_id,message,batch_size,platform,ts\n\
                    t1,w1,ok,8,GPU,\n\
                    t2,w2,too,many,fields,here,x\n\
                    \n\
                    t3,w3,bad batch,-1,GPU,\n\
                    t4,w4,bad class,8,QPU,\n\
                    t5,w5,bad time,8,GPU,yesterday\n\
                    t6,w6,\"never closed,8,GPU,\n\
                    t7,w7,after,8,GPU,\n";
        let items = read(text, ',', "").unwrap();
        let errs: Vec<String> = items
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect();
        assert_eq!(
            errs,
            [
                "in.csv:3: expected 6 fields, found 7",
                "in.csv:5: column 'batch_size': '-1' is not a non-negative integer",
                "in.csv:6: column 'platform': unknown hardware class 'QPU' (expected one of: CPU, GPU, TPU, NPU, WEBGPU, WEBNN, DSP, FPGA, ASIC, HYBRID, UNKNOWN)",
                "in.csv:7: column 'ts': invalid timestamp 'yesterday' (expected RFC 3339, ISO date-time or epoch seconds); the column was taken for the time by its name: `--map timestamp=-` reads no time, `--map timestamp=COLUMN` another column",
                "in.csv:8: unterminated quoted field",
            ]
        );
        let ok: Vec<&str> = items
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|r| r.task_id.as_str()))
            .collect();
        assert_eq!(
            ok,
            ["t1", "t7"],
            "the line after an unclosed quote is read again"
        );
    }

    #[test]
    fn tsv_and_hardware_profile_columns() {
        let text = "task\tnode\terror\tvendor\tgpu_model\tmemory_gib\tbrowser\tclass\n\
                    t1\tn1\tdevice lost\t\t\t\tchrome\tWEBGPU\n\
                    t2\tn2\tXid 79\tNVIDIA\tA100\t80\t\tGPU\n";
        let items = read(text, '\t', "").unwrap();
        let a = items[0].as_ref().unwrap();
        let h = a.hardware.as_ref().unwrap();
        assert_eq!(h.class, HardwareClass::Webgpu);
        assert_eq!(h.browser.as_ref().unwrap().name, "chrome");
        let b = items[1].as_ref().unwrap();
        let h = b.hardware.as_ref().unwrap();
        assert_eq!(
            (h.vendor.as_deref(), h.memory_gib),
            (Some("NVIDIA"), Some(80.0))
        );
    }

    #[test]
    fn mapping_errors_are_named() {
        let e = ColumnMap::parse("mesage=msg").unwrap_err().to_string();
        assert!(
            e.starts_with("invalid column mapping 'mesage=msg': unknown field 'mesage' (expected one of: task_id, worker_id, message,"),
            "{e}"
        );
        let e = ColumnMap::parse("message").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid column mapping 'message': 'message' is not FIELD=COLUMN"
        );
        let e = ColumnMap::parse("message=a,error.message=b")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("message is mapped twice"), "{e}");
        let e = read("a,b,c\n", ',', "").unwrap_err().to_string();
        assert_eq!(
            e,
            "in.csv: no column for task_id (columns: a, b, c); name one with --map task_id=COLUMN"
        );
        let e = read("task_id,worker_id,message\n", ',', "message=msg")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "in.csv: column 'msg' (mapped to message) is not in the header (columns: task_id, worker_id, message)"
        );
    }

    #[test]
    fn empty_input_yields_nothing() {
        assert!(read("", ',', "").unwrap().is_empty());
        assert!(read("task_id,worker_id,message\n", ',', "")
            .unwrap()
            .is_empty());
    }
}
