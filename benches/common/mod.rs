//! Seeded synthetic failure rows for the features and cluster benchmarks: 200 workers over six
//! hardware classes (5 % of them failing six times as often), per-class message templates with
//! their kinds, tasks that fail again (attempts), exponential gaps of 1 s on average.

use faultline::model::{
    ErrorInfo, FailureKind, FailureRecord, HardwareClass, HardwareProfile, Precision, TaskId,
    TaskSpec, Timestamp, WorkerId,
};
use faultline::store::FailureRow;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// (class, workers, memory GiB, templates as (kind, template id)).
type ClassSpec = (HardwareClass, usize, f64, &'static [(FailureKind, u64)]);

const CLASSES: [ClassSpec; 6] = {
    use FailureKind as K;
    use HardwareClass as H;
    [
        (
            H::Gpu,
            80,
            80.0,
            &[
                (K::OomGpu, 1),
                (K::OomGpu, 2),
                (K::CudaError, 3),
                (K::GpuHardware, 4),
                (K::Timeout, 5),
                (K::Network, 6),
                (K::SoftwareException, 7),
            ],
        ),
        (
            H::Cpu,
            50,
            256.0,
            &[
                (K::OomHost, 10),
                (K::DiskFull, 11),
                (K::Network, 12),
                (K::SoftwareException, 13),
                (K::DataError, 14),
                (K::Timeout, 15),
            ],
        ),
        (
            H::Tpu,
            20,
            32.0,
            &[
                (K::TpuError, 20),
                (K::TpuError, 21),
                (K::Timeout, 22),
                (K::Network, 23),
            ],
        ),
        (
            H::Npu,
            10,
            16.0,
            &[
                (K::NpuError, 30),
                (K::OomHost, 31),
                (K::SoftwareException, 32),
            ],
        ),
        (
            H::Webgpu,
            24,
            8.0,
            &[
                (K::WebgpuContextLost, 40),
                (K::BrowserCrash, 41),
                (K::OomGpu, 42),
                (K::Network, 43),
            ],
        ),
        (
            H::Webnn,
            16,
            4.0,
            &[
                (K::BrowserCrash, 50),
                (K::SoftwareException, 51),
                (K::Network, 52),
            ],
        ),
    ]
};

struct Worker {
    id: WorkerId,
    class: usize,
    weight: f64,
}

fn pick<'a, T>(items: &'a [T], weight: impl Fn(&T) -> f64, rng: &mut Xoshiro256PlusPlus) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = rng.gen_range(0.0..total);
    for it in items {
        x -= weight(it);
        if x < 0.0 {
            return it;
        }
    }
    &items[items.len() - 1]
}

/// `n` failure rows in time order, the same for the same seed.
pub fn rows(n: usize, seed: u64) -> Vec<FailureRow> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut workers: Vec<Vec<Worker>> = Vec::new();
    for (c, (class, count, _, _)) in CLASSES.iter().enumerate() {
        workers.push(
            (0..*count)
                .map(|i| Worker {
                    id: WorkerId::new(&format!(
                        "worker-{}-{i:03}",
                        class.as_str().to_ascii_lowercase()
                    ))
                    .unwrap(),
                    class: c,
                    weight: if rng.gen_bool(0.05) { 6.0 } else { 1.0 },
                })
                .collect(),
        );
    }
    let class_weight = |c: &usize| CLASSES[*c].1 as f64;
    let classes: Vec<usize> = (0..CLASSES.len()).collect();
    // Recent tasks: (id, class, template index) — a task tends to fail the same way again.
    let mut recent: Vec<(TaskId, usize, usize)> = Vec::new();
    let mut next_task = 0u64;
    let mut t = 1_741_824_000.0; // 2025-03-13T00:00:00Z
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        t += -rng.gen_range(f64::EPSILON..1.0f64).ln();
        let (task, c, tpl) = if !recent.is_empty() && rng.gen_bool(0.35) {
            let (task, c, tpl) = &recent[rng.gen_range(0..recent.len())];
            let tpl = if rng.gen_bool(0.8) {
                *tpl
            } else {
                rng.gen_range(0..CLASSES[*c].3.len())
            };
            (task.clone(), *c, tpl)
        } else {
            let c = *pick(&classes, class_weight, &mut rng);
            let templates = CLASSES[c].3;
            // Earlier templates of a class are more frequent.
            let tpl = (rng.gen_range(0.0f64..1.0).powi(2) * templates.len() as f64) as usize;
            let task = TaskId::new(&format!("task-{next_task:07}")).unwrap();
            next_task += 1;
            if recent.len() < 256 {
                recent.push((task.clone(), c, tpl));
            } else {
                let i = rng.gen_range(0..recent.len());
                recent[i] = (task.clone(), c, tpl);
            }
            (task, c, tpl)
        };
        let (class, _, memory, templates) = CLASSES[c];
        let (kind, template_id) = templates[tpl.min(templates.len() - 1)];
        let worker = pick(&workers[c], |w| w.weight, &mut rng);
        debug_assert_eq!(worker.class, c);
        let mut task_spec = TaskSpec::default();
        task_spec.config.batch_size = Some(1 << rng.gen_range(0..9));
        task_spec.config.precision = Some(
            [
                Precision::Fp32,
                Precision::Fp16,
                Precision::Bf16,
                Precision::Int8,
            ][rng.gen_range(0..4)],
        );
        let mut hardware = HardwareProfile::of_class(class);
        hardware.memory_gib = Some(memory);
        out.push(FailureRow {
            record: FailureRecord {
                task_id: task,
                worker_id: worker.id.clone(),
                hardware,
                error: ErrorInfo {
                    message: String::new(),
                    ..Default::default()
                },
                timestamp: Timestamp::from_secs_f64(t),
                task: task_spec,
            },
            kind,
            failure_type: kind.failure_type(),
            classifier_rule: "synthetic".into(),
            xid: None,
            template_id: Some(template_id),
            cluster_id: None,
        });
    }
    out
}
