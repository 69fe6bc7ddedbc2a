//! An encoder directory's sentence-transformers pooling and prompts reach every engine the
//! trainer builds, and the text-vector cache tells them apart.

mod common;

use common::*;
use nook_core::encoder::{Pooling, Prompts, PROMPTS_FILE};
use nook_test_support::cosine;
use nook_trainer::textvec::{embed_all, EncoderSource};

/// all-MiniLM-L6-v2's weights and tokenizer in a directory of their own.
fn encoder_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(encoder_dir().join(f), tmp.path().join(f)).unwrap();
    }
    tmp
}

/// all-MiniLM-L6-v2's files with a `1_Pooling/config.json` of our choosing.
fn encoder_with_pooling(pooling: &str) -> tempfile::TempDir {
    let tmp = encoder_copy();
    std::fs::create_dir(tmp.path().join("1_Pooling")).unwrap();
    std::fs::write(tmp.path().join("1_Pooling/config.json"), pooling).unwrap();
    tmp
}

#[test]
fn the_directory_pooling_reaches_both_engines_and_the_cache_key() {
    let cls = encoder_with_pooling(
        r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
    );
    let source = EncoderSource { dir: cls.path().to_path_buf(), max_tokens: 256 };
    assert_eq!(source.pooling().unwrap(), Pooling::Cls);
    let base = EncoderSource { dir: encoder_dir(), max_tokens: 256 };
    assert_eq!(base.pooling().unwrap(), Pooling::Mean, "all-MiniLM-L6-v2 pools by mean");
    assert_ne!(source.fingerprint().unwrap(), base.fingerprint().unwrap(), "cached vectors are keyed by pooling");

    let reference: serde_json::Value =
        serde_json::from_str(include_str!("../../shared/tests/data/minilm_cls_reference.json")).unwrap();
    let sentence = reference["sentences"][4].as_str().unwrap();
    let want: Vec<f32> =
        reference["vectors"][4].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    let f32_vec = source.load(&candle_core::Device::Cpu).unwrap().embed(&[sentence]).unwrap();
    let int8_vec = source.load_int8().unwrap().embed(&[sentence]).unwrap();
    assert!(cosine(&f32_vec, &want) >= 0.999, "f32: {}", cosine(&f32_vec, &want));
    assert!(cosine(&int8_vec, &want) >= 0.99, "int8: {}", cosine(&int8_vec, &want));

    let max = encoder_with_pooling(r#"{"pooling_mode_max_tokens": true}"#);
    let err =
        format!("{:#}", EncoderSource { dir: max.path().to_path_buf(), max_tokens: 256 }.load_int8().err().unwrap());
    assert!(err.contains("1_Pooling/config.json") && err.contains("`max`"), "{err}");
}

#[test]
fn the_directory_prompts_prefix_item_texts_and_queries_and_key_the_cache() {
    let dir = encoder_copy();
    std::fs::write(
        dir.path().join(PROMPTS_FILE),
        r#"{"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": null}"#,
    )
    .unwrap();
    let source = EncoderSource { dir: dir.path().to_path_buf(), max_tokens: 256 };
    let want = Prompts { query: "query: ".into(), document: "passage: ".into() };
    assert_eq!(source.prompts().unwrap(), want);
    let base = EncoderSource { dir: encoder_dir(), max_tokens: 256 };
    assert!(base.prompts().unwrap().is_empty(), "all-MiniLM-L6-v2 has no prompts");
    assert_ne!(source.fingerprint().unwrap(), base.fingerprint().unwrap(), "cached vectors are keyed by prompts");

    let title = "Toy Story (1995) Adventure|Animation|Children|Comedy|Fantasy".to_string();
    for encoder in [source.load(&candle_core::Device::Cpu).unwrap(), source.load_int8().unwrap()] {
        assert_eq!(encoder.prompts(), &want);
        let item = embed_all(&encoder, std::slice::from_ref(&title), "test").unwrap();
        assert_eq!(item, encoder.embed(&[&format!("passage: {title}")]).unwrap(), "{}", encoder.engine());
        let query = encoder.embed_query("a toy comes to life").unwrap();
        assert_eq!(query, encoder.embed(&["query: a toy comes to life"]).unwrap(), "{}", encoder.engine());
        // The prefix changes the vector: the checks above can tell a prompted text from a plain one.
        assert!(cosine(&item, &encoder.embed(&[&title]).unwrap()) < 0.999);
    }

    std::fs::write(dir.path().join(PROMPTS_FILE), r#"{"prompts": {"query": 1}}"#).unwrap();
    let err = format!("{:#}", source.load_int8().err().unwrap());
    assert!(err.contains(PROMPTS_FILE) && err.contains(&dir.path().display().to_string()), "{err}");
}
