//! Tier 1 — ingest, the first stage of the pipeline: raw input → [`FailureReport`]s.
//!
//! Every reader turns its input into one item per record, each either a report or a
//! [`BadLine`] naming the file, the line and the reason; a bad line is counted and the rest
//! of the input goes on. Formats ([`Format`], chosen by extension or `--format`):
//!
//! | format | reader | record |
//! |---|---|---|
//! | JSONL | [`jsonl`] | one failure record (the JSON schema of [`crate::model`]) per line |
//! | CSV / TSV | [`csv`] | one row, columns mapped onto fields by header name or [`ColumnMap`] |
//! | kernel log | [`kernel`] | one dmesg/kmsg line with an NVIDIA Xid/SXid, OOM kill, machine check, uncorrected EDAC error or segfault |
//! | Parquet | `store::import` | one row (read by the store, the only place that speaks Parquet) |
//!
//! [`run`] is the bulk path behind `faultline ingest`: a reader thread cuts the inputs into
//! [`Chunk`]s, worker threads parse them, check each report into a [`FailureRecord`](crate::model::FailureRecord) and hand
//! it to the caller's per-thread closure (classify, build the history row), and the calling
//! thread passes the results, in input order, to the caller's sink in batches. Ingest never
//! classifies or writes by itself: those are the caller's (same-tier modules do not import
//! each other), which keeps this module to reading. Memory stays bounded by the chunk queue
//! and the batch size.
//!
//! ```
//! use faultline::ingest::{jsonl::JsonlSource, Records};
//!
//! let text = "{\"task_id\":\"t1\",\"worker_id\":\"w1\",\"error\":{\"message\":\"CUDA out of memory\"}}\nnot json\n";
//! let src = JsonlSource::from_reader("in.jsonl".as_ref(), std::io::Cursor::new(text));
//! let items: Vec<_> = Records::new(src).collect();
//! assert_eq!(items[0].as_ref().unwrap().task_id, "t1");
//! assert!(items[1].as_ref().unwrap_err().to_string().starts_with("in.jsonl:2: "));
//! ```

pub mod csv;
pub mod jsonl;
pub mod kernel;
mod memo;
mod pipeline;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

pub use self::csv::{ColumnMap, CsvSource, Field};
pub use jsonl::JsonlSource;
pub use kernel::{KernelOptions, KernelSource};
pub use memo::{Memo, MemoStats};
pub use pipeline::{run, run_rows, Batch, FileSummary, PipelineOptions, Rows, Summary};

use crate::model::FailureReport;

/// Errors of ingest. I/O errors name their path.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Reading an input failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The input.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The format of an input cannot be told from its name.
    #[error("{}: cannot tell the input format from the file name; use --format (jsonl, csv, tsv, kernel, parquet)", path.display())]
    UnknownFormat {
        /// The input.
        path: PathBuf,
    },
    /// The input is gzip-compressed (its first bytes are gzip's magic number): read as text,
    /// every line was garbage (an audit).
    #[error("{}: gzip-compressed; decompress it first (`gunzip -k FILE`, or `zcat FILE | faultline ingest - --format FORMAT ...`)", path.display())]
    Compressed {
        /// The input.
        path: PathBuf,
    },
    /// `--format` names no format.
    #[error("unknown input format '{0}' (expected jsonl, csv, tsv, kernel or parquet)")]
    FormatName(String),
    /// A column mapping (`--map`) does not parse.
    #[error("invalid column mapping '{spec}': {reason}")]
    Mapping {
        /// The mapping as given.
        spec: String,
        /// Why.
        reason: String,
    },
    /// A CSV header cannot be mapped onto the record (a required field has no column).
    #[error("{}: {reason}", path.display())]
    Header {
        /// The input.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A source the caller plugged in (e.g. a Parquet reader) failed.
    #[error("{}: {message}", path.display())]
    Source {
        /// The input.
        path: PathBuf,
        /// The source's message.
        message: String,
    },
    /// `strict` was set and a record was rejected.
    #[error("{0} (strict mode stops at the first rejected record)")]
    Strict(BadLine),
    /// The sink (the store) failed.
    #[error("cannot write: {0}")]
    Sink(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A pipeline thread panicked.
    #[error("an ingest thread panicked")]
    Panicked,
    /// Standard input was given as Parquet (which needs to seek).
    #[error("Parquet cannot be read from standard input")]
    ParquetFromStdin,
}

impl IngestError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A rejected record: `file:line: reason`. (For Parquet inputs the line is the row, 1-based.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {reason}", path.display())]
pub struct BadLine {
    /// The input.
    pub path: PathBuf,
    /// Line (1-based) where the record starts.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON failure record per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// dmesg / kmsg / syslog kernel lines.
    Kernel,
    /// Parquet (read by `store::import`).
    Parquet,
}

impl Format {
    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Kernel => "kernel",
            Format::Parquet => "parquet",
        }
    }

    /// The format of `path` by its name: `.jsonl`/`.json`/`.ndjson`, `.csv`, `.tsv`,
    /// `.log`/`.txt` or a name starting with `dmesg`/`kmsg`/`syslog`/`kern`, `.parquet`.
    pub fn detect(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("jsonl" | "json" | "ndjson") => return Some(Format::Jsonl),
            Some("csv") => return Some(Format::Csv),
            Some("tsv") => return Some(Format::Tsv),
            Some("parquet" | "pq") => return Some(Format::Parquet),
            Some("log" | "txt") => return Some(Format::Kernel),
            _ => {}
        }
        ["dmesg", "kmsg", "syslog", "kern"]
            .iter()
            .any(|p| name.starts_with(p))
            .then_some(Format::Kernel)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = IngestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" => Format::Jsonl,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            "kernel" | "dmesg" | "kmsg" | "log" | "syslog" => Format::Kernel,
            "parquet" => Format::Parquet,
            _ => return Err(IngestError::FormatName(s.to_string())),
        })
    }
}

/// One parsed record: its line and the report, or the reason it was rejected.
pub type Item = (u64, Result<FailureReport, String>);

/// A piece of one input, cut by a reader; [`Chunk::parse`] turns it into [`Parsed`] items
/// (on a worker thread in [`run`]).
#[derive(Debug)]
pub struct Chunk {
    path: Arc<Path>,
    bytes: u64,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Jsonl {
        first_line: u64,
        text: Vec<u8>,
    },
    Csv {
        rows: Vec<csv::RawRow>,
        map: Arc<csv::Resolved>,
        skipped: u64,
    },
    Ready {
        items: Vec<Item>,
        skipped: u64,
    },
}

impl Chunk {
    /// A chunk already parsed by its source (for sources outside this module, e.g. Parquet):
    /// `bytes` is how much of the input it covers (progress), `skipped` the lines that held
    /// no record.
    pub fn ready(path: Arc<Path>, bytes: u64, items: Vec<Item>, skipped: u64) -> Self {
        Chunk {
            path,
            bytes,
            body: Body::Ready { items, skipped },
        }
    }

    /// The input this chunk comes from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parses the chunk.
    pub fn parse(self) -> Parsed {
        let (items, skipped) = match self.body {
            Body::Jsonl { first_line, text } => jsonl::parse_chunk(first_line, &text),
            Body::Csv { rows, map, skipped } => (csv::convert_rows(rows, &map), skipped),
            Body::Ready { items, skipped } => (items, skipped),
        };
        Parsed {
            path: self.path,
            bytes: self.bytes,
            items,
            skipped,
        }
    }

    /// Parses the chunk, handing each record (or the reason its line is not one) with its
    /// line number to `f`, in input order; a JSONL chunk is parsed line by line as `f` goes,
    /// so its records are never collected. Returns the bytes of input covered and the lines
    /// that held no record.
    pub fn parse_each(self, mut f: impl FnMut(u64, Result<FailureReport, String>)) -> (u64, u64) {
        let skipped = match self.body {
            Body::Jsonl { first_line, text } => jsonl::for_each_record(first_line, &text, f),
            Body::Csv { rows, map, skipped } => {
                csv::convert_rows(rows, &map)
                    .into_iter()
                    .for_each(|(line, r)| f(line, r));
                skipped
            }
            Body::Ready { items, skipped } => {
                items.into_iter().for_each(|(line, r)| f(line, r));
                skipped
            }
        };
        (self.bytes, skipped)
    }
}

/// A parsed chunk.
#[derive(Debug)]
pub struct Parsed {
    /// The input.
    pub path: Arc<Path>,
    /// Bytes of input covered.
    pub bytes: u64,
    /// The records, in input order.
    pub items: Vec<Item>,
    /// Lines that held no record (blank lines, kernel lines that are not failures).
    pub skipped: u64,
}

/// An input cut into chunks. Sources are read on the pipeline's reader thread.
pub trait Source: Send {
    /// The input's name (file path, or `<stdin>`).
    fn path(&self) -> &Path;
    /// Size of the input in bytes, when known (for progress).
    fn len_hint(&self) -> Option<u64>;
    /// The next chunk, or `None` at the end.
    fn next_chunk(&mut self) -> Result<Option<Chunk>, IngestError>;
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn path(&self) -> &Path {
        (**self).path()
    }
    fn len_hint(&self) -> Option<u64> {
        (**self).len_hint()
    }
    fn next_chunk(&mut self) -> Result<Option<Chunk>, IngestError> {
        (**self).next_chunk()
    }
}

/// Reads a source sequentially, one item per record: a report or the [`BadLine`] that
/// rejected it. A source error (I/O) ends the iteration with one `Err` item at line 0.
pub struct Records<S> {
    source: S,
    current: std::vec::IntoIter<Item>,
    path: Arc<Path>,
    done: bool,
}

impl<S: Source> Records<S> {
    /// Iterates over `source`.
    pub fn new(source: S) -> Self {
        let path: Arc<Path> = Arc::from(source.path());
        Records {
            source,
            current: Vec::new().into_iter(),
            path,
            done: false,
        }
    }
}

impl<S: Source> Iterator for Records<S> {
    type Item = Result<FailureReport, BadLine>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((line, r)) = self.current.next() {
                return Some(r.map_err(|reason| BadLine {
                    path: self.path.to_path_buf(),
                    line,
                    reason,
                }));
            }
            if self.done {
                return None;
            }
            match self.source.next_chunk() {
                Ok(Some(chunk)) => {
                    let p = chunk.parse();
                    self.path = p.path;
                    self.current = p.items.into_iter();
                }
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(BadLine {
                        path: self.path.to_path_buf(),
                        line: 0,
                        reason: e.to_string(),
                    }));
                }
            }
        }
    }
}

/// Opens one input as a pipeline [`Source`] of its format (`-` is standard input): the one
/// place that maps a [`Format`] onto its reader, for `faultline ingest` and `analyze` alike.
/// CSV/TSV use `map`, kernel logs `kernel`. Parquet is read by the store, which this module
/// does not import (same tier): `parquet` opens it (never for standard input).
///
/// ```
/// use faultline::ingest::{open_source, ColumnMap, Format, IngestError, KernelOptions, Source};
///
/// let none = |_: &std::path::Path| -> Result<Box<dyn Source>, IngestError> { unreachable!() };
/// let e = open_source("-".as_ref(), Format::Parquet, &ColumnMap::default(), &KernelOptions::default(), none);
/// assert_eq!(e.err().unwrap().to_string(), "Parquet cannot be read from standard input");
/// ```
pub fn open_source<E: From<IngestError>>(
    path: &Path,
    format: Format,
    map: &ColumnMap,
    kernel: &KernelOptions,
    parquet: impl FnOnce(&Path) -> Result<Box<dyn Source>, E>,
) -> Result<Box<dyn Source>, E> {
    if path.as_os_str() == "-" {
        let name = Path::new("<stdin>");
        let mut input = std::io::BufReader::new(std::io::stdin());
        // Compressed input on stdin is told by its first bytes, as a file's is (an audit:
        // every gzip line was rejected as invalid JSON).
        let head = std::io::BufRead::fill_buf(&mut input).map_err(|e| IngestError::io(name, e))?;
        if format != Format::Parquet && head.starts_with(&GZIP_MAGIC) {
            return Err(IngestError::Compressed {
                path: name.to_path_buf(),
            }
            .into());
        }
        return Ok(open_reader(name, input, format, map, kernel)?);
    }
    if format != Format::Parquet && is_gzip(path) {
        return Err(IngestError::Compressed {
            path: path.to_path_buf(),
        }
        .into());
    }
    Ok(match format {
        Format::Jsonl => Box::new(JsonlSource::open(path)?),
        Format::Csv | Format::Tsv => {
            let delim = if format == Format::Tsv { '\t' } else { ',' };
            Box::new(CsvSource::open(path, delim, map)?)
        }
        Format::Kernel => Box::new(KernelSource::open(path, kernel.clone())?),
        Format::Parquet => parquet(path)?,
    })
}

/// Reads a stream that cannot seek (standard input, or a copy of it) as a pipeline
/// [`Source`] of its format, named `name` in rejections; CSV/TSV use `map`, kernel logs
/// `kernel`. Parquet needs to seek: [`IngestError::ParquetFromStdin`].
///
/// ```
/// use faultline::ingest::{open_reader, ColumnMap, Format, KernelOptions, Records};
///
/// let text = "{\"task_id\":\"t1\",\"worker_id\":\"w1\",\"error\":{\"message\":\"Killed\"}}\n";
/// let src = open_reader("<stdin>".as_ref(), std::io::Cursor::new(text), Format::Jsonl,
///     &ColumnMap::default(), &KernelOptions::default()).unwrap();
/// assert_eq!(Records::new(src).count(), 1);
/// ```
pub fn open_reader(
    name: &Path,
    input: impl std::io::Read + Send + 'static,
    format: Format,
    map: &ColumnMap,
    kernel: &KernelOptions,
) -> Result<Box<dyn Source>, IngestError> {
    Ok(match format {
        Format::Jsonl => Box::new(JsonlSource::from_reader(name, input)),
        Format::Csv | Format::Tsv => {
            let delim = if format == Format::Tsv { '\t' } else { ',' };
            Box::new(CsvSource::from_reader(name, input, delim, map)?)
        }
        Format::Kernel => Box::new(KernelSource::from_reader(name, input, kernel.clone())),
        Format::Parquet => return Err(IngestError::ParquetFromStdin),
    })
}

/// The file size of `path`, if it is a regular file.
pub(crate) fn file_len(path: &Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

/// Whether the file at `path` starts with gzip's magic number (1f 8b); false when it cannot
/// be read (opening it reports that).
pub fn is_gzip(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == GZIP_MAGIC)
}

/// gzip's magic number, the first bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens `path` for reading, naming it in the error.
pub(crate) fn open(path: &Path) -> Result<std::fs::File, IngestError> {
    std::fs::File::open(path).map_err(|e| IngestError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_detected_by_name() {
        for (name, f) in [
            ("a.jsonl", Some(Format::Jsonl)),
            ("a.JSON", Some(Format::Jsonl)),
            ("x/a.csv", Some(Format::Csv)),
            ("a.tsv", Some(Format::Tsv)),
            ("a.log", Some(Format::Kernel)),
            ("notes.txt", Some(Format::Kernel)),
            ("dmesg", Some(Format::Kernel)),
            ("dmesg.1", Some(Format::Kernel)),
            ("kmsg-node7", Some(Format::Kernel)),
            ("part-1.parquet", Some(Format::Parquet)),
            ("data.bin", None),
            ("README", None),
        ] {
            assert_eq!(Format::detect(Path::new(name)), f, "{name}");
        }
    }

    #[test]
    fn format_names_parse_and_unknown_ones_are_named() {
        assert_eq!("dmesg".parse::<Format>().unwrap(), Format::Kernel);
        assert_eq!("JSONL".parse::<Format>().unwrap(), Format::Jsonl);
        let e = "xml".parse::<Format>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown input format 'xml' (expected jsonl, csv, tsv, kernel or parquet)"
        );
    }

    #[test]
    fn bad_line_displays_file_line_reason() {
        let b = BadLine {
            path: "a/b.jsonl".into(),
            line: 7,
            reason: "missing field `task_id`".into(),
        };
        assert_eq!(b.to_string(), "a/b.jsonl:7: missing field `task_id`");
    }

    #[test]
    fn autotraits() {
        fn check<T: Send + Sync + Unpin>() {}
        check::<IngestError>();
        check::<BadLine>();
        check::<Chunk>();
        check::<Parsed>();
        fn send<T: Send>() {}
        send::<JsonlSource>();
        send::<CsvSource>();
        send::<KernelSource>();
    }
}
