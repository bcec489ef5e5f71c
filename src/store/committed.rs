//! The committed history, read-only: what a reader that must not repair the directory (a
//! nightly `train` beside a live server, `eval ranking`) takes as the history. Only parts of
//! flushes up to the manifest's `flushed_seq` count — a crash between writing parts and the
//! manifest leaves parts above it, which the next open removes or sets aside — and each
//! sequence number once
//! (an interrupted compaction may leave a row in two parts).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::entry::{Entry, Table};
use super::parquet_store::read_part;
use super::schema::SCHEMA_VERSION;
use super::StoreError;

/// The part of `history/_manifest.json` a reader needs.
#[derive(Debug, Deserialize)]
struct CommitPoint {
    flushed_seq: u64,
    #[serde(default)]
    schema_version: u32,
    #[serde(default)]
    gone: Option<u64>,
    #[serde(default)]
    rows: Option<u64>,
}

/// The warning a read-only reader gives for committed rows of the history under `root` that
/// are gone: found so at an earlier open and not yet acknowledged by `faultline compact`, or
/// missing from the parts now (an audit: the first writer's open said it once, and `train`,
/// `eval ranking` and `analyze --data` were silent before and after). `None` when nothing is
/// gone, or without a manifest.
pub fn gone_warning(root: &Path) -> Option<String> {
    let history = root.join("history");
    let b = std::fs::read(history.join("_manifest.json")).ok()?;
    let m = serde_json::from_slice::<CommitPoint>(&b).ok()?;
    // Rows gone since the last open (no writer has counted them yet): the committed parts'
    // footers against the manifest's count (a review: a fresh loss went unsaid by the
    // read-only readers until a writer opened the directory).
    let fresh = m.rows.map_or(0, |counted| {
        let mut files = Vec::new();
        let _ = parts(&history, &mut files);
        let infos: Vec<_> = files
            .iter()
            .filter_map(|p| super::parquet_store::part_info(p).ok())
            .filter(|i| i.flush_seq <= m.flushed_seq)
            .collect();
        counted.saturating_sub(super::parquet_store::committed_rows(&infos))
    });
    let gone = m.gone.unwrap_or(0) + fresh;
    (gone > 0).then(|| super::parquet_store::gone_warning(&history, gone))
}

/// The commit point of the history under `root` (a data directory): the manifest's
/// `flushed_seq`, or `None` when there is no manifest (then every part counts). A history of
/// a newer schema than this build's is refused, as opening the store refuses it (an audit
/// found `train` and `eval ranking`, which read through here, taking one in).
pub fn flushed_seq(root: &Path) -> Result<Option<u64>, StoreError> {
    let manifest = root.join("history").join("_manifest.json");
    match std::fs::read(&manifest) {
        Ok(b) => {
            let m = serde_json::from_slice::<CommitPoint>(&b).map_err(|e| {
                StoreError::Decode(format!(
                    "{}: {e} (unreadable: `faultline compact --data {}` sets it aside and rebuilds it from the parts)",
                    manifest.display(),
                    root.display()
                ))
            })?;
            if m.schema_version > SCHEMA_VERSION {
                return Err(StoreError::Decode(format!(
                    "{}: schema version {} is newer than this faultline ({SCHEMA_VERSION})",
                    manifest.display(),
                    m.schema_version
                )));
            }
            Ok(Some(m.flushed_seq))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(&manifest, e)),
    }
}

/// Logged records by sequence number, and the problems found reading them.
pub type Unflushed = (Vec<(u64, Entry)>, Vec<String>);

/// The failures, actions and outcomes in `root`'s write-ahead log above the commit point
/// `flushed` (the records the committed Parquet parts do not hold yet), in sequence order,
/// each sequence number once, with the problems found reading the log (each naming its
/// file). Read only: a torn tail is reported, not cut. `eval ranking` reads them; `train`
/// says how many it leaves out.
pub fn unflushed_logged(root: &Path, flushed: Option<u64>) -> Result<Unflushed, StoreError> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for seg in super::wal::segments(&root.join("wal"))? {
        let (records, warns) = super::wal::read_segment(&seg, false)?;
        warnings.extend(warns.iter().map(ToString::to_string));
        out.extend(
            records
                .into_iter()
                .filter(|r| {
                    matches!(
                        r.entry,
                        Entry::Failure(_) | Entry::Action(_) | Entry::Outcome(_)
                    ) && flushed.is_none_or(|f| r.seq > f)
                })
                .map(|r| (r.seq, r.entry)),
        );
    }
    // Stable: the first of a repeated sequence number is kept.
    out.sort_by_key(|r| r.0);
    out.dedup_by_key(|r| r.0);
    Ok((out, warnings))
}

/// Runs `read` again — up to 5 more times, 50 ms apart — when a Parquet part it listed
/// vanished before it was read: a compaction (which holds the store's lock; the read-only
/// readers do not take it) replaced it with the merged part. An audit found `train` and
/// `eval ranking` failing beside a running `compact`, naming a part that was gone.
pub fn reread_while_compacting<T>(
    mut read: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut left = 5;
    loop {
        match read() {
            Err(StoreError::Io {
                ref path,
                ref source,
            }) if left > 0
                && source.kind() == std::io::ErrorKind::NotFound
                && path.extension().is_some_and(|e| e == "parquet") =>
            {
                left -= 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// Every `*.parquet` file under `dir` (recursively, sorted); none when `dir` is absent.
pub(super) fn parts(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), StoreError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut entries = Vec::new();
    for e in rd {
        entries.push(e.map_err(|e| StoreError::io(dir, e))?.path());
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

/// Rows of one table under `root`, in sequence order: committed parts only (sequence ≤
/// `flushed`, the [`flushed_seq`] of `root`), each sequence number once.
pub fn committed_rows(
    root: &Path,
    table: Table,
    flushed: Option<u64>,
) -> Result<Vec<(u64, Entry)>, StoreError> {
    let mut files = Vec::new();
    parts(&root.join("history").join(table.dir_name()), &mut files)?;
    let mut rows = Vec::new();
    for f in files {
        rows.extend(
            read_part(&f)
                .map_err(|e| unreadable_part(root, e))?
                .into_iter()
                .filter(|(seq, _)| flushed.is_none_or(|s| *seq <= s)),
        );
    }
    rows.sort_by_key(|r| r.0);
    rows.dedup_by_key(|r| r.0);
    Ok(rows)
}

/// Rows of `table` under `root` in parts above the commit point (sequence > `flushed`): a
/// write interrupted before it committed (a killed ingest) left them, readers leave them out,
/// and the next open of the store for writing sets them aside. 0 when none or unreadable.
pub fn rows_above_commit(root: &Path, table: Table, flushed: Option<u64>) -> usize {
    // Without a manifest every part is read as committed (see `committed_rows`).
    let Some(flushed) = flushed else {
        return 0;
    };
    let mut files = Vec::new();
    if parts(&root.join("history").join(table.dir_name()), &mut files).is_err() {
        return 0;
    }
    files
        .iter()
        .filter_map(|f| read_part(f).ok())
        .map(|rows| rows.iter().filter(|(seq, _)| *seq > flushed).count())
        .sum()
}

/// The first Parquet part of `table` under `root` (a data directory) whose rows cannot be
/// read, as the error of reading it with what to do about it; `None` when every part reads.
/// For a reader whose query (polars) failed without naming the file.
pub fn first_unreadable_part(root: &Path, table: Table) -> Option<StoreError> {
    let mut files = Vec::new();
    parts(&root.join("history").join(table.dir_name()), &mut files).ok()?;
    files
        .iter()
        .find_map(|f| read_part(f).err())
        .map(|e| unreadable_part(root, e))
}

/// A part that cannot be read, with what to do about it: readers that repair nothing name
/// `compact`, which sets such a part aside (an audit found every `train` failing on one with
/// no way named past it).
pub fn unreadable_part(root: &Path, e: StoreError) -> StoreError {
    match e {
        StoreError::Decode(m) => StoreError::Decode(format!(
            "{m} (this part cannot be read; `faultline compact --data {}` sets it aside)",
            root.display()
        )),
        StoreError::Parquet { path, message } => StoreError::Parquet {
            path,
            message: format!(
                "{message} (this part cannot be read; `faultline compact --data {}` sets it aside)",
                root.display()
            ),
        },
        e => e,
    }
}

#[cfg(test)]
mod reread_tests {
    use super::*;

    /// A part that vanished under a read (a compaction replaced it) is read again; another
    /// error, or one that keeps coming, is returned.
    #[test]
    fn a_vanished_part_is_read_again_and_other_errors_are_not() {
        let gone = || {
            StoreError::io(
                Path::new("h/part-1.parquet"),
                std::io::ErrorKind::NotFound.into(),
            )
        };
        let mut calls = 0;
        let r = reread_while_compacting(|| {
            calls += 1;
            if calls < 3 {
                Err(gone())
            } else {
                Ok(7)
            }
        });
        assert_eq!((r.unwrap(), calls), (7, 3));
        let mut calls = 0;
        let r: Result<(), _> = reread_while_compacting(|| {
            calls += 1;
            Err(StoreError::io(
                Path::new("h/_manifest.json"),
                std::io::ErrorKind::NotFound.into(),
            ))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
        let mut calls = 0;
        let r: Result<(), _> = reread_while_compacting(|| {
            calls += 1;
            Err(gone())
        });
        assert!(r.is_err());
        assert_eq!(calls, 6);
    }
}
