//! The implicit-ALS row update ("fold-in").
//!
//! Hu, Koren & Volinsky (2008) weight each observed preference with a confidence
//! `c = 1 + alpha * r`. For one user `u` with factors `x`, ALS solves
//!
//! ```text
//! (YᵀY + Yᵤᵀ (Cᵤ − I) Yᵤ + λI) x = Yᵤᵀ Cᵤ pᵤ
//! ```
//!
//! where `Yᵤ` are the factors of the items the user touched. [`RowSolver::solve`] runs a few
//! conjugate-gradient steps on that system starting from the current `x`, as the `implicit`
//! library does (Takács et al. 2011): the trainer calls it for every user and item each
//! iteration, and the browser calls [`fold_in`] to turn a person's likes into a user vector
//! without retraining. One implementation serves both.
//!
//! Confidence convention: `conf > 0` is a positive preference (`p = 1`) with confidence
//! `conf`; `conf < 0` is a negative preference (`p = 0`, e.g. a dislike) with confidence
//! `-conf`. Confidences should be at least 1.

use crate::linalg::{axpy, dot, matvec_sym};

/// Whether to run kernels through their AVX2-enabled copies. The kernels accumulate in explicit
/// lanes, so the wider copy computes exactly the same bits as the portable one (and as the wasm
/// build), only faster.
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// `YᵀY + λI` for a row-major `rows x dim` factor matrix.
pub fn gramian(factors: &[f32], dim: usize, reg: f32) -> Vec<f32> {
    gramian_finish(vec![gramian_partial(factors, dim)], dim, reg)
}

/// The upper triangle of `YᵀY` for a block of rows. Blocks can be computed in parallel and combined
/// with [`gramian_finish`] (the trainer does; summing blocks in a fixed order keeps it deterministic).
pub fn gramian_partial(factors: &[f32], dim: usize) -> Vec<f32> {
    assert!(dim > 0 && factors.len().is_multiple_of(dim), "factor matrix is not rows x {dim}");
    let mut g = vec![0f32; dim * dim];
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked by has_avx2).
        unsafe { gramian_accumulate_avx2(factors, dim, &mut g) };
        return g;
    }
    gramian_accumulate(factors, dim, &mut g);
    g
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gramian_accumulate_avx2(factors: &[f32], dim: usize, g: &mut [f32]) {
    gramian_accumulate(factors, dim, g)
}

#[inline(always)]
fn gramian_accumulate(factors: &[f32], dim: usize, g: &mut [f32]) {
    // Row by row, contiguous axpy's over the upper triangle vectorise well.
    for y in factors.chunks_exact(dim) {
        for i in 0..dim {
            axpy(y[i], &y[i..], &mut g[i * dim + i..(i + 1) * dim]);
        }
    }
}

/// Sums partial upper triangles in order, mirrors them and adds `reg` to the diagonal.
pub fn gramian_finish(partials: Vec<Vec<f32>>, dim: usize, reg: f32) -> Vec<f32> {
    let mut parts = partials.into_iter();
    let mut g = parts.next().unwrap_or_else(|| vec![0f32; dim * dim]);
    for p in parts {
        g.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    for i in 0..dim {
        g[i * dim + i] += reg;
        for j in 0..i {
            g[i * dim + j] = g[j * dim + i];
        }
    }
    g
}

/// Solves single ALS rows against fixed factors of the other side.
#[derive(Clone, Copy)]
pub struct RowSolver<'a> {
    /// The other side's factors, row-major `n x dim`.
    pub factors: &'a [f32],
    /// `YᵀY + λI` of `factors` (see [`gramian`]).
    pub gram: &'a [f32],
    pub dim: usize,
}

/// Work vectors for [`RowSolver::solve`], reused across rows to avoid allocation.
#[derive(Clone, Debug)]
pub struct CgScratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

impl CgScratch {
    pub fn new(dim: usize) -> Self {
        Self { r: vec![0.0; dim], p: vec![0.0; dim], ap: vec![0.0; dim] }
    }
}

/// Residual norm² below which CG stops: the row is solved to f32 precision.
const CONVERGED: f32 = 1e-20;

impl<'a> RowSolver<'a> {
    pub fn new(factors: &'a [f32], gram: &'a [f32], dim: usize) -> Self {
        assert_eq!(gram.len(), dim * dim, "gramian must be dim x dim");
        assert_eq!(factors.len() % dim, 0, "factor matrix is not rows x {dim}");
        Self { factors, gram, dim }
    }

    #[inline(always)]
    fn row(&self, index: u32) -> &[f32] {
        let start = index as usize * self.dim;
        &self.factors[start..start + self.dim]
    }

    /// Improves `x` with up to `cg_steps` conjugate-gradient steps on the row's normal
    /// equations. `cols[j]` indexes a row of `factors`; `conf[j]` is its signed confidence.
    pub fn solve(&self, cols: &[u32], conf: &[f32], x: &mut [f32], cg_steps: usize, s: &mut CgScratch) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked by has_avx2).
            return unsafe { self.solve_avx2(cols, conf, x, cg_steps, s) };
        }
        self.solve_portable(cols, conf, x, cg_steps, s)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn solve_avx2(&self, cols: &[u32], conf: &[f32], x: &mut [f32], cg_steps: usize, s: &mut CgScratch) {
        self.solve_portable(cols, conf, x, cg_steps, s)
    }

    #[inline(always)]
    fn solve_portable(&self, cols: &[u32], conf: &[f32], x: &mut [f32], cg_steps: usize, s: &mut CgScratch) {
        debug_assert_eq!(cols.len(), conf.len());
        if cols.is_empty() {
            // b = 0, so the exact solution is zero; CG would only approach it.
            x.fill(0.0);
            return;
        }
        let CgScratch { r, p, ap } = s;
        // r = b − A x, with A x expanded as YᵀY x + Σ (c−1)(yᵢ·x) yᵢ.
        matvec_sym(self.gram, x, r);
        r.iter_mut().for_each(|v| *v = -*v);
        for (&col, &c) in cols.iter().zip(conf) {
            let y = self.row(col);
            let yx = dot(y, x);
            let coef = if c > 0.0 { c - (c - 1.0) * yx } else { (c + 1.0) * yx };
            axpy(coef, y, r);
        }
        p.copy_from_slice(r);
        let mut rs_old = dot(r, r);
        if rs_old < CONVERGED {
            return;
        }
        for _ in 0..cg_steps {
            matvec_sym(self.gram, p, ap);
            for (&col, &c) in cols.iter().zip(conf) {
                let y = self.row(col);
                axpy((c.abs() - 1.0) * dot(y, p), y, ap);
            }
            let step = rs_old / dot(p, ap);
            axpy(step, p, x);
            axpy(-step, ap, r);
            let rs_new = dot(r, r);
            if rs_new < CONVERGED {
                break;
            }
            let beta = rs_new / rs_old;
            for (pi, ri) in p.iter_mut().zip(r.iter()) {
                *pi = ri + beta * *pi;
            }
            rs_old = rs_new;
        }
    }
}

/// Convenience wrapper over [`RowSolver::solve`] for one row.
pub fn solve_row_cg(solver: &RowSolver<'_>, cols: &[u32], conf: &[f32], x: &mut [f32], cg_steps: usize) {
    let mut scratch = CgScratch::new(solver.dim);
    solver.solve(cols, conf, x, cg_steps, &mut scratch);
}

/// A user vector for a new set of interactions, computed from scratch (`x = 0`) with enough
/// CG steps to converge (`dim` steps solve the system exactly in exact arithmetic).
pub fn fold_in(solver: &RowSolver<'_>, cols: &[u32], conf: &[f32]) -> Vec<f32> {
    let mut x = vec![0f32; solver.dim];
    solve_row_cg(solver, cols, conf, &mut x, solver.dim.max(3));
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random factors in [-0.5, 0.5).
    fn factors(rows: usize, dim: usize) -> Vec<f32> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        (0..rows * dim)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    /// Dense `A` and `b` of the row's normal equations, for checking CG against.
    fn normal_equations(y: &[f32], dim: usize, reg: f32, cols: &[u32], conf: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let mut a: Vec<f64> = gramian(y, dim, reg).iter().map(|&v| v as f64).collect();
        let mut b = vec![0f64; dim];
        for (&col, &c) in cols.iter().zip(conf) {
            let row = &y[col as usize * dim..(col as usize + 1) * dim];
            let (cabs, pref) = (c.abs() as f64, if c > 0.0 { 1.0 } else { 0.0 });
            for i in 0..dim {
                b[i] += cabs * pref * row[i] as f64;
                for j in 0..dim {
                    a[i * dim + j] += (cabs - 1.0) * row[i] as f64 * row[j] as f64;
                }
            }
        }
        (a, b)
    }

    #[test]
    fn fold_in_solves_the_normal_equations() {
        let (n, dim) = (50, 8);
        let y = factors(n, dim);
        let gram = gramian(&y, dim, 0.1);
        let cols = [3u32, 7, 19, 42];
        let conf = [2.0f32, 41.0, 5.0, -3.0];
        let x = fold_in(&RowSolver::new(&y, &gram, dim), &cols, &conf);
        let (a, b) = normal_equations(&y, dim, 0.1, &cols, &conf);
        for i in 0..dim {
            let ax: f64 = (0..dim).map(|j| a[i * dim + j] * x[j] as f64).sum();
            assert!((ax - b[i]).abs() < 1e-3, "row {i}: Ax={ax} b={}", b[i]);
        }
    }

    #[test]
    fn more_cg_steps_never_increase_the_residual_much() {
        let (n, dim) = (30, 6);
        let y = factors(n, dim);
        let gram = gramian(&y, dim, 0.05);
        let solver = RowSolver::new(&y, &gram, dim);
        let (cols, conf) = ([1u32, 2, 3, 9], [3.0f32; 4]);
        let (a, b) = normal_equations(&y, dim, 0.05, &cols, &conf);
        let residual = |x: &[f32]| -> f64 {
            (0..dim)
                .map(|i| {
                    let ax: f64 = (0..dim).map(|j| a[i * dim + j] * x[j] as f64).sum();
                    (ax - b[i]).powi(2)
                })
                .sum()
        };
        let mut x = vec![0f32; dim];
        let start = residual(&x);
        solve_row_cg(&solver, &cols, &conf, &mut x, 3);
        let after3 = residual(&x);
        solve_row_cg(&solver, &cols, &conf, &mut x, 3);
        assert!(after3 < start * 0.5, "3 steps: {after3} vs start {start}");
        assert!(residual(&x) <= after3 * 1.01 + 1e-9);
    }

    #[test]
    fn gramian_is_symmetric_with_regularised_diagonal() {
        let dim = 5;
        let y = factors(7, dim);
        let g = gramian(&y, dim, 0.5);
        for i in 0..dim {
            for j in 0..dim {
                let want: f32 =
                    (0..7).map(|r| y[r * dim + i] * y[r * dim + j]).sum::<f32>() + if i == j { 0.5 } else { 0.0 };
                assert!((g[i * dim + j] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn empty_row_stays_at_zero() {
        let dim = 4;
        let y = factors(10, dim);
        let gram = gramian(&y, dim, 0.1);
        assert_eq!(fold_in(&RowSolver::new(&y, &gram, dim), &[], &[]), vec![0.0; dim]);
    }
}
