//! `faultline eval`: evaluation suites on labelled data.

use std::path::PathBuf;

use clap::Subcommand;

/// Evaluate faultline on labelled data.
///
/// Each suite prints its measures as text, or as JSON with --json; a data set that is absent
/// is skipped with its reason. See each suite's --help.
///
/// Examples:
///
///   faultline eval classify --tsv ../shared/data/real/error_messages_dev.tsv
///   faultline eval templates ../shared/data/real/loghub2k
///   faultline eval patterns sim-1 sim-2 sim-3    (simulate --out directories)
///   faultline eval ranking --data history/
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    command: EvalCommand,
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Bad-worker detection: precision and recall against simulated fleets.
    ///
    /// Each DIR is the output of `faultline simulate --out DIR` (failures.jsonl and
    /// ground_truth.json; with `--format parquet`, the history and ground_truth.json). The
    /// failures are replayed through the pattern detector; a worker
    /// counts as flagged if a bad-worker pattern named it at any time. Example:
    ///
    ///   for s in 1 2 3 4 5; do
    ///     faultline simulate --scenario data/scenarios/bad-workers.toml --seed $s \
    ///       --failures 20000 --out sim-$s
    ///   done
    ///   faultline eval patterns sim-1 sim-2 sim-3 sim-4 sim-5
    #[command(verbatim_doc_comment)]
    Patterns {
        /// Simulation output directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Engine config (TOML) whose [patterns] section sets the detector.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the report as one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Classification: per-kind precision and recall, confusion matrix, macro-F1.
    ///
    /// The TSV needs a header with `message` and `label` columns (failure kind names);
    /// `alt_label` (a second defensible kind) and `hw_class` (GPU, CPU, TPU, NPU, browser) are
    /// used when present. A JSON-lines file has one object per line with the same fields
    /// (`id` a string or a number). Examples:
    ///
    ///   faultline eval classify --tsv ../shared/data/real/error_messages_dev.tsv
    ///   faultline eval classify --jsonl labelled.jsonl
    ///     (lines such as {"message": "CUDA out of memory", "label": "oom_gpu"})
    #[command(verbatim_doc_comment)]
    #[command(group(clap::ArgGroup::new("input").required(true).args(["tsv", "jsonl"])))]
    Classify {
        /// Labelled TSV file.
        #[arg(long)]
        tsv: Option<PathBuf>,
        /// Labelled JSON-lines file.
        #[arg(long)]
        jsonl: Option<PathBuf>,
        /// Print the report as one JSON document.
        #[arg(long)]
        json: bool,
        /// Also list every misclassified message.
        #[arg(long)]
        errors: bool,
    },
    /// Template mining: grouping accuracy, parsing accuracy and template-level F1 per file.
    ///
    /// Each FILE is a CSV with `Content` and `EventTemplate` columns (Loghub-2.0's
    /// `*_structured_corrected.csv`); a directory stands for every such file below it. Each
    /// file is mined alone with one configuration (the default, or --config) in the two-pass
    /// form of `faultline template --final`. A file with a `Label` column (BGL) also reports
    /// how many alert lines share a template with a normal line. Example:
    ///
    ///   faultline eval templates ../shared/data/real/loghub2k
    #[command(verbatim_doc_comment)]
    Templates {
        /// CSV files or directories.
        #[arg(required = true, value_name = "FILE")]
        inputs: Vec<PathBuf>,
        /// Miner configuration (TOML), the same for every file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the report as one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Ranking: off-policy estimates of recovery policies from the logged history.
    ///
    /// DIR is a data directory (the engine's, or `faultline simulate --format parquet
    /// --out DIR`). Every logged action is joined to its outcome (reward = success 0/1) and
    /// scored as a contextual bandit round: context = (hardware class, failure kind, attempt
    /// 1/2/3+) and the task's state. An escalation is a round too, with reward 0 (no
    /// automatic recovery); a candidate that escalates gets that 0 with weight 1. The first
    /// --split of the decisions (log order) trains
    /// the `learned` and `model` candidates and the reward model; the rest is evaluated, so
    /// nothing peeks. The history is the committed Parquet parts (as `faultline train` reads
    /// them) plus the records still in the write-ahead log, which the report counts.
    ///
    /// Candidates:
    ///   logged   what the logging policy did (its on-policy success rate: a sanity check)
    ///   rules    the rule engine's choice in the logged state (ladder, position, config)
    ///   learned  greedy on the posterior means of a Bayes ranker trained on the first part
    ///   model    greedy on a success model fitted on the first part
    ///
    /// Columns (values are success rates per decision, ± one standard error clustered by
    /// task):
    ///   agree    fraction of decisions where the candidate took the logged action
    ///   matched  decisions with a nonzero importance weight (what IPS actually sees)
    ///   clipped  weights 1/propensity above --clip, cut to it for IPS (bias down, variance
    ///            down); SNIPS and DR use the weights uncut
    ///   cut w    weight the clip cut off per decision: the most IPS is biased down by
    ///   mean w   mean importance weight Σw/n before clipping: about 1 when the logging
    ///            policy could take the candidate's choices; far below 1 when it rarely
    ///            took them (support deficiency: IPS biased low, SNIPS and DR lean on few
    ///            decisions)
    ///   ess      effective sample size (Σw)²/Σw² of the uncut weights: how many
    ///            decisions SNIPS and DR are worth
    ///   IPS      mean of w·reward, w clipped
    ///   SNIPS    Σ w·reward / Σ w, w uncut (bounded; consistent where the logging policy
    ///            could take every choice of the candidate — with deterministic logging it
    ///            is the success rate of the matched decisions alone)
    ///   model    share of decisions where the logging policy took another action with
    ///            certainty (propensity 1): no logged outcome corrects the reward model
    ///            there, and DR is its guess
    ///   DR       doubly robust: reward model + w·(reward − model); unbiased if either the
    ///            propensities or the model are right, but only where the logging policy
    ///            could take the candidate's choice (elsewhere it is the model's guess, and
    ///            its ± counts sampling noise only); marked * when `model` is above 0.25
    ///   cost     self-normalised estimate of the mean reported cost per decision (the
    ///            outcomes' `cost`, in whatever unit the reporter used — the simulator's is
    ///            device-seconds; escalations are left out)
    ///
    /// Every estimate assumes the logging policy chose from what the log holds (the
    /// context above): a log of the simulator's oracle, which sees each failure's hidden
    /// cause, makes every candidate look better than it is.
    ///
    /// `first` decisions (attempt 1) do not depend on the policy that ran earlier in the
    /// task, so their values compare directly with a run under that policy. With
    /// deterministic logging (every propensity 1) IPS sees only the matched decisions; the
    /// report says so. A decision whose logged propensity is not a number in [1e-6, 1], or whose
    /// action a circuit breaker put in place of a random choice (it
    /// carries that choice's propensity), is left out of every estimate, and the report says
    /// how many. Example:
    ///
    ///   faultline simulate --scenario data/scenarios/llm-gpu-training.toml --policy learned \
    ///     --seed 1 --failures 20000 --format parquet --out /tmp/h
    ///   faultline eval ranking --data /tmp/h
    #[command(verbatim_doc_comment)]
    Ranking {
        /// Data directory holding history/actions and history/outcomes.
        #[arg(long)]
        data: PathBuf,
        /// Fraction of decisions (log order) that trains; the rest is evaluated.
        #[arg(long, default_value_t = 0.5)]
        split: f64,
        /// Largest importance weight.
        #[arg(long, default_value_t = 20.0)]
        clip: f64,
        /// Rules (TOML) for the `rules` candidate (default: the built-in rules).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Engine config (TOML): its `[ranking]` (priors, back-off, `[ranking.model]`) is what
        /// the `learned` and `model` candidates start from, as the fleet's engine runs it
        /// (default: the built-in parameters). Both stay greedy.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the report as one JSON document (the fields of the text report under
        /// their long names: agreement, clipped_mass, mean_weight, model_only, ...).
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        EvalCommand::Patterns { dirs, config, json } => {
            let cfg = super::load_config(config.as_deref())?;
            // A directory given twice (by another path too) is scored once, as `ingest` reads
            // an input once (an audit: it counted twice in the pooled figures).
            let mut seen = std::collections::HashSet::new();
            let dirs: Vec<PathBuf> = dirs
                .into_iter()
                .filter(|d| {
                    let key = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
                    let first = seen.insert(key);
                    if !first {
                        say!("faultline: note: {} given again: scored once", d.display());
                    }
                    first
                })
                .collect();
            let report = faultline::eval::patterns::evaluate_dirs(&dirs, &cfg.patterns)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out!("{}", report.render_text());
            }
        }
        EvalCommand::Templates {
            inputs,
            config,
            json,
        } => super::template::run_eval(&inputs, config.as_deref(), json)?,
        EvalCommand::Ranking {
            data,
            split,
            clip,
            rules,
            config,
            json,
        } => {
            let rules = match rules {
                Some(p) => faultline::rules::RuleSet::load(&p)?,
                None => faultline::rules::RuleSet::defaults(),
            };
            let ranking = super::load_config(config.as_deref())?.ranking;
            super::warn_gone(&data);
            let opts = faultline::eval::ranking::Options {
                split,
                clip,
                ranking,
            };
            let report = faultline::eval::ranking::evaluate_dir(&data, &rules, opts)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out!("{}", report.render_text());
            }
        }
        EvalCommand::Classify {
            tsv,
            jsonl,
            json,
            errors,
        } => {
            let (report, path) = match (tsv, jsonl) {
                (Some(t), _) => (faultline::eval::classify::evaluate_file(&t)?, t),
                (None, Some(j)) => (faultline::eval::classify::evaluate_jsonl(&j)?, j),
                (None, None) => unreachable!("clap requires --tsv or --jsonl"),
            };
            for w in &report.warnings {
                // FILE:LINE, as every other bad line is named (an audit).
                match w
                    .strip_prefix("line ")
                    .and_then(|r| r.split_once(": "))
                    .filter(|(n, _)| n.parse::<usize>().is_ok())
                {
                    Some((n, rest)) => {
                        say!("faultline: warning: {}:{n}: {rest}", path.display())
                    }
                    None => say!("faultline: warning: {}: {w}", path.display()),
                }
            }
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out!("{}", report.render_text(errors));
            }
        }
    }
    Ok(())
}
