//! The `nook` command end to end on real data: split → train → eval, the JSON contract other
//! tools read, and clear refusals.

use nook_e2e::*;
use serde_json::Value;

#[test]
fn help_explains_each_command() {
    let top = nook_ok(&["--help"]);
    for cmd in ["split", "train", "eval", "import-factors", "export-factors"] {
        assert!(top.contains(cmd), "top-level help lists `{cmd}`");
    }
    let train = nook_ok(&["train", "--help"]);
    for opt in ["--data", "--out", "--models", "--factors", "--iterations", "--seed", "--min-rating", "--skip-bad-rows"]
    {
        assert!(train.contains(opt), "train --help documents {opt}");
    }
    let eval = nook_ok(&["eval", "--help"]);
    for opt in ["--json", "--model", "--k", "--cold-fraction", "--factors-from"] {
        assert!(eval.contains(opt), "eval --help documents {opt}");
    }
}

#[test]
fn train_then_eval_on_ml100k_writes_the_json_contract() {
    let data = ml100k();
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    let json = tmp.path().join("eval.json");
    nook_ok(&["train", "--data", path_str(&data), "--out", path_str(&model), "--ft-steps", "4", "--ft-batch", "8"]);
    for f in [
        "model.json",
        "ids.json",
        "pop.safetensors",
        "als.safetensors",
        "bpr.safetensors",
        "finetune.json",
        "sr.safetensors",
        "slit.safetensors",
    ] {
        assert!(model.join(f).is_file(), "{f} written");
    }
    let table = nook_ok(&["eval", "--data", path_str(&data), "--model", path_str(&model), "--json", path_str(&json)]);
    assert!(table.contains("ndcg@10") && table.contains("als"), "{table}");

    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["dataset"], "ml-100k");
    assert_eq!(report["seed"], 42);
    assert_eq!(report["protocol"]["protocol"], "temporal");
    let rows = report["results"].as_array().unwrap();
    let get = |model: &str, split: &str, metric: &str| -> f64 {
        rows.iter()
            .find(|r| r["model"] == model && r["split"] == split && r["metric"] == metric)
            .unwrap_or_else(|| panic!("no row {model}/{split}/{metric}"))["value"]
            .as_f64()
            .unwrap()
    };
    for f in ["report.md", "finetune_loss.png", "recall_at_k.png", "ndcg_at_k.png", "warm_vs_cold.png"] {
        assert!(model.join("report").join(f).is_file(), "report/{f} written");
    }
    for model in [
        "pop",
        "als",
        "bpr",
        "ease",
        "rp3b",
        "als-recency",
        "sr",
        "slit",
        "content",
        "hybrid",
        "content-ft",
        "fused-ft",
        "fused-sr",
    ] {
        for split in ["warm", "cold"] {
            for metric in ["recall@10", "precision@10", "ndcg@10", "map@10", "hit@10", "ndcg@20", "auc", "coverage@10"]
            {
                let v = get(model, split, metric);
                assert!((0.0..=1.0).contains(&v), "{model}/{split}/{metric} = {v}");
            }
        }
    }
    assert!(rows.iter().all(|r| r.as_object().unwrap().len() == 4), "rows are {{model, split, metric, value}}");
    assert!(get("als", "warm", "ndcg@10") > get("pop", "warm", "ndcg@10"));
    assert!(get("bpr", "warm", "ndcg@10") > get("pop", "warm", "ndcg@10"));
    assert!(get("ease", "warm", "ndcg@10") > get("pop", "warm", "ndcg@10"));
    // Every model against `ease` and its ablation, each with an interval around its difference.
    let differences = report["differences"].as_array().expect("differences in the report");
    let find = |model: &str, baseline: &str, split: &str, metric: &str| {
        differences
            .iter()
            .find(|d| d["model"] == model && d["baseline"] == baseline && d["split"] == split && d["metric"] == metric)
            .unwrap_or_else(|| panic!("no difference {model} vs {baseline} on {split} {metric}"))
    };
    for (model, baseline, split, metric) in [
        ("fused-ft", "ease", "warm", "ndcg@10"),
        ("fused-ft", "als-recency", "warm", "ndcg@10"),
        ("als-recency", "als", "warm", "recall@20"),
        ("fused-sr", "fused-ft", "warm", "ndcg@10"),
        ("fused-sr", "sr", "warm", "ndcg@10"),
        ("fused-sr", "slit", "warm", "ndcg@10"),
        ("slit", "sr", "warm", "recall@20"),
        ("content-ft", "content", "cold", "auc"),
    ] {
        let d = find(model, baseline, split, metric);
        let (diff, low, high) =
            (d["difference"].as_f64().unwrap(), d["low"].as_f64().unwrap(), d["high"].as_f64().unwrap());
        assert!(low <= diff && diff <= high, "{model} vs {baseline}: {low} <= {diff} <= {high}");
        let values = d["model_value"].as_f64().unwrap() - d["baseline_value"].as_f64().unwrap();
        assert!((values - diff).abs() < 1e-9, "{model} vs {baseline}: the difference is of the two values");
        assert_eq!(d["resamples"], 2000);
    }
    assert!(
        !differences.iter().any(|d| d["split"] == "cold" && d["baseline"] == "ease"),
        "ease is blind to cold items"
    );
    let md = std::fs::read_to_string(model.join("report").join("report.md")).unwrap();
    assert!(md.contains("## Differences with 95% intervals"), "report.md shows the intervals");
    // The report names the encoder the text models read with, and how it read.
    let line = md.lines().find(|l| l.starts_with("Text encoder: ")).expect("report.md names the text encoder");
    assert!(line.contains("all-MiniLM-L6-v2") && line.contains("mean pooling, no prompts"), "{line}");
    let trained: Value = serde_json::from_slice(&std::fs::read(model.join("eval.json")).unwrap()).unwrap();
    let encoder = &trained["encoder"];
    assert!(encoder["dir"].as_str().unwrap().ends_with("all-MiniLM-L6-v2"), "{encoder}");
    assert_eq!((&encoder["pooling"], &encoder["max_tokens"]), (&Value::from("mean"), &Value::from(256)));
    assert!(encoder.get("prompts").is_none() && encoder["fingerprint"].as_str().unwrap().len() == 64, "{encoder}");
}

#[test]
fn eval_is_deterministic_for_a_seed() {
    let data = ml100k();
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, threads: &str| -> Value {
        let json = tmp.path().join(name);
        nook_ok(&[
            "eval",
            "--data",
            path_str(&data),
            "--threads",
            threads,
            "--models",
            "pop,als,bpr,hybrid",
            "--json",
            path_str(&json),
        ]);
        let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        v["results"].clone()
    };
    assert_eq!(run("a.json", "1"), run("b.json", "2"));
}

#[test]
fn final_models_are_refitted_on_train_and_validation_unless_told_not_to() {
    let data = ml100k();
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| -> Value {
        let json = tmp.path().join(name);
        let mut args = vec!["eval", "--data", path_str(&data), "--models", "pop,als", "--json", path_str(&json)];
        args.extend_from_slice(extra);
        nook_ok(&args);
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
    };
    let (refit, plain) = (run("refit.json", &[]), run("plain.json", &["--no-refit"]));
    assert_eq!(refit["protocol"]["refit"], true);
    assert_eq!(plain["protocol"]["refit"], false);
    // The same test positives are scored either way; only what the models were fitted on differs.
    assert_eq!(refit["splits"]["warm"], plain["splits"]["warm"]);
    let ndcg = |v: &Value, model: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["model"] == model && r["split"] == "warm" && r["metric"] == "ndcg@10")
            .unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    assert_ne!(ndcg(&refit, "als"), ndcg(&plain, "als"));
    assert!(ndcg(&refit, "als") > ndcg(&refit, "pop"));

    // Refitted models have seen the validation part: evaluating on it is refused.
    let out = nook(&["eval", "--data", path_str(&data), "--models", "pop", "--on", "valid"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--on valid needs --no-refit"));
    nook_ok(&["eval", "--data", path_str(&data), "--models", "pop", "--on", "valid", "--no-refit"]);
}

#[test]
#[ignore = "needs movielens-small (NOOK_MOVIELENS_SMALL or ../shared/data/movielens-small)"]
fn split_command_writes_csvs_for_outside_tools() {
    let data = movielens_small();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("split");
    nook_ok(&["split", "--data", path_str(&data), "--out", path_str(&out)]);
    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("split.json")).unwrap()).unwrap();
    let train_rows = std::fs::read_to_string(out.join("train.csv")).unwrap().lines().count() - 1;
    assert_eq!(summary["train"].as_u64().unwrap() as usize, train_rows);
    assert_eq!(summary["cold_items"], 736);
    let rows = |f: &str| std::fs::read_to_string(out.join(f)).unwrap().lines().count() - 1;
    assert_eq!(rows("fit.csv"), rows("train.csv") + rows("valid.csv"), "fit.csv is train + valid");
}

#[test]
#[ignore = "needs movielens-small (NOOK_MOVIELENS_SMALL or ../shared/data/movielens-small)"]
fn model_trained_on_other_data_is_refused() {
    let (small, ml) = (movielens_small(), ml100k());
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    nook_ok(&["train", "--data", path_str(&ml), "--models", "pop", "--out", path_str(&model)]);
    let out = nook(&["eval", "--data", path_str(&small), "--model", path_str(&model)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("trained on other data"), "{err}");

    // The same data with the other fitting protocol is refused too, saying which flag differs.
    let out = nook(&["eval", "--data", path_str(&ml), "--model", path_str(&model), "--no-refit"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("this model was refitted on train + validation: drop --no-refit"), "{err}");
}

#[test]
fn bad_input_fails_cleanly_with_location() {
    let tmp = tempfile::tempdir().unwrap();
    let inter = tmp.path().join("inter.csv");
    std::fs::write(&inter, "user,item,rating\nu1,a,4\nu2,b,lots\n").unwrap();
    let out = nook(&["eval", "--interactions", path_str(&inter)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inter.csv:3: column `rating`: expected a rating number, found \"lots\""), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = nook(&["eval", "--interactions", path_str(&inter), "--skip-bad-rows", "--models", "pop"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 of 2 rows (50.0%) are malformed, over --max-bad-rows 10%"), "{err}");
    let out = nook(&[
        "eval",
        "--interactions",
        path_str(&inter),
        "--skip-bad-rows",
        "--max-bad-rows",
        "1",
        "--models",
        "pop",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("skipped 1 of 2 row(s)"), "{err}");
}

/// MovieLens 100k with nine ratings in ten damaged: `--skip-bad-rows` refuses it by default (it
/// used to train on the tenth that was left), and with a limit raised on purpose the skipped rows
/// are counted by reason in eval.json.
#[test]
fn a_mostly_broken_file_is_refused_and_skips_are_reported() {
    let (tmp, data) = ml100k_copy();
    let inter = data.join("ml-100k.inter");
    let ratings = std::fs::read_to_string(&inter).unwrap();
    // Line 1 is the header; of the 100,000 ratings after it, all but every tenth lose their rating.
    let damaged: String = ratings
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut f: Vec<&str> = line.split('\t').collect();
            if i > 0 && (i - 1) % 10 != 0 {
                f[2] = "five";
            }
            f.join("\t") + "\n"
        })
        .collect();
    std::fs::write(&inter, damaged).unwrap();
    let d = path_str(&data);

    let out = nook(&["eval", "--data", d, "--skip-bad-rows", "--models", "pop"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("90000 of 101682 rows") && err.contains("over --max-bad-rows 10%"), "{err}");
    assert!(err.contains("ml-100k.inter column `rating:float`: 90000"), "the refusal counts by reason: {err}");

    let json = tmp.path().join("eval.json");
    nook_ok(&[
        "eval",
        "--data",
        d,
        "--skip-bad-rows",
        "--max-bad-rows",
        "95%",
        "--models",
        "pop",
        "--json",
        path_str(&json),
    ]);
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = &report["data_rows"];
    assert_eq!(rows["skipped"], 90000, "{rows}");
    assert_eq!(rows["by_reason"]["ml-100k.inter column `rating:float`"], 90000, "{rows}");
    assert!(rows["first"][0].as_str().unwrap().contains("ml-100k.inter:3: column `rating:float`"), "{rows}");
}
