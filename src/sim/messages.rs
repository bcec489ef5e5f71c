//! Message templates: how a simulated failure reads. Each template is an error message in
//! the format its real source prints (PyTorch, NCCL, the NVIDIA driver, XLA, Ascend CANN,
//! Chrome/Dawn, the Linux OOM killer, Slurm), with `{placeholders}` the simulator fills in,
//! so that the classifier sees realistic text and the rules see realistic Xid codes.
//!
//! Placeholders: `{gib}` `{mib}` (an allocation), `{total_gib}` (the worker's memory),
//! `{free_mib}`, `{pci}` (PCI bus, two hex digits), `{pid}`, `{rank}`, `{gpu}` (device
//! ordinal), `{seq}`, `{ms}`, `{job}`, `{node}`, `{ip}`, `{port}`, `{offset}`, `{step}`,
//! `{worker}`, `{task}`, `{browser}`, `{model}`; `{{` and `}}` are literal braces.

use std::fmt::Write as _;

use rand::Rng;

use crate::model::{FailureKind, HardwareClass};

/// A placeholder of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Gib,
    Mib,
    TotalGib,
    FreeMib,
    Pci,
    Pid,
    Rank,
    Gpu,
    Seq,
    Ms,
    Job,
    Node,
    Ip,
    Port,
    Offset,
    Step,
    Worker,
    Task,
    Browser,
    Model,
}

const VARS: &[(&str, Var)] = &[
    ("gib", Var::Gib),
    ("mib", Var::Mib),
    ("total_gib", Var::TotalGib),
    ("free_mib", Var::FreeMib),
    ("pci", Var::Pci),
    ("pid", Var::Pid),
    ("rank", Var::Rank),
    ("gpu", Var::Gpu),
    ("seq", Var::Seq),
    ("ms", Var::Ms),
    ("job", Var::Job),
    ("node", Var::Node),
    ("ip", Var::Ip),
    ("port", Var::Port),
    ("offset", Var::Offset),
    ("step", Var::Step),
    ("worker", Var::Worker),
    ("task", Var::Task),
    ("browser", Var::Browser),
    ("model", Var::Model),
];

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Var(Var),
}

/// A parsed message template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    /// Exit code the failure reports, if any (137 for a kill by the OOM killer).
    pub exit_code: Option<i32>,
}

/// What a rendered message may mention about its failure.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Worker id.
    pub worker: &'a str,
    /// Task id.
    pub task: &'a str,
    /// Worker memory, GiB.
    pub memory_gib: Option<f64>,
    /// Browser name.
    pub browser: Option<&'a str>,
    /// Model name.
    pub model: Option<&'a str>,
}

impl Template {
    /// Parses a template; the error names the unknown placeholder or the unbalanced brace.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => name.push(ch),
                            None => return Err(format!("unclosed '{{{name}'")),
                        }
                    }
                    let var = VARS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| *v)
                        .ok_or_else(|| {
                            format!(
                                "unknown placeholder '{{{name}}}' (known: {})",
                                VARS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                            )
                        })?;
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(var));
                }
                '}' => return Err("unmatched '}' (write '}}' for a literal brace)".into()),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            parts,
            exit_code: None,
        })
    }

    /// Renders the template with values drawn from `rng`.
    pub fn render<R: Rng + ?Sized>(&self, facts: &Facts<'_>, rng: &mut R) -> String {
        let mut out = String::with_capacity(160);
        for p in &self.parts {
            // Writing to a String cannot fail.
            let _ = match p {
                Part::Lit(s) => {
                    out.push_str(s);
                    Ok(())
                }
                Part::Var(v) => match v {
                    Var::Gib => write!(out, "{:.2}", rng.gen_range(0.25..24.0)),
                    Var::Mib => write!(out, "{:.2}", rng.gen_range(2.0..1024.0)),
                    Var::TotalGib => {
                        write!(out, "{:.2}", facts.memory_gib.unwrap_or(16.0) * 0.985)
                    }
                    Var::FreeMib => write!(out, "{:.2}", rng.gen_range(1.0..600.0)),
                    Var::Pci => write!(out, "{:02x}", rng.gen_range(1u32..0xdf)),
                    Var::Pid => write!(out, "{}", rng.gen_range(1000u32..4_000_000)),
                    Var::Rank => write!(out, "{}", rng.gen_range(0u32..512)),
                    Var::Gpu => write!(out, "{}", rng.gen_range(0u32..8)),
                    Var::Seq => write!(out, "{}", rng.gen_range(1u32..200_000)),
                    Var::Ms => write!(out, "{}", rng.gen_range(600_000u32..600_200)),
                    Var::Job => write!(out, "{}", rng.gen_range(1_000_000u32..9_999_999)),
                    Var::Node => write!(out, "node{:03}", rng.gen_range(0u32..512)),
                    Var::Ip => write!(
                        out,
                        "10.{}.{}.{}",
                        rng.gen_range(0u32..256),
                        rng.gen_range(0u32..256),
                        rng.gen_range(1u32..255)
                    ),
                    Var::Port => write!(out, "{}", rng.gen_range(20_000u32..65_000)),
                    Var::Offset => write!(out, "{}", rng.gen_range(1_000_000u64..2_000_000_000)),
                    Var::Step => write!(out, "{}", rng.gen_range(100u32..200_000)),
                    Var::Worker => {
                        out.push_str(facts.worker);
                        Ok(())
                    }
                    Var::Task => {
                        out.push_str(facts.task);
                        Ok(())
                    }
                    Var::Browser => {
                        out.push_str(facts.browser.unwrap_or("chrome"));
                        Ok(())
                    }
                    Var::Model => {
                        out.push_str(facts.model.unwrap_or("model"));
                        Ok(())
                    }
                },
            };
        }
        out
    }
}

/// The built-in templates for a failure of `kind` on `class`: used when a scenario's
/// failure-mix entry gives no `messages`. Sources are the public formats of the respective
/// software (see each line).
pub fn builtin(class: HardwareClass, kind: FailureKind) -> Vec<Template> {
    use FailureKind as K;
    use HardwareClass as H;
    let browser = class.is_browser();
    let texts: &[&str] = match kind {
        // PyTorch's caching allocator (2.x and 1.x wordings); Dawn's Vulkan backend in Chrome.
        K::OomGpu if browser => &[
            "vkAllocateMemory failed with VK_ERROR_OUT_OF_DEVICE_MEMORY at CheckVkOOMThenSuccessImpl",
        ],
        K::OomGpu => &[
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {gib} GiB. GPU {gpu} has a total capacity of {total_gib} GiB of which {free_mib} MiB is free.",
            "RuntimeError: CUDA out of memory. Tried to allocate {mib} MiB (GPU {gpu}; {total_gib} GiB total capacity; {free_mib} MiB free)",
        ],
        // Linux OOM killer (killing the browser), PyTorch DataLoader shared memory, Slurm.
        K::OomHost if browser => &[
            "Out of memory: Killed process {pid} ({browser}) total-vm:{offset}kB, anon-rss:{offset}kB",
        ],
        K::OomHost => &[
            "Out of memory: Killed process {pid} (python) total-vm:{offset}kB, anon-rss:{offset}kB",
            "RuntimeError: DataLoader worker (pid {pid}) is killed by signal: Bus error. It is possible that dataloader's workers are out of shared memory. Please try to raise your shared memory limit.",
            "slurmstepd: error: Detected 1 oom_kill event in StepId={job}.0. Some of the step tasks have been OOM Killed.",
        ],
        // A browser's storage quota (the DOMException of IndexedDB and the Cache API).
        K::DiskFull if browser => &[
            "QuotaExceededError: Failed to execute 'put' on 'IDBObjectStore': The quota has been exceeded.",
        ],
        K::DiskFull => &[
            "OSError: [Errno 28] No space left on device: '/checkpoints/{task}/step_{step}.pt'",
        ],
        // cudaGetErrorString texts as PyTorch prints them.
        K::CudaError => &[
            "RuntimeError: CUDA error: unspecified launch failure",
            "RuntimeError: CUDA error: misaligned address",
            "RuntimeError: CUDA error: too many resources requested for launch",
        ],
        // NVIDIA driver (NVRM) Xid lines and the CUDA ECC error.
        K::GpuHardware => &[
            "NVRM: Xid (PCI:0000:{pci}:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
            "NVRM: Xid (PCI:0000:{pci}:00): 48, pid={pid}, name=python3, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer.",
            "RuntimeError: CUDA error: uncorrectable ECC error encountered",
            "NVRM: Xid (PCI:0000:{pci}:00): 95, pid={pid}, name=python3, Uncontained: SRAM uncorrectable ECC error.",
        ],
        // XLA / libtpu.
        K::TpuError => &[
            "RuntimeError: Unable to initialize backend 'tpu': ABORTED: The TPU is already in use by process with pid {pid}. Not attempting to load libtpu.so in this process.",
        ],
        // Ascend CANN runtime.
        K::NpuError => &[
            "rtGetDevMsg execute failed, reason=[driver error:internal error][FUNC:FuncErrorReason][FILE:error_message_manage.cc][LINE:53]",
        ],
        // Dawn (Chrome's WebGPU), WebGL; the WebNN API's lost MLContext.
        K::WebgpuContextLost if class == H::Webnn => &[
            "OperationError: Failed to execute 'compute' on 'MLContext': The context is lost.",
        ],
        K::WebgpuContextLost => &[
            "WebGPU device was lost: ID3D12Device::GetDeviceRemovedReason failed with DXGI_ERROR_DEVICE_HUNG (0x887A0006)",
            "WebGL: CONTEXT_LOST_WEBGL: loseContext: context lost",
        ],
        // Chrome's crash page.
        K::BrowserCrash => &[
            "Aw, Snap! Something went wrong while displaying this web page. Error code: STATUS_ACCESS_VIOLATION",
        ],
        // Each class's own collective library or scheduler: Slurm's time limit on CPUs, the
        // NCCL watchdog on GPUs, torch_npu's HCCL watchdog on Ascend NPUs, a Kubernetes Job's
        // deadline (GKE) on TPUs, `AbortSignal.timeout` in a browser.
        K::Timeout if class == H::Cpu => &[
            "slurmstepd: error: *** JOB {job} ON {node} CANCELLED AT 2026-11-01T00:00:00 DUE TO TIME LIMIT ***",
        ],
        K::Timeout if class == H::Tpu => &[
            "Job {job} has failed: DeadlineExceeded: Job was active longer than specified deadline",
        ],
        K::Timeout if class == H::Npu => &[
            "[Rank {rank}] Watchdog caught collective operation timeout: WorkHCCL(SeqNum={seq}, OpType=ALLREDUCE, Timeout(ms)=600000) ran for {ms} milliseconds before timing out.",
        ],
        K::Timeout if browser => &["TimeoutError: signal timed out"],
        K::Timeout => &[
            "[Rank {rank}] Watchdog caught collective operation timeout: WorkNCCL(SeqNum={seq}, OpType=ALLREDUCE, Timeout(ms)=600000) ran for {ms} milliseconds before timing out.",
        ],
        // NCCL on GPUs; gloo on CPUs; JAX's gRPC coordination service on TPUs; PyTorch's
        // TCPStore rendezvous on NPUs; Chrome's fetch in a browser.
        K::Network if class == H::Cpu => &[
            "RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:598] Connection closed by peer [{ip}]:{port}",
        ],
        K::Network if class == H::Tpu => &[
            "Failed to connect to coordination service: UNAVAILABLE: failed to connect to all addresses; last error: UNKNOWN: ipv4:{ip}:{port}: Failed to connect to remote host: Connection refused",
        ],
        K::Network if class == H::Npu => &[
            "torch.distributed.DistNetworkError: The client socket has timed out after 1800s while trying to connect to ({ip}, {port}).",
        ],
        K::Network if browser => &["TypeError: Failed to fetch", "net::ERR_CONNECTION_RESET"],
        K::Network => &[
            "NCCL WARN NET/IB : Got completion from peer {ip}<{port}> with error 12, opcode 0, len 0, vendor err 129 (Recv)",
            "remote process exited or there was a network error",
            "NET/Socket : socket progress error",
        ],
        K::SoftwareException if browser => &[
            "Error: no available backend found. ERR: [webgpu] RuntimeError: null function or function signature mismatch",
        ],
        // A bug in the job: Python on CPUs, JAX on TPUs, tensors left on the host for an NPU
        // (torch_npu) or a GPU; NCCL's misuse report on GPUs.
        K::SoftwareException if class == H::Cpu => &[
            "AttributeError: 'NoneType' object has no attribute 'shape'",
            "TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'",
        ],
        K::SoftwareException if class == H::Tpu => &[
            "TypeError: Argument 'x' of type <class 'list'> is not a valid JAX type",
        ],
        K::SoftwareException if class == H::Npu => &[
            "RuntimeError: Expected all tensors to be on the same device, but found at least two devices, npu:0 and cpu!",
        ],
        K::SoftwareException => &[
            "RuntimeError: Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!",
            "invalid argument (run with NCCL_DEBUG=WARN for details)",
        ],
        K::DataError => &[
            "tensorflow.python.framework.errors_impl.DataLossError: corrupted record at {offset}",
        ],
        // An unhandled rejection with no reason (a browser); a PyTorch data loader's death.
        K::Unknown if browser => &["Uncaught (in promise) undefined"],
        K::Unknown => &["RuntimeError: DataLoader worker (pid(s) {pid}) exited unexpectedly"],
        // Events a coordinator reports (the record's error.type carries the kind as well).
        K::WorkerCrash => &["worker {worker} exited unexpectedly: host hardware fault, node rebooted"],
        K::WorkerDisconnected => {
            &["worker {worker} disconnected: node drained for unplanned host maintenance"]
        }
        K::CoordinatorError => &["coordinator error: scheduler state store unavailable"],
    };
    texts
        .iter()
        .map(|t| {
            // The built-in texts are tested to parse.
            let mut tpl = Template::parse(t).expect("built-in template parses");
            if t.contains("OOM Killed") {
                tpl.exit_code = Some(137);
            }
            tpl
        })
        .collect()
}

/// Whether failures of `kind` are reported by a coordinator rather than by the job (their
/// record carries the kind as `error.type`).
pub fn coordinator_reported(kind: FailureKind) -> bool {
    matches!(
        kind,
        FailureKind::WorkerCrash | FailureKind::WorkerDisconnected | FailureKind::CoordinatorError
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{Classifier, ClassifyInput};
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn facts() -> Facts<'static> {
        Facts {
            worker: "gpu-0001",
            task: "task-000001",
            memory_gib: Some(80.0),
            browser: Some("chrome"),
            model: Some("llama-3-8b"),
        }
    }

    #[test]
    fn placeholders_render_and_errors_name_the_problem() {
        let t = Template::parse("a {worker} {{x}} {gib} GiB").unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let s = t.render(&facts(), &mut rng);
        assert!(s.starts_with("a gpu-0001 {x} "), "{s}");
        assert!(s.ends_with(" GiB"));
        let e = Template::parse("{gibs}").unwrap_err();
        assert!(e.contains("unknown placeholder '{gibs}'"), "{e}");
        assert!(Template::parse("{gib").unwrap_err().contains("unclosed"));
        assert!(Template::parse("x}").unwrap_err().contains("unmatched"));
    }

    #[test]
    fn every_kind_has_builtin_templates_on_every_class() {
        for c in HardwareClass::ALL {
            for k in FailureKind::ALL {
                assert!(!builtin(*c, *k).is_empty(), "{c} {k}");
            }
        }
    }

    /// The built-in templates are recognised by the classifier as the kind they simulate.
    /// (Fails while `classify` is a stub that answers `unknown`.)
    #[test]
    fn builtin_templates_classify_as_their_kind() {
        let cls = Classifier::new();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut wrong = Vec::new();
        for c in [
            HardwareClass::Cpu,
            HardwareClass::Gpu,
            HardwareClass::Tpu,
            HardwareClass::Npu,
            HardwareClass::Webgpu,
            HardwareClass::Webnn,
        ] {
            for k in FailureKind::ALL {
                for t in builtin(c, *k) {
                    let msg = t.render(&facts(), &mut rng);
                    let got = cls.classify(&ClassifyInput {
                        message: &msg,
                        type_hint: coordinator_reported(*k).then_some(k.as_str()),
                        exit_code: t.exit_code,
                        stacktrace: None,
                        hardware: Some(c),
                    });
                    if got.kind != *k {
                        wrong.push(format!("{c} {k} → {}: {msg}", got.kind));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
    }

    /// A failure any class can have reads like that class's own software stack: no NCCL
    /// watchdog on a TPU, no CUDA device in an NPU job, no Python traceback in a browser.
    #[test]
    fn builtin_templates_of_shared_kinds_name_only_their_own_stack() {
        use FailureKind as K;
        use HardwareClass as H;
        let foreign: &[(H, &[&str])] = &[
            (
                H::Cpu,
                &["nccl", "cuda", "npu", "hccl", "xla", "jax", "webgpu"],
            ),
            (H::Gpu, &["npu", "hccl", "xla", "jax", "webgpu"]),
            (H::Tpu, &["nccl", "cuda", "npu", "hccl", "webgpu"]),
            (H::Npu, &["nccl", "cuda", "xla", "jax", "webgpu"]),
            (
                H::Webgpu,
                &[
                    "nccl",
                    "cuda",
                    "npu",
                    "hccl",
                    "xla",
                    "jax",
                    "python",
                    "pytorch",
                    "dataloader",
                ],
            ),
            (
                H::Webnn,
                &[
                    "nccl",
                    "cuda",
                    "npu",
                    "hccl",
                    "xla",
                    "jax",
                    "python",
                    "pytorch",
                    "dataloader",
                ],
            ),
        ];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut wrong = Vec::new();
        for (c, words) in foreign {
            for k in [
                K::Timeout,
                K::Network,
                K::SoftwareException,
                K::DiskFull,
                K::Unknown,
            ] {
                for t in builtin(*c, k) {
                    let msg = t.render(&facts(), &mut rng).to_lowercase();
                    if let Some(w) = words.iter().find(|w| msg.contains(*w)) {
                        wrong.push(format!("{c} {k} names '{w}': {msg}"));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "another stack's text:\n{}",
            wrong.join("\n")
        );
    }
}
