//! Reading failure records out of Parquet files that another tool wrote (or that faultline
//! wrote: the parts of its own failures table) — the Parquet reader of ingest, kept here
//! because arrow and parquet live only in the store.
//!
//! Two layouts are recognised from the file's columns:
//!
//! - **faultline parts** (a `payload` column): each row's record is read back losslessly,
//!   from its payload (schema version 1) or its payload and flat columns (version 2, see
//!   [`schema`]).
//! - **flat tables**: at least `task_id`, `worker_id` and `message` (or `error_message`,
//!   `msg`), plus any of `hardware_class`/`platform`, `vendor`, `device_model`, `memory_gib`,
//!   `browser`, `timestamp`/`ts`, `exit_code`, `error_type`, `stacktrace`, `model`,
//!   `batch_size`, `precision`, `attempt`. Strings may be plain, large, view or dictionary
//!   encoded; numbers any integer or float type; timestamps a timestamp, date, epoch-seconds
//!   number or text column.
//!
//! Rows are read a record batch at a time; a row that does not convert is an
//! [`ImportRowError`] naming its 1-based row, and the rest of the file goes on. A batch that
//! cannot be decoded at all rejects every row from there to the footer's row count, each
//! counted. Snappy, gzip, LZ4, brotli and zstd compressed files are read.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use super::entry::{Entry, Table};
use super::parquet_store::part_layout;
use super::schema;
use super::StoreError;
use crate::model::{
    BrowserInfo, ErrorInfo, FailureRecord, FailureReport, HardwareClass, HardwareProfile,
    Precision, TaskConfig, TaskSpec, Timestamp,
};

/// A row that could not be turned into a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}: {reason}")]
pub struct ImportRowError {
    /// Row in the file, 1-based.
    pub row: u64,
    /// Why.
    pub reason: String,
}

/// Fields a flat table can fill, with the column names accepted for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    TaskId,
    WorkerId,
    Message,
    ErrorType,
    ExitCode,
    Stacktrace,
    Class,
    Vendor,
    DeviceModel,
    MemoryGib,
    Browser,
    Timestamp,
    Model,
    BatchSize,
    Precision,
    Attempt,
}

const COLS: [(Col, &[&str]); 16] = [
    (Col::TaskId, &[schema::TASK_ID, "task", "job_id"]),
    (
        Col::WorkerId,
        &[schema::WORKER_ID, "worker", "host", "hostname", "node"],
    ),
    (
        Col::Message,
        &[
            schema::MESSAGE,
            "error_message",
            "error.message",
            "msg",
            "error",
        ],
    ),
    (Col::ErrorType, &[schema::ERROR_TYPE, "error.type", "type"]),
    (Col::ExitCode, &[schema::EXIT_CODE, "error.exit_code"]),
    (
        Col::Stacktrace,
        &["stacktrace", "stack_trace", "error.stacktrace"],
    ),
    (
        Col::Class,
        &[
            schema::HARDWARE_CLASS,
            "hardware.class",
            "platform",
            "class",
        ],
    ),
    (Col::Vendor, &[schema::VENDOR, "hardware.vendor"]),
    (
        Col::DeviceModel,
        &[schema::DEVICE_MODEL, "hardware.model", "gpu_model"],
    ),
    (Col::MemoryGib, &[schema::MEMORY_GIB, "hardware.memory_gib"]),
    (Col::Browser, &[schema::BROWSER, "hardware.browser"]),
    (Col::Timestamp, &[schema::TIMESTAMP, "ts", "time"]),
    (Col::Model, &[schema::MODEL, "task.model", "model_name"]),
    (
        Col::BatchSize,
        &[schema::BATCH_SIZE, "task.config.batch_size"],
    ),
    (
        Col::Precision,
        &[schema::PRECISION, "task.config.precision"],
    ),
    (Col::Attempt, &[schema::ATTEMPT]),
];

#[derive(Debug)]
enum Layout {
    /// faultline's own part: the `payload` column (and, from schema version 2 on, the flat
    /// columns of a failures part).
    Payload { version: u32, table: Option<Table> },
    /// A flat table: the file column of each field (index into the projected batch).
    Flat(Vec<(Col, String)>),
}

/// One cell, whatever the column's type.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Micros(i64),
}

impl Cell {
    fn text(self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Str(s) => Some(s),
            Cell::Int(i) => Some(i.to_string()),
            Cell::Float(f) => Some(f.to_string()),
            Cell::Bool(b) => Some(b.to_string()),
            Cell::Micros(us) => Some(Timestamp::from_micros(us).to_string()),
        }
    }
}

/// Reads a Parquet file of failure records, a batch at a time.
pub struct ParquetImport {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    layout: Layout,
    rows: u64,
    bytes: u64,
    current: std::vec::IntoIter<Result<FailureReport, ImportRowError>>,
    next_row: u64,
    done: bool,
    /// Set when a batch could not be decoded: the rows from there to the footer's count are
    /// rejected, [`UNREAD_BATCH`] at a time.
    failed: Option<Unread>,
    /// [`UNREAD_MAX`] (a field so that a test can lower it).
    unread_max: u64,
}

/// Rows rejected because the file could not be decoded from `from` on.
#[derive(Debug)]
struct Unread {
    /// The first row not decoded (1-based).
    from: u64,
    /// The next row to reject.
    next: u64,
    /// The last row (the footer's row count, at least `from`).
    last: u64,
}

/// Rows per batch of rejections of an undecodable file's rest (memory stays bounded).
const UNREAD_BATCH: u64 = 8192;

/// Rows of an undecodable file's rest rejected one by one at most. The count comes from the
/// footer, which a damaged or crafted file may give as 9e18: rejecting that many rows one by
/// one ran for ever (input audit). Past this many, the last rejection says how many more
/// rows the footer claims.
const UNREAD_MAX: u64 = 1 << 24;

impl std::fmt::Debug for ParquetImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetImport")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .field("next_row", &self.next_row)
            .finish_non_exhaustive()
    }
}

/// Opens `path` and recognises its layout. Errors name the file: unreadable footer, or
/// neither a `payload` column nor the `task_id`, `worker_id` and `message` columns.
pub fn import_failures(path: &Path) -> Result<ParquetImport, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| StoreError::parquet(path, e))?;
    let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let names: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let find = |aliases: &[&str]| {
        names
            .iter()
            .find(|n| aliases.iter().any(|a| n.eq_ignore_ascii_case(a)))
            .cloned()
    };
    let (layout, wanted): (Layout, Vec<String>) = if names.iter().any(|n| n == schema::PAYLOAD) {
        let (version, table) = part_layout(builder.metadata().file_metadata())
            .map_err(|e| StoreError::Decode(format!("{}: {e}", path.display())))?;
        let wanted = schema::decode_columns(version, table)
            .into_iter()
            .map(str::to_string)
            .collect();
        (Layout::Payload { version, table }, wanted)
    } else {
        let cols: Vec<(Col, String)> = COLS
            .iter()
            .filter_map(|(c, aliases)| find(aliases).map(|n| (*c, n)))
            .collect();
        for (req, what) in [
            (Col::TaskId, "task_id"),
            (Col::WorkerId, "worker_id"),
            (Col::Message, "message"),
        ] {
            if !cols.iter().any(|(c, _)| *c == req) {
                return Err(StoreError::NotFailureRecords(format!(
                    "{}: no {what} column (columns: {}); expected a faultline part (payload) or task_id, worker_id and message columns",
                    path.display(),
                    names.join(", ")
                )));
            }
        }
        let wanted = cols.iter().map(|(_, n)| n.clone()).collect();
        (Layout::Flat(cols), wanted)
    };
    let mask = ProjectionMask::columns(builder.parquet_schema(), wanted.iter().map(String::as_str));
    let reader = builder
        .with_projection(mask)
        .with_batch_size(8192)
        .build()
        .map_err(|e| StoreError::parquet(path, e))?;
    Ok(ParquetImport {
        path: path.to_path_buf(),
        reader,
        layout,
        rows,
        bytes,
        current: Vec::new().into_iter(),
        next_row: 1,
        done: false,
        failed: None,
        unread_max: UNREAD_MAX,
    })
}

impl ParquetImport {
    /// Rows in the file (from its footer).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Size of the file in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is a faultline part (read through its `payload` column).
    pub fn is_faultline_part(&self) -> bool {
        matches!(self.layout, Layout::Payload { .. })
    }

    /// The next record batch's rows with their 1-based row numbers; `None` at the end.
    ///
    /// A batch that cannot be decoded (an unsupported compression codec, a corrupt page)
    /// rejects every row from its first to the footer's row count — the whole file when it
    /// is the first batch — so that the counts say how many records were lost: the first
    /// error gives the reason, the others point to it, and they come `UNREAD_BATCH` (8,192) rows
    /// per call. The rows before it stay read.
    pub fn next_batch(&mut self) -> Option<Vec<(u64, Result<FailureReport, ImportRowError>)>> {
        if self.failed.is_some() {
            return self.unread_batch(None);
        }
        if self.done {
            return None;
        }
        let first = self.next_row;
        match self.reader.next() {
            None => {
                self.done = true;
                None
            }
            Some(Err(e)) => {
                self.done = true;
                let last = self
                    .rows
                    .max(first)
                    .min(first.saturating_add(self.unread_max - 1));
                self.failed = Some(Unread {
                    from: first,
                    next: first,
                    last,
                });
                let reason = if last < self.rows {
                    format!(
                        "cannot decode the file from row {first} on: rows {first} to {last} rejected, and the {} more the footer claims not counted: {e}",
                        self.rows - last
                    )
                } else if first == 1 {
                    format!(
                        "cannot decode the file: all {last} row{} rejected: {e}",
                        if last == 1 { "" } else { "s" }
                    )
                } else {
                    format!(
                        "cannot decode the rest of the file: rows {first} to {last} rejected: {e}"
                    )
                };
                self.unread_batch(Some(reason))
            }
            Some(Ok(batch)) => {
                let n = batch.num_rows() as u64;
                self.next_row += n;
                let out = match &self.layout {
                    Layout::Payload { version, table } if *version >= 2 => {
                        part_rows(&batch, *version, *table, first)
                    }
                    Layout::Payload { .. } => payload_rows(&batch, first),
                    Layout::Flat(cols) => flat_rows(&batch, cols, first),
                };
                Some(
                    out.into_iter()
                        .enumerate()
                        .map(|(i, r)| (first + i as u64, r))
                        .collect(),
                )
            }
        }
    }
}

impl ParquetImport {
    /// The next rows rejected after a batch that could not be decoded (`reason` for the
    /// first of them); `None` once the footer's count is reached.
    fn unread_batch(
        &mut self,
        reason: Option<String>,
    ) -> Option<Vec<(u64, Result<FailureReport, ImportRowError>)>> {
        let u = self.failed.as_mut()?;
        if u.next > u.last {
            self.failed = None;
            return None;
        }
        let end = u.last.min(u.next + UNREAD_BATCH - 1);
        let mut reason = reason;
        let out = (u.next..=end)
            .map(|row| {
                let reason = reason.take().unwrap_or_else(|| {
                    format!(
                        "not read: the file cannot be decoded from row {} on",
                        u.from
                    )
                });
                (row, Err(ImportRowError { row, reason }))
            })
            .collect();
        u.next = end + 1;
        self.next_row = u.next;
        Some(out)
    }
}

impl Iterator for ParquetImport {
    type Item = Result<FailureReport, ImportRowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.current.next() {
                return Some(r);
            }
            let batch = self.next_batch()?;
            self.current = batch
                .into_iter()
                .map(|(_, r)| r)
                .collect::<Vec<_>>()
                .into_iter();
        }
    }
}

/// The report a logged record came from.
pub fn report_of(record: FailureRecord) -> FailureReport {
    FailureReport {
        task_id: record.task_id.as_str().to_string(),
        worker_id: record.worker_id.as_str().to_string(),
        hardware: Some(record.hardware),
        platform: None,
        error: record.error,
        timestamp: Some(record.timestamp),
        task: Some(record.task),
        attempt: None,
        seq: None,
        t_offset_s: None,
        task_is_new: None,
        template: None,
        ml_feedback: None,
    }
}

/// The failures of a record batch of a faultline part of schema version 2 or later.
fn part_rows(
    batch: &RecordBatch,
    version: u32,
    table: Option<Table>,
    first: u64,
) -> Vec<Result<FailureReport, ImportRowError>> {
    let row = |i: usize| first + i as u64;
    match schema::decode_rows(batch, version, table) {
        Ok(rows) => rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| match r {
                Ok(e) => failure_of(e).map_err(|reason| ImportRowError {
                    row: row(i),
                    reason,
                }),
                Err(e) => Err(ImportRowError {
                    row: row(i),
                    reason: format!("invalid row: {e}"),
                }),
            })
            .collect(),
        Err(reason) => (0..batch.num_rows())
            .map(|i| {
                Err(ImportRowError {
                    row: row(i),
                    reason: reason.clone(),
                })
            })
            .collect(),
    }
}

/// The report of a failure entry; another entry is an error.
fn failure_of(e: Entry) -> Result<FailureReport, String> {
    match e {
        Entry::Failure(f) => Ok(report_of(f.record)),
        other => Err(format!(
            "a {} entry, not a failure",
            other.table().dir_name()
        )),
    }
}

fn payload_rows(batch: &RecordBatch, first: u64) -> Vec<Result<FailureReport, ImportRowError>> {
    let n = batch.num_rows();
    let col = batch
        .column_by_name(schema::PAYLOAD)
        .map(|c| cells(c.as_ref()));
    let Some(Ok(col)) = col else {
        let reason = match col {
            Some(Err(e)) => e,
            _ => "no payload column".to_string(),
        };
        return (0..n)
            .map(|i| {
                Err(ImportRowError {
                    row: first + i as u64,
                    reason: reason.clone(),
                })
            })
            .collect();
    };
    col.into_iter()
        .enumerate()
        .map(|(i, cell)| {
            let row = first + i as u64;
            let bad = |reason: String| ImportRowError { row, reason };
            let text = cell.text().ok_or_else(|| bad("empty payload".into()))?;
            match serde_json::from_str::<Entry>(&text) {
                Ok(e) => failure_of(e).map_err(bad),
                Err(e) => Err(bad(format!("invalid payload: {e}"))),
            }
        })
        .collect()
}

fn flat_rows(
    batch: &RecordBatch,
    cols: &[(Col, String)],
    first: u64,
) -> Vec<Result<FailureReport, ImportRowError>> {
    let n = batch.num_rows();
    let mut columns: Vec<(Col, String, Vec<Cell>)> = Vec::with_capacity(cols.len());
    let mut broken: Option<String> = None;
    for (c, name) in cols {
        match batch.column_by_name(name).map(|a| cells(a.as_ref())) {
            Some(Ok(v)) => columns.push((*c, name.clone(), v)),
            Some(Err(e)) => broken = Some(format!("column '{name}': {e}")),
            None => broken = Some(format!("column '{name}' is missing from a batch")),
        }
    }
    if let Some(reason) = broken {
        return (0..n)
            .map(|i| {
                Err(ImportRowError {
                    row: first + i as u64,
                    reason: reason.clone(),
                })
            })
            .collect();
    }
    (0..n)
        .map(|i| {
            let mut row = Row {
                cells: columns
                    .iter_mut()
                    .map(|(c, name, v)| {
                        (*c, name.as_str(), std::mem::replace(&mut v[i], Cell::Null))
                    })
                    .collect(),
            };
            row.report().map_err(|reason| ImportRowError {
                row: first + i as u64,
                reason,
            })
        })
        .collect()
}

struct Row<'a> {
    cells: Vec<(Col, &'a str, Cell)>,
}

impl Row<'_> {
    fn take(&mut self, c: Col) -> Option<(String, Cell)> {
        self.cells
            .iter_mut()
            .find(|(k, _, _)| *k == c)
            .map(|(_, name, cell)| (name.to_string(), std::mem::replace(cell, Cell::Null)))
            .filter(|(_, cell)| *cell != Cell::Null)
    }

    fn text(&mut self, c: Col) -> Option<String> {
        self.take(c)
            .and_then(|(_, cell)| cell.text())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    fn int<T: TryFrom<i64> + FromStr>(&mut self, c: Col, what: &str) -> Result<Option<T>, String> {
        let Some((name, cell)) = self.take(c) else {
            return Ok(None);
        };
        let bad = |v: &dyn std::fmt::Display| format!("column '{name}': {v} is not {what}");
        match cell {
            Cell::Int(i) => T::try_from(i).map(Some).map_err(|_| bad(&i)),
            Cell::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => {
                T::try_from(f as i64).map(Some).map_err(|_| bad(&f))
            }
            Cell::Str(s) if s.trim().is_empty() => Ok(None),
            Cell::Str(s) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| bad(&format!("'{s}'"))),
            other => Err(bad(&format!("{other:?}"))),
        }
    }

    fn report(&mut self) -> Result<FailureReport, String> {
        let task_id = self.text(Col::TaskId).unwrap_or_default();
        let worker_id = self.text(Col::WorkerId).unwrap_or_default();
        let message = self
            .take(Col::Message)
            .and_then(|(_, c)| c.text())
            .unwrap_or_default();
        let class = match self.take(Col::Class) {
            Some((name, cell)) => match cell.text() {
                Some(s) if !s.trim().is_empty() => {
                    Some(HardwareClass::from_str(&s).map_err(|e| format!("column '{name}': {e}"))?)
                }
                _ => None,
            },
            None => None,
        };
        let precision = match self.take(Col::Precision) {
            Some((name, cell)) => match cell.text() {
                Some(s) if !s.trim().is_empty() => {
                    Some(Precision::from_str(&s).map_err(|e| format!("column '{name}': {e}"))?)
                }
                _ => None,
            },
            None => None,
        };
        let memory_gib = match self.take(Col::MemoryGib) {
            Some((_, Cell::Float(f))) => Some(f),
            Some((_, Cell::Int(i))) => Some(i as f64),
            Some((name, Cell::Str(s))) => Some(
                s.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("column '{name}': '{s}' is not a number"))?,
            ),
            Some((name, other)) => {
                return Err(format!("column '{name}': {other:?} is not a number"))
            }
            None => None,
        };
        let timestamp = match self.take(Col::Timestamp) {
            // A Parquet time or date, within the years a timestamp may give (a time outside
            // them could not be stored and read back: review).
            Some((name, Cell::Micros(us))) => {
                Some(Timestamp::from_micros_checked(us).ok_or_else(|| {
                    format!("column '{name}': {us} µs since the epoch is outside the years 0000-9999")
                })?)
            }
            // Epoch seconds, or ms/µs/ns by magnitude (`Timestamp::from_epoch`).
            Some((name, Cell::Int(x))) => Some(Timestamp::from_epoch(x).ok_or_else(|| {
                format!("column '{name}': {x} is out of range for a timestamp")
            })?),
            Some((name, Cell::Float(x))) => Some(Timestamp::from_epoch_f64(x).ok_or_else(|| {
                format!("column '{name}': {x} is not a timestamp")
            })?),
            Some((name, Cell::Str(s))) => Some(Timestamp::parse(&s).ok_or_else(|| {
                format!("column '{name}': invalid timestamp '{s}' (expected RFC 3339, ISO date-time or epoch seconds)")
            })?),
            Some((name, other)) => {
                return Err(format!("column '{name}': {other:?} is not a timestamp"))
            }
            None => None,
        };
        let exit_code = self.int::<i32>(Col::ExitCode, "an exit code")?;
        let batch_size = self.int::<u32>(Col::BatchSize, "a non-negative integer")?;
        let attempt = self.int::<u32>(Col::Attempt, "a non-negative integer")?;
        let vendor = self.text(Col::Vendor);
        let device_model = self.text(Col::DeviceModel);
        let browser = self.text(Col::Browser);
        let hardware = (vendor.is_some()
            || device_model.is_some()
            || memory_gib.is_some()
            || browser.is_some())
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
        let model = self.text(Col::Model);
        let task =
            (model.is_some() || batch_size.is_some() || precision.is_some()).then(|| TaskSpec {
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
                type_hint: self.text(Col::ErrorType),
                stacktrace: self.take(Col::Stacktrace).and_then(|(_, c)| c.text()),
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
}

/// Every cell of a column, or why the column's type is not readable.
fn cells(a: &dyn Array) -> Result<Vec<Cell>, String> {
    let n = a.len();
    let null = |i: usize| a.is_null(i);
    macro_rules! map {
        ($arr:expr, |$v:ident| $e:expr) => {{
            let arr = $arr;
            (0..n)
                .map(|i| {
                    if null(i) {
                        Cell::Null
                    } else {
                        let $v = arr.value(i);
                        $e
                    }
                })
                .collect()
        }};
    }
    Ok(match a.data_type() {
        DataType::Null => vec![Cell::Null; n],
        DataType::Utf8 => map!(a.as_string::<i32>(), |v| Cell::Str(v.to_string())),
        DataType::LargeUtf8 => map!(a.as_string::<i64>(), |v| Cell::Str(v.to_string())),
        DataType::Utf8View => map!(a.as_string_view(), |v| Cell::Str(v.to_string())),
        DataType::Boolean => map!(a.as_boolean(), |v| Cell::Bool(v)),
        DataType::Int8 => map!(a.as_primitive::<Int8Type>(), |v| Cell::Int(v.into())),
        DataType::Int16 => map!(a.as_primitive::<Int16Type>(), |v| Cell::Int(v.into())),
        DataType::Int32 => map!(a.as_primitive::<Int32Type>(), |v| Cell::Int(v.into())),
        DataType::Int64 => map!(a.as_primitive::<Int64Type>(), |v| Cell::Int(v)),
        DataType::UInt8 => map!(a.as_primitive::<UInt8Type>(), |v| Cell::Int(v.into())),
        DataType::UInt16 => map!(a.as_primitive::<UInt16Type>(), |v| Cell::Int(v.into())),
        DataType::UInt32 => map!(a.as_primitive::<UInt32Type>(), |v| Cell::Int(v.into())),
        DataType::UInt64 => map!(a.as_primitive::<UInt64Type>(), |v| i64::try_from(v)
            .map_or(Cell::Float(v as f64), Cell::Int)),
        DataType::Float16 => map!(a.as_primitive::<Float16Type>(), |v| Cell::Float(v.to_f64())),
        DataType::Float32 => map!(a.as_primitive::<Float32Type>(), |v| Cell::Float(v.into())),
        DataType::Float64 => map!(a.as_primitive::<Float64Type>(), |v| Cell::Float(v)),
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => map!(a.as_primitive::<TimestampSecondType>(), |v| {
                Cell::Micros(v.saturating_mul(1_000_000))
            }),
            TimeUnit::Millisecond => {
                map!(a.as_primitive::<TimestampMillisecondType>(), |v| {
                    Cell::Micros(v.saturating_mul(1_000))
                })
            }
            TimeUnit::Microsecond => {
                map!(a.as_primitive::<TimestampMicrosecondType>(), |v| {
                    Cell::Micros(v)
                })
            }
            TimeUnit::Nanosecond => {
                map!(a.as_primitive::<TimestampNanosecondType>(), |v| {
                    Cell::Micros(v.div_euclid(1_000))
                })
            }
        },
        DataType::Date32 => map!(a.as_primitive::<Date32Type>(), |v| Cell::Micros(
            i64::from(v).saturating_mul(86_400_000_000)
        )),
        DataType::Date64 => map!(a.as_primitive::<Date64Type>(), |v| Cell::Micros(
            v.saturating_mul(1_000)
        )),
        DataType::Dictionary(_, _) => {
            let dict = a
                .as_any_dictionary_opt()
                .ok_or_else(|| "unreadable dictionary column".to_string())?;
            let values = cells(dict.values().as_ref())?;
            let keys = dict.normalized_keys();
            (0..n)
                .map(|i| {
                    if null(i) {
                        Cell::Null
                    } else {
                        keys.get(i)
                            .and_then(|&k| values.get(k))
                            .cloned()
                            .unwrap_or(Cell::Null)
                    }
                })
                .collect()
        }
        other => return Err(format!("unsupported column type {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{
        DictionaryArray, Float64Array, Int64Array, StringArray, StringViewArray,
        TimestampMillisecondArray, UInt32Array,
    };
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;

    use crate::store::{HistoryStore, ParquetStore, StoreOptions, Table};

    fn write(path: &Path, cols: Vec<(&str, Arc<dyn Array>)>) {
        let schema = Arc::new(Schema::new(
            cols.iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch =
            RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect())
                .unwrap();
        let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    /// Five rows (tasks t1..t5) written with `compression`, in row groups of `group` rows.
    fn write_five(path: &Path, compression: Compression, group: usize) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("task_id", DataType::Utf8, false),
            Field::new("worker_id", DataType::Utf8, false),
            Field::new("message", DataType::Utf8, false),
            Field::new("ts", DataType::Int64, false),
        ]));
        let tasks: Vec<String> = (1..=5).map(|i| format!("t{i}")).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(tasks)),
                Arc::new(StringArray::from(vec!["w1"; 5])),
                Arc::new(StringArray::from(vec!["CUDA out of memory"; 5])),
                // Epoch milliseconds, as pandas and Spark often write them.
                Arc::new(Int64Array::from(vec![1_741_824_000_123; 5])),
            ],
        )
        .unwrap();
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(group))
            .build();
        let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    /// Overwrites the column chunks of row groups `groups` with bytes that decode as nothing.
    fn corrupt(path: &Path, groups: std::ops::RangeFrom<usize>) {
        let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
            .unwrap()
            .metadata()
            .clone();
        let mut bytes = std::fs::read(path).unwrap();
        for g in meta.row_groups().iter().skip(groups.start) {
            for c in g.columns() {
                let (start, len) = c.byte_range();
                bytes[start as usize..(start + len) as usize].fill(0xFF);
            }
        }
        std::fs::write(path, bytes).unwrap();
    }

    /// Regression: only zstd and uncompressed files were read; snappy (pyarrow's and
    /// Spark's default), gzip, lz4 and brotli gave "disabled feature at compile time".
    #[test]
    fn every_usual_compression_codec_is_read() {
        let dir = tempfile::tempdir().unwrap();
        for (name, c) in [
            ("snappy", Compression::SNAPPY),
            ("gzip", Compression::GZIP(Default::default())),
            ("lz4", Compression::LZ4_RAW),
            ("lz4_hadoop", Compression::LZ4),
            ("brotli", Compression::BROTLI(Default::default())),
            ("zstd", Compression::ZSTD(Default::default())),
            ("none", Compression::UNCOMPRESSED),
        ] {
            let p = dir.path().join(format!("{name}.parquet"));
            write_five(&p, c, 2);
            let v = all(&p);
            assert_eq!(v.len(), 5, "{name}");
            for (i, r) in v.iter().enumerate() {
                let r = r.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(r.task_id, format!("t{}", i + 1), "{name}");
                // Regression: epoch milliseconds in a number column were read as seconds.
                assert_eq!(
                    r.timestamp,
                    Some(Timestamp::from_micros(1_741_824_000_123_000)),
                    "{name}"
                );
            }
        }
    }

    /// Regression: a file that could not be decoded counted as one rejected record, and its
    /// other rows appeared in no count.
    #[test]
    fn an_undecodable_file_rejects_every_row_of_its_footer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("broken.parquet");
        write_five(&p, Compression::SNAPPY, 2);
        corrupt(&p, 0..);
        let imp = import_failures(&p).unwrap();
        assert_eq!(imp.rows(), 5, "the footer still reads");
        let v: Vec<_> = imp.collect();
        assert_eq!(v.len(), 5);
        let errs: Vec<ImportRowError> = v.into_iter().map(|r| r.unwrap_err()).collect();
        assert_eq!(
            errs.iter().map(|e| e.row).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert!(
            errs[0]
                .to_string()
                .starts_with("row 1: cannot decode the file: all 5 rows rejected: "),
            "{}",
            errs[0]
        );
        assert_eq!(
            errs[4].to_string(),
            "row 5: not read: the file cannot be decoded from row 1 on"
        );

        // Regression (input audit): a footer claiming 9e18 rows had them rejected one by one,
        // for ever. Past the cap the rest is said, not counted row by row.
        let mut imp = import_failures(&p).unwrap();
        imp.rows = 9_000_000_000_000_000_000;
        imp.unread_max = 3;
        let errs: Vec<String> = imp.map(|r| r.unwrap_err().to_string()).collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with(
                "row 1: cannot decode the file from row 1 on: rows 1 to 3 rejected, and the 8999999999999999997 more the footer claims not counted: "
            ),
            "{}",
            errs[0]
        );

        // Only the later row groups broken: the rows before stay read, the rest rejected.
        let p = dir.path().join("half.parquet");
        write_five(&p, Compression::UNCOMPRESSED, 2);
        corrupt(&p, 1..);
        let mut imp = import_failures(&p).unwrap();
        // Batches of one row group each (the reader's usual batches span row groups).
        imp.reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&p).unwrap())
            .unwrap()
            .with_batch_size(2)
            .build()
            .unwrap();
        let mut rows = Vec::new();
        while let Some(b) = imp.next_batch() {
            rows.extend(b);
        }
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5],
            "every row once, in order"
        );
        assert!(rows[0].1.is_ok() && rows[1].1.is_ok());
        let bad: Vec<String> = rows[2..]
            .iter()
            .map(|r| r.1.as_ref().unwrap_err().to_string())
            .collect();
        assert!(
            bad[0].starts_with("row 3: cannot decode the rest of the file: rows 3 to 5 rejected: "),
            "{}",
            bad[0]
        );
        assert_eq!(
            bad[2],
            "row 5: not read: the file cannot be decoded from row 3 on"
        );
    }

    /// A number column of epoch times is read in the unit its magnitude says.
    #[test]
    fn number_timestamps_follow_the_epoch_magnitude_rule() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ts.parquet");
        write(
            &p,
            vec![
                (
                    "task_id",
                    Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
                ),
                ("worker_id", Arc::new(StringArray::from(vec!["w"; 4]))),
                ("message", Arc::new(StringArray::from(vec!["m"; 4]))),
                (
                    "timestamp",
                    Arc::new(Float64Array::from(vec![
                        1_741_824_000.5,
                        1_741_824_000_500.0,
                        1_741_824_000_500_000.0,
                        f64::NAN,
                    ])),
                ),
            ],
        );
        let v = all(&p);
        for r in &v[..3] {
            assert_eq!(
                r.as_ref().unwrap().timestamp,
                Some(Timestamp::from_micros(1_741_824_000_500_000))
            );
        }
        assert_eq!(
            v[3].as_ref().unwrap_err().to_string(),
            "row 4: column 'timestamp': NaN is not a timestamp"
        );
    }

    /// Review finding: a Parquet TIMESTAMP or DATE cell outside the years 0000-9999 was taken
    /// as it was and written where it could not be read back; it is refused, naming the
    /// column, like an out-of-range number.
    #[test]
    fn a_parquet_time_outside_the_years_0000_to_9999_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.parquet");
        write(
            &p,
            vec![
                ("task_id", Arc::new(StringArray::from(vec!["a", "b"]))),
                ("worker_id", Arc::new(StringArray::from(vec!["w"; 2]))),
                ("message", Arc::new(StringArray::from(vec!["m"; 2]))),
                (
                    "timestamp",
                    Arc::new(arrow_array::TimestampMicrosecondArray::from(vec![
                        1_741_824_000_000_000,
                        -62_167_219_201_000_000,
                    ])),
                ),
            ],
        );
        let v = all(&p);
        assert_eq!(
            v[0].as_ref().unwrap().timestamp,
            Some(Timestamp::from_micros(1_741_824_000_000_000))
        );
        let e = v[1].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("row 2: column 'timestamp'") && e.contains("0000-9999"),
            "{e}"
        );
    }

    fn all(path: &Path) -> Vec<Result<FailureReport, ImportRowError>> {
        import_failures(path).unwrap().collect()
    }

    #[test]
    fn flat_table_with_mixed_column_types() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ext.parquet");
        let keys = arrow_array::Int8Array::from(vec![Some(0), Some(1), None, Some(0)]);
        let classes = DictionaryArray::new(keys, Arc::new(StringArray::from(vec!["GPU", "cpu"])));
        write(
            &p,
            vec![
                ("task_id", Arc::new(Int64Array::from(vec![1, 2, 3, 4]))),
                (
                    "host",
                    Arc::new(StringViewArray::from(vec!["n1", "n2", "n3", "n4"])),
                ),
                (
                    "error_message",
                    Arc::new(StringArray::from(vec![
                        Some("CUDA out of memory"),
                        Some("Killed"),
                        None,
                        Some("x"),
                    ])),
                ),
                ("platform", Arc::new(classes)),
                (
                    "ts",
                    Arc::new(TimestampMillisecondArray::from(vec![
                        Some(1_741_824_000_000),
                        None,
                        Some(0),
                        Some(5),
                    ])),
                ),
                (
                    "exit_code",
                    Arc::new(Int64Array::from(vec![None, Some(137), None, Some(1 << 40)])),
                ),
                (
                    "batch_size",
                    Arc::new(UInt32Array::from(vec![Some(32), None, None, None])),
                ),
                (
                    "memory_gib",
                    Arc::new(Float64Array::from(vec![Some(80.0), None, None, None])),
                ),
                (
                    "precision",
                    Arc::new(StringArray::from(vec![Some("fp16"), None, None, None])),
                ),
                ("unrelated", Arc::new(Int64Array::from(vec![0, 0, 0, 0]))),
            ],
        );
        let imp = import_failures(&p).unwrap();
        assert_eq!(imp.rows(), 4);
        assert!(!imp.is_faultline_part());
        let v = all(&p);
        let a = v[0].as_ref().unwrap();
        assert_eq!((a.task_id.as_str(), a.worker_id.as_str()), ("1", "n1"));
        assert_eq!(a.error.message, "CUDA out of memory");
        let h = a.hardware.as_ref().unwrap();
        assert_eq!((h.class, h.memory_gib), (HardwareClass::Gpu, Some(80.0)));
        assert_eq!(
            a.timestamp,
            Some(Timestamp::from_micros(1_741_824_000_000_000))
        );
        let cfg = &a.task.as_ref().unwrap().config;
        assert_eq!(
            (cfg.batch_size, cfg.precision),
            (Some(32), Some(Precision::Fp16))
        );
        let b = v[1].as_ref().unwrap();
        assert_eq!(
            (b.platform, b.error.exit_code),
            (Some(HardwareClass::Cpu), Some(137))
        );
        assert_eq!(b.timestamp, None);
        let c = v[2].as_ref().unwrap();
        assert_eq!((c.error.message.as_str(), c.platform), ("", None));
        assert_eq!(
            v[3].as_ref().unwrap_err().to_string(),
            "row 4: column 'exit_code': 1099511627776 is not an exit code"
        );
    }

    #[test]
    fn missing_required_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.parquet");
        write(
            &p,
            vec![
                ("task_id", Arc::new(StringArray::from(vec!["t"]))),
                ("message", Arc::new(StringArray::from(vec!["m"]))),
            ],
        );
        let e = import_failures(&p).unwrap_err().to_string();
        assert!(
            e.contains("bad.parquet: no worker_id column (columns: task_id, message)"),
            "{e}"
        );
        let e = import_failures(&dir.path().join("none.parquet"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.parquet: "), "{e}");
        std::fs::write(dir.path().join("junk.parquet"), b"not parquet").unwrap();
        let e = import_failures(&dir.path().join("junk.parquet"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("junk.parquet: parquet: "), "{e}");
    }

    #[test]
    fn faultline_parts_read_back_through_their_payload() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ParquetStore::open(dir.path(), StoreOptions::default()).unwrap();
        let report: FailureReport = serde_json::from_str(
            r#"{"task_id":"t1","worker_id":"w1","hardware":{"class":"GPU","vendor":"NVIDIA"},
                "error":{"message":"Xid 79","exit_code":1},"ts":"2025-03-13T00:00:00Z",
                "task":{"config":{"batch_size":8,"precision":"bf16","custom":1}}}"#,
        )
        .unwrap();
        let rec = report.clone().check(Timestamp::from_micros(0)).unwrap();
        let row = crate::store::FailureRow {
            record: rec.clone(),
            kind: crate::model::FailureKind::GpuHardware,
            failure_type: crate::model::FailureType::HardwareError,
            classifier_rule: "xid".into(),
            xid: Some(79),
            template_id: None,
            cluster_id: None,
        };
        store
            .write_batch(vec![Entry::Failure(Box::new(row))])
            .unwrap();
        assert_eq!(store.entries().unwrap().len(), 1);
        let part = store.parts(Table::Failures).unwrap().remove(0).path;
        let imp = import_failures(&part).unwrap();
        assert!(imp.is_faultline_part());
        let v: Vec<_> = imp.collect();
        let back = v[0].as_ref().unwrap().clone();
        assert_eq!(back.check(Timestamp::from_micros(1)).unwrap(), rec);
    }
}
