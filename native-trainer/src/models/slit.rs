//! `slit`, learned item-to-item transitions (SLIT, the transition half of SLIST: Choi et al. 2021,
//! "Session-aware Linear Item-Item Models for Session-based Recommendation"): a ridge regression,
//! in closed form, from what a person liked so far to what they liked next.
//!
//! Every training like but a person's last is one sample. Its source is the person's likes up to
//! it, newest first, each `decay` times the one after it (the [`SOURCE`] newest); its target the
//! next `window` likes, the `s`-th weighing `1 / s`. With `S` and `T` those rows,
//!
//! ```text
//! B = (SᵀS + λI)⁻¹ SᵀT
//! ```
//!
//! and a person's scores are their own source row times `B`: exactly how nook-core scores
//! sequential rules (`r(j) = Σ decay^m · rule(i_m → j)` over the newest likes), so each item keeps
//! its [`RULES`] largest positive weights as a rules table the bundle and the browser score the
//! same way. Where [`super::seq_rules`] counts what followed an item, this learns it: an item's
//! weights are fitted jointly with every other item's, so a like explained by an older one does
//! not count twice. Dense like EASE over the items with training likes (two `m²` f32 matrices:
//! ~250 MB at movielens-small's 5.6k items), the inverse and one `m³` product per setting.
//!
//! The window, decay and λ are chosen on the validation split.

use super::item_item::{rows, ScoresHistory, WithHistory};
use super::select::{self, Choice};
use super::{Fitted, ModelEntry, Scorer};
use crate::store::read_json;
use anyhow::{Context, Result};
use nook_core::sequence::Rules;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

pub const ID: &str = "slit";
/// Weights kept per item.
const RULES: usize = 100;
/// Most recent likes a sample's source (and a person's scores) reads.
pub const SOURCE: usize = 30;
/// Most items taking part (as EASE's: the matrices are m² f32 each).
pub const MAX_ITEMS: usize = super::ease::MAX_ITEMS;
/// Rows of `B` formed at a time.
const BLOCK_ROWS: usize = 512;

/// One setting of the regression.
#[derive(Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Transitions {
    /// How many later likes a sample's target holds.
    pub window: u32,
    /// Weight of each older like in a source relative to the one after it.
    pub decay: f32,
    /// Ridge penalty.
    pub lambda: f32,
}

impl std::fmt::Debug for Transitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "window {} decay {} λ {}", self.window, self.decay, self.lambda)
    }
}

/// Settings tried on the validation split: the next like or the next few as targets, the source
/// decaying fast or slowly, λ in the range where both MovieLens sets peak.
pub const GRID: [Transitions; 12] = [
    Transitions { window: 1, decay: 0.8, lambda: 100.0 },
    Transitions { window: 1, decay: 0.8, lambda: 300.0 },
    Transitions { window: 1, decay: 0.9, lambda: 100.0 },
    Transitions { window: 1, decay: 0.9, lambda: 300.0 },
    Transitions { window: 3, decay: 0.8, lambda: 100.0 },
    Transitions { window: 3, decay: 0.8, lambda: 300.0 },
    Transitions { window: 3, decay: 0.9, lambda: 100.0 },
    Transitions { window: 3, decay: 0.9, lambda: 300.0 },
    Transitions { window: 10, decay: 0.8, lambda: 100.0 },
    Transitions { window: 10, decay: 0.8, lambda: 300.0 },
    Transitions { window: 10, decay: 0.9, lambda: 100.0 },
    Transitions { window: 10, decay: 0.9, lambda: 300.0 },
];

pub const MODEL: ModelEntry = ModelEntry {
    id: ID,
    about: "learned transitions (SLIT): a closed-form ridge regression from a person's recent likes to their next (window, decay, λ chosen on validation)",
    default: true,
    needs_text: false,
    fit: |t| Ok(t.slit()? as Arc<dyn Fitted>),
    load: |l| Ok(Arc::new(Slit::load(l.dir, l.info.n_items)?)),
};

/// Chooses the setting on the validation split, then fits on `final_sequences`.
pub fn fit_chosen(split: &crate::split::Split, final_sequences: &[Vec<u32>]) -> Result<Slit> {
    let choice = select::on_validation(split, ID, &GRID, |_, history, setting| WithHistory {
        model: Slit::fit(history, split.n_items, setting).expect("SᵀS + λI is positive definite"),
        history: history.to_vec(),
    });
    Ok(Slit { choice: choice.clone(), ..Slit::fit(final_sequences, split.n_items, choice.best)? })
}

pub struct Slit {
    /// Each item's largest positive weights, as nook-core's rules table.
    pub next: Rules,
    pub choice: Choice<Transitions>,
}

/// One sample's source or target: items (positions among the items taking part) and weights.
type Row = Vec<(u32, f32)>;

impl Slit {
    /// Fits the regression to each person's likes in time order (oldest first), over at most
    /// [`MAX_ITEMS`] items.
    pub fn fit(sequences: &[Vec<u32>], n_items: usize, setting: Transitions) -> Result<Self> {
        Self::fit_at_most(sequences, n_items, setting, MAX_ITEMS)
    }

    /// [`Slit::fit`] over the `max_items` most liked items when more have training likes (the
    /// others neither lend nor receive weight).
    pub fn fit_at_most(sequences: &[Vec<u32>], n_items: usize, setting: Transitions, max_items: usize) -> Result<Self> {
        let (items, position) = taking_part(sequences, n_items, max_items);
        let m = items.len();
        let (sources, targets) = samples(sequences, &position, setting);
        // Each item's samples (sample, its weight there): SᵀS and SᵀT are built a row per item.
        let mut by_item: Vec<Vec<(u32, f32)>> = vec![Vec::new(); m];
        for (r, source) in sources.iter().enumerate() {
            source.iter().for_each(|&(p, w)| by_item[p as usize].push((r as u32, w)));
        }
        let mut gram = vec![0f32; m * m];
        let mut cross = vec![0f32; m * m];
        gram.par_chunks_mut(m.max(1)).zip(cross.par_chunks_mut(m.max(1))).enumerate().for_each(|(p, (g, c))| {
            for &(r, w) in &by_item[p] {
                sources[r as usize].iter().for_each(|&(q, v)| g[q as usize] += w * v);
                targets[r as usize].iter().for_each(|&(q, v)| c[q as usize] += w * v);
            }
            g[p] += setting.lambda;
        });
        drop((by_item, sources, targets));
        crate::dense::spd_inverse(&mut gram, m).map_err(anyhow::Error::msg).context("inverting SᵀS + λI")?;
        // B = P · SᵀT a block of rows at a time, each row kept as its largest positive weights:
        // two m × m matrices in memory, not three.
        let k = RULES.min(n_items.saturating_sub(1)).max(1);
        let mut table: Vec<(Vec<u32>, Vec<f32>)> = vec![(vec![Rules::PAD; k], vec![0.0; k]); n_items];
        for (b, p_rows) in gram.chunks(BLOCK_ROWS * m.max(1)).enumerate() {
            let block = crate::dense::product(p_rows, &cross, p_rows.len() / m, m, m);
            let rows: Vec<(Vec<u32>, Vec<f32>)> = block
                .par_chunks(m)
                .map(|row| {
                    let positive =
                        row.iter().enumerate().filter(|(_, &w)| w > 0.0).map(|(q, &w)| (items[q], w)).collect();
                    rows::strongest(positive, k)
                })
                .collect();
            for (r, row) in rows.into_iter().enumerate() {
                table[items[b * BLOCK_ROWS + r] as usize] = row;
            }
        }
        Ok(Self { next: rows::collect(table, k), choice: Choice { best: setting, tried: Vec::new() } })
    }

    /// How the bundle's scoring states these weights' use, at `weight` against the history.
    pub fn sequence(&self, weight: f32) -> nook_core::sequence::Sequence {
        nook_core::sequence::Sequence {
            weight,
            decay: self.choice.best.decay,
            recent: SOURCE as u32,
            similar_weight: None,
        }
    }

    pub fn load(dir: &Path, n: usize) -> Result<Self> {
        let choice: Choice<Transitions> = read_json(&dir.join("slit.json"))?;
        let next = rows::read(&dir.join("slit.safetensors"), "next", n)?;
        Ok(Self { next, choice })
    }
}

/// The items with training likes (the `max_items` most liked when more have), and each catalogue
/// item's position among them (`u32::MAX`: not taking part).
fn taking_part(sequences: &[Vec<u32>], n_items: usize, max_items: usize) -> (Vec<u32>, Vec<u32>) {
    let mut counts = vec![0usize; n_items];
    sequences.iter().flatten().for_each(|&i| counts[i as usize] += 1);
    let mut items: Vec<u32> = (0..n_items as u32).filter(|&i| counts[i as usize] > 0).collect();
    if items.len() > max_items {
        tracing::warn!(
            "{ID}: {} items have training likes; keeping the {max_items} most liked (the regression is dense: \
             memory grows as the square of the items, time as the cube)",
            items.len()
        );
        items.sort_unstable_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
        items.truncate(max_items);
        items.sort_unstable();
    }
    let mut position = vec![u32::MAX; n_items];
    items.iter().enumerate().for_each(|(p, &i)| position[i as usize] = p as u32);
    (items, position)
}

/// Every sample's source and target rows (a person's last like has no target and is no sample).
fn samples(sequences: &[Vec<u32>], position: &[u32], setting: Transitions) -> (Vec<Row>, Vec<Row>) {
    let mut sources = Vec::new();
    let mut targets = Vec::new();
    for seq in sequences {
        // Items not taking part leave the sequence (so they neither lend nor receive weight).
        let seq: Vec<u32> = seq.iter().map(|&i| position[i as usize]).filter(|&p| p != u32::MAX).collect();
        for t in 0..seq.len().saturating_sub(1) {
            let mut weight = 1.0;
            let mut source = Row::new();
            for &p in seq[..=t].iter().rev().take(SOURCE) {
                add(&mut source, p, weight);
                weight *= setting.decay;
            }
            let mut target = Row::new();
            for (s, &p) in seq[t + 1..].iter().take(setting.window as usize).enumerate() {
                add(&mut target, p, 1.0 / (s + 1) as f32);
            }
            sources.push(source);
            targets.push(target);
        }
    }
    (sources, targets)
}

/// Adds `w` to item `p`'s entry of a row (a person may like an item twice).
fn add(row: &mut Row, p: u32, w: f32) {
    match row.iter_mut().find(|e| e.0 == p) {
        Some(e) => e.1 += w,
        None => row.push((p, w)),
    }
}

impl ScoresHistory for Slit {
    fn name(&self) -> &'static str {
        ID
    }

    fn score_history(&self, history: &[u32], out: &mut [f32]) {
        self.next.score_history(history, self.choice.best.decay, SOURCE, out);
    }
}

impl Fitted for Slit {
    fn scorer<'a>(&'a self, history: &'a [Vec<u32>]) -> Box<dyn Scorer + 'a> {
        Box::new(WithHistory { model: self, history })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        // `slit` and `fused-sr` share these files: written once.
        if dir.join("slit.json").exists() {
            return Ok(());
        }
        rows::write(&self.next, &dir.join("slit.safetensors"), "next")?;
        std::fs::write(dir.join("slit.json"), serde_json::to_vec_pretty(&self.choice)?)?;
        Ok(())
    }

    fn notes(&self) -> Option<String> {
        Some(format!(
            "- `slit`: {}, {} weights per item, the {SOURCE} most recent likes\n",
            self.choice.describe("chose"),
            self.next.k()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTING: Transitions = Transitions { window: 1, decay: 0.5, lambda: 1.0 };

    /// Item `i`'s filled slots.
    fn row(rules: &Rules, i: usize) -> Vec<(u32, f32)> {
        let k = rules.k();
        let slots = rules.index()[i * k..(i + 1) * k].iter().zip(&rules.weights()[i * k..(i + 1) * k]);
        slots.filter(|s| *s.0 != Rules::PAD).map(|(&j, &w)| (j, w)).collect()
    }

    /// A weight points forward in time: what people liked after an item leads its row, not what
    /// they liked before it.
    #[test]
    fn transitions_follow_the_order_of_likes() {
        let people: Vec<Vec<u32>> = (0..20).map(|u| if u % 2 == 0 { vec![0, 1, 2] } else { vec![3, 1, 4] }).collect();
        let slit = Slit::fit(&people, 5, SETTING).unwrap();
        let mut out = vec![0f32; 5];
        let best = |out: &[f32]| (0..5).max_by(|&a, &b| out[a].total_cmp(&out[b])).unwrap();
        slit.score_history(&[0], &mut out);
        assert_eq!(best(&out), 1, "1 follows 0: {out:?}");
        assert_eq!((out[0], out[3]), (0.0, 0.0), "nothing leads from 0 back to 0 or to 3: {out:?}");
        // After 0 → 1 people went on to 2, after 3 → 1 to 4: the older like tells them apart.
        slit.score_history(&[0, 1], &mut out);
        assert_eq!(best(&out), 2, "{out:?}");
        slit.score_history(&[3, 1], &mut out);
        assert_eq!(best(&out), 4, "{out:?}");
        slit.score_history(&[2], &mut out);
        assert!(out.iter().all(|&v| v <= 0.0), "nothing follows 2: {out:?}");
    }

    /// Past the item limit, the least liked items neither lend nor receive weight.
    #[test]
    fn past_the_limit_the_least_liked_items_stay_out() {
        let people: Vec<Vec<u32>> = (0..10).map(|u| if u < 9 { vec![0, 1] } else { vec![0, 2, 1] }).collect();
        let all = Slit::fit(&people, 3, SETTING).unwrap();
        assert!(row(&all.next, 0).iter().any(|&(j, w)| j == 2 && w > 0.0), "0 → 2 with every item");
        let two = Slit::fit_at_most(&people, 3, SETTING, 2).unwrap();
        assert!(row(&two.next, 0).iter().all(|&(j, _)| j != 2), "2 is out: {:?}", row(&two.next, 0));
        assert!(row(&two.next, 2).is_empty(), "2 lends nothing");
        assert!(row(&two.next, 0).iter().any(|&(j, w)| j == 1 && w > 0.0), "0 → 1 stays");
    }
}
