//! Ridge regression from text vectors to collaborative factors, so items nobody has interacted
//! with get a collaborative part predicted from their text.

use crate::rng::Rng;

/// A linear map `x ↦ [x, 1] W` from `in_dim` to `out_dim` (the last row of `W` is the bias).
#[derive(Clone, Debug)]
pub struct RidgeMap {
    pub in_dim: usize,
    pub out_dim: usize,
    pub weights: Vec<f64>,
    pub lambda: f64,
}

impl RidgeMap {
    /// Fits on rows `x` (`n x in_dim`) → `y` (`n x out_dim`) with penalty `lambda`.
    pub fn fit(x: &[f32], y: &[f32], in_dim: usize, out_dim: usize, lambda: f64) -> Self {
        let n = x.len() / in_dim;
        let p = in_dim + 1;
        let mut xtx = vec![0f64; p * p];
        let mut xty = vec![0f64; p * out_dim];
        let mut row = vec![0f64; p];
        for r in 0..n {
            row[..in_dim].iter_mut().zip(&x[r * in_dim..(r + 1) * in_dim]).for_each(|(a, &b)| *a = b as f64);
            row[in_dim] = 1.0;
            for i in 0..p {
                let ri = row[i];
                for j in i..p {
                    xtx[i * p + j] += ri * row[j];
                }
                for k in 0..out_dim {
                    xty[i * out_dim + k] += ri * y[r * out_dim + k] as f64;
                }
            }
        }
        for i in 0..p {
            for j in 0..i {
                xtx[i * p + j] = xtx[j * p + i];
            }
            if i < in_dim {
                xtx[i * p + i] += lambda;
            } else {
                xtx[i * p + i] += 1e-9; // keep the bias row positive definite
            }
        }
        let weights = cholesky_solve(&mut xtx, p, &xty, out_dim);
        Self { in_dim, out_dim, weights, lambda }
    }

    /// Picks `lambda` from `grid` by squared error on a seeded 10% of the rows, then refits on all.
    pub fn fit_tuned(x: &[f32], y: &[f32], in_dim: usize, out_dim: usize, grid: &[f64], seed: u64) -> Self {
        let n = x.len() / in_dim;
        let mut order: Vec<usize> = (0..n).collect();
        Rng::stream(seed, "ridge-holdout").shuffle(&mut order);
        let held = (n / 10).max(1).min(n.saturating_sub(1));
        let (test_rows, train_rows) = order.split_at(held);
        let gather = |rows: &[usize], m: &[f32], d: usize| -> Vec<f32> {
            rows.iter().flat_map(|&r| m[r * d..(r + 1) * d].iter().copied()).collect()
        };
        let (xtr, ytr) = (gather(train_rows, x, in_dim), gather(train_rows, y, out_dim));
        let (xte, yte) = (gather(test_rows, x, in_dim), gather(test_rows, y, out_dim));
        let mut best = (f64::INFINITY, grid.first().copied().unwrap_or(1.0));
        for &lambda in grid {
            let map = Self::fit(&xtr, &ytr, in_dim, out_dim, lambda);
            let pred = map.apply(&xte);
            let err: f64 = pred.iter().zip(&yte).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
            tracing::debug!("ridge lambda {lambda}: held-out squared error {err:.4}");
            if err < best.0 {
                best = (err, lambda);
            }
        }
        tracing::info!("text→cf ridge map: lambda {} chosen on {held} held-out items", best.1);
        Self::fit(x, y, in_dim, out_dim, best.1)
    }

    /// Predicts for rows `x` (`n x in_dim`).
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let n = x.len() / self.in_dim;
        let mut out = vec![0f32; n * self.out_dim];
        for r in 0..n {
            let xr = &x[r * self.in_dim..(r + 1) * self.in_dim];
            for k in 0..self.out_dim {
                let mut v = self.weights[self.in_dim * self.out_dim + k];
                for (i, &xi) in xr.iter().enumerate() {
                    v += xi as f64 * self.weights[i * self.out_dim + k];
                }
                out[r * self.out_dim + k] = v as f32;
            }
        }
        out
    }
}

/// Solves `A X = B` for symmetric positive definite `A` (`p x p`, overwritten) and `B` (`p x m`).
fn cholesky_solve(a: &mut [f64], p: usize, b: &[f64], m: usize) -> Vec<f64> {
    for j in 0..p {
        let mut d = a[j * p + j];
        for k in 0..j {
            d -= a[j * p + k] * a[j * p + k];
        }
        let d = d.max(1e-12).sqrt();
        a[j * p + j] = d;
        for i in j + 1..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= a[i * p + k] * a[j * p + k];
            }
            a[i * p + j] = s / d;
        }
    }
    let mut x = b.to_vec();
    for col in 0..m {
        for i in 0..p {
            let mut s = x[i * m + col];
            for k in 0..i {
                s -= a[i * p + k] * x[k * m + col];
            }
            x[i * m + col] = s / a[i * p + i];
        }
        for i in (0..p).rev() {
            let mut s = x[i * m + col];
            for k in i + 1..p {
                s -= a[k * p + i] * x[k * m + col];
            }
            x[i * m + col] = s / a[i * p + i];
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_linear_map() {
        // y = [2 x0 - x1 + 0.5, x1]
        let x: Vec<f32> = (0..40).flat_map(|i| [i as f32 * 0.1, (i % 7) as f32]).collect();
        let y: Vec<f32> = x.chunks(2).flat_map(|r| [2.0 * r[0] - r[1] + 0.5, r[1]]).collect();
        let map = RidgeMap::fit(&x, &y, 2, 2, 1e-6);
        let pred = map.apply(&[1.0, 3.0]);
        assert!((pred[0] - (2.0 - 3.0 + 0.5)).abs() < 1e-3 && (pred[1] - 3.0).abs() < 1e-3, "{pred:?}");
    }
}
