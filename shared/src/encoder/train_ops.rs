//! Fused training kernels for the encoder on the CPU (f32), each a candle custom op with a
//! hand-written backward pass.
//!
//! Why: candle's own fused LayerNorm and softmax have no backward pass, so the training graph was
//! built from generic ops (mean, subtract, square, divide, ...), each a pass over memory and a
//! tensor the autograd graph keeps alive until the backward pass. Here each function is one pass
//! forward and one backward, and saves only its inputs: the backward recomputes row statistics
//! (two passes over a row that is in cache) instead of storing them.
//!
//! Reductions across rows (the gradients of LayerNorm's and the linear layers' weight and bias)
//! sum fixed blocks of rows in a fixed order, so results do not depend on the thread count or on
//! scheduling: a resumed fine-tuning run reproduces an uninterrupted one bit for bit.
//!
//! [`super::bert`] uses these for [`super::Mode::Training`] on CPU f32 tensors, and candle's
//! generic ops ([`super::Mode::Composed`]) elsewhere (GPU, f64): those are the reference the
//! tests compare these kernels against.

use super::bert::{erf_f32, exp_f32, softmax_row};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// `LayerNorm(a + r + shift)` over the last dimension, times `gamma` plus `beta`: a residual
/// block's output. `params` is `[3, h]`: gamma, beta and `shift` (the bias of the linear layer
/// that produced `a`, folded in here to save a pass and a saved tensor).
pub fn add_layer_norm(a: &Tensor, r: &Tensor, params: &Tensor, eps: f64) -> Result<Tensor> {
    a.contiguous()?.apply_op3(&r.contiguous()?, &params.contiguous()?, AddLayerNorm { eps: eps as f32 })
}

/// `softmax(scores · scale + bias)` over the last dimension; `scores` `[b, heads, t, s]`, `bias`
/// `[b, 1, 1, s]` (the attention mask: 0 or a large negative number). No gradient for `bias`.
pub fn masked_softmax(scores: &Tensor, scale: f64, bias: &Tensor) -> Result<Tensor> {
    scores.contiguous()?.apply_op2(&bias.contiguous()?, MaskedSoftmax { scale: scale as f32 })
}

/// `gelu(x + bias)` (exact-erf GELU) with `bias` broadcast over the last dimension of `x`.
pub fn bias_gelu(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&bias.contiguous()?, BiasGelu)
}

/// Rows per block in cross-row reductions (a block's partial sums are added in block order).
const BLOCK_ROWS: usize = 64;

fn slice<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{what}: the fused training kernels need contiguous tensors");
    };
    Ok(&storage.as_slice::<f32>()?[start..end])
}

fn last_dim(layout: &Layout) -> usize {
    layout.dims().last().copied().unwrap_or(1).max(1)
}

/// Runs `f(block_index, rows)` over blocks of `BLOCK_ROWS` rows of `out` (rows of `row` values),
/// in parallel natively, and returns the results in block order.
fn map_blocks<R: Send>(out: &mut [f32], row: usize, f: impl Fn(usize, &mut [f32]) -> R + Sync + Send) -> Vec<R> {
    let len = (BLOCK_ROWS * row).max(1);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(len).enumerate().map(|(i, c)| f(i, c)).collect()
    }
    #[cfg(target_arch = "wasm32")]
    out.chunks_mut(len).enumerate().map(|(i, c)| f(i, c)).collect()
}

/// Like [`map_blocks`] over a matrix that is only read.
fn map_row_blocks<R: Send>(m: &[f32], row: usize, f: impl Fn(&[f32]) -> R + Sync + Send) -> Vec<R> {
    let len = (BLOCK_ROWS * row).max(1);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        m.par_chunks(len).map(f).collect()
    }
    #[cfg(target_arch = "wasm32")]
    m.chunks(len).map(f).collect()
}

/// Adds `parts` element-wise in order.
fn sum_in_order(parts: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    parts.into_iter().fold(vec![0.0; len], |mut acc, p| {
        acc.iter_mut().zip(&p).for_each(|(a, v)| *a += v);
        acc
    })
}

/// Mean and 1/standard deviation of a row.
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

struct AddLayerNorm {
    eps: f32,
}

impl CustomOp3 for AddLayerNorm {
    fn name(&self) -> &'static str {
        "add-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, r, p) = (slice(s1, l1, "a")?, slice(s2, l2, "residual")?, slice(s3, l3, "params")?);
        let h = last_dim(l1);
        if r.len() != a.len() || p.len() != 3 * h {
            candle_core::bail!("add-layer-norm: shapes {:?}, {:?}, {:?}", l1.dims(), l2.dims(), l3.dims());
        }
        let (gamma, beta, shift) = (&p[..h], &p[h..2 * h], &p[2 * h..]);
        let mut out = vec![0f32; a.len()];
        map_blocks(&mut out, h, |block, rows| {
            let first = block * BLOCK_ROWS * h;
            for (i, y) in rows.chunks_mut(h).enumerate() {
                let at = first + i * h;
                y.iter_mut()
                    .zip(&a[at..at + h])
                    .zip(&r[at..at + h])
                    .zip(shift)
                    .for_each(|(((y, a), r), s)| *y = a + r + s);
                let (mean, rstd) = moments(y, self.eps);
                y.iter_mut().zip(gamma).zip(beta).for_each(|((y, g), b)| *y = (*y - mean) * rstd * g + b);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        a: &Tensor,
        r: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = params.dim(1)?;
        let backward = AddLayerNormBackward { eps: self.eps, params: params.flatten_all()?.to_vec1()? };
        // One tensor: dx for every row, then d gamma, d beta, d shift.
        let packed = a.apply_op3_no_bwd(r, &grad.contiguous()?, &backward)?;
        let n = a.elem_count();
        let dx = packed.narrow(0, 0, n)?.reshape(a.shape())?;
        let dparams = packed.narrow(0, n, 3 * h)?.reshape((3, h))?;
        Ok((Some(dx.clone()), Some(dx), Some(dparams)))
    }
}

struct AddLayerNormBackward {
    eps: f32,
    params: Vec<f32>,
}

impl CustomOp3 for AddLayerNormBackward {
    fn name(&self) -> &'static str {
        "add-layer-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, r, dy) = (slice(s1, l1, "a")?, slice(s2, l2, "residual")?, slice(s3, l3, "grad")?);
        let h = last_dim(l1);
        let (gamma, shift) = (&self.params[..h], &self.params[2 * h..]);
        let n = a.len();
        let mut out = vec![0f32; n + 3 * h];
        // Per block: d gamma and d beta partial sums.
        let parts = map_blocks(&mut out[..n], h, |block, rows| {
            let mut part = vec![0f32; 2 * h];
            let mut xhat = vec![0f32; h];
            let first = block * BLOCK_ROWS * h;
            for (i, dx) in rows.chunks_mut(h).enumerate() {
                let at = first + i * h;
                xhat.iter_mut()
                    .zip(&a[at..at + h])
                    .zip(&r[at..at + h])
                    .zip(shift)
                    .for_each(|(((x, a), r), s)| *x = a + r + s);
                let (mean, rstd) = moments(&xhat, self.eps);
                xhat.iter_mut().for_each(|x| *x = (*x - mean) * rstd);
                let dy = &dy[at..at + h];
                // dx = rstd · (g - mean(g) - x̂ · mean(g · x̂)), g = dy · gamma.
                let (mut mg, mut mgx) = (0f32, 0f32);
                for ((d, g), x) in dy.iter().zip(gamma).zip(&xhat) {
                    mg += d * g;
                    mgx += d * g * x;
                }
                let (mg, mgx) = (mg / h as f32, mgx / h as f32);
                for (((dx, d), g), x) in dx.iter_mut().zip(dy).zip(gamma).zip(&xhat) {
                    *dx = rstd * (d * g - mg - x * mgx);
                }
                let (dgamma, dbeta) = part.split_at_mut(h);
                for (((dg, db), d), x) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(dy).zip(&xhat) {
                    *dg += d * x;
                    *db += d;
                }
            }
            part
        });
        let dgb = sum_in_order(parts, 2 * h);
        out[n..n + 2 * h].copy_from_slice(&dgb);
        // d shift = Σ dx over rows.
        let dshift = column_sums(&out[..n], h);
        out[n + 2 * h..].copy_from_slice(&dshift);
        Ok((CpuStorage::F32(out), Shape::from(n + 3 * h)))
    }
}

/// Sums of each column of a row-major `[rows, width]` matrix, by blocks in order.
fn column_sums(m: &[f32], width: usize) -> Vec<f32> {
    let parts = map_row_blocks(m, width, |rows| {
        let mut part = vec![0f32; width];
        for row in rows.chunks(width) {
            part.iter_mut().zip(row).for_each(|(p, v)| *p += v);
        }
        part
    });
    sum_in_order(parts, width)
}

struct MaskedSoftmax {
    scale: f32,
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (scores, bias) = (slice(s1, l1, "scores")?, slice(s2, l2, "bias")?);
        let &[b, heads, t, s] = l1.dims() else { candle_core::bail!("masked-softmax: scores {:?}", l1.dims()) };
        if bias.len() != b * s {
            candle_core::bail!("masked-softmax: bias {:?} for scores {:?}", l2.dims(), l1.dims());
        }
        let mut out = scores.to_vec();
        let per_batch = heads * t;
        map_blocks(&mut out, s, |block, rows| {
            for (i, row) in rows.chunks_mut(s).enumerate() {
                let batch = (block * BLOCK_ROWS + i) / per_batch;
                let mask = &bias[batch * s..][..s];
                row.iter_mut().zip(mask).for_each(|(x, m)| *x = *x * self.scale + m);
                softmax_row(row);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, probs: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d = probs.apply_op2_no_bwd(&grad.contiguous()?, &MaskedSoftmaxBackward { scale: self.scale })?;
        Ok((Some(d), None))
    }
}

struct MaskedSoftmaxBackward {
    scale: f32,
}

impl CustomOp2 for MaskedSoftmaxBackward {
    fn name(&self) -> &'static str {
        "masked-softmax-backward"
    }

    /// d scores = scale · p · (g - Σ g·p), row by row.
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (p, g) = (slice(s1, l1, "probs")?, slice(s2, l2, "grad")?);
        let s = last_dim(l1);
        let mut out = vec![0f32; p.len()];
        map_blocks(&mut out, s, |block, rows| {
            let first = block * BLOCK_ROWS * s;
            for (i, d) in rows.chunks_mut(s).enumerate() {
                let at = first + i * s;
                let (p, g) = (&p[at..at + s], &g[at..at + s]);
                let dot: f32 = p.iter().zip(g).map(|(p, g)| p * g).sum();
                d.iter_mut().zip(p).zip(g).for_each(|((d, p), g)| *d = self.scale * p * (g - dot));
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

struct BiasGelu;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, bias) = (slice(s1, l1, "x")?, slice(s2, l2, "bias")?);
        let n = last_dim(l1);
        if bias.len() != n {
            candle_core::bail!("bias-gelu: bias {:?} for x {:?}", l2.dims(), l1.dims());
        }
        let mut out = x.to_vec();
        map_blocks(&mut out, n, |_, rows| {
            for row in rows.chunks_mut(n) {
                row.iter_mut().zip(bias).for_each(|(v, b)| *v = super::bert::gelu_f32(*v + b));
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, bias: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = bias.elem_count();
        let packed = x.apply_op3_no_bwd(bias, &grad.contiguous()?, &BiasGeluBackward)?;
        let len = x.elem_count();
        let dx = packed.narrow(0, 0, len)?.reshape(x.shape())?;
        let dbias = packed.narrow(0, len, n)?.reshape(bias.shape())?;
        Ok((Some(dx), Some(dbias)))
    }
}

struct BiasGeluBackward;

impl CustomOp3 for BiasGeluBackward {
    fn name(&self) -> &'static str {
        "bias-gelu-backward"
    }

    /// dx = g · gelu'(x + bias), gelu'(u) = Φ(u) + u·φ(u); then d bias = Σ dx over rows.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, bias, g) = (slice(s1, l1, "x")?, slice(s2, l2, "bias")?, slice(s3, l3, "grad")?);
        let n = last_dim(l1);
        let len = x.len();
        let mut out = vec![0f32; len + n];
        map_blocks(&mut out[..len], n, |block, rows| {
            let first = block * BLOCK_ROWS * n;
            for (i, d) in rows.chunks_mut(n).enumerate() {
                let at = first + i * n;
                for (((d, x), b), g) in d.iter_mut().zip(&x[at..at + n]).zip(bias).zip(&g[at..at + n]) {
                    *d = g * gelu_grad(x + b);
                }
            }
        });
        let dbias = column_sums(&out[..len], n);
        out[len..].copy_from_slice(&dbias);
        Ok((CpuStorage::F32(out), Shape::from(len + n)))
    }
}

fn gelu_grad(u: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf_f32(u * std::f32::consts::FRAC_1_SQRT_2));
    cdf + u * INV_SQRT_2PI * exp_f32(-0.5 * u * u)
}
