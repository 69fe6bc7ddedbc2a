//! What the item-item models (`ease`, `rp3b`) share: a person is scored from their history
//! alone, so one scorer pairs such a model with the histories it scores.

use super::Scorer;
use crate::store::{read_tensors, write_tensors};
use anyhow::{Context, Result};
use nook_core::quant::encode_f32;
use nook_core::sequence::Rules;
use std::path::Path;

/// Scores every item for a person from their training items.
pub trait ScoresHistory: Sync {
    fn name(&self) -> &'static str;
    fn score_history(&self, history: &[u32], out: &mut [f32]);
}

impl<T: ScoresHistory> ScoresHistory for &T {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn score_history(&self, history: &[u32], out: &mut [f32]) {
        (**self).score_history(history, out)
    }
}

/// A model with the histories (one per user) it scores: owned while choosing settings, borrowed
/// in [`super::Fitted::scorer`].
pub struct WithHistory<M, H> {
    pub model: M,
    pub history: H,
}

impl<M: ScoresHistory, H: AsRef<[Vec<u32>]> + Sync> Scorer for WithHistory<M, H> {
    fn name(&self) -> &str {
        self.model.name()
    }
    fn score(&self, user: u32, out: &mut [f32]) {
        self.model.score_history(&self.history.as_ref()[user as usize], out);
    }
}

/// Each item's `k` strongest neighbours are kept as nook-core's [`Rules`] (an index and a weight
/// per slot, rows padded with [`Rules::PAD`], weight 0): what `rp3b` and `sr` score from, with the
/// arithmetic the bundle's sequential rules use. These build them and keep them in a model directory.
pub mod rows {
    use super::*;

    /// One item's row from its scored neighbours: the `k` strongest, ties by index (so the result
    /// does not depend on the order they were found in), padded to `k`.
    pub fn strongest(mut scored: Vec<(u32, f32)>, k: usize) -> (Vec<u32>, Vec<f32>) {
        scored.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        let mut index: Vec<u32> = scored.iter().map(|s| s.0).collect();
        let mut weights: Vec<f32> = scored.iter().map(|s| s.1).collect();
        index.resize(k, Rules::PAD);
        weights.resize(k, 0.0);
        (index, weights)
    }

    /// The table from every item's row, in item order.
    pub fn collect(rows: Vec<(Vec<u32>, Vec<f32>)>, k: usize) -> Rules {
        let n = rows.len();
        let (index, weights): (Vec<Vec<u32>>, Vec<Vec<f32>>) = rows.into_iter().unzip();
        Rules::new(n, k, index.concat(), weights.concat()).expect("rows name items of the split, with weights ≥ 0")
    }

    /// Writes the table to `path`: `index_name` and `weights`, indices as f32 (exact below 2²⁴
    /// items), −1 padding a row.
    pub fn write(rules: &Rules, path: &Path, index_name: &str) -> Result<()> {
        let (n, k) = (rules.n_items(), rules.k());
        let idx: Vec<f32> = rules.index().iter().map(|&j| if j == Rules::PAD { -1.0 } else { j as f32 }).collect();
        write_tensors(path, &[encode_f32(index_name, &[n, k], &idx), encode_f32("weights", &[n, k], rules.weights())])
    }

    /// Reads a table [`write`] wrote for `n` items, refusing an index beyond them.
    pub fn read(path: &Path, index_name: &str, n: usize) -> Result<Rules> {
        let (index, weights) = read_tensors(path, |t| {
            let k = t.width(index_name)?;
            Ok((t.f32(index_name, &[n, k])?, t.f32("weights", &[n, k])?))
        })?;
        let k = index.len() / n.max(1);
        let index = index.iter().map(|&j| if j < 0.0 { Rules::PAD } else { j as u32 }).collect();
        Rules::new(n, k, index, weights).with_context(|| format!("{}: {index_name}", path.display()))
    }
}
