//! JSONL reader: one failure record per line, in the JSON schema of
//! [`FailureReport`] (the bench stream
//! `shared/data/bench/stream_10k.jsonl` is valid input as it is).
//!
//! The source reads the input in chunks of about 1 MiB cut at line ends; parsing a chunk
//! ([`parse_chunk`]) is independent of every other chunk, so chunks parse in parallel.
//! Blank lines are skipped; a line that is not a valid record is rejected with the reason
//! (the JSON error and its column, or the unknown or missing field).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::{file_len, open, Body, Chunk, IngestError, Item, Source};
use crate::model::FailureReport;

/// Default chunk size.
pub const CHUNK_BYTES: usize = 1 << 20;

/// A JSONL input cut into chunks of whole lines.
pub struct JsonlSource {
    path: Arc<Path>,
    input: Box<dyn Read + Send>,
    carry: Vec<u8>,
    next_line: u64,
    eof: bool,
    first: bool,
    chunk_bytes: usize,
    len: Option<u64>,
}

impl std::fmt::Debug for JsonlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSource")
            .field("path", &self.path)
            .field("next_line", &self.next_line)
            .finish_non_exhaustive()
    }
}

impl JsonlSource {
    /// Opens a file.
    ///
    /// A file that is one JSON document over several lines — a pretty-printed record, or an
    /// array of records — is refused whole, saying how to convert it (an audit: every line of
    /// it was rejected on its own, with serde's words about the wrong type).
    pub fn open(path: &Path) -> Result<Self, IngestError> {
        let mut f = open(path)?;
        let mut head = Vec::with_capacity(HEAD_BYTES);
        std::io::Read::by_ref(&mut f)
            .take(HEAD_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(|e| IngestError::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
        if let Some(what) = one_document(&head) {
            return Err(IngestError::Header {
                path: path.to_path_buf(),
                reason: format!(
                    "{what}, not JSON lines (one failure record per line): convert it with `jq -c '{}' {}`",
                    if what.starts_with("a JSON array") { ".[]" } else { "." },
                    path.display()
                ),
            });
        }
        let f = std::io::Cursor::new(head).chain(f);
        let mut s = Self::from_reader(path, f);
        s.len = file_len(path);
        Ok(s)
    }

    /// Reads from any reader; `path` names it in rejections.
    pub fn from_reader(path: &Path, input: impl Read + Send + 'static) -> Self {
        JsonlSource {
            path: Arc::from(path),
            input: Box::new(input),
            carry: Vec::new(),
            next_line: 1,
            eof: false,
            first: true,
            chunk_bytes: CHUNK_BYTES,
            len: None,
        }
    }

    /// Reads at most `bytes` more bytes of the input: a file read up to the size it had when
    /// a run began, so that what is appended meanwhile is left for the next run (which reads
    /// on from there) instead of being taken in by both.
    pub fn up_to(mut self, bytes: u64) -> Self {
        self.input = Box::new(self.input.take(bytes));
        self.len = Some(self.len.map_or(bytes, |l| l.min(bytes)));
        self
    }

    /// Numbers the lines from `line` (the input continues a file from that line: its
    /// rejections name the file's own line numbers).
    pub fn starting_at_line(mut self, line: u64) -> Self {
        self.next_line = line.max(1);
        self
    }

    /// Sets the chunk size (at least 1 byte; a longer line makes a longer chunk).
    pub fn with_chunk_bytes(mut self, n: usize) -> Self {
        self.chunk_bytes = n.max(1);
        self
    }

    /// Fills `buf` up to `target` bytes or the end of the input. Reads into spare capacity
    /// (no zero-filling of the buffer first).
    fn fill(&mut self, buf: &mut Vec<u8>, target: usize) -> Result<(), IngestError> {
        if buf.len() < target && !self.eof {
            buf.reserve_exact(target - buf.len());
        }
        while buf.len() < target && !self.eof {
            let want = (target - buf.len()) as u64;
            let n = (&mut self.input)
                .take(want)
                .read_to_end(buf)
                .map_err(|e| IngestError::io(&self.path, e))?;
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(())
    }
}

impl Source for JsonlSource {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len_hint(&self) -> Option<u64> {
        self.len
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, IngestError> {
        let mut buf = std::mem::take(&mut self.carry);
        let mut target = self.chunk_bytes.max(buf.len() + 1);
        // Read until the chunk holds at least one line end (or the input ends).
        let cut = loop {
            self.fill(&mut buf, target)?;
            if let Some(i) = memchr::memrchr(b'\n', &buf) {
                break i + 1;
            }
            if self.eof {
                break buf.len();
            }
            target = buf.len() * 2;
        };
        if buf.is_empty() {
            return Ok(None);
        }
        self.carry = buf.split_off(cut);
        let bytes = buf.len() as u64;
        if self.first {
            self.first = false;
            if buf.starts_with(b"\xEF\xBB\xBF") {
                buf.drain(..3);
            }
        }
        // memchr counts 32 bytes at a time; a filtered byte iterator took 3 % of an ingest.
        let newlines = memchr::memchr_iter(b'\n', &buf).count() as u64;
        let lines = newlines + u64::from(!buf.ends_with(b"\n"));
        let first_line = self.next_line;
        self.next_line += lines;
        Ok(Some(Chunk {
            path: self.path.clone(),
            bytes,
            body: Body::Jsonl {
                first_line,
                text: buf,
            },
        }))
    }
}

/// Parses the lines of a chunk whose first line is `first_line`: `(items, blank lines)`.
pub fn parse_chunk(first_line: u64, text: &[u8]) -> (Vec<Item>, u64) {
    let mut items = Vec::with_capacity(text.len() / 400 + 1);
    let skipped = for_each_record(first_line, text, |line, r| items.push((line, r)));
    (items, skipped)
}

/// Parses the lines of a chunk whose first line is `first_line`, handing each record (or
/// the reason its line is not one) with its line number to `f`, in order, without
/// collecting them; returns the number of blank lines.
pub fn for_each_record(
    first_line: u64,
    text: &[u8],
    mut f: impl FnMut(u64, Result<FailureReport, String>),
) -> u64 {
    let mut skipped = 0;
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    if text.is_empty() {
        return 0;
    }
    // Valid UTF-8 (the usual case) is checked once for the whole chunk, so that the parser
    // need not check each string it reads again; otherwise each line is checked on its own and
    // only the lines that are not UTF-8 are rejected.
    if let Ok(body) = std::str::from_utf8(body) {
        for (i, line) in body.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.bytes().all(|b| b.is_ascii_whitespace()) {
                skipped += 1;
                continue;
            }
            f(
                first_line + i as u64,
                serde_json::from_str(line).map_err(|_| explain(line.as_bytes())),
            );
        }
        return skipped;
    }
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            skipped += 1;
            continue;
        }
        f(first_line + i as u64, parse_line(line));
    }
    skipped
}

/// Bytes of a file's start read to tell JSON lines from one multi-line document.
const HEAD_BYTES: usize = 4096;

/// What a file starting with `head` is when it is not JSON lines: an array of records over
/// the file, or one record pretty-printed over several lines — a whole file that parses as
/// one such value spread over lines, or one whose first lines open it the way printers do
/// (`[` then `{`, `[{`, or `{` then a `"member":`). `None` for JSON lines and for anything
/// else, whose lines are then judged one by one (a line cut short, garbage).
fn one_document(head: &[u8]) -> Option<&'static str> {
    const ARRAY: &str = "a JSON array of records over the whole file";
    const OBJECT: &str = "one JSON document over several lines";
    let whole = head.len() < HEAD_BYTES;
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    let first = lines.next()?;
    // One line: JSON lines, whatever it holds (an array on one line is said per line).
    let second = Some(lines.next()?);
    if whole {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(head) {
            return match v {
                serde_json::Value::Array(_) => Some(ARRAY),
                serde_json::Value::Object(_) => Some(OBJECT),
                _ => None,
            };
        }
    }
    let starts = |l: Option<&[u8]>, b: u8| l.is_some_and(|l| l.first() == Some(&b));
    if first == b"[" && starts(second, b'{') || first.starts_with(b"[{") {
        return Some(ARRAY);
    }
    if first.starts_with(b"[") && first[1..].trim_ascii_start().starts_with(b"{") {
        return Some(ARRAY);
    }
    (first == b"{" && starts(second, b'"')).then_some(OBJECT)
}

/// Parses one line into a report, or the reason it is not one.
pub fn parse_line(line: &[u8]) -> Result<FailureReport, String> {
    serde_json::from_slice(line).map_err(|_| explain(line))
}

/// Why `line` is not a failure record, naming the field at fault where there is one
/// (`field error.exit_code: invalid type: ...`). The line is parsed again with the path
/// tracked: only rejected lines pay for it.
pub fn explain(line: &[u8]) -> String {
    // UTF-16 text (a Windows tool's "Unicode"): every line failed at column 1 without a hint
    // (an analyze audit).
    if line.contains(&0) || line.starts_with(&[0xff, 0xfe]) || line.starts_with(&[0xfe, 0xff]) {
        return "not UTF-8 text (NUL bytes: UTF-16?): JSON lines are read as UTF-8; convert the file, e.g. `iconv -f UTF-16 -t UTF-8`".into();
    }
    // An array of records sent as one line: said as such (an audit: serde's "invalid type:
    // map, expected a string" for its first element).
    if line.trim_ascii_start().starts_with(b"[")
        && serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(line).is_ok()
    {
        return "a JSON array, not one failure record: send one record per line (JSON lines; `jq -c '.[]'` converts an array)".into();
    }
    explain_as::<FailureReport>(line).unwrap_or_else(|| "not a failure record".into())
}

/// Why `line` does not read as a `T` (the field at fault where there is one, and the
/// column), or `None` when it does.
pub fn explain_as<T: serde::de::DeserializeOwned>(line: &[u8]) -> Option<String> {
    let mut de = serde_json::Deserializer::from_slice(line);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // Syntax errors have no field; a path of "." or "?" says nothing.
            // Nor is it repeated when the message already names it (a top-level unknown field).
            let named = !matches!(path.as_str(), "" | "." | "?")
                && matches!(inner.classify(), serde_json::error::Category::Data)
                && !inner.to_string().contains(&format!("`{path}`"));
            Some(if named {
                format!("field {path}: {}", reason(&inner))
            } else {
                reason(&inner)
            })
        }
        Ok(_) => de.end().err().map(|e| reason(&e)),
    }
}

/// A serde_json error without its "line 1" (the caller knows the line), with the column.
pub fn reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = e.to_string();
    let msg = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    match e.classify() {
        Category::Syntax | Category::Eof => {
            format!("invalid JSON: {msg} at column {}", e.column())
        }
        Category::Data | Category::Io => format!("{msg} (column {})", e.column()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{BadLine, Records};
    use crate::model::HardwareClass;

    const GOOD: &str = r#"{"task_id":"t1","worker_id":"w1","hardware":{"class":"GPU"},"error":{"message":"CUDA out of memory"}}"#;
    const STREAM: &str = r#"{"seq":0,"ts":"2025-03-13T00:00:00.180138","t_offset_s":0.180138,"task_id":"task-000000","task_is_new":true,"attempt":1,"worker_id":"worker-gpu-002","platform":"GPU","error":{"message":"ConnectionResetError","type":"network_error","stacktrace":""},"template":"conn_reset","ml_feedback":{"strategy":"DELAYED_RETRY","success":false},"task":{"task_id":"task-000000","model":"vit","platform":"GPU","config":{"batch_size":4,"precision":"fp32"},"requirements":{"hardware":["cuda"]},"retry_count":0}}"#;

    /// Regression (audit): a pretty-printed array or record in a `.json` file was rejected
    /// line by line with serde's words; the file is refused whole now, saying how to convert
    /// it. JSON lines — a first record longer than the bytes looked at included — read as
    /// before, every record of them.
    #[test]
    fn a_multi_line_document_is_refused_whole_with_how_to_convert_it() {
        let d = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = d.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let array = write("arr.json", &format!("[\n  {GOOD},\n  {GOOD}\n]\n"));
        let e = JsonlSource::open(&array).unwrap_err().to_string();
        assert!(
            e.contains("a JSON array") && e.contains("jq -c '.[]'"),
            "{e}"
        );
        let inline = write("inline.json", &format!("[{GOOD},\n {GOOD}]"));
        assert!(JsonlSource::open(&inline).is_err());
        // Garbage and lines cut short are judged line by line, as before.
        for text in ["{\n[\n", "{\n", "{\"task_id\":\n{oops\n", "[\n1,2\n"] {
            let p = write("garbage.jsonl", text);
            assert!(JsonlSource::open(&p).is_ok(), "{text:?}");
        }
        let pretty = write(
            "one.json",
            "{\n  \"task_id\": \"t1\",\n  \"worker_id\": \"w1\"\n}\n",
        );
        let e = JsonlSource::open(&pretty).unwrap_err().to_string();
        assert!(
            e.contains("one JSON document over several lines") && e.contains("jq -c '.'"),
            "{e}"
        );
        let long = GOOD.replace("CUDA out of memory", &"x".repeat(3 * HEAD_BYTES));
        let lines = write("ok.jsonl", &format!("\u{feff}{long}\n{GOOD}\n\n{GOOD}"));
        let got: Vec<_> = Records::new(Box::new(JsonlSource::open(&lines).unwrap())).collect();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(Result::is_ok), "{got:?}");
        // An array on one line is said to be one.
        let e = parse_line(format!("[{GOOD}]").as_bytes()).unwrap_err();
        assert!(e.starts_with("a JSON array"), "{e}");
    }

    fn read(text: &str, chunk: usize) -> Vec<Result<FailureReport, BadLine>> {
        let src = JsonlSource::from_reader(
            Path::new("in.jsonl"),
            std::io::Cursor::new(text.to_string()),
        )
        .with_chunk_bytes(chunk);
        Records::new(src).collect()
    }

    fn errors(items: &[Result<FailureReport, BadLine>]) -> Vec<String> {
        items
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect()
    }

    #[test]
    fn good_lines_are_read_including_the_bench_stream_form() {
        let text = format!("{GOOD}\n{STREAM}\n");
        let items = read(&text, 1 << 20);
        assert_eq!(items.len(), 2);
        let a = items[0].as_ref().unwrap();
        assert_eq!(a.hardware.as_ref().unwrap().class, HardwareClass::Gpu);
        let b = items[1].as_ref().unwrap();
        assert_eq!(b.platform, Some(HardwareClass::Gpu));
        assert_eq!(b.seq, Some(0));
    }

    #[test]
    fn bad_lines_name_file_line_and_reason() {
        let text = format!(
            "{GOOD}\n\nnot json\n{}\n{}\n{GOOD}\n{{\"task_id\":\"t\"",
            GOOD.replace("\"worker_id\":\"w1\",", ""),
            GOOD.replace("\"task_id\"", "\"tsk\":1,\"task_id\""),
        );
        let items = read(&text, 1 << 20);
        assert_eq!(items.len(), 6, "blank line 2 is skipped");
        assert_eq!(
            errors(&items),
            [
                "in.jsonl:3: invalid JSON: expected ident at column 2",
                "in.jsonl:4: missing field `worker_id` (column 84)",
                "in.jsonl:5: unknown field `tsk`, expected one of `task_id`, `worker_id`, `hardware`, `platform`, `error`, `timestamp`, `ts`, `task`, `attempt`, `seq`, `t_offset_s`, `task_is_new`, `template`, `ml_feedback` (column 6)",
                "in.jsonl:7: invalid JSON: EOF while parsing an object at column 14",
            ]
        );
        assert!(items[4].is_ok());
    }

    #[test]
    fn a_wrong_value_names_its_field_path() {
        let text = format!(
            "{}\n{}\n",
            GOOD.replace(
                "\"message\":\"CUDA out of memory\"",
                "\"message\":\"x\",\"exit_code\":\"abc\""
            ),
            GOOD.replace("\"GPU\"", "\"QPU\""),
        );
        let items = read(&text, 1 << 20);
        let errs = errors(&items);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with(
                "in.jsonl:1: field error.exit_code: invalid type: string \"abc\", expected i32"
            ),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("in.jsonl:2: field hardware.class: "),
            "{errs:?}"
        );
    }

    #[test]
    fn line_numbers_survive_any_chunking_crlf_and_bom() {
        let mut text = String::from("\u{feff}");
        for i in 0..50 {
            if i % 7 == 3 {
                text.push_str("{bad}\r\n");
            } else {
                text.push_str(&GOOD.replace("\"t1\"", &format!("\"t{i}\"")));
                text.push_str("\r\n");
            }
        }
        let want: Vec<String> = (0..50)
            .filter(|i| i % 7 == 3)
            .map(|i| format!("in.jsonl:{}:", i + 1))
            .collect();
        for chunk in [1, 7, 64, 150, 1000, 1 << 20] {
            let items = read(&text, chunk);
            assert_eq!(items.len(), 50, "chunk {chunk}");
            let got: Vec<String> = errors(&items)
                .iter()
                .map(|e| e.split(' ').next().unwrap().to_string())
                .collect();
            assert_eq!(got, want, "chunk {chunk}");
            let ids: Vec<&str> = items
                .iter()
                .filter_map(|r| r.as_ref().ok().map(|r| r.task_id.as_str()))
                .collect();
            assert_eq!(ids[0], "t0", "the BOM is stripped (chunk {chunk})");
            assert_eq!(ids.len(), 50 - want.len());
        }
    }

    #[test]
    fn last_line_without_newline_is_read() {
        let items = read(&format!("{GOOD}\n{GOOD}"), 1 << 20);
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(Result::is_ok));
    }

    /// A chunk read as text (valid UTF-8) gives exactly what reading each line as bytes
    /// gives: the same records, the same reasons, the same line numbers.
    #[test]
    fn text_chunks_parse_as_byte_lines_do() {
        let text = format!(
            "{GOOD}\r\n\n{STREAM}\n{{not json\n{}\n  \n{}\n{GOOD}",
            GOOD.replace("\"w1\"", "\"w1\",\"colour\":1"),
            GOOD.replace("CUDA", "CUDA \\u00e9 \u{e9}t\u{e9}"),
        );
        let (items, skipped) = parse_chunk(7, text.as_bytes());
        assert_eq!(skipped, 2);
        let mut expected = Vec::new();
        for (i, line) in text.as_bytes().split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.iter().all(u8::is_ascii_whitespace) {
                expected.push((7 + i as u64, parse_line(line)));
            }
        }
        assert_eq!(items.len(), 6);
        assert_eq!(items, expected);
        assert_eq!(items.iter().filter(|(_, r)| r.is_err()).count(), 2);
    }

    #[test]
    fn utf16_lines_are_said_to_be_utf16() {
        let text = "{\"task_id\":\"t\"}";
        let mut bytes = vec![0xff, 0xfe];
        bytes.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert!(explain(&bytes).contains("UTF-16?"), "{}", explain(&bytes));
        assert!(!explain(text.as_bytes()).contains("UTF-16"));
    }

    #[test]
    fn invalid_utf8_is_rejected_not_fatal() {
        let mut bytes = GOOD.as_bytes().to_vec();
        bytes.push(b'\n');
        let at = GOOD.find("CUDA").unwrap();
        bytes.extend_from_slice(&GOOD.as_bytes()[..at]);
        bytes.extend_from_slice(b"\xff\xfe");
        bytes.extend_from_slice(&GOOD.as_bytes()[at..]);
        bytes.push(b'\n');
        let src = JsonlSource::from_reader(Path::new("x.jsonl"), std::io::Cursor::new(bytes));
        let items: Vec<_> = Records::new(src).collect();
        assert!(items[0].is_ok());
        let e = items[1].as_ref().unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("invalid unicode"), "{e}");
    }

    /// `up_to` stops at the size a run began with: a line appended after it is left for the
    /// next run (a review: an ingest took in what was appended while it ran, and the next run
    /// took it in again).
    #[test]
    fn up_to_reads_no_further_than_the_size_given() {
        let text = format!("{GOOD}\n{GOOD}\n");
        let first = GOOD.len() as u64 + 1;
        let src = JsonlSource::from_reader(Path::new("in.jsonl"), std::io::Cursor::new(text))
            .up_to(first);
        assert_eq!(src.len_hint(), Some(first));
        let items: Vec<_> = Records::new(src).collect();
        assert_eq!(items.len(), 1);
        assert!(items[0].is_ok());
    }

    #[test]
    fn missing_file_names_its_path() {
        let e = JsonlSource::open(Path::new("/nonexistent/x.jsonl")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/x.jsonl: "), "{e}");
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            /// Arbitrary bytes on a line never panic the reader: every non-blank line is
            /// either a record or a rejection with its own line number.
            #[test]
            fn arbitrary_bytes_never_panic(
                lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..20),
                chunk in 1usize..300,
            ) {
                let mut bytes = Vec::new();
                let mut nonblank = Vec::new();
                for (i, l) in lines.iter().enumerate() {
                    let l: Vec<u8> = l.iter().copied().filter(|&b| b != b'\n').collect();
                    let trimmed = l.strip_suffix(b"\r").unwrap_or(&l);
                    if !trimmed.iter().all(u8::is_ascii_whitespace) {
                        nonblank.push(i as u64 + 1);
                    }
                    bytes.extend_from_slice(&l);
                    bytes.push(b'\n');
                }
                let src = JsonlSource::from_reader(Path::new("p.jsonl"), std::io::Cursor::new(bytes))
                    .with_chunk_bytes(chunk);
                let mut lines_seen = Vec::new();
                let mut parsed = 0;
                for r in Records::new(src) {
                    match r {
                        Ok(_) => parsed += 1,
                        Err(e) => {
                            prop_assert!(e.line >= 1 && e.line <= lines.len() as u64);
                            prop_assert!(!e.reason.is_empty());
                            lines_seen.push(e.line);
                        }
                    }
                }
                prop_assert_eq!(parsed + lines_seen.len(), nonblank.len());
                prop_assert!(lines_seen.iter().all(|l| nonblank.contains(l)));
            }

            /// A valid record with arbitrary text in its message survives the reader.
            #[test]
            fn any_message_round_trips(msg in ".*") {
                let line = serde_json::json!({"task_id":"t","worker_id":"w","error":{"message":msg}}).to_string();
                let r = parse_line(line.as_bytes()).unwrap();
                prop_assert_eq!(r.error.message, msg);
            }
        }
    }
}
