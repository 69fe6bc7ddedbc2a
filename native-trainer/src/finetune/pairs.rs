//! Training pairs for contrastive fine-tuning: items consumed close together by the same person.

use crate::rng::Rng;
use crate::split::Split;

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
