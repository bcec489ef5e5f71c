//! A commit's rows laid out in Arrow columns as they arrive, per (table, date) partition,
//! so that a bulk write holds columns rather than entries: each entry can be dropped as soon
//! as it is pushed. Rows moved from another batch (bulk ingest builds a batch per chunk on
//! its worker threads) are kept as zero-copy slices of that batch's columns. Every write of
//! Parquet parts ([`ParquetStore::write_columns`] and the paths built on it) goes through
//! here.
//!
//! [`ParquetStore::write_columns`]: super::ParquetStore::write_columns

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::{RecordBatch, UInt64Array};

use super::entry::{Encoded, Entry, Table};
use super::schema::{self, Room, TableBuilder};
use super::StoreError;

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;
/// Rows a partition's builders first make room for, unless the batch was given a size.
const FIRST_ROWS: usize = 1024;

/// A finished partition: table, date, its first sequence number and its rows, as record
/// batches in sequence order (written one after another into one part).
pub(crate) type Part = (Table, String, u64, Vec<RecordBatch>);

/// A segment taken out of its batch: table, date, sequence numbers, rows.
type Sealed = (Table, String, Vec<u64>, RecordBatch);

/// Rows of one partition, in the order they came.
#[derive(Debug)]
enum Segment {
    /// Rows pushed one by one.
    Built(TableBuilder),
    /// Rows taken from another batch by [`ColumnBatch::append_rows`]: their sequence
    /// numbers here and their columns (a zero-copy slice of the other batch's arrays).
    Taken(Vec<u64>, RecordBatch),
}

impl Segment {
    fn seqs(&self) -> &[u64] {
        match self {
            Segment::Built(b) => b.seqs(),
            Segment::Taken(seqs, _) => seqs,
        }
    }

    /// The rows as one record batch, with `offset` added to every sequence number.
    fn finish(self, offset: u64) -> Result<RecordBatch, StoreError> {
        let enc = |e: arrow_schema::ArrowError| StoreError::Encode(e.to_string());
        match self {
            Segment::Built(b) => b.finish(offset).map_err(enc),
            Segment::Taken(seqs, batch) => {
                let seq: UInt64Array = seqs.iter().map(|s| s + offset).collect::<Vec<_>>().into();
                let mut columns = batch.columns().to_vec();
                columns[0] = Arc::new(seq);
                RecordBatch::try_new(batch.schema(), columns).map_err(enc)
            }
        }
    }
}

/// One (table, date) partition of a batch.
#[derive(Debug)]
struct Partition {
    table: Table,
    date: String,
    segments: Vec<Segment>,
}

impl Partition {
    fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.segments.iter().flat_map(|s| s.seqs().iter().copied())
    }
}

/// Entries of any tables with their payloads, in Arrow columns per (table, date) partition,
/// in push order. Sequence numbers are relative to the batch (the n-th row pushed is n)
/// until the store gives the batch its place in the log.
///
/// ```
/// use faultline::store::{ColumnBatch, Entry, TaskStateRow};
/// use faultline::{TaskId, TaskState, Timestamp};
///
/// let e = Entry::TaskState(TaskStateRow {
///     task_id: TaskId::new("t1").unwrap(),
///     state: TaskState::Running,
///     timestamp: Timestamp::from_micros(0),
///     note: String::new(),
/// });
/// let mut b = ColumnBatch::new();
/// b.push(&e, &faultline::store::schema::payload(&e).unwrap()).unwrap();
/// assert_eq!(b.len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct ColumnBatch {
    /// Partitions in order of their first row.
    parts: Vec<Partition>,
    /// (table, day) → index into `parts` (several days can share a date: days chrono cannot
    /// represent all fall on 1970-01-01).
    days: HashMap<(Table, i64), usize>,
    /// The (table, day) of the previous row and its partition (rows come in runs).
    last: Option<(Table, i64, usize)>,
    /// Rows (one more than the highest sequence number pushed).
    len: u64,
    /// The segments as record batches with their table, date and sequence numbers, once
    /// rows were taken from this batch by [`ColumnBatch::append_rows`].
    sealed: Option<Vec<Sealed>>,
    /// What a partition's builders make room for (see [`ColumnBatch::empty_like`]).
    room: Option<Room>,
}

impl ColumnBatch {
    /// An empty batch.
    pub fn new() -> Self {
        ColumnBatch::default()
    }

    /// An empty batch whose partitions make room for as many rows and bytes as this batch's
    /// pushed rows hold, and 1/8 more: a bulk writer building one batch per chunk neither
    /// moves its buffers as they grow nor holds room it never uses.
    pub fn empty_like(&self) -> ColumnBatch {
        let mut room: Option<Room> = None;
        for p in &self.parts {
            for s in &p.segments {
                if let Segment::Built(b) = s {
                    match &mut room {
                        Some(r) => r.add(&b.room()),
                        None => room = Some(b.room()),
                    }
                }
            }
        }
        ColumnBatch {
            room: room.filter(|r| r.rows > 0).map(|r| r.grown(8)),
            ..ColumnBatch::default()
        }
    }

    /// Rows pushed.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `entry` with its payload (which must be [`schema::payload`]`(entry)`).
    pub fn push(&mut self, entry: &Entry, payload: &str) -> Result<(), StoreError> {
        self.push_at(self.len, entry, payload)
    }

    /// Appends an entry encoded ahead.
    pub fn push_encoded(&mut self, e: &Encoded) -> Result<(), StoreError> {
        self.push(e.entry(), e.payload())
    }

    /// The index of the partition of (`table`, `date`), made if there is none.
    fn partition(&mut self, table: Table, date: &str) -> usize {
        match self
            .parts
            .iter()
            .position(|p| p.table == table && p.date == date)
        {
            Some(i) => i,
            None => {
                self.parts.push(Partition {
                    table,
                    date: date.to_string(),
                    segments: Vec::new(),
                });
                self.parts.len() - 1
            }
        }
    }

    /// Appends `entry` as sequence number `seq` (relative to the batch; rows of one
    /// partition must come in ascending order, and a batch that is appended from with
    /// [`ColumnBatch::append_rows`] numbers its rows `0, 1, ...` in input order, possibly
    /// with gaps).
    pub fn push_at(&mut self, seq: u64, entry: &Entry, payload: &str) -> Result<(), StoreError> {
        let table = entry.table();
        let day = entry.timestamp().as_micros().div_euclid(DAY_US);
        let i = match self.last {
            Some((t, d, i)) if t == table && d == day => i,
            _ => {
                let i = match self.days.get(&(table, day)) {
                    Some(&i) => i,
                    None => {
                        let i = self.partition(table, &entry.timestamp().date_string());
                        self.days.insert((table, day), i);
                        i
                    }
                };
                self.last = Some((table, day, i));
                i
            }
        };
        let segments = &mut self.parts[i].segments;
        if !matches!(segments.last(), Some(Segment::Built(_))) {
            let b = match &self.room {
                Some(room) => TableBuilder::sized(table, room),
                None => TableBuilder::new(table, FIRST_ROWS),
            };
            segments.push(Segment::Built(b));
        }
        let Some(Segment::Built(b)) = segments.last_mut() else {
            unreachable!("a builder segment was just made");
        };
        b.push(seq, entry, payload)
            .map_err(|e| StoreError::Encode(e.to_string()))?;
        self.len = self.len.max(seq + 1);
        Ok(())
    }

    /// Moves the rows numbered `rows` (sequence numbers as pushed) of `from` to the end of
    /// this batch, in order, as this batch's next `rows.len()` rows. `from` is sealed into
    /// record batches on the first call (no more pushes); this batch keeps zero-copy
    /// slices of them, so a row's bytes are not copied again before they are written.
    pub fn append_rows(
        &mut self,
        from: &mut ColumnBatch,
        rows: Range<u64>,
    ) -> Result<(), StoreError> {
        if from.sealed.is_none() {
            let mut sealed = Vec::new();
            for p in std::mem::take(&mut from.parts) {
                for s in p.segments {
                    let seqs = s.seqs().to_vec();
                    sealed.push((p.table, p.date.clone(), seqs, s.finish(0)?));
                }
            }
            from.sealed = Some(sealed);
        }
        let base = self.len;
        for (table, date, seqs, batch) in from.sealed.iter().flatten() {
            let lo = seqs.partition_point(|s| *s < rows.start);
            let hi = seqs.partition_point(|s| *s < rows.end);
            if lo == hi {
                continue;
            }
            let i = self.partition(*table, date);
            // Rows pushed later must not land in a partition through the day index of a
            // row appended here out of turn: partitions are found by date.
            self.last = None;
            self.parts[i].segments.push(Segment::Taken(
                seqs[lo..hi].iter().map(|s| base + s - rows.start).collect(),
                batch.slice(lo, hi - lo),
            ));
        }
        self.len = base + (rows.end - rows.start);
        Ok(())
    }

    /// The partitions, sorted by table and date, as record batches with `offset` added to
    /// every sequence number: `(table, date, first seq, batches)`, and the highest sequence
    /// number (none for an empty batch).
    pub(crate) fn finish(mut self, offset: u64) -> Result<(Vec<Part>, Option<u64>), StoreError> {
        self.parts
            .sort_by(|a, b| (a.table, a.date.as_str()).cmp(&(b.table, b.date.as_str())));
        let last = self
            .parts
            .iter()
            .filter_map(|p| p.seqs().max())
            .max()
            .map(|m| m + offset);
        let parts = self
            .parts
            .into_iter()
            .map(|p| {
                let first = p.seqs().next().unwrap_or(0) + offset;
                let batches = p
                    .segments
                    .into_iter()
                    .map(|s| s.finish(offset))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok((p.table, p.date, first, batches))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((parts, last))
    }
}

/// A batch of `entries`, their payloads encoded here, as sequence numbers `seqs`.
pub(crate) fn of_entries<'a>(
    rows: impl Iterator<Item = (u64, &'a Entry)>,
) -> Result<ColumnBatch, StoreError> {
    let mut b = ColumnBatch::new();
    for (seq, e) in rows {
        let p = schema::payload(e).map_err(|e| StoreError::Encode(e.to_string()))?;
        b.push_at(seq, e, &p)?;
    }
    Ok(b)
}
