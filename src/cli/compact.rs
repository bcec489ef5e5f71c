//! `faultline compact`: merges the small Parquet parts of every partition of the history.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use faultline::store::{ParquetStore, StoreError, StoreOptions};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Merge the Parquet parts of each partition of the history into one.
///
/// Every ingest batch and every WAL flush adds parts; compaction rewrites each partition
/// (table and date) with more than one part as a single part, atomically: a crash leaves
/// either the old parts or the new one, never both counted. Running it again changes
/// nothing.
///
/// Every part is read whole on the way. A part whose data cannot be read (damaged on disk,
/// its footer intact, so opening the store lets it through; `train` then fails on it) is set
/// aside as `_NAME.parquet.corrupt`, named on stderr, and the rest of the history is compacted
/// without it; its records are no longer read (it exits 0, as a store's
/// other repairs do: the warnings name what was set aside).
///
/// A running `faultline serve` holds the directory (this command is then refused): it
/// compacts on its own every --compact-interval, or now with `POST /v1/admin/compact`.
///
/// Example:
///
///   faultline compact --data history/
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The data directory.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar (it is shown on a terminal when the parts to read hold 100,000
    /// rows or more).
    #[arg(long, short)]
    quiet: bool,
}

/// Rows to read from which a progress bar is worth showing.
const PROGRESS_MIN_ROWS: u64 = 100_000;

#[derive(Serialize)]
struct Report {
    partitions_compacted: usize,
    parts_removed: usize,
    /// Unreadable parts set aside: the error and where each went.
    set_aside: Vec<String>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    // Never create a store on a mistyped path.
    if !a.data.join("history").is_dir() {
        bail!(
            "{}: no faultline history here (no history/ directory)",
            a.data.display()
        );
    }
    let mut store = match ParquetStore::open(&a.data, StoreOptions::default()) {
        Ok(s) => s,
        // A running server compacts on its own (`--compact-interval`), or now on request.
        Err(e @ StoreError::Busy { .. }) => {
            return Err(anyhow::Error::new(e).context(format!(
                "opening the store under {} (a `faultline serve` holding it compacts the history itself every --compact-interval, or now with POST /v1/admin/compact)",
                a.data.display()
            )))
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("opening the store under {}", a.data.display())))
        }
    };
    super::print_open_warnings("faultline", &store.open_report().warnings);
    let show = !a.quiet && std::io::stderr().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let r = store
        .compact_with_progress(&mut |done, total| {
            if !show || total < PROGRESS_MIN_ROWS {
                return;
            }
            let b = bar.get_or_insert_with(|| {
                let style = ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows (eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                ProgressBar::new(total).with_style(style)
            });
            b.set_position(done);
        })
        .with_context(|| format!("compacting {}", a.data.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let (partitions, removed) = (r.partitions_compacted, r.parts_removed);
    for w in &r.set_aside {
        say!("faultline: warning: unreadable part: {w}; its records are no longer read");
    }
    if r.gone_acknowledged > 0 {
        say!(
            "faultline: note: the {} committed rows found gone at an earlier open are acknowledged: later opens no longer say so",
            r.gone_acknowledged
        );
    }
    if a.json {
        outln!(
            "{}",
            serde_json::to_string(&Report {
                partitions_compacted: partitions,
                parts_removed: removed,
                set_aside: r.set_aside.clone(),
            })?
        );
    } else {
        outln!(
            "compacted {partitions} partition{}, removed {removed} part{}",
            if partitions == 1 { "" } else { "s" },
            if removed == 1 { "" } else { "s" }
        );
        if !r.set_aside.is_empty() {
            outln!(
                "set aside {} unreadable part{} (see the warnings)",
                r.set_aside.len(),
                if r.set_aside.len() == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}
