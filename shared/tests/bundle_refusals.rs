//! A hostile or damaged bundle is refused with a precise reason, never a panic: truncated file,
//! checksum mismatch, unknown version, missing tensor, wrong dtype or shape, item-count mismatch,
//! a path leaving the bundle, absurd sizes. Each case damages one file of a tiny valid bundle
//! (random 1-layer BERT, word-level tokenizer) built here.

use nook_core::bundle::{sha256_hex, Bundle, IdRequest, Manifest, VerifiedFiles};
use nook_core::quant::{encode_matrix, serialize, Encoded, Quant};
use safetensors::tensor::Dtype;
use serde_json::json;

mod common;

use common::*;

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
        assert_eq!(recs.items.len(), 2);
        assert!(recs.items.iter().all(|r| r.id != "a"));
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

#[test]
fn a_manifest_edited_after_export_is_refused() {
    let f = files(Quant::Int8);
    let m = manifest_for(&f, Quant::Int8);
    let mut bytes = sealed(&m);
    Manifest::parse(&bytes).expect("the sealed manifest parses");
    // One weight changed by hand, id left as it was.
    let text = String::from_utf8(bytes.clone()).unwrap().replace("\"query_weight\":1.0", "\"query_weight\":9.0");
    let err = Manifest::parse(text.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("does not match its id"), "{err}");
    // No id at all (a manifest from before ids, or one stripped of it).
    let mut stripped = m.clone();
    stripped.as_object_mut().unwrap().remove("id");
    let err = Manifest::parse(stripped.to_string().as_bytes()).unwrap_err().to_string();
    assert!(err.contains("has no id"), "{err}");
    // A flipped byte anywhere, the id itself included.
    for at in [10, bytes.len() / 2, bytes.len() - 3] {
        bytes[at] ^= 0x01;
        assert!(Manifest::parse(&bytes).is_err(), "a flipped byte at {at} was accepted");
        bytes[at] ^= 0x01;
    }
}

#[test]
fn tables_stored_otherwise_than_the_manifest_says_are_refused() {
    // The int8 tiny bundle's manifest claiming f32 (and the reverse): refused, where scoring the
    // int8 rows as the wrong storage used to panic.
    let f = files(Quant::Int8);
    refused(load(&manifest_for(&f, Quant::F32), f), "cf is stored as Int8, the manifest says F32");
    let f = files(Quant::F32);
    refused(load(&manifest_for(&f, Quant::Int8), f), "cf is stored as F32, the manifest says Int8");
    // Int8 rows too wide for exact integer scoring, under a manifest claiming f32 (past the
    // manifest's own width check): refused by the table check, not a panic in scoring.
    let wide = 520;
    let mut f = files(Quant::Int8);
    f.insert(
        "items.safetensors".into(),
        serialize(&{
            let mut t = encode_matrix("cf", &rand_values(3 * wide, 7), 3, Some(wide), Quant::Int8);
            t.extend(encode_matrix("text", &rand_values(3 * H, 8), 3, Some(H), Quant::F32));
            t.extend(encode_matrix("cf_gram", &vec![0.0; wide * wide], wide, Some(wide), Quant::F32));
            t.extend(encode_matrix("popularity", &[3.0, 2.0, 1.0], 3, None, Quant::F32));
            t
        })
        .unwrap(),
    );
    let mut m = manifest_for(&f, Quant::F32);
    m["cf_dim"] = json!(wide);
    refused(load(&m, f), "cf is stored as Int8");
}

#[test]
fn numeric_fields_out_of_range_are_refused() {
    let f = files(Quant::Int8);
    for (field, value, expected) in [
        (["encoder", "max_tokens"], json!(1), "encoder.max_tokens 1"),
        (["encoder", "max_tokens"], json!(1_000_000), "encoder.max_tokens 1000000"),
        (["scoring", "query_weight"], json!(-1.0), "scoring.query_weight"),
        (["scoring", "cf_weight"], json!(1e30), "scoring.cf_weight"),
        (["scoring", "recency_half_life"], json!(-3.0), "scoring.recency_half_life"),
    ] {
        let mut m = manifest_for(&f, Quant::Int8);
        m[field[0]][field[1]] = value;
        refused(load(&m, f.clone()), expected);
    }
}

/// What the browser does: files verified piece by piece as they are read, then loaded without
/// hashing them again. A damaged or overlong file, or files verified against another bundle's
/// manifest, are refused.
#[test]
fn files_verified_while_streaming_load_and_damage_is_refused() {
    let f = files(Quant::Int8);
    let parse = |v: &serde_json::Value| Manifest::parse(&sealed(v)).unwrap();
    let m = parse(&manifest_for(&f, Quant::Int8));
    let streamed = |m: &Manifest, name: &str, bytes: &[u8], verified: &mut VerifiedFiles| {
        let mut incoming = verified.begin(m, name)?;
        for piece in bytes.chunks(7) {
            incoming.push(piece)?;
        }
        verified.finish(m, incoming)
    };
    let mut verified = VerifiedFiles::new(&m);
    for (name, bytes) in &f {
        streamed(&m, name, bytes, &mut verified).unwrap();
    }
    let b = Bundle::from_verified(m.clone(), verified).unwrap();
    assert_eq!(b.recommend(&IdRequest { likes: vec!["a".into()], k: 2, ..Default::default() }).unwrap().items.len(), 2);

    // One flipped byte: the checksum names the file.
    let mut damaged = f["items.json"].clone();
    damaged[3] ^= 1;
    let err = streamed(&m, "items.json", &damaged, &mut VerifiedFiles::new(&m)).unwrap_err().to_string();
    assert!(err.contains("items.json: checksum mismatch"), "{err}");
    // More bytes than listed: refused as they arrive, not after.
    let mut longer = f["items.json"].clone();
    longer.extend_from_slice(&[b' '; 64]);
    let err = streamed(&m, "items.json", &longer, &mut VerifiedFiles::new(&m)).unwrap_err().to_string();
    assert!(err.contains("more than the") && err.contains("items.json"), "{err}");
    // Fewer: refused at the end.
    let short = &f["items.json"][..10];
    let err = streamed(&m, "items.json", short, &mut VerifiedFiles::new(&m)).unwrap_err().to_string();
    assert!(err.contains("truncated or replaced"), "{err}");
    // Whole-file checks fail the same way, and a file the manifest does not list is refused.
    let err = VerifiedFiles::new(&m).insert(&m, "items.json", damaged).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(VerifiedFiles::new(&m).begin(&m, "extra.bin").is_err());

    // Files verified against another bundle's manifest cannot load under this one.
    let mut other_files = f.clone();
    other_files.insert("items.json".into(), f["items.json"].iter().rev().copied().collect());
    let other = parse(&manifest_for(&other_files, Quant::Int8));
    let mut verified = VerifiedFiles::new(&other);
    for (name, bytes) in &other_files {
        verified.insert(&other, name, bytes.clone()).unwrap();
    }
    refused(Bundle::from_verified(m.clone(), verified).map_err(|e| e.to_string()), "another manifest");
    // A file missing from the verified set is named.
    let mut partial = VerifiedFiles::new(&m);
    for (name, bytes) in f.iter().filter(|(n, _)| n.as_str() != "items.json") {
        partial.insert(&m, name, bytes.clone()).unwrap();
    }
    refused(Bundle::from_verified(m, partial).map_err(|e| e.to_string()), "items.json is missing");
}

/// A bundle with sequential rules (`fused-sr`) loads and its rules steer the ranking; rules
/// without the manifest's weight for them, the weight without rules, and settings out of range
/// are refused.
#[test]
fn sequential_rules_load_and_must_match_the_manifest() {
    // Item "a" (0) is followed by "c" (2); nothing else has rules.
    let rules = |t: &mut Vec<Encoded>| {
        let next: Vec<u8> = [2u16, u16::MAX, u16::MAX].iter().flat_map(|j| j.to_le_bytes()).collect();
        t.push(Encoded { name: "rules_next".into(), dtype: Dtype::U16, shape: vec![3, 1], bytes: next });
        t.extend(encode_matrix("rules_weight", &[1.0, 0.0, 0.0], 3, Some(1), Quant::F16));
    };
    let mut f = files(Quant::Int8);
    f.insert("items.safetensors".into(), items_tensors(rules));
    let sequence = json!({"weight": 50.0, "decay": 0.9, "recent": 100});
    let mut m = manifest_for(&f, Quant::Int8);
    m["scoring"]["sequence"] = sequence.clone();
    let b = load(&m, f.clone()).unwrap();
    let first = |b: &Bundle| b.recommend(&IdRequest { likes: vec!["a".into()], k: 1, ..Default::default() });
    assert_eq!(first(&b).unwrap().items[0].id, "c", "a heavy rule puts what followed \"a\" first");
    let mut unweighted = m.clone();
    unweighted["scoring"]["sequence"]["weight"] = json!(0.0);
    assert_eq!(first(&load(&unweighted, f.clone()).unwrap()).unwrap().items[0].id, "b", "without the rules");
    // "More like this" scores the item as one like: its rules count there too.
    let similar = |b: &Bundle| b.similar("a", 1, &[]).unwrap()[0].id.clone();
    assert_eq!(similar(&b), "c", "more like \"a\": what followed it");
    assert_eq!(similar(&load(&unweighted, f.clone()).unwrap()), "b", "more like \"a\" without the rules");
    let mut not_similar = m.clone();
    not_similar["scoring"]["sequence"]["similar_weight"] = json!(0.0);
    let b0 = load(&not_similar, f.clone()).unwrap();
    assert_eq!(similar(&b0), "b", "the rules weighed 0 in \"more like this\" only");
    assert_eq!(first(&b0).unwrap().items[0].id, "c", "recommendations keep the rules' weight");

    refused(load(&manifest_for(&f, Quant::Int8), f.clone()), "sequential rules the manifest does not weigh");
    let mut plain = files(Quant::Int8);
    plain.insert("items.safetensors".into(), items_tensors(|_| {}));
    let mut m = manifest_for(&plain, Quant::Int8);
    m["scoring"]["sequence"] = sequence;
    refused(load(&m, plain), "weighs sequential rules that items.safetensors lacks");
    for (field, value, expected) in [
        ("decay", json!(2.0), "scoring.sequence.decay"),
        ("recent", json!(0), "scoring.sequence.recent"),
        ("weight", json!(-1.0), "scoring.sequence.weight"),
        ("similar_weight", json!(f32::MAX), "scoring.sequence.similar_weight"),
    ] {
        let mut m = manifest_for(&f, Quant::Int8);
        m["scoring"]["sequence"] = json!({"weight": 1.0, "decay": 0.9, "recent": 100});
        m["scoring"]["sequence"][field] = value;
        refused(load(&m, f.clone()), expected);
    }
}
