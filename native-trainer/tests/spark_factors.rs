//! Spark MLlib ALS factors as Parquet: files laid out as Spark writes them are read, nook's
//! factors round-trip exactly, ids are matched to a real data set, and malformed files are refused
//! with the file, row and field.

mod common;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Schema};
use common::*;
use nook_trainer::models::{als, AlsConfig};
use nook_trainer::spark::{self, FactorRows};
use nook_trainer::split::{Split, SplitConfig};
use parquet::arrow::ArrowWriter;
use std::path::Path;
use std::sync::Arc;

/// Writes one Parquet file with an `id` column and a `features` list column built from `rows`
/// (`None` = a null list). `element` is the list's value array.
fn write_parquet(path: &Path, ids: ArrayRef, lengths: &[usize], element: ArrayRef, null_rows: &[usize]) {
    let item = Arc::new(Field::new("element", element.data_type().clone(), true));
    let nulls = (!null_rows.is_empty())
        .then(|| NullBuffer::from((0..lengths.len()).map(|r| !null_rows.contains(&r)).collect::<Vec<_>>()));
    let list = ListArray::new(item.clone(), OffsetBuffer::from_lengths(lengths.iter().copied()), element, nulls);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", ids.data_type().clone(), true),
        Field::new("features", DataType::List(item), true),
    ]));
    let batch = RecordBatch::try_new(schema.clone(), vec![ids, Arc::new(list)]).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn floats(v: &[f32]) -> ArrayRef {
    Arc::new(Float32Array::from(v.to_vec()))
}

fn ints(v: &[i32]) -> ArrayRef {
    Arc::new(Int32Array::from(v.to_vec()))
}

fn error_of(path: &Path) -> String {
    match spark::read_rows(path) {
        Ok(r) => panic!("expected an error, read {} rows", r.ids.len()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn reads_a_spark_directory_of_part_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_parquet(
        &d.join("part-00000-abc.snappy.parquet"),
        ints(&[10, 20]),
        &[2, 2],
        floats(&[1.0, 2.0, 3.0, 4.0]),
        &[],
    );
    write_parquet(&d.join("part-00001-abc.snappy.parquet"), ints(&[30]), &[2], floats(&[5.0, 6.0]), &[]);
    std::fs::write(d.join("_SUCCESS"), b"").unwrap();
    std::fs::write(d.join(".part-00000-abc.snappy.parquet.crc"), b"not parquet").unwrap();
    let rows = spark::read_rows(d).unwrap();
    assert_eq!(rows.ids, ["10", "20", "30"]);
    assert_eq!(rows.dim, 2);
    assert_eq!(rows.values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn reads_bigint_and_string_ids_and_double_features() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.parquet");
    write_parquet(
        &a,
        Arc::new(Int64Array::from(vec![1i64 << 40])),
        &[3],
        Arc::new(Float64Array::from(vec![0.5, -1.0, 2.0])),
        &[],
    );
    let rows = spark::read_rows(&a).unwrap();
    assert_eq!((rows.ids, rows.values), (vec![(1i64 << 40).to_string()], vec![0.5, -1.0, 2.0]));
    let b = dir.path().join("b.parquet");
    write_parquet(&b, Arc::new(StringArray::from(vec!["tt0114709"])), &[1], floats(&[7.0]), &[]);
    assert_eq!(spark::read_rows(&b).unwrap().ids, ["tt0114709"]);
}

#[test]
fn nook_rows_round_trip_exactly_with_int_or_string_ids() {
    for ids in [vec!["1", "2", "-3"], vec!["u1", "2", "x y"]] {
        let rows = FactorRows {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            dim: 2,
            values: vec![0.1, -0.2, f32::MIN_POSITIVE, 3.5e10, 1.0 / 3.0, -0.0],
        };
        let dir = tempfile::tempdir().unwrap();
        spark::write_rows(&dir.path().join("userFactors"), &rows).unwrap();
        assert!(dir.path().join("userFactors/_SUCCESS").is_file());
        let back = spark::read_rows(&dir.path().join("userFactors")).unwrap();
        assert_eq!(back.ids, rows.ids);
        assert_eq!(back.dim, rows.dim);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.values), bits(&rows.values));
    }
}

#[test]
fn malformed_files_are_refused_with_file_row_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = |n: &str| d.join(n);

    std::fs::write(path("text.parquet"), b"id,features\n1,[1.0]\n").unwrap();
    let e = error_of(&path("text.parquet"));
    assert!(e.contains("text.parquet") && e.contains("not a readable Parquet file"), "{e}");

    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![ints(&[1])]).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path("nofeat.parquet")).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let e = error_of(&path("nofeat.parquet"));
    assert!(e.contains("nofeat.parquet") && e.contains("no column `features`") && e.contains("columns: id"), "{e}");

    write_parquet(&path("ragged.parquet"), ints(&[1, 2]), &[3, 2], floats(&[1.0, 2.0, 3.0, 4.0, 5.0]), &[]);
    let e = error_of(&path("ragged.parquet"));
    assert!(e.contains("ragged.parquet: row 2: field `features` has 2 values, expected 3"), "{e}");

    write_parquet(&path("nan.parquet"), ints(&[1, 2]), &[1, 1], floats(&[1.0, f32::NAN]), &[]);
    let e = error_of(&path("nan.parquet"));
    assert!(e.contains("nan.parquet: row 2: field `features` has NaN at position 0"), "{e}");

    write_parquet(&path("nullrow.parquet"), ints(&[1, 2]), &[1, 0], floats(&[1.0]), &[1]);
    let e = error_of(&path("nullrow.parquet"));
    assert!(e.contains("nullrow.parquet: row 2: field `features` is null"), "{e}");

    let null_id: ArrayRef = Arc::new(Int32Array::from(vec![None, Some(2)]));
    write_parquet(&path("nullid.parquet"), null_id, &[1, 1], floats(&[1.0, 2.0]), &[]);
    let e = error_of(&path("nullid.parquet"));
    assert!(e.contains("nullid.parquet: row 1: field `id` is null"), "{e}");

    write_parquet(&path("intfeat.parquet"), ints(&[1]), &[1], ints(&[4]), &[]);
    let e = error_of(&path("intfeat.parquet"));
    assert!(e.contains("intfeat.parquet: column `features` holds Int32, expected float or double"), "{e}");

    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("_SUCCESS"), b"").unwrap();
    let e = error_of(empty.path());
    assert!(e.contains("no .parquet files"), "{e}");
}

#[test]
fn als_fitted_on_ml100k_round_trips_through_spark_layout_and_matches_ids() {
    let dir = ml100k();
    let data = load_dir(&dir, false).unwrap();
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    let cfg = AlsConfig { iterations: 3, factors: 16, ..AlsConfig::default() };
    let fitted = als::fit(&split.train_matrix(), &cfg, |_| {});
    let item_ids: Vec<String> = data.items.iter().map(|i| i.id.clone()).collect();
    let out = tempfile::tempdir().unwrap();
    let model = out.path().join("spark-model");
    spark::save_factors(&model, &fitted, &data.users, &item_ids).unwrap();

    let (back, summary) = spark::load_factors("als", &model, &data).unwrap();
    assert_eq!(back.dim, 16);
    assert_eq!(back.users, fitted.users, "user factors exact");
    assert_eq!(back.items, fitted.items, "item factors exact");
    assert_eq!((summary.users_matched, summary.items_matched), (data.users.len(), data.items.len()));
    assert_eq!(summary.users_unknown + summary.items_unknown + summary.users_missing + summary.items_missing, 0);

    // A cluster job that saw other users and not every item: unknown rows are skipped and
    // counted, missing ones are zero vectors.
    let mut users = spark::read_rows(&model.join("userFactors")).unwrap();
    users.ids[0] = "999999".into();
    let mut items = spark::read_rows(&model.join("itemFactors")).unwrap();
    items.ids.truncate(items.ids.len() - 5);
    items.values.truncate(items.ids.len() * items.dim);
    let partial = out.path().join("partial");
    spark::write_rows(&partial.join("userFactors"), &users).unwrap();
    spark::write_rows(&partial.join("itemFactors"), &items).unwrap();
    let (p, s) = spark::load_factors("als", &partial, &data).unwrap();
    assert_eq!((s.users_unknown, s.users_missing, s.items_unknown, s.items_missing), (1, 1, 0, 5));
    assert!(p.users[..16].iter().all(|&v| v == 0.0), "the user without a row has a zero vector");
    let n = data.items.len();
    assert!(p.items[(n - 5) * 16..].iter().all(|&v| v == 0.0));
    assert_eq!(p.items[..(n - 5) * 16], fitted.items[..(n - 5) * 16]);
    let known = p.item_known.as_ref().expect("imported factors say which items had a row");
    assert!(known[..n - 5].iter().all(|&k| k) && known[n - 5..].iter().all(|&k| !k));

    // Item factors alone suffice (the browser folds users in): users get zero vectors.
    let items_only = out.path().join("items-only");
    spark::write_rows(&items_only.join("itemFactors"), &items).unwrap();
    let (io, s) = spark::load_factors("als", &items_only, &data).unwrap();
    assert_eq!((s.users_matched, s.users_missing, s.items_matched), (0, data.users.len(), n - 5));
    assert!(io.users.iter().all(|&v| v == 0.0) && io.users.len() == data.users.len() * 16);

    // The same id twice is refused.
    let mut dup = users.clone();
    dup.ids[2] = dup.ids[1].clone();
    let twice = out.path().join("twice");
    spark::write_rows(&twice.join("userFactors"), &dup).unwrap();
    spark::write_rows(&twice.join("itemFactors"), &items).unwrap();
    let e = format!("{:#}", spark::load_factors("als", &twice, &data).unwrap_err());
    assert!(e.contains("appears twice (second time at row 3)"), "{e}");
}
