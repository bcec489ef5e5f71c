//! The failure record: the one JSON schema shared by `recommend`, `ingest` (JSONL) and the
//! HTTP API, and its checked form.
//!
//! The wire form [`FailureReport`] is what callers send; [`FailureRecord`] is what the engine
//! works on, produced once by [`FailureReport::check`]. The minimal record is
//!
//! ```json
//! {"task_id":"t1","worker_id":"w1","hardware":{"class":"GPU"},
//!  "error":{"message":"CUDA out of memory. Tried to allocate 2.00 GiB"},
//!  "task":{"config":{"batch_size":32,"precision":"fp16"}}}
//! ```
//!
//! Every other field is optional. The records of `shared/data/bench/stream_10k.jsonl` (with
//! `platform`, `ts`, `attempt`, `seq`, `template`, `ml_feedback`...) are accepted too: those
//! fields are declared here, so unknown fields are still rejected.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::enums::{HardwareClass, Precision, RecoveryStrategy};
use super::ids::{TaskId, WorkerId};
use super::time::Timestamp;
use super::ModelError;

/// Browser of a WEBGPU/WEBNN worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserInfo {
    /// Browser name, e.g. "chrome", "firefox", "edge", "safari".
    pub name: String,
    /// Browser version, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What the failed worker is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareProfile {
    /// Hardware class (CPU, GPU, TPU, NPU, WEBGPU, WEBNN, ...).
    pub class: HardwareClass,
    /// Vendor, e.g. "NVIDIA".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Device model, e.g. "A100-SXM4-80GB".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Device memory in GiB (host memory for CPU workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_gib: Option<f64>,
    /// Compute units (SMs, cores, TPU cores...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_units: Option<u32>,
    /// Browser, for WEBGPU and WEBNN workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserInfo>,
}

impl HardwareProfile {
    /// A profile that only names the class.
    pub fn of_class(class: HardwareClass) -> Self {
        HardwareProfile {
            class,
            vendor: None,
            model: None,
            memory_gib: None,
            compute_units: None,
            browser: None,
        }
    }
}

/// The error as the job saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorInfo {
    /// The error message (required, may be empty).
    pub message: String,
    /// The caller's own error-type hint, e.g. "cuda_error", "network_error" (used only when the
    /// message itself is not recognised).
    #[serde(
        default,
        rename = "type",
        alias = "error_type",
        skip_serializing_if = "Option::is_none"
    )]
    pub type_hint: Option<String>,
    /// Stack trace, if any.
    #[serde(
        default,
        alias = "stack_trace",
        skip_serializing_if = "Option::is_none"
    )]
    pub stacktrace: Option<String>,
    /// Process exit code, if any (137 = SIGKILL, usually the OOM killer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// Hardware requirements of a task, as a coordinator understands them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareRequirements {
    /// Acceptable hardware, lowercase names ("cuda", "cpu", "tpu", "webgpu"...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hardware: Vec<String>,
    /// Required browser, for browser tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// Minimum device memory in GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_memory_gib: Option<f64>,
}

/// The mutable configuration of a task. Keys faultline does not know are kept as they are.
///
/// Deserialized by hand (see `TaskConfigVisitor`) rather than with `#[serde(flatten)]`,
/// which buffers every key and value of the object before reading any field: half of a
/// typical log's records carry a config, and the buffering was a tenth of their parse time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskConfig {
    /// Model name, e.g. "llama-3-8b".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Batch size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Several batch sizes (e.g. a sweep); each is halved by REDUCED_BATCH_SIZE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_sizes: Option<Vec<u32>>,
    /// Numeric precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// Smaller models to fall back to, in order; SIMPLIFIED_MODEL moves the first into
    /// `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_models: Option<Vec<String>>,
    /// Set to false by SKIP_CHECKPOINTING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpointing: Option<bool>,
    /// Any other keys, preserved.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl<'de> Deserialize<'de> for TaskConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TaskConfigVisitor)
    }
}

/// The known keys of [`TaskConfig`], in field order.
const TASK_CONFIG_KEYS: [&str; 6] = [
    "model",
    "batch_size",
    "batch_sizes",
    "precision",
    "fallback_models",
    "checkpointing",
];

/// A key of a task config object: one of [`TASK_CONFIG_KEYS`] (its index) or another key.
enum ConfigKey {
    Known(usize),
    Other(String),
}

impl<'de> Deserialize<'de> for ConfigKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = ConfigKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a config key")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ConfigKey, E> {
                Ok(match TASK_CONFIG_KEYS.iter().position(|k| *k == v) {
                    Some(i) => ConfigKey::Known(i),
                    None => ConfigKey::Other(v.to_string()),
                })
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<ConfigKey, E> {
                Ok(match TASK_CONFIG_KEYS.iter().position(|k| *k == v) {
                    Some(i) => ConfigKey::Known(i),
                    None => ConfigKey::Other(v),
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Reads a [`TaskConfig`] object key by key: known keys into their fields (a repeated one is
/// an error, as for any other struct of the schema), any other key into `extra`.
struct TaskConfigVisitor;

impl<'de> serde::de::Visitor<'de> for TaskConfigVisitor {
    type Value = TaskConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a task config object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<TaskConfig, A::Error> {
        let mut c = TaskConfig::default();
        let mut seen = [false; TASK_CONFIG_KEYS.len()];
        while let Some(key) = map.next_key::<ConfigKey>()? {
            let i = match key {
                ConfigKey::Other(k) => {
                    if c.extra.contains_key(&k) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate field `{k}`"
                        )));
                    }
                    let v = map.next_value()?;
                    c.extra.insert(k, v);
                    continue;
                }
                ConfigKey::Known(i) => i,
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(serde::de::Error::duplicate_field(TASK_CONFIG_KEYS[i]));
            }
            match i {
                0 => c.model = map.next_value()?,
                1 => c.batch_size = map.next_value()?,
                2 => c.batch_sizes = map.next_value()?,
                3 => c.precision = map.next_value()?,
                4 => c.fallback_models = map.next_value()?,
                5 => c.checkpointing = map.next_value()?,
                _ => unreachable!("an index into TASK_CONFIG_KEYS"),
            }
        }
        Ok(c)
    }
}

/// The task that failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Task id (if it repeats the record's `task_id`, it must agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Model name (alternative to `config.model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Hardware class the task targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<HardwareClass>,
    /// Current configuration.
    #[serde(default)]
    pub config: TaskConfig,
    /// Current hardware requirements.
    #[serde(default)]
    pub requirements: HardwareRequirements,
    /// The caller's retry counter: informational only, the engine keeps its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u32>,
}

/// Outcome feedback embedded in a logged record (the bench stream's `ml_feedback`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedOutcome {
    /// Strategy that was applied.
    pub strategy: RecoveryStrategy,
    /// Whether it recovered the task.
    pub success: bool,
}

/// A failure as callers send it (wire form). See the module docs for the schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureReport {
    /// Task id.
    pub task_id: String,
    /// Worker id.
    pub worker_id: String,
    /// The worker's hardware; `platform` is accepted instead for class-only reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<HardwareProfile>,
    /// Hardware class when `hardware` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<HardwareClass>,
    /// The error.
    pub error: ErrorInfo,
    /// When it failed: RFC 3339 (`2025-03-13T00:00:00.18Z`), a naive ISO date-time (read as
    /// UTC) or seconds since the Unix epoch. `ts` is accepted as an alias.
    #[serde(default, alias = "ts", skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// The task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSpec>,
    /// The caller's attempt number: informational only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Sequence number in a log (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Seconds since the start of a log (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_offset_s: Option<f64>,
    /// Whether the log saw this task for the first time (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_is_new: Option<bool>,
    /// A template label assigned by the producer (informational, never used to classify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Logged outcome of the recovery applied to this failure, if the producer had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_feedback: Option<EmbeddedOutcome>,
}

/// A checked failure: ids validated, hardware resolved, timestamp present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Task id.
    pub task_id: TaskId,
    /// Worker id.
    pub worker_id: WorkerId,
    /// The worker's hardware.
    pub hardware: HardwareProfile,
    /// The error.
    pub error: ErrorInfo,
    /// When it failed.
    pub timestamp: Timestamp,
    /// The task (defaults when the report had none).
    pub task: TaskSpec,
}

impl FailureReport {
    /// Validates the report into a [`FailureRecord`]. `now` is used only when the report has
    /// no timestamp: the caller (CLI, API) decides what "now" is, never the engine. The time
    /// must be within the years 0000–9999; how far it may be from `now` is not checked here,
    /// as a log read later holds old times: a caller deciding failures as they happen checks
    /// [`Timestamp::check_live`] as well (`serve` does; `recommend`, which also reads logs, checks only how far ahead).
    pub fn check(self, now: Timestamp) -> Result<FailureRecord, ModelError> {
        if let Some(t) = self.timestamp {
            if Timestamp::from_micros_checked(t.as_micros()).is_none() {
                return Err(ModelError::Invalid {
                    field: "timestamp",
                    detail: format!(
                        "{} µs since the epoch is outside the years 0000-9999",
                        t.as_micros()
                    ),
                });
            }
        }
        let task_id = TaskId::from_string(self.task_id).map_err(|e| e.in_field("task_id"))?;
        let worker_id =
            WorkerId::from_string(self.worker_id).map_err(|e| e.in_field("worker_id"))?;
        let mut task = self.task.unwrap_or_default();
        if let Some(inner) = &task.task_id {
            if inner != task_id.as_str() {
                return Err(ModelError::Conflict {
                    field: "task.task_id",
                    detail: format!("'{inner}' differs from task_id '{}'", task_id.as_str()),
                });
            }
        }
        if task.config.model.is_none() {
            task.config.model = task.model.take();
        }
        if task.config.batch_size == Some(0) {
            return Err(ModelError::Invalid {
                field: "task.config.batch_size",
                detail: "must be at least 1".into(),
            });
        }
        if let Some(list) = &task.config.batch_sizes {
            if list.contains(&0) {
                return Err(ModelError::Invalid {
                    field: "task.config.batch_sizes",
                    detail: "every batch size must be at least 1".into(),
                });
            }
        }
        // A value nested deeper than the log can read back (the write-ahead log and the
        // Parquet payload wrap the record in a few more levels, and serde_json stops at 128)
        // was acknowledged and then lost at the next replay (an audit: 123 levels under
        // task.config). Refused here, for every input.
        for (key, v) in &task.config.extra {
            let depth = json_depth(v);
            if depth > MAX_EXTRA_DEPTH {
                return Err(ModelError::Invalid {
                    field: "task.config",
                    detail: format!(
                        "'{key}' is nested {depth} levels deep; at most {MAX_EXTRA_DEPTH}"
                    ),
                });
            }
        }
        let hardware = match (self.hardware, self.platform.or(task.platform)) {
            (Some(h), _) => h,
            (None, Some(class)) => {
                let mut h = HardwareProfile::of_class(class);
                if let Some(b) = &task.requirements.browser {
                    h.browser = Some(BrowserInfo {
                        name: b.clone(),
                        version: None,
                    });
                }
                h
            }
            (None, None) => HardwareProfile::of_class(HardwareClass::Unknown),
        };
        non_negative("hardware.memory_gib", hardware.memory_gib)?;
        Ok(FailureRecord {
            task_id,
            worker_id,
            hardware,
            error: self.error,
            timestamp: self.timestamp.unwrap_or(now),
            task,
        })
    }
}

/// How deeply a value under `task.config` may nest (arrays and objects): far more than any
/// config needs, and far below what the log's reader takes (serde_json's 128 levels, less
/// the record's own).
pub const MAX_EXTRA_DEPTH: usize = 32;

/// The nesting depth of a JSON value: 0 for a scalar, 1 for a flat array or object.
fn json_depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(json_depth).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// An error naming `field` unless `value` is absent, or finite and not negative (zero is
/// fine).
fn non_negative(field: &'static str, value: Option<f64>) -> Result<(), ModelError> {
    match value {
        Some(v) if !(v.is_finite() && v >= 0.0) => Err(ModelError::Invalid {
            field,
            detail: format!("{v} is not a non-negative number"),
        }),
        _ => Ok(()),
    }
}

/// Where a decision came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionSource {
    /// The deciding mechanism: "rule", "ladder", "max_attempts", "retry_budget",
    /// "circuit_breaker", "pattern", "learned". (A `Cow`: the engine's own kinds are static
    /// strings, so deciding and keeping a decision allocate nothing for them.)
    pub kind: Cow<'static, str>,
    /// The rule or ladder name, when a rule decided (shared with the rule set: no copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Arc<str>>,
    /// The step of the rule's ladder (1-based), when a ladder decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
}

impl DecisionSource {
    /// Writes the source as its `Display` does (`learned 'gpu_oom' step 2`) into any writer:
    /// the engine builds its reasons with it, without the formatting machinery.
    pub fn write_into<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        w.write_str(&self.kind)?;
        if let Some(r) = &self.rule {
            w.write_str(" '")?;
            w.write_str(r)?;
            w.write_char('\'')?;
        }
        if let Some(s) = self.step {
            w.write_str(" step ")?;
            w.write_str(itoa::Buffer::new().format(s))?;
        }
        Ok(())
    }
}

impl fmt::Display for DecisionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_into(f)
    }
}

/// The decision for one failure: what to do, where, with what changes, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryAction {
    /// The task.
    pub task_id: TaskId,
    /// The strategy.
    pub strategy: RecoveryStrategy,
    /// The worker that failed.
    pub failed_worker: WorkerId,
    /// Where to run next: the same worker for retries and browser restarts, a chosen worker
    /// for DIFFERENT_WORKER when the registry knows one, otherwise `None` (coordinator picks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_worker: Option<WorkerId>,
    /// Workers not to use for this task (always includes the failed worker for
    /// DIFFERENT_WORKER and hardware changes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_workers: Vec<WorkerId>,
    /// Seconds to wait before retrying.
    pub delay_s: f64,
    /// The task's new configuration, when the strategy changes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_config: Option<TaskConfig>,
    /// The task's new hardware requirements, when the strategy changes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_requirements: Option<HardwareRequirements>,
    /// Checkpoint to resume from, when the task has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_checkpoint: Option<String>,
    /// Change to the task's scheduling priority.
    #[serde(default)]
    pub priority_adjustment: i32,
    /// The failed worker needs attention (reset, reboot, inspection): the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_attention: Option<String>,
    /// Human-readable reason.
    pub reason: String,
    /// Which mechanism and rule decided.
    pub source: DecisionSource,
    /// Probability with which the strategy was chosen (1 for deterministic rules).
    pub propensity: f64,
    /// The engine's attempt number for this task (1 = first failure).
    pub attempt: u32,
    /// The classified failure kind.
    pub kind: super::enums::FailureKind,
    /// The coarse failure type, judged with the task's history.
    pub failure_type: super::enums::FailureType,
    /// Classifier rule that decided the kind (the classifier's rules are static strings).
    pub classifier_rule: Cow<'static, str>,
    /// NVIDIA Xid code, when the message carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xid: Option<u32>,
    /// When the failure this action answers happened.
    pub timestamp: Timestamp,
}

/// Feedback on an applied action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Task id.
    pub task_id: String,
    /// Whether the recovery worked (the task made progress or finished).
    pub success: bool,
    /// Strategy the outcome is about; defaults to the task's last action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RecoveryStrategy>,
    /// Seconds from failure to recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_recovery_s: Option<f64>,
    /// Cost of the recovery (device-seconds or any unit the caller uses consistently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// When the outcome was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// The `attempt` of the action the outcome is about. Optional; given, it must be the
    /// task's latest action's: an outcome of an earlier action, arriving after its task failed
    /// again, is refused (the engine counted that recovery as failed when the task failed
    /// again), rather than credited to the latest action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

impl Outcome {
    /// An outcome with nothing but its verdict: the strategy is the task's last action's,
    /// no time to recovery, cost or time.
    pub fn verdict(task_id: impl Into<String>, success: bool) -> Outcome {
        Outcome {
            task_id: task_id.into(),
            success,
            strategy: None,
            time_to_recovery_s: None,
            cost: None,
            timestamp: None,
            attempt: None,
        }
    }

    /// Checks an outcome on its way in (the HTTP API, and any other path that takes outcomes
    /// from outside): `time_to_recovery_s` and `cost`, when given, must be finite and not
    /// negative — zero is fine (an instant or free recovery, as the simulator and stored
    /// histories may hold). The error names the field. Whether the task is known is the
    /// engine's check (`Engine::check_outcome`), not this one. `attempt`, when given, counts
    /// from 1 as actions' attempts do (an audit: 0 was answered as a stale outcome, "attempt
    /// 0's recovery was counted as failed", of an attempt that never was).
    pub fn check(&self) -> Result<(), ModelError> {
        non_negative("time_to_recovery_s", self.time_to_recovery_s)?;
        non_negative("cost", self.cost)?;
        if self.attempt == Some(0) {
            return Err(ModelError::Invalid {
                field: "attempt",
                detail: "0: attempts count from 1".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derived form the hand-written [`TaskConfig`] deserializer replaced.
    #[derive(Debug, Deserialize)]
    struct FlattenedConfig {
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        batch_size: Option<u32>,
        #[serde(default)]
        batch_sizes: Option<Vec<u32>>,
        #[serde(default)]
        precision: Option<Precision>,
        #[serde(default)]
        fallback_models: Option<Vec<String>>,
        #[serde(default)]
        checkpointing: Option<bool>,
        #[serde(flatten)]
        extra: BTreeMap<String, serde_json::Value>,
    }

    /// Regression (library audit): a report built in code with a time no log can hold
    /// (`Timestamp::from_micros(i64::MAX)`) was checked, decided and acknowledged, then lost
    /// at the next open.
    #[test]
    fn a_report_dated_outside_the_storable_years_is_refused() {
        let report = |t: Timestamp| FailureReport {
            timestamp: Some(t),
            ..serde_json::from_str(r#"{"task_id":"t","worker_id":"w","error":{"message":"x"}}"#)
                .unwrap()
        };
        let now = Timestamp::from_micros(0);
        for t in [i64::MAX, i64::MIN, Timestamp::LATEST.as_micros() + 1] {
            let err = report(Timestamp::from_micros(t)).check(now).unwrap_err();
            assert_eq!(err.field(), "timestamp", "{err}");
        }
        assert!(report(Timestamp::LATEST).check(now).is_ok());
    }

    #[test]
    fn task_config_reads_as_the_flattened_derive_did() {
        let cases = [
            r#"{}"#,
            r#"{"batch_size":32,"precision":"fp16"}"#,
            r#"{"model":"llama","batch_sizes":[8,16],"fallback_models":["a","b"],"checkpointing":false}"#,
            r#"{"model":null,"batch_size":null,"lr":0.001,"opt":{"name":"adam","betas":[0.9,0.99]}}"#,
            r#"{"b\u0061tch_size":4,"x\"y":"q"}"#,
            r#"{"batch_size":"32"}"#,
            r#"{"precision":"fp12"}"#,
            r#"{"checkpointing":1}"#,
            r#"[]"#,
            r#"7"#,
        ];
        for text in cases {
            let ours = serde_json::from_str::<TaskConfig>(text);
            let derived = serde_json::from_str::<FlattenedConfig>(text);
            match (ours, derived) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.model, b.model, "{text}");
                    assert_eq!(a.batch_size, b.batch_size, "{text}");
                    assert_eq!(a.batch_sizes, b.batch_sizes, "{text}");
                    assert_eq!(a.precision, b.precision, "{text}");
                    assert_eq!(a.fallback_models, b.fallback_models, "{text}");
                    assert_eq!(a.checkpointing, b.checkpointing, "{text}");
                    assert_eq!(a.extra, b.extra, "{text}");
                    // And it writes back as it was read.
                    let again: TaskConfig =
                        serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
                    assert_eq!(again, a, "{text}");
                }
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{text}: ours {a:?}, derived {b:?}"),
            }
        }
        // Errors name the field's problem.
        let e = serde_json::from_str::<TaskConfig>(r#"{"batch_size":"32"}"#).unwrap_err();
        assert!(e.to_string().contains("expected u32"), "{e}");
    }

    #[test]
    fn a_repeated_task_config_key_is_an_error() {
        for text in [r#"{"batch_size":1,"batch_size":2}"#, r#"{"lr":1,"lr":2}"#] {
            let e = serde_json::from_str::<TaskConfig>(text).unwrap_err();
            assert!(e.to_string().contains("duplicate field"), "{text}: {e}");
        }
    }

    const MINIMAL: &str = r#"{"task_id":"t1","worker_id":"w1","hardware":{"class":"GPU"},"error":{"message":"CUDA out of memory. Tried to allocate 2.00 GiB"},"task":{"config":{"batch_size":32,"precision":"fp16"}}}"#;

    #[test]
    fn minimal_record_is_accepted() {
        let r: FailureReport = serde_json::from_str(MINIMAL).unwrap();
        let rec = r.check(Timestamp::from_micros(0)).unwrap();
        assert_eq!(rec.hardware.class, HardwareClass::Gpu);
        assert_eq!(rec.task.config.batch_size, Some(32));
        assert_eq!(rec.task.config.precision, Some(Precision::Fp16));
    }

    #[test]
    fn unknown_field_is_rejected_with_its_name() {
        let bad = MINIMAL.replace("\"worker_id\"", "\"wrker\":1,\"worker_id\"");
        let e = serde_json::from_str::<FailureReport>(&bad).unwrap_err();
        assert!(e.to_string().contains("wrker"), "{e}");
    }

    #[test]
    fn bench_stream_line_is_accepted() {
        let line = r#"{"seq":0,"ts":"2025-03-13T00:00:00.180138","t_offset_s":0.180138,"task_id":"task-000000","task_is_new":true,"attempt":1,"worker_id":"worker-gpu-002","platform":"GPU","error":{"message":"ConnectionResetError","type":"network_error","stacktrace":""},"template":"conn_reset","ml_feedback":{"strategy":"DELAYED_RETRY","success":false},"task":{"task_id":"task-000000","model":"vit","platform":"GPU","config":{"batch_size":4,"precision":"fp32"},"requirements":{"hardware":["cuda"]},"retry_count":0}}"#;
        let r: FailureReport = serde_json::from_str(line).unwrap();
        let rec = r.check(Timestamp::from_micros(0)).unwrap();
        assert_eq!(rec.hardware.class, HardwareClass::Gpu);
        assert_eq!(rec.task.config.model.as_deref(), Some("vit"));
        assert_eq!(rec.timestamp.as_micros(), 1_741_824_000_180_138);
    }

    #[test]
    fn bad_ids_and_batch_are_rejected_naming_the_field() {
        let r: FailureReport =
            serde_json::from_str(&MINIMAL.replace("\"t1\"", "\"../etc\"")).unwrap();
        let e = r.check(Timestamp::from_micros(0)).unwrap_err();
        assert!(e.to_string().contains("task_id"), "{e}");
        let r: FailureReport =
            serde_json::from_str(&MINIMAL.replace("\"batch_size\":32", "\"batch_size\":0"))
                .unwrap();
        let e = r.check(Timestamp::from_micros(0)).unwrap_err();
        assert!(e.to_string().contains("task.config.batch_size"), "{e}");
    }

    /// Regression (an audit found it): an outcome with a negative, NaN or infinite
    /// `time_to_recovery_s` or `cost` was accepted and recorded, while a negative
    /// `hardware.memory_gib` on a failure was refused. Now [`Outcome::check`] refuses it,
    /// naming the field; zero and absent values pass.
    #[test]
    fn regression_an_outcome_with_a_negative_number_is_refused_naming_the_field() {
        let ok: Outcome = serde_json::from_str(
            r#"{"task_id":"t","success":true,"time_to_recovery_s":0,"cost":0}"#,
        )
        .unwrap();
        assert_eq!(ok.check(), Ok(()));
        assert_eq!(Outcome::verdict("t", false).check(), Ok(()));
        let bad: Outcome = serde_json::from_str(
            r#"{"task_id":"t","success":true,"time_to_recovery_s":-5,"cost":-1e308}"#,
        )
        .unwrap();
        let e = bad.check().unwrap_err();
        assert!(
            matches!(
                &e,
                ModelError::Invalid {
                    field: "time_to_recovery_s",
                    ..
                }
            ),
            "{e}"
        );
        for (ttr, cost, field) in [
            (Some(1.0), Some(-1e308), "cost"),
            (Some(f64::NAN), None, "time_to_recovery_s"),
            (None, Some(f64::INFINITY), "cost"),
            (Some(f64::NEG_INFINITY), Some(1.0), "time_to_recovery_s"),
        ] {
            let o = Outcome {
                time_to_recovery_s: ttr,
                cost,
                ..Outcome::verdict("t", true)
            };
            let e = o.check().unwrap_err();
            assert!(
                matches!(&e, ModelError::Invalid { field: f, .. } if *f == field),
                "{ttr:?} {cost:?}: {e}"
            );
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn action_round_trips() {
        let a = RecoveryAction {
            task_id: TaskId::new("t").unwrap(),
            strategy: RecoveryStrategy::ReducedBatchSize,
            failed_worker: WorkerId::new("w").unwrap(),
            target_worker: None,
            excluded_workers: vec![WorkerId::new("w").unwrap()],
            delay_s: 0.0,
            modified_config: Some(TaskConfig {
                batch_size: Some(16),
                ..Default::default()
            }),
            hardware_requirements: None,
            resume_checkpoint: Some("ck".into()),
            priority_adjustment: 1,
            worker_attention: None,
            reason: "r".into(),
            source: DecisionSource {
                kind: "rule".into(),
                rule: Some("oom".into()),
                step: Some(1),
            },
            propensity: 1.0,
            attempt: 1,
            kind: super::super::FailureKind::OomGpu,
            failure_type: super::super::FailureType::ResourceExhaustion,
            classifier_rule: "cuda_oom".into(),
            xid: None,
            timestamp: Timestamp::from_micros(5),
        };
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<RecoveryAction>(&j).unwrap(), a);
    }
    /// An audit: a config value nested 123 levels deep was acknowledged by the server and
    /// lost at the next replay of the write-ahead log (serde_json's recursion limit). Such a
    /// report is refused, naming the field; the deepest accepted one reads back even inside
    /// the log's wrapping.
    #[test]
    fn a_config_nested_past_the_limit_is_refused_and_the_limit_reads_back() {
        let report = |depth: usize| {
            let text = format!(
                r#"{{"task_id":"t","worker_id":"w","error":{{"message":"x"}},"task":{{"config":{{"deep":{}{}}}}}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            serde_json::from_str::<FailureReport>(&text).unwrap()
        };
        let e = report(MAX_EXTRA_DEPTH + 1)
            .check(Timestamp::from_micros(0))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("task.config") && e.contains("'deep' is nested 33 levels"),
            "{e}"
        );
        let rec = report(MAX_EXTRA_DEPTH)
            .check(Timestamp::from_micros(0))
            .unwrap();
        // Wrapped in 40 more levels (more than the log adds), it still reads back.
        let wrapped = format!(
            "{}{}{}",
            "[".repeat(40),
            serde_json::to_string(&rec).unwrap(),
            "]".repeat(40)
        );
        let mut v: serde_json::Value = serde_json::from_str(&wrapped).unwrap();
        for _ in 0..40 {
            v = v.as_array().unwrap()[0].clone();
        }
        assert_eq!(serde_json::from_value::<FailureRecord>(v).unwrap(), rec);
    }
}
