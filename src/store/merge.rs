//! Compaction's merge: one partition's Parquet parts read a record batch at a time and merged
//! in sequence order into one part, so that a day of any size merges in bounded memory.
//! Before, the whole partition was decoded into memory first: 1.26 GB of resident memory to
//! merge a day of 1M failures (16 MB of Parquet).
//!
//! Rows are decoded into entries and encoded again, so that a part of an older schema version
//! is written in the current one, as before. Each sequence number is written once (the first
//! input holding it wins, as a stable sort and dedup kept it).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch, UInt64Array};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::file::metadata::KeyValue;

use super::entry::{Entry, Table};
use super::parquet_store::{part_layout, part_seqs, props, temporary, PartInfo};
use super::schema::{self, META_REPLACES};
use super::{fsync_dir, StoreError};

/// Rows encoded into one record batch of the merged part.
const CHUNK: usize = 8 * 1024;

/// A part's rows that decode, with their sequence numbers, and an error for each row that
/// does not.
pub(crate) type PartRows = (Vec<(u64, Entry)>, Vec<StoreError>);

/// A part read row by row: the rows that decode, and an error for each that does not (a
/// damaged payload). An error reading the file or a batch of it is returned as the error.
pub(crate) fn read_part_rows(path: &Path) -> Result<PartRows, StoreError> {
    let mut c = PartCursor::open(path)?;
    let mut out = Vec::new();
    while let Some(row) = c.next_row()? {
        out.push(row);
    }
    Ok((out, c.bad))
}

/// Reads a part through, a record batch at a time, keeping no row: an error for each row
/// that does not decode (a full compaction's check of a partition's lone part; collecting its
/// rows took 933 MB for a part of 1M failures, a review). An error reading the file or a
/// batch of it is returned as the error.
pub(crate) fn check_part(path: &Path) -> Result<Vec<StoreError>, StoreError> {
    let mut c = PartCursor::open(path)?;
    while c.next_row()?.is_some() {}
    Ok(c.bad)
}

/// Calls `f` with every row of a part in its stored order, a record batch at a time; the
/// first row that does not decode is the error.
pub(crate) fn for_each_row(path: &Path, mut f: impl FnMut(u64, Entry)) -> Result<(), StoreError> {
    let mut c = PartCursor::open(path)?;
    while let Some((seq, e)) = c.next_row()? {
        if let Some(e) = c.bad.drain(..).next() {
            return Err(e);
        }
        f(seq, e);
    }
    match c.bad.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One part's rows, a record batch at a time: in stored order ([`PartCursor::open`]), or in
/// sequence order ([`PartCursor::open_sorted`]). Rows that do not decode are skipped and
/// their errors kept in `bad`.
struct PartCursor {
    path: PathBuf,
    /// `None` once the part is read to its end (or was read whole at the open).
    reader: Option<ParquetRecordBatchReader>,
    version: u32,
    table: Option<Table>,
    /// The decoded rows of the latest batch not yet taken.
    rows: std::vec::IntoIter<(u64, Entry)>,
    /// Rows read so far (for the row numbers of errors).
    read: usize,
    /// An error for each row that did not decode.
    bad: Vec<StoreError>,
}

/// A decode error naming the part.
fn undecodable(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Decode(format!("{}: {e}", path.display()))
}

impl PartCursor {
    /// Opens a part to read in its stored order (the footer read and checked).
    fn open(path: &Path) -> Result<Self, StoreError> {
        let f = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(f)
            .map_err(|e| StoreError::parquet(path, e))?;
        let (version, table) =
            part_layout(b.metadata().file_metadata()).map_err(|e| undecodable(path, e))?;
        let mut columns = schema::decode_columns(version, table);
        columns.push(schema::SEQ);
        let mask = ProjectionMask::columns(b.parquet_schema(), columns);
        let reader = b
            .with_projection(mask)
            .build()
            .map_err(|e| StoreError::parquet(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            reader: Some(reader),
            version,
            table,
            rows: Vec::new().into_iter(),
            read: 0,
            bad: Vec::new(),
        })
    }

    /// Opens a part to read in sequence order. Every part faultline writes is in sequence
    /// order and is read a batch at a time; one that is not (written by another tool) is read
    /// whole and sorted.
    fn open_sorted(path: &Path) -> Result<Self, StoreError> {
        let seqs = part_seqs(path)?;
        let mut c = Self::open(path)?;
        if !seqs.windows(2).all(|w| w[0] <= w[1]) {
            let mut all = Vec::with_capacity(seqs.len());
            while let Some(row) = c.next_row()? {
                all.push(row);
            }
            all.sort_by_key(|r| r.0);
            c.rows = all.into_iter();
        }
        Ok(c)
    }

    /// The next row that decodes, or `None` at the end. A record batch that cannot be read
    /// or lacks a column is the error (rows before it were returned).
    fn next_row(&mut self) -> Result<Option<(u64, Entry)>, StoreError> {
        loop {
            if let Some(row) = self.rows.next() {
                return Ok(Some(row));
            }
            let Some(reader) = self.reader.as_mut() else {
                return Ok(None);
            };
            let Some(batch) = reader.next() else {
                self.reader = None;
                return Ok(None);
            };
            let batch = batch.map_err(|e| undecodable(&self.path, e))?;
            self.decode(&batch)?;
        }
    }

    /// Decodes one record batch into `rows` (and `bad`).
    fn decode(&mut self, batch: &RecordBatch) -> Result<(), StoreError> {
        let seq = batch
            .column_by_name(schema::SEQ)
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
            .ok_or_else(|| undecodable(&self.path, "no seq column"))?;
        let decoded = schema::decode_rows(batch, self.version, self.table)
            .map_err(|e| undecodable(&self.path, e))?;
        let mut rows = Vec::with_capacity(decoded.len());
        for (i, row) in decoded.into_iter().enumerate() {
            match row {
                Ok(e) => rows.push((seq.value(i), e)),
                Err(e) => self.bad.push(undecodable(
                    &self.path,
                    format!("row {}: {e}", self.read + i + 1),
                )),
            }
        }
        self.read += batch.num_rows();
        self.rows = rows.into_iter();
        Ok(())
    }
}

/// A merge written: the merged part in place (renamed and its directory synced).
#[derive(Debug)]
pub(super) struct Merged {
    /// The merged part.
    pub out: PathBuf,
    /// Per input (in the order given): an error for each of its rows that did not decode.
    pub bad: Vec<Vec<StoreError>>,
    /// Rows left out because another input (or an earlier row) had their sequence number.
    pub duplicates: u64,
}

/// Why a merge wrote nothing (its temporary file removed).
#[derive(Debug)]
pub(super) enum MergeStop {
    /// Input `i` cannot be read on: its footer, or a record batch of it, does not decode
    /// (or, when a merge stops at a bad row, a row of it does not).
    Part(usize, StoreError),
    /// No input has a row that decodes (errors per input, as in [`Merged::bad`]).
    Empty(Vec<Vec<StoreError>>),
    /// Writing failed, or an input could not be read from the disk (an I/O error says
    /// nothing of the part).
    Failed(StoreError),
}

/// Merges `inputs` (parts of one partition of `table` in `dir`) into one part tagged with
/// `flush`, a batch of each at a time: `part-FLUSH-FIRST-c.parquet` (FIRST its smallest
/// sequence number), or `-r` when that name is an input's and rows of the inputs did not
/// decode (the rewrite replaces the damaged part, which is kept aside). The part lists the
/// inputs it replaces in its metadata, never itself. With `stop_at_bad_row`, the first row
/// that does not decode stops the merge ([`MergeStop::Part`]); without, such rows are left
/// out and counted per input. The inputs are read as [`SeqMerge`] reads them.
pub(super) fn merge_parts(
    table: Table,
    dir: &Path,
    inputs: &[PartInfo],
    flush: u64,
    stop_at_bad_row: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Merged, MergeStop> {
    let mut m = SeqMerge::new(inputs, stop_at_bad_row)?;
    let Some(first) = m.peek() else {
        return Err(MergeStop::Empty(m.bad));
    };
    let named = dir.join(format!("part-{flush:020}-{first:020}-c.parquet"));
    let tmp = temporary(&named);
    let out = match write_merged(&mut m, table, dir, &named, &tmp, flush, progress) {
        Ok(out) => out,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&tmp, &out) {
        let _ = std::fs::remove_file(&tmp);
        return Err(MergeStop::Failed(StoreError::io(&out, e)));
    }
    // The merged part is durable before any input is removed.
    fsync_dir(dir).map_err(MergeStop::Failed)?;
    Ok(Merged {
        out,
        bad: m.bad,
        duplicates: m.duplicates,
    })
}

/// Parts read together in sequence order, each number once (the first input holding it
/// wins, as a stable sort and dedup keep it), a record batch of each at a time.
///
/// An input is opened only once the merge reaches the smallest sequence number of its
/// footer's statistics, and closed at its end: parts flushed one after another hold ranges
/// one after another, so only the few whose ranges overlap are open at a time, whatever
/// their number (each open reader holds its pages: about 4.6 MB a part when all 80 parts of
/// a day were open).
pub(crate) struct SeqMerge<'a> {
    inputs: &'a [PartInfo],
    stop_at_bad_row: bool,
    /// Inputs by the smallest sequence number of their statistics.
    order: Vec<usize>,
    /// How many of `order` are opened.
    opened: usize,
    /// Per input, its cursor while it is open.
    cursors: Vec<Option<PartCursor>>,
    /// Per input, its next row's entry (its number is in `heap`).
    heads: Vec<Option<Entry>>,
    /// Per input, an error for each of its rows that did not decode.
    bad: Vec<Vec<StoreError>>,
    /// (sequence number, input) of every head, smallest first.
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    /// The number last returned.
    last: Option<u64>,
    /// Rows taken from the inputs, repeated numbers too.
    taken: u64,
    /// Rows left out because an earlier one had their number.
    duplicates: u64,
}

impl<'a> SeqMerge<'a> {
    /// Opens the inputs that hold the smallest numbers. With `stop_at_bad_row`, a row that
    /// does not decode stops the merge ([`MergeStop::Part`]); without, it is left out and
    /// counted per input.
    pub(crate) fn new(inputs: &'a [PartInfo], stop_at_bad_row: bool) -> Result<Self, MergeStop> {
        let mut m = SeqMerge {
            inputs,
            stop_at_bad_row,
            order: (0..inputs.len()).collect(),
            opened: 0,
            cursors: (0..inputs.len()).map(|_| None).collect(),
            heads: (0..inputs.len()).map(|_| None).collect(),
            bad: (0..inputs.len()).map(|_| Vec::new()).collect(),
            heap: BinaryHeap::with_capacity(inputs.len()),
            last: None,
            taken: 0,
            duplicates: 0,
        };
        // Parts without statistics first: they are opened at the start.
        m.order
            .sort_by_key(|&i| inputs[i].seq_range.map_or(0, |r| r.0));
        m.open_reached()?;
        Ok(m)
    }

    /// The next number the merge returns.
    fn peek(&self) -> Option<u64> {
        self.heap.peek().map(|&Reverse((seq, _))| seq)
    }

    /// The next row in sequence order, `None` at the end.
    pub(crate) fn next_row(&mut self) -> Result<Option<(u64, Entry)>, MergeStop> {
        while let Some(Reverse((seq, i))) = self.heap.pop() {
            let e = self.heads[i]
                .take()
                .expect("each input in the heap has a head");
            self.taken += 1;
            self.advance(i)?;
            self.open_reached()?;
            if self.last == Some(seq) {
                self.duplicates += 1;
                continue;
            }
            self.last = Some(seq);
            return Ok(Some((seq, e)));
        }
        Ok(None)
    }

    /// The stop for an error reading input `i`.
    fn stop(i: usize, e: StoreError) -> MergeStop {
        match e {
            e @ StoreError::Io { .. } => MergeStop::Failed(e),
            e => MergeStop::Part(i, e),
        }
    }

    /// Takes input `i`'s next row into its head (closing it at its end).
    fn advance(&mut self, i: usize) -> Result<(), MergeStop> {
        let Some(c) = self.cursors[i].as_mut() else {
            return Ok(());
        };
        let next = c.next_row().map_err(|e| Self::stop(i, e))?;
        if self.stop_at_bad_row {
            if let Some(e) = c.bad.drain(..).next() {
                return Err(MergeStop::Part(i, e));
            }
        }
        match next {
            Some((seq, e)) => {
                self.heads[i] = Some(e);
                self.heap.push(Reverse((seq, i)));
            }
            None => {
                let c = self.cursors[i].take().expect("open");
                self.bad[i] = c.bad;
            }
        }
        Ok(())
    }

    /// Opens every input whose smallest number the merge has reached (all of them while
    /// nothing is open), so that the heap's top is the smallest number left.
    fn open_reached(&mut self) -> Result<(), MergeStop> {
        while let Some(&i) = self.order.get(self.opened) {
            let min = self.inputs[i].seq_range.map_or(0, |r| r.0);
            if matches!(self.heap.peek(), Some(&Reverse((top, _))) if top < min) {
                break;
            }
            self.opened += 1;
            let c = PartCursor::open_sorted(&self.inputs[i].path).map_err(|e| Self::stop(i, e))?;
            self.cursors[i] = Some(c);
            self.advance(i)?;
        }
        Ok(())
    }
}

/// Writes every row of `m` to `tmp`, in batches of [`CHUNK`]; returns the merged part's name
/// (see [`merge_parts`]).
fn write_merged(
    m: &mut SeqMerge<'_>,
    table: Table,
    dir: &Path,
    named: &Path,
    tmp: &Path,
    flush: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<PathBuf, MergeStop> {
    let failed = |e: StoreError| MergeStop::Failed(e);
    let mut w: Option<ArrowWriter<File>> = None;
    let mut seqs = Vec::with_capacity(CHUNK);
    let mut entries = Vec::with_capacity(CHUNK);
    loop {
        let row = m.next_row()?;
        let end = row.is_none();
        if let Some((seq, e)) = row {
            seqs.push(seq);
            entries.push(e);
        }
        if !seqs.is_empty() && (seqs.len() == CHUNK || end) {
            let refs: Vec<&Entry> = entries.iter().collect();
            let batch = schema::to_batch(table, &seqs, &refs)
                .map_err(|e| failed(StoreError::Encode(e.to_string())))?;
            let writer = match &mut w {
                Some(w) => w,
                None => {
                    let file = File::create(tmp).map_err(|e| failed(StoreError::io(tmp, e)))?;
                    w.insert(
                        ArrowWriter::try_new(file, batch.schema(), Some(props(table, flush, &[])))
                            .map_err(|e| failed(StoreError::parquet(tmp, e)))?,
                    )
                }
            };
            writer
                .write(&batch)
                .map_err(|e| failed(StoreError::parquet(tmp, e)))?;
            seqs.clear();
            entries.clear();
            progress(m.taken);
        }
        if end {
            break;
        }
    }
    let damaged = m.bad.iter().any(|b| !b.is_empty());
    let is_input = m.inputs.iter().any(|p| p.path == named);
    let out = if damaged && is_input {
        let first = named
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix("-c.parquet"))
            .unwrap_or("part");
        dir.join(format!("{first}-r.parquet"))
    } else {
        named.to_path_buf()
    };
    // What it replaces, never itself: an output that takes an input's name (a merge of a
    // merged part with parts it left behind) listed itself, and the next open removed it as
    // replaced (a review).
    let names: Vec<String> = m
        .inputs
        .iter()
        .filter(|p| p.path != out)
        .filter_map(|p| p.path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let mut w = w.expect("a merge with a first row wrote a batch");
    if !names.is_empty() {
        w.append_key_value_metadata(KeyValue::new(META_REPLACES.to_string(), names.join(",")));
    }
    let file = w
        .into_inner()
        .map_err(|e| failed(StoreError::parquet(tmp, e)))?;
    file.sync_all()
        .map_err(|e| failed(StoreError::io(tmp, e)))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::state;

    /// Writes the rows `seqs` (each `state(seq)`'s entry under its number) as a task-states
    /// part at `path`, in the order given.
    fn part(path: &Path, seqs: &[u64], flush: u64) {
        let entries: Vec<Entry> = seqs.iter().map(|&s| state(s * 2)).collect();
        let refs: Vec<&Entry> = entries.iter().collect();
        let batch = schema::to_batch(Table::TaskStates, seqs, &refs).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut w = ArrowWriter::try_new(
            File::create(path).unwrap(),
            batch.schema(),
            Some(props(Table::TaskStates, flush, &[])),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    fn infos(paths: &[PathBuf]) -> Vec<PartInfo> {
        paths
            .iter()
            .map(|p| crate::store::parquet_store::part_info(p).unwrap())
            .collect()
    }

    /// The merge reads each input a batch at a time, so the order across inputs is the
    /// heap's: inputs that interleave (and one stored out of order, read whole and sorted)
    /// come out in sequence order over several output batches, each number once.
    #[test]
    fn interleaved_inputs_merge_in_sequence_order_each_number_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("date=2023-11-14");
        let n = 3 * CHUNK as u64 + 17;
        let a: Vec<u64> = (1..=n).filter(|s| s % 3 == 1).collect();
        let b: Vec<u64> = (1..=n).filter(|s| s % 3 == 2).collect();
        // The third stored backwards, and holding some of the first's numbers again.
        let mut c: Vec<u64> = (1..=n).filter(|s| s % 3 == 0 || s % 300 == 1).collect();
        c.reverse();
        // The fourth after all of them (opened only when the merge reaches it).
        let late: Vec<u64> = (n + 1..=n + 50).collect();
        let paths =
            ["part-d", "part-a", "part-b", "part-c"].map(|n| d.join(format!("{n}.parquet")));
        part(&paths[0], &late, 9);
        part(&paths[1], &a, 3);
        part(&paths[2], &b, 7);
        part(&paths[3], &c, 5);
        let inputs = infos(&paths);
        let n = n + 50;
        let m = merge_parts(Table::TaskStates, &d, &inputs, 7, false, &mut |_| {}).unwrap();
        assert_eq!(m.out, d.join(format!("part-{:020}-{:020}-c.parquet", 7, 1)));
        assert!(m.bad.iter().all(Vec::is_empty));
        let (rows, bad) = read_part_rows(&m.out).unwrap();
        assert!(bad.is_empty());
        let seqs: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
        assert!(rows.iter().all(|(s, e)| *e == state(s * 2)));
        let f = File::open(&m.out).unwrap();
        let md = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
        let kv = md.metadata().file_metadata().key_value_metadata().unwrap();
        let replaces = kv.iter().find(|k| k.key == META_REPLACES).unwrap();
        assert_eq!(
            replaces.value.as_deref(),
            Some("part-d.parquet,part-a.parquet,part-b.parquet,part-c.parquet")
        );
        assert_eq!(
            md.metadata().file_metadata().num_rows(),
            n as i64,
            "one row per number"
        );
        // Only the merged part and its inputs: no temporary left.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 5);
    }

    /// A merge that fails (its output cannot be created) leaves no temporary behind, and
    /// inputs without a row are reported as empty without writing anything.
    #[test]
    fn a_merge_with_nothing_to_write_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("date=2023-11-14");
        let paths = [d.join("part-a.parquet"), d.join("part-b.parquet")];
        part(&paths[0], &[], 1);
        part(&paths[1], &[], 2);
        let inputs = infos(&paths);
        match merge_parts(Table::TaskStates, &d, &inputs, 2, false, &mut |_| {}) {
            Err(MergeStop::Empty(bad)) => assert_eq!(bad.len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2);
        // A vanished input is an I/O error: it says nothing of the other part.
        std::fs::remove_file(&paths[0]).unwrap();
        match merge_parts(Table::TaskStates, &d, &inputs, 2, false, &mut |_| {}) {
            Err(MergeStop::Failed(StoreError::Io { path, .. })) => assert_eq!(path, paths[0]),
            other => panic!("{other:?}"),
        }
    }
}
