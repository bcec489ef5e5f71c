//! Reading the whole committed history for training, read-only: the Parquet parts of the
//! failures and outcomes tables, as the store wrote them (lossless rows from the `payload`
//! column). Nothing under the data directory is created, repaired or removed, so a nightly
//! training job can run beside a live server writing the same directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::store::{read_part, Entry, FailureRow, OutcomeRow, Table};

use super::TrainError;

/// The rows training learns from, in sequence order.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    /// Failures with their classification.
    pub failures: Vec<(u64, FailureRow)>,
    /// Outcomes with their context.
    pub outcomes: Vec<OutcomeRow>,
}

/// The store's commit point (`history/_manifest.json`): only parts of flushes up to
/// `flushed_seq` are committed.
#[derive(Debug, Deserialize)]
struct StoreManifest {
    flushed_seq: u64,
}

fn io(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every `*.parquet` file under `dir` (recursively, sorted); none when `dir` is absent.
fn parts(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), TrainError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir, e)),
    };
    let mut entries = Vec::new();
    for e in rd {
        entries.push(e.map_err(|e| io(dir, e))?.path());
    }
    entries.sort();
    for p in entries {
        if p.is_dir() {
            parts(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}

/// Rows of one table: committed parts only (sequence ≤ the manifest's `flushed_seq`, which
/// leaves out the parts of an interrupted flush), each sequence number once (an interrupted
/// compaction may leave a row in two parts).
fn read_table(
    root: &Path,
    table: Table,
    flushed: Option<u64>,
) -> Result<Vec<(u64, Entry)>, TrainError> {
    let mut files = Vec::new();
    parts(&root.join("history").join(table.dir_name()), &mut files)?;
    let mut rows = Vec::new();
    for f in files {
        rows.extend(
            read_part(&f)?
                .into_iter()
                .filter(|(seq, _)| flushed.is_none_or(|s| *seq <= s)),
        );
    }
    rows.sort_by_key(|r| r.0);
    rows.dedup_by_key(|r| r.0);
    Ok(rows)
}

/// Reads the failures and outcomes of the history under `root` (a data directory). Records
/// still in the write-ahead log (not yet flushed to Parquet) are not read. A directory without
/// `history/` is an error naming it.
pub(crate) fn read(root: &Path) -> Result<History, TrainError> {
    let history = root.join("history");
    if !history.is_dir() {
        return Err(TrainError::NoHistory {
            path: root.to_path_buf(),
        });
    }
    let manifest = history.join("_manifest.json");
    let flushed = match std::fs::read(&manifest) {
        Ok(b) => Some(
            serde_json::from_slice::<StoreManifest>(&b)
                .map_err(|e| TrainError::Artifact {
                    path: manifest.clone(),
                    detail: e.to_string(),
                })?
                .flushed_seq,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&manifest, e)),
    };
    let mut h = History::default();
    for (seq, e) in read_table(root, Table::Failures, flushed)? {
        if let Entry::Failure(f) = e {
            h.failures.push((seq, *f));
        }
    }
    for (_, e) in read_table(root, Table::Outcomes, flushed)? {
        if let Entry::Outcome(o) = e {
            h.outcomes.push(o);
        }
    }
    Ok(h)
}
