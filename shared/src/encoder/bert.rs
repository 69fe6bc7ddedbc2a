//! A BERT encoder with one switch between fast inference and differentiable training.
//!
//! Why not `candle_transformers::models::bert`: its LayerNorm and softmax call fused kernels
//! (`candle_nn::ops::layer_norm`, `softmax_last_dim`) that have no backward pass, so fine-tuning
//! through it silently trains nothing (candle issue 3011). Here [`Mode::Inference`] uses those fast
//! kernels, [`Mode::Training`] nook's fused kernels with their own backward passes
//! ([`super::train_ops`]) and [`Mode::Composed`] the same maths from candle's generic
//! differentiable ops. Weight names
//! follow Hugging Face's `BertModel`, so the same safetensors load into either mode.

use super::train_ops;
use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Embedding, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

/// The fields of a Hugging Face BERT `config.json` that the forward pass needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// Which kernels the forward pass uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The fastest forward pass, no gradients: on x86 CPUs the fused kernels of
    /// [`super::train_ops`] (one gemm per linear layer straight into its output with the bias,
    /// attention as one op; inputs that are not variables build no graph), elsewhere fused
    /// LayerNorm, softmax and GELU around candle's products.
    Inference,
    /// Differentiable: the fused training kernels of [`super::train_ops`] on CPU f32 tensors,
    /// [`Mode::Composed`] elsewhere.
    Training,
    /// Differentiable compositions of candle's generic ops, on any device and dtype: the
    /// reference the fused training kernels are tested against.
    Composed,
}

impl Mode {
    /// Whether a block runs on the fused kernels of [`super::train_ops`]. For inference on x86
    /// they are 1.3-1.5x the candle compositions (sentences/s at 32 / 128 tokens, 2 cores:
    /// 256 → 335-349, 51 → 75); elsewhere the fused kernels fall back to those compositions.
    fn fused(self, x: &Tensor) -> bool {
        match self {
            Mode::Training => is_cpu_f32(x),
            Mode::Inference => cfg!(target_arch = "x86_64") && is_cpu_f32(x),
            Mode::Composed => false,
        }
    }
}

pub(super) struct LayerNorm {
    pub(super) weight: Tensor,
    pub(super) bias: Tensor,
    pub(super) eps: f64,
}

impl LayerNorm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(Self { weight: vb.get(size, "weight")?, bias: vb.get(size, "bias")?, eps })
    }

    /// `[3, h]`: gamma, beta and `shift`, as [`train_ops::add_layer_norm`] takes them.
    pub(super) fn params(&self, shift: &Tensor) -> Result<Tensor> {
        Tensor::stack(&[&self.weight, &self.bias, shift], 0)
    }

    /// `LayerNorm(a + r + shift)`: a residual block's output, `shift` the bias of the linear
    /// layer that produced `a` when the caller left it out (the fused kernel adds it).
    fn forward(&self, a: &Tensor, r: &Tensor, shift: Option<&Tensor>, mode: Mode) -> Result<Tensor> {
        if mode.fused(a) {
            let shift = match shift {
                Some(s) => s.clone(),
                None => self.bias.zeros_like()?,
            };
            return train_ops::add_layer_norm(a, r, &self.params(&shift)?, self.eps);
        }
        let x = match shift {
            Some(s) => (a + r)?.broadcast_add(s)?,
            None => (a + r)?,
        };
        match mode {
            Mode::Inference => candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps as f32),
            Mode::Training | Mode::Composed => {
                let mean = x.mean_keepdim(D::Minus1)?;
                let centred = x.broadcast_sub(&mean)?;
                let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
                let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
                normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
            }
        }
    }
}

/// Attention weights from raw scores `q·kᵀ` `[b, heads, t, t]`: `softmax(scores · scale + bias)`,
/// `bias` `[b, 1, 1, t]` (0 or a large negative number on padding).
fn attention_probs(scores: &Tensor, scale: f64, bias: &Tensor, mode: Mode) -> Result<Tensor> {
    match mode {
        // On the CPU in one pass per row, with an exp the compiler vectorises (candle's softmax
        // calls scalar `exp`, and scaling and masking would each be a pass of their own).
        Mode::Inference if is_cpu_f32(scores) => {
            let (b, heads, t, s) = scores.dims4()?;
            let bias = bias.flatten_all()?.to_vec1::<f32>()?;
            let mut v = scores.flatten_all()?.to_vec1::<f32>()?;
            let per_batch = heads * t * s;
            for_each_chunk(&mut v, s.max(1), |row_index, row| {
                let mask = &bias[(row_index * s / per_batch.max(1)) * s..][..s];
                masked_softmax_row(row, mask, scale as f32);
            });
            Tensor::from_vec(v, (b, heads, t, s), scores.device())
        }
        Mode::Inference => candle_nn::ops::softmax_last_dim(&(scores * scale)?.broadcast_add(bias)?),
        Mode::Training if is_cpu_f32(scores) => train_ops::masked_softmax(scores, scale, bias),
        Mode::Training | Mode::Composed => candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(bias)?, D::Minus1),
    }
}

fn is_cpu_f32(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32
}

/// Runs `f(index, chunk)` over `len`-long chunks of `v`, on every core natively (the browser's
/// wasm has one thread).
fn for_each_chunk(v: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        // At least ~16k values per task, so short inputs are not split into costly tiny jobs.
        v.par_chunks_mut(len).enumerate().with_min_len((16_384 / len).max(1)).for_each(|(i, c)| f(i, c));
    }
    #[cfg(target_arch = "wasm32")]
    v.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
}

/// `softmax(row · scale + mask)` in place: one attention row.
#[inline(always)]
pub(super) fn masked_softmax_row(row: &mut [f32], mask: &[f32], scale: f32) {
    row.iter_mut().zip(mask).for_each(|(x, m)| *x = *x * scale + m);
    softmax_row(row);
}

#[inline(always)]
pub(super) fn softmax_row(row: &mut [f32]) {
    let max = lanes(row, f32::NEG_INFINITY, |m, v| if v > m { v } else { m });
    row.iter_mut().for_each(|v| *v = exp_f32(*v - max));
    let sum = lanes(row, 0.0, |s, v| s + v);
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// Folds `row` with `f` in eight independent lanes, then folds the lanes: a sequential float fold
/// cannot be reordered by the compiler, eight lanes map onto one vector register.
#[inline(always)]
fn lanes(row: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(init, |a, &v| f(a, v));
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = f(*a, v);
        }
    }
    acc.iter().fold(tail, |a, &v| f(a, v))
}

/// e^x for f32 without branches: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6 polynomial,
/// 2^n built in the exponent bits. Inputs above 88 are clamped; below -87 the result is 0 (a
/// select, not a branch). Why 0 and not e^-87 ≈ 1.6e-38: masked attention scores land there, and
/// after normalising their weights are subnormal floats, which multiply ~100× slower on x86
/// (fine-tuning at 64 tokens, where short texts are mostly padding, ran 7× slower). Relative
/// error about 2e-7.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let underflow = x < -87.0;
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and removing 1.5·2^23 (`f32::round` is a libm call that stops
    // the loop from vectorising on baseline x86-64).
    const ROUND: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    // ln 2 split in two so n·ln2 is exact enough.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n sits in the low mantissa bits of `shifted` (its bits are those of 1.5·2^23, plus n): integer
    // arithmetic on them builds 2^n without a float → int cast, which would not vectorise.
    let two_n = shifted.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23;
    let e = p * f32::from_bits(two_n);
    if underflow {
        0.0
    } else {
        e
    }
}

pub(super) struct Embeddings {
    pub(super) word: Embedding,
    pub(super) position: Embedding,
    pub(super) token_type: Embedding,
    pub(super) norm: LayerNorm,
}

pub(super) struct Layer {
    pub(super) query: Linear,
    pub(super) key: Linear,
    pub(super) value: Linear,
    pub(super) attn_out: Linear,
    pub(super) attn_norm: LayerNorm,
    pub(super) intermediate: Linear,
    pub(super) output: Linear,
    pub(super) out_norm: LayerNorm,
}

/// BERT without the pooler: token ids in, last hidden states out.
pub struct Bert {
    pub(super) embeddings: Embeddings,
    pub(super) layers: Vec<Layer>,
    pub(super) heads: usize,
    pub(super) head_dim: usize,
    pub config: BertConfig,
}

/// What both engines (this one and [`super::int8`]) can run.
pub(super) fn check_config(config: &BertConfig) -> std::result::Result<(), String> {
    if config.hidden_act != "gelu" {
        return Err(format!("hidden_act {:?} is not supported (only \"gelu\")", config.hidden_act));
    }
    let h = config.hidden_size;
    if h == 0 || config.num_attention_heads == 0 || !h.is_multiple_of(config.num_attention_heads) {
        return Err(format!("hidden_size {h} is not divisible by num_attention_heads {}", config.num_attention_heads));
    }
    if config.type_vocab_size == 0
        || config.max_position_embeddings == 0
        || config.vocab_size == 0
        || config.intermediate_size == 0
    {
        return Err(
            "vocab_size, type_vocab_size, max_position_embeddings and intermediate_size must be positive".into()
        );
    }
    Ok(())
}

/// Weight names of the embeddings block (position 0) and of encoder layer `i` (position `i + 1`).
pub fn block_prefix(position: usize) -> String {
    match position {
        0 => "embeddings.".to_string(),
        p => format!("encoder.layer.{}.", p - 1),
    }
}

impl Bert {
    /// Loads weights named as in Hugging Face's `BertModel` (`embeddings.*`, `encoder.layer.N.*`).
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        check_config(config).map_err(candle_core::Error::msg)?;
        let (h, eps) = (config.hidden_size, config.layer_norm_eps);
        let e = vb.pp("embeddings");
        let embeddings = Embeddings {
            word: candle_nn::embedding(config.vocab_size, h, e.pp("word_embeddings"))?,
            position: candle_nn::embedding(config.max_position_embeddings, h, e.pp("position_embeddings"))?,
            token_type: candle_nn::embedding(config.type_vocab_size, h, e.pp("token_type_embeddings"))?,
            norm: LayerNorm::load(e.pp("LayerNorm"), h, eps)?,
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let a = l.pp("attention");
                Ok(Layer {
                    query: candle_nn::linear(h, h, a.pp("self.query"))?,
                    key: candle_nn::linear(h, h, a.pp("self.key"))?,
                    value: candle_nn::linear(h, h, a.pp("self.value"))?,
                    attn_out: candle_nn::linear(h, h, a.pp("output.dense"))?,
                    attn_norm: LayerNorm::load(a.pp("output.LayerNorm"), h, eps)?,
                    intermediate: candle_nn::linear(h, config.intermediate_size, l.pp("intermediate.dense"))?,
                    output: candle_nn::linear(config.intermediate_size, h, l.pp("output.dense"))?,
                    out_norm: LayerNorm::load(l.pp("output.LayerNorm"), h, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let heads = config.num_attention_heads;
        Ok(Self { embeddings, layers, heads, head_dim: h / heads, config: config.clone() })
    }

    /// `ids`, `mask`: `[batch, tokens]` (u32; mask 1 for real tokens, 0 for padding).
    /// Returns the last hidden states `[batch, tokens, hidden]`.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward_modes(ids, mask, |_| mode)
    }

    /// Like [`Bert::forward`], with the blocks before position `first_trained` run by the fast
    /// inference kernels and the rest by the differentiable ones. Position 0 is the embeddings,
    /// position `i + 1` is encoder layer `i`. Frozen blocks need no gradients, so fine-tuning only
    /// the top layers costs little more than inference.
    pub fn forward_from(&self, ids: &Tensor, mask: &Tensor, first_trained: usize) -> Result<Tensor> {
        // The frozen blocks' weights are plain tensors, so they build no graph.
        self.forward_modes(
            ids,
            mask,
            |position| if position >= first_trained { Mode::Training } else { Mode::Inference },
        )
    }

    /// The hidden states `[batch, tokens, hidden]` after the blocks before position `until` (at
    /// least 1: the embeddings and the first `until - 1` layers), all by the inference kernels:
    /// what the frozen blocks of a fine-tuning pass compute. A text's rows depend on its tokens
    /// and on the width its batch is padded to (the attention's sums group by it), never on the
    /// other texts: they can be computed once and reused in batches of that width.
    pub fn frozen_hidden(&self, ids: &Tensor, mask: &Tensor, until: usize) -> Result<Tensor> {
        if until == 0 || until > self.layers.len() + 1 {
            candle_core::bail!("frozen blocks end at position {until}, outside 1..={}", self.layers.len() + 1);
        }
        let (mut x, bias) = self.embed(ids, mask, Mode::Inference)?;
        for layer in &self.layers[..until - 1] {
            x = self.layer(layer, &x, &bias, Mode::Inference)?;
        }
        Ok(x)
    }

    /// The blocks from position `from` (at least 1) on, differentiable, over `x`: the hidden
    /// states the blocks before it produced ([`Bert::frozen_hidden`]) for a batch masked by `mask`.
    pub fn forward_trained(&self, x: &Tensor, mask: &Tensor, from: usize) -> Result<Tensor> {
        if from == 0 || from > self.layers.len() + 1 {
            candle_core::bail!("trained blocks start at position {from}, outside 1..={}", self.layers.len() + 1);
        }
        let bias = attention_bias(mask, x)?;
        let mut x = x.clone();
        for layer in &self.layers[from - 1..] {
            x = self.layer(layer, &x, &bias, Mode::Training)?;
        }
        Ok(x)
    }

    /// The forward pass with block `position`'s kernels chosen by `mode_at(position)`.
    fn forward_modes(&self, ids: &Tensor, mask: &Tensor, mode_at: impl Fn(usize) -> Mode) -> Result<Tensor> {
        let (mut x, bias) = self.embed(ids, mask, mode_at(0))?;
        for (i, layer) in self.layers.iter().enumerate() {
            x = self.layer(layer, &x, &bias, mode_at(i + 1))?;
        }
        Ok(x)
    }

    /// The embeddings block's output and the attention mask every layer adds.
    pub(super) fn embed(&self, ids: &Tensor, mask: &Tensor, mode: Mode) -> Result<(Tensor, Tensor)> {
        let (words, types) = self.embedding_rows(ids)?;
        let x = self.embeddings.norm.forward(&words, &types, None, mode)?;
        let bias = attention_bias(mask, &x)?;
        Ok((x, bias))
    }

    /// What the embeddings block normalises for token ids `ids` `[b, t]`: each token's word row
    /// plus its position's row, and its token type's row (type 0 throughout), both `[b, t, h]`.
    pub(super) fn embedding_rows(&self, ids: &Tensor) -> Result<(Tensor, Tensor)> {
        let tokens = ids.dims2()?.1;
        if tokens > self.config.max_position_embeddings {
            candle_core::bail!("{tokens} tokens exceed the model's {} positions", self.config.max_position_embeddings);
        }
        let positions = Tensor::arange(0u32, tokens as u32, ids.device())?;
        let types = ids.zeros_like()?;
        let e = &self.embeddings;
        let words = e.word.forward(ids)?.broadcast_add(&e.position.forward(&positions)?)?;
        Ok((words, e.token_type.forward(&types)?))
    }

    fn layer(&self, l: &Layer, x: &Tensor, bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let split = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let fused = mode.fused(x);
        let dense = |lin: &Linear| if fused { train_ops::linear(x, lin.weight(), lin.bias()) } else { lin.forward(x) };
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        if fused {
            let (q, k, v) = (dense(&l.query)?, dense(&l.key)?, dense(&l.value)?);
            let ctx = train_ops::attention(&q, &k, &v, bias, self.heads, scale)?;
            // Linear layers without their bias: the LayerNorm and GELU kernels add it.
            let attn = l.attn_norm.forward(&project(&l.attn_out, &ctx)?, x, l.attn_out.bias(), mode)?;
            let (inner, bias) = (project(&l.intermediate, &attn)?, linear_bias(&l.intermediate)?);
            let inner = if mode == Mode::Inference {
                // No gradient: the fresh product is rewritten in place.
                train_ops::bias_gelu_in_place(&inner, bias)?;
                inner
            } else {
                train_ops::bias_gelu(&inner, bias)?
            };
            return l.out_norm.forward(&project(&l.output, &inner)?, &attn, l.output.bias(), mode);
        }
        let q = split(dense(&l.query)?)?;
        let k = split(dense(&l.key)?)?;
        let v = split(dense(&l.value)?)?;
        let probs = attention_probs(&q.matmul(&k.t()?)?, scale, bias, mode)?;
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h))?;
        let attn = l.attn_norm.forward(&l.attn_out.forward(&ctx)?, x, None, mode)?;
        let inner = gelu(&l.intermediate.forward(&attn)?, mode)?;
        l.out_norm.forward(&l.output.forward(&inner)?, &attn, None, mode)
    }
}

/// The additive attention mask `[batch, 1, 1, tokens]` for hidden states like `x`: 0 where
/// attending is allowed, a large negative number on padding.
pub(super) fn attention_bias(mask: &Tensor, x: &Tensor) -> Result<Tensor> {
    let (batch, tokens) = mask.dims2()?;
    ((mask.to_dtype(x.dtype())? - 1.0)? * 1e4)?.reshape((batch, 1, 1, tokens))
}

/// `x · Wᵀ` of a linear layer, without its bias.
fn project(linear: &Linear, x: &Tensor) -> Result<Tensor> {
    train_ops::linear(x, linear.weight(), None)
}

pub(super) fn linear_bias(linear: &Linear) -> Result<&Tensor> {
    linear.bias().ok_or_else(|| candle_core::Error::msg("a BERT linear layer without bias"))
}

/// GELU with the exact-erf definition BERT uses. Inference on the CPU evaluates erf with a
/// branch-free rational approximation that the compiler vectorises (candle's `gelu_erf` calls a
/// scalar `erf` per element: 7–10% of an embedding in profiles, natively and in wasm).
fn gelu(x: &Tensor, mode: Mode) -> Result<Tensor> {
    match mode {
        Mode::Inference if is_cpu_f32(x) => {
            let mut v = x.flatten_all()?.to_vec1::<f32>()?;
            for_each_chunk(&mut v, 4096, |_, c| c.iter_mut().for_each(|x| *x = gelu_f32(*x)));
            Tensor::from_vec(v, x.shape(), x.device())
        }
        _ => x.gelu_erf(),
    }
}

#[inline(always)]
pub(super) fn gelu_f32(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf for f32 as a ratio of odd and even polynomials on [-4, 4] (erf is ±1 to f32 precision
/// beyond): the approximation Eigen and XLA use for f32, absolute error below 1e-6.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    const ALPHA: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.9546e-3,
        -1.609_603_3e-2,
    ];
    const BETA: [f32; 5] = [-1.456_607_2e-5, -2.133_740_6e-4, -1.682_827e-3, -7.373_329e-3, -1.426_474e-2];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ALPHA.iter().fold(0.0, |acc, &a| acc * x2 + a);
    let q = BETA.iter().fold(0.0, |acc, &b| acc * x2 + b);
    x * p / q
}

/// Mean of the hidden states over real tokens only (padding excluded), then L2-normalised: the
/// sentence-transformers pooling of all-MiniLM-L6-v2. `hidden`: `[b, t, h]`; `mask`: `[b, t]`.
pub fn masked_mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (summed, counts) = masked_sum(hidden, mask)?;
    normalised_mean(&summed, &counts)
}

/// The first half of [`masked_mean_pool`]: the real tokens' states summed, `[b, h]`, and their
/// counts, `[b, 1]`.
pub(crate) fn masked_sum(hidden: &Tensor, mask: &Tensor) -> Result<(Tensor, Tensor)> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::INFINITY)?;
    Ok((summed, counts))
}

/// The second half of [`masked_mean_pool`]: the mean from [`masked_sum`]'s parts, L2-normalised.
pub(crate) fn normalised_mean(summed: &Tensor, counts: &Tensor) -> Result<Tensor> {
    let mean = summed.broadcast_div(counts)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::INFINITY)?;
    mean.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fast_gelu_and_attention_softmax_match_candles_exact_ops() {
        let xs: Vec<f32> = (-8000..=8000).map(|i| i as f32 * 1e-3).collect();
        let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let exact = t.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        let fast = gelu(&t, Mode::Inference).unwrap().to_vec1::<f32>().unwrap();
        let worst = exact.iter().zip(&fast).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 2e-6, "max |fast - exact| = {worst}");
        assert_eq!(erf_f32(0.0), 0.0);
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let (got, want) = (exp_f32(x) as f64, (x as f64).exp());
            assert!(((got - want) / want).abs() < 1e-6, "exp({x}) = {got}, want {want}");
        }
        // Below -87 exactly 0, never a subnormal float (slow to multiply).
        assert!([-87.01f32, -100.0, -1e4, f32::NEG_INFINITY].iter().all(|&x| exp_f32(x) == 0.0));
        // Attention weights: [2 batches, 3 heads, 5 queries, 37 keys] (rows longer than the eight
        // lanes, with a remainder), the second batch's last 9 keys padding.
        let (b, heads, t, s) = (2, 3, 5, 37);
        let scores: Vec<f32> = (0..b * heads * t * s).map(|i| ((i * 7919) % 1000) as f32 * 0.013 - 6.0).collect();
        let scores = Tensor::from_vec(scores, (b, heads, t, s), &Device::Cpu).unwrap();
        let mask: Vec<f32> = (0..b * s).map(|i| if i >= b * s - 9 { -1e4 } else { 0.0 }).collect();
        let bias = Tensor::from_vec(mask, (b, 1, 1, s), &Device::Cpu).unwrap();
        let exact = candle_nn::ops::softmax_last_dim(&(&scores * 0.25).unwrap().broadcast_add(&bias).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let fast = attention_probs(&scores, 0.25, &bias, Mode::Inference).unwrap().flatten_all().unwrap();
        let fast = fast.to_vec1::<f32>().unwrap();
        let worst = exact.iter().zip(&fast).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-6, "attention weights differ by {worst}");
        assert!(fast[fast.len() - 9..].iter().all(|&p| p == 0.0), "padding gets no weight");
        assert!((erf_f32(10.0) - 1.0).abs() < 1e-6 && (erf_f32(-10.0) + 1.0).abs() < 1e-6);
    }
}
