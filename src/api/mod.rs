//! The online recommendation API (tier 5): an axum router over one durable engine, for job
//! coordinators in any language (`faultline serve`).
//!
//! A failure posted to `POST /v1/failures` is classified and decided under the engine's lock
//! (microseconds), logged to the write-ahead log, and answered only after the log's group
//! fsync — outside the lock, so concurrent requests share one fsync. A `200` is therefore an
//! acknowledgement: the failure and its action survive `kill -9`. Outcomes, task states and
//! checkpoints are acknowledged the same way.
//!
//! The trained model (`faultline train`) is held behind a swappable [`Arc`]: `POST
//! /v1/admin/reload` loads the new directory off the request path and swaps it in; requests
//! in flight finish with the model they started with, so none is dropped.
//!
//! Every error is a JSON document `{"error": {"status", "code", "message", "field"}}` with the
//! right 4xx/5xx status; `field` names the offending field (`[3].error.message` in a batch)
//! when there is one. Write and admin endpoints need `Authorization: Bearer TOKEN` when a token
//! is configured.
//!
//! tokio and axum live only here and in the binary.

/// A warning of the server on standard error that never panics: a closed standard error
/// loses the text, not the server's task.
macro_rules! warn {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod error;
mod handlers;
mod metrics;
mod openapi;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

/// The longest wait between periodic flushes while they fail.
const MAX_FLUSH_BACKOFF: Duration = Duration::from_secs(60);

/// How long after a recovery from a failed write-ahead log another failure still counts as
/// the same trouble (the next recovery waits longer than the last, not 1 s again).
const RECOVERY_MEMORY: Duration = Duration::from_secs(600);

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::config::EngineConfig;
use crate::engine::{DurableState, Engine, EngineError, WorkerRegistry};
use crate::model::Timestamp;
use crate::rules::RuleSet;
use crate::store::{CompactReport, CompactScope, OpenReport, StoreOptions};
use crate::train::Model;

pub use error::ApiError;
use metrics::Metrics;

/// How to run the API.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Data directory of the history (created when missing).
    pub data: PathBuf,
    /// Model directory written by `faultline train` (none: the rule engine alone).
    pub model: Option<PathBuf>,
    /// Bearer token required on write and admin endpoints (none, or only whitespace: no
    /// authentication; leading and trailing whitespace is not part of it).
    pub token: Option<String>,
    /// Largest request body accepted, bytes.
    pub body_limit: usize,
    /// Longest a request may take before it is answered `503 timeout`.
    pub timeout: Duration,
    /// How often pending history is flushed from the WAL into Parquet parts.
    pub flush_interval: Duration,
    /// Flush sooner once this many entries are pending (two per decided failure).
    pub flush_pending: usize,
    /// How often the server merges the Parquet parts its flushes wrote, beside requests
    /// ([`CompactScope::Merge`]: today's into one more part, each earlier day's into one);
    /// `None`: never (then `POST /v1/admin/compact`, or `faultline compact` with the server
    /// stopped).
    pub compact_interval: Option<Duration>,
    /// Engine configuration.
    pub config: EngineConfig,
    /// Rules.
    pub rules: RuleSet,
    /// Store options (group commit wait, flush threshold).
    pub store: StoreOptions,
    /// Worker inventory for DIFFERENT_WORKER targets.
    pub workers: Option<PathBuf>,
    /// How far ahead of the server's clock a failure's timestamp may be: beyond it the
    /// failure is refused (400 `invalid_field`, field `timestamp`). One record dated years
    /// ahead would otherwise become the report time of pattern detection, the retry budget
    /// and the breakers, and freeze their windows until that time.
    pub max_clock_skew: Duration,
}

impl ServeOptions {
    /// Defaults for a data directory: no model, no token, 1 MiB bodies, 10 s timeout, flush
    /// every 5 minutes or at 20,000 pending entries, compaction hourly, default engine config and rules, timestamps at
    /// most 300 s ahead of the server's clock; the store's own (synchronous) flush threshold
    /// only as a backstop at a million pending entries.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        ServeOptions {
            data: data.into(),
            model: None,
            token: None,
            body_limit: 1 << 20,
            timeout: Duration::from_secs(10),
            // Each flush writes a part per table and day: every 2 s (as before) a day of
            // steady traffic made tens of thousands, and opening the history slowed to match
            // (an audit: 3,334 parts opened in 13.4 s against 1.5 s compacted). The WAL holds
            // every acknowledged record meanwhile; readers say how many they leave out.
            flush_interval: Duration::from_secs(300),
            flush_pending: 20_000,
            // A flush every 5 minutes writes 288 parts per table and day: merged hourly, a
            // partition holds at most a dozen between compactions.
            compact_interval: Some(Duration::from_secs(3600)),
            config: EngineConfig::default(),
            rules: RuleSet::defaults(),
            store: StoreOptions {
                flush_every: 1_000_000,
                ..StoreOptions::default()
            },
            workers: None,
            max_clock_skew: Duration::from_secs(300),
        }
    }
}

/// The model in use, with where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The model (none: the rule engine alone).
    pub model: Option<Model>,
    /// Its directory.
    pub dir: Option<PathBuf>,
    /// When it was loaded.
    pub loaded_at: crate::Timestamp,
}

/// Shared server state.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) engine: Mutex<Engine<DurableState>>,
    pub(crate) model: RwLock<Arc<Loaded>>,
    /// Serializes reloads (a second reload waits for the first).
    pub(crate) reloading: tokio::sync::Mutex<()>,
    pub(crate) token: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) body_limit: usize,
    pub(crate) max_clock_skew: Duration,
    pub(crate) metrics: Metrics,
    pub(crate) started: Instant,
    /// Report time as the server has followed it ([`ReportClock`]).
    pub(crate) report_clock: ReportClock,
    pub(crate) flush_interval: Duration,
    pub(crate) flush_pending: usize,
    pub(crate) fsync: AckWaiter,
    /// Serializes flushes (periodic and final) and compactions.
    pub(crate) flushing: Mutex<()>,
    /// What the latest flushes said ([`App::flush`]): `/healthz` and `/metrics` report it.
    pub(crate) flush_health: Mutex<FlushHealth>,
    pub(crate) compact_interval: Option<Duration>,
    /// What the compactions did ([`App::compact`]): `/metrics` reports it.
    pub(crate) compact_health: Mutex<CompactHealth>,
    /// The worker inventory's file, loaded again when the engine is ([`App::recover_wal`]).
    pub(crate) workers: Option<PathBuf>,
    /// The engine opened again after its write-ahead log failed ([`App::recover_wal`]).
    pub(crate) wal_recoveries: std::sync::atomic::AtomicU64,
}

/// The history's compactions while the server runs ([`App::compact`]), as `/metrics`
/// reports them.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompactHealth {
    /// Compactions that finished.
    pub(crate) runs_total: u64,
    /// Compactions that failed.
    pub(crate) failures_total: u64,
    /// Parts removed by them: merged into another, or found already merged.
    pub(crate) parts_removed_total: u64,
}

/// The history's flushes from the WAL into Parquet, as `/healthz` reports them: while the
/// latest flush failed, the server is degraded — every acknowledged record is safe in the
/// write-ahead log, but the log grows until a flush succeeds (a full or read-only disk).
#[derive(Debug, Clone, Default)]
pub(crate) struct FlushHealth {
    /// Flushes that failed since the server started.
    pub(crate) failures_total: u64,
    /// Failures in a row since the latest success.
    pub(crate) failing: u32,
    /// The latest failure's error, while no flush has succeeded since.
    pub(crate) last_error: Option<String>,
    /// When the current run of failures began (seconds since the Unix epoch).
    pub(crate) failing_since: Option<f64>,
}

/// The report time the pattern windows and breakers run on, carried forward by the server's
/// own clock while no failure comes: the latest report time seen, plus the time elapsed since
/// the server first saw it. A live feed keeps it near the wall clock; a backfill of old
/// records starts it at the backfill's latest time. It never runs backwards: a failure
/// reported a little late (behind the time carried forward) does not pull it back, so a
/// pattern that expired stays expired. Without it, `GET /v1/patterns` held still when
/// failures stopped: nothing expired until the next failure. Seeded when the server opens,
/// at the latest report time its history replayed (the downtime is not counted).
#[derive(Debug, Default)]
pub(crate) struct ReportClock(Mutex<Option<Anchor>>);

/// The engine's latest report time as last seen, and the report time carried forward from
/// `at` (the instant the anchor was set).
#[derive(Debug, Clone, Copy)]
struct Anchor {
    latest: Timestamp,
    from: Timestamp,
    at: Instant,
}

impl Anchor {
    fn now(&self) -> Timestamp {
        let us = i64::try_from(self.at.elapsed().as_micros()).unwrap_or(i64::MAX);
        Timestamp::from_micros(self.from.as_micros().saturating_add(us))
    }
}

impl ReportClock {
    /// Notes the engine's latest report time (`Engine::pattern_time`).
    pub(crate) fn seen(&self, latest: Option<Timestamp>) {
        let Some(t) = latest else { return };
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match *g {
            Some(a) if a.latest == t => {}
            prev => {
                let carried = prev.map_or(t, |a| a.now());
                *g = Some(Anchor {
                    latest: t,
                    from: t.max(carried),
                    at: Instant::now(),
                });
            }
        }
    }

    /// The report time now (see the type): the server's clock before any failure.
    pub(crate) fn now(&self, latest: Option<Timestamp>) -> Timestamp {
        if latest.is_none() {
            return Timestamp::now();
        }
        self.seen(latest);
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.map_or_else(Timestamp::now, |a| a.now())
    }
}

/// Waits for WAL fsyncs on one dedicated thread, so that request tasks never block: each
/// acknowledgement is a channel message and a oneshot reply. WAL sequence numbers increase,
/// so once one wait returns, the waits queued behind it mostly return at once (same group).
#[derive(Debug)]
pub(crate) struct AckWaiter {
    tx: std::sync::mpsc::Sender<AckJob>,
}

type AckJob = (
    crate::store::Ack,
    tokio::sync::oneshot::Sender<Result<(), crate::store::StoreError>>,
);

impl AckWaiter {
    fn start() -> Result<Self, ApiError> {
        let (tx, rx) = std::sync::mpsc::channel::<AckJob>();
        std::thread::Builder::new()
            .name("faultline-fsync".into())
            .spawn(move || {
                for (ack, done) in rx {
                    let _ = done.send(ack.wait());
                }
            })
            .map_err(|e| ApiError::Internal(format!("cannot start the fsync thread: {e}")))?;
        Ok(AckWaiter { tx })
    }

    /// Resolves once `ack`'s record is fsynced.
    pub(crate) async fn wait(&self, ack: crate::store::Ack) -> Result<(), ApiError> {
        if ack.seq().is_none() {
            return Ok(());
        }
        let (done, wait) = tokio::sync::oneshot::channel();
        self.tx
            .send((ack, done))
            .map_err(|_| ApiError::Internal("the fsync thread stopped".into()))?;
        wait.await
            .map_err(|_| ApiError::Internal("the fsync thread stopped".into()))?
            .map_err(|e| ApiError::Engine(e.into()))
    }
}

/// The API: cheap to clone (one shared state).
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) shared: Arc<Shared>,
}

impl App {
    /// Opens the history (replaying what a crash left) and loads the model. Returns the app
    /// and what opening the store found (warnings name files).
    pub fn open(opts: ServeOptions) -> Result<(App, OpenReport), ApiError> {
        let loaded = load_model(opts.model.as_deref())?;
        // The inventory before the replay, as it was while the history was written.
        let registry = opts
            .workers
            .as_deref()
            .map(WorkerRegistry::load)
            .transpose()?;
        let (mut engine, report) =
            Engine::open_with_registry(&opts.data, opts.config, opts.rules, opts.store, registry)?;
        if let Some(m) = &loaded.model {
            // The history just replayed taught the ranking more than the model's coarse
            // tables can (finer contexts, continuations, the latest outcomes): the model
            // only fills the contexts that history never met. The replay took in the seeds
            // logged before (this model's, at an earlier start): their contexts are met.
            engine.seed_ranking(&m.label(), &m.seed_contexts())?;
        }
        let report_clock = ReportClock::default();
        report_clock.seen(engine.pattern_time());
        let shared = Shared {
            engine: Mutex::new(engine),
            model: RwLock::new(Arc::new(loaded)),
            reloading: tokio::sync::Mutex::new(()),
            // Trimmed as a presented token is (an audit: a token read from a secrets file
            // with its newline, which no header can carry, locked out every client).
            token: opts
                .token
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
            timeout: opts.timeout,
            body_limit: opts.body_limit,
            max_clock_skew: opts.max_clock_skew,
            metrics: Metrics::default(),
            started: Instant::now(),
            report_clock,
            flush_interval: opts.flush_interval,
            flush_pending: opts.flush_pending.max(1),
            fsync: AckWaiter::start()?,
            flushing: Mutex::new(()),
            flush_health: Mutex::new(FlushHealth::default()),
            compact_interval: opts.compact_interval,
            compact_health: Mutex::new(CompactHealth::default()),
            workers: opts.workers,
            wal_recoveries: std::sync::atomic::AtomicU64::new(0),
        };
        Ok((
            App {
                shared: Arc::new(shared),
            },
            report,
        ))
    }

    /// The router: every endpoint, the body limit, auth, timeout, metrics and JSON errors.
    pub fn router(&self) -> Router {
        use handlers as h;
        Router::new()
            .route("/healthz", get(h::healthz))
            .route("/metrics", get(h::metrics))
            .route("/openapi.json", get(h::openapi))
            .route("/v1/failures", post(h::post_failures))
            .route("/v1/outcomes", post(h::post_outcomes))
            .route(
                "/v1/tasks/{id}/state",
                get(h::get_task_state).put(h::put_task_state),
            )
            .route("/v1/tasks/{id}/checkpoints", post(h::post_checkpoint))
            .route(
                "/v1/tasks/{id}/checkpoints/latest",
                get(h::get_latest_checkpoint),
            )
            .route("/v1/tasks/{id}/history", get(h::get_history))
            .route("/v1/patterns", get(h::get_patterns))
            .route("/v1/stats", get(h::get_stats))
            .route("/v1/admin/reload", post(h::post_reload))
            .route("/v1/admin/flush", post(h::post_flush))
            .route("/v1/admin/compact", post(h::post_compact))
            .fallback(h::not_found)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                handlers::guard,
            ))
            .layer(DefaultBodyLimit::max(self.shared.body_limit))
            .with_state(self.clone())
    }

    /// Moves everything logged so far into Parquet parts. The engine is locked only to take
    /// the pending records and to record the result; the Parquet writing runs without it, so
    /// requests go on meanwhile. Blocking: call it off the async workers.
    pub fn flush(&self) -> Result<(), ApiError> {
        let _one_at_a_time = self.history_job();
        self.flush_recorded()
    }

    /// The lock that lets one of the jobs on the history run at a time: flushes,
    /// compactions, the reopening after a failed WAL.
    fn history_job(&self) -> MutexGuard<'_, ()> {
        self.shared
            .flushing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// One flush (the caller holds [`App::history_job`]), its outcome recorded in
    /// [`FlushHealth`].
    fn flush_recorded(&self) -> Result<(), ApiError> {
        let result = self.flush_once();
        self.record_flush(&result);
        result
    }

    /// Records a flush's outcome in [`FlushHealth`].
    fn record_flush(&self, result: &Result<(), ApiError>) {
        let mut h = self
            .shared
            .flush_health
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match &result {
            Ok(()) => {
                h.failing = 0;
                h.last_error = None;
                h.failing_since = None;
            }
            Err(e) => {
                h.failures_total += 1;
                h.failing += 1;
                h.last_error = Some(e.to_string());
                h.failing_since.get_or_insert_with(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64())
                });
            }
        }
    }

    /// Flushes what is logged, then merges the history's Parquet parts (per `scope`) while
    /// requests go on: the engine is locked only to start and to end the compaction, and
    /// what is logged meanwhile waits in the WAL for the flush after it (no flush runs
    /// during a compaction, both commit through the manifest). Readers of the history
    /// beside the server (`train`, `analyze --data`) read each row at most once throughout
    /// (a part merged away under them is read again, see `reread_while_compacting`).
    /// Blocking: call it off the async workers.
    pub fn compact(&self, scope: CompactScope) -> Result<CompactReport, ApiError> {
        let _one_at_a_time = self.history_job();
        let result = self.flush_recorded().and_then(|()| {
            let job = self.engine().begin_compact(scope)?;
            // Ended whatever happens: a panic (a decoder meeting a damaged part) left the
            // store compacting for good, every later flush skipped as if nothing were pending
            // (a review).
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run()));
            self.engine().finish_compact();
            match result {
                Ok(r) => Ok(r.map_err(crate::engine::EngineError::from)?),
                Err(_) => Err(ApiError::Internal(
                    "the compaction panicked; the history is as it was or half merged, which the next compaction or open finishes".into(),
                )),
            }
        });
        let mut h = self
            .shared
            .compact_health
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match &result {
            Ok(r) => {
                h.runs_total += 1;
                h.parts_removed_total += r.parts_removed as u64;
            }
            Err(_) => h.failures_total += 1,
        }
        result
    }

    /// Once the write-ahead log failed (its disk full: every write refused since), opens the
    /// data directory again and replaces the engine with the one it replays — what a restart
    /// would do, without one: what was acknowledged is kept, and what was decided in memory
    /// for the refused writes is not (the log stays the truth). Requests are answered by the
    /// failed engine during the replay (every write refused) and wait only for the swap.
    /// `Ok(false)` when the log has not failed; an error (the disk still full) leaves the
    /// server as it was, to try again later. The worker inventory is loaded again (or the
    /// one loaded before kept, said) and the model in use seeds the new ranking, as when the
    /// server opened. Both engines are in memory during the replay.
    pub fn recover_wal(&self) -> Result<bool, ApiError> {
        let _no_flush_meanwhile = self.history_job();
        let reopener = {
            let engine = self.engine();
            if engine.wal_failure().is_none() {
                return Ok(false);
            }
            engine.reopener()?
        };
        // The replay runs without the engine's lock: requests are answered meanwhile by the
        // engine being replaced (reads as before; every write refused, its WAL failed), not
        // held up for as long as the history takes to replay (a review).
        let registry = match &self.shared.workers {
            Some(w) => match WorkerRegistry::load(w) {
                Ok(r) => Some(r),
                Err(e) => {
                    warn!(
                        "faultline serve: warning: the worker inventory {} cannot be loaded again ({e}); the one loaded before is kept",
                        w.display()
                    );
                    None
                }
            },
            None => None,
        };
        // The inventory before the replay, as at a start (the one in use when it cannot be
        // loaded again, read under the engine's lock).
        let registry = match registry {
            Some(r) => Some(r),
            None if self.shared.workers.is_some() => Some(self.engine().registry().clone()),
            None => None,
        };
        let (mut fresh, report) = reopener.open_with_registry(registry)?;
        let mut engine = self.engine();
        // The model in use now (a reload may have come meanwhile), read under the engine's
        // lock, as a reload seeds the ranking under it.
        if let Some(m) = &self.model().model {
            fresh.seed_ranking(&m.label(), &m.seed_contexts())?;
        }
        *engine = fresh;
        let latest = engine.pattern_time();
        drop(engine);
        self.shared.report_clock.seen(latest);
        for w in &report.warnings {
            warn!("faultline serve: warning: {w}");
        }
        self.shared
            .wal_recoveries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }

    /// The first day (`YYYY-MM-DD`) whose history is still being written, as the periodic
    /// compaction takes it: today by the report time ([`ReportClock`]: a backfill's latest
    /// day while one runs), or by the server's clock if that is earlier.
    fn open_day(&self) -> String {
        let latest = self.engine().pattern_time();
        let report = self.shared.report_clock.now(latest);
        report.min(Timestamp::now()).date_string()
    }

    /// The compactions' counters (see [`CompactHealth`]).
    pub(crate) fn compact_health(&self) -> CompactHealth {
        self.shared
            .compact_health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One flush, its outcome not yet recorded.
    fn flush_once(&self) -> Result<(), ApiError> {
        let Some(job) = self.engine().begin_flush()? else {
            return Ok(());
        };
        let result = job.run();
        self.engine().finish_flush(result)?;
        Ok(())
    }

    /// The latest flushes' health (see [`FlushHealth`]).
    pub(crate) fn flush_health(&self) -> FlushHealth {
        self.shared
            .flush_health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The engine, locked. A panic while it was held leaves the lock poisoned; the engine's
    /// state is updated only after each step succeeds, so serving continues.
    pub(crate) fn engine(&self) -> MutexGuard<'_, Engine<DurableState>> {
        self.shared
            .engine
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The model in use.
    pub(crate) fn model(&self) -> Arc<Loaded> {
        self.shared
            .model
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Loads a model directory (or reloads the current one) and swaps it in. Requests in
    /// flight keep the model they started with. The learned ranking keeps what it learned
    /// (from the history at start and every outcome since) and any earlier model's seed;
    /// the model's success tables seed only the contexts it has no evidence of, logged
    /// where they are taken so that a restart replays them ([`Engine::seed_ranking`]). While
    /// the write-ahead log has failed, a reload that has anything to seed is refused (the
    /// seed cannot be logged) and the model in use stays.
    ///
    /// [`Engine::seed_ranking`]: crate::engine::Engine::seed_ranking
    pub async fn reload(&self, dir: Option<PathBuf>) -> Result<Arc<Loaded>, ApiError> {
        let _one_at_a_time = self.shared.reloading.lock().await;
        let dir = dir.or_else(|| self.model().dir.clone());
        let Some(dir) = dir else {
            return Err(ApiError::Invalid {
                field: "model".into(),
                detail: "no model directory: the server was started without --model".into(),
            });
        };
        let loaded = tokio::task::spawn_blocking(move || load_model(Some(&dir)))
            .await
            .map_err(|e| ApiError::Internal(format!("reload task failed: {e}")))??;
        let loaded = Arc::new(loaded);
        {
            let mut engine = self.engine();
            if let Some(m) = &loaded.model {
                engine.seed_ranking(&m.label(), &m.seed_contexts())?;
            }
            *self
                .shared
                .model
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = loaded.clone();
        }
        self.shared.metrics.reloaded();
        Ok(loaded)
    }
}

fn load_model(dir: Option<&Path>) -> Result<Loaded, ApiError> {
    let model = match dir {
        Some(d) => Some(Model::load(d)?),
        None => None,
    };
    Ok(Loaded {
        model,
        dir: dir.map(Path::to_path_buf),
        loaded_at: crate::Timestamp::now(),
    })
}

/// Time after the stop signal, beyond the request timeout, that open connections get
/// before they are closed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves `app` on `listener` until `shutdown` resolves, then finishes the requests in flight
/// (waiting at most the request timeout and 2 s more: a connection still open then,
/// such as a client that never finished its headers, is closed) and flushes the WAL into
/// Parquet. A background task flushes every `flush_interval` and compacts every
/// `compact_interval`.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    // Flushes run on one long-lived thread (not the blocking pool): the allocator's per-thread
    // caches then stay with one thread, and RSS stays flat under load.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let flusher = {
        let app = app.clone();
        let every = app.shared.flush_interval;
        std::thread::Builder::new()
            .name("faultline-flush".into())
            .spawn(move || {
                // Flush every `flush_interval`, or sooner once `flush_pending` entries wait
                // (bounds the memory held between flushes under load).
                // After a failure (a full disk), the next try waits twice as long as the last
                // wait, up to a minute, whatever is pending: the WAL holds what was logged,
                // and a retry every tick would only repeat the error.
                let tick = every.min(Duration::from_millis(50));
                let mut last = Instant::now();
                let mut wait = every;
                let compact_every = app.shared.compact_interval;
                let mut last_compact = Instant::now();
                // After a failure of the write-ahead log, the data directory is opened again
                // 1 s later, then 2, 4... up to a minute apart until it opens (the disk freed).
                // A log that fails again within 10 minutes of a recovery (the disk still full:
                // opening may succeed where writing does not) goes on from the longer wait,
                // so a full disk does not replay the history every second.
                let mut recover_wait = Duration::from_secs(1);
                let mut failed_at: Option<Instant> = None;
                let mut recovered_at: Option<Instant> = None;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stop_rx.recv_timeout(tick)
                {
                    if app.engine().wal_failure().is_some() {
                        let since = *failed_at.get_or_insert_with(|| {
                            if recovered_at.is_none_or(|r| r.elapsed() >= RECOVERY_MEMORY) {
                                recover_wait = Duration::from_secs(1);
                            }
                            Instant::now()
                        });
                        if since.elapsed() >= recover_wait {
                            failed_at = Some(Instant::now());
                            match app.recover_wal() {
                                Ok(false) => failed_at = None,
                                Ok(true) => {
                                    warn!(
                                        "faultline serve: the write-ahead log failed; the data directory was opened again and the server takes writes again"
                                    );
                                    recover_wait = (recover_wait * 2).min(MAX_FLUSH_BACKOFF);
                                    failed_at = None;
                                    recovered_at = Some(Instant::now());
                                }
                                Err(e) => {
                                    recover_wait = (recover_wait * 2).min(MAX_FLUSH_BACKOFF);
                                    warn!(
                                        "faultline serve: warning: the write-ahead log failed, and opening the data directory again failed too (next try in {:.0} s): {e}",
                                        recover_wait.as_secs_f64()
                                    );
                                }
                            }
                        }
                        continue;
                    }
                    // Merges the parts the flushes wrote, every `compact_interval`; a failure
                    // (a full disk) waits for the next interval, the parts as they were.
                    if compact_every.is_some_and(|c| last_compact.elapsed() >= c) {
                        last_compact = Instant::now();
                        let open_from = app.open_day();
                        let done = app.compact(CompactScope::Merge { open_from });
                        for skipped in done.iter().flat_map(|r| &r.skipped) {
                            warn!("faultline serve: warning: {skipped}");
                        }
                        if let Err(e) = done {
                            warn!(
                                "faultline serve: warning: periodic compaction failed (next try in {:.1} s; every record is still in the history, a partition half merged is finished then): {e}",
                                compact_every.map_or(0.0, |c| c.as_secs_f64())
                            );
                        }
                        last = Instant::now();
                        continue;
                    }
                    let failing = wait > every;
                    let due = last.elapsed() >= wait
                        || (!failing
                            && app.engine().pending_entries() >= app.shared.flush_pending);
                    if !due {
                        continue;
                    }
                    last = Instant::now();
                    match app.flush() {
                        Ok(()) => wait = every,
                        Err(e) => {
                            wait = (wait * 2).clamp(every, MAX_FLUSH_BACKOFF.max(every));
                            warn!(
                                "faultline serve: warning: periodic flush failed (next try in {:.1} s; the WAL keeps every acknowledged record): {e}",
                                wait.as_secs_f64()
                            );
                        }
                    }
                }
            })
            .map_err(|e| ApiError::Internal(format!("cannot start the flush thread: {e}")))?
    };
    let router = app.router();
    // Requests in flight get their timeout and a little more after the stop signal; then the
    // connections still open are dropped (an audit: a client that never finished sending its
    // headers kept a stopped server alive for as long as it liked).
    let grace = app.shared.timeout + SHUTDOWN_GRACE;
    accept_loop(listener, router, app.shared.timeout, shutdown, grace).await;
    drop(stop_tx);
    let flushed = tokio::task::spawn_blocking(move || {
        let _ = flusher.join();
        app.flush()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("final flush task failed: {e}")))?;
    flushed
}

/// Accepts connections on `listener` and serves `router` on each (HTTP/1.1) until `shutdown`
/// resolves; then stops accepting, lets the open connections finish their requests in flight
/// and closes them, or closes them all once `grace` has passed.
///
/// Not `axum::serve`: it gives hyper no timer, so a connection that never finished its
/// headers (or sat idle between requests) was held open for as long as the client liked (an
/// audit: 500 such connections, one byte every few seconds each, each kept a task and a
/// socket). Here a connection has `header_timeout` to send a request's headers — the first
/// one or the next on a kept-alive connection — and is closed otherwise.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // The client gave up before it was accepted: nothing to serve.
            Err(e) if is_connection_error(&e) => continue,
            // Out of file descriptors, say: wait a little rather than spin (as axum does).
            Err(e) => {
                warn!(
                    "faultline serve: warning: cannot accept a connection (next try in 1 s): {e}"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A connection's error (a reset, a header timeout) ends that connection only.
            let _ = conn.await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            warn!(
                "faultline serve: connections still open {:.0} s after the stop signal (requests time out after {:.0} s) are closed",
                grace.as_secs_f64(),
                header_timeout.as_secs_f64()
            );
        }
    }
}

/// Whether an accept error is the client's (it reset or aborted before it was accepted).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset
    )
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::Engine(e)
    }
}

#[cfg(test)]
mod tests;
