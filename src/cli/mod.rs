//! Command-line verbs (clap derive). Every verb is a file with its `Args` and `run()`.

/// `print!` to stdout that returns the write error with `?` instead of panicking: a reader
/// that closes the pipe early (`| head`) ends the command quietly (see `main`), not with a
/// panic. Every verb writes its results through this or [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// `println!` that returns the write error with `?` (see [`out!`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod analyze;
mod classify;
mod compact;
mod eval;
mod ingest;
mod recommend;
mod rules;
mod serve;
mod simulate;
mod template;
mod train;

use std::path::Path;

use anyhow::Context;
use clap::{Parser, Subcommand};
use faultline::config::EngineConfig;
use faultline::rules::RuleSet;

/// faultline: decide what to do about failing ML jobs on CPUs, GPUs, TPUs, NPUs and browsers.
///
/// Give it a failure (a message, a worker, a task config) and it classifies the failure,
/// walks the recovery ladder for its hardware class and kind, and answers with an action:
/// retry with backoff, another worker, a smaller batch, lower precision, CPU fallback, a
/// browser restart, or a human.
#[derive(Debug, Parser)]
#[command(
    name = "faultline",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Recommend(recommend::Args),
    Classify(classify::Args),
    Rules(rules::Args),
    Eval(eval::Args),
    Ingest(ingest::Args),
    Compact(compact::Args),
    Simulate(simulate::Args),
    Template(template::Args),
    Analyze(analyze::Args),
    Train(train::Args),
    Serve(serve::Args),
}

impl Cli {
    /// Parses the process's arguments (exits with clap's usage error on bad ones). A negative
    /// number is read as a value everywhere, so `--failures -5` says the value is invalid
    /// rather than that `-5` is an unknown flag.
    pub fn parse_args() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        fn negatives(c: clap::Command) -> clap::Command {
            c.allow_negative_numbers(true).mut_subcommands(negatives)
        }
        let matches = negatives(Cli::command()).get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// Whether the verb moves whole inputs through memory in batches (ingest, analyze).
    pub fn is_bulk(&self) -> bool {
        matches!(self.command, Command::Ingest(_) | Command::Analyze(_))
    }
}

/// Runs the chosen verb.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Recommend(a) => recommend::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Rules(a) => rules::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Ingest(a) => ingest::run(a),
        Command::Compact(a) => compact::run(a),
        Command::Simulate(a) => simulate::run(a),
        Command::Template(a) => template::run(a),
        Command::Analyze(a) => analyze::run(a),
        Command::Train(a) => train::run(a),
        Command::Serve(a) => serve::run(a),
    }
}

/// Records in the write-ahead log of the data directory `data` not yet flushed into its
/// Parquet parts (which is all `train` and `analyze --data` read); 0 when it cannot tell.
fn unflushed_records(data: &Path) -> usize {
    use faultline::store::{flushed_seq, unflushed_logged};
    flushed_seq(data)
        .and_then(|flushed| unflushed_logged(data, flushed))
        .map_or(0, |(records, _)| records.len())
}

/// What an error adds when every record of standard input was rejected and no `--format`
/// was given: standard input is read as JSON lines (an audit: a kernel log piped in gave a
/// page of "invalid JSON" and no hint).
fn stdin_format_hint<F>(format: Option<F>, inputs: &[std::path::PathBuf]) -> &'static str {
    if format.is_none() && inputs.iter().any(|p| p.as_os_str() == "-") {
        " (standard input is read as JSON lines: --format kernel, csv or tsv reads another format)"
    } else {
        ""
    }
}

/// Warns when `--map` was given but no input read is CSV or TSV, the only formats with
/// columns to map (an audit: a mapping given for JSON lines was ignored without a word).
fn warn_unused_map<M>(
    map: Option<&M>,
    failures: &[(std::path::PathBuf, faultline::ingest::Format)],
) {
    use faultline::ingest::Format;
    if map.is_some()
        && !failures.is_empty()
        && !failures
            .iter()
            .any(|(_, f)| matches!(f, Format::Csv | Format::Tsv))
    {
        say!(
            "faultline: warning: --map is ignored: it maps CSV/TSV columns and no input is CSV or TSV (read as {})",
            failures
                .iter()
                .map(|(_, f)| f.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Warns, for a command that reads the data directory `data` without opening its store,
/// about committed rows found gone at an earlier open (`faultline compact` acknowledges
/// them).
fn warn_gone(data: &Path) {
    if let Some(w) = faultline::store::gone_warning(data) {
        say!("faultline: warning: {w}");
    }
}

/// Prints the warnings opening a data directory gave: the first 10, then how many more. A
/// repair can give one per file (an audit found 1,270 lines after an interrupted compaction,
/// before the one line the user ran the command for).
fn print_open_warnings(prefix: &str, warnings: &[String]) {
    const SHOWN: usize = 10;
    for w in warnings.iter().take(SHOWN) {
        say!("{prefix}: warning: {w}");
    }
    if warnings.len() > SHOWN {
        say!(
            "{prefix}: warning: ... and {} more like these",
            warnings.len() - SHOWN
        );
    }
}

/// Loads rules: the defaults, extended or replaced by `path` when given.
fn load_rules(path: Option<&Path>) -> anyhow::Result<RuleSet> {
    Ok(match path {
        Some(p) => RuleSet::load(p)?,
        None => RuleSet::defaults(),
    })
}

/// When `-` (standard input) is among `inputs` and standard input is a terminal, says what
/// is awaited (an audit: `analyze -` sat waiting without a word).
fn note_terminal_stdin(inputs: &[std::path::PathBuf]) {
    use std::io::IsTerminal;
    if inputs.iter().any(|p| p.as_os_str() == "-") && std::io::stdin().is_terminal() {
        say!(
            "faultline: reading failure records from the terminal (standard input, one JSON record a line; end with Ctrl-D)"
        );
    }
}

/// Loads the engine config, or the defaults. Its values are checked here, where the file is
/// known (an audit: `retry.max_attempts = 0` was refused later, by an engine that could not
/// name the file).
fn load_config(path: Option<&Path>) -> anyhow::Result<EngineConfig> {
    match path {
        Some(p) => {
            let config = EngineConfig::from_file(p).context("loading --config")?;
            faultline::engine::Engine::new(config.clone())
                .with_context(|| format!("loading --config: invalid {}", p.display()))?;
            Ok(config)
        }
        None => Ok(EngineConfig::default()),
    }
}

/// One indicatif bar per stage (hidden when not shown), and the wall time of each stage.
pub(crate) struct Bars {
    bar: Option<indicatif::ProgressBar>,
    show: bool,
    current: Option<(&'static str, std::time::Instant)>,
    /// Each finished stage's name and wall time (seconds).
    pub(crate) timings: Vec<(&'static str, f64)>,
}

impl Bars {
    /// Bars shown when `show` (a terminal, not quiet); timed either way.
    pub(crate) fn new(show: bool) -> Self {
        Bars {
            bar: None,
            show,
            current: None,
            timings: Vec::new(),
        }
    }
}

impl faultline::analyze::Progress for Bars {
    fn stage(&mut self, name: &'static str, total: u64) {
        self.finish();
        self.current = Some((name, std::time::Instant::now()));
        if !self.show {
            return;
        }
        let bar = if total == 0 {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::new(total)
        };
        let template = if name == "ingest" || name == "simulation" {
            "{prefix:>10} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta})"
        } else if total == 0 {
            "{prefix:>10} [{elapsed_precise}] {spinner}"
        } else {
            "{prefix:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})"
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_prefix(name);
        self.bar = Some(bar);
    }
    fn position(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if let Some((name, t)) = self.current.take() {
            self.timings.push((name, t.elapsed().as_secs_f64()));
        }
    }
}
