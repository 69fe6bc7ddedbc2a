//! EASE^R (Steck 2019): a dense item-item weight matrix in closed form,
//! `B = I − P · diag(1/diag P)` with `P = (XᵀX + λI)⁻¹` and a zero diagonal; a person's scores
//! are the sum of the rows of their training items. λ is chosen on the validation split.
//!
//! Only items with training positives take part (the others have empty columns and would score
//! zero), at most [`MAX_ITEMS`] of them. Memory is dense: `m²` f32 for `m` such items, 124 MB on
//! movielens-small (5,573 items), 11 MB on MovieLens 100k; the inverse is
//! [`crate::dense::spd_inverse`] (2.6 s at 5.6k items, ~27 s at 9k on 2 cores).

use super::item_item::{ScoresHistory, WithHistory};
use super::select::{self, Choice};
use super::{Fitted, ModelEntry, Scorer};
use crate::matrix::Csr;
use crate::store::{read_json, read_tensors, write_tensors};
use anyhow::{Context, Result};
use nook_core::quant::encode_f32;
use rayon::prelude::*;
use std::path::Path;
use std::sync::Arc;

/// Most items EASE takes part with: its matrix is m² f32 (1 GiB here) and the inverse m³ work
/// (~3 min here on 2 cores). Larger catalogues keep their most popular items.
pub const MAX_ITEMS: usize = 16_384;

/// λ tried on the validation split.
const LAMBDAS: [f32; 5] = [30.0, 100.0, 300.0, 1000.0, 3000.0];

pub const MODEL: ModelEntry = ModelEntry {
    id: "ease",
    about: "EASE^R item-item closed form (Steck 2019), λ chosen on validation",
    default: true,
    needs_text: false,
    fit: |t| {
        let choice = t.timed("ease-selection", |t| {
            select::on_validation(t.split(), "ease", &LAMBDAS, |train, history, l| WithHistory {
                model: Ease::fit(train, l).expect("XᵀX + λI is positive definite"),
                history: history.to_vec(),
            })
        });
        let ease = t.timed("ease", |t| Ease::fit(t.final_train(), choice.best))?;
        Ok(Arc::new(Ease { choice, ..ease }))
    },
    load: |l| {
        let choice: Choice<f32> = read_json(&l.dir.join("ease.json"))?;
        let path = l.dir.join("ease.safetensors");
        let (items, weights) = read_tensors(&path, |t| {
            let m = t.width("items")?;
            Ok((t.f32("items", &[1, m])?, t.f32("weights", &[m, m])?))
        })?;
        let items: Vec<u32> = items.iter().map(|&i| i as u32).collect();
        anyhow::ensure!(
            items.iter().all(|&i| (i as usize) < l.info.n_items),
            "{}: item index beyond the {} items",
            path.display(),
            l.info.n_items
        );
        Ok(Arc::new(Ease::from_parts(l.info.n_items, items, weights, choice)))
    },
};

pub struct Ease {
    /// Catalogue index of each of the `m` items that take part.
    items: Vec<u32>,
    /// Each catalogue item's position among them (`u32::MAX`: not taking part).
    position: Vec<u32>,
    /// Row-major `m × m` weights, zero diagonal.
    weights: Vec<f32>,
    choice: Choice<f32>,
}

impl Ease {
    /// Fits EASE with penalty `lambda` to the user × item positives, over at most [`MAX_ITEMS`].
    pub fn fit(user_items: &Csr, lambda: f32) -> Result<Self> {
        Self::fit_at_most(user_items, lambda, MAX_ITEMS)
    }

    /// [`Ease::fit`] over the `max_items` most popular items when more have training positives
    /// (the others score zero).
    pub fn fit_at_most(user_items: &Csr, lambda: f32, max_items: usize) -> Result<Self> {
        let n_items = user_items.cols;
        let mut counts = vec![0usize; n_items];
        user_items.indices.iter().for_each(|&i| counts[i as usize] += 1);
        let mut items: Vec<u32> = (0..n_items as u32).filter(|&i| counts[i as usize] > 0).collect();
        if items.len() > max_items {
            tracing::warn!(
                "ease: {} items have training positives; keeping the {max_items} most popular (EASE is dense: \
                 memory grows as the square of the items, time as the cube)",
                items.len()
            );
            items.sort_unstable_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
            items.truncate(max_items);
            items.sort_unstable();
        }
        let m = items.len();
        let mut position = vec![u32::MAX; n_items];
        items.iter().enumerate().for_each(|(p, &i)| position[i as usize] = p as u32);
        // G = XᵀX + λI over the taking-part items, one row per item in parallel.
        let item_users = user_items.transpose();
        let mut g = vec![0f32; m * m];
        g.par_chunks_mut(m).enumerate().for_each(|(p, row)| {
            for &u in item_users.row(items[p] as usize).0 {
                for &j in user_items.row(u as usize).0 {
                    if let Some(q) = row.get_mut(position[j as usize] as usize) {
                        *q += 1.0;
                    }
                }
            }
            row[p] += lambda;
        });
        crate::dense::spd_inverse(&mut g, m).map_err(anyhow::Error::msg).context("inverting XᵀX + λI")?;
        // B[i][j] = −P[i][j] / P[j][j], zero diagonal.
        let diag: Vec<f32> = (0..m).map(|j| g[j * m + j]).collect();
        g.par_chunks_mut(m).enumerate().for_each(|(i, row)| {
            row.iter_mut().zip(&diag).for_each(|(v, d)| *v = -*v / d);
            row[i] = 0.0;
        });
        Ok(Self { items, position, weights: g, choice: Choice { best: lambda, tried: Vec::new() } })
    }

    fn from_parts(n_items: usize, items: Vec<u32>, weights: Vec<f32>, choice: Choice<f32>) -> Self {
        let mut position = vec![u32::MAX; n_items];
        items.iter().enumerate().for_each(|(p, &i)| position[i as usize] = p as u32);
        Self { items, position, weights, choice }
    }
}

impl ScoresHistory for Ease {
    fn name(&self) -> &'static str {
        "ease"
    }

    /// The sum of the person's items' rows (items outside EASE score zero).
    fn score_history(&self, history: &[u32], out: &mut [f32]) {
        let m = self.items.len();
        let mut acc = vec![0f32; m];
        for &i in history {
            let p = self.position[i as usize];
            if p != u32::MAX {
                let row = &self.weights[p as usize * m..(p as usize + 1) * m];
                acc.iter_mut().zip(row).for_each(|(a, w)| *a += w);
            }
        }
        out.fill(0.0);
        self.items.iter().zip(&acc).for_each(|(&i, &s)| out[i as usize] = s);
    }
}

impl Fitted for Ease {
    fn scorer<'a>(&'a self, history: &'a [Vec<u32>]) -> Box<dyn Scorer + 'a> {
        Box::new(WithHistory { model: self, history })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let m = self.items.len();
        // Indices as f32 are exact below 2²⁴ items.
        let items: Vec<f32> = self.items.iter().map(|&i| i as f32).collect();
        write_tensors(
            &dir.join("ease.safetensors"),
            &[encode_f32("items", &[1, m], &items), encode_f32("weights", &[m, m], &self.weights)],
        )?;
        std::fs::write(dir.join("ease.json"), serde_json::to_vec_pretty(&self.choice)?)?;
        Ok(())
    }

    fn notes(&self) -> Option<String> {
        Some(format!("- `ease`: {}, {} items\n", self.choice.describe("λ"), self.items.len()))
    }
}
