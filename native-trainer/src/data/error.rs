//! Errors raised while reading data files, and the record of rows skipped with `--skip-bad-rows`.

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
    fn location(&self) -> Option<(PathBuf, u64)> {
        match self {
            Self::Field { file, line, .. } | Self::Row { file, line, .. } => Some((file.clone(), *line)),
            _ => None,
        }
    }
}

/// How row-level problems are handled: stop at the first, or skip and count them.
#[derive(Debug, Default)]
pub struct BadRows {
    skip: bool,
    count: usize,
    first: Vec<String>,
}

/// How many skipped rows are listed by location in the summary.
const LISTED: usize = 5;

impl BadRows {
    pub fn new(skip: bool) -> Self {
        Self { skip, ..Self::default() }
    }

    /// Returns the error when rows are not skipped; otherwise records it.
    pub fn handle(&mut self, err: DataError) -> Result<(), DataError> {
        if !self.skip || !err.is_row_level() {
            return Err(err);
        }
        self.count += 1;
        if self.first.len() < LISTED {
            if let Some((file, line)) = err.location() {
                tracing::debug!("skipping {}:{line}: {err}", file.display());
                self.first.push(err.to_string());
            }
        }
        Ok(())
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn first(&self) -> &[String] {
        &self.first
    }
}

impl fmt::Display for BadRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped {} bad row(s)", self.count)?;
        if !self.first.is_empty() {
            write!(f, "; first: {}", self.first.join("; "))?;
        }
        Ok(())
    }
}
