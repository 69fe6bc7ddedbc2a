//! Small dense kernels on `f32` slices.
//!
//! Each reduction accumulates into eight explicit lanes and folds them in a fixed tree, so
//! the compiler can vectorise it (SSE, AVX, wasm `simd128`) without changing the result:
//! native and browser builds produce the same bits.

const LANES: usize = 8;

/// Dot product of two equally long slices.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    let (a_body, a_tail) = a.split_at(a.len() - a.len() % LANES);
    let (b_body, b_tail) = b.split_at(a_body.len());
    for (x, y) in a_body.chunks_exact(LANES).zip(b_body.chunks_exact(LANES)) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    for (k, (x, y)) in a_tail.iter().zip(b_tail).enumerate() {
        acc[k] += x * y;
    }
    fold_lanes(acc)
}

/// `[dot(a, b[0]), …, dot(a, b[Q - 1])]`, each the same bits as [`dot`] (the same products summed
/// in the same lanes), with `a` read once for all `Q` slices.
#[inline(always)]
pub fn dots<const Q: usize>(a: &[f32], b: [&[f32]; Q]) -> [f32; Q] {
    let body = a.len() - a.len() % LANES;
    let mut acc = [[0f32; LANES]; Q];
    for c in (0..body).step_by(LANES) {
        let x: &[f32; LANES] = a[c..c + LANES].try_into().expect("a chunk of LANES");
        for q in 0..Q {
            let y: &[f32; LANES] = b[q][c..c + LANES].try_into().expect("a chunk of LANES");
            for k in 0..LANES {
                acc[q][k] += x[k] * y[k];
            }
        }
    }
    for q in 0..Q {
        for (k, (x, y)) in a[body..].iter().zip(&b[q][body..a.len()]).enumerate() {
            acc[q][k] += x * y;
        }
    }
    acc.map(fold_lanes)
}

/// [`dots`] for four slices in AVX registers, one per slice's eight lanes: the same products
/// summed in the same lanes (no fused multiply-add), folded by the same tree, so the same bits.
///
/// # Safety
/// The CPU must support AVX; every `b` must be at least as long as `a`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
pub unsafe fn dots4_avx(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    use std::arch::x86_64::*;
    let body = a.len() - a.len() % LANES;
    let mut acc = [_mm256_setzero_ps(); 4];
    for c in (0..body).step_by(LANES) {
        let x = _mm256_loadu_ps(a.as_ptr().add(c));
        for (acc, b) in acc.iter_mut().zip(&b) {
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(x, _mm256_loadu_ps(b.as_ptr().add(c))));
        }
    }
    let mut out = [0f32; 4];
    for ((o, acc), b) in out.iter_mut().zip(acc).zip(&b) {
        let mut lanes = [0f32; LANES];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        for (k, (x, y)) in a[body..].iter().zip(&b[body..a.len()]).enumerate() {
            lanes[k] += x * y;
        }
        *o = fold_lanes(lanes);
    }
    out
}

#[inline(always)]
fn fold_lanes(acc: [f32; LANES]) -> f32 {
    let q = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (q[0] + q[2]) + (q[1] + q[3])
}

/// `y += alpha * x`.
#[inline(always)]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `out = m * v` for a row-major `n x n` matrix `m`.
///
/// Computed as `Σⱼ v[j] · m[j, :]`, i.e. as axpy's over rows: that equals `m * v` for the symmetric
/// matrices it is used on (`m = mᵀ`), needs no horizontal reductions, and every output element
/// sums in the same order whatever the SIMD width.
#[inline(always)]
pub fn matvec_sym(m: &[f32], v: &[f32], out: &mut [f32]) {
    let n = v.len();
    debug_assert_eq!(m.len(), n * n);
    // Blocks of 32 outputs stay in registers across the whole sweep over rows.
    const BLOCK: usize = 32;
    let full = n - n % BLOCK;
    for start in (0..full).step_by(BLOCK) {
        let mut acc = [0f32; BLOCK];
        for (row, &vj) in m.chunks_exact(n).zip(v) {
            let r = &row[start..start + BLOCK];
            for k in 0..BLOCK {
                acc[k] += vj * r[k];
            }
        }
        out[start..start + BLOCK].copy_from_slice(&acc);
    }
    let tail = &mut out[full..];
    tail.fill(0.0);
    for (row, &vj) in m.chunks_exact(n).zip(v) {
        axpy(vj, &row[full..], tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_for_every_tail_length() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
            assert!((dot(&a, &b) as f64 - naive).abs() < 1e-3, "n={n}");
        }
    }

    #[test]
    fn dots_are_dot_to_the_bit_for_every_tail_length() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<Vec<f32>> =
                (0..3).map(|q| (0..n).map(|i| ((i * 7 + q) as f32 * 0.11).cos()).collect()).collect();
            let many = dots(&a, [&b[0], &b[1], &b[2]]);
            for q in 0..3 {
                assert_eq!(many[q].to_bits(), dot(&a, &b[q]).to_bits(), "n={n}, q={q}");
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx") {
                // SAFETY: AVX is supported; every b is as long as a.
                let four = unsafe { dots4_avx(&a, [&b[0], &b[1], &b[2], &b[0]]) };
                for (q, v) in [0, 1, 2, 0].into_iter().zip(four) {
                    assert_eq!(v.to_bits(), dot(&a, &b[q]).to_bits(), "avx: n={n}, q={q}");
                }
            }
        }
    }

    #[test]
    fn matvec_sym_matches_naive_product() {
        for n in [1, 5, 32, 33, 64, 70] {
            let mut m = vec![0f32; n * n];
            for i in 0..n {
                for j in 0..=i {
                    let v = ((i * 31 + j * 17) % 23) as f32 * 0.1 - 1.0;
                    m[i * n + j] = v;
                    m[j * n + i] = v;
                }
            }
            let v: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
            let mut out = vec![0f32; n];
            matvec_sym(&m, &v, &mut out);
            for i in 0..n {
                let want: f32 = (0..n).map(|j| m[i * n + j] * v[j]).sum();
                assert!((out[i] - want).abs() < 1e-3, "n={n} i={i}");
            }
        }
    }

    #[test]
    fn matvec_sym_of_identity_is_the_vector() {
        let n = 5;
        let mut m = vec![0f32; n * n];
        for i in 0..n {
            m[i * n + i] = 1.0;
        }
        let v = [1.0, -2.0, 3.0, 0.5, 9.0];
        let mut out = [0f32; 5];
        matvec_sym(&m, &v, &mut out);
        assert_eq!(out, v);
    }
}
