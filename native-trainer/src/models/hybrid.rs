//! Hybrid item vectors: ALS factors beside text embeddings, scored by nook-core's [`Catalog`] (the
//! browser's code). Items without training interactions get their collaborative part from a ridge
//! map text → ALS factor fitted on the warm items. The text weight is chosen on the validation split.

use super::ridge::RidgeMap;
use super::{AlsConfig, Factors, Scorer};
use crate::eval::{evaluate, EvalSet, Target};
use crate::matrix::Csr;
use crate::split::Split;
use nook_core::recommend::UserVector;
use nook_core::{gramian, Catalog, ItemMeta, Scoring};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Text weights tried on the validation split.
const TEXT_WEIGHTS: [f32; 11] = [0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0];
/// Ridge penalties tried for the text → cf map.
const RIDGE_GRID: [f64; 5] = [0.1, 1.0, 10.0, 100.0, 1000.0];

/// The chosen hybrid: its catalog and the weights of its two eval variants.
#[derive(Clone, Debug)]
pub struct Hybrid {
    pub catalog: Catalog,
    /// `hybrid`: collaborative + text, text weight chosen on validation.
    pub scoring: Scoring,
    /// `content`: text alone.
    pub content: Scoring,
    /// Validation NDCG@10 of each text weight tried, for the report.
    pub validation: Vec<(f32, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HybridInfo {
    pub scoring: Scoring,
    pub content: Scoring,
    pub validation: Vec<(f32, f64)>,
}

impl Hybrid {
    pub fn info(&self) -> HybridInfo {
        HybridInfo { scoring: self.scoring, content: self.content, validation: self.validation.clone() }
    }

    /// Builds the catalog from ALS factors and text vectors, then picks the text weight.
    pub fn fit(
        split: &Split,
        train: &Csr,
        als: &Factors,
        als_cfg: &AlsConfig,
        text: &[f32],
        text_dim: usize,
        items: Vec<ItemMeta>,
    ) -> anyhow::Result<Self> {
        let catalog = build_catalog(split, als, als_cfg, text, text_dim, items)?;
        let like_confidence = 1.0 + als_cfg.alpha;
        let base = Scoring {
            cf_weight: 1.0,
            text_weight: 0.0,
            query_weight: 1.0,
            like_confidence,
            dislike_confidence: like_confidence,
        };
        let content = Scoring { cf_weight: 0.0, text_weight: 1.0, ..base };
        let users = user_vectors(&catalog, &base, train);
        let valid = EvalSet::new(split, train, Target::Valid);
        let mut validation = Vec::new();
        for &w in &TEXT_WEIGHTS {
            let scorer = HybridScorer {
                name: "hybrid",
                catalog: &catalog,
                scoring: Scoring { text_weight: w, ..base },
                users: &users,
            };
            let ndcg = evaluate(&scorer, &valid, &[10]).iter().find(|r| r.metric == "ndcg@10").map_or(0.0, |r| r.value);
            tracing::debug!("hybrid text weight {w}: validation ndcg@10 {ndcg:.4}");
            validation.push((w, ndcg));
        }
        let best = validation.iter().copied().fold((0.0, f64::MIN), |b, v| if v.1 > b.1 { v } else { b });
        tracing::info!("hybrid: text weight {} (validation ndcg@10 {:.4})", best.0, best.1);
        // The query is weighted like a strong liked-items profile.
        let scoring = Scoring { text_weight: best.0, query_weight: best.0.max(1.0), ..base };
        Ok(Self { catalog, scoring, content, validation })
    }

    /// The `hybrid` and `content` scorers for evaluation, sharing one set of user vectors.
    pub fn scorers<'a>(&'a self, users: &'a [UserVector]) -> [HybridScorer<'a>; 2] {
        [
            HybridScorer { name: "hybrid", catalog: &self.catalog, scoring: self.scoring, users },
            HybridScorer { name: "content", catalog: &self.catalog, scoring: self.content, users },
        ]
    }
}

/// Collaborative factors for every item (ALS where trained, ridge-predicted from text elsewhere),
/// the ALS gramian for fold-in, and training popularity.
fn build_catalog(
    split: &Split,
    als: &Factors,
    als_cfg: &AlsConfig,
    text: &[f32],
    text_dim: usize,
    items: Vec<ItemMeta>,
) -> anyhow::Result<Catalog> {
    let dim = als.dim;
    let trained = split.train_items();
    let warm: Vec<usize> = (0..split.n_items).filter(|&i| trained[i]).collect();
    anyhow::ensure!(warm.len() > 1, "too few items with training interactions to fit the text map");
    let gather = |m: &[f32], d: usize, rows: &[usize]| -> Vec<f32> {
        rows.iter().flat_map(|&r| m[r * d..(r + 1) * d].iter().copied()).collect()
    };
    let map = RidgeMap::fit_tuned(
        &gather(text, text_dim, &warm),
        &gather(&als.items, dim, &warm),
        text_dim,
        dim,
        &RIDGE_GRID,
        als_cfg.seed,
    );
    // Fold-in uses the gramian of the factors ALS trained with (cold rows are zero there).
    let cf_gram = gramian(&als.items, dim, als_cfg.regularization);
    let mut cf = als.items.clone();
    let cold: Vec<usize> = (0..split.n_items).filter(|&i| !trained[i]).collect();
    let predicted = map.apply(&gather(text, text_dim, &cold));
    for (k, &i) in cold.iter().enumerate() {
        cf[i * dim..(i + 1) * dim].copy_from_slice(&predicted[k * dim..(k + 1) * dim]);
    }
    let mut popularity = vec![0f32; split.n_items];
    split.train.iter().for_each(|i| popularity[i.item as usize] += 1.0);
    Ok(Catalog::new(items, cf, dim, cf_gram, text.to_vec(), text_dim, popularity)?)
}

/// Every user's vector from their training positives, through nook-core's fold-in and profile.
pub fn user_vectors(catalog: &Catalog, scoring: &Scoring, train: &Csr) -> Vec<UserVector> {
    (0..train.rows())
        .into_par_iter()
        .map(|u| catalog.user_vector(scoring, train.row(u).0, &[], None).expect("training indices are in range"))
        .collect()
}

/// Scores with nook-core's [`Catalog::score`], the code the browser runs.
pub struct HybridScorer<'a> {
    pub name: &'static str,
    pub catalog: &'a Catalog,
    pub scoring: Scoring,
    pub users: &'a [UserVector],
}

impl Scorer for HybridScorer<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn score(&self, user: u32, out: &mut [f32]) {
        self.catalog.score(&self.scoring, &self.users[user as usize], out);
    }
}
