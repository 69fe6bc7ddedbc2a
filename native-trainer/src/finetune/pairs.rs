//! Training pairs for contrastive fine-tuning: items consumed close together by the same person.

use crate::rng::Rng;
use crate::split::Split;
use nook_core::linalg::dot;
use rayon::prelude::*;
use std::collections::HashSet;

/// `(anchor, positive)` item pairs: for each user's training positives in time order, every item
/// with each of the next `window` items. Frequent co-consumption appears more often.
pub fn co_consumed(split: &Split, window: usize) -> Vec<(u32, u32)> {
    let by_user = split.train_sequences();
    let mut pairs = Vec::new();
    for items in &by_user {
        for (k, &a) in items.iter().enumerate() {
            for &b in items.iter().skip(k + 1).take(window) {
                pairs.push((a, b));
            }
        }
    }
    pairs
}

/// Draws batches of pairs with no item twice in a batch (a repeated item would be a false negative
/// for in-batch contrast), reshuffling at the end of each pass.
pub struct Batcher {
    pairs: Vec<(u32, u32)>,
    cursor: usize,
    rng: Rng,
}

impl Batcher {
    pub fn new(pairs: Vec<(u32, u32)>, rng: Rng) -> Self {
        let mut b = Self { pairs, cursor: 0, rng };
        b.rng.shuffle(&mut b.pairs);
        b
    }

    /// Everything needed to continue exactly where this batcher is: the current pair order,
    /// the position in it, and the generator's state.
    pub fn checkpoint(&self) -> BatcherState {
        BatcherState { order: self.pairs.clone(), cursor: self.cursor, rng: self.rng.state() }
    }

    pub fn restore(state: BatcherState) -> Self {
        Self { pairs: state.order, cursor: state.cursor, rng: Rng::from_state(state.rng) }
    }

    /// The next batch of up to `size` pairs.
    pub fn next_batch(&mut self, size: usize) -> Vec<(u32, u32)> {
        let mut batch: Vec<(u32, u32)> = Vec::with_capacity(size);
        let mut tries = 0;
        while batch.len() < size && tries < self.pairs.len() {
            if self.cursor == self.pairs.len() {
                self.cursor = 0;
                self.rng.shuffle(&mut self.pairs);
            }
            let (a, b) = self.pairs[self.cursor];
            self.cursor += 1;
            tries += 1;
            if a != b && !batch.iter().any(|&(x, y)| x == a || x == b || y == a || y == b) {
                batch.push((a, b));
            }
        }
        batch
    }
}

/// A saved [`Batcher`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatcherState {
    pub order: Vec<(u32, u32)>,
    pub cursor: usize,
    pub rng: u64,
}

/// Hard negatives for contrast: for an anchor, an item whose text reads like it (one of its
/// nearest by the frozen encoder) that nobody consumed close to it. Neighbours are found when an
/// anchor is drawn, not for every item up front: a run draws steps × batch anchors, far fewer than
/// a large catalogue's items, and all-pairs search there would cost items² products.
pub struct HardNegatives<'a> {
    /// The frozen encoder's item vectors, `dim` wide (unit rows).
    vectors: &'a [f32],
    dim: usize,
    /// Items a negative may be: those fine-tuning trains on (never one it leaves out).
    pool: Vec<u32>,
    /// Nearest items an anchor's negative is drawn from.
    k: usize,
    together: HashSet<(u32, u32)>,
}

impl<'a> HardNegatives<'a> {
    /// Negatives among the items of `pairs`, each drawn from an anchor's `k` nearest.
    pub fn new(vectors: &'a [f32], dim: usize, pairs: &[(u32, u32)], k: usize) -> Self {
        let mut pool: Vec<u32> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
        pool.sort_unstable();
        pool.dedup();
        let together = pairs.iter().flat_map(|&(a, b)| [(a, b), (b, a)]).collect();
        Self { vectors, dim, pool, k, together }
    }

    /// The `k` pool items nearest to `item` (itself excluded), nearest first.
    pub fn neighbours(&self, item: u32) -> Vec<u32> {
        let row = |i: u32| &self.vectors[i as usize * self.dim..(i as usize + 1) * self.dim];
        let mut scored: Vec<(f32, u32)> =
            self.pool.iter().filter(|&&j| j != item).map(|&j| (dot(row(item), row(j)), j)).collect();
        let k = self.k.min(scored.len());
        if k == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(k);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().map(|(_, j)| j).collect()
    }

    /// One negative per pair of `batch`: a text neighbour of the anchor not consumed close to it
    /// and not in the batch; `None` where the anchor has none left.
    pub fn pick(&self, batch: &[(u32, u32)], rng: &mut Rng) -> Vec<Option<u32>> {
        let neighbours: Vec<Vec<u32>> = batch.par_iter().map(|&(a, _)| self.neighbours(a)).collect();
        let mut used: HashSet<u32> = batch.iter().flat_map(|&(a, b)| [a, b]).collect();
        batch
            .iter()
            .zip(neighbours)
            .map(|(&(a, _), near)| {
                let free: Vec<u32> =
                    near.into_iter().filter(|j| !used.contains(j) && !self.together.contains(&(a, *j))).collect();
                let pick = (!free.is_empty()).then(|| free[rng.below(free.len())]);
                if let Some(j) = pick {
                    used.insert(j);
                }
                pick
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_negatives_are_text_neighbours_never_consumed_together_nor_in_the_batch() {
        // Six items on an arc: each one's nearest are the next along it. Item 5 is in no pair.
        let vectors: Vec<f32> = (0..6).flat_map(|i| [(i as f32 * 0.3).cos(), (i as f32 * 0.3).sin()]).collect();
        let hard = HardNegatives::new(&vectors, 2, &[(0, 1), (2, 3), (4, 2)], 2);
        assert_eq!(hard.neighbours(0), [1, 2]);
        assert_eq!(hard.neighbours(4), [3, 2], "an item fine-tuning leaves out is never a negative");
        let mut rng = Rng::new(7);
        for _ in 0..20 {
            // 1 was consumed right after 0: only 2 is left.
            assert_eq!(hard.pick(&[(0, 3)], &mut rng), [Some(2)]);
        }
        // 2 is in the batch (a positive there): nothing left for 0.
        assert_eq!(hard.pick(&[(0, 3), (2, 4)], &mut rng)[0], None);
    }
}
