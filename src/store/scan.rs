//! Polars lazy scans over a table of the history (projection and predicate pushdown), of the
//! committed history only: the same rows as [`committed_rows`](super::committed_rows).

use std::path::Path;

use polars::prelude::*;

use super::committed::{flushed_seq, parts};
use super::entry::{Entry, Table};
use super::parquet_store::part_info;
use super::schema::{self, to_batch};
use super::StoreError;

/// The hive partition column every scan adds from the directory names (`date=YYYY-MM-DD`).
const DATE: &str = "date";

/// A lazy frame over the committed rows of `table` under `root` (the data directory), with the
/// `date` partition column from the directory names. Like
/// [`committed_rows`](super::committed_rows), only rows of flushes up to the manifest's
/// `flushed_seq` count (an interrupted flush leaves parts above it, which the next open
/// removes or sets aside) and each sequence number once (an interrupted compaction may leave a row in two
/// parts), in the order of the parts. A table directory without any part (a live server
/// before its first flush of that table) is an empty frame with the table's columns; a
/// missing table directory is an error naming it.
pub fn scan(root: &Path, table: Table) -> Result<LazyFrame, StoreError> {
    let dir = root.join("history").join(table.dir_name());
    if !dir.is_dir() {
        return Err(StoreError::Query(format!(
            "{}: no such table directory",
            dir.display()
        )));
    }
    let flushed = flushed_seq(root)?;
    let mut files = Vec::new();
    parts(&dir, &mut files)?;
    let frame = if files.is_empty() {
        empty(table)
            .map_err(|e| StoreError::Query(format!("{}: {e}", dir.display())))?
            .lazy()
    } else {
        let glob = format!("{}/**/*.parquet", dir.display());
        let args = ScanArgsParquet {
            hive_options: HiveOptions::new_enabled(),
            ..Default::default()
        };
        LazyFrame::scan_parquet(PlRefPath::new(&glob), args)
            .map_err(|e| StoreError::Query(format!("{}: {e}", dir.display())))?
            // Parts written before the UTC mark hold the same instants without it; whichever
            // part the scan takes its schema from, every time column is UTC.
            .with_columns(
                schema::time_columns(table)
                    .map(|c| col(c).cast(time_type()))
                    .collect::<Vec<_>>(),
            )
    };
    if as_committed(&files, flushed) {
        // Nothing for a reader to leave out: the plain scan keeps its predicate pushdown and
        // its memory (deduplicating a million rows held about 120 MB more at the peak).
        return Ok(frame);
    }
    let frame = match flushed {
        Some(s) => frame.filter(col(schema::SEQ).lt_eq(lit(s))),
        None => frame,
    };
    Ok(frame.unique_stable_generic(Some(vec![col(schema::SEQ)]), UniqueKeepStrategy::First))
}

/// The first part of `table` under `root` (in the order a scan reads them) whose file schema
/// has no column `name`; None when every part has it, or a footer cannot be read (the scan
/// reports that itself).
pub fn part_without_column(root: &Path, table: Table, name: &str) -> Option<std::path::PathBuf> {
    let dir = root.join("history").join(table.dir_name());
    let mut files = Vec::new();
    parts(&dir, &mut files).ok()?;
    files.into_iter().find(|f| {
        std::fs::File::open(f)
            .ok()
            .and_then(|file| {
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).ok()
            })
            .is_some_and(|b| b.schema().field_with_name(name).is_err())
    })
}

/// Whether every row under a table is committed and in one part only, read from the footers
/// alone: no part is of a flush above `flushed` (an interrupted flush, which the next open of
/// the store removes or sets aside) and no two parts of one partition have overlapping sequence ranges (an
/// interrupted compaction leaves a row in two parts; so would a part copied by hand). A part whose footer cannot be
/// read, or has no statistics, counts as not (the careful scan then reports or handles it).
fn as_committed(files: &[std::path::PathBuf], flushed: Option<u64>) -> bool {
    // (partition directory, first seq, last seq): a row's partition is its date, so only parts
    // of one directory can hold the same row; one flush's rows follow the previous flush's, so
    // a store's own parts of one directory never overlap.
    let mut ranges = Vec::with_capacity(files.len());
    for f in files {
        match part_info(f) {
            Ok(i) if flushed.is_none_or(|s| i.flush_seq <= s) => match i.seq_range {
                Some((lo, hi)) => ranges.push((f.parent().map(Path::to_path_buf), lo, hi)),
                None if i.rows == 0 => {}
                None => return false,
            },
            _ => return false,
        }
    }
    ranges.sort_unstable();
    ranges
        .windows(2)
        .all(|w| w[0].0 != w[1].0 || w[0].2 < w[1].1)
}

/// An empty frame with the columns a scan of `table` has: the file's, then [`DATE`].
fn empty(table: Table) -> PolarsResult<DataFrame> {
    let none: [&Entry; 0] = [];
    let batch = to_batch(table, &[], &none).map_err(|e| polars_err!(ComputeError: "{e}"))?;
    let mut columns: Vec<Column> = Vec::new();
    for field in batch.schema().fields() {
        let dtype = polars_type(field.data_type())?;
        columns.push(Column::new_empty(field.name().as_str().into(), &dtype));
    }
    columns.push(Column::new_empty(DATE.into(), &DataType::Date));
    DataFrame::new_infer_height(columns)
}

/// The polars type of a scan's time columns: microseconds, UTC.
fn time_type() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

/// The polars type a scan reads an Arrow column of the history as.
fn polars_type(t: &arrow_schema::DataType) -> PolarsResult<DataType> {
    use arrow_schema::DataType as A;
    Ok(match t {
        A::Utf8 => DataType::String,
        A::Float64 => DataType::Float64,
        A::UInt32 => DataType::UInt32,
        A::UInt64 => DataType::UInt64,
        A::Int32 => DataType::Int32,
        A::Int64 => DataType::Int64,
        A::Boolean => DataType::Boolean,
        // Marked UTC, or from a part written before the mark.
        A::Timestamp(arrow_schema::TimeUnit::Microsecond, tz)
            if tz.as_deref().is_none_or(|z| z == schema::TIMESTAMP_TZ) =>
        {
            time_type()
        }
        other => polars_bail!(ComputeError: "no polars type for the history's column type {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::state;
    use crate::store::{committed_rows, ParquetStore, StoreOptions};

    fn seqs(root: &Path, table: Table) -> Vec<u64> {
        let df = scan(root, table)
            .unwrap()
            .select([col(schema::SEQ)])
            .collect()
            .unwrap();
        let mut v: Vec<u64> = df
            .column(schema::SEQ)
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        v.sort_unstable();
        v
    }

    /// Every part file under a table directory.
    fn part_files(root: &Path, table: Table) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        parts(&root.join("history").join(table.dir_name()), &mut files).unwrap();
        files
    }

    /// The manifest's `flushed_seq` set to `s` (as a crash after writing parts and before the
    /// manifest leaves it).
    fn set_flushed(root: &Path, s: u64) {
        let p = root.join("history").join("_manifest.json");
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        v["flushed_seq"] = s.into();
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    }

    /// A store with task states 1..=10 written in two flushes (6 and 4), over two days.
    fn two_flushes() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ParquetStore::open(dir.path(), StoreOptions::default()).unwrap();
        s.write_batch((0..6).map(state).collect()).unwrap();
        s.write_batch((6..10).map(state).collect()).unwrap();
        dir
    }

    #[test]
    fn scans_count_each_committed_row_once() {
        let dir = two_flushes();
        let root = dir.path();
        assert_eq!(seqs(root, Table::TaskStates), (1..=10).collect::<Vec<_>>());
        // A part duplicated (an interrupted compaction leaves rows in two parts): once each.
        let first = part_files(root, Table::TaskStates)[0].clone();
        let copy = first.with_file_name("part-copy.parquet");
        std::fs::copy(&first, &copy).unwrap();
        assert_eq!(seqs(root, Table::TaskStates), (1..=10).collect::<Vec<_>>());
        // Parts of an interrupted flush (above the manifest's flushed_seq) do not count.
        set_flushed(root, 6);
        assert_eq!(seqs(root, Table::TaskStates), (1..=6).collect::<Vec<_>>());
        // The same rows as `committed_rows`, columns and all.
        let want: Vec<u64> = committed_rows(root, Table::TaskStates, Some(6))
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(seqs(root, Table::TaskStates), want);
        let df = scan(root, Table::TaskStates).unwrap().collect().unwrap();
        assert_eq!(df.height(), 6);
        // Without a manifest every part counts, still once.
        std::fs::remove_file(root.join("history").join("_manifest.json")).unwrap();
        assert_eq!(seqs(root, Table::TaskStates), (1..=10).collect::<Vec<_>>());
    }

    /// The plain scan (pushdown, no deduplication) is kept for a history as a store leaves it;
    /// the careful one only when a part is uncommitted or overlaps another.
    #[test]
    fn only_a_history_needing_repair_gets_the_careful_scan() {
        let dir = two_flushes();
        let root = dir.path();
        let files = part_files(root, Table::TaskStates);
        assert!(files.len() >= 2, "{files:?}");
        let flushed = flushed_seq(root).unwrap();
        assert!(as_committed(&files, flushed));
        // An interrupted flush: the newest parts are above the commit point.
        assert!(!as_committed(&files, Some(6)));
        // A row in two parts.
        let copy = files[0].with_file_name("part-copy.parquet");
        std::fs::copy(&files[0], &copy).unwrap();
        assert!(!as_committed(&part_files(root, Table::TaskStates), flushed));
    }

    #[test]
    fn a_table_without_parts_is_an_empty_frame_with_the_tables_columns() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut s = ParquetStore::open(root, StoreOptions::default()).unwrap();
        s.write_batch((0..4).map(state).collect()).unwrap();
        drop(s);
        let full = scan(root, Table::TaskStates).unwrap().collect().unwrap();
        // The table's directory, emptied (a live server before its first flush of it).
        for f in part_files(root, Table::TaskStates) {
            std::fs::remove_file(f).unwrap();
        }
        let empty = scan(root, Table::TaskStates).unwrap().collect().unwrap();
        assert_eq!(empty.height(), 0);
        assert_eq!(empty.schema(), full.schema(), "the same columns and types");
        // Queries run on it.
        let n = scan(root, Table::TaskStates)
            .unwrap()
            .filter(col(schema::NOTE).eq(lit("n1")))
            .group_by([col(schema::TASK_ID)])
            .agg([len().alias("n")])
            .collect()
            .unwrap();
        assert_eq!(n.height(), 0);
        // Every table's empty frame has the table's columns, then the partition.
        for table in Table::ALL {
            let df = super::empty(table).unwrap();
            let mut want = schema::column_names(table);
            want.push(DATE.to_string());
            let got: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|c| c.to_string())
                .collect();
            assert_eq!(got, want, "{table:?}");
        }
        // A missing table directory is still an error naming it.
        let bare = tempfile::tempdir().unwrap();
        std::fs::create_dir(bare.path().join("history")).unwrap();
        let Err(e) = scan(bare.path(), Table::Patterns) else {
            panic!("a missing table directory scanned");
        };
        let e = e.to_string();
        assert!(
            e.contains("patterns") && e.contains("no such table directory"),
            "{e}"
        );
    }

    /// A part rewritten as a build before the UTC mark wrote it: the same rows and metadata,
    /// its time column without a zone.
    fn strip_zone(path: &Path) {
        use arrow_array::Array;
        let file = std::fs::File::open(path).unwrap();
        let b =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let meta = b.metadata().file_metadata().key_value_metadata().cloned();
        let batches: Vec<_> = b.build().unwrap().map(Result::unwrap).collect();
        let schema = batches[0].schema();
        let fields: Vec<arrow_schema::Field> = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                arrow_schema::DataType::Timestamp(u, Some(_)) => f
                    .as_ref()
                    .clone()
                    .with_data_type(arrow_schema::DataType::Timestamp(*u, None)),
                _ => f.as_ref().clone(),
            })
            .collect();
        let bare = std::sync::Arc::new(arrow_schema::Schema::new(fields));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_key_value_metadata(meta)
            .build();
        let out = std::fs::File::create(path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(out, bare.clone(), Some(props)).unwrap();
        for batch in batches {
            let columns = batch
                .columns()
                .iter()
                .map(|c| match c.data_type() {
                    arrow_schema::DataType::Timestamp(..) => std::sync::Arc::new(
                        c.as_any()
                            .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                            .unwrap()
                            .clone()
                            .with_timezone_opt(None::<String>),
                    )
                        as arrow_array::ArrayRef,
                    _ => c.clone(),
                })
                .collect();
            w.write(&arrow_array::RecordBatch::try_new(bare.clone(), columns).unwrap())
                .unwrap();
        }
        w.close().unwrap();
    }

    /// Time columns are marked UTC, so that Parquet readers show instants; a history whose
    /// older parts were written without the mark (every build before it) scans and reads as
    /// one, with the same instants.
    #[test]
    fn time_columns_are_utc_and_parts_without_the_mark_still_read() {
        let dir = two_flushes();
        let root = dir.path();
        let files = part_files(root, Table::TaskStates);
        let time_type = |p: &Path| {
            let file = std::fs::File::open(p).unwrap();
            let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap();
            let is_utc = match b
                .parquet_schema()
                .columns()
                .iter()
                .find(|c| c.name() == schema::TIMESTAMP)
            {
                Some(c) => match c.logical_type_ref() {
                    Some(parquet::basic::LogicalType::Timestamp(t)) => t.is_adjusted_to_u_t_c,
                    other => panic!("{other:?}"),
                },
                None => panic!("no time column"),
            };
            (
                b.schema()
                    .field_with_name(schema::TIMESTAMP)
                    .unwrap()
                    .data_type()
                    .clone(),
                is_utc,
            )
        };
        for f in &files {
            assert_eq!(time_type(f), (schema::timestamp_type(), true), "{f:?}");
        }
        let times = |root: &Path| {
            let df = scan(root, Table::TaskStates)
                .unwrap()
                .sort([schema::SEQ], Default::default())
                .collect()
                .unwrap();
            let c = df.column(schema::TIMESTAMP).unwrap();
            assert_eq!(c.dtype(), &super::time_type());
            c.datetime()
                .unwrap()
                .physical()
                .into_no_null_iter()
                .collect::<Vec<i64>>()
        };
        let want = times(root);
        assert_eq!(want.len(), 10);
        let rows = committed_rows(root, Table::TaskStates, None).unwrap();
        // The older of the two flushes as a build before the mark wrote it, then the newer.
        let copy = tempfile::tempdir().unwrap();
        for f in &files {
            let to = copy.path().join(f.strip_prefix(root).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(f, to).unwrap();
        }
        let manifest = Path::new("history").join("_manifest.json");
        std::fs::copy(root.join(&manifest), copy.path().join(&manifest)).unwrap();
        strip_zone(&part_files(copy.path(), Table::TaskStates)[1]);
        assert_eq!(times(copy.path()), want);
        strip_zone(&files[0]);
        assert_eq!(
            time_type(&files[0]),
            (
                arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None),
                false
            )
        );
        assert_eq!(times(root), want);
        assert_eq!(committed_rows(root, Table::TaskStates, None).unwrap(), rows);
        let s = ParquetStore::open(root, StoreOptions::default()).unwrap();
        assert!(s.open_report().warnings.is_empty(), "{:?}", s.open_report());
    }

    /// Every table's time columns (a pattern's `first_seen` and `last_seen` too) scan as UTC
    /// with the same instants whether a part carries the mark or not: polars panicked on a
    /// history of both before the scan cast them.
    #[test]
    fn every_tables_time_columns_scan_alike_with_and_without_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut s = ParquetStore::open(root, StoreOptions::default()).unwrap();
        s.write_batch(crate::store::tests::one_of_each()).unwrap();
        s.write_batch(crate::store::tests::one_of_each()).unwrap();
        drop(s);
        let times = |table: Table| {
            let df = scan(root, table)
                .unwrap()
                .sort([schema::SEQ], Default::default())
                .collect()
                .unwrap();
            let mut out = Vec::new();
            for name in schema::time_columns(table) {
                let c = df.column(name).unwrap();
                assert_eq!(c.dtype(), &super::time_type(), "{table:?} {name}");
                out.push((
                    name,
                    c.datetime()
                        .unwrap()
                        .physical()
                        .into_no_null_iter()
                        .collect::<Vec<i64>>(),
                ));
            }
            out
        };
        for table in Table::ALL {
            let want = times(table);
            let columns = if table == Table::Patterns { 3 } else { 1 };
            assert_eq!(want.len(), columns, "{table:?}");
            assert!(
                want.iter().all(|(_, v)| v.len() == 2),
                "{table:?}: {want:?}"
            );
            let files = part_files(root, table);
            assert_eq!(files.len(), 2, "{table:?}");
            strip_zone(&files[0]);
            assert_eq!(times(table), want, "{table:?}");
        }
    }
}
