//! The bulk ingest pipeline: reader thread → worker threads (parse, check, annotate) →
//! the calling thread (reorder, count, batch) → writer thread (sink).
//!
//! ```text
//!  sources ──► reader ──chunks──► worker 1..n ──results──► caller ──batches──► writer
//!  (files)     thread   (bounded)  parse, check,  (bounded)  input order,  (hand-off)  sink(batch)
//!                                  annotate                  bad lines
//! ```
//!
//! Every queue is bounded, so at most `2 × threads` chunks and two batches (one being
//! written, one being filled) are in memory however large the input; the writer works on
//! one batch while the workers parse the next. Results are handed on in input order
//! whatever thread parsed them, so the history's sequence numbers follow the input.
//!
//! A worker turns the accepted records of a chunk into one [`Rows`] value ([`run_rows`]:
//! e.g. the chunk's rows already in the columns they will be written as, so per-record
//! allocations are made and freed on the same thread), and the caller moves row ranges of
//! it into [`Batch`]es, cutting batches at exactly `batch_size` rows; [`run`] is the simple
//! form with one result per record.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use super::{BadLine, Chunk, IngestError, Source};
use crate::model::{FailureRecord, Timestamp};

/// Settings of [`run`].
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineOptions {
    /// Worker threads (parse, check, annotate); at least 1.
    pub threads: usize,
    /// Records per sink call.
    pub batch_size: usize,
    /// Stop at the first rejected record with [`IngestError::Strict`].
    pub strict: bool,
    /// The time given to records without one (the caller's "now").
    pub now: Timestamp,
}

impl PipelineOptions {
    /// Defaults: one worker per CPU, batches of 50 000 (two batches are in memory at once:
    /// one being written, one being filled), not strict.
    pub fn new(now: Timestamp) -> Self {
        PipelineOptions {
            threads: std::thread::available_parallelism().map_or(2, usize::from),
            batch_size: 50_000,
            strict: false,
            now,
        }
    }
}

/// Counts for one input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSummary {
    /// The input.
    pub path: PathBuf,
    /// Records read (ingested + rejected).
    pub read: u64,
    /// Records handed to the sink.
    pub ingested: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Lines holding no record (blank, kernel lines that are not failures).
    pub skipped: u64,
    /// Ingested records that carried an outcome of their own (`ml_feedback`), which is not
    /// imported: a history's outcomes answer its own recovery actions.
    pub feedback: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// Counts for the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records read (ingested + rejected).
    pub read: u64,
    /// Records handed to the sink.
    pub ingested: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Lines holding no record.
    pub skipped: u64,
    /// Ingested records that carried an outcome of their own (see [`FileSummary::feedback`]).
    pub feedback: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Sink calls.
    pub batches: u64,
    /// Per input, in the order given.
    pub files: Vec<FileSummary>,
}

struct Work {
    seq: u64,
    source: usize,
    chunk: Chunk,
}

struct Done<F> {
    seq: u64,
    source: usize,
    bytes: u64,
    skipped: u64,
    /// Accepted records that carried `ml_feedback`.
    feedback: u64,
    /// The chunk's accepted records, as rows.
    rows: F,
    /// Accepted records in `rows`.
    good: usize,
    /// Rejected records, each with the number of accepted records before it in the chunk.
    bad: Vec<(usize, BadLine)>,
}

/// What a worker thread builds from the accepted records of one chunk, in input order (one
/// row per record); the calling thread then moves the rows into batches.
pub trait Rows: Default + Send {
    /// An empty value for the worker's next chunk, made from this chunk's value before it
    /// is handed on (e.g. making room for as many rows); `Self::default()` unless
    /// overridden.
    fn next_empty(&self) -> Self {
        Self::default()
    }
}

impl<T: Send> Rows for VecDeque<T> {}

/// Where the calling thread collects rows for one sink call: a `Vec` of per-record results,
/// or e.g. the columns the rows will be written as, so that a batch holds no more than it
/// needs and per-record values never leave the worker thread that made them.
pub trait Batch<F>: Send {
    /// Moves rows `rows` of a chunk's `from` to the end of the batch. The ranges of one
    /// chunk come in order, each starting where the previous one ended.
    fn append(&mut self, from: &mut F, rows: Range<usize>);
    /// Rows held.
    fn len(&self) -> usize;
    /// Whether no row is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Send> Batch<VecDeque<T>> for Vec<T> {
    fn append(&mut self, from: &mut VecDeque<T>, rows: Range<usize>) {
        self.extend(from.drain(..rows.len()));
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

/// Reads every source, checks each report into a [`FailureRecord`] (with `opts.now` for
/// records without a time), turns it into a `T` with a per-thread worker built by
/// `make_worker` (e.g. classify and build the history row), and hands the results to
/// `sink` in input order, `opts.batch_size` at a time. Rejected records go to `on_bad` (in
/// input order) unless `opts.strict`; `on_progress` gets the bytes read so far.
///
/// A source error (I/O) or a sink error stops the run; batches already handed to the sink
/// stay with it.
pub fn run<T, W, MW, S, E, B, P>(
    sources: Vec<Box<dyn Source>>,
    opts: &PipelineOptions,
    make_worker: MW,
    sink: S,
    on_bad: B,
    on_progress: P,
) -> Result<Summary, IngestError>
where
    T: Send,
    MW: Fn() -> W + Sync,
    W: FnMut(FailureRecord) -> T,
    S: FnMut(Vec<T>) -> Result<(), E> + Send,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: FnMut(&BadLine),
    P: FnMut(u64),
{
    let capacity = opts.batch_size.clamp(1, 1 << 16);
    run_rows(
        sources,
        opts,
        || {
            let mut annotate = make_worker();
            move |r: FailureRecord, rows: &mut VecDeque<T>| rows.push_back(annotate(r))
        },
        || Vec::with_capacity(capacity),
        sink,
        on_bad,
        on_progress,
    )
}

/// [`run`] where each worker thread adds the accepted records of a chunk to one [`Rows`]
/// value (`add(record, &mut rows)` must add exactly one row), and the calling thread moves
/// them, in input order, into batches made by `new_batch` (see [`Batch`]), handing a batch
/// to `sink` once it holds `opts.batch_size` rows.
pub fn run_rows<F, W, MW, Bt, NB, S, E, B, P>(
    sources: Vec<Box<dyn Source>>,
    opts: &PipelineOptions,
    make_worker: MW,
    new_batch: NB,
    mut sink: S,
    mut on_bad: B,
    mut on_progress: P,
) -> Result<Summary, IngestError>
where
    F: Rows,
    MW: Fn() -> W + Sync,
    W: FnMut(FailureRecord, &mut F),
    Bt: Batch<F>,
    NB: FnMut() -> Bt,
    S: FnMut(Bt) -> Result<(), E> + Send,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: FnMut(&BadLine),
    P: FnMut(u64),
{
    let threads = opts.threads.max(1);
    let mut summary = Summary {
        files: sources
            .iter()
            .map(|s| FileSummary {
                path: s.path().to_path_buf(),
                ..FileSummary::default()
            })
            .collect(),
        ..Summary::default()
    };
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = sync_channel::<Work>(threads * 2);
        let (done_tx, done_rx) = sync_channel::<Done<F>>(threads * 2);
        let stop = &stop;
        let reader = scope.spawn(move || -> Result<(), IngestError> {
            let mut seq = 0;
            for (source, mut src) in sources.into_iter().enumerate() {
                while !stop.load(Ordering::Relaxed) {
                    let Some(chunk) = src.next_chunk()? else {
                        break;
                    };
                    if work_tx.send(Work { seq, source, chunk }).is_err() {
                        return Ok(()); // the workers are gone: the run stopped
                    }
                    seq += 1;
                }
            }
            Ok(())
        });
        // The receiver is shared by the workers and dropped with the last of them, which
        // releases a reader blocked on a full queue when the run stops early.
        let work_rx = Arc::new(Mutex::new(work_rx));
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&work_rx);
                let tx = done_tx.clone();
                let make_worker = &make_worker;
                let now = opts.now;
                scope.spawn(move || {
                    let mut add = make_worker();
                    let mut empty: Option<F> = None;
                    loop {
                        let next = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        let Ok(Work { seq, source, chunk }) = next else {
                            return;
                        };
                        let mut rows = empty.take().unwrap_or_default();
                        let mut good = 0;
                        let mut feedback = 0;
                        let mut bad = Vec::new();
                        let path = Arc::clone(&chunk.path);
                        let (bytes, skipped) = chunk.parse_each(|line, r| {
                            let fed = r.as_ref().is_ok_and(|rep| rep.ml_feedback.is_some());
                            match r.and_then(|rep| rep.check(now).map_err(|e| e.to_string())) {
                                Ok(rec) => {
                                    add(rec, &mut rows);
                                    good += 1;
                                    feedback += u64::from(fed);
                                }
                                Err(reason) => bad.push((
                                    good,
                                    BadLine {
                                        path: path.to_path_buf(),
                                        line,
                                        reason,
                                    },
                                )),
                            }
                        });
                        empty = Some(rows.next_empty());
                        let done = Done {
                            seq,
                            source,
                            bytes,
                            skipped,
                            feedback,
                            rows,
                            good,
                            bad,
                        };
                        if tx.send(done).is_err() {
                            return; // the caller stopped
                        }
                    }
                })
            })
            .collect();
        drop(work_rx);
        drop(done_tx);
        // A rendezvous channel: the caller blocks handing over a full batch until the
        // writer has finished the previous one.
        let (batch_tx, batch_rx) = sync_channel::<Bt>(0);
        let sink = &mut sink;
        let writer = scope.spawn(move || -> Result<u64, IngestError> {
            let mut batches = 0;
            for batch in batch_rx {
                sink(batch).map_err(|e| IngestError::Sink(e.into()))?;
                batches += 1;
            }
            Ok(batches)
        });
        let consumed = consume(
            done_rx,
            batch_tx,
            new_batch,
            opts,
            &mut summary,
            &mut on_bad,
            &mut on_progress,
        );
        if consumed.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let mut panicked = false;
        for w in workers {
            panicked |= w.join().is_err();
        }
        let read = reader.join();
        let written = writer.join();
        panicked |= read.is_err() || written.is_err();
        if panicked {
            return Err(IngestError::Panicked);
        }
        // The writer's error explains a failed hand-off: report it first.
        summary.batches = written.unwrap_or(Ok(0))?;
        consumed?;
        read.unwrap_or(Ok(()))
    })?;
    Ok(summary)
}

/// The caller's side: reorders chunks, counts, reports, moves rows into batches and hands
/// full batches to the writer. Consumes both channel ends so that returning early releases
/// the workers and the writer.
fn consume<F, Bt, NB, B, P>(
    done_rx: Receiver<Done<F>>,
    batch_tx: SyncSender<Bt>,
    mut new_batch: NB,
    opts: &PipelineOptions,
    summary: &mut Summary,
    on_bad: &mut B,
    on_progress: &mut P,
) -> Result<(), IngestError>
where
    Bt: Batch<F>,
    NB: FnMut() -> Bt,
    B: FnMut(&BadLine),
    P: FnMut(u64),
{
    let batch_size = opts.batch_size.max(1);
    let mut batch = new_batch();
    let mut pending: BTreeMap<u64, Done<F>> = BTreeMap::new();
    let mut next = 0;
    let mut flush = |batch: &mut Bt| -> Result<(), IngestError> {
        if batch.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(batch, new_batch());
        // A closed channel means the writer stopped on an error, which `run` reports.
        batch_tx
            .send(full)
            .map_err(|_| IngestError::Sink("the writer stopped".into()))
    };
    // Moves rows `from..to` of a chunk into batches, handing on every full one.
    let mut take = |batch: &mut Bt, rows: &mut F, from: usize, to: usize| {
        let mut at = from;
        while at < to {
            let room = batch_size.saturating_sub(batch.len()).max(1);
            let n = (to - at).min(room);
            batch.append(rows, at..at + n);
            at += n;
            if batch.len() >= batch_size {
                flush(batch)?;
            }
        }
        Ok::<(), IngestError>(())
    };
    for done in done_rx {
        pending.insert(done.seq, done);
        while let Some(mut d) = pending.remove(&next) {
            next += 1;
            let mut file = std::mem::take(&mut summary.files[d.source]);
            file.bytes += d.bytes;
            file.skipped += d.skipped;
            file.feedback += d.feedback;
            summary.bytes += d.bytes;
            let mut result = Ok(());
            let mut at = 0;
            for (before, bad) in std::mem::take(&mut d.bad) {
                file.read += (before - at) as u64;
                file.ingested += (before - at) as u64;
                result = take(&mut batch, &mut d.rows, at, before);
                at = before;
                if result.is_err() {
                    break;
                }
                file.read += 1;
                file.rejected += 1;
                if opts.strict {
                    result = Err(IngestError::Strict(bad));
                    break;
                }
                on_bad(&bad);
            }
            if result.is_ok() {
                file.read += (d.good - at) as u64;
                file.ingested += (d.good - at) as u64;
                result = take(&mut batch, &mut d.rows, at, d.good);
            }
            summary.files[d.source] = file;
            result?;
            on_progress(summary.bytes);
        }
    }
    if !pending.is_empty() {
        return Err(IngestError::Panicked);
    }
    flush(&mut batch)?;
    for f in &summary.files {
        summary.read += f.read;
        summary.ingested += f.ingested;
        summary.rejected += f.rejected;
        summary.skipped += f.skipped;
        summary.feedback += f.feedback;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::JsonlSource;
    use std::path::Path;

    fn line(i: usize) -> String {
        format!(r#"{{"task_id":"t{i}","worker_id":"w","error":{{"message":"m{i}"}}}}"#)
    }

    fn input(n: usize, bad_every: usize) -> String {
        (0..n)
            .map(|i| {
                if bad_every > 0 && i % bad_every == bad_every - 1 {
                    "{oops\n".to_string()
                } else {
                    line(i) + "\n"
                }
            })
            .collect()
    }

    fn source(name: &str, text: String, chunk: usize) -> Box<dyn Source> {
        Box::new(
            JsonlSource::from_reader(Path::new(name), std::io::Cursor::new(text))
                .with_chunk_bytes(chunk),
        )
    }

    fn opts(threads: usize, batch: usize, strict: bool) -> PipelineOptions {
        PipelineOptions {
            threads,
            batch_size: batch,
            strict,
            now: Timestamp::from_micros(0),
        }
    }

    #[test]
    fn records_arrive_in_input_order_in_bounded_batches() {
        for threads in [1, 2, 4] {
            let mut got: Vec<String> = Vec::new();
            let mut sizes = Vec::new();
            let mut bad = Vec::new();
            let s = run(
                vec![
                    source("a.jsonl", input(1000, 10), 300),
                    source("b.jsonl", input(50, 0), 100),
                ],
                &opts(threads, 64, false),
                || |r: FailureRecord| r.task_id.to_string(),
                |b: Vec<String>| -> Result<(), std::io::Error> {
                    sizes.push(b.len());
                    got.extend(b);
                    Ok(())
                },
                |b: &BadLine| bad.push(b.line),
                |_| {},
            )
            .unwrap();
            let want: Vec<String> = (0..1000)
                .filter(|i| i % 10 != 9)
                .map(|i| format!("t{i}"))
                .chain((0..50).map(|i| format!("t{i}")))
                .collect();
            assert_eq!(got, want, "threads {threads}");
            assert!(sizes.iter().all(|&n| n <= 64));
            assert_eq!(bad, (1..=100).map(|k| k * 10).collect::<Vec<u64>>());
            assert_eq!((s.read, s.ingested, s.rejected), (1050, 950, 100));
            assert_eq!(s.files[0].rejected, 100);
            assert_eq!(s.files[1].ingested, 50);
            assert_eq!(s.batches, sizes.len() as u64);
        }
    }

    #[test]
    fn check_failures_are_bad_lines() {
        let text = format!("{}\n{}\n", line(1), line(2).replace("\"w\"", "\"a/b\""));
        let mut bad = Vec::new();
        let s = run(
            vec![source("c.jsonl", text, 1 << 20)],
            &opts(2, 10, false),
            || |_: FailureRecord| (),
            |_: Vec<()>| -> Result<(), std::io::Error> { Ok(()) },
            |b: &BadLine| bad.push(b.to_string()),
            |_| {},
        )
        .unwrap();
        assert_eq!(s.ingested, 1);
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].starts_with("c.jsonl:2: invalid worker_id: 'a/b'"),
            "{}",
            bad[0]
        );
    }

    #[test]
    fn strict_stops_at_the_first_bad_line() {
        let e = run(
            vec![source("s.jsonl", input(10_000, 5000), 256)],
            &opts(2, 100, true),
            || |_: FailureRecord| (),
            |_: Vec<()>| -> Result<(), std::io::Error> { Ok(()) },
            |_: &BadLine| panic!("strict mode reports through the error"),
            |_| {},
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("s.jsonl:5000: invalid JSON"),
            "{e}"
        );
    }

    #[test]
    fn sink_errors_stop_the_run() {
        let mut calls = 0;
        let e = run(
            vec![source("x.jsonl", input(5000, 0), 512)],
            &opts(2, 10, false),
            || |_: FailureRecord| (),
            |_: Vec<()>| {
                calls += 1;
                if calls == 3 {
                    Err(std::io::Error::other("disk full"))
                } else {
                    Ok(())
                }
            },
            |_: &BadLine| {},
            |_| {},
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "cannot write: disk full");
        assert_eq!(calls, 3);
    }

    #[test]
    fn progress_reaches_the_input_size() {
        let text = input(300, 7);
        let len = text.len() as u64;
        let mut last = 0;
        run(
            vec![source("p.jsonl", text, 1000)],
            &opts(2, 1000, false),
            || |_: FailureRecord| (),
            |_: Vec<()>| -> Result<(), std::io::Error> { Ok(()) },
            |_: &BadLine| {},
            |b| {
                assert!(b >= last);
                last = b;
            },
        )
        .unwrap();
        assert_eq!(last, len);
    }
}
