//! Errors raised while reading data files, and the record of rows skipped with `--skip-bad-rows`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with an input file. Row-level variants name the file, the 1-based line and the column.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}:{line}: column `{column}`: {message}", file.display())]
    Field { file: PathBuf, line: u64, column: String, message: String },
    #[error("{}:{line}: {message}", file.display())]
    Row { file: PathBuf, line: u64, message: String },
    #[error("{}: {message}", file.display())]
    File { file: PathBuf, message: String },
    #[error("{}: {source}", file.display())]
    Io { file: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Layout(String),
}

impl DataError {
    pub fn field(file: &Path, line: u64, column: &str, message: impl Into<String>) -> Self {
        Self::Field { file: file.to_owned(), line, column: column.to_owned(), message: message.into() }
    }
    pub fn row(file: &Path, line: u64, message: impl Into<String>) -> Self {
        Self::Row { file: file.to_owned(), line, message: message.into() }
    }
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self::File { file: file.to_owned(), message: message.into() }
    }
    pub fn io(file: &Path, source: std::io::Error) -> Self {
        Self::Io { file: file.to_owned(), source }
    }
    /// Row-level errors may be skipped with `--skip-bad-rows`; file-level ones never.
    pub fn is_row_level(&self) -> bool {
        matches!(self, Self::Field { .. } | Self::Row { .. })
    }
    /// What went wrong, without the line: the file and column (or the kind of row problem).
    fn reason(&self) -> String {
        let name = |f: &Path| f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match self {
            Self::Field { file, column, .. } => format!("{} column `{column}`", name(file)),
            Self::Row { file, message, .. } => {
                format!("{} {}", name(file), message.split(':').next().unwrap_or(message))
            }
            other => other.to_string(),
        }
    }

    fn location(&self) -> Option<(PathBuf, u64)> {
        match self {
            Self::Field { file, line, .. } | Self::Row { file, line, .. } => Some((file.clone(), *line)),
            _ => None,
        }
    }
}

/// How many malformed rows `--skip-bad-rows` may skip before the file counts as broken.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum BadRowLimit {
    Rows(usize),
    Percent(f64),
}

impl Default for BadRowLimit {
    /// A file where more than one row in ten is malformed is not data to train on.
    fn default() -> Self {
        Self::Percent(10.0)
    }
}

impl std::str::FromStr for BadRowLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected a row count (e.g. 100) or a percentage (e.g. 5%)");
        match s.trim().strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(Self::Percent(p)),
                _ => Err(bad()),
            },
            None => s.trim().parse::<usize>().map(Self::Rows).map_err(|_| bad()),
        }
    }
}

impl fmt::Display for BadRowLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rows(n) => write!(f, "{n}"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl BadRowLimit {
    fn allows(&self, skipped: usize, rows: usize) -> bool {
        match *self {
            Self::Rows(n) => skipped <= n,
            Self::Percent(p) => skipped as f64 <= rows as f64 * p / 100.0,
        }
    }
}

/// What `--skip-bad-rows` skipped: counts per file and column (or row problem) and the first few
/// locations, for `eval.json` and the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SkippedRows {
    /// Rows read, good and bad.
    pub rows: usize,
    pub skipped: usize,
    pub by_reason: BTreeMap<String, usize>,
    /// The first few skipped rows' errors (file, line, column, reason).
    pub first: Vec<String>,
}

/// How row-level problems are handled: stop at the first, or skip and count them (up to a limit).
#[derive(Debug, Default)]
pub struct BadRows {
    skip: bool,
    limit: BadRowLimit,
    report: SkippedRows,
}

/// How many skipped rows are listed by location in the summary.
const LISTED: usize = 5;

impl BadRows {
    pub fn new(skip: bool) -> Self {
        Self { skip, ..Self::default() }
    }

    pub fn with_limit(skip: bool, limit: BadRowLimit) -> Self {
        Self { skip, limit, ..Self::default() }
    }

    /// Counts one row read (before it is checked).
    pub fn row_read(&mut self) {
        self.report.rows += 1;
    }

    /// Returns the error when rows are not skipped; otherwise records it.
    pub fn handle(&mut self, err: DataError) -> Result<(), DataError> {
        if !self.skip || !err.is_row_level() {
            return Err(err);
        }
        let r = &mut self.report;
        r.skipped += 1;
        *r.by_reason.entry(err.reason()).or_default() += 1;
        if r.first.len() < LISTED {
            if let Some((file, line)) = err.location() {
                tracing::debug!("skipping {}:{line}: {err}", file.display());
                r.first.push(err.to_string());
            }
        }
        Ok(())
    }

    /// Refuses the data set when more rows were skipped than the limit allows.
    pub fn check_limit(&self, name: &str) -> Result<(), DataError> {
        let r = &self.report;
        if self.limit.allows(r.skipped, r.rows) {
            return Ok(());
        }
        let share = 100.0 * r.skipped as f64 / r.rows.max(1) as f64;
        let reasons: Vec<String> = r.by_reason.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        Err(DataError::Layout(format!(
            "{name}: {} of {} rows ({share:.1}%) are malformed, over --max-bad-rows {}; by reason: {}; first: {}",
            r.skipped,
            r.rows,
            self.limit,
            reasons.join(", "),
            r.first.join("; ")
        )))
    }

    pub fn count(&self) -> usize {
        self.report.skipped
    }

    pub fn first(&self) -> &[String] {
        &self.report.first
    }

    pub fn report(&self) -> &SkippedRows {
        &self.report
    }
}

impl fmt::Display for BadRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped {} of {} row(s)", self.report.skipped, self.report.rows)?;
        if !self.report.first.is_empty() {
            write!(f, "; first: {}", self.report.first.join("; "))?;
        }
        Ok(())
    }
}
