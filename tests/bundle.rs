//! Train → export → load → recommend on real data, and a corrupted or mismatched bundle refused
//! with a reason.

use nook_core::bundle::{sha256_hex, Manifest};
use nook_e2e::*;
use serde_json::Value;
use std::path::Path;

/// Copies a bundle directory so a test can damage its copy.
fn copy_bundle(from: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["", "encoder"] {
        std::fs::create_dir_all(tmp.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(from.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, tmp.path().join(sub).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    tmp
}

/// Writes an edited manifest with its id recomputed, as a deliberate editor (not corruption) would:
/// what must then refuse it is the check of the edited field itself.
fn write_sealed(path: &Path, mut manifest: Value) {
    manifest["id"] = Value::from("");
    std::fs::write(path, nook_core::bundle::seal(manifest.to_string().as_bytes()).unwrap()).unwrap();
}

fn recommend_err(bundle: &Path) -> String {
    let out = nook(&["recommend", "--bundle", path_str(bundle), "--like", "1"]);
    assert!(!out.status.success(), "a damaged bundle was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn exported_bundle_lists_every_file_with_its_checksum() {
    let (model, bundle) = ml100k_bundle();
    let manifest = Manifest::parse(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.n_items, 1682);
    let factors = nook_trainer::models::AlsConfig::default().factors;
    assert_eq!((manifest.cf_dim, manifest.text_dim), (factors, 384));
    for (name, entry) in &manifest.files {
        let bytes = std::fs::read(bundle.join(name)).unwrap();
        assert_eq!(bytes.len() as u64, entry.bytes, "{name}");
        assert_eq!(sha256_hex(&bytes), entry.sha256, "{name}");
    }
    let metric =
        |m: &str, s: &str| manifest.metrics.iter().find(|r| r.model == m && r.split == s && r.metric == "ndcg@10");
    assert!(metric("hybrid", "warm").is_some() && metric("hybrid", "cold").is_some(), "metrics snapshot");
    assert!(model.join("eval.json").is_file());
}

#[test]
fn recommend_excludes_likes_and_explains_itself() {
    let (_, bundle) = ml100k_bundle();
    let out =
        nook_ok(&["recommend", "--bundle", path_str(bundle), "--like", "1", "--like", "50", "--like", "181", "--json"]);
    let recs = items(&out);
    assert_eq!(recs.len(), 10);
    for r in &recs {
        assert!(!["1", "50", "181"].contains(&r["id"].as_str().unwrap()), "liked item recommended: {r}");
        assert!(r["reason"].as_str().unwrap().starts_with("because you liked "), "{r}");
        assert!(r["title"].as_str().is_some_and(|t| !t.is_empty()));
    }
    let scores: Vec<f64> = recs.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "sorted by score: {scores:?}");

    // Star Wars (50) + Return of the Jedi (181) should bring in The Empire Strikes Back (172).
    assert!(recs.iter().any(|r| r["id"] == "172"), "Empire Strikes Back missing: {out}");
}

#[test]
fn a_query_changes_the_list_and_says_so() {
    let (_, bundle) = ml100k_bundle();
    let out =
        nook_ok(&["recommend", "--bundle", path_str(bundle), "--query", "zombies and horror", "--k", "10", "--json"]);
    let recs = items(&out);
    assert!(recs.iter().all(|r| r["reason"] == "matches your search"));
    let horror = recs.iter().filter(|r| r["genres"].as_array().unwrap().iter().any(|g| g == "Horror")).count();
    assert!(horror >= 5, "a horror query should bring horror films, got {horror}/10: {out}");
}

/// The `items` of `nook recommend --json` output.
fn items(out: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(out).unwrap();
    v["items"].as_array().unwrap_or_else(|| panic!("no items in {out}")).clone()
}

#[test]
fn nothing_known_means_popular_and_a_bad_k_is_refused() {
    let (_, bundle) = ml100k_bundle();
    let out = nook_ok(&["recommend", "--bundle", path_str(bundle), "--k", "3", "--json"]);
    let recs = items(&out);
    assert_eq!(recs[0]["id"], "50", "Star Wars is ml-100k's most popular film");
    assert!(recs.iter().all(|r| r["reason"] == "popular"));
    let out = nook(&["recommend", "--bundle", path_str(bundle), "--k", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--k <K>") && stderr.contains("0 is not in 1..="), "{stderr}");
}

#[test]
fn ids_the_catalogue_lacks_are_skipped_and_named_not_fatal() {
    let (_, bundle) = ml100k_bundle();
    let b = path_str(bundle);
    let out = nook(&["recommend", "--bundle", b, "--like", "no-such-item", "--like", "50", "--dislike", "gone"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped 1 liked id(s)") && stderr.contains("\"no-such-item\""), "{stderr}");
    assert!(stderr.contains("skipped 1 disliked id(s)") && stderr.contains("\"gone\""), "{stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().count(), 10, "{table}");
    assert!(table.contains("because you liked Star Wars"), "{table}");

    let json: Value = serde_json::from_str(&nook_ok(&[
        "recommend",
        "--bundle",
        b,
        "--like",
        "no-such-item",
        "--like",
        "50",
        "--dislike",
        "gone",
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["skipped"], serde_json::json!({"likes": ["no-such-item"], "dislikes": ["gone"]}));
    let known: Value = serde_json::from_str(&nook_ok(&["recommend", "--bundle", b, "--like", "50", "--json"])).unwrap();
    assert_eq!(json["items"], known["items"], "the unknown ids change nothing else");
}

#[test]
fn more_like_this_natively() {
    let (_, bundle) = ml100k_bundle();
    let b = path_str(bundle);
    let out = nook_ok(&["similar", "--bundle", b, "--item", "50", "--k", "10", "--json"]);
    let recs: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(recs.len(), 10);
    assert!(recs.iter().all(|r| r["id"] != "50" && r["reason"] == "similar to Star Wars" && r["because"] == "50"));
    // Star Wars' neighbours include its sequels.
    assert!(recs.iter().any(|r| r["id"] == "172" || r["id"] == "181"), "{out}");
    let excluded =
        nook_ok(&["similar", "--bundle", b, "--item", "50", "--exclude", "172", "--exclude", "181", "--json"]);
    let excluded: Vec<Value> = serde_json::from_str(&excluded).unwrap();
    assert!(excluded.iter().all(|r| r["id"] != "172" && r["id"] != "181"));
    let table = nook_ok(&["similar", "--bundle", b, "--item", "1", "--k", "3"]);
    assert_eq!(table.lines().count(), 3);
    let out = nook(&["similar", "--bundle", b, "--item", "no-such-item"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown item id \"no-such-item\""));
}

#[test]
fn batch_recommendations_equal_one_person_at_a_time() {
    let (_, bundle) = ml100k_bundle();
    let b = path_str(bundle);
    let tmp = tempfile::tempdir().unwrap();
    // CSV: rows in any order, a timestamp ordering each person's likes; an unknown id.
    let csv = tmp.path().join("histories.csv");
    std::fs::write(&csv, "user,item,timestamp\nu1,181,30\nu2,1,5\nu1,50,10\nu2,no-such-item,6\nu1,1,20\nu3,100,1\n")
        .unwrap();
    let out = tmp.path().join("recs.jsonl");
    nook_ok(&["recommend", "--bundle", b, "--users", path_str(&csv), "--out", path_str(&out), "--k", "5"]);
    let lines: Vec<Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(|l| l["user"].as_str().unwrap()).collect::<Vec<_>>(), ["u1", "u2", "u3"]);
    let single = |likes: &[&str]| -> Value {
        let mut args = vec!["recommend", "--bundle", b, "--k", "5", "--json"];
        likes.iter().for_each(|l| args.extend(["--like", l]));
        serde_json::from_str(&nook_ok(&args)).unwrap()
    };
    // Likes oldest first by timestamp: u1 liked 50, then 1, then 181.
    for (line, likes) in lines.iter().zip([&["50", "1", "181"][..], &["1", "no-such-item"], &["100"]]) {
        let one = single(likes);
        assert_eq!(line["items"], one["items"], "batch = one person at a time for {}", line["user"]);
        assert_eq!(line["skipped"], one["skipped"]);
    }
    assert_eq!(lines[1]["skipped"]["likes"], serde_json::json!(["no-such-item"]));

    // JSON Lines, with dislikes and a query, to standard output.
    let jsonl = tmp.path().join("histories.jsonl");
    std::fs::write(
        &jsonl,
        "{\"user\": \"a\", \"likes\": [\"50\"], \"dislikes\": [\"172\"], \"query\": \"a scary movie\"}\n\n{\"user\": \"b\"}\n",
    )
    .unwrap();
    let stdout = nook_ok(&["recommend", "--bundle", b, "--users", path_str(&jsonl), "--k", "4"]);
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let one: Value = serde_json::from_str(&nook_ok(&[
        "recommend",
        "--bundle",
        b,
        "--like",
        "50",
        "--dislike",
        "172",
        "--query",
        "a scary movie",
        "--k",
        "4",
        "--json",
    ]))
    .unwrap();
    assert_eq!(lines[0]["items"], one["items"]);
    assert!(lines[1]["items"].as_array().unwrap().iter().all(|r| r["reason"] == "popular"));

    // Bad files name the file, line and field.
    for (content, expected) in [
        ("user,item,timestamp\nu1,50,yesterday\n", ":2: column `timestamp`: expected a number, found \"yesterday\""),
        ("person,film\nu1,50\n", ":1: header must name `user` and `item`"),
        ("user,item\nu1,\n", ":2: column `item`: missing value"),
        ("{\"user\": \"a\"}\n{\"user\": \"a\"}\n", ":2: column `user`: user \"a\" already has a history on line 1"),
        ("{\"user\": \"a\", \"likes\": 5}\n", ":1: not a history"),
    ] {
        std::fs::write(&csv, content).unwrap();
        let out = nook(&["recommend", "--bundle", b, "--users", path_str(&csv)]);
        assert!(!out.status.success(), "{content:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("histories.csv") && stderr.contains(expected), "{content:?}: {stderr}");
    }
}

#[test]
fn corrupted_truncated_or_mismatched_bundles_are_refused() {
    let (_, bundle) = ml100k_bundle();

    let tmp = copy_bundle(bundle);
    let path = tmp.path().join("items.json");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    assert!(recommend_err(tmp.path()).contains("items.json: checksum mismatch"));

    let tmp = copy_bundle(bundle);
    let path = tmp.path().join("items.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(recommend_err(tmp.path()).contains("items.safetensors:"), "truncated");

    let tmp = copy_bundle(bundle);
    let manifest_path = tmp.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(&manifest_path, text.replacen("\"version\": 1", "\"version\": 99", 1)).unwrap();
    let err = recommend_err(tmp.path());
    assert!(err.contains("format version Some(99) is not supported"), "{err}");

    std::fs::remove_file(tmp.path().join("encoder/tokenizer.json")).unwrap();
    std::fs::write(&manifest_path, &text).unwrap();
    assert!(recommend_err(tmp.path()).contains("tokenizer.json"), "missing file");

    let tmp = copy_bundle(bundle);
    let manifest_path = tmp.path().join("manifest.json");
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    m["n_items"] = Value::from(1000);
    std::fs::write(&manifest_path, m.to_string()).unwrap();
    assert!(recommend_err(tmp.path()).contains("does not match its id"), "an edit without resealing");
    write_sealed(&manifest_path, m);
    assert!(recommend_err(tmp.path()).contains("items.json has 1682 items, manifest says 1000"));

    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(bundle.join("manifest.json")).unwrap()).unwrap();
    let entry = m["files"]["items.json"].clone();
    m["files"]["../items.json"] = entry;
    write_sealed(&manifest_path, m);
    assert!(recommend_err(tmp.path()).contains("path outside the bundle"));
}

#[test]
fn export_replaces_a_bundle_atomically() {
    let (model, _) = ml100k_bundle();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    nook_ok(&["export", "--model", path_str(model), "--out", path_str(&out)]);
    std::fs::write(out.join("stale.txt"), "old").unwrap();
    nook_ok(&["export", "--model", path_str(model), "--out", path_str(&out)]);
    assert!(!out.join("stale.txt").exists(), "the old bundle was replaced as a whole");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("bundle")], "no temporary directories left");
}

#[test]
fn int8_bundle_is_a_quarter_of_f32_and_embeds_and_ranks_alike() {
    let (model, _) = ml100k_bundle();
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = ["f32", "int8"]
        .iter()
        .map(|q| {
            let dir = tmp.path().join(q);
            nook_ok(&["export", "--model", path_str(model), "--out", path_str(&dir), "--quant", q]);
            dir
        })
        .collect();
    let size = |d: &Path| -> u64 {
        Manifest::parse(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap().files.values().map(|f| f.bytes).sum()
    };
    let (f32_bytes, int8_bytes) = (size(&dirs[0]), size(&dirs[1]));
    assert!(int8_bytes * 3 < f32_bytes, "int8 {int8_bytes} bytes vs f32 {f32_bytes}");

    let load = |d: &Path| {
        let m = Manifest::parse(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap();
        let files = m.files.keys().map(|n| (n.clone(), std::fs::read(d.join(n)).unwrap())).collect();
        nook_core::Bundle::load(m, files).unwrap()
    };
    let (full, small) = (load(&dirs[0]), load(&dirs[1]));
    let texts = ["a space opera with rebels", "zombies", "romantic comedy in paris", "Toy Story (1995)"];
    let cosines: Vec<f32> = texts
        .iter()
        .map(|text| {
            let (a, b) = (full.embed(text).unwrap(), small.embed(text).unwrap());
            a.iter().zip(&b).map(|(x, y)| x * y).sum()
        })
        .collect();
    // int8 weights and 7-bit activations (nook-core's int8 engine) on this
    // fine-tuned encoder: the issue's bars (each >= 0.98; the 256 benchmark
    // texts of shared/tests/encoder_int8.rs average 0.997). A one-word query
    // such as "zombies" sits lowest (0.9948 on CI): a few tokens average out
    // less of the rounding than a sentence does.
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    assert!(cosines.iter().all(|&c| c >= 0.98) && mean >= 0.99, "int8 vs f32 cosines {texts:?}: {cosines:?}");
    let req = nook_core::bundle::IdRequest {
        likes: vec!["1".into(), "50".into(), "181".into()],
        k: 10,
        ..Default::default()
    };
    let ids = |b: &nook_core::Bundle| b.recommend(&req).unwrap().items.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let (a, b) = (ids(&full), ids(&small));
    let overlap = a.iter().filter(|id| b.contains(id)).count();
    assert!(overlap >= 8, "top-10 overlap {overlap}: {a:?} vs {b:?}");
}

/// An encoder directory's prompts (sentence-transformers' `config_sentence_transformers.json`)
/// travel through training and export into the manifest, and `nook recommend` puts the query
/// prompt before what is typed, as the browser does through the same nook-core call.
#[test]
fn the_encoder_prompts_reach_the_manifest_and_prefix_typed_queries() {
    let tmp = tempfile::tempdir().unwrap();
    let encoder = tmp.path().join("encoder");
    std::fs::create_dir(&encoder).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(encoder_dir().join(f), encoder.join(f)).unwrap();
    }
    std::fs::write(
        encoder.join("config_sentence_transformers.json"),
        r#"{"prompts": {"query": "a film about ", "document": "film: "}, "default_prompt_name": null}"#,
    )
    .unwrap();
    let (model, bundle) = (tmp.path().join("model"), tmp.path().join("bundle"));
    let data = ml100k();
    let args = ["train", "--data", path_str(&data), "--out", path_str(&model), "--models", "pop,als,content,hybrid"];
    nook_ok(&[&args[..], &["--encoder", path_str(&encoder)]].concat());
    nook_ok(&["export", "--model", path_str(&model), "--out", path_str(&bundle)]);
    let manifest: Value = serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["encoder"]["prompts"], serde_json::json!({"query": "a film about ", "document": "film: "}));

    let ranked = |bundle: &Path, query: &str| {
        let out = nook_ok(&["recommend", "--bundle", path_str(bundle), "--query", query, "--k", "10", "--json"]);
        items(&out).iter().map(|r| r["id"].clone()).collect::<Vec<_>>()
    };
    let prompted = ranked(&bundle, "zombies and horror");
    // The same bundle with the prompt taken out of its manifest, the prompt typed instead.
    let unprompted = copy_bundle(&bundle);
    let mut edited = manifest.clone();
    edited["encoder"].as_object_mut().unwrap().remove("prompts");
    write_sealed(&unprompted.path().join("manifest.json"), edited);
    assert_eq!(prompted, ranked(unprompted.path(), "a film about zombies and horror"));
    assert_ne!(prompted, ranked(unprompted.path(), "zombies and horror"), "the prompt should move the list");
}
