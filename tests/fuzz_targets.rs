//! The bodies of nook's fuzz targets (`fuzz/fuzz_targets/*.rs` call these), shared with the
//! corpus replay test so CI runs every saved input through exactly the same code.
//! Each must return normally for any input: errors are fine, panics are bugs.

use nook_core::bundle::{IdRequest, Manifest};
use nook_core::{Catalog, ItemMeta, Scoring};
use std::sync::OnceLock;

/// Interactions CSV rows (generic layout) through the trainer's loader.
pub fn csv_rows(data: &[u8]) {
    let dir = std::env::temp_dir().join(format!("nook-fuzz-csv-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("inter.csv");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let source = nook_trainer::data::Source {
        interactions: Some(path),
        format: Some(nook_trainer::data::Format::Generic),
        skip_bad_rows: data.first().is_some_and(|b| b & 1 == 1),
        ..Default::default()
    };
    let _ = nook_trainer::data::load(&source);
}

/// Sets a JSON manifest's id as the exporter would, so mutated manifests get past the id check
/// (which a fuzzer cannot forge) to the checks behind it; the id check has its own tests.
fn sealed(manifest: &[u8]) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(manifest).ok()?;
    value.as_object_mut()?.insert("id".into(), "".into());
    nook_core::bundle::seal(&serde_json::to_vec(&value).ok()?).ok()
}

/// A manifest (first part) and an items table (second part, after the first 0xFF byte) through
/// the bundle loader's parsing and checks.
pub fn bundle_load(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0xFF).unwrap_or(data.len());
    let (manifest, tensors) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let _ = Manifest::parse(manifest); // as given: almost always refused by the id check
    let Some(manifest) = sealed(manifest) else { return };
    let Ok(m) = Manifest::parse(&manifest) else { return };
    if m.n_items > 100_000 {
        return; // item metadata below is built per item; the loader itself refuses absurd sizes
    }
    let items = (0..m.n_items)
        .map(|i| ItemMeta { id: i.to_string(), title: String::new(), year: None, genres: vec![] })
        .collect();
    let _ = nook_core::bundle::read_catalog(&m, items, tensors);
    let _ = nook_core::bundle::verify_file(&m, "items.json", tensors);
}

/// A whole bundle, mutated, loaded **and used**: the tiny valid bundle of nook-core's tests with
/// (1) a JSON object merged over its manifest (any field, numbers included), (2) one of its files
/// replaced by fuzzed bytes (listed with their true hash, so parsing is what gets tested), then,
/// if it loads, a fuzzed request (likes, dislikes, query, k, diversity) recommended, the query
/// embedded and "more like this" asked. Parts are separated by 0xFF bytes; the first byte picks
/// the file.
pub fn bundle_use(data: &[u8]) {
    let mut parts = data.splitn(4, |&b| b == 0xFF);
    let (head, patch, file, request) =
        (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]), parts.next(), parts.next().unwrap_or(&[]));
    let mut files = tiny::files(nook_core::quant::Quant::Int8);
    let mut manifest = tiny::manifest_for(&files, nook_core::quant::Quant::Int8);
    if let (Ok(serde_json::Value::Object(patch)), Some(target)) =
        (serde_json::from_slice::<serde_json::Value>(patch), manifest.as_object_mut())
    {
        merge(target, patch);
    }
    if let Some(bytes) = file {
        let mut names: Vec<String> = files.keys().cloned().collect();
        names.sort();
        let name = names[*head.first().unwrap_or(&0) as usize % names.len()].clone();
        manifest["files"][&name] =
            serde_json::json!({"sha256": nook_core::bundle::sha256_hex(bytes), "bytes": bytes.len()});
        files.insert(name, bytes.to_vec());
    }
    let Some(bytes) = sealed(manifest.to_string().as_bytes()) else { return };
    let Ok(m) = Manifest::parse(&bytes) else { return };
    if m.n_items > 10_000 {
        return; // the tiny files cannot hold more; the loader refuses the mismatch anyway
    }
    let Ok(bundle) = nook_core::Bundle::load(m, files) else { return };
    let req = serde_json::from_slice::<IdRequest>(request).unwrap_or_else(|_| IdRequest {
        likes: vec!["a".into(), "zz".into()],
        dislikes: vec!["b".into()],
        query: Some(String::from_utf8_lossy(request).into_owned()),
        k: 2,
        diversity: 0.5,
        query_weight: None,
    });
    let _ = bundle.recommend(&req);
    let _ = bundle.embed(req.query.as_deref().unwrap_or("toy story"));
    let like = req.likes.first().map(String::as_str).unwrap_or("a");
    let _ = bundle.similar(like, req.k, &req.dislikes);
}

fn merge(target: &mut serde_json::Map<String, serde_json::Value>, patch: serde_json::Map<String, serde_json::Value>) {
    for (key, value) in patch {
        match (target.get_mut(&key), value) {
            (Some(serde_json::Value::Object(inner)), serde_json::Value::Object(patch)) => merge(inner, patch),
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

#[path = "../shared/tests/common/mod.rs"]
mod tiny;

/// A tiny interactions file (30 people, 20 items) and the tiny bundle, written once per process.
fn cli_fixtures() -> &'static (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    static F: OnceLock<(tempfile::TempDir, std::path::PathBuf, std::path::PathBuf)> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let inter = dir.path().join("inter.csv");
        let mut csv = String::from("user,item,rating,timestamp\n");
        for u in 0..30 {
            for k in 0..8 {
                csv += &format!("u{u},i{},{},{}\n", (u * 3 + k * 7) % 20, 1 + (u + k) % 5, 1_000_000 + u * 100 + k);
            }
        }
        std::fs::write(&inter, csv).expect("write interactions");
        let bundle = dir.path().join("bundle");
        std::fs::create_dir_all(bundle.join("encoder")).expect("bundle dir");
        let files = tiny::files(nook_core::quant::Quant::Int8);
        let manifest = tiny::sealed(&tiny::manifest_for(&files, nook_core::quant::Quant::Int8));
        for (name, bytes) in &files {
            std::fs::write(bundle.join(name), bytes).expect("bundle file");
        }
        std::fs::write(bundle.join("manifest.json"), manifest).expect("manifest");
        (dir, inter, bundle)
    })
}

/// Numbers from the fuzzer on nook's real command line: one numeric option of one command
/// (found by asking clap) gets a value made from the input — text, an integer, a float's bits or
/// an edge case — and whatever parses is then run where running is cheap: `split` and
/// `train --models pop,als,bpr` on a tiny data set, `recommend` and `similar` on the tiny bundle.
/// Other commands' options are only parsed.
pub fn cli_numbers(data: &[u8]) {
    use clap::Parser;
    use nook_trainer::commands::{self, Cli};
    static OPTIONS: OnceLock<Vec<commands::NumericOption>> = OnceLock::new();
    let options = OPTIONS.get_or_init(commands::numeric_options);
    let (Some(&pick), Some(&mode)) = (data.first(), data.get(1)) else { return };
    let rest = &data[2.min(data.len())..];
    let option = &options[pick as usize % options.len()];
    let bytes8 = |r: &[u8]| {
        let mut b = [0u8; 8];
        b.iter_mut().zip(r).for_each(|(d, s)| *d = *s);
        b
    };
    const EDGES: [&str; 12] =
        ["0", "-0", "1", "0.0", "1e-45", "3.4e38", "4294967296", "65536", "-0.0", "0x10", "1_000", " 7 "];
    let value = match mode % 5 {
        0 => String::from_utf8_lossy(&rest[..rest.len().min(40)]).into_owned(),
        1 => i64::from_le_bytes(bytes8(rest)).to_string(),
        2 => f64::from_le_bytes(bytes8(rest)).to_string(),
        3 => (rest.first().copied().unwrap_or(0) as i8).to_string(),
        _ => EDGES[rest.first().copied().unwrap_or(0) as usize % EDGES.len()].to_string(),
    };
    let (dir, inter, bundle) = cli_fixtures();
    let out = dir.path().join("out");
    let (inter, bundle, out) = (inter.to_str().unwrap(), bundle.to_str().unwrap(), out.to_str().unwrap());
    let extra: Vec<&str> = match option.path.first().map(String::as_str) {
        Some("split") => vec!["--interactions", inter, "--out", out],
        Some("train") => vec!["--interactions", inter, "--out", out, "--models", "pop,als,bpr", "--no-eval"],
        Some("recommend") => vec!["--like", "a", "--dislike", "b", "--query", "toy story"],
        Some("similar") => vec![],
        _ => vec![],
    };
    let mut argv = option.argv(&value, &extra);
    // Placeholders for required arguments become the fixtures.
    for i in 1..argv.len() {
        if argv[i] == "x" {
            argv[i] = match argv[i - 1].as_str() {
                "--bundle" => bundle.to_string(),
                "--item" => "a".to_string(),
                _ => continue,
            };
        }
    }
    let Ok(cli) = Cli::try_parse_from(&argv) else { return };
    if matches!(option.path.first().map(String::as_str), Some("split" | "train" | "recommend" | "similar")) {
        let _ = commands::run(cli.command);
    }
}

fn tokenizer() -> Option<&'static tokenizers::Tokenizer> {
    static T: OnceLock<Option<tokenizers::Tokenizer>> = OnceLock::new();
    T.get_or_init(|| {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/models/all-MiniLM-L6-v2/tokenizer.json");
        tokenizers::Tokenizer::from_file(path).ok()
    })
    .as_ref()
}

/// Whether the tokenizer asset is present (the replay test insists on it: without it `tokenize`
/// would check nothing).
pub fn tokenizer_loaded() -> bool {
    tokenizer().is_some()
}

/// Arbitrary bytes (made UTF-8 the way the browser's TextDecoder does) through the tokenizer the
/// encoder uses.
pub fn tokenize(data: &[u8]) {
    if let Some(t) = tokenizer() {
        let text = String::from_utf8_lossy(data);
        let _ = t.encode(text.as_ref(), true);
    }
}

fn catalog() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| {
        let c = nook_core::synthetic::catalog(50, 4, 8, false, 3);
        c.with_rules(nook_core::synthetic::rules(50, 6, 4)).expect("rules for every item")
    })
}

/// A recommendation request as JSON (what the browser sends) through id resolution and ranking.
pub fn recommend(data: &[u8]) {
    let Ok(req) = serde_json::from_slice::<IdRequest>(data) else { return };
    let c = catalog();
    let s = Scoring {
        cf_weight: 1.0,
        text_weight: 0.5,
        query_weight: 1.0,
        like_confidence: 2.0,
        dislike_confidence: 2.0,
        recency_half_life: 10.0,
        expansion: nook_core::Expansion::OFF,
        similar_text_weight: None,
        sequence: Some(nook_core::sequence::Sequence {
            weight: 0.5,
            decay: 0.9,
            recent: 20,
            similar_weight: Some(1.0),
        }),
    };
    let Ok(likes) = req.likes.iter().map(|id| c.index_of(id)).collect::<Result<Vec<_>, _>>() else { return };
    let Ok(dislikes) = req.dislikes.iter().map(|id| c.index_of(id)).collect::<Result<Vec<_>, _>>() else { return };
    if req.k == 0 || req.k > nook_core::bundle::MAX_K {
        return; // Bundle::to_request refuses these
    }
    let query = req.query.map(|q| (0..8).map(|i| ((q.len() + i) % 5) as f32 * 0.1).collect());
    let _ = c.recommend(
        &s,
        &nook_core::Request {
            likes,
            dislikes,
            query,
            k: req.k,
            diversity: req.diversity,
            query_weight: req.query_weight,
        },
    );
}
