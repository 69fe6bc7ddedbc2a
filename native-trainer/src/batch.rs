//! Many people's histories at once, for `nook recommend --users FILE`: ranking a whole site's
//! users natively (emails, offline checks) with the code one person's browser runs.
//!
//! Two inputs, told apart by their first character: CSV with a header naming `user` and `item`
//! (and optionally `timestamp`; every row is a like, each person's likes ordered by time, else by
//! file order), or JSON Lines, one `{"user": "u1", "likes": ["1"], "dislikes": [], "query": "…"}`
//! per line. Problems name the file, line and field.

use crate::data::DataError;
use nook_core::bundle::{IdRequest, Recommendations};
use nook_core::Bundle;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// One person's signals, as read from the file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    pub user: String,
    #[serde(default)]
    pub likes: Vec<String>,
    #[serde(default)]
    pub dislikes: Vec<String>,
    #[serde(default)]
    pub query: Option<String>,
}

/// One output line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRecommendations {
    pub user: String,
    #[serde(flatten)]
    pub recommendations: Recommendations,
}

/// Reads histories from a CSV or JSON Lines file (see the module documentation).
pub fn read(path: &Path) -> Result<Vec<History>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        DataError::row(path, line, "not UTF-8 text")
    })?;
    match text.trim_start().chars().next() {
        None => Err(DataError::file(path, "empty file: no histories")),
        Some('{') => read_jsonl(path, text),
        Some(_) => read_csv(path, text),
    }
}

fn read_jsonl(path: &Path, text: &str) -> Result<Vec<History>, DataError> {
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let h: History =
            serde_json::from_str(line).map_err(|e| DataError::row(path, line_no, format!("not a history: {e}")))?;
        if h.user.is_empty() {
            return Err(DataError::field(path, line_no, "user", "empty user id"));
        }
        if let Some(first) = seen.insert(h.user.clone(), line_no) {
            return Err(DataError::field(
                path,
                line_no,
                "user",
                format!("user {:?} already has a history on line {first}", h.user),
            ));
        }
        out.push(h);
    }
    Ok(out)
}

fn read_csv(path: &Path, text: &str) -> Result<Vec<History>, DataError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| DataError::row(path, 1, format!("bad header: {e}")))?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(user_col), Some(item_col)) = (column("user"), column("item")) else {
        return Err(DataError::row(path, 1, format!("header must name `user` and `item`, found {:?}", headers)));
    };
    let time_col = column("timestamp");
    let mut order: Vec<String> = Vec::new();
    let mut rows: HashMap<String, Vec<(f64, usize, String)>> = HashMap::new();
    for (n, record) in reader.records().enumerate() {
        let line_no = n as u64 + 2;
        let record = record.map_err(|e| DataError::row(path, line_no, e.to_string()))?;
        let field = |col: usize, name: &str| {
            record
                .get(col)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| DataError::field(path, line_no, name, "missing value"))
        };
        let (user, item) = (field(user_col, "user")?, field(item_col, "item")?);
        let time = match time_col {
            Some(col) => {
                let raw = field(col, "timestamp")?;
                raw.parse::<f64>().ok().filter(|t| t.is_finite()).ok_or_else(|| {
                    DataError::field(path, line_no, "timestamp", format!("expected a number, found {raw:?}"))
                })?
            }
            None => 0.0,
        };
        let likes = rows.entry(user.to_string()).or_insert_with(|| {
            order.push(user.to_string());
            Vec::new()
        });
        likes.push((time, n, item.to_string()));
    }
    if order.is_empty() {
        return Err(DataError::file(path, "header only: no histories"));
    }
    Ok(order
        .into_iter()
        .map(|user| {
            let mut likes = rows.remove(&user).unwrap_or_default();
            // Oldest first, as the browser lists likes; file order breaks ties.
            likes.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            History { user, likes: likes.into_iter().map(|l| l.2).collect(), ..History::default() }
        })
        .collect())
}

/// Settings every person's request shares.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub k: usize,
    pub diversity: f32,
    pub query_weight: Option<f32>,
}

impl History {
    pub fn request(&self, o: &Options) -> IdRequest {
        IdRequest {
            likes: self.likes.clone(),
            dislikes: self.dislikes.clone(),
            query: self.query.clone(),
            k: o.k,
            diversity: o.diversity,
            query_weight: o.query_weight,
        }
    }
}

/// People ranked per parallel chunk (and written before the next chunk starts, so memory stays
/// bounded whatever the number of users).
const CHUNK: usize = 1024;

/// Ranks every history with [`Bundle::recommend`] (the one-person path), in parallel, writing
/// one JSON line per person in input order; `on_done(n)` after each chunk. Returns how many
/// histories named ids the catalogue lacks.
pub fn run(
    bundle: &Bundle,
    histories: &[History],
    o: &Options,
    out: &mut dyn Write,
    on_done: &dyn Fn(usize),
) -> anyhow::Result<usize> {
    let mut with_skips = 0;
    for chunk in histories.chunks(CHUNK) {
        let lines: Vec<anyhow::Result<(String, bool)>> = chunk
            .par_iter()
            .map(|h| {
                let recommendations =
                    bundle.recommend(&h.request(o)).map_err(|e| anyhow::anyhow!("user {:?}: {e}", h.user))?;
                let skipped = !recommendations.skipped.is_empty();
                let line = UserRecommendations { user: h.user.clone(), recommendations };
                Ok((serde_json::to_string(&line)?, skipped))
            })
            .collect();
        for line in lines {
            let (line, skipped) = line?;
            with_skips += usize::from(skipped);
            writeln!(out, "{line}")?;
        }
        on_done(chunk.len());
    }
    Ok(with_skips)
}
