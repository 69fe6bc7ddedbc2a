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

/// The Python that has pyspark: `NOOK_SPARK_PYTHON`, else the venv `scripts/install-deps.sh --spark`
/// makes.
fn spark_python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("NOOK_SPARK_PYTHON") {
        return p.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
    cache.join("nook/spark-venv/bin/python")
}

/// The value of `metric` for `model` on `split` in an eval JSON.
fn metric(json: &Path, model: &str, split: &str, metric: &str) -> f64 {
    rows_of(json, model)
        .into_iter()
        .find(|(s, m, _)| s == split && m == metric)
        .unwrap_or_else(|| panic!("{}: no {model} {split} {metric}", json.display()))
        .2
}

#[test]
#[ignore = "runs real Spark: needs Java 17+ and pyspark (scripts/install-deps.sh --spark); scripts/test.sh runs it"]
fn real_spark_als_feeds_the_whole_route_on_ml100k() {
    let data = ml100k();
    encoder_dir();
    let python = spark_python();
    assert!(
        std::process::Command::new(&python).args(["-c", "import pyspark"]).status().is_ok_and(|s| s.success()),
        "{} cannot import pyspark: run scripts/install-deps.sh --spark (or set NOOK_SPARK_PYTHON)",
        python.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("route");
    // The README's route, as a user runs it; fine-tuning is cut short here (the route, not the
    // quality of fine-tuning, is under test).
    let run = std::process::Command::new(repo_root().join("scripts/spark-route.sh"))
        .arg(&data)
        .arg(&out)
        .args(["--models", "pop,als,fused-ft", "--ft-steps", "20"])
        .env("NOOK", nook_bin())
        .env("NOOK_SPARK_PYTHON", &python)
        .env("NOOK_LOG", "warn")
        .output()
        .expect("scripts/spark-route.sh runs");
    let log = format!("{}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "spark-route.sh failed:\n{log}");

    // Spark really fitted: four candidates on train.csv, then the chosen one on fit.csv, each
    // saved in MLlib's own layout (metadata written by Spark, not by nook).
    let fits = std::fs::read_to_string(out.join("spark-fit.txt")).unwrap();
    assert_eq!(fits.lines().filter(|l| l.starts_with("fit reg=")).count(), 5, "{fits}");
    let metadata = std::fs::read_dir(out.join("spark-als/metadata")).unwrap();
    let spark_meta = metadata
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("part-"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<String>();
    assert!(spark_meta.contains("org.apache.spark.ml.recommendation.ALSModel"), "{spark_meta}");
    assert!(spark_meta.contains("\"rank\":64"), "{spark_meta}");

    // Spark's ALS, regParam chosen on validation, is within 5% of nook's ALS on the same test split.
    let eval = out.join("eval.json");
    let (nook_als, spark_als) =
        (metric(&eval, "als", "warm", "ndcg@10"), metric(&eval, "spark-als", "warm", "ndcg@10"));
    assert!(spark_als >= 0.95 * nook_als, "Spark ALS NDCG@10 {spark_als:.4} vs nook's {nook_als:.4}\n{log}");
    assert!(metric(&eval, "spark-als", "warm", "ndcg@10") > metric(&eval, "pop", "warm", "ndcg@10"));

    // import-factors made a model directory; train --als-from fused text with Spark's factors
    // (its `als` row is Spark's) and export wrote a bundle that recommends.
    assert!(out.join("imported/als.safetensors").is_file());
    let trained = out.join("model/eval.json");
    for m in ["ndcg@10", "recall@20", "auc"] {
        let (trained_als, spark) = (metric(&trained, "als", "warm", m), metric(&eval, "spark-als", "warm", m));
        assert_eq!(trained_als, spark, "train --als-from scores with Spark's factors ({m})");
    }
    assert!(metric(&trained, "fused-ft", "cold", "auc") > 0.6, "fused-ft ranks cold items by their text");
    let bundle = out.join("bundle");
    let recs = nook_ok(&["recommend", "--bundle", path_str(&bundle), "--like", "50", "--like", "181", "--json"]);
    let recs: Value = serde_json::from_str(&recs).unwrap();
    assert_eq!(recs["items"].as_array().map(Vec::len), Some(10), "{recs}");
}
