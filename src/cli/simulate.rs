//! `faultline simulate`: a seeded closed-loop fleet simulation with ground truth.

use std::io::Write;
use std::path::PathBuf;

use std::io::IsTerminal;

use anyhow::{bail, Context};
use faultline::sim::{
    self, FailureTruth, FixedTable, FleetTruth, JsonlSink, NullSink, PolicyKind, RunOptions,
    Scenario, SimError, Sink, Summary, TaskTruth,
};
use faultline::{FailureReport, Outcome, RecoveryAction};
use indicatif::{ProgressBar, ProgressStyle};

/// Simulate a fleet whose failures and recovery outcomes are known.
///
/// Reads a scenario (TOML: workers per hardware class, failure mix, bad workers, bursts, task
/// properties, the true success probability and cost of every strategy; see
/// data/scenarios/README.md), lets a policy answer every failure, samples the outcome from
/// the ground truth, feeds it back and continues each task until it succeeds or is
/// escalated. Timestamps come from the simulated clock; the same scenario, policy and seed
/// give byte-identical output.
///
/// With --out DIR it writes failures.jsonl (failure records: `faultline recommend` reads
/// them), actions.jsonl, outcomes.jsonl, summary.json, and the ground truth (bad workers,
/// bursts, causes, true success probabilities) in a separate ground_truth.json; with
/// --format parquet a data directory (history/ and wal/) takes the place of the three JSONL
/// files.
///
/// Example:
///
///   faultline simulate --scenario data/scenarios/llm-gpu-training.toml \
///     --policy rules --seed 1 --failures 5000 --out sim/ --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Scenario file (TOML).
    #[arg(long)]
    scenario: PathBuf,
    /// Who answers failures: rules (the engine and its rules), learned (the engine with its
    /// learned ranking, learning from the outcomes), model (the engine with its success-model
    /// ranker, refit from the outcomes), fixed (a table), oracle (the ground truth's best
    /// strategy).
    #[arg(long, default_value = "rules", value_parser = parse_policy)]
    policy: PolicyKind,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Failures to simulate (tasks in flight are then finished, so the total is at least this).
    #[arg(long, default_value_t = 10_000)]
    failures: u64,
    /// Failures treated as warm-up: `regret_per_decision_after_warmup` counts only the
    /// decisions after them (null when a run is no longer than its warm-up).
    #[arg(long, default_value_t = sim::DEFAULT_WARMUP)]
    warmup: u64,
    /// Output directory for the history and the ground truth (jsonl files there are
    /// replaced; a directory already holding a Parquet history is refused).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output format: parquet (the store's layout under DIR/history and DIR/wal, readable by
    /// `faultline analyze --data DIR` or `faultline analyze DIR`) or jsonl (failures.jsonl,
    /// actions.jsonl, outcomes.jsonl).
    /// ground_truth.json and summary.json are written either way.
    #[arg(long, default_value = "jsonl")]
    format: String,
    /// Print the summary as one JSON document.
    #[arg(long)]
    json: bool,
    /// Rules file over the defaults, for --policy rules, learned and model.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Engine config file (TOML: [retry], [patterns], [breakers], [ranking]...), for --policy
    /// rules, learned and model; its seed and max_attempts are replaced by the run's.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Table for --policy fixed (the shape of a scenario's [fixed], at the top level);
    /// default: the scenario's [fixed] table.
    #[arg(long)]
    fixed: Option<PathBuf>,
    /// Model directory written by `faultline train`, for --policy learned: its success
    /// tables seed the learned ranking before the first failure (as `faultline serve --model`
    /// does for contexts its history never met), so the run starts from what an earlier
    /// history taught instead of from the rules alone.
    #[arg(long)]
    model: Option<PathBuf>,
}

/// Moves the simulated history from the JSONL files into the store's Parquet layout under
/// `dir/history` (`analyze::import_simulation`: each failure classified as `ingest` does, its
/// action and its outcome in log order), then removes the JSONL files.
fn to_parquet(dir: &std::path::Path) -> anyhow::Result<()> {
    use faultline::analyze::{import_simulation, InputOptions, NoProgress};
    use faultline::store::{ParquetStore, StoreOptions};
    let mut store = ParquetStore::open(dir, StoreOptions::default())?;
    let n = import_simulation(
        dir,
        &mut store,
        &InputOptions::new(faultline::Timestamp::from_micros(0)),
        &mut NoProgress,
    )?;
    store.flush()?;
    if let Some(first) = n.rejections.first() {
        // The simulator wrote every line: a rejection here is a bug, not bad input.
        bail!(
            "{} simulated line(s) did not import; the first: {first}",
            n.rejected + n.rejected_other
        );
    }
    if n.actions_without_outcome > 0 {
        // The simulator writes the outcome of every action but an escalation (review: this
        // was refused as a rejection before such actions were kept).
        bail!(
            "{} simulated action(s) had no outcome in {}",
            n.actions_without_outcome,
            dir.join("outcomes.jsonl").display()
        );
    }
    for name in ["failures.jsonl", "actions.jsonl", "outcomes.jsonl"] {
        let p = dir.join(name);
        std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
    }
    Ok(())
}

fn parse_policy(s: &str) -> Result<PolicyKind, String> {
    s.parse()
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let parquet = match a.format.as_str() {
        "jsonl" => false,
        "parquet" => true,
        other => bail!("unknown --format '{other}' (expected jsonl or parquet)"),
    };
    if parquet && a.out.is_none() {
        bail!("--format parquet needs --out DIR");
    }
    if let Some(dir) = &a.out {
        // An audit: a file there gave "cannot write afile: File exists (os error 17)".
        if dir.exists() && !dir.is_dir() {
            bail!(
                "--out {}: exists and is not a directory (the run writes several files into a directory)",
                dir.display()
            );
        }
        // The Parquet history appends: a second run into the same directory would be added to
        // the first while ground_truth.json and summary.json described the second alone.
        if dir.join("history").exists() {
            bail!(
                "{} already holds a history (history/); a run would be added to it: choose a new --out directory or remove it",
                dir.display()
            );
        }
    }
    if a.failures == 0 {
        bail!("--failures must be at least 1 (0 would simulate nothing)");
    }
    if a.fixed.is_some() && a.policy != PolicyKind::Fixed {
        bail!("--fixed applies only to --policy fixed");
    }
    let engine_policy = matches!(
        a.policy,
        PolicyKind::Rules | PolicyKind::Learned | PolicyKind::Model
    );
    if (a.rules.is_some() || a.config.is_some()) && !engine_policy {
        bail!("--rules and --config apply only to --policy rules, learned and model");
    }
    let scenario = Scenario::load(&a.scenario)?;
    for w in &scenario.warnings {
        say!("faultline: warning: {w}");
    }
    let rules = match &a.rules {
        Some(p) => Some(super::load_rules(Some(p))?),
        None => None,
    };
    let engine = match &a.config {
        Some(p) => {
            let config = super::load_config(Some(p))?;
            // It parsed, so it can be read: its `ranking.ranker` must not contradict the policy.
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("loading --config {}", p.display()))?;
            sim::policy::check_config_ranker(a.policy, &text, &p.display().to_string())?;
            Some(config)
        }
        None => None,
    };
    let fixed = match &a.fixed {
        Some(p) => Some(FixedTable::load(p, &scenario)?),
        None => None,
    };
    if a.model.is_some() && a.policy != PolicyKind::Learned {
        bail!("--model applies only to --policy learned");
    }
    let model = match &a.model {
        Some(dir) => Some((
            dir,
            faultline::train::Model::load(dir)
                .with_context(|| format!("loading the model {}", dir.display()))?,
        )),
        None => None,
    };
    let mut policy = sim::policy::build(a.policy, &scenario, rules, engine, fixed, a.seed)?;
    if let Some((dir, m)) = &model {
        let Some(ranker) = policy.ranker_mut() else {
            bail!(
                "--model seeds the Bayes ranking; the --config sets [ranking] ranker = \"model\", which has none"
            );
        };
        let seeded = m.seed_ranker(ranker);
        if !a.json {
            say!(
                "seeded the learned ranking with {seeded} (class, kind) contexts of the model {}",
                dir.display()
            );
        }
    }
    let opts = RunOptions {
        seed: a.seed,
        failures: a.failures,
        warmup: a.warmup,
    };
    let summary = match &a.out {
        Some(dir) => {
            let mut sink = JsonlSink::new(dir)?;
            let summary = sim::run(
                &scenario,
                policy.as_mut(),
                &opts,
                &mut Progress::new(&mut sink, a.failures),
            )
            .with_context(|| format!("simulating into {}", dir.display()))?;
            if parquet {
                to_parquet(dir).with_context(|| {
                    format!("writing the Parquet history under {}", dir.display())
                })?;
            }
            summary
        }
        None => sim::run(
            &scenario,
            policy.as_mut(),
            &opts,
            &mut Progress::new(&mut NullSink, a.failures),
        )?,
    };

    if let Some(warning) = opts.shortfall(&summary) {
        say!("warning: {warning}");
    }

    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
        return Ok(());
    }
    summary.write_text(&mut out)?;
    if let Some(dir) = &a.out {
        writeln!(out, "  {}", wrote(parquet, dir))?;
    }
    Ok(())
}

/// The line naming what a run with `--out dir` wrote there: the JSONL files, or with
/// `--format parquet` the data directory's history and WAL (the JSONL files are removed once
/// imported, see [`to_parquet`]); ground_truth.json and summary.json either way.
fn wrote(parquet: bool, dir: &std::path::Path) -> String {
    if parquet {
        format!(
            "wrote history/ and wal/ (a data directory: `faultline analyze --data {0}` reads it), ground_truth.json, summary.json to {0}",
            dir.display()
        )
    } else {
        format!(
            "wrote failures.jsonl, actions.jsonl, outcomes.jsonl, ground_truth.json, summary.json to {}",
            dir.display()
        )
    }
}

/// A sink that passes everything on and, on a terminal, shows how many of the failures asked
/// for were simulated (a bar on stderr, moved every 1,024 failures; cleared at the end).
struct Progress<'a> {
    inner: &'a mut dyn Sink,
    bar: ProgressBar,
    failures: u64,
}

impl<'a> Progress<'a> {
    fn new(inner: &'a mut dyn Sink, total: u64) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} failures (eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            )
        } else {
            ProgressBar::hidden()
        };
        Progress {
            inner,
            bar,
            failures: 0,
        }
    }
}

impl Sink for Progress<'_> {
    fn begin(&mut self, fleet: &FleetTruth) -> Result<(), SimError> {
        self.inner.begin(fleet)
    }
    fn failure(&mut self, report: &FailureReport) -> Result<(), SimError> {
        self.failures += 1;
        if self.failures.is_multiple_of(1024) {
            self.bar
                .set_position(self.failures.min(self.bar.length().unwrap_or(0)));
        }
        self.inner.failure(report)
    }
    fn action(&mut self, action: &RecoveryAction) -> Result<(), SimError> {
        self.inner.action(action)
    }
    fn outcome(&mut self, outcome: &Outcome) -> Result<(), SimError> {
        self.inner.outcome(outcome)
    }
    fn truth(&mut self, truth: &FailureTruth) -> Result<(), SimError> {
        self.inner.truth(truth)
    }
    fn end(&mut self, tasks: &[TaskTruth], summary: &Summary) -> Result<(), SimError> {
        self.bar.finish_and_clear();
        self.inner.end(tasks, summary)
    }
}
