//! Fine-tuning on real interactions: it lowers the loss, moves only the trained layers, its weights
//! load into the inference path unchanged, and an interrupted run resumes to the same result.

mod common;

use candle_core::{Device, Tensor};
use common::*;
use nook_core::encoder::Mode;
use nook_trainer::finetune::{self, FineTuned, FinetuneConfig};
use nook_trainer::models::{AlsConfig, REGISTRY};
use nook_trainer::split::{Split, SplitConfig};
use nook_trainer::store;
use nook_trainer::textvec::{self, EncoderSource};
use nook_trainer::training::{ModelConfig, ModelSet};

fn encoder_source() -> EncoderSource {
    EncoderSource { dir: encoder_dir(), max_tokens: 64 }
}

fn setup() -> (EncoderSource, Vec<String>, Split) {
    let data = load_dir(&ml100k(), false).unwrap();
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    let texts = data.items.iter().map(|i| i.text()).collect();
    (encoder_source(), texts, split)
}

fn small(steps: usize) -> FinetuneConfig {
    FinetuneConfig {
        steps,
        batch: 16,
        max_tokens: 32,
        learning_rate: 2e-4,
        checkpoint_every: 3,
        ..FinetuneConfig::default()
    }
}

fn run(cfg: &FinetuneConfig, ckpt: &std::path::Path, resume: bool) -> anyhow::Result<FineTuned> {
    let (source, texts, split) = setup();
    finetune::run(&source, &texts, &split, cfg, None, None, &Device::Cpu, ckpt, resume)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn trains_only_the_top_layers_and_lowers_the_loss() {
    let (source, _, _) = setup();
    let ckpt = tempfile::tempdir().unwrap();
    let ft = run(&small(24), ckpt.path(), false).unwrap();
    assert_eq!(ft.losses.len(), 24);
    assert!(ft.losses.iter().all(|l| l.is_finite()));
    let first: f32 = ft.losses[..6].iter().sum::<f32>() / 6.0;
    let last: f32 = ft.losses[18..].iter().sum::<f32>() / 6.0;
    assert!(last < first, "loss did not fall: first steps {first:.3}, last steps {last:.3}");

    let original = candle_core::safetensors::load(source.dir.join("model.safetensors"), &Device::Cpu).unwrap();
    for (name, before) in &original {
        let after = &ft.weights[name];
        let moved = max_diff(
            &before.to_dtype(candle_core::DType::F32).unwrap(),
            &after.to_dtype(candle_core::DType::F32).unwrap(),
        ) > 0.0;
        let trained = name.starts_with("encoder.layer.4.") || name.starts_with("encoder.layer.5.");
        if name.ends_with("attention.self.key.bias") {
            continue; // zero gradient by softmax invariance; only weight decay touches it
        }
        assert_eq!(moved, trained, "{name}: moved={moved}, expected trained={trained}");
    }
}

#[test]
fn saved_weights_give_the_training_graphs_vectors_in_the_inference_path() {
    setup();
    let ckpt = tempfile::tempdir().unwrap();
    let ft = run(&small(3), ckpt.path(), false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    ft.save_dir(dir.path()).unwrap();
    let loaded = EncoderSource { dir: dir.path().to_owned(), max_tokens: 64 }.load(&Device::Cpu).unwrap();
    let in_memory = ft.encoder(64, &Device::Cpu).unwrap();
    let texts = ["Toy Story (1995). Genres: Animation.", "A long heist film about a crew of thieves in Los Angeles"];
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| loaded.tokenize(t).unwrap()).collect();
    let inference = loaded.forward(&loaded.batch(&ids).unwrap(), Mode::Inference).unwrap();
    // Against candle's generic ops: on x86 inference and training share the fused kernels.
    let training = in_memory.forward(&in_memory.batch(&ids).unwrap(), Mode::Composed).unwrap();
    let diff = max_diff(&inference, &training);
    assert!(diff < 1e-4, "inference path differs from the composed training graph by {diff}");

    // `--text-engine int8`: the int8 engine over the same fine-tuned weights tracks them.
    let int8 = ft.encoder_int8(64).unwrap();
    assert_eq!(int8.engine(), "int8");
    let (exact, fast) = (in_memory.embed(&texts).unwrap(), int8.embed(&texts).unwrap());
    let dim = in_memory.dim();
    for (i, (a, b)) in exact.chunks_exact(dim).zip(fast.chunks_exact(dim)).enumerate() {
        let cos = nook_test_support::cosine(a, b);
        assert!(cos >= 0.99, "text {i}: int8 vs f32 cosine {cos}");
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_weights() {
    setup();
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = run(&small(7), straight_dir.path(), false).unwrap();

    let resumed_dir = tempfile::tempdir().unwrap();
    let err = run(&FinetuneConfig { stop_after: Some(4), ..small(7) }, resumed_dir.path(), false).err().unwrap();
    assert!(err.to_string().contains("stopped after 4 steps"), "{err}");
    let resumed = run(&small(7), resumed_dir.path(), true).unwrap();
    assert_eq!(resumed.losses.len(), 7);
    for (a, b) in straight.losses.iter().zip(&resumed.losses) {
        assert!((a - b).abs() < 1e-4, "losses {:?} vs {:?}", straight.losses, resumed.losses);
    }
    for (name, w) in &straight.weights {
        if w.dtype() == candle_core::DType::F32 {
            let d = max_diff(w, &resumed.weights[name]);
            assert!(d < 1e-5, "{name} differs by {d} after resuming");
        }
    }
    // A checkpoint for other settings is refused rather than silently mixed in.
    let err = run(&FinetuneConfig { learning_rate: 1e-3, ..small(7) }, resumed_dir.path(), true).err().unwrap();
    assert!(err.to_string().contains("checkpoint is for other settings"), "{err}");
}

#[test]
fn reusing_the_frozen_blocks_output_trains_the_same_weights_to_the_bit() {
    setup();
    let cached_dir = tempfile::tempdir().unwrap();
    let cached = run(&small(7), cached_dir.path(), false).unwrap();
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = run(&FinetuneConfig { frozen_cache_bytes: 0, ..small(7) }, plain_dir.path(), false).unwrap();
    // 7 steps of 16 pairs on MovieLens 100k draw popular items more than once.
    assert!(cached.frozen_reused > 0, "no text was drawn twice");
    assert_eq!(plain.frozen_reused, 0);
    assert_eq!(cached.losses, plain.losses);
    for (name, w) in &plain.weights {
        let (a, b) = (w.flatten_all().unwrap(), cached.weights[name].flatten_all().unwrap());
        if w.dtype() == candle_core::DType::F32 {
            assert_eq!(a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap(), "{name} differs with the cache");
        }
    }
}

#[test]
fn items_left_out_never_appear_in_a_training_pair() {
    let (source, texts, split) = setup();
    let ckpt = tempfile::tempdir().unwrap();
    // Every item but two left out: at most their own pairs remain, too few for a batch of 16.
    let mut left_out = vec![true; split.n_items];
    left_out[..2].iter_mut().for_each(|o| *o = false);
    let err =
        finetune::run(&source, &texts, &split, &small(2), Some(&left_out), None, &Device::Cpu, ckpt.path(), false)
            .err()
            .expect("too few pairs to fine-tune on");
    assert!(err.to_string().contains("co-consumed pairs"), "{err}");
    // Nothing left out: the same settings train.
    let ft = finetune::run(
        &source,
        &texts,
        &split,
        &small(2),
        Some(&vec![false; split.n_items]),
        None,
        &Device::Cpu,
        ckpt.path(),
        false,
    )
    .unwrap();
    assert_eq!(ft.losses.len(), 2);
}

#[test]
fn hard_negatives_come_from_the_frozen_text_and_resume_exactly() {
    let (source, texts, split) = setup();
    let cfg = FinetuneConfig { hard_negatives: 20, ..small(5) };
    let go = |cfg: &FinetuneConfig, frozen: Option<&[f32]>, dir: &std::path::Path, resume: bool| {
        finetune::run(&source, &texts, &split, cfg, None, frozen, &Device::Cpu, dir, resume)
    };
    let dir = tempfile::tempdir().unwrap();
    let err = go(&cfg, None, dir.path(), false).err().expect("no frozen vectors to find neighbours in");
    assert!(err.to_string().contains("frozen encoder's item vectors"), "{err}");

    let frozen = textvec::embed_all(&source.load(&Device::Cpu).unwrap(), &texts, "frozen").unwrap();
    let straight = go(&cfg, Some(&frozen), dir.path(), false).unwrap();
    // The same first batch from the same weights: each negative adds a term to the anchors'
    // softmax, so the first loss rises above in-batch contrast's.
    let plain = run(&small(5), tempfile::tempdir().unwrap().path(), false).unwrap();
    assert!(straight.losses[0] > plain.losses[0] + 0.05, "{:?} vs {:?}", straight.losses, plain.losses);

    let resumed_dir = tempfile::tempdir().unwrap();
    let stopped = go(&FinetuneConfig { stop_after: Some(2), ..cfg.clone() }, Some(&frozen), resumed_dir.path(), false);
    assert!(stopped.err().unwrap().to_string().contains("stopped after 2 steps"));
    let resumed = go(&cfg, Some(&frozen), resumed_dir.path(), true).unwrap();
    for (name, w) in &straight.weights {
        if w.dtype() == candle_core::DType::F32 {
            let d = max_diff(w, &resumed.weights[name]);
            assert!(d < 1e-5, "{name} differs by {d} after resuming");
        }
    }
    // A checkpoint without hard negatives is for other settings.
    let err = go(&small(5), Some(&frozen), resumed_dir.path(), true).err().unwrap();
    assert!(err.to_string().contains("checkpoint is for other settings"), "{err}");
}

/// `--ft-hard-negatives 0,5`: a fine-tuning per count, each in its own checkpoint directory, and
/// the family whose fused model validates best is the one trained and saved, with what each
/// count scored.
#[test]
fn several_hard_negative_counts_fine_tune_once_each_and_validation_keeps_the_best() {
    // A third of MovieLens 100k's people: the choice is the same mechanism on real data, and each
    // count's fused fit (the grid over text dimensions, weights and recency) a third the cost.
    let data = first_users(&load_dir(&ml100k(), false).unwrap(), 300);
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = train_inputs(&data, &split, tmp.path());
    let cfg = ModelConfig {
        als: AlsConfig { iterations: 3, ..AlsConfig::default() },
        finetune: FinetuneConfig { steps: 2, batch: 8, max_tokens: 16, ..FinetuneConfig::default() },
        hard_negatives_choices: vec![0, 5],
        ..ModelConfig::default()
    };
    let fused: Vec<_> = REGISTRY.iter().copied().filter(|e| e.id == "fused-ft").collect();
    let set = ModelSet::train(&inputs, &fused, &cfg).unwrap();
    for n in [0, 5] {
        let state = inputs.checkpoint_dir.join(format!("hard-negatives-{n}")).join("state.json");
        assert!(state.is_file(), "no checkpoint at {}", state.display());
    }

    let notes = set.validation_notes();
    assert!(notes.contains("hard negatives (validation NDCG@10 by count: 0: "), "{notes}");

    let dir = tmp.path().join("model");
    store::save(&dir, &data, &split.config, &cfg, &set, None).unwrap();
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("finetune.json")).unwrap()).unwrap();
    let tried: Vec<(usize, f64)> = serde_json::from_value(record["hard_negatives_validation"].clone()).unwrap();
    assert_eq!(tried.iter().map(|t| t.0).collect::<Vec<_>>(), [0, 5], "{record}");
    assert!(tried.iter().all(|t| t.1 > 0.0 && t.1 <= 1.0), "{tried:?}");
    let best = tried.iter().fold(tried[0], |b, &t| if t.1 > b.1 { t } else { b });
    assert_eq!(record["config"]["hard_negatives"].as_u64().unwrap_or(0), best.0 as u64, "{record}");
}
