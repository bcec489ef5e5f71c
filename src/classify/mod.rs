//! Tier 1 — failure message → [`FailureKind`], with the evidence that decided.
//!
//! The decision is table-driven ([`table::RULES`]): every row is a case-insensitive,
//! word-bounded pattern for one family of real failure messages (CUDA runtime strings, PyTorch,
//! NCCL, XLA/TPU, Ascend NPU, WebGPU/Dawn, ONNX Runtime Web, Chrome, Slurm, Kubernetes, Ray, the
//! kernel's OOM killer, NVIDIA Xid/SXid lines...). All rows run at once in one
//! [`regex::bytes::RegexSet`] pass and the lowest-index (most specific) matching row decides;
//! only that row's own regex then runs again to extract the evidence text (and the Xid code).
//! Some rows let the rows below them read on: a row whose every match is negated ("no ECC
//! errors", "DBE count: 0": its `neg`/`nil` groups, see [`table`]) does not count; a row that
//! resolves to `unknown` on the worker's hardware (a device lost on a CPU) does not decide;
//! and an *incidental* row ([`Decide::Incidental`]: the host's MCE, EDAC and block-device
//! reports) explains only the text it matched — the rows below it read the message with that
//! text blanked. The first row below that decides a kind wins, the weak `unknown` being the
//! answer otherwise. Those messages cost one more set pass.
//!
//! Order of the sources: the message; then the stack trace; then the exit code
//! ([`table::EXIT_CODES`]); then the caller's type hint ([`table::TYPE_HINTS`]); otherwise
//! `unknown`. Rows whose kind is `unknown` (cascades, wrappers, host reports) are *weak*: they
//! are kept as the answer only if no later source decides.
//!
//! Some rows resolve by the worker's hardware class ([`table::ByHardware`]): a bare
//! "out of memory" is `oom_gpu` on a GPU or in a browser, `oom_host` on a CPU, `tpu_error` on a
//! TPU and `npu_error` on an NPU; a device lost without the browser's words is
//! `webgpu_context_lost` in a browser, `gpu_hardware` on a GPU and the TPU/NPU runtime's error
//! on those ([`table::DEVICE_LOST`]).
//!
//! The compiled table is built once per process and shared: [`Classifier::new`] is cheap after
//! the first call and [`Classifier`] clones are a reference-count increment.
//!
//! For the decision path, [`Classifier::verdict`] returns the decision alone (no evidence
//! text, no notes), and [`Classifier::verdict_masked`] decides a message from its *shape*:
//! every pattern is split into its top-level alternatives, those that treat all digits alike
//! run once per shape on the message with its digits masked ([`mask_digits`],
//! [`Classifier::masked_row`], cacheable), and only the few that tell digits apart (an exit
//! status of 137, `errno 28`, the Xid/SXid lines whose codes are read) run on the message
//! itself — of the built-in table's 57 rows, 12, seven of them whole (regex-syntax factors a
//! shared leading `\b` out of a row's alternatives, leaving one; the ECC row's negations wrap
//! all its alternatives). Messages that differ only in ids, sizes, addresses or times then
//! cost one small pass; the answer is always `verdict`'s (property-tested, and checked on the
//! 39,783 lines of the real data).

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

    /// What a failure record gives the classifier: its message, type hint, exit code, stack
    /// trace and the worker's hardware class (the one input every decision path uses).
    pub fn of_record(rec: &'a crate::model::FailureRecord) -> Self {
        ClassifyInput {
            message: &rec.error.message,
            type_hint: rec.error.type_hint.as_deref(),
            exit_code: rec.error.exit_code,
            stacktrace: rec.error.stacktrace.as_deref(),
            hardware: Some(rec.hardware.class),
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
                            Decide::Xid | Decide::Sxid | Decide::Incidental => false,
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

/// Whether the table row `rule` (a [`Classification::rule`]) reports a device held busy by
/// another process (the rows tagged `busy`: "Device or resource busy", a TPU already in use).
/// The learned ranking takes a worker reset, which clears a stale process, as a likely cure
/// of such a failure ([`crate::ranking::RankingParams::prior_busy`]).
/// One string comparison: it is on the decision path.
pub fn device_busy(rule: &str) -> bool {
    matches!(
        rule,
        table::DEVICE_BUSY_RULE | table::TPU_BUSY_RULE | table::CUDA_BUSY_RULE
    )
}

/// Longest evidence text kept (bytes, cut at a character boundary).
const MAX_EVIDENCE: usize = 240;

/// The group a pattern names for a negation before its words ("no ECC errors").
const NEGATED: &str = "neg";
/// The group a pattern names for a zero count after its words ("DBE count: 0").
const NIL: &str = "nil";

/// What blanks the text an [`Decide::Incidental`] row explained: a byte no pattern reads as a
/// space or a word, so the rest cannot join across it into new words.
const BLANK: u8 = 0;

struct Compiled {
    rules: &'static [Rule],
    set: RegexSet,
    regexes: Vec<Regex>,
    /// Per row, whether its pattern names a `neg` or `nil` group (see [`table`]'s conventions).
    negatable: Vec<bool>,
    masked: OnceLock<Option<Masked>>,
}

/// The table split by whether a pattern tells digits apart (see
/// [`Classifier::verdict_masked`]).
struct Masked {
    /// Per row, the alternatives of its pattern that treat every digit alike (a row with
    /// none never matches): run on masked messages.
    free: RegexSet,
    /// The alternatives that tell digits apart (a digit in a literal, a class holding some
    /// digits but not all) and the whole Xid/SXid rows, in row order: run on the message.
    sensitive: RegexSet,
    /// The row of each `sensitive` pattern.
    sensitive_rule: Vec<usize>,
}

/// The digit-free rows' lowest match on a masked message ([`Classifier::masked_row`]); it
/// belongs to the classifier that computed it (another table's row is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskedRow(Option<u32>);

/// Writes `text` into `out` with every ASCII digit replaced by `0` (the shape
/// [`Classifier::masked_row`] decides on).
pub fn mask_digits(text: &str, out: &mut String) {
    let mut bytes = std::mem::take(out).into_bytes();
    bytes.clear();
    bytes.extend(
        text.bytes()
            .map(|b| if b.is_ascii_digit() { b'0' } else { b }),
    );
    *out = String::from_utf8(bytes).expect("an ASCII digit replaced by one keeps UTF-8 valid");
}

/// Whether `hir` tells one ASCII digit from another: a literal holding a digit, or a class
/// holding some digits but not all.
fn tells_digits_apart(hir: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::{Class, HirKind};
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(l) => l.0.iter().any(u8::is_ascii_digit),
        HirKind::Class(Class::Bytes(c)) => {
            let n: u32 = c
                .ranges()
                .iter()
                .map(|r| {
                    let (lo, hi) = (r.start().max(b'0'), r.end().min(b'9'));
                    if lo <= hi {
                        u32::from(hi - lo) + 1
                    } else {
                        0
                    }
                })
                .sum();
            n != 0 && n != 10
        }
        HirKind::Class(Class::Unicode(c)) => {
            let n: u32 = c
                .ranges()
                .iter()
                .map(|r| {
                    let (lo, hi) = (r.start().max('0'), r.end().min('9'));
                    if lo <= hi {
                        hi as u32 - lo as u32 + 1
                    } else {
                        0
                    }
                })
                .sum();
            n != 0 && n != 10
        }
        HirKind::Repetition(r) => tells_digits_apart(&r.sub),
        HirKind::Capture(c) => tells_digits_apart(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(tells_digits_apart),
    }
}

/// Splits every row's pattern into its top-level alternatives, digit-free or not (`None`
/// when a pattern does not parse or a set does not compile).
fn split_by_digits(rules: &'static [Rule]) -> Option<Masked> {
    let mut free = Vec::with_capacity(rules.len());
    let mut sensitive = Vec::new();
    let mut sensitive_rule = Vec::new();
    // The flags of `compile`'s patterns. The alternatives are printed back with their flags
    // resolved (case folded into classes, `.` as a byte class, `(?-u:\b)`), except a
    // Unicode word boundary, which prints as a bare `\b` and would read back as an ASCII one:
    // a table with one is not split.
    let mut parser = regex_syntax::ParserBuilder::new();
    parser
        .case_insensitive(true)
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true);
    for (i, r) in rules.iter().enumerate() {
        let hir = parser.build().parse(r.pattern).ok()?;
        if hir.properties().look_set().contains_word_unicode() {
            return None;
        }
        // regex-syntax factors what the alternatives share (a leading `\b`) out of them:
        // such a row is one alternative, and runs whole on the message if any part of it
        // tells digits apart.
        let branches = match hir.kind() {
            regex_syntax::hir::HirKind::Alternation(v) => v.clone(),
            _ => vec![hir],
        };
        let whole = matches!(r.decide, Decide::Xid | Decide::Sxid);
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        for b in branches {
            if whole || tells_digits_apart(&b) {
                theirs.push(b.to_string());
            } else {
                mine.push(b.to_string());
            }
        }
        // A row with no digit-free alternative never matches in the free set.
        free.push(if mine.is_empty() {
            "[a&&b]".to_string()
        } else {
            mine.join("|")
        });
        if !theirs.is_empty() {
            sensitive.push(theirs.join("|"));
            sensitive_rule.push(i);
        }
    }
    let build = |patterns: &[String]| {
        RegexSetBuilder::new(patterns)
            .unicode(false)
            .dot_matches_new_line(true)
            .size_limit(1 << 26)
            .dfa_size_limit(1 << 26)
            .build()
            .ok()
    };
    Some(Masked {
        free: build(&free)?,
        sensitive: build(&sensitive)?,
        sensitive_rule,
    })
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
    let mut negatable = Vec::with_capacity(rules.len());
    for r in rules {
        let re = RegexBuilder::new(r.pattern)
            .case_insensitive(true)
            .unicode(false)
            .dot_matches_new_line(true)
            .size_limit(1 << 24)
            .build()
            .map_err(|source| ClassifyError::Pattern { id: r.id, source })?;
        negatable.push(
            re.capture_names()
                .any(|n| matches!(n, Some(NEGATED) | Some(NIL))),
        );
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
        negatable,
        masked: OnceLock::new(),
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

/// What one matching row makes of a text.
enum Step {
    /// The row decides: a kind, or a weak `unknown` that ends the search.
    Decide(Classification),
    /// Every match of the row is negated ("no ECC errors"), or its Xid/SXid code cannot be
    /// read: the row does not count.
    Pass,
    /// A weak decision that lets the rows below read on: an incidental row's, with the byte
    /// ranges of the text it explains, or a row's that resolves to `unknown` on the worker's
    /// hardware, explaining nothing.
    Aside(Classification, Vec<std::ops::Range<usize>>),
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

    /// The digit-free rows' verdict on a message whose ASCII digits were all replaced by `0`
    /// ([`mask_digits`]): with it, [`Classifier::verdict_masked`] decides every message of
    /// that shape (ids, sizes, addresses, times differing) running only the rows that tell
    /// digits apart. Cacheable by the masked message.
    pub fn masked_row(&self, masked: &str) -> MaskedRow {
        MaskedRow(match self.masked() {
            Some(m) if !masked.is_empty() => m
                .free
                .matches(masked.as_bytes())
                .iter()
                .next()
                .map(|i| i as u32),
            _ => None,
        })
    }

    /// [`Classifier::verdict`] of `input` given the [`Classifier::masked_row`] of its message
    /// masked by [`mask_digits`]: only the rows (or alternatives of rows) whose patterns tell
    /// one digit from another, and the Xid/SXid rows, whose codes are read from the message,
    /// run on the message itself. Always equal to `verdict(input)` (a property test checks it);
    /// an input with a stack trace is classified in full, and when the lowest row lets the rows
    /// below it read on (see the module docs), those run in full on the message.
    pub fn verdict_masked(&self, input: &ClassifyInput<'_>, row: MaskedRow) -> Verdict {
        let m = match self.masked() {
            Some(m) if input.stacktrace.is_none_or(str::is_empty) => m,
            _ => return self.verdict(input),
        };
        // Most messages match none of them: a plain search says so faster than the
        // overlapping one that names the rows.
        let bytes = input.message.as_bytes();
        let sensitive = if bytes.is_empty() || !m.sensitive.is_match(bytes) {
            None
        } else {
            m.sensitive
                .matches(bytes)
                .iter()
                .next()
                .map(|i| m.sensitive_rule[i])
        };
        // A row from another classifier's table (out of range) is not trusted.
        let free = match row.0.map(|r| r as usize) {
            Some(r) if r >= self.inner.rules.len() => return self.verdict(input),
            r => r,
        };
        let lowest = match (free, sensitive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let c = self.classify_rows(input, Detail::Verdict, Some(lowest));
        Verdict {
            kind: c.kind,
            rule: c.rule,
            xid: c.xid,
        }
    }

    /// The table split for [`Classifier::verdict_masked`], built on first use (`None` if a
    /// pattern could not be split: then masked verdicts are full ones).
    fn masked(&self) -> Option<&Masked> {
        self.inner
            .masked
            .get_or_init(|| split_by_digits(self.inner.rules))
            .as_ref()
    }

    fn classify_with(&self, input: &ClassifyInput<'_>, detail: Detail) -> Classification {
        self.classify_rows(input, detail, None)
    }

    /// [`Classifier::classify_with`], the message's lowest matching row given
    /// (`message_row`) or found by the table's set.
    fn classify_rows(
        &self,
        input: &ClassifyInput<'_>,
        detail: Detail,
        message_row: Option<Option<usize>>,
    ) -> Classification {
        let hw = input.hardware;
        let mut weak: Option<Classification> = None;

        let texts = [
            (input.message, Source::Message, message_row),
            (input.stacktrace.unwrap_or(""), Source::Stacktrace, None),
        ];
        for (text, source, row) in texts {
            let row = match row {
                Some(row) => row,
                None => self.lowest_row(text),
            };
            if let Some(c) = row.and_then(|idx| self.decide_text(idx, text, hw, source, detail)) {
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

    /// The lowest-index row whose pattern matches `text` (`None`: none, or no text).
    fn lowest_row(&self, text: &str) -> Option<usize> {
        if text.is_empty() {
            return None;
        }
        self.inner.set.matches(text.as_bytes()).iter().next()
    }

    /// What `text` decides, `first` being its lowest matching row. Usually that row decides;
    /// otherwise the rows below it that match are read in table order: a row whose matches
    /// are all negated is passed over, a row resolving to `unknown` on this hardware is kept
    /// as the fallback, and so is an incidental row, the rows below it reading the text with
    /// its matches blanked. The first row that decides a kind wins; a weak one ends the search
    /// with the fallback, if any, or itself.
    fn decide_text(
        &self,
        first: usize,
        text: &str,
        hw: Option<HardwareClass>,
        source: Source,
        detail: Detail,
    ) -> Option<Classification> {
        let mut step = self.decide_row(first, text, hw, source, detail);
        if let Step::Decide(c) = step {
            return Some(c);
        }
        let mut idx = first;
        // The text the rows below read (blanked by incidental rows), and its matching rows.
        let mut current: Option<String> = None;
        let mut matches: Option<regex::bytes::SetMatches> = None;
        let mut fallback: Option<Classification> = None;
        loop {
            match step {
                Step::Decide(c) if c.kind == FailureKind::Unknown => {
                    return Some(fallback.unwrap_or(c));
                }
                Step::Decide(mut c) => {
                    if current.is_some() && c.evidence.contains(char::from(BLANK)) {
                        c.evidence = clip(&c.evidence.replace(char::from(BLANK), " "));
                    }
                    return Some(c);
                }
                Step::Pass => {}
                Step::Aside(c, spans) if spans.is_empty() => {
                    fallback.get_or_insert(c);
                }
                Step::Aside(c, spans) => {
                    fallback.get_or_insert(c);
                    let mut bytes = current
                        .take()
                        .unwrap_or_else(|| text.to_string())
                        .into_bytes();
                    for span in spans {
                        bytes[span].fill(BLANK);
                    }
                    current = Some(
                        String::from_utf8(bytes)
                            .expect("spans are widened to character boundaries"),
                    );
                    matches = None;
                }
            }
            let now = current.as_deref().unwrap_or(text);
            let set = matches.get_or_insert_with(|| self.inner.set.matches(now.as_bytes()));
            idx = match set.iter().find(|&i| i > idx) {
                Some(i) => i,
                None => return fallback,
            };
            step = self.decide_row(idx, now, hw, source, detail);
        }
    }

    /// What row `idx`, which matches `text`, makes of it.
    fn decide_row(
        &self,
        idx: usize,
        text: &str,
        hw: Option<HardwareClass>,
        source: Source,
        detail: Detail,
    ) -> Step {
        let bytes = text.as_bytes();
        let rule = &self.inner.rules[idx];
        let re = &self.inner.regexes[idx];
        let full = detail == Detail::Full;

        // A row with negated forms counts only with a match that is not one; its evidence
        // is that match.
        let counted = if self.inner.negatable[idx] {
            let found = re
                .captures_iter(bytes)
                .find(|caps| caps.name(NEGATED).is_none() && caps.name(NIL).is_none());
            match found.and_then(|caps| caps.get(0)) {
                Some(m) => Some(clip(&String::from_utf8_lossy(m.as_bytes()))),
                None => return Step::Pass,
            }
        } else {
            None
        };
        let ev = || {
            if !full {
                String::new()
            } else if let Some(e) = &counted {
                e.clone()
            } else {
                evidence(re, bytes).unwrap_or_default()
            }
        };

        let mut c = match rule.decide {
            Decide::Kind(kind) => Classification::new(kind, rule.id, ev()),
            Decide::ByHardware(map) => {
                let mut c = Classification::new(map.resolve(hw), rule.id, ev());
                if full {
                    c.notes.push(map.name);
                }
                if c.kind == FailureKind::Unknown {
                    // The text does not decide on this hardware: the rows below read on.
                    return Step::Aside(finish(c, rule, source, full), Vec::new());
                }
                c
            }
            Decide::Incidental => {
                let spans: Vec<_> = re
                    .find_iter(bytes)
                    .map(|m| widen(text, m.range()))
                    .collect();
                let c = Classification::new(FailureKind::Unknown, rule.id, ev());
                return Step::Aside(finish(c, rule, source, full), spans);
            }
            Decide::Xid | Decide::Sxid => {
                let Some(caps) = re.captures(bytes) else {
                    return Step::Pass;
                };
                let Some(whole) = caps.get(0) else {
                    return Step::Pass;
                };
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
        c = finish(c, rule, source, full);
        Step::Decide(c)
    }
}

/// `c` with the row's tags and the source noted (notes are detail: none for a verdict).
fn finish(mut c: Classification, rule: &Rule, source: Source, full: bool) -> Classification {
    if full {
        c.notes.extend_from_slice(rule.tags);
        if let Source::Stacktrace = source {
            c.notes.push("stacktrace");
        }
    }
    c
}

/// `range` of `text` widened to character boundaries (a byte pattern may start or end inside
/// a multi-byte character).
fn widen(text: &str, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let (mut start, mut end) = (range.start, range.end);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
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
