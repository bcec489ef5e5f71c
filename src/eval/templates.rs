//! Template-mining evaluation on Loghub-style ground truth (`faultline eval templates`).
//!
//! Input: CSV files with a header row and the columns `Content` (the message) and
//! `EventTemplate` (its ground-truth template), such as Loghub-2.0's
//! `*_structured_corrected.csv`. Each file is mined on its own by a fresh miner with the same
//! configuration, in the two-pass form of [`mine`] (learn from every message, refine, give
//! each message its final template), and scored with:
//!
//! - **grouping accuracy** (GA, Loghub's definition): a message is correct iff the set of
//!   messages that share its predicted template is exactly the set that shares its true
//!   template;
//! - **parsing accuracy** (PA): the predicted template text equals the true one, per message,
//!   after both are normalized (runs of whitespace to one space, runs of `<*>` separated only
//!   by whitespace to one `<*>`);
//! - **template-level F1** (Loghub-2.0's FGA): a predicted group is correct iff it has exactly
//!   the messages of one true group; precision over predicted groups, recall over true ones.
//!
//! A file with a `Label` column (BGL's, where `-` marks a normal line and anything else an
//! alert category) also reports how many alert lines share a predicted template with a normal
//! line — fewer is better: a template that mixes them cannot tell an alert from routine
//! chatter — and the same count under the true templates for reference.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::template::{mine, TemplateConfig, TemplateId, TemplateParams, WILDCARD};

/// Errors of this module; every one names the file.
#[derive(Debug, thiserror::Error)]
pub enum TemplateEvalError {
    /// The file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CSV is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// Line (1-based) where the problem is.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A needed column is missing.
    #[error("{}:1: no column '{column}' (columns: {})", path.display(), available.join(", "))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: &'static str,
        /// The header.
        available: Vec<String>,
    },
    /// A file with a header and no rows (a truncated file would otherwise score 0 and pull
    /// the mean down unnoticed).
    #[error("{}: no rows to evaluate, only a header", path.display())]
    NoRows {
        /// The file.
        path: PathBuf,
    },
    /// Nothing to evaluate.
    #[error("no *_structured_corrected.csv file found in {}", path.display())]
    NoFiles {
        /// The directory searched.
        path: PathBuf,
    },
}

/// A parsed CSV file: header and rows (each with the line it starts on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csv {
    /// Column names.
    pub header: Vec<String>,
    /// Rows `(line, fields)`; every row has as many fields as the header (padded).
    pub rows: Vec<(usize, Vec<String>)>,
}

impl Csv {
    /// Reads and parses a CSV file (RFC 4180: comma-separated, `"`-quoted fields with `""`
    /// escapes that may span lines; `\n` or `\r\n` line ends; blank lines skipped).
    pub fn read(path: &Path) -> Result<Csv, TemplateEvalError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateEvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Csv::parse(&text).map_err(|(line, message)| TemplateEvalError::Csv {
            path: path.to_path_buf(),
            line,
            message,
        })
    }

    /// Parses CSV text; errors are `(line, message)`.
    pub fn parse(text: &str) -> Result<Csv, (usize, String)> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut records: Vec<(usize, Vec<String>)> = Vec::new();
        let mut fields: Vec<String> = Vec::new();
        let mut field = String::new();
        let mut line = 1usize;
        let mut record_line = 1usize;
        let mut chars = text.chars().peekable();
        let mut at_start = true;
        let mut quoted_done = false;
        let mut blank = true;
        while let Some(c) = chars.next() {
            match c {
                '"' if at_start => {
                    let start = line;
                    loop {
                        match chars.next() {
                            None => return Err((start, "unterminated quoted field".into())),
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(ch) => {
                                if ch == '\n' {
                                    line += 1;
                                }
                                field.push(ch);
                            }
                        }
                    }
                    at_start = false;
                    quoted_done = true;
                    blank = false;
                }
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    at_start = true;
                    quoted_done = false;
                    blank = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    if !blank {
                        fields.push(std::mem::take(&mut field));
                        records.push((record_line, std::mem::take(&mut fields)));
                    }
                    line += 1;
                    record_line = line;
                    at_start = true;
                    quoted_done = false;
                    blank = true;
                }
                _ => {
                    if quoted_done {
                        return Err((line, "unexpected text after closing quote".into()));
                    }
                    field.push(c);
                    at_start = false;
                    blank = false;
                }
            }
        }
        if !blank {
            fields.push(field);
            records.push((record_line, fields));
        }
        let mut it = records.into_iter();
        let Some((_, header)) = it.next() else {
            return Err((1, "empty file (expected a header row)".into()));
        };
        let mut rows = Vec::new();
        for (l, f) in it {
            // Too few is refused as too many is (an audit: a short row was scored against an
            // empty true template, and a BGL row without its label counted as an alert).
            if f.len() != header.len() {
                return Err((
                    l,
                    format!("{} fields, but the header has {}", f.len(), header.len()),
                ));
            }
            rows.push((l, f));
        }
        Ok(Csv { header, rows })
    }

    /// Index of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h.trim() == name)
    }
}

/// Normalizes a template for comparison: one space between tokens, and runs of `<*>`
/// separated only by whitespace collapsed into one.
pub fn normalize_template(t: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for tok in t.split_whitespace() {
        if tok == WILDCARD && out.last() == Some(&WILDCARD) {
            continue;
        }
        out.push(tok);
    }
    out.join(" ")
}

/// Scores of one predicted grouping against the truth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// Grouping accuracy.
    pub grouping_accuracy: f64,
    /// Parsing accuracy.
    pub parsing_accuracy: f64,
    /// Correct groups / predicted groups.
    pub template_precision: f64,
    /// Correct groups / true groups.
    pub template_recall: f64,
    /// Harmonic mean of the two.
    pub template_f1: f64,
    /// Distinct true templates.
    pub truth_templates: usize,
    /// Distinct predicted templates.
    pub predicted_templates: usize,
}

/// Scores predicted template ids and texts (one per message) against the true templates.
///
/// ```
/// use faultline::eval::templates::score;
/// use faultline::template::TemplateId;
///
/// let truth = ["a <*>", "a <*>", "b"];
/// let ids = [TemplateId(1), TemplateId(1), TemplateId(2)];
/// let texts = ["a <*>".to_string(), "a <*>".to_string(), "b".to_string()];
/// let s = score(&truth, &ids, &texts);
/// assert_eq!(s.grouping_accuracy, 1.0);
/// assert_eq!(s.template_f1, 1.0);
/// ```
pub fn score(truth: &[&str], predicted: &[TemplateId], predicted_text: &[String]) -> Scores {
    let n = truth.len();
    let mut truth_groups: HashMap<&str, usize> = HashMap::new();
    for t in truth {
        *truth_groups.entry(t).or_default() += 1;
    }
    let mut pred_groups: HashMap<TemplateId, Vec<usize>> = HashMap::new();
    for (i, p) in predicted.iter().enumerate() {
        pred_groups.entry(*p).or_default().push(i);
    }
    let mut correct_msgs = 0usize;
    let mut correct_groups = 0usize;
    for members in pred_groups.values() {
        // Invariant: a group exists only with at least one member.
        let t = truth[members[0]];
        if members.iter().all(|&i| truth[i] == t) && truth_groups[t] == members.len() {
            correct_msgs += members.len();
            correct_groups += 1;
        }
    }
    let mut normalized: HashMap<&str, String> = HashMap::new();
    let mut parsed = 0usize;
    for (t, p) in truth.iter().zip(predicted_text) {
        let t = normalized.entry(t).or_insert_with(|| normalize_template(t));
        if *t == normalize_template(p) {
            parsed += 1;
        }
    }
    let p = ratio(correct_groups, pred_groups.len());
    let r = ratio(correct_groups, truth_groups.len());
    Scores {
        grouping_accuracy: ratio(correct_msgs, n),
        parsing_accuracy: ratio(parsed, n),
        template_precision: p,
        template_recall: r,
        template_f1: if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        },
        truth_templates: truth_groups.len(),
        predicted_templates: pred_groups.len(),
    }
}

/// Scores of one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemScore {
    /// System name (the file name up to its first `_`).
    pub system: String,
    /// The file.
    pub path: PathBuf,
    /// Messages scored.
    pub messages: usize,
    /// The scores.
    #[serde(flatten)]
    pub scores: Scores,
    /// Alert lines sharing templates with normal lines (files with a `Label` column).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertSharing>,
}

/// How alert lines (`Label` ≠ `-`) share templates with normal lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertSharing {
    /// The labelled file.
    pub path: PathBuf,
    /// Alert lines in the file.
    pub alert_lines: usize,
    /// Alert lines whose predicted template also holds a normal line.
    pub shared_alert_lines: usize,
    /// Predicted templates holding both alert and normal lines.
    pub mixed_templates: usize,
    /// Alert lines sharing a true template with a normal line, for reference.
    pub truth_shared_alert_lines: usize,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateEvalReport {
    /// The one configuration every file was mined with.
    pub config: TemplateConfig,
    /// Per file, in the order given (directories sorted).
    pub systems: Vec<SystemScore>,
    /// Mean grouping accuracy over the files.
    pub mean_grouping_accuracy: f64,
    /// Mean parsing accuracy.
    pub mean_parsing_accuracy: f64,
    /// Mean template-level F1.
    pub mean_template_f1: f64,
    /// Alert analyses: of scored files with a `Label` column, and of labelled files given for
    /// that alone.
    pub alerts: Vec<AlertSharing>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The columns of a file needed for scoring, and its labels when it has them.
struct Labelled {
    messages: Vec<String>,
    truth: Vec<String>,
    alert: Option<Vec<bool>>,
}

fn read_labelled(path: &Path) -> Result<Labelled, TemplateEvalError> {
    let mut csv = Csv::read(path)?;
    let column = |name: &'static str| {
        csv.column(name)
            .ok_or_else(|| TemplateEvalError::MissingColumn {
                path: path.to_path_buf(),
                column: name,
                available: csv.header.clone(),
            })
    };
    let content = column("Content")?;
    let template = column("EventTemplate")?;
    if csv.rows.is_empty() {
        return Err(TemplateEvalError::NoRows {
            path: path.to_path_buf(),
        });
    }
    let label = csv.column("Label");
    let alert = label.map(|l| csv.rows.iter().map(|(_, f)| f[l].trim() != "-").collect());
    let mut messages = Vec::with_capacity(csv.rows.len());
    let mut truth = Vec::with_capacity(csv.rows.len());
    for (_, f) in &mut csv.rows {
        messages.push(std::mem::take(&mut f[content]));
        truth.push(std::mem::take(&mut f[template]));
    }
    Ok(Labelled {
        messages,
        truth,
        alert,
    })
}

/// The system name of a Loghub file: its name up to the first `_`.
fn system_name(path: &Path) -> String {
    path.file_name()
        .map(|f| {
            f.to_string_lossy()
                .split('_')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default()
}

/// Mines and scores one file.
pub fn evaluate_file(
    path: &Path,
    params: &TemplateParams,
) -> Result<SystemScore, TemplateEvalError> {
    let data = read_labelled(path)?;
    let (miner, ids) = mine(params.clone(), &data.messages);
    let texts: Vec<String> = ids
        .iter()
        .map(|&id| miner.get(id).map(|t| t.text()).unwrap_or_default())
        .collect();
    let truth: Vec<&str> = data.truth.iter().map(String::as_str).collect();
    let scores = score(&truth, &ids, &texts);
    let alerts = data
        .alert
        .as_ref()
        .map(|a| alert_sharing(path, a, &ids, &truth));
    Ok(SystemScore {
        system: system_name(path),
        path: path.to_path_buf(),
        messages: data.messages.len(),
        scores,
        alerts,
    })
}

/// Mines a labelled file and counts alert lines that share a template with normal lines.
pub fn evaluate_alerts(
    path: &Path,
    params: &TemplateParams,
) -> Result<AlertSharing, TemplateEvalError> {
    let data = read_labelled(path)?;
    let Some(alert) = &data.alert else {
        return Err(TemplateEvalError::MissingColumn {
            path: path.to_path_buf(),
            column: "Label",
            available: vec!["(no Label column)".into()],
        });
    };
    let (_, ids) = mine(params.clone(), &data.messages);
    let truth: Vec<&str> = data.truth.iter().map(String::as_str).collect();
    Ok(alert_sharing(path, alert, &ids, &truth))
}

fn alert_sharing(path: &Path, alert: &[bool], ids: &[TemplateId], truth: &[&str]) -> AlertSharing {
    let (shared, mixed) = mixed_groups(alert, ids);
    let (truth_shared, _) = mixed_groups(alert, truth);
    AlertSharing {
        path: path.to_path_buf(),
        alert_lines: alert.iter().filter(|&&a| a).count(),
        shared_alert_lines: shared,
        mixed_templates: mixed,
        truth_shared_alert_lines: truth_shared,
    }
}

/// Alert lines in groups that also hold a normal line, and the number of such groups.
fn mixed_groups<K: std::hash::Hash + Eq + Copy>(alert: &[bool], group: &[K]) -> (usize, usize) {
    let mut g: HashMap<K, (usize, usize)> = HashMap::new();
    for (a, k) in alert.iter().zip(group) {
        let e = g.entry(*k).or_default();
        if *a {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    g.values()
        .filter(|(a, n)| *a > 0 && *n > 0)
        .fold((0, 0), |(lines, groups), (a, _)| (lines + a, groups + 1))
}

/// The inputs of an evaluation, expanded: files given are scored; a directory contributes
/// every `*_structured_corrected.csv` below it (scored) and every
/// `*_structured_with_labels.csv` (alert analysis only, unless its system's scored file has
/// labels itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Files to mine and score.
    pub scored: Vec<PathBuf>,
    /// Labelled files for the alert analysis alone.
    pub alerts: Vec<PathBuf>,
}

/// Expands files and directories (see [`Inputs`]).
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Inputs, TemplateEvalError> {
    let mut out = Inputs::default();
    for p in inputs {
        if !p.is_dir() {
            out.scored.push(p.clone());
            continue;
        }
        let mut found = Vec::new();
        walk(p, &mut found)?;
        found.sort();
        let before = out.scored.len();
        for f in found {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.ends_with("_structured_corrected.csv") {
                out.scored.push(f);
            } else if name.ends_with("_structured_with_labels.csv") {
                out.alerts.push(f);
            }
        }
        if out.scored.len() == before {
            return Err(TemplateEvalError::NoFiles { path: p.clone() });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), TemplateEvalError> {
    let io = |source| TemplateEvalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for e in std::fs::read_dir(dir).map_err(io)? {
        let p = e.map_err(io)?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Evaluates files and directories (see [`expand_inputs`]) with one configuration.
pub fn evaluate(
    inputs: &[PathBuf],
    params: &TemplateParams,
) -> Result<TemplateEvalReport, TemplateEvalError> {
    let inputs = expand_inputs(inputs)?;
    let systems = inputs
        .scored
        .iter()
        .map(|p| evaluate_file(p, params))
        .collect::<Result<Vec<_>, _>>()?;
    let mut alerts: Vec<AlertSharing> = systems.iter().filter_map(|s| s.alerts.clone()).collect();
    for p in &inputs.alerts {
        let system = system_name(p);
        let covered = systems
            .iter()
            .any(|s| s.alerts.is_some() && s.system == system);
        if !covered {
            alerts.push(evaluate_alerts(p, params)?);
        }
    }
    let mean = |f: fn(&Scores) -> f64| {
        if systems.is_empty() {
            0.0
        } else {
            systems.iter().map(|s| f(&s.scores)).sum::<f64>() / systems.len() as f64
        }
    };
    Ok(TemplateEvalReport {
        config: params.config().clone(),
        mean_grouping_accuracy: mean(|s| s.grouping_accuracy),
        mean_parsing_accuracy: mean(|s| s.parsing_accuracy),
        mean_template_f1: mean(|s| s.template_f1),
        systems,
        alerts,
    })
}

impl TemplateEvalReport {
    /// The report as a text table.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<12} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "system", "lines", "truth", "found", "GA", "PA", "tpl-P", "tpl-R", "tpl-F1"
        );
        for r in &self.systems {
            let c = &r.scores;
            let _ = writeln!(
                s,
                "{:<12} {:>6} {:>6} {:>6} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4}",
                r.system,
                r.messages,
                c.truth_templates,
                c.predicted_templates,
                c.grouping_accuracy,
                c.parsing_accuracy,
                c.template_precision,
                c.template_recall,
                c.template_f1
            );
        }
        let _ = writeln!(
            s,
            "{:<12} {:>6} {:>6} {:>6} {:>7.4} {:>7.4} {:>7} {:>7} {:>7.4}",
            "mean",
            "",
            "",
            "",
            self.mean_grouping_accuracy,
            self.mean_parsing_accuracy,
            "",
            "",
            self.mean_template_f1
        );
        for a in &self.alerts {
            let _ = writeln!(
                s,
                "alerts in {}: {} of {} alert lines share a template with a normal line ({} mixed templates; under the true templates: {})",
                a.path.display(),
                a.shared_alert_lines,
                a.alert_lines,
                a.mixed_templates,
                a.truth_shared_alert_lines
            );
        }
        s
    }
}
