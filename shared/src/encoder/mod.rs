//! On-device text embedding: tokenizer + BERT + pooling (mean or `[CLS]`, as the model's
//! sentence-transformers config says), from bytes.

pub mod bert;
pub mod int8;
mod par;
pub mod pooling;
pub mod prompt;
pub mod qmatmul;
pub mod tape;
pub mod train_ops;

pub use bert::{block_prefix, masked_mean_pool, Bert, BertConfig, Mode};
pub use int8::Int8Bert;
pub use pooling::{Pooling, POOLING_FILE};
pub use prompt::{Prompts, PROMPTS_FILE};
pub use tape::TrainedPass;

use crate::error::{NookError, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// Longest input, in tokens, by default: all-MiniLM-L6-v2 was trained with 256
/// (`sentence_bert_config.json`), while its shipped `tokenizer.json` pads and truncates at 128.
pub const DEFAULT_MAX_TOKENS: usize = 256;

/// A tokenised batch ready for the model.
pub struct Batch {
    pub ids: Tensor,
    pub mask: Tensor,
}

/// Which engine runs the model.
enum Model {
    /// f32 on candle: differentiable (fine-tuning) and exact.
    F32(Bert),
    /// int8 weights, integer products: the on-device engine for int8 bundles.
    Int8(Int8Bert),
}

/// The text encoder: tokenizer, BERT weights and pooling.
pub struct TextEncoder {
    model: Model,
    tokenizer: Tokenizer,
    max_tokens: usize,
    device: Device,
    pooling: Pooling,
    prompts: Prompts,
}

fn parse_config(config: &[u8]) -> Result<BertConfig> {
    serde_json::from_slice(config).map_err(|e| NookError::encoder(format!("config.json: {e}")))
}

/// `max_tokens` within what the model and the tokenizer can take.
fn token_limit(max_tokens: usize, config: &BertConfig) -> Result<usize> {
    let max_tokens = max_tokens.min(config.max_position_embeddings);
    // `[CLS]` and `[SEP]` take two: fewer than three leaves no room for a word (and a truncation
    // length below the special tokens' count underflows in the tokenizer).
    if max_tokens < 3 {
        return Err(NookError::encoder(format!(
            "max_tokens {max_tokens} (after the config's max_position_embeddings) leaves no room for text"
        )));
    }
    Ok(max_tokens)
}

impl TextEncoder {
    /// Builds from the bytes of `config.json`, `tokenizer.json` and f32 weights (`VarBuilder`).
    pub fn new(config: &[u8], tokenizer: &[u8], weights: VarBuilder, max_tokens: usize) -> Result<Self> {
        let config = parse_config(config)?;
        let device = weights.device().clone();
        let max_tokens = token_limit(max_tokens, &config)?;
        let bert = Bert::load(weights, &config)?;
        let tokenizer = load_tokenizer(tokenizer, max_tokens)?;
        Ok(Self {
            model: Model::F32(bert),
            tokenizer,
            max_tokens,
            device,
            pooling: Pooling::Mean,
            prompts: Prompts::default(),
        })
    }

    /// Builds the int8 engine from `config.json`, `tokenizer.json` and `model.safetensors`
    /// (int8 rows as bundles store them; f32/f16 matrices are quantised on load). Inference only.
    /// The engine keeps `safetensors` and reads the int8 matrices where they lie.
    pub fn new_int8(config: &[u8], tokenizer: &[u8], safetensors: Vec<u8>, max_tokens: usize) -> Result<Self> {
        let config = parse_config(config)?;
        let max_tokens = token_limit(max_tokens, &config)?;
        let bert = Int8Bert::load(safetensors, "encoder/model.safetensors", &config)?;
        let tokenizer = load_tokenizer(tokenizer, max_tokens)?;
        Ok(Self {
            model: Model::Int8(bert),
            tokenizer,
            max_tokens,
            device: Device::Cpu,
            pooling: Pooling::Mean,
            prompts: Prompts::default(),
        })
    }

    /// Pools with `pooling` (mean by default): read it from the model's `1_Pooling/config.json`.
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Prefixes queries and item texts with `prompts` (none by default): read them from the
    /// model's `config_sentence_transformers.json`.
    pub fn with_prompts(mut self, prompts: Prompts) -> Self {
        self.prompts = prompts;
        self
    }

    pub fn prompts(&self) -> &Prompts {
        &self.prompts
    }

    /// `"f32"` or `"int8"`: the engine that embeds.
    pub fn engine(&self) -> &'static str {
        match self.model {
            Model::F32(_) => "f32",
            Model::Int8(_) => "int8",
        }
    }

    fn config(&self) -> &BertConfig {
        match &self.model {
            Model::F32(b) => &b.config,
            Model::Int8(b) => &b.config,
        }
    }

    fn f32_model(&self) -> Result<&Bert> {
        match &self.model {
            Model::F32(b) => Ok(b),
            Model::Int8(_) => {
                Err(NookError::encoder("the int8 engine only embeds; tensors and fine-tuning need the f32 weights"))
            }
        }
    }

    /// Builds from the bytes of `config.json`, `tokenizer.json` and `model.safetensors` (f32).
    pub fn from_bytes(config: &[u8], tokenizer: &[u8], safetensors: Vec<u8>, device: &Device) -> Result<Self> {
        let vb = VarBuilder::from_buffered_safetensors(safetensors, DType::F32, device)?;
        Self::new(config, tokenizer, vb, DEFAULT_MAX_TOKENS)
    }

    pub fn dim(&self) -> usize {
        self.config().hidden_size
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Token ids of one text (with `[CLS]`/`[SEP]`, truncated to `max_tokens`).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, true).map_err(|e| NookError::encoder(format!("tokenizer: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of an item's text, after the model's document prompt.
    pub fn tokenize_document(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenize(&self.prompts.document(text))
    }

    /// The unit-length embedding of a typed query, after the model's query prompt.
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        self.embed(&[&self.prompts.query(text)])
    }

    /// Pads token-id lists to the longest and builds the model's input tensors.
    pub fn batch(&self, ids: &[Vec<u32>]) -> Result<Batch> {
        self.batch_to(ids, 0)
    }

    /// The width texts of these token counts are padded to as one batch (the longest, at least 1):
    /// what [`TextEncoder::batch`] gives, for planning around it without building the batch.
    pub fn padded_width(lengths: impl IntoIterator<Item = usize>) -> usize {
        lengths.into_iter().max().unwrap_or(0).max(1)
    }

    /// Like [`TextEncoder::batch`], padded to at least `width` tokens. A text's hidden states
    /// depend on the width it is padded to (the attention's sums group by it), never on the other
    /// texts of its batch.
    pub fn batch_to(&self, ids: &[Vec<u32>], width: usize) -> Result<Batch> {
        let longest = Self::padded_width(ids.iter().map(Vec::len)).max(width);
        let mut flat_ids = Vec::with_capacity(ids.len() * longest);
        let mut flat_mask = Vec::with_capacity(ids.len() * longest);
        for seq in ids {
            flat_ids.extend(seq.iter().copied().chain(std::iter::repeat_n(0, longest - seq.len())));
            flat_mask.extend(std::iter::repeat_n(1u32, seq.len()).chain(std::iter::repeat_n(0, longest - seq.len())));
        }
        let shape = (ids.len(), longest);
        Ok(Batch {
            ids: Tensor::from_vec(flat_ids, shape, &self.device)?,
            mask: Tensor::from_vec(flat_mask, shape, &self.device)?,
        })
    }

    /// Sentence embeddings `[batch, dim]` of a tokenised batch, in the given mode.
    pub fn forward(&self, batch: &Batch, mode: Mode) -> Result<Tensor> {
        let hidden = self.f32_model()?.forward(&batch.ids, &batch.mask, mode)?;
        self.pooling.pool(&hidden, &batch.mask)
    }

    /// Sentence embeddings with blocks from `first_trained` on differentiable (see
    /// [`Bert::forward_from`]): the fine-tuning forward pass.
    pub fn forward_from(&self, batch: &Batch, first_trained: usize) -> Result<Tensor> {
        let hidden = self.f32_model()?.forward_from(&batch.ids, &batch.mask, first_trained)?;
        self.pooling.pool(&hidden, &batch.mask)
    }

    /// The hidden states after the frozen blocks before position `until` (see
    /// [`Bert::frozen_hidden`]): what fine-tuning may compute once per text and reuse.
    pub fn frozen_hidden(&self, batch: &Batch, until: usize) -> Result<Tensor> {
        Ok(self.f32_model()?.frozen_hidden(&batch.ids, &batch.mask, until)?)
    }

    /// Sentence embeddings from the frozen blocks' hidden states `hidden` of `batch` through the
    /// differentiable blocks from position `from` on: [`TextEncoder::forward_from`] in two parts.
    pub fn forward_trained(&self, hidden: &Tensor, batch: &Batch, from: usize) -> Result<Tensor> {
        let hidden = self.f32_model()?.forward_trained(hidden, &batch.mask, from)?;
        self.pooling.pool(&hidden, &batch.mask)
    }

    /// The fine-tuning pass over `batch` with blocks from `first_trained` on trained: sentence
    /// embeddings and the way back to the trained weights' gradients ([`TrainedPass`]). The
    /// same embeddings and gradients as [`TextEncoder::forward_from`] through candle's graph; on
    /// x86 CPUs the trained layers run on the tape instead ([`tape`]).
    pub fn train_pass(&self, batch: &Batch, first_trained: usize) -> Result<TrainedPass<'_>> {
        if first_trained == 0 {
            return Ok(self.f32_model()?.train_pass_all(&batch.ids, &batch.mask, self.pooling)?);
        }
        let hidden = self.frozen_hidden(batch, first_trained)?;
        self.train_pass_over(&hidden, batch, first_trained)
    }

    /// [`TextEncoder::train_pass`] over the frozen blocks' hidden states `hidden` of `batch`
    /// (see [`TextEncoder::forward_trained`]).
    pub fn train_pass_over(&self, hidden: &Tensor, batch: &Batch, from: usize) -> Result<TrainedPass<'_>> {
        Ok(self.f32_model()?.train_pass(hidden, &batch.mask, from, self.pooling)?)
    }

    /// Unit-length embeddings of `texts`, row-major `[texts.len() x dim]`.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let ids = texts.iter().map(|t| self.tokenize(t)).collect::<Result<Vec<_>>>()?;
        self.embed_ids(&ids)
    }

    /// Like [`TextEncoder::embed`] for already tokenised texts.
    pub fn embed_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>> {
        if let Model::Int8(bert) = &self.model {
            return embed_each(bert, ids, self.pooling);
        }
        let pooled = self.forward(&self.batch(ids)?, Mode::Inference)?;
        Ok(pooled.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
    }
}

/// Each text on its own (no padding): natively the texts in parallel; in the browser's threaded
/// build one after another, each text's products split over the query's team ([`par`]).
fn embed_each(bert: &Int8Bert, ids: &[Vec<u32>], pooling: Pooling) -> Result<Vec<f32>> {
    let tokens: usize = ids.iter().map(Vec::len).sum();
    // Whether any product will be split: the biggest is the feed-forward one.
    let split = tokens * bert.config.intermediate_size * bert.config.hidden_size >= par::PARALLEL_MIN;
    let across_texts = cfg!(not(target_arch = "wasm32")) && ids.len() > 1;
    let vectors = par::query(split, || par::map(ids.len(), across_texts, |i| bert.embed(&ids[i], pooling)));
    Ok(vectors.into_iter().collect::<Result<Vec<_>>>()?.concat())
}

/// Loads `tokenizer.json`, replacing its padding and truncation: the shipped file pads every input
/// to 128 tokens, which wastes work on short texts and cuts long ones early. Batches are padded to
/// their longest member instead ([`TextEncoder::batch`]), and inputs truncated at `max_tokens`.
fn load_tokenizer(bytes: &[u8], max_tokens: usize) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_bytes(bytes).map_err(|e| NookError::encoder(format!("tokenizer.json: {e}")))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| NookError::encoder(format!("tokenizer truncation: {e}")))?;
    Ok(tokenizer)
}
