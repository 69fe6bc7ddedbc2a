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
use anyhow::{bail, ensure, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float32Array, Int32Array, ListArray, RecordBatch, StringArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// Reads `id`/`features` rows from a Parquet file or a directory of part files (Spark's layout:
/// `part-*.parquet`, plus `_SUCCESS` and `.crc` files, which are skipped).
pub fn read_rows(path: &Path) -> Result<FactorRows> {
    let mut rows = FactorRows::default();
    for file in parquet_files(path)? {
        read_file(&file, &mut rows)?;
    }
    ensure!(!rows.ids.is_empty(), "{}: no factor rows", path.display());
    Ok(rows)
}

fn parquet_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let p = entry.with_context(|| format!("reading {}", path.display()))?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Spark's markers (`_SUCCESS`, `_metadata`) and checksums (`.part-*.crc`) are not data.
        if p.is_file() && !name.starts_with('_') && !name.starts_with('.') && name.ends_with(".parquet") {
            files.push(p);
        }
    }
    files.sort();
    ensure!(!files.is_empty(), "{}: no .parquet files", path.display());
    Ok(files)
}

fn read_file(path: &Path, out: &mut FactorRows) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?
        .with_batch_size(8192)
        .build()
        .with_context(|| format!("{}: cannot read its rows", path.display()))?;
    let mut first_row = 1; // rows are numbered from 1 in messages, like lines
    for batch in reader {
        let batch = batch.with_context(|| format!("{}: reading rows from row {first_row}", path.display()))?;
        append_batch(path, first_row, &batch, out)?;
        first_row += batch.num_rows();
    }
    Ok(())
}

fn column<'a>(path: &Path, batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).with_context(|| {
        let names: Vec<_> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        format!(
            "{}: no column `{name}` (columns: {}); expected Spark ALS factors (id, features)",
            path.display(),
            names.join(", ")
        )
    })
}

fn append_batch(path: &Path, first_row: usize, batch: &RecordBatch, out: &mut FactorRows) -> Result<()> {
    let ids = id_strings(path, column(path, batch, "id")?)?;
    let features = column(path, batch, "features")?;
    let list = features.as_list_opt::<i32>().with_context(|| {
        format!("{}: column `features` is {}, expected array<float>", path.display(), features.data_type())
    })?;
    let values: Vec<f32> = match list.values().data_type() {
        DataType::Float32 => list.values().as_primitive::<Float32Type>().values().to_vec(),
        DataType::Float64 => list.values().as_primitive::<Float64Type>().values().iter().map(|&v| v as f32).collect(),
        other => bail!("{}: column `features` holds {other}, expected float or double", path.display()),
    };
    let offsets = list.value_offsets();
    for (r, id) in ids.into_iter().enumerate() {
        let row = first_row + r;
        let at = || format!("{}: row {row}", path.display());
        let id = id.with_context(|| format!("{}: field `id` is null", at()))?;
        ensure!(!list.is_null(r), "{}: field `features` is null", at());
        let (start, end) = (offsets[r] as usize, offsets[r + 1] as usize);
        if out.dim == 0 {
            ensure!(end > start, "{}: field `features` is empty", at());
            out.dim = end - start;
        }
        ensure!(
            end - start == out.dim,
            "{}: field `features` has {} values, expected {} like the rows before",
            at(),
            end - start,
            out.dim
        );
        for (pos, &v) in values[start..end].iter().enumerate() {
            ensure!(!list.values().is_null(start + pos), "{}: field `features` has a null at position {pos}", at());
            ensure!(v.is_finite(), "{}: field `features` has {v} at position {pos}", at());
        }
        out.ids.push(id);
        out.values.extend_from_slice(&values[start..end]);
    }
    Ok(())
}

fn id_strings(path: &Path, ids: &ArrayRef) -> Result<Vec<Option<String>>> {
    let value: Box<dyn Fn(usize) -> String + '_> = match ids.data_type() {
        DataType::Int32 => Box::new(|i| ids.as_primitive::<Int32Type>().value(i).to_string()),
        DataType::Int64 => Box::new(|i| ids.as_primitive::<Int64Type>().value(i).to_string()),
        DataType::Utf8 => Box::new(|i| ids.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Box::new(|i| ids.as_string::<i64>().value(i).to_string()),
        other => bail!("{}: column `id` is {other}, expected int, bigint or string", path.display()),
    };
    Ok((0..ids.len()).map(|i| ids.is_valid(i).then(|| value(i))).collect())
}

/// Writes rows as one Spark-style part file (`part-00000.parquet`, snappy) plus `_SUCCESS` into
/// the fresh directory `dir`.
pub fn write_rows(dir: &Path, rows: &FactorRows) -> Result<()> {
    ensure!(rows.dim > 0 && rows.values.len() == rows.ids.len() * rows.dim, "factor rows do not match their dimension");
    let int_ids: Option<Vec<i32>> = rows.ids.iter().map(|id| id.parse::<i32>().ok()).collect();
    let id_array: ArrayRef = match int_ids {
        Some(ids) => Arc::new(Int32Array::from(ids)),
        None => Arc::new(StringArray::from_iter_values(&rows.ids)),
    };
    // Spark names a list's element field `element` and writes ALS features as non-null floats.
    let element = Arc::new(Field::new("element", DataType::Float32, false));
    let offsets = OffsetBuffer::<i32>::from_lengths(std::iter::repeat_n(rows.dim, rows.ids.len()));
    let features =
        ListArray::try_new(element.clone(), offsets, Arc::new(Float32Array::from(rows.values.clone())), None)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", id_array.data_type().clone(), false),
        Field::new("features", DataType::List(element), true),
    ]));
    let batch = RecordBatch::try_new(schema.clone(), vec![id_array, Arc::new(features)])?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("part-00000.parquet");
    let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props))?;
    writer.write(&batch)?;
    writer.close().with_context(|| format!("writing {}", path.display()))?;
    std::fs::write(dir.join("_SUCCESS"), b"")?;
    Ok(())
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
