//! Kernel-log reader: dmesg, kmsg and syslog lines → failure reports for the lines that
//! record a failure; every other line is skipped (counted, not rejected).
//!
//! Line framings (all seen in `shared/data/real/gpud_kmsg_samples/`):
//!
//! | framing | example | time |
//! |---|---|---|
//! | kmsg | `6,3964,206764307,-;msg` | boot time + µs since boot |
//! | dmesg relative | `<4>[  201.650687] msg`, `[  201.650687] msg` | boot time + seconds |
//! | dmesg `-T` | `[Sun Feb 23 16:24:18 2025] msg` | as written (UTC) |
//! | dmesg `--decode --time-format iso` | `kern  :warn  : 2025-01-21T04:41:44,283302+00:00 msg` | as written |
//! | syslog | `Feb 23 16:24:18 node7 kernel: [ 201.6] msg` | as written, year from options; host → worker |
//! | journal short-iso | `2025-02-23T16:24:18+0000 node7 kernel: msg` | as written; host → worker |
//! | fabric manager | `[Feb 25 2025 13:59:45] [ERROR] msg` | as written |
//!
//! Failures recognised in the message: NVIDIA `NVRM: Xid (PCI:…): N, pid=…`, NVSwitch
//! `SXid (PCI:…): N`, `NVRM: … fallen off the bus`, the OOM killer (`oom-kill:…pid=N` and
//! `Out of memory: Killed process N (name)`, the second skipped when it repeats the first's
//! pid), machine checks (`mce: … Machine check …`), uncorrected EDAC memory errors
//! (`EDAC MC0: 1 UE …`; a corrected one, `CE`, is skipped: the hardware fixed it and nothing
//! failed), segfaults (`name[pid]: segfault at …`) and a process's general protection fault
//! (`traps: name[pid] general protection fault …`), the kernel's own crashes (`BUG: unable to
//! handle …`, `BUG: kernel NULL pointer dereference`, `Oops: …`, `general protection fault, …`,
//! `Kernel panic - not syncing: …`, lockups), and hung tasks (`INFO: task name:pid blocked
//! for more than N seconds`).
//!
//! Kernel lines carry no task: the worker is [`KernelOptions::worker`], else the syslog
//! host, else the input's file stem; the task is `pid-N` when the line names a process,
//! else the device (`gpu-0000:9b:00`, `nvswitch-…`, `cpu-N`, `mc-N`), else the event
//! (`oom`, `mce`, `edac`, `kernel` for the kernel's own crash). The hardware class is GPU (vendor NVIDIA) for NVRM/SXid lines,
//! CPU otherwise. A failure line is rejected only when its own fields do not read (an Xid
//! without a numeric code, a timestamp that does not exist).
//!
//! One event is one failure: a line that repeats the previous one of its worker, task, kind
//! of line and Xid code within a second (a driver prints an Xid once per SM, channel or
//! engine, a dozen lines in a millisecond) is left out, and so is the "fallen off the bus"
//! line the driver prints within seconds after an Xid 79 of the same GPU. A kernel crash prints
//! several such lines (`BUG: …`, then `Oops: …`, then perhaps `Kernel panic …`): those within
//! ten seconds of the first on a worker are one failure; a stall reported again while it lasts
//! (a soft lockup of one process, a hung task) is one failure while its reports come at most
//! ten minutes apart.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Datelike, NaiveDateTime};
use regex::Regex;

use super::{file_len, open, Body, Chunk, IngestError, Item, Source};
use crate::model::{ErrorInfo, FailureReport, HardwareClass, HardwareProfile, Timestamp};

/// How kernel lines become records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KernelOptions {
    /// Worker id for every line (default: the syslog host, else the file stem).
    pub worker: Option<String>,
    /// When the machine booted: relative timestamps (`[201.65]`, kmsg µs) are offsets from
    /// it (default: the Unix epoch).
    pub boot_time: Option<Timestamp>,
    /// Year of syslog timestamps, which carry none (default: the boot time's year, else 1970).
    pub year: Option<i32>,
}

struct Patterns {
    kmsg: Regex,
    prio: Regex,
    facility: Regex,
    iso: Regex,
    host: Regex,
    syslog: Regex,
    ctime: Regex,
    fabric: Regex,
    relative: Regex,
    xid: Regex,
    sxid: Regex,
    pci: Regex,
    pid: Regex,
    oom_kill: Regex,
    oom_killed: Regex,
    mce: Regex,
    cpu: Regex,
    edac: Regex,
    /// An EDAC line's corrected error (`CE`): the hardware fixed it, nothing failed.
    corrected: Regex,
    /// An EDAC line's uncorrected error (`UE`).
    uncorrected: Regex,
    mc: Regex,
    segfault: Regex,
    /// A process's general protection fault (`traps: name[pid] general protection fault`).
    traps: Regex,
    /// The kernel's own crash: BUG, Oops, a general protection fault in the kernel, a panic,
    /// a lockup.
    kernel_crash: Regex,
    /// A process stuck in the kernel (`INFO: task name:pid blocked for more than N seconds`).
    hung_task: Regex,
    /// The process a kernel crash line names at its end (`… [python:1234]`).
    comm_pid: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        // Invariant: the patterns are literals checked by the unit tests.
        let re = |s: &str| Regex::new(s).expect("valid kernel-log pattern");
        Patterns {
            kmsg: re(r"^(\d+),(\d+),(\d+),[^;]*;(.*)$"),
            prio: re(r"^<\d+>"),
            facility: re(r"^[a-z]+\s*:\s*[a-z]+\s*:\s?"),
            iso: re(
                r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s+",
            ),
            host: re(r"^(\S+)\s+kernel:\s?"),
            syslog: re(r"^([A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2})\s+(\S+)\s+kernel:\s?"),
            ctime: re(r"^\[([A-Z][a-z]{2} [A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2} \d{4})\]\s?"),
            fabric: re(r"^\[([A-Z][a-z]{2} +\d{1,2} \d{4} \d{2}:\d{2}:\d{2})\]\s?"),
            relative: re(r"^\[\s*(\d+\.\d+)\]\s?"),
            xid: re(r"NVRM: Xid \(PCI:([0-9A-Fa-f:.]+)\): (\d+)\b"),
            sxid: re(r"SXid \(PCI:([0-9A-Fa-f:.]+)\): (\d+)\b"),
            pci: re(r"(?:PCI:|GPU )([0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}[0-9A-Fa-f:.]*)"),
            pid: re(r"\bpid=(\d+)"),
            oom_kill: re(r"^oom-kill:"),
            oom_killed: re(r"(?i)out of memory: kill(?:ed)? process (\d+)"),
            mce: re(r"(?i)\bmachine check\b"),
            cpu: re(r"\bCPU (\d+)"),
            edac: re(r"^EDAC \S+.*\b(?:CE|UE|[Ee]rrors?)\b"),
            corrected: re(r"\bCE\b|(?i)\bcorrected\b"),
            uncorrected: re(r"\bUE\b|(?i)\buncorrect"),
            mc: re(r"\bMC(\d+)"),
            segfault: re(r"^\S+\[(\d+)\]: segfault at "),
            traps: re(r"^traps: \S+\[(\d+)\] general protection(?: fault)?\b"),
            kernel_crash: re(
                r"^(?:BUG: unable to handle\b|BUG: kernel NULL pointer dereference\b|Oops: |general protection fault\b|Kernel panic - not syncing\b|(?:watchdog: )?BUG: soft lockup\b|(?:NMI )?(?:[Ww]atchdog: )?(?:Watchdog detected hard LOCKUP|[Hh]ard LOCKUP)\b)",
            ),
            hung_task: re(r"^INFO: task \S+:(\d+) blocked for more than \d+ seconds"),
            comm_pid: re(r"\[\S+:(\d+)\]$"),
        }
    })
}

/// What one line is.
#[derive(Debug, PartialEq)]
enum Line {
    Skip,
    Failure(Box<FailureReport>),
    Bad(String),
}

/// Line-by-line state of one input.
#[derive(Debug)]
struct Parser {
    opts: KernelOptions,
    fallback_worker: String,
    year: i32,
    last_oom_pid: Option<String>,
    /// When each event (worker, task, line kind, GPU, Xid code) was last recorded as a failure.
    last_seen: HashMap<String, i64>,
    /// The last Xid 79 (GPU fallen off the bus): worker, GPU, time.
    last_xid79: Option<(String, String, i64)>,
    /// When each worker's last kernel crash was recorded (its first line).
    last_crash: HashMap<String, i64>,
}

impl Parser {
    fn new(path: &Path, opts: KernelOptions) -> Self {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let fallback_worker: String = stem
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() || c == '\\' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let year = opts.year.unwrap_or_else(|| {
            opts.boot_time
                .and_then(|t| DateTime::from_timestamp_micros(t.as_micros()))
                .map_or(1970, |d| d.year())
        });
        Parser {
            opts,
            fallback_worker: if fallback_worker.is_empty() {
                "kernel".into()
            } else {
                fallback_worker
            },
            year,
            last_oom_pid: None,
            last_seen: HashMap::new(),
            last_xid79: None,
            last_crash: HashMap::new(),
        }
    }

    fn boot(&self) -> i64 {
        self.opts.boot_time.map_or(0, Timestamp::as_micros)
    }

    fn parse(&mut self, line: &str) -> Line {
        let p = patterns();
        if line.trim().is_empty() || line.starts_with([' ', '\t']) {
            // Blank, or a kmsg continuation (" SUBSYSTEM=...").
            return Line::Skip;
        }
        let mut host: Option<&str> = None;
        let mut time: Option<Result<Timestamp, String>> = None;
        let mut rest = line;
        if let Some(c) = p.kmsg.captures(line) {
            let usec: i64 = c[3].parse().unwrap_or(i64::MAX);
            time = Some(
                self.boot()
                    .checked_add(usec)
                    .and_then(Timestamp::from_micros_checked)
                    .ok_or_else(|| format!("kmsg time {} µs is out of range", &c[3])),
            );
            rest = c.get(4).map_or("", |m| m.as_str());
        } else {
            rest = strip(&p.prio, rest);
            rest = strip(&p.facility, rest);
            if let Some(c) = p.iso.captures(rest) {
                time = Some(parse_iso(&c[1]));
                rest = &rest[c[0].len()..];
                if let Some(h) = p.host.captures(rest) {
                    host = h.get(1).map(|m| m.as_str());
                    rest = &rest[h[0].len()..];
                }
            } else if let Some(c) = p.syslog.captures(rest) {
                time = Some(self.parse_syslog(&c[1]));
                host = c.get(2).map(|m| m.as_str());
                rest = &rest[c[0].len()..];
            } else if let Some(c) = p.ctime.captures(rest) {
                time = Some(parse_naive(&c[1], "%a %b %d %H:%M:%S %Y"));
                rest = &rest[c[0].len()..];
            } else if let Some(c) = p.fabric.captures(rest) {
                time = Some(parse_naive(&c[1], "%b %d %Y %H:%M:%S"));
                rest = &rest[c[0].len()..];
            }
            if let Some(c) = p.relative.captures(rest) {
                if time.is_none() {
                    time = Some(parse_relative(self.boot(), &c[1]));
                }
                rest = &rest[c[0].len()..];
            }
        }
        let msg = rest.trim_end();
        let Some(event) = self.event(msg) else {
            return Line::Skip;
        };
        let event = match event {
            Ok(e) => e,
            Err(reason) => return Line::Bad(reason),
        };
        let timed = time.is_some();
        let timestamp = match time {
            Some(Ok(t)) => Some(t),
            Some(Err(reason)) => return Line::Bad(reason),
            None => self.opts.boot_time,
        };
        let worker = self
            .opts
            .worker
            .as_deref()
            .or(host)
            .unwrap_or(&self.fallback_worker)
            .to_string();
        // Only a line's own time tells a repeat (an untimed line gets the boot time).
        if let Some(t) = timestamp.filter(|_| timed).map(Timestamp::as_micros) {
            if self.repeats(&worker, &event, t) {
                return Line::Skip;
            }
        }
        let mut hardware = HardwareProfile::of_class(event.class);
        if event.class == HardwareClass::Gpu {
            hardware.vendor = Some("NVIDIA".into());
        }
        Line::Failure(Box::new(FailureReport {
            task_id: event.task,
            worker_id: worker,
            hardware: Some(hardware),
            platform: None,
            error: ErrorInfo {
                message: msg.to_string(),
                type_hint: Some(event.hint.to_string()),
                stacktrace: None,
                exit_code: None,
            },
            timestamp,
            task: None,
            attempt: None,
            seq: None,
            t_offset_s: None,
            task_is_new: None,
            template: None,
            ml_feedback: None,
        }))
    }

    /// The failure a message records: `None` for other lines, `Err` for a failure line whose
    /// fields do not read.
    fn event(&mut self, msg: &str) -> Option<Result<Event, String>> {
        let p = patterns();
        let pid = |m: &str| p.pid.captures(m).map(|c| format!("pid-{}", &c[1]));
        if msg.contains("NVRM: Xid") {
            return Some(match p.xid.captures(msg) {
                Some(c) => Ok(Event {
                    class: HardwareClass::Gpu,
                    task: pid(msg).unwrap_or_else(|| format!("gpu-{}", pci(&c[1]))),
                    hint: "nvidia_xid",
                    gpu: Some((device(&c[1]), c[2].parse().ok())),
                }),
                None => Err("NVIDIA Xid line without a PCI address and a numeric code".into()),
            });
        }
        if msg.contains("SXid") {
            return Some(match p.sxid.captures(msg) {
                Some(c) => Ok(Event {
                    class: HardwareClass::Gpu,
                    task: format!("nvswitch-{}", pci(&c[1])),
                    hint: "nvidia_sxid",
                    gpu: Some((device(&c[1]), c[2].parse().ok())),
                }),
                None => Err("NVSwitch SXid line without a PCI address and a numeric code".into()),
            });
        }
        if msg.contains("NVRM:") && msg.contains("fallen off the bus") {
            let address = p.pci.captures(msg).map(|c| c[1].to_string());
            let task = address
                .as_deref()
                .map_or_else(|| "gpu".to_string(), |a| format!("gpu-{}", device(a)));
            return Some(Ok(Event {
                class: HardwareClass::Gpu,
                task,
                hint: "gpu_fallen_off_bus",
                gpu: address.map(|a| (device(&a), None)),
            }));
        }
        if p.oom_kill.is_match(msg) {
            let task = pid(msg);
            self.last_oom_pid.clone_from(&task);
            return Some(Ok(Event {
                class: HardwareClass::Cpu,
                task: task.unwrap_or_else(|| "oom".into()),
                hint: "oom_killer",
                gpu: None,
            }));
        }
        if let Some(c) = p.oom_killed.captures(msg) {
            let task = format!("pid-{}", &c[1]);
            if self.last_oom_pid.take().as_deref() == Some(task.as_str()) {
                return None; // the oom-kill line of the same kill was already a record
            }
            return Some(Ok(Event {
                class: HardwareClass::Cpu,
                task,
                hint: "oom_killer",
                gpu: None,
            }));
        }
        if p.mce.is_match(msg) {
            let task = p
                .cpu
                .captures(msg)
                .map_or_else(|| "mce".to_string(), |c| format!("cpu-{}", &c[1]));
            return Some(Ok(Event {
                class: HardwareClass::Cpu,
                task,
                hint: "machine_check",
                gpu: None,
            }));
        }
        if p.edac.is_match(msg) {
            // A corrected error (CE) is the memory controller doing its job: nothing failed,
            // so the line is skipped like any other that records no failure. An
            // uncorrected one (UE) lost data.
            if p.corrected.is_match(msg) && !p.uncorrected.is_match(msg) {
                return None;
            }
            let task =
                p.mc.captures(msg)
                    .map_or_else(|| "edac".to_string(), |c| format!("mc-{}", &c[1]));
            return Some(Ok(Event {
                class: HardwareClass::Cpu,
                task,
                hint: "edac",
                gpu: None,
            }));
        }
        if let Some(c) = p.traps.captures(msg) {
            return Some(Ok(Event {
                class: HardwareClass::Cpu,
                task: format!("pid-{}", &c[1]),
                hint: "segfault",
                gpu: None,
            }));
        }
        if p.kernel_crash.is_match(msg) {
            // The node itself failed, and every task on it: the task is the event unless
            // the line names its process (a soft lockup's `[python:1234]`).
            let task = p
                .comm_pid
                .captures(msg)
                .map_or_else(|| KERNEL_TASK.to_string(), |c| format!("pid-{}", &c[1]));
            return Some(Ok(Event {
                class: HardwareClass::Cpu,
                task,
                hint: "kernel_crash",
                gpu: None,
            }));
        }
        if let Some(c) = p.hung_task.captures(msg) {
            return Some(Ok(Event {
                class: HardwareClass::Cpu,
                task: format!("pid-{}", &c[1]),
                hint: "hung_task",
                gpu: None,
            }));
        }
        if let Some(c) = p.segfault.captures(msg) {
            return Some(Ok(Event {
                class: HardwareClass::Cpu,
                task: format!("pid-{}", &c[1]),
                hint: "segfault",
                gpu: None,
            }));
        }
        None
    }

    /// Whether the event at `t` (µs) repeats one already recorded (see [`REPEAT_WINDOW_US`]
    /// and [`FOLLOW_UP_US`]); records it otherwise.
    fn repeats(&mut self, worker: &str, e: &Event, t: i64) -> bool {
        if let (Some((gpu, None)), Some((w, g, at))) = (&e.gpu, &self.last_xid79) {
            if e.hint == "gpu_fallen_off_bus"
                && w == worker
                && g == gpu
                && (0..=FOLLOW_UP_US).contains(&(t - at))
            {
                return true;
            }
        }
        if e.hint == "kernel_crash" || e.hint == "hung_task" {
            // A stall of a process (a soft lockup naming it, a hung task) is reported again
            // while it lasts (every 20-30 s, every 120 s): one failure while the reports keep
            // coming, STALL_US apart at most. A crash (BUG, Oops, panic) prints several
            // lines at once: the first on the worker counts, FOLLOW_UP_US after it.
            let stall = e.task != KERNEL_TASK;
            let (key, window) = if stall {
                (
                    format!("{worker}\u{1f}{}\u{1f}{}", e.task, e.hint),
                    STALL_US,
                )
            } else {
                (worker.to_string(), FOLLOW_UP_US)
            };
            let repeat = self
                .last_crash
                .get(&key)
                .is_some_and(|&at| (0..=window).contains(&(t - at)));
            if self.last_crash.len() >= 4096 {
                self.last_crash.clear();
            }
            if stall || !repeat {
                self.last_crash.insert(key, t);
            }
            return repeat;
        }
        if let Some((gpu, Some(79))) = &e.gpu {
            self.last_xid79 = Some((worker.to_string(), gpu.clone(), t));
        }
        let (gpu, code) = e
            .gpu
            .as_ref()
            .map_or(("", -1), |g| (g.0.as_str(), g.1.map_or(-1, i64::from)));
        let key = format!(
            "{worker}\u{1f}{}\u{1f}{}\u{1f}{gpu}\u{1f}{code}",
            e.task, e.hint
        );
        // A repeat is within the window after the event's first line (the window does not
        // slide with the repeats: a line every 0.9 s for an hour is many failures).
        if let Some(&first) = self.last_seen.get(&key) {
            if (0..=REPEAT_WINDOW_US).contains(&(t - first)) {
                return true;
            }
        }
        if self.last_seen.len() >= 4096 {
            // Entries within the window either way: a log whose times go backwards
            // (`journalctl -r`, a syslog across New Year) kept every later entry, so the map
            // never shrank and each line scanned all of it (input audit: quadratic).
            self.last_seen
                .retain(|_, &mut l| t.abs_diff(l) <= REPEAT_WINDOW_US as u64);
            if self.last_seen.len() >= 4096 {
                // 4,096 distinct failures within the window: start afresh rather than scan
                // them all again on the next line.
                self.last_seen.clear();
            }
        }
        self.last_seen.insert(key, t);
        false
    }

    fn parse_syslog(&self, s: &str) -> Result<Timestamp, String> {
        parse_naive(&format!("{} {s}", self.year), "%Y %b %d %H:%M:%S")
    }
}

#[derive(Debug)]
struct Event {
    class: HardwareClass,
    task: String,
    hint: &'static str,
    /// The GPU's PCI address and the Xid code, for a GPU event.
    gpu: Option<(String, Option<u32>)>,
}

/// A PCI address without the punctuation that follows it in prose.
fn pci(s: &str) -> &str {
    s.trim_end_matches([':', '.'])
}

/// A device's PCI address without its function number: `0000:3b:00.0` and `PCI:0000:3b:00`
/// name the same GPU.
fn device(s: &str) -> String {
    let s = pci(s);
    match s.rsplit_once('.') {
        Some((head, f)) if f.len() == 1 && f.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => s,
    }
    .to_string()
}

/// Lines of the same event on the same worker (same task, kind of line and Xid code) within
/// this many microseconds of the previous one are one failure: a driver prints an Xid once
/// per channel or engine, a dozen lines in a millisecond.
const REPEAT_WINDOW_US: i64 = 1_000_000;
/// A "fallen off the bus" line within this many microseconds after an Xid 79 of the same GPU
/// is the driver's follow-up to it, not another failure; so is a kernel crash line within
/// this long after the first of a crash on the same worker.
const FOLLOW_UP_US: i64 = 10_000_000;

fn strip<'a>(re: &Regex, s: &'a str) -> &'a str {
    re.find(s).map_or(s, |m| &s[m.end()..])
}

fn parse_iso(s: &str) -> Result<Timestamp, String> {
    let t = s.replace(',', ".");
    let t = t.replacen(' ', "T", 1);
    DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .and_then(|d| Timestamp::from_micros_checked(d.timestamp_micros()))
        .or_else(|| Timestamp::parse(&t))
        .ok_or_else(|| format!("unreadable timestamp '{s}'"))
}

fn parse_naive(s: &str, fmt: &str) -> Result<Timestamp, String> {
    let squeezed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    NaiveDateTime::parse_from_str(&squeezed, fmt)
        .ok()
        .and_then(|d| Timestamp::from_micros_checked(d.and_utc().timestamp_micros()))
        .ok_or_else(|| format!("unreadable timestamp '{s}'"))
}

fn parse_relative(boot: i64, s: &str) -> Result<Timestamp, String> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let frac6: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    secs.parse::<i64>()
        .ok()
        .and_then(|s| s.checked_mul(1_000_000))
        .and_then(|us| us.checked_add(frac6.parse::<i64>().ok()?))
        .and_then(|us| us.checked_add(boot))
        .and_then(Timestamp::from_micros_checked)
        .ok_or_else(|| format!("relative time [{s}] is out of range"))
}

/// The task of a kernel crash that names no process: the node's kernel itself.
const KERNEL_TASK: &str = "kernel";
/// Reports of one stall (a soft lockup of a process, a hung task) at most this many
/// microseconds apart are one failure.
const STALL_US: i64 = 600_000_000;

/// Lines per chunk.
const LINES_PER_CHUNK: usize = 4096;

/// A kernel log, read line by line.
pub struct KernelSource {
    path: Arc<Path>,
    input: Box<dyn BufRead + Send>,
    parser: Parser,
    line: u64,
    len: Option<u64>,
    eof: bool,
}

impl std::fmt::Debug for KernelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelSource")
            .field("path", &self.path)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl KernelSource {
    /// Opens a file.
    pub fn open(path: &Path, opts: KernelOptions) -> Result<Self, IngestError> {
        let f = open(path)?;
        let mut s = Self::from_reader(path, f, opts);
        s.len = file_len(path);
        Ok(s)
    }

    /// Reads from any reader; `path` names it in rejections (and its stem is the default
    /// worker).
    pub fn from_reader(
        path: &Path,
        input: impl Read + Send + 'static,
        opts: KernelOptions,
    ) -> Self {
        KernelSource {
            path: Arc::from(path),
            input: Box::new(BufReader::with_capacity(256 * 1024, input)),
            parser: Parser::new(path, opts),
            line: 0,
            len: None,
            eof: false,
        }
    }
}

impl Source for KernelSource {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len_hint(&self) -> Option<u64> {
        self.len
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, IngestError> {
        if self.eof {
            return Ok(None);
        }
        let mut items: Vec<Item> = Vec::new();
        let (mut bytes, mut skipped, mut lines) = (0u64, 0u64, 0usize);
        let mut buf = Vec::new();
        while lines < LINES_PER_CHUNK {
            buf.clear();
            let n = self
                .input
                .read_until(b'\n', &mut buf)
                .map_err(|e| IngestError::io(&self.path, e))?;
            if n == 0 {
                self.eof = true;
                break;
            }
            self.line += 1;
            lines += 1;
            bytes += n as u64;
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_end_matches(['\n', '\r']);
            match self.parser.parse(text) {
                Line::Skip => skipped += 1,
                Line::Failure(r) => items.push((self.line, Ok(*r))),
                Line::Bad(reason) => items.push((self.line, Err(reason))),
            }
        }
        if lines == 0 {
            return Ok(None);
        }
        Ok(Some(Chunk {
            path: self.path.clone(),
            bytes,
            body: Body::Ready { items, skipped },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{BadLine, Records};
    use std::path::PathBuf;

    fn parse_all(text: &str, opts: KernelOptions) -> Vec<Result<FailureReport, BadLine>> {
        let src = KernelSource::from_reader(
            Path::new("logs/node7.log"),
            std::io::Cursor::new(text.to_string()),
            opts,
        );
        Records::new(src).collect()
    }

    fn one(line: &str) -> FailureReport {
        let mut v = parse_all(line, KernelOptions::default());
        assert_eq!(v.len(), 1, "{line}");
        v.remove(0).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    /// Regression (input audit): in a log whose times go backwards, the repeat window's
    /// trim kept every later entry, so past 4,096 distinct failures the map never shrank and
    /// every line scanned it all (quadratic). It stays bounded; repeats are still caught.
    #[test]
    fn repeat_tracking_stays_bounded_when_times_go_backwards() {
        let mut p = Parser::new(Path::new("logs/node7.log"), KernelOptions::default());
        let event = |pid: u32| Event {
            class: HardwareClass::Gpu,
            task: format!("pid-{pid}"),
            hint: "nvidia_xid",
            gpu: Some(("0000:3b:00".into(), Some(13))),
        };
        let start = 1_700_000_000_000_000i64;
        for i in 0..10_000u32 {
            let t = start - i64::from(i) * 10_000_000;
            assert!(!p.repeats("node7", &event(i), t), "line {i} is no repeat");
            assert!(
                p.last_seen.len() <= 4096,
                "{} at line {i}",
                p.last_seen.len()
            );
        }
        let t = start - 10_000 * 10_000_000;
        assert!(!p.repeats("node7", &event(1_000_000), t));
        assert!(p.repeats("node7", &event(1_000_000), t + 500_000));
    }

    #[test]
    fn xid_line_iso_framing() {
        let r = one("kern  :warn  : 2025-01-21T04:41:44,287197+00:00 NVRM: Xid (PCI:0000:38:00): 43, pid=2924364, name=pt_main_thread, Ch 00000008");
        assert_eq!(r.task_id, "pid-2924364");
        assert_eq!(r.worker_id, "node7", "file stem is the default worker");
        let h = r.hardware.unwrap();
        assert_eq!(
            (h.class, h.vendor.as_deref()),
            (HardwareClass::Gpu, Some("NVIDIA"))
        );
        assert_eq!(r.timestamp, Some(ts("2025-01-21T04:41:44.287197Z")));
        assert_eq!(
            r.error.message,
            "NVRM: Xid (PCI:0000:38:00): 43, pid=2924364, name=pt_main_thread, Ch 00000008"
        );
        assert_eq!(r.error.type_hint.as_deref(), Some("nvidia_xid"));
    }

    #[test]
    fn xid_without_pid_is_the_gpu_task_ctime_framing() {
        let r = one("[Sun Feb 23 16:24:18 2025] NVRM: Xid (PCI:0000:9b:00): 119, pid='<unknown>', name=<unknown>, Timeout after 6s of waiting for RPC response from GPU4 GSP!");
        assert_eq!(r.task_id, "gpu-0000:9b:00");
        assert_eq!(r.timestamp, Some(ts("2025-02-23T16:24:18Z")));
        let r = one("[Sun Feb  2 06:04:18 2025] NVRM: Xid (PCI:0000:9b:00): 79, GPU has fallen off the bus.");
        assert_eq!(r.timestamp, Some(ts("2025-02-02T06:04:18Z")));
    }

    #[test]
    fn sxid_kmsg_framing_with_boot_time() {
        let opts = KernelOptions {
            worker: Some("gpu-node-3".into()),
            boot_time: Some(ts("2025-03-01T00:00:00Z")),
            year: None,
        };
        let v = parse_all(
            "6,3964,206764307,-;nvidia-nvswitch2: open (major=510)\n\
             3,3990,251568620,-;nvidia-nvswitch3: SXid (PCI:0000:07:00.0): 12028, Non-fatal, Link 46 egress non-posted PRIV error (First)\n \
             SUBSYSTEM=pci\n",
            opts,
        );
        assert_eq!(v.len(), 1);
        let r = v[0].as_ref().unwrap();
        assert_eq!(r.task_id, "nvswitch-0000:07:00.0");
        assert_eq!(r.worker_id, "gpu-node-3");
        assert_eq!(r.timestamp, Some(ts("2025-03-01T00:04:11.568620Z")));
        assert_eq!(r.error.type_hint.as_deref(), Some("nvidia_sxid"));
    }

    #[test]
    fn oom_killer_lines_and_dedup_of_the_same_kill() {
        let v = parse_all(
            "kern  :warn  : 2025-01-21T08:41:30,287197+00:00 oom_reaper: reaped process 345646 (vector), now anon-rss:0kB\n\
             kern  :warn  : 2025-01-21T08:42:30,287197+00:00 oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),\n\
             kern  :warn  : 2025-01-21T08:43:30,287197+00:00 Out of memory: Killed process 123, UID 48, (httpd)\n\
             kern  :warn  : 2025-01-21T08:44:30,287197+00:00 Out of memory: Kill process 456 (python) score 50 or sacrifice child\n\
             [ 100.5] oom-kill:constraint=CONSTRAINT_NONE,task=python,pid=777,uid=0\n\
             [ 100.6] Out of memory: Killed process 777 (python) total-vm:1000kB\n\
             [ 100.7] Memory cgroup out of memory: Killed process 888 (torchrun) total-vm:1kB\n",
            KernelOptions::default(),
        );
        let got: Vec<(String, String)> = v
            .iter()
            .map(|r| {
                let r = r.as_ref().unwrap();
                (
                    r.task_id.clone(),
                    r.hardware.as_ref().unwrap().class.to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("oom", "CPU"),
            ("pid-123", "CPU"),
            ("pid-456", "CPU"),
            ("pid-777", "CPU"),
            ("pid-888", "CPU"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
        let r = v[3].as_ref().unwrap();
        assert_eq!(r.timestamp, Some(Timestamp::from_micros(100_500_000)));
        assert_eq!(r.error.type_hint.as_deref(), Some("oom_killer"));
    }

    #[test]
    fn machine_check_edac_segfault_and_syslog_host() {
        let opts = KernelOptions {
            year: Some(2025),
            ..Default::default()
        };
        let v = parse_all(
            "Mar  4 10:00:01 cn042 kernel: [ 88.1] mce: [Hardware Error]: CPU 3: Machine Check Exception: 5 Bank 4: be00000000800400\n\
             Mar  4 10:00:01 cn042 kernel: [ 88.1] mce: [Hardware Error]: TSC 0 ADDR 1ffff MISC 0\n\
             Mar  4 10:00:02 cn042 kernel: EDAC MC0: 1 CE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1 slot:0 page:0x4a51d6)\n\
             Mar  4 10:00:02 cn042 kernel: EDAC MC0: 1 UE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1 slot:0 page:0x4a51d6)\n\
             2025-01-21T04:41:44+0000 cn043 kernel: pt_main_thread[2536443]: segfault at 7f797fe00000 ip 00007f7c7ac69996 sp 00007f7c12fd7c30 error 4 in libnccl.so.2[7f7c7ac00000+d3d3000]\n\
             <4>[  201.673948] Modules linked in: coretemp sb_edac edac_core x86_pkg_temp_thermal\n",
            opts,
        );
        let got: Vec<(&str, &str, &str, Option<Timestamp>)> = v
            .iter()
            .map(|r| {
                let r = r.as_ref().unwrap();
                (
                    r.task_id.as_str(),
                    r.worker_id.as_str(),
                    r.error.type_hint.as_deref().unwrap(),
                    r.timestamp,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "cpu-3",
                    "cn042",
                    "machine_check",
                    Some(ts("2025-03-04T10:00:01Z"))
                ),
                // The corrected error (CE) is skipped, the uncorrected one (UE) kept.
                ("mc-0", "cn042", "edac", Some(ts("2025-03-04T10:00:02Z"))),
                (
                    "pid-2536443",
                    "cn043",
                    "segfault",
                    Some(ts("2025-01-21T04:41:44Z"))
                ),
            ]
        );
    }

    #[test]
    fn fallen_off_the_bus_and_fabric_manager_framing() {
        let r =
            one("[Feb 25 2025 13:59:45] NVRM: GPU at PCI:0000:3b:00: GPU has fallen off the bus.");
        assert_eq!(r.task_id, "gpu-0000:3b:00");
        assert_eq!(r.timestamp, Some(ts("2025-02-25T13:59:45Z")));
    }

    #[test]
    fn bad_failure_lines_are_rejected_with_line_and_reason() {
        let v = parse_all(
            "[    1.000000] Linux version 6.1\n\
             [    2.000000] NVRM: Xid (PCI:0000:38:00): , pid=1\n\
             [Sun Feb 31 16:24:18 2025] NVRM: Xid (PCI:0000:38:00): 13, pid=1\n\
             [Sun Feb 31 16:24:18 2025] not a failure, bad date skipped\n\
             [    3.000000] nvidia-nvswitch0: SXid (PCI:0000:05:00.0): fatal\n",
            KernelOptions::default(),
        );
        let errs: Vec<String> = v
            .iter()
            .map(|r| r.as_ref().unwrap_err().to_string())
            .collect();
        assert_eq!(
            errs,
            [
                "logs/node7.log:2: NVIDIA Xid line without a PCI address and a numeric code",
                "logs/node7.log:3: unreadable timestamp 'Sun Feb 31 16:24:18 2025'",
                "logs/node7.log:5: NVSwitch SXid line without a PCI address and a numeric code",
            ]
        );
    }

    #[test]
    fn ids_from_hostile_hosts_are_left_to_check() {
        let mut v = parse_all(
            "Mar  4 10:00:01 a/b kernel: [ 88.1] NVRM: Xid (PCI:0000:38:00): 79, pid=1, x\n",
            KernelOptions::default(),
        );
        let r = v.remove(0).unwrap();
        assert!(r.check(Timestamp::from_micros(0)).is_err());
    }

    fn samples() -> Option<PathBuf> {
        let p =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real/gpud_kmsg_samples");
        if p.is_dir() {
            Some(p)
        } else {
            eprintln!("skipping: {} is absent", p.display());
            None
        }
    }

    fn sample(name: &str) -> Option<Vec<Result<FailureReport, BadLine>>> {
        let p = samples()?.join(name);
        let src = KernelSource::open(&p, KernelOptions::default()).unwrap();
        Some(Records::new(src).collect())
    }

    #[test]
    fn real_samples_xid_119() {
        let Some(v) = sample("components_accelerator_nvidia_xid_testdata_dmesg-with-xid-119.log")
        else {
            return;
        };
        let tasks: Vec<&str> = v
            .iter()
            .map(|r| r.as_ref().unwrap().task_id.as_str())
            .collect();
        assert_eq!(
            tasks,
            [
                "pid-2024380",
                "pid-2024380",
                "pid-2024380",
                "pid-1263500",
                "pid-1240590"
            ],
            "the Xid lines among the RPC history"
        );
        let r = v[0].as_ref().unwrap();
        assert_eq!(r.timestamp, Some(ts("2025-02-23T16:24:18Z")));
        assert_eq!(
            r.worker_id,
            "components_accelerator_nvidia_xid_testdata_dmesg-with-xid-119"
        );
    }

    /// Regression (audit): the kernel's own crash (a BUG, its Oops, the panic after it), a
    /// hung task and a process's general protection fault gave no record: a node that crashed
    /// was not in the analysis at all.
    #[test]
    fn kernel_crashes_hung_tasks_and_traps_are_failures() {
        let v = parse_all(
            "<1>[  201.654822] BUG: unable to handle kernel NULL pointer dereference at           (null)\n\
             <1>[  201.662670] IP: [<ffffffffbd3d1956>] sysrq_handle_crash+0x16/0x20\n\
             <4>[  201.670809] Oops: 0002 [#1] SMP\n\
             <4>[  201.714354] CPU: 0 PID: 1899 Comm: bash Not tainted 4.7.0-coreos #1\n\
             <0>[  202.100000] Kernel panic - not syncing: Fatal exception\n\
             <3>[ 1000.000000] INFO: task python3:4242 blocked for more than 120 seconds.\n\
             <3>[ 1000.000100] \"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.\n\
             <3>[ 1121.000000] INFO: task python3:4242 blocked for more than 241 seconds.\n\
             <6>[ 1100.000000] traps: python3[4343] general protection fault ip:7f0 sp:7ff error:0 in libc.so.6[7f0+1000]\n\
             <0>[ 2000.000000] watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [python3:4444]\n\
             <0>[ 2026.000000] watchdog: BUG: soft lockup - CPU#3 stuck for 48s! [python3:4444]\n\
             <0>[ 2052.000000] watchdog: BUG: soft lockup - CPU#3 stuck for 74s! [python3:4444]\n\
             <0>[ 3000.000000] general protection fault, probably for non-canonical address 0xdead: 0000 [#2] SMP PTI\n\
             <0>[ 4000.000000] NMI watchdog: Watchdog detected hard LOCKUP on cpu 5\n\
             <0>[ 5000.000000] watchdog: Watchdog detected hard LOCKUP on cpu 6\n\
             <0>[ 6000.000000] Watchdog detected hard LOCKUP on cpu 7\n",
            KernelOptions::default(),
        );
        let got: Vec<(String, String)> = v
            .into_iter()
            .map(|r| {
                let r = r.unwrap();
                (r.task_id, r.error.type_hint.unwrap())
            })
            .collect();
        let want = [
            ("kernel", "kernel_crash"),
            ("pid-4242", "hung_task"),
            ("pid-4343", "segfault"),
            ("pid-4444", "kernel_crash"),
            ("kernel", "kernel_crash"),
            ("kernel", "kernel_crash"),
            ("kernel", "kernel_crash"),
            ("kernel", "kernel_crash"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(t, h)| ((*t).to_string(), (*h).to_string()))
            .collect();
        assert_eq!(
            got, want,
            "the BUG, its Oops and the panic 0.5 s later are one crash; a soft lockup and a \
             hung task reported again while they last are one failure each; the later \
             crash and each hard lockup (every form the kernel prints) are failures"
        );
    }

    #[test]
    fn real_sample_kernel_crash_is_one_failure() {
        let Some(v) = sample("pkg_pstore_testdata_dmesg-erst.txt") else {
            return;
        };
        let hints: Vec<String> = v
            .iter()
            .map(|r| r.as_ref().unwrap().error.type_hint.clone().unwrap())
            .collect();
        assert_eq!(
            hints,
            ["kernel_crash"],
            "the BUG line and its Oops: one crash"
        );
    }

    #[test]
    fn real_samples_memory_xid_burst_and_oom() {
        let Some(v) = sample("components_memory_testdata_dmesg.decode.iso.log") else {
            return;
        };
        assert!(v.iter().all(Result::is_ok));
        let xids = v
            .iter()
            .filter(|r| r.as_ref().unwrap().error.type_hint.as_deref() == Some("nvidia_xid"))
            .count();
        let ooms = v
            .iter()
            .filter(|r| r.as_ref().unwrap().error.type_hint.as_deref() == Some("oom_killer"))
            .count();
        // Regression: the sixteen Xid 13 lines the GPU printed within 1.9 ms (one per SM
        // exception) were sixteen failures of one task; they are one, then the Xid 43.
        assert_eq!((xids, ooms), (2, 6));
    }

    #[test]
    fn repeated_lines_of_one_event_are_one_failure() {
        let v = parse_all(
            "[ 10.000000] NVRM: Xid (PCI:0000:3b:00): 13, pid=7, name=python, Graphics SM Warp Exception\n\
             [ 10.000100] NVRM: Xid (PCI:0000:3b:00): 13, pid=7, name=python, Graphics Exception: ESR\n\
             [ 10.000200] NVRM: Xid (PCI:0000:3b:00): 43, pid=7, name=python, Ch 00000008\n\
             [ 13.000000] NVRM: Xid (PCI:0000:3b:00): 13, pid=7, name=python, Graphics SM Warp Exception\n\
             [ 20.000000] NVRM: Xid (PCI:0000:5e:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n\
             [ 20.000300] NVRM: GPU 0000:5e:00.0: GPU has fallen off the bus.\n\
             [ 45.000000] NVRM: GPU 0000:5e:00.0: GPU has fallen off the bus.\n",
            KernelOptions::default(),
        );
        let got: Vec<(String, String)> = v
            .into_iter()
            .map(|r| {
                let r = r.unwrap();
                let m = r.error.message;
                (r.task_id, m[m.find("NVRM").unwrap()..][..24].to_string())
            })
            .collect();
        assert_eq!(
            got,
            [
                ("pid-7".into(), "NVRM: Xid (PCI:0000:3b:0".into()),
                ("pid-7".into(), "NVRM: Xid (PCI:0000:3b:0".into()),
                ("pid-7".into(), "NVRM: Xid (PCI:0000:3b:0".into()),
                ("gpu-0000:5e:00".into(), "NVRM: Xid (PCI:0000:5e:0".into()),
                ("gpu-0000:5e:00".into(), "NVRM: GPU 0000:5e:00.0: ".into()),
            ],
            "the Xid 13 repeat within 1 s and the follow-up of the Xid 79 are left out; the \
             Xid 13 three seconds later and the fall 25 s later are failures of their own"
        );
        // One process's Xid on two GPUs is two failures; a line every 0.6 s for 3 s is one
        // failure per second of it, not one; lines without a time of their own are all kept.
        let v = parse_all(
            "[ 1.0] NVRM: Xid (PCI:0000:3b:00): 13, pid=7, name=python, a\n\
             [ 1.1] NVRM: Xid (PCI:0000:5e:00): 13, pid=7, name=python, a\n\
             [ 2.0] NVRM: Xid (PCI:0000:86:00): 31, pid=9, name=python, a\n\
             [ 2.6] NVRM: Xid (PCI:0000:86:00): 31, pid=9, name=python, a\n\
             [ 3.2] NVRM: Xid (PCI:0000:86:00): 31, pid=9, name=python, a\n\
             [ 3.8] NVRM: Xid (PCI:0000:86:00): 31, pid=9, name=python, a\n\
             [ 4.4] NVRM: Xid (PCI:0000:86:00): 31, pid=9, name=python, a\n",
            KernelOptions::default(),
        );
        assert_eq!(v.len(), 2 + 3, "{v:?}");
        let untimed = parse_all(
            "NVRM: Xid (PCI:0000:3b:00): 13, pid=7, name=python, a\n\
             NVRM: Xid (PCI:0000:3b:00): 13, pid=7, name=python, a\n",
            KernelOptions {
                boot_time: Some(ts("2025-01-01T00:00:00Z")),
                ..KernelOptions::default()
            },
        );
        assert_eq!(untimed.len(), 2);
    }

    #[test]
    fn real_samples_other_files() {
        let Some(dir) = samples() else { return };
        let count = |name: &str| {
            let src = KernelSource::open(&dir.join(name), KernelOptions::default()).unwrap();
            let v: Vec<_> = Records::new(src).collect();
            assert!(v.iter().all(Result::is_ok), "{name}: {v:?}");
            v.len()
        };
        assert_eq!(
            count("components_accelerator_nvidia_nccl_testdata_dmesg.decode.iso.log"),
            2
        );
        assert_eq!(count("pkg_kmsg_testdata_kmsg.1.log"), 0);
        assert_eq!(count("pkg_kmsg_testdata_kmsg.2.peermem.log"), 0);
        assert_eq!(count("components_os_testdata_dmesg.decode.iso.log"), 0);
        // A kernel crash (its BUG line and Oops): one failure.
        assert_eq!(count("pkg_pstore_testdata_dmesg-erst.txt"), 1);
        assert_eq!(
            count("components_accelerator_nvidia_fabric-manager_testdata_fabricmanager.log"),
            0
        );
    }
}
