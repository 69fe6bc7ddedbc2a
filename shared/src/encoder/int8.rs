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
    #[inline(always)]
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
    /// Each row's integer sum (what [`qmatmul::linear`] multiplies a token's low end by); only
    /// for the dense layers' matrices.
    sums: Vec<i32>,
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
        self.scales.len() * (self.cols + 4) + 4 * self.sums.len()
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
        self.forward_acts(file, &qmatmul::Acts::new(x, self.weight.cols))
    }

    fn forward_acts(&self, file: &[u8], x: &qmatmul::Acts) -> Vec<f32> {
        let w = &self.weight;
        qmatmul::linear_acts(w.q(file), &w.scales, &w.sums, &self.bias, x)
    }

    fn weights<'a>(&'a self, file: &'a [u8]) -> qmatmul::Weights<'a> {
        let w = &self.weight;
        qmatmul::Weights { w: w.q(file), scales: &w.scales, sums: &w.sums, bias: &self.bias }
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
            return Ok(Rows { values: Values::InFile(offset), scales, sums: Vec::new(), cols });
        }
        let q = match decode_matrix(self.st, self.file, name, &[rows, cols])? {
            Matrix::Int8(q) => q,
            // An f32/f16 encoder is quantised here the way the exporter does it.
            Matrix::F32(v) => Int8Rows::quantize(&v, cols),
        };
        Ok(Rows { values: Values::Owned(q.q), scales: q.scales, sums: Vec::new(), cols })
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
        let mut weight = self.rows(&format!("{prefix}.weight"), out, inp)?;
        weight.sums = qmatmul::row_sums(weight.q(self.bytes), inp);
        Ok(Dense { weight, bias: self.vector(&format!("{prefix}.bias"), out)? })
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
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.embed_avx2(ids, pooling) };
        }
        self.embed_body(ids, pooling)
    }

    /// The same code compiled for AVX2 (the native build's baseline is SSE2), with the layer's
    /// element-wise work (LayerNorm, GELU, residuals, softmax) inlined into it. Without FMA every
    /// product and sum is rounded one by one as in the browser, so the wider vectors change no bit.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn embed_avx2(&self, ids: &[u32], pooling: super::Pooling) -> Result<Vec<f32>> {
        self.embed_body(ids, pooling)
    }

    #[inline(always)]
    fn embed_body(&self, ids: &[u32], pooling: super::Pooling) -> Result<Vec<f32>> {
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

    #[inline(always)]
    fn layer(&self, l: &Layer, x: Vec<f32>, t: usize) -> Vec<f32> {
        let f = &self.file;
        let acts = qmatmul::Acts::new(&x, self.config.hidden_size);
        // Query, key and value in one pass over the threads (each exactly its own product).
        let qkv = qmatmul::linear_many(&[l.query.weights(f), l.key.weights(f), l.value.weights(f)], &acts);
        let (q, k, v) = (&qkv[0], &qkv[1], &qkv[2]);
        let ctx = self.attention(q, k, v, t);
        // The element-wise steps by rows: over the team in the browser's threaded build (when the
        // query is split at all), at once elsewhere.
        let h = self.config.hidden_size;
        let split = t * self.config.intermediate_size * h >= super::par::PARALLEL_MIN;
        let mut attn = l.attn_out.forward(f, &ctx);
        super::par::rows_mut(&mut attn, h, split, |first, rows| {
            rows.iter_mut().zip(&x[first * h..]).for_each(|(a, r)| *a += r);
            l.attn_norm.apply(rows);
        });
        let mut inner = l.intermediate.forward(f, &attn);
        let inter = self.config.intermediate_size;
        super::par::rows_mut(&mut inner, inter, split, |_, rows| rows.iter_mut().for_each(|v| *v = gelu_f32(*v)));
        let mut out = l.output.forward(f, &inner);
        super::par::rows_mut(&mut out, h, split, |first, rows| {
            rows.iter_mut().zip(&attn[first * h..]).for_each(|(o, r)| *o += r);
            l.out_norm.apply(rows);
        });
        out
    }

    /// Self-attention over one unpadded sequence: queries, keys and values `[t x h]` in, the
    /// context `[t x h]` out.
    #[inline(always)]
    fn attention(&self, q: &[f32], k: &[f32], v: &[f32], t: usize) -> Vec<f32> {
        let (h, heads) = (self.config.hidden_size, self.config.num_attention_heads);
        attend(q, k, v, t, h, heads)
    }
}

/// The attention of [`Int8Bert`], one head at a time: scores `Q·Kᵀ` (queries pre-scaled), a
/// softmax per row, then `P·V` written straight into the head's columns of the context. Both
/// products are small matrix products on register tiles ([`tile_product`]); a head's `t x t`
/// scores are the only buffer (64 KB at 128 tokens). The browser's threaded build gives each
/// thread whole heads of a long input, each into its own `[t x d]` block: the same sums in the
/// same order, so every build gives the same bits.
#[inline(always)]
fn attend(q: &[f32], k: &[f32], v: &[f32], t: usize, h: usize, heads: usize) -> Vec<f32> {
    let d = h / heads;
    let scale = 1.0 / (d as f32).sqrt();
    let q: Vec<f32> = q.iter().map(|x| x * scale).collect();
    let mut ctx = vec![0f32; t * h];
    if cfg!(all(target_arch = "wasm32", feature = "threads")) && t * t * h >= 1 << 21 {
        let blocks = super::par::map(heads, true, |head| {
            let (mut scores, mut kt, mut out) = (vec![0f32; t * t], vec![0f32; d * t], vec![0f32; t * d]);
            attend_head(&q, k, v, (t, h, head * d, d), &mut scores, &mut kt, &mut out, d);
            out
        });
        for (head, block) in blocks.iter().enumerate() {
            for (row, src) in ctx.chunks_exact_mut(h).zip(block.chunks_exact(d)) {
                row[head * d..(head + 1) * d].copy_from_slice(src);
            }
        }
        return ctx;
    }
    let mut scores = vec![0f32; t * t];
    let mut kt = vec![0f32; d * t];
    for head in 0..heads {
        let off = head * d;
        attend_head(&q, k, v, (t, h, off, d), &mut scores, &mut kt, &mut ctx[off..], h);
    }
    ctx
}

/// One head of [`attend`]: its `d` columns from `off` of `q`, `k`, `v` (rows of `h`), its context
/// into `out` (rows `ldo` apart).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn attend_head(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    (t, h, off, d): (usize, usize, usize, usize),
    scores: &mut [f32],
    kt: &mut [f32],
    out: &mut [f32],
    ldo: usize,
) {
    // This head's keys transposed to `[d x t]`, so both products read their right-hand side row
    // by row.
    for j in 0..t {
        for c in 0..d {
            kt[c * t + j] = k[j * h + off + c];
        }
    }
    tile_product(&q[off..], h, kt, t, (t, t, d), scores, t);
    scores.chunks_exact_mut(t).for_each(softmax_row);
    tile_product(scores, t, &v[off..], h, (t, d, t), out, ldo);
}

/// `c[i·ldc + j] = Σ_p a[i·lda + p] · b[p·ldb + j]` for `(m, n, depth)` = (rows, columns, inner
/// length). Tiles of 4 rows x 8 columns keep their 32 sums in registers while `p` runs; every
/// sum, in a tile or at the edges, adds its products in order of `p`, so the result does not
/// depend on the tiling or the SIMD width (native and wasm agree to the bit).
fn tile_product(a: &[f32], lda: usize, b: &[f32], ldb: usize, dims: (usize, usize, usize), c: &mut [f32], ldc: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { tile_product_avx2(a, lda, b, ldb, dims, c, ldc) };
    }
    tile_product_body(a, lda, b, ldb, dims, c, ldc)
}

/// The same code compiled for AVX2 (the native build's baseline is SSE2). Without FMA: products
/// and sums are rounded one by one as everywhere else, so the wider vectors change no bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn tile_product_avx2(
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    dims: (usize, usize, usize),
    c: &mut [f32],
    ldc: usize,
) {
    tile_product_body(a, lda, b, ldb, dims, c, ldc)
}

#[inline(always)]
fn tile_product_body(
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    (m, n, depth): (usize, usize, usize),
    c: &mut [f32],
    ldc: usize,
) {
    const R: usize = 4;
    const C: usize = 8;
    let (full_m, full_n) = (m - m % R, n - n % C);
    for i0 in (0..full_m).step_by(R) {
        for j0 in (0..full_n).step_by(C) {
            let mut acc = [[0f32; C]; R];
            for p in 0..depth {
                let bv: &[f32; C] = b[p * ldb + j0..p * ldb + j0 + C].try_into().unwrap();
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = a[(i0 + r) * lda + p];
                    for (s, &bx) in row.iter_mut().zip(bv) {
                        *s += av * bx;
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                c[(i0 + r) * ldc + j0..(i0 + r) * ldc + j0 + C].copy_from_slice(row);
            }
        }
    }
    // The edges: rows below the last full tile, columns right of it.
    let edge = |i: usize, j: usize| (0..depth).fold(0f32, |s, p| s + a[i * lda + p] * b[p * ldb + j]);
    for i in 0..m {
        let from = if i < full_m { full_n } else { 0 };
        for j in from..n {
            c[i * ldc + j] = edge(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention written out plainly: scores, softmax, weighted values, per head and row.
    fn naive(q: &[f32], k: &[f32], v: &[f32], t: usize, h: usize, heads: usize) -> Vec<f32> {
        let d = h / heads;
        let mut ctx = vec![0f32; t * h];
        for head in 0..heads {
            let off = head * d;
            for i in 0..t {
                let s: Vec<f32> = (0..t)
                    .map(|j| (0..d).map(|c| q[i * h + off + c] * k[j * h + off + c]).sum::<f32>() / (d as f32).sqrt())
                    .collect();
                let max = s.iter().cloned().fold(f32::MIN, f32::max);
                let e: Vec<f32> = s.iter().map(|x| (x - max).exp()).collect();
                let z: f32 = e.iter().sum();
                for c in 0..d {
                    ctx[i * h + off + c] = (0..t).map(|j| e[j] / z * v[j * h + off + c]).sum();
                }
            }
        }
        ctx
    }

    #[test]
    fn attention_matches_the_plain_formula() {
        // Token counts below, at and around the 4 x 8 tiles.
        for t in [1, 3, 4, 8, 9, 13, 33] {
            let (h, heads) = (24, 3);
            let gen = |salt: usize| -> Vec<f32> {
                (0..t * h).map(|i| (((i * 7919 + salt) % 211) as f32 - 105.0) * 0.02).collect()
            };
            let (q, k, v) = (gen(1), gen(2), gen(3));
            let got = attend(&q, &k, &v, t, h, heads);
            let want = naive(&q, &k, &v, t, h, heads);
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "t {t}, [{i}]: {a} vs {b}");
            }
        }
    }

    #[test]
    fn tile_product_adds_in_order_at_every_edge() {
        // The same sums computed tile by tile and element by element are the same bits.
        let (m, n, depth) = (11, 19, 7);
        let a: Vec<f32> = (0..m * depth).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013).collect();
        let b: Vec<f32> = (0..depth * n).map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.017).collect();
        let mut c = vec![0f32; m * n];
        tile_product(&a, depth, &b, n, (m, n, depth), &mut c, n);
        for i in 0..m {
            for j in 0..n {
                let want = (0..depth).fold(0f32, |s, p| s + a[i * depth + p] * b[p * n + j]);
                assert_eq!(c[i * n + j].to_bits(), want.to_bits(), "[{i}, {j}]");
            }
        }
    }
}
