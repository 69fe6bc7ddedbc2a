//! Parquet reading and writing of factor rows (arrow + parquet: a fifth of the native build, so
//! behind the default feature `parquet`; `scripts/demo.sh` builds without it).

use super::FactorRows;
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
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
