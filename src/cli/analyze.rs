//! `faultline analyze`: inputs (or a history) → report.html, summary.json, failures.parquet.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use faultline::analyze::{
    analyze, ingest_opened, AnalyzeParams, InputOptions, OpenInputs, Progress,
};
use faultline::ingest::{ColumnMap, Format, IngestError};
use faultline::Timestamp;

/// Analyse failure logs: classify, mine templates, cluster, find patterns, measure which
/// recoveries worked, and write a self-contained HTML report.
///
/// Inputs are read as `faultline ingest` reads them (JSONL, CSV/TSV with --map, kernel logs,
/// Parquet; directories recursively). A directory written by `faultline simulate` is imported
/// as its log: each failure, its action and that action's outcome (strategy effectiveness and
/// attempts to recovery need them). A data directory (a Parquet history: `ingest --data`,
/// `simulate --format parquet`, an earlier `analyze --out`) is read as --data reads it: its
/// committed failures, actions and outcomes, in log order; its other files are not read. The
/// history is written to OUT/history; with --data an existing history is analysed in place
/// instead. OUT is not read as an input when it lies in an input directory. A record without
/// a time is given the time of the run, counted (input.stamped_at_read) and left out of the
/// timeline, the time span and the patterns.
///
/// Writes OUT/report.html, OUT/summary.json and OUT/failures.parquet (classified failures
/// with template and cluster ids).
///
/// Example:
///
///   faultline analyze data/sample --out out/
///   faultline analyze BGL.csv --out bgl/ \
///     --map message=Content,worker_id=Node,timestamp=Timestamp,task_id=LineId
///   faultline analyze --data history/ --out report/
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Input files or directories (`-` for standard input).
    #[arg(
        value_name = "INPUT",
        required_unless_present = "data",
        conflicts_with = "data"
    )]
    inputs: Vec<PathBuf>,
    /// Analyse this existing data directory instead of inputs.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Output directory (created if absent).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Read every input as this format: jsonl, csv, tsv, kernel, parquet.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// CSV column mapping, FIELD=COLUMN,... (see `faultline ingest --help`).
    #[arg(long, value_name = "MAP", value_parser = super::ingest::parse_map)]
    map: Option<ColumnMap>,
    #[command(flatten)]
    kernel: super::ingest::KernelArgs,
    /// Rows clustering is fitted on at most (the rest are assigned online).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(2..))]
    sample: u64,
    /// Seed of the clustering.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Do not write failures.parquet.
    #[arg(long)]
    no_export: bool,
    /// No progress bars, no closing lines on standard output, and rejected records counted
    /// on standard error without their FILE:LINE lines (those are in summary.json and the
    /// report; a run that fails still says why).
    #[arg(long, short)]
    quiet: bool,
    /// Print summary.json to standard output.
    #[arg(long)]
    json: bool,
    /// Print the wall time of every stage to standard error.
    #[arg(long)]
    timings: bool,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse().map_err(|e: IngestError| e.to_string())
}

/// The file that marks the history under OUT as written by `analyze` (written before the
/// history is), so that a later run replaces it even when the earlier one failed before its
/// summary.json.
const MARKER: &str = ".faultline-analyze";

/// Where a run ingests its inputs under OUT before its history replaces the previous one:
/// a run that fails leaves the previous analysis's history as it was (an audit: a rerun whose
/// every record was rejected had already removed it).
const STAGING: &str = ".faultline-analyze-new";

/// Refuses an `out` that holds a history no earlier `analyze` wrote (one is ours when `out`
/// holds the [`MARKER`], or — for outputs of earlier versions — a summary.json beside a
/// faultline history).
fn check_previous(out: &Path) -> anyhow::Result<()> {
    let history = out.join("history");
    if !history.exists() && !out.join("wal").exists() {
        return Ok(());
    }
    let ours = out.join(MARKER).is_file()
        || (out.join("summary.json").is_file() && history.join("_manifest.json").is_file());
    if !ours {
        bail!(
            "{} already holds a history that no earlier analysis wrote; analyse it with --data or choose another --out",
            history.display()
        );
    }
    Ok(())
}

/// Replaces the history and WAL a previous `analyze` left in `out` ([`check_previous`]) with
/// the ones this run wrote under `staging`, and removes `staging`.
fn replace_previous(out: &Path, staging: &Path) -> anyhow::Result<()> {
    check_previous(out)?;
    for name in ["history", "wal"] {
        let d = out.join(name);
        if d.exists() {
            std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
        }
        let new = staging.join(name);
        if new.exists() {
            std::fs::rename(&new, &d)
                .with_context(|| format!("moving {} to {}", new.display(), d.display()))?;
        }
    }
    std::fs::remove_dir_all(staging).with_context(|| format!("removing {}", staging.display()))?;
    Ok(())
}

/// Says when the data directory `d` holds records in its write-ahead log, which an analysis
/// does not read (an audit: a server killed before its flush left its decisions there, and
/// the analysis said "0 failures" without a word, where `train` warns).
fn warn_unflushed(d: &Path, quiet: bool) {
    super::warn_gone(d);
    let n = super::unflushed_records(d);
    if n > 0 && !quiet {
        say!(
            "faultline: warning: {} holds {n} record(s) in its write-ahead log that this analysis does not read (not yet flushed into Parquet): `faultline compact --data {}` flushes them, or `POST /v1/admin/flush` while `faultline serve` holds the directory",
            d.display(),
            d.display()
        );
    }
}

/// Removes what a run staged (it failed): the previous analysis stays as it was.
fn drop_staging(staging: &Path) {
    if let Err(e) = std::fs::remove_dir_all(staging) {
        if e.kind() != std::io::ErrorKind::NotFound {
            say!(
                "faultline: warning: cannot remove {}: {e}",
                staging.display()
            );
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    // A run that fails leaves no empty output directory it made (an audit: `analyze
    // /nonexistent --out j3` left `j3`); one that held anything, or was there before, stays.
    // The directories the run would make: --out and its ancestors that do not exist yet
    // (a review: `--out a/b/c` left `a/b`).
    let made: Vec<PathBuf> = a
        .out
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect();
    let r = run_analysis(a);
    if r.is_err() {
        // Deepest first; a directory that holds anything stays.
        for d in &made {
            if std::fs::remove_dir(d).is_err() {
                break;
            }
        }
    }
    r
}

fn run_analysis(a: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    super::note_terminal_stdin(&a.inputs);
    let show = !a.quiet && std::io::stderr().is_terminal();
    let mut bars = super::Bars::new(show);
    let progress: &mut dyn Progress = &mut bars;
    if a.out.exists() && !a.out.is_dir() {
        // An audit: "creating out: File exists (os error 17)".
        bail!(
            "--out {} is a file, not a directory: --out names the directory the report, summary and history are written to",
            a.out.display()
        );
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut params = AnalyzeParams {
        sample: usize::try_from(a.sample).unwrap_or(usize::MAX),
        export: !a.no_export,
        ..AnalyzeParams::default()
    };
    params.cluster.seed = a.seed;
    params.check()?;
    let (root, input) = match &a.data {
        Some(d) => {
            if !d.join("history").is_dir() {
                bail!(
                    "{}: no history here (expected {}/history)",
                    d.display(),
                    d.display()
                );
            }
            warn_unflushed(d, a.quiet);
            (d.clone(), None)
        }
        None => {
            let mut o = InputOptions::new(Timestamp::now());
            o.format = a.format;
            o.map = a.map.clone().unwrap_or_default();
            o.kernel = a.kernel.options();
            // Every input found and opened before anything of an earlier analysis is removed:
            // a typo must not cost the previous history.
            let inputs = OpenInputs::open(&a.inputs, Some(&a.out), &o)?;
            for note in inputs.plan().notes() {
                say!("faultline: note: {note}");
            }
            super::warn_unused_map(a.map.as_ref(), &inputs.plan().failures);
            for d in &inputs.plan().histories {
                warn_unflushed(d, a.quiet);
            }
            // Files of the input directories left out (a CSV without a required column, a
            // file of unknown type): if nothing else is read, the run fails (an audit: a
            // directory of 20 unmappable CSVs made an empty report and exit 0).
            let left_out: Vec<String> = {
                let p = inputs.plan();
                p.unreadable
                    .iter()
                    .map(|(f, why)| format!("{}: {why}", f.display()))
                    .chain(
                        p.unknown
                            .iter()
                            .map(|f| format!("{}: of unknown type", f.display())),
                    )
                    .collect()
            };
            check_previous(&a.out)?;
            // Ingested aside, then moved in place of the previous history once it holds
            // something: a run that fails changes nothing of the previous analysis.
            let staging = a.out.join(STAGING);
            drop_staging(&staging);
            let s = match ingest_opened(inputs, &staging, &o, progress) {
                Ok(s) if s.ingested == 0 && (s.rejected > 0 || !left_out.is_empty()) => {
                    drop_staging(&staging);
                    s
                }
                Ok(s) => {
                    let marker = a.out.join(MARKER);
                    std::fs::write(
                        &marker,
                        "the history here was written by `faultline analyze`; the next analysis into this directory replaces it\n",
                    )
                    .with_context(|| format!("writing {}", marker.display()))?;
                    replace_previous(&a.out, &staging)?;
                    s
                }
                Err(e) => {
                    drop_staging(&staging);
                    return Err(e.into());
                }
            };
            let stdin_hint = super::stdin_format_hint(a.format, &a.inputs);
            if s.ingested == 0 && s.rejected > 0 {
                if a.quiet {
                    // No line per record, but the error says why, with the first reason.
                    // The first failure record rejected (an outcome line may come first in
                    // `rejections`: review).
                    let first = s
                        .first_record_rejection
                        .as_ref()
                        .or(s.rejections.first())
                        .map(|r| format!("; the first: {r}"))
                        .unwrap_or_default();
                    bail!(
                        "nothing ingested: all {} records were rejected{stdin_hint}{first}",
                        s.rejected
                    );
                }
                for r in &s.rejections {
                    say!("{r}");
                }
                bail!(
                    "nothing ingested: all {} records were rejected{stdin_hint}",
                    s.rejected
                );
            }
            if s.ingested == 0 && !left_out.is_empty() {
                bail!(
                    "nothing ingested: {} file{} of the input directories left out, and the {} line{} read held no failure record (the first left out: {}); name a file with --map COLUMNS to read a CSV whose header is not recognised, or --format",
                    left_out.len(),
                    if left_out.len() == 1 { "" } else { "s" },
                    s.skipped,
                    if s.skipped == 1 { "" } else { "s" },
                    left_out[0]
                );
            }
            let all = s.rejected + s.rejected_other;
            if all > 0 {
                // Rejected records are in the report and summary.json too; say so here, where
                // the user is looking, with the first few reasons.
                const SHOWN: usize = 5;
                let other = if s.rejected_other > 0 {
                    format!(
                        " and {} action or outcome line{}",
                        s.rejected_other,
                        if s.rejected_other == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                };
                let summary = a.out.join("summary.json");
                if a.quiet {
                    // The count only: no line per record.
                    say!(
                        "faultline: warning: {} of {} records{other} rejected (the first are in {} and the report)",
                        s.rejected,
                        s.read,
                        summary.display()
                    );
                } else {
                    say!(
                        "faultline: warning: {} of {} records{other} rejected (the first are also in {} and the report):",
                        s.rejected,
                        s.read,
                        summary.display()
                    );
                    for r in s.rejections.iter().take(SHOWN) {
                        say!("  {r}");
                    }
                    if all > SHOWN as u64 {
                        say!("  ... and {} more", all - SHOWN as u64);
                    }
                }
            }
            if s.ingested == 0 && s.skipped > 0 && !a.quiet {
                // An audit: JSON lines in a `.txt` file were read as a kernel log, and the
                // analysis of nothing said only "analysed 0 failures".
                say!(
                    "faultline: warning: no failure record in the {} line{} read (none held one the input's format reads: is the format right? --format jsonl, csv, tsv, kernel or parquet)",
                    s.skipped,
                    if s.skipped == 1 { "" } else { "s" }
                );
            }
            if s.read == 0 && s.skipped == 0 && s.actions == 0 && s.outcomes == 0 {
                // An audit: an empty input made a report of 0 failures without a word.
                say!(
                    "faultline: warning: the input{} held nothing to read (empty): the report has no failures",
                    if a.inputs.len() == 1 { "" } else { "s" }
                );
            }
            if s.feedback > 0 && !a.quiet {
                // An audit: the bench stream's outcomes were dropped without a word.
                say!(
                    "faultline: note: {} record{} carried an outcome of {} own (ml_feedback), which is not imported: the strategies' success rates count the outcomes of the history's recovery actions (a simulator directory or a data directory has them; input.feedback in {})",
                    s.feedback,
                    if s.feedback == 1 { "" } else { "s" },
                    if s.feedback == 1 { "its" } else { "their" },
                    a.out.join("summary.json").display()
                );
            }
            if s.actions_without_outcome > 0 {
                // Not rejections: kept in the history, without an outcome.
                say!(
                    "faultline: note: {} action{} of a simulator directory had no outcome left in its outcomes.jsonl: kept without one (input.actions_without_outcome in {})",
                    s.actions_without_outcome,
                    if s.actions_without_outcome == 1 { "" } else { "s" },
                    a.out.join("summary.json").display()
                );
            }
            if s.stamped_at_read > 0 {
                say!(
                    "faultline: warning: {} record{} had no time and {} given the time of this run ({}): {} counted, but left out of the timeline, the time span and the patterns (input.stamped_at_read in {})",
                    s.stamped_at_read,
                    if s.stamped_at_read == 1 { "" } else { "s" },
                    if s.stamped_at_read == 1 { "was" } else { "were" },
                    o.now,
                    if s.stamped_at_read == 1 { "it is" } else { "they are" },
                    a.out.join("summary.json").display()
                );
            }
            (a.out.clone(), Some(s))
        }
    };
    let analysis = analyze(&root, Some(&a.out), &params, input, progress)?;
    progress.finish();
    let t = &analysis.totals;
    if t.patterns_left_out > 0 && !a.quiet {
        say!(
            "faultline: note: {} pattern{} found {} not listed: the report lists the {} most severe of each kind (totals.patterns_left_out in {})",
            t.patterns_left_out,
            if t.patterns_left_out == 1 { "" } else { "s" },
            if t.patterns_left_out == 1 { "is" } else { "are" },
            params.top_patterns,
            a.out.join("summary.json").display()
        );
    }
    if t.far_apart > 0 {
        say!(
            "faultline: warning: {} failure{} dated far from all the others (the first at {}; the history runs {} .. {}): a wrong year, clock or boot time? (kernel-log seconds since boot need --boot-time, else they are dated 1970); kept, and the timeline spans {} (totals.far_apart in {})",
            t.far_apart,
            if t.far_apart == 1 { " is" } else { "s are" },
            t.far_apart_example.as_deref().unwrap_or("?"),
            t.first_seen.as_deref().unwrap_or("?"),
            t.last_seen.as_deref().unwrap_or("?"),
            if t.far_apart == 1 { "it" } else { "them" },
            a.out.join("summary.json").display()
        );
    }
    let json = serde_json::to_string_pretty(&analysis)?;
    let summary = a.out.join("summary.json");
    std::fs::write(&summary, &json).with_context(|| format!("writing {}", summary.display()))?;
    let report = faultline::report::write(&a.out, &analysis)?;
    if a.timings {
        for (name, secs) in &bars.timings {
            say!("{name:>12} {secs:8.3} s");
        }
        say!("{:>12} {:8.3} s", "total", started.elapsed().as_secs_f64());
    }
    if a.json {
        outln!("{json}");
    } else if !a.quiet {
        let t = &analysis.totals;
        // Every pattern found, with how many are listed (an audit: "59 patterns" of 1,776).
        let patterns = if t.patterns_left_out > 0 {
            format!(
                "{} patterns, {} listed",
                t.patterns + t.patterns_left_out,
                t.patterns
            )
        } else {
            format!("{} patterns", t.patterns)
        };
        outln!(
            "analysed {} failures ({} tasks, {} workers, {} templates, {} clusters, {patterns}, {} outcomes) in {:.2} s",
            t.failures,
            t.tasks,
            t.workers,
            t.templates,
            t.clusters,
            t.outcomes,
            started.elapsed().as_secs_f64()
        );
        outln!("report:  {}", report.display());
        outln!("summary: {}", summary.display());
        if let Some(c) = &analysis.outputs.classified {
            outln!("classified failures: {}", a.out.join(c).display());
        }
    }
    Ok(())
}
