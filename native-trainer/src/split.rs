//! Honest splits: per-user time-ordered train/valid/test, leave-last-one, and a cold-item hold-out.
//!
//! Order of operations: positives are selected (`rating >= min_rating`; data without ratings is all
//! positive); a seeded `cold_fraction` of the items that have positives is held out with *all* their
//! interactions (the cold-item split); each user's remaining positives are ordered by time and cut.
//! Valid/test pairs whose item never occurs in training cannot be ranked by any model and are dropped
//! (and counted), so warm metrics measure ranking, not catalogue gaps.
//!
//! With `refit` (the default), settings are chosen on the validation part and the final models are
//! then fitted on train + validation ([`Split::final_fit`]): the test measures models that have
//! seen each person's history up to the test period, as a deployed model would, and the items a
//! person consumed in the validation period are excluded from their test ranking like any other
//! history. The test part is never used for fitting or choosing.

use crate::data::{Dataset, Interaction};
use crate::matrix::Csr;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Per user, oldest interactions train, newest test (ratios from `--ratios`).
    Temporal,
    /// Per user, the newest positive is test, the one before it valid.
    LeaveLastOne,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitConfig {
    pub protocol: Protocol,
    /// Train, valid, test fractions (temporal protocol).
    pub ratios: [f64; 3],
    /// Fraction of items held out entirely for the cold-item split.
    pub cold_fraction: f64,
    /// Ratings at or above this are positives.
    pub min_rating: f32,
    pub seed: u64,
    /// Fit the final models on train + validation once settings are chosen (files written before
    /// this field existed were fitted on train alone).
    #[serde(default)]
    pub refit: bool,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            protocol: Protocol::Temporal,
            ratios: [0.8, 0.1, 0.1],
            cold_fraction: 0.1,
            min_rating: 3.5,
            seed: 42,
            refit: true,
        }
    }
}

impl SplitConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        let sum: f64 = self.ratios.iter().sum();
        anyhow::ensure!(
            self.ratios.iter().all(|r| (0.0..=1.0).contains(r)) && (sum - 1.0).abs() < 1e-6 && self.ratios[0] > 0.0,
            "--ratios must be three fractions summing to 1 with a positive train part, got {:?}",
            self.ratios
        );
        anyhow::ensure!(
            (0.0..1.0).contains(&self.cold_fraction),
            "--cold-fraction must be in [0, 1), got {}",
            self.cold_fraction
        );
        anyhow::ensure!(self.min_rating.is_finite(), "--min-rating must be a finite number");
        Ok(())
    }
}

/// The result of splitting one data set.
#[derive(Clone, Debug)]
pub struct Split {
    pub config: SplitConfig,
    pub n_users: usize,
    pub n_items: usize,
    pub train: Vec<Interaction>,
    pub valid: Vec<Interaction>,
    pub test: Vec<Interaction>,
    /// Every positive of a cold item.
    pub cold: Vec<Interaction>,
    pub cold_items: Vec<u32>,
    /// Valid/test positives dropped because their item has no training positive.
    pub dropped_unseen: usize,
}

impl Split {
    pub fn new(data: &Dataset, config: &SplitConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let n_users = data.users.len();
        let n_items = data.items.len();
        let positives: Vec<(usize, Interaction)> = data
            .interactions
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, i)| i.rating.is_none_or(|r| r >= config.min_rating))
            .collect();
        anyhow::ensure!(
            !positives.is_empty(),
            "no positives: no rating reaches --min-rating {} in {}",
            config.min_rating,
            data.name
        );

        let cold_items = pick_cold_items(n_items, &positives, config);
        let mut is_cold = vec![false; n_items];
        cold_items.iter().for_each(|&i| is_cold[i as usize] = true);

        let mut per_user: Vec<Vec<(usize, Interaction)>> = vec![Vec::new(); n_users];
        let mut cold = Vec::new();
        for (order, inter) in positives {
            if is_cold[inter.item as usize] {
                cold.push(inter);
            } else {
                per_user[inter.user as usize].push((order, inter));
            }
        }
        if !data.has_timestamps() {
            tracing::warn!("{}: no timestamps; users' positives are ordered by a seeded shuffle", data.name);
        }
        let mut order_rng = Rng::stream(config.seed, "split-order");
        let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
        for events in &mut per_user {
            if data.has_timestamps() {
                events.sort_by_key(|(order, i)| (i.timestamp.unwrap_or(i64::MIN), *order));
            } else {
                order_rng.shuffle(events);
            }
            let (n_train, n_valid) = cut_points(events.len(), config);
            for (k, (_, inter)) in events.iter().enumerate() {
                match k {
                    k if k < n_train => train.push(*inter),
                    k if k < n_train + n_valid => valid.push(*inter),
                    _ => test.push(*inter),
                }
            }
        }

        let mut seen = vec![false; n_items];
        train.iter().for_each(|i| seen[i.item as usize] = true);
        let before = valid.len() + test.len();
        valid.retain(|i| seen[i.item as usize]);
        test.retain(|i| seen[i.item as usize]);
        let dropped_unseen = before - valid.len() - test.len();
        Ok(Self { config: config.clone(), n_users, n_items, train, valid, test, cold, cold_items, dropped_unseen })
    }

    /// The split the final models are fitted and tested on: with `refit`, each user's validation
    /// positives join their training positives (after them, keeping time order) and the
    /// validation part is empty; without, the split itself.
    pub fn final_fit(&self) -> Split {
        if !self.config.refit {
            return self.clone();
        }
        let mut per_user: Vec<Vec<Interaction>> = vec![Vec::new(); self.n_users];
        self.train.iter().chain(&self.valid).for_each(|i| per_user[i.user as usize].push(*i));
        Split { train: per_user.concat(), valid: Vec::new(), ..self.clone() }
    }

    /// Training positives as a user x item matrix of ones.
    pub fn train_matrix(&self) -> Csr {
        Csr::from_triples(self.n_users, self.n_items, self.train.iter().map(|i| (i.user, i.item, 1.0)))
    }

    /// Each user's training positives in time order (oldest first), as the browser lists likes.
    pub fn train_sequences(&self) -> Vec<Vec<u32>> {
        let mut seqs = vec![Vec::new(); self.n_users];
        // `train` holds each user's positives in time order (see `Split::new`).
        self.train.iter().for_each(|i| seqs[i.user as usize].push(i.item));
        seqs
    }

    /// Items with at least one training positive: the warm candidates.
    pub fn train_items(&self) -> Vec<bool> {
        let mut seen = vec![false; self.n_items];
        self.train.iter().for_each(|i| seen[i.item as usize] = true);
        seen
    }
}

/// Number of train and valid events for a user with `n` positives.
fn cut_points(n: usize, config: &SplitConfig) -> (usize, usize) {
    match config.protocol {
        Protocol::Temporal => {
            let mut n_valid = (n as f64 * config.ratios[1]).round() as usize;
            let mut n_test = (n as f64 * config.ratios[2]).round() as usize;
            // Keep at least one training event: shrink valid first, then test.
            while n_valid + n_test >= n && n_valid + n_test > 0 {
                if n_valid > 0 {
                    n_valid -= 1;
                } else {
                    n_test -= 1;
                }
            }
            (n - n_valid - n_test, n_valid)
        }
        Protocol::LeaveLastOne => match n {
            0 | 1 => (n, 0),
            2 => (1, 0),
            _ => (n - 2, 1),
        },
    }
}

fn pick_cold_items(n_items: usize, positives: &[(usize, Interaction)], config: &SplitConfig) -> Vec<u32> {
    let mut has_positive = vec![false; n_items];
    positives.iter().for_each(|(_, i)| has_positive[i.item as usize] = true);
    let mut candidates: Vec<u32> = (0..n_items as u32).filter(|&i| has_positive[i as usize]).collect();
    let count = (candidates.len() as f64 * config.cold_fraction).round() as usize;
    Rng::stream(config.seed, "cold-items").shuffle(&mut candidates);
    let mut cold = candidates[..count].to_vec();
    cold.sort_unstable();
    cold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_points_follow_the_ratios_and_keep_a_training_event() {
        let cfg = SplitConfig::default();
        assert_eq!(cut_points(20, &cfg), (16, 2));
        assert_eq!(cut_points(10, &cfg), (8, 1));
        assert_eq!(cut_points(1, &cfg), (1, 0));
        assert_eq!(cut_points(5, &cfg), (3, 1));
        let llo = SplitConfig { protocol: Protocol::LeaveLastOne, ..cfg };
        assert_eq!(cut_points(5, &llo), (3, 1));
        assert_eq!(cut_points(2, &llo), (1, 0));
    }
}
