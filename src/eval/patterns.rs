//! Bad-worker detection evaluated against a simulated fleet's ground truth.
//!
//! Input: directories written by `faultline simulate --out DIR` (`failures.jsonl`, and
//! `ground_truth.json` with `workers` and `bad_workers`). The failures are replayed in order
//! through the pattern detector (the same one the engine uses), told the fleet size per class;
//! a worker counts as flagged if a bad-worker pattern named it at any refresh during the run —
//! what an operator watching the patterns would have seen. Precision and recall are against
//! the injected bad workers.

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::classify::{Classifier, ClassifyInput};
use crate::config::PatternParams;
use crate::model::{FailureRecord, FailureReport, HardwareClass, Timestamp};
use crate::patterns::{Observation, PatternDetector, PatternError};

/// Errors of the pattern evaluation.
#[derive(Debug, thiserror::Error)]
pub enum PatternEvalError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file did not parse.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 for whole-file JSON).
        line: usize,
        /// Why.
        message: String,
    },
    /// The directory is not the output of `faultline simulate` (the message says what it is
    /// instead).
    #[error("{}: {why}", dir.display())]
    NotASimulation {
        /// The directory.
        dir: PathBuf,
        /// What is missing or wrong, and what to do.
        why: String,
    },
    /// Invalid detector parameters.
    #[error(transparent)]
    Params(#[from] PatternError),
    /// The history of a `simulate --format parquet` run could not be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[derive(Deserialize)]
struct Truth {
    workers: Vec<TruthWorker>,
    bad_workers: Vec<String>,
    #[serde(default)]
    seed: Option<u64>,
    /// Each failure's worker, in `failures.jsonl`'s order (to tell that the two files are of
    /// one run).
    #[serde(default)]
    failures: Vec<TruthFailure>,
}

#[derive(Deserialize)]
struct TruthWorker {
    class: HardwareClass,
}

#[derive(Deserialize)]
struct TruthFailure {
    worker_id: String,
}

/// Result for one simulated fleet.
#[derive(Debug, Clone, Serialize)]
pub struct FleetResult {
    /// The directory.
    pub dir: String,
    /// Seed of the simulation, if recorded.
    pub seed: Option<u64>,
    /// Failures replayed.
    pub failures: usize,
    /// Workers in the fleet.
    pub workers: usize,
    /// Injected bad workers.
    pub bad: usize,
    /// Workers flagged at some point.
    pub flagged: usize,
    /// Flagged and bad.
    pub true_positives: usize,
    /// Flagged but fine.
    pub false_positives: Vec<String>,
    /// Bad but never flagged.
    pub missed: Vec<String>,
    /// tp / flagged; `None` (JSON `null`, `-` in the text table) when nothing was flagged,
    /// where precision is undefined (an audit found 1.0 there, claiming a perfect detector on
    /// a fleet that gave it nothing to find).
    pub precision: Option<f64>,
    /// tp / bad; `None` when no worker was bad.
    pub recall: Option<f64>,
}

/// Results over several fleets.
#[derive(Debug, Clone, Serialize)]
pub struct PatternReport {
    /// Per fleet.
    pub fleets: Vec<FleetResult>,
    /// Precision over all fleets pooled (`None` when nothing was flagged).
    pub precision: Option<f64>,
    /// Recall over all fleets pooled (`None` when no worker was bad).
    pub recall: Option<f64>,
}

/// `a / b`, undefined (`None`) for `b == 0`.
fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// A ratio for the text table: three decimals, `-` when undefined.
fn cell(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"))
}

/// Evaluates one simulation output directory.
pub fn evaluate_dir(dir: &Path, params: &PatternParams) -> Result<FleetResult, PatternEvalError> {
    let truth_path = dir.join("ground_truth.json");
    // What the directory is when it is not a JSONL simulation (an audit found only "cannot
    // read .../failures.jsonl" for a Parquet one).
    let not_sim = |why: &str| PatternEvalError::NotASimulation {
        dir: dir.to_path_buf(),
        why: why.into(),
    };
    if !dir.exists() {
        return Err(not_sim("no such directory"));
    }
    if !dir.is_dir() {
        return Err(not_sim(
            "not a directory: eval patterns reads `faultline simulate --out DIR` directories",
        ));
    }
    if !truth_path.is_file() {
        return Err(not_sim(
            "no ground_truth.json: eval patterns scores bad-worker detection against the ground truth of a `faultline simulate --out DIR` run",
        ));
    }
    if let Some(marker) = crate::model::simulation_replacing(dir) {
        return Err(not_sim(&format!(
            "a `faultline simulate` run into it was interrupted while replacing its files ({} is there), so they may be of two runs; run the simulation again",
            marker.display()
        )));
    }
    // A `simulate --format parquet` run is a data directory: its failures are read from the
    // committed history (an audit: such runs, the ones `train` and `eval ranking` read, were
    // refused and had to be simulated again).
    let parquet = !dir.join("failures.jsonl").is_file() && dir.join("history").is_dir();
    let text = std::fs::read_to_string(&truth_path).map_err(|source| PatternEvalError::Io {
        path: truth_path.clone(),
        source,
    })?;
    let truth: Truth = serde_json::from_str(&text).map_err(|e| PatternEvalError::Parse {
        path: truth_path.clone(),
        line: e.line(),
        message: e.to_string(),
    })?;
    let mut fleet: HashMap<HardwareClass, usize> = HashMap::new();
    for w in &truth.workers {
        *fleet.entry(w.class).or_default() += 1;
    }
    let mut det = PatternDetector::new(params.clone())?;
    det.set_fleet(fleet);
    let classifier = Classifier::new();
    let path = dir.join("failures.jsonl");
    // The failure records in log order, each with where it was read (for errors).
    let records: Box<dyn Iterator<Item = Result<(String, FailureRecord), PatternEvalError>>> =
        if parquet {
            let flushed = crate::store::flushed_seq(dir)?;
            let rows = crate::store::committed_rows(dir, crate::store::Table::Failures, flushed)?;
            Box::new(rows.into_iter().filter_map(|(seq, e)| match e {
                crate::store::Entry::Failure(f) => {
                    Some(Ok((format!("history record {seq}"), f.record)))
                }
                _ => None,
            }))
        } else {
            let file = std::fs::File::open(&path).map_err(|source| PatternEvalError::Io {
                path: path.clone(),
                source,
            })?;
            let path = path.clone();
            Box::new(
                std::io::BufReader::new(file)
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
                    .map(move |(i, line)| {
                        let line = line.map_err(|source| PatternEvalError::Io {
                            path: path.clone(),
                            source,
                        })?;
                        let bad_line = |message: String| PatternEvalError::Parse {
                            path: path.clone(),
                            line: i + 1,
                            message,
                        };
                        let report: FailureReport =
                            serde_json::from_str(&line).map_err(|e| bad_line(e.to_string()))?;
                        let rec = report
                            .check(Timestamp::from_micros(0))
                            .map_err(|e| bad_line(e.to_string()))?;
                        Ok((format!("failures.jsonl line {}", i + 1), rec))
                    }),
            )
        };
    let mut flagged: BTreeSet<String> = BTreeSet::new();
    let mut last_refresh = i64::MIN;
    let mut since = 0u32;
    let mut n = 0;
    for read in records {
        let (at, rec) = read?;
        // The ground truth of another run (another seed, another scenario) would score
        // nonsense: its failures are checked against these, worker by worker (audit).
        if let Some(t) = truth.failures.get(n) {
            if t.worker_id != rec.worker_id.as_str() {
                return Err(not_sim(&format!(
                    "{at} is on worker {} but ground_truth.json's failure {n} on {}: the two are not of one run",
                    rec.worker_id,
                    t.worker_id
                )));
            }
        }
        let kind = classifier.classify(&ClassifyInput::of_record(&rec)).kind;
        det.observe(&Observation {
            task: &rec.task_id,
            worker: &rec.worker_id,
            class: rec.hardware.class,
            kind,
            template: None,
            at: rec.timestamp,
        });
        n += 1;
        let now = rec.timestamp.as_micros();
        since += 1;
        if params.refresh_due(since, now.saturating_sub(last_refresh)) {
            since = 0;
            det.prune();
            flagged.extend(det.bad_workers(rec.timestamp).iter().map(|w| w.to_string()));
            last_refresh = now;
        }
    }
    // A log cut short (or run on) scores a fleet it does not hold (an audit: 5 of 502
    // failures scored "recall 0.000" without a word).
    // (A ground truth of an older version lists no failures: nothing to compare.)
    if !truth.failures.is_empty() && n != truth.failures.len() {
        return Err(not_sim(&format!(
            "{} holds {n} failures but ground_truth.json {}: the log is cut short or not of this run",
            if parquet { "the history" } else { "failures.jsonl" },
            truth.failures.len()
        )));
    }
    let bad: BTreeSet<String> = truth.bad_workers.iter().cloned().collect();
    let tp = flagged.intersection(&bad).count();
    Ok(FleetResult {
        dir: dir.display().to_string(),
        seed: truth.seed,
        failures: n,
        workers: truth.workers.len(),
        bad: bad.len(),
        flagged: flagged.len(),
        true_positives: tp,
        false_positives: flagged.difference(&bad).cloned().collect(),
        missed: bad.difference(&flagged).cloned().collect(),
        precision: ratio(tp, flagged.len()),
        recall: ratio(tp, bad.len()),
    })
}

/// Evaluates several directories and pools the counts.
pub fn evaluate_dirs(
    dirs: &[PathBuf],
    params: &PatternParams,
) -> Result<PatternReport, PatternEvalError> {
    let fleets = dirs
        .iter()
        .map(|d| evaluate_dir(d, params))
        .collect::<Result<Vec<_>, _>>()?;
    let tp: usize = fleets.iter().map(|f| f.true_positives).sum();
    let flagged: usize = fleets.iter().map(|f| f.flagged).sum();
    let bad: usize = fleets.iter().map(|f| f.bad).sum();
    Ok(PatternReport {
        fleets,
        precision: ratio(tp, flagged),
        recall: ratio(tp, bad),
    })
}

impl PatternReport {
    /// An aligned text table.
    pub fn render_text(&self) -> String {
        let mut out = String::from("fleet                              seed  failures  workers  bad  flagged  tp  precision  recall\n");
        for f in &self.fleets {
            let name = Path::new(&f.dir)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push_str(&format!(
                "{:<34} {:>5} {:>9} {:>8} {:>4} {:>8} {:>3} {:>10} {:>7}\n",
                name,
                f.seed.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                f.failures,
                f.workers,
                f.bad,
                f.flagged,
                f.true_positives,
                cell(f.precision),
                cell(f.recall)
            ));
        }
        let precision = match self.precision {
            None => "- (nothing flagged)".to_string(),
            p => cell(p),
        };
        let recall = match self.recall {
            None => "- (no bad worker)".to_string(),
            r => cell(r),
        };
        out.push_str(&format!("pooled precision {precision}, recall {recall}\n"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(flagged: usize, tp: usize, bad: usize) -> FleetResult {
        FleetResult {
            dir: "runs/sim-1".into(),
            seed: Some(1),
            failures: 300,
            workers: 20,
            bad,
            flagged,
            true_positives: tp,
            false_positives: Vec::new(),
            missed: Vec::new(),
            precision: ratio(tp, flagged),
            recall: ratio(tp, bad),
        }
    }

    /// Regression (CLI audit): a fleet where nothing was flagged and nothing was bad got
    /// precision and recall 1.0 in `--json` — a perfect score for a detector never tested.
    #[test]
    fn undefined_precision_and_recall_are_null_not_one() {
        let report = PatternReport {
            fleets: vec![fleet(0, 0, 0)],
            precision: ratio(0, 0),
            recall: ratio(0, 0),
        };
        let v = serde_json::to_value(&report).unwrap();
        assert!(v["precision"].is_null(), "{v}");
        assert!(v["recall"].is_null(), "{v}");
        assert!(v["fleets"][0]["precision"].is_null(), "{v}");
        assert!(v["fleets"][0]["recall"].is_null(), "{v}");
        let text = report.render_text();
        assert!(
            text.contains("pooled precision - (nothing flagged), recall - (no bad worker)"),
            "{text}"
        );
        let row = text.lines().nth(1).unwrap();
        assert!(row.trim_end().ends_with("-       -"), "{row}");
    }

    #[test]
    fn defined_ratios_are_numbers() {
        let report = PatternReport {
            fleets: vec![fleet(4, 3, 6)],
            precision: ratio(3, 4),
            recall: ratio(3, 6),
        };
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["precision"], 0.75);
        assert_eq!(v["fleets"][0]["recall"], 0.5);
        let text = report.render_text();
        assert!(
            text.contains("pooled precision 0.750, recall 0.500"),
            "{text}"
        );
        assert!(
            text.lines().nth(1).unwrap().ends_with("0.750   0.500"),
            "{text}"
        );
    }
}
