//! Implicit ALS (Hu, Koren & Volinsky 2008) with the conjugate-gradient row solver of
//! Takács et al. (2011), as in the `implicit` library. Each half-iteration solves every row in
//! parallel with the same [`nook_core::RowSolver`] the browser uses for fold-in.

use super::{Factors, ModelEntry};
use crate::matrix::Csr;
use crate::rng::Rng;
use nook_core::foldin::CgScratch;
use nook_core::{gramian_finish, gramian_partial, RowSolver};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const MODEL: ModelEntry = ModelEntry {
    id: "als",
    about: "implicit alternating least squares (conjugate-gradient rows, as in `implicit`)",
    default: true,
    needs_text: false,
    fit: |t| Ok(t.final_als()),
    load: |l| Ok(Arc::new(Factors::load(l.dir, "als", l.info.n_users, l.info.n_items, false)?)),
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlsConfig {
    pub factors: usize,
    pub iterations: usize,
    /// λ added to the diagonal of the normal equations.
    pub regularization: f32,
    /// Confidence of an observed interaction is `1 + alpha * r`.
    pub alpha: f32,
    /// Conjugate-gradient steps per row and half-iteration (warm-started).
    pub cg_steps: usize,
    pub seed: u64,
}

impl Default for AlsConfig {
    fn default() -> Self {
        Self { factors: 64, iterations: 15, regularization: 10.0, alpha: 0.5, cg_steps: 3, seed: 42 }
    }
}

/// [`fit`] with a progress bar.
pub fn fit_with_progress(train: &Csr, cfg: &AlsConfig) -> Factors {
    let bar = crate::progress::bar(cfg.iterations as u64, "als");
    let factors = fit(train, cfg, |it| bar.set_position(it as u64));
    bar.finish_and_clear();
    factors
}

/// Fits ALS to a user x item matrix of interaction strengths `r` (1 for a positive).
pub fn fit(user_items: &Csr, cfg: &AlsConfig, mut on_iteration: impl FnMut(usize)) -> Factors {
    let dim = cfg.factors;
    let confidence = user_items.map_values(|r| 1.0 + cfg.alpha * r);
    let item_users = confidence.transpose();
    let (n_users, n_items) = (user_items.rows(), user_items.cols);
    let mut rng = Rng::stream(cfg.seed, "als-init");
    let mut users: Vec<f32> = (0..n_users * dim).map(|_| rng.f32() * 0.01).collect();
    let mut items: Vec<f32> = (0..n_items * dim).map(|_| rng.f32() * 0.01).collect();
    for iteration in 0..cfg.iterations {
        solve_rows(&mut users, &confidence, &items, dim, cfg);
        solve_rows(&mut items, &item_users, &users, dim, cfg);
        on_iteration(iteration + 1);
    }
    Factors { name: "als".into(), dim, users, items, item_bias: None, item_known: None }
}

/// Rows per block of the parallel gramian; fixed (not per thread) so results do not depend on
/// the thread count.
const GRAM_BLOCK: usize = 2048;

/// `YᵀY + λI`, blocks of rows in parallel, summed in block order.
pub fn gramian(y: &[f32], dim: usize, reg: f32) -> Vec<f32> {
    let partials: Vec<Vec<f32>> = y.par_chunks(GRAM_BLOCK * dim).map(|block| gramian_partial(block, dim)).collect();
    gramian_finish(partials, dim, reg)
}

/// One half-iteration: every row of `x` against the fixed factors `y`.
fn solve_rows(x: &mut [f32], rows: &Csr, y: &[f32], dim: usize, cfg: &AlsConfig) {
    let gram = gramian(y, dim, cfg.regularization);
    let solver = RowSolver::new(y, &gram, dim);
    x.par_chunks_mut(dim).with_min_len(32).enumerate().for_each_init(
        || CgScratch::new(dim),
        |scratch, (r, xr)| {
            let (cols, conf) = rows.row(r);
            solver.solve(cols, conf, xr, cfg.cg_steps, scratch);
        },
    );
}
