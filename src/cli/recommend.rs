//! `faultline recommend`: one failure (flags, or JSON on stdin) → recovery action.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use faultline::engine::{Engine, Explanation, WorkerRegistry};
use faultline::store::StoreOptions;
use faultline::{
    BrowserInfo, ErrorInfo, FailureReport, HardwareClass, HardwareProfile, Precision,
    RecoveryAction, TaskConfig, TaskSpec, Timestamp,
};

/// Recommend a recovery action for a failure.
///
/// Give the failure with flags (--task, --worker, --class, --message, ...) or as a JSON
/// failure record on stdin; several records as JSON lines give one action per line, in order.
/// The minimal record is
///
///   {"task_id":"t1","worker_id":"w1","hardware":{"class":"GPU"},
///    "error":{"message":"CUDA out of memory. Tried to allocate 2.00 GiB"},
///    "task":{"config":{"batch_size":32,"precision":"fp16"}}}
///
/// The engine counts attempts per task itself. To walk a ladder across separate calls, keep
/// its state in a file with --state: each call loads it, decides, and saves it back. The
/// file keeps each task's record (attempts, ladder positions, exclusions, configuration)
/// only: the fleet-wide protections — circuit breakers, the retry budget, pattern detection,
/// flagged workers and the learned ranking — start empty in each call. Records piped
/// together in one call share them; --data keeps the whole history and rebuilds them all.
///
/// Example: repeated calls walk the OOM ladder (REDUCED_BATCH_SIZE, REDUCED_PRECISION,
/// DIFFERENT_WORKER, FALLBACK_CPU, ESCALATION):
///
///   faultline recommend --state s.json --task t1 --worker w1 --class GPU \
///     --message "CUDA out of memory" --batch-size 32 --precision fp16
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Task id (flag mode).
    #[arg(long, requires = "message")]
    task: Option<String>,
    /// Worker id (flag mode).
    #[arg(long, requires = "message")]
    worker: Option<String>,
    /// Hardware class: CPU, GPU, TPU, NPU, WEBGPU, WEBNN, DSP, FPGA, ASIC, HYBRID, UNKNOWN.
    #[arg(long, value_parser = parse_class, requires = "message")]
    class: Option<HardwareClass>,
    /// The error message; switches to flag mode: the flags are the one failure, and stdin
    /// is not read.
    #[arg(long)]
    message: Option<String>,
    /// The caller's error-type hint (used only when the message is not recognised).
    #[arg(long, requires = "message")]
    error_type: Option<String>,
    /// Process exit code.
    #[arg(long, allow_hyphen_values = true, requires = "message")]
    exit_code: Option<i32>,
    /// Device memory of the worker, GiB.
    #[arg(long, requires = "message")]
    memory_gib: Option<f64>,
    /// Browser of a WEBGPU/WEBNN worker.
    #[arg(long, requires = "message")]
    browser: Option<String>,
    /// Batch size of the task.
    #[arg(long, requires = "message")]
    batch_size: Option<u32>,
    /// Precision of the task: fp32, fp16, bf16, int8, int4...
    #[arg(long, value_parser = parse_precision, requires = "message")]
    precision: Option<Precision>,
    /// Failure time (RFC 3339 or epoch seconds); defaults to now.
    #[arg(long, requires = "message")]
    timestamp: Option<String>,
    /// Engine state file: loaded if it exists, saved after deciding. Calls on the same file
    /// take turns through a lock file beside it (`STATE.lock`, left in place).
    #[arg(long, conflicts_with = "data")]
    state: Option<PathBuf>,
    /// Durable mode: keep the whole history in this data directory (WAL + Parquet). Records
    /// are read from stdin as JSON lines and each action is printed only once it is durable,
    /// so a printed line is an acknowledgement. Restarting continues where it stopped. A bad
    /// line stops the run (exit 2, naming the line and field) after the lines before it were
    /// decided and saved: send again from the line after the last printed action. A record
    /// sent again is recognised by its timestamp (an earlier failure of its task by the same
    /// time and worker; the latest by the same time, worker and message while it has no
    /// outcome) and answered with the action already decided; one without a timestamp is
    /// taken as a new failure of its task. A timestamp before 1973 (a placeholder such as 0)
    /// is refused, as `serve` refuses it.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Durable mode: flush the WAL into Parquet parts every N records.
    #[arg(long, default_value_t = 50_000, requires = "data")]
    flush_every: usize,
    /// Rules file over the defaults (see `faultline rules show`).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Engine config file (TOML: seed, [retry], [patterns], [breakers], [ranking]; see the
    /// README's "Configuration").
    #[arg(long)]
    config: Option<PathBuf>,
    /// Trained model directory (`faultline train`): its success tables seed the learned
    /// ranking in the (class, kind) contexts the engine has no evidence of, as `serve
    /// --model` does. Needs the ranking on (`[ranking] enabled = true` in --config).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Worker inventory (JSON) so DIFFERENT_WORKER can name a worker.
    #[arg(long)]
    workers: Option<PathBuf>,
    /// Print the action as JSON (one document per input record).
    #[arg(long)]
    json: bool,
    /// Also say why: which mechanism decided (the retry limit, a rule's ladder, the learned
    /// ranking, then a circuit breaker or the retry budget) and, when the learned ranking was
    /// asked, the ladder's steps still ahead, what it knew of every strategy it could choose
    /// from — best first, its posterior chance of success, the ladder's prior, the outcomes
    /// behind it in the failure's (class, kind), fine and finest contexts — and which
    /// strategies it left out, and why. With --json each action document gains an
    /// `explanation` object (the HTTP API puts it beside `action`). The decision is the same
    /// as without it.
    #[arg(long)]
    explain: bool,
    /// Seconds a failure's timestamp may be ahead of this machine's clock; a failure dated
    /// further ahead is refused (field `timestamp`, nothing decided), as `serve` refuses it:
    /// its time would become the report time of pattern detection, the retry budget and the
    /// breakers, and hold them for every later record. A long `simulate` run is dated ahead
    /// of today; replay it with a larger value (up to 100 years, e.g. 3e9).
    #[arg(long, default_value_t = 300.0, value_parser = parse_skew)]
    max_clock_skew: f64,
}

fn parse_skew(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if (0.0..=100.0 * 365.0 * 86_400.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{s} is not a number of seconds from 0 to 100 years"
        ))
    }
}

/// `rec` unless its timestamp is more than `skew` seconds ahead of `now` (this machine's
/// clock; [`Timestamp::check_live`]'s test, without its floor of 1973: recommend also reads
/// logs); the error names the field.
fn not_ahead(
    rec: faultline::model::FailureRecord,
    now: Timestamp,
    skew: f64,
) -> anyhow::Result<faultline::model::FailureRecord> {
    if let Err(faultline::LiveTimeError::Ahead { ahead_s: ahead, .. }) =
        rec.timestamp.check_live(now, skew)
    {
        bail!(
            "field timestamp: {} is {ahead:.3} s ahead of this machine's clock ({now}); at most {skew} s is accepted (--max-clock-skew; a log dated ahead on purpose, e.g. a long simulation, needs a larger one)",
            rec.timestamp
        );
    }
    Ok(rec)
}

/// `rec` unless it is dated before 1973 (a placeholder such as `0`, not a time), for
/// `--data`, which keeps what it decides: `serve` refuses such a record, and it replays a
/// history of `recommend --data` (an audit: a record dated -5 was decided and kept, and the
/// server then answered the same record with a 400). Without `--data`, old logs are read as
/// they are.
fn durable_time(
    rec: faultline::model::FailureRecord,
) -> anyhow::Result<faultline::model::FailureRecord> {
    if rec.timestamp < Timestamp::EARLIEST_LIVE {
        bail!(
            "field timestamp: {} is before 1973: not the time of a failure (a placeholder such as 0?); --data keeps what it decides, and `serve` refuses such a time too: send the failure's own time, or leave `timestamp` out for this machine's clock",
            rec.timestamp
        );
    }
    Ok(rec)
}

fn parse_class(s: &str) -> Result<HardwareClass, String> {
    s.parse()
        .map_err(|e: faultline::ParseEnumError| e.to_string())
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse()
        .map_err(|e: faultline::ParseEnumError| e.to_string())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let config = super::load_config(a.config.as_deref())?;
    let rules = super::load_rules(a.rules.as_deref())?;
    if let Some(dir) = &a.data {
        return run_durable(&a, dir, config, rules);
    }
    let model = seed_model(&a, &config)?;
    let mut engine = Engine::with_parts(config, rules, Default::default())?;
    seed_from_model(&mut engine, model.as_ref())?;
    if let Some(w) = &a.workers {
        engine.set_registry(WorkerRegistry::load(w)?);
    }
    // The state file is read, changed and written back: calls on the same file take turns
    // (an audit found 20 concurrent calls leaving 1–2 tasks in it). The lock is held until
    // this function returns, after the save.
    // A directory is refused before its lock is made beside it (an audit: `--state /tmp`
    // left `/tmp.lock`).
    if let Some(s) = a.state.as_deref().filter(|s| s.is_dir()) {
        bail!(
            "--state {}: is a directory; the state is a file (e.g. {}/state.json)",
            s.display(),
            s.display()
        );
    }
    let _turn = a.state.as_deref().map(lock_state).transpose()?;
    if let Some(s) = &a.state {
        // An empty file (as `mktemp` makes one) is no state yet, not "EOF while parsing"
        // (an audit).
        if s.metadata().is_ok_and(|m| m.len() > 0) {
            engine.load_state(s)?;
        }
    }
    let now = Timestamp::now();

    let mut reports = Vec::new();
    if let Some(message) = &a.message {
        let (Some(task), Some(worker)) = (&a.task, &a.worker) else {
            bail!("--message needs --task and --worker");
        };
        let class = a.class.unwrap_or(HardwareClass::Unknown);
        let timestamp = match &a.timestamp {
            Some(t) => Some(Timestamp::parse(t).with_context(|| {
                format!("invalid --timestamp '{t}' (expected RFC 3339 or epoch seconds)")
            })?),
            None => None,
        };
        reports.push((
            "flags".to_string(),
            FailureReport {
                task_id: task.clone(),
                worker_id: worker.clone(),
                hardware: Some(HardwareProfile {
                    memory_gib: a.memory_gib,
                    browser: a.browser.as_ref().map(|b| BrowserInfo {
                        name: b.clone(),
                        version: None,
                    }),
                    ..HardwareProfile::of_class(class)
                }),
                platform: None,
                error: ErrorInfo {
                    message: message.clone(),
                    type_hint: a.error_type.clone(),
                    stacktrace: None,
                    exit_code: a.exit_code,
                },
                timestamp,
                task: Some(TaskSpec {
                    config: TaskConfig {
                        batch_size: a.batch_size,
                        precision: a.precision,
                        ..Default::default()
                    },
                    ..Default::default()
                }),
                attempt: None,
                seq: None,
                t_offset_s: None,
                task_is_new: None,
                template: None,
                ml_feedback: None,
            },
        ));
    } else {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            bail!("no failure given: pass --message (with --task, --worker, --class) or pipe a JSON failure record to stdin");
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stdin.lock(), &mut bytes).context("reading stdin")?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            anyhow::anyhow!(
                "stdin line {line}: not valid UTF-8 (a failure record is JSON, which is UTF-8)"
            )
        })?;
        // A byte-order mark, as Windows editors write one (audit: "invalid JSON at column 1"
        // here, where ingest and analyze accept it).
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        if text.trim().is_empty() {
            // Found by a README walk-through: an empty pipe read as "invalid JSON: EOF".
            bail!("no failure given: stdin was empty; pass --message (with --task, --worker, --class) or pipe a JSON failure record to stdin");
        }
        // One JSON document (possibly pretty-printed) or JSON lines.
        match serde_json::from_str::<FailureReport>(text) {
            // On one line, that line is named, as for JSON lines (an audit: a record's
            // checks said "(stdin)" where its schema errors said "stdin line 1").
            Ok(r) => {
                let mut lines = text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty());
                let origin = match (lines.next(), lines.next()) {
                    (Some((i, _)), None) => format!("stdin line {}", i + 1),
                    _ => "stdin".to_string(),
                };
                reports.push((origin, r))
            }
            Err(whole) => {
                let lines: Vec<_> = text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                    .collect();
                // One document over several lines (pretty-printed): its own error, not the
                // first line's "EOF while parsing". JSON text that parses, or lines none of
                // which is a JSON object alone; JSON lines otherwise, each with its own line
                // (an audit: a truncated first record of JSON lines was reported on the
                // valid second line).
                let is_object = |l: &str| {
                    matches!(
                        serde_json::from_str::<serde_json::Value>(l),
                        Ok(serde_json::Value::Object(_))
                    )
                };
                let one_document = serde_json::from_str::<serde_json::Value>(text).is_ok()
                    || (lines.len() > 1 && !lines.iter().any(|(_, l)| is_object(l)));
                if one_document {
                    bail!(
                        "invalid failure record on stdin line {}: {}",
                        whole.line(),
                        faultline::ingest::jsonl::explain(text.as_bytes())
                    );
                }
                for (i, l) in lines {
                    let r = serde_json::from_str::<FailureReport>(l).map_err(|_| {
                        anyhow::anyhow!(
                            "invalid failure record on stdin line {}: {}",
                            i + 1,
                            faultline::ingest::jsonl::explain(l.as_bytes())
                        )
                    })?;
                    reports.push((format!("stdin line {}", i + 1), r));
                }
            }
        }
        if reports.is_empty() {
            bail!("stdin held no failure record");
        }
    }

    // Every record is checked before any is decided, and the state is saved before anything
    // is printed: an invalid record changes nothing, and a reader that stops early (`| head
    // -1`) does not lose the decisions it did not read.
    // The clock again for the skew check: reading stdin may have taken a while.
    let read_at = Timestamp::now();
    feedback_note(
        reports
            .iter()
            .filter(|(_, r)| r.ml_feedback.is_some())
            .count(),
    );
    let records = reports
        .into_iter()
        .map(|(origin, report)| {
            report
                .check(now)
                .map_err(anyhow::Error::from)
                .and_then(|r| not_ahead(r, read_at, a.max_clock_skew))
                .with_context(|| format!("invalid failure record ({origin})"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut actions = Vec::with_capacity(records.len());
    for r in &records {
        actions.push(if a.explain {
            let (action, _, why) = engine.decide_explained(r)?;
            (action, Some(why))
        } else {
            (engine.handle_failure(r), None)
        });
    }
    if let Some(s) = &a.state {
        engine.save_state(s)?;
    }
    let mut out = std::io::stdout().lock();
    for (action, why) in &actions {
        print_action(&mut out, a.json, action, why.as_ref())?;
    }
    out.flush()?;
    Ok(())
}

/// Prints one action (and its explanation, with --explain) as JSON or text.
fn print_action(
    out: &mut impl Write,
    json: bool,
    action: &RecoveryAction,
    why: Option<&Explanation>,
) -> anyhow::Result<()> {
    if json {
        match why {
            Some(why) => {
                let mut doc = serde_json::to_value(action)?;
                if let Some(o) = doc.as_object_mut() {
                    o.insert("explanation".into(), serde_json::to_value(why)?);
                }
                serde_json::to_writer(&mut *out, &doc)?;
            }
            None => serde_json::to_writer(&mut *out, action)?,
        }
        writeln!(out)?;
    } else {
        write_text(out, action)?;
        if let Some(why) = why {
            write_explanation(out, action, why)?;
        }
    }
    Ok(())
}

/// The explanation as text: the summary, the ranking's context, one line per strategy it
/// could choose from (best first), what it left out and why, and a legend.
fn write_explanation(
    out: &mut impl Write,
    action: &RecoveryAction,
    why: &Explanation,
) -> std::io::Result<()> {
    use faultline::engine::probability as p3;
    writeln!(out, "  why:       {}", why.summary)?;
    let Some(r) = &why.ranking else {
        return Ok(());
    };
    let ranker = if r.ranker == "model" {
        "success model"
    } else {
        "Bayes ranker"
    };
    let ranked_as = if r.kind != action.kind {
        format!(" (ranked as {})", r.kind)
    } else {
        String::new()
    };
    writeln!(
        out,
        "  ranking:   {ranker}; {} x {}{ranked_as}; worker {}{}; {:.1} outcome(s) recorded for ({}, {})",
        r.class,
        action.kind,
        r.worker,
        if r.burst { "; in a burst" } else { "" },
        r.outcomes,
        r.class,
        r.kind
    )?;
    let mut state = Vec::new();
    if !matches!(r.worker_breaker, "closed" | "off") {
        state.push(format!("worker breaker {}", r.worker_breaker));
    }
    if !matches!(r.class_breaker, "closed" | "off") {
        state.push(format!("{} breaker {}", r.class, r.class_breaker));
    }
    if r.retry_budget_spent {
        state.push("retry budget spent".to_string());
    }
    if !state.is_empty() {
        writeln!(out, "  state:     {}", state.join("; "))?;
    }
    let ladder: Vec<String> = r
        .ladder
        .iter()
        .map(|s| {
            format!(
                "step {} {}{}",
                s.step,
                s.strategy,
                if s.possible { "" } else { " (cannot now)" }
            )
        })
        .collect();
    writeln!(
        out,
        "  ladder:    {}{}",
        if ladder.is_empty() {
            "walked".to_string()
        } else {
            ladder.join(" > ")
        },
        if r.ladder.iter().any(|s| s.possible) {
            ""
        } else {
            " (no step can be taken: the rules would escalate)"
        }
    )?;
    if !r.candidates.is_empty() {
        let attempts = r.candidates.iter().any(|c| c.expected_attempts.is_some());
        let other = r.candidates.iter().any(|c| {
            c.other_classes
                .is_some_and(|e| e.successes + e.failures > 0.05)
        });
        let bad = r.candidates.iter().any(|c| c.bad_workers.is_some());
        writeln!(out, "  ranked by {}:", r.order)?;
        writeln!(
            out,
            "    {:<34} {:>7} {:>6} {:>7}{} {:>5}  outcomes ok/failed: class x kind | fine | finest{}{}",
            "strategy (ladder step)",
            "success",
            "prior",
            "weight",
            if attempts { "  attempts" } else { "" },
            "tried",
            if other { " | other classes" } else { "" },
            if bad { " | bad workers" } else { "" },
        )?;
        let ev = |e: Option<faultline::ranking::Evidence>| {
            e.map_or("-".to_string(), |e| {
                format!("{:.1}/{:.1}", e.successes, e.failures)
            })
        };
        let next = r.ladder.iter().find(|s| s.possible).map(|s| s.step);
        for c in &r.candidates {
            let step = match c.ladder_step {
                Some(s) if Some(s) == next => format!(" (step {s}, next)"),
                Some(s) => format!(" (step {s})"),
                None => String::new(),
            };
            let mut line = format!(
                "    {:<34} {:>7} {:>6} {:>7.1}{} {:>5}  {} | {} | {}",
                format!("{}{step}", c.strategy),
                p3(c.success),
                format!("{:.2}", c.prior),
                c.weight,
                match c.expected_attempts {
                    Some(x) => format!(" {x:>9.2}"),
                    None if attempts => format!(" {:>9}", "-"),
                    None => String::new(),
                },
                c.tried,
                ev(Some(c.coarse)),
                ev(c.fine),
                ev(c.finest)
            );
            if other {
                line.push_str(&format!(" | {}", ev(c.other_classes)));
            }
            if bad {
                line.push_str(&format!(" | {}", ev(c.bad_workers)));
            }
            writeln!(out, "{line}")?;
        }
        if r.outcomes <= 0.0 && r.ranker != "model" {
            writeln!(
                out,
                "    (no outcome recorded yet for ({}, {}): the ranking abstains; what is shown is the ladder's prior and what other classes lend)",
                r.class, r.kind
            )?;
        }
    }
    if !r.left_out.is_empty() {
        let left: Vec<String> = r
            .left_out
            .iter()
            .map(|l| format!("{} ({})", l.strategy, l.reason))
            .collect();
        writeln!(out, "  left out:  {}", left.join("; "))?;
    }
    if !r.candidates.is_empty() && r.ranker == "model" {
        writeln!(
            out,
            "  legend:    success: the success model's predicted chance of success; prior: the mean the rule ladder gives it (the prediction for a strategy"
        )?;
        writeln!(
            out,
            "             the model never saw, and what one with few rows leans on); weight: the rows the model fitted the strategy on; tried: times this task used it;"
        )?;
    } else if !r.candidates.is_empty() {
        writeln!(
            out,
            "  legend:    success: posterior mean chance of success; prior: the mean the rule ladder gives it; weight: the outcomes the posterior is worth"
        )?;
        writeln!(
            out,
            "             (its prior and what coarser contexts lend it, capped, plus its own); attempts: expected attempts to recovery with it; tried: times this task used it;"
        )?;
    }
    if !r.candidates.is_empty() {
        writeln!(
            out,
            "             outcomes count older ones less (a discount); fine: the same classifier rule, repeat and worker standing; finest: also the same message shape;"
        )?;
        writeln!(
            out,
            "             other classes: this kind's outcomes on other hardware (they lend their mean); bad workers: this class's outcomes on workers called bad"
        )?;
    }
    Ok(())
}

/// The `--model` that seeds the learned ranking, checked and loaded before anything is
/// opened (an audit: refused for the ranking being off, `recommend --data` had already made
/// the data directory).
fn seed_model(
    a: &Args,
    config: &faultline::config::EngineConfig,
) -> anyhow::Result<Option<faultline::train::Model>> {
    let Some(dir) = &a.model else {
        return Ok(None);
    };
    let ranking = &config.ranking;
    if !ranking.enabled {
        bail!(
            "--model seeds the learned ranking, which is off: turn it on with `[ranking] enabled = true` in --config"
        );
    }
    if ranking.ranker != faultline::config::RankerKind::Bayes {
        bail!(
            "--model seeds the Bayes ranking; the --config sets [ranking] ranker = \"model\", which has none"
        );
    }
    let m = faultline::train::Model::load(dir)
        .with_context(|| format!("loading the model {}", dir.display()))?;
    Ok(Some(m))
}

/// Seeds the engine's learned ranking with `model` (an audit: a trained model could seed
/// `serve` and `simulate` only); logged with `--data`, so that a later call replays it where
/// it happened.
fn seed_from_model<S: faultline::engine::StateStore>(
    engine: &mut Engine<S>,
    model: Option<&faultline::train::Model>,
) -> anyhow::Result<()> {
    if let Some(m) = model {
        engine
            .seed_ranking(&m.label(), &m.seed_contexts())
            .context("logging the model's seed of the learned ranking")?;
    }
    Ok(())
}

/// An exclusive lock on `STATE.lock` beside the state file, waited for: one call at a time
/// reads, changes and writes the state.
fn lock_state(state: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let name = state
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let path = state.with_file_name(format!("{name}.lock"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the state lock {}", path.display()))?;
    f.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(f)
}

/// Durable mode: stream JSON lines from stdin through an engine opened on `dir`.
fn run_durable(
    a: &Args,
    dir: &std::path::Path,
    config: faultline::config::EngineConfig,
    rules: faultline::rules::RuleSet,
) -> anyhow::Result<()> {
    if a.message.is_some() {
        bail!("--data reads JSON lines from stdin; --message is not supported with it");
    }
    if a.flush_every == 0 {
        bail!("--flush-every 0: flush at least every record (1), or leave it out for 50,000");
    }
    // Checked before the directory is opened (and made): a refusal leaves nothing behind.
    let model = seed_model(a, &config)?;
    let opts = StoreOptions {
        flush_every: a.flush_every,
        ..Default::default()
    };
    // The inventory before the replay, as it was while the history was written (a serve
    // audit: set after it, the replayed ranking learned as if there were none).
    let registry = a.workers.as_deref().map(WorkerRegistry::load).transpose()?;
    let (mut engine, report) = Engine::open_with_registry(dir, config, rules, opts, registry)
        .with_context(|| format!("opening data directory {}", dir.display()))?;
    super::print_open_warnings("faultline", &report.warnings);
    // After the replay (which took in the seeds logged before): the model fills only the
    // contexts the history never met.
    seed_from_model(&mut engine, model.as_ref())?;
    // A reader thread feeds lines; each turn decides every line already waiting, then waits
    // for one group fsync and prints the batch: a printed line is an acknowledgement.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, std::io::Result<String>)>(4096);
    std::thread::spawn(move || {
        for (i, line) in std::io::stdin().lock().lines().enumerate() {
            if tx.send((i + 1, line)).is_err() {
                break;
            }
        }
    });
    let mut out = std::io::stdout().lock();
    let mut feedback = 0usize;
    while let Ok(first) = rx.recv() {
        let mut decided = Vec::new();
        let mut failed = None;
        for (n, line) in std::iter::once(first).chain(rx.try_iter().take(255)) {
            let result = line.context("reading stdin").and_then(|line| {
                let line = if n == 1 {
                    line.strip_prefix('\u{feff}').unwrap_or(&line).to_string()
                } else {
                    line
                };
                if line.trim().is_empty() {
                    return Ok(None);
                }
                // The field at fault is named, as in stateless mode (audit: durable mode gave
                // serde's bare "unknown field ... at line 1 column 76").
                let report: FailureReport = serde_json::from_str(&line).map_err(|_| {
                    anyhow::anyhow!(
                        "invalid failure record on stdin line {n}: {}",
                        faultline::ingest::jsonl::explain(line.as_bytes())
                    )
                })?;
                feedback += usize::from(report.ml_feedback.is_some());
                let now = Timestamp::now();
                let record = report
                    .check(now)
                    .map_err(anyhow::Error::from)
                    .and_then(|r| not_ahead(r, now, a.max_clock_skew))
                    .and_then(durable_time)
                    .with_context(|| format!("invalid failure record on stdin line {n}"))?;
                // A record sent again (same time to the microsecond, worker and message, no
                // outcome yet: a resent line) is answered with the action already decided, as
                // `serve` answers it, not counted as a second failure.
                if let Some(action) = engine.duplicate_failure(&record) {
                    let why = a.explain.then(|| Explanation::repeat(&action));
                    return Ok(Some((action, engine.logged(), why)));
                }
                if a.explain {
                    let (action, ack, why) = engine.decide_explained(&record)?;
                    return Ok(Some((action, ack, Some(why))));
                }
                let (action, ack) = engine.decide(&record)?;
                Ok(Some((action, ack, None)))
            });
            match result {
                Ok(Some(d)) => decided.push(d),
                Ok(None) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some((_, ack, _)) = decided.last() {
            ack.clone().wait()?;
        }
        for (action, _, why) in &decided {
            print_action(&mut out, a.json, action, why.as_ref())?;
        }
        out.flush()?;
        if let Some(e) = failed {
            return Err(e);
        }
    }
    engine.flush()?;
    feedback_note(feedback);
    Ok(())
}

/// Says that records' own outcomes (`ml_feedback`, as the bench stream's records carry) were
/// not learned from (an audit: replaying the stream, an operator took the ranking to have
/// learned its 10,000 outcomes; `ingest` said so, `recommend` did not).
fn feedback_note(n: usize) {
    if n > 0 {
        say!(
            "faultline: note: {n} record{} carried an outcome of {} own (ml_feedback), which recommend does not learn from: outcomes answer its own actions, reported to `faultline serve` (POST /v1/outcomes) or the library's record_outcome",
            if n == 1 { "" } else { "s" },
            if n == 1 { "its" } else { "their" }
        );
    }
}

fn write_text(out: &mut impl Write, a: &RecoveryAction) -> std::io::Result<()> {
    writeln!(
        out,
        "{}  (task {}, attempt {})",
        a.strategy, a.task_id, a.attempt
    )?;
    writeln!(
        out,
        "  kind:      {} ({}), classifier rule {}",
        a.kind, a.failure_type, a.classifier_rule
    )?;
    writeln!(out, "  decided:   {}", a.source)?;
    if let Some(t) = &a.target_worker {
        writeln!(out, "  worker:    {t}")?;
    }
    if !a.excluded_workers.is_empty() {
        let ex: Vec<&str> = a.excluded_workers.iter().map(|w| w.as_str()).collect();
        writeln!(out, "  exclude:   {}", ex.join(", "))?;
    }
    if a.delay_s > 0.0 {
        writeln!(out, "  delay:     {:.2} s", a.delay_s)?;
    }
    if let Some(c) = &a.modified_config {
        writeln!(
            out,
            "  config:    {}",
            serde_json::to_string(c).unwrap_or_default()
        )?;
    }
    if let Some(r) = &a.hardware_requirements {
        writeln!(
            out,
            "  requires:  {}",
            serde_json::to_string(r).unwrap_or_default()
        )?;
    }
    if let Some(c) = &a.resume_checkpoint {
        writeln!(out, "  resume:    checkpoint {c}")?;
    }
    if let Some(w) = &a.worker_attention {
        writeln!(out, "  attention: {} — {w}", a.failed_worker)?;
    }
    writeln!(out, "  reason:    {}", a.reason)
}
