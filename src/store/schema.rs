//! On-disk schema: column names (constants), entries → Arrow record batches, and record
//! batches → entries ([`decode_rows`]).
//!
//! Every table has `seq` (the global log sequence number, unique across tables), `timestamp`
//! (microseconds, UTC, stored without a zone) and `payload`, plus flat columns for analysis.
//! The payload and the flat columns together are the lossless form restart reads. The date
//! partition is the directory (`date=YYYY-MM-DD`), never a column in the file.
//!
//! Schema versions (part metadata `faultline.schema_version`; `faultline.table` names the
//! table from version 2 on):
//!
//! - **1**: every payload is the whole entry as JSON.
//! - **2**: the same, except in the failures table, whose payload holds only what its flat
//!   columns do not: `{"compute_units", "browser_version", "stacktrace", "task"}`, each left
//!   out when absent (`task` when it is the empty task). The record's ids, hardware class,
//!   vendor, device model, memory, browser name, message, error type and exit code, and the
//!   row's kind, failure type, classifier rule, Xid, template and cluster ids are read from
//!   their columns, its time from `timestamp`. A failure was written twice in version 1, and
//!   that copy was a third of the work of ingesting it.
//!
//! Both versions are read; every part is written in the current one.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::types::ArrowPrimitiveType;
use arrow_array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, PrimitiveArray, RecordBatch,
    StringArray, TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use serde::{Deserialize, Serialize};

use super::entry::{
    ActionRow, CheckpointRow, Entry, FailureRow, OutcomeRow, PatternRow, RankingSeedRow, Table,
    TaskStateRow,
};
use super::StoreError;
use crate::model::{
    BrowserInfo, ErrorInfo, FailureRecord, HardwareProfile, TaskId, TaskSpec, Timestamp, WorkerId,
};

/// Version of the on-disk layout, written into every part's metadata (see the module docs).
pub const SCHEMA_VERSION: u32 = 2;
/// Metadata key: schema version.
pub const META_SCHEMA_VERSION: &str = "faultline.schema_version";
/// Metadata key: the table of the part (from schema version 2 on).
pub const META_TABLE: &str = "faultline.table";
/// Metadata key: the flush sequence that committed this part.
pub const META_FLUSH_SEQ: &str = "faultline.flush_seq";
/// Metadata key: comma-separated file names a compacted part replaces.
pub const META_REPLACES: &str = "faultline.replaces";

/// Column: global sequence number.
pub const SEQ: &str = "seq";
/// Column: time of the entry.
pub const TIMESTAMP: &str = "timestamp";
/// The time zone every time column is marked with: its values are instants (microseconds
/// since the Unix epoch), so Parquet readers see `isAdjustedToUTC = true` and show them as
/// UTC times, not as wall-clock times of an unknown zone. Parts written before this mark
/// (no zone) hold the same instants and are read the same.
pub const TIMESTAMP_TZ: &str = "UTC";

/// The Arrow type of every time column: microseconds, UTC ([`TIMESTAMP_TZ`]).
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(TIMESTAMP_TZ.into()))
}
/// Column: the entry as JSON.
pub const PAYLOAD: &str = "payload";
/// Column: task id.
pub const TASK_ID: &str = "task_id";
/// Column: worker id.
pub const WORKER_ID: &str = "worker_id";
/// Column: hardware class.
pub const HARDWARE_CLASS: &str = "hardware_class";
/// Column: vendor.
pub const VENDOR: &str = "vendor";
/// Column: device model.
pub const DEVICE_MODEL: &str = "device_model";
/// Column: device memory, GiB.
pub const MEMORY_GIB: &str = "memory_gib";
/// Column: browser name.
pub const BROWSER: &str = "browser";
/// Column: error message.
pub const MESSAGE: &str = "message";
/// Column: the caller's error-type hint.
pub const ERROR_TYPE: &str = "error_type";
/// Column: exit code.
pub const EXIT_CODE: &str = "exit_code";
/// Column: failure kind.
pub const KIND: &str = "kind";
/// Column: coarse failure type.
pub const FAILURE_TYPE: &str = "failure_type";
/// Column: classifier rule.
pub const CLASSIFIER_RULE: &str = "classifier_rule";
/// Column: NVIDIA Xid.
pub const XID: &str = "xid";
/// Column: template id.
pub const TEMPLATE_ID: &str = "template_id";
/// Column: cluster id.
pub const CLUSTER_ID: &str = "cluster_id";
/// Column: ML model of the task.
pub const MODEL: &str = "model";
/// Column: batch size.
pub const BATCH_SIZE: &str = "batch_size";
/// Column: precision.
pub const PRECISION: &str = "precision";
/// Column: strategy.
pub const STRATEGY: &str = "strategy";
/// Column: decision source kind.
pub const SOURCE: &str = "source";
/// Column: rule or ladder name.
pub const RULE: &str = "rule";
/// Column: ladder step.
pub const STEP: &str = "step";
/// Column: probability with which the strategy was chosen.
pub const PROPENSITY: &str = "propensity";
/// Column: model version that decided.
pub const MODEL_VERSION: &str = "model_version";
/// Column: attempt number.
pub const ATTEMPT: &str = "attempt";
/// Column: failed worker.
pub const FAILED_WORKER: &str = "failed_worker";
/// Column: target worker.
pub const TARGET_WORKER: &str = "target_worker";
/// Column: delay, seconds.
pub const DELAY_S: &str = "delay_s";
/// Column: worker attention reason.
pub const WORKER_ATTENTION: &str = "worker_attention";
/// Column: reason text.
pub const REASON: &str = "reason";
/// Column: checkpoint to resume from.
pub const RESUME_CHECKPOINT: &str = "resume_checkpoint";
/// Column: success flag.
pub const SUCCESS: &str = "success";
/// Column: time to recovery, seconds.
pub const TIME_TO_RECOVERY_S: &str = "time_to_recovery_s";
/// Column: cost.
pub const COST: &str = "cost";
/// Column: task state.
pub const STATE: &str = "state";
/// Column: free text.
pub const NOTE: &str = "note";
/// Column: pattern key.
pub const KEY: &str = "key";
/// Column: count.
pub const COUNT: &str = "count";
/// Column: first seen.
pub const FIRST_SEEN: &str = "first_seen";
/// Column: last seen.
pub const LAST_SEEN: &str = "last_seen";
/// Column: confidence.
pub const CONFIDENCE: &str = "confidence";
/// Column: recommended action.
pub const RECOMMENDED_ACTION: &str = "recommended_action";
/// Column: description.
pub const DESCRIPTION: &str = "description";
/// Column: checkpoint id.
pub const CHECKPOINT_ID: &str = "checkpoint_id";
/// Column: size in bytes.
pub const SIZE_BYTES: &str = "size_bytes";
/// Column: checksum.
pub const CHECKSUM: &str = "checksum";
/// Column: deleted flag.
pub const DELETED: &str = "deleted";
/// Column: the contexts a ranking seed holds.
pub const CONTEXTS: &str = "contexts";

/// The Arrow type of a flat column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Utf8,
    F64,
    U32,
    U64,
    I32,
    I64,
    Bool,
    /// Microseconds since the epoch, marked UTC ([`TIMESTAMP_TZ`]).
    Ts,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::Utf8 => DataType::Utf8,
            Kind::F64 => DataType::Float64,
            Kind::U32 => DataType::UInt32,
            Kind::U64 => DataType::UInt64,
            Kind::I32 => DataType::Int32,
            Kind::I64 => DataType::Int64,
            Kind::Bool => DataType::Boolean,
            Kind::Ts => timestamp_type(),
        }
    }

    /// A builder with room for `rows` values (and `bytes` bytes of text).
    fn builder(self, rows: usize, bytes: usize) -> Col {
        match self {
            Kind::Utf8 => Col::Utf8(StringBuilder::with_capacity(rows, bytes)),
            Kind::F64 => Col::F64(Float64Builder::with_capacity(rows)),
            Kind::U32 => Col::U32(UInt32Builder::with_capacity(rows)),
            Kind::U64 => Col::U64(UInt64Builder::with_capacity(rows)),
            Kind::I32 => Col::I32(Int32Builder::with_capacity(rows)),
            Kind::I64 => Col::I64(Int64Builder::with_capacity(rows)),
            Kind::Bool => Col::Bool(BooleanBuilder::with_capacity(rows)),
            Kind::Ts => Col::Ts(TimestampMicrosecondBuilder::with_capacity(rows)),
        }
    }
}

/// A column being built.
#[derive(Debug)]
enum Col {
    Utf8(StringBuilder),
    F64(Float64Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    Bool(BooleanBuilder),
    Ts(TimestampMicrosecondBuilder),
}

impl Col {
    fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Utf8(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::U32(b) => Arc::new(b.finish()),
            Col::U64(b) => Arc::new(b.finish()),
            Col::I32(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Ts(b) => Arc::new(b.finish().with_timezone(TIMESTAMP_TZ)),
        }
    }
}

/// A time column value (microseconds).
struct Micros(i64);

/// A value of a flat column, appended to the column's builder.
trait Cell {
    fn append(self, col: &mut Col);
}

/// Appends `$v` to `$col` when it is a `$variant` builder. Each table's values have the types
/// of its declared columns (both come from one `columns!` list, and `every_table_builds`
/// builds a row of every table), so another builder cannot occur.
macro_rules! append {
    ($col:expr, $variant:ident, $v:expr) => {
        match $col {
            Col::$variant(b) => b.append_option($v),
            _ => unreachable!("a value of another type than its column"),
        }
    };
}

/// `impl Cell` for optional values appended to the column variant of their type.
macro_rules! cells {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl Cell for $t {
            fn append(self, col: &mut Col) {
                append!(col, $variant, self)
            }
        })*
    };
}

cells!(
    Option<&str> => Utf8,
    Option<f64> => F64,
    Option<u32> => U32,
    Option<u64> => U64,
    Option<i32> => I32,
    Option<i64> => I64,
    Option<bool> => Bool,
);
impl Cell for Micros {
    fn append(self, col: &mut Col) {
        append!(col, Ts, Some(self.0))
    }
}

/// The flat columns of one row, filled left to right.
struct Cells<'a> {
    cols: std::slice::IterMut<'a, Col>,
}

impl Cells<'_> {
    fn push(&mut self, v: impl Cell) {
        // Invariant: a table has as many builders as values per row (one `columns!` list).
        let col = self.cols.next().expect("one builder per declared column");
        v.append(col);
    }
}

/// Declares a table's flat columns once: the list of names and types, and the function that
/// appends one row's values to them, in the same order.
macro_rules! columns {
    ($list:ident, $fill:ident, $row:ty, |$x:ident| { $($name:ident : $kind:ident = $val:expr;)* }) => {
        const $list: &[(&str, Kind)] = &[$(($name, Kind::$kind)),*];
        fn $fill($x: &$row, r: &mut Cells<'_>) {
            $(r.push($val);)*
        }
    };
}

columns!(FAILURE_COLUMNS, failure_cells, FailureRow, |f| {
    TASK_ID: Utf8 = Some(f.record.task_id.as_str());
    WORKER_ID: Utf8 = Some(f.record.worker_id.as_str());
    HARDWARE_CLASS: Utf8 = Some(f.record.hardware.class.as_str());
    VENDOR: Utf8 = f.record.hardware.vendor.as_deref();
    DEVICE_MODEL: Utf8 = f.record.hardware.model.as_deref();
    MEMORY_GIB: F64 = f.record.hardware.memory_gib;
    BROWSER: Utf8 = f.record.hardware.browser.as_ref().map(|b| b.name.as_str());
    MESSAGE: Utf8 = Some(f.record.error.message.as_str());
    ERROR_TYPE: Utf8 = f.record.error.type_hint.as_deref();
    EXIT_CODE: I32 = f.record.error.exit_code;
    KIND: Utf8 = Some(f.kind.as_str());
    FAILURE_TYPE: Utf8 = Some(f.failure_type.as_str());
    CLASSIFIER_RULE: Utf8 = Some(f.classifier_rule.as_str());
    XID: U32 = f.xid;
    TEMPLATE_ID: U64 = f.template_id;
    CLUSTER_ID: I64 = f.cluster_id;
    MODEL: Utf8 = f.record.task.config.model.as_deref();
    BATCH_SIZE: U32 = f.record.task.config.batch_size;
    PRECISION: Utf8 = f.record.task.config.precision.map(|p| p.as_str());
});

columns!(ACTION_COLUMNS, action_cells, ActionRow, |a| {
    TASK_ID: Utf8 = Some(a.action.task_id.as_str());
    STRATEGY: Utf8 = Some(a.action.strategy.as_str());
    SOURCE: Utf8 = Some(a.action.source.kind.as_ref());
    RULE: Utf8 = a.action.source.rule.as_deref();
    STEP: U32 = a.action.source.step;
    PROPENSITY: F64 = Some(a.action.propensity);
    MODEL_VERSION: Utf8 = Some(a.model_version.as_ref());
    ATTEMPT: U32 = Some(a.action.attempt);
    KIND: Utf8 = Some(a.action.kind.as_str());
    FAILURE_TYPE: Utf8 = Some(a.action.failure_type.as_str());
    FAILED_WORKER: Utf8 = Some(a.action.failed_worker.as_str());
    TARGET_WORKER: Utf8 = a.action.target_worker.as_ref().map(|w| w.as_str());
    DELAY_S: F64 = Some(a.action.delay_s);
    WORKER_ATTENTION: Utf8 = a.action.worker_attention.as_deref();
    REASON: Utf8 = Some(a.action.reason.as_str());
    RESUME_CHECKPOINT: Utf8 = a.action.resume_checkpoint.as_deref();
});

columns!(OUTCOME_COLUMNS, outcome_cells, OutcomeRow, |o| {
    TASK_ID: Utf8 = Some(o.outcome.task_id.as_str());
    SUCCESS: Bool = Some(o.outcome.success);
    STRATEGY: Utf8 = o.outcome.strategy.map(|s| s.as_str());
    TIME_TO_RECOVERY_S: F64 = o.outcome.time_to_recovery_s;
    COST: F64 = o.outcome.cost;
    HARDWARE_CLASS: Utf8 = o.hardware_class.map(|h| h.as_str());
    KIND: Utf8 = o.kind.map(|k| k.as_str());
});

columns!(TASK_STATE_COLUMNS, task_state_cells, TaskStateRow, |s| {
    TASK_ID: Utf8 = Some(s.task_id.as_str());
    STATE: Utf8 = Some(s.state.as_str());
    NOTE: Utf8 = Some(s.note.as_str());
});

columns!(PATTERN_COLUMNS, pattern_cells, PatternRow, |p| {
    KIND: Utf8 = Some(p.kind.as_str());
    KEY: Utf8 = Some(p.key.as_str());
    COUNT: U64 = Some(p.count);
    FIRST_SEEN: Ts = Micros(p.first_seen.as_micros());
    LAST_SEEN: Ts = Micros(p.last_seen.as_micros());
    CONFIDENCE: F64 = Some(p.confidence);
    RECOMMENDED_ACTION: Utf8 = Some(p.recommended_action.as_str());
    DESCRIPTION: Utf8 = Some(p.description.as_str());
});

columns!(CHECKPOINT_COLUMNS, checkpoint_cells, CheckpointRow, |k| {
    TASK_ID: Utf8 = Some(k.task_id.as_str());
    CHECKPOINT_ID: Utf8 = Some(k.checkpoint_id.as_str());
    SIZE_BYTES: U64 = Some(k.size_bytes);
    CHECKSUM: Utf8 = Some(k.checksum.as_str());
    DELETED: Bool = Some(k.deleted);
});

columns!(RANKING_SEED_COLUMNS, ranking_seed_cells, RankingSeedRow, |r| {
    MODEL: Utf8 = Some(r.model.as_str());
    CONTEXTS: U64 = Some(r.contexts.len() as u64);
});

/// The flat columns of a table (between `timestamp` and `payload`).
fn flat_columns(table: Table) -> &'static [(&'static str, Kind)] {
    match table {
        Table::Failures => FAILURE_COLUMNS,
        Table::Actions => ACTION_COLUMNS,
        Table::Outcomes => OUTCOME_COLUMNS,
        Table::TaskStates => TASK_STATE_COLUMNS,
        Table::Patterns => PATTERN_COLUMNS,
        Table::Checkpoints => CHECKPOINT_COLUMNS,
        Table::RankingSeeds => RANKING_SEED_COLUMNS,
    }
}

/// How much a [`TableBuilder`] makes room for up front: rows, bytes of each text column
/// (in the table's flat column order; ignored for other columns), bytes of payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// The table.
    pub table: Table,
    /// Rows.
    pub rows: usize,
    /// Bytes of each flat column's text.
    pub text: Vec<usize>,
    /// Bytes of payload.
    pub payload: usize,
}

impl Room {
    /// This room and `other` together (of one table; otherwise this room).
    pub fn add(&mut self, other: &Room) {
        if other.table != self.table || other.text.len() != self.text.len() {
            return;
        }
        self.rows += other.rows;
        self.payload += other.payload;
        for (a, b) in self.text.iter_mut().zip(&other.text) {
            *a += b;
        }
    }

    /// This room and `1/n` more (at least one row and byte more).
    pub fn grown(mut self, n: usize) -> Room {
        let more = |x: usize| x + x / n.max(1) + 1;
        self.rows = more(self.rows);
        self.payload = more(self.payload);
        for t in &mut self.text {
            *t = more(*t);
        }
        self
    }
}

/// The record batch of one table, built row by row: `seq`, `timestamp`, the table's flat
/// columns, `payload`. Rows can arrive as they are produced (no entries held until the
/// write); [`TableBuilder::finish`] gives the same batch [`to_batch_encoded`] gives for the
/// same rows.
#[derive(Debug)]
pub struct TableBuilder {
    table: Table,
    seq: Vec<u64>,
    timestamp: Vec<i64>,
    cols: Vec<Col>,
    payload: StringBuilder,
}

impl TableBuilder {
    /// An empty builder for `table`, with room for `rows` rows (text columns: 16 bytes a
    /// row, payload: 512).
    pub fn new(table: Table, rows: usize) -> Self {
        TableBuilder {
            table,
            seq: Vec::with_capacity(rows),
            timestamp: Vec::with_capacity(rows),
            cols: flat_columns(table)
                .iter()
                .map(|(_, k)| k.builder(rows, rows * 16))
                .collect(),
            payload: StringBuilder::with_capacity(rows, rows * 512),
        }
    }

    /// An empty builder with `room` (see [`TableBuilder::room`]) for a table of its shape;
    /// a room of another table gives [`TableBuilder::new`]'s.
    pub fn sized(table: Table, room: &Room) -> Self {
        let cols = flat_columns(table);
        if room.table != table || room.text.len() != cols.len() {
            return Self::new(table, room.rows);
        }
        TableBuilder {
            table,
            seq: Vec::with_capacity(room.rows),
            timestamp: Vec::with_capacity(room.rows),
            cols: cols
                .iter()
                .zip(&room.text)
                .map(|((_, k), bytes)| k.builder(room.rows, *bytes))
                .collect(),
            payload: StringBuilder::with_capacity(room.rows, room.payload),
        }
    }

    /// The rows and bytes held: room for a builder that will take as much.
    pub fn room(&self) -> Room {
        Room {
            table: self.table,
            rows: self.len(),
            text: self
                .cols
                .iter()
                .map(|c| match c {
                    Col::Utf8(b) => b.values_slice().len(),
                    _ => 0,
                })
                .collect(),
            payload: self.payload.values_slice().len(),
        }
    }

    /// The table.
    pub fn table(&self) -> Table {
        self.table
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    /// Appends a row: `payload` must be [`payload`]`(entry)`. An entry of another table is
    /// refused.
    pub fn push(&mut self, seq: u64, entry: &Entry, payload: &str) -> Result<(), ArrowError> {
        if entry.table() != self.table {
            return Err(ArrowError::InvalidArgumentError(format!(
                "a {:?} entry in a {:?} batch",
                entry.table(),
                self.table
            )));
        }
        let mut r = Cells {
            cols: self.cols.iter_mut(),
        };
        match entry {
            Entry::Failure(f) => failure_cells(f, &mut r),
            Entry::Action(a) => action_cells(a, &mut r),
            Entry::Outcome(o) => outcome_cells(o, &mut r),
            Entry::TaskState(s) => task_state_cells(s, &mut r),
            Entry::Pattern(p) => pattern_cells(p, &mut r),
            Entry::Checkpoint(k) => checkpoint_cells(k, &mut r),
            Entry::RankingSeed(s) => ranking_seed_cells(s, &mut r),
        }
        self.seq.push(seq);
        self.timestamp.push(entry.timestamp().as_micros());
        self.payload.append_value(payload);
        Ok(())
    }

    /// The sequence numbers pushed so far.
    pub fn seqs(&self) -> &[u64] {
        &self.seq
    }

    /// The record batch, with `offset` added to every sequence number.
    pub fn finish(mut self, offset: u64) -> Result<RecordBatch, ArrowError> {
        let seq: Vec<u64> = if offset == 0 {
            self.seq
        } else {
            self.seq.iter().map(|s| s + offset).collect()
        };
        let mut fields = Vec::with_capacity(self.cols.len() + 3);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.cols.len() + 3);
        // Nullability is per batch in Arrow; every non-key column is declared nullable so
        // that parts of one table always share a schema.
        fields.push(Field::new(SEQ, DataType::UInt64, false));
        arrays.push(Arc::new(UInt64Array::from(seq)));
        fields.push(Field::new(TIMESTAMP, Kind::Ts.data_type(), false));
        arrays.push(Arc::new(
            TimestampMicrosecondArray::from(self.timestamp).with_timezone(TIMESTAMP_TZ),
        ));
        for ((name, kind), col) in flat_columns(self.table).iter().zip(&mut self.cols) {
            fields.push(Field::new(*name, kind.data_type(), true));
            arrays.push(col.finish());
        }
        fields.push(Field::new(PAYLOAD, DataType::Utf8, false));
        arrays.push(Arc::new(self.payload.finish()));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
    }
}

/// The `payload` of an entry in the current schema version: the entry as JSON, or for a
/// failure what its flat columns do not hold (see the module docs).
pub fn payload(entry: &Entry) -> Result<String, serde_json::Error> {
    match entry {
        Entry::Failure(f) => serde_json::to_string(&FailureRest::of(f)),
        other => serde_json::to_string(other),
    }
}

/// Writes [`payload`]`(entry)` into `buf` (appending; a buffer reused across entries
/// saves an allocation per entry) and returns it as text.
pub fn write_payload<'a>(buf: &'a mut Vec<u8>, entry: &Entry) -> Result<&'a str, StoreError> {
    let start = buf.len();
    match entry {
        Entry::Failure(f) => serde_json::to_writer(&mut *buf, &FailureRest::of(f)),
        other => serde_json::to_writer(&mut *buf, other),
    }
    .map_err(|e| StoreError::Encode(e.to_string()))?;
    // serde_json writes UTF-8 only; checked rather than assumed.
    std::str::from_utf8(&buf[start..]).map_err(|e| StoreError::Encode(e.to_string()))
}

/// The payload of a failure from schema version 2 on: the parts of the row that no flat
/// column holds.
#[derive(Serialize)]
struct FailureRest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    compute_units: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    browser_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stacktrace: Option<&'a str>,
    #[serde(skip_serializing_if = "is_empty_task")]
    task: &'a TaskSpec,
}

impl<'a> FailureRest<'a> {
    fn of(f: &'a FailureRow) -> Self {
        let r = &f.record;
        FailureRest {
            compute_units: r.hardware.compute_units,
            browser_version: r
                .hardware
                .browser
                .as_ref()
                .and_then(|b| b.version.as_deref()),
            stacktrace: r.error.stacktrace.as_deref(),
            task: &r.task,
        }
    }
}

fn is_empty_task(t: &TaskSpec) -> bool {
    *t == TaskSpec::default()
}

/// [`FailureRest`] read back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailureRestOwned {
    #[serde(default)]
    compute_units: Option<u32>,
    #[serde(default)]
    browser_version: Option<String>,
    #[serde(default)]
    stacktrace: Option<String>,
    #[serde(default)]
    task: TaskSpec,
}

/// The schema version of a part from its metadata value (a part without one is version 1).
pub fn version_of(meta: Option<&str>) -> Result<u32, String> {
    let Some(v) = meta else { return Ok(1) };
    match v.trim().parse::<u32>() {
        Ok(v) if (1..=SCHEMA_VERSION).contains(&v) => Ok(v),
        Ok(v) => Err(format!(
            "schema version {v} is not one this faultline reads (1 to {SCHEMA_VERSION})"
        )),
        Err(_) => Err(format!("schema version '{v}' is not a number")),
    }
}

/// The table a part holds, from its `faultline.table` metadata value (`None` for parts of
/// version 1, whose payloads name their table).
pub fn table_of(version: u32, meta: Option<&str>) -> Result<Option<Table>, String> {
    if version < 2 {
        return Ok(None);
    }
    let name =
        meta.ok_or_else(|| format!("no {META_TABLE} metadata (schema version {version})"))?;
    Table::ALL
        .into_iter()
        .find(|t| t.dir_name() == name)
        .map(Some)
        .ok_or_else(|| format!("unknown table '{name}' in {META_TABLE}"))
}

/// The columns [`decode_rows`] reads from a part of `table` written in `version`.
pub fn decode_columns(version: u32, table: Option<Table>) -> Vec<&'static str> {
    if version >= 2 && table == Some(Table::Failures) {
        let mut c = vec![TIMESTAMP];
        c.extend(FAILURE_COLUMNS.iter().map(|(name, _)| *name));
        c.push(PAYLOAD);
        c
    } else {
        vec![PAYLOAD]
    }
}

/// The entry of every row of a record batch of a part of `table` written in `version` (see
/// [`version_of`], [`table_of`]), each row on its own: `Err` says why a row does not decode.
/// The outer error is a batch that lacks a column it needs ([`decode_columns`]).
pub fn decode_rows(
    batch: &RecordBatch,
    version: u32,
    table: Option<Table>,
) -> Result<Vec<Result<Entry, String>>, String> {
    let payload: &StringArray = column(batch, PAYLOAD)?;
    let n = batch.num_rows();
    if version < 2 || table != Some(Table::Failures) {
        return Ok((0..n)
            .map(|i| {
                let text = text_at(payload, i).ok_or("no payload")?;
                let e: Entry = serde_json::from_str(text).map_err(|e| e.to_string())?;
                match table {
                    Some(t) if t != e.table() => Err(format!(
                        "a {} entry in a part of {}",
                        e.table().dir_name(),
                        t.dir_name()
                    )),
                    _ => Ok(e),
                }
            })
            .collect());
    }
    let f = FailureColumns::of(batch)?;
    Ok((0..n)
        .map(|i| {
            let text = text_at(payload, i).ok_or("no payload")?;
            let rest: FailureRestOwned = serde_json::from_str(text).map_err(|e| e.to_string())?;
            Ok(Entry::Failure(Box::new(f.row(i, rest)?)))
        })
        .collect())
}

/// A column of `batch` as the array type the schema writes it with.
fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("no {name} column"))?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("column {name} is not of the type faultline writes"))
}

fn text_at(a: &StringArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

/// The name in row `i` of a column of canonical names (`kind`, `hardware_class`...).
fn parse_at<T: std::str::FromStr>(a: &StringArray, i: usize, name: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let text = text_at(a, i).ok_or_else(|| format!("no {name}"))?;
    text.parse().map_err(|e| format!("{name}: {e}"))
}

fn value_at<T: ArrowPrimitiveType>(a: &PrimitiveArray<T>, i: usize) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

/// The flat columns of a failures part of schema version 2.
struct FailureColumns<'a> {
    timestamp: &'a TimestampMicrosecondArray,
    task_id: &'a StringArray,
    worker_id: &'a StringArray,
    class: &'a StringArray,
    vendor: &'a StringArray,
    device_model: &'a StringArray,
    memory_gib: &'a Float64Array,
    browser: &'a StringArray,
    message: &'a StringArray,
    error_type: &'a StringArray,
    exit_code: &'a Int32Array,
    kind: &'a StringArray,
    failure_type: &'a StringArray,
    classifier_rule: &'a StringArray,
    xid: &'a UInt32Array,
    template_id: &'a UInt64Array,
    cluster_id: &'a Int64Array,
}

impl<'a> FailureColumns<'a> {
    fn of(b: &'a RecordBatch) -> Result<Self, String> {
        Ok(FailureColumns {
            timestamp: column(b, TIMESTAMP)?,
            task_id: column(b, TASK_ID)?,
            worker_id: column(b, WORKER_ID)?,
            class: column(b, HARDWARE_CLASS)?,
            vendor: column(b, VENDOR)?,
            device_model: column(b, DEVICE_MODEL)?,
            memory_gib: column(b, MEMORY_GIB)?,
            browser: column(b, BROWSER)?,
            message: column(b, MESSAGE)?,
            error_type: column(b, ERROR_TYPE)?,
            exit_code: column(b, EXIT_CODE)?,
            kind: column(b, KIND)?,
            failure_type: column(b, FAILURE_TYPE)?,
            classifier_rule: column(b, CLASSIFIER_RULE)?,
            xid: column(b, XID)?,
            template_id: column(b, TEMPLATE_ID)?,
            cluster_id: column(b, CLUSTER_ID)?,
        })
    }

    /// Row `i` with the rest of it from its payload.
    fn row(&self, i: usize, rest: FailureRestOwned) -> Result<FailureRow, String> {
        let need = |a: &'a StringArray, name: &str| text_at(a, i).ok_or(format!("no {name}"));
        let owned = |a: &'a StringArray| text_at(a, i).map(str::to_string);
        let browser = match (owned(self.browser), rest.browser_version) {
            (Some(name), version) => Some(BrowserInfo { name, version }),
            (None, None) => None,
            (None, Some(_)) => return Err("a browser version without a browser".into()),
        };
        let record = FailureRecord {
            task_id: TaskId::new(need(self.task_id, TASK_ID)?)
                .map_err(|e| format!("{TASK_ID}: {e}"))?,
            worker_id: WorkerId::new(need(self.worker_id, WORKER_ID)?)
                .map_err(|e| format!("{WORKER_ID}: {e}"))?,
            hardware: HardwareProfile {
                class: parse_at(self.class, i, HARDWARE_CLASS)?,
                vendor: owned(self.vendor),
                model: owned(self.device_model),
                memory_gib: value_at(self.memory_gib, i),
                compute_units: rest.compute_units,
                browser,
            },
            error: ErrorInfo {
                message: need(self.message, MESSAGE)?.to_string(),
                type_hint: owned(self.error_type),
                stacktrace: rest.stacktrace,
                exit_code: value_at(self.exit_code, i),
            },
            timestamp: Timestamp::from_micros(
                value_at(self.timestamp, i).ok_or(format!("no {TIMESTAMP}"))?,
            ),
            task: rest.task,
        };
        Ok(FailureRow {
            record,
            kind: parse_at(self.kind, i, KIND)?,
            failure_type: parse_at(self.failure_type, i, FAILURE_TYPE)?,
            classifier_rule: need(self.classifier_rule, CLASSIFIER_RULE)?.to_string(),
            xid: value_at(self.xid, i),
            template_id: value_at(self.template_id, i),
            cluster_id: value_at(self.cluster_id, i),
        })
    }
}

/// Builds one record batch from entries of one table (`seqs[i]` belongs to `entries[i]`).
pub fn to_batch(table: Table, seqs: &[u64], entries: &[&Entry]) -> Result<RecordBatch, ArrowError> {
    let mut b = TableBuilder::new(table, entries.len());
    for (seq, e) in seqs.iter().zip(entries) {
        let p = payload(e).map_err(|err| ArrowError::ExternalError(Box::new(err)))?;
        b.push(*seq, e, &p)?;
    }
    b.finish(0)
}

/// [`to_batch`] with the payloads already encoded (`payloads[i]` must be
/// [`payload`]`(entries[i])`), so that encoding can run on other threads.
pub fn to_batch_encoded(
    table: Table,
    seqs: &[u64],
    entries: &[&Entry],
    payloads: &[&str],
) -> Result<RecordBatch, ArrowError> {
    if payloads.len() != entries.len() || seqs.len() != entries.len() {
        return Err(ArrowError::InvalidArgumentError(format!(
            "{} sequence numbers and {} payloads for {} entries",
            seqs.len(),
            payloads.len(),
            entries.len()
        )));
    }
    let mut b = TableBuilder::new(table, entries.len());
    for ((seq, e), p) in seqs.iter().zip(entries).zip(payloads) {
        b.push(*seq, e, p)?;
    }
    b.finish(0)
}

/// The time columns of `table`, from its declared columns: `timestamp`, then any flat column
/// of time (a pattern's `first_seen` and `last_seen`). Each has [`timestamp_type`].
pub fn time_columns(table: Table) -> impl Iterator<Item = &'static str> {
    std::iter::once(TIMESTAMP).chain(
        flat_columns(table)
            .iter()
            .filter(|(_, kind)| *kind == Kind::Ts)
            .map(|(name, _)| *name),
    )
}

/// The column names of a table, in file order.
pub fn column_names(table: Table) -> Vec<String> {
    let empty: [&Entry; 0] = [];
    to_batch(table, &[], &empty)
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default()
}
