//! Recommendation models: popularity, implicit ALS, BPR, and a seeded random baseline.

pub mod als;
pub mod bpr;
pub mod hybrid;
pub mod pca;
pub mod ridge;

pub use als::AlsConfig;
pub use bpr::BprConfig;

use crate::matrix::Csr;
use nook_core::score_items;

/// Something that scores every item for a user.
pub trait Scorer: Sync {
    /// Short stable id used in reports (`pop`, `als`, `bpr`, `random`).
    fn name(&self) -> &str;
    /// Writes one score per item into `out` (length = number of items).
    fn score(&self, user: u32, out: &mut [f32]);
}

/// Most-popular baseline: an item's score is its number of training positives.
#[derive(Clone, Debug)]
pub struct Popularity {
    pub counts: Vec<f32>,
}

impl Popularity {
    pub fn fit(user_items: &Csr) -> Self {
        let mut counts = vec![0f32; user_items.cols];
        user_items.indices.iter().for_each(|&i| counts[i as usize] += 1.0);
        Self { counts }
    }
}

impl Scorer for Popularity {
    fn name(&self) -> &str {
        "pop"
    }
    fn score(&self, _user: u32, out: &mut [f32]) {
        out.copy_from_slice(&self.counts);
    }
}

/// Latent factors of users and items, as learned by ALS or BPR.
#[derive(Clone, Debug)]
pub struct Factors {
    pub name: String,
    pub dim: usize,
    /// Row-major `users x dim`.
    pub users: Vec<f32>,
    /// Row-major `items x dim`.
    pub items: Vec<f32>,
    pub item_bias: Option<Vec<f32>>,
    /// For factors fitted elsewhere (Spark): the items that had a row. Those keep their factors
    /// even without training interactions here; `None` = only this split's training items are
    /// fitted.
    pub item_known: Option<Vec<bool>>,
}

impl Factors {
    pub fn user(&self, user: u32) -> &[f32] {
        &self.users[user as usize * self.dim..(user as usize + 1) * self.dim]
    }
    pub fn n_items(&self) -> usize {
        self.items.len() / self.dim
    }
}

impl Scorer for Factors {
    fn name(&self) -> &str {
        &self.name
    }
    fn score(&self, user: u32, out: &mut [f32]) {
        score_items(&self.items, self.dim, self.user(user), self.item_bias.as_deref(), out);
    }
}

/// Uniformly random scores, fixed by seed: the floor every model must beat.
#[derive(Clone, Debug)]
pub struct RandomScores {
    pub seed: u64,
}

impl Scorer for RandomScores {
    fn name(&self) -> &str {
        "random"
    }
    fn score(&self, user: u32, out: &mut [f32]) {
        let mut rng = crate::rng::Rng::new(self.seed ^ (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        out.iter_mut().for_each(|o| *o = rng.f32());
    }
}
