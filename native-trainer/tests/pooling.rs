//! An encoder directory's sentence-transformers pooling reaches every engine the trainer builds,
//! and the text-vector cache tells the poolings apart.

mod common;

use common::*;
use nook_core::encoder::Pooling;
use nook_test_support::cosine;
use nook_trainer::textvec::EncoderSource;

/// all-MiniLM-L6-v2's files with a `1_Pooling/config.json` of our choosing.
fn encoder_with_pooling(pooling: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(encoder_dir().join(f), tmp.path().join(f)).unwrap();
    }
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
