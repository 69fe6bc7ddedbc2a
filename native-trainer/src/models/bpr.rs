//! Bayesian Personalised Ranking (Rendle et al. 2009) by SGD over sampled (user, positive,
//! negative) triples, with an item bias. Single-threaded so a seed fixes the result exactly.

use super::{Factors, ModelEntry};
use crate::matrix::Csr;
use crate::progress;
use crate::rng::Rng;
use nook_core::linalg::dot;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const MODEL: ModelEntry = ModelEntry {
    id: "bpr",
    about: "Bayesian personalised ranking (SGD over sampled triples, item bias)",
    default: true,
    needs_text: false,
    fit: |t| {
        let cfg = t.cfg().bpr.clone();
        Ok(Arc::new(t.timed("bpr", |t| fit_with_progress(t.final_train(), &cfg))))
    },
    load: |l| Ok(Arc::new(Factors::load(l.dir, "bpr", l.info.n_users, l.info.n_items, true)?)),
};

/// [`fit`] with a progress bar.
pub fn fit_with_progress(train: &Csr, cfg: &BprConfig) -> Factors {
    let bar = progress::bar(cfg.epochs as u64, "bpr");
    let factors = fit(train, cfg, |epoch, correct| {
        bar.set_position(epoch as u64);
        bar.set_message(format!("ranked right {:.1}%", 100.0 * correct));
    });
    bar.finish_and_clear();
    factors
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BprConfig {
    pub factors: usize,
    /// Passes over the data; each samples as many triples as there are positives.
    pub epochs: usize,
    pub learning_rate: f32,
    pub regularization: f32,
    pub seed: u64,
}

impl Default for BprConfig {
    fn default() -> Self {
        Self { factors: 64, epochs: 100, learning_rate: 0.05, regularization: 0.01, seed: 42 }
    }
}

/// Resampling attempts for a negative the user has not touched before giving up on the triple.
const NEGATIVE_TRIES: usize = 16;

/// Fits BPR; `on_epoch` receives the epoch number and the fraction of triples already ranked right.
pub fn fit(user_items: &Csr, cfg: &BprConfig, mut on_epoch: impl FnMut(usize, f32)) -> Factors {
    let dim = cfg.factors;
    let (n_users, n_items) = (user_items.rows(), user_items.cols);
    let mut rng = Rng::stream(cfg.seed, "bpr-init");
    let mut users: Vec<f32> = (0..n_users * dim).map(|_| (rng.f32() - 0.5) / dim as f32).collect();
    let mut items: Vec<f32> = (0..n_items * dim).map(|_| (rng.f32() - 0.5) / dim as f32).collect();
    let mut bias = vec![0f32; n_items];
    let owner: Vec<u32> = (0..n_users).flat_map(|u| std::iter::repeat_n(u as u32, user_items.row_len(u))).collect();
    let nnz = user_items.nnz();
    let (lr, reg) = (cfg.learning_rate, cfg.regularization);
    let mut sampler = Rng::stream(cfg.seed, "bpr-samples");
    let mut grad_u = vec![0f32; dim];
    for epoch in 0..cfg.epochs {
        let mut correct = 0usize;
        for _ in 0..nnz {
            let k = sampler.below(nnz);
            let (u, i) = (owner[k] as usize, user_items.indices[k] as usize);
            let Some(j) =
                (0..NEGATIVE_TRIES).map(|_| sampler.below(n_items)).find(|&j| !user_items.contains(u, j as u32))
            else {
                continue;
            };
            let (uf, itf, jtf) = (u * dim, i * dim, j * dim);
            let x = dot(&users[uf..uf + dim], &items[itf..itf + dim])
                - dot(&users[uf..uf + dim], &items[jtf..jtf + dim])
                + bias[i]
                - bias[j];
            correct += (x > 0.0) as usize;
            let z = 1.0 / (1.0 + x.exp());
            for f in 0..dim {
                let (wu, hi, hj) = (users[uf + f], items[itf + f], items[jtf + f]);
                grad_u[f] = z * (hi - hj) - reg * wu;
                items[itf + f] += lr * (z * wu - reg * hi);
                items[jtf + f] += lr * (-z * wu - reg * hj);
            }
            for f in 0..dim {
                users[uf + f] += lr * grad_u[f];
            }
            bias[i] += lr * (z - reg * bias[i]);
            bias[j] += lr * (-z - reg * bias[j]);
        }
        on_epoch(epoch + 1, correct as f32 / nnz.max(1) as f32);
    }
    Factors { name: "bpr".into(), dim, users, items, item_bias: Some(bias), item_known: None }
}
