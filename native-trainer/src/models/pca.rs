//! Principal component analysis of embeddings (cyclic Jacobi eigen-decomposition of the
//! covariance, in f64): the "reduce" step of fusion.

use nook_core::Projection;

/// The `k` leading principal components of row-major `n x dim` vectors.
pub fn fit(rows: &[f32], dim: usize, k: usize) -> Projection {
    let n = (rows.len() / dim).max(1);
    let mut mean = vec![0f64; dim];
    for r in rows.chunks_exact(dim) {
        mean.iter_mut().zip(r).for_each(|(m, &x)| *m += x as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut cov = vec![0f64; dim * dim];
    let mut centred = vec![0f64; dim];
    for r in rows.chunks_exact(dim) {
        centred.iter_mut().zip(r.iter().zip(&mean)).for_each(|(c, (&x, m))| *c = x as f64 - m);
        for i in 0..dim {
            let ci = centred[i];
            for j in i..dim {
                cov[i * dim + j] += ci * centred[j];
            }
        }
    }
    for i in 0..dim {
        for j in 0..i {
            cov[i * dim + j] = cov[j * dim + i];
        }
    }
    let (values, vectors) = jacobi_eigen(cov, dim);
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let k = k.min(dim);
    let mut components = Vec::with_capacity(k * dim);
    for &c in &order[..k] {
        components.extend((0..dim).map(|i| vectors[i * dim + c] as f32));
    }
    Projection::new(mean.iter().map(|&m| m as f32).collect(), components, k).expect("shapes are consistent")
}

/// Eigenvalues and eigenvectors (columns of the returned row-major matrix) of a symmetric matrix.
fn jacobi_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0f64; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    for _sweep in 0..50 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        let scale: f64 = (0..n).map(|i| a[i * n + i].powi(2)).sum::<f64>().max(1e-300);
        if off <= 1e-22 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_direction_of_most_variance() {
        // Points spread along (1, 1)/√2 with a little noise across it.
        let rows: Vec<f32> = (0..200)
            .flat_map(|i| {
                let t = (i as f32 - 100.0) * 0.05;
                let noise = if i % 2 == 0 { 0.05 } else { -0.05 };
                [t + noise + 3.0, t - noise - 1.0]
            })
            .collect();
        let p = fit(&rows, 2, 1);
        let c = &p.components;
        assert!((c[0].abs() - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-3, "{c:?}");
        assert!((c[0] - c[1]).abs() < 1e-3, "{c:?}");
        let n = (rows.len() / 2) as f32;
        let mean0: f32 = rows.iter().step_by(2).sum::<f32>() / n;
        assert!((p.mean[0] - mean0).abs() < 1e-4, "{} vs {mean0}", p.mean[0]);
    }

    #[test]
    fn full_rank_projection_preserves_distances() {
        let rows: Vec<f32> = (0..60).map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.1).collect();
        let p = fit(&rows, 3, 3);
        let z = p.apply_rows(&rows);
        let d = |v: &[f32], a: usize, b: usize, dim: usize| -> f32 {
            (0..dim).map(|k| (v[a * dim + k] - v[b * dim + k]).powi(2)).sum::<f32>()
        };
        for (a, b) in [(0, 1), (3, 17), (5, 19)] {
            assert!((d(&rows, a, b, 3) - d(&z, a, b, 3)).abs() < 1e-3);
        }
    }
}
