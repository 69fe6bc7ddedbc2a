//! The on-device encoder: BERT inference straight from an int8 bundle's weights.
//!
//! The f32 path ([`super::Bert`], on candle) expands the shipped int8 weights to f32 (88 MB for
//! MiniLM-L6, read whole for every query). Here they stay int8 (22 MB): every dense layer is an
//! integer product ([`super::qmatmul`]), the word embeddings are dequantised one row per token, and
//! only the small parts stay f32 (position and type embeddings, LayerNorm, attention, GELU). One
//! sequence at a time, without padding, so a short query does short work. Attention is fused per
//! head and query row: scores, softmax and the weighted sum of values without a `t x t` matrix.
//! The int8 matrices are not copied out of the model file: the engine keeps the file's bytes and
//! reads each matrix where it lies, so loading costs no second copy (wasm memory never shrinks,
//! so a copy made while loading would stay for good).

use super::bert::{gelu_f32, softmax_row, BertConfig};
use super::qmatmul;
use crate::error::{NookError, Result};
use crate::linalg::{axpy, dot};
use crate::quant::{decode_f32, decode_matrix, Int8Rows, Matrix, SCALE_SUFFIX};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// LayerNorm of each row of `x` in place.
    fn apply(&self, x: &mut [f32]) {
        let h = self.weight.len();
        for row in x.chunks_exact_mut(h) {
            let mean = row.iter().sum::<f32>() / h as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

/// Where an int8 matrix's values are.
enum Values {
    /// In the model file's bytes, from this offset.
    InFile(usize),
    /// Quantised on load (the file held f32 or f16).
    Owned(Vec<i8>),
}

/// An int8 `rows x cols` matrix with one scale per row.
struct Rows {
    values: Values,
    scales: Vec<f32>,
    cols: usize,
}

impl Rows {
    fn q<'a>(&'a self, file: &'a [u8]) -> &'a [i8] {
        match &self.values {
            Values::InFile(offset) => as_i8(&file[*offset..*offset + self.scales.len() * self.cols]),
            Values::Owned(q) => q,
        }
    }

    fn bytes(&self) -> usize {
        self.scales.len() * (self.cols + 4)
    }
}

fn as_i8(bytes: &[u8]) -> &[i8] {
    // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is valid for both.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<i8>(), bytes.len()) }
}

struct Dense {
    weight: Rows,
    bias: Vec<f32>,
}

impl Dense {
    fn forward(&self, file: &[u8], x: &[f32]) -> Vec<f32> {
        qmatmul::linear(self.weight.q(file), &self.weight.scales, self.weight.cols, &self.bias, x)
    }

    fn bytes(&self) -> usize {
        self.weight.bytes() + 4 * self.bias.len()
    }
}

struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attn_out: Dense,
    attn_norm: Norm,
    intermediate: Dense,
    output: Dense,
    out_norm: Norm,
}

/// BERT with int8 dense layers, for inference: token ids in, a unit-length sentence vector out
/// (masked mean pooling, as sentence-transformers' all-MiniLM-L6-v2).
pub struct Int8Bert {
    pub config: BertConfig,
    /// `model.safetensors` as loaded: the int8 matrices are read from here.
    file: Vec<u8>,
    word: Rows,
    position: Vec<f32>,
    token_type0: Vec<f32>,
    emb_norm: Norm,
    layers: Vec<Layer>,
}

/// Reads the weights of one safetensors file (`file` names it in errors).
struct Weights<'a> {
    st: &'a SafeTensors<'a>,
    bytes: &'a [u8],
    file: &'a str,
}

impl Weights<'_> {
    fn rows(&self, name: &str, rows: usize, cols: usize) -> Result<Rows> {
        let view =
            self.st.tensor(name).map_err(|_| NookError::encoder(format!("{} has no tensor {name:?}", self.file)))?;
        if view.dtype() == Dtype::I8 && view.shape() == [rows, cols] {
            let scale_name = format!("{name}{SCALE_SUFFIX}");
            let scales = decode_f32(self.st, self.file, &scale_name, &[rows])?;
            if scales.iter().any(|s| *s <= 0.0) {
                return Err(NookError::encoder(format!("{}: {scale_name} holds a non-positive scale", self.file)));
            }
            let offset = view.data().as_ptr() as usize - self.bytes.as_ptr() as usize;
            return Ok(Rows { values: Values::InFile(offset), scales, cols });
        }
        let q = match decode_matrix(self.st, self.file, name, &[rows, cols])? {
            Matrix::Int8(q) => q,
            // An f32/f16 encoder is quantised here the way the exporter does it.
            Matrix::F32(v) => Int8Rows::quantize(&v, cols),
        };
        Ok(Rows { values: Values::Owned(q.q), scales: q.scales, cols })
    }

    fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        match decode_matrix(self.st, self.file, name, shape)? {
            Matrix::F32(v) => Ok(v),
            Matrix::Int8(q) => Ok(q.dequantize()),
        }
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        decode_f32(self.st, self.file, name, &[len])
    }

    fn dense(&self, prefix: &str, out: usize, inp: usize) -> Result<Dense> {
        Ok(Dense {
            weight: self.rows(&format!("{prefix}.weight"), out, inp)?,
            bias: self.vector(&format!("{prefix}.bias"), out)?,
        })
    }

    fn norm(&self, prefix: &str, h: usize, eps: f64) -> Result<Norm> {
        Ok(Norm {
            weight: self.vector(&format!("{prefix}.weight"), h)?,
            bias: self.vector(&format!("{prefix}.bias"), h)?,
            eps: eps as f32,
        })
    }
}

impl Int8Bert {
    /// Loads Hugging Face `BertModel` weights (names as [`super::Bert::load`] reads them) from the
    /// bytes of a safetensors file whose matrices are int8 rows (or f32/f16, quantised here).
    pub fn load(bytes: Vec<u8>, file: &str, config: &BertConfig) -> Result<Self> {
        super::bert::check_config(config).map_err(|e| NookError::encoder(format!("{file}: {e}")))?;
        let (h, inner, eps) = (config.hidden_size, config.intermediate_size, config.layer_norm_eps);
        let (word, position, token_type, emb_norm, layers) = {
            let st = SafeTensors::deserialize(&bytes).map_err(|e| NookError::encoder(format!("{file}: {e}")))?;
            let w = Weights { st: &st, bytes: &bytes, file };
            let word = w.rows("embeddings.word_embeddings.weight", config.vocab_size, h)?;
            let position = w.f32("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])?;
            let token_type = w.f32("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?;
            let emb_norm = w.norm("embeddings.LayerNorm", h, eps)?;
            let layers = (0..config.num_hidden_layers)
                .map(|i| {
                    let p = format!("encoder.layer.{i}");
                    Ok(Layer {
                        query: w.dense(&format!("{p}.attention.self.query"), h, h)?,
                        key: w.dense(&format!("{p}.attention.self.key"), h, h)?,
                        value: w.dense(&format!("{p}.attention.self.value"), h, h)?,
                        attn_out: w.dense(&format!("{p}.attention.output.dense"), h, h)?,
                        attn_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                        intermediate: w.dense(&format!("{p}.intermediate.dense"), inner, h)?,
                        output: w.dense(&format!("{p}.output.dense"), h, inner)?,
                        out_norm: w.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            (word, position, token_type, emb_norm, layers)
        };
        Ok(Self {
            config: config.clone(),
            file: bytes,
            word,
            position,
            token_type0: token_type[..h].to_vec(),
            emb_norm,
            layers,
        })
    }

    /// Bytes of weights held (what a query reads).
    pub fn weight_bytes(&self) -> usize {
        let norms = 2 * 4 * self.config.hidden_size * (1 + 2 * self.layers.len());
        let dense = |l: &Layer| {
            [&l.query, &l.key, &l.value, &l.attn_out, &l.intermediate, &l.output]
                .iter()
                .map(|d| d.bytes())
                .sum::<usize>()
        };
        self.word.bytes()
            + 4 * (self.position.len() + self.token_type0.len())
            + norms
            + self.layers.iter().map(dense).sum::<usize>()
    }

    /// The unit-length sentence vector of one tokenised text (`[CLS] … [SEP]`).
    pub fn embed(&self, ids: &[u32], pooling: super::Pooling) -> Result<Vec<f32>> {
        let h = self.config.hidden_size;
        let t = ids.len();
        if t == 0 {
            return Err(NookError::encoder("no tokens to embed"));
        }
        if t > self.config.max_position_embeddings {
            return Err(NookError::encoder(format!(
                "{t} tokens exceed the model's {} positions",
                self.config.max_position_embeddings
            )));
        }
        let mut x = vec![0f32; t * h];
        for (i, (&id, row)) in ids.iter().zip(x.chunks_exact_mut(h)).enumerate() {
            let id = id as usize;
            let vocab = self.word.scales.len();
            if id >= vocab {
                return Err(NookError::encoder(format!("token id {id} is outside the vocabulary ({vocab})")));
            }
            let s = self.word.scales[id];
            let word = &self.word.q(&self.file)[id * h..(id + 1) * h];
            let pos = &self.position[i * h..(i + 1) * h];
            for (((v, &q), p), ty) in row.iter_mut().zip(word).zip(pos).zip(&self.token_type0) {
                *v = q as f32 * s + p + ty;
            }
        }
        self.emb_norm.apply(&mut x);
        for layer in &self.layers {
            x = self.layer(layer, x, t);
        }
        Ok(pooling.pool_rows(&x, h))
    }

    fn layer(&self, l: &Layer, x: Vec<f32>, t: usize) -> Vec<f32> {
        let f = &self.file;
        let (q, k, v) = (l.query.forward(f, &x), l.key.forward(f, &x), l.value.forward(f, &x));
        let ctx = self.attention(&q, &k, &v, t);
        let mut attn = l.attn_out.forward(f, &ctx);
        attn.iter_mut().zip(&x).for_each(|(a, r)| *a += r);
        l.attn_norm.apply(&mut attn);
        let mut inner = l.intermediate.forward(f, &attn);
        inner.iter_mut().for_each(|v| *v = gelu_f32(*v));
        let mut out = l.output.forward(f, &inner);
        out.iter_mut().zip(&attn).for_each(|(o, r)| *o += r);
        l.out_norm.apply(&mut out);
        out
    }

    /// Self-attention over one unpadded sequence: queries, keys and values `[t x h]` in, the
    /// context `[t x h]` out.
    fn attention(&self, q: &[f32], k: &[f32], v: &[f32], t: usize) -> Vec<f32> {
        let (h, heads) = (self.config.hidden_size, self.config.num_attention_heads);
        attend(q, k, v, t, h, heads)
    }
}

/// The attention of [`Int8Bert`], per head and query row.
fn attend(q: &[f32], k: &[f32], v: &[f32], t: usize, h: usize, heads: usize) -> Vec<f32> {
    let d = h / heads;
    let scale = 1.0 / (d as f32).sqrt();
    let mut ctx = vec![0f32; t * h];
    let mut probs = vec![0f32; t];
    let (mut kt, mut vt) = (vec![0f32; d * t], vec![0f32; d * t]);
    for head in 0..heads {
        let off = head * d;
        // This head's keys and values transposed to `[d x t]`: a query's scores are then d
        // long axpys over the t tokens, and each context value one long dot product, instead
        // of 2t short ones of d values.
        for j in 0..t {
            for c in 0..d {
                kt[c * t + j] = k[j * h + off + c];
                vt[c * t + j] = v[j * h + off + c];
            }
        }
        for (i, out_row) in ctx.chunks_exact_mut(h).enumerate() {
            probs.fill(0.0);
            for (c, &qc) in q[i * h + off..][..d].iter().enumerate() {
                axpy(qc * scale, &kt[c * t..(c + 1) * t], &mut probs);
            }
            softmax_row(&mut probs);
            for (c, out) in out_row[off..off + d].iter_mut().enumerate() {
                *out = dot(&probs, &vt[c * t..(c + 1) * t]);
            }
        }
    }
    ctx
}
