//! Tier 1 — failure message → [`FailureKind`], with the evidence that decided.
//!
//! The decision is table-driven ([`table::RULES`]): every row is a case-insensitive,
//! word-bounded pattern for one family of real failure messages (CUDA runtime strings, PyTorch,
//! NCCL, XLA/TPU, Ascend NPU, WebGPU/Dawn, ONNX Runtime Web, Chrome, Slurm, Kubernetes, Ray, the
//! kernel's OOM killer, NVIDIA Xid/SXid lines...). All rows run at once in one
//! [`regex::bytes::RegexSet`] pass and the lowest-index (most specific) matching row decides;
//! only that row's own regex then runs again to extract the evidence text (and the Xid code).
//!
//! Order of the sources: the message; then the stack trace; then the exit code
//! ([`table::EXIT_CODES`]); then the caller's type hint ([`table::TYPE_HINTS`]); otherwise
//! `unknown`. Rows whose kind is `unknown` (cascades, wrappers, host MCE) are *weak*: they are
//! kept as the answer only if no later source decides.
//!
//! Some rows resolve by the worker's hardware class ([`table::ByHardware`]): a bare
//! "out of memory" is `oom_gpu` on a GPU or in a browser, `oom_host` on a CPU, `tpu_error` on a
//! TPU and `npu_error` on an NPU.
//!
//! The compiled table is built once per process and shared: [`Classifier::new`] is cheap after
//! the first call and [`Classifier`] clones are a reference-count increment.

pub mod table;
pub mod xid;

use std::fmt;
use std::sync::{Arc, OnceLock};

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::model::{FailureKind, FailureType, HardwareClass};

pub use table::{ByHardware, Decide, Rule, EXIT_CODES, RULES, TYPE_HINTS};
pub use xid::{sxid_kind, xid_kind};

/// Errors of this module: a table pattern that does not compile.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// A row's pattern is not a valid regex.
    #[error("pattern of classifier rule '{id}' does not compile: {source}")]
    Pattern {
        /// The row id.
        id: &'static str,
        /// The regex error.
        #[source]
        source: regex::Error,
    },
    /// The whole table does not compile as a set (e.g. too large).
    #[error("classifier table does not compile: {0}")]
    Table(#[source] regex::Error),
}

/// What the classifier looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassifyInput<'a> {
    /// The error message.
    pub message: &'a str,
    /// The caller's error-type hint.
    pub type_hint: Option<&'a str>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Stack trace.
    pub stacktrace: Option<&'a str>,
    /// Hardware class of the worker, when known.
    pub hardware: Option<HardwareClass>,
}

impl<'a> ClassifyInput<'a> {
    /// An input with just a message.
    pub fn new(message: &'a str) -> Self {
        ClassifyInput {
            message,
            ..Default::default()
        }
    }

    /// The same input with the worker's hardware class set.
    pub fn on(self, hardware: HardwareClass) -> Self {
        ClassifyInput {
            hardware: Some(hardware),
            ..self
        }
    }
}

/// The decision and its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Fine kind.
    pub kind: FailureKind,
    /// Coarse type of `kind`.
    pub failure_type: FailureType,
    /// Id of the table row (or fallback) that decided.
    pub rule: &'static str,
    /// The matched text.
    pub evidence: String,
    /// Xid code if the message is an NVIDIA Xid line.
    pub xid: Option<u32>,
    /// SXid code if the message is an NVSwitch SXid line.
    pub sxid: Option<u32>,
    /// Extra notes (e.g. "network" for an NCCL watchdog timeout).
    pub notes: Vec<&'static str>,
}

impl Classification {
    fn new(kind: FailureKind, rule: &'static str, evidence: String) -> Self {
        Classification {
            kind,
            failure_type: kind.failure_type(),
            rule,
            evidence,
            xid: None,
            sxid: None,
            notes: Vec::new(),
        }
    }

    /// The answer when nothing was recognised.
    fn fallback() -> Self {
        Classification::new(FailureKind::Unknown, "fallback", String::new())
    }
}

/// Whether the table row `rule` (a [`Classification::rule`]) reports exhausted memory:
/// a row deciding `oom_gpu` or `oom_host`, one tagged `oom` (an NPU's or a TPU's own memory
/// error, classified as the device runtime's kind), or one resolving by [`table::MEMORY`] or
/// [`table::XLA_MEMORY`]. False for rules outside [`RULES`] (`fallback`, `type_hint`, exit
/// codes): their id does not say.
///
/// The learned ranking pools such failures with out-of-memory evidence on other hardware
/// ([`crate::ranking::ranked_kind`]): a smaller batch cures memory exhaustion whatever kind
/// the device's runtime reports it as.
pub fn memory_exhausted(rule: &str) -> bool {
    static MEMORY_RULES: OnceLock<Vec<&'static str>> = OnceLock::new();
    MEMORY_RULES
        .get_or_init(|| {
            let mut ids: Vec<&'static str> = RULES
                .iter()
                .filter(|r| {
                    r.tags.contains(&"oom")
                        || match r.decide {
                            Decide::Kind(k) => {
                                matches!(k, FailureKind::OomGpu | FailureKind::OomHost)
                            }
                            Decide::ByHardware(m) => {
                                m.name == table::MEMORY.name || m.name == table::XLA_MEMORY.name
                            }
                            Decide::Xid | Decide::Sxid => false,
                        }
                })
                .map(|r| r.id)
                .collect();
            ids.sort_unstable();
            ids
        })
        .binary_search(&rule)
        .is_ok()
}

/// Longest evidence text kept (bytes, cut at a character boundary).
const MAX_EVIDENCE: usize = 240;

struct Compiled {
    rules: &'static [Rule],
    set: RegexSet,
    regexes: Vec<Regex>,
}

/// The compiled pattern table.
#[derive(Clone)]
pub struct Classifier {
    inner: Arc<Compiled>,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("rules", &self.inner.rules.len())
            .finish()
    }
}

fn builtin() -> &'static Arc<Compiled> {
    static BUILTIN: OnceLock<Arc<Compiled>> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        Arc::new(compile(RULES).expect("the built-in classifier table compiles (tested)"))
    })
}

fn compile(rules: &'static [Rule]) -> Result<Compiled, ClassifyError> {
    let mut regexes = Vec::with_capacity(rules.len());
    for r in rules {
        let re = RegexBuilder::new(r.pattern)
            .case_insensitive(true)
            .unicode(false)
            .dot_matches_new_line(true)
            .size_limit(1 << 24)
            .build()
            .map_err(|source| ClassifyError::Pattern { id: r.id, source })?;
        regexes.push(re);
    }
    let set = RegexSetBuilder::new(rules.iter().map(|r| r.pattern))
        .case_insensitive(true)
        .unicode(false)
        .dot_matches_new_line(true)
        .size_limit(1 << 26)
        .dfa_size_limit(1 << 26)
        .build()
        .map_err(ClassifyError::Table)?;
    Ok(Compiled {
        rules,
        set,
        regexes,
    })
}

/// How much [`Classifier::classify_with`] gathers beyond the decision.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// Evidence text and notes too.
    Full,
    /// Kind, row and Xid code only.
    Verdict,
}

/// What [`Classifier::verdict`] returns: the decision of [`Classifier::classify`] without its
/// evidence and notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Fine kind.
    pub kind: FailureKind,
    /// Id of the table row (or fallback) that decided.
    pub rule: &'static str,
    /// Xid code if the message is an NVIDIA Xid line.
    pub xid: Option<u32>,
}

/// Where the deciding text came from.
#[derive(Clone, Copy)]
enum Source {
    Message,
    Stacktrace,
}

impl Classifier {
    /// The built-in table ([`RULES`]), compiled once per process and shared.
    pub fn new() -> Self {
        Classifier {
            inner: Arc::clone(builtin()),
        }
    }

    /// A classifier over another table (same conventions as [`RULES`]).
    pub fn with_rules(rules: &'static [Rule]) -> Result<Self, ClassifyError> {
        Ok(Classifier {
            inner: Arc::new(compile(rules)?),
        })
    }

    /// The table this classifier runs, highest priority first.
    pub fn rules(&self) -> &'static [Rule] {
        self.inner.rules
    }

    /// Classifies a bare message (no hint, exit code, stack trace or hardware class).
    pub fn classify_message(&self, message: &str) -> Classification {
        self.classify(&ClassifyInput::new(message))
    }

    /// Classifies one failure.
    pub fn classify(&self, input: &ClassifyInput<'_>) -> Classification {
        self.classify_with(input, Detail::Full)
    }

    /// The decision alone — kind, deciding row and Xid code — without the evidence text and
    /// notes [`Classifier::classify`] gathers (no second regex pass, no allocation). The
    /// engine's decision path uses it; the answer is always that of `classify`.
    pub fn verdict(&self, input: &ClassifyInput<'_>) -> Verdict {
        let c = self.classify_with(input, Detail::Verdict);
        Verdict {
            kind: c.kind,
            rule: c.rule,
            xid: c.xid,
        }
    }

    fn classify_with(&self, input: &ClassifyInput<'_>, detail: Detail) -> Classification {
        let hw = input.hardware;
        let mut weak: Option<Classification> = None;

        let texts = [
            (input.message, Source::Message),
            (input.stacktrace.unwrap_or(""), Source::Stacktrace),
        ];
        for (text, source) in texts {
            if let Some(c) = self.match_text(text, hw, source, detail) {
                if c.kind != FailureKind::Unknown {
                    return c;
                }
                weak.get_or_insert(c);
            }
        }

        if let Some(code) = input.exit_code {
            if let Some(&(_, kind, rule)) = EXIT_CODES.iter().find(|(c, _, _)| *c == code) {
                if detail == Detail::Verdict {
                    return Classification::new(kind, rule, String::new());
                }
                let mut c = Classification::new(kind, rule, format!("exit code {code}"));
                c.notes.push("exit-code");
                return c;
            }
        }

        if let Some(hint) = input.type_hint {
            if let Some(c) = classify_hint(hint, hw) {
                return c;
            }
        }

        weak.unwrap_or_else(Classification::fallback)
    }

    /// Runs the table over one text; `None` when no row matches.
    fn match_text(
        &self,
        text: &str,
        hw: Option<HardwareClass>,
        source: Source,
        detail: Detail,
    ) -> Option<Classification> {
        if text.is_empty() {
            return None;
        }
        let bytes = text.as_bytes();
        let idx = self.inner.set.matches(bytes).iter().next()?;
        let rule = &self.inner.rules[idx];
        let re = &self.inner.regexes[idx];

        let full = detail == Detail::Full;
        let mut c = match rule.decide {
            Decide::Kind(kind) if !full => Classification::new(kind, rule.id, String::new()),
            Decide::ByHardware(map) if !full => {
                Classification::new(map.resolve(hw), rule.id, String::new())
            }
            Decide::Kind(kind) => {
                Classification::new(kind, rule.id, evidence(re, bytes).unwrap_or_default())
            }
            Decide::ByHardware(map) => {
                let mut c = Classification::new(
                    map.resolve(hw),
                    rule.id,
                    evidence(re, bytes).unwrap_or_default(),
                );
                c.notes.push(map.name);
                c
            }
            Decide::Xid | Decide::Sxid => {
                let caps = re.captures(bytes)?;
                let whole = caps.get(0)?;
                let code: Option<u32> = caps
                    .get(1)
                    .and_then(|m| std::str::from_utf8(m.as_bytes()).ok())
                    .and_then(|s| s.parse().ok());
                let ev = if full {
                    clip(&String::from_utf8_lossy(whole.as_bytes()))
                } else {
                    String::new()
                };
                if rule.decide == Decide::Xid {
                    let (kind, action) = code
                        .map(xid_kind)
                        .unwrap_or((FailureKind::GpuHardware, "UNDOCUMENTED"));
                    let mut c = Classification::new(kind, rule.id, ev);
                    c.xid = code;
                    if full {
                        c.notes.push(action);
                    }
                    c
                } else {
                    let mut c = Classification::new(
                        code.map(sxid_kind).unwrap_or(FailureKind::GpuHardware),
                        rule.id,
                        ev,
                    );
                    c.sxid = code;
                    c
                }
            }
        };
        if !full {
            // Notes are detail too.
            return Some(c);
        }
        c.notes.extend_from_slice(rule.tags);
        if let Source::Stacktrace = source {
            c.notes.push("stacktrace");
        }
        Some(c)
    }
}

impl Default for Classifier {
    fn default() -> Self {
        Self::new()
    }
}

fn evidence(re: &Regex, bytes: &[u8]) -> Option<String> {
    re.find(bytes)
        .map(|m| clip(&String::from_utf8_lossy(m.as_bytes())))
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MAX_EVIDENCE {
        return s.to_string();
    }
    let mut end = MAX_EVIDENCE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Normalises a type hint: trimmed, lowercase, `-` and spaces as `_`.
fn normalize_hint(hint: &str) -> String {
    hint.trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn classify_hint(hint: &str, hw: Option<HardwareClass>) -> Option<Classification> {
    let norm = normalize_hint(hint);
    if norm.is_empty() {
        return None;
    }
    let kind = match TYPE_HINTS.iter().find(|(h, _)| *h == norm) {
        Some((_, Decide::Kind(k))) => *k,
        Some((_, Decide::ByHardware(map))) => map.resolve(hw),
        Some(_) => return None,
        None => norm.parse::<FailureKind>().ok()?,
    };
    if kind == FailureKind::Unknown {
        return None;
    }
    let mut c = Classification::new(kind, "type_hint", clip(hint));
    c.notes.push("type-hint");
    Some(c)
}

#[cfg(test)]
mod tests;
