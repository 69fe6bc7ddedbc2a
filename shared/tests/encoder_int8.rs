//! The int8 engine (what int8 bundles embed queries with, natively and in the browser) against the
//! f32 encoder and sentence-transformers' reference vectors.

use candle_core::Device;
use nook_core::encoder::TextEncoder;
use nook_test_support::{cosine, encoder_dir, movielens_small};

fn read(f: &str) -> Vec<u8> {
    std::fs::read(encoder_dir().join(f)).unwrap()
}

fn f32_encoder() -> TextEncoder {
    TextEncoder::from_bytes(&read("config.json"), &read("tokenizer.json"), read("model.safetensors"), &Device::Cpu)
        .unwrap()
}

/// Quantised on load exactly as the exporter quantises a bundle (absmax int8 per row).
fn int8_encoder() -> TextEncoder {
    let max_tokens = nook_core::encoder::DEFAULT_MAX_TOKENS;
    let enc =
        TextEncoder::new_int8(&read("config.json"), &read("tokenizer.json"), read("model.safetensors"), max_tokens)
            .unwrap();
    assert_eq!(enc.engine(), "int8");
    enc
}

#[test]
fn int8_engine_tracks_sentence_transformers() {
    let v: serde_json::Value = serde_json::from_str(include_str!("data/minilm_reference.json")).unwrap();
    let sentences: Vec<&str> = v["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let enc = int8_encoder();
    let got = enc.embed(&sentences).unwrap();
    for (i, want) in v["vectors"].as_array().unwrap().iter().enumerate() {
        let want: Vec<f32> = want.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let row = &got[i * 384..(i + 1) * 384];
        let cos = cosine(row, &want);
        assert!(cos >= 0.99, "sentence {i} ({:?}): cosine {cos}", sentences[i]);
        // No padding in the int8 engine: a text alone gives exactly its vector in a batch.
        assert_eq!(enc.embed(&[sentences[i]]).unwrap(), row, "sentence {i}: alone and in a batch differ");
    }
}

#[test]
fn int8_engine_refuses_what_it_cannot_run() {
    let enc = int8_encoder();
    let batch = enc.batch(&[vec![101, 102]]).unwrap();
    assert!(enc.forward(&batch, nook_core::encoder::Mode::Inference).is_err(), "tensors need the f32 engine");
    assert!(enc.embed_ids(&[vec![101, 999_999, 102]]).is_err(), "a token id outside the vocabulary is refused");
    assert!(enc.embed_ids(&[vec![]]).is_err(), "nothing to embed is refused");
    let long = "word ".repeat(2000);
    assert_eq!(enc.tokenize(&long).unwrap().len(), enc.max_tokens());
    assert_eq!(enc.embed(&[&long]).unwrap().len(), 384, "the longest input embeds");
}

/// The accuracy bar, on the benchmark texts (the first 256 movielens-small items with a
/// plot overview, "title. overview", as `bench/bench_texts.py` writes them): against the f32
/// encoder (itself within cosine 0.999 of sentence-transformers), mean cosine ≥ 0.995, min ≥ 0.98.
#[test]
#[ignore = "needs movielens-small (NOOK_MOVIELENS_SMALL or ../shared/data/movielens-small)"]
fn int8_engine_is_accurate_on_the_benchmark_texts() {
    let mut reader = csv::Reader::from_path(movielens_small().join("items_text.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (title, overview) = (col("title"), col("overview"));
    let texts: Vec<String> = reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| !r[overview].is_empty())
        .take(256)
        .map(|r| format!("{}. {}", &r[title], &r[overview]).replace('\n', " "))
        .collect();
    assert_eq!(texts.len(), 256);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let exact = f32_encoder().embed(&refs).unwrap();
    let fast = int8_encoder().embed(&refs).unwrap();
    let cosines: Vec<f32> = exact.chunks_exact(384).zip(fast.chunks_exact(384)).map(|(a, b)| cosine(a, b)).collect();
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    let min = cosines.iter().copied().fold(f32::INFINITY, f32::min);
    eprintln!("int8 vs f32 on 256 texts: mean cosine {mean:.5}, min {min:.5}");
    assert!(mean >= 0.995 && min >= 0.98, "mean cosine {mean}, min {min}");
}
