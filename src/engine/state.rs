//! Per-task engine state behind a trait: in memory here; the Parquet store implements the
//! same trait with a write-ahead log.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use serde::{Deserialize, Serialize};

use crate::model::{
    FailureKind, FailureRecord, HardwareClass, HardwareRequirements, Outcome, RecoveryAction,
    RecoveryStrategy, TaskConfig, TaskId, TaskState, Timestamp, WorkerId,
};
use crate::store::{Ack, CheckpointRow, Checkpoints, Entry, Retention, StoreError};

/// What the engine remembers about one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Failures seen for this task (the engine's own counter).
    pub attempts: u32,
    /// Lifecycle state.
    pub state: TaskState,
    /// Next ladder step (0-based) per rule or class ladder name.
    pub ladder_next: Vec<(Arc<str>, u32)>,
    /// Kind of the latest failure.
    pub last_kind: Option<FailureKind>,
    /// Consecutive failures with `last_kind`, including the latest.
    pub streak: u32,
    /// Kinds after which a recovery of this task succeeded.
    pub recovered_kinds: Vec<FailureKind>,
    /// Delay issued for the previous retry (decorrelated jitter needs it).
    pub last_delay_s: Option<f64>,
    /// Workers this task must avoid.
    pub excluded: Vec<WorkerId>,
    /// The hardware class each of `excluded` failed in, in the same order (shorter for a
    /// record from before it was kept: those exclusions have no class).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_classes: Vec<HardwareClass>,
    /// The task's configuration: as faultline last set it (it then wins over a report's
    /// config), else as the latest report that carried one gave it.
    pub config: Option<TaskConfig>,
    /// Whether faultline changed the task's configuration (a recovery action's
    /// `modified_config`): from then on `config` is its own copy, not a report's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub config_changed: bool,
    /// The task's requirements as faultline last set them.
    pub requirements: Option<HardwareRequirements>,
    /// Latest checkpoint id, offered for resumption.
    pub latest_checkpoint: Option<String>,
    /// Most recent actions, oldest first (bounded by `history_per_task`); each shared with
    /// the caller it was returned to (no copy per decision).
    pub history: VecDeque<Arc<RecoveryAction>>,
    /// First failure: the earliest date of the failures seen.
    pub first_failure: Option<Timestamp>,
    /// Latest failure: the latest date of the failures seen (a report that arrives late does
    /// not move it back).
    pub last_failure: Option<Timestamp>,
    /// The worker the task was last moved to, while it holds one of that worker's slots (in
    /// the engine's count of its placements, `WorkerRegistry::place`): until the task fails
    /// again, its recovery is reported failed, it reaches a final state, or it is forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed_on: Option<WorkerId>,
    /// Time of the latest lifecycle state a coordinator set (`set_task_state`): what a task
    /// that never failed is forgotten by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_state_at: Option<Timestamp>,
    /// Hardware class of the latest failure.
    #[serde(default)]
    pub last_class: Option<HardwareClass>,
    /// Message signature of the latest failure (the finest ranking context its outcome
    /// teaches; see `ranking::message_signature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_signature: Option<u64>,
    /// The fine ranking key (`ranking::fine_key`) the latest decision was ranked in, so its
    /// outcome teaches the same context even if the worker's standing changed meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fine_key: Option<u64>,
    /// Whether the latest failure came in a burst whose outcomes the ranking keeps apart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub last_burst: bool,
    /// The latest recovery, when it failed: the task's next decision tells the ranking how
    /// many further attempts that failure cost (its learned continuation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_recovery: Option<FailedRecovery>,
    /// Whether the latest action already has its outcome: a further outcome for it is a
    /// duplicate (a client's retry), applied and logged once only. A new action clears it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outcome_recorded: bool,
    /// Whether the latest action's outcome was a success: the task's next failure starts a
    /// new episode ([`TaskRecord::observe`]), whatever state a coordinator set meanwhile
    /// (`running` after a recovery is what it would say). A new action clears it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recovered: bool,
}

/// A recovery that failed, in the coarse ranking context it was decided in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FailedRecovery {
    /// Hardware class of the failure it answered.
    pub class: HardwareClass,
    /// The failure's ranked kind (`ranking::ranked_kind`).
    pub kind: FailureKind,
    /// The fine ranking key it was decided in (`ranking::fine_key`).
    pub template: Option<u64>,
    /// The failure's message signature (`ranking::message_signature`).
    pub signature: Option<u64>,

    /// The strategy that failed.
    pub strategy: RecoveryStrategy,
    /// The task's attempt it was decided at.
    pub attempt: u32,
}

impl Default for TaskRecord {
    fn default() -> Self {
        TaskRecord {
            attempts: 0,
            state: TaskState::Running,
            ladder_next: Vec::new(),
            last_kind: None,
            streak: 0,
            recovered_kinds: Vec::new(),
            last_delay_s: None,
            excluded: Vec::new(),
            excluded_classes: Vec::new(),
            config: None,
            config_changed: false,
            requirements: None,
            latest_checkpoint: None,
            history: VecDeque::new(),
            first_failure: None,
            last_failure: None,
            placed_on: None,
            last_state_at: None,
            last_class: None,
            last_signature: None,
            last_fine_key: None,
            last_burst: false,
            failed_recovery: None,
            outcome_recorded: false,
            recovered: false,
        }
    }
}

impl TaskRecord {
    /// The next step index of a ladder.
    pub fn next_step(&self, ladder: &str) -> u32 {
        self.ladder_next
            .iter()
            .find(|(n, _)| **n == *ladder)
            .map_or(0, |(_, i)| *i)
    }

    /// Counts a failure of this task with classified `kind`. Until faultline changed the
    /// task's configuration itself, the record's configuration, when it carries one (or this
    /// is the task's first failure), is the task's.
    ///
    /// A failure after a successful recovery starts a new episode: the attempt count, the
    /// ladders' positions, the workers to avoid and the previous delay start afresh (a long
    /// job recovered from many interruptions is not escalated for their total); the kinds it
    /// recovered from, its configuration, requirements and checkpoints are kept.
    pub fn observe(&mut self, rec: &FailureRecord, kind: FailureKind) {
        if self.recovered {
            self.recovered = false;
            self.attempts = 0;
            self.streak = 0;
            self.ladder_next.clear();
            self.excluded.clear();
            self.excluded_classes.clear();
            self.last_delay_s = None;
        }
        // Reports reach the engine out of time order (a late one from another worker, a
        // resend): the first and latest failure stay the earliest and latest dates seen (a
        // review: a late failure moved `last_failure` back, and a coordinator's state dated
        // before the task's real latest failure was then taken).
        self.first_failure = Some(
            self.first_failure
                .map_or(rec.timestamp, |f| f.min(rec.timestamp)),
        );
        // Saturating: a loaded state file may hold any count (library audit).
        self.attempts = self.attempts.saturating_add(1);
        self.streak = if self.last_kind == Some(kind) {
            self.streak.saturating_add(1)
        } else {
            1
        };
        self.last_kind = Some(kind);
        self.last_failure = Some(
            self.last_failure
                .map_or(rec.timestamp, |f| f.max(rec.timestamp)),
        );
        self.last_class = Some(rec.hardware.class);
        // Compared before cloning: a report usually repeats the config the task has.
        let reported = &rec.task.config;
        if self.config.is_none()
            || (!self.config_changed
                && *reported != TaskConfig::default()
                && self.config.as_ref() != Some(reported))
        {
            self.config = Some(reported.clone());
        }
    }

    /// How many workers of `class` other than `failed` this task already moved away from (an
    /// exclusion recorded without its class is not counted).
    pub fn left_in(&self, class: HardwareClass, failed: &WorkerId) -> usize {
        self.excluded
            .iter()
            .zip(&self.excluded_classes)
            .filter(|(w, c)| **c == class && *w != failed)
            .count()
    }

    /// Applies a decided action: ladder position, exclusions, config, requirements, delay,
    /// state, bounded history.
    pub fn apply_action(&mut self, action: &Arc<RecoveryAction>, history_cap: usize) {
        use crate::model::RecoveryStrategy as S;
        if let Some(rule) = &action.source.rule {
            match action.source.step {
                Some(step) => self.set_next_step(rule, step),
                // A ladder that had no applicable step left is exhausted for this task.
                None if action.strategy == S::Escalation => self.set_next_step(rule, u32::MAX),
                None => {}
            }
        }
        if matches!(
            action.strategy,
            S::DifferentWorker | S::DifferentHardwareClass | S::FallbackCpu
        ) && !self.excluded.contains(&action.failed_worker)
        {
            // The action answers the latest failure: its worker's class is the latest class.
            if let Some(c) = self.last_class {
                if self.excluded_classes.len() == self.excluded.len() {
                    self.excluded_classes.push(c);
                }
            }
            self.excluded.push(action.failed_worker.clone());
        }
        if let Some(c) = &action.modified_config {
            self.config = Some(c.clone());
            self.config_changed = true;
        }
        if let Some(r) = &action.hardware_requirements {
            self.requirements = Some(r.clone());
        }
        if action.strategy == S::DelayedRetry {
            self.last_delay_s = Some(action.delay_s);
        }
        // A failure dated before the latest state a coordinator set (by more than the clocks'
        // tolerance) reached us late: the coordinator's word is the newer one and stays (a
        // late failure dated before `succeeded` used to set the task recovering).
        let late = self
            .last_state_at
            .is_some_and(|s| action.timestamp.secs_since(s) < -super::CLOCK_TOLERANCE_S);
        if !late {
            self.state = if action.strategy == S::Escalation {
                TaskState::Escalated
            } else {
                TaskState::Recovering
            };
        }
        while self.history.len() >= history_cap.max(1) {
            self.history.pop_front();
        }
        self.history.push_back(Arc::clone(action));
        self.outcome_recorded = false;
        self.recovered = false;
    }

    /// Applies an outcome: success ends the streak and marks the kind as recoverable; the
    /// latest action now has its outcome.
    pub fn apply_outcome(&mut self, outcome: &Outcome) {
        self.outcome_recorded = true;
        if outcome.success {
            self.recovered = true;
            self.state = TaskState::Succeeded;
            if let Some(k) = self.last_kind {
                if !self.recovered_kinds.contains(&k) {
                    self.recovered_kinds.push(k);
                }
            }
            self.streak = 0;
        }
    }

    /// Sets the next step index of a ladder.
    pub fn set_next_step(&mut self, ladder: &Arc<str>, next: u32) {
        match self.ladder_next.iter_mut().find(|(n, _)| **n == **ladder) {
            Some((_, i)) => *i = next,
            None => self.ladder_next.push((Arc::clone(ladder), next)),
        }
    }
}

/// Where the engine keeps per-task state.
pub trait StateStore {
    /// A task's record, if known.
    fn task(&self, id: &TaskId) -> Option<&TaskRecord>;
    /// A task's record, created empty if unknown.
    fn task_mut(&mut self, id: &TaskId) -> &mut TaskRecord;
    /// Whether entries must be logged (the engine builds them only then).
    fn durable(&self) -> bool {
        false
    }
    /// Logs history entries; durable once the returned [`Ack`] resolves.
    fn log(&mut self, _entries: Vec<Entry>) -> Result<Ack, StoreError> {
        Ok(Ack::done())
    }
    /// An [`Ack`] that resolves once every entry logged so far is durable (the answer to a
    /// retried request waits for the original's fsync).
    fn logged(&self) -> Ack {
        Ack::done()
    }
    /// Begins a checkpoint of `task` at `at`: reserves its number, so that checkpoints begun
    /// before others are committed still get distinct ids (see [`CheckpointWrite`]).
    fn begin_checkpoint(&mut self, task: &TaskId, at: Timestamp) -> CheckpointWrite;
    /// Indexes a checkpoint whose blob [`CheckpointWrite::write`] stored, applies retention and
    /// logs the rows; durable once the returned [`CommittedCheckpoint::ack`] resolves. Nothing
    /// changes when logging fails.
    fn commit_checkpoint(
        &mut self,
        written: WrittenCheckpoint,
    ) -> Result<CommittedCheckpoint, StoreError>;
    /// A task's live checkpoints as of now, to read and verify later without any lock.
    fn checkpoint_snapshot(&self, task: &TaskId) -> CheckpointSnapshot;
    /// The newest checkpoint of a task whose content verifies, with errors met on newer,
    /// corrupted ones (reads under the caller's borrow; see [`StateStore::checkpoint_snapshot`]).
    fn load_checkpoint(
        &self,
        task: &TaskId,
    ) -> (Option<(CheckpointRow, Vec<u8>)>, Vec<StoreError>) {
        self.checkpoint_snapshot(task).load()
    }
    /// Sets the checkpoint retention applied from the next commit on.
    fn set_retention(&mut self, retention: Retention);
    /// Drops a task's state (finished tasks).
    fn forget(&mut self, id: &TaskId);
    /// Keeps only the tasks whose record `keep` accepts; returns how many were dropped.
    fn retain_tasks(&mut self, keep: &mut dyn FnMut(&TaskRecord) -> bool) -> usize;
    /// Number of tasks known.
    fn len(&self) -> usize;
    /// Whether no task is known.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// In-memory state; serializable so the CLI can keep it between calls (`--state FILE`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryState {
    /// Records by task.
    pub tasks: HashMap<TaskId, TaskRecord, FxBuildHasher>,
    /// Checkpoint blobs by task, oldest first (not saved with `--state`).
    #[serde(skip)]
    pub checkpoints: HashMap<TaskId, Vec<(CheckpointRow, Vec<u8>)>>,
    /// The last checkpoint number reserved per task (see [`StateStore::begin_checkpoint`]).
    #[serde(skip)]
    checkpoint_numbers: HashMap<TaskId, u64>,
    /// What to keep per task, applied at each commit as the durable state applies it (not
    /// saved with `--state`; the default keeps 5, none older than 7 days but the newest).
    #[serde(skip)]
    pub retention: Retention,
}

/// Reserves the next checkpoint number of `task`: above every number reserved before and
/// above the `used` checkpoints the task's index already holds.
pub(crate) fn reserve_number(
    reserved: &mut HashMap<TaskId, u64>,
    task: &TaskId,
    used: usize,
) -> u64 {
    let n = reserved.entry(task.clone()).or_insert(0);
    *n = (*n).max(used as u64) + 1;
    *n
}

impl StateStore for MemoryState {
    fn task(&self, id: &TaskId) -> Option<&TaskRecord> {
        self.tasks.get(id)
    }
    fn task_mut(&mut self, id: &TaskId) -> &mut TaskRecord {
        // One hash and probe (the key's clone only counts a reference).
        self.tasks.entry(id.clone()).or_default()
    }
    fn set_retention(&mut self, retention: Retention) {
        self.retention = retention;
    }
    fn forget(&mut self, id: &TaskId) {
        self.tasks.remove(id);
    }
    fn retain_tasks(&mut self, keep: &mut dyn FnMut(&TaskRecord) -> bool) -> usize {
        let before = self.tasks.len();
        self.tasks.retain(|_, t| keep(t));
        before - self.tasks.len()
    }
    fn len(&self) -> usize {
        self.tasks.len()
    }
    fn begin_checkpoint(&mut self, task: &TaskId, at: Timestamp) -> CheckpointWrite {
        let used = self.checkpoints.get(task).map_or(0, Vec::len);
        let n = reserve_number(&mut self.checkpoint_numbers, task, used);
        CheckpointWrite::new(task.clone(), at, n, None)
    }
    fn commit_checkpoint(
        &mut self,
        written: WrittenCheckpoint,
    ) -> Result<CommittedCheckpoint, StoreError> {
        let WrittenCheckpoint { row, data } = written;
        let id = row.checkpoint_id.clone();
        let now = row.timestamp;
        let list = self.checkpoints.entry(row.task_id.clone()).or_default();
        list.push((row, data.unwrap_or_default()));
        // Retention, as the durable state applies it: before, every blob was kept for as
        // long as the engine ran (library audit).
        let rows: Vec<CheckpointRow> = list.iter().map(|(r, _)| r.clone()).collect();
        let retired = Checkpoints::expired(&rows, self.retention, now);
        list.retain(|(r, _)| !retired.iter().any(|x| x.checkpoint_id == r.checkpoint_id));
        let latest = newest_in_memory(list).map(|(r, _)| r.checkpoint_id.clone());
        Ok(CommittedCheckpoint {
            id,
            ack: Ack::done(),
            latest,
            retired,
            blobs: None,
        })
    }
    fn checkpoint_snapshot(&self, task: &TaskId) -> CheckpointSnapshot {
        match self.checkpoints.get(task).and_then(|l| newest_in_memory(l)) {
            Some((row, data)) => CheckpointSnapshot {
                rows: vec![row.clone()],
                blobs: SnapshotBlobs::Memory(data.clone()),
            },
            None => CheckpointSnapshot {
                rows: Vec::new(),
                blobs: SnapshotBlobs::Memory(Vec::new()),
            },
        }
    }
}

/// The newest in-memory checkpoint (by time, then id, as on disk).
fn newest_in_memory(list: &[(CheckpointRow, Vec<u8>)]) -> Option<&(CheckpointRow, Vec<u8>)> {
    list.iter().max_by(|(a, _), (b, _)| {
        (a.timestamp, &a.checkpoint_id).cmp(&(b.timestamp, &b.checkpoint_id))
    })
}

/// A checkpoint begun under the engine's lock ([`super::Engine::begin_checkpoint`]): its
/// task, its time and a number reserved for it, which make its id. [`CheckpointWrite::write`]
/// then stores the blob without the engine, so a server writes it outside its lock.
#[derive(Debug)]
#[must_use = "a checkpoint is stored only once written and committed"]
pub struct CheckpointWrite {
    task: TaskId,
    at: Timestamp,
    n: u64,
    /// The blob store (durable state), or `None`: the bytes are kept in memory at commit.
    blobs: Option<Checkpoints>,
}

impl CheckpointWrite {
    /// A checkpoint of `task` at `at` numbered `n` (unique within the task), its blob going to
    /// `blobs` (`None`: kept in memory by the commit).
    pub fn new(task: TaskId, at: Timestamp, n: u64, blobs: Option<Checkpoints>) -> Self {
        CheckpointWrite { task, at, n, blobs }
    }

    /// The task.
    pub fn task(&self) -> &TaskId {
        &self.task
    }

    /// Stores the blob: with a blob store, the file is written, fsynced and renamed into place,
    /// and its directory fsynced (the slow part, which needs no lock on the engine); otherwise
    /// the bytes are copied. Nothing references the blob until it is committed
    /// ([`super::Engine::commit_checkpoint`]): a crash before that leaves at most a blob file
    /// that nothing names.
    pub fn write(self, data: &[u8]) -> Result<WrittenCheckpoint, StoreError> {
        match &self.blobs {
            Some(blobs) => Ok(WrittenCheckpoint {
                row: blobs.create(&self.task, data, self.at, self.n)?,
                data: None,
            }),
            None => {
                let (checkpoint_id, checksum) = crate::store::checkpoint_id(data, self.at, self.n);
                Ok(WrittenCheckpoint {
                    row: CheckpointRow {
                        task_id: self.task,
                        checkpoint_id,
                        timestamp: self.at,
                        size_bytes: data.len() as u64,
                        checksum,
                        deleted: false,
                    },
                    data: Some(data.to_vec()),
                })
            }
        }
    }
}

/// A checkpoint whose blob is stored (durably, for a durable state) but neither indexed nor
/// logged yet: hand it to [`super::Engine::commit_checkpoint`].
#[derive(Debug)]
#[must_use = "a written checkpoint is used only once committed"]
pub struct WrittenCheckpoint {
    pub(crate) row: CheckpointRow,
    /// The bytes, for in-memory state (a durable state has them in the blob file).
    pub(crate) data: Option<Vec<u8>>,
}

impl WrittenCheckpoint {
    /// Its index row.
    pub fn row(&self) -> &CheckpointRow {
        &self.row
    }
}

/// A committed checkpoint: indexed, its row (and the rows of checkpoints retention retired)
/// logged. Durable once [`CommittedCheckpoint::ack`] resolves — wait for it outside any lock
/// on the engine — after which [`CommittedCheckpoint::remove_retired`] removes the retired
/// blobs ([`CommittedCheckpoint::finish`] does both).
#[derive(Debug)]
#[must_use = "a checkpoint is durable only once its ack resolves"]
pub struct CommittedCheckpoint {
    /// The checkpoint's id.
    pub id: String,
    /// Resolves once the logged rows are durable.
    pub ack: Ack,
    /// The task's newest live checkpoint now (the one recovery actions name; not `id` when a
    /// newer one was committed first).
    pub latest: Option<String>,
    /// Rows retention retired (marked `deleted`), whose blobs are still there.
    pub(crate) retired: Vec<CheckpointRow>,
    /// Where those blobs are.
    pub(crate) blobs: Option<Checkpoints>,
}

impl CommittedCheckpoint {
    /// Rows retention retired (marked `deleted`).
    pub fn retired(&self) -> &[CheckpointRow] {
        &self.retired
    }

    /// Removes the retired checkpoints' blobs. Call it once [`CommittedCheckpoint::ack`]
    /// resolved: their deletion is then durable, so no crash leaves a live row naming a
    /// removed blob. Failing leaves only files nothing names.
    pub fn remove_retired(&self) -> Result<(), StoreError> {
        match &self.blobs {
            Some(blobs) => blobs.remove(&self.retired),
            None => Ok(()),
        }
    }

    /// Waits for the ack, then removes the retired blobs; returns the id (for callers that
    /// hold no lock around the engine, e.g. the CLI).
    pub fn finish(self) -> Result<String, StoreError> {
        self.ack.clone().wait()?;
        self.remove_retired()?;
        Ok(self.id)
    }
}

/// A task's live checkpoints as of one moment, taken under the engine's lock
/// ([`super::Engine::checkpoint_snapshot`]); [`CheckpointSnapshot::load`] reads and verifies
/// the blobs without it.
#[derive(Debug, Clone)]
pub struct CheckpointSnapshot {
    /// Live rows, oldest first.
    rows: Vec<CheckpointRow>,
    blobs: SnapshotBlobs,
}

/// Where a snapshot's blobs are.
#[derive(Debug, Clone)]
enum SnapshotBlobs {
    /// In files, read on load.
    Files(Checkpoints),
    /// In memory: the bytes of the snapshot's only row.
    Memory(Vec<u8>),
}

impl CheckpointSnapshot {
    /// A snapshot of blob files: the live ones among `rows`.
    pub fn files(blobs: Checkpoints, rows: &[CheckpointRow]) -> Self {
        CheckpointSnapshot {
            rows: rows.iter().filter(|r| !r.deleted).cloned().collect(),
            blobs: SnapshotBlobs::Files(blobs),
        }
    }

    /// The live checkpoints it names.
    pub fn rows(&self) -> &[CheckpointRow] {
        &self.rows
    }

    /// The newest checkpoint whose content verifies (blobs are read and hashed here), with
    /// the errors met on newer ones. A blob retention removed after the snapshot was taken
    /// also counts as an error: compare with a fresh snapshot
    /// ([`CheckpointSnapshot::same_checkpoints`]) before reporting errors as corruption.
    pub fn load(&self) -> (Option<(CheckpointRow, Vec<u8>)>, Vec<StoreError>) {
        match &self.blobs {
            SnapshotBlobs::Files(blobs) => blobs.latest_good(&self.rows),
            SnapshotBlobs::Memory(data) => (
                self.rows.first().map(|r| (r.clone(), data.clone())),
                Vec::new(),
            ),
        }
    }

    /// Whether both snapshots name the same live checkpoints.
    pub fn same_checkpoints(&self, other: &CheckpointSnapshot) -> bool {
        self.rows.len() == other.rows.len()
            && self
                .rows
                .iter()
                .zip(&other.rows)
                .all(|(a, b)| a.checkpoint_id == b.checkpoint_id)
    }
}
