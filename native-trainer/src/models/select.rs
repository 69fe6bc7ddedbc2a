//! Choosing a model's setting on the validation split: fit each setting on the split's training
//! part, score the validation positives, keep the best NDCG@10. The final model is then fitted
//! on [`Split::final_fit`] with that setting.

use super::Scorer;
use crate::eval::{ndcg, EvalSet, Target};
use crate::matrix::Csr;
use crate::split::Split;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// The setting chosen and validation NDCG@10 of every setting tried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice<T> {
    pub best: T,
    pub tried: Vec<(T, f64)>,
}

impl<T: Debug> Choice<T> {
    /// "λ 300.0 (validation NDCG@10 0.0712; 4 settings tried)".
    pub fn describe(&self, what: &str) -> String {
        if self.tried.is_empty() {
            return format!("{what} {:?} (not chosen: no validation part)", self.best);
        }
        let best = self.tried.iter().map(|t| t.1).fold(f64::NAN, f64::max);
        format!("{what} {:?} (validation NDCG@10 {best:.4}; {} settings tried)", self.best, self.tried.len())
    }
}

/// Fits `fit(train, history, setting)` for every setting of `grid` on the training part of
/// `split` and keeps the best on its validation part (the first setting when there is none).
pub fn on_validation<T: Copy + Debug, S: Scorer>(
    split: &Split,
    model: &str,
    grid: &[T],
    fit: impl Fn(&Csr, &[Vec<u32>], T) -> S,
) -> Choice<T> {
    assert!(!grid.is_empty(), "a grid of settings");
    let train = split.train_matrix();
    let history = split.train_sequences();
    let valid = EvalSet::new(split, &train, Target::Valid);
    if valid.users.is_empty() || grid.len() == 1 {
        if grid.len() > 1 {
            tracing::warn!("{model}: no validation users; using the first setting {:?}", grid[0]);
        }
        return Choice { best: grid[0], tried: Vec::new() };
    }
    let bar = crate::progress::bar(grid.len() as u64, &format!("{model} settings"));
    let mut tried = Vec::new();
    for &setting in grid {
        let scorer = fit(&train, &history, setting);
        let ndcg = ndcg(&scorer, &valid, 10);
        tracing::debug!("{model}: {setting:?}: validation ndcg@10 {ndcg:.4}");
        tried.push((setting, ndcg));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let best = tried.iter().max_by(|a, b| a.1.total_cmp(&b.1)).expect("grid is not empty").0;
    let choice = Choice { best, tried };
    tracing::info!("{model}: {}", choice.describe("chose"));
    choice
}
