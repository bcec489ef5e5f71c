//! A small reader for tab-separated files with a header row.
//!
//! Used by `faultline classify --tsv FILE --column NAME` and by the evaluation suites. Fields are
//! separated by tabs; a field that starts with `"` is quoted: it ends at the next `"` not doubled,
//! `""` inside stands for one `"`, and it may contain tabs and newlines. A field that starts
//! with `"` but is not quoted that way — its quote never closes, or text follows the closing
//! one (`"Connection reset" by peer`, a message written out without quoting) — is read as it
//! stands, quote and all, up to the next tab or line end ([`Table::literal_quotes`] lists
//! where; a stray quote would otherwise swallow the rest of the file). Lines end with `\n` or
//! `\r\n`; blank lines are skipped. A row with fewer fields than the header is padded with empty
//! fields (trailing empty columns are often dropped); a row with more is an error.

use std::path::{Path, PathBuf};

/// Errors of this module; every one names the file.
#[derive(Debug, thiserror::Error)]
pub enum TsvError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file has no header row.
    #[error("{}: empty file (expected a header row)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A row has more fields than the header.
    #[error("{}:{line}: {found} fields, but the header has {expected}", path.display())]
    TooManyFields {
        /// The file.
        path: PathBuf,
        /// Line where the row starts (1-based).
        line: usize,
        /// Number of header columns.
        expected: usize,
        /// Number of fields found.
        found: usize,
    },
    /// A requested column is in the header more than once: which one is meant?
    #[error("{}:1: column '{column}' is in the header twice (columns {first} and {second}): rename one", path.display())]
    RepeatedColumn {
        /// The file.
        path: PathBuf,
        /// The column name.
        column: String,
        /// Its first and second positions (1-based).
        first: usize,
        /// See `first`.
        second: usize,
    },
    /// A requested column is not in the header.
    #[error("{}:1: no column '{column}' (columns: {})", path.display(), available.join(", "))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The columns the header has.
        available: Vec<String>,
    },
}

/// One data row: its fields and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsvRow {
    /// Line where the row starts (1-based; the header is line 1).
    pub line: usize,
    /// The fields, as many as the header has columns.
    pub fields: Vec<String>,
    /// How many fields the row itself had: the others are the padding (empty).
    pub given: usize,
}

impl TsvRow {
    /// Field `i` (a column index from [`Table::column_index`]).
    pub fn get(&self, i: usize) -> Option<&String> {
        self.fields.get(i)
    }
}

/// A parsed TSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<TsvRow>,
    literal_quotes: Vec<usize>,
}

impl Table {
    /// Reads and parses `path`.
    pub fn read(path: impl AsRef<Path>) -> Result<Table, TsvError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| TsvError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // Messages copied from logs are not always UTF-8: such bytes are replaced (U+FFFD)
        // rather than failing the whole file.
        Table::parse(&String::from_utf8_lossy(&bytes), path)
    }

    /// Parses `text`; `path` is only used in error messages.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Table, TsvError> {
        let path = path.as_ref().to_path_buf();
        let (records, literal_quotes) = split_records(text);
        let mut it = records.into_iter();
        let (_, header) = it
            .next()
            .ok_or_else(|| TsvError::Empty { path: path.clone() })?;
        let header: Vec<String> = header.into_iter().map(|h| h.trim().to_string()).collect();
        let mut rows = Vec::new();
        for (line, mut fields) in it {
            if fields.len() > header.len() {
                return Err(TsvError::TooManyFields {
                    path,
                    line,
                    expected: header.len(),
                    found: fields.len(),
                });
            }
            let given = fields.len();
            fields.resize(header.len(), String::new());
            rows.push(TsvRow {
                line,
                fields,
                given,
            });
        }
        Ok(Table {
            path,
            header,
            rows,
            literal_quotes,
        })
    }

    /// Lines (1-based) of the fields that start with `"` but are not quoted fields, read as
    /// they stand (see the module docs).
    pub fn literal_quotes(&self) -> &[usize] {
        &self.literal_quotes
    }

    /// What to tell the user about [`Table::literal_quotes`], when there are any.
    pub fn literal_quotes_note(&self) -> Option<String> {
        let first = self.literal_quotes.first()?;
        let n = self.literal_quotes.len();
        Some(format!(
            "{n} field{} starting with '\"' but not quoted (first on line {first}) read as written, quote included",
            if n == 1 { "" } else { "s" }
        ))
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The column names.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The data rows.
    pub fn rows(&self) -> &[TsvRow] {
        &self.rows
    }

    /// Index of column `name`, or `None`.
    pub fn find_column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Index of column `name`, or an error naming the file and the available columns — or
    /// both positions of a name the header holds twice (an audit: `label\tlabel` scored the
    /// first and ignored the second without a word).
    pub fn column_index(&self, name: &str) -> Result<usize, TsvError> {
        let i = self
            .find_column(name)
            .ok_or_else(|| TsvError::MissingColumn {
                path: self.path.clone(),
                column: name.to_string(),
                available: self.header.clone(),
            })?;
        if let Some(j) = self.header[i + 1..].iter().position(|h| h == name) {
            return Err(TsvError::RepeatedColumn {
                path: self.path.clone(),
                column: name.to_string(),
                first: i + 1,
                second: i + j + 2,
            });
        }
        Ok(i)
    }

    /// The values of column `name` with their line numbers.
    pub fn column_values(&self, name: &str) -> Result<Vec<(usize, &str)>, TsvError> {
        let i = self.column_index(name)?;
        Ok(self
            .rows
            .iter()
            .map(|r| (r.line, r.fields[i].as_str()))
            .collect())
    }
}

/// Reads column `column` of the TSV file `path`: `(line, value)` per data row.
pub fn read_column(path: impl AsRef<Path>, column: &str) -> Result<Vec<(usize, String)>, TsvError> {
    let tsv = Table::read(path)?;
    let i = tsv.column_index(column)?;
    Ok(tsv
        .rows
        .into_iter()
        .map(|mut r| (r.line, std::mem::take(&mut r.fields[i])))
        .collect())
}

/// Splits text into records of fields, with the line each record starts on, and the lines of
/// the fields that start with a quote but were read as they stand.
fn split_records(text: &str) -> (Vec<(usize, Vec<String>)>, Vec<usize>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut literal = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut chars = text.chars().peekable();
    let mut at_field_start = true;

    while let Some(c) = chars.next() {
        match c {
            '"' if at_field_start => match quoted(&mut chars.clone()) {
                Some((value, lines, rest)) => {
                    field.push_str(&value);
                    line += lines;
                    chars = rest;
                    at_field_start = false;
                }
                None => {
                    // Not a quoted field: the quote is the field's first character.
                    literal.push(line);
                    field.push('"');
                    at_field_start = false;
                }
            },
            '\t' => {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                end_record(&mut records, &mut fields, record_line);
                line += 1;
                record_line = line;
                at_field_start = true;
            }
            other => {
                field.push(other);
                at_field_start = false;
            }
        }
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        end_record(&mut records, &mut fields, record_line);
    }
    (records, literal)
}

/// Reads a quoted field from just after its opening quote: its value, the line ends inside it
/// and the text after its closing quote — or `None` when it is not one (the quote never
/// closes, or text other than a tab or a line end follows the closing quote).
fn quoted<'a>(
    chars: &mut std::iter::Peekable<std::str::Chars<'a>>,
) -> Option<(String, usize, std::iter::Peekable<std::str::Chars<'a>>)> {
    let mut value = String::new();
    let mut lines = 0;
    loop {
        match chars.next()? {
            '"' if chars.peek() == Some(&'"') => {
                chars.next();
                value.push('"');
            }
            '"' => break,
            '\n' => {
                lines += 1;
                value.push('\n');
            }
            other => value.push(other),
        }
    }
    match chars.peek() {
        None | Some('\t') | Some('\n') | Some('\r') => Some((value, lines, chars.clone())),
        Some(_) => None,
    }
}

fn end_record(records: &mut Vec<(usize, Vec<String>)>, fields: &mut Vec<String>, line: usize) {
    let blank = fields.len() == 1 && fields[0].trim().is_empty();
    let taken = std::mem::take(fields);
    if !blank {
        records.push((line, taken));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_rows_and_quoted_fields() {
        let text = "id\tmessage\tlabel\n1\tplain\tx\n\n2\t\"say \"\"hi\"\"\ttab\"\ty\r\n3\t\"two\nlines\"\tz\n";
        let t = Table::parse(text, "t.tsv").unwrap();
        assert_eq!(t.header(), ["id", "message", "label"]);
        let msgs = t.column_values("message").unwrap();
        assert_eq!(
            msgs,
            vec![(2, "plain"), (4, "say \"hi\"\ttab"), (5, "two\nlines")]
        );
        assert_eq!(t.rows()[2].get(2).map(String::as_str), Some("z"));
        assert_eq!(t.rows()[2].get(3), None);
    }

    #[test]
    fn pads_short_rows_and_rejects_long_ones() {
        let t = Table::parse("a\tb\tc\n1\t2\n", "p.tsv").unwrap();
        assert_eq!(t.rows()[0].fields, ["1", "2", ""]);
        let e = Table::parse("a\tb\n1\t2\t3\n", "p.tsv").unwrap_err();
        assert_eq!(e.to_string(), "p.tsv:2: 3 fields, but the header has 2");
        // A column asked for by a name the header holds twice (audit).
        let t = Table::parse("message\tlabel\tlabel\nx\toom_gpu\tnetwork\n", "q.tsv").unwrap();
        let e = t.column_index("label").unwrap_err();
        assert_eq!(
            e.to_string(),
            "q.tsv:1: column 'label' is in the header twice (columns 2 and 3): rename one"
        );
        assert_eq!(t.column_index("message").unwrap(), 0);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let t = Table::parse("id\tmessage\n1\tx\n", "data/dev.tsv").unwrap();
        let e = t.column_index("label").unwrap_err();
        assert_eq!(
            e.to_string(),
            "data/dev.tsv:1: no column 'label' (columns: id, message)"
        );
        let e = Table::parse("", "e.tsv").unwrap_err();
        assert_eq!(e.to_string(), "e.tsv: empty file (expected a header row)");
        let e = Table::read("/nonexistent/x.tsv").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/x.tsv: "),
            "{e}"
        );
    }

    /// Regression (probe): a message starting with a quote, written without quoting, stopped
    /// the whole file ("unterminated quoted field"); such a field is read as it stands, and the
    /// rows after it are read as before.
    #[test]
    fn a_field_that_only_starts_with_a_quote_is_read_as_it_stands() {
        let text = "id\tmessage\tlabel\n1\t\"open\tnetwork\n2\t\"Connection reset\" by peer\tnetwork\n3\t\"quoted \"\"ok\"\"\"\tdata_error\n4\tplain\toom_gpu\n";
        let t = Table::parse(text, "q.tsv").unwrap();
        let msgs = t.column_values("message").unwrap();
        assert_eq!(
            msgs,
            vec![
                (2, "\"open"),
                (3, "\"Connection reset\" by peer"),
                (4, "quoted \"ok\""),
                (5, "plain")
            ]
        );
        assert_eq!(t.column_values("label").unwrap()[1], (3, "network"));
        assert_eq!(t.literal_quotes(), [2, 3]);
        // a quote that closes on a later line, followed by text: the first line's field
        // stands as it is, and the later lines are rows of their own
        let t = Table::parse("m\tl\n\"a\tx\nb\"c\ty\n", "q.tsv").unwrap();
        assert_eq!(t.column_values("m").unwrap(), vec![(2, "\"a"), (3, "b\"c")]);
    }

    #[test]
    fn read_column_reads_a_file() {
        let dir = std::env::temp_dir().join(format!("faultline-tsv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.tsv");
        std::fs::write(&p, "message\tn\nCUDA out of memory\t1\nKilled\t2\n").unwrap();
        let v = read_column(&p, "message").unwrap();
        assert_eq!(
            v,
            vec![
                (2, "CUDA out of memory".to_string()),
                (3, "Killed".to_string())
            ]
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
