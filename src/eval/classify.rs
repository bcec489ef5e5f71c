//! Classification evaluation: run the classifier over labelled messages and score it.
//!
//! Input is a TSV file (see [`super::tsv`]) with columns `message` and `label` (a
//! [`FailureKind`] name), optionally `id`, `alt_label` (a second defensible kind) and `hw_class`
//! (the worker's hardware class; `browser` means a browser worker and is passed as
//! [`HardwareClass::Webgpu`]), or a JSON-lines file of objects with the same fields
//! ([`load_labelled_jsonl`]). The report has per-kind support, precision, recall and F1, the
//! confusion matrix, accuracy, macro-F1 over every kind that appears in the truth or the
//! predictions, a lenient accuracy that also accepts `alt_label`, and the misclassified rows.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::tsv::{Table, TsvError};
use crate::classify::{Classifier, ClassifyInput};
use crate::model::{FailureKind, HardwareClass};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The TSV file could not be read or lacks a column.
    #[error(transparent)]
    Tsv(#[from] TsvError),
    /// A label is not a failure kind name.
    #[error("{}:{line}: column '{column}': {source}", path.display())]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Line of the row (1-based).
        line: usize,
        /// `label` or `alt_label`.
        column: &'static str,
        /// Why the name did not parse.
        #[source]
        source: crate::model::ParseEnumError,
    },
    /// The file has a header but no row to score.
    #[error("{}: no labelled rows to evaluate (only a header, or nothing)", path.display())]
    NoRows {
        /// The file.
        path: PathBuf,
    },
    /// A JSON-lines file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of a JSON-lines file is not a labelled message.
    #[error("{}:{line}: {reason}", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// Line (1-based).
        line: usize,
        /// What is wrong, naming the field.
        reason: String,
    },
}

/// One line of a labelled JSON-lines file. Other fields are ignored, as the TSV's other
/// columns are (the dev set's `source` and `note`).
#[derive(Debug, serde::Deserialize)]
struct LabelledLine {
    message: String,
    label: String,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    alt_label: Option<String>,
    #[serde(default)]
    hw_class: Option<String>,
}

/// Reads a labelled JSON-lines file: one object per line with `message` and `label` (a
/// failure kind name), optionally `id` (a string or a number; the line number without it),
/// `alt_label` and `hw_class`, as the TSV's columns; other fields are ignored. Blank lines
/// are skipped; a line that is not such an object is an error naming the line and the field.
pub fn load_labelled_jsonl(path: impl AsRef<Path>) -> Result<Vec<LabelledMessage>, EvalError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| EvalError::BadLine {
            path: path.to_path_buf(),
            line,
            reason,
        };
        // Without serde's "at line 1" (an audit: "e.jsonl:2: ... at line 1 column 15"), and
        // naming the field (an audit: `"message": 5` and `"label": 5` read the same).
        let l: LabelledLine = serde_json::from_str(raw).map_err(|e| {
            bad(
                crate::ingest::jsonl::explain_as::<LabelledLine>(raw.as_bytes())
                    .unwrap_or_else(|| crate::ingest::jsonl::reason(&e)),
            )
        })?;
        let kind = |field: &str, v: &str| {
            v.trim()
                .parse::<FailureKind>()
                .map_err(|e| bad(format!("field {field}: {e}")))
        };
        let label = kind("label", &l.label)?;
        let alt_label = match l.alt_label.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(s) => Some(kind("alt_label", s)?),
            None => None,
        };
        let id = match l.id {
            None | Some(serde_json::Value::Null) => line.to_string(),
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(other) => return Err(bad(format!("field id: a string or a number, not {other}"))),
        };
        let hw = l
            .hw_class
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty());
        out.push(LabelledMessage {
            id,
            line,
            message: l.message,
            label,
            alt_label,
            hardware: hw.and_then(hardware_hint),
            unread_hardware: hw.filter(|v| hardware_hint(v).is_none()).map(String::from),
        });
    }
    Ok(out)
}

/// One labelled message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelledMessage {
    /// The row's `id` (the line number when there is no `id` column).
    pub id: String,
    /// Line of the row in its file.
    pub line: usize,
    /// The message.
    pub message: String,
    /// The true kind.
    pub label: FailureKind,
    /// A second defensible kind.
    pub alt_label: Option<FailureKind>,
    /// The worker's hardware class, when given.
    pub hardware: Option<HardwareClass>,
    /// A `hw_class` value that names no hardware class (the row is classified without the
    /// hint, and the report warns about it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_hardware: Option<String>,
}

/// Parses a `hw_class` value: `browser` is a WebGPU browser worker; unknown values are `None`.
pub fn hardware_hint(value: &str) -> Option<HardwareClass> {
    let v = value.trim();
    if v.is_empty() {
        None
    } else if v.eq_ignore_ascii_case("browser") {
        Some(HardwareClass::Webgpu)
    } else {
        v.parse().ok()
    }
}

/// Reads a labelled TSV file.
pub fn load_labelled(path: impl AsRef<Path>) -> Result<Vec<LabelledMessage>, EvalError> {
    let tsv = Table::read(path)?;
    labelled_from_table(&tsv)
}

/// Extracts the labelled messages of a parsed TSV file.
pub fn labelled_from_table(tsv: &Table) -> Result<Vec<LabelledMessage>, EvalError> {
    let msg = tsv.column_index("message")?;
    let label = tsv.column_index("label")?;
    let id = tsv.find_column("id");
    let alt = tsv.find_column("alt_label");
    let hw = tsv.find_column("hw_class");
    let bad = |line, column, source| EvalError::BadLabel {
        path: tsv.path().to_path_buf(),
        line,
        column,
        source,
    };
    let mut out = Vec::with_capacity(tsv.rows().len());
    for row in tsv.rows() {
        let f = &row.fields;
        let label_v: FailureKind = f[label]
            .trim()
            .parse()
            .map_err(|e| bad(row.line, "label", e))?;
        let alt_v = match alt.map(|i| f[i].trim()).filter(|s| !s.is_empty()) {
            Some(s) => Some(s.parse().map_err(|e| bad(row.line, "alt_label", e))?),
            None => None,
        };
        out.push(LabelledMessage {
            id: id
                .map(|i| f[i].clone())
                .unwrap_or_else(|| row.line.to_string()),
            line: row.line,
            message: f[msg].clone(),
            label: label_v,
            alt_label: alt_v,
            hardware: hw.and_then(|i| hardware_hint(&f[i])),
            unread_hardware: hw
                .map(|i| f[i].trim())
                .filter(|v| !v.is_empty() && hardware_hint(v).is_none())
                .map(String::from),
        });
    }
    Ok(out)
}

/// Scores of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindScore {
    /// The kind.
    pub kind: FailureKind,
    /// Rows labelled with it.
    pub support: usize,
    /// Rows predicted as it.
    pub predicted: usize,
    /// Rows labelled and predicted as it.
    pub correct: usize,
    /// correct / predicted (0 when nothing was predicted).
    pub precision: f64,
    /// correct / support (0 when there is no support).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
}

/// Counts of (true label, prediction) pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfusionMatrix {
    /// Kinds in row and column order (every kind in the truth or the predictions).
    pub kinds: Vec<FailureKind>,
    /// `counts[i][j]` = rows labelled `kinds[i]` and predicted `kinds[j]`.
    pub counts: Vec<Vec<usize>>,
}

/// A row the classifier got wrong (strictly).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Misclassified {
    /// The row's id.
    pub id: String,
    /// The message.
    pub message: String,
    /// The true kind.
    pub label: FailureKind,
    /// The second defensible kind, if any.
    pub alt_label: Option<FailureKind>,
    /// What the classifier said.
    pub predicted: FailureKind,
    /// The rule that decided.
    pub rule: &'static str,
    /// The matched text.
    pub evidence: String,
    /// Whether the prediction is the alternative label.
    pub lenient_ok: bool,
}

/// The evaluation report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassificationReport {
    /// Number of rows.
    pub total: usize,
    /// Rows predicted as their label.
    pub correct: usize,
    /// correct / total.
    pub accuracy: f64,
    /// Rows predicted as their label or their alternative label.
    pub lenient_correct: usize,
    /// lenient_correct / total.
    pub lenient_accuracy: f64,
    /// Mean F1 over the kinds in the truth or the predictions (strict labels).
    pub macro_f1: f64,
    /// Per-kind scores, in [`FailureKind::ALL`] order.
    pub per_kind: Vec<KindScore>,
    /// Confusion matrix (labels × predictions).
    pub confusion: ConfusionMatrix,
    /// The strictly misclassified rows, in input order.
    pub misclassified: Vec<Misclassified>,
    /// Rows read in part: a `hw_class` that names no hardware class, classified without the
    /// hint (an audit found such rows scored silently).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Classifies every row and scores the predictions.
pub fn evaluate(classifier: &Classifier, rows: &[LabelledMessage]) -> ClassificationReport {
    let predictions: Vec<_> = rows
        .iter()
        .map(|r| {
            classifier.classify(&ClassifyInput {
                message: &r.message,
                hardware: r.hardware,
                ..Default::default()
            })
        })
        .collect();

    let kinds: Vec<FailureKind> = {
        let present: BTreeSet<FailureKind> = rows
            .iter()
            .map(|r| r.label)
            .chain(predictions.iter().map(|p| p.kind))
            .collect();
        present.into_iter().collect()
    };
    let pos = |k: FailureKind| kinds.iter().position(|&x| x == k).expect("kind present");
    let mut counts = vec![vec![0usize; kinds.len()]; kinds.len()];
    let mut correct = 0;
    let mut lenient_correct = 0;
    let mut misclassified = Vec::new();
    for (r, p) in rows.iter().zip(&predictions) {
        counts[pos(r.label)][pos(p.kind)] += 1;
        let lenient_ok = r.alt_label == Some(p.kind);
        if p.kind == r.label {
            correct += 1;
            lenient_correct += 1;
        } else {
            if lenient_ok {
                lenient_correct += 1;
            }
            misclassified.push(Misclassified {
                id: r.id.clone(),
                message: r.message.clone(),
                label: r.label,
                alt_label: r.alt_label,
                predicted: p.kind,
                rule: p.rule,
                evidence: p.evidence.clone(),
                lenient_ok,
            });
        }
    }

    let per_kind: Vec<KindScore> = kinds
        .iter()
        .enumerate()
        .map(|(i, &kind)| {
            let support: usize = counts[i].iter().sum();
            let predicted: usize = counts.iter().map(|row| row[i]).sum();
            let hit = counts[i][i];
            let precision = ratio(hit, predicted);
            let recall = ratio(hit, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            KindScore {
                kind,
                support,
                predicted,
                correct: hit,
                precision,
                recall,
                f1,
            }
        })
        .collect();
    let macro_f1 = if per_kind.is_empty() {
        0.0
    } else {
        per_kind.iter().map(|k| k.f1).sum::<f64>() / per_kind.len() as f64
    };

    ClassificationReport {
        total: rows.len(),
        correct,
        accuracy: ratio(correct, rows.len()),
        lenient_correct,
        lenient_accuracy: ratio(lenient_correct, rows.len()),
        macro_f1,
        per_kind,
        confusion: ConfusionMatrix { kinds, counts },
        misclassified,
        warnings: rows
            .iter()
            .filter_map(|r| {
                r.unread_hardware.as_ref().map(|v| {
                    format!(
                        "line {}: hw_class '{v}' names no hardware class: classified without the hint",
                        r.line
                    )
                })
            })
            .collect(),
    }
}

/// Loads a labelled TSV file and evaluates the built-in classifier on it.
pub fn evaluate_file(path: impl AsRef<Path>) -> Result<ClassificationReport, EvalError> {
    evaluate_file_with(&Classifier::new(), path)
}

/// Loads a labelled JSON-lines file ([`load_labelled_jsonl`]) and evaluates the built-in
/// classifier on it.
pub fn evaluate_jsonl(path: impl AsRef<Path>) -> Result<ClassificationReport, EvalError> {
    let rows = load_labelled_jsonl(&path)?;
    if rows.is_empty() {
        return Err(EvalError::NoRows {
            path: path.as_ref().to_path_buf(),
        });
    }
    Ok(evaluate(&Classifier::new(), &rows))
}

/// Loads a labelled TSV file and evaluates `classifier` on it.
pub fn evaluate_file_with(
    classifier: &Classifier,
    path: impl AsRef<Path>,
) -> Result<ClassificationReport, EvalError> {
    let tsv = Table::read(&path)?;
    let rows = labelled_from_table(&tsv)?;
    if rows.is_empty() {
        return Err(EvalError::NoRows {
            path: path.as_ref().to_path_buf(),
        });
    }
    let mut report = evaluate(classifier, &rows);
    report.warnings.extend(tsv.literal_quotes_note());
    Ok(report)
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Cuts `s` to at most `n` characters (on one line), marking the cut with `…`.
fn shorten(s: &str, n: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= n {
        flat
    } else {
        let mut t: String = flat.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

impl ClassificationReport {
    /// A readable, aligned text rendering: summary line, per-kind table and confusion matrix,
    /// followed by the misclassified rows when `misclassified` is true.
    pub fn render_text(&self, misclassified: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "rows {}   accuracy {:.3} ({}/{})   lenient accuracy {:.3} ({}/{})   macro-F1 {:.3}",
            self.total,
            self.accuracy,
            self.correct,
            self.total,
            self.lenient_accuracy,
            self.lenient_correct,
            self.total,
            self.macro_f1
        );
        out.push('\n');

        let w = self
            .per_kind
            .iter()
            .map(|k| k.kind.as_str().len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "{:<w$}  {:>7}  {:>9}  {:>9}  {:>6}  {:>6}",
            "kind", "support", "predicted", "precision", "recall", "f1"
        );
        for k in &self.per_kind {
            let _ = writeln!(
                out,
                "{:<w$}  {:>7}  {:>9}  {:>9.3}  {:>6.3}  {:>6.3}",
                k.kind.as_str(),
                k.support,
                k.predicted,
                k.precision,
                k.recall,
                k.f1
            );
        }
        out.push('\n');

        let _ = writeln!(
            out,
            "confusion (rows: label, columns: predicted, numbered as the rows)"
        );
        let n = self.confusion.kinds.len();
        let max_count = self
            .confusion
            .counts
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0);
        let cw = max_count.to_string().len().max(n.to_string().len()) + 1;
        let nw = n.to_string().len();
        let _ = write!(out, "{:nw$} {:<w$}", "", "");
        for j in 1..=n {
            let _ = write!(out, "{j:>cw$}");
        }
        out.push('\n');
        for (i, k) in self.confusion.kinds.iter().enumerate() {
            let _ = write!(out, "{:>nw$} {:<w$}", i + 1, k.as_str());
            for &c in &self.confusion.counts[i] {
                if c == 0 {
                    let _ = write!(out, "{:>cw$}", ".");
                } else {
                    let _ = write!(out, "{c:>cw$}");
                }
            }
            out.push('\n');
        }

        if misclassified && !self.misclassified.is_empty() {
            out.push('\n');
            let _ = writeln!(out, "misclassified ({}):", self.misclassified.len());
            let idw = self
                .misclassified
                .iter()
                .map(|m| m.id.len())
                .max()
                .unwrap_or(2)
                .max(2);
            for m in &self.misclassified {
                let alt = if m.lenient_ok { " (= alt)" } else { "" };
                let _ = writeln!(
                    out,
                    "  {:<idw$}  {} -> {}{}  [{}]  {}",
                    m.id,
                    m.label.as_str(),
                    m.predicted.as_str(),
                    alt,
                    m.rule,
                    shorten(&m.message, 110)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lm(
        id: &str,
        message: &str,
        label: FailureKind,
        alt: Option<FailureKind>,
    ) -> LabelledMessage {
        LabelledMessage {
            id: id.into(),
            line: 0,
            message: message.into(),
            label,
            alt_label: alt,
            hardware: None,
            unread_hardware: None,
        }
    }

    #[test]
    fn scores_a_small_set_exactly() {
        use FailureKind as K;
        let rows = vec![
            lm(
                "1",
                "CUDA out of memory. Tried to allocate 2.00 GiB",
                K::OomGpu,
                None,
            ),
            lm("2", "Connection reset by peer", K::Network, None),
            lm("3", "operation timed out", K::Network, Some(K::Timeout)),
            lm("4", "some random error", K::Unknown, None),
        ];
        let r = evaluate(&Classifier::new(), &rows);
        assert_eq!(r.total, 4);
        assert_eq!(r.correct, 3);
        assert_eq!(r.lenient_correct, 4);
        assert!((r.accuracy - 0.75).abs() < 1e-12);
        // kinds: oom_gpu (f1 1), timeout (0), network (p 1, r .5 → 2/3), unknown (1)
        let expected = (1.0 + 0.0 + 2.0 / 3.0 + 1.0) / 4.0;
        assert!((r.macro_f1 - expected).abs() < 1e-12, "{}", r.macro_f1);
        let net = r.per_kind.iter().find(|k| k.kind == K::Network).unwrap();
        assert_eq!((net.support, net.predicted, net.correct), (2, 1, 1));
        assert_eq!(r.misclassified.len(), 1);
        assert_eq!(r.misclassified[0].predicted, K::Timeout);
        assert!(r.misclassified[0].lenient_ok);
        let n: usize = r.confusion.counts.iter().flatten().sum();
        assert_eq!(n, 4);
        let text = r.render_text(true);
        assert!(!r.render_text(false).contains("misclassified"));
        assert!(text.contains("macro-F1 0.667"), "{text}");
        assert!(text.contains("network"));
        assert!(text.contains("misclassified (1):"));
        serde_json::to_string(&r).unwrap();
    }

    #[test]
    fn loads_labels_with_clear_errors() {
        let tsv = Table::parse(
            "id\tmessage\tlabel\talt_label\thw_class\n7\tKilled\toom_host\t\tCPU\n8\tx\tunknown\ttimeout\tbrowser\n",
            "l.tsv",
        )
        .unwrap();
        let rows = labelled_from_table(&tsv).unwrap();
        assert_eq!(rows[0].id, "7");
        assert_eq!(rows[0].hardware, Some(HardwareClass::Cpu));
        assert_eq!(rows[1].alt_label, Some(FailureKind::Timeout));
        assert_eq!(rows[1].hardware, Some(HardwareClass::Webgpu));
        assert!(rows.iter().all(|r| r.unread_hardware.is_none()));

        let tsv = Table::parse("message\tlabel\nx\tnot_a_kind\n", "b.tsv").unwrap();
        let e = labelled_from_table(&tsv).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("b.tsv:2: column 'label': unknown failure kind 'not_a_kind'"),
            "{e}"
        );
        let tsv = Table::parse("message\nx\n", "c.tsv").unwrap();
        let e = labelled_from_table(&tsv).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.tsv:1: no column 'label' (columns: message)"
        );
        // Regression: a header alone scored "accuracy 0.000 (0/0)" and exit 0.
        let dir = tempfile::tempdir().unwrap();
        let header = dir.path().join("h.tsv");
        std::fs::write(&header, "message\tlabel\n").unwrap();
        let e = evaluate_file(&header).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("h.tsv: no labelled rows to evaluate (only a header, or nothing)"),
            "{e}"
        );
    }

    /// A JSON-lines file reads as the TSV with the same rows does; a bad line is an error
    /// naming the line and the field.
    #[test]
    fn loads_json_lines_as_the_tsv() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = Table::parse(
            "id\tmessage\tlabel\talt_label\thw_class\n7\tKilled\toom_host\t\tCPU\n8\tx\tunknown\ttimeout\tbrowser\n",
            "l.tsv",
        )
        .unwrap();
        let want = labelled_from_table(&tsv).unwrap();
        let path = dir.path().join("l.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"id": 7, "message": "Killed", "label": "oom_host", "hw_class": "CPU"}"#,
                "\n\n",
                r#"{"id": "8", "message": "x", "label": "unknown", "alt_label": "timeout", "hw_class": "browser"}"#,
                "\n",
            ),
        )
        .unwrap();
        let got = load_labelled_jsonl(&path).unwrap();
        // The same rows, but for their line numbers.
        let strip = |r: &[LabelledMessage]| -> Vec<LabelledMessage> {
            r.iter()
                .map(|m| LabelledMessage {
                    line: 0,
                    ..m.clone()
                })
                .collect()
        };
        assert_eq!(strip(&got), strip(&want));
        assert_eq!((got[0].line, got[1].line), (1, 3));
        for (text, want) in [
            (
                r#"{"message": "x", "label": "not_a_kind"}"#,
                ":1: field label: unknown failure kind 'not_a_kind'",
            ),
            (r#"{"label": "oom_gpu"}"#, ":1: missing field `message`"),
            (
                r#"{"message": "x", "lable": "oom_gpu", "note": "ignored"}"#,
                ":1: missing field `label`",
            ),
            (
                r#"{"message": "x", "label": "oom_gpu", "id": [1]}"#,
                ":1: field id: a string or a number, not [1]",
            ),
            ("not json", ":1: invalid JSON: expected ident at column 2"),
            // Regression (audit): the two read alike, naming no field.
            (
                r#"{"message": 5, "label": "oom_gpu"}"#,
                ":1: field message: invalid type: integer `5`, expected a string",
            ),
            (
                r#"{"message": "x", "label": 5}"#,
                ":1: field label: invalid type: integer `5`, expected a string",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = load_labelled_jsonl(&path).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.starts_with(&path.display().to_string()), "{e}");
            // Regression (audit): serde's own "at line 1" contradicted the file's line.
            assert!(!e.contains("at line"), "{e}");
        }
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            evaluate_jsonl(&path),
            Err(EvalError::NoRows { .. })
        ));
        let e = load_labelled_jsonl(dir.path().join("absent.jsonl")).unwrap_err();
        assert!(e.to_string().contains("absent.jsonl"), "{e}");
    }

    /// The real labelled dev set, when the shared data folder is present.
    #[test]
    fn dev_set_reaches_the_bar() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/real/error_messages_dev.tsv");
        if !path.exists() {
            eprintln!("skipping: {} not found", path.display());
            return;
        }
        let r = evaluate_file(&path).unwrap();
        eprintln!("{}", r.render_text(true));
        assert!(
            r.macro_f1 >= 0.85,
            "strict macro-F1 {:.3} < 0.85",
            r.macro_f1
        );
    }
}
