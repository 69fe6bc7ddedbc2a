//! Dense linear algebra the item-item models need: the inverse of a symmetric positive-definite
//! matrix (EASE's and `slit`'s regularised Gram matrices, ~10k × 10k on movielens-small), and a
//! matrix product (`slit`'s weights from that inverse).
//!
//! Blocked Gauss–Jordan elimination in place: `2n³` flops, nearly all of them in one `n × n × b`
//! matrix product per block, which `gemm` (candle's engine: AVX-512/AVX2, all cores) runs near
//! peak. A positive-definite matrix needs no pivoting, and f32 is enough for the well-conditioned
//! `XᵀX + λI` (λ in the hundreds).

use rayon::prelude::*;

/// Block size: large enough that the products dominate, small enough that the unblocked
/// inverse of each diagonal block is cheap.
const BLOCK: usize = 192;

/// Inverts the symmetric positive-definite row-major `n × n` matrix `a` in place. Fails (leaving
/// `a` partly overwritten) if a pivot is not positive, i.e. `a` was not positive definite.
pub fn spd_inverse(a: &mut [f32], n: usize) -> Result<(), String> {
    assert_eq!(a.len(), n * n, "matrix is n x n");
    let mut col = vec![0f32; n * BLOCK];
    let mut row = vec![0f32; BLOCK * n];
    for k0 in (0..n).step_by(BLOCK) {
        let b = BLOCK.min(n - k0);
        // P = inverse of the diagonal block.
        let mut p: Vec<f32> = (0..b).flat_map(|r| a[(k0 + r) * n + k0..(k0 + r) * n + k0 + b].to_vec()).collect();
        small_inverse(&mut p, b).map_err(|e| format!("pivot block at {k0}: {e}"))?;
        // C = A[:, K] with its K rows zeroed (n × b); R = P · A[K, :] (b × n).
        let c = &mut col[..n * b];
        c.par_chunks_mut(b).enumerate().for_each(|(i, ci)| match (k0..k0 + b).contains(&i) {
            true => ci.fill(0.0),
            false => ci.copy_from_slice(&a[i * n + k0..i * n + k0 + b]),
        });
        let r = &mut row[..b * n];
        // SAFETY: every pointer covers the extents given with its strides.
        unsafe {
            gemm::gemm(
                b,
                n,
                b,
                r.as_mut_ptr(),
                1,
                n as isize,
                false,
                p.as_ptr(),
                1,
                b as isize,
                a[k0 * n..].as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
            // A -= C · R: the rows outside K. (Its K columns become A[i,K] - C_i = 0; set below.)
            gemm::gemm(
                n,
                n,
                b,
                a.as_mut_ptr(),
                1,
                n as isize,
                true,
                c.as_ptr(),
                1,
                b as isize,
                r.as_ptr(),
                1,
                n as isize,
                1.0,
                -1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
        // A[K, :] = R, A[K, K] = P, A[i, K] = -C_i · P for i outside K.
        a[k0 * n..(k0 + b) * n].copy_from_slice(r);
        for (rr, prow) in p.chunks_exact(b).enumerate() {
            a[(k0 + rr) * n + k0..(k0 + rr) * n + k0 + b].copy_from_slice(prow);
        }
        a.par_chunks_mut(n).enumerate().filter(|(i, _)| !(k0..k0 + b).contains(i)).for_each(|(i, ai)| {
            let ci = &c[i * b..(i + 1) * b];
            let out = &mut ai[k0..k0 + b];
            out.fill(0.0);
            for (&cv, prow) in ci.iter().zip(p.chunks_exact(b)) {
                out.iter_mut().zip(prow).for_each(|(o, &pv)| *o -= cv * pv);
            }
        });
    }
    Ok(())
}

/// The product `A · B` of a row-major `m × k` and a row-major `k × n` matrix, on every core.
pub fn product(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert!(a.len() == m * k && b.len() == k * n, "A is m x k, B is k x n");
    let mut c = vec![0f32; m * n];
    // SAFETY: every pointer covers the extent given with its strides.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
    c
}

/// Unblocked Gauss–Jordan inverse of a small positive-definite block, in f64 for accuracy.
fn small_inverse(a: &mut [f32], n: usize) -> Result<(), String> {
    let mut m: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    for k in 0..n {
        let pivot = m[k * n + k];
        if pivot.is_nan() || pivot <= 0.0 || pivot.is_infinite() {
            return Err(format!("pivot {k} is {pivot}: the matrix is not positive definite"));
        }
        let inv = 1.0 / pivot;
        // Row k scaled; then eliminate column k from every other row.
        for j in 0..n {
            m[k * n + j] *= inv;
        }
        m[k * n + k] = inv;
        let rowk: Vec<f64> = m[k * n..(k + 1) * n].to_vec();
        for i in (0..n).filter(|&i| i != k) {
            let f = m[i * n + k];
            if f == 0.0 {
                continue;
            }
            for j in 0..n {
                m[i * n + j] -= f * rowk[j];
            }
            m[i * n + k] = -f * inv;
        }
    }
    a.iter_mut().zip(&m).for_each(|(x, &v)| *x = v as f32);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random positive-definite matrix `MᵀM + λI` and `A · A⁻¹`'s largest distance from `I`.
    fn check(n: usize, lambda: f32) -> f32 {
        let mut rng = crate::rng::Rng::stream(7, "dense-test");
        let m: Vec<f32> = (0..n * n).map(|_| rng.f32() - 0.5).collect();
        let mut a = vec![0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] =
                    (0..n).map(|k| m[k * n + i] * m[k * n + j]).sum::<f32>() + if i == j { lambda } else { 0.0 };
            }
        }
        let mut inv = a.clone();
        spd_inverse(&mut inv, n).unwrap();
        let mut worst = 0f32;
        for i in 0..n {
            for j in 0..n {
                let v: f32 = (0..n).map(|k| a[i * n + k] * inv[k * n + j]).sum();
                worst = worst.max((v - if i == j { 1.0 } else { 0.0 }).abs());
            }
        }
        worst
    }

    #[test]
    fn inverts_across_block_boundaries() {
        // One partial block, exactly one block, and several with a ragged last one.
        for n in [5, BLOCK, 2 * BLOCK + 37] {
            let err = check(n, 1.0);
            assert!(err < 1e-3, "n = {n}: |A·A⁻¹ − I| = {err}");
        }
    }

    #[test]
    fn refuses_a_matrix_that_is_not_positive_definite() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        let err = spd_inverse(&mut a, 2).unwrap_err();
        assert!(err.contains("not positive definite"), "{err}");
    }
}
