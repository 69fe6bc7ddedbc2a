//! `sr`, sequential rules (Ludewig & Jannach 2018, "Evaluation of session-based recommendation
//! algorithms"): what people liked *soon after* an item. Every time a person likes `j` within
//! `window` likes after `i`, the rule `i → j` gains `1 / steps`; a rule's weight is that sum over
//! `(n_i n_j)^α` (the items' like counts), and each item keeps its strongest rules. A person is
//! scored from their most recent likes, newest first, each weighing `decay` times the one after
//! it. The order of likes matters here as it does nowhere else in nook: the collaborative and
//! text models see a history as a set (recency only weighs it).
//!
//! The window, α and decay are chosen on the validation split.

use super::item_item::{rows, ScoresHistory, WithHistory};
use super::select::{self, Choice};
use super::{Fitted, ModelEntry, Scorer};
use crate::store::read_json;
use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

pub const ID: &str = "sr";
/// Rules kept per item.
const RULES: usize = 100;
/// Most recent likes a person is scored from.
pub const RECENT: usize = 100;

/// One setting of the rules.
#[derive(Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// How many later likes an item's rules reach.
    pub window: u32,
    /// Popularity damping of a rule's weight.
    pub alpha: f32,
    /// Weight of each older like relative to the one after it.
    pub decay: f32,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "window {} α {} decay {}", self.window, self.alpha, self.decay)
    }
}

/// Settings tried on the validation split.
pub const GRID: [Rules; 8] = [
    Rules { window: 3, alpha: 0.5, decay: 0.8 },
    Rules { window: 10, alpha: 0.5, decay: 0.8 },
    Rules { window: 10, alpha: 0.3, decay: 0.9 },
    Rules { window: 10, alpha: 0.3, decay: 0.95 },
    Rules { window: 30, alpha: 0.3, decay: 0.95 },
    Rules { window: 30, alpha: 0.3, decay: 0.98 },
    Rules { window: 30, alpha: 0.2, decay: 0.95 },
    Rules { window: 100, alpha: 0.3, decay: 0.98 },
];

pub const MODEL: ModelEntry = ModelEntry {
    id: ID,
    about: "sequential rules: what people liked within a few likes after each of a person's recent likes (window, α, decay chosen on validation)",
    default: true,
    needs_text: false,
    fit: |t| Ok(t.seq_rules()? as Arc<dyn Fitted>),
    load: |l| Ok(Arc::new(SeqRules::load(l.dir, l.info.n_items)?)),
};

/// Chooses the rules' setting on the validation split, then fits them on `final_sequences`.
pub fn fit_chosen(split: &crate::split::Split, final_sequences: &[Vec<u32>]) -> SeqRules {
    let choice = select::on_validation(split, ID, &GRID, |_, history, rules| WithHistory {
        model: SeqRules::fit(history, split.n_items, rules),
        history: history.to_vec(),
    });
    SeqRules { choice: choice.clone(), ..SeqRules::fit(final_sequences, split.n_items, choice.best) }
}

pub struct SeqRules {
    /// Each item's strongest rules: the items that followed it (nook-core's table, which the
    /// browser bundle carries and scores from the same way).
    pub next: nook_core::sequence::Rules,
    pub choice: Choice<Rules>,
}

impl SeqRules {
    /// Rules from each person's likes in time order (oldest first).
    pub fn fit(sequences: &[Vec<u32>], n_items: usize, rules: Rules) -> Self {
        // Where each item was liked (person, position): every rule starts at one of these. Memory
        // is one entry per like whatever the window (listing the rules' contributions instead
        // would take window × likes).
        let mut seen: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n_items];
        for (u, seq) in sequences.iter().enumerate() {
            for (t, &i) in seq.iter().enumerate() {
                seen[i as usize].push((u as u32, t as u32));
            }
        }
        let count: Vec<f32> = seen.iter().map(|s| s.len() as f32).collect();
        let k = RULES.min(n_items.saturating_sub(1)).max(1);
        let damp: Vec<f32> = count.iter().map(|&c| c.max(1.0).powf(rules.alpha)).collect();
        let next: Vec<(Vec<u32>, Vec<f32>)> = seen
            .par_iter()
            .enumerate()
            .map_init(
                || vec![0f32; n_items],
                |acc, (i, places)| {
                    let mut touched = Vec::new();
                    for &(u, t) in places {
                        let later = &sequences[u as usize][t as usize + 1..];
                        for (steps, &j) in later.iter().take(rules.window as usize).enumerate() {
                            if j as usize == i {
                                continue;
                            }
                            if acc[j as usize] == 0.0 {
                                touched.push(j);
                            }
                            acc[j as usize] += 1.0 / (steps + 1) as f32;
                        }
                    }
                    let scored: Vec<(u32, f32)> =
                        touched.iter().map(|&j| (j, acc[j as usize] / (damp[i] * damp[j as usize]))).collect();
                    touched.iter().for_each(|&j| acc[j as usize] = 0.0);
                    rows::strongest(scored, k)
                },
            )
            .collect();
        Self { next: rows::collect(next, k), choice: Choice { best: rules, tried: Vec::new() } }
    }

    pub fn load(dir: &Path, n: usize) -> Result<Self> {
        let choice: Choice<Rules> = read_json(&dir.join("sr.json"))?;
        let next = rows::read(&dir.join("sr.safetensors"), "next", n)?;
        Ok(Self { next, choice })
    }

    /// How the bundle's scoring states these rules' use, at `weight` against the history.
    pub fn sequence(&self, weight: f32) -> nook_core::sequence::Sequence {
        nook_core::sequence::Sequence {
            weight,
            decay: self.choice.best.decay,
            recent: RECENT as u32,
            similar_weight: None,
        }
    }
}

impl ScoresHistory for SeqRules {
    fn name(&self) -> &'static str {
        ID
    }

    fn score_history(&self, history: &[u32], out: &mut [f32]) {
        self.next.score_history(history, self.choice.best.decay, RECENT, out);
    }
}

impl Fitted for SeqRules {
    fn scorer<'a>(&'a self, history: &'a [Vec<u32>]) -> Box<dyn Scorer + 'a> {
        Box::new(WithHistory { model: self, history })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        // `sr` and `fused-sr` share these files: written once.
        if dir.join("sr.json").exists() {
            return Ok(());
        }
        rows::write(&self.next, &dir.join("sr.safetensors"), "next")?;
        std::fs::write(dir.join("sr.json"), serde_json::to_vec_pretty(&self.choice)?)?;
        Ok(())
    }

    fn notes(&self) -> Option<String> {
        Some(format!(
            "- `sr`: {}, {} rules per item, the {RECENT} most recent likes\n",
            self.choice.describe("rules"),
            self.next.k()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule points forward in time, is worth more the closer the two likes are, and a person's
    /// newest like leads their scores.
    #[test]
    fn rules_follow_the_order_of_likes() {
        // Two people: 0 → 1 → 2 and 0 → 2.
        let rules = SeqRules::fit(&[vec![0, 1, 2], vec![0, 2]], 4, Rules { window: 2, alpha: 0.0, decay: 0.5 });
        let mut out = vec![0f32; 4];
        rules.score_history(&[0], &mut out);
        // 0 → 1 once at 1 step; 0 → 2 at 2 steps and at 1 step.
        assert_eq!(out, vec![0.0, 1.0, 1.5, 0.0]);
        rules.score_history(&[2], &mut out);
        assert_eq!(out, vec![0.0; 4], "nothing follows 2");
        // Newest like (1) counts fully, the older one (0) half.
        rules.score_history(&[0, 1], &mut out);
        assert_eq!(out, vec![0.0, 0.5, 1.0 + 0.75, 0.0]);
    }
}
