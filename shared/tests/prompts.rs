//! A bundle's encoder prompts: the manifest carries the query prompt the item texts were matched
//! against, and the one embedding path native and browser share puts it before what a person
//! types; absent, manifests read and keep their ids; oversized, refused with a reason. (The
//! prompts of a real model, e5-small's, are checked against onnxruntime in `encoder.rs`.)

use nook_core::bundle::EncoderInfo;
use nook_core::encoder::{Pooling, Prompts};
use nook_core::quant::Quant;
use serde_json::json;

mod common;

#[test]
fn the_bundle_embeds_a_typed_query_after_its_query_prompt() {
    let files = common::files(Quant::Int8);
    let plain = common::load(&common::manifest_for(&files, Quant::Int8), files.clone()).unwrap();
    let mut manifest = common::manifest_for(&files, Quant::Int8);
    manifest["encoder"]["prompts"] = json!({"query": "space "});
    let prompted = common::load(&manifest, files).unwrap();
    assert_eq!(prompted.manifest.encoder.prompts.query, "space ");

    assert_eq!(prompted.embed("toy story").unwrap(), plain.embed("space toy story").unwrap());
    assert_ne!(
        prompted.embed("toy story").unwrap(),
        plain.embed("toy story").unwrap(),
        "the prompt changes the vector"
    );
    // The whole request path, as `nook recommend` and the browser take it.
    let request = |query: &str| {
        serde_json::from_value::<nook_core::bundle::IdRequest>(json!({"query": query, "k": 3, "likes": ["c"]})).unwrap()
    };
    let ranked = |b: &nook_core::bundle::Bundle, q: &str| {
        b.recommend(&request(q)).unwrap().items.into_iter().map(|i| i.id).collect::<Vec<_>>()
    };
    assert_eq!(ranked(&prompted, "toy story"), ranked(&plain, "space toy story"));
}

#[test]
fn manifests_without_prompts_keep_their_form_and_oversized_prompts_are_refused() {
    let none = EncoderInfo { max_tokens: 64, pooling: Pooling::Mean, prompts: Prompts::default() };
    assert_eq!(serde_json::to_string(&none).unwrap(), r#"{"max_tokens":64}"#);
    let e5 = EncoderInfo { prompts: Prompts { query: "query: ".into(), document: "passage: ".into() }, ..none.clone() };
    let json = serde_json::to_string(&e5).unwrap();
    assert_eq!(json, r#"{"max_tokens":64,"prompts":{"query":"query: ","document":"passage: "}}"#);
    assert_eq!(serde_json::from_str::<EncoderInfo>(&json).unwrap(), e5);

    let files = common::files(Quant::Int8);
    let mut manifest = common::manifest_for(&files, Quant::Int8);
    manifest["encoder"]["prompts"] = json!({"query": "x".repeat(nook_core::encoder::prompt::MAX_PROMPT_BYTES + 1)});
    let err = common::load(&manifest, files.clone()).err().unwrap();
    assert!(err.contains("encoder.prompts") && err.contains("query prompt"), "{err}");
    manifest["encoder"]["prompts"] = json!({"query": 7});
    assert!(common::load(&manifest, files.clone()).is_err());
    // A prompt this client does not know how to apply is refused, not skipped.
    manifest["encoder"]["prompts"] = json!({"query": "query: ", "passage": "passage: "});
    let err = common::load(&manifest, files).err().unwrap();
    assert!(err.contains("passage"), "{err}");
}
