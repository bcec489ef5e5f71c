//! On-disk schema: column names (constants), and entries → Arrow record batches.
//!
//! Every table has `seq` (the global log sequence number, unique across tables), `timestamp`
//! (microseconds, UTC, stored without a zone) and `payload` (the entry as JSON: the lossless
//! form restart reads), plus flat columns for analysis. The date partition is the directory
//! (`date=YYYY-MM-DD`), never a column in the file.

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};

use super::entry::{Entry, Table};

/// Version of the on-disk layout, written into every part's metadata.
pub const SCHEMA_VERSION: u32 = 1;
/// Metadata key: schema version.
pub const META_SCHEMA_VERSION: &str = "faultline.schema_version";
/// Metadata key: the flush sequence that committed this part.
pub const META_FLUSH_SEQ: &str = "faultline.flush_seq";
/// Metadata key: comma-separated file names a compacted part replaces.
pub const META_REPLACES: &str = "faultline.replaces";

/// Column: global sequence number.
pub const SEQ: &str = "seq";
/// Column: time of the entry.
pub const TIMESTAMP: &str = "timestamp";
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

/// A string column built in buffers sized up front (one allocation each, no regrowth).
fn strings<'a>(v: impl IntoIterator<Item = Option<&'a str>> + Clone) -> StringArray {
    let (mut n, mut bytes) = (0, 0);
    for s in v.clone() {
        n += 1;
        bytes += s.map_or(0, str::len);
    }
    let mut b = StringBuilder::with_capacity(n, bytes);
    for s in v {
        b.append_option(s);
    }
    b.finish()
}

struct Cols {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Cols {
    fn new(seqs: &[u64], entries: &[&Entry]) -> Self {
        let mut c = Cols {
            fields: Vec::new(),
            arrays: Vec::new(),
        };
        c.push(
            SEQ,
            DataType::UInt64,
            false,
            Arc::new(UInt64Array::from(seqs.to_vec())),
        );
        c.ts(
            TIMESTAMP,
            entries.iter().map(|e| e.timestamp().as_micros()).collect(),
        );
        c
    }
    fn push(&mut self, name: &str, dt: DataType, nullable: bool, a: ArrayRef) {
        self.fields.push(Field::new(name, dt, nullable));
        self.arrays.push(a);
    }
    fn ts(&mut self, name: &str, v: Vec<i64>) {
        self.push(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
            Arc::new(TimestampMicrosecondArray::from(v)),
        );
    }
    fn s(&mut self, name: &str, v: Vec<Option<&str>>) {
        let nullable = v.iter().any(Option::is_none);
        self.push(
            name,
            DataType::Utf8,
            nullable,
            Arc::new(strings(v.iter().copied())),
        );
    }
    fn f(&mut self, name: &str, v: Vec<Option<f64>>) {
        self.push(
            name,
            DataType::Float64,
            true,
            Arc::new(Float64Array::from(v)),
        );
    }
    fn u32(&mut self, name: &str, v: Vec<Option<u32>>) {
        self.push(name, DataType::UInt32, true, Arc::new(UInt32Array::from(v)));
    }
    fn u64(&mut self, name: &str, v: Vec<Option<u64>>) {
        self.push(name, DataType::UInt64, true, Arc::new(UInt64Array::from(v)));
    }
    fn i32(&mut self, name: &str, v: Vec<Option<i32>>) {
        self.push(name, DataType::Int32, true, Arc::new(Int32Array::from(v)));
    }
    fn i64(&mut self, name: &str, v: Vec<Option<i64>>) {
        self.push(name, DataType::Int64, true, Arc::new(Int64Array::from(v)));
    }
    fn b(&mut self, name: &str, v: Vec<Option<bool>>) {
        self.push(
            name,
            DataType::Boolean,
            true,
            Arc::new(BooleanArray::from(v)),
        );
    }
    fn finish(mut self, payloads: &[&str]) -> Result<RecordBatch, ArrowError> {
        self.push(
            PAYLOAD,
            DataType::Utf8,
            false,
            Arc::new(strings(payloads.iter().map(|p| Some(*p)))),
        );
        // Nullability is per batch; declare every non-key column nullable so that parts of
        // one table always share a schema.
        let fields: Vec<Field> = self
            .fields
            .into_iter()
            .map(|f| {
                let keep = matches!(f.name().as_str(), SEQ | TIMESTAMP | PAYLOAD);
                f.with_nullable(!keep)
            })
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), self.arrays)
    }
}

/// The `payload` of an entry: the entry as JSON.
pub fn payload(entry: &Entry) -> Result<String, serde_json::Error> {
    serde_json::to_string(entry)
}

/// Builds one record batch from entries of one table (`seqs[i]` belongs to `entries[i]`).
pub fn to_batch(table: Table, seqs: &[u64], entries: &[&Entry]) -> Result<RecordBatch, ArrowError> {
    let payloads = entries
        .iter()
        .map(|e| payload(e).map_err(|err| ArrowError::ExternalError(Box::new(err))))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
    to_batch_encoded(table, seqs, entries, &refs)
}

/// [`to_batch`] with the payloads already encoded (`payloads[i]` must be
/// [`payload`]`(entries[i])`), so that encoding can run on other threads.
pub fn to_batch_encoded(
    table: Table,
    seqs: &[u64],
    entries: &[&Entry],
    payloads: &[&str],
) -> Result<RecordBatch, ArrowError> {
    if payloads.len() != entries.len() {
        return Err(ArrowError::InvalidArgumentError(format!(
            "{} payloads for {} entries",
            payloads.len(),
            entries.len()
        )));
    }
    let mut c = Cols::new(seqs, entries);
    macro_rules! col {
        ($variant:ident, |$x:ident| $e:expr) => {
            entries
                .iter()
                .map(|e| match e {
                    Entry::$variant($x) => $e,
                    _ => unreachable!("entries of one table"),
                })
                .collect()
        };
    }
    match table {
        Table::Failures => {
            c.s(TASK_ID, col!(Failure, |f| Some(f.record.task_id.as_str())));
            c.s(
                WORKER_ID,
                col!(Failure, |f| Some(f.record.worker_id.as_str())),
            );
            c.s(
                HARDWARE_CLASS,
                col!(Failure, |f| Some(f.record.hardware.class.as_str())),
            );
            c.s(
                VENDOR,
                col!(Failure, |f| f.record.hardware.vendor.as_deref()),
            );
            c.s(
                DEVICE_MODEL,
                col!(Failure, |f| f.record.hardware.model.as_deref()),
            );
            c.f(MEMORY_GIB, col!(Failure, |f| f.record.hardware.memory_gib));
            c.s(
                BROWSER,
                col!(Failure, |f| f
                    .record
                    .hardware
                    .browser
                    .as_ref()
                    .map(|b| b.name.as_str())),
            );
            c.s(
                MESSAGE,
                col!(Failure, |f| Some(f.record.error.message.as_str())),
            );
            c.s(
                ERROR_TYPE,
                col!(Failure, |f| f.record.error.type_hint.as_deref()),
            );
            c.i32(EXIT_CODE, col!(Failure, |f| f.record.error.exit_code));
            c.s(KIND, col!(Failure, |f| Some(f.kind.as_str())));
            c.s(
                FAILURE_TYPE,
                col!(Failure, |f| Some(f.failure_type.as_str())),
            );
            c.s(
                CLASSIFIER_RULE,
                col!(Failure, |f| Some(f.classifier_rule.as_str())),
            );
            c.u32(XID, col!(Failure, |f| f.xid));
            c.u64(TEMPLATE_ID, col!(Failure, |f| f.template_id));
            c.i64(CLUSTER_ID, col!(Failure, |f| f.cluster_id));
            c.s(
                MODEL,
                col!(Failure, |f| f.record.task.config.model.as_deref()),
            );
            c.u32(
                BATCH_SIZE,
                col!(Failure, |f| f.record.task.config.batch_size),
            );
            c.s(
                PRECISION,
                col!(Failure, |f| f
                    .record
                    .task
                    .config
                    .precision
                    .map(|p| p.as_str())),
            );
        }
        Table::Actions => {
            c.s(TASK_ID, col!(Action, |a| Some(a.action.task_id.as_str())));
            c.s(STRATEGY, col!(Action, |a| Some(a.action.strategy.as_str())));
            c.s(
                SOURCE,
                col!(Action, |a| Some(a.action.source.kind.as_str())),
            );
            c.s(RULE, col!(Action, |a| a.action.source.rule.as_deref()));
            c.u32(STEP, col!(Action, |a| a.action.source.step));
            c.f(PROPENSITY, col!(Action, |a| Some(a.action.propensity)));
            c.s(
                MODEL_VERSION,
                col!(Action, |a| Some(a.model_version.as_str())),
            );
            c.u32(ATTEMPT, col!(Action, |a| Some(a.action.attempt)));
            c.s(KIND, col!(Action, |a| Some(a.action.kind.as_str())));
            c.s(
                FAILURE_TYPE,
                col!(Action, |a| Some(a.action.failure_type.as_str())),
            );
            c.s(
                FAILED_WORKER,
                col!(Action, |a| Some(a.action.failed_worker.as_str())),
            );
            c.s(
                TARGET_WORKER,
                col!(Action, |a| a
                    .action
                    .target_worker
                    .as_ref()
                    .map(|w| w.as_str())),
            );
            c.f(DELAY_S, col!(Action, |a| Some(a.action.delay_s)));
            c.s(
                WORKER_ATTENTION,
                col!(Action, |a| a.action.worker_attention.as_deref()),
            );
            c.s(REASON, col!(Action, |a| Some(a.action.reason.as_str())));
            c.s(
                RESUME_CHECKPOINT,
                col!(Action, |a| a.action.resume_checkpoint.as_deref()),
            );
        }
        Table::Outcomes => {
            c.s(TASK_ID, col!(Outcome, |o| Some(o.outcome.task_id.as_str())));
            c.b(SUCCESS, col!(Outcome, |o| Some(o.outcome.success)));
            c.s(
                STRATEGY,
                col!(Outcome, |o| o.outcome.strategy.map(|s| s.as_str())),
            );
            c.f(
                TIME_TO_RECOVERY_S,
                col!(Outcome, |o| o.outcome.time_to_recovery_s),
            );
            c.f(COST, col!(Outcome, |o| o.outcome.cost));
            c.s(
                HARDWARE_CLASS,
                col!(Outcome, |o| o.hardware_class.map(|h| h.as_str())),
            );
            c.s(KIND, col!(Outcome, |o| o.kind.map(|k| k.as_str())));
        }
        Table::TaskStates => {
            c.s(TASK_ID, col!(TaskState, |s| Some(s.task_id.as_str())));
            c.s(STATE, col!(TaskState, |s| Some(s.state.as_str())));
            c.s(NOTE, col!(TaskState, |s| Some(s.note.as_str())));
        }
        Table::Patterns => {
            c.s(KIND, col!(Pattern, |p| Some(p.kind.as_str())));
            c.s(KEY, col!(Pattern, |p| Some(p.key.as_str())));
            c.u64(COUNT, col!(Pattern, |p| Some(p.count)));
            c.ts(FIRST_SEEN, col!(Pattern, |p| p.first_seen.as_micros()));
            c.ts(LAST_SEEN, col!(Pattern, |p| p.last_seen.as_micros()));
            c.f(CONFIDENCE, col!(Pattern, |p| Some(p.confidence)));
            c.s(
                RECOMMENDED_ACTION,
                col!(Pattern, |p| Some(p.recommended_action.as_str())),
            );
            c.s(DESCRIPTION, col!(Pattern, |p| Some(p.description.as_str())));
        }
        Table::Checkpoints => {
            c.s(TASK_ID, col!(Checkpoint, |k| Some(k.task_id.as_str())));
            c.s(
                CHECKPOINT_ID,
                col!(Checkpoint, |k| Some(k.checkpoint_id.as_str())),
            );
            c.u64(SIZE_BYTES, col!(Checkpoint, |k| Some(k.size_bytes)));
            c.s(CHECKSUM, col!(Checkpoint, |k| Some(k.checksum.as_str())));
            c.b(DELETED, col!(Checkpoint, |k| Some(k.deleted)));
        }
    }
    c.finish(payloads)
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
