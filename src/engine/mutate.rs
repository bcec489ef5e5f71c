//! Task mutations: each returns a new configuration and never touches its input.

use crate::model::{HardwareClass, Precision, RecoveryStrategy, TaskConfig};

/// Halves the batch size (and every entry of `batch_sizes`), never below 1. `None` when
/// nothing can shrink (no batch known, or everything already at 1).
pub fn reduced_batch(config: &TaskConfig) -> Option<TaskConfig> {
    let single = config.batch_size.filter(|&b| b > 1);
    let list = config
        .batch_sizes
        .as_ref()
        .filter(|l| l.iter().any(|&b| b > 1));
    if single.is_none() && list.is_none() {
        return None;
    }
    let mut out = config.clone();
    if let Some(b) = single {
        out.batch_size = Some((b / 2).max(1));
    }
    if let Some(l) = list {
        out.batch_sizes = Some(l.iter().map(|&b| (b / 2).max(1)).collect());
    }
    Some(out)
}

/// Moves precision one step down the ladder fp32 → fp16 (bf16 on TPU) → int8 → int4. `None`
/// when the precision is unknown or already int4.
pub fn reduced_precision(config: &TaskConfig, class: HardwareClass) -> Option<TaskConfig> {
    let next = config
        .precision
        .and_then(|p| p.reduced(class == HardwareClass::Tpu))?;
    let mut out = config.clone();
    out.precision = Some(next);
    Some(out)
}

/// Switches to the first of `fallback_models`. `None` when there is none.
pub fn simplified_model(config: &TaskConfig) -> Option<TaskConfig> {
    let list = config.fallback_models.as_ref().filter(|l| !l.is_empty())?;
    let mut out = config.clone();
    out.model = Some(list[0].clone());
    out.fallback_models = Some(list[1..].to_vec());
    Some(out)
}

/// Switches checkpointing off. `None` when it already is.
pub fn without_checkpointing(config: &TaskConfig) -> Option<TaskConfig> {
    if config.checkpointing == Some(false) {
        return None;
    }
    let mut out = config.clone();
    out.checkpointing = Some(false);
    Some(out)
}

/// The class DIFFERENT_HARDWARE_CLASS moves to when the registry offers no better choice:
/// browsers swap WebGPU ↔ WebNN, TPU and NPU go to GPU, everything else to CPU. `None` for CPU.
pub fn fallback_class(class: HardwareClass) -> Option<HardwareClass> {
    use HardwareClass as H;
    match class {
        H::Cpu => None,
        H::Webgpu => Some(H::Webnn),
        H::Webnn => Some(H::Webgpu),
        H::Tpu | H::Npu => Some(H::Gpu),
        _ => Some(H::Cpu),
    }
}

/// Whether `s` can be carried out for a task in `config` on a worker of `class` (ESCALATION
/// always can). The engine skips inapplicable ladder steps and the ranking never proposes
/// them: no batch to halve, no precision to lower, BROWSER_RESTART off a browser, FALLBACK_CPU
/// on a CPU.
pub fn applicable(s: RecoveryStrategy, class: HardwareClass, config: &TaskConfig) -> bool {
    use RecoveryStrategy as S;
    if !crate::rules::can_carry_out(s, class) {
        return false;
    }
    match s {
        S::ReducedBatchSize => {
            config.batch_size.is_some_and(|b| b > 1)
                || config
                    .batch_sizes
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|&b| b > 1))
        }
        S::ReducedPrecision => config
            .precision
            .and_then(|p| p.reduced(class == HardwareClass::Tpu))
            .is_some(),
        S::SimplifiedModel => config
            .fallback_models
            .as_ref()
            .is_some_and(|l| !l.is_empty()),
        S::SkipCheckpointing => config.checkpointing != Some(false),
        // The class alone decides (above).
        S::BrowserRestart
        | S::FallbackCpu
        | S::DifferentHardwareClass
        | S::ImmediateRetry
        | S::DelayedRetry
        | S::DifferentWorker
        | S::ResetWorkerState
        | S::Escalation => true,
    }
}

/// Whether a precision is known to the ladder (used by tests and docs).
pub fn ladder_of(p: Precision, class: HardwareClass) -> Vec<Precision> {
    let mut out = vec![p];
    let mut cur = p;
    while let Some(n) = cur.reduced(class == HardwareClass::Tpu) {
        out.push(n);
        cur = n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(bs: Option<u32>, list: Option<Vec<u32>>, p: Option<Precision>) -> TaskConfig {
        TaskConfig {
            batch_size: bs,
            batch_sizes: list,
            precision: p,
            ..Default::default()
        }
    }

    #[test]
    fn seed_helpers() {
        assert_eq!(
            reduced_batch(&cfg(Some(16), None, None))
                .unwrap()
                .batch_size,
            Some(8)
        );
        assert_eq!(
            reduced_batch(&cfg(Some(8), None, None)).unwrap().batch_size,
            Some(4)
        );
        assert_eq!(
            reduced_batch(&cfg(None, Some(vec![16, 32, 64]), None))
                .unwrap()
                .batch_sizes,
            Some(vec![8, 16, 32])
        );
        assert_eq!(
            reduced_batch(&cfg(None, Some(vec![1, 3]), None))
                .unwrap()
                .batch_sizes,
            Some(vec![1, 1])
        );
        assert!(reduced_batch(&cfg(Some(1), None, None)).is_none());
        assert!(reduced_batch(&cfg(None, Some(vec![1, 1]), None)).is_none());
        assert!(reduced_batch(&cfg(None, None, None)).is_none());
        let g = HardwareClass::Gpu;
        assert_eq!(
            reduced_precision(&cfg(None, None, Some(Precision::Fp32)), g)
                .unwrap()
                .precision,
            Some(Precision::Fp16)
        );
        assert_eq!(
            reduced_precision(&cfg(None, None, Some(Precision::Fp16)), g)
                .unwrap()
                .precision,
            Some(Precision::Int8)
        );
        assert_eq!(
            reduced_precision(&cfg(None, None, Some(Precision::Fp32)), HardwareClass::Tpu)
                .unwrap()
                .precision,
            Some(Precision::Bf16)
        );
        assert!(reduced_precision(&cfg(None, None, Some(Precision::Int4)), g).is_none());
        assert!(reduced_precision(&cfg(None, None, None), g).is_none());
        assert_eq!(
            ladder_of(Precision::Fp32, g),
            [
                Precision::Fp32,
                Precision::Fp16,
                Precision::Int8,
                Precision::Int4
            ]
        );
    }

    #[test]
    fn simplified_and_checkpointing() {
        let c = TaskConfig {
            model: Some("llama-70b".into()),
            fallback_models: Some(vec!["llama-8b".into(), "llama-1b".into()]),
            ..Default::default()
        };
        let s = simplified_model(&c).unwrap();
        assert_eq!(s.model.as_deref(), Some("llama-8b"));
        assert_eq!(s.fallback_models, Some(vec!["llama-1b".to_string()]));
        assert!(simplified_model(&TaskConfig::default()).is_none());
        let n = without_checkpointing(&c).unwrap();
        assert_eq!(n.checkpointing, Some(false));
        assert!(without_checkpointing(&n).is_none());
    }

    proptest! {
        #[test]
        fn mutations_never_touch_the_input_and_never_go_below_one(
            bs in proptest::option::of(1u32..100_000),
            list in proptest::option::of(proptest::collection::vec(1u32..100_000, 0..6)),
            p in proptest::option::of(0usize..8),
        ) {
            let c = cfg(bs, list, p.map(|i| Precision::ALL[i]));
            let before = c.clone();
            if let Some(n) = reduced_batch(&c) {
                prop_assert!(n.batch_size.unwrap_or(1) >= 1);
                prop_assert!(n.batch_sizes.clone().unwrap_or_default().iter().all(|&b| b >= 1));
                prop_assert!(n.batch_size <= c.batch_size);
            }
            let _ = reduced_precision(&c, HardwareClass::Gpu);
            let _ = simplified_model(&c);
            let _ = without_checkpointing(&c);
            prop_assert_eq!(c, before);
        }
    }
}
