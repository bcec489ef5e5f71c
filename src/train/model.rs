//! The trained model in memory and on disk: a directory with `manifest.json` (format version,
//! feature schema, training data range, metrics, artifacts with BLAKE3 hashes) and one JSON
//! file per artifact. Saving is atomic (temporary directory → rename; a model it replaces is
//! swapped out in one step, Linux `renameat2(RENAME_EXCHANGE)`); loading verifies every hash,
//! refuses a newer format version and dispatches older ones to their readers.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cluster::ClusterModel;
use crate::config::RankingParams;
use crate::features::{FeatureParams, FeatureSchema, Featurizer};
use crate::model::{FailureKind, FailureRecord, Timestamp};
use crate::ranking::Ranker;
use crate::store::FailureRow;
use crate::template::{MinerState, TemplateMiner};

use super::classifier::{ClassifierMetrics, TemplateClassifier};
use super::success::SuccessTables;
use super::TrainError;

/// The model directory layout this build writes; it reads this one and every older one.
/// Format 2 adds the refined success tables (`refined` in `success_rates.json`); otherwise it
/// is format 1.
pub const MODEL_FORMAT_VERSION: u32 = 2;
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The template miner's state.
pub const TEMPLATES_FILE: &str = "templates.json";
/// The learned template → kind classifier.
pub const CLASSIFIER_FILE: &str = "classifier.json";
/// The cluster model (feature parameters, scaler and centroids), `null` when none was fitted.
pub const CLUSTERS_FILE: &str = "clusters.json";
/// The success-rate tables.
pub const SUCCESS_FILE: &str = "success_rates.json";

/// The feature schema the cluster model (and its scaler) was fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSchemaInfo {
    /// Schema version (`features::FEATURE_SCHEMA_VERSION` when trained).
    pub version: u32,
    /// Column names, in order.
    pub names: Vec<String>,
    /// The featurization parameters.
    pub params: FeatureParams,
}

/// What the model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRange {
    /// The data directory, as given.
    pub data: String,
    /// Earliest failure.
    pub first: Option<Timestamp>,
    /// Latest failure.
    pub last: Option<Timestamp>,
    /// Failure rows read.
    pub failures: u64,
    /// Outcome rows read.
    pub outcomes: u64,
    /// Earliest outcome.
    pub first_outcome: Option<Timestamp>,
    /// Latest outcome.
    pub last_outcome: Option<Timestamp>,
}

/// Template-mining metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateMetrics {
    /// Live templates after refinement.
    pub templates: u64,
    /// Distinct messages.
    pub distinct_messages: u64,
    /// Share of the failures held by the 10 largest templates.
    pub top10_share: f64,
}

/// Clustering metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterMetrics {
    /// "kmeans", "dbscan", or "none".
    pub algorithm: String,
    /// Why no model was fitted, when none was.
    pub skipped: Option<String>,
    /// Rows the model was fitted on (a systematic sample over time).
    pub fitted_rows: u64,
    /// Clusters.
    pub clusters: u64,
    /// Share of every failure assigned online (in time order) to no cluster.
    pub noise_share: f64,
    /// Mean silhouette of the fit, when defined.
    pub silhouette: Option<f64>,
}

/// Success-table metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuccessMetrics {
    /// (hardware class, kind) contexts with at least one outcome.
    pub contexts: u64,
    /// (context, strategy) cells with at least one outcome.
    pub cells: u64,
    /// Outcomes counted (a sum of weights; 0, never −0, without outcomes).
    pub outcomes: f64,
    /// Successes / outcomes; None (null) without outcomes — no rate, rather than a 0 %
    /// (models written before say 0 there).
    pub success_rate: Option<f64>,
}

/// Evaluation metrics of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Template mining.
    pub templates: TemplateMetrics,
    /// The learned classifier, held out.
    pub classifier: ClassifierMetrics,
    /// Clustering.
    pub clusters: ClusterMetrics,
    /// Success-rate tables.
    pub success: SuccessMetrics,
}

/// The learned classifier, as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierInfo {
    /// "template_majority".
    pub method: String,
    /// What it is and how it is used.
    pub description: String,
}

/// One artifact file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// File name inside the model directory.
    pub file: String,
    /// BLAKE3 of its bytes, hex.
    pub blake3: String,
    /// Its size.
    pub bytes: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Layout version ([`MODEL_FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// Model name (the directory's name when trained by the CLI).
    pub name: String,
    /// When it was trained.
    pub created_at: Timestamp,
    /// The faultline version that trained it.
    pub faultline_version: String,
    /// The feature schema of the scaler and cluster model.
    pub feature_schema: FeatureSchemaInfo,
    /// The training data.
    pub data_range: DataRange,
    /// Evaluation metrics.
    pub metrics: Metrics,
    /// The learned classifier.
    pub classifier: ClassifierInfo,
    /// The artifact files with their hashes.
    pub artifacts: Vec<Artifact>,
}

/// What a model adds to one failure: its template, cluster and learned kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annotation {
    /// The template the message matches (no learning), as a decimal id.
    pub template_id: Option<String>,
    /// That template's text.
    pub template: Option<String>,
    /// The cluster the failure falls in (`None`: noise, or no cluster model).
    pub cluster: Option<i64>,
    /// The learned classifier's kind for the template, when it has one.
    pub learned_kind: Option<FailureKind>,
}

/// A trained model: template miner, learned classifier, cluster model (with its scaler) and
/// success-rate tables, plus the manifest that describes them.
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) manifest: Manifest,
    pub(crate) templates: TemplateMiner,
    pub(crate) classifier: TemplateClassifier,
    pub(crate) clusters: Option<ClusterModel>,
    pub(crate) success: SuccessTables,
    /// An empty featurizer for the cluster model's parameters (cloned per annotation).
    pub(crate) featurizer: Option<Featurizer>,
}

/// The artifacts of a format-1 directory, as stored.
struct Parts {
    templates: MinerState,
    classifier: TemplateClassifier,
    clusters: Option<ClusterModel>,
    success: SuccessTables,
}

fn io(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn encode(file: &str, v: &impl Serialize) -> Result<Vec<u8>, TrainError> {
    let mut b = serde_json::to_vec_pretty(v).map_err(|e| TrainError::Encode {
        what: file.to_string(),
        detail: e.to_string(),
    })?;
    b.push(b'\n');
    Ok(b)
}

fn artifacts(files: &[(&'static str, Vec<u8>)]) -> Vec<Artifact> {
    files
        .iter()
        .map(|(file, bytes)| Artifact {
            file: file.to_string(),
            blake3: blake3::hash(bytes).to_hex().to_string(),
            bytes: bytes.len() as u64,
        })
        .collect()
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| io(path, e))?;
    f.write_all(bytes).map_err(|e| io(path, e))?;
    f.sync_all().map_err(|e| io(path, e))
}

fn fsync_dir(dir: &Path) -> Result<(), TrainError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(dir, e))
}

impl Model {
    pub(crate) fn assemble(
        manifest: Manifest,
        templates: TemplateMiner,
        classifier: TemplateClassifier,
        clusters: Option<ClusterModel>,
        success: SuccessTables,
    ) -> Result<Model, TrainError> {
        let featurizer = clusters
            .as_ref()
            .map(|c| Featurizer::new(c.params.features.clone()))
            .transpose()?;
        Ok(Model {
            manifest,
            templates,
            classifier,
            clusters,
            success,
            featurizer,
        })
    }

    /// The artifact files' bytes, as [`Self::save`] writes them.
    fn encoded(&self) -> Result<[(&'static str, Vec<u8>); 4], TrainError> {
        Ok([
            (
                TEMPLATES_FILE,
                encode(TEMPLATES_FILE, &self.templates.state())?,
            ),
            (CLASSIFIER_FILE, encode(CLASSIFIER_FILE, &self.classifier)?),
            (CLUSTERS_FILE, encode(CLUSTERS_FILE, &self.clusters)?),
            (SUCCESS_FILE, encode(SUCCESS_FILE, &self.success)?),
        ])
    }

    /// Sets the manifest's artifact list to the hashes of the current artifacts.
    pub(crate) fn refresh_artifacts(&mut self) -> Result<(), TrainError> {
        self.manifest.artifacts = artifacts(&self.encoded()?);
        Ok(())
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The template miner (matching only: [`TemplateMiner::lookup`]).
    pub fn templates(&self) -> &TemplateMiner {
        &self.templates
    }

    /// The learned template → kind classifier.
    pub fn classifier(&self) -> &TemplateClassifier {
        &self.classifier
    }

    /// The cluster model, when one was fitted.
    pub fn clusters(&self) -> Option<&ClusterModel> {
        self.clusters.as_ref()
    }

    /// The success-rate tables.
    pub fn success_tables(&self) -> &SuccessTables {
        &self.success
    }

    /// A ranker whose coarse counts are the success tables.
    pub fn ranker(&self, params: RankingParams) -> Result<Ranker, TrainError> {
        self.success.ranker(params)
    }

    /// Seeds `ranker` with the success tables where it has no evidence of its own
    /// ([`SuccessTables::seed`]); returns the contexts seeded.
    pub fn seed_ranker(&self, ranker: &mut Ranker) -> usize {
        self.success.seed(ranker)
    }

    /// What [`Model::seed_ranker`] offers a ranker ([`SuccessTables::seed_contexts`]), to
    /// hand to an engine that logs what it takes (`Engine::seed_ranking`).
    pub fn seed_contexts(&self) -> Vec<crate::store::SeededContext> {
        self.success.seed_contexts()
    }

    /// The model as a logged seed names it: its name and when it was trained.
    pub fn label(&self) -> String {
        format!("{} ({})", self.manifest.name, self.manifest.created_at)
    }

    /// Matches a failure against the model without learning: its template (the miner's
    /// `lookup`), its cluster (featurized as a task's first failure on a worker with no
    /// history — the model keeps no per-worker state — then scaled and placed within a
    /// cluster's radius) and the learned kind of its template.
    pub fn annotate(&self, rec: &FailureRecord, kind: FailureKind) -> Annotation {
        let id = self.templates.lookup(&rec.error.message);
        let template = id.and_then(|id| self.templates.get(id)).map(|t| t.text());
        let cluster = match (&self.clusters, &self.featurizer) {
            (Some(model), Some(featurizer)) => {
                let row = FailureRow {
                    record: rec.clone(),
                    kind,
                    failure_type: kind.failure_type(),
                    classifier_rule: String::new(),
                    xid: None,
                    template_id: id.map(|t| t.get()),
                    cluster_id: None,
                };
                let mut f = featurizer.clone();
                let mut z = f.push(&row);
                // The featurizer has the model's parameters (built from them on load), so the
                // widths agree; a failure here would be a bug, reported as noise.
                match model.scaler.transform_row(&mut z) {
                    Ok(()) => model.assign_scaled(&z).map(|c| c.as_i64()),
                    Err(_) => None,
                }
            }
            _ => None,
        };
        Annotation {
            template_id: id.map(|t| t.to_string()),
            template,
            cluster,
            learned_kind: id.and_then(|t| self.classifier.kind_of(t)),
        }
    }

    /// Writes the model directory `dir` atomically: everything goes to a temporary sibling
    /// directory, is fsynced, and is renamed to `dir` (an existing model there is replaced;
    /// anything else is refused, see [`check_model_dir`]). The manifest's artifact list and
    /// hashes are rewritten to match the files.
    ///
    /// A reader of `dir` sees the old model or the new one, never neither nor a mixture: a new
    /// `dir` is one rename; an existing one is swapped with the temporary directory in one
    /// step (Linux `renameat2(RENAME_EXCHANGE)`), and the old model, now at the temporary
    /// name, is then removed (a crash before that leaves it there, hidden, and `dir` whole).
    /// Where the exchange is not available (another OS, a file system without it), the old
    /// model is moved aside and the new one renamed in: two renames, between which `dir` is
    /// briefly absent.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        check_model_dir(dir)?;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dir
            .file_name()
            .ok_or_else(|| TrainError::Invalid {
                field: "out".into(),
                detail: format!("{} has no directory name", dir.display()),
            })?
            .to_string_lossy()
            .to_string();
        std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
        let files = self.encoded()?;
        let mut manifest = self.manifest.clone();
        manifest.artifacts = artifacts(&files);
        for (file, bytes) in &files {
            write_synced(&tmp.join(file), bytes)?;
        }
        write_synced(&tmp.join(MANIFEST_FILE), &encode(MANIFEST_FILE, &manifest)?)?;
        fsync_dir(&tmp)?;
        if let Err(e) = install(&tmp, dir, &parent, &name) {
            // Best effort: the new model is not installed, and its files are of no use.
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Ok(())
    }

    /// [`load`](Self::load) of the manifest bytes read from `path` (`dir`'s manifest).
    fn load_manifest(dir: &Path, path: &Path, bytes: &[u8]) -> Result<Model, TrainError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| TrainError::Artifact {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| TrainError::Artifact {
                path: path.to_path_buf(),
                detail: "field `format_version` is missing or not a number".into(),
            })?;
        match version {
            // Format 2 only adds a field format 1 leaves out (empty when absent).
            1 | 2 => load_v1(dir, path, value),
            v if v > u64::from(MODEL_FORMAT_VERSION) => Err(TrainError::NewerFormat {
                path: path.to_path_buf(),
                found: v,
                supported: MODEL_FORMAT_VERSION,
            }),
            v => Err(TrainError::UnknownFormat {
                path: path.to_path_buf(),
                found: v,
            }),
        }
    }

    /// Reads a model directory: the manifest's `format_version` picks the reader (a version
    /// newer than [`MODEL_FORMAT_VERSION`] is refused), every artifact's BLAKE3 hash is
    /// checked, and each error names the file (and the field, for a parse error).
    ///
    /// A model replaced while it is read ([`Self::save`] swaps whole directories) may give
    /// the old manifest with the new artifacts: when reading fails and the model was
    /// replaced meanwhile (the directory at `dir` is another one, or its manifest changed),
    /// it is read again (a few times at most). A model replaced twice during one read can
    /// have the very manifest it started with, so the manifest alone does not tell.
    pub fn load(dir: &Path) -> Result<Model, TrainError> {
        let path = dir.join(MANIFEST_FILE);
        let mut seen = dir_identity(dir);
        let mut bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        for _ in 1..LOAD_ATTEMPTS {
            match Self::load_manifest(dir, &path, &bytes) {
                Ok(model) => return Ok(model),
                Err(e) => {
                    let now_seen = dir_identity(dir);
                    match std::fs::read(&path) {
                        Ok(now) if now != bytes || now_seen != seen => {
                            (bytes, seen) = (now, now_seen);
                        }
                        _ => return Err(e),
                    }
                }
            }
        }
        Self::load_manifest(dir, &path, &bytes)
    }
}

/// Attempts of [`Model::load`] at a model replaced while it is read.
const LOAD_ATTEMPTS: usize = 8;

/// Which directory is at `dir` now (device, inode and change time; `None` where unknown): every
/// [`Model::save`] puts a new directory there.
pub(super) fn dir_identity(dir: &Path) -> Option<(u64, u64, i64, i64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // With its change time: a directory made after another was removed may get its
        // inode number back.
        std::fs::metadata(dir)
            .ok()
            .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Puts the complete model directory `tmp` at `dir` (both in `parent`; `name` is `dir`'s
/// name), replacing what is there (checked by [`check_model_dir`]), and removes the old model.
fn install(tmp: &Path, dir: &Path, parent: &Path, name: &str) -> Result<(), TrainError> {
    let replaced = match std::fs::symlink_metadata(dir) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io(dir, e)),
    };
    if !replaced {
        std::fs::rename(tmp, dir).map_err(|e| io(dir, e))?;
        return fsync_dir(parent);
    }
    match exchange(tmp, dir) {
        Ok(()) => {
            // `tmp` now holds the old model.
            fsync_dir(parent)?;
            std::fs::remove_dir_all(tmp).map_err(|e| io(tmp, e))
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::Unsupported | std::io::ErrorKind::InvalidInput
            ) =>
        {
            // No atomic exchange here: a directory cannot be renamed over a non-empty one,
            // so the old model is moved aside first.
            let old = parent.join(format!(".{name}.old-{}", std::process::id()));
            std::fs::rename(dir, &old).map_err(|e| io(dir, e))?;
            if let Err(e) = std::fs::rename(tmp, dir) {
                // Best effort: put the old model back.
                let _ = std::fs::rename(&old, dir);
                return Err(io(dir, e));
            }
            fsync_dir(parent)?;
            std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))
        }
        Err(e) => Err(io(dir, e)),
    }
}

/// Swaps the directory entries `a` and `b` in one step: Linux `renameat2` with
/// `RENAME_EXCHANGE` (kernel 3.15, glibc 2.28). Fails with `ErrorKind::Unsupported` where it
/// does not exist, `InvalidInput` on a file system without it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::{c_char, c_int, c_uint, CString};
    use std::os::unix::ffi::OsStrExt;
    extern "C" {
        fn renameat2(
            olddirfd: c_int,
            oldpath: *const c_char,
            newdirfd: c_int,
            newpath: *const c_char,
            flags: c_uint,
        ) -> c_int;
    }
    /// `AT_FDCWD` of `<fcntl.h>` on Linux: paths relative to the working directory.
    const AT_FDCWD: c_int = -100;
    /// `RENAME_EXCHANGE` of `<linux/fs.h>`.
    const RENAME_EXCHANGE: c_uint = 1 << 1;
    let (a, b) = (
        CString::new(a.as_os_str().as_bytes())?,
        CString::new(b.as_os_str().as_bytes())?,
    );
    // SAFETY: renameat2 is a glibc function with this C signature; both paths are valid
    // NUL-terminated strings that outlive the call, which keeps no pointer to them.
    let rc = unsafe { renameat2(AT_FDCWD, a.as_ptr(), AT_FDCWD, b.as_ptr(), RENAME_EXCHANGE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// No atomic exchange on this platform ([`install`] falls back to two renames).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// What `faultline train` checks before it trains, so that a run that cannot end well fails
/// at once rather than after the training (an audit: a read-only models directory failed
/// after 70 s): [`check_model_dir`], then whether a directory can be created beside `dir`
/// (in `dir`'s parent, or its nearest existing ancestor when the parent does not exist yet;
/// a probe directory, removed at once). It also removes the temporaries earlier saves of
/// `dir` left behind when they were killed (`.NAME.tmp-PID` of a process no longer running:
/// a finished model never installed, or the old one after the swap), which nothing else
/// would.
pub fn prepare_model_dir(dir: &Path) -> Result<(), TrainError> {
    check_model_dir(dir)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Some(name) = dir.file_name().map(|n| n.to_string_lossy().to_string()) {
        remove_stale_temporaries(&parent, &name);
    }
    let mut at = parent.as_path();
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    // A name no earlier run left behind (a run killed between the two calls, its pid reused).
    let probe = at.join(format!(
        ".faultline-probe-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir(&probe).map_err(|e| io(&probe, e))?;
    std::fs::remove_dir(&probe).map_err(|e| io(&probe, e))
}

/// How long ago a save's temporary must have last changed before it counts as left behind.
const STALE_TEMPORARY_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes `parent/.NAME.tmp-PID` directories whose process is gone (Linux: no `/proc/PID`;
/// elsewhere nothing is removed) and that were last changed more than an hour ago: a save
/// writes its temporary within seconds, and a process of another PID namespace or host
/// sharing the directory (no `/proc/PID` here) may still be writing a fresh one (a review).
/// Best effort.
fn remove_stale_temporaries(parent: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        let Some(pid) = file.strip_prefix(&prefix) else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if pid == std::process::id().to_string() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        let old = e
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMPORARY_AGE);
        if old && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Whether [`Model::save`] may write `dir`: it does not exist, or it is an empty directory, or
/// it holds a model (a `manifest.json`), which is replaced. Anything else — a file, a data
/// directory, a folder of the user's — is refused, so that a mistyped `--out` never deletes
/// what is there.
pub fn check_model_dir(dir: &Path) -> Result<(), TrainError> {
    let refuse = |detail: String| {
        Err(TrainError::Invalid {
            field: "out".into(),
            detail,
        })
    };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(dir, e)),
        // Replacing a link would put a directory where the link was, leaving its target.
        Ok(m) if m.file_type().is_symlink() => refuse(format!(
            "{} is a symbolic link: name the model directory it points to",
            dir.display()
        )),
        Ok(m) if !m.is_dir() => refuse(format!(
            "{} exists and is not a directory: refusing to replace it with a model",
            dir.display()
        )),
        Ok(_) => {
            if dir.join(MANIFEST_FILE).is_file() {
                return check_replaced_model(dir);
            }
            let mut entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
            if entries.next().is_none() {
                return Ok(());
            }
            refuse(format!(
                "{} exists and is not a faultline model (no {MANIFEST_FILE}): refusing to replace it; name a new or empty directory, or an earlier model's",
                dir.display()
            ))
        }
    }
}

/// Whether the model in `dir` (it has a `manifest.json`) may be replaced: the manifest is a
/// faultline model's (a `format_version` no newer than this build's, an artifact list), and
/// the directory holds nothing but the manifest and its artifacts. An audit found any
/// directory with a file named `manifest.json` deleted whole — a folder of the user's, a
/// model directory someone had also used as a data directory (its `history/` and `wal/` held
/// acknowledged decisions), a newer faultline's model.
fn check_replaced_model(dir: &Path) -> Result<(), TrainError> {
    let refuse = |detail: String| {
        Err(TrainError::Invalid {
            field: "out".into(),
            detail,
        })
    };
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
    let value: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let version = value
        .as_ref()
        .and_then(|v| v.get("format_version"))
        .and_then(serde_json::Value::as_u64);
    let artifacts: Option<Vec<String>> = value
        .as_ref()
        .and_then(|v| v.get("artifacts"))
        .and_then(serde_json::Value::as_array)
        .and_then(|a| {
            a.iter()
                .map(|x| {
                    x.get("file")
                        .and_then(serde_json::Value::as_str)
                        .map(String::from)
                })
                .collect()
        });
    let (Some(version), Some(artifacts)) = (version, artifacts) else {
        return refuse(format!(
            "{} is not a faultline model's manifest (no format_version and artifact list): refusing to replace {}; name a new or empty directory, or an earlier model's",
            path.display(),
            dir.display()
        ));
    };
    if version > u64::from(MODEL_FORMAT_VERSION) {
        return refuse(format!(
            "{} holds a model of format {version}, newer than this faultline's {MODEL_FORMAT_VERSION}: refusing to replace it",
            dir.display()
        ));
    }
    let mut foreign = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let name = e.map_err(|e| io(dir, e))?.file_name();
        let name = name.to_string_lossy();
        if name != MANIFEST_FILE && !artifacts.iter().any(|a| *a == name) {
            foreign.push(name.into_owned());
        }
    }
    if !foreign.is_empty() {
        foreign.sort();
        let shown: Vec<&str> = foreign.iter().take(5).map(String::as_str).collect();
        return refuse(format!(
            "{} holds a model and also {} that {} not the model's ({}): refusing to replace it; name a new or empty directory",
            dir.display(),
            foreign.len(),
            if foreign.len() == 1 { "is" } else { "are" },
            shown.join(", ")
        ));
    }
    Ok(())
}

/// Reads and verifies one artifact listed in the manifest.
fn artifact<T: DeserializeOwned>(
    dir: &Path,
    manifest: &Manifest,
    manifest_path: &Path,
    file: &str,
) -> Result<T, TrainError> {
    let a = manifest
        .artifacts
        .iter()
        .find(|a| a.file == file)
        .ok_or_else(|| TrainError::Artifact {
            path: manifest_path.to_path_buf(),
            detail: format!("field `artifacts` does not list {file}"),
        })?;
    let path = dir.join(file);
    let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
    let found = blake3::hash(&bytes).to_hex().to_string();
    if found != a.blake3 {
        return Err(TrainError::Hash {
            path,
            expected: a.blake3.clone(),
            found,
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| TrainError::Artifact {
        path,
        detail: e.to_string(),
    })
}

/// The reader of formats 1 and 2 (2 adds the refined success tables, empty in a format-1 model).
fn load_v1(
    dir: &Path,
    manifest_path: &Path,
    value: serde_json::Value,
) -> Result<Model, TrainError> {
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| TrainError::Artifact {
        path: manifest_path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let parts = Parts {
        templates: artifact(dir, &manifest, manifest_path, TEMPLATES_FILE)?,
        classifier: artifact::<TemplateClassifier>(dir, &manifest, manifest_path, CLASSIFIER_FILE)?
            .reindex(),
        clusters: artifact(dir, &manifest, manifest_path, CLUSTERS_FILE)?,
        success: artifact(dir, &manifest, manifest_path, SUCCESS_FILE)?,
    };
    let templates =
        TemplateMiner::from_state(parts.templates).map_err(|e| TrainError::Artifact {
            path: dir.join(TEMPLATES_FILE),
            detail: e.to_string(),
        })?;
    if let Some(c) = &parts.clusters {
        c.validate().map_err(|e| TrainError::Artifact {
            path: dir.join(CLUSTERS_FILE),
            detail: e.to_string(),
        })?;
        let schema: &FeatureSchema = &c.schema;
        if schema.names != manifest.feature_schema.names
            || schema.version != manifest.feature_schema.version
        {
            return Err(TrainError::Artifact {
                path: manifest_path.to_path_buf(),
                detail: format!(
                    "field `feature_schema` does not match the schema of {CLUSTERS_FILE}"
                ),
            });
        }
    }
    Model::assemble(
        manifest,
        templates,
        parts.classifier,
        parts.clusters,
        parts.success,
    )
}

impl PartialEq for Model {
    /// Equal manifests and artifacts (the miner compared by its saved state).
    fn eq(&self, other: &Self) -> bool {
        self.manifest == other.manifest
            && self.templates.state() == other.templates.state()
            && self.classifier == other.classifier
            && self.clusters == other.clusters
            && self.success == other.success
    }
}
