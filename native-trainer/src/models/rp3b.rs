//! RP3β (Paudel et al. 2016; as tuned by Dacrema et al. 2019): item-item weights from a
//! three-step random walk item → user → item, `W[i][j] = Σ_u |i|^−α |u|^−α / |j|^β`, keeping each
//! item's `k` strongest neighbours. A person's scores are the sum of their items' rows. α and β
//! are chosen on the validation split.

use super::item_item::{rows, ScoresHistory, WithHistory};
use super::select::{self, Choice};
use super::{Fitted, ModelEntry, Scorer};
use crate::matrix::Csr;
use crate::store::read_json;
use anyhow::Result;
use nook_core::sequence::Rules;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// Neighbours kept per item.
const NEIGHBOURS: usize = 100;

/// One setting of the walk.
#[derive(Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Walk {
    pub alpha: f32,
    pub beta: f32,
}

impl std::fmt::Debug for Walk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "α {} β {}", self.alpha, self.beta)
    }
}

/// Settings tried on the validation split.
const GRID: [Walk; 6] = [
    Walk { alpha: 0.5, beta: 0.2 },
    Walk { alpha: 0.5, beta: 0.4 },
    Walk { alpha: 1.0, beta: 0.2 },
    Walk { alpha: 1.0, beta: 0.4 },
    Walk { alpha: 1.0, beta: 0.6 },
    Walk { alpha: 1.5, beta: 0.4 },
];

pub const MODEL: ModelEntry = ModelEntry {
    id: "rp3b",
    about: "RP3β random-walk item-item neighbours (α, β chosen on validation)",
    default: true,
    needs_text: false,
    fit: |t| {
        let choice = t.timed("rp3b-selection", |t| {
            select::on_validation(t.split(), "rp3b", &GRID, |train, history, w| WithHistory {
                model: Rp3b::fit(train, w),
                history: history.to_vec(),
            })
        });
        let model = t.timed("rp3b", |t| Rp3b::fit(t.final_train(), choice.best));
        Ok(Arc::new(Rp3b { choice, ..model }))
    },
    load: |l| {
        let choice: Choice<Walk> = read_json(&l.dir.join("rp3b.json"))?;
        let neighbours = rows::read(&l.dir.join("rp3b.safetensors"), "neighbours", l.info.n_items)?;
        Ok(Arc::new(Rp3b { neighbours, choice }))
    },
};

pub struct Rp3b {
    neighbours: Rules,
    choice: Choice<Walk>,
}

impl Rp3b {
    pub fn fit(user_items: &Csr, walk: Walk) -> Self {
        let n = user_items.cols;
        let item_users = user_items.transpose();
        let user_w: Vec<f32> =
            (0..user_items.rows()).map(|u| (user_items.row_len(u).max(1) as f32).powf(-walk.alpha)).collect();
        let pop_w: Vec<f32> = (0..n).map(|j| (item_users.row_len(j).max(1) as f32).powf(-walk.beta)).collect();
        let k = NEIGHBOURS.min(n.saturating_sub(1)).max(1);
        let neighbours: Vec<(Vec<u32>, Vec<f32>)> = (0..n)
            .into_par_iter()
            .map_init(
                || vec![0f32; n],
                |acc, i| {
                    let users = item_users.row(i).0;
                    if users.is_empty() {
                        return (vec![u32::MAX; k], vec![0.0; k]);
                    }
                    let item_w = (users.len() as f32).powf(-walk.alpha);
                    let mut touched = Vec::new();
                    for &u in users {
                        for &j in user_items.row(u as usize).0 {
                            if acc[j as usize] == 0.0 {
                                touched.push(j);
                            }
                            acc[j as usize] += user_w[u as usize];
                        }
                    }
                    let scored: Vec<(u32, f32)> = touched
                        .iter()
                        .filter(|&&j| j as usize != i)
                        .map(|&j| (j, acc[j as usize] * item_w * pop_w[j as usize]))
                        .collect();
                    touched.iter().for_each(|&j| acc[j as usize] = 0.0);
                    rows::strongest(scored, k)
                },
            )
            .collect();
        Self { neighbours: rows::collect(neighbours, k), choice: Choice { best: walk, tried: Vec::new() } }
    }
}

impl ScoresHistory for Rp3b {
    fn name(&self) -> &'static str {
        "rp3b"
    }

    fn score_history(&self, history: &[u32], out: &mut [f32]) {
        // Every item counts fully: no decay, as far back as the history goes.
        self.neighbours.score_history(history, 1.0, history.len(), out);
    }
}

impl Fitted for Rp3b {
    fn scorer<'a>(&'a self, history: &'a [Vec<u32>]) -> Box<dyn Scorer + 'a> {
        Box::new(WithHistory { model: self, history })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        rows::write(&self.neighbours, &dir.join("rp3b.safetensors"), "neighbours")?;
        std::fs::write(dir.join("rp3b.json"), serde_json::to_vec_pretty(&self.choice)?)?;
        Ok(())
    }

    fn notes(&self) -> Option<String> {
        Some(format!("- `rp3b`: {}, {} neighbours per item\n", self.choice.describe("walk"), self.neighbours.k()))
    }
}
