//! The durable store: WAL for acknowledged writes, Hive-partitioned Parquet parts for
//! history, a manifest as the commit point of every flush.
//!
//! Exactly-once: a flush writes its parts (temporary name → fsync → rename → fsync dir),
//! tags each with `faultline.flush_seq = S`, then atomically replaces `history/_manifest.json`
//! with `flushed_seq = S`, and only then retires WAL segments. On open, parts tagged above the
//! manifest whose every record is still in the WAL (an interrupted flush) are removed, other
//! parts above it (an interrupted bulk write) are set aside as `.parquet.uncommitted`, and WAL
//! records with `seq ≤ flushed_seq` are skipped — so a crash anywhere between flush and retire
//! neither loses nor duplicates. The manifest is written when the store is created; one lost
//! later is rebuilt from the parts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, RecordBatch, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{FileMetaData, KeyValue};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use super::batch::{self, ColumnBatch};
use super::entry::{Encoded, Entry, Table};
use super::merge::{self, read_part_rows, MergeStop};
use super::schema::{
    self, META_FLUSH_SEQ, META_REPLACES, META_SCHEMA_VERSION, META_TABLE, SCHEMA_VERSION,
};
use super::wal::{self, Ack, Wal, WalRecord};
use super::{fsync_dir, HistoryStore, StoreError};
use crate::model::TaskId;

/// Store settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOptions {
    /// How long a group-commit leader waits for more writers before fsync (≤ 5 ms).
    pub group_wait: Duration,
    /// Flush the WAL into Parquet once this many entries are pending.
    pub flush_every: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            group_wait: Duration::from_micros(500),
            flush_every: 50_000,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    flushed_seq: u64,
    schema_version: u32,
    /// Rows the committed parts hold, all tables together (absent in manifests of earlier
    /// versions: counted at the next open). A store that opens with fewer says so: a part
    /// deleted or lost went unnoticed before (an audit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
    /// Committed rows found gone at an earlier open and not yet acknowledged by a
    /// compaction: every open says so until then, the read-only readers too (an audit: the
    /// first writer's open said it once and reset the count, and every later reader was
    /// silent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gone: Option<u64>,
}

/// Rows of the committed parts `parts`, a part replaced by a compacted one that lists it
/// (an interrupted compaction) counted once.
pub(crate) fn committed_rows(parts: &[PartInfo]) -> u64 {
    let replaced: std::collections::HashSet<PathBuf> = parts
        .iter()
        .flat_map(|p| {
            let dir = p.path.parent().map(Path::to_path_buf).unwrap_or_default();
            p.replaces.iter().map(move |r| dir.join(r))
        })
        .collect();
    parts
        .iter()
        .filter(|p| !replaced.contains(&p.path))
        .map(|p| p.rows as u64)
        .sum()
}

/// What opening a store found and repaired.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenReport {
    /// Warnings (torn tails, bad frames, orphaned or unreadable parts), each naming a file.
    pub warnings: Vec<String>,
    /// WAL records replayed (not yet in Parquet).
    pub replayed: usize,
}

/// Parquet history + WAL in one directory, opened by one store at a time (`.lock`).
#[derive(Debug)]
pub struct ParquetStore {
    root: PathBuf,
    opts: StoreOptions,
    wal: Arc<Wal>,
    next_seq: u64,
    flushed_seq: u64,
    pending: Vec<WalRecord>,
    /// A flush job is out (see [`ParquetStore::begin_flush`]).
    flushing: bool,
    /// A compaction job is out (see [`ParquetStore::begin_compact`]): no flush starts
    /// meanwhile, as both commit through the manifest.
    compacting: bool,
    /// Why the last inline flush of [`ParquetStore::log`] failed, until one succeeds.
    flush_error: Option<String>,
    /// Pending entries at which `log` next flushes inline: `flush_every`, or twice what was
    /// pending when an inline flush failed (each attempt writes every pending entry).
    flush_at: usize,
    report: OpenReport,
    /// The directory's lock (`.lock`), held while the store is open: opening repairs the
    /// directory (removes temporaries, removes or sets aside uncommitted parts, replays the
    /// WAL), which only one
    /// writer may do, and two writers would interleave one WAL.
    _lock: std::fs::File,
}

/// A Parquet part with its metadata.
#[derive(Debug, Clone)]
pub struct PartInfo {
    /// File.
    pub path: PathBuf,
    /// Flush that committed it.
    pub flush_seq: u64,
    /// File names it replaces (compaction).
    pub replaces: Vec<String>,
    /// Rows.
    pub rows: usize,
    /// Smallest and largest sequence number of its rows, from the footer's column statistics
    /// (`None` when the footer has none, or the part no rows).
    pub seq_range: Option<(u64, u64)>,
}

pub(super) fn props(table: Table, flush_seq: u64, replaces: &[String]) -> WriterProperties {
    let mut kv = vec![
        KeyValue::new(META_SCHEMA_VERSION.to_string(), SCHEMA_VERSION.to_string()),
        KeyValue::new(META_TABLE.to_string(), table.dir_name().to_string()),
        KeyValue::new(META_FLUSH_SEQ.to_string(), flush_seq.to_string()),
    ];
    if !replaces.is_empty() {
        kv.push(KeyValue::new(META_REPLACES.to_string(), replaces.join(",")));
    }
    // The payload (one JSON document per row, all distinct) and the failure message (mostly
    // distinct: they carry sizes, addresses, ids) gain nothing from a dictionary or min/max
    // statistics, and they cost a hash and comparisons of every long string. Task ids repeat
    // only over a task's few attempts: without a dictionary the 1M-record ingest's history is
    // 4 % smaller (26 vs 27 MB) at the same CPU time.
    let payload = ColumnPath::from(schema::PAYLOAD);
    let message = ColumnPath::from(schema::MESSAGE);
    let task_id = ColumnPath::from(schema::TASK_ID);
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_key_value_metadata(Some(kv))
        .set_column_dictionary_enabled(payload.clone(), false)
        .set_column_statistics_enabled(payload, EnabledStatistics::None)
        .set_column_dictionary_enabled(message.clone(), false)
        .set_column_statistics_enabled(message, EnabledStatistics::None)
        .set_column_dictionary_enabled(task_id, false)
        .build()
}

/// The temporary name a part is written under before it is renamed into place:
/// `_NAME.parquet.tmp` beside it. The leading `_` keeps it out of what Parquet readers
/// (pyarrow, polars, duckdb) take for data files while it exists (an audit: a temporary left
/// by a failed or killed write broke every reader of the directory with "magic bytes not
/// found"); the next writer's open removes any it finds.
pub(crate) fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "part".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!("_{name}.tmp"))
}

/// Writes `batches` to `path` atomically: temporary name, fsync, rename, fsync directory. A
/// write that fails removes its temporary (an audit: a full disk left them behind, and with
/// them the space a compaction had taken).
fn write_atomic(
    path: &Path,
    batches: &[RecordBatch],
    props: WriterProperties,
) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .ok_or_else(|| StoreError::io(path, std::io::Error::other("no parent")))?;
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    let tmp = temporary(path);
    let written = write_temporary(&tmp, batches, props);
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
    fsync_dir(dir)
}

/// Writes and fsyncs `batches` to `tmp` (see [`write_atomic`]).
fn write_temporary(
    tmp: &Path,
    batches: &[RecordBatch],
    props: WriterProperties,
) -> Result<(), StoreError> {
    let file = File::create(tmp).map_err(|e| StoreError::io(tmp, e))?;
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| StoreError::Encode("no rows to write".into()))?;
    let mut w =
        ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| StoreError::parquet(tmp, e))?;
    for b in batches {
        w.write(b).map_err(|e| StoreError::parquet(tmp, e))?;
    }
    let file = w.into_inner().map_err(|e| StoreError::parquet(tmp, e))?;
    file.sync_all().map_err(|e| StoreError::io(tmp, e))
}

/// Part files written at once by one commit (each is fsynced on its own: writing them side
/// by side lets the file system share the waits when a batch spans many days).
const PARALLEL_WRITES: usize = 8;

/// A part to write: its table, file and rows.
type PartFile = (Table, PathBuf, Vec<RecordBatch>);

/// Writes every part with [`write_atomic`] (tagged with `flush_seq`), up to
/// [`PARALLEL_WRITES`] at a time; returns the first error once all writers stopped (the
/// manifest, written after, is the commit point: the commit removes the parts of a failed
/// write itself, and the next open those a crash left).
fn write_parts(parts: &[PartFile], flush_seq: u64) -> Result<(), StoreError> {
    let width = parts.len().min(PARALLEL_WRITES);
    if width <= 1 {
        for (table, path, batches) in parts {
            write_atomic(path, batches, props(*table, flush_seq, &[]))?;
        }
        return Ok(());
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..width)
            .map(|_| {
                s.spawn(|| -> Result<(), StoreError> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((table, path, batches)) = parts.get(i) else {
                            return Ok(());
                        };
                        write_atomic(path, batches, props(*table, flush_seq, &[]))?;
                    }
                })
            })
            .collect();
        let mut result = Ok(());
        for w in writers {
            let r = w
                .join()
                .unwrap_or_else(|_| Err(StoreError::Encode("a part writer panicked".into())));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<(), StoreError> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Encode(e.to_string()))?;
    {
        let mut f = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        std::io::Write::write_all(&mut f, &text).map_err(|e| StoreError::io(&tmp, e))?;
        f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
    fsync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// The value of a key of a Parquet file's metadata.
fn meta_value(md: &FileMetaData, key: &str) -> Option<String> {
    md.key_value_metadata()
        .and_then(|kv| kv.iter().find(|x| x.key == key))
        .and_then(|x| x.value.clone())
}

/// The schema version and table of a faultline part, from its metadata (see
/// [`schema::version_of`] and [`schema::table_of`]).
pub(super) fn part_layout(md: &FileMetaData) -> Result<(u32, Option<Table>), String> {
    let version = schema::version_of(meta_value(md, META_SCHEMA_VERSION).as_deref())?;
    let table = schema::table_of(version, meta_value(md, META_TABLE).as_deref())?;
    Ok((version, table))
}

/// Reads a part's metadata (and checks that the footer is readable).
pub fn part_info(path: &Path) -> Result<PartInfo, StoreError> {
    let f = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let b =
        ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| StoreError::parquet(path, e))?;
    let md = b.metadata().file_metadata();
    let get = |k: &str| meta_value(md, k);
    Ok(PartInfo {
        path: path.to_path_buf(),
        flush_seq: get(META_FLUSH_SEQ)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        replaces: get(META_REPLACES)
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        rows: md.num_rows() as usize,
        seq_range: seq_range(b.metadata()),
    })
}

/// The range of the `seq` column over every row group, from the statistics the writer keeps
/// for it; `None` when a row group has none.
fn seq_range(md: &parquet::file::metadata::ParquetMetaData) -> Option<(u64, u64)> {
    use parquet::file::statistics::Statistics;
    let mut range: Option<(u64, u64)> = None;
    for rg in md.row_groups() {
        let chunk = rg
            .columns()
            .iter()
            .find(|c| c.column_path().string() == schema::SEQ)?;
        let Some(Statistics::Int64(st)) = chunk.statistics() else {
            return None;
        };
        // The column is UInt64, stored as INT64: the bits are the number.
        let (lo, hi) = (*st.min_opt()? as u64, *st.max_opt()? as u64);
        range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
    }
    range
}

/// Reads `(seq, entry)` of every row of a part, of either schema version.
pub fn read_part(path: &Path) -> Result<Vec<(u64, Entry)>, StoreError> {
    let (rows, bad) = read_part_rows(path)?;
    match bad.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

/// The sequence numbers of a part's rows (the `seq` column alone).
pub(super) fn part_seqs(path: &Path) -> Result<Vec<u64>, StoreError> {
    let f = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let b =
        ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| StoreError::parquet(path, e))?;
    let mask = ProjectionMask::columns(b.parquet_schema(), [schema::SEQ]);
    let reader = b
        .with_projection(mask)
        .build()
        .map_err(|e| StoreError::parquet(path, e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| StoreError::parquet(path, e))?;
        let seq = batch
            .column_by_name(schema::SEQ)
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
            .ok_or_else(|| StoreError::Decode(format!("{}: no seq column", path.display())))?;
        out.extend(seq.values().iter().copied());
    }
    Ok(out)
}

impl ParquetStore {
    /// Opens (or creates) a store under `root`, repairing what a crash left behind.
    pub fn open(root: &Path, opts: StoreOptions) -> Result<Self, StoreError> {
        let history = root.join("history");
        std::fs::create_dir_all(&history).map_err(|e| StoreError::io(&history, e))?;
        let lock_path = root.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Busy { path: lock_path })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::io(&lock_path, e)),
        }
        Self::open_locked(root, opts, lock)
    }

    /// What opens this store's directory again ([`Reopener::open`]), beside this store,
    /// whose lock the new one shares: no other process can take the directory in between.
    /// For an owner that replaces a store whose write-ahead log failed (a full disk, since
    /// freed) with what a restart would open. This store must not be written through any
    /// more once the other is open.
    pub fn reopener(&self) -> Result<Reopener, StoreError> {
        let lock_path = self.root.join(".lock");
        let lock = self
            ._lock
            .try_clone()
            .map_err(|e| StoreError::io(&lock_path, e))?;
        Ok(Reopener {
            root: self.root.clone(),
            opts: self.opts.clone(),
            lock,
        })
    }

    /// [`ParquetStore::open`] once `lock` holds the directory's lock.
    fn open_locked(
        root: &Path,
        opts: StoreOptions,
        lock: std::fs::File,
    ) -> Result<Self, StoreError> {
        let history = root.join("history");
        let mut report = OpenReport::default();
        let manifest_path = history.join("_manifest.json");
        let found: Option<Manifest> = match std::fs::read(&manifest_path) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(m) => Some(m),
                Err(e) => {
                    // A manifest that does not parse (garbage, cut to nothing) is what a
                    // missing one is: the commit point is rebuilt from the parts below. It
                    // is kept beside, for a look (an audit: it stopped every command).
                    let aside = history.join("_manifest.json.corrupt");
                    std::fs::rename(&manifest_path, &aside)
                        .map_err(|e| StoreError::io(&manifest_path, e))?;
                    report.warnings.push(format!(
                        "{}: unreadable ({e}): set aside as {}, and the manifest is rebuilt from the parts",
                        manifest_path.display(),
                        aside.display()
                    ));
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(StoreError::io(&manifest_path, e)),
        };
        if let Some(m) = &found {
            if m.schema_version > SCHEMA_VERSION {
                return Err(StoreError::Decode(format!(
                    "{}: schema version {} is newer than this faultline ({SCHEMA_VERSION})",
                    manifest_path.display(),
                    m.schema_version
                )));
            }
        }
        // The WAL first: which records it still holds tells a part of an interrupted flush
        // (its records are in the WAL, replayed below) from a part whose records are nowhere
        // else.
        let wal_dir = root.join("wal");
        let segs = wal::segments(&wal_dir)?;
        let mut logged = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            let (recs, warns) = wal::read_segment(s, i + 1 == segs.len())?;
            report.warnings.extend(warns.iter().map(|w| w.to_string()));
            logged.extend(recs);
        }
        let in_wal: std::collections::HashSet<u64> = logged.iter().map(|r| r.seq).collect();
        // Every sequence number of the part's rows is in the WAL (read from the part: a WAL
        // frame skipped as damaged must not count as held).
        let held_by_wal = |info: &PartInfo| {
            !in_wal.is_empty()
                && info
                    .seq_range
                    .is_some_and(|(lo, hi)| in_wal.contains(&lo) && in_wal.contains(&hi))
                && part_seqs(&info.path)
                    .is_ok_and(|seqs| !seqs.is_empty() && seqs.iter().all(|s| in_wal.contains(s)))
        };
        // Parts: drop temporaries and uncommitted parts, finish interrupted compactions,
        // set unreadable parts aside.
        for p in all_files(&history, "parquet.tmp")? {
            std::fs::remove_file(&p).map_err(|e| StoreError::io(&p, e))?;
            report
                .warnings
                .push(format!("{}: unfinished write removed", p.display()));
        }
        let mut infos = Vec::new();
        for p in all_files(&history, "parquet")? {
            match part_info(&p) {
                Ok(info) => infos.push(info),
                Err(e) => {
                    let aside = aside_name(&p, "corrupt");
                    std::fs::rename(&p, &aside).map_err(|e| StoreError::io(&p, e))?;
                    report
                        .warnings
                        .push(format!("{e}; moved aside to {}", aside.display()));
                }
            }
        }
        // The commit point. Every store writes its manifest when it is created, so a missing
        // one beside parts was lost: then only the parts of the newest flush can be of an
        // interrupted one; the older flushes were committed (an audit found a lost manifest
        // read as 0 deleting the whole history).
        let committed = match &found {
            Some(m) => m.flushed_seq,
            None => infos
                .iter()
                .map(|i| i.flush_seq)
                .max()
                .map_or(0, |newest| newest.saturating_sub(1)),
        };
        let mut parts = Vec::new();
        for info in infos {
            let p = info.path.clone();
            if info.flush_seq <= committed {
                parts.push(info);
            } else if held_by_wal(&info) {
                // Above the commit point, its records in the WAL: a flush interrupted before
                // its manifest; the WAL replays them.
                std::fs::remove_file(&p).map_err(|e| StoreError::io(&p, e))?;
                report.warnings.push(format!(
                    "{}: part of an interrupted flush (flush {} above the committed {}) removed; its records are replayed from the WAL",
                    p.display(),
                    info.flush_seq,
                    committed
                ));
            } else if found.is_none() {
                // The newest flush with a lost manifest, its records nowhere else: kept.
                parts.push(info);
            } else {
                // Above the commit point, its records nowhere else: a bulk write interrupted
                // before its manifest, or a manifest older than the history (restored from a
                // backup). Set aside, never deleted; its sequence numbers are not reused.
                let aside = aside_name(&p, "uncommitted");
                std::fs::rename(&p, &aside).map_err(|e| StoreError::io(&p, e))?;
                report.warnings.push(format!(
                    "{}: part of flush {}, above the committed {} in {}, and its records are not in the WAL (an interrupted bulk write, or a manifest older than the history): set aside, not read, as {}",
                    p.display(),
                    info.flush_seq,
                    committed,
                    manifest_path.display(),
                    aside.display()
                ));
            }
        }
        // Parts a merged part replaces, left by a compaction interrupted before it removed
        // them: removed, and not counted — before, their rows were counted twice here, and
        // the next open said that many committed rows were gone (a review).
        let mut finished = HashSet::new();
        for info in &parts {
            if let Some(dir) = info.path.parent() {
                for r in &info.replaces {
                    let old = dir.join(r);
                    // Never the part itself (a review: a merge whose output took one of its
                    // inputs' names listed itself, and this removed the merged part).
                    if old != info.path && old.exists() {
                        std::fs::remove_file(&old).map_err(|e| StoreError::io(&old, e))?;
                        report.warnings.push(format!(
                            "{}: finished an interrupted compaction",
                            old.display()
                        ));
                        finished.insert(old);
                    }
                }
            }
        }
        parts.retain(|p| !finished.contains(&p.path));
        let manifest = match found {
            Some(m) => m,
            None => {
                let m = Manifest {
                    flushed_seq: parts.iter().map(|p| p.flush_seq).max().unwrap_or(0),
                    schema_version: SCHEMA_VERSION,
                    rows: Some(committed_rows(&parts)),
                    gone: None,
                };
                write_json_atomic(&manifest_path, &m)?;
                if !parts.is_empty() {
                    report.warnings.push(format!(
                        "{}: missing beside {} part(s); rebuilt from them (committed through sequence {})",
                        manifest_path.display(),
                        parts.len(),
                        m.flushed_seq
                    ));
                }
                m
            }
        };
        // The committed parts hold the rows the manifest counts; fewer is data lost since
        // (a part deleted, or set aside above as unreadable). Said, then counted afresh.
        let present = committed_rows(&parts);
        let mut manifest = manifest;
        if manifest.rows != Some(present) {
            if let Some(counted) = manifest.rows.filter(|&c| c > present) {
                report.warnings.push(format!(
                    "{}: the committed parts hold {present} rows where {} counts {counted}: {} committed rows are gone (a part deleted, lost, damaged beyond reading, or set aside as unreadable); said at every open until `faultline compact` acknowledges it",
                    history.display(),
                    manifest_path.display(),
                    counted - present
                ));
                manifest.gone = Some(manifest.gone.unwrap_or(0) + (counted - present));
            }
            manifest.rows = Some(present);
            write_json_atomic(&manifest_path, &manifest)?;
        } else if let Some(gone) = manifest.gone.filter(|&g| g > 0) {
            report.warnings.push(gone_warning(&history, gone));
        }
        // Sequence numbers of parts set aside as uncommitted, now or at an earlier open, are
        // not given out again.
        let mut aside_max = 0;
        for p in all_files(&history, "parquet.uncommitted")? {
            if let Ok(info) = part_info(&p) {
                aside_max = aside_max.max(info.seq_range.map_or(info.flush_seq, |r| r.1));
            }
        }
        // WAL: replay what the manifest does not cover — and what it claims but no part can
        // hold: records above every committed part's sequence numbers (an audit: a manifest
        // whose flushed_seq had gone up dropped 200 acknowledged records without a word, and
        // the next flush retired the WAL that held them).
        let held_up_to = parts
            .iter()
            .map(|p| p.seq_range.map_or(0, |r| r.1))
            .max()
            .unwrap_or(0);
        let mut pending = Vec::new();
        let mut max_seq = manifest.flushed_seq.max(aside_max);
        let mut unheld = (0usize, u64::MAX, 0u64);
        for r in logged {
            max_seq = max_seq.max(r.seq);
            if r.seq > manifest.flushed_seq {
                pending.push(r);
            } else if r.seq > held_up_to {
                unheld = (unheld.0 + 1, unheld.1.min(r.seq), unheld.2.max(r.seq));
                pending.push(r);
            }
        }
        if unheld.0 > 0 {
            report.warnings.push(format!(
                "{}: it says sequence numbers through {} are in Parquet, but no part holds any above {held_up_to}; the write-ahead log's {} record(s) {}..{} are replayed from it",
                manifest_path.display(),
                manifest.flushed_seq,
                unheld.0,
                unheld.1,
                unheld.2
            ));
        }
        pending.sort_by_key(|r| r.seq);
        pending.dedup_by_key(|r| r.seq);
        report.replayed = pending.len();
        let seg = match segs.last() {
            Some(s) => s.clone(),
            None => wal_dir.join(wal::segment_name(max_seq + 1)),
        };
        let wal = Wal::open(&seg, max_seq, opts.group_wait)?;
        Ok(ParquetStore {
            root: root.to_path_buf(),
            opts,
            wal,
            next_seq: max_seq + 1,
            flushed_seq: manifest.flushed_seq,
            pending,
            flushing: false,
            compacting: false,
            flush_error: None,
            flush_at: 0,
            report,
            _lock: lock,
        })
    }

    /// What opening found.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The WAL segment being written.
    pub fn wal_path(&self) -> PathBuf {
        self.wal.path()
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of a table.
    pub fn table_dir(&self, table: Table) -> PathBuf {
        table_dir(&self.root, table)
    }

    /// Gives entries the next sequence numbers.
    fn sequence(&mut self, entries: Vec<Entry>) -> Vec<WalRecord> {
        entries
            .into_iter()
            .map(|entry| {
                let seq = self.next_seq;
                self.next_seq += 1;
                WalRecord { seq, entry }
            })
            .collect()
    }

    /// Logs entries through the WAL; the returned [`Ack`] resolves after their fsync. Every
    /// [`StoreOptions::flush_every`] pending entries it flushes them inline (waiting for their
    /// fsync and writing Parquet under the caller's borrow) — unless a flush begun with
    /// [`ParquetStore::begin_flush`] is running, when the entries wait for the next one. An
    /// error means the entries were not logged: an inline flush that fails after they were
    /// does not fail the call (see [`ParquetStore::flush_error`]).
    pub fn log(&mut self, entries: Vec<Entry>) -> Result<Ack, StoreError> {
        let recs = self.sequence(entries);
        let ack = self.wal.enqueue(&recs)?;
        self.pending.extend(recs);
        // Not while a background flush runs: the inline one would fail with
        // `FlushInProgress` after the entries were logged, and a caller would take logged
        // entries for refused ones (library audit).
        if !self.flushing
            && !self.compacting
            && self.pending.len() >= self.flush_at.max(self.opts.flush_every)
        {
            ack.clone().wait()?;
            // The entries are durable in the WAL now. A flush that fails (a full disk, a
            // directory not writable) keeps them pending and is tried again later; it must
            // not read as their refusal, or a caller retries entries already logged (a
            // decision made twice). Why it failed stays readable (`flush_error`), and an
            // explicit `flush` still fails.
            match self.flush() {
                Ok(()) => {}
                Err(e) => {
                    self.flush_error = Some(e.to_string());
                    self.flush_at = self.pending.len().saturating_mul(2);
                }
            }
        }
        Ok(ack)
    }

    /// Writes entries straight into Parquet parts (bulk ingest): flushes the WAL first so
    /// sequence numbers stay ordered, then commits the parts with one manifest update.
    pub fn write_batch(&mut self, entries: Vec<Entry>) -> Result<(), StoreError> {
        let batch = batch::of_entries(entries.iter().enumerate().map(|(i, e)| (i as u64, e)))?;
        self.write_columns(batch)
    }

    /// [`write_batch`](Self::write_batch) of entries whose payloads were encoded ahead (on
    /// other threads): the same parts, the same bytes, less work on the writing thread.
    pub fn write_encoded(&mut self, entries: Vec<Encoded>) -> Result<(), StoreError> {
        let mut batch = ColumnBatch::new();
        for e in &entries {
            batch.push_encoded(e)?;
        }
        drop(entries);
        self.write_columns(batch)
    }

    /// [`write_batch`](Self::write_batch) of rows already laid out in columns (built as
    /// they arrived, e.g. by bulk ingest): the same parts, the same bytes, without holding
    /// the entries. The batch's rows take the next sequence numbers, in push order.
    pub fn write_columns(&mut self, batch: ColumnBatch) -> Result<(), StoreError> {
        self.flush()?;
        let first = self.next_seq;
        self.next_seq += batch.len() as u64;
        if let Some(last) = commit_columns(&self.root, batch, first)? {
            self.flushed_seq = last;
        }
        Ok(())
    }
}

/// Writes a batch as Parquet parts under `root`'s history (one per table and date, side by
/// side), with `offset` added to its sequence numbers, and commits them in the manifest;
/// returns the flushed sequence number (none when there are no rows).
fn commit_columns(root: &Path, batch: ColumnBatch, offset: u64) -> Result<Option<u64>, StoreError> {
    let (groups, last) = batch.finish(offset)?;
    let Some(last) = last else {
        return Ok(None);
    };
    let parts: Vec<PartFile> = groups
        .into_iter()
        .map(|(table, date, first, batches)| {
            let path = table_dir(root, table)
                .join(format!("date={date}"))
                .join(format!("part-{last:020}-{first:020}.parquet"));
            (table, path, batches)
        })
        .collect();
    let history = root.join("history");
    let manifest = history.join("_manifest.json");
    let added: u64 = parts
        .iter()
        .flat_map(|(_, _, batches)| batches.iter().map(|b| b.num_rows() as u64))
        .sum();
    let before = std::fs::read(&manifest)
        .ok()
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok());
    let written = write_parts(&parts, last).and_then(|()| {
        write_json_atomic(
            &manifest,
            &Manifest {
                flushed_seq: last,
                schema_version: SCHEMA_VERSION,
                rows: before.as_ref().and_then(|m| m.rows).map(|r| r + added),
                gone: before.as_ref().and_then(|m| m.gone),
            },
        )
    });
    if let Err(e) = written {
        // Committed after all when the manifest was replaced before the error (its
        // directory's fsync failed): the parts stay. Otherwise this commit's parts go, so
        // that a later manifest does not pass over them while the caller writes the same
        // records again (review: duplicate rows).
        let took = std::fs::read(&manifest)
            .ok()
            .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
            .is_some_and(|m| m.flushed_seq >= last);
        if took {
            return Ok(Some(last));
        }
        for (_, path, _) in &parts {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    Ok(Some(last))
}

impl ParquetStore {
    /// An [`Ack`] that resolves once everything logged so far is durable: the answer to a
    /// client's retry of a request already logged waits for the first request's fsync.
    pub fn logged(&self) -> Ack {
        // The WAL's last queued record, not `next_seq - 1`: a number taken by a record that
        // failed to encode was never queued, and waiting for it would spin.
        self.wal.ack_queued()
    }

    /// Moves every pending WAL record into Parquet parts, then retires WAL segments.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.flushing || self.compacting {
            return Err(StoreError::FlushInProgress);
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        // Everything pending must be durable in the WAL before it counts as flushed.
        self.wal.wait_durable(self.next_seq - 1)?;
        let pending = std::mem::take(&mut self.pending);
        match commit_parts(&self.root, &pending) {
            Ok(last) => {
                if let Some(last) = last {
                    self.flushed_seq = last;
                }
                self.flush_error = None;
                self.flush_at = 0;
            }
            Err(e) => {
                // Not committed: the records stay pending (they are still in the WAL, whose
                // segments a later flush retires only once they are in Parquet). Before, they
                // left memory here and the next flush retired the WAL that held them
                // (review: acknowledged records lost after, e.g., a full disk).
                self.pending = pending;
                return Err(e);
            }
        }
        // Start a new segment, then retire the old ones (all covered by the manifest).
        let old = wal::segments(&self.root.join("wal"))?;
        let seg = self.root.join("wal").join(wal::segment_name(self.next_seq));
        self.wal = Wal::open(&seg, self.next_seq - 1, self.opts.group_wait)?;
        for s in old {
            if s != seg {
                std::fs::remove_file(&s).map_err(|e| StoreError::io(&s, e))?;
            }
        }
        fsync_dir(&self.root.join("wal"))
    }

    /// Why the last inline flush of [`ParquetStore::log`] failed, while no flush has
    /// succeeded since: the logged entries are safe in the WAL and stay pending, but the WAL
    /// grows until a flush succeeds.
    pub fn flush_error(&self) -> Option<&str> {
        self.flush_error.as_deref()
    }

    /// Why the write-ahead log failed, once it has ([`Wal::failure`]): no write is
    /// acknowledged any more until the store is opened again.
    pub fn wal_failure(&self) -> Option<String> {
        self.wal.failure()
    }

    /// Fails the write-ahead log as a failed write would (tests).
    #[cfg(test)]
    pub(crate) fn fail_wal_for_test(&self, why: &str) {
        self.wal.fail_for_test(why);
    }

    /// Entries logged and not yet in Parquet (excluding a flush job that is out).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Starts a flush that runs without the store: takes the pending records (once they are
    /// durable) and moves new writes to a fresh WAL segment. The owner runs the returned job
    /// outside its lock and hands the result to [`ParquetStore::finish_flush`]. One flush at
    /// a time: `None` while one (or a compaction job) is in progress or when nothing is
    /// pending. Until it finishes, [`HistoryStore::entries`] does not see the job's records.
    pub fn begin_flush(&mut self) -> Result<Option<FlushJob>, StoreError> {
        if self.flushing || self.compacting || self.pending.is_empty() {
            return Ok(None);
        }
        self.wal.wait_durable(self.next_seq - 1)?;
        let old = wal::segments(&self.root.join("wal"))?;
        let seg = self.root.join("wal").join(wal::segment_name(self.next_seq));
        self.wal = Wal::open(&seg, self.next_seq - 1, self.opts.group_wait)?;
        self.flushing = true;
        Ok(Some(FlushJob {
            root: self.root.clone(),
            recs: std::mem::take(&mut self.pending),
            old_segments: old.into_iter().filter(|s| *s != seg).collect(),
        }))
    }

    /// Ends a flush begun with [`ParquetStore::begin_flush`]: on success the records are in
    /// Parquet; on failure they go back to pending (they are still in the WAL) for the next
    /// flush.
    pub fn finish_flush(&mut self, result: Result<u64, FlushFailed>) -> Result<(), StoreError> {
        self.flushing = false;
        match result {
            Ok(last) => {
                self.flushed_seq = self.flushed_seq.max(last);
                Ok(())
            }
            Err(FlushFailed { error, mut recs }) => {
                recs.append(&mut self.pending);
                self.pending = recs;
                Err(error)
            }
        }
    }
}

fn table_dir(root: &Path, table: Table) -> PathBuf {
    root.join("history").join(table.dir_name())
}

/// A store's directory to open again, its lock held ([`ParquetStore::reopener`]).
#[derive(Debug)]
pub struct Reopener {
    root: PathBuf,
    opts: StoreOptions,
    lock: std::fs::File,
}

impl Reopener {
    /// Opens the directory as [`ParquetStore::open`] does: repairs it and replays the WAL.
    pub fn open(self) -> Result<ParquetStore, StoreError> {
        ParquetStore::open_locked(&self.root, self.opts, self.lock)
    }
}

/// A flush taken out of the store by [`ParquetStore::begin_flush`].
#[derive(Debug)]
pub struct FlushJob {
    root: PathBuf,
    recs: Vec<WalRecord>,
    old_segments: Vec<PathBuf>,
}

/// A flush that failed, with its records (to go back to pending).
#[derive(Debug)]
pub struct FlushFailed {
    /// Why.
    pub error: StoreError,
    recs: Vec<WalRecord>,
}

impl FlushJob {
    /// Records in this flush.
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    /// Whether the flush is empty.
    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// Writes the parts and the manifest, then retires the WAL segments the records came
    /// from (the same order as [`ParquetStore::flush`]: a crash at any point loses nothing and
    /// duplicates nothing). Returns the flushed sequence number.
    pub fn run(self) -> Result<u64, FlushFailed> {
        let last = match commit_parts(&self.root, &self.recs) {
            Ok(last) => last.unwrap_or(0),
            Err(error) => {
                return Err(FlushFailed {
                    error,
                    recs: self.recs,
                })
            }
        };
        // Committed: the records are in Parquet. A segment that cannot be retired now stays,
        // its records at or below the commit point (skipped on replay), and the next flush
        // retires it; the records are not handed back, which would write them twice (review).
        for s in &self.old_segments {
            let _ = std::fs::remove_file(s);
        }
        let _ = fsync_dir(&self.root.join("wal"));
        Ok(last)
    }
}

/// Writes `recs` as Parquet parts under `root`'s history and commits them in the manifest;
/// returns the flushed sequence number (none when `recs` is empty).
fn commit_parts(root: &Path, recs: &[WalRecord]) -> Result<Option<u64>, StoreError> {
    let batch = batch::of_entries(recs.iter().map(|r| (r.seq, &r.entry)))?;
    commit_columns(root, batch, 0)
}

impl ParquetStore {
    /// Every committed part of a table.
    pub fn parts(&self, table: Table) -> Result<Vec<PartInfo>, StoreError> {
        parts_of(&self.root, table)
    }

    /// Merges the parts of each partition of every table into one, atomically and
    /// idempotently, after reading every part whole: a part whose data cannot be read (its
    /// footer intact, so opening the store let it through) is set aside as
    /// `.parquet.corrupt` and named in the report, and the rest of its partition is compacted
    /// without it. Before, one such part failed every compaction and every `train`, with no
    /// command to get past it. Flushes the WAL first; [`ParquetStore::begin_compact`] is the
    /// same work run outside the store's owner's lock.
    pub fn compact(&mut self) -> Result<CompactReport, StoreError> {
        self.compact_with_progress(&mut |_, _| {})
    }

    /// [`ParquetStore::compact`], calling `progress(rows read, rows to read)` as it goes
    /// (see [`CompactJob::run_with_progress`]).
    pub fn compact_with_progress(
        &mut self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<CompactReport, StoreError> {
        self.flush()?;
        let job = self.begin_compact(CompactScope::Full)?;
        let result = job.run_with_progress(progress);
        self.finish_compact();
        result
    }

    /// Starts a compaction that runs without the store (as [`ParquetStore::begin_flush`]
    /// does for a flush): the owner runs the returned job outside its lock — writes go on
    /// being logged meanwhile — and then calls [`ParquetStore::finish_compact`]. No flush
    /// starts until then (both commit through the manifest): what is logged meanwhile waits
    /// in the WAL for the next flush. It compacts what is committed; flush first for the
    /// rest. Refused while a flush or another compaction job is out.
    pub fn begin_compact(&mut self, scope: CompactScope) -> Result<CompactJob, StoreError> {
        if self.flushing || self.compacting {
            return Err(StoreError::FlushInProgress);
        }
        self.compacting = true;
        Ok(CompactJob {
            root: self.root.clone(),
            flushed_seq: self.flushed_seq,
            scope,
        })
    }

    /// Ends a compaction begun with [`ParquetStore::begin_compact`] (whatever its result):
    /// flushes may start again.
    pub fn finish_compact(&mut self) {
        self.compacting = false;
    }
}

/// Which partitions a compaction reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompactScope {
    /// Every part of every partition, read whole, each partition merged into one part:
    /// damaged parts are found and set aside even where a partition has one part
    /// (`faultline compact`).
    Full,
    /// What a server's periodic compaction merges, without reading the whole history each
    /// time: partitions dated before `open_from` (`YYYY-MM-DD`, the server's today) with two
    /// or more parts are merged whole; one dated `open_from` or later, still being written,
    /// merges only the parts flushes wrote (two or more), leaving those of earlier
    /// compactions as they are, so each run reads only what was flushed since the last.
    Merge {
        /// The first day still being written.
        open_from: String,
    },
}

/// A compaction taken out of the store by [`ParquetStore::begin_compact`].
#[derive(Debug)]
pub struct CompactJob {
    root: PathBuf,
    flushed_seq: u64,
    scope: CompactScope,
}

/// The whole history as [`ParquetStore::history_reader`] took it: the committed parts and
/// the records pending in the WAL, read in sequence order without holding it in memory.
#[derive(Debug)]
pub struct HistoryReader {
    root: PathBuf,
    parts: Vec<PartInfo>,
    /// Which of `parts` are the actions table's.
    actions: Vec<usize>,
    pending: Vec<(u64, Entry)>,
}

impl ParquetStore {
    /// A reader of the whole history in sequence order, each record once, as
    /// [`HistoryStore::entries`] returns it — but a record batch of each part at a time, so
    /// that a restart replays a history of any size without holding it in memory
    /// (`entries` holds every record at once: 1.2 GB for a day of 1M failures). The parts
    /// are listed now; the reader needs no borrow of the store.
    pub fn history_reader(&self) -> Result<HistoryReader, StoreError> {
        let mut parts = Vec::new();
        let mut actions = Vec::new();
        for t in Table::ALL {
            let of = parts_of(&self.root, t).map_err(|e| super::unreadable_part(&self.root, e))?;
            if t == Table::Actions {
                actions.extend(parts.len()..parts.len() + of.len());
            }
            parts.extend(of);
        }
        Ok(HistoryReader {
            root: self.root.clone(),
            parts,
            actions,
            pending: self
                .pending
                .iter()
                .map(|r| (r.seq, r.entry.clone()))
                .collect(),
        })
    }
}

impl HistoryReader {
    /// The latest sequence number of each task's actions, in the parts and pending: whether
    /// a failure a replay holds will still meet an action of its task. Reads the actions
    /// table through, a record batch at a time.
    pub fn latest_actions(&self) -> Result<HashMap<TaskId, u64>, StoreError> {
        let mut out: HashMap<TaskId, u64> = HashMap::new();
        let mut note = |seq: u64, e: &Entry| {
            if let Entry::Action(a) = e {
                let at = out.entry(a.action.task_id.clone()).or_insert(seq);
                *at = (*at).max(seq);
            }
        };
        for &i in &self.actions {
            merge::for_each_row(&self.parts[i].path, |seq, e| note(seq, &e))
                .map_err(|e| super::unreadable_part(&self.root, e))?;
        }
        for (seq, e) in &self.pending {
            note(*seq, e);
        }
        Ok(out)
    }

    /// Calls `f` with every record in sequence order. A part with a row that does not
    /// decode stops it, naming the part, as [`HistoryStore::entries`] fails on it.
    pub fn for_each(&self, mut f: impl FnMut(u64, Entry)) -> Result<(), StoreError> {
        let root = &self.root;
        let err = |e: MergeStop| match e {
            MergeStop::Part(_, e) | MergeStop::Failed(e) => super::unreadable_part(root, e),
            MergeStop::Empty(_) => StoreError::Decode("no rows".into()),
        };
        let mut m = merge::SeqMerge::new(&self.parts, true).map_err(err)?;
        let mut pending = self.pending.iter().cloned().peekable();
        let mut part = m.next_row().map_err(err)?;
        loop {
            let from_part = match (&part, pending.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((a, _)), Some((b, _))) => a <= b,
            };
            if from_part {
                let (seq, e) = part.take().expect("a row from the parts");
                // The committed row wins, as in `entries`.
                while pending.next_if(|p| p.0 == seq).is_some() {}
                f(seq, e);
                part = m.next_row().map_err(err)?;
            } else if let Some((seq, e)) = pending.next() {
                f(seq, e);
            }
        }
        Ok(())
    }
}

/// The committed parts of `table` under `root`.
fn parts_of(root: &Path, table: Table) -> Result<Vec<PartInfo>, StoreError> {
    all_files(&table_dir(root, table), "parquet")?
        .iter()
        .map(|p| part_info(p))
        .collect()
}

impl CompactJob {
    /// Merges the partitions' parts (see [`ParquetStore::compact`]). Each partition is
    /// replaced atomically: the merged part is written (temporary file, rename) before the
    /// parts it holds are removed, and readers take each sequence number once, so a reader
    /// beside it sees every row once; a part a reader listed and then found gone is read
    /// again ([`reread_while_compacting`](super::reread_while_compacting)). A part flushed
    /// into a partition after the job listed it is left for the next compaction.
    pub fn run(self) -> Result<CompactReport, StoreError> {
        self.run_with_progress(&mut |_, _| {})
    }

    /// [`CompactJob::run`], calling `progress(rows read, rows to read)` as it goes: the
    /// rows of every part the compaction reads, counted as a batch of them is merged.
    pub fn run_with_progress(
        self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<CompactReport, StoreError> {
        let mut report = CompactReport::default();
        // What to read: per partition, its parts.
        let mut plan: Vec<(Table, PathBuf, Vec<PartInfo>)> = Vec::new();
        for table in Table::ALL {
            let mut by_dir: BTreeMap<PathBuf, Vec<PartInfo>> = BTreeMap::new();
            for p in parts_of(&self.root, table)? {
                let dir = p.path.parent().map(Path::to_path_buf).unwrap_or_default();
                by_dir.entry(dir).or_default().push(p);
            }
            for (dir, parts) in by_dir {
                // Parts another part here already holds (a compaction that failed before it
                // removed them; the next open removes them too) are removed, not merged
                // again: merged into another part, their records would be in two (a review).
                let held: HashSet<PathBuf> = parts
                    .iter()
                    .flat_map(|p| {
                        p.replaces
                            .iter()
                            .map(|r| dir.join(r))
                            .filter(|r| *r != p.path)
                    })
                    .collect();
                let (leftovers, parts): (Vec<PartInfo>, Vec<PartInfo>) =
                    parts.into_iter().partition(|p| held.contains(&p.path));
                for l in &leftovers {
                    std::fs::remove_file(&l.path).map_err(|e| StoreError::io(&l.path, e))?;
                    report.parts_removed += 1;
                }
                if !leftovers.is_empty() {
                    fsync_dir(&dir)?;
                }
                let parts = match &self.scope {
                    CompactScope::Full => parts,
                    CompactScope::Merge { open_from } => {
                        let open = dir
                            .file_name()
                            .and_then(|n| n.to_str())
                            .and_then(|n| n.strip_prefix("date="))
                            .is_some_and(|d| d >= open_from.as_str());
                        // A day still being written merges only what was flushed since the
                        // last compaction: rewriting the whole day every time read it whole
                        // into memory each interval (under load: 4.3 GB RSS against 2.9).
                        let parts: Vec<PartInfo> = if open {
                            parts
                                .into_iter()
                                .filter(|p| p.replaces.is_empty())
                                .collect()
                        } else {
                            parts
                        };
                        if parts.len() < 2 {
                            // Not read: a lone part has nothing to merge with (a damaged one
                            // is found by a full compaction, or by the reader that meets it).
                            continue;
                        }
                        parts
                    }
                };
                if parts.is_empty() {
                    continue;
                }
                plan.push((table, dir, parts));
            }
        }
        // Progress by rows: those of every part to be read.
        let total: u64 = plan.iter().flat_map(|g| &g.2).map(|p| p.rows as u64).sum();
        let mut done = 0;
        // Rows left out of merged parts as repeated numbers (parts no `replaces` covers,
        // crafted or copied in): the manifest is counted again, or the next open would say
        // they are gone (a review).
        let mut duplicates = 0;
        for (table, dir, parts) in plan {
            progress(done, total);
            let base = done;
            done += parts.iter().map(|p| p.rows as u64).sum::<u64>();
            let merge_only = matches!(self.scope, CompactScope::Merge { .. });
            let mut parts = parts;
            let set_aside = |p: &Path, why: String| -> Result<String, StoreError> {
                let aside = aside_name(p, "corrupt");
                std::fs::rename(p, &aside).map_err(|e| StoreError::io(p, e))?;
                fsync_dir(&dir)?;
                Ok(format!("{why}; moved aside to {}", aside.display()))
            };
            // Merged a batch of each part at a time (see `merge`). A part that cannot be
            // read on is set aside (a full compaction) and the merge starts again
            // without it; a periodic merge moves nothing aside: the partition stays as
            // it is, said, for a full compaction to deal with.
            let merged = loop {
                if parts.is_empty() {
                    break None;
                }
                if parts.len() == 1 {
                    // A lone part (a full compaction) is only read: it is rewritten when
                    // rows of it do not decode.
                    match merge::check_part(&parts[0].path) {
                        Ok(bad) if bad.is_empty() => break None,
                        Ok(_) => {}
                        Err(e @ StoreError::Io { .. }) => return Err(e),
                        Err(e) => {
                            report
                                .set_aside
                                .push(set_aside(&parts[0].path, e.to_string())?);
                            break None;
                        }
                    }
                }
                let flush = parts.iter().map(|p| p.flush_seq).max().unwrap_or(0);
                let mut read = |r: u64| progress(base + r, total);
                match merge::merge_parts(table, &dir, &parts, flush, merge_only, &mut read) {
                    Ok(m) => break Some(m),
                    // An I/O error (a file vanished, too many open files, a full disk)
                    // says nothing of the parts: the compaction stops, nothing changed.
                    Err(MergeStop::Failed(e)) => return Err(e),
                    Err(MergeStop::Part(_, e)) if merge_only => {
                        report.skipped.push(format!(
                                "{}: not merged, a part cannot be read: {e}; a full compaction (`POST /v1/admin/compact`, or `faultline compact` with the server stopped) sets it aside",
                                dir.display()
                            ));
                        break None;
                    }
                    Err(MergeStop::Part(i, e)) => {
                        let p = parts.remove(i);
                        report.set_aside.push(set_aside(&p.path, e.to_string())?);
                    }
                    Err(MergeStop::Empty(bad)) => {
                        // Nothing readable to merge: the damaged parts are only set aside.
                        for (p, bad) in parts.iter().zip(bad) {
                            if let Some(first) = bad.first() {
                                report
                                    .set_aside
                                    .push(set_aside(&p.path, first.to_string())?);
                            }
                        }
                        break None;
                    }
                }
            };
            let Some(merged) = merged else {
                continue;
            };
            duplicates += merged.duplicates;
            for (p, bad) in parts.iter().zip(&merged.bad) {
                if p.path == merged.out {
                    continue;
                }
                if let Some(first) = bad.first() {
                    // Its readable rows are merged, and the part itself kept aside.
                    let aside = aside_name(&p.path, "corrupt");
                    report.set_aside.push(format!(
                            "{first} ({} of its rows cannot be read; the others are merged, the part kept aside as {})",
                            bad.len(),
                            aside.display()
                        ));
                    std::fs::rename(&p.path, &aside).map_err(|e| StoreError::io(&p.path, e))?;
                } else {
                    std::fs::remove_file(&p.path).map_err(|e| StoreError::io(&p.path, e))?;
                }
                report.parts_removed += 1;
            }
            fsync_dir(&dir)?;
            report.partitions_compacted += 1;
        }
        progress(total, total);
        // Parts set aside leave the count: the manifest counts what the parts now hold. Rows
        // found gone earlier are acknowledged (said in the report, then no more) by a full
        // compaction only: a server's periodic one would silence the warning unread.
        let manifest_path = self.root.join("history").join("_manifest.json");
        if self.scope == CompactScope::Full {
            report.gone_acknowledged = std::fs::read(&manifest_path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
                .and_then(|m| m.gone)
                .unwrap_or(0);
        }
        if !report.set_aside.is_empty() || report.gone_acknowledged > 0 || duplicates > 0 {
            let mut parts = Vec::new();
            for table in Table::ALL {
                parts.extend(parts_of(&self.root, table)?);
            }
            let path = self.root.join("history").join("_manifest.json");
            write_json_atomic(
                &path,
                &Manifest {
                    flushed_seq: self.flushed_seq,
                    schema_version: SCHEMA_VERSION,
                    rows: Some(committed_rows(&parts)),
                    gone: None,
                },
            )?;
        }
        Ok(report)
    }
}

/// The warning for committed rows found gone at an earlier open (see `Manifest::gone`).
pub(crate) fn gone_warning(history: &Path, gone: u64) -> String {
    format!(
        "{}: {gone} committed rows are gone (a part deleted, lost, damaged beyond reading, or set aside as unreadable); said until `faultline compact` acknowledges it",
        history.display()
    )
}

/// What [`ParquetStore::compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Partitions rewritten as one part.
    pub partitions_compacted: usize,
    /// Parts removed (merged into the new ones).
    pub parts_removed: usize,
    /// Parts whose data could not be read, set aside as `.parquet.corrupt`: the error and
    /// where the part went, one line each.
    pub set_aside: Vec<String>,
    /// Partitions a merge ([`CompactScope::Merge`]) left as they were because a part could
    /// not be read, one line each, naming it: a full compaction sets such a part aside.
    pub skipped: Vec<String>,
    /// Committed rows found gone at an earlier open, acknowledged by this compaction (later
    /// opens no longer say so).
    pub gone_acknowledged: u64,
}

/// Where a part set aside goes: beside it, `_NAME.parquet.WHAT` — the leading `_` keeps it
/// out of other tools' datasets (pyarrow and Spark skip files starting with `_` or `.`; an
/// audit found pyarrow reading set-aside parts as data, or failing on a corrupt one), the
/// suffix out of this store's.
pub(super) fn aside_name(part: &Path, what: &str) -> PathBuf {
    let name = part.file_name().map_or_else(
        || "part.parquet".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    part.with_file_name(format!("_{name}.{what}"))
}

fn all_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    for e in rd {
        let p = e.map_err(|e| StoreError::io(dir, e))?.path();
        if p.is_dir() {
            out.extend(all_files(&p, ext)?);
        } else if p.to_string_lossy().ends_with(&format!(".{ext}")) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

impl HistoryStore for ParquetStore {
    fn append(&mut self, entries: Vec<Entry>) -> Result<Ack, StoreError> {
        self.log(entries)
    }

    fn entries(&self) -> Result<Vec<(u64, Entry)>, StoreError> {
        let mut out = Vec::new();
        for t in Table::ALL {
            for p in all_files(&self.table_dir(t), "parquet")? {
                out.extend(read_part(&p).map_err(|e| super::unreadable_part(&self.root, e))?);
            }
        }
        out.extend(self.pending.iter().map(|r| (r.seq, r.entry.clone())));
        // Stable: each sequence number once, as the read-only readers take it (a merged
        // part beside a part it replaces holds the same records).
        out.sort_by_key(|r| r.0);
        out.dedup_by_key(|r| r.0);
        Ok(out)
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        ParquetStore::flush(self)
    }
}
