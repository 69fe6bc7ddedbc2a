//! The frozen blocks' output for the texts fine-tuning will meet again.
//!
//! With only the top blocks training, the blocks below compute the same hidden states for a text
//! every time it is drawn: their weights never change. Pairs are drawn by co-consumption, so
//! popular items recur (on movielens-small 150 steps of 32 pairs draw 9,600 texts, about 3,300 of
//! them distinct). The batcher is deterministic, so the plan reads its future draws from a copy
//! of it: the texts drawn more than once, most-drawn first, are kept within a memory budget, and
//! the frozen blocks run only for the rest. A text's rows do not depend on the other texts in its
//! batch, only on the width the batch is padded to (the attention's sums group by it), so the plan
//! and the cache go by (item, width): on data with long texts (plot overviews) nearly every batch
//! is as wide as the token limit; with short ones (titles) widths vary and fewer draws repeat.
//! Padded rows never reach the loss or a gradient. A run with the cache trains the same weights,
//! to the bit, as one without.

use super::pairs::Batcher;
use anyhow::Result;
use candle_core::Tensor;
use nook_core::encoder::{TextEncoder, TrainedPass};
use std::collections::{HashMap, HashSet};

pub struct FrozenCache {
    /// The first trained block's position: the frozen blocks are those before it.
    until: usize,
    hidden: usize,
    /// The (item, batch width) pairs whose rows are worth keeping (planned).
    keep: HashSet<(u32, usize)>,
    /// Their hidden rows, `[tokens × hidden]` for the item's own tokens only.
    rows: HashMap<(u32, usize), Vec<f32>>,
    /// Texts whose frozen rows came from the cache.
    pub reused: usize,
}

impl FrozenCache {
    /// Plans what to keep over the next `steps` batches of `size` pairs that `batcher` will draw
    /// (read from a copy): each item at each width its batches will be padded to (the longest of
    /// the batch's `tokens`), where it is drawn at least twice, most-drawn first, while their rows
    /// (`tokens[item]` × `hidden` floats) fit in `budget` bytes. `until`: the first trained block.
    /// (Hard negatives join a batch after the plan: one longer than the pairs widens the batch,
    /// and its texts then miss.)
    pub fn plan(
        batcher: &Batcher,
        size: usize,
        steps: usize,
        tokens: &[usize],
        hidden: usize,
        until: usize,
        budget: usize,
    ) -> Self {
        let mut future = Batcher::restore(batcher.checkpoint());
        let mut draws: HashMap<(u32, usize), u32> = HashMap::new();
        for _ in 0..steps {
            let batch: Vec<u32> = future.next_batch(size).into_iter().flat_map(|(a, b)| [a, b]).collect();
            let width = TextEncoder::padded_width(batch.iter().map(|&i| tokens[i as usize]));
            for item in batch {
                *draws.entry((item, width)).or_default() += 1;
            }
        }
        let mut order: Vec<((u32, usize), u32)> =
            draws.iter().filter(|(_, &n)| n >= 2).map(|(&k, &n)| (k, n)).collect();
        order.sort_by_key(|&(key, n)| (std::cmp::Reverse(n), key));
        let mut keep = HashSet::new();
        let mut used = 0;
        for ((item, width), _) in order {
            let bytes = tokens[item as usize] * hidden * std::mem::size_of::<f32>();
            if used + bytes > budget {
                break;
            }
            used += bytes;
            keep.insert((item, width));
        }
        tracing::debug!(
            "frozen-block cache: {} of {} drawn (item, width) pairs kept ({:.0} MB)",
            keep.len(),
            draws.len(),
            used as f64 / 1e6
        );
        Self { until, hidden, keep, rows: HashMap::new(), reused: 0 }
    }

    /// The training pass over `items` (their token ids in `ids`): [`TextEncoder::train_pass`],
    /// with the frozen blocks run only for texts not kept.
    pub fn pass<'e>(&mut self, encoder: &'e TextEncoder, ids: &[Vec<u32>], items: &[u32]) -> Result<TrainedPass<'e>> {
        let seqs: Vec<Vec<u32>> = items.iter().map(|&i| ids[i as usize].clone()).collect();
        let batch = encoder.batch(&seqs)?;
        let (n, width) = batch.ids.dims2()?;
        let h = self.hidden;

        // The frozen blocks for the texts not kept at this width, padded to it, as one batch.
        let missing: Vec<usize> = (0..n).filter(|&k| !self.rows.contains_key(&(items[k], width))).collect();
        let mut fresh: HashMap<usize, Vec<f32>> = HashMap::new();
        if !missing.is_empty() {
            let miss_seqs: Vec<Vec<u32>> = missing.iter().map(|&k| seqs[k].clone()).collect();
            let out = encoder.frozen_hidden(&encoder.batch_to(&miss_seqs, width)?, self.until)?;
            let flat = out.flatten_all()?.to_vec1::<f32>()?;
            for (j, &k) in missing.iter().enumerate() {
                let own = flat[j * width * h..(j * width + seqs[k].len()) * h].to_vec();
                let key = (items[k], width);
                if self.keep.contains(&key) {
                    self.rows.insert(key, own);
                } else {
                    fresh.insert(k, own);
                }
            }
        }
        self.reused += n - missing.len();

        // Every text's rows at the batch's width; padded rows stay zero (masked out downstream).
        let mut x = vec![0f32; n * width * h];
        for (k, item) in items.iter().enumerate() {
            let own = match fresh.get(&k) {
                Some(own) => own,
                None => self.rows.get(&(*item, width)).expect("a text not computed now was kept"),
            };
            x[k * width * h..k * width * h + own.len()].copy_from_slice(own);
        }
        let x = Tensor::from_vec(x, (n, width, h), batch.ids.device())?;
        Ok(encoder.train_pass_over(&x, &batch, self.until)?)
    }
}
