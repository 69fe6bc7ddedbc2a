//! `nook bench`: timings of the encoder on this machine, printed as JSON lines so a benchmark
//! script can set them beside other tools' numbers measured in the same run.

use crate::finetune::adamw::{clip_grad_norm, AdamW};
use crate::textvec::EncoderSource;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use nook_core::encoder::{block_prefix, TextEncoder};
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
/// (median of `repeats` passes after one warm-up pass).
pub fn encoder_throughput(
    source: &EncoderSource,
    texts: &[String],
    tokens: usize,
    batch: usize,
    repeats: usize,
) -> Result<f64> {
    let encoder = EncoderSource { max_tokens: tokens, ..source.clone() }.load(&Device::Cpu)?;
    let ids = texts.iter().map(|t| encoder.tokenize(t)).collect::<nook_core::Result<Vec<_>>>()?;
    let pass = || -> Result<f64> {
        let start = Instant::now();
        for chunk in ids.chunks(batch) {
            encoder.embed_ids(chunk)?;
        }
        Ok(texts.len() as f64 / start.elapsed().as_secs_f64())
    };
    pass()?;
    let mut rates = (0..repeats.max(1)).map(|_| pass()).collect::<Result<Vec<_>>>()?;
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

/// Seconds per fine-tuning step (forward of `2 * pairs` texts, InfoNCE, backward, clip, AdamW)
/// training the top `layers` blocks; median of `repeats` steps after one warm-up step.
pub fn finetune_step_seconds(
    source: &EncoderSource,
    texts: &[String],
    tokens: usize,
    pairs: usize,
    layers: usize,
    repeats: usize,
) -> Result<f64> {
    let [config_path, tokenizer_path, weights_path] = source.files();
    let config_json = std::fs::read(&config_path)?;
    let config: nook_core::encoder::BertConfig = serde_json::from_slice(&config_json)?;
    let mut weights = candle_core::safetensors::load(&weights_path, &Device::Cpu)?;
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
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    let encoder = TextEncoder::new(&config_json, &std::fs::read(&tokenizer_path)?, vb, tokens)?;
    let seqs: Vec<Vec<u32>> =
        texts.iter().cycle().take(2 * pairs).map(|t| encoder.tokenize(t)).collect::<nook_core::Result<_>>()?;
    let batch = encoder.batch(&seqs)?;
    let mut opt = AdamW::new(&vars, 0.01)?;
    let mut step = || -> Result<f64> {
        let start = Instant::now();
        let emb = encoder.forward_from(&batch, first)?;
        let (a, p) = (emb.narrow(0, 0, pairs)?, emb.narrow(0, pairs, pairs)?);
        let logits = (a.matmul(&p.t()?)? / 0.05)?;
        let targets = Tensor::arange(0u32, pairs as u32, &Device::Cpu)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
        let grads = loss.backward()?;
        let mut g: Vec<Option<Tensor>> = vars.iter().map(|v| grads.get(v.as_tensor()).cloned()).collect();
        clip_grad_norm(&mut g, 1.0)?;
        opt.step(&vars, &g, 1e-5)?;
        Ok(start.elapsed().as_secs_f64())
    };
    step()?;
    let mut times = (0..repeats.max(1)).map(|_| step()).collect::<Result<Vec<_>>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
