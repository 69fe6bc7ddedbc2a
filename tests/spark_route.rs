//! Past one machine: ALS factors leave nook in Spark MLlib's Parquet layout and come back
//! (`export-factors`, `import-factors`, `train --als-from`, `eval --factors-from`) without
//! changing a single number, on MovieLens 100k.

use nook_e2e::*;
use serde_json::Value;
use std::path::Path;

/// The `model` rows of an eval JSON as (split, metric, value), sorted.
fn rows_of(json: &Path, model: &str) -> Vec<(String, String, f64)> {
    let report: Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    let mut rows: Vec<_> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["model"] == model)
        .map(|r| {
            (
                r["split"].as_str().unwrap().to_string(),
                r["metric"].as_str().unwrap().to_string(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert!(!rows.is_empty(), "{}: no rows for {model}", json.display());
    rows
}

#[test]
fn als_factors_round_trip_through_spark_parquet_unchanged() {
    let data = ml100k();
    let data = path_str(&data);
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name);
    let s = |name: &str| p(name).to_str().unwrap().to_string();

    nook_ok(&["train", "--data", data, "--models", "pop,als", "--no-eval", "--out", &s("m1")]);
    let out = nook_ok(&["export-factors", "--model", &s("m1"), "--out", &s("spark")]);
    let dims = format!("943 users and 1682 items ({} dims)", nook_trainer::models::AlsConfig::default().factors);
    assert!(out.contains(&dims), "{out}");
    for f in ["userFactors/part-00000.parquet", "userFactors/_SUCCESS", "itemFactors/part-00000.parquet"] {
        assert!(p("spark").join(f).is_file(), "{f} written");
    }

    // Imported as a model directory: evaluates exactly like the original.
    nook_ok(&["import-factors", "--data", data, "--from", &s("spark"), "--out", &s("m2")]);
    nook_ok(&["eval", "--data", data, "--model", &s("m1"), "--json", &s("e1.json")]);
    nook_ok(&["eval", "--data", data, "--model", &s("m2"), "--json", &s("e2.json")]);
    assert_eq!(rows_of(&p("e1.json"), "als"), rows_of(&p("e2.json"), "als"));

    // Used by `train --als-from` in place of fitting ALS: the saved factors are the imported ones.
    nook_ok(&["train", "--data", data, "--models", "als", "--no-eval", "--als-from", &s("spark"), "--out", &s("m3")]);
    assert_eq!(std::fs::read(p("m1/als.safetensors")).unwrap(), std::fs::read(p("m3/als.safetensors")).unwrap());

    // Evaluated side by side as outside factors.
    nook_ok(&[
        "eval",
        "--data",
        data,
        "--models",
        "pop",
        "--factors-from",
        &format!("spark={}", s("spark")),
        "--json",
        &s("e3.json"),
    ]);
    let spark_rows = rows_of(&p("e3.json"), "spark");
    assert_eq!(spark_rows, rows_of(&p("e1.json"), "als"));

    // Asking for factors the model lacks, or a directory that is not a Spark model, fails clearly.
    let bad = nook(&["export-factors", "--model", &s("m1"), "--factors", "bpr", "--out", &s("x")]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("has no bpr model"), "{err}");
    let bad = nook(&["import-factors", "--data", data, "--from", &s("m1"), "--out", &s("x")]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("no itemFactors/"), "{err}");
    assert!(!p("x").exists(), "nothing written on failure");
}
