//! Factors trained by other tools, read from CSV (`id,f0,f1,...`, no header) so they are evaluated
//! by exactly the same code as nook's own models.

use crate::data::table::{Dialect, Table};
use crate::data::Dataset;
use crate::models::Factors;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;

/// Loads `DIR/user_factors.csv` and `DIR/item_factors.csv`, or a saved Spark ALS model (Parquet,
/// see [`crate::spark`]). Users or items the file lacks get zero
/// vectors (they score 0); ids the data set lacks are an error.
pub fn load_factors(name: &str, dir: &Path, data: &Dataset) -> Result<Factors> {
    if dir.join(crate::spark::USER_FACTORS).exists() {
        return Ok(crate::spark::load_factors(name, dir, data)?.0);
    }
    let user_index: HashMap<&str, usize> = data.users.iter().enumerate().map(|(i, u)| (u.as_str(), i)).collect();
    let item_index: HashMap<&str, usize> = data.items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i)).collect();
    let (dim, users) = read_matrix(&dir.join("user_factors.csv"), &user_index, None)?;
    let (_, items) = read_matrix(&dir.join("item_factors.csv"), &item_index, Some(dim))?;
    Ok(Factors { name: name.to_string(), dim, users, items, item_bias: None, item_known: None })
}

fn read_matrix(path: &Path, index: &HashMap<&str, usize>, dim: Option<usize>) -> Result<(usize, Vec<f32>)> {
    let mut t = Table::open(path, Dialect::csv().headerless(&["id"]))?;
    let mut dim = dim;
    let mut out: Vec<f32> = Vec::new();
    while let Some(row) = t.next_row()? {
        let d = *dim.get_or_insert(row.len() - 1);
        if row.len() != d + 1 || d == 0 {
            bail!("{}:{}: expected an id and {d} factors, found {} fields", path.display(), row.line(), row.len());
        }
        if out.is_empty() {
            out = vec![0.0; index.len() * d];
        }
        let id = row.id(0)?;
        let &r =
            index.get(id.as_ref()).with_context(|| format!("{}:{}: unknown id {id:?}", path.display(), row.line()))?;
        for f in 0..d {
            out[r * d + f] = row.number(f + 1)? as f32;
        }
    }
    t.finish()?;
    Ok((dim.unwrap_or(0), out))
}
