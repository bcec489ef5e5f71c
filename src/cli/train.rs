//! `faultline train`: the whole history of a data directory → a versioned model directory.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use faultline::train::{prepare_model_dir, train_with, Manifest, RefinedLevel, TrainOptions};
use faultline::Timestamp;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Train a model from the whole history (templates, classifier, clusters, success rates).
///
/// Refits the message templates, the learned template → kind classifier, the feature scaling
/// and clusters, and the success-rate tables (per hardware class × kind × strategy, and per
/// refined context: each outcome joined to the failure it answered, by classifier rule, Xid
/// code, repeat failure and message signature) that the learned ranking starts from.
///
/// --data is a data directory holding history/ (written by `faultline ingest`, by the
/// durable `faultline recommend --data`, or by `faultline analyze INPUT --out DIR`). Only its
/// committed Parquet parts are read; nothing in it is changed.
///
/// --out receives the model directory, written atomically. A model already there is
/// replaced; any other existing file or non-empty directory is refused (checked before
/// training starts). It holds manifest.json (format version, feature schema, training data
/// range, evaluation metrics, BLAKE3 hash of every artifact) beside templates.json,
/// classifier.json, clusters.json and success_rates.json. The model's name is the
/// directory's name unless --name is given. A directory that cannot be written, or a
/// history with fewer outcomes than --min-outcomes, fails before the training: the model
/// already at --out stays.
///
/// A running `faultline serve` keeps the model it loaded: `POST /v1/admin/reload` (with
/// {"model": "DIR"} for another directory) or a restart makes it use the new one.
///
/// Most of the time goes to the clusters (fitted on at most --sample rows): about a minute
/// for 5,000 to 40,000 failures in a debug build, a few seconds in a release build.
///
/// Exit status: 0 trained and written; 2 an error, or fewer outcomes than --min-outcomes.
///
/// Examples:
///
///   faultline analyze data/sample --out out/ && faultline train --data out --out models/default
///   faultline train --data /var/lib/faultline --out models/2026-11-29 --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Data directory with the history to train on.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Model directory to write (e.g. models/NAME).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Model name in the manifest (default: the --out directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Seed of the clustering.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rows the clusters are fitted on at most (the rest are placed online); at least 20.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(20..))]
    sample: u64,
    /// Train only if the history holds at least N outcomes, checked before training (for a
    /// nightly job: a history without outcomes gives empty success tables, and the model at
    /// --out is replaced only by one that learned from some).
    #[arg(long, value_name = "N", default_value_t = 0)]
    min_outcomes: u64,
    /// Print the manifest (with the output path) as one JSON document.
    #[arg(long)]
    json: bool,
    /// No progress display and no summary; warnings are still printed (on standard error).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Serialize)]
struct Output<'a> {
    path: String,
    seconds: f64,
    /// Records in the data directory's write-ahead log, not yet flushed, that training did
    /// not read.
    unflushed_records: usize,
    manifest: &'a Manifest,
}

/// A time, or `-`.
fn ts(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".into(), |t| t.to_string())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let name = match &a.name {
        Some(n) => n.clone(),
        None => a
            .out
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .with_context(|| format!("--out {} has no directory name", a.out.display()))?,
    };
    // Refuse a --out that is not a model before the (long) training, not after.
    prepare_model_dir(&a.out).with_context(|| format!("writing {}", a.out.display()))?;
    // Training reads the committed Parquet parts; records still in the write-ahead log (a
    // server or `recommend --data` that has not flushed, a run killed before it could) are
    // not in them. Said, with what flushes them (an audit found 600 of 900 left out without
    // a word, and "no failures to train on" for a history all in its log).
    super::warn_gone(&a.data);
    let unflushed = super::unflushed_records(&a.data);
    let hint = |n: usize| {
        format!(
            "{} holds {n} record(s) in its write-ahead log that training does not read (not yet flushed into Parquet): `faultline compact --data {}` flushes them, or `POST /v1/admin/flush` while `faultline serve` holds the directory",
            a.data.display(),
            a.data.display()
        )
    };
    // Warnings whatever --quiet says: a nightly job runs quiet, and its log is where a model
    // trained without the log's records is seen (an audit: `-q` hid both warnings).
    if unflushed > 0 {
        say!("faultline: warning: {}", hint(unflushed));
    }
    let mut opts = TrainOptions::new(name, Timestamp::now());
    opts.cluster.seed = a.seed;
    opts.sample = usize::try_from(a.sample).unwrap_or(usize::MAX);
    opts.min_outcomes = a.min_outcomes;
    let show = !a.quiet && std::io::stderr().is_terminal();
    let bar = show.then(|| {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{prefix:>14} [{elapsed_precise}] {spinner}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let model = train_with(&a.data, &opts, &mut |stage| {
        if let Some(b) = &bar {
            b.set_prefix(stage);
        }
    })
    .with_context(|| format!("training on {}", a.data.display()))?;
    let outcomes = (model.manifest().metrics.success.outcomes + 0.0).round();
    if outcomes == 0.0 {
        say!(
            "faultline: warning: the history of {} holds no outcomes: the model's success tables are empty, and a server seeded with it ranks as the rules until its own outcomes teach it (--min-outcomes N keeps the model at --out instead)",
            a.data.display()
        );
    }
    if let Some(b) = &bar {
        b.set_prefix("save");
    }
    model
        .save(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let m = model.manifest();
    let seconds = started.elapsed().as_secs_f64();
    if a.json {
        let out = Output {
            path: a.out.display().to_string(),
            seconds,
            unflushed_records: unflushed,
            manifest: m,
        };
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else if !a.quiet {
        let r = &m.data_range;
        let x = &m.metrics;
        outln!(
            "trained model '{}' (format {}) in {seconds:.2} s",
            m.name,
            m.format_version
        );
        outln!(
            "  data:       {} failures {} .. {}, {} outcomes",
            r.failures,
            ts(r.first),
            ts(r.last),
            r.outcomes
        );
        outln!(
            "  templates:  {} from {} distinct messages (top 10 hold {:.1} %)",
            x.templates.templates,
            x.templates.distinct_messages,
            x.templates.top10_share * 100.0
        );
        let c = &x.classifier;
        // A share of nothing is not 0 % (an audit: "coverage 0.0 %, agreement 0.0 % (0/0)").
        let pct = |part: u64, of: u64| {
            if of == 0 {
                "-".to_string()
            } else {
                format!("{:.1} %", part as f64 / of as f64 * 100.0)
            }
        };
        outln!(
            "  classifier: {} ({} templates); held out {}: coverage {}, agreement with the rules {} ({}/{})",
            m.classifier.method,
            c.entries,
            c.holdout_rows,
            pct(c.covered, c.holdout_rows),
            pct(c.agree, c.covered),
            c.agree,
            c.covered
        );
        let k = &x.clusters;
        match &k.skipped {
            Some(why) => outln!("  clusters:   none ({why})"),
            None => outln!(
                "  clusters:   {} {} on {} rows; noise {:.1} %; silhouette {}",
                k.clusters,
                k.algorithm,
                k.fitted_rows,
                k.noise_share * 100.0,
                k.silhouette
                    .map_or_else(|| "-".into(), |s| format!("{s:.3}"))
            ),
        }
        let s = &x.success;
        // The outcome count is a sum of weights (`-0` in models written before `train` normalised it).
        let outcomes = (s.outcomes + 0.0).round();
        outln!(
            "  success:    {} contexts, {} (context, strategy) cells, {outcomes} outcomes, rate {}",
            s.contexts,
            s.cells,
            match s.success_rate.filter(|_| outcomes > 0.0) {
                Some(r) => format!("{:.1} %", r * 100.0),
                None => "- (no outcomes in the history)".into(),
            }
        );
        let refined = &model.success_tables().refined;
        let fine = refined
            .iter()
            .filter(|r| r.level == RefinedLevel::Fine)
            .count();
        outln!(
            "  refined:    {fine} fine and {} finest contexts (each outcome joined to the failure it answered)",
            refined.len() - fine
        );
        outln!("  model:      {}", a.out.display());
    }
    Ok(())
}
