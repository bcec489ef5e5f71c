//! Checkpoint blobs: `checkpoints/<task>/<id>.bin` (see [`Checkpoints::dir_name`] for an id
//! too long to be a file name), written atomically, verified by BLAKE3
//! content hash on every read. A corrupted blob is reported (naming the file) and never
//! returned; [`Checkpoints::latest_good`] then offers the previous good one.
//!
//! The slow parts — writing a blob (with its fsyncs), reading and hashing one, removing
//! retired ones — need no lock on the engine: the blob store is a path, cheap to clone, and a
//! blob's id is fixed before it is written (see `engine::CheckpointWrite`). A blob written but
//! never logged (a crash before its index row was durable) is referenced by nothing and never
//! read; no sweep removes such files.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::model::{TaskId, Timestamp};

use super::entry::CheckpointRow;
use super::{fsync_dir, StoreError};

/// A checkpoint's id and content hash: `<creation µs, hex>-<n>-<hash prefix>`, so ids sort by
/// time and name their content.
pub fn checkpoint_id(data: &[u8], at: Timestamp, n: u64) -> (String, String) {
    let hash = blake3::hash(data).to_hex().to_string();
    (
        format!("{:016x}-{n:06}-{}", at.as_micros(), &hash[..12]),
        hash,
    )
}

/// The longest file name most file systems take, bytes.
const MAX_FILE_NAME: usize = 255;

/// Blob store for checkpoints.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    root: PathBuf,
}

/// Retention: what to keep per task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    /// Keep at most this many checkpoints per task (≥ 1).
    pub keep_last: usize,
    /// Delete checkpoints older than this many seconds (relative to `now`), except the newest.
    pub max_age_s: Option<f64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_last: 5,
            max_age_s: Some(7.0 * 86_400.0),
        }
    }
}

impl Checkpoints {
    /// Checkpoints under `<data-dir>/checkpoints`.
    pub fn new(data_dir: &Path) -> Self {
        Checkpoints {
            root: data_dir.join("checkpoints"),
        }
    }

    /// The directory holding every task's blobs.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob file of a checkpoint.
    pub fn path(&self, task: &TaskId, id: &str) -> PathBuf {
        self.root
            .join(Self::dir_name(task).as_ref())
            .join(format!("{id}.bin"))
    }

    /// The name of a task's directory under [`Checkpoints::root`]: the task id itself, or,
    /// for an id longer than a file name may be (255 bytes; ids may have 256), `long..`
    /// and the hex of the id's BLAKE3 hash — a name no id can have, as ids never hold `..`
    /// (an audit: a 256-byte id's upload failed with "File name too long").
    pub fn dir_name(task: &TaskId) -> std::borrow::Cow<'_, str> {
        let id = task.as_str();
        if id.len() <= MAX_FILE_NAME {
            std::borrow::Cow::Borrowed(id)
        } else {
            let hash = blake3::hash(id.as_bytes()).to_hex();
            std::borrow::Cow::Owned(format!("long..{}", &hash[..32]))
        }
    }

    /// Stores a blob and returns its index row. `n` makes the id unique within a task.
    pub fn create(
        &self,
        task: &TaskId,
        data: &[u8],
        at: Timestamp,
        n: u64,
    ) -> Result<CheckpointRow, StoreError> {
        let (id, hash) = checkpoint_id(data, at, n);
        let path = self.path(task, &id);
        let dir = path.parent().expect("task directory");
        let new_root = !self.root.exists();
        let new_dir = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let tmp = path.with_extension("bin.tmp");
        {
            let mut f = std::fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
            f.write_all(data).map_err(|e| StoreError::io(&tmp, e))?;
            f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e))?;
        fsync_dir(dir)?;
        // A directory just created is durable only once its parent's entry for it is.
        if new_dir {
            fsync_dir(&self.root)?;
        }
        if new_root {
            if let Some(parent) = self.root.parent() {
                fsync_dir(parent)?;
            }
        }
        Ok(CheckpointRow {
            task_id: task.clone(),
            checkpoint_id: id,
            timestamp: at,
            size_bytes: data.len() as u64,
            checksum: hash,
            deleted: false,
        })
    }

    /// Reads a blob and verifies its hash against the index row.
    pub fn read(&self, row: &CheckpointRow) -> Result<Vec<u8>, StoreError> {
        let path = self.path(&row.task_id, &row.checkpoint_id);
        let data = std::fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
        let got = blake3::hash(&data).to_hex().to_string();
        if got != row.checksum {
            return Err(StoreError::Decode(format!(
                "{}: checkpoint is corrupted (content hash {} differs from the recorded {})",
                path.display(),
                &got[..16],
                &row.checksum[..row.checksum.len().min(16)]
            )));
        }
        Ok(data)
    }

    /// The newest checkpoint among `rows` (one task's index, any order) whose blob verifies,
    /// with the errors met on newer, corrupted ones.
    pub fn latest_good(
        &self,
        rows: &[CheckpointRow],
    ) -> (Option<(CheckpointRow, Vec<u8>)>, Vec<StoreError>) {
        let mut sorted: Vec<&CheckpointRow> = rows.iter().filter(|r| !r.deleted).collect();
        sorted
            .sort_by(|a, b| (b.timestamp, &b.checkpoint_id).cmp(&(a.timestamp, &a.checkpoint_id)));
        let mut errors = Vec::new();
        for r in sorted {
            match self.read(r) {
                Ok(d) => return (Some((r.clone(), d)), errors),
                Err(e) => errors.push(e),
            }
        }
        (None, errors)
    }

    /// Applies retention to one task's live rows; deletes blobs and returns their rows marked
    /// `deleted` (to be logged). [`Checkpoints::expired`] and [`Checkpoints::remove`] split this
    /// so that the rows can be logged durably before the blobs go.
    pub fn retain(
        &self,
        rows: &[CheckpointRow],
        policy: Retention,
        now: Timestamp,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        let out = Self::expired(rows, policy, now);
        self.remove(&out)?;
        Ok(out)
    }

    /// The live rows among `rows` (one task's index, any order) that retention retires at
    /// `now`, marked `deleted`; touches no file.
    pub fn expired(
        rows: &[CheckpointRow],
        policy: Retention,
        now: Timestamp,
    ) -> Vec<CheckpointRow> {
        let mut live: Vec<&CheckpointRow> = rows.iter().filter(|r| !r.deleted).collect();
        live.sort_by(|a, b| (b.timestamp, &b.checkpoint_id).cmp(&(a.timestamp, &a.checkpoint_id)));
        let mut out = Vec::new();
        for (i, r) in live.iter().enumerate() {
            let too_many = i >= policy.keep_last.max(1);
            let too_old = i > 0
                && policy
                    .max_age_s
                    .is_some_and(|a| now.secs_since(r.timestamp) > a);
            if too_many || too_old {
                out.push(CheckpointRow {
                    deleted: true,
                    ..(*r).clone()
                });
            }
        }
        out
    }

    /// Removes the blobs of `rows`; a blob already gone is no error.
    pub fn remove(&self, rows: &[CheckpointRow]) -> Result<(), StoreError> {
        for r in rows {
            let p = self.path(&r.task_id, &r.checkpoint_id);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&p, e)),
            }
        }
        Ok(())
    }

    /// The newest live row among `rows` (one task's index, any order): the one a recovery
    /// resumes from, and the first [`Checkpoints::latest_good`] tries.
    pub fn newest(rows: &[CheckpointRow]) -> Option<&CheckpointRow> {
        rows.iter()
            .filter(|r| !r.deleted)
            .max_by(|a, b| (a.timestamp, &a.checkpoint_id).cmp(&(b.timestamp, &b.checkpoint_id)))
    }
}
