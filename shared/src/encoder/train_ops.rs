//! Fused training kernels for the encoder on the CPU (f32), each a candle custom op with a
//! hand-written backward pass.
//!
//! Why: candle's own fused LayerNorm and softmax have no backward pass, so the training graph was
//! built from generic ops (mean, subtract, square, divide, ...), each a pass over memory and a
//! tensor the autograd graph keeps alive until the backward pass. Here each function is one pass
//! forward and one backward, and saves only its inputs. LayerNorm's backward pass recomputes its
//! row statistics (two one-lane passes over each row) unless the caller kept the forward pass's:
//! [`add_layer_norm_keeping_moments`], two floats a row, which the fine-tuning tape does.
//!
//! Reductions across rows (the gradients of LayerNorm's and the linear layers' weight and bias)
//! sum fixed blocks of rows in a fixed order, so results do not depend on the thread count or on
//! scheduling: a resumed fine-tuning run reproduces an uninterrupted one bit for bit.
//!
//! [`super::bert`] uses these for [`super::Mode::Training`] on CPU f32 tensors, and candle's
//! generic ops ([`super::Mode::Composed`]) elsewhere (GPU, f64): those are the reference the
//! tests compare these kernels against.

use super::bert::{erf_f32, exp_f32, gelu_f32, masked_softmax_row};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, InplaceOp2, Layout, Result, Shape, Tensor};

/// Defines a row kernel, `fn name(args) -> ret`, with copies of its body compiled for AVX-512 and
/// for AVX2 and run where the CPU has them: the element-wise loops then run 16 or 8 floats wide
/// instead of the SSE2 baseline's 4 (the build targets every x86-64). Rust never contracts
/// `a * b + c` into a fused multiply-add (whatever the CPU has) nor reorders float operations,
/// so every copy does the same operations in the same order: the same bits. Loops inside use
/// `for`, not `for_each` with a large closure: a closure the inliner leaves alone is compiled
/// for the baseline. `narrow fn` stops at AVX2: attention's rows are one value per token (32 in
/// fine-tuning), and its softmax ran 25% slower 16 wide than 8 wide.
macro_rules! row_kernel {
    (@wide $wide:literal; $(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            fn avx512($($arg: $ty),*) $(-> $ret)? {
                portable($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            #[allow(clippy::too_many_arguments)]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                portable($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $wide && std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512.
                return unsafe { avx512($($arg),*) };
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                return unsafe { avx2($($arg),*) };
            }
            portable($($arg),*)
        }
    };
    ($(#[$meta:meta])* narrow fn $($rest:tt)*) => {
        row_kernel! { @wide false; $(#[$meta])* fn $($rest)* }
    };
    ($(#[$meta:meta])* fn $($rest:tt)*) => {
        row_kernel! { @wide true; $(#[$meta])* fn $($rest)* }
    };
}

/// `LayerNorm(a + r + shift)` over the last dimension, times `gamma` plus `beta`: a residual
/// block's output. `params` is `[3, h]`: gamma, beta and `shift` (the bias of the linear layer
/// that produced `a`, folded in here to save a pass and a saved tensor).
pub fn add_layer_norm(a: &Tensor, r: &Tensor, params: &Tensor, eps: f64) -> Result<Tensor> {
    let op = AddLayerNorm { eps: eps as f32, keep_moments: false };
    a.contiguous()?.apply_op3(&r.contiguous()?, &params.contiguous()?, op)
}

/// Each row's mean and 1/standard deviation as a LayerNorm's forward pass computed them
/// (`[rows, 2]`, row-major), for its backward pass ([`add_layer_norm_backward`]) to read instead
/// of summing every row twice again: the same values, so the same bits.
#[derive(Clone, Debug)]
pub struct RowMoments(Vec<f32>);

/// [`add_layer_norm`] with no gradient (detached inputs, as on the fine-tuning tape), also
/// returning its row moments for the backward pass.
pub fn add_layer_norm_keeping_moments(
    a: &Tensor,
    r: &Tensor,
    params: &Tensor,
    eps: f64,
) -> Result<(Tensor, RowMoments)> {
    let op = AddLayerNorm { eps: eps as f32, keep_moments: true };
    // One tensor: the output, then two floats a row.
    let packed = a.contiguous()?.apply_op3_no_bwd(&r.contiguous()?, &params.contiguous()?, &op)?;
    let n = a.elem_count();
    let y = packed.narrow(0, 0, n)?.reshape(a.shape())?;
    let moments = packed.narrow(0, n, packed.elem_count() - n)?.to_vec1()?;
    Ok((y, RowMoments(moments)))
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

/// [`bias_gelu`] in place on `x`, for inference (no gradient): a linear layer's fresh output is
/// rewritten where it lies instead of copied (at 128 tokens this pass is bound by memory).
pub fn bias_gelu_in_place(x: &Tensor, bias: &Tensor) -> Result<()> {
    if !x.is_contiguous() {
        candle_core::bail!("bias-gelu in place: x must be contiguous");
    }
    x.inplace_op2(&bias.contiguous()?, &BiasGelu)
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

/// Like [`map_blocks`] over a matrix that is only read (only the x86 linear layer's backward
/// pass reads one whole).
#[cfg(target_arch = "x86_64")]
fn map_row_blocks<R: Send>(m: &[f32], row: usize, f: impl Fn(&[f32]) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    m.par_chunks((BLOCK_ROWS * row).max(1)).map(f).collect()
}

/// A new vector of `len` values (room for `capacity`) filled by `f(block_index, rows)` block by
/// block as [`map_blocks`] fills one, each block zeroed first by the task that then fills it:
/// in parallel and while the block sits in that core's cache, where `vec![0.0; len]` is one
/// thread's pass over memory the size of the output (about 1 ms for GELU's 2,048 × 1,536).
fn new_blocks<R: Send>(
    len: usize,
    capacity: usize,
    row: usize,
    f: impl Fn(usize, &mut [f32]) -> R + Sync + Send,
) -> (Vec<f32>, Vec<R>) {
    use std::mem::MaybeUninit;
    let mut out = Vec::<f32>::with_capacity(capacity.max(len));
    let block = (BLOCK_ROWS * row).max(1);
    let fill = |(i, c): (usize, &mut [MaybeUninit<f32>])| {
        c.fill(MaybeUninit::new(0.0));
        // SAFETY: every element of `c` was initialised just above, and MaybeUninit<f32> has
        // f32's layout.
        let c = unsafe { &mut *(c as *mut [MaybeUninit<f32>] as *mut [f32]) };
        f(i, c)
    };
    let spare = &mut out.spare_capacity_mut()[..len];
    #[cfg(not(target_arch = "wasm32"))]
    let results = {
        use rayon::prelude::*;
        spare.par_chunks_mut(block).enumerate().map(fill).collect()
    };
    #[cfg(target_arch = "wasm32")]
    let results = spare.chunks_mut(block).enumerate().map(fill).collect();
    // SAFETY: the blocks cover the first `len` elements, each initialised above (a panicking
    // task unwinds past this line).
    unsafe { out.set_len(len) };
    (out, results)
}

/// Adds `parts` element-wise in order.
fn sum_in_order(parts: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    parts.into_iter().fold(vec![0.0; len], |mut acc, p| {
        acc.iter_mut().zip(&p).for_each(|(a, v)| *a += v);
        acc
    })
}

/// Rows the LayerNorm kernels normalise together. Each row is still summed left to right (the
/// same bits as one row at a time), but the rows' sums run as independent chains the core
/// overlaps: one chain waits a float add's latency (4 cycles) per value, eight keep the adders
/// busy (LayerNorm over 2,048 × 384 on 2 cores: 0.9 → 0.75 ms forward, 1.47 → 1.3 ms backward).
const GROUP: usize = 8;

/// `Σ f(g, v)` over each of the `G` rows of `h` values laid one after another in `x`, each row
/// left to right from -0.0 (as `Iterator::sum`), the rows' chains interleaved.
#[inline(always)]
fn row_sums<const G: usize>(x: &[f32], h: usize, f: impl Fn(usize, f32) -> f32) -> [f32; G] {
    let rows: [&[f32]; G] = std::array::from_fn(|g| &x[g * h..(g + 1) * h]);
    let mut acc = [-0.0f32; G];
    for j in 0..h {
        for (g, (a, row)) in acc.iter_mut().zip(&rows).enumerate() {
            *a += f(g, row[j]);
        }
    }
    acc
}

/// Mean and 1/standard deviation of each of the `G` rows of `h` values in `x`.
#[inline(always)]
fn moments<const G: usize>(x: &[f32], h: usize, eps: f32) -> [(f32, f32); G] {
    let n = h as f32;
    let mean = row_sums::<G>(x, h, |_, v| v).map(|s| s / n);
    let var = row_sums::<G>(x, h, |g, v| (v - mean[g]) * (v - mean[g])).map(|s| s / n);
    std::array::from_fn(|g| (mean[g], 1.0 / (var[g] + eps).sqrt()))
}

/// `G` rows of [`add_layer_norm`]: `y = LayerNorm(a + r + shift) · gamma + beta`; each row's
/// mean and 1/standard deviation written to `kept` (`2 · G`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn add_norm_group<const G: usize>(
    y: &mut [f32],
    kept: &mut [f32],
    a: &[f32],
    r: &[f32],
    shift: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let h = shift.len();
    for ((y, a), r) in y.chunks_mut(h).zip(a.chunks(h)).zip(r.chunks(h)) {
        y.iter_mut().zip(a).zip(r).zip(shift).for_each(|(((y, a), r), s)| *y = a + r + s);
    }
    let stats = moments::<G>(y, h, eps);
    for ((y, (mean, rstd)), kept) in y.chunks_mut(h).zip(stats).zip(kept.chunks_mut(2)) {
        y.iter_mut().zip(gamma).zip(beta).for_each(|((y, g), b)| *y = (*y - mean) * rstd * g + b);
        kept.copy_from_slice(&[mean, rstd]);
    }
}

row_kernel! {
    /// Rows of [`add_layer_norm`] (`y`, `a`, `r`: whole rows of `shift.len()` values), in groups;
    /// `kept`: two floats a row, the row moments.
    fn add_norm_rows(
        y: &mut [f32],
        kept: &mut [f32],
        a: &[f32],
        r: &[f32],
        shift: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    ) {
        let len = GROUP * shift.len();
        let groups = y.chunks_mut(len).zip(kept.chunks_mut(2 * GROUP)).zip(a.chunks(len)).zip(r.chunks(len));
        for (((y, kept), a), r) in groups {
            if y.len() == len {
                add_norm_group::<GROUP>(y, kept, a, r, shift, gamma, beta, eps);
            } else {
                let h = shift.len();
                let rows = y.chunks_mut(h).zip(kept.chunks_mut(2)).zip(a.chunks(h)).zip(r.chunks(h));
                for (((y, kept), a), r) in rows {
                    add_norm_group::<1>(y, kept, a, r, shift, gamma, beta, eps);
                }
            }
        }
    }
}

/// `G` rows of LayerNorm's backward pass: `dx` from `dy`, and the rows' d gamma, d beta added to
/// `part` (`[2, h]`) in row order; `xhat` is scratch (`G · h`); `kept`: the rows' moments from
/// the forward pass (`2 · G`), else empty and recomputed.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn add_norm_grad_group<const G: usize>(
    dx: &mut [f32],
    xhat: &mut [f32],
    part: &mut [f32],
    a: &[f32],
    r: &[f32],
    dy: &[f32],
    kept: &[f32],
    shift: &[f32],
    gamma: &[f32],
    eps: f32,
) {
    let h = shift.len();
    let xhat = &mut xhat[..G * h];
    for ((x, a), r) in xhat.chunks_mut(h).zip(a.chunks(h)).zip(r.chunks(h)) {
        x.iter_mut().zip(a).zip(r).zip(shift).for_each(|(((x, a), r), s)| *x = a + r + s);
    }
    let stats = if kept.is_empty() {
        moments::<G>(xhat, h, eps)
    } else {
        std::array::from_fn(|g| (kept[2 * g], kept[2 * g + 1]))
    };
    for (x, (mean, rstd)) in xhat.chunks_mut(h).zip(stats) {
        x.iter_mut().for_each(|x| *x = (*x - mean) * rstd);
    }
    // dx = rstd · (g - mean(g) - x̂ · mean(g · x̂)), g = dy · gamma.
    let dys: [&[f32]; G] = std::array::from_fn(|g| &dy[g * h..(g + 1) * h]);
    let (mut mg, mut mgx) = ([0f32; G], [0f32; G]);
    let xs: [&[f32]; G] = std::array::from_fn(|g| &xhat[g * h..(g + 1) * h]);
    for (j, gm) in gamma.iter().enumerate() {
        for g in 0..G {
            let (d, x) = (dys[g][j], xs[g][j]);
            mg[g] += d * gm;
            mgx[g] += d * gm * x;
        }
    }
    let n = h as f32;
    for (g, ((dx, dy), x)) in dx.chunks_mut(h).zip(dy.chunks(h)).zip(xhat.chunks(h)).enumerate() {
        let (rstd, mg, mgx) = (stats[g].1, mg[g] / n, mgx[g] / n);
        for (((dx, d), gm), x) in dx.iter_mut().zip(dy).zip(gamma).zip(x) {
            *dx = rstd * (d * gm - mg - x * mgx);
        }
        let (dgamma, dbeta) = part.split_at_mut(h);
        for (((dg, db), d), x) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(dy).zip(x) {
            *dg += d * x;
            *db += d;
        }
    }
}

row_kernel! {
    /// Rows of LayerNorm's backward pass (whole rows of `shift.len()` values), in groups; d gamma
    /// and d beta added to `part` in row order. `xhat`: scratch of `GROUP` rows; `kept`: the
    /// rows' moments (two floats a row), or empty.
    fn add_norm_grad_rows(
        dx: &mut [f32],
        xhat: &mut [f32],
        part: &mut [f32],
        a: &[f32],
        r: &[f32],
        dy: &[f32],
        kept: &[f32],
        shift: &[f32],
        gamma: &[f32],
        eps: f32,
    ) {
        let (h, len) = (shift.len(), GROUP * shift.len());
        // Each group's (and row's) moments, or an empty slice for each.
        let kept_for = |i: usize, rows: usize| if kept.is_empty() { kept } else { &kept[2 * i..2 * (i + rows)] };
        let groups = dx.chunks_mut(len).zip(a.chunks(len)).zip(r.chunks(len)).zip(dy.chunks(len));
        for (gi, (((dx, a), r), dy)) in groups.enumerate() {
            if dx.len() == len {
                add_norm_grad_group::<GROUP>(dx, xhat, part, a, r, dy, kept_for(gi * GROUP, GROUP), shift, gamma, eps);
            } else {
                let rows = dx.chunks_mut(h).zip(a.chunks(h)).zip(r.chunks(h)).zip(dy.chunks(h));
                for (ri, (((dx, a), r), dy)) in rows.enumerate() {
                    let k = kept_for(gi * GROUP + ri, 1);
                    add_norm_grad_group::<1>(dx, xhat, part, a, r, dy, k, shift, gamma, eps);
                }
            }
        }
    }
}

struct AddLayerNorm {
    eps: f32,
    /// Output the row moments after `y` (a tensor of `n + 2 · rows` values).
    keep_moments: bool,
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
        let (n, kept) = (a.len(), if self.keep_moments { 2 * a.len() / h } else { 0 });
        let (mut out, moments) = new_blocks(n, n + kept, h, |block, rows| {
            let at = block * BLOCK_ROWS * h;
            let len = rows.len();
            let mut moments = vec![0f32; 2 * len / h];
            add_norm_rows(rows, &mut moments, &a[at..at + len], &r[at..at + len], shift, gamma, beta, self.eps);
            moments
        });
        if !self.keep_moments {
            return Ok((CpuStorage::F32(out), l1.shape().clone()));
        }
        moments.iter().for_each(|m| out.extend_from_slice(m));
        Ok((CpuStorage::F32(out), Shape::from(n + kept)))
    }

    fn bwd(
        &self,
        a: &Tensor,
        r: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dparams) = add_layer_norm_backward(a, r, params, self.eps as f64, grad, None)?;
        // An untracked residual (the first trained block's input, from frozen layers) needs none.
        let dr = r.track_op().then(|| dx.clone());
        Ok((Some(dx), dr, Some(dparams)))
    }
}

/// The backward pass of [`add_layer_norm`] for the output's gradient `grad`: `(dx, dparams)`,
/// `dx` the gradient of `a` and of `r` alike, `dparams` `[3, h]` (d gamma, d beta, d shift).
/// `moments`: the forward pass's ([`add_layer_norm_keeping_moments`]), else recomputed.
pub fn add_layer_norm_backward(
    a: &Tensor,
    r: &Tensor,
    params: &Tensor,
    eps: f64,
    grad: &Tensor,
    moments: Option<&RowMoments>,
) -> Result<(Tensor, Tensor)> {
    let h = params.dim(1)?;
    let moments = moments.map(|m| m.0.clone()).unwrap_or_default();
    if !moments.is_empty() && moments.len() != 2 * a.elem_count() / h {
        candle_core::bail!("add-layer-norm-backward: {} moments for {:?}", moments.len(), a.dims());
    }
    let backward = AddLayerNormBackward { eps: eps as f32, params: params.flatten_all()?.to_vec1()?, moments };
    // One tensor: dx for every row, then d gamma, d beta, d shift.
    let packed = a.apply_op3_no_bwd(r, &grad.contiguous()?, &backward)?;
    let n = a.elem_count();
    let dx = packed.narrow(0, 0, n)?.reshape(a.shape())?;
    let dparams = packed.narrow(0, n, 3 * h)?.reshape((3, h))?;
    Ok((dx, dparams))
}

struct AddLayerNormBackward {
    eps: f32,
    params: Vec<f32>,
    /// Two floats a row, or empty.
    moments: Vec<f32>,
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
        // Per block: d gamma and d beta partial sums.
        let (mut out, parts): (_, Vec<(Vec<f32>, Vec<f32>)>) = new_blocks(n, n + 3 * h, h, |block, rows| {
            let mut part = vec![0f32; 2 * h];
            let mut xhat = vec![0f32; GROUP * h];
            let (at, len) = (block * BLOCK_ROWS * h, rows.len());
            let (a, r, dy) = (&a[at..at + len], &r[at..at + len], &dy[at..at + len]);
            let kept = if self.moments.is_empty() { &[][..] } else { &self.moments[2 * at / h..2 * (at + len) / h] };
            add_norm_grad_rows(rows, &mut xhat, &mut part, a, r, dy, kept, shift, gamma, self.eps);
            // d shift = Σ dx over rows.
            (part, block_column_sums(rows, h))
        });
        let (params, shift): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        out.extend(sum_in_order(params, 2 * h));
        out.extend(sum_in_order(shift, h));
        Ok((CpuStorage::F32(out), Shape::from(n + 3 * h)))
    }
}

/// Sums of each column of a row-major `[rows, width]` matrix, by blocks in order.
#[cfg(target_arch = "x86_64")]
fn column_sums(m: &[f32], width: usize) -> Vec<f32> {
    let parts = map_row_blocks(m, width, |rows| block_column_sums(rows, width));
    sum_in_order(parts, width)
}

/// One block's part of [`column_sums`]: its rows added in order from +0. A kernel that fills a
/// new output block by block ([`new_blocks`]) takes its block's part while the block is still in
/// cache, then [`sum_in_order`] gives [`column_sums`]'s bits without a second pass over the
/// output (GELU's backward output is 12.6 MB at fine-tuning's shapes).
fn block_column_sums(rows: &[f32], width: usize) -> Vec<f32> {
    let mut part = vec![0f32; width];
    for row in rows.chunks(width) {
        part.iter_mut().zip(row).for_each(|(p, v)| *p += v);
    }
    part
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
                softmax_rows(row, &bias[batch * s..][..s], self.scale);
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
        let mut out = g.to_vec();
        map_blocks(&mut out, s, |block, rows| {
            let first = block * BLOCK_ROWS * s;
            softmax_backward_rows(rows, &p[first..first + rows.len()], s, self.scale);
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

row_kernel! {
    /// `softmax(row · scale + mask)` in place, for each `mask.len()`-long row of `rows`.
    narrow fn softmax_rows(rows: &mut [f32], mask: &[f32], scale: f32) {
        // A loop, not `for_each`: the closure would be compiled apart, without AVX2.
        for row in rows.chunks_mut(mask.len()) {
            masked_softmax_row(row, mask, scale);
        }
    }
}

row_kernel! {
    /// The gradient of each row of `softmax(scores · scale + mask)` in place: a row of `g` (the
    /// gradient of the weights `p`) becomes `scale · p · (g - Σ g·p)`.
    narrow fn softmax_backward_rows(g: &mut [f32], p: &[f32], width: usize, scale: f32) {
        for (g, p) in g.chunks_mut(width).zip(p.chunks(width)) {
            let dot: f32 = g.iter().zip(p).map(|(g, p)| g * p).sum();
            g.iter_mut().zip(p).for_each(|(g, p)| *g = scale * p * (*g - dot));
        }
    }
}

struct BiasGelu;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, bias) = (slice(s1, l1, "x")?, slice(s2, l2, "bias")?);
        check_bias(l1, l2)?;
        let n = bias.len();
        // Each block copied and rewritten while in cache: one pass over memory, not a copy and then one.
        let (out, _) = new_blocks(x.len(), x.len(), n, |block, rows| {
            let at = block * BLOCK_ROWS * n;
            rows.copy_from_slice(&x[at..at + rows.len()]);
            bias_gelu_rows(rows, bias);
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, bias: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dbias) = bias_gelu_backward(x, bias, grad)?;
        Ok((Some(dx), Some(dbias)))
    }
}

/// The backward pass of [`bias_gelu`] for the output's gradient `grad`: `(dx, d bias)`.
pub fn bias_gelu_backward(x: &Tensor, bias: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
    let n = bias.elem_count();
    let packed = x.apply_op3_no_bwd(bias, &grad.contiguous()?, &BiasGeluBackward)?;
    let len = x.elem_count();
    let dx = packed.narrow(0, 0, len)?.reshape(x.shape())?;
    let dbias = packed.narrow(0, len, n)?.reshape(bias.shape())?;
    Ok((dx, dbias))
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
        let (mut out, parts) = new_blocks(len, len + n, n, |block, rows| {
            let at = block * BLOCK_ROWS * n;
            bias_gelu_grad_rows(rows, &x[at..at + rows.len()], bias, &g[at..at + rows.len()]);
            block_column_sums(rows, n)
        });
        out.extend(sum_in_order(parts, n));
        Ok((CpuStorage::F32(out), Shape::from(len + n)))
    }
}

row_kernel! {
    /// `gelu(x + bias)` in place for each `bias.len()`-long row of `rows`.
    fn bias_gelu_rows(rows: &mut [f32], bias: &[f32]) {
        for row in rows.chunks_mut(bias.len()) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v = gelu_f32(*v + b));
        }
    }
}

impl InplaceOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu-in-place"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let (Some((start, end)), CpuStorage::F32(x)) = (l1.contiguous_offsets(), s1) else {
            candle_core::bail!("bias-gelu in place: x must be contiguous f32");
        };
        bias_gelu_over(&mut x[start..end], l1, slice(s2, l2, "bias")?, l2)
    }
}

/// `gelu(x + bias)` in place over `x` (laid out as `l1`), `bias` (`l2`) along its last dimension.
fn bias_gelu_over(x: &mut [f32], l1: &Layout, bias: &[f32], l2: &Layout) -> Result<()> {
    check_bias(l1, l2)?;
    map_blocks(x, bias.len(), |_, rows| bias_gelu_rows(rows, bias));
    Ok(())
}

/// That a bias laid out as `l2` runs along the last dimension of `x` (`l1`).
fn check_bias(l1: &Layout, l2: &Layout) -> Result<()> {
    if l2.shape().elem_count() != last_dim(l1) {
        candle_core::bail!("bias-gelu: bias {:?} for x {:?}", l2.dims(), l1.dims());
    }
    Ok(())
}

row_kernel! {
    /// `d = g · gelu'(x + bias)` for each `bias.len()`-long row.
    fn bias_gelu_grad_rows(d: &mut [f32], x: &[f32], bias: &[f32], g: &[f32]) {
        let n = bias.len();
        for ((d, x), g) in d.chunks_mut(n).zip(x.chunks(n)).zip(g.chunks(n)) {
            for (((d, x), b), g) in d.iter_mut().zip(x).zip(bias).zip(g) {
                *d = g * gelu_grad(x + b);
            }
        }
    }
}

#[inline(always)]
fn gelu_grad(u: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf_f32(u * std::f32::consts::FRAC_1_SQRT_2));
    cdf + u * INV_SQRT_2PI * exp_f32(-0.5 * u * u)
}

/// `x · wᵀ (+ bias)`: a linear layer on `x` `[.., in]` with `w` `[out, in]`. One gemm straight
/// into the output (no zeroed buffer first, the bias added in the same parallel pass), and a
/// backward pass of two gemms (dx = dy · w, dw = dyᵀ · x) and a column sum (d bias), with the
/// weight's gradient in its own `[out, in]` layout (candle's matmul backward yields it transposed,
/// copied again when accumulated).
pub fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    #[cfg(target_arch = "x86_64")]
    {
        let (x, w) = (x.contiguous()?, w.contiguous()?);
        match bias {
            Some(b) => x.apply_op3(&w, &b.contiguous()?, Dense),
            None => x.apply_op2(&w, Dense),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let dims = x.dims();
        let rows = x.elem_count() / dims.last().copied().unwrap_or(1).max(1);
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().unwrap() = w.dim(0)?;
        let y = x.reshape((rows, ()))?.matmul(&w.t()?)?.reshape(out_dims)?;
        match bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

#[cfg(target_arch = "x86_64")]
struct Dense;

/// `C = A · B` into `c` (`m × n`, row stride `c_rs`), with `A`, `B` given by their column and row
/// strides; gemm writes every element of C without reading it.
///
/// # Safety
/// Every pointer must cover the extents its strides describe; `c` must not overlap the inputs.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_strided(
    c: *mut f32,
    c_rs: usize,
    (m, n, k): (usize, usize, usize),
    a: *const f32,
    (a_cs, a_rs): (usize, usize),
    b: *const f32,
    (b_cs, b_rs): (usize, usize),
    parallelism: gemm::Parallelism,
) {
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        c_rs as isize,
        false,
        a,
        a_cs as isize,
        a_rs as isize,
        b,
        b_cs as isize,
        b_rs as isize,
        0.0,
        1.0,
        false,
        false,
        false,
        parallelism,
    )
}

/// [`gemm_strided`] into a dense row-major `c` on every core: C's rows are cut into one band per
/// rayon thread and each band is one single-threaded product. gemm's own threading
/// (`Parallelism::Rayon`) shares packed panels between threads and meets at a barrier per block;
/// at the encoder's shapes (2048 × 384..1536 × 384..2048) on 2 cores the bands run 5–9% faster
/// (packing B once per band costs less than the hand-offs). Bits do not change: an element's sum
/// over k does not depend on how many rows a product has (`row_bands_give_the_same_bits`).
///
/// # Safety
/// As for [`gemm_strided`].
#[cfg(target_arch = "x86_64")]
unsafe fn gemm_into(
    c: *mut f32,
    (m, n, k): (usize, usize, usize),
    a: *const f32,
    (a_cs, a_rs): (usize, usize),
    b: *const f32,
    b_strides: (usize, usize),
) {
    use rayon::prelude::*;
    let bands = rayon::current_num_threads().min(m / MIN_BAND_ROWS).max(1);
    if bands == 1 {
        return gemm_strided(c, n, (m, n, k), a, (a_cs, a_rs), b, b_strides, gemm::Parallelism::None);
    }
    let rows = m.div_ceil(bands);
    let (c, a, b) = (Shared(c), Shared(a as *mut f32), Shared(b as *mut f32));
    (0..bands).into_par_iter().for_each(|band| {
        let first = band * rows;
        let height = rows.min(m - first);
        // SAFETY: the bands' rows of C are disjoint, each within C's m × n; A's rows from
        // `first` are inside A as the caller describes it.
        unsafe {
            let (c, a) = (c.add(first * n), a.add(first * a_rs));
            gemm_strided(c, n, (height, n, k), a, (a_cs, a_rs), b.add(0), b_strides, gemm::Parallelism::None);
        }
    });
}

/// Below this many rows a band's product is too small to be worth a thread of its own.
#[cfg(target_arch = "x86_64")]
const MIN_BAND_ROWS: usize = 64;

#[cfg(target_arch = "x86_64")]
impl Dense {
    fn forward(x: (&[f32], &Layout), w: (&[f32], &Layout), bias: Option<&[f32]>) -> Result<(CpuStorage, Shape)> {
        let (x, x_layout) = x;
        let (w, w_layout) = w;
        let &[out_f, in_f] = w_layout.dims() else { candle_core::bail!("linear: weight {:?}", w_layout.dims()) };
        if last_dim(x_layout) != in_f || bias.is_some_and(|b| b.len() != out_f) {
            candle_core::bail!("linear: x {:?}, weight {:?}", x_layout.dims(), w_layout.dims());
        }
        let rows = x.len() / in_f;
        let mut y: Vec<f32> = Vec::with_capacity(rows * out_f);
        // SAFETY: y has room for rows × out_f values, all written by gemm before set_len; x is
        // rows × in_f row-major, w is out_f × in_f (read as its transpose: column stride in_f).
        unsafe {
            gemm_into(y.as_mut_ptr(), (rows, out_f, in_f), x.as_ptr(), (1, in_f), w.as_ptr(), (in_f, 1));
            y.set_len(rows * out_f);
        }
        if let Some(b) = bias {
            map_blocks(&mut y, out_f, |_, rows| {
                rows.chunks_mut(out_f).for_each(|r| r.iter_mut().zip(b).for_each(|(v, b)| *v += b))
            });
        }
        let mut dims = x_layout.dims().to_vec();
        *dims.last_mut().expect("x has a last dimension") = out_f;
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }
}

#[cfg(target_arch = "x86_64")]
impl CustomOp2 for Dense {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        Dense::forward((slice(s1, l1, "x")?, l1), (slice(s2, l2, "weight")?, l2), None)
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = linear_backward(x, w, grad, false, x.track_op())?;
        Ok((dx, Some(dw)))
    }
}

#[cfg(target_arch = "x86_64")]
impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "linear"
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
        Dense::forward((slice(s1, l1, "x")?, l1), (slice(s2, l2, "weight")?, l2), Some(slice(s3, l3, "bias")?))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = linear_backward(x, w, grad, true, x.track_op())?;
        Ok((dx, Some(dw), db))
    }
}

/// The backward pass of [`linear`] for the output's gradient `grad`: `(dx, dw, d bias)`, `dx`
/// only with `input_grad` (not for an input no gradient flows back to, such as the first trained
/// block's, computed by frozen layers: at two trained blocks its three products are 2.5% of a
/// step's arithmetic), `d bias` only with `bias`.
#[cfg(target_arch = "x86_64")]
pub fn linear_backward(
    x: &Tensor,
    w: &Tensor,
    grad: &Tensor,
    bias: bool,
    input_grad: bool,
) -> Result<(Option<Tensor>, Tensor, Option<Tensor>)> {
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    let (out_f, in_f) = w.dims2()?;
    let packed = x.apply_op3_no_bwd(&w, &grad.contiguous()?, &DenseBackward { bias, input_grad })?;
    let n = if input_grad { x.elem_count() } else { 0 };
    let dx = if input_grad { Some(packed.narrow(0, 0, n)?.reshape(x.shape())?) } else { None };
    let dw = packed.narrow(0, n, out_f * in_f)?.reshape((out_f, in_f))?;
    let db = if bias { Some(packed.narrow(0, n + out_f * in_f, out_f)?) } else { None };
    Ok((dx, dw, db))
}

#[cfg(target_arch = "x86_64")]
struct DenseBackward {
    bias: bool,
    /// Whether to compute dx.
    input_grad: bool,
}

#[cfg(target_arch = "x86_64")]
impl CustomOp3 for DenseBackward {
    fn name(&self) -> &'static str {
        "linear-backward"
    }

    /// One tensor: dx (rows × in, when asked for), dw (out × in), then d bias (out) when there
    /// is a bias.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, dy) = (slice(s1, l1, "x")?, slice(s2, l2, "weight")?, slice(s3, l3, "grad")?);
        let &[out_f, in_f] = l2.dims() else { candle_core::bail!("linear-backward: weight {:?}", l2.dims()) };
        let rows = x.len() / in_f;
        if dy.len() != rows * out_f {
            candle_core::bail!("linear-backward: grad {:?} for x {:?}", l3.dims(), l1.dims());
        }
        let db = if self.bias { column_sums(dy, out_f) } else { Vec::new() };
        let n = if self.input_grad { rows * in_f } else { 0 };
        let total = n + out_f * in_f + db.len();
        let mut out: Vec<f32> = Vec::with_capacity(total);
        let p = out.as_mut_ptr();
        // SAFETY: out has room for `total` values: dx fills the first n (rows × in_f, or none),
        // dw the next out_f × in_f (both written by gemm), d bias the rest; set_len only after.
        unsafe {
            if self.input_grad {
                // dx = dy · w: dy rows × out_f, w out_f × in_f, both row-major.
                gemm_into(p, (rows, in_f, out_f), dy.as_ptr(), (1, out_f), w.as_ptr(), (1, in_f));
            }
            // dw = dyᵀ · x: dyᵀ is out_f × rows (column stride out_f, row stride 1).
            gemm_into(p.add(n), (out_f, in_f, rows), dy.as_ptr(), (out_f, 1), x.as_ptr(), (1, in_f));
            std::ptr::copy_nonoverlapping(db.as_ptr(), p.add(n + out_f * in_f), db.len());
            out.set_len(total);
        }
        Ok((CpuStorage::F32(out), Shape::from(total)))
    }
}

/// Multi-head attention, `softmax(q·kᵀ · scale + bias) · v` per head, on `q`, `k`, `v` `[b, t, h]`
/// as their linear layers produce them, giving the context `[b, t, h]` the output layer takes:
/// each head is read and written in place through strides, so no head is transposed into a
/// copy of its own and back. `bias` `[b, 1, 1, t]` is the attention mask (no gradient). The
/// backward pass recomputes each head's weights (t × t × head size, cheaper than keeping
/// `b × heads × t × t` of them until the backward pass).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    let (b, t, h) = q.dims3()?;
    if heads == 0 || h % heads != 0 || k.dims() != q.dims() || v.dims() != q.dims() || bias.elem_count() != b * t {
        candle_core::bail!(
            "attention: q {:?}, k {:?}, v {:?}, bias {:?}, {heads} heads",
            q.dims(),
            k.dims(),
            v.dims(),
            bias.dims()
        );
    }
    #[cfg(target_arch = "x86_64")]
    {
        let mask = bias.flatten_all()?.to_vec1::<f32>()?;
        let op = Attention { heads, scale: scale as f32, mask };
        q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let d = h / heads;
        let split = |y: &Tensor| y.reshape((b, t, heads, d))?.transpose(1, 2)?.contiguous();
        let (q, k, v) = (split(q)?, split(k)?, split(v)?);
        let probs = masked_softmax(&q.matmul(&k.t()?)?, scale, bias)?;
        probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h))
    }
}

/// A pointer parallel tasks write through, each to its own part (a head's rows and columns, a band
/// of a product's rows).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: every task writes a disjoint set of elements (a batch row's head columns, a band of a
// product's rows) and only reads the rest.
#[cfg(target_arch = "x86_64")]
unsafe impl Send for Shared {}
#[cfg(target_arch = "x86_64")]
unsafe impl Sync for Shared {}

#[cfg(target_arch = "x86_64")]
impl Shared {
    /// The pointer `offset` elements on. (A method, so closures capture the whole `Shared`, which
    /// is `Send`, not its raw pointer field.)
    ///
    /// # Safety
    /// `offset` must stay within the allocation.
    unsafe fn add(self, offset: usize) -> *mut f32 {
        self.0.add(offset)
    }
}

#[cfg(target_arch = "x86_64")]
struct Attention {
    heads: usize,
    scale: f32,
    /// `[b, t]`: 0 or a large negative number.
    mask: Vec<f32>,
}

/// Where one (batch, head) block lives in a `[b, t, h]` tensor and how big it is.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Head {
    /// Offset of its first element.
    at: usize,
    batch: usize,
    /// Tokens, hidden size (the row stride), head size.
    t: usize,
    h: usize,
    d: usize,
}

#[cfg(target_arch = "x86_64")]
impl Attention {
    fn heads_of(&self, l: &Layout) -> Result<Vec<Head>> {
        let &[b, t, h] = l.dims() else { candle_core::bail!("attention: {:?}", l.dims()) };
        let d = h / self.heads;
        Ok((0..b * self.heads)
            .map(|i| Head { at: (i / self.heads) * t * h + (i % self.heads) * d, batch: i / self.heads, t, h, d })
            .collect())
    }

    /// The head's attention weights into `p` (`t × t`).
    fn weights(&self, q: &[f32], k: &[f32], head: Head, p: &mut [f32]) {
        let Head { at, batch, t, h, d } = head;
        // SAFETY: q and k hold the head's t rows of d values at stride h from `at`; p is t × t.
        // S = Q · Kᵀ (Kᵀ: column stride h, row stride 1).
        unsafe {
            gemm_strided(
                p.as_mut_ptr(),
                t,
                (t, t, d),
                q[at..].as_ptr(),
                (1, h),
                k[at..].as_ptr(),
                (h, 1),
                gemm::Parallelism::None,
            );
        }
        softmax_rows(p, &self.mask[batch * t..][..t], self.scale);
    }
}

#[cfg(target_arch = "x86_64")]
impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "attention"
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
        use rayon::prelude::*;
        let (q, k, v) = (slice(s1, l1, "q")?, slice(s2, l2, "k")?, slice(s3, l3, "v")?);
        let heads = self.heads_of(l1)?;
        let mut ctx: Vec<f32> = Vec::with_capacity(q.len());
        let out = Shared(ctx.as_mut_ptr());
        heads.par_iter().for_each_init(Vec::new, |p, &head| {
            let Head { at, t, h, d, .. } = head;
            p.resize(t * t, 0.0);
            self.weights(q, k, head, p);
            // SAFETY: ctx has room for q.len() values; this task writes its head's t × d block
            // (row stride h from `at`), disjoint from every other task's; v holds the same block.
            unsafe {
                gemm_strided(
                    out.add(at),
                    h,
                    (t, d, t),
                    p.as_ptr(),
                    (1, t),
                    v[at..].as_ptr(),
                    (1, h),
                    gemm::Parallelism::None,
                )
            }
        });
        // SAFETY: the heads' blocks cover all b × t × h elements, each written above.
        unsafe { ctx.set_len(q.len()) };
        Ok((CpuStorage::F32(ctx), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let forward = Attention { heads: self.heads, scale: self.scale, mask: self.mask.clone() };
        let (dq, dk, dv) = forward.backward(q, k, v, grad)?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

#[cfg(target_arch = "x86_64")]
impl Attention {
    /// `(dq, dk, dv)` for the context's gradient `grad`, the head weights recomputed.
    fn backward(self, q: &Tensor, k: &Tensor, v: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let backward = AttentionBackward { forward: self, grad: grad.contiguous()? };
        let packed = q.contiguous()?.apply_op3_no_bwd(&k.contiguous()?, &v.contiguous()?, &backward)?;
        let n = q.elem_count();
        let part = |i: usize| packed.narrow(0, i * n, n)?.reshape(q.shape());
        Ok((part(0)?, part(1)?, part(2)?))
    }
}

/// The backward pass of [`attention`] for the context's gradient `grad`: `(dq, dk, dv)`.
#[cfg(target_arch = "x86_64")]
pub fn attention_backward(
    (q, k, v): (&Tensor, &Tensor, &Tensor),
    bias: &Tensor,
    heads: usize,
    scale: f64,
    grad: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let mask = bias.flatten_all()?.to_vec1::<f32>()?;
    Attention { heads, scale: scale as f32, mask }.backward(q, k, v, grad)
}

#[cfg(target_arch = "x86_64")]
struct AttentionBackward {
    forward: Attention,
    /// The gradient of the context `[b, t, h]`.
    grad: Tensor,
}

#[cfg(target_arch = "x86_64")]
impl CustomOp3 for AttentionBackward {
    fn name(&self) -> &'static str {
        "attention-backward"
    }

    /// One tensor: dq, dk, dv, each `[b, t, h]`. Per head, with P recomputed and G the context's
    /// gradient: dV = Pᵀ·G, dP = G·Vᵀ, dS = scale · P ⊙ (dP - rowsum(dP ⊙ P)), dQ = dS·K, dK = dSᵀ·Q.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let (q, k, v) = (slice(s1, l1, "q")?, slice(s2, l2, "k")?, slice(s3, l3, "v")?);
        let (g_storage, g_layout) = self.grad.storage_and_layout();
        let candle_core::Storage::Cpu(g_cpu) = &*g_storage else {
            candle_core::bail!("attention-backward: a CPU gradient")
        };
        let g = slice(g_cpu, g_layout, "grad")?;
        if g.len() != q.len() {
            candle_core::bail!("attention-backward: grad {:?} for q {:?}", g_layout.dims(), l1.dims());
        }
        let heads = self.forward.heads_of(l1)?;
        let n = q.len();
        let mut out: Vec<f32> = Vec::with_capacity(3 * n);
        let base = Shared(out.as_mut_ptr());
        heads.par_iter().for_each_init(
            || (Vec::new(), Vec::new()),
            |(p, dp), &head| {
                let Head { at, t, h, d, .. } = head;
                p.resize(t * t, 0.0);
                dp.resize(t * t, 0.0);
                self.forward.weights(q, k, head, p);
                let none = gemm::Parallelism::None;
                // SAFETY: out has room for 3n values; this task writes its head's t × d block
                // (row stride h from `at`) of each of dq, dk and dv, disjoint from every other
                // task's; q, k, v, g hold the same block; p and dp are t × t.
                unsafe {
                    let (dq, dk, dv) = (base.add(at), base.add(n + at), base.add(2 * n + at));
                    // dV = Pᵀ · G (Pᵀ: column stride t, row stride 1).
                    gemm_strided(dv, h, (t, d, t), p.as_ptr(), (t, 1), g[at..].as_ptr(), (1, h), none);
                    // dP = G · Vᵀ.
                    gemm_strided(
                        dp.as_mut_ptr(),
                        t,
                        (t, t, d),
                        g[at..].as_ptr(),
                        (1, h),
                        v[at..].as_ptr(),
                        (h, 1),
                        none,
                    );
                    softmax_backward_rows(dp, p, t, self.forward.scale);
                    // dQ = dS · K; dK = dSᵀ · Q.
                    gemm_strided(dq, h, (t, d, t), dp.as_ptr(), (1, t), k[at..].as_ptr(), (1, h), none);
                    gemm_strided(dk, h, (t, d, t), dp.as_ptr(), (t, 1), q[at..].as_ptr(), (1, h), none);
                }
            },
        );
        // SAFETY: the heads' blocks cover all b × t × h elements of each of the three parts.
        unsafe { out.set_len(3 * n) };
        Ok((CpuStorage::F32(out), Shape::from(3 * n)))
    }
}
