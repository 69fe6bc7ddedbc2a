//! A delimited-text reader whose every error names the file, line and column.

use super::error::DataError;
use csv::ByteRecord;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Text encoding of a file. Everything is UTF-8 except the original MovieLens 100k `u.item`,
/// which GroupLens ship as ISO-8859-1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Latin1,
}

/// How a file is laid out.
#[derive(Clone, Debug)]
pub struct Dialect {
    pub delimiter: u8,
    /// Whether `"` quotes fields (CSV) or is an ordinary character (tab/pipe files).
    pub quoting: bool,
    /// Column names for files without a header row.
    pub columns: Option<Vec<String>>,
    pub encoding: Encoding,
    /// RecBole headers name columns `name:type`; compare only the name.
    pub typed_header: bool,
}

impl Dialect {
    pub fn csv() -> Self {
        Self { delimiter: b',', quoting: true, columns: None, encoding: Encoding::Utf8, typed_header: false }
    }
    pub fn tsv() -> Self {
        Self { delimiter: b'\t', quoting: false, columns: None, encoding: Encoding::Utf8, typed_header: false }
    }
    pub fn headerless(mut self, columns: &[&str]) -> Self {
        self.columns = Some(columns.iter().map(|c| c.to_string()).collect());
        self
    }
    pub fn delimiter(mut self, d: u8) -> Self {
        self.delimiter = d;
        self
    }
    pub fn typed_header(mut self) -> Self {
        self.typed_header = true;
        self
    }
    pub fn encoding(mut self, e: Encoding) -> Self {
        self.encoding = e;
        self
    }
}

/// An open table: header known, rows read one at a time.
pub struct Table {
    path: PathBuf,
    reader: csv::Reader<std::fs::File>,
    header: Vec<String>,
    encoding: Encoding,
    typed_header: bool,
    record: ByteRecord,
    rows_read: usize,
}

impl Table {
    /// Opens `path`; an empty file (or one with a header and nothing else) is refused here or
    /// by [`Table::finish`].
    pub fn open(path: &Path, dialect: Dialect) -> Result<Self, DataError> {
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let reader = csv::ReaderBuilder::new()
            .delimiter(dialect.delimiter)
            .quoting(dialect.quoting)
            .has_headers(false)
            .flexible(true)
            .from_reader(file);
        let mut table = Self {
            path: path.to_owned(),
            reader,
            header: Vec::new(),
            encoding: dialect.encoding,
            typed_header: dialect.typed_header,
            record: ByteRecord::new(),
            rows_read: 0,
        };
        table.header = match dialect.columns {
            Some(columns) => columns,
            None => table.read_header()?,
        };
        Ok(table)
    }

    fn read_header(&mut self) -> Result<Vec<String>, DataError> {
        let mut rec = ByteRecord::new();
        let got = self.reader.read_byte_record(&mut rec).map_err(|e| self.csv_error(e))?;
        if !got || (rec.len() == 1 && rec[0].is_empty()) {
            return Err(DataError::file(&self.path, "file is empty: expected a header row"));
        }
        let mut names = Vec::with_capacity(rec.len());
        for (i, raw) in rec.iter().enumerate() {
            let raw = if i == 0 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw) } else { raw };
            let name = self.decode(raw, 1, &format!("header field {}", i + 1))?;
            names.push(name.trim().to_string());
        }
        Ok(names)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Index of the first column whose name is one of `names` (case-insensitive).
    pub fn find(&self, names: &[&str]) -> Option<usize> {
        self.header.iter().position(|h| {
            let h = if self.typed_header { h.split(':').next().unwrap_or(h) } else { h.as_str() };
            names.iter().any(|n| h.eq_ignore_ascii_case(n))
        })
    }

    /// Like [`Table::find`] but the column must exist.
    pub fn require(&self, names: &[&str]) -> Result<usize, DataError> {
        self.find(names).ok_or_else(|| {
            DataError::file(
                &self.path,
                format!("missing column `{}` (header is: {})", names.join("` or `"), self.header.join(",")),
            )
        })
    }

    /// Reads the next row; `Ok(None)` at the end of the file. Blank lines are skipped.
    pub fn next_row(&mut self) -> Result<Option<Row<'_>>, DataError> {
        loop {
            let got = self.reader.read_byte_record(&mut self.record).map_err(|e| self.csv_error(e))?;
            if !got {
                return Ok(None);
            }
            if self.record.len() == 1 && self.record[0].iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            self.rows_read += 1;
            let line = self.record.position().map(|p| p.line()).unwrap_or(0);
            return Ok(Some(Row { table: self, line }));
        }
    }

    /// Refuses a file that had a header but no data rows.
    pub fn finish(&self) -> Result<usize, DataError> {
        if self.rows_read == 0 {
            return Err(DataError::file(&self.path, "file has no data rows"));
        }
        Ok(self.rows_read)
    }

    fn csv_error(&self, e: csv::Error) -> DataError {
        let line = e.position().map(|p| p.line()).unwrap_or(0);
        match e.into_kind() {
            csv::ErrorKind::Io(io) => DataError::io(&self.path, io),
            other => DataError::row(&self.path, line, format!("unreadable row: {other:?}")),
        }
    }

    fn decode<'a>(&self, raw: &'a [u8], line: u64, column: &str) -> Result<Cow<'a, str>, DataError> {
        match self.encoding {
            Encoding::Latin1 => Ok(Cow::Owned(raw.iter().map(|&b| b as char).collect())),
            Encoding::Utf8 => std::str::from_utf8(raw).map(Cow::Borrowed).map_err(|e| {
                let at = e.valid_up_to();
                DataError::field(
                    &self.path,
                    line,
                    column,
                    format!("not valid UTF-8 (byte 0x{:02X} at offset {at}); re-encode the file as UTF-8", raw[at]),
                )
            }),
        }
    }
}

/// One row of a [`Table`].
pub struct Row<'t> {
    table: &'t Table,
    line: u64,
}

impl<'t> Row<'t> {
    pub fn line(&self) -> u64 {
        self.line
    }

    pub fn len(&self) -> usize {
        self.table.record.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn column_name(&self, col: usize) -> String {
        self.table.header.get(col).cloned().unwrap_or_else(|| format!("#{}", col + 1))
    }

    /// An error about this row as a whole.
    pub fn error(&self, message: impl Into<String>) -> DataError {
        DataError::row(&self.table.path, self.line, message)
    }

    /// An error about one field of this row.
    pub fn field_error(&self, col: usize, message: impl Into<String>) -> DataError {
        DataError::field(&self.table.path, self.line, &self.column_name(col), message)
    }

    /// Refuses rows with fewer than `n` fields.
    pub fn expect_fields(&self, n: usize) -> Result<(), DataError> {
        if self.len() < n {
            let names: Vec<String> = (0..n).map(|c| self.column_name(c)).collect();
            return Err(self.error(format!("expected {n} fields ({}), found {}", names.join(", "), self.len())));
        }
        Ok(())
    }

    /// The decoded text of field `col` (trimmed).
    pub fn text(&self, col: usize) -> Result<Cow<'t, str>, DataError> {
        let raw = self.table.record.get(col).ok_or_else(|| self.field_error(col, "missing field"))?;
        let text = self.table.decode(raw, self.line, &self.column_name(col))?;
        Ok(match text {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
            Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
        })
    }

    /// A non-empty identifier.
    pub fn id(&self, col: usize) -> Result<Cow<'t, str>, DataError> {
        let text = self.text(col)?;
        if text.is_empty() {
            return Err(self.field_error(col, "empty id"));
        }
        Ok(text)
    }

    /// A parsed value, with `what` describing the expected form in the error.
    pub fn parse<T: FromStr>(&self, col: usize, what: &str) -> Result<T, DataError> {
        let text = self.text(col)?;
        text.parse().map_err(|_| self.field_error(col, format!("expected {what}, found {text:?}")))
    }

    /// A finite number.
    pub fn number(&self, col: usize) -> Result<f64, DataError> {
        let v: f64 = self.parse(col, "a number")?;
        if !v.is_finite() {
            return Err(self.field_error(col, format!("expected a finite number, found {v}")));
        }
        Ok(v)
    }
}
