//! Analysis exports: classified failures with their template and cluster ids as one flat
//! Parquet file (written by `analyze`, read by any Parquet tool). The history's own tables are
//! written by [`ParquetStore`](super::ParquetStore); this is a derived, rewritable output.
//!
//! Columns, in order: `seq`, `timestamp` (µs, UTC), `task_id`, `worker_id`, `hardware_class`,
//! `kind`, `failure_type`, `template_id`, `template`, `cluster_id` (null = noise or not
//! clustered), `message`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::schema::{
    timestamp_type, CLUSTER_ID, FAILURE_TYPE, HARDWARE_CLASS, KIND, MESSAGE, SEQ, TASK_ID,
    TEMPLATE_ID, TIMESTAMP, TIMESTAMP_TZ, WORKER_ID,
};
use super::{fsync_dir, StoreError};

/// Column of the export: the template's text.
pub const TEMPLATE: &str = "template";

/// One batch of classified failures, column by column (all of one length).
#[derive(Debug, Clone, Default)]
pub struct ClassifiedBatch<'a> {
    /// History sequence numbers.
    pub seq: Vec<u64>,
    /// Failure times, µs since the epoch.
    pub timestamp_us: Vec<i64>,
    /// Task ids.
    pub task_id: Vec<&'a str>,
    /// Worker ids.
    pub worker_id: Vec<&'a str>,
    /// Hardware classes.
    pub hardware_class: Vec<&'a str>,
    /// Failure kinds.
    pub kind: Vec<&'a str>,
    /// Coarse failure types.
    pub failure_type: Vec<&'a str>,
    /// Template ids.
    pub template_id: Vec<u64>,
    /// Template texts.
    pub template: Vec<&'a str>,
    /// Cluster ids (`None` = noise or not clustered).
    pub cluster_id: Vec<Option<i64>>,
    /// Messages.
    pub message: Vec<&'a str>,
}

impl ClassifiedBatch<'_> {
    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }
}

fn export_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        Field::new(SEQ, DataType::UInt64, false),
        Field::new(TIMESTAMP, timestamp_type(), false),
        s(TASK_ID),
        s(WORKER_ID),
        s(HARDWARE_CLASS),
        s(KIND),
        s(FAILURE_TYPE),
        Field::new(TEMPLATE_ID, DataType::UInt64, false),
        s(TEMPLATE),
        Field::new(CLUSTER_ID, DataType::Int64, true),
        s(MESSAGE),
    ]))
}

/// Streams classified failures into one Parquet file: written under a temporary name and
/// renamed into place by [`Self::finish`], so a reader never sees half a file.
pub struct ClassifiedWriter {
    path: PathBuf,
    tmp: PathBuf,
    schema: SchemaRef,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl std::fmt::Debug for ClassifiedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifiedWriter")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

impl ClassifiedWriter {
    /// Starts the file at `path` (its directory is created).
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        let tmp = super::parquet_store::temporary(path);
        let file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(128 * 1024))
            .build();
        let schema = export_schema();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| StoreError::parquet(&tmp, e))?;
        Ok(ClassifiedWriter {
            path: path.to_path_buf(),
            tmp,
            schema,
            writer,
            rows: 0,
        })
    }

    /// Appends a batch; fails if its columns differ in length.
    pub fn write(&mut self, b: &ClassifiedBatch<'_>) -> Result<(), StoreError> {
        let n = b.len();
        let lens = [
            b.timestamp_us.len(),
            b.task_id.len(),
            b.worker_id.len(),
            b.hardware_class.len(),
            b.kind.len(),
            b.failure_type.len(),
            b.template_id.len(),
            b.template.len(),
            b.cluster_id.len(),
            b.message.len(),
        ];
        if lens.iter().any(|&l| l != n) {
            return Err(StoreError::Encode(format!(
                "classified batch columns differ in length: {n} rows, columns {lens:?}"
            )));
        }
        if n == 0 {
            return Ok(());
        }
        let s = |v: &[&str]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(b.seq.clone())),
            Arc::new(
                TimestampMicrosecondArray::from(b.timestamp_us.clone()).with_timezone(TIMESTAMP_TZ),
            ),
            s(&b.task_id),
            s(&b.worker_id),
            s(&b.hardware_class),
            s(&b.kind),
            s(&b.failure_type),
            Arc::new(UInt64Array::from(b.template_id.clone())),
            s(&b.template),
            Arc::new(Int64Array::from(b.cluster_id.clone())),
            s(&b.message),
        ];
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| StoreError::Encode(e.to_string()))?;
        self.writer
            .write(&batch)
            .map_err(|e| StoreError::parquet(&self.tmp, e))?;
        self.rows += n as u64;
        Ok(())
    }

    /// Closes the file, fsyncs it and renames it into place; returns the rows written.
    pub fn finish(self) -> Result<u64, StoreError> {
        let file = self
            .writer
            .into_inner()
            .map_err(|e| StoreError::parquet(&self.tmp, e))?;
        file.sync_all().map_err(|e| StoreError::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| StoreError::io(&self.path, e))?;
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => fsync_dir(dir)?,
            _ => fsync_dir(Path::new("."))?,
        }
        Ok(self.rows)
    }
}
