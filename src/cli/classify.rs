//! `faultline classify`: messages → JSON lines with kind, failure type and deciding rule.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use faultline::classify::{Classification, Classifier, ClassifyInput};
use faultline::HardwareClass;
use serde::Serialize;

/// Classify error messages into failure kinds.
///
/// Reads one message per line on stdin (or a column of a TSV file) and prints one JSON line
/// per input line, in order: {"kind", "failure_type", "rule", "evidence", "xid", ...}.
///
/// Example:
///
///   echo "CUDA out of memory. Tried to allocate 2.00 GiB" | faultline classify --hardware GPU
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Read messages from this TSV file (header row) instead of stdin.
    #[arg(long, requires = "column")]
    tsv: Option<PathBuf>,
    /// The TSV column holding the messages.
    #[arg(long, requires = "tsv")]
    column: Option<String>,
    /// The TSV column holding each row's hardware class (values like GPU, CPU, browser).
    #[arg(long, requires = "tsv")]
    hardware_column: Option<String>,
    /// Hardware class of every message (a hint: "out of memory" on CPU is host OOM); `browser`
    /// is a WebGPU browser worker, as in a `--hardware-column` (not with it: each row's
    /// column then gives the class).
    #[arg(long, value_parser = parse_class, conflicts_with = "hardware_column")]
    hardware: Option<HardwareClass>,
}

/// A hardware class as `--hardware` takes it: a class name, or `browser` (a WebGPU browser
/// worker) as the TSV's hardware columns take it.
fn parse_class(s: &str) -> Result<HardwareClass, String> {
    if s.trim().eq_ignore_ascii_case("browser") {
        return Ok(HardwareClass::Webgpu);
    }
    s.parse()
        .map_err(|e: faultline::ParseEnumError| format!("{e} (or browser)"))
}

#[derive(Serialize)]
struct Line<'a> {
    kind: faultline::FailureKind,
    failure_type: faultline::FailureType,
    rule: &'a str,
    evidence: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    xid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sxid: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    notes: &'a [&'static str],
}

fn emit(out: &mut impl Write, c: &Classification) -> anyhow::Result<()> {
    serde_json::to_writer(
        &mut *out,
        &Line {
            kind: c.kind,
            failure_type: c.failure_type,
            rule: c.rule,
            evidence: &c.evidence,
            xid: c.xid,
            sxid: c.sxid,
            notes: &c.notes,
        },
    )?;
    writeln!(out)?;
    Ok(())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let classifier = Classifier::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match (&a.tsv, &a.column) {
        (Some(path), Some(column)) => {
            let table = faultline::eval::tsv::Table::read(path)?;
            if let Some(note) = table.literal_quotes_note() {
                say!("faultline: warning: {}: {note}", path.display());
            }
            let msg = table.column_index(column)?;
            let hw = match &a.hardware_column {
                Some(c) => Some(table.column_index(c)?),
                None => None,
            };
            // Rows too short to hold the message: still one output line each (classified
            // from nothing, `unknown`), counted and named (an audit: classified without a
            // word).
            let mut short: Vec<usize> = Vec::new();
            for row in table.rows() {
                // Padded: the row itself ended before the message column.
                if msg >= row.given {
                    short.push(row.line);
                }
                let value = hw.and_then(|i| row.get(i)).map(|v| v.trim());
                let hint = value.and_then(faultline::eval::classify::hardware_hint);
                if let (Some(v), None) = (value, hint) {
                    if !v.is_empty() {
                        bail!(
                            "{}:{}: column '{}': unknown hardware class '{v}' (expected one of {}, or browser; empty for none)",
                            path.display(),
                            row.line,
                            a.hardware_column.as_deref().unwrap_or_default(),
                            HardwareClass::ALL
                                .iter()
                                .map(|c| c.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                }
                let hardware = hint.or(a.hardware);
                let c = classifier.classify(&ClassifyInput {
                    message: row.get(msg).map(String::as_str).unwrap_or(""),
                    hardware,
                    ..Default::default()
                });
                emit(&mut out, &c)?;
            }
            if let Some(first) = short.first() {
                say!(
                    "faultline: warning: {}: {} row{} without a '{column}' field (the first on line {first}): classified as an empty message, unknown",
                    path.display(),
                    short.len(),
                    if short.len() == 1 { "" } else { "s" },
                );
            }
        }
        _ => {
            // Log lines are not always UTF-8: bytes that are not are replaced (U+FFFD), so
            // every input line still gets its output line.
            let mut input = std::io::BufReader::with_capacity(1 << 16, std::io::stdin().lock());
            let mut buf = Vec::new();
            let mut first = true;
            loop {
                buf.clear();
                if input.read_until(b'\n', &mut buf).context("reading stdin")? == 0 {
                    break;
                }
                let mut line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                line = line.strip_suffix(b"\r").unwrap_or(line);
                if std::mem::take(&mut first) {
                    // An audit: a byte-order mark made the first line `unknown`.
                    line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
                }
                let line = String::from_utf8_lossy(line);
                let c = classifier.classify(&ClassifyInput {
                    message: &line,
                    hardware: a.hardware,
                    ..Default::default()
                });
                emit(&mut out, &c)?;
                // Nothing more read ahead: flush before waiting for input, so `tail -f log |
                // faultline classify` answers each line as it comes (an audit: nothing came
                // out until stdin closed); a file read whole still writes in large blocks.
                if input.buffer().is_empty() {
                    out.flush()?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}
