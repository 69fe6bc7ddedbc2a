//! `nook bench`: timings of the encoder on this machine, printed as JSON lines so a benchmark
//! script can set them beside other tools' numbers measured in the same run.

use crate::finetune::adamw::{clip_factor, AdamW};
use crate::finetune::{self, FinetuneConfig};
use crate::split::{Split, SplitConfig};
use crate::textvec::EncoderSource;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use nook_core::encoder::{block_prefix, TextEncoder};
use nook_core::stats::median;
use nook_core::synthetic;
use std::path::Path;
use std::time::Instant;

/// Reads one text per line.
pub fn read_texts(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(String::from).collect();
    anyhow::ensure!(!lines.is_empty(), "{}: no texts", path.display());
    Ok(lines)
}

/// Sentences per second embedding `texts` truncated to `tokens`, in batches of `batch`
/// (median of `repeats` passes after one warm-up pass). Each batch's vectors are copied back to
/// the host, so a GPU pass is timed to completion.
#[allow(clippy::too_many_arguments)]
pub fn encoder_throughput(
    source: &EncoderSource,
    texts: &[String],
    tokens: usize,
    batch: usize,
    repeats: usize,
    device: &Device,
    int8: bool,
) -> Result<f64> {
    let source = EncoderSource { max_tokens: tokens, ..source.clone() };
    let encoder = if int8 { source.load_int8()? } else { source.load(device)? };
    let ids = texts.iter().map(|t| encoder.tokenize(t)).collect::<nook_core::Result<Vec<_>>>()?;
    let pass = || -> Result<f64> {
        let start = Instant::now();
        for chunk in ids.chunks(batch) {
            encoder.embed_ids(chunk)?;
        }
        Ok(texts.len() as f64 / start.elapsed().as_secs_f64())
    };
    pass()?;
    let rates = (0..repeats.max(1)).map(|_| pass()).collect::<Result<Vec<_>>>()?;
    Ok(median(&rates))
}

/// The CPU this runs on (`model name` in /proc/cpuinfo), for benchmark tables: speed ratios
/// depend on it (AVX-512 or not, cache sizes).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// One fine-tuning step's seconds and its three phases', each the median over the repeats.
pub struct StepTimes {
    pub step: f64,
    /// The encoder's forward pass and the loss.
    pub forward: f64,
    /// Gradients of every trained weight.
    pub backward: f64,
    /// Clipping and AdamW.
    pub optimizer: f64,
}

/// Seconds per fine-tuning step (forward of `2 * pairs` texts, InfoNCE, backward, clip, AdamW)
/// training the top `layers` blocks, with the phases apart (the device is synchronised between
/// them); medians of `repeats` steps after one warm-up step.
pub fn finetune_step_seconds(
    source: &EncoderSource,
    texts: &[String],
    tokens: usize,
    pairs: usize,
    layers: usize,
    repeats: usize,
    device: &Device,
) -> Result<StepTimes> {
    let [config_path, tokenizer_path, weights_path] = source.files();
    let config_json = std::fs::read(&config_path)?;
    let config: nook_core::encoder::BertConfig = serde_json::from_slice(&config_json)?;
    let mut weights = candle_core::safetensors::load(&weights_path, device)?;
    let first = (config.num_hidden_layers + 1).saturating_sub(layers.clamp(1, config.num_hidden_layers + 1));
    let prefixes: Vec<String> = (first..=config.num_hidden_layers).map(block_prefix).collect();
    let names: Vec<String> = weights
        .iter()
        .filter(|(n, t)| t.dtype() == DType::F32 && prefixes.iter().any(|p| n.starts_with(p.as_str())))
        .map(|(n, _)| n.clone())
        .collect();
    let vars = names.iter().map(|n| Var::from_tensor(&weights[n])).collect::<candle_core::Result<Vec<_>>>()?;
    for (n, v) in names.iter().zip(&vars) {
        weights.insert(n.clone(), v.as_tensor().clone());
    }
    let vb = VarBuilder::from_tensors(weights, DType::F32, device);
    let encoder = TextEncoder::new(&config_json, &std::fs::read(&tokenizer_path)?, vb, tokens)?;
    let seqs: Vec<Vec<u32>> =
        texts.iter().cycle().take(2 * pairs).map(|t| encoder.tokenize(t)).collect::<nook_core::Result<_>>()?;
    let batch = encoder.batch(&seqs)?;
    let mut opt = AdamW::new(&vars, 0.01)?;
    let named: Vec<(&str, &Var)> = names.iter().map(String::as_str).zip(&vars).collect();
    // GPU kernels run asynchronously: each phase waits for its work before reading the clock.
    let mut step = || -> Result<[f64; 3]> {
        let start = Instant::now();
        let pass = encoder.train_pass(&batch, first)?;
        let emb = &pass.embeddings;
        let (a, p) = (emb.narrow(0, 0, pairs)?, emb.narrow(0, pairs, pairs)?);
        let logits = (a.matmul(&p.t()?)? / 0.05)?;
        let targets = Tensor::arange(0u32, pairs as u32, device)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
        device.synchronize()?;
        let forward = start.elapsed().as_secs_f64();
        let g = pass.gradients(&loss, &named)?;
        device.synchronize()?;
        let backward = start.elapsed().as_secs_f64();
        let (_, clip) = clip_factor(&g, 1.0)?;
        opt.step(&vars, &g, 1e-5, clip)?;
        device.synchronize()?;
        let end = start.elapsed().as_secs_f64();
        Ok([forward, backward - forward, end - backward])
    };
    step()?;
    let times = (0..repeats.max(1)).map(|_| step()).collect::<Result<Vec<_>>>()?;
    let phase = |i: usize| median(&times.iter().map(|t| t[i]).collect::<Vec<_>>());
    let steps: Vec<f64> = times.iter().map(|t| t.iter().sum()).collect();
    Ok(StepTimes { step: median(&steps), forward: phase(0), backward: phase(1), optimizer: phase(2) })
}

/// A whole fine-tuning run with the default settings ([`FinetuneConfig::default`]: 150 steps of
/// 32 pairs × 64 tokens, the top 2 blocks) on the training pairs of the data set in `data`
/// (default split), frozen blocks' output reused as in `nook train`.
pub struct FinetuneRun {
    pub config: FinetuneConfig,
    pub seconds_per_step: f64,
    /// Texts drawn over the run, and how many of them reused their frozen blocks' output.
    pub texts: usize,
    pub reused: usize,
}

pub fn finetune_run(source: &EncoderSource, data: &Path, device: &Device) -> Result<FinetuneRun> {
    let dataset = crate::data::load(&crate::data::Source { data: Some(data.to_owned()), ..Default::default() })?;
    let split = Split::new(&dataset, &SplitConfig::default())?;
    let texts: Vec<String> = dataset.items.iter().map(|i| i.text()).collect();
    let config = FinetuneConfig::default();
    // Checkpoints go to a directory of this process's own, removed after the run (never one
    // that was there before: nook deletes only what it wrote).
    let dir = std::env::temp_dir().join(format!("nook-bench-finetune-{}", std::process::id()));
    anyhow::ensure!(!dir.exists(), "{} already exists; remove it and run again", dir.display());
    let result = finetune::run(source, &texts, &split, &config, None, None, device, &dir, false);
    std::fs::remove_dir_all(&dir).ok();
    let ft = result?;
    Ok(FinetuneRun {
        seconds_per_step: ft.seconds / config.steps as f64,
        texts: ft.texts_drawn,
        reused: ft.frozen_reused,
        config,
    })
}

/// Bytes per second copying a 256 MiB buffer (median of 5): the machine's memory speed.
pub fn copy_bandwidth() -> f64 {
    let n = 256 << 20;
    let src = vec![1u8; n];
    let mut dst = vec![0u8; n];
    let rates: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&dst);
            n as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    median(&rates)
}

/// Which scoring kernel a ranking run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// One accumulator, one element at a time: what a plain loop compiles to.
    Scalar,
    /// nook-core's kernels (vectorised; AVX2 on x86 where present, simd128 in wasm).
    Simd,
}

/// One ranking measurement: top-10 over `n` synthetic items of `dim` dimensions.
pub struct RankTiming {
    pub median_ms: f64,
    pub bytes_touched: usize,
}

#[inline(never)]
fn scalar_f32(items: &[f32], dim: usize, q: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(items.chunks_exact(dim)) {
        let mut acc = 0f32;
        for (a, b) in row.iter().zip(q) {
            acc += a * b; // a single float chain: the compiler may not reorder it into lanes
        }
        *o = acc;
    }
}

#[inline(never)]
fn scalar_int8(items: &nook_core::quant::Int8Rows, q: &[f32], out: &mut [f32]) {
    for (r, o) in out.iter_mut().enumerate() {
        let mut acc = 0f32;
        for (&a, &b) in items.row(r).iter().zip(q) {
            acc += a as f32 * b;
        }
        *o = acc * items.scales[r];
    }
}

/// Median time to score `n` random items and take the top 10, over `queries` queries.
pub fn rank_latency(n: usize, dim: usize, int8: bool, kernel: Kernel, queries: usize) -> RankTiming {
    let values = synthetic::values(n * dim, 0x1234_5678);
    let quantized = int8.then(|| nook_core::quant::Int8Rows::quantize(&values, dim));
    let f32_items = if int8 { Vec::new() } else { values };
    let mut out = vec![0f32; n];
    let times: Vec<f64> = (0..queries.max(1) + 1)
        .map(|query| {
            let q = synthetic::values(dim, query as u64);
            let start = Instant::now();
            match (&quantized, kernel) {
                (Some(t), Kernel::Simd) => nook_core::score::score_int8(t, &q, &mut out),
                (Some(t), Kernel::Scalar) => scalar_int8(t, &q, &mut out),
                (None, Kernel::Simd) => nook_core::score_items(&f32_items, dim, &q, None, &mut out),
                (None, Kernel::Scalar) => scalar_f32(&f32_items, dim, &q, &mut out),
            }
            std::hint::black_box(nook_core::top_k(&out, 10, |_| true));
            start.elapsed().as_secs_f64() * 1e3
        })
        .skip(1)
        .collect();
    let table = if int8 { n * dim + n * 4 } else { n * dim * 4 };
    RankTiming { median_ms: median(&times), bytes_touched: table + n * 4 }
}

/// Median milliseconds of the sequential rules' part of one request ([`nook_core::sequence`]):
/// `n` items with `k` synthetic rules each, a person with `likes` likes (the newest
/// [`nook_core::sequence::Sequence::recent`] of them lend their rules), the part computed and
/// added to a score row, as `Catalog::recommend` does on top of the ranking above.
pub fn rules_latency(n: usize, k: usize, likes: usize, queries: usize) -> f64 {
    let rules = synthetic::rules(n, k, 0x5EED);
    let seq = nook_core::sequence::Sequence { weight: 0.5, decay: 0.9, recent: 100, similar_weight: None };
    let mut out = vec![0f32; n];
    let times: Vec<f64> = (0..queries.max(1) + 1)
        .map(|query| {
            let history: Vec<u32> = (0..likes).map(|i| ((query * 7919 + i * 104_729) % n) as u32).collect();
            let start = Instant::now();
            for (j, part) in rules.part(&seq, &history) {
                out[j as usize] += part;
            }
            std::hint::black_box(&out);
            start.elapsed().as_secs_f64() * 1e3
        })
        .skip(1)
        .collect();
    median(&times)
}
