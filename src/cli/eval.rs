//! `faultline eval`: evaluation suites on labelled data.

use std::path::PathBuf;

use clap::Subcommand;

/// Evaluate faultline on labelled data.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: EvalCommand,
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Classification: per-kind precision and recall, confusion matrix, macro-F1.
    ///
    /// The TSV needs a header with `message` and `label` columns (failure kind names);
    /// `alt_label` (a second defensible kind) and `hw_class` (GPU, CPU, TPU, NPU, browser) are
    /// used when present. Example:
    ///
    ///   faultline eval classify --tsv ../shared/data/real/error_messages_dev.tsv
    #[command(verbatim_doc_comment)]
    Classify {
        /// Labelled TSV file.
        #[arg(long)]
        tsv: PathBuf,
        /// Print the report as one JSON document.
        #[arg(long)]
        json: bool,
        /// Also list every misclassified message.
        #[arg(long)]
        errors: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        EvalCommand::Classify { tsv, json, errors } => {
            let report = faultline::eval::classify::evaluate_file(&tsv)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render_text(errors));
            }
        }
    }
    Ok(())
}
