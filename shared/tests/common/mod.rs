//! A tiny valid bundle (3 items, random 1-layer BERT, word-level tokenizer) built in memory, for
//! the tests that damage it or ask it things.
#![allow(dead_code)]

use nook_core::bundle::{sha256_hex, Bundle, Manifest};
use nook_core::quant::{encode_matrix, serialize, Encoded, Quant};
use serde_json::{json, Value};
use std::collections::HashMap;

pub const H: usize = 8;

pub fn rand_values(n: usize, seed: u64) -> Vec<f32> {
    nook_core::synthetic::values(n, seed).into_iter().map(|v| v * 0.4).collect()
}

pub fn encoder_tensors(quant: Quant) -> Vec<Encoded> {
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

pub fn tokenizer() -> Value {
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[UNK]": 1, "space": 2, "film": 3, "toy": 4, "story": 5}, "unk_token": "[UNK]"}
    })
}

/// The files of a valid 3-item bundle, without the manifest.
pub fn files(quant: Quant) -> HashMap<String, Vec<u8>> {
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

pub fn manifest_for(files: &HashMap<String, Vec<u8>>, quant: Quant) -> Value {
    let entries: serde_json::Map<String, Value> =
        files.iter().map(|(n, b)| (n.clone(), json!({"sha256": sha256_hex(b), "bytes": b.len()}))).collect();
    json!({
        "format": "nook-bundle", "version": 1, "dataset": "tiny", "created_by": "test", "n_items": 3,
        "cf_dim": 2, "text_dim": H, "quant": quant,
        "scoring": {"cf_weight": 1.0, "text_weight": 0.5, "query_weight": 1.0, "like_confidence": 2.0, "dislike_confidence": 2.0},
        "encoder": {"max_tokens": 16}, "files": entries
    })
}

/// `manifest` as `manifest.json` bytes, sealed (its id computed) as the exporter does.
pub fn sealed(manifest: &Value) -> Vec<u8> {
    let mut m = manifest.clone();
    m["id"] = Value::from("");
    nook_core::bundle::seal(&serde_json::to_vec(&m).unwrap()).unwrap()
}

pub fn load(manifest: &Value, files: HashMap<String, Vec<u8>>) -> Result<Bundle, String> {
    let m = Manifest::parse(&sealed(manifest)).map_err(|e| e.to_string())?;
    Bundle::load(m, files).map_err(|e| e.to_string())
}

/// The tiny bundle, loaded.
pub fn tiny_bundle() -> Bundle {
    let f = files(Quant::Int8);
    load(&manifest_for(&f, Quant::Int8), f).expect("the tiny bundle loads")
}
