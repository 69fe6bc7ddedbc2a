//! Item text embeddings from a local Hugging Face model directory, cached by content hash.

use crate::progress;
use crate::store::read_tensors;
use anyhow::{Context, Result};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use nook_core::bundle::sha256_hex;
use nook_core::encoder::{Pooling, Prompts, TextEncoder, POOLING_FILE, PROMPTS_FILE};
use nook_core::quant::{self, encode_f32};
use std::path::{Path, PathBuf};

/// Where scripts/setup-assets.sh puts all-MiniLM-L6-v2; the default `--encoder`.
pub const DEFAULT_ENCODER: &str = "assets/models/all-MiniLM-L6-v2";

/// Texts per forward pass. Texts are sorted by length first, so batches pad little.
const BATCH: usize = 32;

/// Which engine embeds item texts in the trainer (queries in an int8 bundle always use int8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TextEngine {
    /// candle's f32 BERT (the weights fine-tuning trains).
    #[default]
    F32,
    /// The int8 engine an int8 bundle embeds queries with: weights quantised per row, 7-bit
    /// activations, exact integer products (faster; vectors within cosine ~0.997 of f32).
    Int8,
}

impl TextEngine {
    /// What the engine adds to a text-vector cache key (nothing for f32: earlier caches stay valid).
    pub fn key_suffix(self) -> &'static str {
        match self {
            TextEngine::F32 => "",
            TextEngine::Int8 => "|engine=int8",
        }
    }
}

/// A local encoder directory (`config.json`, `tokenizer.json`, `model.safetensors`).
#[derive(Clone, Debug)]
pub struct EncoderSource {
    pub dir: PathBuf,
    pub max_tokens: usize,
}

impl EncoderSource {
    pub fn files(&self) -> [PathBuf; 3] {
        ["config.json", "tokenizer.json", "model.safetensors"].map(|f| self.dir.join(f))
    }

    pub fn check(&self) -> Result<()> {
        for f in self.files() {
            anyhow::ensure!(
                f.is_file(),
                "encoder file {} is missing (pass --encoder DIR with a Hugging Face BERT layout, or run scripts/setup-assets.sh)",
                f.display()
            );
        }
        Ok(())
    }

    pub fn load(&self, device: &Device) -> Result<TextEncoder> {
        self.check()?;
        let [config, tokenizer, weights] = self.files();
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let vb = VarBuilder::from_buffered_safetensors(read(&weights)?, DType::F32, device)
            .with_context(|| format!("loading {}", weights.display()))?;
        let encoder = TextEncoder::new(&read(&config)?, &read(&tokenizer)?, vb, self.max_tokens)?;
        Ok(encoder.with_pooling(self.pooling()?).with_prompts(self.prompts()?))
    }

    /// The int8 engine over the same weights, quantised on load as an int8 bundle stores them
    /// (inference only).
    pub fn load_int8(&self) -> Result<TextEncoder> {
        self.check()?;
        let [config, tokenizer, weights] = self.files();
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let encoder = TextEncoder::new_int8(&read(&config)?, &read(&tokenizer)?, read(&weights)?, self.max_tokens)?;
        Ok(encoder.with_pooling(self.pooling()?).with_prompts(self.prompts()?))
    }

    /// The pooling the model's sentence-transformers config names (mean without one).
    pub fn pooling(&self) -> Result<Pooling> {
        read_pooling(&self.dir)
    }

    /// The query and document prompts the model's sentence-transformers config names (none
    /// without one).
    pub fn prompts(&self) -> Result<Prompts> {
        read_prompts(&self.dir)
    }

    /// A hash of the model files and settings, part of the cache key.
    pub fn fingerprint(&self) -> Result<String> {
        let mut all = Vec::new();
        for f in self.files() {
            all.extend(
                sha256_hex(&std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?).into_bytes(),
            );
        }
        all.extend(self.max_tokens.to_le_bytes());
        // Pooling changes every vector; mean (the default) leaves the keys of earlier caches as they were.
        if let Pooling::Cls = self.pooling()? {
            all.extend(b"pooling=cls");
        }
        // Prompts change every item's vector; none (all-MiniLM-L6-v2) leaves earlier keys as they were.
        let prompts = self.prompts()?;
        if !prompts.is_empty() {
            all.extend(format!("prompts={:?}|{:?}", prompts.query, prompts.document).into_bytes());
        }
        Ok(sha256_hex(&all))
    }
}

/// The pooling in `dir`'s sentence-transformers `1_Pooling/config.json`; mean when there is none.
pub fn read_pooling(dir: &Path) -> Result<Pooling> {
    let path = dir.join(POOLING_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Pooling::from_sentence_transformers(&bytes).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Pooling::Mean),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The prompts in `dir`'s `config_sentence_transformers.json`; none when there is none.
pub fn read_prompts(dir: &Path) -> Result<Prompts> {
    let path = dir.join(PROMPTS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Prompts::from_sentence_transformers(&bytes).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Prompts::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Unit-length embeddings of item `texts` (after the encoder's document prompt), row-major
/// `[texts.len() x dim]`.
pub fn embed_all(encoder: &TextEncoder, texts: &[String], label: &str) -> Result<Vec<f32>> {
    let ids = texts.iter().map(|t| encoder.tokenize_document(t)).collect::<nook_core::Result<Vec<_>>>()?;
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    let dim = encoder.dim();
    let mut out = vec![0f32; texts.len() * dim];
    let bar = progress::bar(texts.len() as u64, label);
    let start = std::time::Instant::now();
    for chunk in order.chunks(BATCH) {
        let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
        let vectors = encoder.embed_ids(&batch)?;
        for (row, &i) in vectors.chunks_exact(dim).zip(chunk) {
            out[i * dim..(i + 1) * dim].copy_from_slice(row);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let tokens: usize = ids.iter().map(Vec::len).sum();
    tracing::info!(
        "embedded {} texts ({} tokens, mean {:.0}) in {:.1}s",
        texts.len(),
        tokens,
        tokens as f64 / texts.len().max(1) as f64,
        start.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// [`embed_all`] through a cache keyed by the encoder fingerprint and the texts, so re-runs skip
/// the encoding. The cache lives in `cache_dir` (one safetensors file per key).
pub fn embed_cached(
    source: &EncoderSource,
    engine: TextEngine,
    device: &Device,
    texts: &[String],
    cache_dir: &Path,
) -> Result<Vec<f32>> {
    let key = format!("{}{}", source.fingerprint()?, engine.key_suffix());
    embed_cached_with(&key, texts, cache_dir, || match engine {
        TextEngine::F32 => source.load(device),
        TextEngine::Int8 => source.load_int8(),
    })
}

/// Like [`embed_cached`] for any encoder: `fingerprint` must identify it (weights and settings).
pub fn embed_cached_with(
    fingerprint: &str,
    texts: &[String],
    cache_dir: &Path,
    load: impl FnOnce() -> Result<TextEncoder>,
) -> Result<Vec<f32>> {
    let mut key = fingerprint.as_bytes().to_vec();
    for t in texts {
        key.extend(sha256_hex(t.as_bytes()).into_bytes());
    }
    let key = sha256_hex(&key);
    let path = cache_dir.join(format!("text-{}.safetensors", &key[..32]));
    if path.exists() {
        match read_tensors(&path, |t| t.f32("text", &[texts.len(), t.width("text")?])) {
            Ok(v) => {
                tracing::info!("text vectors from cache {}", path.display());
                return Ok(v);
            }
            Err(e) => tracing::warn!("ignoring unreadable cache file: {e:#}"),
        }
    }
    let encoder = load()?;
    let vectors = embed_all(&encoder, texts, "embed")?;
    let bytes = quant::serialize(&[encode_f32("text", &[texts.len(), encoder.dim()], &vectors)])?;
    crate::atomic::write_file(&path, &bytes)?;
    Ok(vectors)
}
