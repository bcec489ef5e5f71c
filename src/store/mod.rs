//! Tier 1 — the history: every failure, action, outcome, task state, pattern, checkpoint and
//! model seed of the ranking that faultline saw or decided, in Parquet under one directory,
//! with a write-ahead log so that what was acknowledged survives `kill -9`.
//!
//! ```text
//! <data-dir>/
//!   history/_manifest.json                        commit point: {"flushed_seq", "schema_version"}
//!   history/<table>/date=YYYY-MM-DD/part-*.parquet  zstd; metadata: schema_version, flush_seq
//!   wal/<first seq>.wal                           framed records: u32 len, u32 CRC32C, JSON
//!   checkpoints/<task>/<id>.bin                   checkpoint blobs
//! ```
//!
//! [`HistoryStore`] is the interface; [`ParquetStore`] the durable implementation and
//! [`MemoryStore`] its in-memory twin. Parts are written with the arrow and parquet crates and
//! read back either losslessly (the `payload` column, for restart) or with polars lazy scans
//! ([`scan`]) for analysis; readers that do not repair the directory see the committed history
//! only ([`committed_rows`], [`scan`]: parts up to the manifest's `flushed_seq`, each row once).

mod batch;
mod checkpoints;
mod committed;
mod entry;
pub mod export;
pub mod import;
mod merge;
mod parquet_store;
mod scan;
pub mod schema;
pub mod wal;

use std::path::{Path, PathBuf};

pub use batch::ColumnBatch;
pub use checkpoints::{checkpoint_id, Checkpoints, Retention};
pub use committed::{
    committed_rows, first_unreadable_part, flushed_seq, gone_warning, reread_while_compacting,
    rows_above_commit, unflushed_logged, unreadable_part,
};
pub use entry::{
    ActionRow, CheckpointRow, Encoded, Entry, FailureRow, OutcomeRow, PatternRow, RankingSeedRow,
    SeedLevel, SeededContext, SeededStrategy, Table, TaskStateRow,
};
pub use parquet_store::{
    part_info, read_part, CompactJob, CompactReport, CompactScope, FlushFailed, FlushJob,
    HistoryReader, OpenReport, ParquetStore, PartInfo, Reopener, StoreOptions,
};
pub use scan::{part_without_column, scan};
pub use wal::Ack;

/// Errors of the store. Every I/O error names its path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A Parquet file could not be written or read.
    #[error("{path}: parquet: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The parquet crate's message.
        message: String,
    },
    /// An entry could not be encoded.
    #[error("cannot encode entry: {0}")]
    Encode(String),
    /// Stored data could not be decoded.
    #[error("cannot decode stored data: {0}")]
    Decode(String),
    /// A polars query failed.
    #[error("query failed: {0}")]
    Query(String),
    /// An earlier WAL write failed; nothing more is acknowledged.
    #[error("write-ahead log failed earlier: {0}")]
    WalFailed(String),
    /// A lock was poisoned by a panicking thread.
    #[error("store lock poisoned")]
    Poisoned,
    /// A flush or a compaction was asked for while a flush or compaction job is out.
    #[error("a flush or a compaction is already in progress")]
    FlushInProgress,
    /// A Parquet file given as input holds neither a faultline part nor failure records (it
    /// is the user's file, not stored data: said so, not as a decoding failure).
    #[error("{0}")]
    NotFailureRecords(String),
    /// Another process (or another store in this one) has the data directory open.
    #[error("{path}: the data directory is in use by another faultline process (serve, recommend --data, ingest, compact) or is already open in this one; stop that process, or close the store opened first")]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn parquet(path: &Path, e: impl std::fmt::Display) -> Self {
        StoreError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Fsyncs a directory so renames and creations in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Where the history goes.
pub trait HistoryStore {
    /// Logs entries; durable once the returned [`Ack`] resolves.
    fn append(&mut self, entries: Vec<Entry>) -> Result<Ack, StoreError>;
    /// The whole history in sequence order (restart reads this).
    fn entries(&self) -> Result<Vec<(u64, Entry)>, StoreError>;
    /// Moves logged entries into their final form (Parquet parts for the durable store).
    fn flush(&mut self) -> Result<(), StoreError>;
}

/// The in-memory twin of [`ParquetStore`], for tests and embedding.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    entries: Vec<(u64, Entry)>,
}

impl HistoryStore for MemoryStore {
    fn append(&mut self, entries: Vec<Entry>) -> Result<Ack, StoreError> {
        let mut seq = self.entries.last().map_or(0, |e| e.0);
        for e in entries {
            seq += 1;
            self.entries.push((seq, e));
        }
        Ok(Ack::done())
    }
    fn entries(&self) -> Result<Vec<(u64, Entry)>, StoreError> {
        Ok(self.entries.clone())
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
