//! `faultline simulate`: a seeded closed-loop fleet simulation with ground truth.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use faultline::sim::{
    self, FixedTable, JsonlSink, NullSink, PolicyKind, RunOptions, Scenario, SimError,
};

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
/// bursts, causes, true success probabilities) in a separate ground_truth.json.
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
    /// learned ranking, learning from the outcomes), fixed (a table), oracle (the ground
    /// truth's best strategy).
    #[arg(long, default_value = "rules", value_parser = parse_policy)]
    policy: PolicyKind,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Failures to simulate (tasks in flight are then finished, so the total is at least this).
    #[arg(long, default_value_t = 10_000)]
    failures: u64,
    /// Output directory for the history and the ground truth.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output format: jsonl (parquet is not available yet).
    #[arg(long, default_value = "jsonl")]
    format: String,
    /// Print the summary as one JSON document.
    #[arg(long)]
    json: bool,
    /// Rules file over the defaults, for --policy rules and learned.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Engine config file (TOML: [retry], [patterns], [breakers], [ranking]...), for --policy
    /// rules and learned; its seed and max_attempts are replaced by the run's.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Table for --policy fixed (the shape of a scenario's [fixed], at the top level);
    /// default: the scenario's [fixed] table.
    #[arg(long)]
    fixed: Option<PathBuf>,
}

fn parse_policy(s: &str) -> Result<PolicyKind, String> {
    s.parse()
}

pub fn run(a: Args) -> anyhow::Result<()> {
    match a.format.as_str() {
        "jsonl" => {}
        "parquet" => {
            return Err(SimError::Unavailable {
                what: "--format parquet".into(),
                why: "the simulator does not write the Parquet history yet; use --format jsonl \
                      (and `faultline ingest` to load it)"
                    .into(),
            }
            .into())
        }
        other => bail!("unknown --format '{other}' (expected jsonl or parquet)"),
    }
    if a.fixed.is_some() && a.policy != PolicyKind::Fixed {
        bail!("--fixed applies only to --policy fixed");
    }
    let engine_policy = matches!(a.policy, PolicyKind::Rules | PolicyKind::Learned);
    if (a.rules.is_some() || a.config.is_some()) && !engine_policy {
        bail!("--rules and --config apply only to --policy rules and learned");
    }
    let scenario = Scenario::load(&a.scenario)?;
    let rules = match &a.rules {
        Some(p) => Some(super::load_rules(Some(p))?),
        None => None,
    };
    let engine = match &a.config {
        Some(p) => Some(super::load_config(Some(p))?),
        None => None,
    };
    let fixed = match &a.fixed {
        Some(p) => Some(FixedTable::load(p)?),
        None => None,
    };
    let mut policy = sim::policy::build(a.policy, &scenario, rules, engine, fixed, a.seed)?;
    let opts = RunOptions {
        seed: a.seed,
        failures: a.failures,
    };
    let summary = match &a.out {
        Some(dir) => {
            let mut sink = JsonlSink::new(dir)?;
            sim::run(&scenario, policy.as_mut(), &opts, &mut sink)
                .with_context(|| format!("simulating into {}", dir.display()))?
        }
        None => sim::run(&scenario, policy.as_mut(), &opts, &mut NullSink)?,
    };

    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
        return Ok(());
    }
    let s = &summary;
    writeln!(
        out,
        "{} under policy {} (seed {}): {} failures of {} tasks over {:.1} simulated hours",
        s.scenario, s.policy, s.seed, s.failures, s.tasks, s.simulated_hours
    )?;
    writeln!(
        out,
        "  recovered {} ({:.1} %), escalated {}, {:.2} failures per recovered task",
        s.succeeded,
        100.0 * s.success_rate,
        s.escalations,
        s.mean_attempts_to_recovery
    )?;
    writeln!(
        out,
        "  regret per decision {:.4} (true success {:.3}, oracle agreement {:.1} %)",
        s.regret_per_decision,
        s.mean_true_success,
        100.0 * s.oracle_agreement
    )?;
    writeln!(
        out,
        "  cost {:.0} s, {:.0} device-s",
        s.cost.seconds, s.cost.device_seconds
    )?;
    let strategies: Vec<String> = s
        .strategies
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    writeln!(out, "  strategies: {}", strategies.join(", "))?;
    if let Some(dir) = &a.out {
        writeln!(
            out,
            "  wrote failures.jsonl, actions.jsonl, outcomes.jsonl, ground_truth.json, summary.json to {}",
            dir.display()
        )?;
    }
    Ok(())
}
