//! Closed sets of the domain: hardware classes, failure kinds and types, recovery strategies,
//! precisions and task states.
//!
//! Every enum here serializes to one canonical name (the names of DESIGN.md) and parses
//! leniently: case-insensitive, `-` and `_` interchangeable, plus a few documented aliases.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An enum name that did not parse; names the set and lists the accepted names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{got}' (expected one of: {expected})")]
pub struct ParseEnumError {
    /// Which set was being parsed, e.g. "hardware class".
    pub what: &'static str,
    /// The text that was given.
    pub got: String,
    /// The canonical names, comma-separated.
    pub expected: String,
}

/// Whether `input` names `name`: ASCII case-insensitive, `-` and ` ` equal to `_`, surrounding
/// whitespace ignored. Allocation-free (enums are parsed on every record).
fn names_equal(input: &str, name: &str) -> bool {
    let fold = |b: u8| match b {
        b'-' | b' ' => b'_',
        b => b.to_ascii_lowercase(),
    };
    let input = input.trim().as_bytes();
    let name = name.as_bytes();
    input.len() == name.len() && input.iter().zip(name).all(|(a, b)| fold(*a) == fold(*b))
}

/// Defines a closed string enum with canonical names, aliases, `ALL`, `as_str`, `FromStr`,
/// `Display` and serde.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $canon:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),+ ];

            /// The canonical name.
            pub const fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $canon ),+ }
            }

            /// Position in [`Self::ALL`] (stable: used for one-hot features and tables).
            pub fn index(self) -> usize {
                self as usize
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(
                    if names_equal(s, $canon) $(|| names_equal(s, $alias))* {
                        return Ok($name::$variant);
                    }
                )+
                Err(ParseEnumError {
                    what: $what,
                    got: s.to_string(),
                    expected: [$($canon),+].join(", "),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // A visitor reads the name where it lies (no String per value).
                struct Name;
                impl serde::de::Visitor<'_> for Name {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        s.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(Name)
            }
        }
    };
}

string_enum! {
    /// The class of device a task runs on. Browsers are classes of their own (WEBGPU, WEBNN),
    /// so their ladders are reachable.
    HardwareClass, "hardware class" {
        /// General-purpose CPU.
        Cpu = "CPU",
        /// Discrete GPU (CUDA, ROCm, Metal).
        Gpu = "GPU" | "cuda" | "rocm",
        /// Google TPU.
        Tpu = "TPU",
        /// Neural processing unit (Ascend, Qualcomm, Apple Neural Engine...).
        Npu = "NPU",
        /// A browser running WebGPU.
        Webgpu = "WEBGPU",
        /// A browser running WebNN.
        Webnn = "WEBNN",
        /// Digital signal processor.
        Dsp = "DSP",
        /// FPGA.
        Fpga = "FPGA",
        /// Other ASIC.
        Asic = "ASIC",
        /// Mixed device.
        Hybrid = "HYBRID",
        /// Not reported.
        Unknown = "UNKNOWN",
    }
}

impl HardwareClass {
    /// Whether tasks on this class run inside a browser (so BROWSER_RESTART applies).
    pub fn is_browser(self) -> bool {
        matches!(self, HardwareClass::Webgpu | HardwareClass::Webnn)
    }

    /// The lowercase name used in hardware requirements (`{"hardware": ["cpu"]}`).
    pub fn requirement_name(self) -> &'static str {
        match self {
            HardwareClass::Cpu => "cpu",
            HardwareClass::Gpu => "cuda",
            HardwareClass::Tpu => "tpu",
            HardwareClass::Npu => "npu",
            HardwareClass::Webgpu => "webgpu",
            HardwareClass::Webnn => "webnn",
            HardwareClass::Dsp => "dsp",
            HardwareClass::Fpga => "fpga",
            HardwareClass::Asic => "asic",
            HardwareClass::Hybrid => "hybrid",
            HardwareClass::Unknown => "unknown",
        }
    }
}

string_enum! {
    /// Fine-grained failure kind: what `classify` returns. The names are the evaluation labels.
    FailureKind, "failure kind" {
        /// Accelerator (GPU or browser GPU) memory exhausted.
        OomGpu = "oom_gpu",
        /// Host memory exhausted (OOM killer, cgroup, shared memory).
        OomHost = "oom_host",
        /// Disk or ephemeral storage full.
        DiskFull = "disk_full",
        /// CUDA runtime/driver error that is not a memory exhaustion or a hardware fault.
        CudaError = "cuda_error",
        /// GPU hardware fault (Xid, ECC, fallen off the bus, NVLink).
        GpuHardware = "gpu_hardware",
        /// TPU runtime or hardware error.
        TpuError = "tpu_error",
        /// NPU runtime or hardware error.
        NpuError = "npu_error",
        /// WebGPU/WebGL device or context lost.
        WebgpuContextLost = "webgpu_context_lost",
        /// Browser or renderer process crashed.
        BrowserCrash = "browser_crash",
        /// An operation or job timed out.
        Timeout = "timeout",
        /// Network or collective-communication failure.
        Network = "network",
        /// A software bug or misconfiguration in the job.
        SoftwareException = "software_exception",
        /// Corrupt, truncated or unreadable input data.
        DataError = "data_error",
        /// Nothing recognised.
        Unknown = "unknown",
        /// A worker process crashed (reported by a coordinator).
        WorkerCrash = "worker_crash",
        /// A worker stopped answering (reported by a coordinator).
        WorkerDisconnected = "worker_disconnected",
        /// The coordinator itself failed.
        CoordinatorError = "coordinator_error",
    }
}

impl FailureKind {
    /// The coarse seed [`FailureType`] of this kind (without history; see
    /// [`FailureType::judge`]).
    pub fn failure_type(self) -> FailureType {
        use FailureKind as K;
        match self {
            K::OomGpu | K::OomHost | K::DiskFull => FailureType::ResourceExhaustion,
            K::CudaError | K::GpuHardware | K::TpuError | K::NpuError => FailureType::HardwareError,
            K::WebgpuContextLost | K::BrowserCrash => FailureType::BrowserFailure,
            K::Timeout => FailureType::Timeout,
            K::Network => FailureType::CommunicationError,
            K::SoftwareException | K::DataError => FailureType::SoftwareError,
            K::Unknown => FailureType::Unknown,
            K::WorkerCrash => FailureType::WorkerCrash,
            K::WorkerDisconnected => FailureType::WorkerDisconnection,
            K::CoordinatorError => FailureType::CoordinatorError,
        }
    }

    /// Whether this kind is a memory exhaustion (host or device).
    pub fn is_oom(self) -> bool {
        matches!(self, FailureKind::OomGpu | FailureKind::OomHost)
    }
}

string_enum! {
    /// The seed's 12 coarse failure types.
    FailureType, "failure type" {
        /// Hardware fault.
        HardwareError = "HARDWARE_ERROR",
        /// Software fault.
        SoftwareError = "SOFTWARE_ERROR",
        /// Memory or storage exhausted.
        ResourceExhaustion = "RESOURCE_EXHAUSTION",
        /// Timed out.
        Timeout = "TIMEOUT",
        /// Communication failure.
        CommunicationError = "COMMUNICATION_ERROR",
        /// Browser failure.
        BrowserFailure = "BROWSER_FAILURE",
        /// A failure that went away on retry (judged from history).
        TransientError = "TRANSIENT_ERROR",
        /// A failure that repeats for the same task (judged from history).
        PersistentError = "PERSISTENT_ERROR",
        /// Worker crashed.
        WorkerCrash = "WORKER_CRASH",
        /// Worker disconnected.
        WorkerDisconnection = "WORKER_DISCONNECTION",
        /// Coordinator failed.
        CoordinatorError = "COORDINATOR_ERROR",
        /// Not recognised.
        Unknown = "UNKNOWN",
    }
}

impl FailureType {
    /// Number of consecutive earlier failures of the same task with the same kind from which
    /// a failure counts as persistent.
    pub const PERSISTENT_AFTER: u32 = 2;

    /// The coarse type of `kind` judged against history: the same task failing the same way
    /// `PERSISTENT_AFTER` times in a row before this failure makes it `PERSISTENT_ERROR`; a
    /// failure whose previous same-kind failure was followed by a successful recovery is
    /// `TRANSIENT_ERROR`; otherwise the kind's own type.
    pub fn judge(kind: FailureKind, same_kind_streak: u32, recovered_before: bool) -> FailureType {
        if same_kind_streak >= Self::PERSISTENT_AFTER {
            FailureType::PersistentError
        } else if recovered_before {
            FailureType::TransientError
        } else {
            kind.failure_type()
        }
    }
}

string_enum! {
    /// The 12 recovery strategies of the seed; every one can be produced and applied.
    RecoveryStrategy, "recovery strategy" {
        /// Retry at once on the same worker.
        ImmediateRetry = "IMMEDIATE_RETRY",
        /// Retry on the same worker after a backoff delay.
        DelayedRetry = "DELAYED_RETRY",
        /// Retry on another worker, excluding the failed one(s).
        DifferentWorker = "DIFFERENT_WORKER",
        /// Retry on another hardware class.
        DifferentHardwareClass = "DIFFERENT_HARDWARE_CLASS",
        /// Retry with a lower numeric precision.
        ReducedPrecision = "REDUCED_PRECISION",
        /// Retry with a smaller batch.
        ReducedBatchSize = "REDUCED_BATCH_SIZE",
        /// Retry with a smaller variant of the model.
        SimplifiedModel = "SIMPLIFIED_MODEL",
        /// Retry on a CPU worker.
        FallbackCpu = "FALLBACK_CPU",
        /// Restart the worker's browser, then retry there.
        BrowserRestart = "BROWSER_RESTART",
        /// Retry with checkpointing switched off (checkpoint writes were failing).
        SkipCheckpointing = "SKIP_CHECKPOINTING",
        /// Reset the worker's state (caches, device), then retry there.
        ResetWorkerState = "RESET_WORKER_STATE",
        /// Hand the task to a human.
        Escalation = "ESCALATION",
    }
}

impl RecoveryStrategy {
    /// Whether the strategy is a plain retry (subject to the retry budget and backoff).
    pub fn is_retry(self) -> bool {
        matches!(
            self,
            RecoveryStrategy::ImmediateRetry | RecoveryStrategy::DelayedRetry
        )
    }
}

string_enum! {
    /// Numeric precision of a task, ordered from widest to narrowest.
    Precision, "precision" {
        /// 64-bit float.
        Fp64 = "fp64" | "float64" | "double",
        /// 32-bit float.
        Fp32 = "fp32" | "float32" | "float" | "full",
        /// Mixed precision (fp16/bf16 compute with fp32 master weights).
        Mixed = "mixed" | "amp",
        /// 16-bit float.
        Fp16 = "fp16" | "float16" | "half",
        /// bfloat16.
        Bf16 = "bf16" | "bfloat16",
        /// 8-bit float.
        Fp8 = "fp8",
        /// 8-bit integer.
        Int8 = "int8" | "i8" | "q8",
        /// 4-bit integer.
        Int4 = "int4" | "i4" | "q4",
    }
}

impl Precision {
    /// The next narrower precision on the ladder fp64/fp32 → fp16 (bf16 on TPU) → int8 → int4,
    /// or `None` at the bottom.
    pub fn reduced(self, prefer_bf16: bool) -> Option<Precision> {
        use Precision as P;
        match self {
            P::Fp64 => Some(P::Fp32),
            P::Fp32 | P::Mixed => Some(if prefer_bf16 { P::Bf16 } else { P::Fp16 }),
            P::Fp16 | P::Bf16 | P::Fp8 => Some(P::Int8),
            P::Int8 => Some(P::Int4),
            P::Int4 => None,
        }
    }
}

string_enum! {
    /// Lifecycle state of a task as the engine sees it.
    TaskState, "task state" {
        /// Known, not yet running.
        Pending = "pending",
        /// Running.
        Running = "running",
        /// Failed, a recovery action was issued and not yet reported on.
        Recovering = "recovering",
        /// Finished successfully (possibly after recoveries).
        Succeeded = "succeeded",
        /// Handed to a human.
        Escalated = "escalated",
        /// Given up.
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_parse_leniently() {
        for k in FailureKind::ALL {
            assert_eq!(k.as_str().parse::<FailureKind>().unwrap(), *k);
            let j = serde_json::to_string(k).unwrap();
            assert_eq!(serde_json::from_str::<FailureKind>(&j).unwrap(), *k);
        }
        for s in RecoveryStrategy::ALL {
            assert_eq!(s.as_str().parse::<RecoveryStrategy>().unwrap(), *s);
        }
        assert_eq!(
            "webgpu".parse::<HardwareClass>().unwrap(),
            HardwareClass::Webgpu
        );
        assert_eq!(
            "delayed-retry".parse::<RecoveryStrategy>().unwrap(),
            RecoveryStrategy::DelayedRetry
        );
        assert_eq!("half".parse::<Precision>().unwrap(), Precision::Fp16);
        assert_eq!(
            " gpu ".parse::<HardwareClass>().unwrap(),
            HardwareClass::Gpu
        );
        assert_eq!(
            "OOM-GPU".parse::<FailureKind>().unwrap(),
            FailureKind::OomGpu
        );
        assert!("oomgpu".parse::<FailureKind>().is_err());
        let e = "quantum".parse::<HardwareClass>().unwrap_err();
        assert!(e.to_string().contains("unknown hardware class 'quantum'"));
        assert!(e.to_string().contains("WEBGPU"));
    }

    #[test]
    fn exact_design_names() {
        let names: Vec<&str> = FailureKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "oom_gpu",
                "oom_host",
                "disk_full",
                "cuda_error",
                "gpu_hardware",
                "tpu_error",
                "npu_error",
                "webgpu_context_lost",
                "browser_crash",
                "timeout",
                "network",
                "software_exception",
                "data_error",
                "unknown",
                "worker_crash",
                "worker_disconnected",
                "coordinator_error"
            ]
        );
        assert_eq!(FailureType::ALL.len(), 12);
        assert_eq!(RecoveryStrategy::ALL.len(), 12);
    }

    #[test]
    fn every_kind_maps_to_a_type_and_history_judges() {
        assert_eq!(
            FailureKind::OomGpu.failure_type(),
            FailureType::ResourceExhaustion
        );
        assert_eq!(
            FailureKind::WorkerDisconnected.failure_type(),
            FailureType::WorkerDisconnection
        );
        assert_eq!(
            FailureType::judge(FailureKind::Network, 2, false),
            FailureType::PersistentError
        );
        assert_eq!(
            FailureType::judge(FailureKind::Network, 0, true),
            FailureType::TransientError
        );
        assert_eq!(
            FailureType::judge(FailureKind::Network, 1, false),
            FailureType::CommunicationError
        );
    }

    #[test]
    fn precision_ladder() {
        assert_eq!(Precision::Fp32.reduced(false), Some(Precision::Fp16));
        assert_eq!(Precision::Fp32.reduced(true), Some(Precision::Bf16));
        assert_eq!(Precision::Fp16.reduced(false), Some(Precision::Int8));
        assert_eq!(Precision::Bf16.reduced(false), Some(Precision::Int8));
        assert_eq!(Precision::Int8.reduced(false), Some(Precision::Int4));
        assert_eq!(Precision::Int4.reduced(false), None);
    }
}
