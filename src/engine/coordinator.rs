//! The coordinator side: what an action asks a scheduler to do, an in-memory reference
//! coordinator, and [`apply`], which carries out any action on any coordinator.

use serde::{Deserialize, Serialize};

use crate::model::{
    HardwareRequirements, RecoveryAction, RecoveryStrategy, TaskConfig, TaskId, WorkerId,
};

/// A coordinator refused or failed an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoordinatorError {
    /// The coordinator does not know the task.
    #[error("unknown task {0}")]
    UnknownTask(String),
    /// The coordinator does not know the worker.
    #[error("unknown worker {0}")]
    UnknownWorker(String),
    /// Anything else, described by the coordinator.
    #[error("coordinator failed: {0}")]
    Failed(String),
}

/// The operations recovery actions need from a scheduler.
pub trait Coordinator {
    /// Re-run the task, on `worker` if given.
    fn retry(&mut self, task: &TaskId, worker: Option<&WorkerId>) -> Result<(), CoordinatorError>;
    /// Re-run the task after `delay_s` seconds, on `worker` if given.
    fn retry_after(
        &mut self,
        task: &TaskId,
        worker: Option<&WorkerId>,
        delay_s: f64,
    ) -> Result<(), CoordinatorError>;
    /// Re-run the task on a worker not in `excluded`, preferably `preferred`.
    fn retry_excluding(
        &mut self,
        task: &TaskId,
        excluded: &[WorkerId],
        preferred: Option<&WorkerId>,
    ) -> Result<(), CoordinatorError>;
    /// Replace the task's configuration.
    fn update_config(&mut self, task: &TaskId, config: &TaskConfig)
        -> Result<(), CoordinatorError>;
    /// Replace the task's hardware requirements.
    fn update_requirements(
        &mut self,
        task: &TaskId,
        requirements: &HardwareRequirements,
    ) -> Result<(), CoordinatorError>;
    /// Restart the browser of a WEBGPU/WEBNN worker.
    fn restart_browser(&mut self, worker: &WorkerId) -> Result<(), CoordinatorError>;
    /// Reset a worker's state (device reset, caches cleared).
    fn reset_worker(&mut self, worker: &WorkerId) -> Result<(), CoordinatorError>;
    /// Resume the task from a checkpoint on its next run.
    fn resume_from(&mut self, task: &TaskId, checkpoint: &str) -> Result<(), CoordinatorError>;
    /// Flag a worker for a human (hardware fault).
    fn flag_worker(&mut self, worker: &WorkerId, reason: &str) -> Result<(), CoordinatorError>;
    /// Hand the task to a human.
    fn escalate(&mut self, task: &TaskId, reason: &str) -> Result<(), CoordinatorError>;
}

/// What [`apply`] carried out with a part left undone: the recovery went ahead.
#[derive(Debug, Default)]
#[must_use = "a refused worker flag is reported here: a faulty worker may not be flagged"]
pub struct Applied {
    /// The worker flag's error, when flagging the failed worker for a human failed (a
    /// coordinator that no longer knows a worker that just fell off the bus): the recovery
    /// was carried out all the same.
    pub flag_error: Option<CoordinatorError>,
}

/// Carries out `action` on `coordinator`: the worker flag (best effort: its error is
/// returned in [`Applied`], it does not strand the task), mutations (config, requirements,
/// checkpoint), then the placement. Every strategy is handled.
pub fn apply<C: Coordinator + ?Sized>(
    action: &RecoveryAction,
    coordinator: &mut C,
) -> Result<Applied, CoordinatorError> {
    let flag_error = action
        .worker_attention
        .as_ref()
        .and_then(|reason| coordinator.flag_worker(&action.failed_worker, reason).err());
    place(action, coordinator)?;
    Ok(Applied { flag_error })
}

/// [`apply`] without the worker flag.
fn place<C: Coordinator + ?Sized>(
    action: &RecoveryAction,
    coordinator: &mut C,
) -> Result<(), CoordinatorError> {
    use RecoveryStrategy as S;
    let task = &action.task_id;
    if action.strategy == S::Escalation {
        return coordinator.escalate(task, &action.reason);
    }
    if let Some(config) = &action.modified_config {
        coordinator.update_config(task, config)?;
    }
    if let Some(req) = &action.hardware_requirements {
        coordinator.update_requirements(task, req)?;
    }
    if let Some(cp) = &action.resume_checkpoint {
        coordinator.resume_from(task, cp)?;
    }
    let target = action.target_worker.as_ref();
    match action.strategy {
        S::ImmediateRetry => coordinator.retry(task, target),
        S::DelayedRetry => {
            if action.delay_s > 0.0 {
                coordinator.retry_after(task, target, action.delay_s)
            } else {
                coordinator.retry(task, target)
            }
        }
        S::DifferentWorker | S::DifferentHardwareClass | S::FallbackCpu => {
            coordinator.retry_excluding(task, &action.excluded_workers, target)
        }
        S::ReducedPrecision | S::ReducedBatchSize | S::SimplifiedModel | S::SkipCheckpointing => {
            if action.excluded_workers.is_empty() {
                coordinator.retry(task, target)
            } else {
                coordinator.retry_excluding(task, &action.excluded_workers, target)
            }
        }
        S::BrowserRestart => {
            coordinator.restart_browser(&action.failed_worker)?;
            coordinator.retry(task, Some(&action.failed_worker))
        }
        S::ResetWorkerState => {
            coordinator.reset_worker(&action.failed_worker)?;
            coordinator.retry(task, Some(&action.failed_worker))
        }
        S::Escalation => unreachable!("handled above"),
    }
}

/// One call received by the [`MemoryCoordinator`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CoordinatorEvent {
    /// `retry`.
    Retry {
        /// Task.
        task: TaskId,
        /// Worker.
        worker: Option<WorkerId>,
        /// Delay, seconds (0 for immediate).
        delay_s: f64,
    },
    /// `retry_excluding`.
    RetryExcluding {
        /// Task.
        task: TaskId,
        /// Excluded workers.
        excluded: Vec<WorkerId>,
        /// Preferred worker.
        preferred: Option<WorkerId>,
    },
    /// `update_config`.
    UpdateConfig {
        /// Task.
        task: TaskId,
        /// New config.
        config: TaskConfig,
    },
    /// `update_requirements`.
    UpdateRequirements {
        /// Task.
        task: TaskId,
        /// New requirements.
        requirements: HardwareRequirements,
    },
    /// `restart_browser`.
    RestartBrowser {
        /// Worker.
        worker: WorkerId,
    },
    /// `reset_worker`.
    ResetWorker {
        /// Worker.
        worker: WorkerId,
    },
    /// `resume_from`.
    ResumeFrom {
        /// Task.
        task: TaskId,
        /// Checkpoint id.
        checkpoint: String,
    },
    /// `flag_worker`.
    FlagWorker {
        /// Worker.
        worker: WorkerId,
        /// Why.
        reason: String,
    },
    /// `escalate`.
    Escalate {
        /// Task.
        task: TaskId,
        /// Why.
        reason: String,
    },
}

/// A reference coordinator that records every call and keeps task configs.
#[derive(Debug, Clone, Default)]
pub struct MemoryCoordinator {
    /// Every call, in order.
    pub events: Vec<CoordinatorEvent>,
    /// Current configuration per task.
    pub configs: std::collections::HashMap<TaskId, TaskConfig>,
    /// Current requirements per task.
    pub requirements: std::collections::HashMap<TaskId, HardwareRequirements>,
}

impl MemoryCoordinator {
    /// Empty coordinator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tasks retried (any retry form), in order.
    pub fn retried(&self) -> Vec<&TaskId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CoordinatorEvent::Retry { task, .. }
                | CoordinatorEvent::RetryExcluding { task, .. } => Some(task),
                _ => None,
            })
            .collect()
    }

    /// Workers whose browser was restarted.
    pub fn restarted_browsers(&self) -> Vec<&WorkerId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CoordinatorEvent::RestartBrowser { worker } => Some(worker),
                _ => None,
            })
            .collect()
    }

    /// Tasks escalated.
    pub fn escalated(&self) -> Vec<&TaskId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CoordinatorEvent::Escalate { task, .. } => Some(task),
                _ => None,
            })
            .collect()
    }
}

impl Coordinator for MemoryCoordinator {
    fn retry(&mut self, task: &TaskId, worker: Option<&WorkerId>) -> Result<(), CoordinatorError> {
        self.retry_after(task, worker, 0.0)
    }
    fn retry_after(
        &mut self,
        task: &TaskId,
        worker: Option<&WorkerId>,
        delay_s: f64,
    ) -> Result<(), CoordinatorError> {
        self.events.push(CoordinatorEvent::Retry {
            task: task.clone(),
            worker: worker.cloned(),
            delay_s,
        });
        Ok(())
    }
    fn retry_excluding(
        &mut self,
        task: &TaskId,
        excluded: &[WorkerId],
        preferred: Option<&WorkerId>,
    ) -> Result<(), CoordinatorError> {
        self.events.push(CoordinatorEvent::RetryExcluding {
            task: task.clone(),
            excluded: excluded.to_vec(),
            preferred: preferred.cloned(),
        });
        Ok(())
    }
    fn update_config(
        &mut self,
        task: &TaskId,
        config: &TaskConfig,
    ) -> Result<(), CoordinatorError> {
        self.configs.insert(task.clone(), config.clone());
        self.events.push(CoordinatorEvent::UpdateConfig {
            task: task.clone(),
            config: config.clone(),
        });
        Ok(())
    }
    fn update_requirements(
        &mut self,
        task: &TaskId,
        requirements: &HardwareRequirements,
    ) -> Result<(), CoordinatorError> {
        self.requirements.insert(task.clone(), requirements.clone());
        self.events.push(CoordinatorEvent::UpdateRequirements {
            task: task.clone(),
            requirements: requirements.clone(),
        });
        Ok(())
    }
    fn restart_browser(&mut self, worker: &WorkerId) -> Result<(), CoordinatorError> {
        self.events.push(CoordinatorEvent::RestartBrowser {
            worker: worker.clone(),
        });
        Ok(())
    }
    fn reset_worker(&mut self, worker: &WorkerId) -> Result<(), CoordinatorError> {
        self.events.push(CoordinatorEvent::ResetWorker {
            worker: worker.clone(),
        });
        Ok(())
    }
    fn resume_from(&mut self, task: &TaskId, checkpoint: &str) -> Result<(), CoordinatorError> {
        self.events.push(CoordinatorEvent::ResumeFrom {
            task: task.clone(),
            checkpoint: checkpoint.to_string(),
        });
        Ok(())
    }
    fn flag_worker(&mut self, worker: &WorkerId, reason: &str) -> Result<(), CoordinatorError> {
        self.events.push(CoordinatorEvent::FlagWorker {
            worker: worker.clone(),
            reason: reason.to_string(),
        });
        Ok(())
    }
    fn escalate(&mut self, task: &TaskId, reason: &str) -> Result<(), CoordinatorError> {
        self.events.push(CoordinatorEvent::Escalate {
            task: task.clone(),
            reason: reason.to_string(),
        });
        Ok(())
    }
}
