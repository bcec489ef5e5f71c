//! Scenario files: the TOML a simulation runs on, as written ([`ScenarioFile`], every table
//! `deny_unknown_fields`) and as checked once ([`Scenario`]): probabilities in `[0, 1]`,
//! counts and rates in range, every class with workers has a failure mix, every template
//! parses. Errors name the file, the line (from the TOML parser, or found from the field
//! path), and the field path, e.g. `workers.gpu.count`.
//!
//! The format, with every field, is documented in `data/scenarios/README.md`. In short:
//!
//! ```toml
//! name = "llm-gpu-training"
//! [simulation]              # start, max_attempts, persistence, refail_mean_s
//! [tasks]                   # models (share, fallback), batch_sizes, precisions, checkpointing
//! [workers.gpu]             # count, failure_rate_per_hour, vendor, model + memory_gib or
//!                           # variants, compute_units, browsers, tasks (per-class override)
//! [[failures.gpu]]          # kind, weight, name, messages, truth (per-cause overrides)
//! [bad_workers.gpu]         # share, rate_multiplier, kinds, same_worker_factor,
//!                           # different_worker_success
//! [[bursts]]                # name, class, kind, start_h, duration_h, rate_per_hour,
//!                           # success_factor
//! [[drifts]]                # class, kind, strategy, at_failure, success: from failure
//!                           # number `at_failure` on, the strategy's true success for every
//!                           # cause of that class and kind is `success` (drift)
//! [truth.gpu.oom_gpu]       # STRATEGY = probability; `any` for a class or a kind
//! [cost.any]                # STRATEGY = { seconds, device_seconds }
//! [fixed.any]               # kind (or any) = STRATEGY or [STRATEGY, ...]: the fixed policy
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Deserializer};

use super::messages::{self, Template};
use super::policy::FixedTable;
use super::truth::{self, BadEffect, Cost, Probs, N};
use super::SimError;
use crate::model::{FailureKind, HardwareClass, Precision, RecoveryStrategy, Timestamp};

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

/// The simulated clock's horizon: 100 years (of 365.25 days), in hours. Bursts end within
/// it, a positive failure rate gives at least one failure in it, no single duration
/// (`refail_mean_s`, a cost's `seconds`) is longer, and new tasks stop arriving at it.
pub const HORIZON_H: f64 = 100.0 * 365.25 * 24.0;

/// A task's failures at most before it is escalated (`simulation.max_attempts`).
pub const MAX_ATTEMPTS: u32 = 1000;

/// Workers of one class at most (`workers.<class>.count`).
pub const MAX_WORKERS_PER_CLASS: u32 = 1_000_000;

/// The fleet's total failure rate at most, per hour (workers with their bad-worker
/// multipliers, plus every burst): one failure per microsecond, the resolution of the
/// simulated clock. It keeps every sum of rates finite.
pub const MAX_TOTAL_RATE_PER_H: f64 = 3.6e9;

/// The earliest `simulation.start`: 0001-01-01T00:00:00Z, in microseconds since the epoch.
const MIN_START_US: i64 = -62_135_596_800_000_000;

/// `simulation.start` plus the horizon stays before 10000-01-01T00:00:00Z (RFC 3339 years).
const END_BEFORE_US: i64 = 253_402_300_800_000_000;

/// The horizon in microseconds.
fn horizon_us() -> i64 {
    (HORIZON_H * 3600.0 * 1e6) as i64
}

/// A number for an error message: in scientific notation when very large or very small (a
/// rate of 1e308 is not printed as 309 digits).
fn num(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-6..1e9).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Bad workers of a class of `count` workers with `share` bad: `share × count`, rounded.
pub(crate) fn bad_count(share: f64, count: usize) -> usize {
    ((share * count as f64).round() as usize).min(count)
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

/// A hardware class, or `any` (every class), as a table key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClassKey {
    /// Every class.
    Any,
    /// One class.
    Class(HardwareClass),
}

/// A failure kind, or `any` (every kind), as a table key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KindKey {
    /// Every kind.
    Any,
    /// One kind.
    Kind(FailureKind),
}

/// What a table key names, for the error when two keys of a table read as one.
trait KeyName {
    /// "class", "kind", "strategy", "precision".
    const WHAT: &'static str;
    /// How two spellings can name one key.
    const HINT: &'static str;
}

impl KeyName for HardwareClass {
    const WHAT: &'static str = "class";
    const HINT: &'static str =
        "class names are read in any case and through their aliases: `gpu`, `GPU` and `cuda` are one class";
}

impl KeyName for ClassKey {
    const WHAT: &'static str = "class";
    const HINT: &'static str = <HardwareClass as KeyName>::HINT;
}

impl KeyName for KindKey {
    const WHAT: &'static str = "kind";
    const HINT: &'static str =
        "kind names are read in any case: `oom_gpu` and `OOM_GPU` are one kind";
}

impl KeyName for RecoveryStrategy {
    const WHAT: &'static str = "strategy";
    const HINT: &'static str =
        "strategy names are read in any case: `DIFFERENT_WORKER` and `different_worker` are one strategy";
}

impl KeyName for Precision {
    const WHAT: &'static str = "precision";
    const HINT: &'static str =
        "precisions are read in any case: `fp16` and `FP16` are one precision";
}

/// A table whose keys must differ once read: `gpu` and `GPU` name one class,
/// `DIFFERENT_WORKER` and `different_worker` one strategy, and an entry given under both
/// would otherwise silently replace the other. Read through [`unique_keys`] and friends.
struct Unique<K, V>(BTreeMap<K, V>);

impl<'de, K, V> Deserialize<'de> for Unique<K, V>
where
    K: Deserialize<'de> + Ord + fmt::Display + KeyName,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<K, V>(std::marker::PhantomData<(K, V)>);
        impl<'de, K, V> serde::de::Visitor<'de> for Visit<K, V>
        where
            K: Deserialize<'de> + Ord + fmt::Display + KeyName,
            V: Deserialize<'de>,
        {
            type Value = Unique<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a table keyed by {}", K::WHAT)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<K, V>()? {
                    let name = k.to_string();
                    if out.insert(k, v).is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "{} `{name}` is given twice ({})",
                            K::WHAT,
                            K::HINT
                        )));
                    }
                }
                Ok(Unique(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// A table keyed by class (or strategy, precision) whose keys must differ once read.
fn unique_keys<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + fmt::Display + KeyName,
    V: Deserialize<'de>,
{
    Ok(Unique::<K, V>::deserialize(d)?.0)
}

/// [`unique_keys`] when given (`None` when absent).
fn unique_keys_opt<'de, D, K, V>(d: D) -> Result<Option<BTreeMap<K, V>>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + fmt::Display + KeyName,
    V: Deserialize<'de>,
{
    Ok(Some(Unique::<K, V>::deserialize(d)?.0))
}

/// Two levels of unique keys: class, then kind or strategy.
fn unique_keys2<'de, D, K1, K2, V>(d: D) -> Result<BTreeMap<K1, BTreeMap<K2, V>>, D::Error>
where
    D: Deserializer<'de>,
    K1: Deserialize<'de> + Ord + fmt::Display + KeyName,
    K2: Deserialize<'de> + Ord + fmt::Display + KeyName,
    V: Deserialize<'de>,
{
    let m = Unique::<K1, Unique<K2, V>>::deserialize(d)?.0;
    Ok(m.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// Three levels of unique keys: class, kind, strategy (`truth`).
#[allow(clippy::type_complexity)]
fn unique_keys3<'de, D, K1, K2, K3, V>(
    d: D,
) -> Result<BTreeMap<K1, BTreeMap<K2, BTreeMap<K3, V>>>, D::Error>
where
    D: Deserializer<'de>,
    K1: Deserialize<'de> + Ord + fmt::Display + KeyName,
    K2: Deserialize<'de> + Ord + fmt::Display + KeyName,
    K3: Deserialize<'de> + Ord + fmt::Display + KeyName,
    V: Deserialize<'de>,
{
    let m = Unique::<K1, Unique<K2, Unique<K3, V>>>::deserialize(d)?.0;
    Ok(m.into_iter()
        .map(|(k, v)| (k, v.0.into_iter().map(|(k2, v2)| (k2, v2.0)).collect()))
        .collect())
}

impl<'de> Deserialize<'de> for ClassKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        if s.eq_ignore_ascii_case("any") {
            return Ok(ClassKey::Any);
        }
        s.parse()
            .map(ClassKey::Class)
            .map_err(|e| serde::de::Error::custom(format!("{e}, or any")))
    }
}

impl<'de> Deserialize<'de> for KindKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        if s.eq_ignore_ascii_case("any") {
            return Ok(KindKey::Any);
        }
        s.parse()
            .map(KindKey::Kind)
            .map_err(|e| serde::de::Error::custom(format!("{e}, or any")))
    }
}

impl fmt::Display for ClassKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClassKey::Any => f.write_str("any"),
            ClassKey::Class(c) => f.write_str(&c.as_str().to_ascii_lowercase()),
        }
    }
}

impl fmt::Display for KindKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KindKey::Any => f.write_str("any"),
            KindKey::Kind(k) => f.write_str(k.as_str()),
        }
    }
}

/// A strategy or a list of strategies (the fixed policy's table cells).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyList(pub Vec<RecoveryStrategy>);

impl<'de> Deserialize<'de> for StrategyList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StrategyList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a recovery strategy or a list of strategies")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<StrategyList, E> {
                s.parse().map(|s| StrategyList(vec![s])).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StrategyList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<RecoveryStrategy>()? {
                    out.push(s);
                }
                Ok(StrategyList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A `--fixed` table file: a scenario's `[fixed]` at the top level, its keys read as the
/// scenario's are (a class or kind given twice in two spellings is refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct FixedFile {
    /// `<class|any>.<kind|any> = STRATEGY | [STRATEGY...]`.
    #[serde(deserialize_with = "unique_keys2")]
    pub(crate) rows: BTreeMap<ClassKey, BTreeMap<KindKey, StrategyList>>,
}

// ---------------------------------------------------------------------------------------
// The file as written
// ---------------------------------------------------------------------------------------

/// A scenario file as written (unchecked). See the module docs and
/// `data/scenarios/README.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Scenario name, written into the outputs.
    #[serde(default)]
    pub name: Option<String>,
    /// What the scenario models.
    #[serde(default)]
    pub description: String,
    /// Clock and loop parameters.
    #[serde(default)]
    pub simulation: SimulationRaw,
    /// Task properties of every class (a class's `tasks` overrides field by field).
    #[serde(default)]
    pub tasks: TasksRaw,
    /// Workers per hardware class.
    #[serde(default, deserialize_with = "unique_keys")]
    pub workers: BTreeMap<HardwareClass, WorkersRaw>,
    /// Failure mix per hardware class: the causes of new tasks' failures.
    #[serde(default, deserialize_with = "unique_keys")]
    pub failures: BTreeMap<HardwareClass, Vec<CauseRaw>>,
    /// Bad workers per hardware class.
    #[serde(default, deserialize_with = "unique_keys")]
    pub bad_workers: BTreeMap<HardwareClass, BadRaw>,
    /// Bursts of one class and kind in a time window.
    #[serde(default)]
    pub bursts: Vec<BurstRaw>,
    /// Changes of a strategy's true success from a failure number on.
    #[serde(default)]
    pub drifts: Vec<DriftRaw>,
    /// Success probability overrides: `truth.<class|any>.<kind|any>.<STRATEGY>`.
    #[serde(default, deserialize_with = "unique_keys3")]
    pub truth: BTreeMap<ClassKey, BTreeMap<KindKey, BTreeMap<RecoveryStrategy, f64>>>,
    /// Cost overrides: `cost.<class|any>.<STRATEGY> = { seconds, device_seconds }`.
    #[serde(default, deserialize_with = "unique_keys2")]
    pub cost: BTreeMap<ClassKey, BTreeMap<RecoveryStrategy, CostRaw>>,
    /// The fixed policy's table: `fixed.<class|any>.<kind|any> = STRATEGY | [STRATEGY...]`.
    #[serde(default, deserialize_with = "unique_keys2")]
    pub fixed: BTreeMap<ClassKey, BTreeMap<KindKey, StrategyList>>,
}

/// `[simulation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulationRaw {
    /// Start of the simulated clock (RFC 3339). Default 2026-11-01T00:00:00Z.
    pub start: Timestamp,
    /// A task's failures beyond this number are escalated (also the engine's limit).
    /// Default 10.
    pub max_attempts: u32,
    /// Probability that a failed recovery is followed by the same cause again (when the
    /// cause can follow the task). Default 0.8.
    pub persistence: f64,
    /// Mean seconds a task runs after a failed recovery before it fails again. Default 600.
    pub refail_mean_s: f64,
}

impl Default for SimulationRaw {
    fn default() -> Self {
        SimulationRaw {
            // 2026-11-01T00:00:00Z.
            start: Timestamp::from_micros(1_793_491_200_000_000),
            max_attempts: 10,
            persistence: 0.8,
            refail_mean_s: 600.0,
        }
    }
}

/// `[tasks]` or `[workers.<class>.tasks]`: absent fields come from `[tasks]`, then from the
/// defaults (one model "model", batch 32, fp32, checkpointing on).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TasksRaw {
    /// Models, drawn by share.
    pub models: Option<Vec<ModelRaw>>,
    /// Batch sizes, drawn uniformly.
    pub batch_sizes: Option<Vec<u32>>,
    /// Precisions with their shares.
    #[serde(default, deserialize_with = "unique_keys_opt")]
    pub precisions: Option<BTreeMap<Precision, f64>>,
    /// Share of tasks with checkpointing on.
    pub checkpointing: Option<f64>,
}

/// A model of `[tasks].models`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRaw {
    /// Model name.
    pub name: String,
    /// Share (relative weight). Default 1.
    #[serde(default = "one")]
    pub share: f64,
    /// Smaller models SIMPLIFIED_MODEL may fall back to, in order.
    #[serde(default)]
    pub fallback: Vec<String>,
}

fn one() -> f64 {
    1.0
}

/// `[workers.<class>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersRaw {
    /// Number of workers.
    pub count: u32,
    /// First failures per worker per hour (of new tasks on a good worker).
    pub failure_rate_per_hour: f64,
    /// Vendor, e.g. "NVIDIA".
    #[serde(default)]
    pub vendor: Option<String>,
    /// Device model (alternative to `variants`).
    #[serde(default)]
    pub model: Option<String>,
    /// Device memory in GiB (alternative to `variants`).
    #[serde(default)]
    pub memory_gib: Option<f64>,
    /// Device variants drawn by share: `{ model, memory_gib, share }`.
    #[serde(default)]
    pub variants: Vec<VariantRaw>,
    /// Compute units per device.
    #[serde(default)]
    pub compute_units: Option<u32>,
    /// Browser mix `{ name = share }`: WEBGPU and WEBNN only (default all "chrome").
    #[serde(default)]
    pub browsers: BTreeMap<String, f64>,
    /// Task properties of tasks on this class (field by field over `[tasks]`).
    #[serde(default)]
    pub tasks: Option<TasksRaw>,
}

/// A device variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantRaw {
    /// Device model.
    #[serde(default)]
    pub model: Option<String>,
    /// Device memory in GiB.
    #[serde(default)]
    pub memory_gib: Option<f64>,
    /// Share. Default 1.
    #[serde(default = "one")]
    pub share: f64,
}

/// `[[failures.<class>]]`: one cause of failures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CauseRaw {
    /// The failure kind (what the classifier should say).
    pub kind: FailureKind,
    /// Relative weight within the class's mix.
    pub weight: f64,
    /// Cause name (ground truth); default the kind.
    #[serde(default)]
    pub name: Option<String>,
    /// Message templates (default: the built-in ones for the class and kind).
    #[serde(default)]
    pub messages: Vec<String>,
    /// Success probability overrides for this cause only.
    #[serde(default, deserialize_with = "unique_keys")]
    pub truth: BTreeMap<RecoveryStrategy, f64>,
}

/// `[bad_workers.<class>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadRaw {
    /// Share of the class's workers that are bad.
    pub share: f64,
    /// Failure-rate multiplier of a bad worker (≥ 1).
    pub rate_multiplier: f64,
    /// Kinds of the extra failures a bad worker produces (default: the class's mix).
    #[serde(default)]
    pub kinds: Vec<FailureKind>,
    /// Multiplier of the success of strategies that stay on a bad worker. Default 0.3.
    #[serde(default = "same_factor")]
    pub same_worker_factor: f64,
    /// Lower bound of DIFFERENT_WORKER's success when the failed worker is bad. Default 0.9.
    #[serde(default = "diff_success")]
    pub different_worker_success: f64,
}

fn same_factor() -> f64 {
    0.3
}
fn diff_success() -> f64 {
    0.9
}

/// `[[bursts]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstRaw {
    /// Burst id (ground truth); default `burst-<n>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Hardware class hit.
    pub class: HardwareClass,
    /// Kind of its failures.
    pub kind: FailureKind,
    /// The cause of its failures, by name (`[[failures.<class>]] name`), when the class has
    /// several causes of `kind`; default: the first cause of that kind in the mix.
    #[serde(default)]
    pub cause: Option<String>,
    /// Start, hours after the simulation start.
    pub start_h: f64,
    /// Duration, hours.
    pub duration_h: f64,
    /// Extra failures per hour over the class while it lasts.
    pub rate_per_hour: f64,
    /// Multiplier of the success of strategies that keep the task on the class while the
    /// burst lasts. Default 0.3.
    #[serde(default = "same_factor")]
    pub success_factor: f64,
}

/// `[[drifts]]`: from failure number `at_failure` on (the simulator's sequence number, 0 for
/// the first failure), `strategy` succeeds with probability `success` on every cause of
/// `kind` on workers of `class` (before the bad-worker and burst effects).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftRaw {
    /// Hardware class.
    pub class: HardwareClass,
    /// Failure kind.
    pub kind: FailureKind,
    /// The strategy whose success changes.
    pub strategy: RecoveryStrategy,
    /// First failure (sequence number) with the new success.
    pub at_failure: u64,
    /// The new success probability.
    pub success: f64,
}

/// A checked drift (see [`DriftRaw`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    /// Index into `Scenario::classes`.
    pub class: usize,
    /// Failure kind.
    pub kind: FailureKind,
    /// The strategy whose success changes.
    pub strategy: RecoveryStrategy,
    /// First failure (sequence number) with the new success.
    pub at_failure: u64,
    /// The new success probability.
    pub success: f64,
}

/// A cost as written; a field left out comes from the next level (`cost.any`, then the
/// built-in table), not 0.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostRaw {
    /// Seconds.
    #[serde(default)]
    pub seconds: Option<f64>,
    /// Device-seconds.
    #[serde(default)]
    pub device_seconds: Option<f64>,
}

// ---------------------------------------------------------------------------------------
// Checked types
// ---------------------------------------------------------------------------------------

/// Items drawn by weight.
#[derive(Debug, Clone)]
pub struct Weighted<T> {
    items: Vec<T>,
    cumulative: Vec<f64>,
}

impl<T> Weighted<T> {
    /// From (item, weight) pairs; `None` when empty or when no weight is positive. Weights
    /// must be finite and non-negative (checked by the caller).
    pub fn new(pairs: Vec<(T, f64)>) -> Option<Self> {
        let mut items = Vec::with_capacity(pairs.len());
        let mut cumulative = Vec::with_capacity(pairs.len());
        let mut total = 0.0;
        for (t, w) in pairs {
            total += w.max(0.0);
            items.push(t);
            cumulative.push(total);
        }
        (total > 0.0 && total.is_finite()).then_some(Weighted { items, cumulative })
    }

    /// Draws an item.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> &T {
        let u = rng.gen::<f64>() * self.total();
        let i = self.cumulative.partition_point(|&c| c <= u);
        &self.items[i.min(self.items.len() - 1)]
    }

    /// Draws an index.
    pub fn sample_index<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let u = rng.gen::<f64>() * self.total();
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.items.len() - 1)
    }

    /// The items.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// The weight of item `i`.
    pub fn weight(&self, i: usize) -> f64 {
        self.cumulative[i] - if i == 0 { 0.0 } else { self.cumulative[i - 1] }
    }

    /// Sum of the weights (> 0).
    pub fn total(&self) -> f64 {
        // Non-empty by construction.
        self.cumulative[self.cumulative.len() - 1]
    }
}

/// A checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Start of the simulated clock.
    pub start: Timestamp,
    /// A task's failures beyond this number are escalated.
    pub max_attempts: u32,
    /// Probability that the same cause follows a failed recovery.
    pub persistence: f64,
    /// Mean seconds from a failed recovery to the next failure.
    pub refail_mean_s: f64,
    /// Hardware classes with workers, in class order.
    pub classes: Vec<ClassSpec>,
    /// Bursts, in file order.
    pub bursts: Vec<Burst>,
    /// Drifts of true success, by `at_failure` (file order among equal ones), so the latest
    /// one in force for a (class, kind, strategy) is applied last and wins.
    pub drifts: Vec<Drift>,
    /// The fixed policy's table from the scenario (defaults to DELAYED_RETRY everywhere).
    pub fixed: FixedTable,
    /// What the file gives that has no effect (`FILE:LINE: field: why`), for the caller to
    /// say; the scenario runs as if it were not there.
    pub warnings: Vec<String>,
}

/// A hardware class of the fleet.
#[derive(Debug, Clone)]
pub struct ClassSpec {
    /// The class.
    pub class: HardwareClass,
    /// Number of workers.
    pub count: u32,
    /// First failures per good worker per hour.
    pub rate_per_hour: f64,
    /// Vendor.
    pub vendor: Option<String>,
    /// Compute units.
    pub compute_units: Option<u32>,
    /// Device variants.
    pub variants: Weighted<Variant>,
    /// Browser mix (browser classes only).
    pub browsers: Option<Weighted<String>>,
    /// Task properties.
    pub tasks: TaskProps,
    /// Causes: the failure mix first, then zero-weight causes added for bursts and bad
    /// workers of kinds the mix lacks.
    pub causes: Vec<Cause>,
    /// The mix: indexes into `causes`, by weight.
    pub mix: Weighted<usize>,
    /// Bad workers.
    pub bad: Option<BadWorkers>,
    /// Cost of every strategy on this class.
    pub cost: [Cost; N],
}

/// A device variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Device model.
    pub model: Option<String>,
    /// Memory, GiB.
    pub memory_gib: Option<f64>,
}

/// Task properties of a class.
#[derive(Debug, Clone)]
pub struct TaskProps {
    /// Models: (name, fallbacks) by share.
    pub models: Weighted<(String, Vec<String>)>,
    /// Batch sizes, drawn uniformly.
    pub batch_sizes: Vec<u32>,
    /// Precisions by share.
    pub precisions: Weighted<Precision>,
    /// Share with checkpointing on.
    pub checkpointing: f64,
}

/// Kinds whose cause is in the task itself (its code, its data) wherever it runs: a class
/// whose mix lacks one gets a zero-weight cause of it when another class has one, for the
/// tasks that move there with it (see `world::next_cause`).
pub(crate) const TASK_BOUND: [FailureKind; 2] =
    [FailureKind::SoftwareException, FailureKind::DataError];

/// A cause of failures: a hardware class and kind, its messages and its truth.
#[derive(Debug, Clone)]
pub struct Cause {
    /// Id, unique in the scenario: `<class>.<name>` (lowercase class).
    pub id: String,
    /// Kind.
    pub kind: FailureKind,
    /// Weight in the class's mix (0 for causes only bursts or bad workers produce).
    pub weight: f64,
    /// Message templates (non-empty).
    pub templates: Vec<Template>,
    /// Base success probability of every strategy.
    pub truth: Probs,
}

/// Bad workers of a class.
#[derive(Debug, Clone)]
pub struct BadWorkers {
    /// Share of the class's workers.
    pub share: f64,
    /// Failure-rate multiplier.
    pub rate_multiplier: f64,
    /// Causes of their extra failures, one entry per kind (drawn uniformly): that kind's
    /// causes in the mix by weight (indexes into the class's `causes`), or the zero-weight
    /// cause added for a kind the mix lacks. Empty: the mix.
    pub causes: Vec<Weighted<usize>>,
    /// Effect on recoveries.
    pub effect: BadEffect,
}

impl ClassSpec {
    /// Bad workers of the class (`share × count`, rounded; 0 without bad workers).
    pub fn bad_count(&self) -> usize {
        self.bad
            .as_ref()
            .map_or(0, |b| bad_count(b.share, self.count as usize))
    }

    /// The class's failure rate per hour: every worker's `rate_per_hour`, a bad worker's
    /// times its multiplier.
    pub fn total_rate_per_hour(&self) -> f64 {
        let n_bad = self.bad_count();
        let good = (self.count as usize - n_bad) as f64 * self.rate_per_hour;
        let mult = self.bad.as_ref().map_or(1.0, |b| b.rate_multiplier);
        good + n_bad as f64 * self.rate_per_hour * mult
    }
}

/// A burst.
#[derive(Debug, Clone)]
pub struct Burst {
    /// Id.
    pub id: String,
    /// Index into `Scenario::classes`.
    pub class: usize,
    /// Index into that class's `causes`.
    pub cause: usize,
    /// Start, seconds after the simulation start.
    pub start_s: f64,
    /// End, seconds after the simulation start.
    pub end_s: f64,
    /// Failures per hour while active.
    pub rate_per_hour: f64,
    /// Success multiplier of same-class strategies while active.
    pub success_factor: f64,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks scenario TOML; `path` names the source in errors.
    pub fn from_toml(text: &str, path: &str) -> Result<Scenario, SimError> {
        let file: ScenarioFile = parse_toml(text, path)?;
        Checker { path, text }.scenario(file)
    }

    /// The class spec of `class`, if the fleet has it.
    pub fn class(&self, class: HardwareClass) -> Option<&ClassSpec> {
        self.classes.iter().find(|c| c.class == class)
    }
}

/// Parses TOML into `T`, turning parser errors into [`SimError::Invalid`] with line and
/// field path.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &str,
) -> Result<T, SimError> {
    toml::from_str(text).map_err(|e| {
        let (at, field) = match e.span() {
            Some(span) => {
                let line = line_of(text, span.start);
                (
                    format!("{path}:{line}"),
                    path_at_line(text, line).unwrap_or_else(|| "<document>".into()),
                )
            }
            None => (path.to_string(), "<document>".into()),
        };
        let detail = plain_toml_message(e.message().trim(), &field);
        SimError::Invalid { at, field, detail }
    })
}

/// A TOML parser's message in the scenario's words: Rust's number types named as what they
/// take, and the hint a table written where an array of tables belongs needs (a scenario
/// audit: `[failures.gpu]` for `[[failures.gpu]]` said only "invalid type: map, expected a
/// sequence", and counts said "expected u32").
fn plain_toml_message(message: &str, field: &str) -> String {
    let mut m = message.to_string();
    for (rust, plain) in [
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u64", "expected a whole number ≥ 0"),
        ("expected usize", "expected a whole number ≥ 0"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
    ] {
        m = m.replace(rust, plain);
    }
    if m.contains("invalid type: map, expected a sequence") {
        let name = field.split('[').next().unwrap_or(field);
        m.push_str(&format!(
            " (a list of tables: write each entry as [[{name}]], with two brackets)"
        ));
    }
    m
}

fn lower(c: HardwareClass) -> String {
    c.as_str().to_ascii_lowercase()
}

/// Validation with the source at hand, so errors can name lines.
pub(crate) struct Checker<'a> {
    pub(crate) path: &'a str,
    pub(crate) text: &'a str,
}

impl Checker<'_> {
    /// A warning about `field`: `FILE:LINE: field: detail`.
    fn note(&self, field: &str, detail: &str) -> String {
        match locate(self.text, field) {
            Some(line) => format!("{}:{line}: {field}: {detail}", self.path),
            None => format!("{}: {field}: {detail}", self.path),
        }
    }

    pub(crate) fn bad(&self, field: impl Into<String>, detail: impl Into<String>) -> SimError {
        let field = field.into();
        let at = match locate(self.text, &field) {
            Some(line) => format!("{}:{line}", self.path),
            None => self.path.to_string(),
        };
        SimError::Invalid {
            at,
            field,
            detail: detail.into(),
        }
    }

    fn prob(&self, field: impl Into<String>, v: f64) -> Result<f64, SimError> {
        if v.is_finite() && (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(self.bad(field, format!("{v} is not a probability in [0, 1]")))
        }
    }

    fn non_negative(&self, field: impl Into<String>, v: f64) -> Result<f64, SimError> {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(self.bad(field, format!("{v} is not a number ≥ 0")))
        }
    }

    fn positive(&self, field: impl Into<String>, v: f64) -> Result<f64, SimError> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.bad(field, format!("{v} is not a number > 0")))
        }
    }

    /// A duration in seconds no longer than the horizon.
    fn within_horizon_s(&self, field: impl Into<String>, v: f64) -> Result<f64, SimError> {
        if v <= HORIZON_H * 3600.0 {
            Ok(v)
        } else {
            Err(self.bad(
                field,
                format!(
                    "{} s is longer than the simulated clock's horizon of 100 years",
                    num(v)
                ),
            ))
        }
    }

    /// The failure rate of a checked class, per hour; an error naming the field when it is
    /// positive but gives less than one failure within the horizon, or when it brings the
    /// fleet's total (`before`: the classes so far) above [`MAX_TOTAL_RATE_PER_H`] (an
    /// infinite sum hung the simulator).
    fn class_rate(&self, spec: &ClassSpec, before: f64) -> Result<f64, SimError> {
        let lc = lower(spec.class);
        let field = format!("workers.{lc}.failure_rate_per_hour");
        let plain = spec.rate_per_hour * f64::from(spec.count);
        if plain > 0.0 && plain * HORIZON_H < 1.0 {
            return Err(self.bad(
                field,
                format!(
                    "{} per worker per hour over {} workers is less than one failure in 100 years of simulated time (the clock's horizon): give 0 for a class whose workers never fail on their own",
                    num(spec.rate_per_hour),
                    spec.count
                ),
            ));
        }
        let over = |rate: f64| !(rate.is_finite() && rate <= MAX_TOTAL_RATE_PER_H);
        if over(plain) || over(before + plain) {
            return Err(self.bad(
                field,
                format!(
                    "{} per worker per hour over {} workers brings the fleet's total failure rate to {}, above {} per hour (one failure per microsecond of simulated time)",
                    num(spec.rate_per_hour),
                    spec.count,
                    num(before + plain),
                    num(MAX_TOTAL_RATE_PER_H)
                ),
            ));
        }
        let rate = spec.total_rate_per_hour();
        if over(rate) || over(before + rate) {
            let mult = spec.bad.as_ref().map_or(1.0, |b| b.rate_multiplier);
            return Err(self.bad(
                format!("bad_workers.{lc}.rate_multiplier"),
                format!(
                    "{} on {} bad workers brings the fleet's total failure rate to {}, above {} per hour (one failure per microsecond of simulated time)",
                    num(mult),
                    spec.bad_count(),
                    num(before + rate),
                    num(MAX_TOTAL_RATE_PER_H)
                ),
            ));
        }
        Ok(rate)
    }

    fn scenario(&self, f: ScenarioFile) -> Result<Scenario, SimError> {
        let sim = &f.simulation;
        if sim.max_attempts == 0 {
            return Err(self.bad("simulation.max_attempts", "must be at least 1"));
        }
        if sim.max_attempts > MAX_ATTEMPTS {
            // Tasks still running at the end are finished: with a cure that almost never
            // works, an oracle that never gives up ran for billions of failures (audit).
            return Err(self.bad(
                "simulation.max_attempts",
                format!("{} is above {MAX_ATTEMPTS}", sim.max_attempts),
            ));
        }
        let persistence = self.prob("simulation.persistence", sim.persistence)?;
        let refail_mean_s = self.positive("simulation.refail_mean_s", sim.refail_mean_s)?;
        self.within_horizon_s("simulation.refail_mean_s", refail_mean_s)?;
        let start = sim.start.as_micros();
        if start < MIN_START_US || start > END_BEFORE_US - horizon_us() {
            return Err(self.bad(
                "simulation.start",
                format!(
                    "{} is outside 0001-01-01 to 9899-12-31: the clock's 100-year horizon must end before the year 10000",
                    sim.start
                ),
            ));
        }
        if f.workers.is_empty() {
            return Err(self.bad(
                "workers",
                "the fleet has no workers: add a [workers.<class>] table",
            ));
        }
        for class in f.failures.keys() {
            if !f.workers.contains_key(class) {
                return Err(self.bad(
                    format!("failures.{}", lower(*class)),
                    format!(
                        "no workers of class {class} (add [workers.{}])",
                        lower(*class)
                    ),
                ));
            }
        }
        for class in f.bad_workers.keys() {
            if !f.workers.contains_key(class) {
                return Err(self.bad(
                    format!("bad_workers.{}", lower(*class)),
                    format!("no workers of class {class}"),
                ));
            }
        }
        // Tables for a class the fleet does not have would be silently unused (`fixed`: in
        // `FixedTable::from_raw`, which a `--fixed` file goes through too).
        for (table, keys) in [
            ("truth", f.truth.keys().collect::<Vec<_>>()),
            ("cost", f.cost.keys().collect()),
        ] {
            for ck in keys {
                if let ClassKey::Class(class) = ck {
                    if !f.workers.contains_key(class) {
                        return Err(self.bad(
                            format!("{table}.{ck}"),
                            format!("no workers of class {class}: this table would never be used"),
                        ));
                    }
                }
            }
        }
        for (ck, kinds) in &f.truth {
            for (kk, row) in kinds {
                for (s, v) in row {
                    let field = format!("truth.{ck}.{kk}.{s}");
                    if *s == RecoveryStrategy::Escalation {
                        return Err(self.bad(
                            field,
                            "ESCALATION is not a recovery: its success probability is 0",
                        ));
                    }
                    self.prob(field, *v)?;
                }
            }
        }
        for (ck, row) in &f.cost {
            for (s, c) in row {
                if let Some(v) = c.seconds {
                    let field = format!("cost.{ck}.{s}.seconds");
                    self.non_negative(field.clone(), v)?;
                    self.within_horizon_s(field, v)?;
                }
                if let Some(v) = c.device_seconds {
                    self.non_negative(format!("cost.{ck}.{s}.device_seconds"), v)?;
                }
            }
        }

        let mut classes = Vec::new();
        let mut total_rate = 0.0;
        for (class, w) in &f.workers {
            let spec = self.class(*class, w, &f)?;
            total_rate += self.class_rate(&spec, total_rate)?;
            classes.push(spec);
        }

        let mut bursts = Vec::new();
        for (i, b) in f.bursts.iter().enumerate() {
            let field = |name: &str| format!("bursts[{i}].{name}");
            let id = b.name.clone().unwrap_or_else(|| format!("burst-{}", i + 1));
            if bursts.iter().any(|x: &Burst| x.id == id) {
                return Err(self.bad(field("name"), format!("duplicate burst name '{id}'")));
            }
            let Some(ci) = classes.iter().position(|c| c.class == b.class) else {
                return Err(self.bad(field("class"), format!("no workers of class {}", b.class)));
            };
            let start = self.non_negative(field("start_h"), b.start_h)?;
            if start > HORIZON_H {
                return Err(self.bad(
                    field("start_h"),
                    format!(
                        "{} is beyond the simulated clock's horizon of {HORIZON_H} hours (100 years)",
                        num(start)
                    ),
                ));
            }
            let dur = self.positive(field("duration_h"), b.duration_h)?;
            if start + dur > HORIZON_H {
                return Err(self.bad(
                    field("duration_h"),
                    format!(
                        "the burst would end at {} hours, beyond the simulated clock's horizon of {HORIZON_H} hours (100 years)",
                        num(start + dur)
                    ),
                ));
            }
            let rate = self.positive(field("rate_per_hour"), b.rate_per_hour)?;
            total_rate += rate;
            if total_rate > MAX_TOTAL_RATE_PER_H {
                return Err(self.bad(
                    field("rate_per_hour"),
                    format!(
                        "{} per hour brings the fleet's total failure rate (workers and bursts) to {}, above {} per hour (one failure per microsecond of simulated time)",
                        num(rate),
                        num(total_rate),
                        num(MAX_TOTAL_RATE_PER_H)
                    ),
                ));
            }
            let factor = self.prob(field("success_factor"), b.success_factor)?;
            let cause = match &b.cause {
                None => self.cause_of_kind(&mut classes[ci], b.kind, &f),
                Some(name) => {
                    let id = format!("{}.{name}", lower(b.class));
                    let found = classes[ci].causes.iter().position(|c| c.id == id);
                    match found {
                        Some(k) if classes[ci].causes[k].kind == b.kind => k,
                        Some(k) => {
                            return Err(self.bad(
                                field("cause"),
                                format!(
                                    "cause '{name}' is of kind {}, not the burst's {}",
                                    classes[ci].causes[k].kind, b.kind
                                ),
                            ))
                        }
                        None => {
                            let names: Vec<&str> = classes[ci]
                                .causes
                                .iter()
                                .filter(|c| c.kind == b.kind)
                                .filter_map(|c| c.id.split_once('.').map(|x| x.1))
                                .collect();
                            return Err(self.bad(
                                field("cause"),
                                format!(
                                    "no cause '{name}' on class {} (causes of kind {}: {})",
                                    b.class,
                                    b.kind,
                                    if names.is_empty() {
                                        "none".to_string()
                                    } else {
                                        names.join(", ")
                                    }
                                ),
                            ));
                        }
                    }
                }
            };
            bursts.push(Burst {
                id,
                class: ci,
                cause,
                start_s: start * 3600.0,
                end_s: (start + dur) * 3600.0,
                rate_per_hour: rate,
                success_factor: factor,
            });
        }
        // A software or data error is in the task (its code, its data), not in the worker: a
        // task that moves to a class without a cause of that kind takes it along — the
        // zero-weight cause of the kind with the class's built-in texts and truth, reached
        // only that way — so that a move does not cure a bug by leaving it behind. Added before
        // the drifts are checked: a drift of a carried kind changes the carried causes.
        for kind in TASK_BOUND {
            if classes
                .iter()
                .any(|c| c.causes.iter().any(|x| x.kind == kind))
            {
                for spec in &mut classes {
                    self.cause_of_kind(spec, kind, &f);
                }
            }
        }
        // What is taken but does nothing, said (an audit: `[truth.gpu.network]` on a fleet
        // whose GPUs only run out of memory, and a bad-worker share of 0.01 of 4 workers, were
        // taken without a word). Warnings, not errors: scenarios written before run as before.
        let mut warnings = Vec::new();
        for (ck, kinds) in &f.truth {
            let ClassKey::Class(class) = ck else { continue };
            let Some(spec) = classes.iter().find(|c| c.class == *class) else {
                continue;
            };
            for kk in kinds.keys() {
                if let KindKey::Kind(kind) = kk {
                    if !spec.causes.iter().any(|c| c.kind == *kind) {
                        warnings.push(self.note(
                            &format!("truth.{ck}.{kk}"),
                            &format!(
                                "class {class} has no cause of kind {kind}: this table is never used"
                            ),
                        ));
                    }
                }
            }
        }
        for spec in &classes {
            if let Some(b) = &spec.bad {
                if b.share > 0.0 && spec.bad_count() == 0 {
                    warnings.push(self.note(
                        &format!("bad_workers.{}.share", lower(spec.class)),
                        &format!(
                            "{} of {} workers rounds to no bad worker (at least {} makes one): the class has none",
                            b.share,
                            spec.count,
                            0.5 / f64::from(spec.count)
                        ),
                    ));
                }
            }
        }
        let mut drifts = Vec::new();
        for (i, d) in f.drifts.iter().enumerate() {
            let field = |name: &str| format!("drifts[{i}].{name}");
            let Some(ci) = classes.iter().position(|c| c.class == d.class) else {
                return Err(self.bad(field("class"), format!("no workers of class {}", d.class)));
            };
            if d.strategy == RecoveryStrategy::Escalation {
                return Err(self.bad(field("strategy"), "ESCALATION never recovers a task"));
            }
            if !classes[ci].causes.iter().any(|c| c.kind == d.kind) {
                return Err(self.bad(
                    field("kind"),
                    format!(
                        "class {} has no cause of kind {}: the drift would change nothing",
                        d.class, d.kind
                    ),
                ));
            }
            let success = self.prob(field("success"), d.success)?;
            drifts.push(Drift {
                class: ci,
                kind: d.kind,
                strategy: d.strategy,
                at_failure: d.at_failure,
                success,
            });
        }
        // The simulator applies every drift in force in this order, the last one winning: by
        // `at_failure` (stable: file order among equal ones), the latest in force wins.
        drifts.sort_by_key(|d| d.at_failure);
        if total_rate <= 0.0 {
            return Err(self.bad(
                "workers",
                "no failures can happen: every failure_rate_per_hour is 0 and there are no bursts",
            ));
        }

        let fleet: Vec<HardwareClass> = classes.iter().map(|c| c.class).collect();
        let fixed = FixedTable::from_raw(&f.fixed, &fleet, self, "fixed")?;
        Ok(Scenario {
            name: f
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| "scenario".into()),
            description: f.description.clone(),
            start: sim.start,
            max_attempts: sim.max_attempts,
            persistence,
            refail_mean_s,
            classes,
            bursts,
            drifts,
            fixed,
            warnings,
        })
    }

    fn class(
        &self,
        class: HardwareClass,
        w: &WorkersRaw,
        f: &ScenarioFile,
    ) -> Result<ClassSpec, SimError> {
        let lc = lower(class);
        let field = |name: &str| format!("workers.{lc}.{name}");
        if w.count == 0 {
            return Err(self.bad(field("count"), "must be at least 1"));
        }
        if w.count > MAX_WORKERS_PER_CLASS {
            return Err(self.bad(
                field("count"),
                format!(
                    "{} workers is more than the {MAX_WORKERS_PER_CLASS} a class may have",
                    w.count
                ),
            ));
        }
        let rate = self.non_negative(field("failure_rate_per_hour"), w.failure_rate_per_hour)?;
        let variants = if w.variants.is_empty() {
            if let Some(m) = w.memory_gib {
                self.positive(field("memory_gib"), m)?;
            }
            vec![(
                Variant {
                    model: w.model.clone(),
                    memory_gib: w.memory_gib,
                },
                1.0,
            )]
        } else {
            if w.model.is_some() || w.memory_gib.is_some() {
                return Err(self.bad(
                    field("variants"),
                    "give either model and memory_gib or variants, not both",
                ));
            }
            let mut out = Vec::new();
            for (i, v) in w.variants.iter().enumerate() {
                if let Some(m) = v.memory_gib {
                    self.positive(field(&format!("variants[{i}].memory_gib")), m)?;
                }
                let share = self.non_negative(field(&format!("variants[{i}].share")), v.share)?;
                out.push((
                    Variant {
                        model: v.model.clone(),
                        memory_gib: v.memory_gib,
                    },
                    share,
                ));
            }
            out
        };
        let variants = Weighted::new(variants)
            .ok_or_else(|| self.bad(field("variants"), "no variant has a positive share"))?;
        let browsers =
            if class.is_browser() {
                let mut pairs = Vec::new();
                for (name, share) in &w.browsers {
                    if name.trim().is_empty() {
                        return Err(self.bad(field("browsers"), "a browser name is empty"));
                    }
                    if name.trim() != name || name.chars().any(char::is_control) {
                        return Err(self.bad(
                            field("browsers"),
                            format!(
                                "browser name {name:?} has surrounding spaces or a control \
                                 character (rules and the engine would never match it)"
                            ),
                        ));
                    }
                    // Rules and the engine compare browser names ignoring case: two names that
                    // differ only in case are one browser listed twice.
                    if let Some((other, _)) = pairs
                        .iter()
                        .find(|(o, _): &&(String, f64)| o.eq_ignore_ascii_case(name))
                    {
                        return Err(self.bad(
                            field("browsers"),
                            format!(
                                "{other:?} and {name:?} name the same browser (names are \
                                 compared ignoring case); give it one share"
                            ),
                        ));
                    }
                    let share = self.non_negative(field(&format!("browsers.{name}")), *share)?;
                    pairs.push((name.clone(), share));
                }
                if pairs.is_empty() {
                    pairs.push(("chrome".to_string(), 1.0));
                }
                Some(Weighted::new(pairs).ok_or_else(|| {
                    self.bad(field("browsers"), "no browser has a positive share")
                })?)
            } else {
                if !w.browsers.is_empty() {
                    return Err(self.bad(
                        field("browsers"),
                        format!("only WEBGPU and WEBNN workers have browsers, not {class}"),
                    ));
                }
                None
            };
        let tasks = self.tasks(&f.tasks, w.tasks.as_ref(), &lc)?;

        // Causes: the failure mix.
        let Some(mix_raw) = f.failures.get(&class).filter(|m| !m.is_empty()) else {
            return Err(self.bad(
                format!("failures.{lc}"),
                format!("missing: workers of class {class} need a failure mix ([[failures.{lc}]])"),
            ));
        };
        let mut causes: Vec<Cause> = Vec::new();
        for (i, c) in mix_raw.iter().enumerate() {
            let at = format!("failures.{lc}[{i}]");
            let weight = self.non_negative(format!("{at}.weight"), c.weight)?;
            let name = c
                .name
                .clone()
                .unwrap_or_else(|| c.kind.as_str().to_string());
            let id = format!("{lc}.{name}");
            if causes.iter().any(|x| x.id == id) {
                return Err(self.bad(
                    format!("{at}.name"),
                    format!(
                        "duplicate cause '{name}' (give each entry of one kind a distinct name)"
                    ),
                ));
            }
            let templates = if c.messages.is_empty() {
                messages::builtin(class, c.kind)
            } else {
                let mut out = Vec::new();
                for (j, m) in c.messages.iter().enumerate() {
                    out.push(
                        Template::parse(m)
                            .map_err(|e| self.bad(format!("{at}.messages[{j}]"), e))?,
                    );
                }
                out
            };
            let mut probs = self.resolve_truth(class, c.kind, f);
            for (s, v) in &c.truth {
                let field = format!("{at}.truth.{s}");
                if *s == RecoveryStrategy::Escalation {
                    return Err(self.bad(
                        field,
                        "ESCALATION is not a recovery: its success probability is 0",
                    ));
                }
                probs[s.index()] = self.prob(field, *v)?;
            }
            causes.push(Cause {
                id,
                kind: c.kind,
                weight,
                templates,
                truth: probs,
            });
        }
        let mix = Weighted::new(
            causes
                .iter()
                .enumerate()
                .map(|(i, c)| (i, c.weight))
                .collect(),
        )
        .ok_or_else(|| {
            self.bad(
                format!("failures.{lc}"),
                "no entry of the failure mix has a positive weight",
            )
        })?;

        // Field by field: the class's table, then `cost.any`, then the built-in table.
        let cost: [Cost; N] = std::array::from_fn(|i| {
            let s = RecoveryStrategy::ALL[i];
            let pick = |k: ClassKey| f.cost.get(&k).and_then(|row| row.get(&s)).copied();
            let (here, any) = (pick(ClassKey::Class(class)), pick(ClassKey::Any));
            let builtin = truth::builtin_cost(s);
            Cost {
                seconds: here
                    .and_then(|c| c.seconds)
                    .or(any.and_then(|c| c.seconds))
                    .unwrap_or(builtin.seconds),
                device_seconds: here
                    .and_then(|c| c.device_seconds)
                    .or(any.and_then(|c| c.device_seconds))
                    .unwrap_or(builtin.device_seconds),
            }
        });

        let mut spec = ClassSpec {
            class,
            count: w.count,
            rate_per_hour: rate,
            vendor: w.vendor.clone(),
            compute_units: w.compute_units,
            variants,
            browsers,
            tasks,
            causes,
            mix,
            bad: None,
            cost,
        };

        if let Some(b) = f.bad_workers.get(&class) {
            let field = |name: &str| format!("bad_workers.{lc}.{name}");
            let share = self.prob(field("share"), b.share)?;
            if !(b.rate_multiplier.is_finite() && b.rate_multiplier >= 1.0) {
                return Err(self.bad(
                    field("rate_multiplier"),
                    format!("{} is not a number ≥ 1", b.rate_multiplier),
                ));
            }
            let same = self.prob(field("same_worker_factor"), b.same_worker_factor)?;
            let diff = self.prob(
                field("different_worker_success"),
                b.different_worker_success,
            )?;
            let mut idx = Vec::new();
            for k in &b.kinds {
                idx.push(self.causes_of_kind(&mut spec, *k, f));
            }
            spec.bad = Some(BadWorkers {
                share,
                rate_multiplier: b.rate_multiplier,
                causes: idx,
                effect: BadEffect {
                    same_worker_factor: same,
                    different_worker_success: diff,
                },
            });
        }
        Ok(spec)
    }

    /// The causes of `kind` in the class's mix by weight: the failures of that kind the class
    /// has. A kind the mix lacks gets the zero-weight cause of [`Self::cause_of_kind`].
    fn causes_of_kind(
        &self,
        spec: &mut ClassSpec,
        kind: FailureKind,
        f: &ScenarioFile,
    ) -> Weighted<usize> {
        let in_mix: Vec<(usize, f64)> = spec
            .causes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == kind && c.weight > 0.0)
            .map(|(i, c)| (i, c.weight))
            .collect();
        Weighted::new(in_mix).unwrap_or_else(|| {
            let i = self.cause_of_kind(spec, kind, f);
            Weighted::new(vec![(i, 1.0)]).expect("one positive weight")
        })
    }

    /// The index of the first cause of `kind` in the class, adding a zero-weight cause with
    /// the built-in templates when the mix has none.
    fn cause_of_kind(&self, spec: &mut ClassSpec, kind: FailureKind, f: &ScenarioFile) -> usize {
        if let Some(i) = spec.causes.iter().position(|c| c.kind == kind) {
            return i;
        }
        let mut id = format!("{}.{}", lower(spec.class), kind.as_str());
        while spec.causes.iter().any(|c| c.id == id) {
            // A mix entry named like this kind (but of another kind) took the plain id.
            id.push_str("-extra");
        }
        spec.causes.push(Cause {
            id,
            kind,
            weight: 0.0,
            templates: messages::builtin(spec.class, kind),
            truth: self.resolve_truth(spec.class, kind, f),
        });
        spec.causes.len() - 1
    }

    /// The base truth of (class, kind): `truth.<class>.<kind>`, `truth.<class>.any`,
    /// `truth.any.<kind>`, `truth.any.any`, then the built-in row; ESCALATION is 0.
    fn resolve_truth(&self, class: HardwareClass, kind: FailureKind, f: &ScenarioFile) -> Probs {
        let builtin = truth::builtin_success(kind);
        std::array::from_fn(|i| {
            let s = RecoveryStrategy::ALL[i];
            if s == RecoveryStrategy::Escalation {
                return 0.0;
            }
            let keys = [
                (ClassKey::Class(class), KindKey::Kind(kind)),
                (ClassKey::Class(class), KindKey::Any),
                (ClassKey::Any, KindKey::Kind(kind)),
                (ClassKey::Any, KindKey::Any),
            ];
            keys.iter()
                .find_map(|(c, k)| {
                    f.truth
                        .get(c)
                        .and_then(|m| m.get(k))
                        .and_then(|r| r.get(&s))
                })
                .copied()
                .unwrap_or(builtin[i])
        })
    }

    fn tasks(
        &self,
        base: &TasksRaw,
        over: Option<&TasksRaw>,
        lc: &str,
    ) -> Result<TaskProps, SimError> {
        let (prefix_over, prefix_base) = (format!("workers.{lc}.tasks"), "tasks".to_string());
        let pick = |o: Option<bool>| {
            if o == Some(true) {
                &prefix_over
            } else {
                &prefix_base
            }
        };
        let over_has = |f: fn(&TasksRaw) -> bool| over.map(f);

        let models_src = over
            .and_then(|o| o.models.as_ref())
            .or(base.models.as_ref());
        let prefix = pick(over_has(|t| t.models.is_some()));
        let models = match models_src {
            None => vec![(("model".to_string(), Vec::new()), 1.0)],
            Some(list) => {
                let mut out = Vec::new();
                for (i, m) in list.iter().enumerate() {
                    if m.name.trim().is_empty() {
                        return Err(
                            self.bad(format!("{prefix}.models[{i}].name"), "must not be empty")
                        );
                    }
                    let share =
                        self.non_negative(format!("{prefix}.models[{i}].share"), m.share)?;
                    out.push(((m.name.clone(), m.fallback.clone()), share));
                }
                out
            }
        };
        let models = Weighted::new(models)
            .ok_or_else(|| self.bad(format!("{prefix}.models"), "no model has a positive share"))?;

        let prefix = pick(over_has(|t| t.batch_sizes.is_some()));
        let batch_sizes = over
            .and_then(|o| o.batch_sizes.clone())
            .or_else(|| base.batch_sizes.clone())
            .unwrap_or_else(|| vec![32]);
        if batch_sizes.is_empty() {
            return Err(self.bad(format!("{prefix}.batch_sizes"), "must not be empty"));
        }
        if batch_sizes.contains(&0) {
            return Err(self.bad(
                format!("{prefix}.batch_sizes"),
                "every batch size must be at least 1",
            ));
        }

        let prefix = pick(over_has(|t| t.precisions.is_some()));
        let precisions_src = over
            .and_then(|o| o.precisions.as_ref())
            .or(base.precisions.as_ref());
        let precisions = match precisions_src {
            None => vec![(Precision::Fp32, 1.0)],
            Some(m) => {
                let mut out = Vec::new();
                for (p, share) in m {
                    out.push((
                        *p,
                        self.non_negative(format!("{prefix}.precisions.{p}"), *share)?,
                    ));
                }
                out
            }
        };
        let precisions = Weighted::new(precisions).ok_or_else(|| {
            self.bad(
                format!("{prefix}.precisions"),
                "no precision has a positive share",
            )
        })?;

        let prefix = pick(over_has(|t| t.checkpointing.is_some()));
        let checkpointing = over
            .and_then(|o| o.checkpointing)
            .or(base.checkpointing)
            .unwrap_or(1.0);
        let checkpointing = self.prob(format!("{prefix}.checkpointing"), checkpointing)?;
        Ok(TaskProps {
            models,
            batch_sizes,
            precisions,
            checkpointing,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Field paths ↔ lines
// ---------------------------------------------------------------------------------------

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Splits a dotted TOML key (`a."b".c`) into segments, as written (compared ignoring case).
fn key_segments(key: &str) -> Vec<String> {
    key.split('.')
        .map(|s| s.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Splits a field path (`failures.gpu[1].weight`) into segments (`failures`, `gpu`, `[1]`,
/// `weight`).
fn path_segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        while let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(rest[..i].to_string());
            }
            let j = rest[i..].find(']').map_or(rest.len(), |j| i + j + 1);
            out.push(rest[i..j].to_string());
            rest = &rest[j..];
        }
        if !rest.is_empty() {
            out.push(rest.to_string());
        }
    }
    out
}

fn is_plain_key(k: &str) -> bool {
    let k = k.trim();
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'' | ' '))
}

/// Every table header and key line with its full key path, in file order.
fn key_lines(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut header: Vec<String> = Vec::new();
    let mut arrays: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(inner) = line.strip_prefix("[[") {
            let name = inner.split("]]").next().unwrap_or("");
            let segs = key_segments(name);
            let n = arrays
                .entry(segs.iter().map(|s| s.to_ascii_lowercase()).collect())
                .or_insert(0);
            header = segs;
            header.push(format!("[{n}]"));
            *n += 1;
            out.push((i + 1, header.clone()));
        } else if let Some(inner) = line.strip_prefix('[') {
            let name = inner.split(']').next().unwrap_or("");
            if !is_plain_key(name) {
                continue;
            }
            header = key_segments(name);
            out.push((i + 1, header.clone()));
        } else if let Some((k, _)) = line.split_once('=') {
            if is_plain_key(k) {
                let mut p = header.clone();
                p.extend(key_segments(k));
                out.push((i + 1, p));
            }
        }
    }
    out
}

/// The line of the key or table that best matches a field path: the line whose key path is
/// the longest prefix of `field`; a field naming a whole array of tables (`failures.tpu`) is
/// at its first `[[failures.tpu]]`; a field only written through tables under it
/// (`truth.tpu` as `[truth.tpu.oom_gpu]`, an audit found it unnamed) at the first of them.
pub(crate) fn locate(text: &str, field: &str) -> Option<usize> {
    let want = path_segments(field);
    let mut best: Option<(usize, usize)> = None;
    let mut under: Option<usize> = None;
    for (line, mut p) in key_lines(text) {
        if under.is_none()
            && p.len() > want.len()
            && p.iter().zip(&want).all(|(a, b)| a.eq_ignore_ascii_case(b))
        {
            under = Some(line);
        }
        if p.len() == want.len() + 1 && p.last().is_some_and(|s| s == "[0]") {
            p.pop();
        }
        if p.len() <= want.len()
            && p.iter().zip(&want).all(|(a, b)| a.eq_ignore_ascii_case(b))
            && best.is_none_or(|(n, _)| p.len() > n)
        {
            best = Some((p.len(), line));
        }
    }
    // A prefix shorter than the field (a table above it) is less precise than the field's
    // own first table below.
    match (best, under) {
        (Some((n, l)), _) if n == want.len() => Some(l),
        (_, Some(l)) => Some(l),
        (b, None) => b.map(|(_, l)| l),
    }
}

/// The key path of the key on `line` (or of the nearest key line above it).
fn path_at_line(text: &str, line: usize) -> Option<String> {
    let lines = key_lines(text);
    let (_, segs) = lines.iter().rev().find(|(l, _)| *l <= line)?;
    let mut s = String::new();
    for seg in segs {
        if !seg.starts_with('[') && !s.is_empty() {
            s.push('.');
        }
        s.push_str(seg);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
name = "t"
[workers.gpu]
count = 4
failure_rate_per_hour = 1.0
memory_gib = 80

[[failures.gpu]]
kind = "oom_gpu"
weight = 1
"#;

    fn err(text: &str) -> String {
        Scenario::from_toml(text, "s.toml").unwrap_err().to_string()
    }

    /// Regression (scenario audit): parser messages named Rust types and gave no hint for a
    /// table written where an array of tables belongs.
    #[test]
    fn parser_messages_speak_the_scenarios_words() {
        let e = err("name = \"t\"\n[workers.gpu]\ncount = -4\nfailure_rate_per_hour = 1.0\n");
        assert!(
            e.contains("expected a whole number") && !e.contains("u32"),
            "{e}"
        );
        let e = err(
            "name = \"t\"\n[workers.gpu]\ncount = 4\nfailure_rate_per_hour = 1.0\n\n[failures.gpu]\nkind = \"oom_gpu\"\nweight = 1\n",
        );
        assert!(e.contains("[[failures.gpu]]"), "{e}");
    }

    /// Regressions (scenario audit): a truth for a kind the class never fails with, and a
    /// bad-worker share that rounds to no worker, were taken without a word; warned now (not
    /// refused: scenarios written before run as before).
    #[test]
    fn unused_truths_and_bad_worker_shares_of_nobody_are_warned_about() {
        let warned = |text: &str| Scenario::from_toml(text, "s.toml").unwrap().warnings;
        let w = warned(&format!(
            "{MIN}\n[truth.gpu.network]\nDIFFERENT_WORKER = 0.9\n"
        ));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("s.toml:12: truth.gpu.network")
                && w[0].contains("no cause of kind network"),
            "{w:?}"
        );
        // The class's own kind and `any` are used.
        for extra in [
            "\n[truth.gpu.oom_gpu]\nDIFFERENT_WORKER = 0.9\n",
            "\n[truth.gpu.any]\nDIFFERENT_WORKER = 0.9\n",
            "\n[truth.any.network]\nDIFFERENT_WORKER = 0.9\n",
        ] {
            assert_eq!(warned(&format!("{MIN}{extra}")), Vec::<String>::new());
        }
        let w = warned(&format!(
            "{MIN}\n[bad_workers.gpu]\nshare = 0.01\nrate_multiplier = 3\n"
        ));
        assert!(
            w.len() == 1
                && w[0].contains("bad_workers.gpu.share")
                && w[0].contains("rounds to no bad worker"),
            "{w:?}"
        );
        let w = warned(&format!(
            "{MIN}\n[bad_workers.gpu]\nshare = 0.25\nrate_multiplier = 3\n"
        ));
        assert_eq!(w, Vec::<String>::new());
    }

    #[test]
    fn minimal_scenario_is_accepted_with_defaults() {
        let s = Scenario::from_toml(MIN, "s.toml").unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.max_attempts, 10);
        let g = s.class(HardwareClass::Gpu).unwrap();
        assert_eq!(g.count, 4);
        assert_eq!(g.causes[0].id, "gpu.oom_gpu");
        assert_eq!(
            g.causes[0].truth,
            truth::builtin_success(FailureKind::OomGpu)
        );
        assert_eq!(g.tasks.batch_sizes, vec![32]);
        assert!(g.browsers.is_none());
    }

    #[test]
    fn a_typo_is_rejected_naming_field_and_line() {
        let e = err(&MIN.replace("count = 4", "cout = 4"));
        assert!(
            e.contains("s.toml:4") && e.contains("workers.gpu.cout"),
            "{e}"
        );
        assert!(e.contains("unknown field"), "{e}");
        let e = err(&format!("{MIN}\n[[bursts]]\nclass = \"gpu\"\nkind = \"network\"\nstart_h = 1\nduration_h = 1\nrate_per_hour = 5\nsucess_factor = 0.5\n"));
        assert!(e.contains("bursts[0].sucess_factor"), "{e}");
        let e = err(&MIN.replace("[workers.gpu]", "[workers.qpu]"));
        assert!(e.contains("QPU") || e.contains("qpu"), "{e}");
    }

    #[test]
    fn an_out_of_range_probability_is_rejected_naming_the_field() {
        let e = err(&format!(
            "{MIN}\n[truth.gpu.oom_gpu]\nREDUCED_BATCH_SIZE = 1.5\n"
        ));
        assert!(
            e.contains("truth.gpu.oom_gpu.REDUCED_BATCH_SIZE") && e.contains("s.toml:13"),
            "{e}"
        );
        let e = err(&format!("{MIN}truth = {{ DELAYED_RETRY = -0.1 }}\n"));
        assert!(e.contains("failures.gpu[0].truth.DELAYED_RETRY"), "{e}");
        let e = err(&format!("{MIN}\n[simulation]\npersistence = 2\n"));
        assert!(
            e.contains("simulation.persistence") && e.contains("s.toml:13"),
            "{e}"
        );
        let e = err(&format!(
            "{MIN}\n[bad_workers.gpu]\nshare = 1.2\nrate_multiplier = 3\n"
        ));
        assert!(e.contains("bad_workers.gpu.share"), "{e}");
    }

    #[test]
    fn drifts_are_checked_and_kept() {
        let d = "\n[[drifts]]\nclass = \"gpu\"\nkind = \"oom_gpu\"\nstrategy = \"REDUCED_BATCH_SIZE\"\nat_failure = 5\n";
        let sc = Scenario::from_toml(&format!("{MIN}{d}success = 0.2\n"), "s.toml").unwrap();
        assert_eq!(sc.drifts.len(), 1);
        assert_eq!(sc.drifts[0].strategy, RecoveryStrategy::ReducedBatchSize);
        assert_eq!(sc.drifts[0].at_failure, 5);
        let e = err(&format!("{MIN}{d}success = 1.2\n"));
        assert!(e.contains("drifts[0].success"), "{e}");
        let e = err(&format!(
            "{MIN}{}success = 0.2\n",
            d.replace("REDUCED_BATCH_SIZE", "ESCALATION")
        ));
        assert!(e.contains("drifts[0].strategy"), "{e}");
        let e = err(&format!(
            "{MIN}{}success = 0.2\n",
            d.replace("\"gpu\"", "\"tpu\"")
        ));
        assert!(e.contains("drifts[0].class"), "{e}");
        // Regression: a drift of a kind the class never fails with, and tables for a class
        // the fleet lacks, were accepted and changed nothing.
        let e = err(&format!(
            "{MIN}{}success = 0.2\n",
            d.replace("\"oom_gpu\"", "\"network\"")
        ));
        assert!(
            e.contains("drifts[0].kind") && e.contains("no cause of kind network"),
            "{e}"
        );
        for table in [
            "[truth.tpu.any]\nDELAYED_RETRY = 0.5\n",
            "[cost.tpu]\nDELAYED_RETRY = { seconds = 1 }\n",
            "[fixed.tpu]\nany = \"DELAYED_RETRY\"\n",
        ] {
            let e = err(&format!("{MIN}{table}"));
            assert!(e.contains("no workers of class TPU"), "{table}: {e}");
        }
    }

    /// The reference block of `data/scenarios/README.md` (every field) is a valid scenario, as
    /// its readers will copy it.
    #[test]
    fn the_readme_reference_scenario_is_valid() {
        let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/scenarios/README.md");
        let text = std::fs::read_to_string(&readme).unwrap();
        let start = text.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let block = &text[start..start + text[start..].find("```").unwrap()];
        let sc = Scenario::from_toml(block, "README.md").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sc.name, "my-fleet");
        assert_eq!(sc.bursts.len(), 1);
        assert_eq!(sc.drifts.len(), 1);
    }

    /// A burst takes the first cause of its kind in the mix, or the one it names.
    #[test]
    fn a_burst_names_its_cause_among_several_of_its_kind() {
        let mix = format!(
            "{MIN}[[failures.gpu]]\nkind = \"network\"\nname = \"switch\"\nweight = 1\n[[failures.gpu]]\nkind = \"network\"\nname = \"storage\"\nweight = 1\n"
        );
        let burst = |extra: &str| {
            format!("{mix}[[bursts]]\nclass = \"gpu\"\nkind = \"network\"\n{extra}start_h = 1\nduration_h = 1\nrate_per_hour = 10\n")
        };
        let cause_id = |text: &str| {
            let sc = Scenario::from_toml(text, "s.toml").unwrap();
            sc.classes[0].causes[sc.bursts[0].cause].id.clone()
        };
        assert_eq!(cause_id(&burst("")), "gpu.switch");
        assert_eq!(cause_id(&burst("cause = \"storage\"\n")), "gpu.storage");
        let e = err(&burst("cause = \"nope\"\n"));
        assert!(
            e.contains("bursts[0].cause") && e.contains("causes of kind network: switch, storage"),
            "{e}"
        );
        let e = err(&burst("cause = \"oom_gpu\"\n"));
        assert!(
            e.contains("is of kind oom_gpu, not the burst's network"),
            "{e}"
        );
    }

    /// Regression (simulator audit): `browsers = { chrome = 1, Chrome = 1 }` was accepted as
    /// two browsers, which rules and the engine (comparing names ignoring case) take for one;
    /// a name with surrounding spaces was accepted and never matched.
    #[test]
    fn a_browser_named_twice_or_with_spaces_is_refused() {
        let web = |browsers: &str| {
            format!(
                "{MIN}[workers.webgpu]\ncount = 2\nfailure_rate_per_hour = 1.0\n\
                 browsers = {{ {browsers} }}\n[[failures.webgpu]]\nkind = \"webgpu_context_lost\"\nweight = 1\n"
            )
        };
        let ok = Scenario::from_toml(&web("chrome = 2, firefox = 1, Edge = 1"), "s.toml");
        assert!(ok.is_ok(), "{:?}", ok.err().map(|e| e.to_string()));
        let e = err(&web("chrome = 1, Chrome = 1"));
        assert!(
            e.contains("workers.webgpu.browsers")
                && e.contains("\"Chrome\" and \"chrome\" name the same browser"),
            "{e}"
        );
        let e = err(&web("\" firefox\" = 1"));
        assert!(
            e.contains("workers.webgpu.browsers") && e.contains("surrounding spaces"),
            "{e}"
        );
    }

    /// Regression: `[workers.gpu]` and `[workers.GPU]` (or failures, bad workers...) were one
    /// class, the second table silently replacing the first.
    #[test]
    fn a_class_given_twice_in_another_case_is_refused() {
        let e = err(&format!(
            "{MIN}[workers.GPU]\ncount = 2\nfailure_rate_per_hour = 1.0\n"
        ));
        assert!(e.contains("class `GPU` is given twice"), "{e}");
        let e = err(&format!(
            "{MIN}[[failures.Gpu]]\nkind = \"network\"\nweight = 1\n"
        ));
        assert!(e.contains("is given twice"), "{e}");
        let e = err(&format!(
            "{MIN}[truth.gpu.any]\nDELAYED_RETRY = 0.5\n[truth.GPU.any]\nDELAYED_RETRY = 0.1\n"
        ));
        assert!(e.contains("is given twice"), "{e}");
    }

    /// Regression: a strategy, kind or precision given twice in one table in another case
    /// (`DIFFERENT_WORKER` and `different_worker`) was one key, one value silently replacing
    /// the other; only class keys were checked.
    #[test]
    fn a_strategy_kind_or_precision_given_twice_in_another_case_is_refused() {
        let cause = MIN.replace(
            "weight = 1\n",
            "weight = 1\ntruth = { DIFFERENT_WORKER = 0.9, different_worker = 0.1 }\n",
        );
        let e = err(&cause);
        assert!(
            e.contains("strategy `DIFFERENT_WORKER` is given twice"),
            "{e}"
        );
        let e = err(&format!(
            "{MIN}[truth.gpu.any]\nDELAYED_RETRY = 0.5\ndelayed_retry = 0.1\n"
        ));
        assert!(e.contains("strategy `DELAYED_RETRY` is given twice"), "{e}");
        let e = err(&format!(
            "{MIN}[truth.gpu.oom_gpu]\nDELAYED_RETRY = 0.5\n[truth.gpu.OOM_GPU]\nDELAYED_RETRY = 0.1\n"
        ));
        assert!(e.contains("kind `oom_gpu` is given twice"), "{e}");
        let e = err(&format!(
            "{MIN}[cost.gpu]\nDELAYED_RETRY = {{ seconds = 1 }}\nDelayed_Retry = {{ seconds = 2 }}\n"
        ));
        assert!(e.contains("strategy `DELAYED_RETRY` is given twice"), "{e}");
        let e = err(&format!(
            "{MIN}[tasks]\nprecisions = {{ fp16 = 0.5, FP16 = 0.5 }}\n"
        ));
        assert!(e.contains("is given twice"), "{e}");
        // One spelling each is fine.
        assert!(
            Scenario::from_toml(&cause.replace(", different_worker = 0.1", ""), "s.toml").is_ok()
        );
    }

    /// Regression: `{ seconds = 100 }` made the strategy's device-seconds 0; a field left out
    /// comes from `cost.any`, then the built-in table.
    #[test]
    fn a_partial_cost_takes_the_other_field_from_the_next_level() {
        let s = RecoveryStrategy::ReducedBatchSize;
        let builtin = truth::builtin_cost(s);
        let sc = Scenario::from_toml(
            &format!("{MIN}[cost.gpu]\nREDUCED_BATCH_SIZE = {{ seconds = 100 }}\n"),
            "s.toml",
        )
        .unwrap();
        let c = sc.classes[0].cost[s.index()];
        assert_eq!(
            (c.seconds, c.device_seconds),
            (100.0, builtin.device_seconds)
        );
        let sc = Scenario::from_toml(
            &format!(
                "{MIN}[cost.gpu]\nREDUCED_BATCH_SIZE = {{ seconds = 100 }}\n[cost.any]\nREDUCED_BATCH_SIZE = {{ seconds = 1, device_seconds = 7 }}\n"
            ),
            "s.toml",
        )
        .unwrap();
        let c = sc.classes[0].cost[s.index()];
        assert_eq!((c.seconds, c.device_seconds), (100.0, 7.0));
    }

    #[test]
    fn every_validation_error_names_its_field() {
        let cases: &[(&str, &str)] = &[
            ("count = 4", "count = 0"),
            (
                "failure_rate_per_hour = 1.0",
                "failure_rate_per_hour = -1.0",
            ),
            ("memory_gib = 80", "memory_gib = 0"),
            ("weight = 1", "weight = -1"),
            ("weight = 1", "weight = 1\nmessages = [\"{nope}\"]"),
            (
                "memory_gib = 80",
                "memory_gib = 80\nbrowsers = { chrome = 1.0 }",
            ),
        ];
        let fields = [
            "workers.gpu.count",
            "workers.gpu.failure_rate_per_hour",
            "workers.gpu.memory_gib",
            "failures.gpu[0].weight",
            "failures.gpu[0].messages[0]",
            "workers.gpu.browsers",
        ];
        for ((from, to), field) in cases.iter().zip(fields) {
            let e = err(&MIN.replace(from, to));
            assert!(e.contains(field), "{field}: {e}");
        }
        let e = err(&format!(
            "{MIN}\n[[failures.cpu]]\nkind = \"oom_host\"\nweight = 1\n"
        ));
        assert!(
            e.contains("failures.cpu") && e.contains("no workers"),
            "{e}"
        );
        let e = err(&format!(
            "{MIN}\n[workers.tpu]\ncount = 1\nfailure_rate_per_hour = 1\n"
        ));
        assert!(e.contains("failures.tpu") && e.contains("missing"), "{e}");
        let e = err(&format!(
            "{MIN}\n[cost.any]\nDELAYED_RETRY = {{ seconds = -1 }}\n"
        ));
        assert!(e.contains("cost.any.DELAYED_RETRY.seconds"), "{e}");
        let e = err(&format!("{MIN}\n[truth.any.any]\nESCALATION = 0.5\n"));
        assert!(e.contains("truth.any.any.ESCALATION"), "{e}");
        // Found by an audit: the field path was printed lowercased
        // (`truth.gpu.oom_gpu.reduced_batch`); it is as written.
        let e = err(&format!(
            "{MIN}\n[truth.gpu.oom_gpu]\nREDUCED_BATCH = 0.5\n"
        ));
        assert!(
            e.contains("truth.gpu.oom_gpu.REDUCED_BATCH:") && e.contains("s.toml:13"),
            "{e}"
        );
        let e = err("name = \"x\"\n");
        assert!(e.contains("workers") && e.contains("no workers"), "{e}");
        let e = err(&format!("{MIN}\n[[bursts]]\nclass = \"cpu\"\nkind = \"network\"\nstart_h = 1\nduration_h = 1\nrate_per_hour = 5\n"));
        assert!(e.contains("bursts[0].class"), "{e}");
        let e = err(&format!("{MIN}\n[tasks]\nbatch_sizes = [0]\n"));
        assert!(e.contains("tasks.batch_sizes"), "{e}");
        let e = err(&format!("{MIN}\n[simulation]\nmax_attempts = 0\n"));
        assert!(e.contains("simulation.max_attempts"), "{e}");
        // Regression (audit): 4,000,000,000 attempts kept the oracle running for billions
        // of failures on a cure that almost never works.
        let e = err(&format!("{MIN}\n[simulation]\nmax_attempts = 4000000000\n"));
        assert!(
            e.contains("simulation.max_attempts") && e.contains("above 1000"),
            "{e}"
        );
    }

    #[test]
    fn truth_resolves_from_the_most_specific_table() {
        let s = Scenario::from_toml(
            &format!(
                "{MIN}truth = {{ FALLBACK_CPU = 0.01 }}\n\n[truth.gpu.any]\nDELAYED_RETRY = 0.5\nREDUCED_PRECISION = 0.2\n[truth.any.oom_gpu]\nREDUCED_PRECISION = 0.9\nIMMEDIATE_RETRY = 0.3\n"
            ),
            "s.toml",
        )
        .unwrap();
        let p = &s.class(HardwareClass::Gpu).unwrap().causes[0].truth;
        use RecoveryStrategy as S;
        assert_eq!(p[S::FallbackCpu.index()], 0.01);
        assert_eq!(p[S::DelayedRetry.index()], 0.5);
        assert_eq!(p[S::ReducedPrecision.index()], 0.2);
        assert_eq!(p[S::ImmediateRetry.index()], 0.3);
        assert_eq!(p[S::ReducedBatchSize.index()], 0.85);
    }

    #[test]
    fn weighted_draws_skip_zero_weights() {
        use rand::SeedableRng;
        let w = Weighted::new(vec![('a', 1.0), ('b', 0.0), ('c', 1.0)]).unwrap();
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        for _ in 0..1000 {
            assert_ne!(*w.sample(&mut rng), 'b');
        }
        assert!(Weighted::new(vec![('a', 0.0)]).is_none());
        assert_eq!(w.weight(2), 1.0);
    }

    #[test]
    fn locate_finds_keys_headers_and_array_tables() {
        let t = "[a]\nx = 1\n[[b.c]]\ny = 2\n[[b.c]]\ny = 3\n";
        assert_eq!(locate(t, "a.x"), Some(2));
        assert_eq!(locate(t, "b.c[1].y"), Some(6));
        assert_eq!(locate(t, "b.c[0]"), Some(3));
        // A whole array of tables is at its first header (it named no line before).
        assert_eq!(locate(t, "b.c"), Some(3));
        assert_eq!(locate(t, "a.z"), Some(1));
        assert_eq!(locate(t, "q"), None);
        assert_eq!(path_at_line(t, 6).as_deref(), Some("b.c[1].y"));
        // A table written only through the tables under it is at the first of them (audit:
        // `truth.tpu` of `[truth.tpu.oom_gpu]` was named without a line).
        let t = "[workers.gpu]\ncount = 4\n[truth.tpu.oom_gpu]\nDELAYED_RETRY = 0.5\n";
        assert_eq!(locate(t, "truth.tpu"), Some(3));
        assert_eq!(locate(t, "workers.gpu.count"), Some(2));
    }

    #[test]
    fn read_errors_name_the_path() {
        let e = Scenario::load(Path::new("/nonexistent/dir/s.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read /nonexistent/dir/s.toml"), "{e}");
    }

    #[test]
    fn autotraits() {
        fn check<T: Send + Sync>() {}
        check::<Scenario>();
        check::<SimError>();
    }

    /// Review finding: of several drifts on one class, kind and strategy, the last in the file
    /// won, not the latest in force. They are sorted by `at_failure` (stably) when checked,
    /// so the simulator, which applies them in order, ends on the latest.
    #[test]
    fn drifts_are_sorted_so_the_latest_in_force_wins() {
        let drift = |at: u64, p: f64| {
            format!("[[drifts]]\nclass = \"gpu\"\nkind = \"oom_gpu\"\nstrategy = \"REDUCED_BATCH_SIZE\"\nat_failure = {at}\nsuccess = {p}\n")
        };
        let text = format!(
            "{MIN}{}{}{}",
            drift(200, 0.5),
            drift(100, 0.2),
            drift(100, 0.3)
        );
        let sc = Scenario::from_toml(&text, "s.toml").unwrap();
        let order: Vec<(u64, f64)> = sc
            .drifts
            .iter()
            .map(|d| (d.at_failure, d.success))
            .collect();
        assert_eq!(order, [(100, 0.2), (100, 0.3), (200, 0.5)]);
    }

    /// Review finding: `failure_rate_per_hour = 1e308` on two workers, or a `rate_multiplier`
    /// of 1e308, summed to an infinite rate, and the simulator looped forever. The total
    /// (multipliers and bursts included) is bounded, naming the field that breaks it.
    #[test]
    fn an_infinite_total_failure_rate_is_refused_naming_the_field() {
        let e = err(&MIN.replace(
            "failure_rate_per_hour = 1.0",
            "failure_rate_per_hour = 1e308",
        ));
        assert!(
            e.contains("workers.gpu.failure_rate_per_hour: 1e308 per worker per hour")
                && e.contains("total failure rate to inf, above 3.6e9 per hour"),
            "{e}"
        );
        let e = err(&format!(
            "{MIN}[bad_workers.gpu]\nshare = 0.5\nrate_multiplier = 1e308\n"
        ));
        assert!(
            e.contains("s.toml:13: bad_workers.gpu.rate_multiplier")
                && e.contains("total failure rate"),
            "{e}"
        );
        // Two classes each within the bound, but not together.
        let e = err(&format!(
            "{}[workers.cpu]\ncount = 1\nfailure_rate_per_hour = 2e9\n[[failures.cpu]]\nkind = \"timeout\"\nweight = 1\n",
            MIN.replace("failure_rate_per_hour = 1.0", "failure_rate_per_hour = 5e8")
        ));
        assert!(e.contains("workers.gpu.failure_rate_per_hour"), "{e}");
        let burst = |rate: &str| {
            format!("[[bursts]]\nclass = \"gpu\"\nkind = \"oom_gpu\"\nstart_h = 1\nduration_h = 1\nrate_per_hour = {rate}\n")
        };
        let e = err(&format!("{MIN}{}{}", burst("1e308"), burst("1e308")));
        assert!(
            e.contains("bursts[0].rate_per_hour") && e.contains("total failure rate"),
            "{e}"
        );
        let e = err(&format!("{MIN}{}{}", burst("3e9"), burst("1e9")));
        assert!(e.contains("bursts[1].rate_per_hour"), "{e}");
        assert!(Scenario::from_toml(&format!("{MIN}{}", burst("1e6")), "s.toml").is_ok());
    }

    /// Review finding: a burst's `start_h = 1e300` gave negative timestamps (the clock in
    /// microseconds saturated, then overflowed when added to the start) and a rate of 1e-300
    /// put every failure at the saturated end of the clock. Times stay within a 100-year
    /// horizon, naming the field.
    #[test]
    fn times_and_rates_beyond_the_horizon_are_refused_naming_the_field() {
        let burst = |start: &str, dur: &str| {
            format!("{MIN}[[bursts]]\nclass = \"gpu\"\nkind = \"oom_gpu\"\nstart_h = {start}\nduration_h = {dur}\nrate_per_hour = 10\n")
        };
        let e = err(&burst("1e300", "1"));
        assert!(
            e.contains("s.toml:14: bursts[0].start_h") && e.contains("horizon"),
            "{e}"
        );
        let e = err(&burst("876000", "1000"));
        assert!(
            e.contains("bursts[0].duration_h") && e.contains("horizon"),
            "{e}"
        );
        assert!(Scenario::from_toml(&burst("876000", "600"), "s.toml").is_ok());
        let e = err(&MIN.replace(
            "failure_rate_per_hour = 1.0",
            "failure_rate_per_hour = 1e-300",
        ));
        assert!(
            e.contains("workers.gpu.failure_rate_per_hour")
                && e.contains("less than one failure in 100 years"),
            "{e}"
        );
        // 0 is a class that never fails on its own (with a burst to fail at all).
        assert!(Scenario::from_toml(
            &burst("1", "1").replace("failure_rate_per_hour = 1.0", "failure_rate_per_hour = 0"),
            "s.toml"
        )
        .is_ok());
        let e = err(&format!("{MIN}[simulation]\nrefail_mean_s = 1e300\n"));
        assert!(
            e.contains("simulation.refail_mean_s") && e.contains("horizon"),
            "{e}"
        );
        let e = err(&format!(
            "{MIN}[cost.any]\nDELAYED_RETRY = {{ seconds = 1e300 }}\n"
        ));
        assert!(
            e.contains("cost.any.DELAYED_RETRY.seconds") && e.contains("horizon"),
            "{e}"
        );
        let e = err(&format!(
            "{MIN}[simulation]\nstart = \"9950-01-01T00:00:00Z\"\n"
        ));
        assert!(
            e.contains("simulation.start") && e.contains("9899-12-31"),
            "{e}"
        );
        assert!(Scenario::from_toml(
            &format!("{MIN}[simulation]\nstart = \"9899-12-31T00:00:00Z\"\n"),
            "s.toml"
        )
        .is_ok());
    }

    /// Review finding: `workers.<class>.count` had no upper bound; 4e9 workers aborted the
    /// process with an allocation failure.
    #[test]
    fn a_class_of_too_many_workers_is_refused_naming_the_field() {
        let e = err(&MIN.replace("count = 4", "count = 4000000000"));
        assert!(
            e.contains("s.toml:4: workers.gpu.count") && e.contains("1000000"),
            "{e}"
        );
        let sc =
            Scenario::from_toml(&MIN.replace("count = 4", "count = 1000000"), "s.toml").unwrap();
        assert_eq!(sc.classes[0].count, MAX_WORKERS_PER_CLASS);
    }
}
