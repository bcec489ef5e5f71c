//! `faultline rules show|check`: print the effective ladders; validate a rules file.

use std::path::PathBuf;

use clap::Subcommand;
use faultline::rules::RuleSet;

/// Show the effective recovery rules, or check a rules file.
///
/// Rules are tried in order, first match wins; failures no rule matches use the ladder of
/// their hardware class. A rules file (TOML) extends the defaults (its rules first) or, with
/// `mode = "replace"`, replaces them; ladders it names replace only those classes.
///
/// Examples:
///
///   faultline rules show                      the defaults, as a table
///   faultline rules show --toml > my.toml     the defaults as a rules file to edit
///   faultline rules check my.toml             validate it (file, line and field on error)
///   faultline rules show --rules my.toml      the rules in effect with it
///   faultline recommend --rules my.toml < failures.jsonl
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Print the rules and the ladder of every hardware class as a table.
    ///
    /// Example:
    ///
    ///   faultline rules show --rules my.toml
    #[command(verbatim_doc_comment)]
    Show {
        /// Rules file to apply over the defaults.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Print the default rules file (TOML) instead, as a starting point for your own
        /// (not with --rules, which it would not show).
        #[arg(long, conflicts_with = "rules")]
        toml: bool,
    },
    /// Validate a rules file; errors name the file, line and field. Exit 0 when valid.
    ///
    /// Example:
    ///
    ///   faultline rules show --toml > my.toml && faultline rules check my.toml
    #[command(verbatim_doc_comment)]
    Check {
        /// The rules file.
        file: PathBuf,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        RulesCommand::Show { rules, toml } => {
            if toml {
                out!("{}", faultline::rules::DEFAULT_RULES_TOML);
                return Ok(());
            }
            let set = super::load_rules(rules.as_deref())?;
            out!("{}", set.render_table());
        }
        RulesCommand::Check { file } => {
            let set = RuleSet::load(&file)?;
            for w in set.warnings() {
                say!("faultline: warning: {}: {w}", file.display());
            }
            outln!(
                "{}: ok ({} rules in force, {} hardware-class ladders)",
                file.display(),
                set.rules().len(),
                faultline::HardwareClass::ALL.len()
            );
        }
    }
    Ok(())
}
