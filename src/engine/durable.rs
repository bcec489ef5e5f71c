//! Durable engine state: the in-memory records plus the Parquet store (WAL + parts) and the
//! checkpoint blob store. Every decision and outcome is logged; `Engine::open` rebuilds the
//! state by replaying the history.

use std::collections::HashMap;
use std::path::Path;

use crate::model::{TaskId, Timestamp};
use crate::store::{
    Ack, CheckpointRow, Checkpoints, Entry, HistoryStore, ParquetStore, Retention, StoreError,
};

use super::state::{MemoryState, StateStore, TaskRecord};

/// State kept in memory and logged to a [`ParquetStore`].
#[derive(Debug)]
pub struct DurableState {
    pub(crate) mem: MemoryState,
    pub(crate) store: ParquetStore,
    blobs: Checkpoints,
    /// Checkpoint index per task (live and deleted rows), oldest first.
    pub(crate) index: HashMap<TaskId, Vec<CheckpointRow>>,
    /// Retention applied after each new checkpoint.
    pub retention: Retention,
}

impl DurableState {
    /// Wraps an opened store.
    pub fn new(store: ParquetStore) -> Self {
        let blobs = Checkpoints::new(store.root());
        DurableState {
            mem: MemoryState::default(),
            store,
            blobs,
            index: HashMap::new(),
            retention: Retention::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &ParquetStore {
        &self.store
    }

    /// The store, mutably (flush, compact).
    pub fn store_mut(&mut self) -> &mut ParquetStore {
        &mut self.store
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        self.store.root()
    }

    pub(crate) fn index_row(&mut self, row: CheckpointRow) {
        let list = self.index.entry(row.task_id.clone()).or_default();
        match list
            .iter_mut()
            .find(|r| r.checkpoint_id == row.checkpoint_id)
        {
            Some(r) => *r = row,
            None => list.push(row),
        }
    }
}

impl StateStore for DurableState {
    fn task(&self, id: &TaskId) -> Option<&TaskRecord> {
        self.mem.task(id)
    }
    fn task_mut(&mut self, id: &TaskId) -> &mut TaskRecord {
        self.mem.task_mut(id)
    }
    fn forget(&mut self, id: &TaskId) {
        self.mem.forget(id)
    }
    fn len(&self) -> usize {
        self.mem.len()
    }
    fn durable(&self) -> bool {
        true
    }
    fn log(&mut self, entries: Vec<Entry>) -> Result<Ack, StoreError> {
        self.store.append(entries)
    }
    fn save_checkpoint(
        &mut self,
        task: &TaskId,
        data: &[u8],
        at: Timestamp,
    ) -> Result<CheckpointRow, StoreError> {
        let n = self.index.get(task).map_or(0, Vec::len) as u64 + 1;
        let row = self.blobs.create(task, data, at, n)?;
        self.index_row(row.clone());
        let live = self.index.get(task).cloned().unwrap_or_default();
        let deleted = self.blobs.retain(&live, self.retention, at)?;
        let mut log = vec![Entry::Checkpoint(row.clone())];
        for d in deleted {
            self.index_row(d.clone());
            log.push(Entry::Checkpoint(d));
        }
        self.store.append(log)?.wait()?;
        Ok(row)
    }
    fn load_checkpoint(
        &self,
        task: &TaskId,
    ) -> (Option<(CheckpointRow, Vec<u8>)>, Vec<StoreError>) {
        match self.index.get(task) {
            Some(rows) => self.blobs.latest_good(rows),
            None => (None, Vec::new()),
        }
    }
}
