//! The pattern table: what each family of real failure messages means.
//!
//! [`RULES`] is data, not code: one row per message family, each with an id, what it decides
//! (a fixed [`FailureKind`], a kind that depends on the worker's hardware class, an NVIDIA
//! Xid/SXid code lookup, or nothing of its own — an [`Decide::Incidental`] report), a
//! case-insensitive regex and a note saying why. The classifier runs all patterns at once and
//! the **lowest-index matching row wins**, so rows are ordered from the specific to the
//! generic: NVIDIA Xid/SXid lines first (their free text must not decide); the host's hardware
//! reports, which decide only when nothing below reads the rest of the message; GPU hardware
//! faults (ECC, NVLink, fallen off the bus) before any CUDA wording; the NCCL watchdog timeout;
//! WebGPU/WebGL context loss, then devices lost in other words, and browser crashes before
//! memory wording (Chrome's "Aw, Snap! Out of memory" is a crash); the kernel OOM killer and
//! named-device memory errors before the NCCL result strings that wrap them; "CUDA out of
//! memory" before "CUDA error"; coordinator-reported kinds before generic network wording;
//! network before timeouts (a connect timeout is a network failure); and the weak
//! cascade/wrapper rows and the catch-alls last.
//!
//! Pattern conventions: patterns are matched on bytes, ASCII case-insensitively, `.` matches any
//! byte (newlines too), `\b` is an ASCII word boundary. Write them in lowercase. A pattern may
//! name a group `neg` (a negation before the words: "*no* ECC errors") or `nil` (a zero count
//! after them: "DBE count*: 0*"): a match in which either took part reports that nothing
//! happened and does not count — a row with no other match is passed over, as if it had not
//! matched.
//!
//! [`TYPE_HINTS`] and [`EXIT_CODES`] are the smaller tables consulted when no row recognises the
//! message (or its stack trace).

use crate::model::{FailureKind, HardwareClass};

use FailureKind as K;

/// A kind that depends on the hardware class of the worker that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByHardware {
    /// Name of the mapping (shown in notes and docs).
    pub name: &'static str,
    /// Kind on a discrete GPU.
    pub gpu: FailureKind,
    /// Kind on a CPU worker.
    pub cpu: FailureKind,
    /// Kind on a TPU.
    pub tpu: FailureKind,
    /// Kind on an NPU.
    pub npu: FailureKind,
    /// Kind in a browser (WebGPU or WebNN).
    pub browser: FailureKind,
    /// Kind when the class is unknown or another one (DSP, FPGA, ASIC, hybrid).
    pub other: FailureKind,
}

impl ByHardware {
    /// The kind for a worker of class `hardware` (`None` = not reported).
    pub fn resolve(&self, hardware: Option<HardwareClass>) -> FailureKind {
        match hardware {
            Some(HardwareClass::Gpu) => self.gpu,
            Some(HardwareClass::Cpu) => self.cpu,
            Some(HardwareClass::Tpu) => self.tpu,
            Some(HardwareClass::Npu) => self.npu,
            Some(HardwareClass::Webgpu | HardwareClass::Webnn) => self.browser,
            _ => self.other,
        }
    }
}

/// Memory exhausted, device unknown from the text: the accelerator's memory on GPU and in a
/// browser, host memory on CPU, the TPU/NPU runtime's own error on those.
pub static MEMORY: ByHardware = ByHardware {
    name: "memory",
    gpu: K::OomGpu,
    cpu: K::OomHost,
    tpu: K::TpuError,
    npu: K::NpuError,
    browser: K::OomGpu,
    other: K::OomGpu,
};

/// XLA's `RESOURCE_EXHAUSTED`: as [`MEMORY`], but most XLA jobs of unknown class are TPU jobs.
pub static XLA_MEMORY: ByHardware = ByHardware {
    name: "xla-memory",
    other: K::TpuError,
    ..MEMORY
};

/// An XLA runtime/compiler error: the accelerator runtime's error kind.
pub static XLA_RUNTIME: ByHardware = ByHardware {
    name: "xla-runtime",
    gpu: K::CudaError,
    cpu: K::SoftwareException,
    tpu: K::TpuError,
    npu: K::NpuError,
    browser: K::SoftwareException,
    other: K::TpuError,
};

/// A bare runtime status string ("invalid argument", "initialization error"): a CUDA runtime
/// error on a GPU (these are `cudaGetErrorString` texts), a usage error elsewhere.
pub static API_STATUS: ByHardware = ByHardware {
    name: "api-status",
    gpu: K::CudaError,
    cpu: K::SoftwareException,
    tpu: K::SoftwareException,
    npu: K::SoftwareException,
    browser: K::SoftwareException,
    other: K::SoftwareException,
};

/// "A hardware error" reported without detail: the device's own kind.
pub static HARDWARE: ByHardware = ByHardware {
    name: "hardware",
    gpu: K::GpuHardware,
    cpu: K::Unknown,
    tpu: K::TpuError,
    npu: K::NpuError,
    browser: K::WebgpuContextLost,
    other: K::Unknown,
};

/// A device or context lost without naming the browser ("device was lost", Vulkan's
/// `VK_ERROR_DEVICE_LOST`, D3D12's device removed): the worker's own accelerator went away — a
/// lost WebGPU device or WebGL context in a browser, a GPU fault (reset, TDR) on a GPU, the
/// TPU/NPU runtime's error on those. A CPU has no device to lose, so the text does not decide
/// there (`unknown`: the rows below, the exit code and the type hint still do); a worker of
/// unknown class keeps the browser reading, where such wording comes from.
pub static DEVICE_LOST: ByHardware = ByHardware {
    name: "device-lost",
    gpu: K::GpuHardware,
    cpu: K::Unknown,
    tpu: K::TpuError,
    npu: K::NpuError,
    browser: K::WebgpuContextLost,
    other: K::WebgpuContextLost,
};

/// An uncorrectable fault of a device's HBM: the device's own hardware kind — a GPU's hardware
/// fault, the TPU's or NPU's runtime error on those; elsewhere a GPU hardware fault, as the
/// ECC row reads it (no host-hardware kind exists).
pub static DEVICE_MEMORY_FAULT: ByHardware = ByHardware {
    name: "device-memory-fault",
    gpu: K::GpuHardware,
    cpu: K::GpuHardware,
    tpu: K::TpuError,
    npu: K::NpuError,
    browser: K::GpuHardware,
    other: K::GpuHardware,
};

/// The id of the row that reads a device held busy, by the worker's class
/// ([`super::device_busy`]).
pub const DEVICE_BUSY_RULE: &str = "device.busy";
/// The id of the row that reads a TPU held busy (the text names the TPU).
pub const TPU_BUSY_RULE: &str = "tpu.busy";
/// The id of the row that reads CUDA devices held busy (the text names CUDA).
pub const CUDA_BUSY_RULE: &str = "cuda.busy";

/// A device held busy by another process ("Device or resource busy", the TPU "already in use
/// by process", CUDA's "busy or unavailable", NeuronCores another process is holding): the
/// worker's own device runtime's kind on an accelerator; on a CPU or an unknown device the text
/// does not decide (`unknown`: the rows below read on). Tagged `busy`
/// ([`super::device_busy`]): a stale process holding the device is what a worker reset clears.
pub static DEVICE_BUSY: ByHardware = ByHardware {
    name: "device-busy",
    gpu: K::CudaError,
    cpu: K::Unknown,
    tpu: K::TpuError,
    npu: K::NpuError,
    browser: K::Unknown,
    other: K::Unknown,
};

/// A process killed with SIGKILL: the OOM killer, except in a browser, where a killed
/// renderer or GPU process is a browser crash (Chrome shows "Error code: SIGKILL").
pub static SIGKILL: ByHardware = ByHardware {
    name: "sigkill",
    gpu: K::OomHost,
    cpu: K::OomHost,
    tpu: K::OomHost,
    npu: K::OomHost,
    browser: K::BrowserCrash,
    other: K::OomHost,
};

/// A process died of a crash signal (SIGSEGV, SIGABRT...): a software bug, except on a browser
/// worker, where the process that crashed is the browser's.
pub static CRASH_SIGNAL: ByHardware = ByHardware {
    name: "crash-signal",
    gpu: K::SoftwareException,
    cpu: K::SoftwareException,
    tpu: K::SoftwareException,
    npu: K::SoftwareException,
    browser: K::BrowserCrash,
    other: K::SoftwareException,
};

/// What a table row decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decide {
    /// Always this kind. [`FailureKind::Unknown`] rows are *weak*: they recognise a message as
    /// uninformative (a cascade or wrapper), so the stack trace, exit code and type hint are
    /// still consulted.
    Kind(FailureKind),
    /// The kind depends on the hardware class.
    ByHardware(&'static ByHardware),
    /// An NVIDIA Xid line: the code (capture group 1) decides, see [`super::xid::xid_kind`].
    Xid,
    /// An NVSwitch SXid line: the code is capture group 1.
    Sxid,
    /// A report with no kind of its own that explains only the text it matched (a host's
    /// MCE, EDAC or block-device lines): weak like a [`FailureKind::Unknown`] row, but the
    /// rows below it still read the rest of the message — with the text it matched blanked
    /// out — and the first of them that decides a kind wins (a checkpoint path on
    /// `/mnt/nvme0n1` must not hide the "CUDA out of memory" beside it).
    Incidental,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable id, `family.name` (reported as [`super::Classification::rule`]).
    pub id: &'static str,
    /// What the row decides.
    pub decide: Decide,
    /// Case-insensitive byte regex (see the module docs for conventions).
    pub pattern: &'static str,
    /// Why this family means this kind.
    pub note: &'static str,
    /// Notes attached to the classification (e.g. `"network"` on an NCCL watchdog timeout).
    pub tags: &'static [&'static str],
}

const fn row(
    id: &'static str,
    kind: FailureKind,
    pattern: &'static str,
    note: &'static str,
) -> Rule {
    Rule {
        id,
        decide: Decide::Kind(kind),
        pattern,
        note,
        tags: &[],
    }
}

const fn tagged(
    id: &'static str,
    kind: FailureKind,
    pattern: &'static str,
    note: &'static str,
    tags: &'static [&'static str],
) -> Rule {
    Rule {
        id,
        decide: Decide::Kind(kind),
        pattern,
        note,
        tags,
    }
}

const fn incidental(id: &'static str, pattern: &'static str, note: &'static str) -> Rule {
    Rule {
        id,
        decide: Decide::Incidental,
        pattern,
        note,
        tags: &[],
    }
}

const fn by_hw(
    id: &'static str,
    map: &'static ByHardware,
    pattern: &'static str,
    note: &'static str,
) -> Rule {
    Rule {
        id,
        decide: Decide::ByHardware(map),
        pattern,
        note,
        tags: &[],
    }
}

/// The built-in table, highest priority first.
pub static RULES: &[Rule] = &[
    // ---------------------------------------------------------------- NVIDIA kernel-log codes
    Rule {
        id: "nvidia.sxid",
        decide: Decide::Sxid,
        pattern: r"\bsxid\b\s*(?:\([^)\n]{0,40}\))?\s*[:#]?\s*([0-9]{1,6})\b",
        note: "NVSwitch SXid line: a fabric fault",
        tags: &["nvswitch"],
    },
    Rule {
        id: "nvidia.xid",
        decide: Decide::Xid,
        pattern: r"\bxid\b\s*(?:\([^)\n]{0,40}\))?\s*[:#]?\s*([0-9]{1,4})\b",
        note: "NVIDIA Xid line: NVIDIA's catalog says whether the code is an app error or hardware",
        tags: &[],
    },
    // ---------------------------------------------------------------- a full file system
    row(
        "sys.watch_limit",
        K::SoftwareException,
        r"\bsystem\s+limit\s+for\s+number\s+of\s+file\s+watchers\b|\binotify\s+watch\s+limit\b",
        "the inotify watch limit (Node's `ENOSPC: System limit for number of file watchers reached`): a setting of the host, not a full disk; before the disk rows, which read ENOSPC",
    ),
    row(
        "disk.fs_full",
        K::DiskFull,
        r"\b(?:has\s+)?r[au]n\s+out\s+of\s+(?:disk\s+|free\s+)?space\b|\berror\s+-28\b",
        "a file system out of space in the kernel's words (XFS's \"Filesystem has run out of space\", -ENOSPC as `error -28`): before the host's block-device reports, whose text it shares a line with",
    ),
    // ---------------------------------------------------------------- host hardware (weak)
    incidental(
        "host.mce",
        r"\bedac\b|\bmachine\s+check\b|\bmce:|\bmce\b.{0,30}\b(?:errors?|events?|exceptions?)\b|\[hardware\s+error\]|\bdimm\b.{0,40}\berror|\bblk_update_request\b|\bbuffer\s+i/o\s+error\b|\bi/o\s+error\b.{0,20}\bdev\b|\bnvme[0-9]+(?:n[0-9]+)?(?:p[0-9]+)?:.{0,40}\b(?:i/o|timeout|error|reset|failed)\b|\bata[0-9]+(?:\.[0-9]+)?:.{0,40}\b(?:error|failed|exception|reset)\b|\bext4-fs\s+error\b|\bxfs\s*(?:\([^)\n]{1,40}\))?:.{0,60}\b(?:error|corrupt\w*)\b",
        "host hardware report (MCE, EDAC, block-device I/O errors as the kernel prints them: `nvme nvme0:`, `ata1.00:`, `XFS (sda1):`): there is no host-hardware kind, and the report explains only its own text",
    ),
    // ---------------------------------------------------------------- GPU hardware
    by_hw(
        "device.hbm_ecc",
        &DEVICE_MEMORY_FAULT,
        r"\bhbm\b.{0,40}\buncorrect(?:able|ed)\b|\buncorrect(?:able|ed)\b.{0,40}\bhbm\b",
        "an uncorrectable error in a device's HBM without naming CUDA: the worker's own device (TPUs and NPUs use HBM too)",
    ),
    row(
        "gpu_hw.ecc",
        K::GpuHardware,
        r"(?P<neg>\b(?:no|zero|0|without)\s+(?:new\s+|more\s+|further\s+)?)?(?:\buncorrect(?:able|ed)\s+ecc\b|\becc[ _]uncorrectable\b|\bdouble[- ]bit\s+ecc\b|\becc\s+(?:dbe|sbe)\b|\bdbe\b|\becc\s+errors?\b|\brow[\s_-]?remap\w*[\s_-]+(?:fail\w*|pending|errors?)\b|\bremapp(?:ed|ing)\s+rows?\s+(?:pending|fail\w*)|\bremapping\s+failure(?:\s+occurred)?\b|\b(?:pending|failed)\s+(?:row\s+remap\w*|page\s+(?:retire\w*|blacklist)|retired\s+pages?)\b|\bpage\s+retire\w*[\s_-]+(?:fail\w*|pending|errors?|events?|limit)\b|\bretired[\s_-]+pages?[\s_-]+(?:limit|pending|threshold|exceeded)\b|\bamdgpu\b[^\n]{0,80}\b[1-9][0-9]*\s+uncorrect(?:able|ed)\b|\b[1-9][0-9]*\s+uncorrect(?:able|ed)\s+(?:hardware\s+)?errors?\s+detected\s+in\s+umc\b)(?P<nil>\s*(?:count|total)?\s*[:=]\s*(?:0+|no|none|false|n/a)\b)?",
        "GPU memory ECC errors (an AMD GPU's uncorrectable errors in its memory controller, `umc`, too), row-remapping failures, pending page retirement: a hardware fault even when CUDA reports it (not \"no ECC errors\", \"DBE count: 0\" or a bare nvidia-smi header)",
    ),
    row(
        "gpu_hw.nvlink",
        K::GpuHardware,
        r"nvlink_?uncorrectable|\buncorrectable\s+nvlink\b|\bnvlink\w*\b.{0,40}\b(?:error|errors|fault|failure|failed|down|inactive|timeout|degraded)\b|\bnvswitch\b.{0,40}\b(?:error|fault|fatal|failed|failure)\b|\bfabric\s*manager\b.{0,60}\b(?:error|fail\w*|not\s+running|degraded)\b",
        "NVLink / NVSwitch / fabric-manager fault",
    ),
    row(
        "gpu_hw.lost",
        K::GpuHardware,
        r"fallen\s+off\s+the\s+bus|\blost\s+from\s+the\s+bus\b|\bgpu\s+is\s+lost\b|\bgpu\s+(?:requires|needs)\s+(?:a\s+)?reset\b|\bunable\s+to\s+determine\s+the\s+device\s+handle\b|\brminitadapter\s+failed\b|\bgpu\b[^-\[\n]{0,20}\bnot\s+(?:accessible|responding)\b|\bgsp\b.{0,40}\b(?:timeout|timed\s+out|error|fail\w*)|\bwaiting\s+for\s+rpc\s+response\b|\bring\s+(?:gfx|sdma|comp|vcn|jpeg)[\w.]*\s+timeout\b|\bamdgpu\b.{0,60}\bgpu\s+reset\s+begin\b|\bhw\s+exception\s+by\s+gpu\s+node\b|\|[^|\n]{0,40}\berr!|\bdisplay\s+driver\s+\S+\s+stopped\s+responding\b",
        "GPU fell off the bus, is lost or its GSP firmware stopped answering, a Windows display driver that stopped responding (TDR)",
    ),
    row(
        "gpu_hw.bus_thermal",
        K::GpuHardware,
        r"\bpcie\s+bus\s+error\b|\baer\b.{0,40}\b(?:uncorrect\w*|fatal)\b|\bhw\s+slowdown\b|\bthermal\s+(?:violation|slowdown|throttl\w*|shutdown)|\bgpu\b.{0,20}\bover[- ]?temp\w*|\bpower\s+brake\b",
        "PCIe bus errors, thermal or power faults",
    ),
    // ---------------------------------------------------------------- NCCL watchdog
    tagged(
        "nccl.timeout",
        K::Timeout,
        r"\bcollective\s+operation\s+(?:timeout|timed\s+out)\b|\bwatchdog\b.{0,60}\btime(?:d\s*)?[\s_-]?out\b(?P<nil>\s*=\s*[0-9])?|\bwaiting\s+for\s+(?:the\s+)?remainder\s+of\s+(?:the\s+)?ranks\b|\bstall_inspector\b|\bprocessgroupnccl\b.{0,80}\bdump(?:ing)?\s+debug\s+info\b|\bheartbeat\s+monitor\s+timed?\s*out\b|\bfailed\s+to\s+pass\s+monitoredbarrier\b|\bthis\s+thread\s+has\s+been\s+waiting\s+for\s+`[^`\n]{1,160}`\s+for\s+[0-9]+\s+seconds\s+and\s+may\s+be\s+stuck\b|\bwatchdog\s+got\s+stuck\s+for\b",
        "NCCL watchdog, any collective timed out (HCCL, Gloo), Horovod's stall inspector, a rank that did not reach torch.distributed's monitored barrier in time, XLA's rendezvous that \"may be stuck\": a collective hung; usually a network problem or a straggling rank (not a watchdog `timeout=1800` setting quoted in another error)",
        &["network"],
    ),
    // ---------------------------------------------------------------- WebGPU / WebGL
    row(
        "webgpu.cascade",
        K::Unknown,
        r"\bis\s+invalid\s+due\s+to\s+a\s+previous\s+error\b|\[invalid\s+[^\]\n]{1,60}\]\s+is\s+invalid\b",
        "Dawn/WebGPU cascade: an object is invalid because of an error reported earlier",
    ),
    by_hw(
        "vulkan.lost",
        &DEVICE_LOST,
        r"\bvk::devicelosterror\b|\berrordevicelost\b",
        "Vulkan's device lost as vulkan-hpp throws it (`vk::DeviceLostError`, `ErrorDeviceLost`: llama.cpp, ncnn): the worker's own device, as in the device-lost row below; before the browser's words, which share `DeviceLost`",
    ),
    row(
        "webgpu.lost",
        K::WebgpuContextLost,
        r"\bwebgpu[\s_]+(?:device|context)[\s_]+(?:was\s+|is\s+|has\s+been\s+)?lost\b|\bwebgl\w*:?\s+(?:context\s+)?(?:was\s+|is\s+|has\s+been\s+)?(?:context\s+)?lost\b|\blost\s+(?:the\s+)?(?:webgpu|webgl)\s+(?:device|context)\b|\b(?:gpudevice|mlcontext)\b.{0,40}\blost\b|context_lost_webgl\b|\blosecontext\b|\bwebglcontextlost\b|\bcontext\s+reset\s+detected\b|\bdevicelost\w*|\binstance\s+reference\s+no\s+longer\s+exists\b|\bgpu\s+connection\s+lost\b|\btoo\s+many\s+active\s+webgl\s+contexts\b|\bpage\s+caused\s+(?:a\s+)?context\s+loss\b|\[device(?:\s+\x22[^\x22\n]{0,80}\x22)?\]\s+(?:is|was)\s+lost\b|\bcontextresult::k(?:transient|fatal)failure\b",
        "WebGPU device / WebGL or WebNN context lost in the browser's own words (WebGPU, WebGL, GPUDevice.lost, WebNN's MLContext, Dawn's `[Device] is lost`, Chrome's GLES2 decoder, Chrome blocking a page whose WebGL \"caused context loss\")",
    ),
    by_hw(
        "device.lost",
        &DEVICE_LOST,
        r"\bcontext\s+(?:was\s+|is\s+|has\s+been\s+)?lost\b|context_lost\w*|\blost\s+(?:the\s+)?(?:gpu\s+)?(?:device|context)\b|\bgraphics\s+reset\b|device\s+(?:was\s+|is\s+|has\s+been\s+)?lost\b|\bdevice_lost\b|(?:vk|ze_result|ur_result)_error_device_lost\b|dxgi_error_device_(?:hung|removed|reset)\b|\bdevice\s+(?:was\s+|has\s+been\s+)?removed\b|\bgetdeviceremovedreason\b|\bdevice\s+(?:was\s+|has\s+been\s+)?destroyed\b|\bdevice\s+disconnected\b",
        "a device or context lost, removed or reset without naming the browser (Vulkan, D3D12, Level Zero's ZE_RESULT_ERROR_DEVICE_LOST on Intel GPUs and NPUs, wgpu, \"device lost\"): the lost device is the worker's own",
    ),
    // ---------------------------------------------------------------- browser crashes
    row(
        "browser.crash",
        K::BrowserCrash,
        r"\bbrowser\s+(?:process\s+)?crash\w*|\baw,?\s+snap\b|\bstatus_(?:access_violation|breakpoint|stack_buffer_overrun|heap_corruption|illegal_instruction|invalid_image_hash|no_memory|stack_overflow)\b|\bresult_code_\w+|\brenderer\s+(?:process\s+)?(?:crash\w*|gone|terminated|killed|exited|died)\b|\brender-process-gone\b|\b(?:page|target|tab|renderer|webview)\s+(?:has\s+|just\s+)?crashed\b|\brender(?:er)?[\s-]process[\s-]gone\b|\bbrowser\s+has\s+disconnected\b|\ba\s+problem\s+(?:repeatedly\s+)?occurred\s+(?:with|on)\b|\berror\s+code:\s+(?:sig[a-z]+|status_\w+|out\s+of\s+memory)\b|\bhe's\s+dead,\s+jim\b|\bgpu\s+process\s+(?:isn't|is\s+not)\s+usable\b|\bgpu\s+process\s+(?:has\s+)?(?:exited|crashed|was\s+killed|terminated|died)\b|\bexiting\s+gpu\s+process\b|\bbrowser\s+(?:has\s+)?(?:closed|exited|terminated|crashed)\s+unexpectedly\b|\btarget\s+closed\b|\bbrowser\s+has\s+been\s+closed\b|\bbrowser\s+closed\b|\bsad\s+tab\b|\bpage\s+unresponsive\b|\b(?:chrome|chromium|firefox|safari)\b.{0,30}\bcrash\w*|\bfailed\s+to\s+launch\s+(?:the\s+)?browser\s+process\b|\bbrowsertype\.launch\b.{0,120}\b(?:fail\w*|closed|exited|crash\w*)\b|\bbrowsing\s+context\s+has\s+been\s+discarded\b|\bsession\s+deleted\s+because\s+of\s+page\s+crash\b|\bchrome\s+not\s+reachable\b|\bnot\s+connected\s+to\s+devtools\b|\bgtk:\s+cannot\s+open\s+display\b|\bmissing\s+x\s+server\s+or\s+\$display\b|:fatal:memory(?:_linux)?\.cc\(|\bwebpage\s+was\s+reloaded\s+because\s+a\s+problem\s+(?:repeatedly\s+)?occurred\b",
        "the browser, its renderer or its GPU process died or could not start (Chrome's Aw, Snap! page and exit codes, Chromium's own `FATAL:memory.cc` out-of-memory abort, WebDriver's discarded browsing context and unreachable Chrome, no display to start on)",
    ),
    // ---------------------------------------------------------------- a node died
    row(
        "worker.node_dead",
        K::WorkerDisconnected,
        r"\bmissed\s+too\s+many\s+heartbeats\b|\bno\s+recent\s+heartbeats?\b|\bnodediederror\b|\bnode\b.{0,100}\bmarked\s+(?:as\s+)?dead\b|\bnodenotready\b|\bdue\s+to\s+node\s+fail\w*\b|\bkubelet\s+stopped\s+posting\s+node\s+status\b|\bnode\b.{0,40}\bnotready\b|\bnode\s+failure\s+on\b|\bwas\s+preempted\b|\binstances\.preempted\b|\bspot\s+(?:vm|instance)\s+(?:was\s+)?(?:reclaimed|interrupt\w*)\b|\bdue\s+to\s+preemption\b|\bnodelost\b|\bslurmctld\b[^\n]{0,40}\bnodes?\s+\S{1,60}\s+not\s+responding\b|\bnodes?\s+[\w.-]*\[[0-9,-]+\][\w.-]*\s+not\s+responding\b|\bspot\s*instance\s*termination\b|\x22eventtype\x22\s*:\s*\x22preempt\x22|\bjobstate=(?:node_fail|preempted)\b|\b(?:node_fail|preempted)\s+[0-9]+:[0-9]+\s*\z|\bstate:\s+preempted\b|\bpreempted\s+by\s+pod\b|\bterminated\s+in\s+response\s+to\s+imminent\s+node\s+shutdown\b|\bwhich\s+was\s+running\s+pod\s+\S+\s+is\s+unresponsive\b|\bhostsupdatedinterrupt\b|\breceived\s+(?:[0-9]+|sigterm)\s+death\s+signal\b|\breceived\s+sigterm\b|\bdetected\s+missing\s+heartbeats\b",
        "a node the job ran on died, stopped answering or was taken back (Ray's dead node, Spark's executor without heartbeats, Kubernetes NodeNotReady and NodeLost, Slurm's NODE FAILURE and nodes not responding, a preempted spot instance): before memory wording, as Ray lists OOM among a dead node's possible causes; EC2's spot termination, Azure's Preempt event, a Slurm job state NODE_FAIL or PREEMPTED, a preempted TPU VM or pod, Kubernetes' graceful node shutdown and its NodeLost wording, Horovod's changed hosts, a SIGTERM the job's agent or trainer received (the node being drained or taken back)",
    ),
    // ---------------------------------------------------------------- memory: definite host
    row(
        "oom_host.killer",
        K::OomHost,
        r"\bout\s+of\s+memory:\s+kill\w*\s+process\b|\bkill\w*\s+process\b.{0,60}\bsacrifice\s+child\b|\boom[-_ ]?kill\w*|\binvoked\s+oom\b|\bmemory\s+cgroup\s+out\s+of\s+memory\b|\bout_of_memory\b|\bout\s+of\s+memory\s+and\s+no\s+killable\s+processes\b|\boom_reaper\b|\bkilled\s+as\s+a\s+result\s+of\s+limit\s+of\b|\b(?:srun|slurmstepd)\b.{0,80}\b(?:out\s+of\s+memory|oom)\b",
        "kernel OOM killer, cgroup memory limit, Kubernetes OOMKilled",
    ),
    // ---------------------------------------------------------------- memory: definite device
    tagged(
        "npu.oom",
        K::NpuError,
        r"\bnpu\b.{0,20}\bout\s+of\s+memory\b|\bnpu\s+memory\b.{0,20}\b(?:exhausted|insufficient|not\s+enough)\b",
        "NPU memory exhausted (torch_npu): the NPU's own error kind",
        &["oom"],
    ),
    row(
        "oom_gpu.device",
        K::OomGpu,
        r"\b(?:cuda|hip|rocm|mps|xpu|gpu)\b.{0,24}\bout\s+of\s+memory\b|\bout\s+of\s+(?:device|gpu|video|vram)\s+memory\b|\boutofmemoryerror\b.{0,4}\b(?:cuda|hip)\b|\btorch\.(?:cuda\.)?outofmemoryerror\b|cudaerrormemoryallocation|cuda_error_out_of_memory|hiperroroutofmemory|_status_alloc_failed\b|\bcufft_alloc_failed\b|vk_error_out_of_device_memory|\bgl_out_of_memory\b|\bcl_mem_object_allocation_failure\b|\bgpuoutofmemoryerror\b|\b(?:cudamalloc|cumemalloc|cumemcreate|hipmalloc)\w*\b.{0,30}\b(?:fail\w*|error)\b|\bfailed\s+to\s+allocate\b.{0,60}\b(?:on|of|from)\s+(?:device|gpu)\b|\boom\s+when\s+allocating\b.{0,200}\bdevice:gpu\b|\bgpu\w*\.create\w+\b.{0,40}\bout\s+of\s+memory\b|\b(?:gpu|video|device)\s+memory\s+(?:exhausted|is\s+full|allocation\s+failed)\b|\bno\s+available\s+memory\s+for\s+the\s+cache\s+blocks\b|\bmaximum\s+number\s+of\s+tokens\s+that\s+can\s+be\s+stored\s+in\s+kv\s+cache\b|\bnot\s+enough\s+kv\s+cache\s+space\b|\bnvmapmemalloc\w*\b.{0,40}\berror\s+12\b|\bmetal::malloc\b|\bdst\s+tensor\s+is\s+not\s+initialized\b",
        "accelerator memory exhausted: CUDA/HIP/MPS OOM, cuBLAS/cuDNN alloc failures, Vulkan/WebGPU device memory, MLX's Metal allocator, TensorFlow's \"Dst tensor is not initialized\" (a copy to a full GPU)",
    ),
    tagged(
        "tpu.memory",
        K::TpuError,
        r"\bmemory\s+space\s+(?:hbm|vmem|smem|cmem)\b|\bexceeded\s+(?:hbm|vmem)\s+capacity\b|\bxla:tpu\b|\btpu\b.{0,40}\b(?:out\s+of\s+memory|resource_exhausted)\b|\bhbm\b.{0,30}\bout\s+of\s+memory\b",
        "XLA:TPU HBM/VMEM exhausted: the TPU runtime's error kind",
        &["oom"],
    ),
    // ---------------------------------------------------------------- disk
    row(
        "disk.full",
        K::DiskFull,
        r"\bno\s+space\s+left\s+on\s+device\b|\benospc\b|\berrno\s+28\b|\bstoragefull\b|\bdisk\s+quota\s+exceeded\b|\bedquot\b|\bquotaexceedederror\b|\bthe\s+quota\s+has\s+been\s+exceeded\b|\bephemeral[-\s]storage\b|\bephemeral\s+local\s+storage\b|\bdisk[\s_-]*pressure\b|\bfreediskspacefailed\b|\bfailed\s+to\s+garbage\s+collect\s+required\s+amount\s+of\s+images\b|\blow\s+on\s+resource:\s+(?:ephemeral-storage|disk|storage)\b|\bnot\s+enough\s+(?:free\s+)?(?:disk\s+)?space\b|\binsufficient\s+(?:disk|storage)\s+space\b|\b(?:disk|volume|filesystem|file\s+system|partition)\s+(?:is\s+)?full\b|\bout\s+of\s+(?:disk|storage)\s+space\b|\befbig\b|\bfile\s+too\s+large\b|\busage\s+of\s+emptydir\s+volume\b.{0,60}\bexceeds\s+the\s+limit\b",
        "ENOSPC, quota (a browser's storage quota too), Kubernetes ephemeral-storage eviction, DiskPressure (and its `disk-pressure` taint) and a kubelet that cannot free disk space",
    ),
    tagged(
        "disk.write_failed",
        K::DiskFull,
        r"\bpytorchstreamwriter\s+failed\s+writing\b|\bfile\s+write\s+failed\b|\bwrite\(\):\s+fd\s+[0-9]+\s+failed\b|\bunexpected\s+pos\s+[0-9]+\s+vs\s+[0-9]+|\bfailed\s+to\s+(?:write|save|flush)\s+(?:the\s+)?checkpoint\b",
        "a file or checkpoint write failed part-way: usually a full (or failing) disk",
        &["checkpoint"],
    ),
    // ---------------------------------------------------------------- not scheduled
    row(
        "sched.unschedulable",
        K::CoordinatorError,
        r"\bnodes\s+are\s+available:\s|\bfailedscheduling\b|\bno\s+available\s+node\s+types\s+can\s+fulfill\b|\bbatch\s+job\s+submission\s+failed\b|\bunable\s+to\s+create\s+step\s+for\s+job\b|\binsufficientinstancecapacity\b|\bunable\s+to\s+provision\s+requested\b.{0,30}\bcapacity\b",
        "the scheduler or cloud could not place the job (Kubernetes' FailedScheduling and its \"0/N nodes are available\", Ray's autoscaler without a fitting node type, sbatch and srun refused, EC2 and SageMaker out of capacity): the job never ran, so its words about memory or GPUs are the request's, not a failure of them: after the disk rows (nodes under disk pressure are full disks) and before the memory rows",
    ),
    // ---------------------------------------------------------------- NCCL result strings
    row(
        "nccl.system",
        K::Network,
        r"\bunhandled\s+system\s+error\b|\bncclsystemerror\b|\bncclremoteerror\b|\bremote\s+process\s+exited\s+or\s+there\s+was\s+a\s+network\s+error\b",
        "ncclSystemError / ncclRemoteError: sockets, InfiniBand, a peer went away",
    ),
    row(
        "nccl.cuda",
        K::CudaError,
        r"\bunhandled\s+cuda\s+error\b|\bncclunhandledcudaerror\b",
        "ncclUnhandledCudaError",
    ),
    row(
        "nccl.usage",
        K::SoftwareException,
        r"\bncclinternalerror\b|\bncclinvalid(?:argument|usage)\b|\breport\s+this\s+issue\s+to\s+the\s+nccl\s+developers\b|\binvalid\s+(?:argument|usage)\b.{0,20}\bnccl_debug\b|\bduplicate\s+gpu\s+detected\b",
        "ncclInternalError / ncclInvalidArgument / ncclInvalidUsage: a bug or misuse",
    ),
    row(
        "nccl.transport",
        K::Network,
        r"\bnet/(?:ib|socket|plugin|gdr)\b|\bibv_\w+|\bsocketprogress\b|\bsocket\s+progress\s+error\b|\bbootstrap\b.{0,40}\b(?:socket|interface|fail\w*|error)\b|\bno\s+socket\s+interface\b|\bconnection\s+closed\s+by\s+(?:remote\s+)?peer\b|\brdma\b.{0,40}\b(?:error|fail\w*)\b|\binfiniband\b|\bmlx5\w*\b.{0,40}\b(?:error|fail\w*)\b|\btransport\s+retry\s+counter\s+exceeded\b|\bnvidia-peermem\b|\bgpudirect\b|\btransport\s+retry\s+count\s+exceeded\b|\bcommunication\s+error\s+with\s+rank\b",
        "NCCL/InfiniBand/RDMA transport (incl. GPUDirect RDMA's nvidia-peermem); UCX's retry count exceeded, MPICH's communication error with a rank",
    ),
    // ---------------------------------------------------------------- memory: host, other wording
    row(
        "oom_host.cluster",
        K::OomHost,
        r"\brunning\s+low\s+on\s+memory\b|\bmemory\s*pressure\b|\blow\s+on\s+resource:\s+memory\b|\bexceed\w*\s+(?:its\s+|the\s+|job\s+|step\s+|container\s+)?memory\s+limit\b|\bmemory\s+limit\s+(?:exceeded|reached)\b|\bevicted\b.{0,60}\bmemory\b|\bcontainer\s+killed\b.{0,60}\bmemory\b|\bexceeded\s+[0-9.]+\s*%\s+memory\s+budget\b|\brequires\s+more\s+system\s+memory\b|\bwebassembly\.memory(?:\.grow)?\(\):\s*(?:maximum\s+memory\s+size\s+exceeded|could\s+not\s+allocate\s+memory)|\bpbs:\s+job\s+killed:\s+mem\b|\bterm_memlimit\b",
        "Ray memory monitor, Slurm/Kubernetes memory enforcement, a Dask nanny restarting a worker over its memory budget, a model that needs more system memory than is free (Ollama), a WebAssembly heap that cannot grow (the page's own memory, not the GPU's), PBS's and LSF's memory-limit kills",
    ),
    by_hw(
        "oom_host.sigkill",
        &SIGKILL,
        r"\bexit\s*(?:code|status)\s*[:=]?\s*(?:137|-9)\b|\bexited\s+with\s+(?:exit\s+)?(?:code|status)\s+(?:137|-9)\b|\bexit_code\s*[:=]\s*(?:137|-9)\b|\breturn\s*code\s*[:=]?\s*-9\b|\bsignal\s+9\b|\bsigkill\b|\bsignal:\s+killed\b|\A\s*killed\s*\z|:\s*killed\.?\s*\z|\bline\s+[0-9]+:\s+[0-9]+\s+killed\b|\[[0-9]+\][+-]?\s+killed(?:\s|\z)|\bbad\s+termination\b.{0,200}\bexit\s+code:\s+9\b|\bnon-zero\s+status\s+of\s+137\b",
        "SIGKILL (exit 137 / -9, a bare 'Killed', the shell's `line 12: 4821 Killed  python ...`): almost always the OOM killer; in a browser the tab was killed",
    ),
    row(
        "oom_host.shm",
        K::OomHost,
        r"\bkilled\s+by\s+signal:?\s+(?:killed|bus\s+error)\b|\bout\s+of\s+shared\s+memory\b|\binsufficient\s+shared\s+memory\b|\bshared\s+memory\s+limit\b|\bbus\s+error\b.{0,100}\bshared\s+memory\b|\b(?:creating|allocating|allocate)\s+shared\s+memory\s+segment\b|\bfailed\s+to\s+extend\s+/dev/shm/",
        "shared memory (/dev/shm) exhausted (NCCL's 'failed to extend /dev/shm/nccl-…'); a DataLoader worker killed by SIGKILL/SIGBUS",
    ),
    row(
        "oom_host.process",
        K::OomHost,
        r"\bmemoryerror\b|\bunable\s+to\s+allocate\b.{0,40}\bfor\s+an\s+array\b|\bcannot\s+allocate\s+memory\b|\benomem\b|\bbad_alloc\b|\bbad\s+allocation\b|\bdefaultcpuallocator\b|\bcan't\s+allocate\s+memory\b|\bjava\.lang\.outofmemoryerror\b|\bjava\s+heap\s+space\b|\bgc\s+overhead\s+limit\s+exceeded\b|\bheap\s+out\s+of\s+memory\b|\bheap\s+limit\b.{0,30}\ballocation\s+failed\b|\bfailed\s+to\s+allocate\b.{0,40}\b(?:host|cpu|system|pinned)\s+memory\b|\bmalloc\b.{0,30}\bfail\w*|\baborted\(oom\)|\bcannot\s+enlarge\s+memory\s+arrays\b|\bobjectstorefullerror\b|\bobject\s+store\s+is\s+full\b",
        "a process ran out of host memory (Python MemoryError, ENOMEM, bad_alloc, JVM/JS heap)",
    ),
    // ---------------------------------------------------------------- a device held busy
    // Where the text names the device, its kind whatever the worker's class; else by class.
    tagged(
        TPU_BUSY_RULE,
        K::TpuError,
        r"\btpu\s+(?:is\s+)?already\s+in\s+use\b|/dev/(?:accel|vfio/)[0-9]*\)?:?\s+device\s+or\s+resource\s+busy\b",
        "a TPU held busy (\"The TPU is already in use by process\", /dev/accel busy): a stale process holding it is what a worker reset clears",
        &["busy"],
    ),
    tagged(
        CUDA_BUSY_RULE,
        K::CudaError,
        r"\bcuda-capable\s+devices?\s*(?:\(s\))?\s+(?:is|are|is/are)\s+busy\b|\bcudaerrordevicesunavailable\b",
        "CUDA devices busy or unavailable (exclusive-process mode, a stale process): a worker reset clears it",
        &["busy"],
    ),
    Rule {
        id: DEVICE_BUSY_RULE,
        decide: Decide::ByHardware(&DEVICE_BUSY),
        pattern: r"\bdevice\s+or\s+resource\s+busy\b|\bebusy\b|\balready\s+in\s+use\s+by\s+(?:another\s+)?process\b|\bin\s+use\s+by\s+another\s+process\b|\b(?:held|locked|owned)\s+by\s+another\s+process\b|\banother\s+process\s+(?:\([^)\n]{0,30}\)\s+)?(?:is\s+)?(?:holding|using|occupying)\b|\bdevices?\s*(?:\(s\))?\s+(?:is|are|is/are)\s+busy\b|\bbusy\s+or\s+unavailable\b|\bunable\s+to\s+allocate\s+neuron\s*cores?\b|\bneuron\s*cores?\s*(?:\(s\))?\s+not\s+available\b",
        note: "a device held busy by another process (EBUSY, a TPU already in use, CUDA's busy or unavailable, NeuronCores held): the device runtime's kind; a stale process holding it is what a worker reset clears",
        tags: &["busy"],
    },
    // ---------------------------------------------------------------- TPU and NPU runtimes
    row(
        "tpu.runtime",
        K::TpuError,
        r"\blibtpu\w*|\btpu_[a-z]\w*|\bbackend\s+'tpu'|\bslicebuilder\b|\bslice_builder\w*|\bmegascale\b|\btpus?\s+(?:is\s+|are\s+)?(?:already\s+in\s+use|unresponsive|unhealthy|not\s+(?:found|available|responding)|initiali[sz]ation\s+failed|health\s*check)|\bno\s+tpus?\s+(?:devices?|cores?|chips?)\b|\btpu\s+(?:chip|host|vm|worker|platform|system|runtime|driver)\b.{0,40}\b(?:error|fail\w*|unresponsive|crash\w*|lost|down|reset)\b|\bici\s+link\b|\bcore\s+halted\s+unexpectedly\b|\baccelerator\s+device\s+halted\b",
        "TPU runtime, driver, host or slice setup (libtpu, tpu_driver, SliceBuilder; not a `use_tpu` flag)",
    ),
    row(
        "npu.ascend",
        K::NpuError,
        r"\b(?-i:E[A-Z][0-9]{4}):|[(\[](?-i:E[A-Z][0-9]{4})[)\]]|\berror\s+code\s*(?:is|[:=])?\s*(?-i:E[A-Z][0-9]{4})\b|\berr[0-9]{5}\b|\btorch_npu\b|\bnpu\w*\.(?:cpp|cc|h)\b|\bnpustream\w*|\bnpu(?:synchronize|caching|allocator|getdevice|setdevice)\w*|\bascend(?:cl|[-_ ]?(?:910|310)\w*)?\b|\bhccl\w*|\bacl(?:nn|rt|op)\w*|\bacl\s+(?:api|call)\b|\bacl_error_\w+|\bacl\s+(?:stream|event|device|context|model|op|runtime|init\w*|finalize)\b.{0,30}\b(?:failed|error)\b|\bacl\s+error\s+code\b|\[error\]\s+(?:runtime|ge|hccl|ascendcl|tefusion|drv|aicpu|tbe|fe|tdt|devmm|hdc|dvpp)\([0-9]+,|\bpta\s+call\b|\bcann\b|\bai\s*core\b|\baicpu\b|\bdavinci\b|\brt[a-z]\w*\s+execute\s+failed\b|\bchipid\b|\bdrv(?:mem|dev)\w*|\bhalmem\w*|\bdcmi\s+model\s+init\w*\s+failed\b|\bdcmi_[a-z_]+\b[^\n]{0,40}\b(?:fail\w*|error)\b|\brt(?:stream|device|malloc|memcpy|event|model|kernel|context|notify)\w*\b.{0,40}\bfail\w*|\binner\s+error\s+is\s+reported\s+as\s+above\b",
        "Ascend NPU runtime: CANN error codes as Ascend prints them (`EE1002:`, `(EI0006)`), ACL runtime calls (aclrt*, \"acl api\", \"ACL stream ... failed\"), rt* calls (as MindSpore reports them too), HCCL, torch_npu, DCMI device management",
    ),
    row(
        "npu.habana",
        K::NpuError,
        r"\bhabanalabs\b|\bsynstatus\s*[=:]?\s*[0-9]+|\bsyn(?:device|stream|launch|memcpy|initialize)\w*\b.{0,40}\bfail\w*|\bhl-smi\b.{0,60}\b(?:error|fail\w*)\b|\bhabana\w*\b.{0,60}\b(?:error|fail\w*)\b|\bhpu\b.{0,40}\b(?:error|fail\w*|out\s+of\s+memory)\b",
        "Intel Gaudi (Habana HPU) runtime and driver: an NPU-like accelerator (synStatus codes, the habanalabs driver)",
    ),
    row(
        "npu.other",
        K::NpuError,
        r"\b(?:qnn|snpe|hexagon|nnapi|htp)\b.{0,40}\b(?:error|fail\w*)\b|\bneural\s+engine\b.{0,40}\b(?:error|fail\w*)\b|\bappleneuralengine\b|\be5rt\b.{0,60}\b(?:error|fail\w*)\b|\bnpu\b.{0,80}\b(?:error|fail\w*|timeout|timed\s+out|exception|abort\w*|warning|crash\w*|not\s+(?:found|available|responding)|invalid|lost|hang|hung)\b|\bhailo(?:rt)?\b.{0,60}\b(?:error|fail\w*|timeout)\b|\bhailo_\w*(?:timeout|error|fail\w*)\b|\bintel_npu\b.{0,300}\bze_result_error_unknown\b|\bintel_vpu\b|\bivpu_\w+|\brknn\b.{0,60}\b(?:fail\w*|error)\b|\be\s+rknn:",
        "other NPUs (Qualcomm QNN/SNPE/Hexagon, NNAPI, Apple Neural Engine) and any NPU failure, Intel's NPU (an unknown Level Zero error in OpenVINO's intel_npu plugin, the intel_vpu driver; its lost device and memory are read by those rows), Rockchip's RKNN",
    ),
    row(
        "tpu.other",
        K::TpuError,
        r"\btpu\b.{0,60}\b(?:error|fail\w*|crash\w*|abort\w*|exception|unhealthy|lost|down|reset|hang|hung|timeout|timed\s+out|taking\s+more\s+than|preempt\w*)\b|\b(?:cannot|can't|could\s+not|couldn't|unable\s+to|failed\s+to)\s+(?:find|connect\s+to|initiali[sz]e|reach|open|load|use|get)\b.{0,30}\btpus?\b",
        "any other TPU failure",
    ),
    // ---------------------------------------------------------------- memory: contextual
    by_hw(
        "memory.xla",
        &XLA_MEMORY,
        r"\bresource_?exhausted\b|\bresourceexhausted\w*|\bresource\s+exhausted\b",
        "XLA/gRPC RESOURCE_EXHAUSTED: device memory, resolved by hardware class",
    ),
    by_hw(
        "memory.generic",
        &MEMORY,
        r"(?P<neg>\b(?:no|without)\s+(?:(?:more|further|new|recent)\s+)?)?(?:\bout\s+of\s+memory\b|\boutofmemory\w*|\boom\b|\bran\s+out\s+of\s+memory\b|\bfailed\s+to\s+allocate\b|\bfailed\s+to\s+alloc\s+(?:device\s+|host\s+)?memory\b|\ballocation\b.{0,40}\bfailed\b|\b(?:insufficient|not\s+enough)\s+(?:\w+\s+)?memory\b|\bmemory\s+(?:exhausted|allocation\s+failed)\b|\be_outofmemory\b|\bvk_error_out_of_host_memory\b|\b(?:cannot|could\s+not|couldn\'t)\s+allocate\b)|\bpi_error_out_of_resources\b|\bze_result_error_out_of_device_memory\b|\bur_result_error_out_of_(?:device_)?(?:memory|resources)\b",
        "memory exhausted without naming the device: GPU/browser → oom_gpu, CPU → oom_host, TPU/NPU → their runtime error (not \"no out of memory errors\", \"without OOM\"); SYCL's and Level Zero's out-of-resources and device-memory codes, by the worker's device",
    ),
    // ---------------------------------------------------------------- software, before CUDA
    row(
        "sw.device_mismatch",
        K::SoftwareException,
        r"\bexpected\s+all\s+tensors\s+to\s+be\s+on\s+the\s+same\s+device\b|\bfound\s+at\s+least\s+two\s+devices\b|\bexpected\s+(?:object\s+of\s+)?device\s+type\b|\bmust\s+be\s+on\s+the\s+same\s+device\b|\bdevice-?\s*type\s+mismatch\b",
        "tensors on different devices: a bug in the job, although the text names CUDA",
    ),
    // ---------------------------------------------------------------- CUDA
    row(
        "cuda.assert",
        K::CudaError,
        r"\bdevice-side\s+assert\w*|\bcudaerrorassert\b|\bassertion\b.{0,120}\bfailed\b.{0,40}\.cu\b|\.cu:[0-9]+.{0,80}\bassertion\b",
        "device-side assert (usually a bad index or label, surfaced by the CUDA runtime)",
    ),
    row(
        "cuda.runtime",
        K::CudaError,
        r"\billegal\s+memory\s+access\b|\boutofresources\b|\bout\s+of\s+resource:\s+shared\s+memory\b|\billegal\s+(?:address|instruction)\s+(?:was\s+)?encountered\b|\bmisaligned\s+address\b|\bunspecified\s+launch\s+failure\b|\blaunch\s+failure\b|\btoo\s+many\s+resources\s+requested\s+for\s+launch\b|\blaunch\s+out\s+of\s+resources\b|\bhardware\s+stack\s+error\b|\binvalid\s+program\s+counter\b|\bexception\s+occurred\s+on\s+the\s+device\b|\binvalid\s+device\s+(?:function|ordinal|pointer|symbol|context)\b|\binvalid\s+(?:resource\s+handle|configuration\s+argument|pitch\s+argument|texture\s+reference|channel\s+descriptor|memcpy\s+direction|kernel\s+image)\b|\bkernel\s+image\s+is\s+invalid\b|\bno\s+kernel\s+image\s+is\s+available\b|\bptx\b.{0,30}\b(?:jit|compil\w*|unsupported|version)\b|\bunsupported\s+ptx\b|\bno\s+cuda-capable\s+device\b|\bno\s+cuda\s+gpus?\s+(?:are\s+)?available\b|\bcuda-capable\s+devices?\s+(?:is|are)\s+busy\b|\bdevices?\s+(?:is|are)\s+busy\s+or\s+unavailable\b|\bcuda\s+driver\s+(?:version\s+)?is\s+insufficient\b|\bcuda\s+driver\s+is\s+a\s+stub\b|\bsystem\s+not\s+yet\s+initialized\b|\bstream\s+is\s+capturing\b|\bcapturing\s+stream\b|\bstream\s+capture\b|\bpeer\s+access\b|\bunsupported\s+display\s+driver\b|\bforward\s+compatibility\s+was\s+attempted\b|\bdriver\s+shutting\s+down\b|\bdriver/library\s+version\s+mismatch\b|\bcouldn't\s+communicate\s+with\s+the\s+nvidia\s+driver\b|\bnvidia\s+driver\b.{0,40}\b(?:not|error|fail\w*|mismatch|too\s+old)\b|\bno\s+nvidia\s+(?:driver|gpu)\b",
        "CUDA runtime/driver error strings (cudaGetErrorString texts and nvidia driver setup)",
    ),
    row(
        "cuda.library",
        K::CudaError,
        r"\bcudaerror\w+|\bcuda_error_\w+|\bcu(?:blas|dnn|sparse|solver|fft|rand|tensor)_status_\w+|\b(?:cudnn|cublas|cublaslt|cusparse|cusolver|cufft|curand|nvrtc|cutlass)\b.{0,20}\b(?:error|fail\w*)\b|\bnvrtc_error\w*|\bcuda\s+kernel\s+errors\b|\bcuda_launch_blocking\b|\btorch_use_cuda_dsa\b|\bhip\s+error\b|\bhiperror\w+|\brocm\b.{0,20}\berror\b|\bhsa_status_\w+|\bnvml\w*\b.{0,40}\b(?:error|fail\w*)\b|\bcuda\b.{0,30}\b(?:error|failure|failed)\b|\bunable\s+to\s+find\s+an\s+engine\b|\bcuda(?:get|set|malloc|memcpy|memset|launch|stream|device|event|free|host|graph|ipc)\w*|\bmemory\s+access\s+fault\s+by\s+gpu\b|\bamdgpu\b.{0,60}\b(?:retry\s+)?page\s+fault\b|\[gfxhub\w*\]\s+(?:retry\s+)?page\s+fault\b|\bblas\s+(?:\w+\s+)?launch\s+failed\b",
        "CUDA, cuDNN, cuBLAS, NVRTC, HIP/ROCm library errors; an AMD GPU's page fault (as Xid 31's MMU fault on NVIDIA: a runtime or kernel error first)",
    ),
    row(
        "xla.status_timeout",
        K::Timeout,
        r"\b(?:xla|jax)runtimeerror:\s+deadline_exceeded\b",
        "an XLA/JAX runtime error whose status is DEADLINE_EXCEEDED (a barrier, a collective, a coordination call): a timeout, whatever the device",
    ),
    row(
        "xla.status_network",
        K::Network,
        r"\b(?:xla|jax)runtimeerror:\s+unavailable:.{0,160}\b(?:connection\s+(?:refused|reset)|failed\s+to\s+connect|coordination\s+service|unreachable)\b",
        "an XLA/JAX runtime error UNAVAILABLE that says a connection failed (the coordination service, a peer): the network, not the device",
    ),
    row(
        "xla.status_data",
        K::DataError,
        r"\b(?:xla|jax)runtimeerror:\s+data_loss\b",
        "an XLA/JAX runtime error whose status is DATA_LOSS: corrupt or truncated input",
    ),
    by_hw(
        "xla.runtime",
        &XLA_RUNTIME,
        r"\bxlaruntimeerror\b|\bjaxruntimeerror\b|\bxla\b.{0,40}\b(?:error|fail\w*)\b|\bhlo\s+module\b|\bjaxlib\b.{0,60}\berror\b",
        "XLA runtime/compiler error: the accelerator runtime's kind (TPU unless told otherwise) unless the rows just above read the status it wraps",
    ),
    // ---------------------------------------------------------------- coordinator-reported
    row(
        "worker.crash",
        K::WorkerCrash,
        r"\bworker[\w.:-]*\s+(?:process\s+)?(?:has\s+)?crash(?:ed|es)?\b|\bworker\s+crash\s+detected\b|\bworker\s+[^\s]+\s+(?:has\s+)?crash(?:ed|es)?\b|\bworkercrashederror\b|\bactordiederror\b|\bthe\s+(?:worker|actor)\s+died\s+unexpectedly\b|\bkilledworker\b|\bback-?off\s+restarting\s+failed\s+container\b|\bcrashloopbackoff\b|\bremote\s+rpc\s+client\s+disassociated\b|\bbrokenprocesspool\b|\bkernel\s+appears\s+to\s+have\s+died\b|\bworker\s+group\s+failed\b|\bworker\s+replica\(s\)\s+failed\b",
        "a worker crashed, as a coordinator reports it (Ray's WorkerCrashedError and ActorDiedError, Dask's KilledWorker, Spark's executor whose RPC client disassociated, a Kubernetes container restarted in a crash loop): after the rows that read a cause (memory, a device) in the same text; a process pool whose process died, a dead Jupyter kernel, torchrun's failed worker group, a training operator's failed worker replica",
    ),
    row(
        "worker.disconnected",
        K::WorkerDisconnected,
        r"\bworker[\w.:-]*\s+(?:[\w.:-]+\s+)?(?:disconnected|unreachable|not\s+responding|unresponsive|went\s+away|lost)\b|\bheartbeats?\s+(?:lost|missed)\b|\bmissed\s+[0-9]+\s+heartbeats?\b|\bno\s+heartbeats?\b|\blost\s+(?:connection|contact)\s+(?:to|with)\s+(?:the\s+)?worker\b|\bbrowser\s+disconnected\b|\bfailed\s+to\s+heartbeat\b|\bheartbeat\s+time(?:d\s*)?[\s-]?out\b|\bexecutorlostfailure\b|\bexecutor\s+heartbeat\s+timed\s+out\b",
        "a worker (or browser worker) stopped answering: disconnects, missed heartbeats (Dask's worker that failed to heartbeat, Spark's lost executor; after the memory rows: YARN's killed container says why)",
    ),
    // ---------------------------------------------------------------- network
    row(
        "k8s.image_missing",
        K::SoftwareException,
        r"\bfailed\s+to\s+pull\s+image\b.{0,300}\b(?:not\s*found|manifest\s+unknown|unauthorized|access\s+denied|pull\s+access\s+denied)\b|\binvalidimagename\b",
        "a container image that does not exist or may not be pulled: the job's spec is wrong, not the network (a pull that timed out stays a network failure)",
    ),
    row(
        "net.connection",
        K::Network,
        r"\bconnection\s+(?:reset|refused|aborted|closed|lost|dropped|timed\s+out|failed|error)\b|\bconnection(?:reset|refused|aborted)error\b|\bbrokenpipeerror\b|\bbroken\s+pipe\b|\be(?:connreset|connrefused|connaborted|pipe|netunreach|hostunreach|netdown|timedout)\b|\bnetwork\s+(?:is\s+)?(?:unreachable|down|error|failure)\b|\bno\s+route\s+to\s+host\b|\bname\s+or\s+service\s+not\s+known\b|\btemporary\s+failure\s+in\s+name\s+resolution\b|\bgetaddrinfo\b|\bcould\s+not\s+resolve\s+host\b|\bfailed\s+to\s+resolve\b|\b(?:failed|unable|could\s+not|couldn't|cannot)\s+(?:to\s+)?connect\b|\bconnect(?:ion)?\s+timed?\s*out\b|\bsocket\b.{0,30}\b(?:timed?\s*out|timeout|error|closed|hang\s+up|failed)\b|\bdistnetworkerror\b|\btcpstore\b|\bc10d\b.{0,40}\b(?:connect\w*|socket)\b|\bgloo\b.{0,60}\b(?:error|fail\w*|connect\w*)\b|\brendezvous\w*\b.{0,20}\b(?:error|fail\w*|closed)\b|\brendezvous\w*(?:connection|closed|timeout)error\b|\bconnect\b.{0,60}\bfailed\b|\bconnection\s+abort\w*|\bfailed\s+to\s+fetch\b|\bnetworkerror\b|\bnet::err_\w+|\bremote\s+end\s+closed\b|\bremotedisconnected\b|\bpeer\s+closed\b|\bclosed\s+by\s+(?:the\s+)?(?:remote\s+)?(?:peer|host)\b|\beof\s+occurred\s+in\s+violation\s+of\s+protocol\b|\bssl\w*error\b|\bhttp\w*\s*(?:error\s+)?50[234]\b|\bbad\s+gateway\b|\bservice\s+unavailable\b|\bgateway\s+time-?out\b|\w*connectionpool\b|\bmax\s+retries\s+exceeded\b|\bread\s+timed?\s*out\b|\bwebsocket\b.{0,40}\b(?:closed|error|fail\w*|disconnect\w*)\b|\bgrpc\b.{0,40}\b(?:unavailable|error|fail\w*)\b|\bunavailable:\s|\bstatuscode\.unavailable\b|\bpacket\s+loss\b|\blink\s+(?:is\s+)?down\b|\blink\s+flap\w*|\bserviceunavailable\b|\bnfs:?\s+server\b.{0,80}\bnot\s+responding\b|\blost\s+communication\s+with\b|\bunable\s+to\s+complete\s+a\s+tcp\s+connection\b|\bfatal\s+error\s+in\s+p?mpi_\w+:\s+other\s+mpi\s+error\b|\blustreerror\b.{0,200}\brc\s*=\s*-(?:107|110|113|104)\b|\bstale\s+(?:nfs\s+)?file\s+handle\b|\bestale\b",
        "connection reset/refused/timed out, DNS, sockets, TCPStore/c10d rendezvous, gRPC UNAVAILABLE, HTTP 5xx, an NFS server not responding, MPI daemons that lost each other or could not connect, MPICH's \"Other MPI error\" in a collective, Lustre's lost connections (rc -107, -110)",
    ),
    row(
        "net.throttled",
        K::Network,
        r"\(slowdown\)|\bplease\s+reduce\s+your\s+request\s+rate\b|\btoo\s+many\s+requests\b|\bhttp\w*\s*(?:error\s+)?429\b|\b429\s+client\s+error\b|\brequestlimitexceeded\b|\bthrottlingexception\b|\brate\s+limit(?:ed|\s+exceeded)\b|\brequests?\s+(?:was\s+|were\s+)?throttled\b",
        "a remote service refusing requests for their rate (S3 SlowDown, HTTP 429, throttling): transient, like the network",
    ),
    row(
        "coordinator.error",
        K::CoordinatorError,
        r"\bcoordinator\b.{0,30}\b(?:error|fail\w*|crash\w*|panic\w*|unavailable|unreachable|down|restart\w*)\b|\betcdserver:\s|\bunable\s+to\s+contact\s+slurm\s+controller\b|\bslurmctld\b.{0,40}\b(?:not\s+responding|down|unreachable|error)\b|\bstopped\s+sparkcontext\b|\bsparkcontext\s+was\s+shut\s+down\b|\bmaster\s+removed\s+our\s+application\b|\bfailed\s+to\s+reconnect\s+to\s+(?:the\s+)?scheduler\b|\bcould\s+not\s+find\s+any\s+running\s+ray\s+instance\b",
        "the coordinator itself failed (etcd, the Slurm controller, Spark's driver or master, the Dask scheduler)",
    ),
    // ---------------------------------------------------------------- timeouts
    row(
        "timeout.scheduler",
        K::Timeout,
        r"\bdue\s+to\s+time\s+limit\b|\btime\s+limit\s+(?:exceeded|reached)\b|\bexceeded\s+(?:the\s+|its\s+)?(?:time|wall-?\s*time|walltime|run\s*time)\s+limit\b|\bwalltime\b|\btimelimit\b|\bactivedeadlineseconds\b|\bactive\s+longer\s+than\s+specified\s+deadline\b|\bdeadlineexceeded\b|\bexceeded\s+the\s+maximum\s+execution\s+time\b|\bterm_(?:runlimit|cpulimit)\b",
        "the scheduler's time limit (Slurm TIME LIMIT, Kubernetes activeDeadlineSeconds)",
    ),
    row(
        "timeout.generic",
        K::Timeout,
        r"(?P<neg>\b(?:no|without|never|did\s+not|didn't|does\s+not|doesn't|will\s+not|won't)\s+|\b(?:attribute|argument|parameter|option|field|key|keyword)\s+'|\b(?:negotiated|configured|default|requested)\s+|--)?\btimed?[\s_-]?out\w*(?P<nil>\s*=\s*[0-9]|\s+(?:argument|parameter|kwarg|keyword)s?\b)?|\btiming\s+out\b|\bdeadline[\s_]exceeded\b|\bdeadline\s+(?:has\s+)?(?:expired|passed)\b|\bdeadline\s+(?:of\s+)?[0-9][0-9.]*\s*(?:ms|us|µs|s|secs?|seconds?|minutes?|min)?\s+(?:exceeded|missed|expired)\b|\bmissed\s+(?:its\s+|the\s+|a\s+)?deadline\b|\btook\s+too\s+long\b|\bhang\s+detected\b|\bhung\s+task\b|\bblocked\s+for\s+more\s+than\s+\S+\s+seconds\b",
        "an operation timed out (not \"no timeout\", \"did not time out\", an attribute or argument named 'timeout' or a \"timeout argument\", a `timeout=30` setting, a negotiated, configured, default or requested timeout)",
    ),
    // ---------------------------------------------------------------- crashes in the job
    row(
        "kernel.crash",
        K::WorkerCrash,
        r"\bbug:\s+unable\s+to\s+handle\s+(?:kernel\b|page\s+fault\b|paging\s+request\b)|\bbug:\s+kernel\s+null\s+pointer\s+dereference\b|\boops:\s+\w+\s+\[#|\bkernel\s+panic\b|\bgeneral\s+protection\s+fault[,:]|\bbug:\s+soft\s+lockup\b|\bdetected\s+hard\s+lockup\b|\bhard\s+lockup\s+on\s+cpu\b",
        "the worker's kernel crashed or locked up (BUG, Oops, a general protection fault in the kernel, a panic, a soft or hard lockup), and every job on it with it; before the job's own crashes, whose words (\"null pointer dereference\") the kernel's share",
    ),
    row(
        "host.bus_error",
        K::Unknown,
        r"\bbus\s+error\b|\bsigbus\b",
        "SIGBUS without more context: shared memory, a truncated mmap'd file or hardware",
    ),
    row(
        "sw.crash",
        K::SoftwareException,
        r"\bfatal\s+python\s+error\b|\bdouble\s+free\b|\bfree\(\):\s+invalid|\bmalloc\(\):|\bcorrupted\s+(?:top\s+size|size\s+vs|double-linked\s+list|unsorted\s+chunks)\b|\bmemory\s+corruption\b|\bstack\s+smashing\b|\bstack\s+overflow\b|\brecursionerror\b|\bmaximum\s+recursion\s+depth\b|\bterminate\s+called\s+after\s+throwing\b|\baborted\(\)|\bpanicked\s+at\b|\bnullpointerexception\b|\bnull\s+pointer\s+dereference\b",
        "the process crashed in its own code (Python fatal error, heap corruption, panic, uncaught C++ exception)",
    ),
    by_hw(
        "crash.signal",
        &CRASH_SIGNAL,
        r"\bsegmentation\s+fault\b|\bsegfault\b|\bsigsegv\b|\bseg[v_]maperr\b|\bcore\s+dumped\b|\bsigabrt\b|\baborted\s+\(core\b|\bsigill\b|\billegal\s+instruction\b|\bsigfpe\b|\bfloating\s+point\s+exception\b|\breceived\s+signal\s+(?:4|6|8|11)\b|\bgeneral\s+protection\s+(?:fault\s+)?ip:",
        "killed by a crash signal (SIGSEGV, SIGABRT, SIGILL, SIGFPE): a bug in the job, or the browser itself on a browser worker",
    ),
    // ---------------------------------------------------------------- data
    row(
        "data.corrupt",
        K::DataError,
        r"\bdatalosserror\b|\bdata[\s_]loss\b|\bcasterror\b|\bcouldn't\s+cast\b|\bdid\s+not\s+match\s+any\s+variant\b|\bunable\s+to\s+load\s+weights\s+from\b|\b(?:corrupt(?:ed)?|truncated|malformed|damaged)\s+(?:record|file|data|image|archive|checkpoint|header|block|input|zip|tar|shard|example|jpeg|png|parquet|tfrecord)s?\b|\bimage\s+file\s+is\s+truncated\b|\bunidentifiedimageerror\b|\bcannot\s+identify\s+image\s+file\b|\bjsondecodeerror\b|\bexpecting\s+(?:value|property\s+name)\b|\bunterminated\s+string\b|\bunicodedecodeerror\b|\binvalid\s+(?:start|continuation)\s+byte\b|\bcan't\s+decode\s+byte\b|\bunpicklingerror\b|\binvalid\s+load\s+key\b|\bran\s+out\s+of\s+input\b|\bpickle\s+data\s+was\s+truncated\b|\bfailed\s+finding\s+central\s+directory\b|\bnot\s+a\s+zip\s+file\b|\bbadzipfile\b|\bnot\s+a\s+gzipped\s+file\b|\bcrc\w*\s+(?:check\s+)?(?:failed|mismatch|error)\b|\bchecksum\s+(?:mismatch|does\s+not\s+match|failed|error)\b|\bhash\s+mismatch\b|\bpremature\s+end\s+of\b|\binvalid\s+jpeg\b|\bbroken\s+data\s+stream\b|\bparsererror\b|\berror\s+tokenizing\s+data\b|\bheadertoolarge\b|\berror\s+while\s+deserializing\b|\bincomplete\s+metadata\b|\barrowinvalid\b|\bunexpected\s+end\s+of\s+(?:file|data|stream|input|json)\b|\beoferror\b|\bcorrupt(?:ed)?\b|\binput\s+contains\s+nan\b|\bdecod\w*\s+error\b|\bdecompress\w*\s+(?:error|failed)\b|\bwhile\s+decompressing\b|\binvalid\s+(?:utf-?8|json|csv|header|magic)\b|\bcould\s+not\s+convert\s+string\s+to\b|\bdatasetgeneration\w*error\b|\binvalid_protobuf\b|\bprotobuf\s+parsing\s+failed\b|\bcouldn't\s+deserialize\s+thrift\b|\btprotocolexception\b|\blibsndfileerror\b|\berror\s+opening\s+'[^'\n]{1,200}':\s+format\s+not\s+recogni[sz]ed\b|\binvalid\s+nal\s+unit\s+size\b|\berror\s+while\s+decoding\s+mb\b|\binvalid\s+data\s+found\s+when\s+processing\s+input\b|\bmoov\s+atom\s+not\s+found\b|\bunknown\s+image\s+file\s+format\b|\bnonmatching\w*error\b|\bdecompressionbomb\w*|\bbad\s+object\s+header\b|\bunable\s+to\s+(?:synchronously\s+)?open\s+(?:object|file)\s+\((?:bad|truncated|file\s+signature\s+not\s+found)",
        "corrupt, truncated or undecodable input (TFRecord data loss, images, JSON, pickles, archives, Parquet pages, audio and video streams, a dataset whose files do not cast to its features)",
    ),
    // ---------------------------------------------------------------- software
    row(
        "sw.tensorrt",
        K::SoftwareException,
        r"\[trt\]\s*\[e\]|\[e\]\s*\[trt\]|\btensorrt\b.{0,60}\berror\s+code\s+[0-9]+\b",
        "TensorRT's own errors (`[TRT] [E] N: ... Error Code N`): an engine that cannot be built or loaded as configured (after the CUDA and memory rows, which read the TensorRT errors that wrap them)",
    ),
    row(
        "sw.python",
        K::SoftwareException,
        r"\b(?:value|type|key|index|attribute|name|import|modulenotfound|notimplemented|assertion|zerodivision|unboundlocal|syntax|indentation|lookup|filenotfound|isadirectory|notadirectory|permission|fileexists|overflow|arithmetic|reference|range|buffer)error\b|\bstopiteration\b|\bfloatingpointerror\b|\bconcretizationtypeerror\b|\btracer\w*error\b|\bno\s+module\s+named\b|\bcannot\s+import\s+name\b|\btraceback\s+\(most\s+recent\s+call\s+last\)",
        "a Python/JS exception raised by the job's own code",
    ),
    row(
        "sw.native",
        K::SoftwareException,
        r"\bstd::\w+|\bwhat\(\):|\bcheck\s+failed\b|\binternal\s+assert\s+failed\b|\bassert(?:ion)?\s+(?:`[^`\n]{0,80}`\s+)?failed\b|\bwas\s+incorrect\s+on\s+entry\s+to\b|\bmkl\s+error\b|\blapack\w*\s+error\b|\bundefined\s+symbol\b|\bsymbol\s+lookup\s+error\b|\bcannot\s+open\s+shared\s+object\s+file\b|\bfailed\s+to\s+(?:open|load)\s+(?:shared\s+)?lib\w*|\bdll\s+load\s+failed\b|\bversion\s+`glibc|\bexception\s+in\s+thread\b|\bbackendcompilerfailed\b|\btorch\._dynamo\b.{0,40}\b(?:error|exc\w*)\b|\bunhandled\s+(?:exception|promise\s+rejection)\b|\buncaught\s+(?:exception|\w*error)\b|\bloaded\s+runtime\s+cudnn\s+library\b.{0,80}\bcompiled\s+with\b|\btensilelibrary\w*\.dat\b",
        "native-library misuse or a broken environment (BLAS/MKL argument errors, missing .so, failed checks)",
    ),
    row(
        "sw.ml_runtime",
        K::SoftwareException,
        r"\bshape\s+mismatch\b|\bsize\s+mismatch\b|\bshapes\s+cannot\s+be\s+multiplied\b|\bdimension\s+mismatch\b|\bincompatible\s+shapes?\b|\bexpected\s+input\s+with\s+shape\b|\bexpected\b.{0,100}\bbut\s+(?:got|found|received)\b|\bno\s+available\s+backend\s+found\b|\bbackend\s+not\s+found\b|\bexecution\s+provider\b.{0,40}\bnot\s+supported\b|\bcan't\s+append\s+execution\s+provider\b|\bcannot\s+resolve\s+operator\b|\bopsets?\b|\bunsupported\s+(?:op|operator|operation|data\s*type|dtype|model)\b|\boperator\b.{0,40}\bnot\s+(?:supported|implemented)\b|\bnot[\s_]implemented\b|\bcompileerror\b|\bwebassembly\.\w+|\bfunction\s+signature\s+mismatch\b|\bnon-zero\s+status\s+code\s+returned\b|\[webgpu\]\s+kernel\b.{0,80}\bfailed\b|\bfailed\s+to\s+execute\s+'[^'\n]{1,40}'\s+on\s+'gpu\w*'|\bexceeds\s+the\s+(?:adapter\s+)?limit\b|\binvalid_argument\b|\bgot\s+invalid\s+dimensions\b|\bnavigator\.gpu\b|\bwebgpu\b.{0,30}\bnot\s+(?:supported|available|enabled)\b|\bwebnn\b.{0,60}\b(?:not\s+supported|unsupported|failed\s+to\s+build)\b|\bno\s+(?:appropriate|suitable|compatible)\s+(?:gpu\s*)?adapter\b|\brequestadapter\b|\bfailed\s+to\s+(?:get|request|find)\s+(?:a\s+)?(?:gpu\s*|webgpu\s+)?adapter\b|\bwebgl\w*\b.{0,30}\bnot\s+(?:supported|available)\b|\bgpuvalidationerror\b|\bvalidation\s+error\b|\bmodel\b.{0,40}\bnot\s+found\b|\bnot\s+found\s+in\s+(?:the\s+)?(?:model\s+)?registry\b|\bno\s+such\s+file\s+or\s+directory\b|\bfile\s+not\s+found\b|\bdoes\s+not\s+exist\b|\bpermission\s+denied\b|\bcommand\s+not\s+found\b|\btoo\s+many\s+open\s+files\b|\bemfile\b|\binvalidargumenterror\b|\brepository\s+not\s+found\b|\b40[134]\s+client\s+error\b|\bnot\s+compiled\s+with\s+cuda\b|\bcuda\.is_available\(\)\s+(?:is|returned)\s+false\b|\berror\(s\)\s+in\s+loading\s+state_dict\b|\b(?:missing|unexpected)\s+key\(s\)\s+in\s+state_dict\b|\bis\s+invalid\s+for\s+input\s+of\s+size\b|\bcould\s+not\s+find\s+a\s+version\s+that\s+satisfies\b|\bno\s+matching\s+distribution\s+found\b|\bwgsl\b.{0,40}\b(?:error|fail\w*)\b|\bshader\b.{0,40}\b(?:compil\w*|validation)\s+(?:error|fail\w*)\b|\binvalid\s+(?:config\w*|shape|dtype|input|option|parameter)\b|\bmisconfigur\w*|\bcan't\s+create\s+a\s+session\b|\bfailed\s+to\s+load\s+external\s+data\s+file\b|\bkernel\s+'[^'\n]{1,60}'\s+not\s+registered\b|\bnot\s+registered\s+for\s+backend\b|\bis\s+neither\s+a\s+type\s+of\s+a\s+primitive\s+operation\b|\binvalid\s+argument:\s|\bfailed\s+to\s+execute\s+'createcontext'\s+on\s+'ml'|\bwebnn\s+is\s+blocklisted\b|\b(?:error\s+creating|failed\s+to\s+create)\s+(?:a\s+|the\s+)?webgl\w*\s+(?:canvas\s+)?context\b|\bkgpuservice\b|\bgreater\s+than\s+webgl\s+maximum\b|\brequires\s+webgpu\s+(?:extension|feature)\b",
        "the model or runtime cannot run as configured: shapes, unsupported operators/backends (ORT-web, WebNN, WebGPU unavailable, a TF.js kernel not registered for its backend, an op the binary does not have), a session that cannot be created, missing files",
    ),
    by_hw(
        "api.status",
        &API_STATUS,
        r"\binitiali[sz]ation\s+error\b|\binvalid\s+argument\b|\boperation\s+not\s+(?:supported|permitted)\b",
        "bare runtime status strings: cudaGetErrorString texts on a GPU, usage errors elsewhere",
    ),
    row(
        "sw.unsupported",
        K::SoftwareException,
        r"\bnot\s+supported\b|\bunsupported\b",
        "something the job asked for is not supported",
    ),
    // ---------------------------------------------------------------- weakest
    row(
        "cascade.aborted",
        K::Unknown,
        r"\bin\s+abort\s+state\b|\bcommunicator\s+was\s+aborted\b|\bncclcommabort\b|\bcomm\w*\s+(?:was\s+)?aborted\b",
        "an NCCL communicator was aborted because of an earlier failure: the cause is elsewhere",
    ),
    row(
        "cascade.wrapper",
        K::Unknown,
        r"\bcancell?ed\s+at\b|\bchildfailederror\b|\bexited\s+unexpectedly\b|\bcaught\s+\w+\s+in\s+(?:dataloader\s+worker|replica)\b|\bprocessraisedexception\b|\bterminated\s+with\s+(?:exit\s+code|signal)\b|\breached\s+the\s+specified\s+backoff\s+limit\b|\bbackofflimitexceeded\b",
        "a wrapper or cancellation notice (a Kubernetes Job past its backoff limit too): the cause is in another line",
    ),
    row(
        "nccl.other",
        K::Network,
        r"\bnccl\s+(?:error|warn|failure)\b|\bnccl\b.{0,40}\b(?:error|fail\w*)\b|\bdistbackenderror\b|\bucx\s+(?:error|err)\b|\blibfabric:[^\n]{0,120}\b(?:err\w*|fail\w*)\b",
        "any other NCCL failure, and UCX's and libfabric's (EFA, verbs) errors: most are communication problems (after the timeout rows: UCX's endpoint timeout is a timeout)",
    ),
    row(
        "sw.runtime_error",
        K::SoftwareException,
        r"\bruntimeerror\b",
        "a RuntimeError nothing more specific explains: most are usage errors in the job",
    ),
];

/// Caller type hints (normalised: lowercase, `-` and spaces as `_`) consulted only when the
/// message and stack trace are not recognised. A hint that is a [`FailureKind`] name is taken as
/// that kind.
pub static TYPE_HINTS: &[(&str, Decide)] = &[
    ("network_error", Decide::Kind(K::Network)),
    ("connection_error", Decide::Kind(K::Network)),
    ("communication_error", Decide::Kind(K::Network)),
    ("timeout_error", Decide::Kind(K::Timeout)),
    ("cuda_error", Decide::Kind(K::CudaError)),
    ("gpu_error", Decide::Kind(K::CudaError)),
    ("webgpu_error", Decide::Kind(K::WebgpuContextLost)),
    ("webgl_error", Decide::Kind(K::WebgpuContextLost)),
    ("browser_error", Decide::Kind(K::BrowserCrash)),
    ("webnn_error", Decide::Kind(K::SoftwareException)),
    ("resource_error", Decide::ByHardware(&MEMORY)),
    ("memory_error", Decide::ByHardware(&MEMORY)),
    ("oom", Decide::ByHardware(&MEMORY)),
    ("out_of_memory", Decide::ByHardware(&MEMORY)),
    ("hardware_error", Decide::ByHardware(&HARDWARE)),
    ("tpu_error", Decide::Kind(K::TpuError)),
    ("npu_error", Decide::Kind(K::NpuError)),
    ("worker_error", Decide::Kind(K::WorkerCrash)),
    ("worker_crash", Decide::Kind(K::WorkerCrash)),
    ("worker_disconnected", Decide::Kind(K::WorkerDisconnected)),
    ("coordinator_error", Decide::Kind(K::CoordinatorError)),
    ("runtime_error", Decide::Kind(K::SoftwareException)),
    ("software_error", Decide::Kind(K::SoftwareException)),
    ("value_error", Decide::Kind(K::SoftwareException)),
    ("data_error", Decide::Kind(K::DataError)),
    ("disk_error", Decide::Kind(K::DiskFull)),
    ("storage_error", Decide::Kind(K::DiskFull)),
];

/// Process exit codes that decide a kind on their own: `(code, kind, rule id)`. Consulted after the
/// message and stack trace; negative codes are Python's `-signal`.
pub static EXIT_CODES: &[(i32, FailureKind, &str)] = &[
    (137, K::OomHost, "exit.sigkill"),
    (-9, K::OomHost, "exit.sigkill"),
    (139, K::SoftwareException, "exit.sigsegv"),
    (-11, K::SoftwareException, "exit.sigsegv"),
    (134, K::SoftwareException, "exit.sigabrt"),
    (-6, K::SoftwareException, "exit.sigabrt"),
    (124, K::Timeout, "exit.timeout"),
];
