//! The order of a person's likes: a table of item-to-item rules, either sequential rules counted
//! from what people liked soon after each item (Ludewig & Jannach 2018, "Evaluation of
//! session-based recommendation algorithms") or transitions learnt by a ridge regression from a
//! person's recent likes to their next (SLIT, Choi et al. 2021) — the trainer chooses on
//! validation; both are scored the same way. Each item keeps its strongest rules `i → j`; a
//! person's newest likes lend their rules to the items that tend to follow them:
//!
//! ```text
//! r(j)     = Σ over the `recent` newest likes i (newest first, m = 0, 1, …)  decay^m · rule(i → j)
//! score(j) = history and query parts (see crate::blend)  +  weight · r(j) / lead_r
//! ```
//!
//! `lead_r` is how far the rules' best items stand above the mean (the mean of the
//! [`crate::blend::LEADERS`] best minus the mean, over every item: the rules reach few items, so
//! all of them are cheap to look at), the same calibration the history and query parts get, so
//! `weight` 1 lifts the rules' best as far as the history's best. The part is sparse: it touches
//! only the items the rules reach, and a ranking backend adds it to the linear parts it scores
//! (the GPU to its best candidates plus these items, which holds the exact top K).

use crate::blend::LEADERS;
use crate::error::{NookError, Result};
use serde::{Deserialize, Serialize};

/// How the order of likes counts in a score (absent: it does not; see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    /// The rules' part against the history's, each calibrated to its lead.
    pub weight: f32,
    /// Weight of each older like relative to the one after it (in `[0, 1]`).
    pub decay: f32,
    /// How many of the newest likes lend their rules.
    pub recent: u32,
    /// The rules' weight in "more like this" ([`crate::Catalog::similar`], one item as the only
    /// like), chosen on the item-to-item benchmark's validation part; absent: `weight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similar_weight: Option<f32>,
}

/// Most likes [`Sequence::recent`] may reach (real ones are about 100).
pub const MAX_RECENT: u32 = 10_000;

impl Sequence {
    /// Refuses settings a trainer never writes.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(0.0..=crate::recommend::MAX_WEIGHT).contains(&self.weight) {
            return Err(format!(
                "scoring.sequence.weight is {}, outside 0..={}",
                self.weight,
                crate::recommend::MAX_WEIGHT
            ));
        }
        if let Some(w) = self.similar_weight.filter(|w| !(0.0..=crate::recommend::MAX_WEIGHT).contains(w)) {
            return Err(format!(
                "scoring.sequence.similar_weight is {w}, outside 0..={}",
                crate::recommend::MAX_WEIGHT
            ));
        }
        if !(0.0..=1.0).contains(&self.decay) {
            return Err(format!("scoring.sequence.decay is {}, outside 0..=1", self.decay));
        }
        if !(1..=MAX_RECENT).contains(&self.recent) {
            return Err(format!("scoring.sequence.recent is {}, outside 1..={MAX_RECENT}", self.recent));
        }
        Ok(())
    }
}

/// Each item's `k` strongest rules: the items that followed it and how strongly. Rows are padded
/// with [`Rules::PAD`] (weight 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    k: usize,
    index: Vec<u32>,
    weights: Vec<f32>,
}

impl Rules {
    /// Index of an empty slot.
    pub const PAD: u32 = u32::MAX;

    /// Checks the table for `n_items` items: `k` slots per item, every index an item or
    /// [`Rules::PAD`], every weight finite and not negative (a tampered table must not make a
    /// score NaN or reach outside the catalogue).
    pub fn new(n_items: usize, k: usize, index: Vec<u32>, weights: Vec<f32>) -> Result<Self> {
        if k == 0 || index.len() != n_items * k || weights.len() != index.len() {
            return Err(NookError::data(format!(
                "rules: {} indices and {} weights for {n_items} items of {k} rules",
                index.len(),
                weights.len()
            )));
        }
        if let Some(bad) = index.iter().find(|&&j| j != Self::PAD && j as usize >= n_items) {
            return Err(NookError::data(format!("rules: item index {bad} out of range (0..{n_items})")));
        }
        if let Some(bad) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return Err(NookError::data(format!("rules: weight {bad} is not a finite non-negative number")));
        }
        Ok(Self { k, index, weights })
    }

    /// Rules per item.
    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n_items(&self) -> usize {
        self.index.len() / self.k
    }

    /// Every item's rule targets, row-major (`n_items x k`, [`Rules::PAD`] in empty slots).
    pub fn index(&self) -> &[u32] {
        &self.index
    }

    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// `r(j)` for every item into `out` (see the module docs): `likes` oldest first.
    pub fn score_history(&self, likes: &[u32], decay: f32, recent: usize, out: &mut [f32]) {
        out.fill(0.0);
        let mut weight = 1.0;
        for &i in likes.iter().rev().take(recent) {
            let row = i as usize * self.k..(i as usize + 1) * self.k;
            for (&j, &w) in self.index[row.clone()].iter().zip(&self.weights[row]) {
                if j != Self::PAD {
                    out[j as usize] += weight * w;
                }
            }
            weight *= decay;
        }
    }

    /// The rules' calibrated part for `likes` under `seq`: `(item, weight · r(j) / lead_r)` for
    /// every item the rules reach, by item index. Empty when the weight is 0, there are no likes
    /// or the rules say nothing (every `r` equal).
    pub fn part(&self, seq: &Sequence, likes: &[u32]) -> Vec<(u32, f32)> {
        if seq.weight == 0.0 || likes.is_empty() {
            return Vec::new();
        }
        let mut r = vec![0f32; self.n_items()];
        self.score_history(likes, seq.decay, seq.recent as usize, &mut r);
        let reached: Vec<(u32, f32)> =
            r.iter().enumerate().filter(|(_, &v)| v != 0.0).map(|(j, &v)| (j as u32, v)).collect();
        let scale = seq.weight * inverse_lead(&reached, r.len());
        if scale == 0.0 {
            return Vec::new();
        }
        reached.into_iter().map(|(j, v)| (j, scale * v)).collect()
    }
}

/// `1 / lead` of `r` over `n` items, given the items it `reached` (the rest score 0), in item
/// order; 0 when nothing stands out.
fn inverse_lead(reached: &[(u32, f32)], n: usize) -> f32 {
    if n == 0 {
        return 0.0;
    }
    // Items the rules do not reach add 0 to the sum: summing the reached ones in item order gives
    // the same bits as summing every item.
    let mean = reached.iter().map(|&(_, v)| v as f64).sum::<f64>() / n as f64;
    // As in `crate::blend`: a tiny catalogue leads with its better half. Items the rules do not
    // reach score 0 and fill the rest. The leaders are selected (linear time, not a sort of
    // every reached item: a long history reaches thousands) and then summed best first.
    let leaders = LEADERS.min(n.div_ceil(2));
    let mut best: Vec<f64> = reached.iter().map(|&(_, v)| v as f64).collect();
    let top = leaders.min(best.len());
    if top > 0 && top < best.len() {
        best.select_nth_unstable_by(top - 1, |a, b| b.total_cmp(a));
    }
    best.truncate(top);
    best.sort_unstable_by(|a, b| b.total_cmp(a));
    let lead = best.iter().sum::<f64>() / leaders as f64 - mean;
    if lead > 1e-12 && lead.is_finite() {
        (1.0 / lead) as f32
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two items' rules in a catalogue of 4: 0 → 1 (1.0), 0 → 2 (1.5); 1 → 2 (1.0).
    fn rules() -> Rules {
        let p = Rules::PAD;
        Rules::new(4, 2, vec![2, 1, 2, p, p, p, p, p], vec![1.5, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]).unwrap()
    }

    #[test]
    fn the_newest_like_leads_and_older_ones_decay() {
        let mut out = vec![0f32; 4];
        rules().score_history(&[0, 1], 0.5, 100, &mut out);
        assert_eq!(out, vec![0.0, 0.5, 1.0 + 0.75, 0.0]);
        rules().score_history(&[0, 1], 0.5, 1, &mut out);
        assert_eq!(out, vec![0.0, 0.0, 1.0, 0.0], "only the newest like");
    }

    #[test]
    fn the_part_is_calibrated_to_its_lead_and_sparse() {
        let seq = Sequence { weight: 2.0, decay: 0.5, recent: 100, similar_weight: None };
        // r = [0, 0.5, 1.75, 0]: mean 0.5625, the 2 leaders (half of 4) average 1.125.
        let part = rules().part(&seq, &[0, 1]);
        let scale = 2.0 / (1.125f64 - 0.5625) as f32;
        assert_eq!(part, vec![(1, scale * 0.5), (2, scale * 1.75)]);
        assert!(rules().part(&Sequence { weight: 0.0, ..seq }, &[0, 1]).is_empty());
        assert!(rules().part(&seq, &[]).is_empty());
        assert!(rules().part(&seq, &[3]).is_empty(), "item 3 has no rules");
    }

    /// Selecting the leaders gives the same bits as sorting every item (how the lead was first
    /// computed), on a catalogue where a long history reaches thousands of items.
    #[test]
    fn the_lead_by_selection_is_the_lead_by_sorting_every_item() {
        let n = 5000;
        let rules = crate::synthetic::rules(n, 50, 3);
        for likes in [1usize, 7, 100] {
            let history: Vec<u32> = (0..likes as u32).map(|i| (i * 37) % n as u32).collect();
            let mut r = vec![0f32; n];
            rules.score_history(&history, 0.9, 100, &mut r);
            let mean = r.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let mut sorted: Vec<f64> = r.iter().filter(|&&v| v != 0.0).map(|&v| v as f64).collect();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            let expected = (1.0 / (sorted.iter().take(LEADERS).sum::<f64>() / LEADERS as f64 - mean)) as f32;
            let reached: Vec<(u32, f32)> =
                r.iter().enumerate().filter(|(_, &v)| v != 0.0).map(|(j, &v)| (j as u32, v)).collect();
            assert_eq!(inverse_lead(&reached, n).to_bits(), expected.to_bits(), "{likes} likes");
        }
    }

    #[test]
    fn tampered_tables_and_settings_are_refused() {
        assert!(Rules::new(4, 2, vec![9; 8], vec![1.0; 8]).unwrap_err().to_string().contains("out of range"));
        assert!(Rules::new(4, 2, vec![1; 8], vec![f32::NAN; 8]).unwrap_err().to_string().contains("NaN"));
        assert!(Rules::new(4, 2, vec![1; 8], vec![-1.0; 8]).is_err());
        assert!(Rules::new(4, 2, vec![1; 7], vec![1.0; 7]).is_err());
        let ok = Sequence { weight: 1.0, decay: 0.9, recent: 100, similar_weight: Some(0.5) };
        assert!(ok.check().is_ok());
        assert!(Sequence { decay: 1.5, ..ok }.check().is_err());
        assert!(Sequence { recent: 0, ..ok }.check().is_err());
        assert!(Sequence { weight: f32::NAN, ..ok }.check().is_err());
        assert!(Sequence { similar_weight: Some(-1.0), ..ok }.check().is_err());
    }
}
