//! A commit's rows laid out in Arrow columns as they arrive, one [`TableBuilder`] per
//! (table, date) partition, so that a bulk write holds columns rather than entries: each
//! entry can be dropped as soon as it is pushed. Every write of Parquet parts
//! ([`ParquetStore::write_columns`] and the paths built on it) goes through here.
//!
//! [`ParquetStore::write_columns`]: super::ParquetStore::write_columns

use std::collections::HashMap;
use std::ops::Range;

use arrow_array::RecordBatch;

use super::entry::{Encoded, Entry, Table};
use super::schema::{self, TableBuilder};
use super::StoreError;

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;
/// Rows a partition's builders first make room for.
const FIRST_ROWS: usize = 4096;
/// At most this many rows are reserved up front (a larger batch grows as rows arrive).
const MAX_RESERVED_ROWS: usize = 1 << 18;

/// A partition taken out of its builder: table, date, sequence numbers, rows.
type Sealed = (Table, String, Vec<u64>, RecordBatch);

/// A finished partition: table, date, its first sequence number and its rows.
pub(crate) type Part = (Table, String, u64, RecordBatch);

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
    /// Partitions in order of their first row: (table, date) and its rows.
    parts: Vec<(Table, String, TableBuilder)>,
    /// (table, day) → index into `parts` (several days can share a date: days chrono cannot
    /// represent all fall on 1970-01-01).
    days: HashMap<(Table, i64), usize>,
    /// The (table, day) of the previous row and its partition (rows come in runs).
    last: Option<(Table, i64, usize)>,
    /// Rows (one more than the highest sequence number pushed).
    len: u64,
    /// The partitions as record batches, with their sequence numbers, once rows were taken
    /// from this batch by [`ColumnBatch::append_rows`].
    sealed: Option<Vec<Sealed>>,
    /// Rows expected (see [`ColumnBatch::with_capacity`]).
    capacity: usize,
}

impl ColumnBatch {
    /// An empty batch.
    pub fn new() -> Self {
        ColumnBatch::default()
    }

    /// An empty batch expected to receive about `rows` rows through
    /// [`ColumnBatch::append_rows`] (its partitions make room for them up front).
    pub fn with_capacity(rows: usize) -> Self {
        ColumnBatch {
            capacity: rows.min(MAX_RESERVED_ROWS),
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
                        let date = entry.timestamp().date_string();
                        let i = match self
                            .parts
                            .iter()
                            .position(|(t, d, _)| *t == table && *d == date)
                        {
                            Some(i) => i,
                            None => {
                                self.parts.push((
                                    table,
                                    date,
                                    TableBuilder::new(table, FIRST_ROWS),
                                ));
                                self.parts.len() - 1
                            }
                        };
                        self.days.insert((table, day), i);
                        i
                    }
                };
                self.last = Some((table, day, i));
                i
            }
        };
        self.parts[i]
            .2
            .push(seq, entry, payload)
            .map_err(|e| StoreError::Encode(e.to_string()))?;
        self.len = self.len.max(seq + 1);
        Ok(())
    }

    /// Moves the rows numbered `rows` (sequence numbers as pushed) of `from` to the end of
    /// this batch, in order, as this batch's next `rows.len()` rows. `from` is sealed into
    /// record batches on the first call (no more pushes); the columns are copied in bulk.
    pub fn append_rows(
        &mut self,
        from: &mut ColumnBatch,
        rows: Range<u64>,
    ) -> Result<(), StoreError> {
        if from.sealed.is_none() {
            let parts = std::mem::take(&mut from.parts)
                .into_iter()
                .map(|(table, date, b)| {
                    let seqs = b.seqs().to_vec();
                    let batch = b.finish(0).map_err(|e| StoreError::Encode(e.to_string()))?;
                    Ok((table, date, seqs, batch))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            from.sealed = Some(parts);
        }
        let base = self.len;
        for (table, date, seqs, batch) in from.sealed.iter().flatten() {
            let lo = seqs.partition_point(|s| *s < rows.start);
            let hi = seqs.partition_point(|s| *s < rows.end);
            if lo == hi {
                continue;
            }
            let i = match self
                .parts
                .iter()
                .position(|(t, d, _)| t == table && d == date)
            {
                Some(i) => i,
                None => {
                    // Room for the rest of the batch: most batches fill one or two
                    // partitions, and room not written to costs no memory.
                    let left = self.capacity.saturating_sub(self.len as usize);
                    let sample = batch.slice(lo, hi - lo);
                    let b = TableBuilder::sized_like(*table, left.max(hi - lo), &sample);
                    self.parts.push((*table, date.clone(), b));
                    self.parts.len() - 1
                }
            };
            // Rows pushed later must not land in a partition through the day index of a
            // row appended here out of turn: appended partitions are found by date.
            self.last = None;
            self.parts[i]
                .2
                .append(
                    seqs[lo..hi].iter().map(|s| base + s - rows.start),
                    &batch.slice(lo, hi - lo),
                )
                .map_err(|e| StoreError::Encode(e.to_string()))?;
        }
        self.len = base + (rows.end - rows.start);
        Ok(())
    }

    /// The partitions, sorted by table and date, as record batches with `offset` added to
    /// every sequence number: `(table, date, first seq, batch)`, and the highest sequence
    /// number (none for an empty batch).
    pub(crate) fn finish(mut self, offset: u64) -> Result<(Vec<Part>, Option<u64>), StoreError> {
        self.parts
            .sort_by(|a, b| (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
        let last = self
            .parts
            .iter()
            .filter_map(|p| p.2.seqs().iter().max())
            .max()
            .map(|m| m + offset);
        let parts = self
            .parts
            .into_iter()
            .map(|(table, date, b)| {
                let first = b.seqs().first().copied().unwrap_or(0) + offset;
                let batch = b
                    .finish(offset)
                    .map_err(|e| StoreError::Encode(e.to_string()))?;
                Ok((table, date, first, batch))
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
