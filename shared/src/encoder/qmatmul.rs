//! Integer matrix products for the int8 encoder ([`super::int8`]).
//!
//! Weights stay int8 exactly as the bundle ships them (absmax per output row, one f32 scale each).
//! Activations are quantised per token to 7 bits, asymmetric: `x ≈ lo + step · u` with codes
//! `u` in 0..=127 spanning the token's own range. Seven bits, not eight, because the fastest
//! integer dot products there are (`vpdpbusd` with AVX-512 VNNI, `vpmaddubsw` with AVX2, wasm's
//! `i32x4.relaxed_dot_i8x16_i7x16_add_s`) multiply an unsigned byte by a signed one, and wasm's
//! relaxed form is only defined (the same on every CPU) when that byte's top bit is clear. Then
//! `Σ w·x = step · Σ w·u + lo · Σ w`: an exact i32 sum of byte products, plus the row's weight sum
//! (kept with the weights) times the token's low end. Against the f32 encoder this costs a mean
//! cosine of 0.9994 → ~0.997 on the benchmark texts (tests/encoder_int8.rs holds it to ≥ 0.995).
//! Integer sums do not depend on their order, so every kernel below (portable, AVX2, VNNI, wasm
//! SIMD128 and relaxed SIMD) gives the same bits: the browser and the native build embed alike.

/// Largest activation code: seven bits.
const CODE_MAX: f32 = 127.0;

/// The codes as this build's kernel reads them. wasm SIMD128 multiplies i16 lanes, so there the
/// codes are widened once per product rather than by every weight row pair that reads them.
#[cfg(all(target_arch = "wasm32", not(feature = "relaxed-simd")))]
type Code = i16;
#[cfg(not(all(target_arch = "wasm32", not(feature = "relaxed-simd"))))]
type Code = u8;

#[allow(clippy::useless_conversion)]
fn as_codes(q: Vec<u8>) -> Vec<Code> {
    q.into_iter().map(Code::from).collect()
}

/// Activations of `rows` tokens as 7-bit codes: `x[r][c] ≈ lows[r] + steps[r] · q[r][c]`.
pub struct QuantActs {
    pub q: Vec<u8>,
    pub steps: Vec<f32>,
    pub lows: Vec<f32>,
    pub cols: usize,
}

/// Quantises each row of a row-major `rows x cols` matrix over the row's own range.
pub fn quantize_acts(x: &[f32], cols: usize) -> QuantActs {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { quantize_acts_avx2(x, cols) };
    }
    quantize_rows(x, cols)
}

/// The same code compiled for AVX2 (the native build's baseline is SSE2): min/max and the
/// conversion to codes are exact, so the wider vectors change no bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_acts_avx2(x: &[f32], cols: usize) -> QuantActs {
    quantize_rows(x, cols)
}

#[inline(always)]
fn quantize_rows(x: &[f32], cols: usize) -> QuantActs {
    let rows = x.len() / cols.max(1);
    let mut q = vec![0u8; x.len()];
    let (mut steps, mut lows) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    for (row, out) in x.chunks_exact(cols).zip(q.chunks_exact_mut(cols)) {
        let (lo, hi) = range(row);
        let span = hi - lo;
        let step = if span > 0.0 && span.is_finite() { span / CODE_MAX } else { 1.0 };
        let lo = if lo.is_finite() { lo } else { 0.0 };
        steps.push(step);
        lows.push(lo);
        encode(row, lo, 1.0 / step, out);
    }
    QuantActs { q, steps, lows, cols }
}

/// The lowest and highest value of `row` (a NaN is passed over). A sequential min/max does not
/// vectorise, so the SIMD targets take explicit compare-and-select instructions.
#[inline(always)]
fn range(row: &[f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX (checked just above).
        return unsafe { x86::range_avx(row) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::range_simd128(row);
    #[allow(unreachable_code)]
    range_portable(row)
}

fn range_portable(row: &[f32]) -> (f32, f32) {
    row.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
        (if v < lo { v } else { lo }, if v > hi { v } else { hi })
    })
}

/// Folds the lanes of the SIMD kernels' running minima and maxima with the tail's.
fn fold_range(lows: &[f32], highs: &[f32], tail: (f32, f32)) -> (f32, f32) {
    let lo = lows.iter().fold(tail.0, |a, &v| if v < a { v } else { a });
    (lo, highs.iter().fold(tail.1, |a, &v| if v > a { v } else { a }))
}

/// Codes `round((v - lo) · inv)` clamped to 0..=127. `+ 0.5` then truncation rounds half up
/// (codes are never negative) without `f32::round`'s libm call. The clamp is done on floats (a
/// NaN fails `c > 0` and becomes 0), so every conversion below gives the same code; each target
/// takes the one that vectorises there.
#[inline(always)]
fn encode(row: &[f32], lo: f32, inv: f32, out: &mut [u8]) {
    for (d, &v) in out.iter_mut().zip(row) {
        let c = (v - lo) * inv + 0.5;
        let c = if c > CODE_MAX { CODE_MAX } else { c };
        let c = if c > 0.0 { c } else { 0.0 };
        // wasm: the saturating `as` is `i32x4.trunc_sat_f32x4_s`.
        #[cfg(target_arch = "wasm32")]
        let code = c as i32;
        // x86: the saturating `as` adds a NaN and overflow fix-up per value; the plain truncation
        // (`cvttps2dq`) vectorises.
        // SAFETY: c is finite and within 0..=127 (the two selects above), so it fits an i32.
        #[cfg(not(target_arch = "wasm32"))]
        let code = unsafe { c.to_int_unchecked::<i32>() };
        *d = code as u8;
    }
}

/// Activations ready for this build's kernel, quantised once for every product that reads them
/// (a layer's query, key and value products share theirs).
pub struct Acts {
    codes: Vec<Code>,
    steps: Vec<f32>,
    lows: Vec<f32>,
    cols: usize,
}

impl Acts {
    pub fn new(x: &[f32], cols: usize) -> Self {
        assert_eq!(x.len() % cols, 0, "activations are not rows of {cols}");
        let q = quantize_acts(x, cols);
        Self { codes: as_codes(q.q), steps: q.steps, lows: q.lows, cols }
    }
}

/// The sum of each int8 row of `cols` values (what a token's low end multiplies).
pub fn row_sums(w: &[i8], cols: usize) -> Vec<i32> {
    w.chunks_exact(cols).map(|r| r.iter().map(|&v| v as i32).sum()).collect()
}

/// `y = x · wᵀ + bias` for `x` `[tokens x cols]` and int8 rows `w` `[out x cols]` (row `o`
/// scaled by `scales[o]`, its values summing to `sums[o]`): `[tokens x out]`.
pub fn linear(w: &[i8], scales: &[f32], sums: &[i32], cols: usize, bias: &[f32], x: &[f32]) -> Vec<f32> {
    linear_acts(w, scales, sums, bias, &Acts::new(x, cols))
}

/// [`linear`] on activations already quantised.
pub fn linear_acts(w: &[i8], scales: &[f32], sums: &[i32], bias: &[f32], acts: &Acts) -> Vec<f32> {
    let mut ys = linear_many(&[Weights { w, scales, sums, bias }], acts);
    ys.pop().unwrap_or_default()
}

/// One int8 product's weights for [`linear_many`]: rows `w` (row `o` scaled by `scales[o]`, its
/// values summing to `sums[o]`) and one bias per row.
pub struct Weights<'a> {
    pub w: &'a [i8],
    pub scales: &'a [f32],
    pub sums: &'a [i32],
    pub bias: &'a [f32],
}

/// Several products of the same activations at once (a layer's query, key and value): one
/// `[tokens x out]` result per entry of `layers`, each exactly what [`linear_acts`] gives, but
/// their output blocks share one hand-off to the threads instead of one each.
pub fn linear_many(layers: &[Weights], acts: &Acts) -> Vec<Vec<f32>> {
    let cols = acts.cols;
    for l in layers {
        let out = l.scales.len();
        assert_eq!(l.w.len(), out * cols, "weights are not {out} rows of {cols}");
        assert_eq!(l.bias.len(), out, "one bias per output");
        assert_eq!(l.sums.len(), out, "one weight sum per output");
    }
    let codes = &acts.codes;
    let tokens = acts.steps.len();
    // Outputs in blocks whose weights stay in cache while every token passes over them.
    const BLOCK: usize = 32;
    let blocks: Vec<(usize, std::ops::Range<usize>)> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| {
            let out = l.scales.len();
            (0..out).step_by(BLOCK).map(move |s| (i, s..(s + BLOCK).min(out)))
        })
        .collect();
    let run = |(layer, range): &(usize, std::ops::Range<usize>)| -> Vec<i32> {
        let mut acc = vec![0i32; range.len() * tokens];
        dots(&layers[*layer].w[range.start * cols..range.end * cols], codes, cols, &mut acc);
        acc
    };
    let outs: usize = layers.iter().map(|l| l.scales.len()).sum();
    let partial = super::par::map(blocks.len(), tokens * outs * cols >= super::par::PARALLEL_MIN, |i| run(&blocks[i]));
    let mut ys: Vec<Vec<f32>> = layers.iter().map(|l| vec![0f32; tokens * l.scales.len()]).collect();
    // Token-major sums: each token's outputs are written in one contiguous run.
    for ((layer, range), acc) in blocks.iter().zip(&partial) {
        let l = &layers[*layer];
        let (out, y) = (l.scales.len(), &mut ys[*layer]);
        let (ws, bs, ss) = (&l.scales[range.clone()], &l.bias[range.clone()], &l.sums[range.clone()]);
        for (t, dots) in acc.chunks_exact(range.len()).enumerate() {
            let (step, lo) = (acts.steps[t], acts.lows[t]);
            let row = &mut y[t * out + range.start..t * out + range.end];
            for ((((v, &d), &w), &b), &s) in row.iter_mut().zip(dots).zip(ws).zip(bs).zip(ss) {
                *v = w * (d as f32 * step + s as f32 * lo) + b;
            }
        }
    }
    ys
}

/// `acc[t * rows + o] = Σ_k w[o][k] · x[t][k]` for every weight row `o` of `w` (rows of `cols`)
/// and every token `t` of `x` (7-bit codes).
fn dots(w: &[i8], x: &[Code], cols: usize, acc: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512vnni") && std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512 F/BW and VNNI (checked just above).
            unsafe { x86::dots_vnni(w, x, cols, acc) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { x86::dots_avx2(w, x, cols, acc) };
            return;
        }
    }
    #[cfg(all(target_arch = "wasm32", feature = "relaxed-simd"))]
    {
        // A browser without relaxed SIMD refuses this whole module (engine.js then loads the
        // SIMD128 build), so reaching here means the instructions exist.
        wasm::dots_relaxed(w, x, cols, acc);
        #[allow(clippy::needless_return)]
        return;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(feature = "relaxed-simd")))]
    {
        wasm::dots_simd128(w, x, cols, acc);
        #[allow(clippy::needless_return)]
        return;
    }
    #[allow(unreachable_code)]
    dots_portable(w, x, cols, acc)
}

/// The reference kernel: one exact integer dot product per pair.
pub fn dots_portable<T: Copy + Into<i32>>(w: &[i8], x: &[T], cols: usize, acc: &mut [i32]) {
    let rows = w.len() / cols;
    for (o, wrow) in w.chunks_exact(cols).enumerate() {
        for (t, xrow) in x.chunks_exact(cols).enumerate() {
            acc[t * rows + o] = tail(wrow, xrow);
        }
    }
}

#[inline(always)]
fn tail<T: Copy + Into<i32>>(w: &[i8], x: &[T]) -> i32 {
    w.iter().zip(x).map(|(&a, &b)| a as i32 * b.into()).sum()
}

/// Walks `w` x `x` in tiles of two weight rows by four tokens (eight accumulators: each weight
/// load serves four tokens, each token load two rows), handing every full tile to `tile`, which
/// sums the first `body` columns; the columns past `body`, and rows or tokens that do not fill a
/// tile, are summed exactly by scalar code.
#[inline(always)]
fn tiles<T: Copy + Into<i32>>(
    w: &[i8],
    x: &[T],
    cols: usize,
    body: usize,
    acc: &mut [i32],
    tile: impl Fn([&[i8]; 2], [&[T]; 4]) -> [[i32; 4]; 2],
) {
    let tokens = x.len() / cols;
    let rows = w.len() / cols;
    let wrow = |o: usize| &w[o * cols..(o + 1) * cols];
    let xrow = |t: usize| &x[t * cols..(t + 1) * cols];
    let mut o = 0;
    while o + 2 <= rows {
        let ws = [wrow(o), wrow(o + 1)];
        let mut t = 0;
        while t + 4 <= tokens {
            let xs = [xrow(t), xrow(t + 1), xrow(t + 2), xrow(t + 3)];
            let sums = tile(ws, xs);
            for (r, row_sums) in sums.iter().enumerate() {
                for (j, &s) in row_sums.iter().enumerate() {
                    acc[(t + j) * rows + o + r] = s + tail(&ws[r][body..], &xs[j][body..]);
                }
            }
            t += 4;
        }
        for tt in t..tokens {
            for r in 0..2 {
                acc[tt * rows + o + r] = tail(ws[r], xrow(tt));
            }
        }
        o += 2;
    }
    if o < rows {
        for t in 0..tokens {
            acc[t * rows + o] = tail(wrow(o), xrow(t));
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::tiles;
    use std::arch::x86_64::*;

    /// [`super::range`], eight lanes at a time. `vminps a, b` is `a < b ? a : b`: with the new
    /// value first, a NaN loses to the running value, as in the portable code.
    #[target_feature(enable = "avx")]
    pub unsafe fn range_avx(row: &[f32]) -> (f32, f32) {
        let body = row.len() - row.len() % 8;
        let (mut lo, mut hi) = (_mm256_set1_ps(f32::INFINITY), _mm256_set1_ps(f32::NEG_INFINITY));
        for k in (0..body).step_by(8) {
            // SAFETY: k + 8 <= body <= row.len().
            let v = unsafe { _mm256_loadu_ps(row.as_ptr().add(k)) };
            lo = _mm256_min_ps(v, lo);
            hi = _mm256_max_ps(v, hi);
        }
        let (mut l, mut h) = ([0f32; 8], [0f32; 8]);
        // SAFETY: both arrays hold eight f32.
        unsafe {
            _mm256_storeu_ps(l.as_mut_ptr(), lo);
            _mm256_storeu_ps(h.as_mut_ptr(), hi);
        }
        super::fold_range(&l, &h, super::range_portable(&row[body..]))
    }

    /// AVX2: `vpmaddubsw` (unsigned code × signed weight, adjacent pairs summed to i16: at most
    /// 2 · 127 · 127, so never saturating) then `vpmaddwd` by ones to i32, 32 columns per step.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dots_avx2(w: &[i8], x: &[u8], cols: usize, acc: &mut [i32]) {
        let body = cols - cols % 32;
        let ones = _mm256_set1_epi16(1);
        tiles(w, x, cols, body, acc, |ws, xs| {
            let mut s = [[_mm256_setzero_si256(); 4]; 2];
            let mut k = 0;
            while k < body {
                // SAFETY: k + 32 <= body <= cols, the length of every row read here.
                let w0 = unsafe { _mm256_loadu_si256(ws[0].as_ptr().add(k).cast()) };
                let w1 = unsafe { _mm256_loadu_si256(ws[1].as_ptr().add(k).cast()) };
                for j in 0..4 {
                    let xv = unsafe { _mm256_loadu_si256(xs[j].as_ptr().add(k).cast()) };
                    let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(xv, w0), ones);
                    let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(xv, w1), ones);
                    s[0][j] = _mm256_add_epi32(s[0][j], p0);
                    s[1][j] = _mm256_add_epi32(s[1][j], p1);
                }
                k += 32;
            }
            let mut out = [[0i32; 4]; 2];
            for r in 0..2 {
                for j in 0..4 {
                    out[r][j] = unsafe { hsum256(s[r][j]) };
                }
            }
            out
        })
    }

    #[target_feature(enable = "avx2")]
    unsafe fn hsum256(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }

    /// AVX-512 VNNI: `vpdpbusd` (unsigned code × signed weight, four products summed into each
    /// i32 lane in one instruction), 64 columns per step.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn dots_vnni(w: &[i8], x: &[u8], cols: usize, acc: &mut [i32]) {
        let body = cols - cols % 64;
        tiles(w, x, cols, body, acc, |ws, xs| {
            let mut s = [[_mm512_setzero_si512(); 4]; 2];
            let mut k = 0;
            while k < body {
                // SAFETY: k + 64 <= body <= cols, the length of every row read here.
                let w0 = unsafe { _mm512_loadu_si512(ws[0].as_ptr().add(k).cast()) };
                let w1 = unsafe { _mm512_loadu_si512(ws[1].as_ptr().add(k).cast()) };
                for j in 0..4 {
                    let xv = unsafe { _mm512_loadu_si512(xs[j].as_ptr().add(k).cast()) };
                    s[0][j] = _mm512_dpbusd_epi32(s[0][j], xv, w0);
                    s[1][j] = _mm512_dpbusd_epi32(s[1][j], xv, w1);
                }
                k += 64;
            }
            let mut out = [[0i32; 4]; 2];
            for r in 0..2 {
                for j in 0..4 {
                    out[r][j] = _mm512_reduce_add_epi32(s[r][j]);
                }
            }
            out
        })
    }
}

/// The browser's kernels: `i32x4.dot_i16x8_s` on i16 lanes (SIMD128, every browser), or
/// `i32x4.relaxed_dot_i8x16_i7x16_add_s` on the bytes themselves (relaxed SIMD, a second build).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::tiles;
    use core::arch::wasm32::*;

    /// [`super::range`], four lanes at a time. `f32x4.pmin(a, b)` is `b < a ? b : a`: with the
    /// running value first, a NaN loses to it, as in the portable code.
    pub fn range_simd128(row: &[f32]) -> (f32, f32) {
        let body = row.len() - row.len() % 4;
        let (mut lo, mut hi) = (f32x4_splat(f32::INFINITY), f32x4_splat(f32::NEG_INFINITY));
        for k in (0..body).step_by(4) {
            // SAFETY: k + 4 <= body <= row.len(); wasm loads need no alignment.
            let v = unsafe { v128_load(row.as_ptr().add(k).cast()) };
            lo = f32x4_pmin(lo, v);
            hi = f32x4_pmax(hi, v);
        }
        let lanes = |v: v128| {
            [
                f32x4_extract_lane::<0>(v),
                f32x4_extract_lane::<1>(v),
                f32x4_extract_lane::<2>(v),
                f32x4_extract_lane::<3>(v),
            ]
        };
        super::fold_range(&lanes(lo), &lanes(hi), super::range_portable(&row[body..]))
    }

    /// Weights widened as they load (`i16x8.load8x8_s`), codes already i16: eight columns per
    /// step.
    #[cfg_attr(feature = "relaxed-simd", allow(dead_code))]
    pub fn dots_simd128(w: &[i8], x: &[i16], cols: usize, acc: &mut [i32]) {
        let body = cols - cols % 8;
        tiles(w, x, cols, body, acc, |ws, xs| {
            let mut s = [[i32x4_splat(0); 4]; 2];
            let mut k = 0;
            while k < body {
                // SAFETY: k + 8 <= body <= cols, the length of every row read here; wasm loads
                // need no alignment.
                let w0 = unsafe { i16x8_load_extend_i8x8(ws[0].as_ptr().add(k)) };
                let w1 = unsafe { i16x8_load_extend_i8x8(ws[1].as_ptr().add(k)) };
                for j in 0..4 {
                    let xv = unsafe { v128_load(xs[j].as_ptr().add(k).cast()) };
                    s[0][j] = i32x4_add(s[0][j], i32x4_dot_i16x8(w0, xv));
                    s[1][j] = i32x4_add(s[1][j], i32x4_dot_i16x8(w1, xv));
                }
                k += 8;
            }
            sums(s)
        })
    }

    /// Sixteen byte products per instruction, accumulated in place. The code operand is the
    /// "i7" one: its top bit is clear, so every engine (`vpdpbusd`, `pmaddubsw`, ARM `sdot`)
    /// computes the same exact sum.
    #[cfg(feature = "relaxed-simd")]
    #[target_feature(enable = "relaxed-simd")]
    pub fn dots_relaxed(w: &[i8], x: &[u8], cols: usize, acc: &mut [i32]) {
        let body = cols - cols % 16;
        tiles(w, x, cols, body, acc, |ws, xs| {
            let mut s = [[i32x4_splat(0); 4]; 2];
            let mut k = 0;
            while k < body {
                // SAFETY: k + 16 <= body <= cols, the length of every row read here.
                let w0 = unsafe { v128_load(ws[0].as_ptr().add(k).cast()) };
                let w1 = unsafe { v128_load(ws[1].as_ptr().add(k).cast()) };
                for j in 0..4 {
                    let xv = unsafe { v128_load(xs[j].as_ptr().add(k).cast()) };
                    s[0][j] = i32x4_relaxed_dot_i8x16_i7x16_add(w0, xv, s[0][j]);
                    s[1][j] = i32x4_relaxed_dot_i8x16_i7x16_add(w1, xv, s[1][j]);
                }
                k += 16;
            }
            sums(s)
        })
    }

    #[inline(always)]
    fn sums(s: [[v128; 4]; 2]) -> [[i32; 4]; 2] {
        s.map(|row| row.map(hsum))
    }

    #[inline(always)]
    fn hsum(v: v128) -> i32 {
        i32x4_extract_lane::<0>(v)
            .wrapping_add(i32x4_extract_lane::<1>(v))
            .wrapping_add(i32x4_extract_lane::<2>(v))
            .wrapping_add(i32x4_extract_lane::<3>(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::Int8Rows;

    fn weights(out: usize, cols: usize) -> Int8Rows {
        let v: Vec<f32> = (0..out * cols).map(|i| ((i * 7919 % 251) as f32 - 125.0) * 0.003).collect();
        Int8Rows::quantize(&v, cols)
    }

    #[test]
    fn every_kernel_gives_the_exact_integer_sums() {
        // Odd sizes: token counts around the block of four, columns with a remainder of every
        // kernel's step (8, 16, 32, 64), and the codes and weights at their extremes.
        for (out, cols, tokens) in
            [(5, 37, 7), (33, 384, 9), (3, 1536, 4), (2, 16, 1), (4, 70, 8), (7, 96, 13), (3, 200, 5)]
        {
            let mut w = weights(out, cols);
            w.q.iter_mut().step_by(17).for_each(|v| *v = -127);
            w.q.iter_mut().step_by(19).for_each(|v| *v = 127);
            let x: Vec<u8> = (0..tokens * cols)
                .map(|i| match i % 11 {
                    0 => 127,
                    1 => 0,
                    _ => (i * 31 % 128) as u8,
                })
                .collect();
            let mut want = vec![0i32; out * tokens];
            dots_portable(&w.q, &x, cols, &mut want);
            for o in 0..out {
                for t in 0..tokens {
                    let exact: i64 = (0..cols).map(|k| w.q[o * cols + k] as i64 * x[t * cols + k] as i64).sum();
                    assert_eq!(want[t * out + o] as i64, exact, "portable [{t}, {o}]");
                }
            }
            let mut got = vec![0i32; out * tokens];
            dots(&w.q, &as_codes(x.clone()), cols, &mut got);
            assert_eq!(got, want, "out {out}, cols {cols}, tokens {tokens}");
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut got = vec![0i32; out * tokens];
                    // SAFETY: AVX2 is present (checked).
                    unsafe { x86::dots_avx2(&w.q, &x, cols, &mut got) };
                    assert_eq!(got, want, "AVX2: out {out}, cols {cols}, tokens {tokens}");
                }
                if std::arch::is_x86_feature_detected!("avx512vnni") && std::arch::is_x86_feature_detected!("avx512bw")
                {
                    let mut got = vec![0i32; out * tokens];
                    // SAFETY: AVX-512 BW and VNNI are present (checked).
                    unsafe { x86::dots_vnni(&w.q, &x, cols, &mut got) };
                    assert_eq!(got, want, "VNNI: out {out}, cols {cols}, tokens {tokens}");
                }
            }
        }
    }

    #[test]
    fn every_range_kernel_agrees_with_the_portable_one() {
        for len in [1, 3, 4, 7, 8, 9, 16, 31, 384, 1537] {
            let mut row: Vec<f32> = (0..len).map(|i| ((i * 7919 % 1009) as f32 - 504.0) * 0.37).collect();
            assert_eq!(range(&row), range_portable(&row), "{len} values");
            row[len / 2] = f32::NAN;
            assert_eq!(range(&row), range_portable(&row), "{len} values, one NaN");
        }
    }

    #[test]
    fn codes_span_each_token_and_stay_seven_bit() {
        let x = [-2.0, 0.0, 6.0, 1.0, /* */ 3.0, 3.0, 3.0, 3.0, /* */ -1e-3, 5e-4, 0.0, 1e-3];
        let q = quantize_acts(&x, 4);
        assert_eq!(&q.q[..4], &[0, 32, 127, 48], "lowest value 0, highest 127, rounded between");
        assert_eq!(q.lows[0], -2.0);
        assert_eq!(q.steps[0], 8.0 / 127.0);
        assert_eq!(&q.q[4..8], &[0; 4], "a constant token is all low end");
        assert_eq!(q.lows[1], 3.0);
        assert!(q.q.iter().all(|&c| c <= 127), "the top bit stays clear (relaxed SIMD's i7 operand)");
        for (t, row) in x.chunks_exact(4).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let back = q.lows[t] + q.steps[t] * q.q[t * 4 + c] as f32;
                assert!((back - v).abs() <= q.steps[t] / 2.0 + 1e-6, "[{t}, {c}]: {back} vs {v}");
            }
        }
    }

    #[test]
    fn linear_tracks_the_f32_product() {
        let (out, cols, tokens) = (40, 96, 6);
        let w = weights(out, cols);
        let wf = w.dequantize();
        let sums = row_sums(&w.q, cols);
        let bias: Vec<f32> = (0..out).map(|o| o as f32 * 0.01).collect();
        let x: Vec<f32> = (0..tokens * cols).map(|i| ((i * 37 % 97) as f32 - 48.0) * 0.05).collect();
        let y = linear(&w.q, &w.scales, &sums, cols, &bias, &x);
        for t in 0..tokens {
            let row = &x[t * cols..(t + 1) * cols];
            let (lo, hi) = row.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            // Each code is off by at most half a step; the error is the weights' absolute sum
            // times that.
            let half_step = (hi - lo) / 127.0 / 2.0;
            for o in 0..out {
                let exact: f32 = (0..cols).map(|k| wf[o * cols + k] * row[k]).sum::<f32>() + bias[o];
                let bound: f32 = wf[o * cols..(o + 1) * cols].iter().map(|v| v.abs()).sum::<f32>() * half_step;
                let got = y[t * out + o];
                assert!((got - exact).abs() <= bound + 1e-4, "[{t}, {o}]: {got} vs {exact} (bound {bound})");
            }
        }
        let zeros = linear(&w.q, &w.scales, &sums, cols, &bias, &vec![0.0; cols]);
        assert_eq!(zeros, bias, "a zero token gives the bias");
    }

    #[test]
    fn several_products_at_once_give_each_one_to_the_bit() {
        // Big enough (70 tokens x 264 outputs x 384) to be split over threads natively; output
        // counts that leave part-blocks.
        let (cols, tokens) = (384, 70);
        let shapes = [40, 200, 24];
        let ws: Vec<Int8Rows> = shapes.iter().map(|&out| weights(out, cols)).collect();
        let sums: Vec<Vec<i32>> = ws.iter().map(|w| row_sums(&w.q, cols)).collect();
        let biases: Vec<Vec<f32>> = shapes.iter().map(|&out| (0..out).map(|o| o as f32 * -0.02).collect()).collect();
        let x: Vec<f32> = (0..tokens * cols).map(|i| ((i * 53 % 101) as f32 - 50.0) * 0.04).collect();
        let acts = Acts::new(&x, cols);
        let layers: Vec<Weights> = (0..shapes.len())
            .map(|i| Weights { w: &ws[i].q, scales: &ws[i].scales, sums: &sums[i], bias: &biases[i] })
            .collect();
        let together = linear_many(&layers, &acts);
        assert_eq!(together.len(), shapes.len());
        for (i, y) in together.iter().enumerate() {
            let alone = linear(&ws[i].q, &ws[i].scales, &sums[i], cols, &biases[i], &x);
            assert_eq!(y, &alone, "product {i}");
        }
    }
}
