//! Pooling as the model's sentence-transformers config says: `[CLS]` pooling (the BGE family's)
//! against sentence-transformers' own vectors for the same weights pooled by `[CLS]`, on both
//! engines; and the manifest field that carries it to the browser.

use candle_core::Device;
use nook_core::bundle::EncoderInfo;
use nook_core::encoder::{Pooling, TextEncoder, POOLING_FILE};
use nook_test_support::{cosine, encoder_dir};

fn read(f: &str) -> Vec<u8> {
    std::fs::read(encoder_dir().join(f)).unwrap()
}

fn reference() -> (Vec<String>, Vec<Vec<f32>>) {
    let v: serde_json::Value = serde_json::from_str(include_str!("data/minilm_cls_reference.json")).unwrap();
    let sentences = v["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    let vectors = v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect();
    (sentences, vectors)
}

#[test]
fn cls_pooling_matches_sentence_transformers_on_both_engines() {
    let (sentences, want) = reference();
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let f32_enc =
        TextEncoder::from_bytes(&read("config.json"), &read("tokenizer.json"), read("model.safetensors"), &Device::Cpu)
            .unwrap()
            .with_pooling(Pooling::Cls);
    let int8_enc = TextEncoder::new_int8(&read("config.json"), &read("tokenizer.json"), read("model.safetensors"), 256)
        .unwrap()
        .with_pooling(Pooling::Cls);
    let mean_enc =
        TextEncoder::from_bytes(&read("config.json"), &read("tokenizer.json"), read("model.safetensors"), &Device::Cpu)
            .unwrap();
    let (exact, fast, mean) =
        (f32_enc.embed(&refs).unwrap(), int8_enc.embed(&refs).unwrap(), mean_enc.embed(&refs).unwrap());
    for (i, want) in want.iter().enumerate() {
        let row = |v: &[f32]| v[i * 384..(i + 1) * 384].to_vec();
        let (e, f, m) = (cosine(&row(&exact), want), cosine(&row(&fast), want), cosine(&row(&mean), want));
        assert!(e >= 0.999, "sentence {i}: f32 [CLS] cosine {e}");
        assert!(f >= 0.99, "sentence {i}: int8 [CLS] cosine {f}");
        // The reference is not what mean pooling gives: the test can tell the poolings apart.
        assert!(m < 0.98, "sentence {i}: mean pooling is as close to the [CLS] reference ({m})");
    }
}

#[test]
fn the_model_directory_names_its_pooling_and_bundles_carry_it() {
    // all-MiniLM-L6-v2's own sentence-transformers config: mean.
    assert_eq!(Pooling::from_sentence_transformers(&read(POOLING_FILE)).unwrap(), Pooling::Mean);
    // Mean is left out of a manifest (earlier bundles read, and keep their ids); [CLS] is written.
    let mean = EncoderInfo { max_tokens: 64, pooling: Pooling::Mean, prompts: Default::default() };
    assert_eq!(serde_json::to_string(&mean).unwrap(), r#"{"max_tokens":64}"#);
    let cls = EncoderInfo { max_tokens: 64, pooling: Pooling::Cls, prompts: Default::default() };
    let json = serde_json::to_string(&cls).unwrap();
    assert_eq!(json, r#"{"max_tokens":64,"pooling":"cls"}"#);
    assert_eq!(serde_json::from_str::<EncoderInfo>(&json).unwrap(), cls);
    assert_eq!(serde_json::from_str::<EncoderInfo>(r#"{"max_tokens":64}"#).unwrap(), mean);
    assert!(serde_json::from_str::<EncoderInfo>(r#"{"max_tokens":64,"pooling":"max"}"#).is_err());
}
