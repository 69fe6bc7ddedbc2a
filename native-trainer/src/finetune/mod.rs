//! Contrastive fine-tuning of the text encoder on the interactions.
//!
//! Pairs of items the same person consumed close together in time ([`pairs::co_consumed`]) are
//! pulled together and every other item in the batch pushed apart (InfoNCE with in-batch
//! negatives, symmetric; with `hard_negatives`, each anchor also against one text-alike item
//! nobody consumed near it, [`pairs::HardNegatives`]). Only the top `train_layers` blocks train:
//! the frozen blocks below run the fast inference kernels, build no autograd graph and run once
//! for a text drawn again ([`frozen_cache`]). AdamW with linear warm-up and decay,
//! gradient clipping, checkpoints every `checkpoint_every` steps, and `--resume` that continues
//! exactly (weights, optimizer moments, batch order and step).

pub mod adamw;
mod frozen_cache;
pub mod pairs;

use crate::atomic;
use crate::progress;
use crate::rng::Rng;
use crate::split::Split;
use crate::store::{read_tensors, write_tensors};
use crate::textvec::EncoderSource;
use adamw::{clip_factor, AdamW};
use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use frozen_cache::FrozenCache;
use nook_core::bundle::sha256_hex;
use nook_core::encoder::{block_prefix, BertConfig, Pooling, Prompts, TextEncoder, POOLING_FILE, PROMPTS_FILE};
use nook_core::quant::encode_f32;
use pairs::{Batcher, BatcherState, HardNegatives};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinetuneConfig {
    pub steps: usize,
    /// Pairs per step (each pair's positive is a negative for every other anchor).
    pub batch: usize,
    /// Tokens per text while training.
    pub max_tokens: usize,
    pub learning_rate: f64,
    /// Fraction of the steps spent warming the learning rate up from zero.
    pub warmup: f64,
    pub weight_decay: f64,
    pub clip_norm: f64,
    /// InfoNCE temperature.
    pub temperature: f64,
    /// How many of the top encoder layers train (one more also trains the embeddings).
    pub train_layers: usize,
    /// A pair is an item and one of the next `window` items the same person consumed.
    pub window: usize,
    /// Hard negatives: each anchor also contrasts with one of its `hard_negatives` nearest items
    /// by the frozen encoder's text that nobody consumed close to it (0: in-batch negatives only).
    /// Left out of a checkpoint's settings when 0, so checkpoints from before it still resume.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hard_negatives: usize,
    /// Not part of the settings a checkpoint must match.
    #[serde(skip, default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    pub seed: u64,
    /// Stop, as if interrupted, after this many steps of this run (the checkpoint stays). Not part
    /// of the settings a checkpoint must match: a resumed run may drop it.
    #[serde(skip)]
    pub stop_after: Option<usize>,
    /// Memory for the frozen blocks' output of texts drawn again (0: recompute every time). The
    /// weights trained are the same either way; not part of the settings a checkpoint must match.
    #[serde(skip, default = "default_frozen_cache_bytes")]
    pub frozen_cache_bytes: usize,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            steps: 150,
            batch: 32,
            max_tokens: 64,
            learning_rate: 1e-4,
            warmup: 0.1,
            weight_decay: 0.01,
            clip_norm: 1.0,
            temperature: 0.05,
            train_layers: 2,
            window: 3,
            hard_negatives: 0,
            checkpoint_every: 25,
            seed: 42,
            stop_after: None,
            frozen_cache_bytes: default_frozen_cache_bytes(),
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn default_checkpoint_every() -> usize {
    25
}

/// 64 MiB: about 680 texts at 64 tokens (see the README for what it saves and costs).
fn default_frozen_cache_bytes() -> usize {
    64 << 20
}

/// A fine-tuned encoder: every weight (trained and frozen) by its Hugging Face name.
pub struct FineTuned {
    pub weights: HashMap<String, Tensor>,
    pub config_json: Vec<u8>,
    pub tokenizer_json: Vec<u8>,
    /// The base model's pooling and prompts, kept.
    pub pooling: Pooling,
    pub prompts: Prompts,
    /// Training loss at every step.
    pub losses: Vec<f32>,
    pub seconds: f64,
    /// Identifies base encoder + settings + data, for caching what is computed from the result.
    pub fingerprint: String,
    pub config: FinetuneConfig,
    /// Texts this run drew, and how many of them reused their frozen blocks' output.
    pub texts_drawn: usize,
    pub frozen_reused: usize,
}

impl FineTuned {
    /// The fine-tuned encoder for inference, embedding up to `max_tokens` tokens.
    pub fn encoder(&self, max_tokens: usize, device: &Device) -> Result<TextEncoder> {
        let vb = VarBuilder::from_tensors(self.weights.clone(), DType::F32, device);
        let encoder = TextEncoder::new(&self.config_json, &self.tokenizer_json, vb, max_tokens)?;
        Ok(encoder.with_pooling(self.pooling).with_prompts(self.prompts.clone()))
    }

    /// The int8 engine over the fine-tuned weights, quantised as an int8 bundle stores them
    /// (inference only: the trainer's embedding passes with `--text-engine int8`).
    pub fn encoder_int8(&self, max_tokens: usize) -> Result<TextEncoder> {
        let mut names: Vec<&String> = self.weights.keys().collect();
        names.sort();
        let tensors = names
            .into_iter()
            .map(|n| {
                let t = &self.weights[n];
                Ok(encode_f32(n, t.dims(), &t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?))
            })
            .collect::<Result<Vec<_>>>()?;
        let bytes = nook_core::quant::serialize(&tensors)?;
        let encoder = TextEncoder::new_int8(&self.config_json, &self.tokenizer_json, bytes, max_tokens)?;
        Ok(encoder.with_pooling(self.pooling).with_prompts(self.prompts.clone()))
    }

    /// Writes a Hugging Face layout directory (`config.json`, `tokenizer.json`, `model.safetensors`).
    pub fn save_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("config.json"), &self.config_json)?;
        std::fs::write(dir.join("tokenizer.json"), &self.tokenizer_json)?;
        candle_core::safetensors::save(&self.weights, dir.join("model.safetensors"))?;
        if !self.pooling.is_mean() {
            let hidden = serde_json::from_slice::<BertConfig>(&self.config_json).context("config.json")?.hidden_size;
            std::fs::create_dir_all(dir.join("1_Pooling"))?;
            std::fs::write(dir.join(POOLING_FILE), self.pooling.sentence_transformers_config(hidden))?;
        }
        if !self.prompts.is_empty() {
            std::fs::write(dir.join(PROMPTS_FILE), self.prompts.sentence_transformers_config())?;
        }
        Ok(())
    }
}

/// Learning rate at `step`: linear warm-up, then linear decay to zero.
pub fn learning_rate(cfg: &FinetuneConfig, step: usize) -> f64 {
    let warm = ((cfg.steps as f64 * cfg.warmup).round() as usize).max(1);
    if step < warm {
        cfg.learning_rate * (step + 1) as f64 / warm as f64
    } else {
        let rest = (cfg.steps - warm).max(1) as f64;
        cfg.learning_rate * (1.0 - (step - warm) as f64 / rest).max(0.0)
    }
}

/// What a checkpoint records besides tensors.
#[derive(Serialize, Deserialize)]
struct CheckpointState {
    fingerprint: String,
    step: usize,
    losses: Vec<f32>,
    batcher: BatcherState,
}

/// Fine-tunes `source` on pairs from `split` (items' texts in `texts`), leaving out every pair
/// with an item marked in `left_out` (the items validation makes cold). `frozen`: the frozen
/// encoder's item vectors, which hard negatives are drawn by (needed when `cfg` asks for them).
/// With `resume`, continues from the checkpoint in `checkpoint_dir` if one matches these settings.
#[allow(clippy::too_many_arguments)]
pub fn run(
    source: &EncoderSource,
    texts: &[String],
    split: &Split,
    cfg: &FinetuneConfig,
    left_out: Option<&[bool]>,
    frozen: Option<&[f32]>,
    device: &Device,
    checkpoint_dir: &Path,
    resume: bool,
) -> Result<FineTuned> {
    source.check()?;
    ensure!(cfg.steps > 0 && cfg.batch >= 2, "fine-tuning needs steps > 0 and a batch of at least 2 pairs");
    let [config_path, tokenizer_path, weights_path] = source.files();
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let (config_json, tokenizer_json) = (read(&config_path)?, read(&tokenizer_path)?);
    let config: BertConfig = serde_json::from_slice(&config_json).context("config.json")?;
    let mut weights = candle_core::safetensors::load_buffer(&read(&weights_path)?, device)?;

    let mut pairs = pairs::co_consumed(split, cfg.window);
    if let Some(out) = left_out {
        ensure!(
            out.len() == split.n_items,
            "{} items to leave out of fine-tuning, expected {}",
            out.len(),
            split.n_items
        );
        let before = pairs.len();
        pairs.retain(|&(a, b)| !out[a as usize] && !out[b as usize]);
        let items = out.iter().filter(|&&o| o).count();
        tracing::info!(
            "fine-tuning leaves out {} of {before} pairs: their {items} items are made cold for validation",
            before - pairs.len()
        );
    }
    ensure!(pairs.len() >= cfg.batch, "only {} co-consumed pairs: too little data to fine-tune on", pairs.len());
    let fingerprint = sha256_hex(
        format!("{}|{}|{:?}|{}", source.fingerprint()?, serde_json::to_string(cfg)?, split.config, pairs.len())
            .as_bytes(),
    );

    // Trainable blocks become Vars; the VarBuilder hands their tensors to the model.
    let layers = config.num_hidden_layers;
    let first_trained = (layers + 1).saturating_sub(cfg.train_layers.clamp(1, layers + 1));
    let prefixes: Vec<String> = (first_trained..=layers).map(block_prefix).collect();
    let mut names: Vec<String> = weights
        .iter()
        .filter(|(n, t)| t.dtype() == DType::F32 && prefixes.iter().any(|p| n.starts_with(p.as_str())))
        .map(|(n, _)| n.clone())
        .collect();
    names.sort();
    let vars = names.iter().map(|n| Var::from_tensor(&weights[n])).collect::<candle_core::Result<Vec<_>>>()?;
    for (n, v) in names.iter().zip(&vars) {
        weights.insert(n.clone(), v.as_tensor().clone());
    }
    let (pooling, prompts) = (source.pooling()?, source.prompts()?);
    let encoder = TextEncoder::new(
        &config_json,
        &tokenizer_json,
        VarBuilder::from_tensors(weights.clone(), DType::F32, device),
        cfg.max_tokens,
    )?
    .with_pooling(pooling)
    .with_prompts(prompts.clone());
    let ids = texts.iter().map(|t| encoder.tokenize_document(t)).collect::<nook_core::Result<Vec<_>>>()?;
    let trainable: usize = vars.iter().map(|v| v.as_tensor().elem_count()).sum();
    tracing::info!(
        "fine-tuning {} of {} blocks ({trainable} weights) on {} pairs: {} steps of {} pairs",
        prefixes.len(),
        layers + 1,
        pairs.len(),
        cfg.steps,
        cfg.batch
    );

    let hard = match (cfg.hard_negatives, frozen) {
        (0, _) => None,
        (k, Some(vectors)) => {
            let dim = vectors.len() / split.n_items.max(1);
            ensure!(
                dim > 0 && vectors.len() == dim * split.n_items,
                "{} frozen text values do not make one vector per item ({} items)",
                vectors.len(),
                split.n_items
            );
            Some(HardNegatives::new(vectors, dim, &pairs, k))
        }
        (_, None) => bail!("hard negatives need the frozen encoder's item vectors"),
    };
    let mut opt = AdamW::new(&vars, cfg.weight_decay)?;
    let mut batcher = Batcher::new(pairs, Rng::stream(cfg.seed, "finetune-pairs"));
    let mut losses = Vec::new();
    atomic::check_replaceable(checkpoint_dir)?;
    if resume {
        if let Some(state) = load_checkpoint(checkpoint_dir, &fingerprint, &names, &vars, &mut opt)? {
            tracing::info!("resuming fine-tuning at step {}", state.step);
            losses = state.losses;
            batcher = Batcher::restore(state.batcher);
        }
    }

    // Frozen blocks below the trained ones compute the same rows for a text every time: on the
    // CPU, keep those of the texts drawn again (on a GPU they are cheap, and copies are not).
    let mut cache = (first_trained > 0 && cfg.frozen_cache_bytes > 0 && device.is_cpu()).then(|| {
        let tokens: Vec<usize> = ids.iter().map(Vec::len).collect();
        let steps = cfg.steps - opt.step.min(cfg.steps);
        FrozenCache::plan(
            &batcher,
            cfg.batch,
            steps,
            &tokens,
            config.hidden_size,
            first_trained,
            cfg.frozen_cache_bytes,
        )
    });
    let named: Vec<(&str, &Var)> = names.iter().map(String::as_str).zip(&vars).collect();
    let start = Instant::now();
    let bar = progress::bar(cfg.steps as u64, "fine-tune");
    bar.set_position(opt.step as u64);
    let first_step = opt.step;
    let mut texts_drawn = 0;
    while opt.step < cfg.steps {
        if cfg.stop_after.is_some_and(|n| opt.step - first_step >= n) {
            bail!(
                "fine-tuning stopped after {} steps (checkpoint at step {} in {})",
                opt.step - first_step,
                opt.step,
                checkpoint_dir.display()
            );
        }
        let step = opt.step;
        let batch = batcher.next_batch(cfg.batch);
        let b = batch.len();
        let negatives: Vec<u32> = match &hard {
            Some(h) => h
                .pick(&batch, &mut Rng::stream(cfg.seed ^ step as u64, "hard-negatives"))
                .into_iter()
                .flatten()
                .collect(),
            None => Vec::new(),
        };
        let items: Vec<u32> = batch
            .iter()
            .map(|&(a, _)| a)
            .chain(batch.iter().map(|&(_, p)| p))
            .chain(negatives.iter().copied())
            .collect();
        texts_drawn += items.len();
        let pass = match cache.as_mut() {
            Some(cache) => cache.pass(&encoder, &ids, &items)?,
            None => {
                let seqs: Vec<Vec<u32>> = items.iter().map(|&i| ids[i as usize].clone()).collect();
                encoder.train_pass(&encoder.batch(&seqs)?, first_trained)?
            }
        };
        let emb = &pass.embeddings;
        let (anchors, positives) = (emb.narrow(0, 0, b)?, emb.narrow(0, b, b)?);
        let candidates = emb.narrow(0, b, emb.dim(0)? - b)?;
        let logits = (anchors.matmul(&candidates.t()?)? / cfg.temperature)?;
        let back = (positives.matmul(&anchors.t()?)? / cfg.temperature)?;
        let targets = Tensor::arange(0u32, b as u32, device)?;
        let loss = ((candle_nn::loss::cross_entropy(&logits, &targets)?
            + candle_nn::loss::cross_entropy(&back, &targets)?)?
            / 2.0)?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            bail!("fine-tuning diverged at step {step} (loss {value}); lower --ft-lr");
        }
        let grads = pass.gradients(&loss, &named)?;
        let (_, clip) = clip_factor(&grads, cfg.clip_norm)?;
        opt.step(&vars, &grads, learning_rate(cfg, step), clip)?;
        losses.push(value);
        bar.set_position(opt.step as u64);
        bar.set_message(format!("loss {value:.3}"));
        if opt.step % cfg.checkpoint_every.max(1) == 0 || opt.step == cfg.steps {
            let state = CheckpointState {
                fingerprint: fingerprint.clone(),
                step: opt.step,
                losses: losses.clone(),
                batcher: batcher.checkpoint(),
            };
            save_checkpoint(checkpoint_dir, &state, &names, &vars, &opt)?;
        }
        tracing::debug!("fine-tune step {} loss {value:.4}", opt.step);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let frozen_reused = cache.map_or(0, |c| c.reused);
    tracing::info!(
        "fine-tuned in {seconds:.1}s: loss {:.3} → {:.3} (frozen blocks' output reused for {frozen_reused} of {texts_drawn} texts)",
        losses.first().copied().unwrap_or(f32::NAN),
        losses.last().copied().unwrap_or(f32::NAN)
    );
    for (n, v) in names.iter().zip(&vars) {
        weights.insert(n.clone(), v.as_tensor().detach());
    }
    Ok(FineTuned {
        weights,
        config_json,
        tokenizer_json,
        pooling,
        prompts,
        losses,
        seconds,
        fingerprint,
        config: cfg.clone(),
        texts_drawn,
        frozen_reused,
    })
}

fn save_checkpoint(dir: &Path, state: &CheckpointState, names: &[String], vars: &[Var], opt: &AdamW) -> Result<()> {
    let mut tensors = Vec::new();
    for ((n, v), (m, s)) in names.iter().zip(vars).zip(&opt.moments) {
        for (prefix, t) in [("w.", v.as_tensor()), ("m.", m), ("v.", s)] {
            tensors.push(encode_f32(&format!("{prefix}{n}"), t.dims(), &t.flatten_all()?.to_vec1::<f32>()?));
        }
    }
    let state_bytes = serde_json::to_vec(state)?;
    // Tensors and state are replaced together: a checkpoint is never half old, half new.
    atomic::write_dir(dir, |tmp| {
        write_tensors(&tmp.join("tensors.safetensors"), &tensors)?;
        std::fs::write(tmp.join("state.json"), &state_bytes)?;
        Ok(())
    })
}

fn load_checkpoint(
    dir: &Path,
    fingerprint: &str,
    names: &[String],
    vars: &[Var],
    opt: &mut AdamW,
) -> Result<Option<CheckpointState>> {
    let state_path = dir.join("state.json");
    let Ok(bytes) = std::fs::read(&state_path) else {
        tracing::info!("no checkpoint in {}; starting fine-tuning from scratch", dir.display());
        return Ok(None);
    };
    let state: CheckpointState =
        serde_json::from_slice(&bytes).with_context(|| format!("{}: unreadable", state_path.display()))?;
    if state.fingerprint != fingerprint {
        bail!("{}: checkpoint is for other settings or data; remove it or drop --resume", dir.display());
    }
    let device = vars.first().map(|v| v.device().clone()).unwrap_or(Device::Cpu);
    read_tensors(&dir.join("tensors.safetensors"), |t| {
        let load = |name: &str, like: &Tensor| -> Result<Tensor> {
            Ok(Tensor::from_vec(t.f32(name, like.dims())?, like.dims(), &device)?)
        };
        for ((n, v), (m, s)) in names.iter().zip(vars).zip(opt.moments.iter_mut()) {
            v.set(&load(&format!("w.{n}"), v.as_tensor())?)?;
            *m = load(&format!("m.{n}"), m)?;
            *s = load(&format!("v.{n}"), s)?;
        }
        Ok(())
    })?;
    opt.step = state.step;
    Ok(Some(state))
}
