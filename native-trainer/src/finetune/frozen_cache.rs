//! The frozen blocks' output for the texts fine-tuning will meet again.
//!
//! With only the top blocks training, the blocks below compute the same hidden states for a text
//! every time it is drawn: their weights never change. Pairs are drawn by co-consumption, so
//! popular items recur (on movielens-small 150 steps of 32 pairs draw 9,600 texts, about 3,300 of
//! them distinct). The batcher is deterministic, so the plan reads its future draws from a copy
//! of it: the texts drawn more than once, most-drawn first, are kept within a memory budget, and
//! the frozen blocks run only for the rest. A text's rows do not depend on the other texts in its
//! batch, only on the width the batch is padded to (the attention's sums group by it), so rows are
//! reused at the width they were computed at; padded rows never reach the loss or a gradient. A
//! run with the cache trains the same weights, to the bit, as one without.

use super::pairs::Batcher;
use anyhow::Result;
use candle_core::Tensor;
use nook_core::encoder::TextEncoder;
use std::collections::HashMap;

pub struct FrozenCache {
    /// The first trained block's position: the frozen blocks are those before it.
    until: usize,
    hidden: usize,
    /// Whether each item's rows are worth keeping (planned), by item index.
    keep: Vec<bool>,
    /// Kept items' hidden rows, `[tokens × hidden]` for their own tokens only, and the batch
    /// width they were computed at.
    rows: HashMap<u32, (usize, Vec<f32>)>,
    /// Texts whose frozen rows came from the cache.
    pub reused: usize,
}

impl FrozenCache {
    /// Plans what to keep over the next `steps` batches of `size` pairs that `batcher` will draw
    /// (read from a copy): the items drawn at least twice, most-drawn first, while their rows
    /// (`tokens[item]` × `hidden` floats) fit in `budget` bytes. `until`: the first trained block.
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
        let mut draws = vec![0u32; tokens.len()];
        for _ in 0..steps {
            for (a, b) in future.next_batch(size) {
                draws[a as usize] += 1;
                draws[b as usize] += 1;
            }
        }
        let mut order: Vec<usize> = (0..tokens.len()).filter(|&i| draws[i] >= 2).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(draws[i]), i));
        let mut keep = vec![false; tokens.len()];
        let mut used = 0;
        for i in order {
            let bytes = tokens[i] * hidden * std::mem::size_of::<f32>();
            if used + bytes > budget {
                break;
            }
            used += bytes;
            keep[i] = true;
        }
        tracing::debug!(
            "frozen-block cache: {} of {} drawn items kept ({:.0} MB)",
            keep.iter().filter(|&&k| k).count(),
            draws.iter().filter(|&&d| d > 0).count(),
            used as f64 / 1e6
        );
        Self { until, hidden, keep, rows: HashMap::new(), reused: 0 }
    }

    /// Sentence embeddings of `items` (their token ids in `ids`), differentiable in the trained
    /// blocks: [`TextEncoder::forward_from`], with the frozen blocks run only for texts not kept.
    pub fn forward(&mut self, encoder: &TextEncoder, ids: &[Vec<u32>], items: &[u32]) -> Result<Tensor> {
        let seqs: Vec<Vec<u32>> = items.iter().map(|&i| ids[i as usize].clone()).collect();
        let batch = encoder.batch(&seqs)?;
        let (n, width) = batch.ids.dims2()?;
        let h = self.hidden;

        // The frozen blocks for the texts not kept at this width, padded to it, as one batch.
        let kept = |k: usize| self.rows.get(&items[k]).filter(|(w, _)| *w == width).map(|(_, r)| r);
        let missing: Vec<usize> = (0..n).filter(|&k| kept(k).is_none()).collect();
        let mut fresh: HashMap<usize, Vec<f32>> = HashMap::new();
        if !missing.is_empty() {
            let miss_seqs: Vec<Vec<u32>> = missing.iter().map(|&k| seqs[k].clone()).collect();
            let out = encoder.frozen_hidden(&encoder.batch_to(&miss_seqs, width)?, self.until)?;
            let flat = out.flatten_all()?.to_vec1::<f32>()?;
            for (j, &k) in missing.iter().enumerate() {
                let own = flat[j * width * h..(j * width + seqs[k].len()) * h].to_vec();
                let item = items[k];
                if self.keep[item as usize] {
                    self.rows.insert(item, (width, own));
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
                None => &self.rows.get(item).expect("a text not computed now was kept").1,
            };
            x[k * width * h..k * width * h + own.len()].copy_from_slice(own);
        }
        let x = Tensor::from_vec(x, (n, width, h), batch.ids.device())?;
        Ok(encoder.forward_trained(&x, &batch, self.until)?)
    }
}
