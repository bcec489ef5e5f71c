//! Tier 3 — the rule engine: the cold-start policy that turns a classified failure into a
//! strategy ladder.
//!
//! Ordered rules, first match wins (the Kubernetes podFailurePolicy model). A rule matches on
//! hardware class, failure kind, message regex, exit code, NVIDIA Xid code or the vendor's
//! action for it, attempt range and browser, and names a ladder of strategies: the n-th time a
//! rule fires for a task it gives step n; past the end, ESCALATION. Failures no rule matches
//! use their hardware class's ladder; every class has one. The defaults (`default.toml`,
//! embedded) reproduce the seed's tables exactly; a TOML file extends or replaces them.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use regex::Regex;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::model::{FailureKind, HardwareClass, RecoveryStrategy};

/// The default rules, as shipped.
pub const DEFAULT_RULES_TOML: &str = include_str!("default.toml");
/// NVIDIA Xid code → immediate action table, as shipped.
pub const XID_ACTIONS_CSV: &str = include_str!("xid_actions.csv");

/// Errors loading or validating rules. Every message names the file, and the line and field
/// where they are known.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("cannot read rules {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not valid TOML for the rules schema (the parser's message names line and field).
    #[error("invalid rules {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Parser message.
        message: String,
    },
    /// Valid TOML whose content does not make sense.
    #[error("invalid rules {path}:{line}: {field}: {detail}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// Field path, e.g. `rule[2] 'oom'.match.message`.
        field: String,
        /// Why.
        detail: String,
    },
}

/// Whether a rules file extends or replaces the default rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The file's rules are tried before the defaults.
    #[default]
    Extend,
    /// Only the file's rules are used (class ladders not named in the file stay).
    Replace,
}

/// One ladder step as written: a bare strategy name or a table with options.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StepSpec {
    /// `"DELAYED_RETRY"`.
    Plain(RecoveryStrategy),
    /// `{ strategy = "DIFFERENT_WORKER", more_memory = true }`.
    Detailed(Step),
}

/// By the value's shape, so that a misspelt strategy is reported as an unknown strategy with
/// the valid names (an untagged enum only says that no variant matched).
impl<'de> Deserialize<'de> for StepSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, IntoDeserializer};
        struct Shape;
        impl<'de> de::Visitor<'de> for Shape {
            type Value = StepSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a strategy name or a table { strategy = \"...\", more_memory, other_browser, attention }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StepSpec, E> {
                RecoveryStrategy::deserialize(v.into_deserializer()).map(StepSpec::Plain)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<StepSpec, A::Error> {
                Step::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(StepSpec::Detailed)
            }
        }
        d.deserialize_any(Shape)
    }
}

/// A ladder step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The strategy.
    pub strategy: RecoveryStrategy,
    /// DIFFERENT_WORKER: prefer a worker with more memory than the failed one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more_memory: bool,
    /// DIFFERENT_WORKER: prefer a worker with another browser.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other_browser: bool,
    /// Flag the failed worker for attention (reset, reboot, inspection).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attention: bool,
}

impl Step {
    /// A step with no options.
    pub fn plain(strategy: RecoveryStrategy) -> Self {
        Step {
            strategy,
            more_memory: false,
            other_browser: false,
            attention: false,
        }
    }
}

impl From<StepSpec> for Step {
    fn from(s: StepSpec) -> Self {
        match s {
            StepSpec::Plain(strategy) => Step::plain(strategy),
            StepSpec::Detailed(s) => s,
        }
    }
}

/// An inclusive attempt range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptRange {
    /// Lowest attempt (1-based), default 1.
    #[serde(default = "one")]
    pub min: u32,
    /// Highest attempt, default unbounded.
    #[serde(default = "max_u32")]
    pub max: u32,
}

fn one() -> u32 {
    1
}
fn max_u32() -> u32 {
    u32::MAX
}

/// What a rule matches on, as written. Absent fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchSpec {
    /// Hardware classes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hardware: Vec<HardwareClass>,
    /// Failure kinds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<FailureKind>,
    /// Regex searched in the message (add `(?i)` for case-insensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Spanned<String>>,
    /// Exit codes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exit_code: Vec<i32>,
    /// NVIDIA Xid codes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub xid: Vec<u32>,
    /// NVIDIA's immediate action for the failure's Xid code (see `xid_actions.csv`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub xid_action: Vec<Spanned<String>>,
    /// The task's attempt number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Spanned<AttemptRange>>,
    /// Browser names (case-insensitive).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub browser: Vec<String>,
}

/// A rule as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique name.
    pub name: Spanned<String>,
    /// What the rule is for.
    #[serde(default)]
    pub description: String,
    /// Conditions.
    #[serde(default, rename = "match")]
    pub matcher: MatchSpec,
    /// Strategy ladder.
    pub ladder: Spanned<Vec<StepSpec>>,
}

/// A rules file as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesFile {
    /// Extend (default) or replace the default rules.
    pub mode: Mode,
    /// Ladders per hardware class; classes not named keep their default ladder.
    pub ladders: ClassLadders,
    /// Ordered rules.
    pub rule: Vec<Spanned<RuleSpec>>,
}

/// A key of `[ladders]` as written: its spelling (`gpu`, `cuda`...) and the class it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassKey {
    /// The key as written.
    pub spelling: String,
    /// The hardware class it names.
    pub class: HardwareClass,
}

impl<'de> Deserialize<'de> for ClassKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Key;
        impl serde::de::Visitor<'_> for Key {
            type Value = ClassKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a hardware class")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ClassKey, E> {
                Ok(ClassKey {
                    spelling: v.to_string(),
                    class: v.parse().map_err(E::custom)?,
                })
            }
        }
        d.deserialize_str(Key)
    }
}

impl Serialize for ClassKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.spelling)
    }
}

/// The `[ladders]` table as written, in file order, with the position of each key. Kept as a
/// list rather than a map so that two spellings of one class (`GPU` and `gpu`) can be refused
/// instead of the last one silently winning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassLadders(pub Vec<(Spanned<ClassKey>, Vec<StepSpec>)>);

impl<'de> Deserialize<'de> for ClassLadders {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = ClassLadders;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table of hardware class = [steps]")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ClassLadders, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Spanned<ClassKey>>()? {
                    out.push((key, map.next_value()?));
                }
                Ok(ClassLadders(out))
            }
        }
        d.deserialize_map(Entries)
    }
}

impl Serialize for ClassLadders {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k.get_ref(), v)?;
        }
        m.end()
    }
}

/// Checked conditions of a rule.
#[derive(Debug, Clone)]
pub struct Matcher {
    hardware: Vec<HardwareClass>,
    kind: Vec<FailureKind>,
    message: Option<Regex>,
    exit_code: Vec<i32>,
    xid: Vec<u32>,
    xid_action: Vec<Arc<str>>,
    attempts: Option<AttemptRange>,
    browser: Vec<String>,
}

impl Matcher {
    /// Whether the matcher has no condition at all: its rule takes every failure, and the
    /// rules after it and the class ladders are never reached.
    pub fn matches_everything(&self) -> bool {
        self.hardware.is_empty()
            && self.kind.is_empty()
            && self.message.is_none()
            && self.exit_code.is_empty()
            && self.xid.is_empty()
            && self.xid_action.is_empty()
            && self.attempts.is_none()
            && self.browser.is_empty()
    }
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name (also the ladder's name in actions).
    pub name: Arc<str>,
    /// What it is for.
    pub description: String,
    /// Conditions.
    pub matcher: Matcher,
    /// Ladder, non-empty.
    pub ladder: Vec<Step>,
}

/// What a failure looks like to the rules.
#[derive(Debug, Clone, Copy)]
pub struct MatchContext<'a> {
    /// Hardware class of the failed worker.
    pub class: HardwareClass,
    /// Classified kind.
    pub kind: FailureKind,
    /// Error message.
    pub message: &'a str,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Xid code.
    pub xid: Option<u32>,
    /// The task's attempt number (1-based).
    pub attempt: u32,
    /// Browser name of the failed worker.
    pub browser: Option<&'a str>,
}

/// The ladder chosen for a failure.
#[derive(Debug, Clone, Copy)]
pub struct LadderRef<'a> {
    /// Rule name, or `ladder:<CLASS>` for a class ladder.
    pub name: &'a Arc<str>,
    /// The steps.
    pub steps: &'a [Step],
    /// True when a rule (not a class ladder) matched.
    pub from_rule: bool,
}

/// NVIDIA Xid code → immediate action.
#[derive(Debug, Clone)]
pub struct XidTable {
    actions: Vec<Option<Arc<str>>>,
    names: Vec<Arc<str>>,
}

impl XidTable {
    /// Parses the shipped table.
    pub fn builtin() -> Self {
        let mut actions: Vec<Option<Arc<str>>> = Vec::new();
        let mut names: Vec<Arc<str>> = Vec::new();
        for line in XID_ACTIONS_CSV
            .lines()
            .skip_while(|l| l.starts_with('#'))
            .skip(1)
        {
            let mut f = line.split(',');
            let (Some(code), Some(_mnemonic), Some(action)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let Ok(code) = code.parse::<usize>() else {
                continue;
            };
            let action = match names.iter().find(|n| &***n == action) {
                Some(n) => n.clone(),
                None => {
                    let n: Arc<str> = Arc::from(action);
                    names.push(n.clone());
                    n
                }
            };
            if actions.len() <= code {
                actions.resize(code + 1, None);
            }
            actions[code] = Some(action);
        }
        XidTable { actions, names }
    }

    /// The action for `xid`, if the table has it.
    pub fn action(&self, xid: u32) -> Option<&Arc<str>> {
        self.actions.get(xid as usize).and_then(|a| a.as_ref())
    }

    /// Every action name in the table.
    pub fn action_names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// Number of codes in the table.
    pub fn len(&self) -> usize {
        self.actions.iter().filter(|a| a.is_some()).count()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The checked rule set: ordered rules plus one ladder per hardware class.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    ladders: Vec<(Arc<str>, Vec<Step>)>,
    xid: XidTable,
    /// Default rules a user rule of the same name replaced (`mode = "extend"`), for
    /// [`RuleSet::warnings`].
    replaced: Vec<Arc<str>>,
}

/// Whether a failure on `class` can ever be answered with `s`, whatever the task (the
/// engine's `mutate::applicable` also looks at the task's batch, precision and models): no
/// BROWSER_RESTART off a browser, no FALLBACK_CPU or DIFFERENT_HARDWARE_CLASS on a CPU. The
/// one statement of it: the rules check, the engine's steps and its outcome check ask here.
pub fn can_carry_out(s: RecoveryStrategy, class: HardwareClass) -> bool {
    match s {
        RecoveryStrategy::BrowserRestart => class.is_browser(),
        RecoveryStrategy::FallbackCpu | RecoveryStrategy::DifferentHardwareClass => {
            class != HardwareClass::Cpu
        }
        _ => true,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn parse_file(text: &str, path: &str) -> Result<RulesFile, RulesError> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        // Within a key the file names, the error says which, as the checks after parsing do
        // (`rule[2] 'oom'.ladder`); the parser's own message names the line and shows it.
        let at = e.span().map(|span| line_of(text, span.start));
        match at.and_then(|line| Some((line, field_at_line(text, line)?))) {
            Some((line, field)) => RulesError::Invalid {
                path: path.to_string(),
                line,
                field,
                detail: e.message().trim().to_string(),
            },
            None => RulesError::Parse {
                path: path.to_string(),
                message: e.to_string().trim_end().to_string(),
            },
        }
    })
}

/// The field of a rules file that `line` (1-based) belongs to: the key on that line, or the
/// nearest one above it in the same table (a value spanning lines), with its table —
/// `rule[N] 'name'.key` inside the N-th `[[rule]]` (and its `[rule.match]`),
/// `ladders.gpu` and the like elsewhere. `None` when no key is found.
fn field_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let strip = |k: &str| k.trim().trim_matches('"').trim_matches('\'').to_string();
    let dotted = |k: &str| k.split('.').map(strip).collect::<Vec<_>>().join(".");
    // The table the line is in: its header line index and dotted name.
    let mut table: Option<(usize, String)> = None;
    let mut rules = 0usize;
    let mut rule_at: Option<(usize, usize)> = None; // (rule number, header index)
    for (i, raw) in lines.iter().enumerate().take(line) {
        let t = raw.trim();
        if let Some(inner) = t.strip_prefix("[[") {
            let name = dotted(inner.split("]]").next().unwrap_or(""));
            if name == "rule" {
                rules += 1;
                rule_at = Some((rules, i));
            } else {
                rule_at = None;
            }
            table = Some((i, name));
        } else if let Some(inner) = t.strip_prefix('[') {
            let name = dotted(inner.split(']').next().unwrap_or(""));
            if !name.starts_with("rule.") {
                rule_at = None;
            }
            table = Some((i, name));
        }
    }
    let from = table.as_ref().map_or(0, |(i, _)| i + 1);
    // The key on the line, else the nearest key line above it in the table (a value spanning
    // lines). A key line whose key is not a plain one (quoted with spaces, say) ends the
    // search without a name: the parser's own message, which quotes the line, is clearer than
    // a neighbour's name (review).
    let key = (from..line.min(lines.len())).rev().find_map(|i| {
        let t = lines[i].trim();
        if t.starts_with('#') || t.starts_with('[') {
            return None;
        }
        let (k, _) = t.split_once('=')?;
        let k = dotted(k);
        let plain = !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c));
        Some(plain.then_some(k))
    })??;
    let Some((n, header)) = rule_at else {
        return Some(match table {
            Some((_, name)) => format!("{name}.{key}"),
            None => key,
        });
    };
    // The rule's name, from its lines.
    let name = lines
        .iter()
        .skip(header + 1)
        .take_while(|l| !l.trim().starts_with("[["))
        .filter_map(|l| l.trim().split_once('='))
        .find(|(k, _)| strip(k) == "name")
        .map(|(_, v)| strip(v.split('#').next().unwrap_or("")));
    let sub = table
        .and_then(|(_, t)| t.strip_prefix("rule.").map(|s| format!("{s}.")))
        .unwrap_or_default();
    Some(match name {
        Some(name) => format!("rule[{n}] '{name}'.{sub}{key}"),
        None => format!("rule[{n}].{sub}{key}"),
    })
}

impl Matcher {
    /// Whether the failure satisfies every condition.
    pub fn matches(&self, c: &MatchContext<'_>, xid: &XidTable) -> bool {
        (self.hardware.is_empty() || self.hardware.contains(&c.class))
            && (self.kind.is_empty() || self.kind.contains(&c.kind))
            && (self.exit_code.is_empty()
                || c.exit_code.is_some_and(|e| self.exit_code.contains(&e)))
            && (self.xid.is_empty() || c.xid.is_some_and(|x| self.xid.contains(&x)))
            && (self.xid_action.is_empty()
                || c.xid
                    .and_then(|x| xid.action(x))
                    .is_some_and(|a| self.xid_action.iter().any(|m| m == a)))
            && self
                .attempts
                .is_none_or(|r| (r.min..=r.max).contains(&c.attempt))
            && (self.browser.is_empty()
                || c.browser
                    .is_some_and(|b| self.browser.iter().any(|m| m.eq_ignore_ascii_case(b))))
            && self
                .message
                .as_ref()
                .is_none_or(|re| re.is_match(c.message))
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let join = |v: Vec<String>| v.join("|");
        if !self.hardware.is_empty() {
            parts.push(format!(
                "hardware={}",
                join(self.hardware.iter().map(|h| h.to_string()).collect())
            ));
        }
        if !self.kind.is_empty() {
            parts.push(format!(
                "kind={}",
                join(self.kind.iter().map(|h| h.to_string()).collect())
            ));
        }
        if let Some(re) = &self.message {
            parts.push(format!("message=/{}/", re.as_str()));
        }
        if !self.exit_code.is_empty() {
            parts.push(format!(
                "exit_code={}",
                join(self.exit_code.iter().map(|h| h.to_string()).collect())
            ));
        }
        if !self.xid.is_empty() {
            parts.push(format!(
                "xid={}",
                join(self.xid.iter().map(|h| h.to_string()).collect())
            ));
        }
        if !self.xid_action.is_empty() {
            parts.push(format!(
                "xid_action={}",
                join(self.xid_action.iter().map(|h| h.to_string()).collect())
            ));
        }
        if let Some(r) = self.attempts {
            parts.push(if r.max == u32::MAX {
                format!("attempts={}..", r.min)
            } else {
                format!("attempts={}..={}", r.min, r.max)
            });
        }
        if !self.browser.is_empty() {
            parts.push(format!("browser={}", self.browser.join("|")));
        }
        if parts.is_empty() {
            "any failure".into()
        } else {
            parts.join(" ")
        }
    }
}

impl RuleSet {
    /// The shipped defaults.
    pub fn defaults() -> Self {
        // The shipped file is validated by a test; failing here would be a build defect.
        Self::from_toml(DEFAULT_RULES_TOML, "<default rules>", None)
            .expect("the embedded default rules are valid")
    }

    /// Loads a rules file over the defaults (extend or replace, per its `mode`).
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string(), Some(Self::defaults()))
    }

    /// Parses and validates rules from TOML text. `base` is what `mode = "extend"` extends and
    /// what unnamed class ladders come from (`None`: no base, which only the defaults use).
    pub fn from_toml(text: &str, path: &str, base: Option<RuleSet>) -> Result<Self, RulesError> {
        let file = parse_file(text, path)?;
        let xid = XidTable::builtin();
        let invalid = |offset: usize, field: String, detail: String| RulesError::Invalid {
            path: path.to_string(),
            line: line_of(text, offset),
            field,
            detail,
        };

        let mut rules = Vec::with_capacity(file.rule.len());
        for (i, spanned) in file.rule.iter().enumerate() {
            let spec = spanned.get_ref();
            let name = spec.name.get_ref().as_str();
            let label = format!("rule[{}] '{name}'", i + 1);
            if name.trim().is_empty() {
                return Err(invalid(
                    spec.name.span().start,
                    format!("rule[{}].name", i + 1),
                    "must not be empty".into(),
                ));
            }
            if rules.iter().any(|r: &Rule| &*r.name == name) {
                return Err(invalid(
                    spec.name.span().start,
                    format!("{label}.name"),
                    "duplicate rule name".into(),
                ));
            }
            if spec.ladder.get_ref().is_empty() {
                return Err(invalid(
                    spec.ladder.span().start,
                    format!("{label}.ladder"),
                    "must have at least one step".into(),
                ));
            }
            let m = &spec.matcher;
            let message = match &m.message {
                None => None,
                Some(s) => Some(Regex::new(s.get_ref()).map_err(|e| {
                    invalid(
                        s.span().start,
                        format!("{label}.match.message"),
                        format!("invalid regex: {}", e.to_string().replace('\n', " ")),
                    )
                })?),
            };
            let mut xid_action = Vec::new();
            for spanned_action in &m.xid_action {
                let a = spanned_action.get_ref();
                match xid
                    .action_names()
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(a))
                {
                    Some(n) => xid_action.push(n.clone()),
                    None => {
                        return Err(invalid(
                            spanned_action.span().start,
                            format!("{label}.match.xid_action"),
                            format!(
                                "unknown NVIDIA action '{a}' (known: {})",
                                xid.action_names()
                                    .iter()
                                    .map(|n| n.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ))
                    }
                }
            }
            let attempts = m.attempts.as_ref().map(|r| *r.get_ref());
            if let (Some(spanned_range), Some(r)) = (&m.attempts, attempts) {
                if r.min == 0 || r.min > r.max {
                    return Err(invalid(
                        spanned_range.span().start,
                        format!("{label}.match.attempts"),
                        format!("min {} must be ≥ 1 and ≤ max {}", r.min, r.max),
                    ));
                }
            }
            rules.push(Rule {
                name: Arc::from(name),
                description: spec.description.clone(),
                matcher: Matcher {
                    hardware: m.hardware.clone(),
                    kind: m.kind.clone(),
                    message,
                    exit_code: m.exit_code.clone(),
                    xid: m.xid.clone(),
                    xid_action,
                    attempts,
                    browser: m.browser.iter().map(|b| b.to_ascii_lowercase()).collect(),
                },
                ladder: spec
                    .ladder
                    .get_ref()
                    .iter()
                    .cloned()
                    .map(Step::from)
                    .collect(),
            });
        }

        let mut ladders: Vec<(Arc<str>, Vec<Step>)> = match &base {
            Some(b) => b.ladders.clone(),
            None => HardwareClass::ALL
                .iter()
                .map(|c| (Arc::from(format!("ladder:{c}")), Vec::new()))
                .collect(),
        };
        for (i, (key, steps)) in file.ladders.0.iter().enumerate() {
            let at = key.span().start;
            let ClassKey { spelling, class } = key.get_ref();
            let field = format!("ladders.{spelling}");
            if let Some((first, _)) = file.ladders.0[..i]
                .iter()
                .find(|(k, _)| k.get_ref().class == *class)
            {
                return Err(invalid(
                    at,
                    field,
                    format!(
                        "'{spelling}' and '{}' (line {}) both name hardware class {class}; keep one",
                        first.get_ref().spelling,
                        line_of(text, first.span().start)
                    ),
                ));
            }
            if steps.is_empty() {
                return Err(invalid(at, field, "must have at least one step".into()));
            }
            ladders[class.index()].1 = steps.iter().cloned().map(Step::from).collect();
        }
        if let Some((name, _)) = ladders.iter().find(|(_, s)| s.is_empty()) {
            return Err(invalid(
                0,
                format!("ladders.{}", &name["ladder:".len()..]),
                "no ladder for this class".into(),
            ));
        }

        let mut replaced = Vec::new();
        if let (Some(b), Mode::Extend) = (&base, file.mode) {
            for r in &b.rules {
                if rules.iter().any(|x| x.name == r.name) {
                    // A user rule of the same name replaces the default.
                    replaced.push(r.name.clone());
                    continue;
                }
                rules.push(r.clone());
            }
        }
        Ok(RuleSet {
            rules,
            ladders,
            xid,
            replaced,
        })
    }

    /// The ladder for a failure: the first matching rule's, else the class ladder.
    pub fn select(&self, c: &MatchContext<'_>) -> LadderRef<'_> {
        for r in &self.rules {
            if r.matcher.matches(c, &self.xid) {
                return LadderRef {
                    name: &r.name,
                    steps: &r.ladder,
                    from_rule: true,
                };
            }
        }
        let (name, steps) = &self.ladders[c.class.index()];
        LadderRef {
            name,
            steps,
            from_rule: false,
        }
    }

    /// The ordered rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// What is valid but probably not meant: a rule with no condition (it takes every
    /// failure) followed by rules it makes unreachable. One sentence each.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        // An audit: a user rule named like a default dropped the default's other cases
        // (its `oom` for `oom_gpu` took `oom_host` out of the default `oom`) without a word.
        for name in &self.replaced {
            out.push(format!(
                "rule '{name}' has the name of a default rule, which it replaces: the default's matches no longer apply (`faultline rules show --toml` shows them; another name keeps both)"
            ));
        }
        if let Some((i, r)) = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matcher.matches_everything())
        {
            let after = self.rules.len() - i - 1;
            out.push(format!(
                "rule '{}' has no `match` condition: it takes every failure, so the {after} rule(s) after it and the hardware-class ladders are never used",
                r.name
            ));
        }
        // Steps after an ESCALATION are never reached: the task went to a human (audit).
        let after_escalation = |steps: &[Step]| {
            let at = steps
                .iter()
                .position(|s| s.strategy == RecoveryStrategy::Escalation)?;
            (at + 1 < steps.len()).then_some((at + 1, steps.len() - at - 1))
        };
        for r in &self.rules {
            if let Some((step, n)) = after_escalation(&r.ladder) {
                out.push(format!(
                    "rule '{}': ESCALATION is step {step} of its ladder, so the {n} step(s) after it are never used",
                    r.name
                ));
            }
        }
        for (name, steps) in &self.ladders {
            if let Some((step, n)) = after_escalation(steps) {
                out.push(format!(
                    "ladder '{name}': ESCALATION is step {step}, so the {n} step(s) after it are never used"
                ));
            }
        }
        // Steps no class the rule or ladder applies to can carry out, which the engine skips
        // (an audit: a CPU rule of BROWSER_RESTART and FALLBACK_CPU escalated at once, and
        // the check said nothing).
        let never = |steps: &[Step], classes: &[HardwareClass]| -> Vec<String> {
            let mut v: Vec<String> = steps
                .iter()
                .filter(|s| !classes.iter().any(|&c| can_carry_out(s.strategy, c)))
                .map(|s| s.strategy.to_string())
                .collect();
            v.dedup();
            v
        };
        for r in &self.rules {
            if r.matcher.hardware.is_empty() {
                continue;
            }
            let v = never(&r.ladder, &r.matcher.hardware);
            if !v.is_empty() {
                out.push(format!(
                    "rule '{}': {} cannot be carried out on {} (its `match.hardware`), so the engine skips {}",
                    r.name,
                    v.join(", "),
                    r.matcher
                        .hardware
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    if v.len() == 1 { "it" } else { "them" }
                ));
            }
        }
        for (class, (name, steps)) in HardwareClass::ALL.iter().zip(&self.ladders) {
            let v = never(steps, std::slice::from_ref(class));
            if !v.is_empty() {
                out.push(format!(
                    "ladder '{name}': {} cannot be carried out on {class}, so the engine skips {}",
                    v.join(", "),
                    if v.len() == 1 { "it" } else { "them" }
                ));
            }
        }
        out
    }

    /// The ladder of a hardware class.
    pub fn class_ladder(&self, class: HardwareClass) -> &[Step] {
        &self.ladders[class.index()].1
    }

    /// The Xid table.
    pub fn xid_table(&self) -> &XidTable {
        &self.xid
    }

    /// The effective rules and ladders as an aligned text table.
    pub fn render_table(&self) -> String {
        fn steps(s: &[Step]) -> String {
            s.iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut t = format!("{}. {}", i + 1, s.strategy);
                    let mut opts = Vec::new();
                    if s.more_memory {
                        opts.push("more memory");
                    }
                    if s.other_browser {
                        opts.push("other browser");
                    }
                    if s.attention {
                        opts.push("flag worker");
                    }
                    if !opts.is_empty() {
                        let _ = write!(t, " ({})", opts.join(", "));
                    }
                    t
                })
                .chain(std::iter::once(format!("{}. ESCALATION", s.len() + 1)))
                .collect::<Vec<_>>()
                .join(" → ")
        }
        let mut out = String::new();
        let _ = writeln!(out, "Rules (first match wins):");
        let w = self
            .rules
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        for (i, r) in self.rules.iter().enumerate() {
            let _ = writeln!(
                out,
                "{:>3}  {:<w$}  when {}",
                i + 1,
                r.name,
                r.matcher.describe()
            );
            let _ = writeln!(out, "     {:<w$}  then {}", "", steps(&r.ladder));
        }
        let _ = writeln!(out, "\nLadders per hardware class (when no rule matches):");
        for (c, (_, s)) in HardwareClass::ALL.iter().zip(&self.ladders) {
            let _ = writeln!(out, "  {:<8} {}", c.as_str(), steps(s));
        }
        out
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        Self::defaults()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RecoveryStrategy as S;

    fn ctx(class: HardwareClass, kind: FailureKind) -> MatchContext<'static> {
        MatchContext {
            class,
            kind,
            message: "",
            exit_code: None,
            xid: None,
            attempt: 1,
            browser: None,
        }
    }

    fn strategies(s: &[Step]) -> Vec<RecoveryStrategy> {
        s.iter().map(|s| s.strategy).collect()
    }

    /// Regression (audit): a user rule named like a default replaced it without a word, the
    /// default's other cases with it; `rules check` warns now, naming it.
    #[test]
    fn a_rule_named_like_a_default_is_warned_about() {
        let text = "[[rule]]\nname = \"oom\"\nmatch.kind = [\"oom_gpu\"]\nladder = [\"REDUCED_BATCH_SIZE\"]\n";
        let set = RuleSet::from_toml(text, "r.toml", Some(RuleSet::defaults())).unwrap();
        let w = set.warnings();
        assert!(
            w.iter()
                .any(|w| w.starts_with("rule 'oom' has the name of a default rule")),
            "{w:?}"
        );
        let other = text.replace("name = \"oom\"", "name = \"my-oom\"");
        let set = RuleSet::from_toml(&other, "r.toml", Some(RuleSet::defaults())).unwrap();
        assert!(set.warnings().is_empty(), "{:?}", set.warnings());
    }

    /// Regression: a misspelt strategy was reported as "data did not match any variant of
    /// untagged enum StepSpec"; a rule with no condition passed `rules check` silently.
    #[test]
    fn a_misspelt_strategy_is_named_and_a_catch_all_rule_is_warned_about() {
        let rule = |ladder: &str, matcher: &str| {
            format!("mode = \"extend\"\n[[rule]]\nname = \"x\"\ndescription = \"d\"\n{matcher}ladder = {ladder}\n")
        };
        for ladder in [
            "[\"DELAYED_RETRYY\"]",
            "[{ strategy = \"DELAYED_RETRYY\" }]",
        ] {
            let err = RuleSet::from_toml(&rule(ladder, ""), "r.toml", Some(RuleSet::defaults()))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("unknown recovery strategy 'DELAYED_RETRYY'"),
                "{err}"
            );
            assert!(err.contains("DELAYED_RETRY,"), "{err}");
            // An audit found the field shown only in the quoted source: it is named, as the
            // checks after parsing name theirs.
            assert!(err.contains("r.toml:5: rule[1] 'x'.ladder:"), "{err}");
        }
        for (text, want) in [
            (
                "[[rule]]\nname = \"a\"\nladder = [\"IMMEDIATE_RETRY\"]\n[[rule]]\nname = \"b\"\n[rule.match]\nkind = [\"oom_gpu\", \"bloom\"]\nladder = [\"IMMEDIATE_RETRY\"]\n",
                "r.toml:7: rule[2] 'b'.match.kind:",
            ),
            (
                "[[rule]]\nname = \"a\"\nmatch.hardware = [\"GPUX\"]\nladder = [\"IMMEDIATE_RETRY\"]\n",
                "r.toml:3: rule[1] 'a'.match.hardware:",
            ),
            (
                "[[rule]]\nname = \"a\"\nladder = [\n  \"IMMEDIATE_RETRY\",\n  \"NOPE\",\n]\n",
                "rule[1] 'a'.ladder:",
            ),
            (
                "[ladders]\ngpu = [\"DELAYED_RETRY\", \"NOPE\"]\n",
                "r.toml:2: ladders.gpu:",
            ),
            // A key that is not plain on the error line is not named after its neighbour
            // (review): the parser's message, quoting the line, is given.
            (
                "[ladders]\ngpu = [\"DELAYED_RETRY\"]\n\"QPU v2\" = [\"ESCALATION\"]\n",
                "line 3",
            ),
        ] {
            let err = RuleSet::from_toml(text, "r.toml", Some(RuleSet::defaults()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
        let err = RuleSet::from_toml(
            &rule("[{ strategy = \"DIFFERENT_WORKER\", colour = 1 }]", ""),
            "r.toml",
            Some(RuleSet::defaults()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
        let ladder = "[{ strategy = \"DIFFERENT_WORKER\", more_memory = true }, \"FALLBACK_CPU\"]";
        let all =
            RuleSet::from_toml(&rule(ladder, ""), "r.toml", Some(RuleSet::defaults())).unwrap();
        assert_eq!(all.rules()[0].ladder[0].strategy, S::DifferentWorker);
        assert!(all.rules()[0].ladder[0].more_memory);
        let w = all.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("rule 'x' has no `match` condition"), "{w:?}");
        // Steps after ESCALATION are warned about (audit: accepted without a word).
        let dead = RuleSet::from_toml(
            &rule(
                "[\"ESCALATION\", \"DIFFERENT_WORKER\"]",
                "match.kind = [\"oom_gpu\"]\n",
            ),
            "r.toml",
            Some(RuleSet::defaults()),
        )
        .unwrap();
        let w = dead.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("rule 'x': ESCALATION is step 1") && w[0].contains("1 step(s)"),
            "{w:?}"
        );
        assert!(RuleSet::defaults().warnings().is_empty());
        // Regression (CLI audit): steps no class of the rule can carry out were taken
        // without a word (a CPU rule of BROWSER_RESTART and FALLBACK_CPU escalated at once).
        let cpu = RuleSet::from_toml(
            &rule(
                "[\"BROWSER_RESTART\", \"FALLBACK_CPU\", \"DELAYED_RETRY\"]",
                "match.hardware = [\"CPU\"]\n",
            ),
            "r.toml",
            Some(RuleSet::defaults()),
        )
        .unwrap();
        let w = cpu.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("rule 'x': BROWSER_RESTART, FALLBACK_CPU cannot be carried out on CPU"),
            "{w:?}"
        );
        let some = RuleSet::from_toml(
            &rule(ladder, "match.kind = [\"oom_gpu\"]\n"),
            "r.toml",
            Some(RuleSet::defaults()),
        )
        .unwrap();
        assert!(some.warnings().is_empty());
        assert!(RuleSet::defaults().warnings().is_empty());
    }

    #[test]
    fn defaults_reproduce_the_seed_class_tables() {
        let r = RuleSet::defaults();
        use HardwareClass as H;
        assert_eq!(
            strategies(r.class_ladder(H::Cpu)),
            [S::DelayedRetry, S::DifferentWorker, S::ReducedBatchSize]
        );
        assert_eq!(
            strategies(r.class_ladder(H::Gpu)),
            [
                S::DelayedRetry,
                S::DifferentWorker,
                S::ReducedPrecision,
                S::ReducedBatchSize,
                S::FallbackCpu
            ]
        );
        assert_eq!(
            strategies(r.class_ladder(H::Tpu)),
            [
                S::DelayedRetry,
                S::DifferentWorker,
                S::ReducedBatchSize,
                S::FallbackCpu
            ]
        );
        assert_eq!(
            strategies(r.class_ladder(H::Npu)),
            [
                S::DelayedRetry,
                S::DifferentWorker,
                S::ReducedPrecision,
                S::FallbackCpu
            ]
        );
        assert_eq!(
            strategies(r.class_ladder(H::Webgpu)),
            [
                S::BrowserRestart,
                S::DelayedRetry,
                S::DifferentWorker,
                S::ReducedPrecision,
                S::FallbackCpu
            ]
        );
        assert_eq!(
            strategies(r.class_ladder(H::Webnn)),
            [
                S::BrowserRestart,
                S::DelayedRetry,
                S::DifferentWorker,
                S::FallbackCpu
            ]
        );
        for c in H::ALL {
            assert!(!r.class_ladder(*c).is_empty(), "{c} has no ladder");
        }
    }

    #[test]
    fn defaults_reproduce_the_seed_error_handlers() {
        let r = RuleSet::defaults();
        let l = r.select(&ctx(HardwareClass::Gpu, FailureKind::OomGpu));
        assert_eq!(&**l.name, "oom");
        assert_eq!(
            strategies(l.steps),
            [
                S::ReducedBatchSize,
                S::ReducedPrecision,
                S::DifferentWorker,
                S::FallbackCpu
            ]
        );
        assert!(l.steps[2].more_memory);
        let l = r.select(&ctx(HardwareClass::Gpu, FailureKind::CudaError));
        assert_eq!(
            strategies(l.steps),
            [S::DifferentWorker, S::DelayedRetry, S::FallbackCpu]
        );
        let l = r.select(&ctx(HardwareClass::Webgpu, FailureKind::BrowserCrash));
        assert_eq!(
            strategies(l.steps),
            [S::BrowserRestart, S::DifferentWorker, S::FallbackCpu]
        );
        assert!(l.steps[1].other_browser);
        let l = r.select(&ctx(HardwareClass::Webgpu, FailureKind::WebgpuContextLost));
        assert_eq!(
            strategies(l.steps),
            [S::BrowserRestart, S::DifferentWorker, S::FallbackCpu]
        );
        let l = r.select(&ctx(HardwareClass::Webnn, FailureKind::Timeout));
        assert!(!l.from_rule);
        assert_eq!(&**l.name, "ladder:WEBNN");
    }

    #[test]
    fn xid_rules_follow_nvidia_actions() {
        let r = RuleSet::defaults();
        assert!(r.xid_table().len() >= 160);
        assert_eq!(r.xid_table().action(79).map(|a| &**a), Some("RESTART_BM"));
        let mut c = ctx(HardwareClass::Gpu, FailureKind::GpuHardware);
        c.xid = Some(79);
        let l = r.select(&c);
        assert_eq!(&**l.name, "xid-reset-or-reboot");
        assert_eq!(l.steps[0].strategy, S::DifferentWorker);
        assert!(l.steps[0].attention);
        c.xid = Some(13); // RESTART_APP
        assert_eq!(r.select(&c).steps[0].strategy, S::DelayedRetry);
        c.xid = Some(63); // IGNORE
        assert_eq!(r.select(&c).steps[0].strategy, S::ImmediateRetry);
    }

    /// Regression (review): Xid 171/172, the uncorrectable DRAM/SRAM errors NVIDIA's catalog
    /// calls "additional to Xid 48", had action UNKNOWN and fell to the plain `cuda-error`
    /// rule; like Xid 48 they now move the task and flag the worker.
    #[test]
    fn xid_171_172_flag_the_worker_like_xid_48() {
        let r = RuleSet::defaults();
        let mut c = ctx(HardwareClass::Gpu, FailureKind::GpuHardware);
        for code in [48, 171, 172] {
            c.xid = Some(code);
            let l = r.select(&c);
            assert_eq!(&**l.name, "xid-reset-or-reboot", "xid {code}");
            assert_eq!(l.steps[0].strategy, S::DifferentWorker, "xid {code}");
            assert!(l.steps[0].attention, "xid {code}");
        }
        // The catalog gives 167 (PCIe fatal timeout) and 168 (errors in the write-protected
        // region) no resolution and ties them to no other code: still unknown.
        for code in [167, 168] {
            assert_eq!(r.xid_table().action(code).map(|a| &**a), Some("UNKNOWN"));
        }
    }

    /// The fields of one line of a CSV file with quoted fields (`"a, b"`, `""` for `"`).
    fn csv_fields(line: &str) -> Vec<String> {
        let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
        let mut chars = line.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(std::mem::take(&mut field)),
                ch => field.push(ch),
            }
        }
        fields.push(field);
        fields
    }

    /// `xid_actions.csv` is NVIDIA's Xid catalog transcribed (checked when the shared data
    /// folder is present): every code's mnemonic and immediate resolution, `UNKNOWN` where
    /// the catalog gives none — except a code the catalog describes as "additional to Xid N",
    /// which takes Xid N's action.
    #[test]
    fn xid_actions_follow_the_catalog() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/real/nvidia_xid/xid_catalog.csv");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipping: {} not found", path.display());
            return;
        };
        let catalog: Vec<Vec<String>> = text.lines().skip(1).map(csv_fields).collect();
        let resolution = |code: u32| {
            catalog
                .iter()
                .find(|f| f[0] == code.to_string())
                .map(|f| f[3].clone())
        };
        let ours: Vec<Vec<String>> = XID_ACTIONS_CSV
            .lines()
            .skip_while(|l| l.starts_with('#'))
            .skip(1)
            .map(csv_fields)
            .collect();
        assert_eq!(ours.len(), catalog.len());
        let mut additional = Vec::new();
        for f in &catalog {
            let code: u32 = f[0].parse().unwrap();
            let mine = ours.iter().find(|o| o[0] == f[0]).expect("every code");
            assert_eq!(mine[1], f[1], "xid {code} mnemonic");
            let description = f[2].to_ascii_lowercase();
            let want = match description.strip_prefix("additional to xid ") {
                Some(rest) if f[3].is_empty() => {
                    additional.push(code);
                    let base: u32 = rest
                        .split(|c: char| !c.is_ascii_digit())
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap();
                    resolution(base).unwrap()
                }
                _ if f[3].is_empty() => "UNKNOWN".to_string(),
                _ => f[3].clone(),
            };
            assert_eq!(mine[2], want, "xid {code} action");
        }
        assert_eq!(additional, [171, 172]);
    }

    #[test]
    fn extend_prepends_and_partial_ladders_keep_other_classes() {
        let text = r#"
[ladders]
GPU = ["FALLBACK_CPU"]

[[rule]]
name = "nccl"
match.kind = ["timeout"]
match.message = '(?i)nccl'
ladder = ["DIFFERENT_WORKER"]
"#;
        let r = RuleSet::from_toml(text, "x.toml", Some(RuleSet::defaults())).unwrap();
        assert_eq!(&*r.rules()[0].name, "nccl");
        assert!(r.rules().iter().any(|x| &*x.name == "oom"));
        assert_eq!(
            strategies(r.class_ladder(HardwareClass::Gpu)),
            [S::FallbackCpu]
        );
        assert_eq!(
            strategies(r.class_ladder(HardwareClass::Cpu)),
            [S::DelayedRetry, S::DifferentWorker, S::ReducedBatchSize]
        );
        let mut c = ctx(HardwareClass::Gpu, FailureKind::Timeout);
        c.message = "NCCL watchdog timeout";
        assert_eq!(&**r.select(&c).name, "nccl");
        c.message = "deadline exceeded";
        assert_eq!(&**r.select(&c).name, "ladder:GPU");

        let replaced = RuleSet::from_toml(
            "mode = \"replace\"\n[ladders]\nGPU = [\"ESCALATION\"]\n",
            "y.toml",
            Some(RuleSet::defaults()),
        )
        .unwrap();
        assert!(replaced.rules().is_empty());
        assert_eq!(
            strategies(replaced.class_ladder(HardwareClass::Cpu)).len(),
            3
        );
    }

    #[test]
    fn matcher_fields() {
        let text = r#"
[[rule]]
name = "r"
match = { hardware = ["GPU"], exit_code = [137], attempts = { min = 2, max = 3 }, browser = ["Chrome"] }
ladder = ["ESCALATION"]
"#;
        let r = RuleSet::from_toml(text, "x", Some(RuleSet::defaults())).unwrap();
        let mut c = ctx(HardwareClass::Gpu, FailureKind::Unknown);
        c.exit_code = Some(137);
        c.attempt = 2;
        c.browser = Some("chrome");
        assert_eq!(&**r.select(&c).name, "r");
        c.attempt = 4;
        assert_ne!(&**r.select(&c).name, "r");
        c.attempt = 3;
        c.browser = Some("firefox");
        assert_ne!(&**r.select(&c).name, "r");
    }

    #[test]
    fn each_error_names_file_line_and_field() {
        let base = || Some(RuleSet::defaults());
        let e = RuleSet::from_toml(
            "[[rule]]\nname = \"a\"\nladder = [\"NOPE\"]\n",
            "f.toml",
            base(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("f.toml:3: rule[1] 'a'.ladder:"), "{e}");
        let e = RuleSet::from_toml("[[rule]]\nname = \"a\"\nlader = []\n", "f.toml", base())
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.toml:3: rule[1] 'a'.lader:"), "{e}");
        let e = RuleSet::from_toml(
            "\n\n[[rule]]\nname = \"a\"\nmatch.message = '(unclosed'\nladder = [\"ESCALATION\"]\n",
            "f.toml",
            base(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("f.toml:5") && e.contains("match.message") && e.contains("rule[1] 'a'"),
            "{e}"
        );
        let e = RuleSet::from_toml("[[rule]]\nname = \"a\"\nladder = []\n", "f.toml", base())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ladder") && e.contains("f.toml:3"), "{e}");
        let e = RuleSet::from_toml("[[rule]]\nname = \"a\"\nladder = [\"ESCALATION\"]\n[[rule]]\nname = \"a\"\nladder = [\"ESCALATION\"]\n", "f.toml", base())
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate") && e.contains("f.toml:5"), "{e}");
        let e = RuleSet::from_toml(
            "[[rule]]\nname = \"a\"\nmatch.xid_action = [\"PRAY\"]\nladder = [\"ESCALATION\"]\n",
            "f.toml",
            base(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("xid_action") && e.contains("PRAY"), "{e}");
        let e = RuleSet::from_toml("[[rule]]\nname = \"a\"\nmatch.attempts = { min = 3, max = 1 }\nladder = [\"ESCALATION\"]\n", "f.toml", base())
            .unwrap_err()
            .to_string();
        assert!(e.contains("attempts"), "{e}");
        let e = RuleSet::from_toml("[ladders]\nGPU = []\n", "f.toml", base())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ladders.GPU"), "{e}");
        let e = RuleSet::from_toml("[ladders]\nQPU = [\"ESCALATION\"]\n", "f.toml", base())
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.toml:2: ladders.QPU:"), "{e}");
    }

    fn err(text: &str) -> String {
        RuleSet::from_toml(text, "f.toml", Some(RuleSet::defaults()))
            .unwrap_err()
            .to_string()
    }

    /// Regression: an empty class ladder was reported at line 1 (offset 0), not at its key.
    #[test]
    fn an_empty_class_ladder_is_reported_at_its_key() {
        let e = err("[ladders]\nGPU = []\n");
        assert!(e.contains("f.toml:2: ladders.GPU:"), "{e}");
        assert!(e.contains("at least one step"), "{e}");
        let e = err("mode = \"extend\"\n\n[ladders]\nCPU = [\"DELAYED_RETRY\"]\nwebnn = []\n");
        assert!(e.contains("f.toml:5: ladders.webnn:"), "{e}");
    }

    /// Regression: errors in a rule's fields were reported at its `[[rule]]` header.
    #[test]
    fn errors_in_rule_fields_name_the_line_of_the_field() {
        let e = err("\n\n[[rule]]\nname = \"a\"\nmatch.kind = [\"timeout\"]\nladder = [\"ESCALATION\"]\n\n\n[[rule]]\nname = \"b\"\nmatch.xid_action = [\"PRAY\"]\nladder = [\"ESCALATION\"]\n");
        assert!(
            e.contains("f.toml:11: rule[2] 'b'.match.xid_action:") && e.contains("PRAY"),
            "{e}"
        );
        // The offending element of a multi-line list, not the list.
        let e = err("[[rule]]\nname = \"a\"\nmatch.xid_action = [\n  \"IGNORE\",\n  \"PRAY\",\n]\nladder = [\"ESCALATION\"]\n");
        assert!(e.contains("f.toml:5: rule[1] 'a'.match.xid_action:"), "{e}");
        let e =
            err("[[rule]]\nname = \"\"\nmatch.kind = [\"timeout\"]\nladder = [\"ESCALATION\"]\n");
        assert!(e.contains("f.toml:2: rule[1].name:"), "{e}");
        let e = err(
            "[[rule]]\nname = \"a\"\n\nmatch.attempts = { min = 0 }\nladder = [\"ESCALATION\"]\n",
        );
        assert!(e.contains("f.toml:4: rule[1] 'a'.match.attempts:"), "{e}");
        let e = err("[[rule]]\nname = \"a\"\nladder = [\"ESCALATION\"]\n[rule.match]\nkind = [\"timeout\"]\nattempts = { min = 5, max = 2 }\n");
        assert!(e.contains("f.toml:6: rule[1] 'a'.match.attempts:"), "{e}");
        let e = err("[[rule]]\nname = \"a\"\nmatch = { kind = [\"timeout\"], attempts = { min = 5, max = 2 } }\nladder = [\"ESCALATION\"]\n");
        assert!(e.contains("f.toml:3: rule[1] 'a'.match.attempts:"), "{e}");
        let e = err("[[rule]]\nname = \"a\"\nmatch.kind = [\"timeout\"]\n\nladder = []\n");
        assert!(e.contains("f.toml:5: rule[1] 'a'.ladder:"), "{e}");
        let e = err("[[rule]]\nname = \"a\"\nmatch.kind = [\"timeout\"]\nladder = [\"ESCALATION\"]\n[[rule]]\nmatch.kind = [\"oom_gpu\"]\nname = \"a\"\nladder = [\"ESCALATION\"]\n");
        assert!(e.contains("f.toml:7: rule[2] 'a'.name: duplicate"), "{e}");
    }

    /// Regression: two spellings of one class in `[ladders]` were accepted, the last winning.
    #[test]
    fn two_spellings_of_one_class_in_ladders_are_refused() {
        let e = err("[ladders]\nGPU = [\"DELAYED_RETRY\"]\ngpu = [\"FALLBACK_CPU\"]\n");
        assert!(e.contains("f.toml:3: ladders.gpu:"), "{e}");
        assert!(
            e.contains("'gpu' and 'GPU' (line 2) both name hardware class GPU"),
            "{e}"
        );
        // Aliases too.
        let e = err("[ladders]\ncuda = [\"DELAYED_RETRY\"]\nCPU = [\"DELAYED_RETRY\"]\nrocm = [\"FALLBACK_CPU\"]\n");
        assert!(
            e.contains("f.toml:4: ladders.rocm: 'rocm' and 'cuda' (line 2)"),
            "{e}"
        );
        // Distinct classes are still fine, in any case.
        let r = RuleSet::from_toml(
            "[ladders]\ngpu = [\"FALLBACK_CPU\"]\nCpu = [\"ESCALATION\"]\n",
            "f.toml",
            Some(RuleSet::defaults()),
        )
        .unwrap();
        assert_eq!(
            strategies(r.class_ladder(HardwareClass::Gpu)),
            [S::FallbackCpu]
        );
        assert_eq!(
            strategies(r.class_ladder(HardwareClass::Cpu)),
            [S::Escalation]
        );
    }

    #[test]
    fn render_lists_every_rule_and_class() {
        let t = RuleSet::defaults().render_table();
        for c in HardwareClass::ALL {
            assert!(t.contains(c.as_str()));
        }
        assert!(t.contains("xid-reset-or-reboot"));
        assert!(t.contains("REDUCED_BATCH_SIZE → 2. REDUCED_PRECISION"));
    }

    #[test]
    fn autotraits() {
        fn ok<T: Send + Sync>() {}
        ok::<RuleSet>();
    }
}
