//! `faultline serve`: the HTTP API over a durable history.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use faultline::api::{self, App, ServeOptions};
use faultline::store::StoreOptions;

/// Serve recovery decisions over HTTP (JSON), backed by a durable history.
///
/// Coordinators POST failures and get actions back; a 200 means the failure and its action
/// are fsynced to the write-ahead log under --data, so they survive a crash. Endpoints:
///
///   POST /v1/failures                       one failure record (object) or a batch (array)
///   POST /v1/outcomes                       what happened after an action (object or array)
///   GET|PUT /v1/tasks/{id}/state            the engine's view of a task / set its state
///   POST /v1/tasks/{id}/checkpoints         store a checkpoint (any bytes)
///   GET  /v1/tasks/{id}/checkpoints/latest  the newest checkpoint that verifies
///   GET  /v1/tasks/{id}/history             recent recovery actions of a task
///   GET  /v1/patterns | /v1/stats           patterns, bad workers, counters
///   POST /v1/admin/reload                   swap in a retrained model, no request dropped
///   POST /v1/admin/flush | /v1/admin/compact  the WAL into Parquet now / merge the parts now
///   GET  /healthz | /metrics | /openapi.json
///
/// Example:
///
///   faultline serve --data /var/lib/faultline --model models/default &
///   curl -s localhost:8080/v1/failures -d '{"task_id":"t1","worker_id":"w1",
///     "hardware":{"class":"GPU"},"error":{"message":"CUDA out of memory"},
///     "task":{"config":{"batch_size":32}}}'
///
/// With --token (or FAULTLINE_TOKEN) every write and admin request needs
/// "Authorization: Bearer TOKEN". The server listens on loopback unless --addr says
/// otherwise; a non-loopback address without a token is refused. SIGINT/SIGTERM stop it
/// gracefully: requests in flight finish, then the WAL is flushed into Parquet.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Data directory of the history (created when missing).
    #[arg(long)]
    data: PathBuf,
    /// Model directory written by `faultline train` (default: none). Each decision's answer
    /// is annotated with the failure's template, cluster and learned kind; with the learned
    /// ranking on (`[ranking] enabled = true` in --config) the model's success tables also
    /// seed it where the history has no evidence.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Bearer token for write and admin endpoints (leading and trailing whitespace, such as
    /// a secrets file's newline, is not part of it).
    #[arg(long, env = "FAULTLINE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Largest request body, bytes (at least 1).
    #[arg(long, default_value_t = 1 << 20)]
    body_limit: usize,
    /// Request timeout, seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Seconds between flushes of the WAL into Parquet parts (they run beside requests).
    /// Each flush writes a part per table and day, which the periodic compaction merges
    /// (--compact-interval); the WAL keeps every acknowledged record in between.
    #[arg(long, default_value_t = 300.0)]
    flush_interval: f64,
    /// Seconds between compactions, which merge the Parquet parts the flushes wrote, beside
    /// requests: today's parts flushed since the last compaction into one, each earlier day
    /// with more than one part into one; 0 turns them off. `POST /v1/admin/compact`
    /// compacts now, every day into one part, reading every part, as `faultline compact`
    /// does with the server stopped.
    #[arg(long, default_value_t = 3600.0)]
    compact_interval: f64,
    /// Flush sooner once this many history entries are pending (two per decided failure).
    #[arg(long, default_value_t = 20_000)]
    flush_pending: usize,
    /// Longest a group commit waits for more writers before fsync, milliseconds (≤ 5).
    #[arg(long, default_value_t = 2.0)]
    group_wait_ms: f64,
    /// Engine config (TOML).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Rules file (TOML).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Worker inventory (JSON), for DIFFERENT_WORKER targets.
    #[arg(long)]
    workers: Option<PathBuf>,
    /// Worker threads of the async runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Seconds a failure's timestamp may be ahead of this server's clock; a failure dated
    /// further ahead is refused (400, field `timestamp`): its time would become the report
    /// time of pattern detection, the retry budget and the breakers.
    #[arg(long, default_value_t = 300.0)]
    max_clock_skew: f64,
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(a: Args) -> anyhow::Result<()> {
    if !a.addr.ip().is_loopback() && a.token.as_deref().is_none_or(|t| t.trim().is_empty()) {
        bail!(
            "refusing to listen on {} without a token: pass --token (or FAULTLINE_TOKEN), or use a loopback address",
            a.addr
        );
    }
    let secs = |v: f64, name: &str| -> anyhow::Result<Duration> {
        // `try_`: a value too large for a `Duration` is refused, not a panic.
        match Duration::try_from_secs_f64(v) {
            Ok(d) if v > 0.0 => Ok(d),
            _ => bail!("--{name} must be a positive number of seconds, got {v}"),
        }
    };
    if a.body_limit == 0 {
        // Every request with a body would be answered 413.
        bail!("--body-limit must be at least 1 byte, got 0: every request with a body would be refused");
    }
    if !(0.0..=5.0).contains(&a.group_wait_ms) {
        bail!(
            "--group-wait-ms must be within 0..=5, got {}",
            a.group_wait_ms
        );
    }
    if let Some(m) = &a.model {
        // Said here, not as a failure to open the data directory.
        if !m.join(faultline::train::MANIFEST_FILE).is_file() {
            bail!(
                "--model {}: not a model directory (no {}; write one with `faultline train`)",
                m.display(),
                faultline::train::MANIFEST_FILE
            );
        }
    }
    let mut opts = ServeOptions::new(&a.data);
    opts.config = super::load_config(a.config.as_deref())?;
    if a.model.is_some() && !opts.config.ranking.enabled {
        say!(
            "faultline serve: note: the learned ranking is off, so the model only annotates answers; its success tables seed the ranking with [ranking] enabled = true (--config)"
        );
    }
    opts.model = a.model.clone();
    opts.token = a.token;
    opts.body_limit = a.body_limit;
    opts.timeout = secs(a.timeout, "timeout")?;
    opts.flush_interval = secs(a.flush_interval, "flush-interval")?;
    opts.flush_pending = a.flush_pending.max(1);
    opts.compact_interval = if a.compact_interval == 0.0 {
        None
    } else {
        Some(secs(a.compact_interval, "compact-interval").map_err(|_| {
            anyhow::anyhow!(
                "--compact-interval must be a positive number of seconds, or 0 for never, got {}",
                a.compact_interval
            )
        })?)
    };
    opts.rules = super::load_rules(a.rules.as_deref())?;
    opts.workers = a.workers;
    opts.max_clock_skew = Duration::try_from_secs_f64(a.max_clock_skew)
        .ok()
        .filter(|_| a.max_clock_skew <= 100.0 * 365.0 * 86_400.0)
        .with_context(|| {
            format!(
                "--max-clock-skew must be a number of seconds from 0 to 100 years, got {}",
                a.max_clock_skew
            )
        })?;
    opts.store = StoreOptions {
        group_wait: Duration::from_secs_f64(a.group_wait_ms / 1000.0),
        ..opts.store
    };
    // The model is loaded first, then the data directory opened: the context names both
    // (an audit found a bad model reported as "opening data directory ...").
    let (app, report) = App::open(opts).with_context(|| match &a.model {
        Some(m) => format!(
            "starting on data directory {} with model {}",
            a.data.display(),
            m.display()
        ),
        None => format!("opening data directory {}", a.data.display()),
    })?;
    super::print_open_warnings("faultline serve", &report.warnings);
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = a.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build().context("starting the async runtime")?;
    rt.block_on(async move {
        // The signal handlers first: a SIGTERM that arrives as soon as the address is printed
        // must stop the server gracefully, not kill it (the default action).
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(a.addr)
            .await
            .with_context(|| format!("binding {}", a.addr))?;
        let local = listener.local_addr()?;
        // On stdout for a script waiting for the address; on stderr too, for the log, unless
        // both go to the same place (a terminal, or a log taking both: `> log 2>&1`), where
        // the line would show twice.
        outln!("faultline serve: listening on http://{local}");
        if !stdout_is_stderr() {
            say!("faultline serve: listening on http://{local}");
        }
        api::serve(app, listener, shutdown).await?;
        say!("faultline serve: stopped; history flushed");
        Ok(())
    })
}

/// Whether standard output and standard error are the same file, pipe or terminal (same
/// device and inode), as in `serve > log 2>&1` or on a terminal. False when either cannot be
/// inspected.
#[cfg(unix)]
fn stdout_is_stderr() -> bool {
    use std::os::fd::{AsFd, BorrowedFd};
    use std::os::unix::fs::MetadataExt;
    let id = |fd: BorrowedFd<'_>| {
        let m = std::fs::File::from(fd.try_clone_to_owned().ok()?)
            .metadata()
            .ok()?;
        Some((m.dev(), m.ino()))
    };
    let (out, err) = (std::io::stdout(), std::io::stderr());
    matches!((id(out.as_fd()), id(err.as_fd())), (Some(a), Some(b)) if a == b)
}

/// Whether standard output and standard error are both a terminal (taken to be the same).
#[cfg(not(unix))]
fn stdout_is_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that comes before serving begins is not lost.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
