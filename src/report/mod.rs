//! Tier 5 — the HTML report, the last stage of `faultline analyze`: an [`Analysis`] → one
//! self-contained `report.html` (inline CSS and SVG; no script, no font, no CDN: it works
//! offline and from a mail attachment).
//!
//! Sections, in order: summary cards (failures, tasks, workers, unknown share, templates,
//! clusters, patterns, outcome success, time span); failures by kind and by hardware class;
//! the hardware × kind heatmap; the timeline stacked per kind (a nice bin width for any span,
//! a handful of ticks); strategy success rates with 95 % Wilson intervals and counts; the
//! attempts-to-recovery distribution; clusters as a 2-D PCA scatter with their summaries; the
//! patterns table (bad workers with evidence, bursts, rapid failures, clusters; each kind a
//! coloured pill) by severity; the top templates; and what ingest rejected.
//!
//! Every chart is an `<svg class="chart" data-chart="NAME" data-marks="N">` (N = bars, cells
//! or points drawn); a chart without data is replaced by `<div class="nodata"
//! data-nodata="NAME">No data — why</div>`. Chart names: `by_kind`, `by_hardware`, `heatmap`,
//! `timeline`, `strategies`, `attempts`, `clusters`. Tests and the headless-browser check
//! count these.
//!
//! The keys of `summary.json`, which the report is drawn from, are documented in
//! [`crate::analyze`]: `format_version`, `history`, `input`, `totals`, `by_kind`,
//! `by_hardware`, `heatmap`, `timeline`, `strategies`, `attempts_to_recovery`, `clusters`,
//! `patterns` (a list of items with `kind` and `key`), `templates`, `outputs`.
//!
//! ```
//! use faultline::analyze::{analyze, AnalyzeParams, NoProgress};
//! let dir = tempfile::tempdir().unwrap();
//! let a = analyze(dir.path(), None, &AnalyzeParams::default(), None, &mut NoProgress).unwrap();
//! let html = faultline::report::render(&a);
//! assert!(html.contains("data-nodata=\"timeline\""));
//! ```

pub mod svg;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::analyze::Analysis;

use svg::esc;

/// Errors of the report stage.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#b9c0d0}
main{max-width:1180px;margin:0 auto;padding:18px 24px 40px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:14px 18px;margin:16px 0}
section h2{font-size:16px;margin:0 0 10px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:10px 14px}
.card b{display:block;font-size:22px}.card span{color:#667;font-size:12px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}
.grid2 section{margin:0}
svg .lbl{font-size:12px;fill:#333}svg .val{font-size:11px;fill:#333}svg .tick{font-size:11px;fill:#667}
svg .cell{font-size:10px}svg .grid{stroke:#eceef3}svg .axis{stroke:#99a}svg .ci{stroke:#1d2330;stroke-width:1.6}
.nodata{padding:26px;text-align:center;color:#778;background:#f7f7fa;border:1px dashed #ccd;border-radius:6px}
.legend span{display:inline-block;margin:2px 10px 2px 0;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceef3;vertical-align:top}
th{background:#f7f8fb;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px;background:#f3f4f7;padding:1px 4px;border-radius:3px;word-break:break-all}
td.key code{white-space:nowrap;word-break:normal}td.when{white-space:nowrap;font-size:12px}
.pill{display:inline-block;padding:1px 7px;border-radius:10px;font-size:11px;color:#fff;background:#6b7280}
.pill.bad_worker{background:#d62728}.pill.burst{background:#f28e2b}.pill.surge{background:#e15759}.pill.rapid_failure{background:#4e79a7}.pill.cluster{background:#8e6bb0}
.pill.hardware_class{background:#59a14f}.pill.failure_kind{background:#9c755f}.pill.worker{background:#e15759}.pill.template{background:#3f8f8a}
footer{color:#889;font-size:12px;text-align:center;margin-top:20px}
"#;

fn card(s: &mut String, value: &str, label: &str) {
    let _ = write!(
        s,
        "<div class=\"card\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    );
}

fn human_span(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86_400.0)
    }
}

/// `one` for a count of 1, `many` otherwise (the caveats' words: "record"/"records",
/// "was"/"were").
fn pick<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// What a pattern's "active" span covers (an analyze audit: a burst of 32 failures was shown
/// against a span of three hours holding 205, with nothing to say the two differ).
fn active_note(p: &crate::analyze::PatternItem) -> String {
    let n = p.episodes;
    match p.kind.as_str() {
        "cluster" => "all its members".into(),
        "surge" => format!("{n} bin{}", if n == 1 { "" } else { "s" }),
        _ => format!("held at {n} check{}", if n == 1 { "" } else { "s" }),
    }
}

/// `2026-11-01T00:43:52.616600Z` → `2026-11-01 00:43:52`.
fn short_time(rfc3339: &str) -> String {
    let s = rfc3339.replace('T', " ");
    let s = s.trim_end_matches('Z');
    s.split('.').next().unwrap_or(s).to_string()
}

fn section(s: &mut String, id: &str, title: &str, body: &str) {
    let _ = write!(
        s,
        "<section id=\"{id}\"><h2>{}</h2>{body}</section>",
        esc(title)
    );
}

/// Renders the report as one HTML document.
pub fn render(a: &Analysis) -> String {
    let t = &a.totals;
    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>faultline report — {} failures</title><style>{CSS}</style></head><body>",
        t.failures
    );
    let span = match (&t.first_seen, &t.last_seen) {
        (Some(a), Some(b)) => format!("{a} → {b}"),
        _ if t.failures > 0 => "no failure has a time of its own".to_string(),
        _ => "no failures".to_string(),
    };
    let _ = write!(
        s,
        "<header><h1>faultline — failure analysis</h1><p>{} · {}</p></header><main>",
        esc(&a.history),
        esc(&span)
    );

    // What shapes the charts below and is not in them (an audit: the CLI warned about both,
    // the shared report said nothing).
    let mut caveats = Vec::new();
    if let Some(i) = a.input.as_ref().filter(|i| i.stamped_at_read > 0) {
        caveats.push(format!(
            "{} failure{} had no time of {} own and {} given the time {} {} read: counted, but left out of the timeline, the time span and the patterns.",
            i.stamped_at_read,
            pick(i.stamped_at_read, "", "s"),
            pick(i.stamped_at_read, "its", "their"),
            pick(i.stamped_at_read, "was", "were"),
            pick(i.stamped_at_read, "it", "they"),
            pick(i.stamped_at_read, "was", "were"),
        ));
    }
    // What the input held that the charts do not show (a serve/analyze audit: said on stderr
    // only).
    if let Some(i) = a.input.as_ref().filter(|i| i.feedback > 0) {
        caveats.push(format!(
            "{} failure record{} carried an outcome of {} own (<code>ml_feedback</code>), not imported: the strategies' success rates count only the outcomes of the history's recovery actions.",
            i.feedback,
            pick(i.feedback, "", "s"),
            pick(i.feedback, "its", "their"),
        ));
    }
    if let Some(i) = a.input.as_ref().filter(|i| i.skipped > 0) {
        caveats.push(format!(
            "{} input line{} held no failure record and {} skipped: blank or comment lines, kernel-log lines that are not failure events, and repeats of an event folded into its first line.",
            i.skipped,
            pick(i.skipped, "", "s"),
            pick(i.skipped, "was", "were"),
        ));
    }
    // What was not read at all (an analyze audit: a 3,766-row CSV skipped in an input
    // directory, rejected records and a data directory read again were said on stderr, or
    // at the foot of the page, only).
    if let Some(i) = a.input.as_ref().filter(|i| i.rejected > 0) {
        let first = i
            .first_record_rejection
            .as_deref()
            .or(i.rejections.first().map(String::as_str));
        caveats.push(format!(
            "{} of {} failure record{} {} rejected and {} in nothing below{}; the Input section lists the first.",
            i.rejected,
            i.read,
            pick(i.read, "", "s"),
            pick(i.rejected, "was", "were"),
            pick(i.rejected, "is", "are"),
            first.map_or(String::new(), |r| format!(
                " (the first: <code>{}</code>)",
                esc(r)
            )),
        ));
    }
    if let Some(i) = a.input.as_ref().filter(|i| i.unknown_files > 0) {
        let named: Vec<String> = if i.unreadable.is_empty() {
            i.unknown_file_names.iter().map(|n| esc(n)).collect()
        } else {
            // Those left out for their header first, with why; then the rest by name.
            i.unreadable
                .iter()
                .map(|n| esc(n))
                .chain(
                    i.unknown_file_names
                        .iter()
                        .filter(|n| {
                            let named = format!("{n}: ");
                            !i.unreadable.iter().any(|u| u.starts_with(&named))
                        })
                        .map(|n| esc(n)),
                )
                .take(20)
                .collect()
        };
        let shown = named.len() as u64;
        caveats.push(format!(
            "{} file{} in the input directories {} left out, of no known format or with no column for a required field: {}{}.",
            i.unknown_files,
            pick(i.unknown_files, "", "s"),
            pick(i.unknown_files, "was", "were"),
            named
                .iter()
                .map(|n| format!("<code>{n}</code>"))
                .collect::<Vec<_>>()
                .join(", "),
            if i.unknown_files > shown {
                format!(" and {} more", i.unknown_files - shown)
            } else {
                String::new()
            },
        ));
    }
    if let Some(i) = a.input.as_ref().filter(|i| !i.histories.is_empty()) {
        caveats.push(format!(
            "Read whole as data director{} (a <code>faultline ingest</code> history, or an earlier <code>analyze --out</code>): {}. One an earlier analysis of the same logs wrote holds their failures again, and they are counted twice.",
            pick(i.histories.len() as u64, "y", "ies"),
            i.histories
                .iter()
                .map(|h| format!("<code>{}</code>", esc(h)))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if t.far_apart > 0 {
        caveats.push(format!(
            "{} failure{} dated far from all the others (the first at {}): a wrong year, clock or boot time? Kept: the timeline and the time span reach {}.",
            t.far_apart,
            pick(t.far_apart, " is", "s are"),
            esc(t.far_apart_example.as_deref().unwrap_or("?")),
            pick(t.far_apart, "it", "them"),
        ));
    }
    if !caveats.is_empty() {
        s.push_str("<section id=\"caveats\"><h2>Read first</h2><ul>");
        for c in &caveats {
            let _ = write!(s, "<li>{c}</li>");
        }
        s.push_str("</ul></section>");
    }

    // Cards.
    s.push_str("<div class=\"cards\" id=\"cards\">");
    card(&mut s, &t.failures.to_string(), "failures");
    card(&mut s, &t.tasks.to_string(), "tasks");
    card(&mut s, &t.workers.to_string(), "workers");
    card(&mut s, &t.hardware_classes.to_string(), "hardware classes");
    let unknown = if t.failures > 0 {
        format!("{:.1} %", t.unknown as f64 / t.failures as f64 * 100.0)
    } else {
        "—".into()
    };
    card(&mut s, &unknown, "unrecognised (unknown)");
    card(&mut s, &t.templates.to_string(), "message templates");
    card(&mut s, &t.clusters.to_string(), "clusters");
    // Every pattern found, with how many are listed (an audit: the card said 59 of 1,776).
    if t.patterns_left_out > 0 {
        card(
            &mut s,
            &(t.patterns + t.patterns_left_out).to_string(),
            &format!("patterns ({} listed)", t.patterns),
        );
    } else if t.patterns == 0 && t.failures > 0 && t.first_seen.is_none() {
        // Not looked for: patterns are found over time (an analyze audit: "0 patterns").
        card(&mut s, "—", "patterns (no failure has a time)");
    } else {
        card(&mut s, &t.patterns.to_string(), "patterns");
    }
    let success = if t.outcomes > 0 {
        format!("{:.1} %", t.successes as f64 / t.outcomes as f64 * 100.0)
    } else {
        "—".into()
    };
    card(
        &mut s,
        &success,
        &format!("recoveries succeeded ({} outcomes)", t.outcomes),
    );
    let span_card = if t.first_seen.is_none() {
        "—".to_string()
    } else {
        human_span(t.span_s)
    };
    card(&mut s, &span_card, "time span");
    s.push_str("</div>");

    if t.failures == 0 {
        s.push_str(&svg::no_data(
            "history",
            "the history holds no failures: nothing below can be drawn",
        ));
    } else if t.failures == 1 {
        s.push_str("<section><p>A single failure: distributions below have one entry; clusters, patterns and the timeline need more.</p></section>");
    }

    s.push_str("<div class=\"grid2\">");
    section(
        &mut s,
        "by-kind",
        "Failures by kind",
        &svg::bars("by_kind", &a.by_kind, true),
    );
    let hw = if a.by_hardware.len() == 1 {
        format!(
            "{}<p class=\"note\">One hardware class only ({}): no comparison across classes.</p>",
            svg::bars("by_hardware", &a.by_hardware, false),
            esc(&a.by_hardware[0].key)
        )
    } else {
        svg::bars("by_hardware", &a.by_hardware, false)
    };
    section(&mut s, "by-hardware", "Failures by hardware class", &hw);
    s.push_str("</div>");
    section(&mut s, "heatmap", "Hardware class × kind", &svg::heatmap(a));
    // The failures without a time of their own are not on it (an audit: "the whole
    // history" above a timeline that left 300 out).
    let undated = a.input.as_ref().map_or(0, |i| i.stamped_at_read);
    let timeline_title = if undated > 0 {
        format!(
            "Failures over time ({} with a time of their own), stacked per kind",
            t.failures.saturating_sub(undated)
        )
    } else {
        "Failures over time (the whole history), stacked per kind".to_string()
    };
    section(&mut s, "timeline", &timeline_title, &svg::timeline(a));
    s.push_str("<div class=\"grid2\">");
    section(
        &mut s,
        "strategies",
        "Recovery strategies: success rate, 95 % Wilson interval, outcomes",
        &svg::strategies(a),
    );
    let at = &a.attempts_to_recovery;
    let mut body = svg::attempts(a);
    // Without outcomes (plain logs) nothing says whether a task recovered: no count of
    // unrecovered tasks is claimed (`svg::attempts` says why there is no chart).
    match at.unrecovered_tasks {
        Some(unrecovered) if at.recovered_tasks + unrecovered > 0 || at.pending_tasks > Some(0) => {
            let _ = write!(
                body,
                "<p>{} tasks recovered{}{}; {} escalated without a successful outcome{}.</p>",
                at.recovered_tasks,
                at.mean
                    .map_or(String::new(), |m| format!(", {m:.2} failures on average")),
                at.median
                    .map_or(String::new(), |m| format!(" (median {m})")),
                unrecovered,
                at.pending_tasks.filter(|&p| p > 0).map_or(String::new(), |p| format!(
                    "; {p} pending (neither recovered nor escalated: still running, or their outcome was not reported)"
                ))
            );
        }
        _ => {}
    }
    section(&mut s, "attempts", "Attempts to recovery", &body);
    s.push_str("</div>");

    // Clusters.
    let c = &a.clusters;
    let mut body = String::from("<div class=\"grid2\"><div>");
    body.push_str(&svg::scatter(a));
    // How many of the failures the scatter draws (an audit: ~1,250 of 5,005, unsaid).
    let drawn = c.pca.points.len() as u64;
    if drawn > 0 && drawn < t.failures {
        let _ = write!(
            body,
            "<p class=\"note\">{drawn} of the {} failures drawn, evenly over the sample; the big marks are the clusters' centres.</p>",
            t.failures
        );
    }
    body.push_str("</div><div>");
    if c.items.is_empty() && c.pca.points.is_empty() && c.skipped.is_some() {
        // The scatter beside says why already (an audit: the same box twice).
    } else if c.items.is_empty() {
        body.push_str(&svg::no_data(
            "cluster_table",
            c.skipped.as_deref().unwrap_or("no clusters"),
        ));
    } else {
        let _ = write!(
            body,
            "<p>{} on a sample of {} failures, every failure then assigned online; {} beyond every cluster's radius (noise){}.</p><table><tr><th></th><th>size</th><th>summary</th></tr>",
            esc(&c.algorithm),
            c.fitted_rows,
            c.noise,
            c.silhouette
                .map_or(String::new(), |v| format!("; silhouette {v:.2}"))
        );
        for it in &c.items {
            let _ = write!(
                body,
                "<tr><td><span class=\"pill\" style=\"background:{}\">c{}</span></td><td class=\"n\">{} ({:.1} %)</td><td>{}</td></tr>",
                svg::cluster_color(it.id),
                it.id,
                it.size,
                it.share * 100.0,
                esc(&it.summary)
            );
        }
        body.push_str("</table>");
    }
    body.push_str("</div></div>");
    section(
        &mut s,
        "clusters",
        "Clusters of similar failures (PCA of the scaled features)",
        &body,
    );

    // Patterns.
    let mut body = String::new();
    if a.patterns.is_empty() && t.failures > 0 && t.first_seen.is_none() {
        // Not "none found": nothing was looked for (an analyze audit).
        body.push_str(&svg::no_data(
            "patterns",
            "not evaluated: no failure has a time of its own, and bad workers, bursts, surges and rapidly failing tasks are found over time",
        ));
    } else if a.patterns.is_empty() {
        body.push_str(&svg::no_data(
            "patterns",
            "no bad worker, burst, surge or rapidly failing task was found",
        ));
    } else {
        // The order's key is shown (an audit found the confidence column alone made the
        // order look random): severity = kind weight × confidence × ln(1 + failures).
        body.push_str("<p class=\"note\">Ordered by severity: the pattern kind's weight × confidence × ln(1 + failures). <b>failures</b> are those of the pattern's strongest detection, whose time the evidence gives; <b>active</b> spans every detection, from the first failure seen while the pattern held to the last, with the number of checks (every half window) at which it held. A <b>burst</b> is the online detector's: tasks failing with one kind on one class within its sliding window, far above that pair's baseline. A <b>surge</b> is found over time bins of the whole history: a kind or a hardware class far above its mean per bin, where no burst of it overlaps; its failures are those of all its bins. Both count a task's first failure in the window (bin) only, so its retries do not make one.</p>");
        body.push_str("<table data-table=\"patterns\"><tr><th>kind</th><th>key</th><th>severity</th><th>failures</th><th>confidence</th><th>active</th><th>evidence</th><th>action</th></tr>");
        for p in &a.patterns {
            let _ = write!(
                body,
                "<tr><td><span class=\"pill {}\">{}</span></td><td class=\"key\"><code>{}</code></td><td class=\"n\">{:.2}</td><td class=\"n\">{}</td><td class=\"n\">{:.3}</td><td class=\"when\">{}<br>{}<br><span class=\"note\">{}</span></td><td>{}</td><td>{}</td></tr>",
                esc(&p.kind),
                esc(&p.kind.replace('_', " ")),
                esc(&p.key),
                p.severity,
                p.count,
                p.confidence,
                esc(&short_time(&p.first_seen)),
                esc(&short_time(&p.last_seen)),
                active_note(p),
                esc(&p.description),
                esc(&p.recommended_action)
            );
        }
        body.push_str("</table>");
        if a.totals.patterns_left_out > 0 {
            let _ = write!(
                body,
                "<p class=\"note\">{} more pattern(s) found and not listed: the list holds the most severe of each kind.</p>",
                a.totals.patterns_left_out
            );
        }
    }
    section(&mut s, "patterns", "Patterns, most severe first", &body);

    // Templates.
    let mut body = String::new();
    if a.templates.is_empty() {
        body.push_str(&svg::no_data("templates", "no messages"));
    } else {
        body.push_str("<table data-table=\"templates\"><tr><th>id</th><th>failures</th><th>kind</th><th>template</th></tr>");
        for tp in &a.templates {
            let _ = write!(
                body,
                "<tr><td class=\"n\">{}</td><td class=\"n\">{} ({:.1} %)</td><td>{}</td><td><code>{}</code></td></tr>",
                tp.id,
                tp.count,
                tp.share * 100.0,
                esc(&tp.kind),
                esc(&tp.text)
            );
        }
        body.push_str("</table>");
    }
    // How many of them the table lists (an audit: 20 of 34, unsaid).
    let templates_title = if (a.templates.len() as u64) < t.templates {
        format!(
            "Top message templates ({} of {})",
            a.templates.len(),
            t.templates
        )
    } else {
        "Message templates".to_string()
    };
    section(&mut s, "templates", &templates_title, &body);

    if let Some(i) = &a.input {
        let mut body = format!(
            "<p>Read {} records: {} ingested, {} rejected, {} lines without a record; {} actions and {} outcomes{}.</p>",
            i.read, i.ingested, i.rejected, i.skipped, i.actions, i.outcomes,
            {
                // Rejected lines and actions kept without an outcome, told apart.
                let mut notes = Vec::new();
                if i.actions_without_outcome > 0 {
                    notes.push(format!(
                        "{} action{} without an outcome",
                        i.actions_without_outcome,
                        if i.actions_without_outcome == 1 { "" } else { "s" }
                    ));
                }
                if i.rejected_other > 0 {
                    notes.push(format!(
                        "{} action or outcome lines rejected",
                        i.rejected_other
                    ));
                }
                if notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", notes.join("; "))
                }
            }
        );
        if !i.rejections.is_empty() {
            body.push_str("<table><tr><th>first rejections</th></tr>");
            for r in &i.rejections {
                let _ = write!(body, "<tr><td><code>{}</code></td></tr>", esc(r));
            }
            body.push_str("</table>");
        }
        section(&mut s, "input", "Input", &body);
    }
    let _ = write!(
        s,
        "<footer>faultline {} · summary.json format {} · self-contained: no scripts, no network</footer></main></body></html>",
        env!("CARGO_PKG_VERSION"),
        a.format_version
    );
    s
}

/// Writes `report.html` into `dir`; returns its path.
pub fn write(dir: &Path, a: &Analysis) -> Result<PathBuf, ReportError> {
    let path = dir.join("report.html");
    std::fs::write(&path, render(a)).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{analyze, AnalyzeParams, NoProgress};
    use crate::model::{FailureKind, FailureReport, FailureType, Timestamp};
    use crate::store::{Entry, FailureRow, ParquetStore, StoreOptions};

    fn failure(task: &str, secs: i64) -> Entry {
        let report: FailureReport = serde_json::from_value(serde_json::json!({
            "task_id": task, "worker_id": "w1", "error": {"message": "CUDA out of memory"},
            "ts": 1_741_824_000 + secs,
        }))
        .unwrap();
        Entry::Failure(Box::new(FailureRow {
            record: report.check(Timestamp::from_micros(0)).unwrap(),
            kind: FailureKind::OomGpu,
            failure_type: FailureType::ResourceExhaustion,
            classifier_rule: "test".into(),
            xid: None,
            template_id: None,
            cluster_id: None,
        }))
    }

    /// Every pattern kind's pill has a background of its own: the pill's text is white, and
    /// a kind without a rule (clusters, found by an audit) was white on white.
    #[test]
    fn every_pattern_kind_has_a_pill_colour() {
        use crate::patterns::PatternKind as K;
        let all = [
            K::HardwareClass,
            K::FailureKind,
            K::Worker,
            K::Template,
            K::RapidFailure,
            K::BadWorker,
            K::Cluster,
            K::Burst,
        ];
        for k in all {
            // Exhaustive: a new kind does not compile until it is listed above.
            match k {
                K::HardwareClass
                | K::FailureKind
                | K::Worker
                | K::Template
                | K::RapidFailure
                | K::BadWorker
                | K::Cluster
                | K::Burst => {}
            }
            let rule = format!(".pill.{}{{background:#", k.as_str());
            assert!(CSS.contains(&rule), "no {rule} in the report's CSS");
        }
    }

    /// Regression: a history of plain logs (no outcomes at all, e.g. BGL or HDFS) was
    /// reported as "0 tasks recovered; 2000 never had a successful outcome", and
    /// `unrecovered_tasks` was 2000.
    #[test]
    fn without_outcomes_recovery_is_not_judged() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ParquetStore::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .write_batch((0..4).map(|i| failure(&format!("t{i}"), i)).collect())
            .unwrap();
        store.flush().unwrap();
        drop(store);
        let mut a = analyze(
            dir.path(),
            None,
            &AnalyzeParams::default(),
            None,
            &mut NoProgress,
        )
        .unwrap();
        assert_eq!((a.totals.failures, a.totals.outcomes), (4, 0));
        assert_eq!(a.attempts_to_recovery.unrecovered_tasks, None);
        let json = serde_json::to_value(&a).unwrap();
        assert!(json["attempts_to_recovery"]["unrecovered_tasks"].is_null());
        let html = render(&a);
        assert!(
            html.contains("No data — no outcomes in the history: recovery cannot be judged"),
            "{html}"
        );
        assert!(!html.contains("never had a successful outcome"));

        // Regression (audit): outcomes carried by the records, skipped input lines and the
        // patterns not listed were said on stderr only; the report's card counted the listed
        // patterns as all of them.
        a.input = Some(crate::analyze::InputSummary {
            feedback: 3,
            skipped: 212,
            ..Default::default()
        });
        a.totals.patterns_left_out = 1717;
        a.totals.patterns = 59;
        let html = render(&a);
        assert!(html.contains("3 failure records carried an outcome of their own"));
        assert!(html.contains("212 input lines held no failure record"));
        // Files left out: the one left out for its header with why, and every other by name,
        // even one whose path begins another's (a review: `a.cs` beside `a.csv` was hidden).
        a.input = Some(crate::analyze::InputSummary {
            unknown_files: 3,
            unknown_file_names: vec!["in/a.csv".into(), "in/a.cs".into(), "in/a.bin".into()],
            unreadable: vec!["in/a.csv: no column for task_id".into()],
            ..Default::default()
        });
        let left = render(&a);
        assert!(
            left.contains("3 files in the input directories were left out")
                && left.contains("<code>in/a.csv: no column for task_id</code>")
                && left.contains("<code>in/a.cs</code>")
                && left.contains("<code>in/a.bin</code>")
                && !left.contains("more."),
            "{left}"
        );
        a.input = Some(crate::analyze::InputSummary {
            feedback: 3,
            skipped: 212,
            ..Default::default()
        });
        assert!(
            html.contains("patterns (59 listed)") && html.contains(">1776<"),
            "{html}"
        );

        // Found by an audit: the patterns table said "most severe first" but showed no
        // severity, so the confidence column made the order look random. It is shown.
        let item =
            |kind: &str, key: &str, confidence: f64, severity: f64| crate::analyze::PatternItem {
                kind: kind.into(),
                key: key.into(),
                count: 5,
                first_seen: "2025-03-13T00:00:00Z".into(),
                last_seen: "2025-03-13T01:00:00Z".into(),
                confidence,
                severity,
                episodes: 1,
                recommended_action: "look".into(),
                description: "why".into(),
            };
        a.patterns = vec![
            item("bad_worker", "w1", 0.6, 2.5),
            item("cluster", "cluster-3", 0.9, 1.25),
        ];
        let html = render(&a);
        assert!(html.contains("<th>severity</th>"), "{html}");
        let first = html.find("<code>w1</code></td><td class=\"n\">2.50</td>");
        let second = html.find("<code>cluster-3</code></td><td class=\"n\">1.25</td>");
        assert!(
            first.is_some() && second.is_some() && first < second,
            "{html}"
        );
        // Regressions (analyze audit): the table says what its failures and its span cover,
        // and the whole-history surges are named apart from the online bursts.
        assert!(
            html.contains("<th>active</th>") && html.contains("held at 1 check"),
            "{html}"
        );
        assert!(html.contains("A <b>surge</b> is found over time bins"));
        assert!(CSS.contains(".pill.surge{background:#"));
        a.patterns.clear();
        // The templates listed, of how many.
        let listed = a.templates.len() as u64;
        a.totals.templates = listed + 14;
        assert!(
            render(&a).contains(&format!(
                "Top message templates ({listed} of {})",
                listed + 14
            )),
            "{html}"
        );
        a.totals.templates = listed;
        assert!(render(&a).contains("<h2>Message templates</h2>"));

        // With outcomes, the numbers stay.
        let at = &mut a.attempts_to_recovery;
        at.recovered_tasks = 3;
        at.unrecovered_tasks = Some(1);
        at.histogram = vec![(1, 2), (2, 1)];
        at.mean = Some(4.0 / 3.0);
        at.median = Some(1);
        let html = render(&a);
        assert!(
            html.contains("<p>3 tasks recovered, 1.33 failures on average (median 1); 1 escalated without a successful outcome.</p>"),
            "{html}"
        );
        assert!(!html.contains("recovery cannot be judged"));
        // Tasks neither recovered nor escalated are pending, said apart.
        a.attempts_to_recovery.pending_tasks = Some(2);
        let html = render(&a);
        assert!(
            html.contains("1 escalated without a successful outcome; 2 pending (neither recovered nor escalated"),
            "{html}"
        );
    }
}
