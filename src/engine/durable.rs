//! Durable engine state: the in-memory records plus the Parquet store (WAL + parts) and the
//! checkpoint blob store. Every decision and outcome is logged; `Engine::open` rebuilds the
//! state by replaying the history.
//!
//! A checkpoint is stored in three steps so that a server holds its lock on the engine only
//! for bookkeeping: under the lock a number is reserved for it ([`StateStore::begin_checkpoint`],
//! so concurrent uploads get distinct ids); without the lock its blob is written and fsynced
//! ([`super::CheckpointWrite::write`]); under the lock again it is indexed, retention applied
//! and the rows appended to the WAL ([`StateStore::commit_checkpoint`]), whose fsync is waited
//! for without the lock. Blobs retention retires are removed only once their deletion is
//! durable. A crash between the blob and its row leaves an unreferenced blob file, never a row
//! without its blob; `Engine::open` sweeps such files once it has replayed the history (the
//! store's lock keeps every other writer out), except when opening found damage — then only
//! unfinished writes go, as a lost row may have named a blob.

use std::collections::HashMap;
use std::path::Path;

use crate::model::{TaskId, Timestamp};
use crate::store::{
    Ack, CheckpointRow, Checkpoints, Entry, HistoryStore, ParquetStore, Retention, StoreError,
};

use super::state::{
    reserve_number, CheckpointSnapshot, CheckpointWrite, CommittedCheckpoint, MemoryState,
    StateStore, TaskRecord, WrittenCheckpoint,
};

/// State kept in memory and logged to a [`ParquetStore`].
#[derive(Debug)]
pub struct DurableState {
    pub(crate) mem: MemoryState,
    pub(crate) store: ParquetStore,
    blobs: Checkpoints,
    /// Checkpoint index per task (live and deleted rows), oldest first.
    pub(crate) index: HashMap<TaskId, Vec<CheckpointRow>>,
    /// The last checkpoint number reserved per task (see [`StateStore::begin_checkpoint`]).
    numbers: HashMap<TaskId, u64>,
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
            numbers: HashMap::new(),
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

    /// Removes checkpoint files that no live index row names — the blob of an upload a crash
    /// interrupted before its row was logged, a blob retention retired whose removal a crash
    /// cut short, and unfinished writes — and returns a warning naming each. Run when the
    /// engine opens, after the replay: the store's lock keeps every other writer out. With
    /// `damaged` (opening skipped a record or set a part aside, so the index may lack rows)
    /// only unfinished writes go: a blob the lost rows named is kept.
    pub(crate) fn sweep_blobs(&self, damaged: bool) -> Result<Vec<String>, StoreError> {
        let root = self.blobs.root();
        let mut warnings = Vec::new();
        let tasks = match std::fs::read_dir(root) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(warnings),
            Err(e) => return Err(StoreError::io(root, e)),
        };
        // Each directory's task by its name (an id too long for a file name has a hashed
        // one, see `Checkpoints::dir_name`).
        let by_dir: HashMap<String, &TaskId> = self
            .index
            .keys()
            .map(|t| (Checkpoints::dir_name(t).into_owned(), t))
            .collect();
        for task_dir in tasks {
            let task_dir = task_dir.map_err(|e| StoreError::io(root, e))?.path();
            if !task_dir.is_dir() {
                continue;
            }
            let task = task_dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let live: Vec<&str> = by_dir
                .get(task)
                .and_then(|t| self.index.get(*t))
                .into_iter()
                .flatten()
                .filter(|r| !r.deleted)
                .map(|r| r.checkpoint_id.as_str())
                .collect();
            let files = std::fs::read_dir(&task_dir).map_err(|e| StoreError::io(&task_dir, e))?;
            let mut removed = false;
            for f in files {
                let f = f.map_err(|e| StoreError::io(&task_dir, e))?.path();
                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let orphan = match name.strip_suffix(".bin") {
                    Some(id) => !damaged && !live.contains(&id),
                    None => name.ends_with(".bin.tmp"),
                };
                if orphan && f.is_file() {
                    std::fs::remove_file(&f).map_err(|e| StoreError::io(&f, e))?;
                    warnings.push(format!(
                        "{}: checkpoint file no committed checkpoint names (an interrupted upload or removal) removed",
                        f.display()
                    ));
                    removed = true;
                }
            }
            if removed {
                crate::store::fsync_dir(&task_dir)?;
            }
        }
        Ok(warnings)
    }
}

impl StateStore for DurableState {
    fn task(&self, id: &TaskId) -> Option<&TaskRecord> {
        self.mem.task(id)
    }
    fn task_mut(&mut self, id: &TaskId) -> &mut TaskRecord {
        self.mem.task_mut(id)
    }
    fn set_retention(&mut self, retention: Retention) {
        self.retention = retention;
    }
    fn forget(&mut self, id: &TaskId) {
        self.mem.forget(id)
    }
    fn retain_tasks(&mut self, keep: &mut dyn FnMut(&TaskRecord) -> bool) -> usize {
        self.mem.retain_tasks(keep)
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
    fn logged(&self) -> Ack {
        self.store.logged()
    }
    fn begin_checkpoint(&mut self, task: &TaskId, at: Timestamp) -> CheckpointWrite {
        let used = self.index.get(task).map_or(0, Vec::len);
        let n = reserve_number(&mut self.numbers, task, used);
        CheckpointWrite::new(task.clone(), at, n, Some(self.blobs.clone()))
    }
    fn commit_checkpoint(
        &mut self,
        written: WrittenCheckpoint,
    ) -> Result<CommittedCheckpoint, StoreError> {
        let row = written.row;
        let task = row.task_id.clone();
        let mut live: Vec<CheckpointRow> = self
            .index
            .get(&task)
            .into_iter()
            .flatten()
            .filter(|r| !r.deleted)
            .cloned()
            .collect();
        live.push(row.clone());
        let retired = Checkpoints::expired(&live, self.retention, row.timestamp);
        let mut log = Vec::with_capacity(1 + retired.len());
        log.push(Entry::Checkpoint(row.clone()));
        log.extend(retired.iter().cloned().map(Entry::Checkpoint));
        // Logged first: nothing changes in memory when the WAL refuses the rows.
        let ack = self.store.append(log)?;
        let id = row.checkpoint_id.clone();
        self.index_row(row);
        for r in &retired {
            self.index_row(r.clone());
        }
        let latest = self
            .index
            .get(&task)
            .and_then(|rows| Checkpoints::newest(rows))
            .map(|r| r.checkpoint_id.clone());
        Ok(CommittedCheckpoint {
            id,
            ack,
            latest,
            retired,
            blobs: Some(self.blobs.clone()),
        })
    }
    fn checkpoint_snapshot(&self, task: &TaskId) -> CheckpointSnapshot {
        CheckpointSnapshot::files(
            self.blobs.clone(),
            self.index.get(task).map_or(&[][..], Vec::as_slice),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use crate::config::EngineConfig;
    use crate::engine::Engine;
    use crate::model::{
        ErrorInfo, FailureRecord, HardwareClass, HardwareProfile, TaskId, TaskSpec, Timestamp,
        WorkerId,
    };
    use crate::rules::RuleSet;
    use crate::store::{Retention, StoreOptions};

    use super::DurableState;

    /// The engine on `dir` with the default config, rules and store options, and what
    /// opening found.
    fn try_open(
        dir: &std::path::Path,
    ) -> Result<(Engine<DurableState>, crate::store::OpenReport), crate::engine::EngineError> {
        Engine::open(
            dir,
            EngineConfig::default(),
            RuleSet::defaults(),
            StoreOptions::default(),
        )
    }

    fn open(dir: &std::path::Path) -> Engine<DurableState> {
        try_open(dir).unwrap().0
    }

    fn failure(task: &str) -> FailureRecord {
        FailureRecord {
            task_id: TaskId::new(task).unwrap(),
            worker_id: WorkerId::new("w1").unwrap(),
            hardware: HardwareProfile::of_class(HardwareClass::Gpu),
            error: ErrorInfo {
                message: "CUDA out of memory".into(),
                ..Default::default()
            },
            timestamp: Timestamp::from_secs_f64(1_700_000_000.0),
            task: TaskSpec::default(),
        }
    }

    fn wal_len(e: &Engine<DurableState>) -> u64 {
        std::fs::metadata(e.state().store().wal_path()).map_or(0, |m| m.len())
    }

    /// Regression (library audit): a decision whose Ack was dropped unwaited was never
    /// written, even when the engine was closed cleanly after it: reopened, the task was
    /// unknown. Closing the engine writes what was queued.
    #[test]
    fn a_decision_whose_ack_was_dropped_is_kept_by_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = open(dir.path());
        let (action, ack) = e.decide(&failure("t-unwaited")).unwrap();
        drop(ack);
        drop(e);
        let e = open(dir.path());
        let t = e
            .task(&TaskId::new("t-unwaited").unwrap())
            .expect("the task is back");
        assert_eq!(t.attempts, 1);
        assert_eq!(
            e.recovery_history(&TaskId::new("t-unwaited").unwrap())[0].strategy,
            action.strategy
        );
    }

    /// Regression (library audit): a record dated outside the years 0000–9999 (a
    /// `FailureRecord` built in code with `Timestamp::from_micros(i64::MAX)`) was decided and
    /// acknowledged, then skipped as undecodable at the next open. It is refused, naming the
    /// field, and nothing is logged.
    #[test]
    fn a_failure_dated_outside_the_storable_years_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = open(dir.path());
        for us in [i64::MAX, i64::MIN] {
            let mut rec = failure("t-far");
            rec.timestamp = Timestamp::from_micros(us);
            let err = e.try_handle_failure(&rec).unwrap_err().to_string();
            assert!(err.contains("timestamp"), "{err}");
        }
        assert!(e.task(&TaskId::new("t-far").unwrap()).is_none());
        e.try_handle_failure(&failure("t-near")).unwrap();
        drop(e);
        let (e, opened) = try_open(dir.path()).unwrap();
        assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
        assert!(e.task(&TaskId::new("t-near").unwrap()).is_some());
    }

    /// Regression (audit): a task id of 256 bytes — valid — could not store a checkpoint
    /// ("File name too long", a 500 over HTTP). Its directory has a hashed name; the blob is
    /// read back, and the sweep at the next open keeps it.
    #[test]
    fn regression_a_task_id_longer_than_a_file_name_stores_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let long = TaskId::new(&"é".repeat(128)).unwrap();
        let short = TaskId::new(&"a".repeat(255)).unwrap();
        let at = Timestamp::from_secs_f64(1_700_000_100.0);
        let (a, b) = {
            let mut e = open(dir.path());
            let a = e.create_checkpoint(&long, b"long step", at).unwrap();
            let b = e.create_checkpoint(&short, b"short step", at).unwrap();
            (a, b)
        };
        // A 255-byte id keeps its own name (blobs stored before stay where they were).
        assert!(dir.path().join("checkpoints").join(short.as_str()).is_dir());
        assert!(crate::store::Checkpoints::dir_name(&long).starts_with("long.."));
        let (e, report) = try_open(dir.path()).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        for (task, id, data) in [
            (&long, a, &b"long step"[..]),
            (&short, b, &b"short step"[..]),
        ] {
            let (found, errors) = e.latest_checkpoint(task);
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(found, Some((id, data.to_vec())));
        }
    }

    /// Regression: a blob written and never committed (a crash between the blob and its row)
    /// stayed on disk for ever. The next open removes it, and unfinished writes, and says so;
    /// committed checkpoints stay.
    #[test]
    fn regression_uncommitted_checkpoint_files_are_swept_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let t = TaskId::new("t1").unwrap();
        let at = Timestamp::from_secs_f64(1_700_000_100.0);
        let kept = {
            let mut e = open(dir.path());
            let id = e.create_checkpoint(&t, b"step 100", at).unwrap();
            // Crashed mid-upload: a blob with no row, and a write not even renamed.
            let w = e.begin_checkpoint(&t, at).write(b"step 200").unwrap();
            std::mem::forget(w);
            std::fs::write(dir.path().join("checkpoints/t1/x.bin.tmp"), b"half").unwrap();
            id
        };
        let files = |d: &std::path::Path| {
            let mut v: Vec<String> = std::fs::read_dir(d.join("checkpoints/t1"))
                .unwrap()
                .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(files(dir.path()).len(), 3);
        let (e, report) = try_open(dir.path()).unwrap();
        assert_eq!(files(dir.path()), vec![format!("{kept}.bin")]);
        let swept = report
            .warnings
            .iter()
            .filter(|w| w.contains("no committed checkpoint names"))
            .count();
        assert_eq!(swept, 2, "{:?}", report.warnings);
        assert_eq!(e.latest_checkpoint(&t).0.unwrap().0, kept);
    }

    /// With a damaged history (a WAL record skipped, a part set aside) the index may lack
    /// rows: only unfinished writes are swept, every blob is kept.
    #[test]
    fn a_damaged_history_keeps_every_blob() {
        let dir = tempfile::tempdir().unwrap();
        let t = TaskId::new("t1").unwrap();
        let at = Timestamp::from_secs_f64(1_700_000_100.0);
        let mut e = open(dir.path());
        let w = e.begin_checkpoint(&t, at).write(b"step 200").unwrap();
        let name = format!("{}.bin", w.row().checkpoint_id);
        drop(e);
        let d = dir.path().join("checkpoints/t1");
        std::fs::write(d.join("x.bin.tmp"), b"half").unwrap();
        let state = super::DurableState::new(
            crate::store::ParquetStore::open(dir.path(), StoreOptions::default()).unwrap(),
        );
        let swept = state.sweep_blobs(true).unwrap();
        assert_eq!(swept.len(), 1, "{swept:?}");
        assert!(d.join(&name).exists() && !d.join("x.bin.tmp").exists());
    }

    /// Two writers on one data directory would interleave one WAL and repair each other's
    /// files: the second open is refused, naming the lock; once the first closes, it opens.
    #[test]
    fn a_data_directory_is_opened_by_one_store_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path());
        let err = try_open(dir.path()).unwrap_err().to_string();
        assert!(err.contains(".lock") && err.contains("in use"), "{err}");
        drop(first);
        open(dir.path());
    }

    /// Regression: `POST /v1/tasks/{id}/checkpoints` held the engine's lock while it wrote
    /// and fsynced the blob and while it waited for the WAL fsync, so every decision waited
    /// behind it. Now the blob is written, and the fsync waited for, by threads that cannot
    /// take the lock (it is held here all along), and decisions are made between the steps.
    #[test]
    fn regression_a_checkpoint_is_written_and_synced_outside_the_engine_lock() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Mutex::new(open(dir.path()));
        let t = TaskId::new("t1").unwrap();
        let at = Timestamp::from_secs_f64(1_700_000_100.0);

        let write = engine.lock().unwrap().begin_checkpoint(&t, at);
        let mut guard = engine.lock().unwrap();
        // The blob: written while the lock is held by someone else.
        let written = std::thread::scope(|s| s.spawn(|| write.write(b"step 100")).join())
            .unwrap()
            .unwrap();
        let blob = dir
            .path()
            .join("checkpoints/t1")
            .join(format!("{}.bin", written.row().checkpoint_id));
        assert!(blob.exists());
        // Not indexed yet: nothing names it.
        assert!(guard.latest_checkpoint(&t).0.is_none());
        let (_, ack) = guard.decide(&failure("t1")).unwrap();
        ack.wait().unwrap();

        let before = wal_len(&guard);
        let done = guard.commit_checkpoint(written).unwrap();
        // The commit returned without the WAL fsync: its rows are still queued.
        assert_eq!(wal_len(&guard), before);
        assert!(done.ack.seq().is_some());
        assert_eq!(
            guard.task(&t).unwrap().latest_checkpoint,
            Some(done.id.clone())
        );
        // A decision between the commit and the fsync.
        let (action, decided) = guard.decide(&failure("t1")).unwrap();
        assert_eq!(action.resume_checkpoint.as_deref(), Some(done.id.as_str()));
        assert!(decided.seq() > done.ack.seq());
        // The fsync: waited for while the lock is held by someone else.
        let ack = done.ack.clone();
        std::thread::scope(|s| s.spawn(|| ack.wait()).join())
            .unwrap()
            .unwrap();
        assert!(wal_len(&guard) > before);
        let id = done.finish().unwrap();
        decided.wait().unwrap();
        drop(guard);
        drop(engine);

        // Durable: a restart finds it.
        let e = open(dir.path());
        let (found, errors) = e.latest_checkpoint(&t);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(found.unwrap(), (id.clone(), b"step 100".to_vec()));
        assert_eq!(e.task(&t).unwrap().latest_checkpoint, Some(id));
    }

    /// Two checkpoints of one task begun before either is committed, with the same bytes at
    /// the same time, get distinct ids (their number is reserved when they begin), whatever
    /// order they are committed in; the newer is the one recovery names.
    #[test]
    fn checkpoints_begun_together_get_distinct_ids() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = open(dir.path());
        let t = TaskId::new("t1").unwrap();
        let at = Timestamp::from_secs_f64(1_700_000_100.0);
        let first = e.begin_checkpoint(&t, at);
        let second = e.begin_checkpoint(&t, at);
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| first.write(b"same bytes"));
            let b = s.spawn(|| second.write(b"same bytes"));
            (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
        });
        assert_ne!(a.row().checkpoint_id, b.row().checkpoint_id);
        let newer = b.row().checkpoint_id.clone();
        let committed_b = e.commit_checkpoint(b).unwrap();
        let committed_a = e.commit_checkpoint(a).unwrap();
        assert_eq!(committed_a.latest.as_deref(), Some(newer.as_str()));
        let older = committed_a.finish().unwrap();
        committed_b.finish().unwrap();
        assert_eq!(
            e.task(&t).unwrap().latest_checkpoint.as_deref(),
            Some(newer.as_str())
        );
        drop(e);
        let e = open(dir.path());
        assert_eq!(e.state().index[&t].len(), 2);
        assert!(e.state().index[&t].iter().any(|r| r.checkpoint_id == older));
        assert_eq!(e.latest_checkpoint(&t).0.unwrap().0, newer);
        assert_eq!(e.task(&t).unwrap().latest_checkpoint, Some(newer));
    }

    /// A crash after a blob was written and before its row was logged leaves a file nothing
    /// names: after a restart the previous checkpoint is still the latest.
    #[test]
    fn a_blob_never_committed_is_not_a_checkpoint_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = open(dir.path());
        let t = TaskId::new("t1").unwrap();
        let old = e
            .create_checkpoint(&t, b"epoch 1", Timestamp::from_secs_f64(10.0))
            .unwrap();
        let orphan = e
            .begin_checkpoint(&t, Timestamp::from_secs_f64(20.0))
            .write(b"epoch 2")
            .unwrap();
        let orphan = dir
            .path()
            .join("checkpoints/t1")
            .join(format!("{}.bin", orphan.row().checkpoint_id));
        drop(e);
        assert!(orphan.exists());
        let e = open(dir.path());
        let (found, errors) = e.latest_checkpoint(&t);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(found.unwrap(), (old.clone(), b"epoch 1".to_vec()));
        assert_eq!(e.task(&t).unwrap().latest_checkpoint, Some(old));
    }

    /// Retention logs the rows it retires with the new checkpoint and removes their blobs only
    /// after that (`remove_retired`); a snapshot taken before is then told apart from the
    /// current one, so a reader does not report the removed blob as corruption.
    #[test]
    fn retired_blobs_go_only_after_their_rows_are_logged() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = open(dir.path());
        e.state.retention = Retention {
            keep_last: 1,
            max_age_s: None,
        };
        let t = TaskId::new("t1").unwrap();
        let a = e
            .create_checkpoint(&t, b"epoch 1", Timestamp::from_secs_f64(10.0))
            .unwrap();
        let before = e.checkpoint_snapshot(&t);
        let written = e
            .begin_checkpoint(&t, Timestamp::from_secs_f64(20.0))
            .write(b"epoch 2")
            .unwrap();
        let done = e.commit_checkpoint(written).unwrap();
        assert_eq!(done.retired().len(), 1);
        assert_eq!(done.retired()[0].checkpoint_id, a);
        let blob_a = dir.path().join("checkpoints/t1").join(format!("{a}.bin"));
        assert!(blob_a.exists(), "removed before its deletion was durable");
        done.ack.clone().wait().unwrap();
        done.remove_retired().unwrap();
        assert!(!blob_a.exists());
        // The old snapshot meets the removed blob; the current one differs and reads fine.
        let (found, errors) = before.load();
        assert!(found.is_none() && errors.len() == 1, "{errors:?}");
        let now = e.checkpoint_snapshot(&t);
        assert!(!now.same_checkpoints(&before));
        assert_eq!(now.load().0.unwrap().1, b"epoch 2");
        let b = done.id.clone();
        drop(e);
        let e = open(dir.path());
        assert_eq!(e.latest_checkpoint(&t).0.unwrap().0, b);
        assert_eq!(e.checkpoint_snapshot(&t).rows().len(), 1);
    }

    /// Regression: a retried outcome was applied and logged again. After a restart the
    /// replayed task still knows its latest action has its outcome: a retry then is still a
    /// duplicate, neither applied nor logged; the task's next action counts again.
    #[test]
    fn a_duplicate_outcome_is_recognised_after_a_restart() {
        use crate::model::Outcome;
        use crate::store::{Entry, HistoryStore};
        let dir = tempfile::tempdir().unwrap();
        let t = TaskId::new("t1").unwrap();
        let o = Outcome {
            task_id: "t1".into(),
            success: true,
            strategy: None,
            time_to_recovery_s: None,
            cost: None,
            timestamp: None,
            attempt: None,
        };
        let kind = |e: &Engine<DurableState>| {
            let a = e.task(&t).unwrap().history.back().unwrap().clone();
            crate::ranking::ranked_kind(a.kind, &a.classifier_rule)
        };
        let total =
            |e: &Engine<DurableState>| e.ranker().counts(HardwareClass::Gpu, kind(e)).total();
        let mut e = open(dir.path());
        e.try_handle_failure(&failure("t1")).unwrap();
        e.record_outcome(&o).unwrap();
        let once = total(&e);
        drop(e);
        let mut e = open(dir.path());
        assert!(e.is_duplicate_outcome(&t));
        assert_eq!(total(&e), once);
        let wal = wal_len(&e);
        e.record_outcome(&o).unwrap();
        assert_eq!((total(&e), wal_len(&e)), (once, wal));
        e.try_handle_failure(&failure("t1")).unwrap();
        assert!(!e.is_duplicate_outcome(&t));
        e.record_outcome(&o).unwrap();
        drop(e);
        let e = open(dir.path());
        assert!(e.is_duplicate_outcome(&t));
        let outcomes = e
            .state()
            .store()
            .entries()
            .unwrap()
            .into_iter()
            .filter(|(_, x)| matches!(x, Entry::Outcome(_)))
            .count();
        assert_eq!(outcomes, 2);
    }
}
