//! Collaborative factors in Spark MLlib's layout, so a user who outgrows one machine can fit ALS
//! on a cluster and still ship a nook bundle — and move nook's factors the other way.
//!
//! `ALSModel.save(path)` writes `path/userFactors/` and `path/itemFactors/`: Parquet part files
//! with the columns `id` (int) and `features` (array<float>). nook reads a directory of part files
//! or a single `.parquet` file, with 32/64-bit integer or string ids and float or double features.
//! It writes `id` as int when every id is a 32-bit integer (what Spark's ALS requires) and as
//! string otherwise.

use crate::atomic;
use crate::data::Dataset;
use crate::models::Factors;
use anyhow::{ensure, Result};
use std::collections::HashMap;
use std::path::Path;

#[cfg(feature = "parquet")]
mod parquet;
#[cfg(feature = "parquet")]
pub use parquet::{read_rows, write_rows};

/// Without the `parquet` feature: the same calls, refused with what to do.
#[cfg(not(feature = "parquet"))]
pub fn read_rows(path: &Path) -> Result<FactorRows> {
    anyhow::bail!("{}: {NO_PARQUET}", path.display())
}

#[cfg(not(feature = "parquet"))]
pub fn write_rows(dir: &Path, _rows: &FactorRows) -> Result<()> {
    anyhow::bail!("{}: {NO_PARQUET}", dir.display())
}

#[cfg(not(feature = "parquet"))]
const NO_PARQUET: &str = "this nook was built without Parquet support (Spark factors); build it with the default \
    features: cargo build --release -p nook-trainer";

/// The sub-directories of a saved Spark ALS model.
pub const USER_FACTORS: &str = "userFactors";
pub const ITEM_FACTORS: &str = "itemFactors";

/// Factor rows as stored: one id and `dim` values per row, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FactorRows {
    pub ids: Vec<String>,
    pub dim: usize,
    /// Row-major `ids.len() x dim`.
    pub values: Vec<f32>,
}

/// What an import matched against the data set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub dim: usize,
    /// Rows whose id the data set has.
    pub users_matched: usize,
    pub items_matched: usize,
    /// Rows whose id the data set lacks (skipped), e.g. when nook sees a sample of the data.
    pub users_unknown: usize,
    pub items_unknown: usize,
    /// Data-set users and items with no row (their vectors are zero).
    pub users_missing: usize,
    pub items_missing: usize,
}

/// Reads a saved Spark ALS model (`DIR/itemFactors`, and `DIR/userFactors` when present) as
/// factors in the data set's index order.
pub fn load_factors(name: &str, dir: &Path, data: &Dataset) -> Result<(Factors, ImportSummary)> {
    ensure!(
        dir.join(ITEM_FACTORS).exists(),
        "{}: no {ITEM_FACTORS}/ (expected a saved Spark ALS model: {ITEM_FACTORS}/ and optionally {USER_FACTORS}/ holding Parquet)",
        dir.display()
    );
    let items = read_rows(&dir.join(ITEM_FACTORS))?;
    // The browser folds users in from item factors alone, so user factors (often the bulk of a
    // large model) may be left behind; only the `als` model's own evaluation needs them.
    let users = if dir.join(USER_FACTORS).exists() {
        read_rows(&dir.join(USER_FACTORS))?
    } else {
        tracing::warn!(
            "{}: no {USER_FACTORS}/: users get zero ALS vectors (the text models fold them in)",
            dir.display()
        );
        FactorRows { ids: vec![], dim: items.dim, values: vec![] }
    };
    ensure!(
        users.dim == items.dim,
        "{}: user factors have {} values per row, item factors {}",
        dir.display(),
        users.dim,
        items.dim
    );
    let user_index: HashMap<&str, usize> = data.users.iter().enumerate().map(|(i, u)| (u.as_str(), i)).collect();
    let item_index: HashMap<&str, usize> = data.items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i)).collect();
    let (user_values, u, _) = align(&dir.join(USER_FACTORS), &users, &user_index)?;
    let (item_values, i, item_known) = align(&dir.join(ITEM_FACTORS), &items, &item_index)?;
    let summary = ImportSummary {
        dim: users.dim,
        users_matched: u.matched,
        items_matched: i.matched,
        users_unknown: u.unknown,
        items_unknown: i.unknown,
        users_missing: data.users.len() - u.matched,
        items_missing: data.items.len() - i.matched,
    };
    ensure!(summary.items_matched > 0, "{}: none of its item ids are in the data set", dir.display());
    let factors = Factors {
        name: name.to_string(),
        dim: users.dim,
        users: user_values,
        items: item_values,
        item_bias: None,
        item_known: Some(item_known),
    };
    Ok((factors, summary))
}

struct Matched {
    matched: usize,
    unknown: usize,
}

fn align(path: &Path, rows: &FactorRows, index: &HashMap<&str, usize>) -> Result<(Vec<f32>, Matched, Vec<bool>)> {
    let dim = rows.dim;
    let mut out = vec![0f32; index.len() * dim];
    let mut seen = vec![false; index.len()];
    let mut m = Matched { matched: 0, unknown: 0 };
    for (r, id) in rows.ids.iter().enumerate() {
        let Some(&at) = index.get(id.as_str()) else {
            m.unknown += 1;
            continue;
        };
        ensure!(!seen[at], "{}: id {id:?} appears twice (second time at row {})", path.display(), r + 1);
        seen[at] = true;
        m.matched += 1;
        out[at * dim..(at + 1) * dim].copy_from_slice(&rows.values[r * dim..(r + 1) * dim]);
    }
    Ok((out, m, seen))
}

/// Writes `factors` (rows in the order of `user_ids` / `item_ids`) as a Spark ALS model's factor
/// directories under `out` (replaced atomically).
pub fn save_factors(out: &Path, factors: &Factors, user_ids: &[String], item_ids: &[String]) -> Result<()> {
    let dim = factors.dim;
    ensure!(
        factors.users.len() == user_ids.len() * dim && factors.items.len() == item_ids.len() * dim,
        "ids do not match the factors"
    );
    atomic::write_dir(out, |tmp| {
        write_rows(
            &tmp.join(USER_FACTORS),
            &FactorRows { ids: user_ids.to_vec(), dim, values: factors.users.clone() },
        )?;
        write_rows(&tmp.join(ITEM_FACTORS), &FactorRows { ids: item_ids.to_vec(), dim, values: factors.items.clone() })
    })
}
