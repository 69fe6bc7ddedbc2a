//! Integer matrix products for the int8 encoder ([`super::int8`]).
//!
//! Weights stay int8 exactly as the bundle ships them (absmax per output row, one f32 scale each).
//! Activations are quantised per token to i16 with a per-token scale: i16 keeps the activation error
//! near 1e-4 of the token's largest value, so the only real approximation is the one the bundle
//! already made, the int8 weights. Each output is an exact i32 sum of products, scaled once by
//! `weight scale × token scale`. Integer sums do not depend on their order, so every kernel below
//! (portable, AVX2, wasm SIMD128) gives the same bits: the browser and the native build embed alike.

/// Activations of `rows` tokens as i16, one scale per token: `x[r][c] ≈ q[r][c] · scales[r]`.
pub struct QuantActs {
    pub q: Vec<i16>,
    pub scales: Vec<f32>,
    pub cols: usize,
}

/// Largest activation code for rows of `cols` values: the sum of `cols` products of an int8
/// weight (|w| ≤ 127) and the code must fit an i32.
fn act_code_max(cols: usize) -> f32 {
    (i32::MAX as usize / (cols.max(1) * 127)).min(i16::MAX as usize) as f32
}

/// Quantises each row of a row-major `rows x cols` matrix (absmax per row).
pub fn quantize_acts(x: &[f32], cols: usize) -> QuantActs {
    let code_max = act_code_max(cols);
    let mut q = vec![0i16; x.len()];
    let mut scales = Vec::with_capacity(x.len() / cols.max(1));
    for (row, out) in x.chunks_exact(cols).zip(q.chunks_exact_mut(cols)) {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 && max.is_finite() { max / code_max } else { 1.0 };
        let inv = 1.0 / scale;
        scales.push(scale);
        // Round half away from zero as `f32::round`, without its libm call (which keeps the loop
        // from vectorising); `as` saturates and the clamp bounds the code.
        for (d, v) in out.iter_mut().zip(row) {
            let x = v * inv;
            *d = (x + 0.5f32.copysign(x)).clamp(-code_max, code_max) as i16;
        }
    }
    QuantActs { q, scales, cols }
}

/// `y = x · wᵀ + bias` for `x` `[tokens x cols]` and int8 rows `w` `[out x cols]` (row `o`
/// scaled by `scales[o]`): `[tokens x out]`.
pub fn linear(w: &[i8], scales: &[f32], cols: usize, bias: &[f32], x: &[f32]) -> Vec<f32> {
    let out = scales.len();
    assert_eq!(w.len(), out * cols, "weights are not {out} rows of {cols}");
    assert_eq!(x.len() % cols, 0, "activations are not rows of {cols}");
    assert_eq!(bias.len(), out, "one bias per output");
    let acts = quantize_acts(x, cols);
    let tokens = acts.scales.len();
    let mut y = vec![0f32; tokens * out];
    // Outputs in blocks whose weights stay in cache while every token passes over them.
    const BLOCK: usize = 32;
    let blocks: Vec<std::ops::Range<usize>> = (0..out).step_by(BLOCK).map(|s| s..(s + BLOCK).min(out)).collect();
    let run = |range: &std::ops::Range<usize>| -> Vec<i32> {
        let mut acc = vec![0i32; range.len() * tokens];
        dots(&w[range.start * cols..range.end * cols], &acts.q, cols, &mut acc);
        acc
    };
    #[cfg(not(target_arch = "wasm32"))]
    let sums: Vec<Vec<i32>> = {
        use rayon::prelude::*;
        // Small products (a short query) are not worth the threads' hand-offs.
        if tokens * out * cols >= 1 << 20 {
            blocks.par_iter().map(run).collect()
        } else {
            blocks.iter().map(run).collect()
        }
    };
    #[cfg(target_arch = "wasm32")]
    let sums: Vec<Vec<i32>> = blocks.iter().map(run).collect();
    // Token-major sums: each token's outputs are written in one contiguous run.
    for (range, acc) in blocks.iter().zip(&sums) {
        let (ws, bs) = (&scales[range.clone()], &bias[range.clone()]);
        for (t, sums) in acc.chunks_exact(range.len()).enumerate() {
            let xs = acts.scales[t];
            let row = &mut y[t * out + range.start..t * out + range.end];
            for (((v, &a), &w), &b) in row.iter_mut().zip(sums).zip(ws).zip(bs) {
                *v = a as f32 * (w * xs) + b;
            }
        }
    }
    y
}

/// `acc[t * rows + o] = Σ_k w[o][k] · x[t][k]` for every weight row `o` of `w` (rows of `cols`)
/// and every token `t` of `x`.
fn dots(w: &[i8], x: &[i16], cols: usize, acc: &mut [i32]) {
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
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        wasm::dots_simd128(w, x, cols, acc);
        #[allow(clippy::needless_return)]
        return;
    }
    #[allow(unreachable_code)]
    dots_portable(w, x, cols, acc)
}

/// The reference kernel: one exact integer dot product per pair.
pub fn dots_portable(w: &[i8], x: &[i16], cols: usize, acc: &mut [i32]) {
    let rows = w.len() / cols;
    for (o, wrow) in w.chunks_exact(cols).enumerate() {
        for (t, xrow) in x.chunks_exact(cols).enumerate() {
            acc[t * rows + o] = tail(wrow, xrow);
        }
    }
}

#[inline(always)]
fn tail(w: &[i8], x: &[i16]) -> i32 {
    w.iter().zip(x).map(|(&a, &b)| a as i32 * b as i32).sum()
}

/// Walks `w` x `x` in tiles of two weight rows by four tokens (eight accumulators: each weight
/// load serves four tokens, each token load two rows), handing every full tile to `tile`, which
/// sums the first `body` columns; the columns past `body`, and rows or tokens that do not fill a
/// tile, are summed exactly by scalar code.
#[inline(always)]
fn tiles(
    w: &[i8],
    x: &[i16],
    cols: usize,
    body: usize,
    acc: &mut [i32],
    tile: impl Fn([&[i8]; 2], [&[i16]; 4]) -> [[i32; 4]; 2],
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

    /// AVX2: `vpmaddwd` on weights widened from int8 (`vpmovsxbw`), 16 columns per step.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dots_avx2(w: &[i8], x: &[i16], cols: usize, acc: &mut [i32]) {
        let body = cols - cols % 16;
        tiles(w, x, cols, body, acc, |ws, xs| {
            let mut s = [[_mm256_setzero_si256(); 4]; 2];
            let mut k = 0;
            while k < body {
                // SAFETY: k + 16 <= body <= cols, the length of every row read here.
                let w0 = unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(ws[0].as_ptr().add(k).cast())) };
                let w1 = unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(ws[1].as_ptr().add(k).cast())) };
                for j in 0..4 {
                    let xv = unsafe { _mm256_loadu_si256(xs[j].as_ptr().add(k).cast()) };
                    s[0][j] = _mm256_add_epi32(s[0][j], _mm256_madd_epi16(w0, xv));
                    s[1][j] = _mm256_add_epi32(s[1][j], _mm256_madd_epi16(w1, xv));
                }
                k += 16;
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

    /// AVX-512 VNNI: `vpdpwssd` (multiply i16 pairs and accumulate in one instruction), 32
    /// columns per step.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn dots_vnni(w: &[i8], x: &[i16], cols: usize, acc: &mut [i32]) {
        let body = cols - cols % 32;
        tiles(w, x, cols, body, acc, |ws, xs| {
            let mut s = [[_mm512_setzero_si512(); 4]; 2];
            let mut k = 0;
            while k < body {
                // SAFETY: k + 32 <= body <= cols, the length of every row read here.
                let w0 = unsafe { _mm512_cvtepi8_epi16(_mm256_loadu_si256(ws[0].as_ptr().add(k).cast())) };
                let w1 = unsafe { _mm512_cvtepi8_epi16(_mm256_loadu_si256(ws[1].as_ptr().add(k).cast())) };
                for j in 0..4 {
                    let xv = unsafe { _mm512_loadu_si512(xs[j].as_ptr().add(k).cast()) };
                    s[0][j] = _mm512_dpwssd_epi32(s[0][j], w0, xv);
                    s[1][j] = _mm512_dpwssd_epi32(s[1][j], w1, xv);
                }
                k += 32;
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

/// The browser's kernel: `i32x4.dot_i16x8_s` on weights widened as they load
/// (`i16x8.load8x8_s`), eight columns per step.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::tiles;
    use core::arch::wasm32::*;

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
            let mut out = [[0i32; 4]; 2];
            for r in 0..2 {
                for j in 0..4 {
                    out[r][j] = hsum(s[r][j]);
                }
            }
            out
        })
    }

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
        // Odd sizes: token counts around the block of four, columns with a remainder, and the
        // widest activations codes (1536 columns) at their extremes.
        for (out, cols, tokens) in [(5, 37, 7), (33, 384, 9), (3, 1536, 4), (2, 16, 1), (4, 70, 8), (7, 96, 13)] {
            let w = weights(out, cols);
            let code = act_code_max(cols) as i16;
            let x: Vec<i16> = (0..tokens * cols)
                .map(|i| {
                    if i % 11 == 0 {
                        code
                    } else if i % 13 == 0 {
                        -code
                    } else {
                        (i * 31 % 401) as i16 - 200
                    }
                })
                .collect();
            let mut want = vec![0i32; out * tokens];
            let mut want64 = vec![0i64; out * tokens];
            for o in 0..out {
                for t in 0..tokens {
                    want64[t * out + o] = (0..cols).map(|k| w.q[o * cols + k] as i64 * x[t * cols + k] as i64).sum();
                }
            }
            dots_portable(&w.q, &x, cols, &mut want);
            assert_eq!(want.iter().map(|&v| v as i64).collect::<Vec<_>>(), want64, "no overflow at {cols} columns");
            let mut got = vec![0i32; out * tokens];
            dots(&w.q, &x, cols, &mut got);
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
    fn linear_tracks_the_f32_product() {
        let (out, cols, tokens) = (40, 96, 6);
        let w = weights(out, cols);
        let wf = w.dequantize();
        let bias: Vec<f32> = (0..out).map(|o| o as f32 * 0.01).collect();
        let x: Vec<f32> = (0..tokens * cols).map(|i| ((i * 37 % 97) as f32 - 48.0) * 0.05).collect();
        let y = linear(&w.q, &w.scales, cols, &bias, &x);
        for t in 0..tokens {
            for o in 0..out {
                let exact: f32 = (0..cols).map(|k| wf[o * cols + k] * x[t * cols + k]).sum::<f32>() + bias[o];
                let got = y[t * out + o];
                assert!((got - exact).abs() < 1e-3 * (1.0 + exact.abs()), "[{t}, {o}]: {got} vs {exact}");
            }
        }
        let zeros = linear(&w.q, &w.scales, cols, &bias, &vec![0.0; cols]);
        assert_eq!(zeros, bias, "a zero token gives the bias");
    }
}
