//! `faultline template`: messages → JSON lines with a stable template id and the template.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use faultline::template::{
    mine, Change, MinerState, TemplateConfig, TemplateId, TemplateMiner, TemplateParams,
};
use serde::Serialize;

/// Mine message templates: one message per stdin line → one JSON line per input line.
///
/// Each output line, in input order, is {"template_id", "template"}: a stable id (assigned when
/// the template is created, never reused) and the template text, variables as <*>.
///
/// By default lines are mined online, as they arrive: the id and the template printed are the
/// ones at the time of the line (the template may generalize later; the id stays), plus
/// "change" (created, updated, unchanged). With --final every line is read first, the miner is
/// refined (merges, closed-vocabulary splits) and each line gets its final template: better
/// groups, at the cost of reading all input before printing.
///
/// With --load, the saved miner continues: known messages keep their saved ids, and with
/// --save the counts accumulate (the saved counts plus this input's, by final template).
///
/// Examples:
///
///   printf 'GPU 3 fell off the bus\nGPU 7 fell off the bus\n' | faultline template
///   faultline template --final --save model.json < errors.txt
///   faultline template --load model.json < more-errors.txt
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Miner configuration (TOML: depth, similarity, max_children, masks, ...).
    #[arg(long, conflicts_with = "load")]
    config: Option<PathBuf>,
    /// Read every line first, then print each line's final template.
    #[arg(long = "final")]
    final_: bool,
    /// Start from a saved miner state (JSON, from --save).
    #[arg(long)]
    load: Option<PathBuf>,
    /// Refine the miner and save its state (JSON) after the last line.
    #[arg(long)]
    save: Option<PathBuf>,
}

#[derive(Serialize)]
struct Line<'a> {
    template_id: TemplateId,
    template: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    change: Option<Change>,
}

fn emit(
    out: &mut impl Write,
    id: TemplateId,
    template: &str,
    change: Option<Change>,
) -> anyhow::Result<()> {
    serde_json::to_writer(
        &mut *out,
        &Line {
            template_id: id,
            template,
            change,
        },
    )?;
    out.write_all(b"\n")?;
    Ok(())
}

fn load(path: &Path) -> anyhow::Result<TemplateMiner> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --load {}", path.display()))?;
    let state: MinerState = serde_json::from_str(&text)
        .with_context(|| format!("parsing --load {}", path.display()))?;
    TemplateMiner::from_state(state).with_context(|| format!("loading {}", path.display()))
}

fn save(miner: &TemplateMiner, path: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_string(&miner.state())?;
    // Write to a temporary name, flush it to disk, then rename: never a half-written model,
    // not even after a crash (the rename must not reach the disk before the data).
    let tmp = temp_beside(path);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(json.as_bytes())
                .and_then(|()| file.sync_all())
        })
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
        });
    if written.is_err() {
        // Nothing half-done left behind (an audit found a stray `NAME.json.tmp`).
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // Make the rename itself durable (best effort: not every platform opens directories).
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A temporary file of this process's beside `path` (`.NAME.tmp-PID`): never a file of the
/// user's.
fn temp_beside(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "miner".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// The miner parameters: the defaults, or a TOML file's, validated.
fn load_params(config: Option<&Path>) -> anyhow::Result<TemplateParams> {
    Ok(match config {
        Some(p) => TemplateConfig::from_file(p)
            .context("loading --config")?
            .check()
            .with_context(|| format!("invalid --config {}", p.display()))?,
        None => TemplateParams::default(),
    })
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let params = load_params(a.config.as_deref())?;
    let mut miner = match &a.load {
        Some(p) => load(p)?,
        None => TemplateMiner::new(params.clone()),
    };
    if let Some(p) = &a.save {
        // Before the input is read, not after: its directory must exist and be writable, and
        // it must name a file (an audit found a directory refused only after the output).
        if p.is_dir() {
            anyhow::bail!(
                "--save {}: is a directory; name the file to save the miner in (e.g. {}/miner.json)",
                p.display(),
                p.display()
            );
        }
        let tmp = temp_beside(p);
        std::fs::write(&tmp, b"")
            .and_then(|()| std::fs::remove_file(&tmp))
            .with_context(|| format!("--save {}: cannot write there", p.display()))?;
    }
    let mut input = std::io::BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut buf = Vec::new();
    let mut lines = Vec::new();
    let mut n = 0usize;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf).context("reading stdin")? == 0 {
            break;
        }
        n += 1;
        let text = String::from_utf8_lossy(&buf);
        let line = text.trim_end_matches(['\n', '\r']);
        if a.final_ {
            lines.push(line.to_string());
            continue;
        }
        let (id, change) = miner.add(line);
        let template = miner.get(id).map(|t| t.text()).unwrap_or_default();
        emit(&mut out, id, &template, Some(change))?;
        // Stream: flush whenever no more input is buffered.
        if input.buffer().is_empty() {
            out.flush()?;
        }
    }
    if a.final_ {
        let ids = if a.load.is_some() {
            // Continue a saved miner: learn, refine, then finalize each line; the saved
            // counts plus this batch's final assignment.
            miner.add_batch(&lines)
        } else {
            let (m, ids) = mine(params, &lines);
            miner = m;
            ids
        };
        for id in ids {
            let template = miner.get(id).map(|t| t.text()).unwrap_or_default();
            emit(&mut out, id, &template, None)?;
        }
    }
    out.flush()?;
    if let Some(p) = &a.save {
        if !a.final_ {
            miner.refine();
        }
        save(&miner, p)?;
        say!(
            "faultline: {} lines, {} templates saved to {}",
            n,
            miner.len(),
            p.display()
        );
    }
    Ok(())
}

/// `faultline eval templates FILE... [--config FILE] [--json]` (called from `cli/eval.rs`).
pub fn run_eval(inputs: &[PathBuf], config: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let params = load_params(config)?;
    let report = faultline::eval::templates::evaluate(inputs, &params)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", report.render_text());
    }
    Ok(())
}
