//! A hostile or damaged bundle is refused with a precise reason, never a panic: truncated file,
//! checksum mismatch, unknown version, missing tensor, wrong dtype or shape, item-count mismatch,
//! a path leaving the bundle, absurd sizes. Each case damages one file of a tiny valid bundle
//! (random 1-layer BERT, word-level tokenizer) built here.

use nook_core::bundle::{sha256_hex, Bundle, IdRequest, Manifest};
use nook_core::quant::{encode_matrix, serialize, Encoded, Quant};
use safetensors::tensor::Dtype;
use serde_json::{json, Value};
use std::collections::HashMap;

const H: usize = 8;

fn rand_values(n: usize, seed: u64) -> Vec<f32> {
    nook_core::synthetic::values(n, seed).into_iter().map(|v| v * 0.4).collect()
}

fn encoder_tensors(quant: Quant) -> Vec<Encoded> {
    let mut t = Vec::new();
    let mut seed = 1;
    let mut matrix = |name: &str, rows: usize, cols: usize, t: &mut Vec<Encoded>| {
        seed += 1;
        t.extend(encode_matrix(name, &rand_values(rows * cols, seed), rows, Some(cols), quant));
    };
    matrix("embeddings.word_embeddings.weight", 6, H, &mut t);
    matrix("embeddings.position_embeddings.weight", 16, H, &mut t);
    matrix("embeddings.token_type_embeddings.weight", 2, H, &mut t);
    let p = "encoder.layer.0.";
    for name in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
        matrix(&format!("{p}{name}.weight"), H, H, &mut t);
    }
    matrix(&format!("{p}intermediate.dense.weight"), 16, H, &mut t);
    matrix(&format!("{p}output.dense.weight"), H, 16, &mut t);
    let vector = |name: String, n: usize, v: f32| encode_matrix(&name, &vec![v; n], n, None, Quant::F32);
    for ln in ["embeddings.LayerNorm", &format!("{p}attention.output.LayerNorm"), &format!("{p}output.LayerNorm")] {
        t.extend(vector(format!("{ln}.weight"), H, 1.0));
        t.extend(vector(format!("{ln}.bias"), H, 0.0));
    }
    for (name, n) in [
        ("attention.self.query.bias", H),
        ("attention.self.key.bias", H),
        ("attention.self.value.bias", H),
        ("attention.output.dense.bias", H),
        ("intermediate.dense.bias", 16),
        ("output.dense.bias", H),
    ] {
        t.extend(vector(format!("{p}{name}"), n, 0.01));
    }
    t
}

fn tokenizer() -> Value {
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[UNK]": 1, "space": 2, "film": 3, "toy": 4, "story": 5}, "unk_token": "[UNK]"}
    })
}

/// The files of a valid 3-item bundle, without the manifest.
fn files(quant: Quant) -> HashMap<String, Vec<u8>> {
    let config = json!({"vocab_size": 6, "hidden_size": H, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 16, "hidden_act": "gelu", "max_position_embeddings": 16, "type_vocab_size": 2});
    let items =
        json!([{"id": "a", "title": "Toy Story"}, {"id": "b", "title": "Space Film"}, {"id": "c", "title": "Story"}]);
    let mut tables = encode_matrix("cf", &rand_values(6, 7), 3, Some(2), quant);
    tables.extend(encode_matrix("text", &rand_values(3 * H, 8), 3, Some(H), quant));
    tables.extend(encode_matrix("cf_gram", &[1.0, 0.1, 0.1, 1.0], 2, Some(2), Quant::F32));
    tables.extend(encode_matrix("popularity", &[3.0, 2.0, 1.0], 3, None, Quant::F32));
    HashMap::from([
        ("items.json".to_string(), serde_json::to_vec(&items).unwrap()),
        ("items.safetensors".to_string(), serialize(&tables).unwrap()),
        ("encoder/config.json".to_string(), serde_json::to_vec(&config).unwrap()),
        ("encoder/tokenizer.json".to_string(), serde_json::to_vec(&tokenizer()).unwrap()),
        ("encoder/model.safetensors".to_string(), serialize(&encoder_tensors(quant)).unwrap()),
    ])
}

fn manifest_for(files: &HashMap<String, Vec<u8>>, quant: Quant) -> Value {
    let entries: serde_json::Map<String, Value> =
        files.iter().map(|(n, b)| (n.clone(), json!({"sha256": sha256_hex(b), "bytes": b.len()}))).collect();
    json!({
        "format": "nook-bundle", "version": 1, "dataset": "tiny", "created_by": "test", "n_items": 3,
        "cf_dim": 2, "text_dim": H, "quant": quant,
        "scoring": {"cf_weight": 1.0, "text_weight": 0.5, "query_weight": 1.0, "like_confidence": 2.0, "dislike_confidence": 2.0},
        "encoder": {"max_tokens": 16}, "files": entries
    })
}

fn load(manifest: &Value, files: HashMap<String, Vec<u8>>) -> Result<Bundle, String> {
    let m = Manifest::parse(&serde_json::to_vec(manifest).unwrap()).map_err(|e| e.to_string())?;
    Bundle::load(m, files).map_err(|e| e.to_string())
}

/// Replaces one file and re-lists it in the manifest (so only its content is wrong).
fn with_file(name: &str, bytes: Vec<u8>) -> Result<Bundle, String> {
    let mut f = files(Quant::Int8);
    f.insert(name.to_string(), bytes);
    load(&manifest_for(&f, Quant::Int8), f)
}

fn refused(result: Result<Bundle, String>, expected: &str) {
    match result {
        Ok(_) => panic!("accepted a bundle that should be refused ({expected})"),
        Err(e) => assert!(e.contains(expected), "expected {expected:?} in: {e}"),
    }
}

fn items_tensors(mutate: impl FnOnce(&mut Vec<Encoded>)) -> Vec<u8> {
    let mut t = encode_matrix("cf", &rand_values(6, 7), 3, Some(2), Quant::Int8);
    t.extend(encode_matrix("text", &rand_values(3 * H, 8), 3, Some(H), Quant::Int8));
    t.extend(encode_matrix("cf_gram", &[1.0, 0.1, 0.1, 1.0], 2, Some(2), Quant::F32));
    t.extend(encode_matrix("popularity", &[3.0, 2.0, 1.0], 3, None, Quant::F32));
    mutate(&mut t);
    serialize(&t).unwrap()
}

#[test]
fn a_valid_bundle_loads_in_every_quantisation() {
    for quant in [Quant::F32, Quant::F16, Quant::Int8] {
        let f = files(quant);
        let b = load(&manifest_for(&f, quant), f).unwrap();
        let recs = b
            .recommend(&IdRequest {
                likes: vec!["a".into()],
                query: Some("space film".into()),
                k: 2,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(recs.len(), 2);
        assert!(recs.iter().all(|r| r.id != "a"));
    }
}

#[test]
fn truncated_file() {
    let f = files(Quant::Int8);
    let m = manifest_for(&f, Quant::Int8);
    let mut damaged = f.clone();
    let b = damaged.get_mut("encoder/model.safetensors").unwrap();
    b.truncate(b.len() - 100);
    refused(load(&m, damaged), "encoder/model.safetensors: ");
    refused(with_file("items.safetensors", f["items.safetensors"][..40].to_vec()), "items.safetensors: ");
}

#[test]
fn checksum_mismatch() {
    let f = files(Quant::Int8);
    let m = manifest_for(&f, Quant::Int8);
    let mut damaged = f.clone();
    damaged.get_mut("items.json").unwrap()[3] ^= 1;
    refused(load(&m, damaged), "items.json: checksum mismatch");
}

#[test]
fn unknown_format_version_and_foreign_files() {
    let f = files(Quant::Int8);
    let mut m = manifest_for(&f, Quant::Int8);
    m["version"] = json!(2);
    refused(load(&m, f.clone()), "format version Some(2) is not supported");
    let mut m = manifest_for(&f, Quant::Int8);
    m["format"] = json!("something-else");
    refused(load(&m, f.clone()), "not a nook-bundle");
    assert!(Manifest::parse(b"{not json").unwrap_err().to_string().contains("not JSON"));
}

#[test]
fn missing_file_and_missing_tensor() {
    let f = files(Quant::Int8);
    let m = manifest_for(&f, Quant::Int8);
    let mut without = f.clone();
    without.remove("encoder/tokenizer.json");
    refused(load(&m, without), "encoder/tokenizer.json is missing");
    refused(
        with_file("items.safetensors", items_tensors(|t| t.retain(|x| x.name != "popularity"))),
        "no tensor \"popularity\"",
    );
    refused(
        with_file("items.safetensors", items_tensors(|t| t.retain(|x| x.name != "text.scale"))),
        "no tensor \"text.scale\"",
    );
    let encoder: Vec<Encoded> =
        encoder_tensors(Quant::Int8).into_iter().filter(|t| !t.name.contains("output.dense.weight")).collect();
    refused(with_file("encoder/model.safetensors", serialize(&encoder).unwrap()), "encoder");
}

#[test]
fn wrong_dtype_or_shape() {
    refused(
        with_file(
            "items.safetensors",
            items_tensors(|t| {
                let cf = t.iter_mut().find(|x| x.name == "popularity").unwrap();
                cf.dtype = Dtype::I32;
            }),
        ),
        "popularity is I32",
    );
    refused(
        with_file(
            "items.safetensors",
            items_tensors(|t| {
                t.retain(|x| x.name != "cf" && x.name != "cf.scale");
                t.extend(encode_matrix("cf", &rand_values(9, 3), 3, Some(3), Quant::Int8));
            }),
        ),
        "cf has shape [3, 3], expected [3, 2]",
    );
    refused(
        with_file(
            "items.safetensors",
            items_tensors(|t| {
                let s = t.iter_mut().find(|x| x.name == "cf.scale").unwrap();
                s.bytes[..4].copy_from_slice(&(-1.0f32).to_le_bytes());
            }),
        ),
        "non-positive or non-finite scale",
    );
    refused(
        with_file(
            "items.safetensors",
            items_tensors(|t| {
                let s = t.iter_mut().find(|x| x.name == "popularity").unwrap();
                s.bytes[..4].copy_from_slice(&f32::NAN.to_le_bytes());
            }),
        ),
        "NaN or infinite",
    );
}

#[test]
fn item_count_mismatch() {
    let items = serde_json::to_vec(&json!([{"id": "a", "title": "A"}, {"id": "b", "title": "B"}])).unwrap();
    refused(with_file("items.json", items), "items.json has 2 items, manifest says 3");
    let dup =
        serde_json::to_vec(&json!([{"id": "a", "title": "A"}, {"id": "a", "title": "B"}, {"id": "c", "title": "C"}]))
            .unwrap();
    refused(with_file("items.json", dup), "item id \"a\" appears twice");
}

#[test]
fn paths_leaving_the_bundle() {
    let f = files(Quant::Int8);
    for bad in ["../items.json", "/etc/passwd", "encoder/../../x", "a\\b"] {
        let mut m = manifest_for(&f, Quant::Int8);
        m["files"][bad] = json!({"sha256": sha256_hex(b""), "bytes": 0});
        refused(load(&m, f.clone()), "path outside the bundle");
    }
}

#[test]
fn absurd_sizes_are_refused_before_allocating() {
    let f = files(Quant::Int8);
    let mut m = manifest_for(&f, Quant::Int8);
    m["files"]["items.json"]["bytes"] = json!(1u64 << 40);
    refused(load(&m, f.clone()), "over the");
    let mut m = manifest_for(&f, Quant::Int8);
    m["n_items"] = json!(1u64 << 40);
    refused(load(&m, f.clone()), "n_items");
    let mut m = manifest_for(&f, Quant::Int8);
    m["text_dim"] = json!(1 << 20);
    refused(load(&m, f.clone()), "text_dim");
}

#[test]
fn encoder_and_item_dimensions_must_agree() {
    let mut f = files(Quant::Int8);
    f.insert(
        "items.safetensors".into(),
        serialize(&{
            let mut t = encode_matrix("cf", &rand_values(6, 7), 3, Some(2), Quant::Int8);
            t.extend(encode_matrix("text", &rand_values(3 * 4, 8), 3, Some(4), Quant::Int8));
            t.extend(encode_matrix("cf_gram", &[1.0, 0.1, 0.1, 1.0], 2, Some(2), Quant::F32));
            t.extend(encode_matrix("popularity", &[3.0, 2.0, 1.0], 3, None, Quant::F32));
            t
        })
        .unwrap(),
    );
    let mut m = manifest_for(&f, Quant::Int8);
    m["text_dim"] = json!(4);
    refused(load(&m, f), "encoder produces 8 dims, the item text vectors expect 4");
}
