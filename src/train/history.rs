//! Reading the whole committed history for training, read-only: the Parquet parts of the
//! failures and outcomes tables, as the store wrote them (lossless rows from the `payload`
//! column). Nothing under the data directory is created, repaired or removed, so a nightly
//! training job can run beside a live server writing the same directory.

use std::path::Path;

use crate::store::{
    committed_rows, flushed_seq, reread_while_compacting, Entry, FailureRow, OutcomeRow, Table,
};

use super::TrainError;

/// The rows training learns from, in sequence order.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    /// Failures with their classification.
    pub failures: Vec<(u64, FailureRow)>,
    /// Outcomes with their context.
    pub outcomes: Vec<OutcomeRow>,
    /// The commit point read (the manifest's `flushed_seq`): every other read of the
    /// history for the same model stops there, so that one model describes one snapshot.
    pub flushed: Option<u64>,
}

/// Reads the failures and outcomes of the history under `root` (a data directory). Records
/// still in the write-ahead log (not yet flushed to Parquet) are not read. A directory without
/// `history/` is an error naming it.
pub(crate) fn read(root: &Path) -> Result<History, TrainError> {
    if !root.exists() {
        return Err(TrainError::Io {
            path: root.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such directory (the data directory to train on)",
            ),
        });
    }
    let history = root.join("history");
    if !history.is_dir() && root.join("actions.jsonl").is_file() {
        return Err(TrainError::Simulation {
            path: root.to_path_buf(),
        });
    }
    if !history.is_dir() {
        return Err(TrainError::NoHistory {
            path: root.to_path_buf(),
        });
    }
    // Read again if a compaction replaced a part under the read.
    Ok(reread_while_compacting(|| {
        let flushed = flushed_seq(root)?;
        let mut h = History {
            flushed,
            ..History::default()
        };
        for (seq, e) in committed_rows(root, Table::Failures, flushed)? {
            if let Entry::Failure(f) = e {
                h.failures.push((seq, *f));
            }
        }
        for (_, e) in committed_rows(root, Table::Outcomes, flushed)? {
            if let Entry::Outcome(o) = e {
                h.outcomes.push(o);
            }
        }
        Ok(h)
    })?)
}
