//! Ground truth of the simulator: the built-in success probability of every recovery
//! strategy per failure kind, the built-in cost of every strategy, and the state-dependent
//! true success probability ([`true_success`]) and oracle choice ([`oracle_choice`]).
//!
//! The built-in numbers are assumptions, not measurements: no public data gives recovery
//! success rates per strategy. They encode the mechanisms each strategy acts on (a smaller
//! batch cures an out-of-memory, waiting cures a transient network fault, nothing but a code
//! change cures a software bug, another worker cures a broken device) and are meant to be
//! overridden by scenarios. Vectors are indexed like [`RecoveryStrategy::ALL`]:
//!
//! | # | strategy | # | strategy |
//! |---|---|---|---|
//! | 0 | IMMEDIATE_RETRY | 6 | SIMPLIFIED_MODEL |
//! | 1 | DELAYED_RETRY | 7 | FALLBACK_CPU |
//! | 2 | DIFFERENT_WORKER | 8 | BROWSER_RESTART |
//! | 3 | DIFFERENT_HARDWARE_CLASS | 9 | SKIP_CHECKPOINTING |
//! | 4 | REDUCED_PRECISION | 10 | RESET_WORKER_STATE |
//! | 5 | REDUCED_BATCH_SIZE | 11 | ESCALATION (always 0) |

use serde::Serialize;

use crate::engine::mutate;
use crate::model::{FailureKind, HardwareClass, RecoveryStrategy, TaskConfig};

/// Number of recovery strategies.
pub const N: usize = 12;

/// One probability per strategy, indexed like [`RecoveryStrategy::ALL`].
pub type Probs = [f64; N];

/// What a recovery costs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cost {
    /// Wall-clock seconds until the task runs again (scheduling, restart, checkpoint reload;
    /// a retry's backoff delay is added on top). For ESCALATION: the time until a human acts.
    pub seconds: f64,
    /// Device-seconds the recovery consumes (work redone, reloads, slower hardware).
    pub device_seconds: f64,
}

use FailureKind as K;

/// The built-in success probabilities of every strategy for a failure of `kind` (before
/// scenario overrides and state). See the module docs for the index order.
pub fn builtin_success(kind: FailureKind) -> Probs {
    //   IR    DR    DW    DHC   RP    RBS   SM    FC    BR    SC    RWS   ESC
    match kind {
        // Memory: shrink the work; moving helps only when the new device has more room.
        K::OomGpu => [
            0.05, 0.08, 0.30, 0.35, 0.70, 0.85, 0.80, 0.40, 0.15, 0.05, 0.25, 0.0,
        ],
        K::OomHost => [
            0.05, 0.10, 0.45, 0.30, 0.45, 0.75, 0.70, 0.20, 0.30, 0.10, 0.30, 0.0,
        ],
        // A full disk belongs to the worker, or to the checkpoints the task writes.
        K::DiskFull => [
            0.02, 0.10, 0.80, 0.50, 0.05, 0.02, 0.10, 0.50, 0.05, 0.75, 0.60, 0.0,
        ],
        // CUDA runtime errors: often a bad device or context, sometimes transient.
        K::CudaError => [
            0.30, 0.40, 0.65, 0.50, 0.15, 0.10, 0.20, 0.55, 0.05, 0.05, 0.50, 0.0,
        ],
        // A hardware fault stays with the device: only leaving it helps.
        K::GpuHardware => [
            0.05, 0.10, 0.85, 0.60, 0.02, 0.02, 0.05, 0.50, 0.02, 0.02, 0.35, 0.0,
        ],
        K::TpuError => [
            0.20, 0.35, 0.70, 0.50, 0.25, 0.30, 0.30, 0.35, 0.02, 0.05, 0.40, 0.0,
        ],
        K::NpuError => [
            0.20, 0.35, 0.65, 0.50, 0.40, 0.30, 0.35, 0.45, 0.02, 0.05, 0.40, 0.0,
        ],
        // Browser GPU process lost the device: restarting the browser is the cure.
        K::WebgpuContextLost => [
            0.30, 0.45, 0.60, 0.50, 0.25, 0.30, 0.35, 0.70, 0.75, 0.02, 0.50, 0.0,
        ],
        K::BrowserCrash => [
            0.15, 0.20, 0.65, 0.45, 0.20, 0.25, 0.35, 0.60, 0.70, 0.02, 0.40, 0.0,
        ],
        // Timeouts and network faults are mostly transient: wait, then retry.
        K::Timeout => [
            0.35, 0.60, 0.55, 0.40, 0.20, 0.25, 0.30, 0.20, 0.10, 0.15, 0.30, 0.0,
        ],
        K::Network => [
            0.30, 0.65, 0.60, 0.40, 0.02, 0.02, 0.02, 0.30, 0.10, 0.05, 0.25, 0.0,
        ],
        // A bug or bad data: nothing automatic helps much; escalating early is right.
        K::SoftwareException => [
            0.08, 0.10, 0.12, 0.15, 0.08, 0.08, 0.15, 0.15, 0.05, 0.05, 0.10, 0.0,
        ],
        K::DataError => [
            0.05, 0.10, 0.15, 0.10, 0.02, 0.05, 0.05, 0.10, 0.02, 0.05, 0.05, 0.0,
        ],
        K::Unknown => [
            0.20, 0.30, 0.35, 0.30, 0.10, 0.10, 0.10, 0.25, 0.20, 0.05, 0.25, 0.0,
        ],
        // The worker died or vanished: another worker, or the same one once it is back.
        K::WorkerCrash => [
            0.10, 0.30, 0.90, 0.60, 0.02, 0.02, 0.02, 0.50, 0.10, 0.02, 0.40, 0.0,
        ],
        K::WorkerDisconnected => [
            0.05, 0.35, 0.90, 0.60, 0.02, 0.02, 0.02, 0.50, 0.05, 0.02, 0.20, 0.0,
        ],
        K::CoordinatorError => [
            0.40, 0.60, 0.40, 0.30, 0.02, 0.02, 0.02, 0.30, 0.05, 0.05, 0.20, 0.0,
        ],
    }
}

/// The built-in cost of a strategy (before scenario overrides).
pub fn builtin_cost(s: RecoveryStrategy) -> Cost {
    use RecoveryStrategy as S;
    let (seconds, device_seconds) = match s {
        S::ImmediateRetry => (30.0, 30.0),
        S::DelayedRetry => (30.0, 30.0),
        S::DifferentWorker => (120.0, 60.0),
        S::DifferentHardwareClass => (600.0, 600.0),
        S::ReducedPrecision => (60.0, 60.0),
        S::ReducedBatchSize => (60.0, 60.0),
        S::SimplifiedModel => (300.0, 300.0),
        S::FallbackCpu => (600.0, 3600.0),
        S::BrowserRestart => (20.0, 10.0),
        S::SkipCheckpointing => (30.0, 30.0),
        S::ResetWorkerState => (90.0, 60.0),
        S::Escalation => (3600.0, 0.0),
    };
    Cost {
        seconds,
        device_seconds,
    }
}

/// Whether the strategy keeps the task on the worker that failed.
pub fn stays_on_worker(s: RecoveryStrategy) -> bool {
    use RecoveryStrategy as S;
    !matches!(
        s,
        S::DifferentWorker | S::DifferentHardwareClass | S::FallbackCpu | S::Escalation
    )
}

/// Whether the strategy moves the task to another hardware class.
pub fn changes_class(s: RecoveryStrategy) -> bool {
    matches!(
        s,
        RecoveryStrategy::DifferentHardwareClass | RecoveryStrategy::FallbackCpu
    )
}

/// What a bad worker does to recoveries of its failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BadEffect {
    /// Multiplier of strategies that stay on the bad worker.
    pub same_worker_factor: f64,
    /// Lower bound of DIFFERENT_WORKER's success probability.
    pub different_worker_success: f64,
}

/// The state a true success probability depends on, besides the cause's base vector.
#[derive(Debug, Clone, Copy)]
pub struct TruthState<'a> {
    /// The cause's base probabilities (scenario overrides applied).
    pub base: &'a Probs,
    /// Hardware class of the failed worker.
    pub class: HardwareClass,
    /// The task's current configuration.
    pub config: &'a TaskConfig,
    /// Set when the failed worker is bad.
    pub bad_worker: Option<BadEffect>,
    /// Set while the failure's burst is active: its success factor.
    pub burst_factor: Option<f64>,
    /// Another worker of the class that the task has not failed on exists.
    pub other_worker: bool,
    /// The fleet has a CPU worker the task has not failed on.
    pub cpu_available: bool,
    /// The fleet has a worker of the class DIFFERENT_HARDWARE_CLASS moves to.
    pub fallback_class_available: bool,
}

/// Whether `s` can be carried out at all in this state: the engine's own test
/// ([`mutate::applicable`]: a batch to halve, a precision to lower, a browser to restart...),
/// plus room in the fleet for the strategies that move the task. ESCALATION is not a
/// recovery.
pub fn applicable(s: RecoveryStrategy, st: &TruthState<'_>) -> bool {
    use RecoveryStrategy as S;
    let room = match s {
        S::Escalation => false,
        S::DifferentWorker => st.other_worker,
        S::DifferentHardwareClass => st.fallback_class_available,
        S::FallbackCpu => st.cpu_available,
        _ => true,
    };
    room && mutate::applicable(s, st.class, st.config)
}

/// The true success probability of every strategy in this state: the base vector, then the
/// bad-worker effect, then the burst factor, then 0 for strategies that cannot apply.
/// Every value is in `[0, 1]`; ESCALATION is always 0.
pub fn true_success(st: &TruthState<'_>) -> Probs {
    let mut p = *st.base;
    for (i, s) in RecoveryStrategy::ALL.iter().enumerate() {
        let mut v = p[i];
        if let Some(bad) = st.bad_worker {
            if stays_on_worker(*s) {
                v *= bad.same_worker_factor;
            } else if *s == RecoveryStrategy::DifferentWorker {
                v = v.max(bad.different_worker_success);
            }
        }
        if let Some(f) = st.burst_factor {
            if !changes_class(*s) {
                v *= f;
            }
        }
        if !applicable(*s, st) {
            v = 0.0;
        }
        p[i] = if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
    p
}

/// The oracle's choice: the strategy with the highest true success probability, ties broken
/// by lower device-seconds, then lower seconds, then the order of [`RecoveryStrategy::ALL`];
/// ESCALATION when the task is past `max_attempts` or nothing can succeed.
pub fn oracle_choice(p: &Probs, cost: &[Cost; N], attempt: u32, max_attempts: u32) -> usize {
    let esc = N - 1;
    if attempt > max_attempts {
        return esc;
    }
    let mut best = esc;
    for i in 0..esc {
        if p[i] <= 0.0 {
            continue;
        }
        if best == esc {
            best = i;
            continue;
        }
        let key = |j: usize| (p[j], -cost[j].device_seconds, -cost[j].seconds);
        let (a, b) = (key(i), key(best));
        if a.0 > b.0 || (a.0 == b.0 && (a.1 > b.1 || (a.1 == b.1 && a.2 > b.2))) {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Precision;
    use proptest::prelude::*;
    use RecoveryStrategy as S;

    fn state<'a>(base: &'a Probs, class: HardwareClass, config: &'a TaskConfig) -> TruthState<'a> {
        TruthState {
            base,
            class,
            config,
            bad_worker: None,
            burst_factor: None,
            other_worker: true,
            cpu_available: true,
            fallback_class_available: true,
        }
    }

    #[test]
    fn index_order_matches_the_strategy_enum() {
        assert_eq!(RecoveryStrategy::ALL.len(), N);
        assert_eq!(RecoveryStrategy::ALL[5], S::ReducedBatchSize);
        assert_eq!(RecoveryStrategy::ALL[8], S::BrowserRestart);
        assert_eq!(RecoveryStrategy::ALL[N - 1], S::Escalation);
        for k in FailureKind::ALL {
            let p = builtin_success(*k);
            assert_eq!(p[N - 1], 0.0);
            assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn batch_reduction_cures_an_oom_only_while_the_batch_can_shrink() {
        let base = builtin_success(K::OomGpu);
        let mut c = TaskConfig {
            batch_size: Some(2),
            precision: Some(Precision::Fp16),
            ..Default::default()
        };
        let p = true_success(&state(&base, HardwareClass::Gpu, &c));
        assert_eq!(p[S::ReducedBatchSize.index()], 0.85);
        c.batch_size = Some(1);
        let p = true_success(&state(&base, HardwareClass::Gpu, &c));
        assert_eq!(p[S::ReducedBatchSize.index()], 0.0);
        assert_eq!(
            RecoveryStrategy::ALL[oracle_choice(&p, &[builtin_cost(S::Escalation); N], 1, 10)],
            S::ReducedPrecision
        );
    }

    #[test]
    fn browser_restart_does_nothing_off_a_browser() {
        let base = builtin_success(K::TpuError);
        let c = TaskConfig::default();
        assert_eq!(
            true_success(&state(&base, HardwareClass::Tpu, &c))[S::BrowserRestart.index()],
            0.0
        );
        let base = builtin_success(K::WebgpuContextLost);
        assert!(
            true_success(&state(&base, HardwareClass::Webgpu, &c))[S::BrowserRestart.index()] > 0.5
        );
    }

    #[test]
    fn a_bad_worker_makes_moving_much_better_than_staying() {
        let base = builtin_success(K::CudaError);
        let c = TaskConfig::default();
        let mut st = state(&base, HardwareClass::Gpu, &c);
        let good = true_success(&st);
        st.bad_worker = Some(BadEffect {
            same_worker_factor: 0.3,
            different_worker_success: 0.9,
        });
        let bad = true_success(&st);
        assert_eq!(bad[S::DifferentWorker.index()], 0.9);
        assert!(bad[S::DelayedRetry.index()] < good[S::DelayedRetry.index()]);
        let costs = [builtin_cost(S::DelayedRetry); N];
        assert_eq!(
            RecoveryStrategy::ALL[oracle_choice(&bad, &costs, 1, 10)],
            S::DifferentWorker
        );
    }

    #[test]
    fn the_oracle_escalates_past_the_limit_or_when_nothing_works() {
        let costs = [builtin_cost(S::DelayedRetry); N];
        let p = builtin_success(K::Network);
        assert_eq!(oracle_choice(&p, &costs, 11, 10), N - 1);
        assert_eq!(oracle_choice(&[0.0; N], &costs, 1, 10), N - 1);
        // Ties go to the cheaper strategy.
        let mut q = [0.0; N];
        q[S::DifferentWorker.index()] = 0.5;
        q[S::BrowserRestart.index()] = 0.5;
        let costs: [Cost; N] = std::array::from_fn(|i| builtin_cost(RecoveryStrategy::ALL[i]));
        assert_eq!(
            RecoveryStrategy::ALL[oracle_choice(&q, &costs, 1, 10)],
            S::BrowserRestart
        );
    }

    proptest! {
        #[test]
        fn true_probabilities_stay_in_the_unit_interval(
            base in proptest::array::uniform12(0.0f64..=1.0),
            same in 0.0f64..=1.0,
            diff in 0.0f64..=1.0,
            burst in proptest::option::of(0.0f64..=1.0),
            bad in any::<bool>(),
            bs in proptest::option::of(1u32..64),
            class in 0usize..11,
            flags in any::<(bool, bool, bool)>(),
        ) {
            let c = TaskConfig { batch_size: bs, ..Default::default() };
            let class = HardwareClass::ALL[class];
            let st = TruthState {
                base: &base,
                class,
                config: &c,
                bad_worker: bad.then_some(BadEffect { same_worker_factor: same, different_worker_success: diff }),
                burst_factor: burst,
                other_worker: flags.0,
                cpu_available: flags.1,
                fallback_class_available: flags.2,
            };
            let p = true_success(&st);
            prop_assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
            prop_assert_eq!(p[N - 1], 0.0);
            if !class.is_browser() {
                prop_assert_eq!(p[S::BrowserRestart.index()], 0.0);
            }
            if bs.unwrap_or(1) <= 1 {
                prop_assert_eq!(p[S::ReducedBatchSize.index()], 0.0);
            }
        }
    }
}
